//! Object Lock on buckets and versions: a bucket's configuration, each
//! version's retention and legal hold (the rules are
//! [`nuage_domain::object_lock`]'s). A lock is enforced where a version's
//! row is removed, [`Storage::release_version`], which every path that
//! deletes a version for good goes through: S3 deletes, lifecycle rules,
//! the drive's trash; a bucket holding a version cannot be deleted at all.

use nuage_db::repo::storage as repo;
use nuage_domain::object_lock::{
    LockRuleError, ObjectLockConfig, Retention, RetentionMode, VersionLock,
};
use nuage_domain::storage::Versioning;
use nuage_service::audit::AuditEvent;

use super::{S3Caller, Storage, StorageError, StorageResult};

impl From<LockRuleError> for StorageError {
    fn from(e: LockRuleError) -> Self {
        match e {
            LockRuleError::Malformed(m) => Self::MalformedXml(m),
            LockRuleError::Invalid(m) => Self::InvalidArgument(m),
            LockRuleError::Locked(m) => Self::ObjectLocked(m),
        }
    }
}

/// The lock a version's row holds.
pub(crate) fn lock_of(row: &repo::ObjectRow) -> VersionLock {
    let retention = match (row.lock_mode.as_deref(), row.lock_until) {
        (Some(mode), Some(until_ms)) => RetentionMode::parse(mode)
            .ok()
            .map(|mode| Retention { mode, until_ms }),
        _ => None,
    };
    VersionLock {
        retention,
        legal_hold: row.legal_hold == 1,
    }
}

pub(crate) fn set_lock(row: &mut repo::ObjectRow, lock: &VersionLock) {
    row.lock_mode = lock.retention.map(|r| r.mode.as_str().to_owned());
    row.lock_until = lock.retention.map(|r| r.until_ms);
    row.legal_hold = i64::from(lock.legal_hold);
}

const MISSING: &str = "Bucket is missing Object Lock Configuration";

/// The lock a new version of `bucket` gets: what its request asked for
/// (already in `row`), or the bucket's default retention when it asked for
/// none. Asking for a lock in a bucket without Object Lock is refused.
pub(crate) fn lock_new_version(
    bucket: &repo::BucketRow,
    row: &mut repo::ObjectRow,
) -> StorageResult<()> {
    let requested = lock_of(row);
    check_lock_allowed(bucket, &requested, row.created_at)?;
    let Some(config) = ObjectLockConfig::from_stored(bucket.object_lock.as_deref()) else {
        return Ok(());
    };
    let mut lock = requested;
    if lock.retention.is_none() && row.delete_marker == 0 {
        lock.retention = config.default_retention.map(|d| d.from(row.created_at));
    }
    set_lock(row, &lock);
    Ok(())
}

/// Refuses a lock asked for in a bucket without Object Lock, or a
/// retention that ends before `now_ms`.
pub(crate) fn check_lock_allowed(
    bucket: &repo::BucketRow,
    requested: &VersionLock,
    now_ms: i64,
) -> StorageResult<()> {
    if bucket.object_lock.is_none() && !requested.is_empty() {
        return Err(StorageError::InvalidRequest(MISSING.into()));
    }
    if let Some(r) = &requested.retention {
        r.check_requested(now_ms)?;
    }
    Ok(())
}

impl Storage {
    /// The bucket's Object Lock configuration.
    pub async fn object_lock_configuration(
        &self,
        caller: &S3Caller,
        bucket: &str,
    ) -> StorageResult<ObjectLockConfig> {
        let b = self.bucket_of(caller, bucket).await?;
        ObjectLockConfig::from_stored(b.object_lock.as_deref())
            .ok_or(StorageError::ObjectLockConfigurationNotFound)
    }

