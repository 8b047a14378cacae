//! The S3 operations, each a thin mapping onto a storage use case, in one
//! file by family: buckets, their settings, objects, listings, multipart
//! uploads. The `impl S3` below is only the table from operation to function;
//! every function starts with [`NuageS3::call`] (who calls, and what the access
//! log will say) and ends its storage call with [`Call::done`] or
//! [`Call::moved`], which record the request and map the error once.

mod acl;
mod bucket_settings;
mod buckets;
mod listing;
mod multipart;
mod object_lock;
mod objects;
mod policy;

use nuage_domain::bucket_policy::{self, Requester};
use nuage_domain::storage::KeyPurpose;
use nuage_storage::access::Authorized;
use nuage_storage::recorder::{AccessRecord, RequestClass};
use nuage_storage::{S3Caller, Storage, StorageError};
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};

use crate::ClientAddr;
use crate::auth::KeyDirectory;
use crate::convert::storage as err;

pub struct NuageS3 {
    pub storage: Storage,
    pub keys: KeyDirectory,
    /// Unsigned requests admitted per bucket.
    pub anonymous: crate::throttle::AnonymousLimit,
}

const SSE: &str = "AES256";

fn sse() -> Option<ServerSideEncryption> {
    Some(ServerSideEncryption::from(SSE.to_owned()))
}

/// One request as the organisation's access log and metering record it.
struct Call<'a> {
    s3: &'a NuageS3,
    caller: S3Caller,
    /// The bucket's policy grants the request: it acts for the bucket's
    /// owner (`caller`), within what a grant allows.
    granted: bool,
    op: &'static str,
    class: RequestClass,
    bucket: String,
    key: Option<String>,
}

/// The owner S3 shows of a bucket and of everything in it: the bucket's
/// organisation, whose canonical user id is its organisation id. A request
/// reaches a bucket as its owner or acting for it (under a grant), so it is
/// the caller's organisation.
fn owner(caller: &S3Caller) -> Owner {
    Owner {
        id: Some(caller.org.to_string()),
        display_name: None,
    }
}

impl NuageS3 {
    /// Who calls: the organisation behind the request's access key.
    fn caller<T>(&self, req: &S3Request<T>) -> S3Result<S3Caller> {
        self.signer(req)?
            .ok_or_else(|| s3_error!(AccessDenied, "Access Denied"))
    }

    /// The organisation behind the request's access key, or `None` for an
    /// unsigned request.
    fn signer<T>(&self, req: &S3Request<T>) -> S3Result<Option<S3Caller>> {
        let Some(creds) = req.credentials.as_ref() else {
            return Ok(None);
        };
        let (org, purpose) = self
            .keys
            .org_of(&creds.access_key)
            .ok_or_else(|| s3_error!(AccessDenied, "Access Denied"))?;
        Ok(Some(S3Caller {
            org,
            access_key_id: creds.access_key.clone(),
            source: source_of(req),
            purpose,
        }))
    }

