//! Billing runs: the metering rated into invoices, one per customer and
//! issuer and period, numbered without gaps and never changed.
//!
//! A run bills one calendar month (UTC), after it is over, and runs follow
//! each other. It is taken in two steps:
//!
//! 1. The run is recorded with its *cut*, the instant it started: it bills
//!    the usage records of hours before the period's end written before the
//!    cut, less those the previous run billed (hours before its own end,
//!    written before its own cut). A record written after a period was
//!    billed is therefore billed once, by the next run, on a line marked as
//!    an adjustment; one delivered twice has the same id and is stored once.
//!    Storage changes are written with the objects they count, so storage
//!    is never late.
//! 2. The invoices are computed from what the cut fixes and issued in
//!    batches of `ISSUE_BATCH` per transaction, each taking its issuer's
//!    next number. A run interrupted
//!    (a crash, a stop) is resumed by running the same period again: its
//!    cut is kept, what was issued is skipped, and the rest is issued.
//!
//! Who pays what: a bucket is covered by the buyer's subscription whose
//! resources hold it while the subscription is in force (from activation to
//! cancellation or change; a suspension does not end it). Storage is split
//! at those instants; the requests and egress of an hour go to whoever
//! covered the hour's last millisecond. Usage no subscription covers is
//! billed by the operator (the house) at its pay-as-you-go prices.

use std::collections::{BTreeMap, HashMap, HashSet};

use nuage_db::AnyConnection;
use nuage_db::repo::billing::{self as repo, InvoiceRow, NewInvoice, RunRow, UsageSum};
use nuage_db::repo::identity;
use nuage_domain::DomainError;
use nuage_domain::billing::{
    InForce, Line, Period, Totals, Usage, Vat, commitment_end, commitment_line,
    commitment_remainder, fee_share, gb_months, rate, storage_byte_ms, totals, vat_treatment,
};
pub use nuage_domain::billing::{Invoice, InvoiceDocument, InvoiceLine, Party};
use nuage_domain::catalogue::{BYTES_PER_GB, OfferSheet, PriceModel, SubscriptionState};
use nuage_domain::ids::OrgId;
use nuage_domain::legal::VatNumber;
use nuage_domain::org::OrgKind;
use nuage_domain::org::Permission;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::orders::Resources;
use super::{Catalogue, parse_doc, to_json};
use crate::{AuditEvent, Principal, RequestMeta, ServiceError, ServiceResult};

const HOUR_MS: i64 = 3_600_000;

/// Invoices a run issues per transaction: fewer commits, and a batch is
/// still whole or absent after a crash.
pub const ISSUE_BATCH: usize = 50;

/// What billing needs to know beyond the offers: the VAT rate and the
/// operator's price list for usage no subscription covers.
#[derive(Debug, Clone)]
pub struct BillingSettings {
    /// The standard VAT rate, in percent.
    pub vat_rate: Decimal,
    pub pay_as_you_go: PriceModel,
}

impl Default for BillingSettings {
    fn default() -> Self {
        Self {
            vat_rate: Decimal::from(20),
            pay_as_you_go: PriceModel::default(),
        }
    }
}

/// How long after a month's end it is billed on schedule: the last hour's
/// records are written by then (later ones are adjustments of the next).
pub const SCHEDULE_GRACE_MS: i64 = 3_600_000;

/// What a billing run did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunSummary {
    /// `YYYY-MM`.
    pub period: String,
    pub period_start_ms: i64,
    pub period_end_ms: i64,
    /// Records written before this instant are billed by this run or an
    /// earlier one.
    pub cut_at_ms: i64,
    /// Issued by this call (0 when the run was already complete).
    pub issued_now: usize,
    /// Issued by the run in all.
    pub invoices: usize,
    #[schema(value_type = String)]
    pub net: Decimal,
    #[schema(value_type = String)]
    pub gross: Decimal,
    pub completed_at_ms: i64,
}

/// Revenue of one provider, offer and month.
#[derive(Debug, Clone, Serialize, ToSchema)]
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

/// What a rating reads: records written before `cut`, of one organisation
/// (or all, when empty), with requests and egress scaled by `scale` (1 for a
/// run; the month's length over the time elapsed for a forecast).
struct Scope<'a> {
    cut: i64,
    org: &'a str,
    scale: Decimal,
}

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

