//! The use cases of Nuage. Each public method of [`Platform`] is one thing a
//! user can do: it checks who asks, opens the transaction, changes the state,
//! appends the audit record in the same transaction, and commits. HTTP, HTML
//! and SQL stay outside: the protocols call these methods, the repositories
//! do the SQL.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod drive_access;
pub mod error;
pub mod jobs;
pub mod key_provider;
pub mod keys;
pub mod mail;
pub mod net;
pub mod platform_keys;
pub mod throttle;
pub mod tokens;
pub mod totp;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nuage_db::Db;
use nuage_db::repo::{keys as key_repo, platform_keys as platform_keys_repo, settings};
use nuage_domain::ids::{OrgId, TokenId, UserId};
use nuage_domain::platform_key::KeyPurpose;
use serde::Serialize;

pub use audit::{AuditEntry, AuditEvent, AuditTrail, ChainReport};
pub use error::{ServiceError, ServiceResult};
pub use key_provider::{FileKeyProvider, KeyProvider, KeyRing};
pub use keys::MasterKey;
pub use mail::{Mailer, SmtpSettings};

/// What time it is for the use cases, in milliseconds since the Unix
/// epoch: the system's clock ([`SystemClock`]) in a running platform; one
/// the test suite sets ([`SettableClock`]) to play a history at known times.
/// Each platform holds its own, so that servers in one process keep
/// their own time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> i64;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// The system's clock, unless it is frozen at an instant.
#[derive(Debug)]
pub struct SettableClock {
    frozen: std::sync::atomic::AtomicI64,
}

impl SettableClock {
    /// A running clock, or one frozen at `at`.
    pub fn new(at: Option<i64>) -> Self {
        let clock = Self {
            frozen: std::sync::atomic::AtomicI64::new(i64::MIN),
        };
        clock.set(at);
        clock
    }

    /// Freezes the clock at `at`, or lets it run again with `None`.
    pub fn set(&self, at: Option<i64>) {
        self.frozen
            .store(at.unwrap_or(i64::MIN), std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for SettableClock {
    fn now_ms(&self) -> i64 {
        match self.frozen.load(std::sync::atomic::Ordering::SeqCst) {
            i64::MIN => SystemClock.now_ms(),
            at => at,
        }
    }
}

/// Where a test build may stop the process on purpose, to prove that what
/// was committed before survives (a billing run's invoices, a drive move).
/// A running platform has none.
pub type Probe = Arc<dyn Fn(&str) + Send + Sync>;

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The operator's root token: every right on the platform.
    Root { token: TokenId },
    /// A user, through an API token or a console session.
    User { id: UserId, is_operator: bool },
    /// An organisation, through one of its S3 keys (object storage only).
    S3Key { access_key_id: String, org: OrgId },
    /// Nobody yet: sign-up, login, password reset.
    Anonymous,
    /// The platform itself, on schedule (monthly billing runs): an
    /// operator's rights, written `system` in the audit trail.
    System,
}

impl Principal {
    /// How the actor is written in the audit trail.
    pub fn actor(&self) -> String {
        match self {
            Self::Root { .. } => "root".into(),
            Self::User { id, .. } => format!("user:{id}"),
            Self::S3Key { access_key_id, .. } => format!("s3_key:{access_key_id}"),
            Self::Anonymous => "anonymous".into(),
            Self::System => "system".into(),
        }
    }

    pub fn is_operator(&self) -> bool {
        matches!(
            self,
            Self::Root { .. }
                | Self::System
                | Self::User {
                    is_operator: true,
                    ..
                }
        )
    }

    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Self::User { id, .. } => Some(*id),
            _ => None,
        }
    }
}

/// Facts about the request that the audit trail records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMeta {
    /// The client's address, or `local` for the command line.
    pub source: String,
}

impl RequestMeta {
    pub fn local() -> Self {
        Self {
            source: "local".into(),
        }
    }
}

