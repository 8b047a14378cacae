//! The drive's own tables: app passwords (stored as SHA-256) and WebDAV
//! locks. The files themselves are objects (see `storage`).

use sqlx::{AnyConnection, FromRow};

use crate::DbError;

#[derive(Debug, Clone, FromRow)]
pub struct AppPasswordRow {
    pub id: String,
    pub secret_hash: String,
    pub name: String,
    pub user_id: String,
    pub org_id: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const APP_PASSWORD_COLUMNS: &str =
    "id, secret_hash, name, user_id, org_id, created_at, last_used_at, revoked_at";

pub async fn insert_app_password(
    conn: &mut AnyConnection,
    r: &AppPasswordRow,
) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT INTO app_passwords ({APP_PASSWORD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(&r.id)
    .bind(&r.secret_hash)
    .bind(&r.name)
    .bind(&r.user_id)
    .bind(&r.org_id)
    .bind(r.created_at)
    .bind(r.last_used_at)
    .bind(r.revoked_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn find_app_password(
    conn: &mut AnyConnection,
    secret_hash: &str,
) -> Result<Option<AppPasswordRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {APP_PASSWORD_COLUMNS} FROM app_passwords WHERE secret_hash = $1"
    ))
    .bind(secret_hash)
    .fetch_optional(conn)
    .await?)
}

/// A user's live app passwords, oldest first.
pub async fn app_passwords_of_user(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Vec<AppPasswordRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {APP_PASSWORD_COLUMNS} FROM app_passwords \
         WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id"
    ))
    .bind(user_id)
    .fetch_all(conn)
    .await?)
}

/// Revokes one of the user's app passwords; false when there is none live.
/// Revokes every live app password of a user (a password reset).
pub async fn revoke_app_passwords_of_user(
    conn: &mut AnyConnection,
    user_id: &str,
    at: i64,
) -> Result<u64, DbError> {
    Ok(sqlx::query(
        "UPDATE app_passwords SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
    )
    .bind(at)
    .bind(user_id)
    .execute(conn)
    .await?
    .rows_affected())
}

pub async fn revoke_app_password(
    conn: &mut AnyConnection,
    id: &str,
    user_id: &str,
    at: i64,
) -> Result<bool, DbError> {
    Ok(sqlx::query(
        "UPDATE app_passwords SET revoked_at = $3 \
         WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(user_id)
    .bind(at)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

pub async fn touch_app_password(
    conn: &mut AnyConnection,
    id: &str,
    at: i64,
) -> Result<(), DbError> {
    sqlx::query("UPDATE app_passwords SET last_used_at = $2 WHERE id = $1")
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct LockRow {
    pub token: String,
    pub org_id: String,
    pub path: String,
    pub principal: Option<String>,
    pub owner: Option<String>,
    pub timeout_ms: Option<i64>,
    pub expires_at: Option<i64>,
    pub shared: i64,
    pub deep: i64,
    pub created_at: i64,
}

const LOCK_COLUMNS: &str =
    "token, org_id, path, principal, owner, timeout_ms, expires_at, shared, deep, created_at";

/// The organisation's locks that have not expired at `now`.
pub async fn live_locks(
    conn: &mut AnyConnection,
    org_id: &str,
    now: i64,
) -> Result<Vec<LockRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {LOCK_COLUMNS} FROM dav_locks \
         WHERE org_id = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at"
    ))
    .bind(org_id)
    .bind(now)
    .fetch_all(conn)
    .await?)
}

pub async fn insert_lock(conn: &mut AnyConnection, l: &LockRow) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT INTO dav_locks ({LOCK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    ))
    .bind(&l.token)
    .bind(&l.org_id)
    .bind(&l.path)
    .bind(&l.principal)
    .bind(&l.owner)
    .bind(l.timeout_ms)
    .bind(l.expires_at)
    .bind(l.shared)
    .bind(l.deep)
    .bind(l.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_lock_expiry(
    conn: &mut AnyConnection,
    token: &str,
    timeout_ms: Option<i64>,
    expires_at: Option<i64>,
) -> Result<(), DbError> {
    sqlx::query("UPDATE dav_locks SET timeout_ms = $2, expires_at = $3 WHERE token = $1")
        .bind(token)
        .bind(timeout_ms)
        .bind(expires_at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete_lock(conn: &mut AnyConnection, token: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM dav_locks WHERE token = $1")
        .bind(token)
        .execute(conn)
        .await?;
    Ok(())
}

/// Drops the organisation's expired locks.
pub async fn delete_expired_locks(
    conn: &mut AnyConnection,
    org_id: &str,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query("DELETE FROM dav_locks WHERE org_id = $1 AND expires_at <= $2")
        .bind(org_id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Clone, FromRow)]
pub struct ShareRow {
    pub id: String,
    pub org_id: String,
    pub path: String,
    pub folder: i64,
    pub mode: String,
    pub token_hash: String,
    pub token_sealed: String,
    pub password_hash: Option<String>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_by: String,
    pub created_at: i64,
}

impl std::fmt::Debug for ShareRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareRow")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("path", &self.path)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

const SHARE_COLUMNS: &str = "id, org_id, path, folder, mode, token_hash, token_sealed, \
     password_hash, expires_at, revoked_at, created_by, created_at";

pub async fn insert_share(conn: &mut AnyConnection, s: &ShareRow) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT INTO share_links ({SHARE_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    ))
    .bind(&s.id)
    .bind(&s.org_id)
    .bind(&s.path)
    .bind(s.folder)
    .bind(&s.mode)
    .bind(&s.token_hash)
    .bind(&s.token_sealed)
    .bind(&s.password_hash)
    .bind(s.expires_at)
    .bind(s.revoked_at)
    .bind(&s.created_by)
    .bind(s.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn find_share(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> Result<Option<ShareRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {SHARE_COLUMNS} FROM share_links WHERE token_hash = $1"
    ))
    .bind(token_hash)
    .fetch_optional(conn)
    .await?)
}

/// An organisation's live links, oldest first.
pub async fn shares_of_org(
    conn: &mut AnyConnection,
    org_id: &str,
) -> Result<Vec<ShareRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {SHARE_COLUMNS} FROM share_links \
         WHERE org_id = $1 AND revoked_at IS NULL ORDER BY id"
    ))
    .bind(org_id)
    .fetch_all(conn)
    .await?)
}

