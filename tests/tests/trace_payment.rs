//! One confirmed payment is one trace (issue 14): against the running
//! platform (`make up`: every service, its sidecar and the trace backend),
//! confirm a payment under a trace id chosen here, then read that trace back
//! from the trace backend's API (Zipkin `/api/v2/trace/{id}`, fed by the
//! OpenTelemetry Collector; ADR 0047) and check that it holds the spans of
//! payments, bookkeeping and communication and of their sidecars, every
//! span's parent in the trace (or the test's own span), and each service's
//! work below the hop that carried it there. A second test checks that the
//! backend's UI is served: the app's HTML, the script it loads, and the page
//! of one trace.
//!
//! Needs the stack, so it is ignored by `cargo test`; `make trace-check`
//! runs it inside the machine-wide stack lock:
//! `cargo test -p platform-tests --test trace_payment -- --ignored`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use platform_test_support::{authorized_client, eventually, json_answer, stack_token};
use serde_json::{Value, json};

const AUTH: &str = "http://127.0.0.1:8001";
const PAYMENTS: &str = "http://127.0.0.1:8002";
const COMMUNICATION: &str = "http://127.0.0.1:8004";
const ZIPKIN: &str = "http://127.0.0.1:9411";
const ADMIN_SECRET: &str = "local-only-admin-secret";

/// A span of the trace: who made it (service, and whether the app or its
/// daprd sidecar), its name and its parent.
#[derive(Debug)]
struct Span {
    id: String,
    parent: Option<String>,
    service: String,
    sidecar: bool,
    name: String,
}

/// Zipkin v2 spans (`/api/v2/trace/{id}`: a JSON array). The collector
/// writes the OTLP resource's `service.name` as `localEndpoint.serviceName`
/// (an app and its daprd share it: daprd uses the app id) and the other
/// resource attributes as tags, so `telemetry.sdk.language` tells a Rust app
/// span (opentelemetry-rust) from its Go sidecar's, whose resource has none.
fn spans_of(trace: &Value) -> Vec<Span> {
    trace
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|s| Span {
            id: s["id"].as_str().unwrap_or_default().to_owned(),
            parent: s["parentId"].as_str().map(str::to_owned),
            service: s["localEndpoint"]["serviceName"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            sidecar: s["tags"]["telemetry.sdk.language"] != "rust",
            name: s["name"].as_str().unwrap_or_default().to_owned(),
        })
        .collect()
}

fn who(span: &Span) -> String {
    format!(
        "{}{}",
        span.service,
        if span.sidecar { "-sidecar" } else { "" }
    )
}

/// The chain of spans from `span` up to the root, as "who:name".
fn ancestry<'a>(span: &'a Span, by_id: &HashMap<&str, &'a Span>) -> Vec<&'a Span> {
    let mut chain = vec![span];
    let mut current = span;
    while let Some(parent) = current.parent.as_deref().and_then(|p| by_id.get(p)) {
        chain.push(parent);
        current = parent;
        if chain.len() > 64 {
            break;
        }
    }
    chain
}

