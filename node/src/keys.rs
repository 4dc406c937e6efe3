//! The node's two keys: its libp2p identity and its consensus signing key, each an ed25519
//! seed in a JSON file readable by its owner only (a file others may read is refused). The
//! consensus key may instead be kept encrypted at rest, in the wallet's keystore format
//! ([`acta_ledger::keystore`]): `actad keys encrypt` turns one into the other, and `actad
//! start --key-passphrase-file` unlocks it.

use std::{io::Write, os::unix::fs::OpenOptionsExt, path::Path};

use acta_ledger::Keypair;
use anyhow::{anyhow, bail, Context, Result};
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

/// The permission bits of `path`.
fn mode_of(path: &Path) -> Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions()
        .mode())
}

/// Refuses a secret file that others than its owner may read or write.
fn check_private(path: &Path) -> Result<()> {
    let mode = mode_of(path)?;
    if mode & 0o077 != 0 {
        bail!(
            "{} may be read by others (mode {:o}): refused; run chmod 600 {}",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    Ok(())
}

fn read_seed(path: &Path) -> Result<[u8; 32]> {
    check_private(path)?;
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

/// The keystore name of an encrypted consensus key file: its file name without `.json`.
fn keystore_of(path: &Path) -> Result<(acta_ledger::keystore::Keystore, String)> {
    let name = path
        .file_stem()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow!("{}: not a key file name", path.display()))?;
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("{} has no folder", path.display()))?;
    Ok((acta_ledger::keystore::Keystore::new(dir), name.to_string()))
}

/// Whether the key file at `path` is encrypted (the keystore format).
pub fn is_encrypted(path: &Path) -> Result<bool> {
    check_private(path)?;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading key file {}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("key file {}", path.display()))?;
    Ok(v.get("cipher").is_some())
}

/// The consensus key: a plain key file, or an encrypted one unlocked with `passphrase`.
pub fn load_consensus_key(path: &Path, passphrase: Option<&str>) -> Result<Keypair> {
    if !is_encrypted(path)? {
        return Ok(Keypair::from_seed(read_seed(path)?));
    }
    let Some(passphrase) = passphrase else {
        bail!(
            "the consensus key {} is encrypted: give its passphrase with --key-passphrase-file",
            path.display()
        );
    };
    let (store, name) = keystore_of(path)?;
    Ok(store.unlock(&name, passphrase)?)
}

/// The consensus key's public key, without unlocking an encrypted one.
pub fn consensus_public_key(path: &Path) -> Result<acta_ledger::PublicKey> {
    if !is_encrypted(path)? {
        return Ok(Keypair::from_seed(read_seed(path)?).public());
    }
    let (store, name) = keystore_of(path)?;
    Ok(store.info(&name)?.public_key)
}

/// Encrypts the plain consensus key at `path` in place under `passphrase` (at least 12
/// characters): the encrypted file replaces the plain one in one rename.
pub fn encrypt_consensus_key(path: &Path, passphrase: &str) -> Result<acta_ledger::PublicKey> {
    if passphrase.chars().count() < 12 {
        bail!("the passphrase must have at least 12 characters");
    }
    if is_encrypted(path)? {
        bail!("{} is already encrypted", path.display());
    }
    let seed = zeroize::Zeroizing::new(read_seed(path)?);
    let (_, name) = keystore_of(path)?;
    let dir = path.with_extension("encrypting");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let info = acta_ledger::keystore::Keystore::new(&dir).add(&name, &seed, passphrase)?;
    let sealed = dir.join(format!("{name}.json"));
    std::fs::rename(&sealed, path)
        .with_context(|| format!("replacing {} with {}", path.display(), sealed.display()))?;
    std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent).and_then(|d| d.sync_all())?;
    }
    Ok(info.public_key)
}

/// Reads a passphrase from `file` (its first line). Others than its owner and group may
/// not read it: systemd hands a credential to a service as a group-readable file.
pub fn read_passphrase_file(file: &Path) -> Result<zeroize::Zeroizing<String>> {
    let mode = mode_of(file)?;
    if mode & 0o007 != 0 {
        bail!(
            "the passphrase file {} may be read by anyone (mode {:o}): refused; run chmod 600 {}",
            file.display(),
            mode & 0o777,
            file.display()
        );
    }
    // At most 4 KiB: a passphrase, not whatever file a flag names.
    let mut text = zeroize::Zeroizing::new(String::new());
    std::fs::File::open(file)
        .and_then(|f| std::io::Read::read_to_string(&mut std::io::Read::take(f, 4097), &mut text))
        .with_context(|| format!("reading the passphrase file {}", file.display()))?;
    if text.len() > 4096 {
        bail!(
            "the passphrase file {} is larger than 4 KiB",
            file.display()
        );
    }
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        bail!("the passphrase file {} is empty", file.display());
    }
    Ok(zeroize::Zeroizing::new(line.to_string()))
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
        assert_eq!(load_consensus_key(&path, None).unwrap().seed(), seed);
        load_node_key(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Never overwritten.
        assert!(generate(&path).is_err());
        std::fs::write(&path, "{\"kind\":\"ed25519\",\"seed\":\"00\"}").unwrap();
        let e = load_consensus_key(&path, None).unwrap_err().to_string();
        assert!(e.contains("field seed"), "{e}");
        // A key others may read is refused.
        std::fs::remove_file(&path).unwrap();
        generate(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_consensus_key(&path, None).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }

    #[test]
    fn a_consensus_key_encrypted_at_rest_needs_its_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consensus_key.json");
        let seed = generate(&path).unwrap();
        let public = Keypair::from_seed(seed).public();
        assert!(encrypt_consensus_key(&path, "short").is_err());
        assert_eq!(
            encrypt_consensus_key(&path, "correct horse battery").unwrap(),
            public
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains(&hex::encode(seed)),
            "the seed is still in the clear"
        );
        assert!(is_encrypted(&path).unwrap());
        assert_eq!(consensus_public_key(&path).unwrap(), public);
        let e = load_consensus_key(&path, None).unwrap_err().to_string();
        assert!(e.contains("--key-passphrase-file"), "{e}");
        assert!(load_consensus_key(&path, Some("wrong horse battery")).is_err());
        let key = load_consensus_key(&path, Some("correct horse battery")).unwrap();
        assert_eq!(key.seed(), seed);
        assert!(encrypt_consensus_key(&path, "correct horse battery").is_err());
        // A passphrase file anyone may read is refused; a group-readable one (a systemd
        // credential) is not.
        let file = dir.path().join("pass");
        std::fs::write(&file, "correct horse battery\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_passphrase_file(&file).is_err());
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            read_passphrase_file(&file).unwrap().as_str(),
            "correct horse battery"
        );
    }
}
