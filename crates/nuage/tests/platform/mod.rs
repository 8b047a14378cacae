//! Identity and the platform: the API, accounts and abuse, the audit trail, the command line, several nodes, mail, start-up.

pub(crate) mod abuse;
pub(crate) mod api;
pub(crate) mod audit;
pub(crate) mod cli;
pub(crate) mod cluster;
pub(crate) mod keys;
pub(crate) mod mail;
pub(crate) mod startup;
