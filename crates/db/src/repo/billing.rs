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
    /// The billing run that issued it; none for a credit note.
    pub run_id: Option<String>,
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
        "INSERT INTO invoices (id, issuer_id, number, kind, corrects_id, customer_id, period_start, period_end, currency, net, vat, gross, document, issued_at, run_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
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
    .bind(&new.run_id)
    .execute(&mut *conn)
    .await?;
    Ok(number)
}

const SELECT: &str = "SELECT id, issuer_id, number, kind, corrects_id, customer_id, period_start, period_end, currency, net, vat, gross, document, issued_at, run_id FROM invoices";

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

/// An invoice or credit note by id.
pub async fn get_invoice(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<InvoiceRow>, DbError> {
    Ok(sqlx::query_as(&format!("{SELECT} WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// What an organisation was invoiced and, as a provider, invoiced: newest
/// first.
pub async fn invoices_of_org(
    conn: &mut AnyConnection,
    org_id: &str,
) -> Result<Vec<InvoiceRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "{SELECT} WHERE customer_id = $1 OR issuer_id = $1 ORDER BY issued_at DESC, id DESC"
    ))
    .bind(org_id)
    .fetch_all(conn)
    .await?)
}

/// The credit notes that correct an invoice.
pub async fn credit_notes_of(
    conn: &mut AnyConnection,
    invoice_id: &str,
) -> Result<Vec<InvoiceRow>, DbError> {
    Ok(
        sqlx::query_as(&format!("{SELECT} WHERE corrects_id = $1 ORDER BY number"))
            .bind(invoice_id)
            .fetch_all(conn)
            .await?,
    )
}

/// Invoices and credit notes whose period starts in `[from, to)`, for
/// revenue reports.
pub async fn invoices_for_periods(
    conn: &mut AnyConnection,
    from: i64,
    to: i64,
) -> Result<Vec<InvoiceRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "{SELECT} WHERE period_start >= $1 AND period_start < $2 ORDER BY issuer_id, number"
    ))
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await?)
}

/// The invoices a run has issued.
pub async fn invoices_of_run(
    conn: &mut AnyConnection,
    run_id: &str,
) -> Result<Vec<InvoiceRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "{SELECT} WHERE run_id = $1 ORDER BY issuer_id, number"
    ))
    .bind(run_id)
    .fetch_all(conn)
    .await?)
}

// --- billing runs ----------------------------------------------------------------

#[derive(Debug, Clone, FromRow)]
pub struct RunRow {
    pub id: String,
    pub period_start: i64,
    pub period_end: i64,
    pub cut_at: i64,
    pub started_at: i64,
    pub completed_at: Option<i64>,
}

const RUN_SELECT: &str =
    "SELECT id, period_start, period_end, cut_at, started_at, completed_at FROM billing_runs";

