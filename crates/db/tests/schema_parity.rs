//! The two migration sets, `migrations/sqlite` and `migrations/postgres`,
//! end with the same schema.
//!
//! `crates/db/schema.txt` describes that schema, normalised: one sorted line
//! per column (type class, null or not, default, place in the primary key),
//! named index, unique constraint and foreign key. The test migrates a fresh
//! SQLite database through `Db::connect` and compares what it ends with to
//! the file; when `NUAGE_TEST_DATABASE_URL` names a PostgreSQL server (an
//! admin URL, such as postgres://postgres@127.0.0.1:PORT/postgres), it does
//! the same in a database of its own, `nuage_schema_<uuid>`, dropped before
//! any comparison so that a failure leaves nothing behind. What only one
//! engine has, and why, is listed in `ENGINE_ONLY` below.
//!
//! A migration that changes the schema changes the file:
//!
//! ```sh
//! NUAGE_BLESS_SCHEMA=1 cargo test -p nuage-db --test schema_parity
//! ```
//!
//! rewrites it from SQLite (and, with `NUAGE_TEST_DATABASE_URL` set, still
//! checks PostgreSQL against what it wrote); the diff of the file then shows
//! the change for review.
//!
//! Left out: column order, collations (SQLite's default, BINARY, is what
//! PostgreSQL spells COLLATE "C"), index methods and sort orders, triggers,
//! functions, CHECK constraints, PostgreSQL's extended statistics, sqlx's
//! `_sqlx_migrations`, SQLite's internal tables and FTS5's shadow tables. Primary keys are told by the
//! place of each column in them, not by their index (PostgreSQL's
//! `<table>_pkey`, SQLite's `sqlite_autoindex_*`), and unique constraints as
//! `unique (columns)`, since the two engines name them differently.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use nuage_db::Db;
use sqlx::{Connection, PgConnection, Row, SqliteConnection};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

use Engine::{Postgres, Sqlite};

/// Lines of the normalised schema that one engine has and the other has not,
/// on purpose. They are not in schema.txt; the test fails when an engine no
/// longer has a line listed here for it, so that the list cannot go stale.
const ENGINE_ONLY: &[(Engine, &str)] = &[
    // (1) The search index. SQLite searches with FTS5, a virtual table whose
    // rowid is the listing's search key; PostgreSQL with a narrow table of
    // its own, under a GIN index of every term a listing is found by (see
    // migrations/postgres/0006_search_terms.sql).
    (
        Sqlite,
        "listings_fts virtual table fts5 (name, search_text, facets)",
    ),
    (Postgres, "listing_search column facets text not null"),
    (
        Postgres,
        "listing_search column reference_price_micros integer null",
    ),
    (
        Postgres,
        "listing_search column search_key integer not null primary key 1",
    ),
    (Postgres, "listing_search column tsv tsvector not null"),
    (
        Postgres,
        "listing_search index listing_search_terms (listing_terms(tsv, facets, reference_price_micros, search_key))",
    ),
    // (2) `listings` is keyed differently. On SQLite `search_key` is the
    // primary key, an INTEGER PRIMARY KEY, so the rowid that listings_fts
    // shares, and `id` is UNIQUE; on PostgreSQL `id` is the primary key and
    // `search_key` UNIQUE.
    (Sqlite, "listings column id text not null"),
    (
        Sqlite,
        "listings column search_key integer not null primary key 1",
    ),
    (Sqlite, "listings unique (id)"),
    (Postgres, "listings column id text not null primary key 1"),
    (Postgres, "listings column search_key integer not null"),
    (Postgres, "listings unique (search_key)"),
    // (3) A billing run sums a month's usage per organisation and bucket.
    // SQLite reads it from a covering index, in order, without a sort;
    // PostgreSQL hashes the pairs instead, planned from extended statistics
    // on (org_id, bucket) (migrations/postgres/0008_billing_runs.sql).
    (
        Sqlite,
        "usage_records index usage_records_billing (org_id, bucket, hour, recorded_at, class_a, class_b, egress_bytes, exit_egress_bytes)",
    ),
];

const HEADER: &str = "\
# The schema both migration sets (crates/db/migrations/sqlite and
# crates/db/migrations/postgres) end with, normalised: one sorted line per
# column, named index, unique constraint and foreign key. What one engine
# alone has is listed, with its reason, in ENGINE_ONLY in
# crates/db/tests/schema_parity.rs, which checks both engines against this
# file. Do not edit by hand; regenerate it with
#   NUAGE_BLESS_SCHEMA=1 cargo test -p nuage-db --test schema_parity
";

