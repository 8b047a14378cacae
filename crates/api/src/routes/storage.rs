//! Object storage as the API shows it: usage and quotas, the access log,
//! and upkeep on demand for operators.

use axum::{Extension, Json};
use nuage_domain::billing::DayUsage;
use nuage_domain::bucket_policy::PublicAccessBlock;
use nuage_domain::error::DomainError;
use nuage_service::ServiceError;
use nuage_storage::custody::{Custody, ExternalKey};
use nuage_storage::recorder::AccessEntry;
use nuage_storage::rotation::KeyRotation;
use nuage_storage::{MaintenanceReport, Storage, StorageUsage};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::org_id;
use crate::extract::{Caller, JsonBody, Meta, Params, PathParam};
use crate::problem::{ApiError, Problem};

/// An organisation's storage quota; an absent limit is no limit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetQuota {
    #[schema(minimum = 0)]
    pub max_bytes: Option<i64>,
    #[schema(minimum = 0)]
    pub max_objects: Option<i64>,
}

#[utoipa::path(put, path = "/api/v1/orgs/{org_id}/quota", tag = "storage", params(("org_id" = String, Path)),
    request_body = SetQuota,
    responses((status = 200, body = StorageUsage), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn set_quota(
    Extension(storage): Extension<Storage>,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    body: JsonBody<SetQuota>,
) -> Result<Json<StorageUsage>, ApiError> {
    let q = body.value;
    Ok(Json(
        storage
            .set_storage_quota(&who, &meta, org_id(&id)?, q.max_bytes, q.max_objects)
            .await?,
    ))
}

/// Block Public Access for all of an organisation's buckets: each switch on
/// here holds for every bucket, whatever the bucket's own say. Every switch
/// is on until turned off.
#[derive(Debug, Deserialize, serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicAccessBlockSettings {
    /// Refuses ACLs that grant public access (Nuage accepts none anyway).
    pub block_public_acls: bool,
    /// Ignores public ACLs (Nuage has none).
    pub ignore_public_acls: bool,
    /// Refuses a bucket policy that makes a bucket public.
    pub block_public_policy: bool,
    /// Serves a bucket with a public policy only to its owner.
    pub restrict_public_buckets: bool,
}

