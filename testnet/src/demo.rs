//! `acta-testnet demo`: a four-validator network on 127.0.0.1 plays a small city. The
//! council registers an agency as an issuer; residents create their DIDs and get Resident
//! credentials; an operator registers an air sensor that attests a chain of batches; a
//! participatory budget round runs and closes with a Method of Equal Shares result, and a
//! second one beside it with secret ballots (blind-signed tokens from a registrar, votes
//! from one-time ballot keys, one revote); and every node is checked to hold the same
//! blocks and state roots.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use acta_contracts::{
    answer::{decimal, money_in},
    audit,
    budget::{NS_ROUND, NS_TALLY},
};
use acta_ledger::{
    bundle::{ProofBundle, ReadingEntry, TrustAnchor},
    checkpoint::{self, SignedCheckpoint},
    keystore::Keystore,
    merkle,
    records::{
        BallotFormat, BallotSecrecy, BudgetRound, CredentialKind, DidDocument, GovAction,
        RoundSpec, RoundStatus, Rule, RuleProfile, TallyRecord, TieBreak, VerificationMethod,
    },
    testing, token,
    tx::{AttestationBatch, BudgetCall, CredentialCall, GovernanceCall, IdentityCall, SensorCall},
    types::{Bytes, Text},
    Call, ChainId, Did, Hash, Height, Keypair, Timestamp,
};
use anyhow::{anyhow, bail, Context, Result};
use borsh::BorshDeserialize;

use acta_node::devnet::{actad_beside_me, LocalNet, Wallet};

const WAIT: Duration = Duration::from_secs(60);
/// The demo's chain id.
const CHAIN: &str = "acta-demo";

fn did(key: &Keypair) -> Did {
    Did::from_initial_key(&key.public())
}

fn create_did() -> Call {
    Call::Identity(IdentityCall::CreateDid {
        next_key_hash: None,
    })
}

fn text<const N: usize>(s: &str) -> Result<Text<N>> {
    Text::new(s).with_context(|| format!("text {s:?}"))
}

/// What a demo city left on its running network, for a caller to look at.
#[derive(Debug)]
pub struct City {
    pub net: LocalNet,
    /// The sensor's DID.
    pub device: String,
    /// The agency's DID (an issuer).
    pub agency: String,
    /// A file proving reading 17 of the sensor's batch 0 against the genesis (for `acta
    /// audit verify FILE --genesis genesis.json`, or the page's verifier).
    pub reading_bundle: PathBuf,
    /// A resident's key file (keystore format, passphrase [`PAGE_PASSPHRASE`]), who has not
    /// voted in round [`PAGE_ROUND`].
    pub voter_key: PathBuf,
    /// That resident's DID.
    pub voter: String,
    /// The registrar of round [`PAGE_SECRET_ROUND`], to answer token requests made from
    /// the page ([`City::answer_token_requests`]).
    registrar: PageRegistrar,
}

/// A secret round's registrar: its signing key and its RSA key.
struct PageRegistrar {
    key: Keypair,
    rsa: token::Registrar,
}

impl std::fmt::Debug for PageRegistrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PageRegistrar({})", did(&self.key))
    }
}

impl City {
    /// Answers, as round [`PAGE_SECRET_ROUND`]'s registrar, every token request recorded
    /// and not yet answered; how many it answered. (A city's registrar runs `acta budget
    /// token issue`, which also checks the requests' proofs against the genesis.)
    pub fn answer_token_requests(&self) -> Result<usize> {
        let round = PAGE_SECRET_ROUND;
        let mut w = Wallet::new(&self.net, ChainId::new(CHAIN)?);
        w.resume(&self.registrar.key)?;
        let mut txs = Vec::new();
        let mut from = 0;
        loop {
            let path = format!("/budget/rounds/{round}/tokens?from={from}&limit=100");
            let (status, page) = acta_node::devnet::get(&self.net.nodes[0].rpc, &path)?;
            if status != 200 {
                bail!("GET {path}: {status} {page}");
            }
            let requests = page["requests"].as_array().cloned().unwrap_or_default();
            if requests.is_empty() {
                break;
            }
            from += requests.len();
            for r in requests.iter().filter(|r| r["blind_signature"].is_null()) {
                let blinded = hex::decode(r["blinded"].as_str().unwrap_or_default())?;
                let request = r["index"]
                    .as_u64()
                    .context("a token request without index")?;
                let call = Call::Budget(BudgetCall::IssueToken {
                    round,
                    request,
                    blind_signature: Bytes::new(self.registrar.rsa.sign_blinded(&blinded)?)?,
                });
                txs.push(w.tx(&self.registrar.key, call));
            }
        }
        w.send_and_settle(&txs, &[&self.registrar.key])?;
        Ok(txs.len())
    }
}

