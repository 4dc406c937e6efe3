//! The wallet's keystore: one JSON file per key in a folder of its own (mode 0700, files
//! 0600). The 32-byte Ed25519 seed is encrypted with XChaCha20-Poly1305 under a key derived
//! from the passphrase with Argon2id (64 MiB, 3 passes), with a random salt and nonce per
//! file. The associated data binds the ciphertext to the file's name and public key, so a
//! file renamed or edited does not decrypt.
//!
//! Other secrets are kept the same way, each kind in a folder of its own
//! ([`SecretKind`]): a registrar's RSA key (`registrars/`), and the one-time ballot key and
//! blinding secret a resident keeps for a secret budget round (`ballots/`), which alone link
//! the resident to the ballot. Their public part is readable without the passphrase and
//! bound to the ciphertext with the kind and name.

use std::path::{Path, PathBuf};

use crate::{ChainId, Did, Hash, Keypair, PublicKey};
use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::{
    aead::{Aead, KeyInit, Payload},
    XChaCha20Poly1305, XNonce,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The keystore format's version.
const VERSION: u32 = 1;
/// Argon2id cost: memory in KiB, passes, lanes.
const MEMORY_KIB: u32 = 64 * 1024;
const PASSES: u32 = 3;
const LANES: u32 = 1;
/// The largest key file read.
const FILE_MAX: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    #[error("wrong passphrase for key {0:?} (or its file was altered)")]
    WrongPassphrase(String),
    #[error("no key named {0:?} in {1}")]
    NotFound(String, String),
    #[error("a key named {0:?} already exists in {1}")]
    Exists(String, String),
    #[error("key name {0:?}: use 1 to 64 characters of a-z A-Z 0-9 - _")]
    BadName(String),
    #[error("{0}: {1}")]
    BadFile(String, String),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

type Result<T> = std::result::Result<T, KeystoreError>;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    version: u32,
    name: String,
    public_key: String,
    did: String,
    kdf: Kdf,
    cipher: Cipher,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kdf {
    algorithm: String,
    memory_kib: u32,
    passes: u32,
    lanes: u32,
    salt: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cipher {
    algorithm: String,
    nonce: String,
    ciphertext: String,
}

/// What the keystore shows of a key without its passphrase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    pub name: String,
    pub public_key: PublicKey,
    pub did: Did,
}

#[derive(Debug)]
pub struct Keystore {
    dir: PathBuf,
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(KeystoreError::BadName(name.to_string()));
    }
    Ok(())
}

fn derive(passphrase: &str, salt: &[u8], kdf: &Kdf) -> Result<Zeroizing<[u8; 32]>> {
    let params = Params::new(kdf.memory_kib, kdf.passes, kdf.lanes, Some(32))
        .map_err(|e| KeystoreError::BadFile("kdf".into(), e.to_string()))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|e| KeystoreError::BadFile("kdf".into(), e.to_string()))?;
    Ok(key)
}

fn aad(name: &str, public_key: &PublicKey) -> Vec<u8> {
    let mut a = b"acta-keystore-v1".to_vec();
    a.extend_from_slice(name.as_bytes());
    a.extend_from_slice(&public_key.0);
    a
}

impl Keystore {
    pub fn new(dir: impl Into<PathBuf>) -> Keystore {
        Keystore { dir: dir.into() }
    }

    fn path(&self, name: &str) -> Result<PathBuf> {
        check_name(name)?;
        Ok(self.dir.join(format!("{name}.json")))
    }

    fn shown(&self) -> String {
        self.dir.display().to_string()
    }

    /// Encrypts `seed` under `passphrase` as key `name`; refuses to overwrite a key.
    pub fn add(&self, name: &str, seed: &[u8; 32], passphrase: &str) -> Result<KeyInfo> {
        let path = self.path(name)?;
        if path.exists() {
            return Err(KeystoreError::Exists(name.to_string(), self.shown()));
        }
        let keypair = Keypair::from_seed(*seed);
        let public_key = keypair.public();
        let (kdf, cipher) = seal(name, passphrase, seed, &aad(name, &public_key))?;
        let did = Did::from_initial_key(&public_key);
        let file = KeyFile {
            version: VERSION,
            name: name.to_string(),
            public_key: public_key.to_hex(),
            did: did.to_string(),
            kdf,
            cipher,
        };
        let text = serde_json::to_string_pretty(&file)
            .map_err(|e| KeystoreError::BadFile(name.into(), e.to_string()))?;
        self.write_private(&self.dir, &path, text.as_bytes(), false)
            .map_err(|e| match e {
                KeystoreError::Io(_, io) if io.kind() == std::io::ErrorKind::AlreadyExists => {
                    KeystoreError::Exists(name.to_string(), self.shown())
                }
                e => e,
            })?;
        Ok(KeyInfo {
            name: name.to_string(),
            public_key,
            did,
        })
    }

