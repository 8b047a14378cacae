//! Objects: write, read, delete, copy, tag and list, with S3's versioning rules.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::StreamExt;
use nuage_db::repo::storage as repo;
use nuage_domain::storage::{
    self as rules, MAX_PUT_SIZE, NULL_VERSION, ObjectKey, Tags, Versioning,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use nuage_domain::object_lock::VersionLock;

use super::blobs::Backend;
use super::crypto::{self, BlobContext, CHUNK, DataKey, TAG, WrappingKey};
use super::object_lock;
use super::{BodyStream, CustomerKey, S3Caller, Storage, StorageError, StorageResult, json};
use nuage_service::ServiceError;

/// The headers stored with an object and returned with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectHeaders {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<String>,
    /// User metadata (`x-amz-meta-*`), names in lower case.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// The checksum algorithms of S3's `x-amz-checksum-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "CRC32" => Some(Self::Crc32),
            "CRC32C" => Some(Self::Crc32c),
            "CRC64NVME" => Some(Self::Crc64Nvme),
            "SHA1" => Some(Self::Sha1),
            "SHA256" => Some(Self::Sha256),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64Nvme => "CRC64NVME",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
        }
    }
}

/// A stored checksum: of the whole object, or composite (of the parts' checksums).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredChecksum {
    pub algorithm: ChecksumAlgorithm,
    /// Base64, as S3 shows it (composite ones end in `-N`).
    pub value: String,
    pub composite: bool,
}

/// Hashes one pass over the plaintext: MD5 (the ETag) and the requested checksum.
pub(super) struct Hasher {
    md5: md5::Md5,
    sum: Option<Sum>,
}

enum Sum {
    Crc(ChecksumAlgorithm, crc_fast::Digest),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Hasher {
    pub(super) fn new(algorithm: Option<ChecksumAlgorithm>) -> Self {
        use md5::Digest as _;
        let sum = algorithm.map(|a| match a {
            ChecksumAlgorithm::Crc32 => Sum::Crc(
                a,
                crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32IsoHdlc),
            ),
            ChecksumAlgorithm::Crc32c => {
                Sum::Crc(a, crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi))
            }
            ChecksumAlgorithm::Crc64Nvme => {
                Sum::Crc(a, crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme))
            }
            ChecksumAlgorithm::Sha1 => Sum::Sha1(sha1::Sha1::new()),
            ChecksumAlgorithm::Sha256 => Sum::Sha256(sha2::Sha256::new()),
        });
        Self {
            md5: md5::Md5::new(),
            sum,
        }
    }

    pub(super) fn update(&mut self, data: &[u8]) {
        use md5::Digest as _;
        self.md5.update(data);
        match &mut self.sum {
            Some(Sum::Crc(_, d)) => d.update(data),
            Some(Sum::Sha1(h)) => sha1::Digest::update(h, data),
            Some(Sum::Sha256(h)) => sha2::Digest::update(h, data),
            None => {}
        }
    }

    /// The MD5 and the checksum's raw bytes.
    pub(super) fn finish(self) -> ([u8; 16], Option<Vec<u8>>) {
        use md5::Digest as _;
        let sum = self.sum.map(|s| match s {
            Sum::Crc(ChecksumAlgorithm::Crc64Nvme, d) => d.finalize().to_be_bytes().to_vec(),
            Sum::Crc(_, d) => (d.finalize() as u32).to_be_bytes().to_vec(),
            Sum::Sha1(h) => sha1::Digest::finalize(h).to_vec(),
            Sum::Sha256(h) => sha2::Digest::finalize(h).to_vec(),
        });
        (self.md5.finalize().into(), sum)
    }
}

pub(super) fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The checksum a client declared: in a header, or in the trailer of an
/// aws-chunked body (read once the body has been consumed).
#[derive(Default)]
pub struct ChecksumInput {
    pub algorithm: Option<ChecksumAlgorithm>,
    pub expected: Option<String>,
    pub trailer: Option<Box<dyn FnOnce() -> Option<String> + Send>>,
}

impl std::fmt::Debug for ChecksumInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChecksumInput")
            .field("algorithm", &self.algorithm)
            .field("expected", &self.expected)
            .field("trailer", &self.trailer.is_some())
            .finish()
    }
}

impl ChecksumInput {
    /// Checks the computed checksum against the declared one, if any.
    pub(super) fn verify(self, computed: Option<&[u8]>) -> StorageResult<Option<String>> {
        let Some(algorithm) = self.algorithm else {
            return Ok(None);
        };
        let computed = b64(computed.unwrap_or_default());
        let declared = match (self.expected, self.trailer) {
            (Some(v), _) => Some(v),
            (None, Some(read)) => Some(read().ok_or_else(|| {
                StorageError::InvalidRequest(format!(
                    "the trailer did not carry the announced x-amz-checksum-{}",
                    algorithm.name().to_ascii_lowercase()
                ))
            })?),
            (None, None) => None,
        };
        if let Some(declared) = declared
            && declared != computed
        {
            return Err(StorageError::BadDigest(format!(
                "the {} you specified did not match the calculated checksum",
                algorithm.name()
            )));
        }
        Ok(Some(computed))
    }
}

/// One stored piece of an object: a whole single-part object, or one part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Segment {
    pub part: u32,
    pub blob: String,
    pub size: u64,
    /// The blob's data key, wrapped.
    pub key: String,
    /// Hex MD5 of the segment's plaintext.
    pub md5: String,
    #[serde(default)]
    pub checksum: Option<String>,
}

/// A blob just written.
pub(super) struct Written {
    pub blob_id: String,
    pub wrapped: String,
    pub size: u64,
    pub md5: [u8; 16],
    pub checksum: Option<Vec<u8>>,
}

