//! Who holds an organisation's key. By default the platform wraps it with
//! its key-encryption key. An owner may instead have it wrapped by a key in
//! the organisation's own KMS, over KMIP with mutual TLS: Nuage then asks the
//! KMS to unwrap it, keeps it in memory for `keys.external_key_cache_seconds`
//! at most, and never holds the KMS's key. Revoking Nuage's access in the
//! KMS stops access to the content within that time; names, sizes and tags
//! are not under the customer's key and stay readable.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use nuage_db::repo::org_keys::{self as repo, CustodyRow};
use nuage_domain::error::DomainError;
use nuage_domain::ids::OrgId;
use nuage_domain::org::Permission;
use nuage_service::audit::AuditEvent;
use nuage_service::key_provider::kmip::{KeyState, KmipClient, KmipError, KmipSettings};
use nuage_service::{KeyProvider, Principal, RequestMeta, ServiceError, ServiceResult};
use rand::RngCore;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{Storage, StorageError, StorageResult, service};

/// How the platform proves who it is to organisations' KMSs.
#[derive(Clone)]
pub struct KmsIdentity {
    /// Its certificate and chain (PEM); a KMS grants access to it.
    pub cert_pem: String,
    /// Its private key (PEM, PKCS#8).
    pub key_pem: SecretString,
    /// The longest a call to a KMS may take: past it, the request fails.
    pub timeout: std::time::Duration,
    /// Whether organisations' KMSs may be at internal addresses (closed
    /// networks, tests).
    pub allow_private: bool,
}

impl std::fmt::Debug for KmsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsIdentity")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// An organisation's own KMS, as its owner names it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExternalKey {
    /// `host:port` of the KMS (KMIP: 5696).
    pub endpoint: String,
    /// The name (or IP address) its certificate carries.
    pub server_name: String,
    /// The certificates its certificate chains to (PEM).
    pub ca_pem: String,
    /// The KMS's unique identifier of the AES-256 key that wraps the
    /// organisation's key.
    pub key_id: String,
}

/// Who holds the organisation's key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Custody {
    /// `platform` or `external`.
    pub mode: String,
    /// The organisation's KMS, when `external` (its CA left out).
    pub endpoint: Option<String>,
    pub key_id: Option<String>,
    /// The key's state as the KMS tells it now (`Active`…), or why it could
    /// not be asked.
    pub key_state: Option<String>,
}

/// The stored form of a key the organisation's KMS wrapped: `kms:` and the
/// base64 of the GCM nonce (12 bytes), the wrapped key (32) and the tag (16).
const KMS_PREFIX: &str = "kms:";

fn kms_failure(e: &KmipError) -> &'static str {
    match e {
        KmipError::Refused { .. } => "refused",
        KmipError::Unreachable(_) => "unreachable",
        KmipError::Malformed(_) | KmipError::Settings(_) => "error",
    }
}

impl Storage {
    fn kms_client(&self, kms: &CustodyRow) -> Result<KmipClient, KmipError> {
        let identity = self.settings().kms.as_ref().ok_or_else(|| {
            KmipError::Settings("this platform has no KMIP identity (keys.kmip)".into())
        })?;
        KmipClient::new(&KmipSettings {
            endpoint: kms.endpoint.clone(),
            server_name: kms.server_name.clone(),
            ca_pem: kms.ca_pem.clone(),
            client_cert_pem: identity.cert_pem.clone(),
            client_key_pem: identity.key_pem.clone(),
            timeout: identity.timeout,
            allow_private: identity.allow_private,
        })
    }

