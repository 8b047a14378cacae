//! The platform itself: its public facts, the operator's audit check and
//! background jobs.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use nuage_service::jobs::{JobState, Jobs, RunOutcome};
use nuage_service::{ChainReport, Platform, ServiceError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::extract::Caller;
use crate::problem::{ApiError, Problem};

/// Public facts about this platform.
#[derive(Serialize, ToSchema)]
pub struct PlatformInfo {
    pub version: String,
    /// The Ed25519 public key (hex) that signs audit checkpoints and receipts.
    pub signing_public_key: String,
}

#[utoipa::path(get, path = "/api/v1/platform", tag = "platform", responses((status = 200, body = PlatformInfo)))]
pub async fn info(State(platform): State<Platform>) -> Json<PlatformInfo> {
    Json(PlatformInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        signing_public_key: platform.audit().public_key_hex(),
    })
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
    params(("name" = String, Path, description = "billing, webhooks, quota-alerts, storage-upkeep, sessions or search-index")),
    responses((status = 200, body = RunOutcome, description = "Run on this node now, unless another node was running it"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn run_job(
    Caller(who): Caller,
    Path(name): Path<String>,
    running: Option<Extension<Jobs>>,
) -> Result<Json<RunOutcome>, ApiError> {
    Ok(Json(jobs(running)?.run_now(&who, &name).await?))
}
