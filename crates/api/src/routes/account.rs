//! The caller's own account: sign-up, profile, API tokens, second factor,
//! password reset.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use nuage_domain::org::OrgKind;
use nuage_service::accounts::{Membership, NewOrg, NewUser, Org, User};
use nuage_service::tokens::ApiToken;
use nuage_service::{Page, Platform, Principal};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use nuage_service::drive_access::AppPassword;

use super::{org_id, token_id};
use crate::extract::{Caller, JsonBody, Meta, PageParams, Params, PathParam};
use crate::idempotency::{Idempotency, create_once};
use crate::problem::{ApiError, Problem};

/// A new account: a user and the organisation they own.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUp {
    pub org_name: String,
    pub org_kind: OrgKind,
    pub siret: Option<String>,
    pub vat_number: Option<String>,
    pub email: String,
    #[schema(format = Password)]
    pub password: String,
    pub display_name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SignedUp {
    pub user: User,
    pub org: Org,
}

#[utoipa::path(post, path = "/api/v1/signup", tag = "account", request_body = SignUp,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body return the first response")),
    responses((status = 201, body = SignedUp), (status = "4XX", body = Problem)))]
pub async fn sign_up(
    State(platform): State<Platform>,
    Meta(meta): Meta,
    idempotency: Idempotency,
    body: JsonBody<SignUp>,
) -> Result<Response, ApiError> {
    let s = body.value;
    let org = NewOrg {
        name: s.org_name,
        kind: s.org_kind.as_str().to_owned(),
        siret: s.siret,
        vat_number: s.vat_number,
        country: None,
    };
    let user = NewUser {
        email: s.email,
        password: s.password,
        display_name: s.display_name,
    };
    create_once(
        &platform,
        &Principal::Anonymous,
        idempotency,
        &body.digest,
        async {
            let (user, org) = platform.sign_up(&meta, org, user).await?;
            Ok(SignedUp { user, org })
        },
    )
    .await
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub user: User,
    pub memberships: Vec<Membership>,
}

#[utoipa::path(get, path = "/api/v1/me", tag = "account", responses((status = 200, body = Me), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn me(
    State(platform): State<Platform>,
    Caller(who): Caller,
) -> Result<Json<Me>, ApiError> {
    let (user, memberships) = platform.me(&who).await?;
    Ok(Json(Me { user, memberships }))
}

