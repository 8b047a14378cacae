//! A bucket's settings: versioning, tags, CORS, website, lifecycle.

use nuage_domain::storage::{CorsRule, LifecycleRule};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::{Call, NuageS3, tags_in, tags_out};
use crate::convert;

pub(super) async fn get_bucket_versioning(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<GetBucketVersioningInput>,
) -> S3Result<S3Response<GetBucketVersioningOutput>> {
    let v = call.done(s3.storage.versioning(&call.caller, &req.input.bucket).await)?;
    Ok(S3Response::new(GetBucketVersioningOutput {
        status: v
            .as_stored()
            .map(|s| BucketVersioningStatus::from(s.to_owned())),
        ..Default::default()
    }))
}

pub(super) async fn put_bucket_versioning(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<PutBucketVersioningInput>,
) -> S3Result<S3Response<PutBucketVersioningOutput>> {
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
    call.done(
        s3.storage
            .set_versioning(&call.caller, &req.input.bucket, enabled)
            .await,
    )?;
    Ok(S3Response::new(PutBucketVersioningOutput {}))
}

pub(super) async fn get_bucket_tagging(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<GetBucketTaggingInput>,
) -> S3Result<S3Response<GetBucketTaggingOutput>> {
    let tags = call.done(
        s3.storage
            .bucket_tags(&call.caller, &req.input.bucket)
            .await,
    )?;
    Ok(S3Response::new(GetBucketTaggingOutput {
        tag_set: tags_out(tags),
    }))
}

pub(super) async fn put_bucket_tagging(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<PutBucketTaggingInput>,
) -> S3Result<S3Response<PutBucketTaggingOutput>> {
    let tags = tags_in(req.input.tagging.tag_set);
    call.done(
        s3.storage
            .set_bucket_tags(&call.caller, &req.input.bucket, Some(tags))
            .await,
    )?;
    Ok(S3Response::new(PutBucketTaggingOutput {}))
}

pub(super) async fn delete_bucket_tagging(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<DeleteBucketTaggingInput>,
) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
    call.done(
        s3.storage
            .set_bucket_tags(&call.caller, &req.input.bucket, None)
            .await,
    )?;
    Ok(S3Response::new(DeleteBucketTaggingOutput {}))
}

pub(super) async fn get_bucket_cors(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<GetBucketCorsInput>,
) -> S3Result<S3Response<GetBucketCorsOutput>> {
    let rules = call.done(s3.storage.cors(&call.caller, &req.input.bucket).await)?;
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

pub(super) async fn put_bucket_cors(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<PutBucketCorsInput>,
) -> S3Result<S3Response<PutBucketCorsOutput>> {
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
    call.done(
        s3.storage
            .set_cors(&call.caller, &req.input.bucket, Some(rules))
            .await,
    )?;
    Ok(S3Response::new(PutBucketCorsOutput {}))
}

pub(super) async fn delete_bucket_cors(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<DeleteBucketCorsInput>,
) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
    call.done(
        s3.storage
            .set_cors(&call.caller, &req.input.bucket, None)
            .await,
    )?;
    Ok(S3Response::new(DeleteBucketCorsOutput {}))
}

pub(super) async fn get_bucket_website(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<GetBucketWebsiteInput>,
) -> S3Result<S3Response<GetBucketWebsiteOutput>> {
    let config = call.done(s3.storage.website(&call.caller, &req.input.bucket).await)?;
    Ok(S3Response::new(convert::website_out(config)))
}

pub(super) async fn put_bucket_website(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<PutBucketWebsiteInput>,
) -> S3Result<S3Response<PutBucketWebsiteOutput>> {
    let config = convert::website_in(req.input.website_configuration)?;
    call.done(
        s3.storage
            .set_website(&call.caller, &req.input.bucket, Some(config))
            .await,
    )?;
    Ok(S3Response::new(PutBucketWebsiteOutput {}))
}

pub(super) async fn delete_bucket_website(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<DeleteBucketWebsiteInput>,
) -> S3Result<S3Response<DeleteBucketWebsiteOutput>> {
    call.done(
        s3.storage
            .set_website(&call.caller, &req.input.bucket, None)
            .await,
    )?;
    Ok(S3Response::new(DeleteBucketWebsiteOutput {}))
}

pub(super) async fn get_bucket_lifecycle_configuration(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<GetBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
    let rules = call.done(s3.storage.lifecycle(&call.caller, &req.input.bucket).await)?;
    Ok(S3Response::new(GetBucketLifecycleConfigurationOutput {
        rules: Some(lifecycle_out(rules)),
        ..Default::default()
    }))
}

pub(super) async fn put_bucket_lifecycle_configuration(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<PutBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
    let rules = lifecycle_in(
        req.input
            .lifecycle_configuration
            .map(|c| c.rules)
            .unwrap_or_default(),
    )?;
    call.done(
        s3.storage
            .set_lifecycle(&call.caller, &req.input.bucket, Some(rules))
            .await,
    )?;
    Ok(S3Response::new(
        PutBucketLifecycleConfigurationOutput::default(),
    ))
}

pub(super) async fn delete_bucket_lifecycle(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<DeleteBucketLifecycleInput>,
) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
    call.done(
        s3.storage
            .set_lifecycle(&call.caller, &req.input.bucket, None)
            .await,
    )?;
    Ok(S3Response::new(DeleteBucketLifecycleOutput {}))
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
