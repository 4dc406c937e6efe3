//! Fuzz targets for the node's decoders of outside bytes, as property tests on stable Rust:
//! gossip messages (consensus envelopes and transaction batches), block-sync frames, the
//! consensus WAL file, `config.toml` and `genesis.json`. Each gets random bytes and random
//! changes of a valid input, and must return an error or a value, never panic. The number
//! of cases follows `PROPTEST_CASES` (256 by default); docs/fuzzing.md has a longer run.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use acta_consensus::Message;
use acta_ledger::{codec::encode, testing, Height, Round, Vote, VoteKind};
use acta_node::{
    config::Config,
    genesis::{Genesis, GenesisCouncil, GenesisValidator},
    p2p::protocol::{
        CompactBlock, Envelope, Gossip, SyncCodec, SyncRequest, SyncResponse, TxBatch, TxBitmap,
        SYNC_REQUEST_MAX,
    },
    wal::Wal,
};
use futures::{executor::block_on, io::Cursor};
use libp2p::{request_response::Codec, StreamProtocol};
use proptest::prelude::*;

const MESSAGE_MAX: usize = 1 << 20;

#[derive(Clone, Debug)]
enum Change {
    Flip { at: usize, bit: u8 },
    Set { at: usize, byte: u8 },
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
    Cut { at: usize },
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Change::Flip { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Change::Set { at, byte }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Change::Insert { at, byte }),
        any::<usize>().prop_map(|at| Change::Remove { at }),
        any::<usize>().prop_map(|at| Change::Cut { at }),
    ]
}

fn changed(bytes: &[u8], changes: &[Change]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for c in changes {
        let n = out.len();
        if n == 0 {
            break;
        }
        match *c {
            Change::Flip { at, bit } => out[at % n] ^= 1 << bit,
            Change::Set { at, byte } => out[at % n] = byte,
            Change::Insert { at, byte } => out.insert(at % (n + 1), byte),
            Change::Remove { at } => {
                out.remove(at % n);
            }
            Change::Cut { at } => out.truncate(at % n),
        }
    }
    out
}

fn vote(height: u64) -> acta_ledger::SignedVote {
    Vote {
        kind: VoteKind::Prevote,
        height: Height(height),
        round: Round(1),
        block: Some(acta_ledger::Hash::digest(b"block")),
    }
    .sign(&testing::key(0xa0, 0), &testing::chain_id())
}

/// A block of two transactions.
fn block_sample() -> acta_ledger::Block {
    let chain = testing::chain_id();
    let (_, set) = testing::validators(4, &[1, 1, 1, 1]);
    testing::block(
        &chain,
        testing::BlockSpec {
            height: Height(3),
            parent_hash: acta_ledger::Hash::digest(b"parent"),
            txs: vec![
                testing::create_did_tx(&chain, 1, 0),
                testing::attest_tx(&chain, 2, 4),
            ],
            last_commit: None,
            evidence: Vec::new(),
            state_root: acta_ledger::Hash::digest(b"state"),
            validators: &set,
            next_validators: &set,
        },
    )
}

/// Valid gossip: a proposal with its block as transaction ids, a vote envelope, a status,
/// a batch of two transactions, and a vote as sent straight to a validator.
fn gossip_samples() -> Vec<Vec<u8>> {
    let chain = testing::chain_id();
    let block = block_sample();
    let proposal = acta_ledger::Proposal {
        height: Height(3),
        round: Round(0),
        block: block.hash(),
        pol_round: None,
    }
    .sign(&testing::key(0xa0, 0), &chain);
    vec![
        encode(&Envelope {
            nonce: 6,
            body: Gossip::Proposal {
                proposal,
                block: Box::new(CompactBlock::of(&block)),
            },
        }),
        encode(&Envelope {
            nonce: 7,
            body: Gossip::Vote(vote(3)),
        }),
        encode(&Envelope {
            nonce: 8,
            body: Gossip::Status { height: Height(9) },
        }),
        encode(&TxBatch(vec![
            testing::create_did_tx(&chain, 1, 0),
            testing::attest_tx(&chain, 2, 4),
        ])),
        encode(&Gossip::Vote(vote(4))),
    ]
}

fn decode_gossip(bytes: &[u8]) {
    let _ = Envelope::decode(bytes, MESSAGE_MAX);
    // A proposal or vote sent straight to a validator: a `Gossip` without envelope.
    let _ = acta_ledger::codec::decode::<Gossip>("consensus message", bytes, MESSAGE_MAX);
    let _ = TxBatch::decode(bytes, MESSAGE_MAX);
}

fn codec() -> SyncCodec {
    SyncCodec {
        max_request: SYNC_REQUEST_MAX,
        max_response: MESSAGE_MAX,
    }
}

fn read_sync(frame: &[u8]) {
    let protocol = StreamProtocol::new("/acta/sync/1");
    let mut c = codec();
    let _ = block_on(c.read_request(&protocol, &mut Cursor::new(frame.to_vec())));
    let _ = block_on(c.read_response(&protocol, &mut Cursor::new(frame.to_vec())));
}

fn frame(bytes: Vec<u8>) -> Vec<u8> {
    let mut out = u32::try_from(bytes.len()).unwrap().to_le_bytes().to_vec();
    out.extend(bytes);
    out
}

