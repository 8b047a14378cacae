//! The user's security: enrolling, confirming and disabling the TOTP second
//! factor; for an organisation's owners, requiring it of every member, and
//! rotating the organisation's key.

use askama::Template;
use axum::Extension;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use nuage_domain::org::Role;
use nuage_service::auth::{Session, TotpEnrolment};
use nuage_storage::Storage;
use nuage_storage::custody::{Custody, ExternalKey};
use nuage_storage::rotation::KeyRotation;
use serde::Deserialize;

use super::{NoFields, current_org};
use crate::error::{FormAlert, FormError, PageError};
use crate::form::Posted;
use crate::session::Ctx;
use crate::views::Chrome;

/// What the TOTP section shows.
pub enum TotpStep {
    /// Not enabled: a button to begin.
    Off,
    /// Begun: the secret (shown this once, when just begun) and the confirm form.
    Enrolling(Option<TotpEnrolment>),
    /// Enabled: the form to disable it.
    On,
}

/// The owner's control over the current organisation.
pub struct RequireTotp {
    pub org_name: String,
    pub required: bool,
}

#[derive(Template)]
#[template(path = "security.html")]
pub struct SecurityPage {
    pub c: Chrome,
    pub csrf: String,
    pub step: TotpStep,
    pub require: Option<RequireTotp>,
    /// The organisation's key, for its owners.
    pub org_key: Option<KeyRotation>,
    /// Who holds it, for its owners.
    pub custody: Option<Custody>,
    /// The KMS form as last sent (kept when refused).
    pub kms_form: CustodyForm,
    pub error: FormAlert,
}

pub async fn show(ctx: Ctx, storage: Option<Extension<Storage>>) -> Result<Response, PageError> {
    let session = ctx.user()?;
    security_page(
        &ctx,
        storage.as_deref(),
        session,
        None,
        FormAlert::none(),
        StatusCode::OK,
    )
    .await
}

/// The security page; `step` overrides what the user's state implies.
async fn security_page(
    ctx: &Ctx,
    storage: Option<&Storage>,
    session: &Session,
    step: Option<TotpStep>,
    error: FormAlert,
    ok: StatusCode,
) -> Result<Response, PageError> {
    security_page_with(ctx, storage, session, step, error, ok, None).await
}

