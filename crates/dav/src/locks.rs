//! WebDAV locks kept in the database (`Platform::dav_*`), so that a lock
//! taken through one node holds on every node.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dav_server::davpath::DavPath;
use dav_server::ls::{DavLock, DavLockSystem, LsFuture};
use futures::FutureExt;
use nuage_domain::drive::{DrivePath, LockQuery};
use nuage_domain::ids::OrgId;
use nuage_service::Platform;
use nuage_service::drive_access::{self, NewLock};
use tokio::sync::OnceCell;
use xmltree::Element;

use crate::fs::Mount;

/// The locks of one request: checks and changes go to the database every
/// time; `discover`, asked for every entry of a listing, reads the
/// organisation's locks once per request.
#[derive(Clone)]
pub struct DbLocks {
    platform: Platform,
    org: OrgId,
    mount: Mount,
    known: Arc<OnceCell<Vec<drive_access::DavLock>>>,
}

impl std::fmt::Debug for DbLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbLocks").field("org", &self.org).finish()
    }
}

impl DbLocks {
    pub fn new(platform: Platform, org: OrgId, mount: Mount) -> Self {
        Self {
            platform,
            org,
            mount,
            known: Arc::new(OnceCell::new()),
        }
    }
}

fn owner_xml(owner: Option<&Element>) -> Option<String> {
    let mut out = Vec::new();
    owner?.write(&mut out).ok()?;
    String::from_utf8(out).ok()
}

impl DbLocks {
    /// A stored lock as the mount shows it: a lock held above the mount's
    /// folder shows on that folder.
    fn to_dav(&self, lock: drive_access::DavLock) -> DavLock {
        let path = self
            .mount
            .dav(&lock.path)
            .or_else(|| self.mount.dav(&self.mount.root))
            .unwrap_or_else(|| DavPath::new("/").expect("the root parses"));
        DavLock {
            path: Box::new(path),
            token: lock.token,
            principal: lock.principal,
            owner: lock
                .owner
                .and_then(|x| Element::parse(x.as_bytes()).ok())
                .map(Box::new),
            timeout_at: lock
                .expires_at
                .map(|ms| UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)),
            timeout: lock
                .timeout_ms
                .map(|ms| Duration::from_millis(ms.max(0) as u64)),
            shared: lock.shared,
            deep: lock.deep,
        }
    }

    fn parse(&self, path: &DavPath) -> Option<DrivePath> {
        self.mount.path(path).ok()
    }
}

/// A stand-in returned when the database cannot be reached: the request is
/// refused as locked rather than let through unchecked.
fn unavailable(path: &DavPath) -> DavLock {
    DavLock {
        token: String::new(),
        path: Box::new(path.clone()),
        principal: None,
        owner: None,
        timeout_at: Some(SystemTime::now()),
        timeout: None,
        shared: false,
        deep: false,
    }
}

impl DavLockSystem for DbLocks {
    fn lock(
        &self,
        path: &DavPath,
        principal: Option<&str>,
        owner: Option<&Element>,
        timeout: Option<Duration>,
        shared: bool,
        deep: bool,
    ) -> LsFuture<'_, Result<DavLock, DavLock>> {
        let dav = path.clone();
        let new = self.parse(path).map(|path| NewLock {
            path,
            principal: principal.map(str::to_owned),
            owner: owner_xml(owner),
            timeout_ms: timeout.map(|d| d.as_millis().min(i64::MAX as u128) as i64),
            shared,
            deep,
        });
        async move {
            let Some(new) = new else {
                return Err(unavailable(&dav));
            };
            match self.platform.dav_lock(&self.org, new).await {
                Ok(Ok(lock)) => Ok(self.to_dav(lock)),
                Ok(Err(conflict)) => Err(self.to_dav(conflict)),
                Err(e) => {
                    tracing::error!(error = %e, "a WebDAV lock could not be taken");
                    Err(unavailable(&dav))
                }
            }
        }
        .boxed()
    }

    fn unlock(&self, path: &DavPath, token: &str) -> LsFuture<'_, Result<(), ()>> {
        let (path, token) = (self.parse(path), token.to_owned());
        async move {
            let path = path.ok_or(())?;
            match self.platform.dav_unlock(&self.org, &path, &token).await {
                Ok(true) => Ok(()),
                _ => Err(()),
            }
        }
        .boxed()
    }

    fn refresh(
        &self,
        path: &DavPath,
        token: &str,
        timeout: Option<Duration>,
    ) -> LsFuture<'_, Result<DavLock, ()>> {
        let (path, token) = (self.parse(path), token.to_owned());
        let timeout = timeout.map(|d| d.as_millis().min(i64::MAX as u128) as i64);
        async move {
            let path = path.ok_or(())?;
            match self
                .platform
                .dav_refresh(&self.org, &path, &token, timeout)
                .await
            {
                Ok(Some(lock)) => Ok(self.to_dav(lock)),
                _ => Err(()),
            }
        }
        .boxed()
    }

    fn check(
        &self,
        path: &DavPath,
        principal: Option<&str>,
        ignore_principal: bool,
        deep: bool,
        submitted_tokens: &[String],
    ) -> LsFuture<'_, Result<(), DavLock>> {
        let dav = path.clone();
        let path = self.parse(path);
        let principal = principal.map(str::to_owned);
        let tokens = submitted_tokens.to_vec();
        async move {
            let Some(path) = path else {
                // A path the drive refuses holds no lock; the operation
                // itself will refuse it.
                return Ok(());
            };
            let query = LockQuery {
                principal: principal.as_deref(),
                ignore_principal,
                tokens: &tokens,
            };
            match self.platform.dav_check(&self.org, &path, query, deep).await {
                Ok(None) => Ok(()),
                Ok(Some(lock)) => Err(self.to_dav(lock)),
                Err(e) => {
                    tracing::error!(error = %e, "WebDAV locks could not be read");
                    Err(unavailable(&dav))
                }
            }
        }
        .boxed()
    }

    fn discover(&self, path: &DavPath) -> LsFuture<'_, Vec<DavLock>> {
        let path = self.parse(path);
        async move {
            let Some(path) = path else {
                return Vec::new();
            };
            let known = self
                .known
                .get_or_try_init(|| self.platform.dav_locks(&self.org))
                .await;
            match known {
                Ok(locks) => locks
                    .iter()
                    .filter(|l| l.covers(&path))
                    .cloned()
                    .map(|l| self.to_dav(l))
                    .collect(),
                Err(e) => {
                    tracing::error!(error = %e, "WebDAV locks could not be read");
                    Vec::new()
                }
            }
        }
        .boxed()
    }

    fn delete(&self, path: &DavPath) -> LsFuture<'_, Result<(), ()>> {
        let path = self.parse(path);
        async move {
            let path = path.ok_or(())?;
            self.platform
                .dav_forget(&self.org, &path)
                .await
                .map_err(|_| ())
        }
        .boxed()
    }
}