/// A request to store an object.
pub struct PutObject {
    pub bucket: String,
    pub key: String,
    pub headers: ObjectHeaders,
    pub tags: Vec<(String, String)>,
    pub content_length: Option<u64>,
    /// Base64 of the MD5 the client computed.
    pub content_md5: Option<String>,
    pub checksum: ChecksumInput,
    pub customer_key: Option<CustomerKey>,
    /// What the write may replace (conditional writes).
    pub condition: WriteCondition,
    /// The retention and legal hold asked for (Object Lock).
    pub lock: VersionLock,
    /// The ACL's grants beyond the owner's full control.
    pub acl: Vec<nuage_domain::acl::Grant>,
    pub body: BodyStream,
}

/// A condition on the version a write replaces, checked in the transaction
/// that commits it, so two writers cannot both see it hold.
#[derive(Debug, Clone, Default)]
pub struct WriteCondition {
    /// Only if the key's current object has this ETag (`If-Match`).
    pub if_match: Option<String>,
    /// Only if the key has no current object (`If-None-Match: *`).
    pub if_none_match: bool,
}

impl WriteCondition {
    /// From the request's headers: `If-None-Match` takes only `*`, as S3's.
    pub fn parse(if_match: Option<&str>, if_none_match: Option<&str>) -> StorageResult<Self> {
        let if_none_match = match if_none_match.map(str::trim) {
            None => false,
            Some("*") => true,
            Some(_) => {
                return Err(StorageError::InvalidArgument(
                    "If-None-Match on a write takes only *".into(),
                ));
            }
        };
        Ok(Self {
            if_match: if_match.map(|e| e.trim().trim_matches('"').to_owned()),
            if_none_match,
        })
    }

    fn check(&self, current: Option<&repo::ObjectRow>) -> StorageResult<()> {
        if self.if_none_match && current.is_some() {
            return Err(StorageError::PreconditionFailed);
        }
        if let Some(expected) = &self.if_match {
            match current {
                None => return Err(StorageError::NoSuchKey),
                Some(c) if expected != "*" && c.etag != *expected => {
                    return Err(StorageError::PreconditionFailed);
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct PutOutcome {
    pub version_id: Option<String>,
    pub etag: String,
    pub checksum: Option<StoredChecksum>,
    pub size: u64,
    pub last_modified: i64,
}

/// A byte range, as HTTP asks for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// From `first` to `last` (inclusive), or to the end.
    FromTo(u64, Option<u64>),
    /// The last `n` bytes.
    Suffix(u64),
}

/// Conditional request headers. Times are milliseconds since the epoch.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<i64>,
    pub if_unmodified_since: Option<i64>,
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').any(|candidate| {
        let c = candidate.trim().trim_start_matches("W/").trim_matches('"');
        c == "*" || c == etag
    })
}

impl Conditions {
    /// Applies the conditions as RFC 9110 orders them; `NotModified` only
    /// for reads (a copy turns it into `PreconditionFailed`).
    fn check(&self, etag: &str, modified_ms: i64) -> StorageResult<()> {
        let modified = modified_ms / 1000;
        if let Some(m) = &self.if_match {
            if !etag_matches(m, etag) {
                return Err(StorageError::PreconditionFailed);
            }
        } else if let Some(t) = self.if_unmodified_since
            && modified > t / 1000
        {
            return Err(StorageError::PreconditionFailed);
        }
        if let Some(m) = &self.if_none_match {
            if etag_matches(m, etag) {
                return Err(StorageError::NotModified);
            }
        } else if let Some(t) = self.if_modified_since
            && modified <= t / 1000
        {
            return Err(StorageError::NotModified);
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.if_match.is_none()
            && self.if_none_match.is_none()
            && self.if_modified_since.is_none()
            && self.if_unmodified_since.is_none()
    }
}

/// A request to read an object (or only its metadata).
#[derive(Debug, Default)]
pub struct GetObject {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub range: Option<ByteRange>,
    pub part_number: Option<u32>,
    pub conditions: Conditions,
    pub customer_key: Option<CustomerKey>,
}

/// What S3 says about an object version.
#[derive(Debug, Clone)]
pub struct ObjectInfo {
    pub key: String,
    /// The version id S3 shows: `null` for versions written while
    /// versioning was off or suspended.
    pub version_id: String,
    pub is_latest: bool,
    pub delete_marker: bool,
    pub size: u64,
    pub etag: String,
    pub last_modified: i64,
    pub headers: ObjectHeaders,
    pub checksum: Option<StoredChecksum>,
    /// Read with the object itself; 0 in listings.
    pub tag_count: usize,
    /// Read with the object itself (1 for an object of one part); 0 for a
    /// multipart object in listings.
    pub parts: usize,
    /// Base64 MD5 of the customer key it was stored with (SSE-C).
    pub customer_key_md5: Option<String>,
    /// Its retention and legal hold (Object Lock).
    pub lock: VersionLock,
}

impl ObjectInfo {
    fn from_row(row: &repo::ObjectRow) -> Self {
        // Listings describe thousands of rows: what is only counted is
        // parsed only when there is something to count.
        let multipart = row.etag.contains('-');
        let parts = if multipart {
            serde_json::from_str::<Vec<Segment>>(&row.segments)
                .map(|s| s.len())
                .unwrap_or_default()
        } else {
            1
        };
        let tag_count = if row.tags == "[]" {
            0
        } else {
            serde_json::from_str::<Tags>(&row.tags)
                .map(|t| t.0.len())
                .unwrap_or_default()
        };
        Self {
            key: row.key.clone(),
            version_id: row.version_id.clone(),
            is_latest: row.is_latest == 1,
            delete_marker: row.delete_marker == 1,
            size: row.size as u64,
            etag: row.etag.clone(),
            last_modified: row.created_at,
            headers: serde_json::from_str(&row.headers).unwrap_or_default(),
            checksum: row
                .checksum
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok()),
            tag_count,
            parts,
            customer_key_md5: row.sse_c.clone(),
            lock: object_lock::lock_of(row),
        }
    }
}

/// An object being read: its metadata, the range served, and the bytes.
pub struct ObjectRead {
    pub info: ObjectInfo,
    /// The bytes served (first, last inclusive) when not the whole object.
    pub range: Option<(u64, u64)>,
    pub content_length: u64,
    pub body: BodyStream,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOutcome {
    pub version_id: Option<String>,
    pub delete_marker: bool,
}

/// A request to copy an object.
#[derive(Debug, Default)]
pub struct CopyObject {
    pub source: GetObject,
    pub bucket: String,
    pub key: String,
    /// New headers (`REPLACE`), or the source's (`COPY`).
    pub headers: Option<ObjectHeaders>,
    /// New tags (`REPLACE`), or the source's.
    pub tags: Option<Vec<(String, String)>>,
    pub customer_key: Option<CustomerKey>,
    /// The retention and legal hold asked for: a copy never takes the
    /// source's.
    pub lock: VersionLock,
    /// The ACL's grants beyond the owner's: a copy never takes the source's.
    pub acl: Vec<nuage_domain::acl::Grant>,
}

/// A listing request.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// List keys after this one (marker, start-after, continuation).
    pub after: Option<String>,
    /// For version listings: the version after which to continue within `after`.
    pub version_after: Option<String>,
    pub max_keys: usize,
}

#[derive(Debug, Clone, Default)]
pub struct ObjectList {
    pub objects: Vec<ObjectInfo>,
    pub prefixes: Vec<String>,
    pub truncated: bool,
    /// The last key or prefix returned, to continue from.
    pub next: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct VersionList {
    pub versions: Vec<ObjectInfo>,
    pub prefixes: Vec<String>,
    pub truncated: bool,
    pub next_key: Option<String>,
    pub next_version: Option<String>,
}

const BATCH: i64 = 500;
/// Chunks read from disk per step of a download (1 MiB).
const READ_CHUNKS: u64 = 16;

impl Storage {
    /// The key that wraps the data keys of an object: the customer's (SSE-C)
    /// or the organisation's.
    async fn wrapping_key(
        &self,
        caller: &S3Caller,
        customer: Option<&CustomerKey>,
    ) -> StorageResult<std::sync::Arc<WrappingKey>> {
        match customer {
            Some(c) => Ok(std::sync::Arc::new(WrappingKey::from_bytes(&c.key))),
            None => self.org_key(&caller.org).await,
        }
    }

