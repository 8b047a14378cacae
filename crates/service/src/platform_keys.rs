//! The platform's keys by purpose and epoch: recorded at first start,
//! published with their history (so a receipt or a certificate can be
//! checked offline years later), rotated by the operator, and the
//! organisations' keys rewrapped after the key-encryption key turns.

use nuage_db::repo::platform_keys::{self as repo, ChainKey, PlatformKeyRow};
use nuage_domain::ids::OrgId;
use nuage_domain::platform_key::KeyPurpose;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::epoch;
use crate::key_provider::KeyProvider;
use crate::{AuditEvent, Platform, Principal, RequestMeta, ServiceError, ServiceResult};

/// One key of the platform, as published.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PlatformKey {
    pub purpose: KeyPurpose,
    pub epoch: u32,
    /// Where the key lives: `file` (derived from the master key file).
    pub provider: String,
    /// Names the key without revealing it (16 bytes of SHA-256, hex).
    pub fingerprint: String,
    /// The Ed25519 public key, hex: signing keys only.
    pub public_key: Option<String>,
    pub created_at_ms: i64,
    /// When a newer epoch replaced it. A retired signing key's signatures
    /// still verify; a retired key-encryption key still unwraps until every
    /// organisation key is rewrapped.
    pub retired_at_ms: Option<i64>,
}

impl TryFrom<PlatformKeyRow> for PlatformKey {
    type Error = ServiceError;

    fn try_from(row: PlatformKeyRow) -> ServiceResult<Self> {
        Ok(Self {
            purpose: KeyPurpose::parse(&row.purpose)?,
            epoch: epoch(row.epoch)?,
            provider: row.provider,
            fingerprint: row.fingerprint,
            public_key: row.public_key,
            created_at_ms: row.created_at,
            retired_at_ms: row.retired_at,
        })
    }
}

/// How far the organisation keys are from the current key-encryption key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RewrapProgress {
    /// The current key-encryption key's epoch.
    pub epoch: u32,
    /// Organisation keys wrapped by it.
    pub rewrapped: i64,
    /// Organisation keys still wrapped by an older epoch.
    pub remaining: i64,
}

/// A signature by the platform's current signing key.
#[derive(Debug, Clone)]
pub struct PlatformSignature {
    pub epoch: u32,
    pub signature: [u8; 64],
    pub public_key: [u8; 32],
}

/// Organisation keys rewrapped per transaction.
const REWRAP_PAGE: i64 = 100;

impl Platform {
    /// Records epoch 1 of every purpose this database has no key of yet.
    pub(crate) async fn record_first_keys(&self) -> ServiceResult<()> {
        let mut tx = self.db().begin_write().await?;
        // Nodes starting together make each key once: the chain's head row
        // is locked while the keys are made and recorded.
        repo::lock_chain(&mut tx).await?;
        let mut recorded = Vec::new();
        for purpose in KeyPurpose::ALL {
            if repo::current(&mut tx, purpose.as_str()).await?.is_some() {
                continue;
            }
            let row = self.key_row(purpose, 1).await?;
            if repo::insert_if_absent(&mut tx, &row).await? {
                recorded.push(purpose.as_str());
                self.key_provider().record(purpose, 1, &row.provider);
            }
        }
        if recorded.is_empty() {
            return Ok(());
        }
        self.commit_audited(
            tx,
            &Principal::System,
            &RequestMeta::local(),
            AuditEvent::new("platform.keys.record", "platform:keys")
                .details(serde_json::json!({ "purposes": recorded, "epoch": 1 })),
        )
        .await
    }

    /// Makes the key of a new epoch, and the row that records it.
    async fn key_row(&self, purpose: KeyPurpose, epoch: u32) -> ServiceResult<PlatformKeyRow> {
        let provider = self.key_provider();
        provider.create_key(purpose, epoch).await?;
        let public_key = match purpose {
            KeyPurpose::Signing => Some(hex::encode(provider.signing_public_key(epoch).await?)),
            _ => None,
        };
        Ok(PlatformKeyRow {
            purpose: purpose.as_str().to_owned(),
            epoch: i64::from(epoch),
            provider: provider.kind().to_owned(),
            fingerprint: provider.fingerprint(purpose, epoch).await?,
            public_key,
            created_at: self.now_ms(),
            retired_at: None,
        })
    }

    /// Every key the platform has had, by purpose, oldest epoch first.
    /// Public: anyone may check a signature against it.
    pub async fn platform_keys(&self) -> ServiceResult<Vec<PlatformKey>> {
        repo::all(&mut *self.db().acquire().await?)
            .await?
            .into_iter()
            .map(PlatformKey::try_from)
            .collect()
    }

