//! Offerings (course, camp, tournament) and their cancellation policy, as
//! values that cannot be invalid once parsed.

use platform_money::{Currency, Money};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Why a request's offering is refused (422, with the field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidOffering {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> InvalidOffering {
    InvalidOffering {
        field,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferingKind {
    Course,
    Camp,
    Tournament,
}

impl OfferingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Course => "course",
            Self::Camp => "camp",
            Self::Tournament => "tournament",
        }
    }

    pub fn parse(s: &str) -> Result<Self, InvalidOffering> {
        match s {
            "course" => Ok(Self::Course),
            "camp" => Ok(Self::Camp),
            "tournament" => Ok(Self::Tournament),
            _ => Err(invalid("kind", "must be course, camp or tournament")),
        }
    }
}

/// One step of a cancellation policy: a member who cancels before `until`
/// gets `percent` of the price back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundStep {
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    pub percent: u8,
}

/// Steps ordered by `until`, percentages not rising over time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RefundPolicy(Vec<RefundStep>);

impl RefundPolicy {
    pub fn parse(steps: Vec<RefundStep>) -> Result<Self, InvalidOffering> {
        if steps.len() > 10 {
            return Err(invalid("refund_policy", "at most 10 steps"));
        }
        for (i, step) in steps.iter().enumerate() {
            if step.percent > 100 {
                return Err(invalid("refund_policy", "percent must be 0..=100"));
            }
            if let Some(next) = steps.get(i + 1)
                && (next.until <= step.until || next.percent > step.percent)
            {
                return Err(invalid(
                    "refund_policy",
                    "steps must be ordered by until with percentages that do not rise",
                ));
            }
        }
        Ok(Self(steps))
    }

    /// What a member who cancels at `now` gets back of `price` (minor
    /// units, rounded down): the first step whose `until` is still ahead.
    pub fn refund_at(&self, now: OffsetDateTime, price: i64) -> i64 {
        let percent = self
            .0
            .iter()
            .find(|step| now < step.until)
            .map_or(0, |step| i64::from(step.percent));
        price.saturating_mul(percent) / 100
    }
}

/// A valid new offering (or the full replacement of one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferingSpec {
    pub kind: OfferingKind,
    pub title: String,
    pub starts_at: OffsetDateTime,
    pub price: Money,
    pub capacity: i32,
    pub booking_opens_at: OffsetDateTime,
    pub booking_closes_at: OffsetDateTime,
    pub refund_policy: RefundPolicy,
}

/// The request body's fields, unparsed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferingInput {
    pub kind: String,
    pub title: String,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    pub price_amount: i64,
    pub currency: String,
    pub capacity: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub booking_opens_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub booking_closes_at: OffsetDateTime,
    #[serde(default)]
    pub refund_policy: Vec<RefundStep>,
}

impl OfferingSpec {
    pub fn parse(input: OfferingInput) -> Result<Self, InvalidOffering> {
        let kind = OfferingKind::parse(&input.kind)?;
        let title = input.title.trim().to_owned();
        if title.is_empty() || title.chars().count() > 200 {
            return Err(invalid("title", "must be 1 to 200 characters"));
        }
        let currency =
            Currency::parse(&input.currency).map_err(|e| invalid("currency", e.to_string()))?;
        let price = Money::positive(input.price_amount, currency)
            .map_err(|e| invalid("price_amount", e.to_string()))?;
        if !(1..=100_000).contains(&input.capacity) {
            return Err(invalid("capacity", "must be 1..=100000"));
        }
        if input.booking_opens_at >= input.booking_closes_at {
            return Err(invalid(
                "booking_closes_at",
                "must be after booking_opens_at",
            ));
        }
        if input.booking_closes_at > input.starts_at {
            return Err(invalid("booking_closes_at", "must not be after starts_at"));
        }
        Ok(Self {
            kind,
            title,
            starts_at: input.starts_at,
            price,
            capacity: input.capacity,
            booking_opens_at: input.booking_opens_at,
            booking_closes_at: input.booking_closes_at,
            refund_policy: RefundPolicy::parse(input.refund_policy)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn input() -> OfferingInput {
        OfferingInput {
            kind: "course".into(),
            title: " Swimming for beginners ".into(),
            starts_at: datetime!(2027-03-01 09:00 UTC),
            price_amount: 12000,
            currency: "EUR".into(),
            capacity: 12,
            booking_opens_at: datetime!(2027-01-01 00:00 UTC),
            booking_closes_at: datetime!(2027-02-28 00:00 UTC),
            refund_policy: vec![
                RefundStep {
                    until: datetime!(2027-02-01 00:00 UTC),
                    percent: 100,
                },
                RefundStep {
                    until: datetime!(2027-02-25 00:00 UTC),
                    percent: 50,
                },
            ],
        }
    }

    #[test]
    fn a_valid_offering_parses_with_its_title_trimmed() {
        let spec = OfferingSpec::parse(input()).unwrap();
        assert_eq!(spec.title, "Swimming for beginners");
        assert_eq!(spec.price.amount(), 12000);
    }

    #[test]
    fn each_invalid_field_is_named() {
        type Breaks = fn(&mut OfferingInput);
        let cases: [(Breaks, &str); 6] = [
            (|i| i.kind = "party".into(), "kind"),
            (|i| i.title = "  ".into(), "title"),
            (|i| i.currency = "EURO".into(), "currency"),
            (|i| i.price_amount = 0, "price_amount"),
            (|i| i.capacity = 0, "capacity"),
            (
                |i| i.booking_closes_at = i.booking_opens_at,
                "booking_closes_at",
            ),
        ];
        for (break_it, field) in cases {
            let mut i = input();
            break_it(&mut i);
            assert_eq!(OfferingSpec::parse(i).unwrap_err().field, field);
        }
    }

    #[test]
    fn the_refund_follows_the_first_step_still_ahead() {
        let policy = OfferingSpec::parse(input()).unwrap().refund_policy;
        assert_eq!(
            policy.refund_at(datetime!(2027-01-15 00:00 UTC), 12000),
            12000
        );
        assert_eq!(
            policy.refund_at(datetime!(2027-02-10 00:00 UTC), 12000),
            6000
        );
        assert_eq!(policy.refund_at(datetime!(2027-02-26 00:00 UTC), 12000), 0);
    }

    #[test]
    fn a_policy_whose_refund_rises_later_is_refused() {
        let mut i = input();
        i.refund_policy.reverse();
        assert_eq!(OfferingSpec::parse(i).unwrap_err().field, "refund_policy");
    }
}
