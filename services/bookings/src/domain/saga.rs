//! The booking saga as a pure transition function: a booking's state and a
//! fact (a payment outcome, a deadline, a cancellation) → the next state,
//! whether the place is given back, and the calls to other services the
//! saga must make (compensations). No I/O: the orchestrator
//! ([`crate::saga`]) applies the decision in one database transaction, and
//! the property test (`tests/saga_model.rs`) checks it against a model.
//!
//! ```text
//! reserved ──payment succeeded──► confirmed ──member/organiser cancels──► cancelled ──refund succeeded──► refunded
//!    │                                                                  (refund per policy)
//!    ├──payment failed / canceled──► released
//!    ├──hold expired, cancelled before paying──► released (+ cancel the payment)
//!    └ released ──late payment succeeded──► cancelled (+ full refund, automatically)
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingState {
    /// A place is held; the payment is open until the hold time ends.
    Reserved,
    /// Paid: the place is sold.
    Confirmed,
    /// The place was given back without the booking being paid (or a late
    /// payment is being refunded, see [`BookingState::Cancelled`]).
    Released,
    /// Cancelled after money came in: the refund (if any) is under way.
    Cancelled,
    /// The refund was paid back.
    Refunded,
}

impl BookingState {
    pub const ALL: [Self; 5] = [
        Self::Reserved,
        Self::Confirmed,
        Self::Released,
        Self::Cancelled,
        Self::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "reserved",
            Self::Confirmed => "confirmed",
            Self::Released => "released",
            Self::Cancelled => "cancelled",
            Self::Refunded => "refunded",
        }
    }

    /// Whether a booking in this state occupies one of the offering's places.
    pub fn holds_place(self) -> bool {
        matches!(self, Self::Reserved | Self::Confirmed)
    }
}

impl fmt::Display for BookingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BookingState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown booking state {s:?}"))
    }
}

/// What happened to a booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fact {
    PaymentSucceeded,
    /// Declined or failed at the provider.
    PaymentFailed,
    /// The payment was canceled (by us, as a compensation, or otherwise).
    PaymentCanceled,
    /// The hold-time deadline fired and the hold time is over.
    HoldExpired,
    /// The member cancels; `refund` is what the offering's policy gives
    /// back today (minor units, ≤ the price).
    MemberCancelled {
        refund: i64,
    },
    /// The organiser cancels the offering: everyone gets everything back.
    OrganiserCancelled,
    RefundSucceeded,
}

impl Fact {
    /// The history's `cause`.
    pub fn cause(self) -> &'static str {
        match self {
            Self::PaymentSucceeded => "payment_succeeded",
            Self::PaymentFailed => "payment_failed",
            Self::PaymentCanceled => "payment_canceled",
            Self::HoldExpired => "hold_expired",
            Self::MemberCancelled { .. } => "member_cancelled",
            Self::OrganiserCancelled => "organiser_cancelled",
            Self::RefundSucceeded => "refund_succeeded",
        }
    }
}

/// A call the saga must make to another service, once in effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Cancel the still-open payment (compensation of a reservation).
    CancelPayment,
    /// Refund this much of the captured payment (minor units).
    Refund(i64),
}

impl Command {
    pub fn name(self) -> &'static str {
        match self {
            Self::CancelPayment => "cancel_payment",
            Self::Refund(_) => "refund",
        }
    }
}

/// What the saga does with a fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The fact changes nothing (a duplicate, or too late to matter).
    Ignore,
    Move {
        to: BookingState,
        /// The place goes back to the offering.
        frees_place: bool,
        command: Option<Command>,
        /// The refund the booking records (cancellations, late payments).
        refund: Option<i64>,
        /// Why, as the history shows it (e.g. `late_payment_refunded`).
        cause: &'static str,
    },
}

