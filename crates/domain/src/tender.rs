//! Calls for tender: what a public buyer publishes (lots, requirements over
//! offers' self-descriptions, weighted award criteria, a deadline), the bid a
//! provider seals, and the rules that decide: the procedure's minimum
//! response period, eligibility per rule, the price formula, the ranking and
//! its tie-break, the standstill period.
//!
//! Nothing here reads a clock: instants come in as milliseconds since the
//! Unix epoch.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::DomainError;
use crate::catalogue::{Category, Price, UsageProfile, short_text};

pub const DAY_MS: i64 = 86_400_000;

/// The procedure, which sets the minimum response period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Procedure {
    /// Procédure adaptée (MAPA), below the EU thresholds.
    Adapted,
    /// Appel d'offres ouvert.
    Open,
}

impl Procedure {
    /// The shortest response period, in days, from publication to deadline.
    pub fn min_response_days(self) -> i64 {
        match self {
            Self::Adapted => 15,
            Self::Open => 30,
        }
    }

    /// Where the minimum comes from, as the warning says it.
    pub fn rule(self) -> &'static str {
        match self {
            Self::Adapted => {
                "an adapted procedure has no minimum in law but needs a reasonable period; \
                 the platform's rule is 15 days, the time to prepare a bid"
            }
            Self::Open => {
                "an open procedure gives at least 35 days from the notice, 30 when bids are \
                 submitted electronically (Directive 2014/24/EU, art. 27(1) and 27(4))"
            }
        }
    }

    /// The OCDS `procurementMethodDetails` and DECP `procedure` wording.
    pub fn decp(self) -> &'static str {
        match self {
            Self::Adapted => "Procédure adaptée",
            Self::Open => "Appel d'offres ouvert",
        }
    }
}

/// The form of the price (DECP `formePrix`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PriceForm {
    Unit,
    Lump,
    Mixed,
}

impl PriceForm {
    pub fn decp(self) -> &'static str {
        match self {
            Self::Unit => "Unitaire",
            Self::Lump => "Forfaitaire",
            Self::Mixed => "Mixte",
        }
    }
}

/// The general administrative terms the contract refers to (DECP `ccag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Ccag {
    /// Techniques de l'information et de la communication (CCAG-TIC).
    InformationTechnology,
    /// Fournitures courantes et services (CCAG-FCS).
    SuppliesAndServices,
    /// Prestations intellectuelles (CCAG-PI).
    IntellectualServices,
    None,
}

impl Ccag {
    pub fn decp(self) -> &'static str {
        match self {
            Self::InformationTechnology => "Techniques de l'information et de la communication",
            Self::SuppliesAndServices => "Fournitures courantes et services",
            Self::IntellectualServices => "Prestations intellectuelles",
            Self::None => "Pas de CCAG",
        }
    }
}

/// What kind of code the place of performance is (DECP `lieuExecution`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlaceKind {
    PostalCode,
    Commune,
    Department,
    Region,
    Country,
}

impl PlaceKind {
    pub fn decp(self) -> &'static str {
        match self {
            Self::PostalCode => "Code postal",
            Self::Commune => "Code commune",
            Self::Department => "Code département",
            Self::Region => "Code région",
            Self::Country => "Code pays",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Place {
    /// E.g. `75001`, `75`, `FR`.
    pub code: String,
    pub kind: PlaceKind,
}

/// A machine-checkable requirement over an offer's self-description (and,
/// for the price, over the bid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum Requirement {
    /// Every region of the offer is one of these.
    DataLocation { regions: Vec<String> },
    /// Every region of the offer is under one of these jurisdictions.
    Jurisdiction { allowed: Vec<String> },
    /// The offer holds every one of these certifications.
    Certifications { required: Vec<String> },
    /// The offer's availability is at least this, in %.
    MinAvailability {
        #[schema(value_type = String)]
        percent: Decimal,
    },
    /// The offer provides at least this much storage (no limit passes).
    MinCapacity { gb: u64 },
    /// The bid's monthly price for the lot's usage profile, excluding VAT,
    /// is at most this.
    MaxPrice {
        #[schema(value_type = String)]
        monthly_eur: Decimal,
    },
    /// The offer exports in every one of these formats.
    ReversibilityFormats { required: Vec<String> },
}

impl Requirement {
    pub fn name(&self) -> &'static str {
        match self {
            Self::DataLocation { .. } => "data_location",
            Self::Jurisdiction { .. } => "jurisdiction",
            Self::Certifications { .. } => "certifications",
            Self::MinAvailability { .. } => "min_availability",
            Self::MinCapacity { .. } => "min_capacity",
            Self::MaxPrice { .. } => "max_price",
            Self::ReversibilityFormats { .. } => "reversibility_formats",
        }
    }

