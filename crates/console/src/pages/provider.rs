//! Providers and publishers in the browser: their public profile, offers
//! and services (saved as drafts, submitted for review), the orders they
//! fulfil, their webhook; and the operator's review queue.

use askama::Template;
use axum::Extension;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use nuage_domain::DomainError;
use nuage_domain::catalogue::{
    CapitalControl, Category, Certification, Deployment, ExtraEuExposure, OfferSheet, PriceModel,
    Profile, Publication, Reversibility, ServiceSheet, Sla, Tier,
};
use nuage_domain::ids::OrgId;
use nuage_market::orders::Fulfilment;
use nuage_market::{
    Catalogue, Decision, Grant, Owned, RegionView, ReviewItem, Sheet, Side, Verdict, form_price,
};
use nuage_procurement::Procurement;
use nuage_service::ServiceError;
use nuage_service::auth::Session;
use serde::Deserialize;

use super::market::{SubscriptionView, subscription_view};
use super::{Pairs, Pick, all, current_org, decimal, field, list, number};
use crate::error::{FormAlert, FormError, PageError};
use crate::form::Posted;
use crate::i18n::Texts;
use crate::session::Ctx;
use crate::views::{Chrome, When};

/// The manager's organisation, or the page that says there is none.
fn managed_org(session: &Session) -> Result<(OrgId, String), PageError> {
    match current_org(session)? {
        Some((org, m)) if m.role.manages_org() || session.user.is_operator => {
            Ok((org, m.org_name.clone()))
        }
        Some(_) => Err(PageError::Service(ServiceError::Forbidden(
            "only the organisation's owners and admins manage its listing".into(),
        ))),
        None => Err(PageError::Redirect("/".into())),
    }
}

