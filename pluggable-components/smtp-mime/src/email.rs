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

/// Headers whose value the binding sets itself, or that only servers on
/// the way may add (trace, resent and signature fields); a request may not.
const CONTROLLED_HEADERS: &[&str] = &[
    "From",
    "Sender",
    "To",
    "Cc",
    "Bcc",
    "Subject",
    "MIME-Version",
    "Date",
    // Set from the `priority` metadata.
    "X-Priority",
    "Return-Path",
    "Received",
    "DKIM-Signature",
];

/// Prefixes of controlled headers: every `Content-*` (the MIME structure is
/// the binding's) and `Resent-*`.
const CONTROLLED_PREFIXES: &[&str] = &["Content-", "Resent-"];

/// Whether `headers` may not set `name`.
fn is_controlled(name: &str) -> bool {
    CONTROLLED_HEADERS
        .iter()
        .any(|controlled| controlled.eq_ignore_ascii_case(name))
        || CONTROLLED_PREFIXES.iter().any(|prefix| {
            name.get(..prefix.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
        })
}

/// RFC 5322's line limit; longer values would have to be folded by us.
const MAX_HEADER_VALUE: usize = 998;
const MAX_HEADERS: usize = 50;

impl Email {
    /// Builds the message for one request. `metadata` is the request's
    /// metadata (keys matched case-insensitively, see [`lookup`]; unknown
    /// keys, such as the `traceparent` daprd adds, are ignored).
    pub fn from_request(
        data: &[u8],
        metadata: &HashMap<String, String>,
        defaults: &Defaults,
    ) -> Result<Self, InvalidRequest> {
        let invalid = |why: String| InvalidRequest(why);
        let body = parse_body(data)?;
        // Addresses given in the request but empty are refused, never
        // replaced by the component's defaults (a wrong-recipient hazard).
        let list = |name: &str, default: &[Mailbox]| match lookup(metadata, name)? {
            Some(raw) => {
                let list = parse_list(raw).map_err(|e| invalid(format!("{name}: {e}")))?;
                if list.is_empty() {
                    return Err(invalid(format!(
                        "{name}: is given but holds no address (leave the key out for the component's default)"
                    )));
                }
                Ok(list)
            }
            None => Ok(default.to_vec()),
        };

        let from = match lookup(metadata, "emailFrom")? {
            Some("") => {
                return Err(invalid(
                    "emailFrom: is given but empty (leave the key out for the component's default)"
                        .into(),
                ));
            }
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
        // Subject and priority: empty counts as absent.
        let get = |name: &str| -> Result<Option<&str>, InvalidRequest> {
            Ok(lookup(metadata, name)?.filter(|value| !value.is_empty()))
        };
        let subject = match get("subject")? {
            Some(subject) => {
                check_header_value(subject).map_err(|e| invalid(format!("subject: {e}")))?;
                subject.to_owned()
            }
            None => defaults.subject.clone().unwrap_or_default(),
        };
        let priority = match get("priority")? {
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
        for (name, part) in [("text", &text), ("html", &html)] {
            if let Some(part) = part {
                check_body(part).map_err(|e| invalid(format!("{name}: {e}")))?;
            }
        }
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

/// The trimmed value of request metadata key `name`, matched
/// case-insensitively. Keys differing only in letter case are fine if their
/// values agree (the exact-case key's value is used); if the values differ
/// the request is refused, since which one wins would be arbitrary (the
/// metadata is a map without order).
fn lookup<'a>(
    metadata: &'a HashMap<String, String>,
    name: &str,
) -> Result<Option<&'a str>, InvalidRequest> {
    let mut matches = metadata
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case(name));
    let Some(first) = matches.next() else {
        return Ok(None);
    };
    let mut chosen = first;
    for other in matches {
        if other.1.trim() != chosen.1.trim() {
            return Err(InvalidRequest(format!(
                "{name}: given several times in different letter case with different values"
            )));
        }
        if other.0 == name {
            chosen = other;
        }
    }
    Ok(Some(chosen.1.trim()))
}

/// No NUL and no CR that does not start a CRLF: a bare CR could end a line
/// for one SMTP server and not for another (SMTP smuggling). Bare LFs are
/// fine: they are sent as CRLF.
fn check_body(part: &str) -> Result<(), String> {
    if part.contains('\0') {
        return Err("contains a NUL character".into());
    }
    let bytes = part.as_bytes();
    let bare_cr = bytes
        .iter()
        .enumerate()
        .any(|(i, b)| *b == b'\r' && bytes.get(i + 1) != Some(&b'\n'));
    if bare_cr {
        return Err("contains a CR not followed by LF (bare CR)".into());
    }
    Ok(())
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
        if is_controlled(name) {
            return Err(InvalidRequest(format!(
                "headers: {name} is set by the binding (from metadata and data) or by mail servers, not by headers"
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

    fn refusal(data: serde_json::Value, pairs: &[(&str, &str)]) -> String {
        build(data, pairs).unwrap_err().to_string()
    }

    #[test]
    fn addresses_given_empty_are_refused_not_defaulted() {
        let defaults = Defaults {
            from: Some("no-reply@lisa.test".parse().unwrap()),
            to: vec!["default@x.test".parse().unwrap()],
            cc: vec!["default-cc@x.test".parse().unwrap()],
            bcc: vec!["default-bcc@x.test".parse().unwrap()],
            ..Defaults::default()
        };
        for key in ["emailTo", "emailCC", "emailBCC", "emailFrom"] {
            for empty in ["", "  ", " ; "] {
                if key == "emailFrom" && !empty.trim().is_empty() {
                    continue;
                }
                let error = Email::from_request(
                    br#"{"text":"hi"}"#,
                    &metadata(&[("emailTo", "a@x.test"), (key, empty)]),
                    &defaults,
                );
                let error = error.unwrap_err().to_string();
                assert!(
                    error.starts_with("smtp-mime: invalid request: ")
                        && error.contains(&format!("{key}: is given but")),
                    "{key}={empty:?}: {error}"
                );
            }
        }
        // Left out: the defaults apply.
        let email = Email::from_request(br#"{"text":"hi"}"#, &HashMap::new(), &defaults).unwrap();
        assert_eq!(email.recipients, 3);
    }

    #[test]
    fn keys_differing_in_case_must_agree() {
        let error = refusal(
            json!({"text": "hi"}),
            &[("emailTo", "a@x.test"), ("EMAILTO", "b@x.test")],
        );
        assert!(
            error.contains("emailTo: given several times in different letter case"),
            "{error}"
        );
        let error = refusal(
            json!({"text": "hi"}),
            &[("emailto", "a@x.test"), ("EMAILTO", "b@x.test")],
        );
        assert!(error.contains("emailTo: given several times"), "{error}");

        let email = build(
            json!({"text": "hi"}),
            &[("emailTo", "a@x.test"), ("EMAILTO", " a@x.test ")],
        )
        .unwrap();
        assert_eq!(email.recipients, 1);
        assert!(formatted(&email).contains("To: a@x.test\r\n"));
    }

    #[test]
    fn bare_cr_and_nul_in_the_body_are_refused() {
        for (part, value, expected) in [
            ("text", "a\rb", "bare CR"),
            ("text", "line\r.\r\nMAIL FROM:<x@y>", "bare CR"),
            ("html", "<p>a</p>\r", "bare CR"),
            ("text", "a\0b", "NUL"),
            ("html", "a\0b", "NUL"),
        ] {
            let error = refusal(json!({ part: value }), &[("emailTo", "a@x.test")]);
            assert!(
                error.starts_with("smtp-mime: invalid request: ")
                    && error.contains(&format!("{part}: "))
                    && error.contains(expected),
                "{part}={value:?}: {error}"
            );
        }
        for subject in ["a\rb", "a\0b"] {
            let error = refusal(
                json!({"text": "hi"}),
                &[("emailTo", "a@x.test"), ("subject", subject)],
            );
            assert!(error.contains("subject: "), "{subject:?}: {error}");
        }
        // CRLF and bare LF are line breaks (sent as CRLF).
        let email = build(
            json!({"text": "one\r\ntwo\nthree", "html": "<p>a</p>\r\n"}),
            &[("emailTo", "a@x.test")],
        )
        .unwrap();
        assert!(formatted(&email).contains("one\r\ntwo\r\nthree"));
    }

    #[test]
    fn trace_mime_resent_and_signature_headers_are_refused() {
        for name in [
            "Content-Type",
            "content-transfer-encoding",
            "Content-Disposition",
            "Content-ID",
            "Content-Language",
            "Return-Path",
            "Received",
            "Resent-From",
            "resent-message-id",
            "DKIM-Signature",
            "Sender",
            "From",
            "MIME-Version",
        ] {
            let error = refusal(
                json!({"text": "x", "headers": { name: "v" }}),
                &[("emailTo", "a@x.test")],
            );
            assert!(
                error.contains(&format!("headers: {name} is set by the binding")),
                "{name}: {error}"
            );
        }
        for allowed in ["X-Content-Id", "Contents", "List-Unsubscribe", "Reply-To"] {
            let email = build(
                json!({"text": "x", "headers": { allowed: "<v@x.test>" }}),
                &[("emailTo", "a@x.test")],
            );
            assert!(email.is_ok(), "{allowed}: {email:?}");
        }
    }
}
