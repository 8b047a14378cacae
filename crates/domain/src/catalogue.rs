//! The single window and the open directory: public profiles of providers and
//! publishers, their services and offers, prices in euros, the publication
//! workflow, subscriptions, and the rule that orders search results fairly.
//!
//! Money is `rust_decimal::Decimal`, never a float: unit prices carry up to six
//! decimals and only invoice lines are rounded to the cent. A GB is 10⁹ bytes.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::DomainError;
use crate::legal::Siren;

/// Bytes in a GB, everywhere in Nuage (prices, usage, invoices).
pub const BYTES_PER_GB: i64 = 1_000_000_000;

/// The most decimals a unit price carries.
pub const PRICE_DECIMALS: u32 = 6;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident, $field:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn parse(value: &str) -> Result<Self, DomainError> {
                let wanted = value.trim();
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(wanted))
                    .ok_or_else(|| {
                        let known: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                        DomainError::invalid(
                            $field,
                            format!("{wanted:?} is not one of {}", known.join(", ")),
                        )
                    })
            }

            pub fn as_str(&self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// What a service or an offer is for.
    Category, "category" {
        Storage = "storage",
        Hosting = "hosting",
        Compute = "compute",
        Mail = "mail",
        Drive = "drive",
        Office = "office",
        Chat = "chat",
        Erp = "erp",
        Payroll = "payroll",
        Banking = "banking",
        Health = "health",
        Education = "education",
        Other = "other",
    }
);

string_enum!(
    /// Where an application runs.
    Deployment, "deployment" {
        /// On this Nuage platform.
        Nuage = "nuage",
        /// On the provider's own cloud.
        ProviderCloud = "provider_cloud",
        OnPremises = "on_premises",
    }
);

string_enum!(
    /// Where a profile, a service or an offer is in its publication.
    Publication, "state" {
        Draft = "draft",
        InReview = "in_review",
        Published = "published",
        Withdrawn = "withdrawn",
    }
);

string_enum!(
    /// What a listing in the directory is.
    ListingKind, "kind" {
        Organisation = "organisation",
        Service = "service",
        Offer = "offer",
    }
);

string_enum!(
    /// The state of a subscription born of an order.
    SubscriptionState, "state" {
        /// Ordered, waiting for the provider.
        Pending = "pending",
        Active = "active",
        Suspended = "suspended",
        Cancelled = "cancelled",
    }
);

impl Publication {
    /// Whether the owner may move a sheet from `self` to `to`: submit a
    /// draft, take it back from review, withdraw. Editing makes a draft.
    pub fn owner_may(self, to: Publication) -> bool {
        use Publication::*;
        matches!((self, to), (Draft, InReview) | (InReview, Draft))
            || (to == Withdrawn && self != Withdrawn)
    }

    /// Whether an operator reviewing may move a sheet from `self` to `to`:
    /// publish it, send it back to draft, or withdraw it.
    pub fn reviewer_may(self, to: Publication) -> bool {
        use Publication::*;
        matches!((self, to), (InReview, Published) | (InReview, Draft))
            || (to == Withdrawn && self != Withdrawn)
    }
}

impl SubscriptionState {
    /// Whether a subscription may go from `self` to `to`.
    pub fn may_become(self, to: SubscriptionState) -> bool {
        use SubscriptionState::*;
        matches!(
            (self, to),
            (Pending, Active)
                | (Pending, Cancelled)
                | (Active, Suspended)
                | (Active, Cancelled)
                | (Suspended, Active)
                | (Suspended, Cancelled)
        )
    }
}

/// An amount of euros excluding VAT: not negative, at most six decimals, at
/// most a billion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(try_from = "Decimal", into = "Decimal")]
pub struct Price(Decimal);

impl Price {
    pub const ZERO: Price = Price(Decimal::ZERO);

