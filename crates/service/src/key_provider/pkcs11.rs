//! An HSM through PKCS#11: the key-encryption key and the signing key of
//! each epoch are made inside the token, sensitive and not extractable, and
//! every wrap, unwrap and signature happens there. The audit key is an HMAC
//! the HSM computes with a secret it keeps; the platform holds the result,
//! since every audit record's link needs it.
//!
//! Keys are found by label, `{prefix}-{purpose}-{epoch}` (`nuage-kek-2`),
//! and made by [`KeyProvider::create_key`] when an epoch starts. A wrapped
//! organisation key is stored as `{epoch}:` and the base64 of the GCM nonce
//! (12 bytes), the wrapped key (32) and the tag (16); the organisation's id
//! is the associated data, as with the file provider.
//!
//! The PKCS#11 library is loaded and initialised once per process; the
//! provider keeps one logged-in session, and each call runs on a blocking
//! thread (an HSM call may take milliseconds).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use aes_gcm::aead::OsRng;
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as Pkcs11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use nuage_domain::ids::OrgId;
use nuage_domain::platform_key::{KeyPurpose, join_wrapped, split_wrapped};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::KeyProvider;
use crate::error::{ServiceError, ServiceResult};

/// Where the HSM is and how to log in to it.
#[derive(Clone)]
pub struct Pkcs11Settings {
    /// The vendor's PKCS#11 library (SoftHSM2: `/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// The token's label.
    pub token_label: String,
    /// The user PIN.
    pub pin: SecretString,
    /// What the platform's keys' labels start with.
    pub label_prefix: String,
}

impl std::fmt::Debug for Pkcs11Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Settings")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("label_prefix", &self.label_prefix)
            .finish_non_exhaustive()
    }
}

/// The platform's keys in an HSM.
pub struct Pkcs11KeyProvider {
    session: Arc<Mutex<Session>>,
    token_label: String,
    prefix: String,
    audit_keys: Mutex<HashMap<u32, [u8; 32]>>,
}

impl std::fmt::Debug for Pkcs11KeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11KeyProvider")
            .field("token_label", &self.token_label)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The Ed25519 curve's name, as PKCS#11's CKA_EC_PARAMS gives it.
const ED25519_PARAMS: &[u8] = b"\x13\x0cedwards25519";

/// What the HMAC that gives the audit key of an epoch is computed over.
const AUDIT_KEY_INPUT: &[u8] = b"nuage audit key v1";

fn failed(what: &str, e: Pkcs11Error) -> ServiceError {
    ServiceError::Internal(format!("the HSM refused to {what}: {e}"))
}

/// The library, loaded and initialised once per process (a PKCS#11 library's
/// state is the process's).
fn context(module: &Path) -> ServiceResult<Pkcs11> {
    static LOADED: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut loaded = LOADED
        .get_or_init(Default::default)
        .lock()
        .expect("the PKCS#11 libraries' lock");
    if let Some(context) = loaded.get(module) {
        return Ok(context.clone());
    }
    let context = Pkcs11::new(module).map_err(|e| {
        ServiceError::Internal(format!(
            "cannot load the PKCS#11 library {}: {e}",
            module.display()
        ))
    })?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(failed("initialise", e)),
    }
    loaded.insert(module.to_owned(), context.clone());
    Ok(context)
}

impl Pkcs11KeyProvider {
    /// Opens a session on the token and logs in.
    pub fn open(settings: &Pkcs11Settings) -> ServiceResult<Self> {
        let context = context(&settings.module)?;
        let slot = context
            .get_slots_with_token()
            .map_err(|e| failed("list its slots", e))?
            .into_iter()
            .find(|slot| {
                context
                    .get_token_info(*slot)
                    .is_ok_and(|t| t.label() == settings.token_label)
            })
            .ok_or_else(|| {
                ServiceError::Internal(format!(
                    "the PKCS#11 library {} has no token labelled {:?}",
                    settings.module.display(),
                    settings.token_label
                ))
            })?;
        let session = context
            .open_rw_session(slot)
            .map_err(|e| failed("open a session", e))?;
        let pin = AuthPin::from(settings.pin.expose_secret().to_owned());
        match session.login(UserType::User, Some(&pin)) {
            // Logging in is per process and token: another provider of this
            // process may have done it.
            Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(failed("log in (check the PIN)", e)),
        }
        Ok(Self {
            session: Arc::new(Mutex::new(session)),
            token_label: settings.token_label.clone(),
            prefix: settings.label_prefix.clone(),
            audit_keys: Mutex::new(HashMap::new()),
        })
    }

