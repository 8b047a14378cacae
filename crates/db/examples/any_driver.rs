//! What sqlx's `Any` driver costs: the same SQL text, on the same database
//! file (or PostgreSQL database), through `Any` — as every repository runs
//! it — and through the engine's own driver, interleaved in one run.
//!
//! Two statements: the 4 KiB GET's object lookup (one row by bucket and key,
//! the shape of the five statements a small GET runs), and a listing page of
//! 1,000 rows (where a per-value cost would show). Run by
//! `scripts/bench-any-driver`; the numbers and the decision they support are
//! in docs/PERFORMANCE.md.
//!
//! ```sh
//! cargo run --release -p nuage-db --example any_driver [-- ROUNDS]
//! NUAGE_BENCH_DATABASE_URL=postgres://… cargo run --release -p nuage-db --example any_driver
//! ```

use std::time::{Duration, Instant};

use nuage_db::repo::identity::{self, OrgRow};
use nuage_db::repo::storage::{self, BucketRow, OBJECT_COLUMNS, ObjectRow};
use nuage_db::{Db, Dialect};
use sqlx::{Connection, Database, Executor, PgConnection, SqliteConnection};

const OBJECTS: usize = 20_000;
const LOOKUPS: usize = 5_000;
const PAGES: usize = 100;
const PAGE: usize = 1_000;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = std::env::args().nth(1).map_or(Ok(5), |r| r.parse())?;
    let folder = tempfile::tempdir()?;
    let url = std::env::var("NUAGE_BENCH_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| format!("sqlite://{}/any.db?mode=rwc", folder.path().display()));
    let db = Db::connect(&url, 1).await?;
    fill(&db).await?;
    let mut any = db.acquire().await?;
    let lookup = format!(
        "SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = $1 AND key = $2 AND is_latest = 1"
    );
    let page = format!(
        "SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = $1 AND key > $2 AND is_latest = 1 \
         ORDER BY key LIMIT {PAGE}"
    );
    println!(
        "{:?}, {OBJECTS} objects; {rounds} rounds of {LOOKUPS} lookups and {PAGES} pages of {PAGE} rows, each driver in turn",
        db.dialect()
    );
    let (mut any_lookup, mut own_lookup, mut any_page, mut own_page) =
        (vec![], vec![], vec![], vec![]);
    match db.dialect() {
        Dialect::Sqlite => {
            let mut own = SqliteConnection::connect(&url).await?;
            for pragma in [
                "PRAGMA cache_size = -16384",
                "PRAGMA mmap_size = 1073741824",
            ] {
                own.execute(pragma).await?;
            }
            for _ in 0..rounds {
                any_lookup.push(timed(&mut *any, &lookup, LOOKUPS, 1, spread_key).await?);
                own_lookup.push(timed(&mut own, &lookup, LOOKUPS, 1, spread_key).await?);
                any_page.push(timed(&mut *any, &page, PAGES, PAGE, page_start).await?);
                own_page.push(timed(&mut own, &page, PAGES, PAGE, page_start).await?);
            }
        }
        Dialect::Postgres => {
            let mut own = PgConnection::connect(&url).await?;
            for _ in 0..rounds {
                any_lookup.push(timed(&mut *any, &lookup, LOOKUPS, 1, spread_key).await?);
                own_lookup.push(timed(&mut own, &lookup, LOOKUPS, 1, spread_key).await?);
                any_page.push(timed(&mut *any, &page, PAGES, PAGE, page_start).await?);
                own_page.push(timed(&mut own, &page, PAGES, PAGE, page_start).await?);
            }
        }
    }
    report("object lookup (one row)", LOOKUPS, &any_lookup, &own_lookup);
    report("listing page (1,000 rows)", PAGES, &any_page, &own_page);
    Ok(())
}

/// One organisation, one bucket, `OBJECTS` latest versions.
async fn fill(db: &Db) -> Result<(), Box<dyn std::error::Error>> {
    let mut tx = db.begin_write().await?;
    identity::insert_org(
        &mut tx,
        &OrgRow {
            id: "org-bench".into(),
            name: "Bench".into(),
            kind: "company".into(),
            siret: None,
            vat_number: None,
            country: "FR".into(),
            require_totp: 0,
            created_at: 0,
        },
    )
    .await?;
    storage::insert_bucket(
        &mut tx,
        &BucketRow {
            name: "bench".into(),
            org_id: "org-bench".into(),
            region: "fr-par".into(),
            created_at: 0,
            versioning: None,
            tagging: None,
            cors: None,
            lifecycle: None,
            website: None,
            object_lock: None,
            policy: None,
            public_access_block: None,
            ownership: None,
            acl: None,
        },
    )
    .await?;
    for i in 0..OBJECTS {
        storage::insert_object(
            &mut tx,
            &ObjectRow {
                id: format!("object-{i:06}"),
                bucket: "bench".into(),
                key: key(i),
                version_id: "null".into(),
                is_latest: 1,
                delete_marker: 0,
                size: 4096,
                etag: "\"0123456789abcdef0123456789abcdef\"".into(),
                created_at: 1_700_000_000_000 + i as i64,
                headers: r#"{"content-type":"application/octet-stream"}"#.into(),
                tags: "[]".into(),
                checksum: None,
                segments: format!(r#"[{{"blob":"blob-{i:06}","size":4096}}]"#),
                sse_c: None,
                lock_mode: None,
                lock_until: None,
                legal_hold: 0,
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn key(i: usize) -> String {
    format!("photos/2026/{:04}/IMG_{i:06}.jpg", i % 97)
}

/// The `n`th key looked up: spread over the bucket.
fn spread_key(n: usize) -> String {
    key(n * 7919 % OBJECTS)
}

/// Where the `n`th page starts: a folder, so that a page is full.
fn page_start(n: usize) -> String {
    format!("photos/2026/{:04}/", n % 90)
}

/// Runs `sql` `statements` times, bound to the bucket and to `second(n)`;
/// each must read `rows` object rows.
async fn timed<DB, C>(
    conn: &mut C,
    sql: &str,
    statements: usize,
    rows: usize,
    second: impl Fn(usize) -> String,
) -> Result<Duration, sqlx::Error>
where
    DB: Database,
    for<'e> &'e mut C: Executor<'e, Database = DB>,
    for<'q> <DB as Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    ObjectRow: for<'r> sqlx::FromRow<'r, DB::Row>,
{
    let start = Instant::now();
    for n in 0..statements {
        let read: Vec<ObjectRow> = sqlx::query_as(sql)
            .bind("bench")
            .bind(second(n))
            .fetch_all(&mut *conn)
            .await?;
        assert_eq!(read.len(), rows, "every statement reads its rows");
    }
    Ok(start.elapsed())
}

/// The median of each driver's rounds, per statement, and their ratio.
fn report(what: &str, statements: usize, any: &[Duration], own: &[Duration]) {
    let median = |runs: &[Duration]| {
        let mut runs = runs.to_vec();
        runs.sort();
        runs[runs.len() / 2].as_secs_f64() * 1e6 / statements as f64
    };
    let (any, own) = (median(any), median(own));
    println!(
        "{what}: Any {any:.1} µs, the engine's own driver {own:.1} µs per statement; \
         Any costs {:.1} µs more (×{:.2})",
        any - own,
        any / own
    );
}
