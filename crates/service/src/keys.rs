//! The master key and the keys derived from it.
//!
//! The master key is 32 random bytes in a file readable by its owner only. It
//! never leaves this module: HKDF-SHA256 derives one key per purpose and
//! epoch (sealing secrets at rest; the key-encryption key, the audit chain's
//! key and the signing key of each epoch), and its fingerprint in the
//! database makes a node holding another key refuse to start against the
//! same database.

use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, OsRng};
use aes_gcm::{AeadCore, Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::SigningKey;
use hkdf::Hkdf;
use nuage_domain::platform_key::KeyPurpose;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{ServiceError, ServiceResult};

/// The platform's root secret and the keys derived from it.
pub struct MasterKey {
    derivation: Hkdf<Sha256>,
    sealing: Aes256Gcm,
    fingerprint: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// What happened when the key file was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    Loaded,
    Generated,
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        let derivation = Hkdf::<Sha256>::new(Some(b"nuage master key v1"), bytes);
        let sealing_key = expand(&derivation, b"seal secrets at rest");
        Self {
            derivation,
            sealing: Aes256Gcm::new(&sealing_key.into()),
            fingerprint: hex::encode(
                &Sha256::digest([b"nuage master key fingerprint v1".as_slice(), bytes].concat())
                    [..16],
            ),
        }
    }

    /// Opens the key file, or creates it (mode 0600) with a fresh key when it
    /// does not exist. A key file readable by others is refused.
    pub fn load_or_generate(path: &Path) -> ServiceResult<(Self, KeyOrigin)> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_private(path)?;
                let bytes = hex::decode(text.trim())
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| {
                        ServiceError::Internal(format!(
                            "{} does not hold a master key (64 hex digits)",
                            path.display()
                        ))
                    })?;
                Ok((Self::from_bytes(&bytes), KeyOrigin::Loaded))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                OsRng.fill_bytes(&mut bytes);
                // Nodes starting together on one data directory must not
                // replace each other's key: the first file created wins, and
                // the others load it.
                if !create_private(path, hex::encode(bytes).as_bytes())? {
                    return Self::load_or_generate(path);
                }
                Ok((Self::from_bytes(&bytes), KeyOrigin::Generated))
            }
            Err(e) => Err(ServiceError::Internal(format!(
                "cannot read the master key file {}: {e}",
                path.display()
            ))),
        }
    }

    /// A short public fingerprint that identifies the key without revealing it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The key of `purpose` at `epoch`. Epoch 1 of the audit and signing
    /// keys is what the master key derived before keys had epochs, so links
    /// and signatures made then still check.
    pub(crate) fn derive(&self, purpose: KeyPurpose, epoch: u32) -> [u8; 32] {
        let info = match (purpose, epoch) {
            (KeyPurpose::Audit, 1) => b"audit chain links".to_vec(),
            (KeyPurpose::Signing, 1) => b"platform signing key".to_vec(),
            (KeyPurpose::Kek, _) => {
                format!("organisation key-encryption key/epoch {epoch}").into_bytes()
            }
            (KeyPurpose::Audit, _) => format!("audit chain links/epoch {epoch}").into_bytes(),
            (KeyPurpose::Signing, _) => format!("platform signing key/epoch {epoch}").into_bytes(),
        };
        expand(&self.derivation, &info)
    }

    /// The signing key of `epoch`.
    pub(crate) fn signing_key(&self, epoch: u32) -> SigningKey {
        SigningKey::from_bytes(&self.derive(KeyPurpose::Signing, epoch))
    }

    /// Encrypts a secret for storage (AES-256-GCM, random nonce), as base64.
    pub fn seal(&self, plaintext: &[u8]) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        out.extend(
            self.sealing
                .encrypt(&nonce, plaintext)
                .expect("AES-GCM encrypts any input below 64 GiB"),
        );
        B64.encode(out)
    }

    pub fn open(&self, sealed: &str) -> ServiceResult<Vec<u8>> {
        let bytes = B64
            .decode(sealed)
            .map_err(|_| ServiceError::Internal("a sealed secret is not base64".into()))?;
        if bytes.len() < 12 {
            return Err(ServiceError::Internal(
                "a sealed secret is truncated".into(),
            ));
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        self.sealing
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| {
                ServiceError::Internal("a sealed secret does not open with this master key".into())
            })
    }
}

