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

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Nonce};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::Signer;
use nuage_domain::ids::OrgId;
use nuage_domain::platform_key::{KeyPurpose, join_wrapped, split_wrapped};
use sha2::{Digest, Sha256};

use crate::error::{ServiceError, ServiceResult};
use crate::keys::MasterKey;

pub mod kmip;
pub mod pkcs11;

/// Holds the platform's keys of each purpose and epoch, and does with them
/// what must not happen outside it: wrap and unwrap organisations' keys,
/// sign. A provider that keeps its keys in hardware never hands them out;
/// the audit chain's key is the one secret it gives the platform (every
/// record's link is computed with it, too often for a round trip).
#[async_trait]
pub trait KeyProvider: Send + Sync + std::fmt::Debug {
    /// The provider's kind, as the operator configures it (`file`,
    /// `pkcs11`).
    fn kind(&self) -> &'static str;

    /// Makes the key of `purpose` at `epoch` unless it exists, as the epoch
    /// starts. A provider whose keys derive from one secret has nothing to
    /// make.
    async fn create_key(&self, _purpose: KeyPurpose, _epoch: u32) -> ServiceResult<()> {
        Ok(())
    }

    /// `key` wrapped for `org` by the key-encryption key of `epoch` (at
    /// least 1), in the stored form that names the epoch
    /// ([`join_wrapped`]).
    async fn wrap_org_key(&self, org: &OrgId, key: &[u8; 32], epoch: u32) -> ServiceResult<String>;

    /// The key that [`KeyProvider::wrap_org_key`] wrapped for `org`, at
    /// whichever epoch it names.
    async fn unwrap_org_key(&self, org: &OrgId, wrapped: &str) -> ServiceResult<[u8; 32]>;

    /// Signs with the signing key of `epoch` (Ed25519).
    async fn sign(&self, epoch: u32, message: &[u8]) -> ServiceResult<[u8; 64]>;

    /// The public half of the signing key of `epoch`.
    async fn signing_public_key(&self, epoch: u32) -> ServiceResult<[u8; 32]>;

    /// The audit chain's key of `epoch`.
    fn audit_key(&self, epoch: u32) -> ServiceResult<[u8; 32]>;

    /// A public fingerprint of the key of `purpose` at `epoch`, which names
    /// it without revealing it: 16 bytes of SHA-256, as hex, of the public
    /// key for signing keys, of a keyed digest for the others.
    async fn fingerprint(&self, purpose: KeyPurpose, epoch: u32) -> ServiceResult<String>;
}

/// The master key file holds every key: each purpose and epoch is derived
/// from it ([`MasterKey`]). Organisation keys are wrapped with AES-256-GCM,
/// the organisation's id as associated data (a wrapped key copied to
/// another organisation does not open).
#[derive(Debug, Clone)]
pub struct FileKeyProvider {
    master: Arc<MasterKey>,
}

impl FileKeyProvider {
    pub fn new(master: Arc<MasterKey>) -> Self {
        Self { master }
    }

    fn kek(&self, epoch: u32) -> Aes256Gcm {
        Aes256Gcm::new(&self.master.derive(KeyPurpose::Kek, epoch).into())
    }
}

