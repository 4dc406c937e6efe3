//! The replay an outside client found, through a live node's API: a council member's
//! approval refused because its proposal did not exist yet cannot be replayed onto the
//! proposal of that number made later; it is final, committed once, and the proposal stays
//! one approval short. Approvals count only for the action they name; parameters are typed.

#![allow(clippy::unwrap_used)]

use std::{path::Path, time::Duration};

use acta_ledger::{
    records::GovAction, testing, tx::GovernanceCall, types::Text, Call, Keypair, Transaction,
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
    Transaction::sign(key, testing::chain_id(), nonce, Call::Governance(call))
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
fn a_refused_approval_is_final_and_cannot_be_replayed_onto_a_later_proposal() {
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

    // 1. Member 1 approves proposal 0 before it exists: refused, and final.
    let early = signed(
        &council[1],
        0,
        GovernanceCall::Approve {
            proposal: 0,
            action_hash: slash_all().hash(),
        },
    );
    let (code, v) = send(&rpc, &early, "commit");
    assert_eq!((code, v["code"].as_str()), (422, Some("not_found")), "{v}");
    let first_height = v["height"].as_u64().unwrap();
    assert!(
        v["message"].as_str().unwrap().contains("proposal 0"),
        "the words stay available: {v}"
    );
    // Its nonce is used up.
    let (_, n) = get(
        &rpc,
        &format!("/state/nonce/{}", council[1].public().to_hex()),
    )
    .unwrap();
    assert!(n["value"].is_string(), "{n}");

    // 2. Member 0 alone proposes to slash everything: one approval of two.
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

    // 3. Anyone resubmits member 1's old bytes: refused for its used nonce, changing nothing.
    let (code, v) = send(&rpc, &early, "sync");
    assert_eq!(v["code"], "stale_nonce", "{code} {v}");
    // In commit mode the answer is the transaction's one committed outcome.
    let (code, v) = send(&rpc, &early, "commit");
    assert_eq!((code, v["code"].as_str()), (422, Some("not_found")), "{v}");
    assert_eq!(v["height"].as_u64(), Some(first_height), "{v}");
    let target = net.height(0) + 2;
    net.wait_height(target, WAIT).unwrap();
    let (_, p) = get(&rpc, "/council/proposals/0").unwrap();
    assert_eq!(p["proposal"]["executed"], Value::Null, "{p}");
    assert_eq!(p["proposal"]["approvals"].as_array().unwrap().len(), 1);
    let (code, t) = get(&rpc, &format!("/txs/{}", early.id())).unwrap();
    assert_eq!(code, 200, "{t}");
    assert_eq!(
        t["height"].as_u64(),
        Some(first_height),
        "committed once: {t}"
    );
    assert_eq!(t["result"]["status"], "refused");
    assert_eq!(t["result"]["code"], "not_found");
    assert_eq!(param(&rpc, "slash_fraction_bps")["value"], 500);

    // 4. An approval naming another action is refused; the right one carries it out.
    let other = GovAction::SetParameter {
        name: Text::new("slash_fraction_bps").unwrap(),
        value: 100,
    };
    let wrong = signed(
        &council[1],
        1,
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
        2,
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
