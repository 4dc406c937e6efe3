//! Record types that calls carry and the state stores: DID documents, credentials,
//! governance, sensor devices and attestations, participatory budget rounds and validators.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{
    codec::{invalid_data, read_vec},
    types::{Bytes, Height, Text, Timestamp},
    Did, Hash, PublicKey,
};

/// The most verification methods, controllers and services a DID document may list.
pub const DID_METHODS_MAX: usize = 8;
pub const DID_CONTROLLERS_MAX: usize = 8;
pub const DID_SERVICES_MAX: usize = 8;

/// A key of a DID, under a fragment id (`did:acta:...#key-1`).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct VerificationMethod {
    /// The fragment, without `#`: 1 to 32 characters of `a-z A-Z 0-9 - _`.
    pub id: Text<32>,
    pub key: PublicKey,
}

/// A service endpoint of a DID.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Service {
    /// The fragment, without `#`.
    pub id: Text<32>,
    /// The service type, such as `LinkedDomains`.
    pub kind: Text<64>,
    pub endpoint: Text<256>,
}

/// The content of a DID document that its controllers choose. The DID itself and the
/// metadata come from the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Default, BorshSerialize, Serialize, Deserialize)]
pub struct DidDocument {
    pub verification_methods: Vec<VerificationMethod>,
    /// Other DIDs whose keys may also update this one.
    pub controllers: Vec<Did>,
    pub services: Vec<Service>,
}

impl BorshDeserialize for DidDocument {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        Ok(DidDocument {
            verification_methods: read_vec(reader, DID_METHODS_MAX, "verification methods")?,
            controllers: read_vec(reader, DID_CONTROLLERS_MAX, "controllers")?,
            services: read_vec(reader, DID_SERVICES_MAX, "services")?,
        })
    }
}

impl DidDocument {
    /// Checks the document's own rules: at least one key, usable keys, fragment ids that
    /// are well formed and unique, no DID controlling itself through `controllers`.
    pub fn check(&self, did: &Did) -> Result<(), String> {
        if self.verification_methods.is_empty() {
            return Err("a DID document needs at least one verification method".into());
        }
        let mut ids = std::collections::BTreeSet::new();
        for m in &self.verification_methods {
            check_fragment(m.id.as_str())?;
            if !ids.insert(m.id.as_str()) {
                return Err(format!("fragment #{} is used twice", m.id));
            }
            m.key.validate().map_err(|e| format!("#{}: {e}", m.id))?;
        }
        for s in &self.services {
            check_fragment(s.id.as_str())?;
            if !ids.insert(s.id.as_str()) {
                return Err(format!("fragment #{} is used twice", s.id));
            }
            if s.kind.as_str().is_empty() || s.endpoint.as_str().is_empty() {
                return Err(format!("service #{} needs a type and an endpoint", s.id));
            }
        }
        let mut controllers = std::collections::BTreeSet::new();
        for c in &self.controllers {
            if c == did {
                return Err(
                    "a DID does not list itself as controller; its own keys control it".into(),
                );
            }
            if !controllers.insert(c) {
                return Err(format!("controller {c} is listed twice"));
            }
        }
        Ok(())
    }
}

fn check_fragment(id: &str) -> Result<(), String> {
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "fragment {id:?} must be 1 to 32 characters of a-z A-Z 0-9 - _"
        ));
    }
    Ok(())
}

/// What the state holds for a DID. Reading it at a past height gives the DID as it was.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct DidRecord {
    pub did: Did,
    pub document: DidDocument,
    /// The SHA-256 of the key the next rotation must install, if pre-committed.
    pub next_key_hash: Option<Hash>,
    pub created: Height,
    pub created_time: Timestamp,
    /// The height of the last change: the W3C `versionId`.
    pub updated: Height,
    pub updated_time: Timestamp,
    /// Deactivation is final.
    pub deactivated: bool,
}

impl DidRecord {
    /// Whether `key` is one of the DID's own verification keys.
    pub fn has_key(&self, key: &PublicKey) -> bool {
        self.document
            .verification_methods
            .iter()
            .any(|m| m.key == *key)
    }
}

/// The kinds of credential issuers may be registered for.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CredentialKind {
    /// A resident of a district (the credential names the district).
    Resident,
    SensorOperator,
    Auditor,
    BudgetOffice,
}

impl CredentialKind {
    /// Every kind, in the order of their encoding.
    pub const ALL: [CredentialKind; 4] = [
        CredentialKind::Resident,
        CredentialKind::SensorOperator,
        CredentialKind::Auditor,
        CredentialKind::BudgetOffice,
    ];
}

