//! The website endpoint: buckets published as static websites
//! (`PutBucketWebsite`), served on their own listener by Host header,
//! `<bucket>.<website domain>`. Index and error documents, routing rules
//! and redirections as S3 has them; content types, ETags and conditional
//! requests, ranges, compression of text, cache headers. Each request is
//! metered and billed to the bucket's owner like an S3 GET.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use nuage_domain::ids::OrgId;
use nuage_domain::storage::KeyPurpose;
use nuage_domain::website::{Route, WebsiteConfig};
use nuage_storage::objects::{ByteRange, Conditions, GetObject, ObjectInfo, ObjectRead};
use nuage_storage::recorder::{AccessRecord, RequestClass};
use nuage_storage::{S3Caller, Storage, StorageError};
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate};

/// What the website listener needs.
pub struct Sites {
    storage: Storage,
    /// The domain under which each website is `<bucket>.<domain>`.
    domain: String,
    /// `https` when the listener has TLS.
    scheme: &'static str,
    cache: Mutex<Cache>,
}

/// How long a site's configuration and its small pages are kept in this
/// process's memory. A change made through this node (a new version, an
/// unpublished site) drops them at once; one made through another node
/// shows within this time, as behind a CDN.
const FRESH: Duration = Duration::from_secs(2);
/// Sites' configurations and domains are kept longer: a change made through
/// any node bumps a shared version that every node follows
/// (`Storage::follow_other_nodes`), which drops them.
const SETTINGS_FRESH: Duration = Duration::from_secs(300);
/// Pages up to this size are kept, up to this much in all.
const CACHED_PAGE_BYTES: u64 = 256 * 1024;
const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// What a response says of its object.
#[derive(Debug, Clone)]
struct Meta {
    etag: String,
    last_modified: i64,
    size: u64,
    content_type: String,
    cache_control: String,
    content_encoding: Option<String>,
}

impl Meta {
    fn of(key: &str, info: &ObjectInfo) -> Self {
        Self {
            etag: info.etag.clone(),
            last_modified: info.last_modified,
            size: info.size,
            content_type: content_type(key, info),
            cache_control: info
                .headers
                .cache_control
                .clone()
                .unwrap_or_else(|| "public, max-age=60".to_owned()),
            content_encoding: info.headers.content_encoding.clone(),
        }
    }
}

/// A small page, whole, as last read.
struct Page {
    meta: Meta,
    body: Bytes,
}

/// Sites' configurations and small pages read in the last [`FRESH`]
/// seconds. Only what anyone may read is kept (published sites' pages),
/// in memory only.
#[derive(Default)]
struct Cache {
    sites: HashMap<String, Kept<Option<(OrgId, WebsiteConfig)>>>,
    /// Proven domains of their own: the bucket each serves.
    domains: HashMap<String, Kept<Option<String>>>,
    pages: HashMap<(String, String), Kept<Arc<Page>>>,
    bytes: usize,
}

/// A cached value, with when it was read and the count of the storage's
/// changes before it was.
struct Kept<T> {
    at: Instant,
    changes: u64,
    value: T,
}

impl<T> Kept<T> {
    fn current(&self, changes: u64) -> Option<&T> {
        self.current_for(changes, FRESH)
    }

    fn current_for(&self, changes: u64, fresh: Duration) -> Option<&T> {
        (self.changes == changes && self.at.elapsed() < fresh).then_some(&self.value)
    }
}

impl Cache {
    fn page(&self, bucket: &str, key: &str, changes: u64) -> Option<Arc<Page>> {
        self.pages
            .get(&(bucket.to_owned(), key.to_owned()))
            .and_then(|k| k.current(changes))
            .cloned()
    }

    fn keep(&mut self, bucket: &str, key: &str, page: Arc<Page>, changes: u64) {
        if self.bytes + page.body.len() > CACHE_BYTES {
            self.pages.retain(|_, k| k.current(changes).is_some());
            self.bytes = self.pages.values().map(|k| k.value.body.len()).sum();
            if self.bytes + page.body.len() > CACHE_BYTES {
                self.pages.clear();
                self.bytes = 0;
            }
        }
        self.bytes += page.body.len();
        let kept = Kept {
            at: Instant::now(),
            changes,
            value: page,
        };
        if let Some(old) = self.pages.insert((bucket.to_owned(), key.to_owned()), kept) {
            self.bytes -= old.value.body.len();
        }
    }
}

