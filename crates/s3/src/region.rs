//! Signatures for any region name. `s3s` checks a SigV4 signature, then
//! refuses a credential scope whose region is not `[a-z0-9-]+` — `US`, as
//! s3cmd signs with its default configuration, or `EU`, `Paris`… Nuage
//! accepts any region a client signs with. Such a request's signature (in
//! its `Authorization` header or its presigned URL's query) is checked
//! here, with aws-sigv4 and the key's secret, exactly as its client made
//! it; the request is then signed again for `us-east-1` with the same
//! secret, headers and query, and `s3s` checks that signature as any other.
//! A request whose region `s3s` takes is never touched. A signed streaming
//! body's chunks chain from the header's signature: each is checked and
//! signed again as it passes (see `chunks`).

mod chunks;

use std::time::SystemTime;

use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningInstructions,
    SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4::SigningParams;
use http::{HeaderValue, Request};
use nuage_service::Platform;

/// The region a re-signed request carries.
const SIGNED_AGAIN_FOR: &str = "us-east-1";

/// What a header `Authorization: AWS4-HMAC-SHA256 …` says.
struct Authorization<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

impl<'a> Authorization<'a> {
    fn parse(value: &'a str) -> Option<Self> {
        let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let (name, value) = part.trim().split_once('=')?;
            match name {
                "Credential" => credential = Some(value),
                "SignedHeaders" => signed = Some(value),
                "Signature" => signature = Some(value),
                _ => {}
            }
        }
        let mut scope = credential?.split('/');
        let (access_key, date, region, service) =
            (scope.next()?, scope.next()?, scope.next()?, scope.next()?);
        (scope.next()? == "aws4_request").then_some(())?;
        Some(Self {
            access_key,
            date,
            region,
            service,
            signed_headers: signed?.split(';').collect(),
            signature: signature?,
        })
    }
}