fn state_label(t: &'static Texts, state: Publication) -> &'static str {
    t.m.label(t.m.pub_states, state.as_str())
        .unwrap_or_default()
}

// --- the provider's space -------------------------------------------------------------

/// The profile form's values, as typed.
#[derive(Default)]
pub struct ProfileFields {
    pub legal_name: String,
    pub siren: String,
    pub country: String,
    pub description: String,
    pub eu_share: String,
    pub controlled_by: String,
    pub exposed: bool,
    pub statement: String,
    pub certifications: String,
    pub contact_email: String,
    pub website: String,
}

impl ProfileFields {
    fn of(p: &Profile) -> Self {
        Self {
            legal_name: p.legal_name.clone(),
            siren: p.siren.clone().unwrap_or_default(),
            country: p.headquarters_country.clone(),
            description: p.description.clone(),
            eu_share: p.capital.eu_share_percent.to_string(),
            controlled_by: p.capital.controlled_by.clone(),
            exposed: p.extra_eu_exposure.exposed,
            statement: p.extra_eu_exposure.statement.clone(),
            certifications: p
                .certifications
                .iter()
                .map(|c| {
                    format!(
                        "{} | {} | {} | {} | {}",
                        c.scheme, c.issuer, c.scope, c.valid_from, c.valid_until
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
            contact_email: p.contact_email.clone(),
            website: p.website.clone().unwrap_or_default(),
        }
    }

    fn from_pairs(pairs: &Pairs) -> Self {
        Self {
            legal_name: field(pairs, "legal_name"),
            siren: field(pairs, "siren"),
            country: field(pairs, "country"),
            description: field(pairs, "description"),
            eu_share: field(pairs, "eu_share"),
            controlled_by: field(pairs, "controlled_by"),
            exposed: field(pairs, "exposed") == "on",
            statement: field(pairs, "statement"),
            certifications: field(pairs, "certifications"),
            contact_email: field(pairs, "contact_email"),
            website: field(pairs, "website"),
        }
    }

    fn profile(&self) -> Result<Profile, DomainError> {
        let certifications = self
            .certifications
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let parts: Vec<&str> = line.split('|').map(str::trim).collect();
                match parts.as_slice() {
                    [scheme, issuer, scope, from, until] => Ok(Certification {
                        scheme: (*scheme).into(),
                        issuer: (*issuer).into(),
                        scope: (*scope).into(),
                        valid_from: (*from).into(),
                        valid_until: (*until).into(),
                    }),
                    _ => Err(DomainError::invalid(
                        "certifications",
                        "one certification per line: scheme | issuer | scope | from (YYYY-MM-DD) | until (YYYY-MM-DD)",
                    )),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Profile {
            legal_name: self.legal_name.clone(),
            siren: Some(self.siren.clone()),
            headquarters_country: self.country.clone(),
            description: self.description.clone(),
            capital: CapitalControl {
                eu_share_percent: decimal(&self.eu_share, "capital.eu_share_percent")?,
                controlled_by: self.controlled_by.clone(),
            },
            extra_eu_exposure: ExtraEuExposure {
                exposed: self.exposed,
                statement: self.statement.clone(),
            },
            certifications,
            contact_email: self.contact_email.clone(),
            website: Some(self.website.clone()),
        })
    }
}

pub struct SheetLine {
    pub id: String,
    pub name: String,
    pub state: &'static str,
    pub listed: bool,
    pub can_submit: bool,
    pub can_take_back: bool,
    pub can_withdraw: bool,
    pub review_note: Option<String>,
}

fn sheet_line<T>(t: &'static Texts, o: &Owned<T>, name: String) -> SheetLine {
    SheetLine {
        id: o.id.clone(),
        name,
        state: state_label(t, o.state),
        listed: o.published.is_some(),
        can_submit: o.state.owner_may(Publication::InReview),
        can_take_back: o.state == Publication::InReview,
        can_withdraw: o.state.owner_may(Publication::Withdrawn),
        review_note: o.review_note.clone(),
    }
}

#[derive(Template)]
#[template(path = "market/provider.html")]
pub struct ProviderPage {
    pub c: Chrome,
    pub csrf: String,
    pub org_id: String,
    pub org_name: String,
    pub profile: Option<SheetLine>,
    pub fields: ProfileFields,
    pub is_provider: bool,
    pub is_publisher: bool,
    pub offers: Vec<SheetLine>,
    pub services: Vec<SheetLine>,
    pub sales: Vec<SubscriptionView>,
    /// Calls open for bids that the organisation's offers meet.
    pub calls: Vec<crate::pages::tenders::TenderRow>,
    pub webhook_secret: Option<String>,
    pub error: FormAlert,
}

async fn provider_page(
    ctx: &Ctx,
    procurement: &Procurement,
    typed: Option<ProfileFields>,
    webhook_secret: Option<String>,
    error: FormAlert,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let (org, org_name) = managed_org(session)?;
    let who = session.principal();
    let t = ctx.t;
    let profile = match procurement.catalogue().profile(&who, org).await {
        Ok(p) => Some(p),
        Err(ServiceError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let offers: Vec<Owned<OfferSheet>> = procurement
        .catalogue()
        .sheets_of(&who, Sheet::Offer, org)
        .await?;
    let services: Vec<Owned<ServiceSheet>> = procurement
        .catalogue()
        .sheets_of(&who, Sheet::Service, org)
        .await?;
    let sales = procurement
        .catalogue()
        .subscriptions(&who, org, Side::Provider)
        .await?;
    let calls = procurement.matching_tenders(&who, org).await?;
    let page = ProviderPage {
        c: ctx.chrome("provider"),
        csrf: session.csrf_token.clone(),
        org_id: org.to_string(),
        org_name,
        fields: typed.unwrap_or_else(|| {
            profile
                .as_ref()
                .map(|p| ProfileFields::of(&p.document))
                .unwrap_or_default()
        }),
        is_provider: profile.as_ref().is_some_and(|p| p.is_provider),
        is_publisher: profile.as_ref().is_some_and(|p| p.is_publisher),
        profile: profile
            .as_ref()
            .map(|p| sheet_line(t, p, p.document.legal_name.clone())),
        offers: offers
            .iter()
            .map(|o| sheet_line(t, o, o.document.name.clone()))
            .collect(),
        services: services
            .iter()
            .map(|s| sheet_line(t, s, s.document.name.clone()))
            .collect(),
        sales: sales.into_iter().map(|s| subscription_view(t, s)).collect(),
        calls: calls
            .iter()
            .map(|v| crate::pages::tenders::row(t.tn, v))
            .collect(),
        webhook_secret,
        error,
    };
    let status = page.error.status_or(StatusCode::OK);
    ctx.page(status, &page)
}

pub async fn provider(
    ctx: Ctx,
    Extension(procurement): Extension<Procurement>,
) -> Result<Response, PageError> {
    provider_page(&ctx, &procurement, None, None, FormAlert::none()).await
}

pub async fn save_profile(
    Extension(procurement): Extension<Procurement>,
    Posted {
        ctx, form: pairs, ..
    }: Posted<Pairs>,
) -> Result<Response, PageError> {
    let catalogue = procurement.catalogue();
    let session = ctx.user()?;
    let (org, _) = managed_org(session)?;
    let typed = ProfileFields::from_pairs(&pairs);
    let outcome = match typed.profile() {
        Ok(p) => {
            catalogue
                .save_profile(&session.principal(), &ctx.meta, org, p)
                .await
        }
        Err(e) => Err(e.into()),
    };
    match outcome {
        Ok(_) => Ok(Redirect::to("/provider?notice=sheet_saved").into_response()),
        Err(e) => {
            let error = FormAlert(Some(FormError::from_service(ctx.t, e)?));
            provider_page(&ctx, &procurement, Some(typed), None, error).await
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct MoveForm {
    pub csrf: String,
    pub state: String,
}

/// Submit, take back or withdraw one of the organisation's sheets.
pub async fn move_sheet(
    Extension(procurement): Extension<Procurement>,
    Path((kind, id)): Path<(String, String)>,
    Posted { ctx, form, .. }: Posted<MoveForm>,
) -> Result<Response, PageError> {
    let catalogue = procurement.catalogue();
    let session = ctx.user()?;
    let sheet = sheet_kind(&kind)?;
    let to = Publication::parse(&form.state).map_err(|_| PageError::BadForm)?;
    match catalogue
        .move_own_sheet(&session.principal(), &ctx.meta, sheet, &id, to)
        .await
    {
        Ok(()) => Ok(Redirect::to("/provider?notice=sheet_moved").into_response()),
        Err(e) => {
            let error = FormAlert(Some(FormError::from_service(ctx.t, e)?));
            provider_page(&ctx, &procurement, None, None, error).await
        }
    }
}

fn sheet_kind(kind: &str) -> Result<Sheet, PageError> {
    match kind {
        "profile" => Ok(Sheet::Profile),
        "service" => Ok(Sheet::Service),
        "offer" => Ok(Sheet::Offer),
        _ => Err(PageError::NotFound),
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct WebhookForm {
    pub csrf: String,
    pub url: String,
}

pub async fn set_webhook(
    Extension(procurement): Extension<Procurement>,
    Posted { ctx, form, .. }: Posted<WebhookForm>,
) -> Result<Response, PageError> {
    let catalogue = procurement.catalogue();
    let session = ctx.user()?;
    let (org, _) = managed_org(session)?;
    match catalogue
        .set_webhook(&session.principal(), &ctx.meta, org, &form.url)
        .await
    {
        Ok(hook) => provider_page(&ctx, &procurement, None, hook.secret, FormAlert::none()).await,
        Err(e) => {
            let error = FormAlert(Some(FormError::from_service(ctx.t, e)?));
            provider_page(&ctx, &procurement, None, None, error).await
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct SaleForm {
    pub csrf: String,
    pub action: String,
    pub note: String,
}

/// The provider accepts, rejects or delivers an order.
pub async fn fulfil(
    Extension(procurement): Extension<Procurement>,
    Path(id): Path<String>,
    Posted { ctx, form, .. }: Posted<SaleForm>,
) -> Result<Response, PageError> {
    let catalogue = procurement.catalogue();
    let session = ctx.user()?;
    let action = match form.action.as_str() {
        "accept" => Fulfilment::Accept,
        "reject" => Fulfilment::Reject,
        "deliver" => Fulfilment::Deliver,
        "suspend" => Fulfilment::Suspend,
        "resume" => Fulfilment::Resume,
        _ => return Err(PageError::BadForm),
    };
    let note = Some(form.note).filter(|n| !n.trim().is_empty());
    match catalogue
        .fulfil(&session.principal(), &ctx.meta, &id, action, note)
        .await
    {
        Ok(_) => Ok(Redirect::to("/provider?notice=order_updated").into_response()),
        Err(e) => {
            let error = FormAlert(Some(FormError::from_service(ctx.t, e)?));
            provider_page(&ctx, &procurement, None, None, error).await
        }
    }
}

// --- offers and services ----------------------------------------------------------------

#[derive(Template)]
#[template(path = "market/offer_form.html")]
pub struct OfferFormPage {
    pub c: Chrome,
    pub csrf: String,
    pub action: String,
    pub f: Pairs,
    pub categories: Vec<Pick>,
    pub regions: Vec<Pick>,
    pub error: FormAlert,
}

impl OfferFormPage {
    pub fn v(&self, name: &str) -> String {
        field(&self.f, name)
    }
}

fn offer_fields(o: &OfferSheet) -> Pairs {
    let p = &o.price;
    let mut f: Pairs = vec![
        ("name".into(), o.name.clone()),
        ("description".into(), o.description.clone()),
        ("category".into(), o.category.as_str().into()),
        ("certifications".into(), o.certifications.join(", ")),
        (
            "capacity_gb".into(),
            o.capacity_gb.map(|c| c.to_string()).unwrap_or_default(),
        ),
        (
            "availability".into(),
            o.sla.availability_percent.to_string(),
        ),
        ("support_hours".into(), o.sla.support_hours.clone()),
        ("rto_hours".into(), o.sla.rto_hours.to_string()),
        ("rpo_hours".into(), o.sla.rpo_hours.to_string()),
        (
            "export_formats".into(),
            o.reversibility.export_formats.join(", "),
        ),
        (
            "notice_days".into(),
            o.reversibility.notice_days.to_string(),
        ),
        ("monthly_fee".into(), p.monthly_fee.to_string()),
        ("included_gb".into(), p.included_gb.to_string()),
        ("per_gb_month".into(), p.per_gb_month.to_string()),
        ("per_1k_class_a".into(), p.per_1k_class_a.to_string()),
        ("per_1k_class_b".into(), p.per_1k_class_b.to_string()),
        ("per_gb_egress".into(), p.per_gb_egress.to_string()),
        ("commitment_months".into(), p.commitment_months.to_string()),
        (
            "tiers".into(),
            p.tiers
                .iter()
                .map(|t| format!("{} | {}", t.from_gb, t.per_gb_month))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    ];
    f.extend(o.regions.iter().map(|r| ("region".to_owned(), r.clone())));
    f
}

fn offer_from(f: &Pairs) -> Result<OfferSheet, DomainError> {
    let blank_zero = |name: &str| {
        let v = field(f, name);
        if v.is_empty() { "0".to_owned() } else { v }
    };
    let tiers = field(f, "tiers")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| match line.split_once('|') {
            Some((from, price)) => Ok(Tier {
                from_gb: number(from, "tiers")?,
                per_gb_month: form_price(price, "tiers")?,
            }),
            None => Err(DomainError::invalid(
                "tiers",
                "one tier per line: from GB | price per GB-month",
            )),
        })
        .collect::<Result<_, _>>()?;
    Ok(OfferSheet {
        name: field(f, "name"),
        description: field(f, "description"),
        category: Category::parse(&field(f, "category"))?,
        regions: all(f, "region"),
        certifications: list(&field(f, "certifications")),
        capacity_gb: match field(f, "capacity_gb").as_str() {
            "" => None,
            v => Some(number(v, "capacity_gb")?),
        },
        sla: Sla {
            availability_percent: decimal(&field(f, "availability"), "sla.availability_percent")?,
            support_hours: field(f, "support_hours"),
            rto_hours: number(&blank_zero("rto_hours"), "sla.rto_hours")?,
            rpo_hours: number(&blank_zero("rpo_hours"), "sla.rpo_hours")?,
        },
        reversibility: Reversibility {
            export_formats: list(&field(f, "export_formats")),
            notice_days: number(&blank_zero("notice_days"), "reversibility.notice_days")?,
        },
        price: PriceModel {
            monthly_fee: form_price(&field(f, "monthly_fee"), "price.monthly_fee")?,
            included_gb: number(&blank_zero("included_gb"), "price.included_gb")?,
            per_gb_month: form_price(&field(f, "per_gb_month"), "price.per_gb_month")?,
            per_1k_class_a: form_price(&field(f, "per_1k_class_a"), "price.per_1k_class_a")?,
            per_1k_class_b: form_price(&field(f, "per_1k_class_b"), "price.per_1k_class_b")?,
            per_gb_egress: form_price(&field(f, "per_gb_egress"), "price.per_gb_egress")?,
            tiers,
            commitment_months: number(&blank_zero("commitment_months"), "price.commitment_months")?,
        },
    })
}

async fn offer_form_page(
    ctx: &Ctx,
    catalogue: &Catalogue,
    action: String,
    f: Pairs,
    error: FormAlert,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let t = ctx.t;
    let regions: Vec<RegionView> = catalogue.regions().await?;
    let chosen = all(&f, "region");
    let category = field(&f, "category");
    let page = OfferFormPage {
        c: ctx.chrome("provider"),
        csrf: session.csrf_token.clone(),
        action,
        categories: Category::ALL
            .iter()
            .map(|c| Pick {
                value: c.as_str().into(),
                label: t
                    .m
                    .label(t.m.categories, c.as_str())
                    .unwrap_or_default()
                    .into(),
                checked: category == c.as_str(),
            })
            .collect(),
        regions: regions
            .into_iter()
            .map(|r| Pick {
                checked: chosen.contains(&r.name),
                label: format!("{} — {} ({})", r.name, r.location, r.jurisdiction),
                value: r.name,
            })
            .collect(),
        f,
        error,
    };
    let status = page.error.status_or(StatusCode::OK);
    ctx.page(status, &page)
}

/// Where a sheet's form posts: the list for a new one, the sheet for an edit.
fn sheet_action(kind: &str, id: Option<&str>) -> String {
    match id {
        None => format!("/provider/{kind}"),
        Some(id) => format!("/provider/{kind}/{id}"),
    }
}

/// A refused form's fields, to show again (without its CSRF token).
fn without_csrf(f: Pairs) -> Pairs {
    f.into_iter().filter(|(k, _)| k != "csrf").collect()
}

pub async fn new_offer(
    ctx: Ctx,
    Extension(catalogue): Extension<Catalogue>,
) -> Result<Response, PageError> {
    let defaults: Pairs = vec![
        ("availability".into(), "99.9".into()),
        ("support_hours".into(), "24/7".into()),
        ("export_formats".into(), "S3".into()),
        ("category".into(), "storage".into()),
    ];
    offer_form_page(
        &ctx,
        &catalogue,
        sheet_action("offers", None),
        defaults,
        FormAlert::none(),
    )
    .await
}

pub async fn edit_offer(
    ctx: Ctx,
    Extension(catalogue): Extension<Catalogue>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let owned: Owned<OfferSheet> = catalogue
        .sheet(&session.principal(), Sheet::Offer, &id)
        .await?;
    let action = sheet_action("offers", Some(&owned.id));
    offer_form_page(
        &ctx,
        &catalogue,
        action,
        offer_fields(&owned.document),
        FormAlert::none(),
    )
    .await
}

pub async fn save_offer(
    Extension(catalogue): Extension<Catalogue>,
    id: Option<Path<String>>,
    Posted { ctx, form: f, .. }: Posted<Pairs>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let (org, _) = managed_org(session)?;
    let id = id.map(|Path(id)| id);
    let outcome = match offer_from(&f) {
        Ok(sheet) => {
            catalogue
                .save_offer(&session.principal(), &ctx.meta, org, id.clone(), sheet)
                .await
        }
        Err(e) => Err(e.into()),
    };
    match outcome {
        Ok(_) => Ok(Redirect::to("/provider?notice=sheet_saved").into_response()),
        Err(e) => {
            let error = FormAlert(Some(FormError::from_service(ctx.t, e)?));
            let action = sheet_action("offers", id.as_deref());
            let f = without_csrf(f);
            offer_form_page(&ctx, &catalogue, action, f, error).await
        }
    }
}

#[derive(Template)]
#[template(path = "market/service_form.html")]
pub struct ServiceFormPage {
    pub c: Chrome,
    pub csrf: String,
    pub action: String,
    pub f: Pairs,
    pub categories: Vec<Pick>,
    pub deployments: Vec<Pick>,
    pub error: FormAlert,
}

impl ServiceFormPage {
    pub fn v(&self, name: &str) -> String {
        field(&self.f, name)
    }
}

fn service_from(f: &Pairs) -> Result<ServiceSheet, DomainError> {
    Ok(ServiceSheet {
        name: field(f, "name"),
        description: field(f, "description"),
        category: Category::parse(&field(f, "category"))?,
        licence: field(f, "licence"),
        deployments: all(f, "deployment")
            .iter()
            .map(|d| Deployment::parse(d))
            .collect::<Result<_, _>>()?,
        data_locations: list(&field(f, "data_locations")),
        website: Some(field(f, "website")),
    })
}

fn service_fields(s: &ServiceSheet) -> Pairs {
    let mut f: Pairs = vec![
        ("name".into(), s.name.clone()),
        ("description".into(), s.description.clone()),
        ("category".into(), s.category.as_str().into()),
        ("licence".into(), s.licence.clone()),
        ("data_locations".into(), s.data_locations.join(", ")),
        ("website".into(), s.website.clone().unwrap_or_default()),
    ];
    f.extend(
        s.deployments
            .iter()
            .map(|d| ("deployment".to_owned(), d.as_str().to_owned())),
    );
    f
}

async fn service_form_page(
    ctx: &Ctx,
    action: String,
    f: Pairs,
    error: FormAlert,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let t = ctx.t;
    let category = field(&f, "category");
    let chosen = all(&f, "deployment");
    let page = ServiceFormPage {
        c: ctx.chrome("provider"),
        csrf: session.csrf_token.clone(),
        action,
        categories: Category::ALL
            .iter()
            .map(|c| Pick {
                value: c.as_str().into(),
                label: t
                    .m
                    .label(t.m.categories, c.as_str())
                    .unwrap_or_default()
                    .into(),
                checked: category == c.as_str(),
            })
            .collect(),
        deployments: Deployment::ALL
            .iter()
            .map(|d| Pick {
                value: d.as_str().into(),
                label: t
                    .m
                    .label(t.m.deployments, d.as_str())
                    .unwrap_or_default()
                    .into(),
                checked: chosen.iter().any(|c| c == d.as_str()),
            })
            .collect(),
        f,
        error,
    };
    let status = page.error.status_or(StatusCode::OK);
    ctx.page(status, &page)
}

pub async fn new_service(ctx: Ctx) -> Result<Response, PageError> {
    let defaults: Pairs = vec![
        ("category".into(), "office".into()),
        ("licence".into(), "AGPL-3.0-or-later".into()),
        ("data_locations".into(), "FR".into()),
    ];
    service_form_page(
        &ctx,
        sheet_action("services", None),
        defaults,
        FormAlert::none(),
    )
    .await
}

pub async fn edit_service(
    ctx: Ctx,
    Extension(catalogue): Extension<Catalogue>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let owned: Owned<ServiceSheet> = catalogue
        .sheet(&session.principal(), Sheet::Service, &id)
        .await?;
    let action = sheet_action("services", Some(&owned.id));
    service_form_page(
        &ctx,
        action,
        service_fields(&owned.document),
        FormAlert::none(),
    )
    .await
}

pub async fn save_service(
    Extension(catalogue): Extension<Catalogue>,
    id: Option<Path<String>>,
    Posted { ctx, form: f, .. }: Posted<Pairs>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let (org, _) = managed_org(session)?;
    let id = id.map(|Path(id)| id);
    let outcome = match service_from(&f) {
        Ok(sheet) => {
            catalogue
                .save_service(&session.principal(), &ctx.meta, org, id.clone(), sheet)
                .await
        }
        Err(e) => Err(e.into()),
    };
    match outcome {
        Ok(_) => Ok(Redirect::to("/provider?notice=sheet_saved").into_response()),
        Err(e) => {
            let error = FormAlert(Some(FormError::from_service(ctx.t, e)?));
            let action = sheet_action("services", id.as_deref());
            let f = without_csrf(f);
            service_form_page(&ctx, action, f, error).await
        }
    }
}

// --- the operator's review --------------------------------------------------------------

pub struct ReviewLine {
    pub item: ReviewItem,
    pub kind: &'static str,
    pub submitted: When,
    pub is_profile: bool,
}

#[derive(Template)]
#[template(path = "market/review.html")]
pub struct ReviewPage {
    pub c: Chrome,
    pub csrf: String,
    pub rows: Vec<ReviewLine>,
    pub error: FormAlert,
}

async fn review_page(
    ctx: &Ctx,
    catalogue: &Catalogue,
    error: FormAlert,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let rows = catalogue
        .review_queue(&session.principal())
        .await?
        .into_iter()
        .map(|item| ReviewLine {
            kind: ctx
                .t
                .m
                .label(ctx.t.m.sheet_kinds, &item.kind)
                .unwrap_or_default(),
            submitted: When::at(item.submitted_at_ms),
            is_profile: item.kind == "profile",
            item,
        })
        .collect();
    let page = ReviewPage {
        c: ctx.chrome("review"),
        csrf: session.csrf_token.clone(),
        rows,
        error,
    };
    let status = page.error.status_or(StatusCode::OK);
    ctx.page(status, &page)
}

pub async fn review_queue(
    ctx: Ctx,
    Extension(catalogue): Extension<Catalogue>,
) -> Result<Response, PageError> {
    review_page(&ctx, &catalogue, FormAlert::none()).await
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct ReviewForm {
    pub csrf: String,
    pub decision: String,
    pub note: String,
    pub provider: String,
    pub publisher: String,
}

pub async fn review(
    Extension(catalogue): Extension<Catalogue>,
    Path((kind, id)): Path<(String, String)>,
    Posted { ctx, form, .. }: Posted<ReviewForm>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let sheet = sheet_kind(&kind)?;
    let decision = match form.decision.as_str() {
        "publish" => Decision::Publish,
        "send_back" => Decision::SendBack,
        "withdraw" => Decision::Withdraw,
        _ => return Err(PageError::BadForm),
    };
    let verdict = Verdict {
        decision,
        note: Some(form.note).filter(|n| !n.trim().is_empty()),
        grant: Grant {
            provider: form.provider == "on",
            publisher: form.publisher == "on",
        },
    };
    match catalogue
        .review(&session.principal(), &ctx.meta, sheet, &id, verdict)
        .await
    {
        Ok(()) => Ok(Redirect::to("/operator/review?notice=review_done").into_response()),
        Err(e) => {
            let error = FormAlert(Some(FormError::from_service(ctx.t, e)?));
            review_page(&ctx, &catalogue, error).await
        }
    }
}
