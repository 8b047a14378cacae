//! Background upkeep of storage: deleting released blobs, collecting orphans
//! (blobs a crash left behind before their metadata committed), aborting
//! expired multipart uploads, and applying buckets' lifecycle rules.

use std::time::SystemTime;

use nuage_db::repo::storage as repo;
use nuage_domain::ids::OrgId;
use nuage_domain::storage::{KeyPurpose, LifecycleRule, Tags};
use serde::Serialize;

use super::{S3Caller, Storage, StorageError, StorageResult};

/// What one round of upkeep did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct MaintenanceReport {
    pub released_blobs_deleted: u64,
    pub orphans_deleted: u64,
    pub uploads_aborted: u64,
    pub versions_expired: u64,
    /// Versions a lifecycle rule would have deleted but Object Lock keeps.
    pub versions_locked: u64,
}

const BATCH: i64 = 500;

impl Storage {
    /// One round of upkeep.
    pub async fn maintain(&self) -> StorageResult<MaintenanceReport> {
        let mut report = MaintenanceReport::default();
        self.delete_released(&mut report).await?;
        self.collect_orphans(&mut report).await?;
        self.expire_uploads(&mut report).await?;
        self.apply_lifecycle(&mut report).await?;
        // Lifecycle releases blobs too.
        self.delete_released(&mut report).await?;
        Ok(report)
    }

    async fn delete_released(&self, report: &mut MaintenanceReport) -> StorageResult<()> {
        loop {
            let batch =
                repo::trashed_blobs(&mut *self.platform().db().acquire().await?, BATCH).await?;
            if batch.is_empty() {
                return Ok(());
            }
            let n = batch.len() as i64;
            let mut progressed = false;
            for (blob, region) in batch {
                let Ok(backend) = self.backend(&region) else {
                    continue;
                };
                if backend.delete(&blob).await.is_ok() {
                    repo::forget_trashed_blob(&mut *self.platform().db().acquire().await?, &blob)
                        .await?;
                    report.released_blobs_deleted += 1;
                    progressed = true;
                }
            }
            if n < BATCH || !progressed {
                return Ok(());
            }
        }
    }

    async fn collect_orphans(&self, report: &mut MaintenanceReport) -> StorageResult<()> {
        let cutoff = SystemTime::now() - self.settings().orphan_grace;
        for (region, _) in &self.settings().regions {
            let backend = self.backend(&region.name)?;
            for blob in backend.list().await? {
                if blob.modified > cutoff {
                    continue;
                }
                if blob.incoming {
                    backend.delete_incoming(&blob.blob_id).await?;
                    report.orphans_deleted += 1;
                    continue;
                }
                let held =
                    repo::blob_is_held(&mut *self.platform().db().acquire().await?, &blob.blob_id)
                        .await?;
                if !held {
                    backend.delete(&blob.blob_id).await?;
                    repo::forget_trashed_blob(
                        &mut *self.platform().db().acquire().await?,
                        &blob.blob_id,
                    )
                    .await?;
                    report.orphans_deleted += 1;
                }
            }
        }
        Ok(())
    }

    async fn expire_uploads(&self, report: &mut MaintenanceReport) -> StorageResult<()> {
        let before = self.now_ms() - self.settings().upload_expiry.as_millis() as i64;
        let expired = repo::uploads_started_before(
            &mut *self.platform().db().acquire().await?,
            before,
            BATCH,
        )
        .await?;
        for upload in expired {
            let bucket =
                repo::get_bucket(&mut *self.platform().db().acquire().await?, &upload.bucket)
                    .await?;
            if let Some(bucket) = bucket {
                self.drop_upload(&bucket, &upload.id).await?;
                report.uploads_aborted += 1;
            }
        }
        Ok(())
    }