    /// The caller of operation `op` (billed as `class`) on `bucket` and
    /// `key`, once [`Storage::authorize`](nuage_storage::Storage::authorize)
    /// has decided who the request acts as.
    async fn call<T>(
        &self,
        req: &S3Request<T>,
        op: &'static str,
        class: RequestClass,
        bucket: &str,
        key: Option<&str>,
    ) -> S3Result<Call<'_>> {
        let version = query(req, "versionId");
        self.call_on(req, (op, class), bucket, key, version.as_deref())
            .await
    }

    /// [`NuageS3::call`] for one key of a request and the version it names
    /// (each key of a `DeleteObjects` has its own).
    async fn call_on<T>(
        &self,
        req: &S3Request<T>,
        (op, class): (&'static str, RequestClass),
        bucket: &str,
        key: Option<&str>,
        version: Option<&str>,
    ) -> S3Result<Call<'_>> {
        let signer = self.signer(req)?;
        let signer_org = signer.as_ref().map(|c| c.org.to_string());
        let action = bucket_policy::action_of(op, version.is_some());
        let prefix = query(req, "prefix");
        let request = bucket_policy::Request {
            prefix: prefix.as_deref(),
            version,
            ..policy_request(req, signer_org.as_deref(), &action, bucket, key)
        };
        let authorized = self.storage.authorize(&request).await.map_err(err)?;
        let call = |caller: S3Caller, granted: bool| Call {
            s3: self,
            caller,
            granted,
            op,
            class,
            bucket: bucket.to_owned(),
            key: key.map(str::to_owned),
        };
        // A request acting for the bucket's owner: its log, its bill, under
        // the requester's key (none when unsigned).
        let for_owner = |owner, signer: Option<S3Caller>| S3Caller {
            org: owner,
            access_key_id: signer.map(|s| s.access_key_id).unwrap_or_default(),
            source: source_of(req),
            purpose: KeyPurpose::Access,
        };
        // Unsigned requests, served or refused, are admitted at a bounded
        // rate per bucket: nobody fills a bucket's log for free.
        let unsigned_to_bucket = signer.is_none()
            && matches!(authorized, Authorized::AsOwner(_) | Authorized::Denied(_));
        if unsigned_to_bucket && !self.anonymous.admit(bucket) {
            return Err(s3_error!(SlowDown, "Please reduce your request rate."));
        }
        match (authorized, signer) {
            (Authorized::AsOwner(owner), signer) => Ok(call(for_owner(owner, signer), true)),
            (Authorized::AsCaller | Authorized::NoBucket, Some(signer)) => Ok(call(signer, false)),
            (Authorized::Denied(owner), signer) => {
                // Refused before it runs: recorded in the owner's log.
                call(for_owner(owner, signer), true)
                    .moved::<()>(0, Err(StorageError::AccessDenied))?;
                Err(s3_error!(AccessDenied, "Access Denied"))
            }
            (Authorized::AsCaller | Authorized::NoBucket, None) => {
                Err(s3_error!(AccessDenied, "Access Denied"))
            }
        }
    }
}

impl NuageS3 {
    /// Whether a request that asks to bypass governance retention may: the
    /// bucket's owner may, unless its policy denies it
    /// `s3:BypassGovernanceRetention`; a request a policy grants, never.
    async fn may_bypass<T>(
        &self,
        req: &S3Request<T>,
        call: &Call<'_>,
        key: &str,
        asked: Option<bool>,
    ) -> S3Result<bool> {
        if !asked.unwrap_or(false) || call.granted {
            return Ok(false);
        }
        let org = call.caller.org.to_string();
        let request = policy_request(
            req,
            Some(&org),
            "s3:BypassGovernanceRetention",
            &call.bucket,
            Some(key),
        );
        Ok(self.storage.authorize(&request).await.map_err(err)? == Authorized::AsCaller)
    }
}

/// A request as a bucket policy sees it: who, what, where, from where.
fn policy_request<'a, T>(
    req: &S3Request<T>,
    org: Option<&'a str>,
    action: &'a str,
    bucket: &'a str,
    key: Option<&'a str>,
) -> bucket_policy::Request<'a> {
    bucket_policy::Request {
        requester: org.map_or(Requester::Anonymous, Requester::Org),
        action,
        bucket,
        key,
        source: req.extensions.get::<ClientAddr>().map(|a| a.0.ip()),
        secure: req.extensions.get::<crate::Secure>().is_some(),
        prefix: None,
        version: None,
    }
}

/// A parameter of the request's query string.
fn query<T>(req: &S3Request<T>, name: &str) -> Option<String> {
    req.uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    })
}

/// The client's address, as the listener resolved it.
fn source_of<T>(req: &S3Request<T>) -> String {
    req.extensions
        .get::<ClientAddr>()
        .map_or_else(|| "unknown".to_owned(), |a| a.0.ip().to_string())
}