/// The round left open for votes from the web page, with its projects.
pub const PAGE_ROUND: u64 = 2;
pub const PAGE_PROJECTS: [(&str, u64); 3] = [
    ("Benches on Castle Square", 9_000),
    ("Lights in Salt Park", 18_000),
    ("Water fountain", 6_000),
];
/// The secret round left open beside it: a resident asks for a ballot token from the page,
/// the demo's registrar answers, and the resident votes from a one-time ballot key.
pub const PAGE_SECRET_ROUND: u64 = 3;
pub const PAGE_SECRET_PROJECTS: [(&str, u64); 3] = [
    ("Shade sails over the playground", 7_000),
    ("Drinking water at the market", 5_000),
    ("Bird boxes in Salt Park", 2_000),
];
/// The keystore name and passphrase of the demo resident who votes from the page.
pub const PAGE_VOTER: &str = "resident";
pub const PAGE_PASSPHRASE: &str = "old town 2027";

/// Runs the demo in `dir`; keeps the network running at the end if `keep`.
pub fn run(dir: &Path, residents: u32, keep: bool) -> Result<()> {
    let mut city = build(dir, residents)?;
    if keep {
        let net = &city.net;
        acta_node::outln!(
            "   the network keeps running (APIs: {}); stop it with Ctrl-C",
            net.nodes
                .iter()
                .map(|n| n.rpc.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(first) = net.nodes.first() {
            acta_node::outln!(
                "   the residents' page: open http://{}/ in a browser; point the wallet at it with: acta config set node http://{}",
                first.rpc,
                first.rpc
            );
        }
        acta_node::outln!(
            "   round {PAGE_SECRET_ROUND} has secret ballots: ask for a token from the page (or acta budget token request {PAGE_SECRET_ROUND}); the demo's registrar answers every few seconds"
        );
        loop {
            std::thread::sleep(Duration::from_secs(3));
            match city.answer_token_requests() {
                Ok(0) => {}
                Ok(n) => acta_node::outln!(
                    "   the registrar answered {n} token request(s) of round {PAGE_SECRET_ROUND}"
                ),
                Err(e) => eprintln!("acta-testnet: answering token requests: {e:#}"),
            }
        }
    }
    city.net.stop_all()?;
    acta_node::outln!("   stopped the validators");
    Ok(())
}

/// Builds the demo city in `dir` and leaves its network running.
pub fn build(dir: &Path, residents: u32) -> Result<City> {
    let started = Instant::now();
    let council: Vec<Keypair> = (0..3).map(|i| testing::key(0xc0, i)).collect();
    let chain = CHAIN;
    acta_node::outln!(
        "== a city in a box: 4 validators on 127.0.0.1, stores in {}",
        dir.display()
    );
    let mut net = LocalNet::init(&actad_beside_me()?, dir, 4, chain, &council, 2)?;
    net.start_all()?;
    net.wait_height(1, WAIT)?;
    acta_node::outln!(
        "   the validators agree: height {} on every node",
        net.height(0)
    );
    let mut w = Wallet::new(&net, ChainId::new(chain)?);

    // The agency becomes an issuer by a 2-of-3 council decision.
    let agency = testing::key(0xd1, 0);
    let tx = w.tx(&agency, create_did());
    w.send_and_settle(&[tx], &[&agency])?;
    let action = GovAction::RegisterIssuer {
        did: did(&agency),
        kinds: vec![
            CredentialKind::Resident,
            CredentialKind::SensorOperator,
            CredentialKind::BudgetOffice,
        ],
    };
    let action_hash = action.hash();
    let propose = w.tx(
        &council[0],
        Call::Governance(GovernanceCall::Propose { action }),
    );
    w.send_and_settle(&[propose], &[&council[0]])?;
    let approve = w.tx(
        &council[1],
        Call::Governance(GovernanceCall::Approve {
            proposal: 0,
            action_hash,
        }),
    );
    w.send_and_settle(&[approve], &[&council[1]])?;
    acta_node::outln!(
        "== the council (2 of 3) registered the city agency {} as an issuer",
        did(&agency)
    );

    // Residents, a budget office and a sensor operator get DIDs and credentials.
    let people: Vec<Keypair> = (0..residents).map(|i| testing::key(0xd2, i)).collect();
    let office = testing::key(0xd3, 0);
    let operator = testing::key(0xd4, 0);
    let device = testing::key(0xd5, 0);
    let registrar = testing::key(0xd6, 0);
    let mut txs = Vec::new();
    for k in people
        .iter()
        .chain([&office, &operator, &device, &registrar])
    {
        txs.push(w.tx(k, create_did()));
    }
    let all: Vec<&Keypair> = people
        .iter()
        .chain([&office, &operator, &device, &registrar])
        .collect();
    w.send_and_settle(&txs, &all)?;
    let issue = |subject: &Keypair, kind: CredentialKind, district: Option<&str>| -> Result<Call> {
        Ok(Call::Credential(CredentialCall::Issue {
            id: Hash::digest_parts(&[b"credential", &subject.public().0, &[kind as u8]]),
            issuer: did(&agency),
            subject: did(subject),
            kind,
            district: district.map(text::<32>).transpose()?,
            valid_from: Timestamp(0),
            valid_until: Timestamp(4_102_444_800_000),
        }))
    };
    let mut txs = Vec::new();
    for p in &people {
        let call = issue(p, CredentialKind::Resident, Some("old-town"))?;
        txs.push(w.tx(&agency, call));
    }
    let call = issue(&office, CredentialKind::BudgetOffice, None)?;
    txs.push(w.tx(&agency, call));
    let call = issue(&operator, CredentialKind::SensorOperator, None)?;
    txs.push(w.tx(&agency, call));
    w.send_and_settle(&txs, &[&agency])?;
    acta_node::outln!(
        "== {residents} residents created their DIDs and hold Resident credentials for old-town"
    );

    // The device names the operator as a controller (its consent), the operator registers
    // it, and it attests three batches, each naming the one before.
    let document = DidDocument {
        verification_methods: vec![VerificationMethod {
            id: text("key-1")?,
            key: device.public(),
        }],
        controllers: vec![did(&operator)],
        services: vec![],
    };
    let consent = w.tx(
        &device,
        Call::Identity(IdentityCall::UpdateDocument {
            did: did(&device),
            document,
        }),
    );
    w.send_and_settle(&[consent], &[&device])?;
    let register = Call::Sensor(SensorCall::Register {
        operator: did(&operator),
        device: did(&device),
        kind: text("air.pm25")?,
        unit: text("ug/m3")?,
        location: text("u2yhvd")?,
        stream: text("pm25-1min")?,
    });
    let tx = w.tx(&operator, register);
    w.send_and_settle(&[tx], &[&operator])?;
    let mut prev = Hash::ZERO;
    let mut first_batch = Vec::new();
    let t0 = 1_700_000_000_000u64;
    for sequence in 0..3u64 {
        let readings: Vec<Vec<u8>> = (0..60u64)
            .map(|i| {
                format!(
                    "{{\"t\":{},\"pm25\":{}}}",
                    t0 + sequence * 60_000 + i * 1000,
                    10 + (i * 7 + sequence) % 13
                )
                .into_bytes()
            })
            .collect();
        let batch = AttestationBatch {
            device: did(&device),
            stream: text("pm25-1min")?,
            sequence,
            prev_batch_hash: prev,
            window_start: Timestamp(t0 + sequence * 60_000),
            window_end: Timestamp(t0 + sequence * 60_000 + 59_000),
            reading_count: 60,
            readings_root: merkle::root_of(&readings),
            raw_batch_hash: Hash::digest(&readings.concat()),
        };
        prev = Hash::of(&batch);
        if sequence == 0 {
            first_batch = readings.clone();
        }
        let tx = w.tx(&device, Call::Sensor(SensorCall::Attest(batch)));
        w.send_and_settle(&[tx], &[&device])?;
    }
    acta_node::outln!(
        "== sensor {} attested 3 chained batches of 60 PM2.5 readings",
        did(&device)
    );

    // A participatory budget round with the Method of Equal Shares.
    // Phases by date, seconds apart for the demo (a city's run weeks).
    let now = Timestamp::now();
    let spec = RoundSpec {
        title: text("Old Town green budget")?,
        district: text("old-town")?,
        budget: 100_000,
        currency: text("PLN")?,
        proposals_from: now.plus_ms(2_000),
        voting_from: now.plus_ms(8_000),
        closes_at: now.plus_ms(20_000),
        ballot: BallotFormat::Approval { min: 1, max: 3 },
        rule: RuleProfile {
            rule: Rule::MesAdd1,
            tie_break: TieBreak::VotesThenCost,
        },
        secrecy: BallotSecrecy::Public,
    };
    // Round 1 runs beside it with secret ballots: the registrar's RSA key signs one
    // blinded token per resident who asks.
    let registrar_rsa = token::Registrar::generate(2048)?;
    let registrar_key = token::RegistrarKey::from_der(&registrar_rsa.public_der()?)?;
    let secret_spec = RoundSpec {
        title: text("Old Town secret ballot")?,
        budget: 50_000,
        secrecy: BallotSecrecy::Secret {
            registrar: did(&registrar),
            key: Bytes::new(registrar_rsa.public_der()?)?,
        },
        ..spec.clone()
    };
    // Round 2 stays open for votes for a day: residents vote in it from the web page.
    let page_spec = RoundSpec {
        title: text("Old Town benches and lights")?,
        budget: 30_000,
        closes_at: now.plus_ms(24 * 3_600_000),
        ballot: BallotFormat::Approval { min: 1, max: 2 },
        rule: RuleProfile {
            rule: Rule::Greedy,
            tie_break: TieBreak::VotesThenCost,
        },
        ..spec.clone()
    };
    // Round 3, secret, also stays open for a day, with a fresh registrar key (one key, one
    // round): its tokens are asked for from the page.
    let page_registrar = token::Registrar::generate(2048)?;
    let page_secret_spec = RoundSpec {
        title: text("Old Town shade and water")?,
        budget: 12_000,
        secrecy: BallotSecrecy::Secret {
            registrar: did(&registrar),
            key: Bytes::new(page_registrar.public_der()?)?,
        },
        ..page_spec.clone()
    };
    let open: Vec<_> = [&spec, &secret_spec, &page_spec, &page_secret_spec]
        .into_iter()
        .map(|spec| {
            w.tx(
                &office,
                Call::Budget(BudgetCall::OpenRound {
                    office: did(&office),
                    spec: spec.clone(),
                }),
            )
        })
        .collect();
    w.send_and_settle(&open, &[&office])?;
    acta_node::outln!(
        "== the budget office opened round 0: PLN 100,000 for old-town, proposals from {}, voting from {}, closing at {}",
        spec.proposals_from.rfc3339(), spec.voting_from.rfc3339(), spec.closes_at.rfc3339()
    );
    acta_node::outln!(
        "   and round 1 beside it, PLN 50,000 with secret ballots: registrar {}",
        did(&registrar)
    );
    net.wait_time(spec.proposals_from, WAIT)?;
    let projects = [
        ("Trees on Market Street", 40_000u64),
        ("Bike racks", 8_000),
        ("Playground repair", 25_000),
        ("Rain garden", 30_000),
        ("Benches by the river", 12_000),
        ("Community compost", 15_000),
    ];
    let mut txs = Vec::new();
    for (i, (title, cost)) in projects.iter().enumerate() {
        let proposer = &people[i % people.len()];
        let call = Call::Budget(BudgetCall::Propose {
            round: 0,
            proposer: did(proposer),
            title: text(title)?,
            cost: *cost,
        });
        txs.push(w.tx(proposer, call));
    }
    let secret_projects = [
        ("Street lights on Mill Lane", 20_000u64),
        ("Library opening hours", 15_000),
        ("Pond clean-up", 25_000),
    ];
    for (i, (title, cost)) in secret_projects.iter().enumerate() {
        let proposer = &people[i % people.len()];
        let call = Call::Budget(BudgetCall::Propose {
            round: 1,
            proposer: did(proposer),
            title: text(title)?,
            cost: *cost,
        });
        txs.push(w.tx(proposer, call));
    }
    for (round, page_projects) in [
        (PAGE_ROUND, &PAGE_PROJECTS),
        (PAGE_SECRET_ROUND, &PAGE_SECRET_PROJECTS),
    ] {
        for (i, (title, cost)) in page_projects.iter().enumerate() {
            let proposer = &people[i % people.len()];
            let call = Call::Budget(BudgetCall::Propose {
                round,
                proposer: did(proposer),
                title: text(title)?,
                cost: *cost,
            });
            txs.push(w.tx(proposer, call));
        }
    }
    let proposers: Vec<&Keypair> = people.iter().take(projects.len()).collect();
    w.send_and_settle(&txs, &proposers)?;
    acta_node::outln!(
        "   residents proposed {} projects in round 0 and {} in round 1",
        projects.len(),
        secret_projects.len()
    );
    let ballot_keys = secret_tokens(&mut w, &people, &registrar, &registrar_rsa, &registrar_key)?;
    net.wait_time(spec.voting_from, WAIT)?;
    let mut txs = Vec::new();
    for (i, p) in people.iter().enumerate() {
        // Two camps and some spread: the first half likes trees and the rain garden, the
        // rest the playground, benches and compost; everyone likes bike racks a bit.
        let choice: Vec<u32> = match i % 4 {
            0 => vec![0, 3],
            1 => vec![0, 1, 3],
            2 => vec![2, 4, 5],
            _ => vec![2, 1],
        };
        txs.push(w.tx(
            p,
            Call::Budget(BudgetCall::Vote {
                round: 0,
                voter: did(p),
                projects: choice,
            }),
        ));
    }
    // In round 1 each resident votes from its ballot key, with its token.
    for (i, (ballot, token)) in ballot_keys.iter().enumerate() {
        let choice = if i % 3 == 0 { vec![0, 1] } else { vec![2] };
        let call = Call::Budget(BudgetCall::VoteSecret {
            round: 1,
            token: token.clone(),
            projects: choice,
        });
        txs.push(w.tx(ballot, call));
    }
    let voters: Vec<&Keypair> = people
        .iter()
        .chain(ballot_keys.iter().map(|(k, _)| k))
        .collect();
    w.send_and_settle(&txs, &voters)?;
    acta_node::outln!(
        "   {} residents voted in round 0 as themselves, and in round 1 from one-time ballot keys",
        people.len()
    );
    if let Some((ballot, token)) = ballot_keys.first() {
        let call = Call::Budget(BudgetCall::VoteSecret {
            round: 1,
            token: token.clone(),
            projects: vec![1, 2],
        });
        let tx = w.tx(ballot, call);
        w.send_and_settle(&[tx], &[ballot])?;
        acta_node::outln!(
            "   one of them changed its mind: the same ballot key replaced its ballot"
        );
    }
    // The round closes at closes_at; every node tallies it on a thread of its own and the
    // block LOCAL_TALLY_DELAY heights later stores the result (ADR 0019).
    net.wait_time(spec.closes_at, WAIT)?;
    // The first block whose time reached closes_at closed it: the round's status names it
    // and the height whose block stores the tally (or, tallied already, the tally does).
    let closed_round = |net: &LocalNet| -> Result<Option<(Height, Height)>> {
        let bytes = net
            .state(0, NS_ROUND, &0u64.to_be_bytes())?
            .context("round 0 is missing")?;
        Ok(match BudgetRound::try_from_slice(&bytes)?.status {
            RoundStatus::Tallying { closed, due, .. } => Some((closed, due)),
            RoundStatus::Tallied => {
                let bytes = net
                    .state(0, NS_TALLY, &0u64.to_be_bytes())?
                    .context("round 0 is tallied without a tally")?;
                let due = TallyRecord::try_from_slice(&bytes)?.height;
                let delay = acta_node::devnet::LOCAL_TALLY_DELAY;
                Some((Height(due.0.saturating_sub(delay)), due))
            }
            RoundStatus::Open => None,
            RoundStatus::Cancelled { at } => bail!("round 0 was cancelled at height {at}"),
        })
    };
    let deadline = Instant::now() + WAIT;
    let (closed, due) = loop {
        if let Some(found) = closed_round(&net)? {
            break found;
        }
        if Instant::now() > deadline {
            bail!("round 0 did not close within {WAIT:?} of its closes_at");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    acta_node::outln!(
        "== round 0 closed at {} by block {closed}; tallied off the consensus path, due at height {due}",
        spec.closes_at.rfc3339()
    );
    net.wait_height(due.0, WAIT)?;
    let bytes = net
        .state(0, NS_TALLY, &0u64.to_be_bytes())?
        .context("the round closed without a stored tally")?;
    let tally = TallyRecord::try_from_slice(&bytes)?;
    acta_node::outln!(
        "== round 0 tallied at height {}; Method of Equal Shares with Add1 selected:",
        tally.height
    );
    let pln = |n: u64| money_in("PLN", u128::from(n));
    for &p in &tally.selected {
        let (title, cost) = projects[p as usize];
        acta_node::outln!(
            "   {title:<24} {:>11}  ({} approvals)",
            pln(cost),
            tally.approvals[p as usize]
        );
    }
    acta_node::outln!(
        "   {} of {} spent; budget per voter at the end PLN {} (exactly {})",
        pln(tally.total_cost),
        pln(spec.budget),
        tally.endowment.map_or("-".into(), |(n, d)| decimal(n, d)),
        tally
            .endowment
            .map_or("-".into(), |(n, d)| format!("{n}/{d}"))
    );

    let bytes = net
        .state(0, NS_TALLY, &1u64.to_be_bytes())?
        .context("round 1 closed without a stored tally")?;
    let secret_tally = TallyRecord::try_from_slice(&bytes)?;
    let selected: Vec<&str> = secret_tally
        .selected
        .iter()
        .map(|&p| secret_projects[p as usize].0)
        .collect();
    let export = acta_node::devnet::http(
        &net.nodes[0].rpc,
        "GET",
        "/budget/rounds/1/ballots.pb",
        None,
        WAIT,
    )?;
    if export.status != 200 || export.text().contains("did:") {
        bail!("the export of secret round 1 failed or names a DID");
    }
    acta_node::outln!(
        "== round 1 closed: {} secret ballots (no more than the {} tokens issued) selected {}; its export names no DID",
        secret_tally.voters,
        ballot_keys.len(),
        selected.join(", ")
    );

    // Every node holds the same chain.
    let top = (0..net.nodes.len())
        .map(|i| net.height(i))
        .min()
        .unwrap_or(0);
    let mut txs_total = 0;
    for h in 1..=top {
        let first = net.block_summary(0, h)?;
        for i in 1..net.nodes.len() {
            if net.block_summary(i, h)? != first {
                bail!("node{i} differs from node0 at height {h}");
            }
        }
        txs_total += first.2;
    }
    acta_node::outln!(
        "== all 4 nodes hold the same {top} blocks ({txs_total} transactions) and state roots; {:.1} s in all",
        started.elapsed().as_secs_f64()
    );
    audit(&net, &did(&device), &first_batch)?;
    let reading_bundle = write_reading_bundle(&net, &did(&device), &first_batch, dir)?;
    // One resident's key in a wallet keystore, to vote from the page with.
    let voter = people.last().context("the demo needs a resident")?;
    let keystore = dir.join("wallet");
    Keystore::new(&keystore).add(PAGE_VOTER, &voter.seed(), PAGE_PASSPHRASE)?;
    let voter_key = keystore.join(format!("{PAGE_VOTER}.json"));
    acta_node::outln!(
        "== round {PAGE_ROUND} takes votes until {}; resident {} can vote from the page with key file {} (passphrase {PAGE_PASSPHRASE:?})",
        page_spec.closes_at.rfc3339(),
        did(voter),
        voter_key.display()
    );
    drop(w);
    Ok(City {
        net,
        device: did(&device).to_string(),
        agency: did(&agency).to_string(),
        reading_bundle,
        voter_key,
        voter: did(voter).to_string(),
        registrar: PageRegistrar {
            key: registrar,
            rsa: page_registrar,
        },
    })
}

/// Every resident asks for a ballot token of round 1 with a blinded message, signed by its
/// DID; the registrar blind-signs each recorded request; each resident unblinds its token.
/// The residents' one-time ballot keys with their tokens.
fn secret_tokens(
    w: &mut Wallet<'_>,
    people: &[Keypair],
    registrar: &Keypair,
    registrar_rsa: &token::Registrar,
    key: &token::RegistrarKey,
) -> Result<Vec<(Keypair, Bytes<{ token::RSA_VALUE_BYTES_MAX }>)>> {
    let chain = w.chain.clone();
    let mut kept = Vec::new();
    let mut txs = Vec::new();
    for p in people {
        let ballot = Keypair::generate();
        let blinded = token::blind(key, &chain, 1, &ballot.public())?;
        let call = Call::Budget(BudgetCall::RequestToken {
            round: 1,
            voter: did(p),
            blinded: Bytes::new(blinded.message.clone())?,
        });
        txs.push(w.tx(p, call));
        kept.push((ballot, blinded));
    }
    let residents: Vec<&Keypair> = people.iter().collect();
    w.send_and_settle(&txs, &residents)?;
    // The registrar answers what the ledger recorded (it never sees a ballot key).
    let (status, page) =
        acta_node::devnet::get(&w.net.nodes[0].rpc, "/budget/rounds/1/tokens?limit=100")?;
    let requests = page["requests"].as_array().cloned().unwrap_or_default();
    if status != 200 || requests.len() != people.len() {
        bail!(
            "the ledger recorded {} token requests of {}: {page}",
            requests.len(),
            people.len()
        );
    }
    let mut txs = Vec::new();
    let mut signatures = Vec::new();
    for r in &requests {
        let blinded = hex::decode(r["blinded"].as_str().unwrap_or_default())?;
        let index = r["index"]
            .as_u64()
            .context("a token request without index")?;
        let signature = registrar_rsa.sign_blinded(&blinded)?;
        signatures.push((blinded, signature.clone()));
        let call = Call::Budget(BudgetCall::IssueToken {
            round: 1,
            request: index,
            blind_signature: Bytes::new(signature)?,
        });
        txs.push(w.tx(registrar, call));
    }
    w.send_and_settle(&txs, &[registrar])?;
    acta_node::outln!(
        "   {} residents asked for round 1's ballot tokens; the registrar blind-signed each",
        people.len()
    );
    kept.into_iter()
        .map(|(ballot, blinded)| {
            let (_, signature) = signatures
                .iter()
                .find(|(m, _)| *m == blinded.message)
                .ok_or_else(|| anyhow!("a token request was not answered"))?;
            let token = token::finalize(key, &blinded, signature, &chain, 1, &ballot.public())?;
            Ok((ballot, Bytes::new(token)?))
        })
        .collect()
}

/// Writes `dir/reading-17.json`: the node's answer for the sensor's batch 0 with its proof
/// against the genesis, and reading 17 with its inclusion proof in the bundle; checks it.
fn write_reading_bundle(
    net: &LocalNet,
    device: &Did,
    readings: &[Vec<u8>],
    dir: &Path,
) -> Result<PathBuf> {
    let (code, mut v) = acta_node::devnet::get(
        &net.nodes[0].rpc,
        &format!("/devices/{device}/attestations/0?prove=true"),
    )?;
    if code != 200 {
        bail!("proof of batch 0 ({code}): {v}");
    }
    with_reading(&mut v, readings, 17)?;
    let (_, spec) = acta_node::genesis::Genesis::load(&net.nodes[0].home.join("genesis.json"))?;
    let anchor = TrustAnchor::genesis(spec.chain_id.clone(), spec.validators.clone());
    audit::verify(&v, &anchor).map_err(|e| anyhow!("the reading's bundle: {e}"))?;
    let path = dir.join("reading-17.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&v)?)
        .with_context(|| format!("writing {}", path.display()))?;
    acta_node::outln!(
        "   reading 17's bundle, proven against the genesis: {} (acta audit verify {} --genesis {})",
        path.display(),
        path.display(),
        net.nodes[0].home.join("genesis.json").display()
    );
    Ok(path)
}

/// Puts reading `index` of `readings` (a batch), with its inclusion proof, in the bundle of
/// the proven answer `v`.
fn with_reading(v: &mut serde_json::Value, readings: &[Vec<u8>], index: usize) -> Result<()> {
    let mut bundle: ProofBundle =
        serde_json::from_value(v["proof"].clone()).context("the node's proof bundle")?;
    let leaves: Vec<Hash> = readings.iter().map(|r| merkle::leaf_hash(r)).collect();
    bundle.readings = vec![ReadingEntry {
        reading: readings.get(index).context("no such reading")?.clone(),
        proof: merkle::inclusion_proof(&leaves, index)?,
    }];
    v["proof"] = serde_json::to_value(&bundle)?;
    Ok(())
}

/// An auditor takes one reading and checks it offline against a checkpoint: it fetches the
/// latest checkpoint (a C2SP note) from one node and opens it with the genesis validators
/// (more than two thirds of the power must have cosigned), asks another node for a proof of
/// the reading's batch against that checkpoint, adds the reading with its inclusion proof,
/// and verifies the bundle and every field of the answer beside it.
fn audit(net: &LocalNet, device: &Did, readings: &[Vec<u8>]) -> Result<()> {
    let (_, spec) = acta_node::genesis::Genesis::load(&net.nodes[0].home.join("genesis.json"))?;
    let anchor = TrustAnchor::genesis(spec.chain_id.clone(), spec.validators.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    let (signed, power) = loop {
        let a = acta_node::devnet::http(
            &net.nodes[3].rpc,
            "GET",
            "/checkpoint",
            None,
            Duration::from_secs(10),
        )?;
        if a.status == 200 {
            break SignedCheckpoint::open(
                &a.text(),
                &checkpoint::origin(&spec.chain_id),
                &spec.validators,
            )
            .map_err(|e| anyhow!("the checkpoint does not open: {e}"))?;
        }
        if Instant::now() > deadline {
            bail!("no cosigned checkpoint within 30 s: {}", a.text());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let size = signed.checkpoint.size;
    acta_node::outln!(
        "== an auditor takes checkpoint {size} of node3 (root {}), cosigned by {} of {} genesis voting power",
        signed.checkpoint.root,
        power.0,
        spec.validators.total_power().0
    );
    let (code, mut v) = acta_node::devnet::get(
        &net.nodes[2].rpc,
        &format!("/devices/{device}/attestations/0?prove=true&height={size}&checkpoint={size}"),
    )?;
    if code != 200 {
        bail!("proof of batch 0 ({code}): {v}");
    }
    let index = 17;
    with_reading(&mut v, readings, index)?;
    let report = audit::verify_against(&v, &anchor, &signed.checkpoint)
        .map_err(|e| anyhow!("the audit failed: {e}"))?;
    // The bundle proves what the auditor asked about: this device's batch 0.
    match report.verified.readings.as_slice() {
        [r] if r.device == *device && r.sequence == 0 && r.index == index as u64 => {}
        other => bail!("the bundle proves another reading: {other:?}"),
    }
    acta_node::outln!(
        "   and verifies reading {index} ({}) offline against it, from node2's bundle:",
        String::from_utf8_lossy(&readings[index])
    );
    for step in &report.verified.steps {
        acta_node::outln!("   ok  {step}");
    }
    acta_node::outln!(
        "   ok  each of the {} values of the answer shown is computed again from the proven records",
        report.fields
    );
    let mut forged = v.clone();
    forged["proof"]["readings"][0]["reading"] =
        serde_json::json!(hex::encode(br#"{"t":0,"pm25":3}"#));
    match audit::verify_against(&forged, &anchor, &signed.checkpoint) {
        Ok(_) => bail!("a forged reading verified"),
        Err(e) => acta_node::outln!("   a forged reading fails: {e}"),
    }
    let mut forged = v.clone();
    forged["attestation"]["batch"]["reading_count"] = serde_json::json!(1);
    match audit::verify_against(&forged, &anchor, &signed.checkpoint) {
        Ok(_) => bail!("a forged field verified"),
        Err(e) => acta_node::outln!("   and so does an edited field: {e}"),
    }
    Ok(())
}
