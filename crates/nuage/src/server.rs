//! Start-up and shutdown: `Application::build` opens the database, loads the
//! master key, binds its listeners (port 0 works) and reports the bound
//! addresses; `run_until_stopped` serves until SIGTERM or SIGINT, then stops
//! accepting, lets in-flight requests finish, and closes the database.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use nuage_billing::{Billing, BillingSettings};
use nuage_db::Db;
use nuage_market::{Catalogue, CatalogueSettings};
use nuage_procurement::{Procurement, ProcurementSettings};
use nuage_service::jobs::Jobs;
use nuage_service::key_provider::pkcs11::{Pkcs11KeyProvider, Pkcs11Settings};
use nuage_service::keys::{KeyOrigin, write_private};
use nuage_service::{KeyProvider, Mailer, MasterKey, Platform, PlatformSettings, SmtpSettings};
use nuage_storage::blobs::BackendSettings;
use nuage_storage::{Region, Storage, StorageSettings};
use serde::Serialize;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::config::{Config, KeyProviderKind, KeysConfig};
use crate::listener::{ConnectionCounts, LimitAcceptor};
use crate::proxies::TrustedProxies;
use crate::telemetry;

/// Where the platform listens, as printed on stdout and written to
/// `DATA_DIR/addresses.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Addresses {
    pub console: String,
    pub api: String,
    pub s3: String,
    /// The website listener, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web: Option<String>,
}

pub struct Application {
    platform: Platform,
    storage: Storage,
    catalogue: Catalogue,
    billing: Billing,
    procurement: Procurement,
    jobs: Jobs,
    hooks: crate::hooks::Hooks,
    addresses: Addresses,
    main: (TcpListener, Router),
    s3: (TcpListener, Router),
    web: Option<(TcpListener, Router, Option<RustlsConfig>)>,
    tls: Option<RustlsConfig>,
    server: crate::config::ServerConfig,
    trusted: TrustedProxies,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

impl Application {
    pub async fn build(config: Config, root_token: Option<String>) -> anyhow::Result<Self> {
        Self::build_with_hooks(config, root_token, crate::hooks::Hooks::from_env()?).await
    }