    /// Seals a body into a new blob of the region.
    pub(super) async fn write_blob(
        &self,
        backend: &Backend,
        wrapping: &WrappingKey,
        context: (&S3Caller, &str, u32),
        mut body: BodyStream,
        limit: u64,
        algorithm: Option<ChecksumAlgorithm>,
    ) -> StorageResult<Written> {
        let (caller, object, part) = context;
        let blob_id = Uuid::now_v7().to_string();
        let ctx = BlobContext {
            org: caller.org.to_string(),
            object: object.to_owned(),
            blob_id: blob_id.clone(),
            part,
        };
        let (data_key, wrapped) = wrapping.new_data_key(&ctx);
        let mut writer = backend.create(&blob_id).await?;
        let idle = self.settings().body_idle_timeout;
        let result: StorageResult<(u64, Hasher)> = async {
            let mut hasher = Hasher::new(algorithm);
            let mut pending: Vec<u8> = Vec::with_capacity(2 * CHUNK);
            let mut out: Vec<u8> = Vec::with_capacity(READ_CHUNKS as usize * (CHUNK + TAG));
            let mut index = 0u64;
            let mut size = 0u64;
            loop {
                let next = tokio::time::timeout(idle, body.next())
                    .await
                    .map_err(|_| StorageError::RequestTimeout)?;
                let Some(item) = next else { break };
                let bytes = item.map_err(body_error)?;
                size += bytes.len() as u64;
                if size > limit {
                    return Err(StorageError::EntityTooLarge);
                }
                hasher.update(&bytes);
                pending.extend_from_slice(&bytes);
                // The last chunk is sealed as such, so keep at least one
                // byte back until the body ends.
                let mut start = 0;
                while pending.len() - start > CHUNK {
                    data_key.seal_chunk(
                        &ctx,
                        index,
                        false,
                        &pending[start..start + CHUNK],
                        &mut out,
                    );
                    index += 1;
                    start += CHUNK;
                }
                pending.drain(..start);
                if out.len() >= READ_CHUNKS as usize * CHUNK {
                    writer.write(&out).await?;
                    out.clear();
                }
            }
            data_key.seal_chunk(&ctx, index, true, &pending, &mut out);
            writer.write(&out).await?;
            Ok((size, hasher))
        }
        .await;
        match result {
            Ok((size, hasher)) => {
                writer.finish().await?;
                let (md5, checksum) = hasher.finish();
                Ok(Written {
                    blob_id,
                    wrapped,
                    size,
                    md5,
                    checksum,
                })
            }
            Err(e) => {
                writer.abort().await;
                Err(e)
            }
        }
    }

