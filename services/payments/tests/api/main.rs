//! Integration tests of payments against a real daprd, a Redis of its own and
//! the PSP sandbox.

mod contract;
mod contract_findings;
mod contracts;
#[expect(clippy::expect_used, reason = "test set-up fails the test loudly")]
mod helpers;
mod ownership;
mod payments;
mod provider;
mod reliability;
mod shutdown;
mod webhooks;
