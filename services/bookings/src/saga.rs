//! The booking saga's orchestrator (ADR 0037): every step between a route,
//! an event or a deadline and the stores.
//!
//! A step is one database transaction: lock the booking, ask the rule table
//! ([`crate::domain::saga::decide`]) what the fact means, and write the new
//! state, its history row, the place given back, the event for the outbox
//! and the calls the saga must make (`saga_commands`), together with the
//! inbox claim when the fact came as an event. The calls run after the
//! commit ([`Saga::run_commands`], and the worker until they succeed), each
//! with an Idempotency-Key of its own, so a crash at any point leaves either
//! nothing or a complete decision whose calls are still to be made.

use std::sync::Arc;

use platform_consumer::CloudEvent;
use platform_consumer::inbox::{self, Entry};
use platform_dapr::Sidecar;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain::{BookingState, Command, Decision, Fact, RefundPolicy};
use crate::error::BookingsError;
use crate::payments::PaymentsClient;
use crate::settings::BookingSettings;
use crate::store::bookings::{self, Booking, NewBooking};
use crate::store::{commands, offerings, outbox};

/// The topic payments publishes on (its subscription routes here).
pub const PAYMENTS_TOPIC: &str = "payments";

/// A request for a place.
#[derive(Debug, Clone)]
pub struct BookingRequest {
    pub offering_id: Uuid,
    pub participant: String,
    pub locale: String,
}

/// What happened to a delivered event or a fired deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The booking moved to this state.
    Moved(BookingState),
    /// Already applied (inbox), or the fact changes nothing now.
    Unchanged,
    /// Not about any booking of ours.
    NotOurs,
}

#[derive(Debug, Clone)]
pub struct Saga {
    pool: PgPool,
    sidecar: Sidecar,
    payments: PaymentsClient,
    settings: Arc<BookingSettings>,
    /// Commands run per round.
    batch: i64,
    /// Wakes the worker (pending commands) and the relay (outbox).
    wake: Arc<Notify>,
}

/// Job names: `booking-hold-<id>` fires at the end of a hold time,
/// `offering-cancel-<id>` runs an organiser's cancellation batch.
pub fn hold_job(booking: Uuid) -> String {
    format!("booking-hold-{booking}")
}

pub fn cancel_job(offering: Uuid) -> String {
    format!("offering-cancel-{offering}")
}

impl Saga {
    pub fn new(
        pool: PgPool,
        sidecar: Sidecar,
        payments: PaymentsClient,
        settings: BookingSettings,
        batch: i64,
    ) -> Self {
        Self {
            pool,
            sidecar,
            payments,
            settings: Arc::new(settings),
            batch,
            wake: Arc::new(Notify::new()),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub fn topic(&self) -> &str {
        &self.settings.topic
    }

    /// Reserves a place (the database decides, under any concurrency) and
    /// creates the booking's payment. A repeat with the same
    /// Idempotency-Key returns the same booking (and creates its payment if
    /// the first attempt could not); a different request with it is 422.
    /// Returns the booking and whether this call created it.
    pub async fn reserve(
        &self,
        requested_by: &str,
        idempotency_key: &str,
        request: &BookingRequest,
    ) -> Result<(Booking, bool), BookingsError> {
        let hash = request_hash(request);
        let (booking, created) = match self
            .reserve_in_database(requested_by, idempotency_key, request, &hash)
            .await
        {
            Err(BookingsError::Database(sqlx::Error::Database(e)))
                if e.constraint() == Some("bookings_idempotency_key") =>
            {
                // A concurrent repeat won the key: answer what it created.
                let mut conn = self.pool.acquire().await?;
                let booking =
                    bookings::by_idempotency_key(&mut conn, requested_by, idempotency_key)
                        .await?
                        .ok_or(BookingsError::NotFound("booking"))?;
                (booking, false)
            }
            other => other?,
        };
        if booking.request_hash != hash {
            return Err(BookingsError::IdempotencyConflict);
        }
        // The deadline and the payment are the saga's first calls: made
        // here so the answer carries the payment, and by the worker if
        // the scheduler or payments is away (the reservation stands; its
        // hold time bounds it). A repeat of the request retries them.
        if booking.payment_id.is_none() && booking.state == BookingState::Reserved {
            let wait = std::time::Duration::from_millis(self.settings.inline_calls_ms);
            match tokio::time::timeout(wait, self.run_commands(Some(booking.id))).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    tracing::warn!(%error, booking.id = %booking.id, "saga calls left to the worker");
                }
                // Cut short: its transaction rolls back, the calls stay
                // pending, and a repeat at payments is the same payment
                // (Idempotency-Key).
                Err(_) => {
                    tracing::warn!(booking.id = %booking.id, "saga calls slow; left to the worker")
                }
            }
            self.wake.notify_waiters();
        }
        let mut conn = self.pool.acquire().await?;
        let booking = bookings::get(&mut conn, booking.id)
            .await?
            .ok_or(BookingsError::NotFound("booking"))?;
        Ok((booking, created))
    }

