//! Encryption at rest. Each blob has its own 256-bit data key, wrapped by a
//! version of its organisation's key, itself wrapped by the platform's
//! key-encryption key or the organisation's own KMS. Content is cut into
//! 64 KiB chunks, each sealed with AES-256-GCM; the nonce is the chunk's index
//! (unique under a key used for one blob only) and the associated data binds
//! the organisation, the object version's internal id, the part number, the
//! chunk index and whether it is the last chunk — so chunks cannot be moved
//! between objects, tenants or positions, nor a blob truncated, undetected.
//! The object's key (its name) is not bound: renaming never rewrites bytes.

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
/// Bytes each chunk grows by (the GCM tag).
pub const TAG: usize = 16;

/// A key that wraps data keys: a version of an organisation's key, or a
/// customer's (SSE-C, version 0).
pub struct WrappingKey {
    cipher: Aes256Gcm,
    version: u32,
}

impl std::fmt::Debug for WrappingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WrappingKey(version {}, ..)", self.version)
    }
}

/// The version of the organisation's key a wrapped data key names: `2:…`
/// is version 2; a key wrapped before versions (or by a customer's key)
/// has no prefix and reads as version 1.
pub fn wrapped_version(wrapped: &str) -> Option<u32> {
    match wrapped.split_once(':') {
        None => Some(1),
        Some((version, _)) => version.parse().ok().filter(|v| *v >= 2),
    }
}

impl WrappingKey {
    /// A customer's key (SSE-C).
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self::versioned(bytes, 0)
    }

    /// Version `version` of an organisation's key.
    pub fn versioned(bytes: &[u8; 32], version: u32) -> Self {
        Self {
            cipher: Aes256Gcm::new(bytes.into()),
            version,
        }
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn random_bytes() -> [u8; 32] {
        let mut b = [0u8; 32];
        OsRng.fill_bytes(&mut b);
        b
    }

    fn aad(blob: &BlobContext) -> Vec<u8> {
        [
            b"nuage data key v1|".as_slice(),
            blob.org.as_bytes(),
            b"|",
            blob.object.as_bytes(),
            b"|",
            blob.blob_id.as_bytes(),
        ]
        .concat()
    }

    /// Wraps a fresh data key for a blob; returns the key and its wrapped
    /// form, which names this key's version.
    pub fn new_data_key(&self, blob: &BlobContext) -> (DataKey, String) {
        let key = Self::random_bytes();
        (DataKey(Aes256Gcm::new(&key.into())), self.wrap(blob, &key))
    }

    fn wrap(&self, blob: &BlobContext, key: &[u8; 32]) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        out.extend(
            self.cipher
                .encrypt(
                    &nonce,
                    Payload {
                        msg: key,
                        aad: &Self::aad(blob),
                    },
                )
                .expect("AES-GCM encrypts 32 bytes"),
        );
        match self.version {
            0 | 1 => B64.encode(out),
            v => format!("{v}:{}", B64.encode(out)),
        }
    }

    fn unwrap(&self, blob: &BlobContext, wrapped: &str) -> Option<[u8; 32]> {
        let text = wrapped.split_once(':').map_or(wrapped, |(_, t)| t);
        let bytes = B64.decode(text).ok()?;
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, ct) = bytes.split_at(12);
        let key = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: &Self::aad(blob),
                },
            )
            .ok()?;
        key.try_into().ok()
    }

    /// Unwraps a blob's data key; `None` when it was not wrapped by this key
    /// for this blob.
    pub fn open_data_key(&self, blob: &BlobContext, wrapped: &str) -> Option<DataKey> {
        let key = self.unwrap(blob, wrapped)?;
        Some(DataKey(Aes256Gcm::new(&key.into())))
    }

    /// The same data key, wrapped by `self` instead of `old`: the blob is
    /// not touched. `None` when `old` did not wrap it for this blob.
    pub fn rewrap(&self, old: &WrappingKey, blob: &BlobContext, wrapped: &str) -> Option<String> {
        Some(self.wrap(blob, &old.unwrap(blob, wrapped)?))
    }
}

/// What a blob's ciphertext is bound to.
#[derive(Debug, Clone)]
pub struct BlobContext {
    pub org: String,
    /// The internal, immutable id of the object version (or upload).
    pub object: String,
    pub blob_id: String,
    pub part: u32,
}

/// The key of one blob.
pub struct DataKey(Aes256Gcm);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

fn chunk_nonce(index: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&index.to_be_bytes());
    n
}

fn chunk_aad(blob: &BlobContext, index: u64, last: bool) -> Vec<u8> {
    let mut aad = Vec::with_capacity(100);
    aad.extend_from_slice(b"nuage chunk v1|");
    aad.extend_from_slice(blob.org.as_bytes());
    aad.push(b'|');
    aad.extend_from_slice(blob.object.as_bytes());
    aad.push(b'|');
    aad.extend_from_slice(&blob.part.to_be_bytes());
    aad.extend_from_slice(&index.to_be_bytes());
    aad.push(u8::from(last));
    aad
}

