//! A payment intent: its attempts, capture and refunds, and the state machine
//! that provider facts drive.
//!
//! Provider facts are *snapshots* of the provider's object (an authorization
//! with its cumulative captured amount, a refund with its status), so applying
//! them is idempotent and order-insensitive: a fact that would move the
//! payment backwards is stale and ignored, one that repeats what is known
//! changes nothing. The invariants ([`Payment::check_invariants`]) hold after
//! every apply; `tests/` checks that with random, duplicated and reordered facts.

use std::fmt;

use platform_money::{Currency, Money, MoneyError};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::events::{DomainEvent, PaymentEventData, RefundSucceeded};

/// The currencies payments takes: the markets open today. Bookkeeping's
/// `currencies` table books the same ones, so every payment can be booked:
/// extend both together.
pub const ACCEPTED_CURRENCIES: [Currency; 12] = [
    Currency::CHF,
    Currency::CZK,
    Currency::DKK,
    Currency::EUR,
    Currency::GBP,
    Currency::HUF,
    Currency::JPY,
    Currency::KWD,
    Currency::NOK,
    Currency::PLN,
    Currency::SEK,
    Currency::USD,
];

/// The currency of a new payment: an ISO 4217 code payments accepts.
pub fn accepted_currency(code: &str) -> Result<Currency, MoneyError> {
    Currency::parse(code)
        .ok()
        .filter(|c| ACCEPTED_CURRENCIES.contains(c))
        .ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))
}

/// Namespace of [`PaymentId::for_idempotency_key`] (a random v4, fixed forever).
const IDEMPOTENT_CREATES: Uuid = Uuid::from_u128(0x6c1f_3a2e_8d4b_4f0e_9a57_2b1d_c0e4_7f93);

/// Time-ordered (UUIDv7) so that keys and event ids sort by creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PaymentId(Uuid);

impl PaymentId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn parse(s: &str) -> Option<Self> {
        Uuid::parse_str(s).ok().map(Self)
    }

    /// The id of the payment that a create with this (already client-scoped)
    /// idempotency key makes: the same key always names the same payment, so
    /// a create repeated after a crash cannot make a second one (ADR 0031).
    /// A name-based UUID (v5), not time-ordered; nothing sorts by id first.
    pub fn for_idempotency_key(scoped_key: &str) -> Self {
        Self(Uuid::new_v5(&IDEMPOTENT_CREATES, scoped_key.as_bytes()))
    }

    /// The key under which the payment is kept in the state store.
    pub fn state_key(self) -> String {
        format!("payment:{}", self.0)
    }
}

impl Default for PaymentId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for PaymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a provider reference (`<payment id>.a<n>` for attempt n,
/// `<payment id>.r<n>` for refund n) names. References are deterministic, so
/// the provider's idempotency key for a retried call is always the same and a
/// webhook leads back to its payment without an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderReference {
    Attempt(PaymentId, u32),
    Refund(PaymentId, u32),
}

impl ProviderReference {
    pub fn parse(s: &str) -> Option<Self> {
        let (payment, suffix) = s.split_once('.')?;
        let payment = PaymentId::parse(payment)?;
        let number = |digits: &str| digits.parse::<u32>().ok().filter(|n| *n > 0);
        if let Some(n) = suffix.strip_prefix('a') {
            return number(n).map(|n| Self::Attempt(payment, n));
        }
        suffix
            .strip_prefix('r')
            .and_then(number)
            .map(|n| Self::Refund(payment, n))
    }

    pub fn payment_id(self) -> PaymentId {
        match self {
            Self::Attempt(p, _) | Self::Refund(p, _) => p,
        }
    }
}

impl fmt::Display for ProviderReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Attempt(p, n) => write!(f, "{p}.a{n}"),
            Self::Refund(p, n) => write!(f, "{p}.r{n}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    RequiresConfirmation,
    Processing,
    RequiresCapture,
    Succeeded,
    Failed,
    Canceled,
}

impl PaymentStatus {
    /// Position in the state machine; a status never moves to a lower rank.
    fn rank(self) -> u8 {
        match self {
            Self::RequiresConfirmation => 0,
            Self::Processing => 1,
            Self::RequiresCapture => 2,
            Self::Succeeded | Self::Failed | Self::Canceled => 3,
        }
    }

