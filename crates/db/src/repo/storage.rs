//! Object storage metadata: organisation keys, buckets, object versions,
//! multipart uploads, blobs waiting for deletion, quotas, usage and the
//! access log. Blobs themselves live in a region's backend, never here.

use sqlx::{AnyConnection, FromRow};

use crate::{DbError, Dialect};

#[derive(Debug, Clone, FromRow)]
pub struct BucketRow {
    pub name: String,
    pub org_id: String,
    pub region: String,
    pub created_at: i64,
    pub versioning: Option<String>,
    pub tagging: Option<String>,
    pub cors: Option<String>,
    pub lifecycle: Option<String>,
    pub website: Option<String>,
    /// The Object Lock configuration, once the bucket has Object Lock.
    pub object_lock: Option<String>,
    /// The bucket policy (JSON).
    pub policy: Option<String>,
    /// Block Public Access (JSON; none means every switch on).
    pub public_access_block: Option<String>,
    /// Object Ownership (none: BucketOwnerEnforced).
    pub ownership: Option<String>,
    /// The ACL's grants beyond the owner's full control (JSON).
    pub acl: Option<String>,
}

const BUCKET_COLUMNS: &str = "name, org_id, region, created_at, versioning, tagging, cors, lifecycle, \
     website, object_lock, policy, public_access_block, ownership, acl";

/// A bucket setting stored as one document (JSON) or state.
#[derive(Debug, Clone, Copy)]
pub enum BucketSetting {
    Versioning,
    Tagging,
    Cors,
    Lifecycle,
    Website,
    ObjectLock,
    Policy,
    PublicAccessBlock,
    Ownership,
    Acl,
}

impl BucketSetting {
    fn column(self) -> &'static str {
        match self {
            Self::Versioning => "versioning",
            Self::Tagging => "tagging",
            Self::Cors => "cors",
            Self::Lifecycle => "lifecycle",
            Self::Website => "website",
            Self::ObjectLock => "object_lock",
            Self::Policy => "policy",
            Self::PublicAccessBlock => "public_access_block",
            Self::Ownership => "ownership",
            Self::Acl => "acl",
        }
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct ObjectRow {
    pub id: String,
    pub bucket: String,
    pub key: String,
    pub version_id: String,
    pub is_latest: i64,
    pub delete_marker: i64,
    pub size: i64,
    pub etag: String,
    pub created_at: i64,
    pub headers: String,
    pub tags: String,
    pub checksum: Option<String>,
    pub segments: String,
    pub sse_c: Option<String>,
    /// Object Lock: the retention's mode and date, and the legal hold.
    pub lock_mode: Option<String>,
    pub lock_until: Option<i64>,
    pub legal_hold: i64,
}

/// The columns an `ObjectRow` reads, in its order.
pub const OBJECT_COLUMNS: &str = "id, bucket, key, version_id, is_latest, delete_marker, size, etag, \
     created_at, headers, tags, checksum, segments, sse_c, lock_mode, lock_until, legal_hold";

/// What a listing reads of each object: its tags and segments (which only
/// a read of the object itself needs) are left out, as empty lists.
const LISTED_COLUMNS: &str = "id, bucket, key, version_id, is_latest, delete_marker, size, etag, \
     created_at, headers, '[]' AS tags, checksum, '[]' AS segments, sse_c, lock_mode, lock_until, \
     legal_hold";

#[derive(Debug, Clone, FromRow)]
pub struct UploadRow {
    pub id: String,
    pub bucket: String,
    pub key: String,
    pub created_at: i64,
    pub headers: String,
    pub tags: String,
    pub checksum_algorithm: Option<String>,
    pub sse_c: Option<String>,
    /// The Object Lock the completed object is to have (JSON).
    pub object_lock: Option<String>,
}

const UPLOAD_COLUMNS: &str =
    "id, bucket, key, created_at, headers, tags, checksum_algorithm, sse_c, object_lock";

#[derive(Debug, Clone, FromRow)]
pub struct PartRow {
    pub upload_id: String,
    pub part_number: i64,
    pub blob_id: String,
    pub wrapped_key: String,
    pub size: i64,
    pub etag: String,
    pub checksum: Option<String>,
    pub created_at: i64,
}

const PART_COLUMNS: &str =
    "upload_id, part_number, blob_id, wrapped_key, size, etag, checksum, created_at";

// --- organisation keys ---------------------------------------------------

pub async fn org_key(conn: &mut AnyConnection, org_id: &str) -> Result<Option<String>, DbError> {
    Ok(
        sqlx::query_scalar("SELECT sealed_key FROM org_keys WHERE org_id = $1")
            .bind(org_id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Stores the organisation's key, wrapped by the key-encryption key of
/// `kek_epoch`, unless another node stored one first.
pub async fn insert_org_key_if_absent(
    conn: &mut AnyConnection,
    org_id: &str,
    sealed: &str,
    kek_epoch: i64,
    at: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO org_keys (org_id, sealed_key, kek_epoch, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id) DO NOTHING",
    )
    .bind(org_id)
    .bind(sealed)
    .bind(kek_epoch)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

// --- buckets -----------------------------------------------------------------

pub async fn insert_bucket(conn: &mut AnyConnection, b: &BucketRow) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT INTO buckets ({BUCKET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    ))
    .bind(&b.name)
    .bind(&b.org_id)
    .bind(&b.region)
    .bind(b.created_at)
    .bind(&b.versioning)
    .bind(&b.tagging)
    .bind(&b.cors)
    .bind(&b.lifecycle)
    .bind(&b.website)
    .bind(&b.object_lock)
    .bind(&b.policy)
    .bind(&b.public_access_block)
    .bind(&b.ownership)
    .bind(&b.acl)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_bucket(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<Option<BucketRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {BUCKET_COLUMNS} FROM buckets WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(conn)
    .await?)
}

pub async fn list_buckets_of_org(
    conn: &mut AnyConnection,
    org_id: &str,
) -> Result<Vec<BucketRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {BUCKET_COLUMNS} FROM buckets WHERE org_id = $1 ORDER BY name"
    ))
    .bind(org_id)
    .fetch_all(conn)
    .await?)
}

