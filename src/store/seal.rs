//! Sealing of highly sensitive fields and blobs with XChaCha20-Poly1305.
//!
//! One 256-bit store key is held outside the data directory (see `keys`).
//! Separate subkeys are derived from it for sealing, for the keyed blob hash,
//! and for the fingerprint that the store records to detect a wrong key.
//! Sealed bytes are `0x01 || nonce(24) || ciphertext+tag`; the associated
//! data binds a sealed value to where it belongs, so a value cannot be moved
//! to another row unnoticed.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("sealed data is damaged or was sealed under another key")]
    Open,
    #[error("sealed data has unknown format {0}")]
    Format(u8),
    #[error("the system random number generator failed: {0}")]
    Random(String),
}

/// The store key and what is derived from it.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    blob_key: Zeroizing<[u8; 32]>,
    ledger_key: Zeroizing<[u8; 32]>,
    fingerprint: String,
}

/// The key that authenticates the consent ledger's anchor (its latest
/// sequence number and hash), so that neither truncating the ledger nor
/// re-hashing it goes unnoticed by someone without the store key.
#[derive(Clone)]
pub struct LedgerKey(Zeroizing<[u8; 32]>);

impl LedgerKey {
    /// HMAC-SHA256 of `data`, hex.
    pub fn mac(&self, data: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_slice())
            .expect("HMAC takes any key length");
        mac.update(data);
        hex::encode(mac.finalize().into_bytes())
    }
}

fn derive(master: &[u8; 32], label: &str) -> Zeroizing<[u8; 32]> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master).expect("HMAC takes any key length");
    mac.update(b"candor/");
    mac.update(label.as_bytes());
    Zeroizing::new(mac.finalize().into_bytes().into())
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N], SealError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| SealError::Random(e.to_string()))?;
    Ok(b)
}

impl Sealer {
    pub fn new(master: &[u8; 32]) -> Sealer {
        let seal_key = derive(master, "seal/v1");
        let fp = derive(master, "fingerprint/v1");
        Sealer {
            cipher: XChaCha20Poly1305::new(seal_key.as_slice().into()),
            blob_key: derive(master, "blob-id/v1"),
            ledger_key: derive(master, "ledger-anchor/v1"),
            fingerprint: hex::encode(&fp[..8]),
        }
    }

    /// A short public identifier of the key, stored in the database so that
    /// opening a store with the wrong key fails loudly instead of producing
    /// undecryptable rows.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn ledger_key(&self) -> LedgerKey {
        LedgerKey(self.ledger_key.clone())
    }

    /// A keyed hash of blob content, used as its content address.
    pub fn blob_hash(&self, content: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.blob_key.as_slice())
            .expect("HMAC takes any key length");
        mac.update(content);
        mac.finalize().into_bytes().into()
    }

    pub fn seal(&self, plain: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let nonce: [u8; NONCE_LEN] = random_bytes()?;
        let ct = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
            .map_err(|_| SealError::Open)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        match sealed.first() {
            Some(&FORMAT_V1) if sealed.len() > 1 + NONCE_LEN => {}
            Some(&FORMAT_V1) | None => return Err(SealError::Open),
            Some(&other) => return Err(SealError::Format(other)),
        }
        let (nonce, ct) = sealed[1..].split_at(NONCE_LEN);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
            .map_err(|_| SealError::Open)
    }
}

/// Associated data for an event's sealed fields.
pub fn event_aad(kind_code: u16, wall_ns: i64) -> [u8; 18] {
    let mut aad = [0u8; 18];
    aad[..8].copy_from_slice(b"ev/v1\0\0\0");
    aad[8..10].copy_from_slice(&kind_code.to_le_bytes());
    aad[10..].copy_from_slice(&wall_ns.to_le_bytes());
    aad
}

/// Associated data for a blob: its content address.
pub fn blob_aad(hash: &[u8; 32]) -> Vec<u8> {
    let mut aad = b"blob/v1\0".to_vec();
    aad.extend_from_slice(hash);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let s = Sealer::new(&[7u8; 32]);
        let sealed = s.seal(b"hunter2", b"ctx").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(s.open(&sealed, b"ctx").unwrap(), b"hunter2");
        assert!(s.open(&sealed, b"other").is_err(), "aad must bind");
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(s.open(&bad, b"ctx").is_err());
        assert!(Sealer::new(&[8u8; 32]).open(&sealed, b"ctx").is_err());
        assert!(s.open(&[], b"ctx").is_err());
        assert!(matches!(
            s.open(&[9, 1, 2], b"ctx"),
            Err(SealError::Format(9))
        ));
    }

    #[test]
    fn subkeys_differ_and_fingerprint_is_stable() {
        let a = Sealer::new(&[1u8; 32]);
        let b = Sealer::new(&[1u8; 32]);
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), Sealer::new(&[2u8; 32]).fingerprint());
        assert_eq!(a.blob_hash(b"x"), b.blob_hash(b"x"));
        assert_ne!(a.blob_hash(b"x"), Sealer::new(&[2u8; 32]).blob_hash(b"x"));
    }
}