/// The run of the period starting at `period_start`.
pub async fn run_starting(
    conn: &mut AnyConnection,
    period_start: i64,
) -> Result<Option<RunRow>, DbError> {
    Ok(
        sqlx::query_as(&format!("{RUN_SELECT} WHERE period_start = $1"))
            .bind(period_start)
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn get_run(conn: &mut AnyConnection, id: &str) -> Result<Option<RunRow>, DbError> {
    Ok(sqlx::query_as(&format!("{RUN_SELECT} WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// The last run, by period.
pub async fn last_run(conn: &mut AnyConnection) -> Result<Option<RunRow>, DbError> {
    Ok(
        sqlx::query_as(&format!("{RUN_SELECT} ORDER BY period_end DESC LIMIT 1"))
            .fetch_optional(conn)
            .await?,
    )
}

/// The run whose period ends at `period_end`.
pub async fn run_ending(
    conn: &mut AnyConnection,
    period_end: i64,
) -> Result<Option<RunRow>, DbError> {
    Ok(
        sqlx::query_as(&format!("{RUN_SELECT} WHERE period_end = $1"))
            .bind(period_end)
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn insert_run(conn: &mut AnyConnection, run: &RunRow) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO billing_runs (id, period_start, period_end, cut_at, started_at, completed_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&run.id)
    .bind(run.period_start)
    .bind(run.period_end)
    .bind(run.cut_at)
    .bind(run.started_at)
    .bind(run.completed_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn complete_run(conn: &mut AnyConnection, id: &str, at: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE billing_runs SET completed_at = $1 WHERE id = $2")
        .bind(at)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// What a run did not invoice for a customer and an issuer (see the
/// `billing_holds` table).
#[derive(Debug, Clone, FromRow)]
pub struct HoldRow {
    pub run_id: String,
    pub customer_id: String,
    pub issuer_id: String,
    /// `incomplete` or `zero`.
    pub reason: String,
    /// JSON: what is missing, and of whom.
    pub missing: String,
    /// A zero month's statement (JSON).
    pub document: Option<String>,
    pub held_at: i64,
    pub released_at: Option<i64>,
}

const HOLD_COLUMNS: &str =
    "run_id, customer_id, issuer_id, reason, missing, document, held_at, released_at";

/// Records a hold, or updates what is missing of one already recorded;
/// `true` when it is new.
pub async fn upsert_hold(conn: &mut AnyConnection, hold: &HoldRow) -> Result<bool, DbError> {
    let known: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM billing_holds WHERE run_id = $1 AND customer_id = $2 AND issuer_id = $3",
    )
    .bind(&hold.run_id)
    .bind(&hold.customer_id)
    .bind(&hold.issuer_id)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(&format!(
        "INSERT INTO billing_holds ({HOLD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (run_id, customer_id, issuer_id) DO UPDATE SET missing = excluded.missing"
    ))
    .bind(&hold.run_id)
    .bind(&hold.customer_id)
    .bind(&hold.issuer_id)
    .bind(&hold.reason)
    .bind(&hold.missing)
    .bind(&hold.document)
    .bind(hold.held_at)
    .bind(hold.released_at)
    .execute(conn)
    .await?;
    Ok(known == 0)
}

/// The holds of a run.
pub async fn holds_of_run(conn: &mut AnyConnection, run_id: &str) -> Result<Vec<HoldRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {HOLD_COLUMNS} FROM billing_holds WHERE run_id = $1 ORDER BY customer_id, issuer_id"
    ))
    .bind(run_id)
    .fetch_all(conn)
    .await?)
}

/// The incomplete holds not yet released, oldest first.
pub async fn open_holds(conn: &mut AnyConnection) -> Result<Vec<HoldRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {HOLD_COLUMNS} FROM billing_holds WHERE reason = 'incomplete' AND released_at IS NULL \
         ORDER BY held_at, run_id, customer_id, issuer_id"
    ))
    .fetch_all(conn)
    .await?)
}

/// The holds that name an organisation as customer, newest first.
pub async fn holds_of_customer(
    conn: &mut AnyConnection,
    customer_id: &str,
) -> Result<Vec<HoldRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {HOLD_COLUMNS} FROM billing_holds WHERE customer_id = $1 ORDER BY held_at DESC, run_id DESC"
    ))
    .bind(customer_id)
    .fetch_all(conn)
    .await?)
}

/// Marks a hold released: its invoice is issued in the same transaction.
pub async fn release_hold(
    conn: &mut AnyConnection,
    (run_id, customer_id, issuer_id): (&str, &str, &str),
    at: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE billing_holds SET released_at = $1 \
         WHERE run_id = $2 AND customer_id = $3 AND issuer_id = $4 AND released_at IS NULL",
    )
    .bind(at)
    .bind(run_id)
    .bind(customer_id)
    .bind(issuer_id)
    .execute(conn)
    .await?;
    Ok(())
}

// --- what a run reads ------------------------------------------------------------

/// Usage records summed per organisation and bucket (and hour, when asked).
#[derive(Debug, Clone, FromRow)]
pub struct UsageSum {
    pub org_id: String,
    pub bucket: String,
    /// The hour, or 0 when summed over hours.
    pub hour: i64,
    pub class_a: i64,
    pub class_b: i64,
    pub egress_bytes: i64,
    pub exit_egress_bytes: i64,
}

