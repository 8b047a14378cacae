//! Repositories: one module per aggregate, each a set of functions over a
//! connection (or a transaction, which dereferences to one).

pub mod audit;
pub mod billing;
pub mod catalogue;
pub mod deliveries;
pub mod drive;
pub mod idempotency;
pub mod identity;
pub mod jobs;
pub mod keys;
pub mod mail;
pub mod org_keys;
pub mod platform_keys;
pub mod search;
pub mod sessions;
pub mod settings;
pub mod storage;
pub mod tenders;
pub mod websites;