    /// Writes a file readable by its owner only, in a folder only the owner can open (made
    /// so if it is not), never in part: the bytes go to a temporary file of their own,
    /// synced, then take the file's name in one step (a link that fails if the name is taken,
    /// unless `replace`), and the folder is synced so that the name survives a power loss. A
    /// failure leaves no temporary file behind and an existing file untouched (if only the
    /// folder's sync fails, the new file is in place, whole, and the error says so).
    #[cfg(unix)]
    fn write_private(&self, dir: &Path, path: &Path, bytes: &[u8], replace: bool) -> Result<()> {
        use std::{
            io::Write,
            os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
        };
        let io = |e| KeystoreError::Io(path.display().to_string(), e);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
        let mode = std::fs::metadata(dir).map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        let mut unique = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut unique);
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{file_name}.{}.tmp", hex::encode(unique)));
        let written = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            if replace {
                return std::fs::rename(&tmp, path);
            }
            match std::fs::hard_link(&tmp, path) {
                // A file system without links (FAT on a USB stick): checked, then renamed.
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists && !path.exists() => {
                    std::fs::rename(&tmp, path)
                }
                linked => linked,
            }
        })();
        // After a link, the temporary name goes; after a rename, it is gone already.
        let _ = std::fs::remove_file(&tmp);
        written.map_err(io)?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)
    }

    /// Keys are written only where the owner-only modes exist (the browser's verifier reads
    /// keystore files it is handed, and writes none).
    #[cfg(not(unix))]
    fn write_private(&self, _dir: &Path, path: &Path, _bytes: &[u8], _replace: bool) -> Result<()> {
        Err(KeystoreError::Io(
            path.display().to_string(),
            std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "keystore files are written on Unix only",
            ),
        ))
    }

    fn read(&self, name: &str) -> Result<KeyFile> {
        let path = self.path(name)?;
        let shown = path.display().to_string();
        let file: KeyFile = read_json(&path, name, &self.shown())?;
        if file.version != VERSION || file.name != name {
            return Err(KeystoreError::BadFile(
                shown,
                format!(
                    "version {} key {:?} is not a version {VERSION} file of {name:?}",
                    file.version, file.name
                ),
            ));
        }
        check_algorithms(&shown, &file.kdf, &file.cipher)?;
        Ok(file)
    }

    fn info_of(file: &KeyFile) -> Result<KeyInfo> {
        let bad = |e: String| KeystoreError::BadFile(file.name.clone(), e);
        let public_key = PublicKey::from_hex(&file.public_key).map_err(|e| bad(e.to_string()))?;
        Ok(KeyInfo {
            name: file.name.clone(),
            public_key,
            did: Did::from_initial_key(&public_key),
        })
    }

    pub fn info(&self, name: &str) -> Result<KeyInfo> {
        Self::info_of(&self.read(name)?)
    }

    /// Every key, by name.
    pub fn list(&self) -> Result<Vec<KeyInfo>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(KeystoreError::Io(self.shown(), e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| KeystoreError::Io(self.shown(), e))?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if check_name(name).is_ok() {
                out.push(self.info(name)?);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Decrypts key `name`.
    pub fn unlock(&self, name: &str, passphrase: &str) -> Result<Keypair> {
        Self::unlock_file(&self.read(name)?, passphrase)
    }

    /// Decrypts a key file handed over as text (the web page's wallet: the resident picks
    /// the file, which is read nowhere else): the key's name and pair.
    pub fn unlock_text(text: &str, passphrase: &str) -> Result<(String, Keypair)> {
        let bad = |e: String| KeystoreError::BadFile("the key file".into(), e);
        if text.len() as u64 > FILE_MAX {
            return Err(bad("too large for a key file".into()));
        }
        let file: KeyFile = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if file.version != VERSION {
            return Err(bad(format!(
                "version {} is not a version {VERSION} key file",
                file.version
            )));
        }
        check_name(&file.name)?;
        check_algorithms("the key file", &file.kdf, &file.cipher)?;
        Ok((file.name.clone(), Self::unlock_file(&file, passphrase)?))
    }

    fn unlock_file(file: &KeyFile, passphrase: &str) -> Result<Keypair> {
        let name = file.name.as_str();
        let info = Self::info_of(file)?;
        let bad = |e: String| KeystoreError::BadFile(name.to_string(), e);
        let seed = open(
            name,
            passphrase,
            &file.kdf,
            &file.cipher,
            &aad(name, &info.public_key),
        )?;
        let seed: [u8; 32] = seed
            .as_slice()
            .try_into()
            .map_err(|_| bad("the seed is not 32 bytes".into()))?;
        let keypair = Keypair::from_seed(seed);
        if keypair.public() != info.public_key {
            return Err(bad("the seed does not match the public key".into()));
        }
        Ok(keypair)
    }

    /// Deletes key `name`; a damaged key file too (it opens no more, and would otherwise
    /// stop `list` for good).
    pub fn delete(&self, name: &str) -> Result<()> {
        match self.read(name) {
            Ok(_) | Err(KeystoreError::BadFile(..)) => {}
            Err(e) => return Err(e),
        }
        let path = self.path(name)?;
        std::fs::remove_file(&path).map_err(|e| KeystoreError::Io(path.display().to_string(), e))
    }

    fn secret_path(&self, kind: SecretKind, name: &str) -> Result<(PathBuf, PathBuf)> {
        check_name(name)?;
        let dir = self.dir.join(kind.folder());
        let path = dir.join(format!("{name}.json"));
        Ok((dir, path))
    }

    /// Encrypts `secret` under `passphrase` as the `kind` secret `name`, with `public` (what
    /// may be read without the passphrase) bound to it; `replace` allows overwriting one.
    pub fn add_secret(
        &self,
        kind: SecretKind,
        name: &str,
        public: &[u8],
        secret: &[u8],
        passphrase: &str,
        replace: bool,
    ) -> Result<()> {
        let (dir, path) = self.secret_path(kind, name)?;
        let exists = || KeystoreError::Exists(name.to_string(), dir.display().to_string());
        if path.exists() && !replace {
            return Err(exists());
        }
        let text = Self::seal_secret_text(kind, name, public, secret, passphrase)?;
        self.write_private(&dir, &path, text.as_bytes(), replace)
            .map_err(|e| match e {
                KeystoreError::Io(_, io) if io.kind() == std::io::ErrorKind::AlreadyExists => {
                    exists()
                }
                e => e,
            })
    }

    /// The text of the file [`Keystore::add_secret`] writes, without writing it (the web
    /// page's wallet hands it to the resident to save).
    pub fn seal_secret_text(
        kind: SecretKind,
        name: &str,
        public: &[u8],
        secret: &[u8],
        passphrase: &str,
    ) -> Result<String> {
        check_name(name)?;
        let (kdf, cipher) = seal(name, passphrase, secret, &secret_aad(kind, name, public))?;
        let file = SecretFile {
            version: VERSION,
            kind: kind.folder().to_string(),
            name: name.to_string(),
            public: hex::encode(public),
            kdf,
            cipher,
        };
        serde_json::to_string_pretty(&file)
            .map_err(|e| KeystoreError::BadFile(name.into(), e.to_string()))
    }

    fn read_secret(&self, kind: SecretKind, name: &str) -> Result<(SecretFile, Vec<u8>)> {
        let (dir, path) = self.secret_path(kind, name)?;
        let file: SecretFile = read_json(&path, name, &dir.display().to_string())?;
        let public = check_secret_file(&path.display().to_string(), kind, Some(name), &file)?;
        Ok((file, public))
    }

    /// Decrypts a `kind` secret file handed over as text (the web page's wallet): its name,
    /// its public part and its secret bytes.
    pub fn unlock_secret_text(
        kind: SecretKind,
        text: &str,
        passphrase: &str,
    ) -> Result<(String, Vec<u8>, Zeroizing<Vec<u8>>)> {
        let shown = format!("the {} file", kind.folder());
        if text.len() as u64 > FILE_MAX {
            return Err(KeystoreError::BadFile(
                shown,
                "too large for a key file".into(),
            ));
        }
        let file: SecretFile = serde_json::from_str(text)
            .map_err(|e| KeystoreError::BadFile(shown.clone(), e.to_string()))?;
        let public = check_secret_file(&shown, kind, None, &file)?;
        let secret = open(
            &file.name,
            passphrase,
            &file.kdf,
            &file.cipher,
            &secret_aad(kind, &file.name, &public),
        )?;
        Ok((file.name, public, secret))
    }

    /// The public part of secret `name`, without its passphrase.
    pub fn secret_public(&self, kind: SecretKind, name: &str) -> Result<Vec<u8>> {
        Ok(self.read_secret(kind, name)?.1)
    }

    /// Whether a `kind` secret `name` exists.
    pub fn has_secret(&self, kind: SecretKind, name: &str) -> Result<bool> {
        Ok(self.secret_path(kind, name)?.1.exists())
    }

    /// Deletes secret `name`.
    pub fn delete_secret(&self, kind: SecretKind, name: &str) -> Result<()> {
        let (_, path) = self.secret_path(kind, name)?;
        std::fs::remove_file(&path).map_err(|e| KeystoreError::Io(path.display().to_string(), e))
    }

    /// Decrypts secret `name`: its public part and its secret bytes.
    pub fn unlock_secret(
        &self,
        kind: SecretKind,
        name: &str,
        passphrase: &str,
    ) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
        let (file, public) = self.read_secret(kind, name)?;
        let secret = open(
            name,
            passphrase,
            &file.kdf,
            &file.cipher,
            &secret_aad(kind, name, &public),
        )?;
        Ok((public, secret))
    }
}

