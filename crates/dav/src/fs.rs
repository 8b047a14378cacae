//! The drive as a dav-server file system. Paths are parsed into
//! [`DrivePath`]s at this edge; every operation is one drive use case.

use std::io::SeekFrom;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes};
use dav_server::davpath::DavPath;
use dav_server::fs::{
    DavDirEntry, DavFile, DavFileSystem, DavMetaData, FsError, FsFuture, FsResult, FsStream,
    OpenOptions, ReadDirMeta,
};
use futures::{FutureExt, StreamExt};
use nuage_domain::drive::DrivePath;
use nuage_storage::drive::{Drive, DriveEntry, Upload};
use nuage_storage::{BodyStream, ByteRange, PutOutcome, StorageError, StorageResult};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The one mapping of drive errors to WebDAV statuses.
pub(crate) fn fs_error(e: StorageError) -> FsError {
    match e {
        StorageError::NoSuchKey | StorageError::NoSuchVersion | StorageError::NoSuchBucket => {
            FsError::NotFound
        }
        // A name taken, or taken at the same moment by another client (the
        // database's unique constraint).
        StorageError::Conflict(_)
        | StorageError::PreconditionFailed
        | StorageError::Service(nuage_service::ServiceError::Conflict(_)) => FsError::Exists,
        StorageError::InvalidArgument(_) | StorageError::AccessDenied => FsError::Forbidden,
        StorageError::QuotaExceeded => FsError::InsufficientStorage,
        StorageError::EntityTooLarge => FsError::TooLarge,
        other => {
            tracing::error!(error = %other, "drive operation failed");
            FsError::GeneralFailure
        }
    }
}

/// A request's path as a drive path; a path the drive refuses is forbidden.
pub(crate) fn drive_path(path: &DavPath) -> FsResult<DrivePath> {
    let raw = std::str::from_utf8(path.as_bytes()).map_err(|_| FsError::Forbidden)?;
    DrivePath::parse(raw).map_err(|_| FsError::Forbidden)
}

/// Where a WebDAV tree is mounted: its URL prefix, and the folder of the
/// drive it shows (the drive's root, or the folder of a share with a
/// person). Requests' paths are parsed below `root` and never leave it.
#[derive(Debug, Clone)]
pub struct Mount {
    pub prefix: String,
    pub root: DrivePath,
}

impl Mount {
    /// The whole drive, at `/dav/`.
    pub fn drive() -> Self {
        Self {
            prefix: crate::PREFIX.to_owned(),
            root: DrivePath::root(),
        }
    }

    /// A folder shared with the user, at `/dav-shared/<grant>/`.
    pub fn shared(grant: &str, root: DrivePath) -> Self {
        Self {
            prefix: format!("{}/{grant}", crate::SHARED),
            root,
        }
    }

    /// The drive path a request's path names.
    pub fn path(&self, path: &DavPath) -> FsResult<DrivePath> {
        let relative = drive_path(path)?;
        self.root
            .descend(relative.as_str())
            .map_err(|_| FsError::Forbidden)
    }

