//! Organisations, their members, users, S3 keys and audit entries.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use nuage_domain::legal_identity::{ChorusPro, LegalIdentity, PostalAddress};
use nuage_domain::org::{OrgKind, Role};
use nuage_domain::storage::KeyPurpose;
use nuage_service::accounts::{
    Invitation, LegalIdentityView, Membership, NewOrg, NewUser, Org, User,
};
use nuage_service::tokens::S3Key;
use nuage_service::{AuditEntry, Page, Platform};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{org_id, role, user_id};
use crate::extract::{Caller, JsonBody, Meta, PageParams, Params, PathParam};
use crate::idempotency::{Idempotency, create_once};
use crate::problem::{ApiError, Problem};

/// A new organisation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    pub kind: OrgKind,
    /// 14 digits with a valid key.
    pub siret: Option<String>,
    /// An EU VAT number, e.g. FR + key + SIREN.
    pub vat_number: Option<String>,
    /// ISO 3166-1 alpha-2, for VAT (none outside the EU); by default the
    /// VAT number's country, else FR.
    #[schema(example = "FR")]
    pub country: Option<String>,
}

impl From<CreateOrg> for NewOrg {
    fn from(c: CreateOrg) -> Self {
        Self {
            name: c.name,
            kind: c.kind.as_str().to_owned(),
            siret: c.siret,
            vat_number: c.vat_number,
            country: c.country,
        }
    }
}

