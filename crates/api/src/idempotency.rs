//! `Idempotency-Key` on creating POSTs: a retried request with the same key
//! and body gets the first response again instead of creating twice. Keys are
//! stored in the database, so a retry may reach any node.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nuage_service::idempotency::Reservation;
use nuage_service::{Platform, Principal};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::problem::{ApiError, Problem};

pub const HEADER: &str = "idempotency-key";

fn key_of(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()));
    key.map(|k| Some(k.to_owned())).ok_or_else(|| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-idempotency-key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )
        .into()
    })
}

/// The request's `Idempotency-Key`, if any, and the operation it names
/// (method and path): a key replays only the operation it was first used for.
pub struct Idempotency {
    key: Option<String>,
    operation: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Idempotency {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Ok(Self {
            key: key_of(&parts.headers)?,
            operation: format!("{} {}", parts.method, parts.uri.path()),
        })
    }
}

fn created(body: &str, replayed: bool) -> Response {
    let mut response = (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_owned(),
    )
        .into_response();
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// Runs `work` once per idempotency key and answers 201 with its result.
/// Anonymous callers share one namespace, so their keys are scoped to the body.
pub async fn create_once<T, F>(
    platform: &Platform,
    who: &Principal,
    idempotency: Idempotency,
    body_digest: &str,
    work: F,
) -> Result<Response, ApiError>
where
    T: Serialize,
    F: Future<Output = Result<T, ApiError>>,
{
    let digest = hex::encode(Sha256::digest(format!(
        "{}\n{body_digest}",
        idempotency.operation
    )));
    let Some(mut key) = idempotency.key else {
        return Ok((StatusCode::CREATED, Json(work.await?)).into_response());
    };
    if matches!(who, Principal::Anonymous) {
        key = format!("{key}:{digest}");
    }
    match platform.reserve_idempotency_key(who, &key, &digest).await? {
        Reservation::Seen { request_hash, .. } if request_hash != digest => Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "this Idempotency-Key was used for another request (another body or resource)",
        )
        .into()),
        Reservation::Seen {
            response: Some(body),
            ..
        } => Ok(created(&body, true)),
        Reservation::Seen { .. } => Err(Problem::new(
            StatusCode::CONFLICT,
            "idempotency-key-in-use",
            "a request with this Idempotency-Key is still being processed",
        )
        .into()),
        Reservation::Reserved => match work.await {
            Ok(value) => {
                let body = serde_json::to_string(&value).map_err(|e| {
                    ApiError::from(nuage_service::ServiceError::Internal(e.to_string()))
                })?;
                platform
                    .complete_idempotency_key(who, &key, StatusCode::CREATED.as_u16(), &body)
                    .await?;
                Ok(created(&body, false))
            }
            Err(e) => {
                platform.release_idempotency_key(who, &key).await?;
                Err(e)
            }
        },
    }
}
