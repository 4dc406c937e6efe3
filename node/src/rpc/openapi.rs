//! The OpenAPI 3.0 document of the HTTP API, served at `GET /openapi.json`.
//!
//! Written by hand next to the handlers; `tests/api.rs` checks that its paths and methods
//! are exactly the routes the server serves, and validates live answers against its
//! response schemas.

use serde_json::{json, Map, Value};

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn path_param(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": schema })
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

/// The schema of a `u64` parameter: the server refuses anything above `u64::MAX`.
fn u64_schema() -> Value {
    json!({ "type": "integer", "minimum": 0, "maximum": u64::MAX })
}

fn height() -> Value {
    query(
        "height",
        "Read the state after this committed block (default: the latest); 0 is the genesis state, which has no proof (so `prove=true` needs 1 or more).",
        u64_schema(),
    )
}

fn checkpoint() -> Value {
    query(
        "checkpoint",
        "With `prove=true`: also prove the header's block in the block log of the checkpoint of this many blocks (`proof.checkpoint`), so that the bundle verifies against that checkpoint (`GET /checkpoint`) instead of the chain of headers. From the height read to the latest height.",
        u64_schema(),
    )
}

fn prove() -> Value {
    query(
        "prove",
        "Add `proof`: a bundle proving every value read against a header signed by the validators (not at height 0).",
        json!({ "type": "boolean", "default": false }),
    )
}

fn from() -> Value {
    query(
        "from",
        "The first id or sequence number to list.",
        u64_schema(),
    )
}

fn limit() -> Value {
    query(
        "limit",
        "How many items to list (1 to 100, default 20).",
        json!({ "type": "integer", "minimum": 1, "maximum": 100, "default": 20 }),
    )
}

fn did_param() -> Value {
    path_param("did", "A DID: did:acta:<base58>.", schema_ref("Did"))
}

fn id_param(what: &str) -> Value {
    path_param("id", what, u64_schema())
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

fn error(description: &str) -> Value {
    json!({ "description": description, "content": json_content(schema_ref("Error")) })
}

/// An operation answering `schema` with 200, and the errors every route may give.
fn op(summary: &str, tag: &str, params: Vec<Value>, schema: Value) -> Value {
    json!({
        "summary": summary,
        "tags": [tag],
        "parameters": params,
        "responses": {
            "200": { "description": "OK", "content": json_content(schema) },
            "400": error("A bad parameter; `message` says which."),
            "404": error("Nothing there at that height, or an unknown route."),
            "410": error("The state at that height is pruned on this node (`pruned`); `oldest` is the oldest height it keeps."),
            "414": error("The request target is longer than 8 KiB (`uri_too_long`)."),
            "503": error("Too many requests at once, or the node is stopping."),
            "500": error("The node failed to read its store."),
        }
    })
}

/// An object that may hold no other fields: request bodies, which the server decodes with
/// unknown fields refused.
fn closed(required: &[&str], properties: Value) -> Value {
    let mut o = obj(required, properties);
    o["additionalProperties"] = json!(false);
    o
}

fn obj(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": properties })
}

fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

fn int(description: &str) -> Value {
    json!({ "type": "integer", "minimum": 0, "description": description })
}

fn array(items: Value) -> Value {
    json!({ "type": "array", "items": items })
}

fn with_proof(required: &[&str], mut properties: Value) -> Value {
    properties["height"] = int("The height whose state was read.");
    properties["proof"] = schema_ref("ProofBundle");
    let mut req: Vec<&str> = required.to_vec();
    req.push("height");
    obj(&req, properties)
}

fn any_object(description: &str) -> Value {
    json!({ "type": "object", "description": description })
}

fn schemas() -> Value {
    json!({
        "Error": obj(&["code", "message"], json!({
            "code": string("A stable code: bad_request, invalid_did, not_found, pruned, unknown_route, method_not_allowed, body_too_large, uri_too_long, unsupported_media_type, busy, stopping, commit_timeout, internal, or a refusal code of the mempool (stale_nonce, future_nonce, bad_signature, wrong_chain, duplicate, signer_quota, mempool_full, too_large, expired, too_long_lived, unavailable) or of the ledger (unauthorized, wrong_phase, sequence_gap, fork, ...): a ledger code with a `height` is a committed refusal, without one the mempool's verdict that the ledger would refuse the call now (nothing recorded)."),
            "message": string("What went wrong, for a person."),
            "hash": string("The transaction concerned, if any."),
            "oldest": int("With `pruned`: the oldest height whose state this node keeps."),
        })),
        "Hash": { "type": "string", "pattern": "^[0-9a-f]{64}$", "description": "SHA-256, lowercase hex." },
        "Did": { "type": "string", "pattern": "^did:acta:[1-9A-HJ-NP-Za-km-z]{16,22}$", "description": "did:acta: and the base58 of 16 bytes (16 to 22 characters)." },
        "PublicKey": { "type": "string", "pattern": "^[0-9a-f]{64}$", "description": "Ed25519 public key, hex." },
        "Status": obj(&["chain_id", "moniker", "peer_id", "validator", "role", "height", "block_hash", "block_time_ms", "state_root", "consensus_height", "consensus_round", "syncing", "peers", "mempool_txs", "oldest_state_height", "deciding_ms", "stalled", "validators", "genesis_hash", "version"], json!({
            "chain_id": string("The chain id."),
            "moniker": string("The node's name."),
            "peer_id": string("The node's libp2p peer id."),
            "validator": { "type": "boolean" },
            "role": { "type": "string", "enum": ["validator", "observer"] },
            "height": int("Latest committed height."),
            "block_hash": schema_ref("Hash"),
            "block_time_ms": int("Time of the latest block, ms since 1970."),
            "state_root": schema_ref("Hash"),
            "consensus_height": int("The height being decided."),
            "consensus_round": int("Its round."),
            "syncing": { "type": "boolean", "description": "Whether a peer is ahead." },
            "peers": int("Connected peers."),
            "mempool_txs": int("Transactions waiting."),
            "oldest_state_height": int("The oldest height whose state this node keeps: reads of older heights are refused with 410 `pruned` (0 unless the node prunes, `storage.mode`)."),
            "deciding_ms": int("How long the height being decided has run (0 while waiting for work)."),
            "stalled": { "nullable": true, "allOf": [schema_ref("Stall")], "description": "Set while the height has run for longer than four rounds of timeouts (at least 20 s): why." },
            "validators": { "type": "array", "items": schema_ref("ValidatorHealth"), "description": "The validators deciding this height, as this node sees them." },
            "genesis_hash": schema_ref("Hash"),
            "version": string("The node's version."),
        })),
        "Health": obj(&["live", "height", "reasons"], json!({
            "live": { "type": "boolean", "description": "Whether the node's loop runs." },
            "ready": { "type": "boolean", "description": "`/ready` only: live, caught up and not stalled." },
            "height": int("Latest committed height."),
            "reasons": { "type": "array", "items": { "type": "string" }, "description": "Why not live or not ready; empty when all is well." },
        })),
        "Stall": obj(&["height", "round", "for_ms", "missing", "heard_power", "quorum_power", "reason"], json!({
            "height": int("The height that does not end."),
            "round": int("Its round."),
            "for_ms": int("How long this node has been deciding it."),
            "missing": { "type": "array", "items": { "type": "string" }, "description": "Validators not heard from at this height (names, or keys' first 16 hex digits)." },
            "heard_power": int("Power of the validators heard from."),
            "quorum_power": int("Power a quorum needs: more than two thirds."),
            "reason": string("Why this node thinks the chain is stalled."),
        })),
        "ValidatorHealth": obj(&["name", "public_key", "power", "connected", "heard"], json!({
            "name": string("Its genesis name, or its key's first 16 hex digits."),
            "public_key": schema_ref("PublicKey"),
            "power": int("Voting power."),
            "connected": { "type": "boolean", "description": "Whether this node is connected to its node (true for itself)." },
            "heard": { "type": "boolean", "description": "Whether a vote or proposal of it at this height reached this node." },
        })),
        "Header": obj(&["chain_id", "height", "time", "parent_hash", "txs_root", "results_root", "state_root", "validators_hash", "next_validators_hash", "proposer", "last_commit_hash", "evidence_hash"], json!({
            "chain_id": string("Chain id."),
            "height": int("Height."),
            "time": int("Block time, ms since 1970."),
            "parent_hash": schema_ref("Hash"),
            "txs_root": schema_ref("Hash"),
            "results_root": schema_ref("Hash"),
            "state_root": schema_ref("Hash"),
            "validators_hash": schema_ref("Hash"),
            "next_validators_hash": schema_ref("Hash"),
            "proposer": schema_ref("PublicKey"),
            "last_commit_hash": schema_ref("Hash"),
            "evidence_hash": schema_ref("Hash"),
        })),
        "Commit": obj(&["height", "round", "block", "signatures"], json!({
            "height": int("Height."),
            "round": int("Round."),
            "block": schema_ref("Hash"),
            "signatures": array(obj(&["validator", "signature"], json!({
                "validator": int("Index in the validator set."),
                "signature": string("Ed25519 signature, hex."),
            }))),
        })),
        "Transaction": obj(&["chain_id", "signer", "nonce", "call", "signature"], json!({
            "chain_id": string("Chain id."),
            "signer": schema_ref("PublicKey"),
            "nonce": int("The signer's nonce."),
            "call": any_object("The call (see docs/wire-format.md, section 5.2)."),
            "signature": string("Ed25519 signature, hex."),
        })),
        "Block": obj(&["header", "txs", "last_commit", "evidence"], json!({
            "header": schema_ref("Header"),
            "txs": array(schema_ref("Transaction")),
            "last_commit": { "allOf": [schema_ref("Commit")], "nullable": true },
            "evidence": array(any_object("Evidence of equivocation.")),
        })),
        "BlockAnswer": obj(&["hash", "block", "commit"], json!({
            "hash": schema_ref("Hash"),
            "block": schema_ref("Block"),
            "commit": { "allOf": [schema_ref("Commit")], "nullable": true },
        })),
        "Event": obj(&["kind", "attributes"], json!({
            "kind": string("What happened."),
            "attributes": array(array(json!({ "type": "string" }))),
        })),
        "RefusalCode": { "type": "string", "enum": acta_ledger::RefusalCode::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>(), "description": "A frozen refusal code of the ledger (docs/wire-format.md, section 6.3)." },
        "Outcome": obj(&["status"], json!({
            "status": { "type": "string", "enum": ["accepted", "refused"] },
            "events": array(schema_ref("Event")),
            "code": schema_ref("RefusalCode"),
        })),
        "TxResult": obj(&["status"], json!({
            "status": { "type": "string", "enum": ["accepted", "refused"] },
            "events": array(schema_ref("Event")),
            "code": schema_ref("RefusalCode"),
            "message": string("Why it was refused, for a person: the node's words, which no proof covers."),
        })),
        "Receipt": obj(&["tx", "outcome"], json!({
            "tx": schema_ref("Hash"),
            "outcome": schema_ref("Outcome"),
        })),
        "BlockResults": obj(&["height", "receipts", "events", "messages"], json!({
            "height": int("Height."),
            "receipts": array(schema_ref("Receipt")),
            "events": array(schema_ref("Event")),
            "messages": array(obj(&["index", "message"], json!({
                "index": int("The refused transaction's index in the block."),
                "message": string("Why it was refused, for a person (not consensus data)."),
            }))),
        })),
        "TxHex": { "type": "string", "pattern": "^\\s*([0-9a-fA-F]{2})+\\s*$", "maxLength": 2 * acta_ledger::tx::TX_BYTES_MAX + 64, "description": "A transaction's borsh encoding, hex (docs/wire-format.md, section 5.1); surrounding white space is ignored." },
        "SubmitBody": closed(&["tx"], json!({
            "tx": schema_ref("TxHex"),
        })),
        "SubmitBatchBody": closed(&["txs"], json!({
            "txs": { "type": "array", "maxItems": super::chain::SUBMIT_BATCH_MAX, "items": { "type": "string", "description": "A transaction's borsh encoding, hex (as `TxHex`). Each item gets its own verdict in `results`: one that is not a transaction gets `bad_transaction` there, and the others are still submitted." } },
        })),
        "SubmitBatchAnswer": obj(&["accepted", "results"], json!({
            "accepted": int("How many transactions the mempool admitted."),
            "results": array(json!({
                "type": "object",
                "description": "Per transaction, in order: its hash and `pending`, or a refusal's `code` and `message`.",
                "properties": {
                    "hash": schema_ref("Hash"),
                    "status": { "type": "string", "enum": ["pending"] },
                    "code": string("Why it was refused (the mempool's codes, or bad_transaction)."),
                    "message": string("The refusal in words."),
                },
            })),
        })),
        "SubmitAnswer": obj(&["hash", "status"], json!({
            "hash": schema_ref("Hash"),
            "status": { "type": "string", "enum": ["queued", "pending", "committed"] },
            "height": int("With mode=commit: the block."),
            "index": int("With mode=commit: the position in the block."),
            "events": array(schema_ref("Event")),
        })),
        "TxAnswer": obj(&["hash", "status"], json!({
            "hash": schema_ref("Hash"),
            "status": { "type": "string", "enum": ["pending", "committed"] },
            "height": int("The block."),
            "index": int("The position in the block (left out of a proven answer: the header does not commit to the number of transactions)."),
            "tx": schema_ref("Transaction"),
            "result": schema_ref("TxResult"),
            "proof": schema_ref("ProofBundle"),
        })),
        "ValidatorSetAnswer": obj(&["height", "hash", "total_power", "validators", "next_hash"], json!({
            "height": int("The block this set signs."),
            "hash": schema_ref("Hash"),
            "total_power": int("Total voting power."),
            "validators": array(obj(&["index", "public_key", "power"], json!({
                "index": int("Index in the set."),
                "public_key": schema_ref("PublicKey"),
                "power": int("Voting power."),
                "name": { "type": "string", "nullable": true, "description": "The validator's name in the genesis file (left out of a proven answer: the chain does not hold it)." },
            }))),
            "next_hash": schema_ref("Hash"),
            "proof": schema_ref("ProofBundle"),
        })),
        "StateEntry": obj(&["namespace", "key", "value", "proof"], json!({
            "namespace": string("State namespace (docs/wire-format.md, section 10.5)."),
            "key": string("Key bytes, hex."),
            "value": { "type": "string", "nullable": true, "description": "Value bytes, hex; null proves absence." },
            "proof": string("Borsh StateProof, hex."),
        })),
        "ConsistencyProof": obj(&["old_size", "new_size", "path"], json!({
            "old_size": int("Blocks in the older log."),
            "new_size": int("Blocks in the newer log."),
            "path": array(schema_ref("Hash")),
        })),
        "InclusionProof": obj(&["leaf_index", "tree_size", "path"], json!({
            "leaf_index": int("Leaf position."),
            "tree_size": int("Leaves in the tree."),
            "path": array(schema_ref("Hash")),
        })),
        "ProofBundle": obj(&["version", "chain_id", "validator_changes", "header", "commit", "state"], json!({
            "version": int("Bundle format version (2)."),
            "chain_id": string("Chain id."),
            "query": string("The request whose answer the bundle proves (`/credentials/<id>`): an auditor computes that answer again from the proven values and compares every field shown beside the bundle."),
            "validator_changes": array(obj(&["header", "commit", "next_validators"], json!({
                "header": schema_ref("Header"),
                "commit": schema_ref("Commit"),
                "next_validators": any_object("The new validator set."),
            }))),
            "header": schema_ref("Header"),
            "commit": schema_ref("Commit"),
            "state": array(schema_ref("StateEntry")),
            "tx": obj(&["tx", "tx_proof", "result", "result_proof"], json!({
                "tx": string("Borsh transaction, hex."),
                "tx_proof": schema_ref("InclusionProof"),
                "result": string("Borsh receipt, hex."),
                "result_proof": schema_ref("InclusionProof"),
            })),
            "readings": array(obj(&["reading", "proof"], json!({
                "reading": string("The reading's bytes, hex."),
                "proof": schema_ref("InclusionProof"),
            }))),
            "ballots": array(obj(&["ballot", "proof"], json!({
                "ballot": string("A BudgetBallot's borsh, hex."),
                "proof": schema_ref("InclusionProof"),
            }))),
            "all_ballots": array(string("A BudgetBallot's borsh, hex; every ballot of the round, in index order.")),
            "checkpoint": obj(&["size", "proof"], json!({
                "size": int("The checkpoint's number of blocks."),
                "proof": schema_ref("InclusionProof"),
            })),
        })),
        "DidDocument": obj(&["@context", "id", "verificationMethod", "authentication"], json!({
                "@context": array(json!({ "type": "string" })),
                "id": schema_ref("Did"),
                "controller": array(schema_ref("Did")),
                "verificationMethod": array(obj(&["id", "type", "controller", "publicKeyMultibase"], json!({
                    "id": string("did#fragment"),
                    "type": string("Ed25519VerificationKey2020"),
                    "controller": schema_ref("Did"),
                    "publicKeyMultibase": string("z + base58btc(0xed01 + key)"),
                }))),
                "authentication": array(json!({ "type": "string" })),
                "assertionMethod": array(json!({ "type": "string" })),
                "capabilityInvocation": array(json!({ "type": "string" })),
                "service": array(obj(&["id", "type", "serviceEndpoint"], json!({
                    "id": string("did#fragment"),
                    "type": string("Service type."),
                    "serviceEndpoint": string("Endpoint."),
                }))),
            })),
        "DidResolution": with_proof(&["didDocument", "didResolutionMetadata", "didDocumentMetadata"], json!({
            "@context": string("DID resolution context."),
            "didDocument": schema_ref("DidDocument"),
            "didResolutionMetadata": obj(&["contentType"], json!({ "contentType": string("application/did+ld+json") })),
            "didDocumentMetadata": obj(&["created", "updated", "versionId", "deactivated"], json!({
                "created": string("RFC 3339."),
                "updated": string("RFC 3339."),
                "versionId": string("The height of the last change."),
                "nextVersionId": string("The height of the next change, when resolving a past version (left out of a proven answer: a later state gives it)."),
                "deactivated": { "type": "boolean" },
                "createdHeight": int("Height created."),
                "updatedHeight": int("Height of the last change."),
                "nextKeyHash": schema_ref("Hash"),
            })),
        })),
        "CredentialRecord": obj(&["id", "issuer", "subject", "kind", "valid_from", "valid_until", "status", "issued", "updated"], json!({
            "id": schema_ref("Hash"),
            "issuer": schema_ref("Did"),
            "subject": schema_ref("Did"),
            "kind": { "type": "string", "enum": ["resident", "sensor_operator", "auditor", "budget_office"] },
            "district": { "type": "string", "nullable": true },
            "valid_from": int("ms since 1970."),
            "valid_until": int("ms since 1970."),
            "status": { "type": "string", "enum": ["active", "suspended", "revoked"] },
            "issued": int("Height."),
            "updated": int("Height."),
        })),
        "CredentialStatus": { "type": "string", "enum": ["valid", "suspended", "revoked", "expired", "not_yet_valid", "subject_deactivated", "issuer_deactivated"] },
        "CredentialAnswer": with_proof(&["credential", "status", "issuer", "issuer_registered", "checked_at"], json!({
            "credential": schema_ref("CredentialRecord"),
            "status": schema_ref("CredentialStatus"),
            "issuer": { "allOf": [schema_ref("IssuerRecord")], "nullable": true },
            "issuer_registered": { "type": "boolean", "description": "Whether the issuer is registered, unrevoked, for this kind." },
            "checked_at": string("The block time the status is for, RFC 3339."),
        })),
        "CredentialList": with_proof(&["did", "credentials"], json!({
            "did": schema_ref("Did"),
            "credentials": array(obj(&["credential", "status"], json!({
                "credential": schema_ref("CredentialRecord"),
                "status": schema_ref("CredentialStatus"),
            }))),
        })),
        "IssuerRecord": obj(&["did", "kinds", "registered"], json!({
            "did": schema_ref("Did"),
            "kinds": array(json!({ "type": "string" })),
            "registered": int("Height."),
            "revoked": { "type": "integer", "nullable": true },
        })),
        "IssuerAnswer": with_proof(&["issuer"], json!({ "issuer": schema_ref("IssuerRecord") })),
        "CouncilAnswer": with_proof(&["council", "proposals"], json!({
            "council": obj(&["members", "threshold"], json!({
                "members": array(schema_ref("PublicKey")),
                "threshold": int("Approvals needed."),
            })),
            "proposals": int("Proposals made so far."),
        })),
        "GovProposal": obj(&["id", "action", "approvals", "created", "expires", "action_hash"], json!({
            "id": int("Proposal id."),
            "action": any_object("The action (docs/wire-format.md, section 5.5)."),
            "action_hash": schema_ref("Hash"),
            "approvals": array(schema_ref("PublicKey")),
            "created": int("Height."),
            "executed": { "type": "integer", "nullable": true },
            "expires": int("The latest block time (ms since 1970) at which approvals can still carry it out."),
        })),
        "GovProposalList": with_proof(&["proposals", "next"], json!({
            "proposals": array(schema_ref("GovProposal")),
            "next": int("The next proposal id."),
        })),
        "GovProposalAnswer": with_proof(&["proposal"], json!({ "proposal": schema_ref("GovProposal") })),
        "ParamsAnswer": with_proof(&["params"], json!({
            "params": array(obj(&["name", "value", "set_at", "unit", "min", "max", "default", "meaning"], json!({
                "name": string("The parameter's name."),
                "value": int("Its value at the height."),
                "set_at": { "type": "integer", "minimum": 0, "nullable": true, "description": "The height it was set at (0: the genesis); null while it has its default." },
                "unit": { "type": "string", "enum": ["basis_points", "heights", "seconds"] },
                "min": int("The smallest value allowed."),
                "max": int("The largest value allowed."),
                "default": int("The value when never set."),
                "meaning": string("What it does."),
            }))),
        })),
        "DeviceRecord": obj(&["device", "operator", "kind", "unit", "location", "stream", "registered", "updated", "active", "next_sequence", "last_batch", "last_window_end"], json!({
            "device": schema_ref("Did"),
            "operator": schema_ref("Did"),
            "kind": string("What it measures."),
            "unit": string("UCUM unit."),
            "location": string("Geohash."),
            "stream": string("Stream name."),
            "registered": int("Height."),
            "updated": int("Height."),
            "active": { "type": "boolean" },
            "next_sequence": int("The next batch's sequence number."),
            "last_batch": schema_ref("Hash"),
            "last_window_end": int("ms since 1970."),
        })),
        "DeviceAnswer": with_proof(&["device"], json!({ "device": schema_ref("DeviceRecord") })),
        "AttestationRecord": obj(&["batch", "hash", "height"], json!({
            "batch": obj(&["device", "stream", "sequence", "prev_batch_hash", "window_start", "window_end", "reading_count", "readings_root", "raw_batch_hash"], json!({
                "device": schema_ref("Did"),
                "stream": string("Stream."),
                "sequence": int("Sequence number."),
                "prev_batch_hash": schema_ref("Hash"),
                "window_start": int("ms since 1970."),
                "window_end": int("ms since 1970."),
                "reading_count": int("Readings."),
                "readings_root": schema_ref("Hash"),
                "raw_batch_hash": schema_ref("Hash"),
            })),
            "hash": schema_ref("Hash"),
            "height": int("Height attested."),
        })),
        "AttestationList": with_proof(&["device", "next_sequence", "attestations"], json!({
            "device": schema_ref("Did"),
            "next_sequence": int("The next sequence number."),
            "attestations": array(schema_ref("AttestationRecord")),
        })),
        "AttestationAnswer": with_proof(&["attestation", "device"], json!({
            "attestation": schema_ref("AttestationRecord"),
            "device": { "allOf": [schema_ref("DeviceRecord")], "nullable": true },
        })),
        "Phase": { "type": "string", "enum": ["announced", "proposals", "voting", "tallying", "closed", "cancelled"] },
        "BudgetRound": obj(&["id", "spec", "opener", "opened", "projects", "voters", "status"], json!({
            "id": int("Round id."),
            "spec": any_object("Title, district, budget and its ISO 4217 currency, phases as block times (ms since 1970: proposals_from, voting_from, closes_at), ballot format, rule, secrecy."),
            "opener": any_object("Who opened it."),
            "opened": int("Height."),
            "projects": int("Projects proposed."),
            "voters": int("Ballots cast."),
            "status": { "oneOf": [
                { "type": "string", "enum": ["open", "tallied"] },
                obj(&["tallying"], json!({
                    "tallying": obj(&["closed", "due", "ballots_at"], json!({
                        "closed": int("Height of the block that closed the round."),
                        "due": int("Height of the block that stores the tally."),
                        "ballots_at": { "allOf": [schema_ref("Hash")], "description": "Root of the state whose ballots are tallied (after height closed - 1)." },
                    })),
                })),
                obj(&["cancelled"], json!({
                    "cancelled": obj(&["at"], json!({
                        "at": int("Height of the block that carried out the council's cancellation."),
                    })),
                })),
            ] },
        })),
        "TallyRecord": obj(&["round", "rule", "selected", "total_cost", "approvals", "voters", "height", "ballots_root"], json!({
            "round": int("Round id."),
            "rule": any_object("Rule and tie-break."),
            "selected": array(json!({ "type": "integer" })),
            "total_cost": int("Cost of the selected projects."),
            "approvals": array(json!({ "type": "integer" })),
            "voters": int("Ballots counted."),
            "endowment": { "type": "array", "nullable": true, "items": { "type": "integer" } },
            "add1_steps": { "type": "integer", "nullable": true },
            "height": int("Height tallied."),
            "ballots_root": schema_ref("Hash"),
        })),
        "RoundDates": obj(&["proposals_from", "voting_from", "closes_at"], json!({
            "proposals_from": string("RFC 3339 UTC time proposals open."),
            "voting_from": string("RFC 3339 UTC time proposals close and voting opens."),
            "closes_at": string("RFC 3339 UTC time voting ends: the first block at or after it closes the round."),
        })),
        "RoundAnswer": with_proof(&["round", "phase", "dates", "time"], json!({
            "round": schema_ref("BudgetRound"),
            "phase": schema_ref("Phase"),
            "dates": schema_ref("RoundDates"),
            "time": string("RFC 3339 time of the block read: the phase is the one after it."),
            "phase_ends": { "type": "string", "nullable": true, "description": "When the phase under way ends (RFC 3339); null while tallying, closed or cancelled." },
            "phase_left_ms": { "type": "integer", "nullable": true, "description": "Milliseconds from the block's time to phase_ends." },
            "tally_due": int("While tallying: the height whose block stores the tally."),
            "tokens": { "allOf": [schema_ref("TokenCount")], "description": "A secret round's token requests and tokens." },
            "result": { "allOf": [schema_ref("TallyRecord")], "nullable": true },
        })),
        "RoundList": with_proof(&["rounds", "next"], json!({
            "rounds": array(obj(&["round", "phase", "dates", "time"], json!({
                "round": schema_ref("BudgetRound"),
                "phase": schema_ref("Phase"),
                "dates": schema_ref("RoundDates"),
                "time": string("RFC 3339 time of the block read."),
                "phase_ends": { "type": "string", "nullable": true },
                "phase_left_ms": { "type": "integer", "nullable": true },
                "tally_due": int("While tallying: the height whose block stores the tally."),
                "tokens": { "allOf": [schema_ref("TokenCount")], "description": "A secret round's token requests and tokens." },
            }))),
            "next": int("The next round id."),
        })),
        "ProjectList": with_proof(&["round", "projects"], json!({
            "round": int("Round id."),
            "projects": array(obj(&["round", "index", "proposer", "title", "cost", "proposed"], json!({
                "round": int("Round id."),
                "index": int("Project index."),
                "proposer": schema_ref("Did"),
                "title": string("Title."),
                "cost": int("Cost."),
                "proposed": int("Height."),
            }))),
        })),
        "ResultAnswer": with_proof(&["result", "selected"], json!({
            "result": schema_ref("TallyRecord"),
            "selected": array(obj(&["index", "title", "cost"], json!({
                "index": int("Project index."),
                "title": string("Title."),
                "cost": int("Cost."),
            }))),
        })),
        "BallotAnswer": obj(&["index", "voter", "projects", "cast"], json!({
            "index": int("The ballot's position among the round's ballots (a leaf of ballots_root)."),
            "voter": schema_ref("Did"),
            "projects": array(json!({ "type": "integer" })),
            "cast": int("Height it was cast."),
        })),
        "BallotsAnswer": with_proof(&["round", "projects", "result", "ballots"], json!({
            "round": schema_ref("BudgetRound"),
            "projects": array(any_object("A project.")),
            "result": schema_ref("TallyRecord"),
            "ballots": array(schema_ref("BallotAnswer")),
        })),
        "ReceiptAnswer": with_proof(&["round", "ballot", "ballots", "ballots_root", "tallied_at"], json!({
            "round": int("Round id."),
            "ballot": schema_ref("BallotAnswer"),
            "ballots": int("Ballots tallied."),
            "ballots_root": schema_ref("Hash"),
            "tallied_at": int("Height tallied."),
        })),
        "TokenCount": obj(&["requested", "issued"], json!({
            "requested": int("Token requests recorded."),
            "issued": int("Tokens the registrar gave."),
        })),
        "TokenRequest": obj(&["round", "index", "voter", "blinded", "requested"], json!({
            "round": int("Round id."),
            "index": int("Request index."),
            "voter": schema_ref("Did"),
            "blinded": string("The blinded token message, hex."),
            "requested": int("Height asked."),
            "blind_signature": { "type": "string", "nullable": true, "description": "The registrar's blind signature, hex, once given." },
            "issued": { "type": "integer", "nullable": true, "description": "Height given." },
        })),
        "TokenRequestList": with_proof(&["round", "tokens", "requests"], json!({
            "round": int("Round id."),
            "tokens": schema_ref("TokenCount"),
            "requests": array(schema_ref("TokenRequest")),
        })),
        "TokenRequestAnswer": with_proof(&["round", "request"], json!({
            "round": int("Round id."),
            "request": schema_ref("TokenRequest"),
        })),
        "BallotTokenList": with_proof(&["round", "ballots", "issued", "tokens"], json!({
            "round": int("Round id."),
            "ballots": int("Ballots cast so far."),
            "issued": int("Tokens the registrar gave: never fewer than the ballots."),
            "tokens": array(obj(&["index", "voter", "key", "token"], json!({
                "index": int("Ballot index."),
                "voter": schema_ref("Did"),
                "key": string("The one-time ballot key, hex."),
                "token": string("The registrar's signature of the ballot key's token message, hex."),
            }))),
        })),
        "SignerNonce": obj(&["signer", "height", "committed", "next", "pending"], json!({
            "signer": string("The signer's public key, hex."),
            "height": int("The latest committed height, whose state `committed` is read from."),
            "committed": int("The nonce the committed state expects next: how many transactions of the signer are committed."),
            "next": int("The nonce after the signer's transactions waiting in this node's mempool: what its next transaction is signed with."),
            "pending": int("How many of the signer's transactions wait in this node's mempool (`next` - `committed`)."),
        })),
        "StateValue": with_proof(&["namespace", "key", "value"], json!({
            "namespace": string("Namespace."),
            "key": string("Key, hex."),
            "value": { "type": "string", "nullable": true, "description": "Value, hex." },
        })),
    })
}

fn paths() -> Value {
    let read = || vec![height(), prove(), checkpoint()];
    let page = || vec![height(), from(), limit(), prove(), checkpoint()];
    let mut p = Map::new();
    let mut add = |path: &str, method: &str, op: Value| {
        let entry = p.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[method] = op;
    };
    add(
        "/status",
        "get",
        op("The node's status", "chain", vec![], schema_ref("Status")),
    );
    for (path, summary) in [
        ("/health", "Live (200) while the node's loop runs, else 503: a liveness probe"),
        ("/ready", "Ready (200) when live, caught up with its peers and the chain not stalled, else 503 with the reasons"),
    ] {
        let mut health = op(summary, "meta", vec![], schema_ref("Health"));
        health["responses"]["503"] = json!({
            "description": "Not live, or not ready: `reasons` says why.",
            "content": json_content(schema_ref("Health")),
        });
        add(path, "get", health);
    }
    add(
        "/openapi.json",
        "get",
        op(
            "This document",
            "meta",
            vec![],
            any_object("OpenAPI 3.0 document."),
        ),
    );
    let mut metrics = op(
        "Metrics in the Prometheus text format (OpenMetrics)",
        "meta",
        vec![],
        json!({ "type": "string" }),
    );
    metrics["responses"]["200"]["content"] =
        json!({ "application/openmetrics-text": { "schema": { "type": "string" } } });
    add("/metrics", "get", metrics);
    add(
        "/blocks/latest",
        "get",
        op(
            "The latest block with its commit certificate",
            "chain",
            vec![],
            schema_ref("BlockAnswer"),
        ),
    );
    let h = || {
        path_param(
            "height",
            "Block height.",
            json!({ "type": "integer", "minimum": 0 }),
        )
    };
    add(
        "/blocks/{height}",
        "get",
        op(
            "A block with its commit certificate",
            "chain",
            vec![h()],
            schema_ref("BlockAnswer"),
        ),
    );
    add(
        "/blocks/{height}/results",
        "get",
        op(
            "What each transaction of a block did",
            "chain",
            vec![h()],
            schema_ref("BlockResults"),
        ),
    );
    let mut submit = op(
        "Submit a transaction",
        "chain",
        vec![query("mode", "async: queued, not waiting for the mempool (202); sync: checked by the mempool; commit: answered once in a committed block, or 504 when rpc.commit_timeout_ms passes.", json!({ "type": "string", "enum": ["async", "sync", "commit"], "default": "sync" }))],
        schema_ref("SubmitAnswer"),
    );
    submit["requestBody"] =
        json!({ "required": true, "content": json_content(schema_ref("SubmitBody")) });
    let r = submit["responses"]
        .as_object_mut()
        .expect("responses is an object");
    r.insert("202".into(), json!({ "description": "Queued (mode=async).", "content": json_content(schema_ref("SubmitAnswer")) }));
    r.insert(
        "413".into(),
        error("The body is larger than rpc.max_body_bytes."),
    );
    r.insert(
        "415".into(),
        error("The body is not sent as application/json."),
    );
    r.insert("422".into(), error("Refused by the mempool, or (mode=commit) by the ledger: `code` says why, `hash` names it."));
    r.insert(
        "504".into(),
        error("mode=commit: not committed within the wait; it may still be."),
    );
    add("/txs", "post", submit);
    let mut batch = op(
        "Submit up to 1024 transactions at once, each checked by the mempool as with mode=sync",
        "chain",
        vec![],
        schema_ref("SubmitBatchAnswer"),
    );
    batch["requestBody"] =
        json!({ "required": true, "content": json_content(schema_ref("SubmitBatchBody")) });
    let r = batch["responses"]
        .as_object_mut()
        .expect("responses is an object");
    r.insert(
        "413".into(),
        error("The body is larger than rpc.max_body_bytes."),
    );
    r.insert(
        "415".into(),
        error("The body is not sent as application/json."),
    );
    add("/txs/batch", "post", batch);
    let hash = || {
        path_param(
            "hash",
            "Transaction id (hex SHA-256 of its encoding).",
            schema_ref("Hash"),
        )
    };
    add(
        "/txs/{hash}",
        "get",
        op(
            "A transaction with its result (or pending)",
            "chain",
            vec![hash(), prove(), checkpoint()],
            schema_ref("TxAnswer"),
        ),
    );
    add(
        "/signers/{key}/nonce",
        "get",
        op(
            "A signer's next nonce, committed and after its transactions in this node's mempool",
            "chain",
            vec![path_param(
                "key",
                "The signer's Ed25519 public key, hex.",
                json!({ "type": "string", "pattern": "^[0-9a-fA-F]{64}$" }),
            )],
            schema_ref("SignerNonce"),
        ),
    );
    let mut blocks = op(
        "Committed blocks as server-sent events (`block`, `lagged`)",
        "events",
        vec![],
        json!({ "type": "string" }),
    );
    blocks["responses"]["200"]["content"] = json!({ "text/event-stream": { "schema": { "type": "object", "description": "Each event's data is one JSON object." } } });
    add("/events/blocks", "get", blocks);
    let mut txe = op("One server-sent event (`tx`, or `timeout` after 10 minutes) when a transaction is committed", "events", vec![hash()], json!({ "type": "string" }));
    txe["responses"]["200"]["content"] = json!({ "text/event-stream": { "schema": { "type": "object", "description": "Each event's data is one JSON object." } } });
    add("/events/txs/{hash}", "get", txe);
    add(
        "/validators",
        "get",
        op(
            "The validator set that signs a height",
            "chain",
            read(),
            schema_ref("ValidatorSetAnswer"),
        ),
    );
    let mut cp = op(
        "The latest checkpoint of the block log (C2SP tlog-checkpoint), cosigned by validators holding more than two thirds of the power (C2SP tlog-cosignature), as a signed note",
        "chain",
        vec![],
        json!({ "type": "string" }),
    );
    cp["responses"]["200"]["content"] = json!({ "text/plain": { "schema": { "type": "string", "description": "origin, size and base64 root lines, a blank line, then one `— name base64` line per cosignature." } } });
    add("/checkpoint", "get", cp);
    add(
        "/checkpoint/consistency",
        "get",
        op(
            "The RFC 9162 consistency proof between the block log of `from` blocks and of `to` blocks",
            "chain",
            vec![
                {
                    let mut q = query("from", "The older checkpoint's size.", u64_schema());
                    q["required"] = json!(true);
                    q
                },
                {
                    let mut q = query("to", "The newer checkpoint's size (at most the latest height).", u64_schema());
                    q["required"] = json!(true);
                    q
                },
            ],
            schema_ref("ConsistencyProof"),
        ),
    );
    add(
        "/council",
        "get",
        op(
            "The council",
            "governance",
            read(),
            schema_ref("CouncilAnswer"),
        ),
    );
    add(
        "/council/proposals",
        "get",
        op(
            "Council proposals",
            "governance",
            page(),
            schema_ref("GovProposalList"),
        ),
    );
    add(
        "/params",
        "get",
        op(
            "Chain parameters: the registry, with each value and the height it was set",
            "governance",
            read(),
            schema_ref("ParamsAnswer"),
        ),
    );
    let mut one = read();
    one.insert(0, id_param("Proposal id."));
    add(
        "/council/proposals/{id}",
        "get",
        op(
            "A council proposal",
            "governance",
            one,
            schema_ref("GovProposalAnswer"),
        ),
    );
    let with_did = || {
        let mut v = read();
        v.insert(0, did_param());
        v
    };
    add(
        "/issuers/{did}",
        "get",
        op(
            "An issuer's registration",
            "identity",
            with_did(),
            schema_ref("IssuerAnswer"),
        ),
    );
    let mut resolve = op(
        "Resolve a DID (W3C DID Resolution)",
        "identity",
        with_did(),
        schema_ref("DidResolution"),
    );
    resolve["description"] = json!("The DID resolution result (`application/did-resolution`), or with `Accept: application/did+ld+json` (or `application/did+json`) the DID document alone. Errors carry the W3C result's fields beside `code` and `message`: `didDocument` null, `didResolutionMetadata.error` (`invalidDid`, `invalidDidUrl`, `notFound`) and empty `didDocumentMetadata`. A deactivated DID resolves, with `didDocumentMetadata.deactivated` true.");
    resolve["parameters"]
        .as_array_mut()
        .expect("a list")
        .extend([
            query("versionId", "The version to resolve: the height of the block that made it (`versionId` and `nextVersionId` in the metadata). Not with `height` or `versionTime`.", json!({ "type": "string", "pattern": "^[0-9]+$" })),
            query("versionTime", "Resolve the version in force at this time (RFC 3339, such as 2027-03-01T09:00:00Z): the state after the last block at or before it.", json!({ "type": "string" })),
        ]);
    resolve["responses"]["200"]["content"] = json!({
        "application/did-resolution": { "schema": schema_ref("DidResolution") },
        "application/did+ld+json": { "schema": schema_ref("DidDocument") },
        "application/did+json": { "schema": schema_ref("DidDocument") },
    });
    add("/dids/{did}", "get", resolve);
    add(
        "/dids/{did}/credentials",
        "get",
        op(
            "The credentials issued to a DID",
            "identity",
            with_did(),
            schema_ref("CredentialList"),
        ),
    );
    let mut cred = read();
    cred.insert(
        0,
        path_param("id", "Credential id (hex).", schema_ref("Hash")),
    );
    add(
        "/credentials/{id}",
        "get",
        op(
            "A credential and its status",
            "identity",
            cred,
            schema_ref("CredentialAnswer"),
        ),
    );
    add(
        "/devices/{did}",
        "get",
        op(
            "A sensor device",
            "sensors",
            with_did(),
            schema_ref("DeviceAnswer"),
        ),
    );
    let mut atts = page();
    atts.insert(0, did_param());
    add(
        "/devices/{did}/attestations",
        "get",
        op(
            "A device's attestation batches (default: the latest)",
            "sensors",
            atts,
            schema_ref("AttestationList"),
        ),
    );
    let mut att = with_did();
    att.insert(
        1,
        path_param(
            "sequence",
            "Batch sequence number.",
            json!({ "type": "integer", "minimum": 0 }),
        ),
    );
    add(
        "/devices/{did}/attestations/{sequence}",
        "get",
        op(
            "One attestation batch",
            "sensors",
            att,
            schema_ref("AttestationAnswer"),
        ),
    );
    add(
        "/budget/rounds",
        "get",
        op("Budget rounds", "budget", page(), schema_ref("RoundList")),
    );
    let round = || {
        let mut v = read();
        v.insert(0, id_param("Round id."));
        v
    };
    add(
        "/budget/rounds/{id}",
        "get",
        op(
            "A budget round and its phase",
            "budget",
            round(),
            schema_ref("RoundAnswer"),
        ),
    );
    add(
        "/budget/rounds/{id}/proposals",
        "get",
        op(
            "A round's projects",
            "budget",
            round(),
            schema_ref("ProjectList"),
        ),
    );
    add(
        "/budget/rounds/{id}/result",
        "get",
        op(
            "A round's stored tally",
            "budget",
            round(),
            schema_ref("ResultAnswer"),
        ),
    );
    add(
        "/budget/rounds/{id}/ballots",
        "get",
        op(
            "A tallied round's projects, result and every ballot; proven, the ballots are checked against the result's ballots_root",
            "budget",
            round(),
            schema_ref("BallotsAnswer"),
        ),
    );
    let mut receipt = round();
    receipt.insert(1, did_param());
    add(
        "/budget/rounds/{id}/ballots/{did}",
        "get",
        op(
            "A voter's tallied ballot; proven, a receipt of its inclusion under the round's ballots_root",
            "budget",
            receipt,
            schema_ref("ReceiptAnswer"),
        ),
    );
    let round_page = || {
        let mut v = page();
        v.insert(0, id_param("Round id."));
        v
    };
    add(
        "/budget/rounds/{id}/tokens",
        "get",
        op(
            "A secret round's token requests, with the registrar's blind signatures once given",
            "budget",
            round_page(),
            schema_ref("TokenRequestList"),
        ),
    );
    let mut token_of = round();
    token_of.insert(1, did_param());
    add(
        "/budget/rounds/{id}/tokens/{did}",
        "get",
        op(
            "A resident's token request of a secret round",
            "budget",
            token_of,
            schema_ref("TokenRequestAnswer"),
        ),
    );
    add(
        "/budget/rounds/{id}/ballot-tokens",
        "get",
        op(
            "The tokens of a secret round's ballots, by ballot index, to check against the registrar's key",
            "budget",
            round_page(),
            schema_ref("BallotTokenList"),
        ),
    );
    let mut pb = op(
        "A round's projects and ballots as a pabulib .pb file",
        "budget",
        vec![
            id_param("Round id."),
            height(),
            query(
                "prove",
                "Not supported: a .pb export has no proof (/budget/rounds/{id}/ballots?prove=true proves the same ballots), so only false is accepted.",
                json!({ "type": "boolean", "enum": [false] }),
            ),
        ],
        json!({ "type": "string" }),
    );
    pb["responses"]["200"]["content"] = json!({ "text/plain": { "schema": { "type": "string" } } });
    add("/budget/rounds/{id}/ballots.pb", "get", pb);
    let mut state = read();
    state.insert(
        0,
        path_param(
            "namespace",
            "State namespace.",
            json!({ "type": "string", "pattern": "^[a-z0-9_]{1,64}$" }),
        ),
    );
    state.insert(
        1,
        path_param(
            "key",
            "Key bytes, hex.",
            json!({ "type": "string", "pattern": "^([0-9a-fA-F]{2})*$" }),
        ),
    );
    add(
        "/state/{namespace}/{key}",
        "get",
        op(
            "A raw state value",
            "chain",
            state,
            schema_ref("StateValue"),
        ),
    );
    Value::Object(p)
}

/// The whole document.
pub fn document() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Acta node API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The HTTP API of an actad node: status, blocks, transactions, city records (DIDs, credentials, sensors, budget rounds), proof bundles an auditor checks offline against the genesis, event streams and metrics. Errors are {\"code\", \"message\"}. Byte strings are lowercase hex; heights and amounts are integers; times are milliseconds since 1970 unless named RFC 3339.",
        },
        "servers": [{ "url": "http://127.0.0.1:26657" }],
        "paths": paths(),
        "components": { "schemas": schemas() },
    })
}