    /// A drive path as this mount shows it; `None` outside the mount.
    pub fn dav(&self, path: &DrivePath) -> Option<DavPath> {
        if !self.root.contains(path) {
            return None;
        }
        let encoded: String = path
            .relative_to(&self.root)
            .split('/')
            .map(|s| {
                percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join("/");
        let mut dav = DavPath::new(&format!("{}/{encoded}", self.prefix)).ok()?;
        dav.set_prefix(&self.prefix).ok()?;
        Some(dav)
    }
}

fn time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

#[derive(Debug, Clone)]
struct Meta(DriveEntry);

impl DavMetaData for Meta {
    fn len(&self) -> u64 {
        self.0.size
    }

    fn modified(&self) -> FsResult<SystemTime> {
        Ok(time(self.0.modified))
    }

    fn is_dir(&self) -> bool {
        self.0.folder
    }

    fn etag(&self) -> Option<String> {
        (!self.0.folder).then(|| self.0.etag.clone())
    }
}

struct Entry(DriveEntry);

impl DavDirEntry for Entry {
    fn name(&self) -> Vec<u8> {
        self.0.path.name().as_bytes().to_vec()
    }

    fn metadata(&self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let meta: Box<dyn DavMetaData> = Box::new(Meta(self.0.clone()));
        futures::future::ready(Ok(meta)).boxed()
    }
}

/// One organisation's drive over WebDAV, or the folder of it that a share
/// with a person opens (read-only unless the share gives write access).
#[derive(Clone)]
pub struct DriveFs {
    drive: Drive,
    mount: Mount,
    writable: bool,
}

impl DriveFs {
    pub fn new(drive: Drive, mount: Mount, writable: bool) -> Self {
        Self {
            drive,
            mount,
            writable,
        }
    }

    fn path(&self, path: &DavPath) -> FsResult<DrivePath> {
        self.mount.path(path)
    }

    /// A path this mount may change: not its root, and only when writable.
    fn changeable(&self, path: &DavPath) -> FsResult<DrivePath> {
        let path = self.path(path)?;
        if !self.writable || path == self.mount.root {
            return Err(FsError::Forbidden);
        }
        Ok(path)
    }
}

impl DavFileSystem for DriveFs {
    fn open<'a>(
        &'a self,
        path: &'a DavPath,
        options: OpenOptions,
    ) -> FsFuture<'a, Box<dyn DavFile>> {
        async move {
            let path = if options.write {
                self.changeable(path)?
            } else {
                self.path(path)?
            };
            let current = self.drive.stat(&path).await.map_err(fs_error)?;
            if current.as_ref().is_some_and(|e| e.folder) {
                return Err(FsError::Forbidden);
            }
            if !options.write {
                let entry = current.ok_or(FsError::NotFound)?;
                let file: Box<dyn DavFile> = Box::new(ReadFile {
                    drive: self.drive.clone(),
                    entry,
                    pos: 0,
                    body: None,
                });
                return Ok(file);
            }
            if options.create_new && current.is_some() {
                return Err(FsError::Exists);
            }
            if !options.create && current.is_none() {
                return Err(FsError::NotFound);
            }
            // A file in a folder that does not exist: dav-server answers
            // 409 Conflict, as RFC 4918 asks.
            let parent = path.parent().ok_or(FsError::Forbidden)?;
            if !self
                .drive
                .stat(&parent)
                .await
                .map_err(fs_error)?
                .is_some_and(|e| e.folder)
            {
                return Err(FsError::NotFound);
            }
            match self.drive.check_new(&path, true).await {
                Ok(()) => {}
                Err(StorageError::Conflict(_)) => return Err(FsError::Exists),
                Err(e) => return Err(fs_error(e)),
            }
            // A ranged PUT (Content-Range) or SabreDAV's PATCH writes part of
            // the file: the new version is the old one's bytes around the
            // client's, streamed, never held whole.
            let patch = (options.append || !options.truncate).then(|| {
                let original = current
                    .map(|e| (e.size, e.content_type))
                    .unwrap_or_default();
                Patch {
                    // Appending writes after the end; a range is placed by
                    // `seek`.
                    offset: if options.append { original.0 } else { 0 },
                    original,
                    append: options.append,
                }
            });
            let file: Box<dyn DavFile> = Box::new(WriteFile::new(
                self.drive.clone(),
                path,
                options.size,
                patch,
            ));
            Ok(file)
        }
        .boxed()
    }

