//! Access to buckets beyond their owner: bucket policies and Block Public
//! Access (the rules are [`nuage_domain::bucket_policy`]'s). What a request
//! may do is decided once, by [`Storage::authorize`], before the operation
//! runs; a request a policy grants then acts for the bucket's owner, whose
//! access log records it and who pays for it, as on AWS.

use std::collections::HashMap;
use std::sync::Arc;

use nuage_db::repo::storage as repo;
use nuage_domain::acl::{self, On, Ownership};
use nuage_domain::bucket_policy::{
    self, Policy, PolicyError, PublicAccessBlock, Request, Requester, Verdict,
};
use nuage_domain::ids::OrgId;
use nuage_domain::org::Permission;
use nuage_service::audit::AuditEvent;
use nuage_service::{Principal, RequestMeta, ServiceError};

use super::{S3Caller, Storage, StorageError, StorageResult};

/// What decides access to one bucket.
#[derive(Debug)]
pub struct BucketAccess {
    pub owner: OrgId,
    pub policy: Option<Policy>,
    /// What holds of Block Public Access: the bucket's, its organisation's
    /// and its region's switches together.
    pub block: PublicAccessBlock,
    pub ownership: Ownership,
    /// The bucket ACL's grants beyond the owner's full control.
    pub acl: Vec<acl::Grant>,
}

/// The cache of [`BucketAccess`], good while the settings' epoch has not
/// moved.
#[derive(Default)]
pub(crate) struct AccessCache {
    epoch: u64,
    buckets: HashMap<String, Arc<BucketAccess>>,
}

/// The decision on a request: who it acts as, and who owns the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorized {
    /// The bucket does not exist (its operation answers so).
    NoBucket,
    /// The request acts as itself: its caller owns the bucket, or nothing
    /// grants it more (the operation then refuses it as today).
    AsCaller,
    /// A policy grants it: it acts for the bucket's owner.
    AsOwner(OrgId),
    /// An explicit deny, or Block Public Access: refused.
    Denied(OrgId),
}