    /// Starts a new epoch of `purpose` (operator only, audited). What older
    /// epochs made stays readable; the organisation keys are rewrapped by
    /// the `key-rewrap` job after the key-encryption key turns.
    pub async fn rotate_key(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        purpose: KeyPurpose,
    ) -> ServiceResult<PlatformKey> {
        if !who.is_operator() {
            return Err(ServiceError::Forbidden(
                "only the operator can rotate the platform's keys".into(),
            ));
        }
        let mut tx = self.db().begin_write().await?;
        // The chain's keys turn on the head row, which every append locks
        // first: no record is linked with a key the head no longer names.
        let next = match purpose {
            KeyPurpose::Kek => {
                // As for the chain's keys, one rotation at a time across
                // nodes: the key is made under the lock.
                repo::lock_chain(&mut tx).await?;
                let current = repo::current(&mut tx, purpose.as_str())
                    .await?
                    .map_or(0, |r| r.epoch);
                epoch(current + 1)?
            }
            KeyPurpose::Audit => epoch(repo::advance_chain_epoch(&mut tx, ChainKey::Audit).await?)?,
            KeyPurpose::Signing => {
                epoch(repo::advance_chain_epoch(&mut tx, ChainKey::Signing).await?)?
            }
        };
        let row = self.key_row(purpose, next).await?;
        if !repo::insert_if_absent(&mut tx, &row).await? {
            return Err(ServiceError::Conflict(format!(
                "another rotation started epoch {next} of the {} key just now",
                purpose.as_str()
            )));
        }
        repo::retire_before(&mut tx, purpose.as_str(), row.epoch, row.created_at).await?;
        self.commit_audited(
            tx,
            who,
            meta,
            AuditEvent::new(
                "platform.key.rotate",
                format!("platform_key:{}", purpose.as_str()),
            )
            .details(serde_json::json!({
                "epoch": next, "fingerprint": row.fingerprint, "provider": row.provider,
            })),
        )
        .await?;
        self.key_provider().record(purpose, next, &row.provider);
        tracing::info!(
            purpose = purpose.as_str(),
            epoch = next,
            provider = %row.provider,
            "a platform key was rotated"
        );
        PlatformKey::try_from(row)
    }

    /// The key-encryption key's current epoch.
    async fn kek_epoch(&self) -> ServiceResult<u32> {
        let row = repo::current(&mut *self.db().acquire().await?, KeyPurpose::Kek.as_str())
            .await?
            .ok_or_else(|| ServiceError::Internal("no key-encryption key is recorded".into()))?;
        epoch(row.epoch)
    }

    /// Wraps a new organisation key with the current key-encryption key:
    /// the stored form and its epoch.
    pub async fn wrap_org_key(&self, org: &OrgId, key: &[u8; 32]) -> ServiceResult<(String, i64)> {
        let epoch = self.kek_epoch().await?;
        let wrapped = self.key_provider().wrap_org_key(org, key, epoch).await?;
        Ok((wrapped, i64::from(epoch)))
    }

    /// Signs `message` with the current signing key.
    pub async fn sign(&self, message: &[u8]) -> ServiceResult<PlatformSignature> {
        let (_, signing) = repo::chain_epochs(&mut *self.db().acquire().await?).await?;
        let epoch = epoch(signing)?;
        let provider = self.key_provider();
        Ok(PlatformSignature {
            epoch,
            signature: provider.sign(epoch, message).await?,
            public_key: provider.signing_public_key(epoch).await?,
        })
    }

    /// How far the organisation keys are from the current key-encryption key
    /// (operator only).
    pub async fn rewrap_progress(&self, who: &Principal) -> ServiceResult<RewrapProgress> {
        if !who.is_operator() {
            return Err(ServiceError::Forbidden(
                "only the operator can follow a rotation".into(),
            ));
        }
        self.count_rewrapped().await
    }

    async fn count_rewrapped(&self) -> ServiceResult<RewrapProgress> {
        let epoch = self.kek_epoch().await?;
        let (rewrapped, remaining) =
            repo::org_key_epochs(&mut *self.db().acquire().await?, i64::from(epoch)).await?;
        Ok(RewrapProgress {
            epoch,
            rewrapped,
            remaining,
        })
    }

    /// Rewraps every organisation key an older key-encryption key wraps, a
    /// page per transaction: resumable after a crash, safe beside another
    /// node doing the same (a key changed since it was read is left to
    /// it). The keys themselves do not change, so no object is rewritten.
    pub async fn rewrap_org_keys(&self) -> ServiceResult<RewrapProgress> {
        let target = self.kek_epoch().await?;
        let provider = self.key_provider();
        let mut after = String::new();
        let mut failed = 0u64;
        loop {
            let page = repo::org_keys_before(
                &mut *self.db().acquire().await?,
                i64::from(target),
                &after,
                REWRAP_PAGE,
            )
            .await?;
            let Some(last) = page.last() else { break };
            after = last.org_id.clone();
            let mut rewrapped = Vec::with_capacity(page.len());
            for old in page {
                let org = OrgId::parse(&old.org_id)?;
                let key = match provider.unwrap_org_key(&org, &old.sealed_key).await {
                    Ok(key) => key,
                    Err(e) => {
                        // Left as it is, and said: an organisation key that
                        // does not unwrap is not made worse by waiting.
                        failed += 1;
                        tracing::error!(org = %org, error = %e, "an organisation key could not be rewrapped");
                        continue;
                    }
                };
                let sealed = provider.wrap_org_key(&org, &key, target).await?;
                rewrapped.push((old, sealed));
            }
            let mut tx = self.db().begin_write().await?;
            for (old, sealed) in &rewrapped {
                repo::rewrap_org_key(&mut tx, old, sealed, i64::from(target)).await?;
            }
            tx.commit().await.map_err(nuage_db::DbError::from)?;
            metrics::counter!("nuage_org_keys_rewrapped_total").increment(rewrapped.len() as u64);
        }
        let progress = self.count_rewrapped().await?;
        metrics::gauge!("nuage_org_keys_behind").set(progress.remaining as f64);
        if failed > 0 {
            return Err(ServiceError::Internal(format!(
                "{failed} organisation keys could not be rewrapped to epoch {target}: see the log"
            )));
        }
        Ok(progress)
    }
}