/// What a resident keeps for a secret budget round, sealed as a [`SecretKind::Ballot`]
/// secret named [`ballot_name`]: the CLI's wallet and the web page's write the same file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BallotSecret {
    pub chain: ChainId,
    pub round: u64,
    /// The resident whose request it answers.
    pub resident: Did,
    /// The one-time ballot key's seed, hex.
    pub seed: String,
    /// The blinded token message sent, hex.
    pub blinded: String,
    /// The blinding secret, hex.
    pub secret: String,
    /// The unblinded token, hex, once read (`token fetch` or the first vote).
    #[serde(default)]
    pub token: Option<String>,
}

impl BallotSecret {
    /// A fresh one-time ballot key for `round` of `chain`, with its token message blinded
    /// for the round's registrar key: what a resident keeps when asking for a token.
    pub fn new(
        registrar: &crate::token::RegistrarKey,
        chain: ChainId,
        round: u64,
        resident: Did,
    ) -> crate::Result<BallotSecret> {
        let ballot = Keypair::generate();
        let blinded = crate::token::blind(registrar, &chain, round, &ballot.public())?;
        Ok(BallotSecret {
            chain,
            round,
            resident,
            seed: hex::encode(ballot.seed()),
            blinded: hex::encode(&blinded.message),
            secret: hex::encode(&blinded.secret),
            token: None,
        })
    }

