//! What the console knows about a request before a page handles it: its
//! cookies, its language, its console session, and the CSRF tokens its forms
//! must carry back.
//!
//! Logged-in forms carry the session's CSRF token. Forms used before logging
//! in (sign-up, login, password reset) use a double-submit cookie: a random
//! `nuage_csrf` cookie, set on the first page seen, that the form's hidden
//! field must repeat.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{ACCEPT_LANGUAGE, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use nuage_service::auth::Session;
use nuage_service::keys::secret;
use nuage_service::{Platform, RequestMeta, ServiceError};

use crate::error::PageError;
use crate::i18n::{Lang, Texts};
use crate::{AppState, ConsoleConfig};

pub const SESSION_COOKIE: &str = "nuage_session";
pub const CSRF_COOKIE: &str = "nuage_csrf";
pub const LANG_COOKIE: &str = "lang";

/// The value of the first cookie called `name` among the request's `Cookie`
/// headers. Malformed pairs are skipped.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| key.trim() == name)
        .map(|(_, value)| {
            let value = value.trim();
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value)
        })
}

/// A console cookie's name. Over TLS it carries the `__Host-` prefix: a
/// browser then keeps it only when this very host set it over HTTPS for the
/// whole site, so that a website on a sibling domain cannot toss a cookie of
/// its own into the console.
pub fn cookie_name(name: &str, config: ConsoleConfig) -> String {
    if config.secure_cookies {
        format!("__Host-{name}")
    } else {
        name.to_owned()
    }
}