/// The council: m-of-n keys from genesis that govern the chain.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Council {
    /// Sorted, no key twice.
    pub members: Vec<PublicKey>,
    /// Approvals needed, 1 to the number of members.
    pub threshold: u16,
}

impl Council {
    pub const MEMBERS_MAX: usize = 32;

    pub fn new(mut members: Vec<PublicKey>, threshold: u16) -> Result<Council, String> {
        members.sort();
        let council = Council { members, threshold };
        council.check()?;
        Ok(council)
    }

    fn check(&self) -> Result<(), String> {
        if self.members.is_empty() || self.members.len() > Self::MEMBERS_MAX {
            return Err(format!("a council has 1 to {} members", Self::MEMBERS_MAX));
        }
        if self.members.windows(2).any(|w| w[0] >= w[1]) {
            return Err("council members must be distinct".into());
        }
        if self.threshold == 0 || usize::from(self.threshold) > self.members.len() {
            return Err(format!(
                "threshold {} of {} members",
                self.threshold,
                self.members.len()
            ));
        }
        Ok(())
    }

    pub fn is_member(&self, key: &PublicKey) -> bool {
        self.members.binary_search(key).is_ok()
    }
}

impl BorshDeserialize for Council {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let council = Council {
            members: read_vec(reader, Self::MEMBERS_MAX, "council members")?,
            threshold: u16::deserialize_reader(reader)?,
        };
        council.check().map_err(invalid_data)?;
        Ok(council)
    }
}

/// Where a validator's node is reached: what the other validators admit and dial.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ValidatorNode {
    /// The libp2p peer id of the node, base58 (`12D3KooW…`): an Ed25519 identity.
    pub peer_id: Text<64>,
    /// A multiaddress to dial it at, without `/p2p/`, such as `/dns4/acta.water.city/tcp/26656`;
    /// empty if the node only dials out (a genesis validator may leave it empty).
    pub address: Text<128>,
}

/// The bytes of an Ed25519 libp2p peer id before its 32-byte key: an identity multihash
/// (0x00) of 36 bytes (0x24) holding a protobuf `PublicKey` of type Ed25519 (08 01) with a
/// 32-byte key (12 20).
const PEER_ID_ED25519_PREFIX: [u8; 6] = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];

impl ValidatorNode {
    /// The node whose libp2p identity is the Ed25519 key `node_key`, at `address`.
    pub fn from_ed25519(node_key: &[u8; 32], address: &str) -> crate::Result<ValidatorNode> {
        let mut bytes = PEER_ID_ED25519_PREFIX.to_vec();
        bytes.extend_from_slice(node_key);
        let node = ValidatorNode {
            peer_id: Text::new(bs58::encode(bytes).into_string())?,
            address: Text::new(address)?,
        };
        node.check()?;
        Ok(node)
    }

    /// Checks the peer id (an Ed25519 libp2p identity in base58) and the address (empty, or
    /// a multiaddress of printable ASCII starting with `/`, not naming a peer).
    pub fn check(&self) -> crate::Result<()> {
        let bytes = bs58::decode(self.peer_id.as_str())
            .into_vec()
            .map_err(|e| crate::Error::invalid("validator node", format!("peer id: {e}")))?;
        if bytes.len() != PEER_ID_ED25519_PREFIX.len() + 32
            || !bytes.starts_with(&PEER_ID_ED25519_PREFIX)
        {
            return Err(crate::Error::invalid(
                "validator node",
                format!(
                    "peer id {}: not an Ed25519 libp2p peer id (12D3KooW…)",
                    self.peer_id
                ),
            ));
        }
        let address = self.address.as_str();
        if !address.is_empty()
            && (!address.starts_with('/')
                || !address.bytes().all(|b| b.is_ascii_graphic())
                || address.contains("/p2p/"))
        {
            return Err(crate::Error::invalid(
                "validator node",
                format!("address {address:?}: a multiaddress such as /ip4/10.0.0.5/tcp/26656, without /p2p/"),
            ));
        }
        Ok(())
    }
}

