//! A fresh metadata database for one test: a SQLite file, or, when
//! `NUAGE_TEST_DATABASE_URL` names a PostgreSQL server, a new database on
//! it, dropped by `drop_database`. The repository tests (crates/db/tests)
//! and the service tests (crates/service/tests, through `#[path]`) share it.

use nuage_db::Db;
use sqlx::Connection;

pub struct TestDb {
    pub url: String,
    admin: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl TestDb {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        match std::env::var("NUAGE_TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            Some(admin) => {
                let name = format!("nuage_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create database");
                let (base, _) = admin.rsplit_once('/').expect("admin URL");
                Self {
                    url: format!("{base}/{name}"),
                    admin: Some((admin, name)),
                    _dir: dir,
                }
            }
            None => Self {
                url: format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("nuage.db").display()
                ),
                admin: None,
                _dir: dir,
            },
        }
    }

    /// A node's connection pool, the migrations applied.
    pub async fn node(&self) -> Db {
        Db::connect(&self.url, 8).await.expect("open the database")
    }

    pub async fn drop_database(self) {
        if let Some((admin, name)) = &self.admin {
            let mut conn = sqlx::PgConnection::connect(admin).await.expect("connect");
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await
                .expect("drop database");
        }
    }
}