    /// Turns Object Lock on (for good) or changes its default retention.
    /// The bucket's versioning must be enabled; the drive's bucket refuses
    /// it, since moving a file in the drive rewrites its keys.
    pub async fn set_object_lock_configuration(
        &self,
        caller: &S3Caller,
        bucket: &str,
        config: ObjectLockConfig,
    ) -> StorageResult<()> {
        if nuage_domain::drive::is_drive_bucket(bucket) {
            return Err(StorageError::InvalidRequest(
                "the drive's bucket cannot have Object Lock: moving a file rewrites its keys"
                    .into(),
            ));
        }
        self.set_bucket_setting_if(
            caller,
            bucket,
            repo::BucketSetting::ObjectLock,
            Some(config.to_stored()),
            "bucket.object_lock.set",
            |b| {
                if Versioning::from_stored(b.versioning.as_deref()) != Versioning::Enabled {
                    return Err(StorageError::InvalidBucketState(
                        "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration"
                            .into(),
                    ));
                }
                Ok(())
            },
        )
        .await
    }

    /// The lock of a version (the current one without `version_id`).
    pub async fn version_lock(
        &self,
        caller: &S3Caller,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> StorageResult<VersionLock> {
        let mut conn = self.platform().db().acquire().await?;
        let b = self.owned_bucket(&mut conn, caller, bucket).await?;
        if b.object_lock.is_none() {
            return Err(StorageError::InvalidRequest(MISSING.into()));
        }
        let row = self
            .find_version(&mut conn, bucket, key, version_id)
            .await?;
        if row.delete_marker == 1 {
            return Err(StorageError::MethodNotAllowed);
        }
        Ok(lock_of(&row))
    }

    /// Sets, lengthens, shortens or lifts a version's retention, as its
    /// mode allows (see [`VersionLock::check_retention_change`]); audited.
    pub async fn set_retention(
        &self,
        caller: &S3Caller,
        target: (&str, &str, Option<&str>),
        retention: Option<Retention>,
        bypass_governance: bool,
    ) -> StorageResult<()> {
        self.change_lock(caller, target, "object.retention.set", |lock, now| {
            if let Some(r) = &retention {
                r.check_requested(now)?;
            }
            lock.check_retention_change(retention.as_ref(), now, bypass_governance)?;
            lock.retention = retention;
            Ok(())
        })
        .await
    }

    /// Puts a legal hold on a version or lifts it; audited.
    pub async fn set_legal_hold(
        &self,
        caller: &S3Caller,
        target: (&str, &str, Option<&str>),
        on: bool,
    ) -> StorageResult<()> {
        self.change_lock(caller, target, "object.legal_hold.set", |lock, _| {
            lock.legal_hold = on;
            Ok(())
        })
        .await
    }

    /// Changes the lock of the version `target` (bucket, key, version) in
    /// one transaction holding its key, and audits it with the new lock.
    async fn change_lock(
        &self,
        caller: &S3Caller,
        (bucket, key, version_id): (&str, &str, Option<&str>),
        action: &'static str,
        change: impl FnOnce(&mut VersionLock, i64) -> StorageResult<()>,
    ) -> StorageResult<()> {
        let mut tx = self.platform().db().begin_write().await?;
        let b = self.owned_bucket(&mut tx, caller, bucket).await?;
        if b.object_lock.is_none() {
            return Err(StorageError::InvalidRequest(MISSING.into()));
        }
        repo::lock_key(&mut tx, self.platform().db().dialect(), bucket, key).await?;
        let row = self.find_version(&mut tx, bucket, key, version_id).await?;
        if row.delete_marker == 1 {
            return Err(StorageError::MethodNotAllowed);
        }
        let mut lock = lock_of(&row);
        change(&mut lock, self.now_ms())?;
        let retention = lock.retention;
        repo::set_version_lock(
            &mut tx,
            &row.id,
            retention.map(|r| r.mode.as_str()),
            retention.map(|r| r.until_ms),
            lock.legal_hold,
        )
        .await?;
        let (who, meta) = Self::principal(caller);
        self.platform()
            .commit_audited(
                tx,
                &who,
                &meta,
                AuditEvent::new(action, format!("object:{bucket}/{key}"))
                    .org(caller.org)
                    .details(serde_json::json!({
                        "version_id": row.version_id,
                        "mode": retention.map(|r| r.mode.as_str()),
                        "retain_until_ms": retention.map(|r| r.until_ms),
                        "legal_hold": lock.legal_hold,
                    })),
            )
            .await?;
        Ok(())
    }
}