/// Grants as stored (JSON); none stored, none granted.
pub(crate) fn grants_stored(value: Option<&str>) -> Vec<acl::Grant> {
    value
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

impl From<PolicyError> for StorageError {
    fn from(e: PolicyError) -> Self {
        Self::MalformedPolicy(e.0)
    }
}

impl Storage {
    /// The bucket's owner, policy and Block Public Access; cached until a
    /// setting changes here or on another node.
    pub async fn bucket_access(&self, bucket: &str) -> StorageResult<Option<Arc<BucketAccess>>> {
        let epoch = self.settings_epoch();
        {
            let cache = self.inner.access.read().expect("lock");
            if cache.epoch == epoch
                && let Some(found) = cache.buckets.get(bucket)
            {
                return Ok(Some(found.clone()));
            }
        }
        let mut conn = self.platform().db().acquire().await?;
        let Some(row) = repo::get_bucket(&mut conn, bucket).await? else {
            return Ok(None);
        };
        let org_block = repo::org_public_access_block(&mut conn, &row.org_id).await?;
        let region_block = self
            .regions()
            .any(|r| r.name == row.region && r.block_public_access);
        let block = PublicAccessBlock::from_stored(row.public_access_block.as_deref())
            .and(PublicAccessBlock::from_stored(org_block.as_deref()))
            .and(if region_block {
                PublicAccessBlock::ALL
            } else {
                PublicAccessBlock::NONE
            });
        let access = Arc::new(BucketAccess {
            owner: OrgId::parse(&row.org_id)?,
            policy: row
                .policy
                .as_deref()
                .and_then(|p| Policy::parse(p, bucket).ok()),
            block,
            ownership: Ownership::from_stored(row.ownership.as_deref()),
            acl: grants_stored(row.acl.as_deref()),
        });
        let mut cache = self.inner.access.write().expect("lock");
        if cache.epoch != epoch {
            cache.buckets.clear();
            cache.epoch = epoch;
        }
        cache.buckets.insert(bucket.to_owned(), access.clone());
        Ok(Some(access))
    }

    /// The one decision on a request to a bucket (see
    /// [`bucket_policy::decide`]).
    pub async fn authorize(&self, req: &Request<'_>) -> StorageResult<Authorized> {
        let Some(access) = self.bucket_access(req.bucket).await? else {
            return Ok(Authorized::NoBucket);
        };
        let owner = access.owner.to_string();
        let acl_allows = self.acl_allows(&access, &owner, req).await?;
        let verdict = bucket_policy::decide(
            &owner,
            access.policy.as_ref(),
            access.block,
            req,
            acl_allows,
        );
        Ok(match (verdict, req.requester) {
            (Verdict::Owner, _) => Authorized::AsCaller,
            (Verdict::Granted, _) => Authorized::AsOwner(access.owner),
            // Another organisation that nothing grants goes on as itself:
            // the operation refuses it as it always has.
            (Verdict::Denied, Requester::Org(org)) if org != owner => Authorized::AsCaller,
            (Verdict::Denied, _) => Authorized::Denied(access.owner),
        })
    }

    /// Whether the bucket's or the object's ACL grants the request what
    /// its action needs (never for the owner, who needs no grant, nor while
    /// the bucket's ACLs are disabled).
    async fn acl_allows(
        &self,
        access: &BucketAccess,
        owner: &str,
        req: &Request<'_>,
    ) -> StorageResult<bool> {
        let requester = match req.requester {
            Requester::Org(org) if org == owner => return Ok(false),
            Requester::Org(org) => Some(org),
            Requester::Anonymous => None,
        };
        if !access.ownership.acls_enabled() {
            return Ok(false);
        }
        let ignore_public = access.block.ignore_public_acls;
        Ok(match acl::permission_for(req.action) {
            Some((On::Bucket, permission)) => {
                acl::allows(&access.acl, requester, permission, ignore_public)
            }
            Some((On::Object, permission)) => match req.key {
                Some(key) => {
                    let grants = self.object_grants(req.bucket, key, req.version).await?;
                    acl::allows(&grants, requester, permission, ignore_public)
                }
                None => false,
            },
            None => false,
        })
    }

    pub async fn bucket_policy(&self, caller: &S3Caller, bucket: &str) -> StorageResult<String> {
        self.bucket_of(caller, bucket)
            .await?
            .policy
            .ok_or(StorageError::NoSuchBucketPolicy)
    }

    /// Sets the bucket's policy: checked whole, and refused when public
    /// while Block Public Access blocks public policies.
    pub async fn set_bucket_policy(
        &self,
        caller: &S3Caller,
        bucket: &str,
        text: &str,
    ) -> StorageResult<()> {
        let policy = Policy::parse(text, bucket)?;
        if policy.is_public() {
            // Read before the change: Block Public Access as it stands.
            self.bucket_of(caller, bucket).await?;
            let block = self
                .bucket_access(bucket)
                .await?
                .map_or(PublicAccessBlock::ALL, |a| a.block);
            if block.block_public_policy {
                return Err(StorageError::AccessDeniedBecause(
                    "public policies are blocked by the BlockPublicPolicy block public access setting"
                        .into(),
                ));
            }
        }
        self.set_bucket_setting(
            caller,
            bucket,
            repo::BucketSetting::Policy,
            Some(text.to_owned()),
            "bucket.policy.set",
        )
        .await
    }

    pub async fn delete_bucket_policy(&self, caller: &S3Caller, bucket: &str) -> StorageResult<()> {
        self.set_bucket_setting(
            caller,
            bucket,
            repo::BucketSetting::Policy,
            None,
            "bucket.policy.delete",
        )
        .await
    }

    /// Whether the bucket's policy makes it public (`GetBucketPolicyStatus`).
    pub async fn bucket_policy_is_public(
        &self,
        caller: &S3Caller,
        bucket: &str,
    ) -> StorageResult<bool> {
        let text = self.bucket_policy(caller, bucket).await?;
        Ok(Policy::parse(&text, bucket).is_ok_and(|p| p.is_public()))
    }

    /// The bucket's own Block Public Access switches.
    pub async fn public_access_block(
        &self,
        caller: &S3Caller,
        bucket: &str,
    ) -> StorageResult<PublicAccessBlock> {
        let b = self.bucket_of(caller, bucket).await?;
        Ok(PublicAccessBlock::from_stored(
            b.public_access_block.as_deref(),
        ))
    }

    pub async fn set_public_access_block(
        &self,
        caller: &S3Caller,
        bucket: &str,
        block: PublicAccessBlock,
    ) -> StorageResult<()> {
        self.set_bucket_setting(
            caller,
            bucket,
            repo::BucketSetting::PublicAccessBlock,
            Some(block.to_stored()),
            "bucket.public_access_block.set",
        )
        .await
    }

    /// An organisation's Block Public Access switches (every one on until
    /// the organisation turns some off), for its members.
    pub async fn org_public_access_block(
        &self,
        who: &Principal,
        org: OrgId,
    ) -> Result<PublicAccessBlock, ServiceError> {
        let mut conn = self.platform().db().acquire().await?;
        self.platform()
            .authorize_org(&mut conn, who, org, Permission::Use)
            .await?;
        let stored = repo::org_public_access_block(&mut conn, &org.to_string()).await?;
        Ok(PublicAccessBlock::from_stored(stored.as_deref()))
    }

    /// Sets an organisation's switches, for all its buckets; audited. The
    /// caller's right to manage the organisation is checked by the
    /// platform's one permission table.
    pub async fn set_org_public_access_block(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        org: OrgId,
        block: PublicAccessBlock,
    ) -> Result<PublicAccessBlock, ServiceError> {
        let mut tx = self.platform().db().begin_write().await?;
        self.platform()
            .authorize_org(&mut tx, who, org, Permission::Manage)
            .await?;
        repo::set_org_public_access_block(&mut tx, &org.to_string(), &block.to_stored()).await?;
        self.settings_changed(&mut tx).await?;
        let event = AuditEvent::new("org.public_access_block.set", format!("org:{org}"))
            .org(org)
            .details(serde_json::to_value(block).unwrap_or_default());
        self.platform().commit_audited(tx, who, meta, event).await?;
        self.settings_committed();
        Ok(block)
    }
}
