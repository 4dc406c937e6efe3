//! The answers of the record reads as types: what [`super::answer`] serializes, field by
//! field. The node's OpenAPI document derives its response schemas from these (feature
//! `openapi`), so the document describes what is served.
//!
//! Fields marked "not proven" are left out of an answer that carries a proof bundle (the
//! node adds them only to unproven answers): nothing the chain holds gives them.

use acta_ledger::{
    records::{
        AttestationRecord, BudgetProject, BudgetRound, Council, CredentialRecord, DeviceRecord,
        GovProposal, IssuerRecord, TallyRecord, TokenCount, TokenRequest,
    },
    Did, Hash, Height, Outcome, PublicKey, Transaction,
};
use serde::Serialize;

use super::Phase;
use crate::{credential::Standing, params::ParamUnit};

/// A credential with its standing.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CredentialEntry {
    pub credential: CredentialRecord,
    pub status: Standing,
}

/// `GET /dids/{did}/credentials`: the credentials whose subject is the DID.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CredentialList {
    pub did: Did,
    pub credentials: Vec<CredentialEntry>,
}

/// `GET /credentials/{id}`: a credential's anchor, its standing and its issuer.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CredentialAnswer {
    pub credential: CredentialRecord,
    pub status: Standing,
    /// The issuer's registration; null if it was never registered.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub issuer: Option<IssuerRecord>,
    /// Whether the issuer is registered, unrevoked, for this kind.
    pub issuer_registered: bool,
    /// The block time the status is for, RFC 3339.
    pub checked_at: String,
}

/// `GET /issuers/{did}`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssuerAnswer {
    pub issuer: IssuerRecord,
}

/// `GET /council`: its members and threshold, and how many proposals it has had.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CouncilAnswer {
    pub council: Council,
    /// Proposals made so far.
    pub proposals: u64,
}

/// A council proposal with the hash of its action, which an approval must name.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProposalShown {
    #[serde(flatten)]
    pub proposal: GovProposal,
    pub action_hash: Hash,
}

/// `GET /council/proposals`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProposalList {
    pub proposals: Vec<ProposalShown>,
    /// The next proposal id.
    pub next: u64,
}

/// `GET /council/proposals/{id}`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProposalAnswer {
    pub proposal: ProposalShown,
}

/// A chain parameter: its value at the height and its entry in the registry.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ParamShown {
    pub name: &'static str,
    /// Its value at the height.
    pub value: u64,
    /// The height it was set at (0: the genesis); null while it has its default.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub set_at: Option<Height>,
    pub unit: ParamUnit,
    /// The smallest value allowed.
    pub min: u64,
    /// The largest value allowed.
    pub max: u64,
    /// The value when never set.
    pub default: u64,
    /// What it does.
    pub meaning: &'static str,
}

/// `GET /params`: every parameter of the registry.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ParamsAnswer {
    pub params: Vec<ParamShown>,
}

/// `GET /devices/{did}`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceAnswer {
    pub device: DeviceRecord,
}

/// `GET /devices/{did}/attestations`: a page of a device's batches.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttestationList {
    pub device: Did,
    /// The next batch's sequence number.
    pub next_sequence: u64,
    pub attestations: Vec<AttestationRecord>,
}

/// `GET /devices/{did}/attestations/{sequence}`: a batch and its device.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttestationAnswer {
    pub attestation: AttestationRecord,
    /// The device's record; null if it is no longer registered.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub device: Option<DeviceRecord>,
}

/// A round as the API shows it: the record with its count of voters (kept apart, under
/// `budget_voters`).
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoundShown {
    #[serde(flatten)]
    pub round: BudgetRound,
    /// Ballots cast.
    pub voters: u64,
}

/// A round's phases as RFC 3339 UTC times.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoundDates {
    /// When proposals open.
    pub proposals_from: String,
    /// When proposals close and voting opens.
    pub voting_from: String,
    /// When voting ends: the first block at or after it closes the round.
    pub closes_at: String,
}

/// `GET /budget/rounds/{id}`, and each round of `GET /budget/rounds`: the round, its phase
/// after the block read, and when that phase ends.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoundSummary {
    pub round: RoundShown,
    pub phase: Phase,
    pub dates: RoundDates,
    /// When the phase under way ends (RFC 3339); null while tallying, closed or cancelled.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub phase_ends: Option<String>,
    /// Milliseconds from the block's time to `phase_ends`.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub phase_left_ms: Option<u64>,
    /// RFC 3339 time of the block read: the phase is the one after it.
    pub time: String,
    /// While tallying: the height whose block stores the tally.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tally_due: Option<Height>,
    /// A secret round's token requests and tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenCount>,
    /// `GET /budget/rounds/{id}` of a tallied round: its result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<TallyRecord>,
}

/// `GET /budget/rounds`: a page of rounds.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoundList {
    pub rounds: Vec<RoundSummary>,
    /// The next round id.
    pub next: u64,
}

/// `GET /budget/rounds/{id}/proposals`: a round's projects.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectList {
    pub round: u64,
    pub projects: Vec<BudgetProject>,
}

/// A selected project.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SelectedProject {
    pub index: u32,
    pub title: String,
    pub cost: u64,
}

/// `GET /budget/rounds/{id}/result`: the tally and the projects it selected.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResultAnswer {
    pub result: TallyRecord,
    pub selected: Vec<SelectedProject>,
}

/// A ballot with its position among the round's ballots (a leaf of `ballots_root`).
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BallotShown {
    pub index: u64,
    pub voter: Did,
    /// The projects it approves, by index.
    pub projects: Vec<u32>,
    /// Height it was cast.
    pub cast: Height,
}

