//! The open directory and the single window: public search, pages, open
//! data and comparison (no account needed); profiles, services and offers
//! for their owners; the operator's review; orders, subscriptions, provider
//! fulfilment and webhooks.

use std::collections::BTreeMap;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use nuage_domain::catalogue::{OfferSheet, Profile, Publication, ServiceSheet, UsageProfile};
use nuage_market::orders::{Delivery, Fulfilment, OrderOutcome, Subscription, Webhook};
use nuage_market::{
    Catalogue, Comparison, Decision, FACETS, Grant, OfferPage, OpenData, OrganisationPage, Owned,
    RegionView, ReviewItem, SearchQuery, SearchResults, ServicePage, Verdict,
};
use nuage_market::{Relation, Sheet, Side};
use rust_decimal::Decimal;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::org_id;
use crate::extract::{Caller, JsonBody, Meta, Params, PathParam};
use crate::idempotency::{Idempotency, create_once};
use crate::problem::{ApiError, Problem};

type Cat = Extension<Catalogue>;

// --- public ----------------------------------------------------------------------

/// A search of the directory and the catalogue. Facet values are
/// comma-separated alternatives; facets combine.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words, each matched as a prefix, all required.
    pub q: Option<String>,
    /// `organisation`, `service`, `offer`.
    pub kind: Option<String>,
    pub category: Option<String>,
    /// Region names (offers) or country codes (services).
    pub location: Option<String>,
    /// Country codes or `eu`.
    pub jurisdiction: Option<String>,
    /// E.g. `secnumcloud`, `hds`, `iso27001`.
    pub certification: Option<String>,
    /// SPDX ids or `proprietary`.
    pub licence: Option<String>,
    /// `yes` or `no`.
    pub free_software: Option<String>,
    pub deployment: Option<String>,
    /// `provider`, `publisher`.
    pub role: Option<String>,
    /// Bands of the reference monthly price: `0-10`, `10-50`, `50-200`, `200+`.
    pub price: Option<String>,
    /// The most the reference month may cost, in euros.
    #[param(value_type = Option<String>)]
    pub max_price: Option<String>,
    /// From 1.
    pub page: Option<u32>,
}

impl SearchParams {
    pub fn into_query(self) -> Result<SearchQuery, ApiError> {
        let mut filters = BTreeMap::new();
        let pairs = [
            ("kind", self.kind),
            ("category", self.category),
            ("location", self.location),
            ("jurisdiction", self.jurisdiction),
            ("certification", self.certification),
            ("licence", self.licence),
            ("free_software", self.free_software),
            ("deployment", self.deployment),
            ("role", self.role),
            ("price", self.price),
        ];
        debug_assert_eq!(pairs.len(), FACETS.len());
        for (facet, value) in pairs {
            if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
                filters.insert(
                    facet.to_owned(),
                    v.split(',').map(|s| s.trim().to_owned()).collect(),
                );
            }
        }
        let max_price = match self
            .max_price
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(s) => Some(s.parse::<Decimal>().map_err(|_| {
                nuage_service::ServiceError::from(nuage_domain::DomainError::invalid(
                    "max_price",
                    format!("{s:?} is not an amount in euros"),
                ))
            })?),
        };
        Ok(SearchQuery {
            text: self.q,
            filters,
            max_price,
            page: self.page.unwrap_or(1),
        })
    }
}

#[utoipa::path(get, path = "/api/v1/directory/search", tag = "directory", params(SearchParams),
    responses((status = 200, body = SearchResults), (status = "4XX", body = Problem)))]
pub async fn search(
    Extension(catalogue): Cat,
    Params(params): Params<SearchParams>,
) -> Result<Json<SearchResults>, ApiError> {
    Ok(Json(catalogue.search(&params.into_query()?).await?))
}

#[utoipa::path(get, path = "/api/v1/directory/organisations/{org_id}", tag = "directory", params(("org_id" = String, Path)),
    responses((status = 200, body = OrganisationPage), (status = "4XX", body = Problem)))]
