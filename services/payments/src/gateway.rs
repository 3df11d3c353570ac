//! The payment operations: domain decisions, provider calls and saves in the
//! order that keeps every failure safe (ADR 0016):
//!
//! * The provider is called *before* anything is saved, with an idempotency
//!   key derived from the payment (`<id>.a<n>`, `<id>.r<n>`, `<id>.capture`,
//!   `<id>.void`). A failure that certainly had no effect (circuit open,
//!   provider error) changes nothing here: 503, and the client's retry sends
//!   the same key. A crash between the provider's answer and the save is
//!   healed the same way, or by the provider's webhook.
//! * Before any provider call the payment's reconciliation intent is saved
//!   (ADR 0031); for a confirmation in the same transaction as its state
//!   change (`processing`, attempt pending). A crash anywhere after that
//!   leaves a payment the reconciler resolves from the provider's records;
//!   the save of the provider's answer removes the intent.
//! * An unknown outcome (timeout) is saved as such (`processing`, a pending
//!   refund) and the intent stays.
//! * Every save presents the ETag read before and carries its event as an
//!   outbox record; a conflict reloads and re-applies the (idempotent) fact.

use std::sync::Arc;

use platform_money::Money;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::domain::{
    AttemptStatus, AuthorizationFact, AuthorizationOutcome, CaptureMethod, DomainEvent, Fact,
    Payment, PaymentId, ProviderReference, RefundFact, RefundStatus,
};
use crate::error::PaymentsError;
use crate::fault;
use crate::provider::{
    AuthorizeRequest, AuthorizeResult, PaymentProvider, ProviderAuthorization, ProviderError,
    ProviderRefund,
};
use crate::store::{Intent, KeyValue, PaymentStore, ReconcileIntent, Versioned, WriteMode};

const WEBHOOK_TTL_SECS: u64 = 7 * 24 * 3600;
const SAVE_ATTEMPTS: usize = 8;

#[derive(Debug, Clone)]
pub struct Gateway {
    pub store: PaymentStore,
    pub kv: KeyValue,
    pub provider: Arc<dyn PaymentProvider>,
    pub vanished_after_secs: i64,
    /// How long after a provider call starts its intent is first checked by
    /// the reconciler: above the call's own timeout, so that the
    /// reconciler does not race a call still in flight.
    pub first_check_after_secs: i64,
}

/// What a create did.
#[derive(Debug)]
pub enum Created {
    New(Payment),
    /// The idempotency key's payment existed already (a repeated create
    /// whose first answer was lost): that payment, unchanged.
    Existing(Payment),
}

/// How a confirmation, capture or refund ended.
#[derive(Debug)]
pub enum Outcome {
    /// The provider answered; the payment is saved with that answer.
    Done(Payment),
    /// The provider's answer is unknown (timeout); saved as pending and
    /// queued for reconciliation.
    Pending(Payment),
}

/// A webhook event from the provider.
#[derive(Debug, Deserialize)]
pub struct WebhookEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub data: serde_json::Value,
}

fn provider_error(e: ProviderError) -> PaymentsError {
    match e {
        ProviderError::Unavailable(reason) | ProviderError::NotSent(reason) => {
            PaymentsError::ProviderUnavailable(reason)
        }
        // The provider's "your request is invalid": the caller's input
        // (contracts/openapi/payments.yaml, 422 provider_rejected). A 404 on
        // a capture, void or refund says the provider does not know the
        // payment: nothing changed, and retrying cannot help, so it is not
        // a 502 either.
        ProviderError::Rejected {
            status: 400 | 404 | 422,
            code,
            message,
        } => PaymentsError::ProviderRejected { code, message },
        other => PaymentsError::ProviderFailed(other.to_string()),
    }
}

