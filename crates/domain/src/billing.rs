//! Rating usage into invoice lines: the arithmetic of pay-per-use, with no
//! I/O. The rules:
//!
//! - A GB is 10⁹ bytes. Storage is the integral of the bytes stored over
//!   time, in byte-milliseconds (exact integers), converted to GB-months
//!   where a month is the billing period's actual length: 100 GB kept a
//!   whole period is 100 GB-months, whatever the period's length.
//! - A flat fee is prorated to the day: a subscription active during part
//!   of a period pays for the UTC days it was active on, any part of a day
//!   counting as the day, over the days of the period.
//! - A commitment of N months ends on the same day N months later.
//!   Cancelled before, the fee of the rest of the commitment (from the day
//!   after the cancellation, prorated the same way) is owed with the
//!   cancellation's period.
//! - Storage beyond the GB included is priced by graduated tiers (each GB
//!   at the price of the band its rank falls in), one line per band.
//! - Requests are priced per thousand, egress per GB. Egress for leaving
//!   the platform (a tenant exporting its data to switch providers) is
//!   shown at no charge, as the EU Data Act requires from 12 January 2027.
//! - Unit prices keep their 6 decimals; each line's amount is rounded once,
//!   to the cent, half away from zero (`catalogue::to_cents`); the net
//!   total is the sum of rounded lines.
//! - VAT, by the parties' countries: none for a customer outside the EU;
//!   reverse charge for a business with a VAT number (valid in format and
//!   check digits; whether it is registered needs the EU's VIES service,
//!   not reached from here) of another member state than the seller's;
//!   otherwise the seller's rate (20 % in France). All lines of an invoice
//!   share its treatment, and the VAT is the net total times the rate,
//!   rounded once to the cent, as EN 16931 computes it per category
//!   (BR-CO-17). Sales to consumers of other member states are taxed at
//!   the seller's rate here; the one-stop-shop rule (the consumer's
//!   country's rate) is not applied.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::DomainError;
use crate::catalogue::{BYTES_PER_GB, PriceModel, SubscriptionState, to_cents};
use crate::legal::{VatNumber, is_eu_country};

const DAY_MS: i64 = 86_400_000;

/// A span of time, `[start, end)` in Unix milliseconds (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    start_ms: i64,
    end_ms: i64,
}

impl Period {
    pub fn new(start_ms: i64, end_ms: i64) -> Result<Self, DomainError> {
        if end_ms <= start_ms {
            return Err(DomainError::invalid(
                "period",
                "a period ends after it starts",
            ));
        }
        Ok(Self { start_ms, end_ms })
    }

    /// The calendar month `year-month` (UTC).
    pub fn month(year: i32, month: u8) -> Result<Self, DomainError> {
        let first = |y: i32, m: u8| -> Result<i64, DomainError> {
            let month = time::Month::try_from(m)
                .map_err(|_| DomainError::invalid("month", format!("{m} is not a month")))?;
            let day = time::Date::from_calendar_date(y, month, 1)
                .map_err(|e| DomainError::invalid("month", e.to_string()))?;
            Ok((day.midnight().assume_utc().unix_timestamp_nanos() / 1_000_000) as i64)
        };
        let (next_year, next_month) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        Self::new(first(year, month)?, first(next_year, next_month)?)
    }

    pub fn start_ms(&self) -> i64 {
        self.start_ms
    }

    pub fn end_ms(&self) -> i64 {
        self.end_ms
    }

    pub fn length_ms(&self) -> i64 {
        self.end_ms - self.start_ms
    }

    /// The part of this period within `other`, if any.
    pub fn within(&self, other: &Period) -> Option<Period> {
        Period::new(
            self.start_ms.max(other.start_ms),
            self.end_ms.min(other.end_ms),
        )
        .ok()
    }

    /// The UTC days this period touches.
    pub fn days(&self) -> i64 {
        (self.end_ms - 1).div_euclid(DAY_MS) - self.start_ms.div_euclid(DAY_MS) + 1
    }
}

/// The byte-milliseconds stored over `period`: `bytes_at_start` bytes at its
/// start, then each change `(at_ms, delta_bytes)` in time order. Changes
/// outside the period are refused, as is a negative amount stored.
pub fn storage_byte_ms(
    bytes_at_start: i64,
    changes: &[(i64, i64)],
    period: Period,
) -> Result<i128, DomainError> {
    let mut bytes = i128::from(bytes_at_start);
    let mut at = period.start_ms;
    let mut total: i128 = 0;
    for &(when, delta) in changes {
        if when < at || when >= period.end_ms {
            return Err(DomainError::invalid(
                "usage",
                "storage changes must be in time order, within the period",
            ));
        }
        total += bytes * i128::from(when - at);
        bytes += i128::from(delta);
        at = when;
        if bytes < 0 {
            return Err(DomainError::invalid(
                "usage",
                "the bytes stored cannot be negative",
            ));
        }
    }
    if bytes_at_start < 0 {
        return Err(DomainError::invalid(
            "usage",
            "the bytes stored cannot be negative",
        ));
    }
    Ok(total + bytes * i128::from(period.end_ms - at))
}

