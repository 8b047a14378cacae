//! The directory's search index: the one seam where the SQL differs by
//! engine — SQLite's FTS5 table (`listings_fts`) or PostgreSQL's tsvector
//! (`listing_search`, `listing_terms`) — behind one set of functions: index
//! a listing, count and sample the matches of a search, read hits back.
//! Everything else in `nuage-db` is one SQL text for both engines.

use sqlx::{AnyConnection, FromRow};

use super::catalogue::placeholders;
use crate::{DbError, Dialect};

/// Search keys are drawn at random below this bound (2^53: exact in JSON).
pub const KEY_SPACE: i64 = 1 << KEY_BITS;
const KEY_BITS: u32 = 53;

/// The finest bucket level (PostgreSQL's index holds a term per level).
pub const BUCKET_LEVELS: u32 = 16;

/// A bucket of the key space: level `level` cuts it in 2^level equal parts
/// and this is part `index`. The listings whose random search key falls in
/// a bucket are a fair random sample of any set of listings, and each
/// bucket lies inside one of every coarser level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    level: u32,
    index: i64,
}

impl Bucket {
    /// The bucket of `level` (1 to `BUCKET_LEVELS`) that a 64-bit seed
    /// falls in: its top bits. Level 0 is the whole key space: `None`.
    pub fn of_seed(level: u32, seed: u64) -> Option<Bucket> {
        let level = level.min(BUCKET_LEVELS);
        (level > 0).then(|| Bucket {
            level,
            index: (seed >> (64 - level)) as i64,
        })
    }

    pub fn level(self) -> u32 {
        self.level
    }

    /// The keys `[from, to)`.
    pub fn keys(self) -> (i64, i64) {
        let width = KEY_SPACE >> self.level;
        (self.index * width, (self.index + 1) * width)
    }

    /// PostgreSQL's index term (see `listing_terms` in the migrations).
    fn term(self) -> String {
        format!("key{}={}", self.level, self.index)
    }
}

/// A published listing, flattened for search.
#[derive(Debug, Clone, FromRow)]
pub struct ListingRow {
    pub id: String,
    /// Random, drawn once: orders ties and samples (see the migration).
    pub search_key: i64,
    pub kind: String,
    pub owner_id: String,
    pub owner_name: String,
    pub name: String,
    pub name_folded: String,
    pub summary: String,
    pub search_text: String,
    pub reference_price_micros: Option<i64>,
    pub updated_at: i64,
}

const LISTING_SELECT: &str = "SELECT id, search_key, kind, owner_id, owner_name, name, name_folded, summary, search_text, reference_price_micros, updated_at FROM listings";

/// A facet value as an FTS5 token (SQLite): `location__fr_lyon`. The
/// tokenizer keeps `_` inside tokens, so a token is one word.
fn facet_token(facet: &str, value: &str) -> String {
    let value: String = value
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '_' })
        .collect();
    format!("{facet}__{value}")
}

/// Price ceilings, in euros, that a listing's reference price is under:
/// index terms (FTS5 tokens `price_le__50` on SQLite, `price<=50` in
/// PostgreSQL's `listing_terms`, which lists them again) let the
/// full-text match apply a price filter; the exact comparison follows on the
/// matches.
const PRICE_CEILINGS: &[i64] = &[
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000,
];

/// A ceiling's index term; `None` is above every ceiling (any price).
fn price_term(dialect: Dialect, ceiling: Option<i64>) -> String {
    let c = ceiling.map_or_else(|| "any".to_owned(), |c| c.to_string());
    match dialect {
        Dialect::Sqlite => format!("price_le__{c}"),
        Dialect::Postgres => format!("price<={c}"),
    }
}

/// SQLite: the price tokens of a listing.
fn price_tokens(micros: i64) -> Vec<String> {
    PRICE_CEILINGS
        .iter()
        .filter(|c| micros <= **c * 1_000_000)
        .map(|c| price_term(Dialect::Sqlite, Some(*c)))
        .chain(std::iter::once(price_term(Dialect::Sqlite, None)))
        .collect()
}