    /// Whether the token request the ledger recorded (its blinded message) is the one this
    /// secret made.
    pub fn made(&self, recorded: &[u8]) -> bool {
        hex::encode(recorded) == self.blinded
    }

    /// The token from the registrar's answer to the request the ledger recorded
    /// (`recorded`, its blinded message, and `blind_signature`), unblinded, checked and
    /// kept; refused if the ledger's request is not the one this secret made.
    pub fn unblind(
        &mut self,
        registrar: &crate::token::RegistrarKey,
        recorded: &[u8],
        blind_signature: &[u8],
    ) -> std::result::Result<Vec<u8>, String> {
        if !self.made(recorded) {
            return Err(format!(
                "the ledger's token request of {} in round {} is not the one this ballot secret kept",
                self.resident, self.round
            ));
        }
        let ballot = self
            .ballot_key()
            .ok_or("the ballot secret holds no ballot key")?;
        let blinded = crate::token::Blinded {
            message: recorded.to_vec(),
            secret: hex::decode(&self.secret).map_err(|e| format!("the ballot secret: {e}"))?,
        };
        let token = crate::token::finalize(
            registrar,
            &blinded,
            blind_signature,
            &self.chain,
            self.round,
            &ballot.public(),
        )
        .map_err(|e| format!("the registrar's answer does not give a token: {e}"))?;
        self.token = Some(hex::encode(&token));
        Ok(token)
    }

    /// The one-time ballot key, if the seed kept is one.
    pub fn ballot_key(&self) -> Option<Keypair> {
        let seed = Zeroizing::new(hex::decode(&self.seed).ok()?);
        let seed: [u8; 32] = seed.as_slice().try_into().ok()?;
        Some(Keypair::from_seed(seed))
    }
}

/// Shows the round and resident, never the ballot key or the blinding.
impl std::fmt::Debug for BallotSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BallotSecret")
            .field("chain", &self.chain)
            .field("round", &self.round)
            .field("resident", &self.resident)
            .finish_non_exhaustive()
    }
}

impl Drop for BallotSecret {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.seed.zeroize();
        self.secret.zeroize();
    }
}

/// The keystore name of a resident's ballot secret for `round` of `chain`: one per chain,
/// round and resident, named by a hash. The name never shows the ballot key; it does not
/// spell out the resident either, but chain, round and DID are public (the round's token
/// requests list every requester), so whoever checks a file's name against that list
/// learns whose it is. What links the resident to a ballot stays sealed inside.
pub fn ballot_name(chain: &ChainId, round: u64, resident: &Did) -> String {
    let h = Hash::digest_parts(&[
        b"acta-ballot-secret",
        chain.as_str().as_bytes(),
        &round.to_be_bytes(),
        &resident.0,
    ]);
    format!("r{round}-{}", &h.to_hex()[..32])
}

/// Secrets other than Ed25519 keys, each kind in a folder of the keystore's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKind {
    /// A registrar's RSA key (PKCS#8 DER), with its public key (DER SPKI) readable.
    Registrar,
    /// A resident's one-time ballot key and blinding secret for one secret round, with the
    /// ballot key readable.
    Ballot,
}

