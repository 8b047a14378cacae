//! The search index: what is published, flattened into `listings` with its
//! facets, and searched with the database's own full-text search.
//!
//! Order of results: by relevance (the engine's score, rounded so that
//! near-equal scores tie), then by `shuffle XOR seed`, where `shuffle` is a
//! random number each listing draws once and `seed` a hash of the query.
//! The order is stable for a query, differs between queries, and puts no
//! provider permanently on top.

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
    pub total: i64,
    pub page: u32,
    pub per_page: u32,
    pub hits: Vec<Card>,
    /// For each facet, its values among all matches and how many have each.
    pub facets: BTreeMap<String, Vec<FacetCount>>,
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
    let profile: Profile = parse_doc(&profile)?;
    let claimed: Vec<String> = sheet.certifications.iter().map(|c| facet_key(c)).collect();
    let day = today();
    Ok(profile
        .certifications
        .into_iter()
        .filter(|c| claimed.contains(&c.key()) && c.valid_on(&day))
        .collect())
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
    let shuffle = match repo::get_listing(conn, &row.id).await? {
        Some(existing) => existing.shuffle,
        None => i64::from(rand::thread_rng().gen_range(0..=0x7fff_ffff_u32)),
    };
    words.push(description.clone());
    let listing = ListingRow {
        id: row.id.clone(),
        kind: kind.into(),
        owner_id: row.owner_id.clone(),
        owner_name: owner.name,
        name_folded: fold(&name),
        name,
        summary: summary(&description),
        search_text: fold(&words.join(" ")),
        reference_price_micros: price,
        shuffle,
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

pub(super) async fn search(
    platform: &Platform,
    query: &SearchQuery,
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
    let spec = SearchSpec {
        words: search_terms(text),
        filters,
        max_price_micros,
        seed: query_seed(text),
        limit: i64::from(PER_PAGE),
        offset: i64::from((page - 1) * PER_PAGE),
    };
    let dialect = platform.db().dialect();
    let mut conn = platform.db().acquire().await?;
    let hits = repo::search(&mut conn, dialect, &spec).await?;
    let (total, counts) = repo::search_counts(&mut conn, dialect, &spec).await?;
    let mut facets: BTreeMap<String, Vec<FacetCount>> = BTreeMap::new();
    for c in counts {
        facets.entry(c.facet).or_default().push(FacetCount {
            value: c.value,
            count: c.count,
        });
    }
    Ok(SearchResults {
        total,
        page,
        per_page: PER_PAGE,
        hits: hits
            .into_iter()
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
    })
}