    /// [`Application::build`] with the given hooks, not the environment's:
    /// the test suite's servers in its own process.
    pub async fn build_with_hooks(
        config: Config,
        root_token: Option<String>,
        hooks: crate::hooks::Hooks,
    ) -> anyhow::Result<Self> {
        // One TLS implementation for the whole process (serving, and the
        // clients of remote blob stores): aws-lc-rs, whose key exchange
        // prefers the hybrid X25519MLKEM768, so that what is recorded today
        // cannot be decrypted by a quantum computer tomorrow; classical
        // clients still get X25519.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                config.data_dir.display()
            )
        })?;
        let key_path = config.master_key_path();
        let (key, origin) = MasterKey::load_or_generate(&key_path)?;
        match origin {
            KeyOrigin::Generated => tracing::warn!(
                path = %key_path.display(), fingerprint = key.fingerprint(),
                "generated a new master key: BACK UP THIS FILE — without it the encrypted data and the audit chain cannot be read or checked"
            ),
            KeyOrigin::Loaded => {
                tracing::info!(path = %key_path.display(), fingerprint = key.fingerprint(), "master key loaded")
            }
        }

        let trusted = TrustedProxies::parse(&config.server.trusted_proxies)?;
        let url = config.database_url();
        let db = Db::connect(&url, config.database.max_connections)
            .await
            .context("cannot open the metadata database")?;
        tracing::info!(dialect = ?db.dialect(), "metadata database ready, migrations applied");

        let tls = match &config.tls {
            Some(tls) => Some(
                RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                    .await
                    .with_context(|| {
                        format!(
                            "cannot load the TLS certificate {} and key {}",
                            tls.cert.display(),
                            tls.key.display()
                        )
                    })?,
            ),
            None => None,
        };
        let main_listener = bind(config.listen)?;
        let s3_listener = bind(config.s3_listen)?;
        let web_listener = config.website_listen.map(bind).transpose()?;
        let web_tls = match &config.website_tls_dir {
            Some(dir) => Some(crate::tls::site_tls(
                dir,
                config
                    .tls
                    .as_ref()
                    .map(|t| (t.cert.as_path(), t.key.as_path())),
            )?),
            None => tls.clone(),
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let web_scheme = if web_tls.is_some() { "https" } else { "http" };
        let main_addr = main_listener.local_addr()?;
        let console = format!("{scheme}://{}", main_addr);
        let addresses = Addresses {
            api: format!("{console}/api/v1"),
            s3: format!("{scheme}://{}", s3_listener.local_addr()?),
            web: match &web_listener {
                Some(l) => Some(format!("{web_scheme}://{}", l.local_addr()?)),
                None => None,
            },
            console: console.clone(),
        };

        let mailer = match &config.mail {
            Some(m) => Mailer::smtp(&SmtpSettings {
                host: m.smtp_host.clone(),
                port: m.smtp_port,
                username: m.username.clone(),
                password: m.password.clone(),
                from: m.from.clone(),
            })
            .map_err(anyhow::Error::msg)?,
            None => Mailer::outbox_only(),
        };
        let settings = PlatformSettings {
            data_dir: config.data_dir.clone(),
            public_url: config
                .public_url
                .clone()
                .unwrap_or(console)
                .trim_end_matches('/')
                .to_owned(),
            session_ttl: Duration::from_secs(config.session_hours * 3600),
            mail_limits: nuage_service::MailLimits {
                per_recipient_per_hour: config.server.mail_per_recipient_per_hour,
                invitations_per_org_per_day: config.server.invitations_per_org_per_day,
            },
            clock: hooks.clock(),
            key_provider: key_provider(&config.keys)?,
        };
        let (platform, report) =
            Platform::start(db, key, mailer, settings, root_token.as_deref()).await?;
        hooks.install(&platform);
        if let Some(token) = report.generated_root_token {
            let path = config.data_dir.join("root-token");
            write_private(&path, format!("{token}\n").as_bytes())?;
            tracing::warn!(path = %path.display(), "generated the operator's root token; it is in this file (mode 0600)");
        }
        if report.chain.intact {
            tracing::info!(entries = report.chain.entries, "audit chain verified");
        }

        // Behind a TLS proxy (--insecure-http with an https public URL) the
        // browser still speaks HTTPS: cookies stay Secure.
        let secure_cookies =
            tls.is_some() || platform.settings().public_url.starts_with("https://");
        let storage = open_storage(&platform, &config)?;
        let catalogue = Catalogue::start(
            storage.clone(),
            CatalogueSettings {
                house_name: config.catalogue.house_name.clone(),
                allow_private_webhooks: config.catalogue.webhook_allow_private_addresses,
                search_sample: config.catalogue.search_sample,
            },
        )
        .await?;
        let billing = Billing::new(
            catalogue.clone(),
            BillingSettings {
                vat_rate: config.billing.vat_rate,
                pay_as_you_go: config.billing.pay_as_you_go_prices(),
                delivery: config.billing.delivery(),
            },
        );
        let missing = billing.house_missing().await?;
        if !missing.is_empty() {
            tracing::warn!(
                house = %billing.house(),
                missing = %missing.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", "),
                "the platform's legal identity is incomplete: billing runs hold its invoices (and take no number) until it is filled in with PUT /api/v1/orgs/{{house}}/legal-identity and /tax"
            );
        }
        let procurement = Procurement::new(
            catalogue.clone(),
            ProcurementSettings {
                standstill_days: config.tenders.standstill_days,
            },
        );
        if config.catalogue.demo {
            match procurement.seed_demo(&config.data_dir).await? {
                Some(path) => tracing::warn!(
                    path = %path.display(),
                    "demo mode: filled the platform with a fictional ecosystem; the demo accounts' logins are in this file (mode 0600)"
                ),
                None => tracing::info!(
                    "demo mode: the platform already has organisations, nothing was added"
                ),
            }
        }
        let contact = config.server.security_contact.clone().unwrap_or_else(|| {
            let host = url::Url::parse(&platform.settings().public_url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| "localhost".into());
            format!("mailto:security@{host}")
        });
        let jobs = crate::jobs::jobs(
            &platform,
            &storage,
            &catalogue,
            &billing,
            &crate::jobs::Schedule {
                webhook_retry: Duration::from_secs(config.catalogue.webhook_retry_seconds),
                billing: config
                    .billing
                    .automatic
                    .then(|| Duration::from_secs(config.billing.schedule_check_seconds)),
                quota_alerts: Duration::from_secs(config.billing.alert_check_seconds),
                invoice_deliveries: Duration::from_secs(config.billing.delivery_check_seconds),
                storage_upkeep: Duration::from_secs(
                    config.storage.maintenance_interval_seconds.max(1),
                ),
                housekeeping: Duration::from_secs(300),
            },
        );
        let mut main = main_router(&platform, secure_cookies, tls.is_some())
            .merge(hooks.routes(&platform))
            .route(
                "/.well-known/security.txt",
                get(move || security_txt(contact.clone())),
            )
            .layer(crate::listener::body_idle_timeout(Duration::from_secs(
                config.server.body_idle_timeout_seconds.max(1),
            )))
            .layer(axum::Extension(storage.clone()))
            .layer(axum::Extension(catalogue.clone()))
            .layer(axum::Extension(billing.clone()))
            .layer(axum::Extension(procurement.clone()))
            .layer(axum::Extension(jobs.clone()));
        if let Some(listener) = &web_listener {
            main = main.layer(axum::Extension(nuage_console::WebsiteBase {
                scheme: web_scheme.to_owned(),
                domain: config.website_domain.clone(),
                port: listener.local_addr()?.port(),
            }));
        }
        let main = with_client_address(main, &trusted);
        let s3 = with_client_address(s3_router(&storage, &config)?, &trusted);
        let web = web_listener.map(|listener| {
            let router =
                nuage_website::router(storage.clone(), &config.website_domain, web_tls.is_some());
            (listener, with_client_address(router, &trusted), web_tls)
        });
        Ok(Self {
            platform,
            storage,
            catalogue,
            billing,
            procurement,
            jobs,
            hooks,
            addresses,
            main: (main_listener, main),
            s3: (s3_listener, s3),
            web,
            tls,
            server: config.server.clone(),
            trusted,
        })
    }

    pub fn addresses(&self) -> &Addresses {
        &self.addresses
    }

    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    pub fn billing(&self) -> &Billing {
        &self.billing
    }

    pub fn procurement(&self) -> &Procurement {
        &self.procurement
    }

    /// The test suite's hooks (a settable clock in test builds).
    pub fn hooks(&self) -> &crate::hooks::Hooks {
        &self.hooks
    }

    /// Serves until a shutdown signal, then drains for up to 30 seconds.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal(), Duration::from_secs(30))
            .await
    }

    /// Serves until `stop` completes, then lets the requests in flight
    /// finish for up to `drain`.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
        drain: Duration,
    ) -> anyhow::Result<()> {
        let handle = Handle::new();
        let (main_listener, main) = self.main;
        let (s3_listener, s3) = self.s3;
        // Each listener caps its own connections per source, so that a
        // flood of one cannot starve the others.
        let limits = || {
            LimitAcceptor::new(
                ConnectionCounts::default(),
                &self.server,
                self.trusted.clone(),
            )
        };
        let main_server = crate::listener::serve(
            main_listener,
            main,
            self.tls.clone(),
            handle.clone(),
            limits(),
            &self.server,
        );
        let web_server = {
            let (web, handle, limits, server) = (self.web, handle.clone(), limits(), &self.server);
            async move {
                match web {
                    Some((listener, router, tls)) => {
                        crate::listener::serve(listener, router, tls, handle, limits, server).await
                    }
                    None => Ok(()),
                }
            }
        };
        let s3_server = crate::listener::serve(
            s3_listener,
            s3,
            self.tls,
            handle.clone(),
            limits(),
            &self.server,
        );
        // Every background job runs under a lease (one node at a time);
        // what is queued for delivery on this node wakes the webhooks job.
        let mut background = self.jobs.start();
        background.push(self.storage.follow_other_nodes(Duration::from_secs(1)));
        let (jobs, catalogue) = (self.jobs.clone(), self.catalogue.clone());
        background.push(tokio::spawn(async move {
            loop {
                catalogue.deliveries_queued().await;
                jobs.wake("webhooks");
            }
        }));
        let signal_handle = handle.clone();
        tokio::spawn(async move {
            stop.await;
            tracing::info!("shutting down: no new connections, finishing requests in flight");
            signal_handle.graceful_shutdown(Some(drain));
        });
        let outcome = tokio::try_join!(main_server, s3_server, web_server);
        for task in background {
            task.abort();
        }
        if let Err(e) = self.storage.recorder().flush().await {
            tracing::error!(error = %e, "the last access log and metering records could not be written");
        }
        self.platform.db().close().await;
        tracing::info!("stopped");
        outcome.map(|_| ())
    }
}

fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = interrupt => {}, _ = terminate => {} }
}

/// The console, the API and the operations endpoints on the main listener.
fn main_router(platform: &Platform, secure_cookies: bool, tls: bool) -> Router {
    let ops = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    telemetry::metrics().render(),
                )
            }),
        )
        .with_state(platform.clone());
    Router::new()
        .merge(nuage_api::router(platform.clone()))
        .merge(nuage_console::router(platform.clone(), nuage_console::ConsoleConfig { secure_cookies }))
        .merge(nuage_dav::router())
        .merge(ops)
        .layer(axum::middleware::from_fn(move |request, next| {
            security_headers(request, next, tls)
        }))
        .layer(axum::middleware::from_fn(telemetry::record_request))
        .layer(CatchPanicLayer::new())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default();
                    tracing::info_span!("request", method = %req.method(), path = %loggable_path(req.uri().path()), request_id = %id)
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// RFC 9116: where to report a vulnerability; valid for a year from now.
async fn security_txt(contact: String) -> impl IntoResponse {
    let expires = time::OffsetDateTime::now_utc() + time::Duration::days(365);
    let expires = expires
        .replace_nanosecond(0)
        .unwrap_or(expires)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("Contact: {contact}\nExpires: {expires}\nPreferred-Languages: fr, en\n"),
    )
}

