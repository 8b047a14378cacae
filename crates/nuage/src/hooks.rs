//! The test suite's hooks: a clock it sets, and points where the process
//! stops as in a crash. Only builds with the `test-hooks` feature (which the
//! suite turns on through the package's dev-dependency on itself) have
//! them; a shipped binary runs on the system's clock and refuses to start
//! when one of their settings is present, rather than ignore it.

use std::sync::Arc;

use axum::Router;
use nuage_service::{Clock, Platform};

/// The settings only the test suite's builds read.
const SETTINGS: [&str; 3] = [
    "NUAGE_TEST_CLOCK_MS",
    "NUAGE_TEST_CRASH_AT",
    "NUAGE_TEST_CRASH_AFTER_INVOICES",
];

/// This build's hooks.
pub struct Hooks {
    #[cfg(feature = "test-hooks")]
    clock: Arc<nuage_service::SettableClock>,
}

impl Hooks {
    /// The hooks as the environment sets them.
    #[cfg(not(feature = "test-hooks"))]
    pub fn from_env() -> anyhow::Result<Self> {
        match SETTINGS
            .iter()
            .find(|name| std::env::var_os(name).is_some())
        {
            Some(name) => anyhow::bail!(
                "{name} is a test hook, and this build has none (only the test suite's builds do): unset it"
            ),
            None => Ok(Self {}),
        }
    }

    /// The hooks as the environment sets them: the clock frozen at
    /// `NUAGE_TEST_CLOCK_MS` from the start, before anything acts on time.
    #[cfg(feature = "test-hooks")]
    pub fn from_env() -> anyhow::Result<Self> {
        let at = std::env::var(SETTINGS[0])
            .ok()
            .and_then(|v| v.parse::<i64>().ok());
        Ok(Self::frozen_at(at))
    }

    /// The hooks of a server the test suite runs in its own process: the
    /// clock frozen at `at` (ms since the epoch) from the start, or running.
    #[cfg(feature = "test-hooks")]
    pub fn frozen_at(at: Option<i64>) -> Self {
        Self {
            clock: Arc::new(nuage_service::SettableClock::new(at)),
        }
    }

    /// The platform's clock.
    pub fn clock(&self) -> Arc<dyn Clock> {
        #[cfg(feature = "test-hooks")]
        return self.clock.clone();
        #[cfg(not(feature = "test-hooks"))]
        Arc::new(nuage_service::SystemClock)
    }

    /// The clock a test sets (in-process benchmarks play months with it).
    #[cfg(feature = "test-hooks")]
    pub fn settable_clock(&self) -> &nuage_service::SettableClock {
        &self.clock
    }

    /// Installs the crash points in the platform.
    pub fn install(&self, platform: &Platform) {
        #[cfg(feature = "test-hooks")]
        platform.set_probe(Arc::new(crash_points()));
        let _ = platform;
    }

    /// `PUT /api/v1/test-clock` in test builds (none otherwise).
    pub fn routes(&self, platform: &Platform) -> Router {
        #[cfg(feature = "test-hooks")]
        return Router::new().route(
            "/api/v1/test-clock",
            axum::routing::put(set_test_clock).with_state((platform.clone(), self.clock.clone())),
        );
        #[cfg(not(feature = "test-hooks"))]
        {
            let _ = platform;
            Router::new()
        }
    }
}

/// Aborts the process, as in a crash, at the point `NUAGE_TEST_CRASH_AT`
/// names, or once `NUAGE_TEST_CRASH_AFTER_INVOICES` invoices are committed
/// (after the batch that holds that invoice).
#[cfg(feature = "test-hooks")]
fn crash_points() -> impl Fn(&str) + Send + Sync {
    let issued = std::sync::atomic::AtomicI64::new(0);
    let at = std::env::var(SETTINGS[1]).ok();
    let after_invoices = std::env::var(SETTINGS[2])
        .ok()
        .and_then(|v| v.parse::<i64>().ok());
    move |point: &str| {
        if point == "billing.invoice" {
            let n = issued.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            if after_invoices == Some(n) {
                std::process::abort();
            }
        }
        if at.as_deref() == Some(point) {
            std::process::abort();
        }
    }
}

/// Freezes the platform's clock (`{"now_ms": 1790000000000}`) or lets it run
/// (`{"now_ms": null}`); root only.
#[cfg(feature = "test-hooks")]
async fn set_test_clock(
    axum::extract::State((platform, clock)): axum::extract::State<(
        Platform,
        Arc<nuage_service::SettableClock>,
    )>,
    headers: axum::http::HeaderMap,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> axum::http::StatusCode {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    match platform.authenticate_token(token).await {
        Ok(nuage_service::Principal::Root { .. }) => {
            clock.set(body["now_ms"].as_i64());
            axum::http::StatusCode::NO_CONTENT
        }
        _ => axum::http::StatusCode::FORBIDDEN,
    }
}
