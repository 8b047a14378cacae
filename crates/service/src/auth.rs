//! Signing in: console sessions, the TOTP second factor, password resets.

use nuage_db::repo::identity as users;
use nuage_db::repo::identity::UserRow;
use nuage_db::repo::sessions::{self as repo, SessionRow};
use nuage_domain::DomainError;
use nuage_domain::ids::{OrgId, UserId};
use nuage_domain::org::Permission;
use nuage_domain::user::{Email, check_new_password};

use crate::accounts::{Membership, User, decoy_hash, hash_password, password_matches};
use crate::error::{ServiceError, ServiceResult};
use crate::keys::secret;
use crate::throttle::Attempt;
use crate::{AuditEvent, Platform, Principal, RequestMeta, totp};

/// A console session, as the console needs it on every page.
#[derive(Clone)]
pub struct Session {
    pub user: User,
    pub memberships: Vec<Membership>,
    pub current_org: Option<Membership>,
    pub csrf_token: String,
    /// The password was right but the TOTP code is still to be given.
    pub second_factor_pending: bool,
}

/// A console session as its user reviews it (never its secret).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SessionSummary {
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.user.id)
            .field("current_org", &self.current_org.as_ref().map(|m| &m.org_id))
            .field("second_factor_pending", &self.second_factor_pending)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment { .. }")
    }
}

impl Session {
    pub fn principal(&self) -> Principal {
        Principal::User {
            id: self.user.id,
            is_operator: self.user.is_operator,
        }
    }
}

/// How long a password-reset link stays valid.
const RESET_TTL_MS: i64 = 60 * 60 * 1000;

/// A TOTP secret being enrolled, shown to the user once.
#[derive(Clone)]
pub struct TotpEnrolment {
    pub secret_base32: String,
    pub provisioning_uri: String,
}

fn wrong_credentials() -> ServiceError {
    ServiceError::Unauthenticated("wrong e-mail address or password".into())
}

/// Wrong TOTP codes allowed per user within the window before further codes
/// are refused for the rest of it (passwords: see `crate::throttle`).
pub const MAX_LOGIN_FAILURES: i64 = 10;
const LOGIN_FAILURE_WINDOW_MS: i64 = 15 * 60 * 1000;

impl Platform {
    /// Deletes the sessions that have expired (a housekeeping job); how
    /// many went.
    pub async fn forget_expired_sessions(&self) -> ServiceResult<u64> {
        Ok(repo::delete_expired_sessions(&mut *self.db().acquire().await?, self.now_ms()).await?)
    }

    /// Checks an e-mail address and password and opens a session. Returns the
    /// session's secret (for the cookie) and whether a TOTP code is still due.
    pub async fn login(
        &self,
        meta: &RequestMeta,
        email: &str,
        password: &str,
    ) -> ServiceResult<(String, bool)> {
        let user = self.check_password(meta, email, password).await?;
        let token = secret::random_token(32);
        let now = self.now_ms();
        // The organisation the user last chose, else their oldest: never
        // one picked by its name, which anyone can make look like another.
        let first_org = users::opening_org(&mut *self.db().acquire().await?, &user.id).await?;
        let row = SessionRow {
            id_hash: secret::sha256_hex(&token),
            user_id: user.id.clone(),
            current_org: first_org,
            csrf_token: secret::random_token(20),
            second_factor_pending: user.totp_enabled,
            created_at: now,
            expires_at: now + self.settings().session_ttl.as_millis() as i64,
        };
        let who = Principal::User {
            id: UserId::parse(&user.id)?,
            is_operator: user.is_operator == 1,
        };
        let mut tx = self.db().begin_write().await?;
        repo::insert_session(&mut tx, &row).await?;
        self.commit_audited(
            tx,
            &who,
            meta,
            AuditEvent::new("session.login", format!("user:{}", user.id)),
        )
        .await?;
        Ok((token, user.totp_enabled == 1))
    }