/// Headers every answer of the main listener carries unless it set its own
/// (the console sets a policy for its pages): nothing served here — API
/// JSON, WebDAV files — runs as active content on the console's origin or is
/// framed, and with TLS, browsers keep to HTTPS.
async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
    tls: bool,
) -> axum::response::Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'; sandbox",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers
            .entry(name)
            .or_insert(header::HeaderValue::from_static(value));
    }
    if tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            header::HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// The client's address, as trusted proxies tell it, in place of the
/// peer's for everything the router runs.
fn with_client_address(router: Router, trusted: &TrustedProxies) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        trusted.clone(),
        crate::proxies::client_address,
    ))
}

/// The path as it may be logged: secrets carried in a path (password-reset
/// links) are cut off.
fn loggable_path(path: &str) -> &str {
    if path.starts_with("/password-reset/") {
        "/password-reset/[redacted]"
    } else {
        path
    }
}

async fn readyz(
    axum::extract::State(platform): axum::extract::State<Platform>,
) -> impl IntoResponse {
    if platform.db().ping().await {
        (StatusCode::OK, "ready")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the metadata database does not answer",
        )
    }
}

fn backend_settings(r: &crate::config::RegionConfig, data_dir: &Path) -> BackendSettings {
    use secrecy::ExposeSecret;
    if let Some(s3) = &r.s3 {
        return BackendSettings::S3 {
            endpoint: s3.endpoint.clone(),
            bucket: s3.bucket.clone(),
            region: s3.region.clone(),
            access_key_id: s3.access_key_id.clone(),
            secret_access_key: s3.secret_access_key.expose_secret().to_owned(),
            root: s3.root.clone(),
        };
    }
    if let Some(swift) = &r.swift {
        return BackendSettings::Swift {
            endpoint: swift.endpoint.clone(),
            container: swift.container.clone(),
            token: swift.token.expose_secret().to_owned(),
            root: swift.root.clone(),
        };
    }
    BackendSettings::Local(
        r.path
            .clone()
            .unwrap_or_else(|| data_dir.join("blobs").join(&r.name)),
    )
}

fn open_storage(platform: &Platform, config: &Config) -> anyhow::Result<Storage> {
    let c = &config.storage;
    let settings = StorageSettings {
        regions: c
            .regions
            .iter()
            .map(|r| {
                (
                    Region {
                        name: r.name.clone(),
                        jurisdiction: r.jurisdiction.clone(),
                        location: r.location.clone(),
                        block_public_access: r.block_public_access,
                    },
                    backend_settings(r, &config.data_dir),
                )
            })
            .collect(),
        upload_expiry: Duration::from_secs(c.upload_expiry_hours * 3600),
        body_idle_timeout: Duration::from_secs(c.body_idle_timeout_seconds),
        lifecycle_day: Duration::from_secs(c.lifecycle_day_seconds),
        flush_interval: Duration::from_millis(c.flush_interval_ms.max(10)),
        orphan_grace: Duration::from_secs(c.orphan_grace_seconds),
        website_domain: config.website_domain.clone(),
        dns_server: config.dns_server,
        kms: kms_identity(&config.keys)?,
        external_key_cache: Duration::from_secs(config.keys.external_key_cache_seconds),
    };
    Ok(Storage::open(platform.clone(), settings)?)
}