    async fn kms_wrap(
        &self,
        client: &KmipClient,
        key_id: &str,
        org: &OrgId,
        key: &[u8; 32],
    ) -> Result<String, KmipError> {
        let mut iv = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut iv);
        let aad = org.to_string();
        let (sealed, tag) = client.encrypt(key_id, iv, aad.as_bytes(), key).await?;
        Ok(format!(
            "{KMS_PREFIX}{}",
            B64.encode([iv.as_slice(), &sealed, &tag].concat())
        ))
    }

    async fn kms_unwrap_with(
        &self,
        client: &KmipClient,
        key_id: &str,
        org: &OrgId,
        wrapped: &str,
    ) -> Result<[u8; 32], KmipError> {
        let bytes = wrapped
            .strip_prefix(KMS_PREFIX)
            .and_then(|t| B64.decode(t).ok())
            .filter(|b| b.len() == 12 + 32 + 16)
            .ok_or_else(|| KmipError::Malformed("a key wrapped by the KMS is malformed".into()))?;
        let iv: [u8; 12] = bytes[..12].try_into().expect("12 bytes");
        let tag: [u8; 16] = bytes[44..].try_into().expect("16 bytes");
        let aad = org.to_string();
        client
            .decrypt(key_id, iv, aad.as_bytes(), &bytes[12..44], tag)
            .await?
            .try_into()
            .map_err(|_| {
                KmipError::Malformed("the KMS unwrapped a key that is not 32 bytes".into())
            })
    }

    /// The organisation's key (a version of it) that its own KMS wraps;
    /// a KMS that refuses or does not answer is access denied, saying why.
    pub(crate) async fn kms_unwrap(&self, org: &OrgId, wrapped: &str) -> StorageResult<[u8; 32]> {
        let custody = repo::custody(
            &mut *self.platform().db().acquire().await?,
            &org.to_string(),
        )
        .await?
        .ok_or_else(|| {
            ServiceError::Internal("an organisation key is held by a KMS no longer named".into())
        })?;
        let denied = |e: KmipError, state: Option<KeyState>| {
            metrics::counter!("nuage_kms_failures_total", "reason" => kms_failure(&e)).increment(1);
            tracing::warn!(org = %org, error = %e, "the organisation's KMS did not unwrap its key");
            let state = state
                .map(|s| format!(" (the key is {s:?})"))
                .unwrap_or_default();
            StorageError::AccessDeniedBecause(format!(
                "the organisation's key is held in its own KMS, which did not release it{state}: {e}"
            ))
        };
        let client = self.kms_client(&custody).map_err(|e| denied(e, None))?;
        match self
            .kms_unwrap_with(&client, &custody.key_id, org, wrapped)
            .await
        {
            Ok(key) => Ok(key),
            Err(e @ KmipError::Refused { .. }) => {
                let state = client.state(&custody.key_id).await.ok();
                Err(denied(e, state))
            }
            Err(e) => Err(denied(e, None)),
        }
    }

    /// A new version of the organisation's key, wrapped by whoever holds
    /// its key now: (stored form, key-encryption key's epoch, custody).
    pub(crate) async fn wrap_new_org_key(
        &self,
        org: &OrgId,
        custody: &str,
        key: &[u8; 32],
    ) -> StorageResult<(String, i64, &'static str)> {
        if custody != "external" {
            let (sealed, epoch) = self.platform().wrap_org_key(org, key).await?;
            return Ok((sealed, epoch, "platform"));
        }
        let kms = repo::custody(
            &mut *self.platform().db().acquire().await?,
            &org.to_string(),
        )
        .await?
        .ok_or_else(|| ServiceError::Internal("the organisation's KMS is not named".into()))?;
        let client = self
            .kms_client(&kms)
            .map_err(|e| StorageError::AccessDeniedBecause(e.to_string()))?;
        let sealed = self
            .kms_wrap(&client, &kms.key_id, org, key)
            .await
            .map_err(|e| StorageError::AccessDeniedBecause(e.to_string()))?;
        Ok((sealed, 0, "external"))
    }

    /// Who holds the organisation's key, and the state of its KMS's key.
    pub async fn custody(&self, who: &Principal, org: OrgId) -> ServiceResult<Custody> {
        let mut conn = self.platform().db().acquire().await?;
        self.platform()
            .authorize_org(&mut conn, who, org, Permission::Manage)
            .await?;
        let Some(kms) = repo::custody(&mut conn, &org.to_string()).await? else {
            return Ok(Custody {
                mode: "platform".into(),
                endpoint: None,
                key_id: None,
                key_state: None,
            });
        };
        drop(conn);
        let key_state = match self.kms_client(&kms) {
            Ok(client) => match client.state(&kms.key_id).await {
                Ok(state) => format!("{state:?}"),
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        Ok(Custody {
            mode: "external".into(),
            endpoint: Some(kms.endpoint),
            key_id: Some(kms.key_id),
            key_state: Some(key_state),
        })
    }

    /// Has the organisation's key wrapped by its own KMS's key (`Some`), or
    /// by the platform again (`None`); owners only, audited. Every version
    /// of the organisation's key is rewrapped; no data key changes.
    pub async fn set_custody(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        org: OrgId,
        wanted: Option<ExternalKey>,
    ) -> ServiceResult<Custody> {
        let id = org.to_string();
        let db = self.platform().db();
        // The organisation's choice, not the operator's: an operator who
        // could take the key back to the platform would hold it again.
        if who.is_operator() {
            return Err(ServiceError::Forbidden(
                "only an owner of the organisation chooses who holds its key".into(),
            ));
        }
        let before = {
            let mut conn = db.acquire().await?;
            self.platform()
                .authorize_org(&mut conn, who, org, Permission::Own)
                .await?;
            repo::custody(&mut conn, &id).await?
        };
        let kms = match &wanted {
            Some(k) => {
                let row = CustodyRow {
                    org_id: id.clone(),
                    endpoint: field("endpoint", &k.endpoint, 255)?,
                    server_name: field("server_name", &k.server_name, 255)?,
                    ca_pem: field("ca_pem", &k.ca_pem, 64 * 1024)?,
                    key_id: field("key_id", &k.key_id, 255)?,
                    updated_at: self.now_ms(),
                };
                let client = self.kms_client(&row).map_err(|e| match e {
                    KmipError::Settings(m) if m.contains("no KMIP identity") => {
                        ServiceError::Conflict(m)
                    }
                    e => ServiceError::Invalid(DomainError::invalid("ca_pem", e.to_string())),
                })?;
                // The KMS answers, knows the key, lets the platform use it.
                match client.state(&row.key_id).await {
                    Ok(KeyState::Active) => {}
                    Ok(state) => {
                        return Err(DomainError::invalid(
                            "key_id",
                            format!("the key is {state:?}: only an active key can hold the organisation's key"),
                        )
                        .into());
                    }
                    Err(e) => return Err(DomainError::invalid("key_id", e.to_string()).into()),
                }
                Some((row, client))
            }
            None => None,
        };
        // The organisation's key exists before it changes hands (and a KMS
        // that no longer releases it cannot hand it over).
        self.org_key(&org).await.map_err(|e| match e {
            StorageError::AccessDeniedBecause(why) => ServiceError::Conflict(why),
            e => service(e),
        })?;
        let old_client = before
            .as_ref()
            .map(|k| self.kms_client(k))
            .transpose()
            .map_err(|e| ServiceError::Conflict(e.to_string()))?;
        let versions = repo::all_versions(&mut *db.acquire().await?, &id).await?;
        let mut rewrapped = Vec::with_capacity(versions.len());
        for (version, sealed, custody) in versions {
            let plain = match (custody.as_str(), &before, &old_client) {
                ("external", Some(k), Some(client)) => self
                    .kms_unwrap_with(client, &k.key_id, &org, &sealed)
                    .await
                    .map_err(|e| {
                        ServiceError::Conflict(format!(
                            "the organisation's current KMS did not release its key: {e}"
                        ))
                    })?,
                ("external", _, _) => {
                    return Err(ServiceError::Internal(
                        "an organisation key is held by a KMS no longer named".into(),
                    ));
                }
                _ => {
                    self.platform()
                        .key_provider()
                        .unwrap_org_key(&org, &sealed)
                        .await?
                }
            };
            let (new, epoch, holder) = match &kms {
                Some((row, client)) => (
                    self.kms_wrap(client, &row.key_id, &org, &plain)
                        .await
                        .map_err(|e| DomainError::invalid("key_id", e.to_string()))?,
                    0,
                    "external",
                ),
                None => {
                    let (sealed, epoch) = self.platform().wrap_org_key(&org, &plain).await?;
                    (sealed, epoch, "platform")
                }
            };
            rewrapped.push((version, sealed, new, epoch, holder));
        }
        let mut tx = db.begin_write().await?;
        for (version, old, new, epoch, holder) in &rewrapped {
            if !repo::rewrap_version(&mut tx, &id, *version, old, new, *epoch, holder).await? {
                return Err(ServiceError::Conflict(
                    "the organisation's key changed meanwhile (a rotation?): try again".into(),
                ));
            }
        }
        let details = match &kms {
            Some((row, _)) => {
                repo::set_custody(&mut tx, row).await?;
                serde_json::json!({ "mode": "external", "endpoint": row.endpoint, "key_id": row.key_id })
            }
            None => {
                repo::drop_custody(&mut tx, &id).await?;
                serde_json::json!({ "mode": "platform" })
            }
        };
        // Every node drops the key it holds.
        self.settings_changed(&mut tx).await?;
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("org.custody.set", format!("org:{org}"))
                    .org(org)
                    .details(details),
            )
            .await?;
        self.forget_org_key(&id);
        self.inner
            .retired_org_keys
            .write()
            .expect("lock")
            .retain(|(o, _), _| o != &id);
        self.settings_committed();
        self.custody(who, org).await
    }
}

fn field(name: &'static str, value: &str, max: usize) -> ServiceResult<String> {
    let value = value.trim();
    if value.is_empty() || value.len() > max {
        return Err(DomainError::invalid(name, format!("give 1 to {max} characters")).into());
    }
    Ok(value.to_owned())
}
