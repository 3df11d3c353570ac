//! Black-box tests of auth: the real server with a real daprd and a
//! PostgreSQL database of its own, driven over HTTP — by an independent OIDC
//! client library (`openidconnect`) and JWT library (`jsonwebtoken`) where
//! the protocol matters, by raw HTTP where the exact bytes matter.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers fail the test loudly on a broken expectation"
)]

mod admin;
mod authorization_code;
mod client_credentials;
mod contract;
mod health;
mod helpers;
mod hostile;
mod introspection;
mod keys;
mod own_key;
mod startup;
mod users;
