//! Object Lock, AWS's model: a version under retention or a legal hold
//! cannot be deleted for good (write once, read many). A bucket has Object
//! Lock from its creation or from when it is turned on, never turned off,
//! and may give new versions a default retention.
//!
//! Retention comes in two modes. **Governance**: only a request that asks
//! to bypass it (`x-amz-bypass-governance-retention`) may shorten or lift
//! it, or delete the version. **Compliance**: nobody may shorten it, lift
//! it or delete the version before the date, whatever they ask. A legal
//! hold has no date: the version stays until the hold is lifted.

use serde::{Deserialize, Serialize};

const DAY_MS: i64 = 86_400_000;
/// The longest default retention taken: 100 years, as on AWS.
const MAX_DAYS: u32 = 36_500;
const MAX_YEARS: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RetentionMode {
    Governance,
    Compliance,
}

impl RetentionMode {
    pub fn parse(value: &str) -> Result<Self, LockRuleError> {
        match value {
            "GOVERNANCE" => Ok(Self::Governance),
            "COMPLIANCE" => Ok(Self::Compliance),
            other => Err(LockRuleError::Malformed(format!(
                "the retention mode {other:?} is neither GOVERNANCE nor COMPLIANCE"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Governance => "GOVERNANCE",
            Self::Compliance => "COMPLIANCE",
        }
    }
}

/// A version's retention: its mode, and until when (milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub mode: RetentionMode,
    pub until_ms: i64,
}

impl Retention {
    /// A retention a client asks for: its date must be in the future.
    pub fn check_requested(&self, now_ms: i64) -> Result<(), LockRuleError> {
        if self.until_ms <= now_ms {
            return Err(LockRuleError::Invalid(
                "The retain until date must be in the future!".into(),
            ));
        }
        Ok(())
    }

    pub fn is_active(&self, now_ms: i64) -> bool {
        self.until_ms > now_ms
    }
}

/// How long a bucket's default retention keeps a new version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetentionPeriod {
    Days(u32),
    /// A year counts 365 days.
    Years(u32),
}

/// The retention a bucket gives every new version that asks for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultRetention {
    pub mode: RetentionMode,
    pub period: RetentionPeriod,
}

impl DefaultRetention {
    /// From a configuration's fields: a mode and exactly one of days or
    /// years, a positive number.
    pub fn parse(
        mode: Option<&str>,
        days: Option<i32>,
        years: Option<i32>,
    ) -> Result<Self, LockRuleError> {
        let mode =
            RetentionMode::parse(mode.ok_or_else(|| {
                LockRuleError::Malformed("a default retention needs a Mode".into())
            })?)?;
        let positive = |n: i32, max: u32| {
            u32::try_from(n)
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    LockRuleError::Invalid(format!(
                        "Default retention period must be a positive integer value of at most {max}"
                    ))
                })
        };
        let period = match (days, years) {
            (Some(d), None) => RetentionPeriod::Days(positive(d, MAX_DAYS)?),
            (None, Some(y)) => RetentionPeriod::Years(positive(y, MAX_YEARS)?),
            _ => {
                return Err(LockRuleError::Malformed(
                    "a default retention has either Days or Years, not both nor neither".into(),
                ));
            }
        };
        Ok(Self { mode, period })
    }

    /// The retention of a version created at `created_ms`.
    pub fn from(&self, created_ms: i64) -> Retention {
        let days = match self.period {
            RetentionPeriod::Days(d) => i64::from(d),
            RetentionPeriod::Years(y) => i64::from(y) * 365,
        };
        Retention {
            mode: self.mode,
            until_ms: created_ms + days * DAY_MS,
        }
    }
}

/// A bucket's Object Lock: present once enabled, and never removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectLockConfig {
    #[serde(default)]
    pub default_retention: Option<DefaultRetention>,
}

impl ObjectLockConfig {
    pub fn from_stored(value: Option<&str>) -> Option<Self> {
        value.and_then(|v| serde_json::from_str(v).ok())
    }

    pub fn to_stored(self) -> String {
        serde_json::to_string(&self).expect("a lock configuration serialises")
    }
}

/// The lock on one version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionLock {
    pub retention: Option<Retention>,
    pub legal_hold: bool,
}

impl VersionLock {
    pub fn is_empty(&self) -> bool {
        self.retention.is_none() && !self.legal_hold
    }