    fn validate(&self) -> Result<(), DomainError> {
        let list = |items: &[String]| {
            if items.is_empty() || items.len() > 50 {
                return Err(DomainError::invalid(
                    "requirements",
                    format!("{}: give between 1 and 50 values", self.name()),
                ));
            }
            items
                .iter()
                .try_for_each(|i| short_text(i, "requirements", 80, true))
        };
        match self {
            Self::DataLocation { regions } => list(regions),
            Self::Jurisdiction { allowed } => list(allowed),
            Self::Certifications { required } | Self::ReversibilityFormats { required } => {
                list(required)
            }
            Self::MinAvailability { percent } => {
                if percent.is_sign_negative() || *percent > Decimal::from(100) {
                    Err(DomainError::invalid(
                        "requirements",
                        "min_availability: a percentage is between 0 and 100",
                    ))
                } else {
                    Ok(())
                }
            }
            Self::MinCapacity { .. } => Ok(()),
            Self::MaxPrice { monthly_eur } => {
                if monthly_eur.is_sign_negative() || monthly_eur.is_zero() {
                    Err(DomainError::invalid(
                        "requirements",
                        "max_price: a ceiling is more than zero",
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// One lot, awarded by itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Lot {
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// What kind of offer answers it.
    pub category: Category,
    /// The month of use bids are priced on.
    pub usage_profile: UsageProfile,
    #[serde(default)]
    pub requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CriterionKind {
    /// Scored by the formula: lowest price / bid price × weight.
    Price,
    /// Marked by the buyer on the published scale.
    Technical,
}

/// An award criterion with its published weight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    pub name: String,
    pub kind: CriterionKind,
    /// Points out of 100.
    pub weight: u32,
    /// A technical criterion is marked from 0 to this (10 by default).
    #[serde(default)]
    pub scale_max: Option<u32>,
    #[serde(default)]
    pub description: String,
}

impl Criterion {
    pub fn scale(&self) -> u32 {
        self.scale_max.unwrap_or(10)
    }
}

/// A call for tender as the buyer drafts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenderSpec {
    pub title: String,
    pub description: String,
    /// The main CPV code, e.g. `72317000-0` (data storage services).
    pub cpv: String,
    /// Estimated value over the whole duration, in euros excluding VAT.
    #[schema(value_type = String, example = "120000")]
    pub estimated_value: Decimal,
    pub place: Place,
    pub duration_months: u32,
    pub price_form: PriceForm,
    pub ccag: Ccag,
    pub procedure: Procedure,
    /// The deadline for bids, ms since the epoch.
    pub deadline_ms: i64,
    /// Questions are taken until then (before the deadline).
    #[serde(default)]
    pub questions_until_ms: Option<i64>,
    pub lots: Vec<Lot>,
    pub criteria: Vec<Criterion>,
}

/// Something the buyer should know but may go on with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Warning {
    pub code: String,
    pub message: String,
}

impl TenderSpec {
    /// Checks every field; `now` is when it is saved.
    pub fn validated(mut self, now: i64) -> Result<Self, DomainError> {
        short_text(&self.title, "title", 200, true)?;
        self.title = self.title.trim().to_owned();
        short_text(&self.description, "description", 20_000, true)?;
        let cpv = self.cpv.trim();
        let digits = cpv.split('-').next().unwrap_or_default();
        let check = cpv.split_once('-').map(|(_, c)| c);
        if digits.len() != 8
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || check.is_some_and(|c| c.len() != 1 || !c.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(DomainError::invalid(
                "cpv",
                "a CPV code is eight digits and a check digit, e.g. 72317000-0",
            ));
        }
        self.cpv = cpv.to_owned();
        if self.estimated_value <= Decimal::ZERO || self.estimated_value.normalize().scale() > 2 {
            return Err(DomainError::invalid(
                "estimated_value",
                "an amount in euros, more than zero, with at most 2 decimals",
            ));
        }
        short_text(&self.place.code, "place.code", 20, true)?;
        self.place.code = self.place.code.trim().to_owned();
        if !(1..=120).contains(&self.duration_months) {
            return Err(DomainError::invalid(
                "duration_months",
                "a duration is between 1 and 120 months",
            ));
        }
        if self.deadline_ms <= now {
            return Err(DomainError::invalid(
                "deadline_ms",
                "the deadline for bids is in the past",
            ));
        }
        if let Some(q) = self.questions_until_ms
            && (q <= now || q >= self.deadline_ms)
        {
            return Err(DomainError::invalid(
                "questions_until_ms",
                "questions close after now and before the deadline",
            ));
        }
        if self.lots.is_empty() || self.lots.len() > 50 {
            return Err(DomainError::invalid("lots", "between 1 and 50 lots"));
        }
        for lot in &mut self.lots {
            short_text(&lot.title, "lots", 200, true)?;
            lot.title = lot.title.trim().to_owned();
            short_text(&lot.description, "lots", 5000, false)?;
            if lot.requirements.len() > 20 {
                return Err(DomainError::invalid(
                    "lots",
                    "at most 20 requirements a lot",
                ));
            }
            for r in &lot.requirements {
                r.validate()?;
            }
            let p = &lot.usage_profile;
            if p.stored_gb.is_sign_negative() || p.egress_gb.is_sign_negative() {
                return Err(DomainError::invalid(
                    "usage_profile",
                    "a usage profile has no negative quantity",
                ));
            }
        }
        self.validate_criteria()?;
        Ok(self)
    }

    fn validate_criteria(&mut self) -> Result<(), DomainError> {
        if self.criteria.is_empty() || self.criteria.len() > 20 {
            return Err(DomainError::invalid(
                "criteria",
                "between 1 and 20 criteria",
            ));
        }
        let mut names = BTreeSet::new();
        for c in &mut self.criteria {
            short_text(&c.name, "criteria", 80, true)?;
            c.name = c.name.trim().to_owned();
            if !names.insert(c.name.to_lowercase()) {
                return Err(DomainError::invalid(
                    "criteria",
                    format!("the criterion {:?} is named twice", c.name),
                ));
            }
            if c.weight == 0 || c.weight > 100 {
                return Err(DomainError::invalid(
                    "criteria",
                    "a weight is between 1 and 100",
                ));
            }
            match c.kind {
                CriterionKind::Price if c.scale_max.is_some() => {
                    return Err(DomainError::invalid(
                        "criteria",
                        "the price is scored by the formula, not on a scale",
                    ));
                }
                CriterionKind::Technical if !(1..=100).contains(&c.scale()) => {
                    return Err(DomainError::invalid(
                        "criteria",
                        "a scale is from 0 to between 1 and 100",
                    ));
                }
                _ => {}
            }
        }
        let prices = self
            .criteria
            .iter()
            .filter(|c| c.kind == CriterionKind::Price)
            .count();
        if prices != 1 {
            return Err(DomainError::invalid(
                "criteria",
                "name exactly one price criterion",
            ));
        }
        let sum: u32 = self.criteria.iter().map(|c| c.weight).sum();
        if sum != 100 {
            return Err(DomainError::invalid(
                "criteria",
                format!("the weights sum to {sum}, not 100"),
            ));
        }
        Ok(())
    }

    /// What the buyer is warned of when publishing at `now`.
    pub fn warnings(&self, now: i64) -> Vec<Warning> {
        let days = (self.deadline_ms - now) as f64 / DAY_MS as f64;
        let min = self.procedure.min_response_days();
        if days < min as f64 {
            vec![Warning {
                code: "short_deadline".into(),
                message: format!(
                    "the deadline is {days:.1} days after publication, under {min}: {}",
                    self.procedure.rule()
                ),
            }]
        } else {
            Vec::new()
        }
    }
}

impl TenderSpec {
    /// The fields an amendment changes, by their names in the JSON.
    pub fn changes_from(&self, before: &TenderSpec) -> Vec<&'static str> {
        let mut out = Vec::new();
        macro_rules! field {
            ($($name:ident),*) => {
                $(if self.$name != before.$name {
                    out.push(stringify!($name));
                })*
            };
        }
        field!(
            title,
            description,
            cpv,
            estimated_value,
            place,
            duration_months,
            price_form,
            ccag,
            procedure,
            deadline_ms,
            questions_until_ms,
            lots,
            criteria
        );
        out
    }

    /// Whether a change touches what bidders answer (lots, their
    /// requirements and usage, the criteria): they may need to bid again.
    pub fn substantial(changes: &[&str]) -> bool {
        changes
            .iter()
            .any(|c| matches!(*c, "lots" | "criteria" | "duration_months" | "price_form"))
    }

    /// When questions close: their own cut-off, or the deadline.
    pub fn questions_close(&self) -> i64 {
        self.questions_until_ms.unwrap_or(self.deadline_ms)
    }
}

/// Unit prices of a bid, one per line of the usage profile, excluding VAT.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BidPrices {
    #[schema(value_type = String)]
    #[serde(default)]
    pub monthly_fee: Price,
    #[schema(value_type = String)]
    #[serde(default)]
    pub per_gb_month: Price,
    #[schema(value_type = String)]
    #[serde(default)]
    pub per_1k_class_a: Price,
    #[schema(value_type = String)]
    #[serde(default)]
    pub per_1k_class_b: Price,
    #[schema(value_type = String)]
    #[serde(default)]
    pub per_gb_egress: Price,
}

impl BidPrices {
    /// The month of the usage profile at these prices.
    pub fn monthly_total(&self, usage: &UsageProfile) -> Decimal {
        let thousand = Decimal::from(1000);
        self.monthly_fee.amount()
            + usage.stored_gb * self.per_gb_month.amount()
            + Decimal::from(usage.class_a_requests) / thousand * self.per_1k_class_a.amount()
            + Decimal::from(usage.class_b_requests) / thousand * self.per_1k_class_b.amount()
            + usage.egress_gb * self.per_gb_egress.amount()
    }
}

/// A document attached to a bid, inside the sealed envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BidDocument {
    pub name: String,
    pub media_type: String,
    /// The file, base64 (standard alphabet, padded).
    pub content_base64: String,
}

/// The bid for one lot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LotBid {
    /// The lot, counted from 1.
    pub lot: u32,
    /// The published offer the bid relies on.
    pub offer_id: String,
    pub prices: BidPrices,
    /// Answers to the technical criteria, by criterion name.
    #[serde(default)]
    pub answers: BTreeMap<String, String>,
}