/// What the council can decide.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GovAction {
    /// Lets `did` issue credentials of `kinds` (replacing what it could issue before).
    RegisterIssuer {
        did: Did,
        kinds: Vec<CredentialKind>,
    },
    /// Stops `did` from issuing; credentials it issued keep their status.
    RevokeIssuer { did: Did },
    /// Sets a named chain parameter.
    SetParameter { name: Text<32>, value: u64 },
    /// Adds a validator (or re-admits a jailed one) with `power`, from two heights later;
    /// the validators admit and dial its `node` as soon as the action executes.
    AddValidator {
        key: PublicKey,
        power: u64,
        node: ValidatorNode,
    },
    /// Removes a validator from the set, from two heights later.
    RemoveValidator { key: PublicKey },
    /// Changes a validator's voting power, from two heights later.
    SetPower { key: PublicKey, power: u64 },
    /// Opens a participatory budget round on the council's own authority.
    OpenBudgetRound(RoundSpec),
    /// Cancels an open budget round, whoever opened it (format version 12): its proposals
    /// and ballots stay on the ledger, it takes no more and is never tallied, and its place
    /// among the rounds open at once is freed.
    CancelBudgetRound { round: u64 },
    /// Revokes a credential, whoever issued it (format version 13): for an issuer that is
    /// gone or was compromised, whose credentials its own key can no longer be trusted to
    /// withdraw.
    RevokeCredential { id: Hash },
}

impl GovAction {
    /// SHA-256 of the action's encoding: what an approval names.
    pub fn hash(&self) -> Hash {
        Hash::of(self)
    }
}

/// A council proposal and its approvals.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GovProposal {
    pub id: u64,
    /// The action (its JSON follows its encoding: docs/wire-format.md, section 5.5).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub action: GovAction,
    /// Members that approved, sorted; the proposer approves by proposing.
    pub approvals: Vec<PublicKey>,
    pub created: Height,
    /// The height at which the approvals reached the threshold and the action took effect.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub executed: Option<Height>,
    /// The latest block time at which approvals may still carry it out: the time of the
    /// block that made it plus the chain's `proposal_lifetime_s` then (format version 13).
    pub expires: Timestamp,
}

/// A chain parameter's value as the state stores it (namespace `param`, key: the name).
/// The names, units and ranges are the registry of `acta_contracts::params`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct ParamRecord {
    pub value: u64,
    /// The height at which it was set: 0 for the genesis.
    pub set_at: Height,
}

/// An issuer the council registered.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssuerRecord {
    pub did: Did,
    pub kinds: Vec<CredentialKind>,
    pub registered: Height,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub revoked: Option<Height>,
}

/// The status of an anchored credential.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CredentialStatus {
    Active,
    Suspended,
    Revoked,
}

/// A credential's anchor: its hash and what is not personal about it. The credential itself
/// stays with its holder.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CredentialRecord {
    /// SHA-256 of the credential document the holder keeps.
    pub id: Hash,
    pub issuer: Did,
    pub subject: Did,
    pub kind: CredentialKind,
    /// The district, for residents (and nothing else personal).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, required = true))]
    pub district: Option<Text<32>>,
    pub valid_from: Timestamp,
    pub valid_until: Timestamp,
    pub status: CredentialStatus,
    pub issued: Height,
    pub updated: Height,
}

impl CredentialRecord {
    /// Whether the credential counts at `time`: active and within its validity window.
    pub fn is_valid_at(&self, time: Timestamp) -> bool {
        self.status == CredentialStatus::Active
            && self.valid_from <= time
            && time < self.valid_until
    }
}

/// The most characters of a device's coarse location: a geohash of 1 to 6 characters
/// (a cell of about 1.2 km by 0.6 km at 6), so no device pins down a home.
pub const GEOHASH_CHARS_MAX: usize = 6;

/// A registered sensor device.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceRecord {
    /// The device's own DID: its keys sign the attestations.
    pub device: Did,
    /// The operator's DID, which holds a SensorOperator credential.
    pub operator: Did,
    /// What the device measures, such as `air.pm25`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub kind: Text<32>,
    /// The unit of its readings, as a UCUM code such as `ug/m3` or `Cel`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub unit: Text<16>,
    /// A geohash of at most 6 characters (`GEOHASH_CHARS_MAX`).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub location: Text<6>,
    /// The name of the device's data stream.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub stream: Text<64>,
    pub registered: Height,
    pub updated: Height,
    /// Deactivation is final.
    pub active: bool,
    /// The sequence number the next batch must carry (0 for the first).
    pub next_sequence: u64,
    /// The hash of the last accepted batch, or zero before the first.
    pub last_batch: Hash,
    /// The end of the last accepted batch's window.
    pub last_window_end: Timestamp,
}

/// An accepted attestation batch, stored under its device and sequence number, so a proof of
/// the state proves the batch (and through its readings root, any reading in it).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttestationRecord {
    pub batch: crate::tx::AttestationBatch,
    /// SHA-256 of the batch's borsh encoding: what the next batch names as its predecessor.
    pub hash: Hash,
    pub height: Height,
}

