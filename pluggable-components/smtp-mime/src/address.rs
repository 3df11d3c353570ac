//! Address lists as Dapr's `bindings.smtp` writes them: `emailTo`, `emailCC`,
//! `emailBCC` hold several mailboxes separated by `,` or `;`.

use lettre::message::{Mailbox, Mailboxes};

/// Parses `a@x.test; Ada <ada@y.test>, b@z.test` into mailboxes. Empty
/// pieces are skipped, so `""` is an empty list. Commas inside a quoted
/// display name (`"Doe, Jane" <j@x.test>`) are kept.
pub(crate) fn parse_list(raw: &str) -> Result<Vec<Mailbox>, String> {
    let mut mailboxes = Vec::new();
    for group in raw.split(';').map(str::trim).filter(|g| !g.is_empty()) {
        let parsed: Mailboxes = group
            .parse()
            .map_err(|_| format!("{group:?} is not a list of email addresses"))?;
        mailboxes.extend(parsed);
    }
    Ok(mailboxes)
}

/// One mailbox (`a@x.test` or `Name <a@x.test>`).
pub(crate) fn parse_one(raw: &str) -> Result<Mailbox, String> {
    raw.trim()
        .parse()
        .map_err(|_| format!("{raw:?} is not an email address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_on_commas_and_semicolons() {
        let list = parse_list(" a@x.test; Ada <ada@y.test>,b@z.test ;").unwrap();
        let emails: Vec<String> = list.iter().map(|m| m.email.to_string()).collect();
        assert_eq!(emails, ["a@x.test", "ada@y.test", "b@z.test"]);
        assert_eq!(list[1].name.as_deref(), Some("Ada"));
    }

    #[test]
    fn a_quoted_name_keeps_its_comma() {
        let list = parse_list("\"Doe, Jane\" <jane@x.test>").unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].name.as_deref(), Some("Doe, Jane"));
    }

    #[test]
    fn empty_lists_are_empty_and_garbage_is_refused() {
        assert!(parse_list("").unwrap().is_empty());
        assert!(parse_list(" ; ").unwrap().is_empty());
        assert!(parse_list("not an address").is_err());
        assert!(parse_list("a@x.test, nope").is_err());
        assert!(parse_one("a@x.test\r\nBcc: evil@x.test").is_err());
        assert!(parse_one("Ada <ada@x.test>").is_ok());
    }
}
