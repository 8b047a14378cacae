//! The search index: what is published, flattened into `listings` with its
//! facets, and searched with the database's own full-text search.
//!
//! A search does a bounded amount of work, whatever it matches. It counts
//! the matches (the full-text index alone); when there are at most
//! `sample` of them (1,000 by default, `catalogue.search_sample`), it reads
//! them all and everything is exact. Beyond, it reads a fair random sample of
//! about `sample` matches: listings draw a random `search_key` once, and
//! the sample is the matches whose key falls in a range placed by a hash of
//! the query. The total stays exact (but see the price ceilings on SQLite);
//! the facet counts are the sample's, scaled to the total, and marked as
//! estimates; the results that can be paged through are the sample's.
//!
//! Order of results: by relevance (the engine's score — bm25 or ts_rank —
//! rounded so that near-equal scores tie), then by `search_key XOR seed`,
//! where `seed` is a hash of the query. The order is stable for a query,
//! differs between queries, and puts no provider permanently on top; the
//! sample, too, differs between queries.

use std::collections::BTreeMap;

use nuage_db::repo::catalogue::{self as repo, ListingRow, SearchSpec, Sheet, SheetRow};
use nuage_db::repo::identity;
use nuage_db::{AnyConnection, Dialect};
use nuage_domain::DomainError;
use nuage_domain::catalogue::{
    Certification, Licence, OfferSheet, Profile, ServiceSheet, UsageProfile, facet_key, fold,
    query_seed, search_terms, to_cents,
};
use rand::Rng;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;
use utoipa::ToSchema;

use super::{Card, parse_doc, today};
use crate::{Platform, ServiceError, ServiceResult, now_ms};

/// The facets a search filters and counts on. Values are stored in lower case.
pub const FACETS: &[&str] = &[
    "kind",
    "category",
    "location",
    "jurisdiction",
    "certification",
    "licence",
    "free_software",
    "deployment",
    "role",
    "price",
];

/// Results per page.
pub const PER_PAGE: u32 = 20;

/// A search as asked.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// Words, each matched as a prefix; all must be present.
    pub text: Option<String>,
    /// Facet → accepted values (alternatives); facets combine.
    pub filters: BTreeMap<String, Vec<String>>,
    /// The most a month of the reference usage may cost, in euros.
    pub max_price: Option<Decimal>,
    /// From 1.
    pub page: u32,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FacetCount {
    pub value: String,
    pub count: i64,
}

/// A page of results with the facet counts of all matches.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchResults {
    /// How many listings match.
    pub total: i64,
    /// Whether `total` is exact (it is estimated only for a price ceiling
    /// that is not a whole band on SQLite, over a large match).
    pub total_exact: bool,
    /// How many of the matches are ranked and can be paged through: all of
    /// them, or a fair sample when there are many (refine the search).
    pub ranked: i64,
    pub page: u32,
    pub per_page: u32,
    pub hits: Vec<Card>,
    /// For each facet, its values among all matches and how many have each.
    pub facets: BTreeMap<String, Vec<FacetCount>>,
    /// Whether the facet counts are exact, or estimated from the sample.
    pub facets_exact: bool,
}

/// The price facet's bands, by the reference usage's monthly price.
fn price_band(micros: i64) -> &'static str {
    match micros / 1_000_000 {
        0..10 => "0-10",
        10..50 => "10-50",
        50..200 => "50-200",
        _ => "200+",
    }
}

fn micros(amount: Decimal) -> Option<i64> {
    (amount * Decimal::from(1_000_000)).round().to_i64()
}

/// The reference month's price as shown: millionths of a euro, to the cent.
fn shown_price(micros: Option<i64>) -> Option<Decimal> {
    micros.map(|m| to_cents(Decimal::new(m, 6)))
}

pub(super) fn card(l: ListingRow) -> Card {
    Card {
        reference_monthly_price: shown_price(l.reference_price_micros),
        id: l.id,
        kind: l.kind,
        name: l.name,
        summary: l.summary,
        owner_id: l.owner_id,
        owner_name: l.owner_name,
    }
}

fn summary(description: &str) -> String {
    let first = description.trim();
    if first.chars().count() <= 240 {
        first.to_owned()
    } else {
        let cut: String = first.chars().take(239).collect();
        format!("{cut}…")
    }
}

