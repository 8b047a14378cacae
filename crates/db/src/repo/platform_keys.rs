//! The platform's keys by purpose and epoch, the epochs the audit chain's
//! writers use now, and the epoch that wraps each organisation's key.

use sqlx::{AnyConnection, FromRow};

use crate::DbError;

#[derive(Debug, Clone, FromRow)]
pub struct PlatformKeyRow {
    pub purpose: String,
    pub epoch: i64,
    pub provider: String,
    pub fingerprint: String,
    pub public_key: Option<String>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

const COLUMNS: &str = "purpose, epoch, provider, fingerprint, public_key, created_at, retired_at";

/// Every key of every purpose, oldest epoch first.
pub async fn all(conn: &mut AnyConnection) -> Result<Vec<PlatformKeyRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM platform_keys ORDER BY purpose, epoch"
    ))
    .fetch_all(conn)
    .await?)
}

/// The newest epoch of a purpose, if any was recorded.
pub async fn current(
    conn: &mut AnyConnection,
    purpose: &str,
) -> Result<Option<PlatformKeyRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM platform_keys WHERE purpose = $1 ORDER BY epoch DESC LIMIT 1"
    ))
    .bind(purpose)
    .fetch_optional(conn)
    .await?)
}

/// Records a key unless that purpose and epoch is recorded already (nodes
/// starting together record epoch 1 once).
pub async fn insert_if_absent(
    conn: &mut AnyConnection,
    row: &PlatformKeyRow,
) -> Result<bool, DbError> {
    let done = sqlx::query(&format!(
        "INSERT INTO platform_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (purpose, epoch) DO NOTHING"
    ))
    .bind(&row.purpose)
    .bind(row.epoch)
    .bind(&row.provider)
    .bind(&row.fingerprint)
    .bind(&row.public_key)
    .bind(row.created_at)
    .bind(row.retired_at)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks the epochs of a purpose before `epoch` retired at `at`.
pub async fn retire_before(
    conn: &mut AnyConnection,
    purpose: &str,
    epoch: i64,
    at: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE platform_keys SET retired_at = $1 \
         WHERE purpose = $2 AND epoch < $3 AND retired_at IS NULL",
    )
    .bind(at)
    .bind(purpose)
    .bind(epoch)
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks the audit chain's head row until the transaction ends (as an
/// append does), without changing it: what is done meanwhile is done by one
/// node at a time. Call it first in its transaction.
pub async fn lock_chain(conn: &mut AnyConnection) -> Result<(), DbError> {
    sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1")
        .execute(conn)
        .await?;
    Ok(())
}

/// A key whose current epoch the audit chain's head holds.
#[derive(Debug, Clone, Copy)]
pub enum ChainKey {
    Audit,
    Signing,
}

/// Starts the next epoch of a chain key on the audit chain's head, and
/// returns it. Locks the head row, as an append does: call it first in its
/// transaction.
pub async fn advance_chain_epoch(conn: &mut AnyConnection, key: ChainKey) -> Result<i64, DbError> {
    let column = match key {
        ChainKey::Audit => "audit_epoch",
        ChainKey::Signing => "signing_epoch",
    };
    Ok(sqlx::query_scalar(&format!(
        "UPDATE audit_head SET {column} = {column} + 1 WHERE id = 1 RETURNING {column}"
    ))
    .fetch_one(conn)
    .await?)
}

/// The epochs the audit chain's writers use now: (audit, signing).
pub async fn chain_epochs(conn: &mut AnyConnection) -> Result<(i64, i64), DbError> {
    Ok(
        sqlx::query_as("SELECT audit_epoch, signing_epoch FROM audit_head WHERE id = 1")
            .fetch_one(conn)
            .await?,
    )
}

/// An organisation's wrapped key and the key-encryption key's epoch that
/// wrapped it.
#[derive(Debug, Clone, FromRow)]
pub struct WrappedOrgKey {
    pub org_id: String,
    pub sealed_key: String,
    pub kek_epoch: i64,
}

/// Organisation keys wrapped before `epoch`, a page at a time in the
/// order of their organisation, after `after`.
pub async fn org_keys_before(
    conn: &mut AnyConnection,
    epoch: i64,
    after: &str,
    limit: i64,
) -> Result<Vec<WrappedOrgKey>, DbError> {
    Ok(sqlx::query_as(
        "SELECT org_id, sealed_key, kek_epoch FROM org_keys \
         WHERE kek_epoch < $1 AND org_id > $2 AND custody = 'platform' ORDER BY org_id LIMIT $3",
    )
    .bind(epoch)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// How many organisation keys are wrapped at `epoch` or later, and before.
pub async fn org_key_epochs(conn: &mut AnyConnection, epoch: i64) -> Result<(i64, i64), DbError> {
    Ok(sqlx::query_as(
        "SELECT COALESCE(SUM(CASE WHEN kek_epoch >= $1 THEN 1 ELSE 0 END), 0), \
                COALESCE(SUM(CASE WHEN kek_epoch < $1 THEN 1 ELSE 0 END), 0) FROM org_keys \
         WHERE custody = 'platform'",
    )
    .bind(epoch)
    .fetch_one(conn)
    .await?)
}

/// Replaces a wrapped organisation key with its rewrap, unless it changed
/// since it was read (another node rewrapped it). Returns whether it did.
pub async fn rewrap_org_key(
    conn: &mut AnyConnection,
    old: &WrappedOrgKey,
    sealed: &str,
    epoch: i64,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE org_keys SET sealed_key = $1, kek_epoch = $2 WHERE org_id = $3 AND sealed_key = $4",
    )
    .bind(sealed)
    .bind(epoch)
    .bind(&old.org_id)
    .bind(&old.sealed_key)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
