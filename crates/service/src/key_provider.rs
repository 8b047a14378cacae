//! Where organisations' keys are protected: the seam behind which a
//! key-encryption key lives. An organisation's key (which wraps the data
//! key of each of its objects) is stored in the database only wrapped by a
//! provider; only the provider unwraps it.
//!
//! [`FileKeyProvider`], the master key file, is the embedded default. An
//! HSM (PKCS#11) or the organisation's own KMS (KMIP) plug in here: each
//! call may leave the machine, so the trait is async, and its errors are
//! the provider's to explain.

use std::sync::Arc;

use async_trait::async_trait;
use nuage_domain::ids::OrgId;

use crate::error::{ServiceError, ServiceResult};
use crate::keys::MasterKey;

/// Wraps and unwraps organisations' keys.
#[async_trait]
pub trait KeyProvider: Send + Sync + std::fmt::Debug {
    /// The provider's kind, as the operator configures it (`file` today).
    fn kind(&self) -> &'static str;

    /// `key` wrapped for `org`, to store.
    async fn wrap_org_key(&self, org: &OrgId, key: &[u8; 32]) -> ServiceResult<String>;

    /// The key that [`KeyProvider::wrap_org_key`] wrapped for `org`.
    async fn unwrap_org_key(&self, org: &OrgId, wrapped: &str) -> ServiceResult<[u8; 32]>;
}

/// The master key file as the key-encryption key (AES-256-GCM, a key
/// derived from the master key, as every secret sealed at rest).
#[derive(Debug, Clone)]
pub struct FileKeyProvider {
    master: Arc<MasterKey>,
}

impl FileKeyProvider {
    pub fn new(master: Arc<MasterKey>) -> Self {
        Self { master }
    }
}

#[async_trait]
impl KeyProvider for FileKeyProvider {
    fn kind(&self) -> &'static str {
        "file"
    }

    async fn wrap_org_key(&self, _org: &OrgId, key: &[u8; 32]) -> ServiceResult<String> {
        Ok(self.master.seal(key))
    }

    async fn unwrap_org_key(&self, _org: &OrgId, wrapped: &str) -> ServiceResult<[u8; 32]> {
        self.master
            .open(wrapped)?
            .try_into()
            .map_err(|_| ServiceError::Internal("an organisation key is not 32 bytes".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What every provider must do; a new provider runs it too.
    async fn contract(provider: &dyn KeyProvider, other: &dyn KeyProvider) {
        let org = OrgId::new();
        let key = [7u8; 32];
        let wrapped = provider.wrap_org_key(&org, &key).await.expect("wrap");
        assert!(
            !wrapped.contains(&hex::encode(key)),
            "the key shows through"
        );
        assert_eq!(
            provider
                .unwrap_org_key(&org, &wrapped)
                .await
                .expect("unwrap"),
            key
        );
        // Wrapping twice gives two texts (a fresh nonce), both good.
        let again = provider.wrap_org_key(&org, &key).await.expect("wrap");
        assert_ne!(again, wrapped);
        assert_eq!(
            provider.unwrap_org_key(&org, &again).await.expect("unwrap"),
            key
        );
        // Another provider's key does not unwrap it; nor does damage.
        assert!(other.unwrap_org_key(&org, &wrapped).await.is_err());
        let mut damaged = wrapped.into_bytes();
        let last = damaged.len() - 3;
        damaged[last] = if damaged[last] == b'A' { b'B' } else { b'A' };
        let damaged = String::from_utf8(damaged).expect("base64 stays ASCII");
        assert!(provider.unwrap_org_key(&org, &damaged).await.is_err());
    }

    #[tokio::test]
    async fn the_master_key_file_wraps_organisation_keys() {
        let one = FileKeyProvider::new(Arc::new(MasterKey::from_bytes(&[1; 32])));
        let two = FileKeyProvider::new(Arc::new(MasterKey::from_bytes(&[2; 32])));
        assert_eq!(one.kind(), "file");
        contract(&one, &two).await;
    }

    /// Organisation keys wrapped before the seam existed (sealed with the
    /// master key) still unwrap: no stored key changes.
    #[tokio::test]
    async fn keys_sealed_before_the_seam_still_unwrap() {
        let master = Arc::new(MasterKey::from_bytes(&[3; 32]));
        let stored = master.seal(&[9; 32]);
        let provider = FileKeyProvider::new(master);
        assert_eq!(
            provider
                .unwrap_org_key(&OrgId::new(), &stored)
                .await
                .expect("unwrap"),
            [9; 32]
        );
    }
}
