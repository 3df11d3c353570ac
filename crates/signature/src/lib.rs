//! Signed provider callbacks: the PSP's webhooks (`Psp-Signature`) and the
//! delivery receipts of the mail, SMS and push providers
//! (`Notify-Signature`) carry
//!
//! ```text
//! t=<unix secs>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>[,v1=<hex>…]
//! ```
//!
//! Several `v1` entries are allowed so that a provider can sign with the old
//! and the new secret while a secret is rotated; entries of other schemes
//! (`v0=…`) are ignored.
//!
//! The routes that check these headers are unauthenticated, so the work a
//! request can cause is bounded before anything is hashed: the header is at
//! most [`MAX_HEADER_LEN`] bytes with at most [`MAX_SIGNATURES`] `v1`
//! entries, the timestamp is checked against the clock next, and only then is
//! the body hashed — once, whatever the number of entries — and the result
//! compared with each entry in constant time.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The longest header accepted, in bytes. One entry is 67 bytes
/// (`v1=` and 64 hex digits), so this leaves room for
/// [`MAX_SIGNATURES`] entries, the timestamp and separators.
pub const MAX_HEADER_LEN: usize = 1024;

/// The most `v1` entries accepted in one header. Two are needed during a
/// secret rotation; eight leave room for a provider that signs with every
/// secret it knows.
pub const MAX_SIGNATURES: usize = 8;

/// The length of an HMAC-SHA256 tag.
const TAG_LEN: usize = 32;

/// Why a signature header was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("malformed signature header: {0}")]
    Malformed(#[from] Malformation),
    #[error("timestamp outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

/// What is wrong with a header that could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformation {
    #[error("longer than {MAX_HEADER_LEN} bytes")]
    TooLong,
    #[error("more than {MAX_SIGNATURES} v1 signatures")]
    TooManySignatures,
    #[error("no t= timestamp")]
    MissingTimestamp,
    #[error("more than one t= timestamp")]
    RepeatedTimestamp,
    #[error("t= is not a unix time in seconds")]
    InvalidTimestamp,
    #[error("no v1= signature")]
    MissingSignature,
    #[error("a v1= signature is not 64 hex digits")]
    InvalidSignature,
}

/// A parsed header: its timestamp and at most [`MAX_SIGNATURES`] tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    timestamp: i64,
    signatures: Vec<[u8; TAG_LEN]>,
}

impl SignatureHeader {
    /// Parses `t=<secs>,v1=<hex>[,v1=<hex>…]`; parts may be surrounded by
    /// spaces and come in any order. The length bound is checked before
    /// anything else, so the work is bounded by [`MAX_HEADER_LEN`].
    pub fn parse(header: &str) -> Result<Self, Malformation> {
        if header.len() > MAX_HEADER_LEN {
            return Err(Malformation::TooLong);
        }
        let mut timestamp = None;
        let mut signatures = Vec::with_capacity(2);
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", value)) => {
                    if timestamp.is_some() {
                        return Err(Malformation::RepeatedTimestamp);
                    }
                    timestamp = Some(parse_timestamp(value)?);
                }
                Some(("v1", value)) => {
                    if signatures.len() == MAX_SIGNATURES {
                        return Err(Malformation::TooManySignatures);
                    }
                    let mut tag = [0; TAG_LEN];
                    hex::decode_to_slice(value, &mut tag)
                        .map_err(|_| Malformation::InvalidSignature)?;
                    signatures.push(tag);
                }
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(Malformation::MissingTimestamp)?;
        if signatures.is_empty() {
            return Err(Malformation::MissingSignature);
        }
        Ok(Self {
            timestamp,
            signatures,
        })
    }

    /// The signing time, in unix seconds.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The `v1` tags, in header order.
    pub fn signatures(&self) -> &[[u8; TAG_LEN]] {
        &self.signatures
    }
}

