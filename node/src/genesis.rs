//! The genesis file (`genesis.json`): the chain id, the validators with their voting power
//! and libp2p identity, the council, the initial issuers and parameters. Every node of a
//! chain has the same file; its hash is the parent of block 1.

use std::{collections::BTreeMap, path::Path, str::FromStr};

use acta_contracts::genesis::GenesisState;
use acta_ledger::{
    records::{Council, CredentialKind, ValidatorNode},
    types::Text,
    validator::{Validator, ValidatorSet},
    ChainId, Did, Hash, PublicKey, Timestamp, VotingPower,
};
use anyhow::{anyhow, bail, Context, Result};
use libp2p::PeerId;
use serde::{Deserialize, Serialize};

/// The genesis file as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    pub chain_id: String,
    /// Milliseconds since the Unix epoch; block 1 must be later.
    pub genesis_time_ms: u64,
    pub validators: Vec<GenesisValidator>,
    pub council: GenesisCouncil,
    #[serde(default)]
    pub issuers: Vec<GenesisIssuer>,
    #[serde(default)]
    pub parameters: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    pub name: String,
    /// The consensus key, 32 bytes in hex.
    pub consensus_key: String,
    /// The libp2p peer id of the validator's node: only its connections take part.
    pub peer_id: String,
    /// Where the other validators dial it: a multiaddress without `/p2p/`, such as
    /// `/dns4/acta.water.city/tcp/26656`. Without it, the node must dial the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    pub power: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisCouncil {
    /// Public keys in hex.
    pub members: Vec<String>,
    pub threshold: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisIssuer {
    pub did: String,
    pub kinds: Vec<CredentialKind>,
}

/// A checked genesis, ready to use.
#[derive(Clone, Debug)]
pub struct ChainSpec {
    pub chain_id: ChainId,
    pub genesis_time: Timestamp,
    pub validators: ValidatorSet,
    /// The peer id of each genesis validator's node.
    pub peers: BTreeMap<PublicKey, PeerId>,
    pub names: BTreeMap<PublicKey, String>,
    pub state: GenesisState,
    /// SHA-256 of the file's canonical JSON: the parent hash of block 1.
    pub hash: Hash,
}

