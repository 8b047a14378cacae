//! How the client answers: JSON for scripts (`--json`) or text for people,
//! errors on stderr with the exit code scripts test (1: refused or invalid,
//! 2: could not ask).

use std::process::ExitCode;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::client::ClientError;

/// Prints the server's answer: as it came for scripts (`--json`), else read
/// as `T`, the type the server answers with, and written for people. An
/// answer that is not a `T` is an error, never a line of blanks.
pub(crate) fn show<T: DeserializeOwned>(
    answer: Value,
    json: bool,
    text: impl FnOnce(&T) -> String,
) -> Result<(), ClientError> {
    if json {
        println!("{answer}");
        return Ok(());
    }
    let typed = T::deserialize(answer).map_err(|e| ClientError::Unexpected(e.to_string()))?;
    println!("{}", text(&typed));
    Ok(())
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

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Deserialize)]
    struct Usage {
        bytes: i64,
    }

    #[test]
    fn an_answer_of_another_shape_is_an_error_not_a_line_of_blanks() {
        let bytes = |u: &Usage| u.bytes.to_string();
        assert!(matches!(
            show(json!({ "bytes": "many" }), false, bytes),
            Err(ClientError::Unexpected(_))
        ));
        assert!(matches!(
            show(json!({}), false, bytes),
            Err(ClientError::Unexpected(_))
        ));
        assert!(show(json!({ "bytes": 3 }), false, bytes).is_ok());
        // For scripts, the answer goes out as it came.
        assert!(show(json!("anything"), true, bytes).is_ok());
    }
}
