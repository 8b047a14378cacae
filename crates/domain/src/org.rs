//! Organisations and the roles their members hold.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::DomainError;

/// What kind of legal person an organisation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrgKind {
    /// A public body: ministry, local authority, agency, hospital…
    Public,
    Company,
    /// A natural person.
    Person,
}

impl OrgKind {
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "public" => Ok(Self::Public),
            "company" => Ok(Self::Company),
            "person" => Ok(Self::Person),
            other => Err(DomainError::invalid(
                "kind",
                format!("{other:?} is not one of public, company, person"),
            )),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Company => "company",
            Self::Person => "person",
        }
    }
}

impl fmt::Display for OrgKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An organisation's display name: 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrgName(String);

impl OrgName {
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(DomainError::invalid("name", "the name must not be empty"));
        }
        if trimmed.chars().count() > 200 {
            return Err(DomainError::invalid(
                "name",
                "the name is longer than 200 characters",
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                "name",
                "the name contains control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a member may do in an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees the organisation and uses its services.
    Member,
    /// Sees usage and invoices.
    Billing,
    /// Publishes calls for tender and awards them.
    Buyer,
    /// Manages members, keys and settings.
    Admin,
    /// All of the above, and cannot be removed by an admin.
    Owner,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Buyer,
        Role::Billing,
        Role::Member,
    ];

    pub fn parse(value: &str) -> Result<Self, DomainError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "owner" => Ok(Self::Owner),
            "admin" => Ok(Self::Admin),
            "buyer" => Ok(Self::Buyer),
            "billing" => Ok(Self::Billing),
            "member" => Ok(Self::Member),
            other => Err(DomainError::invalid(
                "role",
                format!("{other:?} is not one of owner, admin, buyer, billing, member"),
            )),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Buyer => "buyer",
            Self::Billing => "billing",
            Self::Member => "member",
        }
    }

    /// Owners and admins manage the organisation: members, keys, settings, audit.
    pub fn manages_org(self) -> bool {
        matches!(self, Self::Owner | Self::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