    pub async fn put_object(&self, caller: &S3Caller, req: PutObject) -> StorageResult<PutOutcome> {
        ObjectKey::parse(&req.key)?;
        let bucket = self.bucket_of(caller, &req.bucket).await?;
        object_lock::check_lock_allowed(&bucket, &req.lock, self.now_ms())?;
        let acl = self.grants_for_write(&bucket, &req.acl).await?;
        let tags = Tags::parse(req.tags, 10)?;
        let expected_md5 = match &req.content_md5 {
            Some(m) => Some(parse_md5(m)?),
            None => None,
        };
        if req.content_length.is_some_and(|l| l > MAX_PUT_SIZE) {
            return Err(StorageError::EntityTooLarge);
        }
        // An overwrite without versioning frees the bytes it replaces.
        let replaced = if Versioning::from_stored(bucket.versioning.as_deref()).keeps_versions() {
            None
        } else {
            let mut conn = self.platform().db().acquire().await?;
            repo::object_version(&mut conn, &bucket.name, &req.key, NULL_VERSION).await?
        };
        let (freed_bytes, freed_objects) =
            replaced.map_or((0, 0), |r| (r.size, i64::from(r.delete_marker == 0)));
        self.check_quota_room(
            caller,
            req.content_length.unwrap_or(0) as i64 - freed_bytes,
            1 - freed_objects,
        )
        .await?;
        let backend = self.backend(&bucket.region)?;
        let wrapping = self.wrapping_key(caller, req.customer_key.as_ref()).await?;
        let id = Uuid::now_v7().to_string();
        let written = self
            .write_blob(
                backend,
                &wrapping,
                (caller, &id, 1),
                req.body,
                MAX_PUT_SIZE,
                req.checksum.algorithm,
            )
            .await?;
        let checked = (|| {
            if req.content_length.is_some_and(|l| l != written.size) {
                return Err(StorageError::IncompleteBody);
            }
            if expected_md5.is_some_and(|m| m != written.md5) {
                return Err(StorageError::BadDigest(
                    "the Content-MD5 you specified did not match what was received".into(),
                ));
            }
            let algorithm = req.checksum.algorithm;
            Ok(req
                .checksum
                .verify(written.checksum.as_deref())?
                .map(|value| StoredChecksum {
                    algorithm: algorithm.expect("a checksum has an algorithm"),
                    value,
                    composite: false,
                }))
        })();
        let checksum = match checked {
            Ok(c) => c,
            Err(e) => {
                let _ = backend.delete(&written.blob_id).await;
                return Err(e);
            }
        };
        let etag = hex::encode(written.md5);
        let segments = vec![Segment {
            part: 1,
            blob: written.blob_id.clone(),
            size: written.size,
            key: written.wrapped,
            md5: etag.clone(),
            checksum: checksum.as_ref().map(|c| c.value.clone()),
        }];
        let mut row = repo::ObjectRow {
            id,
            bucket: bucket.name.clone(),
            key: req.key,
            version_id: String::new(),
            is_latest: 1,
            delete_marker: 0,
            size: written.size as i64,
            etag: etag.clone(),
            created_at: self.now_ms(),
            headers: json(&req.headers),
            tags: json(&tags),
            checksum: checksum.as_ref().map(json),
            segments: json(&segments),
            sse_c: req.customer_key.as_ref().map(|c| c.key_md5.clone()),
            lock_mode: None,
            lock_until: None,
            legal_hold: 0,
        };
        object_lock::set_lock(&mut row, &req.lock);
        let last_modified = row.created_at;
        let version_id = match self
            .commit_version(
                caller,
                row,
                std::slice::from_ref(&written.blob_id),
                (None, acl.as_deref()),
                &req.condition,
            )
            .await
        {
            Ok(v) => v,
            Err(e) => {
                let _ = backend.delete(&written.blob_id).await;
                return Err(e);
            }
        };
        Ok(PutOutcome {
            version_id,
            etag,
            checksum,
            size: written.size,
            last_modified,
        })
    }

    /// Refuses early an upload that cannot fit the quota (the commit checks
    /// again, atomically).
    pub(super) async fn check_quota_room(
        &self,
        caller: &S3Caller,
        bytes: i64,
        objects: i64,
    ) -> StorageResult<()> {
        let usage = repo::org_storage(
            &mut *self.platform().db().acquire().await?,
            &caller.org.to_string(),
        )
        .await?;
        if usage
            .max_bytes
            .is_some_and(|max| bytes > 0 && usage.bytes + bytes > max)
            || usage
                .max_objects
                .is_some_and(|max| objects > 0 && usage.objects + objects > max)
        {
            return Err(StorageError::QuotaExceeded);
        }
        Ok(())
    }

    /// Commits a new version of a key by the bucket's versioning rules, with
    /// its quota check. When it completes a multipart upload, the upload goes
    /// in the same transaction: its parts' bytes were counted when they were
    /// stored, and the parts left out are released. Returns the version id
    /// to show.
    pub(super) async fn commit_version(
        &self,
        caller: &S3Caller,
        row: repo::ObjectRow,
        new_blobs: &[String],
        (completes, acl): (Option<&str>, Option<&str>),
        condition: &WriteCondition,
    ) -> StorageResult<Option<String>> {
        // Two writers of one key at once: PostgreSQL runs their
        // transactions side by side, and the second's new latest version
        // meets the first's (a unique violation, the whole transaction
        // undone). It is committed again on top of the first: the last to
        // commit wins, as in S3, and its conditions are checked again.
        let mut tries = 0;
        loop {
            let outcome = self
                .commit_version_once(caller, row.clone(), new_blobs, (completes, acl), condition)
                .await;
            match outcome {
                Err(StorageError::Service(ServiceError::Conflict(_))) if tries < 16 => tries += 1,
                other => return other,
            }
        }
    }

