//! One `create` request turned into a MIME message: the request's data
//! (`{"text","html","headers"}`) and metadata (recipients, subject,
//! priority), over the component's defaults, for this request only.

use std::collections::HashMap;

use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use serde::Deserialize;

use crate::address::{parse_list, parse_one};
use crate::config::{Defaults, parse_priority};

/// The request body a caller sends as the binding's `data`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    text: Option<String>,
    html: Option<String>,
    #[serde(default)]
    headers: HashMap<String, String>,
}

/// A message ready to send.
#[derive(Debug)]
pub struct Email {
    pub message: Message,
    /// The `Message-ID` header sent (the caller's or a generated one).
    pub message_id: String,
    /// Envelope recipients (To, Cc and Bcc).
    pub recipients: usize,
}

/// Why a request was refused; nothing was sent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("smtp-mime: invalid request: {0}")]
pub struct InvalidRequest(pub(crate) String);

/// Headers whose value the binding sets itself; a request may not.
const CONTROLLED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Bcc",
    "Subject",
    "Content-Type",
    "Content-Transfer-Encoding",
    "MIME-Version",
    "Date",
    // Set from the `priority` metadata.
    "X-Priority",
];

/// RFC 5322's line limit; longer values would have to be folded by us.
const MAX_HEADER_VALUE: usize = 998;
const MAX_HEADERS: usize = 50;

impl Email {
    /// Builds the message for one request. `metadata` is the request's
    /// metadata (keys matched case-insensitively; unknown keys, such as
    /// the `traceparent` daprd adds, are ignored).
    pub fn from_request(
        data: &[u8],
        metadata: &HashMap<String, String>,
        defaults: &Defaults,
    ) -> Result<Self, InvalidRequest> {
        let invalid = |why: String| InvalidRequest(why);
        let body = parse_body(data)?;
        let get = |name: &str| -> Option<&str> {
            metadata
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.trim())
                .filter(|value| !value.is_empty())
        };
        let list = |name: &str, default: &[Mailbox]| match get(name) {
            Some(raw) => parse_list(raw).map_err(|e| invalid(format!("{name}: {e}"))),
            None => Ok(default.to_vec()),
        };

        let from = match get("emailFrom") {
            Some(raw) => parse_one(raw).map_err(|e| invalid(format!("emailFrom: {e}")))?,
            None => defaults.from.clone().ok_or_else(|| {
                invalid("no sender: set emailFrom in the request or the component".into())
            })?,
        };
        let to = list("emailTo", &defaults.to)?;
        let cc = list("emailCC", &defaults.cc)?;
        let bcc = list("emailBCC", &defaults.bcc)?;
        let recipients = to.len() + cc.len() + bcc.len();
        if recipients == 0 {
            return Err(invalid(
                "no recipient: set emailTo, emailCC or emailBCC in the request or the component"
                    .into(),
            ));
        }
        let subject = match get("subject") {
            Some(subject) => {
                check_header_value(subject).map_err(|e| invalid(format!("subject: {e}")))?;
                subject.to_owned()
            }
            None => defaults.subject.clone().unwrap_or_default(),
        };
        let priority = match get("priority") {
            Some(raw) => Some(parse_priority(raw).map_err(|e| invalid(format!("priority: {e}")))?),
            None => defaults.priority,
        };

        let mut builder = Message::builder().from(from.clone()).subject(subject);
        for mailbox in to {
            builder = builder.to(mailbox);
        }
        for mailbox in cc {
            builder = builder.cc(mailbox);
        }
        for mailbox in bcc {
            builder = builder.bcc(mailbox);
        }
        if let Some(priority) = priority {
            builder = builder.raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Priority"),
                priority.to_string(),
            ));
        }

        let headers = checked_headers(body.headers)?;
        let mut message_id = None;
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("Message-ID") {
                message_id = Some(value);
                continue;
            }
            let name = HeaderName::new_from_ascii(name.clone())
                .map_err(|_| invalid(format!("headers: {name:?} is not a header name")))?;
            builder = builder.raw_header(HeaderValue::new(name, value));
        }
        let message_id = message_id
            .unwrap_or_else(|| format!("<{}@{}>", uuid::Uuid::new_v4(), from.email.domain()));
        builder = builder.message_id(Some(message_id.clone()));

        let text = body.text.filter(|t| !t.is_empty());
        let html = body.html.filter(|h| !h.is_empty());
        let message = match (text, html) {
            (Some(text), Some(html)) => builder.multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::plain(text))
                    .singlepart(SinglePart::html(html)),
            ),
            (Some(text), None) => builder.singlepart(SinglePart::plain(text)),
            (None, Some(html)) => builder.singlepart(SinglePart::html(html)),
            (None, None) => {
                return Err(invalid(
                    "no body: data needs a non-empty \"text\" or \"html\"".into(),
                ));
            }
        }
        .map_err(|e| invalid(format!("cannot build the message: {e}")))?;

        Ok(Self {
            message,
            message_id,
            recipients,
        })
    }
}

