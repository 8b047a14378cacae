//! The Nuage console: server-rendered pages (askama) in French and English,
//! over the use cases of `nuage-service`. Sessions live in an HttpOnly
//! cookie; every form carries a CSRF token; every page gets the same frame,
//! one embedded stylesheet and no script.
//!
//! Code map: `session` reads a request (cookies, language, session, CSRF),
//! `views` frames and renders pages, `error` maps failures to pages, `i18n`
//! (the `nuage-console-texts` crate) holds every string in both languages,
//! and `pages/*` are the handlers.

mod error;
mod form;
mod pages;
mod script;
mod session;
#[cfg(test)]
mod tests;
mod views;

pub use nuage_console_texts as i18n;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use nuage_service::Platform;
use serde::Deserialize;

use crate::error::{ErrorMarker, PageError, log_fault};
use crate::i18n::Lang;
use crate::session::{Ctx, LANG_COOKIE, safe_next, set_cookie};
use crate::views::ErrorPage;

pub use pages::websites::WebsiteBase;

/// How the console is served.
#[derive(Debug, Clone, Copy)]
pub struct ConsoleConfig {
    /// Whether the console is served over TLS: cookies are then `Secure`.
    pub secure_cookies: bool,
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub platform: Platform,
    pub config: ConsoleConfig,
}

/// The console's one stylesheet, embedded in the binary.
const STYLESHEET: &str = include_str!("../static/nuage.css");
/// The calls for tender's script: local dates, the opening key made in the
/// browser, bids sealed in the browser.
const TENDERS_JS: &str = include_str!("../static/tenders.js");
const DRIVE_JS: &str = include_str!("../static/drive.js");
/// age-encryption bundled by scripts/build-age-bundle, and its licences.
const AGE_JS: &str = include_str!("../static/age-encryption.js");
const AGE_JS_LICENSE: &str = include_str!("../static/age-encryption.LICENSE.txt");
/// The largest sealed bid the console takes, as the API does.
const BID_LIMIT: usize = nuage_domain::tender::MAX_BID_BYTES + 1024;
/// The largest document of a call.
const DOCUMENT_LIMIT: usize = nuage_domain::tender::MAX_DOCUMENT_BYTES + 1024;

