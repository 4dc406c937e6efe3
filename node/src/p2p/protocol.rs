//! Networking: libp2p over TCP with noise and yamux; identify; gossipsub for statuses,
//! evidence, cosignatures and transactions; proposals and votes on a stream to each
//! validator's node ([`super::direct`]); request-response for blocks and commits by height
//! range, and for the manifest and chunks of a state snapshot (state sync). Only the
//! validators' peer ids may connect, unless the config admits observers; a peer that sends
//! invalid messages is struck, and after too many strikes disconnected and banned.
//!
//! Every message is borsh, and its size is bounded before it is decoded: gossipsub drops
//! anything over `max_message_bytes`, and the sync codec and the consensus streams read a
//! length prefix first.

use std::{io, time::Duration};

use acta_ledger::{
    block::{BLOCK_EVIDENCE_MAX, BLOCK_TXS_MAX},
    codec,
    snapshot::{Chunk, Manifest},
    Block, Commit, Evidence, Hash, Header, Height, PublicKey, Signature, SignedProposal,
    SignedVote, Transaction,
};
use borsh::{BorshDeserialize, BorshSerialize};
use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::{
    allow_block_list, connection_limits, gossipsub, identify, ping,
    request_response::{self, ProtocolSupport},
    swarm::{behaviour::toggle::Toggle, NetworkBehaviour},
    StreamProtocol,
};

pub const TOPIC_CONSENSUS: &str = "acta/consensus/2";
/// The topic of transaction batches, on a gossipsub whose messages are not signed (on
/// gossipsub's own protocols, `/meshsub/1.3.0` down to `/meshsub/1.0.0`): each transaction
/// carries its signer's signature, which every node checks, so a signature of the batch
/// by the node that published it added a signing and, at every node, a check of each copy
/// received, and no protection. Until 2026-12-05, `acta/txs/2`, on the signed gossipsub
/// with the consensus topic.
pub const TOPIC_TXS: &str = "acta/txs/3";
/// The protocol prefix of the gossipsub of [`TOPIC_CONSENSUS`], whose messages are signed
/// by the node that published them (a status is its originator's). Its messages are
/// small and few, so it does without the newer protocol versions (a custom prefix has
/// only `/1.1.0` and `/1.0.0`), which the transactions' large batches use (`IDONTWANT`).
pub const SIGNED_GOSSIP_PROTOCOL: &str = "/acta/signed-gossip";
/// The most transactions one txs-topic message carries.
pub const TX_BATCH_MAX: usize = 1024;
pub const SYNC_PROTOCOL: &str = "/acta/sync/1";
/// Proposals and votes, sent straight to each validator's node on one long-lived stream
/// ([`super::direct`]). Until 2026-12-06, `/acta/consensus/2`, a request-response protocol
/// with one request per message.
pub const CONSENSUS_PROTOCOL: &str = "/acta/consensus/3";
/// The most blocks one sync response carries.
pub use crate::driver::SYNC_BLOCKS_MAX;

/// A consensus-topic message.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub enum Gossip {
    /// A proposal with the block it names, its transactions by id: a validator has most
    /// of them in its mempool, and asks the sender for the rest
    /// ([`SyncRequest::ProposalTxs`]).
    Proposal {
        proposal: SignedProposal,
        block: Box<CompactBlock>,
    },
    Vote(SignedVote),
    /// The sender's latest committed height, so that peers behind it sync.
    Status {
        height: Height,
    },
    Evidence(Evidence),
    /// A validator's cosignature of the checkpoint of `size` blocks
    /// (`acta_ledger::checkpoint`).
    Cosignature {
        size: u64,
        key: PublicKey,
        timestamp: u64,
        signature: Signature,
    },
}

/// A block with its transactions named by id: what a proposal carries.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize)]
pub struct CompactBlock {
    pub header: Header,
    /// The ids of the block's transactions, in order.
    pub tx_ids: Vec<Hash>,
    pub last_commit: Option<Commit>,
    pub evidence: Vec<Evidence>,
}

impl BorshDeserialize for CompactBlock {
    fn deserialize_reader<R: io::Read>(reader: &mut R) -> io::Result<Self> {
        Ok(CompactBlock {
            header: Header::deserialize_reader(reader)?,
            tx_ids: codec::read_vec(reader, BLOCK_TXS_MAX, "block transaction ids")?,
            last_commit: Option::<Commit>::deserialize_reader(reader)?,
            evidence: codec::read_vec(reader, BLOCK_EVIDENCE_MAX, "block evidence")?,
        })
    }
}

impl CompactBlock {
    /// The block with its transactions replaced by their ids.
    pub fn of(block: &Block) -> CompactBlock {
        Self::with_ids(block, block.txs.iter().map(Transaction::id).collect())
    }

