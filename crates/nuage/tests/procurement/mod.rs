//! Calls for tender.

pub(crate) mod tenders;
