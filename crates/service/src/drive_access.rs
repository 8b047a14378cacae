//! How the drive is reached from outside the console: app passwords, which
//! a WebDAV client sends with the user's e-mail address (HTTP Basic), and
//! the WebDAV locks those clients take, kept in the database so that every
//! node sees them.

use nuage_db::repo::drive::{self as repo, AppPasswordRow, LockRow};
use nuage_db::repo::identity;
use nuage_domain::DomainError;
use nuage_domain::drive::{DrivePath, Lock, LockQuery, lock_conflict};
use nuage_domain::ids::{OrgId, UserId};
use nuage_domain::org::Permission;
use serde::Serialize;
use uuid::Uuid;

use crate::error::{ServiceError, ServiceResult};
use crate::keys::secret;
use crate::throttle::Attempt;
use crate::{AuditEvent, Platform, Principal, RequestMeta};

/// An app password as listed (never its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AppPassword {
    pub id: String,
    pub name: String,
    /// The organisation whose drive it opens.
    pub org_id: String,
    pub created_at_ms: i64,
    pub last_used_at_ms: Option<i64>,
}

impl From<AppPasswordRow> for AppPassword {
    fn from(r: AppPasswordRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            org_id: r.org_id,
            created_at_ms: r.created_at,
            last_used_at_ms: r.last_used_at,
        }
    }
}

/// Who a WebDAV request acts as, once its app password is checked.
#[derive(Debug, Clone)]
pub struct DriveUser {
    pub user: UserId,
    pub email: String,
    pub org: OrgId,
    pub app_password: String,
}

/// A fresh app password: 120 random bits, in six groups of four characters
/// that are easy to type into a system's dialog.
fn new_app_password() -> String {
    let raw = secret::random_token(15);
    raw.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("-")
}

/// A WebDAV lock as the client sees it.
#[derive(Debug, Clone)]
pub struct DavLock {
    pub token: String,
    pub path: DrivePath,
    pub principal: Option<String>,
    /// The `owner` element the client sent, as XML.
    pub owner: Option<String>,
    pub timeout_ms: Option<i64>,
    pub expires_at: Option<i64>,
    pub shared: bool,
    pub deep: bool,
}

impl DavLock {
    fn from_row(r: LockRow) -> Option<Self> {
        Some(Self {
            path: DrivePath::parse(&r.path).ok()?,
            token: r.token,
            principal: r.principal,
            owner: r.owner,
            timeout_ms: r.timeout_ms,
            expires_at: r.expires_at,
            shared: r.shared == 1,
            deep: r.deep == 1,
        })
    }

    /// Whether the lock applies to `path` (see [`Lock::covers`]).
    pub fn covers(&self, path: &DrivePath) -> bool {
        self.rule().covers(path)
    }

    fn rule(&self) -> Lock {
        Lock {
            token: self.token.clone(),
            path: self.path.clone(),
            principal: self.principal.clone(),
            shared: self.shared,
            deep: self.deep,
        }
    }
}

/// A request for a new lock.
#[derive(Debug, Clone)]
pub struct NewLock {
    pub path: DrivePath,
    pub principal: Option<String>,
    pub owner: Option<String>,
    pub timeout_ms: Option<i64>,
    pub shared: bool,
    pub deep: bool,
}

/// Locks live at most this long without a refresh (a client asking for
/// "Infinite" gets this).
pub const MAX_LOCK_MS: i64 = 24 * 3_600_000;

fn bounded(timeout_ms: Option<i64>) -> i64 {
    timeout_ms.map_or(MAX_LOCK_MS, |t| t.clamp(1_000, MAX_LOCK_MS))
}

