//! `contracts/asyncapi.yaml` read as data, and what it is checked against:
//! the event types the services' code names, and the dead-letter topics of
//! the Dapr subscriptions (`dapr-config/subscriptions/`). The AsyncAPI
//! document itself is validated by the real AsyncAPI parser
//! (`@asyncapi/cli validate`, `make contracts-check`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regex::Regex;
use serde_json::Value;

use crate::repo_root;

/// The document as JSON.
pub fn document() -> Value {
    let path = repo_root().join("contracts/asyncapi.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("asyncapi.yaml: {e}"));
    serde_json::to_value(yaml).unwrap_or_else(|e| panic!("asyncapi.yaml: {e}"))
}

/// `components.messages`: key → (message `name` = CloudEvent type, payload `$ref`).
pub fn messages(doc: &Value) -> BTreeMap<String, (String, String)> {
    doc["components"]["messages"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(key, message)| {
                    (
                        key.clone(),
                        (
                            message["name"].as_str().unwrap_or_default().to_owned(),
                            message["payload"]["$ref"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every channel: address → the CloudEvent types of its messages.
pub fn channels(doc: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let messages = messages(doc);
    let mut out = BTreeMap::new();
    for channel in doc["channels"]
        .as_object()
        .into_iter()
        .flat_map(|c| c.values())
    {
        let address = channel["address"].as_str().unwrap_or_default().to_owned();
        let types: BTreeSet<String> = channel["messages"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(|m| m["$ref"].as_str())
            .filter_map(|r| r.strip_prefix("#/components/messages/"))
            .filter_map(|key| messages.get(key).map(|(name, _)| name.clone()))
            .collect();
        out.insert(address, types);
    }
    out
}

/// One Dapr subscription: `(app, topic, deadLetterTopic)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub file: String,
    pub apps: Vec<String>,
    pub topic: String,
    pub dead_letter_topic: Option<String>,
}

/// Every subscription in `dapr-config/subscriptions/*.yaml`.
pub fn subscriptions() -> Vec<Subscription> {
    let dir = repo_root().join("dapr-config/subscriptions");
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for document in serde_yaml::Deserializer::from_str(&text) {
            let Ok(doc) = <serde_yaml::Value as serde::Deserialize>::deserialize(document) else {
                continue;
            };
            let Ok(doc) = serde_json::to_value(doc) else {
                continue;
            };
            if doc["kind"] != "Subscription" {
                continue;
            }
            out.push(Subscription {
                file: file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                apps: doc["scopes"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                topic: doc["spec"]["topic"].as_str().unwrap_or_default().to_owned(),
                dead_letter_topic: doc["spec"]["deadLetterTopic"].as_str().map(str::to_owned),
            });
        }
    }
    out
}

/// The services (directories under `services/`).
pub fn services() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(repo_root().join("services"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// The production source of a service or crate: `src/**/*.rs` up to each
/// file's `#[cfg(test)]` (test-only files, `*tests.rs`, left out), and
/// `migrations/*.sql`.
fn production_sources(dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path.to_string_lossy().into_owned();
        if path.is_dir() {
            if !name.ends_with("/tests") && !name.ends_with("/benches") {
                production_sources(&path, out);
            }
        } else if name.ends_with(".rs") && !name.ends_with("tests.rs") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let production = text.split("#[cfg(test)]").next().unwrap_or_default();
            out.push((name, production.to_owned()));
        } else if name.ends_with(".sql") {
            out.push((name, std::fs::read_to_string(&path).unwrap_or_default()));
        }
    }
}

/// What the code of `service` names as event types: string literals of the
/// form `<service>.<entity>.<happening>` (e.g. `"payments.payment.created"`,
/// `'communication.notification.status_changed'` in SQL), and the
/// placeholders of `format!("bookings.booking.{state}")` as patterns.
/// Addresses of topics (`communication.sends.deadletter`) are not types and
/// are left out by the caller.
pub fn types_named_in_code(service: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut sources = Vec::new();
    let root = repo_root().join("services").join(service);
    production_sources(&root.join("src"), &mut sources);
    production_sources(&root.join("migrations"), &mut sources);
    let literal = Regex::new(
        r#"["']((?:payments|bookkeeping|communication|bookings)\.[a-z_{}]+\.[a-z_{}]+)["']"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut types = BTreeSet::new();
    let mut patterns = BTreeSet::new();
    for (_, text) in sources {
        for capture in literal.captures_iter(&text) {
            let found = capture[1].to_owned();
            if found.contains('{') {
                patterns.insert(found);
            } else {
                types.insert(found);
            }
        }
        // A consumer that dead-letters with a reason publishes
        // `<service>.event.rejected` (platform_consumer::DeadLetter).
        if text.contains("DeadLetter::new(") {
            types.insert(format!("{service}.event.rejected"));
        }
    }
    (types, patterns)
}

/// Does `pattern` (with `{placeholder}`s) match `name`?
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let placeholder = Regex::new(r"\{[^}]*\}").unwrap_or_else(|e| panic!("{e}"));
    let expression = placeholder
        .split(pattern)
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join("[a-z_]+");
    Regex::new(&format!("^{expression}$")).is_ok_and(|r| r.is_match(name))
}