impl SecretKind {
    fn folder(self) -> &'static str {
        match self {
            SecretKind::Registrar => "registrars",
            SecretKind::Ballot => "ballots",
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretFile {
    version: u32,
    kind: String,
    name: String,
    /// Hex.
    public: String,
    kdf: Kdf,
    cipher: Cipher,
}

fn secret_aad(kind: SecretKind, name: &str, public: &[u8]) -> Vec<u8> {
    let mut a = b"acta-keystore-secret-v1".to_vec();
    for part in [kind.folder().as_bytes(), name.as_bytes(), public] {
        a.extend_from_slice(&(part.len() as u64).to_be_bytes());
        a.extend_from_slice(part);
    }
    a
}

/// Checks a secret file's version, kind, name (`name`, when one is expected) and
/// algorithms; its public part.
fn check_secret_file(
    shown: &str,
    kind: SecretKind,
    name: Option<&str>,
    file: &SecretFile,
) -> Result<Vec<u8>> {
    let named = name.is_none_or(|n| n == file.name);
    if file.version != VERSION || !named || file.kind != kind.folder() {
        return Err(KeystoreError::BadFile(
            shown.to_string(),
            format!(
                "it is not a version {VERSION} {} file{}",
                kind.folder(),
                name.map(|n| format!(" of {n:?}")).unwrap_or_default()
            ),
        ));
    }
    check_name(&file.name)?;
    check_algorithms(shown, &file.kdf, &file.cipher)?;
    hex::decode(&file.public).map_err(|e| KeystoreError::BadFile(shown.to_string(), e.to_string()))
}

/// The least a new passphrase has: the keystore's Argon2id slows each guess, but a short
/// or one-letter passphrase falls to a list of common ones.
pub const PASSPHRASE_CHARS_MIN: usize = 12;

/// Refuses a passphrase too weak to protect a new key or secret, saying what would do.
pub fn check_new_passphrase(p: &str) -> std::result::Result<(), String> {
    let chars: Vec<char> = p.chars().collect();
    if chars.len() < PASSPHRASE_CHARS_MIN {
        return Err(format!(
            "a passphrase needs at least {PASSPHRASE_CHARS_MIN} characters to protect a key (this one has {}); a few unrelated words work well",
            chars.len()
        ));
    }
    if chars.iter().all(|c| *c == chars[0]) {
        return Err(
            "a passphrase of one repeated character does not protect a key; a few unrelated words work well"
                .into(),
        );
    }
    Ok(())
}

/// A keystore file as JSON, at most [`FILE_MAX`] bytes.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path, name: &str, dir: &str) -> Result<T> {
    let shown = path.display().to_string();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(KeystoreError::NotFound(name.to_string(), dir.to_string()))
        }
        Err(e) => return Err(KeystoreError::Io(shown, e)),
    };
    if meta.len() > FILE_MAX {
        return Err(KeystoreError::BadFile(
            shown,
            "too large for a key file".into(),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| KeystoreError::Io(shown.clone(), e))?;
    serde_json::from_str(&text).map_err(|e| KeystoreError::BadFile(shown, e.to_string()))
}

/// The most memory and passes a key file may ask of the key derivation: four times what
/// this wallet writes. A file handed over (a foreign or edited one) must not make opening
/// it take gigabytes or minutes.
const MEMORY_KIB_MAX: u32 = 4 * MEMORY_KIB;
const PASSES_MAX: u32 = 4 * PASSES;
const LANES_MAX: u32 = 8;

fn check_algorithms(shown: &str, kdf: &Kdf, cipher: &Cipher) -> Result<()> {
    if kdf.algorithm != "argon2id" || cipher.algorithm != "xchacha20poly1305" {
        return Err(KeystoreError::BadFile(
            shown.to_string(),
            "unknown algorithms".into(),
        ));
    }
    if kdf.memory_kib > MEMORY_KIB_MAX || kdf.passes > PASSES_MAX || kdf.lanes > LANES_MAX {
        return Err(KeystoreError::BadFile(
            shown.to_string(),
            format!(
                "its key derivation asks for {} KiB, {} passes and {} lanes; at most {MEMORY_KIB_MAX} KiB, {PASSES_MAX} passes and {LANES_MAX} lanes are spent on opening a key",
                kdf.memory_kib, kdf.passes, kdf.lanes
            ),
        ));
    }
    Ok(())
}

/// Encrypts `msg` under a key derived from `passphrase` with a fresh salt and nonce.
fn seal(name: &str, passphrase: &str, msg: &[u8], aad: &[u8]) -> Result<(Kdf, Cipher)> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut salt);
    rand::thread_rng().fill_bytes(&mut nonce);
    let kdf = Kdf {
        algorithm: "argon2id".into(),
        memory_kib: MEMORY_KIB,
        passes: PASSES,
        lanes: LANES,
        salt: hex::encode(salt),
    };
    let key = derive(passphrase, &salt, &kdf)?;
    let ciphertext = XChaCha20Poly1305::new(key.as_ref().into())
        .encrypt(XNonce::from_slice(&nonce), Payload { msg, aad })
        .map_err(|_| KeystoreError::BadFile(name.into(), "encryption failed".into()))?;
    Ok((
        kdf,
        Cipher {
            algorithm: "xchacha20poly1305".into(),
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(ciphertext),
        },
    ))
}