/// A region `s3s` takes as it is.
fn s3s_takes(region: &str) -> bool {
    !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// What becomes of a request.
pub enum Resigned {
    /// Untouched: `s3s` judges it.
    AsIs,
    /// Its signature holds for its region: now signed for `us-east-1`.
    Again,
    /// Its signature does not hold.
    Mismatch,
}

/// Checks and signs again the requests whose region `s3s` refuses.
#[derive(Clone)]
pub struct AnyRegion {
    platform: Platform,
}

impl AnyRegion {
    pub fn new(platform: Platform) -> Self {
        Self { platform }
    }

    pub async fn resign(&self, request: &mut Request<axum::body::Body>) -> Resigned {
        // Every request passes here: those whose region s3s takes (or that
        // are not signed with SigV4) go on at once, before anything is
        // copied.
        let in_header = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(Authorization::parse)
            .is_some_and(|a| !s3s_takes(a.region));
        if in_header {
            return self.resign_header(request).await;
        }
        // A presigned URL: its region read in place, without parsing the
        // query, which happens only when s3s would refuse the region.
        let refused_in_query = request
            .uri()
            .query()
            .and_then(credential_region)
            .is_some_and(|region| !s3s_takes(region));
        if refused_in_query && let Some(presigned) = Presigned::parse(request.uri()) {
            return self.resign_query(request, presigned).await;
        }
        Resigned::AsIs
    }

    /// The key's secret; `None` for a key that does not exist (then `s3s`
    /// answers as it does for any unknown key).
    async fn secret(&self, access_key: &str) -> Option<String> {
        match self.platform.s3_credentials(access_key).await {
            Ok(Some((_, secret, _))) => Some(secret),
            _ => None,
        }
    }

    async fn resign_header(&self, request: &mut Request<axum::body::Body>) -> Resigned {
        // Owned: a request body need not be shared between threads, so no
        // borrow of the request may live across the key's look-up.
        let headers = request.headers().clone();
        let method = request.method().clone();
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let Some(a) = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(Authorization::parse)
        else {
            return Resigned::AsIs;
        };
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let Some(payload) = header("x-amz-content-sha256") else {
            return Resigned::AsIs;
        };
        let chunked = payload.starts_with("STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
        let Some(date) = header("x-amz-date") else {
            return Resigned::AsIs;
        };
        let Some(time) = amz_date(&date, a.date) else {
            return Resigned::AsIs;
        };
        let Some(secret) = self.secret(a.access_key).await else {
            return Resigned::AsIs;
        };
        // The headers the client signed, as it sent them; x-amz-date is
        // the signer's own.
        let Some(signed) = signed_headers(&headers, &a.signed_headers, &["x-amz-date"]) else {
            return Resigned::Mismatch;
        };
        let url = format!("http://{}{path}", header("host").unwrap_or_default());
        let sign_for = |region: &str| {
            signature(
                Signable {
                    method: method.as_str(),
                    url: &url,
                    headers: &signed,
                    place: Place::Header(&payload),
                },
                (a.access_key, &secret),
                (region, a.service, time),
            )
        };
        let Some((_, theirs)) = sign_for(a.region) else {
            return Resigned::Mismatch;
        };
        if !constant_time_eq(theirs.as_bytes(), a.signature.as_bytes()) {
            return Resigned::Mismatch;
        }
        let Some((instructions, our_seed)) = sign_for(SIGNED_AGAIN_FOR) else {
            return Resigned::Mismatch;
        };
        let Some(ours) = instructions
            .headers()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .and_then(|(_, v)| HeaderValue::from_str(v).ok())
        else {
            return Resigned::Mismatch;
        };
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, ours);
        if chunked {
            let chains = chunks::Chains::new(
                &secret,
                (time, &date),
                (a.region, SIGNED_AGAIN_FOR),
                a.service,
                (&theirs, &our_seed),
            );
            let body = std::mem::take(request.body_mut()).into_data_stream();
            *request.body_mut() = axum::body::Body::from_stream(chunks::resigned(body, chains));
        }
        Resigned::Again
    }

    /// A presigned URL: its query's `X-Amz-*` parameters are checked for
    /// the client's region, then replaced by those signed for `us-east-1`.
    async fn resign_query(
        &self,
        request: &mut Request<axum::body::Body>,
        p: Presigned,
    ) -> Resigned {
        let Some(time) = amz_date(&p.date, &p.day) else {
            return Resigned::AsIs;
        };
        let Some(secret) = self.secret(&p.access_key).await else {
            return Resigned::AsIs;
        };
        let names: Vec<&str> = p.signed_headers.split(';').collect();
        let Some(signed) = signed_headers(request.headers(), &names, &[]) else {
            return Resigned::Mismatch;
        };
        let host = request
            .headers()
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let path = request.uri().path();
        let url = if p.rest.is_empty() {
            format!("http://{host}{path}")
        } else {
            format!("http://{host}{path}?{}", p.rest)
        };
        let sign_for = |region: &str| {
            signature(
                Signable {
                    method: request.method().as_str(),
                    url: &url,
                    headers: &signed,
                    place: Place::Query(p.expires),
                },
                (&p.access_key, &secret),
                (region, &p.service, time),
            )
        };
        let Some((_, theirs)) = sign_for(&p.region) else {
            return Resigned::Mismatch;
        };
        if !constant_time_eq(theirs.as_bytes(), p.signature.as_bytes()) {
            return Resigned::Mismatch;
        }
        let Some((instructions, _)) = sign_for(SIGNED_AGAIN_FOR) else {
            return Resigned::Mismatch;
        };
        let mut query = url::form_urlencoded::Serializer::new(p.rest.clone());
        for (name, value) in instructions.params() {
            query.append_pair(name, value);
        }
        let query = query.finish();
        let mut parts = request.uri().clone().into_parts();
        parts.path_and_query = format!("{path}?{query}").parse().ok();
        match http::Uri::from_parts(parts) {
            Ok(uri) => {
                *request.uri_mut() = uri;
                Resigned::Again
            }
            Err(_) => Resigned::Mismatch,
        }
    }
}

/// The region of a query's `X-Amz-Credential`, as sent (its slashes
/// encoded or not); `None` without one.
fn credential_region(query: &str) -> Option<&str> {
    let mut rest = query
        .split('&')
        .find_map(|p| p.strip_prefix("X-Amz-Credential="))?;
    let mut next = || {
        let (at, len) = [
            rest.find('/').map(|i| (i, 1)),
            rest.find("%2F").map(|i| (i, 3)),
            rest.find("%2f").map(|i| (i, 3)),
        ]
        .into_iter()
        .flatten()
        .min()?;
        let segment = &rest[..at];
        rest = &rest[at + len..];
        Some(segment)
    };
    next()?; // the access key
    next()?; // the day
    next()
}

/// What a presigned URL's query says.
struct Presigned {
    access_key: String,
    day: String,
    region: String,
    service: String,
    date: String,
    expires: std::time::Duration,
    signed_headers: String,
    signature: String,
    /// The rest of the query, as sent.
    rest: String,
}

impl Presigned {
    /// The parameters a presigned URL's signature adds to its query.
    const PARAMETERS: [&str; 6] = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    ];

    fn parse(uri: &http::Uri) -> Option<Self> {
        let query = uri.query()?;
        let mut rest = Vec::new();
        let mut found = std::collections::HashMap::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = url::form_urlencoded::parse(pair.as_bytes()).next()?;
            match Self::PARAMETERS.iter().find(|p| **p == name) {
                Some(p) => {
                    found.insert(*p, value.into_owned());
                }
                // A session token is never issued by Nuage: s3s refuses it.
                None if name == "X-Amz-Security-Token" => return None,
                None => rest.push(pair),
            }
        }
        if found.len() != Self::PARAMETERS.len() || found["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256" {
            return None;
        }
        let mut scope = found["X-Amz-Credential"].split('/');
        let (access_key, day, region, service) =
            (scope.next()?, scope.next()?, scope.next()?, scope.next()?);
        (scope.next()? == "aws4_request" && scope.next().is_none()).then_some(())?;
        Some(Self {
            access_key: access_key.to_owned(),
            day: day.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            date: found["X-Amz-Date"].clone(),
            expires: std::time::Duration::from_secs(found["X-Amz-Expires"].parse().ok()?),
            signed_headers: found["X-Amz-SignedHeaders"].clone(),
            signature: found["X-Amz-Signature"].clone(),
            rest: rest.join("&"),
        })
    }
}

