//! ACLs and Object Ownership, as a bucket with `BucketOwnerEnforced` (AWS's
//! default) answers them: the rules are [`nuage_domain::acl`]'s. Reading an
//! ACL gives the owner's full control; setting one that grants no more is
//! accepted and changes nothing; anything else is
//! `AccessControlListNotSupported`.

use nuage_domain::acl::{self, AclError};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use nuage_storage::S3Caller;

use super::{Call, NuageS3};

const ENFORCED: &str = ObjectOwnership::BUCKET_OWNER_ENFORCED;

/// The ACL every bucket and object has: its owner's full control.
fn owner_acl(caller: &S3Caller) -> (Option<Owner>, Option<Grants>) {
    let owner = super::owner(caller);
    let grant = Grant {
        grantee: Some(Grantee {
            display_name: None,
            email_address: None,
            id: owner.id.clone(),
            type_: Type::from(Type::CANONICAL_USER.to_owned()),
            uri: None,
        }),
        permission: Some(Permission::from(Permission::FULL_CONTROL.to_owned())),
    };
    (Some(owner), Some(vec![grant]))
}

/// The headers and body by which a request sets an ACL.
pub(super) struct AclRequest<'a> {
    pub canned: Option<&'a str>,
    pub full_control: Option<&'a str>,
    pub read: Option<&'a str>,
    pub read_acp: Option<&'a str>,
    pub write: Option<&'a str>,
    pub write_acp: Option<&'a str>,
    pub policy: Option<&'a AccessControlPolicy>,
}

impl AclRequest<'_> {
    fn grants(&self) -> Result<Vec<acl::Grant>, AclError> {
        let mut grants = Vec::new();
        for (header, permission) in [
            (self.full_control, "FULL_CONTROL"),
            (self.read, "READ"),
            (self.read_acp, "READ_ACP"),
            (self.write, "WRITE"),
            (self.write_acp, "WRITE_ACP"),
        ] {
            if let Some(h) = header {
                grants.extend(acl::parse_grant_header(h, permission)?);
            }
        }
        for g in self
            .policy
            .and_then(|p| p.grants.as_ref())
            .into_iter()
            .flatten()
        {
            let grantee =
                g.grantee
                    .as_ref()
                    .map_or(acl::Grantee::CanonicalUser(String::new()), |e| {
                        match e.type_.as_str() {
                            Type::GROUP => acl::Grantee::Group(e.uri.clone().unwrap_or_default()),
                            Type::AMAZON_CUSTOMER_BY_EMAIL => acl::Grantee::EmailAddress(
                                e.email_address.clone().unwrap_or_default(),
                            ),
                            _ => acl::Grantee::CanonicalUser(e.id.clone().unwrap_or_default()),
                        }
                    });
            grants.push(acl::Grant {
                grantee,
                permission: g
                    .permission
                    .as_ref()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
            });
        }
        Ok(grants)
    }

    /// Refuses what a bucket with ACLs disabled does not take; `on_create`
    /// answers as CreateBucket does.
    pub(super) fn check(&self, owner: &str, on_create: bool) -> S3Result<()> {
        let result = self
            .grants()
            .and_then(|grants| acl::check_owner_only(self.canned, &grants, owner));
        match result {
            Ok(()) => Ok(()),
            Err(AclError::Invalid(m)) => {
                Err(S3Error::with_message(S3ErrorCode::InvalidArgument, m))
            }
            Err(AclError::NotSupported) if on_create => Err(s3_error!(
                InvalidBucketAclWithObjectOwnership,
                "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
            )),
            Err(AclError::NotSupported) => Err(s3_error!(
                AccessControlListNotSupported,
                "The bucket does not allow ACLs"
            )),
        }
    }
}

/// The ACL a request sets with its `x-amz-acl` and `x-amz-grant-*`
/// headers (and, for PutBucketAcl and PutObjectAcl, its body):
/// `acl_request!(input)` for object writes, which have no `grant-write`;
/// `acl_request!(input, write, policy)` for the others.
macro_rules! acl_request {
    ($i:expr) => {
        $crate::ops::acl::acl_request!($i, None, None)
    };
    ($i:expr, write, $policy:expr) => {
        $crate::ops::acl::acl_request!($i, $i.grant_write.as_deref(), $policy)
    };
    ($i:expr, $write:expr, $policy:expr) => {
        $crate::ops::acl::AclRequest {
            canned: $i.acl.as_ref().map(|a| a.as_str()),
            full_control: $i.grant_full_control.as_deref(),
            read: $i.grant_read.as_deref(),
            read_acp: $i.grant_read_acp.as_deref(),
            write: $write,
            write_acp: $i.grant_write_acp.as_deref(),
            policy: $policy,
        }
    };
}
pub(super) use acl_request;