const SUMS: &str = "CAST(SUM(class_a) AS BIGINT) AS class_a, CAST(SUM(class_b) AS BIGINT) AS class_b, \
     CAST(SUM(egress_bytes) AS BIGINT) AS egress_bytes, CAST(SUM(exit_egress_bytes) AS BIGINT) AS exit_egress_bytes";

/// The records of hours in `[from, to)` written before `cut`, summed per
/// organisation and bucket; of organisation `org`, or of all when empty.
pub async fn usage_per_bucket(
    conn: &mut AnyConnection,
    from: i64,
    to: i64,
    cut: i64,
    org: &str,
) -> Result<Vec<UsageSum>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT org_id, bucket, CAST(0 AS BIGINT) AS hour, {SUMS} FROM usage_records \
         WHERE hour >= $1 AND hour < $2 AND recorded_at < $3 AND ($4 = '' OR org_id = $4) \
         GROUP BY org_id, bucket"
    ))
    .bind(from)
    .bind(to)
    .bind(cut)
    .bind(org)
    .fetch_all(conn)
    .await?)
}

/// One bucket's records of hours in `[from, to)` written before `cut`,
/// summed per hour.
pub async fn bucket_usage_per_hour(
    conn: &mut AnyConnection,
    org_id: &str,
    bucket: &str,
    from: i64,
    to: i64,
    cut: i64,
) -> Result<Vec<UsageSum>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT org_id, bucket, hour, {SUMS} FROM usage_records \
         WHERE org_id = $1 AND bucket = $2 AND hour >= $3 AND hour < $4 AND recorded_at < $5 \
         GROUP BY org_id, bucket, hour"
    ))
    .bind(org_id)
    .bind(bucket)
    .bind(from)
    .bind(to)
    .bind(cut)
    .fetch_all(conn)
    .await?)
}

/// Late records: hours before `before`, written in `[written_from, cut)`,
/// summed per organisation, bucket and hour; of `org`, or all when empty.
pub async fn late_usage(
    conn: &mut AnyConnection,
    before: i64,
    written_from: i64,
    cut: i64,
    org: &str,
) -> Result<Vec<UsageSum>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT org_id, bucket, hour, {SUMS} FROM usage_records \
         WHERE hour < $1 AND recorded_at >= $2 AND recorded_at < $3 AND ($4 = '' OR org_id = $4) \
         GROUP BY org_id, bucket, hour"
    ))
    .bind(before)
    .bind(written_from)
    .bind(cut)
    .bind(org)
    .fetch_all(conn)
    .await?)
}

/// The bytes each bucket held at `at`: (organisation, bucket, bytes); of
/// `org`, or of all when empty.
pub async fn bytes_per_bucket_at(
    conn: &mut AnyConnection,
    at: i64,
    org: &str,
) -> Result<Vec<(String, String, i64)>, DbError> {
    Ok(sqlx::query_as(
        "SELECT org_id, bucket, CAST(SUM(delta_bytes) AS BIGINT) FROM storage_deltas \
         WHERE at < $1 AND ($2 = '' OR org_id = $2) GROUP BY org_id, bucket",
    )
    .bind(at)
    .bind(org)
    .fetch_all(conn)
    .await?)
}

/// Every storage change in `[from, to)`: (organisation, bucket, time,
/// bytes), by bucket then time; of `org`, or of all when empty.
pub async fn storage_changes_between(
    conn: &mut AnyConnection,
    from: i64,
    to: i64,
    org: &str,
) -> Result<Vec<(String, String, i64, i64)>, DbError> {
    Ok(sqlx::query_as(
        "SELECT org_id, bucket, at, delta_bytes FROM storage_deltas \
         WHERE at >= $1 AND at < $2 AND ($3 = '' OR org_id = $3) ORDER BY org_id, bucket, at, id",
    )
    .bind(from)
    .bind(to)
    .bind(org)
    .fetch_all(conn)
    .await?)
}

/// One event of a subscription's history, with the subscription.
#[derive(Debug, Clone, FromRow)]
pub struct SubscriptionEvent {
    pub subscription_id: String,
    pub offer_document: String,
    pub provider_id: String,
    pub buyer_id: String,
    pub resources: Option<String>,
    pub at: i64,
    pub event: String,
    pub state: String,
}