/// The saga's one rule table. `price` is the booking's amount.
pub fn decide(state: BookingState, fact: Fact, price: i64) -> Decision {
    use BookingState::{Cancelled, Confirmed, Refunded, Released, Reserved};
    let to =
        |to: BookingState, command: Option<Command>, refund: Option<i64>, cause| Decision::Move {
            to,
            frees_place: state.holds_place() && !to.holds_place(),
            command,
            refund,
            cause,
        };
    match (state, fact) {
        (Reserved, Fact::PaymentSucceeded) => to(Confirmed, None, None, fact.cause()),
        (Reserved, Fact::PaymentFailed | Fact::PaymentCanceled) => {
            to(Released, None, None, fact.cause())
        }
        (Reserved, Fact::HoldExpired | Fact::MemberCancelled { .. } | Fact::OrganiserCancelled) => {
            to(Released, Some(Command::CancelPayment), None, fact.cause())
        }
        // Money came in for a booking that no longer has its place: it all
        // goes back, automatically, and the history says so.
        (Released, Fact::PaymentSucceeded) => to(
            Cancelled,
            Some(Command::Refund(price)),
            Some(price),
            "late_payment_refunded",
        ),
        (Confirmed, Fact::MemberCancelled { refund }) => {
            let refund = refund.clamp(0, price);
            let command = (refund > 0).then_some(Command::Refund(refund));
            to(Cancelled, command, Some(refund), fact.cause())
        }
        (Confirmed, Fact::OrganiserCancelled) => to(
            Cancelled,
            Some(Command::Refund(price)),
            Some(price),
            fact.cause(),
        ),
        (Cancelled, Fact::RefundSucceeded) => to(Refunded, None, None, fact.cause()),
        // Everything else is a duplicate or arrives after the matter is
        // settled: a second success, a failure after success, a deadline
        // after confirmation, a cancellation of a cancelled booking.
        (Reserved | Confirmed | Released | Cancelled | Refunded, _) => Decision::Ignore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_names() {
        for state in BookingState::ALL {
            assert_eq!(state.as_str().parse::<BookingState>(), Ok(state));
        }
        assert!("paid".parse::<BookingState>().is_err());
    }

    #[test]
    fn a_paid_reservation_is_confirmed_and_keeps_its_place() {
        assert_eq!(
            decide(BookingState::Reserved, Fact::PaymentSucceeded, 100),
            Decision::Move {
                to: BookingState::Confirmed,
                frees_place: false,
                command: None,
                refund: None,
                cause: "payment_succeeded"
            }
        );
    }

    #[test]
    fn an_expired_hold_frees_the_place_and_cancels_the_payment() {
        let Decision::Move {
            to,
            frees_place,
            command,
            ..
        } = decide(BookingState::Reserved, Fact::HoldExpired, 100)
        else {
            panic!("expected a move");
        };
        assert_eq!(to, BookingState::Released);
        assert!(frees_place);
        assert_eq!(command, Some(Command::CancelPayment));
    }

    #[test]
    fn a_late_success_is_refunded_in_full() {
        let decision = decide(BookingState::Released, Fact::PaymentSucceeded, 2500);
        assert_eq!(
            decision,
            Decision::Move {
                to: BookingState::Cancelled,
                frees_place: false,
                command: Some(Command::Refund(2500)),
                refund: Some(2500),
                cause: "late_payment_refunded"
            }
        );
    }

    #[test]
    fn a_member_cancellation_refunds_per_policy_and_never_more_than_the_price() {
        let Decision::Move {
            command, refund, ..
        } = decide(
            BookingState::Confirmed,
            Fact::MemberCancelled { refund: 9999 },
            1000,
        )
        else {
            panic!("expected a move");
        };
        assert_eq!(command, Some(Command::Refund(1000)));
        assert_eq!(refund, Some(1000));
        let Decision::Move { command, .. } = decide(
            BookingState::Confirmed,
            Fact::MemberCancelled { refund: 0 },
            1000,
        ) else {
            panic!("expected a move");
        };
        assert_eq!(command, None);
    }

    #[test]
    fn duplicates_and_late_facts_change_nothing() {
        assert_eq!(
            decide(BookingState::Confirmed, Fact::PaymentSucceeded, 1),
            Decision::Ignore
        );
        assert_eq!(
            decide(BookingState::Confirmed, Fact::HoldExpired, 1),
            Decision::Ignore
        );
        assert_eq!(
            decide(BookingState::Released, Fact::HoldExpired, 1),
            Decision::Ignore
        );
        assert_eq!(
            decide(BookingState::Refunded, Fact::RefundSucceeded, 1),
            Decision::Ignore
        );
    }
}
