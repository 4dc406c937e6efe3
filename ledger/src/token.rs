//! Ballot tokens of secret budget rounds: RFC 9474 blind RSA signatures, variant
//! RSABSSA-SHA384-PSS-Deterministic (`blind-rsa-signatures`), and the ledger's checks.
//!
//! A secret round names a registrar and its RSA public key ([`RegistrarKey`]: 2,048 to
//! 4,096 bits, as canonical DER SubjectPublicKeyInfo). An eligible resident:
//! 1. makes a fresh Ed25519 key, the *ballot key*, and blinds the token message for it
//!    ([`token_message`]: the round and the ballot key, under the tag
//!    `acta/ballot-token/v1` and the chain id) with a random factor it keeps ([`blind`]);
//! 2. asks the ledger for a token with the blinded message, signed by its DID: the ledger
//!    checks its credential and district and that the DID asks once a round
//!    ([`check_blinded`]);
//! 3. the registrar signs the blinded message and puts the blind signature on the ledger,
//!    which checks it ([`check_blind_signature`]: a registrar cannot hand out a dud);
//! 4. the resident removes the blinding offline ([`finalize`]): the token, an RSA-PSS
//!    signature over the token message that nobody, the registrar included, can link to the
//!    blinded message it asked for;
//! 5. the resident votes from the ballot key with the token ([`verify_token`]). A token
//!    verifies for one round and one ballot key only, so one request gives one ballot
//!    (which the ballot key may replace), and ballots never outnumber tokens issued.
//!
//! The message is high-entropy (it holds a fresh key), so the deterministic variant (no
//! message randomizer) is enough (RFC 9474, section 7.4). Verification uses only public
//! values and is deterministic: every node reaches the same verdict.

use blind_rsa_signatures::{
    BlindSignature, BlindingResult, DefaultRng, Deterministic, KeyPair, Secret, Sha384, Signature,
    PSS,
};
use num_bigint::BigUint;

use crate::{
    crypto::{signing_bytes, Domain},
    ChainId, Error, Hash, PublicKey, Result,
};

/// The most bytes of a registrar key's encoding (RSA-4096 takes 550).
pub const REGISTRAR_KEY_BYTES_MAX: usize = 600;
/// The most bytes of an RSA value: a blinded message, a blind signature or a token.
pub const RSA_VALUE_BYTES_MAX: usize = 512;

type Key = blind_rsa_signatures::PublicKey<Sha384, PSS, Deterministic>;
type SecretKey = blind_rsa_signatures::SecretKey<Sha384, PSS, Deterministic>;

fn invalid(what: &'static str, reason: impl std::fmt::Display) -> Error {
    Error::invalid(what, reason.to_string())
}

/// What a ballot token signs: `borsh(("acta/ballot-token/v1", chain_id, (round,
/// ballot_key)))`.
pub fn token_message(chain: &ChainId, round: u64, ballot_key: &PublicKey) -> Vec<u8> {
    signing_bytes(Domain::BallotToken, chain, &(round, ballot_key))
}

/// A registrar's RSA public key, checked.
#[derive(Clone, Debug)]
pub struct RegistrarKey {
    key: Key,
    n: BigUint,
    e: BigUint,
    bytes: usize,
}

impl RegistrarKey {
    /// Parses a key from its canonical DER SubjectPublicKeyInfo (rsaEncryption): 2,048 to
    /// 4,096 bits, exponent 3 or 65,537. Any other encoding of the same key is refused, so
    /// that a round's spec has one encoding.
    pub fn from_der(der: &[u8]) -> Result<RegistrarKey> {
        if der.len() > REGISTRAR_KEY_BYTES_MAX {
            return Err(invalid(
                "registrar key",
                format!("{} bytes, more than {REGISTRAR_KEY_BYTES_MAX}", der.len()),
            ));
        }
        let key = Key::from_der(der).map_err(|e| invalid("registrar key", e))?;
        let canonical = key.to_der().map_err(|e| invalid("registrar key", e))?;
        if canonical != der {
            return Err(invalid(
                "registrar key",
                "not the canonical DER SubjectPublicKeyInfo of an RSA key",
            ));
        }
        let parts = key.components();
        let n = BigUint::from_bytes_be(&parts.n());
        let e = BigUint::from_bytes_be(&parts.e());
        let bytes = usize::try_from(n.bits().div_ceil(8)).unwrap_or(usize::MAX);
        Ok(RegistrarKey { key, n, e, bytes })
    }