impl Gateway {
    /// Creates a payment; with `idempotency_key` (scoped to the client) its
    /// id is derived from the key and written first-write, so a repeated
    /// create finds the payment of the first one instead of making another,
    /// even when the first answer and its idempotency record were lost.
    pub async fn create(
        &self,
        money: Money,
        customer_reference: String,
        capture_method: CaptureMethod,
        idempotency_key: Option<&str>,
        owner_client_id: String,
    ) -> Result<Created, PaymentsError> {
        let id = idempotency_key.map_or_else(PaymentId::new, PaymentId::for_idempotency_key);
        let mut payment = Payment::create(
            id,
            money,
            customer_reference,
            capture_method,
            OffsetDateTime::now_utc(),
        );
        payment.owner_client_id = Some(owner_client_id);
        match self
            .store
            .save(&payment, None, &payment.created_event(), Intent::Keep)
            .await
        {
            Ok(()) => {}
            Err(PaymentsError::Conflict) if idempotency_key.is_some() => {
                let existing = self.get(id).await?;
                let same = existing.owner_client_id == payment.owner_client_id
                    && existing.money == payment.money
                    && existing.customer_reference == payment.customer_reference
                    && existing.capture_method == payment.capture_method;
                return if same {
                    Ok(Created::Existing(existing))
                } else {
                    Err(PaymentsError::IdempotencyKeyReused)
                };
            }
            Err(e) => return Err(e),
        }
        fault::crash_point(fault::AFTER_CREATE, &payment.customer_reference);
        Ok(Created::New(payment))
    }

    /// Payments in creation order; only `owner`'s when given (ADR 0028).
    pub async fn list(
        &self,
        owner: Option<&str>,
        customer_reference: Option<&str>,
        after: Option<u64>,
        limit: usize,
    ) -> Result<crate::store::Page, PaymentsError> {
        self.store
            .list(owner, customer_reference, after, limit)
            .await
    }

    pub async fn get(&self, id: PaymentId) -> Result<Payment, PaymentsError> {
        Ok(self.read(id).await?.value)
    }

    /// Applies `fact` to the saved payment: reload and re-apply on an ETag
    /// conflict; a fact that changes nothing saves nothing.
    pub async fn apply(&self, id: PaymentId, fact: &Fact) -> Result<Payment, PaymentsError> {
        self.apply_to(id, None, fact, Intent::Keep).await
    }