    /// The block with its transactions replaced by `ids`, which must be theirs, in order
    /// (computed once, when the block was built or checked).
    pub fn with_ids(block: &Block, ids: Vec<Hash>) -> CompactBlock {
        CompactBlock {
            header: block.header.clone(),
            tx_ids: ids,
            last_commit: block.last_commit.clone(),
            evidence: block.evidence.clone(),
        }
    }

    /// Whether this is the block `hash` names: the header's hash, and the ids, last commit
    /// and evidence the header commits to. Once its transactions are found by id, the
    /// block is exactly the one the proposal signs; whether it is valid is checked then.
    pub fn names(&self, hash: &Hash) -> bool {
        let h = &self.header;
        h.hash() == *hash
            && Block::txs_root_of_ids(&self.tx_ids) == h.txs_root
            && Block::last_commit_hash(self.last_commit.as_ref()) == h.last_commit_hash
            && Block::evidence_hash(&self.evidence) == h.evidence_hash
    }

    /// The block, with each transaction found by `lookup`; the transactions not found are
    /// left `None` (to ask for with [`SyncRequest::ProposalTxs`]).
    pub fn fill(&self, lookup: impl Fn(&Hash) -> Option<Transaction>) -> Vec<Option<Transaction>> {
        self.tx_ids.iter().map(lookup).collect()
    }

    /// The block, once every transaction is there (`None` while one is missing). Each
    /// must be the one its id names: found by that id in a mempool, whose ids are hashes of
    /// what it admitted, or checked against it when a peer gave it
    /// (`rebuild::Waiting::complete`); they are not hashed again here.
    pub fn into_block(self, txs: Vec<Option<Transaction>>) -> Option<Block> {
        if txs.len() != self.tx_ids.len() {
            return None;
        }
        let txs: Vec<Transaction> = txs.into_iter().collect::<Option<_>>()?;
        Some(Block {
            header: self.header,
            txs,
            last_commit: self.last_commit,
            evidence: self.evidence,
        })
    }
}

/// The transactions a [`SyncRequest::ProposalTxs`] asks for, as a bitmap over a block's
/// transactions: bit `i % 8` (least significant first) of byte `i / 8` is set for
/// transaction `i`.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct TxBitmap(pub Vec<u8>);

impl TxBitmap {
    /// The bitmap of the `None`s in `txs`.
    pub fn missing(txs: &[Option<Transaction>]) -> TxBitmap {
        let mut bits = vec![0u8; txs.len().div_ceil(8)];
        for (i, tx) in txs.iter().enumerate() {
            if tx.is_none() {
                bits[i / 8] |= 1 << (i % 8);
            }
        }
        TxBitmap(bits)
    }

    /// The indices set, in order; `None` if one is at or past `len` (the request does not
    /// fit the block).
    pub fn indices(&self, len: usize) -> Option<Vec<usize>> {
        let mut out = Vec::new();
        for (byte, bits) in self.0.iter().enumerate() {
            for bit in 0..8 {
                if bits & (1 << bit) != 0 {
                    let i = byte * 8 + bit;
                    if i >= len {
                        return None;
                    }
                    out.push(i);
                }
            }
        }
        Some(out)
    }
}

/// The largest sync request: a [`SyncRequest::ProposalTxs`] of a block of
/// [`BLOCK_TXS_MAX`] transactions, with room to spare.
pub const SYNC_REQUEST_MAX: usize = 64 + BLOCK_TXS_MAX / 8 + 1024;

/// A txs-topic message: transactions the sender admitted to its mempool, sent together so
/// that gossip costs one message per batch, not per transaction. At most
/// [`TX_BATCH_MAX`].
#[derive(Clone, Debug, BorshSerialize)]
pub struct TxBatch(pub Vec<Transaction>);

impl BorshDeserialize for TxBatch {
    fn deserialize_reader<R: io::Read>(reader: &mut R) -> io::Result<Self> {
        Ok(TxBatch(codec::read_vec(
            reader,
            TX_BATCH_MAX,
            "gossiped transactions",
        )?))
    }
}

impl TxBatch {
    pub fn decode(bytes: &[u8], max: usize) -> acta_ledger::Result<TxBatch> {
        codec::decode("transaction batch", bytes, max)
    }
}

/// What goes on the wire: a fresh nonce makes a re-sent message new to gossipsub's
/// duplicate filter, so a node that is stuck can have its messages delivered again.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct Envelope {
    pub nonce: u64,
    pub body: Gossip,
}

impl Envelope {
    pub fn decode(bytes: &[u8], max: usize) -> acta_ledger::Result<Envelope> {
        codec::decode("gossip message", bytes, max)
    }
}