    pub fn new(value: Decimal, field: &'static str) -> Result<Self, DomainError> {
        if value.is_sign_negative() && !value.is_zero() {
            return Err(DomainError::invalid(field, "a price cannot be negative"));
        }
        if value.normalize().scale() > PRICE_DECIMALS {
            return Err(DomainError::invalid(
                field,
                format!("a price has at most {PRICE_DECIMALS} decimals"),
            ));
        }
        if value > Decimal::from(1_000_000_000) {
            return Err(DomainError::invalid(
                field,
                "a price is at most 1,000,000,000 euros",
            ));
        }
        Ok(Self(value.normalize()))
    }

    pub fn parse(value: &str, field: &'static str) -> Result<Self, DomainError> {
        let trimmed = value.trim();
        let decimal = trimmed.parse::<Decimal>().map_err(|_| {
            DomainError::invalid(field, format!("{trimmed:?} is not an amount in euros"))
        })?;
        Self::new(decimal, field)
    }

    pub fn amount(&self) -> Decimal {
        self.0
    }
}

impl TryFrom<Decimal> for Price {
    type Error = DomainError;
    fn try_from(value: Decimal) -> Result<Self, DomainError> {
        Self::new(value, "price")
    }
}

impl From<Price> for Decimal {
    fn from(p: Price) -> Decimal {
        p.0
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A storage price that applies from a number of GB on (graduated tiers:
/// each GB is priced by the tier it falls in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// The tier applies to the GB beyond this many.
    pub from_gb: u64,
    #[schema(value_type = String, example = "0.004")]
    pub per_gb_month: Price,
}

/// How an offer is priced, in euros excluding VAT.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceModel {
    #[schema(value_type = String, example = "1.5")]
    #[serde(default)]
    pub monthly_fee: Price,
    /// GB included in the monthly fee before per-GB prices apply.
    #[serde(default)]
    pub included_gb: u64,
    #[schema(value_type = String, example = "0.005")]
    #[serde(default)]
    pub per_gb_month: Price,
    /// Per 1,000 class-A requests (PUT, COPY, POST, LIST).
    #[schema(value_type = String)]
    #[serde(default)]
    pub per_1k_class_a: Price,
    /// Per 1,000 class-B requests (GET, HEAD).
    #[schema(value_type = String)]
    #[serde(default)]
    pub per_1k_class_b: Price,
    #[schema(value_type = String)]
    #[serde(default)]
    pub per_gb_egress: Price,
    /// Storage tiers replacing `per_gb_month` from their threshold on.
    #[serde(default)]
    pub tiers: Vec<Tier>,
    /// Months the buyer commits to; 0 for none.
    #[serde(default)]
    pub commitment_months: u32,
}

/// A usage over one month, to price an offer for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageProfile {
    /// Average GB stored over the month.
    #[schema(value_type = String, example = "100")]
    pub stored_gb: Decimal,
    pub class_a_requests: u64,
    pub class_b_requests: u64,
    #[schema(value_type = String, example = "10")]
    pub egress_gb: Decimal,
}

impl UsageProfile {
    /// The profile by which listings are compared in the price facet: 100 GB
    /// stored, 100,000 class-A and 1,000,000 class-B requests, 10 GB out.
    pub fn reference() -> Self {
        Self {
            stored_gb: Decimal::from(100),
            class_a_requests: 100_000,
            class_b_requests: 1_000_000,
            egress_gb: Decimal::from(10),
        }
    }

    pub fn validate(&self) -> Result<(), DomainError> {
        if self.stored_gb.is_sign_negative() || self.egress_gb.is_sign_negative() {
            return Err(DomainError::invalid("usage", "a usage cannot be negative"));
        }
        if self.stored_gb > Decimal::from(1_000_000_000)
            || self.egress_gb > Decimal::from(1_000_000_000)
        {
            return Err(DomainError::invalid("usage", "a usage is at most 10⁹ GB"));
        }
        Ok(())
    }
}