/// A page request: items after an opaque cursor.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 500;

    pub fn limit(&self) -> ServiceResult<i64> {
        match self.limit {
            None => Ok(i64::from(Self::DEFAULT_LIMIT)),
            Some(n) if (1..=Self::MAX_LIMIT).contains(&n) => Ok(i64::from(n)),
            Some(_) => Err(nuage_domain::DomainError::invalid(
                "limit",
                format!("the limit must be between 1 and {}", Self::MAX_LIMIT),
            )
            .into()),
        }
    }

    /// The cursor, which is the sort key of the last item seen.
    pub fn after(&self) -> ServiceResult<String> {
        match &self.cursor {
            None => Ok(String::new()),
            Some(c)
                if c.len() <= 128
                    && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-') =>
            {
                Ok(c.clone())
            }
            Some(_) => Err(nuage_domain::DomainError::invalid(
                "cursor",
                "the cursor is not one this server issued",
            )
            .into()),
        }
    }
}

/// A page of results, with the cursor of the next page if there is one.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from `limit` rows; a full page has a next cursor.
    pub fn from_rows<R>(
        rows: Vec<R>,
        limit: i64,
        cursor_of: impl Fn(&R) -> String,
        map: impl FnMut(R) -> T,
    ) -> Self {
        let next_cursor = if rows.len() as i64 == limit {
            rows.last().map(&cursor_of)
        } else {
            None
        };
        Self {
            items: rows.into_iter().map(map).collect(),
            next_cursor,
        }
    }
}

/// Settings of the platform that the use cases need.
#[derive(Debug, Clone)]
pub struct PlatformSettings {
    pub data_dir: PathBuf,
    /// The console's public address, for links in e-mails.
    pub public_url: String,
    pub session_ttl: Duration,
    pub mail_limits: MailLimits,
    /// What time it is ([`SystemClock`] unless a test sets one).
    pub clock: Arc<dyn Clock>,
    /// Where new epochs of the platform's keys are made (an HSM); the
    /// master key file when none.
    pub key_provider: Option<Arc<dyn KeyProvider>>,
}

/// Limits on the e-mails anyone can make the platform send (invitations,
/// password resets), so that it is nobody's tool to flood an inbox.
#[derive(Debug, Clone, Copy)]
pub struct MailLimits {
    /// Messages to one address in an hour; past it, nothing more is sent
    /// (the request is answered the same).
    pub per_recipient_per_hour: i64,
    /// Invitations one organisation sends in a day.
    pub invitations_per_org_per_day: i64,
}

impl Default for MailLimits {
    fn default() -> Self {
        Self {
            per_recipient_per_hour: 5,
            invitations_per_org_per_day: 100,
        }
    }
}

struct Inner {
    db: Db,
    key: Arc<MasterKey>,
    keys: Arc<KeyRing>,
    audit: AuditTrail,
    mailer: Mailer,
    settings: PlatformSettings,
    probe: std::sync::OnceLock<Probe>,
}

/// The platform: every use case, over shared state that lives in the database.
#[derive(Clone)]
pub struct Platform {
    inner: Arc<Inner>,
}

/// What happened at start-up that the operator must be told.
#[derive(Debug)]
pub struct StartReport {
    /// A root token generated on this start, to hand to the operator once.
    pub generated_root_token: Option<String>,
    pub chain: ChainReport,
}

const FINGERPRINT_SETTING: &str = "master_key_fingerprint";