#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub enum SyncRequest {
    /// Blocks `from..from + count` with their commits (count at most [`SYNC_BLOCKS_MAX`]).
    Blocks { from: Height, count: u32 },
    /// The manifest of the newest snapshot the peer offers (state sync).
    SnapshotManifest,
    /// The chunk of the state at `height` whose keys follow `after` (from the first key
    /// with `None`).
    SnapshotChunk { height: Height, after: Option<Hash> },
    /// The peer's pending transactions, oldest first, at most `max` (asked by a node that
    /// connects, which missed what was gossiped while it was away).
    PendingTxs { max: u32 },
    /// The transactions of a proposed block the asker lacks (its proposal came with ids
    /// only): those `missing` marks, in order.
    ProposalTxs { block: Hash, missing: TxBitmap },
}

/// The most pending transactions one answer carries.
pub const PENDING_TXS_MAX: u32 = 4096;

#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub enum SyncResponse {
    /// The blocks the peer has, from the first asked for, in order (possibly none).
    Blocks(Vec<(Block, Commit)>),
    SnapshotManifest(Box<Manifest>),
    /// The chunk asked for; `None` past the last key.
    SnapshotChunk(Option<Chunk>),
    /// The peer cannot answer (no snapshot, a pruned height): why.
    Unavailable(String),
    /// Pending transactions, oldest first.
    PendingTxs(Vec<Transaction>),
    /// The transactions a [`SyncRequest::ProposalTxs`] asked for, in order.
    ProposalTxs(Vec<Transaction>),
}

/// The largest sync response: a responder stops adding blocks once it has passed four
/// messages' worth, and one block is at most one message.
pub fn sync_response_max(max_message_bytes: usize) -> usize {
    max_message_bytes.saturating_mul(5)
}

/// Length-prefixed borsh, with the length checked before anything is read.
#[derive(Clone, Debug)]
pub struct SyncCodec {
    pub max_request: usize,
    pub max_response: usize,
}

async fn read_framed<T, R>(io: &mut R, max: usize) -> io::Result<T>
where
    T: BorshDeserialize,
    R: futures::AsyncRead + Unpin + Send,
{
    let buf = read_bytes(io, max).await?;
    codec::decode("sync message", &buf, max)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

async fn write_framed<T, W>(io: &mut W, value: &T) -> io::Result<()>
where
    T: BorshSerialize,
    W: futures::AsyncWrite + Unpin + Send,
{
    write_bytes(io, &codec::encode(value)).await
}

impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncResponse;

    fn read_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> impl std::future::Future<Output = io::Result<SyncRequest>> + Send
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        let max = self.max_request;
        async move { read_framed(io, max).await }
    }

    fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> impl std::future::Future<Output = io::Result<SyncResponse>> + Send
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        let max = self.max_response;
        async move { read_framed(io, max).await }
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: SyncRequest,
    ) -> io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        write_framed(io, &req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: SyncResponse,
    ) -> io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        write_framed(io, &res).await
    }
}

async fn read_bytes<R>(io: &mut R, max: usize) -> io::Result<Vec<u8>>
where
    R: futures::AsyncRead + Unpin + Send,
{
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {len} bytes, more than {max}"),
        ));
    }
    read_body(io, len).await
}

/// Reads the `len` bytes of a message whose length prefix was read (and bounded), growing
/// the buffer with what actually arrives: a length prefix alone allocates nothing.
pub(super) async fn read_body<R>(io: &mut R, len: usize) -> io::Result<Vec<u8>>
where
    R: futures::AsyncRead + Unpin,
{
    let mut buf = Vec::new();
    io.take(len as u64).read_to_end(&mut buf).await?;
    if buf.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("message cut short at {} of {len} bytes", buf.len()),
        ));
    }
    Ok(buf)
}

async fn write_bytes<W>(io: &mut W, bytes: &[u8]) -> io::Result<()>
where
    W: futures::AsyncWrite + Unpin + Send,
{
    let len = u32::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message too large"))?;
    io.write_all(&len.to_le_bytes()).await?;
    io.write_all(bytes).await?;
    io.close().await
}

/// The node's libp2p behaviour.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Bounds on connections, checked before any other behaviour sees one: a peer may
    /// not hold more than [`PEER_CONNECTIONS_MAX`], nor strangers open sockets without
    /// end ([`INCOMING_PENDING_MAX`], [`INCOMING_MAX`]).
    pub limits: connection_limits::Behaviour,
    /// Present unless observers are admitted: refuses every peer not on the list.
    pub allowed: Toggle<allow_block_list::Behaviour<allow_block_list::AllowedPeers>>,
    /// Peers banned for misbehaving.
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// The consensus topic (statuses, evidence, cosignatures), in messages signed by the
    /// node that published them ([`SIGNED_GOSSIP_PROTOCOL`]).
    pub gossipsub: gossipsub::Behaviour,
    /// Transaction batches, in messages no node signs ([`TOPIC_TXS`]).
    pub txs: gossipsub::Behaviour,
    pub identify: identify::Behaviour,
    /// A ping every [`PING_INTERVAL`]: a peer that does not answer within [`PING_TIMEOUT`]
    /// (a stopped process whose kernel still holds the connection) is disconnected, so
    /// that the peer count tells the truth.
    pub ping: ping::Behaviour,
    pub sync: request_response::Behaviour<SyncCodec>,
    /// Proposals and votes straight to the validators' nodes, on one stream per peer
    /// ([`super::direct`]).
    pub direct: super::direct::Behaviour,
}