/// The tally rules; `docs/tally-rules.md` specifies each.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Rule {
    /// By approval count, skipping projects that no longer fit.
    Greedy,
    /// The Method of Equal Shares with cost utilities, no completion.
    Mes,
    /// MES with Add1 completion: the per-voter endowment rises one unit at a time while
    /// the outcome fits the budget.
    MesAdd1,
    /// As [`Rule::MesAdd1`], also stopping as soon as the outcome is exhaustive.
    MesAdd1Exhaustive,
}

impl Rule {
    pub const ALL: [Rule; 4] = [
        Rule::Greedy,
        Rule::Mes,
        Rule::MesAdd1,
        Rule::MesAdd1Exhaustive,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Rule::Greedy => "greedy",
            Rule::Mes => "mes",
            Rule::MesAdd1 => "mes-add1",
            Rule::MesAdd1Exhaustive => "mes-add1-exhaustive",
        }
    }

    pub fn parse(s: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == s)
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How ties between projects are broken; the last resort is always the project id order
/// (numeric ids by value first, then other ids by their bytes).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TieBreak {
    /// More approvals first, then lower cost (the equalshares.net `maxVotes,minCost`).
    #[default]
    VotesThenCost,
    /// Lower cost first, then more approvals (`minCost,maxVotes`).
    CostThenVotes,
}

impl TieBreak {
    pub const ALL: [TieBreak; 2] = [TieBreak::VotesThenCost, TieBreak::CostThenVotes];

    pub fn name(self) -> &'static str {
        match self {
            TieBreak::VotesThenCost => "votes-then-cost",
            TieBreak::CostThenVotes => "cost-then-votes",
        }
    }

    pub fn parse(s: &str) -> Option<TieBreak> {
        TieBreak::ALL.into_iter().find(|t| t.name() == s)
    }
}

/// A rule and its tie-break: fixed when a budget round opens, before voting does.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleProfile {
    pub rule: Rule,
    pub tie_break: TieBreak,
}

/// How residents vote in a round.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum BallotFormat {
    /// Approve between `min` and `max` projects.
    Approval { min: u16, max: u16 },
    /// Approve any projects whose costs add up to at most the round's budget.
    Knapsack,
}

/// What a budget round is: fixed when it opens.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoundSpec {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub title: Text<128>,
    /// The district whose residents propose and vote.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub district: Text<32>,
    /// In whole units of `currency`.
    pub budget: u64,
    /// The ISO 4217 code of the budget's currency: three capital letters (`PLN`).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub currency: Text<3>,
    /// Proposals are accepted in blocks whose time is in `proposals_from..voting_from`,
    /// ballots in `voting_from..closes_at`; the first block whose time is `closes_at` or
    /// later closes the round (docs/wire-format.md, section 6.5: block times).
    pub proposals_from: Timestamp,
    pub voting_from: Timestamp,
    pub closes_at: Timestamp,
    pub ballot: BallotFormat,
    pub rule: RuleProfile,
    /// Whether ballots name their voters.
    pub secrecy: BallotSecrecy,
}

/// Whether a round's ballots name their voters (docs/adr/0018-secret-ballots.md).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum BallotSecrecy {
    /// Each ballot names its voter's DID.
    Public,
    /// Each ballot comes from a one-time ballot key carrying a token of `registrar`, whose
    /// RSA key (canonical DER SubjectPublicKeyInfo, [`crate::token::RegistrarKey`]) signs
    /// one blinded token for each eligible resident who asks; the ballot names the ballot
    /// key's DID form, never the resident's.
    Secret {
        registrar: Did,
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        key: Bytes<{ crate::token::REGISTRAR_KEY_BYTES_MAX }>,
    },
}

/// A resident's request for a ballot token of a secret round, and the registrar's answer.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenRequest {
    pub round: u64,
    pub index: u64,
    pub voter: Did,
    /// The blinded token message, a value of the registrar's key.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub blinded: Bytes<{ crate::token::RSA_VALUE_BYTES_MAX }>,
    pub requested: Height,
    /// The registrar's blind signature of `blinded`, checked, once given.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, required = true))]
    pub blind_signature: Option<Bytes<{ crate::token::RSA_VALUE_BYTES_MAX }>>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub issued: Option<Height>,
}

/// How many tokens of a secret round were asked for and given.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenCount {
    /// Token requests recorded.
    pub requested: u64,
    /// Tokens the registrar gave.
    pub issued: u64,
}