impl PriceModel {
    pub fn validate(&self) -> Result<(), DomainError> {
        let mut last = None;
        for tier in &self.tiers {
            if last.is_some_and(|l| tier.from_gb <= l) {
                return Err(DomainError::invalid(
                    "tiers",
                    "tiers must be in increasing order of from_gb",
                ));
            }
            last = Some(tier.from_gb);
        }
        if self.tiers.len() > 20 {
            return Err(DomainError::invalid("tiers", "at most 20 tiers"));
        }
        if self.commitment_months > 120 {
            return Err(DomainError::invalid(
                "commitment_months",
                "a commitment is at most 120 months",
            ));
        }
        Ok(())
    }

    /// The price of a month of `usage`, unrounded.
    pub fn monthly_cost(&self, usage: &UsageProfile) -> Decimal {
        let thousand = Decimal::from(1000);
        self.monthly_fee.amount()
            + self.storage_cost(usage.stored_gb)
            + Decimal::from(usage.class_a_requests) / thousand * self.per_1k_class_a.amount()
            + Decimal::from(usage.class_b_requests) / thousand * self.per_1k_class_b.amount()
            + usage.egress_gb * self.per_gb_egress.amount()
    }

    /// The price of storing `gb` for a month: each GB beyond those
    /// included, at the price of the tier its rank falls in (tiers count
    /// from the first GB stored).
    pub fn storage_cost(&self, gb: Decimal) -> Decimal {
        self.storage_bands(gb)
            .iter()
            .map(|b| b.gb * b.per_gb_month)
            .sum()
    }

    /// How `gb` of storage splits over the price bands: `[0, t1)` at the
    /// base price, `[t1, t2)` at the first tier's, and so on, each starting
    /// above the GB included. Bands with no GB in them are left out.
    pub fn storage_bands(&self, gb: Decimal) -> Vec<StorageBand> {
        let included = Decimal::from(self.included_gb);
        let mut bands = vec![(0, self.per_gb_month.amount())];
        bands.extend(
            self.tiers
                .iter()
                .map(|t| (t.from_gb, t.per_gb_month.amount())),
        );
        let mut out = Vec::new();
        for (i, (from, price)) in bands.iter().enumerate() {
            let lower = Decimal::from(*from).max(included);
            let upper = bands
                .get(i + 1)
                .map_or(gb, |(next, _)| gb.min(Decimal::from(*next)));
            if upper > lower {
                out.push(StorageBand {
                    from_gb: *from,
                    gb: upper - lower,
                    per_gb_month: *price,
                });
            }
        }
        out
    }
}

/// Part of a storage amount priced at one band's price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageBand {
    /// The band's first GB.
    pub from_gb: u64,
    pub gb: Decimal,
    pub per_gb_month: Decimal,
}

/// Rounds an amount to the cent, half away from zero: for invoice lines and
/// displayed totals only.
pub fn to_cents(amount: Decimal) -> Decimal {
    let mut cents =
        amount.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    cents.rescale(2);
    cents
}

/// A calendar date, `YYYY-MM-DD`.
pub fn parse_date(value: &str, field: &'static str) -> Result<time::Date, DomainError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(value.trim(), &format)
        .map_err(|_| DomainError::invalid(field, format!("{value:?} is not a date (YYYY-MM-DD)")))
}

/// A certification or qualification held for a scope, with its dates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Certification {
    /// `SecNumCloud`, `HDS`, `ISO 27001`, or another scheme's name.
    pub scheme: String,
    /// Who issued it (e.g. ANSSI, or the certification body).
    pub issuer: String,
    /// What it covers.
    pub scope: String,
    /// `YYYY-MM-DD`.
    pub valid_from: String,
    /// `YYYY-MM-DD`.
    pub valid_until: String,
}

impl Certification {
    pub fn validate(&self) -> Result<(), DomainError> {
        short_text(&self.scheme, "certification.scheme", 80, true)?;
        short_text(&self.issuer, "certification.issuer", 200, true)?;
        short_text(&self.scope, "certification.scope", 500, true)?;
        let from = parse_date(&self.valid_from, "certification.valid_from")?;
        let until = parse_date(&self.valid_until, "certification.valid_until")?;
        if until < from {
            return Err(DomainError::invalid(
                "certification.valid_until",
                "a certification cannot end before it starts",
            ));
        }
        Ok(())
    }