/// The data as a JSON object; a JSON string holding that object is taken
/// too (a caller that serialised the body before putting it in `data`).
fn parse_body(data: &[u8]) -> Result<Body, InvalidRequest> {
    let value: serde_json::Value = serde_json::from_slice(data).map_err(|e| {
        InvalidRequest(format!(
            "data must be a JSON object {{\"text\",\"html\",\"headers\"}}: {e}"
        ))
    })?;
    let value = match value {
        serde_json::Value::String(inner) => serde_json::from_str(&inner).map_err(|e| {
            InvalidRequest(format!(
                "data is a string that does not hold a JSON object: {e}"
            ))
        })?,
        other => other,
    };
    serde_json::from_value(value).map_err(|e| {
        InvalidRequest(format!(
            "data must be a JSON object {{\"text\",\"html\",\"headers\"}}: {e}"
        ))
    })
}

/// Names and values a caller may put in `headers`, in a stable order.
fn checked_headers(
    headers: HashMap<String, String>,
) -> Result<Vec<(String, String)>, InvalidRequest> {
    if headers.len() > MAX_HEADERS {
        return Err(InvalidRequest(format!(
            "headers: at most {MAX_HEADERS} headers"
        )));
    }
    let mut checked: Vec<(String, String)> = headers.into_iter().collect();
    checked.sort_by_key(|(name, _)| name.to_ascii_lowercase());
    for pair in checked.windows(2) {
        if pair[0].0.eq_ignore_ascii_case(&pair[1].0) {
            return Err(InvalidRequest(format!(
                "headers: {:?} is given twice",
                pair[1].0
            )));
        }
    }
    for (name, value) in &checked {
        check_header_name(name).map_err(|e| InvalidRequest(format!("headers: {e}")))?;
        if CONTROLLED_HEADERS
            .iter()
            .any(|controlled| controlled.eq_ignore_ascii_case(name))
        {
            return Err(InvalidRequest(format!(
                "headers: {name} is set by the binding (from metadata and data), not by headers"
            )));
        }
        check_header_value(value).map_err(|e| InvalidRequest(format!("headers: {name}: {e}")))?;
        if name.eq_ignore_ascii_case("Message-ID") {
            check_message_id(value).map_err(|e| InvalidRequest(format!("headers: {e}")))?;
        }
    }
    Ok(checked)
}

/// RFC 5322 field name: printable ASCII without `:`; at most 76 characters
/// (so the name fits a line).
fn check_header_name(name: &str) -> Result<(), String> {
    let printable = |c: char| c.is_ascii_graphic() && c != ':';
    if name.is_empty() || name.len() > 76 || !name.chars().all(printable) {
        return Err(format!("{name:?} is not a header name"));
    }
    Ok(())
}

/// No line breaks or other control characters (header injection), at
/// most one line's worth. Non-ASCII text is fine (it is encoded).
pub(crate) fn check_header_value(value: &str) -> Result<(), String> {
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err("contains a line break or another control character".into());
    }
    if value.len() > MAX_HEADER_VALUE {
        return Err(format!("is longer than {MAX_HEADER_VALUE} bytes"));
    }
    Ok(())
}