    async fn reserve_in_database(
        &self,
        requested_by: &str,
        idempotency_key: &str,
        request: &BookingRequest,
        hash: &str,
    ) -> Result<(Booking, bool), BookingsError> {
        let mut tx = platform_db::begin(&self.pool).await?;
        if let Some(existing) =
            bookings::by_idempotency_key(&mut tx, requested_by, idempotency_key).await?
        {
            return Ok((existing, false));
        }
        // Everything is written first and the place taken last, so the
        // offering's row lock (which every booker of it waits for) is held
        // only for that UPDATE and the commit.
        let now = OffsetDateTime::now_utc();
        let (amount, currency) = offerings::terms(&mut tx, request.offering_id)
            .await?
            .ok_or(BookingsError::NotFound("offering"))?;
        let booking = bookings::insert(
            &mut tx,
            &NewBooking {
                id: Uuid::now_v7(),
                offering_id: request.offering_id,
                participant: &request.participant,
                locale: &request.locale,
                amount,
                currency: &currency,
                hold_until: now + time::Duration::seconds(self.settings.hold_secs),
                requested_by,
                idempotency_key,
                request_hash: hash,
            },
        )
        .await?;
        commands::insert(&mut tx, booking.id, "schedule_deadline", None).await?;
        commands::insert(&mut tx, booking.id, "create_payment", None).await?;
        self.announce(&mut tx, &booking, BookingState::Reserved, "reserved")
            .await?;
        offerings::take_place(&mut tx, request.offering_id, now, amount, &currency)
            .await?
            .ok_or(BookingsError::NotFound("offering"))??;
        tx.commit().await?;
        Ok((booking, true))
    }

    /// A booking with its saga history.
    pub async fn get(
        &self,
        id: Uuid,
    ) -> Result<Option<(Booking, Vec<bookings::Transition>)>, BookingsError> {
        let mut conn = self.pool.acquire().await?;
        let Some(booking) = bookings::get(&mut conn, id).await? else {
            return Ok(None);
        };
        let history = bookings::history(&mut conn, id).await?;
        Ok(Some((booking, history)))
    }

    /// A payments event: the outcome of a booking's payment, or of a refund.
    pub async fn on_payment_event(
        &self,
        event: &CloudEvent<Value>,
    ) -> Result<Applied, sqlx::Error> {
        let fact = match event.event_type.as_str() {
            "payments.payment.succeeded" => Fact::PaymentSucceeded,
            "payments.payment.failed" => Fact::PaymentFailed,
            "payments.payment.canceled" => Fact::PaymentCanceled,
            "payments.refund.succeeded" => Fact::RefundSucceeded,
            _ => return Ok(Applied::NotOurs),
        };
        let Some(payment_id) = event.data.get("payment_id").and_then(Value::as_str) else {
            return Ok(Applied::NotOurs);
        };
        let entry = Entry::of(event, PAYMENTS_TOPIC);
        let mut tx = platform_db::begin(&self.pool).await?;
        let Some(booking) = bookings::lock_by_payment(&mut tx, payment_id).await? else {
            return Ok(Applied::NotOurs);
        };
        if !inbox::claim(&mut tx, &entry).await? {
            return Ok(Applied::Unchanged);
        }
        let applied = self.apply(&mut tx, &booking, fact).await?;
        tx.commit().await?;
        self.wake.notify_waiters();
        Ok(applied)
    }

