//! Cross-origin requests from browsers, by the bucket's CORS rules: the
//! answer to a preflight `OPTIONS`, and the `Access-Control-*` headers of the
//! request that follows.

use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use nuage_domain::storage::{CorsRule, cors_rule_for};
use nuage_storage::Storage;

/// CORS for the S3 listener.
#[derive(Clone)]
pub struct Cors {
    storage: Storage,
    root_domain: Option<String>,
}

impl Cors {
    pub fn new(storage: Storage, root_domain: Option<String>) -> Self {
        Self {
            storage,
            root_domain: root_domain.map(|d| d.to_ascii_lowercase()),
        }
    }

    /// The bucket a request addresses: by virtual host under the root
    /// domain, else the first segment of the path.
    fn bucket_of(&self, path: &str, headers: &HeaderMap) -> Option<String> {
        if let (Some(root), Some(host)) = (
            &self.root_domain,
            headers.get(header::HOST).and_then(|h| h.to_str().ok()),
        ) {
            let name = host
                .rsplit_once(':')
                .map_or(host, |(h, _)| h)
                .to_ascii_lowercase();
            if let Some(bucket) = name
                .strip_suffix(root.as_str())
                .and_then(|b| b.strip_suffix('.'))
            {
                return (!bucket.is_empty()).then(|| bucket.to_owned());
            }
        }
        let first = path.trim_start_matches('/').split('/').next()?;
        (!first.is_empty()).then(|| first.to_owned())
    }

    async fn rules(&self, path: &str, headers: &HeaderMap) -> Vec<CorsRule> {
        match self.bucket_of(path, headers) {
            Some(bucket) => self.storage.cors_for_browsers(&bucket).await,
            None => Vec::new(),
        }
    }

    /// The answer to a preflight request: 200 with the allowed method,
    /// headers and age when a rule allows it, 403 otherwise.
    pub async fn preflight(
        &self,
        path: &str,
        headers: &HeaderMap,
    ) -> (StatusCode, HeaderMap, String) {
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let method = headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|v| v.to_str().ok());
        let requested: Vec<String> = headers
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(',')
                    .map(|h| h.trim().to_owned())
                    .filter(|h| !h.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let (Some(origin), Some(method)) = (origin, method) else {
            return refusal("Insufficient information. Origin request header needed.");
        };
        let rules = self.rules(path, headers).await;
        let Some(rule) = cors_rule_for(&rules, origin, method, &requested) else {
            return refusal("CORSResponse: This CORS request is not allowed.");
        };
        let mut out = allow_headers(rule, origin);
        set(
            &mut out,
            header::ACCESS_CONTROL_ALLOW_METHODS,
            &rule.allowed_methods.join(", "),
        );
        if !requested.is_empty() {
            set(
                &mut out,
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                &requested.join(", "),
            );
        }
        if let Some(age) = rule.max_age_seconds {
            set(&mut out, header::ACCESS_CONTROL_MAX_AGE, &age.to_string());
        }
        (StatusCode::OK, out, String::new())
    }

    /// The headers to add to the response of a request with an `Origin`,
    /// when a rule allows it.
    pub async fn response_headers(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> HeaderMap {
        let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
            return HeaderMap::new();
        };
        let rules = self.rules(path, headers).await;
        match cors_rule_for(&rules, origin, method.as_str(), &[]) {
            Some(rule) => {
                let mut out = allow_headers(rule, origin);
                if !rule.expose_headers.is_empty() {
                    set(
                        &mut out,
                        header::ACCESS_CONTROL_EXPOSE_HEADERS,
                        &rule.expose_headers.join(", "),
                    );
                }
                out
            }
            None => HeaderMap::new(),
        }
    }
}

fn allow_headers(rule: &CorsRule, origin: &str) -> HeaderMap {
    let mut out = HeaderMap::new();
    let any = rule.allowed_origins.iter().any(|o| o == "*");
    set(
        &mut out,
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        if any { "*" } else { origin },
    );
    out.insert(header::VARY, HeaderValue::from_static("Origin"));
    out
}

fn set(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

fn refusal(message: &str) -> (StatusCode, HeaderMap, String) {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    (
        StatusCode::FORBIDDEN,
        headers,
        crate::error_xml("AccessForbidden", message),
    )
}
