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
//!
//! A crate of its own, above the catalogue whose subscriptions it rates
//! and below nothing: Factur-X (`nuage-facturx`, a leaf) and the CSV of
//! revenue land here only.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use nuage_db::AnyConnection;
use nuage_db::repo::billing::{self as repo, HoldRow, InvoiceRow, NewInvoice, RunRow, UsageSum};
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
use nuage_domain::legal_identity::{Missing, PartyFacts};
use nuage_domain::org::OrgKind;
use nuage_domain::org::{Permission, Role};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use nuage_market::orders::Resources;
use nuage_market::{Catalogue, parse_doc, to_json};
use nuage_service::accounts::stored_identity;
use nuage_service::{AuditEvent, Platform, Principal, RequestMeta, ServiceError, ServiceResult};

pub mod alerts;
mod delivery;
mod forecast;
mod invoices;
mod revenue;
mod runs;
mod usage;

pub use delivery::{Attempt, ChorusProSettings, Delivery, DeliverySettings, PaSettings};
pub use forecast::{Forecast, ForecastInvoice};
pub use invoices::{Statement, StatementKind};
pub use revenue::{RevenueRow, revenue_csv};
pub use runs::{Held, MissingOf, RunSummary};
pub use usage::{IngestOutcome, MAX_RECORDS_PER_DELIVERY, UsageRecordInput};

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
    /// Where invoices are delivered.
    pub delivery: DeliverySettings,
}

impl Default for BillingSettings {
    fn default() -> Self {
        Self {
            vat_rate: Decimal::from(20),
            pay_as_you_go: PriceModel::default(),
            delivery: DeliverySettings::default(),
        }
    }
}

struct Inner {
    catalogue: Catalogue,
    settings: BillingSettings,
    /// For the delivery platforms the operator configured.
    http: reqwest::Client,
}

/// Pay-per-use over the single window: usage intake, billing runs,
/// invoices and credit notes, revenue, forecasts and quota alerts.
#[derive(Clone)]
pub struct Billing {
    inner: Arc<Inner>,
}

impl Billing {
    pub fn new(catalogue: Catalogue, settings: BillingSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                catalogue,
                settings,
                http: reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(30))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap_or_default(),
            }),
        }
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.inner.catalogue
    }

    pub fn platform(&self) -> &Platform {
        self.inner.catalogue.platform()
    }

    /// The organisation of the operator's own offers, which bills usage no
    /// subscription covers.
    pub fn house(&self) -> OrgId {
        self.inner.catalogue.house()
    }

    /// The platform's clock, in ms since the epoch.
    fn now_ms(&self) -> i64 {
        self.platform().now_ms()
    }
}

/// How long after a month's end it is billed on schedule: the last hour's
/// records are written by then (later ones are adjustments of the next).
pub const SCHEDULE_GRACE_MS: i64 = 3_600_000;

/// What a rating reads: records written before `cut`, of one organisation
/// (or all, when empty), with requests and egress scaled by `scale` (1 for a
/// run; the month's length over the time elapsed for a forecast).
struct Scope<'a> {
    cut: i64,
    org: &'a str,
    scale: Decimal,
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
    let legal = stored_identity(identity::legal_identity(conn, id).await?.as_deref())?;
    Ok((
        Party {
            id: row.id,
            name: row.name,
            country: row.country,
            siret: row.siret,
            vat_number: row.vat_number,
            identity: legal,
        },
        kind,
    ))
}

/// What a party, as an invoice would name it, lacks.
fn facts(party: &Party, kind: OrgKind) -> PartyFacts<'_> {
    PartyFacts {
        kind,
        country: &party.country,
        siret: party.siret.as_deref(),
        vat_number: party.vat_number.as_deref(),
        identity: &party.identity,
    }
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