/// The index term a ceiling of `max` micros matches through: the next
/// ceiling at or above it.
fn price_ceiling_term(dialect: Dialect, max: i64) -> String {
    let ceiling = PRICE_CEILINGS.iter().find(|c| **c * 1_000_000 >= max);
    price_term(dialect, ceiling.copied())
}

/// The facets as stored in the row: `facet=value` separated by spaces.
/// Values have no spaces (region names, codes, SPDX ids, keys); any would
/// become `_`.
fn facet_pairs(facets: &[(&str, String)]) -> Vec<String> {
    facets
        .iter()
        .map(|(f, v)| format!("{f}={}", v.replace(char::is_whitespace, "_")))
        .collect()
}

/// The FTS5 facet and price tokens of a listing as its row stores them.
fn stored_tokens(facets: &str, price: Option<i64>) -> Vec<String> {
    facets
        .split(' ')
        .filter_map(|pair| pair.split_once('='))
        .map(|(f, v)| facet_token(f, v))
        .chain(price.map(price_tokens).unwrap_or_default())
        .collect()
}

/// How many listings there are, under the empty token, for
/// `listing_count`; on SQLite also how many listings hold each facet and
/// price token, for `common_filters`.
async fn count_tokens(
    conn: &mut AnyConnection,
    tokens: &[String],
    delta: i64,
) -> Result<(), DbError> {
    for t in tokens.iter().map(String::as_str).chain(std::iter::once("")) {
        sqlx::query(
            "INSERT INTO fts_token_docs (token, docs) VALUES ($1, $2) \
             ON CONFLICT (token) DO UPDATE SET docs = fts_token_docs.docs + excluded.docs",
        )
        .bind(t)
        .bind(delta)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Whether a search key is already some listing's.
pub async fn search_key_taken(conn: &mut AnyConnection, key: i64) -> Result<bool, DbError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM listings WHERE search_key = $1")
        .bind(key)
        .fetch_one(conn)
        .await?;
    Ok(n > 0)
}

/// Puts a listing in the index, replacing what was there, with its facets.
pub async fn index_listing(
    conn: &mut AnyConnection,
    dialect: Dialect,
    row: &ListingRow,
    facets: &[(&str, String)],
) -> Result<(), DbError> {
    unindex_listing(conn, dialect, &row.id).await?;
    let pairs = facet_pairs(facets).join(" ");
    match dialect {
        Dialect::Sqlite => {
            let tokens = stored_tokens(&pairs, row.reference_price_micros);
            sqlx::query(
                "INSERT INTO listings_fts (rowid, name, search_text, facets) VALUES ($1, $2, $3, $4)",
            )
            .bind(row.search_key)
            .bind(&row.name_folded)
            .bind(&row.search_text)
            .bind(tokens.join(" "))
            .execute(&mut *conn)
            .await?;
            count_tokens(conn, &tokens, 1).await?;
        }
        Dialect::Postgres => {
            count_tokens(conn, &[], 1).await?;
            sqlx::query(
                "INSERT INTO listing_search (search_key, reference_price_micros, facets, tsv) \
                 VALUES ($1, $2, $3, setweight(to_tsvector('simple', $4), 'A') || setweight(to_tsvector('simple', $5), 'B'))",
            )
            .bind(row.search_key)
            .bind(row.reference_price_micros)
            .bind(&pairs)
            .bind(&row.name_folded)
            .bind(&row.search_text)
            .execute(&mut *conn)
            .await?;
        }
    }
    sqlx::query(
        "INSERT INTO listings (id, search_key, kind, owner_id, owner_name, name, name_folded, summary, search_text, reference_price_micros, facets, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&row.id)
    .bind(row.search_key)
    .bind(&row.kind)
    .bind(&row.owner_id)
    .bind(&row.owner_name)
    .bind(&row.name)
    .bind(&row.name_folded)
    .bind(&row.summary)
    .bind(&row.search_text)
    .bind(row.reference_price_micros)
    .bind(&pairs)
    .bind(row.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Takes a listing out of the index (it is no longer published).
pub async fn unindex_listing(
    conn: &mut AnyConnection,
    dialect: Dialect,
    id: &str,
) -> Result<(), DbError> {
    let indexed: Option<(i64, String, Option<i64>)> = sqlx::query_as(
        "SELECT search_key, facets, reference_price_micros FROM listings WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((key, facets, price)) = indexed else {
        return Ok(());
    };
    match dialect {
        Dialect::Sqlite => {
            count_tokens(conn, &stored_tokens(&facets, price), -1).await?;
            sqlx::query("DELETE FROM listings_fts WHERE rowid = $1")
                .bind(key)
                .execute(&mut *conn)
                .await?;
        }
        Dialect::Postgres => {
            count_tokens(conn, &[], -1).await?;
            sqlx::query("DELETE FROM listing_search WHERE search_key = $1")
                .bind(key)
                .execute(&mut *conn)
                .await?;
        }
    }
    sqlx::query("DELETE FROM listings WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn get_listing(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<ListingRow>, DbError> {
    Ok(sqlx::query_as(&format!("{LISTING_SELECT} WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// Whether anything is in the index (without counting it all).
pub async fn has_listings(conn: &mut AnyConnection) -> Result<bool, DbError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM (SELECT 1 FROM listings LIMIT 1) t")
        .fetch_one(conn)
        .await?;
    Ok(n > 0)
}

/// A search: folded words (all must match, as prefixes), facet filters
/// (values of one facet are alternatives, facets combine), a price ceiling.
#[derive(Debug, Clone, Default)]
pub struct SearchSpec {
    pub words: Option<Vec<String>>,
    pub filters: Vec<(String, Vec<String>)>,
    pub max_price_micros: Option<i64>,
}

/// A match of a sample, with its relevance (higher is better, rounded so
/// that near-equal scores tie), facets and price.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRow {
    pub search_key: i64,
    pub relevance: f64,
    /// `facet=value` separated by spaces.
    pub facets: String,
    pub reference_price_micros: Option<i64>,
}

/// A hit of the page shown.
#[derive(Debug, Clone, FromRow)]
pub struct HitRow {
    pub id: String,
    pub search_key: i64,
    pub kind: String,
    pub owner_id: String,
    pub owner_name: String,
    pub name: String,
    pub summary: String,
    pub reference_price_micros: Option<i64>,
}

enum Bind {
    Text(String),
    Int(i64),
}

/// The FROM and WHERE of a search, with its parameters, and the relevance
/// expression.
struct Matching {
    from_where: String,
    relevance: &'static str,
    /// The alias of the row holding `search_key`, `facets` and
    /// `reference_price_micros`.
    row: &'static str,
    binds: Vec<Bind>,
    /// SQLite with a full-text match: its condition (and the bucket's) on
    /// `listings_fts`, and the conditions on the listing row `l`, apart.
    fts: Option<(String, String)>,
}

/// Filters a SQLite statement checks on each listing row instead of in the
/// full-text match (see `common_filters`): indexes into
/// `SearchSpec::filters`.
#[derive(Debug, Default)]
struct OnRow {
    filters: Vec<usize>,
}

/// PostgreSQL: the expression of the GIN index `listing_search_terms`.
const PG_TERMS: &str = "listing_terms(s.tsv, s.facets, s.reference_price_micros, s.search_key)";

/// PostgreSQL's index holds prefixes of up to this many characters.
const PG_PREFIX_CHARS: usize = 15;

/// `count`: the statement only counts (on SQLite, FTS5 alone then, with
/// every filter in its match, and the listing row only to compare a price
/// that is not a ceiling).
fn matching(
    dialect: Dialect,
    spec: &SearchSpec,
    on_row: &OnRow,
    bucket: Option<Bucket>,
    count: bool,
) -> Matching {
    let mut binds = Vec::new();
    let next = |binds: &mut Vec<Bind>, b: Bind| {
        binds.push(b);
        format!("${}", binds.len())
    };
    match dialect {
        // FTS5 matches the words, the facet tokens and the price ceiling
        // together; its rowid is the search key.
        Dialect::Sqlite => {
            let mut parts = Vec::new();
            if let Some(words) = &spec.words {
                let phrases: Vec<String> = words.iter().map(|w| format!("\"{w}\"*")).collect();
                parts.push(format!(
                    "{{name search_text}} : ({})",
                    phrases.join(" AND ")
                ));
            }
            let mut row_checks = Vec::new();
            for (i, (facet, values)) in spec.filters.iter().enumerate() {
                if on_row.filters.contains(&i) {
                    let found: Vec<String> = values
                        .iter()
                        .map(|v| {
                            let pair = facet_pairs(&[(facet.as_str(), v.clone())]).concat();
                            let p = next(&mut binds, Bind::Text(format!(" {pair} ")));
                            format!("instr(' ' || l.facets || ' ', {p}) > 0")
                        })
                        .collect();
                    row_checks.push(format!("({})", found.join(" OR ")));
                    continue;
                }
                let tokens: Vec<String> = values
                    .iter()
                    .map(|v| format!("\"{}\"", facet_token(facet, v)))
                    .collect();
                parts.push(format!("facets : ({})", tokens.join(" OR ")));
            }
            // The price token is the next ceiling: unless the filter is
            // one, a count compares the price on the row too (a ranking
            // statement leaves it to the caller).
            if let Some(max) = spec.max_price_micros {
                parts.push(format!(
                    "facets : \"{}\"",
                    price_ceiling_term(Dialect::Sqlite, max)
                ));
                if count && !PRICE_CEILINGS.iter().any(|c| c * 1_000_000 == max) {
                    let p = next(&mut binds, Bind::Int(max));
                    row_checks.push(format!("l.reference_price_micros <= {p}"));
                }
            }
            let needs_row = !row_checks.is_empty();
            if parts.is_empty() {
                if let Some(bucket) = bucket {
                    let (from, to) = bucket.keys();
                    let from = next(&mut binds, Bind::Int(from));
                    let to = next(&mut binds, Bind::Int(to));
                    row_checks.push(format!("l.search_key >= {from} AND l.search_key < {to}"));
                }
                let checks: String = row_checks.iter().map(|c| format!(" AND {c}")).collect();
                return Matching {
                    from_where: format!("FROM listings l WHERE 1 = 1{checks}"),
                    relevance: "CAST(0 AS DOUBLE PRECISION)",
                    row: "l",
                    binds,
                    fts: None,
                };
            }
            let p = next(&mut binds, Bind::Text(parts.join(" AND ")));
            let mut fts = format!("listings_fts MATCH {p}");
            if let Some(bucket) = bucket {
                let (from, to) = bucket.keys();
                let from = next(&mut binds, Bind::Int(from));
                let to = next(&mut binds, Bind::Int(to));
                fts.push_str(&format!(
                    " AND listings_fts.rowid >= {from} AND listings_fts.rowid < {to}"
                ));
            }
            let checks: String = row_checks.iter().map(|c| format!(" AND {c}")).collect();
            Matching {
                from_where: if count && !needs_row {
                    format!("FROM listings_fts WHERE {fts}")
                } else {
                    // CROSS JOIN keeps FTS5 outside: it walks the matches
                    // (in rowid order, within the bucket if asked) and each
                    // finds its row by key.
                    format!(
                        "FROM listings_fts CROSS JOIN listings l ON l.search_key = listings_fts.rowid WHERE {fts}{checks}"
                    )
                },
                fts: Some((fts, checks)),
                // bm25 is lower for better matches; the name weighs ten
                // times the rest, the facets nothing.
                relevance: if spec.words.is_some() {
                    "-ROUND(bm25(listings_fts, 10.0, 1.0, 0.0), 2)"
                } else {
                    "CAST(0 AS DOUBLE PRECISION)"
                },
                row: "l",
                binds,
            }
        }
        // One scan of the GIN index over `listing_terms` intersects the
        // words' prefixes, the facets, the price ceiling and the bucket; the
        // row (narrow, in `listing_search`) gives the exact price, and
        // ts_rank the relevance.
        Dialect::Postgres => {
            let mut required: Vec<String> = Vec::new();
            let mut checks: Vec<String> = Vec::new();
            let mut from = "FROM listing_search s".to_owned();
            let mut relevance = "CAST(0 AS DOUBLE PRECISION)";
            if let Some(words) = &spec.words {
                let query = words
                    .iter()
                    .map(|w| format!("{w}:*"))
                    .collect::<Vec<_>>()
                    .join(" & ");
                let p = next(&mut binds, Bind::Text(query));
                from.push_str(&format!(", to_tsquery('simple', {p}) q"));
                relevance = "ROUND(ts_rank(s.tsv, q)::numeric, 3)::float8";
                for w in words {
                    required.push(w.chars().take(PG_PREFIX_CHARS).collect());
                }
                if words.iter().any(|w| w.chars().count() > PG_PREFIX_CHARS) {
                    checks.push("s.tsv @@ q".to_owned());
                }
            }
            let mut any_of: Vec<Vec<String>> = Vec::new();
            for (facet, values) in &spec.filters {
                let pairs: Vec<String> = values
                    .iter()
                    .map(|v| facet_pairs(&[(facet.as_str(), v.clone())]).concat())
                    .collect();
                match pairs.as_slice() {
                    [one] => required.push(one.clone()),
                    _ => any_of.push(pairs),
                }
            }
            if let Some(max) = spec.max_price_micros {
                required.push(price_ceiling_term(Dialect::Postgres, max));
                let p = next(&mut binds, Bind::Int(max));
                checks.push(format!("s.reference_price_micros <= {p}"));
            }
            if let Some(bucket) = bucket {
                required.push(bucket.term());
            }
            let array = |binds: &mut Vec<Bind>, terms: Vec<String>| {
                let ps: Vec<String> = terms
                    .into_iter()
                    .map(|t| next(binds, Bind::Text(t)))
                    .collect();
                format!("ARRAY[{}]::text[]", ps.join(", "))
            };
            let mut conditions = Vec::new();
            if !required.is_empty() {
                conditions.push(format!("{PG_TERMS} @> {}", array(&mut binds, required)));
            }
            for terms in any_of {
                conditions.push(format!("{PG_TERMS} && {}", array(&mut binds, terms)));
            }
            conditions.extend(checks);
            if conditions.is_empty() {
                conditions.push("TRUE".to_owned());
            }
            Matching {
                from_where: format!("{from} WHERE {}", conditions.join(" AND ")),
                relevance,
                row: "s",
                binds,
                fts: None,
            }
        }
    }
}

macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut q = $query;
        for b in $binds {
            q = match b {
                Bind::Text(t) => q.bind(t.clone()),
                Bind::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}

/// How many listings match, within a bucket or in all.
pub async fn count_matches(
    conn: &mut AnyConnection,
    dialect: Dialect,
    spec: &SearchSpec,
    bucket: Option<Bucket>,
) -> Result<i64, DbError> {
    let m = matching(dialect, spec, &OnRow::default(), bucket, true);
    let sql = format!("SELECT COUNT(*) {}", m.from_where);
    Ok(bind_all!(sqlx::query_scalar(&sql), &m.binds)
        .fetch_one(conn)
        .await?)
}

/// What changes when a listing is indexed or taken out: how many there
/// are and the latest indexing time.
pub async fn index_fingerprint(conn: &mut AnyConnection) -> Result<(i64, i64), DbError> {
    Ok(
        sqlx::query_as("SELECT COUNT(*), COALESCE(MAX(updated_at), 0) FROM listings")
            .fetch_one(conn)
            .await?,
    )
}

/// SQLite: merges the full-text index's segments into one.
pub async fn merge_search_index(conn: &mut AnyConnection) -> Result<(), DbError> {
    sqlx::query("INSERT INTO listings_fts (listings_fts) VALUES ('optimize')")
        .execute(conn)
        .await?;
    Ok(())
}

/// How many listings the index holds.
pub async fn listing_count(conn: &mut AnyConnection) -> Result<i64, DbError> {
    Ok(
        sqlx::query_scalar(
            "SELECT COALESCE((SELECT docs FROM fts_token_docs WHERE token = ''), 0)",
        )
        .fetch_one(conn)
        .await?,
    )
}

/// The matches in a bucket, or all of them, with their relevance, facets
/// and price. The rows come back as one aggregated text (one line each),
/// parsed here: a thousand rows through the driver one by one cost more
/// than the search itself. `scan`: on SQLite, how many full-text matches a
/// ranking statement that checks common filters on the rows may walk (see
/// `common_filters`) before it gives way to one that keeps them in its
/// match.
pub async fn sample_matches(
    conn: &mut AnyConnection,
    dialect: Dialect,
    spec: &SearchSpec,
    bucket: Option<Bucket>,
    scan: i64,
) -> Result<Vec<SampleRow>, DbError> {
    if dialect == Dialect::Sqlite && spec.words.is_some() {
        let on_row = common_filters(conn, spec).await?;
        if !on_row.filters.is_empty() {
            let m = matching(dialect, spec, &on_row, bucket, false);
            if let Some((fts, checks)) = &m.fts {
                // The walk is bounded: the row checks may reject most of
                // what the match lets through.
                let sql = format!(
                    "WITH f AS MATERIALIZED (SELECT listings_fts.rowid AS k, {relevance} AS r FROM listings_fts WHERE {fts} LIMIT {scan}) \
                     SELECT (SELECT COUNT(*) FROM f) || char(10) || COALESCE((SELECT group_concat(l.search_key || ' ' || f.r || ' ' || COALESCE(l.reference_price_micros, '-') || ' ' || l.facets, char(10)) FROM f CROSS JOIN listings l ON l.search_key = f.k WHERE 1 = 1{checks}), '')",
                    relevance = m.relevance,
                );
                let text: String = bind_all!(sqlx::query_scalar(&sql), &m.binds)
                    .fetch_one(&mut *conn)
                    .await?;
                let (walked, lines) = text.split_once('\n').unwrap_or((&text, ""));
                if walked.parse::<i64>().is_ok_and(|n| n < scan) {
                    return parse_sample_lines(lines);
                }
            }
        }
    }
    let m = matching(dialect, spec, &OnRow::default(), bucket, false);
    // On SQLite, `LIMIT -1` keeps the inner query apart (not flattened into
    // the aggregate), where bm25 may be used.
    let (aggregate, apart) = match dialect {
        Dialect::Sqlite => (
            "group_concat(s.search_key || ' ' || s.relevance || ' ' || COALESCE(s.price, '-') || ' ' || s.facets, char(10))",
            " LIMIT -1",
        ),
        Dialect::Postgres => (
            "string_agg(s.search_key::text || ' ' || s.relevance::text || ' ' || COALESCE(s.price::text, '-') || ' ' || s.facets, E'\\n')",
            "",
        ),
    };
    let sql = format!(
        "SELECT {aggregate} FROM (SELECT {r}.search_key, {} AS relevance, {r}.facets AS facets, {r}.reference_price_micros AS price {}{apart}) s",
        m.relevance,
        m.from_where,
        r = m.row,
    );
    let text = bind_all!(sqlx::query_scalar::<_, Option<String>>(&sql), &m.binds)
        .fetch_one(conn)
        .await?
        .unwrap_or_default();
    parse_sample_lines(&text)
}

fn parse_sample_lines(text: &str) -> Result<Vec<SampleRow>, DbError> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(parse_sample_line)
        .collect()
}

/// SQLite: the filters a ranking statement checks on each row rather than
/// in its full-text match. bm25 walks the whole list of every phrase of
/// the match once per statement (for its inverse document frequency), so a
/// filter that half the listings pass costs more as a phrase than checking
/// the few extra rows it would have excluded — unless the words' matches
/// mostly fail it, which the bounded walk of `sample_matches` catches. At
/// most two; counts keep every filter in the match (they compute no bm25).
async fn common_filters(conn: &mut AnyConnection, spec: &SearchSpec) -> Result<OnRow, DbError> {
    let tokens: Vec<Vec<String>> = spec
        .filters
        .iter()
        .map(|(f, values)| values.iter().map(|v| facet_token(f, v)).collect())
        .collect();
    let all: Vec<&String> = tokens.iter().flatten().collect();
    if all.is_empty() {
        return Ok(OnRow::default());
    }
    let sql = format!(
        "SELECT token, docs FROM fts_token_docs WHERE token IN ('', {})",
        placeholders(1, all.len())
    );
    let mut query = sqlx::query_as::<_, (String, i64)>(&sql);
    for t in &all {
        query = query.bind(t.as_str());
    }
    let docs: std::collections::HashMap<String, i64> =
        query.fetch_all(conn).await?.into_iter().collect();
    let total = docs.get("").copied().unwrap_or(0).max(1) as f64;
    let mut shares: Vec<(usize, f64)> = tokens
        .iter()
        .enumerate()
        .map(|(i, ts)| {
            let d: i64 = ts.iter().map(|t| docs.get(t).copied().unwrap_or(0)).sum();
            (i, d as f64 / total)
        })
        .filter(|(_, share)| *share >= 0.5)
        .collect();
    shares.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(OnRow {
        filters: shares.into_iter().take(2).map(|(i, _)| i).collect(),
    })
}

/// `key relevance price|- facet=value…`
fn parse_sample_line(line: &str) -> Result<SampleRow, DbError> {
    let bad = || {
        DbError::Sql(sqlx::Error::Decode(
            format!("a search sample line does not parse: {line:?}").into(),
        ))
    };
    let mut parts = line.splitn(4, ' ');
    let search_key = parts.next().and_then(|k| k.parse().ok()).ok_or_else(bad)?;
    let relevance = parts.next().and_then(|r| r.parse().ok()).ok_or_else(bad)?;
    let reference_price_micros = match parts.next().ok_or_else(bad)? {
        "-" => None,
        p => Some(p.parse().map_err(|_| bad())?),
    };
    Ok(SampleRow {
        search_key,
        relevance,
        reference_price_micros,
        facets: parts.next().unwrap_or_default().to_owned(),
    })
}

/// The listings of a page, by search key (in no particular order).
pub async fn hits_by_keys(conn: &mut AnyConnection, keys: &[i64]) -> Result<Vec<HitRow>, DbError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id, search_key, kind, owner_id, owner_name, name, summary, reference_price_micros FROM listings WHERE search_key IN ({})",
        placeholders(1, keys.len())
    );
    let mut query = sqlx::query_as(&sql);
    for k in keys {
        query = query.bind(*k);
    }
    Ok(query.fetch_all(conn).await?)
}

/// Every listing of a kind, by name: for the open-data exports.
pub async fn listings_of_kind(
    conn: &mut AnyConnection,
    kind: &str,
) -> Result<Vec<ListingRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "{LISTING_SELECT} WHERE kind = $1 ORDER BY name, id"
    ))
    .bind(kind)
    .fetch_all(conn)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_lines_parse_and_bad_ones_are_errors() {
        let row = parse_sample_line("42 -1.5 3000000 kind=offer location=fr-par").expect("parses");
        assert_eq!(row.search_key, 42);
        assert_eq!(row.relevance, -1.5);
        assert_eq!(row.reference_price_micros, Some(3_000_000));
        assert_eq!(row.facets, "kind=offer location=fr-par");
        let bare = parse_sample_line("7 0.0 - kind=service").expect("parses");
        assert_eq!(bare.reference_price_micros, None);
        assert!(parse_sample_line("x 0 - kind=offer").is_err());
        assert!(parse_sample_line("7 0").is_err());
    }

    #[test]
    fn price_tokens_are_the_ceilings_at_or_above_the_price() {
        assert_eq!(
            price_tokens(10_000_000)[..2],
            ["price_le__10".to_owned(), "price_le__20".to_owned()]
        );
        assert_eq!(price_tokens(10_000_001)[0], "price_le__20");
        assert_eq!(price_tokens(0)[0], "price_le__1");
        assert_eq!(price_tokens(200_000_000_000), ["price_le__any".to_owned()]);
    }

    #[test]
    fn a_price_ceiling_matches_through_the_next_token() {
        assert_eq!(
            price_ceiling_term(Dialect::Sqlite, 50_000_000),
            "price_le__50"
        );
        assert_eq!(
            price_ceiling_term(Dialect::Postgres, 42_000_000),
            "price<=50"
        );
        assert_eq!(price_ceiling_term(Dialect::Sqlite, 1), "price_le__1");
        assert_eq!(
            price_ceiling_term(Dialect::Postgres, 200_000_000_000),
            "price<=any"
        );
    }
}
