//! The double-entry ledger: domain types (valid by construction) and the
//! PostgreSQL store that enforces the invariants a second time, in the
//! database, where no code path can skip them.

mod entry;
mod store;

pub use entry::{
    AccountKind, AccountRequest, CONTRA_CODE_PREFIXES, EntryDraft, EntryError, EntryRequest,
    NewAccount, NormalSide, PostingDraft, PostingRequest, is_account_code,
};
pub(crate) use store::post_in;
pub use store::{
    Account, AccountPage, AsOf, Balance, Ledger, PostOutcome, PostedEntry, PostedPosting,
    StoreError,
};

#[cfg(test)]
mod tests;