impl DataKey {
    /// Seals one chunk, appending the ciphertext to `out`.
    pub fn seal_chunk(
        &self,
        blob: &BlobContext,
        index: u64,
        last: bool,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) {
        let ct = self
            .0
            .encrypt(
                Nonce::from_slice(&chunk_nonce(index)),
                Payload {
                    msg: plaintext,
                    aad: &chunk_aad(blob, index, last),
                },
            )
            .expect("AES-GCM encrypts a 64 KiB chunk");
        out.extend_from_slice(&ct);
    }

    /// Opens one chunk; `None` when it was altered, moved or truncated.
    pub fn open_chunk(
        &self,
        blob: &BlobContext,
        index: u64,
        last: bool,
        ciphertext: &[u8],
    ) -> Option<Vec<u8>> {
        self.0
            .decrypt(
                Nonce::from_slice(&chunk_nonce(index)),
                Payload {
                    msg: ciphertext,
                    aad: &chunk_aad(blob, index, last),
                },
            )
            .ok()
    }
}

/// Number of chunks of a blob of `len` plaintext bytes (an empty blob has one
/// empty chunk, so that its end is authenticated too).
pub fn chunk_count(len: u64) -> u64 {
    len.div_ceil(CHUNK as u64).max(1)
}

/// Size on disk of a blob of `len` plaintext bytes.
pub fn sealed_len(len: u64) -> u64 {
    len + chunk_count(len) * TAG as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(object: &str, part: u32) -> BlobContext {
        BlobContext {
            org: "org-a".into(),
            object: object.into(),
            blob_id: "blob-1".into(),
            part,
        }
    }

    #[test]
    fn chunks_open_only_where_they_were_sealed() {
        let org = WrappingKey::from_bytes(&WrappingKey::random_bytes());
        let blob = ctx("v1", 1);
        let (key, wrapped) = org.new_data_key(&blob);
        let mut ct = Vec::new();
        key.seal_chunk(&blob, 3, false, b"hello", &mut ct);
        assert_eq!(
            key.open_chunk(&blob, 3, false, &ct).as_deref(),
            Some(&b"hello"[..])
        );
        // Another position, another object, another part, or a "last" flag
        // that differs: refused.
        assert!(key.open_chunk(&blob, 4, false, &ct).is_none());
        assert!(key.open_chunk(&blob, 3, true, &ct).is_none());
        assert!(key.open_chunk(&ctx("v2", 1), 3, false, &ct).is_none());
        assert!(key.open_chunk(&ctx("v1", 2), 3, false, &ct).is_none());
        let mut flipped = ct.clone();
        flipped[0] ^= 1;
        assert!(key.open_chunk(&blob, 3, false, &flipped).is_none());
        // The wrapped key opens for its blob only, and with its organisation's key only.
        assert!(org.open_data_key(&blob, &wrapped).is_some());
        assert!(org.open_data_key(&ctx("v2", 1), &wrapped).is_none());
        let other = WrappingKey::from_bytes(&WrappingKey::random_bytes());
        assert!(other.open_data_key(&blob, &wrapped).is_none());
    }

    #[test]
    fn a_data_key_rewrapped_by_a_new_version_is_the_same_key() {
        let v1 = WrappingKey::versioned(&WrappingKey::random_bytes(), 1);
        let v2 = WrappingKey::versioned(&WrappingKey::random_bytes(), 2);
        let blob = ctx("v1", 1);
        let (key, wrapped) = v1.new_data_key(&blob);
        assert_eq!(wrapped_version(&wrapped), Some(1));
        let mut ct = Vec::new();
        key.seal_chunk(&blob, 0, true, b"kept", &mut ct);
        let rewrapped = v2.rewrap(&v1, &blob, &wrapped).expect("rewrapped");
        assert_eq!(wrapped_version(&rewrapped), Some(2));
        assert!(rewrapped.starts_with("2:"));
        // Only the new version opens it, and the chunk sealed before opens.
        assert!(v1.open_data_key(&blob, &rewrapped).is_none());
        let again = v2.open_data_key(&blob, &rewrapped).expect("opens");
        assert_eq!(
            again.open_chunk(&blob, 0, true, &ct).as_deref(),
            Some(&b"kept"[..])
        );
        // A key that did not wrap it rewraps nothing; nor for another blob.
        assert!(v2.rewrap(&v2, &blob, &wrapped).is_none());
        assert!(v2.rewrap(&v1, &ctx("v2", 1), &wrapped).is_none());
        assert_eq!(wrapped_version("x:abc"), None);
        assert_eq!(wrapped_version("1:abc"), None, "version 1 has no prefix");
    }

    #[test]
    fn sizes_count_one_tag_per_chunk() {
        assert_eq!(sealed_len(0), 16);
        assert_eq!(sealed_len(CHUNK as u64), CHUNK as u64 + 16);
        assert_eq!(sealed_len(CHUNK as u64 + 1), CHUNK as u64 + 1 + 32);
    }
}