    /// Whether it is valid on `day` (`YYYY-MM-DD`, compared as text, which
    /// orders ISO dates).
    pub fn valid_on(&self, day: &str) -> bool {
        self.valid_from.as_str() <= day && day <= self.valid_until.as_str()
    }

    /// The scheme as a filter value: its name without spaces or case.
    pub fn key(&self) -> String {
        facet_key(&self.scheme)
    }
}

/// A facet value as stored and filtered: lower case, alphanumerics only.
pub fn facet_key(value: &str) -> String {
    value
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Checks a free text: trimmed length within `max`, no control characters
/// but line breaks.
pub fn short_text(
    value: &str,
    field: &'static str,
    max: usize,
    required: bool,
) -> Result<(), DomainError> {
    let trimmed = value.trim();
    if required && trimmed.is_empty() {
        return Err(DomainError::invalid(field, "this field is required"));
    }
    if trimmed.chars().count() > max {
        return Err(DomainError::invalid(
            field,
            format!("at most {max} characters"),
        ));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(DomainError::invalid(
            field,
            "control characters are not allowed",
        ));
    }
    Ok(())
}

/// A country (ISO 3166-1 alpha-2) or `EU`, as a jurisdiction or a seat.
pub fn parse_jurisdiction(value: &str, field: &'static str) -> Result<String, DomainError> {
    let upper = value.trim().to_ascii_uppercase();
    if upper.len() == 2 && upper.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(upper)
    } else {
        Err(DomainError::invalid(
            field,
            format!("{value:?} is not a country code (ISO 3166-1, e.g. FR) or EU"),
        ))
    }
}

/// The EU member states, for the share of capital held in the EU.
pub const EU_MEMBERS: [&str; 27] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// Checks a web address: http(s), at most 300 characters, no spaces.
pub fn check_url(value: &str, field: &'static str) -> Result<(), DomainError> {
    let v = value.trim();
    let scheme_ok = v.starts_with("https://") || v.starts_with("http://");
    if !scheme_ok || v.len() > 300 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(DomainError::invalid(
            field,
            format!("{value:?} is not a web address (http:// or https://)"),
        ));
    }
    Ok(())
}

/// Who controls an organisation's capital, as SecNumCloud §19.6 asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapitalControl {
    /// Share of the capital and voting rights held from inside the EU, in %.
    #[schema(value_type = String, example = "100")]
    pub eu_share_percent: Decimal,
    /// Who holds control, in words.
    #[serde(default)]
    pub controlled_by: String,
}

/// Whether extra-EU laws (e.g. the CLOUD Act, FISA 702) can reach the data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtraEuExposure {
    pub exposed: bool,
    /// The organisation's own statement.
    #[serde(default)]
    pub statement: String,
}

/// An organisation's public profile in the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub legal_name: String,
    /// 9 digits with a valid key.
    pub siren: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub headquarters_country: String,
    #[serde(default)]
    pub description: String,
    pub capital: CapitalControl,
    pub extra_eu_exposure: ExtraEuExposure,
    #[serde(default)]
    pub certifications: Vec<Certification>,
    pub contact_email: String,
    pub website: Option<String>,
}

impl Profile {
    /// Checks every field; normalises the SIREN and the country code.
    pub fn validated(mut self) -> Result<Self, DomainError> {
        short_text(&self.legal_name, "legal_name", 200, true)?;
        self.legal_name = self.legal_name.trim().to_owned();
        self.siren = match self.siren.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => Some(Siren::parse(s)?.as_str().to_owned()),
        };
        self.headquarters_country =
            parse_jurisdiction(&self.headquarters_country, "headquarters_country")?;
        short_text(&self.description, "description", 5000, false)?;
        let share = self.capital.eu_share_percent;
        if share.is_sign_negative() || share > Decimal::from(100) {
            return Err(DomainError::invalid(
                "capital.eu_share_percent",
                "a share is between 0 and 100",
            ));
        }
        short_text(
            &self.capital.controlled_by,
            "capital.controlled_by",
            500,
            false,
        )?;
        short_text(
            &self.extra_eu_exposure.statement,
            "extra_eu_exposure.statement",
            2000,
            false,
        )?;
        check_certifications(&self.certifications)?;
        crate::user::Email::parse(&self.contact_email)?;
        if let Some(w) = self.website.as_deref().filter(|w| !w.trim().is_empty()) {
            check_url(w, "website")?;
        } else {
            self.website = None;
        }
        Ok(self)
    }
}

