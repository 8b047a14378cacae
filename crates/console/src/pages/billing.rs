//! Usage and billing: the month so far as charts, the month's bill
//! forecast, the storage quota with its alerts, the organisation's legal
//! identity for invoices, and the invoices with their Factur-X PDFs and the
//! months that had none.

use askama::Template;
use axum::Extension;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use nuage_billing::Billing;
use nuage_billing::alerts::QuotaAlerts;
use nuage_billing::{Delivery, Forecast, Invoice, Statement, StatementKind};
use nuage_domain::billing::DayUsage;
use nuage_domain::invoice_delivery::{Channel, Status};
use nuage_domain::legal_identity::{ChorusPro, LegalIdentity, Missing, PostalAddress};
use nuage_service::ServiceError;
use nuage_service::accounts::LegalIdentityView;
use nuage_service::auth::Session;
use rust_decimal::Decimal;
use serde::Deserialize;

use super::current_org;
use crate::error::{FormAlert, FormError, PageError};
use crate::form::Posted;
use crate::session::Ctx;
use crate::views::{Chrome, When};

/// One day of the month's charts.
pub struct DayView {
    pub day: String,
    pub stored_gb: String,
    pub requests: i64,
    pub egress_gb: String,
}

/// A bar chart: one bar per day of the month, scaled to its highest.
pub struct Chart {
    pub label: &'static str,
    pub bars: Vec<Bar>,
    pub max: String,
}

pub struct Bar {
    pub x: u32,
    pub height: u32,
    pub title: String,
}

pub struct InvoiceView {
    pub id: String,
    pub number: String,
    pub credit_note: bool,
    pub period: String,
    pub issuer: String,
    pub customer: String,
    pub gross: String,
    pub issued: When,
    /// How it reaches its buyer, and where that stands (with the last
    /// failure's reason).
    pub delivery: String,
}

#[derive(Template)]
#[template(path = "billing.html")]
pub struct BillingPage {
    pub c: Chrome,
    pub csrf: String,
    pub org_name: Option<String>,
    pub days: Vec<DayView>,
    pub charts: Vec<Chart>,
    /// None when the member may not see amounts.
    pub forecast: Option<Forecast>,
    pub alerts: Option<QuotaAlerts>,
    pub invoices: Option<Vec<InvoiceView>>,
    pub thresholds: String,
    /// None when the member may not manage the organisation.
    pub identity: Option<IdentityForm>,
    /// What invoices to it, and from it, still lack.
    pub missing_buyer: String,
    pub missing_issuer: String,
    pub statements: Option<Vec<StatementView>>,
    pub error: FormAlert,
}

/// The legal identity's form, as shown and as posted.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct IdentityForm {
    pub csrf: String,
    pub siret: String,
    pub line1: String,
    pub line2: String,
    pub postcode: String,
    pub city: String,
    pub country: String,
    pub legal_form: String,
    pub share_capital: String,
    pub rcs: String,
    pub chorus_service_code: String,
    pub chorus_engagement_number: String,
    /// A checkbox: present when ticked.
    pub vat_on_debits: Option<String>,
}

impl IdentityForm {
    fn of(view: &LegalIdentityView) -> Self {
        let i = &view.identity;
        let a = i.address.as_ref();
        let chorus = i.chorus_pro.clone().unwrap_or_default();
        let text = |v: Option<&String>| v.cloned().unwrap_or_default();
        Self {
            csrf: String::new(),
            siret: text(view.siret.as_ref()),
            line1: a.map(|a| a.line1.clone()).unwrap_or_default(),
            line2: text(a.and_then(|a| a.line2.as_ref())),
            postcode: a.map(|a| a.postcode.clone()).unwrap_or_default(),
            city: a.map(|a| a.city.clone()).unwrap_or_default(),
            country: a.map_or_else(|| "FR".to_owned(), |a| a.country.clone()),
            legal_form: text(i.legal_form.as_ref()),
            share_capital: i.share_capital.map(|c| c.to_string()).unwrap_or_default(),
            rcs: text(i.rcs.as_ref()),
            chorus_service_code: text(chorus.service_code.as_ref()),
            chorus_engagement_number: text(chorus.engagement_number.as_ref()),
            vat_on_debits: i.vat_on_debits.then(|| "on".to_owned()),
        }
    }

    /// The identity the form states; `previous` keeps what the form does
    /// not show (the Chorus Pro structure's requirements).
    fn identity(&self, previous: &LegalIdentity) -> Result<LegalIdentity, ServiceError> {
        let blank = |v: &str| (!v.trim().is_empty()).then(|| v.trim().to_owned());
        let address_given = [&self.line1, &self.line2, &self.postcode, &self.city]
            .iter()
            .any(|v| !v.trim().is_empty());
        let share_capital = match blank(&self.share_capital) {
            Some(v) => Some(
                v.replace(',', ".")
                    .replace(' ', "")
                    .parse::<Decimal>()
                    .map_err(|_| {
                        nuage_domain::DomainError::invalid(
                            "share_capital",
                            "an amount in euros, e.g. 10000",
                        )
                    })?,
            ),
            None => None,
        };
        let chorus = previous.chorus_pro.clone().unwrap_or_default();
        let chorus = ChorusPro {
            service_code: blank(&self.chorus_service_code),
            engagement_number: blank(&self.chorus_engagement_number),
            ..chorus
        };
        Ok(LegalIdentity {
            address: address_given.then(|| PostalAddress {
                line1: self.line1.clone(),
                line2: blank(&self.line2),
                postcode: self.postcode.clone(),
                city: self.city.clone(),
                country: self.country.clone(),
            }),
            legal_form: blank(&self.legal_form),
            share_capital,
            rcs: blank(&self.rcs),
            chorus_pro: (chorus != ChorusPro::default()).then_some(chorus),
            vat_on_debits: self.vat_on_debits.is_some(),
        })
    }
}

