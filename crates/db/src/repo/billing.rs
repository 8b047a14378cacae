//! Invoices and credit notes: numbered per issuer without gaps, and never
//! changed once written (the migrations' triggers refuse it).

use sqlx::{AnyConnection, FromRow};

use crate::DbError;

/// An invoice to write; its number is the issuer's next.
#[derive(Debug, Clone, FromRow)]
pub struct NewInvoice {
    pub id: String,
    pub issuer_id: String,
    /// `invoice` or `credit_note`.
    pub kind: String,
    pub corrects_id: Option<String>,
    pub customer_id: String,
    pub period_start: i64,
    pub period_end: i64,
    pub currency: String,
    pub net: String,
    pub vat: String,
    pub gross: String,
    pub document: String,
    pub issued_at: i64,
}

/// An issued invoice: its number, and what was written.
#[derive(Debug, Clone, FromRow)]
pub struct InvoiceRow {
    pub number: i64,
    #[sqlx(flatten)]
    pub invoice: NewInvoice,
}

/// Writes an invoice under the issuer's next number, and returns it. Call
/// it in a write transaction: the number and the invoice commit together
/// or not at all, and concurrent issuers of the same organisation wait on
/// its counter.
pub async fn insert_invoice(conn: &mut AnyConnection, new: &NewInvoice) -> Result<i64, DbError> {
    let number: i64 = sqlx::query_scalar(
        "INSERT INTO invoice_counters (issuer_id, last_number) VALUES ($1, 1) \
         ON CONFLICT (issuer_id) DO UPDATE SET last_number = invoice_counters.last_number + 1 \
         RETURNING last_number",
    )
    .bind(&new.issuer_id)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO invoices (id, issuer_id, number, kind, corrects_id, customer_id, period_start, period_end, currency, net, vat, gross, document, issued_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&new.id)
    .bind(&new.issuer_id)
    .bind(number)
    .bind(&new.kind)
    .bind(&new.corrects_id)
    .bind(&new.customer_id)
    .bind(new.period_start)
    .bind(new.period_end)
    .bind(&new.currency)
    .bind(&new.net)
    .bind(&new.vat)
    .bind(&new.gross)
    .bind(&new.document)
    .bind(new.issued_at)
    .execute(&mut *conn)
    .await?;
    Ok(number)
}

const SELECT: &str = "SELECT id, issuer_id, number, kind, corrects_id, customer_id, period_start, period_end, currency, net, vat, gross, document, issued_at FROM invoices";

/// An issuer's invoices and credit notes, by number.
pub async fn invoices_of_issuer(
    conn: &mut AnyConnection,
    issuer_id: &str,
) -> Result<Vec<InvoiceRow>, DbError> {
    Ok(
        sqlx::query_as(&format!("{SELECT} WHERE issuer_id = $1 ORDER BY number"))
            .bind(issuer_id)
            .fetch_all(conn)
            .await?,
    )
}