    async fn commit_version_once(
        &self,
        caller: &S3Caller,
        mut row: repo::ObjectRow,
        new_blobs: &[String],
        (completes, acl): (Option<&str>, Option<&str>),
        condition: &WriteCondition,
    ) -> StorageResult<Option<String>> {
        let mut tx = self.platform().db().begin_write().await?;
        let bucket = self.owned_bucket(&mut tx, caller, &row.bucket).await?;
        repo::lock_key(
            &mut tx,
            self.platform().db().dialect(),
            &row.bucket,
            &row.key,
        )
        .await?;
        if condition.if_match.is_some() || condition.if_none_match {
            let current = repo::latest_object(&mut tx, &row.bucket, &row.key)
                .await?
                .filter(|o| o.delete_marker == 0);
            condition.check(current.as_ref())?;
        }
        object_lock::lock_new_version(&bucket, &mut row)?;
        let versioning = Versioning::from_stored(bucket.versioning.as_deref());
        let mut released = Vec::new();
        let mut delta_bytes = row.size;
        if let Some(upload_id) = completes {
            let upload = repo::get_upload(&mut tx, upload_id).await?;
            if !upload.is_some_and(|u| u.bucket == row.bucket && u.key == row.key) {
                return Err(StorageError::NoSuchUpload);
            }
            let used: std::collections::HashSet<String> =
                serde_json::from_str::<Vec<Segment>>(&row.segments)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|s| s.blob)
                    .collect();
            let parts =
                repo::list_parts(&mut tx, upload_id, 0, i64::from(rules::MAX_PARTS) + 1).await?;
            // The parts were read before this transaction: a part uploaded
            // again meanwhile replaced (and released) the blob chosen.
            let current: std::collections::HashSet<&str> =
                parts.iter().map(|p| p.blob_id.as_str()).collect();
            if used.iter().any(|b| !current.contains(b.as_str())) {
                return Err(StorageError::InvalidPart(
                    "a part was uploaded again while the upload was being completed; complete it again"
                        .into(),
                ));
            }
            for part in parts {
                delta_bytes -= part.size;
                if !used.contains(&part.blob_id) {
                    repo::trash_blob(&mut tx, &part.blob_id, &bucket.region, self.now_ms()).await?;
                    released.push(part.blob_id);
                }
            }
            repo::delete_upload(&mut tx, upload_id).await?;
        }
        let mut delta_objects = i64::from(row.delete_marker == 0);
        if versioning.keeps_versions() {
            row.version_id = row.id.clone();
        } else {
            row.version_id = NULL_VERSION.to_owned();
            if let Some(old) =
                repo::object_version(&mut tx, &row.bucket, &row.key, NULL_VERSION).await?
            {
                let (b, o) = self
                    .release_version(&mut tx, &bucket.region, &old, &mut released, false)
                    .await?;
                delta_bytes -= b;
                delta_objects -= o;
            }
        }
        repo::demote_latest(&mut tx, &row.bucket, &row.key).await?;
        repo::insert_object(&mut tx, &row).await?;
        if acl.is_some() {
            repo::set_object_acl(&mut tx, &row.id, acl).await?;
        }
        for blob in new_blobs {
            repo::insert_blob(&mut tx, blob, &bucket.region, &row.id).await?;
        }
        let fits = repo::add_storage(
            &mut tx,
            &Uuid::now_v7().to_string(),
            &bucket.org_id,
            &bucket.name,
            row.created_at,
            delta_bytes,
            delta_objects,
        )
        .await?;
        if !fits {
            return Err(StorageError::QuotaExceeded);
        }
        tx.commit().await.map_err(nuage_db::DbError::from)?;
        self.changed();
        self.purge(&bucket.region, released).await;
        Ok(
            (versioning != Versioning::Unversioned || row.version_id != NULL_VERSION)
                .then(|| row.version_id.clone()),
        )
    }

    /// Removes a version's row and queues its blobs for deletion; returns
    /// the bytes and objects it counted for. A version Object Lock holds is
    /// refused here, whatever the path that asks (governance retention
    /// gives way to `bypass_governance`).
    pub(super) async fn release_version(
        &self,
        conn: &mut nuage_db::AnyConnection,
        region: &str,
        row: &repo::ObjectRow,
        released: &mut Vec<String>,
        bypass_governance: bool,
    ) -> StorageResult<(i64, i64)> {
        object_lock::lock_of(row).check_delete(self.now_ms(), bypass_governance)?;
        repo::delete_object_row(&mut *conn, &row.id).await?;
        repo::set_object_acl(&mut *conn, &row.id, None).await?;
        let segments: Vec<Segment> = serde_json::from_str(&row.segments).unwrap_or_default();
        for s in segments {
            repo::trash_blob(&mut *conn, &s.blob, region, self.now_ms()).await?;
            released.push(s.blob);
        }
        Ok((row.size, i64::from(row.delete_marker == 0)))
    }

    /// Deletes released blobs now; what fails stays queued for the collector.
    pub(super) async fn purge(&self, region: &str, blobs: Vec<String>) {
        if blobs.is_empty() {
            return;
        }
        let Ok(backend) = self.backend(region) else {
            return;
        };
        let mut done = Vec::new();
        for blob in blobs {
            match backend.delete(&blob).await {
                Ok(()) => done.push(blob),
                Err(e) => {
                    tracing::warn!(error = %e, blob, "a released blob could not be deleted yet")
                }
            }
        }
        if let Ok(mut conn) = self.platform().db().acquire().await {
            for blob in done {
                let _ = repo::forget_trashed_blob(&mut conn, &blob).await;
            }
        }
    }