pub async fn organisation(
    Extension(catalogue): Cat,
    PathParam(id): PathParam<String>,
) -> Result<Json<OrganisationPage>, ApiError> {
    Ok(Json(
        catalogue
            .organisation_page(&org_id(&id)?.to_string())
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/directory/services/{service_id}", tag = "directory", params(("service_id" = String, Path)),
    responses((status = 200, body = ServicePage), (status = "4XX", body = Problem)))]
pub async fn service(
    Extension(catalogue): Cat,
    PathParam(id): PathParam<String>,
) -> Result<Json<ServicePage>, ApiError> {
    Ok(Json(catalogue.service_page(&uuid_param(&id)?).await?))
}

#[utoipa::path(get, path = "/api/v1/catalogue/offers/{offer_id}", tag = "catalogue", params(("offer_id" = String, Path)),
    responses((status = 200, body = OfferPage), (status = "4XX", body = Problem)))]
pub async fn offer(
    Extension(catalogue): Cat,
    PathParam(id): PathParam<String>,
) -> Result<Json<OfferPage>, ApiError> {
    Ok(Json(catalogue.offer_page(&uuid_param(&id)?).await?))
}

#[utoipa::path(get, path = "/api/v1/catalogue/offers/{offer_id}/self-description", tag = "catalogue", params(("offer_id" = String, Path)),
    responses((status = 200, body = Object, description = "The offer as JSON-LD, in the Gaia-X service-offering vocabulary where it fits"),
        (status = "4XX", body = Problem)))]
pub async fn self_description(
    Extension(catalogue): Cat,
    PathParam(id): PathParam<String>,
) -> Result<Response, ApiError> {
    let public_url = catalogue.platform().settings().public_url.clone();
    let doc = catalogue
        .self_description(&uuid_param(&id)?, &public_url)
        .await?;
    Ok((
        [(header::CONTENT_TYPE, "application/ld+json")],
        doc.to_string(),
    )
        .into_response())
}

/// Offers to compare, priced for one month of a usage.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareRequest {
    pub offers: Vec<String>,
    /// The reference profile when absent.
    pub usage: Option<UsageProfile>,
}

#[utoipa::path(post, path = "/api/v1/catalogue/compare", tag = "catalogue", request_body = CompareRequest,
    responses((status = 200, body = Vec<Comparison>), (status = "4XX", body = Problem)))]
pub async fn compare(
    Extension(catalogue): Cat,
    body: JsonBody<CompareRequest>,
) -> Result<Json<Vec<Comparison>>, ApiError> {
    let usage = body.value.usage.unwrap_or_else(UsageProfile::reference);
    let ids = body
        .value
        .offers
        .iter()
        .map(|o| uuid_param(o))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(catalogue.compare(&ids, &usage).await?))
}

#[utoipa::path(get, path = "/api/v1/regions", tag = "catalogue",
    responses((status = 200, body = Vec<RegionView>)))]
pub async fn regions(Extension(catalogue): Cat) -> Result<Json<Vec<RegionView>>, ApiError> {
    Ok(Json(catalogue.regions().await?))
}

#[utoipa::path(get, path = "/api/v1/open-data/catalogue.json", tag = "open data",
    responses((status = 200, body = OpenData, description = "The whole directory and catalogue, under the Licence Ouverte 2.0")))]
pub async fn open_data_json(Extension(catalogue): Cat) -> Result<Response, ApiError> {
    let data = catalogue.open_data().await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::CONTENT_DISPOSITION,
                "inline; filename=\"catalogue.json\"",
            ),
        ],
        Json(data),
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/v1/open-data/{table}.csv", tag = "open data",
    params(("table" = String, Path, description = "`organisations`, `services` or `offers`")),
    responses((status = 200, content_type = "text/csv", body = String, description = "One table of the open data, under the Licence Ouverte 2.0"),
        (status = "4XX", body = Problem)))]
