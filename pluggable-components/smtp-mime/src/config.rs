//! A component instance's configuration: the `spec.metadata` of a
//! `bindings.smtp-mime` component, as daprd passes it to `Init`.
//!
//! Names are those of Dapr's `bindings.smtp` where they overlap, matched
//! case-insensitively (as Dapr decodes component metadata). Unknown names are
//! refused so that a typo (`emailFrm`) fails at start-up instead of silently
//! sending with defaults.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use lettre::message::Mailbox;

use crate::address::{parse_list, parse_one};

/// SMTP transport security.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// STARTTLS when the server offers it, plain text otherwise (default).
    Opportunistic,
    /// STARTTLS, or the session fails (no reply → `Unavailable`).
    Required,
    /// TLS from the first byte (SMTPS, usually port 465).
    Wrapper,
    /// Plain text only (a trusted local relay or a test catcher).
    None,
}

/// Values a request may override; the component's metadata sets them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Defaults {
    pub from: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
    pub subject: Option<String>,
    pub priority: Option<u8>,
}

/// A validated component configuration.
#[derive(Clone, PartialEq)]
pub struct ComponentConfig {
    pub host: String,
    pub port: u16,
    /// `user` and `password`, both or neither.
    pub credentials: Option<(String, String)>,
    pub skip_tls_verify: bool,
    pub tls: TlsMode,
    /// Most SMTP sessions open at once (and kept open between sends).
    pub pool_size: u32,
    /// Bound on connecting and on each SMTP reply.
    pub timeout: Duration,
    /// The name sent with `EHLO`; `None`: this machine's host name.
    pub helo_name: Option<String>,
    pub defaults: Defaults,
}

impl fmt::Debug for ComponentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ComponentConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .field("skip_tls_verify", &self.skip_tls_verify)
            .field("tls", &self.tls)
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .field("helo_name", &self.helo_name)
            .field("defaults", &self.defaults)
            .finish_non_exhaustive()
    }
}

/// Why `Init` refused the metadata; the text names the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("smtp-mime: invalid component metadata: {0}")]
pub struct ConfigError(String);

const DEFAULT_POOL_SIZE: u32 = 8;
const MAX_POOL_SIZE: u32 = 256;
const DEFAULT_TIMEOUT_SECONDS: u64 = 10;
const MAX_TIMEOUT_SECONDS: u64 = 300;

const KNOWN: &[&str] = &[
    "host",
    "port",
    "user",
    "password",
    "skipTLSVerify",
    "emailFrom",
    "emailTo",
    "emailCC",
    "emailBCC",
    "subject",
    "priority",
    "tls",
    "poolSize",
    "timeoutSeconds",
    "heloName",
    // Generic binding metadata that daprd itself reads.
    "direction",
    "route",
];