    pub(super) async fn find_version(
        &self,
        conn: &mut nuage_db::AnyConnection,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> StorageResult<repo::ObjectRow> {
        match version_id {
            Some(v) => repo::object_version(conn, bucket, key, v)
                .await?
                .ok_or(StorageError::NoSuchVersion),
            None => match repo::latest_object(conn, bucket, key).await? {
                Some(row) if row.delete_marker == 0 => Ok(row),
                _ => Err(StorageError::NoSuchKey),
            },
        }
    }

    /// An object's metadata, after the request's conditions.
    pub async fn head_object(
        &self,
        caller: &S3Caller,
        req: &GetObject,
    ) -> StorageResult<ObjectInfo> {
        let (info, _, _) = self.resolve(caller, req).await?;
        Ok(info)
    }

    async fn resolve(
        &self,
        caller: &S3Caller,
        req: &GetObject,
    ) -> StorageResult<(ObjectInfo, repo::ObjectRow, String)> {
        let mut conn = self.platform().db().acquire().await?;
        let bucket = self.owned_bucket(&mut conn, caller, &req.bucket).await?;
        let row = self
            .find_version(&mut conn, &req.bucket, &req.key, req.version_id.as_deref())
            .await?;
        drop(conn);
        if row.delete_marker == 1 {
            return Err(StorageError::MethodNotAllowed);
        }
        match (&row.sse_c, &req.customer_key) {
            (Some(stored), Some(given)) if *stored != given.key_md5 => {
                return Err(StorageError::CustomerKeyMismatch);
            }
            (Some(_), None) => return Err(StorageError::CustomerKeyRequired),
            (None, Some(_)) => {
                return Err(StorageError::InvalidRequest(
                    "the object was not stored with a customer key".into(),
                ));
            }
            _ => {}
        }
        let info = ObjectInfo::from_row(&row);
        req.conditions.check(&info.etag, info.last_modified)?;
        Ok((info, row, bucket.region))
    }

    pub async fn get_object(&self, caller: &S3Caller, req: GetObject) -> StorageResult<ObjectRead> {
        let (info, row, region) = self.resolve(caller, &req).await?;
        let segments: Vec<Segment> = serde_json::from_str(&row.segments).unwrap_or_default();
        let size = info.size;
        let (first, end) = match (req.part_number, req.range) {
            (Some(_), Some(_)) => {
                return Err(StorageError::InvalidRequest(
                    "a request has a part number or a range, not both".into(),
                ));
            }
            (Some(n), None) => {
                if info.parts == 1 && n == 1 {
                    (0, size)
                } else {
                    let mut offset = 0;
                    let mut found = None;
                    for s in &segments {
                        if s.part == n {
                            found = Some((offset, offset + s.size));
                        }
                        offset += s.size;
                    }
                    found.ok_or(StorageError::InvalidRange)?
                }
            }
            (None, Some(ByteRange::FromTo(a, b))) => {
                if a >= size || b.is_some_and(|b| b < a) {
                    return Err(StorageError::InvalidRange);
                }
                (a, b.map_or(size, |b| (b + 1).min(size)))
            }
            (None, Some(ByteRange::Suffix(n))) => {
                if n == 0 || size == 0 {
                    return Err(StorageError::InvalidRange);
                }
                (size - n.min(size), size)
            }
            (None, None) => (0, size),
        };
        let partial = req.range.is_some() || (req.part_number.is_some() && info.parts > 1);
        let mut plan = Vec::new();
        let mut offset = 0u64;
        for s in segments {
            let (s_start, s_end) = (offset, offset + s.size);
            offset = s_end;
            if s_end <= first || s_start >= end {
                continue;
            }
            let ctx = BlobContext {
                org: caller.org.to_string(),
                object: row.id.clone(),
                blob_id: s.blob.clone(),
                part: s.part,
            };
            let key = self
                .open_data_key(&caller.org, req.customer_key.as_ref(), &ctx, &s.key)
                .await?;
            plan.push(SegmentRead {
                ctx,
                key,
                size: s.size,
                from: first.max(s_start) - s_start,
                to: end.min(s_end) - s_start,
            });
        }
        let mut stream = read_stream(self.backend(&region)?.clone(), plan);
        // Read the first piece before answering, so that a fault in a small
        // object becomes an error response rather than a cut connection.
        let head = match stream.next().await {
            Some(Ok(bytes)) => Some(bytes),
            Some(Err(e)) => {
                tracing::error!(error = %e, bucket = req.bucket, key = req.key, "an object failed to read");
                return Err(StorageError::Corrupt);
            }
            None => None,
        };
        let body: BodyStream = Box::pin(futures::stream::iter(head.map(Ok)).chain(stream));
        Ok(ObjectRead {
            info,
            range: partial.then(|| (first, end.saturating_sub(1))),
            content_length: end - first,
            body,
        })
    }

    pub async fn delete_object(
        &self,
        caller: &S3Caller,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        bypass_governance: bool,
    ) -> StorageResult<DeleteOutcome> {
        let mut tx = self.platform().db().begin_write().await?;
        let b = self.owned_bucket(&mut tx, caller, bucket).await?;
        repo::lock_key(&mut tx, self.platform().db().dialect(), bucket, key).await?;
        let versioning = Versioning::from_stored(b.versioning.as_deref());
        let mut released = Vec::new();
        let mut outcome = DeleteOutcome::default();
        let (mut bytes, mut objects) = (0, 0);
        match version_id {
            Some(v) => {
                if let Some(row) = repo::object_version(&mut tx, bucket, key, v).await? {
                    (bytes, objects) = self
                        .release_version(&mut tx, &b.region, &row, &mut released, bypass_governance)
                        .await?;
                    repo::promote_newest(&mut tx, bucket, key).await?;
                    outcome = DeleteOutcome {
                        version_id: Some(v.to_owned()),
                        delete_marker: row.delete_marker == 1,
                    };
                }
            }
            None if versioning == Versioning::Unversioned => {
                if let Some(row) = repo::latest_object(&mut tx, bucket, key).await? {
                    (bytes, objects) = self
                        .release_version(&mut tx, &b.region, &row, &mut released, bypass_governance)
                        .await?;
                }
            }
            None => {
                let id = Uuid::now_v7().to_string();
                let version = if versioning == Versioning::Enabled {
                    id.clone()
                } else {
                    if let Some(old) =
                        repo::object_version(&mut tx, bucket, key, NULL_VERSION).await?
                    {
                        (bytes, objects) = self
                            .release_version(
                                &mut tx,
                                &b.region,
                                &old,
                                &mut released,
                                bypass_governance,
                            )
                            .await?;
                    }
                    NULL_VERSION.to_owned()
                };
                repo::demote_latest(&mut tx, bucket, key).await?;
                repo::insert_object(
                    &mut tx,
                    &repo::ObjectRow {
                        id,
                        bucket: bucket.to_owned(),
                        key: key.to_owned(),
                        version_id: version.clone(),
                        is_latest: 1,
                        delete_marker: 1,
                        size: 0,
                        etag: String::new(),
                        created_at: self.now_ms(),
                        headers: "{}".into(),
                        tags: json(&Tags::default()),
                        checksum: None,
                        segments: "[]".into(),
                        sse_c: None,
                        lock_mode: None,
                        lock_until: None,
                        legal_hold: 0,
                    },
                )
                .await?;
                outcome = DeleteOutcome {
                    version_id: Some(version),
                    delete_marker: true,
                };
            }
        }
        repo::add_storage(
            &mut tx,
            &Uuid::now_v7().to_string(),
            &b.org_id,
            bucket,
            self.now_ms(),
            -bytes,
            -objects,
        )
        .await?;
        tx.commit().await.map_err(nuage_db::DbError::from)?;
        self.changed();
        self.purge(&b.region, released).await;
        Ok(outcome)
    }

    pub async fn copy_object(
        &self,
        caller: &S3Caller,
        req: CopyObject,
    ) -> StorageResult<PutOutcome> {
        let same = req.source.bucket == req.bucket
            && req.source.key == req.key
            && req.source.version_id.is_none();
        if same && req.headers.is_none() && req.tags.is_none() && req.customer_key.is_none() {
            return Err(StorageError::InvalidRequest(
                "this copy request is illegal because it is trying to copy an object to itself \
                 without changing the object's metadata"
                    .into(),
            ));
        }
        let source_bucket = req.source.bucket.clone();
        let source = match self.get_object(caller, req.source).await {
            Err(StorageError::NotModified) => return Err(StorageError::PreconditionFailed),
            other => other?,
        };
        let info = source.info;
        let tags = match req.tags {
            Some(t) => t,
            None => {
                let mut conn = self.platform().db().acquire().await?;
                let row =
                    repo::object_version(&mut conn, &source_bucket, &info.key, &info.version_id)
                        .await?;
                row.map(|r| serde_json::from_str::<Tags>(&r.tags).unwrap_or_default().0)
                    .unwrap_or_default()
            }
        };
        self.put_object(
            caller,
            PutObject {
                bucket: req.bucket,
                key: req.key,
                headers: req.headers.unwrap_or(info.headers),
                tags,
                content_length: Some(info.size),
                content_md5: None,
                checksum: ChecksumInput {
                    algorithm: info.checksum.as_ref().map(|c| c.algorithm),
                    ..ChecksumInput::default()
                },
                customer_key: req.customer_key,
                condition: WriteCondition::default(),
                lock: req.lock,
                acl: req.acl,
                body: source.body,
            },
        )
        .await
    }

    /// The tags of a version (the latest by default), with its version id.
    pub async fn object_tags(
        &self,
        caller: &S3Caller,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> StorageResult<(String, Tags)> {
        let mut conn = self.platform().db().acquire().await?;
        self.owned_bucket(&mut conn, caller, bucket).await?;
        let row = self
            .find_version(&mut conn, bucket, key, version_id)
            .await?;
        Ok((
            row.version_id,
            serde_json::from_str(&row.tags).unwrap_or_default(),
        ))
    }

    pub async fn set_object_tags(
        &self,
        caller: &S3Caller,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        tags: Vec<(String, String)>,
    ) -> StorageResult<String> {
        let tags = Tags::parse(tags, 10)?;
        let mut tx = self.platform().db().begin_write().await?;
        self.owned_bucket(&mut tx, caller, bucket).await?;
        let row = self.find_version(&mut tx, bucket, key, version_id).await?;
        if row.delete_marker == 1 {
            return Err(StorageError::MethodNotAllowed);
        }
        repo::set_object_tags(&mut tx, &row.id, &json(&tags)).await?;
        tx.commit().await.map_err(nuage_db::DbError::from)?;
        Ok(row.version_id)
    }

    /// Current objects in key order, with common prefixes folded.
    pub async fn list_objects(
        &self,
        caller: &S3Caller,
        bucket: &str,
        q: &ListQuery,
    ) -> StorageResult<ObjectList> {
        let mut conn = self.platform().db().acquire().await?;
        self.owned_bucket(&mut conn, caller, bucket).await?;
        let mut list = ObjectList::default();
        let mut from = q.prefix.clone();
        let mut after = q.after.clone();
        let mut emitted = 0usize;
        'scan: loop {
            let rows = repo::list_latest(&mut conn, bucket, &from, after.as_deref(), BATCH).await?;
            let fetched = rows.len() as i64;
            for row in rows {
                if !row.key.starts_with(&q.prefix) {
                    break 'scan;
                }
                after = Some(row.key.clone());
                // A deleted key shows nowhere, not even as a common prefix.
                if row.delete_marker == 1 {
                    continue;
                }
                if let Some(cp) = common_prefix(&row.key, &q.prefix, q.delimiter.as_deref()) {
                    if q.after.as_deref() != Some(cp)
                        && list.prefixes.last().map(String::as_str) != Some(cp)
                    {
                        if emitted == q.max_keys {
                            list.truncated = true;
                            break 'scan;
                        }
                        list.prefixes.push(cp.to_owned());
                        list.next = Some(cp.to_owned());
                        emitted += 1;
                    }
                    // Skip every other key under this prefix in one step.
                    match rules::prefix_successor(cp) {
                        Some(next) => {
                            from = next;
                            after = None;
                            continue 'scan;
                        }
                        None => break 'scan,
                    }
                }
                if emitted == q.max_keys {
                    list.truncated = true;
                    break 'scan;
                }
                list.next = Some(row.key.clone());
                list.objects.push(ObjectInfo::from_row(&row));
                emitted += 1;
            }
            if fetched < BATCH {
                break;
            }
        }
        if !list.truncated {
            list.next = None;
        }
        Ok(list)
    }

    /// Every version and delete marker, in key order and newest first.
    pub async fn list_versions(
        &self,
        caller: &S3Caller,
        bucket: &str,
        q: &ListQuery,
    ) -> StorageResult<VersionList> {
        let mut conn = self.platform().db().acquire().await?;
        self.owned_bucket(&mut conn, caller, bucket).await?;
        let mut list = VersionList::default();
        let mut from = q.prefix.clone();
        // The position after which to go on: (key, created_at, id).
        let mut after: Option<(String, i64, String)> = match (&q.after, &q.version_after) {
            (Some(k), Some(v)) => match repo::object_version(&mut conn, bucket, k, v).await? {
                Some(row) => Some((row.key, row.created_at, row.id)),
                None => Some((k.clone(), i64::MIN, String::new())),
            },
            // After every version of the key.
            (Some(k), None) => Some((k.clone(), i64::MIN, String::new())),
            _ => None,
        };
        let mut emitted = 0usize;
        'scan: loop {
            let position = after
                .as_ref()
                .map(|(k, at, id)| (k.as_str(), *at, id.as_str()));
            let rows = repo::list_versions(&mut conn, bucket, &from, position, BATCH).await?;
            let fetched = rows.len() as i64;
            for row in rows {
                if !row.key.starts_with(&q.prefix) {
                    break 'scan;
                }
                after = Some((row.key.clone(), row.created_at, row.id.clone()));
                if let Some(cp) = common_prefix(&row.key, &q.prefix, q.delimiter.as_deref()) {
                    if q.after.as_deref() != Some(cp)
                        && list.prefixes.last().map(String::as_str) != Some(cp)
                    {
                        if emitted == q.max_keys {
                            list.truncated = true;
                            break 'scan;
                        }
                        list.prefixes.push(cp.to_owned());
                        list.next_key = Some(cp.to_owned());
                        list.next_version = None;
                        emitted += 1;
                    }
                    match rules::prefix_successor(cp) {
                        Some(next) => {
                            from = next;
                            after = None;
                            continue 'scan;
                        }
                        None => break 'scan,
                    }
                }
                if emitted == q.max_keys {
                    list.truncated = true;
                    break 'scan;
                }
                list.next_key = Some(row.key.clone());
                list.next_version = Some(row.version_id.clone());
                list.versions.push(ObjectInfo::from_row(&row));
                emitted += 1;
            }
            if fetched < BATCH {
                break;
            }
        }
        if !list.truncated {
            list.next_key = None;
            list.next_version = None;
        }
        Ok(list)
    }
}

/// The common prefix a key rolls up into under a delimiter, if any.
fn common_prefix<'k>(key: &'k str, prefix: &str, delimiter: Option<&str>) -> Option<&'k str> {
    let d = delimiter.filter(|d| !d.is_empty())?;
    let rest = &key[prefix.len()..];
    rest.find(d).map(|i| &key[..prefix.len() + i + d.len()])
}

