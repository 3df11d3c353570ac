//! The JWS compact serialization (RFC 7515 §7.1), parsed strictly: exactly
//! three base64url parts without padding, a JSON header, no `crit`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::{ValidationError, VerifyingKey};

/// Tokens beyond this size are refused before any decoding work.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The protected header fields a validator looks at.
#[derive(Debug, Clone, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default)]
    pub typ: Option<String>,
    #[serde(default)]
    pub kid: Option<String>,
    /// Extensions we would have to understand; we understand none.
    #[serde(default)]
    pub crit: Option<serde_json::Value>,
}

/// A parsed, not yet verified, compact JWS.
#[derive(Debug)]
pub struct Jws<'a> {
    pub header: Header,
    signing_input: &'a str,
    payload: &'a str,
    signature: Vec<u8>,
}

impl<'a> Jws<'a> {
    pub fn parse(token: &'a str) -> Result<Self, ValidationError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(ValidationError::TooLarge);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ValidationError::Malformed);
        };
        let header_bytes = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| ValidationError::Malformed)?;
        let header: Header =
            serde_json::from_slice(&header_bytes).map_err(|_| ValidationError::Malformed)?;
        if header.crit.is_some() {
            return Err(ValidationError::Malformed);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| ValidationError::Malformed)?;
        let signing_input = &token[..header_len(token)];
        Ok(Self {
            header,
            signing_input,
            payload,
            signature,
        })
    }

    /// Verifies the signature with `key`.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), ValidationError> {
        if key.verify(self.signing_input.as_bytes(), &self.signature) {
            Ok(())
        } else {
            Err(ValidationError::BadSignature)
        }
    }

    /// Decodes the payload. Call only after [`Jws::verify`].
    pub fn claims<T: DeserializeOwned>(&self) -> Result<T, ValidationError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(self.payload)
            .map_err(|_| ValidationError::MalformedClaims)?;
        serde_json::from_slice(&bytes).map_err(|_| ValidationError::MalformedClaims)
    }
}

/// Length of `header.payload` (everything before the second dot).
fn header_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}
