//! The saga's rule table against a model of the world around it: random
//! interleavings of payment outcomes, deadlines, cancellations, duplicated
//! deliveries and crashes (a decided call made again) for bookings of one
//! offering. At the end, when every decided call has been made and its
//! event delivered, the places and the money add up.

use std::collections::HashSet;

use bookings::domain::saga::{BookingState, Command, Decision, Fact, decide};
use proptest::prelude::*;

const PRICE: i64 = 12_000;
const CAPACITY: usize = 3;

/// What payments holds for one booking's payment, as a model.
#[derive(Debug, Clone, Default)]
struct PaymentModel {
    captured: i64,
    refunded: i64,
    canceled: bool,
    /// Refund calls already made (by Idempotency-Key): a repeat is no-op.
    refund_keys: HashSet<u32>,
}

#[derive(Debug, Clone)]
struct BookingModel {
    state: BookingState,
    payment: PaymentModel,
    /// Calls decided and not yet made: (key, command).
    pending: Vec<(u32, Command)>,
    /// Events payments will deliver because of calls made.
    to_deliver: Vec<Fact>,
    refund: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Reserve,
    PayOk(usize),
    PayFail(usize),
    Expire(usize),
    MemberCancel(usize, u8),
    OrganiserCancel,
    /// Make a pending call; `crash` makes it twice (crash after the call,
    /// before marking it done).
    RunCall(usize, bool),
    /// Deliver a queued event; `twice` delivers it again (redelivery).
    Deliver(usize, bool),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => Just(Step::Reserve),
        3 => (0..6usize).prop_map(Step::PayOk),
        1 => (0..6usize).prop_map(Step::PayFail),
        2 => (0..6usize).prop_map(Step::Expire),
        1 => (0..6usize, 0..=100u8).prop_map(|(b, p)| Step::MemberCancel(b, p)),
        1 => Just(Step::OrganiserCancel),
        3 => (0..6usize, any::<bool>()).prop_map(|(b, c)| Step::RunCall(b, c)),
        3 => (0..6usize, any::<bool>()).prop_map(|(b, t)| Step::Deliver(b, t)),
    ]
}

struct World {
    bookings: Vec<BookingModel>,
    taken: usize,
    next_key: u32,
    organiser_cancelled: bool,
}

impl World {
    fn apply(&mut self, i: usize, fact: Fact) {
        let booking = &mut self.bookings[i];
        if let Decision::Move {
            to,
            frees_place,
            command,
            refund,
            ..
        } = decide(booking.state, fact, PRICE)
        {
            assert!(
                !frees_place || booking.state.holds_place(),
                "freed a place it did not hold"
            );
            if frees_place {
                self.taken -= 1;
            }
            booking.state = to;
            if refund.is_some() {
                booking.refund = refund;
            }
            if let Some(command) = command {
                self.next_key += 1;
                booking.pending.push((self.next_key, command));
            }
        }
    }

    /// Payments makes the call (idempotently by key) and queues its event.
    fn run_call(&mut self, i: usize, key: u32, command: Command) {
        let booking = &mut self.bookings[i];
        match command {
            Command::CancelPayment => {
                if booking.payment.captured == 0 && !booking.payment.canceled {
                    booking.payment.canceled = true;
                    booking.to_deliver.push(Fact::PaymentCanceled);
                }
            }
            Command::Refund(amount) => {
                if booking.payment.refund_keys.insert(key) {
                    assert!(
                        booking.payment.refunded + amount <= booking.payment.captured,
                        "refunds more than was captured"
                    );
                    booking.payment.refunded += amount;
                    booking.to_deliver.push(Fact::RefundSucceeded);
                }
            }
        }
    }

    fn step(&mut self, step: Step) {
        let n = self.bookings.len();
        match step {
            Step::Reserve if self.taken < CAPACITY && !self.organiser_cancelled => {
                self.taken += 1;
                self.bookings.push(BookingModel {
                    state: BookingState::Reserved,
                    payment: PaymentModel::default(),
                    pending: Vec::new(),
                    to_deliver: Vec::new(),
                    refund: None,
                });
            }
            Step::PayOk(b) if b < n => {
                // The member pays: payments captures it unless canceled.
                let p = &mut self.bookings[b].payment;
                if p.captured == 0 && !p.canceled {
                    p.captured = PRICE;
                    self.bookings[b].to_deliver.push(Fact::PaymentSucceeded);
                }
            }
            Step::PayFail(b) if b < n => {
                let p = &mut self.bookings[b].payment;
                if p.captured == 0 && !p.canceled {
                    p.canceled = true;
                    self.bookings[b].to_deliver.push(Fact::PaymentFailed);
                }
            }
            Step::Expire(b) if b < n => self.apply(b, Fact::HoldExpired),
            Step::MemberCancel(b, percent) if b < n => {
                let refund = PRICE * i64::from(percent) / 100;
                self.apply(b, Fact::MemberCancelled { refund });
            }
            Step::OrganiserCancel => {
                self.organiser_cancelled = true;
                for b in 0..n {
                    self.apply(b, Fact::OrganiserCancelled);
                }
            }
            Step::RunCall(b, crash) if b < n => {
                if let Some((key, command)) = self.bookings[b].pending.first().copied() {
                    self.run_call(b, key, command);
                    if crash {
                        self.run_call(b, key, command);
                    }
                    self.bookings[b].pending.remove(0);
                }
            }
            Step::Deliver(b, twice) if b < n && !self.bookings[b].to_deliver.is_empty() => {
                let fact = self.bookings[b].to_deliver.remove(0);
                self.apply(b, fact);
                if twice {
                    self.apply(b, fact);
                }
            }
            _ => {}
        }
        let holding = self
            .bookings
            .iter()
            .filter(|b| b.state.holds_place())
            .count();
        assert_eq!(holding, self.taken, "places counted = places held");
        assert!(self.taken <= CAPACITY, "oversold");
    }

    /// Every decided call made, every event delivered, until quiet.
    fn settle(&mut self) {
        for _ in 0..20 {
            for b in 0..self.bookings.len() {
                self.step(Step::RunCall(b, false));
                self.step(Step::Deliver(b, false));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn places_and_money_add_up_whatever_happens(steps in prop::collection::vec(step(), 1..60)) {
        let mut world = World { bookings: Vec::new(), taken: 0, next_key: 0, organiser_cancelled: false };
        for s in steps {
            world.step(s);
        }
        world.settle();
        for b in &world.bookings {
            prop_assert!(b.pending.is_empty() && b.to_deliver.is_empty());
            let kept = b.payment.captured - b.payment.refunded;
            match b.state {
                // Confirmed: paid in full, nothing given back.
                BookingState::Confirmed => prop_assert_eq!((b.payment.captured, kept), (PRICE, PRICE)),
                // Reserved: nothing paid yet (the payment is still open).
                BookingState::Reserved => prop_assert_eq!(b.payment.captured, 0),
                // Released: the platform keeps nothing.
                BookingState::Released => prop_assert_eq!(kept, 0),
                // Cancelled only stays when no refund was due; refunded:
                // exactly the recorded refund went back.
                BookingState::Cancelled => {
                    prop_assert_eq!(b.refund, Some(0));
                    prop_assert_eq!(kept, PRICE);
                }
                BookingState::Refunded => {
                    let refund = b.refund.unwrap_or_default();
                    prop_assert!(refund > 0);
                    prop_assert_eq!(b.payment.refunded, refund);
                }
            }
        }
    }
}
