//! Platform-wide settings shared by every node (e.g. the master key's fingerprint).

use sqlx::{AnyConnection, Row};

use crate::DbError;

pub async fn get(conn: &mut AnyConnection, name: &str) -> Result<Option<String>, DbError> {
    let row = sqlx::query("SELECT value FROM settings WHERE name = $1")
        .bind(name)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| r.try_get("value")).transpose()?)
}

/// Stores `value` unless the setting exists; returns the value that holds.
pub async fn insert_if_absent(
    conn: &mut AnyConnection,
    name: &str,
    value: &str,
) -> Result<String, DbError> {
    sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(value)
        .execute(&mut *conn)
        .await?;
    get(conn, name).await?.ok_or(DbError::Conflict)
}