/// A month an organisation got no invoice for.
pub struct StatementView {
    pub period: String,
    pub kind: StatementKind,
    pub missing: String,
}

fn missing_list(missing: &[Missing]) -> String {
    missing
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

const CHART_HEIGHT: u32 = 100;
const BAR_WIDTH: u32 = 14;

fn chart(label: &'static str, days: &[(String, Decimal)], unit: &str) -> Chart {
    let max = days.iter().map(|d| d.1).max().unwrap_or_default();
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, (day, value))| Bar {
            x: i as u32 * (BAR_WIDTH + 2),
            height: if max.is_zero() {
                0
            } else {
                (value * Decimal::from(CHART_HEIGHT) / max)
                    .round()
                    .to_string()
                    .parse()
                    .unwrap_or(0)
            },
            title: format!("{day} : {} {unit}", value.round_dp(6).normalize()),
        })
        .collect();
    Chart {
        label,
        bars,
        max: max.round_dp(6).normalize().to_string(),
    }
}

/// The month's days from the usage per bucket and day: GB stored on
/// average (a day's GB-months times the month's days), requests, egress.
fn month_days(usage: &[DayUsage]) -> Vec<(String, Decimal, i64, Decimal)> {
    let mut days: Vec<(String, Decimal, i64, Decimal)> = Vec::new();
    for u in usage {
        let month_days = time::Date::parse(
            &u.day,
            &time::macros::format_description!("[year]-[month]-[day]"),
        )
        .map_or(30, |d| d.month().length(d.year()));
        let gb = u.storage_gb_months * Decimal::from(month_days);
        match days.last_mut() {
            Some(last) if last.0 == u.day => {
                last.1 += gb;
                last.2 += u.class_a_requests + u.class_b_requests;
                last.3 += u.egress_gb;
            }
            _ => days.push((
                u.day.clone(),
                gb,
                u.class_a_requests + u.class_b_requests,
                u.egress_gb,
            )),
        }
    }
    days
}

fn statement_view(s: Statement) -> StatementView {
    let mut missing = s.missing.customer;
    missing.extend(s.missing.issuer);
    StatementView {
        period: s.period,
        kind: s.kind,
        missing: missing_list(&missing),
    }
}

fn invoice_view(i: Invoice) -> InvoiceView {
    InvoiceView {
        credit_note: i.kind == "credit_note",
        issued: When::at(i.issued_at_ms),
        gross: format!("{:.2}", i.gross),
        issuer: i.document.issuer.name,
        customer: i.document.customer.name,
        id: i.id,
        number: i.number,
        period: i.period,
        delivery: String::new(),
    }
}