    /// The key's modulus length in bytes: the length of every RSA value under it.
    pub fn value_bytes(&self) -> usize {
        self.bytes
    }

    /// An RSA value of this key: exactly the modulus length, below the modulus.
    fn value(&self, what: &'static str, bytes: &[u8]) -> Result<BigUint> {
        if bytes.len() != self.bytes {
            return Err(invalid(
                what,
                format!(
                    "{} bytes, the key's values have {}",
                    bytes.len(),
                    self.bytes
                ),
            ));
        }
        let v = BigUint::from_bytes_be(bytes);
        if v >= self.n {
            return Err(invalid(what, "not below the key's modulus"));
        }
        Ok(v)
    }
}

/// Checks a blinded message a resident asks the registrar to sign: a value of the key.
pub fn check_blinded(key: &RegistrarKey, blinded: &[u8]) -> Result<()> {
    key.value("blinded token message", blinded).map(|_| ())
}

/// Checks the registrar's blind signature of `blinded`: `s^e mod n = m`, so that the
/// resident's token will verify once unblinded.
pub fn check_blind_signature(key: &RegistrarKey, blinded: &[u8], blind_sig: &[u8]) -> Result<()> {
    let m = key.value("blinded token message", blinded)?;
    let s = key.value("blind signature", blind_sig)?;
    if s.modpow(&key.e, &key.n) != m {
        return Err(invalid(
            "blind signature",
            "it does not sign the blinded message under the registrar's key",
        ));
    }
    Ok(())
}

/// Checks a token: the registrar's RSA-PSS signature over the token message of `round` and
/// `ballot_key`.
pub fn verify_token(
    key: &RegistrarKey,
    chain: &ChainId,
    round: u64,
    ballot_key: &PublicKey,
    token: &[u8],
) -> Result<()> {
    key.value("ballot token", token)?;
    let valid = key
        .key
        .verify(
            &Signature(token.to_vec()),
            None,
            token_message(chain, round, ballot_key),
        )
        .is_ok();
    token_verdict(valid, round, ballot_key)
}

fn token_verdict(valid: bool, round: u64, ballot_key: &PublicKey) -> Result<()> {
    if valid {
        return Ok(());
    }
    Err(invalid(
        "ballot token",
        format!(
            "it is not the registrar's signature for round {round} and ballot key {ballot_key}"
        ),
    ))
}

type Remembered<V> = std::sync::OnceLock<std::sync::Mutex<lru::LruCache<Hash, V>>>;

fn remembered<V>(
    cell: &'static Remembered<V>,
    cap: usize,
) -> std::sync::MutexGuard<'static, lru::LruCache<Hash, V>> {
    cell.get_or_init(|| {
        std::sync::Mutex::new(lru::LruCache::new(
            std::num::NonZeroUsize::new(cap).unwrap_or(std::num::NonZeroUsize::MIN),
        ))
    })
    .lock()
    .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Registrar keys parsed, by the SHA-256 of their DER.
static KEYS: Remembered<RegistrarKey> = std::sync::OnceLock::new();
/// Token verdicts reached, by the SHA-256 of what they depend on.
static VERDICTS: Remembered<bool> = std::sync::OnceLock::new();

/// [`RegistrarKey::from_der`], parsing each key once per process (a node parses a round's
/// key for every ballot it judges and executes).
pub fn registrar_key_of(der: &[u8]) -> Result<RegistrarKey> {
    let id = Hash::digest(der);
    if let Some(key) = remembered(&KEYS, 64).get(&id) {
        return Ok(key.clone());
    }
    let key = RegistrarKey::from_der(der)?;
    remembered(&KEYS, 64).put(id, key.clone());
    Ok(key)
}

/// [`verify_token`] under the registrar key `key_der`, verifying each (key, chain, round,
/// ballot key, token) once per process: a ballot the mempool judged, rechecked and then
/// executed costs one RSA verification, not three. A verdict is a function of what it is
/// remembered by, so remembering it changes no outcome.
pub fn verify_token_once(
    key_der: &[u8],
    chain: &ChainId,
    round: u64,
    ballot_key: &PublicKey,
    token: &[u8],
) -> Result<()> {
    let key = registrar_key_of(key_der)?;
    key.value("ballot token", token)?;
    let id = Hash::of(&(key_der, chain, round, ballot_key, token));
    if let Some(&valid) = remembered(&VERDICTS, 65_536).get(&id) {
        return token_verdict(valid, round, ballot_key);
    }
    let valid = verify_token(&key, chain, round, ballot_key, token).is_ok();
    remembered(&VERDICTS, 65_536).put(id, valid);
    token_verdict(valid, round, ballot_key)
}

