//! Buckets: create, look up, delete, list, locate.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::{Call, NuageS3};
use crate::convert::{self, storage as err};

pub(super) async fn create_bucket(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    let i = req.input;
    let ownership = super::acl::ownership_in(i.object_ownership.as_ref())?;
    let acl =
        super::acl::acl_request!(i, write, None).stored_grants(&call.caller.org.to_string())?;
    let region = i
        .create_bucket_configuration
        .and_then(|c| c.location_constraint)
        .map(|l| l.as_str().to_owned());
    call.done(
        s3.storage
            .create_bucket(
                &call.caller,
                &i.bucket,
                region.as_deref(),
                nuage_storage::NewBucket {
                    object_lock: i.object_lock_enabled_for_bucket.unwrap_or(false),
                    ownership,
                    acl,
                },
            )
            .await,
    )?;
    Ok(S3Response::new(CreateBucketOutput {
        location: Some(format!("/{}", i.bucket)),
    }))
}

pub(super) async fn head_bucket(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<HeadBucketInput>,
) -> S3Result<S3Response<HeadBucketOutput>> {
    let b = call.done(
        s3.storage
            .head_bucket(&call.caller, &req.input.bucket)
            .await,
    )?;
    Ok(S3Response::new(HeadBucketOutput {
        bucket_region: Some(b.region),
        ..Default::default()
    }))
}

pub(super) async fn delete_bucket(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<DeleteBucketInput>,
) -> S3Result<S3Response<DeleteBucketOutput>> {
    call.done(
        s3.storage
            .delete_bucket(&call.caller, &req.input.bucket)
            .await,
    )?;
    Ok(S3Response::new(DeleteBucketOutput {}))
}

pub(super) async fn list_buckets(
    s3: &NuageS3,
    req: S3Request<ListBucketsInput>,
) -> S3Result<S3Response<ListBucketsOutput>> {
    let caller = s3.caller(&req)?;
    let buckets = s3.storage.list_buckets(&caller).await.map_err(err)?;
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
        owner: Some(super::owner(&caller)),
        ..Default::default()
    }))
}

pub(super) async fn get_bucket_location(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    let region = call.done(
        s3.storage
            .bucket_region(&call.caller, &req.input.bucket)
            .await,
    )?;
    Ok(S3Response::new(GetBucketLocationOutput {
        location_constraint: Some(BucketLocationConstraint::from(region.name)),
    }))
}
