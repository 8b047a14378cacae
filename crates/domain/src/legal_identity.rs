//! What an invoice must say of its parties beyond their name, kind, SIRET
//! and VAT number, and what each kind of party must have filled in before
//! an invoice naming it is issued: CGI annexe II art. 242 nonies A, Code de
//! commerce L441-9 and R123-237, and what the French e-invoicing reform
//! adds (both parties' SIREN, their addresses).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::DomainError;
use crate::legal::{Siret, is_eu_country, parse_country};
use crate::org::OrgKind;

/// The longest text a field takes.
const MAX_TEXT: usize = 200;

/// A postal address, as an invoice prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostalAddress {
    /// Number and street.
    pub line1: String,
    /// Building, floor, post box…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub postcode: String,
    pub city: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

/// What a public body's invoices need on Chorus Pro: its service code and
/// engagement number, when its Chorus Pro structure requires them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChorusPro {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engagement_number: Option<String>,
    /// Its structure requires a service code on every invoice.
    #[serde(default)]
    pub requires_service_code: bool,
    /// Its structure requires an engagement number on every invoice.
    #[serde(default)]
    pub requires_engagement_number: bool,
}

/// An organisation's legal identity for invoices.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LegalIdentity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<PostalAddress>,
    /// The legal form, e.g. `SAS`, `SARL`, `SA`, `EPIC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_form: Option<String>,
    /// Share capital, in euros.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub share_capital: Option<Decimal>,
    /// The trade register entry, e.g. `RCS Paris`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcs: Option<String>,
    /// For public bodies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chorus_pro: Option<ChorusPro>,
    /// The seller opted to pay VAT on debits (« option pour le paiement de
    /// la taxe d'après les débits »): its invoices say so.
    #[serde(default)]
    pub vat_on_debits: bool,
}

fn text(field: &'static str, value: &str) -> Result<Option<String>, DomainError> {
    let value = value.trim();
    if value.chars().count() > MAX_TEXT || value.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            format!("at most {MAX_TEXT} characters, on one line"),
        ));
    }
    Ok((!value.is_empty()).then(|| value.to_owned()))
}

fn opt_text(field: &'static str, value: Option<&str>) -> Result<Option<String>, DomainError> {
    value.map_or(Ok(None), |v| text(field, v))
}

impl PostalAddress {
    fn checked(&self) -> Result<Self, DomainError> {
        let required = |field: &'static str, value: &str| {
            text(field, value)?.ok_or_else(|| DomainError::invalid(field, "is required"))
        };
        let country = parse_country(&self.country)?;
        let postcode = required("address.postcode", &self.postcode)?;
        if country == "FR" && !(postcode.len() == 5 && postcode.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(DomainError::invalid(
                "address.postcode",
                format!("{postcode:?} is not a French postcode (five digits)"),
            ));
        }
        Ok(Self {
            line1: required("address.line1", &self.line1)?,
            line2: opt_text("address.line2", self.line2.as_deref())?,
            postcode,
            city: required("address.city", &self.city)?,
            country,
        })
    }

    /// The address on one line.
    pub fn one_line(&self) -> String {
        let mut parts = vec![self.line1.clone()];
        parts.extend(self.line2.clone());
        parts.push(format!("{} {}", self.postcode, self.city));
        parts.push(self.country.clone());
        parts.join(", ")
    }
}

