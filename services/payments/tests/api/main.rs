//! Integration tests of payments against a real daprd and a Redis of its own.

mod helpers;
mod payments;