impl Platform {
    /// Binds the platform to its database and key. Refuses a key whose
    /// fingerprint differs from the one the database was first started with;
    /// creates the root token on first start; verifies the audit chain.
    pub async fn start(
        db: Db,
        key: MasterKey,
        mailer: Mailer,
        settings: PlatformSettings,
        root_token: Option<&str>,
    ) -> ServiceResult<(Self, StartReport)> {
        let key = Arc::new(key);
        let mut conn = db.acquire().await?;
        let stored =
            settings::insert_if_absent(&mut conn, FINGERPRINT_SETTING, key.fingerprint()).await?;
        if stored != key.fingerprint() {
            return Err(ServiceError::Internal(format!(
                "this database was set up with another master key (fingerprint {stored}, this node's is {}): \
                 start every node with the same master key file",
                key.fingerprint()
            )));
        }
        drop(conn);
        let keys = Arc::new(KeyRing::new(
            FileKeyProvider::new(key.clone()),
            settings.key_provider.clone(),
        ));
        for row in platform_keys_repo::all(&mut *db.acquire().await?).await? {
            if row.provider != "file" && row.provider != keys.kind() {
                return Err(ServiceError::Internal(format!(
                    "epoch {} of this platform's {} key is in the {} key provider: configure it ([keys] in the configuration)",
                    row.epoch, row.purpose, row.provider
                )));
            }
            let known = KeyPurpose::parse(&row.purpose)?;
            keys.record(known, audit::epoch(row.epoch)?, &row.provider);
        }
        let audit = AuditTrail::new(
            keys.clone(),
            settings.data_dir.join("audit-checkpoint.json"),
            settings.clock.clone(),
        );
        let platform = Self {
            inner: Arc::new(Inner {
                db,
                keys,
                key,
                audit,
                mailer,
                settings,
                probe: std::sync::OnceLock::new(),
            }),
        };
        // First: every audited change needs the audit key.
        platform.record_first_keys().await?;
        let generated_root_token = platform.ensure_root_token(root_token).await?;
        let chain = platform
            .inner
            .audit
            .verify(&mut *platform.db().acquire().await?)
            .await?;
        Ok((
            platform,
            StartReport {
                generated_root_token,
                chain,
            },
        ))
    }

    /// Creates the root token on the first start of the platform: the given
    /// one, or a fresh one that is returned.
    async fn ensure_root_token(&self, given: Option<&str>) -> ServiceResult<Option<String>> {
        let mut tx = self.db().begin_write().await?;
        // Nodes starting together race here: the one whose claim is stored
        // creates the token; the others wait for its commit and see it.
        let claim = keys::secret::random_token(16);
        if settings::insert_if_absent(&mut tx, "root_token_claim", &claim).await? != claim {
            if let Some(given) = given {
                let known =
                    key_repo::find_token_by_hash(&mut tx, &keys::secret::sha256_hex(given)).await?;
                if !known.is_some_and(|t| t.is_root == 1 && t.revoked_at.is_none()) {
                    tracing::warn!(
                        "NUAGE_ROOT_TOKEN is not the platform's root token and is ignored: the root token is set on first start only"
                    );
                }
            }
            return Ok(None);
        }
        let (secret, generated) = match given {
            Some(t) if t.len() > 200 || t.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                return Err(ServiceError::Internal(
                    "NUAGE_ROOT_TOKEN must be at most 200 characters, without spaces".into(),
                ));
            }
            Some(t) => {
                if t.len() < 32 {
                    tracing::warn!(
                        "NUAGE_ROOT_TOKEN is shorter than 32 characters: it is easy to guess"
                    );
                }
                (t.to_owned(), false)
            }
            None => (tokens::new_token_secret(), true),
        };
        let id = TokenId::new();
        key_repo::insert_token(
            &mut tx,
            &key_repo::TokenRow {
                id: id.to_string(),
                token_hash: keys::secret::sha256_hex(&secret),
                name: "root".into(),
                user_id: None,
                is_root: 1,
                created_at: self.now_ms(),
                expires_at: None,
                last_used_at: None,
                revoked_at: None,
            },
        )
        .await?;
        self.commit_audited(
            tx,
            &Principal::Root { token: id },
            &RequestMeta::local(),
            AuditEvent::new("platform.root_token.create", format!("token:{id}")),
        )
        .await?;
        Ok(generated.then_some(secret))
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn audit(&self) -> &AuditTrail {
        &self.inner.audit
    }

