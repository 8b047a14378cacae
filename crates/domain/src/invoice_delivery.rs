//! How an issued invoice reaches its buyer. France's e-invoicing reform
//! (from 1 September 2026) has invoices to French businesses go through a
//! *plateforme agréée* (the operator's, Nuage is not one) and invoices to
//! public bodies through Chorus Pro; buyers outside its scope (persons,
//! foreign businesses) get theirs by e-mail, Factur-X attached, or by their
//! signed webhook when they set one.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::org::OrgKind;

/// Where an invoice is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The operator's plateforme agréée.
    Pa,
    ChorusPro,
    Email,
    Webhook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pa => "pa",
            Self::ChorusPro => "chorus_pro",
            Self::Email => "email",
            Self::Webhook => "webhook",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Pa, Self::ChorusPro, Self::Email, Self::Webhook]
            .into_iter()
            .find(|c| c.as_str() == value)
    }

    /// The channel of an invoice to this buyer.
    pub fn for_buyer(kind: OrgKind, country: &str, has_webhook: bool) -> Self {
        match kind {
            OrgKind::Public if country == "FR" => Self::ChorusPro,
            OrgKind::Company if country == "FR" => Self::Pa,
            _ if has_webhook => Self::Webhook,
            _ => Self::Email,
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not delivered yet: tried again later.
    Pending,
    Delivered,
    /// Given up: refused for good, or every attempt failed.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == value)
    }
}

/// How many times a delivery is tried before it is given up.
pub const MAX_ATTEMPTS: i64 = 8;

/// When to try again after `attempts` failed ones (1 minute, doubling, at
/// most a day); `None` once they are all spent.
pub fn retry_in_ms(attempts: i64) -> Option<i64> {
    (attempts < MAX_ATTEMPTS).then(|| (60_000i64 << attempts.clamp(0, 20)).min(86_400_000))
}

/// Whether an HTTP answer refuses the invoice for good: a client error
/// other than a timeout or a rate limit. Anything else is tried again.
pub fn refused_for_good(status: u16) -> bool {
    (400..500).contains(&status) && status != 408 && status != 429
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_buyer_gets_the_reforms_channel() {
        assert_eq!(
            Channel::for_buyer(OrgKind::Company, "FR", true),
            Channel::Pa
        );
        assert_eq!(
            Channel::for_buyer(OrgKind::Public, "FR", false),
            Channel::ChorusPro
        );
        assert_eq!(
            Channel::for_buyer(OrgKind::Person, "FR", false),
            Channel::Email
        );
        assert_eq!(
            Channel::for_buyer(OrgKind::Person, "FR", true),
            Channel::Webhook
        );
        assert_eq!(
            Channel::for_buyer(OrgKind::Company, "DE", false),
            Channel::Email
        );
        assert_eq!(
            Channel::for_buyer(OrgKind::Company, "US", true),
            Channel::Webhook
        );
        for c in [
            Channel::Pa,
            Channel::ChorusPro,
            Channel::Email,
            Channel::Webhook,
        ] {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
        }
    }

    #[test]
    fn failures_are_tried_again_with_backoff_until_given_up() {
        assert_eq!(retry_in_ms(0), Some(60_000));
        assert_eq!(retry_in_ms(1), Some(120_000));
        assert!(retry_in_ms(MAX_ATTEMPTS - 1).is_some());
        assert_eq!(retry_in_ms(MAX_ATTEMPTS), None);
        assert!(refused_for_good(400) && refused_for_good(403));
        assert!(!refused_for_good(429) && !refused_for_good(408) && !refused_for_good(503));
    }
}