    /// Whether the version may be deleted for good now. A delete marker
    /// added in front of it is always allowed: that deletes nothing.
    pub fn check_delete(&self, now_ms: i64, bypass_governance: bool) -> Result<(), LockRuleError> {
        if self.legal_hold {
            return Err(LockRuleError::Locked(
                "this version is under a legal hold".into(),
            ));
        }
        match self.retention {
            Some(r) if r.is_active(now_ms) => match r.mode {
                RetentionMode::Compliance => Err(LockRuleError::Locked(
                    "this version is under retention in compliance mode".into(),
                )),
                RetentionMode::Governance if !bypass_governance => Err(LockRuleError::Locked(
                    "this version is under retention in governance mode".into(),
                )),
                RetentionMode::Governance => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Whether the retention may become `new`: a retention in force may
    /// always be kept or lengthened; a governance one may be shortened,
    /// lifted or turned to the other mode only with the bypass; a
    /// compliance one never.
    pub fn check_retention_change(
        &self,
        new: Option<&Retention>,
        now_ms: i64,
        bypass_governance: bool,
    ) -> Result<(), LockRuleError> {
        let Some(current) = self.retention.filter(|r| r.is_active(now_ms)) else {
            return Ok(());
        };
        let kept_or_longer = new.is_some_and(|n| n.until_ms >= current.until_ms);
        match current.mode {
            RetentionMode::Compliance
                if !kept_or_longer || new.is_some_and(|n| n.mode != current.mode) =>
            {
                Err(LockRuleError::Locked(
                    "a retention in compliance mode can only be lengthened".into(),
                ))
            }
            RetentionMode::Governance if !kept_or_longer && !bypass_governance => {
                Err(LockRuleError::Locked(
                    "a retention in governance mode can be shortened or lifted only with x-amz-bypass-governance-retention"
                        .into(),
                ))
            }
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockRuleError {
    /// The request is not well formed (S3's `MalformedXML`).
    #[error("{0}")]
    Malformed(String),
    /// A value out of range (S3's `InvalidArgument`).
    #[error("{0}")]
    Invalid(String),
    /// The lock forbids it (S3's `AccessDenied`).
    #[error("{0}")]
    Locked(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn retention(mode: RetentionMode, in_days: i64) -> Retention {
        Retention {
            mode,
            until_ms: NOW + in_days * DAY_MS,
        }
    }

    fn lock(mode: RetentionMode, in_days: i64) -> VersionLock {
        VersionLock {
            retention: Some(retention(mode, in_days)),
            legal_hold: false,
        }
    }

    #[test]
    fn compliance_keeps_a_version_whatever_is_asked() {
        let l = lock(RetentionMode::Compliance, 3);
        assert!(l.check_delete(NOW, true).is_err());
        assert!(l.check_delete(NOW + 4 * DAY_MS, false).is_ok());
    }

    #[test]
    fn governance_gives_way_only_to_the_bypass() {
        let l = lock(RetentionMode::Governance, 3);
        assert!(l.check_delete(NOW, false).is_err());
        assert!(l.check_delete(NOW, true).is_ok());
    }

    #[test]
    fn a_legal_hold_outlasts_any_bypass_and_any_date() {
        let l = VersionLock {
            retention: None,
            legal_hold: true,
        };
        assert!(l.check_delete(NOW + 10_000 * DAY_MS, true).is_err());
    }

    #[test]
    fn compliance_can_only_be_lengthened() {
        let l = lock(RetentionMode::Compliance, 3);
        let longer = retention(RetentionMode::Compliance, 5);
        let shorter = retention(RetentionMode::Compliance, 1);
        let governance = retention(RetentionMode::Governance, 9);
        assert!(l.check_retention_change(Some(&longer), NOW, false).is_ok());
        assert!(l.check_retention_change(Some(&shorter), NOW, true).is_err());
        assert!(
            l.check_retention_change(Some(&governance), NOW, true)
                .is_err()
        );
        assert!(l.check_retention_change(None, NOW, true).is_err());
        // Once its date has passed, it holds nothing any more.
        assert!(
            l.check_retention_change(None, NOW + 4 * DAY_MS, false)
                .is_ok()
        );
    }

    #[test]
    fn governance_is_shortened_or_lifted_with_the_bypass() {
        let l = lock(RetentionMode::Governance, 3);
        let shorter = retention(RetentionMode::Governance, 1);
        let stricter = retention(RetentionMode::Compliance, 4);
        assert!(
            l.check_retention_change(Some(&shorter), NOW, false)
                .is_err()
        );
        assert!(l.check_retention_change(None, NOW, false).is_err());
        assert!(l.check_retention_change(Some(&shorter), NOW, true).is_ok());
        assert!(l.check_retention_change(None, NOW, true).is_ok());
        assert!(
            l.check_retention_change(Some(&stricter), NOW, false)
                .is_ok()
        );
    }

    #[test]
    fn default_retention_takes_one_positive_period() {
        let d = DefaultRetention::parse(Some("GOVERNANCE"), Some(2), None).expect("valid");
        assert_eq!(d.from(NOW).until_ms, NOW + 2 * DAY_MS);
        let y = DefaultRetention::parse(Some("COMPLIANCE"), None, Some(1)).expect("valid");
        assert_eq!(y.from(NOW).until_ms, NOW + 365 * DAY_MS);
        assert!(DefaultRetention::parse(Some("GOVERNANCE"), Some(1), Some(1)).is_err());
        assert!(DefaultRetention::parse(Some("GOVERNANCE"), None, None).is_err());
        assert!(DefaultRetention::parse(Some("GOVERNANCE"), Some(0), None).is_err());
        assert!(DefaultRetention::parse(Some("GOVERNANCE"), Some(-3), None).is_err());
        assert!(DefaultRetention::parse(Some("FOREVER"), Some(1), None).is_err());
        assert!(DefaultRetention::parse(None, Some(1), None).is_err());
    }

    #[test]
    fn a_requested_retention_ends_in_the_future() {
        let at = |until_ms| Retention {
            mode: RetentionMode::Governance,
            until_ms,
        };
        assert!(at(NOW).check_requested(NOW).is_err());
        assert!(at(NOW + 1).check_requested(NOW).is_ok());
    }

    #[test]
    fn the_configuration_round_trips_through_its_stored_form() {
        let c = ObjectLockConfig {
            default_retention: Some(DefaultRetention {
                mode: RetentionMode::Compliance,
                period: RetentionPeriod::Years(7),
            }),
        };
        assert_eq!(ObjectLockConfig::from_stored(Some(&c.to_stored())), Some(c));
        assert_eq!(ObjectLockConfig::from_stored(None), None);
    }
}