/// A bid, as the bidder writes it and seals it (docs/tender-bid.schema.json):
/// one envelope per bidder, for one or more lots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Bid {
    pub tender_id: String,
    pub lots: Vec<LotBid>,
    #[serde(default)]
    pub documents: Vec<BidDocument>,
}

/// The most a sealed bid weighs.
pub const MAX_BID_BYTES: usize = 8 * 1024 * 1024;

/// How many envelopes a bidder may send for one call in an hour: enough to
/// correct a bid, not to fill the platform's storage.
pub const MAX_ENVELOPES_PER_HOUR: i64 = 10;

/// The largest document of a call, and how many a call has at most.
pub const MAX_DOCUMENT_BYTES: usize = 20 * 1024 * 1024;
pub const MAX_DOCUMENTS: usize = 20;

/// A document's file name: one name, no path, nothing invisible.
pub fn document_name(name: &str) -> Result<String, DomainError> {
    let name = name.trim();
    let refuse = |reason: &str| Err(DomainError::invalid("name", reason));
    if name.is_empty() || name.chars().count() > 200 {
        return refuse("a file name has 1 to 200 characters");
    }
    if name == "." || name == ".." || name.contains(['/', '\\']) {
        return refuse("a file name, not a path");
    }
    if name.chars().any(char::is_control) {
        return refuse("a file name has no control characters");
    }
    Ok(name.to_owned())
}

