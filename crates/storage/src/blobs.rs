//! Where blobs (sealed object content) live: a region's backend. The local
//! backend writes a blob under `incoming/`, fsyncs it, renames it into place
//! and fsyncs the directory, so that a blob the metadata points to is whole
//! on disk before the metadata commits. A remote backend (any S3- or
//! Swift-compatible store, through OpenDAL) has a blob once the store
//! acknowledged its upload. Files in `incoming/` and blobs that no metadata
//! points to are collected later. Blobs are ciphertext: a remote store never
//! sees content in the clear.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tokio::io::AsyncWriteExt;

/// A region's blob store.
#[derive(Debug, Clone)]
pub enum Backend {
    Local(LocalBlobs),
    Remote(RemoteBlobs),
}

/// How to reach a region's blob store.
#[derive(Clone)]
pub enum BackendSettings {
    /// A folder on this machine.
    Local(PathBuf),
    /// A bucket of an S3-compatible store (Ceph, Garage, another Nuage…).
    S3 {
        endpoint: String,
        bucket: String,
        region: String,
        access_key_id: String,
        secret_access_key: String,
        /// A folder inside the bucket.
        root: String,
    },
    /// A container of an OpenStack Swift store.
    Swift {
        endpoint: String,
        container: String,
        token: String,
        root: String,
    },
}

impl std::fmt::Debug for BackendSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(p) => f.debug_tuple("Local").field(p).finish(),
            Self::S3 {
                endpoint, bucket, ..
            } => f
                .debug_struct("S3")
                .field("endpoint", endpoint)
                .field("bucket", bucket)
                .finish_non_exhaustive(),
            Self::Swift {
                endpoint,
                container,
                ..
            } => f
                .debug_struct("Swift")
                .field("endpoint", endpoint)
                .field("container", container)
                .finish_non_exhaustive(),
        }
    }
}

impl Backend {
    pub fn open(settings: &BackendSettings) -> std::io::Result<Self> {
        use opendal::layers::{RetryLayer, TimeoutLayer};
        // Remote stores are reached with reqwest over rustls (with the
        // process's crypto provider); installed once for the process.
        static TRANSPORT: std::sync::Once = std::sync::Once::new();
        if !matches!(settings, BackendSettings::Local(_)) {
            TRANSPORT.call_once(opendal_http_transport_reqwest::install_default);
        }
        let op = match settings {
            BackendSettings::Local(folder) => {
                return Ok(Self::Local(LocalBlobs::open(folder.clone())?));
            }
            BackendSettings::S3 {
                endpoint,
                bucket,
                region,
                access_key_id,
                secret_access_key,
                root,
            } => opendal::Operator::new(
                opendal::services::S3::default()
                    .endpoint(endpoint)
                    .bucket(bucket)
                    .region(region)
                    .access_key_id(access_key_id)
                    .secret_access_key(secret_access_key)
                    .root(root)
                    .disable_config_load(),
            )
            .map_err(std::io::Error::other)?
            .layer(TimeoutLayer::new())
            .layer(RetryLayer::new()),
            BackendSettings::Swift {
                endpoint,
                container,
                token,
                root,
            } => opendal::Operator::new(
                opendal::services::Swift::default()
                    .endpoint(endpoint)
                    .container(container)
                    .token(token)
                    .root(root),
            )
            .map_err(std::io::Error::other)?
            .layer(TimeoutLayer::new())
            .layer(RetryLayer::new()),
        };
        Ok(Self::Remote(RemoteBlobs { op }))
    }

    pub async fn create(&self, blob_id: &str) -> std::io::Result<BlobWriter> {
        match self {
            Self::Local(l) => l.create(blob_id).await,
            Self::Remote(r) => r.create(blob_id).await,
        }
    }

    pub async fn read(&self, blob_id: &str, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        match self {
            Self::Local(l) => l.read(blob_id, offset, len).await,
            Self::Remote(r) => r.read(blob_id, offset, len).await,
        }
    }

    pub async fn delete(&self, blob_id: &str) -> std::io::Result<()> {
        match self {
            Self::Local(l) => l.delete(blob_id).await,
            Self::Remote(r) => r.delete(blob_id).await,
        }
    }

    pub async fn delete_incoming(&self, blob_id: &str) -> std::io::Result<()> {
        match self {
            Self::Local(l) => l.delete_incoming(blob_id).await,
            Self::Remote(r) => r.delete(blob_id).await,
        }
    }

    pub async fn list(&self) -> std::io::Result<Vec<StoredBlob>> {
        match self {
            Self::Local(l) => l.list().await,
            Self::Remote(r) => r.list().await,
        }
    }
}

/// A region's blob store in a remote object store.
#[derive(Debug, Clone)]
pub struct RemoteBlobs {
    op: opendal::Operator,
}

fn remote_path(blob_id: &str) -> String {
    format!("blobs/{blob_id}")
}

impl RemoteBlobs {
    async fn create(&self, blob_id: &str) -> std::io::Result<BlobWriter> {
        let writer = self
            .op
            .writer_with(&remote_path(blob_id))
            .chunk(8 * 1024 * 1024)
            .await
            .map_err(std::io::Error::other)?;
        Ok(BlobWriter {
            inner: WriterKind::Remote(writer),
        })
    }

