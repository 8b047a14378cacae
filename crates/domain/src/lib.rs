//! The pure types and rules of Nuage: identifiers, organisations and their legal
//! numbers, roles, e-mail addresses, and the keyed audit chain. Nothing here does
//! I/O; everything that crosses an edge of the platform is parsed into one of
//! these types first.

pub mod acl;
pub mod audit;
pub mod billing;
pub mod bucket_policy;
pub mod catalogue;
pub mod drive;
pub mod error;
pub mod export;
pub mod ids;
pub mod invoice_delivery;
pub mod legal;
pub mod legal_identity;
pub mod object_lock;
pub mod org;
pub mod platform_key;
pub mod storage;
pub mod tender;
pub mod throttle;
pub mod user;
mod vat_digits;
pub mod website;

pub use error::DomainError;
