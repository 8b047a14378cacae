//! Access keys: `s3s` asks for the secret of a key to check a signature; the
//! key's organisation and purpose are remembered for the operation that
//! follows. The database is asked on every request, so a revoked or expired
//! key stops at once. Before any operation runs, [`S3Access`] refuses
//! what an export key may not do (anything but read); unsigned requests go
//! on to the one authorisation point, where only a bucket policy admits
//! them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use nuage_domain::ids::OrgId;
use nuage_domain::storage::KeyPurpose;
use nuage_service::Platform;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Result, s3_error};

#[derive(Clone)]
pub struct KeyDirectory {
    platform: Platform,
    orgs: Arc<RwLock<HashMap<String, (OrgId, KeyPurpose)>>>,
}

impl KeyDirectory {
    pub fn new(platform: Platform) -> Self {
        Self {
            platform,
            orgs: Arc::new(RwLock::new(HashMap::new())),
        }
    }

    /// The organisation and purpose of a key whose signature was just checked.
    pub fn org_of(&self, access_key_id: &str) -> Option<(OrgId, KeyPurpose)> {
        self.orgs.read().expect("lock").get(access_key_id).copied()
    }
}

#[async_trait::async_trait]
impl S3Auth for KeyDirectory {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.platform.s3_credentials(access_key).await {
            Ok(Some((org, secret, purpose))) => {
                self.orgs
                    .write()
                    .expect("lock")
                    .insert(access_key.to_owned(), (org, purpose));
                Ok(SecretKey::from(secret))
            }
            Ok(None) => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
            Err(e) => {
                tracing::error!(error = %e, "S3 key lookup failed");
                Err(s3_error!(InternalError))
            }
        }
    }
}

#[async_trait::async_trait]
impl S3Access for KeyDirectory {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        // An unsigned request goes on: only a bucket policy can let it
        // in, which the operation's `call` decides.
        let Some(creds) = cx.credentials() else {
            return Ok(());
        };
        match self.org_of(&creds.access_key) {
            Some((_, purpose)) if !purpose.allows(cx.s3_op().name()) => Err(s3_error!(
                AccessDenied,
                "This is an export key: it can only read and list."
            )),
            _ => Ok(()),
        }
    }
}
