//! Crash points for fault-injection tests: with the `fault-injection`
//! feature (enabled only by this crate's own dev-dependency on itself, so
//! only test builds have it), a test arms a point for one customer reference
//! and the request that reaches it panics there, as if the process had died:
//! nothing after the point runs (no save, no idempotency record). Without the
//! feature every point is an empty inline function.

/// After the provider answered a confirmation, before its answer is saved.
pub const AFTER_PROVIDER: &str = "after_provider";
/// After a confirmation's intent was saved, before the provider is called.
pub const BEFORE_PROVIDER: &str = "before_provider";
/// After the provider answered a keyed refund, before its answer is saved.
pub const AFTER_REFUND: &str = "after_refund";
/// After a new payment was saved, before its answer (and idempotency record).
pub const AFTER_CREATE: &str = "after_create";

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn crash_point(_point: &'static str, _customer_reference: &str) {}

#[cfg(feature = "fault-injection")]
pub use armed::{arm, crash_point};

#[cfg(feature = "fault-injection")]
mod armed {
    use std::collections::HashMap;
    use std::sync::{Mutex, PoisonError};

    type Armed = HashMap<(&'static str, String), usize>;

    static ARMED: Mutex<Option<Armed>> = Mutex::new(None);

    /// The next `times` requests for `customer_reference` that reach `point`
    /// crash there.
    pub fn arm(point: &'static str, customer_reference: &str, times: usize) {
        let mut armed = ARMED.lock().unwrap_or_else(PoisonError::into_inner);
        armed
            .get_or_insert_with(HashMap::new)
            .insert((point, customer_reference.to_owned()), times);
    }

    pub fn crash_point(point: &'static str, customer_reference: &str) {
        let fire = {
            let mut armed = ARMED.lock().unwrap_or_else(PoisonError::into_inner);
            match armed
                .as_mut()
                .and_then(|a| a.get_mut(&(point, customer_reference.to_owned())))
            {
                Some(left) if *left > 0 => {
                    *left -= 1;
                    true
                }
                _ => false,
            }
        };
        if fire {
            panic!("fault injection: crash at {point}");
        }
    }
}
