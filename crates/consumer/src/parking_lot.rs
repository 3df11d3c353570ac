//! The parking lot of dead letters: where rejected events will be kept,
//! listed and replayed once their cause is fixed.
//!
//! Not built yet: the reliability issue adds it here. Today a rejected event
//! only goes, with its reason, to the dead-letter topic ([`crate::DeadLetter`]),
//! where an operator reads it from the pub/sub broker. The parking lot is to
//! build on the same [`crate::DeadLetter`] (consumer, topic, reason, event as
//! delivered) so that a consumer's handler does not change when it arrives.
