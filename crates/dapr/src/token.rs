//! The sidecar's API token (`dapr-api-token`): the one place that adds it,
//! to every call this crate makes, gRPC and HTTP alike, and to the HTTP
//! clients of other crates that must reach the sidecar themselves.

use std::fmt;

use platform_settings::DaprSettings;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret;
use tonic::metadata::{AsciiMetadataValue, MetadataKey};
use tonic::service::Interceptor;

use crate::SidecarError;

/// The header daprd reads the token from (the same name in gRPC metadata).
const HEADER: &str = "dapr-api-token";

/// The token as both transports carry it, parsed once at start-up so that a
/// token that cannot be sent fails the start instead of every call.
#[derive(Clone)]
pub(crate) struct ApiToken(Option<(HeaderValue, AsciiMetadataValue)>);

impl ApiToken {
    pub(crate) fn from_settings(settings: &DaprSettings) -> Result<Self, SidecarError> {
        let Some(token) = &settings.api_token else {
            return Ok(Self(None));
        };
        let invalid =
            || SidecarError::Rejected("dapr.api_token is not a valid header value".into());
        let mut header = HeaderValue::from_str(token.expose_secret()).map_err(|_| invalid())?;
        // Keeps it out of `Debug` output and out of HPACK's index tables.
        header.set_sensitive(true);
        let metadata =
            AsciiMetadataValue::try_from(token.expose_secret()).map_err(|_| invalid())?;
        Ok(Self(Some((header, metadata))))
    }

    /// Default headers for an HTTP client that calls the sidecar.
    pub(crate) fn http_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some((value, _)) = &self.0 {
            headers.insert(HeaderName::from_static(HEADER), value.clone());
        }
        headers
    }
}

impl Interceptor for ApiToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some((_, value)) = &self.0 {
            request
                .metadata_mut()
                .insert(MetadataKey::from_static(HEADER), value.clone());
        }
        Ok(request)
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = if self.0.is_some() {
            "[REDACTED]"
        } else {
            "none"
        };
        f.debug_tuple("ApiToken").field(&shown).finish()
    }
}

/// The headers an HTTP client of another crate must send with every call to
/// this service's sidecar (today: the API token, when there is one). For
/// clients that cannot go through [`crate::Sidecar`], such as the JWKS cache
/// that fetches `auth`'s keys by service invocation; never send these to
/// anything but the sidecar.
pub fn sidecar_http_headers(settings: &DaprSettings) -> Result<HeaderMap, SidecarError> {
    Ok(ApiToken::from_settings(settings)?.http_headers())
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    fn settings(token: Option<&str>) -> DaprSettings {
        DaprSettings {
            host: "127.0.0.1".into(),
            http_port: 1,
            grpc_port: 2,
            api_token: token.map(|t| SecretString::from(t.to_owned())),
            app_token: None,
            probe_timeout_ms: 100,
        }
    }

    #[test]
    fn both_transports_carry_the_token() {
        let mut token = ApiToken::from_settings(&settings(Some("s3cret"))).unwrap();
        assert_eq!(token.http_headers()[HEADER], "s3cret");
        let request = token.call(tonic::Request::new(())).unwrap();
        assert_eq!(request.metadata().get(HEADER).unwrap(), "s3cret");
    }

    #[test]
    fn no_token_no_header() {
        let mut token = ApiToken::from_settings(&settings(None)).unwrap();
        assert!(token.http_headers().is_empty());
        let request = token.call(tonic::Request::new(())).unwrap();
        assert!(request.metadata().get(HEADER).is_none());
    }

    #[test]
    fn the_token_is_never_printed() {
        let token = ApiToken::from_settings(&settings(Some("s3cret"))).unwrap();
        assert!(!format!("{token:?}").contains("s3cret"));
        assert!(!format!("{:?}", token.http_headers()).contains("s3cret"));
    }

    #[test]
    fn a_token_that_cannot_be_sent_fails_at_start() {
        assert!(matches!(
            ApiToken::from_settings(&settings(Some("line\nbreak"))),
            Err(SidecarError::Rejected(_))
        ));
    }
}
