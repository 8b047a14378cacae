//! Idempotency keys: the first request with a key reserves it; later ones with
//! the same key replay its stored response.

use sqlx::AnyConnection;

use crate::DbError;

/// What the store holds for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// The key was free and is now held by this request.
    Reserved,
    /// The key was used before (status and response are absent while the
    /// first request is still running).
    Seen {
        request_hash: String,
        status: Option<i64>,
        response: Option<String>,
    },
}

/// How long an unfinished reservation holds its key.
pub const STALE_RESERVATION_MS: i64 = 60_000;

pub async fn reserve(
    conn: &mut AnyConnection,
    principal: &str,
    key: &str,
    request_hash: &str,
    now: i64,
) -> Result<Reservation, DbError> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (principal, idem_key, request_hash, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (principal, idem_key) DO NOTHING",
    )
    .bind(principal)
    .bind(key)
    .bind(request_hash)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Reservation::Reserved);
    }
    // A reservation whose request never finished (its node stopped) is
    // taken over after a while, so that the client's retry can proceed.
    let taken_over = sqlx::query(
        "UPDATE idempotency_keys SET request_hash = $1, created_at = $2 \
         WHERE principal = $3 AND idem_key = $4 AND status IS NULL AND created_at < $5",
    )
    .bind(request_hash)
    .bind(now)
    .bind(principal)
    .bind(key)
    .bind(now - STALE_RESERVATION_MS)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if taken_over == 1 {
        return Ok(Reservation::Reserved);
    }
    let (request_hash, status, response): (String, Option<i64>, Option<String>) =
        sqlx::query_as("SELECT request_hash, status, response FROM idempotency_keys WHERE principal = $1 AND idem_key = $2")
            .bind(principal)
            .bind(key)
            .fetch_one(conn)
            .await?;
    Ok(Reservation::Seen {
        request_hash,
        status,
        response,
    })
}

pub async fn complete(
    conn: &mut AnyConnection,
    principal: &str,
    key: &str,
    status: i64,
    response: &str,
) -> Result<(), DbError> {
    sqlx::query("UPDATE idempotency_keys SET status = $1, response = $2 WHERE principal = $3 AND idem_key = $4")
        .bind(status)
        .bind(response)
        .bind(principal)
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// Frees a key whose request failed, so that the client may retry it.
pub async fn release(conn: &mut AnyConnection, principal: &str, key: &str) -> Result<(), DbError> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE principal = $1 AND idem_key = $2 AND status IS NULL",
    )
    .bind(principal)
    .bind(key)
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets keys older than the retention window.
pub async fn purge_before(conn: &mut AnyConnection, before: i64) -> Result<u64, DbError> {
    Ok(
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(before)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}
