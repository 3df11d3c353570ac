//! The timeout hierarchy (docs/adr/0026-timeout-hierarchy.md), checked
//! against the files that set it: the Resiliency policies
//! (dapr-config/resiliency/*.yaml), the pub/sub components
//! (components/*/*.yaml) and each service's settings, loaded through its own
//! `Settings` type from `services/<service>/config` for every environment
//! that has a file there.
//!
//! Each link of a chain must hold with a margin: the outer value is at least
//! the inner budget plus `max(1 s, 10 %)`. A budget is what Dapr may spend on
//! one call: attempts × the policy's per-attempt timeout + the largest
//! back-off between the attempts. Dapr's exponential back-off is
//! cenkalti/backoff's (dapr/kit `retry.DefaultConfig`): the interval starts
//! at 500 ms and grows × 1.5, capped at `maxInterval`, and each wait is that
//! interval ± 50 % jitter, so the longest wait is 1.5 × the interval.
//!
//! No sidecar, no network: it reads files, and runs with `cargo test`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use platform_settings::{ServerSettings, Source};
use serde::de::DeserializeOwned;
use serde_yaml::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

// ---- durations -------------------------------------------------------------

/// A Go duration as Dapr parses it (`time.ParseDuration`): `500ms`, `5s`,
/// `1m30s`, `1.5h`; `0` alone is zero.
fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut rest = text;
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{text:?}: number without a unit"))?;
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("{text:?}: bad number {:?}", &rest[..number_len]))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            other => return Err(format!("{text:?}: unknown unit {other:?}")),
        };
        total_nanos += number * nanos_per_unit;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_nanos(total_nanos.round() as u64))
}