#[tokio::test]
#[ignore = "needs the running platform (make up); run by make trace-check"]
async fn a_confirmed_payment_is_one_trace_across_services_and_sidecars() {
    let http = reqwest::Client::new();
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();

    // A client with the scopes of the journey.
    let admin = authorized_client(
        &stack_token(&http, "platform-admin", ADMIN_SECRET, "auth:admin", "auth")
            .await
            .unwrap()
            .0,
    )
    .unwrap();
    let client_id = format!("trace-test-{run}");
    let created = json_answer(admin.post(format!("{AUTH}/admin/clients")).json(&json!({
        "client_id": client_id, "name": "trace test", "grant_types": ["client_credentials"],
        "allowed_scopes": ["payments:write", "payments:read", "communication:write", "communication:read"],
        "allowed_audiences": ["payments", "communication"],
    })))
    .await
    .unwrap();
    let secret = created["client_secret"]
        .as_str()
        .unwrap_or_else(|| panic!("client not created: {created}"))
        .to_owned();
    let pay = authorized_client(
        &stack_token(
            &http,
            &client_id,
            &secret,
            "payments:write payments:read",
            "payments",
        )
        .await
        .unwrap()
        .0,
    )
    .unwrap();
    let comm = authorized_client(
        &stack_token(
            &http,
            &client_id,
            &secret,
            "communication:write communication:read",
            "communication",
        )
        .await
        .unwrap()
        .0,
    )
    .unwrap();

    // The customer is known to communication, so the payment sends a receipt.
    let customer = format!("cus_trace_{run}");
    let put = comm
        .put(format!("{COMMUNICATION}/v1/recipients/{customer}"))
        .json(&json!({"email": format!("{customer}@example.test"), "locale": "en"}))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let payment = json_answer(
        pay.post(format!("{PAYMENTS}/v1/payments"))
            .header("Idempotency-Key", format!("trace-create-{run}"))
            .json(&json!({"amount": 990, "currency": "EUR", "customer_reference": customer})),
    )
    .await
    .unwrap();
    let payment_id = payment["id"].as_str().expect("a payment id").to_owned();

    // Confirm it as the child of a span of ours, sampled.
    let trace_id = format!("{:032x}", run ^ 0x5eed_0000_0000_0000_0000_0000_0000_0001);
    let edge_span = "00f067aa0ba902b7";
    let confirmed = json_answer(
        pay.post(format!("{PAYMENTS}/v1/payments/{payment_id}/confirm"))
            .header("Idempotency-Key", format!("trace-confirm-{run}"))
            .header("traceparent", format!("00-{trace_id}-{edge_span}-01"))
            .json(&json!({"card_number": "4242424242424242"})),
    )
    .await
    .unwrap();
    assert_eq!(confirmed["status"], "succeeded", "{confirmed}");

    // Everyone's spans arrive (batched export: within seconds).
    let wanted = [
        "payments",
        "payments-sidecar",
        "bookkeeping",
        "bookkeeping-sidecar",
        "communication",
        "communication-sidecar",
    ];
    // Spans arrive in batches (each process exports on its own clock, the
    // collector batches again), so the trace is read until it holds every
    // participant and no span's parent is still missing; if that never
    // happens, the assertions below say what is missing from the last read.
    let fetch = || {
        let http = http.clone();
        let url = format!("{ZIPKIN}/api/v2/trace/{trace_id}");
        async move {
            http.get(url)
                .send()
                .await
                .ok()?
                .error_for_status()
                .ok()?
                .json::<Value>()
                .await
                .ok()
        }
    };
    let complete = |trace: &Value| {
        let spans = spans_of(trace);
        let ids: HashSet<&str> = spans.iter().map(|s| s.id.as_str()).collect();
        let seen: HashSet<String> = spans.iter().map(who).collect();
        wanted.iter().all(|w| seen.contains(*w))
            && spans.iter().all(|s| {
                s.parent
                    .as_deref()
                    .is_some_and(|p| p == edge_span || ids.contains(p))
            })
    };
    let trace = match eventually(Duration::from_secs(90), "the whole trace", || async {
        let trace = fetch().await?;
        complete(&trace).then_some(trace)
    })
    .await
    {
        Ok(trace) => trace,
        Err(_) => fetch().await.unwrap_or_else(|| json!([])),
    };
    let seen: HashSet<String> = spans_of(&trace).iter().map(who).collect();
    assert!(
        wanted.iter().all(|w| seen.contains(*w)),
        "the trace {trace_id} at {ZIPKIN}/api/v2/trace/{trace_id} holds spans of {seen:?}, not of all of {wanted:?}"
    );

    let spans = spans_of(&trace);
    let by_id: HashMap<&str, &Span> = spans.iter().map(|s| (s.id.as_str(), s)).collect();
    let describe = || {
        spans
            .iter()
            .map(|s| format!("{} {} {} <- {:?}", s.id, who(s), s.name, s.parent))
            .collect::<Vec<_>>()
            .join("\n")
    };

    // Correctly parented: one root, the child of our edge span; every other
    // span's parent is in the trace.
    for span in &spans {
        match span.parent.as_deref() {
            Some(p) if by_id.contains_key(p) => {}
            Some(p) if p == edge_span => assert!(
                who(span) == "payments",
                "only payments' server span hangs off the edge:\n{}",
                describe()
            ),
            other => panic!(
                "span {} ({}) has parent {other:?}, not in the trace:\n{}",
                span.id,
                who(span),
                describe()
            ),
        }
    }

    // The path: a consuming service's app span sits below its own sidecar's
    // delivery span, which sits below payments' work (the publisher), and
    // the trace's root is payments' server span.
    for consumer in ["bookkeeping", "communication"] {
        let ok = spans
            .iter()
            .filter(|s| s.service == consumer && !s.sidecar)
            .any(|s| {
                let chain: Vec<String> = ancestry(s, &by_id).iter().map(|a| who(a)).collect();
                let own_sidecar = chain
                    .iter()
                    .position(|w| *w == format!("{consumer}-sidecar"));
                let publisher = chain.iter().position(|w| w == "payments");
                matches!((own_sidecar, publisher), (Some(a), Some(b)) if a < b)
                    && chain.last().is_some_and(|root| root == "payments")
            });
        assert!(
            ok,
            "no {consumer} span below its sidecar below payments:\n{}",
            describe()
        );
    }
    // payments' sidecar did its part: the PSP invocation and the state
    // transaction that carried the event are its spans in this trace
    // (Zipkin stores span names lower-cased).
    for (op, what) in [
        ("calllocal/psp", "the PSP call"),
        ("/transaction", "the outbox transaction"),
    ] {
        assert!(
            spans
                .iter()
                .any(|s| who(s) == "payments-sidecar" && s.name.contains(op)),
            "no payments sidecar span of {what}:\n{}",
            describe()
        );
    }
    // The PSP call went out through payments' sidecar within the trace.
    assert!(
        spans
            .iter()
            .any(|s| who(s) == "payments" && s.name.starts_with("dapr.invoke")),
        "no PSP invocation span:\n{}",
        describe()
    );
}

