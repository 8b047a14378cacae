//! An organisation's key and its versions, and the rotations that rewrap
//! its data keys (nuage_storage's rotation).

use sqlx::{AnyConnection, FromRow};

use crate::DbError;

/// The current version of an organisation's key.
#[derive(Debug, Clone, FromRow)]
pub struct OrgKeyRow {
    pub sealed_key: String,
    pub kek_epoch: i64,
    pub version: i64,
    /// `platform` (wrapped by the platform's key-encryption key) or
    /// `external` (by the organisation's own KMS).
    pub custody: String,
}

pub async fn current(conn: &mut AnyConnection, org_id: &str) -> Result<Option<OrgKeyRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT sealed_key, kek_epoch, version, custody FROM org_keys WHERE org_id = $1",
    )
    .bind(org_id)
    .fetch_optional(conn)
    .await?)
}

/// An earlier version, wrapped, and who holds it.
pub async fn retired(
    conn: &mut AnyConnection,
    org_id: &str,
    version: i64,
) -> Result<Option<(String, String)>, DbError> {
    Ok(sqlx::query_as(
        "SELECT sealed_key, custody FROM org_key_versions WHERE org_id = $1 AND version = $2",
    )
    .bind(org_id)
    .bind(version)
    .fetch_optional(conn)
    .await?)
}

/// Keeps the current version as a retired one and puts `sealed` (wrapped at
/// `kek_epoch`) in its place as the next version, unless the current version
/// is no longer `old.version`. Returns whether it did.
#[allow(clippy::too_many_arguments)]
pub async fn replace(
    conn: &mut AnyConnection,
    org_id: &str,
    old: &OrgKeyRow,
    sealed: &str,
    kek_epoch: i64,
    custody: &str,
    at: i64,
) -> Result<bool, DbError> {
    let replaced = sqlx::query(
        "UPDATE org_keys SET sealed_key = $1, kek_epoch = $2, version = version + 1, custody = $3 \
         WHERE org_id = $4 AND version = $5",
    )
    .bind(sealed)
    .bind(kek_epoch)
    .bind(custody)
    .bind(org_id)
    .bind(old.version)
    .execute(&mut *conn)
    .await?;
    if replaced.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO org_key_versions (org_id, version, sealed_key, kek_epoch, created_at, retired_at, custody) \
         SELECT org_id, $1, $2, $3, created_at, $4, $5 FROM org_keys WHERE org_id = $6",
    )
    .bind(old.version)
    .bind(&old.sealed_key)
    .bind(old.kek_epoch)
    .bind(at)
    .bind(&old.custody)
    .bind(org_id)
    .execute(conn)
    .await?;
    Ok(true)
}

/// A rotation under way.
#[derive(Debug, Clone, FromRow)]
pub struct RotationRow {
    pub org_id: String,
    pub version: i64,
    pub started_at: i64,
    pub after_object: String,
    pub rewrapped: i64,
}

const ROTATION_COLUMNS: &str = "org_id, version, started_at, after_object, rewrapped";

pub async fn start_rotation(
    conn: &mut AnyConnection,
    org_id: &str,
    version: i64,
    at: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO org_key_rotations (org_id, version, started_at, after_object, rewrapped) \
         VALUES ($1, $2, $3, '', 0)",
    )
    .bind(org_id)
    .bind(version)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn rotation(
    conn: &mut AnyConnection,
    org_id: &str,
) -> Result<Option<RotationRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ROTATION_COLUMNS} FROM org_key_rotations WHERE org_id = $1"
    ))
    .bind(org_id)
    .fetch_optional(conn)
    .await?)
}

pub async fn rotations(conn: &mut AnyConnection) -> Result<Vec<RotationRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ROTATION_COLUMNS} FROM org_key_rotations ORDER BY started_at"
    ))
    .fetch_all(conn)
    .await?)
}