    pub fn is_terminal(self) -> bool {
        self.rank() == 3
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequiresConfirmation => "requires_confirmation",
            Self::Processing => "processing",
            Self::RequiresCapture => "requires_capture",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Automatic: authorize and capture in one provider call. Manual: authorize,
/// then `capture` (or `cancel`) later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMethod {
    #[default]
    Automatic,
    Manual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    /// Sent to the provider; the outcome is not known yet.
    Pending,
    Authorized,
    Declined,
    /// The provider has no trace of it: nothing was charged.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub number: u32,
    pub status: AttemptStatus,
    #[serde(default)]
    pub provider_id: Option<String>,
    #[serde(default)]
    pub decline_code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub number: u32,
    pub amount: i64,
    pub status: RefundStatus,
    #[serde(default)]
    pub provider_id: Option<String>,
    /// The client's `Idempotency-Key` (scoped to the client) that asked for
    /// this refund: a retry with the same key answers this refund instead
    /// of making another (ADR 0046).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The provider's view of an authorization (status query, webhook or call
/// response), in the provider-neutral terms of this domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationFact {
    pub attempt: u32,
    /// Unknown for a decline answered as an error.
    pub provider_id: Option<String>,
    pub outcome: AuthorizationOutcome,
    pub amount: i64,
    pub currency: String,
    /// Cumulative.
    pub captured_amount: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizationOutcome {
    Authorized,
    Captured,
    Voided,
    Declined { code: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundFact {
    pub refund: u32,
    pub provider_id: Option<String>,
    pub amount: i64,
    pub status: RefundStatus,
}

/// Everything that can change a payment after it was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// Attempt `attempt` is about to be sent, or was sent and its outcome is
    /// unknown (a timeout). Saved *before* the provider call, with the
    /// payment's reconciliation intent (ADR 0031).
    AttemptStarted {
        attempt: u32,
    },
    /// Attempt `attempt` certainly did not reach the provider (circuit open,
    /// no connection, or the provider answered that nothing happened): the
    /// payment can be confirmed again, with the same attempt number.
    AttemptNotSent {
        attempt: u32,
    },
    Authorization(AuthorizationFact),
    /// The provider has no record of the attempt long after it was sent.
    AttemptVanished {
        attempt: u32,
    },
    /// Canceled before any money moved (no provider call needed).
    CanceledBeforeConfirmation,
    Refund(RefundFact),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("a payment in status {status} cannot be {action}")]
    InvalidState {
        status: PaymentStatus,
        action: &'static str,
    },
    #[error("amount {requested} exceeds the {what} of {available}")]
    AmountTooLarge {
        requested: i64,
        available: i64,
        what: &'static str,
    },
    #[error("amount must be positive, got {0}")]
    NotPositive(i64),
    #[error("the provider reports {0} that does not match the payment")]
    Mismatch(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub id: PaymentId,
    pub money: Money,
    pub customer_reference: String,
    pub status: PaymentStatus,
    #[serde(default)]
    pub capture_method: CaptureMethod,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    #[serde(default)]
    pub authorized_amount: i64,
    #[serde(default)]
    pub captured_amount: i64,
    #[serde(default)]
    pub refunds: Vec<Refund>,
    #[serde(default)]
    pub failure_code: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// `created_at` in microseconds since the epoch: the listing's sort key
    /// (a JSON number the state store's Query API can compare; exact in a
    /// double until the year 2255).
    #[serde(default)]
    pub created_at_us: i64,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
    /// The OAuth client whose token created it (ADR 0028): only that client
    /// (or a `payments:admin` token) sees or changes it. None: created
    /// before owners were recorded, admin only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_client_id: Option<String>,
}

/// The result of applying a fact: `None` when it changed nothing (a
/// duplicate or a stale fact), else the event to publish with the new state.
pub type Applied = Option<DomainEvent>;

impl Payment {
    pub fn create(
        id: PaymentId,
        money: Money,
        customer_reference: String,
        capture_method: CaptureMethod,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            money,
            customer_reference,
            status: PaymentStatus::RequiresConfirmation,
            capture_method,
            attempts: Vec::new(),
            authorized_amount: 0,
            captured_amount: 0,
            refunds: Vec::new(),
            failure_code: None,
            created_at: now,
            created_at_us: i64::try_from(now.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX),
            updated_at: None,
            owner_client_id: None,
        }
    }

    pub fn created_event(&self) -> DomainEvent {
        DomainEvent::Created(self.event_data(self.money.amount(), self.created_at))
    }

    fn event_data(&self, amount: i64, occurred_at: OffsetDateTime) -> PaymentEventData {
        PaymentEventData {
            payment_id: self.id,
            amount,
            currency: self.money.currency(),
            customer_reference: self.customer_reference.clone(),
            occurred_at,
            status: None,
            reason: None,
        }
    }

    /// The attempt whose intent is saved but whose outcome is not known
    /// (`processing` with its last attempt pending): a repeated confirmation
    /// sends it again, under the same provider idempotency key.
    pub fn pending_attempt(&self) -> Option<u32> {
        let last = self.attempts.last()?;
        (self.status == PaymentStatus::Processing && last.status == AttemptStatus::Pending)
            .then_some(last.number)
    }

    /// Whether some provider outcome is still unknown: a pending attempt or
    /// a pending refund. Reconciliation keeps the payment until it is not.
    pub fn has_unknown_outcome(&self) -> bool {
        self.attempts
            .iter()
            .any(|a| a.status == AttemptStatus::Pending)
            || self
                .refunds
                .iter()
                .any(|r| r.status == RefundStatus::Pending)
    }

    /// The attempt a confirmation sends next (`requires_confirmation` only).
    pub fn next_attempt(&self) -> Result<u32, DomainError> {
        if self.status != PaymentStatus::RequiresConfirmation {
            return Err(self.invalid("confirmed"));
        }
        Ok(self.attempt_count() + 1)
    }

    /// The provider id of the authorization to capture or void.
    pub fn authorization(&self) -> Option<&str> {
        self.attempts
            .iter()
            .find(|a| a.status == AttemptStatus::Authorized)
            .and_then(|a| a.provider_id.as_deref())
    }

    /// The amount a capture of `requested` (all if `None`) would take.
    pub fn check_capture(&self, requested: Option<i64>) -> Result<i64, DomainError> {
        if self.status != PaymentStatus::RequiresCapture {
            return Err(self.invalid("captured"));
        }
        let amount = requested.unwrap_or(self.authorized_amount);
        if amount <= 0 {
            return Err(DomainError::NotPositive(amount));
        }
        if amount > self.authorized_amount {
            return Err(DomainError::AmountTooLarge {
                requested: amount,
                available: self.authorized_amount,
                what: "authorized amount",
            });
        }
        Ok(amount)
    }

    /// Whether a cancel needs the provider (void) or is local.
    pub fn check_cancel(&self) -> Result<bool, DomainError> {
        match self.status {
            PaymentStatus::RequiresConfirmation => Ok(false),
            PaymentStatus::RequiresCapture => Ok(true),
            _ => Err(self.invalid("canceled")),
        }
    }

    /// Amount still refundable: captured minus succeeded and pending refunds.
    pub fn refundable(&self) -> i64 {
        self.captured_amount - self.refunds_committed()
    }

    fn refunds_committed(&self) -> i64 {
        self.refunds
            .iter()
            .filter(|r| r.status != RefundStatus::Failed)
            .map(|r| r.amount)
            .sum()
    }

    /// The refund number a refund of `amount` (all that is left if `None`)
    /// would get, with its amount.
    pub fn check_refund(&self, requested: Option<i64>) -> Result<(u32, i64), DomainError> {
        if self.status != PaymentStatus::Succeeded {
            return Err(self.invalid("refunded"));
        }
        let available = self.refundable();
        let amount = requested.unwrap_or(available);
        if amount <= 0 {
            return Err(DomainError::NotPositive(amount));
        }
        if amount > available {
            return Err(DomainError::AmountTooLarge {
                requested: amount,
                available,
                what: "refundable amount",
            });
        }
        Ok((self.refund_count() + 1, amount))
    }

    fn attempt_count(&self) -> u32 {
        u32::try_from(self.attempts.len()).unwrap_or(u32::MAX)
    }

    fn refund_count(&self) -> u32 {
        u32::try_from(self.refunds.len()).unwrap_or(u32::MAX)
    }

    pub fn refund(&self, number: u32) -> Option<&Refund> {
        self.refunds.iter().find(|r| r.number == number)
    }

    /// The refund an `Idempotency-Key` asked for, if any.
    pub fn refund_for_key(&self, key: &str) -> Option<&Refund> {
        self.refunds
            .iter()
            .find(|r| r.idempotency_key.as_deref() == Some(key))
    }

    /// Records refund `number` of `amount` as pending under `key` before the
    /// provider is called: the key's retries find it (and resume it with the
    /// same provider reference) instead of numbering a new refund.
    pub fn start_refund(
        &mut self,
        number: u32,
        amount: i64,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Applied, DomainError> {
        let applied = self.apply(
            &Fact::Refund(RefundFact {
                refund: number,
                provider_id: None,
                amount,
                status: RefundStatus::Pending,
            }),
            now,
        )?;
        if applied.is_some()
            && let Some(refund) = self.refunds.iter_mut().find(|r| r.number == number)
        {
            refund.idempotency_key = Some(key.to_owned());
        }
        Ok(applied)
    }

    fn invalid(&self, action: &'static str) -> DomainError {
        DomainError::InvalidState {
            status: self.status,
            action,
        }
    }

    /// Applies a fact. On `Err` nothing changed; on `Ok(None)` nothing
    /// changed either (duplicate or stale); on `Ok(Some(event))` the payment
    /// changed and `event` describes it.
    pub fn apply(&mut self, fact: &Fact, now: OffsetDateTime) -> Result<Applied, DomainError> {
        let before = self.clone();
        let result = match fact {
            Fact::AttemptStarted { attempt } => Ok(self.start_attempt(*attempt, now)),
            Fact::Authorization(auth) => self.apply_authorization(auth, now),
            Fact::AttemptVanished { attempt } => Ok(self.vanish_attempt(*attempt, now)),
            Fact::AttemptNotSent { attempt } => Ok(self.withdraw_attempt(*attempt, now)),
            Fact::CanceledBeforeConfirmation => {
                if self.status == PaymentStatus::RequiresConfirmation {
                    self.status = PaymentStatus::Canceled;
                    Ok(Some(DomainEvent::Canceled(
                        self.event_data(self.money.amount(), now),
                    )))
                } else {
                    Ok(None)
                }
            }
            Fact::Refund(refund) => self.apply_refund(refund, now),
        };
        match result {
            Ok(Some(event)) => {
                self.updated_at = Some(now);
                Ok(Some(event))
            }
            Ok(None) => {
                *self = before;
                Ok(None)
            }
            Err(e) => {
                *self = before;
                Err(e)
            }
        }
    }

    fn updated_event(&self, now: OffsetDateTime) -> DomainEvent {
        let mut data = self.event_data(self.money.amount(), now);
        data.status = Some(self.status);
        DomainEvent::Updated(data)
    }

    fn start_attempt(&mut self, attempt: u32, now: OffsetDateTime) -> Applied {
        if self.status != PaymentStatus::RequiresConfirmation || attempt != self.attempt_count() + 1
        {
            return None;
        }
        self.attempts.push(Attempt {
            number: attempt,
            status: AttemptStatus::Pending,
            provider_id: None,
            decline_code: None,
        });
        self.status = PaymentStatus::Processing;
        Some(self.updated_event(now))
    }

    /// Takes back the last attempt while it is still pending and the payment
    /// still waits for it; anything the provider said about it meanwhile wins.
    fn withdraw_attempt(&mut self, attempt: u32, now: OffsetDateTime) -> Applied {
        let last = self.attempts.last()?;
        if self.status != PaymentStatus::Processing
            || last.number != attempt
            || last.status != AttemptStatus::Pending
        {
            return None;
        }
        self.attempts.pop();
        self.status = PaymentStatus::RequiresConfirmation;
        Some(self.updated_event(now))
    }

    fn vanish_attempt(&mut self, attempt: u32, now: OffsetDateTime) -> Applied {
        let pending = self
            .attempts
            .iter_mut()
            .find(|a| a.number == attempt && a.status == AttemptStatus::Pending)?;
        pending.status = AttemptStatus::Failed;
        if self.status != PaymentStatus::Processing {
            return None;
        }
        self.status = PaymentStatus::Failed;
        self.failure_code = Some("provider_no_record".into());
        let mut data = self.event_data(self.money.amount(), now);
        data.reason = self.failure_code.clone();
        Some(DomainEvent::Failed(data))
    }

    fn apply_authorization(
        &mut self,
        fact: &AuthorizationFact,
        now: OffsetDateTime,
    ) -> Result<Applied, DomainError> {
        if fact.amount != self.money.amount() || fact.currency != self.money.currency().as_str() {
            return Err(DomainError::Mismatch("an amount or currency"));
        }
        if fact.captured_amount < 0 || fact.captured_amount > fact.amount {
            return Err(DomainError::Mismatch("a captured amount"));
        }
        // Which attempt: a known one, or the next one (its webhook may arrive
        // before the confirmation that sent it is saved).
        let known = self.attempts.iter().any(|a| a.number == fact.attempt);
        if !known {
            let next = fact.attempt == self.attempt_count() + 1;
            if !(next && self.status == PaymentStatus::RequiresConfirmation) {
                return Ok(None);
            }
            self.attempts.push(Attempt {
                number: fact.attempt,
                status: AttemptStatus::Pending,
                provider_id: None,
                decline_code: None,
            });
        }
        let target = match &fact.outcome {
            AuthorizationOutcome::Declined { .. } => PaymentStatus::Failed,
            AuthorizationOutcome::Authorized if fact.captured_amount == 0 => {
                PaymentStatus::RequiresCapture
            }
            AuthorizationOutcome::Authorized | AuthorizationOutcome::Captured => {
                if fact.captured_amount == 0 {
                    return Err(DomainError::Mismatch("a capture without an amount"));
                }
                PaymentStatus::Succeeded
            }
            AuthorizationOutcome::Voided => PaymentStatus::Canceled,
        };
        if self.status.is_terminal() || target.rank() <= self.status.rank() {
            return Ok(None);
        }
        // A declined or voided authorization is only reachable from states
        // where no money was captured.
        let mut data = self.event_data(self.money.amount(), now);
        let updated = {
            let mut d = data.clone();
            d.status = Some(target);
            DomainEvent::Updated(d)
        };
        let Some(attempt) = self.attempts.iter_mut().find(|a| a.number == fact.attempt) else {
            return Ok(None);
        };
        if attempt.status == AttemptStatus::Failed || attempt.status == AttemptStatus::Declined {
            return Ok(None);
        }
        if fact.provider_id.is_some() {
            attempt.provider_id.clone_from(&fact.provider_id);
        }
        self.status = target;
        let event = match &fact.outcome {
            AuthorizationOutcome::Declined { code } => {
                attempt.status = AttemptStatus::Declined;
                attempt.decline_code = Some(code.clone());
                self.failure_code = Some(code.clone());
                data.reason = Some(code.clone());
                DomainEvent::Failed(data)
            }
            AuthorizationOutcome::Voided => {
                attempt.status = AttemptStatus::Authorized;
                self.authorized_amount = fact.amount;
                DomainEvent::Canceled(data)
            }
            AuthorizationOutcome::Authorized if target == PaymentStatus::RequiresCapture => {
                attempt.status = AttemptStatus::Authorized;
                self.authorized_amount = fact.amount;
                updated
            }
            AuthorizationOutcome::Authorized | AuthorizationOutcome::Captured => {
                attempt.status = AttemptStatus::Authorized;
                self.authorized_amount = fact.amount;
                self.captured_amount = fact.captured_amount;
                data.amount = fact.captured_amount;
                DomainEvent::Succeeded(data)
            }
        };
        Ok(Some(event))
    }

    fn apply_refund(
        &mut self,
        fact: &RefundFact,
        now: OffsetDateTime,
    ) -> Result<Applied, DomainError> {
        if fact.amount <= 0 {
            return Err(DomainError::NotPositive(fact.amount));
        }
        if self.status != PaymentStatus::Succeeded {
            // Refunds follow a capture; a refund fact that overtakes the
            // capture is applied when it is seen again (sync, reconciliation).
            return Ok(None);
        }
        let committed = self.refunds_committed();
        if let Some(existing) = self.refunds.iter_mut().find(|r| r.number == fact.refund) {
            if existing.amount != fact.amount {
                return Err(DomainError::Mismatch("a refund amount"));
            }
            if existing.status != RefundStatus::Pending || fact.status == RefundStatus::Pending {
                return Ok(None);
            }
            existing.status = fact.status;
            if existing.provider_id.is_none() {
                existing.provider_id.clone_from(&fact.provider_id);
            }
            return Ok(Some(if fact.status == RefundStatus::Succeeded {
                self.refund_succeeded_event(fact.refund, now)
            } else {
                self.updated_event(now)
            }));
        }
        if fact.refund != self.refund_count() + 1 {
            return Ok(None);
        }
        if fact.status != RefundStatus::Failed && committed + fact.amount > self.captured_amount {
            return Err(DomainError::AmountTooLarge {
                requested: fact.amount,
                available: self.captured_amount - committed,
                what: "refundable amount",
            });
        }
        self.refunds.push(Refund {
            number: fact.refund,
            amount: fact.amount,
            status: fact.status,
            provider_id: fact.provider_id.clone(),
            idempotency_key: None,
            created_at: now,
        });
        Ok(Some(if fact.status == RefundStatus::Succeeded {
            self.refund_succeeded_event(fact.refund, now)
        } else {
            self.updated_event(now)
        }))
    }

    fn refund_succeeded_event(&self, refund: u32, now: OffsetDateTime) -> DomainEvent {
        let amount = self.refund(refund).map_or(0, |r| r.amount);
        DomainEvent::RefundSucceeded(RefundSucceeded {
            refund_id: ProviderReference::Refund(self.id, refund).to_string(),
            payment_id: self.id,
            amount,
            currency: self.money.currency(),
            customer_reference: self.customer_reference.clone(),
            occurred_at: now,
        })
    }

    /// The invariants every saved payment satisfies; `Err` names the first
    /// one broken (used by tests and before every save).
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        if self.money.amount() <= 0 {
            return Err("the amount is positive");
        }
        if self.authorized_amount < 0 || self.authorized_amount > self.money.amount() {
            return Err("0 <= authorized <= amount");
        }
        if self.captured_amount < 0 || self.captured_amount > self.authorized_amount {
            return Err("0 <= captured <= authorized");
        }
        if self.refunds_committed() > self.captured_amount {
            return Err("succeeded + pending refunds <= captured");
        }
        if self.refunds.iter().any(|r| r.amount <= 0) {
            return Err("refund amounts are positive");
        }
        if !self.refunds.is_empty() && self.status != PaymentStatus::Succeeded {
            return Err("only succeeded payments have refunds");
        }
        match self.status {
            PaymentStatus::Succeeded if self.captured_amount == 0 => {
                Err("a succeeded payment has captured money")
            }
            PaymentStatus::RequiresCapture if self.authorized_amount == 0 => {
                Err("a payment awaiting capture is authorized")
            }
            PaymentStatus::RequiresConfirmation if !self.attempts.is_empty() => {
                Err("an unconfirmed payment has no attempts")
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(method: CaptureMethod) -> Payment {
        let money = Money::positive(1000, Currency::EUR).unwrap();
        Payment::create(
            PaymentId::new(),
            money,
            "cus_1".into(),
            method,
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    fn auth(attempt: u32, outcome: AuthorizationOutcome, captured: i64) -> Fact {
        Fact::Authorization(AuthorizationFact {
            attempt,
            provider_id: Some(format!("auth_{attempt}")),
            outcome,
            amount: 1000,
            currency: "EUR".into(),
            captured_amount: captured,
        })
    }

    const NOW: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

    #[test]
    fn payments_take_their_markets_currencies_only() {
        assert_eq!(accepted_currency("EUR"), Ok(Currency::EUR));
        assert_eq!(accepted_currency("KWD"), Ok(Currency::KWD));
        // ISO 4217, but no market yet (and no ledger accounts).
        for code in ["BHD", "eur", "XYZ"] {
            assert_eq!(
                accepted_currency(code),
                Err(MoneyError::UnknownCurrency(code.to_owned()))
            );
        }
    }

    #[test]
    fn references_round_trip_and_reject_garbage() {
        let id = PaymentId::new();
        for r in [
            ProviderReference::Attempt(id, 1),
            ProviderReference::Refund(id, 12),
        ] {
            assert_eq!(ProviderReference::parse(&r.to_string()), Some(r));
        }
        for bad in [
            "x",
            &format!("{id}"),
            &format!("{id}.a0"),
            &format!("{id}.b1"),
            &format!("{id}.a"),
            "nope.a1",
        ] {
            assert_eq!(ProviderReference::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn timeout_then_capture_snapshot_succeeds_once() {
        let mut p = payment(CaptureMethod::Automatic);
        let started = p.apply(&Fact::AttemptStarted { attempt: 1 }, NOW).unwrap();
        assert!(matches!(started, Some(DomainEvent::Updated(_))));
        assert_eq!(p.status, PaymentStatus::Processing);
        let captured = auth(1, AuthorizationOutcome::Captured, 1000);
        assert!(matches!(
            p.apply(&captured, NOW).unwrap(),
            Some(DomainEvent::Succeeded(_))
        ));
        assert_eq!(p.apply(&captured, NOW).unwrap(), None, "duplicate");
        assert_eq!(
            p.apply(&auth(1, AuthorizationOutcome::Authorized, 0), NOW)
                .unwrap(),
            None,
            "stale"
        );
        assert_eq!(p.status, PaymentStatus::Succeeded);
        p.check_invariants().unwrap();
    }

    #[test]
    fn decline_fails_and_terminal_states_never_change() {
        let mut p = payment(CaptureMethod::Manual);
        let declined = auth(
            1,
            AuthorizationOutcome::Declined {
                code: "insufficient_funds".into(),
            },
            0,
        );
        assert!(matches!(
            p.apply(&declined, NOW).unwrap(),
            Some(DomainEvent::Failed(_))
        ));
        assert_eq!(p.failure_code.as_deref(), Some("insufficient_funds"));
        let before = p.clone();
        for fact in [
            auth(1, AuthorizationOutcome::Captured, 1000),
            auth(2, AuthorizationOutcome::Authorized, 0),
            Fact::CanceledBeforeConfirmation,
        ] {
            assert_eq!(p.apply(&fact, NOW).unwrap(), None);
        }
        assert_eq!(p, before);
    }

    #[test]
    fn manual_capture_and_refunds_respect_the_captured_amount() {
        let mut p = payment(CaptureMethod::Manual);
        p.apply(&auth(1, AuthorizationOutcome::Authorized, 0), NOW)
            .unwrap();
        assert_eq!(p.status, PaymentStatus::RequiresCapture);
        assert_eq!(
            p.check_capture(Some(1001)),
            Err(DomainError::AmountTooLarge {
                requested: 1001,
                available: 1000,
                what: "authorized amount"
            })
        );
        assert_eq!(p.check_capture(Some(600)), Ok(600));
        p.apply(&auth(1, AuthorizationOutcome::Captured, 600), NOW)
            .unwrap();
        assert_eq!(p.captured_amount, 600);
        assert_eq!(p.check_refund(Some(400)), Ok((1, 400)));
        let r1 = Fact::Refund(RefundFact {
            refund: 1,
            provider_id: None,
            amount: 400,
            status: RefundStatus::Pending,
        });
        p.apply(&r1, NOW).unwrap();
        assert!(p.check_refund(Some(201)).is_err());
        assert_eq!(p.check_refund(None), Ok((2, 200)));
        let over = Fact::Refund(RefundFact {
            refund: 2,
            provider_id: None,
            amount: 300,
            status: RefundStatus::Succeeded,
        });
        assert!(p.apply(&over, NOW).is_err());
        let done = Fact::Refund(RefundFact {
            refund: 1,
            provider_id: Some("re_1".into()),
            amount: 400,
            status: RefundStatus::Succeeded,
        });
        assert!(matches!(
            p.apply(&done, NOW).unwrap(),
            Some(DomainEvent::RefundSucceeded(_))
        ));
        assert_eq!(p.apply(&done, NOW).unwrap(), None);
        p.check_invariants().unwrap();
    }

    #[test]
    fn amounts_that_do_not_match_the_payment_are_rejected() {
        let mut p = payment(CaptureMethod::Automatic);
        let Fact::Authorization(mut fact) = auth(1, AuthorizationOutcome::Captured, 1000) else {
            unreachable!()
        };
        fact.amount = 999;
        let err = p
            .apply(&Fact::Authorization(fact.clone()), NOW)
            .unwrap_err();
        assert_eq!(err, DomainError::Mismatch("an amount or currency"));
        assert_eq!(p.status, PaymentStatus::RequiresConfirmation);
    }

    #[test]
    fn cancel_rules() {
        let mut p = payment(CaptureMethod::Manual);
        assert_eq!(p.check_cancel(), Ok(false));
        p.apply(&auth(1, AuthorizationOutcome::Authorized, 0), NOW)
            .unwrap();
        assert_eq!(p.check_cancel(), Ok(true));
        assert!(matches!(
            p.apply(&auth(1, AuthorizationOutcome::Voided, 0), NOW)
                .unwrap(),
            Some(DomainEvent::Canceled(_))
        ));
        assert!(p.check_cancel().is_err());
        assert!(p.next_attempt().is_err());
    }
}
