//! Signatures for any region name. `s3s` checks a SigV4 signature, then
//! refuses a credential scope whose region is not `[a-z0-9-]+` — `US`, as
//! s3cmd signs with its default configuration, or `EU`, `Paris`… Nuage
//! accepts any region a client signs with. Such a request's signature is
//! checked here, with aws-sigv4 and the key's secret, exactly as its client
//! made it; the request is then signed again for `us-east-1` with the same
//! secret and headers, and `s3s` checks that signature as any other. A
//! request whose region `s3s` takes is never touched, nor is one with a
//! signed streaming body (its chunks chain from the first signature):
//! those keep `s3s`'s answer.

use std::time::SystemTime;

use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign,
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

    pub async fn resign<B>(&self, request: &mut Request<B>) -> Resigned {
        // Every request passes here: those whose region s3s takes (or with
        // no SigV4 header) go on at once, before anything is copied.
        let taken = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(Authorization::parse)
            .is_none_or(|a| s3s_takes(a.region));
        if taken {
            return Resigned::AsIs;
        }
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
        let payload = header("x-amz-content-sha256");
        if payload
            .as_deref()
            .is_none_or(|p| p.starts_with("STREAMING-AWS4-HMAC-SHA256"))
        {
            return Resigned::AsIs;
        }
        let Some(time) = header("x-amz-date").and_then(|d| amz_date(&d, a.date)) else {
            return Resigned::AsIs;
        };
        let Ok(Some((_, secret, _))) = self.platform.s3_credentials(a.access_key).await else {
            return Resigned::AsIs;
        };
        // The headers the client signed, as it sent them; x-amz-date is
        // the signer's own.
        let mut signed: Vec<(String, String)> = Vec::new();
        for name in &a.signed_headers {
            if *name == "x-amz-date" {
                continue;
            }
            let values: Vec<&str> = headers
                .get_all(*name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            if values.is_empty() {
                return Resigned::Mismatch;
            }
            signed.push(((*name).to_owned(), values.join(",")));
        }
        let host = header("host").unwrap_or_default();
        let url = format!("http://{host}{path}");
        let payload = payload.unwrap_or_default();
        let sign_for = |region: &str| {
            signature(
                method.as_str(),
                &url,
                &signed,
                &payload,
                (a.access_key, &secret),
                (region, a.service, time),
            )
        };
        let Some(theirs) = sign_for(a.region) else {
            return Resigned::Mismatch;
        };
        if !constant_time_eq(theirs.1.as_bytes(), a.signature.as_bytes()) {
            return Resigned::Mismatch;
        }
        let Some((ours, _)) = sign_for(SIGNED_AGAIN_FOR) else {
            return Resigned::Mismatch;
        };
        match HeaderValue::from_str(&ours) {
            Ok(v) => {
                request.headers_mut().insert(http::header::AUTHORIZATION, v);
                Resigned::Again
            }
            Err(_) => Resigned::Mismatch,
        }
    }
}

/// The `Authorization` header aws-sigv4 makes for this request, and its
/// signature.
fn signature(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    payload: &str,
    (access_key, secret): (&str, &str),
    (region, service, time): (&str, &str, SystemTime),
) -> Option<(String, String)> {
    let identity =
        aws_credential_types::Credentials::new(access_key, secret, None, None, "nuage").into();
    let mut settings = SigningSettings::default();
    // S3's way: the path as sent, encoded once, not normalised; every
    // header the client signed is signed again.
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.excluded_headers = None;
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
        method,
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Precomputed(payload.to_owned()),
    )
    .ok()?;
    let (instructions, signature) = sign(signable, &params).ok()?.into_parts();
    let header = instructions
        .headers()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.to_owned())?;
    Some((header, signature))
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