impl Call<'_> {
    /// [`Call::moved`] for an operation that moves no body.
    fn done<T>(&self, result: Result<T, StorageError>) -> S3Result<T> {
        self.moved(0, result.map(|v| (v, 0)))
    }

    /// Records the request, `bytes_in` received and the bytes sent (on
    /// success, beside the value), in the organisation's access log and
    /// metering, and passes its result on as S3 sees it.
    fn moved<T>(&self, bytes_in: u64, result: Result<(T, u64), StorageError>) -> S3Result<T> {
        let denied = matches!(result, Err(StorageError::AccessDenied));
        let (status, bytes_out, out) = match result {
            Ok((v, n)) => (200u16, n, Ok(v)),
            Err(error) => {
                let s3 = err(error);
                (s3.status_code().map_or(500, |s| s.as_u16()), 0, Err(s3))
            }
        };
        // Refused requests are logged but not billed, nor are those of an
        // organisation taking its data out.
        let exit = self.caller.purpose == KeyPurpose::Export;
        let class = if status >= 400 || exit {
            RequestClass::Free
        } else {
            self.class
        };
        let record = AccessRecord {
            org_id: self.caller.org.to_string(),
            operation: self.op,
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            // None for an unsigned request.
            access_key_id: Some(self.caller.access_key_id.clone()).filter(|k| !k.is_empty()),
            source: self.caller.source.clone(),
            status,
            bytes: bytes_in + bytes_out,
            class,
            egress: bytes_out,
            exit,
        };
        let storage = &self.s3.storage;
        // A request acting for the owner (`granted`) is already the owner's.
        if denied && !self.granted {
            // An attempt on another organisation's bucket belongs in the
            // owner's access log: that is whose data it was aimed at.
            let storage = storage.clone();
            tokio::spawn(async move {
                if let Some(owner) = storage.bucket_owner(&record.bucket).await {
                    storage.recorder().record(AccessRecord {
                        org_id: owner,
                        ..record
                    });
                }
            });
        } else {
            storage.recorder().record(record);
        }
        out
    }
}

fn tags_out(tags: nuage_domain::storage::Tags) -> TagSet {
    tags.0
        .into_iter()
        .map(|(k, v)| Tag {
            key: Some(k),
            value: Some(v),
        })
        .collect()
}

fn tags_in(set: TagSet) -> Vec<(String, String)> {
    set.into_iter()
        .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
        .collect()
}

fn copy_source(src: &CopySource) -> S3Result<(String, String, Option<String>)> {
    match src {
        CopySource::Bucket {
            bucket,
            key,
            version_id,
        } => Ok((
            bucket.to_string(),
            key.to_string(),
            version_id.as_ref().map(|v| v.to_string()),
        )),
        _ => Err(s3_error!(
            InvalidArgument,
            "Nuage has no access points: name the copy source as bucket/key"
        )),
    }
}

fn max_keys(v: Option<i32>) -> S3Result<usize> {
    match v {
        None => Ok(1000),
        Some(n) if n < 0 => Err(s3_error!(
            InvalidArgument,
            "max-keys must be a non-negative integer"
        )),
        Some(n) => Ok((n as usize).min(1000)),
    }
}

/// `impl S3` from a table, by family (the module that serves them): each
/// operation's input and output and, for those the access log records, the
/// operation's name there, its billing class (A, B or Free) and what it
/// addresses (a bucket, or an object in it); the function of the same name
/// then receives the request's [`Call`].
macro_rules! operations {
    ($($family:ident { $($op:ident($input:ident) -> $output:ident $(: $name:literal, $class:ident, $target:ident)?;)* })*) => {
        #[async_trait::async_trait]
        impl S3 for NuageS3 {
            $($(
                async fn $op(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    operation!(self, req, $family::$op $(, $name, $class, $target)?)
                }
            )*)*
        }
    };
}

macro_rules! operation {
    ($s3:ident, $req:ident, $f:path) => {
        $f($s3, $req).await
    };
    ($s3:ident, $req:ident, $f:path, $name:literal, $class:ident, bucket) => {{
        let call = $s3
            .call(&$req, $name, RequestClass::$class, &$req.input.bucket, None)
            .await?;
        $f($s3, call, $req).await
    }};
    ($s3:ident, $req:ident, $f:path, $name:literal, $class:ident, object) => {{
        let key = Some($req.input.key.as_str());
        let call = $s3
            .call(&$req, $name, RequestClass::$class, &$req.input.bucket, key)
            .await?;
        $f($s3, call, $req).await
    }};
}