/// A document's media type as given (`type/subtype`), or
/// `application/octet-stream`.
pub fn document_media_type(value: Option<&str>) -> String {
    let value = value
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let plausible = value.split_once('/').is_some_and(|(t, s)| {
        !t.is_empty()
            && !s.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/.+-_".contains(c))
    });
    if plausible && value.len() <= 100 {
        value
    } else {
        "application/octet-stream".to_owned()
    }
}

impl Bid {
    /// Reads a decrypted bid and checks it belongs to this call.
    pub fn parse(plain: &[u8], tender_id: &str, spec: &TenderSpec) -> Result<Self, String> {
        let bid: Bid = serde_json::from_slice(plain)
            .map_err(|e| format!("the bid is not in the published JSON shape: {e}"))?;
        if bid.tender_id != tender_id {
            return Err(format!(
                "the bid names another call for tender ({})",
                bid.tender_id
            ));
        }
        if bid.lots.is_empty() {
            return Err("the bid is for no lot".into());
        }
        let mut seen = BTreeSet::new();
        for l in &bid.lots {
            if l.lot == 0 || l.lot as usize > spec.lots.len() {
                return Err(format!("the call has no lot {}", l.lot));
            }
            if !seen.insert(l.lot) {
                return Err(format!("lot {} is bid twice", l.lot));
            }
            for name in l.answers.keys() {
                if !spec
                    .criteria
                    .iter()
                    .any(|c| c.kind == CriterionKind::Technical && &c.name == name)
                {
                    return Err(format!("{name:?} is not a technical criterion of the call"));
                }
            }
        }
        if bid.documents.len() > 20 {
            return Err("a bid carries at most 20 documents".into());
        }
        Ok(bid)
    }
}