/// The `src` of the first `<script ... src="...">` in `html`.
fn script_src(html: &str) -> Option<&str> {
    let tag = &html[html.find("<script")?..];
    let tag = &tag[..tag.find('>')?];
    let src = &tag[tag.find("src=\"")? + 5..];
    Some(&src[..src.find('"')?])
}

#[tokio::test]
#[ignore = "needs the running platform (make up); run by make trace-check"]
async fn the_trace_backend_serves_its_ui() {
    let http = reqwest::Client::new();
    // The single-page app: its HTML names the script that renders it.
    let page = http.get(format!("{ZIPKIN}/zipkin/")).send().await.unwrap();
    assert_eq!(page.status(), 200, "GET {ZIPKIN}/zipkin/");
    let content_type = page.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = page.text().await.unwrap();
    assert!(html.contains("<title>Zipkin</title>"), "{html}");
    assert!(html.contains(r#"<div id="root">"#), "{html}");
    let src = script_src(&html).unwrap_or_else(|| panic!("no script in the UI page:\n{html}"));
    let script_url = if src.starts_with('/') {
        format!("{ZIPKIN}{src}")
    } else {
        format!("{ZIPKIN}/zipkin/{src}")
    };

    // The script loads, and is the app (a bundle, not an error page).
    let script = http.get(&script_url).send().await.unwrap();
    assert_eq!(script.status(), 200, "GET {script_url}");
    let content_type = script.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.contains("javascript"),
        "{script_url}: {content_type}"
    );
    let body = script.text().await.unwrap();
    assert!(
        body.len() > 100_000,
        "{script_url}: {} bytes is not the UI bundle",
        body.len()
    );

    // A trace's own page (what docs/observability.md tells a person to
    // open) is served by the same app, and its data comes from the API the
    // other test reads; the UI's settings come from /zipkin/config.json.
    let trace_page = http
        .get(format!(
            "{ZIPKIN}/zipkin/traces/0123456789abcdef0123456789abcdef"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(trace_page.status(), 200);
    assert!(trace_page.text().await.unwrap().contains(src));
    let config: Value = http
        .get(format!("{ZIPKIN}/zipkin/config.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(config.get("defaultLookback").is_some(), "{config}");
    let services: Value = http
        .get(format!("{ZIPKIN}/api/v2/services"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(services.is_array(), "{services}");
}

#[test]
fn the_script_of_a_page_is_found() {
    assert_eq!(
        script_src(
            r#"<head><script type="module" crossorigin src="/zipkin/static/js/index.c4.js"></script>"#
        ),
        Some("/zipkin/static/js/index.c4.js")
    );
    assert_eq!(script_src("<html><body>no app</body></html>"), None);
}