/// The provider's certifications, valid today, that the offer claims.
pub(super) async fn offer_certifications(
    conn: &mut AnyConnection,
    provider: &str,
    sheet: &OfferSheet,
) -> ServiceResult<Vec<Certification>> {
    let Some(profile) = repo::get_sheet(conn, Sheet::Profile, provider)
        .await?
        .and_then(|p| p.published)
    else {
        return Ok(Vec::new());
    };
    Ok(claimed_certifications(&parse_doc(&profile)?, sheet))
}

/// Of a profile's certifications, those valid today that the offer claims.
pub(super) fn claimed_certifications(profile: &Profile, sheet: &OfferSheet) -> Vec<Certification> {
    let claimed: Vec<String> = sheet.certifications.iter().map(|c| facet_key(c)).collect();
    let day = today();
    profile
        .certifications
        .iter()
        .filter(|c| claimed.contains(&c.key()) && c.valid_on(&day))
        .cloned()
        .collect()
}

/// Puts a published sheet in the index (or takes it out when its owner's
/// profile is not published).
pub(super) async fn index(
    conn: &mut AnyConnection,
    dialect: Dialect,
    sheet: Sheet,
    row: &SheetRow,
) -> ServiceResult<()> {
    let Some(published) = &row.published else {
        repo::unindex_listing(conn, dialect, &row.id).await?;
        return Ok(());
    };
    if sheet != Sheet::Profile
        && repo::get_sheet(conn, Sheet::Profile, &row.owner_id)
            .await?
            .is_none_or(|p| p.published.is_none())
    {
        repo::unindex_listing(conn, dialect, &row.id).await?;
        return Ok(());
    }
    let owner = identity::get_org(conn, &row.owner_id)
        .await?
        .ok_or(ServiceError::NotFound("organisation"))?;
    let mut facets: Vec<(&str, String)> = Vec::new();
    let mut words: Vec<String> = vec![owner.name.clone()];
    let (kind, name, description, price) = match sheet {
        Sheet::Profile => {
            let p: Profile = parse_doc(published)?;
            let roles = repo::roles(conn, &row.owner_id).await?;
            if roles.is_provider == 1 {
                facets.push(("role", "provider".into()));
            }
            if roles.is_publisher == 1 {
                facets.push(("role", "publisher".into()));
            }
            facets.push(("jurisdiction", p.headquarters_country.to_lowercase()));
            let day = today();
            for c in p.certifications.iter().filter(|c| c.valid_on(&day)) {
                facets.push(("certification", c.key()));
                words.push(c.scheme.clone());
            }
            words.push(p.legal_name.clone());
            ("organisation", owner.name.clone(), p.description, None)
        }
        Sheet::Service => {
            let s: ServiceSheet = parse_doc(published)?;
            facets.push(("category", s.category.as_str().into()));
            facets.push(("licence", s.licence.to_lowercase()));
            let free = Licence::parse(&s.licence).is_ok_and(|l| l.is_free());
            facets.push(("free_software", if free { "yes" } else { "no" }.into()));
            for d in &s.deployments {
                facets.push(("deployment", d.as_str().into()));
            }
            for l in &s.data_locations {
                facets.push(("location", l.to_lowercase()));
                facets.push(("jurisdiction", l.to_lowercase()));
            }
            words.extend([s.category.as_str().to_owned(), s.licence.clone()]);
            ("service", s.name, s.description, None)
        }
        Sheet::Offer => {
            let o: OfferSheet = parse_doc(published)?;
            facets.push(("category", o.category.as_str().into()));
            let regions = repo::list_regions(conn).await?;
            for r in regions.iter().filter(|r| o.regions.contains(&r.name)) {
                facets.push(("location", r.name.to_lowercase()));
                facets.push(("jurisdiction", r.jurisdiction.to_lowercase()));
                words.extend([r.name.clone(), r.location.clone()]);
            }
            for c in offer_certifications(conn, &row.owner_id, &o).await? {
                facets.push(("certification", c.key()));
                words.push(c.scheme);
            }
            let price = micros(o.price.monthly_cost(&UsageProfile::reference()));
            if let Some(m) = price {
                facets.push(("price", price_band(m).into()));
            }
            words.push(o.category.as_str().to_owned());
            ("offer", o.name, o.description, price)
        }
    };
    facets.push(("kind", kind.into()));
    let search_key = match repo::get_listing(conn, &row.id).await? {
        Some(existing) => existing.search_key,
        None => loop {
            let key = rand::thread_rng().gen_range(1..repo::KEY_SPACE);
            if !repo::search_key_taken(conn, key).await? {
                break key;
            }
        },
    };
    words.push(description.clone());
    let listing = ListingRow {
        id: row.id.clone(),
        search_key,
        kind: kind.into(),
        owner_id: row.owner_id.clone(),
        owner_name: owner.name,
        name_folded: fold(&name),
        name,
        summary: summary(&description),
        search_text: fold(&words.join(" ")),
        reference_price_micros: price,
        updated_at: now_ms(),
    };
    repo::index_listing(conn, dialect, &listing, &facets).await?;
    Ok(())
}