    /// [`Self::apply`] starting from a payment read before (saves a read; if
    /// it changed since, the ETag conflict reloads it).
    async fn apply_to(
        &self,
        id: PaymentId,
        mut read: Option<Versioned<Payment>>,
        fact: &Fact,
        intent: Intent,
    ) -> Result<Payment, PaymentsError> {
        for _ in 0..SAVE_ATTEMPTS {
            let loaded = match read.take() {
                Some(loaded) => loaded,
                None => self.store.load(id).await?.ok_or(PaymentsError::NotFound)?,
            };
            let mut payment = loaded.value;
            let Some(event) = payment.apply(fact, OffsetDateTime::now_utc())? else {
                return Ok(payment);
            };
            match self
                .store
                .save(&payment, loaded.etag, &event, intent.clone())
                .await
            {
                Ok(()) => {
                    log_event(&payment, &event);
                    return Ok(payment);
                }
                Err(PaymentsError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(PaymentsError::Conflict)
    }

    async fn read(&self, id: PaymentId) -> Result<Versioned<Payment>, PaymentsError> {
        self.store.load(id).await?.ok_or(PaymentsError::NotFound)
    }

    fn intent(&self, id: PaymentId) -> ReconcileIntent {
        ReconcileIntent::new(
            id,
            OffsetDateTime::now_utc() + time::Duration::seconds(self.first_check_after_secs),
        )
    }

    pub async fn confirm(
        &self,
        id: PaymentId,
        card_number: String,
    ) -> Result<Outcome, PaymentsError> {
        let read = self.read(id).await?;
        let payment = read.value.clone();
        // A confirmation whose intent was saved but whose answer never was
        // (a crash, a lost response) is sent again under the same key.
        let attempt = match payment.pending_attempt() {
            Some(attempt) => attempt,
            None => {
                let attempt = payment.next_attempt()?;
                self.apply_to(
                    id,
                    Some(read),
                    &Fact::AttemptStarted { attempt },
                    Intent::Record(self.intent(id)),
                )
                .await?;
                attempt
            }
        };
        fault::crash_point(fault::BEFORE_PROVIDER, &payment.customer_reference);
        let reference = ProviderReference::Attempt(id, attempt).to_string();
        let request = AuthorizeRequest {
            reference: reference.clone(),
            amount: payment.money.amount(),
            currency: payment.money.currency().as_str().to_owned(),
            card_number,
            capture: payment.capture_method == CaptureMethod::Automatic,
        };
        let answer = self.provider.authorize(request).await;
        fault::crash_point(fault::AFTER_PROVIDER, &payment.customer_reference);
        match answer {
            Ok(AuthorizeResult::Authorization(auth)) => {
                let fact = self.fact_for_attempt(&auth, id, attempt)?;
                Ok(Outcome::Done(
                    self.apply_to(id, None, &fact, Intent::ClearIfSettled)
                        .await?,
                ))
            }
            Ok(AuthorizeResult::Declined { code }) => {
                let fact = Fact::Authorization(AuthorizationFact {
                    attempt,
                    provider_id: None,
                    outcome: AuthorizationOutcome::Declined { code: code.clone() },
                    amount: payment.money.amount(),
                    currency: payment.money.currency().as_str().to_owned(),
                    captured_amount: 0,
                });
                let payment = self
                    .apply_to(id, None, &fact, Intent::ClearIfSettled)
                    .await?;
                Err(PaymentsError::Declined {
                    code,
                    payment: Box::new(payment),
                })
            }
            Err(ProviderError::Unknown(reason)) => {
                tracing::warn!(payment.id = %id, provider.reference = %reference, %reason, "authorization outcome unknown");
                Ok(Outcome::Pending(self.get(id).await?))
            }
            Err(e) => {
                // Nothing happened at the provider (or, after a sidecar retry
                // of a timed-out call, maybe something did: the intent stays
                // for one check, except when the call was certainly not sent).
                let clear = matches!(e, ProviderError::NotSent(_));
                let intent = if clear {
                    Intent::ClearIfSettled
                } else {
                    Intent::Keep
                };
                if let Err(withdraw) = self
                    .apply_to(id, None, &Fact::AttemptNotSent { attempt }, intent)
                    .await
                {
                    tracing::warn!(payment.id = %id, error = ?withdraw, "could not withdraw an attempt; reconciliation resolves it");
                }
                Err(provider_error(e))
            }
        }
    }

    fn fact_for_attempt(
        &self,
        auth: &ProviderAuthorization,
        id: PaymentId,
        attempt: u32,
    ) -> Result<Fact, PaymentsError> {
        match auth.to_fact() {
            Some((ProviderReference::Attempt(p, n), fact)) if p == id && n == attempt => Ok(fact),
            _ => Err(PaymentsError::ProviderFailed(format!(
                "authorization {} has reference {:?}, expected {}",
                auth.id,
                auth.reference,
                ProviderReference::Attempt(id, attempt)
            ))),
        }
    }

    pub async fn capture(
        &self,
        id: PaymentId,
        amount: Option<i64>,
    ) -> Result<Outcome, PaymentsError> {
        let read = self.read(id).await?;
        let amount = read.value.check_capture(amount)?;
        let (authorization, attempt) = authorized_attempt(&read.value)?;
        let key = format!("{id}.capture");
        self.store.record_intent(&self.intent(id)).await?;
        match self.provider.capture(&authorization, amount, &key).await {
            Ok(auth) => {
                let fact = self.fact_for_attempt(&auth, id, attempt)?;
                Ok(Outcome::Done(
                    self.apply_to(id, Some(read), &fact, Intent::ClearIfSettled)
                        .await?,
                ))
            }
            Err(ProviderError::Unknown(reason)) => {
                tracing::warn!(payment.id = %id, %reason, "capture outcome unknown");
                Ok(Outcome::Pending(read.value))
            }
            Err(e) => Err(self.after_failure(id, e).await),
        }
    }

    pub async fn cancel(&self, id: PaymentId) -> Result<Payment, PaymentsError> {
        let read = self.read(id).await?;
        if !read.value.check_cancel()? {
            return self
                .apply_to(
                    id,
                    Some(read),
                    &Fact::CanceledBeforeConfirmation,
                    Intent::Keep,
                )
                .await;
        }
        let (authorization, attempt) = authorized_attempt(&read.value)?;
        let key = format!("{id}.void");
        self.store.record_intent(&self.intent(id)).await?;
        match self.provider.void(&authorization, &key).await {
            Ok(auth) => {
                let fact = self.fact_for_attempt(&auth, id, attempt)?;
                self.apply_to(id, Some(read), &fact, Intent::ClearIfSettled)
                    .await
            }
            Err(ProviderError::Unknown(reason)) => {
                tracing::warn!(payment.id = %id, %reason, "void outcome unknown");
                Err(PaymentsError::ProviderUnavailable(reason))
            }
            Err(e) => Err(self.after_failure(id, e).await),
        }
    }

    /// Returns the payment and the refund's number.
    ///
    /// With an `Idempotency-Key` (scoped to the client) the refund is keyed
    /// by it, so that a retry never refunds twice, even when the first
    /// answer and its idempotency record were lost (ADR 0046): see
    /// [`Gateway::keyed_refund`].
    pub async fn refund(
        &self,
        id: PaymentId,
        amount: Option<i64>,
        idempotency_key: Option<&str>,
    ) -> Result<(Outcome, u32), PaymentsError> {
        if let Some(key) = idempotency_key {
            return self.keyed_refund(id, amount, key).await;
        }
        let read = self.read(id).await?;
        let (number, amount) = read.value.check_refund(amount)?;
        let (authorization, _) = authorized_attempt(&read.value)?;
        let reference = ProviderReference::Refund(id, number).to_string();
        self.store.record_intent(&self.intent(id)).await?;
        match self
            .provider
            .refund(&authorization, amount, &reference)
            .await
        {
            Ok(refund) => {
                let fact = refund_fact(&refund, id, number)?;
                Ok((
                    Outcome::Done(
                        self.apply_to(id, Some(read), &fact, Intent::ClearIfSettled)
                            .await?,
                    ),
                    number,
                ))
            }
            Err(ProviderError::Unknown(reason)) => {
                tracing::warn!(payment.id = %id, provider.reference = %reference, %reason, "refund outcome unknown");
                let fact = Fact::Refund(RefundFact {
                    refund: number,
                    provider_id: None,
                    amount,
                    status: RefundStatus::Pending,
                });
                let payment = self.apply_to(id, Some(read), &fact, Intent::Keep).await?;
                Ok((Outcome::Pending(payment), number))
            }
            Err(e) => Err(self.after_failure(id, e).await),
        }
    }

    /// A refund keyed by the client's `Idempotency-Key`. The refund is saved
    /// as pending under the key, in the same write as the payment's
    /// reconciliation intent, *before* the provider is called. A retry with
    /// the key finds it: a settled refund is answered as it is; a pending
    /// one is sent again under its own provider reference (`<id>.r<n>`, on
    /// which the provider is idempotent). A crash after the provider's
    /// answer leaves the pending refund for the reconciler, never room for a
    /// second refund number.
    async fn keyed_refund(
        &self,
        id: PaymentId,
        amount: Option<i64>,
        key: &str,
    ) -> Result<(Outcome, u32), PaymentsError> {
        let (payment, number, amount) = self.start_keyed_refund(id, amount, key).await?;
        let status = payment
            .refund(number)
            .map_or(RefundStatus::Pending, |r| r.status);
        if status != RefundStatus::Pending {
            return Ok((Outcome::Done(payment), number));
        }
        let (authorization, _) = authorized_attempt(&payment)?;
        let reference = ProviderReference::Refund(id, number).to_string();
        let answer = self
            .provider
            .refund(&authorization, amount, &reference)
            .await;
        fault::crash_point(fault::AFTER_REFUND, &payment.customer_reference);
        match answer {
            Ok(refund) => {
                let fact = refund_fact(&refund, id, number)?;
                let payment = self
                    .apply_to(id, None, &fact, Intent::ClearIfSettled)
                    .await?;
                Ok((Outcome::Done(payment), number))
            }
            Err(ProviderError::Unknown(reason)) => {
                tracing::warn!(payment.id = %id, provider.reference = %reference, %reason, "refund outcome unknown");
                Ok((Outcome::Pending(self.read(id).await?.value), number))
            }
            // The pending refund and its intent stay: a retry with the key
            // resumes it, or the reconciler settles it from the provider's
            // records (failed once it has vanished).
            Err(e) => Err(provider_error(e)),
        }
    }

    /// The key's refund: the one saved before (a retry), or a new pending
    /// one saved with the reconciliation intent. Returns the payment as
    /// saved, the refund's number and amount.
    async fn start_keyed_refund(
        &self,
        id: PaymentId,
        requested: Option<i64>,
        key: &str,
    ) -> Result<(Payment, u32, i64), PaymentsError> {
        for _ in 0..SAVE_ATTEMPTS {
            let loaded = self.read(id).await?;
            if let Some(existing) = loaded.value.refund_for_key(key) {
                // The idempotency record checks the body; without it (lost)
                // another amount under the same key is still refused.
                if requested.is_some_and(|a| a != existing.amount) {
                    return Err(PaymentsError::IdempotencyKeyReused);
                }
                let (number, amount) = (existing.number, existing.amount);
                tracing::info!(payment.id = %id, refund.number = number, "repeated refund: the key's refund exists");
                return Ok((loaded.value, number, amount));
            }
            let (number, amount) = loaded.value.check_refund(requested)?;
            let mut payment = loaded.value;
            let Some(event) =
                payment.start_refund(number, amount, key, OffsetDateTime::now_utc())?
            else {
                return Err(PaymentsError::Conflict);
            };
            match self
                .store
                .save(
                    &payment,
                    loaded.etag,
                    &event,
                    Intent::Record(self.intent(id)),
                )
                .await
            {
                Ok(()) => {
                    log_event(&payment, &event);
                    return Ok((payment, number, amount));
                }
                Err(PaymentsError::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
        Err(PaymentsError::Conflict)
    }

    /// A provider call failed without an outcome. When the request reached
    /// the provider (an earlier try of the sidecar's retries may have done
    /// the work) its intent stays for the reconciler to check; when it was
    /// certainly not sent, the intent goes.
    async fn after_failure(&self, id: PaymentId, e: ProviderError) -> PaymentsError {
        if matches!(e, ProviderError::NotSent(_))
            && let Err(clear) = self.store.clear_intent(id, None).await
        {
            tracing::warn!(payment.id = %id, error = ?clear, "could not clear a reconciliation intent");
        }
        provider_error(e)
    }

    /// Brings the payment in line with the provider's records; returns
    /// whether something is still unknown.
    pub async fn sync(&self, id: PaymentId) -> Result<bool, PaymentsError> {
        let Some(loaded) = self.store.load(id).await? else {
            return Ok(false);
        };
        let payment = loaded.value;
        let age = OffsetDateTime::now_utc() - payment.updated_at.unwrap_or(payment.created_at);
        let old = age.whole_seconds() > self.vanished_after_secs;
        let mut unresolved = false;
        // A call that failed may still have reached the provider.
        if let Ok(next) = payment.next_attempt() {
            let reference = ProviderReference::Attempt(id, next).to_string();
            if let Some(auth) = self
                .provider
                .find_authorization(&reference)
                .await
                .map_err(provider_error)?
            {
                let fact = self.fact_for_attempt(&auth, id, next)?;
                self.apply(id, &fact).await?;
            }
        }
        if payment.status == crate::domain::PaymentStatus::Succeeded {
            let next = u32::try_from(payment.refunds.len())
                .unwrap_or(u32::MAX)
                .saturating_add(1);
            let reference = ProviderReference::Refund(id, next).to_string();
            if let Some(found) = self
                .provider
                .find_refund(&reference)
                .await
                .map_err(provider_error)?
            {
                let fact = refund_fact(&found, id, next)?;
                self.apply(id, &fact).await?;
            }
        }
        for attempt in &payment.attempts {
            if !matches!(
                attempt.status,
                AttemptStatus::Pending | AttemptStatus::Authorized
            ) {
                continue;
            }
            let reference = ProviderReference::Attempt(id, attempt.number).to_string();
            let found = match &attempt.provider_id {
                Some(provider_id) => self.provider.get_authorization(provider_id).await,
                None => self.provider.find_authorization(&reference).await,
            }
            .map_err(provider_error)?;
            match found {
                Some(auth) => {
                    let fact = self.fact_for_attempt(&auth, id, attempt.number)?;
                    self.apply(id, &fact).await?;
                }
                None if attempt.status == AttemptStatus::Pending && old => {
                    self.apply(
                        id,
                        &Fact::AttemptVanished {
                            attempt: attempt.number,
                        },
                    )
                    .await?;
                }
                None if attempt.status == AttemptStatus::Pending => unresolved = true,
                None => {}
            }
        }
        for refund in payment
            .refunds
            .iter()
            .filter(|r| r.status == RefundStatus::Pending)
        {
            let reference = ProviderReference::Refund(id, refund.number).to_string();
            match self
                .provider
                .find_refund(&reference)
                .await
                .map_err(provider_error)?
            {
                Some(found) => {
                    let fact = refund_fact(&found, id, refund.number)?;
                    self.apply(id, &fact).await?;
                }
                None if old => {
                    let fact = Fact::Refund(RefundFact {
                        refund: refund.number,
                        provider_id: None,
                        amount: refund.amount,
                        status: RefundStatus::Failed,
                    });
                    self.apply(id, &fact).await?;
                }
                None => unresolved = true,
            }
        }
        Ok(unresolved)
    }

    /// Applies one verified webhook event, once per event id.
    pub async fn webhook(&self, event: WebhookEvent) -> Result<(), PaymentsError> {
        let seen_key = format!("webhook:{}", event.id);
        if self.kv.get::<serde_json::Value>(&seen_key).await?.is_some() {
            tracing::info!(webhook.id = %event.id, "webhook already applied");
            return Ok(());
        }
        let object_id = event
            .data
            .get("id")
            .and_then(|v| v.as_str())
            .map(ToOwned::to_owned);
        let fact = if event.kind.starts_with("authorization.") {
            crate::provider::psp::parse_authorization(event.data)
                .ok()
                .and_then(|a| a.to_fact())
        } else if event.kind.starts_with("refund.") {
            crate::provider::psp::parse_refund(event.data)
                .ok()
                .and_then(|r| r.to_fact())
        } else {
            None
        };
        match self.ours(fact).await? {
            Some((id, read, fact)) => {
                match self.apply_to(id, Some(read), &fact, Intent::Keep).await {
                    Ok(_) => {}
                    // Not consistent with what we know: ask the provider.
                    Err(PaymentsError::Domain(e)) => {
                        tracing::warn!(payment.id = %id, error = %e, "webhook does not fit; syncing");
                        self.sync(id).await?;
                    }
                    Err(e) => return Err(e),
                }
            }
            None => self.sync_unknown(&event.kind, object_id.as_deref()).await?,
        }
        self.kv
            .put(
                &seen_key,
                &serde_json::json!({ "type": event.kind }),
                WriteMode::Overwrite,
                WEBHOOK_TTL_SECS,
            )
            .await?;
        Ok(())
    }

    /// A webhook about an object we do not know: fetch it from the provider
    /// and apply it if it turns out to be ours.
    async fn sync_unknown(&self, kind: &str, object_id: Option<&str>) -> Result<(), PaymentsError> {
        let Some(object_id) = object_id else {
            tracing::info!(webhook.type = kind, "webhook without an object id ignored");
            return Ok(());
        };
        if !kind.starts_with("authorization.") {
            tracing::info!(webhook.type = kind, provider.id = object_id, "webhook for an unknown object ignored");
            return Ok(());
        }
        let found = self
            .provider
            .get_authorization(object_id)
            .await
            .map_err(provider_error)?;
        match self
            .ours(found.as_ref().and_then(ProviderAuthorization::to_fact))
            .await?
        {
            Some((id, read, fact)) => {
                self.apply_to(id, Some(read), &fact, Intent::Keep).await?;
            }
            None => tracing::info!(
                provider.id = object_id,
                "provider object is not one of our payments"
            ),
        }
        Ok(())
    }

    /// The payment a provider fact is about, read, when it is one of ours.
    async fn ours(
        &self,
        fact: Option<(ProviderReference, Fact)>,
    ) -> Result<Option<(PaymentId, Versioned<Payment>, Fact)>, PaymentsError> {
        let Some((reference, fact)) = fact else {
            return Ok(None);
        };
        let id = reference.payment_id();
        Ok(self.store.load(id).await?.map(|read| (id, read, fact)))
    }
}

fn authorized_attempt(payment: &Payment) -> Result<(String, u32), PaymentsError> {
    payment
        .attempts
        .iter()
        .find(|a| a.status == AttemptStatus::Authorized)
        .and_then(|a| Some((a.provider_id.clone()?, a.number)))
        .ok_or_else(|| {
            PaymentsError::Internal("authorized payment without an authorization".into())
        })
}

fn refund_fact(refund: &ProviderRefund, id: PaymentId, number: u32) -> Result<Fact, PaymentsError> {
    match refund.to_fact() {
        Some((ProviderReference::Refund(p, n), fact)) if p == id && n == number => Ok(fact),
        _ => Err(PaymentsError::ProviderFailed(format!(
            "refund {} has reference {:?}, expected {}",
            refund.id,
            refund.reference,
            ProviderReference::Refund(id, number)
        ))),
    }
}

fn log_event(payment: &Payment, event: &DomainEvent) {
    tracing::info!(
        payment.id = %payment.id,
        payment.status = %payment.status,
        event.type = event.event_type(),
        "payment changed"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(status: u16) -> ProviderError {
        ProviderError::Rejected {
            status,
            code: "resource_missing".to_owned(),
            message: "no such authorization".to_owned(),
        }
    }

    #[test]
    fn a_provider_that_does_not_know_the_payment_rejects_the_request() {
        for status in [400, 404, 422] {
            assert!(
                matches!(
                    provider_error(rejected(status)),
                    PaymentsError::ProviderRejected { ref code, .. } if code == "resource_missing"
                ),
                "{status}"
            );
        }
        assert!(matches!(
            provider_error(rejected(409)),
            PaymentsError::ProviderFailed(_)
        ));
    }
}
