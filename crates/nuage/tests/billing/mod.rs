//! Billing: invoice numbers, runs and invoices, Factur-X and UBL, their delivery.

pub(crate) mod delivery;
pub(crate) mod facturx;
pub(crate) mod invoicing;
pub(crate) mod numbering;
