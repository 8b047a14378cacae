//! The console's forms, read and their CSRF token checked in one place: a
//! handler that changes anything takes a [`Posted`] and never sees a form
//! whose token did not match.

use std::marker::PhantomData;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::PageError;
use crate::session::Ctx;

/// Who may post a form, and so which token it must carry.
pub trait Poster {
    fn check(ctx: &Ctx, token: &str) -> Result<(), PageError>;
}

/// A session's holder: the session's token (without a session, refused).
/// Whether the session may act (its second factor given) is the handler's
/// `ctx.user()`: logging out and giving the second factor need only the
/// session.
pub struct SignedIn;

/// Anyone (sign-up, login, password reset): the token of the double-submit
/// cookie.
pub struct Anyone;

impl Poster for SignedIn {
    fn check(ctx: &Ctx, token: &str) -> Result<(), PageError> {
        ctx.check_csrf(token)
    }
}

impl Poster for Anyone {
    fn check(ctx: &Ctx, token: &str) -> Result<(), PageError> {
        ctx.check_anon_csrf(token)
    }
}

/// A form posted to the console with its request's context: read (the
/// console's 400 page when it cannot be), then its `csrf` field checked
/// against the poster's token (refused, nothing changed, when it differs).
pub struct Posted<T, P: Poster = SignedIn> {
    pub ctx: Ctx,
    pub form: T,
    poster: PhantomData<P>,
}

/// The token field every console form carries.
#[derive(Deserialize)]
struct Token {
    #[serde(default)]
    csrf: String,
}

impl<T, P> FromRequest<AppState> for Posted<T, P>
where
    T: DeserializeOwned,
    P: Poster,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let ctx = Ctx::from_request_parts(&mut parts, state).await?;
        let reject = |e: PageError| e.into_response();
        let urlencoded = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !urlencoded {
            return Err(reject(PageError::BadForm));
        }
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|_| reject(PageError::BadForm))?;
        let form: T =
            serde_urlencoded::from_bytes(&bytes).map_err(|_| reject(PageError::BadForm))?;
        let token: Token =
            serde_urlencoded::from_bytes(&bytes).map_err(|_| reject(PageError::BadForm))?;
        P::check(&ctx, &token.csrf).map_err(reject)?;
        Ok(Self {
            ctx,
            form,
            poster: PhantomData,
        })
    }
}
