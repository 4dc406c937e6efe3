//! The replay an outside client found, through a live node's API: a council member's
//! approval refused because its proposal did not exist yet cannot be replayed onto the
//! proposal of that number made later. The node's pool refuses the call (it never takes a
//! place in a block, and its nonce stays unused), and its signed time limit ends its bytes'
//! life: sent again once the proposal exists, it is refused as expired and the proposal
//! stays one approval short. Approvals count only for the action they name; parameters are
//! typed. (With `mempool.check_calls = false` the refusal is committed and final instead:
//! node/tests/api.rs.)

#![allow(clippy::unwrap_used)]

use std::{path::Path, time::Duration};

use acta_ledger::{
    records::GovAction, testing, tx::GovernanceCall, types::Text, Call, Keypair, Timestamp,
    Transaction,
};
use acta_node::devnet::{get, post, LocalNet};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn slash_all() -> GovAction {
    GovAction::SetParameter {
        name: Text::new("slash_fraction_bps").unwrap(),
        value: 10_000,
    }
}

fn signed(key: &Keypair, nonce: u64, call: GovernanceCall) -> Transaction {
    Transaction::sign(
        key,
        testing::chain_id(),
        nonce,
        acta_ledger::testing::valid_until_soon(),
        Call::Governance(call),
    )
}

fn send(rpc: &str, tx: &Transaction, mode: &str) -> (u16, Value) {
    let body = serde_json::json!({ "tx": hex::encode(tx.encode()) }).to_string();
    post(rpc, &format!("/txs?mode={mode}"), &body).unwrap()
}

fn param(rpc: &str, name: &str) -> Value {
    let (code, v) = get(rpc, "/params").unwrap();
    assert_eq!(code, 200, "{v}");
    v["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .cloned()
        .unwrap()
}

#[test]
fn a_refused_approval_dies_with_its_time_limit_and_cannot_be_replayed_onto_a_later_proposal() {
    let dir = tempfile::tempdir().unwrap();
    let council: Vec<Keypair> = (0..3).map(|i| testing::key(0xc5, i)).collect();
    let mut net = LocalNet::init(
        Path::new(env!("CARGO_BIN_EXE_actad")),
        &dir.path().join("net"),
        1,
        testing::chain_id().as_str(),
        &council,
        2,
    )
    .unwrap();
    net.start_all().unwrap();
    net.wait_height(1, WAIT).unwrap();
    let rpc = net.nodes[0].rpc.clone();

    // 1. Member 1 approves proposal 0 before it exists, valid for 3 s: the pool refuses
    //    it, and nothing is recorded.
    let valid_until = Timestamp::now().plus_ms(3_000);
    let early = Transaction::sign(
        &council[1],
        testing::chain_id(),
        0,
        valid_until,
        Call::Governance(GovernanceCall::Approve {
            proposal: 0,
            action_hash: slash_all().hash(),
        }),
    );
    let (code, v) = send(&rpc, &early, "commit");
    assert_eq!((code, v["code"].as_str()), (422, Some("not_found")), "{v}");
    assert_eq!(v["height"], Value::Null, "in no block: {v}");
    assert!(
        v["message"].as_str().unwrap().contains("proposal 0"),
        "the words say why: {v}"
    );
    let nonce_path = format!("/state/nonce/{}", council[1].public().to_hex());
    let (_, n) = get(&rpc, &nonce_path).unwrap();
    assert_eq!(n["value"], Value::Null, "the nonce is unused: {n}");

    // 2. Its time limit passes; then member 0 alone proposes to slash everything: one
    //    approval of two.
    let deadline = std::time::Instant::now() + WAIT;
    while Timestamp::now() <= valid_until {
        assert!(
            std::time::Instant::now() < deadline,
            "the clock stands still"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let propose = signed(
        &council[0],
        0,
        GovernanceCall::Propose {
            action: slash_all(),
        },
    );
    let (code, v) = send(&rpc, &propose, "commit");
    assert_eq!(code, 200, "{v}");
    let (_, p) = get(&rpc, "/council/proposals/0").unwrap();
    assert_eq!(p["proposal"]["executed"], Value::Null, "{p}");
    assert_eq!(
        p["proposal"]["action_hash"].as_str().unwrap(),
        slash_all().hash().to_hex()
    );

    // 3. Anyone resubmits member 1's old bytes: refused as expired, changing nothing.
    for mode in ["sync", "commit"] {
        let (code, v) = send(&rpc, &early, mode);
        assert_eq!((code, v["code"].as_str()), (422, Some("expired")), "{v}");
    }
    let target = net.height(0) + 1;
    net.wait_height(target, WAIT).unwrap();
    let (_, p) = get(&rpc, "/council/proposals/0").unwrap();
    assert_eq!(p["proposal"]["executed"], Value::Null, "{p}");
    assert_eq!(p["proposal"]["approvals"].as_array().unwrap().len(), 1);
    let (code, t) = get(&rpc, &format!("/txs/{}", early.id())).unwrap();
    assert_eq!(code, 404, "never committed: {t}");
    assert_eq!(param(&rpc, "slash_fraction_bps")["value"], 500);

    // 4. An approval naming another action is refused (its nonce stays free); the right
    //    one carries it out.
    let other = GovAction::SetParameter {
        name: Text::new("slash_fraction_bps").unwrap(),
        value: 100,
    };
    let wrong = signed(
        &council[1],
        0,
        GovernanceCall::Approve {
            proposal: 0,
            action_hash: other.hash(),
        },
    );
    let (code, v) = send(&rpc, &wrong, "commit");
    assert_eq!(
        (code, v["code"].as_str()),
        (422, Some("action_mismatch")),
        "{v}"
    );
    let right = signed(
        &council[1],
        0,
        GovernanceCall::Approve {
            proposal: 0,
            action_hash: slash_all().hash(),
        },
    );
    let (code, v) = send(&rpc, &right, "commit");
    assert_eq!(code, 200, "{v}");
    let set_at = v["height"].as_u64().unwrap();
    let slash = param(&rpc, "slash_fraction_bps");
    assert_eq!(slash["value"], 10_000, "{slash}");
    assert_eq!(slash["set_at"].as_u64(), Some(set_at), "{slash}");
    assert_eq!(slash["max"], 10_000);

    // 5. A misspelt parameter is refused when proposed.
    let typo = signed(
        &council[2],
        0,
        GovernanceCall::Propose {
            action: GovAction::SetParameter {
                name: Text::new("slash_fraction_bsp").unwrap(),
                value: 100,
            },
        },
    );
    let (code, v) = send(&rpc, &typo, "commit");
    assert_eq!(
        (code, v["code"].as_str()),
        (422, Some("unknown_parameter")),
        "{v}"
    );
    net.stop(0).unwrap();
}
