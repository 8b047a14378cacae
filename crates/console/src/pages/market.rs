//! The single window in the browser: the open directory and catalogue for
//! everyone (search with facets, public pages, comparison), orders and
//! subscriptions for buyers.

use askama::Template;
use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{Redirect, Response};
use nuage_domain::catalogue::UsageProfile;
use nuage_market::orders::{IssuedKey, Subscription};
use nuage_market::{
    Card, Catalogue, FACETS, OfferPage, OrganisationPage, Relation, SearchQuery, ServicePage,
};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::{NoFields, current_org};
use crate::error::{FormAlert, FormError, PageError};
use crate::form::Posted;
use crate::i18n::Texts;
use crate::session::{Ctx, url_encode};
use crate::views::{Chrome, When};

/// A query string as its pairs, in order (repeated keys kept).
type Pairs = Vec<(String, String)>;

fn read_pairs(query: Result<Query<Pairs>, QueryRejection>) -> Pairs {
    query.map(|Query(p)| p).unwrap_or_default()
}

fn href_of(path: &str, pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return path.to_owned();
    }
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect();
    format!("{path}?{}", query.join("&"))
}

pub fn kind_label(t: &'static Texts, kind: &str) -> &'static str {
    match kind {
        "organisation" => t.m.kind_organisation,
        "service" => t.m.kind_service,
        "offer" => t.m.kind_offer,
        _ => t.m.kind_offer,
    }
}

/// The label of a facet's value, in the page's language where we have one.
fn value_label(t: &'static Texts, facet: &str, value: &str) -> String {
    let known = match facet {
        "kind" => Some(kind_label(t, value)),
        "category" => t.m.label(t.m.categories, value),
        "deployment" => t.m.label(t.m.deployments, value),
        "role" => t.m.label(t.m.roles, value),
        "free_software" => Some(if value == "yes" { t.yes } else { t.no }),
        _ => None,
    };
    match (known, facet) {
        (Some(l), _) => l.to_owned(),
        (None, "jurisdiction") => value.to_uppercase(),
        (None, "price") => format!("{value} €"),
        (None, _) => value.to_owned(),
    }
}

fn facet_label(t: &'static Texts, facet: &str) -> &'static str {
    match facet {
        "kind" => t.m.facet_kind,
        "category" => t.m.facet_category,
        "location" => t.m.facet_location,
        "jurisdiction" => t.m.facet_jurisdiction,
        "certification" => t.m.facet_certification,
        "licence" => t.m.facet_licence,
        "free_software" => t.m.facet_free_software,
        "deployment" => t.m.facet_deployment,
        "role" => t.m.facet_role,
        _ => t.m.facet_price,
    }
}

pub struct FacetValue {
    pub label: String,
    pub count: i64,
    pub selected: bool,
    /// The search with this value added, or removed when it is selected.
    pub href: String,
}

pub struct FacetView {
    pub label: &'static str,
    pub values: Vec<FacetValue>,
}

pub struct Hit {
    pub card: Card,
    pub kind: &'static str,
    pub href: String,
    pub price: Option<String>,
}

fn card_href(card: &Card) -> String {
    match card.kind.as_str() {
        "organisation" => format!("/directory/organisations/{}", card.id),
        "service" => format!("/directory/services/{}", card.id),
        _ => format!("/catalogue/offers/{}", card.id),
    }
}

fn hit(t: &'static Texts, card: Card) -> Hit {
    Hit {
        kind: kind_label(t, &card.kind),
        href: card_href(&card),
        price: card.reference_monthly_price.map(|p| format!("{p} €")),
        card,
    }
}

#[derive(Template)]
#[template(path = "market/directory.html")]
pub struct DirectoryPage {
    pub c: Chrome,
    pub q: String,
    pub max_price: String,
    pub kept: Vec<(String, String)>,
    pub total: i64,
    /// "≈ " when the total is estimated.
    pub total_mark: &'static str,
    /// Shown when only a sample of the matches is ranked.
    pub sampled: Option<String>,
    /// "≈ " when the facet counts are estimated.
    pub count_mark: &'static str,
    pub hits: Vec<Hit>,
    pub facets: Vec<FacetView>,
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
    pub error: FormAlert,
}

pub async fn directory(
    ctx: Ctx,
    Extension(catalogue): Extension<Catalogue>,
    query: Result<Query<Pairs>, QueryRejection>,
) -> Result<Response, PageError> {
    let pairs = read_pairs(query);
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut search = SearchQuery {
        text: Some(get("q")).filter(|q| !q.trim().is_empty()),
        page: get("page").parse().unwrap_or(1),
        ..SearchQuery::default()
    };
    let mut error = FormAlert::none();
    let max_price = get("max_price");
    if !max_price.trim().is_empty() {
        match max_price.trim().replace(',', ".").parse::<Decimal>() {
            Ok(p) => search.max_price = Some(p),
            Err(_) => {
                error = FormAlert(Some(FormError::new(
                    StatusCode::BAD_REQUEST,
                    ctx.t.m.err_max_price,
                )))
            }
        }
    }
    for (k, v) in &pairs {
        if FACETS.contains(&k.as_str()) && !v.is_empty() {
            search.filters.entry(k.clone()).or_default().push(v.clone());
        }
    }
    let results = match catalogue.search(&search).await {
        Ok(r) => Some(r),
        Err(e) => {
            error = FormAlert(Some(FormError::from_service(ctx.t, e)?));
            None
        }
    };
    let without_page: Pairs = pairs.iter().filter(|(k, _)| k != "page").cloned().collect();
    let mut page = DirectoryPage {
        c: ctx.chrome("directory"),
        q: get("q"),
        max_price,
        kept: without_page
            .iter()
            .filter(|(k, _)| FACETS.contains(&k.as_str()))
            .cloned()
            .collect(),
        total: 0,
        total_mark: "",
        sampled: None,
        count_mark: "",
        hits: Vec::new(),
        facets: Vec::new(),
        prev_href: None,
        next_href: None,
        error,
    };
    if let Some(results) = results {
        let page_href = |n: u32| {
            let mut p = without_page.clone();
            p.push(("page".into(), n.to_string()));
            href_of("/directory", &p)
        };
        page.prev_href = (results.page > 1).then(|| page_href(results.page - 1));
        page.next_href = (i64::from(results.page * results.per_page) < results.ranked)
            .then(|| page_href(results.page + 1));
        page.total = results.total;
        page.total_mark = if results.total_exact { "" } else { "≈ " };
        page.count_mark = if results.facets_exact { "" } else { "≈ " };
        page.sampled = (results.ranked < results.total)
            .then(|| ctx.t.m.sampled.replace("{n}", &results.ranked.to_string()));
        page.hits = results.hits.into_iter().map(|c| hit(ctx.t, c)).collect();
        for name in FACETS {
            let Some(counts) = results.facets.get(*name) else {
                continue;
            };
            let values = counts
                .iter()
                .map(|c| {
                    let selected = without_page
                        .iter()
                        .any(|(k, v)| k == name && v.to_lowercase() == c.value);
                    let toggled: Pairs = if selected {
                        without_page
                            .iter()
                            .filter(|(k, v)| !(k == name && v.to_lowercase() == c.value))
                            .cloned()
                            .collect()
                    } else {
                        let mut p = without_page.clone();
                        p.push(((*name).to_owned(), c.value.clone()));
                        p
                    };
                    FacetValue {
                        label: value_label(ctx.t, name, &c.value),
                        count: c.count,
                        selected,
                        href: href_of("/directory", &toggled),
                    }
                })
                .collect();
            page.facets.push(FacetView {
                label: facet_label(ctx.t, name),
                values,
            });
        }
    }
    let status = page.error.status_or(StatusCode::OK);
    ctx.page(status, &page)
}

// --- public pages --------------------------------------------------------------------

#[derive(Template)]
#[template(path = "market/organisation.html")]
pub struct OrganisationView {
    pub c: Chrome,
    pub o: OrganisationPage,
    pub services: Vec<Hit>,
    pub offers: Vec<Hit>,
}

pub async fn organisation(
    ctx: Ctx,
    Extension(catalogue): Extension<Catalogue>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let o = catalogue.organisation_page(&parse_id(&id)?).await?;
    let page = OrganisationView {
        c: ctx.chrome("directory"),
        services: o.services.iter().cloned().map(|c| hit(ctx.t, c)).collect(),
        offers: o.offers.iter().cloned().map(|c| hit(ctx.t, c)).collect(),
        o,
    };
    ctx.page(StatusCode::OK, &page)
}

/// What the signed-in organisation has declared about a service, and may.
pub struct Declarant {
    pub csrf: String,
    pub org_name: String,
    pub uses: bool,
    pub supports: bool,
    /// A provider may declare that it supports the service.
    pub may_support: bool,
}

#[derive(Template)]
#[template(path = "market/service.html")]
pub struct ServiceView {
    pub c: Chrome,
    pub s: ServicePage,
    pub category: &'static str,
    pub deployments: Vec<&'static str>,
    pub declarant: Option<Declarant>,
}

pub async fn service(
    ctx: Ctx,
    Extension(catalogue): Extension<Catalogue>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let s = catalogue.service_page(&parse_id(&id)?).await?;
    let declarant = match &ctx.session {
        Some(session) if !session.second_factor_pending => match current_org(session)? {
            Some((org, m)) if m.role.manages_org() => {
                let org = org.to_string();
                Some(Declarant {
                    csrf: session.csrf_token.clone(),
                    org_name: m.org_name.clone(),
                    uses: s.used_by.iter().any(|o| o.id == org),
                    supports: s.supported_by.iter().any(|o| o.id == org),
                    may_support: catalogue.is_provider(&org).await?,
                })
            }
            _ => None,
        },
        _ => None,
    };
    let page = ServiceView {
        c: ctx.chrome("directory"),
        category: ctx
            .t
            .m
            .label(ctx.t.m.categories, s.sheet.category.as_str())
            .unwrap_or_default(),
        deployments: s
            .sheet
            .deployments
            .iter()
            .map(|d| {
                ctx.t
                    .m
                    .label(ctx.t.m.deployments, d.as_str())
                    .unwrap_or_default()
            })
            .collect(),
        declarant,
        s,
    };
    ctx.page(StatusCode::OK, &page)
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct DeclareForm {
    pub csrf: String,
    /// `uses` or `supports`.
    pub relation: String,
    /// `on` to declare, anything else to take back.
    pub on: String,
}

/// The signed-in organisation declares it uses (or supports) a service,
/// or takes that back.
pub async fn declare(
    Extension(catalogue): Extension<Catalogue>,
    Path(id): Path<String>,
    Posted { ctx, form, .. }: Posted<DeclareForm>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let Some((org, _)) = current_org(session)? else {
        return Err(PageError::Redirect("/".into()));
    };
    let relation = match form.relation.as_str() {
        "uses" => Relation::Uses,
        "supports" => Relation::Supports,
        _ => return Err(PageError::BadForm),
    };
    let id = parse_id(&id)?;
    catalogue
        .declare(
            &session.principal(),
            &ctx.meta,
            relation,
            &id,
            org,
            form.on == "on",
        )
        .await?;
    Ok(axum::response::IntoResponse::into_response(Redirect::to(
        &format!("/directory/services/{id}?notice=declaration_saved"),
    )))
}

/// Who may order, from the page's session.
pub struct Buyer {
    pub csrf: String,
    pub org_name: String,
}

#[derive(Template)]
#[template(path = "market/offer.html")]
pub struct OfferView {
    pub c: Chrome,
    pub o: OfferPage,
    pub category: &'static str,
    pub buyer: Option<Buyer>,
    pub login_href: String,
    pub error: FormAlert,
}

fn parse_id(raw: &str) -> Result<String, PageError> {
    uuid::Uuid::parse_str(raw)
        .map(|u| u.to_string())
        .map_err(|_| PageError::NotFound)
}

async fn offer_view(
    ctx: &Ctx,
    catalogue: &Catalogue,
    id: &str,
    error: FormAlert,
) -> Result<Response, PageError> {
    let o = catalogue.offer_page(&parse_id(id)?).await?;
    let buyer = match &ctx.session {
        Some(s) if !s.second_factor_pending => current_org(s)?.map(|(_, m)| Buyer {
            csrf: s.csrf_token.clone(),
            org_name: m.org_name.clone(),
        }),
        _ => None,
    };
    let page = OfferView {
        c: ctx.chrome("directory"),
        category: ctx
            .t
            .m
            .label(ctx.t.m.categories, o.sheet.category.as_str())
            .unwrap_or_default(),
        buyer,
        login_href: format!("/login?next={}", url_encode(&ctx.here)),
        o,
        error,
    };
    let status = page.error.status_or(StatusCode::OK);
    ctx.page(status, &page)
}

pub async fn offer(
    ctx: Ctx,
    Extension(catalogue): Extension<Catalogue>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    offer_view(&ctx, &catalogue, &id, FormAlert::none()).await
}

// --- comparison ------------------------------------------------------------------------

pub struct CompareRow {
    pub id: String,
    pub name: String,
    pub provider: String,
    pub regions: String,
    pub certifications: String,
    pub availability: String,
    pub capacity: String,
    pub monthly: String,
    pub commitment: String,
}

#[derive(Template)]
#[template(path = "market/compare.html")]
pub struct ComparePage {
    pub c: Chrome,
    pub offers: Vec<String>,
    pub stored_gb: String,
    pub class_a: String,
    pub class_b: String,
    pub egress_gb: String,
    pub rows: Vec<CompareRow>,
    pub error: FormAlert,
}

pub async fn compare(
    ctx: Ctx,
    Extension(catalogue): Extension<Catalogue>,
    query: Result<Query<Pairs>, QueryRejection>,
) -> Result<Response, PageError> {
    let pairs = read_pairs(query);
    let reference = UsageProfile::reference();
    let get = |k: &str, default: String| {
        pairs
            .iter()
            .find(|(key, v)| key == k && !v.trim().is_empty())
            .map_or(default, |(_, v)| v.trim().to_owned())
    };
    let offers: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "offer")
        .map(|(_, v)| v.clone())
        .collect();
    let mut page = ComparePage {
        c: ctx.chrome("directory"),
        stored_gb: get("stored_gb", reference.stored_gb.to_string()),
        class_a: get("class_a", reference.class_a_requests.to_string()),
        class_b: get("class_b", reference.class_b_requests.to_string()),
        egress_gb: get("egress_gb", reference.egress_gb.to_string()),
        offers: offers.clone(),
        rows: Vec::new(),
        error: FormAlert::none(),
    };
    let usage = (|| {
        Some(UsageProfile {
            stored_gb: page.stored_gb.replace(',', ".").parse().ok()?,
            class_a_requests: page.class_a.parse().ok()?,
            class_b_requests: page.class_b.parse().ok()?,
            egress_gb: page.egress_gb.replace(',', ".").parse().ok()?,
        })
    })();
    let ids: Result<Vec<String>, PageError> = offers.iter().map(|o| parse_id(o)).collect();
    let outcome = match (usage, ids) {
        (None, _) => Err(FormError::new(StatusCode::BAD_REQUEST, ctx.t.m.err_usage)),
        (Some(_), Err(_)) => Err(FormError::new(StatusCode::NOT_FOUND, ctx.t.err_not_found)),
        (Some(usage), Ok(ids)) => match catalogue.compare(&ids, &usage).await {
            Ok(c) => Ok(c),
            Err(e) => Err(FormError::from_service(ctx.t, e)?),
        },
    };
    match outcome {
        Ok(compared) => {
            page.rows = compared
                .into_iter()
                .map(|c| CompareRow {
                    id: c.offer.id.clone(),
                    name: c.offer.sheet.name.clone(),
                    provider: c.offer.provider.name.clone(),
                    regions: c
                        .offer
                        .regions
                        .iter()
                        .map(|r| format!("{} ({}, {})", r.name, r.location, r.jurisdiction))
                        .collect::<Vec<_>>()
                        .join(", "),
                    certifications: c
                        .offer
                        .certifications
                        .iter()
                        .map(|x| x.scheme.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                    availability: format!("{} %", c.offer.sheet.sla.availability_percent),
                    capacity: c
                        .offer
                        .sheet
                        .capacity_gb
                        .map_or_else(|| ctx.t.m.unlimited.to_owned(), |g| format!("{g} GB")),
                    monthly: format!("{} €", c.monthly_price),
                    commitment: c.commitment_price.map_or_else(
                        || ctx.t.m.no_commitment.to_owned(),
                        |p| {
                            format!(
                                "{} € / {} {}",
                                p, c.offer.sheet.price.commitment_months, ctx.t.m.months
                            )
                        },
                    ),
                })
                .collect();
        }
        Err(e) => page.error = FormAlert(Some(e)),
    }
    let status = page.error.status_or(StatusCode::OK);
    ctx.page(status, &page)
}

// --- orders and subscriptions ---------------------------------------------------------

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct OrderForm {
    pub csrf: String,
    pub region: String,
}

#[derive(Template)]
#[template(path = "market/ordered.html")]
pub struct OrderedPage {
    pub c: Chrome,
    pub s: SubscriptionView,
    pub key: Option<IssuedKey>,
}

pub async fn order(
    Extension(catalogue): Extension<Catalogue>,
    Path(id): Path<String>,
    Posted { ctx, form, .. }: Posted<OrderForm>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let Some((org, _)) = current_org(session)? else {
        return Err(PageError::Redirect("/".into()));
    };
    let offer_id = parse_id(&id)?;
    match catalogue
        .order(
            &session.principal(),
            &ctx.meta,
            org,
            &offer_id,
            Some(form.region.as_str()),
        )
        .await
    {
        Ok(outcome) => {
            let page = OrderedPage {
                c: ctx.chrome("subscriptions"),
                s: subscription_view(ctx.t, outcome.subscription),
                key: outcome.credentials,
            };
            ctx.page(StatusCode::CREATED, &page)
        }
        Err(e) => {
            let error = FormAlert(Some(FormError::from_service(ctx.t, e)?));
            offer_view(&ctx, &catalogue, &offer_id, error).await
        }
    }
}

pub struct HistoryView {
    pub at: When,
    pub event: String,
    pub actor: String,
    pub note: Option<String>,
}

pub struct SubscriptionView {
    pub id: String,
    pub offer_id: String,
    pub offer_name: String,
    pub provider: String,
    pub buyer: String,
    pub region: String,
    pub state: &'static str,
    pub state_code: String,
    pub buckets: Vec<String>,
    pub access_key_id: Option<String>,
    pub quota: Option<String>,
    pub monthly_fee: String,
    pub note: Option<String>,
    pub history: Vec<HistoryView>,
    pub created: When,
    pub cancellable: bool,
}

pub fn subscription_view(t: &'static Texts, s: Subscription) -> SubscriptionView {
    let resources = s.resources.clone().unwrap_or_default();
    SubscriptionView {
        state: t
            .m
            .label(t.m.sub_states, s.state.as_str())
            .unwrap_or_default(),
        state_code: s.state.as_str().to_owned(),
        cancellable: s
            .state
            .may_become(nuage_domain::catalogue::SubscriptionState::Cancelled),
        monthly_fee: format!("{} €", s.offer.price.monthly_fee),
        buckets: resources.buckets,
        access_key_id: resources.access_key_id,
        quota: resources
            .quota_bytes
            .map(|b| format!("{} GB", b / nuage_domain::catalogue::BYTES_PER_GB)),
        history: s
            .history
            .into_iter()
            .map(|h| HistoryView {
                at: When::at(h.at_ms),
                event: t.m.label(t.m.events, &h.event).unwrap_or("—").to_owned(),
                actor: h.actor,
                note: h.note,
            })
            .collect(),
        created: When::at(s.created_at_ms),
        id: s.id,
        offer_id: s.offer_id,
        offer_name: s.offer_name,
        provider: s.provider_name,
        buyer: s.buyer_name,
        region: s.region,
        note: s.note,
    }
}

#[derive(Template)]
#[template(path = "market/subscriptions.html")]
pub struct SubscriptionsPage {
    pub c: Chrome,
    pub csrf: String,
    pub org_name: Option<String>,
    pub rows: Vec<SubscriptionView>,
}

pub async fn subscriptions(
    ctx: Ctx,
    Extension(catalogue): Extension<Catalogue>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let mut page = SubscriptionsPage {
        c: ctx.chrome("subscriptions"),
        csrf: session.csrf_token.clone(),
        org_name: None,
        rows: Vec::new(),
    };
    if let Some((org, m)) = current_org(session)? {
        page.org_name = Some(m.org_name.clone());
        page.rows = catalogue
            .subscriptions(&session.principal(), org, nuage_market::Side::Buyer)
            .await?
            .into_iter()
            .map(|s| subscription_view(ctx.t, s))
            .collect();
    }
    ctx.page(StatusCode::OK, &page)
}

pub async fn cancel(
    Extension(catalogue): Extension<Catalogue>,
    Path(id): Path<String>,
    Posted { ctx, form: _, .. }: Posted<NoFields>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    catalogue
        .cancel(&session.principal(), &ctx.meta, &parse_id(&id)?)
        .await?;
    Ok(axum::response::IntoResponse::into_response(Redirect::to(
        "/subscriptions?notice=subscription_cancelled",
    )))
}