impl Genesis {
    /// Reads and checks a genesis file; errors name the file and the field.
    pub fn load(path: &Path) -> Result<(Genesis, ChainSpec)> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading genesis file {}", path.display()))?;
        let genesis: Genesis = serde_json::from_str(&text)
            .with_context(|| format!("genesis file {}", path.display()))?;
        let spec = genesis
            .check()
            .with_context(|| format!("genesis file {}", path.display()))?;
        Ok((genesis, spec))
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }

    /// The canonical hash: SHA-256 of the compact JSON of the parsed file.
    pub fn hash(&self) -> Hash {
        Hash::digest(&serde_json::to_vec(self).expect("a genesis serialises"))
    }

    /// Checks every field and builds the chain's starting point.
    pub fn check(&self) -> Result<ChainSpec> {
        if self.validators.is_empty() {
            bail!("field validators: a chain needs at least one validator");
        }
        self.check_draft()?
            .ok_or_else(|| anyhow!("field validators: a chain needs at least one validator"))
    }

    /// Checks every field of a genesis being put together (`actad genesis new` and
    /// `add-validator`), which may have no validator yet: the chain's starting point once it
    /// has one.
    pub fn check_draft(&self) -> Result<Option<ChainSpec>> {
        let chain_id =
            ChainId::new(self.chain_id.clone()).map_err(|e| anyhow!("field chain_id: {e}"))?;
        let mut peers = BTreeMap::new();
        let mut peer_ids = std::collections::BTreeSet::new();
        let mut names = BTreeMap::new();
        let mut validators = Vec::new();
        let mut nodes = Vec::new();
        for (i, v) in self.validators.iter().enumerate() {
            let at = |field: &str| format!("field validators[{i}].{field}");
            let key = PublicKey::from_hex(&v.consensus_key)
                .and_then(|k| k.validate().map(|()| k))
                .map_err(|e| anyhow!("{}: {e}", at("consensus_key")))?;
            let peer =
                PeerId::from_str(&v.peer_id).map_err(|e| anyhow!("{}: {e}", at("peer_id")))?;
            let node = ValidatorNode {
                peer_id: Text::new(v.peer_id.clone())
                    .map_err(|e| anyhow!("{}: {e}", at("peer_id")))?,
                address: Text::new(v.address.clone().unwrap_or_default())
                    .map_err(|e| anyhow!("{}: {e}", at("address")))?,
            };
            node.check().map_err(|e| anyhow!("{}: {e}", at("node")))?;
            if let Some(address) = &v.address {
                address
                    .parse::<libp2p::Multiaddr>()
                    .map_err(|e| anyhow!("{}: {address:?}: {e}", at("address")))?;
            }
            nodes.push((key, node));
            if v.power == 0 {
                bail!("{}: a validator needs power", at("power"));
            }
            if peers.insert(key, peer).is_some() {
                bail!("{}: key listed twice", at("consensus_key"));
            }
            if !peer_ids.insert(peer) {
                bail!("{}: peer id listed twice", at("peer_id"));
            }
            names.insert(key, v.name.clone());
            validators.push(Validator {
                public_key: key,
                power: VotingPower(v.power),
            });
        }
        let validators = if validators.is_empty() {
            None
        } else {
            Some(ValidatorSet::new(validators).map_err(|e| anyhow!("field validators: {e}"))?)
        };
        let mut members = Vec::new();
        for (i, m) in self.council.members.iter().enumerate() {
            members.push(
                PublicKey::from_hex(m)
                    .and_then(|k| k.validate().map(|()| k))
                    .map_err(|e| anyhow!("field council.members[{i}]: {e}"))?,
            );
        }
        let council = Council::new(members, self.council.threshold)
            .map_err(|e| anyhow!("field council: {e}"))?;
        let mut issuers = Vec::new();
        for (i, issuer) in self.issuers.iter().enumerate() {
            let did =
                Did::parse(&issuer.did).map_err(|e| anyhow!("field issuers[{i}].did: {e}"))?;
            if issuer.kinds.is_empty() {
                bail!("field issuers[{i}].kinds: an issuer issues at least one kind");
            }
            if issuers.iter().any(|(d, _)| *d == did) {
                bail!("field issuers[{i}].did: {did} is listed twice");
            }
            issuers.push((did, issuer.kinds.clone()));
        }
        for (name, value) in &self.parameters {
            acta_contracts::params::check(name, *value)
                .map_err(|e| anyhow!("field parameters.{name}: {e}"))?;
        }
        let parameters = self
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let Some(validators) = validators else {
            return Ok(None);
        };
        Ok(Some(ChainSpec {
            chain_id,
            genesis_time: Timestamp(self.genesis_time_ms),
            validators: validators.clone(),
            peers,
            names,
            state: GenesisState {
                validators,
                nodes,
                council,
                issuers,
                parameters,
            },
            hash: self.hash(),
        }))
    }

    /// Adds the validator that `actad show-node` described in `shown` (its JSON), with
    /// `power`, dialed at `address` ([`acta_contracts::answer::shown_validator`]).
    pub fn add_validator(
        &mut self,
        shown: &serde_json::Value,
        power: u64,
        address: Option<String>,
    ) -> Result<()> {
        let shown =
            acta_contracts::answer::shown_validator(shown, address).map_err(|e| anyhow!(e))?;
        let mut next = self.clone();
        let address = shown.node.address.as_str();
        next.validators.push(GenesisValidator {
            name: shown.moniker,
            consensus_key: shown.key.to_hex(),
            peer_id: shown.node.peer_id.to_string(),
            address: (!address.is_empty()).then(|| address.to_string()),
            power,
        });
        next.check_draft()?;
        *self = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acta_ledger::testing;

    fn sample() -> Genesis {
        let peer = libp2p::identity::Keypair::ed25519_from_bytes([7u8; 32])
            .unwrap()
            .public()
            .to_peer_id();
        Genesis {
            chain_id: "acta-test".into(),
            genesis_time_ms: 1_700_000_000_000,
            validators: vec![GenesisValidator {
                name: "v0".into(),
                consensus_key: testing::key(0xa0, 0).public().to_hex(),
                peer_id: peer.to_string(),
                address: Some("/dns4/acta.water.example/tcp/26656".into()),
                power: 10,
            }],
            council: GenesisCouncil {
                members: vec![testing::key(0xc5, 0).public().to_hex()],
                threshold: 1,
            },
            issuers: vec![],
            parameters: BTreeMap::new(),
        }
    }

    #[test]
    fn a_sound_genesis_checks_and_has_a_stable_hash() {
        let g = sample();
        let spec = g.check().unwrap();
        assert_eq!(spec.validators.len(), 1);
        assert_eq!(spec.hash, g.clone().hash());
        let text = serde_json::to_string_pretty(&g).unwrap();
        let back: Genesis = serde_json::from_str(&text).unwrap();
        assert_eq!(back.hash(), spec.hash);
    }

    #[test]
    fn errors_name_the_field() {
        let mut g = sample();
        g.validators[0].peer_id = "not-a-peer".into();
        let e = g.check().unwrap_err().to_string();
        assert!(e.contains("validators[0].peer_id"), "{e}");
        let mut g = sample();
        g.validators[0].address = Some("/ip4/10.0.0.5/tcp/26656/p2p/x".into());
        let e = g.check().unwrap_err().to_string();
        assert!(e.contains("validators[0]"), "{e}");
        let mut g = sample();
        g.validators[0].power = 0;
        assert!(g
            .check()
            .unwrap_err()
            .to_string()
            .contains("validators[0].power"));
        let mut g = sample();
        g.council.threshold = 5;
        assert!(g.check().unwrap_err().to_string().contains("field council"));
        let mut g = sample();
        g.chain_id = "Bad Chain!".into();
        assert!(g.check().unwrap_err().to_string().contains("chain_id"));
        let e = serde_json::from_str::<Genesis>("{\"chain_id\": 5}").unwrap_err();
        assert!(e.to_string().contains("chain_id") || e.to_string().contains("invalid type"));
    }

    #[test]
    fn validators_are_added_from_what_show_node_printed() {
        let mut g = sample();
        g.validators.clear();
        assert!(g.check().is_err());
        assert!(g.check_draft().unwrap().is_none());
        let peer = libp2p::identity::Keypair::ed25519_from_bytes([8u8; 32])
            .unwrap()
            .public()
            .to_peer_id();
        let shown = serde_json::json!({
            "moniker": "water",
            "consensus_key": testing::key(0xa0, 1).public().to_hex(),
            "peer_id": peer.to_string(),
            "p2p_listen": "/ip4/0.0.0.0/tcp/26656",
        });
        // A wildcard listen address is not one others can dial.
        let e = g.add_validator(&shown, 10, None).unwrap_err().to_string();
        assert!(e.contains("--address"), "{e}");
        assert!(g.validators.is_empty());
        g.add_validator(
            &shown,
            10,
            Some("/dns4/acta.water.example/tcp/26656".into()),
        )
        .unwrap();
        let spec = g.check().unwrap();
        assert_eq!(spec.state.nodes[0].1.peer_id.as_str(), peer.to_string());
        // The same node twice is refused.
        let before = g.clone();
        assert!(g.add_validator(&shown, 10, Some(String::new())).is_err());
        assert_eq!(g, before);
        // Not the JSON of show-node.
        let e = g
            .add_validator(&serde_json::json!({"key": 1}), 10, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("show-node"), "{e}");
    }
}