#[utoipa::path(post, path = "/api/v1/orgs", tag = "organisations", request_body = CreateOrg,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body return the first response")),
    responses((status = 201, body = Org), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn create_org(
    State(platform): State<Platform>,
    Caller(who): Caller,
    Meta(meta): Meta,
    idempotency: Idempotency,
    body: JsonBody<CreateOrg>,
) -> Result<Response, ApiError> {
    create_once(&platform, &who, idempotency, &body.digest, async {
        Ok(platform.create_org(&who, &meta, body.value.into()).await?)
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/orgs", tag = "organisations", params(PageParams),
    responses((status = 200, body = Page<Org>), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn list_orgs(
    State(platform): State<Platform>,
    Caller(who): Caller,
    Params(page): Params<PageParams>,
) -> Result<Json<Page<Org>>, ApiError> {
    Ok(Json(platform.list_orgs(&who, &page.into_request()).await?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}", tag = "organisations", params(("org_id" = String, Path)),
    responses((status = 200, body = Org), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn get_org(
    State(platform): State<Platform>,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<Org>, ApiError> {
    Ok(Json(platform.get_org(&who, org_id(&id)?).await?))
}

/// Changes to an organisation's settings.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrg {
    /// Whether members must have a TOTP second factor.
    pub require_totp: bool,
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}", tag = "organisations", params(("org_id" = String, Path)), request_body = UpdateOrg,
    responses((status = 200, body = Org), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn update_org(
    State(platform): State<Platform>,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    body: JsonBody<UpdateOrg>,
) -> Result<Json<Org>, ApiError> {
    Ok(Json(
        platform
            .set_org_require_totp(&who, &meta, org_id(&id)?, body.value.require_totp)
            .await?,
    ))
}

/// What invoices say of an organisation for VAT.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTax {
    /// An EU VAT number; absent or empty for none.
    pub vat_number: Option<String>,
    /// ISO 3166-1 alpha-2; by default the VAT number's country, else FR.
    pub country: Option<String>,
}

#[utoipa::path(put, path = "/api/v1/orgs/{org_id}/tax", tag = "organisations", params(("org_id" = String, Path)), request_body = SetTax,
    responses((status = 200, body = Org), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn set_tax(
    State(platform): State<Platform>,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    body: JsonBody<SetTax>,
) -> Result<Json<Org>, ApiError> {
    let t = &body.value;
    Ok(Json(
        platform
            .set_org_tax(
                &who,
                &meta,
                org_id(&id)?,
                t.vat_number.as_deref(),
                t.country.as_deref(),
            )
            .await?,
    ))
}

/// What invoices say of an organisation beyond its name and VAT number.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetLegalIdentity {
    /// 14 digits; its first nine are the SIREN. Absent or empty for none.
    pub siret: Option<String>,
    pub address: Option<PostalAddress>,
    /// e.g. `SAS`, `SARL`, `SA`, `EPIC`.
    pub legal_form: Option<String>,
    /// In euros.
    #[schema(value_type = Option<String>)]
    pub share_capital: Option<rust_decimal::Decimal>,
    /// e.g. `RCS Paris`.
    pub rcs: Option<String>,
    /// A public body's Chorus Pro codes.
    pub chorus_pro: Option<ChorusPro>,
    /// The seller opted to pay VAT on debits.
    #[serde(default)]
    pub vat_on_debits: bool,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/legal-identity", tag = "organisations", params(("org_id" = String, Path)),
    responses((status = 200, body = LegalIdentityView), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn legal_identity(
    State(platform): State<Platform>,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<LegalIdentityView>, ApiError> {
    Ok(Json(platform.legal_identity(&who, org_id(&id)?).await?))
}

/// Sets the whole identity: what is left out is cleared.
#[utoipa::path(put, path = "/api/v1/orgs/{org_id}/legal-identity", tag = "organisations", params(("org_id" = String, Path)), request_body = SetLegalIdentity,
    responses((status = 200, body = LegalIdentityView), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn set_legal_identity(
    State(platform): State<Platform>,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    body: JsonBody<SetLegalIdentity>,
) -> Result<Json<LegalIdentityView>, ApiError> {
    let b = body.value;
    let identity = LegalIdentity {
        address: b.address,
        legal_form: b.legal_form,
        share_capital: b.share_capital,
        rcs: b.rcs,
        chorus_pro: b.chorus_pro,
        vat_on_debits: b.vat_on_debits,
    };
    Ok(Json(
        platform
            .set_legal_identity(&who, &meta, org_id(&id)?, b.siret.as_deref(), &identity)
            .await?,
    ))
}

/// A member to invite, by e-mail address.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    pub email: String,
    pub role: Role,
}

/// Invites an address: the answer is the same whether or not it has an
/// account, and it becomes a member only once its user accepts
/// (`POST /api/v1/invitations/{id}/accept`).
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/members", tag = "organisations", params(("org_id" = String, Path)), request_body = AddMember,
    responses((status = 202, body = Invitation, description = "Invited"), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn add_member(
    State(platform): State<Platform>,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    idempotency: Idempotency,
    body: JsonBody<AddMember>,
) -> Result<Response, ApiError> {
    let org = org_id(&id)?;
    let mut response = create_once(&platform, &who, idempotency, &body.digest, async {
        Ok(platform
            .add_member(&who, &meta, org, &body.value.email, body.value.role)
            .await?)
    })
    .await?;
    if response.status() == StatusCode::CREATED {
        *response.status_mut() = StatusCode::ACCEPTED;
    }
    Ok(response)
}

#[utoipa::path(get, path = "/api/v1/invitations", tag = "organisations",
    responses((status = 200, body = Vec<Invitation>, description = "The invitations waiting for the caller"), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn invitations(
    State(platform): State<Platform>,
    Caller(who): Caller,
) -> Result<Json<Vec<Invitation>>, ApiError> {
    Ok(Json(platform.invitations(&who).await?))
}

#[utoipa::path(post, path = "/api/v1/invitations/{invitation_id}/accept", tag = "organisations", params(("invitation_id" = String, Path)),
    responses((status = 200, body = Membership, description = "The caller is now a member"), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn accept_invitation(
    State(platform): State<Platform>,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
) -> Result<Json<Membership>, ApiError> {
    Ok(Json(platform.accept_invitation(&who, &meta, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/invitations/{invitation_id}/decline", tag = "organisations", params(("invitation_id" = String, Path)),
    responses((status = 204, description = "Declined"), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn decline_invitation(
    State(platform): State<Platform>,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    platform.decline_invitation(&who, &meta, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/members", tag = "organisations", params(("org_id" = String, Path), PageParams),
    responses((status = 200, body = Page<Membership>), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn list_members(
    State(platform): State<Platform>,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
    Params(page): Params<PageParams>,
) -> Result<Json<Page<Membership>>, ApiError> {
    Ok(Json(
        platform
            .list_members(&who, org_id(&id)?, &page.into_request())
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/members/{user_id}", tag = "organisations", params(("org_id" = String, Path), ("user_id" = String, Path)),
    responses((status = 204), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn remove_member(
    State(platform): State<Platform>,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam((org, user)): PathParam<(String, String)>,
) -> Result<StatusCode, ApiError> {
    platform
        .remove_member(&who, &meta, org_id(&org)?, user_id(&user)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new user, created directly in an organisation.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub org_id: String,
    pub email: String,
    /// At least 12 characters.
    #[schema(format = Password)]
    pub password: String,
    pub role: String,
    pub display_name: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/users", tag = "organisations", request_body = CreateUser,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body return the first response")),
    responses((status = 201, body = User), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn create_user(
    State(platform): State<Platform>,
    Caller(who): Caller,
    Meta(meta): Meta,
    idempotency: Idempotency,
    body: JsonBody<CreateUser>,
) -> Result<Response, ApiError> {
    let input = body.value;
    let (org, role) = (org_id(&input.org_id)?, role(&input.role)?);
    let user = NewUser {
        email: input.email,
        password: input.password,
        display_name: input.display_name,
    };
    create_once(&platform, &who, idempotency, &body.digest, async {
        Ok(platform.create_user(&who, &meta, org, user, role).await?)
    })
    .await
}

/// A new operator: a user who administers the whole platform.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOperator {
    pub email: String,
    #[schema(format = Password)]
    pub password: String,
    pub display_name: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/operators", tag = "organisations", request_body = CreateOperator,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body return the first response")),
    responses((status = 201, body = User), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn create_operator(
    State(platform): State<Platform>,
    Caller(who): Caller,
    Meta(meta): Meta,
    idempotency: Idempotency,
    body: JsonBody<CreateOperator>,
) -> Result<Response, ApiError> {
    let input = body.value;
    let user = NewUser {
        email: input.email,
        password: input.password,
        display_name: input.display_name,
    };
    create_once(&platform, &who, idempotency, &body.digest, async {
        Ok(platform.create_operator(&who, &meta, user).await?)
    })
    .await
}

/// A new S3 key; its secret is shown only in this response.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CreatedS3Key {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub org_id: String,
    pub created_at_ms: i64,
    /// `access` or `export`.
    pub purpose: String,
    /// When an export key stops working (30 days after its creation).
    pub expires_at_ms: Option<i64>,
}

/// What the key is for. Without a body, an ordinary access key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateS3Key {
    /// `access` (the default), or `export`: a read-only key, one per
    /// organisation, living 30 days, whose downloads are exit egress — data
    /// leaving for another provider, counted apart and never charged.
    #[serde(default)]
    pub purpose: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/s3-keys", tag = "s3 keys", params(("org_id" = String, Path),
    ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first response")),
    request_body(content = Option<CreateS3Key>, description = "Optional; an access key without it"),
    responses((status = 201, body = CreatedS3Key), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn create_s3_key(
    State(platform): State<Platform>,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    idempotency: Idempotency,
    body: Option<JsonBody<CreateS3Key>>,
) -> Result<Response, ApiError> {
    let org = org_id(&id)?;
    let (purpose, digest) = match body {
        Some(b) => (b.value.purpose, b.digest),
        None => (None, String::new()),
    };
    let purpose = purpose
        .as_deref()
        .map_or(Ok(KeyPurpose::Access), KeyPurpose::parse)
        .map_err(nuage_service::ServiceError::from)?;
    create_once(&platform, &who, idempotency, &digest, async {
        let (key, secret_access_key) = platform.create_s3_key(&who, &meta, org, purpose).await?;
        Ok(CreatedS3Key {
            access_key_id: key.access_key_id,
            secret_access_key,
            org_id: key.org_id,
            created_at_ms: key.created_at_ms,
            purpose: key.purpose,
            expires_at_ms: key.expires_at_ms,
        })
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/s3-keys", tag = "s3 keys", params(("org_id" = String, Path), PageParams),
    responses((status = 200, body = Page<S3Key>), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn list_s3_keys(
    State(platform): State<Platform>,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
    Params(page): Params<PageParams>,
) -> Result<Json<Page<S3Key>>, ApiError> {
    Ok(Json(
        platform
            .list_s3_keys(&who, org_id(&id)?, &page.into_request())
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/s3-keys/{access_key_id}", tag = "s3 keys", params(("access_key_id" = String, Path)),
    responses((status = 200, body = S3Key), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn revoke_s3_key(
    State(platform): State<Platform>,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
) -> Result<Json<S3Key>, ApiError> {
    Ok(Json(platform.revoke_s3_key(&who, &meta, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/audit", tag = "audit", params(("org_id" = String, Path), PageParams),
    responses((status = 200, body = Page<AuditEntry>, description = "The organisation's entries, newest first"), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn org_audit(
    State(platform): State<Platform>,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
    Params(page): Params<PageParams>,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    Ok(Json(
        platform
            .org_audit(&who, org_id(&id)?, &page.into_request())
            .await?,
    ))
}
