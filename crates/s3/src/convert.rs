//! Conversions between `s3s` types and the storage use cases' types.

use std::collections::BTreeMap;

use base64::Engine;
use futures::TryStreamExt;
use nuage_domain::website;
use nuage_storage::objects::{ChecksumAlgorithm, ChecksumInput, ObjectHeaders, StoredChecksum};
use nuage_storage::{BodyStream, ByteRange, Conditions, CustomerKey, StorageError};
use s3s::dto::{
    Condition, ETag, ETagCondition, ErrorDocument, GetBucketWebsiteOutput, IndexDocument, Protocol,
    Range, Redirect, RedirectAllRequestsTo, RoutingRule, StreamingBlob, Timestamp,
    WebsiteConfiguration,
};
use s3s::{S3Error, s3_error};

pub fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from(
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
    )
}

pub fn millis(t: Timestamp) -> i64 {
    (time::OffsetDateTime::from(t).unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn etag(value: &str) -> ETag {
    ETag::Strong(value.to_owned())
}

/// The condition of a conditional write (`If-Match`, `If-None-Match: *`).
pub fn write_condition(
    if_match: Option<ETagCondition>,
    if_none_match: Option<ETagCondition>,
) -> s3s::S3Result<nuage_storage::WriteCondition> {
    nuage_storage::WriteCondition::parse(
        condition(if_match).as_deref(),
        condition(if_none_match).as_deref(),
    )
    .map_err(crate::error::s3)
}

pub fn condition(c: Option<ETagCondition>) -> Option<String> {
    c.map(|c| match c {
        ETagCondition::Any => "*".to_owned(),
        ETagCondition::ETag(e) => e.value().to_owned(),
    })
}

pub fn conditions(
    if_match: Option<ETagCondition>,
    if_none_match: Option<ETagCondition>,
    if_modified_since: Option<Timestamp>,
    if_unmodified_since: Option<Timestamp>,
) -> Conditions {
    Conditions {
        if_match: condition(if_match),
        if_none_match: condition(if_none_match),
        if_modified_since: if_modified_since.map(millis),
        if_unmodified_since: if_unmodified_since.map(millis),
    }
}

pub fn range(r: Option<Range>) -> Option<ByteRange> {
    r.map(|r| match r {
        Range::Int { first, last } => ByteRange::FromTo(first, last),
        Range::Suffix { length } => ByteRange::Suffix(length),
    })
}

pub fn body_in(blob: Option<StreamingBlob>) -> BodyStream {
    match blob {
        Some(b) => Box::pin(b.map_err(|e| std::io::Error::other(e.to_string()))),
        None => Box::pin(futures::stream::empty()),
    }
}

pub fn body_out(stream: BodyStream) -> StreamingBlob {
    StreamingBlob::wrap(SyncBody(std::sync::Mutex::new(stream)))
}

/// `s3s` wants a body it can share between threads; it is only ever polled
/// by one, so a lock that is never contended makes it so.
struct SyncBody(std::sync::Mutex<BodyStream>);

impl futures::Stream for SyncBody {
    type Item = Result<bytes::Bytes, std::io::Error>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        match self.get_mut().0.get_mut() {
            Ok(s) => s.as_mut().poll_next(cx),
            Err(_) => std::task::Poll::Ready(None),
        }
    }
}

/// Headers stored with an object, from a request's fields.
#[allow(clippy::too_many_arguments)]
pub fn headers(
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    expires: Option<Timestamp>,
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<ObjectHeaders, S3Error> {
    let metadata: BTreeMap<String, String> = metadata
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let size: usize = metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > 2048 {
        return Err(s3_error!(
            MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size (2 KB)."
        ));
    }
    let expires = expires.map(|t| {
        let mut buf = Vec::new();
        let _ = t.format(s3s::dto::TimestampFormat::HttpDate, &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    });
    Ok(ObjectHeaders {
        content_type,
        content_encoding,
        content_disposition,
        content_language,
        cache_control,
        expires,
        metadata,
    })
}

pub fn expires(value: Option<&str>) -> Option<Timestamp> {
    value.and_then(|v| Timestamp::parse(s3s::dto::TimestampFormat::HttpDate, v).ok())
}

/// The tags of an `x-amz-tagging` header (URL-encoded `k=v&k2=v2`).
pub fn tagging_header(value: Option<&str>) -> Result<Vec<(String, String)>, S3Error> {
    match value {
        None | Some("") => Ok(Vec::new()),
        Some(v) => serde_urlencoded_pairs(v).ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "The x-amz-tagging header is not URL-encoded pairs"
            )
        }),
    }
}

