//! The operator's pages: the outbox, where every e-mail the platform sent
//! is kept (and, without an SMTP relay, the only place it reaches), and
//! revenue per month, provider and offer, with its CSV export.

use askama::Template;
use axum::Extension;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use nuage_billing::{Billing, RevenueRow, parse_period};
use nuage_service::ServiceError;

use crate::error::{FormAlert, FormError, PageError};
use crate::session::Ctx;
use crate::views::{Chrome, When};

/// How many of the newest messages the page shows.
const OUTBOX_PAGE: i64 = 100;

pub enum Delivery {
    Sent(When),
    Failed(String),
    Kept,
}

pub struct MailRow {
    pub id: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub created: When,
    pub delivery: Delivery,
}

#[derive(Template)]
#[template(path = "outbox.html")]
pub struct OutboxPage {
    pub c: Chrome,
    pub rows: Vec<MailRow>,
}

pub async fn outbox(ctx: Ctx) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let rows = ctx
        .platform
        .outbox(&session.principal(), OUTBOX_PAGE)
        .await?
        .into_iter()
        .map(|m| MailRow {
            delivery: match (m.sent_at, m.last_error) {
                (Some(at), _) => Delivery::Sent(When::at(at)),
                (None, Some(error)) => Delivery::Failed(error),
                (None, None) => Delivery::Kept,
            },
            id: m.id,
            to: m.recipient,
            subject: m.subject,
            body: m.body,
            created: When::at(m.created_at),
        })
        .collect();
    ctx.page(
        StatusCode::OK,
        &OutboxPage {
            c: ctx.chrome("outbox"),
            rows,
        },
    )
}

/// The months of the revenue page, `YYYY-MM` (this year's by default).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct RevenueQuery {
    pub from: String,
    pub to: String,
}

pub struct RevenueLine {
    pub month: String,
    pub provider: String,
    pub offer: String,
    pub net: String,
    pub invoices: usize,
}

#[derive(Template)]
#[template(path = "revenue.html")]
pub struct RevenuePage {
    pub c: Chrome,
    pub from: String,
    pub to: String,
    pub rows: Vec<RevenueLine>,
    pub total: String,
    pub error: FormAlert,
    /// What the house's legal identity lacks: its invoices are held.
    pub house_missing: String,
}

/// The query's months, or January to this month.
fn months(q: &RevenueQuery) -> (String, String) {
    let now = time::OffsetDateTime::now_utc();
    let pick = |v: &str, default: String| {
        if v.trim().is_empty() {
            default
        } else {
            v.trim().to_owned()
        }
    };
    (
        pick(&q.from, format!("{:04}-01", now.year())),
        pick(
            &q.to,
            format!("{:04}-{:02}", now.year(), u8::from(now.month())),
        ),
    )
}

async fn revenue_rows(
    billing: &Billing,
    who: &nuage_service::Principal,
    from: &str,
    to: &str,
) -> Result<Vec<RevenueRow>, ServiceError> {
    billing
        .revenue(who, parse_period(from)?, parse_period(to)?)
        .await
}

pub async fn revenue(
    ctx: Ctx,
    Extension(billing): Extension<Billing>,
    query: Result<Query<RevenueQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let who = ctx.user()?.principal();
    let (from, to) = months(&super::read_query(query));
    let (rows, error) = match revenue_rows(&billing, &who, &from, &to).await {
        Ok(rows) => (rows, FormAlert::none()),
        Err(e @ ServiceError::Invalid(_)) => {
            (Vec::new(), FormError::from_service(ctx.t, e)?.into())
        }
        Err(e) => return Err(e.into()),
    };
    let total: rust_decimal::Decimal = rows.iter().map(|r| r.net).sum();
    let house_missing = billing
        .house_missing()
        .await?
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let page = RevenuePage {
        house_missing,
        c: ctx.chrome("revenue"),
        rows: rows
            .into_iter()
            .map(|r| RevenueLine {
                month: r.month,
                provider: r.provider_name,
                offer: r.offer,
                net: format!("{:.2}", r.net),
                invoices: r.invoices,
            })
            .collect(),
        total: format!("{total:.2}"),
        from,
        to,
        error,
    };
    let status = page.error.status_or(StatusCode::OK);
    ctx.page(status, &page)
}

pub async fn revenue_csv(
    ctx: Ctx,
    Extension(billing): Extension<Billing>,
    query: Result<Query<RevenueQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let who = ctx.user()?.principal();
    let (from, to) = months(&super::read_query(query));
    let rows = revenue_rows(&billing, &who, &from, &to).await?;
    let csv = nuage_billing::revenue_csv(&rows)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"revenue-{from}-{to}.csv\""),
            ),
        ],
        csv,
    )
        .into_response())
}