    fn read_dir<'a>(
        &'a self,
        path: &'a DavPath,
        _meta: ReadDirMeta,
    ) -> FsFuture<'a, FsStream<Box<dyn DavDirEntry>>> {
        async move {
            let path = self.path(path)?;
            let entries = self.drive.list(&path).await.map_err(fs_error)?;
            let stream: FsStream<Box<dyn DavDirEntry>> = Box::pin(futures::stream::iter(
                entries
                    .into_iter()
                    .map(|e| Ok(Box::new(Entry(e)) as Box<dyn DavDirEntry>)),
            ));
            Ok(stream)
        }
        .boxed()
    }

    fn metadata<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, Box<dyn DavMetaData>> {
        async move {
            let path = self.path(path)?;
            let entry = self
                .drive
                .stat(&path)
                .await
                .map_err(fs_error)?
                .ok_or(FsError::NotFound)?;
            Ok(Box::new(Meta(entry)) as Box<dyn DavMetaData>)
        }
        .boxed()
    }

    fn create_dir<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let path = self.changeable(path)?;
            match self.drive.create_folder(&path).await {
                Ok(_) => Ok(()),
                Err(StorageError::NoSuchKey) => Err(FsError::NotFound),
                Err(e) => Err(fs_error(e)),
            }
        }
        .boxed()
    }

    fn remove_dir<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        self.remove_file(path)
    }

    fn remove_file<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let path = self.changeable(path)?;
            self.drive.trash(&path).await.map_err(fs_error)?;
            Ok(())
        }
        .boxed()
    }

    fn rename<'a>(&'a self, from: &'a DavPath, to: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let (from, to) = (self.changeable(from)?, self.changeable(to)?);
            self.drive.rename(&from, &to).await.map_err(fs_error)
        }
        .boxed()
    }

    fn copy<'a>(&'a self, from: &'a DavPath, to: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let (from, to) = (self.path(from)?, self.changeable(to)?);
            self.drive.copy(&from, &to).await.map_err(fs_error)?;
            Ok(())
        }
        .boxed()
    }

    fn get_quota(&self) -> FsFuture<'_, (u64, Option<u64>)> {
        async move {
            let usage = self.drive.usage().await.map_err(fs_error)?;
            Ok((
                usage.bytes.max(0) as u64,
                usage.max_bytes.map(|m| m.max(0) as u64),
            ))
        }
        .boxed()
    }
}

/// A file being read: a download from the current position, restarted
/// after a seek.
struct ReadFile {
    drive: Drive,
    entry: DriveEntry,
    pos: u64,
    /// The download under way (in a mutex only to be `Sync`; reached
    /// through `&mut self`, never locked).
    body: Option<std::sync::Mutex<(BodyStream, Bytes)>>,
}

impl std::fmt::Debug for ReadFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadFile")
            .field("path", &self.entry.path)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl DavFile for ReadFile {
    fn metadata(&mut self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let meta: Box<dyn DavMetaData> = Box::new(Meta(self.entry.clone()));
        futures::future::ready(Ok(meta)).boxed()
    }

    fn write_buf(&mut self, _buf: Box<dyn Buf + Send>) -> FsFuture<'_, ()> {
        futures::future::ready(Err(FsError::Forbidden)).boxed()
    }

    fn write_bytes(&mut self, _buf: Bytes) -> FsFuture<'_, ()> {
        futures::future::ready(Err(FsError::Forbidden)).boxed()
    }

    fn read_bytes(&mut self, count: usize) -> FsFuture<'_, Bytes> {
        async move {
            if self.pos >= self.entry.size || count == 0 {
                return Ok(Bytes::new());
            }
            if self.body.is_none() {
                let range = (self.pos > 0).then_some(ByteRange::FromTo(self.pos, None));
                let read = self
                    .drive
                    .download(&self.entry.path, None, range)
                    .await
                    .map_err(fs_error)?;
                self.body = Some(std::sync::Mutex::new((read.body, Bytes::new())));
            }
            let Some(Ok((stream, buffer))) = self.body.as_mut().map(|m| m.get_mut()) else {
                return Ok(Bytes::new());
            };
            while buffer.is_empty() {
                match stream.next().await {
                    Some(Ok(chunk)) => *buffer = chunk,
                    Some(Err(e)) => {
                        tracing::error!(error = %e, "drive read failed");
                        return Err(FsError::GeneralFailure);
                    }
                    None => return Ok(Bytes::new()),
                }
            }
            let out = buffer.split_to(count.min(buffer.len()));
            self.pos += out.len() as u64;
            Ok(out)
        }
        .boxed()
    }

    fn seek(&mut self, pos: SeekFrom) -> FsFuture<'_, u64> {
        let size = self.entry.size as i64;
        let target = match pos {
            SeekFrom::Start(p) => p as i64,
            SeekFrom::End(d) => size + d,
            SeekFrom::Current(d) => self.pos as i64 + d,
        };
        if target < 0 {
            return futures::future::ready(Err(FsError::GeneralFailure)).boxed();
        }
        if target as u64 != self.pos {
            self.pos = target as u64;
            self.body = None;
        }
        futures::future::ready(Ok(self.pos)).boxed()
    }

    fn flush(&mut self) -> FsFuture<'_, ()> {
        futures::future::ready(Ok(())).boxed()
    }
}

