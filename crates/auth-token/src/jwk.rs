//! JSON Web Keys (RFC 7517/7518) as `auth` publishes them: EC P-256 public
//! keys for ES256. Other key types in a set are skipped, not errors, so that
//! `auth` can add algorithms later without breaking older validators.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::KeyError;

/// Signature algorithms a validator may accept. Deliberately only
/// asymmetric ones: `none` and MACs cannot be named here at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Es256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
        }
    }

    /// `None` for every name outside the allow-list (`none`, `HS256`, …).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Self::Es256),
            _ => None,
        }
    }
}

/// One public key of a JWKS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

/// A JWK Set (RFC 7517 §5).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

impl Jwk {
    /// The JWK of a P-256 public key given as an uncompressed SEC1 point
    /// (`0x04 || x || y`, what `ring` returns).
    pub fn es256(kid: impl Into<String>, uncompressed_point: &[u8]) -> Result<Self, KeyError> {
        if uncompressed_point.len() != 65 || uncompressed_point[0] != 0x04 {
            return Err(KeyError::Malformed("not an uncompressed P-256 point"));
        }
        Ok(Self {
            kty: "EC".into(),
            kid: Some(kid.into()),
            key_use: Some("sig".into()),
            alg: Some(Algorithm::Es256.as_str().into()),
            crv: Some("P-256".into()),
            x: Some(URL_SAFE_NO_PAD.encode(&uncompressed_point[1..33])),
            y: Some(URL_SAFE_NO_PAD.encode(&uncompressed_point[33..])),
        })
    }

    /// The key for verifying signatures, if this JWK is one we can use.
    pub fn verifying_key(&self) -> Result<VerifyingKey, KeyError> {
        let kid = self
            .kid
            .clone()
            .ok_or(KeyError::Unsupported("a key without kid"))?;
        if self.key_use.as_deref().is_some_and(|u| u != "sig") {
            return Err(KeyError::Unsupported("a key not for signatures"));
        }
        if self.kty != "EC" || self.crv.as_deref() != Some("P-256") {
            return Err(KeyError::Unsupported("only EC P-256 keys"));
        }
        // A key pins its algorithm: a token's `alg` must match it, so a key
        // published for ES256 can never be used with another algorithm.
        let alg = match self.alg.as_deref() {
            None | Some("ES256") => Algorithm::Es256,
            Some(_) => return Err(KeyError::Unsupported("only ES256")),
        };
        let coordinate = |c: &Option<String>| -> Result<Vec<u8>, KeyError> {
            let bytes = URL_SAFE_NO_PAD
                .decode(
                    c.as_deref()
                        .ok_or(KeyError::Malformed("missing coordinate"))?,
                )
                .map_err(|_| KeyError::Malformed("coordinate is not base64url"))?;
            if bytes.len() == 32 {
                Ok(bytes)
            } else {
                Err(KeyError::Malformed("coordinate is not 32 bytes"))
            }
        };
        let mut point = Vec::with_capacity(65);
        point.push(0x04);
        point.extend(coordinate(&self.x)?);
        point.extend(coordinate(&self.y)?);
        Ok(VerifyingKey {
            kid,
            alg,
            key: UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point),
        })
    }
}

impl JwkSet {
    /// The usable keys of the set; unusable ones are skipped (and logged once
    /// per fetch by the caller if it cares).
    pub fn verifying_keys(&self) -> Vec<VerifyingKey> {
        self.keys
            .iter()
            .filter_map(|k| k.verifying_key().ok())
            .collect()
    }
}

/// A public key ready to verify signatures, with the algorithm it is for.
#[derive(Debug)]
pub struct VerifyingKey {
    kid: String,
    alg: Algorithm,
    key: UnparsedPublicKey<Vec<u8>>,
}

impl VerifyingKey {
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// Checks `signature` over `message`; `false` on any mismatch.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.key.verify(message, signature).is_ok()
    }
}