/// Every bucket with a lifecycle configuration, for the lifecycle worker.
pub async fn buckets_with_lifecycle(conn: &mut AnyConnection) -> Result<Vec<BucketRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {BUCKET_COLUMNS} FROM buckets WHERE lifecycle IS NOT NULL ORDER BY name"
    ))
    .fetch_all(conn)
    .await?)
}

pub async fn set_bucket_setting(
    conn: &mut AnyConnection,
    name: &str,
    setting: BucketSetting,
    value: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query(&format!(
        "UPDATE buckets SET {} = $1 WHERE name = $2",
        setting.column()
    ))
    .bind(value)
    .bind(name)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether the bucket holds no object version and no delete marker
/// (unfinished uploads do not count: deleting the bucket discards them).
pub async fn bucket_is_empty(conn: &mut AnyConnection, name: &str) -> Result<bool, DbError> {
    let objects: Option<String> =
        sqlx::query_scalar("SELECT id FROM objects WHERE bucket = $1 LIMIT 1")
            .bind(name)
            .fetch_optional(conn)
            .await?;
    Ok(objects.is_none())
}

/// The ids of a bucket's unfinished uploads.
pub async fn upload_ids_of_bucket(
    conn: &mut AnyConnection,
    bucket: &str,
) -> Result<Vec<String>, DbError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM uploads WHERE bucket = $1 ORDER BY id")
            .bind(bucket)
            .fetch_all(conn)
            .await?,
    )
}

pub async fn delete_bucket(conn: &mut AnyConnection, name: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM buckets WHERE name = $1")
        .bind(name)
        .execute(conn)
        .await?;
    Ok(())
}

// --- objects -----------------------------------------------------------------

pub async fn latest_object(
    conn: &mut AnyConnection,
    bucket: &str,
    key: &str,
) -> Result<Option<ObjectRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = $1 AND key = $2 AND is_latest = 1"
    ))
    .bind(bucket)
    .bind(key)
    .fetch_optional(conn)
    .await?)
}