/// The token a secret round's ballot was cast with, stored beside the ballot at the same
/// index (state `budget_ballot_token`): the one-time ballot key (whose DID form is the
/// ballot's `voter`) and the registrar's signature of its token message. An auditor checks
/// each against the round's registrar key.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BallotToken {
    pub key: PublicKey,
    pub token: Bytes<{ crate::token::RSA_VALUE_BYTES_MAX }>,
}

/// Who opened a round.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RoundOpener {
    /// A holder of a BudgetOffice credential.
    Office(Did),
    /// The council, by an approved proposal.
    Council { proposal: u64 },
}

/// A budget round as the state holds it. Its distinct voters are counted apart (state
/// `budget_voters`), so that a new voter's ballot does not rewrite the round.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BudgetRound {
    pub id: u64,
    pub spec: RoundSpec,
    pub opener: RoundOpener,
    pub opened: Height,
    /// Projects proposed so far; they are numbered 0 to `projects - 1`.
    pub projects: u32,
    /// Where the round is between its opening and its result.
    pub status: RoundStatus,
}

/// A round's progress from its opening to its result (docs/adr/0019-tally-after-the-closing-block.md).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RoundStatus {
    /// Before `closes_at`: proposals and ballots follow the phases of the spec.
    Open,
    /// Closed by the block at `closed`; its ballots are frozen as the state with root
    /// `ballots_at` holds them (the state after `closed - 1`), and the block at `due`
    /// stores the tally. Nodes run the tally off the consensus path in between.
    Tallying {
        closed: Height,
        due: Height,
        ballots_at: Hash,
    },
    /// The block at the [`TallyRecord`]'s `height` stored the result.
    Tallied,
    /// Cancelled by the council (`GovAction::CancelBudgetRound`) in the block at `at`,
    /// while open: never tallied (format version 12).
    Cancelled { at: Height },
}

/// A project proposed in a round.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BudgetProject {
    pub round: u64,
    pub index: u32,
    pub proposer: Did,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub title: Text<128>,
    pub cost: u64,
    pub proposed: Height,
}

/// The most projects one round may have.
pub const ROUND_PROJECTS_MAX: usize = 256;
/// The most voters one round may have (it bounds the work of the tally).
pub const ROUND_VOTERS_MAX: u64 = 200_000;

/// A resident's ballot: the projects (by index) it approves. A later ballot replaces it.
/// `voter` is the resident's DID in a public round, and in a secret round the DID form
/// (`Did::from_initial_key`) of the one-time ballot key, which names no resident.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, Serialize, Deserialize)]
pub struct BudgetBallot {
    pub voter: Did,
    /// Sorted, distinct.
    pub projects: Vec<u32>,
    pub cast: Height,
}

impl BorshDeserialize for BudgetBallot {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        Ok(BudgetBallot {
            voter: Did::deserialize_reader(reader)?,
            projects: read_vec(reader, ROUND_PROJECTS_MAX, "ballot projects")?,
            cast: Height::deserialize_reader(reader)?,
        })
    }
}

/// A round's outcome, stored when it closes.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TallyRecord {
    pub round: u64,
    pub rule: RuleProfile,
    /// Selected project indices, in selection order.
    pub selected: Vec<u32>,
    pub total_cost: u64,
    /// Approvals per project, by index.
    pub approvals: Vec<u64>,
    pub voters: u64,
    /// For the MES rules: the final per-voter endowment, numerator and denominator of a
    /// reduced fraction, and the Add1 steps taken.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<u128>>, required = true, min_items = 2, max_items = 2))]
    pub endowment: Option<(u128, u128)>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub add1_steps: Option<u64>,
    pub height: Height,
    /// The RFC 9162 root over the tallied ballots, in index order, each leaf the borsh
    /// encoding of its `BudgetBallot` (`ballots_root`): what a replay or a resident's
    /// receipt checks ballots against.
    pub ballots_root: Hash,
}

/// The root a [`TallyRecord`] commits its ballots to.
pub fn ballots_root(ballots: &[BudgetBallot]) -> Hash {
    let leaves: Vec<Vec<u8>> = ballots.iter().map(crate::codec::encode).collect();
    crate::merkle::root_of(&leaves)
}

/// A validator removed from the set for equivocating.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct JailRecord {
    pub key: PublicKey,
    /// Its power after the slash: what it would have if re-admitted as it was.
    pub slashed_power: u64,
    pub jailed: Height,
    /// The height of the equivocation.
    pub offence: Height,
}