    fn label(&self, purpose: KeyPurpose, epoch: u32) -> Vec<u8> {
        format!("{}-{}-{epoch}", self.prefix, purpose.as_str()).into_bytes()
    }

    /// Runs `work` with the session on a blocking thread.
    async fn with_session<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Session) -> ServiceResult<T> + Send + 'static,
    ) -> ServiceResult<T> {
        let session = self.session.clone();
        tokio::task::spawn_blocking(move || work(&session.lock().expect("the HSM session's lock")))
            .await
            .map_err(|e| ServiceError::Internal(format!("an HSM call failed: {e}")))?
    }
}

/// The one object of `class` labelled `label`, if any.
fn find(
    session: &Session,
    class: ObjectClass,
    label: &[u8],
) -> ServiceResult<Option<ObjectHandle>> {
    let found = session
        .find_objects(&[Attribute::Class(class), Attribute::Label(label.to_vec())])
        .map_err(|e| failed("search its keys", e))?;
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(ServiceError::Internal(format!(
            "the HSM holds several keys labelled {}: remove the extra ones",
            String::from_utf8_lossy(label)
        ))),
    }
}

fn require(session: &Session, class: ObjectClass, label: &[u8]) -> ServiceResult<ObjectHandle> {
    find(session, class, label)?.ok_or_else(|| {
        ServiceError::Internal(format!(
            "the HSM has no key labelled {}",
            String::from_utf8_lossy(label)
        ))
    })
}

/// Attributes every key the platform makes in the HSM has: kept on the
/// token, usable after login only, never readable or exportable.
fn kept(label: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Label(label.to_vec()),
    ]
}

fn public_key(session: &Session, label: &[u8]) -> ServiceResult<[u8; 32]> {
    let public = require(session, ObjectClass::PUBLIC_KEY, label)?;
    let point = session
        .get_attributes(public, &[AttributeType::EcPoint])
        .map_err(|e| failed("read a public key", e))?;
    match point.as_slice() {
        // A DER OCTET STRING of the 32 bytes.
        [Attribute::EcPoint(p)] if p.len() == 34 && p[..2] == [0x04, 0x20] => {
            Ok(p[2..].try_into().expect("32 bytes"))
        }
        _ => Err(ServiceError::Internal(format!(
            "the HSM's key {} is not an Ed25519 key",
            String::from_utf8_lossy(label)
        ))),
    }
}

