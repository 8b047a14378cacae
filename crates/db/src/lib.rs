//! Persistence for Nuage. One set of SQL statements serves SQLite (the embedded
//! default) and PostgreSQL through sqlx's `Any` driver: columns use only types
//! both share (text, 64-bit integers), times are milliseconds since the epoch,
//! flags are 0/1. Each dialect keeps its own migrations folder.
//!
//! Repository functions take a connection, so that the service layer decides
//! which statements share a transaction.

mod error;
pub mod repo;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

pub use error::DbError;
pub use sqlx::{Any, AnyConnection, Transaction};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Which SQL engine holds the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Tells the dialect from a database URL, or says what is wrong with it.
    pub fn of_url(url: &str) -> Result<Self, DbError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(DbError::Config(
                "the database URL must start with sqlite: or postgres:// (for example sqlite://nuage-data/nuage.db)".into(),
            ))
        }
    }
}

/// A pool of connections to the metadata database.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    dialect: Dialect,
}

impl Db {
    /// Connects, creating the SQLite file if needed, and applies the
    /// dialect's pending migrations. On PostgreSQL the migrator holds an
    /// advisory lock, so nodes starting together migrate once.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::of_url(url)?;
        let options = AnyConnectOptions::from_str(url)
            .map_err(|e| DbError::Config(format!("the database URL is not valid: {e}")))?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // WAL lets readers run beside the writer; FULL makes every
                        // acknowledged commit durable; writers from other processes
                        // wait instead of failing.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA busy_timeout = 30000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        // Searches read the same index pages again and
                        // again: 16 MiB of page cache per connection (the
                        // default is 2 MiB), and up to 1 GiB of the file
                        // mapped in memory, read without a system call and
                        // a copy per page (the operator guide says what
                        // that asks of the disk).
                        conn.execute("PRAGMA cache_size = -16384").await?;
                        conn.execute("PRAGMA mmap_size = 1073741824").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let db = Self { pool, dialect };
        db.migrate().await?;
        Ok(db)
    }

    async fn migrate(&self) -> Result<(), DbError> {
        let migrator = match self.dialect {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        };
        // SQLite has no advisory lock: a node that loses the race to another
        // process migrating the same file sees the migration applied on retry.
        let mut attempts = 0;
        loop {
            match migrator.run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(e) if self.dialect == Dialect::Sqlite && attempts < 5 => {
                    attempts += 1;
                    tracing::warn!(error = %e, "migration raced with another node, retrying");
                    tokio::time::sleep(Duration::from_millis(200 * attempts)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub async fn begin(&self) -> Result<Transaction<'static, Any>, DbError> {
        Ok(self.pool.begin().await?)
    }

    /// A transaction that will write. On SQLite it takes the write lock at
    /// once (`BEGIN IMMEDIATE`), so that a transaction that reads before it
    /// writes waits for other writers instead of failing on commit.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Any>, DbError> {
        let statement = match self.dialect {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        };
        // sqlx 0.8's SQLite driver awaits once more after `BEGIN IMMEDIATE`:
        // a request cancelled at that point (its client went away) would put
        // the connection back in the pool still holding the write lock. A
        // task of its own runs the begin to its end; a transaction nobody
        // waits for any more is then dropped, which rolls it back.
        let pool = self.pool.clone();
        tokio::spawn(async move { pool.begin_with(statement).await })
            .await
            .map_err(|e| DbError::Config(format!("a transaction could not begin: {e}")))?
            .map_err(DbError::from)
    }

    pub async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<Any>, DbError> {
        Ok(self.pool.acquire().await?)
    }

    /// Whether the database answers; for readiness probes.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
