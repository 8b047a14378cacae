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

use crate::{ServiceError, ServiceResult, now_ms};

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

    /// Refuses the attempt (`RateLimited`) while one of its keys waits.
    pub async fn check(&self, conn: &mut AnyConnection) -> ServiceResult<()> {
        match self.wait(conn).await? {
            Some(_) => Err(ServiceError::RateLimited),
            None => Ok(()),
        }
    }

    /// How much longer the attempt must wait, if at all.
    pub async fn wait(&self, conn: &mut AnyConnection) -> ServiceResult<Option<Duration>> {
        let now = now_ms();
        let mut longest: Option<Duration> = None;
        for (key, policy) in self.keys() {
            let (failures, last) = repo::failures_since(conn, &key, now - WINDOW_MS).await?;
            let failures = u32::try_from(failures).unwrap_or(u32::MAX);
            if let Some(wait) = last.and_then(|last| policy.remaining(failures, last, now)) {
                longest = Some(longest.map_or(wait, |l| l.max(wait)));
            }
        }
        Ok(longest)
    }

    /// Counts a failure against both keys.
    pub async fn failed(&self, conn: &mut AnyConnection) -> ServiceResult<()> {
        let now = now_ms();
        for (key, _) in self.keys() {
            repo::record_login_failure(conn, &key, now).await?;
        }
        metrics::counter!("nuage_auth_failures_total", "kind" => self.kind).increment(1);
        Ok(())
    }

    /// Forgets the account's failures from this source (a success), and
    /// failures older than the window. Only a read when there were none, so
    /// that a WebDAV client's every request does not write.
    pub async fn succeeded(&self, conn: &mut AnyConnection) -> ServiceResult<()> {
        let [(key, _), _] = self.keys();
        let since = now_ms() - WINDOW_MS;
        if repo::failures_since(conn, &key, since).await?.0 > 0 {
            repo::clear_login_failures(conn, &key, since).await?;
        }
        Ok(())
    }
}