    /// The hold-time deadline of a booking fired.
    pub async fn expire(&self, booking_id: Uuid) -> Result<Applied, sqlx::Error> {
        let mut tx = platform_db::begin(&self.pool).await?;
        let Some(booking) = bookings::lock(&mut tx, booking_id).await? else {
            return Ok(Applied::NotOurs);
        };
        if booking.state == BookingState::Reserved && OffsetDateTime::now_utc() < booking.hold_until
        {
            // Fired early (the scheduler's clock ahead of ours): the saga's
            // own clock decides, and the deadline is set again so that the
            // hold still ends. If that fails the job is answered 503 and
            // fired again by its failure policy.
            drop(tx);
            let due = booking
                .hold_until
                .format(&Rfc3339)
                .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
            self.sidecar
                .schedule_job(
                    &hold_job(booking.id),
                    &due,
                    &json!({ "booking_id": booking.id }),
                )
                .await
                .map_err(|e| sqlx::Error::Protocol(format!("rescheduling the hold: {e}")))?;
            return Ok(Applied::Unchanged);
        }
        let applied = self.apply(&mut tx, &booking, Fact::HoldExpired).await?;
        tx.commit().await?;
        self.wake.notify_waiters();
        Ok(applied)
    }

    /// The member cancels their booking: refund per the offering's policy.
    pub async fn cancel_by_member(
        &self,
        booking_id: Uuid,
        requested_by: &str,
    ) -> Result<Booking, BookingsError> {
        let mut tx = platform_db::begin(&self.pool).await?;
        let booking = bookings::lock(&mut tx, booking_id)
            .await?
            .filter(|b| b.requested_by == requested_by)
            .ok_or(BookingsError::NotFound("booking"))?;
        let policy: RefundPolicy =
            sqlx::query_scalar::<_, Value>("SELECT refund_policy FROM offerings WHERE id = $1")
                .bind(booking.offering_id)
                .fetch_one(&mut *tx)
                .await
                .map(|v| serde_json::from_value(v).unwrap_or_default())?;
        let refund = policy.refund_at(OffsetDateTime::now_utc(), booking.amount);
        match self
            .apply(&mut tx, &booking, Fact::MemberCancelled { refund })
            .await?
        {
            Applied::Moved(_) => {}
            _ => return Err(BookingsError::NotCancellable(booking.state.to_string())),
        }
        tx.commit().await?;
        self.wake.notify_waiters();
        let mut conn = self.pool.acquire().await?;
        bookings::get(&mut conn, booking_id)
            .await?
            .ok_or(BookingsError::NotFound("booking"))
    }

    /// The member pays their reserved booking with a card (docs/adr/0044):
    /// payments lets only the payment's creator confirm it (ADR 0028), and
    /// that is bookings, so bookings confirms it on the member's behalf. The
    /// saga still moves only on payments' events (succeeded → confirmed,
    /// failed → released), never on this answer. The Idempotency-Key
    /// towards payments is derived from the booking and the client's key, so
    /// a repeat is one confirmation. Returns the booking and the payment as
    /// payments answered.
    pub async fn pay(
        &self,
        booking_id: Uuid,
        requested_by: &str,
        idempotency_key: &str,
        card_number: &str,
    ) -> Result<(Booking, Value), BookingsError> {
        let booking = {
            let mut conn = self.pool.acquire().await?;
            bookings::get(&mut conn, booking_id)
                .await?
                .filter(|b| b.requested_by == requested_by)
                .ok_or(BookingsError::NotFound("booking"))?
        };
        if booking.state != BookingState::Reserved {
            return Err(BookingsError::NotPayable(booking.state.to_string()));
        }
        let Some(payment_id) = booking.payment_id.clone() else {
            // payments was away at reservation time; the worker retries.
            return Err(BookingsError::PaymentsUnavailable(
                "the booking's payment is not created yet".into(),
            ));
        };
        let key = format!(
            "booking-pay-{booking_id}-{}",
            &hex::encode(Sha256::digest(idempotency_key.as_bytes()))[..32]
        );
        let payment = self
            .payments
            .confirm(&key, &payment_id, card_number)
            .await
            .map_err(|e| match e {
                crate::payments::PaymentsError::Unavailable(why) => {
                    BookingsError::PaymentsUnavailable(why)
                }
                crate::payments::PaymentsError::Refused(why) if why.starts_with("402") => {
                    let decline = serde_json::from_str::<Value>(why.get(4..).unwrap_or_default())
                        .ok()
                        .and_then(|p| p["decline_code"].as_str().map(str::to_owned))
                        .unwrap_or_else(|| "declined".into());
                    BookingsError::CardDeclined(decline)
                }
                crate::payments::PaymentsError::Refused(why) => BookingsError::PaymentsRefused(why),
            })?;
        Ok((booking, payment))
    }

