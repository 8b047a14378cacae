//! The access log and request metering, written in batches. Requests hand
//! their record to an in-memory queue; one task writes everything queued in
//! one transaction every `flush_interval` (or sooner when a thousand records
//! wait). Usage is summed per organisation, bucket and hour before it is
//! written, under an id fixed when the batch is formed, so a retried batch
//! counts once. A crash loses at most the records of one interval.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nuage_db::Db;
use nuage_db::repo::storage as repo;
use serde::Serialize;
use tokio::sync::Notify;
use uuid::Uuid;

use nuage_service::Clock;

/// How a request is billed: class A (PUT, COPY, POST, LIST), class B (GET, HEAD).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestClass {
    A,
    B,
    /// Not billed (DELETE, and requests that were refused).
    Free,
}

/// One request on an organisation's data.
#[derive(Debug, Clone)]
pub struct AccessRecord {
    pub org_id: String,
    pub operation: &'static str,
    pub bucket: String,
    pub key: Option<String>,
    pub access_key_id: Option<String>,
    pub source: String,
    pub status: u16,
    /// Bytes received or sent.
    pub bytes: u64,
    pub class: RequestClass,
    /// Bytes sent out of the platform.
    pub egress: u64,
    /// Whether those bytes leave with the organisation's data, to another
    /// provider (an export key's downloads): exit egress, never charged.
    pub exit: bool,
}

/// An entry of the access log, as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccessEntry {
    pub id: String,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    pub operation: String,
    pub bucket: String,
    pub key: Option<String>,
    pub access_key_id: Option<String>,
    pub source: String,
    pub status: i64,
    pub bytes: i64,
}

impl From<repo::AccessRow> for AccessEntry {
    fn from(r: repo::AccessRow) -> Self {
        Self {
            id: r.id,
            at: r.at,
            operation: r.operation,
            bucket: r.bucket,
            key: r.key,
            access_key_id: r.access_key_id,
            source: r.source,
            status: r.status,
            bytes: r.bytes,
        }
    }
}

const HOUR_MS: i64 = 3_600_000;
const EAGER_FLUSH: usize = 1000;

#[derive(Default)]
struct Queue {
    access: Vec<repo::AccessRow>,
    usage: HashMap<(String, String, i64), repo::UsageRow>,
    /// Usage of batches that failed to be written, kept whole under their ids.
    retry: Vec<repo::UsageRow>,
}

struct Shared {
    db: Db,
    clock: Arc<dyn Clock>,
    queue: Mutex<Queue>,
    wake: Notify,
}

/// The writer of the access log and metering.
#[derive(Clone)]
pub struct Recorder {
    shared: Arc<Shared>,
}

impl Recorder {
    pub fn start(db: Db, interval: Duration, clock: Arc<dyn Clock>) -> Self {
        let shared = Arc::new(Shared {
            db,
            clock,
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
        });
        let worker = shared.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = worker.wake.notified() => {}
                }
                if let Err(e) = flush(&worker).await {
                    tracing::error!(error = %e, "the access log and metering could not be written; retrying");
                }
            }
        });
        Self { shared }
    }

    pub fn record(&self, r: AccessRecord) {
        let now = self.shared.clock.now_ms();
        let hour = now - now.rem_euclid(HOUR_MS);
        let mut q = self.shared.queue.lock().expect("lock");
        if r.class != RequestClass::Free || r.egress > 0 {
            let usage = q
                .usage
                .entry((r.org_id.clone(), r.bucket.clone(), hour))
                .or_insert_with(|| repo::UsageRow {
                    id: Uuid::now_v7().to_string(),
                    org_id: r.org_id.clone(),
                    bucket: r.bucket.clone(),
                    hour,
                    class_a: 0,
                    class_b: 0,
                    egress_bytes: 0,
                    exit_egress_bytes: 0,
                    recorded_at: now,
                });
            match r.class {
                RequestClass::A => usage.class_a += 1,
                RequestClass::B => usage.class_b += 1,
                RequestClass::Free => {}
            }
            if r.exit {
                usage.exit_egress_bytes += r.egress as i64;
            } else {
                usage.egress_bytes += r.egress as i64;
            }
        }
        q.access.push(repo::AccessRow {
            id: Uuid::now_v7().to_string(),
            org_id: r.org_id,
            at: now,
            operation: r.operation.to_owned(),
            bucket: r.bucket,
            key: r.key,
            access_key_id: r.access_key_id,
            source: r.source,
            status: i64::from(r.status),
            bytes: r.bytes as i64,
        });
        if q.access.len() >= EAGER_FLUSH {
            self.shared.wake.notify_one();
        }
    }

    /// Writes everything queued now (at shutdown, and in tests).
    pub async fn flush(&self) -> Result<(), nuage_db::DbError> {
        flush(&self.shared).await
    }
}

async fn flush(shared: &Shared) -> Result<(), nuage_db::DbError> {
    let batch = std::mem::take(&mut *shared.queue.lock().expect("lock"));
    if batch.access.is_empty() && batch.usage.is_empty() && batch.retry.is_empty() {
        return Ok(());
    }
    let written = async {
        let mut tx = shared.db.begin_write().await?;
        for a in &batch.access {
            repo::insert_access(&mut tx, a).await?;
        }
        for u in batch.retry.iter().chain(batch.usage.values()) {
            repo::insert_usage(&mut tx, u).await?;
        }
        tx.commit().await.map_err(nuage_db::DbError::from)
    }
    .await;
    if let Err(e) = written {
        // Put the batch back, ids unchanged, ahead of what arrived since.
        let mut q = shared.queue.lock().expect("lock");
        let mut access = batch.access;
        access.append(&mut q.access);
        q.access = access;
        // A batch whose commit failed may still have been written: its
        // rows keep their ids, so writing them again cannot count twice.
        q.retry.extend(batch.retry);
        q.retry.extend(batch.usage.into_values());
        return Err(e);
    }
    Ok(())
}
