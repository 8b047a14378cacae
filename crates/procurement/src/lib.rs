//! Public procurement over the single window: calls for tender from draft
//! to signature (`tenders`), their questions and amendments
//! (`tender_changes`), documents (`tender_documents`) and open data as OCDS
//! and DECP (`tender_data`); and the demo ecosystem of `nuage serve --demo`
//! (`demo`), which seeds every context and so lives in the one crate above
//! them all.
//!
//! A crate of its own so that dependencies point one way: procurement
//! orders through the catalogue (`Catalogue::order_contract`) and reads its
//! offers; nothing below knows calls for tender.

pub mod demo;
pub mod tender_changes;
pub mod tender_data;
pub mod tender_documents;
pub mod tenders;

use std::sync::Arc;

use nuage_domain::ids::OrgId;
use nuage_market::Catalogue;
use nuage_service::Platform;
use nuage_storage::Storage;

/// Settings of calls for tender.
#[derive(Debug, Clone)]
pub struct ProcurementSettings {
    /// Days between an award and the earliest signature (11 by default).
    pub standstill_days: u32,
}

struct Inner {
    catalogue: Catalogue,
    standstill_days: u32,
}

/// Calls for tender, over the catalogue they order through.
#[derive(Clone)]
pub struct Procurement {
    inner: Arc<Inner>,
}

impl Procurement {
    pub fn new(catalogue: Catalogue, settings: ProcurementSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                catalogue,
                standstill_days: settings.standstill_days,
            }),
        }
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.inner.catalogue
    }

    pub fn platform(&self) -> &Platform {
        self.inner.catalogue.platform()
    }

    pub fn storage(&self) -> &Storage {
        self.inner.catalogue.storage()
    }

    /// The organisation of the operator's own offers.
    pub fn house(&self) -> OrgId {
        self.inner.catalogue.house()
    }

    /// The platform's clock, in ms since the epoch.
    fn now_ms(&self) -> i64 {
        self.platform().now_ms()
    }
}
