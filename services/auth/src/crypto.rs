//! Small cryptographic building blocks: random tokens, digests, and the
//! key-encryption key that seals private signing keys at rest.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the system random generator failed")]
    Random,
    #[error("a sealed key could not be opened (wrong key-encryption key or tampered row)")]
    Unseal,
    #[error("a key could not be generated or parsed")]
    Key,
}

/// 256 random bits, base64url: client secrets, codes, refresh tokens.
pub fn random_token() -> Result<String, CryptoError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CryptoError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// SHA-256 of a high-entropy secret. A fast hash is right here: the secret
/// has 256 bits of entropy, so there is nothing to brute-force, and a slow
/// hash would cap token throughput (issue 3, Users).
pub fn digest_secret(secret: &str) -> Vec<u8> {
    digest(&SHA256, secret.as_bytes()).as_ref().to_vec()
}

/// Compares without an early exit, so timing does not reveal the length of
/// the common prefix.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// base64url(SHA-256(verifier)) — PKCE S256 (RFC 7636 §4.2).
pub fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()))
}

/// AES-256-GCM under the key-encryption key. Sealed = nonce ‖ ciphertext ‖
/// tag; the associated data (the kid) binds a sealed key to its row, so a
/// sealed key copied to another row does not open.
pub struct KeyEncryptionKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey([redacted])")
    }
}

impl KeyEncryptionKey {
    pub fn new(bytes: &[u8; 32]) -> Result<Self, CryptoError> {
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| CryptoError::Key)?;
        Ok(Self {
            key: LessSafeKey::new(key),
        })
    }

    pub fn seal(&self, plaintext: &[u8], associated: &str) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| CryptoError::Random)?;
        let mut buffer = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated.as_bytes()),
                &mut buffer,
            )
            .map_err(|_| CryptoError::Key)?;
        let mut sealed = nonce.to_vec();
        sealed.extend(buffer);
        Ok(sealed)
    }

    pub fn open(&self, sealed: &[u8], associated: &str) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < NONCE_LEN {
            return Err(CryptoError::Unseal);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Unseal)?;
        let mut buffer = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(associated.as_bytes()), &mut buffer)
            .map_err(|_| CryptoError::Unseal)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_the_same_key_and_kid() {
        let kek = KeyEncryptionKey::new(&[7u8; 32]).unwrap();
        let sealed = kek.seal(b"private", "kid-1").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"private"));
        assert_eq!(kek.open(&sealed, "kid-1").unwrap(), b"private");
        assert!(kek.open(&sealed, "kid-2").is_err());
        let other = KeyEncryptionKey::new(&[8u8; 32]).unwrap();
        assert!(other.open(&sealed, "kid-1").is_err());
        let mut tampered = sealed.clone();
        tampered[20] ^= 1;
        assert!(kek.open(&tampered, "kid-1").is_err());
    }

    #[test]
    fn tokens_are_distinct_and_pkce_matches_rfc7636_appendix_b() {
        assert_ne!(random_token().unwrap(), random_token().unwrap());
        assert_eq!(random_token().unwrap().len(), 43);
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
