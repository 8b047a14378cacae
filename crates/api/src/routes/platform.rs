//! The platform itself: its public facts and the operator's audit check.

use axum::Json;
use axum::extract::State;
use nuage_service::{ChainReport, Platform};
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
