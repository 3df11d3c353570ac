//! A service's contract (`contracts/openapi/<service>.yaml`): served as it
//! is at `GET /openapi.yaml`, so that a client in any language finds it on
//! the running service, and compared with the service's router, so that a
//! route cannot be added, removed or renamed without its document
//! (docs/adr/0039-openapi-served-and-fuzzed.md).
//!
//! axum has no public way to list a router's routes. The comparison reads
//! the path templates from the router's `Debug` output (axum 0.8 prints its
//! path table there) and asks each path which methods it routes: a request
//! with a method no route registers reaches the path's method fallback,
//! and axum answers it with the `Allow` header of the methods registered
//! there, before any handler runs. Both are checked to be non-empty, so a
//! change in axum's output fails the check instead of passing it.

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::ServiceExt;

/// Where every service serves its document.
pub const PATH: &str = "/openapi.yaml";

/// The media type the document is served with (RFC 9512).
pub const MEDIA_TYPE: &str = "application/yaml";

/// The routes left out of the comparison on both sides: the ones only the
/// service's own sidecar calls (subscriptions, their dead letters, jobs,
/// `/dapr/*`) and the operational ones every service shares. They are
/// described by the AsyncAPI document, the Dapr components and
/// docs/architecture.md rather than by the API's contract. A service adds
/// its own input bindings (e.g. a cron binding's route).
pub const NOT_IN_CONTRACT: &[&str] = &[
    "/events/",
    "/deadletters/",
    "/jobs/",
    "/job/",
    "/dapr/",
    "/healthz",
    "/readyz",
    "/metrics",
];

/// `GET /openapi.yaml` answering `document` (embedded at compile time with
/// `include_str!`). Anyone may read it: the contract is public, like
/// auth's discovery document, and it holds no secret.
pub fn routes<S>(document: &'static str) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new().route(PATH, get(move || async move { serve(document) }))
}

fn serve(document: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        document,
    )
        .into_response()
}

/// One operation: an HTTP method (upper case) on a path template
/// (`/v1/payments/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Operation {
    pub method: String,
    pub path: String,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("the document is not YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("the document has no `paths`")]
    NoPaths,
}

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The operations `document` describes.
pub fn documented_operations(document: &str) -> Result<BTreeSet<Operation>, DocumentError> {
    let value: serde_yaml::Value = serde_yaml::from_str(document)?;
    let paths = value
        .get("paths")
        .and_then(serde_yaml::Value::as_mapping)
        .ok_or(DocumentError::NoPaths)?;
    let mut operations = BTreeSet::new();
    for (path, item) in paths {
        let (Some(path), Some(item)) = (path.as_str(), item.as_mapping()) else {
            continue;
        };
        for (method, _) in item {
            if let Some(method) = method.as_str().filter(|m| METHODS.contains(m)) {
                operations.insert(Operation {
                    method: method.to_ascii_uppercase(),
                    path: path.to_owned(),
                });
            }
        }
    }
    Ok(operations)
}