fn schema_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema.txt")
}

#[tokio::test]
async fn sqlite_and_postgres_migrations_end_with_the_same_schema() {
    let bless = std::env::var("NUAGE_BLESS_SCHEMA").is_ok_and(|v| v == "1");
    let admin = std::env::var("NUAGE_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let mut failures = Vec::new();

    let sqlite = shared_lines(Sqlite, sqlite_schema().await, &mut failures);
    if bless {
        let mut text = String::from(HEADER);
        for line in &sqlite {
            text.push_str(line);
            text.push('\n');
        }
        std::fs::write(schema_file(), text).expect("write crates/db/schema.txt");
        println!("schema_parity: wrote crates/db/schema.txt from SQLite");
    }
    let text = std::fs::read_to_string(schema_file()).unwrap_or_else(|e| {
        panic!(
            "read crates/db/schema.txt ({e}); write it with \
             NUAGE_BLESS_SCHEMA=1 cargo test -p nuage-db --test schema_parity"
        )
    });
    let file: BTreeSet<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();

    let mut checked = vec![Sqlite.name()];
    compare(Sqlite, &file, &sqlite, &mut failures);
    match admin {
        Some(admin) => {
            let postgres = shared_lines(Postgres, postgres_schema(&admin).await, &mut failures);
            compare(Postgres, &file, &postgres, &mut failures);
            checked.push(Postgres.name());
        }
        None => {
            println!("schema_parity: NUAGE_TEST_DATABASE_URL is not set, PostgreSQL is not checked")
        }
    }
    println!(
        "schema_parity: checked {} against crates/db/schema.txt",
        checked.join(" and ")
    );
    assert!(
        failures.is_empty(),
        "{}\n\nIf a migration changed the schema on purpose, regenerate the file with\n  \
         NUAGE_BLESS_SCHEMA=1 cargo test -p nuage-db --test schema_parity\n\
         (add NUAGE_TEST_DATABASE_URL to check PostgreSQL against it too) and review its diff; \
         a line only one engine should have goes in ENGINE_ONLY in \
         crates/db/tests/schema_parity.rs, with its reason.",
        failures.join("\n\n")
    );
}

/// The engine's lines less those ENGINE_ONLY lists for it, each of which it
/// must have.
fn shared_lines(
    engine: Engine,
    mut lines: BTreeSet<String>,
    failures: &mut Vec<String>,
) -> BTreeSet<String> {
    for (only, line) in ENGINE_ONLY {
        if *only == engine && !lines.remove(*line) {
            failures.push(format!(
                "{}: ENGINE_ONLY lists a line its database no longer has (remove or update it):\n    {line}",
                engine.name()
            ));
        }
    }
    lines
}

fn compare(
    engine: Engine,
    file: &BTreeSet<String>,
    database: &BTreeSet<String>,
    failures: &mut Vec<String>,
) {
    if file == database {
        return;
    }
    let mut message = format!(
        "{}: the migrated schema differs from crates/db/schema.txt",
        engine.name()
    );
    for (title, lines) in [
        ("only in the file:", file.difference(database)),
        ("only in the database:", database.difference(file)),
    ] {
        let lines: Vec<_> = lines.collect();
        if !lines.is_empty() {
            message.push_str(&format!("\n  {title}"));
            for line in lines {
                message.push_str(&format!("\n    {line}"));
            }
        }
    }
    failures.push(message);
}

// --- SQLite -----------------------------------------------------------------

async fn sqlite_schema() -> BTreeSet<String> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("schema.db").display()
    );
    let db = Db::connect(&url, 1)
        .await
        .expect("migrate a fresh SQLite database");
    db.close().await;
    let mut conn = SqliteConnection::connect(&url)
        .await
        .expect("open the SQLite database");
    let lines = read_sqlite(&mut conn)
        .await
        .expect("read the SQLite schema");
    conn.close().await.expect("close the SQLite database");
    lines
}

