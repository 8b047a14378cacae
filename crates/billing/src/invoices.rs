//! Issued invoices and credit notes: reading them, their Factur-X PDF and UBL, and crediting an invoice.

use super::*;

impl Billing {
    /// An organisation's invoices and credit notes, received and issued:
    /// its owners, admins and billing members, and operators.
    pub async fn invoices(&self, who: &Principal, org: OrgId) -> ServiceResult<Vec<Invoice>> {
        let mut conn = self.platform().db().acquire().await?;
        self.platform()
            .authorize_org(&mut conn, who, org, Permission::SeeInvoices)
            .await?;
        repo::invoices_of_org(&mut conn, &org.to_string())
            .await?
            .into_iter()
            .map(invoice_view)
            .collect()
    }

    /// What an organisation's billing runs did not invoice: months that
    /// came to 0.00 (statements), and invoices held while a party's legal
    /// identity lacks what they must say; newest first.
    pub async fn statements(&self, who: &Principal, org: OrgId) -> ServiceResult<Vec<Statement>> {
        let mut conn = self.platform().db().acquire().await?;
        self.platform()
            .authorize_org(&mut conn, who, org, Permission::SeeInvoices)
            .await?;
        let mut out = Vec::new();
        for hold in repo::holds_of_customer(&mut conn, &org.to_string()).await? {
            let run = repo::get_run(&mut conn, &hold.run_id)
                .await?
                .ok_or(ServiceError::NotFound("billing run"))?;
            out.push(Statement {
                period: period_label(run.period_start),
                issuer_id: hold.issuer_id,
                kind: if hold.reason == "zero" {
                    StatementKind::Zero
                } else if hold.released_at.is_some() {
                    StatementKind::Issued
                } else {
                    StatementKind::Held
                },
                missing: parse_doc(&hold.missing)?,
                document: hold.document.as_deref().map(parse_doc).transpose()?,
            });
        }
        Ok(out)
    }

    /// One invoice or credit note, for its customer's and its issuer's
    /// owners, admins and billing members, and operators.
    pub async fn invoice(&self, who: &Principal, id: &str) -> ServiceResult<Invoice> {
        let mut conn = self.platform().db().acquire().await?;
        let row = repo::get_invoice(&mut conn, id)
            .await?
            .ok_or(ServiceError::NotFound("invoice"))?;
        if !who.is_operator() {
            let mut allowed = false;
            for org in [&row.invoice.customer_id, &row.invoice.issuer_id] {
                let org = OrgId::parse(org)?;
                if self
                    .platform()
                    .authorize_org(&mut conn, who, org, Permission::SeeInvoices)
                    .await
                    .is_ok()
                {
                    allowed = true;
                }
            }
            if !allowed {
                return Err(ServiceError::NotFound("invoice"));
            }
        }
        invoice_view(row)
    }

    /// An invoice or credit note as a Factur-X PDF (file name, bytes), for
    /// whoever may read it. EN 16931 needs the seller's VAT number when VAT
    /// is charged or reverse-charged: without one, the PDF is refused.
    pub async fn invoice_pdf(&self, who: &Principal, id: &str) -> ServiceResult<(String, Vec<u8>)> {
        let (invoice, corrects) = self.renderable(who, id).await?;
        let bytes = nuage_facturx::pdf(&nuage_facturx::Rendering {
            invoice: &invoice,
            corrects_number: corrects.as_deref(),
        })
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok((format!("{}.pdf", invoice.number), bytes))
    }

    /// An invoice or credit note as UBL 2.1, Peppol BIS Billing 3.0 (file
    /// name, XML), for whoever may read it, on the same terms as its PDF.
    pub async fn ubl(&self, who: &Principal, id: &str) -> ServiceResult<(String, String)> {
        let (invoice, corrects) = self.renderable(who, id).await?;
        let xml = nuage_facturx::ubl_xml(&nuage_facturx::Rendering {
            invoice: &invoice,
            corrects_number: corrects.as_deref(),
        });
        Ok((format!("{}.xml", invoice.number), xml))
    }

