//! The binding behind a real daprd, sending to a real SMTP server (the
//! repository's SMTP catcher): the binding is served in-process on a Unix
//! socket in the test's folder, daprd discovers it there and loads a
//! test-generated `bindings.smtp-mime` component.

mod failures;
#[expect(clippy::unwrap_used, reason = "test set-up fails the test loudly")]
mod helpers;
mod sending;
mod shutdown;
#[expect(clippy::unwrap_used, reason = "a failed step fails the test")]
mod smtp_peer;
#[expect(clippy::unwrap_used, reason = "a failed step fails the test")]
mod socket;
