//! Benchmark of a billing run, run by `scripts/bench-billing` (not a test:
//! timings never decide a pass or a fail).
//!
//! `cargo run --release --example bench_billing [DATABASE_URL]`
//!
//! It builds the real server in-process (`Application::build` on port 0:
//! migrations, master key, the house provider and its three published
//! offers), then, with the test build's clock frozen on 2026-09-30 at noon
//! (`Application::hooks`; examples are built with the package's
//! dev-dependencies, which turn the `test-hooks` feature on), creates 10,000
//! customer organisations (`Platform::create_org`) and orders one house
//! offer for each (`Catalogue::order`, the three offers in turn): the real
//! use cases write the subscriptions, their events (ordered, provisioned:
//! active), the buckets, the S3 keys and the quotas, all dated before
//! October. The clock then runs again.
//!
//! The metering is written in bulk, as the recorder would have written it
//! during October 2026 (not part of the measured figure, timed apart):
//! 10,000,000 rows of `usage_records` spread evenly over the buckets and the
//! month's 744 hours (1,000 per bucket: one or two per bucket and hour), ids
//! UUIDv7 of their `recorded_at`, which lies within their hour; and 25 rows
//! of `storage_deltas` per bucket (5 on 30 September, 20 during October;
//! `org_storage` is set to their sums). Multi-row `INSERT`s in large
//! transactions, on a connection of its own (SQLite: `synchronous = OFF`
//! for the load only; PostgreSQL: two connections at once,
//! `synchronous_commit = off`). On PostgreSQL the load is followed by
//! `VACUUM ANALYZE`, what autovacuum would do on its own a minute later;
//! SQLite gets no `ANALYZE`, as the server never runs one.
//!
//! Then, through the server's own pool, in this order:
//!
//! 1. the machine's limit for reading the data once: three full scans
//!    `SELECT COUNT(*), SUM(class_a) FROM usage_records` (the median is the
//!    baseline);
//! 2. `Billing::run_billing(root, Period::month(2026, 10))`, end to end —
//!    the measured figure: 10,000 invoices — and its phases, read from what
//!    it wrote (the run's `started_at`, the first and last invoice's
//!    `issued_at`, the end of the call);
//! 3. each query a run makes, alone, with the run's own cut:
//!    `repo::late_usage`, `subscription_histories`, `bytes_per_bucket_at`,
//!    `storage_changes_between`, `usage_per_bucket`, `invoices_of_run`; and
//!    `late_usage` again as it is in a run that follows another one;
//! 4. the machine's limit for issuing: as many write transactions
//!    (`Db::begin_write`, one row of an invoice's size, commit) as the run
//!    issued invoices, in a scratch table dropped afterwards; then the
//!    same rows `billing::ISSUE_BATCH` (50) per transaction, as a run
//!    issues its invoices.
//!
//! The query plans of the queries over `usage_records` go to stderr and
//! into the JSON line.
//!
//! The database is the argument, or `NUAGE_BENCH_DATABASE_URL`, or a fresh
//! SQLite file in a temporary folder. It must hold no subscription.
//! `NUAGE_BENCH_RECORDS` (10000000), `NUAGE_BENCH_SUBSCRIPTIONS` (10000),
//! `NUAGE_BENCH_DELTAS` (storage changes per bucket, 25; at least 5),
//! `NUAGE_BENCH_SETUP_TASKS` (orders placed at once, 4) and
//! `NUAGE_BENCH_COMMITS` (the issuing baseline's transactions, as many as
//! invoices) change the sizes; `NUAGE_BENCH_DATA_DIR` names a data folder
//! that is kept afterwards (to look at the plans).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nuage::config::{Config, DatabaseConfig};
use nuage::server::Application;
use nuage_db::repo::billing as repo;
use nuage_domain::billing::Period;
use nuage_domain::ids::TokenId;
use nuage_market::Catalogue;
use nuage_service::accounts::NewOrg;
use nuage_service::{Platform, Principal, RequestMeta};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sqlx::{AnyConnection, Connection, Row};

const SEED: u64 = 20_261_031;
const HOUR_MS: i64 = 3_600_000;
/// Rows per `INSERT` statement, and statements per transaction, in the load.
const ROWS_PER_INSERT: usize = 1000;
const INSERTS_PER_TRANSACTION: usize = 200;
/// Rows per transaction in the batched write baseline: as many as a run
/// issues invoices per transaction.
const BATCH: usize = nuage_billing::ISSUE_BATCH;

fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{name} must be a number, not {v:?}")),
        Err(_) => Ok(default),
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A UUIDv7 of the instant `ms`, its random bits from `rng` (what the
/// recorder's `Uuid::now_v7()` would have given then).
fn uuid_at(rng: &mut StdRng, ms: i64) -> uuid::Uuid {
    let random: [u8; 10] = rng.r#gen();
    uuid::Builder::from_unix_timestamp_millis(ms as u64, &random).into_uuid()
}

/// The machine's CPU time so far, busy and in all, in ticks (Linux's
/// `/proc/stat`), to tell how busy the machine was during a step.
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    let total: u64 = ticks.iter().take(8).sum();
    Some((total - idle, total))
}

/// The share of the machine's CPU time that was busy between two readings,
/// in percent.
fn busy_percent(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> Option<f64> {
    let ((b0, t0), (b1, t1)) = (before?, after?);
    (t1 > t0).then(|| (b1 - b0) as f64 * 100.0 / (t1 - t0) as f64)
}

/// A customer and the bucket its subscription holds.
#[derive(Clone)]
struct Customer {
    org: String,
    bucket: String,
}

/// The SIRET every organisation of the bench states.
const SIRET: &str = "73282932000074";

/// A complete legal identity, so that runs issue every invoice.
fn identity() -> nuage_domain::legal_identity::LegalIdentity {
    nuage_domain::legal_identity::LegalIdentity {
        address: Some(nuage_domain::legal_identity::PostalAddress {
            line1: "1 rue de la Paix".into(),
            line2: None,
            postcode: "75002".into(),
            city: "Paris".into(),
            country: "FR".into(),
        }),
        legal_form: Some("SAS".into()),
        share_capital: Some(rust_decimal::Decimal::from(10_000)),
        rcs: Some("RCS Paris".into()),
        ..Default::default()
    }
}

/// Creates the customers and orders one house offer for each, with the
/// clock frozen at `at`: `tasks` at once.
async fn order_all(
    app: &Application,
    catalogue: &Catalogue,
    platform: &Platform,
    engine: &str,
    count: usize,
    tasks: usize,
    at: i64,
) -> anyhow::Result<Vec<Customer>> {
    let mut conn = platform.db().acquire().await?;
    let house = catalogue.house().to_string();
    let offers: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, published FROM offers WHERE provider_id = $1 AND published IS NOT NULL ORDER BY id",
    )
    .bind(&house)
    .fetch_all(&mut *conn)
    .await?;
    drop(conn);
    if offers.is_empty() {
        bail!("the house has no published offer");
    }
    for (id, doc) in &offers {
        let doc: Value = serde_json::from_str(doc)?;
        eprintln!(
            "bench: {engine}: house offer {id}: {} {}",
            doc["name"], doc["price"]
        );
    }
    let offers: Vec<String> = offers.into_iter().map(|(id, _)| id).collect();
    // The house's legal identity: without it, a run holds every invoice.
    {
        let root = Principal::Root {
            token: TokenId::new(),
        };
        let meta = RequestMeta::local();
        let house = catalogue.house();
        platform
            .set_org_tax(&root, &meta, house, Some("FR76411050487"), Some("FR"))
            .await?;
        platform
            .set_legal_identity(&root, &meta, house, Some(SIRET), &identity())
            .await?;
    }
    app.hooks().settable_clock().set(Some(at));
    let tasks = tasks.clamp(1, count.max(1));
    let mut handles = Vec::new();
    for t in 0..tasks {
        let catalogue = catalogue.clone();
        let platform = platform.clone();
        let offers = offers.clone();
        let engine = engine.to_owned();
        handles.push(tokio::spawn(async move {
            let root = Principal::Root {
                token: TokenId::new(),
            };
            let meta = RequestMeta::local();
            let mut out = Vec::new();
            for i in (t..count).step_by(tasks) {
                let org = platform
                    .create_org(
                        &root,
                        &meta,
                        NewOrg {
                            name: format!("Client {i:05}"),
                            kind: "company".into(),
                            siret: Some(SIRET.into()),
                            vat_number: None,
                            country: None,
                        },
                    )
                    .await?;
                platform
                    .set_legal_identity(&root, &meta, org.id, Some(SIRET), &identity())
                    .await?;
                let outcome = catalogue
                    .order(&root, &meta, org.id, &offers[i % offers.len()], None)
                    .await?;
                let bucket = outcome
                    .subscription
                    .resources
                    .and_then(|r| r.buckets.into_iter().next())
                    .context("a house storage order provisions a bucket")?;
                out.push((
                    i,
                    Customer {
                        org: org.id.to_string(),
                        bucket,
                    },
                ));
                if t == 0 && (i / tasks) % 1000 == 999 {
                    eprintln!("bench: {engine}: {} orders placed", i + 1);
                }
            }
            anyhow::Ok(out)
        }));
    }
    let mut all = Vec::with_capacity(count);
    for h in handles {
        all.extend(h.await??);
    }
    app.hooks().settable_clock().set(None);
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, c)| c).collect())
}

