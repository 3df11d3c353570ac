//! Validation of the platform's access tokens, for every service.
//!
//! `auth` issues RFC 9068 JWT access tokens signed with ES256 (ADR 0010).
//! A resource server checks them locally, without a call to `auth` per
//! request:
//!
//! * [`JwksCache`] fetches `auth`'s JWKS, caches it, and refetches when a
//!   token names a key it does not know (key rotation) — single-flight and
//!   rate-limited, so a stream of made-up `kid`s cannot turn into a stream of
//!   requests to `auth`.
//! * [`Validator`] checks, in this order: the compact form, `alg` against an
//!   allow-list (never `none`, never a MAC), `typ` = `at+jwt`, the key's own
//!   algorithm, the signature, then `iss`, `aud`, `exp`/`nbf` with a small
//!   leeway, and the presence of `jti`, `sub`, `client_id`.
//! * [`RequireScope`] is a tower layer for axum routes: 401 problem+json with
//!   `WWW-Authenticate: Bearer …` when the token is missing or invalid, 403
//!   with `error="insufficient_scope"` when a scope is missing; handlers read
//!   the checked claims with the [`Authenticated`] extractor.
//!
//! Revocation is not visible in a self-contained token: a resource server
//! that must see it within seconds calls `auth`'s introspection endpoint
//! instead (RFC 7662); for everything else the short token lifetime bounds it.

mod claims;
mod error;
mod guard;
mod jwk;
mod jwks_cache;
mod jws;
mod validator;

pub use claims::{AccessClaims, Audience};
pub use error::{KeyError, ValidationError};
pub use guard::{Authenticated, RequireScope, RequireScopeService};
pub use jwk::{Algorithm, Jwk, JwkSet, VerifyingKey};
pub use jwks_cache::{JwksCache, JwksCacheOptions};
pub use jws::{Header, Jws};
pub use validator::{KeySource, KeysFuture, StaticKeys, Validator, ValidatorConfig};

/// `typ` of an access token (RFC 9068 §2.1); `application/at+jwt` is accepted too.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

#[cfg(test)]
mod tests;