fn check_certifications(certifications: &[Certification]) -> Result<(), DomainError> {
    if certifications.len() > 30 {
        return Err(DomainError::invalid("certifications", "at most 30"));
    }
    certifications.iter().try_for_each(Certification::validate)
}

/// Free software licences the directory recognises by SPDX id.
pub const FREE_LICENCES: &[&str] = &[
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "Apache-2.0",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "CECILL-2.1",
    "CECILL-B",
    "CECILL-C",
    "EUPL-1.2",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "MIT",
    "MPL-2.0",
];

/// A licence: an SPDX id, or `proprietary`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Licence(String);

impl Licence {
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let v = value.trim();
        if v.eq_ignore_ascii_case("proprietary") {
            return Ok(Self("proprietary".into()));
        }
        FREE_LICENCES
            .iter()
            .find(|l| l.eq_ignore_ascii_case(v))
            .map(|l| Self((*l).to_owned()))
            .or_else(|| {
                (v.starts_with("LicenseRef-")
                    && v.len() <= 80
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
                .then(|| Self(v.to_owned()))
            })
            .ok_or_else(|| {
                DomainError::invalid(
                    "licence",
                    format!(
                        "{v:?} is not a known SPDX id ({}), a LicenseRef-…, or proprietary",
                        FREE_LICENCES.join(", ")
                    ),
                )
            })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it is a free software licence.
    pub fn is_free(&self) -> bool {
        FREE_LICENCES.contains(&self.0.as_str())
    }
}

/// An application or service in the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceSheet {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub category: Category,
    /// An SPDX id (e.g. `AGPL-3.0-or-later`) or `proprietary`.
    pub licence: String,
    pub deployments: Vec<Deployment>,
    /// Where the data is when the service is run for its users (countries).
    #[serde(default)]
    pub data_locations: Vec<String>,
    pub website: Option<String>,
}

impl ServiceSheet {
    pub fn validated(mut self) -> Result<Self, DomainError> {
        short_text(&self.name, "name", 200, true)?;
        self.name = self.name.trim().to_owned();
        short_text(&self.description, "description", 5000, false)?;
        self.licence = Licence::parse(&self.licence)?.as_str().to_owned();
        if self.deployments.is_empty() {
            return Err(DomainError::invalid(
                "deployments",
                "say at least one way it is deployed",
            ));
        }
        self.deployments.sort();
        self.deployments.dedup();
        self.data_locations = self
            .data_locations
            .iter()
            .map(|l| parse_jurisdiction(l, "data_locations"))
            .collect::<Result<_, _>>()?;
        self.data_locations.sort();
        self.data_locations.dedup();
        if let Some(w) = self.website.as_deref().filter(|w| !w.trim().is_empty()) {
            check_url(w, "website")?;
        } else {
            self.website = None;
        }
        Ok(self)
    }
}

/// Availability and recovery promises.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    /// Monthly availability, in % (e.g. 99.9).
    #[schema(value_type = String, example = "99.9")]
    pub availability_percent: Decimal,
    /// E.g. "24/7" or "Mon–Fri 9:00–18:00 CET".
    pub support_hours: String,
    /// Recovery time objective, in hours.
    pub rto_hours: u32,
    /// Recovery point objective, in hours.
    pub rpo_hours: u32,
}

/// How a buyer leaves with their data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reversibility {
    /// E.g. "S3", "tar", "CSV".
    pub export_formats: Vec<String>,
    pub notice_days: u32,
}

