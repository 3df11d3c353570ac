//! Integration tests of payments against a real daprd and a Redis of its own.

#[expect(clippy::expect_used, reason = "test set-up fails the test loudly")]
mod helpers;
mod payments;
mod shutdown;
