//! Objects: write, read, look up, delete, copy, tags.

use nuage_storage::{CopyObject, GetObject};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::acl::acl_request;
use super::{Call, NuageS3, SSE, copy_source, object_lock, sse, tags_in, tags_out};
use crate::convert;

pub(super) async fn put_object(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<PutObjectInput>,
) -> S3Result<S3Response<PutObjectOutput>> {
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
    let acl = acl_request!(i).stored_grants(&call.caller.org.to_string())?;
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
    let lock = object_lock::lock_request!(i)?;
    object_lock::refuse_for_grantee(&call, &lock)?;
    object_lock::require_digest(&lock, i.content_md5.is_some(), checksum.algorithm.is_some())?;
    let length = i.content_length.map(|l| l.max(0) as u64);
    let r = s3
        .storage
        .put_object(
            &call.caller,
            nuage_storage::PutObject {
                bucket: i.bucket.clone(),
                key: i.key.clone(),
                headers,
                tags,
                content_length: length,
                content_md5: i.content_md5,
                checksum,
                customer_key,
                condition,
                lock,
                acl,
                body: convert::body_in(i.body),
            },
        )
        .await
        .map(|o| (o, 0));
    let o = call.moved(length.unwrap_or(0), r)?;
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

pub(super) async fn get_object(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<GetObjectInput>,
) -> S3Result<S3Response<GetObjectOutput>> {
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
    let r = s3.storage.get_object(&call.caller, get).await.map(|o| {
        let n = o.content_length;
        (o, n)
    });
    let o = call.moved(0, r)?;
    let info = o.info;
    let c = if o.range.is_none() {
        convert::checksum_fields(info.checksum.as_ref())
    } else {
        convert::ChecksumFields::default()
    };
    let h = info.headers;
    let (object_lock_mode, object_lock_retain_until_date, object_lock_legal_hold_status) =
        object_lock::lock_out(&info.lock);
    Ok(S3Response::new(GetObjectOutput {
        object_lock_mode,
        object_lock_retain_until_date,
        object_lock_legal_hold_status,
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

pub(super) async fn head_object(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<HeadObjectInput>,
) -> S3Result<S3Response<HeadObjectOutput>> {
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
    let info = call.done(s3.storage.head_object(&call.caller, &get).await)?;
    let c = convert::checksum_fields(info.checksum.as_ref());
    let h = info.headers;
    let (object_lock_mode, object_lock_retain_until_date, object_lock_legal_hold_status) =
        object_lock::lock_out(&info.lock);
    Ok(S3Response::new(HeadObjectOutput {
        object_lock_mode,
        object_lock_retain_until_date,
        object_lock_legal_hold_status,
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

/// What `GetObjectAttributes` asks of an object: only the attributes
/// named, as AWS answers (the parts' count for an object
/// completed from several parts).
pub(super) async fn get_object_attributes(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<GetObjectAttributesInput>,
) -> S3Result<S3Response<GetObjectAttributesOutput>> {
    let i = req.input;
    let customer_key = convert::customer_key(
        i.sse_customer_algorithm.as_deref(),
        i.sse_customer_key.as_deref(),
        i.sse_customer_key_md5.as_deref(),
    )?;
    let wanted = |name: &str| i.object_attributes.iter().any(|a| a.as_str() == name);
    let get = GetObject {
        bucket: i.bucket.clone(),
        key: i.key.clone(),
        version_id: i.version_id,
        range: None,
        part_number: None,
        conditions: convert::conditions(None, None, None, None),
        customer_key,
    };
    let info = call.done(s3.storage.head_object(&call.caller, &get).await)?;
    let c = convert::checksum_fields(info.checksum.as_ref());
    let checksum = Checksum {
        checksum_crc32: c.crc32,
        checksum_crc32c: c.crc32c,
        checksum_crc64nvme: c.crc64nvme,
        checksum_sha1: c.sha1,
        checksum_sha256: c.sha256,
        checksum_type: c.kind,
    };
    let has_checksum = info.checksum.is_some();
    Ok(S3Response::new(GetObjectAttributesOutput {
        last_modified: Some(convert::timestamp(info.last_modified)),
        version_id: Some(info.version_id),
        e_tag: wanted(ObjectAttributes::ETAG).then(|| convert::etag(&info.etag)),
        checksum: (wanted(ObjectAttributes::CHECKSUM) && has_checksum).then_some(checksum),
        object_parts: (wanted(ObjectAttributes::OBJECT_PARTS) && info.parts > 1).then(|| {
            GetObjectAttributesParts {
                total_parts_count: Some(info.parts as i32),
                ..Default::default()
            }
        }),
        object_size: wanted(ObjectAttributes::OBJECT_SIZE).then_some(info.size as i64),
        storage_class: wanted(ObjectAttributes::STORAGE_CLASS)
            .then(|| StorageClass::from("STANDARD".to_owned())),
        ..Default::default()
    }))
}

pub(super) async fn delete_object(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    let bypass = s3
        .may_bypass(
            &req,
            &call,
            &req.input.key,
            req.input.bypass_governance_retention,
        )
        .await?;
    let i = req.input;
    let o = call.done(
        s3.storage
            .delete_object(
                &call.caller,
                &i.bucket,
                &i.key,
                i.version_id.as_deref(),
                bypass,
            )
            .await,
    )?;
    Ok(S3Response::new(DeleteObjectOutput {
        delete_marker: o.delete_marker.then_some(true),
        version_id: o.version_id,
        ..Default::default()
    }))
}

pub(super) async fn delete_objects(
    s3: &NuageS3,
    call: Call<'_>,
    mut req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let objects = std::mem::take(&mut req.input.delete.objects);
    let i = &req.input;
    let asked = i.bypass_governance_retention;
    if objects.len() > 1000 {
        return Err(s3_error!(
            MalformedXML,
            "A delete request names at most 1000 keys"
        ));
    }
    let quiet = i.delete.quiet.unwrap_or(false);
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    // Each key is authorised as a DeleteObject of its own: a policy
    // speaks of keys and versions, not of the batch.
    for o in objects {
        let one = match s3
            .call_on(
                &req,
                (call.op, call.class),
                &i.bucket,
                Some(&o.key),
                o.version_id.as_deref(),
            )
            .await
        {
            Ok(c) => c,
            Err(e) => {
                errors.push(s3s::dto::Error {
                    code: Some(e.code().as_str().to_owned()),
                    key: Some(o.key),
                    message: e.message().map(str::to_owned),
                    version_id: o.version_id,
                });
                continue;
            }
        };
        let r = s3
            .storage
            .delete_object(
                &one.caller,
                &i.bucket,
                &o.key,
                o.version_id.as_deref(),
                s3.may_bypass(&req, &one, &o.key, asked).await?,
            )
            .await
            .map(|d| (d, 0));
        match one.moved(0, r) {
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

pub(super) async fn copy_object(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<CopyObjectInput>,
) -> S3Result<S3Response<CopyObjectOutput>> {
    let i = req.input;
    refuse_copy_for_grantee(&call)?;
    let acl = acl_request!(i).stored_grants(&call.caller.org.to_string())?;
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
        acl,
        lock: object_lock::lock_request!(i)?,
    };
    let o = call.done(s3.storage.copy_object(&call.caller, copy).await)?;
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

pub(super) async fn get_object_tagging(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<GetObjectTaggingInput>,
) -> S3Result<S3Response<GetObjectTaggingOutput>> {
    let i = req.input;
    let (version, tags) = call.done(
        s3.storage
            .object_tags(&call.caller, &i.bucket, &i.key, i.version_id.as_deref())
            .await,
    )?;
    Ok(S3Response::new(GetObjectTaggingOutput {
        tag_set: tags_out(tags),
        version_id: Some(version),
    }))
}

pub(super) async fn put_object_tagging(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<PutObjectTaggingInput>,
) -> S3Result<S3Response<PutObjectTaggingOutput>> {
    let i = req.input;
    let version = call.done(
        s3.storage
            .set_object_tags(
                &call.caller,
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

pub(super) async fn delete_object_tagging(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<DeleteObjectTaggingInput>,
) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
    let i = req.input;
    let version = call.done(
        s3.storage
            .set_object_tags(
                &call.caller,
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

/// A copy reads its source as the bucket's owner would: one a policy
/// grants must be made with the owner's own keys.
pub(super) fn refuse_copy_for_grantee(call: &Call<'_>) -> S3Result<()> {
    if call.granted {
        return Err(s3_error!(
            AccessDenied,
            "Access Denied: copies into another organisation's bucket are made with its own keys"
        ));
    }
    Ok(())
}
