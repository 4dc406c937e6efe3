//! The wallet end to end on a local 4-validator network, through the `acta` binary only:
//! the council registers an issuer; residents create DIDs, receive Resident credentials
//! and vote in a round; an operator registers a device that attests readings; the round
//! closes and its result matches an offline tally of its exported `.pb`; an auditor
//! verifies a reading's bundle offline, and a bundle with any single byte changed fails.
//!
//! Also: a transaction built and signed by the Python client of `docs/wire-format.md`
//! (section 13.14), from the document alone, is accepted by the node.
//!
//! Needs `actad` built beside the test binary (`cargo test --workspace` builds it).

#![allow(clippy::unwrap_used)]

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::Duration,
};

use acta_contracts::audit;
use acta_ledger::{bundle::TrustAnchor, testing, Timestamp};
use acta_node::devnet::{actad_beside_me, LocalNet};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(90);
const PASS: &str = "correct horse battery staple";

struct Acta {
    keystore: PathBuf,
    node: String,
    /// The working folder (credential documents land there by default).
    cwd: PathBuf,
}

impl Acta {
    fn command(&self, args: &[&str], pass: &str) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_acta"));
        c.args(args)
            .arg("--keystore")
            .arg(&self.keystore)
            .args(["--node", &self.node])
            .env("ACTA_PASSPHRASE", pass)
            .env("ACTA_HOME", &self.cwd)
            .env_remove("ACTA_NODE")
            .env_remove("ACTA_CHAIN")
            .current_dir(&self.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn run_with(&self, args: &[&str], pass: &str, stdin: &str) -> Output {
        let mut child = self.command(args, pass).spawn().expect("acta starts");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("stdin written");
        child.wait_with_output().expect("acta runs")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, PASS, "")
    }

    /// Runs and expects success; returns standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "acta {args:?} failed:\n{stdout}\n{stderr}"
        );
        stdout
    }

    /// Runs with `--output json` and expects success.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("acta {args:?}: {e}: {text}"))
    }

    /// Runs and expects failure with a one-line reason (no panic, no backtrace); returns
    /// standard error.
    fn fails(&self, args: &[&str]) -> String {
        self.fails_with(args, PASS)
    }

    fn fails_with(&self, args: &[&str], pass: &str) -> String {
        let out = self.run_with(args, pass, "");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "acta {args:?}: {stderr}");
        assert!(stderr.starts_with("acta: "), "acta {args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "acta {args:?}: {stderr}");
        stderr
    }
}

/// A credential document's id: the hash the ledger anchors.
fn document_id(path: &Path) -> String {
    let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    acta_contracts::vc::document_hash(&doc).unwrap().to_hex()
}

/// Parses and verifies a bundle file's bytes as `acta audit verify` does.
fn verify_bytes(bytes: &[u8], anchor: &TrustAnchor) -> Result<(), String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    audit::verify(&v, anchor)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The byte changed to another that is not blank: a hex digit to another value, anything
/// else to its neighbour.
fn changed(b: u8) -> u8 {
    match b {
        b'0'..=b'9' | b'a'..=b'f' => {
            let v = (b as char).to_digit(16).expect("hex") ^ 1;
            char::from_digit(v, 16).expect("hex") as u8
        }
        _ => b ^ 1,
    }
}

/// Waits until node 0 has committed a block whose time is `time` or later.
fn wait_for_time(net: &LocalNet, time: Timestamp) {
    if let Err(e) = net.wait_time(time, WAIT) {
        net.dump_logs();
        panic!("{e}");
    }
}

/// Waits until budget round `round` has its tally stored.
fn wait_for_tally(acta: &Acta, round: u64) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let v = acta.json(&["budget", "show", &round.to_string()]);
        if v["round"]["status"] == "tallied" {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "round {round} has no tally after {WAIT:?}: {v}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn wait_for_height(net: &LocalNet, height: u64) {
    if let Err(e) = net.wait_height_of(&[0], height, WAIT) {
        net.dump_logs();
        panic!("{e}");
    }
}