/// Byte-milliseconds over a period, in GB-months of that period.
pub fn gb_months(byte_ms: i128, period: Period) -> Decimal {
    let per_gb_month = i128::from(BYTES_PER_GB) * i128::from(period.length_ms());
    // Both fit in 96 bits for any storage under 10¹⁸ bytes over a month.
    let whole = byte_ms / per_gb_month;
    let rest = byte_ms % per_gb_month;
    Decimal::from_i128_with_scale(whole, 0)
        + Decimal::from_i128_with_scale(rest, 0) / Decimal::from_i128_with_scale(per_gb_month, 0)
}

/// The share of a period's flat fee owed for being active during `active`:
/// the UTC days it touches within the period, over the period's days.
pub fn fee_share(active: Period, period: Period) -> Decimal {
    match active.within(&period) {
        Some(part) => Decimal::from(part.days()) / Decimal::from(period.days()),
        None => Decimal::ZERO,
    }
}

/// When a commitment of `months` made at `start_ms` ends: the same day of
/// the month `months` later (the month's last day when it is shorter), at
/// the same time.
pub fn commitment_end(start_ms: i64, months: u32) -> Result<i64, DomainError> {
    let bad = || DomainError::invalid("commitment", "the commitment's start is out of range");
    let start = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(start_ms) * 1_000_000)
        .map_err(|_| bad())?;
    let total = i32::try_from(months)
        .ok()
        .and_then(|m| (start.year() * 12 + i32::from(u8::from(start.month())) - 1).checked_add(m))
        .ok_or_else(bad)?;
    let (year, month) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u8);
    let month = time::Month::try_from(month).map_err(|_| bad())?;
    let day = start.day().min(month.length(year));
    let date = time::Date::from_calendar_date(year, month, day).map_err(|_| bad())?;
    let end = start.replace_date(date);
    Ok((end.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// The months of flat fee still owed when a subscription committed until
/// `committed_until_ms` is cancelled at `cancelled_ms`: from the day after
/// the cancellation (that day is billed with the period it ends) to the end
/// of the commitment, each calendar month prorated to its days as a
/// period's fee is. Billed with the period of the cancellation.
pub fn commitment_remainder(cancelled_ms: i64, committed_until_ms: i64) -> Decimal {
    let from = (cancelled_ms.div_euclid(DAY_MS) + 1) * DAY_MS;
    let Ok(remainder) = Period::new(from, committed_until_ms) else {
        return Decimal::ZERO;
    };
    let mut owed = Decimal::ZERO;
    let mut at = remainder.start_ms();
    while at < remainder.end_ms() {
        let Some(month) = month_of(at) else {
            break;
        };
        owed += fee_share(remainder, month);
        at = month.end_ms();
    }
    owed
}

/// The calendar month (UTC) an instant falls in.
fn month_of(ms: i64) -> Option<Period> {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    Period::month(at.year(), u8::from(at.month())).ok()
}

/// Requests and egress of one bucket during one hour, as metered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourUsage {
    pub bucket: String,
    /// The hour's start, in Unix milliseconds.
    pub hour_ms: i64,
    pub class_a: i64,
    pub class_b: i64,
    pub egress_bytes: i64,
    pub exit_egress_bytes: i64,
}

/// One bucket's usage on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DayUsage {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub bucket: String,
    /// The storage of the day, in GB-months of its month: a month's days
    /// add up to the month's GB-months.
    #[schema(value_type = String, example = "0.0333")]
    pub storage_gb_months: Decimal,
    pub class_a_requests: i64,
    pub class_b_requests: i64,
    #[schema(value_type = String)]
    pub egress_gb: Decimal,
    /// Egress for leaving the platform, never charged.
    #[schema(value_type = String)]
    pub exit_egress_gb: Decimal,
}