/// A blinded token request and the secret that removes the blinding: the resident keeps
/// `secret` until the blind signature comes, and shows `message` only.
#[derive(Clone, Debug)]
pub struct Blinded {
    pub message: Vec<u8>,
    pub secret: Vec<u8>,
}

/// Blinds the token message of `round` and `ballot_key` with a fresh random factor.
pub fn blind(
    key: &RegistrarKey,
    chain: &ChainId,
    round: u64,
    ballot_key: &PublicKey,
) -> Result<Blinded> {
    let r = key
        .key
        .blind(&mut DefaultRng, token_message(chain, round, ballot_key))
        .map_err(|e| invalid("token request", e))?;
    Ok(Blinded {
        message: r.blind_message.0,
        secret: r.secret.0,
    })
}

/// Removes the blinding from the registrar's blind signature: the token, checked.
pub fn finalize(
    key: &RegistrarKey,
    blinded: &Blinded,
    blind_sig: &[u8],
    chain: &ChainId,
    round: u64,
    ballot_key: &PublicKey,
) -> Result<Vec<u8>> {
    let result = BlindingResult {
        blind_message: blind_rsa_signatures::BlindMessage(blinded.message.clone()),
        secret: Secret(blinded.secret.clone()),
        msg_randomizer: None,
    };
    let token = key
        .key
        .finalize(
            &BlindSignature(blind_sig.to_vec()),
            &result,
            token_message(chain, round, ballot_key),
        )
        .map_err(|e| invalid("ballot token", e))?;
    Ok(token.0)
}

/// A registrar's RSA secret key, for the registrar's own tools.
#[derive(Clone, Debug)]
pub struct Registrar {
    secret: SecretKey,
}

impl Registrar {
    /// A new key of `bits` bits (2,048 to 4,096).
    pub fn generate(bits: usize) -> Result<Registrar> {
        let pair = KeyPair::<Sha384, PSS, Deterministic>::generate(&mut DefaultRng, bits)
            .map_err(|e| invalid("registrar key", e))?;
        Ok(Registrar { secret: pair.sk })
    }

    /// The secret key as PKCS#8 DER, to keep.
    pub fn to_der(&self) -> Result<Vec<u8>> {
        self.secret
            .to_der()
            .map_err(|e| invalid("registrar key", e))
    }

    pub fn from_der(der: &[u8]) -> Result<Registrar> {
        let secret = SecretKey::from_der(der).map_err(|e| invalid("registrar key", e))?;
        Ok(Registrar { secret })
    }

    /// The public key as a round names it (canonical DER SubjectPublicKeyInfo).
    pub fn public_der(&self) -> Result<Vec<u8>> {
        self.secret
            .public_key()
            .and_then(|k| k.to_der())
            .map_err(|e| invalid("registrar key", e))
    }

    /// Signs a blinded message (which it cannot read).
    pub fn sign_blinded(&self, blinded: &[u8]) -> Result<Vec<u8>> {
        self.secret
            .blind_sign(blinded)
            .map(|s| s.0)
            .map_err(|e| invalid("blinded token message", e))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;
    use crate::{testing, Keypair};

    /// One 2,048-bit registrar for the tests (key generation takes a while).
    fn registrar() -> &'static (Registrar, RegistrarKey) {
        static R: OnceLock<(Registrar, RegistrarKey)> = OnceLock::new();
        R.get_or_init(|| {
            let r = Registrar::generate(2048).unwrap();
            let key = RegistrarKey::from_der(&r.public_der().unwrap()).unwrap();
            (r, key)
        })
    }

    fn ballot_key(i: u32) -> PublicKey {
        testing::key(0xb7, i).public()
    }