/// An invoice's deliveries on one line: channel, status, the last failure.
fn delivery_line(t: &'static nuage_console_texts::BillingTexts, all: &[Delivery]) -> String {
    let line = all
        .iter()
        .map(|d| {
            let channel = match d.channel {
                Channel::Pa => t.ch_pa,
                Channel::ChorusPro => t.ch_chorus_pro,
                Channel::Email => t.ch_email,
                Channel::Webhook => t.ch_webhook,
            };
            let status = match d.status {
                Status::Pending => t.st_pending,
                Status::Delivered => t.st_delivered,
                Status::Failed => t.st_failed,
            };
            match d.attempts.last().filter(|a| !a.ok) {
                Some(a) => format!("{channel} · {status} ({})", a.detail),
                None => format!("{channel} · {status}"),
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    if line.is_empty() {
        t.delivery_none.to_owned()
    } else {
        line
    }
}

/// What a member may not see is left out; other errors stop the page.
fn allowed<T>(outcome: Result<T, ServiceError>) -> Result<Option<T>, PageError> {
    match outcome {
        Ok(v) => Ok(Some(v)),
        Err(ServiceError::Forbidden(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn billing_page(
    ctx: &Ctx,
    billing: &Billing,
    session: &Session,
    (thresholds, posted): (Option<String>, Option<IdentityForm>),
    error: FormAlert,
) -> Result<Response, PageError> {
    let mut page = BillingPage {
        c: ctx.chrome("billing"),
        csrf: session.csrf_token.clone(),
        org_name: None,
        days: Vec::new(),
        charts: Vec::new(),
        forecast: None,
        alerts: None,
        invoices: None,
        thresholds: thresholds.clone().unwrap_or_default(),
        identity: None,
        missing_buyer: String::new(),
        missing_issuer: String::new(),
        statements: None,
        error,
    };
    if let Some((org, membership)) = current_org(session)? {
        let who = session.principal();
        page.org_name = Some(membership.org_name.clone());
        let usage = billing
            .catalogue()
            .storage()
            .daily_usage(&who, org, None, None)
            .await?;
        let days = month_days(&usage);
        let series = |pick: fn(&(String, Decimal, i64, Decimal)) -> Decimal| {
            days.iter()
                .map(|d| (d.0.clone(), pick(d)))
                .collect::<Vec<_>>()
        };
        let b = ctx.t.b;
        page.charts = vec![
            chart(b.chart_storage, &series(|d| d.1), "Go"),
            chart(b.chart_requests, &series(|d| Decimal::from(d.2)), ""),
            chart(b.chart_egress, &series(|d| d.3), "Go"),
        ];
        page.days = days
            .iter()
            .map(|d| DayView {
                day: d.0.clone(),
                stored_gb: d.1.round_dp(6).normalize().to_string(),
                requests: d.2,
                egress_gb: d.3.round_dp(6).normalize().to_string(),
            })
            .collect();
        page.forecast = allowed(billing.forecast(&who, org).await)?;
        page.alerts = allowed(billing.quota_alerts(&who, org).await)?;
        if thresholds.is_none()
            && let Some(a) = &page.alerts
        {
            page.thresholds = a
                .thresholds
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(", ");
        }
        page.invoices = allowed(billing.invoices(&who, org).await)?
            .map(|all| all.into_iter().map(invoice_view).collect::<Vec<_>>());
        if let Some(list) = page.invoices.as_mut() {
            for i in list.iter_mut() {
                let all = billing.deliveries(&who, &i.id).await?;
                i.delivery = delivery_line(ctx.t.b, &all);
            }
        }
        page.statements = allowed(billing.statements(&who, org).await)?
            .map(|all| all.into_iter().map(statement_view).collect());
        if let Some(view) = allowed(billing.platform().legal_identity(&who, org).await)? {
            page.missing_buyer = missing_list(&view.missing_as_buyer);
            page.missing_issuer = missing_list(&view.missing_as_issuer);
            page.identity = Some(posted.unwrap_or_else(|| IdentityForm::of(&view)));
        }
    }
    let status = page.error.status_or(StatusCode::OK);
    ctx.page(status, &page)
}

pub async fn billing(
    ctx: Ctx,
    Extension(billing): Extension<Billing>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    billing_page(&ctx, &billing, session, (None, None), FormAlert::none()).await
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct AlertsForm {
    pub csrf: String,
    pub thresholds: String,
}

pub async fn save_alerts(
    Extension(billing): Extension<Billing>,
    Posted { ctx, form, .. }: Posted<AlertsForm>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let Some((org, _)) = current_org(session)? else {
        return Err(PageError::NotFound);
    };
    let parsed: Result<Vec<u8>, _> = form
        .thresholds
        .split([',', ';', ' '])
        .map(|t| t.trim().trim_end_matches('%'))
        .filter(|t| !t.is_empty())
        .map(str::parse::<u8>)
        .collect();
    let outcome = match parsed {
        Ok(list) => {
            billing
                .set_quota_alerts(&session.principal(), &ctx.meta, org, &list)
                .await
        }
        Err(_) => {
            Err(nuage_domain::DomainError::invalid("thresholds", ctx.t.b.err_thresholds).into())
        }
    };
    match outcome {
        Ok(_) => Ok(Redirect::to("/billing?notice=setting_saved").into_response()),
        Err(e) => {
            let error = FormError::from_service(ctx.t, e)?;
            billing_page(
                &ctx,
                &billing,
                session,
                (Some(form.thresholds), None),
                error.into(),
            )
            .await
        }
    }
}

/// Saves the organisation's legal identity: its owners and admins.
pub async fn save_identity(
    Extension(billing): Extension<Billing>,
    Posted { ctx, form, .. }: Posted<IdentityForm>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let Some((org, _)) = current_org(session)? else {
        return Err(PageError::NotFound);
    };
    let who = session.principal();
    let platform = billing.platform();
    let outcome = match platform.legal_identity(&who, org).await {
        Ok(previous) => match form.identity(&previous.identity) {
            Ok(identity) => {
                platform
                    .set_legal_identity(&who, &ctx.meta, org, Some(&form.siret), &identity)
                    .await
            }
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match outcome {
        Ok(_) => Ok(Redirect::to("/billing?notice=setting_saved#identity").into_response()),
        Err(e) => {
            let error = FormError::from_service(ctx.t, e)?;
            billing_page(&ctx, &billing, session, (None, Some(form)), error.into()).await
        }
    }
}

pub async fn invoice_pdf(
    ctx: Ctx,
    Extension(billing): Extension<Billing>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let id = uuid::Uuid::parse_str(&id)
        .map_err(|_| PageError::NotFound)?
        .to_string();
    let (name, pdf) = billing.invoice_pdf(&session.principal(), &id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        pdf,
    )
        .into_response())
}