/// Usage per bucket and UTC day over `days` (from a midnight; the last
/// day may stop short, at the present): storage integrated from the bytes
/// each bucket held at the start and its changes `(bucket, at_ms,
/// delta_bytes)` (by bucket, then time), requests and egress summed from
/// the hourly records. Days when a bucket held nothing and did nothing are
/// left out.
pub fn daily_usage(
    days: Period,
    bytes_at_start: &std::collections::BTreeMap<String, i64>,
    changes: &[(String, i64, i64)],
    hours: &[HourUsage],
) -> Result<Vec<DayUsage>, DomainError> {
    if days.start_ms.rem_euclid(DAY_MS) != 0 {
        return Err(DomainError::invalid("days", "days start at midnight (UTC)"));
    }
    use std::collections::BTreeMap;
    let day_of = |ms: i64| (ms - days.start_ms).div_euclid(DAY_MS);
    // One pass over each input: changes by bucket and day, hourly sums by
    // bucket and day.
    // Per bucket, per day index: the day's changes `(at_ms, delta)`.
    type ByDay = BTreeMap<i64, Vec<(i64, i64)>>;
    let mut moves: BTreeMap<&str, ByDay> = BTreeMap::new();
    for (bucket, at, delta) in changes {
        if *at >= days.start_ms && *at < days.end_ms {
            moves
                .entry(bucket.as_str())
                .or_default()
                .entry(day_of(*at))
                .or_default()
                .push((*at, *delta));
        }
    }
    let mut sums: BTreeMap<(&str, i64), [i64; 4]> = BTreeMap::new();
    for h in hours {
        if h.hour_ms >= days.start_ms && h.hour_ms < days.end_ms {
            let s = sums
                .entry((h.bucket.as_str(), day_of(h.hour_ms)))
                .or_default();
            s[0] += h.class_a;
            s[1] += h.class_b;
            s[2] += h.egress_bytes;
            s[3] += h.exit_egress_bytes;
        }
    }
    let mut buckets: std::collections::BTreeSet<&str> =
        bytes_at_start.keys().map(String::as_str).collect();
    buckets.extend(moves.keys().copied());
    buckets.extend(sums.keys().map(|k| k.0));
    let mut out = Vec::new();
    let no_moves = BTreeMap::new();
    for bucket in buckets {
        let mut bytes = bytes_at_start.get(bucket).copied().unwrap_or(0);
        let mine = moves.get(bucket).unwrap_or(&no_moves);
        let mut day_start = days.start_ms;
        while day_start < days.end_ms {
            let index = day_of(day_start);
            // A day without bytes or activity adds nothing: skip ahead to
            // the next day that has some.
            if bytes == 0 && !mine.contains_key(&index) && !sums.contains_key(&(bucket, index)) {
                let next_move = mine.range(index..).next().map(|(d, _)| *d);
                let next_sum = sums
                    .range((bucket, index)..(bucket, i64::MAX))
                    .next()
                    .map(|(k, _)| k.1);
                match next_move.into_iter().chain(next_sum).min() {
                    Some(next) => {
                        day_start = days.start_ms + next * DAY_MS;
                        continue;
                    }
                    None => break,
                }
            }
            let day = Period::new(day_start, (day_start + DAY_MS).min(days.end_ms))?;
            let today = mine.get(&index).map(Vec::as_slice).unwrap_or(&[]);
            let byte_ms = storage_byte_ms(bytes, today, day)?;
            bytes += today.iter().map(|c| c.1).sum::<i64>();
            let month = month_of(day_start).ok_or_else(|| {
                DomainError::invalid("days", "a day is out of the calendar's range")
            })?;
            let [a, b, egress, exit] = sums.get(&(bucket, index)).copied().unwrap_or_default();
            if byte_ms != 0 || a != 0 || b != 0 || egress != 0 || exit != 0 {
                let gb = |bytes: i64| Decimal::from(bytes) / Decimal::from(BYTES_PER_GB);
                out.push(DayUsage {
                    day: day_name(day_start),
                    bucket: bucket.to_owned(),
                    storage_gb_months: gb_months(byte_ms, month),
                    class_a_requests: a,
                    class_b_requests: b,
                    egress_gb: gb(egress),
                    exit_egress_gb: gb(exit),
                });
            }
            day_start += DAY_MS;
        }
    }
    out.sort_by(|x, y| x.day.cmp(&y.day).then_with(|| x.bucket.cmp(&y.bucket)));
    Ok(out)
}

fn day_name(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(|t| t.date().to_string())
        .unwrap_or_default()
}

/// What a customer used during a period, under one subscription.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Usage {
    pub storage_gb_months: Decimal,
    pub class_a_requests: u64,
    pub class_b_requests: u64,
    pub egress_gb: Decimal,
    /// Egress for leaving the platform: shown, never charged.
    pub exit_egress_gb: Decimal,
}

/// What a line of an invoice is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    MonthlyFee,
    /// The fee of the rest of a commitment cancelled early.
    CommitmentRemainder,
    Storage,
    ClassARequests,
    ClassBRequests,
    Egress,
    ExitEgress,
}

impl LineKind {
    /// What the line is for, as a French invoice says it.
    pub fn label_fr(self) -> &'static str {
        match self {
            Self::MonthlyFee => "Abonnement mensuel",
            Self::CommitmentRemainder => "Reste de l'engagement (résiliation anticipée)",
            Self::Storage => "Stockage",
            Self::ClassARequests => "Requêtes de classe A (écriture, liste)",
            Self::ClassBRequests => "Requêtes de classe B (lecture)",
            Self::Egress => "Trafic sortant",
            Self::ExitEgress => "Trafic de sortie de la plateforme (Data Act, non facturé)",
        }
    }
}

/// A line for the fee of the rest of a commitment: `months` of `fee`.
pub fn commitment_line(fee: Decimal, months: Decimal) -> Line {
    line(LineKind::CommitmentRemainder, None, months, "month", fee)
}

/// When a subscription was in force: from its activation (`start_ms`) to
/// its end, if it ended. Suspension does not end it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InForce {
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    /// Ended because the buyer cancelled (not changed to another offer):
    /// the rest of a commitment is then owed.
    pub cancelled: bool,
}

