//! The event contracts as tests use them: `contracts/events/<type>.schema.json`
//! (the CloudEvent `data` of each type, with `examples`),
//! `contracts/events/envelope.schema.json` (the CloudEvent as Dapr delivers
//! it) and `contracts/asyncapi.yaml` (which channel carries which type).
//!
//! Producers' tests validate what they publish ([`assert_valid`],
//! [`assert_valid_envelope`]); consumers' tests feed themselves every
//! example ([`examples`]); `make contracts-check` runs this crate's own tests
//! (the schemas, the AsyncAPI against the code and the subscriptions, the
//! evolution rules against `contracts/events/baseline/`). Test-only: no
//! service links it in production.

pub mod asyncapi;
pub mod evolution;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

/// The envelope schema's file stem (not an event type).
pub const ENVELOPE: &str = "envelope";

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `contracts/events`.
pub fn events_dir() -> PathBuf {
    repo_root().join("contracts/events")
}

/// Reads a JSON file; panics with the path (a test helper).
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The `<stem>.schema.json` files of `dir`, by stem.
pub fn schemas_in(dir: &Path) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".schema.json") {
            out.insert(stem.to_owned(), read_json(&entry.path()));
        }
    }
    out
}

/// Every event type with a schema (the envelope excluded), sorted.
pub fn event_types() -> Vec<String> {
    schemas_in(&events_dir())
        .into_keys()
        .filter(|stem| stem != ENVELOPE)
        .collect()
}

/// The schema of `event_type` (or [`ENVELOPE`]); panics if there is none.
pub fn schema(event_type: &str) -> Value {
    let path = events_dir().join(format!("{event_type}.schema.json"));
    assert!(
        path.exists(),
        "no contract for event type {event_type}: add contracts/events/{event_type}.schema.json"
    );
    read_json(&path)
}

/// The `examples` of `event_type`'s schema (data instances).
pub fn examples(event_type: &str) -> Vec<Value> {
    schema(event_type)["examples"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

type Compiled = std::sync::Arc<jsonschema::Validator>;

/// Compiles `schema` (draft 2020-12, `format` asserted: a `uuid` or
/// `date-time` that is not one is an error, as it is for consumers).
pub fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| e.to_string())
}

fn validator(event_type: &str) -> Compiled {
    static CACHE: OnceLock<Mutex<BTreeMap<String, Compiled>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(found) = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(event_type)
    {
        return found.clone();
    }
    let compiled = std::sync::Arc::new(
        compile(&schema(event_type))
            .unwrap_or_else(|e| panic!("the schema of {event_type} does not compile: {e}")),
    );
    cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(event_type.to_owned(), compiled.clone());
    compiled
}

/// Checks `data` against `event_type`'s schema; every violation, one a line.
pub fn validate(event_type: &str, data: &Value) -> Result<(), String> {
    let validator = validator(event_type);
    let errors: Vec<String> = validator
        .iter_errors(data)
        .map(|e| format!("at '{}': {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// Checks a delivered CloudEvent: the envelope against
/// `envelope.schema.json`, then its `data` against the schema of its `type`.
pub fn validate_envelope(envelope: &Value) -> Result<(), String> {
    validate(ENVELOPE, envelope).map_err(|e| format!("envelope: {e}"))?;
    let event_type = envelope["type"].as_str().unwrap_or_default();
    validate(event_type, &envelope["data"]).map_err(|e| format!("data of {event_type}: {e}"))
}

/// Panics (with the violations and the data) unless `data` matches.
pub fn assert_valid(event_type: &str, data: &Value) {
    if let Err(errors) = validate(event_type, data) {
        panic!("{event_type} does not match its contract:\n{errors}\ndata: {data:#}");
    }
}

/// Panics (with the violations and the event) unless `envelope` matches.
pub fn assert_valid_envelope(envelope: &Value) {
    if let Err(errors) = validate_envelope(envelope) {
        panic!("the CloudEvent does not match its contract:\n{errors}\nevent: {envelope:#}");
    }
}
