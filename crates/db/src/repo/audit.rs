//! Storage of the audit chain. Appends are serialised across all nodes by
//! the single `audit_head` row: the first statement of an append updates it,
//! which takes PostgreSQL's row lock or SQLite's write lock until commit.

use sqlx::{AnyConnection, FromRow};

use crate::DbError;

#[derive(Debug, Clone, FromRow)]
pub struct AuditRow {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub org_id: Option<String>,
    pub action: String,
    pub target: String,
    pub source: String,
    pub details: String,
    pub link: String,
    /// The epoch of the audit key the link was made with.
    pub key_epoch: i64,
}

const AUDIT_COLUMNS: &str =
    "seq, at, actor, org_id, action, target, source, details, link, key_epoch";

/// What an append claims: its sequence number, the previous link, and the
/// epochs of the audit and signing keys writers use now.
#[derive(Debug, Clone, FromRow)]
pub struct Claim {
    pub seq: i64,
    pub link: String,
    pub audit_epoch: i64,
    pub signing_epoch: i64,
}

/// Claims the next sequence number; returns it with the previous link and
/// the keys' epochs. Must be the first write of its transaction.
pub async fn claim_next(conn: &mut AnyConnection) -> Result<Claim, DbError> {
    Ok(sqlx::query_as(
        "UPDATE audit_head SET seq = seq + 1 WHERE id = 1 \
         RETURNING seq, link, audit_epoch, signing_epoch",
    )
    .fetch_one(conn)
    .await?)
}

pub async fn append(conn: &mut AnyConnection, row: &AuditRow) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    ))
    .bind(row.seq)
    .bind(row.at)
    .bind(&row.actor)
    .bind(&row.org_id)
    .bind(&row.action)
    .bind(&row.target)
    .bind(&row.source)
    .bind(&row.details)
    .bind(&row.link)
    .bind(row.key_epoch)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE audit_head SET link = $1 WHERE id = 1")
        .bind(&row.link)
        .execute(conn)
        .await?;
    Ok(())
}

/// The stored head: the last sequence number and its link.
pub async fn head(conn: &mut AnyConnection) -> Result<(i64, String), DbError> {
    Ok(
        sqlx::query_as("SELECT seq, link FROM audit_head WHERE id = 1")
            .fetch_one(conn)
            .await?,
    )
}

/// A page of the whole chain in stored order, for verification.
pub async fn page(
    conn: &mut AnyConnection,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<AuditRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
    ))
    .bind(after_seq)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// An organisation's own entries, newest first, before the cursor.
pub async fn page_of_org(
    conn: &mut AnyConnection,
    org_id: &str,
    before_seq: i64,
    limit: i64,
) -> Result<Vec<AuditRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE org_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
    ))
    .bind(org_id)
    .bind(before_seq)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}