fn serde_urlencoded_pairs(v: &str) -> Option<Vec<(String, String)>> {
    v.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, val) = pair.split_once('=').unwrap_or((pair, ""));
            Some((decode(k)?, decode(val)?))
        })
        .collect()
}

fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b'%' => return None,
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// URL-encodes a key as S3 does for `encoding-type=url`.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The checksum a request declares, in headers or in the trailer.
#[allow(clippy::too_many_arguments)]
pub fn checksum_input(
    headers: &http::HeaderMap,
    trailing: Option<s3s::TrailingHeaders>,
    algorithm: Option<&str>,
    crc32: Option<String>,
    crc32c: Option<String>,
    crc64nvme: Option<String>,
    sha1: Option<String>,
    sha256: Option<String>,
) -> Result<ChecksumInput, S3Error> {
    let declared = [
        (ChecksumAlgorithm::Crc32, crc32),
        (ChecksumAlgorithm::Crc32c, crc32c),
        (ChecksumAlgorithm::Crc64Nvme, crc64nvme),
        (ChecksumAlgorithm::Sha1, sha1),
        (ChecksumAlgorithm::Sha256, sha256),
    ];
    let mut given = declared.into_iter().filter_map(|(a, v)| v.map(|v| (a, v)));
    let first = given.next();
    if given.next().is_some() {
        return Err(s3_error!(
            InvalidRequest,
            "Expecting a single x-amz-checksum- header"
        ));
    }
    if let Some((a, v)) = first {
        return Ok(ChecksumInput {
            algorithm: Some(a),
            expected: Some(v),
            trailer: None,
        });
    }
    let trailer_name = headers
        .get("x-amz-trailer")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    if let Some(name) = trailer_name.filter(|n| n.starts_with("x-amz-checksum-")) {
        let algorithm =
            ChecksumAlgorithm::parse(&name["x-amz-checksum-".len()..]).ok_or_else(|| {
                s3_error!(
                    InvalidRequest,
                    "The trailer {name} is not a supported checksum"
                )
            })?;
        let read = move || {
            trailing.and_then(|t| t.take()).and_then(|h| {
                h.get(name.as_str())
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            })
        };
        return Ok(ChecksumInput {
            algorithm: Some(algorithm),
            expected: None,
            trailer: Some(Box::new(read)),
        });
    }
    let algorithm =
        match algorithm {
            Some(a) => Some(ChecksumAlgorithm::parse(a).ok_or_else(|| {
                s3_error!(InvalidRequest, "Checksum algorithm {a} is not supported")
            })?),
            None => None,
        };
    Ok(ChecksumInput {
        algorithm,
        expected: None,
        trailer: None,
    })
}

/// The checksum fields of a response.
#[derive(Default)]
pub struct ChecksumFields {
    pub crc32: Option<String>,
    pub crc32c: Option<String>,
    pub crc64nvme: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    pub kind: Option<s3s::dto::ChecksumType>,
}

pub fn checksum_fields(c: Option<&StoredChecksum>) -> ChecksumFields {
    let mut f = ChecksumFields::default();
    if let Some(c) = c {
        let v = Some(c.value.clone());
        match c.algorithm {
            ChecksumAlgorithm::Crc32 => f.crc32 = v,
            ChecksumAlgorithm::Crc32c => f.crc32c = v,
            ChecksumAlgorithm::Crc64Nvme => f.crc64nvme = v,
            ChecksumAlgorithm::Sha1 => f.sha1 = v,
            ChecksumAlgorithm::Sha256 => f.sha256 = v,
        }
        f.kind = Some(s3s::dto::ChecksumType::from(
            if c.composite {
                "COMPOSITE"
            } else {
                "FULL_OBJECT"
            }
            .to_owned(),
        ));
    }
    f
}

