//! Console sessions and password-reset tokens, stored as hashes so that a
//! database leak does not hand out live sessions.

use sqlx::{AnyConnection, FromRow};

use crate::DbError;

#[derive(Clone, FromRow)]
pub struct SessionRow {
    pub id_hash: String,
    pub user_id: String,
    pub current_org: Option<String>,
    pub csrf_token: String,
    pub second_factor_pending: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

impl std::fmt::Debug for SessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRow")
            .field("user_id", &self.user_id)
            .field("current_org", &self.current_org)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

const SESSION_COLUMNS: &str =
    "id_hash, user_id, current_org, csrf_token, second_factor_pending, created_at, expires_at";

pub async fn insert_session(conn: &mut AnyConnection, s: &SessionRow) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(&s.id_hash)
    .bind(&s.user_id)
    .bind(&s.current_org)
    .bind(&s.csrf_token)
    .bind(s.second_factor_pending)
    .bind(s.created_at)
    .bind(s.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_session(
    conn: &mut AnyConnection,
    id_hash: &str,
    now: i64,
) -> Result<Option<SessionRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = $1 AND expires_at > $2"
    ))
    .bind(id_hash)
    .bind(now)
    .fetch_optional(conn)
    .await?)
}

pub async fn set_session_org(
    conn: &mut AnyConnection,
    id_hash: &str,
    org_id: &str,
) -> Result<(), DbError> {
    sqlx::query("UPDATE sessions SET current_org = $1 WHERE id_hash = $2")
        .bind(org_id)
        .bind(id_hash)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn complete_second_factor(
    conn: &mut AnyConnection,
    id_hash: &str,
) -> Result<(), DbError> {
    sqlx::query("UPDATE sessions SET second_factor_pending = 0 WHERE id_hash = $1")
        .bind(id_hash)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete_session(conn: &mut AnyConnection, id_hash: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends every session of a user (after a password change).
pub async fn delete_sessions_of_user(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<(), DbError> {
    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A user's live sessions, newest first: (created_at, expires_at).
pub async fn sessions_of_user(
    conn: &mut AnyConnection,
    user_id: &str,
    now: i64,
) -> Result<Vec<(i64, i64)>, DbError> {
    Ok(sqlx::query_as(
        "SELECT created_at, expires_at FROM sessions WHERE user_id = $1 AND expires_at > $2 \
         ORDER BY created_at DESC",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(conn)
    .await?)
}

pub async fn delete_expired_sessions(conn: &mut AnyConnection, now: i64) -> Result<u64, DbError> {
    Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(conn)
        .await?
        .rows_affected())
}

pub async fn insert_password_reset(
    conn: &mut AnyConnection,
    token_hash: &str,
    user_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), DbError> {
    sqlx::query("INSERT INTO password_resets (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(token_hash)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Consumes a reset token: returns its user if it was valid, unused and
/// unexpired, and marks it used in the same statement.
pub async fn take_password_reset(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: i64,
) -> Result<Option<String>, DbError> {
    let row: Option<(String,)> = sqlx::query_as(
        "UPDATE password_resets SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING user_id",
    )
    .bind(now)
    .bind(token_hash)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(user_id,)| user_id))
}

/// Makes every pending reset link of a user unusable.
pub async fn cancel_password_resets_of_user(
    conn: &mut AnyConnection,
    user_id: &str,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query("UPDATE password_resets SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
        .bind(now)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}