/// Who pays for a bucket's usage at some time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Payer {
    /// The subscription at this index of the run's list.
    Subscription(usize),
    /// Nobody covers it: the operator's pay-as-you-go.
    PayAsYouGo,
}

struct Sub {
    id: String,
    provider: String,
    buyer: String,
    offer: OfferSheet,
    buckets: Vec<String>,
    in_force: InForce,
}

/// Usage summed for one payer (and one customer, for pay-as-you-go).
#[derive(Default)]
struct Metered {
    byte_ms: i128,
    class_a: i64,
    class_b: i64,
    egress_bytes: i64,
    exit_egress_bytes: i64,
}

impl Metered {
    fn add(&mut self, u: &UsageSum) {
        self.class_a += u.class_a;
        self.class_b += u.class_b;
        self.egress_bytes += u.egress_bytes;
        self.exit_egress_bytes += u.exit_egress_bytes;
    }

    /// Requests and egress times `scale` (storage already runs to the
    /// period's end at the bytes stored last).
    fn scaled(&self, scale: Decimal) -> Metered {
        let times = |n: i64| {
            (Decimal::from(n) * scale)
                .round()
                .to_string()
                .parse()
                .unwrap_or(n)
        };
        Metered {
            byte_ms: self.byte_ms,
            class_a: times(self.class_a),
            class_b: times(self.class_b),
            egress_bytes: times(self.egress_bytes),
            exit_egress_bytes: times(self.exit_egress_bytes),
        }
    }

    fn usage(&self, period: Period) -> Usage {
        let gb = |bytes: i64| Decimal::from(bytes) / Decimal::from(BYTES_PER_GB);
        Usage {
            // A GB-month to the kilobyte-month: the quantity shown is the
            // one priced, so anyone can redo the line.
            storage_gb_months: gb_months(self.byte_ms, period).round_dp(6),
            class_a_requests: self.class_a.max(0) as u64,
            class_b_requests: self.class_b.max(0) as u64,
            egress_gb: gb(self.egress_bytes),
            exit_egress_gb: gb(self.exit_egress_bytes),
        }
    }
}

/// An invoice being put together: its lines, by customer and issuer.
#[derive(Default)]
struct Draft {
    lines: Vec<InvoiceLine>,
}

fn invoice_lines(
    lines: Vec<Line>,
    offer_name: &str,
    subscription: Option<&str>,
    adjustment: bool,
) -> impl Iterator<Item = InvoiceLine> {
    lines.into_iter().map(move |l| InvoiceLine {
        description: match (l.from_gb, adjustment) {
            (Some(from), false) if from > 0 => {
                format!("{offer_name} — {} au-delà de {from} Go", l.kind.label_fr())
            }
            (_, false) => format!("{offer_name} — {}", l.kind.label_fr()),
            (_, true) => format!(
                "{offer_name} — {} (régularisation de périodes antérieures)",
                l.kind.label_fr()
            ),
        },
        kind: l.kind,
        offer: offer_name.to_owned(),
        subscription_id: subscription.map(str::to_owned),
        from_gb: l.from_gb,
        quantity: l.quantity,
        unit: l.unit.to_owned(),
        unit_price: l.unit_price,
        amount: l.amount,
        adjustment,
    })
}

/// `YYYY-MM` of a period's start.
pub fn period_label(start_ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(start_ms.div_euclid(1000))
        .map(|t| format!("{:04}-{:02}", t.year(), u8::from(t.month())))
        .unwrap_or_default()
}

fn month_of(ms: i64) -> Option<(i32, u8)> {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).ok()?;
    Some((t.year(), u8::from(t.month())))
}

/// The calendar month `ms` falls in.
fn month_containing(ms: i64) -> Option<Period> {
    let (year, month) = month_of(ms)?;
    Period::month(year, month).ok()
}

/// The calendar month before the one `ms` falls in.
fn month_before(ms: i64) -> Option<Period> {
    let (year, month) = month_of(ms)?;
    let (year, month) = if month == 1 {
        (year - 1, 12)
    } else {
        (year, month - 1)
    };
    Period::month(year, month).ok()
}

