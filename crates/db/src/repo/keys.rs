//! API tokens and S3 access keys. Tokens are stored as their SHA-256 only;
//! S3 secrets are stored sealed under a key derived from the master key.

use sqlx::{AnyConnection, FromRow};

use crate::DbError;

#[derive(Debug, Clone, FromRow)]
pub struct TokenRow {
    pub id: String,
    pub token_hash: String,
    pub name: String,
    pub user_id: Option<String>,
    pub is_root: i64,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Clone, FromRow)]
pub struct S3KeyRow {
    pub access_key_id: String,
    pub org_id: String,
    pub secret_sealed: String,
    pub created_by: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// `access` or `export`.
    pub purpose: String,
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for S3KeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3KeyRow")
            .field("access_key_id", &self.access_key_id)
            .field("org_id", &self.org_id)
            .field("revoked_at", &self.revoked_at)
            .field("purpose", &self.purpose)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

const TOKEN_COLUMNS: &str =
    "id, token_hash, name, user_id, is_root, created_at, expires_at, last_used_at, revoked_at";
const S3_KEY_COLUMNS: &str =
    "access_key_id, org_id, secret_sealed, created_by, created_at, revoked_at, purpose, expires_at";

pub async fn insert_token(conn: &mut AnyConnection, t: &TokenRow) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT INTO api_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .bind(&t.id)
    .bind(&t.token_hash)
    .bind(&t.name)
    .bind(&t.user_id)
    .bind(t.is_root)
    .bind(t.created_at)
    .bind(t.expires_at)
    .bind(t.last_used_at)
    .bind(t.revoked_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn find_token_by_hash(
    conn: &mut AnyConnection,
    hash: &str,
) -> Result<Option<TokenRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1"
    ))
    .bind(hash)
    .fetch_optional(conn)
    .await?)
}

pub async fn list_tokens_of_user(
    conn: &mut AnyConnection,
    user_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<TokenRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = $1 AND id > $2 AND revoked_at IS NULL ORDER BY id LIMIT $3"
    ))
    .bind(user_id)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

pub async fn revoke_token(
    conn: &mut AnyConnection,
    id: &str,
    user_id: &str,
    at: i64,
) -> Result<bool, DbError> {
    let done = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL")
        .bind(at)
        .bind(id)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Notes a token's use, at most once a minute so that reads stay reads.
pub async fn touch_token(conn: &mut AnyConnection, id: &str, at: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)")
        .bind(at)
        .bind(id)
        .bind(at - 60_000)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn insert_s3_key(conn: &mut AnyConnection, k: &S3KeyRow) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT INTO s3_keys ({S3_KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(&k.access_key_id)
    .bind(&k.org_id)
    .bind(&k.secret_sealed)
    .bind(&k.created_by)
    .bind(k.created_at)
    .bind(k.revoked_at)
    .bind(&k.purpose)
    .bind(k.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks an organisation's export keys that expired by `now` as revoked at
/// their expiry, so that another can be made.
pub async fn retire_expired_export_keys(
    conn: &mut AnyConnection,
    org_id: &str,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE s3_keys SET revoked_at = expires_at WHERE org_id = $1 AND purpose = 'export' \
         AND revoked_at IS NULL AND expires_at <= $2",
    )
    .bind(org_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_s3_key(
    conn: &mut AnyConnection,
    access_key_id: &str,
) -> Result<Option<S3KeyRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {S3_KEY_COLUMNS} FROM s3_keys WHERE access_key_id = $1"
    ))
    .bind(access_key_id)
    .fetch_optional(conn)
    .await?)
}

pub async fn list_s3_keys(
    conn: &mut AnyConnection,
    org_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<S3KeyRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {S3_KEY_COLUMNS} FROM s3_keys WHERE org_id = $1 AND access_key_id > $2 ORDER BY access_key_id LIMIT $3"
    ))
    .bind(org_id)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

pub async fn revoke_s3_key(
    conn: &mut AnyConnection,
    access_key_id: &str,
    at: i64,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE s3_keys SET revoked_at = $1 WHERE access_key_id = $2 AND revoked_at IS NULL",
    )
    .bind(at)
    .bind(access_key_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes every live API token of a user.
pub async fn revoke_tokens_of_user(
    conn: &mut AnyConnection,
    user_id: &str,
    at: i64,
) -> Result<u64, DbError> {
    Ok(sqlx::query(
        "UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
    )
    .bind(at)
    .bind(user_id)
    .execute(conn)
    .await?
    .rows_affected())
}