type Chunk = Result<Bytes, std::io::Error>;

/// A write of part of an existing file: the client's bytes go at `offset`
/// (the end, when appending) of the file as it was.
#[derive(Debug, Clone, Default)]
struct Patch {
    /// The file's size and content type before the write.
    original: (u64, Option<String>),
    offset: u64,
    /// Appending: the bytes go after the end, wherever `seek` points (as
    /// with a file opened `O_APPEND`; dav-server seeks to 0 first).
    append: bool,
}

/// A file being written: its bytes flow into one upload, which commits only
/// once the client's body is complete (flushed, with the announced length).
/// A client that goes away leaves nothing behind.
struct WriteFile {
    drive: Drive,
    path: DrivePath,
    size: Option<u64>,
    written: u64,
    patch: Option<Patch>,
    sender: Option<mpsc::Sender<Chunk>>,
    complete: Arc<AtomicBool>,
    /// What the client wrote in all, read by a patch's tail once known.
    end: Arc<std::sync::atomic::AtomicU64>,
    upload: Option<JoinHandle<StorageResult<PutOutcome>>>,
}

impl std::fmt::Debug for WriteFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteFile")
            .field("path", &self.path)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

/// Bytes `from..to` (`to` excluded; the end when `None`) of a file as it
/// is now, as a stream; nothing when the range is empty.
fn original_bytes(drive: Drive, path: DrivePath, from: u64, to: Option<u64>) -> BodyStream {
    if to.is_some_and(|to| to <= from) {
        return Box::pin(futures::stream::empty());
    }
    let read = async move {
        let range = ByteRange::FromTo(from, to.map(|to| to - 1));
        match drive.download(&path, None, Some(range)).await {
            Ok(read) => read.body,
            Err(StorageError::InvalidRange) => Box::pin(futures::stream::empty()),
            Err(e) => Box::pin(futures::stream::once(async move {
                Err(std::io::Error::other(e.to_string()))
            })),
        }
    };
    Box::pin(futures::stream::once(read).flatten())
}

impl WriteFile {
    fn new(drive: Drive, path: DrivePath, size: Option<u64>, patch: Option<Patch>) -> Self {
        let mut file = Self {
            drive,
            path,
            size,
            written: 0,
            patch,
            sender: None,
            complete: Arc::new(AtomicBool::new(false)),
            end: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            upload: None,
        };
        // A whole file starts at once; a patch once its offset is known
        // (the first write, after `seek`).
        if file.patch.is_none() {
            file.begin();
        }
        file
    }

