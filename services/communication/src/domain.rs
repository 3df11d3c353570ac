//! The service's vocabulary: channels, statuses and validated inputs.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
    Push,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Push];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Push => "push",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Delivery status; moves only forward (enforced by a trigger in the
/// database, see migrations/).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Queued,
    Sending,
    Sent,
    Delivered,
    Failed,
    Bounced,
    NotSent,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Bounced => "bounced",
            Self::NotSent => "not_sent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Sending,
            Self::Sent,
            Self::Delivered,
            Self::Failed,
            Self::Bounced,
            Self::NotSent,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// Where a recipient can be reached; any field may be missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contacts {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub push_token: Option<String>,
    pub locale: Option<String>,
}

impl Contacts {
    pub fn address(&self, channel: Channel) -> Option<&str> {
        match channel {
            Channel::Email => self.email.as_deref(),
            Channel::Sms => self.phone.as_deref(),
            Channel::Push => self.push_token.as_deref(),
        }
        .filter(|a| !a.is_empty())
    }

    /// Fields given here win over `other`'s.
    pub fn or(self, other: Contacts) -> Contacts {
        Contacts {
            email: self.email.or(other.email),
            phone: self.phone.or(other.phone),
            push_token: self.push_token.or(other.push_token),
            locale: self.locale.or(other.locale),
        }
    }

    /// Checks every given field; `Err((field, reason))`.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if let Some(email) = &self.email
            && !valid_email(email)
        {
            return Err(("email", "must be a single address like name@example.com"));
        }
        if let Some(phone) = &self.phone
            && !valid_phone(phone)
        {
            return Err(("phone", "must be in E.164 form, e.g. +4915112345678"));
        }
        if let Some(token) = &self.push_token
            && (token.is_empty() || token.len() > 512 || token.chars().any(char::is_whitespace))
        {
            return Err(("push_token", "must be 1 to 512 characters without spaces"));
        }
        if let Some(locale) = &self.locale
            && !valid_locale(locale)
        {
            return Err(("locale", "must look like en or de-DE"));
        }
        Ok(())
    }
}

pub fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && s.len() <= 254
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>;,\"()[]\\".contains(c))
        && !domain.contains('@')
}

pub fn valid_phone(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0')
}

pub fn valid_locale(s: &str) -> bool {
    let (lang, region) = match s.split_once('-') {
        Some((l, r)) => (l, Some(r)),
        None => (s, None),
    };
    lang.len() == 2
        && lang.chars().all(|c| c.is_ascii_lowercase())
        && region.is_none_or(|r| r.len() == 2 && r.chars().all(|c| c.is_ascii_uppercase()))
}

/// Recipient ids, categories: short, printable, no spaces.
pub fn valid_id(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:@".contains(c))
}

pub fn valid_category(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Minor units as a display string, e.g. `1234 EUR` → `12.34 EUR` (en) or
/// `12,34 EUR` (de).
pub fn format_amount(minor: i64, currency: &str, locale: &str) -> String {
    let exponent: u32 = match currency {
        "JPY" | "KRW" | "ISK" | "CLP" | "VND" => 0,
        "BHD" | "KWD" | "OMR" | "JOD" | "TND" => 3,
        _ => 2,
    };
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    if exponent == 0 {
        return format!("{sign}{abs} {currency}");
    }
    let factor = 10u64.pow(exponent);
    let separator = if locale.starts_with("de") { ',' } else { '.' };
    format!(
        "{sign}{}{separator}{:0width$} {currency}",
        abs / factor,
        abs % factor,
        width = exponent as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_formatted_per_currency_and_locale() {
        assert_eq!(format_amount(1234, "EUR", "en"), "12.34 EUR");
        assert_eq!(format_amount(1205, "EUR", "de"), "12,05 EUR");
        assert_eq!(format_amount(500, "JPY", "en"), "500 JPY");
        assert_eq!(format_amount(1, "KWD", "en"), "0.001 KWD");
    }

    #[test]
    fn addresses_are_checked() {
        assert!(valid_email("a@example.com"));
        assert!(!valid_email("a@example"));
        assert!(!valid_email("a;b@example.com"));
        assert!(!valid_email("a@b@example.com"));
        assert!(valid_phone("+4915112345678"));
        assert!(!valid_phone("015112345678"));
        assert!(valid_locale("de-DE") && valid_locale("en") && !valid_locale("EN"));
        assert!(valid_category("payment_receipt") && !valid_category("Marketing"));
    }
}
