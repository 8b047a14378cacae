//! Failed S3 signatures, throttled like sign-ins (see
//! `nuage_service::throttle`): counted per access key and source, and per
//! source, in the database; while a source must wait, its signed requests
//! get `503 SlowDown`. The wait is remembered on this node, so that the
//! requests of everyone else never touch the database for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Uri};
use nuage_service::Platform;
use nuage_service::throttle::Attempt;

/// The sources (and keys) that must wait, until when.
#[derive(Clone)]
pub struct SignatureThrottle {
    platform: Platform,
    waiting: Arc<Mutex<HashMap<String, Instant>>>,
}

impl SignatureThrottle {
    pub fn new(platform: Platform) -> Self {
        Self {
            platform,
            waiting: Arc::default(),
        }
    }

    /// Whether a request signed with `access_key` from `source` must wait.
    pub fn must_wait(&self, source: &str, access_key: &str) -> bool {
        // Two look-ups on the hot path; expired entries are swept by `failed`.
        let now = Instant::now();
        let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if waiting.is_empty() {
            return false;
        }
        [source.to_owned(), keyed(source, access_key)]
            .iter()
            .any(|k| waiting.get(k).is_some_and(|until| *until > now))
    }

    /// Counts a request refused for its signature or unknown key.
    pub async fn failed(&self, source: &str, access_key: &str) {
        let attempt = Attempt {
            kind: "s3",
            account: access_key,
            source,
            now_ms: self.platform.now_ms(),
        };
        let wait = async {
            let mut conn = self.platform.db().acquire().await?;
            attempt.failed(&mut conn).await?;
            attempt.wait(&mut conn).await
        };
        match wait.await {
            Ok(Some(wait)) => {
                let until = Instant::now() + wait.min(Duration::from_secs(15 * 60));
                let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                waiting.retain(|_, until| *until > now);
                waiting.insert(keyed(source, access_key), until);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "a failed S3 signature could not be counted"),
        }
    }
}

fn keyed(source: &str, access_key: &str) -> String {
    format!("{access_key}@{source}")
}

/// The access key a request is signed with (SigV4 header or presigned URL,
/// SigV2 header), if any.
pub fn signing_key(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    if let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        if let Some(rest) = auth.split("Credential=").nth(1) {
            return rest.split('/').next().map(str::to_owned);
        }
        if let Some(rest) = auth.strip_prefix("AWS ") {
            return rest.split(':').next().map(str::to_owned);
        }
    }
    let query = uri.query()?;
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        match name {
            "X-Amz-Credential" => {
                let decoded = percent_encoding::percent_decode_str(value)
                    .decode_utf8()
                    .ok()?;
                decoded.split('/').next().map(str::to_owned)
            }
            "AWSAccessKeyId" => Some(value.to_owned()),
            _ => None,
        }
    })
}

/// Whether an S3 error body says the signature or the key was wrong.
pub fn is_signature_failure(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    text.contains("<Code>SignatureDoesNotMatch</Code>")
        || text.contains("<Code>InvalidAccessKeyId</Code>")
}

/// Unsigned requests admitted per bucket and second: a public bucket
/// cannot be made to serve without bound, and one public bucket cannot
/// take every request the listener has room for.
pub struct AnonymousLimit {
    per_second: u32,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl AnonymousLimit {
    pub fn new(per_second: u32) -> Self {
        Self {
            per_second,
            windows: Mutex::default(),
        }
    }

    /// Whether one more unsigned request to `bucket` may run now.
    pub fn admit(&self, bucket: &str) -> bool {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > 10_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(1));
        }
        let (start, count) = windows.entry(bucket.to_owned()).or_insert((now, 0));
        if now.duration_since(*start) >= Duration::from_secs(1) {
            *start = now;
            *count = 0;
        }
        *count += 1;
        *count <= self.per_second
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signing_key_is_read_from_headers_and_presigned_urls() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=NKABC/20261207/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x"
                .parse()
                .expect("header"),
        );
        assert_eq!(
            signing_key(&h, &"/b/k".parse().expect("uri")).as_deref(),
            Some("NKABC")
        );
        let uri: Uri = "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=NKDEF%2F20261207%2Fus-east-1%2Fs3%2Faws4_request"
            .parse()
            .expect("uri");
        assert_eq!(
            signing_key(&HeaderMap::new(), &uri).as_deref(),
            Some("NKDEF")
        );
        assert_eq!(
            signing_key(&HeaderMap::new(), &"/b/k".parse().expect("uri")),
            None
        );
    }

    #[test]
    fn unsigned_requests_are_admitted_per_bucket_up_to_the_limit() {
        let limit = AnonymousLimit::new(3);
        assert!((0..3).all(|_| limit.admit("site")));
        assert!(!limit.admit("site"));
        assert!(limit.admit("another"), "each bucket has its own");
    }
}
