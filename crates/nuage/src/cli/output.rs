//! How the client answers: JSON for scripts (`--json`) or text for people,
//! errors on stderr with the exit code scripts test (1: refused or invalid,
//! 2: could not ask).

use std::process::ExitCode;

use serde_json::Value;

use super::client::ClientError;

pub(crate) fn print(value: &Value, json: bool, text: impl FnOnce(&Value) -> String) {
    if json {
        println!("{value}");
    } else {
        println!("{}", text(value));
    }
}

pub(crate) fn fail(e: &ClientError) -> ExitCode {
    eprintln!("nuage: {e}");
    match e {
        ClientError::Refused { .. } | ClientError::Invalid(_) => ExitCode::from(1),
        _ => ExitCode::from(2),
    }
}

pub(crate) fn urlencode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

/// An instant in milliseconds since the Unix epoch, as an RFC 3339 UTC time.
pub(crate) fn date_of_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}
