//! Rotating an organisation's key without rewriting its data: a new version
//! wraps every data key from then on, and a resumable pass rewraps the data
//! keys earlier versions wrapped (object versions, then the parts of uploads
//! under way). The data keys themselves do not change, so no blob is read or
//! written. Earlier versions stay, wrapped by the platform's key-encryption
//! key: what was sealed before (sealed files, backups) opens with them.

use std::sync::Arc;

use nuage_db::repo::org_keys as repo;
use nuage_domain::ids::OrgId;
use nuage_domain::org::Permission;
use nuage_service::audit::AuditEvent;
use nuage_service::{Principal, RequestMeta, ServiceError, ServiceResult};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::crypto::{BlobContext, WrappingKey, wrapped_version};
use crate::objects::Segment;
use crate::{Storage, StorageError, StorageResult, service};

/// Where an organisation's key stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyRotation {
    /// The current version of the organisation's key (0: none made yet,
    /// nothing was stored).
    pub version: u32,
    /// Whether data keys wrapped by an earlier version are being rewrapped.
    pub rewrapping: bool,
    /// Data keys rewrapped so far by the rotation under way.
    pub rewrapped: i64,
    /// Object versions its pass has still to look at.
    pub remaining_objects: i64,
}

/// Object versions rewrapped per transaction.
const REWRAP_PAGE: i64 = 64;