pub async fn revoke_share(
    conn: &mut AnyConnection,
    id: &str,
    org_id: &str,
    at: i64,
) -> Result<bool, DbError> {
    Ok(sqlx::query(
        "UPDATE share_links SET revoked_at = $3 \
         WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(org_id)
    .bind(at)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

#[derive(Debug, Clone, FromRow)]
pub struct GrantRow {
    pub id: String,
    pub org_id: String,
    pub path: String,
    pub folder: i64,
    pub user_id: String,
    pub access: String,
    pub created_by: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// A grant with the names people see: the owner organisation's, the
/// grantee's address.
#[derive(Debug, Clone, FromRow)]
pub struct GrantView {
    pub id: String,
    pub org_id: String,
    pub org_name: String,
    pub path: String,
    pub folder: i64,
    pub user_id: String,
    pub email: String,
    pub access: String,
    pub created_at: i64,
}

pub async fn insert_grant(conn: &mut AnyConnection, g: &GrantRow) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO drive_grants (id, org_id, path, folder, user_id, access, created_by, created_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&g.id)
    .bind(&g.org_id)
    .bind(&g.path)
    .bind(g.folder)
    .bind(&g.user_id)
    .bind(&g.access)
    .bind(&g.created_by)
    .bind(g.created_at)
    .bind(g.revoked_at)
    .execute(conn)
    .await?;
    Ok(())
}

const GRANT_VIEW: &str = "SELECT g.id, g.org_id, o.name AS org_name, g.path, g.folder, g.user_id, \
     u.email, g.access, g.created_at FROM drive_grants g \
     JOIN organisations o ON o.id = g.org_id JOIN users u ON u.id = g.user_id \
     WHERE g.revoked_at IS NULL";

/// What was shared with a user, oldest first.
pub async fn grants_to_user(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Vec<GrantView>, DbError> {
    Ok(
        sqlx::query_as(&format!("{GRANT_VIEW} AND g.user_id = $1 ORDER BY g.id"))
            .bind(user_id)
            .fetch_all(conn)
            .await?,
    )
}

/// What an organisation shared with users, oldest first.
pub async fn grants_of_org(
    conn: &mut AnyConnection,
    org_id: &str,
) -> Result<Vec<GrantView>, DbError> {
    Ok(
        sqlx::query_as(&format!("{GRANT_VIEW} AND g.org_id = $1 ORDER BY g.id"))
            .bind(org_id)
            .fetch_all(conn)
            .await?,
    )
}

/// One live grant to a user.
pub async fn grant_to_user(
    conn: &mut AnyConnection,
    id: &str,
    user_id: &str,
) -> Result<Option<GrantView>, DbError> {
    Ok(
        sqlx::query_as(&format!("{GRANT_VIEW} AND g.id = $1 AND g.user_id = $2"))
            .bind(id)
            .bind(user_id)
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn revoke_grant(
    conn: &mut AnyConnection,
    id: &str,
    org_id: &str,
    at: i64,
) -> Result<bool, DbError> {
    Ok(sqlx::query(
        "UPDATE drive_grants SET revoked_at = $3 WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(org_id)
    .bind(at)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Links and grants follow a file or folder that moves: those naming `from`
/// or a path under it name the same item at `to` (in the move's
/// transaction).
pub async fn follow_move(
    conn: &mut AnyConnection,
    org_id: &str,
    from: &str,
    to: &str,
) -> Result<(), DbError> {
    let skip = from.chars().count() as i64 + 1;
    let under = format!("{from}/");
    let under_len = under.chars().count() as i64;
    for table in ["share_links", "drive_grants"] {
        sqlx::query(&format!(
            "UPDATE {table} SET path = $3 || substr(path, CAST($4 AS INTEGER)) \
             WHERE org_id = $1 AND (path = $2 OR substr(path, 1, CAST($6 AS INTEGER)) = $5)"
        ))
        .bind(org_id)
        .bind(from)
        .bind(to)
        .bind(skip)
        .bind(&under)
        .bind(under_len)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