pub async fn open_data_csv(
    Extension(catalogue): Cat,
    PathParam(file): PathParam<String>,
) -> Result<Response, ApiError> {
    let table = file.strip_suffix(".csv").unwrap_or(&file).to_owned();
    if !["organisations", "services", "offers"].contains(&table.as_str()) {
        return Err(nuage_service::ServiceError::NotFound("open-data table").into());
    }
    let data = catalogue.open_data().await?;
    let csv = crate::open_data::to_csv(&data, &table)
        .map_err(|e| nuage_service::ServiceError::Internal(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{table}.csv\""),
            ),
        ],
        csv,
    )
        .into_response())
}

pub(crate) fn uuid_param(raw: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(raw.trim())
        .map(|u| u.to_string())
        .map_err(|_| {
            nuage_service::ServiceError::from(nuage_domain::DomainError::invalid(
                "id",
                format!("{raw:?} is not a valid identifier (a UUID)"),
            ))
            .into()
        })
}

// --- regions (operator) -------------------------------------------------------------

/// Where a region is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclareRegion {
    pub location: String,
    pub jurisdiction: String,
}

#[utoipa::path(put, path = "/api/v1/regions/{name}", tag = "catalogue", params(("name" = String, Path)), request_body = DeclareRegion,
    responses((status = 200, body = RegionView), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn declare_region(
    Extension(catalogue): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(name): PathParam<String>,
    body: JsonBody<DeclareRegion>,
) -> Result<Json<RegionView>, ApiError> {
    Ok(Json(
        catalogue
            .declare_region(
                &who,
                &meta,
                &name,
                &body.value.location,
                &body.value.jurisdiction,
            )
            .await?,
    ))
}

// --- sheets, for their owners ---------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/profile", tag = "directory", params(("org_id" = String, Path)),
    responses((status = 200, body = Owned<Profile>), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn get_profile(
    Extension(catalogue): Cat,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<Owned<Profile>>, ApiError> {
    Ok(Json(catalogue.profile(&who, org_id(&id)?).await?))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org_id}/profile", tag = "directory", params(("org_id" = String, Path)), request_body = Profile,
    responses((status = 200, body = Owned<Profile>, description = "Saved as a draft; the published version stays until this one is approved"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn put_profile(
    Extension(catalogue): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    body: JsonBody<Profile>,
) -> Result<Json<Owned<Profile>>, ApiError> {
    Ok(Json(
        catalogue
            .save_profile(&who, &meta, org_id(&id)?, body.value)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/services", tag = "directory", params(("org_id" = String, Path)),
    responses((status = 200, body = [Owned<ServiceSheet>]), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn list_services(
    Extension(catalogue): Cat,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<Vec<Owned<ServiceSheet>>>, ApiError> {
    Ok(Json(
        catalogue
            .sheets_of(&who, Sheet::Service, org_id(&id)?)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/services", tag = "directory", params(("org_id" = String, Path)), request_body = ServiceSheet,
    responses((status = 201, body = Owned<ServiceSheet>), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn create_service(
    Extension(catalogue): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    idempotency: Idempotency,
    body: JsonBody<ServiceSheet>,
) -> Result<Response, ApiError> {
    let org = org_id(&id)?;
    create_once(
        catalogue.platform(),
        &who,
        idempotency,
        &body.digest,
        async {
            Ok(catalogue
                .save_service(&who, &meta, org, None, body.value.clone())
                .await?)
        },
    )
    .await
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/offers", tag = "catalogue", params(("org_id" = String, Path)),
    responses((status = 200, body = [Owned<OfferSheet>]), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn list_offers(
    Extension(catalogue): Cat,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<Vec<Owned<OfferSheet>>>, ApiError> {
    Ok(Json(
        catalogue
            .sheets_of(&who, Sheet::Offer, org_id(&id)?)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/offers", tag = "catalogue", params(("org_id" = String, Path)), request_body = OfferSheet,
    responses((status = 201, body = Owned<OfferSheet>), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn create_offer(
    Extension(catalogue): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    idempotency: Idempotency,
    body: JsonBody<OfferSheet>,
) -> Result<Response, ApiError> {
    let org = org_id(&id)?;
    create_once(
        catalogue.platform(),
        &who,
        idempotency,
        &body.digest,
        async {
            Ok(catalogue
                .save_offer(&who, &meta, org, None, body.value.clone())
                .await?)
        },
    )
    .await
}

/// The owning organisation of a service or offer, from its stored sheet.
async fn owner_of(
    catalogue: &Catalogue,
    who: &nuage_service::Principal,
    sheet: Sheet,
    id: &str,
) -> Result<nuage_domain::ids::OrgId, ApiError> {
    let owned: Owned<serde_json::Value> = catalogue.sheet(who, sheet, id).await?;
    org_id(&owned.owner_id)
}

#[utoipa::path(put, path = "/api/v1/services/{service_id}", tag = "directory", params(("service_id" = String, Path)), request_body = ServiceSheet,
    responses((status = 200, body = Owned<ServiceSheet>), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn put_service(
    Extension(catalogue): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    body: JsonBody<ServiceSheet>,
) -> Result<Json<Owned<ServiceSheet>>, ApiError> {
    let id = uuid_param(&id)?;
    let owner = owner_of(&catalogue, &who, Sheet::Service, &id).await?;
    Ok(Json(
        catalogue
            .save_service(&who, &meta, owner, Some(id), body.value)
            .await?,
    ))
}

#[utoipa::path(put, path = "/api/v1/offers/{offer_id}", tag = "catalogue", params(("offer_id" = String, Path)), request_body = OfferSheet,
    responses((status = 200, body = Owned<OfferSheet>), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn put_offer(
    Extension(catalogue): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    body: JsonBody<OfferSheet>,
) -> Result<Json<Owned<OfferSheet>>, ApiError> {
    let id = uuid_param(&id)?;
    let owner = owner_of(&catalogue, &who, Sheet::Offer, &id).await?;
    Ok(Json(
        catalogue
            .save_offer(&who, &meta, owner, Some(id), body.value)
            .await?,
    ))
}

/// Where the owner moves a sheet: `in_review` (submit), `draft` (take
/// back from review), `withdrawn`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveSheet {
    pub state: Publication,
}

fn sheet_kind(kind: &str) -> Result<Sheet, ApiError> {
    match kind {
        "profiles" | "profile" => Ok(Sheet::Profile),
        "services" | "service" => Ok(Sheet::Service),
        "offers" | "offer" => Ok(Sheet::Offer),
        _ => Err(nuage_service::ServiceError::NotFound("kind of sheet").into()),
    }
}

fn sheet_id(sheet: Sheet, raw: &str) -> Result<String, ApiError> {
    match sheet {
        Sheet::Profile => Ok(org_id(raw)?.to_string()),
        _ => uuid_param(raw),
    }
}

#[utoipa::path(post, path = "/api/v1/sheets/{kind}/{id}/state", tag = "directory",
    params(("kind" = String, Path, description = "`profiles` (the id is the organisation's), `services` or `offers`"), ("id" = String, Path)),
    request_body = MoveSheet, responses((status = 204), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn move_sheet(
    Extension(catalogue): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam((kind, id)): PathParam<(String, String)>,
    body: JsonBody<MoveSheet>,
) -> Result<StatusCode, ApiError> {
    let sheet = sheet_kind(&kind)?;
    catalogue
        .move_own_sheet(&who, &meta, sheet, &sheet_id(sheet, &id)?, body.value.state)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- review (operators) ----------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/review", tag = "directory",
    responses((status = 200, body = Vec<ReviewItem>), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn review_queue(
    Extension(catalogue): Cat,
    Caller(who): Caller,
) -> Result<Json<Vec<ReviewItem>>, ApiError> {
    Ok(Json(catalogue.review_queue(&who).await?))
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    Publish,
    SendBack,
    Withdraw,
}

/// An operator's decision. Publishing a profile says what the organisation
/// is: a provider (it lists offers), a publisher (it lists services), or both.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Review {
    pub decision: ReviewDecision,
    /// Required to send back.
    pub note: Option<String>,
    #[serde(default)]
    pub provider: bool,
    #[serde(default)]
    pub publisher: bool,
}

#[utoipa::path(post, path = "/api/v1/review/{kind}/{id}", tag = "directory",
    params(("kind" = String, Path, description = "`profiles`, `services` or `offers`"), ("id" = String, Path)),
    request_body = Review, responses((status = 204), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn review(
    Extension(catalogue): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam((kind, id)): PathParam<(String, String)>,
    body: JsonBody<Review>,
) -> Result<StatusCode, ApiError> {
    let sheet = sheet_kind(&kind)?;
    let r = body.value;
    let decision = match r.decision {
        ReviewDecision::Publish => Decision::Publish,
        ReviewDecision::SendBack => Decision::SendBack,
        ReviewDecision::Withdraw => Decision::Withdraw,
    };
    catalogue
        .review(
            &who,
            &meta,
            sheet,
            &sheet_id(sheet, &id)?,
            Verdict {
                decision,
                note: r.note,
                grant: Grant {
                    provider: r.provider,
                    publisher: r.publisher,
                },
            },
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- who uses, who supports ------------------------------------------------------------

/// An organisation that declares it uses (or, a provider, supports) a service.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    pub org_id: String,
}

#[utoipa::path(put, path = "/api/v1/services/{service_id}/{relation}", tag = "directory",
    params(("service_id" = String, Path), ("relation" = String, Path, description = "`users` or `supporters`")),
    request_body = Declaration, responses((status = 204), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn declare(
    Extension(catalogue): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam((id, relation)): PathParam<(String, String)>,
    body: JsonBody<Declaration>,
) -> Result<StatusCode, ApiError> {
    declaration(
        &catalogue,
        &who,
        &meta,
        &id,
        &relation,
        &body.value.org_id,
        true,
    )
    .await
}

#[utoipa::path(delete, path = "/api/v1/services/{service_id}/{relation}/{org_id}", tag = "directory",
    params(("service_id" = String, Path), ("relation" = String, Path), ("org_id" = String, Path)),
    responses((status = 204), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn undeclare(
    Extension(catalogue): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam((id, relation, org)): PathParam<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    declaration(&catalogue, &who, &meta, &id, &relation, &org, false).await
}

async fn declaration(
    catalogue: &Catalogue,
    who: &nuage_service::Principal,
    meta: &nuage_service::RequestMeta,
    service: &str,
    relation: &str,
    org: &str,
    on: bool,
) -> Result<StatusCode, ApiError> {
    let relation = match relation {
        "users" => Relation::Uses,
        "supporters" => Relation::Supports,
        _ => return Err(nuage_service::ServiceError::NotFound("relation").into()),
    };
    catalogue
        .declare(who, meta, relation, &uuid_param(service)?, org_id(org)?, on)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- orders and subscriptions ------------------------------------------------------------

/// An order of a published offer.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Order {
    pub offer_id: String,
    /// One of the offer's regions; its first when absent.
    pub region: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/orders", tag = "orders", params(("org_id" = String, Path),
    ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body return the first response")),
    request_body = Order,
    responses((status = 201, body = OrderOutcome, description = "The subscription; for the house's offers, active at once with its bucket and S3 key (the secret is shown once)"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn order(
    Extension(catalogue): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    idempotency: Idempotency,
    body: JsonBody<Order>,
) -> Result<Response, ApiError> {
    let org = org_id(&id)?;
    let o = body.value.clone();
    create_once(
        catalogue.platform(),
        &who,
        idempotency,
        &body.digest,
        async {
            Ok(catalogue
                .order(
                    &who,
                    &meta,
                    org,
                    &uuid_param(&o.offer_id)?,
                    o.region.as_deref(),
                )
                .await?)
        },
    )
    .await
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/subscriptions", tag = "orders", params(("org_id" = String, Path)),
    responses((status = 200, body = Vec<Subscription>, description = "What the organisation bought, newest first"), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn subscriptions(
    Extension(catalogue): Cat,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<Vec<Subscription>>, ApiError> {
    Ok(Json(
        catalogue
            .subscriptions(&who, org_id(&id)?, Side::Buyer)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/sales", tag = "orders", params(("org_id" = String, Path)),
    responses((status = 200, body = Vec<Subscription>, description = "What the provider sold, newest first"), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn sales(
    Extension(catalogue): Cat,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<Vec<Subscription>>, ApiError> {
    Ok(Json(
        catalogue
            .subscriptions(&who, org_id(&id)?, Side::Provider)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/subscriptions/{subscription_id}", tag = "orders", params(("subscription_id" = String, Path)),
    responses((status = 200, body = Subscription), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn subscription(
    Extension(catalogue): Cat,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<Subscription>, ApiError> {
    Ok(Json(catalogue.subscription(&who, &uuid_param(&id)?).await?))
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FulfilmentAction {
    Accept,
    Reject,
    Deliver,
    Suspend,
    Resume,
}

/// What the provider does with an order; a rejection needs a reason.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FulfilmentRequest {
    pub action: FulfilmentAction,
    pub note: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/subscriptions/{subscription_id}/fulfilment", tag = "orders", params(("subscription_id" = String, Path)),
    request_body = FulfilmentRequest,
    responses((status = 200, body = Subscription), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn fulfil(
    Extension(catalogue): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    body: JsonBody<FulfilmentRequest>,
) -> Result<Json<Subscription>, ApiError> {
    let action = match body.value.action {
        FulfilmentAction::Accept => Fulfilment::Accept,
        FulfilmentAction::Reject => Fulfilment::Reject,
        FulfilmentAction::Deliver => Fulfilment::Deliver,
        FulfilmentAction::Suspend => Fulfilment::Suspend,
        FulfilmentAction::Resume => Fulfilment::Resume,
    };
    Ok(Json(
        catalogue
            .fulfil(&who, &meta, &uuid_param(&id)?, action, body.value.note)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/subscriptions/{subscription_id}/cancel", tag = "orders", params(("subscription_id" = String, Path)),
    responses((status = 200, body = Subscription), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn cancel(
    Extension(catalogue): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
) -> Result<Json<Subscription>, ApiError> {
    Ok(Json(
        catalogue.cancel(&who, &meta, &uuid_param(&id)?).await?,
    ))
}

/// The offer to move a subscription to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeOffer {
    pub offer_id: String,
}

#[utoipa::path(post, path = "/api/v1/subscriptions/{subscription_id}/change", tag = "orders", params(("subscription_id" = String, Path)),
    request_body = ChangeOffer,
    responses((status = 200, body = Subscription, description = "The new subscription, holding the old one's buckets and key from now"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn change_offer(
    Extension(catalogue): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    body: JsonBody<ChangeOffer>,
) -> Result<Json<Subscription>, ApiError> {
    Ok(Json(
        catalogue
            .change_offer(
                &who,
                &meta,
                &uuid_param(&id)?,
                &uuid_param(&body.value.offer_id)?,
            )
            .await?,
    ))
}

/// Where a provider is told of orders.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetWebhook {
    pub url: String,
}

#[utoipa::path(put, path = "/api/v1/orgs/{org_id}/webhook", tag = "orders", params(("org_id" = String, Path)), request_body = SetWebhook,
    responses((status = 200, body = Webhook, description = "Deliveries carry `Nuage-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">`; the secret is shown once"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn set_webhook(
    Extension(catalogue): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    body: JsonBody<SetWebhook>,
) -> Result<Json<Webhook>, ApiError> {
    Ok(Json(
        catalogue
            .set_webhook(&who, &meta, org_id(&id)?, &body.value.url)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/webhook/deliveries", tag = "orders", params(("org_id" = String, Path)),
    responses((status = 200, body = Vec<Delivery>), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn deliveries(
    Extension(catalogue): Cat,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<Vec<Delivery>>, ApiError> {
    Ok(Json(catalogue.deliveries(&who, org_id(&id)?).await?))
}