/// How a call's private key is held: by one person, or split into `total`
/// Shamir shares of which any `threshold` rebuild it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SharesPolicy {
    pub threshold: u8,
    pub total: u8,
}

impl SharesPolicy {
    pub fn validate(self) -> Result<Self, DomainError> {
        if self.threshold < 2 || self.threshold > self.total || self.total > 20 {
            return Err(DomainError::invalid(
                "shares",
                "from 2 shares needed of 2 to 20 made (threshold ≤ total)",
            ));
        }
        Ok(self)
    }
}

/// The text of one committee member's share: `NUAGE-SHARE-1-<threshold>-<hex>`
/// (the hex is the share as the Shamir library writes it).
pub fn share_text(threshold: u8, share: &[u8]) -> String {
    let hex: String = share.iter().map(|b| format!("{b:02x}")).collect();
    format!("NUAGE-SHARE-1-{threshold}-{hex}")
}

/// Reads a share's text back: (threshold, bytes).
pub fn parse_share(text: &str) -> Result<(u8, Vec<u8>), DomainError> {
    let bad = || DomainError::invalid("shares", "a share reads NUAGE-SHARE-1-<k>-<hex>");
    let rest = text.trim().strip_prefix("NUAGE-SHARE-1-").ok_or_else(bad)?;
    let (k, hex) = rest.split_once('-').ok_or_else(bad)?;
    let k: u8 = k.parse().map_err(|_| bad())?;
    if hex.len() % 2 != 0 || hex.len() < 4 {
        return Err(bad());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| bad())?;
    Ok((k, bytes))
}

/// What the platform signs when it receives an envelope: the proof of what
/// was submitted (its SHA-256) and when the upload ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub tender_id: String,
    pub bid_id: String,
    pub bidder_org_id: String,
    /// SHA-256 of the ciphertext, hex.
    pub sha256: String,
    pub size: u64,
    pub received_at_ms: i64,
}

impl Receipt {
    /// The exact bytes signed, one field a line.
    pub fn message(&self) -> String {
        format!(
            "nuage bid receipt v1\ntender {}\nbid {}\nbidder {}\nsha256 {}\nsize {}\nreceived_at_ms {}\n",
            self.tender_id,
            self.bid_id,
            self.bidder_org_id,
            self.sha256,
            self.size,
            self.received_at_ms
        )
    }
}

/// A receipt with the platform's Ed25519 signature of its message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedReceipt {
    pub receipt: Receipt,
    /// Ed25519 signature of `receipt.message()`, base64.
    pub signature: String,
    /// The platform's public key, hex: the signing key of `key_epoch`, as
    /// `GET /api/v1/platform/keys` publishes it.
    pub public_key: String,
    /// The signing key's epoch (receipts signed before epochs have none:
    /// epoch 1).
    #[serde(default = "first_epoch")]
    pub key_epoch: u32,
}

fn first_epoch() -> u32 {
    1
}

/// What eligibility is checked against: the offer a bid relies on, as its
/// provider published it, with its regions' jurisdictions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferFacts {
    pub provider_id: String,
    pub published: bool,
    pub category: Category,
    /// (region, jurisdiction)
    pub regions: Vec<(String, String)>,
    pub certifications: Vec<String>,
    pub availability_percent: Decimal,
    pub capacity_gb: Option<u64>,
    pub export_formats: Vec<String>,
}

/// The outcome of one rule for one bid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RuleOutcome {
    pub rule: String,
    pub passed: bool,
    pub explanation: String,
}

fn outcome(rule: &str, passed: bool, explanation: String) -> RuleOutcome {
    RuleOutcome {
        rule: rule.to_owned(),
        passed,
        explanation,
    }
}

fn missing(wanted: &[String], have: &[String]) -> Vec<String> {
    wanted
        .iter()
        .filter(|w| !have.iter().any(|h| h.eq_ignore_ascii_case(w)))
        .cloned()
        .collect()
}

