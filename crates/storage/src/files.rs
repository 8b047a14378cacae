//! Files the platform keeps for an organisation outside its buckets (a call
//! for tender's documents): sealed like objects, in 64 KiB chunks with a
//! data key wrapped by the organisation's key, in the default region's blob
//! store. The caller records the blob in `blobs` in its own transaction, so
//! a file whose record never commits is an orphan that upkeep deletes.

use nuage_domain::ids::OrgId;
use uuid::Uuid;

use super::Storage;
use super::crypto::{BlobContext, CHUNK, TAG, chunk_count, sealed_len};
use nuage_service::{ServiceError, ServiceResult};

/// Where a sealed file is and how to open it.
#[derive(Debug, Clone)]
pub struct SealedFile {
    pub region: String,
    pub blob_id: String,
    /// The data key, wrapped by the organisation's key.
    pub wrapped_key: String,
    pub size: u64,
}

fn io(e: std::io::Error) -> ServiceError {
    ServiceError::Internal(format!("blob store: {e}"))
}

fn internal(e: super::StorageError) -> ServiceError {
    match e {
        super::StorageError::Service(e) => e,
        other => ServiceError::Internal(format!("sealed file: {other:?}")),
    }
}

impl Storage {
    /// Seals `bytes` for `org` into a new blob; `context` names what the file
    /// is (its ciphertext is bound to it).
    pub async fn seal_file(
        &self,
        org: &OrgId,
        context: &str,
        bytes: &[u8],
    ) -> ServiceResult<SealedFile> {
        let region = self.default_region().name.clone();
        let backend = self.backend(&region).map_err(internal)?;
        let wrapping = self.org_key(org).await.map_err(internal)?;
        let blob_id = Uuid::now_v7().to_string();
        let ctx = BlobContext {
            org: org.to_string(),
            object: context.to_owned(),
            blob_id: blob_id.clone(),
            part: 0,
        };
        let (data_key, wrapped_key) = wrapping.new_data_key(&ctx);
        let size = bytes.len() as u64;
        let chunks = chunk_count(size);
        let mut out = Vec::with_capacity(sealed_len(size) as usize);
        for index in 0..chunks {
            let start = (index as usize * CHUNK).min(bytes.len());
            let end = (start + CHUNK).min(bytes.len());
            data_key.seal_chunk(
                &ctx,
                index,
                index + 1 == chunks,
                &bytes[start..end],
                &mut out,
            );
        }
        let mut writer = backend.create(&blob_id).await.map_err(io)?;
        if let Err(e) = writer.write(&out).await {
            writer.abort().await;
            return Err(io(e));
        }
        writer.finish().await.map_err(io)?;
        Ok(SealedFile {
            region,
            blob_id,
            wrapped_key,
            size,
        })
    }

    /// Opens a file sealed by [`Storage::seal_file`]; an altered or moved
    /// blob is an error, never wrong bytes.
    pub async fn open_file(
        &self,
        org: &OrgId,
        context: &str,
        file: &SealedFile,
    ) -> ServiceResult<Vec<u8>> {
        let backend = self.backend(&file.region).map_err(internal)?;
        let ctx = BlobContext {
            org: org.to_string(),
            object: context.to_owned(),
            blob_id: file.blob_id.clone(),
            part: 0,
        };
        let damaged = || ServiceError::Internal(format!("sealed file {} is damaged", file.blob_id));
        let data_key = self
            .open_data_key(org, None, &ctx, &file.wrapped_key)
            .await
            .map_err(|_| damaged())?;
        let sealed = backend
            .read(&file.blob_id, 0, sealed_len(file.size) as usize)
            .await
            .map_err(io)?;
        let chunks = chunk_count(file.size);
        let mut plain = Vec::with_capacity(file.size as usize);
        for (index, chunk) in sealed.chunks(CHUNK + TAG).enumerate() {
            let index = index as u64;
            let opened = data_key
                .open_chunk(&ctx, index, index + 1 == chunks, chunk)
                .ok_or_else(damaged)?;
            plain.extend_from_slice(&opened);
        }
        if plain.len() as u64 != file.size {
            return Err(damaged());
        }
        Ok(plain)
    }
}
