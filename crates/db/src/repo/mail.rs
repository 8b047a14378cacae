//! The outbox: every message the platform sends, whether or not an SMTP relay
//! delivered it, so that the operator can read it in the console.

use sqlx::{AnyConnection, FromRow};

use crate::DbError;

#[derive(Debug, Clone, FromRow)]
pub struct OutboxRow {
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
}

pub async fn insert(conn: &mut AnyConnection, m: &OutboxRow) -> Result<(), DbError> {
    sqlx::query("INSERT INTO outbox (id, recipient, subject, body, created_at, sent_at, last_error) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(&m.id)
        .bind(&m.recipient)
        .bind(&m.subject)
        .bind(&m.body)
        .bind(m.created_at)
        .bind(m.sent_at)
        .bind(&m.last_error)
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks a message delivered, keeping `body` (with any secret it carried
/// cut out) as the record.
pub async fn mark_sent(
    conn: &mut AnyConnection,
    id: &str,
    at: i64,
    body: &str,
) -> Result<(), DbError> {
    sqlx::query("UPDATE outbox SET sent_at = $1, last_error = NULL, body = $2 WHERE id = $3")
        .bind(at)
        .bind(body)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn mark_failed(conn: &mut AnyConnection, id: &str, error: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE outbox SET last_error = $1 WHERE id = $2")
        .bind(error)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The newest messages first.
pub async fn list_recent(conn: &mut AnyConnection, limit: i64) -> Result<Vec<OutboxRow>, DbError> {
    Ok(sqlx::query_as("SELECT id, recipient, subject, body, created_at, sent_at, last_error FROM outbox ORDER BY id DESC LIMIT $1")
        .bind(limit)
        .fetch_all(conn)
        .await?)
}

/// Messages written to a recipient since a time.
pub async fn count_to_recipient_since(
    conn: &mut AnyConnection,
    recipient: &str,
    since: i64,
) -> Result<i64, DbError> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE recipient = $1 AND created_at > $2")
            .bind(recipient)
            .bind(since)
            .fetch_one(conn)
            .await?;
    Ok(n)
}
