//! The drive: an organisation's files and folders, as objects of its drive
//! bucket (the layout is in [`nuage_domain::drive`]). The console and WebDAV
//! call these use cases; S3 reaches the same objects.
//!
//! Uploads and downloads are object writes and reads, so encryption, quotas,
//! versions and metering apply unchanged. A rename or a move — of a file or a
//! whole folder — changes the keys of its object versions in one transaction:
//! no byte is rewritten, and a crash leaves the old tree or the new one.

use nuage_db::repo::storage as repo;
use nuage_domain::drive::{self, DrivePath, TRASH};
use nuage_domain::storage::{Versioning, prefix_successor};
use uuid::Uuid;

use super::multipart::{CompletedPart, NewUpload, PartInfo, UploadPart};
use super::objects::{ChecksumInput, ObjectHeaders};
use super::recorder::{AccessRecord, RequestClass};
use super::{
    BodyStream, ByteRange, CopyObject, GetObject, ListQuery, ObjectInfo, ObjectList, ObjectRead,
    PutObject, PutOutcome, S3Caller, Storage, StorageError, StorageResult, WriteCondition,
};

/// A file or folder of the drive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveEntry {
    pub path: DrivePath,
    pub folder: bool,
    pub size: u64,
    /// Milliseconds since the epoch; 0 for a folder known only by its content.
    pub modified: i64,
    pub etag: String,
    pub content_type: Option<String>,
}

impl DriveEntry {
    fn folder(path: DrivePath, modified: i64) -> Self {
        Self {
            path,
            folder: true,
            size: 0,
            modified,
            etag: String::new(),
            content_type: None,
        }
    }

    fn file(path: DrivePath, info: &ObjectInfo) -> Self {
        Self {
            path,
            folder: false,
            size: info.size,
            modified: info.last_modified,
            etag: info.etag.clone(),
            content_type: info.headers.content_type.clone(),
        }
    }
}

/// An item in the trash.
#[derive(Debug, Clone)]
pub struct TrashItem {
    pub entry: String,
    /// Where it was.
    pub path: DrivePath,
    pub folder: bool,
    pub size: u64,
    pub deleted_at: i64,
}

/// A new file's content.
pub struct Upload {
    pub path: DrivePath,
    pub content_type: Option<String>,
    pub content_length: Option<u64>,
    pub body: BodyStream,
    /// Create missing parent folders (uploads of whole folders).
    pub create_parents: bool,
}

/// The content type in an object's stored headers, without reading the rest.
fn content_type_of(headers: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Brief {
        #[serde(default)]
        content_type: Option<String>,
    }
    serde_json::from_str::<Brief>(headers)
        .ok()
        .and_then(|b| b.content_type)
}

/// One organisation's drive, as one caller acts on it.
#[derive(Clone)]
pub struct Drive {
    storage: Storage,
    caller: S3Caller,
    bucket: String,
}

impl Drive {
    fn now_ms(&self) -> i64 {
        self.storage.now_ms()
    }
}

impl std::fmt::Debug for Drive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drive")
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

fn not_found() -> StorageError {
    StorageError::NoSuchKey
}

fn exists(path: &DrivePath) -> StorageError {
    StorageError::Conflict(format!("{path} already exists"))
}

impl Storage {
    /// The caller's organisation's drive (no I/O; [`Drive::open`] makes sure
    /// its bucket exists).
    pub fn drive(&self, caller: S3Caller) -> Drive {
        Drive {
            storage: self.clone(),
            bucket: drive::bucket_of(&caller.org),
            caller,
        }
    }
}