fn expand(derivation: &Hkdf<Sha256>, info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    derivation
        .expand(info, &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

#[cfg(unix)]
fn check_private(path: &Path) -> ServiceResult<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| ServiceError::Internal(format!("cannot stat {}: {e}", path.display())))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(ServiceError::Internal(format!(
            "{} is readable by other users (mode {:o}); run chmod 600 on it",
            path.display(),
            mode & 0o777
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> ServiceResult<()> {
    Ok(())
}

/// Creates a file readable by its owner only, whole or not at all, unless it
/// exists already (then returns false and changes nothing).
fn create_private(path: &Path, contents: &[u8]) -> ServiceResult<bool> {
    let tmp = path.with_extension(format!("new-{}", std::process::id()));
    write_private(&tmp, contents)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(ServiceError::Internal(format!(
            "cannot create {}: {e}",
            path.display()
        ))),
    }
}

/// Writes a new file readable by its owner only, atomically (temp + rename).
pub fn write_private(path: &Path, contents: &[u8]) -> ServiceResult<()> {
    let fail =
        |e: std::io::Error| ServiceError::Internal(format!("cannot write {}: {e}", path.display()));
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(fail)?;
    file.write_all(contents).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)?;
    Ok(())
}

/// Random secrets and their digests.
pub mod secret {
    use rand::RngCore;
    use sha2::{Digest, Sha256};

    /// `bytes` random bytes, base32 (no padding, lower case): URL- and shell-safe.
    pub fn random_token(bytes: usize) -> String {
        let mut buf = vec![0u8; bytes];
        rand::rngs::OsRng.fill_bytes(&mut buf);
        data_encoding::BASE32_NOPAD
            .encode(&buf)
            .to_ascii_lowercase()
    }

    pub fn sha256_hex(value: &str) -> String {
        hex::encode(Sha256::digest(value.as_bytes()))
    }

    /// Compares two strings in constant time.
    pub fn constant_time_eq(a: &str, b: &str) -> bool {
        a.len() == b.len()
            && a.bytes()
                .zip(b.bytes())
                .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_the_same_key() {
        let a = MasterKey::from_bytes(&[1; 32]);
        let b = MasterKey::from_bytes(&[2; 32]);
        let sealed = a.seal(b"secret");
        assert!(!sealed.contains("secret"));
        assert_eq!(a.open(&sealed).ok(), Some(b"secret".to_vec()));
        assert!(b.open(&sealed).is_err());
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    /// Epoch 1 of the audit and signing keys is what the master key
    /// derived before keys had epochs: links and signatures made then
    /// still check. Later epochs are other keys.
    #[test]
    fn the_first_epoch_is_the_key_derived_before_epochs() {
        let bytes = [5; 32];
        let before = Hkdf::<Sha256>::new(Some(b"nuage master key v1"), &bytes);
        let key = MasterKey::from_bytes(&bytes);
        assert_eq!(
            key.derive(KeyPurpose::Audit, 1),
            expand(&before, b"audit chain links")
        );
        assert_eq!(
            key.signing_key(1).to_bytes(),
            expand(&before, b"platform signing key")
        );
        for purpose in KeyPurpose::ALL {
            assert_ne!(key.derive(purpose, 1), key.derive(purpose, 2));
        }
        assert_ne!(
            key.derive(KeyPurpose::Kek, 1),
            expand(&before, b"seal secrets at rest"),
            "organisation keys are not wrapped with the key that seals other secrets"
        );
    }

    #[test]
    fn generated_key_file_is_private_and_reloads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("master.key");
        let (k1, origin) = MasterKey::load_or_generate(&path).expect("generate");
        assert_eq!(origin, KeyOrigin::Generated);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
                0o600
            );
        }
        let (k2, origin) = MasterKey::load_or_generate(&path).expect("load");
        assert_eq!(origin, KeyOrigin::Loaded);
        assert_eq!(k1.fingerprint(), k2.fingerprint());
        let stored = std::fs::read_to_string(&path).expect("read key");
        assert!(
            !format!("{k1:?}").contains(stored.trim()),
            "Debug must not show the key"
        );
    }
}