    async fn apply_lifecycle(&self, report: &mut MaintenanceReport) -> StorageResult<()> {
        let day = self.settings().lifecycle_day.as_millis() as i64;
        let now = self.now_ms();
        let buckets =
            repo::buckets_with_lifecycle(&mut *self.platform().db().acquire().await?).await?;
        for bucket in buckets {
            let rules: Vec<LifecycleRule> =
                serde_json::from_str(bucket.lifecycle.as_deref().unwrap_or("[]"))
                    .unwrap_or_default();
            let rules: Vec<LifecycleRule> = rules.into_iter().filter(|r| r.enabled).collect();
            if rules.is_empty() {
                continue;
            }
            let caller = S3Caller {
                org: OrgId::parse(&bucket.org_id)?,
                access_key_id: "lifecycle".into(),
                source: "lifecycle".into(),
                purpose: KeyPurpose::Access,
            };
            for rule in rules.iter().filter(|r| r.abort_incomplete_days.is_some()) {
                let before = now - i64::from(rule.abort_incomplete_days.unwrap_or(0)) * day;
                let uploads = repo::list_uploads(
                    &mut *self.platform().db().acquire().await?,
                    &bucket.name,
                    &rule.prefix,
                    None,
                    i64::MAX,
                )
                .await?;
                for u in uploads
                    .into_iter()
                    .filter(|u| u.key.starts_with(&rule.prefix) && u.created_at < before)
                {
                    self.drop_upload(&bucket, &u.id).await?;
                    report.uploads_aborted += 1;
                }
            }
            // Versions old enough for some rule to act on them.
            let oldest_age = rules
                .iter()
                .filter_map(|r| r.expiration_days.or(r.noncurrent_days))
                .min()
                .map_or(now, |d| now - i64::from(d) * day);
            let date_passed = rules
                .iter()
                .any(|r| r.expiration_date.is_some_and(|d| d <= now));
            // Delete markers are removed as soon as they are the last version.
            let markers = rules.iter().any(|r| r.expired_object_delete_marker);
            let before = if date_passed || markers {
                now
            } else {
                oldest_age
            };
            let mut after = String::new();
            loop {
                let rows = repo::versions_created_before(
                    &mut *self.platform().db().acquire().await?,
                    &bucket.name,
                    before,
                    &after,
                    BATCH,
                )
                .await?;
                let n = rows.len() as i64;
                for row in rows {
                    after = row.id.clone();
                    let tags: Tags = serde_json::from_str(&row.tags).unwrap_or_default();
                    let applies = rules
                        .iter()
                        .filter(|r| r.selects(&row.key, &tags, row.size));
                    let mut expire_current = false;
                    let mut expire_version = false;
                    for rule in applies {
                        if row.is_latest == 1 && row.delete_marker == 1 {
                            // An expired delete marker: nothing left behind it.
                            expire_version |= rule.expired_object_delete_marker
                                && repo::version_count(
                                    &mut *self.platform().db().acquire().await?,
                                    &row.bucket,
                                    &row.key,
                                )
                                .await?
                                    == 1;
                        } else if row.is_latest == 1 {
                            let by_days = rule
                                .expiration_days
                                .is_some_and(|d| row.created_at < now - i64::from(d) * day);
                            let by_date = rule.expiration_date.is_some_and(|at| at <= now);
                            expire_current |= by_days || by_date;
                        } else if row.is_latest == 0
                            && let Some(d) = rule.noncurrent_days
                        {
                            let (since, newer_noncurrent) = repo::newer_versions(
                                &mut *self.platform().db().acquire().await?,
                                &row,
                            )
                            .await?;
                            let old_enough = since.is_some_and(|s| s < now - i64::from(d) * day);
                            // The newest `n` non-current versions are kept.
                            let beyond_kept = rule
                                .newer_noncurrent_versions
                                .is_none_or(|n| newer_noncurrent >= i64::from(n));
                            expire_version |= old_enough && beyond_kept;
                        }
                    }
                    let version = if expire_current {
                        None
                    } else if expire_version {
                        Some(row.version_id.as_str())
                    } else {
                        continue;
                    };
                    // Object Lock outranks lifecycle: a locked version stays.
                    match self
                        .delete_object(&caller, &bucket.name, &row.key, version, false)
                        .await
                    {
                        Ok(_) => report.versions_expired += 1,
                        Err(StorageError::ObjectLocked(_)) => report.versions_locked += 1,
                        Err(e) => return Err(e),
                    }
                }
                if n < BATCH {
                    break;
                }
            }
        }
        Ok(())
    }
}
