//! The ledger audit of the saga's money (issue #15, "ledger audit after all
//! of them"): a real bookkeeping books what the saga tests' payments events
//! carry, and [`Ledger::audit`] checks its books against the bookings'
//! final states.
//!
//! Design. payments is not harnessed here (it needs auth and its PSP); the
//! test plays it, as the other saga tests do, by publishing payments'
//! CloudEvents on the `payments` topic through a sidecar of app `payments`
//! ([`Ledger::publish`]). What is new is the other subscriber of that
//! topic: bookkeeping, in-process with its own daprd and its own database,
//! on the *same* test Redis as bookings' sidecar. Both subscriptions
//! (`dapr-config/subscriptions/bookings-payments.yaml`,
//! `bookkeeping-payments.yaml`) are consumer groups of the same stream, so
//! every event the test delivers to bookings also reaches bookkeeping
//! through Dapr, redeliveries included, exactly as in `make up`; nothing
//! is copied by the test from one service to the other. The refunds
//! bookings asks for are the `refund` commands its saga recorded
//! ([`Ledger::refund_event`]): payments would carry them out and publish
//! `payments.refund.succeeded` with that amount, and the test publishes
//! exactly that.
//!
//! Cost. One bookkeeping and two sidecars per test that audits (four
//! tests), started once per test and kept across bookings' crashes: the
//! ledger must outlive them. One bookkeeping shared by the whole test
//! binary would save about a second of start-up per test but would need a
//! Redis shared between tests (each test has its own, `TestEnv`), which
//! the harness deliberately avoids; and each test's ledger would then mix
//! with the others', so the per-account sums could not be checked.
//!
//! The checks (each was seen failing once with the test broken on purpose:
//! a succeeded payment published again under a new event id, a refund one
//! cent short, one event more expected than delivered, a booking's
//! `refund_amount` changed):
//! 1. bookkeeping has consumed every event the test published, counting
//!    redeliveries (its sidecar's delivery counter), so a duplicate that
//!    would be booked twice is booked before the books are read;
//! 2. per payment: one ledger entry per succeeded payment of a booking
//!    that took money (`confirmed`, `cancelled`, `refunded`), of the
//!    booking's amount, none for the others; one reversal per refund of a
//!    `refunded` booking, of its `refund_amount`;
//! 3. per account: sales = Σ paid, refunds = Σ refunded,
//!    PSP clearing = the difference;
//! 4. `sql/audit.sql` (the ledger's invariants, as tests/tests/chaos.rs
//!    runs it with psql) returns no row.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use platform_settings::Source;
use platform_test_support::{Daprd, RunningApp, TestDatabase, repo_root, start_with_sidecar};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool, Row};

use crate::helpers::World;

/// bookkeeping (app and sidecar, its own database) on the test's Redis,
/// and the sidecar the test publishes payments' events through.
pub struct Ledger {
    /// Kept running for the test's length.
    _app: RunningApp,
    pub daprd: Daprd,
    pub db: TestDatabase,
    payments: Daprd,
    /// Events published on `payments` (each copy of a redelivery counts).
    published: AtomicUsize,
}

impl Ledger {
    pub async fn start(world: &World) -> Self {
        let mut settings = Source {
            config_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("../bookkeeping/config"),
            environment: "test".into(),
        }
        .load::<bookkeeping::settings::Settings>()
        .expect("bookkeeping settings");
        let db = TestDatabase::create_in_place(&mut settings.database)
            .await
            .expect("bookkeeping's test database");
        settings.server.port = 0;
        world.issuer.apply_to(&mut settings.auth);
        let (app, daprd) = start_with_sidecar(&world.env, "bookkeeping", |dapr| {
            dapr.apply_to(&mut settings.dapr);
            async move { Ok(bookkeeping::startup::build(settings).await?) }
        })
        .await
        .expect("bookkeeping with its sidecar");
        let payments = Daprd::publisher(&world.env, "payments")
            .await
            .expect("payments' publisher");
        Self {
            _app: app,
            daprd,
            db,
            payments,
            published: AtomicUsize::new(0),
        }
    }

    /// Publishes a payments CloudEvent as payments' outbox does; the same
    /// event again is a redelivery.
    pub async fn publish(&self, event: &Value) {
        self.payments
            .publish_cloudevent("pubsub", "payments", event)
            .await
            .expect("publish");
        self.published.fetch_add(1, Ordering::SeqCst);
    }

    /// `payments.refund.succeeded` for the refund bookings' saga decided
    /// for `booking_id` (its `refund` command): what payments publishes
    /// once it has made that refund. The event id is derived from the
    /// command, so publishing it again is a redelivery.
    pub async fn refund_event(&self, bookings: &PgPool, booking_id: &str) -> Value {
        let id = uuid::Uuid::parse_str(booking_id).expect("uuid");
        let row = sqlx::query(
            "SELECT c.id, c.amount, b.payment_id FROM saga_commands c
               JOIN bookings b ON b.id = c.booking_id
              WHERE c.booking_id = $1 AND c.command = 'refund'",
        )
        .bind(id)
        .fetch_one(bookings)
        .await
        .expect("the booking's refund command");
        let command: uuid::Uuid = row.get("id");
        let amount: Option<i64> = row.get("amount");
        let payment: String = row.get("payment_id");
        let data = json!({
            "refund_id": format!("re_{}", command.simple()), "payment_id": payment,
            "amount": amount.expect("a refund has an amount"), "currency": "EUR",
            "customer_reference": "member-1", "occurred_at": "2026-12-07T10:00:00Z",
        });
        json!({
            "specversion": "1.0", "id": format!("evt-refund-{}", command.simple()), "source": "payments",
            "type": "payments.refund.succeeded", "subject": payment,
            "datacontenttype": "application/json", "data": data,
        })
    }