/// An offer of a provider, as it is edited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferSheet {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub category: Category,
    /// Names of regions the operator declared; each says where the data is
    /// and under which jurisdiction.
    pub regions: Vec<String>,
    /// Schemes of the provider's certifications that apply to this offer.
    #[serde(default)]
    pub certifications: Vec<String>,
    /// The most storage the offer provides, in GB; none for no limit.
    pub capacity_gb: Option<u64>,
    pub sla: Sla,
    pub reversibility: Reversibility,
    pub price: PriceModel,
}

impl OfferSheet {
    /// Checks every field against the regions the operator declared.
    pub fn validated(mut self, declared_regions: &[String]) -> Result<Self, DomainError> {
        short_text(&self.name, "name", 200, true)?;
        self.name = self.name.trim().to_owned();
        short_text(&self.description, "description", 5000, false)?;
        if self.regions.is_empty() || self.regions.len() > 20 {
            return Err(DomainError::invalid("regions", "between 1 and 20 regions"));
        }
        for region in &mut self.regions {
            *region = region.trim().to_owned();
            if !declared_regions.iter().any(|d| d == region) {
                return Err(DomainError::invalid(
                    "regions",
                    format!(
                        "{region:?} is not a region the operator declared ({})",
                        declared_regions.join(", ")
                    ),
                ));
            }
        }
        self.regions.sort();
        self.regions.dedup();
        for c in &self.certifications {
            short_text(c, "certifications", 80, true)?;
        }
        let sla = &self.sla;
        if sla.availability_percent.is_sign_negative()
            || sla.availability_percent > Decimal::from(100)
        {
            return Err(DomainError::invalid(
                "sla.availability_percent",
                "an availability is between 0 and 100",
            ));
        }
        short_text(&sla.support_hours, "sla.support_hours", 200, true)?;
        if self.reversibility.export_formats.is_empty() {
            return Err(DomainError::invalid(
                "reversibility.export_formats",
                "name at least one export format",
            ));
        }
        for f in &self.reversibility.export_formats {
            short_text(f, "reversibility.export_formats", 80, true)?;
        }
        self.price.validate()?;
        Ok(self)
    }
}

