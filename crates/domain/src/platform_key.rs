//! The platform's own keys: what each is for, and its epochs. Rotating a key
//! starts a new epoch; what an older epoch made (a wrapped key, a link of the
//! audit chain, a signature) names its epoch and stays readable.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::DomainError;

/// What a platform key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyPurpose {
    /// The key-encryption key: wraps each organisation's key.
    Kek,
    /// Links the audit chain's records (HMAC-SHA256).
    Audit,
    /// Signs audit checkpoints, bid receipts and certificates (Ed25519).
    Signing,
}

impl KeyPurpose {
    pub const ALL: [Self; 3] = [Self::Kek, Self::Audit, Self::Signing];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kek => "kek",
            Self::Audit => "audit",
            Self::Signing => "signing",
        }
    }

    pub fn parse(text: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == text)
            .ok_or_else(|| {
                DomainError::invalid(
                    "purpose",
                    format!("{text:?} is not a platform key: kek, audit or signing"),
                )
            })
    }
}

/// A wrapped organisation key as stored: `{epoch}:{wrapping}`, where the
/// epoch is the key-encryption key's. A key wrapped before epochs existed
/// has no prefix (its base64 has no colon) and reads as epoch 0.
pub fn split_wrapped(stored: &str) -> Result<(u32, &str), DomainError> {
    match stored.split_once(':') {
        None => Ok((0, stored)),
        Some((epoch, rest)) => epoch
            .parse::<u32>()
            .ok()
            .filter(|e| *e > 0)
            .map(|e| (e, rest))
            .ok_or_else(|| DomainError::invalid("wrapped_key", "the epoch prefix is malformed")),
    }
}

/// The stored form of a key wrapped at `epoch` (at least 1).
pub fn join_wrapped(epoch: u32, wrapping: &str) -> String {
    format!("{epoch}:{wrapping}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_round_trip_and_strangers_are_refused() {
        for p in KeyPurpose::ALL {
            assert_eq!(KeyPurpose::parse(p.as_str()), Ok(p));
        }
        assert!(KeyPurpose::parse("master").is_err());
    }

    #[test]
    fn wrapped_keys_name_their_epoch() {
        assert_eq!(split_wrapped("AAAA+/=="), Ok((0, "AAAA+/==")));
        assert_eq!(split_wrapped(&join_wrapped(3, "QUJD")), Ok((3, "QUJD")));
        assert!(split_wrapped("0:QUJD").is_err());
        assert!(split_wrapped("x:QUJD").is_err());
    }
}