async fn read_sqlite(conn: &mut SqliteConnection) -> Result<BTreeSet<String>, sqlx::Error> {
    let mut lines = BTreeSet::new();
    // pragma_table_list tells FTS5's shadow tables ('shadow') from tables.
    let tables = sqlx::query(
        r"SELECT l.name, l.type, m.sql FROM pragma_table_list l
          JOIN sqlite_schema m ON m.type = 'table' AND m.name = l.name
          WHERE l.schema = 'main' AND l.type IN ('table', 'virtual')
            AND l.name NOT LIKE 'sqlite\_%' ESCAPE '\' AND l.name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut *conn)
    .await?;
    for table in tables {
        let name: String = table.try_get(0)?;
        let kind: String = table.try_get(1)?;
        let sql: String = table.try_get(2)?;

        if kind == "virtual" {
            let module = sql
                .split_whitespace()
                .skip_while(|w| !w.eq_ignore_ascii_case("using"))
                .nth(1)
                .unwrap_or("")
                .split('(')
                .next()
                .unwrap_or("")
                .to_lowercase();
            let columns: Vec<String> =
                sqlx::query_scalar("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
                    .bind(&name)
                    .fetch_all(&mut *conn)
                    .await?;
            lines.insert(format!(
                "{name} virtual table {module} ({})",
                columns.join(", ")
            ));
            continue;
        }

        // `hidden`: 2 and 3 are generated columns (1 is a virtual table's).
        let columns = sqlx::query(
            r#"SELECT name, type, "notnull", dflt_value, pk, hidden
               FROM pragma_table_xinfo(?1) WHERE hidden <> 1"#,
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        for column in columns {
            let hidden: i64 = column.try_get(5)?;
            lines.insert(column_line(
                &name,
                &column.try_get::<String, _>(0)?,
                sqlite_type_class(&column.try_get::<String, _>(1)?),
                column.try_get::<i64, _>(2)? != 0,
                column.try_get::<Option<String>, _>(3)?.as_deref(),
                hidden >= 2,
                column.try_get(4)?,
            ));
        }

        let indexes =
            sqlx::query(r#"SELECT name, "unique", origin, partial FROM pragma_index_list(?1)"#)
                .bind(&name)
                .fetch_all(&mut *conn)
                .await?;
        for index in indexes {
            let index_name: String = index.try_get(0)?;
            let unique = index.try_get::<i64, _>(1)? != 0;
            let origin: String = index.try_get(2)?;
            let partial = index.try_get::<i64, _>(3)? != 0;
            let keys =
                sqlx::query("SELECT name FROM pragma_index_xinfo(?1) WHERE key = 1 ORDER BY seqno")
                    .bind(&index_name)
                    .fetch_all(&mut *conn)
                    .await?;
            let mut columns = Vec::new();
            for key in &keys {
                columns.push(key.try_get::<Option<String>, _>(0)?);
            }
            match origin.as_str() {
                // The primary key: told by the columns' `primary key N`.
                "pk" => {}
                // A UNIQUE constraint, named sqlite_autoindex_<table>_<n>.
                "u" => {
                    let columns: Vec<String> = columns.into_iter().flatten().collect();
                    lines.insert(format!("{name} unique ({})", columns.join(", ")));
                }
                _ => {
                    let sql: Option<String> = sqlx::query_scalar(
                        "SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = ?1",
                    )
                    .bind(&index_name)
                    .fetch_one(&mut *conn)
                    .await?;
                    let sql = sql.unwrap_or_default();
                    // An expression has no column name: its text is read
                    // from the statement instead.
                    let columns = if columns.iter().all(Option::is_some) {
                        columns.into_iter().flatten().collect::<Vec<_>>().join(", ")
                    } else {
                        index_columns_from_sql(&sql)
                    };
                    let predicate = partial.then(|| sqlite_index_predicate(&sql));
                    lines.insert(index_line(
                        &name,
                        &index_name,
                        unique,
                        &columns,
                        None,
                        predicate.as_deref(),
                    ));
                }
            }
        }

        let references = sqlx::query(
            r#"SELECT id, "table", "from", "to", on_update, on_delete
               FROM pragma_foreign_key_list(?1) ORDER BY id, seq"#,
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        type Reference = (String, Vec<String>, Vec<Option<String>>, String, String);
        let mut by_id: BTreeMap<i64, Reference> = BTreeMap::new();
        for reference in references {
            let entry = by_id.entry(reference.try_get(0)?).or_insert_with(|| {
                (
                    String::new(),
                    Vec::new(),
                    Vec::new(),
                    String::new(),
                    String::new(),
                )
            });
            entry.0 = reference.try_get(1)?;
            entry.1.push(reference.try_get(2)?);
            entry.2.push(reference.try_get(3)?);
            entry.3 = reference.try_get(4)?;
            entry.4 = reference.try_get(5)?;
        }
        for (parent, from, to, on_update, on_delete) in by_id.into_values() {
            // `REFERENCES parent` without columns means its primary key.
            let to = if to.iter().all(Option::is_some) {
                to.into_iter().flatten().collect()
            } else {
                sqlx::query_scalar(
                    "SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk",
                )
                .bind(&parent)
                .fetch_all(&mut *conn)
                .await?
            };
            lines.insert(foreign_key_line(
                &name, &from, &parent, &to, &on_update, &on_delete,
            ));
        }
    }
    Ok(lines)
}

/// SQLite's type affinity of a declared type (section 3.1 of
/// https://sqlite.org/datatype3.html).
fn sqlite_type_class(declared: &str) -> String {
    let declared = declared.to_uppercase();
    let class = if declared.contains("INT") {
        "integer"
    } else if ["CHAR", "CLOB", "TEXT"]
        .iter()
        .any(|t| declared.contains(t))
    {
        "text"
    } else if declared.contains("BLOB") || declared.is_empty() {
        "blob"
    } else if ["REAL", "FLOA", "DOUB"]
        .iter()
        .any(|t| declared.contains(t))
    {
        "real"
    } else {
        "numeric"
    };
    class.to_string()
}

/// The WHERE of a partial index, from its CREATE INDEX statement.
fn sqlite_index_predicate(sql: &str) -> String {
    let mut quoted = false;
    for (i, c) in sql.char_indices() {
        if c == '\'' {
            quoted = !quoted;
        }
        if quoted || !c.is_whitespace() {
            continue;
        }
        let rest = &sql[i + c.len_utf8()..];
        let keyword = rest
            .get(..5)
            .is_some_and(|w| w.eq_ignore_ascii_case("where"));
        let then = rest.get(5..).and_then(|r| r.chars().next());
        if keyword && then.is_some_and(|t| t.is_whitespace() || t == '(') {
            return rest[5..].to_string();
        }
    }
    String::new()
}

/// The text between the parentheses that follow `ON table` in a CREATE
/// INDEX statement.
fn index_columns_from_sql(sql: &str) -> String {
    let Some(start) = sql.find('(') else {
        return String::new();
    };
    let mut depth = 0;
    for (i, c) in sql[start..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return normalise_expression(&sql[start + 1..start + i]);
                }
            }
            _ => {}
        }
    }
    String::new()
}

// --- PostgreSQL ---------------------------------------------------------------

/// Migrates a new database on the server, reads its schema, and drops it
/// before returning, whatever happened in between.
async fn postgres_schema(admin: &str) -> BTreeSet<String> {
    let name = format!("nuage_schema_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(admin)
        .await
        .expect("connect to NUAGE_TEST_DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create a database for the schema test");
    let url = database_url(admin, &name);
    // No panic from here to the drop: errors are carried out instead.
    let read = async {
        let db = Db::connect(&url, 2)
            .await
            .map_err(|e| format!("migrate {name}: {e}"))?;
        db.close().await;
        let mut conn = PgConnection::connect(&url)
            .await
            .map_err(|e| format!("connect to {name}: {e}"))?;
        let lines = read_postgres(&mut conn)
            .await
            .map_err(|e| format!("read the schema of {name}: {e}"));
        let _ = conn.close().await;
        lines
    }
    .await;
    let dropped = sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    if let Err(e) = dropped {
        panic!("drop the database {name}: {e}");
    }
    read.unwrap_or_else(|e| panic!("{e}"))
}

/// The admin URL with its database replaced by `name`.
fn database_url(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (admin, String::new()),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority..].find('/') {
        Some(i) => &base[..authority + i],
        None => base,
    };
    format!("{server}/{name}{query}")
}

async fn read_postgres(conn: &mut PgConnection) -> Result<BTreeSet<String>, sqlx::Error> {
    let mut lines = BTreeSet::new();

    let columns = sqlx::query(
        r"SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod),
                 a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attgenerated::text <> '',
                 COALESCE(array_position(p.conkey, a.attnum), 0)::int8
          FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
          LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
          LEFT JOIN pg_constraint p ON p.conrelid = c.oid AND p.contype = 'p'
          WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
            AND c.relname <> '_sqlx_migrations'",
    )
    .fetch_all(&mut *conn)
    .await?;
    for column in columns {
        let generated: bool = column.try_get(5)?;
        let default: Option<String> = column.try_get(4)?;
        lines.insert(column_line(
            &column.try_get::<String, _>(0)?,
            &column.try_get::<String, _>(1)?,
            postgres_type_class(&column.try_get::<String, _>(2)?),
            column.try_get(3)?,
            if generated { None } else { default.as_deref() },
            generated,
            column.try_get(6)?,
        ));
    }

    // Indexes, but for those of primary keys and unique constraints.
    let indexes = sqlx::query(
        r"SELECT t.relname::text, i.relname::text, x.indisunique,
                 ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true)
                       FROM generate_series(1, x.indnkeyatts) k ORDER BY k),
                 ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true)
                       FROM generate_series(x.indnkeyatts + 1, x.indnatts) k ORDER BY k),
                 pg_get_expr(x.indpred, x.indrelid)
          FROM pg_index x
          JOIN pg_class i ON i.oid = x.indexrelid
          JOIN pg_class t ON t.oid = x.indrelid
          JOIN pg_namespace n ON n.oid = t.relnamespace
          WHERE n.nspname = current_schema() AND t.relname <> '_sqlx_migrations'
            AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                            WHERE c.conindid = x.indexrelid AND c.conrelid = x.indrelid
                              AND c.contype IN ('p', 'u'))",
    )
    .fetch_all(&mut *conn)
    .await?;
    for index in indexes {
        let keys: Vec<String> = index.try_get(3)?;
        let included: Vec<String> = index.try_get(4)?;
        let predicate: Option<String> = index.try_get(5)?;
        lines.insert(index_line(
            &index.try_get::<String, _>(0)?,
            &index.try_get::<String, _>(1)?,
            index.try_get(2)?,
            &keys.join(", "),
            (!included.is_empty())
                .then(|| included.join(", "))
                .as_deref(),
            predicate.as_deref(),
        ));
    }

    let constraints = sqlx::query(
        r"SELECT t.relname::text, c.contype::text,
                 ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(num, ord)
                       JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num
                       ORDER BY k.ord),
                 f.relname::text,
                 ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(num, ord)
                       JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num
                       ORDER BY k.ord),
                 c.confupdtype::text, c.confdeltype::text
          FROM pg_constraint c
          JOIN pg_class t ON t.oid = c.conrelid
          JOIN pg_namespace n ON n.oid = t.relnamespace
          LEFT JOIN pg_class f ON f.oid = c.confrelid
          WHERE n.nspname = current_schema() AND c.contype IN ('u', 'f')
            AND t.relname <> '_sqlx_migrations'",
    )
    .fetch_all(&mut *conn)
    .await?;
    for constraint in constraints {
        let table: String = constraint.try_get(0)?;
        let kind: String = constraint.try_get(1)?;
        let columns: Vec<String> = constraint.try_get(2)?;
        if kind == "u" {
            lines.insert(format!("{table} unique ({})", columns.join(", ")));
            continue;
        }
        let action = |code: String| {
            match code.as_str() {
                "r" => "restrict",
                "c" => "cascade",
                "n" => "set null",
                "d" => "set default",
                _ => "no action",
            }
            .to_string()
        };
        lines.insert(foreign_key_line(
            &table,
            &columns,
            &constraint.try_get::<String, _>(3)?,
            &constraint.try_get::<Vec<String>, _>(4)?,
            &action(constraint.try_get(5)?),
            &action(constraint.try_get(6)?),
        ));
    }
    Ok(lines)
}