/// Runs one statement on a connection of the load, without keeping it
/// prepared (each multi-row `INSERT` is a new text).
async fn exec(conn: &mut AnyConnection, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::query(sql)
        .persistent(false)
        .execute(conn)
        .await
        .map(|_| ())
}

/// A connection of its own for the bulk load, set for speed.
async fn load_connection(url: &str, engine: &str) -> anyhow::Result<AnyConnection> {
    let mut conn = AnyConnection::connect(url).await?;
    let settings: &[&str] = if engine == "sqlite" {
        &[
            "PRAGMA busy_timeout = 30000",
            "PRAGMA synchronous = OFF",
            "PRAGMA cache_size = -2000000",
            "PRAGMA temp_store = MEMORY",
        ]
    } else {
        &["SET synchronous_commit = off"]
    };
    for s in settings {
        exec(&mut conn, s).await?;
    }
    Ok(conn)
}

/// Runs `INSERT`s of many rows each, `INSERTS_PER_TRANSACTION` per
/// transaction; `row(k, sql)` writes the k-th row's values.
async fn insert_rows(
    conn: &mut AnyConnection,
    head: &str,
    rows: std::ops::Range<usize>,
    mut row: impl FnMut(usize, &mut String),
) -> anyhow::Result<()> {
    let mut sql = String::with_capacity(ROWS_PER_INSERT * 200);
    let mut statements = 0;
    exec(&mut *conn, "BEGIN").await?;
    let mut k = rows.start;
    while k < rows.end {
        let end = (k + ROWS_PER_INSERT).min(rows.end);
        sql.clear();
        sql.push_str(head);
        for j in k..end {
            if j > k {
                sql.push(',');
            }
            row(j, &mut sql);
        }
        exec(&mut *conn, &sql).await?;
        statements += 1;
        if statements % INSERTS_PER_TRANSACTION == 0 {
            exec(&mut *conn, "COMMIT").await?;
            exec(&mut *conn, "BEGIN").await?;
        }
        k = end;
    }
    exec(&mut *conn, "COMMIT").await?;
    Ok(())
}

/// The usage records of a month: record `r` is bucket `r % S`'s `r / S`-th,
/// so each bucket's records spread evenly over the month's hours (one or
/// two per hour at 1,000 per bucket); written within their hour.
struct UsagePlan {
    customers: Vec<Customer>,
    records: usize,
    start: i64,
    hours: i64,
}

impl UsagePlan {
    fn per_bucket(&self) -> usize {
        self.records.div_ceil(self.customers.len())
    }

    fn write(&self, rng: &mut StdRng, r: usize, sql: &mut String) {
        let s = self.customers.len();
        let (b, j) = (r % s, r / s);
        let c = &self.customers[b];
        let hour = self.start + (j as i64 * self.hours / self.per_bucket() as i64) * HOUR_MS;
        let recorded_at = hour + (b as i64 * 3_000_000 / s as i64) + (j as i64 % 4) * 100_000 + 1;
        let id = uuid_at(rng, recorded_at);
        let class_a: i64 = rng.gen_range(0..200);
        let class_b: i64 = rng.gen_range(0..5000);
        let egress: i64 = rng.gen_range(0..200_000_000);
        let exit: i64 = if rng.gen_ratio(1, 50) {
            rng.gen_range(0..50_000_000)
        } else {
            0
        };
        let _ = write!(
            sql,
            "('{id}','{}','{}',{hour},{class_a},{class_b},{egress},{exit},{recorded_at})",
            c.org, c.bucket
        );
    }
}

