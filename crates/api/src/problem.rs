//! The API's one mapping of errors to the wire: RFC 9457 problem details.
//! Internal details never reach a client; server faults are logged here.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nuage_service::ServiceError;
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem detail.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// What is wrong with this request, in words a person can act on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:nuage:problem:{slug}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: Some(detail.into()),
            field: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, Json(&self)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"nuage\""),
            );
        }
        response
    }
}

/// Any error a handler returns.
#[derive(Debug)]
pub struct ApiError(pub Problem);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        Self(p)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let problem = match &e {
            ServiceError::Invalid(d) => {
                let mut p = Problem::new(StatusCode::BAD_REQUEST, "invalid-field", d.to_string());
                p.field = Some(d.field().to_owned());
                p
            }
            ServiceError::Unauthenticated(m) => {
                Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", m.clone())
            }
            ServiceError::Forbidden(m) => {
                Problem::new(StatusCode::FORBIDDEN, "forbidden", m.clone())
            }
            ServiceError::NotFound(what) => Problem::new(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("{what} not found"),
            ),
            ServiceError::Conflict(m) => Problem::new(StatusCode::CONFLICT, "conflict", m.clone()),
            ServiceError::RateLimited => {
                Problem::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", e.to_string())
            }
            ServiceError::Db(_) | ServiceError::Internal(_) => {
                tracing::error!(error = %e, "request failed on the server's side");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the server could not complete the request; it has been logged",
                )
            }
        };
        Self(problem)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let (status, slug) = match &r {
            JsonRejection::MissingJsonContentType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type")
            }
            JsonRejection::BytesRejection(_) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                (StatusCode::PAYLOAD_TOO_LARGE, "body-too-large")
            }
            JsonRejection::JsonDataError(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-body"),
            _ => (StatusCode::BAD_REQUEST, "malformed-body"),
        };
        Self(Problem::new(status, slug, r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-query",
            r.body_text(),
        ))
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-path",
            r.body_text(),
        ))
    }
}

/// Turns any error response under the API that is not yet a problem (from
/// routing: 404, 405; from layers: 413, 408) into one.
pub async fn problem_for_bare_errors(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
    if status.is_client_error() || status.is_server_error() {
        if is_problem {
            return response;
        }
        let detail = match status {
            StatusCode::NOT_FOUND => "no such resource in the API",
            StatusCode::METHOD_NOT_ALLOWED => "this resource does not accept this method",
            StatusCode::PAYLOAD_TOO_LARGE => "the request body is larger than the server accepts",
            _ => "the request could not be completed",
        };
        let slug = match status {
            StatusCode::NOT_FOUND => "not-found",
            StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "body-too-large",
            s if s.is_server_error() => "internal",
            _ => "bad-request",
        };
        let mut rebuilt = Problem::new(status, slug, detail).into_response();
        if let Some(allow) = response.headers().get(header::ALLOW) {
            rebuilt.headers_mut().insert(header::ALLOW, allow.clone());
        }
        return rebuilt;
    }
    response
}
