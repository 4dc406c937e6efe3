//! `acta audit verify` on a bundle built from a signed fixture block: it verifies against
//! the genesis, and a bundle with one byte changed, another genesis, or a malformed file
//! fails with the step and the reason.

#![allow(clippy::unwrap_used)]

use std::{path::Path, process::Command};

use acta_ledger::{bundle::ProofBundle, testing};
use serde_json::json;

fn genesis_json(set: &acta_ledger::ValidatorSet, chain: &str) -> String {
    let validators: Vec<_> = set
        .validators()
        .iter()
        .enumerate()
        .map(|(i, v)| {
            json!({ "name": format!("v{i}"), "consensus_key": v.public_key.to_hex(), "peer_id": "x", "power": v.power.0 })
        })
        .collect();
    json!({ "chain_id": chain, "genesis_time_ms": 0, "validators": validators }).to_string()
}

/// A bundle proving `did/resident` at height 1 of a fixture chain of 4 validators.
fn fixture() -> (ProofBundle, acta_ledger::ValidatorSet) {
    testing::proof_bundle()
}

fn acta(args: &[&str], dir: &Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_acta"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bundle_verifies_against_the_genesis_and_any_change_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (bundle, set) = fixture();
    std::fs::write(
        dir.path().join("genesis.json"),
        genesis_json(&set, "acta-test"),
    )
    .unwrap();
    // As the API answers it: the bundle in `proof`.
    let answer = json!({
        "namespace": "did",
        "key": hex::encode(b"resident"),
        "value": hex::encode(b"a DID record"),
        "height": 1,
        "proof": bundle,
    });
    std::fs::write(dir.path().join("answer.json"), answer.to_string()).unwrap();
    let (ok, out, err) = acta(
        &[
            "audit",
            "verify",
            "answer.json",
            "--genesis",
            "genesis.json",
        ],
        dir.path(),
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("signed by 30 of 40") && out.contains("verified:"),
        "{out}"
    );
    let (ok, out, _) = acta(
        &[
            "audit",
            "verify",
            "answer.json",
            "--genesis",
            "genesis.json",
            "--output",
            "json",
        ],
        dir.path(),
    );
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["verified"].as_bool(), v["height"].as_u64()),
        (Some(true), Some(1))
    );
    assert_eq!(v["fields"], 4, "namespace, key, value and height: {v}");

    // A readable field edited, or added, is named; the proven bytes alone are not enough.
    for (field, value, why) in [
        (
            "value",
            json!(hex::encode(b"a DID recorD")),
            "field value shows",
        ),
        ("height", json!(2), "field height shows"),
        (
            "status",
            json!("valid"),
            "field status is not covered by the proof",
        ),
    ] {
        let mut edited = answer.clone();
        edited[field] = value;
        std::fs::write(dir.path().join("edited.json"), edited.to_string()).unwrap();
        let (ok, _, err) = acta(
            &[
                "audit",
                "verify",
                "edited.json",
                "--genesis",
                "genesis.json",
            ],
            dir.path(),
        );
        assert!(
            !ok && err.contains("at step \"answer\"") && err.contains(why),
            "{err}"
        );
    }
    // A bundle without its request cannot vouch for the fields beside it.
    let mut anonymous = answer.clone();
    anonymous["proof"]["query"] = serde_json::Value::Null;
    std::fs::write(dir.path().join("anon.json"), anonymous.to_string()).unwrap();
    let (ok, _, err) = acta(
        &["audit", "verify", "anon.json", "--genesis", "genesis.json"],
        dir.path(),
    );
    assert!(!ok && err.contains("not covered by the proof"), "{err}");

    // One byte of the value changed.
    let mut forged = bundle.clone();
    forged.state[0].value.as_mut().unwrap()[0] ^= 1;
    std::fs::write(
        dir.path().join("forged.json"),
        serde_json::to_string(&forged).unwrap(),
    )
    .unwrap();
    let (ok, _, err) = acta(
        &[
            "audit",
            "verify",
            "forged.json",
            "--genesis",
            "genesis.json",
        ],
        dir.path(),
    );
    assert!(!ok);
    assert!(
        err.contains("at step \"state\"") && err.contains("state root"),
        "{err}"
    );
    let (ok, out, _) = acta(
        &[
            "audit",
            "verify",
            "forged.json",
            "--genesis",
            "genesis.json",
            "--output",
            "json",
        ],
        dir.path(),
    );
    assert!(!ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["step"], "state");

    // Every single byte of the header's encoding matters.
    let header = acta_ledger::codec::encode(&bundle.header);
    for i in (0..header.len()).step_by(7) {
        let mut bytes = header.clone();
        bytes[i] ^= 0x10;
        let Ok(h) = acta_ledger::codec::decode::<acta_ledger::Header>("header", &bytes, 4096)
        else {
            continue;
        };
        let mut b = bundle.clone();
        b.header = h;
        assert!(
            b.verify(&testing::chain_id(), &set).is_err(),
            "byte {i} of the header changed and the bundle still verified"
        );
    }

    // Another chain's genesis, or another validator set, is not the anchor.
    std::fs::write(
        dir.path().join("other.json"),
        genesis_json(&set, "acta-other"),
    )
    .unwrap();
    let (ok, _, err) = acta(
        &["audit", "verify", "answer.json", "--genesis", "other.json"],
        dir.path(),
    );
    assert!(!ok && err.contains("at step \"chain\""), "{err}");
    let (_, other) = testing::validators(5, &[10, 10, 10, 10, 10]);
    std::fs::write(
        dir.path().join("other.json"),
        genesis_json(&other, "acta-test"),
    )
    .unwrap();
    let (ok, _, err) = acta(
        &["audit", "verify", "answer.json", "--genesis", "other.json"],
        dir.path(),
    );
    assert!(!ok && err.contains("at step \"commit\""), "{err}");

    // Bad files are named, with the reason.
    std::fs::write(dir.path().join("junk.json"), "{\"proof\": 5").unwrap();
    let (ok, _, err) = acta(
        &["audit", "verify", "junk.json", "--genesis", "genesis.json"],
        dir.path(),
    );
    assert!(!ok && err.contains("junk.json: not JSON"), "{err}");
    std::fs::write(dir.path().join("junk.json"), "{\"proof\": {}}").unwrap();
    let (ok, _, err) = acta(
        &["audit", "verify", "junk.json", "--genesis", "genesis.json"],
        dir.path(),
    );
    assert!(!ok && err.contains("not a proof bundle"), "{err}");
    let (ok, _, err) = acta(
        &["audit", "verify", "answer.json", "--genesis", "junk.json"],
        dir.path(),
    );
    assert!(
        !ok && err.contains("junk.json") && err.contains("genesis"),
        "{err}"
    );
    let (ok, _, err) = acta(
        &[
            "audit",
            "verify",
            "missing.json",
            "--genesis",
            "genesis.json",
        ],
        dir.path(),
    );
    assert!(!ok && err.contains("missing.json"), "{err}");
    assert!(!err.contains("panicked"));
}