    /// The organiser cancels an offering: no new bookings, and the batch
    /// job (a Dapr job, retried by its failure policy until it answers 2xx)
    /// cancels every booking, each in its own transaction, so a crash
    /// halfway resumes with those not yet done.
    pub async fn cancel_offering(&self, offering_id: Uuid) -> Result<(), BookingsError> {
        let mut tx = platform_db::begin(&self.pool).await?;
        let exists: Option<String> =
            sqlx::query_scalar("SELECT status FROM offerings WHERE id = $1 FOR UPDATE")
                .bind(offering_id)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Err(BookingsError::NotFound("offering"));
        }
        if offerings::Offerings::new(self.pool.clone())
            .mark_cancelled(&mut tx, offering_id)
            .await?
        {
            outbox::append(
                &mut tx,
                &self.settings.topic,
                "bookings.offering.cancelled",
                &offering_id.to_string(),
                &json!({ "offering_id": offering_id, "occurred_at": now_text() }),
            )
            .await?;
        }
        tx.commit().await?;
        self.wake.notify_waiters();
        let now = now_text();
        self.sidecar
            .schedule_job(
                &cancel_job(offering_id),
                &now,
                &json!({ "offering_id": offering_id }),
            )
            .await
            .map_err(|e| BookingsError::PaymentsUnavailable(format!("scheduler: {e}")))?;
        Ok(())
    }

    /// The organiser's batch: every booking of the offering that still
    /// holds a place or money is cancelled (each booking once: the saga
    /// ignores a second cancellation). Returns how many moved.
    pub async fn run_offering_cancellation(&self, offering_id: Uuid) -> Result<usize, sqlx::Error> {
        let ids = {
            let mut conn = self.pool.acquire().await?;
            bookings::ids_to_cancel(&mut conn, offering_id).await?
        };
        let mut moved = 0;
        for id in ids {
            let mut tx = platform_db::begin(&self.pool).await?;
            if let Some(booking) = bookings::lock(&mut tx, id).await?
                && let Applied::Moved(_) = self
                    .apply(&mut tx, &booking, Fact::OrganiserCancelled)
                    .await?
            {
                moved += 1;
            }
            tx.commit().await?;
            self.wake.notify_waiters();
        }
        Ok(moved)
    }

    /// Applies `fact` to the locked `booking` in the caller's transaction.
    async fn apply(
        &self,
        conn: &mut PgConnection,
        booking: &Booking,
        fact: Fact,
    ) -> Result<Applied, sqlx::Error> {
        let Decision::Move {
            to,
            frees_place,
            command,
            refund,
            cause,
        } = crate::domain::saga::decide(booking.state, fact, booking.amount)
        else {
            return Ok(Applied::Unchanged);
        };
        bookings::set_state(conn, booking, to, refund, cause).await?;
        if frees_place {
            offerings::free_place(conn, booking.offering_id).await?;
        }
        if let Some(command) = command {
            let amount = match command {
                Command::Refund(amount) => Some(amount),
                Command::CancelPayment => None,
            };
            commands::insert(conn, booking.id, command.name(), amount).await?;
        }
        let booking = Booking {
            state: to,
            refund_amount: refund.or(booking.refund_amount),
            ..booking.clone()
        };
        self.announce(conn, &booking, to, cause).await?;
        Ok(Applied::Moved(to))
    }

    /// Writes `bookings.booking.<state>` to the outbox.
    async fn announce(
        &self,
        conn: &mut PgConnection,
        booking: &Booking,
        state: BookingState,
        cause: &str,
    ) -> Result<(), sqlx::Error> {
        let data = json!({
            "booking_id": booking.id,
            "offering_id": booking.offering_id,
            "participant": booking.participant,
            "locale": booking.locale,
            "amount": booking.amount,
            "currency": booking.currency,
            "state": state,
            "cause": cause,
            "payment_id": booking.payment_id,
            "refund_amount": booking.refund_amount,
            "occurred_at": now_text(),
        });
        outbox::append(
            conn,
            &self.settings.topic,
            &format!("bookings.booking.{state}"),
            &booking.id.to_string(),
            &data,
        )
        .await
    }

    /// Runs pending commands that are due (of one booking, or up to
    /// `saga.batch` of any), each in its own transaction holding only its
    /// row lock during its call, so no two runners make the same call at
    /// once and nobody else waits on a slow call; the call's
    /// Idempotency-Key makes a repeat after a crash harmless. A failed call
    /// is tried again after an exponential back-off (at most 60 s).
    /// Returns how many were done.
    pub async fn run_commands(&self, booking: Option<Uuid>) -> Result<usize, sqlx::Error> {
        let mut done = 0;
        for _ in 0..self.batch {
            let mut tx = platform_db::begin(&self.pool).await?;
            let Some(command) = commands::claim_pending(&mut tx, booking, 1).await?.pop() else {
                break;
            };
            match self.call(&mut tx, &command).await {
                Ok(()) => {
                    commands::mark_done(&mut tx, command.id).await?;
                    done += 1;
                }
                Err(error) => {
                    tracing::warn!(
                        %error,
                        saga.command = %command.command,
                        booking.id = %command.booking_id,
                        attempts = command.attempts + 1,
                        "saga command failed; retried after a back-off"
                    );
                    commands::mark_failed(&mut tx, command.id, &error).await?;
                }
            }
            tx.commit().await?;
        }
        Ok(done)
    }

    async fn call(
        &self,
        conn: &mut PgConnection,
        command: &commands::PendingCommand,
    ) -> Result<(), String> {
        let key = format!("booking-command-{}", command.id);
        match (command.command.as_str(), command.payment_id.as_deref()) {
            // Released before its payment was made: none is wanted any more.
            ("create_payment", _) if command.state != BookingState::Reserved.as_str() => Ok(()),
            ("create_payment", Some(_)) => Ok(()),
            ("create_payment", None) => {
                let payment = self
                    .payments
                    .create(
                        &format!("booking-{}", command.booking_id),
                        command.price,
                        &command.currency,
                        &command.participant,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                bookings::set_payment(conn, command.booking_id, &payment.id)
                    .await
                    .map_err(|e| e.to_string())
            }
            ("schedule_deadline", _) => {
                let due = command
                    .hold_until
                    .format(&Rfc3339)
                    .map_err(|e| e.to_string())?;
                self.sidecar
                    .schedule_job(
                        &hold_job(command.booking_id),
                        &due,
                        &json!({ "booking_id": command.booking_id }),
                    )
                    .await
                    .map_err(|e| e.to_string())
            }
            // Nothing to cancel: the payment was never created.
            ("cancel_payment", None) => Ok(()),
            ("cancel_payment", Some(payment)) => self
                .payments
                .cancel(&key, payment)
                .await
                .map_err(|e| e.to_string()),
            ("refund", Some(payment)) => self
                .payments
                .refund(&key, payment, command.amount.unwrap_or_default())
                .await
                .map_err(|e| e.to_string()),
            (other, _) => Err(format!("cannot run {other} without a payment")),
        }
    }
}

fn now_text() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// What identifies a booking request for its Idempotency-Key.
fn request_hash(request: &BookingRequest) -> String {
    let mut hash = Sha256::new();
    for part in [
        request.offering_id.to_string().as_str(),
        &request.participant,
        &request.locale,
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(hash.finalize())
}