impl Platform {
    /// Creates an app password for the caller, opening the drive of one of
    /// its organisations; the secret is returned once.
    pub async fn create_app_password(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        org: OrgId,
        name: &str,
    ) -> ServiceResult<(AppPassword, String)> {
        let Some(user) = who.user_id() else {
            return Err(ServiceError::Forbidden(
                "app passwords belong to users".into(),
            ));
        };
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                "name",
                "an app password's name has 1 to 100 characters and no control characters",
            )
            .into());
        }
        let mut tx = self.db().begin_write().await?;
        // The organisation's policy (a second factor required) holds here
        // as everywhere: no app password gets round it.
        let member = Principal::User {
            id: user,
            is_operator: false,
        };
        self.authorize_org(&mut tx, &member, org, Permission::Use)
            .await?;
        let secret = new_app_password();
        let row = AppPasswordRow {
            id: Uuid::now_v7().to_string(),
            secret_hash: secret::sha256_hex(&secret),
            name: name.to_owned(),
            user_id: user.to_string(),
            org_id: org.to_string(),
            created_at: self.now_ms(),
            last_used_at: None,
            revoked_at: None,
        };
        repo::insert_app_password(&mut tx, &row).await?;
        self.commit_audited(
            tx,
            who,
            meta,
            AuditEvent::new("app_password.create", format!("app_password:{}", row.id))
                .org(org)
                .details(serde_json::json!({"name": row.name})),
        )
        .await?;
        Ok((AppPassword::from(row), secret))
    }

    pub async fn list_app_passwords(&self, who: &Principal) -> ServiceResult<Vec<AppPassword>> {
        let Some(user) = who.user_id() else {
            return Err(ServiceError::Forbidden(
                "app passwords belong to users".into(),
            ));
        };
        let rows = repo::app_passwords_of_user(&mut *self.db().acquire().await?, &user.to_string())
            .await?;
        Ok(rows.into_iter().map(AppPassword::from).collect())
    }

    pub async fn revoke_app_password(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        id: &str,
    ) -> ServiceResult<()> {
        let Some(user) = who.user_id() else {
            return Err(ServiceError::Forbidden(
                "app passwords belong to users".into(),
            ));
        };
        let mut tx = self.db().begin_write().await?;
        if !repo::revoke_app_password(&mut tx, id, &user.to_string(), self.now_ms()).await? {
            return Err(ServiceError::NotFound("app password"));
        }
        self.commit_audited(
            tx,
            who,
            meta,
            AuditEvent::new("app_password.revoke", format!("app_password:{id}")),
        )
        .await
    }

    /// Checks an e-mail address and app password (HTTP Basic), throttled
    /// per address and source like a sign-in. Unknown, revoked, another
    /// user's, passwords of a membership since ended, and those of a member
    /// whom the organisation's policy now refuses (a second factor required
    /// and not enabled) are refused alike.
    pub async fn authenticate_app_password(
        &self,
        meta: &RequestMeta,
        email: &str,
        password: &str,
    ) -> ServiceResult<DriveUser> {
        let refused =
            || ServiceError::Unauthenticated("the e-mail address or app password is wrong".into());
        let email = email.trim().to_lowercase();
        let attempt = Attempt {
            kind: "dav",
            account: &email,
            source: &meta.source,
            now_ms: self.now_ms(),
        };
        let mut conn = self.db().acquire().await?;
        let checked = attempt.check(&mut conn).await?;
        match self.app_password_user(&mut conn, &email, password).await? {
            Some(user) => {
                attempt.succeeded(&mut conn, checked).await?;
                Ok(user)
            }
            None => {
                attempt.failed(&mut conn).await?;
                Err(refused())
            }
        }
    }

    async fn app_password_user(
        &self,
        conn: &mut nuage_db::AnyConnection,
        email: &str,
        password: &str,
    ) -> ServiceResult<Option<DriveUser>> {
        if password.is_empty() || password.len() > 200 {
            return Ok(None);
        }
        let Some(row) = repo::find_app_password(conn, &secret::sha256_hex(password.trim())).await?
        else {
            return Ok(None);
        };
        if row.revoked_at.is_some() {
            return Ok(None);
        }
        let Some(user) = identity::get_user(conn, &row.user_id).await? else {
            return Ok(None);
        };
        if !user.email.eq_ignore_ascii_case(email) {
            return Ok(None);
        }
        let who = Principal::User {
            id: UserId::parse(&user.id)?,
            is_operator: false,
        };
        match self
            .authorize_org(conn, &who, OrgId::parse(&row.org_id)?, Permission::Use)
            .await
        {
            Ok(_) => {}
            Err(ServiceError::NotFound(_) | ServiceError::Forbidden(_)) => return Ok(None),
            Err(e) => return Err(e),
        }
        let now = self.now_ms();
        if row.last_used_at.is_none_or(|t| t < now - 60_000) {
            repo::touch_app_password(conn, &row.id, now).await?;
        }
        Ok(Some(DriveUser {
            user: UserId::parse(&user.id)?,
            email: user.email,
            org: OrgId::parse(&row.org_id)?,
            app_password: row.id,
        }))
    }

    // --- WebDAV locks --------------------------------------------------------

    async fn locks_in(
        conn: &mut nuage_db::AnyConnection,
        org: &OrgId,
        now_ms: i64,
    ) -> ServiceResult<Vec<DavLock>> {
        Ok(repo::live_locks(conn, &org.to_string(), now_ms)
            .await?
            .into_iter()
            .filter_map(DavLock::from_row)
            .collect())
    }

    /// Takes a lock, or returns the lock in its way.
    pub async fn dav_lock(
        &self,
        org: &OrgId,
        new: NewLock,
    ) -> ServiceResult<Result<DavLock, DavLock>> {
        let mut tx = self.db().begin_write().await?;
        let now = self.now_ms();
        repo::delete_expired_locks(&mut tx, &org.to_string(), now).await?;
        let locks = Self::locks_in(&mut tx, org, self.now_ms()).await?;
        let rules: Vec<Lock> = locks.iter().map(DavLock::rule).collect();
        let query = LockQuery {
            principal: None,
            ignore_principal: true,
            tokens: &[],
        };
        if let Some(conflict) = lock_conflict(&rules, &new.path, query, new.deep, new.shared) {
            let found = locks.into_iter().find(|l| l.token == conflict.token);
            return found
                .map(Err)
                .ok_or_else(|| ServiceError::Internal("lost lock".into()));
        }
        let timeout = bounded(new.timeout_ms);
        let lock = DavLock {
            token: format!("urn:uuid:{}", Uuid::new_v4()),
            path: new.path,
            principal: new.principal,
            owner: new.owner,
            timeout_ms: Some(timeout),
            expires_at: Some(now + timeout),
            shared: new.shared,
            deep: new.deep,
        };
        repo::insert_lock(
            &mut tx,
            &LockRow {
                token: lock.token.clone(),
                org_id: org.to_string(),
                path: lock.path.as_str().to_owned(),
                principal: lock.principal.clone(),
                owner: lock.owner.clone(),
                timeout_ms: lock.timeout_ms,
                expires_at: lock.expires_at,
                shared: i64::from(lock.shared),
                deep: i64::from(lock.deep),
                created_at: now,
            },
        )
        .await?;
        tx.commit().await.map_err(nuage_db::DbError::from)?;
        Ok(Ok(lock))
    }

    /// The live lock with this token that covers `path`.
    async fn covering_lock(
        conn: &mut nuage_db::AnyConnection,
        org: &OrgId,
        path: &DrivePath,
        token: &str,
        now_ms: i64,
    ) -> ServiceResult<Option<DavLock>> {
        Ok(Self::locks_in(conn, org, now_ms)
            .await?
            .into_iter()
            .find(|l| l.token == token && l.path.contains(path)))
    }

    /// Releases a lock; false when no such lock covers the path.
    pub async fn dav_unlock(
        &self,
        org: &OrgId,
        path: &DrivePath,
        token: &str,
    ) -> ServiceResult<bool> {
        let mut tx = self.db().begin_write().await?;
        let Some(lock) = Self::covering_lock(&mut tx, org, path, token, self.now_ms()).await?
        else {
            return Ok(false);
        };
        repo::delete_lock(&mut tx, &lock.token).await?;
        tx.commit().await.map_err(nuage_db::DbError::from)?;
        Ok(true)
    }

    /// Extends a lock's life.
    pub async fn dav_refresh(
        &self,
        org: &OrgId,
        path: &DrivePath,
        token: &str,
        timeout_ms: Option<i64>,
    ) -> ServiceResult<Option<DavLock>> {
        let mut tx = self.db().begin_write().await?;
        let Some(mut lock) = Self::covering_lock(&mut tx, org, path, token, self.now_ms()).await?
        else {
            return Ok(None);
        };
        let timeout = bounded(timeout_ms);
        lock.timeout_ms = Some(timeout);
        lock.expires_at = Some(self.now_ms() + timeout);
        repo::set_lock_expiry(&mut tx, &lock.token, lock.timeout_ms, lock.expires_at).await?;
        tx.commit().await.map_err(nuage_db::DbError::from)?;
        Ok(Some(lock))
    }

    /// The lock that stops a request on `path`, if any.
    pub async fn dav_check(
        &self,
        org: &OrgId,
        path: &DrivePath,
        query: LockQuery<'_>,
        deep: bool,
    ) -> ServiceResult<Option<DavLock>> {
        let locks = Self::locks_in(&mut *self.db().acquire().await?, org, self.now_ms()).await?;
        let rules: Vec<Lock> = locks.iter().map(DavLock::rule).collect();
        let token = lock_conflict(&rules, path, query, deep, false).map(|l| l.token.clone());
        Ok(token.and_then(|t| locks.into_iter().find(|l| l.token == t)))
    }

    /// Every live lock of the organisation's drive (a listing asks once,
    /// then tells each entry its own with [`DavLock::covers`]).
    pub async fn dav_locks(&self, org: &OrgId) -> ServiceResult<Vec<DavLock>> {
        Self::locks_in(&mut *self.db().acquire().await?, org, self.now_ms()).await
    }

    /// Drops every lock on `path` and below (after a move or a delete).
    pub async fn dav_forget(&self, org: &OrgId, path: &DrivePath) -> ServiceResult<()> {
        let mut tx = self.db().begin_write().await?;
        for lock in Self::locks_in(&mut tx, org, self.now_ms()).await? {
            if path.contains(&lock.path) {
                repo::delete_lock(&mut tx, &lock.token).await?;
            }
        }
        tx.commit().await.map_err(nuage_db::DbError::from)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn app_passwords_are_six_groups_of_four() {
        let p = super::new_app_password();
        let groups: Vec<&str> = p.split('-').collect();
        assert_eq!(groups.len(), 6, "{p}");
        assert!(groups.iter().all(|g| g.len() == 4), "{p}");
        assert_ne!(p, super::new_app_password());
    }
}
