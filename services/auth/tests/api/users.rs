//! Registration, lockout under concurrent guessing, rehash on login.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, location_param, pkce};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// An authorization request of shop's, for a code bound to `challenge`.
fn authorize_params(challenge: &str) -> [(&'static str, &str); 6] {
    [
        ("response_type", "code"),
        ("client_id", "shop"),
        ("redirect_uri", REDIRECT),
        ("scope", "payments:read"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
}

async fn attempt(app: &TestApp, username: &str, password: &str) -> u16 {
    let (_, challenge) = pkce();
    let res = app
        .login_for_code(&authorize_params(&challenge), username, password)
        .await;
    let status = res.status().as_u16();
    if status == 303 {
        assert!(location_param(&res, "code").is_some());
    } else {
        let body = res.text().await.unwrap();
        assert!(body.contains("Invalid username or password."), "{body}");
    }
    status
}

#[tokio::test]
async fn registration_validates_and_refuses_duplicates() {
    let app = TestApp::spawn().await;
    let register = |body: Value| {
        let app = &app;
        async move {
            let res = app
                .http
                .post(app.url("/v1/users"))
                .json(&body)
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    // A name outside the contract's pattern is refused, not stored as another.
    let (status, body) = register(json!({ "username": "Bob", "password": PASSWORD })).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("username")),
        "{body}"
    );
    let (status, body) = register(json!({ "username": "bob", "password": PASSWORD })).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["username"], "bob");
    assert!(body.get("password").is_none() && body.get("password_hash").is_none());
    let (status, body) = register(json!({ "username": "bob", "password": PASSWORD })).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("conflict")));
    let (status, body) = register(json!({ "username": "carol", "password": "short" })).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("password")));
    let (status, body) = register(json!({ "username": "a b", "password": PASSWORD })).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("username")));

    let mut conn = app.db.connect().await.unwrap();
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'bob'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
}

#[tokio::test]
async fn concurrent_wrong_passwords_cannot_exceed_the_lockout_limit() {
    let app = TestApp::spawn_with(|s| {
        s.passwords.max_failed_attempts = 5;
        s.passwords.max_concurrent_hashes = Some(4);
        // Every attempt waits for its slot: none is refused as busy.
        s.passwords.hash_queue_wait_ms = 60_000;
    })
    .await;
    app.register_shop_and_alice().await;

    let attempts = (0..20).map(|i| {
        let app = &app;
        async move { attempt(app, "alice", &format!("wrong password {i:02}")).await }
    });
    let statuses = futures::future::join_all(attempts).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");

    // Exactly the limit was counted, and the account is locked: the right
    // password is refused with the same generic answer.
    assert_eq!(
        app.db_query_i64(
            "SELECT failed_attempts::bigint FROM users WHERE username = $1",
            "alice"
        )
        .await,
        5
    );
    assert_eq!(attempt(&app, "alice", PASSWORD).await, 401);
    // Unknown users get the very same answer.
    assert_eq!(attempt(&app, "mallory", PASSWORD).await, 401);
}

#[tokio::test]
async fn logins_that_find_no_hashing_slot_get_503_and_are_not_counted() {
    let app = TestApp::spawn_with(|s| {
        s.passwords.max_failed_attempts = 1000;
        s.passwords.max_concurrent_hashes = Some(1);
        // No waiting at all: only a request that finds the slot free runs.
        s.passwords.hash_queue_wait_ms = 0;
    })
    .await;
    app.register_shop_and_alice().await;

    let (_, challenge) = pkce();
    let params = authorize_params(&challenge);
    let attempts = (0..12).map(|i| {
        let app = &app;
        let params = &params;
        async move {
            let res = app
                .login_for_code(params, "alice", &format!("wrong password {i:02}"))
                .await;
            let status = res.status().as_u16();
            if status == 503 {
                assert_eq!(res.headers()["retry-after"], "1");
                assert_eq!(res.headers()["content-type"], "application/problem+json");
                assert_eq!(res.json::<Value>().await.unwrap()["code"], "busy");
            }
            status
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    let refused = statuses.iter().filter(|s| **s == 401).count();
    let busy = statuses.iter().filter(|s| **s == 503).count();
    assert_eq!(refused + busy, statuses.len(), "{statuses:?}");
    assert!(busy > 0 && refused > 0, "{statuses:?}");
    // Only the attempts whose password was checked count.
    assert_eq!(
        app.db_query_i64(
            "SELECT failed_attempts::bigint FROM users WHERE username = $1",
            "alice"
        )
        .await,
        refused as i64
    );
}

#[tokio::test]
async fn the_lock_expires_and_a_right_password_resets_the_count() {
    let app = TestApp::spawn_with(|s| {
        s.passwords.max_failed_attempts = 2;
        s.passwords.lockout_secs = 1;
    })
    .await;
    app.register_shop_and_alice().await;
    assert_eq!(attempt(&app, "alice", "wrong password 1").await, 401);
    assert_eq!(
        attempt(&app, "alice", PASSWORD).await,
        303,
        "below the limit"
    );
    assert_eq!(attempt(&app, "alice", "wrong password 2").await, 401);
    assert_eq!(attempt(&app, "alice", "wrong password 3").await, 401);
    assert_eq!(attempt(&app, "alice", PASSWORD).await, 401, "locked");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(attempt(&app, "alice", PASSWORD).await, 303, "lock expired");
}

#[tokio::test]
async fn a_hash_with_old_parameters_is_replaced_at_login() {
    let app = TestApp::spawn().await;
    app.register_shop_and_alice().await;
    // An argon2id hash of PASSWORD with weaker, older parameters.
    let old = {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let params = argon2::Params::new(4096, 1, 1, None).unwrap();
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(PASSWORD.as_bytes(), &salt)
            .unwrap()
            .to_string()
    };
    let mut conn = app.db.connect().await.unwrap();
    sqlx::query("UPDATE users SET password_hash = $1 WHERE username = 'alice'")
        .bind(&old)
        .execute(&mut conn)
        .await
        .unwrap();

    assert_eq!(attempt(&app, "alice", PASSWORD).await, 303);
    let now: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'alice'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_ne!(now, old);
    assert!(now.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{now}");
}

#[tokio::test]
async fn a_burst_of_logins_does_not_starve_token_requests() {
    let app = TestApp::spawn_with(|s| {
        s.passwords.max_failed_attempts = 1000;
        s.passwords.max_concurrent_hashes = Some(1);
        s.passwords.hash_queue_wait_ms = 60_000;
    })
    .await;
    app.register_shop_and_alice().await;
    let service = app.resource_server().await;

    // No clock: the grant must complete while the queue of logins is still
    // being worked through, whatever the speed of the machine.
    let finished_logins = std::sync::atomic::AtomicUsize::new(0);
    let logins = futures::future::join_all((0..24).map(|i| {
        let app = &app;
        let finished_logins = &finished_logins;
        async move {
            let status = attempt(app, "alice", &format!("wrong password {i:02}")).await;
            finished_logins.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            status
        }
    }));
    let grant = async {
        // Let the logins queue up on the single hashing slot first.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let token = app.client_token(&service, "payments:read").await;
        (
            finished_logins.load(std::sync::atomic::Ordering::SeqCst),
            token,
        )
    };
    let (statuses, (logins_done_when_granted, _)) = tokio::join!(logins, grant);
    assert!(statuses.iter().all(|s| *s == 401));
    // Hashing runs off the async runtime, one at a time: the grant does not
    // wait for the queue of logins.
    assert!(
        logins_done_when_granted < 24,
        "the grant finished only after all {logins_done_when_granted} logins"
    );
}