    /// Exchanges an e-mail address, password and (when enabled) a TOTP code
    /// for a new API token: how the command line and scripts sign in.
    pub async fn login_for_token(
        &self,
        meta: &RequestMeta,
        credentials: (&str, &str),
        totp_code: Option<&str>,
        name: &str,
        expires_in_days: Option<u32>,
    ) -> ServiceResult<(crate::tokens::ApiToken, String)> {
        let (email, password) = credentials;
        let user = self.check_password(meta, email, password).await?;
        let id = UserId::parse(&user.id)?;
        if user.totp_enabled == 1 {
            let code = totp_code.ok_or_else(|| {
                ServiceError::Unauthenticated(
                    "this account has a second factor: give the TOTP code too".into(),
                )
            })?;
            self.check_totp_code(&id, code).await?;
        }
        self.create_api_token(
            &Principal::User {
                id,
                is_operator: user.is_operator == 1,
            },
            meta,
            name,
            expires_in_days,
        )
        .await
    }

    /// Checks a password, throttling guesses per address and source on every
    /// node (see [`crate::throttle`]). Takes as long for an unknown address
    /// as for a known one.
    async fn check_password(
        &self,
        meta: &RequestMeta,
        email: &str,
        password: &str,
    ) -> ServiceResult<UserRow> {
        let Ok(email) = Email::parse(email) else {
            password_matches(password, decoy_hash()).await?;
            return Err(wrong_credentials());
        };
        let attempt = Attempt {
            kind: "sign-in",
            account: email.as_str(),
            source: &meta.source,
            now_ms: self.now_ms(),
        };
        let (user, checked) = {
            let mut conn = self.db().acquire().await?;
            let checked = attempt.check(&mut conn).await?;
            (
                users::get_user_by_email(&mut conn, email.as_str()).await?,
                checked,
            )
        };
        // No connection is held while the hash is computed.
        let matched = match &user {
            Some(u) => password_matches(password, &u.password_hash).await?,
            None => {
                password_matches(password, decoy_hash()).await?;
                false
            }
        };
        let mut conn = self.db().acquire().await?;
        match user {
            Some(user) if matched => {
                attempt.succeeded(&mut conn, checked).await?;
                Ok(user)
            }
            _ => {
                attempt.failed(&mut conn).await?;
                tracing::info!(source = %meta.source, "failed sign-in");
                metrics::counter!("nuage_login_failures_total").increment(1);
                Err(wrong_credentials())
            }
        }
    }

    /// The session behind a cookie's secret, if it is live.
    pub async fn session(&self, token: &str) -> ServiceResult<Option<Session>> {
        if token.len() > 200 {
            return Ok(None);
        }
        let mut conn = self.db().acquire().await?;
        let Some(row) =
            repo::get_session(&mut conn, &secret::sha256_hex(token), self.now_ms()).await?
        else {
            return Ok(None);
        };
        let Some(user) = users::get_user(&mut conn, &row.user_id).await? else {
            return Ok(None);
        };
        let memberships: Vec<Membership> = users::list_memberships_of_user(&mut conn, &row.user_id)
            .await?
            .into_iter()
            .map(Membership::try_from)
            .collect::<ServiceResult<_>>()?;
        let current_org = row
            .current_org
            .as_ref()
            .and_then(|id| memberships.iter().find(|m| &m.org_id == id).cloned())
            .or_else(|| {
                memberships
                    .iter()
                    .min_by_key(|m| (m.created_at_ms, m.org_id.clone()))
                    .cloned()
            });
        Ok(Some(Session {
            user: User::try_from(&user)?,
            memberships,
            current_org,
            csrf_token: row.csrf_token,
            second_factor_pending: row.second_factor_pending == 1,
        }))
    }

