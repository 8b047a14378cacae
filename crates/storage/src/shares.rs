//! Share links: a file or folder of the drive opened to whoever has the
//! link — read-only, or upload-only for a folder (a drop box) — with an
//! optional password (argon2id; wrong guesses are rate-limited per link and
//! address) and expiry date, revocable at once. Every access through a link
//! is written to the owner's access log under `share:<link id>`.

use nuage_db::repo::drive::{self as repo, ShareRow};
use nuage_db::repo::identity;
use nuage_domain::DomainError;
use nuage_domain::drive::DrivePath;
use nuage_domain::ids::OrgId;
use nuage_domain::org::Permission;
use nuage_domain::storage::KeyPurpose;
use uuid::Uuid;

use super::drive::Drive;
use super::{S3Caller, Storage, StorageError};
use nuage_service::accounts::{hash_password, password_matches};
use nuage_service::error::{ServiceError, ServiceResult};
use nuage_service::keys::secret;
use nuage_service::{AuditEvent, Principal, RequestMeta};

/// What a link lets its visitors do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareMode {
    /// See and download.
    Read,
    /// Only add files to the folder (a drop box).
    Upload,
}

impl ShareMode {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "read" => Ok(Self::Read),
            "upload" => Ok(Self::Upload),
            _ => Err(DomainError::invalid("mode", "a link is read or upload")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Upload => "upload",
        }
    }
}

/// A link as its owner sees it.
#[derive(Clone)]
pub struct ShareLink {
    pub id: String,
    pub path: DrivePath,
    pub folder: bool,
    pub mode: ShareMode,
    pub has_password: bool,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    /// The secret part of the link's address.
    pub token: String,
}

/// A new link.
#[derive(Clone)]
pub struct NewShare {
    pub path: DrivePath,
    pub mode: ShareMode,
    pub password: Option<String>,
    pub expires_at: Option<i64>,
}

/// A link a visitor opened.
#[derive(Clone)]
pub struct OpenShare {
    pub id: String,
    pub path: DrivePath,
    pub folder: bool,
    pub mode: ShareMode,
    /// Whether the visitor must give a password first.
    pub locked: bool,
    /// What proves, in a cookie, that the password was given (changes with
    /// the password; not the password).
    pub proof: Option<String>,
    /// The owner's drive, as the link acts on it.
    pub drive: Drive,
}

impl OpenShare {
    /// A path under the shared folder, from the part the visitor names;
    /// never outside it.
    pub fn resolve(&self, sub: &str) -> ServiceResult<DrivePath> {
        let path = self.path.descend(sub)?;
        if !self.folder && path != self.path {
            return Err(ServiceError::NotFound("file"));
        }
        Ok(path)
    }
}

// The link's token, its password and the unlock proof are secrets: their
// Debug output says only whether they are there.
impl std::fmt::Debug for ShareLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareLink")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("mode", &self.mode)
            .field("has_password", &self.has_password)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for NewShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewShare")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl std::fmt::Debug for OpenShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenShare")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("mode", &self.mode)
            .field("locked", &self.locked)
            .finish_non_exhaustive()
    }
}

/// What became of a link a visitor follows.
#[derive(Debug)]
pub enum ShareAccess {
    Open(Box<OpenShare>),
    /// Expired or revoked: said as such, nothing more.
    Gone,
    Unknown,
}

/// The longest a link lives, and the longest password.
pub const MAX_SHARE_DAYS: i64 = 366;
const MAX_PASSWORD: usize = 256;
const MAX_WRONG_PASSWORDS: i64 = 10;
const WRONG_PASSWORD_WINDOW_MS: i64 = 15 * 60 * 1000;

fn proof_of(row: &ShareRow) -> Option<String> {
    row.password_hash
        .as_ref()
        .map(|h| secret::sha256_hex(&format!("nuage share unlock|{}|{h}", row.token_hash)))
}

