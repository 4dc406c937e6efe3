//! Four `actad` processes on 127.0.0.1 agree block by block; survive a SIGKILL, a wiped
//! home and a stalled half; and ignore garbage and strangers.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::time::Duration;

use common::{did_tx, Net};

const WAIT: Duration = Duration::from_secs(90);

#[test]
fn four_validators_decide_blocks_with_transactions_and_agree() {
    let mut net = Net::new(4);
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 2, WAIT);
    // Transactions through every node's API.
    for i in 0..40u32 {
        let (code, v) = net.submit((i % 4) as usize, &did_tx(i));
        assert_eq!(code, 200, "{v}");
    }
    // A replay and garbage are refused with a reason.
    let (code, v) = net.submit(0, &did_tx(0));
    assert!(code == 422, "{code} {v}");
    let (code, v) = common::post(&net.nodes[0].rpc, "/txs", "{\"tx\":\"00ff\"}").unwrap();
    assert_eq!(code, 400, "{v}");
    assert_eq!(v["code"], "bad_transaction");
    let target = net.height(0) + 4;
    net.wait_height(&[0, 1, 2, 3], target, WAIT);
    let txs = net.assert_same_chain(&[0, 1, 2, 3], target);
    assert_eq!(txs, 40, "every submitted transaction is in a block once");
    for i in 0..4 {
        net.stop(i);
    }
}