/// A calendar month from `YYYY-MM`.
pub fn parse_period(value: &str) -> Result<Period, DomainError> {
    let bad = || DomainError::invalid("period", format!("{value:?} is not a month (YYYY-MM)"));
    let (year, month) = value.trim().split_once('-').ok_or_else(bad)?;
    if year.len() != 4 || month.len() != 2 {
        return Err(bad());
    }
    let year: i32 = year.parse().map_err(|_| bad())?;
    let month: u8 = month.parse().map_err(|_| bad())?;
    Period::month(year, month).map_err(|_| bad())
}

fn invoice_number(kind: &str, number: i64) -> String {
    let prefix = if kind == "credit_note" { "A" } else { "F" };
    format!("{prefix}-{number:06}")
}

fn decimal(value: &str) -> ServiceResult<Decimal> {
    value
        .parse()
        .map_err(|_| ServiceError::Internal(format!("a stored amount does not parse: {value:?}")))
}

fn invoice_view(row: InvoiceRow) -> ServiceResult<Invoice> {
    let i = row.invoice;
    Ok(Invoice {
        number: invoice_number(&i.kind, row.number),
        period: period_label(i.period_start),
        net: decimal(&i.net)?,
        vat_amount: decimal(&i.vat)?,
        gross: decimal(&i.gross)?,
        document: parse_doc(&i.document)?,
        id: i.id,
        kind: i.kind,
        corrects_id: i.corrects_id,
        period_start_ms: i.period_start,
        period_end_ms: i.period_end,
        currency: i.currency,
        issued_at_ms: i.issued_at,
    })
}

async fn party(conn: &mut AnyConnection, id: &str) -> ServiceResult<(Party, OrgKind)> {
    let row = identity::get_org(conn, id)
        .await?
        .ok_or(ServiceError::NotFound("organisation"))?;
    let kind = OrgKind::parse(&row.kind)?;
    Ok((
        Party {
            id: row.id,
            name: row.name,
            country: row.country,
            siret: row.siret,
            vat_number: row.vat_number,
        },
        kind,
    ))
}

impl Catalogue {
    /// Bills `period` (a month that is over), or resumes its run if it was
    /// interrupted; a period already billed returns what its run did.
    /// Operators only.
    pub async fn run_billing(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        period: Period,
    ) -> ServiceResult<RunSummary> {
        if !who.is_operator() {
            return Err(ServiceError::Forbidden("billing is the operator's".into()));
        }
        let now = self.now_ms();
        if period.end_ms() > now {
            return Err(DomainError::invalid(
                "period",
                format!(
                    "{} is not over: a period is billed once it has ended",
                    period_label(period.start_ms())
                ),
            )
            .into());
        }
        let run = self.start_run(who, meta, period, now).await?;
        let mut issued_now = 0;
        if run.completed_at.is_none() {
            let scope = Scope {
                cut: run.cut_at,
                org: "",
                scale: Decimal::ONE,
            };
            let drafts = self.drafts(&scope, period).await?;
            let mut conn = self.platform().db().acquire().await?;
            let done: HashSet<(String, String)> = repo::invoices_of_run(&mut conn, &run.id)
                .await?
                .into_iter()
                .map(|i| (i.invoice.customer_id, i.invoice.issuer_id))
                .collect();
            drop(conn);
            let mut pending = drafts
                .into_iter()
                .filter(|(parties, _)| !done.contains(parties))
                .peekable();
            while pending.peek().is_some() {
                let batch: Vec<_> = pending.by_ref().take(ISSUE_BATCH).collect();
                let n = batch.len();
                issued_now += self.issue_batch(&run, period, batch).await?;
                for _ in 0..n {
                    self.platform().probe("billing.invoice");
                }
            }
        }
        let mut tx = self.platform().db().begin_write().await?;
        let run = repo::run_starting(&mut tx, period.start_ms())
            .await?
            .ok_or(ServiceError::NotFound("billing run"))?;
        let issued = repo::invoices_of_run(&mut tx, &run.id).await?;
        let sum = |f: fn(&NewInvoice) -> &str| -> ServiceResult<Decimal> {
            issued.iter().map(|i| decimal(f(&i.invoice))).sum()
        };
        let (net, gross) = (sum(|i| &i.net)?, sum(|i| &i.gross)?);
        let completed_at = match run.completed_at {
            Some(at) => {
                drop(tx);
                at
            }
            None => {
                let at = self.now_ms();
                repo::complete_run(&mut tx, &run.id, at).await?;
                self.platform()
                    .commit_audited(
                        tx,
                        who,
                        meta,
                        AuditEvent::new("billing.run.complete", format!("billing_run:{}", run.id))
                            .details(serde_json::json!({
                                "period": period_label(period.start_ms()),
                                "invoices": issued.len(), "net": net, "gross": gross,
                            })),
                    )
                    .await?;
                at
            }
        };
        Ok(RunSummary {
            period: period_label(period.start_ms()),
            period_start_ms: period.start_ms(),
            period_end_ms: period.end_ms(),
            cut_at_ms: run.cut_at,
            issued_now,
            invoices: issued.len(),
            net,
            gross,
            completed_at_ms: completed_at,
        })
    }