/// The security page, with the KMS form as it was sent.
async fn security_page_with(
    ctx: &Ctx,
    storage: Option<&Storage>,
    session: &Session,
    step: Option<TotpStep>,
    error: FormAlert,
    ok: StatusCode,
    kms_form: Option<CustodyForm>,
) -> Result<Response, PageError> {
    let step = step.unwrap_or(if session.user.totp_enabled {
        TotpStep::On
    } else {
        TotpStep::Off
    });
    let mut require = None;
    let mut org_key = None;
    let mut custody = None;
    if let Some((org, membership)) = current_org(session)?
        && membership.role == Role::Owner
    {
        match ctx.platform.get_org(&session.principal(), org).await {
            Ok(org) => {
                require = Some(RequireTotp {
                    org_name: org.name,
                    required: org.require_totp,
                })
            }
            Err(e) if e.is_server_fault() => return Err(e.into()),
            // An owner the organisation refuses cannot change its settings either.
            Err(_) => {}
        }
        if let Some(storage) = storage {
            match storage.key_rotation(&session.principal(), org).await {
                Ok(state) => org_key = Some(state),
                Err(e) if e.is_server_fault() => return Err(e.into()),
                Err(_) => {}
            }
            match storage.custody(&session.principal(), org).await {
                Ok(state) => custody = Some(state),
                Err(e) if e.is_server_fault() => return Err(e.into()),
                Err(_) => {}
            }
        }
    }
    let page = SecurityPage {
        c: ctx.chrome("security"),
        csrf: session.csrf_token.clone(),
        step,
        require,
        org_key,
        custody,
        kms_form: kms_form.unwrap_or_default(),
        error,
    };
    ctx.page(page.error.status_or(ok), &page)
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct CodeForm {
    pub csrf: String,
    pub code: String,
}

/// The form error for a TOTP code the service refused.
fn code_error(ctx: &Ctx, e: nuage_service::ServiceError) -> Result<FormAlert, PageError> {
    let error = match e {
        nuage_service::ServiceError::Unauthenticated(_) => FormError {
            field: Some("code"),
            ..FormError::new(StatusCode::BAD_REQUEST, ctx.t.err_wrong_code)
        },
        other => FormError::from_service(ctx.t, other)?,
    };
    Ok(error.into())
}

pub async fn begin_totp(
    storage: Option<Extension<Storage>>,
    Posted { ctx, form: _, .. }: Posted<NoFields>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    match ctx
        .platform
        .begin_totp(&session.principal(), &ctx.meta)
        .await
    {
        Ok(enrolment) => {
            security_page(
                &ctx,
                storage.as_deref(),
                session,
                Some(TotpStep::Enrolling(Some(enrolment))),
                FormAlert::none(),
                StatusCode::OK,
            )
            .await
        }
        Err(e) => {
            let error = FormError::from_service(ctx.t, e)?;
            security_page(
                &ctx,
                storage.as_deref(),
                session,
                None,
                error.into(),
                StatusCode::OK,
            )
            .await
        }
    }
}

pub async fn confirm_totp(
    storage: Option<Extension<Storage>>,
    Posted { ctx, form, .. }: Posted<CodeForm>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    match ctx
        .platform
        .confirm_totp(&session.principal(), &ctx.meta, &form.code)
        .await
    {
        Ok(()) => Ok(Redirect::to("/security?notice=totp_enabled").into_response()),
        // The enrolment stays pending: another code can still confirm it.
        Err(e) => {
            security_page(
                &ctx,
                storage.as_deref(),
                session,
                Some(TotpStep::Enrolling(None)),
                code_error(&ctx, e)?,
                StatusCode::OK,
            )
            .await
        }
    }
}

pub async fn disable_totp(
    storage: Option<Extension<Storage>>,
    Posted { ctx, form, .. }: Posted<CodeForm>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    match ctx
        .platform
        .disable_totp(&session.principal(), &ctx.meta, &form.code)
        .await
    {
        Ok(()) => Ok(Redirect::to("/security?notice=totp_disabled").into_response()),
        Err(e) => {
            security_page(
                &ctx,
                storage.as_deref(),
                session,
                None,
                code_error(&ctx, e)?,
                StatusCode::OK,
            )
            .await
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct RequireForm {
    pub csrf: String,
    /// A checkbox: present when ticked.
    pub require: Option<String>,
}

pub async fn require_totp(
    storage: Option<Extension<Storage>>,
    Posted { ctx, form, .. }: Posted<RequireForm>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let Some((org, _)) = current_org(session)? else {
        return Err(PageError::NotFound);
    };
    match ctx
        .platform
        .set_org_require_totp(&session.principal(), &ctx.meta, org, form.require.is_some())
        .await
    {
        Ok(_) => Ok(Redirect::to("/security?notice=setting_saved").into_response()),
        Err(e) => {
            let error = FormError::from_service(ctx.t, e)?;
            security_page(
                &ctx,
                storage.as_deref(),
                session,
                None,
                error.into(),
                StatusCode::OK,
            )
            .await
        }
    }
}

/// Starts a new version of the organisation's key; its data keys are
/// rewrapped by the key-rewrap job.
pub async fn rotate_org_key(
    storage: Option<Extension<Storage>>,
    Posted { ctx, form: _, .. }: Posted<NoFields>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let (Some((org, _)), Some(Extension(storage))) = (current_org(session)?, storage.as_ref())
    else {
        return Err(PageError::NotFound);
    };
    match storage
        .rotate_org_key(&session.principal(), &ctx.meta, org)
        .await
    {
        Ok(_) => Ok(Redirect::to("/security?notice=org_key_rotated#org-key").into_response()),
        Err(e) => {
            let error = FormError::from_service(ctx.t, e)?;
            security_page(
                &ctx,
                Some(storage),
                session,
                None,
                error.into(),
                StatusCode::OK,
            )
            .await
        }
    }
}

/// The owner's choice of who holds the organisation's key.
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct CustodyForm {
    pub csrf: String,
    /// `external` or `platform`.
    pub mode: String,
    pub endpoint: String,
    pub server_name: String,
    pub ca_pem: String,
    pub key_id: String,
    /// The consent checkbox: present when ticked.
    pub consent: Option<String>,
}

/// Entrusts the organisation's key to its own KMS, once the owner has said
/// they understand what losing that key means; or gives it back.
pub async fn set_custody(
    storage: Option<Extension<Storage>>,
    Posted { ctx, form, .. }: Posted<CustodyForm>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let (Some((org, _)), Some(Extension(storage))) = (current_org(session)?, storage.as_ref())
    else {
        return Err(PageError::NotFound);
    };
    let wanted = match form.mode.as_str() {
        "platform" => Ok(None),
        _ if form.consent.is_none() => Err(nuage_service::ServiceError::Invalid(
            nuage_domain::error::DomainError::invalid(
                "consent",
                "say you understand what losing the key means",
            ),
        )),
        _ => Ok(Some(ExternalKey {
            endpoint: form.endpoint.clone(),
            server_name: form.server_name.clone(),
            ca_pem: form.ca_pem.clone(),
            key_id: form.key_id.clone(),
        })),
    };
    let outcome = match wanted {
        Ok(wanted) => {
            storage
                .set_custody(&session.principal(), &ctx.meta, org, wanted)
                .await
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(_) => Ok(Redirect::to("/security?notice=custody_set#custody").into_response()),
        Err(e) => {
            let error = FormError::from_service(ctx.t, e)?;
            security_page_with(
                &ctx,
                Some(storage),
                session,
                None,
                error.into(),
                StatusCode::OK,
                Some(form),
            )
            .await
        }
    }
}
