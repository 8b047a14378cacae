//! The audit trail: appending to the keyed chain inside the caller's
//! transaction, checkpointing the head to a signed file outside the database,
//! and verifying the whole chain.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Verifier};
use nuage_db::AnyConnection;
use nuage_db::repo::audit::{self as repo, AuditRow};
use nuage_domain::audit::{AuditRecord, ChainVerifier, Checkpoint};
use serde::{Deserialize, Serialize};

use crate::Clock;
use tokio::sync::Mutex;

use crate::error::{ServiceError, ServiceResult};
use crate::key_provider::KeyProvider;
use crate::keys::write_private;
use crate::{Principal, RequestMeta};

/// One state-changing action to record.
pub struct AuditEvent {
    pub action: &'static str,
    pub target: String,
    pub org_id: Option<String>,
    pub details: serde_json::Value,
}

impl AuditEvent {
    pub fn new(action: &'static str, target: impl Into<String>) -> Self {
        Self {
            action,
            target: target.into(),
            org_id: None,
            details: serde_json::json!({}),
        }
    }

    pub fn org(mut self, org_id: impl ToString) -> Self {
        self.org_id = Some(org_id.to_string());
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// An audit entry as an organisation reads it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    pub at_ms: i64,
    pub actor: String,
    pub org_id: Option<String>,
    pub action: String,
    pub target: String,
    pub source: String,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        Self {
            seq: r.seq,
            at_ms: r.at,
            actor: r.actor,
            org_id: r.org_id,
            action: r.action,
            target: r.target,
            source: r.source,
            details: serde_json::from_str(&r.details).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// The outcome of a verification of the whole chain.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ChainReport {
    pub intact: bool,
    /// Records checked before the walk ended.
    pub entries: i64,
    /// The head recorded in this node's signed checkpoint file, if any.
    pub checkpoint_seq: Option<i64>,
    /// The first record at which the chain is broken.
    pub broken_at: Option<i64>,
    pub reason: Option<String>,
}

/// The signed checkpoint file's content.
#[derive(Serialize, Deserialize)]
struct SignedCheckpoint {
    #[serde(flatten)]
    head: Checkpoint,
    signature: String,
    /// The epoch of the signing key; files written before epochs have none.
    #[serde(default = "first_epoch")]
    key_epoch: u32,
}

fn first_epoch() -> u32 {
    1
}

/// The head an append left, to checkpoint after commit, and the signing
/// key's epoch in use when it was claimed.
#[derive(Debug, Clone, Copy)]
pub struct Head {
    pub checkpoint: Checkpoint,
    pub signing_epoch: u32,
}

fn checkpoint_message(head: &Checkpoint) -> Vec<u8> {
    format!(
        "nuage audit checkpoint v1\n{}\n{}",
        head.seq,
        hex::encode(head.link)
    )
    .into_bytes()
}

/// The audit trail of this node: the keys (the provider's), the checkpoint
/// file, and the last verification's outcome (shown to the operator,
/// exported as a metric).
#[derive(Clone)]
pub struct AuditTrail {
    keys: Arc<dyn KeyProvider>,
    checkpoint_path: PathBuf,
    clock: Arc<dyn Clock>,
    checkpoint_lock: Arc<Mutex<()>>,
    intact: Arc<AtomicBool>,
}

impl AuditTrail {
    pub fn new(
        keys: Arc<dyn KeyProvider>,
        checkpoint_path: PathBuf,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            keys,
            clock,
            checkpoint_path,
            checkpoint_lock: Arc::new(Mutex::new(())),
            intact: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Appends an event to the chain within the caller's transaction, which
    /// must be a write transaction. Returns the new head, to checkpoint after
    /// commit.
    pub async fn append(
        &self,
        conn: &mut AnyConnection,
        who: &Principal,
        meta: &RequestMeta,
        event: AuditEvent,
    ) -> ServiceResult<Head> {
        let claim = repo::claim_next(conn).await?;
        let (seq, audit_epoch) = (claim.seq, epoch(claim.audit_epoch)?);
        let previous = decode_link(&claim.link).ok_or_else(|| {
            ServiceError::Internal("the audit head holds a malformed link".into())
        })?;
        let record = AuditRecord {
            seq,
            at_ms: self.clock.now_ms(),
            actor: who.actor(),
            org_id: event.org_id,
            action: event.action.to_owned(),
            target: event.target,
            source: meta.source.clone(),
            details: event.details.to_string(),
        };
        let link = record.link(&self.keys.audit_key(audit_epoch)?, &previous);
        repo::append(
            conn,
            &AuditRow {
                seq: record.seq,
                at: record.at_ms,
                actor: record.actor,
                org_id: record.org_id,
                action: record.action,
                target: record.target,
                source: record.source,
                details: record.details,
                link: hex::encode(link),
                key_epoch: claim.audit_epoch,
            },
        )
        .await?;
        metrics::counter!("nuage_audit_entries_total", "action" => event.action).increment(1);
        Ok(Head {
            checkpoint: Checkpoint { seq, link },
            signing_epoch: epoch(claim.signing_epoch)?,
        })
    }

    /// Records a committed head in the signed checkpoint file, if it is newer
    /// than the one there. A failure is logged: the chain itself is intact.
    pub async fn checkpoint(&self, head: Head) {
        let _guard = self.checkpoint_lock.lock().await;
        if matches!(self.read_checkpoint().await, Ok(Some(current)) if current.seq >= head.checkpoint.seq)
        {
            return;
        }
        let written = match self
            .keys
            .sign(head.signing_epoch, &checkpoint_message(&head.checkpoint))
            .await
        {
            Ok(signature) => serde_json::to_vec_pretty(&SignedCheckpoint {
                head: head.checkpoint,
                signature: B64.encode(signature),
                key_epoch: head.signing_epoch,
            })
            .map_err(|e| ServiceError::Internal(e.to_string()))
            .and_then(|bytes| write_private(&self.checkpoint_path, &bytes)),
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            tracing::error!(error = %e, "could not write the audit checkpoint");
        }
    }

    /// Reads and checks the signature of the checkpoint file.
    async fn read_checkpoint(&self) -> Result<Option<Checkpoint>, String> {
        let text = match std::fs::read_to_string(&self.checkpoint_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read the checkpoint file: {e}")),
        };
        let signed: SignedCheckpoint = serde_json::from_str(&text)
            .map_err(|e| format!("the checkpoint file is malformed: {e}"))?;
        let signature = B64
            .decode(&signed.signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .map(|b| Signature::from_bytes(&b))
            .ok_or("the checkpoint's signature is malformed")?;
        let public = self
            .keys
            .signing_public_key(signed.key_epoch)
            .await
            .ok()
            .and_then(|k| ed25519_dalek::VerifyingKey::from_bytes(&k).ok())
            .ok_or("the checkpoint names a signing key the platform does not have")?;
        public
            .verify(&checkpoint_message(&signed.head), &signature)
            .map_err(|_| {
                "the checkpoint file's signature is not the platform's: it was altered".to_owned()
            })?;
        Ok(Some(signed.head))
    }

    /// Walks the whole chain, recomputing every link, and compares it with
    /// the stored head and the signed checkpoint.
    pub async fn verify(&self, conn: &mut AnyConnection) -> ServiceResult<ChainReport> {
        // The head is read before the walk: records committed while walking
        // only lengthen what the walk sees, and never look like a lost tail.
        let (head_seq, _) = repo::head(conn).await?;
        let checkpoint = match self.read_checkpoint().await {
            Ok(c) => c,
            Err(reason) => {
                return Ok(self.conclude(ChainReport {
                    intact: false,
                    entries: 0,
                    checkpoint_seq: None,
                    broken_at: None,
                    reason: Some(reason),
                }));
            }
        };
        let mut verifier = ChainVerifier::new();
        let mut keys: std::collections::HashMap<i64, [u8; 32]> = std::collections::HashMap::new();
        let mut after = 0;
        let mut last = 0;
        loop {
            let rows = repo::page(conn, after, 1000).await?;
            let Some(tail) = rows.last() else { break };
            after = tail.seq;
            for row in rows {
                let Some(link) = decode_link(&row.link) else {
                    return Ok(self.broken(
                        row.seq - 1,
                        checkpoint.as_ref(),
                        row.seq,
                        format!("record {} has a malformed link", row.seq),
                    ));
                };
                let seq = row.seq;
                let record = AuditRecord {
                    seq: row.seq,
                    at_ms: row.at,
                    actor: row.actor,
                    org_id: row.org_id,
                    action: row.action,
                    target: row.target,
                    source: row.source,
                    details: row.details,
                };
                let key = match keys.get(&row.key_epoch) {
                    Some(key) => *key,
                    None => {
                        let key = epoch(row.key_epoch).and_then(|e| self.keys.audit_key(e));
                        let Ok(key) = key else {
                            return Ok(self.broken(
                                seq - 1,
                                checkpoint.as_ref(),
                                seq,
                                format!("record {seq} names an audit key epoch the platform does not have"),
                            ));
                        };
                        keys.insert(row.key_epoch, key);
                        key
                    }
                };
                if let Err(b) = verifier.check(&key, &record, &link, checkpoint.as_ref()) {
                    return Ok(self.broken(last, checkpoint.as_ref(), b.seq, b.reason));
                }
                last = seq;
            }
        }
        let count = match verifier.finish(checkpoint.as_ref()) {
            Ok(count) => count,
            Err(b) => return Ok(self.broken(last, checkpoint.as_ref(), b.seq, b.reason)),
        };
        if head_seq > count {
            return Ok(self.broken(
                last,
                checkpoint.as_ref(),
                count + 1,
                format!("the chain ends at record {count} but its head says {head_seq} records were written: its tail was deleted"),
            ));
        }
        Ok(self.conclude(ChainReport {
            intact: true,
            entries: count,
            checkpoint_seq: checkpoint.map(|c| c.seq),
            broken_at: None,
            reason: None,
        }))
    }

    fn broken(
        &self,
        entries: i64,
        checkpoint: Option<&Checkpoint>,
        at: i64,
        reason: String,
    ) -> ChainReport {
        self.conclude(ChainReport {
            intact: false,
            entries,
            checkpoint_seq: checkpoint.map(|c| c.seq),
            broken_at: Some(at),
            reason: Some(reason),
        })
    }

    fn conclude(&self, report: ChainReport) -> ChainReport {
        self.intact.store(report.intact, Ordering::Relaxed);
        metrics::gauge!("nuage_audit_chain_intact").set(if report.intact { 1.0 } else { 0.0 });
        if !report.intact {
            tracing::error!(broken_at = ?report.broken_at, reason = ?report.reason, "THE AUDIT CHAIN IS BROKEN: the audit log was tampered with");
        }
        report
    }

    /// Whether the last verification on this node found the chain intact.
    pub fn last_known_intact(&self) -> bool {
        self.intact.load(Ordering::Relaxed)
    }
}

/// An epoch as stored (a positive integer).
pub(crate) fn epoch(stored: i64) -> ServiceResult<u32> {
    u32::try_from(stored)
        .ok()
        .filter(|e| *e > 0)
        .ok_or_else(|| {
            ServiceError::Internal(format!("a stored key epoch ({stored}) is not valid"))
        })
}

fn decode_link(text: &str) -> Option<[u8; 32]> {
    hex::decode(text).ok().and_then(|b| b.try_into().ok())
}