pub async fn object_version(
    conn: &mut AnyConnection,
    bucket: &str,
    key: &str,
    version_id: &str,
) -> Result<Option<ObjectRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = $1 AND key = $2 AND version_id = $3"
    ))
    .bind(bucket)
    .bind(key)
    .bind(version_id)
    .fetch_optional(conn)
    .await?)
}

pub async fn insert_object(conn: &mut AnyConnection, o: &ObjectRow) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT INTO objects ({OBJECT_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    ))
    .bind(&o.id)
    .bind(&o.bucket)
    .bind(&o.key)
    .bind(&o.version_id)
    .bind(o.is_latest)
    .bind(o.delete_marker)
    .bind(o.size)
    .bind(&o.etag)
    .bind(o.created_at)
    .bind(&o.headers)
    .bind(&o.tags)
    .bind(&o.checksum)
    .bind(&o.segments)
    .bind(&o.sse_c)
    .bind(&o.lock_mode)
    .bind(o.lock_until)
    .bind(o.legal_hold)
    .execute(conn)
    .await?;
    Ok(())
}

/// Holds one key of a bucket until the write transaction ends, so that
/// what a write reads of the key (its conditions, the version it replaces)
/// is still true when it commits. PostgreSQL runs write transactions side
/// by side: a transaction-scoped advisory lock on the key's hash (a rare
/// collision only makes two keys wait on each other). SQLite's write
/// transaction already holds the whole database.
pub async fn lock_key(
    conn: &mut AnyConnection,
    dialect: Dialect,
    bucket: &str,
    key: &str,
) -> Result<(), DbError> {
    if dialect == Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))")
            .bind(bucket)
            .bind(key)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Makes the key's current latest version a non-current one.
pub async fn demote_latest(
    conn: &mut AnyConnection,
    bucket: &str,
    key: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE objects SET is_latest = 0 WHERE bucket = $1 AND key = $2 AND is_latest = 1",
    )
    .bind(bucket)
    .bind(key)
    .execute(conn)
    .await?;
    Ok(())
}

/// Makes the newest remaining version of the key its latest, if none is.
pub async fn promote_newest(
    conn: &mut AnyConnection,
    bucket: &str,
    key: &str,
) -> Result<(), DbError> {
    let current: Option<String> = sqlx::query_scalar(
        "SELECT id FROM objects WHERE bucket = $1 AND key = $2 AND is_latest = 1",
    )
    .bind(bucket)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    if current.is_some() {
        return Ok(());
    }
    let newest: Option<String> = sqlx::query_scalar(
        "SELECT id FROM objects WHERE bucket = $1 AND key = $2 \
         ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(bucket)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = newest {
        sqlx::query("UPDATE objects SET is_latest = 1 WHERE id = $1")
            .bind(id)
            .execute(conn)
            .await?;
    }
    Ok(())
}

pub async fn delete_object_row(conn: &mut AnyConnection, id: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM objects WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether any version or delete marker has a key in `[from, to)` (`to`
/// `None`: every key from `from` on).
pub async fn any_key_in(
    conn: &mut AnyConnection,
    bucket: &str,
    from: &str,
    to: Option<&str>,
) -> Result<bool, DbError> {
    let id: Option<String> = sqlx::query_scalar(
        "SELECT id FROM objects WHERE bucket = $1 AND key >= $2 AND ($3 IS NULL OR key < $3) LIMIT 1",
    )
    .bind(bucket)
    .bind(from)
    .bind(to)
    .fetch_optional(conn)
    .await?;
    Ok(id.is_some())
}

/// The current (not deleted) keys in `[from, end)` of `chars` or `chars + 1`
/// characters: the names that could stand for one name of a folder (a file,
/// or a folder's marker), whatever their case.
pub async fn keys_of_length(
    conn: &mut AnyConnection,
    bucket: &str,
    from: &str,
    end: Option<&str>,
    chars: i64,
) -> Result<Vec<String>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT key FROM objects WHERE bucket = $1 AND is_latest = 1 AND delete_marker = 0 \
         AND key >= $2 AND ($3 IS NULL OR key < $3) \
         AND length(key) IN (CAST($4 AS INTEGER), CAST($4 AS INTEGER) + 1)",
    )
    .bind(bucket)
    .bind(from)
    .bind(end)
    .bind(chars)
    .fetch_all(conn)
    .await?)
}