impl Storage {
    fn share_of(&self, row: ShareRow) -> ServiceResult<ShareLink> {
        let token = String::from_utf8(self.platform().key().open(&row.token_sealed)?)
            .map_err(|_| ServiceError::Internal("a link's token is not text".into()))?;
        Ok(ShareLink {
            path: DrivePath::parse(&row.path)?,
            folder: row.folder == 1,
            mode: ShareMode::parse(&row.mode)?,
            has_password: row.password_hash.is_some(),
            expires_at: row.expires_at,
            created_at: row.created_at,
            id: row.id,
            token,
        })
    }

    /// Makes a link to a file or folder of the caller's organisation's drive.
    pub async fn create_share(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        drive: &Drive,
        new: NewShare,
    ) -> ServiceResult<ShareLink> {
        let org = drive.caller().org;
        let user = who
            .user_id()
            .ok_or_else(|| ServiceError::Forbidden("links are made by users".into()))?;
        let entry = drive
            .stat(&new.path)
            .await
            .map_err(storage_service_error)?
            .ok_or(ServiceError::NotFound("file"))?;
        if new.path.is_root() {
            return Err(DomainError::invalid("path", "share a folder, not the whole drive").into());
        }
        if new.mode == ShareMode::Upload && !entry.folder {
            return Err(DomainError::invalid("mode", "only a folder takes uploads").into());
        }
        let now = self.now_ms();
        if let Some(at) = new.expires_at
            && (at <= now || at > now + MAX_SHARE_DAYS * 86_400_000)
        {
            return Err(DomainError::invalid(
                "expires",
                format!("a link expires in the future, within {MAX_SHARE_DAYS} days"),
            )
            .into());
        }
        let password_hash = match new.password.as_deref().filter(|p| !p.is_empty()) {
            Some(p) if p.len() > MAX_PASSWORD => {
                return Err(DomainError::invalid(
                    "password",
                    format!("a link's password has at most {MAX_PASSWORD} bytes"),
                )
                .into());
            }
            Some(p) => Some(hash_password(p).await?),
            None => None,
        };
        let token = secret::random_token(20);
        let row = ShareRow {
            id: Uuid::now_v7().to_string(),
            org_id: org.to_string(),
            path: new.path.as_str().to_owned(),
            folder: i64::from(entry.folder),
            mode: new.mode.as_str().to_owned(),
            token_hash: secret::sha256_hex(&token),
            token_sealed: self.platform().key().seal(token.as_bytes()),
            password_hash,
            expires_at: new.expires_at,
            revoked_at: None,
            created_by: user.to_string(),
            created_at: now,
        };
        let mut tx = self.platform().db().begin_write().await?;
        if identity::get_membership(&mut tx, &row.org_id, &row.created_by)
            .await?
            .is_none()
        {
            return Err(ServiceError::Forbidden(
                "you are not a member of this organisation".into(),
            ));
        }
        repo::insert_share(&mut tx, &row).await?;
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("share.create", format!("share:{}", row.id))
                    .org(org)
                    .details(serde_json::json!({
                        "path": row.path, "mode": row.mode,
                        "password": row.password_hash.is_some(), "expires_at": row.expires_at,
                    })),
            )
            .await?;
        self.share_of(row)
    }

    /// The organisation's live links (its members see them all).
    pub async fn shares(&self, who: &Principal, org: OrgId) -> ServiceResult<Vec<ShareLink>> {
        let mut conn = self.platform().db().acquire().await?;
        self.platform()
            .authorize_org(&mut conn, who, org, Permission::Use)
            .await?;
        repo::shares_of_org(&mut conn, &org.to_string())
            .await?
            .into_iter()
            .map(|r| self.share_of(r))
            .collect()
    }

    /// Revokes a link at once.
    pub async fn revoke_share(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        org: OrgId,
        id: &str,
    ) -> ServiceResult<()> {
        let mut tx = self.platform().db().begin_write().await?;
        self.platform()
            .authorize_org(&mut tx, who, org, Permission::Use)
            .await?;
        if !repo::revoke_share(&mut tx, id, &org.to_string(), self.now_ms()).await? {
            return Err(ServiceError::NotFound("link"));
        }
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("share.revoke", format!("share:{id}")).org(org),
            )
            .await
    }

    /// Follows a link: `proof` is what the visitor's cookie holds, if any.
    pub async fn open_share(
        &self,
        token: &str,
        proof: Option<&str>,
        source: &str,
    ) -> ServiceResult<ShareAccess> {
        if token.is_empty() || token.len() > 100 {
            return Ok(ShareAccess::Unknown);
        }
        let mut conn = self.platform().db().acquire().await?;
        let Some(row) = repo::find_share(&mut conn, &secret::sha256_hex(token)).await? else {
            return Ok(ShareAccess::Unknown);
        };
        if row.revoked_at.is_some() || row.expires_at.is_some_and(|e| e <= self.now_ms()) {
            return Ok(ShareAccess::Gone);
        }
        let expected = proof_of(&row);
        let locked = match (&expected, proof) {
            (None, _) => false,
            (Some(e), Some(p)) => !secret::constant_time_eq(e, p),
            (Some(_), None) => true,
        };
        let drive = self.drive(S3Caller {
            org: OrgId::parse(&row.org_id)?,
            access_key_id: format!("share:{}", row.id),
            source: source.to_owned(),
            purpose: KeyPurpose::Access,
        });
        Ok(ShareAccess::Open(Box::new(OpenShare {
            path: DrivePath::parse(&row.path)?,
            folder: row.folder == 1,
            mode: ShareMode::parse(&row.mode)?,
            id: row.id,
            locked,
            proof: expected,
            drive,
        })))
    }

    /// Checks a link's password; returns the proof to keep in a cookie.
    /// Wrong guesses are counted per link and address: past ten in a
    /// quarter of an hour, even the right one is refused for a while.
    pub async fn unlock_share(
        &self,
        token: &str,
        password: &str,
        source: &str,
    ) -> ServiceResult<Option<String>> {
        let mut conn = self.platform().db().acquire().await?;
        let Some(row) = repo::find_share(&mut conn, &secret::sha256_hex(token)).await? else {
            return Err(ServiceError::NotFound("link"));
        };
        let Some(hash) = row.password_hash.clone() else {
            return Ok(proof_of(&row));
        };
        let key = format!("share:{}:{source}", row.id);
        let now = self.now_ms();
        let since = now - WRONG_PASSWORD_WINDOW_MS;
        if identity::count_login_failures(&mut conn, &key, since).await? >= MAX_WRONG_PASSWORDS {
            return Err(ServiceError::RateLimited);
        }
        drop(conn);
        if password.len() <= MAX_PASSWORD && password_matches(password, &hash).await? {
            return Ok(proof_of(&row));
        }
        let mut conn = self.platform().db().acquire().await?;
        identity::record_login_failure(&mut conn, &key, now).await?;
        Ok(None)
    }
}

