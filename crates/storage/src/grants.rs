//! Sharing with another user of the platform: a file or folder of an
//! organisation's drive granted to one person, to read or to read and
//! write. It shows in that person's drive ("shared with you"); they act on
//! the owner's drive through the grant, never outside the granted item, and
//! their requests are in the owner's access log under `grant:<id>`.

use nuage_db::repo::drive::{self as repo, GrantRow, GrantView};
use nuage_db::repo::identity;
use nuage_domain::DomainError;
use nuage_domain::drive::DrivePath;
use nuage_domain::ids::OrgId;
use nuage_domain::org::Permission;
use nuage_domain::storage::KeyPurpose;
use nuage_domain::user::Email;
use uuid::Uuid;

use super::drive::Drive;
use super::{S3Caller, Storage, StorageError};
use nuage_service::error::{ServiceError, ServiceResult};
use nuage_service::{AuditEvent, Principal, RequestMeta};

/// What a grant lets its user do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            _ => Err(DomainError::invalid("access", "a share is read or write")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// A grant, as its owner and its user see it.
#[derive(Debug, Clone)]
pub struct Grant {
    pub id: String,
    pub org_id: String,
    /// The owner organisation's name.
    pub org_name: String,
    pub path: DrivePath,
    pub folder: bool,
    /// Its user's e-mail address.
    pub email: String,
    pub access: Access,
    pub created_at: i64,
}

impl Grant {
    fn of(v: GrantView) -> ServiceResult<Self> {
        Ok(Self {
            path: DrivePath::parse(&v.path)?,
            folder: v.folder == 1,
            access: Access::parse(&v.access)?,
            id: v.id,
            org_id: v.org_id,
            org_name: v.org_name,
            email: v.email,
            created_at: v.created_at,
        })
    }
}

/// A grant opened by its user: the owner's drive, as the grant acts on it.
#[derive(Debug, Clone)]
pub struct OpenGrant {
    pub grant: Grant,
    pub drive: Drive,
}

impl OpenGrant {
    /// A path under the granted item, from the part the user names.
    pub fn resolve(&self, sub: &str) -> ServiceResult<DrivePath> {
        let path = self.grant.path.descend(sub)?;
        if !self.grant.folder && path != self.grant.path {
            return Err(ServiceError::NotFound("file"));
        }
        Ok(path)
    }

    /// Refuses a change through a read-only grant.
    pub fn check_write(&self) -> ServiceResult<()> {
        match self.grant.access {
            Access::Write => Ok(()),
            Access::Read => Err(ServiceError::Forbidden(
                "this item is shared with you to read only".into(),
            )),
        }
    }
}

impl Storage {
    /// Shares a file or folder of the drive with a user of the platform.
    pub async fn grant(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        drive: &Drive,
        path: &DrivePath,
        email: &str,
        access: Access,
    ) -> ServiceResult<Grant> {
        let org = drive.caller().org;
        let me = who
            .user_id()
            .ok_or_else(|| ServiceError::Forbidden("sharing is done by users".into()))?;
        if path.is_root() {
            return Err(DomainError::invalid("path", "share a folder, not the whole drive").into());
        }
        let entry = drive
            .stat(path)
            .await
            .map_err(|e| match e {
                StorageError::Service(e) => e,
                other => ServiceError::Internal(other.to_string()),
            })?
            .ok_or(ServiceError::NotFound("file"))?;
        let email = Email::parse(email)?;
        let mut tx = self.platform().db().begin_write().await?;
        self.platform()
            .authorize_org(&mut tx, who, org, Permission::Use)
            .await?;
        let user = identity::get_user_by_email(&mut tx, email.as_str())
            .await?
            .ok_or(ServiceError::NotFound("user"))?;
        if user.id == me.to_string() {
            return Err(DomainError::invalid("email", "share with someone else").into());
        }
        let row = GrantRow {
            id: Uuid::now_v7().to_string(),
            org_id: org.to_string(),
            path: path.as_str().to_owned(),
            folder: i64::from(entry.folder),
            user_id: user.id.clone(),
            access: access.as_str().to_owned(),
            created_by: me.to_string(),
            created_at: self.now_ms(),
            revoked_at: None,
        };
        repo::insert_grant(&mut tx, &row).await?;
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("drive.grant", format!("grant:{}", row.id))
                    .org(org)
                    .details(serde_json::json!({
                        "path": row.path, "user": row.user_id, "access": row.access,
                    })),
            )
            .await?;
        let mut conn = self.platform().db().acquire().await?;
        let view = repo::grant_to_user(&mut conn, &row.id, &row.user_id)
            .await?
            .ok_or(ServiceError::NotFound("grant"))?;
        Grant::of(view)
    }

    /// What the organisation shared with users.
    pub async fn grants_made(&self, who: &Principal, org: OrgId) -> ServiceResult<Vec<Grant>> {
        let mut conn = self.platform().db().acquire().await?;
        self.platform()
            .authorize_org(&mut conn, who, org, Permission::Use)
            .await?;
        repo::grants_of_org(&mut conn, &org.to_string())
            .await?
            .into_iter()
            .map(Grant::of)
            .collect()
    }

    /// What was shared with the caller.
    pub async fn grants_received(&self, who: &Principal) -> ServiceResult<Vec<Grant>> {
        let Some(me) = who.user_id() else {
            return Ok(Vec::new());
        };
        let mut conn = self.platform().db().acquire().await?;
        repo::grants_to_user(&mut conn, &me.to_string())
            .await?
            .into_iter()
            .map(Grant::of)
            .collect()
    }

    pub async fn revoke_grant(
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
        if !repo::revoke_grant(&mut tx, id, &org.to_string(), self.now_ms()).await? {
            return Err(ServiceError::NotFound("grant"));
        }
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("drive.revoke_grant", format!("grant:{id}")).org(org),
            )
            .await
    }

    /// Opens a grant for its user; anyone else, or a revoked grant, finds
    /// nothing.
    pub async fn open_grant(
        &self,
        who: &Principal,
        id: &str,
        source: &str,
    ) -> ServiceResult<OpenGrant> {
        let me = who.user_id().ok_or(ServiceError::NotFound("grant"))?;
        let mut conn = self.platform().db().acquire().await?;
        let view = repo::grant_to_user(&mut conn, id, &me.to_string())
            .await?
            .ok_or(ServiceError::NotFound("grant"))?;
        let grant = Grant::of(view)?;
        let drive = self.drive(S3Caller {
            org: OrgId::parse(&grant.org_id)?,
            access_key_id: format!("grant:{}", grant.id),
            source: source.to_owned(),
            purpose: KeyPurpose::Access,
        });
        Ok(OpenGrant { grant, drive })
    }
}