#[test]
fn a_city_through_the_wallet() {
    let dir = tempfile::tempdir().unwrap();
    let council: Vec<_> = (0..3).map(|i| testing::key(0xc0, i)).collect();
    let mut net = LocalNet::init(
        &actad_beside_me().unwrap(),
        &dir.path().join("net"),
        4,
        "acta-e2e",
        &council,
        2,
    )
    .unwrap();
    net.start_all().unwrap();
    wait_for_height(&net, 1);
    let genesis = net.nodes[0].home.join("genesis.json");
    let acta = Acta {
        keystore: dir.path().join("keys"),
        node: format!("http://{}", net.nodes[1].rpc),
        cwd: dir.path().to_path_buf(),
    };

    // Keys: two council members' from their seeds, the others new.
    for (i, name) in ["member0", "member1"].iter().enumerate() {
        let seed = hex::encode(council[i].seed());
        let out = acta.run_with(&["keys", "import", name], PASS, &format!("{seed}\n"));
        assert!(out.status.success(), "{out:?}");
    }
    for name in [
        "agency",
        "alice",
        "bob",
        "office",
        "operator",
        "sensor1",
        "registrar",
    ] {
        acta.ok(&["keys", "new", name]);
    }
    let keys = acta.json(&["keys", "list"]);
    assert_eq!(keys.as_array().map(Vec::len), Some(9));

    // Errors a person can act on.
    let err = acta.fails_with(&["did", "create", "--key", "alice"], "wrong");
    assert!(err.contains("passphrase"), "{err}");
    let nowhere = Acta {
        keystore: acta.keystore.clone(),
        node: "http://127.0.0.1:9".into(),
        cwd: acta.cwd.clone(),
    };
    let err = nowhere.fails(&["chain", "status"]);
    assert!(err.contains("cannot reach the node"), "{err}");
    let err = acta.fails(&["did", "show", "not-a-key"]);
    assert!(err.contains("neither a DID"), "{err}");

    // Everyone creates a DID.
    for name in [
        "agency",
        "alice",
        "bob",
        "office",
        "operator",
        "sensor1",
        "registrar",
    ] {
        let out = acta.json(&["did", "create", "--key", name]);
        assert_eq!(out["status"], "committed", "{out}");
    }
    let err = acta.fails(&["did", "create", "--key", "alice"]);
    assert!(
        err.contains("(already_exists)"),
        "a second create is refused: {err}"
    );
    let doc = acta.json(&["did", "show", "alice"]);
    let alice_did = doc["didDocument"]["id"].as_str().unwrap().to_string();
    assert!(alice_did.starts_with("did:acta:"), "{doc}");

    // The council (2 of 3) registers the agency as an issuer.
    acta.ok(&[
        "council",
        "propose",
        "--key",
        "member0",
        "register-issuer",
        "agency",
        "--kinds",
        "resident,sensor-operator,budget-office",
    ]);
    // Without the action's hash or --yes, nothing is signed.
    let out = acta.run(&["council", "approve", "--key", "member1", "0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a usage error: {err}");
    assert!(err.contains("--action-hash"), "{err}");
    acta.ok(&["council", "approve", "--key", "member1", "0", "--yes"]);
    let list = acta.json(&["council", "list"]);
    assert!(list["proposals"][0]["executed"].is_u64(), "{list}");

    // Credentials: two residents, a budget office, a sensor operator.
    let creds = dir.path().join("alice-resident.json");
    for (subject, kind, district) in [
        ("alice", "resident", Some("old-town")),
        ("bob", "resident", Some("old-town")),
        ("office", "budget-office", None),
        ("operator", "sensor-operator", None),
    ] {
        let mut args = vec![
            "credential",
            "issue",
            "--key",
            "agency",
            "--subject",
            subject,
            "--kind",
            kind,
        ];
        if let Some(d) = district {
            args.extend(["--district", d]);
        }
        if subject == "alice" {
            args.extend(["--out", creds.to_str().unwrap()]);
        }
        acta.ok(&args);
    }
    // The document is a W3C verifiable credential; its id is the SHA-256 of its RFC 8785
    // canonical form without the proof.
    let id = document_id(&creds);
    let status = acta.json(&["credential", "status", &id]);
    assert_eq!(status["status"], "valid", "{status}");
    let doc: Value = serde_json::from_slice(&std::fs::read(&creds).unwrap()).unwrap();
    assert_eq!(doc["@context"][0], "https://www.w3.org/ns/credentials/v2");
    assert_eq!(doc["proof"]["cryptosuite"], "eddsa-jcs-2022");
    assert_eq!(doc["credentialSubject"]["id"], alice_did.as_str());
    let out = acta.ok(&["credential", "verify", creds.to_str().unwrap()]);
    assert!(out.contains("verified: "), "{out}");
    let v = acta.json(&[
        "credential",
        "verify",
        creds.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
    ]);
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["credentials"][0]["district"], "old-town", "{v}");
    // An edited claim is not what the ledger anchored; a claim that keeps the id but not
    // the proof fails the proof.
    let forged = dir.path().join("forged.json");
    let mut edited = doc.clone();
    edited["credentialSubject"]["district"] = "new-town".into();
    std::fs::write(&forged, edited.to_string()).unwrap();
    let err = acta.fails(&["credential", "verify", forged.to_str().unwrap()]);
    assert!(err.contains("not on the ledger"), "{err}");
    let mut edited = doc.clone();
    edited["proof"]["created"] = "2020-01-01T00:00:00Z".into();
    std::fs::write(&forged, edited.to_string()).unwrap();
    let err = acta.fails(&["credential", "verify", forged.to_str().unwrap()]);
    assert!(err.contains("proof.proofValue"), "{err}");
    let agency = acta.json(&["did", "resolve", "agency"]);
    python_credential(
        dir.path(),
        &creds,
        agency["didDocument"]["verificationMethod"][0]["publicKeyMultibase"]
            .as_str()
            .unwrap(),
    );

    // A credential's life: suspended, reinstated, revoked for good (a second one of bob's).
    let second = dir.path().join("bob-second.json");
    // A resident credential of bob's, issued with `key`, its document written to `out`.
    let issue_to = |key: &'static str, out: &Path| -> [String; 12] {
        [
            "credential",
            "issue",
            "--key",
            key,
            "--subject",
            "bob",
            "--kind",
            "resident",
            "--district",
            "old-town",
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from)
    };
    fn strs(args: &[String]) -> Vec<&str> {
        args.iter().map(String::as_str).collect()
    }
    acta.ok(&strs(&issue_to("agency", &second)));
    let id = document_id(&second);
    // A document already there is not replaced, and nothing is sent; one the ledger refuses
    // is not kept.
    let before = std::fs::read(&second).unwrap();
    let err = acta.fails(&strs(&issue_to("agency", &second)));
    assert!(err.contains("nothing was sent"), "{err}");
    assert_eq!(std::fs::read(&second).unwrap(), before);
    let refused = dir.path().join("refused.json");
    let err = acta.fails(&strs(&issue_to("bob", &refused)));
    assert!(err.contains("(unauthorized)"), "{err}");
    assert!(
        !refused.exists(),
        "a refused credential's document is not kept"
    );
    // Bob shows it to a verifier, who checks it with no node: the presentation carries the
    // ledger's proofs, checked against the genesis.
    let verifier = "did:acta:verifier-bakery";
    let vp = dir.path().join("bob-vp.json");
    let present = |out: &Path| {
        acta.ok(&[
            "credential",
            "present",
            "--key",
            "bob",
            second.to_str().unwrap(),
            "--challenge",
            "n-4711",
            "--to",
            verifier,
            "--out",
            out.to_str().unwrap(),
        ])
    };
    present(&vp);
    let offline = |file: &Path, challenge: &str| {
        nowhere.run(&[
            "credential",
            "verify",
            file.to_str().unwrap(),
            "--genesis",
            genesis.to_str().unwrap(),
            "--challenge",
            challenge,
            "--domain",
            verifier,
        ])
    };
    let out = offline(&vp, "n-4711");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("offline") && text.contains("valid at block"),
        "{text}"
    );
    // Fresh proofs pass --max-age.
    let out = nowhere.run(&[
        "credential",
        "verify",
        vp.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
        "--challenge",
        "n-4711",
        "--max-age",
        "60",
    ]);
    assert!(out.status.success(), "{out:?}");
    // Another challenge: a replay.
    let out = offline(&vp, "n-0001");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("challenge"),
        "{out:?}"
    );
    // Alice cannot present bob's credential.
    let err = acta.fails(&[
        "credential",
        "present",
        "--key",
        "alice",
        second.to_str().unwrap(),
        "--challenge",
        "n-1",
    ]);
    assert!(err.contains("not about"), "{err}");
    let issued = acta.json(&["credential", "status", &id])["credential"]["issued"]
        .as_u64()
        .unwrap();
    // Without --out, the document is kept as credential-<id>.json.
    let third = acta.ok(&[
        "credential",
        "issue",
        "--key",
        "agency",
        "--subject",
        "bob",
        "--kind",
        "resident",
        "--district",
        "old-town",
    ]);
    let kept = third
        .lines()
        .find_map(|l| l.strip_prefix("credential "))
        .and_then(|l| l.split(' ').next())
        .unwrap()
        .to_string();
    assert_eq!(
        document_id(&dir.path().join(format!("credential-{kept}.json"))),
        kept
    );
    // Sent without waiting, one after the other: each is signed at the nonce after the
    // key's transactions waiting in the mempool, so neither is refused as stale.
    for command in ["suspend", "reinstate"] {
        let out = acta.ok(&["--no-wait", "credential", command, "--key", "agency", &kept]);
        assert!(out.contains("accepted into the mempool"), "{out}");
    }
    acta.ok(&["credential", "suspend", "--key", "agency", &kept]);
    assert_eq!(
        acta.json(&["credential", "status", &kept])["status"],
        "suspended"
    );
    for (command, status) in [
        ("suspend", "suspended"),
        ("reinstate", "valid"),
        ("revoke", "revoked"),
    ] {
        if command == "revoke" {
            // Final: refused unless confirmed, and nothing changes.
            let err = acta.fails(&["credential", command, "--key", "agency", &id]);
            assert!(err.contains("--yes"), "{err}");
            assert_eq!(acta.json(&["credential", "status", &id])["status"], "valid");
            acta.ok(&["credential", command, "--key", "agency", &id, "--yes"]);
        } else {
            acta.ok(&["credential", command, "--key", "agency", &id]);
        }
        let v = acta.json(&["credential", "status", &id]);
        assert_eq!(v["status"], status, "{v}");
    }
    let err = acta.fails(&["credential", "reinstate", "--key", "agency", &id]);
    assert!(err.contains("(invalid)"), "revocation is final: {err}");
    // Once revoked, the credential fails verification, online and in a new presentation
    // checked offline; as of the block that issued it, it was valid.
    let err = acta.fails(&["credential", "verify", second.to_str().unwrap()]);
    assert!(err.contains("is revoked"), "{err}");
    let vp_after = dir.path().join("bob-vp-after.json");
    present(&vp_after);
    let out = offline(&vp_after, "n-4711");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is revoked"),
        "{out:?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("FAIL"),
        "{out:?}"
    );
    let out = acta.ok(&[
        "credential",
        "verify",
        second.to_str().unwrap(),
        "--at",
        &issued.to_string(),
    ]);
    assert!(out.contains(&format!("valid at block {issued}")), "{out}");
    // At a time, proven against the genesis: the last block at or before it is read (the
    // one after it proven to be later), here the block that issued the credential.
    let time = acta.json(&["chain", "block", &issued.to_string()])["block"]["header"]["time"]
        .as_u64()
        .expect("block time");
    let out = acta.ok(&[
        "credential",
        "verify",
        second.to_str().unwrap(),
        "--at",
        &Timestamp(time).rfc3339_ms(),
        "--genesis",
        genesis.to_str().unwrap(),
    ]);
    assert!(out.contains(&format!("valid at block {issued}")), "{out}");
    assert!(!out.contains("the latest block the node has"), "{out}");
    let err = acta.fails(&["credential", "suspend", "--key", "alice", &id]);
    assert!(err.contains("(unauthorized)"), "only the issuer: {err}");

    // A DID's key rotated to a pre-committed key, then the DID deactivated by the new key.
    acta.ok(&["keys", "new", "carol"]);
    acta.ok(&["keys", "new", "carol2"]);
    // A wallet pinned to another chain signs nothing for this one.
    let settings = dir.path().join("config.toml");
    std::fs::write(&settings, "chain = \"another-city\"\n").unwrap();
    let create = ["did", "create", "--key", "carol", "--next-key", "carol2"];
    let err = acta.fails(&create);
    assert!(
        err.contains("pins this wallet to chain another-city")
            && err.contains("nothing was signed"),
        "{err}"
    );
    // Set to this city's genesis file (which pins its chain, and has what the wallet reads
    // before it signs proven), it signs; the DID edits below read documents with proofs.
    std::fs::remove_file(&settings).unwrap();
    let out = acta.ok(&["config", "set", "genesis", genesis.to_str().unwrap()]);
    assert!(out.contains("genesis = "), "{out}");
    acta.ok(&create);
    let err = acta.fails(&[
        "did",
        "rotate",
        "--key",
        "carol",
        "--new-key",
        "alice",
        "--no-next-key",
    ]);
    assert!(
        err.contains("(unauthorized)") && err.contains("pre-committed"),
        "{err}"
    );
    let err = acta.fails(&["did", "rotate", "--key", "carol", "--new-key", "carol2"]);
    assert!(
        err.contains("--no-next-key"),
        "dropping a pre-commitment is explicit: {err}"
    );
    acta.ok(&[
        "did",
        "rotate",
        "--key",
        "carol",
        "--new-key",
        "carol2",
        "--no-next-key",
    ]);
    let err = acta.fails(&[
        "did",
        "deactivate",
        "--key",
        "carol",
        "--did",
        "carol",
        "--yes",
    ]);
    assert!(
        err.contains("(unauthorized)"),
        "the old key no longer signs: {err}"
    );
    let err = acta.fails(&["did", "deactivate", "--key", "carol2", "--did", "carol"]);
    assert!(err.contains("cannot be undone: add --yes"), "{err}");
    acta.ok(&[
        "did",
        "deactivate",
        "--key",
        "carol2",
        "--did",
        "carol",
        "--yes",
    ]);
    let v = acta.json(&["did", "show", "carol"]);
    assert_eq!(v["didDocumentMetadata"]["deactivated"], true, "{v}");

    // Recovery (docs/wallet.md): dana names her second device as recovery controller,
    // writes down her recovery words, loses her laptop (her key), and gets her DID back
    // with the second device and a new key. Her DID's document round-trips through
    // `did resolve` and `did update`.
    for name in ["dana", "dana-phone", "dana-new"] {
        acta.ok(&["keys", "new", name]);
    }
    acta.ok(&["did", "create", "--key", "dana"]);
    acta.ok(&["did", "create", "--key", "dana-phone"]);
    let dana = acta.json(&["did", "resolve", "dana"])["didDocument"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = acta.ok(&["did", "add-recovery", "--key", "dana", "dana-phone"]);
    assert!(out.contains("can now recover"), "{out}");
    let words = acta.ok(&["keys", "export", "dana"]);
    assert_eq!(words.split_whitespace().count(), 24, "{words}");
    acta.ok(&["keys", "delete", "dana", "--yes"]);
    // Someone who is not her controller cannot take her DID.
    let err = acta.fails(&[
        "did",
        "recover",
        "--key",
        "bob",
        "--did",
        &dana,
        "--new-key",
        "bob",
    ]);
    assert!(err.contains("(unauthorized)"), "{err}");
    acta.ok(&[
        "did",
        "recover",
        "--key",
        "dana-phone",
        "--did",
        &dana,
        "--new-key",
        "dana-new",
    ]);
    let v = acta.json(&["did", "resolve", &dana]);
    let new_key = acta.json(&["keys", "show", "dana-new"])["public_key"].clone();
    let methods = v["didDocument"]["verificationMethod"].as_array().unwrap();
    assert_eq!(methods.len(), 1, "{v}");
    let multibase = acta_contracts::answer::multibase(
        &acta_ledger::PublicKey::from_hex(new_key.as_str().unwrap()).unwrap(),
    );
    assert_eq!(methods[0]["publicKeyMultibase"], multibase.as_str(), "{v}");
    // The new key acts as her DID: she edits the resolved document (a service) and
    // submits it as it is.
    let mut doc = v["didDocument"].clone();
    doc["service"] = serde_json::json!([{
        "id": format!("{dana}#home"),
        "type": "LinkedDomains",
        "serviceEndpoint": "https://dana.example.org",
    }]);
    let file = dir.path().join("dana.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    acta.ok(&[
        "did",
        "update",
        "--key",
        "dana-new",
        "--did",
        &dana,
        "--document",
        file.to_str().unwrap(),
    ]);
    let v = acta.json(&["did", "resolve", &dana]);
    assert_eq!(
        v["didDocument"]["service"][0]["serviceEndpoint"],
        "https://dana.example.org"
    );
    assert_eq!(
        v["didDocument"]["controller"][1],
        acta.json(&["did", "resolve", "dana-phone"])["didDocument"]["id"]
    );
    // Her earlier version is still there to resolve.
    let first = v["didDocumentMetadata"]["createdHeight"].as_u64().unwrap();
    let old = acta.json(&["did", "resolve", &dana, "--version-id", &first.to_string()]);
    assert!(old["didDocument"].get("service").is_none(), "{old}");
    // The words of the lost key still import as it (kept on paper, they restore it).
    let out = acta.run_with(&["keys", "import", "dana-old"], PASS, &words);
    assert!(out.status.success(), "{out:?}");

    // The device consents to its operator, who registers it; it attests 30 readings.
    acta.ok(&[
        "did",
        "update",
        "--key",
        "sensor1",
        "--controller",
        "operator",
    ]);
    let doc = acta.json(&["did", "show", "sensor1"]);
    let methods = doc["didDocument"]["verificationMethod"].as_array().unwrap();
    assert_eq!(methods.len(), 1, "{doc}");
    assert!(
        methods[0]["id"]
            .as_str()
            .unwrap()
            .starts_with(doc["didDocument"]["id"].as_str().unwrap()),
        "{doc}"
    );
    let err = acta.fails(&["did", "update", "--key", "sensor1"]);
    assert!(err.contains("nothing to change"), "{err}");
    acta.ok(&[
        "device",
        "register",
        "--key",
        "operator",
        "--device",
        "sensor1",
        "--kind",
        "air.pm25",
        "--unit",
        "ug/m3",
        "--location",
        "u2yhvd",
        "--stream",
        "pm25-1min",
    ]);
    let readings = dir.path().join("readings.jsonl");
    let lines: Vec<String> = (0..30u64)
        .map(|i| {
            format!(
                "{{\"t\":{},\"pm25\":{}}}",
                1_700_000_000_000 + i * 1000,
                10 + i % 7
            )
        })
        .collect();
    std::fs::write(&readings, lines.join("\n") + "\n").unwrap();
    let bundles = dir.path().join("bundles");
    let out = acta.json(&[
        "attest",
        "submit",
        readings.to_str().unwrap(),
        "--key",
        "sensor1",
        "--batch-size",
        "10",
        "--bundles",
        bundles.to_str().unwrap(),
    ]);
    assert_eq!(out["batches"].as_array().map(Vec::len), Some(3), "{out}");
    acta.ok(&[
        "device",
        "relocate",
        "--key",
        "operator",
        "--device",
        "sensor1",
        "--location",
        "u2yhve",
    ]);
    let device = acta.json(&["device", "show", "sensor1"]);
    assert_eq!(device["device"]["location"], "u2yhve", "{device}");
    assert_eq!(device["device"]["next_sequence"], 3, "{device}");
    // The same readings again: all committed already; a bundle lost is written again.
    let dir_of_bundles = Path::new(out["bundles"].as_str().unwrap()).to_path_buf();
    std::fs::remove_file(dir_of_bundles.join("2.json")).unwrap();
    let again = acta.json(&[
        "attest",
        "submit",
        readings.to_str().unwrap(),
        "--key",
        "sensor1",
        "--bundles",
        bundles.to_str().unwrap(),
    ]);
    assert_eq!(again["already_committed"], 3, "{again}");
    assert_eq!(again["regenerated"], serde_json::json!([2]), "{again}");
    assert!(dir_of_bundles.join("2.json").exists());
    // Readings before the device's last batch that are not in it are refused.
    let other = dir.path().join("other.jsonl");
    std::fs::write(&other, "{\"t\":1700000005500,\"pm25\":1}\n").unwrap();
    let err = acta.fails(&[
        "attest",
        "submit",
        other.to_str().unwrap(),
        "--key",
        "sensor1",
    ]);
    assert!(
        err.contains("line 1: field \"t\"") && err.contains("not in this file"),
        "{err}"
    );
    let err = acta.fails(&[
        "--no-wait",
        "attest",
        "submit",
        readings.to_str().unwrap(),
        "--key",
        "sensor1",
    ]);
    assert!(err.contains("drop --no-wait"), "{err}");
    // A malformed readings file names the line and the field, and changes nothing.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"t\":1700000100000}\n{\"pm25\":3}\n").unwrap();
    let err = acta.fails(&[
        "attest",
        "submit",
        bad.to_str().unwrap(),
        "--key",
        "sensor1",
    ]);
    assert!(err.contains("line 2: field \"t\" is missing"), "{err}");
    let device = acta.json(&["device", "show", "sensor1"]);
    assert_eq!(device["device"]["next_sequence"], 3, "{device}");

    // Interrupted: two validators freeze, the client gives up waiting for batch 3, which
    // commits once they are back; the same command again finds it, writes its bundle and
    // goes on with batch 4. `attest bundle` writes a batch's bundle again from the file.
    let more = dir.path().join("more.jsonl");
    let mut longer = lines.clone();
    longer.extend((30..50u64).map(|i| {
        format!(
            "{{\"t\":{},\"pm25\":{}}}",
            1_700_000_000_000 + i * 1000,
            10 + i % 7
        )
    }));
    std::fs::write(&more, longer.join("\n") + "\n").unwrap();
    let submit_more = || {
        acta.run(&[
            "attest",
            "submit",
            more.to_str().unwrap(),
            "--key",
            "sensor1",
            "--batch-size",
            "10",
            "--bundles",
            bundles.to_str().unwrap(),
            "--output",
            "json",
        ])
    };
    net.pause(2).unwrap();
    net.pause(3).unwrap();
    let out_paused = submit_more();
    net.resume(2).unwrap();
    net.resume(3).unwrap();
    let err = String::from_utf8_lossy(&out_paused.stderr);
    assert_eq!(out_paused.status.code(), Some(1), "{err}");
    assert!(
        err.contains("batch 3 (lines 31..40) is not confirmed")
            && err.contains("lines 1..30 are committed")
            && err.contains("run the same command again"),
        "{err}"
    );
    let deadline = std::time::Instant::now() + WAIT;
    while acta.json(&["device", "show", "sensor1"])["device"]["next_sequence"] != 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "batch 3 never committed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out_resumed = submit_more();
    let resumed: Value = serde_json::from_slice(&out_resumed.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out_resumed.stderr)));
    assert_eq!(resumed["already_committed"], 4, "{resumed}");
    assert_eq!(resumed["regenerated"], serde_json::json!([3]), "{resumed}");
    assert_eq!(resumed["batches"][0]["sequence"], 4, "{resumed}");
    assert_eq!(
        resumed["batches"].as_array().map(Vec::len),
        Some(1),
        "{resumed}"
    );
    let note = String::from_utf8_lossy(&out_resumed.stderr);
    assert!(
        note.contains("lines 1..40 of") && note.contains("batches 0..=3"),
        "{note}"
    );
    for seq in 3..5 {
        let file = dir_of_bundles.join(format!("{seq}.json"));
        let v = acta.json(&[
            "audit",
            "verify",
            file.to_str().unwrap(),
            "--genesis",
            genesis.to_str().unwrap(),
        ]);
        assert_eq!(v["verified"], true, "{v}");
    }
    std::fs::remove_file(dir_of_bundles.join("3.json")).unwrap();
    let v = acta.json(&[
        "attest",
        "bundle",
        "sensor1",
        "3",
        "--file",
        more.to_str().unwrap(),
        "--bundles",
        bundles.to_str().unwrap(),
    ]);
    assert_eq!(
        (v["first_line"].as_u64(), v["last_line"].as_u64()),
        (Some(31), Some(40)),
        "{v}"
    );
    let err = acta.fails(&[
        "attest",
        "bundle",
        "sensor1",
        "4",
        "--file",
        readings.to_str().unwrap(),
    ]);
    assert!(
        err.contains("not the file the batch was attested from"),
        "{err}"
    );

    // The auditor: reading 3 of batch 1 (line 14), offline against the genesis, picked out
    // of the batch's one bundle file.
    let bundle = Path::new(out["bundles"].as_str().unwrap()).join("1.json");
    assert_eq!(
        out["batches"][1]["bundle"],
        Value::from(bundle.to_str().unwrap())
    );
    let verified = acta.json(&[
        "audit",
        "verify",
        bundle.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
        "--reading",
        "3",
    ]);
    assert_eq!(verified["verified"], true, "{verified}");
    assert_eq!(verified["readings"].as_array().map(Vec::len), Some(1));
    assert_eq!(verified["readings"][0]["sequence"], 1);
    assert_eq!(verified["readings"][0]["index"], 3);
    assert_eq!(verified["readings"][0]["bytes"], lines[13].as_str());
    // The whole batch, and the batch's record and device shown beside the proof.
    let verified = acta.json(&[
        "audit",
        "verify",
        bundle.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
    ]);
    assert_eq!(verified["readings"].as_array().map(Vec::len), Some(10));
    assert_eq!(verified["readings"][9]["bytes"], lines[19].as_str());
    assert!(verified["fields"].as_u64().unwrap() > 10, "{verified}");
    let err = acta.fails(&[
        "audit",
        "verify",
        bundle.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
        "--reading",
        "42",
    ]);
    assert!(err.contains("holds no reading 42"), "{err}");
    // Any single byte changed (blanks aside: JSON ignores them) fails...
    let anchor =
        TrustAnchor::from_genesis_json(&std::fs::read_to_string(&genesis).unwrap()).unwrap();
    let bytes = std::fs::read(&bundle).unwrap();
    assert_eq!(verify_bytes(&bytes, &anchor), Ok(()));
    let mut tried = 0;
    for i in 0..bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            continue;
        }
        let mut forged = bytes.clone();
        forged[i] = changed(bytes[i]);
        assert!(
            verify_bytes(&forged, &anchor).is_err(),
            "byte {i} ({:?} -> {:?}) changed and the bundle still verifies",
            bytes[i] as char,
            forged[i] as char
        );
        tried += 1;
    }
    assert!(tried > 1000, "{tried}");
    // ...and the command says why: a sample through the binary.
    let forged_path = dir.path().join("forged.json");
    let step = bytes.len() / 25;
    for i in (0..bytes.len()).step_by(step) {
        if bytes[i].is_ascii_whitespace() {
            continue;
        }
        let mut forged = bytes.clone();
        forged[i] = changed(bytes[i]);
        std::fs::write(&forged_path, &forged).unwrap();
        let err = acta.fails(&[
            "audit",
            "verify",
            forged_path.to_str().unwrap(),
            "--genesis",
            genesis.to_str().unwrap(),
        ]);
        assert!(
            err.contains("does not verify at step")
                || err.contains("not JSON")
                || err.contains("not a proof bundle"),
            "byte {i}: {err}"
        );
    }

    // A budget round with the Method of Equal Shares.
    let opened = acta.ok(&[
        "budget",
        "open",
        "--key",
        "office",
        "--title",
        "Old Town green budget",
        "--district",
        "old-town",
        "--budget",
        "50000",
        "--currency",
        "pln",
        "--proposals-from",
        "+1s",
        // Wide enough windows for three proposals and two ballots, each a separate
        // process that unlocks its key (Argon2id) and waits for its block, on a loaded
        // two-core machine.
        "--voting-from",
        "+12s",
        "--voting-until",
        "+25s",
        "--ballot",
        "approval:1:2",
        "--rule",
        "mes",
    ]);
    assert!(
        opened.contains("budget_round_opened: round 0, district old-town"),
        "the new round's number is printed: {opened}"
    );
    let list = acta.ok(&["budget", "list"]);
    assert!(
        list.contains("Old Town green budget") && list.contains("PLN 50,000"),
        "{list}"
    );
    let round = acta.json(&["budget", "show", "0"]);
    let spec = &round["round"]["spec"];
    let time = |k: &str| Timestamp(spec[k].as_u64().unwrap_or_else(|| panic!("{k}: {round}")));
    assert_eq!(
        round["dates"]["closes_at"],
        time("closes_at").rfc3339(),
        "{round}"
    );
    let shown = acta.ok(&["budget", "show", "0"]);
    assert!(
        (shown.contains("announced, ") || shown.contains("proposals, "))
            && shown.contains(" left")
            && shown.contains("voting until"),
        "the phase now, its time left and the dates: {shown}"
    );
    wait_for_time(&net, time("proposals_from"));
    for (key, title, cost) in [
        ("alice", "Trees on Market Street", "30000"),
        ("alice", "Bike racks", "8000"),
        ("bob", "Playground repair", "25000"),
    ] {
        let out = acta.ok(&[
            "budget", "propose", "0", "--key", key, "--title", title, "--cost", cost,
        ]);
        assert!(
            out.contains("budget_project_proposed: round 0, project"),
            "{out}"
        );
    }
    wait_for_time(&net, time("voting_from"));
    acta.ok(&["budget", "vote", "0", "--key", "alice", "--projects", "0,1"]);
    acta.ok(&["budget", "vote", "0", "--key", "bob", "--projects", "1,2"]);
    let err = acta.fails(&[
        "budget",
        "vote",
        "0",
        "--key",
        "operator",
        "--projects",
        "1",
    ]);
    assert!(
        err.contains("(unauthorized)"),
        "a non-resident's ballot: {err}"
    );
    // Closed, the round is tallied off the consensus path and the result lands
    // LOCAL_TALLY_DELAY heights after the block that closed it.
    wait_for_time(&net, time("closes_at"));
    let round = acta.json(&["budget", "show", "0"]);
    assert!(
        round["phase"] == "tallying" || round["phase"] == "closed",
        "{round}"
    );
    wait_for_tally(&acta, 0);
    let result = acta.json(&["budget", "results", "0"]);
    assert!(result["result"]["selected"].is_array(), "{result}");
    let text = acta.ok(&["budget", "results", "0"]);
    assert!(
        text.contains(" selected, ") && text.contains("of PLN 50,000 spent"),
        "amounts as people read them: {text}"
    );
    let pb = dir.path().join("round0.pb");
    acta.ok(&["budget", "export", "0", "--out", pb.to_str().unwrap()]);
    let tally = acta.json(&[
        "budget",
        "tally",
        pb.to_str().unwrap(),
        "--rule",
        "mes",
        "--round",
        "0",
    ]);
    assert_eq!(tally["matches_round"], 0, "{tally}");
    let stored: Vec<String> = result["result"]["selected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.to_string())
        .collect();
    assert_eq!(tally["selection_order"], serde_json::json!(stored));
    // The auditor's replay trusts only the genesis: every ballot is proven against the
    // root the round tallied, and the file it writes is the node's export.
    let proven_pb = dir.path().join("proven.pb");
    let audit = acta.json(&[
        "audit",
        "tally",
        "0",
        "--genesis",
        genesis.to_str().unwrap(),
        "--out",
        proven_pb.to_str().unwrap(),
    ]);
    assert_eq!(audit["matches_round"], 0, "{audit}");
    assert_eq!(audit["voters"], 2, "{audit}");
    assert_eq!(
        std::fs::read(&proven_pb).unwrap(),
        std::fs::read(&pb).unwrap()
    );
    // A resident's receipt verifies offline; an edited ballot in it does not.
    let receipt = dir.path().join("receipt.json");
    acta.ok(&[
        "budget",
        "receipt",
        "0",
        "--voter",
        "alice",
        "--out",
        receipt.to_str().unwrap(),
    ]);
    let verified = acta.json(&[
        "audit",
        "verify",
        receipt.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
    ]);
    assert_eq!(verified["verified"], true, "{verified}");
    assert!(
        verified["steps"]
            .to_string()
            .contains("ballot 0 is one of the 2 that round 0 tallied"),
        "{verified}"
    );
    // A trust pin: the set of a height, verified from the genesis, in place of the genesis.
    let receipt_height = verified["height"].as_u64().unwrap();
    assert!(receipt_height > 1, "{verified}");
    let pin_path = dir.path().join("trust.json");
    let pinned = acta.json(&[
        "audit",
        "pin",
        "--genesis",
        genesis.to_str().unwrap(),
        "--height",
        &receipt_height.to_string(),
        "--out",
        pin_path.to_str().unwrap(),
    ]);
    let pin = &pinned["pin"];
    assert_eq!(pin["format"], "acta-trust-pin/1", "{pinned}");
    assert_eq!(pin["height"], receipt_height, "{pinned}");
    assert_eq!(pin["block"], verified["block"], "{pinned}");
    let verified = acta.json(&[
        "audit",
        "verify",
        receipt.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
        "--trust",
        pin_path.to_str().unwrap(),
    ]);
    assert_eq!(verified["verified"], true, "{verified}");
    assert!(
        verified["steps"]
            .to_string()
            .contains(&format!("trust pinned at height {receipt_height}")),
        "{verified}"
    );
    // Height 1 is below that pin: it vouches for nothing before it.
    let err = acta.fails(&[
        "audit",
        "pin",
        "--genesis",
        genesis.to_str().unwrap(),
        "--height",
        "1",
        "--trust",
        pin_path.to_str().unwrap(),
    ]);
    assert!(
        err.contains("at step \"trust\"") && err.contains("below the pinned height"),
        "{err}"
    );
    // Pinned at height 1 from the genesis, the receipt verifies from there.
    let first_pin = dir.path().join("trust-1.json");
    acta.ok(&[
        "audit",
        "pin",
        "--genesis",
        genesis.to_str().unwrap(),
        "--height",
        "1",
        "--out",
        first_pin.to_str().unwrap(),
    ]);
    let verified = acta.json(&[
        "audit",
        "verify",
        receipt.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
        "--trust",
        first_pin.to_str().unwrap(),
    ]);
    assert_eq!(verified["verified"], true, "{verified}");
    assert!(
        verified["steps"]
            .to_string()
            .contains("trust pinned at height 1 "),
        "{verified}"
    );
    // A pin edited by hand is refused before anything is checked.
    let mut edited_pin: Value =
        serde_json::from_slice(&std::fs::read(&first_pin).unwrap()).unwrap();
    edited_pin["validators"][0]["power"] = Value::from(1_000_000);
    std::fs::write(&first_pin, edited_pin.to_string()).unwrap();
    let err = acta.fails(&[
        "audit",
        "verify",
        receipt.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
        "--trust",
        first_pin.to_str().unwrap(),
    ]);
    assert!(err.contains("field validators_hash"), "{err}");
    let mut forged: Value = serde_json::from_slice(&std::fs::read(&receipt).unwrap()).unwrap();
    // Alice's ballot as if it had approved projects 0 and 2: not a tallied ballot.
    let ballot = forged["proof"]["ballots"][0]["ballot"]
        .as_str()
        .unwrap()
        .to_string();
    // voter (16 bytes), the number of projects (4), then projects 0 and 1 (4 each).
    assert_eq!(&ballot[32..56], "020000000000000001000000", "{ballot}");
    let edited = format!("{}020000000000000002000000{}", &ballot[..32], &ballot[56..]);
    assert_ne!(edited, ballot, "{ballot}");
    forged["proof"]["ballots"][0]["ballot"] = Value::from(edited);
    std::fs::write(&receipt, forged.to_string()).unwrap();
    let err = acta.fails(&[
        "audit",
        "verify",
        receipt.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
    ]);
    assert!(
        err.contains("at step \"ballots\"") && err.contains("not among those round 0 tallied"),
        "{err}"
    );
    let err = acta.fails(&["budget", "receipt", "0", "--voter", "operator"]);
    assert!(err.contains("cast no ballot in round 0"), "{err}");
    // The wrong rule does not match the stored result.
    let err = acta.fails(&[
        "budget",
        "tally",
        pb.to_str().unwrap(),
        "--rule",
        "greedy",
        "--round",
        "0",
    ]);
    assert!(err.contains("was tallied with mes"), "{err}");

    secret_round(&acta, &net, &genesis, dir.path());

    // The council cancels a round the office opened by mistake: it is never tallied.
    let opened = acta.ok(&[
        "budget",
        "open",
        "--key",
        "office",
        "--title",
        "Opened by mistake",
        "--district",
        "old-town",
        "--budget",
        "1000",
        "--currency",
        "pln",
        "--proposals-from",
        "+1d",
        "--voting-from",
        "+2d",
        "--voting-until",
        "+3d",
        "--ballot",
        "approval:1:1",
        "--rule",
        "greedy",
    ]);
    let mistaken = opened
        .split("budget_round_opened: round ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("{opened}"))
        .to_string();
    let proposal = acta.json(&["council", "list"])["proposals"]
        .as_array()
        .unwrap()
        .len()
        .to_string();
    // Final: without --yes nothing is sent.
    let err = acta.fails(&[
        "council",
        "propose",
        "--key",
        "member0",
        "cancel-round",
        &mistaken,
    ]);
    assert!(err.contains("cannot be undone: add --yes"), "{err}");
    acta.ok(&[
        "council",
        "propose",
        "--key",
        "member0",
        "cancel-round",
        &mistaken,
        "--yes",
    ]);
    acta.ok(&["council", "approve", "--key", "member1", &proposal, "--yes"]);
    let shown = acta.ok(&["budget", "show", &mistaken]);
    assert!(
        shown.contains("cancelled by the council at height"),
        "{shown}"
    );
    let err = acta.fails(&["budget", "results", &mistaken]);
    assert!(err.contains("it is never tallied"), "{err}");

    // Checkpoints: one saved, opened offline, used as the trust root of a proven answer,
    // and a later one shown to extend it.
    let cp1 = dir.path().join("cp1.txt");
    acta.ok(&["chain", "checkpoint", "--out", cp1.to_str().unwrap()]);
    let opened = acta.json(&[
        "audit",
        "checkpoint",
        cp1.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
    ]);
    let size = opened["size"].as_u64().unwrap();
    assert!(
        opened["cosigned_power"].as_u64().unwrap() * 3
            > opened["total_power"].as_u64().unwrap() * 2,
        "{opened}"
    );
    let (code, council) = acta_node::devnet::get(
        &net.nodes[1].rpc,
        &format!("/council?prove=true&height={size}&checkpoint={size}"),
    )
    .unwrap();
    assert_eq!(code, 200, "{council}");
    let council_file = dir.path().join("council.json");
    std::fs::write(&council_file, council.to_string()).unwrap();
    let verified = acta.json(&[
        "audit",
        "verify",
        council_file.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
        "--checkpoint",
        cp1.to_str().unwrap(),
    ]);
    assert!(
        verified["steps"].to_string().contains("of checkpoint"),
        "{verified}"
    );
    // With a pin, the note opens against the pinned set (the same keys here: no change of
    // set in this city), and the report says which set it trusted.
    let opened = acta.json(&[
        "audit",
        "checkpoint",
        cp1.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
        "--trust",
        pin_path.to_str().unwrap(),
    ]);
    assert_eq!(
        opened["trusted"]["pin"]["height"], receipt_height,
        "{opened}"
    );
    let verified = acta.json(&[
        "audit",
        "verify",
        council_file.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
        "--checkpoint",
        cp1.to_str().unwrap(),
        "--trust",
        pin_path.to_str().unwrap(),
    ]);
    assert_eq!(verified["verified"], true, "{verified}");
    wait_for_height(
        &net,
        size + acta_ledger::checkpoint::CHECKPOINT_INTERVAL + 1,
    );
    let cp2 = dir.path().join("cp2.txt");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        acta.ok(&["chain", "checkpoint", "--out", cp2.to_str().unwrap()]);
        if std::fs::read_to_string(&cp2).unwrap() != std::fs::read_to_string(&cp1).unwrap() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no later checkpoint");
        std::thread::sleep(Duration::from_millis(200));
    }
    let extends = acta.json(&[
        "audit",
        "checkpoint",
        cp2.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
        "--older",
        cp1.to_str().unwrap(),
    ]);
    assert_eq!(extends["extends"], size, "{extends}");
    // An edited checkpoint does not open.
    let edited = std::fs::read_to_string(&cp1).unwrap().replacen(
        &format!("\n{size}\n"),
        &format!("\n{}\n", size + 1),
        1,
    );
    std::fs::write(&cp2, edited).unwrap();
    let err = acta.fails(&[
        "audit",
        "checkpoint",
        cp2.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
    ]);
    assert!(err.contains("does not verify"), "{err}");

    // The chain reads.
    let status = acta.json(&["chain", "status"]);
    assert_eq!(status["chain_id"], "acta-e2e");
    let block = acta.json(&["chain", "block", "1"]);
    assert_eq!(block["block"]["header"]["height"], 1, "{block}");
    let validators = acta.json(&["chain", "validators"]);
    assert!(validators.to_string().contains("power"), "{validators}");
    let text = acta.ok(&["chain", "status"]);
    assert!(
        text.contains("chain_id") && text.contains("acta-e2e"),
        "{text}"
    );

    let script = acta.ok(&["completions", "bash"]);
    assert!(
        script.contains("attest") && script.contains("--output"),
        "{script}"
    );

    python_client(&net, dir.path());
    net.stop_all().unwrap();
}

