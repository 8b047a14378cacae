//! The month so far: what an organisation's invoices would say if the month ended now.

use super::*;

/// The month's bill as it is heading: the month so far, requests and
/// egress extrapolated to the whole month at their pace so far, the bytes
/// stored now kept to the month's end, fees of the subscriptions in force.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Forecast {
    /// `YYYY-MM`.
    pub period: String,
    pub as_of_ms: i64,
    /// One per provider, as the invoices will be.
    pub invoices: Vec<ForecastInvoice>,
    #[schema(value_type = String)]
    pub net: Decimal,
    #[schema(value_type = String)]
    pub gross: Decimal,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ForecastInvoice {
    pub issuer: Party,
    pub vat: Vat,
    pub lines: Vec<InvoiceLine>,
    #[schema(value_type = String)]
    pub net: Decimal,
    #[schema(value_type = String)]
    pub vat_amount: Decimal,
    #[schema(value_type = String)]
    pub gross: Decimal,
}

impl Billing {
    /// The current month's bill for `org`, forecast (see [`Forecast`]): its
    /// owners, admins and billing members, and operators.
    pub async fn forecast(&self, who: &Principal, org: OrgId) -> ServiceResult<Forecast> {
        let mut conn = self.platform().db().acquire().await?;
        self.platform()
            .authorize_org(&mut conn, who, org, Permission::SeeInvoices)
            .await?;
        drop(conn);
        let now = self.now_ms();
        let period = month_containing(now)
            .ok_or_else(|| ServiceError::Internal("no current month".into()))?;
        let elapsed = (now - period.start_ms()).max(HOUR_MS);
        let scope = Scope {
            // Everything written so far, this millisecond included.
            cut: now + 1,
            org: &org.to_string(),
            scale: Decimal::from(period.length_ms()) / Decimal::from(elapsed),
        };
        let drafts = self.drafts(&scope, period).await?;
        let mut conn = self.platform().db().acquire().await?;
        let (buyer, kind) = party(&mut conn, &org.to_string()).await?;
        let mut invoices = Vec::new();
        for ((_, issuer), draft) in drafts {
            let (seller, _) = party(&mut conn, &issuer).await?;
            let document = InvoiceDocument {
                vat: self.vat_of(&seller, &buyer, kind),
                issuer: seller,
                customer: buyer.clone(),
                lines: draft.lines,
                note: None,
            };
            let t = document_totals(&document);
            invoices.push(ForecastInvoice {
                issuer: document.issuer,
                vat: document.vat,
                lines: document.lines,
                net: t.net,
                vat_amount: t.vat,
                gross: t.gross,
            });
        }
        Ok(Forecast {
            period: period_label(period.start_ms()),
            as_of_ms: now,
            net: invoices.iter().map(|i| i.net).sum(),
            gross: invoices.iter().map(|i| i.gross).sum(),
            invoices,
        })
    }
}