impl InForce {
    /// From a subscription's history, in time order: each event's time,
    /// the state it led to, and whether it was a change to another offer.
    pub fn from_history(events: &[(i64, SubscriptionState, bool)]) -> Option<InForce> {
        let start_ms = events
            .iter()
            .find(|(_, state, _)| *state == SubscriptionState::Active)?
            .0;
        let end = events
            .iter()
            .find(|(at, state, _)| *at >= start_ms && *state == SubscriptionState::Cancelled);
        Some(InForce {
            start_ms,
            end_ms: end.map(|e| e.0),
            cancelled: end.is_some_and(|e| !e.2),
        })
    }

    /// Whether it was in force at `at_ms`.
    pub fn covers(&self, at_ms: i64) -> bool {
        self.start_ms <= at_ms && self.end_ms.is_none_or(|end| at_ms < end)
    }

    /// The span its flat fee runs for. A subscription changed to another
    /// offer stops paying at the start of the day of the change, which the
    /// new offer pays, so no day is paid twice.
    pub fn fee_span(&self) -> Option<Period> {
        let end = match self.end_ms {
            Some(end) if !self.cancelled => end.div_euclid(DAY_MS) * DAY_MS,
            Some(end) => end,
            None => i64::MAX,
        };
        Period::new(self.start_ms, end).ok()
    }
}

/// A rated line: `amount` is `quantity × unit_price` rounded to the cent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    pub kind: LineKind,
    /// For storage: the band's first GB (tiers).
    pub from_gb: Option<u64>,
    pub quantity: Decimal,
    /// `month`, `GB-month`, `1000 requests` or `GB`.
    pub unit: &'static str,
    pub unit_price: Decimal,
    pub amount: Decimal,
}

fn line(
    kind: LineKind,
    from_gb: Option<u64>,
    quantity: Decimal,
    unit: &'static str,
    unit_price: Decimal,
) -> Line {
    Line {
        kind,
        from_gb,
        amount: to_cents(quantity * unit_price),
        quantity,
        unit,
        unit_price,
    }
}

/// The lines of a period for `usage` under `model`, the flat fee taken at
/// `fee_share` of a month. Lines with nothing to charge are left out, but
/// for exit egress, which is always shown when there was some.
pub fn rate(model: &PriceModel, usage: &Usage, fee_share: Decimal) -> Vec<Line> {
    let mut lines = Vec::new();
    if !model.monthly_fee.amount().is_zero() && !fee_share.is_zero() {
        lines.push(line(
            LineKind::MonthlyFee,
            None,
            fee_share,
            "month",
            model.monthly_fee.amount(),
        ));
    }
    for band in model.storage_bands(usage.storage_gb_months) {
        if !band.per_gb_month.is_zero() {
            lines.push(line(
                LineKind::Storage,
                Some(band.from_gb),
                band.gb,
                "GB-month",
                band.per_gb_month,
            ));
        }
    }
    let thousand = Decimal::from(1000);
    for (kind, requests, price) in [
        (
            LineKind::ClassARequests,
            usage.class_a_requests,
            model.per_1k_class_a.amount(),
        ),
        (
            LineKind::ClassBRequests,
            usage.class_b_requests,
            model.per_1k_class_b.amount(),
        ),
    ] {
        if requests > 0 && !price.is_zero() {
            lines.push(line(
                kind,
                None,
                Decimal::from(requests) / thousand,
                "1000 requests",
                price,
            ));
        }
    }
    if !usage.egress_gb.is_zero() && !model.per_gb_egress.amount().is_zero() {
        lines.push(line(
            LineKind::Egress,
            None,
            usage.egress_gb,
            "GB",
            model.per_gb_egress.amount(),
        ));
    }
    if !usage.exit_egress_gb.is_zero() {
        lines.push(line(
            LineKind::ExitEgress,
            None,
            usage.exit_egress_gb,
            "GB",
            Decimal::ZERO,
        ));
    }
    lines
}

/// The sum of the lines' amounts.
pub fn total(lines: &[Line]) -> Decimal {
    lines.iter().map(|l| l.amount).sum()
}

/// How VAT applies to an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "treatment", rename_all = "snake_case")]
pub enum Vat {
    /// The seller's rate, in percent (EN 16931 category S).
    Standard {
        #[schema(value_type = String, example = "20")]
        rate: Decimal,
    },
    /// The customer accounts for the VAT (category AE).
    ReverseCharge,
    /// A customer outside the EU (category O).
    OutsideEu,
}

/// The VAT of a sale from a seller in `seller_country` to a customer in
/// `customer_country` (ISO 3166 codes), with the customer's VAT number if
/// it is a business that gave one; `standard_rate` in percent.
pub fn vat_treatment(
    seller_country: &str,
    customer_country: &str,
    customer_vat: Option<&VatNumber>,
    standard_rate: Decimal,
) -> Vat {
    if !is_eu_country(customer_country) {
        return Vat::OutsideEu;
    }
    match customer_vat {
        Some(number) if number.country() != seller_country => Vat::ReverseCharge,
        _ => Vat::Standard {
            rate: standard_rate,
        },
    }
}

