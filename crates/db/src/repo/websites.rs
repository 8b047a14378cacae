//! Websites' own domains: claims, their proof, and the lookup of the
//! website listener. A claim counts only while its bucket belongs to the
//! organisation that made it.

use sqlx::{AnyConnection, FromRow};

use crate::DbError;

#[derive(Debug, Clone, FromRow)]
pub struct SiteDomainRow {
    pub domain: String,
    pub bucket: String,
    pub org_id: String,
    pub token: String,
    pub created_at: i64,
    pub verified_at: Option<i64>,
}

const COLUMNS: &str = "domain, bucket, org_id, token, created_at, verified_at";

pub async fn insert_site_domain(
    conn: &mut AnyConnection,
    r: &SiteDomainRow,
) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT INTO site_domains ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
    ))
    .bind(&r.domain)
    .bind(&r.bucket)
    .bind(&r.org_id)
    .bind(&r.token)
    .bind(r.created_at)
    .bind(r.verified_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn site_domains_of(
    conn: &mut AnyConnection,
    bucket: &str,
    org_id: &str,
) -> Result<Vec<SiteDomainRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM site_domains WHERE bucket = $1 AND org_id = $2 ORDER BY domain"
    ))
    .bind(bucket)
    .bind(org_id)
    .fetch_all(conn)
    .await?)
}

pub async fn get_site_domain(
    conn: &mut AnyConnection,
    bucket: &str,
    domain: &str,
) -> Result<Option<SiteDomainRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM site_domains WHERE bucket = $1 AND domain = $2"
    ))
    .bind(bucket)
    .bind(domain)
    .fetch_optional(conn)
    .await?)
}

/// Marks a claim proven, and drops any earlier proof of the same domain
/// for another bucket: whoever proves control last holds the domain.
pub async fn prove_site_domain(
    conn: &mut AnyConnection,
    bucket: &str,
    domain: &str,
    at: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "DELETE FROM site_domains WHERE domain = $1 AND bucket <> $2 AND verified_at IS NOT NULL",
    )
    .bind(domain)
    .bind(bucket)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE site_domains SET verified_at = $3 WHERE bucket = $1 AND domain = $2")
        .bind(bucket)
        .bind(domain)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete_site_domain(
    conn: &mut AnyConnection,
    bucket: &str,
    domain: &str,
) -> Result<bool, DbError> {
    let done = sqlx::query("DELETE FROM site_domains WHERE bucket = $1 AND domain = $2")
        .bind(bucket)
        .bind(domain)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Every claim of a bucket, when the bucket goes.
pub async fn delete_site_domains_of(conn: &mut AnyConnection, bucket: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM site_domains WHERE bucket = $1")
        .bind(bucket)
        .execute(conn)
        .await?;
    Ok(())
}

/// The bucket a proven domain serves, if its claimant still owns it.
pub async fn bucket_of_site_domain(
    conn: &mut AnyConnection,
    domain: &str,
) -> Result<Option<String>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT d.bucket FROM site_domains d JOIN buckets b ON b.name = d.bucket AND b.org_id = d.org_id \
         WHERE d.domain = $1 AND d.verified_at IS NOT NULL",
    )
    .bind(domain)
    .fetch_optional(conn)
    .await?)
}