    /// Starts the upload: the client's bytes, between the original's
    /// bytes before and after them for a patch.
    fn begin(&mut self) {
        if self.upload.is_some() {
            return;
        }
        let (sender, receiver) = mpsc::channel::<Chunk>(4);
        let done = self.complete.clone();
        // The body ends cleanly only when the file was flushed whole.
        let written: BodyStream = Box::pin(futures::stream::unfold(Some(receiver), move |state| {
            let done = done.clone();
            async move {
                let mut receiver = state?;
                match receiver.recv().await {
                    Some(chunk) => Some((chunk, Some(receiver))),
                    None if done.load(Ordering::Acquire) => None,
                    None => Some((
                        Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the client stopped before the end of the file",
                        )),
                        None,
                    )),
                }
            }
        }));
        let (body, content_type, content_length) = match &self.patch {
            None => (written, None, self.size),
            Some(patch) => {
                let (original, content_type) = patch.original.clone();
                let offset = patch.offset;
                let before = original_bytes(
                    self.drive.clone(),
                    self.path.clone(),
                    0,
                    Some(offset.min(original)),
                );
                // After the client's bytes: the original's, from where they
                // end (known once the client is done).
                let (drive, path, end) = (self.drive.clone(), self.path.clone(), self.end.clone());
                let after = futures::stream::once(async move {
                    let from = offset + end.load(Ordering::Acquire);
                    original_bytes(drive, path, from, Some(original))
                })
                .flatten();
                let total = self.size.map(|n| original.max(offset + n));
                let body: BodyStream = Box::pin(before.chain(written).chain(after));
                (body, content_type, total)
            }
        };
        let (drive, upload_path) = (self.drive.clone(), self.path.clone());
        self.upload = Some(tokio::spawn(async move {
            drive
                .upload(Upload {
                    path: upload_path,
                    content_type,
                    content_length,
                    body,
                    create_parents: false,
                })
                .await
        }));
        self.sender = Some(sender);
    }

    async fn send(&mut self, bytes: Bytes) -> FsResult<()> {
        self.begin();
        self.written += bytes.len() as u64;
        if self.size.is_some_and(|s| self.written > s) {
            return Err(FsError::GeneralFailure);
        }
        let Some(sender) = &self.sender else {
            return Err(FsError::GeneralFailure);
        };
        if sender.send(Ok(bytes)).await.is_err() {
            // The upload stopped: its error says why.
            return Err(self.finish().await.err().unwrap_or(FsError::GeneralFailure));
        }
        Ok(())
    }

    async fn finish(&mut self) -> FsResult<()> {
        self.sender = None;
        let Some(upload) = self.upload.take() else {
            return Ok(());
        };
        match upload.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(fs_error(e)),
            Err(_) => Err(FsError::GeneralFailure),
        }
    }
}

impl DavFile for WriteFile {
    fn metadata(&mut self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let entry = DriveEntry {
            path: self.path.clone(),
            folder: false,
            size: self.written,
            modified: 0,
            etag: String::new(),
            content_type: None,
        };
        let meta: Box<dyn DavMetaData> = Box::new(Meta(entry));
        futures::future::ready(Ok(meta)).boxed()
    }

    fn write_buf(&mut self, mut buf: Box<dyn Buf + Send>) -> FsFuture<'_, ()> {
        let bytes = buf.copy_to_bytes(buf.remaining());
        self.write_bytes(bytes)
    }

    fn write_bytes(&mut self, buf: Bytes) -> FsFuture<'_, ()> {
        async move { self.send(buf).await }.boxed()
    }

    fn read_bytes(&mut self, _count: usize) -> FsFuture<'_, Bytes> {
        futures::future::ready(Err(FsError::Forbidden)).boxed()
    }

    fn seek(&mut self, pos: SeekFrom) -> FsFuture<'_, u64> {
        // A patch places its bytes anywhere in the file as it was, before
        // the first of them is written; otherwise the file is written in
        // order, and the only place to seek is where it already is.
        let at = match (&mut self.patch, self.upload.is_some(), pos) {
            (Some(patch), false, SeekFrom::Start(p)) if p <= patch.original.0 => {
                if !patch.append {
                    patch.offset = p;
                }
                Ok(p)
            }
            (Some(patch), false, SeekFrom::End(0)) => {
                patch.offset = patch.original.0;
                Ok(patch.offset)
            }
            (patch, _, SeekFrom::Start(p))
                if p == self.written + patch.as_ref().map_or(0, |p| p.offset) =>
            {
                Ok(p)
            }
            (patch, _, SeekFrom::Current(0)) => {
                Ok(self.written + patch.as_ref().map_or(0, |p| p.offset))
            }
            _ => Err(FsError::Forbidden),
        };
        futures::future::ready(at).boxed()
    }

    fn flush(&mut self) -> FsFuture<'_, ()> {
        async move {
            if self.upload.is_none() {
                return Ok(());
            }
            if self.size.is_some_and(|s| s != self.written) {
                // Short or long: the upload fails, nothing is stored.
                self.sender = None;
                if let Some(upload) = self.upload.take() {
                    let _ = upload.await;
                }
                return Err(FsError::GeneralFailure);
            }
            self.end.store(self.written, Ordering::Release);
            self.complete.store(true, Ordering::Release);
            self.finish().await
        }
        .boxed()
    }
}

impl Drop for WriteFile {
    fn drop(&mut self) {
        // Not flushed: the body ends in an error, and the upload with it.
        self.sender = None;
    }
}