/// Re-indexes an organisation's services and offers after its profile
/// changed (they show its name and certifications, and are listed only while
/// it is published).
pub(super) async fn reindex_owned(
    conn: &mut AnyConnection,
    dialect: Dialect,
    owner: &str,
    owner_published: bool,
) -> ServiceResult<()> {
    for sheet in [Sheet::Service, Sheet::Offer] {
        for row in repo::sheets_of(conn, sheet, owner).await? {
            if owner_published && row.published.is_some() {
                index(conn, dialect, sheet, &row).await?;
            } else {
                repo::unindex_listing(conn, dialect, &row.id).await?;
            }
        }
    }
    Ok(())
}

/// Re-indexes every published sheet: after the index was recreated (a
/// migration), when it is empty but sheets are published.
pub(super) async fn rebuild_if_empty(
    conn: &mut AnyConnection,
    dialect: Dialect,
) -> ServiceResult<usize> {
    if repo::has_listings(conn).await? {
        return Ok(0);
    }
    let mut n = 0;
    for sheet in [Sheet::Profile, Sheet::Service, Sheet::Offer] {
        for row in repo::published_sheets(conn, sheet).await? {
            index(conn, dialect, sheet, &row).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// The range of search keys that samples `sample` of `count` matches, placed
/// by the query's seed; `None` when all of them fit.
fn sample_range(count: i64, sample: i64, seed: i64) -> Option<(i64, i64)> {
    if count <= sample {
        return None;
    }
    let width = (repo::KEY_SPACE as f64 * sample as f64 / count as f64) as i64;
    let slots = repo::KEY_SPACE - width;
    let at = (seed as u64 % (1 << 20)) as f64 / (1u64 << 20) as f64;
    let from = (slots as f64 * at) as i64;
    Some((from, from + width))
}

/// Results of equal relevance: `search_key XOR seed`.
fn tie_order(key: i64, seed: i64) -> u64 {
    (key ^ seed) as u64
}

pub(super) async fn search(
    platform: &Platform,
    query: &SearchQuery,
    sample: u32,
) -> ServiceResult<SearchResults> {
    let mut filters = Vec::new();
    for (facet, values) in &query.filters {
        if !FACETS.contains(&facet.as_str()) {
            return Err(DomainError::invalid(
                "facet",
                format!("{facet:?} is not one of {}", FACETS.join(", ")),
            )
            .into());
        }
        let values: Vec<String> = values
            .iter()
            .map(|v| v.trim().to_lowercase())
            .filter(|v| !v.is_empty())
            .collect();
        if values.len() > 20 || values.iter().any(|v| v.len() > 100) {
            return Err(DomainError::invalid(
                "facet",
                "at most 20 values of at most 100 characters per facet",
            )
            .into());
        }
        if !values.is_empty() {
            let values = if facet == "certification" {
                values.iter().map(|v| facet_key(v)).collect()
            } else {
                values
            };
            filters.push((facet.clone(), values));
        }
    }
    let text = query.text.as_deref().unwrap_or_default();
    if text.chars().count() > 200 {
        return Err(DomainError::invalid("q", "a query has at most 200 characters").into());
    }
    let max_price_micros = match query.max_price {
        Some(p) if p.is_sign_negative() => {
            return Err(DomainError::invalid("max_price", "a price cannot be negative").into());
        }
        Some(p) => Some(micros(p.min(Decimal::from(1_000_000_000))).unwrap_or(i64::MAX)),
        None => None,
    };
    let page = query.page.max(1);
    if page > 500 {
        return Err(DomainError::invalid("page", "at most 500 pages; refine the search").into());
    }
    let seed = query_seed(text);
    let spec = SearchSpec {
        words: search_terms(text),
        filters,
        max_price_micros,
    };
    let sample = i64::from(sample.max(1));
    let dialect = platform.db().dialect();
    let mut conn = platform.db().acquire().await?;
    let (count, count_exact) = repo::count_matches(&mut conn, dialect, &spec).await?;
    // A range holds `sample` matches on average; one that happens to hold
    // fewer than half is widened (with 1,000 that is vanishingly rare; with
    // a small sample it is not).
    // A price ceiling between SQLite's bands counts up to the next band:
    // up to four samples' worth are read whole, so that the total is exact.
    let mut want = if count_exact { sample } else { sample * 4 };
    let (range, mut rows) = loop {
        let range = sample_range(count, want, seed);
        let rows = if count == 0 {
            Vec::new()
        } else {
            repo::sample_matches(&mut conn, dialect, &spec, range).await?
        };
        if range.is_none() || rows.len() as i64 * 2 >= want {
            break (range, rows);
        }
        want *= 2;
    };
    let read = rows.len();
    if let Some(max) = max_price_micros {
        rows.retain(|r| r.reference_price_micros.is_some_and(|p| p <= max));
    }
    let (total, total_exact) = match range {
        None => (rows.len() as i64, true),
        Some(_) if count_exact => (count, true),
        // Under the next price ceiling: scaled by the sample's share.
        Some(_) => (
            (count as f64 * rows.len() as f64 / read.max(1) as f64).round() as i64,
            false,
        ),
    };
    let scale = if range.is_some() && !rows.is_empty() {
        total as f64 / rows.len() as f64
    } else {
        1.0
    };
    let mut counts: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for r in &rows {
        for pair in r.facets.split(' ') {
            if let Some((facet, value)) = pair.split_once('=') {
                *counts.entry((facet, value)).or_default() += 1;
            }
        }
    }
    let mut facets: BTreeMap<String, Vec<FacetCount>> = BTreeMap::new();
    for ((facet, value), n) in counts {
        facets
            .entry(facet.to_owned())
            .or_default()
            .push(FacetCount {
                value: value.to_owned(),
                count: (n as f64 * scale).round() as i64,
            });
    }
    for values in facets.values_mut() {
        values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    }
    rows.sort_by(|a, b| {
        b.relevance
            .total_cmp(&a.relevance)
            .then_with(|| tie_order(a.search_key, seed).cmp(&tie_order(b.search_key, seed)))
    });
    let first = ((page - 1) * PER_PAGE) as usize;
    let keys: Vec<i64> = rows
        .iter()
        .skip(first)
        .take(PER_PAGE as usize)
        .map(|r| r.search_key)
        .collect();
    let mut found: std::collections::HashMap<i64, repo::HitRow> =
        repo::hits_by_keys(&mut conn, &keys)
            .await?
            .into_iter()
            .map(|h| (h.search_key, h))
            .collect();
    Ok(SearchResults {
        total,
        total_exact,
        ranked: rows.len() as i64,
        page,
        per_page: PER_PAGE,
        hits: keys
            .iter()
            .filter_map(|k| found.remove(k))
            .map(|h| Card {
                reference_monthly_price: shown_price(h.reference_price_micros),
                id: h.id,
                kind: h.kind,
                name: h.name,
                summary: h.summary,
                owner_id: h.owner_id,
                owner_name: h.owner_name,
            })
            .collect(),
        facets,
        facets_exact: range.is_none(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_match_is_read_whole() {
        assert_eq!(sample_range(1000, 1000, 42), None);
        assert_eq!(sample_range(0, 1000, 42), None);
    }

    #[test]
    fn a_large_match_is_sampled_by_a_range_the_seed_places() {
        let (from, to) = sample_range(10_000, 1000, 7).expect("sampled");
        assert!(from >= 0 && to <= repo::KEY_SPACE);
        // A tenth of the key space for a tenth of the matches.
        let share = (to - from) as f64 / repo::KEY_SPACE as f64;
        assert!((share - 0.1).abs() < 1e-9, "{share}");
        let other = sample_range(10_000, 1000, 7 + (1 << 19)).expect("sampled");
        assert_ne!(from, other.0, "another query samples elsewhere");
        assert_eq!(sample_range(10_000, 1000, 7), Some((from, to)), "stable");
        let last = sample_range(10_000, 1000, (1 << 20) - 1).expect("sampled");
        assert!(last.1 <= repo::KEY_SPACE);
    }
}