/// Runs the Python of `docs/wire-format.md` section 13.14 (the golden checks included),
/// then builds, signs and submits a DID creation with it alone.
/// A round with secret ballots: the registrar makes its key, residents ask for tokens and
/// vote from one-time ballot keys (one votes again), the auditor replays the tally and
/// checks every ballot's token, and nothing published names a resident.
fn secret_round(acta: &Acta, net: &LocalNet, genesis: &Path, dir: &Path) {
    acta.ok(&["budget", "registrar", "new", "round1", "--bits", "2048"]);
    acta.ok(&["budget", "registrar", "new", "other", "--bits", "2048"]);
    let shown = acta.json(&["budget", "registrar", "show", "round1"]);
    assert_eq!(shown["bits"], 2048, "{shown}");
    let opened = acta.ok(&[
        "budget",
        "open",
        "--key",
        "office",
        "--title",
        "Old Town secret ballot",
        "--district",
        "old-town",
        "--budget",
        "40000",
        "--currency",
        "PLN",
        "--proposals-from",
        "+1s",
        // Wide windows: some twenty wallet runs, each unlocking a key (Argon2id) and most
        // waiting for a block, happen before the close.
        "--voting-from",
        "+15s",
        "--closes-at",
        "+45s",
        "--rule",
        "greedy",
        "--secret",
        "--registrar",
        "registrar",
        "--registrar-key",
        "round1",
    ]);
    assert!(opened.contains("budget_round_opened: round 1"), "{opened}");
    // A registrar key serves one round.
    let err = acta.fails(&[
        "budget",
        "open",
        "--key",
        "office",
        "--title",
        "Again",
        "--district",
        "old-town",
        "--budget",
        "1000",
        "--currency",
        "PLN",
        "--proposals-from",
        "+2s",
        "--voting-from",
        "+4s",
        "--closes-at",
        "+6s",
        "--secret",
        "--registrar",
        "registrar",
        "--registrar-key",
        "round1",
    ]);
    assert!(err.contains("(already_exists)"), "{err}");
    let round = acta.json(&["budget", "show", "1"]);
    let spec = &round["round"]["spec"];
    let time = |k: &str| Timestamp(spec[k].as_u64().unwrap_or_else(|| panic!("{k}: {round}")));
    // Residents ask for their tokens; the sensor operator, not a resident, is refused.
    acta.ok(&["budget", "token", "request", "1", "--key", "alice"]);
    acta.ok(&["budget", "token", "request", "1", "--key", "bob"]);
    let err = acta.fails(&["budget", "token", "request", "1", "--key", "alice"]);
    assert!(err.contains("already asked"), "{err}");
    let err = acta.fails(&["budget", "token", "request", "1", "--key", "operator"]);
    assert!(err.contains("(unauthorized)"), "{err}");
    // Before the registrar answers, a vote says so.
    wait_for_time(net, time("proposals_from"));
    for (key, title, cost) in [
        ("alice", "Street lights", "20000"),
        ("bob", "Pond clean-up", "25000"),
    ] {
        acta.ok(&[
            "budget", "propose", "1", "--key", key, "--title", title, "--cost", cost,
        ]);
    }
    let shown = acta.json(&["budget", "token", "show", "1", "--voter", "alice"]);
    assert!(shown["request"]["blind_signature"].is_null(), "{shown}");
    let err = acta.fails(&["budget", "vote", "1", "--key", "alice", "--projects", "0"]);
    assert!(err.contains("not yet answered"), "{err}");
    // The registrar answers every recorded request with the round's key, not another.
    let err = acta.fails(&[
        "budget",
        "token",
        "issue",
        "1",
        "--key",
        "registrar",
        "--registrar-key",
        "other",
        "--genesis",
        genesis.to_str().unwrap(),
    ]);
    assert!(err.contains("is not round 1's"), "{err}");
    // The registrar checks the requests from a trust pin it made, in place of the genesis
    // set (ADR 0028): the requests are proven at the latest height, above the pin.
    let pin = dir.join("registrar-trust.json");
    acta.json(&[
        "audit",
        "pin",
        "--genesis",
        genesis.to_str().unwrap(),
        "--out",
        pin.to_str().unwrap(),
    ]);
    let issued = acta.json(&[
        "budget",
        "token",
        "issue",
        "1",
        "--key",
        "registrar",
        "--registrar-key",
        "round1",
        "--genesis",
        genesis.to_str().unwrap(),
        "--trust",
        pin.to_str().unwrap(),
    ]);
    assert_eq!(issued["issued_now"], 2, "{issued}");
    let round = acta.json(&["budget", "show", "1"]);
    assert_eq!(round["tokens"]["issued"], 2, "{round}");
    let list = acta.ok(&["budget", "list"]);
    assert!(
        list.contains("secret, 2 tokens") && list.contains("public"),
        "{list}"
    );
    wait_for_time(net, time("voting_from"));
    // Bob keeps his token first, then votes through another node, which is never asked
    // about him.
    let fetched = acta.json(&["budget", "token", "fetch", "1", "--key", "bob"]);
    assert_eq!(fetched["token"], "kept", "{fetched}");
    let elsewhere = Acta {
        keystore: acta.keystore.clone(),
        node: format!("http://{}", net.nodes[2].rpc),
        cwd: acta.cwd.clone(),
    };
    let cast = |key: &str, projects: &str| {
        let via = if key == "bob" { &elsewhere } else { acta };
        let out = via.run(&["budget", "vote", "1", "--key", key, "--projects", projects]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        // The ballot key's DID, printed for the receipt.
        let at = stderr.find("from ballot key ").expect("ballot key printed") + 16;
        stderr[at..].split_whitespace().next().unwrap().to_string()
    };
    let alice_ballot = cast("alice", "0");
    let bob_ballot = cast("bob", "1");
    // Alice changes her mind: the same ballot key replaces her ballot.
    assert_eq!(cast("alice", "0,1"), alice_ballot);
    assert_ne!(alice_ballot, bob_ballot);
    let err = acta.fails(&[
        "budget",
        "vote",
        "1",
        "--key",
        "operator",
        "--projects",
        "0",
    ]);
    assert!(err.contains("ask for a token first"), "{err}");
    let round = acta.json(&["budget", "show", "1"]);
    assert_eq!(round["round"]["voters"], 2, "{round}");
    wait_for_time(net, time("closes_at"));
    wait_for_tally(acta, 1);
    // The auditor replays the tally and checks each ballot's token.
    let audit = acta.json(&[
        "audit",
        "tally",
        "1",
        "--genesis",
        genesis.to_str().unwrap(),
    ]);
    assert_eq!(audit["matches_round"], 1, "{audit}");
    assert_eq!(audit["tokens_checked"], 2, "{audit}");
    assert_eq!(audit["tokens_issued"], 2, "{audit}");
    // No ballot names a resident, in the export or in the API (proposers are public).
    let pb = dir.join("round1.pb");
    acta.ok(&["budget", "export", "1", "--out", pb.to_str().unwrap()]);
    let export = std::fs::read_to_string(&pb).unwrap();
    assert!(!export.contains("did:"), "{export}");
    let ballots = acta_node::devnet::get(&net.nodes[0].rpc, "/budget/rounds/1/ballots")
        .unwrap()
        .1;
    let residents: Vec<String> = ["alice", "bob"]
        .iter()
        .map(|k| {
            acta.json(&["did", "show", k])["didDocument"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let cast = ballots["ballots"].to_string();
    assert_eq!(
        ballots["ballots"].as_array().map(Vec::len),
        Some(2),
        "{ballots}"
    );
    for r in &residents {
        assert!(!cast.contains(r.as_str()), "{ballots}");
    }
    // A resident's receipt names its ballot key and verifies offline.
    let receipt = dir.join("receipt1.json");
    acta.ok(&[
        "budget",
        "receipt",
        "1",
        "--voter",
        &alice_ballot,
        "--out",
        receipt.to_str().unwrap(),
    ]);
    let verified = acta.json(&[
        "audit",
        "verify",
        receipt.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
    ]);
    assert_eq!(verified["verified"], true, "{verified}");
}

fn python_client(net: &LocalNet, dir: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let doc = std::fs::read_to_string(root.join("docs/wire-format.md")).unwrap();
    let start = doc.find("### 13.14").expect("section 13.14");
    let end = start + doc[start..].find("\n## 14.").expect("section 14");
    let mut code = String::new();
    for (i, part) in doc[start..end].split("```").enumerate() {
        if i % 2 == 1 {
            code.push_str(part.strip_prefix("python").expect("python blocks"));
            code.push('\n');
        }
    }
    code.push_str(
        r#"
import json, os, sys, time, urllib.request
node = sys.argv[1]
status = json.load(urllib.request.urlopen(node + "/status"))
seed = os.urandom(32)
secret = Ed25519PrivateKey.from_private_bytes(seed)
signer = secret.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
valid_until = int(time.time() * 1000) + 10 * 60 * 1000     # ten minutes from now
tx, tx_id = build_tx(secret.sign, signer, status["chain_id"], 0, valid_until,
                     call_create_did())
request = urllib.request.Request(node + "/txs?mode=commit",
    data=json.dumps({"tx": tx.hex()}).encode(),
    headers={"Content-Type": "application/json"})
answer = json.load(urllib.request.urlopen(request))
assert answer["status"] == "committed", answer
assert answer["hash"] == tx_id.hex(), answer
print(json.dumps({"did": did(signer), "height": answer["height"]}))
"#,
    );
    let script = dir.join("client.py");
    std::fs::write(&script, code).unwrap();
    let mut python = Command::new("python3");
    if let Some(path) = std::env::var_os("ACTA_PYTHONPATH") {
        python.env("PYTHONPATH", path);
    }
    let out = python
        .arg(&script)
        .arg(format!("http://{}", net.nodes[2].rpc))
        .current_dir(&root)
        .output()
        .expect("python3 runs (scripts/setup installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Python client failed (it needs the `cryptography` package, which scripts/setup installs):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("all golden checks pass"), "{stdout}");
    let last: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let did = last["did"].as_str().unwrap();
    // The node resolves the DID the Python client computed.
    let (code, v) = acta_node::devnet::get(&net.nodes[0].rpc, &format!("/dids/{did}")).unwrap();
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["didDocument"]["id"], did);
}

/// The Python of docs/wire-format.md section 18 checks the golden credential, then a
/// credential this test issued, with the issuer's key as its DID document gives it.
fn python_credential(dir: &Path, credential: &Path, issuer_multibase: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let doc = std::fs::read_to_string(root.join("docs/wire-format.md")).unwrap();
    let start = doc.find("## 18. Credential").expect("section 18");
    let block = doc[start..].split("```").nth(1).expect("a code block");
    let mut code = block.strip_prefix("python").expect("python").to_string();
    code.push_str(
        r#"
import sys
issued = json.load(open(sys.argv[1]))
key = b58decode(sys.argv[2][1:])[2:]      # multikey: z, then 0xed01 and the key
verify(issued, key)
print(document_hash(issued).hex())
"#,
    );
    let script = dir.join("credential.py");
    std::fs::write(&script, code).unwrap();
    let mut python = Command::new("python3");
    if let Some(path) = std::env::var_os("ACTA_PYTHONPATH") {
        python.env("PYTHONPATH", path);
    }
    let out = python
        .arg(&script)
        .arg(credential)
        .arg(issuer_multibase)
        .current_dir(&root)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), document_id(credential));
}