/// `GET /budget/rounds/{id}/ballots`: everything a replay of a tallied round needs.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BallotsAnswer {
    pub round: RoundShown,
    pub projects: Vec<BudgetProject>,
    pub result: TallyRecord,
    pub ballots: Vec<BallotShown>,
}

/// `GET /budget/rounds/{id}/ballots/{voter}`: a voter's receipt.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReceiptAnswer {
    pub round: u64,
    pub ballot: BallotShown,
    /// Ballots tallied.
    pub ballots: u64,
    pub ballots_root: Hash,
    /// Height tallied.
    pub tallied_at: Height,
}

/// `GET /budget/rounds/{id}/tokens`: a page of a secret round's token requests.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenRequestList {
    pub round: u64,
    pub tokens: TokenCount,
    pub requests: Vec<TokenRequest>,
}

/// `GET /budget/rounds/{id}/tokens/{voter}`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenRequestAnswer {
    pub round: u64,
    pub request: TokenRequest,
}

/// The token a secret round's ballot was cast with.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BallotTokenShown {
    /// Ballot index.
    pub index: u64,
    /// The DID form of the one-time ballot key.
    pub voter: Did,
    /// The one-time ballot key.
    pub key: PublicKey,
    /// The registrar's signature of the ballot key's token message, hex.
    pub token: String,
}

/// `GET /budget/rounds/{id}/ballot-tokens`: a page of a secret round's ballot tokens.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BallotTokenList {
    pub round: u64,
    /// Ballots cast so far.
    pub ballots: u64,
    /// Tokens the registrar gave: never fewer than the ballots.
    pub issued: u64,
    pub tokens: Vec<BallotTokenShown>,
}

/// `GET /state/{namespace}/{key}`: a raw state value.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StateValue {
    pub namespace: String,
    /// Key bytes, hex.
    pub key: String,
    /// Value bytes, hex; null: the key holds nothing.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub value: Option<String>,
}

/// `GET /dids/{did}`: a W3C DID resolution result.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DidResolution {
    #[serde(rename = "@context")]
    pub context: &'static str,
    #[serde(rename = "didDocument")]
    pub did_document: W3cDidDocument,
    #[serde(rename = "didResolutionMetadata")]
    pub did_resolution_metadata: ResolutionMetadata,
    #[serde(rename = "didDocumentMetadata")]
    pub did_document_metadata: DidDocumentMetadata,
}

/// The resolution's metadata.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResolutionMetadata {
    /// `application/did+ld+json`.
    #[serde(rename = "contentType")]
    pub content_type: &'static str,
}

/// The DID document's metadata (W3C DID Resolution).
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DidDocumentMetadata {
    /// When it was created, RFC 3339.
    pub created: String,
    /// When it last changed, RFC 3339.
    pub updated: String,
    /// The height of the last change.
    pub version_id: String,
    /// The height of the next change, when resolving a past version. Left out of a proven
    /// answer: a later state gives it, which the bundle does not prove.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_version_id: Option<String>,
    pub deactivated: bool,
    pub created_height: Height,
    pub updated_height: Height,
    /// The hash of the key that the next rotation must reveal, if one was committed to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_key_hash: Option<Hash>,
}

/// A W3C DID document (DID Core), as Acta shows a DID record.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct W3cDidDocument {
    #[serde(rename = "@context")]
    pub context: Vec<&'static str>,
    #[cfg_attr(feature = "openapi", schema(value_type = Did))]
    pub id: String,
    /// The DID and its other controllers, when it has any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Did>>))]
    pub controller: Option<Vec<String>>,
    pub verification_method: Vec<W3cMethod>,
    pub authentication: Vec<String>,
    pub assertion_method: Vec<String>,
    pub capability_invocation: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<Vec<W3cService>>,
}

/// A key of a DID document.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct W3cMethod {
    /// `did#fragment`.
    pub id: String,
    /// `Ed25519VerificationKey2020`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[cfg_attr(feature = "openapi", schema(value_type = Did))]
    pub controller: String,
    /// `z` and the base58btc of 0xed01 and the key.
    pub public_key_multibase: String,
}

/// A service of a DID document.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct W3cService {
    /// `did#fragment`.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "serviceEndpoint")]
    pub service_endpoint: String,
}

/// A transaction's outcome as the API shows it.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TxResult {
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Why it was refused, for a person: the node's words, which no proof covers (left out
    /// of a proven answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Whether a transaction is waiting or in a block.
#[derive(Clone, Copy, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TxStatus {
    Pending,
    Committed,
}

/// `GET /txs/{hash}`: a transaction, where it is and what it did.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TxAnswer {
    pub hash: Hash,
    pub status: TxStatus,
    /// The block.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<Height>,
    /// The position in the block. Left out of a proven answer: the header does not commit
    /// to the number of transactions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx: Option<Transaction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<TxResult>,
}

/// A validator of a set.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValidatorShown {
    /// Index in the set.
    pub index: usize,
    pub public_key: PublicKey,
    /// Voting power.
    pub power: u64,
    /// The validator's name in the genesis file. Left out of a proven answer: the chain
    /// does not hold it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub name: Option<Option<String>>,
}

/// `GET /validators`: the set that signs a block, and the hash of the next one's.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValidatorSetAnswer {
    /// The block this set signs.
    pub height: Height,
    pub hash: Hash,
    /// Total voting power.
    pub total_power: u64,
    pub validators: Vec<ValidatorShown>,
    /// The hash of the set that signs the next block.
    pub next_hash: Hash,
}
