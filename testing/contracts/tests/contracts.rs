//! `make contracts-check`: the event contracts are consistent with each
//! other, with the code that publishes events, with the Dapr subscriptions,
//! and with the last release (contracts/events/baseline/).

use std::collections::BTreeSet;

use platform_event_contracts::asyncapi::{
    channels, document, messages, pattern_matches, services, subscriptions, types_named_in_code,
};
use platform_event_contracts::evolution::breaking_changes;
use platform_event_contracts::{
    ENVELOPE, compile, event_types, events_dir, examples, schema, schemas_in, validate,
    validate_envelope,
};
use serde_json::{Value, json};

/// A named change to an event, to prove a check refuses it.
type Fault = (&'static str, fn(&mut Value));

#[test]
fn every_schema_compiles_names_its_type_and_its_examples_match_it() {
    let types = event_types();
    assert!(types.len() >= 20, "{types:?}");
    for event_type in &types {
        let schema = schema(event_type);
        compile(&schema).unwrap_or_else(|e| panic!("{event_type}: {e}"));
        assert_eq!(schema["title"], json!(event_type), "{event_type}: title");
        assert!(
            schema["$id"]
                .as_str()
                .is_some_and(|id| id.ends_with(&format!("/{event_type}.schema.json"))),
            "{event_type}: $id"
        );
        let examples = examples(event_type);
        assert!(!examples.is_empty(), "{event_type}: add `examples`");
        for example in &examples {
            validate(event_type, example)
                .unwrap_or_else(|e| panic!("{event_type} example {example}: {e}"));
        }
    }
}

#[test]
fn the_schemas_refuse_what_they_do_not_describe() {
    // A check that cannot fail proves nothing: one wrong instance per rule.
    let good = examples("payments.payment.succeeded").remove(0);
    let mut unknown_field = good.clone();
    unknown_field["surprise"] = json!(1);
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("currency");
    let mut bad_time = good.clone();
    bad_time["occurred_at"] = json!("yesterday");
    let mut bad_currency = good;
    bad_currency["currency"] = json!("euro");
    for bad in [unknown_field, missing, bad_time, bad_currency] {
        assert!(
            validate("payments.payment.succeeded", &bad).is_err(),
            "accepted {bad}"
        );
    }
}

#[test]
fn the_envelope_schema_describes_a_delivered_event_and_refuses_the_old_faults() {
    let envelope_schema = schema(ENVELOPE);
    compile(&envelope_schema).unwrap();
    let examples = envelope_schema["examples"].as_array().unwrap().clone();
    assert!(!examples.is_empty());
    for example in &examples {
        validate_envelope(example).unwrap_or_else(|e| panic!("{e}"));
    }
    // What daprd wrote when it built the envelope (issue #16 §2).
    let faults: [Fault; 5] = [
        ("contentType attribute", |e| {
            e["contentType"] = json!("application/json")
        }),
        ("empty traceparent", |e| e["traceparent"] = json!("")),
        ("time in whole seconds", |e| {
            e["time"] = json!("2026-12-07T09:15:02Z")
        }),
        ("no datacontenttype", |e| {
            e.as_object_mut().unwrap().remove("datacontenttype");
        }),
        ("data not of its type", |e| {
            e["data"].as_object_mut().unwrap().remove("amount");
        }),
    ];
    for (fault, inject) in faults {
        let mut event = examples[0].clone();
        inject(&mut event);
        assert!(validate_envelope(&event).is_err(), "{fault} accepted");
    }
}

#[test]
fn the_asyncapi_lists_every_event_type_with_its_schema() {
    let doc = document();
    assert_eq!(doc["asyncapi"], "3.0.0");
    let messages = messages(&doc);
    let names: BTreeSet<String> = messages.values().map(|(name, _)| name.clone()).collect();
    for (key, (name, payload)) in &messages {
        assert_eq!(
            payload,
            &format!("./events/{name}.schema.json"),
            "message {key} must refer to its event schema"
        );
        assert!(
            events_dir().join(format!("{name}.schema.json")).exists(),
            "message {key}: no contracts/events/{name}.schema.json"
        );
    }
    for event_type in event_types() {
        assert!(
            names.contains(&event_type),
            "{event_type} has a schema but no AsyncAPI message"
        );
    }
    for (address, types) in channels(&doc) {
        assert!(!types.is_empty(), "channel {address} lists no message");
    }
}

/// Topic addresses look like types (`communication.sends.deadletter`); they
/// are not published as a `type`.
fn addresses() -> BTreeSet<String> {
    channels(&document()).into_keys().collect()
}

#[test]
fn every_type_the_code_publishes_is_in_the_asyncapi() {
    let doc = document();
    let listed: BTreeSet<String> = messages(&doc).into_values().map(|(name, _)| name).collect();
    let addresses = addresses();
    let mut missing = Vec::new();
    for service in services() {
        let (types, patterns) = types_named_in_code(&service);
        for t in types.iter().filter(|t| !addresses.contains(*t)) {
            if !listed.contains(t) {
                missing.push(format!("{service}: {t}"));
            }
        }
        for pattern in patterns {
            if !listed.iter().any(|name| pattern_matches(&pattern, name)) {
                missing.push(format!("{service}: {pattern}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "published types the AsyncAPI does not list (add a message and a schema):\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_scan_finds_the_types_the_services_publish() {
    // The scan itself: if it found nothing, the check above would pass
    // vacuously.
    let (payments, _) = types_named_in_code("payments");
    for t in ["payments.payment.created", "payments.refund.succeeded"] {
        assert!(payments.contains(t), "{payments:?}");
    }
    let (bookkeeping, _) = types_named_in_code("bookkeeping");
    assert!(bookkeeping.contains("bookkeeping.statement.ready"));
    assert!(bookkeeping.contains("bookkeeping.event.rejected"));
    let (communication, _) = types_named_in_code("communication");
    assert!(communication.contains("communication.notification.status_changed"));
    let (_, bookings) = types_named_in_code("bookings");
    assert!(
        bookings.contains("bookings.booking.{state}"),
        "{bookings:?}"
    );
    assert!(pattern_matches(
        "bookings.booking.{state}",
        "bookings.booking.confirmed"
    ));
    assert!(!pattern_matches(
        "bookings.booking.{state}",
        "bookings.offering.created"
    ));
}

#[test]
fn every_dead_letter_channel_lists_every_type_sent_there() {
    let doc = document();
    let channels = channels(&doc);
    let rejecting: BTreeSet<String> = services()
        .into_iter()
        .filter(|s| {
            types_named_in_code(s)
                .0
                .contains(&format!("{s}.event.rejected"))
        })
        .collect();
    let subscriptions = subscriptions();
    assert!(subscriptions.len() >= 8, "{subscriptions:?}");
    let mut missing = Vec::new();
    for sub in &subscriptions {
        let Some(topic_types) = channels.get(&sub.topic) else {
            missing.push(format!("{}: topic {} has no channel", sub.file, sub.topic));
            continue;
        };
        let Some(dead_letter) = sub.dead_letter_topic.as_ref() else {
            missing.push(format!("{}: no deadLetterTopic", sub.file));
            continue;
        };
        let Some(listed) = channels.get(dead_letter) else {
            missing.push(format!("{}: {dead_letter} has no channel", sub.file));
            continue;
        };
        // Dapr forwards the topic's events unchanged when retries run out.
        for t in topic_types.difference(listed) {
            missing.push(format!("{dead_letter}: {t} (forwarded from {})", sub.topic));
        }
        // A consumer of a domain topic rejects with a reason there.
        let domain_topic = !sub.topic.contains('.');
        for app in sub
            .apps
            .iter()
            .filter(|a| domain_topic && rejecting.contains(*a))
        {
            let rejected = format!("{app}.event.rejected");
            if !listed.contains(&rejected) {
                missing.push(format!("{dead_letter}: {rejected} (from {})", sub.file));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "dead-letter channels of the AsyncAPI miss what is sent there:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_schemas_evolved_compatibly_since_the_release_baseline() {
    let baseline_dir = events_dir().join("baseline");
    let baseline = schemas_in(&baseline_dir);
    assert!(
        baseline.len() >= 19,
        "contracts/events/baseline/ holds the released schemas (scripts/contracts-baseline.sh)"
    );
    let current = schemas_in(&events_dir());
    let mut breaking = Vec::new();
    for (event_type, released) in &baseline {
        match current.get(event_type) {
            None => breaking.push(format!(
                "{event_type}: schema removed (a released type stays until the next major version)"
            )),
            Some(now) => breaking.extend(
                breaking_changes(released, now)
                    .into_iter()
                    .map(|change| format!("{event_type}: {change}")),
            ),
        }
    }
    assert!(
        breaking.is_empty(),
        "breaking changes against the release baseline; publish a new type instead \
         (docs/integrating.md, \"Changing an event\"):\n{}",
        breaking.join("\n")
    );
}