/// The path templates `router` routes, read from its `Debug` output
/// (`Router { path_router: … Node { paths: {RouteId(1): "/v1/x", …} },
/// fallback_router: … }`; the fallback router's own catch-all paths are
/// not routes).
pub fn routed_paths(router: &Router) -> BTreeSet<String> {
    let text = format!("{router:?}");
    let routes = text.split("fallback_router:").next().unwrap_or_default();
    let mut paths = BTreeSet::new();
    let mut rest = routes;
    while let Some(at) = rest.find("RouteId(") {
        rest = &rest[at + "RouteId(".len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let Some(after) = rest[digits..].strip_prefix("): \"") else {
            continue;
        };
        if let Some(end) = after.find('"') {
            paths.insert(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    paths
}

/// A concrete path matching `template`: every `{param}` (or `{*rest}`)
/// replaced by a sample segment.
fn sample_path(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                "1"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The operations `router` routes: each path of [`routed_paths`] with the
/// methods its `Allow` header names (`HEAD` left out: axum answers it with
/// the `GET` route). A path without an `Allow` header (a whole service
/// routed there) counts as method `ANY`.
pub async fn routed_operations(router: &Router) -> BTreeSet<Operation> {
    let probe = Method::from_bytes(b"CONTRACTPROBE").unwrap_or(Method::TRACE);
    let mut operations = BTreeSet::new();
    for path in routed_paths(router) {
        let request = Request::builder()
            .method(probe.clone())
            .uri(sample_path(&path))
            .body(Body::empty());
        let Ok(request) = request else {
            operations.insert(Operation {
                method: "UNPROBEABLE".into(),
                path,
            });
            continue;
        };
        let response = match router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let allow = response
            .headers()
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match allow {
            Some(allow) => {
                for method in allow.split(',').map(str::trim) {
                    if !method.is_empty() && method != "HEAD" {
                        operations.insert(Operation {
                            method: method.to_owned(),
                            path: path.clone(),
                        });
                    }
                }
            }
            None => {
                operations.insert(Operation {
                    method: "ANY".into(),
                    path,
                });
            }
        }
    }
    operations
}

/// How a router and its document differ, leaving out the paths starting
/// with one of `excluded`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ContractDiff {
    /// Routed, not in the document.
    pub undocumented: BTreeSet<Operation>,
    /// In the document, not routed.
    pub unrouted: BTreeSet<Operation>,
    /// How many operations both have (so that "no difference" over two
    /// empty sets is seen).
    pub matched: usize,
}

impl ContractDiff {
    pub fn is_empty(&self) -> bool {
        self.undocumented.is_empty() && self.unrouted.is_empty()
    }
}

impl std::fmt::Display for ContractDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} operations in both", self.matched)?;
        for op in &self.undocumented {
            writeln!(f, "  routed but not documented: {op}")?;
        }
        for op in &self.unrouted {
            writeln!(f, "  documented but not routed: {op}")?;
        }
        Ok(())
    }
}

/// `template` with every parameter written `{}`: the names of path
/// parameters are the document's and the code's own business, their places
/// are the contract.
fn unnamed_parameters(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                "{}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Compares the operations `router` routes with the ones `document`
/// describes, except under `excluded` (e.g. [`NOT_IN_CONTRACT`]). Path
/// parameters are compared by place, not by name (`{}` in the report).
pub async fn compare(
    router: &Router,
    document: &str,
    excluded: &[&str],
) -> Result<ContractDiff, DocumentError> {
    let kept = |op: &Operation| !excluded.iter().any(|prefix| op.path.starts_with(prefix));
    let unnamed = |op: Operation| Operation {
        path: unnamed_parameters(&op.path),
        method: op.method,
    };
    let documented: BTreeSet<Operation> = documented_operations(document)?
        .into_iter()
        .filter(kept)
        .map(unnamed)
        .collect();
    let routed: BTreeSet<Operation> = routed_operations(router)
        .await
        .into_iter()
        .filter(kept)
        .map(unnamed)
        .collect();
    Ok(ContractDiff {
        undocumented: routed.difference(&documented).cloned().collect(),
        unrouted: documented.difference(&routed).cloned().collect(),
        matched: routed.intersection(&documented).count(),
    })
}

/// The whole contract check a service's test runs: `router` serves
/// `document` byte for byte at [`PATH`] as [`MEDIA_TYPE`], and routes
/// exactly its operations outside `excluded`. Returns how many operations
/// matched, or a report of every difference.
pub async fn check(router: &Router, document: &str, excluded: &[&str]) -> Result<usize, String> {
    let request = Request::get(PATH)
        .body(Body::empty())
        .map_err(|e| e.to_string())?;
    let response = match router.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status();
    let media_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .map_err(|e| e.to_string())?;
    if !status.is_success() || media_type != MEDIA_TYPE || body != document.as_bytes() {
        return Err(format!(
            "GET {PATH} answered {status} {media_type:?} with {} bytes, not the document ({} bytes)",
            body.len(),
            document.len()
        ));
    }
    let diff = compare(router, document, excluded)
        .await
        .map_err(|e| e.to_string())?;
    if diff.is_empty() && diff.matched > 0 {
        Ok(diff.matched)
    } else {
        Err(format!("the router and its document differ: {diff}"))
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::to_bytes;
    use axum::http::{Request, StatusCode};
    use axum::routing::{get, post};
    use tower::ServiceExt;

    use super::{NOT_IN_CONTRACT, Operation, check, compare, routed_paths, routes};

    // The document names the parameter `thing_id`, the router `id`.
    const DOCUMENT: &str = "openapi: 3.1.0
paths:
  /openapi.yaml:
    get: {}
  /v1/things:
    get: {}
    post: {}
  /v1/things/{thing_id}:
    get: {}
  /healthz:
    get: {}
";

    async fn ok() -> &'static str {
        "ok"
    }

    fn router() -> Router {
        Router::new()
            .route("/v1/things", get(ok).post(ok))
            .route("/v1/things/{id}", get(ok))
            .route("/events/payments", post(ok))
            .merge(routes(DOCUMENT))
    }

    fn op(method: &str, path: &str) -> Operation {
        Operation {
            method: method.into(),
            path: path.into(),
        }
    }

    #[tokio::test]
    async fn serves_the_document_as_yaml() {
        let response = router()
            .oneshot(Request::get("/openapi.yaml").body(String::new()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/yaml");
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert_eq!(body, DOCUMENT.as_bytes());
    }

    #[test]
    fn reads_the_paths_of_a_router() {
        let paths = routed_paths(&router());
        assert_eq!(
            paths.into_iter().collect::<Vec<_>>(),
            [
                "/events/payments",
                "/openapi.yaml",
                "/v1/things",
                "/v1/things/{id}"
            ]
        );
    }

    #[tokio::test]
    async fn the_whole_check_passes_and_fails_as_it_should() {
        assert_eq!(check(&router(), DOCUMENT, NOT_IN_CONTRACT).await, Ok(4));
        let stale = DOCUMENT.replace("openapi: 3.1.0", "openapi: 3.1.1");
        let served_other = check(&router(), &stale, NOT_IN_CONTRACT).await.unwrap_err();
        assert!(served_other.contains("not the document"), "{served_other}");
        let extra = router().route("/v1/more", get(ok));
        let undocumented = check(&extra, DOCUMENT, NOT_IN_CONTRACT).await.unwrap_err();
        assert!(undocumented.contains("GET /v1/more"), "{undocumented}");
    }

    #[tokio::test]
    async fn a_router_matching_its_document_has_no_difference() {
        let diff = compare(&router(), DOCUMENT, NOT_IN_CONTRACT).await.unwrap();
        assert!(diff.is_empty(), "{diff}");
        assert_eq!(diff.matched, 4);
    }

    #[tokio::test]
    async fn an_undocumented_method_or_path_and_a_missing_route_are_found() {
        let router = router()
            .route("/v1/things/{id}", axum::routing::delete(ok))
            .route("/v1/other", get(ok));
        let document = DOCUMENT.replace(
            "  /v1/things/{thing_id}:\n    get: {}\n",
            "  /v1/things/{thing_id}:\n    get: {}\n    put: {}\n",
        );
        let diff = compare(&router, &document, NOT_IN_CONTRACT).await.unwrap();
        assert_eq!(
            diff.undocumented.into_iter().collect::<Vec<_>>(),
            [op("DELETE", "/v1/things/{}"), op("GET", "/v1/other")]
        );
        assert_eq!(
            diff.unrouted.into_iter().collect::<Vec<_>>(),
            [op("PUT", "/v1/things/{}")]
        );
    }

    #[tokio::test]
    async fn routes_behind_a_refusing_layer_are_still_listed() {
        // Like RequireScope or the app token: every request refused first.
        let guarded = Router::new()
            .route("/v1/things", get(ok).post(ok))
            .route("/v1/things/{id}", get(ok))
            .route_layer(axum::middleware::from_fn(
                |_req: axum::extract::Request, _next: axum::middleware::Next| async {
                    StatusCode::UNAUTHORIZED
                },
            ))
            .merge(routes(DOCUMENT));
        let diff = compare(&guarded, DOCUMENT, NOT_IN_CONTRACT).await.unwrap();
        assert!(diff.is_empty(), "{diff}");
        assert_eq!(diff.matched, 4);
    }
}
