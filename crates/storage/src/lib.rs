//! Object storage: the use cases behind the S3 protocol (and later the drive
//! and web hosting). Buckets belong to one organisation and live in one
//! declared region; every operation checks that the caller's organisation owns
//! the bucket. Content is sealed per blob (see [`crypto`]) and written to the
//! region's backend before its metadata commits, in one transaction that also
//! enforces the organisation's quota.

pub mod access;
mod acl;
pub mod blobs;
pub mod crypto;
pub mod custody;
pub mod domains;
pub mod drive;
pub mod files;
pub mod grants;
mod maintenance;
pub mod multipart;
pub mod object_lock;
pub mod objects;
pub mod recorder;
pub mod rotation;
pub mod shares;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use nuage_db::repo::org_keys;
use nuage_db::repo::storage as repo;
use nuage_domain::billing::{DayUsage, HourUsage, Period, daily_usage};
use nuage_domain::ids::OrgId;
use nuage_domain::object_lock::ObjectLockConfig;
use nuage_domain::org::Permission;
use nuage_domain::storage::{BucketName, CorsRule, KeyPurpose, LifecycleRule, Tags, Versioning};
use nuage_domain::website::WebsiteConfig;
use serde::{Deserialize, Serialize};

use nuage_service::audit::AuditEvent;
use nuage_service::{KeyProvider, Platform, Principal, RequestMeta, ServiceError};

use blobs::{Backend, BackendSettings};
use crypto::WrappingKey;
pub use maintenance::MaintenanceReport;

pub use multipart::{CompletedPart, MultipartUpload, PartInfo, UploadList};
pub use objects::{
    ByteRange, Conditions, CopyObject, DeleteOutcome, GetObject, ListQuery, ObjectInfo, ObjectList,
    ObjectRead, PutObject, PutOutcome, VersionList, WriteCondition,
};
use recorder::Recorder;

/// A stream of body bytes, in or out.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// A region declared by the operator: where a bucket's bytes live and under
/// which jurisdiction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Region {
    pub name: String,
    /// The jurisdiction the data is under, e.g. `FR` or `EU`.
    pub jurisdiction: String,
    /// Where the data is, in words (e.g. "Paris, France").
    pub location: String,
    /// Block Public Access is on for every bucket of the region, whatever
    /// its owner sets.
    pub block_public_access: bool,
}

/// Settings of object storage.
#[derive(Debug, Clone)]
pub struct StorageSettings {
    /// Regions with their blob store; the first is the default.
    pub regions: Vec<(Region, BackendSettings)>,
    /// Incomplete multipart uploads are aborted after this long.
    pub upload_expiry: Duration,
    /// A request body that sends nothing for this long is abandoned.
    pub body_idle_timeout: Duration,
    /// The length of a "day" in lifecycle rules (shorter in tests).
    pub lifecycle_day: Duration,
    /// How often the access log and metering are written.
    pub flush_interval: Duration,
    /// Blobs being written are collected only after this long.
    pub orphan_grace: Duration,
    /// Websites are `<bucket>.<website_domain>`; no one claims names under it.
    pub website_domain: String,
    /// The DNS server that proves websites' domains (`IP:port`); the
    /// system's resolver when unset.
    pub dns_server: Option<std::net::SocketAddr>,
    /// How the platform proves who it is to organisations' own KMSs; none:
    /// no organisation can hold its key there.
    pub kms: Option<custody::KmsIdentity>,
    /// The longest an organisation key its own KMS released stays in
    /// memory: the bound on how long access survives a revocation.
    pub external_key_cache: Duration,
}

/// Who is calling: an organisation, through one of its S3 keys.
#[derive(Debug, Clone)]
pub struct S3Caller {
    pub org: OrgId,
    pub access_key_id: String,
    pub source: String,
    /// What the key is for: an export key's downloads are exit egress.
    pub purpose: KeyPurpose,
}

/// A key supplied with the request (SSE-C); never stored.
pub struct CustomerKey {
    pub key: [u8; 32],
    /// Base64 of the key's MD5, as S3 returns it.
    pub key_md5: String,
}

impl std::fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerKey")
            .field("key_md5", &self.key_md5)
            .finish_non_exhaustive()
    }
}

