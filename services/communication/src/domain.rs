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

/// An email address: one mailbox, `local@domain.tld`, nothing a mail
/// header could be tricked with (no spaces, controls or any of `<>;,"()[]\`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(s: &str) -> Option<Self> {
        let (local, domain) = s.split_once('@')?;
        let valid = !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && s.len() <= 254
            && !s
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>;,\"()[]\\".contains(c))
            && !domain.contains('@');
        valid.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A recipient's id in the directory (the customer reference payments
/// sends, a statement's account id): 1 to 128 characters of letters,
/// digits and `- _ . : @`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RecipientId(String);

impl RecipientId {
    pub fn parse(s: &str) -> Option<Self> {
        let valid = (1..=128).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:@".contains(c));
        valid.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RecipientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// Both are text columns; they bind as their text. Reading an address back
// parses it again, so a row that no longer passes is an error, not a send.
impl sqlx::Type<sqlx::Postgres> for EmailAddress {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <String as sqlx::Type<sqlx::Postgres>>::type_info()
    }
}

impl sqlx::Encode<'_, sqlx::Postgres> for EmailAddress {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <&str as sqlx::Encode<sqlx::Postgres>>::encode(self.as_str(), buf)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Postgres> for EmailAddress {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
        Ok(Self::parse(text).ok_or("a stored email address is not valid")?)
    }
}

impl sqlx::Type<sqlx::Postgres> for RecipientId {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <String as sqlx::Type<sqlx::Postgres>>::type_info()
    }
}

impl sqlx::Encode<'_, sqlx::Postgres> for RecipientId {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <&str as sqlx::Encode<sqlx::Postgres>>::encode(self.as_str(), buf)
    }
}

/// Where a recipient can be reached, checked; any field may be missing
/// (and is then left out of a body, never `null`: the contract's fields
/// are strings).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Contacts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailAddress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

impl Contacts {
    pub fn address(&self, channel: Channel) -> Option<&str> {
        match channel {
            Channel::Email => self.email.as_ref().map(EmailAddress::as_str),
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
}

/// Contacts as an API body gives them, not yet checked. A field is left
/// out or a string: `null` is refused (the contract's fields are strings,
/// ADR 0039's finding ST201), not taken as "left out".
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactsRequest {
    #[serde(default, deserialize_with = "string_not_null")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "string_not_null")]
    pub phone: Option<String>,
    #[serde(default, deserialize_with = "string_not_null")]
    pub push_token: Option<String>,
    #[serde(default, deserialize_with = "string_not_null")]
    pub locale: Option<String>,
}

/// A field that is present must be a string; absence is `None` (through
/// `#[serde(default)]`), an explicit `null` an error.
fn string_not_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

impl ContactsRequest {
    /// Checks every given field; `Err((field, reason))`.
    pub fn parse(self) -> Result<Contacts, (&'static str, &'static str)> {
        let email = match self.email {
            Some(email) => Some(
                EmailAddress::parse(&email)
                    .ok_or(("email", "must be a single address like name@example.com"))?,
            ),
            None => None,
        };
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
        Ok(Contacts {
            email,
            phone: self.phone,
            push_token: self.push_token,
            locale: self.locale,
        })
    }
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

/// Categories: short, lowercase, no spaces.
pub fn valid_category(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked() {
        assert!(EmailAddress::parse("a@example.com").is_some());
        assert!(EmailAddress::parse("a@example").is_none());
        assert!(EmailAddress::parse("a;b@example.com").is_none());
        assert!(EmailAddress::parse("a@b@example.com").is_none());
        assert!(valid_phone("+4915112345678"));
        assert!(!valid_phone("015112345678"));
        assert!(valid_locale("de-DE") && valid_locale("en") && !valid_locale("EN"));
        assert!(valid_category("payment_receipt") && !valid_category("Marketing"));
    }

    #[test]
    fn recipient_ids_are_short_and_printable() {
        for id in ["cus_42", "a", "acct:0193-f5a4.x@y", &"x".repeat(128)] {
            assert_eq!(
                RecipientId::parse(id).map(|r| r.to_string()),
                Some(id.to_owned())
            );
        }
        for id in ["", "a b", "a/b", "é", &"x".repeat(129)] {
            assert!(RecipientId::parse(id).is_none(), "{id:?}");
        }
    }

    #[test]
    fn contacts_name_the_first_bad_field() {
        let request = |email: &str, phone: &str| ContactsRequest {
            email: Some(email.into()),
            phone: Some(phone.into()),
            ..ContactsRequest::default()
        };
        assert_eq!(
            request("not-an-address", "0151").parse().unwrap_err().0,
            "email"
        );
        assert_eq!(
            request("a@example.com", "0151").parse().unwrap_err().0,
            "phone"
        );
        let contacts = request("a@example.com", "+4915112345678").parse().unwrap();
        assert_eq!(contacts.address(Channel::Email), Some("a@example.com"));
        assert_eq!(
            serde_json::to_value(&contacts).unwrap()["email"],
            "a@example.com"
        );
    }
}
