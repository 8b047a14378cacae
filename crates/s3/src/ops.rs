//! The S3 operations, each a thin mapping onto a storage use case.

use nuage_domain::storage::{CorsRule, KeyPurpose, LifecycleRule};
use nuage_service::storage::recorder::{AccessRecord, RequestClass};
use nuage_service::storage::{
    CompletedPart, CopyObject, GetObject, ListQuery, S3Caller, Storage, StorageError,
};
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};

use crate::ClientAddr;
use crate::auth::KeyDirectory;
use crate::convert::{self, storage as err};

pub struct NuageS3 {
    pub storage: Storage,
    pub keys: KeyDirectory,
}

const SSE: &str = "AES256";

fn sse() -> Option<ServerSideEncryption> {
    Some(ServerSideEncryption::from(SSE.to_owned()))
}

/// What the access log records of one request.
struct Entry<'a> {
    op: &'static str,
    bucket: &'a str,
    key: Option<&'a str>,
    class: RequestClass,
}

impl NuageS3 {
    fn caller<T>(&self, req: &S3Request<T>) -> S3Result<S3Caller> {
        let creds = req
            .credentials
            .as_ref()
            .ok_or_else(|| s3_error!(AccessDenied, "Access Denied"))?;
        let (org, purpose) = self
            .keys
            .org_of(&creds.access_key)
            .ok_or_else(|| s3_error!(AccessDenied, "Access Denied"))?;
        let source = req
            .extensions
            .get::<ClientAddr>()
            .map_or_else(|| "unknown".to_owned(), |a| a.0.ip().to_string());
        Ok(S3Caller {
            org,
            access_key_id: creds.access_key.clone(),
            source,
            purpose,
        })
    }

    /// `log` for an operation that moves no body.
    fn done<T>(
        &self,
        caller: &S3Caller,
        e: Entry<'_>,
        result: Result<T, StorageError>,
    ) -> S3Result<T> {
        self.log(caller, e, 0, result.map(|v| (v, 0)))
    }

    /// Records the request in the organisation's access log and metering
    /// and passes its result on.
    fn log<T>(
        &self,
        caller: &S3Caller,
        e: Entry<'_>,
        bytes_in: u64,
        result: Result<(T, u64), StorageError>,
    ) -> S3Result<T> {
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
        let exit = caller.purpose == KeyPurpose::Export;
        let class = if status >= 400 || exit {
            RequestClass::Free
        } else {
            e.class
        };
        let record = AccessRecord {
            org_id: caller.org.to_string(),
            operation: e.op,
            bucket: e.bucket.to_owned(),
            key: e.key.map(str::to_owned),
            access_key_id: Some(caller.access_key_id.clone()),
            source: caller.source.clone(),
            status,
            bytes: bytes_in + bytes_out,
            class,
            egress: bytes_out,
            exit,
        };
        if denied {
            // An attempt on another organisation's bucket belongs in the
            // owner's access log: that is whose data it was aimed at.
            let storage = self.storage.clone();
            tokio::spawn(async move {
                if let Some(owner) = storage.bucket_owner(&record.bucket).await {
                    storage.recorder().record(AccessRecord {
                        org_id: owner,
                        ..record
                    });
                }
            });
        } else {
            self.storage.recorder().record(record);
        }
        out
    }
}

