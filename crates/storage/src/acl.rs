//! ACLs of buckets and object versions, and a bucket's Object Ownership
//! (the rules are [`nuage_domain::acl`]'s). Grants count only while the
//! bucket's ownership enables ACLs; what they allow is decided with the
//! bucket's policy by [`Storage::authorize`].

use nuage_db::repo::storage as repo;
use nuage_domain::acl::{self, Grant, Grantee, Ownership};
use nuage_domain::ids::OrgId;

use super::access::grants_stored;
use super::{S3Caller, Storage, StorageError, StorageResult, json};

impl Storage {
    /// The grants of an object's version (the current one without
    /// `version`); none for a delete marker or a key that is not there.
    pub(crate) async fn object_grants(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> StorageResult<Vec<Grant>> {
        let mut conn = self.platform().db().acquire().await?;
        let row = match version {
            Some(v) => repo::object_version(&mut conn, bucket, key, v).await?,
            None => repo::latest_object(&mut conn, bucket, key).await?,
        };
        let Some(row) = row.filter(|r| r.delete_marker == 0) else {
            return Ok(Vec::new());
        };
        Ok(grants_stored(
            repo::object_acl(&mut conn, &row.id).await?.as_deref(),
        ))
    }

    /// Refuses grants a bucket cannot take: any while its ACLs are
    /// disabled, public ones while Block Public Access blocks public ACLs
    /// (always for a bucket being created: its switches start on), and
    /// grants to organisations that do not exist.
    pub(crate) async fn check_grants(
        &self,
        ownership: Ownership,
        existing: Option<&str>,
        grants: &[Grant],
    ) -> StorageResult<()> {
        if grants.is_empty() {
            return Ok(());
        }
        if !ownership.acls_enabled() {
            return Err(if existing.is_some() {
                StorageError::AccessControlListNotSupported
            } else {
                StorageError::InvalidBucketAclWithObjectOwnership
            });
        }
        if acl::is_public(grants) {
            let blocked = match existing {
                Some(bucket) => self
                    .bucket_access(bucket)
                    .await?
                    .is_none_or(|a| a.block.block_public_acls),
                None => true,
            };
            if blocked {
                return Err(StorageError::AccessDeniedBecause(
                    "public ACLs are blocked by the BlockPublicAcls block public access setting"
                        .into(),
                ));
            }
        }
        let mut conn = self.platform().db().acquire().await?;
        for g in grants {
            if let Grantee::CanonicalUser(id) = &g.grantee {
                let known = match OrgId::parse(id) {
                    Ok(_) => nuage_db::repo::identity::get_org(&mut conn, id)
                        .await?
                        .is_some(),
                    Err(_) => false,
                };
                if !known {
                    return Err(StorageError::InvalidArgument(format!(
                        "Invalid id: {id} is no organisation's canonical id"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The grants stored with a new version's ACL, once checked.
    pub(crate) async fn grants_for_write(
        &self,
        bucket: &repo::BucketRow,
        grants: &[Grant],
    ) -> StorageResult<Option<String>> {
        let ownership = Ownership::from_stored(bucket.ownership.as_deref());
        self.check_grants(ownership, Some(&bucket.name), grants)
            .await?;
        Ok((!grants.is_empty()).then(|| json(&grants)))
    }

    pub async fn ownership(&self, caller: &S3Caller, bucket: &str) -> StorageResult<Ownership> {
        let b = self.bucket_of(caller, bucket).await?;
        Ok(Ownership::from_stored(b.ownership.as_deref()))
    }

    /// Changes the bucket's Object Ownership. Disabling ACLs is refused
    /// while the bucket's ACL grants anyone but its owner, as on AWS.
    pub async fn set_ownership(
        &self,
        caller: &S3Caller,
        bucket: &str,
        ownership: Ownership,
    ) -> StorageResult<()> {
        self.set_bucket_setting_if(
            caller,
            bucket,
            repo::BucketSetting::Ownership,
            Some(ownership.as_str().to_owned()),
            "bucket.ownership.set",
            |b| {
                if !ownership.acls_enabled() && !grants_stored(b.acl.as_deref()).is_empty() {
                    return Err(StorageError::InvalidBucketAclWithObjectOwnership);
                }
                Ok(())
            },
        )
        .await
    }

    /// The bucket ACL's grants beyond its owner's full control.
    pub async fn bucket_acl(&self, caller: &S3Caller, bucket: &str) -> StorageResult<Vec<Grant>> {
        let b = self.bucket_of(caller, bucket).await?;
        Ok(grants_stored(b.acl.as_deref()))
    }

    pub async fn set_bucket_acl(
        &self,
        caller: &S3Caller,
        bucket: &str,
        grants: Vec<Grant>,
    ) -> StorageResult<()> {
        let b = self.bucket_of(caller, bucket).await?;
        let ownership = Ownership::from_stored(b.ownership.as_deref());
        self.check_grants(ownership, Some(bucket), &grants).await?;
        self.set_bucket_setting(
            caller,
            bucket,
            repo::BucketSetting::Acl,
            (!grants.is_empty()).then(|| json(&grants)),
            "bucket.acl.set",
        )
        .await
    }

    /// The grants of an object version's ACL, beyond the owner's.
    pub async fn object_acl(
        &self,
        caller: &S3Caller,
        target: (&str, &str, Option<&str>),
    ) -> StorageResult<(String, Vec<Grant>)> {
        let (bucket, key, version) = target;
        let mut conn = self.platform().db().acquire().await?;
        self.owned_bucket(&mut conn, caller, bucket).await?;
        let row = self.find_version(&mut conn, bucket, key, version).await?;
        // A delete marker has no ACL, as on AWS.
        if row.delete_marker != 0 {
            return Err(StorageError::MethodNotAllowed);
        }
        let grants = grants_stored(repo::object_acl(&mut conn, &row.id).await?.as_deref());
        Ok((row.version_id, grants))
    }

    pub async fn set_object_acl(
        &self,
        caller: &S3Caller,
        target: (&str, &str, Option<&str>),
        grants: Vec<Grant>,
    ) -> StorageResult<String> {
        let (bucket, key, version) = target;
        let b = self.bucket_of(caller, bucket).await?;
        let ownership = Ownership::from_stored(b.ownership.as_deref());
        self.check_grants(ownership, Some(bucket), &grants).await?;
        let mut tx = self.platform().db().begin_write().await?;
        let row = self.find_version(&mut tx, bucket, key, version).await?;
        if row.delete_marker != 0 {
            return Err(StorageError::MethodNotAllowed);
        }
        let stored = (!grants.is_empty()).then(|| json(&grants));
        repo::set_object_acl(&mut tx, &row.id, stored.as_deref()).await?;
        tx.commit().await.map_err(nuage_db::DbError::from)?;
        Ok(row.version_id)
    }
}
