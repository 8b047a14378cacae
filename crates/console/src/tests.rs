//! The console's router against a real platform on a fresh SQLite file:
//! the rules every page must keep (CSRF, security headers, language, the
//! second factor's gate), checked request by request.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::header::{ACCEPT_LANGUAGE, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{Request, Response, StatusCode};
use nuage_service::{Mailer, MasterKey, Platform, PlatformSettings};
use tower::ServiceExt;

use crate::{ConsoleConfig, router};

struct Console {
    app: Router,
    platform: Platform,
    _dir: tempfile::TempDir,
}

async fn console() -> Console {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("nuage.db").display()
    );
    let db = nuage_db::Db::connect(&url, 4).await.expect("database");
    let settings = PlatformSettings {
        data_dir: dir.path().to_owned(),
        public_url: "http://console.test".into(),
        session_ttl: std::time::Duration::from_secs(3600),
        mail_limits: Default::default(),
        clock: std::sync::Arc::new(nuage_service::SystemClock),
        key_provider: None,
    };
    let (platform, _) = Platform::start(
        db,
        MasterKey::from_bytes(&[7; 32]),
        Mailer::outbox_only(),
        settings,
        None,
    )
    .await
    .expect("platform");
    Console {
        app: router(
            platform.clone(),
            ConsoleConfig {
                secure_cookies: true,
            },
        ),
        platform,
        _dir: dir,
    }
}

/// A browser's cookie jar, as a `Cookie` header.
#[derive(Default)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn take(&mut self, response: &Response<Body>) {
        for value in response.headers().get_all(SET_COOKIE) {
            let Some((pair, _)) = value.to_str().ok().and_then(|v| v.split_once(';')) else {
                continue;
            };
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            self.0.retain(|(n, _)| n != name);
            if !value.is_empty() {
                self.0.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl Console {
    async fn send(
        &self,
        jar: &mut Jar,
        request: Request<Body>,
    ) -> (StatusCode, Response<Body>, String) {
        let response = self.app.clone().oneshot(request).await.expect("infallible");
        jar.take(&response);
        let status = response.status();
        let (parts, body) = response.into_parts();
        let body = String::from_utf8(to_bytes(body, 1 << 20).await.expect("body").to_vec())
            .expect("utf-8");
        (status, Response::from_parts(parts, Body::empty()), body)
    }

    async fn get(
        &self,
        jar: &mut Jar,
        path: &str,
        lang: &str,
    ) -> (StatusCode, Response<Body>, String) {
        let request = Request::get(path)
            .header(COOKIE, jar.header())
            .header(ACCEPT_LANGUAGE, lang)
            .body(Body::empty())
            .expect("request");
        self.send(jar, request).await
    }

    async fn post(
        &self,
        jar: &mut Jar,
        path: &str,
        form: &str,
    ) -> (StatusCode, Response<Body>, String) {
        let request = Request::post(path)
            .header(COOKIE, jar.header())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form.to_owned()))
            .expect("request");
        self.send(jar, request).await
    }

    /// Signs up through the form and returns the jar of the logged-in browser.
    async fn signed_up(&self, email: &str) -> Jar {
        let mut jar = Jar::default();
        let (_, _, page) = self.get(&mut jar, "/signup", "fr").await;
        let csrf = csrf_of(&page);
        let form = format!(
            "csrf={csrf}&name=Mairie&kind=public&email={email}&password=correct+horse+battery"
        );
        let (status, response, _) = self.post(&mut jar, "/signup", &form).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(
            response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok()),
            Some("/")
        );
        jar
    }
}

