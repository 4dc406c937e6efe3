//! The node's two keys: its libp2p identity and its consensus signing key, each an ed25519
//! seed in a JSON file readable by its owner only.

use std::{io::Write, os::unix::fs::OpenOptionsExt, path::Path};

use acta_ledger::Keypair;
use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    /// Always "ed25519".
    kind: String,
    /// The 32-byte seed in hex.
    seed: String,
}

fn write_seed(path: &Path, seed: &[u8; 32]) -> Result<()> {
    let text = serde_json::to_string_pretty(&KeyFile {
        kind: "ed25519".into(),
        seed: hex::encode(seed),
    })?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating key file {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

fn read_seed(path: &Path) -> Result<[u8; 32]> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading key file {}", path.display()))?;
    let file: KeyFile =
        serde_json::from_str(&text).with_context(|| format!("key file {}", path.display()))?;
    if file.kind != "ed25519" {
        return Err(anyhow!(
            "key file {}: field kind: {:?} is not \"ed25519\"",
            path.display(),
            file.kind
        ));
    }
    let bytes = hex::decode(&file.seed)
        .map_err(|e| anyhow!("key file {}: field seed: {e}", path.display()))?;
    bytes
        .try_into()
        .map_err(|_| anyhow!("key file {}: field seed: not 32 bytes", path.display()))
}

/// Writes a new random key to `path`, which must not exist yet.
pub fn generate(path: &Path) -> Result<[u8; 32]> {
    let seed = Keypair::generate().seed();
    write_seed(path, &seed)?;
    Ok(seed)
}

pub fn load_consensus_key(path: &Path) -> Result<Keypair> {
    Ok(Keypair::from_seed(read_seed(path)?))
}

pub fn load_node_key(path: &Path) -> Result<libp2p::identity::Keypair> {
    let seed = read_seed(path)?;
    libp2p::identity::Keypair::ed25519_from_bytes(seed)
        .map_err(|e| anyhow!("key file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        let seed = generate(&path).unwrap();
        assert_eq!(load_consensus_key(&path).unwrap().seed(), seed);
        load_node_key(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Never overwritten.
        assert!(generate(&path).is_err());
        std::fs::write(&path, "{\"kind\":\"ed25519\",\"seed\":\"00\"}").unwrap();
        let e = load_consensus_key(&path).unwrap_err().to_string();
        assert!(e.contains("field seed"), "{e}");
    }
}