/// The seed that orders results of equal relevance for a query: a hash of
/// the normalised query, 64 bits.
///
/// Results of equal relevance are ordered by `search_key XOR seed`, where
/// each listing's `search_key` is a random number drawn when it is first
/// published. The order is the same every time a query is asked, differs
/// from one query to another, and owes nothing to who the provider is or
/// when it joined. The seed also places the sample a large search ranks.
pub fn query_seed(query: &str) -> i64 {
    let normalised: String = query
        .split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ");
    let digest = Sha256::digest(normalised.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// Text as the full-text index holds it: lower case, without diacritics, so
/// that "hebergement" finds "Hébergement" on SQLite and PostgreSQL alike.
pub fn fold(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    text.nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The words of a full-text query, folded and stripped of operators: each
/// word becomes a prefix match, all must be present. `None` for no words.
pub fn search_terms(query: &str) -> Option<Vec<String>> {
    let words: Vec<String> = fold(query)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(12)
        .map(str::to_owned)
        .collect();
    (!words.is_empty()).then_some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(s: &str) -> Price {
        Price::parse(s, "price").expect("test value")
    }

    #[test]
    fn prices_refuse_negatives_and_seven_decimals() {
        assert!(Price::parse("-0.01", "p").is_err());
        assert!(Price::parse("0.0000001", "p").is_err());
        assert_eq!(price("0.000001").to_string(), "0.000001");
        assert_eq!(price("1.500000").to_string(), "1.5");
        assert!(Price::parse("abc", "p").is_err());
        assert!(serde_json::from_str::<Price>("\"-1\"").is_err());
    }

    #[test]
    fn monthly_cost_applies_included_gb_and_graduated_tiers() {
        let model = PriceModel {
            monthly_fee: price("2"),
            included_gb: 10,
            per_gb_month: price("0.01"),
            tiers: vec![Tier {
                from_gb: 100,
                per_gb_month: price("0.005"),
            }],
            per_1k_class_a: price("0.005"),
            per_1k_class_b: price("0.0004"),
            per_gb_egress: price("0.01"),
            commitment_months: 0,
        };
        let usage = UsageProfile {
            stored_gb: Decimal::from(210),
            class_a_requests: 2000,
            class_b_requests: 10_000,
            egress_gb: Decimal::from(5),
        };
        // 10 GB included, 90 at 0.01, then 110 from the 100th GB at 0.005.
        assert_eq!(model.storage_cost(Decimal::from(210)), Decimal::new(145, 2));
        assert_eq!(model.storage_cost(Decimal::from(5)), Decimal::ZERO);
        // 2 + 1.45 + 0.01 + 0.004 + 0.05
        assert_eq!(model.monthly_cost(&usage), Decimal::new(3514, 3));
        assert_eq!(to_cents(Decimal::new(3565, 3)), Decimal::new(357, 2));
        assert_eq!(to_cents(Decimal::new(15, 1)).to_string(), "1.50");
    }

    #[test]
    fn tiers_must_increase() {
        let model = PriceModel {
            tiers: vec![
                Tier {
                    from_gb: 10,
                    per_gb_month: Price::ZERO,
                },
                Tier {
                    from_gb: 10,
                    per_gb_month: Price::ZERO,
                },
            ],
            ..PriceModel::default()
        };
        assert!(model.validate().is_err());
    }

    #[test]
    fn publication_moves() {
        use Publication::*;
        assert!(Draft.owner_may(InReview));
        assert!(!Draft.owner_may(Published));
        assert!(InReview.reviewer_may(Published));
        assert!(!Draft.reviewer_may(Published));
        assert!(!Withdrawn.owner_may(Published));
    }

    #[test]
    fn subscriptions_never_leave_cancelled() {
        for to in SubscriptionState::ALL {
            assert!(!SubscriptionState::Cancelled.may_become(*to));
        }
        assert!(SubscriptionState::Pending.may_become(SubscriptionState::Active));
    }

    #[test]
    fn seeds_are_stable_and_differ_between_queries() {
        assert_eq!(query_seed("Stockage  objet"), query_seed("stockage objet"));
        assert_ne!(query_seed("stockage"), query_seed("hébergement"));
    }

    #[test]
    fn search_terms_drop_operators() {
        assert_eq!(
            search_terms("\"S3\" OR stock*").expect("test value"),
            vec!["s3", "or", "stock"]
        );
        assert!(search_terms(" *\"( ").is_none());
        assert_eq!(
            search_terms("Hébergement").expect("test value"),
            vec!["hebergement"]
        );
    }

    #[test]
    fn licences_are_spdx_or_proprietary() {
        assert!(
            Licence::parse("agpl-3.0-or-later")
                .expect("test value")
                .is_free()
        );
        assert!(!Licence::parse("Proprietary").expect("test value").is_free());
        assert!(Licence::parse("LicenseRef-Acme-1").is_ok());
        assert!(Licence::parse("GPL").is_err());
    }

    #[test]
    fn profiles_check_siren_and_share() {
        let profile = Profile {
            legal_name: "Exemple SAS".into(),
            siren: Some("732 829 320".into()),
            headquarters_country: "fr".into(),
            description: String::new(),
            capital: CapitalControl {
                eu_share_percent: Decimal::from(100),
                controlled_by: String::new(),
            },
            extra_eu_exposure: ExtraEuExposure {
                exposed: false,
                statement: String::new(),
            },
            certifications: vec![],
            contact_email: "contact@example.org".into(),
            website: None,
        };
        let ok = profile.clone().validated().expect("test value");
        assert_eq!(ok.siren.as_deref(), Some("732829320"));
        assert_eq!(ok.headquarters_country, "FR");
        let bad_siren = Profile {
            siren: Some("732829321".into()),
            ..profile.clone()
        };
        assert!(bad_siren.validated().is_err());
        let bad_share = Profile {
            capital: CapitalControl {
                eu_share_percent: Decimal::from(101),
                controlled_by: String::new(),
            },
            ..profile
        };
        assert!(bad_share.validated().is_err());
    }
}
