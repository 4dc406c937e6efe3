//! Ed25519 keys and signatures with domain separation.
//!
//! Every signed message is `borsh((domain_tag, chain_id, payload))`: the tag names the kind
//! of message, so a vote can never be replayed as a transaction, and the chain id makes a
//! signature for one chain worthless on any other.
//!
//! Signing uses `ed25519-dalek`. Verification follows the ZIP 215 rules, because under
//! them a batch check accepts exactly the signatures a single check accepts; with other
//! rule sets a crafted signature can pass one and fail the other, and nodes that batch
//! differently would then disagree. A single check is `ed25519-zebra`'s; a batch check is
//! the same crate's equation written here on `curve25519-dalek`, so that each key's point
//! is decompressed once per node rather than in every batch. See `docs/adr/0002`.

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use curve25519_dalek::{
    edwards::{CompressedEdwardsY, EdwardsPoint},
    traits::{IsIdentity as _, VartimeMultiscalarMul as _},
    Scalar,
};
use ed25519_dalek::Signer as _;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::{types::ChainId, Error, Hash, Result};

/// The kinds of signed message. Each has its own tag in the signed bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Domain {
    Transaction,
    Proposal,
    Prevote,
    Precommit,
    /// What a ballot token of a secret budget round signs (by RSA, not Ed25519):
    /// [`crate::token::token_message`].
    BallotToken,
}

impl Domain {
    /// The tag that starts the signed bytes of this kind of message.
    pub fn tag(self) -> &'static str {
        match self {
            Domain::Transaction => "acta/tx/v2",
            Domain::Proposal => "acta/proposal/v1",
            Domain::Prevote => "acta/prevote/v1",
            Domain::Precommit => "acta/precommit/v1",
            Domain::BallotToken => "acta/ballot-token/v1",
        }
    }
}

/// The exact bytes that are signed: `borsh((tag, chain_id, payload))`.
pub fn signing_bytes<T: BorshSerialize + ?Sized>(
    domain: Domain,
    chain_id: &ChainId,
    payload: &T,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    BorshSerialize::serialize(domain.tag(), &mut out).expect("writing to a Vec cannot fail");
    BorshSerialize::serialize(chain_id, &mut out).expect("writing to a Vec cannot fail");
    payload
        .serialize(&mut out)
        .expect("writing to a Vec cannot fail");
    out
}

/// An Ed25519 public key, as its 32-byte encoding.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct PublicKey(pub [u8; 32]);

/// An Ed25519 signature, as its 64-byte encoding `R || s`.
#[derive(Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

impl PublicKey {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Result<PublicKey> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)
            .map_err(|e| Error::invalid("public key", format!("{e} in {s:?}")))?;
        Ok(PublicKey(out))
    }

    /// Checks that the bytes are a usable key: a point on the curve that is not of small
    /// order. A small-order key would accept signatures on any message from anyone.
    ///
    /// The check is a point decompression, about as costly as a third of a verification;
    /// keys found usable are remembered with their points (in a bounded map, emptied when
    /// full), so a signer's key is checked and decompressed once rather than with every
    /// signature, and batches reuse the point ([`SignatureBatch::verify`]).
    pub fn validate(&self) -> Result<()> {
        self.point().map(|_| ())
    }

    /// The key's curve point, if the key is usable ([`PublicKey::validate`]).
    fn point(&self) -> Result<EdwardsPoint> {
        /// The most keys remembered with their points (160 bytes each).
        const REMEMBERED_MAX: usize = 1 << 15;
        static USABLE: std::sync::LazyLock<
            std::sync::Mutex<std::collections::HashMap<[u8; 32], EdwardsPoint>>,
        > = std::sync::LazyLock::new(Default::default);
        let usable = || {
            USABLE
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(point) = usable().get(&self.0) {
            return Ok(*point);
        }
        let point = self.check_point()?;
        let mut map = usable();
        if map.len() >= REMEMBERED_MAX {
            map.clear();
        }
        map.insert(self.0, point);
        Ok(point)
    }

    /// Decompresses the key as `ed25519-dalek` and `ed25519-zebra` do (non-canonical
    /// encodings of `y` accepted, as ZIP 215 asks) and refuses a small-order point.
    fn check_point(&self) -> Result<EdwardsPoint> {
        let point = CompressedEdwardsY(self.0)
            .decompress()
            .ok_or_else(|| Error::invalid("public key", format!("{self} is not a curve point")))?;
        if point.is_small_order() {
            return Err(Error::invalid(
                "public key",
                format!("{self} has small order"),
            ));
        }
        Ok(point)
    }

    /// Verifies `signature` over `message`.
    pub fn verify_raw(&self, message: &[u8], signature: &Signature) -> Result<()> {
        self.validate()?;
        let key =
            ed25519_zebra::VerificationKey::try_from(self.0).map_err(|_| Error::BadSignature {
                signer: self.to_hex(),
            })?;
        key.verify(&ed25519_zebra::Signature::from_bytes(&signature.0), message)
            .map_err(|_| Error::BadSignature {
                signer: self.to_hex(),
            })
    }

    /// Verifies `signature` over the signed bytes of `payload` for `domain` on `chain_id`.
    pub fn verify<T: BorshSerialize + ?Sized>(
        &self,
        domain: Domain,
        chain_id: &ChainId,
        payload: &T,
        signature: &Signature,
    ) -> Result<()> {
        self.verify_raw(&signing_bytes(domain, chain_id, payload), signature)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        PublicKey::from_hex(&<String as Deserialize>::deserialize(d)?)
            .map_err(serde::de::Error::custom)
    }
}

