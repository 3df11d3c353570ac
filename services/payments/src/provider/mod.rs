//! The provider adapter: what payments needs from a payment service provider,
//! independent of which one. [`psp::PspProvider`] is the adapter for the PSP
//! sandbox (and any provider with its API); a real provider is another
//! implementation of [`PaymentProvider`].

pub mod psp;

use futures::future::BoxFuture;

use crate::domain::{
    AuthorizationFact, AuthorizationOutcome, Fact, ProviderReference, RefundFact, RefundStatus,
};

/// An authorization as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderAuthorization {
    pub id: String,
    pub status: ProviderAuthorizationStatus,
    pub amount: i64,
    pub currency: String,
    pub captured_amount: i64,
    pub reference: String,
    pub decline_code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderAuthorizationStatus {
    Authorized,
    Captured,
    Voided,
    Declined,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRefund {
    pub id: String,
    pub authorization_id: String,
    pub amount: i64,
    pub currency: String,
    pub reference: String,
    pub succeeded: bool,
}

impl ProviderAuthorization {
    /// The domain fact this snapshot stands for; `None` when its reference is
    /// not one of ours or not an attempt.
    pub fn to_fact(&self) -> Option<(ProviderReference, Fact)> {
        let reference = ProviderReference::parse(&self.reference)?;
        let ProviderReference::Attempt(_, attempt) = reference else {
            return None;
        };
        let outcome = match self.status {
            ProviderAuthorizationStatus::Authorized => AuthorizationOutcome::Authorized,
            ProviderAuthorizationStatus::Captured => AuthorizationOutcome::Captured,
            ProviderAuthorizationStatus::Voided => AuthorizationOutcome::Voided,
            ProviderAuthorizationStatus::Declined => AuthorizationOutcome::Declined {
                code: self
                    .decline_code
                    .clone()
                    .unwrap_or_else(|| "declined".into()),
            },
        };
        Some((
            reference,
            Fact::Authorization(AuthorizationFact {
                attempt,
                provider_id: Some(self.id.clone()),
                outcome,
                amount: self.amount,
                currency: self.currency.clone(),
                captured_amount: self.captured_amount,
            }),
        ))
    }
}

impl ProviderRefund {
    pub fn to_fact(&self) -> Option<(ProviderReference, Fact)> {
        let reference = ProviderReference::parse(&self.reference)?;
        let ProviderReference::Refund(_, refund) = reference else {
            return None;
        };
        Some((
            reference,
            Fact::Refund(RefundFact {
                refund,
                provider_id: Some(self.id.clone()),
                amount: self.amount,
                status: if self.succeeded {
                    RefundStatus::Succeeded
                } else {
                    RefundStatus::Pending
                },
            }),
        ))
    }
}

/// The answer to an authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeResult {
    Authorization(ProviderAuthorization),
    Declined { code: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest {
    /// Our reference of the attempt; also the provider idempotency key.
    pub reference: String,
    pub amount: i64,
    pub currency: String,
    pub card_number: String,
    pub capture: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The call never left the sidecar (circuit open, no connection): it
    /// certainly had no effect.
    #[error("provider not reachable: {0}")]
    NotSent(String),
    /// The provider answered a retriable error (5xx, 429, 408), after the
    /// sidecar's retries. The provider documents these as "nothing
    /// happened", but an earlier attempt of the same call may have timed out
    /// after doing the work: only a status query is sure. Retrying with the
    /// same idempotency key is safe.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The call may or may not have had an effect (a timeout): only a status
    /// query can tell.
    #[error("provider outcome unknown: {0}")]
    Unknown(String),
    /// The provider refused the request (a 4xx other than a decline).
    #[error("provider rejected the request ({status} {code}): {message}")]
    Rejected {
        status: u16,
        code: String,
        message: String,
    },
    /// The provider answered something we cannot read.
    #[error("unexpected provider response: {0}")]
    Protocol(String),
}

/// What payments needs from a provider. Every POST carries an idempotency
/// key derived from our reference, so a retry never charges twice.
pub trait PaymentProvider: Send + Sync + std::fmt::Debug {
    fn authorize(
        &self,
        request: AuthorizeRequest,
    ) -> BoxFuture<'_, Result<AuthorizeResult, ProviderError>>;

    /// Captures `amount`; `key` is the idempotency key of this capture.
    fn capture<'a>(
        &'a self,
        authorization_id: &'a str,
        amount: i64,
        key: &'a str,
    ) -> BoxFuture<'a, Result<ProviderAuthorization, ProviderError>>;

    fn void<'a>(
        &'a self,
        authorization_id: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<ProviderAuthorization, ProviderError>>;

    /// Refunds `amount`; `reference` is our refund reference and key.
    fn refund<'a>(
        &'a self,
        authorization_id: &'a str,
        amount: i64,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<ProviderRefund, ProviderError>>;

    fn get_authorization<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ProviderAuthorization>, ProviderError>>;

    /// Status query by our reference (after a timeout we may not know the id).
    fn find_authorization<'a>(
        &'a self,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<Option<ProviderAuthorization>, ProviderError>>;

    fn find_refund<'a>(
        &'a self,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<Option<ProviderRefund>, ProviderError>>;
}
