//! The administrators' API and the cached public catalogue.

use std::time::Duration;

use platform_test_support::eventually;
use serde_json::{Value, json};

use crate::helpers::{TestApp, World, offering_body};

#[tokio::test]
async fn bad_offerings_are_refused_with_the_field_and_change_nothing() {
    let world = World::start().await;
    let app = TestApp::spawn(&world, 900).await;
    let now = time::OffsetDateTime::now_utc();
    let cases: Vec<(Value, &str)> = vec![
        (json!({ "capacity": 0 }), "capacity"),
        (json!({ "currency": "EURO" }), "currency"),
        (json!({ "price_amount": -5 }), "price_amount"),
        (json!({ "kind": "party" }), "kind"),
        (json!({ "title": "" }), "title"),
    ];
    for (change, field) in cases {
        let mut body = offering_body(10, now);
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let res = app
            .http
            .post(app.app.url("/v1/offerings"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{field}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{field}"
        );
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["field"], field, "{problem}");
    }
    let res = app
        .http
        .post(app.app.url("/v1/offerings"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM offerings")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 0, "nothing was created");
}

#[tokio::test]
async fn the_catalogue_pages_with_a_cursor_is_cached_answers_304_and_is_invalidated_by_offering_events()
 {
    let world = World::start().await;
    let app = TestApp::spawn(&world, 900).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            app.create_offering(3).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }

    // Pages of two, in start order, until no cursor is left.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => app.app.url(&format!("/v1/offerings?limit=2&cursor={c}")),
            None => app.app.url("/v1/offerings?limit=2"),
        };
        let page: Value = app
            .http
            .get(url)
            .header("cache-control", "no-cache")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    seen.dedup();
    assert_eq!(seen.len(), 5, "{seen:?}");

    // Bad filters are 422 problems.
    for query in [
        "limit=0",
        "limit=101",
        "cursor=garbage",
        "kind=party",
        "unknown=1",
    ] {
        let res = app
            .http
            .get(app.app.url(&format!("/v1/offerings?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{query}");
    }

    // The first read fills the cache; the next one is a hit with the same
    // ETag; If-None-Match answers 304 without a body.
    let url = app.app.url("/v1/offerings?kind=course");
    let first = app.http.get(&url).send().await.unwrap();
    assert_eq!(first.headers()["x-cache"], "miss");
    assert_eq!(first.headers()["cache-control"], "public, max-age=5");
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let second = app.http.get(&url).send().await.unwrap();
    assert_eq!(second.headers()["x-cache"], "hit");
    assert_eq!(second.headers()["etag"].to_str().unwrap(), etag);
    let not_modified = app
        .http
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), 304);
    assert!(not_modified.bytes().await.unwrap().is_empty());

    // An administrator renames an offering: its event (through the outbox
    // and bookings' own subscription) starts a new cache generation, so the
    // catalogue shows the new title well before the TTL would.
    let now = time::OffsetDateTime::now_utc();
    let mut body = offering_body(3, now);
    body["title"] = json!("Renamed");
    let res = app
        .http
        .put(app.app.url(&format!("/v1/offerings/{}", ids[0])))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    eventually(
        Duration::from_secs(4),
        "the renamed offering in the cached catalogue",
        || async {
            let page: Value = app.http.get(&url).send().await.ok()?.json().await.ok()?;
            page["items"]
                .as_array()?
                .iter()
                .any(|o| o["title"] == "Renamed")
                .then_some(())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", app.daprd.log_tail(30)));
}
