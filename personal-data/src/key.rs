//! A data subject's key and the one cipher every sealed value uses: AES-256-GCM with a random
//! 96-bit nonce, the nonce stored in front of the ciphertext.

use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use zeroize::Zeroizing;

/// Bytes of a key.
pub const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;

/// A ciphertext did not authenticate under the key: another key, or altered bytes.
#[derive(Debug, thiserror::Error)]
#[error("ciphertext does not authenticate under this key")]
pub struct NotAuthentic;

/// An AES-256-GCM key, ready to use; the raw bytes are only kept where they must be wrapped.
#[derive(Clone)]
pub struct DataKey {
    cipher: Arc<Aes256Gcm>,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A fresh random key and its raw bytes (for a store that keeps it wrapped).
    pub fn generate() -> (Self, Zeroizing<[u8; KEY_BYTES]>) {
        let key = Aes256Gcm::generate_key(OsRng);
        let bytes = Zeroizing::new(<[u8; KEY_BYTES]>::from(key));
        (Self::from_bytes(&bytes), bytes)
    }

    /// The key with these raw bytes.
    pub fn from_bytes(bytes: &[u8; KEY_BYTES]) -> Self {
        Self {
            cipher: Arc::new(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(bytes))),
        }
    }

    /// Encrypts `plaintext`, bound to `context` (which decrypting must give again).
    pub fn encrypt(&self, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(OsRng);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .expect("AES-GCM encrypts any message shorter than 64 GiB");
        let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts what [`encrypt`](Self::encrypt) made with the same key and `context`.
    pub fn decrypt(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, NotAuthentic> {
        if sealed.len() < NONCE_BYTES {
            return Err(NotAuthentic);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| NotAuthentic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decrypts_only_with_the_same_key_and_context() {
        let (key, _) = DataKey::generate();
        let sealed = key.encrypt(b"ada@example.com", b"u-1/email");
        assert!(!sealed.windows(3).any(|w| w == b"ada"));
        assert_eq!(
            key.decrypt(&sealed, b"u-1/email").unwrap(),
            b"ada@example.com"
        );
        assert!(key.decrypt(&sealed, b"u-2/email").is_err());
        let (other, _) = DataKey::generate();
        assert!(other.decrypt(&sealed, b"u-1/email").is_err());
        assert!(key.decrypt(&sealed[..5], b"u-1/email").is_err());
    }
}