/// An invoice's totals, in euros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub net: Decimal,
    pub vat: Decimal,
    pub gross: Decimal,
}

pub fn totals(lines: &[Line], vat: Vat) -> Totals {
    let net = total(lines);
    let tax = match vat {
        Vat::Standard { rate } => to_cents(net * rate / Decimal::from(100)),
        Vat::ReverseCharge | Vat::OutsideEu => to_cents(Decimal::ZERO),
    };
    Totals {
        net,
        vat: tax,
        gross: net + tax,
    }
}

// The invoice as issued: what its documents (the PDF, the Factur-X XML,
// the API) state, whole.

/// A party to an invoice, as it was when the invoice was issued.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Party {
    pub id: String,
    pub name: String,
    pub country: String,
    pub siret: Option<String>,
    pub vat_number: Option<String>,
    /// Address, legal form, share capital, RCS… (none on invoices issued
    /// before they were asked for).
    #[serde(default)]
    pub identity: crate::legal_identity::LegalIdentity,
}

impl Party {
    /// The SIREN: the SIRET's first nine digits.
    pub fn siren(&self) -> Option<&str> {
        self.siret.as_deref().and_then(|s| s.get(..9))
    }
}

/// A line of an invoice.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InvoiceLine {
    /// What it is for, in French (the invoice's language).
    pub description: String,
    pub kind: LineKind,
    /// The offer's name, or the operator's pay-as-you-go.
    pub offer: String,
    /// The subscription it bills; none for pay-as-you-go usage.
    pub subscription_id: Option<String>,
    /// For storage: the band's first GB.
    pub from_gb: Option<u64>,
    #[schema(value_type = String)]
    pub quantity: Decimal,
    pub unit: String,
    #[schema(value_type = String)]
    pub unit_price: Decimal,
    /// `quantity × unit_price`, rounded once to the cent.
    #[schema(value_type = String)]
    pub amount: Decimal,
    /// Usage of earlier periods that reached the metering after they were
    /// billed.
    pub adjustment: bool,
}

/// What an invoice or credit note says, whole.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InvoiceDocument {
    pub issuer: Party,
    pub customer: Party,
    pub vat: Vat,
    pub lines: Vec<InvoiceLine>,
    /// A credit note's reason.
    pub note: Option<String>,
}

