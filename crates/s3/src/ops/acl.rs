//! ACLs and Object Ownership (the rules are [`nuage_domain::acl`]'s): read
//! as the owner's full control and the grants stored; set, with canned ACLs,
//! `x-amz-grant-*` headers or an XML body, while the bucket's ownership
//! enables them (`AccessControlListNotSupported` otherwise, unless they
//! grant no more than the owner's full control).

use nuage_domain::acl::{self, AclError, Ownership};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use nuage_storage::S3Caller;

use super::{Call, NuageS3};

/// An ACL as S3 shows it: the owner's full control, then the grants.
fn acl_out(caller: &S3Caller, grants: &[acl::Grant]) -> (Option<Owner>, Option<Grants>) {
    let owner = super::owner(caller);
    let grant = |grantee: Grantee, permission: &str| Grant {
        grantee: Some(grantee),
        permission: Some(Permission::from(permission.to_owned())),
    };
    let user = |id: Option<String>| Grantee {
        display_name: None,
        email_address: None,
        id,
        type_: Type::from(Type::CANONICAL_USER.to_owned()),
        uri: None,
    };
    let mut out = vec![grant(user(owner.id.clone()), Permission::FULL_CONTROL)];
    for g in grants {
        let grantee = match &g.grantee {
            acl::Grantee::CanonicalUser(id) => user(Some(id.clone())),
            acl::Grantee::Group(uri) => Grantee {
                display_name: None,
                email_address: None,
                id: None,
                type_: Type::from(Type::GROUP.to_owned()),
                uri: Some(uri.clone()),
            },
            acl::Grantee::EmailAddress(_) => continue,
        };
        out.push(grant(grantee, &g.permission));
    }
    (Some(owner), Some(out))
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

    /// The grants the request's ACL gives beyond the owner's full control
    /// (whether the bucket takes them is the storage's to say).
    pub(super) fn stored_grants(&self, owner: &str) -> S3Result<Vec<acl::Grant>> {
        self.grants()
            .and_then(|grants| acl::grants_of(self.canned, grants, owner))
            .map_err(|e| S3Error::with_message(S3ErrorCode::InvalidArgument, e.to_string()))
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

/// The Object Ownership a request names (`BucketOwnerEnforced` when none).
pub(super) fn ownership_in(ownership: Option<&ObjectOwnership>) -> S3Result<Ownership> {
    match ownership {
        None => Ok(Ownership::BucketOwnerEnforced),
        Some(o) => Ownership::parse(o.as_str()).ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "Object Ownership is BucketOwnerEnforced, BucketOwnerPreferred or ObjectWriter"
            )
        }),
    }
}

pub(super) async fn get_bucket_acl(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<GetBucketAclInput>,
) -> S3Result<S3Response<GetBucketAclOutput>> {
    let grants = call.done(s3.storage.bucket_acl(&call.caller, &req.input.bucket).await)?;
    let (owner, grants) = acl_out(&call.caller, &grants);
    Ok(S3Response::new(GetBucketAclOutput { grants, owner }))
}

pub(super) async fn put_bucket_acl(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<PutBucketAclInput>,
) -> S3Result<S3Response<PutBucketAclOutput>> {
    let i = &req.input;
    let grants = acl_request!(i, write, i.access_control_policy.as_ref())
        .stored_grants(&call.caller.org.to_string())?;
    call.done(
        s3.storage
            .set_bucket_acl(&call.caller, &i.bucket, grants)
            .await,
    )?;
    Ok(S3Response::new(PutBucketAclOutput::default()))
}

pub(super) async fn get_object_acl(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<GetObjectAclInput>,
) -> S3Result<S3Response<GetObjectAclOutput>> {
    let i = &req.input;
    let (_, grants) = call.done(
        s3.storage
            .object_acl(&call.caller, (&i.bucket, &i.key, i.version_id.as_deref()))
            .await,
    )?;
    let (owner, grants) = acl_out(&call.caller, &grants);
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
    let grants = acl_request!(i, write, i.access_control_policy.as_ref())
        .stored_grants(&call.caller.org.to_string())?;
    call.done(
        s3.storage
            .set_object_acl(
                &call.caller,
                (&i.bucket, &i.key, i.version_id.as_deref()),
                grants,
            )
            .await,
    )?;
    Ok(S3Response::new(PutObjectAclOutput::default()))
}

pub(super) async fn get_bucket_ownership_controls(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<GetBucketOwnershipControlsInput>,
) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
    let ownership = call.done(s3.storage.ownership(&call.caller, &req.input.bucket).await)?;
    Ok(S3Response::new(GetBucketOwnershipControlsOutput {
        ownership_controls: Some(OwnershipControls {
            rules: vec![OwnershipControlsRule {
                object_ownership: ObjectOwnership::from(ownership.as_str().to_owned()),
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
    let ownership = match i.ownership_controls.rules.as_slice() {
        [rule] => ownership_in(Some(&rule.object_ownership))?,
        _ => {
            return Err(s3_error!(
                MalformedXML,
                "Ownership controls hold exactly one rule"
            ));
        }
    };
    call.done(
        s3.storage
            .set_ownership(&call.caller, &i.bucket, ownership)
            .await,
    )?;
    Ok(S3Response::new(PutBucketOwnershipControlsOutput::default()))
}

/// Without ownership controls a bucket is `ObjectWriter`, as on AWS.
pub(super) async fn delete_bucket_ownership_controls(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<DeleteBucketOwnershipControlsInput>,
) -> S3Result<S3Response<DeleteBucketOwnershipControlsOutput>> {
    call.done(
        s3.storage
            .set_ownership(&call.caller, &req.input.bucket, Ownership::ObjectWriter)
            .await,
    )?;
    Ok(S3Response::new(
        DeleteBucketOwnershipControlsOutput::default(),
    ))
}