/// The website listener's routes: every path of every site.
pub fn router(storage: Storage, domain: &str, tls: bool) -> Router {
    let sites = Arc::new(Sites {
        storage,
        domain: domain.trim_matches('.').to_ascii_lowercase(),
        scheme: if tls { "https" } else { "http" },
        cache: Mutex::new(Cache::default()),
    });
    Router::new()
        .fallback(serve)
        .with_state(sites)
        // Text is compressed (gzip or brotli, as the client accepts); images
        // and parts of a file (ranges count in the file's own bytes) are
        // left as they are.
        .layer(
            CompressionLayer::new().compress_when(DefaultPredicate::new().and(
                |status: StatusCode, _: Version, _: &HeaderMap, _: &Extensions| {
                    status != StatusCode::PARTIAL_CONTENT
                },
            )),
        )
}

impl Sites {
    /// A bucket's owner and website configuration, read at most every
    /// [`SETTINGS_FRESH`] seconds and again after any node changes it.
    async fn site(&self, bucket: &str) -> Result<Option<(OrgId, WebsiteConfig)>, StorageError> {
        let changes = self.storage.changes();
        if let Ok(cache) = self.cache.lock()
            && let Some(site) = cache
                .sites
                .get(bucket)
                .and_then(|k| k.current_for(changes, SETTINGS_FRESH))
        {
            return Ok(site.clone());
        }
        let site = self.storage.site(bucket).await?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.sites.len() > 10_000 {
                cache
                    .sites
                    .retain(|_, k| k.current_for(changes, SETTINGS_FRESH).is_some());
            }
            let kept = Kept {
                at: Instant::now(),
                changes,
                value: site.clone(),
            };
            cache.sites.insert(bucket.to_owned(), kept);
        }
        Ok(site)
    }

    /// The bucket a domain of its owner's serves, once proven; read at
    /// most every [`SETTINGS_FRESH`] seconds and again after any node
    /// changes it.
    async fn bucket_of_domain(&self, domain: &str) -> Result<Option<String>, StorageError> {
        let changes = self.storage.changes();
        if let Ok(cache) = self.cache.lock()
            && let Some(bucket) = cache
                .domains
                .get(domain)
                .and_then(|k| k.current_for(changes, SETTINGS_FRESH))
        {
            return Ok(bucket.clone());
        }
        let bucket = self.storage.bucket_of_domain(domain).await?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.domains.len() > 10_000 {
                cache
                    .domains
                    .retain(|_, k| k.current_for(changes, SETTINGS_FRESH).is_some());
            }
            let kept = Kept {
                at: Instant::now(),
                changes,
                value: bucket.clone(),
            };
            cache.domains.insert(domain.to_owned(), kept);
        }
        Ok(bucket)
    }
}

fn http_date_of(ms: i64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
}

/// A plain page for what is not a website's own answer.
fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response()
}

/// The bucket a Host header names, if it is one of ours.
fn bucket_of<'a>(host: &'a str, domain: &str) -> Option<&'a str> {
    let name = host.strip_suffix(domain)?.strip_suffix('.')?;
    (!name.is_empty()).then_some(name)
}

/// `bytes=first-last`, `bytes=first-` or `bytes=-suffix`; several ranges
/// or another unit are ignored (the whole object is served), as HTTP allows.
fn byte_range(value: Option<&HeaderValue>) -> Option<ByteRange> {
    let spec = value?.to_str().ok()?.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    match (first.trim(), last.trim()) {
        ("", n) => n.parse().ok().map(ByteRange::Suffix),
        (a, "") => a.parse().ok().map(|a| ByteRange::FromTo(a, None)),
        (a, b) => Some(ByteRange::FromTo(a.parse().ok()?, Some(b.parse().ok()?))),
    }
}

fn http_date(value: Option<&HeaderValue>) -> Option<i64> {
    let time = httpdate::parse_http_date(value?.to_str().ok()?).ok()?;
    let since = time.duration_since(UNIX_EPOCH).ok()?;
    Some(since.as_millis() as i64)
}

