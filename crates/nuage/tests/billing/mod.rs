//! Billing: invoice numbers, runs and invoices, Factur-X.

pub(crate) mod facturx;
pub(crate) mod invoicing;
pub(crate) mod numbering;