    /// Bills what is due, on schedule: an interrupted run first, else the
    /// month after the last run (or, on a platform never billed, the last
    /// month) once it has been over for `SCHEDULE_GRACE_MS`. One month per
    /// call; nodes running it at once share the work (see `run_billing`).
    pub async fn bill_due(&self) -> ServiceResult<Option<RunSummary>> {
        let now = self.now_ms();
        let mut conn = self.platform().db().acquire().await?;
        let last = repo::last_run(&mut conn).await?;
        drop(conn);
        let period = match last {
            Some(run) if run.completed_at.is_none() => {
                Period::new(run.period_start, run.period_end)?
            }
            Some(run) => {
                let Some(next) = month_containing(run.period_end) else {
                    return Ok(None);
                };
                next
            }
            None => {
                let Some(previous) = month_before(now) else {
                    return Ok(None);
                };
                previous
            }
        };
        if period.end_ms() + SCHEDULE_GRACE_MS > now {
            return Ok(None);
        }
        let meta = RequestMeta {
            source: "schedule".into(),
        };
        self.run_billing(&Principal::System, &meta, period)
            .await
            .map(Some)
    }

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

    /// The period's run: the one recorded, or a new one after the last.
    async fn start_run(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        period: Period,
        now: i64,
    ) -> ServiceResult<RunRow> {
        let mut tx = self.platform().db().begin_write().await?;
        if let Some(run) = repo::run_starting(&mut tx, period.start_ms()).await? {
            return Ok(run);
        }
        if let Some(last) = repo::last_run(&mut tx).await? {
            // Started beside this call a moment ago (PostgreSQL sees it now).
            if last.period_start == period.start_ms() {
                return Ok(last);
            }
            if last.completed_at.is_none() {
                return Err(ServiceError::Conflict(format!(
                    "the run of {} was interrupted: run it again to finish it first",
                    period_label(last.period_start)
                )));
            }
            if last.period_end != period.start_ms() {
                return Err(ServiceError::Conflict(format!(
                    "billing runs follow each other: the next period to bill is {}",
                    period_label(last.period_end)
                )));
            }
        }
        let run = RunRow {
            id: uuid::Uuid::now_v7().to_string(),
            period_start: period.start_ms(),
            period_end: period.end_ms(),
            cut_at: now,
            started_at: now,
            completed_at: None,
        };
        match repo::insert_run(&mut tx, &run).await {
            // Another node (or operator) started it a moment ago: resume it.
            Err(nuage_db::DbError::Conflict) => {
                drop(tx);
                let mut conn = self.platform().db().acquire().await?;
                return repo::run_starting(&mut conn, period.start_ms())
                    .await?
                    .ok_or(ServiceError::Conflict(
                        "the billing run changed; try again".into(),
                    ));
            }
            other => other?,
        }
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("billing.run.start", format!("billing_run:{}", run.id)).details(
                    serde_json::json!({"period": period_label(period.start_ms()), "cut_at_ms": now}),
                ),
            )
            .await?;
        Ok(run)
    }

    /// The invoices of a run, by (customer, issuer): everything they say
    /// comes from what the run's cut fixes, so a resumed run computes the
    /// same ones.
    async fn drafts(
        &self,
        scope: &Scope<'_>,
        period: Period,
    ) -> ServiceResult<BTreeMap<(String, String), Draft>> {
        let mut conn = self.platform().db().acquire().await?;
        let previous = repo::run_ending(&mut conn, period.start_ms()).await?;
        let late_from = previous.as_ref().map_or(i64::MIN, |p| p.cut_at);
        let late = repo::late_usage(
            &mut conn,
            period.start_ms(),
            late_from,
            scope.cut,
            scope.org,
        )
        .await?;
        let since = late
            .iter()
            .map(|u| u.hour)
            .min()
            .unwrap_or(period.start_ms())
            .min(period.start_ms());
        let subs = subscriptions(
            repo::subscription_histories(&mut conn, since, period.end_ms(), scope.org).await?,
        )?;
        // Which subscriptions hold each (buyer, bucket).
        let mut holders: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
        for (i, s) in subs.iter().enumerate() {
            for b in &s.buckets {
                holders
                    .entry((s.buyer.as_str(), b.as_str()))
                    .or_default()
                    .push(i);
            }
        }
        let payer_at = |org: &str, bucket: &str, at: i64| -> Payer {
            holders
                .get(&(org, bucket))
                .and_then(|held| {
                    held.iter()
                        .copied()
                        .filter(|&i| subs[i].in_force.covers(at))
                        .max_by_key(|&i| subs[i].in_force.start_ms)
                })
                .map_or(Payer::PayAsYouGo, Payer::Subscription)
        };
        // The instants a bucket's payer may change within the period.
        let boundaries = |org: &str, bucket: &str| -> Vec<i64> {
            let mut at: Vec<i64> = holders
                .get(&(org, bucket))
                .into_iter()
                .flatten()
                .flat_map(|&i| [Some(subs[i].in_force.start_ms), subs[i].in_force.end_ms])
                .flatten()
                .filter(|&t| t > period.start_ms() && t < period.end_ms())
                .collect();
            at.sort_unstable();
            at.dedup();
            at
        };

        // (payer, customer) → usage of the period, and of earlier ones.
        let mut metered: BTreeMap<(Payer, String), Metered> = BTreeMap::new();
        let mut adjusted: BTreeMap<(Payer, String), Metered> = BTreeMap::new();

        // Storage, split where the payer changes.
        // (organisation, bucket) → bytes at the start, then changes.
        type Stored = BTreeMap<(String, String), (i64, Vec<(i64, i64)>)>;
        let mut stored: Stored = repo::bytes_per_bucket_at(&mut conn, period.start_ms(), scope.org)
            .await?
            .into_iter()
            .map(|(org, bucket, bytes)| ((org, bucket), (bytes, Vec::new())))
            .collect();
        for (org, bucket, at, delta) in
            repo::storage_changes_between(&mut conn, period.start_ms(), period.end_ms(), scope.org)
                .await?
        {
            stored.entry((org, bucket)).or_default().1.push((at, delta));
        }
        for ((org, bucket), (mut bytes, changes)) in stored {
            let mut cuts = boundaries(&org, &bucket);
            cuts.push(period.end_ms());
            let mut from = period.start_ms();
            let mut next = 0;
            for to in cuts {
                let part = Period::new(from, to)?;
                let end = next + changes[next..].partition_point(|c| c.0 < to);
                let byte_ms = storage_byte_ms(bytes, &changes[next..end], part)?;
                bytes += changes[next..end].iter().map(|c| c.1).sum::<i64>();
                next = end;
                if byte_ms > 0 {
                    metered
                        .entry((payer_at(&org, &bucket, from), org.clone()))
                        .or_default()
                        .byte_ms += byte_ms;
                }
                from = to;
            }
        }

        // Requests and egress: whole buckets where one payer held the
        // period, hour by hour where it changed.
        for u in repo::usage_per_bucket(
            &mut conn,
            period.start_ms(),
            period.end_ms(),
            scope.cut,
            scope.org,
        )
        .await?
        {
            if boundaries(&u.org_id, &u.bucket).is_empty() {
                let payer = payer_at(&u.org_id, &u.bucket, period.start_ms());
                metered
                    .entry((payer, u.org_id.clone()))
                    .or_default()
                    .add(&u);
                continue;
            }
            for h in repo::bucket_usage_per_hour(
                &mut conn,
                &u.org_id,
                &u.bucket,
                period.start_ms(),
                period.end_ms(),
                scope.cut,
            )
            .await?
            {
                let payer = payer_at(&h.org_id, &h.bucket, h.hour + HOUR_MS - 1);
                metered
                    .entry((payer, h.org_id.clone()))
                    .or_default()
                    .add(&h);
            }
        }
        for h in &late {
            let payer = payer_at(&h.org_id, &h.bucket, h.hour + HOUR_MS - 1);
            adjusted
                .entry((payer, h.org_id.clone()))
                .or_default()
                .add(h);
        }

        // Rate: every subscription in force during the period, and every
        // payer with usage.
        let mut drafts: BTreeMap<(String, String), Draft> = BTreeMap::new();
        let house = self.house().to_string();
        let payg = &self.inner.billing.pay_as_you_go;
        let mut payers: Vec<(Payer, String)> =
            metered.keys().chain(adjusted.keys()).cloned().collect();
        for (i, s) in subs.iter().enumerate() {
            if s.in_force
                .fee_span()
                .and_then(|f| f.within(&period))
                .is_some()
            {
                payers.push((Payer::Subscription(i), s.buyer.clone()));
            }
        }
        payers.sort();
        payers.dedup();
        for (payer, customer) in payers {
            let (issuer, model, name, sub_id, fee, remainder) = match payer {
                Payer::Subscription(i) => {
                    let s = &subs[i];
                    let share = s
                        .in_force
                        .fee_span()
                        .map_or(Decimal::ZERO, |span| fee_share(span, period));
                    // A commitment cancelled early owes its rest, with the
                    // period of the cancellation.
                    let remainder = match (s.in_force.cancelled, s.in_force.end_ms) {
                        (true, Some(end))
                            if period.start_ms() <= end
                                && end < period.end_ms()
                                && s.offer.price.commitment_months > 0 =>
                        {
                            let until = commitment_end(
                                s.in_force.start_ms,
                                s.offer.price.commitment_months,
                            )?;
                            commitment_remainder(end, until)
                        }
                        _ => Decimal::ZERO,
                    };
                    (
                        s.provider.clone(),
                        &s.offer.price,
                        s.offer.name.clone(),
                        Some(s.id.as_str()),
                        share,
                        remainder,
                    )
                }
                Payer::PayAsYouGo => (
                    house.clone(),
                    payg,
                    "Paiement à l'usage".to_owned(),
                    None,
                    Decimal::ZERO,
                    Decimal::ZERO,
                ),
            };
            let key = (payer, customer.clone());
            let usage = metered
                .get(&key)
                .map(|m| m.scaled(scope.scale).usage(period))
                .unwrap_or_default();
            let mut lines: Vec<InvoiceLine> =
                invoice_lines(rate(model, &usage, fee), &name, sub_id, false).collect();
            if !remainder.is_zero() && !model.monthly_fee.amount().is_zero() {
                lines.extend(invoice_lines(
                    vec![commitment_line(model.monthly_fee.amount(), remainder)],
                    &name,
                    sub_id,
                    false,
                ));
            }
            if let Some(m) = adjusted.get(&key) {
                lines.extend(invoice_lines(
                    rate(model, &m.usage(period), Decimal::ZERO),
                    &name,
                    sub_id,
                    true,
                ));
            }
            if !lines.is_empty() {
                drafts
                    .entry((customer, issuer))
                    .or_default()
                    .lines
                    .extend(lines);
            }
        }
        Ok(drafts)
    }

    /// What a run writes for one customer and issuer.
    async fn new_invoice(
        &self,
        conn: &mut AnyConnection,
        run: &RunRow,
        period: Period,
        (customer, issuer): (String, String),
        draft: Draft,
    ) -> ServiceResult<NewInvoice> {
        let (seller, _) = party(conn, &issuer).await?;
        let (buyer, kind) = party(conn, &customer).await?;
        let document = InvoiceDocument {
            vat: self.vat_of(&seller, &buyer, kind),
            issuer: seller,
            customer: buyer,
            lines: draft.lines,
            note: None,
        };
        let t = document_totals(&document);
        Ok(NewInvoice {
            id: uuid::Uuid::now_v7().to_string(),
            issuer_id: issuer,
            kind: "invoice".into(),
            corrects_id: None,
            customer_id: customer,
            period_start: period.start_ms(),
            period_end: period.end_ms(),
            currency: "EUR".into(),
            net: t.net.to_string(),
            vat: t.vat.to_string(),
            gross: t.gross.to_string(),
            document: to_json(&document)?,
            issued_at: self.now_ms(),
            run_id: Some(run.id.clone()),
        })
    }

    /// Issues a batch of a run's invoices in one transaction, each under its
    /// issuer's next number; returns how many it issued. If a run working
    /// beside this one issued one of them first, the batch rolls back (its
    /// numbers with it) and each is issued on its own, skipping those.
    async fn issue_batch(
        &self,
        run: &RunRow,
        period: Period,
        batch: Vec<((String, String), Draft)>,
    ) -> ServiceResult<usize> {
        let mut tx = self.platform().db().begin_write().await?;
        let mut invoices = Vec::with_capacity(batch.len());
        for (parties, draft) in batch {
            invoices.push(
                self.new_invoice(&mut tx, run, period, parties, draft)
                    .await?,
            );
        }
        let mut conflict = false;
        for invoice in &invoices {
            match repo::insert_invoice(&mut tx, invoice).await {
                Ok(_) => {}
                Err(nuage_db::DbError::Conflict) => {
                    conflict = true;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !conflict {
            tx.commit().await.map_err(nuage_db::DbError::from)?;
            return Ok(invoices.len());
        }
        drop(tx);
        let mut issued = 0;
        for invoice in &invoices {
            let mut tx = self.platform().db().begin_write().await?;
            match repo::insert_invoice(&mut tx, invoice).await {
                Ok(_) => {
                    tx.commit().await.map_err(nuage_db::DbError::from)?;
                    issued += 1;
                }
                Err(nuage_db::DbError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(issued)
    }

    fn vat_of(&self, seller: &Party, buyer: &Party, kind: OrgKind) -> Vat {
        // A person's VAT number, if any, does not make the sale a business one.
        let number = match kind {
            OrgKind::Person => None,
            _ => buyer
                .vat_number
                .as_deref()
                .and_then(|v| VatNumber::parse(v).ok()),
        };
        vat_treatment(
            &seller.country,
            &buyer.country,
            number.as_ref(),
            self.inner.billing.vat_rate,
        )
    }

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
        let bytes = nuage_facturx::pdf(&nuage_facturx::Rendering {
            invoice: &invoice,
            corrects_number: corrects.as_deref(),
        })
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok((format!("{}.pdf", invoice.number), bytes))
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
        let number = repo::insert_invoice(
            &mut tx,
            &NewInvoice {
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
            },
        )
        .await?;
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

/// A usage record delivered by a meter outside the S3 path (a hosting
/// node, an import): the same `id` delivered again counts once.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageRecordInput {
    /// The meter's own id for the record: letters, digits, `.`, `_`, `:`,
    /// `-`, at most 100.
    pub id: String,
    pub org_id: String,
    pub bucket: String,
    /// The hour it measures, in Unix milliseconds (a whole hour, not in the
    /// future).
    pub hour_ms: i64,
    #[serde(default)]
    pub class_a: i64,
    #[serde(default)]
    pub class_b: i64,
    #[serde(default)]
    pub egress_bytes: i64,
    /// Egress for leaving the platform: metered, never charged.
    #[serde(default)]
    pub exit_egress_bytes: i64,
}

/// What became of a delivery of usage records.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IngestOutcome {
    pub accepted: usize,
    /// Records already stored with the same content: counted once.
    pub duplicates: usize,
}

/// The most records one delivery may carry.
pub const MAX_RECORDS_PER_DELIVERY: usize = 1_000;

impl Catalogue {
    /// Stores usage records from a meter: operators only. Every record is
    /// checked first; one bad record refuses the whole delivery, which
    /// changes nothing and is logged.
    pub async fn ingest_usage(
        &self,
        who: &Principal,
        records: &[UsageRecordInput],
    ) -> ServiceResult<IngestOutcome> {
        if !who.is_operator() {
            return Err(ServiceError::Forbidden("metering is the operator's".into()));
        }
        let refused = |i: usize, message: String| -> ServiceError {
            tracing::warn!(record = i, %message, "usage records refused");
            DomainError::invalid("records", format!("record {i}: {message}")).into()
        };
        if records.is_empty() || records.len() > MAX_RECORDS_PER_DELIVERY {
            return Err(refused(
                0,
                format!("a delivery holds 1 to {MAX_RECORDS_PER_DELIVERY} records"),
            ));
        }
        let now = self.now_ms();
        let mut tx = self.platform().db().begin_write().await?;
        let (mut accepted, mut duplicates) = (0, 0);
        let mut seen: HashMap<&str, &UsageRecordInput> = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            if r.id.is_empty()
                || r.id.len() > 100
                || !r
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c))
            {
                return Err(refused(
                    i,
                    "an id has 1 to 100 letters, digits, '.', '_', ':' or '-'".into(),
                ));
            }
            if [r.class_a, r.class_b, r.egress_bytes, r.exit_egress_bytes]
                .iter()
                .any(|&q| q < 0)
            {
                return Err(refused(i, "a quantity cannot be negative".into()));
            }
            if r.hour_ms < 0 || r.hour_ms % HOUR_MS != 0 {
                return Err(refused(
                    i,
                    "hour_ms is the start of an hour (a multiple of 3600000)".into(),
                ));
            }
            if r.hour_ms > now {
                return Err(refused(i, "the hour is in the future".into()));
            }
            let known = OrgId::parse(&r.org_id).is_ok()
                && nuage_db::repo::storage::get_bucket(&mut tx, &r.bucket)
                    .await?
                    .is_some_and(|b| b.org_id == r.org_id);
            if !known {
                return Err(refused(
                    i,
                    format!("no bucket {:?} of organisation {:?}", r.bucket, r.org_id),
                ));
            }
            let row = nuage_db::repo::storage::UsageRow {
                id: format!("meter:{}", r.id),
                org_id: r.org_id.clone(),
                bucket: r.bucket.clone(),
                hour: r.hour_ms,
                class_a: r.class_a,
                class_b: r.class_b,
                egress_bytes: r.egress_bytes,
                exit_egress_bytes: r.exit_egress_bytes,
                recorded_at: now,
            };
            let stored = match seen.get(r.id.as_str()) {
                Some(earlier) => Some(*earlier == r),
                None => repo::get_usage(&mut tx, &row.id).await?.map(|o| {
                    (
                        o.org_id,
                        o.bucket,
                        o.hour,
                        o.class_a,
                        o.class_b,
                        o.egress_bytes,
                        o.exit_egress_bytes,
                    ) == (
                        row.org_id.clone(),
                        row.bucket.clone(),
                        row.hour,
                        row.class_a,
                        row.class_b,
                        row.egress_bytes,
                        row.exit_egress_bytes,
                    )
                }),
            };
            match stored {
                Some(true) => duplicates += 1,
                Some(false) => {
                    return Err(refused(
                        i,
                        format!("record {:?} was delivered before with other values", r.id),
                    ));
                }
                None => {
                    nuage_db::repo::storage::insert_usage(&mut tx, &row).await?;
                    seen.insert(&r.id, r);
                    accepted += 1;
                }
            }
        }
        tx.commit().await.map_err(nuage_db::DbError::from)?;
        Ok(IngestOutcome {
            accepted,
            duplicates,
        })
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

fn document_totals(document: &InvoiceDocument) -> Totals {
    let lines: Vec<Line> = document
        .lines
        .iter()
        .map(|l| Line {
            kind: l.kind,
            from_gb: l.from_gb,
            quantity: l.quantity,
            unit: "",
            unit_price: l.unit_price,
            amount: l.amount,
        })
        .collect();
    totals(&lines, document.vat)
}

/// The subscriptions in the histories, each with when it was in force;
/// those never activated are left out.
fn subscriptions(events: Vec<repo::SubscriptionEvent>) -> ServiceResult<Vec<Sub>> {
    let mut subs = Vec::new();
    let mut rest = events.as_slice();
    while let Some(first) = rest.first() {
        let n = rest
            .iter()
            .take_while(|e| e.subscription_id == first.subscription_id)
            .count();
        let (history, tail) = rest.split_at(n);
        rest = tail;
        let states = history
            .iter()
            .map(|e| {
                Ok((
                    e.at,
                    SubscriptionState::parse(&e.state)?,
                    e.event == "changed",
                ))
            })
            .collect::<Result<Vec<_>, DomainError>>()?;
        let Some(in_force) = InForce::from_history(&states) else {
            continue;
        };
        let resources: Resources = match first.resources.as_deref() {
            Some(r) => parse_doc(r)?,
            None => Resources::default(),
        };
        subs.push(Sub {
            id: first.subscription_id.clone(),
            provider: first.provider_id.clone(),
            buyer: first.buyer_id.clone(),
            offer: parse_doc(&first.offer_document)?,
            buckets: resources.buckets,
            in_force,
        });
    }
    Ok(subs)
}