/// Connections one peer may hold at once: two, for when two nodes dial each other at the
/// same moment.
pub const PEER_CONNECTIONS_MAX: u32 = 2;
/// Incoming connections still in their handshake at once.
pub const INCOMING_PENDING_MAX: u32 = 64;
/// Incoming connections established at once (validators' nodes and observers).
pub const INCOMING_MAX: u32 = 512;

pub const PING_INTERVAL: Duration = Duration::from_secs(2);
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);

impl std::fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Behaviour").finish_non_exhaustive()
    }
}

/// What a node tells its peers it runs, in libp2p identify's protocol version: the chain
/// and the hash of its genesis file. A peer that tells another is on another chain (or the
/// same chain id from a genesis that differs by a byte): it is refused.
pub fn chain_identity(chain_id: &str, genesis: &Hash) -> String {
    format!("/acta/1/{chain_id}/genesis/{genesis}")
}

/// The node's libp2p swarm: TCP, Noise, Yamux and [`Behaviour`]; `identity` is
/// [`chain_identity`].
pub fn swarm(
    node_key: libp2p::identity::Keypair,
    max_message_bytes: usize,
    allow_observers: bool,
    identity: String,
) -> anyhow::Result<libp2p::Swarm<Behaviour>> {
    let behaviour = Behaviour::new(&node_key, max_message_bytes, allow_observers, identity)?;
    Ok(libp2p::SwarmBuilder::with_existing_identity(node_key)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )?
        // Validators' addresses may name hosts (/dns4/acta.water.city/tcp/26656).
        .with_dns()?
        .with_behaviour(|_| behaviour)
        .map_err(|e| anyhow::anyhow!("network behaviour: {e:?}"))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build())
}

impl Behaviour {
    pub fn new(
        key: &libp2p::identity::Keypair,
        max_message_bytes: usize,
        allow_observers: bool,
        identity: String,
    ) -> anyhow::Result<Behaviour> {
        let gossip_config = |prefix: Option<&'static str>, mode| {
            let mut c = gossipsub::ConfigBuilder::default();
            if let Some(prefix) = prefix {
                c.protocol_id_prefix(prefix);
            }
            c.max_transmit_size(max_message_bytes)
                .validation_mode(mode)
                .validate_messages()
                .heartbeat_interval(Duration::from_millis(500))
                .duplicate_cache_time(Duration::from_secs(120))
                .message_id_fn(|m: &gossipsub::Message| {
                    gossipsub::MessageId::from(Hash::digest(&m.data).0.to_vec())
                })
                .build()
                .map_err(|e| anyhow::anyhow!("gossipsub config: {e}"))
        };
        let gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gossip_config(
                Some(SIGNED_GOSSIP_PROTOCOL),
                gossipsub::ValidationMode::Strict,
            )?,
        )
        .map_err(|e| anyhow::anyhow!("gossipsub: {e}"))?;
        let txs = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Anonymous,
            gossip_config(None, gossipsub::ValidationMode::Anonymous)?,
        )
        .map_err(|e| anyhow::anyhow!("transactions' gossipsub: {e}"))?;
        let identify = identify::Behaviour::new(identify::Config::new(identity, key.public()));
        let codec = SyncCodec {
            max_request: SYNC_REQUEST_MAX,
            max_response: sync_response_max(max_message_bytes),
        };
        let sync = request_response::Behaviour::with_codec(
            codec,
            [(StreamProtocol::new(SYNC_PROTOCOL), ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(Duration::from_secs(20)),
        );
        let direct = super::direct::Behaviour::default();
        let limits = connection_limits::ConnectionLimits::default()
            .with_max_established_per_peer(Some(PEER_CONNECTIONS_MAX))
            .with_max_pending_incoming(Some(INCOMING_PENDING_MAX))
            .with_max_established_incoming(Some(INCOMING_MAX));
        Ok(Behaviour {
            limits: connection_limits::Behaviour::new(limits),
            allowed: Toggle::from(
                (!allow_observers).then(allow_block_list::Behaviour::<_>::default),
            ),
            blocked: allow_block_list::Behaviour::default(),
            gossipsub,
            txs,
            identify,
            ping: ping::Behaviour::new(
                ping::Config::new()
                    .with_interval(PING_INTERVAL)
                    .with_timeout(PING_TIMEOUT),
            ),
            sync,
            direct,
        })
    }
}