    /// Completes a login with the TOTP code.
    pub async fn complete_second_factor(
        &self,
        meta: &RequestMeta,
        token: &str,
        code: &str,
    ) -> ServiceResult<()> {
        let session = self.session(token).await?.ok_or_else(|| {
            ServiceError::Unauthenticated("the session has expired; sign in again".into())
        })?;
        self.check_totp_code(&session.user.id, code).await?;
        let mut tx = self.db().begin_write().await?;
        repo::complete_second_factor(&mut tx, &secret::sha256_hex(token)).await?;
        self.commit_audited(
            tx,
            &session.principal(),
            meta,
            AuditEvent::new("session.second_factor", format!("user:{}", session.user.id)),
        )
        .await
    }

    /// Accepts a code once: the step it matches must be newer than the last accepted.
    async fn check_totp_code(&self, user: &UserId, code: &str) -> ServiceResult<()> {
        let mut conn = self.db().acquire().await?;
        let row = users::get_user(&mut conn, &user.to_string())
            .await?
            .ok_or(ServiceError::NotFound("user"))?;
        let sealed = row
            .totp_secret
            .ok_or_else(|| ServiceError::Conflict("no second factor is set up".into()))?;
        let secret = self.key().open(&sealed)?;
        // Codes are throttled like passwords, per user, on every node.
        let throttle_key = format!("totp:{}", row.id);
        let now = self.now_ms();
        let since = now - LOGIN_FAILURE_WINDOW_MS;
        if users::count_login_failures(&mut conn, &throttle_key, since).await? >= MAX_LOGIN_FAILURES
        {
            return Err(ServiceError::RateLimited);
        }
        let Some(step) = totp::matching_step(&secret, code, now) else {
            users::record_login_failure(&mut conn, &throttle_key, now).await?;
            return Err(ServiceError::Unauthenticated(
                "the code is wrong or has expired".into(),
            ));
        };
        users::clear_login_failures(&mut conn, &throttle_key, since).await?;
        if !users::advance_totp_step(&mut conn, &row.id, step).await? {
            return Err(ServiceError::Unauthenticated(
                "this code was already used; wait for the next one".into(),
            ));
        }
        Ok(())
    }

    pub async fn logout(&self, meta: &RequestMeta, token: &str) -> ServiceResult<()> {
        let Some(session) = self.session(token).await? else {
            return Ok(());
        };
        let mut tx = self.db().begin_write().await?;
        repo::delete_session(&mut tx, &secret::sha256_hex(token)).await?;
        self.commit_audited(
            tx,
            &session.principal(),
            meta,
            AuditEvent::new("session.logout", format!("user:{}", session.user.id)),
        )
        .await
    }

    /// Makes another of the user's organisations the current one.
    pub async fn switch_org(&self, token: &str, org: OrgId) -> ServiceResult<()> {
        let session = self
            .session(token)
            .await?
            .ok_or_else(|| ServiceError::Unauthenticated("sign in first".into()))?;
        let mut conn = self.db().acquire().await?;
        self.authorize_org(&mut conn, &session.principal(), org, Permission::Use)
            .await?;
        repo::set_session_org(&mut conn, &secret::sha256_hex(token), &org.to_string()).await?;
        users::set_last_org(&mut conn, &session.user.id.to_string(), &org.to_string()).await?;
        Ok(())
    }

    /// Starts enrolling a TOTP second factor: a fresh secret, kept sealed and
    /// inactive until a code from it is confirmed.
    pub async fn begin_totp(
        &self,
        who: &Principal,
        meta: &RequestMeta,
    ) -> ServiceResult<TotpEnrolment> {
        let (user, _) = self.me(who).await?;
        if user.totp_enabled {
            return Err(ServiceError::Conflict(
                "a second factor is already enabled; disable it first".into(),
            ));
        }
        let mut bytes = [0u8; 20];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
        let secret_base32 = data_encoding::BASE32_NOPAD.encode(&bytes);
        let mut tx = self.db().begin_write().await?;
        users::set_totp(
            &mut tx,
            &user.id.to_string(),
            Some(&self.key().seal(&bytes)),
            false,
        )
        .await?;
        self.commit_audited(
            tx,
            who,
            meta,
            AuditEvent::new("user.totp.begin", format!("user:{}", user.id)),
        )
        .await?;
        Ok(TotpEnrolment {
            provisioning_uri: totp::provisioning_uri(&secret_base32, &user.email),
            secret_base32,
        })
    }

