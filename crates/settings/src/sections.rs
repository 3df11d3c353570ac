//! Settings sections that every service shares.

use std::net::IpAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};

use crate::{SecretSetting, SettingsError};

/// The service's own HTTP listener.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: IpAddr,
    /// 0 binds a free port (tests).
    pub port: u16,
    /// A request that runs longer is answered 503 so that draining ends;
    /// routes whose sidecar calls need longer declare their own deadline
    /// (docs/adr/0026-timeout-hierarchy.md).
    pub request_timeout_ms: u64,
    /// How long in-flight requests get after SIGTERM before the process
    /// exits: longer than every route's deadline, or draining would cut what
    /// the deadline allows.
    pub shutdown_grace_ms: u64,
}

impl ServerSettings {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.request_timeout_ms == 0 {
            return Err(SettingsError::Invalid(
                "server.request_timeout_ms must be > 0".into(),
            ));
        }
        self.validate_route_deadline("server.request_timeout_ms", self.request_timeout_ms)
    }

    /// A route deadline (`key` names it in the message) must be positive
    /// and end before the shutdown grace does.
    pub fn validate_route_deadline(
        &self,
        key: &str,
        deadline_ms: u64,
    ) -> Result<(), SettingsError> {
        if deadline_ms == 0 {
            return Err(SettingsError::Invalid(format!("{key} must be > 0")));
        }
        if deadline_ms >= self.shutdown_grace_ms {
            return Err(SettingsError::Invalid(format!(
                "{key} ({deadline_ms} ms) must be below server.shutdown_grace_ms ({} ms)",
                self.shutdown_grace_ms
            )));
        }
        Ok(())
    }
}

/// Where this service's Dapr sidecar listens. Ports normally come from
/// `DAPR_HTTP_PORT` / `DAPR_GRPC_PORT`.
#[derive(Debug, Clone, Deserialize)]
pub struct DaprSettings {
    pub host: String,
    pub http_port: u16,
    pub grpc_port: u16,
    /// The sidecar's API token (`DAPR_API_TOKEN`): sent as `dapr-api-token`
    /// on every call to the sidecar. Required in production.
    #[serde(default)]
    pub api_token: Option<SecretString>,
    /// The app channel's token (`APP_API_TOKEN`): the sidecar sends it as
    /// `dapr-api-token` on everything it delivers to this app, and the
    /// Dapr-facing routes refuse a request without it
    /// (`platform_server::app_token`). Unset: those routes refuse every
    /// request. Required in production.
    #[serde(default)]
    pub app_token: Option<SecretString>,
    /// How long a readiness probe waits for the sidecar.
    pub probe_timeout_ms: u64,
}

impl DaprSettings {
    pub fn http_endpoint(&self) -> String {
        format!("http://{}:{}", self.host, self.http_port)
    }

    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}:{}", self.host, self.grpc_port)
    }

    pub fn probe_timeout(&self) -> Duration {
        Duration::from_millis(self.probe_timeout_ms)
    }

    /// The two tokens, for [`crate::Validate::secrets`]: production refuses
    /// them unset, empty or holding a development value.
    pub fn secrets(&self) -> [SecretSetting<'_>; 2] {
        [
            SecretSetting::required("dapr.api_token", self.api_token.as_ref())
                .set_by("DAPR_API_TOKEN"),
            SecretSetting::required("dapr.app_token", self.app_token.as_ref())
                .set_by("APP_API_TOKEN"),
        ]
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.http_port == 0 || self.grpc_port == 0 {
            return Err(SettingsError::Invalid(
                "dapr.http_port and dapr.grpc_port must be set (DAPR_HTTP_PORT / DAPR_GRPC_PORT)"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TelemetrySettings {
    /// `tracing` filter directives; `RUST_LOG` wins when set.
    pub log_filter: String,
    pub log_format: LogFormat,
}

/// A PostgreSQL database owned by this service alone.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: SecretString,
    pub database_name: String,
    pub require_ssl: bool,
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
}

impl DatabaseSettings {
    /// Options for the server, without choosing a database.
    pub fn server_options(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .host(&self.host)
            .port(self.port)
            .username(&self.username)
            .password(self.password.expose_secret())
            .ssl_mode(if self.require_ssl {
                PgSslMode::Require
            } else {
                PgSslMode::Prefer
            })
    }

    pub fn connect_options(&self) -> PgConnectOptions {
        self.server_options().database(&self.database_name)
    }

    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }

    /// The service's pool ([`platform_db::pool_options`]: no connection is
    /// handed out inside a transaction), sized and timed by these settings.
    pub fn pool_options(&self) -> PgPoolOptions {
        platform_db::pool_options()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout())
    }

    /// A pool that connects on first use, so that a service starts (and
    /// reports not ready) while its database is still down.
    pub fn lazy_pool(&self) -> sqlx::PgPool {
        self.pool_options()
            .connect_lazy_with(self.connect_options())
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.max_connections == 0 {
            return Err(SettingsError::Invalid(
                "database.max_connections must be > 0".into(),
            ));
        }
        if self.database_name.is_empty() {
            return Err(SettingsError::Invalid(
                "database.database_name must be set".into(),
            ));
        }
        Ok(())
    }
}

/// How a resource server checks access tokens issued by `auth`.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// `auth`'s issuer identifier, exactly as in its discovery document.
    pub issuer: String,
    /// The audience tokens must name: this service.
    pub audience: String,
    /// Where auth's JWKS is. Unset: through this service's sidecar (Dapr
    /// service invocation of app `auth`), the platform's internal path.
    #[serde(default)]
    pub jwks_url: Option<String>,
}

impl AuthSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.issuer.is_empty() || self.audience.is_empty() {
            return Err(SettingsError::Invalid(
                "auth.issuer and auth.audience must be set".into(),
            ));
        }
        Ok(())
    }

    /// `jwks_url`, or auth's JWKS through the sidecar at `dapr`.
    pub fn jwks_url_via(&self, dapr: &DaprSettings) -> String {
        self.jwks_url.clone().unwrap_or_else(|| {
            format!(
                "{}/v1.0/invoke/auth/method/oauth2/jwks",
                dapr.http_endpoint()
            )
        })
    }
}
