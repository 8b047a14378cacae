//! French company numbers (SIREN, SIRET) and EU VAT numbers, checked when they
//! enter the platform.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// La Poste's SIREN: its establishments' SIRETs follow a different key rule.
const LA_POSTE_SIREN: &str = "356000000";

fn digits_only(value: &str) -> String {
    value.chars().filter(|c| !c.is_whitespace()).collect()
}

fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, c) in digits.chars().rev().enumerate() {
        let Some(mut d) = c.to_digit(10) else {
            return false;
        };
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// A SIREN: the 9-digit number of a French legal unit, with its Luhn key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Siren(String);

impl Siren {
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let digits = digits_only(value);
        if digits.len() != 9 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(DomainError::invalid(
                "siren",
                "a SIREN has exactly 9 digits",
            ));
        }
        if !luhn_valid(&digits) {
            return Err(DomainError::invalid(
                "siren",
                "the SIREN's check digit is wrong",
            ));
        }
        Ok(Self(digits))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Siren {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A SIRET: a SIREN followed by a 5-digit establishment number, with its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Siret(String);

impl Siret {
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let digits = digits_only(value);
        if digits.len() != 14 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(DomainError::invalid(
                "siret",
                "a SIRET has exactly 14 digits",
            ));
        }
        let valid = if digits.starts_with(LA_POSTE_SIREN) {
            // La Poste's establishments: the sum of the digits is a multiple of 5.
            digits
                .chars()
                .filter_map(|c| c.to_digit(10))
                .sum::<u32>()
                .is_multiple_of(5)
        } else {
            luhn_valid(&digits) && luhn_valid(&digits[..9])
        };
        if !valid {
            return Err(DomainError::invalid(
                "siret",
                "the SIRET's check digit is wrong",
            ));
        }
        Ok(Self(digits))
    }

    pub fn siren(&self) -> &str {
        &self.0[..9]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Siret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The EU member states' VAT prefixes (Greece uses EL).
const EU_VAT_PREFIXES: [&str; 27] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// An EU VAT identification number, checked in format and check digits, by
/// each member state's rule (`vat_digits`). Whether it is registered can
/// only be told by the EU's VIES service, which this check does not reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VatNumber(String);

impl VatNumber {
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let compact: String = value
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '.' && *c != '-')
            .collect::<String>()
            .to_ascii_uppercase();
        if compact.len() < 4 || !compact.is_char_boundary(2) {
            return Err(DomainError::invalid(
                "vat_number",
                "a VAT number starts with a country code, then 2 to 12 characters",
            ));
        }
        let (prefix, rest) = compact.split_at(2);
        if !EU_VAT_PREFIXES.contains(&prefix) {
            return Err(DomainError::invalid(
                "vat_number",
                format!("{prefix} is not the VAT prefix of an EU member state"),
            ));
        }
        // Old Irish numbers may hold a + or a * as their second character.
        let allowed = |c: char| c.is_ascii_alphanumeric() || (prefix == "IE" && "+*".contains(c));
        if !(2..=12).contains(&rest.len()) || !rest.chars().all(allowed) {
            return Err(DomainError::invalid(
                "vat_number",
                "after the country code, a VAT number has 2 to 12 letters or digits",
            ));
        }
        if prefix == "FR" {
            check_french_vat(rest)?;
        } else if !crate::vat_digits::valid(prefix, rest) {
            return Err(DomainError::invalid(
                "vat_number",
                format!(
                    "{compact} is not a valid {prefix} VAT number: its format or check digits are wrong"
                ),
            ));
        }
        Ok(Self(compact))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The member state that issued it, as an ISO 3166 code (Greece's
    /// numbers start with EL, its ISO code is GR).
    pub fn country(&self) -> &str {
        match &self.0[..2] {
            "EL" => "GR",
            other => other,
        }
    }
}

/// A country: an ISO 3166-1 alpha-2 code, upper-cased (`EU` is not one).
pub fn parse_country(value: &str) -> Result<String, DomainError> {
    let upper = value.trim().to_ascii_uppercase();
    if upper.len() == 2 && upper.chars().all(|c| c.is_ascii_uppercase()) && upper != "EU" {
        Ok(upper)
    } else {
        Err(DomainError::invalid(
            "country",
            format!("{value:?} is not a country code (ISO 3166-1 alpha-2, e.g. FR)"),
        ))
    }
}

/// Whether an ISO 3166 country code is an EU member state's.
pub fn is_eu_country(iso: &str) -> bool {
    iso == "GR" || (iso != "EL" && EU_VAT_PREFIXES.contains(&iso))
}

/// French VAT: a 2-character key then the SIREN; a numeric key is
/// (12 + 3 × (SIREN mod 97)) mod 97.
fn check_french_vat(rest: &str) -> Result<(), DomainError> {
    if rest.len() != 11 {
        return Err(DomainError::invalid(
            "vat_number",
            "a French VAT number is FR, a 2-character key and the 9-digit SIREN",
        ));
    }
    let (key, siren) = rest.split_at(2);
    Siren::parse(siren).map_err(|_| {
        DomainError::invalid(
            "vat_number",
            "the SIREN inside the French VAT number is not valid",
        )
    })?;
    if let Ok(key) = key.parse::<u64>() {
        let siren: u64 = siren
            .parse()
            .map_err(|_| DomainError::invalid("vat_number", "the SIREN must be digits"))?;
        if key != (12 + 3 * (siren % 97)) % 97 {
            return Err(DomainError::invalid(
                "vat_number",
                "the French VAT number's key does not match its SIREN",
            ));
        }
    }
    Ok(())
}

impl fmt::Display for VatNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siret_key_is_checked() {
        // A public SIRET: the DINUM's.
        assert!(Siret::parse("130 025 265 00013").is_ok());
        assert!(Siret::parse("13002526500014").is_err());
        assert!(Siret::parse("1300252650001").is_err());
        assert!(Siret::parse("1300252650001a").is_err());
    }

    #[test]
    fn la_poste_sirets_use_their_own_rule() {
        assert!(Siret::parse("35600000000001").is_ok());
        assert!(Siret::parse("35600000000002").is_err());
    }

    #[test]
    fn siren_key_is_checked() {
        assert!(Siren::parse("130025265").is_ok());
        assert!(Siren::parse("130025266").is_err());
    }

    #[test]
    fn french_vat_key_matches_siren() {
        // SIREN 130025265: key = (12 + 3 × (130025265 mod 97)) mod 97.
        let key = (12 + 3 * (130_025_265u64 % 97)) % 97;
        assert!(VatNumber::parse(&format!("FR{key:02}130025265")).is_ok());
        assert!(VatNumber::parse(&format!("FR{:02}130025265", (key + 1) % 97)).is_err());
        assert!(VatNumber::parse("US123456789").is_err());
        // Other member states: their own check digits (tests/vat_numbers.rs
        // holds many more).
        assert!(VatNumber::parse("DE139115146").is_ok());
        assert!(VatNumber::parse("DE139115147").is_err());
    }
}