    #[test]
    fn a_token_verifies_for_its_round_and_ballot_key_only() {
        let (registrar, key) = registrar();
        let chain = testing::chain_id();
        let blinded = blind(key, &chain, 3, &ballot_key(1)).unwrap();
        check_blinded(key, &blinded.message).unwrap();
        let blind_sig = registrar.sign_blinded(&blinded.message).unwrap();
        check_blind_signature(key, &blinded.message, &blind_sig).unwrap();
        let token = finalize(key, &blinded, &blind_sig, &chain, 3, &ballot_key(1)).unwrap();
        verify_token(key, &chain, 3, &ballot_key(1), &token).unwrap();
        // Unlinkable: the token is not the blind signature, nor the blinded message.
        assert_ne!(token, blind_sig);
        assert_ne!(token, blinded.message);
        // Another round, another ballot key, another chain, a changed token: refused.
        assert!(verify_token(key, &chain, 4, &ballot_key(1), &token).is_err());
        assert!(verify_token(key, &chain, 3, &ballot_key(2), &token).is_err());
        let other = ChainId::new("acta-other").unwrap();
        assert!(verify_token(key, &other, 3, &ballot_key(1), &token).is_err());
        let mut bent = token.clone();
        bent[40] ^= 1;
        assert!(verify_token(key, &chain, 3, &ballot_key(1), &bent).is_err());
        assert!(verify_token(key, &chain, 3, &ballot_key(1), &token[1..]).is_err());
    }

    #[test]
    fn remembered_verdicts_are_the_verdicts() {
        let (registrar, key) = registrar();
        let der = registrar.public_der().unwrap();
        let chain = testing::chain_id();
        let blinded = blind(key, &chain, 5, &ballot_key(6)).unwrap();
        let blind_sig = registrar.sign_blinded(&blinded.message).unwrap();
        let token = finalize(key, &blinded, &blind_sig, &chain, 5, &ballot_key(6)).unwrap();
        let parsed = registrar_key_of(&der).unwrap();
        assert_eq!(parsed.value_bytes(), key.value_bytes());
        assert!(registrar_key_of(&der[1..]).is_err());
        let mut bent = token.clone();
        bent[7] ^= 2;
        // Twice each: first reached, then remembered; the same either way.
        for _ in 0..2 {
            verify_token_once(&der, &chain, 5, &ballot_key(6), &token).unwrap();
            for (round, ballot, t) in [(6, 6, &token), (5, 7, &token), (5, 6, &bent)] {
                let once = verify_token_once(&der, &chain, round, &ballot_key(ballot), t);
                let direct = verify_token(key, &chain, round, &ballot_key(ballot), t);
                assert_eq!(
                    once.unwrap_err().to_string(),
                    direct.unwrap_err().to_string()
                );
            }
            assert!(verify_token_once(&der, &chain, 5, &ballot_key(6), &token[1..]).is_err());
        }
    }

    #[test]
    fn a_dud_blind_signature_and_a_malformed_request_are_refused() {
        let (registrar, key) = registrar();
        let chain = testing::chain_id();
        let blinded = blind(key, &chain, 0, &ballot_key(3)).unwrap();
        let other = blind(key, &chain, 0, &ballot_key(4)).unwrap();
        let sig_of_other = registrar.sign_blinded(&other.message).unwrap();
        assert!(check_blind_signature(key, &blinded.message, &sig_of_other).is_err());
        assert!(check_blind_signature(key, &blinded.message, &[0u8; 3]).is_err());
        // A value at or above the modulus, or of the wrong length.
        assert!(check_blinded(key, &[0xff; 256]).is_err());
        assert!(check_blinded(key, &blinded.message[1..]).is_err());
        // A token finalised from another request's signature does not come out.
        assert!(finalize(key, &blinded, &sig_of_other, &chain, 0, &ballot_key(3)).is_err());
    }

    #[test]
    fn a_registrar_key_has_one_encoding() {
        let (registrar, key) = registrar();
        let der = registrar.public_der().unwrap();
        assert_eq!(key.value_bytes(), 256);
        let mut longer = der.clone();
        longer.push(0);
        assert!(RegistrarKey::from_der(&longer).is_err());
        assert!(RegistrarKey::from_der(&der[..der.len() - 1]).is_err());
        assert!(RegistrarKey::from_der(&[0u8; 700]).is_err());
        // The secret key round-trips.
        let again = Registrar::from_der(&registrar.to_der().unwrap()).unwrap();
        assert_eq!(again.public_der().unwrap(), der);
        // An Ed25519 key is no registrar key.
        let ed = Keypair::from_seed([1; 32]).public();
        assert!(RegistrarKey::from_der(&ed.0).is_err());
    }
}
