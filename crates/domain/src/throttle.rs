//! Throttling of failed authentications: how long a key (an account seen
//! from one source, or a source whatever account it tries) waits after its
//! last failure. A few mistakes cost nothing; past them each failure doubles
//! the wait, up to a ceiling. Keys are per source, so that nobody elsewhere
//! can lock an account's owner out by failing on purpose.

use std::time::Duration;

/// One kind of key and its allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures within the window that cost no wait.
    pub free: u32,
    /// The longest wait.
    pub ceiling: Duration,
}

impl ThrottlePolicy {
    /// An account (sign-in, API token, WebDAV Basic, an S3 key) from one
    /// source.
    pub const ACCOUNT_FROM_SOURCE: Self = Self {
        free: 5,
        ceiling: Duration::from_secs(15 * 60),
    };
    /// One source, whatever account it tries: a source spraying guesses over
    /// many accounts.
    pub const SOURCE: Self = Self {
        free: 30,
        ceiling: Duration::from_secs(15 * 60),
    };

    /// The wait after `failures` failures within the window: none for the
    /// free ones, then 1 s, 2 s, 4 s… up to the ceiling.
    pub fn wait_after(&self, failures: u32) -> Duration {
        let Some(over) = failures.checked_sub(self.free) else {
            return Duration::ZERO;
        };
        if over == 0 {
            return Duration::ZERO;
        }
        let doubled = 1u64.checked_shl(over - 1).unwrap_or(u64::MAX);
        Duration::from_secs(doubled).min(self.ceiling)
    }

    /// How much longer a key with `failures` failures, the last at
    /// `last_ms`, waits at `now_ms`; `None` when it may try now.
    pub fn remaining(&self, failures: u32, last_ms: i64, now_ms: i64) -> Option<Duration> {
        let wait = self.wait_after(failures);
        let until = last_ms.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
        (until > now_ms).then(|| Duration::from_millis(u64::try_from(until - now_ms).unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_mistakes_are_free_then_the_wait_doubles_up_to_its_ceiling() {
        let p = ThrottlePolicy::ACCOUNT_FROM_SOURCE;
        for n in 0..=5 {
            assert_eq!(p.wait_after(n), Duration::ZERO, "{n}");
        }
        assert_eq!(p.wait_after(6), Duration::from_secs(1));
        assert_eq!(p.wait_after(7), Duration::from_secs(2));
        assert_eq!(p.wait_after(10), Duration::from_secs(16));
        assert_eq!(p.wait_after(30), Duration::from_secs(900));
        assert_eq!(p.wait_after(u32::MAX), Duration::from_secs(900));
    }

    #[test]
    fn the_wait_counts_from_the_last_failure() {
        let p = ThrottlePolicy::ACCOUNT_FROM_SOURCE;
        assert_eq!(p.remaining(3, 1_000, 1_001), None);
        assert_eq!(
            p.remaining(7, 1_000, 2_500),
            Some(Duration::from_millis(500))
        );
        assert_eq!(p.remaining(7, 1_000, 3_000), None);
    }
}
