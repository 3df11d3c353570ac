//! `auth`: the platform's identity service, an OAuth 2.0 / OpenID Connect
//! authorization server.
//!
//! * Service-to-service tokens by `client_credentials`; user sign-in by
//!   `authorization_code` with PKCE S256, refresh tokens with rotation.
//! * RFC 9068 JWT access tokens signed with ES256 (ADR 0010), validated by
//!   every service with `platform-auth-token`; introspection and revocation
//!   for what a self-contained token cannot say.
//! * RBAC: roles map to scopes; clients have allowed scopes and audiences.
//!
//! See docs/adr/0010 and 0011 for why it is built this way.

pub mod authorization;
pub mod clients;
pub mod crypto;
pub mod error;
pub mod grants;
pub mod jobs;
pub mod keys;
pub mod oauth_error;
pub mod passwords;
pub mod roles;
pub mod routes;
pub mod settings;
pub mod startup;
#[cfg(test)]
mod test_database;
pub mod tokens;
pub mod users;
