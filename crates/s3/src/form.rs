//! Browser-form uploads (`POST` Object) as AWS answers them, around what
//! `s3s` does (it parses the form, checks the policy and its signature, and
//! honours `success_action_status` and `success_action_redirect`):
//!
//! - the `${filename}` variable of the `key` field becomes the name of the
//!   file the browser sends, before `s3s` reads the form;
//! - a policy condition the form does not meet answers `403 AccessDenied`
//!   ("Invalid according to Policy"), where `s3s` answers 400.

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http::{HeaderValue, Request, Response, StatusCode, header};

/// How much of a form is read ahead for the file's name: the fields come
/// before the file, and are small.
const LOOKAHEAD: usize = 64 * 1024;

const VARIABLE: &str = "${filename}";

/// How long the fields read ahead may take to come, each piece: a form
/// holds one of the few places browser forms have while it is read.
const IDLE: std::time::Duration = std::time::Duration::from_secs(30);

/// The form's boundary, from its `Content-Type`.
fn boundary(request: &Request<Body>) -> Option<String> {
    let content_type = request.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    content_type.split(';').find_map(|part| {
        let (name, value) = part.trim().split_once('=')?;
        name.eq_ignore_ascii_case("boundary")
            .then(|| value.trim_matches('"').to_owned())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The `filename` of the `file` part, once its headers are in `head`.
fn file_name(head: &[u8], boundary: &str) -> Option<Result<String, ()>> {
    let delimiter = format!("--{boundary}\r\n");
    let mut at = 0;
    while let Some(found) = find(&head[at..], delimiter.as_bytes()) {
        let start = at + found + delimiter.len();
        let end = start + find(&head[start..], b"\r\n\r\n")?;
        let headers = String::from_utf8_lossy(&head[start..end]);
        let disposition = headers
            .split("\r\n")
            .find(|h| h.to_ascii_lowercase().starts_with("content-disposition:"))?;
        let is_file = disposition
            .split(';')
            .any(|p| p.trim().eq_ignore_ascii_case("name=\"file\""));
        if is_file {
            let name = disposition.split(';').find_map(|p| {
                p.trim()
                    .strip_prefix("filename=")
                    .map(|v| v.trim_matches('"').to_owned())
            });
            // A name with a path keeps its last part, as browsers send it.
            return Some(
                name.map(|n| n.rsplit(['/', '\\']).next().unwrap_or_default().to_owned())
                    .filter(|n| !n.is_empty())
                    .ok_or(()),
            );
        }
        at = end;
    }
    None
}

/// Puts the file's name in place of `${filename}` in the `key` field.
pub async fn substitute_filename(request: Request<Body>) -> Request<Body> {
    let Some(boundary) = boundary(&request) else {
        return request;
    };
    let (mut parts, body) = request.into_parts();
    let mut stream = body.into_data_stream();
    let mut head = BytesMut::new();
    let mut failed = None;
    let name = loop {
        if let Some(found) = file_name(&head, &boundary) {
            break found.ok();
        }
        if head.len() > LOOKAHEAD {
            break None;
        }
        match tokio::time::timeout(IDLE, stream.next()).await {
            Ok(Some(Ok(chunk))) => head.extend_from_slice(&chunk),
            Ok(Some(Err(e))) => {
                failed = Some(e);
                break None;
            }
            Ok(None) => break None,
            Err(_) => {
                failed = Some(axum::Error::new("the form sent nothing for too long"));
                break None;
            }
        }
    };
    let head = head.freeze();
    let (head, grown) = match name.and_then(|n| replace_in_key(&head, &boundary, &n)) {
        Some(new) => {
            let grown = new.len() as i64 - head.len() as i64;
            (new, grown)
        }
        None => (head, 0),
    };
    let length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| l.parse::<i64>().ok());
    if let Some(length) = length
        && grown != 0
    {
        parts.headers.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from((length + grown).max(0) as u64),
        );
    }
    let first = futures::stream::once(async move {
        match failed {
            Some(e) => Err(e),
            None => Ok(head),
        }
    });
    Request::from_parts(parts, Body::from_stream(first.chain(stream)))
}

/// The head with `${filename}` replaced in the `key` field's value.
fn replace_in_key(head: &[u8], boundary: &str, name: &str) -> Option<Bytes> {
    let marker = b"name=\"key\"";
    let at = find(head, marker)?;
    let value_start = at + find(&head[at..], b"\r\n\r\n")? + 4;
    let value_end =
        value_start + find(&head[value_start..], format!("\r\n--{boundary}").as_bytes())?;
    let value = std::str::from_utf8(&head[value_start..value_end]).ok()?;
    if !value.contains(VARIABLE) {
        return None;
    }
    let mut out = BytesMut::with_capacity(head.len() + name.len());
    out.extend_from_slice(&head[..value_start]);
    out.extend_from_slice(value.replace(VARIABLE, name).as_bytes());
    out.extend_from_slice(&head[value_end..]);
    Some(out.freeze())
}

/// A form refused for a policy condition answers as AWS does: 403.
pub async fn policy_refusal(response: Response<Body>) -> Response<Body> {
    if response.status() != StatusCode::BAD_REQUEST {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let text = String::from_utf8_lossy(&bytes);
    let condition =
        text.contains("<Code>InvalidPolicyDocument</Code>") && text.contains("Policy condition");
    if !condition {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let detail = text
        .split("<Message>")
        .nth(1)
        .and_then(|m| m.split("</Message>").next())
        .unwrap_or_default();
    let xml = crate::error_xml(
        "AccessDenied",
        &format!("Invalid according to Policy: {detail}"),
    );
    parts.status = StatusCode::FORBIDDEN;
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(xml.len()));
    Response::from_parts(parts, Body::from(xml))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: &str = "--B\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nuploads/${filename}\r\n\
        --B\r\nContent-Disposition: form-data; name=\"policy\"\r\n\r\nP\r\n\
        --B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"C:\\\\docs\\\\cv.pdf\"\r\n\
        Content-Type: application/pdf\r\n\r\nBYTES\r\n--B--\r\n";

    #[test]
    fn the_files_name_fills_the_key() {
        let name = file_name(FORM.as_bytes(), "B")
            .expect("found")
            .expect("named");
        assert_eq!(name, "cv.pdf");
        let out = replace_in_key(FORM.as_bytes(), "B", &name).expect("replaced");
        let out = String::from_utf8(out.to_vec()).expect("utf-8");
        assert!(out.contains("\r\n\r\nuploads/cv.pdf\r\n--B"), "{out}");
        assert!(out.ends_with("BYTES\r\n--B--\r\n"));
    }

    #[test]
    fn a_form_without_the_variable_or_a_file_is_left_alone() {
        let plain = FORM.replace("${filename}", "fixed.txt");
        assert!(replace_in_key(plain.as_bytes(), "B", "cv.pdf").is_none());
        assert!(
            file_name(
                b"--B\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n",
                "B"
            )
            .is_none()
        );
    }
}