impl Drive {
    /// Creates the drive's bucket, versioned, in the default region, the
    /// first time the organisation uses its drive.
    pub async fn open(&self) -> StorageResult<()> {
        match self.storage.head_bucket(&self.caller, &self.bucket).await {
            Ok(_) => return Ok(()),
            Err(StorageError::NoSuchBucket) => {}
            Err(e) => return Err(e),
        }
        match self
            .storage
            .create_bucket_unchecked(&self.caller, &self.bucket, None, Default::default())
            .await
        {
            Ok(_) | Err(StorageError::BucketAlreadyOwnedByYou) => {}
            Err(e) => return Err(e),
        }
        if self.storage.versioning(&self.caller, &self.bucket).await? != Versioning::Enabled {
            self.storage
                .set_versioning(&self.caller, &self.bucket, true)
                .await?;
        }
        Ok(())
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn caller(&self) -> &S3Caller {
        &self.caller
    }

    /// Writes a request on the drive to the access log and metering.
    pub fn record(&self, operation: &'static str, key: &str, status: u16, bytes: u64) {
        let class = match operation {
            "DriveGet" | "DriveHead" | "DriveList" => RequestClass::B,
            "DrivePut" | "DriveMove" | "DriveCopy" | "DriveMkdir" => RequestClass::A,
            _ => RequestClass::Free,
        };
        let sent = operation == "DriveGet";
        self.storage.recorder().record(AccessRecord {
            org_id: self.caller.org.to_string(),
            operation,
            bucket: self.bucket.clone(),
            key: Some(key.to_owned()),
            access_key_id: Some(self.caller.access_key_id.clone()),
            source: self.caller.source.clone(),
            status,
            bytes,
            class: if status < 400 {
                class
            } else {
                RequestClass::Free
            },
            egress: if sent && status < 400 { bytes } else { 0 },
            exit: false,
        });
    }

    /// The organisation's storage and quota, which the drive shares.
    pub async fn usage(&self) -> StorageResult<super::StorageUsage> {
        let mut conn = self.storage.platform().db().acquire().await?;
        let row = repo::org_storage(&mut conn, &self.caller.org.to_string()).await?;
        Ok(super::StorageUsage {
            bytes: row.bytes,
            objects: row.objects,
            max_bytes: row.max_bytes,
            max_objects: row.max_objects,
        })
    }

    // --- reading -------------------------------------------------------------

    /// One page of the bucket's listing: keys under `prefix`, after `after`,
    /// grouped at the next `/` when `folders`.
    async fn page(
        &self,
        prefix: &str,
        folders: bool,
        after: Option<String>,
        max_keys: usize,
    ) -> StorageResult<ObjectList> {
        self.storage
            .list_objects(
                &self.caller,
                &self.bucket,
                &ListQuery {
                    prefix: prefix.to_owned(),
                    delimiter: folders.then(|| "/".to_owned()),
                    after,
                    max_keys,
                    ..ListQuery::default()
                },
            )
            .await
    }

    /// What is at a path, if anything.
    pub async fn stat(&self, path: &DrivePath) -> StorageResult<Option<DriveEntry>> {
        if path.is_root() {
            return Ok(Some(DriveEntry::folder(DrivePath::root(), 0)));
        }
        if let Some(info) = self.head(&path.file_key()).await? {
            return Ok(Some(DriveEntry::file(path.clone(), &info)));
        }
        let prefix = path.folder_key();
        let list = self.page(&prefix, false, None, 1).await?;
        Ok(list.objects.first().map(|o| {
            let modified = if o.key == prefix { o.last_modified } else { 0 };
            DriveEntry::folder(path.clone(), modified)
        }))
    }

    async fn head(&self, key: &str) -> StorageResult<Option<ObjectInfo>> {
        match self
            .storage
            .head_object(
                &self.caller,
                &GetObject {
                    bucket: self.bucket.clone(),
                    key: key.to_owned(),
                    ..GetObject::default()
                },
            )
            .await
        {
            Ok(info) => Ok(Some(info)),
            Err(StorageError::NoSuchKey | StorageError::MethodNotAllowed) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The folder at `path`, or an error saying what is there instead.
    async fn folder(&self, path: &DrivePath) -> StorageResult<DriveEntry> {
        match self.stat(path).await? {
            Some(e) if e.folder => Ok(e),
            Some(_) => Err(StorageError::Conflict(format!("{path} is a file"))),
            None => Err(not_found()),
        }
    }

    /// A folder's entries: folders first, then files, each by name. Read
    /// in one scan of the folder's keys, each subfolder skipped in one step,
    /// with only what a listing shows of each file.
    pub async fn list(&self, folder: &DrivePath) -> StorageResult<Vec<DriveEntry>> {
        if !folder.is_root() {
            self.folder(folder).await?;
        }
        const BATCH: i64 = 1000;
        let prefix = folder.folder_key();
        let trash = format!("{TRASH}/");
        let mut folders = Vec::new();
        let mut files = Vec::new();
        let mut conn = self.storage.platform().db().acquire().await?;
        self.storage
            .owned_bucket(&mut conn, &self.caller, &self.bucket)
            .await?;
        let mut from = prefix.clone();
        let mut after: Option<String> = None;
        'scan: loop {
            let rows =
                repo::list_latest_brief(&mut conn, &self.bucket, &from, after.as_deref(), BATCH)
                    .await?;
            let fetched = rows.len() as i64;
            for row in rows {
                let Some(rest) = row.key.strip_prefix(&prefix) else {
                    break 'scan;
                };
                after = Some(row.key.clone());
                // A deleted key shows nowhere, not even as its folder.
                if row.delete_marker == 1 || rest.is_empty() {
                    continue;
                }
                if let Some(slash) = rest.find('/') {
                    let sub = &row.key[..prefix.len() + slash + 1];
                    if !(folder.is_root() && sub == trash)
                        && let Some(path) = DrivePath::from_key(sub)
                    {
                        folders.push(DriveEntry::folder(path, 0));
                    }
                    // Every other key of this subfolder, skipped at once.
                    match prefix_successor(sub) {
                        Some(next) => {
                            from = next;
                            after = None;
                            continue 'scan;
                        }
                        None => break 'scan,
                    }
                }
                if let Some(path) = DrivePath::from_key(&row.key) {
                    files.push(DriveEntry {
                        path,
                        folder: false,
                        size: row.size.max(0) as u64,
                        modified: row.created_at,
                        content_type: content_type_of(&row.headers),
                        etag: row.etag,
                    });
                }
            }
            if fetched < BATCH {
                break;
            }
        }
        drop(conn);
        // Each name is folded once, not at every comparison.
        folders.sort_by_cached_key(|e| drive::fold_name(e.path.name()));
        files.sort_by_cached_key(|e| drive::fold_name(e.path.name()));
        folders.extend(files);
        Ok(folders)
    }

    /// A file's content, or a range of it.
    pub async fn download(
        &self,
        path: &DrivePath,
        version_id: Option<String>,
        range: Option<ByteRange>,
    ) -> StorageResult<ObjectRead> {
        if path.is_root() {
            return Err(not_found());
        }
        match self
            .storage
            .get_object(
                &self.caller,
                GetObject {
                    bucket: self.bucket.clone(),
                    key: path.file_key(),
                    version_id,
                    range,
                    ..GetObject::default()
                },
            )
            .await
        {
            Err(StorageError::MethodNotAllowed) => Err(not_found()),
            other => other,
        }
    }

    /// Files and folders whose name contains `query` (compared folded), at
    /// most `limit`, outside the trash.
    pub async fn search(&self, query: &str, limit: usize) -> StorageResult<Vec<DriveEntry>> {
        let needle = drive::fold_name(query.trim());
        if needle.is_empty() {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        let mut folders = std::collections::BTreeSet::new();
        let mut after = None;
        'scan: loop {
            let page = self.page("", false, after.take(), 1000).await?;
            for o in &page.objects {
                if o.key.starts_with(&format!("{TRASH}/")) {
                    continue;
                }
                let Some(path) = DrivePath::from_key(&o.key) else {
                    continue;
                };
                // Every folder on the way to a key is a folder of the drive.
                for (name, folder) in path.parent().map(|p| p.ancestors()).unwrap_or_default() {
                    if drive::fold_name(&name).contains(&needle) && folders.insert(folder.clone()) {
                        found.push(DriveEntry::folder(folder, 0));
                    }
                }
                let name_matches = drive::fold_name(path.name()).contains(&needle);
                if o.key.ends_with('/') {
                    if name_matches && folders.insert(path.clone()) {
                        found.push(DriveEntry::folder(path, o.last_modified));
                    }
                } else if name_matches {
                    found.push(DriveEntry::file(path, o));
                }
                if found.len() >= limit {
                    break 'scan;
                }
            }
            if !page.truncated {
                break;
            }
            after = page.next;
        }
        found.truncate(limit);
        Ok(found)
    }

    /// Every file under a folder (its whole tree), outside the trash.
    pub async fn files_under(&self, folder: &DrivePath) -> StorageResult<Vec<DriveEntry>> {
        let prefix = folder.folder_key();
        let mut files = Vec::new();
        let mut after = None;
        loop {
            let page = self.page(&prefix, false, after.take(), 1000).await?;
            for o in &page.objects {
                if o.key.ends_with('/') || o.key.starts_with(&format!("{TRASH}/")) {
                    continue;
                }
                if let Some(path) = DrivePath::from_key(&o.key) {
                    files.push(DriveEntry::file(path, o));
                }
            }
            if !page.truncated {
                break;
            }
            after = page.next;
        }
        Ok(files)
    }

    /// A folder and everything in it as one ZIP archive, made while it is
    /// sent (entries stored as they are, under the folder's name). A failure
    /// half-way ends the stream in an error, never in a short archive that
    /// looks whole.
    pub async fn zip(&self, folder: &DrivePath) -> StorageResult<BodyStream> {
        use futures::{AsyncWriteExt, StreamExt};
        let files = self.files_under(folder).await?;
        let base = folder.parent().unwrap_or_default();
        let (writer, reader) = tokio::io::duplex(64 * 1024);
        let drive = self.clone();
        let task = tokio::spawn(async move {
            let mut zip = async_zip::base::write::ZipFileWriter::with_tokio(writer);
            let failed = |e: async_zip::error::ZipError| std::io::Error::other(e.to_string());
            for file in files {
                let name = file
                    .path
                    .as_str()
                    .strip_prefix(base.as_str())
                    .unwrap_or(file.path.as_str())
                    .trim_start_matches('/')
                    .to_owned();
                let mut read = drive
                    .download(&file.path, None, None)
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                let entry =
                    async_zip::ZipEntryBuilder::new(name.into(), async_zip::Compression::Stored);
                let mut out = zip.write_entry_stream(entry).await.map_err(failed)?;
                while let Some(chunk) = read.body.next().await {
                    out.write_all(&chunk?).await?;
                }
                out.close().await.map_err(failed)?;
            }
            zip.close().await.map_err(failed)?;
            Ok::<_, std::io::Error>(())
        });
        let bytes = tokio_util::io::ReaderStream::new(reader);
        // After the last byte, the archive's fate: an error if it failed.
        let end = futures::stream::once(async move {
            match task.await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(Err(e)),
                Err(e) => Some(Err(std::io::Error::other(e.to_string()))),
            }
        })
        .filter_map(futures::future::ready);
        Ok(Box::pin(bytes.chain(end)))
    }

    /// Every version of a file, newest first.
    pub async fn versions(&self, path: &DrivePath) -> StorageResult<Vec<ObjectInfo>> {
        let key = path.file_key();
        let list = self
            .storage
            .list_versions(
                &self.caller,
                &self.bucket,
                &ListQuery {
                    prefix: key.clone(),
                    max_keys: 1000,
                    ..ListQuery::default()
                },
            )
            .await?;
        let versions: Vec<ObjectInfo> = list
            .versions
            .into_iter()
            .filter(|v| v.key == key && !v.delete_marker)
            .collect();
        if versions.is_empty() {
            return Err(not_found());
        }
        Ok(versions)
    }

    // --- writing -------------------------------------------------------------

    /// Refuses a new entry `path` whose name is another entry's but for case
    /// or normalisation, one whose name is taken (unless `replacing_file`
    /// and a file has it), and one whose parent is not a folder.
    pub async fn check_new(&self, path: &DrivePath, replacing_file: bool) -> StorageResult<()> {
        let parent = path.parent().ok_or_else(|| exists(path))?;
        if !parent.is_root() {
            self.folder(&parent).await?;
        }
        // Only names of the same length can clash (case and NFC keep it):
        // one indexed range, filtered in the database, not the whole folder.
        let prefix = parent.folder_key();
        let end = prefix_successor(&prefix);
        let mut conn = self.storage.platform().db().acquire().await?;
        let keys = repo::keys_of_length(
            &mut conn,
            &self.bucket,
            &prefix,
            end.as_deref(),
            path.file_key().chars().count() as i64,
        )
        .await?;
        // A folder known only by what it holds has no marker of its length.
        let implicit_folder = repo::any_key_in(
            &mut conn,
            &self.bucket,
            &path.folder_key(),
            prefix_successor(&path.folder_key()).as_deref(),
        )
        .await?;
        drop(conn);
        let siblings = keys.iter().filter_map(|key| {
            let rest = key.strip_prefix(&prefix)?;
            let (name, folder) = match rest.strip_suffix('/') {
                Some(name) => (name, true),
                None => (rest, false),
            };
            (!name.is_empty() && !name.contains('/')).then_some((name, folder))
        });
        for (name, folder) in siblings.chain(implicit_folder.then_some((path.name(), true))) {
            if drive::clash(name, path.name()) {
                return Err(StorageError::Conflict(format!(
                    "{} differs from {path} only by case or accents",
                    parent.join(name).unwrap_or_default()
                )));
            }
            if name == path.name() && (folder || !replacing_file) {
                return Err(exists(path));
            }
        }
        Ok(())
    }

    /// Creates a folder; its parent must exist.
    pub async fn create_folder(&self, path: &DrivePath) -> StorageResult<DriveEntry> {
        if path.is_root() {
            return Err(exists(path));
        }
        self.check_new(path, false).await?;
        let out = self.put_marker(path).await?;
        Ok(DriveEntry::folder(path.clone(), out.last_modified))
    }

    async fn put_marker(&self, path: &DrivePath) -> StorageResult<PutOutcome> {
        self.storage
            .put_object(
                &self.caller,
                PutObject {
                    bucket: self.bucket.clone(),
                    key: path.folder_key(),
                    headers: ObjectHeaders::default(),
                    tags: Vec::new(),
                    content_length: Some(0),
                    content_md5: None,
                    checksum: ChecksumInput::default(),
                    customer_key: None,
                    lock: Default::default(),
                    acl: Vec::new(),
                    condition: WriteCondition {
                        if_match: None,
                        if_none_match: true,
                    },
                    body: Box::pin(futures::stream::empty()),
                },
            )
            .await
            .map_err(|e| match e {
                StorageError::PreconditionFailed => exists(path),
                other => other,
            })
    }

    /// Creates every missing folder down to `path` (which must not be a file).
    pub async fn create_folders(&self, path: &DrivePath) -> StorageResult<()> {
        for (_, folder) in path.ancestors() {
            match self.stat(&folder).await? {
                Some(e) if e.folder => {}
                Some(_) => return Err(StorageError::Conflict(format!("{folder} is a file"))),
                None => {
                    self.check_new(&folder, false).await?;
                    match self.put_marker(&folder).await {
                        Ok(_) => {}
                        // Made at the same moment by another request.
                        Err(StorageError::Conflict(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(())
    }

    /// Stores a file: a new version when the name is taken by a file.
    pub async fn upload(&self, up: Upload) -> StorageResult<PutOutcome> {
        let path = up.path;
        let parent = path.parent().ok_or_else(|| exists(&path))?;
        if up.create_parents {
            self.create_folders(&parent).await?;
        }
        self.check_new(&path, true).await?;
        self.storage
            .put_object(
                &self.caller,
                PutObject {
                    bucket: self.bucket.clone(),
                    key: path.file_key(),
                    headers: ObjectHeaders {
                        content_type: up.content_type,
                        ..ObjectHeaders::default()
                    },
                    tags: Vec::new(),
                    content_length: up.content_length,
                    content_md5: None,
                    checksum: ChecksumInput::default(),
                    customer_key: None,
                    condition: WriteCondition::default(),
                    lock: Default::default(),
                    acl: Vec::new(),
                    body: up.body,
                },
            )
            .await
    }

    /// Begins a large file's upload in parts, which survives a cut
    /// connection: the parts received are kept (and listed by
    /// [`Drive::received`]) until the upload is finished or cancelled, and the
    /// file shows only once finished. A name already taken is refused now.
    pub async fn begin_upload(
        &self,
        path: &DrivePath,
        content_type: Option<String>,
        create_parents: bool,
    ) -> StorageResult<String> {
        let parent = path.parent().ok_or_else(|| exists(path))?;
        // In a folder still to be made, nothing can clash yet: the name is
        // checked when the upload finishes.
        let parent_missing = !parent.is_root() && self.stat(&parent).await?.is_none();
        if parent_missing && !create_parents {
            return Err(not_found());
        }
        if !parent_missing {
            self.check_new(path, true).await?;
        }
        let upload = self
            .storage
            .create_multipart_upload(
                &self.caller,
                NewUpload {
                    bucket: self.bucket.clone(),
                    key: path.file_key(),
                    headers: ObjectHeaders {
                        content_type,
                        ..ObjectHeaders::default()
                    },
                    tags: Vec::new(),
                    checksum_algorithm: None,
                    customer_key_md5: None,
                    lock: Default::default(),
                    acl: Vec::new(),
                },
            )
            .await?;
        Ok(upload.upload_id)
    }

    /// Stores one part of an upload begun by [`Drive::begin_upload`]; sent
    /// again, a part replaces the earlier copy.
    pub async fn upload_chunk(
        &self,
        path: &DrivePath,
        upload_id: &str,
        part_number: u32,
        content_length: Option<u64>,
        body: BodyStream,
    ) -> StorageResult<PartInfo> {
        self.storage
            .upload_part(
                &self.caller,
                UploadPart {
                    bucket: self.bucket.clone(),
                    key: path.file_key(),
                    upload_id: upload_id.to_owned(),
                    part_number,
                    content_length,
                    content_md5: None,
                    checksum: ChecksumInput::default(),
                    customer_key: None,
                    body,
                },
            )
            .await
    }

    /// The parts of an upload received so far, in order.
    pub async fn received(
        &self,
        path: &DrivePath,
        upload_id: &str,
    ) -> StorageResult<Vec<PartInfo>> {
        let mut parts = Vec::new();
        loop {
            let after = parts.last().map_or(0, |p: &PartInfo| p.part_number);
            let (_, page, truncated) = self
                .storage
                .list_parts(
                    &self.caller,
                    &self.bucket,
                    &path.file_key(),
                    upload_id,
                    after,
                    1000,
                )
                .await?;
            parts.extend(page);
            if !truncated {
                return Ok(parts);
            }
        }
    }

    /// Makes the file of an upload's parts, in one commit: the whole file
    /// shows, or nothing. Its name is checked again: taken meanwhile, the
    /// finish is refused and the parts stay until cancelled or expired.
    pub async fn finish_upload(
        &self,
        path: &DrivePath,
        upload_id: &str,
        create_parents: bool,
    ) -> StorageResult<PutOutcome> {
        let parts = self.received(path, upload_id).await?;
        let parent = path.parent().ok_or_else(|| exists(path))?;
        if create_parents {
            self.create_folders(&parent).await?;
        }
        self.check_new(path, true).await?;
        self.storage
            .complete_multipart_upload(
                &self.caller,
                &self.bucket,
                &path.file_key(),
                upload_id,
                parts
                    .into_iter()
                    .map(|p| CompletedPart {
                        part_number: p.part_number,
                        etag: p.etag,
                    })
                    .collect(),
                &WriteCondition::default(),
            )
            .await
    }

    /// Drops an unfinished upload and the parts it received.
    pub async fn cancel_upload(&self, path: &DrivePath, upload_id: &str) -> StorageResult<()> {
        self.storage
            .abort_multipart_upload(&self.caller, &self.bucket, &path.file_key(), upload_id)
            .await
    }

    /// Renames or moves a file or a folder with everything in it: the keys of
    /// every version change in one transaction, no byte is rewritten. The
    /// destination's parent must be a folder and its name free.
    pub async fn rename(&self, from: &DrivePath, to: &DrivePath) -> StorageResult<()> {
        drive::check_move(from, to)?;
        let source = self.stat(from).await?.ok_or_else(not_found)?;
        let parent = to.parent().ok_or_else(|| exists(to))?;
        // A rename that only changes case is the same entry, not a clash.
        let same_folder = from.parent().as_ref() == Some(&parent);
        match self.check_new(to, false).await {
            Err(StorageError::Conflict(_))
                if same_folder && drive::fold_name(from.name()) == drive::fold_name(to.name()) => {}
            other => other?,
        }
        let (from_key, to_key) = if source.folder {
            (from.folder_key(), to.folder_key())
        } else {
            (from.file_key(), to.file_key())
        };
        self.move_keys(&from_key, &to_key, source.folder).await
    }

    /// Moves one key (every version) or every key under a prefix, in one
    /// write transaction; refuses when anything already has the new keys.
    async fn move_keys(&self, from: &str, to: &str, tree: bool) -> StorageResult<()> {
        let storage = &self.storage;
        let mut tx = storage.platform().db().begin_write().await?;
        storage
            .owned_bucket(&mut tx, &self.caller, &self.bucket)
            .await?;
        let taken = if tree {
            let end = prefix_successor(to);
            // A file at the folder's name is taken too.
            let file = to.trim_end_matches('/');
            repo::any_key_in(&mut tx, &self.bucket, to, end.as_deref()).await?
                || repo::any_version_of(&mut tx, &self.bucket, file).await?
        } else {
            repo::any_version_of(&mut tx, &self.bucket, to).await?
                || repo::any_key_in(
                    &mut tx,
                    &self.bucket,
                    &format!("{to}/"),
                    prefix_successor(&format!("{to}/")).as_deref(),
                )
                .await?
        };
        if taken {
            return Err(StorageError::Conflict(format!(
                "/{} already exists or holds a deleted file's history",
                to.trim_end_matches('/')
            )));
        }
        let moved = if tree {
            let end = prefix_successor(from);
            repo::rename_prefix(&mut tx, &self.bucket, from, end.as_deref(), to).await?
        } else {
            repo::rename_key(&mut tx, &self.bucket, from, to).await?
        };
        if moved == 0 {
            return Err(not_found());
        }
        // Links and grants follow a rename or a move (not a trip to the
        // trash: a trashed item's links answer nothing until it is restored).
        let trash = format!("{TRASH}/");
        if !from.starts_with(&trash) && !to.starts_with(&trash) {
            nuage_db::repo::drive::follow_move(
                &mut tx,
                &self.caller.org.to_string(),
                from.trim_end_matches('/'),
                to.trim_end_matches('/'),
            )
            .await?;
        }
        storage.platform().probe("drive.move");
        tx.commit().await.map_err(nuage_db::DbError::from)?;
        storage.changed();
        Ok(())
    }

    /// Copies a file (its latest version) to a free name.
    pub async fn copy(&self, from: &DrivePath, to: &DrivePath) -> StorageResult<PutOutcome> {
        drive::check_move(from, to)?;
        self.check_new(to, true).await?;
        self.storage
            .copy_object(
                &self.caller,
                CopyObject {
                    source: GetObject {
                        bucket: self.bucket.clone(),
                        key: from.file_key(),
                        ..GetObject::default()
                    },
                    bucket: self.bucket.clone(),
                    key: to.file_key(),
                    ..CopyObject::default()
                },
            )
            .await
            .map_err(|e| match e {
                StorageError::MethodNotAllowed => not_found(),
                other => other,
            })
    }

    /// Makes an older version of a file its current content again (as a new
    /// version, so nothing is lost).
    pub async fn restore_version(
        &self,
        path: &DrivePath,
        version_id: &str,
    ) -> StorageResult<PutOutcome> {
        self.storage
            .copy_object(
                &self.caller,
                CopyObject {
                    source: GetObject {
                        bucket: self.bucket.clone(),
                        key: path.file_key(),
                        version_id: Some(version_id.to_owned()),
                        ..GetObject::default()
                    },
                    bucket: self.bucket.clone(),
                    key: path.file_key(),
                    ..CopyObject::default()
                },
            )
            .await
    }

    // --- the trash -----------------------------------------------------------

    /// Moves a file or folder to the trash (a move: nothing is deleted).
    pub async fn trash(&self, path: &DrivePath) -> StorageResult<String> {
        if path.is_root() {
            return Err(StorageError::InvalidArgument(
                "the root folder cannot be deleted".into(),
            ));
        }
        let source = self.stat(path).await?.ok_or_else(not_found)?;
        let entry = format!(
            "{:013}-{}",
            self.now_ms(),
            &Uuid::new_v4().simple().to_string()[..8]
        );
        let to = drive::trash_key(&entry, path);
        if source.folder {
            self.move_keys(&path.folder_key(), &format!("{to}/"), true)
                .await?;
        } else {
            self.move_keys(&path.file_key(), &to, false).await?;
        }
        Ok(entry)
    }

    /// What the trash holds, most recently deleted first.
    pub async fn trash_items(&self) -> StorageResult<Vec<TrashItem>> {
        let root = format!("{TRASH}/");
        let entries = self.page(&root, true, None, 100_000).await?;
        let mut items = Vec::new();
        for prefix in entries.prefixes.iter().rev() {
            if let Some(item) = self.trash_item_at(prefix).await? {
                items.push(item);
            }
        }
        Ok(items)
    }

    async fn trash_item_at(&self, entry_prefix: &str) -> StorageResult<Option<TrashItem>> {
        let inside = self.page(entry_prefix, false, None, 100_000).await?;
        let Some(first) = inside.objects.first() else {
            return Ok(None);
        };
        let Some((entry, full)) = drive::parse_trash_key(&first.key) else {
            return Ok(None);
        };
        // The item is the shallowest path under the entry.
        let depth = inside
            .objects
            .iter()
            .filter_map(|o| drive::parse_trash_key(&o.key))
            .map(|(_, p)| p.ancestors().len())
            .min()
            .unwrap_or(0);
        let top = full
            .ancestors()
            .get(depth.saturating_sub(1))
            .map(|(_, p)| p.clone())
            .unwrap_or(full.clone());
        let folder = inside
            .objects
            .iter()
            .any(|o| o.key.ends_with('/') || o.key.len() > drive::trash_key(&entry, &top).len());
        let deleted_at = entry
            .split('-')
            .next()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        Ok(Some(TrashItem {
            size: inside.objects.iter().map(|o| o.size).sum(),
            entry,
            path: top,
            folder,
            deleted_at,
        }))
    }

    /// Puts an item of the trash back where it was — under another name
    /// (`name (2).ext`) if that one was taken since, recreating its folder
    /// if it is gone. Returns where it went.
    pub async fn restore(&self, entry: &str) -> StorageResult<DrivePath> {
        if entry.is_empty() || entry.contains('/') {
            return Err(not_found());
        }
        let item = self
            .trash_item_at(&format!("{TRASH}/{entry}/"))
            .await?
            .ok_or_else(not_found)?;
        let parent = item.path.parent().unwrap_or_default();
        self.create_folders(&parent).await?;
        let mut target = item.path.clone();
        let mut n = 2;
        while let Err(StorageError::Conflict(_)) = self.check_new(&target, false).await {
            target = parent.join(&drive::numbered(item.path.name(), n))?;
            n += 1;
            if n > 1000 {
                return Err(exists(&item.path));
            }
        }
        let from = drive::trash_key(entry, &item.path);
        if item.folder {
            self.move_keys(&format!("{from}/"), &target.folder_key(), true)
                .await?;
        } else {
            self.move_keys(&from, &target.file_key(), false).await?;
        }
        Ok(target)
    }

    /// Deletes an item of the trash for good, every version of it; `None`
    /// empties the whole trash. Returns the bytes freed.
    pub async fn purge(&self, entry: Option<&str>) -> StorageResult<u64> {
        let prefix = match entry {
            Some(e) if !e.is_empty() && !e.contains('/') => format!("{TRASH}/{e}/"),
            Some(_) => return Err(not_found()),
            None => format!("{TRASH}/"),
        };
        let storage = &self.storage;
        let mut tx = storage.platform().db().begin_write().await?;
        let b = storage
            .owned_bucket(&mut tx, &self.caller, &self.bucket)
            .await?;
        let end = prefix_successor(&prefix);
        let rows = repo::versions_in(&mut tx, &self.bucket, &prefix, end.as_deref()).await?;
        let mut released = Vec::new();
        let (mut bytes, mut objects) = (0, 0);
        for row in &rows {
            let (size, count) = storage
                .release_version(&mut tx, &b.region, row, &mut released, false)
                .await?;
            bytes += size;
            objects += count;
        }
        repo::add_storage(
            &mut tx,
            &Uuid::now_v7().to_string(),
            &b.org_id,
            &self.bucket,
            self.now_ms(),
            -bytes,
            -objects,
        )
        .await?;
        tx.commit().await.map_err(nuage_db::DbError::from)?;
        storage.changed();
        storage.purge(&b.region, released).await;
        Ok(bytes as u64)
    }
}
