//! Access keys: `s3s` asks for the secret of a key to check a signature; the
//! key's organisation is remembered for the operation that follows. The
//! database is asked on every request, so a revoked key stops at once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use nuage_domain::ids::OrgId;
use nuage_service::Platform;
use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Result, s3_error};

#[derive(Clone)]
pub struct KeyDirectory {
    platform: Platform,
    orgs: Arc<RwLock<HashMap<String, OrgId>>>,
}

impl KeyDirectory {
    pub fn new(platform: Platform) -> Self {
        Self {
            platform,
            orgs: Arc::new(RwLock::new(HashMap::new())),
        }
    }

    /// The organisation of a key whose signature was just checked.
    pub fn org_of(&self, access_key_id: &str) -> Option<OrgId> {
        self.orgs.read().expect("lock").get(access_key_id).copied()
    }
}

#[async_trait::async_trait]
impl S3Auth for KeyDirectory {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.platform.s3_credentials(access_key).await {
            Ok(Some((org, secret))) => {
                self.orgs
                    .write()
                    .expect("lock")
                    .insert(access_key.to_owned(), org);
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
