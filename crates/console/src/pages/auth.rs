//! Signing up, logging in (with the second factor's step) and out.

use askama::Template;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use nuage_domain::org::OrgKind;
use nuage_service::ServiceError;
use nuage_service::accounts::{NewOrg, NewUser};
use serde::Deserialize;

use super::{Choice, NoFields, read_query};
use crate::error::{FormAlert, FormError, PageError};
use crate::form::{Anyone, Posted};
use crate::session::{Ctx, safe_next, url_encode};
use crate::views::Chrome;

/// Where a login goes on: the page it came from, or the dashboard.
#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    pub next: Option<String>,
}

/// What the sign-up form sends; shown again (without the password) on error.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct SignupForm {
    pub csrf: String,
    pub name: String,
    pub kind: String,
    pub siret: String,
    pub vat_number: String,
    pub display_name: String,
    pub email: String,
    pub password: String,
}

#[derive(Template)]
#[template(path = "signup.html")]
pub struct SignupPage {
    pub c: Chrome,
    pub csrf: String,
    pub form: SignupForm,
    pub kinds: Vec<Choice>,
    pub error: FormAlert,
}

impl SignupPage {
    fn new(ctx: &Ctx, form: SignupForm, error: FormAlert) -> Self {
        let kinds = [OrgKind::Public, OrgKind::Company, OrgKind::Person]
            .into_iter()
            .map(|k| Choice {
                value: k.as_str(),
                label: ctx.t.kind(k),
                selected: k.as_str() == form.kind,
            })
            .collect();
        Self {
            c: ctx.chrome("signup"),
            csrf: ctx.anon_csrf().to_owned(),
            form,
            kinds,
            error,
        }
    }
}

pub async fn signup_form(ctx: Ctx) -> Result<Response, PageError> {
    if ctx.session.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    let form = SignupForm {
        kind: "company".into(),
        ..SignupForm::default()
    };
    ctx.page(
        StatusCode::OK,
        &SignupPage::new(&ctx, form, FormAlert::none()),
    )
}