/// What can go wrong in object storage; the S3 protocol maps each to its code.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("access denied")]
    AccessDenied,
    #[error("the bucket does not exist")]
    NoSuchBucket,
    #[error("the key does not exist")]
    NoSuchKey,
    #[error("the version does not exist")]
    NoSuchVersion,
    #[error("the upload does not exist")]
    NoSuchUpload,
    #[error("the bucket name is taken")]
    BucketAlreadyExists,
    #[error("you already own this bucket")]
    BucketAlreadyOwnedByYou,
    #[error("the bucket is not empty")]
    BucketNotEmpty,
    #[error("{0}")]
    InvalidBucketName(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the region {0} is not one this platform declares")]
    InvalidLocationConstraint(String),
    #[error("a precondition does not hold")]
    PreconditionFailed,
    #[error("not modified")]
    NotModified,
    #[error("the range is not satisfiable")]
    InvalidRange,
    #[error("{0}")]
    BadDigest(String),
    #[error("the Content-MD5 is not a valid MD5")]
    InvalidDigest,
    #[error("the body is larger than allowed")]
    EntityTooLarge,
    #[error("a part is smaller than the 5 MiB minimum")]
    EntityTooSmall,
    #[error("the body is shorter than its Content-Length")]
    IncompleteBody,
    #[error("the client sent nothing for too long")]
    RequestTimeout,
    #[error("{0}")]
    InvalidPart(String),
    #[error("parts are not in ascending order")]
    InvalidPartOrder,
    #[error("the organisation's storage quota is exceeded")]
    QuotaExceeded,
    #[error("this method is not allowed on a delete marker")]
    MethodNotAllowed,
    #[error("no tag set")]
    NoSuchTagSet,
    #[error("no CORS configuration")]
    NoSuchCorsConfiguration,
    #[error("no website configuration")]
    NoSuchWebsiteConfiguration,
    /// A name the drive cannot take (taken, or one that clashes).
    #[error("{0}")]
    Conflict(String),
    #[error("no lifecycle configuration")]
    NoSuchLifecycleConfiguration,
    #[error("{0}")]
    MalformedXml(String),
    #[error("{0}")]
    MalformedPolicy(String),
    #[error("the bucket does not allow ACLs")]
    AccessControlListNotSupported,
    #[error("the bucket's ACL grants others: ACLs cannot be disabled")]
    InvalidBucketAclWithObjectOwnership,
    #[error("the bucket has no policy")]
    NoSuchBucketPolicy,
    /// Access denied, with the reason S3 gives.
    #[error("access denied: {0}")]
    AccessDeniedBecause(String),
    #[error("{0}")]
    InvalidBucketState(String),
    #[error("the bucket has no Object Lock configuration")]
    ObjectLockConfigurationNotFound,
    #[error("the version has no retention or legal hold")]
    NoSuchObjectLockConfiguration,
    /// Object Lock forbids it.
    #[error("{0}")]
    ObjectLocked(String),
    #[error("the object was stored with a customer key; send it")]
    CustomerKeyRequired,
    #[error("the customer key does not open this object")]
    CustomerKeyMismatch,
    #[error("stored data failed its integrity check")]
    Corrupt,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<nuage_db::DbError> for StorageError {
    fn from(e: nuage_db::DbError) -> Self {
        Self::Service(e.into())
    }
}

impl From<nuage_domain::DomainError> for StorageError {
    fn from(e: nuage_domain::DomainError) -> Self {
        Self::InvalidArgument(e.to_string())
    }
}

impl From<std::io::Error> for StorageError {
    fn from(e: std::io::Error) -> Self {
        Self::Service(ServiceError::Internal(format!("blob store: {e}")))
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// How a bucket is created: with Object Lock (and so versioning), its
/// Object Ownership and its ACL's grants beyond the owner's.
#[derive(Debug, Clone)]
pub struct NewBucket {
    pub object_lock: bool,
    pub ownership: nuage_domain::acl::Ownership,
    pub acl: Vec<nuage_domain::acl::Grant>,
}

impl Default for NewBucket {
    fn default() -> Self {
        Self {
            object_lock: false,
            ownership: nuage_domain::acl::Ownership::BucketOwnerEnforced,
            acl: Vec::new(),
        }
    }
}

/// A bucket as its owner sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BucketInfo {
    pub name: String,
    pub region: String,
    pub created_at: i64,
}

/// An organisation's storage and quota.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StorageUsage {
    pub bytes: i64,
    pub objects: i64,
    pub max_bytes: Option<i64>,
    pub max_objects: Option<i64>,
}

struct Inner {
    platform: Platform,
    settings: StorageSettings,
    backends: HashMap<String, Backend>,
    /// The current version of organisations' keys, and until when a key an
    /// organisation's own KMS released may be used without asking again.
    org_keys: RwLock<HashMap<String, HeldKey>>,
    /// Earlier versions of organisations' keys, by organisation and version.
    retired_org_keys: RwLock<HashMap<(String, u32), HeldKey>>,
    recorder: Recorder,
    dns: domains::TxtLookup,
    /// Counts this process's committed changes to what buckets show: a
    /// cache of what was read is good while the count has not moved.
    changes: AtomicU64,
    /// Counts the changes to buckets' settings (policies, Block Public
    /// Access, buckets deleted), here or seen from other nodes.
    settings_epoch: AtomicU64,
    access: RwLock<access::AccessCache>,
}

/// Object storage over the platform.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

/// The name of the shared version of buckets' settings.
const SETTINGS_VERSION: &str = "bucket-settings";

impl Storage {
    /// Opens every region's backend and starts the access log and metering writer.
    pub fn open(platform: Platform, settings: StorageSettings) -> Result<Self, ServiceError> {
        if settings.regions.is_empty() {
            return Err(ServiceError::Internal(
                "storage needs at least one region".into(),
            ));
        }
        let mut backends = HashMap::new();
        for (region, backend) in &settings.regions {
            let blobs = Backend::open(backend).map_err(|e| {
                ServiceError::Internal(format!(
                    "cannot open the blob store of region {} ({backend:?}): {e}",
                    region.name
                ))
            })?;
            backends.insert(region.name.clone(), blobs);
        }
        let recorder = Recorder::start(
            platform.db().clone(),
            settings.flush_interval,
            platform.clock().clone(),
        );
        let dns = domains::TxtLookup::new(settings.dns_server);
        Ok(Self {
            inner: Arc::new(Inner {
                platform,
                settings,
                backends,
                org_keys: RwLock::new(HashMap::new()),
                retired_org_keys: RwLock::new(HashMap::new()),
                recorder,
                dns,
                changes: AtomicU64::new(0),
                settings_epoch: AtomicU64::new(0),
                access: RwLock::default(),
            }),
        })
    }

    pub fn platform(&self) -> &Platform {
        &self.inner.platform
    }

    /// The platform's clock, in ms since the epoch.
    fn now_ms(&self) -> i64 {
        self.inner.platform.now_ms()
    }

    pub fn settings(&self) -> &StorageSettings {
        &self.inner.settings
    }

    /// How many changes to objects and bucket settings this process has
    /// committed: read it before reading what it caches, and the cached copy
    /// is current while it has not moved (other nodes' changes are not
    /// counted: such a cache also expires).
    pub fn changes(&self) -> u64 {
        self.inner.changes.load(Ordering::Acquire)
    }

    /// Notes a committed change (after its commit).
    fn changed(&self) {
        self.inner.changes.fetch_add(1, Ordering::AcqRel);
    }

    fn settings_epoch(&self) -> u64 {
        self.inner.settings_epoch.load(Ordering::Acquire)
    }

    /// Notes a committed change of buckets' settings (after its commit).
    fn settings_committed(&self) {
        self.inner.settings_epoch.fetch_add(1, Ordering::AcqRel);
        // An organisation's key may have been rotated.
        self.inner.org_keys.write().expect("lock").clear();
        self.changed();
    }

    /// Tells every node, in the transaction `tx` that changes them, that
    /// buckets' settings (websites, domains, rules) changed: each node's
    /// caches of them are dropped once it sees the new version
    /// ([`Storage::follow_other_nodes`]).
    async fn settings_changed(
        &self,
        tx: &mut nuage_db::AnyConnection,
    ) -> Result<(), nuage_db::DbError> {
        nuage_db::repo::jobs::bump_cache_version(tx, SETTINGS_VERSION).await
    }

    /// Follows the changes other nodes make to buckets' settings, checking
    /// every `every`: when the shared version moves, this node's caches are
    /// dropped as after a change of its own. Runs until aborted.
    pub fn follow_other_nodes(&self, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let storage = self.clone();
        tokio::spawn(async move {
            let mut seen = None;
            loop {
                let version = match storage.platform().db().acquire().await {
                    Ok(mut conn) => {
                        nuage_db::repo::jobs::cache_version(&mut conn, SETTINGS_VERSION)
                            .await
                            .ok()
                    }
                    Err(_) => None,
                };
                if version.is_some() && seen.is_some() && version != seen {
                    storage.settings_committed();
                }
                seen = version.or(seen);
                tokio::time::sleep(every).await;
            }
        })
    }

    pub fn recorder(&self) -> &Recorder {
        &self.inner.recorder
    }

    pub fn regions(&self) -> impl Iterator<Item = &Region> {
        self.inner.settings.regions.iter().map(|(r, _)| r)
    }

    fn default_region(&self) -> &Region {
        &self.inner.settings.regions[0].0
    }

    fn backend(&self, region: &str) -> StorageResult<&Backend> {
        self.inner.backends.get(region).ok_or_else(|| {
            StorageError::Service(ServiceError::Internal(format!(
                "region {region} is no longer declared in the configuration"
            )))
        })
    }

    /// The current version of the organisation's key, created on first
    /// use, wrapped by whoever holds it: the platform's
    /// [`KeyProvider`](nuage_service::KeyProvider), or the organisation's own
    /// KMS ([`custody`]).
    async fn org_key(&self, org: &OrgId) -> StorageResult<Arc<WrappingKey>> {
        let id = org.to_string();
        if let Some((k, until)) = self.inner.org_keys.read().expect("lock").get(&id)
            && until.is_none_or(|t| std::time::Instant::now() < t)
        {
            return Ok(k.clone());
        }
        let db = self.platform().db();
        // Read, and the connection given back, before a key is made (which
        // takes connections of its own).
        let stored = org_keys::current(&mut *db.acquire().await?, &id).await?;
        let current = match stored {
            Some(s) => s,
            None => {
                let (fresh, epoch) = self
                    .platform()
                    .wrap_org_key(org, &WrappingKey::random_bytes())
                    .await?;
                let mut tx = db.begin_write().await?;
                repo::insert_org_key_if_absent(&mut tx, &id, &fresh, epoch, self.now_ms()).await?;
                let stored = org_keys::current(&mut tx, &id).await?;
                tx.commit().await.map_err(nuage_db::DbError::from)?;
                stored.ok_or_else(|| ServiceError::Internal("organisation key vanished".into()))?
            }
        };
        let (bytes, until) = self
            .unwrap_org_key(org, &current.sealed_key, &current.custody)
            .await?;
        let version = u32::try_from(current.version).map_err(|_| {
            ServiceError::Internal("an organisation key's version is not valid".into())
        })?;
        let key = Arc::new(WrappingKey::versioned(&bytes, version));
        self.inner
            .org_keys
            .write()
            .expect("lock")
            .insert(id, (key.clone(), until));
        Ok(key)
    }

    /// An organisation key (a version of it) unwrapped by whoever holds it,
    /// and until when it may be kept: for ever when the platform holds it,
    /// `external_key_cache` when the organisation's own KMS does.
    async fn unwrap_org_key(
        &self,
        org: &OrgId,
        sealed: &str,
        custody: &str,
    ) -> StorageResult<([u8; 32], Option<std::time::Instant>)> {
        if custody == "external" {
            let key = self.kms_unwrap(org, sealed).await?;
            let until = std::time::Instant::now() + self.settings().external_key_cache;
            return Ok((key, Some(until)));
        }
        let key = self
            .platform()
            .key_provider()
            .unwrap_org_key(org, sealed)
            .await?;
        Ok((key, None))
    }

    /// The version of the organisation's key that a data key names: the
    /// current one, or an earlier one kept since a rotation.
    async fn org_key_version(&self, org: &OrgId, version: u32) -> StorageResult<Arc<WrappingKey>> {
        let current = self.org_key(org).await?;
        if current.version() == version {
            return Ok(current);
        }
        let id = org.to_string();
        if version > current.version() {
            // Another node rotated: this node's current version is behind.
            self.forget_org_key(&id);
            let current = self.org_key(org).await?;
            if current.version() == version {
                return Ok(current);
            }
        }
        if let Some((k, until)) = self
            .inner
            .retired_org_keys
            .read()
            .expect("lock")
            .get(&(id.clone(), version))
            && until.is_none_or(|t| std::time::Instant::now() < t)
        {
            return Ok(k.clone());
        }
        let (sealed, custody) = org_keys::retired(
            &mut *self.platform().db().acquire().await?,
            &id,
            i64::from(version),
        )
        .await?
        .ok_or(StorageError::Corrupt)?;
        let (bytes, until) = self.unwrap_org_key(org, &sealed, &custody).await?;
        let key = Arc::new(WrappingKey::versioned(&bytes, version));
        self.inner
            .retired_org_keys
            .write()
            .expect("lock")
            .insert((id, version), (key.clone(), until));
        Ok(key)
    }

    /// Opens a blob's data key: with the customer's key (SSE-C), or the
    /// version of the organisation's key it names.
    async fn open_data_key(
        &self,
        org: &OrgId,
        customer: Option<&CustomerKey>,
        ctx: &crypto::BlobContext,
        wrapped: &str,
    ) -> StorageResult<crypto::DataKey> {
        if let Some(c) = customer {
            return WrappingKey::from_bytes(&c.key)
                .open_data_key(ctx, wrapped)
                .ok_or(StorageError::CustomerKeyMismatch);
        }
        let version = crypto::wrapped_version(wrapped).ok_or(StorageError::Corrupt)?;
        self.org_key_version(org, version)
            .await?
            .open_data_key(ctx, wrapped)
            .ok_or(StorageError::Corrupt)
    }

    /// Drops this node's copy of the organisation's current key version.
    fn forget_org_key(&self, org: &str) {
        self.inner.org_keys.write().expect("lock").remove(org);
    }

    /// The bucket, if the caller's organisation owns it.
    async fn owned_bucket(
        &self,
        conn: &mut nuage_db::AnyConnection,
        caller: &S3Caller,
        name: &str,
    ) -> StorageResult<repo::BucketRow> {
        let bucket = repo::get_bucket(conn, name)
            .await?
            .ok_or(StorageError::NoSuchBucket)?;
        if bucket.org_id != caller.org.to_string() {
            return Err(StorageError::AccessDenied);
        }
        Ok(bucket)
    }

    async fn bucket_of(&self, caller: &S3Caller, name: &str) -> StorageResult<repo::BucketRow> {
        let mut conn = self.platform().db().acquire().await?;
        self.owned_bucket(&mut conn, caller, name).await
    }

    fn principal(caller: &S3Caller) -> (Principal, RequestMeta) {
        (
            Principal::S3Key {
                access_key_id: caller.access_key_id.clone(),
                org: caller.org,
            },
            RequestMeta {
                source: caller.source.clone(),
            },
        )
    }

    // --- buckets -------------------------------------------------------------

    /// Creates a tenant's bucket, with Object Lock (and so versioning) if
    /// asked. The names the platform keeps for the organisations' drives are
    /// refused: see [`Drive::open`](drive::Drive::open).
    pub async fn create_bucket(
        &self,
        caller: &S3Caller,
        name: &str,
        region: Option<&str>,
        options: NewBucket,
    ) -> StorageResult<BucketInfo> {
        if nuage_domain::drive::is_drive_bucket(name) {
            return Err(StorageError::InvalidBucketName(
                "names drive-<32 hexadecimal digits> are kept for the organisations' drives".into(),
            ));
        }
        self.check_grants(options.ownership, None, &options.acl)
            .await?;
        self.create_bucket_unchecked(caller, name, region, options)
            .await
    }

    /// Creates a bucket of any valid name, the platform's own included.
    pub(crate) async fn create_bucket_unchecked(
        &self,
        caller: &S3Caller,
        name: &str,
        region: Option<&str>,
        options: NewBucket,
    ) -> StorageResult<BucketInfo> {
        let object_lock = options.object_lock;
        let name =
            BucketName::parse(name).map_err(|e| StorageError::InvalidBucketName(e.to_string()))?;
        let region = match region {
            None | Some("") => self.default_region().clone(),
            Some(r) => self
                .regions()
                .find(|known| known.name == r)
                .cloned()
                .ok_or_else(|| StorageError::InvalidLocationConstraint(r.to_owned()))?,
        };
        let mut tx = self.platform().db().begin_write().await?;
        if let Some(existing) = repo::get_bucket(&mut tx, name.as_str()).await? {
            return Err(if existing.org_id == caller.org.to_string() {
                StorageError::BucketAlreadyOwnedByYou
            } else {
                StorageError::BucketAlreadyExists
            });
        }
        let row = repo::BucketRow {
            name: name.to_string(),
            org_id: caller.org.to_string(),
            region: region.name.clone(),
            created_at: self.now_ms(),
            versioning: object_lock.then(|| "Enabled".to_owned()),
            tagging: None,
            cors: None,
            lifecycle: None,
            website: None,
            object_lock: object_lock.then(|| ObjectLockConfig::default().to_stored()),
            policy: None,
            public_access_block: None,
            ownership: options
                .ownership
                .acls_enabled()
                .then(|| options.ownership.as_str().to_owned()),
            acl: (!options.acl.is_empty()).then(|| json(&options.acl)),
        };
        repo::insert_bucket(&mut tx, &row).await?;
        let (who, meta) = Self::principal(caller);
        self.platform()
            .commit_audited(
                tx,
                &who,
                &meta,
                AuditEvent::new("bucket.create", format!("bucket:{name}"))
                    .org(caller.org)
                    .details(
                        serde_json::json!({ "region": region.name, "object_lock": object_lock }),
                    ),
            )
            .await?;
        Ok(BucketInfo {
            name: row.name,
            region: row.region,
            created_at: row.created_at,
        })
    }

    pub async fn head_bucket(&self, caller: &S3Caller, name: &str) -> StorageResult<BucketInfo> {
        let b = self.bucket_of(caller, name).await?;
        Ok(BucketInfo {
            name: b.name,
            region: b.region,
            created_at: b.created_at,
        })
    }

    pub async fn list_buckets(&self, caller: &S3Caller) -> StorageResult<Vec<BucketInfo>> {
        let rows = repo::list_buckets_of_org(
            &mut *self.platform().db().acquire().await?,
            &caller.org.to_string(),
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|b| BucketInfo {
                name: b.name,
                region: b.region,
                created_at: b.created_at,
            })
            .collect())
    }

    /// Deletes a bucket that holds no object version or delete marker. Its
    /// unfinished uploads are discarded with it, as on AWS: their parts are
    /// released in the same transaction.
    pub async fn delete_bucket(&self, caller: &S3Caller, name: &str) -> StorageResult<()> {
        let mut tx = self.platform().db().begin_write().await?;
        let bucket = self.owned_bucket(&mut tx, caller, name).await?;
        if !repo::bucket_is_empty(&mut tx, name).await? {
            return Err(StorageError::BucketNotEmpty);
        }
        let mut released = Vec::new();
        for upload in repo::upload_ids_of_bucket(&mut tx, name).await? {
            released.extend(self.release_upload(&mut tx, &bucket, &upload).await?);
        }
        repo::delete_bucket(&mut tx, name).await?;
        nuage_db::repo::websites::delete_site_domains_of(&mut tx, name).await?;
        self.settings_changed(&mut tx).await?;
        let (who, meta) = Self::principal(caller);
        self.platform()
            .commit_audited(
                tx,
                &who,
                &meta,
                AuditEvent::new("bucket.delete", format!("bucket:{name}")).org(caller.org),
            )
            .await?;
        self.purge(&bucket.region, released).await;
        self.settings_committed();
        Ok(())
    }

    /// Changes one bucket setting, audited.
    async fn set_bucket_setting(
        &self,
        caller: &S3Caller,
        name: &str,
        setting: repo::BucketSetting,
        value: Option<String>,
        action: &'static str,
    ) -> StorageResult<()> {
        self.set_bucket_setting_if(caller, name, setting, value, action, |_| Ok(()))
            .await
    }

    /// Changes one bucket setting, audited, if `allowed` says the bucket
    /// may take it (checked in the transaction that changes it).
    async fn set_bucket_setting_if(
        &self,
        caller: &S3Caller,
        name: &str,
        setting: repo::BucketSetting,
        value: Option<String>,
        action: &'static str,
        allowed: impl FnOnce(&repo::BucketRow) -> StorageResult<()>,
    ) -> StorageResult<()> {
        let mut tx = self.platform().db().begin_write().await?;
        allowed(&self.owned_bucket(&mut tx, caller, name).await?)?;
        repo::set_bucket_setting(&mut tx, name, setting, value.as_deref()).await?;
        self.settings_changed(&mut tx).await?;
        let (who, meta) = Self::principal(caller);
        self.platform()
            .commit_audited(
                tx,
                &who,
                &meta,
                AuditEvent::new(action, format!("bucket:{name}")).org(caller.org),
            )
            .await?;
        self.settings_committed();
        Ok(())
    }

    pub async fn versioning(&self, caller: &S3Caller, name: &str) -> StorageResult<Versioning> {
        let b = self.bucket_of(caller, name).await?;
        Ok(Versioning::from_stored(b.versioning.as_deref()))
    }

    pub async fn set_versioning(
        &self,
        caller: &S3Caller,
        name: &str,
        enabled: bool,
    ) -> StorageResult<()> {
        let state = if enabled {
            Versioning::Enabled
        } else {
            Versioning::Suspended
        };
        self.set_bucket_setting_if(
            caller,
            name,
            repo::BucketSetting::Versioning,
            state.as_stored().map(str::to_owned),
            "bucket.versioning.set",
            |bucket| match bucket.object_lock {
                Some(_) if !enabled => Err(StorageError::InvalidBucketState(
                    "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed."
                        .into(),
                )),
                _ => Ok(()),
            },
        )
        .await
    }

    pub async fn bucket_tags(&self, caller: &S3Caller, name: &str) -> StorageResult<Tags> {
        let b = self.bucket_of(caller, name).await?;
        let stored = b.tagging.ok_or(StorageError::NoSuchTagSet)?;
        Ok(serde_json::from_str(&stored).unwrap_or_default())
    }

    pub async fn set_bucket_tags(
        &self,
        caller: &S3Caller,
        name: &str,
        tags: Option<Vec<(String, String)>>,
    ) -> StorageResult<()> {
        let value = match tags {
            Some(t) => Some(json(&Tags::parse(t, 50)?)),
            None => None,
        };
        self.set_bucket_setting(
            caller,
            name,
            repo::BucketSetting::Tagging,
            value,
            "bucket.tagging.set",
        )
        .await
    }

    pub async fn cors(&self, caller: &S3Caller, name: &str) -> StorageResult<Vec<CorsRule>> {
        let b = self.bucket_of(caller, name).await?;
        let stored = b.cors.ok_or(StorageError::NoSuchCorsConfiguration)?;
        Ok(serde_json::from_str(&stored).unwrap_or_default())
    }

    pub async fn set_cors(
        &self,
        caller: &S3Caller,
        name: &str,
        rules: Option<Vec<CorsRule>>,
    ) -> StorageResult<()> {
        let value = rules
            .map(|r| rule_document(&r, 100, "a CORS configuration", CorsRule::validate))
            .transpose()?;
        self.set_bucket_setting(
            caller,
            name,
            repo::BucketSetting::Cors,
            value,
            "bucket.cors.set",
        )
        .await
    }

    pub async fn lifecycle(
        &self,
        caller: &S3Caller,
        name: &str,
    ) -> StorageResult<Vec<LifecycleRule>> {
        let b = self.bucket_of(caller, name).await?;
        let stored = b
            .lifecycle
            .ok_or(StorageError::NoSuchLifecycleConfiguration)?;
        Ok(serde_json::from_str(&stored).unwrap_or_default())
    }

    pub async fn set_lifecycle(
        &self,
        caller: &S3Caller,
        name: &str,
        rules: Option<Vec<LifecycleRule>>,
    ) -> StorageResult<()> {
        let value = rules
            .map(|r| {
                rule_document(
                    &r,
                    1000,
                    "a lifecycle configuration",
                    LifecycleRule::validate,
                )
            })
            .transpose()?;
        self.set_bucket_setting(
            caller,
            name,
            repo::BucketSetting::Lifecycle,
            value,
            "bucket.lifecycle.set",
        )
        .await
    }

    /// A bucket's CORS rules, for browsers' preflight requests, which carry
    /// no credentials (as in S3, the rules themselves are not secret).
    pub async fn cors_for_browsers(&self, name: &str) -> Vec<CorsRule> {
        let Ok(mut conn) = self.platform().db().acquire().await else {
            return Vec::new();
        };
        match repo::get_bucket(&mut conn, name).await {
            Ok(Some(b)) => b
                .cors
                .and_then(|c| serde_json::from_str(&c).ok())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    pub async fn website(&self, caller: &S3Caller, name: &str) -> StorageResult<WebsiteConfig> {
        let b = self.bucket_of(caller, name).await?;
        let stored = b.website.ok_or(StorageError::NoSuchWebsiteConfiguration)?;
        serde_json::from_str(&stored)
            .map_err(|e| ServiceError::Internal(format!("a website configuration: {e}")).into())
    }

    /// Publishes a bucket as a static website, or (`None`) stops.
    pub async fn set_website(
        &self,
        caller: &S3Caller,
        name: &str,
        config: Option<WebsiteConfig>,
    ) -> StorageResult<()> {
        if let Some(c) = &config {
            c.validate()?;
        }
        self.set_bucket_setting(
            caller,
            name,
            repo::BucketSetting::Website,
            config.as_ref().map(json),
            if config.is_some() {
                "bucket.website.set"
            } else {
                "bucket.website.delete"
            },
        )
        .await
    }

    /// A bucket published as a website: its owner and configuration, for
    /// the website listener (none when it does not exist or is not one).
    pub async fn site(&self, name: &str) -> StorageResult<Option<(OrgId, WebsiteConfig)>> {
        let mut conn = self.platform().db().acquire().await?;
        let Some(b) = repo::get_bucket(&mut conn, name).await? else {
            return Ok(None);
        };
        let Some(stored) = b.website else {
            return Ok(None);
        };
        let config = serde_json::from_str(&stored)
            .map_err(|e| ServiceError::Internal(format!("a website configuration: {e}")))?;
        Ok(Some((OrgId::parse(&b.org_id)?, config)))
    }

    /// The organisation that owns a bucket, if it exists (for the owner's
    /// access log; not an authorisation).
    pub async fn bucket_owner(&self, name: &str) -> Option<String> {
        let mut conn = self.platform().db().acquire().await.ok()?;
        repo::get_bucket(&mut conn, name)
            .await
            .ok()
            .flatten()
            .map(|b| b.org_id)
    }

    pub async fn bucket_region(&self, caller: &S3Caller, name: &str) -> StorageResult<Region> {
        let b = self.bucket_of(caller, name).await?;
        self.regions()
            .find(|r| r.name == b.region)
            .cloned()
            .ok_or_else(|| {
                StorageError::Service(ServiceError::Internal("undeclared region".into()))
            })
    }
}

// --- quotas and usage, for the API --------------------------------------------

impl Storage {
    /// Sets an organisation's storage quota (operators only).
    pub async fn set_storage_quota(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        org: OrgId,
        max_bytes: Option<i64>,
        max_objects: Option<i64>,
    ) -> Result<StorageUsage, ServiceError> {
        if !who.is_operator() {
            return Err(ServiceError::Forbidden("only operators set quotas".into()));
        }
        if max_bytes.is_some_and(|b| b < 0) || max_objects.is_some_and(|o| o < 0) {
            return Err(
                nuage_domain::DomainError::invalid("quota", "a quota is not negative").into(),
            );
        }
        let mut tx = self.platform().db().begin_write().await?;
        nuage_db::repo::identity::get_org(&mut tx, &org.to_string())
            .await?
            .ok_or(ServiceError::NotFound("organisation"))?;
        repo::set_quota(&mut tx, &org.to_string(), max_bytes, max_objects).await?;
        let event = AuditEvent::new("storage.quota.set", format!("org:{org}"))
            .org(org)
            .details(serde_json::json!({ "max_bytes": max_bytes, "max_objects": max_objects }));
        self.platform().commit_audited(tx, who, meta, event).await?;
        self.storage_usage(who, org).await
    }

    /// An organisation's stored bytes and objects, and its quota.
    pub async fn storage_usage(
        &self,
        who: &Principal,
        org: OrgId,
    ) -> Result<StorageUsage, ServiceError> {
        let mut conn = self.platform().db().acquire().await?;
        self.platform()
            .authorize_org(&mut conn, who, org, Permission::Use)
            .await?;
        let row = repo::org_storage(&mut conn, &org.to_string()).await?;
        Ok(StorageUsage {
            bytes: row.bytes,
            objects: row.objects,
            max_bytes: row.max_bytes,
            max_objects: row.max_objects,
        })
    }

    /// An organisation's usage per bucket and UTC day, from `from` to `to`
    /// (`YYYY-MM-DD`, both included; the current month so far by default;
    /// at most 366 days), up to the present. Requests reach it within
    /// seconds (the recorder writes every second).
    pub async fn daily_usage(
        &self,
        who: &Principal,
        org: OrgId,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<DayUsage>, ServiceError> {
        use nuage_domain::catalogue::parse_date;
        let today = time::OffsetDateTime::now_utc().date();
        let from = match from {
            Some(f) => parse_date(f, "from")?,
            None => today.replace_day(1).unwrap_or(today),
        };
        let to = match to {
            Some(t) => parse_date(t, "to")?,
            None => today,
        };
        if to < from || (to - from).whole_days() >= 366 {
            return Err(nuage_domain::DomainError::invalid(
                "to",
                "a range of usage runs from a day to the same or a later one, 366 days at most",
            )
            .into());
        }
        let ms =
            |d: time::Date| (d.midnight().assume_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        // Today stops at the present: what has accrued so far.
        let Ok(days) = Period::new(
            ms(from),
            (ms(to) + 86_400_000).min(self.platform().now_ms()),
        ) else {
            return Ok(Vec::new());
        };
        let mut conn = self.platform().db().acquire().await?;
        self.platform()
            .authorize_org(&mut conn, who, org, Permission::Use)
            .await?;
        let org = org.to_string();
        let before: std::collections::BTreeMap<String, i64> =
            repo::bytes_at(&mut conn, &org, days.start_ms())
                .await?
                .into_iter()
                .collect();
        let changes =
            repo::storage_changes(&mut conn, &org, days.start_ms(), days.end_ms()).await?;
        let hours: Vec<HourUsage> =
            repo::usage_between(&mut conn, &org, days.start_ms(), days.end_ms())
                .await?
                .into_iter()
                .map(|u| HourUsage {
                    bucket: u.bucket,
                    hour_ms: u.hour,
                    class_a: u.class_a,
                    class_b: u.class_b,
                    egress_bytes: u.egress_bytes,
                    exit_egress_bytes: u.exit_egress_bytes,
                })
                .collect();
        Ok(daily_usage(days, &before, &changes, &hours)?)
    }

    /// The organisation's access log, newest first.
    pub async fn access_log(
        &self,
        who: &Principal,
        org: OrgId,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<recorder::AccessEntry>, ServiceError> {
        let mut conn = self.platform().db().acquire().await?;
        self.platform()
            .authorize_org(&mut conn, who, org, Permission::Manage)
            .await?;
        let rows =
            repo::access_log(&mut conn, &org.to_string(), before, limit.clamp(1, 1000)).await?;
        Ok(rows.into_iter().map(recorder::AccessEntry::from).collect())
    }
}

/// A bucket's rule list as stored: 1 to `max` rules, each valid.
fn rule_document<R: Serialize>(
    rules: &[R],
    max: usize,
    what: &str,
    validate: impl Fn(&R) -> Result<(), nuage_domain::DomainError>,
) -> StorageResult<String> {
    if rules.is_empty() || rules.len() > max {
        return Err(StorageError::InvalidArgument(format!(
            "{what} has 1 to {max} rules"
        )));
    }
    for r in rules {
        validate(r)?;
    }
    Ok(json(&rules))
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("storage documents serialise")
}

/// A storage error as the use cases outside S3 report it.
pub(crate) fn service(e: StorageError) -> ServiceError {
    match e {
        StorageError::Service(e) => e,
        other => ServiceError::Internal(other.to_string()),
    }
}

/// An organisation key in memory, and until when it may be used without
/// asking its holder again (none: the platform holds it).
type HeldKey = (Arc<WrappingKey>, Option<std::time::Instant>);
