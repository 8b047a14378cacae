//! The directory and the single window.

pub(crate) mod catalogue;