/// PostgreSQL's types in SQLite's affinity classes; a type SQLite has no
/// class for (arrays, tsvector, json…) keeps its own name, so it never
/// passes for one.
fn postgres_type_class(formatted: &str) -> String {
    let base = formatted.split('(').next().unwrap_or("").trim();
    let class = match base {
        "smallint" | "integer" | "bigint" => "integer",
        "text" | "character varying" | "character" | "name" | "\"char\"" => "text",
        "real" | "double precision" => "real",
        "bytea" => "blob",
        "numeric" | "boolean" | "date" => "numeric",
        _ if base.starts_with("timestamp") || base.starts_with("time ") || base == "time" => {
            "numeric"
        }
        _ => return formatted.to_string(),
    };
    class.to_string()
}

// --- The lines ----------------------------------------------------------------

/// `<table> column <name> <class> <null|not null>[ default <expr>][ generated][ primary key <n>]`
fn column_line(
    table: &str,
    column: &str,
    class: String,
    not_null: bool,
    default: Option<&str>,
    generated: bool,
    primary_key: i64,
) -> String {
    // A primary key's columns count as NOT NULL on both engines. PostgreSQL
    // makes them so; SQLite, for compatibility with an old bug, lets a
    // primary key other than INTEGER PRIMARY KEY (a TEXT one, say) hold
    // NULL unless the column says NOT NULL, and reports it nullable. The
    // application never writes NULL there.
    let not_null = not_null || primary_key > 0;
    let mut line = format!(
        "{table} column {column} {class} {}",
        if not_null { "not null" } else { "null" }
    );
    if let Some(default) = default {
        line.push_str(&format!(" default {}", normalise_expression(default)));
    }
    if generated {
        line.push_str(" generated");
    }
    if primary_key > 0 {
        line.push_str(&format!(" primary key {primary_key}"));
    }
    line
}