/// Writes the month's usage records with `workers` connections at once.
async fn load_usage(
    url: &str,
    engine: &str,
    plan: std::sync::Arc<UsagePlan>,
    workers: usize,
) -> anyhow::Result<()> {
    let total = plan.records;
    // Whole statements per worker: each statement's rows come from a seed
    // of their own, so the data is the same whatever the number of workers.
    let per_worker = total.div_ceil(workers).div_ceil(ROWS_PER_INSERT) * ROWS_PER_INSERT;
    let mut handles = Vec::new();
    for w in 0..workers {
        let plan = plan.clone();
        let url = url.to_owned();
        let engine = engine.to_owned();
        handles.push(tokio::spawn(async move {
            let mut conn = load_connection(&url, &engine).await?;
            let mut rng = StdRng::seed_from_u64(SEED);
            let from = (w * per_worker).min(total);
            let to = ((w + 1) * per_worker).min(total);
            let started = Instant::now();
            // In slices, to say how far it is.
            let slice = 1_000_000;
            let mut k = from;
            while k < to {
                let end = (k + slice).min(to);
                insert_rows(
                    &mut conn,
                    "INSERT INTO usage_records (id, org_id, bucket, hour, class_a, class_b, egress_bytes, exit_egress_bytes, recorded_at) VALUES ",
                    k..end,
                    |r, sql| {
                        if r % ROWS_PER_INSERT == 0 {
                            rng = StdRng::seed_from_u64(SEED + 1000 + (r / ROWS_PER_INSERT) as u64);
                        }
                        plan.write(&mut rng, r, sql)
                    },
                )
                .await?;
                k = end;
                eprintln!(
                    "bench: {engine}: loader {w}: {} of {} usage records, {:.0} s",
                    k - from,
                    to - from,
                    secs(started.elapsed())
                );
            }
            if engine == "sqlite" {
                exec(&mut conn, "PRAGMA wal_checkpoint(TRUNCATE)").await?;
            }
            conn.close().await?;
            anyhow::Ok(())
        }));
    }
    for h in handles {
        h.await??;
    }
    Ok(())
}

/// Storage changes: `per_bucket` per bucket, five on the day before the
/// month (what it holds when the month starts), the rest during it; bytes
/// and objects never below zero. Then `org_storage` holds their sums.
async fn load_storage(
    url: &str,
    engine: &str,
    customers: &[Customer],
    per_bucket: usize,
    month: Period,
) -> anyhow::Result<usize> {
    let mut rng = StdRng::seed_from_u64(SEED + 2);
    let mut rows: Vec<String> = Vec::with_capacity(customers.len() * per_bucket);
    let before = 5.min(per_bucket);
    for c in customers {
        let (mut bytes, mut objects) = (0i64, 0i64);
        let mut times: Vec<i64> = (0..before)
            .map(|k| month.start_ms() - 11 * HOUR_MS + k as i64 * 2 * HOUR_MS)
            .chain(
                (before..per_bucket).map(|_| rng.gen_range(month.start_ms()..month.end_ms() - 1)),
            )
            .collect();
        times.sort_unstable();
        for (k, at) in times.into_iter().enumerate() {
            let grow = k < before || rng.gen_bool(0.7) || objects == 0;
            let (db, dobj) = if grow {
                (
                    rng.gen_range(1_000_000..2_000_000_000i64),
                    rng.gen_range(1..100i64),
                )
            } else {
                let o = rng.gen_range(1..=objects);
                (-(bytes * o / objects), -o)
            };
            bytes += db;
            objects += dobj;
            let id = uuid_at(&mut rng, at);
            rows.push(format!(
                "('{id}','{}','{}',{at},{db},{dobj})",
                c.org, c.bucket
            ));
        }
    }
    let mut conn = load_connection(url, engine).await?;
    insert_rows(
        &mut conn,
        "INSERT INTO storage_deltas (id, org_id, bucket, at, delta_bytes, delta_objects) VALUES ",
        0..rows.len(),
        |k, sql| sql.push_str(&rows[k]),
    )
    .await?;
    exec(
        &mut conn,
        "UPDATE org_storage SET \
         bytes = (SELECT COALESCE(SUM(d.delta_bytes), 0) FROM storage_deltas d WHERE d.org_id = org_storage.org_id), \
         objects = (SELECT COALESCE(SUM(d.delta_objects), 0) FROM storage_deltas d WHERE d.org_id = org_storage.org_id)",
    )
    .await?;
    conn.close().await?;
    Ok(rows.len())
}

/// The plan the engine picks for `sql`, one line per node.
async fn plan_of(pool: &sqlx::AnyPool, engine: &str, sql: &str) -> anyhow::Result<Vec<String>> {
    let explain = if engine == "sqlite" {
        format!("EXPLAIN QUERY PLAN {sql}")
    } else {
        format!("EXPLAIN {sql}")
    };
    let rows = sqlx::raw_sql(&explain).fetch_all(pool).await?;
    rows.iter()
        .map(|r| {
            Ok(if engine == "sqlite" {
                r.try_get::<String, _>(3)?
            } else {
                r.try_get::<String, _>(0)?
            })
        })
        .collect()
}

