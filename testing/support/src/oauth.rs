//! Tokens from auth for tests that drive a running platform.

use std::time::Duration;

use serde_json::Value;

/// An access token by the client-credentials grant (client_secret_basic)
/// from the token endpoint at `token_url` (auth directly, or through the
/// edge gateway), for `scope` and `audience`, with its lifetime
/// (`expires_in`, 300 s when the answer has none) for a client that renews
/// it.
pub async fn client_credentials_grant(
    http: &reqwest::Client,
    token_url: &str,
    client_id: &str,
    secret: &str,
    scope: &str,
    audience: &str,
) -> anyhow::Result<(String, Duration)> {
    let answer: Value = http
        .post(token_url)
        .basic_auth(client_id, Some(secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", scope),
            ("audience", audience),
        ])
        .send()
        .await?
        .json()
        .await?;
    let token = answer["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no token for {client_id}: {answer}"))?;
    let lifetime = Duration::from_secs(answer["expires_in"].as_u64().unwrap_or(300));
    Ok((token, lifetime))
}

/// The token endpoint of auth as `make up` runs it (tests against the
/// running platform).
const STACK_TOKEN_URL: &str = "http://127.0.0.1:8001/oauth2/token";

/// [`client_credentials_grant`] from the auth of `make up`.
pub async fn stack_token(
    http: &reqwest::Client,
    client_id: &str,
    secret: &str,
    scope: &str,
    audience: &str,
) -> anyhow::Result<(String, Duration)> {
    client_credentials_grant(http, STACK_TOKEN_URL, client_id, secret, scope, audience).await
}