fn entry<'a>(
    op: &'static str,
    bucket: &'a str,
    key: Option<&'a str>,
    class: RequestClass,
) -> Entry<'a> {
    Entry {
        op,
        bucket,
        key,
        class,
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

fn lifecycle_in(rules: Vec<s3s::dto::LifecycleRule>) -> S3Result<Vec<LifecycleRule>> {
    rules
        .into_iter()
        .map(|r| {
            if r.transitions.as_ref().is_some_and(|t| !t.is_empty())
                || r.noncurrent_version_transitions.as_ref().is_some_and(|t| !t.is_empty())
            {
                return Err(s3_error!(
                    InvalidStorageClass,
                    "Nuage has one storage class (STANDARD): there is no other class to transition to"
                ));
            }
            let (mut prefix, mut tags) = (r.prefix.unwrap_or_default(), Vec::new());
            let (mut size_greater_than, mut size_less_than) = (None, None);
            if let Some(f) = r.filter {
                if let Some(p) = f.prefix {
                    prefix = p;
                }
                size_greater_than = f.object_size_greater_than;
                size_less_than = f.object_size_less_than;
                if let Some(t) = f.tag {
                    tags.push((t.key.unwrap_or_default(), t.value.unwrap_or_default()));
                }
                if let Some(and) = f.and {
                    if let Some(p) = and.prefix {
                        prefix = p;
                    }
                    size_greater_than = and.object_size_greater_than.or(size_greater_than);
                    size_less_than = and.object_size_less_than.or(size_less_than);
                    tags.extend(tags_in(and.tags.unwrap_or_default()));
                }
            }
            let days = |d: Option<i32>| -> S3Result<Option<u32>> {
                d.map(|d| u32::try_from(d).map_err(|_| s3_error!(InvalidArgument, "Days must be positive")))
                    .transpose()
            };
            let rule = LifecycleRule {
                id: r.id,
                enabled: r.status.as_str() == "Enabled",
                prefix,
                tags,
                size_greater_than,
                size_less_than,
                expiration_days: days(r.expiration.as_ref().and_then(|e| e.days))?,
                expiration_date: r.expiration.as_ref().and_then(|e| e.date.clone()).map(convert::millis),
                noncurrent_days: days(r.noncurrent_version_expiration.as_ref().and_then(|n| n.noncurrent_days))?,
                abort_incomplete_days: days(
                    r.abort_incomplete_multipart_upload.as_ref().and_then(|a| a.days_after_initiation),
                )?,
                expired_object_delete_marker: r
                    .expiration
                    .as_ref()
                    .and_then(|e| e.expired_object_delete_marker)
                    .unwrap_or(false),
                newer_noncurrent_versions: days(
                    r.noncurrent_version_expiration.as_ref().and_then(|n| n.newer_noncurrent_versions),
                )?,
            };
            Ok(rule)
        })
        .collect()
}

fn lifecycle_out(rules: Vec<LifecycleRule>) -> Vec<s3s::dto::LifecycleRule> {
    rules
        .into_iter()
        .map(|r| {
            let sized = r.size_greater_than.is_some() || r.size_less_than.is_some();
            let filter = if r.tags.is_empty() && !sized {
                LifecycleRuleFilter {
                    prefix: Some(r.prefix.clone()),
                    ..Default::default()
                }
            } else {
                LifecycleRuleFilter {
                    and: Some(LifecycleRuleAndOperator {
                        prefix: Some(r.prefix.clone()),
                        tags: (!r.tags.is_empty())
                            .then(|| tags_out(nuage_domain::storage::Tags(r.tags.clone()))),
                        object_size_greater_than: r.size_greater_than,
                        object_size_less_than: r.size_less_than,
                    }),
                    ..Default::default()
                }
            };
            s3s::dto::LifecycleRule {
                id: r.id,
                status: ExpirationStatus::from(
                    if r.enabled { "Enabled" } else { "Disabled" }.to_owned(),
                ),
                filter: Some(filter),
                expiration: (r.expiration_days.is_some()
                    || r.expiration_date.is_some()
                    || r.expired_object_delete_marker)
                    .then(|| LifecycleExpiration {
                        days: r.expiration_days.map(|d| d as i32),
                        date: r.expiration_date.map(convert::timestamp),
                        expired_object_delete_marker: r
                            .expired_object_delete_marker
                            .then_some(true),
                    }),
                noncurrent_version_expiration: r.noncurrent_days.map(|d| {
                    NoncurrentVersionExpiration {
                        noncurrent_days: Some(d as i32),
                        newer_noncurrent_versions: r.newer_noncurrent_versions.map(|n| n as i32),
                    }
                }),
                abort_incomplete_multipart_upload: r.abort_incomplete_days.map(|d| {
                    AbortIncompleteMultipartUpload {
                        days_after_initiation: Some(d as i32),
                    }
                }),
                prefix: None,
                transitions: None,
                noncurrent_version_transitions: None,
            }
        })
        .collect()
}

#[async_trait::async_trait]
impl S3 for NuageS3 {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let caller = self.caller(&req)?;
        let i = req.input;
        let region = i
            .create_bucket_configuration
            .and_then(|c| c.location_constraint)
            .map(|l| l.as_str().to_owned());
        let r = self
            .storage
            .create_bucket(&caller, &i.bucket, region.as_deref())
            .await
            .map(|b| (b, 0));
        self.log(
            &caller,
            entry("CreateBucket", &i.bucket, None, RequestClass::A),
            0,
            r,
        )?;
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{}", i.bucket)),
        }))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        let caller = self.caller(&req)?;
        let r = self
            .storage
            .head_bucket(&caller, &req.input.bucket)
            .await
            .map(|b| (b, 0));
        let b = self.log(
            &caller,
            entry("HeadBucket", &req.input.bucket, None, RequestClass::B),
            0,
            r,
        )?;
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(b.region),
            ..Default::default()
        }))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let caller = self.caller(&req)?;
        let r = self
            .storage
            .delete_bucket(&caller, &req.input.bucket)
            .await
            .map(|b| (b, 0));
        self.log(
            &caller,
            entry("DeleteBucket", &req.input.bucket, None, RequestClass::Free),
            0,
            r,
        )?;
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let caller = self.caller(&req)?;
        let buckets = self.storage.list_buckets(&caller).await.map_err(err)?;
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(
                buckets
                    .into_iter()
                    .map(|b| Bucket {
                        name: Some(b.name),
                        creation_date: Some(convert::timestamp(b.created_at)),
                        bucket_region: Some(b.region),
                    })
                    .collect(),
            ),
            owner: Some(Owner {
                id: Some(caller.org.to_string()),
                display_name: None,
            }),
            ..Default::default()
        }))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let caller = self.caller(&req)?;
        let region = self.done(
            &caller,
            entry(
                "GetBucketLocation",
                &req.input.bucket,
                None,
                RequestClass::B,
            ),
            self.storage.bucket_region(&caller, &req.input.bucket).await,
        )?;
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint: Some(BucketLocationConstraint::from(region.name)),
        }))
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let caller = self.caller(&req)?;
        let v = self.done(
            &caller,
            entry(
                "GetBucketVersioning",
                &req.input.bucket,
                None,
                RequestClass::B,
            ),
            self.storage.versioning(&caller, &req.input.bucket).await,
        )?;
        Ok(S3Response::new(GetBucketVersioningOutput {
            status: v
                .as_stored()
                .map(|s| BucketVersioningStatus::from(s.to_owned())),
            ..Default::default()
        }))
    }

    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        let caller = self.caller(&req)?;
        let status = req
            .input
            .versioning_configuration
            .status
            .map(|s| s.as_str().to_owned());
        let enabled = match status.as_deref() {
            Some("Enabled") => true,
            Some("Suspended") => false,
            _ => {
                return Err(s3_error!(
                    MalformedXML,
                    "The versioning status is Enabled or Suspended"
                ));
            }
        };
        let r = self
            .storage
            .set_versioning(&caller, &req.input.bucket, enabled)
            .await
            .map(|v| (v, 0));
        self.log(
            &caller,
            entry(
                "PutBucketVersioning",
                &req.input.bucket,
                None,
                RequestClass::A,
            ),
            0,
            r,
        )?;
        Ok(S3Response::new(PutBucketVersioningOutput {}))
    }

    async fn get_bucket_tagging(
        &self,
        req: S3Request<GetBucketTaggingInput>,
    ) -> S3Result<S3Response<GetBucketTaggingOutput>> {
        let caller = self.caller(&req)?;
        let tags = self.done(
            &caller,
            entry("GetBucketTagging", &req.input.bucket, None, RequestClass::B),
            self.storage.bucket_tags(&caller, &req.input.bucket).await,
        )?;
        Ok(S3Response::new(GetBucketTaggingOutput {
            tag_set: tags_out(tags),
        }))
    }

    async fn put_bucket_tagging(
        &self,
        req: S3Request<PutBucketTaggingInput>,
    ) -> S3Result<S3Response<PutBucketTaggingOutput>> {
        let caller = self.caller(&req)?;
        let tags = tags_in(req.input.tagging.tag_set);
        self.done(
            &caller,
            entry("PutBucketTagging", &req.input.bucket, None, RequestClass::A),
            self.storage
                .set_bucket_tags(&caller, &req.input.bucket, Some(tags))
                .await,
        )?;
        Ok(S3Response::new(PutBucketTaggingOutput {}))
    }

    async fn delete_bucket_tagging(
        &self,
        req: S3Request<DeleteBucketTaggingInput>,
    ) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
        let caller = self.caller(&req)?;
        self.done(
            &caller,
            entry(
                "DeleteBucketTagging",
                &req.input.bucket,
                None,
                RequestClass::Free,
            ),
            self.storage
                .set_bucket_tags(&caller, &req.input.bucket, None)
                .await,
        )?;
        Ok(S3Response::new(DeleteBucketTaggingOutput {}))
    }

    async fn get_bucket_cors(
        &self,
        req: S3Request<GetBucketCorsInput>,
    ) -> S3Result<S3Response<GetBucketCorsOutput>> {
        let caller = self.caller(&req)?;
        let rules = self.done(
            &caller,
            entry("GetBucketCors", &req.input.bucket, None, RequestClass::B),
            self.storage.cors(&caller, &req.input.bucket).await,
        )?;
        Ok(S3Response::new(GetBucketCorsOutput {
            cors_rules: Some(
                rules
                    .into_iter()
                    .map(|r| CORSRule {
                        id: r.id,
                        allowed_origins: r.allowed_origins,
                        allowed_methods: r.allowed_methods,
                        allowed_headers: Some(r.allowed_headers).filter(|h| !h.is_empty()),
                        expose_headers: Some(r.expose_headers).filter(|h| !h.is_empty()),
                        max_age_seconds: r.max_age_seconds,
                    })
                    .collect(),
            ),
        }))
    }

    async fn put_bucket_cors(
        &self,
        req: S3Request<PutBucketCorsInput>,
    ) -> S3Result<S3Response<PutBucketCorsOutput>> {
        let caller = self.caller(&req)?;
        let rules = req
            .input
            .cors_configuration
            .cors_rules
            .into_iter()
            .map(|r| CorsRule {
                id: r.id,
                allowed_origins: r.allowed_origins,
                allowed_methods: r.allowed_methods,
                allowed_headers: r.allowed_headers.unwrap_or_default(),
                expose_headers: r.expose_headers.unwrap_or_default(),
                max_age_seconds: r.max_age_seconds,
            })
            .collect();
        self.done(
            &caller,
            entry("PutBucketCors", &req.input.bucket, None, RequestClass::A),
            self.storage
                .set_cors(&caller, &req.input.bucket, Some(rules))
                .await,
        )?;
        Ok(S3Response::new(PutBucketCorsOutput {}))
    }

    async fn delete_bucket_cors(
        &self,
        req: S3Request<DeleteBucketCorsInput>,
    ) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
        let caller = self.caller(&req)?;
        self.done(
            &caller,
            entry(
                "DeleteBucketCors",
                &req.input.bucket,
                None,
                RequestClass::Free,
            ),
            self.storage
                .set_cors(&caller, &req.input.bucket, None)
                .await,
        )?;
        Ok(S3Response::new(DeleteBucketCorsOutput {}))
    }

    async fn get_bucket_website(
        &self,
        req: S3Request<GetBucketWebsiteInput>,
    ) -> S3Result<S3Response<GetBucketWebsiteOutput>> {
        let caller = self.caller(&req)?;
        let config = self.done(
            &caller,
            entry("GetBucketWebsite", &req.input.bucket, None, RequestClass::B),
            self.storage.website(&caller, &req.input.bucket).await,
        )?;
        Ok(S3Response::new(convert::website_out(config)))
    }

    async fn put_bucket_website(
        &self,
        req: S3Request<PutBucketWebsiteInput>,
    ) -> S3Result<S3Response<PutBucketWebsiteOutput>> {
        let caller = self.caller(&req)?;
        let config = convert::website_in(req.input.website_configuration)?;
        self.done(
            &caller,
            entry("PutBucketWebsite", &req.input.bucket, None, RequestClass::A),
            self.storage
                .set_website(&caller, &req.input.bucket, Some(config))
                .await,
        )?;
        Ok(S3Response::new(PutBucketWebsiteOutput {}))
    }

    async fn delete_bucket_website(
        &self,
        req: S3Request<DeleteBucketWebsiteInput>,
    ) -> S3Result<S3Response<DeleteBucketWebsiteOutput>> {
        let caller = self.caller(&req)?;
        self.done(
            &caller,
            entry(
                "DeleteBucketWebsite",
                &req.input.bucket,
                None,
                RequestClass::Free,
            ),
            self.storage
                .set_website(&caller, &req.input.bucket, None)
                .await,
        )?;
        Ok(S3Response::new(DeleteBucketWebsiteOutput {}))
    }

    async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
        let caller = self.caller(&req)?;
        let rules = self.done(
            &caller,
            entry(
                "GetBucketLifecycleConfiguration",
                &req.input.bucket,
                None,
                RequestClass::B,
            ),
            self.storage.lifecycle(&caller, &req.input.bucket).await,
        )?;
        Ok(S3Response::new(GetBucketLifecycleConfigurationOutput {
            rules: Some(lifecycle_out(rules)),
            ..Default::default()
        }))
    }

    async fn put_bucket_lifecycle_configuration(
        &self,
        req: S3Request<PutBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
        let caller = self.caller(&req)?;
        let rules = lifecycle_in(
            req.input
                .lifecycle_configuration
                .map(|c| c.rules)
                .unwrap_or_default(),
        )?;
        self.done(
            &caller,
            entry(
                "PutBucketLifecycleConfiguration",
                &req.input.bucket,
                None,
                RequestClass::A,
            ),
            self.storage
                .set_lifecycle(&caller, &req.input.bucket, Some(rules))
                .await,
        )?;
        Ok(S3Response::new(
            PutBucketLifecycleConfigurationOutput::default(),
        ))
    }

    async fn delete_bucket_lifecycle(
        &self,
        req: S3Request<DeleteBucketLifecycleInput>,
    ) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
        let caller = self.caller(&req)?;
        self.done(
            &caller,
            entry(
                "DeleteBucketLifecycle",
                &req.input.bucket,
                None,
                RequestClass::Free,
            ),
            self.storage
                .set_lifecycle(&caller, &req.input.bucket, None)
                .await,
        )?;
        Ok(S3Response::new(DeleteBucketLifecycleOutput {}))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let caller = self.caller(&req)?;
        let checksum = convert::checksum_input(
            &req.headers,
            req.trailing_headers.clone(),
            req.input.checksum_algorithm.as_ref().map(|a| a.as_str()),
            req.input.checksum_crc32.clone(),
            req.input.checksum_crc32c.clone(),
            req.input.checksum_crc64nvme.clone(),
            req.input.checksum_sha1.clone(),
            req.input.checksum_sha256.clone(),
        )?;
        let i = req.input;
        let condition = convert::write_condition(i.if_match, i.if_none_match)?;
        let customer_key = convert::customer_key(
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        let key_md5 = customer_key.as_ref().map(|k| k.key_md5.clone());
        let headers = convert::headers(
            i.content_type.map(|c| c.to_string()),
            i.content_encoding,
            i.content_disposition,
            i.content_language,
            i.cache_control,
            i.expires,
            i.metadata,
        )?;
        let tags = convert::tagging_header(i.tagging.as_deref())?;
        let length = i.content_length.map(|l| l.max(0) as u64);
        let r = self
            .storage
            .put_object(
                &caller,
                nuage_service::storage::PutObject {
                    bucket: i.bucket.clone(),
                    key: i.key.clone(),
                    headers,
                    tags,
                    content_length: length,
                    content_md5: i.content_md5,
                    checksum,
                    customer_key,
                    condition,
                    body: convert::body_in(i.body),
                },
            )
            .await
            .map(|o| (o, 0));
        let o = self.log(
            &caller,
            entry("PutObject", &i.bucket, Some(&i.key), RequestClass::A),
            length.unwrap_or(0),
            r,
        )?;
        let c = convert::checksum_fields(o.checksum.as_ref());
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(convert::etag(&o.etag)),
            version_id: o.version_id,
            checksum_crc32: c.crc32,
            checksum_crc32c: c.crc32c,
            checksum_crc64nvme: c.crc64nvme,
            checksum_sha1: c.sha1,
            checksum_sha256: c.sha256,
            checksum_type: c.kind,
            server_side_encryption: key_md5.is_none().then(sse).flatten(),
            sse_customer_algorithm: key_md5.as_ref().map(|_| SSE.to_owned()),
            sse_customer_key_md5: key_md5,
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let caller = self.caller(&req)?;
        let i = req.input;
        let customer_key = convert::customer_key(
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        let get = GetObject {
            bucket: i.bucket.clone(),
            key: i.key.clone(),
            version_id: i.version_id,
            range: convert::range(i.range),
            part_number: i.part_number.map(|n| n.max(0) as u32),
            conditions: convert::conditions(
                i.if_match,
                i.if_none_match,
                i.if_modified_since,
                i.if_unmodified_since,
            ),
            customer_key,
        };
        let r = self.storage.get_object(&caller, get).await.map(|o| {
            let n = o.content_length;
            (o, n)
        });
        let o = self.log(
            &caller,
            entry("GetObject", &i.bucket, Some(&i.key), RequestClass::B),
            0,
            r,
        )?;
        let info = o.info;
        let c = if o.range.is_none() {
            convert::checksum_fields(info.checksum.as_ref())
        } else {
            convert::ChecksumFields::default()
        };
        let h = info.headers;
        Ok(S3Response::new(GetObjectOutput {
            body: Some(convert::body_out(o.body)),
            content_length: Some(o.content_length as i64),
            content_range: o.range.map(|(a, b)| format!("bytes {a}-{b}/{}", info.size)),
            accept_ranges: Some("bytes".to_owned()),
            e_tag: Some(convert::etag(&info.etag)),
            last_modified: Some(convert::timestamp(info.last_modified)),
            version_id: Some(info.version_id),
            content_type: i.response_content_type.or(h.content_type),
            content_encoding: i.response_content_encoding.or(h.content_encoding),
            content_disposition: i.response_content_disposition.or(h.content_disposition),
            content_language: i.response_content_language.or(h.content_language),
            cache_control: i.response_cache_control.or(h.cache_control),
            expires: i
                .response_expires
                .or_else(|| convert::expires(h.expires.as_deref())),
            metadata: Some(h.metadata.into_iter().collect()),
            parts_count: (info.parts > 1).then_some(info.parts as i32),
            tag_count: (info.tag_count > 0).then_some(info.tag_count as i32),
            checksum_crc32: c.crc32,
            checksum_crc32c: c.crc32c,
            checksum_crc64nvme: c.crc64nvme,
            checksum_sha1: c.sha1,
            checksum_sha256: c.sha256,
            checksum_type: c.kind,
            server_side_encryption: info.customer_key_md5.is_none().then(sse).flatten(),
            sse_customer_algorithm: info.customer_key_md5.as_ref().map(|_| SSE.to_owned()),
            sse_customer_key_md5: info.customer_key_md5,
            ..Default::default()
        }))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let caller = self.caller(&req)?;
        let i = req.input;
        let customer_key = convert::customer_key(
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        let get = GetObject {
            bucket: i.bucket.clone(),
            key: i.key.clone(),
            version_id: i.version_id,
            range: None,
            part_number: i.part_number.map(|n| n.max(0) as u32),
            conditions: convert::conditions(
                i.if_match,
                i.if_none_match,
                i.if_modified_since,
                i.if_unmodified_since,
            ),
            customer_key,
        };
        let r = self
            .storage
            .head_object(&caller, &get)
            .await
            .map(|o| (o, 0));
        let info = self.log(
            &caller,
            entry("HeadObject", &i.bucket, Some(&i.key), RequestClass::B),
            0,
            r,
        )?;
        let c = convert::checksum_fields(info.checksum.as_ref());
        let h = info.headers;
        Ok(S3Response::new(HeadObjectOutput {
            content_length: Some(info.size as i64),
            accept_ranges: Some("bytes".to_owned()),
            e_tag: Some(convert::etag(&info.etag)),
            last_modified: Some(convert::timestamp(info.last_modified)),
            version_id: Some(info.version_id),
            content_type: h.content_type,
            content_encoding: h.content_encoding,
            content_disposition: h.content_disposition,
            content_language: h.content_language,
            cache_control: h.cache_control,
            expires: convert::expires(h.expires.as_deref()),
            metadata: Some(h.metadata.into_iter().collect()),
            parts_count: (info.parts > 1).then_some(info.parts as i32),
            checksum_crc32: c.crc32,
            checksum_crc32c: c.crc32c,
            checksum_crc64nvme: c.crc64nvme,
            checksum_sha1: c.sha1,
            checksum_sha256: c.sha256,
            checksum_type: c.kind,
            server_side_encryption: info.customer_key_md5.is_none().then(sse).flatten(),
            sse_customer_algorithm: info.customer_key_md5.as_ref().map(|_| SSE.to_owned()),
            sse_customer_key_md5: info.customer_key_md5,
            ..Default::default()
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let caller = self.caller(&req)?;
        let i = req.input;
        let r = self
            .storage
            .delete_object(&caller, &i.bucket, &i.key, i.version_id.as_deref())
            .await
            .map(|o| (o, 0));
        let o = self.log(
            &caller,
            entry("DeleteObject", &i.bucket, Some(&i.key), RequestClass::Free),
            0,
            r,
        )?;
        Ok(S3Response::new(DeleteObjectOutput {
            delete_marker: o.delete_marker.then_some(true),
            version_id: o.version_id,
            ..Default::default()
        }))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let caller = self.caller(&req)?;
        let i = req.input;
        if i.delete.objects.len() > 1000 {
            return Err(s3_error!(
                MalformedXML,
                "A delete request names at most 1000 keys"
            ));
        }
        let quiet = i.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for o in i.delete.objects {
            let r = self
                .storage
                .delete_object(&caller, &i.bucket, &o.key, o.version_id.as_deref())
                .await
                .map(|d| (d, 0));
            match self.log(
                &caller,
                entry("DeleteObject", &i.bucket, Some(&o.key), RequestClass::Free),
                0,
                r,
            ) {
                Ok(d) => {
                    if !quiet {
                        deleted.push(DeletedObject {
                            key: Some(o.key),
                            version_id: o.version_id.clone(),
                            delete_marker: d.delete_marker.then_some(true),
                            delete_marker_version_id: if d.delete_marker && o.version_id.is_none() {
                                d.version_id
                            } else {
                                None
                            },
                        });
                    }
                }
                Err(e) => errors.push(s3s::dto::Error {
                    code: Some(e.code().as_str().to_owned()),
                    key: Some(o.key),
                    message: e.message().map(str::to_owned),
                    version_id: o.version_id,
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: Some(errors).filter(|e| !e.is_empty()),
            ..Default::default()
        }))
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let caller = self.caller(&req)?;
        let i = req.input;
        let (src_bucket, src_key, src_version) = copy_source(&i.copy_source)?;
        let replace = i
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == "REPLACE");
        let headers = if replace {
            Some(convert::headers(
                i.content_type.map(|c| c.to_string()),
                i.content_encoding,
                i.content_disposition,
                i.content_language,
                i.cache_control,
                i.expires,
                i.metadata,
            )?)
        } else {
            None
        };
        let tags = if i
            .tagging_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == "REPLACE")
        {
            Some(convert::tagging_header(i.tagging.as_deref())?)
        } else {
            None
        };
        let source_key = convert::customer_key(
            i.copy_source_sse_customer_algorithm.as_deref(),
            i.copy_source_sse_customer_key.as_deref(),
            i.copy_source_sse_customer_key_md5.as_deref(),
        )?;
        let customer_key = convert::customer_key(
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        let copy = CopyObject {
            source: GetObject {
                bucket: src_bucket,
                key: src_key,
                version_id: src_version.clone(),
                conditions: convert::conditions(
                    i.copy_source_if_match,
                    i.copy_source_if_none_match,
                    i.copy_source_if_modified_since,
                    i.copy_source_if_unmodified_since,
                ),
                customer_key: source_key,
                ..Default::default()
            },
            bucket: i.bucket.clone(),
            key: i.key.clone(),
            headers,
            tags,
            customer_key,
        };
        let r = self
            .storage
            .copy_object(&caller, copy)
            .await
            .map(|o| (o, 0));
        let o = self.log(
            &caller,
            entry("CopyObject", &i.bucket, Some(&i.key), RequestClass::A),
            0,
            r,
        )?;
        let c = convert::checksum_fields(o.checksum.as_ref());
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(convert::etag(&o.etag)),
                last_modified: Some(convert::timestamp(o.last_modified)),
                checksum_crc32: c.crc32,
                checksum_crc32c: c.crc32c,
                checksum_crc64nvme: c.crc64nvme,
                checksum_sha1: c.sha1,
                checksum_sha256: c.sha256,
                checksum_type: c.kind,
            }),
            copy_source_version_id: src_version,
            version_id: o.version_id,
            server_side_encryption: sse(),
            ..Default::default()
        }))
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        let caller = self.caller(&req)?;
        let i = req.input;
        let (version, tags) = self.done(
            &caller,
            entry("GetObjectTagging", &i.bucket, Some(&i.key), RequestClass::B),
            self.storage
                .object_tags(&caller, &i.bucket, &i.key, i.version_id.as_deref())
                .await,
        )?;
        Ok(S3Response::new(GetObjectTaggingOutput {
            tag_set: tags_out(tags),
            version_id: Some(version),
        }))
    }

    async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        let caller = self.caller(&req)?;
        let i = req.input;
        let version = self.done(
            &caller,
            entry("PutObjectTagging", &i.bucket, Some(&i.key), RequestClass::A),
            self.storage
                .set_object_tags(
                    &caller,
                    &i.bucket,
                    &i.key,
                    i.version_id.as_deref(),
                    tags_in(i.tagging.tag_set),
                )
                .await,
        )?;
        Ok(S3Response::new(PutObjectTaggingOutput {
            version_id: Some(version),
        }))
    }

    async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        let caller = self.caller(&req)?;
        let i = req.input;
        let version = self.done(
            &caller,
            entry(
                "DeleteObjectTagging",
                &i.bucket,
                Some(&i.key),
                RequestClass::Free,
            ),
            self.storage
                .set_object_tags(
                    &caller,
                    &i.bucket,
                    &i.key,
                    i.version_id.as_deref(),
                    Vec::new(),
                )
                .await,
        )?;
        Ok(S3Response::new(DeleteObjectTaggingOutput {
            version_id: Some(version),
        }))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let caller = self.caller(&req)?;
        let i = req.input;
        let url = i
            .encoding_type
            .as_ref()
            .is_some_and(|e| e.as_str() == "url");
        let enc = |s: String| if url { convert::url_encode(&s) } else { s };
        let q = ListQuery {
            prefix: i.prefix.clone().unwrap_or_default(),
            delimiter: i.delimiter.clone(),
            after: i.marker.clone().filter(|m| !m.is_empty()),
            version_after: None,
            max_keys: max_keys(i.max_keys)?,
        };
        let r = self
            .storage
            .list_objects(&caller, &i.bucket, &q)
            .await
            .map(|l| (l, 0));
        let l = self.log(
            &caller,
            entry("ListObjects", &i.bucket, None, RequestClass::A),
            0,
            r,
        )?;
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(i.bucket),
            prefix: Some(enc(q.prefix)),
            marker: i.marker.map(enc),
            max_keys: Some(q.max_keys as i32),
            delimiter: i.delimiter.map(enc),
            is_truncated: Some(l.truncated),
            next_marker: if q.delimiter.is_some() {
                l.next.map(enc)
            } else {
                None
            },
            encoding_type: i.encoding_type,
            contents: Some(l.objects.into_iter().map(|o| listed(o, &enc)).collect()),
            common_prefixes: Some(common_prefixes(l.prefixes, &enc)),
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let caller = self.caller(&req)?;
        let i = req.input;
        let url = i
            .encoding_type
            .as_ref()
            .is_some_and(|e| e.as_str() == "url");
        let enc = |s: String| if url { convert::url_encode(&s) } else { s };
        let after = match &i.continuation_token {
            Some(t) => Some(decode_token(t)?),
            None => i.start_after.clone().filter(|s| !s.is_empty()),
        };
        let q = ListQuery {
            prefix: i.prefix.clone().unwrap_or_default(),
            delimiter: i.delimiter.clone(),
            after,
            version_after: None,
            max_keys: max_keys(i.max_keys)?,
        };
        let r = self
            .storage
            .list_objects(&caller, &i.bucket, &q)
            .await
            .map(|l| (l, 0));
        let l = self.log(
            &caller,
            entry("ListObjectsV2", &i.bucket, None, RequestClass::A),
            0,
            r,
        )?;
        let count = l.objects.len() + l.prefixes.len();
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(i.bucket),
            prefix: Some(enc(q.prefix)),
            max_keys: Some(q.max_keys as i32),
            key_count: Some(count as i32),
            delimiter: i.delimiter.map(enc),
            is_truncated: Some(l.truncated),
            continuation_token: i.continuation_token,
            next_continuation_token: l.next.map(|n| encode_token(&n)),
            start_after: i.start_after.map(enc),
            encoding_type: i.encoding_type,
            contents: Some(l.objects.into_iter().map(|o| listed(o, &enc)).collect()),
            common_prefixes: Some(common_prefixes(l.prefixes, &enc)),
            ..Default::default()
        }))
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let caller = self.caller(&req)?;
        let i = req.input;
        let url = i
            .encoding_type
            .as_ref()
            .is_some_and(|e| e.as_str() == "url");
        let enc = |s: String| if url { convert::url_encode(&s) } else { s };
        let q = ListQuery {
            prefix: i.prefix.clone().unwrap_or_default(),
            delimiter: i.delimiter.clone(),
            after: i.key_marker.clone().filter(|m| !m.is_empty()),
            version_after: i.version_id_marker.clone().filter(|m| !m.is_empty()),
            max_keys: max_keys(i.max_keys)?,
        };
        let r = self
            .storage
            .list_versions(&caller, &i.bucket, &q)
            .await
            .map(|l| (l, 0));
        let l = self.log(
            &caller,
            entry("ListObjectVersions", &i.bucket, None, RequestClass::A),
            0,
            r,
        )?;
        let mut versions = Vec::new();
        let mut markers = Vec::new();
        for v in l.versions {
            if v.delete_marker {
                markers.push(DeleteMarkerEntry {
                    key: Some(enc(v.key)),
                    version_id: Some(v.version_id),
                    is_latest: Some(v.is_latest),
                    last_modified: Some(convert::timestamp(v.last_modified)),
                    owner: None,
                });
            } else {
                versions.push(ObjectVersion {
                    key: Some(enc(v.key)),
                    version_id: Some(v.version_id),
                    is_latest: Some(v.is_latest),
                    size: Some(v.size as i64),
                    e_tag: Some(convert::etag(&v.etag)),
                    last_modified: Some(convert::timestamp(v.last_modified)),
                    storage_class: Some(ObjectVersionStorageClass::from("STANDARD".to_owned())),
                    ..Default::default()
                });
            }
        }
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(i.bucket),
            prefix: Some(enc(q.prefix)),
            key_marker: i.key_marker.map(enc),
            version_id_marker: i.version_id_marker,
            max_keys: Some(q.max_keys as i32),
            delimiter: i.delimiter.map(enc),
            is_truncated: Some(l.truncated),
            next_key_marker: l.next_key.map(enc),
            next_version_id_marker: l.next_version,
            encoding_type: i.encoding_type,
            versions: Some(versions),
            delete_markers: Some(markers),
            common_prefixes: Some(common_prefixes(l.prefixes, &enc)),
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let caller = self.caller(&req)?;
        let i = req.input;
        let customer_key = convert::customer_key(
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        let headers = convert::headers(
            i.content_type.map(|c| c.to_string()),
            i.content_encoding,
            i.content_disposition,
            i.content_language,
            i.cache_control,
            i.expires,
            i.metadata,
        )?;
        let algorithm = match i.checksum_algorithm.as_ref() {
            Some(a) => Some(
                nuage_service::storage::objects::ChecksumAlgorithm::parse(a.as_str()).ok_or_else(
                    || s3_error!(InvalidRequest, "Checksum algorithm is not supported"),
                )?,
            ),
            None => None,
        };
        let tags = convert::tagging_header(i.tagging.as_deref())?;
        let r = self
            .storage
            .create_multipart_upload(
                &caller,
                nuage_service::storage::multipart::NewUpload {
                    bucket: i.bucket.clone(),
                    key: i.key.clone(),
                    headers,
                    tags,
                    checksum_algorithm: algorithm,
                    customer_key_md5: customer_key.as_ref().map(|k| k.key_md5.clone()),
                },
            )
            .await
            .map(|u| (u, 0));
        let u = self.log(
            &caller,
            entry(
                "CreateMultipartUpload",
                &i.bucket,
                Some(&i.key),
                RequestClass::A,
            ),
            0,
            r,
        )?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(i.bucket),
            key: Some(i.key),
            upload_id: Some(u.upload_id),
            checksum_algorithm: i.checksum_algorithm,
            server_side_encryption: customer_key.is_none().then(sse).flatten(),
            sse_customer_algorithm: customer_key.as_ref().map(|_| SSE.to_owned()),
            sse_customer_key_md5: customer_key.map(|k| k.key_md5),
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let caller = self.caller(&req)?;
        let checksum = convert::checksum_input(
            &req.headers,
            req.trailing_headers.clone(),
            req.input.checksum_algorithm.as_ref().map(|a| a.as_str()),
            req.input.checksum_crc32.clone(),
            req.input.checksum_crc32c.clone(),
            req.input.checksum_crc64nvme.clone(),
            req.input.checksum_sha1.clone(),
            req.input.checksum_sha256.clone(),
        )?;
        let i = req.input;
        let customer_key = convert::customer_key(
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        let algorithm = checksum.algorithm;
        let length = i.content_length.map(|l| l.max(0) as u64);
        let r = self
            .storage
            .upload_part(
                &caller,
                nuage_service::storage::multipart::UploadPart {
                    bucket: i.bucket.clone(),
                    key: i.key.clone(),
                    upload_id: i.upload_id,
                    part_number: i.part_number.max(0) as u32,
                    content_length: length,
                    content_md5: i.content_md5,
                    checksum,
                    customer_key,
                    body: convert::body_in(i.body),
                },
            )
            .await
            .map(|p| (p, 0));
        let p = self.log(
            &caller,
            entry("UploadPart", &i.bucket, Some(&i.key), RequestClass::A),
            length.unwrap_or(0),
            r,
        )?;
        let stored = match (algorithm, p.checksum) {
            (Some(a), Some(v)) => Some(nuage_service::storage::objects::StoredChecksum {
                algorithm: a,
                value: v,
                composite: false,
            }),
            _ => None,
        };
        let c = convert::checksum_fields(stored.as_ref());
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(convert::etag(&p.etag)),
            checksum_crc32: c.crc32,
            checksum_crc32c: c.crc32c,
            checksum_crc64nvme: c.crc64nvme,
            checksum_sha1: c.sha1,
            checksum_sha256: c.sha256,
            server_side_encryption: sse(),
            ..Default::default()
        }))
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let caller = self.caller(&req)?;
        let i = req.input;
        let (src_bucket, src_key, src_version) = copy_source(&i.copy_source)?;
        let range = match i.copy_source_range.as_deref() {
            Some(r) => {
                let r = r
                    .trim()
                    .strip_prefix("bytes=")
                    .and_then(|r| r.split_once('-'));
                let (a, b) = r
                    .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
                    .ok_or_else(|| {
                        s3_error!(
                            InvalidArgument,
                            "The x-amz-copy-source-range value must be of the form bytes=first-last"
                        )
                    })?;
                Some(nuage_service::storage::ByteRange::FromTo(a, Some(b)))
            }
            None => None,
        };
        let source_key = convert::customer_key(
            i.copy_source_sse_customer_algorithm.as_deref(),
            i.copy_source_sse_customer_key.as_deref(),
            i.copy_source_sse_customer_key_md5.as_deref(),
        )?;
        let customer_key = convert::customer_key(
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        let source = GetObject {
            bucket: src_bucket,
            key: src_key,
            version_id: src_version.clone(),
            range,
            conditions: convert::conditions(
                i.copy_source_if_match,
                i.copy_source_if_none_match,
                i.copy_source_if_modified_since,
                i.copy_source_if_unmodified_since,
            ),
            customer_key: source_key,
            ..Default::default()
        };
        let r = self
            .storage
            .upload_part_copy(
                &caller,
                nuage_service::storage::multipart::PartCopy {
                    bucket: i.bucket.clone(),
                    key: i.key.clone(),
                    upload_id: i.upload_id.clone(),
                    part_number: i.part_number.max(0) as u32,
                    source,
                    customer_key,
                },
            )
            .await
            .map(|p| (p, 0));
        let p = self.log(
            &caller,
            entry("UploadPartCopy", &i.bucket, Some(&i.key), RequestClass::A),
            0,
            r,
        )?;
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(convert::etag(&p.etag)),
                last_modified: Some(convert::timestamp(p.last_modified)),
                ..Default::default()
            }),
            copy_source_version_id: src_version,
            server_side_encryption: sse(),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let caller = self.caller(&req)?;
        let i = req.input;
        let parts = i
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                Ok(CompletedPart {
                    part_number: p
                        .part_number
                        .filter(|n| *n > 0)
                        .ok_or_else(|| s3_error!(MalformedXML, "A part has no PartNumber"))?
                        as u32,
                    etag: p
                        .e_tag
                        .map(|e| e.value().to_owned())
                        .ok_or_else(|| s3_error!(MalformedXML, "A part has no ETag"))?,
                })
            })
            .collect::<S3Result<Vec<_>>>()?;
        let r = self
            .storage
            .complete_multipart_upload(
                &caller,
                &i.bucket,
                &i.key,
                &i.upload_id,
                parts,
                &convert::write_condition(i.if_match, i.if_none_match)?,
            )
            .await
            .map(|o| (o, 0));
        let o = self.log(
            &caller,
            entry(
                "CompleteMultipartUpload",
                &i.bucket,
                Some(&i.key),
                RequestClass::A,
            ),
            0,
            r,
        )?;
        let c = convert::checksum_fields(o.checksum.as_ref());
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(i.bucket.clone()),
            key: Some(i.key.clone()),
            location: Some(format!("/{}/{}", i.bucket, i.key)),
            e_tag: Some(convert::etag(&o.etag)),
            version_id: o.version_id,
            checksum_crc32: c.crc32,
            checksum_crc32c: c.crc32c,
            checksum_crc64nvme: c.crc64nvme,
            checksum_sha1: c.sha1,
            checksum_sha256: c.sha256,
            checksum_type: c.kind,
            server_side_encryption: sse(),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let caller = self.caller(&req)?;
        let i = req.input;
        let r = self
            .storage
            .abort_multipart_upload(&caller, &i.bucket, &i.key, &i.upload_id)
            .await
            .map(|o| (o, 0));
        self.log(
            &caller,
            entry(
                "AbortMultipartUpload",
                &i.bucket,
                Some(&i.key),
                RequestClass::Free,
            ),
            0,
            r,
        )?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let caller = self.caller(&req)?;
        let i = req.input;
        let max = max_keys(i.max_uploads)?;
        let prefix = i.prefix.clone().unwrap_or_default();
        let l = self.done(
            &caller,
            entry("ListMultipartUploads", &i.bucket, None, RequestClass::A),
            self.storage
                .list_multipart_uploads(
                    &caller,
                    &i.bucket,
                    &prefix,
                    i.key_marker.as_deref(),
                    i.upload_id_marker.as_deref(),
                    max,
                )
                .await,
        )?;
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(i.bucket),
            prefix: Some(prefix),
            key_marker: i.key_marker,
            upload_id_marker: i.upload_id_marker,
            max_uploads: Some(max as i32),
            is_truncated: Some(l.truncated),
            next_key_marker: l.truncated.then_some(l.next_key).flatten(),
            next_upload_id_marker: l.truncated.then_some(l.next_upload).flatten(),
            uploads: Some(
                l.uploads
                    .into_iter()
                    .map(|u| MultipartUpload {
                        key: Some(u.key),
                        upload_id: Some(u.upload_id),
                        initiated: Some(convert::timestamp(u.initiated)),
                        storage_class: Some(StorageClass::from("STANDARD".to_owned())),
                        checksum_algorithm: u
                            .checksum_algorithm
                            .map(|a| ChecksumAlgorithm::from(a.name().to_owned())),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let caller = self.caller(&req)?;
        let i = req.input;
        let max = max_keys(i.max_parts)?;
        let after = i.part_number_marker.unwrap_or(0).max(0) as u32;
        let (u, parts, truncated) = self.done(
            &caller,
            entry("ListParts", &i.bucket, Some(&i.key), RequestClass::A),
            self.storage
                .list_parts(&caller, &i.bucket, &i.key, &i.upload_id, after, max)
                .await,
        )?;
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(i.bucket),
            key: Some(i.key),
            upload_id: Some(u.upload_id),
            max_parts: Some(max as i32),
            part_number_marker: i.part_number_marker,
            is_truncated: Some(truncated),
            next_part_number_marker: parts
                .last()
                .filter(|_| truncated)
                .map(|p| p.part_number as i32),
            checksum_algorithm: u
                .checksum_algorithm
                .map(|a| ChecksumAlgorithm::from(a.name().to_owned())),
            storage_class: Some(StorageClass::from("STANDARD".to_owned())),
            parts: Some(
                parts
                    .into_iter()
                    .map(|p| {
                        let stored = match (u.checksum_algorithm, p.checksum) {
                            (Some(a), Some(v)) => {
                                Some(nuage_service::storage::objects::StoredChecksum {
                                    algorithm: a,
                                    value: v,
                                    composite: false,
                                })
                            }
                            _ => None,
                        };
                        let c = convert::checksum_fields(stored.as_ref());
                        Part {
                            part_number: Some(p.part_number as i32),
                            e_tag: Some(convert::etag(&p.etag)),
                            size: Some(p.size as i64),
                            last_modified: Some(convert::timestamp(p.last_modified)),
                            checksum_crc32: c.crc32,
                            checksum_crc32c: c.crc32c,
                            checksum_crc64nvme: c.crc64nvme,
                            checksum_sha1: c.sha1,
                            checksum_sha256: c.sha256,
                        }
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }
}

/// An object as listings show it.
fn listed(o: nuage_service::storage::ObjectInfo, enc: &impl Fn(String) -> String) -> Object {
    Object {
        key: Some(enc(o.key)),
        size: Some(o.size as i64),
        e_tag: Some(convert::etag(&o.etag)),
        last_modified: Some(convert::timestamp(o.last_modified)),
        storage_class: Some(ObjectStorageClass::from("STANDARD".to_owned())),
        ..Default::default()
    }
}

fn common_prefixes(prefixes: Vec<String>, enc: &impl Fn(String) -> String) -> Vec<CommonPrefix> {
    prefixes
        .into_iter()
        .map(|p| CommonPrefix {
            prefix: Some(enc(p)),
        })
        .collect()
}

fn encode_token(key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.as_bytes())
}

fn decode_token(token: &str) -> S3Result<String> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "The continuation token provided is incorrect"
            )
        })
}