/// Whether any version or delete marker has this key.
pub async fn any_version_of(
    conn: &mut AnyConnection,
    bucket: &str,
    key: &str,
) -> Result<bool, DbError> {
    let id: Option<String> =
        sqlx::query_scalar("SELECT id FROM objects WHERE bucket = $1 AND key = $2 LIMIT 1")
            .bind(bucket)
            .bind(key)
            .fetch_optional(conn)
            .await?;
    Ok(id.is_some())
}

/// Gives every version of one key another key; returns how many moved.
pub async fn rename_key(
    conn: &mut AnyConnection,
    bucket: &str,
    from: &str,
    to: &str,
) -> Result<u64, DbError> {
    Ok(
        sqlx::query("UPDATE objects SET key = $3 WHERE bucket = $1 AND key = $2")
            .bind(bucket)
            .bind(from)
            .bind(to)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

/// Replaces the prefix `from` of every key in `[from, end)` by `to`, for
/// every version; returns how many moved. `from` is counted in characters,
/// as both engines' `substr` does.
pub async fn rename_prefix(
    conn: &mut AnyConnection,
    bucket: &str,
    from: &str,
    end: Option<&str>,
    to: &str,
) -> Result<u64, DbError> {
    let skip = from.chars().count() as i64 + 1;
    Ok(sqlx::query(
        "UPDATE objects SET key = $4 || substr(key, CAST($5 AS INTEGER)) \
         WHERE bucket = $1 AND key >= $2 AND ($3 IS NULL OR key < $3)",
    )
    .bind(bucket)
    .bind(from)
    .bind(end)
    .bind(to)
    .bind(skip)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Every version and delete marker with a key in `[from, end)`.
pub async fn versions_in(
    conn: &mut AnyConnection,
    bucket: &str,
    from: &str,
    end: Option<&str>,
) -> Result<Vec<ObjectRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = $1 AND key >= $2 \
         AND ($3 IS NULL OR key < $3) ORDER BY key, created_at"
    ))
    .bind(bucket)
    .bind(from)
    .bind(end)
    .fetch_all(conn)
    .await?)
}

