use std::fs;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::*;

#[derive(Debug, Deserialize)]
struct Sample {
    server: ServerSettings,
    database: DatabaseSettings,
}

const BASE: &str = r#"
[server]
host = "127.0.0.1"
port = 8000
request_timeout_ms = 1000
shutdown_grace_ms = 2000

[database]
host = "localhost"
port = 5432
username = "svc"
password = "base-secret"
database_name = "svc"
require_ssl = false
max_connections = 5
acquire_timeout_ms = 1000
"#;

#[test]
fn environment_file_overrides_base_and_secrets_do_not_print() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("base.toml"), BASE).unwrap();
    fs::write(
        dir.path().join("production.toml"),
        "[server]\nport = 9000\n",
    )
    .unwrap();
    let source = Source {
        config_dir: dir.path().into(),
        environment: "production".into(),
    };

    let s: Sample = load(&source).unwrap();

    assert_eq!(s.server.port, 9000);
    assert_eq!(s.database.password.expose_secret(), "base-secret");
    assert!(!format!("{s:?}").contains("base-secret"));
}

#[test]
fn missing_base_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let source = Source {
        config_dir: dir.path().into(),
        environment: "local".into(),
    };
    assert!(load::<Sample>(&source).is_err());
}

#[test]
fn zero_request_timeout_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("base.toml"),
        BASE.replace("request_timeout_ms = 1000", "request_timeout_ms = 0"),
    )
    .unwrap();
    let source = Source {
        config_dir: dir.path().into(),
        environment: "local".into(),
    };
    let s: Sample = load(&source).unwrap();
    assert!(s.server.validate().is_err());
}

#[test]
fn a_deadline_that_outlives_the_shutdown_grace_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("base.toml"), BASE).unwrap();
    let source = Source {
        config_dir: dir.path().into(),
        environment: "local".into(),
    };
    let s: Sample = load(&source).unwrap();
    assert!(
        s.server
            .validate_route_deadline("x.route_timeout_ms", 1999)
            .is_ok()
    );
    let Err(SettingsError::Invalid(message)) =
        s.server.validate_route_deadline("x.route_timeout_ms", 2000)
    else {
        panic!("a deadline equal to the grace is accepted");
    };
    assert!(message.contains("x.route_timeout_ms"), "{message}");
}

impl Validate for Sample {
    fn validate(&self) -> Result<(), SettingsError> {
        self.server.validate()?;
        self.database.validate()
    }

    fn secrets(&self) -> Vec<SecretSetting<'_>> {
        vec![SecretSetting::new(
            "database.password",
            &self.database.password,
        )]
    }
}

#[test]
fn source_load_validates() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("base.toml"), BASE).unwrap();
    let source = Source {
        config_dir: dir.path().into(),
        environment: "local".into(),
    };
    let s: Sample = source.load().unwrap();
    assert_eq!(s.server.port, 8000);

    fs::write(
        dir.path().join("base.toml"),
        BASE.replace("request_timeout_ms = 1000", "request_timeout_ms = 0"),
    )
    .unwrap();
    assert!(matches!(
        source.load::<Sample>(),
        Err(SettingsError::Invalid(_))
    ));
}

#[test]
fn production_refuses_development_secrets_by_name_and_variable() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("base.toml"),
        BASE.replace("base-secret", "bookkeeping"),
    )
    .unwrap();
    let local = Source {
        config_dir: dir.path().into(),
        environment: "local".into(),
    };
    let production = Source {
        environment: PRODUCTION.into(),
        ..local.clone()
    };
    assert!(local.load::<Sample>().is_ok());

    let Err(SettingsError::Invalid(message)) = production.load::<Sample>() else {
        panic!("production accepted a development password");
    };
    assert!(message.contains("database.password"), "{message}");
    assert!(message.contains("APP__DATABASE__PASSWORD"), "{message}");
    assert!(
        !message.contains("bookkeeping"),
        "the value is printed: {message}"
    );

    let mut s: Sample = local.load().unwrap();
    s.database.password = SecretString::from("  ");
    assert!(production.validate(&s).is_err(), "an empty secret passes");
    s.database.password = SecretString::from("a-real-secret-from-the-store");
    assert!(production.validate(&s).is_ok());
}

#[test]
fn every_development_secret_is_refused_and_an_unset_optional_one_passes() {
    for value in DEVELOPMENT_SECRETS {
        let secret = SecretString::from(*value);
        let result = refuse_development_secrets(&[
            SecretSetting::optional("oauth.bootstrap_admin_secret", None),
            SecretSetting::optional("providers.receipt_secret", Some(&secret)),
        ]);
        let Err(SettingsError::Invalid(message)) = result else {
            panic!("{value} passes");
        };
        assert!(
            message.contains("providers.receipt_secret (set APP__PROVIDERS__RECEIPT_SECRET)")
                && !message.contains("bootstrap"),
            "{message}"
        );
    }
}

#[test]
fn production_requires_both_sidecar_tokens_and_names_their_variables() {
    let mut dapr = DaprSettings {
        host: "127.0.0.1".into(),
        http_port: 3500,
        grpc_port: 50001,
        api_token: None,
        app_token: None,
        probe_timeout_ms: 1000,
    };
    let Err(SettingsError::Invalid(message)) = refuse_development_secrets(&dapr.secrets()) else {
        panic!("production accepted sidecars without tokens");
    };
    assert!(
        message.contains("dapr.api_token (set DAPR_API_TOKEN)")
            && message.contains("dapr.app_token (set APP_API_TOKEN)"),
        "{message}"
    );
    dapr.api_token = Some(SecretString::from("a-random-api-token"));
    dapr.app_token = Some(SecretString::from(" "));
    let Err(SettingsError::Invalid(message)) = refuse_development_secrets(&dapr.secrets()) else {
        panic!("production accepted an empty app token");
    };
    assert!(
        message.contains("dapr.app_token") && !message.contains("dapr.api_token"),
        "{message}"
    );
    dapr.app_token = Some(SecretString::from("a-random-app-token"));
    refuse_development_secrets(&dapr.secrets()).unwrap();
}