impl From<PublicAccessBlock> for PublicAccessBlockSettings {
    fn from(b: PublicAccessBlock) -> Self {
        Self {
            block_public_acls: b.block_public_acls,
            ignore_public_acls: b.ignore_public_acls,
            block_public_policy: b.block_public_policy,
            restrict_public_buckets: b.restrict_public_buckets,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/public-access-block", tag = "storage", params(("org_id" = String, Path)),
    responses((status = 200, body = PublicAccessBlockSettings), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn public_access_block(
    Extension(storage): Extension<Storage>,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<PublicAccessBlockSettings>, ApiError> {
    Ok(Json(
        storage
            .org_public_access_block(&who, org_id(&id)?)
            .await?
            .into(),
    ))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org_id}/public-access-block", tag = "storage", params(("org_id" = String, Path)),
    request_body = PublicAccessBlockSettings,
    responses((status = 200, body = PublicAccessBlockSettings), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn set_public_access_block(
    Extension(storage): Extension<Storage>,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    body: JsonBody<PublicAccessBlockSettings>,
) -> Result<Json<PublicAccessBlockSettings>, ApiError> {
    let b = body.value;
    let block = PublicAccessBlock {
        block_public_acls: b.block_public_acls,
        ignore_public_acls: b.ignore_public_acls,
        block_public_policy: b.block_public_policy,
        restrict_public_buckets: b.restrict_public_buckets,
    };
    Ok(Json(
        storage
            .set_org_public_access_block(&who, &meta, org_id(&id)?, block)
            .await?
            .into(),
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/storage", tag = "storage", params(("org_id" = String, Path)),
    responses((status = 200, body = StorageUsage), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn usage(
    Extension(storage): Extension<Storage>,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<StorageUsage>, ApiError> {
    Ok(Json(storage.storage_usage(&who, org_id(&id)?).await?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/key", tag = "storage", params(("org_id" = String, Path)),
    responses((status = 200, body = KeyRotation, description = "The organisation key's version, and the rewrap of a rotation under way"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn org_key(
    Extension(storage): Extension<Storage>,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<KeyRotation>, ApiError> {
    Ok(Json(storage.key_rotation(&who, org_id(&id)?).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/key/rotate", tag = "storage", params(("org_id" = String, Path)),
    responses((status = 201, body = KeyRotation, description = "A new version wraps the data keys from now on; the earlier ones are rewrapped by the key-rewrap job, no object is rewritten"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn rotate_org_key(
    Extension(storage): Extension<Storage>,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
) -> Result<(axum::http::StatusCode, Json<KeyRotation>), ApiError> {
    Ok((
        axum::http::StatusCode::CREATED,
        Json(storage.rotate_org_key(&who, &meta, org_id(&id)?).await?),
    ))
}

/// Who is to hold the organisation's key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetCustody {
    /// `platform`, or `external` with `kms`.
    pub mode: String,
    pub kms: Option<ExternalKey>,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/custody", tag = "storage", params(("org_id" = String, Path)),
    responses((status = 200, body = Custody, description = "Who holds the organisation's key, and the state of its KMS's key"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn custody(
    Extension(storage): Extension<Storage>,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<Custody>, ApiError> {
    Ok(Json(storage.custody(&who, org_id(&id)?).await?))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org_id}/custody", tag = "storage", params(("org_id" = String, Path)),
    request_body = SetCustody,
    responses((status = 200, body = Custody, description = "Every version of the organisation's key is now wrapped by its holder; no data key changed"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn set_custody(
    Extension(storage): Extension<Storage>,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    body: JsonBody<SetCustody>,
) -> Result<Json<Custody>, ApiError> {
    let wanted = match (body.value.mode.as_str(), body.value.kms) {
        ("platform", None) => None,
        ("external", Some(kms)) => Some(kms),
        _ => {
            return Err(ServiceError::Invalid(DomainError::invalid(
                "mode",
                "platform, or external with kms (endpoint, server_name, ca_pem, key_id)",
            ))
            .into());
        }
    };
    Ok(Json(
        storage
            .set_custody(&who, &meta, org_id(&id)?, wanted)
            .await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UsageParams {
    /// The first day, `YYYY-MM-DD` (UTC); the month's first by default.
    pub from: Option<String>,
    /// The last day, included; today by default. At most 366 days.
    pub to: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/usage", tag = "storage",
    params(("org_id" = String, Path), UsageParams),
    responses((status = 200, body = Vec<DayUsage>, description = "Usage per bucket and day: storage in GB-months of each day's month, requests by class, egress and exit egress in GB (10⁹ bytes)"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn daily_usage(
    Extension(storage): Extension<Storage>,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
    Params(p): Params<UsageParams>,
) -> Result<Json<Vec<DayUsage>>, ApiError> {
    Ok(Json(
        storage
            .daily_usage(&who, org_id(&id)?, p.from.as_deref(), p.to.as_deref())
            .await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AccessLogParams {
    /// Entries before this id (the last id of the previous page).
    pub before: Option<String>,
    /// At most this many entries (1 to 1000, 100 by default).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/access-log", tag = "storage",
    params(("org_id" = String, Path), AccessLogParams),
    responses((status = 200, body = Vec<AccessEntry>, description = "Reads and writes of the organisation's data, newest first"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn access_log(
    Extension(storage): Extension<Storage>,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
    Params(p): Params<AccessLogParams>,
) -> Result<Json<Vec<AccessEntry>>, ApiError> {
    Ok(Json(
        storage
            .access_log(
                &who,
                org_id(&id)?,
                p.before.as_deref(),
                p.limit.unwrap_or(100),
            )
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/storage/maintenance", tag = "storage",
    responses((status = 200, body = MaintenanceReport, description = "Released blobs and orphans deleted, expired uploads aborted, lifecycle rules applied"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn maintain(
    Caller(who): Caller,
    storage: Option<Extension<Storage>>,
) -> Result<Json<MaintenanceReport>, ApiError> {
    if !who.is_operator() {
        return Err(nuage_service::ServiceError::Forbidden("operators only".into()).into());
    }
    let Some(Extension(storage)) = storage else {
        return Err(nuage_service::ServiceError::Internal("storage is not enabled".into()).into());
    };
    storage
        .recorder()
        .flush()
        .await
        .map_err(nuage_service::ServiceError::from)?;
    storage.maintain().await.map(Json).map_err(|e| match e {
        nuage_storage::StorageError::Service(s) => s.into(),
        other => nuage_service::ServiceError::Internal(other.to_string()).into(),
    })
}
