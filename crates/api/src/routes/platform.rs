//! The platform itself: its public facts, the operator's audit check and
//! background jobs.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use nuage_domain::platform_key::KeyPurpose;
use nuage_service::jobs::{JobState, Jobs, RunOutcome};
use nuage_service::platform_keys::{PlatformKey, RewrapProgress};
use nuage_service::{ChainReport, Platform, ServiceError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::extract::{Caller, Meta};
use crate::problem::{ApiError, Problem};

/// Public facts about this platform.
#[derive(Serialize, ToSchema)]
pub struct PlatformInfo {
    pub version: String,
    /// The Ed25519 public key (hex) that signs audit checkpoints and
    /// receipts now; earlier ones are at `GET /api/v1/platform/keys`.
    pub signing_public_key: String,
    /// Its epoch.
    pub signing_key_epoch: u32,
}

#[utoipa::path(get, path = "/api/v1/platform", tag = "platform",
    responses((status = 200, body = PlatformInfo), (status = "5XX", body = Problem)))]
pub async fn info(State(platform): State<Platform>) -> Result<Json<PlatformInfo>, ApiError> {
    let signing = platform
        .platform_keys()
        .await?
        .into_iter()
        .filter(|k| k.purpose == KeyPurpose::Signing)
        .max_by_key(|k| k.epoch)
        .ok_or_else(|| ServiceError::Internal("no signing key is recorded".into()))?;
    Ok(Json(PlatformInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        signing_public_key: signing.public_key.unwrap_or_default(),
        signing_key_epoch: signing.epoch,
    }))
}

#[utoipa::path(get, path = "/api/v1/platform/keys", tag = "platform",
    responses((status = 200, body = Vec<PlatformKey>, description = "Every key the platform has had, by purpose, oldest epoch first: public keys and fingerprints to check signatures offline"),
        (status = "5XX", body = Problem)))]
pub async fn keys(State(platform): State<Platform>) -> Result<Json<Vec<PlatformKey>>, ApiError> {
    Ok(Json(platform.platform_keys().await?))
}

#[utoipa::path(post, path = "/api/v1/platform/keys/{purpose}/rotate", tag = "platform",
    params(("purpose" = String, Path, description = "kek, audit or signing")),
    responses((status = 201, body = PlatformKey, description = "The new epoch; for kek, the key-rewrap job rewraps the organisation keys"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn rotate_key(
    State(platform): State<Platform>,
    Caller(who): Caller,
    Meta(meta): Meta,
    Path(purpose): Path<String>,
) -> Result<(StatusCode, Json<PlatformKey>), ApiError> {
    let purpose = KeyPurpose::parse(&purpose).map_err(ServiceError::from)?;
    Ok((
        StatusCode::CREATED,
        Json(platform.rotate_key(&who, &meta, purpose).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/platform/keys/rewrap", tag = "platform",
    responses((status = 200, body = RewrapProgress, description = "How many organisation keys the current key-encryption key wraps, and how many an older one"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn rewrap_progress(
    State(platform): State<Platform>,
    Caller(who): Caller,
) -> Result<Json<RewrapProgress>, ApiError> {
    Ok(Json(platform.rewrap_progress(&who).await?))
}

#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = ChainReport, description = "The verdict; `intact` is false when tampering was found"), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn verify_audit(
    State(platform): State<Platform>,
    Caller(who): Caller,
) -> Result<Json<ChainReport>, ApiError> {
    Ok(Json(platform.verify_audit(&who).await?))
}

/// The background jobs in the running nodes.
fn jobs(jobs: Option<Extension<Jobs>>) -> Result<Jobs, ApiError> {
    jobs.map(|Extension(j)| j)
        .ok_or_else(|| ServiceError::Internal("this node runs no background jobs".into()).into())
}

#[utoipa::path(get, path = "/api/v1/jobs", tag = "platform",
    responses((status = 200, body = Vec<JobState>, description = "Each background job: where it runs, its last run and outcome"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn list_jobs(
    Caller(who): Caller,
    running: Option<Extension<Jobs>>,
) -> Result<Json<Vec<JobState>>, ApiError> {
    Ok(Json(jobs(running)?.states(&who).await?))
}

#[utoipa::path(post, path = "/api/v1/jobs/{name}/run", tag = "platform",
    params(("name" = String, Path, description = "billing, webhooks, invoice-deliveries, quota-alerts, storage-upkeep, sessions, search-index or key-rewrap")),
    responses((status = 200, body = RunOutcome, description = "Run on this node now, unless another node was running it"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn run_job(
    Caller(who): Caller,
    Path(name): Path<String>,
    running: Option<Extension<Jobs>>,
) -> Result<Json<RunOutcome>, ApiError> {
    Ok(Json(jobs(running)?.run_now(&who, &name).await?))
}