/// Decimal digits only (no sign, no spaces): a signing time is never before
/// 1970, and a value beyond `i64` is refused here rather than wrapped.
fn parse_timestamp(value: &str) -> Result<i64, Malformation> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Malformation::InvalidTimestamp);
    }
    value
        .parse::<i64>()
        .map_err(|_| Malformation::InvalidTimestamp)
}

/// Checks signature headers against one secret, accepting timestamps within
/// a tolerance of the receiver's clock either way (a captured callback cannot
/// be replayed later; within the window, the callback's own id makes a replay
/// a no-op).
#[derive(Clone)]
pub struct Verifier {
    key: HmacSha256,
    tolerance_secs: u64,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("Verifier")
            .field("tolerance_secs", &self.tolerance_secs)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for headers signed with `secret`, `tolerance_secs` apart
    /// from the receiver's clock at most.
    pub fn new(secret: &[u8], tolerance_secs: u64) -> Self {
        Self {
            key: keyed(secret),
            tolerance_secs,
        }
    }

    /// Checks `header` against `body` at unix time `now`: the header's bounds
    /// and syntax, then its timestamp, then the tags — the body is hashed
    /// once, and only for a header that passed the first two checks.
    pub fn verify(&self, header: &str, body: &[u8], now: i64) -> Result<(), SignatureError> {
        self.verify_with(header, now, |timestamp| self.tag(timestamp, body))
    }