/// The storage's refusals as the service's, for the link's use cases.
fn storage_service_error(e: StorageError) -> ServiceError {
    match e {
        StorageError::Service(e) => e,
        StorageError::NoSuchKey | StorageError::NoSuchBucket => ServiceError::NotFound("file"),
        StorageError::InvalidArgument(m) => DomainError::invalid("path", m).into(),
        StorageError::Conflict(m) => ServiceError::Conflict(m),
        other => ServiceError::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_keeps_the_secrets_out() {
        let new = NewShare {
            path: DrivePath::parse("Public").expect("valid"),
            mode: ShareMode::Read,
            password: Some("open sesame".into()),
            expires_at: None,
        };
        let link = ShareLink {
            id: "id".into(),
            path: new.path.clone(),
            folder: true,
            mode: ShareMode::Read,
            has_password: true,
            expires_at: None,
            created_at: 0,
            token: "thetokenofthelink".into(),
        };
        let shown = format!("{new:?} {link:?}");
        assert!(
            !shown.contains("open sesame") && !shown.contains("thetokenofthelink"),
            "{shown}"
        );
    }

    #[test]
    fn modes_round_trip() {
        for m in [ShareMode::Read, ShareMode::Upload] {
            assert_eq!(ShareMode::parse(m.as_str()).ok(), Some(m));
        }
        assert!(ShareMode::parse("write").is_err());
    }
}
