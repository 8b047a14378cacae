//! Background jobs' leases, and the version rows nodes' caches follow.

use sqlx::{AnyConnection, FromRow};

use crate::DbError;

/// A job as the nodes share it.
#[derive(Debug, Clone, FromRow)]
pub struct JobRow {
    pub name: String,
    /// The node running it now, or that ran it last.
    pub holder: Option<String>,
    pub lease_until: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub runs: i64,
    pub last_outcome: Option<String>,
    pub last_error: Option<String>,
}

const COLUMNS: &str =
    "name, holder, lease_until, started_at, finished_at, runs, last_outcome, last_error";

/// Takes the lease of `name` for `holder` until `lease_until`, when nobody
/// holds it at `now` and — unless `due_after` is `None` — it last finished
/// at or before `due_after`. True when taken.
pub async fn claim(
    conn: &mut AnyConnection,
    name: &str,
    holder: &str,
    now: i64,
    lease_until: i64,
    due_after: Option<i64>,
) -> Result<bool, DbError> {
    sqlx::query("INSERT INTO jobs (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    let taken = sqlx::query(
        "UPDATE jobs SET holder = $1, lease_until = $2, started_at = $3 \
         WHERE name = $4 AND lease_until <= $3 \
         AND ($5 = 0 OR finished_at IS NULL OR finished_at <= $6)",
    )
    .bind(holder)
    .bind(lease_until)
    .bind(now)
    .bind(name)
    .bind(i64::from(due_after.is_some()))
    .bind(due_after.unwrap_or(0))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(taken == 1)
}

/// Extends a lease its holder still has. False when it lapsed and another
/// node took the job.
pub async fn renew(
    conn: &mut AnyConnection,
    name: &str,
    holder: &str,
    lease_until: i64,
) -> Result<bool, DbError> {
    let renewed = sqlx::query("UPDATE jobs SET lease_until = $1 WHERE name = $2 AND holder = $3")
        .bind(lease_until)
        .bind(name)
        .bind(holder)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(renewed == 1)
}

/// Records the end of a run and gives the lease back.
pub async fn finish(
    conn: &mut AnyConnection,
    name: &str,
    holder: &str,
    now: i64,
    outcome: Result<&str, &str>,
) -> Result<(), DbError> {
    let (done, failed) = match outcome {
        Ok(done) => (Some(done), None),
        Err(failed) => (None, Some(failed)),
    };
    sqlx::query(
        "UPDATE jobs SET lease_until = 0, finished_at = $1, runs = runs + 1, \
         last_outcome = COALESCE($2, last_outcome), last_error = $3 \
         WHERE name = $4 AND holder = $5",
    )
    .bind(now)
    .bind(done)
    .bind(failed)
    .bind(name)
    .bind(holder)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get(conn: &mut AnyConnection, name: &str) -> Result<Option<JobRow>, DbError> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM jobs WHERE name = $1"))
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

pub async fn list(conn: &mut AnyConnection) -> Result<Vec<JobRow>, DbError> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM jobs ORDER BY name"))
            .fetch_all(&mut *conn)
            .await?,
    )
}

/// The version of a cache (0 before its first change).
pub async fn cache_version(conn: &mut AnyConnection, name: &str) -> Result<i64, DbError> {
    let version: Option<(i64,)> =
        sqlx::query_as("SELECT version FROM cache_versions WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(version.map_or(0, |(v,)| v))
}

/// Tells every node that a cache's content changed.
pub async fn bump_cache_version(conn: &mut AnyConnection, name: &str) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO cache_versions (name, version) VALUES ($1, 1) \
         ON CONFLICT (name) DO UPDATE SET version = cache_versions.version + 1",
    )
    .bind(name)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
