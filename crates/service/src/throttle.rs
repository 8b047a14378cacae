//! Throttling of failed authentications, on every node (the failures live in
//! the database): sign-in and API tokens, WebDAV Basic, S3 signatures. Each
//! failure counts against the account as seen from its source, and against
//! the source whatever account it tried; the waits grow by
//! [`ThrottlePolicy`]. An account's owner elsewhere is never held back by
//! someone failing on purpose.

use std::time::Duration;

use nuage_db::AnyConnection;
use nuage_db::repo::identity as repo;
use nuage_domain::throttle::ThrottlePolicy;

use crate::{ServiceError, ServiceResult};

/// How far back failures count.
pub const WINDOW_MS: i64 = 60 * 60 * 1000;

/// One authentication attempt: what it is for, whom it names, and where it
/// comes from.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// `sign-in`, `dav`, `s3`…
    pub kind: &'static str,
    /// The e-mail address or access key tried (folded by the caller).
    pub account: &'a str,
    /// The client's address.
    pub source: &'a str,
    /// When it is tried, in ms since the epoch (the platform's clock).
    pub now_ms: i64,
}

/// What [`Attempt::check`] found, for [`Attempt::succeeded`].
#[derive(Debug, Clone, Copy)]
pub struct Checked {
    account_failures: i64,
}

impl Attempt<'_> {
    fn keys(&self) -> [(String, ThrottlePolicy); 2] {
        [
            (
                format!("{}:{}@{}", self.kind, self.account, self.source),
                ThrottlePolicy::ACCOUNT_FROM_SOURCE,
            ),
            (format!("source:{}", self.source), ThrottlePolicy::SOURCE),
        ]
    }

    /// Refuses the attempt (`RateLimited`) while one of its keys waits;
    /// otherwise says whether the account has failures to forget on success.
    pub async fn check(&self, conn: &mut AnyConnection) -> ServiceResult<Checked> {
        let (wait, account_failures) = self.read(conn).await?;
        match wait {
            Some(_) => Err(ServiceError::RateLimited),
            None => Ok(Checked { account_failures }),
        }
    }

    /// How much longer the attempt must wait, if at all.
    pub async fn wait(&self, conn: &mut AnyConnection) -> ServiceResult<Option<Duration>> {
        Ok(self.read(conn).await?.0)
    }

    /// The longest wait of the keys, and the account's failures.
    async fn read(&self, conn: &mut AnyConnection) -> ServiceResult<(Option<Duration>, i64)> {
        let now = self.now_ms;
        let mut longest: Option<Duration> = None;
        let mut account_failures = 0;
        for (i, (key, policy)) in self.keys().into_iter().enumerate() {
            let (failures, last) = repo::failures_since(conn, &key, now - WINDOW_MS).await?;
            if i == 0 {
                account_failures = failures;
            }
            let failures = u32::try_from(failures).unwrap_or(u32::MAX);
            if let Some(wait) = last.and_then(|last| policy.remaining(failures, last, now)) {
                longest = Some(longest.map_or(wait, |l| l.max(wait)));
            }
        }
        Ok((longest, account_failures))
    }

    /// Counts a failure against both keys.
    pub async fn failed(&self, conn: &mut AnyConnection) -> ServiceResult<()> {
        let now = self.now_ms;
        for (key, _) in self.keys() {
            repo::record_login_failure(conn, &key, now).await?;
        }
        metrics::counter!("nuage_auth_failures_total", "kind" => self.kind).increment(1);
        Ok(())
    }

    /// Forgets the account's failures from this source (a success), and
    /// failures older than the window; writes nothing when there were none,
    /// so that a WebDAV client's every request stays a read.
    pub async fn succeeded(&self, conn: &mut AnyConnection, checked: Checked) -> ServiceResult<()> {
        if checked.account_failures > 0 {
            let [(key, _), _] = self.keys();
            repo::clear_login_failures(conn, &key, self.now_ms - WINDOW_MS).await?;
        }
        Ok(())
    }
}
