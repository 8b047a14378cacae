//! Websites' own domains: claimed for a bucket, proven by a TXT record,
//! released. An owner or admin of the organisation acts on them.

use axum::http::StatusCode;
use axum::{Extension, Json};
use nuage_service::ServiceError;
use nuage_storage::Storage;
use nuage_storage::domains::DomainClaim;
use serde::Deserialize;
use utoipa::ToSchema;

use super::org_id;
use crate::extract::{Caller, JsonBody, Meta, PathParam};
use crate::problem::{ApiError, Problem};

/// A domain to serve a website at, e.g. `www.mairie-exemple.fr`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimDomain {
    pub domain: String,
}

fn enabled(storage: Option<Extension<Storage>>) -> Result<Storage, ApiError> {
    storage
        .map(|Extension(s)| s)
        .ok_or_else(|| ServiceError::Internal("storage is not enabled".into()).into())
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/websites/{bucket}/domains", tag = "websites",
    params(("org_id" = String, Path), ("bucket" = String, Path)), request_body = ClaimDomain,
    responses((status = 201, body = DomainClaim, description = "The claim, with the TXT record that proves it; served once verified"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn claim(
    Caller(who): Caller,
    Meta(meta): Meta,
    storage: Option<Extension<Storage>>,
    PathParam((org, bucket)): PathParam<(String, String)>,
    body: JsonBody<ClaimDomain>,
) -> Result<(StatusCode, Json<DomainClaim>), ApiError> {
    let storage = enabled(storage)?;
    let caller = storage.website_caller(&who, &meta, org_id(&org)?).await?;
    let claim = storage
        .claim_domain(&caller, &bucket, &body.value.domain)
        .await?;
    Ok((StatusCode::CREATED, Json(claim)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/websites/{bucket}/domains", tag = "websites",
    params(("org_id" = String, Path), ("bucket" = String, Path)),
    responses((status = 200, body = Vec<DomainClaim>), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn list(
    Caller(who): Caller,
    Meta(meta): Meta,
    storage: Option<Extension<Storage>>,
    PathParam((org, bucket)): PathParam<(String, String)>,
) -> Result<Json<Vec<DomainClaim>>, ApiError> {
    let storage = enabled(storage)?;
    let caller = storage.website_caller(&who, &meta, org_id(&org)?).await?;
    Ok(Json(storage.domains(&caller, &bucket).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/websites/{bucket}/domains/{domain}/verify", tag = "websites",
    params(("org_id" = String, Path), ("bucket" = String, Path), ("domain" = String, Path)),
    responses((status = 200, body = DomainClaim, description = "Proven: the domain serves the website from now on"),
        (status = 409, body = Problem, description = "The TXT record is not there yet"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn verify(
    Caller(who): Caller,
    Meta(meta): Meta,
    storage: Option<Extension<Storage>>,
    PathParam((org, bucket, domain)): PathParam<(String, String, String)>,
) -> Result<Json<DomainClaim>, ApiError> {
    let storage = enabled(storage)?;
    let caller = storage.website_caller(&who, &meta, org_id(&org)?).await?;
    Ok(Json(
        storage.verify_domain(&caller, &bucket, &domain).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/websites/{bucket}/domains/{domain}", tag = "websites",
    params(("org_id" = String, Path), ("bucket" = String, Path), ("domain" = String, Path)),
    responses((status = 204), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn release(
    Caller(who): Caller,
    Meta(meta): Meta,
    storage: Option<Extension<Storage>>,
    PathParam((org, bucket, domain)): PathParam<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let storage = enabled(storage)?;
    let caller = storage.website_caller(&who, &meta, org_id(&org)?).await?;
    storage.release_domain(&caller, &bucket, &domain).await?;
    Ok(StatusCode::NO_CONTENT)
}