pub(super) fn parse_md5(value: &str) -> StorageResult<[u8; 16]> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()
        .and_then(|b| <[u8; 16]>::try_from(b).ok())
        .ok_or(StorageError::InvalidDigest)
}

/// What a body error from the client means.
fn body_error(e: std::io::Error) -> StorageError {
    let text = e.to_string();
    if text.contains("checksum") || text.contains("signature") {
        StorageError::BadDigest(format!("the body failed its check: {text}"))
    } else {
        StorageError::IncompleteBody
    }
}

/// The part of one segment a download needs.
struct SegmentRead {
    ctx: BlobContext,
    key: DataKey,
    size: u64,
    /// Plaintext offsets within the segment: from (inclusive) to (exclusive).
    from: u64,
    to: u64,
}

/// Streams plaintext out of sealed segments, reading and opening only the
/// chunks the range needs.
fn read_stream(backend: Backend, plan: Vec<SegmentRead>) -> BodyStream {
    let state = (backend, plan.into_iter(), None::<(SegmentRead, u64)>);
    Box::pin(futures::stream::try_unfold(
        state,
        |(backend, mut plan, mut current)| async move {
            loop {
                let (seg, next_chunk) = match current.take() {
                    Some(c) => c,
                    None => match plan.next() {
                        Some(seg) => {
                            let first = seg.from / CHUNK as u64;
                            (seg, first)
                        }
                        None => return Ok(None),
                    },
                };
                if seg.from >= seg.to && seg.size > 0 {
                    continue;
                }
                let chunks = crypto::chunk_count(seg.size);
                let last_needed = if seg.to == 0 {
                    0
                } else {
                    (seg.to - 1) / CHUNK as u64
                };
                let upto = (next_chunk + READ_CHUNKS - 1).min(last_needed);
                let chunk_len = |i: u64| (seg.size - i * CHUNK as u64).min(CHUNK as u64) as usize;
                let offset = next_chunk * (CHUNK + TAG) as u64;
                let len: usize = (next_chunk..=upto).map(|i| chunk_len(i) + TAG).sum();
                let sealed = backend.read(&seg.ctx.blob_id, offset, len).await?;
                let mut out = Vec::with_capacity(len);
                let mut at = 0usize;
                for i in next_chunk..=upto {
                    let n = chunk_len(i) + TAG;
                    let plain = seg
                        .key
                        .open_chunk(&seg.ctx, i, i + 1 == chunks, &sealed[at..at + n])
                        .ok_or_else(|| {
                            tracing::error!(
                                blob = seg.ctx.blob_id,
                                chunk = i,
                                "a chunk failed its integrity check"
                            );
                            std::io::Error::new(
                                std::io::ErrorKind::InvalidData,
                                "stored data failed its integrity check",
                            )
                        })?;
                    at += n;
                    let chunk_start = i * CHUNK as u64;
                    let lo = seg.from.saturating_sub(chunk_start) as usize;
                    let hi = ((seg.to - chunk_start) as usize).min(plain.len());
                    out.extend_from_slice(&plain[lo.min(hi)..hi]);
                }
                if upto < last_needed {
                    current = Some((seg, upto + 1));
                } else {
                    current = None;
                }
                if !out.is_empty() {
                    return Ok(Some((Bytes::from(out), (backend, plan, current))));
                }
                if current.is_none() && plan.len() == 0 {
                    return Ok(None);
                }
            }
        },
    ))
}
