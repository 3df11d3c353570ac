//! Why a token or a key was refused. Messages are safe to return to the
//! caller: they name the failed check, never key material.

/// A token failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("the token is not a compact JWS")]
    Malformed,
    #[error("the token is too large")]
    TooLarge,
    #[error("the algorithm is not accepted")]
    AlgorithmNotAllowed(String),
    #[error("the token type is not at+jwt")]
    WrongType,
    #[error("the token names no key")]
    MissingKeyId,
    #[error("the signing key is unknown")]
    UnknownKey,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the claims are malformed")]
    MalformedClaims,
    #[error("the issuer is not trusted")]
    WrongIssuer,
    #[error("the token is not meant for this service")]
    WrongAudience,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
}

/// A JWK could not be used as a verification key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("unsupported key: {0}")]
    Unsupported(&'static str),
    #[error("malformed key: {0}")]
    Malformed(&'static str),
    #[error("cannot fetch the JWKS: {0}")]
    Fetch(String),
}
