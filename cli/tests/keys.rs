//! `acta keys` as a person uses it: create, list, show, export and import (the same key
//! back), a wrong passphrase, and deleting only with --yes. The passphrase comes from
//! ACTA_PASSPHRASE, as in scripts.

#![allow(clippy::unwrap_used)]

use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
};

fn acta(store: &Path, pass: Option<&str>, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_acta"));
    cmd.arg("--keystore")
        .arg(store)
        .args(args)
        .env_remove("ACTA_PASSPHRASE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = pass {
        cmd.env("ACTA_PASSPHRASE", p);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_key_is_created_listed_exported_imported_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("keys");
    let pass = Some("a long passphrase");

    let (ok, out, err) = acta(
        &store,
        pass,
        &["keys", "new", "alice", "--output", "json"],
        "",
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let public = v[0]["public_key"].as_str().unwrap().to_string();
    assert!(v[0]["did"].as_str().unwrap().starts_with("did:acta:"));

    let (ok, out, _) = acta(&store, None, &["keys", "list"], "");
    assert!(
        ok && out.contains("alice") && out.contains(&public),
        "{out}"
    );
    let (ok, _, err) = acta(&store, pass, &["keys", "new", "alice"], "");
    assert!(!ok && err.contains("already exists"), "{err}");
    // A weak passphrase does not make a key, and says what would do.
    for weak in ["x", "short pass", "aaaaaaaaaaaaaaaa"] {
        let (ok, _, err) = acta(&store, Some(weak), &["keys", "new", "weak"], "");
        assert!(
            !ok && err.contains("a few unrelated words"),
            "{weak}: {err}"
        );
    }
    let (_, list, _) = acta(&store, None, &["keys", "list"], "");
    assert!(!list.contains("weak"), "{list}");

    // Recovery words by default (24 BIP-39 words), the hex seed on request.
    let (ok, words, _) = acta(&store, pass, &["keys", "export", "alice"], "");
    assert!(ok && words.split_whitespace().count() == 24, "{words}");
    let (ok, seed, _) = acta(&store, pass, &["keys", "export", "alice", "--hex"], "");
    assert!(ok && seed.trim().len() == 64, "{seed}");
    let (ok, _, err) = acta(&store, Some("not it"), &["keys", "export", "alice"], "");
    assert!(!ok && err.contains("wrong passphrase"), "{err}");
    assert!(!err.contains("panicked"));
    let (ok, _, err) = acta(&store, None, &["keys", "export", "alice"], "");
    assert!(!ok && err.contains("ACTA_PASSPHRASE"), "{err}");

    // The exported seed imports as the same key.
    let (ok, out, err) = acta(
        &store,
        Some("another long passphrase"),
        &["keys", "import", "bob", "--output", "json"],
        &seed,
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["public_key"].as_str().unwrap(), public);
    // The words, one per line as written on paper, import as the same key.
    let (ok, out, err) = acta(
        &store,
        Some("another long passphrase"),
        &["keys", "import", "dave", "--output", "json"],
        &words.split_whitespace().collect::<Vec<_>>().join("\n"),
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["public_key"].as_str().unwrap(), public);
    let mut wrong: Vec<&str> = words.split_whitespace().collect();
    wrong[3] = "notaword";
    let (ok, _, err) = acta(&store, pass, &["keys", "import", "erin"], &wrong.join(" "));
    assert!(!ok && err.contains("word 4"), "{err}");
    let (ok, _, err) = acta(&store, pass, &["keys", "import", "carol"], "12zz\n");
    assert!(!ok && err.contains("not hex"), "{err}");
    let (ok, _, err) = acta(&store, pass, &["keys", "import", "carol"], "00ff\n");
    assert!(!ok && err.contains("not 32"), "{err}");
    let (ok, _, err) = acta(&store, pass, &["keys", "show", "../etc"], "");
    assert!(!ok && err.contains("key name"), "{err}");

    let (ok, _, err) = acta(&store, None, &["keys", "delete", "bob"], "");
    assert!(!ok && err.contains("--yes"), "{err}");
    let (ok, _, _) = acta(&store, None, &["keys", "delete", "bob", "--yes"], "");
    assert!(ok);
    let (ok, _, err) = acta(&store, None, &["keys", "show", "bob"], "");
    assert!(!ok && err.contains("no key named"), "{err}");
}

/// A web server that is not an Acta node: the wallet says so instead of printing its page,
/// and with `-o json` the error is a JSON object with a code.
#[test]
fn a_node_address_that_is_not_acta_is_named_as_such() {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        // Two requests at most: one per command below.
        for _ in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let page = "<html><body>It works!</body></html>";
            let _ = write!(
                s,
                "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let node = format!("http://127.0.0.1:{port}");
    let (ok, _, err) = acta(dir.path(), None, &["chain", "status", "--node", &node], "");
    assert!(
        !ok && err.contains("not Acta's API") && !err.contains("<html>"),
        "{err}"
    );
    let (ok, out, err) = acta(
        dir.path(),
        None,
        &["chain", "status", "--node", &node, "--output", "json"],
        "",
    );
    assert!(!ok && out.is_empty(), "{out}");
    let v: serde_json::Value = serde_json::from_str(err.trim()).unwrap();
    assert_eq!(v["code"], "not_acta", "{v}");
    assert_eq!(v["http_status"], 404, "{v}");
    server.join().unwrap();
}

/// `acta config set node` remembers the node: later commands ask it without --node;
/// ACTA_NODE and --node still come first; a bad URL is refused and nothing is written.
#[test]
fn the_wallet_remembers_its_node() {
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str], env_node: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_acta"));
        cmd.args(args)
            .env("ACTA_HOME", home.path())
            .env_remove("ACTA_NODE")
            .stdin(Stdio::null());
        if let Some(n) = env_node {
            cmd.env("ACTA_NODE", n);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let show = |env_node: Option<&str>| {
        let (ok, out, err) = run(&["config", "show", "--output", "json"], env_node);
        assert!(ok, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    assert_eq!(show(None)["node"], "http://127.0.0.1:26657");
    assert_eq!(show(None)["node_from"], "the default");
    let (ok, _, err) = run(&["config", "set", "node", "ftp://example.org"], None);
    assert!(!ok && err.contains("not an http"), "{err}");
    // A genesis file that is not there, or not a genesis, and a chain id that cannot be one,
    // are refused, and nothing is written.
    let not_genesis = home.path().join("not-genesis.json");
    std::fs::write(&not_genesis, "{}").unwrap();
    for (name, value) in [
        ("genesis", home.path().join("none.json").to_str().unwrap()),
        ("genesis", not_genesis.to_str().unwrap()),
        ("chain", ""),
    ] {
        let (ok, _, err) = run(&["config", "set", name, value], None);
        assert!(!ok && err.contains(name), "{name} {value}: {err}");
    }
    assert!(!home.path().join("config.toml").exists());
    // Port 9 (discard): nothing answers, and the error names the remembered address.
    let (ok, out, err) = run(&["config", "set", "node", "http://127.0.0.1:9/"], None);
    assert!(ok && out.contains("http://127.0.0.1:9"), "{err}");
    let v = show(None);
    assert_eq!(
        (v["node"].as_str(), v["node_from"].as_str()),
        (Some("http://127.0.0.1:9"), Some("the settings file"))
    );
    let (ok, _, err) = run(&["chain", "status"], None);
    assert!(!ok && err.contains("http://127.0.0.1:9"), "{err}");
    assert_eq!(
        show(Some("http://127.0.0.1:7"))["node"],
        "http://127.0.0.1:7"
    );
    let (ok, _, err) = run(&["chain", "status", "--node", "http://127.0.0.1:8"], None);
    assert!(!ok && err.contains("http://127.0.0.1:8"), "{err}");
    let (ok, _, _) = run(&["config", "unset", "node"], None);
    assert!(ok);
    assert_eq!(show(None)["node_from"], "the default");
    // A damaged settings file is named, not ignored.
    std::fs::write(home.path().join("config.toml"), "node = [").unwrap();
    let (ok, _, err) = run(&["chain", "status"], None);
    assert!(!ok && err.contains("config.toml"), "{err}");
}