/// A duration in a component's metadata: a Go duration, or a bare number of
/// milliseconds (dapr/kit `metadata` decoding, e.g. `redeliverInterval: "5000"`).
fn parse_metadata_duration(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<u64>() {
        Ok(ms) => Ok(Duration::from_millis(ms)),
        Err(_) => parse_go_duration(text),
    }
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

// ---- Dapr's Resiliency -----------------------------------------------------

const INITIAL_INTERVAL: Duration = Duration::from_millis(500);
const MULTIPLIER: f64 = 1.5;
const RANDOMIZATION: f64 = 0.5;
const DEFAULT_MAX_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_CONSTANT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
enum Backoff {
    Constant(Duration),
    Exponential { max_interval: Duration },
}

#[derive(Debug, Clone)]
struct Retry {
    backoff: Backoff,
    /// -1: for ever.
    max_retries: i64,
}

impl Retry {
    /// The longest total wait between `max_retries + 1` attempts.
    fn backoff_max(&self) -> Option<Duration> {
        let retries = u32::try_from(self.max_retries).ok()?;
        Some(match &self.backoff {
            Backoff::Constant(d) => *d * retries,
            Backoff::Exponential { max_interval } => {
                let mut interval = INITIAL_INTERVAL;
                let mut total = Duration::ZERO;
                for _ in 0..retries {
                    total += interval.mul_f64(1.0 + RANDOMIZATION);
                    interval = if interval.as_secs_f64() >= max_interval.as_secs_f64() / MULTIPLIER
                    {
                        *max_interval
                    } else {
                        interval.mul_f64(MULTIPLIER)
                    };
                }
                total
            }
        })
    }
}

/// The policy names of one target direction.
#[derive(Debug, Clone, Default)]
struct Target {
    timeout: Option<String>,
    retry: Option<String>,
}

/// Every Resiliency resource of dapr-config/resiliency, merged.
#[derive(Debug, Default)]
struct Resiliency {
    timeouts: BTreeMap<String, Duration>,
    retries: BTreeMap<String, Retry>,
    apps: BTreeMap<String, Target>,
    inbound: BTreeMap<String, Target>,
    outbound: BTreeMap<String, Target>,
}

/// What Dapr may spend on one call under a target's policies.
#[derive(Debug, Clone)]
struct Budget {
    total: Duration,
    how: String,
}

impl Budget {
    fn plus(self, other: &Budget) -> Budget {
        Budget {
            total: self.total + other.total,
            how: format!("{} + {}", self.how, other.how),
        }
    }
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn target(value: Option<&Value>) -> Target {
    let Some(value) = value else {
        return Target::default();
    };
    Target {
        timeout: text(value, "timeout").map(ToOwned::to_owned),
        retry: text(value, "retry").map(ToOwned::to_owned),
    }
}

impl Resiliency {
    fn load(dir: &Path) -> Resiliency {
        let mut merged = Resiliency::default();
        for file in yaml_files(dir) {
            for doc in documents(&file) {
                if text(&doc, "kind") != Some("Resiliency") {
                    continue;
                }
                let where_ = file.display().to_string();
                let policies = &doc["spec"]["policies"];
                if let Some(map) = policies["timeouts"].as_mapping() {
                    for (name, value) in map {
                        let name = name.as_str().unwrap_or_default().to_owned();
                        let value = value.as_str().unwrap_or_default();
                        let parsed = parse_go_duration(value)
                            .unwrap_or_else(|e| panic!("{where_}: timeout {name}: {e}"));
                        merged.timeouts.insert(name, parsed);
                    }
                }
                if let Some(map) = policies["retries"].as_mapping() {
                    for (name, value) in map {
                        let name = name.as_str().unwrap_or_default().to_owned();
                        let duration = |key: &str, default: Duration| {
                            text(value, key).map_or(Ok(default), parse_go_duration)
                        };
                        let backoff = match text(value, "policy") {
                            Some("exponential") => Backoff::Exponential {
                                max_interval: duration("maxInterval", DEFAULT_MAX_INTERVAL)
                                    .unwrap_or_else(|e| panic!("{where_}: retry {name}: {e}")),
                            },
                            _ => Backoff::Constant(
                                duration("duration", DEFAULT_CONSTANT)
                                    .unwrap_or_else(|e| panic!("{where_}: retry {name}: {e}")),
                            ),
                        };
                        let max_retries = value["maxRetries"].as_i64().unwrap_or(-1);
                        merged.retries.insert(
                            name,
                            Retry {
                                backoff,
                                max_retries,
                            },
                        );
                    }
                }
                let targets = &doc["spec"]["targets"];
                if let Some(map) = targets["apps"].as_mapping() {
                    for (name, value) in map {
                        let name = name.as_str().unwrap_or_default().to_owned();
                        merged.apps.insert(name, target(Some(value)));
                    }
                }
                if let Some(map) = targets["components"].as_mapping() {
                    for (name, value) in map {
                        let name = name.as_str().unwrap_or_default().to_owned();
                        if value.get("inbound").is_some() {
                            merged
                                .inbound
                                .insert(name.clone(), target(value.get("inbound")));
                        }
                        if value.get("outbound").is_some() {
                            merged.outbound.insert(name, target(value.get("outbound")));
                        }
                    }
                }
            }
        }
        merged
    }

    /// The budget of `label`'s target, or why it has none (no timeout: Dapr
    /// waits for ever; retries for ever).
    fn budget(&self, label: &str, target: Option<&Target>) -> Result<Budget, String> {
        let target = target.ok_or_else(|| format!("{label}: no Resiliency target"))?;
        let timeout_name = target
            .timeout
            .as_deref()
            .ok_or_else(|| format!("{label}: no timeout policy, so no bound"))?;
        let timeout = *self
            .timeouts
            .get(timeout_name)
            .ok_or_else(|| format!("{label}: timeout policy {timeout_name} is not defined"))?;
        let (attempts, backoff, retry_how) = match target.retry.as_deref() {
            None => (1, Duration::ZERO, "no retries".to_owned()),
            Some(name) => {
                let retry = self
                    .retries
                    .get(name)
                    .ok_or_else(|| format!("{label}: retry policy {name} is not defined"))?;
                let backoff = retry
                    .backoff_max()
                    .ok_or_else(|| format!("{label}: retry policy {name} retries for ever"))?;
                let attempts = u32::try_from(retry.max_retries + 1).unwrap_or(u32::MAX);
                (
                    attempts,
                    backoff,
                    format!("{name}: back-off ≤ {}", secs(backoff)),
                )
            }
        };
        Ok(Budget {
            total: timeout * attempts + backoff,
            how: format!(
                "{label} [{attempts} × {timeout_name} {} + {retry_how}] = {}",
                secs(timeout),
                secs(timeout * attempts + backoff)
            ),
        })
    }

    fn app(&self, name: &str) -> Result<Budget, String> {
        self.budget(&format!("app {name}"), self.apps.get(name))
    }

    fn outbound(&self, component: &str) -> Result<Budget, String> {
        self.budget(
            &format!("{component} outbound"),
            self.outbound.get(component),
        )
    }

    fn inbound(&self, component: &str) -> Result<Budget, String> {
        self.budget(&format!("{component} inbound"), self.inbound.get(component))
    }

    /// The per-attempt inbound timeout: how long Dapr waits for the app.
    fn inbound_timeout(&self, component: &str) -> Result<(Duration, String), String> {
        let name = self
            .inbound
            .get(component)
            .and_then(|t| t.timeout.clone())
            .ok_or_else(|| format!("{component} inbound: no timeout policy"))?;
        let timeout = self
            .timeouts
            .get(&name)
            .ok_or_else(|| format!("{component} inbound: timeout {name} is not defined"))?;
        Ok((*timeout, format!("{component} inbound timeout {name}")))
    }
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

fn documents(file: &Path) -> Vec<Value> {
    let content =
        std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_yaml::Deserializer::from_str(&content)
        .map(|doc| {
            serde::Deserialize::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        })
        .collect()
}

/// `processingTimeout` of every Redis pub/sub component, by overlay
/// (`local`, `compose`, …) and component name.
fn processing_timeouts() -> Vec<(String, String, Duration)> {
    let mut found = Vec::new();
    let components = repo().join("components");
    let overlays = std::fs::read_dir(&components).unwrap_or_else(|e| panic!("components/: {e}"));
    for overlay in overlays.flatten() {
        if !overlay.path().is_dir() {
            continue;
        }
        for file in yaml_files(&overlay.path()) {
            for doc in documents(&file) {
                let kind = doc["spec"]["type"].as_str().unwrap_or_default();
                if !kind.starts_with("pubsub.redis") {
                    continue;
                }
                let name = doc["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let processing = doc["spec"]["metadata"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .find(|m| m["name"].as_str() == Some("processingTimeout"))
                    .and_then(|m| m["value"].as_str())
                    // The component's default.
                    .map_or(Ok(Duration::from_secs(60)), parse_metadata_duration)
                    .unwrap_or_else(|e| panic!("{}: processingTimeout: {e}", file.display()));
                found.push((
                    overlay.file_name().to_string_lossy().into_owned(),
                    name,
                    processing,
                ));
            }
        }
    }
    found
}

// ---- the chains ------------------------------------------------------------

/// The smallest outer value that covers `inner` with a margin.
fn with_margin(inner: Duration) -> Duration {
    inner + (inner / 10).max(Duration::from_secs(1))
}

#[derive(Debug, Default)]
struct Report {
    checked: Vec<String>,
    broken: Vec<String>,
}

impl Report {
    /// `outer` (named `outer_name`) must cover `inner` with the margin.
    fn link(
        &mut self,
        chain: &str,
        inner: Result<Budget, String>,
        outer_name: &str,
        outer: Duration,
    ) {
        let inner = match inner {
            Ok(inner) => inner,
            Err(why) => {
                self.broken.push(format!("{chain}: {why}"));
                return;
            }
        };
        let needed = with_margin(inner.total);
        let line = format!(
            "{chain}: {outer_name} = {} must be ≥ {} ({} + margin)",
            secs(outer),
            secs(needed),
            inner.how
        );
        if outer >= needed {
            self.checked.push(line);
        } else {
            self.broken.push(line);
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} link(s) of the timeout hierarchy are broken (docs/adr/0026-timeout-hierarchy.md):",
            self.broken.len()
        )?;
        for line in &self.broken {
            writeln!(f, "  ✗ {line}")?;
        }
        writeln!(f, "holding:")?;
        for line in &self.checked {
            writeln!(f, "  ✓ {line}")?;
        }
        Ok(())
    }
}

fn ms(value: u64) -> Duration {
    Duration::from_millis(value)
}

fn fixed(how: &str, total: Duration) -> Budget {
    Budget {
        total,
        how: format!("{how} {}", secs(total)),
    }
}

/// `server.shutdown_grace_ms` covers every route deadline of the service.
fn drains(report: &mut Report, chain: &str, server: &ServerSettings, deadlines: &[(&str, u64)]) {
    for (name, deadline) in deadlines {
        report.link(
            &format!("{chain} shutdown"),
            Ok(fixed(name, ms(*deadline))),
            "server.shutdown_grace_ms",
            ms(server.shutdown_grace_ms),
        );
    }
}

/// The environments a service has settings files for (`base` alone is `local`).
/// Routes that `pubsub` delivers to: a rejected event is published to its
/// dead-letter topic through the sidecar before the delivery is answered,
/// and Dapr's inbound timeout must outlast the route's own deadline.
fn event_routes(report: &mut Report, resiliency: &Resiliency, chain: &str, deadline: Duration) {
    report.link(
        chain,
        resiliency.outbound("pubsub"),
        "events.route_timeout_ms",
        deadline,
    );
    report.link(
        chain,
        Ok(fixed("events.route_timeout_ms", deadline)),
        "pubsub inbound timeout",
        resiliency
            .inbound_timeout("pubsub")
            .map_or(Duration::ZERO, |(t, _)| t),
    );
}

fn environments(service: &str) -> Vec<(String, Source)> {
    let dir = repo().join("services").join(service).join("config");
    let mut envs = vec!["local".to_owned()];
    for file in std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
    {
        let name = file.file_name().to_string_lossy().into_owned();
        if let Some(env) = name.strip_suffix(".toml")
            && env != "base"
            && env != "local"
        {
            envs.push(env.to_owned());
        }
    }
    envs.into_iter()
        .map(|env| {
            (
                format!("{service} ({env})"),
                Source {
                    config_dir: dir.clone(),
                    environment: env,
                },
            )
        })
        .collect()
}

fn settings<S: DeserializeOwned>(source: &Source) -> S {
    // Unvalidated: production's settings refuse local secrets, which has
    // nothing to do with their timeouts.
    platform_settings::load(source)
        .unwrap_or_else(|e| panic!("{}: {e}", source.config_dir.display()))
}

fn check(resiliency: &Resiliency) -> Report {
    let mut report = Report::default();

    for (chain, source) in environments("payments") {
        let s: payments::settings::Settings = settings(&source);
        report.link(
            &format!("{chain} provider call"),
            resiliency.app(&s.provider.endpoint),
            "provider.timeout_ms",
            s.provider.timeout(),
        );
        // After the provider answered, the answer is saved (one state
        // transaction; no retries on payments-state).
        report.link(
            &format!("{chain} provider routes"),
            resiliency
                .outbound(&s.payments.state_store)
                .map(|save| fixed("provider.timeout_ms", s.provider.timeout()).plus(&save)),
            "provider.route_timeout_ms",
            s.provider.route_timeout(),
        );
        report.link(
            &format!("{chain} plain routes"),
            resiliency.outbound(&s.payments.state_store),
            "server.request_timeout_ms",
            s.server.request_timeout(),
        );
        drains(
            &mut report,
            &chain,
            &s.server,
            &[
                ("server.request_timeout_ms", s.server.request_timeout_ms),
                ("provider.route_timeout_ms", s.provider.route_timeout_ms),
            ],
        );
    }

    for (chain, source) in environments("communication") {
        let s: communication::settings::Settings = settings(&source);
        let c = &s.channels;
        // The slowest channel: email alone, SMS primary then secondary (a
        // retriable failure fails over at once), push alone.
        let sms = resiliency.outbound(&c.sms_primary_binding).and_then(|p| {
            resiliency
                .outbound(&c.sms_secondary_binding)
                .map(|s| p.plus(&s))
        });
        let slowest = [
            resiliency.outbound(&c.email_binding),
            sms,
            resiliency.outbound(&c.push_binding),
        ]
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map(|budgets| {
            budgets
                .into_iter()
                .max_by_key(|b| b.total)
                .unwrap_or_else(|| unreachable!("three channels"))
        });
        report.link(
            &format!("{chain} /jobs/send"),
            slowest,
            "sending.route_timeout_ms",
            s.sending.route_timeout(),
        );
        report.link(
            &format!("{chain} /jobs/send"),
            Ok(fixed("sending.route_timeout_ms", s.sending.route_timeout())),
            "communication-queue inbound timeout",
            resiliency
                .inbound_timeout("communication-queue")
                .map_or(Duration::ZERO, |(t, _)| t),
        );
        report.link(
            &format!("{chain} send claims"),
            Ok(fixed("sending.route_timeout_ms", s.sending.route_timeout())),
            "sending.stale_after_secs",
            Duration::from_secs(s.sending.stale_after_secs.unsigned_abs()),
        );
        event_routes(
            &mut report,
            resiliency,
            &format!("{chain} /events/*, /deadletters/*"),
            s.events.route_timeout(),
        );
        drains(
            &mut report,
            &chain,
            &s.server,
            &[
                ("server.request_timeout_ms", s.server.request_timeout_ms),
                ("events.route_timeout_ms", s.events.route_timeout_ms),
                ("sending.route_timeout_ms", s.sending.route_timeout_ms),
            ],
        );
    }

    for (chain, source) in environments("bookkeeping") {
        let s: bookkeeping::settings::Settings = settings(&source);
        event_routes(
            &mut report,
            resiliency,
            &format!("{chain} /events/payments, /deadletters/payments, /jobs/statements"),
            s.events.route_timeout(),
        );
        drains(
            &mut report,
            &chain,
            &s.server,
            &[
                ("server.request_timeout_ms", s.server.request_timeout_ms),
                ("events.route_timeout_ms", s.events.route_timeout_ms),
            ],
        );
    }

    // A message still being retried by Dapr must not be claimed again by
    // the stream's redelivery.
    for (overlay, component, processing) in processing_timeouts() {
        report.link(
            &format!("components/{overlay}/{component} redelivery"),
            resiliency.inbound(&component),
            "processingTimeout",
            processing,
        );
    }
    report
}

#[test]
fn every_deadline_covers_the_budget_beneath_it() {
    let resiliency = Resiliency::load(&repo().join("dapr-config/resiliency"));
    let report = check(&resiliency);
    assert!(report.broken.is_empty(), "{report}");
    assert!(!report.checked.is_empty(), "nothing was checked");
}

#[test]
fn go_durations_parse_like_dapr() {
    assert_eq!(parse_go_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_go_duration("5s"), Ok(Duration::from_secs(5)));
    assert_eq!(parse_go_duration("1m"), Ok(Duration::from_secs(60)));
    assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_go_duration("1.5h"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
    assert!(parse_go_duration("5").is_err());
    assert!(parse_go_duration("5 sec").is_err());
    assert_eq!(parse_metadata_duration("5000"), Ok(Duration::from_secs(5)));
    assert_eq!(parse_metadata_duration("2m"), Ok(Duration::from_secs(120)));
}

#[test]
fn exponential_backoff_follows_dapr() {
    let capped = |max_interval: u64, max_retries| Retry {
        backoff: Backoff::Exponential {
            max_interval: Duration::from_millis(max_interval),
        },
        max_retries,
    };
    // Intervals 0.5, 0.5 (capped): waits ≤ 0.75 + 0.75.
    assert_eq!(
        capped(500, 2).backoff_max(),
        Some(Duration::from_millis(1500))
    );
    // Intervals 0.5, 0.75, 1.125, 1.6875: waits ≤ 1.5 × 4.0625.
    assert_eq!(
        capped(10_000, 4).backoff_max(),
        Some(Duration::from_micros(6_093_750))
    );
    // Intervals 0.5 … 3.796875, then 5, 5 (capped): 1.5 × 20.390625.
    assert_eq!(
        capped(5_000, 8).backoff_max(),
        Some(Duration::from_nanos(30_585_937_500))
    );
    assert_eq!(capped(5_000, -1).backoff_max(), None);
    let constant = Retry {
        backoff: Backoff::Constant(Duration::from_secs(1)),
        max_retries: 3,
    };
    assert_eq!(constant.backoff_max(), Some(Duration::from_secs(3)));
}
