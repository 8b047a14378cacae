//! Request dates as AWS reads them, before `s3s` checks a signature.
//!
//! - Signature V2 signs a date (`x-amz-date` if present, else `Date`) but
//!   `s3s` never reads it, so a signed request could be replayed forever.
//!   Here it must parse and be within 15 minutes of now, or the request is
//!   refused as AWS refuses it: `AccessDenied` (no valid date) or
//!   `RequestTimeTooSkewed`.
//! - Signature V4 may sign `Date` instead of `x-amz-date`, which AWS
//!   accepts and `s3s` does not: the `Date` is given to `s3s` as
//!   `x-amz-date` (a header the client did not sign, so the signature is
//!   checked as made). With both, `x-amz-date` counts, as on AWS.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue};

/// How far a request's date may be from the server's clock.
const SKEW: Duration = Duration::from_secs(15 * 60);

/// Why a request's date is refused: its S3 error code and message.
#[derive(Debug, PartialEq, Eq)]
pub struct DateError {
    pub code: &'static str,
    pub message: &'static str,
}

const NO_DATE: DateError = DateError {
    code: "AccessDenied",
    message: "AWS authentication requires a valid Date or x-amz-date header",
};

const SKEWED: DateError = DateError {
    code: "RequestTimeTooSkewed",
    message: "The difference between the request time and the current time is too large.",
};

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Checks or completes the dates of a signed request; `now` is the
/// server's clock.
pub fn check(headers: &mut HeaderMap, now: SystemTime) -> Result<(), DateError> {
    let Some(auth) = header(headers, "authorization") else {
        return Ok(());
    };
    if auth.starts_with("AWS ") {
        let date = header(headers, "x-amz-date")
            .or_else(|| header(headers, "date"))
            .and_then(|d| httpdate::parse_http_date(d).ok())
            .ok_or(NO_DATE)?;
        let apart = now
            .duration_since(date)
            .or_else(|_| date.duration_since(now))
            .unwrap_or(Duration::MAX);
        if apart > SKEW {
            return Err(SKEWED);
        }
    } else if auth.starts_with("AWS4-HMAC-SHA256 ") && !headers.contains_key("x-amz-date") {
        let Some(date) = header(headers, "date") else {
            return Ok(());
        };
        let date = httpdate::parse_http_date(date).map_err(|_| NO_DATE)?;
        let at = time::OffsetDateTime::from(date);
        let basic = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        );
        headers.insert(
            "x-amz-date",
            HeaderValue::from_str(&basic).map_err(|_| NO_DATE)?,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    fn at(text: &str) -> SystemTime {
        httpdate::parse_http_date(text).expect("date")
    }

    const NOW: &str = "Mon, 07 Dec 2026 12:00:00 GMT";

    #[test]
    fn signature_v2_needs_a_date_near_now() {
        let now = at(NOW);
        let v2 = |date: &'static str, value: &str| {
            check(
                &mut headers(&[("authorization", "AWS KEY:sig"), (date, value)]),
                now,
            )
        };
        assert_eq!(v2("date", NOW), Ok(()));
        assert_eq!(v2("x-amz-date", "Mon, 07 Dec 2026 12:14:00 GMT"), Ok(()));
        assert_eq!(v2("date", "Mon, 07 Dec 2026 11:40:00 GMT"), Err(SKEWED));
        assert_eq!(v2("date", "yesterday"), Err(NO_DATE));
        assert_eq!(
            check(&mut headers(&[("authorization", "AWS KEY:sig")]), now),
            Err(NO_DATE)
        );
    }

    #[test]
    fn signature_v4_may_sign_date_instead_of_x_amz_date() {
        let now = at(NOW);
        let mut h = headers(&[
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=K/20261207/us-east-1/s3/aws4_request",
            ),
            ("date", NOW),
        ]);
        assert_eq!(check(&mut h, now), Ok(()));
        assert_eq!(header(&h, "x-amz-date"), Some("20261207T120000Z"));
        // With both, x-amz-date is left as it is.
        let mut both = headers(&[
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=K/20261207/us-east-1/s3/aws4_request",
            ),
            ("date", NOW),
            ("x-amz-date", "20261207T115959Z"),
        ]);
        assert_eq!(check(&mut both, now), Ok(()));
        assert_eq!(header(&both, "x-amz-date"), Some("20261207T115959Z"));
    }
}