impl LegalIdentity {
    /// The identity as it is kept: texts trimmed (empty ones dropped),
    /// the address and amounts checked.
    pub fn checked(&self) -> Result<Self, DomainError> {
        if let Some(capital) = self.share_capital
            && (capital.is_sign_negative() || capital.scale() > 2)
        {
            return Err(DomainError::invalid(
                "share_capital",
                "an amount in euros, at least 0, in cents at the most",
            ));
        }
        let chorus_pro = match &self.chorus_pro {
            Some(c) => Some(ChorusPro {
                service_code: opt_text("chorus_pro.service_code", c.service_code.as_deref())?,
                engagement_number: opt_text(
                    "chorus_pro.engagement_number",
                    c.engagement_number.as_deref(),
                )?,
                ..c.clone()
            }),
            None => None,
        };
        Ok(Self {
            address: self
                .address
                .as_ref()
                .map(PostalAddress::checked)
                .transpose()?,
            legal_form: opt_text("legal_form", self.legal_form.as_deref())?,
            share_capital: self.share_capital,
            rcs: opt_text("rcs", self.rcs.as_deref())?,
            chorus_pro,
            vat_on_debits: self.vat_on_debits,
        })
    }
}

/// Something an invoice must say of a party that it has not filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    Address,
    Siren,
    Siret,
    VatNumber,
    LegalForm,
    ShareCapital,
    Rcs,
    ChorusServiceCode,
    ChorusEngagementNumber,
}

impl Missing {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Address => "postal address",
            Self::Siren => "SIREN (a SIRET)",
            Self::Siret => "SIRET",
            Self::VatNumber => "VAT number",
            Self::LegalForm => "legal form",
            Self::ShareCapital => "share capital",
            Self::Rcs => "RCS registration",
            Self::ChorusServiceCode => "Chorus Pro service code",
            Self::ChorusEngagementNumber => "Chorus Pro engagement number",
        }
    }
}

/// What a party is, as the rules below read it.
pub struct PartyFacts<'a> {
    pub kind: OrgKind,
    /// ISO 3166-1 alpha-2.
    pub country: &'a str,
    pub siret: Option<&'a str>,
    pub vat_number: Option<&'a str>,
    pub identity: &'a LegalIdentity,
}