#[async_trait]
impl KeyProvider for FileKeyProvider {
    fn kind(&self) -> &'static str {
        "file"
    }

    async fn wrap_org_key(&self, org: &OrgId, key: &[u8; 32], epoch: u32) -> ServiceResult<String> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = org.to_string();
        let sealed = self
            .kek(epoch)
            .encrypt(
                &nonce,
                Payload {
                    msg: key,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| ServiceError::Internal("an organisation key did not wrap".into()))?;
        Ok(join_wrapped(
            epoch,
            &B64.encode([nonce.as_slice(), &sealed].concat()),
        ))
    }

    async fn unwrap_org_key(&self, org: &OrgId, wrapped: &str) -> ServiceResult<[u8; 32]> {
        let (epoch, text) = split_wrapped(wrapped)?;
        let key = if epoch == 0 {
            // Sealed with the master key's sealing key, before epochs.
            self.master.open(text)?
        } else {
            let bytes = B64
                .decode(text)
                .ok()
                .filter(|b| b.len() > 12)
                .ok_or_else(|| ServiceError::Internal("a wrapped key is malformed".into()))?;
            let (nonce, sealed) = bytes.split_at(12);
            let aad = org.to_string();
            self.kek(epoch)
                .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: aad.as_bytes() })
                .map_err(|_| {
                    ServiceError::Internal(format!(
                        "an organisation key does not unwrap with the key-encryption key of epoch {epoch}"
                    ))
                })?
        };
        key.try_into()
            .map_err(|_| ServiceError::Internal("an organisation key is not 32 bytes".into()))
    }

    async fn sign(&self, epoch: u32, message: &[u8]) -> ServiceResult<[u8; 64]> {
        Ok(self.master.signing_key(epoch).sign(message).to_bytes())
    }

    async fn signing_public_key(&self, epoch: u32) -> ServiceResult<[u8; 32]> {
        Ok(self.master.signing_key(epoch).verifying_key().to_bytes())
    }

    fn audit_key(&self, epoch: u32) -> ServiceResult<[u8; 32]> {
        Ok(self.master.derive(KeyPurpose::Audit, epoch))
    }

    async fn fingerprint(&self, purpose: KeyPurpose, epoch: u32) -> ServiceResult<String> {
        let digest = match purpose {
            KeyPurpose::Signing => Sha256::digest(self.signing_public_key(epoch).await?),
            _ => Sha256::digest(
                [
                    b"nuage key fingerprint v1".as_slice(),
                    &self.master.derive(purpose, epoch),
                ]
                .concat(),
            ),
        };
        Ok(hex::encode(&digest[..16]))
    }
}

/// The platform's keys across providers: each epoch is served by the
/// provider that made it (as `platform_keys` records), and a new epoch by
/// the configured one. Moving the keys into an HSM is configuring it and
/// rotating: the epochs the master key file made stay readable with it.
#[derive(Debug)]
pub struct KeyRing {
    file: FileKeyProvider,
    active: Arc<dyn KeyProvider>,
    recorded: std::sync::RwLock<std::collections::HashMap<(KeyPurpose, u32), String>>,
}

impl KeyRing {
    /// `active` makes new epochs; the master key file serves the epochs it
    /// made (and keys sealed before epochs existed).
    pub fn new(file: FileKeyProvider, active: Option<Arc<dyn KeyProvider>>) -> Self {
        let active = active.unwrap_or_else(|| Arc::new(file.clone()));
        Self {
            file,
            active,
            recorded: Default::default(),
        }
    }

    /// Records which provider made an epoch.
    pub fn record(&self, purpose: KeyPurpose, epoch: u32, provider: &str) {
        self.recorded
            .write()
            .expect("the key ring's lock")
            .insert((purpose, epoch), provider.to_owned());
    }

    fn serving(&self, purpose: KeyPurpose, epoch: u32) -> ServiceResult<&dyn KeyProvider> {
        let recorded = self.recorded.read().expect("the key ring's lock");
        match recorded.get(&(purpose, epoch)).map(String::as_str) {
            None => Ok(self.active.as_ref()),
            Some("file") => Ok(&self.file),
            Some(kind) if kind == self.active.kind() => Ok(self.active.as_ref()),
            Some(kind) => Err(ServiceError::Internal(format!(
                "epoch {epoch} of the {} key is in the {kind} key provider, which this node is not configured with",
                purpose.as_str()
            ))),
        }
    }
}

