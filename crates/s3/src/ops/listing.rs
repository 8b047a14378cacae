//! Listings of a bucket's objects and versions.

use nuage_storage::ListQuery;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::{Call, NuageS3, max_keys, owner};
use crate::convert;

pub(super) async fn list_objects(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<ListObjectsInput>,
) -> S3Result<S3Response<ListObjectsOutput>> {
    let mut i = req.input;
    i.delimiter = given(i.delimiter);
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
    let l = call.done(s3.storage.list_objects(&call.caller, &i.bucket, &q).await)?;
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
        contents: Some(
            l.objects
                .into_iter()
                .map(|o| listed(o, &enc, Some(owner(&call.caller))))
                .collect(),
        ),
        common_prefixes: Some(common_prefixes(l.prefixes, &enc)),
        ..Default::default()
    }))
}

pub(super) async fn list_objects_v2(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<ListObjectsV2Input>,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let mut i = req.input;
    i.delimiter = given(i.delimiter);
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
    let l = call.done(s3.storage.list_objects(&call.caller, &i.bucket, &q).await)?;
    let count = l.objects.len() + l.prefixes.len();
    let fetch_owner = i.fetch_owner.unwrap_or(false);
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
        contents: Some(
            l.objects
                .into_iter()
                .map(|o| listed(o, &enc, fetch_owner.then(|| owner(&call.caller))))
                .collect(),
        ),
        common_prefixes: Some(common_prefixes(l.prefixes, &enc)),
        ..Default::default()
    }))
}

pub(super) async fn list_object_versions(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<ListObjectVersionsInput>,
) -> S3Result<S3Response<ListObjectVersionsOutput>> {
    let mut i = req.input;
    i.delimiter = given(i.delimiter);
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
    let l = call.done(s3.storage.list_versions(&call.caller, &i.bucket, &q).await)?;
    let mut versions = Vec::new();
    let mut markers = Vec::new();
    for v in l.versions {
        if v.delete_marker {
            markers.push(DeleteMarkerEntry {
                key: Some(enc(v.key)),
                version_id: Some(v.version_id),
                is_latest: Some(v.is_latest),
                last_modified: Some(convert::timestamp(v.last_modified)),
                owner: Some(owner(&call.caller)),
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
                owner: Some(owner(&call.caller)),
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

/// A delimiter as AWS reads it: an empty one is none (not grouped, not
/// echoed).
fn given(delimiter: Option<String>) -> Option<String> {
    delimiter.filter(|d| !d.is_empty())
}

/// An object as listings show it (with its owner when asked).
fn listed(
    o: nuage_storage::ObjectInfo,
    enc: &impl Fn(String) -> String,
    owner: Option<Owner>,
) -> Object {
    Object {
        owner,
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
