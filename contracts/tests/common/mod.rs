//! A chain in memory for the contracts' tests: execute blocks, commit them, and check
//! that refusals change nothing.

#![allow(dead_code, clippy::unwrap_used)]

use acta_contracts::{
    execute_block, genesis::genesis_changes, genesis::GenesisState, identity, BlockContext,
    Outcome, Receipt,
};
use acta_ledger::{
    records::Council,
    state::{AuthenticatedState, MemoryState},
    testing, Call, Did, Hash, Height, Keypair, Timestamp, Transaction,
};

/// Council members of the test genesis: keys (0xc5, 0..3), two of three must approve.
pub fn council_keys() -> Vec<Keypair> {
    (0..3).map(|i| testing::key(0xc5, i)).collect()
}

pub fn test_genesis() -> GenesisState {
    GenesisState {
        council: Council::new(council_keys().iter().map(Keypair::public).collect(), 2).unwrap(),
        issuers: vec![],
        parameters: vec![],
    }
}

pub fn did_of(key: &Keypair) -> Did {
    Did::from_initial_key(&key.public())
}

pub fn tx(key: &Keypair, nonce: u64, call: Call) -> Transaction {
    Transaction::sign(key, testing::chain_id(), nonce, call)
}

pub struct Chain {
    pub state: MemoryState,
}

impl Chain {
    pub fn new() -> Chain {
        Chain::with_genesis(&test_genesis())
    }

    pub fn with_genesis(genesis: &GenesisState) -> Chain {
        let mut state = MemoryState::new();
        state.commit(&genesis_changes(genesis)).unwrap();
        Chain { state }
    }

    pub fn height(&self) -> Height {
        self.state.latest().unwrap()
    }

    pub fn root(&self) -> Hash {
        self.state.state_root(self.height()).unwrap()
    }

    pub fn ctx(&self) -> BlockContext {
        let height = self.height().next();
        BlockContext {
            chain_id: testing::chain_id(),
            height,
            time: Timestamp(1_700_000_000_000 + height.0 * 1000),
            proposer: testing::key(0xa0, 0).public(),
        }
    }

    /// Executes one block of `txs` and commits its changes.
    pub fn block(&mut self, txs: &[Transaction]) -> Vec<Receipt> {
        let outcome = execute_block(&self.state, &self.ctx(), txs).unwrap();
        self.state.commit(&outcome.changes).unwrap();
        outcome.receipts
    }

    /// Executes one transaction, asserting it is refused with `code` and changes nothing.
    pub fn refused(&mut self, tx: Transaction, code: &str) {
        let before = self.root();
        let receipts = self.block(&[tx]);
        match &receipts[0].outcome {
            Outcome::Refused { code: got, message } => assert_eq!(got, code, "{message}"),
            other => panic!("expected refusal {code}, got {other:?}"),
        }
        assert_eq!(
            self.root(),
            before,
            "a refused transaction changed the state"
        );
    }

    pub fn accepted(&mut self, tx: Transaction) {
        let receipts = self.block(&[tx]);
        assert!(receipts[0].is_accepted(), "{:?}", receipts[0].outcome);
    }

    pub fn resolve(&self, did: &str, height: Height) -> serde_json::Value {
        identity::resolve(&self.state, did, height, self.height()).unwrap()
    }
}