#[async_trait]
impl KeyProvider for Pkcs11KeyProvider {
    fn kind(&self) -> &'static str {
        "pkcs11"
    }

    async fn create_key(&self, purpose: KeyPurpose, epoch: u32) -> ServiceResult<()> {
        let label = self.label(purpose, epoch);
        self.with_session(move |session| {
            let class = match purpose {
                KeyPurpose::Signing => ObjectClass::PRIVATE_KEY,
                _ => ObjectClass::SECRET_KEY,
            };
            if find(session, class, &label)?.is_some() {
                return Ok(());
            }
            let mut attributes = kept(&label);
            match purpose {
                KeyPurpose::Kek => {
                    attributes.extend([
                        Attribute::Class(ObjectClass::SECRET_KEY),
                        Attribute::KeyType(KeyType::AES),
                        Attribute::ValueLen(32.into()),
                        Attribute::Encrypt(true),
                        Attribute::Decrypt(true),
                        // A key-encryption key does nothing else.
                        Attribute::Sign(false),
                        Attribute::Verify(false),
                        Attribute::Wrap(false),
                        Attribute::Unwrap(false),
                    ]);
                    session.generate_key(&Mechanism::AesKeyGen, &attributes)
                }
                KeyPurpose::Audit => {
                    attributes.extend([
                        Attribute::Class(ObjectClass::SECRET_KEY),
                        Attribute::KeyType(KeyType::GENERIC_SECRET),
                        Attribute::ValueLen(32.into()),
                        Attribute::Sign(true),
                        Attribute::Encrypt(false),
                        Attribute::Decrypt(false),
                    ]);
                    session.generate_key(&Mechanism::GenericSecretKeyGen, &attributes)
                }
                KeyPurpose::Signing => {
                    attributes.push(Attribute::Sign(true));
                    let public = [
                        Attribute::Token(true),
                        Attribute::Private(false),
                        Attribute::Verify(true),
                        Attribute::Label(label.clone()),
                        Attribute::EcParams(ED25519_PARAMS.to_vec()),
                    ];
                    session
                        .generate_key_pair(&Mechanism::EccEdwardsKeyPairGen, &public, &attributes)
                        .map(|(_, private)| private)
                }
            }
            .map(|_| ())
            .map_err(|e| failed("make a key", e))
        })
        .await
    }

    async fn wrap_org_key(&self, org: &OrgId, key: &[u8; 32], epoch: u32) -> ServiceResult<String> {
        let label = self.label(KeyPurpose::Kek, epoch);
        let aad = org.to_string();
        let key = *key;
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .with_session(move |session| {
                let kek = require(session, ObjectClass::SECRET_KEY, &label)?;
                let mut iv = nonce;
                let params = GcmParams::new(&mut iv, aad.as_bytes(), 128.into())
                    .map_err(|e| failed("take the wrap's parameters", e))?;
                session
                    .encrypt(&Mechanism::AesGcm(params), kek, &key)
                    .map_err(|e| failed("wrap an organisation key", e))
            })
            .await?;
        Ok(join_wrapped(
            epoch,
            &B64.encode([nonce.as_slice(), &sealed].concat()),
        ))
    }

    async fn unwrap_org_key(&self, org: &OrgId, wrapped: &str) -> ServiceResult<[u8; 32]> {
        let (epoch, text) = split_wrapped(wrapped)?;
        let bytes = B64
            .decode(text)
            .ok()
            .filter(|b| epoch > 0 && b.len() == 12 + 32 + 16)
            .ok_or_else(|| ServiceError::Internal("a wrapped key is malformed".into()))?;
        let label = self.label(KeyPurpose::Kek, epoch);
        let aad = org.to_string();
        let key = self
            .with_session(move |session| {
                let kek = require(session, ObjectClass::SECRET_KEY, &label)?;
                let mut iv: [u8; 12] = bytes[..12].try_into().expect("12 bytes");
                let params = GcmParams::new(&mut iv, aad.as_bytes(), 128.into())
                    .map_err(|e| failed("take the unwrap's parameters", e))?;
                // The HSM says no more than "general error" when the tag
                // does not match.
                session
                    .decrypt(&Mechanism::AesGcm(params), kek, &bytes[12..])
                    .map_err(|_| {
                        ServiceError::Internal(format!(
                            "an organisation key does not unwrap with the key-encryption key of epoch {epoch}"
                        ))
                    })
            })
            .await?;
        key.try_into()
            .map_err(|_| ServiceError::Internal("an organisation key is not 32 bytes".into()))
    }

    async fn sign(&self, epoch: u32, message: &[u8]) -> ServiceResult<[u8; 64]> {
        let label = self.label(KeyPurpose::Signing, epoch);
        let message = message.to_vec();
        let signature = self
            .with_session(move |session| {
                let private = require(session, ObjectClass::PRIVATE_KEY, &label)?;
                session
                    .sign(
                        &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                        private,
                        &message,
                    )
                    .map_err(|e| failed("sign", e))
            })
            .await?;
        signature
            .try_into()
            .map_err(|_| ServiceError::Internal("the HSM's signature is not 64 bytes".into()))
    }

    async fn signing_public_key(&self, epoch: u32) -> ServiceResult<[u8; 32]> {
        let label = self.label(KeyPurpose::Signing, epoch);
        self.with_session(move |session| public_key(session, &label))
            .await
    }

    fn audit_key(&self, epoch: u32) -> ServiceResult<[u8; 32]> {
        if let Some(key) = self
            .audit_keys
            .lock()
            .expect("audit keys' lock")
            .get(&epoch)
        {
            return Ok(*key);
        }
        // Once per epoch and process, and quick: taken on the caller's thread.
        let label = self.label(KeyPurpose::Audit, epoch);
        let session = self.session.lock().expect("the HSM session's lock");
        let secret = require(&session, ObjectClass::SECRET_KEY, &label)?;
        let key: [u8; 32] = session
            .sign(&Mechanism::Sha256Hmac, secret, AUDIT_KEY_INPUT)
            .map_err(|e| failed("give the audit key", e))?
            .try_into()
            .map_err(|_| ServiceError::Internal("the HSM's HMAC is not 32 bytes".into()))?;
        drop(session);
        self.audit_keys
            .lock()
            .expect("audit keys' lock")
            .insert(epoch, key);
        Ok(key)
    }

    async fn fingerprint(&self, purpose: KeyPurpose, epoch: u32) -> ServiceResult<String> {
        let digest = match purpose {
            KeyPurpose::Signing => Sha256::digest(self.signing_public_key(epoch).await?),
            KeyPurpose::Audit => Sha256::digest(
                [
                    b"nuage key fingerprint v1".as_slice(),
                    &self.audit_key(epoch)?,
                ]
                .concat(),
            ),
            // The key's check value (its encryption of zeros, as the
            // token computes it) names it without revealing it.
            KeyPurpose::Kek => {
                let label = self.label(purpose, epoch);
                let check = self
                    .with_session(move |session| {
                        let kek = require(session, ObjectClass::SECRET_KEY, &label)?;
                        match session
                            .get_attributes(kek, &[AttributeType::CheckValue])
                            .map_err(|e| failed("read a key's check value", e))?
                            .as_slice()
                        {
                            [Attribute::CheckValue(v)] => Ok(v.clone()),
                            _ => Err(ServiceError::Internal(
                                "the HSM gives no check value for the key-encryption key".into(),
                            )),
                        }
                    })
                    .await?;
                Sha256::digest(
                    [
                        b"nuage key fingerprint v1".as_slice(),
                        self.token_label.as_bytes(),
                        &epoch.to_be_bytes(),
                        &check,
                    ]
                    .concat(),
                )
            }
        };
        Ok(hex::encode(&digest[..16]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key_provider::tests::contract;

    /// The SoftHSM2 token nextest's setup script made for the run
    /// (scripts/ensure-softhsm); `prefix` keeps this test's keys apart.
    pub(crate) fn softhsm(prefix: &str) -> Pkcs11Settings {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: run the tests with cargo nextest, whose setup script scripts/ensure-softhsm makes the token")
            })
        };
        Pkcs11Settings {
            module: PathBuf::from(var("SOFTHSM_TEST_MODULE")),
            token_label: var("SOFTHSM_TEST_TOKEN"),
            pin: "1234".to_owned().into(),
            label_prefix: prefix.to_owned(),
        }
    }

    #[tokio::test]
    async fn an_hsm_wraps_signs_and_never_gives_its_keys_out() {
        let prefix = format!("unit-{}", uuid::Uuid::new_v4().simple());
        let settings = softhsm(&prefix);
        let hsm = Pkcs11KeyProvider::open(&settings).expect("the token opens");
        let other = Pkcs11KeyProvider::open(&Pkcs11Settings {
            label_prefix: format!("{prefix}-other"),
            ..settings.clone()
        })
        .expect("the token opens twice");
        assert_eq!(hsm.kind(), "pkcs11");
        // Keys do not exist before their epoch starts.
        assert!(hsm.sign(1, b"early").await.is_err());
        assert!(hsm.audit_key(1).is_err());
        for provider in [&hsm, &other] {
            for purpose in KeyPurpose::ALL {
                for epoch in [1, 2] {
                    provider.create_key(purpose, epoch).await.expect("made");
                    // Starting an epoch twice makes nothing more.
                    provider.create_key(purpose, epoch).await.expect("found");
                }
            }
        }
        contract(&hsm, &other).await;

        // The key-encryption and signing keys are sensitive and were never
        // extractable: their value cannot be read out.
        let session = hsm.session.lock().expect("session");
        for (class, purpose) in [
            (ObjectClass::SECRET_KEY, KeyPurpose::Kek),
            (ObjectClass::PRIVATE_KEY, KeyPurpose::Signing),
            (ObjectClass::SECRET_KEY, KeyPurpose::Audit),
        ] {
            let label = String::from_utf8(hsm.label(purpose, 1)).expect("utf-8");
            let key = require(&session, class, label.as_bytes()).expect("the key");
            let flags = session
                .get_attributes(
                    key,
                    &[AttributeType::Sensitive, AttributeType::NeverExtractable],
                )
                .expect("attributes");
            assert!(
                matches!(
                    flags.as_slice(),
                    [
                        Attribute::Sensitive(true),
                        Attribute::NeverExtractable(true)
                    ]
                ),
                "{label}: {flags:?}"
            );
            let value = session.get_attributes(key, &[AttributeType::Value]);
            assert!(
                !matches!(value.as_deref(), Ok([Attribute::Value(_)])),
                "{label}'s value was read out: {value:?}"
            );
        }
        // A token that is not there is refused, saying so.
        drop(session);
        let wrong = Pkcs11KeyProvider::open(&Pkcs11Settings {
            token_label: "no-such-token".into(),
            ..settings
        })
        .expect_err("no such token");
        assert!(wrong.to_string().contains("no token labelled"), "{wrong}");
        assert!(!format!("{hsm:?}").contains("1234"));
    }
}