/// A `Set-Cookie` value for the console: HttpOnly, SameSite=Lax, whole site,
/// and Secure (with the `__Host-` prefix) when the console is served over
/// TLS. `max_age` of zero deletes.
pub fn set_cookie(
    name: &str,
    value: &str,
    max_age_secs: Option<u64>,
    config: ConsoleConfig,
) -> HeaderValue {
    let name = cookie_name(name, config);
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age_secs {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if config.secure_cookies {
        cookie.push_str("; Secure");
    }
    // Names and values are ours (base32 tokens, language codes): always valid.
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Whether a cookie value could be a token this console issued.
fn plausible_token(value: &str) -> bool {
    (16..=200).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A path of this site to go back to after a form, or `/`. Refuses anything
/// that could lead off the site (`//host`, `/\host`, absolute URLs).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && path.len() <= 512
                && !path.chars().any(|c| c.is_control() || c == '\\') =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// Percent-encodes a value for a query string.
pub fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The request as the console sees it.
#[derive(Clone)]
pub struct Ctx {
    pub platform: Platform,
    pub config: ConsoleConfig,
    pub lang: Lang,
    pub t: &'static Texts,
    pub meta: RequestMeta,
    /// The path and query of this request, to come back to.
    pub here: String,
    /// The secret of the session cookie, if it names a live session.
    pub session_secret: Option<String>,
    pub session: Option<Session>,
    anon_csrf: String,
    /// The anonymous CSRF cookie was missing: this response sets it.
    anon_csrf_is_new: bool,
}

impl Ctx {
    pub async fn load(
        state: &AppState,
        headers: &HeaderMap,
        uri: &Uri,
        peer: Option<SocketAddr>,
    ) -> Result<Self, ServiceError> {
        let lang = Lang::negotiate(
            cookie(headers, &cookie_name(LANG_COOKIE, state.config)),
            headers.get(ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()),
        );
        let secret = cookie(headers, &cookie_name(SESSION_COOKIE, state.config))
            .filter(|v| plausible_token(v));
        let session = match secret {
            Some(secret) => state.platform.session(secret).await?,
            None => None,
        };
        let (anon_csrf, anon_csrf_is_new) =
            match cookie(headers, &cookie_name(CSRF_COOKIE, state.config))
                .filter(|v| plausible_token(v))
            {
                Some(token) => (token.to_owned(), false),
                None => (secret::random_token(20), true),
            };
        Ok(Self {
            platform: state.platform.clone(),
            config: state.config,
            lang,
            t: lang.texts(),
            meta: RequestMeta {
                source: peer.map_or_else(|| "unknown".to_owned(), |p| p.ip().to_string()),
            },
            here: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned()),
            session_secret: session.as_ref().and(secret.map(str::to_owned)),
            session,
            anon_csrf,
            anon_csrf_is_new,
        })
    }

    /// The signed-in user's session; anyone else is sent to log in first, and
    /// a login waiting for its second factor to give it.
    pub fn user(&self) -> Result<&Session, PageError> {
        match &self.session {
            None => Err(PageError::Redirect(format!(
                "/login?next={}",
                url_encode(&self.here)
            ))),
            Some(s) if s.second_factor_pending => Err(PageError::Redirect("/login/totp".into())),
            Some(s) => Ok(s),
        }
    }

    /// Checks a logged-in form's CSRF token against the session's.
    pub fn check_csrf(&self, submitted: &str) -> Result<(), PageError> {
        match &self.session {
            Some(s) if secret::constant_time_eq(&s.csrf_token, submitted) => Ok(()),
            _ => Err(PageError::Csrf),
        }
    }

    /// The token that anonymous forms carry, matching the `nuage_csrf` cookie.
    pub fn anon_csrf(&self) -> &str {
        &self.anon_csrf
    }

    /// Checks an anonymous form's token against the double-submit cookie.
    pub fn check_anon_csrf(&self, submitted: &str) -> Result<(), PageError> {
        if !self.anon_csrf_is_new && secret::constant_time_eq(&self.anon_csrf, submitted) {
            Ok(())
        } else {
            Err(PageError::Csrf)
        }
    }

    /// The cookie this response must set, if any: the anonymous CSRF cookie
    /// when the request came without one.
    pub fn pending_cookie(&self) -> Option<HeaderValue> {
        self.anon_csrf_is_new
            .then(|| set_cookie(CSRF_COOKIE, &self.anon_csrf, None, self.config))
    }

    /// The `Set-Cookie` that opens a console session.
    pub fn session_cookie(&self, secret: &str) -> HeaderValue {
        set_cookie(
            SESSION_COOKIE,
            secret,
            Some(self.platform.settings().session_ttl.as_secs()),
            self.config,
        )
    }

    pub fn clear_session_cookie(&self) -> HeaderValue {
        set_cookie(SESSION_COOKIE, "", Some(0), self.config)
    }
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        Self::load(state, &parts.headers, &parts.uri, peer)
            .await
            .map_err(|e| PageError::from(e).into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(COOKIE, HeaderValue::from_str(c).expect("header"));
        }
        h
    }

    #[test]
    fn cookies_are_found_among_pairs_and_headers() {
        let h = headers(&["a=1; nuage_session=abc ; lang=en", "nuage_csrf=\"xyz\""]);
        assert_eq!(cookie(&h, "nuage_session"), Some("abc"));
        assert_eq!(cookie(&h, "lang"), Some("en"));
        assert_eq!(cookie(&h, "nuage_csrf"), Some("xyz"));
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn the_first_cookie_of_a_name_wins_and_malformed_pairs_are_skipped() {
        let h = headers(&["junk; lang=fr; lang=en; =; x"]);
        assert_eq!(cookie(&h, "lang"), Some("fr"));
        assert_eq!(cookie(&HeaderMap::new(), "lang"), None);
    }

    #[test]
    fn a_name_must_match_whole() {
        let h = headers(&["xlang=en; lang_x=en"]);
        assert_eq!(cookie(&h, "lang"), None);
    }

    #[test]
    fn set_cookie_is_http_only_lax_and_secure_over_tls() {
        let plain = set_cookie(
            "nuage_session",
            "abc",
            Some(60),
            ConsoleConfig {
                secure_cookies: false,
            },
        );
        assert_eq!(
            plain.to_str().ok(),
            Some("nuage_session=abc; Path=/; HttpOnly; SameSite=Lax; Max-Age=60")
        );
        let tls = set_cookie(
            "nuage_session",
            "abc",
            None,
            ConsoleConfig {
                secure_cookies: true,
            },
        );
        assert_eq!(
            tls.to_str().ok(),
            Some("__Host-nuage_session=abc; Path=/; HttpOnly; SameSite=Lax; Secure")
        );
    }

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(safe_next(Some("/members?cursor=x")), "/members?cursor=x");
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "members",
            "/a\r\nb",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn tokens_are_checked_for_shape() {
        assert!(plausible_token("abcdefghij234567abcd"));
        assert!(!plausible_token("short"));
        assert!(!plausible_token("abcdefghij234567abc;"));
    }
}
