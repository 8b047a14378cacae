//! Multipart uploads: start, parts, complete, abort, list.

use nuage_storage::{CompletedPart, GetObject};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::{Call, NuageS3, SSE, copy_source, max_keys, sse};
use crate::convert;

pub(super) async fn create_multipart_upload(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let i = req.input;
    let acl = super::acl::acl_request!(i).stored_grants(&call.caller.org.to_string())?;
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
            nuage_storage::objects::ChecksumAlgorithm::parse(a.as_str())
                .ok_or_else(|| s3_error!(InvalidRequest, "Checksum algorithm is not supported"))?,
        ),
        None => None,
    };
    let tags = convert::tagging_header(i.tagging.as_deref())?;
    let lock = super::object_lock::lock_request!(i)?;
    super::object_lock::refuse_for_grantee(&call, &lock)?;
    let u = call.done(
        s3.storage
            .create_multipart_upload(
                &call.caller,
                nuage_storage::multipart::NewUpload {
                    bucket: i.bucket.clone(),
                    key: i.key.clone(),
                    headers,
                    tags,
                    checksum_algorithm: algorithm,
                    customer_key_md5: customer_key.as_ref().map(|k| k.key_md5.clone()),
                    lock,
                    acl,
                },
            )
            .await,
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

pub(super) async fn upload_part(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<UploadPartInput>,
) -> S3Result<S3Response<UploadPartOutput>> {
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
    let r = s3
        .storage
        .upload_part(
            &call.caller,
            nuage_storage::multipart::UploadPart {
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
    let p = call.moved(length.unwrap_or(0), r)?;
    let stored = match (algorithm, p.checksum) {
        (Some(a), Some(v)) => Some(nuage_storage::objects::StoredChecksum {
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

pub(super) async fn upload_part_copy(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<UploadPartCopyInput>,
) -> S3Result<S3Response<UploadPartCopyOutput>> {
    super::objects::refuse_copy_for_grantee(&call)?;
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
            Some(nuage_storage::ByteRange::FromTo(a, Some(b)))
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
    let key_md5 = customer_key.as_ref().map(|k| k.key_md5.clone());
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
    let p = call.done(
        s3.storage
            .upload_part_copy(
                &call.caller,
                nuage_storage::multipart::PartCopy {
                    bucket: i.bucket.clone(),
                    key: i.key.clone(),
                    upload_id: i.upload_id.clone(),
                    part_number: i.part_number.max(0) as u32,
                    source,
                    customer_key,
                },
            )
            .await,
    )?;
    Ok(S3Response::new(UploadPartCopyOutput {
        copy_part_result: Some(CopyPartResult {
            e_tag: Some(convert::etag(&p.etag)),
            last_modified: Some(convert::timestamp(p.last_modified)),
            ..Default::default()
        }),
        copy_source_version_id: src_version,
        // A part sealed with the customer's key says so, as UploadPart does.
        server_side_encryption: key_md5.is_none().then(sse).flatten(),
        sse_customer_algorithm: key_md5.as_ref().map(|_| SSE.to_owned()),
        sse_customer_key_md5: key_md5,
        ..Default::default()
    }))
}

pub(super) async fn complete_multipart_upload(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
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
    let o = call.done(
        s3.storage
            .complete_multipart_upload(
                &call.caller,
                &i.bucket,
                &i.key,
                &i.upload_id,
                parts,
                &convert::write_condition(i.if_match, i.if_none_match)?,
            )
            .await,
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

pub(super) async fn abort_multipart_upload(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let i = req.input;
    call.done(
        s3.storage
            .abort_multipart_upload(&call.caller, &i.bucket, &i.key, &i.upload_id)
            .await,
    )?;
    Ok(S3Response::new(AbortMultipartUploadOutput::default()))
}

pub(super) async fn list_multipart_uploads(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let i = req.input;
    let max = max_keys(i.max_uploads)?;
    let prefix = i.prefix.clone().unwrap_or_default();
    let l = call.done(
        s3.storage
            .list_multipart_uploads(
                &call.caller,
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

pub(super) async fn list_parts(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<ListPartsInput>,
) -> S3Result<S3Response<ListPartsOutput>> {
    let i = req.input;
    let max = max_keys(i.max_parts)?;
    let after = i.part_number_marker.unwrap_or(0).max(0) as u32;
    let (u, parts, truncated) = call.done(
        s3.storage
            .list_parts(&call.caller, &i.bucket, &i.key, &i.upload_id, after, max)
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
                        (Some(a), Some(v)) => Some(nuage_storage::objects::StoredChecksum {
                            algorithm: a,
                            value: v,
                            composite: false,
                        }),
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