pub async fn signup(
    Posted { ctx, mut form, .. }: Posted<SignupForm, Anyone>,
) -> Result<Response, PageError> {
    let optional = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
    let org = NewOrg {
        name: form.name.clone(),
        kind: form.kind.clone(),
        siret: optional(&form.siret),
        vat_number: optional(&form.vat_number),
        country: None,
    };
    let user = NewUser {
        email: form.email.clone(),
        password: form.password.clone(),
        display_name: optional(&form.display_name),
    };
    let outcome = match ctx.platform.sign_up(&ctx.meta, org, user).await {
        Ok(_) => {
            ctx.platform
                .login(&ctx.meta, &form.email, &form.password)
                .await
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok((secret, _)) => Ok(start_session(&ctx, &secret, "/")),
        Err(e) => {
            let error = FormError::from_service(ctx.t, e)?;
            form.password.clear();
            ctx.page(
                error.status,
                &SignupPage::new(&ctx, form, error.clone().into()),
            )
        }
    }
}

/// Sets the session cookie and goes on.
fn start_session(ctx: &Ctx, secret: &str, to: &str) -> Response {
    let location = HeaderValue::from_str(to).unwrap_or_else(|_| HeaderValue::from_static("/"));
    (
        StatusCode::SEE_OTHER,
        [
            (SET_COOKIE, ctx.session_cookie(secret)),
            (LOCATION, location),
        ],
    )
        .into_response()
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    pub csrf: String,
    pub email: String,
    pub password: String,
    pub next: String,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub c: Chrome,
    pub csrf: String,
    pub email: String,
    pub next: String,
    pub error: FormAlert,
}

pub async fn login_form(
    ctx: Ctx,
    query: Result<Query<NextQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let query = read_query(query);
    match &ctx.session {
        Some(s) if s.second_factor_pending => {
            return Ok(Redirect::to("/login/totp").into_response());
        }
        Some(_) => return Ok(Redirect::to(&safe_next(query.next.as_deref())).into_response()),
        None => {}
    }
    let page = LoginPage {
        c: ctx.chrome("login"),
        csrf: ctx.anon_csrf().to_owned(),
        email: String::new(),
        next: safe_next(query.next.as_deref()),
        error: FormAlert::none(),
    };
    ctx.page(StatusCode::OK, &page)
}

pub async fn login(
    Posted { ctx, form, .. }: Posted<LoginForm, Anyone>,
) -> Result<Response, PageError> {
    let next = safe_next(Some(&form.next));
    match ctx
        .platform
        .login(&ctx.meta, &form.email, &form.password)
        .await
    {
        Ok((secret, pending)) => {
            // A session this browser had before is closed, not left behind.
            if let Some(old) = &ctx.session_secret
                && let Err(e) = ctx.platform.logout(&ctx.meta, old).await
            {
                tracing::warn!(error = %e, "could not close the previous console session");
            }
            let to = if pending {
                format!("/login/totp?next={}", url_encode(&next))
            } else {
                next
            };
            Ok(start_session(&ctx, &secret, &to))
        }
        Err(e) => {
            let error = match e {
                ServiceError::Unauthenticated(_) => {
                    FormError::new(StatusCode::UNAUTHORIZED, ctx.t.err_wrong_credentials)
                }
                other => FormError::from_service(ctx.t, other)?,
            };
            let page = LoginPage {
                c: ctx.chrome("login"),
                csrf: ctx.anon_csrf().to_owned(),
                email: form.email,
                next,
                error: error.clone().into(),
            };
            ctx.page(error.status, &page)
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct TotpForm {
    pub csrf: String,
    pub code: String,
    pub next: String,
}

#[derive(Template)]
#[template(path = "login_totp.html")]
pub struct TotpPage {
    pub c: Chrome,
    pub csrf: String,
    pub next: String,
    pub error: FormAlert,
}

pub async fn totp_form(
    ctx: Ctx,
    query: Result<Query<NextQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let query = read_query(query);
    let Some(session) = &ctx.session else {
        return Ok(Redirect::to("/login").into_response());
    };
    if !session.second_factor_pending {
        return Ok(Redirect::to(&safe_next(query.next.as_deref())).into_response());
    }
    let page = TotpPage {
        c: ctx.chrome("login"),
        csrf: session.csrf_token.clone(),
        next: safe_next(query.next.as_deref()),
        error: FormAlert::none(),
    };
    ctx.page(StatusCode::OK, &page)
}

pub async fn totp(Posted { ctx, form, .. }: Posted<TotpForm>) -> Result<Response, PageError> {
    let (Some(session), Some(secret)) = (&ctx.session, &ctx.session_secret) else {
        return Ok(Redirect::to("/login").into_response());
    };
    let next = safe_next(Some(&form.next));
    if !session.second_factor_pending {
        return Ok(Redirect::to(&next).into_response());
    }
    match ctx
        .platform
        .complete_second_factor(&ctx.meta, secret, &form.code)
        .await
    {
        Ok(()) => Ok(Redirect::to(&next).into_response()),
        Err(e) => {
            let error = match e {
                ServiceError::Unauthenticated(_) => FormError {
                    field: Some("code"),
                    ..FormError::new(StatusCode::UNAUTHORIZED, ctx.t.err_wrong_code)
                },
                other => FormError::from_service(ctx.t, other)?,
            };
            let page = TotpPage {
                c: ctx.chrome("login"),
                csrf: session.csrf_token.clone(),
                next,
                error: error.clone().into(),
            };
            ctx.page(error.status, &page)
        }
    }
}

pub async fn logout(Posted { ctx, form: _, .. }: Posted<NoFields>) -> Result<Response, PageError> {
    let Some(secret) = &ctx.session_secret else {
        return Ok(Redirect::to("/").into_response());
    };
    ctx.platform.logout(&ctx.meta, secret).await?;
    let location = HeaderValue::from_static("/login?notice=logged_out");
    Ok((
        StatusCode::SEE_OTHER,
        [
            (SET_COOKIE, ctx.clear_session_cookie()),
            (LOCATION, location),
        ],
    )
        .into_response())
}