impl Signature {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Result<Signature> {
        let mut out = [0u8; 64];
        hex::decode_to_slice(s, &mut out)
            .map_err(|e| Error::invalid("signature", format!("{e} in {s:?}")))?;
        Ok(Signature(out))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_hex())
    }
}

impl Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Signature::from_hex(&<String as Deserialize>::deserialize(d)?)
            .map_err(serde::de::Error::custom)
    }
}

/// A signing key. Its secret never appears in `Debug` output.
pub struct Keypair(ed25519_dalek::SigningKey);

impl Keypair {
    /// A new key from the operating system's randomness.
    pub fn generate() -> Keypair {
        Keypair(ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng))
    }

    /// The key whose 32-byte secret seed is `seed` (RFC 8032 private key).
    pub fn from_seed(seed: [u8; 32]) -> Keypair {
        Keypair(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// The 32-byte secret seed, for storing the key (encrypted) and nothing else.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    pub fn sign_raw(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }

    /// Signs the signed bytes of `payload` for `domain` on `chain_id`.
    pub fn sign<T: BorshSerialize + ?Sized>(
        &self,
        domain: Domain,
        chain_id: &ChainId,
        payload: &T,
    ) -> Signature {
        self.sign_raw(&signing_bytes(domain, chain_id, payload))
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({})", self.public())
    }
}

/// Many signatures checked at once, about twice as fast as one by one.
///
/// When the batch fails, each signature is checked alone to find the bad ones, so a forged
/// signature costs its sender the batch's advantage and nothing else.
#[derive(Debug, Default)]
pub struct SignatureBatch {
    items: Vec<(PublicKey, Signature, Vec<u8>)>,
}

impl SignatureBatch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        SignatureBatch {
            items: Vec::with_capacity(n),
        }
    }

    /// Queues a check of `signature` by `key` over `message`.
    pub fn push(&mut self, key: PublicKey, signature: Signature, message: Vec<u8>) {
        self.items.push((key, signature, message));
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Checks every queued signature. Returns one result per item, in the order pushed.
    pub fn verify(self) -> Vec<Result<()>> {
        // Each key's point looked up once: an unusable key is refused before any check.
        let points: Vec<Result<EdwardsPoint>> =
            self.items.iter().map(|(key, _, _)| key.point()).collect();
        let usable = self
            .items
            .iter()
            .zip(&points)
            .filter_map(|((key, sig, msg), point)| {
                point.as_ref().ok().map(|p| (key, *p, sig, msg.as_slice()))
            });
        if batch_holds(usable) {
            return points.into_iter().map(|p| p.map(|_| ())).collect();
        }
        self.items
            .iter()
            .zip(points)
            .map(|((key, sig, msg), point)| point.and_then(|_| key.verify_raw(msg, sig)))
            .collect()
    }

    /// Checks the signatures of several batches, which may come from different senders,
    /// as one batch first (a larger batch costs less per signature: about 17 µs each in
    /// batches of 16 and 13 µs in batches of 1,024 here). If that fails, each batch is
    /// checked on its own ([`SignatureBatch::verify`]), so that one sender's forged
    /// signature costs the others only the one failed attempt. One result list per batch,
    /// in the order given.
    pub fn verify_groups(groups: Vec<SignatureBatch>) -> Vec<Vec<Result<()>>> {
        if groups.len() > 1 {
            // Merged only when every key is usable.
            let points: Option<Vec<EdwardsPoint>> = groups
                .iter()
                .flat_map(|g| &g.items)
                .map(|(key, _, _)| key.point().ok())
                .collect();
            if let Some(points) = points {
                let all = groups
                    .iter()
                    .flat_map(|g| &g.items)
                    .zip(points)
                    .map(|((key, sig, msg), point)| (key, point, sig, msg.as_slice()));
                if batch_holds(all) {
                    return groups
                        .iter()
                        .map(|g| g.items.iter().map(|_| Ok(())).collect())
                        .collect();
                }
            }
        }
        groups.into_iter().map(SignatureBatch::verify).collect()
    }

    /// Checks every queued signature; `Ok` only when all are valid, else the first failure
    /// with its position.
    pub fn verify_all(self) -> std::result::Result<(), (usize, Error)> {
        match self
            .verify()
            .into_iter()
            .enumerate()
            .find(|(_, r)| r.is_err())
        {
            Some((i, Err(e))) => Err((i, e)),
            _ => Ok(()),
        }
    }
}