impl Storage {
    /// Starts a new version of the organisation's key (owners; audited).
    pub async fn rotate_org_key(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        org: OrgId,
    ) -> ServiceResult<KeyRotation> {
        let id = org.to_string();
        let db = self.platform().db();
        {
            let mut conn = db.acquire().await?;
            self.platform()
                .authorize_org(&mut conn, who, org, Permission::Own)
                .await?;
        }
        // An organisation that stored nothing has its first key made now.
        self.org_key(&org).await.map_err(service)?;
        let mut tx = db.begin_write().await?;
        if let Some(under_way) = repo::rotation(&mut tx, &id).await? {
            return Err(ServiceError::Conflict(format!(
                "version {} of the organisation's key is still being rolled out ({} data keys rewrapped): rotate again once it is done",
                under_way.version, under_way.rewrapped
            )));
        }
        let current = repo::current(&mut tx, &id)
            .await?
            .ok_or_else(|| ServiceError::Internal("the organisation's key vanished".into()))?;
        let (sealed, epoch, custody) = self
            .wrap_new_org_key(&org, &current.custody, &WrappingKey::random_bytes())
            .await
            .map_err(service)?;
        let now = self.now_ms();
        if !repo::replace(&mut tx, &id, &current, &sealed, epoch, custody, now).await? {
            return Err(ServiceError::Conflict(
                "the organisation's key was rotated at the same moment: look again".into(),
            ));
        }
        let version = current.version + 1;
        repo::start_rotation(&mut tx, &id, version, now).await?;
        // Every node drops the version it holds as current.
        self.settings_changed(&mut tx).await?;
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("org.key.rotate", format!("org:{org}"))
                    .org(org)
                    .details(serde_json::json!({ "version": version })),
            )
            .await?;
        self.forget_org_key(&id);
        self.settings_committed();
        self.key_rotation(who, org).await
    }

    /// The organisation's key version and the rotation under way, if any.
    pub async fn key_rotation(&self, who: &Principal, org: OrgId) -> ServiceResult<KeyRotation> {
        let id = org.to_string();
        let mut conn = self.platform().db().acquire().await?;
        self.platform()
            .authorize_org(&mut conn, who, org, Permission::Manage)
            .await?;
        let version = repo::current(&mut conn, &id)
            .await?
            .map_or(0, |k| k.version as u32);
        Ok(match repo::rotation(&mut conn, &id).await? {
            Some(r) => KeyRotation {
                version,
                rewrapping: true,
                rewrapped: r.rewrapped,
                remaining_objects: repo::count_objects_after(&mut conn, &id, &r.after_object)
                    .await?,
            },
            None => KeyRotation {
                version,
                rewrapping: false,
                rewrapped: 0,
                remaining_objects: 0,
            },
        })
    }

    /// Goes on with every rotation under way, from where each stopped;
    /// returns the data keys rewrapped. The storage-upkeep job runs it.
    pub async fn rewrap_data_keys(&self) -> StorageResult<i64> {
        let rotations = repo::rotations(&mut *self.platform().db().acquire().await?).await?;
        let mut total = 0;
        for rotation in rotations {
            total += self.roll_out(rotation).await?;
        }
        Ok(total)
    }

    async fn roll_out(&self, rotation: repo::RotationRow) -> StorageResult<i64> {
        let org = OrgId::parse(&rotation.org_id).map_err(ServiceError::from)?;
        let target = self.org_key(&org).await?;
        if i64::from(target.version()) != rotation.version {
            // This node's cache is behind the rotation: look again.
            self.forget_org_key(&rotation.org_id);
            return Ok(0);
        }
        let db = self.platform().db();
        let mut after = rotation.after_object.clone();
        let mut total = 0;
        loop {
            let page = repo::objects_after(
                &mut *db.acquire().await?,
                &rotation.org_id,
                &after,
                REWRAP_PAGE,
            )
            .await?;
            if page.is_empty() {
                break;
            }
            let order: Vec<String> = page.iter().map(|o| o.id.clone()).collect();
            let mut changed = std::collections::HashMap::new();
            for object in page {
                let mut segments: Vec<Segment> = serde_json::from_str(&object.segments)
                    .map_err(|e| ServiceError::Internal(format!("object {}: {e}", object.id)))?;
                let mut n = 0;
                for s in &mut segments {
                    let ctx = BlobContext {
                        org: rotation.org_id.clone(),
                        object: object.id.clone(),
                        blob_id: s.blob.clone(),
                        part: s.part,
                    };
                    if let Some(rewrapped) = self.rewrapped(&org, &target, &ctx, &s.key).await? {
                        s.key = rewrapped;
                        n += 1;
                    }
                }
                if n > 0 {
                    let new = serde_json::to_string(&segments)
                        .map_err(|e| ServiceError::Internal(e.to_string()))?;
                    changed.insert(object.id, (object.segments, new, n));
                }
            }
            let mut tx = db.begin_write().await?;
            let mut n = 0;
            let mut done_to = after.clone();
            for id in order {
                if let Some((old, new, count)) = changed.get(&id) {
                    // An object changed since it was read is read again:
                    // the pass goes on from just before it.
                    if !repo::replace_segments(&mut tx, &id, old, new).await? {
                        break;
                    }
                    n += count;
                }
                done_to = id;
            }
            repo::advance_rotation(&mut tx, &rotation.org_id, &done_to, n).await?;
            tx.commit().await.map_err(nuage_db::DbError::from)?;
            self.platform().probe("storage.rewrap.page");
            total += n;
            after = done_to;
        }
        // The parts of uploads under way, then the rotation is done.
        let parts = repo::upload_parts(&mut *db.acquire().await?, &rotation.org_id).await?;
        let mut rewrapped_parts = Vec::new();
        for part in parts {
            let ctx = BlobContext {
                org: rotation.org_id.clone(),
                object: part.upload_id.clone(),
                blob_id: part.blob_id.clone(),
                part: part.part_number as u32,
            };
            if let Some(new) = self
                .rewrapped(&org, &target, &ctx, &part.wrapped_key)
                .await?
            {
                rewrapped_parts.push((part, new));
            }
        }
        let mut tx = db.begin_write().await?;
        let mut n = 0;
        for (part, new) in &rewrapped_parts {
            if repo::replace_part_key(&mut tx, part, new).await? {
                n += 1;
            }
        }
        repo::advance_rotation(&mut tx, &rotation.org_id, &after, n).await?;
        repo::finish_rotation(&mut tx, &rotation.org_id).await?;
        self.platform()
            .commit_audited(
                tx,
                &Principal::System,
                &RequestMeta::local(),
                AuditEvent::new("org.key.rotated", format!("org:{org}"))
                    .org(org)
                    .details(serde_json::json!({
                        "version": rotation.version, "rewrapped": rotation.rewrapped + total + n,
                    })),
            )
            .await?;
        Ok(total + n)
    }

    /// `wrapped` rewrapped by `target`, unless `target` wraps it already.
    async fn rewrapped(
        &self,
        org: &OrgId,
        target: &Arc<WrappingKey>,
        ctx: &BlobContext,
        wrapped: &str,
    ) -> StorageResult<Option<String>> {
        let version = wrapped_version(wrapped).ok_or(StorageError::Corrupt)?;
        if version == target.version() {
            return Ok(None);
        }
        let old = self.org_key_version(org, version).await?;
        target
            .rewrap(&old, ctx, wrapped)
            .map(Some)
            .ok_or(StorageError::Corrupt)
    }
}
