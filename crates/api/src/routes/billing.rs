//! Pay-per-use as the API shows it: billing runs and metering for
//! operators, invoices and credit notes, revenue reports.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use nuage_billing::Billing;
use nuage_billing::alerts::QuotaAlerts;
use nuage_billing::{
    Delivery, Forecast, IngestOutcome, Invoice, RevenueRow, RunSummary, Statement,
    UsageRecordInput, parse_period, revenue_csv,
};
use nuage_service::ServiceError;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::catalogue::uuid_param;
use super::org_id;
use crate::extract::{Caller, JsonBody, Meta, Params, PathParam};
use crate::problem::{ApiError, Problem};

type Cat = Extension<Billing>;

/// The period to bill.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// A month that is over, `YYYY-MM` (UTC).
    #[schema(example = "2026-10")]
    pub period: String,
}

#[utoipa::path(post, path = "/api/v1/billing/runs", tag = "billing", request_body = RunRequest,
    responses((status = 200, body = RunSummary, description = "The period's invoices are issued (an interrupted run is finished; a complete one is reported as it was)"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn run(
    Extension(billing): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    body: JsonBody<RunRequest>,
) -> Result<Json<RunSummary>, ApiError> {
    let period = parse_period(&body.value.period).map_err(ServiceError::from)?;
    Ok(Json(billing.run_billing(&who, &meta, period).await?))
}

/// Usage records from a meter.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageDelivery {
    pub records: Vec<UsageRecordInput>,
}

#[utoipa::path(post, path = "/api/v1/usage-records", tag = "billing", request_body = UsageDelivery,
    responses((status = 200, body = IngestOutcome, description = "Stored; records delivered before with the same content count once"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn ingest(
    Extension(billing): Cat,
    Caller(who): Caller,
    body: JsonBody<UsageDelivery>,
) -> Result<Json<IngestOutcome>, ApiError> {
    Ok(Json(billing.ingest_usage(&who, &body.value.records).await?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/invoices", tag = "billing", params(("org_id" = String, Path)),
    responses((status = 200, body = Vec<Invoice>, description = "Invoices and credit notes received and issued, newest first"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn invoices(
    Extension(billing): Cat,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<Vec<Invoice>>, ApiError> {
    Ok(Json(billing.invoices(&who, org_id(&id)?).await?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/statements", tag = "billing", params(("org_id" = String, Path)),
    responses((status = 200, body = Vec<Statement>, description = "Months billing runs did not invoice: 0.00 (statements), or held while a legal identity was incomplete; newest first"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn statements(
    Extension(billing): Cat,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<Vec<Statement>>, ApiError> {
    Ok(Json(billing.statements(&who, org_id(&id)?).await?))
}

#[utoipa::path(get, path = "/api/v1/invoices/{invoice_id}", tag = "billing", params(("invoice_id" = String, Path)),
    responses((status = 200, body = Invoice), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn invoice(
    Extension(billing): Cat,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<Invoice>, ApiError> {
    Ok(Json(billing.invoice(&who, &uuid_param(&id)?).await?))
}

#[utoipa::path(get, path = "/api/v1/invoices/{invoice_id}/facturx", tag = "billing", params(("invoice_id" = String, Path)),
    responses((status = 200, content_type = "application/pdf", body = Vec<u8>, description = "The invoice as Factur-X: a PDF/A-3 carrying its EN 16931 CII XML (factur-x.xml)"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn facturx(
    Extension(billing): Cat,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
) -> Result<Response, ApiError> {
    let (name, pdf) = billing.invoice_pdf(&who, &uuid_param(&id)?).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        pdf,
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/v1/invoices/{invoice_id}/deliveries", tag = "billing", params(("invoice_id" = String, Path)),
    responses((status = 200, body = Vec<Delivery>, description = "How the invoice reaches its buyer (plateforme agréée, Chorus Pro, e-mail or webhook), with every attempt"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn deliveries(
    Extension(billing): Cat,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<Vec<Delivery>>, ApiError> {
    Ok(Json(billing.deliveries(&who, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/invoices/{invoice_id}/ubl", tag = "billing", params(("invoice_id" = String, Path)),
    responses((status = 200, content_type = "application/xml", body = String, description = "The invoice as UBL 2.1 (an Invoice, or a CreditNote), Peppol BIS Billing 3.0: the EN 16931 invoice the Peppol network carries"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn ubl(
    Extension(billing): Cat,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
) -> Result<Response, ApiError> {
    let (name, xml) = billing.ubl(&who, &uuid_param(&id)?).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/xml".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        xml,
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/forecast", tag = "billing", params(("org_id" = String, Path)),
    responses((status = 200, body = Forecast, description = "The current month's bill as it is heading"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn forecast(
    Extension(billing): Cat,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<Forecast>, ApiError> {
    Ok(Json(billing.forecast(&who, org_id(&id)?).await?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/quota-alerts", tag = "billing", params(("org_id" = String, Path)),
    responses((status = 200, body = QuotaAlerts), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn quota_alerts(
    Extension(billing): Cat,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<QuotaAlerts>, ApiError> {
    Ok(Json(billing.quota_alerts(&who, org_id(&id)?).await?))
}

/// Percentages of the storage quota to be told at.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetQuotaAlerts {
    /// 1 to 100, at most five; empty turns alerts off.
    pub thresholds: Vec<u8>,
}

#[utoipa::path(put, path = "/api/v1/orgs/{org_id}/quota-alerts", tag = "billing", params(("org_id" = String, Path)),
    request_body = SetQuotaAlerts,
    responses((status = 200, body = QuotaAlerts), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn set_quota_alerts(
    Extension(billing): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    body: JsonBody<SetQuotaAlerts>,
) -> Result<Json<QuotaAlerts>, ApiError> {
    Ok(Json(
        billing
            .set_quota_alerts(&who, &meta, org_id(&id)?, &body.value.thresholds)
            .await?,
    ))
}

/// Why an invoice is cancelled.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditRequest {
    pub reason: String,
}

#[utoipa::path(post, path = "/api/v1/invoices/{invoice_id}/credit-notes", tag = "billing", params(("invoice_id" = String, Path)),
    request_body = CreditRequest,
    responses((status = 201, body = Invoice, description = "A credit note of the whole invoice, numbered in the issuer's sequence"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn credit(
    Extension(billing): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    body: JsonBody<CreditRequest>,
) -> Result<Response, ApiError> {
    let note = billing
        .credit_note(&who, &meta, &uuid_param(&id)?, &body.value.reason)
        .await?;
    Ok((StatusCode::CREATED, Json(note)).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RevenueParams {
    /// The first month, `YYYY-MM`.
    pub from: String,
    /// The last month, included; `from` by default.
    pub to: Option<String>,
    /// `csv` for a spreadsheet; JSON by default.
    pub format: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/billing/revenue", tag = "billing", params(RevenueParams),
    responses((status = 200, body = Vec<RevenueRow>, description = "Net revenue (credit notes deducted, VAT excluded) per month, provider and offer; `format=csv` gives it as CSV"),
        (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn revenue(
    Extension(billing): Cat,
    Caller(who): Caller,
    Params(p): Params<RevenueParams>,
) -> Result<Response, ApiError> {
    let from = parse_period(&p.from).map_err(ServiceError::from)?;
    let to = parse_period(p.to.as_deref().unwrap_or(&p.from)).map_err(ServiceError::from)?;
    let rows = billing.revenue(&who, from, to).await?;
    match p.format.as_deref() {
        None | Some("json") => Ok(Json(rows).into_response()),
        Some("csv") => {
            let csv = revenue_csv(&rows)?;
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"revenue.csv\"",
                    ),
                ],
                csv,
            )
                .into_response())
        }
        Some(other) => Err(ServiceError::from(nuage_domain::DomainError::invalid(
            "format",
            format!("{other:?} is not a format: csv or json"),
        ))
        .into()),
    }
}