/// The Object Ownership a CreateBucket asks for: only `BucketOwnerEnforced`.
pub(super) fn check_ownership(ownership: Option<&ObjectOwnership>) -> S3Result<()> {
    match ownership.map(ObjectOwnership::as_str) {
        None | Some(ENFORCED) => Ok(()),
        Some(_) => Err(not_offered()),
    }
}

fn not_offered() -> S3Error {
    s3_error!(
        NotImplemented,
        "Object Ownership is BucketOwnerEnforced on every bucket: ACLs are disabled, use the bucket's owner's keys"
    )
}

pub(super) async fn get_bucket_acl(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<GetBucketAclInput>,
) -> S3Result<S3Response<GetBucketAclOutput>> {
    call.done(
        s3.storage
            .head_bucket(&call.caller, &req.input.bucket)
            .await,
    )?;
    let (owner, grants) = owner_acl(&call.caller);
    Ok(S3Response::new(GetBucketAclOutput { grants, owner }))
}

pub(super) async fn put_bucket_acl(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<PutBucketAclInput>,
) -> S3Result<S3Response<PutBucketAclOutput>> {
    let i = &req.input;
    acl_request!(i, write, i.access_control_policy.as_ref())
        .check(&call.caller.org.to_string(), false)?;
    call.done(s3.storage.head_bucket(&call.caller, &i.bucket).await)?;
    Ok(S3Response::new(PutBucketAclOutput::default()))
}

pub(super) async fn get_object_acl(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<GetObjectAclInput>,
) -> S3Result<S3Response<GetObjectAclOutput>> {
    let i = &req.input;
    call.done(
        s3.storage
            .object_tags(&call.caller, &i.bucket, &i.key, i.version_id.as_deref())
            .await,
    )?;
    let (owner, grants) = owner_acl(&call.caller);
    Ok(S3Response::new(GetObjectAclOutput {
        grants,
        owner,
        ..Default::default()
    }))
}

pub(super) async fn put_object_acl(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<PutObjectAclInput>,
) -> S3Result<S3Response<PutObjectAclOutput>> {
    let i = &req.input;
    acl_request!(i, write, i.access_control_policy.as_ref())
        .check(&call.caller.org.to_string(), false)?;
    call.done(
        s3.storage
            .object_tags(&call.caller, &i.bucket, &i.key, i.version_id.as_deref())
            .await,
    )?;
    Ok(S3Response::new(PutObjectAclOutput::default()))
}

pub(super) async fn get_bucket_ownership_controls(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<GetBucketOwnershipControlsInput>,
) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
    call.done(
        s3.storage
            .head_bucket(&call.caller, &req.input.bucket)
            .await,
    )?;
    Ok(S3Response::new(GetBucketOwnershipControlsOutput {
        ownership_controls: Some(OwnershipControls {
            rules: vec![OwnershipControlsRule {
                object_ownership: ObjectOwnership::from(ENFORCED.to_owned()),
            }],
        }),
    }))
}

pub(super) async fn put_bucket_ownership_controls(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<PutBucketOwnershipControlsInput>,
) -> S3Result<S3Response<PutBucketOwnershipControlsOutput>> {
    let i = &req.input;
    match i.ownership_controls.rules.as_slice() {
        [rule] => check_ownership(Some(&rule.object_ownership))?,
        _ => {
            return Err(s3_error!(
                MalformedXML,
                "Ownership controls hold exactly one rule"
            ));
        }
    }
    call.done(s3.storage.head_bucket(&call.caller, &i.bucket).await)?;
    Ok(S3Response::new(PutBucketOwnershipControlsOutput::default()))
}

/// Deleting them would enable ACLs (`ObjectWriter`), which Nuage does not
/// offer.
pub(super) async fn delete_bucket_ownership_controls(
    _s3: &NuageS3,
    _call: Call<'_>,
    _req: S3Request<DeleteBucketOwnershipControlsInput>,
) -> S3Result<S3Response<DeleteBucketOwnershipControlsOutput>> {
    Err(not_offered())
}