/// The headers a client signed, as it sent them (all values of one name
/// joined by commas), but for `skip`; `None` when one is missing.
fn signed_headers(
    headers: &http::HeaderMap,
    names: &[&str],
    skip: &[&str],
) -> Option<Vec<(String, String)>> {
    let mut signed = Vec::with_capacity(names.len());
    for name in names.iter().filter(|n| !skip.contains(n)) {
        let values: Vec<&str> = headers
            .get_all(*name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            return None;
        }
        signed.push(((*name).to_owned(), values.join(",")));
    }
    Some(signed)
}

/// Where a signature goes: in `Authorization`, over this payload hash, or
/// in the query, valid for this long.
enum Place<'a> {
    Header(&'a str),
    Query(std::time::Duration),
}

/// A request as it is signed.
struct Signable<'a> {
    method: &'a str,
    url: &'a str,
    headers: &'a [(String, String)],
    place: Place<'a>,
}

/// What aws-sigv4 makes of this request signed for this region, and the
/// signature.
fn signature(
    request: Signable<'_>,
    (access_key, secret): (&str, &str),
    (region, service, time): (&str, &str, SystemTime),
) -> Option<(SigningInstructions, String)> {
    let identity =
        aws_credential_types::Credentials::new(access_key, secret, None, None, "nuage").into();
    let mut settings = SigningSettings::default();
    // S3's way: the path as sent, encoded once, not normalised; every
    // header the client signed is signed again.
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.excluded_headers = None;
    let body = match request.place {
        Place::Header(payload) => SignableBody::Precomputed(payload.to_owned()),
        Place::Query(expires) => {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(expires);
            SignableBody::UnsignedPayload
        }
    };
    let params = SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .ok()?
        .into();
    let signable = SignableRequest::new(
        request.method,
        request.url,
        request
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
        body,
    )
    .ok()?;
    Some(sign(signable, &params).ok()?.into_parts())
}

/// `x-amz-date` (`20261207T120000Z`), which must fall on the scope's day.
fn amz_date(value: &str, scope_day: &str) -> Option<SystemTime> {
    if value.get(..8) != Some(scope_day) {
        return None;
    }
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let at = time::PrimitiveDateTime::parse(value, &format).ok()?;
    Some(at.assume_utc().into())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_authorization_header_is_read_whole() {
        let a = Authorization::parse(
            "AWS4-HMAC-SHA256 Credential=NKEY/20261207/US/s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=abc",
        )
        .expect("parsed");
        assert_eq!(
            (a.access_key, a.date, a.region, a.service),
            ("NKEY", "20261207", "US", "s3")
        );
        assert_eq!(
            a.signed_headers,
            ["host", "x-amz-content-sha256", "x-amz-date"]
        );
        assert_eq!(a.signature, "abc");
        assert!(Authorization::parse("AWS NKEY:sig").is_none());
        assert!(Authorization::parse("AWS4-HMAC-SHA256 Credential=NKEY/20261207/US/s3/other,SignedHeaders=host,Signature=a").is_none());
    }

    #[test]
    fn a_presigned_urls_region_is_read_in_place() {
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=NKEY%2F20261207%2FUS%2Fs3%2Faws4_request&X-Amz-Date=20261207T120000Z";
        assert_eq!(credential_region(q), Some("US"));
        assert_eq!(
            credential_region("X-Amz-Credential=NKEY/20261207/eu-west-1/s3/aws4_request"),
            Some("eu-west-1")
        );
        assert_eq!(credential_region("x-id=GetObject"), None);
        assert_eq!(credential_region("X-Amz-Credential=NKEY"), None);
    }

    #[test]
    fn only_regions_s3s_refuses_are_signed_again() {
        assert!(s3s_takes("us-east-1") && s3s_takes("fr-par"));
        assert!(!s3s_takes("US") && !s3s_takes("eu_west") && !s3s_takes(""));
    }

    #[test]
    fn the_date_must_fall_on_the_scopes_day() {
        assert!(amz_date("20261207T120000Z", "20261207").is_some());
        assert!(amz_date("20261208T000000Z", "20261207").is_none());
        assert!(amz_date("garbage", "20261207").is_none());
    }
}
