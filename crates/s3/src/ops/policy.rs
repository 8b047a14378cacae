//! Bucket policies and Block Public Access: managed by the bucket's owner
//! only; what they allow is decided by [`NuageS3::call`](super::NuageS3).

use nuage_domain::bucket_policy::PublicAccessBlock;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::{Call, NuageS3};

pub(super) async fn get_bucket_policy(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<GetBucketPolicyInput>,
) -> S3Result<S3Response<GetBucketPolicyOutput>> {
    let policy = call.done(
        s3.storage
            .bucket_policy(&call.caller, &req.input.bucket)
            .await,
    )?;
    Ok(S3Response::new(GetBucketPolicyOutput {
        policy: Some(policy),
    }))
}

pub(super) async fn put_bucket_policy(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<PutBucketPolicyInput>,
) -> S3Result<S3Response<PutBucketPolicyOutput>> {
    let i = &req.input;
    call.done(
        s3.storage
            .set_bucket_policy(&call.caller, &i.bucket, &i.policy)
            .await,
    )?;
    Ok(S3Response::new(PutBucketPolicyOutput::default()))
}

pub(super) async fn delete_bucket_policy(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<DeleteBucketPolicyInput>,
) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
    call.done(
        s3.storage
            .delete_bucket_policy(&call.caller, &req.input.bucket)
            .await,
    )?;
    Ok(S3Response::new(DeleteBucketPolicyOutput::default()))
}

pub(super) async fn get_bucket_policy_status(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<GetBucketPolicyStatusInput>,
) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
    let public = call.done(
        s3.storage
            .bucket_policy_is_public(&call.caller, &req.input.bucket)
            .await,
    )?;
    Ok(S3Response::new(GetBucketPolicyStatusOutput {
        policy_status: Some(PolicyStatus {
            is_public: Some(public),
        }),
    }))
}

pub(super) async fn get_public_access_block(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<GetPublicAccessBlockInput>,
) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
    let b = call.done(
        s3.storage
            .public_access_block(&call.caller, &req.input.bucket)
            .await,
    )?;
    Ok(S3Response::new(GetPublicAccessBlockOutput {
        public_access_block_configuration: Some(PublicAccessBlockConfiguration {
            block_public_acls: Some(b.block_public_acls),
            block_public_policy: Some(b.block_public_policy),
            ignore_public_acls: Some(b.ignore_public_acls),
            restrict_public_buckets: Some(b.restrict_public_buckets),
        }),
    }))
}

pub(super) async fn put_public_access_block(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<PutPublicAccessBlockInput>,
) -> S3Result<S3Response<PutPublicAccessBlockOutput>> {
    let c = &req.input.public_access_block_configuration;
    // A switch left out is off, as on AWS.
    let block = PublicAccessBlock {
        block_public_acls: c.block_public_acls.unwrap_or(false),
        ignore_public_acls: c.ignore_public_acls.unwrap_or(false),
        block_public_policy: c.block_public_policy.unwrap_or(false),
        restrict_public_buckets: c.restrict_public_buckets.unwrap_or(false),
    };
    call.done(
        s3.storage
            .set_public_access_block(&call.caller, &req.input.bucket, block)
            .await,
    )?;
    Ok(S3Response::new(PutPublicAccessBlockOutput::default()))
}

/// Turns every switch of the bucket off (its organisation's and region's
/// still hold).
pub(super) async fn delete_public_access_block(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<DeletePublicAccessBlockInput>,
) -> S3Result<S3Response<DeletePublicAccessBlockOutput>> {
    call.done(
        s3.storage
            .set_public_access_block(&call.caller, &req.input.bucket, PublicAccessBlock::NONE)
            .await,
    )?;
    Ok(S3Response::new(DeletePublicAccessBlockOutput::default()))
}