/// Checks a bid of `bidder` against its lot's requirements, one outcome per
/// rule, with the reason. `offer` is none when the offer does not exist.
pub fn eligibility(
    lot: &Lot,
    bid: &LotBid,
    bidder: &str,
    offer: Option<&OfferFacts>,
) -> Vec<RuleOutcome> {
    let Some(offer) = offer else {
        return vec![outcome(
            "offer",
            false,
            format!("the offer {} does not exist", bid.offer_id),
        )];
    };
    let mut out = Vec::new();
    out.push(if offer.provider_id != bidder {
        outcome("offer", false, "the offer is not the bidder's own".into())
    } else if !offer.published {
        outcome("offer", false, "the offer is not published".into())
    } else if offer.category != lot.category {
        outcome(
            "offer",
            false,
            format!(
                "the offer is {} and the lot asks for {}",
                offer.category.as_str(),
                lot.category.as_str()
            ),
        )
    } else {
        outcome(
            "offer",
            true,
            "a published offer of the bidder, of the lot's kind".into(),
        )
    });
    for r in &lot.requirements {
        out.push(match r {
            Requirement::DataLocation { regions } => {
                let outside: Vec<&str> = offer
                    .regions
                    .iter()
                    .filter(|(name, _)| !regions.contains(name))
                    .map(|(name, _)| name.as_str())
                    .collect();
                if outside.is_empty() {
                    outcome(
                        r.name(),
                        true,
                        "every region of the offer is allowed".into(),
                    )
                } else {
                    outcome(
                        r.name(),
                        false,
                        format!(
                            "the offer stores data in {}, outside {}",
                            outside.join(", "),
                            regions.join(", ")
                        ),
                    )
                }
            }
            Requirement::Jurisdiction { allowed } => {
                let outside: Vec<String> = offer
                    .regions
                    .iter()
                    .filter(|(_, j)| !allowed.iter().any(|a| a.eq_ignore_ascii_case(j)))
                    .map(|(name, j)| format!("{name} ({j})"))
                    .collect();
                if outside.is_empty() {
                    outcome(
                        r.name(),
                        true,
                        format!("every region is under {}", allowed.join(" or ")),
                    )
                } else {
                    outcome(
                        r.name(),
                        false,
                        format!("{} not under {}", outside.join(", "), allowed.join(" or ")),
                    )
                }
            }
            Requirement::Certifications { required } => {
                let lacking = missing(required, &offer.certifications);
                if lacking.is_empty() {
                    outcome(r.name(), true, format!("holds {}", required.join(", ")))
                } else {
                    outcome(r.name(), false, format!("lacks {}", lacking.join(", ")))
                }
            }
            Requirement::MinAvailability { percent } => {
                let passed = offer.availability_percent >= *percent;
                outcome(
                    r.name(),
                    passed,
                    format!(
                        "{} % offered, {} % asked",
                        offer.availability_percent, percent
                    ),
                )
            }
            Requirement::MinCapacity { gb } => match offer.capacity_gb {
                None => outcome(r.name(), true, "no storage limit".into()),
                Some(have) => outcome(
                    r.name(),
                    have >= *gb,
                    format!("{have} GB offered, {gb} GB asked"),
                ),
            },
            Requirement::MaxPrice { monthly_eur } => {
                let price = bid.prices.monthly_total(&lot.usage_profile);
                outcome(
                    r.name(),
                    price <= *monthly_eur,
                    format!(
                        "{} € a month for the usage profile, ceiling {} €",
                        price.round_dp(2),
                        monthly_eur
                    ),
                )
            }
            Requirement::ReversibilityFormats { required } => {
                let lacking = missing(required, &offer.export_formats);
                if lacking.is_empty() {
                    outcome(
                        r.name(),
                        true,
                        format!("exports as {}", required.join(", ")),
                    )
                } else {
                    outcome(
                        r.name(),
                        false,
                        format!("does not export as {}", lacking.join(", ")),
                    )
                }
            }
        });
    }
    out
}

/// A bid as scoring sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub bid_id: String,
    /// The monthly price for the lot's usage profile.
    pub price: Decimal,
    /// The end of its upload.
    pub submitted_at: i64,
    /// The buyer's marks, by technical criterion.
    pub marks: BTreeMap<String, Decimal>,
}

/// A candidate's score, criterion by criterion, and its rank (1 is best).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Scored {
    pub bid_id: String,
    #[schema(value_type = String)]
    pub price: Decimal,
    /// Points per criterion, rounded to 2 decimals for display.
    #[schema(value_type = BTreeMap<String, String>)]
    pub points: BTreeMap<String, Decimal>,
    #[schema(value_type = String)]
    pub total: Decimal,
    pub rank: u32,
}