/// Whether every signature holds, by the batch equation of ZIP 215 (as
/// `ed25519-zebra`'s batch check, whose rules it keeps: `R` decompressed whatever the
/// canonicity of its `y`, `s` canonical, `k = SHA-512(R || A || M)` over the bytes as
/// given, the check multiplied by the cofactor):
///
/// `[8](-Σ z_i·s_i)B + [8]Σ (Σ z_i·k_i)A + [8]Σ z_i·R_i = 0`, with each `z_i` a random
/// 128-bit scalar and the `k` terms of one key summed into one coefficient.
///
/// It differs from that crate's only in taking each key's point from the caller (from
/// [`PublicKey::point`], so decompressed once per node rather than once per batch: a
/// decompression costs about as much as the rest of a signature's share of the check).
/// An empty batch holds.
fn batch_holds<'a>(
    items: impl Iterator<Item = (&'a PublicKey, EdwardsPoint, &'a Signature, &'a [u8])>,
) -> bool {
    use rand::Rng as _;
    let mut rng = rand::thread_rng();
    let mut b_coeff = Scalar::ZERO;
    let mut keys: std::collections::HashMap<[u8; 32], (EdwardsPoint, Scalar)> =
        std::collections::HashMap::new();
    let n = items.size_hint().0;
    let (mut r_coeffs, mut rs) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for (key, point, sig, msg) in items {
        let (r_bytes, s_bytes) = sig.0.split_at(32);
        let Some(r) = CompressedEdwardsY::from_slice(r_bytes)
            .ok()
            .and_then(|r| r.decompress())
        else {
            return false;
        };
        let Some(s) = s_bytes
            .try_into()
            .ok()
            .and_then(|s| Option::<Scalar>::from(Scalar::from_canonical_bytes(s)))
        else {
            return false;
        };
        let k = Scalar::from_hash(
            sha2::Sha512::new()
                .chain_update(r_bytes)
                .chain_update(key.0)
                .chain_update(msg),
        );
        let a_coeff = &mut keys.entry(key.0).or_insert((point, Scalar::ZERO)).1;
        let z = Scalar::from(rng.gen::<u128>());
        b_coeff -= z * s;
        *a_coeff += z * k;
        r_coeffs.push(z);
        rs.push(r);
    }
    let (points, coeffs): (Vec<EdwardsPoint>, Vec<Scalar>) = keys.into_values().unzip();
    let check = EdwardsPoint::vartime_multiscalar_mul(
        std::iter::once(&b_coeff)
            .chain(coeffs.iter())
            .chain(r_coeffs.iter()),
        std::iter::once(&curve25519_dalek::constants::ED25519_BASEPOINT_POINT)
            .chain(points.iter())
            .chain(rs.iter()),
    );
    check.mul_by_cofactor().is_identity()
}

