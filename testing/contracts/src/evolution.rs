//! The evolution rules of event schemas (docs/integrating.md, "Changing an
//! event"; ADR 0040): within a major version a schema may only grow. The
//! test: every event valid under the released schema is still valid under
//! the new one (a new consumer group replays the whole stream, old events
//! included), and nothing a consumer may rely on disappears. A change that
//! breaks this needs a new event `type`.
//!
//! [`breaking_changes`] compares one type's released schema with its current
//! one, property by property, nested objects included; it knows the keywords
//! our schemas use and treats any change of a constraint it cannot order
//! (`pattern`, `format`, `const`) as breaking.

use serde_json::Value;

/// The breaking changes from `old` to `new` (empty: compatible), each a
/// sentence naming the property path.
pub fn breaking_changes(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    compare("", old, new, &mut out);
    out
}

fn types_of(schema: &Value) -> Option<Vec<String>> {
    let mut types: Vec<String> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => return None,
    };
    // An integer is a number: integer → number widens.
    if types.iter().any(|t| t == "number") {
        types.push("integer".to_owned());
    }
    Some(types)
}

fn names(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn at(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn where_(path: &str) -> String {
    if path.is_empty() {
        "the data".to_owned()
    } else {
        format!("`{path}`")
    }
}

fn compare(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    // Types: every old type must still be allowed.
    match (types_of(old), types_of(new)) {
        (Some(old_types), Some(new_types)) => {
            for t in old_types.iter().filter(|t| !new_types.contains(t)) {
                out.push(format!(
                    "{}: type {t} no longer allowed (now {new_types:?})",
                    where_(path)
                ));
            }
        }
        (None, Some(new_types)) => out.push(format!(
            "{}: restricted to type {new_types:?}",
            where_(path)
        )),
        _ => {}
    }

    // Enumerations: every old value must stay; a new enum restricts.
    let old_enum = old.get("enum").and_then(Value::as_array);
    let new_enum = new.get("enum").and_then(Value::as_array);
    match (old_enum, new_enum) {
        (Some(o), Some(n)) => {
            for value in o.iter().filter(|v| !n.contains(v)) {
                out.push(format!("{}: enum value {value} removed", where_(path)));
            }
        }
        (None, Some(_)) => out.push(format!("{}: restricted to an enum", where_(path))),
        _ => {}
    }

    // Constraints we cannot order: any change (or a new one) is breaking.
    for keyword in ["const", "pattern", "format"] {
        if let Some(n) = new.get(keyword)
            && old.get(keyword) != Some(n)
        {
            out.push(format!(
                "{}: `{keyword}` changed from {} to {n}",
                where_(path),
                old.get(keyword).map_or("none".to_owned(), Value::to_string)
            ));
        }
    }

    // Bounds may only widen.
    for (keyword, lower_bound) in [
        ("minimum", true),
        ("exclusiveMinimum", true),
        ("minLength", true),
        ("minItems", true),
        ("maximum", false),
        ("exclusiveMaximum", false),
        ("maxLength", false),
        ("maxItems", false),
    ] {
        let Some(n) = new.get(keyword).and_then(Value::as_f64) else {
            continue;
        };
        let tighter = match old.get(keyword).and_then(Value::as_f64) {
            None => true,
            Some(o) if lower_bound => n > o,
            Some(o) => n < o,
        };
        if tighter {
            out.push(format!("{}: `{keyword}` tightened to {n}", where_(path)));
        }
    }

    // Objects: no property removed, no new requirement, none dropped.
    let old_required = names(old.get("required"));
    let new_required = names(new.get("required"));
    for field in new_required.iter().filter(|f| !old_required.contains(f)) {
        out.push(format!(
            "{}: new required field (old events lack it)",
            where_(&at(path, field))
        ));
    }
    for field in old_required.iter().filter(|f| !new_required.contains(f)) {
        out.push(format!(
            "{}: no longer required (consumers rely on it)",
            where_(&at(path, field))
        ));
    }
    if old.get("additionalProperties") != Some(&Value::Bool(false))
        && new.get("additionalProperties") == Some(&Value::Bool(false))
    {
        out.push(format!(
            "{}: additional properties now forbidden",
            where_(path)
        ));
    }
    let empty = serde_json::Map::new();
    let old_props = old
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let new_props = new
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (name, old_prop) in old_props {
        match new_props.get(name) {
            None => out.push(format!("{}: removed (or renamed)", where_(&at(path, name)))),
            Some(new_prop) => compare(&at(path, name), old_prop, new_prop, out),
        }
    }
    if let (Some(o), Some(n)) = (old.get("items"), new.get("items")) {
        compare(&at(path, "[]"), o, n, out);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn released() -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["payment_id", "amount", "status"],
            "properties": {
                "payment_id": { "type": "string", "format": "uuid" },
                "amount": { "type": "integer", "minimum": 1 },
                "status": { "type": "string", "enum": ["processing", "succeeded"] },
                "note": { "type": ["string", "null"], "maxLength": 100 },
                "card": {
                    "type": "object",
                    "required": ["last4"],
                    "properties": { "last4": { "type": "string" } }
                }
            }
        })
    }

    fn changed(edit: impl FnOnce(&mut Value)) -> Vec<String> {
        let mut new = released();
        edit(&mut new);
        breaking_changes(&released(), &new)
    }

    #[test]
    fn the_same_schema_and_additive_changes_are_compatible() {
        assert_eq!(
            breaking_changes(&released(), &released()),
            Vec::<String>::new()
        );
        let additive = changed(|s| {
            s["properties"]["currency"] = json!({ "type": "string" });
            s["properties"]["status"]["enum"] = json!(["processing", "succeeded", "failed"]);
            s["properties"]["amount"]["minimum"] = json!(0);
            s["properties"]["amount"]["type"] = json!("number");
            s["properties"]["note"]["maxLength"] = json!(200);
            s["properties"]["card"]["properties"]["brand"] = json!({ "type": "string" });
        });
        assert_eq!(additive, Vec::<String>::new());
    }

    #[test]
    fn a_removed_or_renamed_field_is_breaking() {
        let removed = changed(|s| {
            let props = s["properties"].as_object_mut().unwrap();
            let note = props.remove("note").unwrap();
            props.insert("remark".into(), note);
        });
        assert_eq!(removed, vec!["`note`: removed (or renamed)"]);
        let nested = changed(|s| {
            s["properties"]["card"]["properties"] = json!({});
        });
        assert_eq!(nested, vec!["`card.last4`: removed (or renamed)"]);
    }

    #[test]
    fn a_type_change_is_breaking() {
        let found = changed(|s| s["properties"]["amount"]["type"] = json!("string"));
        assert_eq!(
            found,
            vec![r#"`amount`: type integer no longer allowed (now ["string"])"#]
        );
        let null_dropped = changed(|s| s["properties"]["note"]["type"] = json!("string"));
        assert_eq!(null_dropped.len(), 1, "{null_dropped:?}");
    }

    #[test]
    fn a_new_required_field_or_a_dropped_requirement_is_breaking() {
        let new_required = changed(|s| {
            s["properties"]["currency"] = json!({ "type": "string" });
            s["required"]
                .as_array_mut()
                .unwrap()
                .push(json!("currency"));
        });
        assert_eq!(
            new_required,
            vec!["`currency`: new required field (old events lack it)"]
        );
        let optional = changed(|s| s["required"] = json!(["payment_id", "amount"]));
        assert_eq!(
            optional,
            vec!["`status`: no longer required (consumers rely on it)"]
        );
    }

    #[test]
    fn a_narrowed_enum_or_a_tighter_bound_is_breaking() {
        let narrowed = changed(|s| s["properties"]["status"]["enum"] = json!(["succeeded"]));
        assert_eq!(
            narrowed,
            vec![r#"`status`: enum value "processing" removed"#]
        );
        let tighter = changed(|s| {
            s["properties"]["amount"]["minimum"] = json!(100);
            s["properties"]["note"]["maxLength"] = json!(10);
            s["properties"]["payment_id"]["pattern"] = json!("^p_");
        });
        assert_eq!(tighter.len(), 3, "{tighter:?}");
    }

    /// The rules against the real contracts: each released schema with one
    /// breaking mutation is caught (so the baseline test can fail).
    #[test]
    fn every_kind_of_mutation_of_a_real_contract_is_caught() {
        let old = crate::schema("payments.payment.updated");
        type Mutation = (&'static str, fn(&mut Value));
        let mutations: [Mutation; 4] = [
            ("removed field", |s| {
                s["properties"].as_object_mut().unwrap().remove("status");
            }),
            ("type change", |s| {
                s["properties"]["amount"]["type"] = json!("string")
            }),
            ("new required", |s| {
                s["properties"]["provider"] = json!({ "type": "string" });
                s["required"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!("provider"));
            }),
            ("narrowed enum", |s| {
                s["properties"]["status"]["enum"]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            }),
        ];
        for (what, mutate) in mutations {
            let mut new = old.clone();
            mutate(&mut new);
            assert!(
                !breaking_changes(&old, &new).is_empty(),
                "{what} not caught"
            );
        }
    }
}
