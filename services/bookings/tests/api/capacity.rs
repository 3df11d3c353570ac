//! A place is decided by the database: many concurrent bookers never get
//! more places than there are.

use futures::future::join_all;
use serde_json::Value;

use crate::helpers::{TestApp, World};

#[tokio::test]
async fn two_hundred_concurrent_bookers_get_exactly_the_twenty_places() {
    let world = World::start().await;
    let app = TestApp::spawn(&world, 900).await;
    let offering = app.create_offering(20).await;
    let offering_id = offering["id"].as_str().unwrap();

    let answers = join_all((0..200).map(|i| {
        let app = &app;
        async move {
            let res = app.book(offering_id, &format!("booker-{i}")).await;
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or_default();
            (status, body)
        }
    }))
    .await;
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    let sold_out = answers
        .iter()
        .filter(|(s, b)| *s == 409 && b["code"] == "sold_out")
        .count();
    let others: Vec<_> = answers
        .iter()
        .filter(|(s, b)| *s != 201 && !(*s == 409 && b["code"] == "sold_out"))
        .collect();
    assert!(others.is_empty(), "{others:?}");
    assert_eq!((created, sold_out), (20, 180));
    assert_eq!(app.taken(offering_id).await, 20);
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings WHERE state = 'reserved'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(held, 20);

    // A repeat with the same Idempotency-Key is the same booking, not a
    // second place; the same key with another request is refused.
    let winner = answers.iter().position(|(s, _)| *s == 201).unwrap();
    let key = format!("booker-{winner}");
    let again = app.book(offering_id, &key).await;
    assert_eq!(again.status(), 200);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["id"], answers[winner].1["id"]);
    let other = app
        .http
        .post(app.app.url("/v1/bookings"))
        .header("Idempotency-Key", &key)
        .json(&serde_json::json!({ "offering_id": offering_id, "participant": "someone-else" }))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 422);
    assert_eq!(app.taken(offering_id).await, 20);

    // Bad requests are 4xx problems and take nothing.
    let missing_key = app
        .http
        .post(app.app.url("/v1/bookings"))
        .json(&serde_json::json!({ "offering_id": offering_id }))
        .send()
        .await
        .unwrap();
    assert_eq!(missing_key.status(), 400);
    let bad_offering = app.book("not-a-uuid", "k-bad").await;
    assert_eq!(bad_offering.status(), 422);
    let unknown = app
        .book(&uuid::Uuid::now_v7().to_string(), "k-unknown")
        .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(app.taken(offering_id).await, 20);
}
