//! Providers' revenue by month and offer, and its CSV.

use super::*;

/// Revenue of one provider, offer and month.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RevenueRow {
    /// `YYYY-MM`.
    pub month: String,
    pub provider_id: String,
    pub provider_name: String,
    /// The offer's name, or `pay-as-you-go`.
    pub offer: String,
    /// Net of credit notes, excluding VAT.
    #[schema(value_type = String)]
    pub net: Decimal,
    pub invoices: usize,
}

impl Billing {
    /// Revenue per month, provider and offer, from the invoices and credit
    /// notes of the periods in `[from, to)`: operators only.
    pub async fn revenue(
        &self,
        who: &Principal,
        from: Period,
        to: Period,
    ) -> ServiceResult<Vec<RevenueRow>> {
        if !who.is_operator() {
            return Err(ServiceError::Forbidden(
                "revenue reports are the operator's".into(),
            ));
        }
        let mut conn = self.platform().db().acquire().await?;
        // (month, provider, offer) → provider's name, net, invoices.
        type Rows = BTreeMap<(String, String, String), (String, Decimal, HashSet<String>)>;
        let mut rows: Rows = BTreeMap::new();
        for row in repo::invoices_for_periods(&mut conn, from.start_ms(), to.end_ms()).await? {
            let document: InvoiceDocument = parse_doc(&row.invoice.document)?;
            let month = period_label(row.invoice.period_start);
            let invoice = row
                .invoice
                .corrects_id
                .clone()
                .unwrap_or(row.invoice.id.clone());
            for line in document.lines {
                let entry = rows
                    .entry((month.clone(), row.invoice.issuer_id.clone(), line.offer))
                    .or_insert_with(|| {
                        (document.issuer.name.clone(), Decimal::ZERO, HashSet::new())
                    });
                entry.1 += line.amount;
                entry.2.insert(invoice.clone());
            }
        }
        Ok(rows
            .into_iter()
            .map(
                |((month, provider_id, offer), (provider_name, net, invoices))| RevenueRow {
                    month,
                    provider_id,
                    provider_name,
                    offer,
                    net,
                    invoices: invoices.len(),
                },
            )
            .collect())
    }
}

/// Revenue rows as CSV: `month, provider_id, provider_name, offer, net_eur,
/// invoices`.
pub fn revenue_csv(rows: &[RevenueRow]) -> ServiceResult<String> {
    use nuage_domain::export::spreadsheet_safe;
    let mut w = csv::Writer::from_writer(Vec::new());
    let written: Result<(), csv::Error> = (|| {
        w.write_record([
            "month",
            "provider_id",
            "provider_name",
            "offer",
            "net_eur",
            "invoices",
        ])?;
        for r in rows {
            // Provider and offer names are anyone's text: no formulas.
            w.write_record([
                r.month.as_str(),
                &r.provider_id,
                &spreadsheet_safe(&r.provider_name),
                &spreadsheet_safe(&r.offer),
                &r.net.to_string(),
                &r.invoices.to_string(),
            ])?;
        }
        Ok(())
    })();
    let bytes = written
        .and_then(|()| w.into_inner().map_err(|e| e.into_error().into()))
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| ServiceError::Internal(e.to_string()))
}