/// The S3 listener: the `s3s` service, behind a limit on requests in
/// flight (beyond it, `503 SlowDown` with `Retry-After`).
fn s3_router(storage: &Storage, config: &Config) -> anyhow::Result<Router> {
    let service = nuage_s3::service(
        storage.clone(),
        &nuage_s3::S3Settings {
            root_domain: config.storage.root_domain.clone(),
            post_object_max_bytes: config.storage.post_object_max_bytes,
            anonymous_requests_per_second: config.storage.anonymous_requests_per_second,
        },
    )
    .map_err(anyhow::Error::msg)?;
    let permits = Permits {
        requests: std::sync::Arc::new(tokio::sync::Semaphore::new(
            config.storage.max_concurrent_requests,
        )),
        forms: std::sync::Arc::new(tokio::sync::Semaphore::new(
            config.storage.max_concurrent_post_objects.max(1),
        )),
    };
    let cors = nuage_s3::Cors::new(storage.clone(), config.storage.root_domain.clone());
    let throttle = nuage_s3::throttle::SignatureThrottle::new(storage.platform().clone());
    let listener_tls = config.tls.is_some();
    let any_region = nuage_s3::region::AnyRegion::new(storage.platform().clone());
    let handler = move |axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<
        SocketAddr,
    >,
                        request: axum::extract::Request| {
        let service = service.clone();
        let permits = permits.clone();
        let cors = cors.clone();
        let throttle = throttle.clone();
        let any_region = any_region.clone();
        async move {
            let request_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_ascii_uppercase();
            // A source that keeps failing its signatures waits, like a
            // sign-in: checked in memory, counted in the database.
            let source = peer.ip().to_string();
            let signed_by = nuage_s3::throttle::signing_key(request.headers(), request.uri());
            if let Some(key) = &signed_by
                && throttle.must_wait(&source, key)
            {
                return nuage_s3::with_request_id(slow_down(), &request_id).await;
            }
            // An error answered to a request with a body may leave some
            // of it unread: the connection then closes, so that no byte
            // of it is ever read as the start of the client's next
            // request.
            let carries_body = request
                .headers()
                .get(header::CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() != b"0")
                || request.headers().contains_key(header::TRANSFER_ENCODING);
            let http1 = request.version() <= axum::http::Version::HTTP_11;
            let mut request = request;
            // Dates and regions as AWS reads them, before `s3s` checks the
            // signature (see `nuage_s3::dates` and `nuage_s3::region`).
            let early = match nuage_s3::dates::check(
                request.headers_mut(),
                std::time::SystemTime::now(),
            ) {
                Err(e) => Some(forbidden(e.code, e.message)),
                Ok(()) => match any_region.resign(&mut request).await {
                    nuage_s3::region::Resigned::Mismatch => Some(forbidden(
                        "SignatureDoesNotMatch",
                        "The request signature we calculated does not match the signature you provided.",
                    )),
                    _ => None,
                },
            };
            let response = match early {
                Some(refused) => refused,
                None => s3_answer(&service, &permits, &cors, peer, listener_tls, request).await,
            };
            let mut response = nuage_s3::with_request_id(response, &request_id).await;
            if let Some(key) = &signed_by
                && response.status() == StatusCode::FORBIDDEN
            {
                response = count_signature_failure(response, &throttle, &source, key).await;
            }
            let failed = response.status().is_client_error() || response.status().is_server_error();
            if carries_body && http1 && failed {
                response.headers_mut().insert(
                    header::CONNECTION,
                    header::HeaderValue::from_static("close"),
                );
            }
            response
        }
    };
    Ok(Router::new().fallback(handler).layer(
        TraceLayer::new_for_http()
            .on_response(DefaultOnResponse::new().level(tracing::Level::DEBUG)),
    ))
}

/// The S3 listener's places: requests in flight, and among them browser
/// forms (`POST` Object), whose file `s3s` reads into memory before it can
/// check the form's signature.
#[derive(Clone)]
struct Permits {
    requests: std::sync::Arc<tokio::sync::Semaphore>,
    forms: std::sync::Arc<tokio::sync::Semaphore>,
}

fn slow_down() -> axum::response::Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::CONTENT_TYPE, "application/xml"),
            (header::RETRY_AFTER, "1"),
        ],
        nuage_s3::error_xml("SlowDown", "Please reduce your request rate."),
    )
        .into_response()
}