/// An issued invoice or credit note.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Invoice {
    pub id: String,
    /// The issuer's number, e.g. `F-000042` (`A-` for a credit note).
    pub number: String,
    /// `invoice` or `credit_note`.
    pub kind: String,
    /// A credit note's invoice.
    pub corrects_id: Option<String>,
    /// The period billed, `YYYY-MM`.
    pub period: String,
    pub period_start_ms: i64,
    pub period_end_ms: i64,
    pub currency: String,
    #[schema(value_type = String)]
    pub net: Decimal,
    #[schema(value_type = String)]
    pub vat_amount: Decimal,
    #[schema(value_type = String)]
    pub gross: Decimal,
    pub issued_at_ms: i64,
    #[serde(flatten)]
    pub document: InvoiceDocument,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{Price, Tier};

    fn price(s: &str) -> Price {
        Price::parse(s, "price").expect("test value")
    }

    fn d(s: &str) -> Decimal {
        s.parse().expect("test value")
    }

    #[test]
    fn months_are_their_calendar_length() {
        let february = Period::month(2027, 2).expect("month");
        assert_eq!(february.days(), 28);
        assert_eq!(Period::month(2028, 2).expect("month").days(), 29);
        let december = Period::month(2026, 12).expect("month");
        assert_eq!(december.days(), 31);
        assert_eq!(
            december.end_ms(),
            Period::month(2027, 1).expect("month").start_ms()
        );
        assert!(Period::month(2026, 13).is_err());
        assert!(Period::new(5, 5).is_err());
    }

    #[test]
    fn storage_is_integrated_over_time_in_gb_months() {
        let april = Period::month(2027, 4).expect("month");
        let half = april.start_ms() + april.length_ms() / 2;
        // 100 GB all month, then 50 GB more for its second half.
        let byte_ms = storage_byte_ms(100 * BYTES_PER_GB, &[(half, 50 * BYTES_PER_GB)], april)
            .expect("integrated");
        assert_eq!(gb_months(byte_ms, april), d("125"));
        // Uploaded then deleted at once: nothing.
        let none = storage_byte_ms(0, &[(half, 5), (half, -5)], april).expect("integrated");
        assert_eq!(none, 0);
        // A GB for one day of a 30-day month.
        let day = storage_byte_ms(
            0,
            &[
                (april.start_ms(), BYTES_PER_GB),
                (april.start_ms() + DAY_MS, -BYTES_PER_GB),
            ],
            april,
        )
        .expect("integrated");
        assert_eq!(gb_months(day, april), Decimal::ONE / Decimal::from(30));
    }

    #[test]
    fn storage_refuses_changes_out_of_order_or_below_zero() {
        let april = Period::month(2027, 4).expect("month");
        let at = april.start_ms() + 10;
        assert!(storage_byte_ms(0, &[(at, 5), (at - 1, 5)], april).is_err());
        assert!(storage_byte_ms(0, &[(april.end_ms(), 5)], april).is_err());
        assert!(storage_byte_ms(0, &[(at, -1)], april).is_err());
        assert!(storage_byte_ms(-1, &[], april).is_err());
    }

    #[test]
    fn a_flat_fee_is_prorated_to_the_days_touched() {
        let april = Period::month(2027, 4).expect("month");
        let all = Period::new(april.start_ms() - DAY_MS, april.end_ms() + DAY_MS).expect("span");
        assert_eq!(fee_share(all, april), Decimal::ONE);
        // From noon on the 11th to the end: 20 days of 30.
        let from = april.start_ms() + 10 * DAY_MS + DAY_MS / 2;
        let late = Period::new(from, april.end_ms()).expect("span");
        assert_eq!(fee_share(late, april), d("20") / d("30"));
        let before = Period::new(0, april.start_ms()).expect("span");
        assert_eq!(fee_share(before, april), Decimal::ZERO);
    }

    #[test]
    fn lines_are_rated_by_band_and_rounded_once_each() {
        let model = PriceModel {
            monthly_fee: price("1.5"),
            included_gb: 10,
            per_gb_month: price("0.005"),
            per_1k_class_a: price("0.004"),
            per_1k_class_b: price("0.0004"),
            per_gb_egress: price("0.01"),
            tiers: vec![Tier {
                from_gb: 1000,
                per_gb_month: price("0.004"),
            }],
            commitment_months: 0,
        };
        let usage = Usage {
            storage_gb_months: d("1500"),
            class_a_requests: 12_345,
            class_b_requests: 1_000_001,
            egress_gb: d("2.5"),
            exit_egress_gb: d("40"),
        };
        let lines = rate(&model, &usage, d("0.5"));
        let got: Vec<(LineKind, Option<u64>, Decimal, Decimal)> = lines
            .iter()
            .map(|l| (l.kind, l.from_gb, l.quantity, l.amount))
            .collect();
        assert_eq!(
            got,
            vec![
                (LineKind::MonthlyFee, None, d("0.5"), d("0.75")),
                // 990 GB between the 10 included and the tier: 4.95 €.
                (LineKind::Storage, Some(0), d("990"), d("4.95")),
                // 500 GB at the tier's price: 2.00 €.
                (LineKind::Storage, Some(1000), d("500"), d("2.00")),
                // 12.345 thousand at 0.004: 0.04938 → 0.05.
                (LineKind::ClassARequests, None, d("12.345"), d("0.05")),
                // 1000.001 thousand at 0.0004: 0.4000004 → 0.40.
                (LineKind::ClassBRequests, None, d("1000.001"), d("0.40")),
                (LineKind::Egress, None, d("2.5"), d("0.03")),
                (LineKind::ExitEgress, None, d("40"), d("0.00")),
            ]
        );
        assert_eq!(total(&lines), d("8.18"));
        // The unrounded price of the same month, for comparison, is the
        // catalogue's (without the exit egress, and at a whole fee).
        assert_eq!(
            to_cents(model.storage_cost(usage.storage_gb_months)),
            d("6.95")
        );
    }

    #[test]
    fn nothing_used_costs_the_prorated_fee_only() {
        let model = PriceModel {
            monthly_fee: price("2"),
            per_gb_month: price("0.005"),
            ..PriceModel::default()
        };
        let lines = rate(&model, &Usage::default(), d("1"));
        assert_eq!(lines.len(), 1);
        assert_eq!(total(&lines), d("2.00"));
        assert!(rate(&model, &Usage::default(), Decimal::ZERO).is_empty());
    }

    fn at(y: i32, m: u8, d: u8, hour: u8) -> i64 {
        let date = time::Date::from_calendar_date(y, time::Month::try_from(m).expect("month"), d)
            .expect("date");
        let t = date.with_hms(hour, 0, 0).expect("time").assume_utc();
        (t.unix_timestamp_nanos() / 1_000_000) as i64
    }

    #[test]
    fn a_commitment_ends_on_the_same_day_months_later() {
        assert_eq!(
            commitment_end(at(2027, 1, 15, 9), 12).expect("end"),
            at(2028, 1, 15, 9)
        );
        // The 31st of January plus a month: the last day of February.
        assert_eq!(
            commitment_end(at(2027, 1, 31, 0), 1).expect("end"),
            at(2027, 2, 28, 0)
        );
        assert_eq!(
            commitment_end(at(2027, 11, 30, 0), 3).expect("end"),
            at(2028, 2, 29, 0)
        );
        assert!(commitment_end(at(2027, 1, 1, 0), u32::MAX).is_err());
    }

    #[test]
    fn cancelling_early_owes_the_rest_of_the_commitment() {
        let until = commitment_end(at(2027, 1, 15, 9), 12).expect("end");
        // Cancelled on the 30th of June: July to December, and the 1st to
        // the 15th of January (the end's day is touched).
        let owed = commitment_remainder(at(2027, 6, 30, 12), until);
        assert_eq!(owed, Decimal::from(6) + d("15") / d("31"));
        // After the commitment, nothing.
        assert_eq!(commitment_remainder(until, until), Decimal::ZERO);
        assert_eq!(
            commitment_remainder(at(2028, 3, 1, 0), until),
            Decimal::ZERO
        );
    }

    #[test]
    fn usage_is_told_per_bucket_and_day() {
        let april = Period::month(2027, 4).expect("month");
        let first = april.start_ms();
        let noon = first + DAY_MS / 2;
        let before = std::collections::BTreeMap::from([("kept".to_owned(), 30 * BYTES_PER_GB)]);
        let changes = vec![
            ("new".to_owned(), noon, 3 * BYTES_PER_GB),
            ("new".to_owned(), noon + DAY_MS, -3 * BYTES_PER_GB),
        ];
        let hours = vec![HourUsage {
            bucket: "new".into(),
            hour_ms: first + 3_600_000,
            class_a: 4,
            class_b: 5,
            egress_bytes: BYTES_PER_GB / 2,
            exit_egress_bytes: 0,
        }];
        let three_days = Period::new(first, first + 3 * DAY_MS).expect("days");
        let days = daily_usage(three_days, &before, &changes, &hours).expect("usage");
        let got: Vec<(&str, &str, Decimal, i64)> = days
            .iter()
            .map(|d| {
                (
                    d.day.as_str(),
                    d.bucket.as_str(),
                    d.storage_gb_months,
                    d.class_a_requests,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                // 30 GB all day: a thirtieth of 30 GB-months.
                ("2027-04-01", "kept", d("1"), 0),
                // 3 GB from noon: half a day of 3 GB.
                ("2027-04-01", "new", d("0.05"), 4),
                ("2027-04-02", "kept", d("1"), 0),
                ("2027-04-02", "new", d("0.05"), 0),
                ("2027-04-03", "kept", d("1"), 0),
            ]
        );
        assert_eq!(days[1].egress_gb, d("0.5"));
        // The days of a month add up to the month.
        let month = daily_usage(april, &before, &[], &[]).expect("usage");
        let sum: Decimal = month.iter().map(|d| d.storage_gb_months).sum();
        assert_eq!(sum.round_dp(20), Decimal::from(30));
        // A day cut short (today, so far): what has accrued.
        let so_far =
            daily_usage(Period::new(first, noon).expect("span"), &before, &[], &[]).expect("usage");
        assert_eq!(so_far[0].storage_gb_months, d("0.5"));
        assert!(
            daily_usage(
                Period::new(noon, noon + DAY_MS).expect("span"),
                &before,
                &[],
                &[]
            )
            .is_err()
        );
    }

    #[test]
    fn vat_follows_the_parties_countries() {
        let twenty = d("20");
        let german = VatNumber::parse("DE139115146").expect("a VAT number");
        let greek = VatNumber::parse("EL875475296").expect("a VAT number");
        let french = VatNumber::parse("FR40303265045").expect("a VAT number");
        let standard = Vat::Standard { rate: twenty };
        assert_eq!(vat_treatment("FR", "FR", None, twenty), standard);
        assert_eq!(vat_treatment("FR", "FR", Some(&french), twenty), standard);
        assert_eq!(
            vat_treatment("FR", "DE", Some(&german), twenty),
            Vat::ReverseCharge
        );
        assert_eq!(
            vat_treatment("FR", "GR", Some(&greek), twenty),
            Vat::ReverseCharge
        );
        // A consumer of another member state: the seller's rate.
        assert_eq!(vat_treatment("FR", "DE", None, twenty), standard);
        assert_eq!(vat_treatment("FR", "US", None, twenty), Vat::OutsideEu);
        assert_eq!(
            vat_treatment("FR", "CH", Some(&german), twenty),
            Vat::OutsideEu
        );
    }

    #[test]
    fn vat_is_the_rate_of_the_net_total_rounded_once() {
        let lines = vec![
            line(LineKind::Storage, Some(0), d("1.1"), "GB-month", d("0.005")),
            line(LineKind::Egress, None, d("0.9"), "GB", d("0.005")),
        ];
        // 0.0055 rounds to 0.01 and 0.0045 to 0.00: 0.01 net, and 20 % of
        // it (0.002) is no VAT cent.
        let t = totals(&lines, Vat::Standard { rate: d("20") });
        assert_eq!((t.net, t.vat, t.gross), (d("0.01"), d("0.00"), d("0.01")));
        let month = vec![line(LineKind::MonthlyFee, None, d("1"), "month", d("8.18"))];
        let t = totals(&month, Vat::Standard { rate: d("20") });
        assert_eq!((t.net, t.vat, t.gross), (d("8.18"), d("1.64"), d("9.82")));
        let t = totals(&month, Vat::ReverseCharge);
        assert_eq!((t.vat, t.gross), (d("0.00"), d("8.18")));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Splitting a period anywhere never changes the storage it
            /// integrates.
            #[test]
            fn splitting_a_period_keeps_the_byte_ms(
                start in 0i64..1_000_000,
                bytes in 0i64..1_000_000_000_000,
                mut changes in prop::collection::vec((0i64..1_000_000, 0i64..1_000_000_000), 0..20),
                cut in 1i64..999_999,
            ) {
                let period = Period::new(start, start + 1_000_000).expect("period");
                changes.sort();
                let changes: Vec<(i64, i64)> = changes.into_iter().map(|(at, d)| (start + at, d)).collect();
                let whole = storage_byte_ms(bytes, &changes, period).expect("integrated");
                let cut_at = start + cut;
                let first = Period::new(start, cut_at).expect("period");
                let second = Period::new(cut_at, period.end_ms()).expect("period");
                let before: Vec<_> = changes.iter().copied().filter(|c| c.0 < cut_at).collect();
                let after: Vec<_> = changes.iter().copied().filter(|c| c.0 >= cut_at).collect();
                let at_cut = bytes + before.iter().map(|c| c.1).sum::<i64>();
                let parts = storage_byte_ms(bytes, &before, first).expect("integrated")
                    + storage_byte_ms(at_cut, &after, second).expect("integrated");
                prop_assert_eq!(whole, parts);
            }

            /// The days of a month add up to the month, whatever the
            /// changes, and every request is told once.
            #[test]
            fn the_days_add_up_to_the_month(
                start in 0i64..1_000_000_000,
                mut changes in prop::collection::vec((0i64..2_592_000_000, 0i64..1_000_000_000, 0usize..3), 0..30),
                hours in prop::collection::vec((0i64..720, 0i64..1000, 0usize..3), 0..30),
            ) {
                let april = Period::month(2027, 4).expect("month");
                changes.sort();
                let names = ["a", "b", "c"];
                let mut before = std::collections::BTreeMap::new();
                before.insert("a".to_owned(), start);
                let moves: Vec<(String, i64, i64)> = names
                    .iter()
                    .flat_map(|n| {
                        changes
                            .iter()
                            .filter(|c| names[c.2] == *n)
                            .map(|c| (n.to_string(), april.start_ms() + c.0, c.1))
                            .collect::<Vec<_>>()
                    })
                    .collect();
                let metered: Vec<HourUsage> = hours
                    .iter()
                    .map(|h| HourUsage {
                        bucket: names[h.2].to_owned(),
                        hour_ms: april.start_ms() + h.0 * 3_600_000,
                        class_a: h.1,
                        class_b: 0,
                        egress_bytes: 0,
                        exit_egress_bytes: 0,
                    })
                    .collect();
                let days = daily_usage(april, &before, &moves, &metered).expect("usage");
                for n in names {
                    let mine: Vec<(i64, i64)> = moves.iter().filter(|m| m.0 == n).map(|m| (m.1, m.2)).collect();
                    let whole = gb_months(
                        storage_byte_ms(*before.get(n).unwrap_or(&0), &mine, april).expect("integrated"),
                        april,
                    );
                    let summed: Decimal = days.iter().filter(|d| d.bucket == n).map(|d| d.storage_gb_months).sum();
                    prop_assert!((whole - summed).abs() < d("0.000000000001"), "{} {} {}", n, whole, summed);
                    let requests: i64 = metered.iter().filter(|h| h.bucket == n).map(|h| h.class_a).sum();
                    let told: i64 = days.iter().filter(|d| d.bucket == n).map(|d| d.class_a_requests).sum();
                    prop_assert_eq!(requests, told);
                }
            }

            /// Every line's amount is its quantity times its unit price,
            /// rounded to the cent, and never negative.
            #[test]
            fn lines_are_quantity_times_price_to_the_cent(
                gb in 0u32..100_000,
                a in 0u64..100_000_000,
                b in 0u64..100_000_000,
                fee_days in 0u32..=30,
            ) {
                let model = PriceModel {
                    monthly_fee: price("1.99"),
                    included_gb: 5,
                    per_gb_month: price("0.004321"),
                    per_1k_class_a: price("0.005"),
                    per_1k_class_b: price("0.000399"),
                    per_gb_egress: price("0.009"),
                    tiers: vec![Tier { from_gb: 500, per_gb_month: price("0.0031") }],
                    commitment_months: 0,
                };
                let usage = Usage {
                    storage_gb_months: Decimal::from(gb) / Decimal::from(7),
                    class_a_requests: a,
                    class_b_requests: b,
                    egress_gb: Decimal::from(gb) / Decimal::from(3),
                    exit_egress_gb: Decimal::ZERO,
                };
                let share = Decimal::from(fee_days) / Decimal::from(30);
                for l in rate(&model, &usage, share) {
                    prop_assert_eq!(l.amount, to_cents(l.quantity * l.unit_price));
                    prop_assert!(l.amount >= Decimal::ZERO);
                    prop_assert_eq!(l.amount.scale(), 2);
                }
            }
        }
    }
}