/// The console's routes, to be merged at the root of the main listener.
pub fn router(platform: Platform, config: ConsoleConfig) -> Router {
    let state = AppState { platform, config };
    Router::new()
        .route("/", get(pages::org::home))
        .route(
            "/signup",
            get(pages::auth::signup_form).post(pages::auth::signup),
        )
        .route(
            "/login",
            get(pages::auth::login_form).post(pages::auth::login),
        )
        .route(
            "/login/totp",
            get(pages::auth::totp_form).post(pages::auth::totp),
        )
        .route("/logout", post(pages::auth::logout))
        .route(
            "/password-reset",
            get(pages::reset::request_form).post(pages::reset::request),
        )
        .route(
            "/password-reset/{token}",
            get(pages::reset::reset_form).post(pages::reset::reset),
        )
        .route("/org/switch", post(pages::org::switch))
        .route(
            "/members",
            get(pages::org::members).post(pages::org::add_member),
        )
        .route("/members/{user_id}/remove", post(pages::org::remove_member))
        .route(
            "/invitations/{id}/{answer}",
            post(pages::org::answer_invitation),
        )
        .route("/audit", get(pages::org::audit))
        .route(
            "/tokens",
            get(pages::keys::tokens).post(pages::keys::create_token),
        )
        .route("/tokens/{token_id}/revoke", post(pages::keys::revoke_token))
        .route(
            "/s3-keys",
            get(pages::keys::s3_keys).post(pages::keys::create_s3_key),
        )
        .route(
            "/s3-keys/public-access",
            post(pages::keys::set_public_access),
        )
        .route(
            "/s3-keys/{access_key_id}/revoke",
            post(pages::keys::revoke_s3_key),
        )
        .route("/security", get(pages::security::show))
        .route("/security/totp/begin", post(pages::security::begin_totp))
        .route(
            "/security/totp/confirm",
            post(pages::security::confirm_totp),
        )
        .route(
            "/security/totp/disable",
            post(pages::security::disable_totp),
        )
        .route("/security/custody", post(pages::security::set_custody))
        .route(
            "/security/org-key/rotate",
            post(pages::security::rotate_org_key),
        )
        .route(
            "/security/require-totp",
            post(pages::security::require_totp),
        )
        .route("/operator/outbox", get(pages::operator::outbox))
        .route("/operator/revenue", get(pages::operator::revenue))
        .route("/operator/revenue.csv", get(pages::operator::revenue_csv))
        .route("/directory", get(pages::market::directory))
        .route("/tenders", get(pages::tenders::list))
        .route(
            "/tenders/new",
            get(pages::tender_desk::new_form).post(pages::tender_desk::create),
        )
        .route("/tenders/{id}", get(pages::tenders::show))
        .route(
            "/tenders/{id}/edit",
            get(pages::tender_desk::edit_form).post(pages::tender_desk::save),
        )
        .route("/tenders/{id}/publish", post(pages::tender_desk::publish))
        .route("/tenders/{id}/questions", post(pages::tender_desk::ask))
        .route(
            "/tenders/{id}/questions/{question}/answer",
            post(pages::tender_desk::answer),
        )
        .route(
            "/tenders/{id}/bid",
            post(pages::tender_desk::submit_bid).layer(DefaultBodyLimit::max(BID_LIMIT)),
        )
        .route(
            "/tenders/{id}/documents",
            post(pages::tender_desk::add_document).layer(DefaultBodyLimit::max(DOCUMENT_LIMIT)),
        )
        .route(
            "/tenders/{id}/documents/{document}",
            get(pages::tender_desk::document),
        )
        .route(
            "/tenders/{id}/documents/{document}/remove",
            post(pages::tender_desk::remove_document),
        )
        .route("/tenders/{id}/withdraw", post(pages::tender_desk::withdraw))
        .route("/tenders/{id}/open", post(pages::tender_desk::open))
        .route("/tenders/{id}/cancel", post(pages::tender_desk::cancel))
        .route("/tenders/{id}/lots/{lot}", get(pages::tender_desk::lot))
        .route(
            "/tenders/{id}/lots/{lot}/bids/{bid}/marks",
            post(pages::tender_desk::mark),
        )
        .route(
            "/tenders/{id}/lots/{lot}/award",
            post(pages::tender_desk::award),
        )
        .route(
            "/tenders/{id}/lots/{lot}/sign",
            post(pages::tender_desk::sign),
        )
        .route(
            "/directory/organisations/{id}",
            get(pages::market::organisation),
        )
        .route("/directory/services/{id}", get(pages::market::service))
        .route(
            "/directory/services/{id}/declare",
            post(pages::market::declare),
        )
        .route("/catalogue/offers/{id}", get(pages::market::offer))
        .route("/catalogue/offers/{id}/order", post(pages::market::order))
        .route("/compare", get(pages::market::compare))
        .route("/subscriptions", get(pages::market::subscriptions))
        .route("/billing", get(pages::billing::billing))
        .route("/billing/alerts", post(pages::billing::save_alerts))
        .route("/billing/identity", post(pages::billing::save_identity))
        .route(
            "/billing/invoices/{id}/pdf",
            get(pages::billing::invoice_pdf),
        )
        .route("/subscriptions/{id}/cancel", post(pages::market::cancel))
        .route("/provider", get(pages::provider::provider))
        .route("/provider/profile", post(pages::provider::save_profile))
        .route(
            "/provider/{kind}/{id}/state",
            post(pages::provider::move_sheet),
        )
        .route("/provider/webhook", post(pages::provider::set_webhook))
        .route("/provider/sales/{id}", post(pages::provider::fulfil))
        .route("/provider/offers", post(pages::provider::save_offer))
        .route("/provider/offers/new", get(pages::provider::new_offer))
        .route(
            "/provider/offers/{id}",
            get(pages::provider::edit_offer).post(pages::provider::save_offer),
        )
        .route("/provider/services", post(pages::provider::save_service))
        .route("/provider/services/new", get(pages::provider::new_service))
        .route(
            "/provider/services/{id}",
            get(pages::provider::edit_service).post(pages::provider::save_service),
        )
        .route("/operator/review", get(pages::provider::review_queue))
        .route(
            "/operator/review/{kind}/{id}",
            post(pages::provider::review),
        )
        .route("/drive", get(pages::drive::folder).post(pages::drive::act))
        .route(
            "/drive/content",
            axum::routing::put(pages::drive::upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/drive/uploads", post(pages::drive::upload_begin))
        .route(
            "/drive/uploads/{id}",
            get(pages::drive::upload_at)
                .post(pages::drive::upload_at)
                .delete(pages::drive::upload_at),
        )
        .route(
            "/drive/uploads/{id}/{part}",
            axum::routing::put(pages::drive::upload_part).layer(DefaultBodyLimit::disable()),
        )
        .route("/drive/file", get(pages::drive::file))
        .route("/drive/item", get(pages::drive::item))
        .route(
            "/drive/trash",
            get(pages::drive::trash).post(pages::drive::trash_act),
        )
        .route(
            "/drive/versions",
            get(pages::drive::versions).post(pages::drive::restore_version),
        )
        .route(
            "/drive/connect",
            get(pages::drive::connect).post(pages::drive::connect_act),
        )
        .route(
            "/drive/shares",
            get(pages::shares::links).post(pages::shares::links_act),
        )
        .route("/drive/grants", post(pages::grants::act))
        .route(
            "/drive/shared/{id}",
            get(pages::grants::shared).post(pages::grants::change),
        )
        .route("/drive/shared/{id}/file", get(pages::grants::file))
        .route(
            "/drive/shared/{id}/content",
            axum::routing::put(pages::grants::upload).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/s/{token}",
            get(pages::shares::visitor_page).post(pages::shares::unlock),
        )
        .route("/s/{token}/file", get(pages::shares::visitor_file))
        .route("/s/{token}/zip", get(pages::shares::visitor_zip))
        .route(
            "/s/{token}/upload",
            axum::routing::put(pages::shares::visitor_upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/websites", get(pages::websites::websites))
        .route("/websites/{bucket}", post(pages::websites::save))
        .route("/websites/{bucket}/domains", post(pages::websites::domains))
        .route("/lang/{code}", get(switch_language))
        .route("/static/nuage.css", get(stylesheet))
        .route("/static/tenders.js", get(|| script(TENDERS_JS)))
        .route("/static/drive.js", get(|| script(DRIVE_JS)))
        .route("/static/age-encryption.js", get(|| script(AGE_JS)))
        .route(
            "/static/age-encryption.LICENSE.txt",
            get(|| async {
                (
                    [(CONTENT_TYPE, "text/plain; charset=utf-8")],
                    AGE_JS_LICENSE,
                )
            }),
        )
        .fallback(|| async { PageError::NotFound })
        .layer(middleware::from_fn_with_state(state.clone(), console_layer))
        .with_state(state)
}

/// Around every console response: renders error pages in the request's
/// language and frame, and adds the security headers.
async fn console_layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let headers = request.headers().clone();
    let uri = request.uri().clone();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let mut response = next.run(request).await;
    if let Some(ErrorMarker(error)) = response.extensions_mut().remove::<ErrorMarker>() {
        log_fault(&error);
        response = match Ctx::load(&state, &headers, &uri, peer).await {
            Ok(ctx) => error_page(&ctx, &error),
            Err(e) => {
                tracing::error!(error = %e, "console request failed, and so did its error page's session lookup");
                bare_server_error(Lang::negotiate(
                    None,
                    headers
                        .get(axum::http::header::ACCEPT_LANGUAGE)
                        .and_then(|v| v.to_str().ok()),
                ))
            }
        };
    }
    let headers = response.headers_mut();
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
    ] {
        // A page may set a stricter policy of its own (the drive's previews).
        headers
            .entry(HeaderName::from_static(name))
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

fn error_page(ctx: &Ctx, error: &PageError) -> Response {
    let (title, message, detail) = error.describe(ctx.t);
    let page = ErrorPage {
        c: ctx.chrome(""),
        title,
        message,
        detail,
    };
    ctx.page(error.status(), &page).unwrap_or_else(|e| {
        log_fault(&e);
        bare_server_error(ctx.lang)
    })
}

/// The last resort, when not even the error page can be rendered.
fn bare_server_error(lang: Lang) -> Response {
    let t = lang.texts();
    let html = format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title></head><body><main><h1>{}</h1><p>{}</p></main></body></html>",
        lang.code(),
        t.server_error_title,
        t.server_error_title,
        t.server_error_text
    );
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

#[derive(Default, Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// Chooses the language (a cookie for a year) and goes back to the page.
async fn switch_language(
    Path(code): Path<String>,
    query: Result<Query<NextQuery>, axum::extract::rejection::QueryRejection>,
    State(state): State<AppState>,
) -> Response {
    let query = pages::read_query(query);
    let Some(lang) = Lang::parse(&code) else {
        return PageError::NotFound.into_response();
    };
    let cookie = set_cookie(
        LANG_COOKIE,
        lang.code(),
        Some(365 * 24 * 3600),
        state.config,
    );
    let location = HeaderValue::from_str(&safe_next(query.next.as_deref()))
        .unwrap_or_else(|_| HeaderValue::from_static("/"));
    (
        StatusCode::SEE_OTHER,
        [(SET_COOKIE, cookie), (LOCATION, location)],
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

async fn script(body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}
