//! The residents' page in a real browser: headless Chromium, driven through chromedriver
//! (WebDriver), against the demo city on four local validators. It follows a round to its
//! result, shows a sensor's batches, verifies a reading's bundle in the page (and sees a
//! forged one fail), opens a resident's key file in the page, votes, and verifies the
//! ballot's receipt in the page; in a secret round it asks for a ballot token, keeps the
//! sealed ballot file, and votes from the one-time ballot key once the registrar answered;
//! and it checks that no request carried key material. Screenshots
//! go to `target/tmp/web-page/` (CARGO_TARGET_TMPDIR).
//!
//! Needs Debian's `chromium` and `chromium-driver` (scripts/setup installs them).

#![allow(clippy::unwrap_used)]

use std::{
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use acta_ledger::{
    bundle::{TrustAnchor, TrustPin},
    keystore::{BallotSecret, Keystore, SecretKind},
};
use acta_testnet::demo::{self, City, PAGE_PASSPHRASE, PAGE_ROUND, PAGE_SECRET_ROUND};
use anyhow::{anyhow, bail, ensure, Context, Result};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// The passphrase the resident seals the secret round's ballot file with.
const BALLOT_PASSPHRASE: &str = "shade and water 2027";

/// How long the page may take to show something (the first wasm compile, argon2 in wasm).
const PATIENCE: Duration = Duration::from_secs(60);

/// chromedriver, stopped when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_driver() -> Result<(Driver, u16)> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting chromedriver (scripts/setup installs chromium and chromium-driver)")?;
    let driver = Driver(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        ensure!(
            Instant::now() < deadline,
            "chromedriver did not listen within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((driver, port))
}

/// Waits for a finished download into `dir` whose name starts with `prefix`; its text.
async fn downloaded(dir: &Path, prefix: &str) -> Result<String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // The file may appear before its bytes do: finished once it is whole JSON.
            if name.starts_with(prefix) && name.ends_with(".json") {
                let text = std::fs::read_to_string(entry.path())?;
                if serde_json::from_str::<Value>(&text).is_ok() {
                    return Ok(text);
                }
            }
        }
        ensure!(
            Instant::now() < deadline,
            "no {prefix}*.json was downloaded into {} within {PATIENCE:?}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn browser(port: u16, profile: &Path, downloads: &Path) -> Result<Client> {
    let binary = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .context("no chromium binary (scripts/setup installs it)")?;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": binary,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--disable-background-networking",
                "--disable-extensions", "--disable-sync", "--no-first-run",
                "--disable-default-apps", format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {
                "download.default_directory": downloads.display().to_string(),
                "download.prompt_for_download": false,
            },
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await?;
    Ok(client)
}

/// Waits for an element matching `css` whose text satisfies `want`; its text.
async fn wait_text(c: &Client, css: &str, want: impl Fn(&str) -> bool) -> Result<String> {
    let deadline = Instant::now() + PATIENCE;
    let mut last = String::new();
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if let Ok(text) = e.text().await {
                if want(&text) {
                    return Ok(text);
                }
                last = text;
            }
        }
        if Instant::now() > deadline {
            bail!("{css} did not show what was expected within {PATIENCE:?}; it shows {last:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn go(c: &Client, hash: &str) -> Result<()> {
    // A change of the fragment only: the page stays loaded (and its request log with it).
    c.execute("location.hash = arguments[0];", vec![json!(hash)])
        .await?;
    Ok(())
}

async fn shot(c: &Client, dir: &Path, name: &str) -> Result<()> {
    std::fs::write(dir.join(name), c.screenshot().await?)?;
    Ok(())
}

async fn type_into(c: &Client, css: &str, text: &str) -> Result<()> {
    c.wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await?
        .send_keys(text)
        .await?;
    Ok(())
}

async fn click(c: &Client, css: &str) -> Result<()> {
    c.wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await?
        .click()
        .await?;
    Ok(())
}

/// The view titled `h1` has inputs, each with a label, and is no wider than the window.
async fn check_view(c: &Client, h1: &str) -> Result<()> {
    wait_text(c, "main h1", |t| t == h1).await?;
    let unlabelled = c
        .execute(
            "const all = [...document.querySelectorAll('main input, main textarea')]; return all.length === 0 ? ['no inputs'] : all.filter((i) => !i.labels || i.labels.length === 0).map((i) => i.id || i.type);",
            vec![],
        )
        .await?;
    ensure!(
        unlabelled.as_array().is_some_and(|a| a.is_empty()),
        "{h1}: inputs without a label: {unlabelled}"
    );
    // No value the page failed to find shows as a word.
    let stray = c
        .execute(
            "return (document.querySelector('main').innerText.match(/\\b(null|undefined|NaN)\\b/) ?? [''])[0];",
            vec![],
        )
        .await?;
    ensure!(stray == json!(""), "{h1} shows {stray}");
    fits(c, h1).await
}

/// Nothing in the page is wider than the window (the phone check).
async fn fits(c: &Client, what: &str) -> Result<()> {
    let fits = c
        .execute(
            "return document.documentElement.scrollWidth <= document.documentElement.clientWidth;",
            vec![],
        )
        .await?;
    ensure!(fits == json!(true), "{what} is wider than the window");
    Ok(())
}

fn api(city: &City, path: &str) -> Result<Value> {
    let (code, v) = acta_node::devnet::get(&city.net.nodes[0].rpc, path)?;
    ensure!(code == 200, "GET {path}: {code} {v}");
    Ok(v)
}

async fn drive(c: &Client, city: &City, shots: &Path, work: &Path) -> Result<()> {
    let page = format!("http://{}/", city.net.nodes[0].rpc);
    let genesis = city.net.nodes[0].home.join("genesis.json");
    c.goto(&page).await?;
    wait_text(c, "main h1", |t| t == "The chain").await?;
    ensure!(c.title().await? == "Acta");
    // Every request the page makes from here on is logged, with its body.
    c.execute(
        "window.sent = []; const f = window.fetch; window.fetch = (url, o) => { window.sent.push(String(url) + ' ' + (o && o.body ? String(o.body) : '')); return f(url, o); };",
        vec![],
    )
    .await?;
    wait_text(c, "main table caption", |t| t == "Recent blocks").await?;
    shot(c, shots, "1-chain.png").await?;

    // By keyboard alone: Tab from the top reaches the skip link, then the sections in
    // order; the skip link moves the focus to the content.
    c.execute("document.activeElement.blur();", vec![]).await?;
    let mut reached = Vec::new();
    for _ in 0..8 {
        c.active_element().await?.send_keys("\u{e004}").await?;
        let focused = c.active_element().await?;
        reached.push(focused.attr("href").await?.unwrap_or_default());
    }
    ensure!(
        reached
            == [
                "#view",
                "#/",
                "#/rounds",
                "#/did",
                "#/credential",
                "#/device",
                "#/vote",
                "#/verify"
            ],
        "Tab reaches {reached:?}"
    );
    c.execute("document.querySelector('.skip').focus();", vec![])
        .await?;
    c.active_element().await?.send_keys("\u{e007}").await?;
    let focused = c.active_element().await?.attr("id").await?;
    ensure!(
        focused.as_deref() == Some("view"),
        "the skip link focused {focused:?}"
    );

    // A round, followed to its result.
    c.find(Locator::LinkText("Budget rounds"))
        .await?
        .click()
        .await?;
    click(c, "a[href='#/rounds/0']").await?;
    wait_text(c, "main h2", |t| t == "Result").await?;
    c.find(Locator::Css("figure svg.chart")).await?;
    let result = api(city, "/budget/rounds/0/result")?;
    let selected = result["result"]["selected"]
        .as_array()
        .context("selected")?
        .len();
    let funded = c
        .execute(
            "return [...document.querySelectorAll('main table tbody tr')].filter((r) => r.lastChild.textContent === 'yes').length;",
            vec![],
        )
        .await?;
    ensure!(
        funded == json!(selected),
        "the page funds {funded} projects, the ledger {selected}"
    );
    let words = c.find(Locator::Css("main")).await?.text().await?;
    ensure!(
        words.contains("Method of Equal Shares") && words.contains("Completion (Add1)"),
        "the rule is not explained: {words}"
    );
    shot(c, shots, "2-round-result.png").await?;

    // A sensor's batches.
    go(c, "#/device").await?;
    type_into(c, "#f-did", &city.device).await?;
    click(c, "main form button[type=submit]").await?;
    wait_text(c, ".result table caption", |t| t == "Attested batches").await?;
    let rows = c
        .execute(
            "return document.querySelectorAll('.result table tbody tr').length;",
            vec![],
        )
        .await?;
    ensure!(rows == json!(3), "{rows} batches shown, 3 attested");
    c.find(Locator::Css(".result svg.chart")).await?;
    shot(c, shots, "3-sensor.png").await?;

    // A reading's bundle, verified in the page against the genesis file.
    go(c, "#/verify").await?;
    check_view(c, "Check a proof, in this browser").await?;
    type_into(c, "#f-genesis", &genesis.display().to_string()).await?;
    type_into(c, "#f-file", &city.reading_bundle.display().to_string()).await?;
    type_into(c, "#f-readings", "17").await?;
    click(c, "main form button[type=submit]").await?;
    let verdict = wait_text(c, "#verdict", |t| t != "Loading…").await?;
    ensure!(
        verdict.starts_with("Verified against the genesis of acta-demo"),
        "{verdict}"
    );
    let steps = c
        .execute(
            "return [...document.querySelectorAll('.steps li')].map((l) => l.textContent);",
            vec![],
        )
        .await?;
    let steps: Vec<String> = serde_json::from_value(steps)?;
    ensure!(
        steps.len() >= 5 && steps.iter().all(|s| s.starts_with("ok ")),
        "{steps:?}"
    );
    ensure!(steps
        .iter()
        .any(|s| s.contains("the reading is number 17 of the 60 in batch 0")));
    let shown = c.find(Locator::Css("main")).await?.text().await?;
    ensure!(
        shown.contains(r#"{"t":1700000017000,"pm25":12}"#),
        "{shown}"
    );
    shot(c, shots, "4-reading-verified.png").await?;

    // The same bundle with the reading lowered fails in the page, at the reading's step.
    let mut forged: Value = serde_json::from_slice(&std::fs::read(&city.reading_bundle)?)?;
    forged["proof"]["readings"][0]["reading"] =
        json!(hex::encode(br#"{"t":1700000017000,"pm25":2}"#));
    let forged_path = work.join("forged-reading.json");
    std::fs::write(&forged_path, serde_json::to_vec(&forged)?)?;
    go(c, "#/").await?;
    wait_text(c, "main h1", |t| t == "The chain").await?;
    go(c, "#/verify").await?;
    // The genesis file is kept for the visit.
    wait_text(c, "#genesis-state", |t| {
        t.starts_with("A genesis file is loaded")
    })
    .await?;
    type_into(c, "#f-file", &forged_path.display().to_string()).await?;
    click(c, "main form button[type=submit]").await?;
    let verdict = wait_text(c, "#verdict", |t| t != "Loading…").await?;
    ensure!(
        verdict.starts_with("Not verified, at step “reading”"),
        "{verdict}"
    );
    shot(c, shots, "5-forged-fails.png").await?;

    // A record read from the node with its proof must answer the request typed.
    go(c, "#/").await?;
    wait_text(c, "main h1", |t| t == "The chain").await?;
    go(c, "#/verify").await?;
    type_into(c, "#f-record", "/budget/rounds/0").await?;
    click(c, "main form button[type=submit]").await?;
    let verdict = wait_text(c, "#verdict", |t| t != "Loading…").await?;
    ensure!(
        verdict.starts_with("Verified against the genesis"),
        "{verdict}"
    );
    let main = c.find(Locator::Css("main")).await?.text().await?;
    ensure!(
        main.contains("the answer to GET /budget/rounds/0 at height"),
        "{main}"
    );

    // A resident opens the wallet's key file in the page, votes and checks the receipt.
    go(c, "#/vote").await?;
    check_view(c, "Vote in a budget round").await?;
    type_into(c, "#f-keyfile", &city.voter_key.display().to_string()).await?;
    type_into(c, "#f-passphrase", PAGE_PASSPHRASE).await?;
    click(c, "main form button[type=submit]").await?;
    wait_text(c, "main dl.facts dd", |t| t == city.voter).await?;
    check_view(c, "Vote in a budget round").await?;
    click(c, &format!("#p-{PAGE_ROUND}-0")).await?;
    click(c, &format!("#p-{PAGE_ROUND}-2")).await?;
    shot(c, shots, "6-ballot.png").await?;
    click(c, "section form button[type=submit]").await?;
    let done = wait_text(
        c,
        &format!("#vote-done-{PAGE_ROUND}, section .error"),
        |t| !t.is_empty(),
    )
    .await?;
    ensure!(
        done.starts_with("The node says your ballot is in block"),
        "{done}"
    );
    // The ledger holds the ballot the page signed (an open round's ballots are read from
    // its transactions; they are proven by the ballots root once it is tallied).
    let hash = c
        .find(Locator::Css(&format!("#vote-done-{PAGE_ROUND}")))
        .await?
        .attr("data-tx")
        .await?
        .context("the ballot's transaction hash")?;
    let tx = api(city, &format!("/txs/{hash}"))?;
    let shown = tx.to_string();
    ensure!(
        shown.contains(r#""projects":[0,2]"#) && shown.contains(&city.voter),
        "the ledger holds {tx}"
    );
    let round = api(city, &format!("/budget/rounds/{PAGE_ROUND}"))?;
    ensure!(round["round"]["voters"] == json!(1), "{round}");
    click(c, &format!("#check-receipt-{PAGE_ROUND}")).await?;
    let verdict = wait_text(c, &format!("#verdict-{PAGE_ROUND}"), |t| !t.is_empty()).await?;
    ensure!(
        verdict.starts_with("Verified against the genesis"),
        "{verdict}"
    );
    let steps = c
        .execute(
            "return [...document.querySelectorAll('.steps li')].map((l) => l.textContent);",
            vec![],
        )
        .await?;
    let steps: Vec<String> = serde_json::from_value(steps)?;
    ensure!(
        steps
            .iter()
            .any(|s| s.contains(&format!("the answer to GET /txs/{hash} at height"))),
        "{steps:?}"
    );
    shot(c, shots, "7-receipt-verified.png").await?;

    // Round 3 has secret ballots. The page asks for the resident's ballot token: the module
    // makes a one-time ballot key, blinds its token message and seals both with a
    // passphrase in a ballot file the page offers to save.
    let secret = PAGE_SECRET_ROUND;
    let waiting = format!("#token-state-{secret}, #token-{secret} .error");
    type_into(c, &format!("#f-ballot-pass-{secret}"), BALLOT_PASSPHRASE).await?;
    click(c, &format!("#make-ballot-{secret}")).await?;
    // The request cannot be sent before the file is saved: the ledger takes one request
    // per resident, worthless without the file.
    let send = c
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(&format!("#send-token-{secret}")))
        .await?;
    ensure!(
        send.attr("disabled").await?.is_some(),
        "the request can be sent before the ballot file is saved"
    );
    let requests = api(city, &format!("/budget/rounds/{secret}/tokens?limit=10"))?;
    ensure!(
        requests["requests"] == json!([]),
        "a request went out before the file was saved: {requests}"
    );
    // Saved as a resident saves it: the link downloads it, into the test's downloads folder.
    click(c, &format!("#ballot-file-{secret}")).await?;
    let ballot_file = downloaded(&work.join("downloads"), &format!("r{secret}-")).await?;
    click(c, &format!("#send-token-{secret}")).await?;
    let state = wait_text(c, &waiting, |t| !t.is_empty()).await?;
    ensure!(
        state.starts_with("Your request 0 is on the ledger"),
        "{state}"
    );
    // The file is the wallet's ballots/ file: it opens with the passphrase, and shows
    // neither the resident nor the ballot key without it.
    let (name, _, bytes) =
        Keystore::unlock_secret_text(SecretKind::Ballot, &ballot_file, BALLOT_PASSPHRASE)?;
    let kept: BallotSecret = serde_json::from_slice(&bytes)?;
    ensure!(
        kept.resident.to_string() == city.voter && kept.round == secret,
        "the ballot file is for {} in round {}",
        kept.resident,
        kept.round
    );
    let ballot_key = acta_ledger::Keypair::from_seed(
        hex::decode(&kept.seed)?
            .try_into()
            .map_err(|_| anyhow!("the ballot seed is not 32 bytes"))?,
    );
    let ballot_public = hex::encode(ballot_key.public().0);
    ensure!(
        !ballot_file.contains(&city.voter) && !ballot_file.contains(&ballot_public),
        "the sealed ballot file shows its resident or its key: {ballot_file}"
    );
    ensure!(name.starts_with(&format!("r{secret}-")), "{name}");
    let request = api(
        city,
        &format!("/budget/rounds/{secret}/tokens/{}", city.voter),
    )?;
    ensure!(
        request["request"]["blinded"] == json!(kept.blinded)
            && request["request"]["blind_signature"].is_null(),
        "{request}"
    );
    // The registrar answers the request recorded.
    let answered = tokio::task::block_in_place(|| city.answer_token_requests())?;
    ensure!(answered == 1, "the registrar answered {answered} requests");
    click(c, &format!("#token-check-{secret}")).await?;
    let state = wait_text(c, &waiting, |t| t.starts_with("The registrar")).await?;
    ensure!(state.starts_with("The registrar answered"), "{state}");

    // The key is forgotten (and the ballot secret with it), and opened again from its 24
    // recovery words.
    click(c, "main button.secondary").await?;
    check_view(c, "Vote in a budget round").await?;
    let key_file = std::fs::read_to_string(&city.voter_key)?;
    let (_, key) = Keystore::unlock_text(&key_file, PAGE_PASSPHRASE)?;
    let words = acta_ledger::keystore::recovery_words(&key.seed());
    type_into(c, "#f-words", words.as_str()).await?;
    click(c, "main form button[type=submit]").await?;
    wait_text(c, "main dl.facts dd", |t| t == city.voter).await?;

    // The saved ballot file opens in the page, and the secret ballot is cast from the
    // ballot key with the token unblinded in the module.
    let saved = work.join(format!("{name}.json"));
    std::fs::write(&saved, &ballot_file)?;
    type_into(
        c,
        &format!("#f-ballot-file-{secret}"),
        &saved.display().to_string(),
    )
    .await?;
    type_into(c, &format!("#f-ballot-open-{secret}"), BALLOT_PASSPHRASE).await?;
    click(c, &format!("#open-ballot-{secret}")).await?;
    wait_text(c, &waiting, |t| t.starts_with("The registrar answered")).await?;
    check_view(c, "Vote in a budget round").await?;
    click(c, &format!("#p-{secret}-1")).await?;
    shot(c, shots, "8-secret-ballot.png").await?;
    click(c, &format!("#token-{secret} ~ form button[type=submit]")).await?;
    let done = wait_text(
        c,
        &format!("#vote-done-{secret}, #token-{secret} ~ form .error"),
        |t| !t.is_empty(),
    )
    .await?;
    ensure!(
        done.starts_with("The node says your ballot is in block"),
        "{done}"
    );
    let ballot_did = acta_ledger::Did::from_initial_key(&ballot_key.public()).to_string();
    ensure!(done.contains(&ballot_did), "{done}");
    let hash = c
        .find(Locator::Css(&format!("#vote-done-{secret}")))
        .await?
        .attr("data-tx")
        .await?
        .context("the secret ballot's transaction hash")?;
    let tx = api(city, &format!("/txs/{hash}"))?;
    let shown = tx.to_string();
    ensure!(
        shown.contains(r#""projects":[1]"#)
            && shown.contains(&ballot_public)
            && !shown.contains(&city.voter),
        "the ledger holds {tx}"
    );
    let round = api(city, &format!("/budget/rounds/{secret}"))?;
    ensure!(round["round"]["voters"] == json!(1), "{round}");
    click(c, &format!("#check-receipt-{secret}")).await?;
    let verdict = wait_text(c, &format!("#verdict-{secret}"), |t| !t.is_empty()).await?;
    ensure!(
        verdict.starts_with("Verified against the genesis"),
        "{verdict}"
    );
    shot(c, shots, "9-secret-receipt.png").await?;

    // No request carried key material: only the signed ballot went out.
    let sent: Vec<String> =
        serde_json::from_value(c.execute("return window.sent;", vec![]).await?)?;
    let seed = hex::encode(key.seed());
    let file: Value = serde_json::from_str(&key_file)?;
    let ciphertext = file["cipher"]["ciphertext"].as_str().unwrap_or("absent");
    let sealed: Value = serde_json::from_str(&ballot_file)?;
    let ballot_ciphertext = sealed["cipher"]["ciphertext"].as_str().unwrap_or("absent");
    ensure!(
        sent.len() > 10,
        "the request log holds {} requests",
        sent.len()
    );
    for request in &sent {
        for secret in [
            seed.as_str(),
            PAGE_PASSPHRASE,
            words.as_str(),
            ciphertext,
            &kept.seed,
            &kept.secret,
            BALLOT_PASSPHRASE,
            ballot_ciphertext,
        ] {
            ensure!(
                !request.contains(secret),
                "a request carried key material: {request}"
            );
        }
    }
    // The public ballot, the token request and the secret ballot: signed transactions only.
    let posts: Vec<&String> = sent.iter().filter(|r| r.contains("{")).collect();
    ensure!(
        posts.len() == 3
            && posts
                .iter()
                .all(|p| p.starts_with("/txs?mode=commit {\"tx\":\"")),
        "{posts:?}"
    );

    // A trust pin in place of the genesis set (ADR 0028), made as `acta audit pin` makes
    // it: the validators of the latest height, verified from the genesis. A record proven
    // at or above the pin verifies from it, and says so; the reading's bundle, proven
    // below it, is refused at step "trust".
    let answer = api(city, "/validators?prove=true")?;
    let anchor = TrustAnchor::from_genesis_json(&std::fs::read_to_string(&genesis)?)
        .map_err(|e| anyhow!("the genesis: {e}"))?;
    let audited = acta_contracts::audit::verify(&answer, &anchor)
        .map_err(|e| anyhow!("the validators' proof: {}: {}", e.step, e.message))?;
    let pinned = audited.verified.height;
    let pin = TrustPin {
        height: pinned,
        block: audited.verified.block_hash,
        validators: audited
            .verified
            .validators
            .clone()
            .context("the proof names the set")?,
    };
    let pin_path = work.join("trust.json");
    std::fs::write(&pin_path, pin.to_json(&anchor.chain_id))?;
    go(c, "#/").await?;
    wait_text(c, "main h1", |t| t == "The chain").await?;
    go(c, "#/verify").await?;
    type_into(c, "#f-trust", &pin_path.display().to_string()).await?;
    type_into(c, "#f-record", "/budget/rounds/0").await?;
    click(c, "main form button[type=submit]").await?;
    let verdict = wait_text(c, "#verdict", |t| t != "Loading…").await?;
    ensure!(
        verdict.starts_with(&format!(
            "Verified against your trust pin of acta-demo (validators of block {pinned})"
        )),
        "{verdict}"
    );
    go(c, "#/").await?;
    wait_text(c, "main h1", |t| t == "The chain").await?;
    go(c, "#/verify").await?;
    wait_text(c, "#trust-state", |t| {
        t.starts_with("A trust pin is loaded")
    })
    .await?;
    type_into(c, "#f-file", &city.reading_bundle.display().to_string()).await?;
    click(c, "main form button[type=submit]").await?;
    let verdict = wait_text(c, "#verdict", |t| t != "Loading…").await?;
    ensure!(
        verdict.starts_with("Not verified, at step “trust”"),
        "{verdict}"
    );
    // Forgotten, the pin no longer applies: the same bundle verifies from the genesis.
    click(c, "#forget-trust").await?;
    wait_text(c, "#trust-state", |t| t.starts_with("Without one")).await?;
    type_into(c, "#f-file", &city.reading_bundle.display().to_string()).await?;
    click(c, "main form button[type=submit]").await?;
    let verdict = wait_text(c, "#verdict", |t| t != "Loading…").await?;
    ensure!(
        verdict.starts_with("Verified against the genesis of acta-demo"),
        "{verdict}"
    );

    // On a phone-sized screen: nothing wider than the screen.
    c.set_window_size(390, 844).await?;
    go(c, "#/rounds/0").await?;
    wait_text(c, "main h2", |t| t == "Result").await?;
    fits(c, "the round page").await?;
    shot(c, shots, "10-phone.png").await?;
    go(c, "#/vote").await?;
    check_view(c, "Vote in a budget round").await?;
    wait_text(c, "main legend", |t| t.starts_with("Old Town benches")).await?;
    fits(c, "the vote page").await?;
    go(c, "#/verify").await?;
    check_view(c, "Check a proof, in this browser").await?;
    Ok(())
}

#[test]
fn a_resident_follows_a_round_checks_proofs_and_votes_in_the_browser() {
    let work = tempfile::tempdir().unwrap();
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-page");
    // This run's screenshots only.
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let mut city = demo::build(&work.path().join("net"), 8).unwrap();
    let (driver, port) = start_driver().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime.block_on(async {
        let downloads = work.path().join("downloads");
        std::fs::create_dir_all(&downloads)?;
        let c = browser(port, &work.path().join("chromium"), &downloads).await?;
        let outcome = drive(&c, &city, &shots, work.path()).await;
        if outcome.is_err() {
            let _ = shot(&c, &shots, "failure.png").await;
        }
        c.close()
            .await
            .map_err(|e| anyhow!("closing the browser: {e}"))?;
        outcome
    });
    drop(driver);
    city.net.stop_all().unwrap();
    if let Err(e) = outcome {
        let kept = work.keep();
        panic!(
            "{e:#} (screenshots in {}; the nodes' logs in {})",
            shots.display(),
            kept.display()
        );
    }
}