/// Records a pass's progress: the last object it rewrapped, and how many
/// data keys more.
pub async fn advance_rotation(
    conn: &mut AnyConnection,
    org_id: &str,
    after_object: &str,
    rewrapped: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE org_key_rotations SET after_object = $1, rewrapped = rewrapped + $2 WHERE org_id = $3",
    )
    .bind(after_object)
    .bind(rewrapped)
    .bind(org_id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn finish_rotation(conn: &mut AnyConnection, org_id: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM org_key_rotations WHERE org_id = $1")
        .bind(org_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// An object version of the organisation, as a rewrap reads it.
#[derive(Debug, Clone, FromRow)]
pub struct SealedObject {
    pub id: String,
    pub segments: String,
}

/// The organisation's object versions sealed under its key (not a
/// customer's), in the order of their id, after `after`.
pub async fn objects_after(
    conn: &mut AnyConnection,
    org_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<SealedObject>, DbError> {
    Ok(sqlx::query_as(
        "SELECT o.id, o.segments FROM objects o JOIN buckets b ON b.name = o.bucket \
         WHERE b.org_id = $1 AND o.id > $2 AND o.sse_c IS NULL AND o.delete_marker = 0 \
         ORDER BY o.id LIMIT $3",
    )
    .bind(org_id)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// How many of the organisation's sealed object versions come after `after`.
pub async fn count_objects_after(
    conn: &mut AnyConnection,
    org_id: &str,
    after: &str,
) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM objects o JOIN buckets b ON b.name = o.bucket \
         WHERE b.org_id = $1 AND o.id > $2 AND o.sse_c IS NULL AND o.delete_marker = 0",
    )
    .bind(org_id)
    .bind(after)
    .fetch_one(conn)
    .await?)
}

/// Replaces an object version's segments unless they changed since read.
pub async fn replace_segments(
    conn: &mut AnyConnection,
    id: &str,
    old: &str,
    new: &str,
) -> Result<bool, DbError> {
    let done = sqlx::query("UPDATE objects SET segments = $1 WHERE id = $2 AND segments = $3")
        .bind(new)
        .bind(id)
        .bind(old)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A part of an upload under way, as a rewrap reads it.
#[derive(Debug, Clone, FromRow)]
pub struct SealedPart {
    pub upload_id: String,
    pub part_number: i64,
    pub blob_id: String,
    pub wrapped_key: String,
}

/// The parts of the organisation's uploads under way sealed under its key.
pub async fn upload_parts(
    conn: &mut AnyConnection,
    org_id: &str,
) -> Result<Vec<SealedPart>, DbError> {
    Ok(sqlx::query_as(
        "SELECT p.upload_id, p.part_number, p.blob_id, p.wrapped_key FROM upload_parts p \
         JOIN uploads u ON u.id = p.upload_id JOIN buckets b ON b.name = u.bucket \
         WHERE b.org_id = $1 AND u.sse_c IS NULL",
    )
    .bind(org_id)
    .fetch_all(conn)
    .await?)
}

pub async fn replace_part_key(
    conn: &mut AnyConnection,
    part: &SealedPart,
    wrapped_key: &str,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE upload_parts SET wrapped_key = $1 \
         WHERE upload_id = $2 AND part_number = $3 AND wrapped_key = $4",
    )
    .bind(wrapped_key)
    .bind(&part.upload_id)
    .bind(part.part_number)
    .bind(&part.wrapped_key)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

// --- custody ---------------------------------------------------------------

/// The organisation's own KMS and the key in it that wraps its key.
#[derive(Debug, Clone, FromRow)]
pub struct CustodyRow {
    pub org_id: String,
    pub endpoint: String,
    pub server_name: String,
    pub ca_pem: String,
    pub key_id: String,
    pub updated_at: i64,
}

pub async fn custody(
    conn: &mut AnyConnection,
    org_id: &str,
) -> Result<Option<CustodyRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT org_id, endpoint, server_name, ca_pem, key_id, updated_at FROM org_custody WHERE org_id = $1",
    )
    .bind(org_id)
    .fetch_optional(conn)
    .await?)
}

pub async fn set_custody(conn: &mut AnyConnection, row: &CustodyRow) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO org_custody (org_id, endpoint, server_name, ca_pem, key_id, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id) DO UPDATE SET endpoint = $2, \
         server_name = $3, ca_pem = $4, key_id = $5, updated_at = $6",
    )
    .bind(&row.org_id)
    .bind(&row.endpoint)
    .bind(&row.server_name)
    .bind(&row.ca_pem)
    .bind(&row.key_id)
    .bind(row.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn drop_custody(conn: &mut AnyConnection, org_id: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM org_custody WHERE org_id = $1")
        .bind(org_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Every version of the organisation's key as stored: (version, wrapped,
/// custody), oldest first.
pub async fn all_versions(
    conn: &mut AnyConnection,
    org_id: &str,
) -> Result<Vec<(i64, String, String)>, DbError> {
    Ok(sqlx::query_as(
        "SELECT version, sealed_key, custody FROM org_key_versions WHERE org_id = $1 \
         UNION ALL SELECT version, sealed_key, custody FROM org_keys WHERE org_id = $1 \
         ORDER BY 1",
    )
    .bind(org_id)
    .fetch_all(conn)
    .await?)
}

/// Replaces a version's wrapping (and who holds it) unless it changed since
/// read. Returns whether it did.
#[allow(clippy::too_many_arguments)]
pub async fn rewrap_version(
    conn: &mut AnyConnection,
    org_id: &str,
    version: i64,
    old: &str,
    sealed: &str,
    kek_epoch: i64,
    custody: &str,
) -> Result<bool, DbError> {
    let current = sqlx::query(
        "UPDATE org_keys SET sealed_key = $1, kek_epoch = $2, custody = $3 \
         WHERE org_id = $4 AND version = $5 AND sealed_key = $6",
    )
    .bind(sealed)
    .bind(kek_epoch)
    .bind(custody)
    .bind(org_id)
    .bind(version)
    .bind(old)
    .execute(&mut *conn)
    .await?;
    if current.rows_affected() == 1 {
        return Ok(true);
    }
    let retired = sqlx::query(
        "UPDATE org_key_versions SET sealed_key = $1, kek_epoch = $2, custody = $3 \
         WHERE org_id = $4 AND version = $5 AND sealed_key = $6",
    )
    .bind(sealed)
    .bind(kek_epoch)
    .bind(custody)
    .bind(org_id)
    .bind(version)
    .bind(old)
    .execute(conn)
    .await?;
    Ok(retired.rows_affected() == 1)
}
