//! Deliveries of issued invoices to their buyers, and their attempts.

use sqlx::{AnyConnection, FromRow};

use crate::DbError;

#[derive(Debug, Clone, FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub invoice_id: String,
    pub channel: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    /// What the receiving platform calls it.
    pub remote_id: Option<String>,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct AttemptRow {
    pub delivery_id: String,
    pub attempt: i64,
    pub at: i64,
    pub ok: i64,
    pub detail: String,
}

const COLUMNS: &str = "id, invoice_id, channel, status, attempts, next_attempt_at, last_error, remote_id, delivered_at, created_at";

pub async fn insert(conn: &mut AnyConnection, d: &DeliveryRow) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT INTO invoice_deliveries ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    ))
    .bind(&d.id)
    .bind(&d.invoice_id)
    .bind(&d.channel)
    .bind(&d.status)
    .bind(d.attempts)
    .bind(d.next_attempt_at)
    .bind(&d.last_error)
    .bind(&d.remote_id)
    .bind(d.delivered_at)
    .bind(d.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Pending deliveries whose next attempt is due, oldest first.
pub async fn due(
    conn: &mut AnyConnection,
    now: i64,
    limit: i64,
) -> Result<Vec<DeliveryRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM invoice_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 \
         ORDER BY next_attempt_at, id LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Takes a due delivery for one attempt, as a lease: its next attempt is
/// moved to `lease_until`, so no other node takes it meanwhile; `false`
/// when another node took it first.
pub async fn claim(
    conn: &mut AnyConnection,
    id: &str,
    now: i64,
    lease_until: i64,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE invoice_deliveries SET attempts = attempts + 1, next_attempt_at = $1 \
         WHERE id = $2 AND status = 'pending' AND next_attempt_at <= $3",
    )
    .bind(lease_until)
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records an attempt's outcome and where the delivery now stands.
#[allow(clippy::too_many_arguments)]
pub async fn record(
    conn: &mut AnyConnection,
    d: &DeliveryRow,
    at: i64,
    status: &str,
    next_attempt_at: i64,
    (ok, detail): (bool, &str),
    remote_id: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO invoice_delivery_attempts (delivery_id, attempt, at, ok, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&d.id)
    .bind(d.attempts)
    .bind(at)
    .bind(i64::from(ok))
    .bind(detail)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE invoice_deliveries SET status = $1, next_attempt_at = $2, last_error = $3, \
         remote_id = COALESCE($4, remote_id), delivered_at = $5 WHERE id = $6",
    )
    .bind(status)
    .bind(next_attempt_at)
    .bind((!ok).then_some(detail))
    .bind(remote_id)
    .bind(ok.then_some(at))
    .bind(&d.id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn of_invoice(
    conn: &mut AnyConnection,
    invoice_id: &str,
) -> Result<Vec<DeliveryRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM invoice_deliveries WHERE invoice_id = $1 ORDER BY created_at, id"
    ))
    .bind(invoice_id)
    .fetch_all(conn)
    .await?)
}

pub async fn attempts(
    conn: &mut AnyConnection,
    delivery_id: &str,
) -> Result<Vec<AttemptRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT delivery_id, attempt, at, ok, detail FROM invoice_delivery_attempts \
         WHERE delivery_id = $1 ORDER BY attempt",
    )
    .bind(delivery_id)
    .fetch_all(conn)
    .await?)
}