impl ComponentConfig {
    pub fn from_metadata(properties: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut unknown: Vec<&str> = properties
            .keys()
            .map(String::as_str)
            .filter(|key| !KNOWN.iter().any(|k| k.eq_ignore_ascii_case(key)))
            .collect();
        if !unknown.is_empty() {
            unknown.sort_unstable();
            return Err(ConfigError(format!(
                "unknown metadata {unknown:?} (known: {KNOWN:?})"
            )));
        }
        let mut keys: Vec<String> = properties.keys().map(|k| k.to_ascii_lowercase()).collect();
        keys.sort_unstable();
        if let Some(pair) = keys.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(ConfigError(format!(
                "{}: given several times in different letter case",
                pair[0]
            )));
        }
        let get = |name: &str| -> Option<&str> {
            properties
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.trim())
                .filter(|value| !value.is_empty())
        };
        let invalid = |name: &str, why: String| ConfigError(format!("{name}: {why}"));

        let host = get("host")
            .ok_or_else(|| invalid("host", "is required".into()))?
            .to_owned();
        if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("host", format!("{host:?} is not a host name")));
        }
        let port = get("port")
            .ok_or_else(|| invalid("port", "is required".into()))?
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| invalid("port", "must be a port number (1-65535)".into()))?;
        let credentials = match (get("user"), properties_value(properties, "password")) {
            (Some(user), Some(password)) => Some((user.to_owned(), password.to_owned())),
            (None, None) => None,
            (Some(_), None) => return Err(invalid("password", "is required with user".into())),
            (None, Some(_)) => return Err(invalid("user", "is required with password".into())),
        };
        let skip_tls_verify = match get("skipTLSVerify") {
            None => false,
            Some(v) => parse_bool(v)
                .ok_or_else(|| invalid("skipTLSVerify", format!("{v:?} is not true or false")))?,
        };
        let tls = match get("tls").map(str::to_ascii_lowercase).as_deref() {
            None | Some("opportunistic") => TlsMode::Opportunistic,
            Some("required") => TlsMode::Required,
            Some("wrapper") => TlsMode::Wrapper,
            Some("none") => TlsMode::None,
            Some(other) => {
                return Err(invalid(
                    "tls",
                    format!("{other:?} is not one of opportunistic, required, wrapper, none"),
                ));
            }
        };
        if credentials.is_some() && tls == TlsMode::None {
            return Err(invalid(
                "tls",
                "none would send the password in plain text; use opportunistic or required".into(),
            ));
        }
        let pool_size = match get("poolSize") {
            None => DEFAULT_POOL_SIZE,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_POOL_SIZE).contains(n))
                .ok_or_else(|| invalid("poolSize", format!("must be 1-{MAX_POOL_SIZE}")))?,
        };
        let timeout = match get("timeoutSeconds") {
            None => DEFAULT_TIMEOUT_SECONDS,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=MAX_TIMEOUT_SECONDS).contains(n))
                .ok_or_else(|| {
                    invalid("timeoutSeconds", format!("must be 1-{MAX_TIMEOUT_SECONDS}"))
                })?,
        };
        let helo_name = get("heloName")
            .map(|name| {
                if name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c))
                {
                    Ok(name.to_owned())
                } else {
                    Err(invalid(
                        "heloName",
                        format!("{name:?} is not a domain name"),
                    ))
                }
            })
            .transpose()?;

        let list = |name: &str| get(name).map_or(Ok(Vec::new()), parse_list);
        let defaults = Defaults {
            from: get("emailFrom")
                .map(parse_one)
                .transpose()
                .map_err(|e| invalid("emailFrom", e))?,
            to: list("emailTo").map_err(|e| invalid("emailTo", e))?,
            cc: list("emailCC").map_err(|e| invalid("emailCC", e))?,
            bcc: list("emailBCC").map_err(|e| invalid("emailBCC", e))?,
            subject: get("subject")
                .map(|s| crate::email::check_header_value(s).map(|()| s.to_owned()))
                .transpose()
                .map_err(|e| invalid("subject", e))?,
            priority: get("priority")
                .map(parse_priority)
                .transpose()
                .map_err(|e| invalid("priority", e))?,
        };

        Ok(Self {
            host,
            port,
            credentials,
            skip_tls_verify,
            tls,
            pool_size,
            timeout: Duration::from_secs(timeout),
            helo_name,
            defaults,
        })
    }
}