/// Whether every technical criterion has a mark within its scale for every
/// candidate; the reason otherwise.
pub fn marks_complete(criteria: &[Criterion], candidates: &[Candidate]) -> Result<(), String> {
    for c in candidates {
        for k in criteria
            .iter()
            .filter(|k| k.kind == CriterionKind::Technical)
        {
            match c.marks.get(&k.name) {
                None => {
                    return Err(format!("bid {} has no mark for {:?} yet", c.bid_id, k.name));
                }
                Some(m) if m.is_sign_negative() || *m > Decimal::from(k.scale()) => {
                    return Err(format!(
                        "bid {}: a mark for {:?} is between 0 and {}",
                        c.bid_id,
                        k.name,
                        k.scale()
                    ));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// Scores and ranks eligible candidates. Price: lowest price / price ×
/// weight (a price of zero takes the whole weight). Technical: mark / scale
/// × weight. Ties on the exact total go to the lower price, then to the bid
/// whose upload ended first, then to the smaller bid id.
pub fn rank(criteria: &[Criterion], candidates: &[Candidate]) -> Vec<Scored> {
    let lowest = candidates
        .iter()
        .map(|c| c.price)
        .min()
        .unwrap_or(Decimal::ZERO);
    let mut scored: Vec<(Scored, i64)> = candidates
        .iter()
        .map(|c| {
            let mut points = BTreeMap::new();
            let mut total = Decimal::ZERO;
            for k in criteria {
                let weight = Decimal::from(k.weight);
                let p = match k.kind {
                    CriterionKind::Price if c.price.is_zero() => weight,
                    CriterionKind::Price => lowest / c.price * weight,
                    CriterionKind::Technical => {
                        c.marks.get(&k.name).copied().unwrap_or_default() / Decimal::from(k.scale())
                            * weight
                    }
                };
                total += p;
                points.insert(k.name.clone(), p.round_dp(2));
            }
            (
                Scored {
                    bid_id: c.bid_id.clone(),
                    price: c.price,
                    points,
                    total,
                    rank: 0,
                },
                c.submitted_at,
            )
        })
        .collect();
    scored.sort_by(|(a, at), (b, bt)| {
        b.total
            .cmp(&a.total)
            .then(a.price.cmp(&b.price))
            .then(at.cmp(bt))
            .then(a.bid_id.cmp(&b.bid_id))
    });
    scored
        .into_iter()
        .enumerate()
        .map(|(i, (mut s, _))| {
            s.rank = i as u32 + 1;
            s.total = s.total.round_dp(2);
            s
        })
        .collect()
}

/// The end of the standstill period that follows an award.
pub fn standstill_end(awarded_at: i64, days: u32) -> i64 {
    awarded_at + i64::from(days) * DAY_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    fn spec(now: i64) -> TenderSpec {
        TenderSpec {
            title: "Stockage souverain".into(),
            description: "Stockage objet pour les archives.".into(),
            cpv: "72317000-0".into(),
            estimated_value: d("120000"),
            place: Place {
                code: "75".into(),
                kind: PlaceKind::Department,
            },
            duration_months: 36,
            price_form: PriceForm::Unit,
            ccag: Ccag::InformationTechnology,
            procedure: Procedure::Open,
            deadline_ms: now + 40 * DAY_MS,
            questions_until_ms: None,
            lots: vec![Lot {
                title: "Archives".into(),
                description: String::new(),
                category: Category::Storage,
                usage_profile: UsageProfile::reference(),
                requirements: vec![
                    Requirement::Jurisdiction {
                        allowed: vec!["FR".into()],
                    },
                    Requirement::Certifications {
                        required: vec!["SecNumCloud".into()],
                    },
                    Requirement::MaxPrice {
                        monthly_eur: d("100"),
                    },
                ],
            }],
            criteria: vec![
                Criterion {
                    name: "prix".into(),
                    kind: CriterionKind::Price,
                    weight: 60,
                    scale_max: None,
                    description: String::new(),
                },
                Criterion {
                    name: "sécurité".into(),
                    kind: CriterionKind::Technical,
                    weight: 40,
                    scale_max: Some(20),
                    description: String::new(),
                },
            ],
        }
    }

    #[test]
    fn weights_must_sum_to_100_and_the_deadline_be_ahead() {
        let now = 1_000 * DAY_MS;
        assert!(spec(now).validated(now).is_ok());
        let mut s = spec(now);
        s.criteria[1].weight = 30;
        let e = s.validated(now).expect_err("90");
        assert!(e.to_string().contains("sum to 90"), "{e}");
        let mut s = spec(now);
        s.deadline_ms = now - 1;
        assert!(s.validated(now).is_err());
        let mut s = spec(now);
        s.criteria[0].kind = CriterionKind::Technical;
        assert!(s.validated(now).is_err(), "no price criterion");
        let mut s = spec(now);
        s.cpv = "7231700".into();
        assert!(s.validated(now).is_err());
    }

    #[test]
    fn a_short_deadline_is_warned_of_with_its_rule() {
        let now = 0;
        let mut s = spec(now);
        assert!(s.warnings(now).is_empty());
        s.deadline_ms = 20 * DAY_MS;
        let w = s.warnings(now);
        assert_eq!(w.len(), 1);
        assert!(w[0].message.contains("art. 27"), "{}", w[0].message);
        s.procedure = Procedure::Adapted;
        assert!(s.warnings(now).is_empty(), "20 days is enough for MAPA");
    }

    fn offer() -> OfferFacts {
        OfferFacts {
            provider_id: "p".into(),
            published: true,
            category: Category::Storage,
            regions: vec![("fr-par".into(), "FR".into())],
            certifications: vec!["SecNumCloud".into()],
            availability_percent: d("99.9"),
            capacity_gb: None,
            export_formats: vec!["S3".into()],
        }
    }

    fn bid(fee: &str) -> LotBid {
        LotBid {
            lot: 1,
            offer_id: "o".into(),
            prices: BidPrices {
                monthly_fee: Price::new(d(fee), "fee").expect("price"),
                per_gb_month: Price::ZERO,
                per_1k_class_a: Price::ZERO,
                per_1k_class_b: Price::ZERO,
                per_gb_egress: Price::ZERO,
            },
            answers: BTreeMap::new(),
        }
    }

    #[test]
    fn eligibility_says_which_rule_failed_and_why() {
        let s = spec(0);
        let lot = &s.lots[0];
        let ok = eligibility(lot, &bid("50"), "p", Some(&offer()));
        assert!(ok.iter().all(|o| o.passed), "{ok:?}");
        let mut foreign = offer();
        foreign.regions.push(("us-east".into(), "US".into()));
        foreign.certifications.clear();
        let out = eligibility(lot, &bid("150"), "p", Some(&foreign));
        let failed: Vec<(&str, &str)> = out
            .iter()
            .filter(|o| !o.passed)
            .map(|o| (o.rule.as_str(), o.explanation.as_str()))
            .collect();
        assert_eq!(
            failed,
            vec![
                ("jurisdiction", "us-east (US) not under FR"),
                ("certifications", "lacks SecNumCloud"),
                (
                    "max_price",
                    "150 € a month for the usage profile, ceiling 100 €"
                ),
            ]
        );
        let stolen = eligibility(lot, &bid("50"), "someone else", Some(&offer()));
        assert!(!stolen[0].passed);
    }

    #[test]
    fn price_and_marks_make_the_ranking_and_ties_go_to_the_cheaper_then_earlier() {
        let s = spec(0);
        let c = |id: &str, price: &str, mark: &str, at: i64| Candidate {
            bid_id: id.into(),
            price: d(price),
            submitted_at: at,
            marks: BTreeMap::from([("sécurité".to_owned(), d(mark))]),
        };
        // a: 60 + 10/20×40 = 80. b: 50/100×60 + 20/20×40 = 70. c: as a,
        // uploaded later.
        let ranked = rank(
            &s.criteria,
            &[
                c("b", "100", "20", 1),
                c("c", "50", "10", 3),
                c("a", "50", "10", 2),
            ],
        );
        let order: Vec<(&str, String, u32)> = ranked
            .iter()
            .map(|r| (r.bid_id.as_str(), r.total.to_string(), r.rank))
            .collect();
        assert_eq!(
            order,
            vec![
                ("a", "80.00".to_owned(), 1),
                ("c", "80.00".to_owned(), 2),
                ("b", "70.00".to_owned(), 3)
            ]
        );
        assert_eq!(ranked[2].points["prix"], d("30"));
        // On an equal total, the lower price wins, before the earlier upload:
        // with 50/50 on a scale of 10, x: 25 + 50 = 75, y: 50 + 25 = 75.
        let mut halves = s.criteria.clone();
        halves[0].weight = 50;
        halves[1].weight = 50;
        halves[1].scale_max = Some(10);
        let ranked = rank(&halves, &[c("x", "100", "10", 1), c("y", "50", "5", 2)]);
        assert_eq!(ranked[0].total, ranked[1].total);
        assert_eq!(ranked[0].bid_id, "y");
        assert!(marks_complete(&s.criteria, &[c("z", "1", "21", 0)]).is_err());
    }
}