/// The histories, before `before`, of every subscription still in force
/// or changed since `since` (bought by `buyer`, or by all when empty): by
/// subscription, then time.
pub async fn subscription_histories(
    conn: &mut AnyConnection,
    since: i64,
    before: i64,
    buyer: &str,
) -> Result<Vec<SubscriptionEvent>, DbError> {
    Ok(sqlx::query_as(
        "SELECT s.id AS subscription_id, s.offer_document, s.provider_id, s.buyer_id, s.resources, \
         e.at, e.event, e.state FROM subscriptions s JOIN subscription_events e ON e.subscription_id = s.id \
         WHERE (s.state IN ('active', 'suspended') OR s.updated_at >= $1) AND e.at < $2 \
         AND ($3 = '' OR s.buyer_id = $3) ORDER BY s.id, e.at, e.id",
    )
    .bind(since)
    .bind(before)
    .bind(buyer)
    .fetch_all(conn)
    .await?)
}

/// A usage record by id.
pub async fn get_usage(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<crate::repo::storage::UsageRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT id, org_id, bucket, hour, class_a, class_b, egress_bytes, exit_egress_bytes, recorded_at \
         FROM usage_records WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

// --- quota alerts ----------------------------------------------------------------

#[derive(Debug, Clone, FromRow)]
pub struct QuotaAlertRow {
    pub org_id: String,
    pub thresholds: String,
    pub notified_percent: i64,
    pub updated_at: i64,
}

pub async fn get_quota_alert(
    conn: &mut AnyConnection,
    org_id: &str,
) -> Result<Option<QuotaAlertRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT org_id, thresholds, notified_percent, updated_at FROM quota_alerts WHERE org_id = $1",
    )
    .bind(org_id)
    .fetch_optional(conn)
    .await?)
}

pub async fn upsert_quota_alert(
    conn: &mut AnyConnection,
    row: &QuotaAlertRow,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO quota_alerts (org_id, thresholds, notified_percent, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id) DO UPDATE SET thresholds = $2, notified_percent = $3, updated_at = $4",
    )
    .bind(&row.org_id)
    .bind(&row.thresholds)
    .bind(row.notified_percent)
    .bind(row.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Every organisation's alerts with its storage now: (alert, bytes, quota).
pub async fn quota_alerts_with_use(
    conn: &mut AnyConnection,
) -> Result<Vec<(String, String, i64, i64, Option<i64>)>, DbError> {
    Ok(sqlx::query_as(
        "SELECT a.org_id, a.thresholds, a.notified_percent, COALESCE(s.bytes, 0), s.max_bytes \
         FROM quota_alerts a LEFT JOIN org_storage s ON s.org_id = a.org_id ORDER BY a.org_id",
    )
    .fetch_all(conn)
    .await?)
}

pub async fn set_notified(
    conn: &mut AnyConnection,
    org_id: &str,
    percent: i64,
) -> Result<(), DbError> {
    sqlx::query("UPDATE quota_alerts SET notified_percent = $1 WHERE org_id = $2")
        .bind(percent)
        .bind(org_id)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct AlertEventRow {
    pub id: String,
    pub org_id: String,
    pub at: i64,
    pub percent: i64,
    pub used_bytes: i64,
    pub max_bytes: i64,
}

pub async fn insert_alert_event(
    conn: &mut AnyConnection,
    e: &AlertEventRow,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO quota_alert_events (id, org_id, at, percent, used_bytes, max_bytes) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&e.id)
    .bind(&e.org_id)
    .bind(e.at)
    .bind(e.percent)
    .bind(e.used_bytes)
    .bind(e.max_bytes)
    .execute(conn)
    .await?;
    Ok(())
}

/// An organisation's last alerts, newest first.
pub async fn alert_events(
    conn: &mut AnyConnection,
    org_id: &str,
    limit: i64,
) -> Result<Vec<AlertEventRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT id, org_id, at, percent, used_bytes, max_bytes FROM quota_alert_events \
         WHERE org_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
    )
    .bind(org_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}