/// A password is taken as written (spaces included); other values are trimmed.
fn properties_value<'a>(properties: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    properties
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
        .filter(|value| !value.is_empty())
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// `1` (highest) to `5` (lowest), sent as `X-Priority`.
pub(crate) fn parse_priority(value: &str) -> Result<u8, String> {
    value
        .trim()
        .parse::<u8>()
        .ok()
        .filter(|p| (1..=5).contains(p))
        .ok_or_else(|| format!("{value:?} is not a priority from 1 to 5"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn host_and_port_are_enough() {
        let config =
            ComponentConfig::from_metadata(&metadata(&[("host", "mx.test"), ("port", "2525")]))
                .unwrap();
        assert_eq!(config.host, "mx.test");
        assert_eq!(config.port, 2525);
        assert_eq!(config.tls, TlsMode::Opportunistic);
        assert_eq!(config.pool_size, 8);
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert_eq!(config.credentials, None);
        assert_eq!(config.defaults, Defaults::default());
    }

    #[test]
    fn every_field_is_read_case_insensitively() {
        let config = ComponentConfig::from_metadata(&metadata(&[
            ("host", "mx.test"),
            ("port", "587"),
            ("user", "app"),
            ("password", " s3cret "),
            ("skipTLSVerify", "true"),
            ("EmailFrom", "LISA <no-reply@lisa.test>"),
            ("emailTo", "a@x.test;b@x.test"),
            ("emailCC", "c@x.test"),
            ("emailBCC", "d@x.test"),
            ("subject", "Hello"),
            ("priority", "2"),
            ("tls", "Required"),
            ("poolSize", "3"),
            ("timeoutSeconds", "4"),
            ("heloName", "mailer.lisa.test"),
        ]))
        .unwrap();
        assert_eq!(
            config.credentials,
            Some(("app".to_owned(), " s3cret ".to_owned()))
        );
        assert!(config.skip_tls_verify);
        assert_eq!(config.tls, TlsMode::Required);
        assert_eq!((config.pool_size, config.timeout.as_secs()), (3, 4));
        assert_eq!(config.helo_name.as_deref(), Some("mailer.lisa.test"));
        let d = &config.defaults;
        assert_eq!(
            d.from.as_ref().unwrap().email.to_string(),
            "no-reply@lisa.test"
        );
        assert_eq!((d.to.len(), d.cc.len(), d.bcc.len()), (2, 1, 1));
        assert_eq!(d.subject.as_deref(), Some("Hello"));
        assert_eq!(d.priority, Some(2));
        assert!(!format!("{config:?}").contains("s3cret"), "Debug hides it");
    }

    #[test]
    fn bad_metadata_is_refused_with_the_field_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("port", "25")], "host: is required"),
            (&[("host", "mx.test")], "port: is required"),
            (&[("host", "mx.test"), ("port", "0")], "port:"),
            (&[("host", "mx.test"), ("port", "70000")], "port:"),
            (&[("host", "mx test"), ("port", "25")], "host:"),
            (&[("host", "m"), ("port", "25"), ("user", "u")], "password:"),
            (&[("host", "m"), ("port", "25"), ("password", "p")], "user:"),
            (&[("host", "m"), ("port", "25"), ("tls", "maybe")], "tls:"),
            (
                &[
                    ("host", "m"),
                    ("port", "25"),
                    ("tls", "none"),
                    ("user", "u"),
                    ("password", "p"),
                ],
                "tls:",
            ),
            (
                &[("host", "m"), ("port", "25"), ("poolSize", "0")],
                "poolSize:",
            ),
            (
                &[("host", "m"), ("port", "25"), ("timeoutSeconds", "x")],
                "timeoutSeconds:",
            ),
            (
                &[("host", "m"), ("port", "25"), ("emailFrom", "nope")],
                "emailFrom:",
            ),
            (
                &[("host", "m"), ("port", "25"), ("emailTo", "a@x, ?")],
                "emailTo:",
            ),
            (
                &[("host", "m"), ("port", "25"), ("priority", "9")],
                "priority:",
            ),
            (
                &[("host", "m"), ("port", "25"), ("heloName", "a b")],
                "heloName:",
            ),
            (
                &[
                    ("host", "m"),
                    ("port", "25"),
                    ("subject", "a\r\nBcc: x@y.z"),
                ],
                "subject:",
            ),
            (
                &[("host", "m"), ("port", "25"), ("skipTLSVerify", "sure")],
                "skipTLSVerify:",
            ),
            (
                &[("host", "m"), ("port", "25"), ("emailFrm", "a@x.test")],
                "emailFrm",
            ),
            (
                &[
                    ("host", "m"),
                    ("port", "25"),
                    ("emailTo", "a@x.test"),
                    ("EMAILTO", "a@x.test"),
                ],
                "emailto: given several times in different letter case",
            ),
        ];
        for (pairs, expected) in cases {
            let error = ComponentConfig::from_metadata(&metadata(pairs)).unwrap_err();
            let text = error.to_string();
            assert!(
                text.starts_with("smtp-mime: invalid component metadata: ")
                    && text.contains(expected),
                "{pairs:?}: {text}"
            );
        }
    }

    #[test]
    fn generic_binding_metadata_is_allowed() {
        assert!(
            ComponentConfig::from_metadata(&metadata(&[
                ("host", "m"),
                ("port", "25"),
                ("direction", "output"),
            ]))
            .is_ok()
        );
    }
}
