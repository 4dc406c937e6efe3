//! A chain in memory for the contracts' tests: execute blocks, commit them, and check
//! that refusals change nothing. Helpers sign with each key's next nonce as the state has
//! it, create DIDs, pass council actions and issue credentials.

#![allow(dead_code, clippy::unwrap_used)]

use acta_contracts::{
    execute_block, executor::NS_NONCE, genesis::genesis_changes, genesis::GenesisState, identity,
    BlockContext, BlockOutcome, ExecError, Outcome, Receipt,
};
use acta_ledger::{
    records::{Council, CredentialKind, GovAction},
    state::{state_key, AuthenticatedState, MemoryState},
    testing,
    tx::{CredentialCall, GovernanceCall, IdentityCall},
    types::Text,
    validator::ValidatorSet,
    vote::Evidence,
    Call, Did, Hash, Height, Keypair, PublicKey, Timestamp, Transaction,
};
use borsh::BorshDeserialize;

/// Council members of the test genesis: keys (0xc5, 0..3), two of three must approve.
pub fn council_keys() -> Vec<Keypair> {
    (0..3).map(|i| testing::key(0xc5, i)).collect()
}

/// The genesis validators: 4 keys (0xa0, 0..4) of power 100.
pub fn genesis_validators() -> (Vec<Keypair>, ValidatorSet) {
    testing::validators(4, &[100, 100, 100, 100])
}

pub fn test_genesis() -> GenesisState {
    GenesisState {
        validators: genesis_validators().1,
        nodes: vec![],
        council: Council::new(council_keys().iter().map(Keypair::public).collect(), 2).unwrap(),
        issuers: vec![],
        parameters: vec![("tally_delay".into(), TALLY_DELAY)],
    }
}

/// Heights from a budget round's closing to the block that stores its tally, in the test
/// genesis.
pub const TALLY_DELAY: u64 = 3;

pub fn did_of(key: &Keypair) -> Did {
    Did::from_initial_key(&key.public())
}

pub fn tx(key: &Keypair, nonce: u64, call: Call) -> Transaction {
    Transaction::sign(
        key,
        testing::chain_id(),
        nonce,
        acta_ledger::testing::NO_EXPIRY,
        call,
    )
}

/// Validity window of the credentials the helpers issue (block times are around 1.7e12).
pub const VALID_FROM: Timestamp = Timestamp(1_600_000_000_000);
pub const VALID_UNTIL: Timestamp = Timestamp(1_900_000_000_000);

/// The time of the test chain's block at `height`: a second per block.
pub fn time_of(height: u64) -> Timestamp {
    Timestamp(1_700_000_000_000 + height * 1000)
}

/// The height of the test chain's block at time `t` (the inverse of [`time_of`]).
pub fn height_of(t: Timestamp) -> u64 {
    (t.0 - 1_700_000_000_000) / 1000
}

pub struct Chain {
    pub state: MemoryState,
    /// Events of the last block's start (evidence, tallies).
    pub last_events: Vec<acta_contracts::Event>,
    credentials: u32,
}

impl Chain {
    pub fn new() -> Chain {
        Chain::with_genesis(&test_genesis())
    }

