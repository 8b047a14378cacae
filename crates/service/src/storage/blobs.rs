//! Where blobs (sealed object content) live: a region's backend. The local
//! backend writes a blob under `incoming/`, fsyncs it, renames it into place
//! and fsyncs the directory, so that a blob the metadata points to is whole
//! on disk before the metadata commits. Files in `incoming/` and blobs that
//! no metadata points to are collected later.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tokio::io::AsyncWriteExt;

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
            file: Some(file),
            incoming,
            dir: self.dir_of(blob_id),
            target: self.path_of(blob_id),
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
/// `incoming/` that is removed by `abort` or by collection.
#[derive(Debug)]
pub struct BlobWriter {
    file: Option<tokio::fs::File>,
    incoming: PathBuf,
    dir: PathBuf,
    target: PathBuf,
}

impl BlobWriter {
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.file {
            Some(f) => f.write_all(bytes).await,
            None => Err(std::io::Error::other("blob already finished")),
        }
    }

    /// Makes the blob durable and puts it in place.
    pub async fn finish(mut self) -> std::io::Result<()> {
        let Some(mut file) = self.file.take() else {
            return Err(std::io::Error::other("blob already finished"));
        };
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        let (incoming, dir, target) =
            (self.incoming.clone(), self.dir.clone(), self.target.clone());
        tokio::task::spawn_blocking(move || {
            std::fs::rename(&incoming, &target)?;
            std::fs::File::open(&dir)?.sync_all()
        })
        .await
        .map_err(std::io::Error::other)?
    }

    pub async fn abort(mut self) {
        self.file.take();
        let _ = tokio::fs::remove_file(&self.incoming).await;
    }
}