/// The caller's console sessions, to review alongside its API tokens
/// (`/tokens`) and app passwords (`/app-passwords`).
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "account", responses((status = 200, body = Vec<nuage_service::auth::SessionSummary>), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn sessions(
    State(platform): State<Platform>,
    Caller(who): Caller,
) -> Result<Json<Vec<nuage_service::auth::SessionSummary>>, ApiError> {
    Ok(Json(platform.sessions_of(&who).await?))
}

/// Signs the caller out of every console session.
#[utoipa::path(delete, path = "/api/v1/me/sessions", tag = "account", responses((status = 204), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn end_sessions(
    State(platform): State<Platform>,
    Caller(who): Caller,
    Meta(meta): Meta,
) -> Result<StatusCode, ApiError> {
    platform.end_sessions(&who, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new API token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Lifetime in days (1 to 3650); none for a token that does not expire.
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<u32>,
}

/// A new token; the secret is shown only in this response.
#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: ApiToken,
    pub secret: String,
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "account", request_body = CreateToken,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body return the first response")),
    responses((status = 201, body = CreatedToken), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn create_token(
    State(platform): State<Platform>,
    Caller(who): Caller,
    Meta(meta): Meta,
    idempotency: Idempotency,
    body: JsonBody<CreateToken>,
) -> Result<Response, ApiError> {
    create_once(&platform, &who, idempotency, &body.digest, async {
        let (token, secret) = platform
            .create_api_token(&who, &meta, &body.value.name, body.value.expires_in_days)
            .await?;
        Ok(CreatedToken { token, secret })
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "account", params(PageParams),
    responses((status = 200, body = Page<ApiToken>), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn list_tokens(
    State(platform): State<Platform>,
    Caller(who): Caller,
    Params(page): Params<PageParams>,
) -> Result<Json<Page<ApiToken>>, ApiError> {
    Ok(Json(
        platform.list_api_tokens(&who, &page.into_request()).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{token_id}", tag = "account", params(("token_id" = String, Path)),
    responses((status = 204), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn revoke_token(
    State(platform): State<Platform>,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    platform
        .revoke_api_token(&who, &meta, token_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new app password, for WebDAV clients of one organisation's drive.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAppPassword {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// The organisation whose drive it opens (one of the caller's).
    pub org_id: String,
}

/// A new app password; the secret is shown only in this response.
#[derive(Serialize, ToSchema)]
pub struct CreatedAppPassword {
    #[serde(flatten)]
    pub app_password: AppPassword,
    pub secret: String,
}

#[utoipa::path(post, path = "/api/v1/app-passwords", tag = "account", request_body = CreateAppPassword,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body return the first response")),
    responses((status = 201, body = CreatedAppPassword), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn create_app_password(
    State(platform): State<Platform>,
    Caller(who): Caller,
    Meta(meta): Meta,
    idempotency: Idempotency,
    body: JsonBody<CreateAppPassword>,
) -> Result<Response, ApiError> {
    let org = org_id(&body.value.org_id)?;
    create_once(&platform, &who, idempotency, &body.digest, async {
        let (app_password, secret) = platform
            .create_app_password(&who, &meta, org, &body.value.name)
            .await?;
        Ok(CreatedAppPassword {
            app_password,
            secret,
        })
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/app-passwords", tag = "account",
    responses((status = 200, body = Vec<AppPassword>), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn list_app_passwords(
    State(platform): State<Platform>,
    Caller(who): Caller,
) -> Result<Json<Vec<AppPassword>>, ApiError> {
    Ok(Json(platform.list_app_passwords(&who).await?))
}

#[utoipa::path(delete, path = "/api/v1/app-passwords/{id}", tag = "account", params(("id" = String, Path)),
    responses((status = 204), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn revoke_app_password(
    State(platform): State<Platform>,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    platform.revoke_app_password(&who, &meta, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A TOTP secret to load into an authenticator app, then confirm with a code.
#[derive(Serialize, ToSchema)]
pub struct TotpEnrolment {
    pub secret_base32: String,
    pub provisioning_uri: String,
}

#[utoipa::path(post, path = "/api/v1/me/totp", tag = "account",
    responses((status = 201, body = TotpEnrolment), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn begin_totp(
    State(platform): State<Platform>,
    Caller(who): Caller,
    Meta(meta): Meta,
) -> Result<(StatusCode, Json<TotpEnrolment>), ApiError> {
    let e = platform.begin_totp(&who, &meta).await?;
    Ok((
        StatusCode::CREATED,
        Json(TotpEnrolment {
            secret_base32: e.secret_base32,
            provisioning_uri: e.provisioning_uri,
        }),
    ))
}

/// A code from the authenticator app.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    #[schema(pattern = "^[0-9]{6}$")]
    pub code: String,
}

#[utoipa::path(post, path = "/api/v1/me/totp/confirm", tag = "account", request_body = TotpCode,
    responses((status = 204), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn confirm_totp(
    State(platform): State<Platform>,
    Caller(who): Caller,
    Meta(meta): Meta,
    body: JsonBody<TotpCode>,
) -> Result<StatusCode, ApiError> {
    platform.confirm_totp(&who, &meta, &body.value.code).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/me/totp/disable", tag = "account", request_body = TotpCode,
    responses((status = 204), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn disable_totp(
    State(platform): State<Platform>,
    Caller(who): Caller,
    Meta(meta): Meta,
    body: JsonBody<TotpCode>,
) -> Result<StatusCode, ApiError> {
    platform.disable_totp(&who, &meta, &body.value.code).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    pub email: String,
}

#[utoipa::path(post, path = "/api/v1/password-reset", tag = "account", request_body = PasswordResetRequest,
    responses((status = 202, description = "A link is e-mailed if the address has an account"), (status = "4XX", body = Problem)))]
pub async fn request_password_reset(
    State(platform): State<Platform>,
    Meta(meta): Meta,
    body: JsonBody<PasswordResetRequest>,
) -> Result<StatusCode, ApiError> {
    platform
        .request_password_reset(&meta, &body.value.email)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetConfirm {
    /// The token from the e-mailed link.
    pub token: String,
    #[schema(format = Password)]
    pub password: String,
}

#[utoipa::path(post, path = "/api/v1/password-reset/confirm", tag = "account", request_body = PasswordResetConfirm,
    responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn confirm_password_reset(
    State(platform): State<Platform>,
    Meta(meta): Meta,
    body: JsonBody<PasswordResetConfirm>,
) -> Result<StatusCode, ApiError> {
    platform
        .reset_password(&meta, &body.value.token, &body.value.password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Credentials to exchange for an API token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordGrant {
    pub email: String,
    #[schema(format = Password)]
    pub password: String,
    /// Required when the account has a second factor.
    pub totp_code: Option<String>,
    /// A name for the new token.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<u32>,
}

#[utoipa::path(post, path = "/api/v1/auth/token", tag = "account", request_body = PasswordGrant,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body return the first response")),
    responses((status = 201, body = CreatedToken), (status = "4XX", body = Problem)))]
pub async fn password_grant(
    State(platform): State<Platform>,
    Meta(meta): Meta,
    idempotency: Idempotency,
    body: JsonBody<PasswordGrant>,
) -> Result<Response, ApiError> {
    let g = body.value;
    create_once(
        &platform,
        &Principal::Anonymous,
        idempotency,
        &body.digest,
        async {
            let (token, secret) = platform
                .login_for_token(
                    &meta,
                    (&g.email, &g.password),
                    g.totp_code.as_deref(),
                    &g.name,
                    g.expires_in_days,
                )
                .await?;
            Ok(CreatedToken { token, secret })
        },
    )
    .await
}