operations! {
    buckets {
        create_bucket(CreateBucketInput) -> CreateBucketOutput: "CreateBucket", A, bucket;
        head_bucket(HeadBucketInput) -> HeadBucketOutput: "HeadBucket", B, bucket;
        delete_bucket(DeleteBucketInput) -> DeleteBucketOutput: "DeleteBucket", Free, bucket;
        list_buckets(ListBucketsInput) -> ListBucketsOutput;
        get_bucket_location(GetBucketLocationInput) -> GetBucketLocationOutput: "GetBucketLocation", B, bucket;
    }
    bucket_settings {
        get_bucket_versioning(GetBucketVersioningInput) -> GetBucketVersioningOutput: "GetBucketVersioning", B, bucket;
        put_bucket_versioning(PutBucketVersioningInput) -> PutBucketVersioningOutput: "PutBucketVersioning", A, bucket;
        get_bucket_tagging(GetBucketTaggingInput) -> GetBucketTaggingOutput: "GetBucketTagging", B, bucket;
        put_bucket_tagging(PutBucketTaggingInput) -> PutBucketTaggingOutput: "PutBucketTagging", A, bucket;
        delete_bucket_tagging(DeleteBucketTaggingInput) -> DeleteBucketTaggingOutput: "DeleteBucketTagging", Free, bucket;
        get_bucket_cors(GetBucketCorsInput) -> GetBucketCorsOutput: "GetBucketCors", B, bucket;
        put_bucket_cors(PutBucketCorsInput) -> PutBucketCorsOutput: "PutBucketCors", A, bucket;
        delete_bucket_cors(DeleteBucketCorsInput) -> DeleteBucketCorsOutput: "DeleteBucketCors", Free, bucket;
        get_bucket_website(GetBucketWebsiteInput) -> GetBucketWebsiteOutput: "GetBucketWebsite", B, bucket;
        put_bucket_website(PutBucketWebsiteInput) -> PutBucketWebsiteOutput: "PutBucketWebsite", A, bucket;
        delete_bucket_website(DeleteBucketWebsiteInput) -> DeleteBucketWebsiteOutput: "DeleteBucketWebsite", Free, bucket;
        get_bucket_lifecycle_configuration(GetBucketLifecycleConfigurationInput) -> GetBucketLifecycleConfigurationOutput: "GetBucketLifecycleConfiguration", B, bucket;
        put_bucket_lifecycle_configuration(PutBucketLifecycleConfigurationInput) -> PutBucketLifecycleConfigurationOutput: "PutBucketLifecycleConfiguration", A, bucket;
        delete_bucket_lifecycle(DeleteBucketLifecycleInput) -> DeleteBucketLifecycleOutput: "DeleteBucketLifecycle", Free, bucket;
    }
    objects {
        put_object(PutObjectInput) -> PutObjectOutput: "PutObject", A, object;
        get_object(GetObjectInput) -> GetObjectOutput: "GetObject", B, object;
        head_object(HeadObjectInput) -> HeadObjectOutput: "HeadObject", B, object;
        get_object_attributes(GetObjectAttributesInput) -> GetObjectAttributesOutput: "GetObjectAttributes", B, object;
        delete_object(DeleteObjectInput) -> DeleteObjectOutput: "DeleteObject", Free, object;
        delete_objects(DeleteObjectsInput) -> DeleteObjectsOutput: "DeleteObject", Free, bucket;
        copy_object(CopyObjectInput) -> CopyObjectOutput: "CopyObject", A, object;
        get_object_tagging(GetObjectTaggingInput) -> GetObjectTaggingOutput: "GetObjectTagging", B, object;
        put_object_tagging(PutObjectTaggingInput) -> PutObjectTaggingOutput: "PutObjectTagging", A, object;
        delete_object_tagging(DeleteObjectTaggingInput) -> DeleteObjectTaggingOutput: "DeleteObjectTagging", Free, object;
    }
    listing {
        list_objects(ListObjectsInput) -> ListObjectsOutput: "ListObjects", A, bucket;
        list_objects_v2(ListObjectsV2Input) -> ListObjectsV2Output: "ListObjectsV2", A, bucket;
        list_object_versions(ListObjectVersionsInput) -> ListObjectVersionsOutput: "ListObjectVersions", A, bucket;
    }
    multipart {
        create_multipart_upload(CreateMultipartUploadInput) -> CreateMultipartUploadOutput: "CreateMultipartUpload", A, object;
        upload_part(UploadPartInput) -> UploadPartOutput: "UploadPart", A, object;
        upload_part_copy(UploadPartCopyInput) -> UploadPartCopyOutput: "UploadPartCopy", A, object;
        complete_multipart_upload(CompleteMultipartUploadInput) -> CompleteMultipartUploadOutput: "CompleteMultipartUpload", A, object;
        abort_multipart_upload(AbortMultipartUploadInput) -> AbortMultipartUploadOutput: "AbortMultipartUpload", Free, object;
        list_multipart_uploads(ListMultipartUploadsInput) -> ListMultipartUploadsOutput: "ListMultipartUploads", A, bucket;
        list_parts(ListPartsInput) -> ListPartsOutput: "ListParts", A, object;
    }
    acl {
        get_bucket_acl(GetBucketAclInput) -> GetBucketAclOutput: "GetBucketAcl", B, bucket;
        put_bucket_acl(PutBucketAclInput) -> PutBucketAclOutput: "PutBucketAcl", A, bucket;
        get_object_acl(GetObjectAclInput) -> GetObjectAclOutput: "GetObjectAcl", B, object;
        put_object_acl(PutObjectAclInput) -> PutObjectAclOutput: "PutObjectAcl", A, object;
        get_bucket_ownership_controls(GetBucketOwnershipControlsInput) -> GetBucketOwnershipControlsOutput: "GetBucketOwnershipControls", B, bucket;
        put_bucket_ownership_controls(PutBucketOwnershipControlsInput) -> PutBucketOwnershipControlsOutput: "PutBucketOwnershipControls", A, bucket;
        delete_bucket_ownership_controls(DeleteBucketOwnershipControlsInput) -> DeleteBucketOwnershipControlsOutput: "DeleteBucketOwnershipControls", Free, bucket;
    }
    policy {
        get_bucket_policy(GetBucketPolicyInput) -> GetBucketPolicyOutput: "GetBucketPolicy", B, bucket;
        put_bucket_policy(PutBucketPolicyInput) -> PutBucketPolicyOutput: "PutBucketPolicy", A, bucket;
        delete_bucket_policy(DeleteBucketPolicyInput) -> DeleteBucketPolicyOutput: "DeleteBucketPolicy", Free, bucket;
        get_bucket_policy_status(GetBucketPolicyStatusInput) -> GetBucketPolicyStatusOutput: "GetBucketPolicyStatus", B, bucket;
        get_public_access_block(GetPublicAccessBlockInput) -> GetPublicAccessBlockOutput: "GetPublicAccessBlock", B, bucket;
        put_public_access_block(PutPublicAccessBlockInput) -> PutPublicAccessBlockOutput: "PutPublicAccessBlock", A, bucket;
        delete_public_access_block(DeletePublicAccessBlockInput) -> DeletePublicAccessBlockOutput: "DeletePublicAccessBlock", Free, bucket;
    }
    object_lock {
        get_object_lock_configuration(GetObjectLockConfigurationInput) -> GetObjectLockConfigurationOutput: "GetObjectLockConfiguration", B, bucket;
        put_object_lock_configuration(PutObjectLockConfigurationInput) -> PutObjectLockConfigurationOutput: "PutObjectLockConfiguration", A, bucket;
        get_object_retention(GetObjectRetentionInput) -> GetObjectRetentionOutput: "GetObjectRetention", B, object;
        put_object_retention(PutObjectRetentionInput) -> PutObjectRetentionOutput: "PutObjectRetention", A, object;
        get_object_legal_hold(GetObjectLegalHoldInput) -> GetObjectLegalHoldOutput: "GetObjectLegalHold", B, object;
        put_object_legal_hold(PutObjectLegalHoldInput) -> PutObjectLegalHoldOutput: "PutObjectLegalHold", A, object;
    }
}
