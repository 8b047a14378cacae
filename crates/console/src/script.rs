//! What the console's scripts (static/*.js) call: JSON in, JSON or an RFC
//! 9457 problem out, the session's CSRF token in the `x-csrf-token` header.
//! One shape for every script's call (drive uploads, grants, sealed bids,
//! tender documents).

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nuage_api::problem::Problem;
use nuage_service::ServiceError;
use nuage_service::auth::Session;
use serde::Serialize;

use crate::error::FormError;
use crate::session::Ctx;

/// A problem as the console's scripts read it: the API's RFC 9457 problem,
/// its title in the reader's language.
pub(crate) fn problem(status: StatusCode, title: &str, detail: Option<String>) -> Response {
    Problem {
        kind: "urn:nuage:problem:console".into(),
        title: title.to_owned(),
        status: status.as_u16(),
        detail,
        field: None,
    }
    .into_response()
}

/// The signed-in session of a script's upload, its CSRF token (the
/// `x-csrf-token` header) checked; or the problem to answer.
pub(crate) fn session<'a>(ctx: &'a Ctx, headers: &HeaderMap) -> Result<&'a Session, Box<Response>> {
    let Some(session) = ctx.session.as_ref().filter(|s| !s.second_factor_pending) else {
        return Err(Box::new(problem(
            StatusCode::UNAUTHORIZED,
            ctx.t.err_unauthenticated,
            None,
        )));
    };
    let token = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if ctx.check_csrf(token).is_err() {
        return Err(Box::new(problem(
            StatusCode::FORBIDDEN,
            ctx.t.td.err_session,
            None,
        )));
    }
    Ok(session)
}

/// A script's upload answered: 201 with the JSON, or a problem.
pub(crate) fn answer<T: Serialize>(ctx: &Ctx, outcome: Result<T, ServiceError>) -> Response {
    reply(ctx, StatusCode::CREATED, outcome)
}

/// A script's call answered: `status` with the JSON, or a problem.
pub(crate) fn reply<T: Serialize>(
    ctx: &Ctx,
    status: StatusCode,
    outcome: Result<T, ServiceError>,
) -> Response {
    match outcome {
        Ok(value) => (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&value).unwrap_or_default(),
        )
            .into_response(),
        Err(e) => failure(ctx, e),
    }
}

/// The problem a failed use case answers a script (a fault is logged, and
/// told in general words).
pub(crate) fn failure(ctx: &Ctx, e: ServiceError) -> Response {
    match FormError::from_service(ctx.t, e) {
        Ok(error) => problem(error.status, error.message, error.detail),
        Err(fault) => {
            crate::error::log_fault(&fault);
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                ctx.t.server_error_text,
                None,
            )
        }
    }
}