    pub fn key(&self) -> &MasterKey {
        &self.inner.key
    }

    /// The platform's keys, each epoch with the provider that made it.
    pub fn key_provider(&self) -> &KeyRing {
        &self.inner.keys
    }

    pub fn mailer(&self) -> &Mailer {
        &self.inner.mailer
    }

    pub fn settings(&self) -> &PlatformSettings {
        &self.inner.settings
    }

    /// Milliseconds since the Unix epoch, by the platform's clock.
    pub fn now_ms(&self) -> i64 {
        self.inner.settings.clock.now_ms()
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.settings.clock
    }

    /// Installs the test build's probe (once; later calls change nothing).
    pub fn set_probe(&self, probe: Probe) {
        let _ = self.inner.probe.set(probe);
    }

    /// Tells the probe, if any, that `point` is reached.
    pub fn probe(&self, point: &str) {
        if let Some(probe) = self.inner.probe.get() {
            probe(point);
        }
    }

    /// Appends the audit record of the change made in `tx`, commits both
    /// together, and checkpoints the new head: how every change ends.
    pub async fn commit_audited(
        &self,
        mut tx: nuage_db::Transaction<'static, nuage_db::Any>,
        who: &Principal,
        meta: &RequestMeta,
        event: AuditEvent,
    ) -> ServiceResult<()> {
        let head = self.audit().append(&mut tx, who, meta, event).await?;
        tx.commit().await.map_err(nuage_db::DbError::from)?;
        self.audit().checkpoint(head).await;
        Ok(())
    }

    /// Verifies the whole audit chain (operator only).
    pub async fn verify_audit(&self, who: &Principal) -> ServiceResult<ChainReport> {
        if !who.is_operator() {
            return Err(ServiceError::Forbidden(
                "only the operator can verify the whole audit chain".into(),
            ));
        }
        self.audit().verify(&mut *self.db().acquire().await?).await
    }
}

/// Idempotency keys for creating requests: the first request with a key does
/// the work; a retry with the same key and body gets the same response.
pub mod idempotency {
    use nuage_db::repo::idempotency as repo;
    pub use nuage_db::repo::idempotency::Reservation;

    use crate::{Platform, Principal, ServiceResult};

    /// How long a key is remembered.
    pub const RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

    impl Platform {
        pub async fn reserve_idempotency_key(
            &self,
            who: &Principal,
            key: &str,
            request_hash: &str,
        ) -> ServiceResult<Reservation> {
            let mut conn = self.db().acquire().await?;
            repo::purge_before(&mut conn, self.now_ms() - RETENTION_MS).await?;
            match repo::reserve(&mut conn, &who.actor(), key, request_hash, self.now_ms()).await? {
                Reservation::Seen {
                    request_hash,
                    status,
                    response: Some(sealed),
                } => {
                    let response = String::from_utf8(self.key().open(&sealed)?).map_err(|_| {
                        crate::ServiceError::Internal("a stored response is not UTF-8".into())
                    })?;
                    Ok(Reservation::Seen {
                        request_hash,
                        status,
                        response: Some(response),
                    })
                }
                other => Ok(other),
            }
        }

        /// Stores the response to replay, sealed: it may carry a secret
        /// shown once (an S3 secret key, an API token).
        pub async fn complete_idempotency_key(
            &self,
            who: &Principal,
            key: &str,
            status: u16,
            response: &str,
        ) -> ServiceResult<()> {
            Ok(repo::complete(
                &mut *self.db().acquire().await?,
                &who.actor(),
                key,
                i64::from(status),
                &self.key().seal(response.as_bytes()),
            )
            .await?)
        }

        pub async fn release_idempotency_key(
            &self,
            who: &Principal,
            key: &str,
        ) -> ServiceResult<()> {
            Ok(repo::release(&mut *self.db().acquire().await?, &who.actor(), key).await?)
        }
    }
}