impl PartyFacts<'_> {
    fn has_siren(&self) -> bool {
        self.siret.is_some_and(|s| Siret::parse(s).is_ok())
    }

    /// What the issuer of an invoice lacks. A French seller: its SIREN,
    /// VAT number, address, legal form, share capital and RCS (Code de
    /// commerce R123-237); a foreign one: its VAT number and address.
    pub fn missing_as_issuer(&self) -> Vec<Missing> {
        let i = self.identity;
        let mut missing = Vec::new();
        if i.address.is_none() {
            missing.push(Missing::Address);
        }
        if self.country == "FR" && !self.has_siren() {
            missing.push(Missing::Siren);
        }
        if self.vat_number.is_none() {
            missing.push(Missing::VatNumber);
        }
        if self.country == "FR" {
            if i.legal_form.is_none() {
                missing.push(Missing::LegalForm);
            }
            if i.share_capital.is_none() {
                missing.push(Missing::ShareCapital);
            }
            if i.rcs.is_none() {
                missing.push(Missing::Rcs);
            }
        }
        missing
    }

    /// What the buyer of an invoice lacks, by kind: a person, its address;
    /// a French business, its SIREN and address; an EU business, its VAT
    /// number and address; another, its address; a public body, its SIRET,
    /// address, and the Chorus Pro codes its structure requires.
    pub fn missing_as_buyer(&self) -> Vec<Missing> {
        let i = self.identity;
        let mut missing = Vec::new();
        if i.address.is_none() {
            missing.push(Missing::Address);
        }
        match self.kind {
            OrgKind::Person => {}
            OrgKind::Company if self.country == "FR" => {
                if !self.has_siren() {
                    missing.push(Missing::Siren);
                }
            }
            OrgKind::Company => {
                if is_eu_country(self.country) && self.vat_number.is_none() {
                    missing.push(Missing::VatNumber);
                }
            }
            OrgKind::Public => {
                if !self.has_siren() {
                    missing.push(Missing::Siret);
                }
                let chorus = i.chorus_pro.clone().unwrap_or_default();
                if chorus.requires_service_code && chorus.service_code.is_none() {
                    missing.push(Missing::ChorusServiceCode);
                }
                if chorus.requires_engagement_number && chorus.engagement_number.is_none() {
                    missing.push(Missing::ChorusEngagementNumber);
                }
            }
        }
        missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address() -> PostalAddress {
        PostalAddress {
            line1: " 1 rue de la Paix ".into(),
            line2: Some(String::new()),
            postcode: "75002".into(),
            city: "Paris".into(),
            country: "fr".into(),
        }
    }

    #[test]
    fn an_identity_is_kept_trimmed_and_checked() {
        let i = LegalIdentity {
            address: Some(address()),
            legal_form: Some(" SAS ".into()),
            share_capital: Some(Decimal::new(1_000_000, 2)),
            rcs: Some("".into()),
            ..LegalIdentity::default()
        }
        .checked()
        .expect("checked");
        let a = i.address.as_ref().expect("address");
        assert_eq!(
            (a.line1.as_str(), a.line2.as_deref()),
            ("1 rue de la Paix", None)
        );
        assert_eq!(a.country, "FR");
        assert_eq!(i.legal_form.as_deref(), Some("SAS"));
        assert_eq!(i.rcs, None);
        let bad = |i: LegalIdentity| i.checked().is_err();
        let mut a = address();
        a.postcode = "7500".into();
        assert!(bad(LegalIdentity {
            address: Some(a),
            ..LegalIdentity::default()
        }));
        let mut a = address();
        a.city = " ".into();
        assert!(bad(LegalIdentity {
            address: Some(a),
            ..LegalIdentity::default()
        }));
        assert!(bad(LegalIdentity {
            share_capital: Some(Decimal::new(-1, 0)),
            ..LegalIdentity::default()
        }));
        assert!(bad(LegalIdentity {
            legal_form: Some("x".repeat(201)),
            ..LegalIdentity::default()
        }));
    }

    #[test]
    fn each_kind_of_party_must_say_what_the_law_asks() {
        let empty = LegalIdentity::default();
        let facts = |kind, country, siret, vat, identity| PartyFacts {
            kind,
            country,
            siret,
            vat_number: vat,
            identity,
        };
        use Missing::*;
        assert_eq!(
            facts(OrgKind::Company, "FR", None, None, &empty).missing_as_issuer(),
            [Address, Siren, VatNumber, LegalForm, ShareCapital, Rcs]
        );
        let full = LegalIdentity {
            address: Some(address().checked().expect("address")),
            legal_form: Some("SAS".into()),
            share_capital: Some(Decimal::new(10_000, 0)),
            rcs: Some("RCS Paris".into()),
            ..LegalIdentity::default()
        };
        let siret = Some("73282932000074");
        assert!(
            facts(OrgKind::Company, "FR", siret, Some("FR44732829320"), &full)
                .missing_as_issuer()
                .is_empty()
        );
        assert_eq!(
            facts(OrgKind::Person, "FR", None, None, &empty).missing_as_buyer(),
            [Address]
        );
        assert_eq!(
            facts(OrgKind::Company, "FR", None, None, &empty).missing_as_buyer(),
            [Address, Siren]
        );
        assert_eq!(
            facts(OrgKind::Company, "DE", None, None, &empty).missing_as_buyer(),
            [Address, VatNumber]
        );
        assert_eq!(
            facts(OrgKind::Company, "CH", None, None, &empty).missing_as_buyer(),
            [Address]
        );
        let chorus = LegalIdentity {
            chorus_pro: Some(ChorusPro {
                requires_service_code: true,
                requires_engagement_number: true,
                ..ChorusPro::default()
            }),
            ..full.clone()
        };
        assert_eq!(
            facts(OrgKind::Public, "FR", None, None, &chorus).missing_as_buyer(),
            [Siret, ChorusServiceCode, ChorusEngagementNumber]
        );
        assert!(
            facts(OrgKind::Public, "FR", siret, None, &full)
                .missing_as_buyer()
                .is_empty()
        );
    }
}