/// SHA-256 of a public key's 32 bytes, as pre-committed for a key's successor.
pub fn key_hash(key: &PublicKey) -> Hash {
    Hash::digest(&key.0)
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    fn chain() -> ChainId {
        ChainId::new("acta-test").unwrap()
    }

    #[test]
    fn a_signature_verifies_only_for_its_domain_chain_payload_and_key() {
        let k = Keypair::from_seed([1; 32]);
        let sig = k.sign(Domain::Transaction, &chain(), &42u64);
        let pk = k.public();
        assert!(pk
            .verify(Domain::Transaction, &chain(), &42u64, &sig)
            .is_ok());
        assert!(pk.verify(Domain::Prevote, &chain(), &42u64, &sig).is_err());
        let other = ChainId::new("acta-other").unwrap();
        assert!(pk
            .verify(Domain::Transaction, &other, &42u64, &sig)
            .is_err());
        assert!(pk
            .verify(Domain::Transaction, &chain(), &43u64, &sig)
            .is_err());
        let stranger = Keypair::from_seed([2; 32]).public();
        assert!(stranger
            .verify(Domain::Transaction, &chain(), &42u64, &sig)
            .is_err());
    }

    #[test]
    fn signing_bytes_are_tag_chain_payload_in_borsh() {
        let bytes = signing_bytes(Domain::Precommit, &chain(), &7u8);
        let mut want = Vec::new();
        want.extend_from_slice(&17u32.to_le_bytes());
        want.extend_from_slice(b"acta/precommit/v1");
        want.extend_from_slice(&9u32.to_le_bytes());
        want.extend_from_slice(b"acta-test");
        want.push(7);
        assert_eq!(bytes, want);
    }

    #[test]
    fn small_order_and_off_curve_keys_are_refused() {
        // The identity point (small order) and a y-coordinate with no curve point.
        let identity = PublicKey({
            let mut b = [0u8; 32];
            b[0] = 1;
            b
        });
        assert!(identity.validate().is_err());
        let sig = Signature([0; 64]);
        assert!(identity.verify_raw(b"anything", &sig).is_err());
        let off_curve = PublicKey([0xff; 32]);
        assert!(off_curve.validate().is_err() || off_curve.verify_raw(b"m", &sig).is_err());
    }

    #[test]
    fn batch_reports_exactly_the_bad_signatures() {
        let keys: Vec<Keypair> = (0..16u8).map(|i| Keypair::from_seed([i; 32])).collect();
        let mut batch = SignatureBatch::new();
        for (i, k) in keys.iter().enumerate() {
            let msg = vec![i as u8; 10];
            let mut sig = k.sign_raw(&msg);
            if i % 5 == 3 {
                sig.0[10] ^= 1;
            }
            batch.push(k.public(), sig, msg);
        }
        let results = batch.verify();
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r.is_err(), i % 5 == 3, "item {i}");
        }
        let mut good = SignatureBatch::new();
        for k in &keys {
            good.push(k.public(), k.sign_raw(b"m"), b"m".to_vec());
        }
        assert!(good.verify_all().is_ok());
    }

    /// Groups checked together give each group what it would get alone: all good when no
    /// signature is forged; with one forged, exactly that one refused and every other
    /// group's signatures accepted; with an unusable key, that one refused.
    #[test]
    fn groups_checked_together_agree_with_each_group_alone() {
        let keys: Vec<Keypair> = (0..12u8).map(|i| Keypair::from_seed([i; 32])).collect();
        let groups = |forged: Option<(usize, usize)>, unusable: Option<(usize, usize)>| {
            (0..3)
                .map(|g| {
                    let mut batch = SignatureBatch::new();
                    for i in 0..4 {
                        let k = &keys[g * 4 + i];
                        let msg = vec![(g * 4 + i) as u8; 8];
                        let mut sig = k.sign_raw(&msg);
                        if forged == Some((g, i)) {
                            sig.0[40] ^= 1;
                        }
                        let key = if unusable == Some((g, i)) {
                            PublicKey([0xff; 32])
                        } else {
                            k.public()
                        };
                        batch.push(key, sig, msg);
                    }
                    batch
                })
                .collect::<Vec<_>>()
        };
        let verdicts = |results: Vec<Vec<Result<()>>>| -> Vec<Vec<bool>> {
            results
                .into_iter()
                .map(|g| g.iter().map(Result::is_ok).collect())
                .collect()
        };
        let alone = |gs: Vec<SignatureBatch>| {
            verdicts(gs.into_iter().map(SignatureBatch::verify).collect())
        };
        for (forged, unusable) in [
            (None, None),
            (Some((1, 2)), None),
            (Some((0, 0)), None),
            (None, Some((2, 3))),
        ] {
            let together = verdicts(SignatureBatch::verify_groups(groups(forged, unusable)));
            assert_eq!(together, alone(groups(forged, unusable)));
            let refused: Vec<(usize, usize)> = (0..3)
                .flat_map(|g| (0..4).map(move |i| (g, i)))
                .filter(|&(g, i)| !together[g][i])
                .collect();
            assert_eq!(refused, forged.or(unusable).into_iter().collect::<Vec<_>>());
        }
        assert!(SignatureBatch::verify_groups(Vec::new()).is_empty());
    }

    /// Encodings of the small-order points that ZIP 215 makes verifiers agree on: each
    /// point's canonical encoding, with its sign bit flipped (for `x = 0` a non-canonical
    /// encoding), and for `y` below 19 the non-canonical `y + p`, with either sign.
    fn small_order_encodings() -> Vec<[u8; 32]> {
        let mut out: Vec<[u8; 32]> = Vec::new();
        for point in curve25519_dalek::constants::EIGHT_TORSION {
            let canonical = point.compress().to_bytes();
            let mut flipped = canonical;
            flipped[31] ^= 0x80;
            out.extend([canonical, flipped]);
            let mut y = canonical;
            y[31] &= 0x7f;
            if y[0] < 19 && y[1..].iter().all(|&b| b == 0) {
                // y + p = 2^255 - (19 - y): 0xff bytes, the lowest 237 + y, the top 0x7f.
                let mut big = [0xffu8; 32];
                big[0] = 237 + y[0];
                big[31] = 0x7f;
                let mut negative = big;
                negative[31] |= 0x80;
                out.extend([big, negative]);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The verifier (`ed25519-zebra`) accepts exactly what the one before it
    /// (`ed25519-consensus`) accepted, alone and in a batch, on the ZIP 215 edge cases:
    /// small-order and non-canonical keys and `R`, with `s` zero, one, and the group order
    /// (not canonical: refused); and on real signatures, whole and with a bit flipped.
    #[test]
    fn the_verifier_agrees_with_the_one_before_alone_and_in_batches() {
        let encodings = small_order_encodings();
        assert_eq!(encodings.len(), 14);
        // The group order L = 2^252 + 27742317777372353535851937790883648493, little-endian.
        let order: [u8; 32] = {
            let mut l = [0u8; 32];
            hex::decode_to_slice(
                "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010",
                &mut l,
            )
            .unwrap();
            l
        };
        let mut one = [0u8; 32];
        one[0] = 1;
        let mut cases: Vec<([u8; 32], [u8; 64], Vec<u8>)> = Vec::new();
        for a in &encodings {
            for r in &encodings {
                for s in [[0u8; 32], one, order] {
                    let mut sig = [0u8; 64];
                    sig[..32].copy_from_slice(r);
                    sig[32..].copy_from_slice(&s);
                    cases.push((*a, sig, b"Zcash".to_vec()));
                }
            }
        }
        // Keys and R of mixed order (a large-order point plus a small-order one), which
        // Acta's key check lets through: s = r + k·a passes the cofactored check that ZIP
        // 215 asks for, and fails a cofactorless one unless the small parts cancel.
        let mut mixed = Vec::new();
        {
            use curve25519_dalek::{constants::ED25519_BASEPOINT_POINT as B, Scalar};
            use sha2::Digest as _;
            let torsion = curve25519_dalek::constants::EIGHT_TORSION;
            for (i, t_a) in torsion.iter().enumerate() {
                for (j, t_r) in torsion.iter().enumerate() {
                    let a = Scalar::from_bytes_mod_order([i as u8 + 1; 32]);
                    let r = Scalar::from_bytes_mod_order([j as u8 + 100; 32]);
                    let key = (a * B + t_a).compress().to_bytes();
                    let big_r = (r * B + t_r).compress().to_bytes();
                    let msg = vec![i as u8, j as u8];
                    let k = Scalar::from_hash(
                        sha2::Sha512::new()
                            .chain_update(big_r)
                            .chain_update(key)
                            .chain_update(&msg),
                    );
                    let mut sig = [0u8; 64];
                    sig[..32].copy_from_slice(&big_r);
                    sig[32..].copy_from_slice((r + k * a).as_bytes());
                    // Acta's own check passes these keys, and verifies them.
                    assert!(PublicKey(key).validate().is_ok(), "{i} {j}");
                    assert!(PublicKey(key).verify_raw(&msg, &Signature(sig)).is_ok());
                    mixed.push((key, sig, msg));
                }
            }
        }
        cases.extend(mixed.iter().cloned());
        for i in 0..64u8 {
            let k = Keypair::from_seed([i; 32]);
            let msg = vec![i; usize::from(i)];
            let mut sig = k.sign_raw(&msg).0;
            if i % 2 == 1 {
                sig[usize::from(i)] ^= 1 << (i % 8);
            }
            cases.push((k.public().0, sig, msg));
        }
        let (mut accepted, mut refused) = (0, 0);
        let mut all_valid = ed25519_zebra::batch::Verifier::new();
        let mut ours_valid = Vec::new();
        for (key, sig, msg) in &cases {
            let before = ed25519_consensus::VerificationKey::try_from(*key)
                .and_then(|k| k.verify(&ed25519_consensus::Signature::from(*sig), msg))
                .is_ok();
            let zebra_sig = ed25519_zebra::Signature::from_bytes(sig);
            let alone = ed25519_zebra::VerificationKey::try_from(*key)
                .and_then(|k| k.verify(&zebra_sig, msg))
                .is_ok();
            let item = (
                ed25519_zebra::VerificationKeyBytes::from(*key),
                zebra_sig,
                msg,
            );
            let mut batch = ed25519_zebra::batch::Verifier::new();
            batch.queue(item);
            let batched = batch.verify(rand_core::OsRng).is_ok();
            assert_eq!(
                alone,
                before,
                "key {} sig {}",
                hex::encode(key),
                hex::encode(sig)
            );
            assert_eq!(
                batched,
                alone,
                "key {} sig {}",
                hex::encode(key),
                hex::encode(sig)
            );
            // Acta's batch equation, alone: as the crate's wherever the key is usable (an
            // unusable key has no point, and `SignatureBatch` refuses it before any
            // check).
            let (key, sig) = (PublicKey(*key), Signature(*sig));
            let usable = key.validate().is_ok();
            let ours = key
                .point()
                .is_ok_and(|p| batch_holds(std::iter::once((&key, p, &sig, msg.as_slice()))));
            assert_eq!(ours, usable && alone, "key {key} sig {}", sig.to_hex());
            if alone && usable {
                ours_valid.push((key, sig, msg.clone()));
            }
            if alone {
                all_valid.queue(item);
                accepted += 1;
            } else {
                refused += 1;
            }
        }
        // Both kinds occur (ZIP 215 accepts small-order points with s = 0), and the
        // accepted ones pass as one batch too.
        assert!(accepted > 32 && refused > 32, "{accepted} {refused}");
        assert!(all_valid.verify(rand_core::OsRng).is_ok());
        let together = |items: &[(PublicKey, Signature, Vec<u8>)]| {
            batch_holds(
                items
                    .iter()
                    .map(|(k, s, m)| (k, k.point().unwrap(), s, m.as_slice())),
            )
        };
        assert!(ours_valid.len() > 32 && together(&ours_valid));
        // One refused signature among them fails the batch, wherever it stands.
        for at in [0, ours_valid.len() / 2, ours_valid.len()] {
            let mut with_bad = ours_valid.clone();
            let (key, mut sig, msg) = ours_valid[at.min(ours_valid.len() - 1)].clone();
            sig.0[33] ^= 4;
            with_bad.insert(at, (key, sig, msg));
            assert!(!together(&with_bad), "{at}");
        }
        // Through Acta's batch: the mixed-order signatures pass together, and with one
        // bad signature among them exactly that one is refused.
        let mut batch = SignatureBatch::new();
        for (n, (key, sig, msg)) in mixed.iter().enumerate() {
            let mut sig = *sig;
            if n == 17 {
                sig[40] ^= 1;
            }
            batch.push(PublicKey(*key), Signature(sig), msg.clone());
        }
        let results = batch.verify();
        for (n, r) in results.iter().enumerate() {
            assert_eq!(r.is_err(), n == 17, "{n}");
        }
    }

    #[test]
    fn debug_of_a_keypair_shows_no_secret() {
        let k = Keypair::from_seed([9; 32]);
        let shown = format!("{k:?}");
        assert!(!shown.contains(&hex::encode([9u8; 32])));
        assert!(shown.contains(&k.public().to_hex()));
    }
}