#[async_trait]
impl KeyProvider for KeyRing {
    fn kind(&self) -> &'static str {
        self.active.kind()
    }

    async fn create_key(&self, purpose: KeyPurpose, epoch: u32) -> ServiceResult<()> {
        self.serving(purpose, epoch)?
            .create_key(purpose, epoch)
            .await
    }

    async fn wrap_org_key(&self, org: &OrgId, key: &[u8; 32], epoch: u32) -> ServiceResult<String> {
        self.serving(KeyPurpose::Kek, epoch)?
            .wrap_org_key(org, key, epoch)
            .await
    }

    async fn unwrap_org_key(&self, org: &OrgId, wrapped: &str) -> ServiceResult<[u8; 32]> {
        match split_wrapped(wrapped)?.0 {
            0 => self.file.unwrap_org_key(org, wrapped).await,
            epoch => {
                self.serving(KeyPurpose::Kek, epoch)?
                    .unwrap_org_key(org, wrapped)
                    .await
            }
        }
    }

    async fn sign(&self, epoch: u32, message: &[u8]) -> ServiceResult<[u8; 64]> {
        self.serving(KeyPurpose::Signing, epoch)?
            .sign(epoch, message)
            .await
    }

    async fn signing_public_key(&self, epoch: u32) -> ServiceResult<[u8; 32]> {
        self.serving(KeyPurpose::Signing, epoch)?
            .signing_public_key(epoch)
            .await
    }

    fn audit_key(&self, epoch: u32) -> ServiceResult<[u8; 32]> {
        self.serving(KeyPurpose::Audit, epoch)?.audit_key(epoch)
    }

    async fn fingerprint(&self, purpose: KeyPurpose, epoch: u32) -> ServiceResult<String> {
        self.serving(purpose, epoch)?
            .fingerprint(purpose, epoch)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What every provider must do; a new provider runs it too.
    pub(super) async fn contract(provider: &dyn KeyProvider, other: &dyn KeyProvider) {
        let org = OrgId::new();
        let key = [7u8; 32];
        let wrapped = provider.wrap_org_key(&org, &key, 1).await.expect("wrap");
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
        let again = provider.wrap_org_key(&org, &key, 1).await.expect("wrap");
        assert_ne!(again, wrapped);
        assert_eq!(
            provider.unwrap_org_key(&org, &again).await.expect("unwrap"),
            key
        );
        // Another provider's key does not unwrap it, nor another
        // organisation's; nor does damage.
        assert!(other.unwrap_org_key(&org, &wrapped).await.is_err());
        assert!(
            provider
                .unwrap_org_key(&OrgId::new(), &wrapped)
                .await
                .is_err()
        );
        // Another epoch's key wraps differently; both unwrap, each with
        // its own epoch's key.
        let later = provider.wrap_org_key(&org, &key, 2).await.expect("wrap");
        assert_eq!(split_wrapped(&later).expect("epoch").0, 2);
        assert_eq!(
            provider.unwrap_org_key(&org, &later).await.expect("unwrap"),
            key
        );
        let swapped = join_wrapped(1, split_wrapped(&later).expect("epoch").1);
        assert!(provider.unwrap_org_key(&org, &swapped).await.is_err());
        // Signatures check with their epoch's public key only.
        let signature = provider.sign(1, b"receipt").await.expect("sign");
        let public = |epoch| async move {
            ed25519_dalek::VerifyingKey::from_bytes(
                &provider
                    .signing_public_key(epoch)
                    .await
                    .expect("public key"),
            )
            .expect("a point")
        };
        let signature = ed25519_dalek::Signature::from_bytes(&signature);
        assert!(
            public(1)
                .await
                .verify_strict(b"receipt", &signature)
                .is_ok()
        );
        assert!(
            public(2)
                .await
                .verify_strict(b"receipt", &signature)
                .is_err()
        );
        assert!(
            public(1)
                .await
                .verify_strict(b"receipt!", &signature)
                .is_err()
        );
        // Fingerprints differ by purpose and epoch, and show no key.
        let mut seen = std::collections::HashSet::new();
        for purpose in KeyPurpose::ALL {
            for epoch in [1, 2] {
                let fingerprint = provider
                    .fingerprint(purpose, epoch)
                    .await
                    .expect("fingerprint");
                assert_eq!(fingerprint.len(), 32);
                assert!(seen.insert(fingerprint), "{purpose:?} {epoch}");
            }
        }
        assert_ne!(
            provider.audit_key(1).expect("key"),
            provider.audit_key(2).expect("key")
        );
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
