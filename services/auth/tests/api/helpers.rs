use std::path::Path;

use auth::settings::Settings;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use platform_settings::Source;
pub use platform_test_support::www_authenticate;
use platform_test_support::{
    Daprd, RunningApp, TestDatabase, TestEnv, free_port, start_with_sidecar,
};
use secrecy::SecretString;
use serde_json::{Value, json};

pub const ADMIN_SECRET: &str = "test-bootstrap-admin-secret-0123456789abcdef";
pub const PASSWORD: &str = "correct horse battery staple";

/// auth with its sidecar, database and Redis.
pub struct TestApp {
    pub app: RunningApp,
    /// Kept alive for the test; dropping it stops the sidecar.
    #[expect(dead_code, reason = "held for its Drop")]
    pub daprd: Daprd,
    pub db: TestDatabase,
    #[expect(dead_code, reason = "held for its Drop")]
    pub env: TestEnv,
    pub http: reqwest::Client,
    pub issuer: String,
}

pub fn settings() -> Settings {
    let source = Source {
        config_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        environment: "test".into(),
    };
    source.load::<Settings>().expect("auth settings")
}

/// A client as the admin API returned it.
#[derive(Debug, Clone)]
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        let env = TestEnv::start().await.expect("test env");
        let mut settings = settings();
        let db = TestDatabase::create_in_place(&mut settings.database)
            .await
            .expect("test database");
        // The issuer must name the real port, so the port is chosen first.
        let port = free_port().expect("port");
        settings.server.port = port;
        settings.oauth.issuer = format!("http://127.0.0.1:{port}");
        settings.oauth.bootstrap_admin_secret = Some(SecretString::from(ADMIN_SECRET));
        settings.keys.publish_delay_secs = 0;
        adjust(&mut settings);
        let issuer = settings.oauth.issuer.clone();

        let (app, daprd) = start_with_sidecar(&env, "auth", |dapr| {
            dapr.apply_to(&mut settings.dapr);
            async move { auth::startup::build(settings).await.map_err(Into::into) }
        })
        .await
        .expect("auth with its sidecar, ready");
        Self {
            app,
            daprd,
            db,
            env,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
            issuer,
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.app.url(path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("request")
    }

    /// POSTs a form, optionally with HTTP Basic client authentication.
    pub async fn post_form(
        &self,
        path: &str,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self.http.post(self.url(path)).form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        req.send().await.expect("request")
    }

    pub async fn token(&self, client: &TestClient, form: &[(&str, &str)]) -> (u16, Value) {
        let res = self
            .post_form(
                "/oauth2/token",
                Some((&client.id, client.secret.as_deref().unwrap_or(""))),
                form,
            )
            .await;
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// A client-credentials access token, asserting success.
    pub async fn client_token(&self, client: &TestClient, scope: &str) -> String {
        let (status, body) = self
            .token(
                client,
                &[("grant_type", "client_credentials"), ("scope", scope)],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    pub fn admin(&self) -> TestClient {
        TestClient {
            id: "platform-admin".into(),
            secret: Some(ADMIN_SECRET.into()),
        }
    }

    pub async fn admin_token(&self) -> String {
        self.client_token(&self.admin(), "auth:admin").await
    }

    /// Calls the admin API with the bootstrap admin's token.
    pub async fn admin_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let token = self.admin_token().await;
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn create_client(&self, body: Value) -> TestClient {
        let (status, created) = self
            .admin_call(reqwest::Method::POST, "/admin/clients", Some(body))
            .await;
        assert_eq!(status, 201, "{created}");
        TestClient {
            id: created["client_id"].as_str().expect("id").to_owned(),
            secret: created["client_secret"].as_str().map(ToOwned::to_owned),
        }
    }

    /// A confidential service client allowed `scopes` (all of one audience).
    pub async fn service_client(&self, id: &str, audience: &str, scopes: &[&str]) -> TestClient {
        self.create_client(json!({
            "client_id": id, "name": id, "grant_types": ["client_credentials"],
            "allowed_scopes": scopes, "allowed_audiences": [audience],
        }))
        .await
    }

    /// A public web client for the code flow.
    pub async fn web_client(&self, id: &str, confidential: bool) -> TestClient {
        self.create_client(json!({
            "client_id": id, "name": "Shop", "public": !confidential,
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": ["http://127.0.0.1:9/callback"],
            "allowed_scopes": ["payments:read", "payments:write"],
            "allowed_audiences": ["payments"],
        }))
        .await
    }

    /// The cast of the code-flow tests: the public web client `shop` and
    /// `alice`, a payments reader. Alice's id.
    pub async fn register_shop_and_alice(&self) -> String {
        self.web_client("shop", false).await;
        self.user("alice", &["payments-reader"]).await
    }

    /// A resource server: the confidential client `resource`, which may
    /// introspect tokens (and read payments).
    pub async fn resource_server(&self) -> TestClient {
        self.service_client("resource", "payments", &["payments:read"])
            .await
    }

    /// Registers a user and gives them roles.
    pub async fn user(&self, username: &str, roles: &[&str]) -> String {
        let res = self
            .http
            .post(self.url("/v1/users"))
            .json(&json!({ "username": username, "password": PASSWORD }))
            .send()
            .await
            .expect("register");
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.expect("json");
        let id = body["id"].as_str().expect("id").to_owned();
        let (status, body) = self
            .admin_call(
                reqwest::Method::PUT,
                &format!("/admin/users/{id}/roles"),
                Some(json!({ "roles": roles })),
            )
            .await;
        assert_eq!(status, 204, "{body}");
        id
    }

    pub async fn introspect(&self, caller: &TestClient, token: &str) -> Value {
        let res = self
            .post_form(
                "/oauth2/introspect",
                Some((&caller.id, caller.secret.as_deref().unwrap_or(""))),
                &[("token", token)],
            )
            .await;
        assert_eq!(res.status(), 200);
        res.json().await.expect("json")
    }

    pub async fn revoke(&self, caller: &TestClient, token: &str) -> u16 {
        let mut form = vec![("token", token)];
        let res = match caller.secret.as_deref() {
            Some(secret) => {
                self.post_form("/oauth2/revoke", Some((&caller.id, secret)), &form)
                    .await
            }
            None => {
                form.push(("client_id", caller.id.as_str()));
                self.post_form("/oauth2/revoke", None, &form).await
            }
        };
        res.status().as_u16()
    }

    /// GET /admin/roles with `token` as the bearer, whatever it is.
    pub async fn list_roles(&self, token: &str) -> reqwest::Response {
        self.http
            .get(self.url("/admin/roles"))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn jwks(&self) -> JwkSet {
        self.get("/oauth2/jwks").await.json().await.expect("jwks")
    }

    /// Validates an access token with `jsonwebtoken` against the published
    /// JWKS — an implementation independent of ours.
    pub async fn decode_access_token(&self, token: &str, audience: &str) -> Result<Value, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
        if header.typ.as_deref() != Some("at+jwt") {
            return Err(format!("typ {:?}", header.typ));
        }
        let kid = header.kid.ok_or("no kid")?;
        let jwks = self.jwks().await;
        let jwk = jwks.find(&kid).ok_or("kid not in JWKS")?;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 0;
        jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map(|d| d.claims)
            .map_err(|e| e.to_string())
    }

    /// The code flow up to the code, by raw HTTP: GET the form, POST the
    /// credentials, read the redirect.
    pub async fn login_for_code(
        &self,
        params: &[(&str, &str)],
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = params.to_vec();
        form.push(("username", username));
        form.push(("password", password));
        self.post_form("/oauth2/authorize", None, &form).await
    }

    pub async fn db_query_i64(&self, sql: &str, arg: &str) -> i64 {
        let mut conn = self.db.connect().await.expect("db");
        sqlx::query_scalar(sql)
            .bind(arg)
            .fetch_one(&mut conn)
            .await
            .expect("query")
    }
}

/// A PKCE pair (verifier, S256 challenge) made here, not by the server's code.
pub fn pkce() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    (verifier, URL_SAFE_NO_PAD.encode(digest.as_ref()))
}

/// The value of `name` in the Location header's query.
pub fn location_param(res: &reqwest::Response, name: &str) -> Option<String> {
    let location = res.headers().get("location")?.to_str().ok()?;
    let url = url::Url::parse(location).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
