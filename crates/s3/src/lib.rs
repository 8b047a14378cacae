//! The S3 protocol of Nuage. The `s3s` crate parses requests, checks SigV4
//! signatures (headers, presigned URLs, browser POST policies) and writes
//! responses; this crate maps each S3 operation onto the storage use cases,
//! resolves the caller's organisation from its access key, maps storage
//! errors to S3 error codes (in [`error`], once), and records every request
//! in the organisation's access log and metering.

mod auth;
mod convert;
mod cors;
pub mod dates;
mod error;
pub mod form;
mod ops;
pub mod region;
pub mod throttle;

use std::net::SocketAddr;
use std::sync::Arc;

use nuage_storage::Storage;
pub use s3s::service::S3Service;
use s3s::service::S3ServiceBuilder;

pub use auth::KeyDirectory;
pub use cors::Cors;

/// The client's address, put in the request's extensions by the listener.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// Put in a request's extensions when it came over TLS (to the listener,
/// or to a trusted proxy that says so): what `aws:SecureTransport` reads.
#[derive(Debug, Clone, Copy)]
pub struct Secure;

/// Settings of the S3 protocol.
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// Unsigned requests to a bucket, served or refused, at most this many
    /// per second (beyond them, `503 SlowDown`).
    pub anonymous_requests_per_second: u32,
    /// With a root domain, `<bucket>.<root domain>` addresses a bucket too.
    pub root_domain: Option<String>,
    /// The largest file a browser form (`POST` Object) uploads: `s3s`
    /// holds it in memory until the form's policy is checked.
    pub post_object_max_bytes: u64,
}

/// The S3 service over the storage use cases.
pub fn service(storage: Storage, settings: &S3Settings) -> Result<S3Service, String> {
    let keys = KeyDirectory::new(storage.platform().clone());
    let mut builder = S3ServiceBuilder::new(ops::NuageS3 {
        storage,
        keys: keys.clone(),
        anonymous: throttle::AnonymousLimit::new(settings.anonymous_requests_per_second),
    });
    builder.set_auth(keys.clone());
    builder.set_access(keys);
    if let Some(domain) = &settings.root_domain {
        if domain.is_empty() || domain.contains([':', '/']) {
            return Err(format!(
                "the S3 root domain {domain} is not valid: give a host name, without port"
            ));
        }
        builder.set_host(RootDomain(domain.to_ascii_lowercase()));
    }
    let mut config = s3s::config::S3Config::default();
    // XML bodies (delete lists, tag sets, CORS and lifecycle rules) are small.
    config.xml_max_body_size = 2 * 1024 * 1024;
    if settings.post_object_max_bytes > 0 {
        config.post_object_max_file_size = settings.post_object_max_bytes;
    }
    builder.set_config(Arc::new(s3s::config::StaticConfigProvider::new(Arc::new(
        config,
    ))));
    Ok(builder.build())
}

/// Virtual-host addressing under a root domain: `BUCKET.ROOT:PORT` names a
/// bucket; any other host (an address, `localhost`, the root itself) is path
/// style. (`s3s`'s `SingleDomain` compares the port too, and takes any other
/// host name for a bucket.)
struct RootDomain(String);

impl s3s::host::S3Host for RootDomain {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> s3s::S3Result<s3s::host::VirtualHost<'a>> {
        let name = match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        let root = self.0.as_str();
        let vh = s3s::host::VirtualHost::new(root);
        match name.strip_suffix(root).and_then(|h| h.strip_suffix('.')) {
            Some(bucket) if !bucket.is_empty() && name.len() > root.len() => {
                Ok(vh.with_bucket(bucket))
            }
            _ => Ok(vh),
        }
    }
}

/// Names a response with its request id, as AWS does: the
/// `x-amz-request-id` header on every answer, and the same id as
/// `<RequestId>` in an error's XML body, so that a client's report of a
/// failure names the request.
pub async fn with_request_id(
    response: axum::response::Response,
    id: &str,
) -> axum::response::Response {
    let Ok(value) = http::HeaderValue::from_str(id) else {
        return response;
    };
    let (mut parts, body) = response.into_parts();
    parts.headers.insert("x-amz-request-id", value);
    let is_xml_error = (parts.status.is_client_error() || parts.status.is_server_error())
        && parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|t| t.as_bytes().ends_with(b"xml"));
    if !is_xml_error {
        return axum::response::Response::from_parts(parts, body);
    }
    // Error bodies are a few hundred bytes; one that is not is left as is.
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        parts.headers.remove(http::header::CONTENT_LENGTH);
        return axum::response::Response::from_parts(parts, axum::body::Body::empty());
    };
    let text = String::from_utf8_lossy(&bytes);
    let body = match text.rfind("</Error>") {
        Some(end) if !text.contains("<RequestId>") => {
            format!(
                "{}<RequestId>{id}</RequestId>{}",
                &text[..end],
                &text[end..]
            )
        }
        _ => text.into_owned(),
    };
    parts.headers.remove(http::header::CONTENT_LENGTH);
    axum::response::Response::from_parts(parts, axum::body::Body::from(body))
}

/// A well-formed S3 error body, for answers given before `s3s` (overload).
pub fn error_xml(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
}
