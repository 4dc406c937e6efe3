//! A chain to test with: a store holding the genesis state of three validators.

use std::collections::BTreeMap;

use acta_contracts::genesis::genesis_changes;
use acta_ledger::{state::AuthenticatedState, store::Store, testing, Height};

use crate::genesis::{ChainSpec, Genesis, GenesisCouncil, GenesisValidator};

/// A store with the genesis state of three validators of unequal power, then `heights`
/// heights of no changes.
pub fn chain(dir: &std::path::Path, heights: u64) -> (Store, ChainSpec) {
    let validators = (0..3u8)
        .map(|i| {
            let peer = libp2p::identity::Keypair::ed25519_from_bytes([7 + i; 32])
                .unwrap()
                .public()
                .to_peer_id();
            GenesisValidator {
                name: format!("v{i}"),
                consensus_key: testing::key(0xa0, u32::from(i)).public().to_hex(),
                peer_id: peer.to_string(),
                address: None,
                power: [10, 20, 45][usize::from(i)],
            }
        })
        .collect();
    let spec = Genesis {
        chain_id: "acta-test".into(),
        genesis_time_ms: 1_700_000_000_000,
        validators,
        council: GenesisCouncil {
            members: vec![testing::key(0xc5, 0).public().to_hex()],
            threshold: 1,
        },
        issuers: vec![],
        parameters: BTreeMap::new(),
    }
    .check()
    .unwrap();
    let store = Store::open(dir).unwrap();
    let update = store
        .prepare(&genesis_changes(&spec.state), Height(0))
        .unwrap();
    store.commit_genesis(update).unwrap();
    for _ in 0..heights {
        store.commit_state_only(&Default::default()).unwrap();
    }
    (store, spec)
}