/// An object version's ACL grants (JSON), by its row id.
pub async fn object_acl(
    conn: &mut AnyConnection,
    object_id: &str,
) -> Result<Option<String>, DbError> {
    Ok(
        sqlx::query_scalar("SELECT acl FROM object_acls WHERE object_id = $1")
            .bind(object_id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Sets (or, with `None`, removes) an object version's ACL grants.
pub async fn set_object_acl(
    conn: &mut AnyConnection,
    object_id: &str,
    acl: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query("DELETE FROM object_acls WHERE object_id = $1")
        .bind(object_id)
        .execute(&mut *conn)
        .await?;
    if let Some(acl) = acl {
        sqlx::query("INSERT INTO object_acls (object_id, acl) VALUES ($1, $2)")
            .bind(object_id)
            .bind(acl)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Sets a version's retention (mode and date) and legal hold.
pub async fn set_version_lock(
    conn: &mut AnyConnection,
    id: &str,
    mode: Option<&str>,
    until: Option<i64>,
    legal_hold: bool,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE objects SET lock_mode = $1, lock_until = $2, legal_hold = $3 WHERE id = $4",
    )
    .bind(mode)
    .bind(until)
    .bind(i64::from(legal_hold))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_object_tags(
    conn: &mut AnyConnection,
    id: &str,
    tags: &str,
) -> Result<(), DbError> {
    sqlx::query("UPDATE objects SET tags = $1 WHERE id = $2")
        .bind(tags)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Latest versions (delete markers included) with keys after `after` and at
/// or after `from`, in key order; without tags or segments
/// ([`LISTED_COLUMNS`]).
pub async fn list_latest(
    conn: &mut AnyConnection,
    bucket: &str,
    from: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<ObjectRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {LISTED_COLUMNS} FROM objects WHERE bucket = $1 AND is_latest = 1 \
         AND key >= $2 AND ($3 IS NULL OR key > $3) ORDER BY key LIMIT $4"
    ))
    .bind(bucket)
    .bind(from)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// What a folder's listing needs of an object: no more, so that listing
/// thousands of files reads and converts as little as possible.
#[derive(Debug, Clone, FromRow)]
pub struct BriefRow {
    pub key: String,
    pub delete_marker: i64,
    pub size: i64,
    pub etag: String,
    pub created_at: i64,
    pub headers: String,
}

/// [`list_latest`], brief.
pub async fn list_latest_brief(
    conn: &mut AnyConnection,
    bucket: &str,
    from: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<BriefRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT key, delete_marker, size, etag, created_at, headers FROM objects \
         WHERE bucket = $1 AND is_latest = 1 AND key >= $2 AND ($3 IS NULL OR key > $3) \
         ORDER BY key LIMIT $4",
    )
    .bind(bucket)
    .bind(from)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// All versions in key order, newest first within a key, after the given
/// position (key, created_at, id) and at or after `from`.
pub async fn list_versions(
    conn: &mut AnyConnection,
    bucket: &str,
    from: &str,
    after: Option<(&str, i64, &str)>,
    limit: i64,
) -> Result<Vec<ObjectRow>, DbError> {
    let (after_key, after_at, after_id) = match after {
        Some((k, at, id)) => (Some(k), at, id),
        None => (None, 0, ""),
    };
    Ok(sqlx::query_as(&format!(
        "SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = $1 AND key >= $2 \
         AND ($3 IS NULL OR key > $3 OR (key = $3 AND (created_at < $4 OR (created_at = $4 AND id < $5)))) \
         ORDER BY key, created_at DESC, id DESC LIMIT $6"
    ))
    .bind(bucket)
    .bind(from)
    .bind(after_key)
    .bind(after_at)
    .bind(after_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Versions of a bucket older than a time, for the lifecycle worker.
pub async fn versions_created_before(
    conn: &mut AnyConnection,
    bucket: &str,
    before: i64,
    after_id: &str,
    limit: i64,
) -> Result<Vec<ObjectRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = $1 AND created_at < $2 AND id > $3 \
         ORDER BY id LIMIT $4"
    ))
    .bind(bucket)
    .bind(before)
    .bind(after_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// The versions of the same key newer than this one: when the first of them
/// was created (when this one stopped being current), and how many of them
/// are non-current.
pub async fn newer_versions(
    conn: &mut AnyConnection,
    o: &ObjectRow,
) -> Result<(Option<i64>, i64), DbError> {
    let (successor, noncurrent): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT MIN(created_at), SUM(CASE WHEN is_latest = 0 THEN 1 ELSE 0 END) FROM objects \
         WHERE bucket = $1 AND key = $2 AND (created_at > $3 OR (created_at = $3 AND id > $4))",
    )
    .bind(&o.bucket)
    .bind(&o.key)
    .bind(o.created_at)
    .bind(&o.id)
    .fetch_one(conn)
    .await?;
    Ok((successor, noncurrent.unwrap_or(0)))
}

/// How many versions (delete markers included) an object has.
pub async fn version_count(
    conn: &mut AnyConnection,
    bucket: &str,
    key: &str,
) -> Result<i64, DbError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM objects WHERE bucket = $1 AND key = $2")
            .bind(bucket)
            .bind(key)
            .fetch_one(conn)
            .await?,
    )
}

// --- multipart uploads -------------------------------------------------------

pub async fn insert_upload(conn: &mut AnyConnection, u: &UploadRow) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT INTO uploads ({UPLOAD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .bind(&u.id)
    .bind(&u.bucket)
    .bind(&u.key)
    .bind(u.created_at)
    .bind(&u.headers)
    .bind(&u.tags)
    .bind(&u.checksum_algorithm)
    .bind(&u.sse_c)
    .bind(&u.object_lock)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_upload(conn: &mut AnyConnection, id: &str) -> Result<Option<UploadRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

pub async fn delete_upload(conn: &mut AnyConnection, id: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM upload_parts WHERE upload_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM uploads WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Uploads of a bucket in (key, id) order after the given position.
pub async fn list_uploads(
    conn: &mut AnyConnection,
    bucket: &str,
    from: &str,
    after: Option<(&str, &str)>,
    limit: i64,
) -> Result<Vec<UploadRow>, DbError> {
    let (after_key, after_id) = match after {
        Some((k, id)) => (Some(k), id),
        None => (None, ""),
    };
    Ok(sqlx::query_as(&format!(
        "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE bucket = $1 AND key >= $2 \
         AND ($3 IS NULL OR key > $3 OR (key = $3 AND id > $4)) ORDER BY key, id LIMIT $5"
    ))
    .bind(bucket)
    .bind(from)
    .bind(after_key)
    .bind(after_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Uploads started before a time, for expiry.
pub async fn uploads_started_before(
    conn: &mut AnyConnection,
    before: i64,
    limit: i64,
) -> Result<Vec<UploadRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE created_at < $1 ORDER BY created_at LIMIT $2"
    ))
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Stores a part; returns the part it replaced, if any.
pub async fn upsert_part(
    conn: &mut AnyConnection,
    p: &PartRow,
) -> Result<Option<PartRow>, DbError> {
    let old: Option<PartRow> = sqlx::query_as(&format!(
        "SELECT {PART_COLUMNS} FROM upload_parts WHERE upload_id = $1 AND part_number = $2"
    ))
    .bind(&p.upload_id)
    .bind(p.part_number)
    .fetch_optional(&mut *conn)
    .await?;
    if old.is_some() {
        sqlx::query("DELETE FROM upload_parts WHERE upload_id = $1 AND part_number = $2")
            .bind(&p.upload_id)
            .bind(p.part_number)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(&format!(
        "INSERT INTO upload_parts ({PART_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(&p.upload_id)
    .bind(p.part_number)
    .bind(&p.blob_id)
    .bind(&p.wrapped_key)
    .bind(p.size)
    .bind(&p.etag)
    .bind(&p.checksum)
    .bind(p.created_at)
    .execute(conn)
    .await?;
    Ok(old)
}

pub async fn list_parts(
    conn: &mut AnyConnection,
    upload_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<PartRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {PART_COLUMNS} FROM upload_parts WHERE upload_id = $1 AND part_number > $2 \
         ORDER BY part_number LIMIT $3"
    ))
    .bind(upload_id)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

// --- blobs waiting for deletion ------------------------------------------------

/// Releases a blob: it is no longer held, and waits for deletion.
pub async fn trash_blob(
    conn: &mut AnyConnection,
    blob_id: &str,
    region: &str,
    at: i64,
) -> Result<(), DbError> {
    sqlx::query("DELETE FROM blobs WHERE blob_id = $1")
        .bind(blob_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO blob_trash (blob_id, region, queued_at) VALUES ($1, $2, $3) \
         ON CONFLICT (blob_id) DO NOTHING",
    )
    .bind(blob_id)
    .bind(region)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn trashed_blobs(
    conn: &mut AnyConnection,
    limit: i64,
) -> Result<Vec<(String, String)>, DbError> {
    Ok(
        sqlx::query_as("SELECT blob_id, region FROM blob_trash ORDER BY queued_at LIMIT $1")
            .bind(limit)
            .fetch_all(conn)
            .await?,
    )
}

pub async fn forget_trashed_blob(conn: &mut AnyConnection, blob_id: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM blob_trash WHERE blob_id = $1")
        .bind(blob_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn insert_blob(
    conn: &mut AnyConnection,
    blob_id: &str,
    region: &str,
    owner_id: &str,
) -> Result<(), DbError> {
    sqlx::query("INSERT INTO blobs (blob_id, region, owner_id) VALUES ($1, $2, $3)")
        .bind(blob_id)
        .bind(region)
        .bind(owner_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether the blob is held by an object version or an upload.
pub async fn blob_is_held(conn: &mut AnyConnection, blob_id: &str) -> Result<bool, DbError> {
    let found: Option<String> = sqlx::query_scalar("SELECT blob_id FROM blobs WHERE blob_id = $1")
        .bind(blob_id)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

// --- quotas and usage ------------------------------------------------------------

#[derive(Debug, Clone, Default, FromRow)]
pub struct OrgStorageRow {
    pub bytes: i64,
    pub objects: i64,
    pub max_bytes: Option<i64>,
    pub max_objects: Option<i64>,
}

pub async fn org_storage(conn: &mut AnyConnection, org_id: &str) -> Result<OrgStorageRow, DbError> {
    Ok(sqlx::query_as(
        "SELECT bytes, objects, max_bytes, max_objects FROM org_storage WHERE org_id = $1",
    )
    .bind(org_id)
    .fetch_optional(conn)
    .await?
    .unwrap_or_default())
}

/// An organisation's Block Public Access switches (JSON), if it set them.
pub async fn org_public_access_block(
    conn: &mut AnyConnection,
    org_id: &str,
) -> Result<Option<String>, DbError> {
    Ok(sqlx::query_scalar::<_, Option<String>>(
        "SELECT public_access_block FROM org_storage WHERE org_id = $1",
    )
    .bind(org_id)
    .fetch_optional(conn)
    .await?
    .flatten())
}

pub async fn set_org_public_access_block(
    conn: &mut AnyConnection,
    org_id: &str,
    value: &str,
) -> Result<(), DbError> {
    ensure_org_storage(&mut *conn, org_id).await?;
    sqlx::query("UPDATE org_storage SET public_access_block = $1 WHERE org_id = $2")
        .bind(value)
        .bind(org_id)
        .execute(conn)
        .await?;
    Ok(())
}

async fn ensure_org_storage(conn: &mut AnyConnection, org_id: &str) -> Result<(), DbError> {
    sqlx::query("INSERT INTO org_storage (org_id) VALUES ($1) ON CONFLICT (org_id) DO NOTHING")
        .bind(org_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_quota(
    conn: &mut AnyConnection,
    org_id: &str,
    max_bytes: Option<i64>,
    max_objects: Option<i64>,
) -> Result<(), DbError> {
    ensure_org_storage(&mut *conn, org_id).await?;
    sqlx::query("UPDATE org_storage SET max_bytes = $1, max_objects = $2 WHERE org_id = $3")
        .bind(max_bytes)
        .bind(max_objects)
        .bind(org_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Adds to the organisation's stored bytes and objects, unless a growth would
/// pass its quota (then returns false and changes nothing), and records the
/// change for billing.
pub async fn add_storage(
    conn: &mut AnyConnection,
    delta_id: &str,
    org_id: &str,
    bucket: &str,
    at: i64,
    delta_bytes: i64,
    delta_objects: i64,
) -> Result<bool, DbError> {
    if delta_bytes == 0 && delta_objects == 0 {
        return Ok(true);
    }
    ensure_org_storage(&mut *conn, org_id).await?;
    let updated = sqlx::query(
        "UPDATE org_storage SET bytes = bytes + $1, objects = objects + $2 WHERE org_id = $3 \
         AND ($1 <= 0 OR max_bytes IS NULL OR bytes + $1 <= max_bytes) \
         AND ($2 <= 0 OR max_objects IS NULL OR objects + $2 <= max_objects)",
    )
    .bind(delta_bytes)
    .bind(delta_objects)
    .bind(org_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO storage_deltas (id, org_id, bucket, at, delta_bytes, delta_objects) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(delta_id)
    .bind(org_id)
    .bind(bucket)
    .bind(at)
    .bind(delta_bytes)
    .bind(delta_objects)
    .execute(conn)
    .await?;
    Ok(true)
}

#[derive(Debug, Clone, FromRow)]
pub struct UsageRow {
    pub id: String,
    pub org_id: String,
    pub bucket: String,
    pub hour: i64,
    pub class_a: i64,
    pub class_b: i64,
    pub egress_bytes: i64,
    pub exit_egress_bytes: i64,
    pub recorded_at: i64,
}

/// Records usage; a record whose id is already stored is ignored, so a
/// retried batch counts once.
pub async fn insert_usage(conn: &mut AnyConnection, u: &UsageRow) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO usage_records (id, org_id, bucket, hour, class_a, class_b, egress_bytes, \
         exit_egress_bytes, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&u.id)
    .bind(&u.org_id)
    .bind(&u.bucket)
    .bind(u.hour)
    .bind(u.class_a)
    .bind(u.class_b)
    .bind(u.egress_bytes)
    .bind(u.exit_egress_bytes)
    .bind(u.recorded_at)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct UsageTotalRow {
    pub bucket: String,
    pub hour: i64,
    pub class_a: i64,
    pub class_b: i64,
    pub egress_bytes: i64,
    pub exit_egress_bytes: i64,
}

/// An organisation's request usage per bucket and hour, for the hours
/// starting in `[from, to)`.
pub async fn usage_between(
    conn: &mut AnyConnection,
    org_id: &str,
    from: i64,
    to: i64,
) -> Result<Vec<UsageTotalRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT bucket, hour, CAST(SUM(class_a) AS BIGINT) AS class_a, CAST(SUM(class_b) AS BIGINT) AS class_b, \
         CAST(SUM(egress_bytes) AS BIGINT) AS egress_bytes, CAST(SUM(exit_egress_bytes) AS BIGINT) AS exit_egress_bytes \
         FROM usage_records WHERE org_id = $1 AND hour >= $2 AND hour < $3 GROUP BY bucket, hour ORDER BY hour, bucket",
    )
    .bind(org_id)
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await?)
}

/// The bytes each of an organisation's buckets held at `at` (the sum of
/// its changes before).
pub async fn bytes_at(
    conn: &mut AnyConnection,
    org_id: &str,
    at: i64,
) -> Result<Vec<(String, i64)>, DbError> {
    Ok(sqlx::query_as(
        "SELECT bucket, CAST(SUM(delta_bytes) AS BIGINT) FROM storage_deltas \
         WHERE org_id = $1 AND at < $2 GROUP BY bucket",
    )
    .bind(org_id)
    .bind(at)
    .fetch_all(conn)
    .await?)
}

/// An organisation's storage changes in `[from, to)`: bucket, time, bytes;
/// by bucket, then time.
pub async fn storage_changes(
    conn: &mut AnyConnection,
    org_id: &str,
    from: i64,
    to: i64,
) -> Result<Vec<(String, i64, i64)>, DbError> {
    Ok(sqlx::query_as(
        "SELECT bucket, at, delta_bytes FROM storage_deltas \
         WHERE org_id = $1 AND at >= $2 AND at < $3 ORDER BY bucket, at, id",
    )
    .bind(org_id)
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await?)
}

#[derive(Debug, Clone, FromRow)]
pub struct AccessRow {
    pub id: String,
    pub org_id: String,
    pub at: i64,
    pub operation: String,
    pub bucket: String,
    pub key: Option<String>,
    pub access_key_id: Option<String>,
    pub source: String,
    pub status: i64,
    pub bytes: i64,
}

pub async fn insert_access(conn: &mut AnyConnection, a: &AccessRow) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO access_log (id, org_id, at, operation, bucket, key, access_key_id, source, \
         status, bytes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&a.id)
    .bind(&a.org_id)
    .bind(a.at)
    .bind(&a.operation)
    .bind(&a.bucket)
    .bind(&a.key)
    .bind(&a.access_key_id)
    .bind(&a.source)
    .bind(a.status)
    .bind(a.bytes)
    .execute(conn)
    .await?;
    Ok(())
}

/// An organisation's access log, newest first, before the cursor.
pub async fn access_log(
    conn: &mut AnyConnection,
    org_id: &str,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<AccessRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT id, org_id, at, operation, bucket, key, access_key_id, source, status, bytes \
         FROM access_log WHERE org_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
    )
    .bind(org_id)
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}
