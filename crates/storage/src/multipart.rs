//! Multipart uploads. The upload's id is the internal id of the version it
//! will become, so each part is sealed for its final place when it arrives
//! and completing an upload rewrites no bytes: one transaction turns the
//! parts into the object.

use nuage_db::repo::storage as repo;
use nuage_domain::object_lock::VersionLock;
use nuage_domain::storage::{
    self as rules, MAX_OBJECT_SIZE, MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, ObjectKey, Tags,
};
use uuid::Uuid;

use super::objects::{
    ChecksumAlgorithm, ChecksumInput, GetObject, Hasher, ObjectHeaders, PutOutcome, Segment,
    StoredChecksum, WriteCondition, b64,
};
use super::{
    BodyStream, CustomerKey, S3Caller, Storage, StorageError, StorageResult, json, object_lock,
};

#[derive(Debug, Clone)]
pub struct MultipartUpload {
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
    pub initiated: i64,
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
}

#[derive(Debug, Clone)]
pub struct PartInfo {
    pub part_number: u32,
    pub etag: String,
    pub size: u64,
    pub last_modified: i64,
    pub checksum: Option<String>,
}

impl From<repo::PartRow> for PartInfo {
    fn from(p: repo::PartRow) -> Self {
        Self {
            part_number: p.part_number as u32,
            etag: p.etag,
            size: p.size as u64,
            last_modified: p.created_at,
            checksum: p.checksum,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CompletedPart {
    pub part_number: u32,
    pub etag: String,
}

#[derive(Debug, Clone, Default)]
pub struct UploadList {
    pub uploads: Vec<MultipartUpload>,
    pub truncated: bool,
    pub next_key: Option<String>,
    pub next_upload: Option<String>,
}

/// A multipart upload to begin.
#[derive(Debug)]
pub struct NewUpload {
    pub bucket: String,
    pub key: String,
    pub headers: ObjectHeaders,
    pub tags: Vec<(String, String)>,
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    /// The MD5 of the customer key the parts will be sealed with (SSE-C).
    pub customer_key_md5: Option<String>,
    /// The retention and legal hold the object is to have (Object Lock).
    pub lock: VersionLock,
    /// The ACL's grants beyond the owner's, which the object will have.
    pub acl: Vec<nuage_domain::acl::Grant>,
}

/// A part to copy from another object.
#[derive(Debug)]
pub struct PartCopy {
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
    pub part_number: u32,
    pub source: GetObject,
    pub customer_key: Option<CustomerKey>,
}

/// A part to store.
pub struct UploadPart {
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
    pub part_number: u32,
    pub content_length: Option<u64>,
    pub content_md5: Option<String>,
    pub checksum: ChecksumInput,
    pub customer_key: Option<CustomerKey>,
    pub body: BodyStream,
}

impl Storage {
    async fn upload_of(
        &self,
        caller: &S3Caller,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> StorageResult<(repo::BucketRow, repo::UploadRow)> {
        let mut conn = self.platform().db().acquire().await?;
        let b = self.owned_bucket(&mut conn, caller, bucket).await?;
        let upload = repo::get_upload(&mut conn, upload_id)
            .await?
            .filter(|u| u.bucket == bucket && u.key == key)
            .ok_or(StorageError::NoSuchUpload)?;
        Ok((b, upload))
    }

    pub async fn create_multipart_upload(
        &self,
        caller: &S3Caller,
        new: NewUpload,
    ) -> StorageResult<MultipartUpload> {
        let NewUpload {
            bucket,
            key,
            headers,
            tags,
            checksum_algorithm,
            customer_key_md5,
            lock,
            acl,
        } = new;
        let (bucket, key) = (bucket.as_str(), key.as_str());
        ObjectKey::parse(key)?;
        let tags = Tags::parse(tags, 10)?;
        let mut tx = self.platform().db().begin_write().await?;
        let b = self.owned_bucket(&mut tx, caller, bucket).await?;
        object_lock::check_lock_allowed(&b, &lock, self.now_ms())?;
        let acl = self.grants_for_write(&b, &acl).await?;
        let row = repo::UploadRow {
            id: Uuid::now_v7().to_string(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            created_at: self.now_ms(),
            headers: json(&headers),
            tags: json(&tags),
            checksum_algorithm: checksum_algorithm.map(|a| a.name().to_owned()),
            sse_c: customer_key_md5,
            object_lock: (!lock.is_empty()).then(|| json(&lock)),
        };
        repo::insert_upload(&mut tx, &row).await?;
        // The upload's id is the version's: its ACL waits under it.
        if acl.is_some() {
            repo::set_object_acl(&mut tx, &row.id, acl.as_deref()).await?;
        }
        tx.commit().await.map_err(nuage_db::DbError::from)?;
        Ok(MultipartUpload {
            bucket: row.bucket,
            key: row.key,
            upload_id: row.id,
            initiated: row.created_at,
            checksum_algorithm,
        })
    }

    pub async fn upload_part(&self, caller: &S3Caller, req: UploadPart) -> StorageResult<PartInfo> {
        if !(1..=MAX_PARTS).contains(&req.part_number) {
            return Err(StorageError::InvalidArgument(format!(
                "a part number is between 1 and {MAX_PARTS}"
            )));
        }
        if req.content_length.is_some_and(|l| l > MAX_PART_SIZE) {
            return Err(StorageError::EntityTooLarge);
        }
        let (bucket, upload) = self
            .upload_of(caller, &req.bucket, &req.key, &req.upload_id)
            .await?;
        match (&upload.sse_c, &req.customer_key) {
            (Some(stored), Some(given)) if *stored != given.key_md5 => {
                return Err(StorageError::CustomerKeyMismatch);
            }
            (Some(_), None) => return Err(StorageError::CustomerKeyRequired),
            (None, Some(_)) => {
                return Err(StorageError::InvalidRequest(
                    "the upload was not started with a customer key".into(),
                ));
            }
            _ => {}
        }
        let expected_md5 = match &req.content_md5 {
            Some(m) => Some(super::objects::parse_md5(m)?),
            None => None,
        };
        self.check_quota_room(caller, req.content_length.unwrap_or(0) as i64, 0)
            .await?;
        let algorithm = req.checksum.algorithm.or_else(|| {
            upload
                .checksum_algorithm
                .as_deref()
                .and_then(ChecksumAlgorithm::parse)
        });
        let backend = self.backend(&bucket.region)?;
        let wrapping = match &req.customer_key {
            Some(c) => std::sync::Arc::new(super::crypto::WrappingKey::from_bytes(&c.key)),
            None => self.org_key(&caller.org).await?,
        };
        let written = self
            .write_blob(
                backend,
                &wrapping,
                (caller, &upload.id, req.part_number),
                req.body,
                MAX_PART_SIZE,
                algorithm,
            )
            .await?;
        let mut checksum_input = req.checksum;
        checksum_input.algorithm = algorithm;
        let checked = (|| {
            if req.content_length.is_some_and(|l| l != written.size) {
                return Err(StorageError::IncompleteBody);
            }
            if expected_md5.is_some_and(|m| m != written.md5) {
                return Err(StorageError::BadDigest(
                    "the Content-MD5 you specified did not match what was received".into(),
                ));
            }
            checksum_input.verify(written.checksum.as_deref())
        })();
        let checksum = match checked {
            Ok(c) => c,
            Err(e) => {
                let _ = backend.delete(&written.blob_id).await;
                return Err(e);
            }
        };
        let part = repo::PartRow {
            upload_id: upload.id.clone(),
            part_number: i64::from(req.part_number),
            blob_id: written.blob_id.clone(),
            wrapped_key: written.wrapped,
            size: written.size as i64,
            etag: hex::encode(written.md5),
            checksum,
            created_at: self.now_ms(),
        };
        let stored: StorageResult<Vec<String>> = async {
            let mut tx = self.platform().db().begin_write().await?;
            // The upload may have been completed or aborted meanwhile.
            if repo::get_upload(&mut tx, &upload.id).await?.is_none() {
                return Err(StorageError::NoSuchUpload);
            }
            let replaced = repo::upsert_part(&mut tx, &part).await?;
            repo::insert_blob(&mut tx, &part.blob_id, &bucket.region, &upload.id).await?;
            let mut released = Vec::new();
            let mut delta = part.size;
            if let Some(old) = replaced {
                repo::trash_blob(&mut tx, &old.blob_id, &bucket.region, self.now_ms()).await?;
                delta -= old.size;
                released.push(old.blob_id);
            }
            let fits = repo::add_storage(
                &mut tx,
                &Uuid::now_v7().to_string(),
                &bucket.org_id,
                &bucket.name,
                part.created_at,
                delta,
                0,
            )
            .await?;
            if !fits {
                return Err(StorageError::QuotaExceeded);
            }
            tx.commit().await.map_err(nuage_db::DbError::from)?;
            Ok(released)
        }
        .await;
        match stored {
            Ok(released) => {
                self.purge(&bucket.region, released).await;
                Ok(PartInfo::from(part))
            }
            Err(e) => {
                let _ = backend.delete(&written.blob_id).await;
                Err(e)
            }
        }
    }

    /// Stores a part copied from (a range of) another object.
    pub async fn upload_part_copy(
        &self,
        caller: &S3Caller,
        copy: PartCopy,
    ) -> StorageResult<PartInfo> {
        let PartCopy {
            bucket,
            key,
            upload_id,
            part_number,
            source,
            customer_key,
        } = copy;
        let read = match self.get_object(caller, source).await {
            Err(StorageError::NotModified) => return Err(StorageError::PreconditionFailed),
            other => other?,
        };
        self.upload_part(
            caller,
            UploadPart {
                bucket,
                key,
                upload_id,
                part_number,
                content_length: Some(read.content_length),
                content_md5: None,
                checksum: ChecksumInput::default(),
                customer_key,
                body: read.body,
            },
        )
        .await
    }

    pub async fn complete_multipart_upload(
        &self,
        caller: &S3Caller,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
        condition: &WriteCondition,
    ) -> StorageResult<PutOutcome> {
        let (_, upload) = self.upload_of(caller, bucket, key, upload_id).await?;
        if parts.is_empty() {
            return Err(StorageError::InvalidRequest(
                "you must specify at least one part".into(),
            ));
        }
        if parts
            .windows(2)
            .any(|w| w[0].part_number >= w[1].part_number)
        {
            return Err(StorageError::InvalidPartOrder);
        }
        let stored = repo::list_parts(
            &mut *self.platform().db().acquire().await?,
            upload_id,
            0,
            i64::from(MAX_PARTS) + 1,
        )
        .await?;
        let by_number: std::collections::HashMap<u32, &repo::PartRow> =
            stored.iter().map(|p| (p.part_number as u32, p)).collect();
        let algorithm = upload
            .checksum_algorithm
            .as_deref()
            .and_then(ChecksumAlgorithm::parse);
        let mut segments = Vec::with_capacity(parts.len());
        let mut md5s = Vec::with_capacity(parts.len());
        let mut composite = Hasher::new(algorithm);
        let mut size = 0u64;
        for (i, wanted) in parts.iter().enumerate() {
            let etag = wanted.etag.trim().trim_matches('"');
            let part = by_number
                .get(&wanted.part_number)
                .filter(|p| p.etag == etag)
                .ok_or_else(|| {
                    StorageError::InvalidPart(format!(
                        "part {} was not uploaded, or its ETag is not {etag}",
                        wanted.part_number
                    ))
                })?;
            if i + 1 < parts.len() && (part.size as u64) < MIN_PART_SIZE {
                return Err(StorageError::EntityTooSmall);
            }
            let md5: [u8; 16] = hex::decode(&part.etag)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    StorageError::Service(nuage_service::ServiceError::Internal(
                        "a part's ETag is not an MD5".into(),
                    ))
                })?;
            md5s.push(md5);
            if let Some(c) = &part.checksum {
                use base64::Engine;
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(c)
                    .unwrap_or_default();
                composite.update(&raw);
            }
            size += part.size as u64;
            segments.push(Segment {
                part: wanted.part_number,
                blob: part.blob_id.clone(),
                size: part.size as u64,
                key: part.wrapped_key.clone(),
                md5: part.etag.clone(),
                checksum: part.checksum.clone(),
            });
        }
        if size > MAX_OBJECT_SIZE {
            return Err(StorageError::EntityTooLarge);
        }
        let checksum = algorithm.and_then(|a| {
            let (_, sum) = composite.finish();
            sum.map(|s| StoredChecksum {
                algorithm: a,
                value: format!("{}-{}", b64(&s), parts.len()),
                composite: true,
            })
        });
        let etag = rules::multipart_etag(&md5s);
        let mut row = repo::ObjectRow {
            id: upload.id.clone(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version_id: String::new(),
            is_latest: 1,
            delete_marker: 0,
            size: size as i64,
            etag: etag.clone(),
            created_at: self.now_ms(),
            headers: upload.headers,
            tags: upload.tags,
            checksum: checksum.as_ref().map(json),
            segments: json(&segments),
            sse_c: upload.sse_c,
            lock_mode: None,
            lock_until: None,
            legal_hold: 0,
        };
        let lock: VersionLock = upload
            .object_lock
            .as_deref()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_default();
        object_lock::set_lock(&mut row, &lock);
        let last_modified = row.created_at;
        let version_id = self
            .commit_version(caller, row, &[], (Some(upload_id), None), condition)
            .await?;
        Ok(PutOutcome {
            version_id,
            etag,
            checksum,
            size,
            last_modified,
        })
    }

    pub async fn abort_multipart_upload(
        &self,
        caller: &S3Caller,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> StorageResult<()> {
        let (b, _) = self.upload_of(caller, bucket, key, upload_id).await?;
        self.drop_upload(&b, upload_id).await
    }

    /// Removes an upload and releases its parts.
    pub(super) async fn drop_upload(
        &self,
        bucket: &repo::BucketRow,
        upload_id: &str,
    ) -> StorageResult<()> {
        let mut tx = self.platform().db().begin_write().await?;
        let released = self.release_upload(&mut tx, bucket, upload_id).await?;
        tx.commit().await.map_err(nuage_db::DbError::from)?;
        self.purge(&bucket.region, released).await;
        Ok(())
    }

    /// Within `tx`: removes an upload, queues its parts' blobs for removal
    /// and takes their bytes off the bucket's stored total (billing and
    /// quota); the blobs to purge once `tx` commits.
    pub(super) async fn release_upload(
        &self,
        tx: &mut nuage_db::AnyConnection,
        bucket: &repo::BucketRow,
        upload_id: &str,
    ) -> StorageResult<Vec<String>> {
        let parts = repo::list_parts(&mut *tx, upload_id, 0, i64::from(MAX_PARTS) + 1).await?;
        let mut released = Vec::new();
        let mut bytes = 0;
        for p in parts {
            repo::trash_blob(&mut *tx, &p.blob_id, &bucket.region, self.now_ms()).await?;
            bytes += p.size;
            released.push(p.blob_id);
        }
        repo::delete_upload(&mut *tx, upload_id).await?;
        repo::set_object_acl(&mut *tx, upload_id, None).await?;
        repo::add_storage(
            &mut *tx,
            &Uuid::now_v7().to_string(),
            &bucket.org_id,
            &bucket.name,
            self.now_ms(),
            -bytes,
            0,
        )
        .await?;
        Ok(released)
    }

    pub async fn list_multipart_uploads(
        &self,
        caller: &S3Caller,
        bucket: &str,
        prefix: &str,
        key_marker: Option<&str>,
        upload_marker: Option<&str>,
        max: usize,
    ) -> StorageResult<UploadList> {
        let mut conn = self.platform().db().acquire().await?;
        self.owned_bucket(&mut conn, caller, bucket).await?;
        let after = key_marker.map(|k| (k, upload_marker.unwrap_or("\u{10FFFF}")));
        let rows = repo::list_uploads(&mut conn, bucket, prefix, after, max as i64 + 1).await?;
        let mut list = UploadList::default();
        for row in rows {
            if !row.key.starts_with(prefix) {
                break;
            }
            if list.uploads.len() == max {
                list.truncated = true;
                break;
            }
            list.next_key = Some(row.key.clone());
            list.next_upload = Some(row.id.clone());
            list.uploads.push(MultipartUpload {
                bucket: row.bucket,
                key: row.key,
                upload_id: row.id,
                initiated: row.created_at,
                checksum_algorithm: row
                    .checksum_algorithm
                    .as_deref()
                    .and_then(ChecksumAlgorithm::parse),
            });
        }
        Ok(list)
    }

    pub async fn list_parts(
        &self,
        caller: &S3Caller,
        bucket: &str,
        key: &str,
        upload_id: &str,
        after: u32,
        max: usize,
    ) -> StorageResult<(MultipartUpload, Vec<PartInfo>, bool)> {
        let (_, upload) = self.upload_of(caller, bucket, key, upload_id).await?;
        let mut rows = repo::list_parts(
            &mut *self.platform().db().acquire().await?,
            upload_id,
            i64::from(after),
            max as i64 + 1,
        )
        .await?;
        let truncated = rows.len() > max;
        rows.truncate(max);
        Ok((
            MultipartUpload {
                bucket: upload.bucket,
                key: upload.key,
                upload_id: upload.id,
                initiated: upload.created_at,
                checksum_algorithm: upload
                    .checksum_algorithm
                    .as_deref()
                    .and_then(ChecksumAlgorithm::parse),
            },
            rows.into_iter().map(PartInfo::from).collect(),
            truncated,
        ))
    }
}