    /// Enables the enrolled second factor once the user proves they hold it.
    pub async fn confirm_totp(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        code: &str,
    ) -> ServiceResult<()> {
        let (user, _) = self.me(who).await?;
        if user.totp_enabled {
            return Err(ServiceError::Conflict(
                "the second factor is already enabled".into(),
            ));
        }
        self.check_totp_code(&user.id, code).await?;
        let mut tx = self.db().begin_write().await?;
        let sealed = users::get_user(&mut tx, &user.id.to_string())
            .await?
            .and_then(|u| u.totp_secret);
        users::set_totp(&mut tx, &user.id.to_string(), sealed.as_deref(), true).await?;
        // Keep the step just used, so the confirming code cannot sign in again.
        if let Some(step) = totp::matching_step(
            &self.key().open(sealed.as_deref().unwrap_or_default())?,
            code,
            self.now_ms(),
        ) {
            users::advance_totp_step(&mut tx, &user.id.to_string(), step).await?;
        }
        self.commit_audited(
            tx,
            who,
            meta,
            AuditEvent::new("user.totp.enable", format!("user:{}", user.id)),
        )
        .await
    }

    /// Turns the second factor off, with a current code.
    pub async fn disable_totp(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        code: &str,
    ) -> ServiceResult<()> {
        let (user, memberships) = self.me(who).await?;
        if !user.totp_enabled {
            return Err(ServiceError::Conflict("no second factor is enabled".into()));
        }
        let mut conn = self.db().acquire().await?;
        for m in &memberships {
            if users::get_org(&mut conn, &m.org_id)
                .await?
                .is_some_and(|o| o.require_totp == 1)
            {
                return Err(ServiceError::Conflict(format!(
                    "« {} » requires a second factor of its members",
                    m.org_name
                )));
            }
        }
        drop(conn);
        self.check_totp_code(&user.id, code).await?;
        let mut tx = self.db().begin_write().await?;
        users::set_totp(&mut tx, &user.id.to_string(), None, false).await?;
        self.commit_audited(
            tx,
            who,
            meta,
            AuditEvent::new("user.totp.disable", format!("user:{}", user.id)),
        )
        .await
    }

    /// Sends a password-reset link if the address has an account. Says the
    /// same thing either way, so that it tells nobody who has an account.
    pub async fn request_password_reset(
        &self,
        meta: &RequestMeta,
        email: &str,
    ) -> ServiceResult<()> {
        let email = Email::parse(email)?;
        let Some(user) =
            users::get_user_by_email(&mut *self.db().acquire().await?, email.as_str()).await?
        else {
            tracing::info!(source = %meta.source, "password reset asked for an unknown address");
            return Ok(());
        };
        let now = self.now_ms();
        // Anyone can ask: a few messages an hour to one address, no more,
        // answered the same.
        let recent = nuage_db::repo::mail::count_to_recipient_since(
            &mut *self.db().acquire().await?,
            &user.email,
            now - 3_600_000,
        )
        .await?;
        if recent >= self.settings().mail_limits.per_recipient_per_hour {
            tracing::info!(source = %meta.source, "password reset not sent: this address had enough mail this hour");
            return Ok(());
        }
        let token = secret::random_token(32);
        let who = Principal::Anonymous;
        let mut tx = self.db().begin_write().await?;
        repo::insert_password_reset(
            &mut tx,
            &secret::sha256_hex(&token),
            &user.id,
            now,
            now + RESET_TTL_MS,
        )
        .await?;
        self.commit_audited(
            tx,
            &who,
            meta,
            AuditEvent::new("password_reset.request", format!("user:{}", user.id)),
        )
        .await?;
        let link = format!("{}/password-reset/{token}", self.settings().public_url);
        let body = format!(
            "Bonjour,\n\nPour choisir un nouveau mot de passe Nuage, ouvrez ce lien dans l'heure :\n{link}\n\nSi vous n'avez rien demandé, ignorez ce message.\n\n---\n\nHello,\n\nTo choose a new Nuage password, open this link within the hour:\n{link}\n\nIf you did not ask for it, ignore this message.\n"
        );
        self.mailer()
            .send(
                self.db(),
                self.clock().as_ref(),
                &user.email,
                "Nuage : nouveau mot de passe / new password",
                &body,
                Some(&token),
            )
            .await
    }