    /// An invoice that an EN 16931 rendering can be made of, with the
    /// number of the invoice it corrects if it is a credit note.
    pub(crate) async fn renderable(
        &self,
        who: &Principal,
        id: &str,
    ) -> ServiceResult<(Invoice, Option<String>)> {
        let invoice = self.invoice(who, id).await?;
        if invoice.document.vat != Vat::OutsideEu && invoice.document.issuer.vat_number.is_none() {
            return Err(ServiceError::Conflict(format!(
                "{} has no VAT number, which an EN 16931 invoice states: set it (PUT /api/v1/orgs/{}/tax)",
                invoice.document.issuer.name, invoice.document.issuer.id
            )));
        }
        let corrects = match &invoice.corrects_id {
            Some(original) => {
                let mut conn = self.platform().db().acquire().await?;
                repo::get_invoice(&mut conn, original)
                    .await?
                    .map(|row| invoice_number(&row.invoice.kind, row.number))
            }
            None => None,
        };
        Ok((invoice, corrects))
    }

    /// Cancels an invoice with a credit note of its whole amount, numbered
    /// in the issuer's sequence: the issuer's owners and admins, or an
    /// operator. An invoice is credited once.
    pub async fn credit_note(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        invoice_id: &str,
        reason: &str,
    ) -> ServiceResult<Invoice> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(DomainError::invalid(
                "reason",
                "a credit note says why, in 1 to 500 characters",
            )
            .into());
        }
        let mut tx = self.platform().db().begin_write().await?;
        let original = repo::get_invoice(&mut tx, invoice_id)
            .await?
            .ok_or(ServiceError::NotFound("invoice"))?;
        let issuer = OrgId::parse(&original.invoice.issuer_id)?;
        self.platform()
            .authorize_org(&mut tx, who, issuer, Permission::Manage)
            .await
            .map_err(|e| match e {
                ServiceError::NotFound(_) => ServiceError::NotFound("invoice"),
                other => other,
            })?;
        if original.invoice.kind != "invoice" {
            return Err(ServiceError::Conflict(
                "a credit note cannot itself be credited".into(),
            ));
        }
        if !repo::credit_notes_of(&mut tx, invoice_id).await?.is_empty() {
            return Err(ServiceError::Conflict(
                "this invoice is already credited".into(),
            ));
        }
        let mut document: InvoiceDocument = parse_doc(&original.invoice.document)?;
        for line in &mut document.lines {
            line.quantity = -line.quantity;
            line.amount = -line.amount;
        }
        document.note = Some(format!(
            "Avoir sur la facture {} : {reason}",
            invoice_number("invoice", original.number)
        ));
        let t = document_totals(&document);
        let id = uuid::Uuid::now_v7().to_string();
        let credit = NewInvoice {
            id: id.clone(),
            issuer_id: original.invoice.issuer_id.clone(),
            kind: "credit_note".into(),
            corrects_id: Some(original.invoice.id.clone()),
            customer_id: original.invoice.customer_id.clone(),
            period_start: original.invoice.period_start,
            period_end: original.invoice.period_end,
            currency: original.invoice.currency.clone(),
            net: t.net.to_string(),
            vat: t.vat.to_string(),
            gross: t.gross.to_string(),
            document: to_json(&document)?,
            issued_at: self.now_ms(),
            run_id: None,
        };
        let number = repo::insert_invoice(&mut tx, &credit).await?;
        self.queue_delivery(&mut tx, &credit).await?;
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("invoice.credit", format!("invoice:{invoice_id}"))
                    .org(issuer)
                    .details(
                        serde_json::json!({"credit_note": id, "number": number, "reason": reason}),
                    ),
            )
            .await?;
        let mut conn = self.platform().db().acquire().await?;
        invoice_view(
            repo::get_invoice(&mut conn, &id)
                .await?
                .ok_or(ServiceError::NotFound("invoice"))?,
        )
    }
}

/// A month a billing run did not invoice to an organisation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Statement {
    /// `YYYY-MM`.
    pub period: String,
    pub issuer_id: String,
    pub kind: StatementKind,
    /// While held: what each party lacks.
    pub missing: crate::runs::MissingOf,
    /// A zero month's usage, rated: its lines, all 0.00.
    pub document: Option<InvoiceDocument>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatementKind {
    /// The month came to 0.00: no invoice, no number.
    Zero,
    /// Held while a legal identity is incomplete.
    Held,
    /// Held, then issued once it was completed.
    Issued,
}
