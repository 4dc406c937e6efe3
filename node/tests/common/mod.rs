//! The integration tests' network: [`acta_node::devnet::LocalNet`] in a temporary folder,
//! with this package's `actad`, and methods that fail the test (printing the nodes' logs)
//! instead of returning errors.

#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::cast_possible_truncation
)]

use std::{
    ops::{Deref, DerefMut},
    path::Path,
    time::Duration,
};

use acta_ledger::{testing, Keypair, Transaction};
use acta_node::devnet::LocalNet;
use serde_json::Value;

pub use acta_node::devnet::{free_port as try_free_port, get, post};

pub fn free_port() -> u16 {
    try_free_port().unwrap()
}

pub struct Net {
    pub dir: tempfile::TempDir,
    pub net: LocalNet,
}

impl Deref for Net {
    type Target = LocalNet;
    fn deref(&self) -> &LocalNet {
        &self.net
    }
}

impl DerefMut for Net {
    fn deref_mut(&mut self) -> &mut LocalNet {
        &mut self.net
    }
}

impl Net {
    /// `n` validator homes of equal power on chain `acta-test`; none started.
    pub fn new(n: usize) -> Net {
        let dir = tempfile::tempdir().unwrap();
        let council = [testing::key(0xc5, 0)];
        let net = LocalNet::init(
            Path::new(env!("CARGO_BIN_EXE_actad")),
            &dir.path().join("net"),
            n,
            testing::chain_id().as_str(),
            &council,
            1,
        )
        .unwrap();
        Net { dir, net }
    }

    pub fn start(&mut self, i: usize) {
        self.net.start(i).unwrap();
    }

    pub fn start_all(&mut self) {
        self.net.start_all().unwrap();
    }

    /// SIGTERM; the node must exit cleanly.
    pub fn stop(&mut self, i: usize) {
        self.net.stop(i).unwrap();
    }

    pub fn wait_height(&self, which: &[usize], height: u64, within: Duration) {
        if let Err(e) = self.net.wait_height_of(which, height, within) {
            self.net.dump_logs();
            panic!("{e}");
        }
    }

    /// Waits until every node has committed a block whose time is `time` or later, and
    /// returns the lowest of their heights then.
    pub fn wait_time(&self, time: acta_ledger::Timestamp, within: Duration) -> u64 {
        match self.net.wait_time(time, within) {
            Ok(h) => h,
            Err(e) => {
                self.net.dump_logs();
                panic!("{e}");
            }
        }
    }

    /// Waits until every node in `which` has committed the transactions of `key` below
    /// `nonce`.
    pub fn wait_nonce(&self, which: &[usize], key: &acta_ledger::PublicKey, nonce: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while which
            .iter()
            .any(|i| self.net.next_nonce(*i, key).unwrap_or(0) < nonce)
        {
            if std::time::Instant::now() > deadline {
                self.net.dump_logs();
                panic!(
                    "nodes {which:?} did not commit nonce {} of {key} within 60 s",
                    nonce - 1
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Prints the last lines of every node's log (for a failing test).
    pub fn dump_logs(&self) {
        self.net.dump_logs();
    }

    pub fn assert_same_chain(&self, which: &[usize], height: u64) -> usize {
        self.net.same_chain(which, height).unwrap()
    }

    /// Changes node `i`'s `config.toml` (before it starts).
    pub fn configure(&self, i: usize, change: impl FnOnce(&mut acta_node::config::Config)) {
        self.net.edit_config(i, change).unwrap();
    }

    pub fn submit(&self, i: usize, tx: &Transaction) -> (u16, Value) {
        self.net.submit_raw(i, tx).unwrap()
    }
}

/// Runs `command` (this package's `actad`, with its arguments) and fails the test with
/// its standard error unless it succeeds; its standard output.
pub fn succeeds(command: &mut std::process::Command) -> Vec<u8> {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A transaction creating the DID of user key `(0xb7, i)`.
pub fn did_tx(i: u32) -> Transaction {
    let key: Keypair = testing::key(0xb7, i);
    Transaction::sign(
        &key,
        testing::chain_id(),
        0,
        acta_ledger::testing::valid_until_soon(),
        acta_ledger::Call::Identity(acta_ledger::tx::IdentityCall::CreateDid {
            next_key_hash: None,
        }),
    )
}