    async fn read(&self, blob_id: &str, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let buffer = self
            .op
            .read_with(&remote_path(blob_id))
            .range(offset..offset + len as u64)
            .await
            .map_err(std::io::Error::other)?;
        let bytes = buffer.to_vec();
        if bytes.len() != len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "a remote blob is shorter than its metadata says",
            ));
        }
        Ok(bytes)
    }

    async fn delete(&self, blob_id: &str) -> std::io::Result<()> {
        self.op
            .delete(&remote_path(blob_id))
            .await
            .map_err(std::io::Error::other)
    }

    async fn list(&self) -> std::io::Result<Vec<StoredBlob>> {
        let entries = self
            .op
            .list_with("blobs/")
            .await
            .map_err(std::io::Error::other)?;
        Ok(entries
            .into_iter()
            .filter(|e| e.metadata().is_file())
            .filter_map(|e| {
                let blob_id = e.name().to_owned();
                // A blob of unknown age is treated as new: never collected by mistake.
                let modified = e
                    .metadata()
                    .last_modified()
                    .map_or_else(SystemTime::now, SystemTime::from);
                (!blob_id.is_empty()).then_some(StoredBlob {
                    blob_id,
                    modified,
                    incoming: false,
                })
            })
            .collect())
    }
}

/// A region's blob store on the local disk.
#[derive(Debug, Clone)]
pub struct LocalBlobs {
    root: PathBuf,
}

/// A blob found on disk, for collection.
#[derive(Debug)]
pub struct StoredBlob {
    pub blob_id: String,
    pub modified: SystemTime,
    pub incoming: bool,
}

impl LocalBlobs {
    pub fn open(root: PathBuf) -> std::io::Result<Self> {
        // Every folder a blob can land in exists (and is durable) before
        // the first write, so placing a blob syncs one directory only.
        std::fs::create_dir_all(root.join("incoming"))?;
        for fan in 0..=255u8 {
            std::fs::create_dir_all(root.join(format!("{fan:02x}")))?;
        }
        std::fs::File::open(&root)?.sync_all()?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir_of(&self, blob_id: &str) -> PathBuf {
        // The last two characters of a UUID are random: an even spread over 256 folders.
        let fan = &blob_id[blob_id.len().saturating_sub(2)..];
        self.root.join(fan)
    }

    fn path_of(&self, blob_id: &str) -> PathBuf {
        self.dir_of(blob_id).join(blob_id)
    }

    pub async fn create(&self, blob_id: &str) -> std::io::Result<BlobWriter> {
        let incoming = self.root.join("incoming").join(blob_id);
        let file = tokio::fs::File::create(&incoming).await?;
        Ok(BlobWriter {
            inner: WriterKind::Local(LocalWriter {
                file: Some(file),
                incoming,
                dir: self.dir_of(blob_id),
                target: self.path_of(blob_id),
            }),
        })
    }

    /// Reads `len` sealed bytes at `offset`.
    pub async fn read(&self, blob_id: &str, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let path = self.path_of(blob_id);
        tokio::task::spawn_blocking(move || {
            use std::os::unix::fs::FileExt;
            let file = std::fs::File::open(path)?;
            let mut buf = vec![0u8; len];
            file.read_exact_at(&mut buf, offset)?;
            Ok(buf)
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// Removes a blob; one already gone is fine.
    pub async fn delete(&self, blob_id: &str) -> std::io::Result<()> {
        match tokio::fs::remove_file(self.path_of(blob_id)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub async fn delete_incoming(&self, blob_id: &str) -> std::io::Result<()> {
        match tokio::fs::remove_file(self.root.join("incoming").join(blob_id)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every blob on disk, placed or incoming.
    pub async fn list(&self) -> std::io::Result<Vec<StoredBlob>> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            for dir in std::fs::read_dir(&root)? {
                let dir = dir?;
                if !dir.file_type()?.is_dir() {
                    continue;
                }
                let incoming = dir.file_name() == "incoming";
                for file in std::fs::read_dir(dir.path())? {
                    let file = file?;
                    let Ok(blob_id) = file.file_name().into_string() else {
                        continue;
                    };
                    found.push(StoredBlob {
                        blob_id,
                        modified: file.metadata()?.modified()?,
                        incoming,
                    });
                }
            }
            Ok(found)
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

/// A blob being written. Dropped without `finish`, it leaves a file in
/// `incoming/` (or a remote upload) that `abort` or collection removes.
pub struct BlobWriter {
    inner: WriterKind,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlobWriter(..)")
    }
}

enum WriterKind {
    Local(LocalWriter),
    Remote(opendal::Writer),
}

#[derive(Debug)]
struct LocalWriter {
    file: Option<tokio::fs::File>,
    incoming: PathBuf,
    dir: PathBuf,
    target: PathBuf,
}

impl BlobWriter {
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.inner {
            WriterKind::Local(LocalWriter { file: Some(f), .. }) => f.write_all(bytes).await,
            WriterKind::Local(_) => Err(std::io::Error::other("blob already finished")),
            WriterKind::Remote(w) => w
                .write(bytes::Bytes::copy_from_slice(bytes))
                .await
                .map_err(std::io::Error::other),
        }
    }

    /// Makes the blob durable and puts it in place.
    pub async fn finish(self) -> std::io::Result<()> {
        let mut local = match self.inner {
            WriterKind::Remote(mut w) => {
                return w.close().await.map(|_| ()).map_err(std::io::Error::other);
            }
            WriterKind::Local(l) => l,
        };
        let Some(mut file) = local.file.take() else {
            return Err(std::io::Error::other("blob already finished"));
        };
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        let (incoming, dir, target) = (local.incoming, local.dir, local.target);
        tokio::task::spawn_blocking(move || {
            std::fs::rename(&incoming, &target)?;
            std::fs::File::open(&dir)?.sync_all()
        })
        .await
        .map_err(std::io::Error::other)?
    }

    pub async fn abort(self) {
        match self.inner {
            WriterKind::Remote(mut w) => {
                let _ = w.abort().await;
            }
            WriterKind::Local(mut l) => {
                l.file.take();
                let _ = tokio::fs::remove_file(&l.incoming).await;
            }
        }
    }
}