    /// Checks the books against the bookings in `bookings` (see the module
    /// docs); panics with every difference found.
    pub async fn audit(&self, bookings: &PgPool) {
        let published = self.published.load(Ordering::SeqCst) as f64;
        self.daprd
            .wait_for_metric(
                "dapr_component_pubsub_ingress_count",
                &[("topic", "payments"), ("process_status", "success")],
                published,
                Duration::from_secs(60),
            )
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "bookkeeping did not consume the {published} events published: {e}\n{}",
                    self.daprd.log_tail(30)
                )
            });
        let mut ledger = self.db.connect().await.expect("bookkeeping's database");
        let mut problems = Vec::new();

        let expected = expected_money(bookings).await;
        let booked = booked_money(&mut ledger).await;
        if booked != expected {
            problems.push(format!(
                "per payment (paid, refunded), ledger vs bookings:\n  ledger:   {booked:?}\n  bookings: {expected:?}"
            ));
        }

        let paid: i64 = expected.values().flat_map(|m| &m.paid).sum();
        let refunded: i64 = expected.values().flat_map(|m| &m.refunded).sum();
        for (code, want) in [
            ("revenue:sales:eur", paid),
            ("revenue:refunds:eur", -refunded),
            ("asset:psp-clearing:eur", paid - refunded),
        ] {
            let have = normal_balance(&mut ledger, code).await;
            if have != want {
                problems.push(format!(
                    "account {code}: balance {have}, the bookings say {want}"
                ));
            }
        }

        let violations = sql_audit(&mut ledger).await;
        if !violations.is_empty() {
            problems.push(format!("sql/audit.sql: {violations:#?}"));
        }
        assert!(
            problems.is_empty(),
            "ledger audit:\n{}",
            problems.join("\n")
        );
    }
}

/// The money of one payment: amounts paid in, amounts paid back.
#[derive(Debug, Default, PartialEq, Eq)]
struct Money {
    paid: Vec<i64>,
    refunded: Vec<i64>,
}

/// What the bookings' final states say went through each payment: a
/// booking that took money (confirmed, or cancelled/refunded after being
/// paid, a late payment included) was paid its amount; a refunded one got
/// its `refund_amount` back.
async fn expected_money(bookings: &PgPool) -> BTreeMap<String, Money> {
    let rows = sqlx::query(
        "SELECT payment_id, state, amount, refund_amount FROM bookings
          WHERE payment_id IS NOT NULL",
    )
    .fetch_all(bookings)
    .await
    .expect("bookings");
    let mut money = BTreeMap::new();
    for row in rows {
        let state: String = row.get("state");
        let amount: i64 = row.get("amount");
        let refund: Option<i64> = row.get("refund_amount");
        let mut m = Money::default();
        if matches!(state.as_str(), "confirmed" | "cancelled" | "refunded") {
            m.paid.push(amount);
        }
        if state == "refunded" {
            m.refunded
                .push(refund.expect("a refunded booking has its refund"));
        }
        if m != Money::default() {
            money.insert(row.get("payment_id"), m);
        }
    }
    money
}

/// What the ledger booked per payment: its entries' postings on PSP
/// clearing (debited by a payment, credited by a refund).
async fn booked_money(ledger: &mut PgConnection) -> BTreeMap<String, Money> {
    let rows = sqlx::query(
        "SELECT e.metadata->>'payment_id' AS payment_id, e.metadata ? 'refund_id' AS refund,
                p.amount
           FROM entries e
           JOIN postings p ON p.entry_id = e.id
           JOIN accounts a ON a.id = p.account_id
          WHERE a.code = 'asset:psp-clearing:eur'
          ORDER BY e.sequence",
    )
    .fetch_all(ledger)
    .await
    .expect("ledger entries");
    let mut money: BTreeMap<String, Money> = BTreeMap::new();
    for row in rows {
        let m = money.entry(row.get("payment_id")).or_default();
        let amount: i64 = row.get("amount");
        if row.get::<bool, _>("refund") {
            m.refunded.push(-amount);
        } else {
            m.paid.push(amount);
        }
    }
    money
}

/// An account's balance in its normal direction (0 if never used).
async fn normal_balance(ledger: &mut PgConnection, code: &str) -> i64 {
    sqlx::query_scalar("SELECT normal_sign(kind) * balance FROM accounts WHERE code = $1")
        .bind(code)
        .fetch_optional(ledger)
        .await
        .expect("balance")
        .unwrap_or(0)
}

/// `sql/audit.sql` as psql runs it: its `\ir` includes resolved relative
/// to the file, then every statement; one line per returned row.
async fn sql_audit(ledger: &mut PgConnection) -> Vec<String> {
    let script = with_includes(&repo_root().join("sql/audit.sql"));
    sqlx::raw_sql(&script)
        .fetch_all(ledger)
        .await
        .expect("sql/audit.sql")
        .iter()
        .map(|row| {
            (0..3)
                .map(|i| row.get::<Option<String>, _>(i).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect()
}

fn with_includes(file: &Path) -> String {
    let text =
        std::fs::read_to_string(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    let dir = file.parent().expect("a file's folder");
    text.lines()
        .map(|line| match line.trim().strip_prefix("\\ir ") {
            Some(included) => with_includes(&dir.join(included.trim())),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}