/// An SSE-C key from a request's three headers.
pub fn customer_key(
    algorithm: Option<&str>,
    key: Option<&str>,
    key_md5: Option<&str>,
) -> Result<Option<CustomerKey>, S3Error> {
    let (Some(algorithm), Some(key)) = (algorithm, key) else {
        if key.is_some() || key_md5.is_some() {
            return Err(s3_error!(
                InvalidArgument,
                "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key and algorithm."
            ));
        }
        return Ok(None);
    };
    if algorithm != "AES256" {
        return Err(s3_error!(
            InvalidArgument,
            "The encryption algorithm must be AES256."
        ));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let raw: [u8; 32] = b64
        .decode(key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "The secret key was invalid for the specified algorithm."
            )
        })?;
    let md5 = {
        use md5::Digest;
        b64.encode(md5::Md5::digest(raw))
    };
    if key_md5.is_some_and(|m| m != md5) {
        return Err(s3_error!(
            InvalidArgument,
            "The calculated MD5 hash of the key did not match the hash that was provided."
        ));
    }
    Ok(Some(CustomerKey {
        key: raw,
        key_md5: md5,
    }))
}

pub fn storage(e: StorageError) -> S3Error {
    crate::error::s3(e)
}

/// An S3 website configuration as the domain reads it; a code that is not
/// a number is a malformed document.
pub fn website_in(c: WebsiteConfiguration) -> Result<website::WebsiteConfig, S3Error> {
    let code = |value: Option<String>| -> Result<Option<u16>, S3Error> {
        value
            .map(|v| {
                v.trim()
                    .parse::<u16>()
                    .map_err(|_| s3_error!(MalformedXML, "{v:?} is not an HTTP status code"))
            })
            .transpose()
    };
    let mut rules = Vec::new();
    for r in c.routing_rules.unwrap_or_default() {
        let condition = r.condition.unwrap_or_default();
        rules.push(website::RoutingRule {
            key_prefix_equals: condition.key_prefix_equals,
            http_error_code_returned_equals: code(condition.http_error_code_returned_equals)?,
            redirect: website::Redirect {
                host_name: r.redirect.host_name,
                protocol: r.redirect.protocol.map(|p| p.as_str().to_owned()),
                replace_key_prefix_with: r.redirect.replace_key_prefix_with,
                replace_key_with: r.redirect.replace_key_with,
                http_redirect_code: code(r.redirect.http_redirect_code)?,
            },
        });
    }
    Ok(website::WebsiteConfig {
        index_suffix: c.index_document.map(|d| d.suffix),
        error_key: c.error_document.map(|d| d.key),
        redirect_all: c.redirect_all_requests_to.map(|r| website::RedirectAll {
            host_name: r.host_name,
            protocol: r.protocol.map(|p| p.as_str().to_owned()),
        }),
        routing_rules: rules,
    })
}

/// The domain's website configuration as S3 returns it.
pub fn website_out(c: website::WebsiteConfig) -> GetBucketWebsiteOutput {
    GetBucketWebsiteOutput {
        index_document: c.index_suffix.map(|suffix| IndexDocument { suffix }),
        error_document: c.error_key.map(|key| ErrorDocument { key }),
        redirect_all_requests_to: c.redirect_all.map(|r| RedirectAllRequestsTo {
            host_name: r.host_name,
            protocol: r.protocol.map(Protocol::from),
        }),
        routing_rules: Some(
            c.routing_rules
                .into_iter()
                .map(|r| RoutingRule {
                    condition: (r.key_prefix_equals.is_some()
                        || r.http_error_code_returned_equals.is_some())
                    .then(|| Condition {
                        key_prefix_equals: r.key_prefix_equals,
                        http_error_code_returned_equals: r
                            .http_error_code_returned_equals
                            .map(|c| c.to_string()),
                    }),
                    redirect: Redirect {
                        host_name: r.redirect.host_name,
                        protocol: r.redirect.protocol.map(Protocol::from),
                        replace_key_prefix_with: r.redirect.replace_key_prefix_with,
                        replace_key_with: r.redirect.replace_key_with,
                        http_redirect_code: r.redirect.http_redirect_code.map(|c| c.to_string()),
                    },
                })
                .collect(),
        )
        .filter(|rules: &Vec<RoutingRule>| !rules.is_empty()),
    }
}
