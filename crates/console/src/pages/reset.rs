//! Password reset by e-mail: ask for a link, then choose a new password
//! with it. The request page says the same thing whether or not the address
//! has an account.

use askama::Template;
use axum::extract::Path;
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::{FormAlert, FormError, PageError};
use crate::form::{Anyone, Posted};
use crate::session::Ctx;
use crate::views::Chrome;

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct RequestForm {
    pub csrf: String,
    pub email: String,
}

#[derive(Template)]
#[template(path = "reset_request.html")]
pub struct RequestPage {
    pub c: Chrome,
    pub csrf: String,
    pub email: String,
    /// The request was taken: say so instead of showing the form.
    pub sent: bool,
    pub error: FormAlert,
}

pub async fn request_form(ctx: Ctx) -> Result<Response, PageError> {
    let page = RequestPage {
        c: ctx.chrome("login"),
        csrf: ctx.anon_csrf().to_owned(),
        email: String::new(),
        sent: false,
        error: FormAlert::none(),
    };
    ctx.page(StatusCode::OK, &page)
}

pub async fn request(
    Posted { ctx, form, .. }: Posted<RequestForm, Anyone>,
) -> Result<Response, PageError> {
    let (sent, error) = match ctx
        .platform
        .request_password_reset(&ctx.meta, &form.email)
        .await
    {
        Ok(()) => (true, FormAlert::none()),
        Err(e) => (false, FormError::from_service(ctx.t, e)?.into()),
    };
    let page = RequestPage {
        c: ctx.chrome("login"),
        csrf: ctx.anon_csrf().to_owned(),
        email: form.email,
        sent,
        error,
    };
    ctx.page(page.error.status_or(StatusCode::OK), &page)
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct ResetForm {
    pub csrf: String,
    pub password: String,
}

#[derive(Template)]
#[template(path = "reset_password.html")]
pub struct ResetPage {
    pub c: Chrome,
    pub csrf: String,
    /// Where the form posts: this page's own address.
    pub action: String,
    /// The link was used already or has expired: no form, a way to ask again.
    pub link_dead: bool,
    pub error: FormAlert,
}

/// Reset links carry a base32 token; anything else is no link of ours.
fn reset_action(token: &str) -> Result<String, PageError> {
    if token.is_empty() || token.len() > 200 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(PageError::NotFound);
    }
    Ok(format!("/password-reset/{token}"))
}

pub async fn reset_form(ctx: Ctx, Path(token): Path<String>) -> Result<Response, PageError> {
    let page = ResetPage {
        c: ctx.chrome("login"),
        csrf: ctx.anon_csrf().to_owned(),
        action: reset_action(&token)?,
        link_dead: false,
        error: FormAlert::none(),
    };
    ctx.page(StatusCode::OK, &page)
}

pub async fn reset(
    Path(token): Path<String>,
    Posted { ctx, form, .. }: Posted<ResetForm, Anyone>,
) -> Result<Response, PageError> {
    let action = reset_action(&token)?;
    match ctx
        .platform
        .reset_password(&ctx.meta, &token, &form.password)
        .await
    {
        Ok(()) => {
            // Every session of the user was ended, this browser's too.
            let location = HeaderValue::from_static("/login?notice=password_changed");
            Ok((
                StatusCode::SEE_OTHER,
                [
                    (SET_COOKIE, ctx.clear_session_cookie()),
                    (LOCATION, location),
                ],
            )
                .into_response())
        }
        Err(e) => {
            let mut error = FormError::from_service(ctx.t, e)?;
            if error.on("token") {
                error = FormError {
                    field: Some("token"),
                    ..FormError::new(StatusCode::BAD_REQUEST, ctx.t.reset_link_invalid)
                };
            }
            let page = ResetPage {
                c: ctx.chrome("login"),
                csrf: ctx.anon_csrf().to_owned(),
                action,
                link_dead: error.on("token"),
                error: error.clone().into(),
            };
            ctx.page(error.status, &page)
        }
    }
}
