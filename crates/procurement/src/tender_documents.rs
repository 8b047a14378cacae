//! A call's documents (rules of the consultation, technical specifications,
//! price schedules): the buyer attaches them to its draft, and once the call
//! is published anyone reads them. They are kept in the platform's own
//! storage, sealed with the buyer's organisation key (storage/files.rs).

use nuage_db::repo::storage as storage_repo;
use nuage_db::repo::tenders::{self as repo, DocumentRow};
use nuage_domain::DomainError;
use nuage_domain::ids::OrgId;
use nuage_domain::tender::{MAX_DOCUMENT_BYTES, MAX_DOCUMENTS, document_media_type, document_name};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::Procurement;
use nuage_service::{AuditEvent, Principal, RequestMeta, ServiceError, ServiceResult};
use nuage_storage::files::SealedFile;

/// A document of a call, as listed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DocumentView {
    pub id: String,
    pub name: String,
    pub media_type: String,
    pub size: i64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    pub uploaded_at_ms: i64,
}

impl From<&DocumentRow> for DocumentView {
    fn from(d: &DocumentRow) -> Self {
        Self {
            id: d.id.clone(),
            name: d.name.clone(),
            media_type: d.media_type.clone(),
            size: d.size,
            sha256: d.sha256.clone(),
            uploaded_at_ms: d.uploaded_at,
        }
    }
}

impl DocumentView {
    /// The `Content-Disposition` of its download: an attachment under its
    /// name (RFC 6266, UTF-8 percent-encoded).
    pub fn content_disposition(&self) -> String {
        let name: String = self
            .name
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        format!("attachment; filename*=UTF-8''{name}")
    }
}

/// What a document's ciphertext is bound to.
fn context(tender_id: &str, document_id: &str) -> String {
    format!("tender:{tender_id}/document:{document_id}")
}

impl Procurement {
    /// Attaches a document to a draft call.
    pub async fn add_document(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        id: &str,
        name: &str,
        media_type: Option<&str>,
        bytes: &[u8],
    ) -> ServiceResult<DocumentView> {
        let name = document_name(name)?;
        let media_type = document_media_type(media_type);
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(DomainError::invalid(
                "document",
                format!("a document is at most {MAX_DOCUMENT_BYTES} bytes"),
            )
            .into());
        }
        let tender = {
            let mut conn = self.platform().db().acquire().await?;
            self.own_tender(&mut conn, who, id).await?
        };
        if tender.state != "draft" {
            return Err(ServiceError::Conflict(
                "documents are attached to the draft, before publication".into(),
            ));
        }
        let buyer = OrgId::parse(&tender.buyer_org_id)?;
        let document_id = uuid::Uuid::now_v7().to_string();
        // Sealed before the transaction: a file whose record does not commit
        // is an orphan, which upkeep deletes.
        let sealed = self
            .storage()
            .seal_file(&buyer, &context(id, &document_id), bytes)
            .await?;
        let row = DocumentRow {
            id: document_id,
            tender_id: id.to_owned(),
            name,
            media_type,
            size: bytes.len() as i64,
            sha256: hex::encode(Sha256::digest(bytes)),
            region: sealed.region,
            blob_id: sealed.blob_id,
            wrapped_key: sealed.wrapped_key,
            uploaded_by: who.actor(),
            uploaded_at: self.now_ms(),
        };
        let mut tx = self.platform().db().begin_write().await?;
        let tender = self.own_tender(&mut tx, who, id).await?;
        if tender.state != "draft" {
            return Err(ServiceError::Conflict(
                "documents are attached to the draft, before publication".into(),
            ));
        }
        if repo::documents(&mut tx, id).await?.len() >= MAX_DOCUMENTS {
            return Err(ServiceError::Conflict(format!(
                "a call has at most {MAX_DOCUMENTS} documents"
            )));
        }
        if !repo::insert_document(&mut tx, &row).await? {
            return Err(ServiceError::Conflict(format!(
                "the call already has a document named {:?}",
                row.name
            )));
        }
        storage_repo::insert_blob(&mut tx, &row.blob_id, &row.region, &row.id).await?;
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("tender.document.add", format!("tender:{id}"))
                    .org(buyer)
                    .details(serde_json::json!({
                        "document": row.id, "name": row.name, "size": row.size,
                        "sha256": row.sha256,
                    })),
            )
            .await?;
        Ok(DocumentView::from(&row))
    }

    /// Removes a document from a draft call.
    pub async fn remove_document(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        id: &str,
        document_id: &str,
    ) -> ServiceResult<()> {
        let mut tx = self.platform().db().begin_write().await?;
        let tender = self.own_tender(&mut tx, who, id).await?;
        let row = repo::get_document(&mut tx, id, document_id)
            .await?
            .ok_or(ServiceError::NotFound("document"))?;
        if tender.state != "draft" {
            return Err(ServiceError::Conflict(
                "a published call's documents stay as they were published".into(),
            ));
        }
        repo::delete_document(&mut tx, &row.id).await?;
        storage_repo::trash_blob(&mut tx, &row.blob_id, &row.region, self.now_ms()).await?;
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("tender.document.remove", format!("tender:{id}"))
                    .org(&tender.buyer_org_id)
                    .details(serde_json::json!({ "document": row.id, "name": row.name })),
            )
            .await
    }

    /// The rows of a call's documents: a published call's for everyone, a
    /// draft's for its buyer.
    async fn readable_documents(
        &self,
        who: Option<&Principal>,
        id: &str,
    ) -> ServiceResult<(String, Vec<DocumentRow>)> {
        let mut conn = self.platform().db().acquire().await?;
        let tender = repo::get_tender(&mut conn, id)
            .await?
            .ok_or(ServiceError::NotFound("call for tender"))?;
        if tender.state == "draft" {
            let who = who.ok_or(ServiceError::NotFound("call for tender"))?;
            self.own_tender(&mut conn, who, id).await?;
        }
        Ok((tender.buyer_org_id, repo::documents(&mut conn, id).await?))
    }

    pub async fn documents(
        &self,
        who: Option<&Principal>,
        id: &str,
    ) -> ServiceResult<Vec<DocumentView>> {
        let (_, rows) = self.readable_documents(who, id).await?;
        Ok(rows.iter().map(DocumentView::from).collect())
    }

    /// A document and its bytes, checked against its SHA-256.
    pub async fn document(
        &self,
        who: Option<&Principal>,
        id: &str,
        document_id: &str,
    ) -> ServiceResult<(DocumentView, Vec<u8>)> {
        let (buyer, rows) = self.readable_documents(who, id).await?;
        let row = rows
            .iter()
            .find(|d| d.id == document_id)
            .ok_or(ServiceError::NotFound("document"))?;
        let bytes = self
            .storage()
            .open_file(
                &OrgId::parse(&buyer)?,
                &context(id, &row.id),
                &SealedFile {
                    region: row.region.clone(),
                    blob_id: row.blob_id.clone(),
                    wrapped_key: row.wrapped_key.clone(),
                    size: row.size as u64,
                },
            )
            .await?;
        if hex::encode(Sha256::digest(&bytes)) != row.sha256 {
            return Err(ServiceError::Internal(format!(
                "document {} does not match its SHA-256",
                row.id
            )));
        }
        Ok((DocumentView::from(row), bytes))
    }
}
