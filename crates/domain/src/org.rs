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
    /// A name as shown: runs of white space become one space, and characters
    /// that render as nothing (controls, zero-width and other format
    /// characters) are refused, so that two names that look the same are
    /// the same text.
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let collapsed = value.split_whitespace().collect::<Vec<_>>().join(" ");
        if collapsed.is_empty() {
            return Err(DomainError::invalid("name", "the name must not be empty"));
        }
        if collapsed.chars().count() > 200 {
            return Err(DomainError::invalid(
                "name",
                "the name is longer than 200 characters",
            ));
        }
        if collapsed.chars().any(|c| c.is_control() || invisible(c)) {
            return Err(DomainError::invalid(
                "name",
                "the name contains control or invisible characters",
            ));
        }
        Ok(Self(collapsed))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What two names must not share: the name in Unicode compatibility
    /// form (NFKC: full-width letters, ligatures and the like become plain
    /// ones), case folded, white space collapsed. Letters of other scripts
    /// that look alike (a Cyrillic « а » for a Latin « a ») stay distinct.
    pub fn key(&self) -> String {
        use unicode_normalization::UnicodeNormalization;
        let folded: String = self.0.nfkc().flat_map(char::to_lowercase).collect();
        folded.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// Characters that take no room: zero-width spaces and joiners, direction
/// marks and overrides, the word joiner, the byte-order mark, soft hyphen.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
    )
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn names_that_look_the_same_have_the_same_key() {
        let key = |s: &str| OrgName::parse(s).expect(s).key();
        assert_eq!(
            OrgName::parse("  Mairie   de  Lyon ").expect("ok").as_str(),
            "Mairie de Lyon"
        );
        assert_eq!(key("Mairie de Lyon"), key("MAIRIE  DE LYON"));
        assert_eq!(key("Mairie de Lyon"), key("Ｍａｉｒｉｅ de Lyon"));
        assert_eq!(key("ﬁnances"), key("finances"));
        assert_ne!(key("Mairie de Lyon"), key("Mairie de Lyons"));
        for hidden in [
            "Mairie\u{200B} de Lyon",
            "Mairie\u{202E} de Lyon",
            "\u{FEFF}Mairie",
            "Mai\u{00AD}rie",
        ] {
            assert!(OrgName::parse(hidden).is_err(), "{hidden:?}");
        }
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
        self.may(Permission::Manage)
    }

    /// Whether this role holds `permission`: the one table of who may do
    /// what in an organisation, which every surface reaches through the
    /// platform's authorisation (`Platform::authorize_org`).
    pub fn may(self, permission: Permission) -> bool {
        use Role::*;
        match permission {
            Permission::Use => true,
            Permission::Manage => matches!(self, Owner | Admin),
            Permission::Own => self == Owner,
            // Only an owner makes another owner.
            Permission::Grant(role) => {
                matches!(self, Owner | Admin) && (self == Owner || role != Owner)
            }
            Permission::RunCalls => matches!(self, Owner | Buyer),
            Permission::Order => matches!(self, Owner | Admin | Buyer),
            Permission::SeeInvoices => matches!(self, Owner | Admin | Billing),
        }
    }
}

/// What a member may be allowed to do in its organisation (see
/// [`Role::may`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// See the organisation and use its services (storage, drive, websites).
    Use,
    /// Manage members, keys, settings, offers, and read the audit.
    Manage,
    /// What only an owner does: the organisation's security policy.
    Own,
    /// Give a member this role.
    Grant(Role),
    /// Publish, open and award calls for tender.
    RunCalls,
    /// Order offers from the catalogue.
    Order,
    /// See usage, invoices and quota alerts.
    SeeInvoices,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod permission_tests {
    use super::{Permission, Role};

    /// The whole table, written out: a change to who may do what shows here.
    #[test]
    fn each_role_holds_exactly_its_permissions() {
        use Permission::*;
        use Role::*;
        let table: [(Permission, [Role; 5]); 7] = [
            (Use, [Owner, Admin, Buyer, Billing, Member]),
            (Manage, [Owner, Admin, Admin, Admin, Admin]),
            (Own, [Owner; 5]),
            (Grant(Owner), [Owner; 5]),
            (RunCalls, [Owner, Buyer, Buyer, Buyer, Buyer]),
            (Order, [Owner, Admin, Buyer, Buyer, Buyer]),
            (SeeInvoices, [Owner, Admin, Billing, Billing, Billing]),
        ];
        for (permission, holders) in table {
            for role in Role::ALL {
                assert_eq!(
                    role.may(permission),
                    holders.contains(&role),
                    "{role} and {permission:?}"
                );
            }
        }
        for granted in [Admin, Buyer, Billing, Member] {
            for role in Role::ALL {
                assert_eq!(
                    role.may(Grant(granted)),
                    role.manages_org(),
                    "{role} grants {granted}"
                );
            }
        }
    }
}