/// The first CSRF token of a page's forms.
fn csrf_of(page: &str) -> String {
    let start = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn pages_carry_the_security_headers_and_the_negotiated_language() {
    let console = console().await;
    let mut jar = Jar::default();
    let (status, response, page) = console.get(&mut jar, "/", "en-GB,en;q=0.9").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<html lang=\"en\">"));
    let headers = response.headers();
    assert_eq!(
        headers
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.starts_with("default-src 'self'")),
        Some(true)
    );
    assert_eq!(
        headers
            .get("x-content-type-options")
            .and_then(|v| v.to_str().ok()),
        Some("nosniff")
    );
    assert_eq!(
        headers.get("x-frame-options").and_then(|v| v.to_str().ok()),
        Some("DENY")
    );
    assert_eq!(
        headers.get("referrer-policy").and_then(|v| v.to_str().ok()),
        Some("same-origin")
    );
    let cookie = headers
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        cookie.starts_with("__Host-nuage_csrf=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && cookie.contains("Secure"),
        "{cookie}"
    );

    let (status, _, page) = console.get(&mut jar, "/no-such-page", "fr-FR").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("<html lang=\"fr\">") && page.contains("Page introuvable"));
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused_and_changes_nothing() {
    let console = console().await;
    let mut jar = Jar::default();
    console.get(&mut jar, "/signup", "fr").await;
    let form =
        "csrf=forged&name=Mairie&kind=public&email=eve@example.fr&password=correct+horse+battery";
    let (status, _, page) = console.post(&mut jar, "/signup", form).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("Formulaire refusé"));
    let login = console
        .platform
        .login(
            &nuage_service::RequestMeta::local(),
            "eve@example.fr",
            "correct horse battery",
        )
        .await;
    assert!(login.is_err(), "the forged sign-up created no account");

    let mut alice = console.signed_up("alice@example.fr").await;
    let (status, _, _) = console
        .post(&mut alice, "/tokens", "csrf=forged&name=stolen")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, _, page) = console.get(&mut alice, "/tokens", "fr").await;
    assert!(!page.contains("stolen"));
    // The anonymous cookie's token is not the session's: it cannot stand in.
    let anonymous = alice
        .0
        .iter()
        .find(|(n, _)| n == "__Host-nuage_csrf")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let (status, _, _) = console
        .post(
            &mut alice,
            "/tokens",
            &format!("csrf={anonymous}&name=stolen"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _, page) = console
        .post(
            &mut alice,
            "/tokens",
            &format!("csrf={}&name=mine", csrf_of(&page)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(page.contains("id=\"new-secret\">nuage_"));
}

#[tokio::test]
async fn a_client_error_shows_the_form_again_with_a_4xx() {
    let console = console().await;
    let mut jar = Jar::default();
    let (_, _, page) = console.get(&mut jar, "/login", "fr").await;
    let form = format!(
        "csrf={}&email=nobody@example.fr&password=wrong+password+here",
        csrf_of(&page)
    );
    let (status, _, page) = console.post(&mut jar, "/login", &form).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        page.contains("role=\"alert\"")
            && page.contains("Adresse e-mail ou mot de passe incorrect."),
        "{page}"
    );
    assert!(
        page.contains("value=\"nobody@example.fr\""),
        "the address is kept"
    );

    let (status, _, _) = console.post(&mut jar, "/login", "csrf=%FF%FE&email").await;
    assert!(status.is_client_error());
}

#[tokio::test]
async fn a_pending_second_factor_reaches_only_its_own_page_and_logout() {
    let console = console().await;
    let mut jar = console.signed_up("bob@example.fr").await;
    // Enrol a second factor through the console, computing codes as an app would.
    let (_, _, page) = console.get(&mut jar, "/security", "fr").await;
    let csrf = csrf_of(&page);
    let (_, _, page) = console
        .post(&mut jar, "/security/totp/begin", &format!("csrf={csrf}"))
        .await;
    let start = page
        .find("id=\"totp-secret\">")
        .expect("the secret is shown")
        + 17;
    let secret = data_encoding::BASE32_NOPAD
        .decode(
            page[start..]
                .split('<')
                .next()
                .unwrap_or_default()
                .as_bytes(),
        )
        .expect("base32");
    let step = nuage_service::Clock::now_ms(&nuage_service::SystemClock) / 1000 / 30;
    let code = nuage_service::totp::code_at(&secret, step);
    let (status, response, _) = console
        .post(
            &mut jar,
            "/security/totp/confirm",
            &format!("csrf={csrf}&code={code}"),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "enabled");
    assert_eq!(
        response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok()),
        Some("/security?notice=totp_enabled")
    );
    let (_, _, _) = console
        .post(&mut jar, "/logout", &format!("csrf={csrf}"))
        .await;

    let (_, _, page) = console.get(&mut jar, "/login", "fr").await;
    let form = format!(
        "csrf={}&email=bob@example.fr&password=correct+horse+battery&next=/members",
        csrf_of(&page)
    );
    let (_, response, _) = console.post(&mut jar, "/login", &form).await;
    assert_eq!(
        response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok()),
        Some("/login/totp?next=/members")
    );
    for path in ["/", "/members", "/tokens", "/security", "/audit"] {
        let (status, response, _) = console.get(&mut jar, path, "fr").await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(
            response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok()),
            Some("/login/totp"),
            "{path}"
        );
    }
    let (_, _, page) = console.get(&mut jar, "/login/totp", "fr").await;
    let csrf = csrf_of(&page);
    let (status, _, page) = console
        .post(
            &mut jar,
            "/login/totp",
            &format!("csrf={csrf}&code=000000&next=/members"),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("Ce code est incorrect"));
    let code = nuage_service::totp::code_at(&secret, step + 1);
    let (status, response, _) = console
        .post(
            &mut jar,
            "/login/totp",
            &format!("csrf={csrf}&code={code}&next=/members"),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok()),
        Some("/members")
    );
    let (status, _, page) = console.get(&mut jar, "/members", "fr").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("bob@example.fr"));
}