/// Decrypts what [`seal`] wrote; a wrong passphrase or an edited file fails the same way.
fn open(
    name: &str,
    passphrase: &str,
    kdf: &Kdf,
    cipher: &Cipher,
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let bad = |e: String| KeystoreError::BadFile(name.to_string(), e);
    let salt = hex::decode(&kdf.salt).map_err(|e| bad(e.to_string()))?;
    let nonce = hex::decode(&cipher.nonce).map_err(|e| bad(e.to_string()))?;
    let ciphertext = hex::decode(&cipher.ciphertext).map_err(|e| bad(e.to_string()))?;
    if nonce.len() != 24 || salt.len() < 8 {
        return Err(bad("bad salt or nonce length".into()));
    }
    if kdf.memory_kib > 4 * 1024 * 1024 || kdf.passes > 64 || kdf.lanes > 64 {
        return Err(bad(
            "key derivation costs beyond what this wallet runs".into()
        ));
    }
    let key = derive(passphrase, &salt, kdf)?;
    let plain = XChaCha20Poly1305::new(key.as_ref().into())
        .decrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &ciphertext,
                aad,
            },
        )
        .map_err(|_| KeystoreError::WrongPassphrase(name.to_string()))?;
    Ok(Zeroizing::new(plain))
}

/// A 32-byte seed as 24 BIP-39 words (English): the seed is the mnemonic's entropy
/// (`acta keys export`).
pub fn recovery_words(seed: &[u8; 32]) -> Zeroizing<String> {
    let words = bip39::Mnemonic::from_entropy(seed).expect("32 bytes are valid entropy");
    Zeroizing::new(words.to_string())
}

