//! The genesis state: what the chain starts with before its first block.

use acta_ledger::{
    records::{Council, CredentialKind, IssuerRecord, ValidatorNode},
    state::{state_key, StateChanges},
    validator::ValidatorSet,
    Did, Height, PublicKey,
};

use crate::{
    governance::{NS_COUNCIL, NS_ISSUER},
    params::{ParamRecord, NS_PARAM},
    staking::{NS_VALIDATORS, NS_VALIDATOR_NODES},
};

/// What a chain starts with.
#[derive(Clone, Debug)]
pub struct GenesisState {
    /// The validators of heights 1 and 2 (and later, until the council changes them).
    pub validators: ValidatorSet,
    /// The node of each genesis validator (peer id, and address if given).
    pub nodes: Vec<(PublicKey, ValidatorNode)>,
    pub council: Council,
    /// Issuers registered from the start, with the kinds each may issue. Their DIDs must be
    /// created on the chain before they issue.
    pub issuers: Vec<(Did, Vec<CredentialKind>)>,
    pub parameters: Vec<(String, u64)>,
}

/// The state writes of height 0.
pub fn genesis_changes(genesis: &GenesisState) -> StateChanges {
    let mut changes = StateChanges::new();
    let mut put = |ns: &str, key: &[u8], value: Vec<u8>| {
        changes.insert(state_key(ns, key), Some(value));
    };
    put(
        NS_VALIDATORS,
        b"set",
        borsh::to_vec(&genesis.validators).expect("encodes"),
    );
    for (key, node) in &genesis.nodes {
        put(
            NS_VALIDATOR_NODES,
            &key.0,
            borsh::to_vec(node).expect("encodes"),
        );
    }
    put(
        NS_COUNCIL,
        b"council",
        borsh::to_vec(&genesis.council).expect("encodes"),
    );
    for (did, kinds) in &genesis.issuers {
        let mut kinds = kinds.clone();
        kinds.sort();
        kinds.dedup();
        let record = IssuerRecord {
            did: *did,
            kinds,
            registered: Height(0),
            revoked: None,
        };
        put(NS_ISSUER, &did.0, borsh::to_vec(&record).expect("encodes"));
    }
    for (name, value) in &genesis.parameters {
        put(
            NS_PARAM,
            name.as_bytes(),
            borsh::to_vec(&ParamRecord {
                value: *value,
                set_at: Height(0),
            })
            .expect("encodes"),
        );
    }
    changes
}