    /// Sets a new password with a reset link's token. Ends every session,
    /// revokes every API token, app password and other reset link of the
    /// user: whoever knew the old password loses what they made with it.
    pub async fn reset_password(
        &self,
        meta: &RequestMeta,
        token: &str,
        new_password: &str,
    ) -> ServiceResult<()> {
        check_new_password(new_password)?;
        let hash = hash_password(new_password).await?;
        let mut tx = self.db().begin_write().await?;
        let user_id = repo::take_password_reset(&mut tx, &secret::sha256_hex(token), self.now_ms())
            .await?
            .ok_or_else(|| {
                DomainError::invalid(
                    "token",
                    "this link is not valid: it was used already or has expired",
                )
            })?;
        users::set_password_hash(&mut tx, &user_id, &hash).await?;
        repo::delete_sessions_of_user(&mut tx, &user_id).await?;
        repo::cancel_password_resets_of_user(&mut tx, &user_id, self.now_ms()).await?;
        nuage_db::repo::keys::revoke_tokens_of_user(&mut tx, &user_id, self.now_ms()).await?;
        nuage_db::repo::drive::revoke_app_passwords_of_user(&mut tx, &user_id, self.now_ms())
            .await?;
        let user = users::get_user(&mut tx, &user_id)
            .await?
            .ok_or(ServiceError::NotFound("user"))?;
        let who = Principal::User {
            id: UserId::parse(&user.id)?,
            is_operator: user.is_operator == 1,
        };
        self.commit_audited(
            tx,
            &who,
            meta,
            AuditEvent::new("password_reset.complete", format!("user:{user_id}")),
        )
        .await
    }

    /// The caller's live console sessions, for them to review.
    pub async fn sessions_of(&self, who: &Principal) -> ServiceResult<Vec<SessionSummary>> {
        let Some(user) = who.user_id() else {
            return Err(ServiceError::Forbidden("sessions belong to users".into()));
        };
        let rows = repo::sessions_of_user(
            &mut *self.db().acquire().await?,
            &user.to_string(),
            self.now_ms(),
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|(created, expires)| SessionSummary {
                created_at_ms: created,
                expires_at_ms: expires,
            })
            .collect())
    }

    /// Ends every console session of the caller (signed out everywhere).
    pub async fn end_sessions(&self, who: &Principal, meta: &RequestMeta) -> ServiceResult<()> {
        let Some(user) = who.user_id() else {
            return Err(ServiceError::Forbidden("sessions belong to users".into()));
        };
        let mut tx = self.db().begin_write().await?;
        repo::delete_sessions_of_user(&mut tx, &user.to_string()).await?;
        self.commit_audited(
            tx,
            who,
            meta,
            AuditEvent::new("user.sessions.end", format!("user:{user}")),
        )
        .await
    }

    /// The newest messages of the outbox (operator only).
    pub async fn outbox(
        &self,
        who: &Principal,
        limit: i64,
    ) -> ServiceResult<Vec<nuage_db::repo::mail::OutboxRow>> {
        if !who.is_operator() {
            return Err(ServiceError::Forbidden(
                "only the operator reads the outbox".into(),
            ));
        }
        Ok(nuage_db::repo::mail::list_recent(&mut *self.db().acquire().await?, limit).await?)
    }
}