fn conditions(headers: &HeaderMap) -> Conditions {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Conditions {
        if_match: text(header::IF_MATCH),
        if_none_match: text(header::IF_NONE_MATCH),
        if_modified_since: http_date(headers.get(header::IF_MODIFIED_SINCE)),
        if_unmodified_since: http_date(headers.get(header::IF_UNMODIFIED_SINCE)),
    }
}

/// The type of an object stored without one, by its extension.
fn guessed_type(key: &str) -> &'static str {
    let extension = key.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match extension.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        Some("xml") => "application/xml",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        Some("pdf") => "application/pdf",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// The object's type as stored, or by its extension when it was stored
/// without one, or as the generic type tools send by default.
fn content_type(key: &str, info: &ObjectInfo) -> String {
    match info.headers.content_type.as_deref() {
        Some(t) if t != "application/octet-stream" && t != "binary/octet-stream" => t.to_owned(),
        _ => guessed_type(key).to_owned(),
    }
}

/// One request of a website, as the handler sees it.
struct Visit<'a> {
    sites: &'a Sites,
    bucket: &'a str,
    host: &'a str,
    owner: OrgId,
    config: WebsiteConfig,
    head: bool,
    headers: &'a HeaderMap,
    peer: SocketAddr,
}

impl Visit<'_> {
    fn caller(&self) -> S3Caller {
        S3Caller {
            org: self.owner,
            access_key_id: "website".into(),
            source: self.peer.ip().to_string(),
            purpose: KeyPurpose::Access,
        }
    }

    /// Records the request in the owner's access log and metering.
    fn record(&self, key: &str, status: StatusCode, bytes_out: u64) {
        self.sites.storage.recorder().record(AccessRecord {
            org_id: self.owner.to_string(),
            operation: if self.head {
                "WebsiteHead"
            } else {
                "WebsiteGet"
            },
            bucket: self.bucket.to_owned(),
            key: Some(key.to_owned()),
            access_key_id: None,
            source: self.peer.ip().to_string(),
            status: status.as_u16(),
            bytes: bytes_out,
            class: if status.is_server_error() {
                RequestClass::Free
            } else {
                RequestClass::B
            },
            egress: bytes_out,
            exit: false,
        });
    }

    /// A read of `key`, with the request's range and conditions when
    /// `conditional`.
    fn request(&self, key: &str, conditional: bool) -> GetObject {
        GetObject {
            bucket: self.bucket.to_owned(),
            key: key.to_owned(),
            version_id: None,
            range: if conditional {
                byte_range(self.headers.get(header::RANGE))
            } else {
                None
            },
            part_number: None,
            conditions: if conditional {
                conditions(self.headers)
            } else {
                Conditions::default()
            },
            customer_key: None,
        }
    }

    async fn read(&self, key: &str, conditional: bool) -> Result<ObjectRead, StorageError> {
        self.sites
            .storage
            .get_object(&self.caller(), self.request(key, conditional))
            .await
    }

    fn redirect(&self, key: &str, location: &str, status: u16) -> Response {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::MOVED_PERMANENTLY);
        self.record(key, status, 0);
        match HeaderValue::from_str(location) {
            Ok(location) => (status, [(header::LOCATION, location)]).into_response(),
            Err(_) => plain(StatusCode::BAD_REQUEST, "Bad request"),
        }
    }

    /// An object as the response, with `status` (200, or the error
    /// document's).
    fn object(&self, key: &str, read: ObjectRead, status: StatusCode) -> Response {
        let meta = Meta::of(key, &read.info);
        let body = if self.head {
            Body::empty()
        } else {
            Body::from_stream(read.body.map_err(std::io::Error::other))
        };
        self.respond(key, &meta, status, read.range, read.content_length, body)
    }

    fn respond(
        &self,
        key: &str,
        meta: &Meta,
        status: StatusCode,
        range: Option<(u64, u64)>,
        length: u64,
        body: Body,
    ) -> Response {
        let status = if range.is_some() {
            StatusCode::PARTIAL_CONTENT
        } else {
            status
        };
        self.record(key, status, if self.head { 0 } else { length });
        let mut response = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, &meta.content_type)
            .header(header::CONTENT_LENGTH, length)
            .header(header::ETAG, format!("\"{}\"", meta.etag))
            .header(header::LAST_MODIFIED, http_date_of(meta.last_modified))
            .header(header::ACCEPT_RANGES, "bytes")
            .header(header::CACHE_CONTROL, &meta.cache_control)
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
        if let Some((first, last)) = range {
            response = response.header(
                header::CONTENT_RANGE,
                format!("bytes {first}-{last}/{}", meta.size),
            );
        }
        if let Some(encoding) = &meta.content_encoding {
            response = response.header(header::CONTENT_ENCODING, encoding);
        }
        response
            .body(if self.head { Body::empty() } else { body })
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "Server error"))
    }

    /// A page from the cache, when the request is one it can answer alone
    /// (no range, no If-Match or If-Unmodified-Since).
    fn kept_answer(&self, key: &str, changes: u64) -> Option<Response> {
        let h = self.headers;
        if h.contains_key(header::RANGE)
            || h.contains_key(header::IF_MATCH)
            || h.contains_key(header::IF_UNMODIFIED_SINCE)
        {
            return None;
        }
        let page = self
            .sites
            .cache
            .lock()
            .ok()?
            .page(self.bucket, key, changes)?;
        let not_modified = match h.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
            Some(list) => list.split(',').any(|c| {
                let c = c.trim().trim_start_matches("W/").trim_matches('"');
                c == "*" || c == page.meta.etag
            }),
            None => http_date(h.get(header::IF_MODIFIED_SINCE))
                .is_some_and(|since| page.meta.last_modified / 1000 <= since / 1000),
        };
        if not_modified {
            self.record(key, StatusCode::NOT_MODIFIED, 0);
            return Some(StatusCode::NOT_MODIFIED.into_response());
        }
        Some(self.respond(
            key,
            &page.meta,
            StatusCode::OK,
            None,
            page.body.len() as u64,
            Body::from(page.body.clone()),
        ))
    }

    /// A whole small page read for a GET: kept for the next requests, then
    /// served from memory.
    async fn keep(&self, key: &str, read: ObjectRead, changes: u64) -> Response {
        let meta = Meta::of(key, &read.info);
        let body: Result<Vec<Bytes>, _> = read.body.try_collect().await;
        let Ok(chunks) = body else {
            self.record(key, StatusCode::INTERNAL_SERVER_ERROR, 0);
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "Server error");
        };
        let body = Bytes::from(chunks.concat());
        let page = Arc::new(Page {
            meta: meta.clone(),
            body: body.clone(),
        });
        if let Ok(mut cache) = self.sites.cache.lock() {
            cache.keep(self.bucket, key, page, changes);
        }
        self.respond(
            key,
            &meta,
            StatusCode::OK,
            None,
            body.len() as u64,
            Body::from(body),
        )
    }

    /// A missing page: a folder's index reached without its slash, a
    /// routing rule for the error, the error document, or a plain 404.
    async fn missing(&self, key: &str) -> Response {
        if let Some(index) = self.config.folder_index(key)
            && self
                .sites
                .storage
                .head_object(&self.caller(), &self.request(&index, false))
                .await
                .is_ok()
        {
            return self.redirect(key, &format!("/{key}/"), 302);
        }
        if let Some(Route::Redirect { location, status }) =
            self.config.on_error(key, 404, self.host, self.sites.scheme)
        {
            return self.redirect(key, &location, status);
        }
        if let Some(error_key) = &self.config.error_key
            && let Ok(read) = self.read(error_key, false).await
        {
            return self.object(error_key, read, StatusCode::NOT_FOUND);
        }
        self.record(key, StatusCode::NOT_FOUND, 0);
        plain(StatusCode::NOT_FOUND, "Not found")
    }

    async fn answer(&self, path: &str) -> Response {
        let key = match self.config.route(path, self.host, self.sites.scheme) {
            Route::Redirect { location, status } => {
                return self.redirect(path.trim_start_matches('/'), &location, status);
            }
            Route::Object { key } => key,
        };
        // Read before the object: a change committed meanwhile makes the
        // copy kept below stale at once.
        let changes = self.sites.storage.changes();
        if let Some(response) = self.kept_answer(&key, changes) {
            return response;
        }
        match self.read(&key, true).await {
            Ok(read)
                if !self.head && read.range.is_none() && read.info.size <= CACHED_PAGE_BYTES =>
            {
                self.keep(&key, read, changes).await
            }
            Ok(read) => self.object(&key, read, StatusCode::OK),
            Err(StorageError::NoSuchKey) => self.missing(&key).await,
            Err(StorageError::NotModified) => {
                self.record(&key, StatusCode::NOT_MODIFIED, 0);
                StatusCode::NOT_MODIFIED.into_response()
            }
            Err(StorageError::PreconditionFailed) => {
                self.record(&key, StatusCode::PRECONDITION_FAILED, 0);
                plain(StatusCode::PRECONDITION_FAILED, "Precondition failed")
            }
            Err(StorageError::InvalidRange) => {
                self.record(&key, StatusCode::RANGE_NOT_SATISFIABLE, 0);
                plain(StatusCode::RANGE_NOT_SATISFIABLE, "Range not satisfiable")
            }
            // An object sealed with a customer key cannot be served.
            Err(StorageError::CustomerKeyRequired) | Err(StorageError::AccessDenied) => {
                self.record(&key, StatusCode::FORBIDDEN, 0);
                plain(StatusCode::FORBIDDEN, "Forbidden")
            }
            Err(e) => {
                tracing::error!(error = %e, bucket = self.bucket, "a website request failed");
                self.record(&key, StatusCode::INTERNAL_SERVER_ERROR, 0);
                plain(StatusCode::INTERNAL_SERVER_ERROR, "Server error")
            }
        }
    }
}

