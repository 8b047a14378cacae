//! The console's pages, one module per area. Each handler reads the request
//! through [`Ctx`](crate::session::Ctx), calls one use case of the platform,
//! and answers with a page, a redirect or a form shown again with its error.

pub mod auth;
pub mod billing;
pub mod drive;
pub mod grants;
pub mod keys;
pub mod market;
pub mod operator;
pub mod org;
pub mod provider;
pub mod reset;
pub mod security;
pub mod shares;
pub mod tender_desk;
pub mod tenders;
pub mod websites;

use axum::Form;
use axum::extract::rejection::FormRejection;
use nuage_domain::DomainError;
use nuage_domain::ids::OrgId;
use nuage_service::auth::Session;
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::error::PageError;
use crate::session::Ctx;

/// A form body, or the console's 400 page when it cannot be read at all.
pub fn read_form<T>(form: Result<Form<T>, FormRejection>) -> Result<T, PageError> {
    form.map(|Form(body)| body).map_err(|_| PageError::BadForm)
}

/// The query of a listing page.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub cursor: Option<String>,
}

impl ListQuery {
    pub fn page(&self) -> nuage_service::PageRequest {
        nuage_service::PageRequest {
            cursor: self.cursor.clone().filter(|c| !c.is_empty()),
            limit: Some(50),
        }
    }
}

/// An option of a `<select>`.
pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

/// A form with no field but its CSRF token (which [`Posted`](crate::form::Posted)
/// checks).
#[derive(Deserialize)]
pub struct NoFields {}

/// The session's current organisation, if it has one.
pub fn current_org(
    session: &Session,
) -> Result<Option<(OrgId, &nuage_service::accounts::Membership)>, PageError> {
    match &session.current_org {
        None => Ok(None),
        Some(m) => Ok(Some((
            OrgId::parse(&m.org_id).map_err(|e| PageError::Service(e.into()))?,
            m,
        ))),
    }
}

/// The link to the next page of a listing, keeping the rest of the path.
pub fn next_page_href(path: &str, next_cursor: Option<&str>) -> Option<String> {
    next_cursor.map(|c| format!("{path}?cursor={}", crate::session::url_encode(c)))
}

/// A query string, or its defaults when it cannot be read: a listing's
/// query is a convenience, never worth an error page.
pub fn read_query<T: Default>(
    query: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> T {
    query.map(|axum::extract::Query(q)| q).unwrap_or_default()
}

/// A form's fields as its pairs, in order (repeated names kept).
pub type Pairs = Vec<(String, String)>;

/// A field's value, trimmed; empty when absent.
pub fn field(pairs: &Pairs, name: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default()
}

/// Every value of a repeated field.
pub fn all(pairs: &Pairs, name: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

/// A comma-separated list.
pub fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A whole number, or an error on `field`.
pub fn number<T: std::str::FromStr>(value: &str, field: &'static str) -> Result<T, DomainError> {
    value
        .trim()
        .parse()
        .map_err(|_| DomainError::invalid(field, format!("{value:?} is not a whole number")))
}

/// A decimal number (a comma is read as the decimal point).
pub fn decimal(value: &str, field: &'static str) -> Result<Decimal, DomainError> {
    value
        .trim()
        .replace(',', ".")
        .parse()
        .map_err(|_| DomainError::invalid(field, format!("{value:?} is not a number")))
}

/// A checkbox or option of a form, with its state.
pub struct Pick {
    pub value: String,
    pub label: String,
    pub checked: bool,
}

/// The storage's refusals in the console's words.
pub fn storage_error(e: nuage_storage::StorageError) -> nuage_service::ServiceError {
    use nuage_service::ServiceError;
    use nuage_storage::StorageError as E;
    match e {
        E::Service(e) => e,
        E::NoSuchBucket => ServiceError::NotFound("bucket"),
        E::NoSuchKey | E::NoSuchVersion | E::MethodNotAllowed => ServiceError::NotFound("file"),
        E::NoSuchUpload => ServiceError::NotFound("upload"),
        E::InvalidPart(m) => DomainError::invalid("part", m).into(),
        E::InvalidPartOrder | E::EntityTooSmall => {
            DomainError::invalid("part", e.to_string()).into()
        }
        E::AccessDenied => ServiceError::Forbidden("not this organisation's storage".into()),
        E::Conflict(m) => ServiceError::Conflict(m),
        E::QuotaExceeded => ServiceError::Conflict(e.to_string()),
        E::InvalidArgument(m) | E::InvalidRequest(m) => DomainError::invalid("path", m).into(),
        E::EntityTooLarge | E::IncompleteBody | E::RequestTimeout => {
            DomainError::invalid("file", e.to_string()).into()
        }
        other => ServiceError::Internal(other.to_string()),
    }
}

/// The member acting on its organisation's storage, as the storage sees it:
/// authorised by the service (its role, the organisation's policy) on each
/// request, never taken from the session alone.
pub async fn storage_caller(
    ctx: &Ctx,
    storage: &nuage_storage::Storage,
    session: &Session,
    org: OrgId,
) -> Result<nuage_storage::S3Caller, nuage_service::ServiceError> {
    storage
        .member_caller(
            &session.principal(),
            &ctx.meta,
            org,
            nuage_domain::org::Permission::Use,
            "console",
        )
        .await
}