/// One timed step, for the table.
struct Step {
    what: String,
    seconds: f64,
    rows: Option<i64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let records = env_usize("NUAGE_BENCH_RECORDS", 10_000_000)?;
    let subscriptions = env_usize("NUAGE_BENCH_SUBSCRIPTIONS", 10_000)?.max(1);
    let deltas = env_usize("NUAGE_BENCH_DELTAS", 25)?.max(5);
    let setup_tasks = env_usize("NUAGE_BENCH_SETUP_TASKS", 4)?.max(1);
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("NUAGE_BENCH_DATABASE_URL").ok())
        .filter(|u| !u.is_empty());
    let (_temp, data_dir) = match std::env::var("NUAGE_BENCH_DATA_DIR") {
        Ok(dir) => (None, PathBuf::from(dir)),
        Err(_) => {
            let t = tempfile::Builder::new()
                .prefix("nuage-bench-billing.")
                .tempdir()?;
            let p = t.path().to_owned();
            (Some(t), p)
        }
    };
    let local = SocketAddr::from(([127, 0, 0, 1], 0));
    let defaults = Config::default();
    let config = Config {
        data_dir: data_dir.clone(),
        listen: local,
        s3_listen: local,
        database: DatabaseConfig {
            url: url.clone(),
            max_connections: defaults.database.max_connections,
        },
        billing: nuage::config::BillingConfig {
            automatic: false,
            ..defaults.billing.clone()
        },
        ..defaults
    };
    let db_url = config.database_url();
    let engine = if db_url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    };
    let app = Application::build(config, None).await?;
    let catalogue: Catalogue = app.catalogue().clone();
    let platform = app.platform().clone();
    let pool = platform.db().pool().clone();
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM subscriptions")
        .fetch_one(&pool)
        .await?;
    if existing > 0 {
        bail!("the database already has {existing} subscriptions: give an empty one");
    }
    let version: String = if engine == "sqlite" {
        sqlx::query_scalar("SELECT sqlite_version()")
            .fetch_one(&pool)
            .await?
    } else {
        sqlx::query_scalar("SELECT version()")
            .fetch_one(&pool)
            .await?
    };
    let month = Period::month(2026, 10)?;
    let hours = month.length_ms() / HOUR_MS;

    // --- set-up: the real use cases, then the metering in bulk ----------------------
    eprintln!(
        "bench: {engine}: {subscriptions} organisations and house orders, {setup_tasks} at a time, the clock on 2026-09-30T12:00Z"
    );
    let t = Instant::now();
    let customers = order_all(
        &app,
        &catalogue,
        &platform,
        engine,
        subscriptions,
        setup_tasks,
        month.start_ms() - 12 * HOUR_MS,
    )
    .await?;
    let orders_seconds = secs(t.elapsed());
    eprintln!("bench: {engine}: orders placed in {orders_seconds:.1} s");

    let t = Instant::now();
    let delta_rows = load_storage(&db_url, engine, &customers, deltas, month).await?;
    let deltas_seconds = secs(t.elapsed());
    eprintln!("bench: {engine}: {delta_rows} storage changes in {deltas_seconds:.1} s");

    let plan = std::sync::Arc::new(UsagePlan {
        customers: customers.clone(),
        records,
        start: month.start_ms(),
        hours,
    });
    let workers = if engine == "sqlite" { 1 } else { 2 };
    eprintln!(
        "bench: {engine}: loading {records} usage records ({} per bucket), {workers} connection(s)",
        plan.per_bucket()
    );
    let t = Instant::now();
    load_usage(&db_url, engine, plan, workers).await?;
    let usage_seconds = secs(t.elapsed());
    let t = Instant::now();
    if engine == "postgres" {
        sqlx::raw_sql("VACUUM ANALYZE").execute(&pool).await?;
    }
    let vacuum_seconds = secs(t.elapsed());
    let loaded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_records")
        .fetch_one(&pool)
        .await?;
    if loaded != records as i64 {
        bail!("{loaded} usage records loaded, {records} meant");
    }
    let size_mb: f64 = if engine == "sqlite" {
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&pool)
            .await?;
        let page: i64 = sqlx::query_scalar("PRAGMA page_size")
            .fetch_one(&pool)
            .await?;
        (pages * page) as f64 / 1e6
    } else {
        let bytes: i64 =
            sqlx::query_scalar("SELECT CAST(pg_total_relation_size('usage_records') AS BIGINT)")
                .fetch_one(&pool)
                .await?;
        bytes as f64 / 1e6
    };
    eprintln!(
        "bench: {engine}: usage records loaded in {usage_seconds:.1} s ({:.0} rows/s){}; {} {size_mb:.0} MB",
        records as f64 / usage_seconds,
        if engine == "postgres" {
            format!(", VACUUM ANALYZE {vacuum_seconds:.1} s")
        } else {
            String::new()
        },
        if engine == "sqlite" {
            "database file"
        } else {
            "usage_records with its indexes"
        },
    );

    // The plans of the queries over the records, as a run's would be (the
    // SQL of `repo::usage_per_bucket` and `repo::late_usage`, with a run's
    // values written in).
    let cut_guess = wall_ms();
    let sums = "CAST(SUM(class_a) AS BIGINT) AS class_a, CAST(SUM(class_b) AS BIGINT) AS class_b, \
         CAST(SUM(egress_bytes) AS BIGINT) AS egress_bytes, CAST(SUM(exit_egress_bytes) AS BIGINT) AS exit_egress_bytes";
    let explained = [
        (
            "usage_per_bucket",
            format!(
                "SELECT org_id, bucket, CAST(0 AS BIGINT) AS hour, {sums} FROM usage_records \
                 WHERE hour >= {} AND hour < {} AND recorded_at < {cut_guess} AND ('' = '' OR org_id = '') \
                 GROUP BY org_id, bucket",
                month.start_ms(),
                month.end_ms()
            ),
        ),
        (
            "late_usage (first run)",
            format!(
                "SELECT org_id, bucket, hour, {sums} FROM usage_records \
                 WHERE hour < {} AND recorded_at >= {} AND recorded_at < {cut_guess} AND ('' = '' OR org_id = '') \
                 GROUP BY org_id, bucket, hour",
                month.start_ms(),
                i64::MIN
            ),
        ),
        (
            "baseline scan",
            "SELECT COUNT(*), CAST(SUM(class_a) AS BIGINT) FROM usage_records".to_owned(),
        ),
    ];
    let mut plans = serde_json::Map::new();
    for (name, sql) in &explained {
        let lines = plan_of(&pool, engine, sql).await?;
        eprintln!("bench: {engine}: plan of {name}:");
        for l in &lines {
            eprintln!("bench:   {l}");
        }
        plans.insert((*name).to_owned(), json!(lines));
    }

    // --- the machine's limit for reading the records once --------------------------
    let mut scans = Vec::new();
    let mut class_a_total = 0i64;
    for _ in 0..3 {
        let t = Instant::now();
        let (n, a): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), CAST(SUM(class_a) AS BIGINT) FROM usage_records")
                .fetch_one(&pool)
                .await?;
        scans.push(secs(t.elapsed()));
        if n != records as i64 {
            bail!("the scan counted {n} records");
        }
        class_a_total = a;
    }
    let scan = median(&scans);
    eprintln!("bench: {engine}: full scans {scans:?} s");

    // --- the run ---------------------------------------------------------------------
    let root = Principal::Root {
        token: TokenId::new(),
    };
    let meta = RequestMeta::local();
    eprintln!("bench: {engine}: run_billing 2026-10");
    let idle_before = cpu_ticks();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let busy_before = busy_percent(idle_before, cpu_ticks());
    let ticks = cpu_ticks();
    let call_ms = wall_ms();
    let t = Instant::now();
    let summary = app.billing().run_billing(&root, &meta, month).await?;
    let run_seconds = secs(t.elapsed());
    let end_ms = wall_ms();
    let busy_during = busy_percent(ticks, cpu_ticks());
    let percent = |p: Option<f64>| p.map_or("?".to_owned(), |p| format!("{p:.0} %"));
    eprintln!(
        "bench: {engine}: run_billing took {run_seconds:.2} s: {} invoices, {} € excl. VAT",
        summary.invoices, summary.net
    );
    let (run_id, started_at, cut_at, completed_at): (String, i64, i64, Option<i64>) =
        sqlx::query_as(
            "SELECT id, started_at, cut_at, completed_at FROM billing_runs WHERE period_start = $1",
        )
        .bind(month.start_ms())
        .fetch_one(&pool)
        .await?;
    let (first_issued, last_issued, issued): (i64, i64, i64) = sqlx::query_as(
        "SELECT MIN(issued_at), MAX(issued_at), COUNT(*) FROM invoices WHERE run_id = $1",
    )
    .bind(&run_id)
    .fetch_one(&pool)
    .await?;
    if issued != subscriptions as i64 || summary.invoices != subscriptions {
        bail!(
            "the run issued {issued} invoices ({} in its summary) for {subscriptions} subscriptions",
            summary.invoices
        );
    }
    // An invoice's average size, for the issuing baseline's rows.
    let doc_bytes: i64 = sqlx::query_scalar(
        "SELECT CAST(SUM(LENGTH(document)) AS BIGINT) FROM invoices WHERE run_id = $1",
    )
    .bind(&run_id)
    .fetch_one(&pool)
    .await?;
    let doc_bytes = doc_bytes / issued.max(1);
    let ms = |a: i64, b: i64| (b - a) as f64 / 1000.0;
    let phases = [
        Step {
            what: "  run recorded (cut, audited) → first invoice: reads + rating".into(),
            seconds: ms(started_at, first_issued),
            rows: None,
        },
        Step {
            what: "  issuing: first → last invoice (`issued_at`)".into(),
            seconds: ms(first_issued, last_issued),
            rows: Some(issued),
        },
        Step {
            what: "  last invoice → end of the call (invoices read back, run completed, audited)"
                .into(),
            seconds: ms(last_issued, end_ms),
            rows: None,
        },
    ];
    if started_at < call_ms - 1000 || completed_at.is_none() {
        bail!("the run started before the call or did not complete");
    }

    // --- each query of the run, alone, with the run's own cut ------------------------
    let mut alone = Vec::new();
    let mut conn = platform.db().acquire().await?;
    macro_rules! timed {
        ($what:expr, $call:expr) => {{
            let t = Instant::now();
            let rows = $call.await?.len() as i64;
            alone.push(Step {
                what: format!("  alone: {}", $what),
                seconds: secs(t.elapsed()),
                rows: Some(rows),
            });
        }};
    }
    timed!(
        "`late_usage` (first run: hour < start, written before the cut)",
        repo::late_usage(&mut conn, month.start_ms(), i64::MIN, cut_at, "")
    );
    timed!(
        "`subscription_histories`",
        repo::subscription_histories(&mut conn, month.start_ms(), month.end_ms(), "")
    );
    timed!(
        "`bytes_per_bucket_at` (start)",
        repo::bytes_per_bucket_at(&mut conn, month.start_ms(), "")
    );
    timed!(
        "`storage_changes_between`",
        repo::storage_changes_between(&mut conn, month.start_ms(), month.end_ms(), "")
    );
    timed!(
        "`usage_per_bucket`",
        repo::usage_per_bucket(&mut conn, month.start_ms(), month.end_ms(), cut_at, "")
    );
    timed!(
        "`invoices_of_run` (read back at the end)",
        repo::invoices_of_run(&mut conn, &run_id)
    );
    timed!(
        "`late_usage` as in a run after another (written since 2026-10-01T01:00Z)",
        repo::late_usage(
            &mut conn,
            month.start_ms(),
            month.start_ms() + HOUR_MS,
            cut_at,
            ""
        )
    );
    drop(conn);
    let reads: f64 = alone.iter().take(5).map(|s| s.seconds).sum();

    // --- the machine's limit for issuing: as many durable commits ------------------
    let commits = env_usize("NUAGE_BENCH_COMMITS", issued as usize)?;
    sqlx::raw_sql("CREATE TABLE bench_commits (id BIGINT PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&pool)
        .await?;
    let body = "x".repeat(doc_bytes.max(1) as usize);
    let t = Instant::now();
    for i in 0..commits {
        let mut tx = platform.db().begin_write().await?;
        sqlx::query("INSERT INTO bench_commits (id, body) VALUES ($1, $2)")
            .bind(i as i64)
            .bind(&body)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    let commit_seconds = secs(t.elapsed());
    // The same rows again, `BATCH` per transaction, as a run issues its
    // invoices.
    let t = Instant::now();
    for first in (0..commits).step_by(BATCH) {
        let mut tx = platform.db().begin_write().await?;
        for i in first..(first + BATCH).min(commits) {
            sqlx::query("INSERT INTO bench_commits (id, body) VALUES ($1, $2)")
                .bind((commits + i) as i64)
                .bind(&body)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    let batched_seconds = secs(t.elapsed());
    sqlx::raw_sql("DROP TABLE bench_commits")
        .execute(&pool)
        .await?;

    // --- report ------------------------------------------------------------------------
    let per_bucket = records.div_ceil(subscriptions);
    println!(
        "# bench_billing — {engine} ({version}): {records} usage records ({per_bucket} per bucket over {hours} hours), {subscriptions} house subscriptions for {subscriptions} organisations, {delta_rows} storage changes; period 2026-10"
    );
    println!(
        "# load (not measured): organisations and orders through the use cases in {orders_seconds:.1} s ({setup_tasks} at a time); usage records in {usage_seconds:.1} s ({:.0} rows/s){}; storage changes in {deltas_seconds:.1} s; {size_mb:.0} MB {}",
        records as f64 / usage_seconds,
        if engine == "postgres" {
            format!(", then VACUUM ANALYZE in {vacuum_seconds:.1} s")
        } else {
            String::new()
        },
        if engine == "sqlite" {
            "database file"
        } else {
            "of usage_records and its indexes"
        },
    );
    println!();
    println!("| what | seconds | rows | rows/s | ÷ full scan |");
    println!("|---|---|---|---|---|");
    let row = |what: &str, seconds: f64, rows: Option<i64>| {
        let (n, rate) = match rows {
            Some(n) => (n.to_string(), format!("{:.0}", n as f64 / seconds)),
            None => (String::new(), String::new()),
        };
        println!(
            "| {what} | {seconds:.3} | {n} | {rate} | {:.2} |",
            seconds / scan
        );
    };
    row(
        "baseline: full scan `SELECT COUNT(*), SUM(class_a) FROM usage_records` (median of 3)",
        scan,
        Some(records as i64),
    );
    row(
        &format!("baseline: {commits} write transactions of one {doc_bytes}-byte row each"),
        commit_seconds,
        Some(commits as i64),
    );
    row(
        &format!("baseline: the same rows, {BATCH} per write transaction (as a run issues)"),
        batched_seconds,
        Some(commits as i64),
    );
    row(
        "**`Billing::run_billing` 2026-10, end to end**",
        run_seconds,
        Some(records as i64),
    );
    for p in &phases {
        row(&p.what, p.seconds, p.rows);
    }
    for s in &alone {
        row(&s.what, s.seconds, s.rows);
    }
    println!();
    let target = run_seconds < 10.0;
    println!(
        "run_billing: {records} records, {subscriptions} subscriptions, {issued} invoices in {run_seconds:.2} s = {:.0} records/s = {:.2} × a full scan of the records ({scan:.2} s); the five reads alone {reads:.2} s = {:.2} × a full scan; issuing {:.2} s = {:.2} × the same number of bare rows written {BATCH} per transaction ({batched_seconds:.2} s; one per transaction: {commit_seconds:.2} s)",
        records as f64 / run_seconds,
        run_seconds / scan,
        reads / scan,
        phases[1].seconds,
        phases[1].seconds / batched_seconds * commits as f64 / issued.max(1) as f64,
    );
    println!(
        "invoices: {} € excl. VAT, {} € incl. VAT; class A requests metered {class_a_total}",
        summary.net, summary.gross
    );
    println!(
        "machine CPU busy (all {} cores): {} in the 2 s before the run, {} during it",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        percent(busy_before),
        percent(busy_during)
    );
    println!(
        "target (run under 10 s): {}",
        if target { "met" } else { "NOT met" }
    );
    let steps: Vec<Value> = phases
        .iter()
        .chain(alone.iter())
        .map(|s| json!({"what": s.what.trim(), "seconds": round3(s.seconds), "rows": s.rows}))
        .collect();
    let line = json!({
        "bench": "billing_run",
        "engine": engine,
        "version": version,
        "records": records,
        "subscriptions": subscriptions,
        "invoices": issued,
        "storage_changes": delta_rows,
        "seed": SEED,
        "load": {
            "orders_seconds": round3(orders_seconds),
            "usage_seconds": round3(usage_seconds),
            "storage_seconds": round3(deltas_seconds),
            "vacuum_seconds": round3(vacuum_seconds),
            "size_mb": size_mb.round(),
        },
        "baseline": {
            "full_scan_seconds": scans.iter().map(|s| round3(*s)).collect::<Vec<_>>(),
            "commits": commits,
            "commit_seconds": round3(commit_seconds),
            "batched_commit_seconds": round3(batched_seconds),
            "batch": BATCH,
        },
        "run_seconds": round3(run_seconds),
        "cpu_busy_percent": {"before": busy_before.map(|p| p.round()), "during": busy_during.map(|p| p.round())},
        "records_per_second": (records as f64 / run_seconds).round(),
        "steps": steps,
        "plans": plans,
        "ratios": {
            "run_over_full_scan": round3(run_seconds / scan),
            "reads_over_full_scan": round3(reads / scan),
            "issuing_over_batched_commits": round3(phases[1].seconds / batched_seconds * commits as f64 / issued.max(1) as f64),
        },
        "target_under_10s": target,
    });
    println!("{line}");
    platform.db().close().await;
    Ok(())
}