/// `<left@right>`, without spaces or nested brackets.
fn check_message_id(value: &str) -> Result<(), String> {
    let inner = value
        .strip_prefix('<')
        .and_then(|v| v.strip_suffix('>'))
        .filter(|inner| {
            inner.is_ascii()
                && !inner.contains(|c: char| c.is_ascii_whitespace() || c == '<' || c == '>')
        });
    match inner.and_then(|inner| inner.split_once('@')) {
        Some((left, right)) if !left.is_empty() && !right.is_empty() && !right.contains('@') => {
            Ok(())
        }
        _ => Err(format!(
            "Message-ID {value:?} is not of the form <id@domain>"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaults() -> Defaults {
        Defaults {
            from: Some("LISA <no-reply@lisa.test>".parse().unwrap()),
            ..Defaults::default()
        }
    }

    fn metadata(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn build(data: serde_json::Value, pairs: &[(&str, &str)]) -> Result<Email, InvalidRequest> {
        Email::from_request(
            &serde_json::to_vec(&data).unwrap(),
            &metadata(pairs),
            &defaults(),
        )
    }

    fn formatted(email: &Email) -> String {
        String::from_utf8(email.message.formatted()).unwrap()
    }

    #[test]
    fn text_and_html_become_multipart_alternative_text_first() {
        let email = build(
            json!({"text": "Court 3 at 18:00", "html": "<p>Court 3</p>",
                   "headers": {"X-Notification-Id": "n-1", "Message-ID": "<n-1@lisa.test>"}}),
            &[("emailTo", "ada@x.test"), ("subject", "Booking")],
        )
        .unwrap();
        let raw = formatted(&email);
        assert_eq!(email.message_id, "<n-1@lisa.test>");
        assert!(raw.contains("Message-ID: <n-1@lisa.test>\r\n"), "{raw}");
        assert!(raw.contains("X-Notification-Id: n-1\r\n"), "{raw}");
        assert!(raw.contains("Subject: Booking\r\n"), "{raw}");
        assert!(raw.contains("Content-Type: multipart/alternative"), "{raw}");
        let plain = raw.find("text/plain").unwrap();
        let html = raw.find("text/html").unwrap();
        assert!(plain < html, "{raw}");
        assert_eq!(email.recipients, 1);
    }

    #[test]
    fn a_single_part_has_no_multipart() {
        for data in [json!({"text": "hi"}), json!({"html": "<b>hi</b>"})] {
            let raw = formatted(&build(data, &[("emailTo", "ada@x.test")]).unwrap());
            assert!(!raw.contains("multipart"), "{raw}");
        }
        let raw = formatted(
            &build(
                json!({"html": "<b>hi</b>", "text": ""}),
                &[("emailTo", "a@x.test")],
            )
            .unwrap(),
        );
        assert!(raw.contains("Content-Type: text/html"), "{raw}");
    }

    #[test]
    fn a_message_id_is_generated_in_the_senders_domain() {
        let email = build(json!({"text": "hi"}), &[("emailTo", "ada@x.test")]).unwrap();
        assert!(email.message_id.starts_with('<'), "{}", email.message_id);
        assert!(
            email.message_id.ends_with("@lisa.test>"),
            "{}",
            email.message_id
        );
        assert!(formatted(&email).contains(&format!("Message-ID: {}\r\n", email.message_id)));
    }

    #[test]
    fn request_metadata_overrides_the_defaults_and_bcc_stays_hidden() {
        let defaults = Defaults {
            from: Some("no-reply@lisa.test".parse().unwrap()),
            to: vec!["default@x.test".parse().unwrap()],
            subject: Some("Default".into()),
            priority: Some(3),
            ..Defaults::default()
        };
        let email = Email::from_request(
            br#"{"text":"hi"}"#,
            &metadata(&[
                ("emailFrom", "Ops <ops@lisa.test>"),
                ("emailTo", "a@x.test;b@x.test"),
                ("emailBCC", "hidden@x.test"),
                ("subject", "Über"),
                ("Priority", "1"),
                ("traceparent", "00-abc-def-01"),
            ]),
            &defaults,
        )
        .unwrap();
        let raw = formatted(&email);
        assert!(raw.contains("From: Ops <ops@lisa.test>\r\n"), "{raw}");
        assert!(raw.contains("To: a@x.test, b@x.test\r\n"), "{raw}");
        assert!(raw.contains("X-Priority: 1\r\n"), "{raw}");
        assert!(!raw.contains("Bcc"), "{raw}");
        assert!(!raw.contains("default@x.test"), "{raw}");
        assert!(!raw.contains("Subject: Über"), "encoded: {raw}");
        let envelope: Vec<String> = email
            .message
            .envelope()
            .to()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(envelope, ["a@x.test", "b@x.test", "hidden@x.test"]);
        assert_eq!(email.recipients, 3);

        let with_defaults =
            Email::from_request(br#"{"text":"hi"}"#, &HashMap::new(), &defaults).unwrap();
        let raw = formatted(&with_defaults);
        assert!(raw.contains("To: default@x.test\r\n") && raw.contains("Subject: Default\r\n"));
        assert!(raw.contains("X-Priority: 3\r\n"), "{raw}");
    }

    #[test]
    fn data_may_be_a_json_string_holding_the_object() {
        let data = serde_json::to_vec(&json!(r#"{"text":"hi"}"#)).unwrap();
        assert!(
            Email::from_request(&data, &metadata(&[("emailTo", "a@x.test")]), &defaults()).is_ok()
        );
    }

    #[test]
    fn invalid_requests_are_refused_with_a_reason() {
        let to = [("emailTo", "a@x.test")];
        type Case<'a> = (Vec<u8>, Vec<(&'a str, &'a str)>, &'a str);
        let cases: Vec<Case> = vec![
            (
                b"not json".to_vec(),
                to.to_vec(),
                "data must be a JSON object",
            ),
            (b"[1]".to_vec(), to.to_vec(), "data must be a JSON object"),
            (br#"{"body":"x"}"#.to_vec(), to.to_vec(), "unknown field"),
            (br#"{}"#.to_vec(), to.to_vec(), "no body"),
            (br#"{"text":""}"#.to_vec(), to.to_vec(), "no body"),
            (br#"{"text":"x"}"#.to_vec(), vec![], "no recipient"),
            (
                br#"{"text":"x"}"#.to_vec(),
                vec![("emailTo", "nope")],
                "emailTo",
            ),
            (
                br#"{"text":"x"}"#.to_vec(),
                vec![("emailTo", "a@x.test"), ("emailFrom", "x")],
                "emailFrom",
            ),
            (
                br#"{"text":"x"}"#.to_vec(),
                vec![("emailTo", "a@x.test"), ("priority", "0")],
                "priority",
            ),
            (
                br#"{"text":"x"}"#.to_vec(),
                vec![("emailTo", "a@x.test"), ("subject", "a\nb")],
                "subject",
            ),
            (
                br#"{"text":"x","headers":{"bcc":"e@x.test"}}"#.to_vec(),
                to.to_vec(),
                "set by the binding",
            ),
            (
                br#"{"text":"x","headers":{"Content-Type":"text/x"}}"#.to_vec(),
                to.to_vec(),
                "set by the binding",
            ),
            (
                br#"{"text":"x","headers":{"X-A":"1\r\nBcc: e@x.test"}}"#.to_vec(),
                to.to_vec(),
                "line break",
            ),
            (
                br#"{"text":"x","headers":{"X A":"1"}}"#.to_vec(),
                to.to_vec(),
                "not a header name",
            ),
            (
                br#"{"text":"x","headers":{"X:A":"1"}}"#.to_vec(),
                to.to_vec(),
                "not a header name",
            ),
            (
                br#"{"text":"x","headers":{"X-A":"1","x-a":"2"}}"#.to_vec(),
                to.to_vec(),
                "given twice",
            ),
            (
                br#"{"text":"x","headers":{"Message-ID":"abc"}}"#.to_vec(),
                to.to_vec(),
                "<id@domain>",
            ),
            (
                br#"{"text":"x","headers":{"Message-ID":"<a b@c>"}}"#.to_vec(),
                to.to_vec(),
                "<id@domain>",
            ),
            (
                br#"{"text":"x","headers":{"X-A":1}}"#.to_vec(),
                to.to_vec(),
                "data must be",
            ),
        ];
        for (data, pairs, expected) in cases {
            let error = Email::from_request(&data, &metadata(&pairs), &defaults()).unwrap_err();
            let text = error.to_string();
            assert!(
                text.starts_with("smtp-mime: invalid request: ") && text.contains(expected),
                "{}: {text}",
                String::from_utf8_lossy(&data)
            );
        }
        let no_from = Email::from_request(br#"{"text":"x"}"#, &metadata(&to), &Defaults::default())
            .unwrap_err();
        assert!(no_from.to_string().contains("no sender"), "{no_from}");
    }
}