/// A `403` in S3's XML, for requests refused before `s3s` sees them.
fn forbidden(code: &str, message: &str) -> axum::response::Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "application/xml")],
        nuage_s3::error_xml(code, message),
    )
        .into_response()
}

/// One S3 request: its place among those in flight, CORS, then the `s3s`
/// service.
async fn s3_answer(
    service: &nuage_s3::S3Service,
    permits: &Permits,
    cors: &nuage_s3::Cors,
    peer: SocketAddr,
    secure: bool,
    mut request: axum::extract::Request,
) -> axum::response::Response {
    let Ok(_permit) = permits.requests.clone().try_acquire_owned() else {
        return slow_down();
    };
    let form = is_browser_form(&request);
    let _form_permit = if form {
        match permits.forms.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => return slow_down(),
        }
    } else {
        None
    };
    if form {
        request = nuage_s3::form::substitute_filename(request).await;
    }
    let path = request.uri().path().to_owned();
    if request.method() == axum::http::Method::OPTIONS {
        return cors
            .preflight(&path, request.headers())
            .await
            .into_response();
    }
    let cors_headers = cors
        .response_headers(request.method(), &path, request.headers())
        .await;
    request.extensions_mut().insert(nuage_s3::ClientAddr(peer));
    if secure
        || request
            .extensions()
            .get::<crate::proxies::ForwardedHttps>()
            .is_some()
    {
        request.extensions_mut().insert(nuage_s3::Secure);
    }
    match tower::ServiceExt::oneshot(service.clone(), request).await {
        Ok(response) => {
            let mut response = response.map(axum::body::Body::new);
            if form {
                response = nuage_s3::form::policy_refusal(response).await;
            }
            response.headers_mut().extend(cors_headers);
            response
        }
        Err(e) => {
            tracing::error!(error = ?e, "S3 request failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "application/xml")],
                nuage_s3::error_xml(
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                ),
            )
                .into_response()
        }
    }
}

/// Counts a `403` whose error says the signature or key was wrong; the
/// response (a small XML error) is passed on as it was.
async fn count_signature_failure(
    response: axum::response::Response,
    throttle: &nuage_s3::throttle::SignatureThrottle,
    source: &str,
    key: &str,
) -> axum::response::Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return axum::response::Response::from_parts(parts, axum::body::Body::empty());
    };
    if nuage_s3::throttle::is_signature_failure(&bytes) {
        throttle.failed(source, key).await;
    }
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// A `POST` with a `multipart/form-data` body: a browser form upload.
fn is_browser_form(request: &axum::extract::Request) -> bool {
    request.method() == axum::http::Method::POST
        && request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .get(..19)
                    .is_some_and(|t| t.eq_ignore_ascii_case("multipart/form-data"))
            })
}

/// Writes the addresses file and prints the one JSON line.
pub fn announce(addresses: &Addresses, data_dir: &Path) -> anyhow::Result<()> {
    let line = serde_json::to_string(addresses)?;
    write_private(
        &data_dir.join("addresses.json"),
        format!("{line}\n").as_bytes(),
    )?;
    println!("{line}");
    Ok(())
}

/// The HSM the configuration names, opened; none for the master key file.
fn key_provider(keys: &KeysConfig) -> anyhow::Result<Option<Arc<dyn KeyProvider>>> {
    Ok(match (keys.provider, &keys.pkcs11) {
        (KeyProviderKind::Pkcs11, Some(hsm)) => {
            let provider = Pkcs11KeyProvider::open(&Pkcs11Settings {
                module: hsm.module.clone(),
                token_label: hsm.token_label.clone(),
                pin: hsm.pin.clone(),
                label_prefix: hsm.label_prefix.clone(),
            })?;
            tracing::info!(token = %hsm.token_label, "the platform's new keys are made in the HSM");
            Some(Arc::new(provider))
        }
        _ => None,
    })
}

/// The platform's identity toward organisations' own KMSs, read from its
/// files; none when not configured.
fn kms_identity(keys: &KeysConfig) -> anyhow::Result<Option<nuage_storage::custody::KmsIdentity>> {
    let Some(kmip) = &keys.kmip else {
        return Ok(None);
    };
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
    };
    Ok(Some(nuage_storage::custody::KmsIdentity {
        cert_pem: read(&kmip.client_cert)?,
        key_pem: read(&kmip.client_key)?.into(),
        timeout: Duration::from_millis(kmip.timeout_ms.max(1)),
        allow_private: kmip.allow_private_addresses,
    }))
}