    /// [`Self::verify`] with the hashing given as `tag`, which the types
    /// allow to run once at most (the tests count it).
    fn verify_with(
        &self,
        header: &str,
        now: i64,
        tag: impl FnOnce(i64) -> [u8; TAG_LEN],
    ) -> Result<(), SignatureError> {
        let parsed = SignatureHeader::parse(header)?;
        // `abs_diff` cannot overflow, whatever the two values.
        if now.abs_diff(parsed.timestamp) > self.tolerance_secs {
            return Err(SignatureError::Stale);
        }
        let expected = tag(parsed.timestamp);
        // Every entry is compared, matching or not, so the time taken does
        // not say which one matched.
        let matched = parsed
            .signatures
            .iter()
            .fold(subtle::Choice::from(0), |any, candidate| {
                any | expected.ct_eq(candidate)
            });
        if bool::from(matched) {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    fn tag(&self, timestamp: i64, body: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.key.clone();
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

/// The header value a provider sends for `body` signed with `secret` at unix
/// time `timestamp` (the sandboxes sign with it; tests forge with it).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = Verifier::new(secret, 0).tag(timestamp, body);
    format!("t={timestamp},v1={}", hex::encode(tag))
}

fn keyed(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use proptest::prelude::*;

    use super::*;

    const SECRET: &[u8] = b"whsec_test";

    fn verifier() -> Verifier {
        Verifier::new(SECRET, 300)
    }

    /// `verify` with the body hashing counted.
    fn verify_counting(header: &str, body: &[u8], now: i64) -> (Result<(), SignatureError>, u32) {
        let verifier = verifier();
        let calls = Cell::new(0);
        let result = verifier.verify_with(header, now, |t| {
            calls.set(calls.get() + 1);
            verifier.tag(t, body)
        });
        (result, calls.get())
    }

    #[test]
    fn the_signature_matches_the_reference_value() {
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"key", b"1.{}", hashlib.sha256).hexdigest())'
        assert_eq!(
            sign(b"key", 1, b"{}"),
            "t=1,v1=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
        );
    }

    #[test]
    fn a_fresh_signature_over_the_same_body_verifies() {
        let header = sign(SECRET, 1000, b"{}");
        assert_eq!(verifier().verify(&header, b"{}", 1000), Ok(()));
        assert_eq!(verifier().verify(&header, b"{}", 1300), Ok(()));
        assert_eq!(verifier().verify(&header, b"{}", 700), Ok(()));
        // Spaces around parts, unknown schemes and any order are fine.
        let v1 = header.trim_start_matches("t=1000,");
        let reordered = format!(" v0=abc , {v1} ,t=1000 ");
        assert_eq!(verifier().verify(&reordered, b"{}", 1000), Ok(()));
    }

    #[test]
    fn tampering_a_wrong_secret_and_stale_timestamps_fail() {
        let header = sign(SECRET, 1000, b"{}");
        let v = verifier();
        assert_eq!(
            v.verify(&header, b"{ }", 1000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            Verifier::new(b"other", 300).verify(&header, b"{}", 1000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(v.verify(&header, b"{}", 1301), Err(SignatureError::Stale));
        assert_eq!(v.verify(&header, b"{}", 699), Err(SignatureError::Stale));
        // The timestamp is signed: moving it breaks the signature.
        let moved = header.replace("t=1000", "t=1001");
        assert_eq!(v.verify(&moved, b"{}", 1000), Err(SignatureError::Mismatch));
    }

    #[test]
    fn during_a_rotation_any_listed_signature_may_match() {
        let old = sign(b"old", 1000, b"{}");
        let new = sign(SECRET, 1000, b"{}");
        let both = format!("{old},{}", new.trim_start_matches("t=1000,"));
        assert_eq!(verifier().verify(&both, b"{}", 1000), Ok(()));
        assert_eq!(
            Verifier::new(b"old", 300).verify(&both, b"{}", 1000),
            Ok(())
        );
    }

    #[test]
    fn malformed_headers_say_what_is_wrong() {
        let tag = "00".repeat(32);
        for (header, why) in [
            ("", Malformation::MissingTimestamp),
            ("garbage", Malformation::MissingTimestamp),
            (&format!("v1={tag}"), Malformation::MissingTimestamp),
            ("t=1", Malformation::MissingSignature),
            ("t=1,v0=00", Malformation::MissingSignature),
            ("t=x,v1=00", Malformation::InvalidTimestamp),
            ("t=,v1=00", Malformation::InvalidTimestamp),
            ("t=-5,v1=00", Malformation::InvalidTimestamp),
            ("t=+5,v1=00", Malformation::InvalidTimestamp),
            (
                "t=9223372036854775808,v1=00",
                Malformation::InvalidTimestamp,
            ),
            (
                "t=99999999999999999999999,v1=00",
                Malformation::InvalidTimestamp,
            ),
            ("t=1,t=1,v1=00", Malformation::RepeatedTimestamp),
            ("t=1,v1=zz", Malformation::InvalidSignature),
            ("t=1,v1=0", Malformation::InvalidSignature),
            ("t=1,v1=00", Malformation::InvalidSignature),
            (&format!("t=1,v1={tag}00"), Malformation::InvalidSignature),
        ] {
            assert_eq!(
                verifier().verify(header, b"{}", 1),
                Err(SignatureError::Malformed(why)),
                "{header}"
            );
        }
    }

    #[test]
    fn timestamps_at_the_ends_of_the_range_are_stale_not_a_panic() {
        let tag = "00".repeat(32);
        let max = format!("t={},v1={tag}", i64::MAX);
        assert_eq!(
            verifier().verify(&max, b"{}", i64::MIN),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verifier().verify(&format!("t=0,v1={tag}"), b"{}", i64::MAX),
            Err(SignatureError::Stale)
        );
        // A verifier that accepts any time still checks the tag.
        let lenient = Verifier::new(SECRET, u64::MAX);
        assert_eq!(
            lenient.verify(&max, b"{}", i64::MIN),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            lenient.verify(&sign(SECRET, i64::MAX, b"{}"), b"{}", i64::MIN),
            Ok(())
        );
    }

    #[test]
    fn eight_thousand_entries_are_refused_before_the_body_is_hashed() {
        let now = 1000;
        let genuine = sign(SECRET, now, b"{}");
        let mut header = String::from("t=1000");
        for _ in 0..7_999 {
            header.push_str(",v1=00");
        }
        // Even with the genuine signature last.
        header.push(',');
        header.push_str(genuine.trim_start_matches("t=1000,"));
        assert_eq!(
            verify_counting(&header, b"{}", now),
            (Err(SignatureError::Malformed(Malformation::TooLong)), 0)
        );
    }

    #[test]
    fn more_than_eight_signatures_are_refused_before_the_body_is_hashed() {
        let now = 1000;
        let genuine = sign(SECRET, now, b"{}");
        let v1 = genuine.trim_start_matches("t=1000,");
        let nine = format!("t=1000{}", format!(",{v1}").repeat(MAX_SIGNATURES + 1));
        assert!(
            nine.len() <= MAX_HEADER_LEN,
            "the count bound is the one hit"
        );
        assert_eq!(
            verify_counting(&nine, b"{}", now),
            (
                Err(SignatureError::Malformed(Malformation::TooManySignatures)),
                0
            )
        );
        let eight = format!("t=1000{}", format!(",{v1}").repeat(MAX_SIGNATURES));
        assert_eq!(verify_counting(&eight, b"{}", now), (Ok(()), 1));
    }

    #[test]
    fn a_stale_header_is_refused_before_the_body_is_hashed() {
        let header = sign(SECRET, 1000, b"{}");
        assert_eq!(
            verify_counting(&header, b"{}", 5000),
            (Err(SignatureError::Stale), 0)
        );
    }

    #[test]
    fn the_body_is_hashed_once_whatever_the_number_of_entries() {
        let wrong = format!(",v1={}", "ab".repeat(32));
        let header = format!("t=1000{}", wrong.repeat(MAX_SIGNATURES));
        assert_eq!(
            verify_counting(&header, b"{}", 1000),
            (Err(SignatureError::Mismatch), 1)
        );
    }

    #[test]
    fn the_debug_output_does_not_show_the_secret() {
        let debug = format!("{:?}", Verifier::new(b"s3cr3t-value", 300));
        assert!(!debug.contains("s3cr3t"), "{debug}");
    }

    /// Parts a header is made of, valid or not.
    fn part() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<i64>().prop_map(|t| format!("t={t}")),
            any::<u64>().prop_map(|t| format!("t={t}")),
            "[0-9+-]{0,25}".prop_map(|t| format!("t={t}")),
            proptest::collection::vec(any::<u8>(), 0..40)
                .prop_map(|b| format!("v1={}", hex::encode(b))),
            "[0-9a-fA-FxZ ]{0,70}".prop_map(|s| format!("v1={s}")),
            "[ -~]{0,20}",
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(header in "\\PC{0,1200}", now in any::<i64>(), tolerance in any::<u64>()) {
            let _ = Verifier::new(SECRET, tolerance).verify(&header, b"{}", now);
        }

        #[test]
        fn arbitrary_headers_never_panic_and_hash_at_most_once(
            parts in proptest::collection::vec(part(), 0..40),
            now in any::<i64>(),
        ) {
            let header = parts.join(",");
            let (result, calls) = verify_counting(&header, b"body", now);
            prop_assert!(calls <= 1);
            if header.len() > MAX_HEADER_LEN {
                prop_assert_eq!(result, Err(SignatureError::Malformed(Malformation::TooLong)));
                prop_assert_eq!(calls, 0);
            }
            // Only a header that could be genuine costs a hash.
            if calls == 1 {
                prop_assert!(matches!(result, Ok(()) | Err(SignatureError::Mismatch)));
            }
        }

        #[test]
        fn what_is_signed_verifies_and_nothing_else(
            secret in proptest::collection::vec(any::<u8>(), 0..80),
            timestamp in 0..i64::MAX,
            body in proptest::collection::vec(any::<u8>(), 0..512),
            skew in 0..=300_i64,
        ) {
            let header = sign(&secret, timestamp, &body);
            let verifier = Verifier::new(&secret, 300);
            let now = timestamp.saturating_add(skew);
            prop_assert_eq!(verifier.verify(&header, &body, now), Ok(()));
            let mut other = body.clone();
            other.push(b'x');
            prop_assert_eq!(verifier.verify(&header, &other, now), Err(SignatureError::Mismatch));
        }
    }
}
