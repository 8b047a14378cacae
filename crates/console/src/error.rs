//! The one mapping of failures to the console: a redirect, a form shown again
//! with a readable message, or an error page in the user's language. Server
//! faults are logged and shown as a generic page; their details never reach
//! the browser.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use nuage_service::ServiceError;

use crate::i18n::Texts;

/// Why a page could not be shown.
#[derive(Debug)]
pub enum PageError {
    /// Go elsewhere first (to log in, to give the second factor).
    Redirect(String),
    /// A form whose CSRF token does not match: refused, nothing changed.
    Csrf,
    NotFound,
    /// A form body that could not be read at all.
    BadForm,
    Service(ServiceError),
}

impl From<ServiceError> for PageError {
    fn from(e: ServiceError) -> Self {
        Self::Service(e)
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        Self::Service(ServiceError::Internal(format!(
            "a template failed to render: {e}"
        )))
    }
}

/// Marks a response whose page the console's error layer renders, knowing
/// the request's language and session.
#[derive(Clone)]
pub(crate) struct ErrorMarker(pub Arc<PageError>);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            Self::Redirect(to) => Redirect::to(&to).into_response(),
            other => {
                let mut response = other.status().into_response();
                response
                    .extensions_mut()
                    .insert(ErrorMarker(Arc::new(other)));
                response
            }
        }
    }
}

impl PageError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Redirect(_) => StatusCode::SEE_OTHER,
            Self::Csrf => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadForm => StatusCode::BAD_REQUEST,
            Self::Service(e) => service_status(e),
        }
    }

    /// The title and message of the error page, and the detail worth showing.
    pub fn describe(&self, t: &'static Texts) -> (&'static str, &'static str, Option<String>) {
        match self {
            Self::Redirect(_) => (t.not_found_title, t.not_found_text, None),
            Self::Csrf => (t.csrf_title, t.csrf_text, None),
            Self::NotFound => (t.not_found_title, t.not_found_text, None),
            Self::BadForm => (t.err_invalid, t.err_bad_form, None),
            Self::Service(e) if e.is_server_fault() => {
                (t.server_error_title, t.server_error_text, None)
            }
            Self::Service(ServiceError::NotFound(_)) => (t.not_found_title, t.not_found_text, None),
            Self::Service(e) => {
                let message = FormError::from_client_fault(t, e);
                let title = if matches!(e, ServiceError::Forbidden(_)) {
                    t.forbidden_title
                } else {
                    message.message
                };
                (title, message.message, message.detail)
            }
        }
    }
}

/// The status a service error is answered with.
pub fn service_status(e: &ServiceError) -> StatusCode {
    match e {
        ServiceError::Invalid(_) => StatusCode::BAD_REQUEST,
        ServiceError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
        ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
        ServiceError::Conflict(_) => StatusCode::CONFLICT,
        ServiceError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ServiceError::Db(_) | ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A form's error, shown above it (`role="alert"`) and linked to the field
/// it concerns (`aria-describedby`).
#[derive(Debug, Clone)]
pub struct FormError {
    pub status: StatusCode,
    pub message: &'static str,
    /// The label of the field at fault, in the user's language.
    pub field_label: Option<&'static str>,
    /// The field at fault, as named in the form (`email`, `password`…).
    pub field: Option<&'static str>,
    /// The service's own words, in English.
    pub detail: Option<String>,
}

impl FormError {
    /// The form error for a service error, or the error itself when it is
    /// the server's fault (then the whole page fails).
    pub fn from_service(t: &'static Texts, e: ServiceError) -> Result<Self, PageError> {
        if e.is_server_fault() {
            return Err(PageError::Service(e));
        }
        Ok(Self::from_client_fault(t, &e))
    }

    fn from_client_fault(t: &'static Texts, e: &ServiceError) -> Self {
        let (message, detail) = match e {
            ServiceError::Invalid(d) => (t.err_invalid, Some(invalid_reason(d))),
            ServiceError::Unauthenticated(m) => (t.err_unauthenticated, Some(m.clone())),
            ServiceError::Forbidden(m) => (t.err_forbidden, Some(m.clone())),
            ServiceError::NotFound(_) => (t.err_not_found, None),
            ServiceError::Conflict(m) => (t.err_conflict, Some(m.clone())),
            ServiceError::RateLimited => (t.err_rate_limited, None),
            ServiceError::Db(_) | ServiceError::Internal(_) => (t.server_error_text, None),
        };
        let field = match e {
            ServiceError::Invalid(d) => Some(d.field()),
            _ => None,
        };
        Self {
            status: service_status(e),
            message,
            field_label: field.and_then(|f| t.field_label(f)),
            field,
            detail,
        }
    }

    /// A form error with a message of the console's own.
    pub fn new(status: StatusCode, message: &'static str) -> Self {
        Self {
            status,
            message,
            field_label: None,
            field: None,
            detail: None,
        }
    }

    /// Whether this error concerns the named field.
    pub fn on(&self, field: &str) -> bool {
        self.field == Some(field)
    }
}

/// A domain error's reason without the field name the label already gives.
fn invalid_reason(e: &nuage_domain::DomainError) -> String {
    match e {
        nuage_domain::DomainError::Invalid { reason, .. } => reason.clone(),
    }
}

/// Logs a server fault once, where it is turned into a page.
pub fn log_fault(e: &PageError) {
    if let PageError::Service(e) = e
        && e.is_server_fault()
    {
        tracing::error!(error = %e, "console request failed");
    }
}

/// A form's error, if any, as its template reads it.
#[derive(Debug, Clone, Default)]
pub struct FormAlert(pub Option<FormError>);

impl FormAlert {
    pub fn none() -> Self {
        Self(None)
    }

    pub fn get(&self) -> Option<&FormError> {
        self.0.as_ref()
    }

    /// The accessibility attributes of the field `field`, whose hint (if
    /// any) has the id `hint`: it is described by the hint and, when the
    /// error concerns it, by the error summary too.
    pub fn field_attrs(&self, field: &str, hint: &str) -> String {
        let invalid = self.0.as_ref().is_some_and(|e| e.on(field));
        let described: Vec<&str> = [hint, if invalid { "form-error" } else { "" }]
            .into_iter()
            .filter(|id| !id.is_empty())
            .collect();
        let mut attrs = String::new();
        if invalid {
            attrs.push_str(" aria-invalid=\"true\"");
        }
        if !described.is_empty() {
            attrs.push_str(&format!(" aria-describedby=\"{}\"", described.join(" ")));
        }
        attrs
    }

    pub fn status_or(&self, ok: axum::http::StatusCode) -> axum::http::StatusCode {
        self.0.as_ref().map_or(ok, |e| e.status)
    }
}

impl From<FormError> for FormAlert {
    fn from(e: FormError) -> Self {
        Self(Some(e))
    }
}