/// `<table> [unique ]index <name> (<columns>)[ include (<columns>)][ where <predicate>]`
fn index_line(
    table: &str,
    name: &str,
    unique: bool,
    columns: &str,
    included: Option<&str>,
    predicate: Option<&str>,
) -> String {
    let mut line = format!(
        "{table} {}index {name} ({columns})",
        if unique { "unique " } else { "" }
    );
    if let Some(included) = included {
        line.push_str(&format!(" include ({included})"));
    }
    if let Some(predicate) = predicate {
        line.push_str(&format!(" where {}", normalise_expression(predicate)));
    }
    line
}

/// `<table> foreign key (<columns>) references <parent> (<columns>)[ on update <action>][ on delete <action>]`
fn foreign_key_line(
    table: &str,
    from: &[String],
    parent: &str,
    to: &[String],
    on_update: &str,
    on_delete: &str,
) -> String {
    let mut line = format!(
        "{table} foreign key ({}) references {parent} ({})",
        from.join(", "),
        to.join(", ")
    );
    for (event, action) in [("update", on_update), ("delete", on_delete)] {
        let action = action.to_lowercase();
        if action != "no action" {
            line.push_str(&format!(" on {event} {action}"));
        }
    }
    line
}

/// An expression (a default, an index's WHERE) in a form both engines
/// share: PostgreSQL's casts (`'export'::text`) and grouping parentheses
/// (`((a = 1) AND (b IS NULL))`) removed, keywords and names in lower case,
/// spaces collapsed; quoted text is left as it is. Parentheses after a name
/// (a function's) stay.
fn normalise_expression(expression: &str) -> String {
    let chars: Vec<char> = expression.chars().collect();
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut groups = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            ':' if chars.get(i + 1) == Some(&':') => {
                i = skip_cast(&chars, i + 2);
                continue;
            }
            '(' => {
                let call = out
                    .chars()
                    .last()
                    .is_some_and(|p| p.is_alphanumeric() || p == '_');
                groups.push(call);
                if call {
                    out.push(c);
                }
            }
            ')' => {
                if groups.pop().unwrap_or(true) {
                    out.push(c);
                }
            }
            c if c.is_whitespace() => {
                if !out.is_empty() && !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            c => out.extend(c.to_lowercase()),
        }
        i += 1;
    }
    // Spaces left by a dropped parenthesis, or inside a kept one.
    out.trim()
        .replace("( ", "(")
        .replace(" )", ")")
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Past the type of a cast that starts at `i`: a name (of several words for
/// some of PostgreSQL's), a modifier in parentheses, array brackets.
fn skip_cast(chars: &[char], mut i: usize) -> usize {
    if chars.get(i) == Some(&'"') {
        i += 1;
        while i < chars.len() && chars[i] != '"' {
            i += 1;
        }
        i += 1;
    } else {
        while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
        {
            i += 1;
        }
    }
    loop {
        let rest: String = chars[i.min(chars.len())..].iter().collect();
        if let Some(more) = [
            " varying",
            " precision",
            " with time zone",
            " without time zone",
        ]
        .iter()
        .find(|m| rest.starts_with(*m))
        {
            i += more.chars().count();
        } else if rest.starts_with('(') {
            while i < chars.len() && chars[i] != ')' {
                i += 1;
            }
            i += 1;
        } else if rest.starts_with("[]") {
            i += 2;
        } else {
            return i.min(chars.len());
        }
    }
}
