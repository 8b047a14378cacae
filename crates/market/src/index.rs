//! The search index: what is published, flattened into `listings` with its
//! facets, and searched with the database's own full-text search.
//!
//! A search does a bounded amount of work, whatever it matches. Listings
//! draw a random `search_key` once; a bucket of the key space (a half, a
//! quarter… `repo::Bucket`) holds a fair random sample of any set of
//! listings. The search counts its matches in a bucket that holds about
//! `sample` listings (1,000 by default, `catalogue.search_sample`), then in
//! buckets eight times larger while it finds too few to estimate from
//! (`estimate_matches`). Few matches are read whole, and everything is
//! exact. Otherwise it reads the bucket that holds between half the sample
//! and the sample of the matches: the total and the facet counts are what
//! it holds times the number of buckets, marked as estimates, and the
//! results that can be paged through are its. The buckets are those a hash
//! of the query falls in, so a query always reads the same ones.
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

use crate::{Card, parse_doc, today};
use nuage_service::{Platform, ServiceError, ServiceResult};

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
    /// Whether `total` is exact: when the matches are few enough to be read
    /// whole (`catalogue.search_sample`); beyond, it is estimated from a
    /// fair sample.
    pub total_exact: bool,
    /// How many of the matches are ranked and can be paged through: all of
    /// them, or a fair sample when there are many (refine the search).
    pub ranked: i64,
    pub page: u32,
    pub per_page: u32,
    pub hits: Vec<Card>,
    /// For each facet, its values among all matches and how many have each.
    pub facets: BTreeMap<String, Vec<FacetCount>>,
    /// Whether the facet counts are exact, or estimated from the sample
    /// (as `total_exact`).
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
    now_ms: i64,
) -> ServiceResult<Vec<Certification>> {
    let Some(profile) = repo::get_sheet(conn, Sheet::Profile, provider)
        .await?
        .and_then(|p| p.published)
    else {
        return Ok(Vec::new());
    };
    Ok(claimed_certifications(&parse_doc(&profile)?, sheet, now_ms))
}

/// Of a profile's certifications, those valid today that the offer claims.
pub(super) fn claimed_certifications(
    profile: &Profile,
    sheet: &OfferSheet,
    now_ms: i64,
) -> Vec<Certification> {
    let claimed: Vec<String> = sheet.certifications.iter().map(|c| facet_key(c)).collect();
    let day = today(now_ms);
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
    now_ms: i64,
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
            let day = today(now_ms);
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
            for c in offer_certifications(conn, &row.owner_id, &o, now_ms).await? {
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
        updated_at: now_ms,
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
    now_ms: i64,
) -> ServiceResult<()> {
    for sheet in [Sheet::Service, Sheet::Offer] {
        for row in repo::sheets_of(conn, sheet, owner).await? {
            if owner_published && row.published.is_some() {
                index(conn, dialect, sheet, &row, now_ms).await?;
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
    now_ms: i64,
) -> ServiceResult<usize> {
    if repo::has_listings(conn).await? {
        return Ok(0);
    }
    let mut n = 0;
    for sheet in [Sheet::Profile, Sheet::Service, Sheet::Offer] {
        for row in repo::published_sheets(conn, sheet).await? {
            index(conn, dialect, sheet, &row, now_ms).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// The bucket level whose buckets hold about `per_bucket` of `count`
/// listings: ⌈log2(count / per_bucket)⌉, 0 when they all fit.
fn level_for(count: i64, per_bucket: i64) -> u32 {
    let mut level = 0;
    while level < repo::BUCKET_LEVELS && count > per_bucket << level {
        level += 1;
    }
    level
}

/// Matches a bucket must hold for its estimate to stand (±25 % at two
/// standard deviations), or the whole sample if that is smaller.
const ENOUGH_TO_ESTIMATE: i64 = 64;

/// About how many listings match, when that is more than to read whole:
/// estimated from the first bucket that holds enough of them. The first
/// holds about `sample` listings of all there are, each next one eight
/// times more, so that each count reads a few hundred matches at most.
/// `None` once a bucket shows that the matches are few: too few for the
/// bucket to hold enough, when enough times the number of buckets is about
/// the sample.
async fn estimate_matches(
    conn: &mut AnyConnection,
    dialect: Dialect,
    spec: &SearchSpec,
    sample: i64,
    seed: u64,
) -> ServiceResult<Option<i64>> {
    let enough = ENOUGH_TO_ESTIMATE.min(sample);
    let mut level = level_for(repo::listing_count(conn).await?, sample);
    while let Some(bucket) = repo::Bucket::of_seed(level, seed) {
        let found = repo::count_matches(conn, dialect, spec, Some(bucket)).await?;
        if found >= enough {
            return Ok(Some(found << level));
        }
        if enough << level <= 2 * sample {
            break;
        }
        level = level.saturating_sub(3);
    }
    Ok(None)
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
    // Few matches are read whole. Beyond, the bucket that holds between
    // half the sample and the sample is read; one that happens to hold
    // fewer than a quarter is widened to the bucket around it (with 1,000,
    // vanishingly rare; with a small sample, not).
    let estimate = estimate_matches(&mut conn, dialect, &spec, sample, seed as u64).await?;
    let mut level = estimate.map_or(0, |n| level_for(n, sample));
    let mut rows = loop {
        let bucket = repo::Bucket::of_seed(level, seed as u64);
        let rows = repo::sample_matches(&mut conn, dialect, &spec, bucket, 2 * sample).await?;
        if bucket.is_none() || rows.len() as i64 * 4 >= sample {
            break rows;
        }
        level -= 1;
    };
    if let Some(max) = max_price_micros {
        rows.retain(|r| r.reference_price_micros.is_some_and(|p| p <= max));
    }
    // What the bucket holds, times the number of buckets.
    let total = (rows.len() as i64) << level;
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
                count: n << level,
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
        total_exact: level == 0,
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
        facets_exact: level == 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_match_is_read_whole() {
        assert_eq!(level_for(1000, 1000), 0);
        assert_eq!(level_for(0, 1000), 0);
    }

    #[test]
    fn a_large_match_is_sampled_by_a_bucket_the_seed_places() {
        // Buckets of between half the sample and the sample.
        assert_eq!(level_for(1001, 1000), 1);
        assert_eq!(level_for(2000, 1000), 1);
        assert_eq!(level_for(10_000, 1000), 4);
        assert_eq!(level_for(i64::MAX / 2, 1), repo::BUCKET_LEVELS);
        let seed = 0xdead_beef_0123_4567_u64;
        let b = repo::Bucket::of_seed(4, seed).expect("sampled");
        let (from, to) = b.keys();
        assert_eq!(to - from, repo::KEY_SPACE / 16);
        assert_eq!(from, 0xd * (repo::KEY_SPACE / 16), "the seed's top bits");
        // Each bucket lies inside the coarser one of the same seed.
        let (outer_from, outer_to) = repo::Bucket::of_seed(3, seed).expect("sampled").keys();
        assert!(outer_from <= from && to <= outer_to);
        assert_eq!(
            repo::Bucket::of_seed(0, seed),
            None,
            "level 0 is everything"
        );
        let last = repo::Bucket::of_seed(repo::BUCKET_LEVELS, u64::MAX).expect("sampled");
        assert_eq!(last.keys().1, repo::KEY_SPACE);
    }
}
