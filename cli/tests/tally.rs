//! `acta budget tally` on the Wieliczka file and on bad input.

#![allow(clippy::unwrap_used)]

use std::process::Command;

const WIELICZKA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../contracts/testdata/poland_wieliczka_2023_green-budget.pb"
);

fn acta(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_acta"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn tallies_wieliczka_as_json() {
    let out = acta(&[
        "budget", "tally", WIELICZKA, "--rule", "mes-add1", "--output", "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["total_cost"], 995_079);
    assert_eq!(v["selected"].as_array().unwrap().len(), 30);
    assert_eq!(v["endowment"], "1040052/3293");
    assert_eq!(v["approvals"]["24"], 720);
}

#[test]
fn bad_input_gets_a_clear_error() {
    let out = acta(&["budget", "tally", WIELICZKA, "--rule", "borda"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown rule \"borda\""));
    let out = acta(&["budget", "tally", "/nonexistent.pb", "--rule", "mes"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.pb"));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pb");
    std::fs::write(&bad, "META\nkey;value\nbudget;x\n").unwrap();
    let out = acta(&["budget", "tally", bad.to_str().unwrap(), "--rule", "mes"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3"), "{err}");
}
