//! The platform's background jobs, composed: what each does and how often.
//! Leases, schedules and the record of runs are `nuage_service::jobs`'.

use std::time::Duration;

use nuage_billing::Billing;
use nuage_market::Catalogue;
use nuage_service::jobs::{FirstRun, Job, Jobs};
use nuage_service::{Platform, ServiceError, ServiceResult};
use nuage_storage::Storage;

/// How often each job runs.
pub struct Schedule {
    pub webhook_retry: Duration,
    /// `None` when invoices are issued by hand only.
    pub billing: Option<Duration>,
    pub quota_alerts: Duration,
    pub invoice_deliveries: Duration,
    pub storage_upkeep: Duration,
    pub housekeeping: Duration,
}

/// A name for this node, unique among the nodes sharing the database.
pub fn node_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into());
    format!(
        "{host}-{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

pub fn jobs(
    platform: &Platform,
    storage: &Storage,
    catalogue: &Catalogue,
    billing: &Billing,
    schedule: &Schedule,
) -> Jobs {
    let mut jobs = vec![
        Job::with(
            "webhooks",
            schedule.webhook_retry,
            catalogue.clone(),
            deliver,
        ),
        Job::with(
            "invoice-deliveries",
            schedule.invoice_deliveries,
            billing.clone(),
            deliver_invoices,
        ),
        Job::with(
            "quota-alerts",
            schedule.quota_alerts,
            billing.clone(),
            alert,
        ),
        // Not at start: an upload begun as the node starts is not expired
        // under its client.
        Job::with(
            "storage-upkeep",
            schedule.storage_upkeep,
            storage.clone(),
            upkeep,
        )
        .first(FirstRun::AfterOneInterval),
        Job::with(
            "sessions",
            schedule.housekeeping,
            platform.clone(),
            forget_sessions,
        ),
        // At each start: an upgrade rewraps keys sealed before
        // key-encryption keys had epochs; after a rotation, the operator
        // runs it at once.
        Job::with(
            "key-rewrap",
            schedule.housekeeping,
            storage.clone(),
            rewrap_keys,
        )
        .first(FirstRun::AtStart),
        // At each start: a start may have rebuilt the index.
        Job::with(
            "search-index",
            schedule.housekeeping,
            catalogue.clone(),
            merge_index,
        )
        .first(FirstRun::AtStart),
    ];
    if let Some(every) = schedule.billing {
        jobs.push(Job::with("billing", every, billing.clone(), bill));
    }
    Jobs::new(platform.db().clone(), node_name(), wall_clock_ms, jobs)
}

/// Leases and intervals count real time: a test's frozen platform clock
/// (which bills a month at a chosen instant) must not stop them.
fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn deliver(catalogue: Catalogue) -> ServiceResult<String> {
    Ok(format!("{} delivered", catalogue.deliver_due().await?))
}

async fn deliver_invoices(billing: Billing) -> ServiceResult<String> {
    Ok(format!(
        "{} invoices delivered",
        billing.deliver_invoices().await?
    ))
}

async fn alert(billing: Billing) -> ServiceResult<String> {
    Ok(format!("{} alerts", billing.check_quota_alerts().await?))
}

async fn upkeep(storage: Storage) -> ServiceResult<String> {
    let r = storage
        .maintain()
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(format!(
        "{} released blobs and {} orphans deleted, {} uploads aborted, {} versions expired",
        r.released_blobs_deleted, r.orphans_deleted, r.uploads_aborted, r.versions_expired
    ))
}

async fn forget_sessions(platform: Platform) -> ServiceResult<String> {
    let gone = platform.forget_expired_sessions().await?;
    Ok(format!("{gone} expired sessions deleted"))
}

/// Organisation keys under the current key-encryption key, then the data
/// keys of organisations whose key was rotated.
async fn rewrap_keys(storage: Storage) -> ServiceResult<String> {
    let progress = storage.platform().rewrap_org_keys().await?;
    let data_keys = storage
        .rewrap_data_keys()
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(format!(
        "{} organisation keys wrapped at epoch {}, {} behind; {data_keys} data keys rewrapped",
        progress.rewrapped, progress.epoch, progress.remaining
    ))
}

async fn merge_index(catalogue: Catalogue) -> ServiceResult<String> {
    Ok(if catalogue.tidy_index().await? {
        tracing::info!("search index merged");
        "merged".into()
    } else {
        "nothing to merge".into()
    })
}

async fn bill(billing: Billing) -> ServiceResult<String> {
    Ok(match billing.bill_due().await? {
        Some(run) => {
            tracing::info!(
                period = %run.period, invoices = run.invoices, issued_now = run.issued_now,
                "billing run complete"
            );
            format!(
                "{}: {} invoices, {} issued now",
                run.period, run.invoices, run.issued_now
            )
        }
        None => "nothing due".into(),
    })
}