fn sync_samples() -> Vec<Vec<u8>> {
    vec![
        frame(encode(&SyncRequest::Blocks {
            from: Height(3),
            count: 16,
        })),
        frame(encode(&SyncResponse::Blocks(vec![]))),
        frame(encode(&SyncRequest::PendingTxs { max: 4096 })),
        frame(encode(&SyncResponse::PendingTxs(vec![
            acta_ledger::testing::create_did_tx(&acta_ledger::testing::chain_id(), 1, 0),
        ]))),
        frame(encode(&SyncRequest::ProposalTxs {
            block: block_sample().hash(),
            missing: TxBitmap(vec![0b10]),
        })),
        frame(encode(&SyncResponse::ProposalTxs(block_sample().txs))),
    ]
}

/// A WAL holding three votes, as `Wal::append` writes it.
fn wal_sample(dir: &std::path::Path) -> (Vec<u8>, Vec<(Height, Message)>) {
    let path = dir.join("sample-wal");
    let _ = std::fs::remove_file(&path);
    let (mut wal, _) = Wal::open(&path).unwrap();
    let mut written = Vec::new();
    for h in 1..=3 {
        let m = Message::Vote(vote(h));
        wal.append(Height(h), &m).unwrap();
        written.push((Height(h), m));
    }
    (std::fs::read(&path).unwrap(), written)
}

fn genesis_sample() -> String {
    let (keys, _) = testing::validators(2, &[10, 20]);
    let genesis = Genesis {
        chain_id: "acta-fuzz".into(),
        genesis_time_ms: 1_700_000_000_000,
        validators: keys
            .iter()
            .enumerate()
            .map(|(i, k)| GenesisValidator {
                name: format!("v{i}"),
                consensus_key: k.public().to_hex(),
                peer_id: libp2p::identity::Keypair::ed25519_from_bytes(
                    [u8::try_from(i).unwrap() + 1; 32],
                )
                .unwrap()
                .public()
                .to_peer_id()
                .to_string(),
                address: None,
                power: 10,
            })
            .collect(),
        council: GenesisCouncil {
            members: vec![keys[0].public().to_hex()],
            threshold: 1,
        },
        issuers: vec![],
        parameters: BTreeMap::from([("slash_fraction_bps".to_string(), 100)]),
    };
    serde_json::to_string_pretty(&genesis).unwrap()
}

proptest! {
    #[test]
    fn random_bytes_never_panic_gossip_or_sync_decoders(
        bytes in prop::collection::vec(any::<u8>(), 0..2048)
    ) {
        decode_gossip(&bytes);
        read_sync(&bytes);
        read_sync(&frame(bytes));
    }

    #[test]
    fn changed_gossip_and_sync_frames_never_panic(
        pick in any::<prop::sample::Index>(),
        changes in prop::collection::vec(change(), 1..4),
    ) {
        let gossip = gossip_samples();
        decode_gossip(&changed(&gossip[pick.index(gossip.len())], &changes));
        let sync = sync_samples();
        read_sync(&changed(&sync[pick.index(sync.len())], &changes));
    }

    /// Whatever the WAL file holds, opening it never panics. It either returns what was
    /// written, up to where the file was damaged, with nothing intact after that point,
    /// or refuses a log damaged before intact records and leaves the file as it was.
    #[test]
    fn a_damaged_wal_opens_to_a_prefix_of_what_was_written_or_is_refused(
        changes in prop::collection::vec(change(), 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, written) = wal_sample(dir.path());
        let path = dir.path().join("wal");
        let damaged = changed(&bytes, &changes);
        std::fs::write(&path, &damaged).unwrap();
        match Wal::open(&path) {
            Ok((_, records)) => {
                prop_assert!(records.len() <= written.len());
                prop_assert_eq!(&records[..], &written[..records.len()]);
            }
            Err(e) => {
                prop_assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
                prop_assert_eq!(std::fs::read(&path).unwrap(), damaged);
            }
        }
    }

    #[test]
    fn random_wal_files_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal");
        std::fs::write(&path, &bytes).unwrap();
        if let Err(e) = Wal::open(&path) {
            prop_assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        }
    }

    #[test]
    fn changed_config_files_are_refused_or_valid(
        changes in prop::collection::vec(change(), 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let text = Config::default().commented();
        std::fs::write(&path, changed(text.as_bytes(), &changes)).unwrap();
        if let Ok(config) = Config::load(&path) {
            prop_assert!(config.check().is_ok());
        }
    }

    #[test]
    fn changed_genesis_files_are_refused_or_valid(
        changes in prop::collection::vec(change(), 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("genesis.json");
        std::fs::write(&path, changed(genesis_sample().as_bytes(), &changes)).unwrap();
        if let Ok((genesis, spec)) = Genesis::load(&path) {
            prop_assert_eq!(genesis.hash(), spec.hash);
        }
    }
}

#[test]
fn the_samples_themselves_decode() {
    for bytes in gossip_samples() {
        assert!(
            Envelope::decode(&bytes, MESSAGE_MAX).is_ok()
                || TxBatch::decode(&bytes, MESSAGE_MAX).is_ok()
                || acta_ledger::codec::decode::<Gossip>("consensus message", &bytes, MESSAGE_MAX)
                    .is_ok()
        );
    }
    let protocol = StreamProtocol::new("/acta/sync/1");
    for frame in sync_samples() {
        let mut c = codec();
        let request = block_on(c.read_request(&protocol, &mut Cursor::new(frame.clone())));
        let response = block_on(c.read_response(&protocol, &mut Cursor::new(frame)));
        assert!(request.is_ok() || response.is_ok());
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("genesis.json");
    std::fs::write(&path, genesis_sample()).unwrap();
    Genesis::load(&path).unwrap();
    let (bytes, written) = wal_sample(dir.path());
    let path = dir.path().join("wal");
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(Wal::open(&path).unwrap().1, written);
}