    pub fn with_genesis(genesis: &GenesisState) -> Chain {
        let mut state = MemoryState::new();
        state.commit(&genesis_changes(genesis)).unwrap();
        Chain {
            state,
            last_events: Vec::new(),
            credentials: 0,
        }
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
            time: time_of(height.0),
            proposer: testing::key(0xa0, 0).public(),
        }
    }

    /// Executes one block without committing it.
    pub fn execute(&self, txs: &[Transaction], evidence: &[Evidence]) -> BlockOutcome {
        execute_block(&self.state, &self.ctx(), txs, evidence).unwrap()
    }

    /// Executes one block of `txs` and `evidence` and commits its changes.
    pub fn block_with(&mut self, txs: &[Transaction], evidence: &[Evidence]) -> Vec<Receipt> {
        let outcome = self.execute(txs, evidence);
        self.state.commit(&outcome.changes).unwrap();
        self.last_events = outcome.events;
        outcome.receipts
    }

    pub fn block(&mut self, txs: &[Transaction]) -> Vec<Receipt> {
        self.block_with(txs, &[])
    }

    /// Commits empty blocks until the chain is at `height`.
    pub fn advance_to(&mut self, height: u64) {
        while self.height().0 < height {
            self.block(&[]);
        }
    }

    /// Executes one transaction, asserting that its call is refused with `code` and that it
    /// changes nothing but its signer's nonce, which it uses up; then commits it.
    pub fn refused(&mut self, tx: Transaction, code: &str) {
        let outcome = self.execute(std::slice::from_ref(&tx), &[]);
        match &outcome.receipts[0].outcome {
            Outcome::Refused { code: got } => {
                assert_eq!(got.as_str(), code, "{:?}", outcome.messages)
            }
            other => panic!("expected refusal {code}, got {other:?}"),
        }
        assert_eq!(outcome.messages.len(), 1, "one message for the refusal");
        let nonce_key = state_key(NS_NONCE, &tx.signer.0);
        let written: Vec<&Hash> = outcome.changes.keys().collect();
        assert_eq!(
            written,
            vec![&nonce_key],
            "a refused transaction wrote more than its nonce"
        );
        assert_eq!(
            outcome.changes[&nonce_key],
            Some(borsh::to_vec(&(tx.nonce + 1)).unwrap()),
            "a refused transaction uses up its nonce"
        );
        self.block(&[tx]);
    }

    /// Asserts that a block holding `tx` may not be executed at all (a bad signature, a
    /// wrong chain or not its signer's next nonce), so no block can hold it.
    pub fn invalid(&self, tx: Transaction) {
        match execute_block(&self.state, &self.ctx(), std::slice::from_ref(&tx), &[]) {
            Err(ExecError::InvalidTx { index: 0, id, .. }) => assert_eq!(id, tx.id()),
            other => panic!("expected an invalid block, got {other:?}"),
        }
    }

    pub fn accepted(&mut self, tx: Transaction) {
        let receipts = self.block(&[tx]);
        assert!(receipts[0].is_accepted(), "{:?}", receipts[0].outcome);
    }

    /// The next nonce of `key`.
    pub fn nonce(&self, key: &Keypair) -> u64 {
        self.read::<u64>(NS_NONCE, &key.public().0).unwrap_or(0)
    }

    /// `call` signed by `key` with its next nonce.
    pub fn sign(&self, key: &Keypair, call: Call) -> Transaction {
        tx(key, self.nonce(key), call)
    }

    /// Asserts that `key`'s `call` is accepted.
    pub fn ok(&mut self, key: &Keypair, call: Call) {
        let tx = self.sign(key, call);
        self.accepted(tx);
    }

    /// Asserts that `key`'s `call` is refused with `code` and changes nothing.
    pub fn no(&mut self, key: &Keypair, call: Call, code: &str) {
        let tx = self.sign(key, call);
        self.refused(tx, code);
    }

    /// Reads a value at the latest height.
    pub fn read<T: BorshDeserialize>(&self, ns: &str, key: &[u8]) -> Option<T> {
        self.read_at(ns, key, self.height())
    }

    pub fn read_at<T: BorshDeserialize>(&self, ns: &str, key: &[u8], height: Height) -> Option<T> {
        self.state
            .get(&state_key(ns, key), height)
            .unwrap()
            .map(|b| T::try_from_slice(&b).unwrap())
    }

    /// Creates the DID of `key`'s initial key.
    pub fn create_did(&mut self, key: &Keypair) -> Did {
        self.ok(
            key,
            Call::Identity(IdentityCall::CreateDid {
                next_key_hash: None,
            }),
        );
        did_of(key)
    }

    /// Proposes `action` (council member 0) and approves it (member 1), so it is carried out.
    pub fn council_do(&mut self, action: GovAction) {
        let council = council_keys();
        let id = self.read::<u64>("gov_next", b"next").unwrap_or(0);
        let action_hash = action.hash();
        self.ok(
            &council[0],
            Call::Governance(GovernanceCall::Propose { action }),
        );
        self.ok(
            &council[1],
            Call::Governance(GovernanceCall::Approve {
                proposal: id,
                action_hash,
            }),
        );
    }

    /// Creates an agency's DID and has the council register it as an issuer of `kinds`.
    pub fn issuer(&mut self, index: u32, kinds: Vec<CredentialKind>) -> Keypair {
        let agency = testing::key(0xd0, index);
        let did = self.create_did(&agency);
        self.council_do(GovAction::RegisterIssuer { did, kinds });
        agency
    }

    /// Has `issuer` anchor a credential for `subject`; returns its id.
    pub fn credential(
        &mut self,
        issuer: &Keypair,
        subject: Did,
        kind: CredentialKind,
        district: Option<&str>,
    ) -> Hash {
        self.credentials += 1;
        let id = Hash::digest(&self.credentials.to_be_bytes());
        let call = CredentialCall::Issue {
            id,
            issuer: did_of(issuer),
            subject,
            kind,
            district: district.map(|d| Text::new(d).unwrap()),
            valid_from: VALID_FROM,
            valid_until: VALID_UNTIL,
        };
        self.ok(issuer, Call::Credential(call));
        id
    }

    pub fn resolve(&self, did: &str, height: Height) -> serde_json::Value {
        identity::resolve(&self.state, did, height, self.height()).unwrap()
    }
}

impl Default for Chain {
    fn default() -> Self {
        Chain::new()
    }
}

/// A fresh key of a test user: tag 0xe0.
pub fn user(i: u32) -> Keypair {
    testing::key(0xe0, i)
}

pub fn public(key: &Keypair) -> PublicKey {
    key.public()
}
