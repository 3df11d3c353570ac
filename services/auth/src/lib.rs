//! `auth`: the platform's identity service (OAuth2/OIDC authorization server).
//!
//! So far the service skeleton: settings, logging, metrics, health and
//! readiness (sidecar and its own PostgreSQL database), graceful shutdown.
//! Its capabilities are tracked in their own issue.

pub mod settings;
pub mod startup;