async fn serve(
    State(sites): State<Arc<Sites>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let head = match *request.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => {
            return (
                StatusCode::METHOD_NOT_ALLOWED,
                [(header::ALLOW, "GET, HEAD")],
                "Method not allowed",
            )
                .into_response();
        }
    };
    let headers = request.headers();
    // HTTP/1.1 names the site in Host; HTTP/2 in the `:authority` of the
    // request's URI.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or_default()
        .to_ascii_lowercase();
    let name = host.rsplit_once(':').map_or(host.as_str(), |(n, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            n
        } else {
            host.as_str()
        }
    });
    // A host that names no published website gets the same answer whether
    // or not a bucket of that name exists, or a domain is claimed but not
    // proven.
    let bucket = match bucket_of(name, &sites.domain) {
        Some(bucket) => bucket.to_owned(),
        None => match sites.bucket_of_domain(name).await {
            Ok(Some(bucket)) => bucket,
            Ok(None) => return plain(StatusCode::NOT_FOUND, "No website at this address"),
            Err(e) => {
                tracing::error!(error = %e, "a website's domain could not be read");
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "Server error");
            }
        },
    };
    let bucket = bucket.as_str();
    let site = match sites.site(bucket).await {
        Ok(Some(site)) => site,
        Ok(None) => return plain(StatusCode::NOT_FOUND, "No website at this address"),
        Err(e) => {
            tracing::error!(error = %e, "a website's configuration could not be read");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "Server error");
        }
    };
    let Ok(path) = percent_encoding::percent_decode_str(request.uri().path()).decode_utf8() else {
        return plain(StatusCode::BAD_REQUEST, "Bad request");
    };
    if path.contains('\0') {
        return plain(StatusCode::BAD_REQUEST, "Bad request");
    }
    let (owner, config) = site;
    let visit = Visit {
        sites: &sites,
        bucket,
        host: &host,
        owner,
        config,
        head,
        headers,
        peer,
    };
    visit.answer(&path).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_names_its_bucket_under_the_domain() {
        assert_eq!(
            bucket_of("blog.sites.example", "sites.example"),
            Some("blog")
        );
        assert_eq!(bucket_of("sites.example", "sites.example"), None);
        assert_eq!(bucket_of("blogsites.example", "sites.example"), None);
        assert_eq!(bucket_of("blog.other.example", "sites.example"), None);
    }

    #[test]
    fn ranges_are_read_as_http_has_them() {
        let r = |v: &str| byte_range(Some(&HeaderValue::from_str(v).expect("header")));
        assert_eq!(r("bytes=0-99"), Some(ByteRange::FromTo(0, Some(99))));
        assert_eq!(r("bytes=100-"), Some(ByteRange::FromTo(100, None)));
        assert_eq!(r("bytes=-10"), Some(ByteRange::Suffix(10)));
        assert_eq!(r("bytes=0-1,5-6"), None);
        assert_eq!(r("items=0-1"), None);
        assert_eq!(r("bytes=x-1"), None);
    }
}