/// A seed from 24 BIP-39 words (any spacing and case) or 64 hex digits: `acta keys import`
/// and the web page's wallet read recovery words with it.
pub fn seed_from_text(text: &str) -> std::result::Result<[u8; 32], String> {
    let trimmed = text.trim();
    let words: Vec<&str> = trimmed.split_whitespace().collect();
    if words.len() > 1 {
        let normalized = Zeroizing::new(words.join(" ").to_lowercase());
        if words.len() != 24 {
            return Err(format!(
                "{} words: the recovery words of an Acta key are 24",
                words.len()
            ));
        }
        let mnemonic = bip39::Mnemonic::parse_in_normalized(bip39::Language::English, &normalized)
            .map_err(|e| match e {
                bip39::Error::UnknownWord(i) => format!(
                    "word {} ({:?}) is not a BIP-39 English word: check its spelling",
                    i + 1,
                    words.get(i).copied().unwrap_or("")
                ),
                bip39::Error::InvalidChecksum => {
                    "the words do not check out (BIP-39 checksum): a word is wrong or out of order"
                        .to_string()
                }
                other => format!("not recovery words: {other}"),
            })?;
        let entropy = Zeroizing::new(mnemonic.to_entropy());
        return entropy
            .as_slice()
            .try_into()
            .map_err(|_| format!("the words hold {} bytes, not 32", entropy.len()));
    }
    let bytes = Zeroizing::new(
        hex::decode(trimmed)
            .map_err(|e| format!("neither 24 recovery words nor a hex seed (not hex: {e})"))?,
    );
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| format!("the seed is {} bytes, not 32", bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_written_whole_never_over_another_and_a_damaged_one_can_go() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        // A folder others may read is closed on the first write.
        std::fs::create_dir(&keys).unwrap();
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o755)).unwrap();
        let ks = Keystore::new(&keys);
        ks.add("alice", &[7u8; 32], "correct horse").unwrap();
        let mode = std::fs::metadata(&keys).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        // Another key under a taken name leaves the first as it was, and no file behind.
        let before = std::fs::read(keys.join("alice.json")).unwrap();
        assert!(matches!(
            ks.add("alice", &[8u8; 32], "correct horse"),
            Err(KeystoreError::Exists(..))
        ));
        assert_eq!(std::fs::read(keys.join("alice.json")).unwrap(), before);
        // The link itself never replaces a file (one written meanwhile under the name).
        let err = ks
            .write_private(&keys, &keys.join("alice.json"), b"other", false)
            .unwrap_err();
        assert!(
            matches!(&err, KeystoreError::Io(_, e) if e.kind() == std::io::ErrorKind::AlreadyExists),
            "{err}"
        );
        assert_eq!(std::fs::read(keys.join("alice.json")).unwrap(), before);
        let names: Vec<String> = std::fs::read_dir(&keys)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["alice.json".to_string()]);
        // A damaged file stops the list, and can be deleted.
        std::fs::write(keys.join("bob.json"), b"{ not a key").unwrap();
        assert!(matches!(ks.list(), Err(KeystoreError::BadFile(..))));
        ks.delete("bob").unwrap();
        assert_eq!(ks.list().unwrap().len(), 1);
        // A missing one is an error still.
        assert!(ks.delete("carol").is_err());
        // A file whose key derivation would take gigabytes is refused before it runs.
        let text = std::fs::read_to_string(keys.join("alice.json")).unwrap();
        let greedy = text.replace(
            &format!("\"memory_kib\": {MEMORY_KIB}"),
            "\"memory_kib\": 4194304",
        );
        assert_ne!(greedy, text);
        let err = Keystore::unlock_text(&greedy, "correct horse").unwrap_err();
        assert!(err.to_string().contains("at most"), "{err}");
    }

    #[test]
    fn keys_round_trip_and_refuse_wrong_passphrases_and_edits() {
        let dir = tempfile::tempdir().unwrap();
        let ks = Keystore::new(dir.path().join("keys"));
        let seed = [7u8; 32];
        let info = ks.add("alice", &seed, "correct horse").unwrap();
        assert_eq!(info.public_key, Keypair::from_seed(seed).public());
        assert!(matches!(
            ks.add("alice", &seed, "x"),
            Err(KeystoreError::Exists(..))
        ));
        let k = ks.unlock("alice", "correct horse").unwrap();
        assert_eq!(k.public(), info.public_key);
        // The same file handed over as text (the web page's wallet).
        let text = std::fs::read_to_string(dir.path().join("keys/alice.json")).unwrap();
        let (name, k) = Keystore::unlock_text(&text, "correct horse").unwrap();
        assert_eq!((name.as_str(), k.public()), ("alice", info.public_key));
        assert!(Keystore::unlock_text(&text, "wrong").is_err());
        assert!(Keystore::unlock_text(&text.replace("alice", "bob"), "correct horse").is_err());
        assert!(Keystore::unlock_text("{}", "correct horse").is_err());
        assert!(matches!(
            ks.unlock("alice", "wrong"),
            Err(KeystoreError::WrongPassphrase(_))
        ));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("keys/alice.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = std::fs::metadata(dir.path().join("keys"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        // A file copied under another name does not decrypt.
        std::fs::copy(
            dir.path().join("keys/alice.json"),
            dir.path().join("keys/bob.json"),
        )
        .unwrap();
        assert!(matches!(
            ks.unlock("bob", "correct horse"),
            Err(KeystoreError::BadFile(..))
        ));
        std::fs::remove_file(dir.path().join("keys/bob.json")).unwrap();
        // An edited ciphertext does not decrypt.
        let path = dir.path().join("keys/alice.json");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut ct = hex::decode(v["cipher"]["ciphertext"].as_str().unwrap()).unwrap();
        ct[0] ^= 1;
        v["cipher"]["ciphertext"] = serde_json::json!(hex::encode(ct));
        std::fs::write(&path, v.to_string()).unwrap();
        assert!(matches!(
            ks.unlock("alice", "correct horse"),
            Err(KeystoreError::WrongPassphrase(_))
        ));
        assert_eq!(ks.list().unwrap().len(), 1);
        ks.delete("alice").unwrap();
        assert!(ks.list().unwrap().is_empty());
        assert!(matches!(ks.info("alice"), Err(KeystoreError::NotFound(..))));
        assert!(matches!(
            ks.add("../x", &seed, "p"),
            Err(KeystoreError::BadName(_))
        ));
    }

    #[test]
    fn secrets_round_trip_and_are_bound_to_their_kind_name_and_public_part() {
        let dir = tempfile::tempdir().unwrap();
        let ks = Keystore::new(dir.path().join("keys"));
        ks.add_secret(
            SecretKind::Ballot,
            "alice-r0",
            b"pub",
            b"secret",
            "pw",
            false,
        )
        .unwrap();
        assert!(matches!(
            ks.add_secret(SecretKind::Ballot, "alice-r0", b"pub", b"x", "pw", false),
            Err(KeystoreError::Exists(..))
        ));
        assert_eq!(
            ks.secret_public(SecretKind::Ballot, "alice-r0").unwrap(),
            b"pub"
        );
        let (public, secret) = ks
            .unlock_secret(SecretKind::Ballot, "alice-r0", "pw")
            .unwrap();
        assert_eq!(
            (public.as_slice(), secret.as_slice()),
            (&b"pub"[..], &b"secret"[..])
        );
        assert!(matches!(
            ks.unlock_secret(SecretKind::Ballot, "alice-r0", "wrong"),
            Err(KeystoreError::WrongPassphrase(_))
        ));
        // Another kind's folder does not hold it; secrets are not keys.
        assert!(matches!(
            ks.secret_public(SecretKind::Registrar, "alice-r0"),
            Err(KeystoreError::NotFound(..))
        ));
        assert!(ks.list().unwrap().is_empty());
        // Its public part edited, it no longer decrypts.
        let path = dir.path().join("keys/ballots/alice-r0.json");
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        v["public"] = serde_json::json!(hex::encode(b"pub2"));
        std::fs::write(&path, v.to_string()).unwrap();
        assert!(matches!(
            ks.unlock_secret(SecretKind::Ballot, "alice-r0", "pw"),
            Err(KeystoreError::WrongPassphrase(_))
        ));
        // Replacing is allowed only when asked for.
        ks.add_secret(SecretKind::Ballot, "alice-r0", b"p", b"s2", "pw", true)
            .unwrap();
        let (_, secret) = ks
            .unlock_secret(SecretKind::Ballot, "alice-r0", "pw")
            .unwrap();
        assert_eq!(secret.as_slice(), b"s2");
    }

    mod fuzz {
        //! Key files are outside bytes: any change to one is refused with an error, or
        //! still names the same key; never a panic.

        use proptest::prelude::*;

        use super::*;

        /// Alice's key file, made once (Argon2id takes a while) and copied into each case.
        fn alice_file() -> &'static (Vec<u8>, KeyInfo) {
            static FILE: std::sync::OnceLock<(Vec<u8>, KeyInfo)> = std::sync::OnceLock::new();
            FILE.get_or_init(|| {
                let dir = tempfile::tempdir().unwrap();
                let ks = Keystore::new(dir.path().join("keys"));
                let info = ks.add("alice", &[7; 32], "correct horse").unwrap();
                (
                    std::fs::read(dir.path().join("keys/alice.json")).unwrap(),
                    info,
                )
            })
        }

        /// A keystore holding `bytes` as Alice's key file.
        fn keystore_with(bytes: &[u8]) -> (tempfile::TempDir, Keystore) {
            let dir = tempfile::tempdir().unwrap();
            let ks = Keystore::new(dir.path().join("keys"));
            std::fs::create_dir_all(dir.path().join("keys")).unwrap();
            std::fs::write(dir.path().join("keys/alice.json"), bytes).unwrap();
            (dir, ks)
        }

        fn changed(text: &[u8], at: usize, byte: u8, cut: bool) -> Vec<u8> {
            let mut out = text.to_vec();
            let at = at % out.len();
            if cut {
                out.truncate(at);
            } else {
                out[at] = byte;
            }
            out
        }

        proptest! {
            #[test]
            fn changed_key_files_are_refused_or_name_the_same_key(
                at in any::<usize>(),
                byte in any::<u8>(),
                cut in any::<bool>(),
            ) {
                let (text, original) = alice_file();
                let (_dir, ks) = keystore_with(&changed(text, at, byte, cut));
                if let Ok(info) = ks.info("alice") {
                    prop_assert_eq!(&info.name, &original.name);
                }
                let _ = ks.list();
            }

            #[test]
            fn random_key_files_are_refused(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
                let (_dir, ks) = keystore_with(&bytes);
                prop_assert!(ks.info("alice").is_err());
                prop_assert!(ks.unlock("alice", "any").is_err());
            }
        }

        proptest! {
            // Each case derives a key with Argon2id (64 MiB): few cases.
            #![proptest_config(ProptestConfig::with_cases(12))]

            #[test]
            fn changed_key_files_never_unlock_to_another_key(
                at in any::<usize>(),
                byte in any::<u8>(),
            ) {
                let (text, original) = alice_file();
                let (_dir, ks) = keystore_with(&changed(text, at, byte, false));
                if let Ok(key) = ks.unlock("alice", "correct horse") {
                    prop_assert_eq!(key.public(), original.public_key);
                }
            }
        }
    }

    #[test]
    fn recovery_words_follow_bip39() {
        // Test vectors of BIP-39 (trezor/python-mnemonic vectors.json, 256-bit entropy).
        let zero = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art";
        assert_eq!(recovery_words(&[0; 32]).as_str(), zero);
        let sevens = "legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth title";
        assert_eq!(recovery_words(&[0x7f; 32]).as_str(), sevens);
        assert_eq!(
            seed_from_text(&format!("  {}\n", sevens.to_uppercase())).unwrap(),
            [0x7f; 32]
        );
        assert_eq!(seed_from_text(&hex::encode([9u8; 32])).unwrap(), [9; 32]);
        let swapped = sevens.replacen("legal winner", "winner legal", 1);
        assert!(seed_from_text(&swapped).unwrap_err().contains("checksum"));
        let typo = zero.replacen("abandon", "abandom", 1);
        assert!(seed_from_text(&typo).unwrap_err().contains("word 1"));
        assert!(seed_from_text("abandon art").unwrap_err().contains("24"));
    }
}
