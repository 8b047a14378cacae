//! API tokens and S3 access keys: created with a secret shown once, listed
//! without it, revoked at once.

use nuage_db::repo::keys::{self as repo, S3KeyRow, TokenRow};
use nuage_domain::DomainError;
use nuage_domain::ids::{OrgId, TokenId};
use nuage_domain::org::Permission;
use nuage_domain::storage::{EXPORT_KEY_DAYS, KeyPurpose};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ServiceError, ServiceResult};
use crate::keys::secret;
use crate::{AuditEvent, Page, PageRequest, Platform, Principal, RequestMeta};

/// Every API token starts with this, so that secret scanners recognise it.
pub const TOKEN_PREFIX: &str = "nuage_";

/// A fresh API token: 32 random bytes (256 bits), base32.
pub fn new_token_secret() -> String {
    format!("{TOKEN_PREFIX}{}", secret::random_token(32))
}

/// An API token as listed (never its secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub last_used_at_ms: Option<i64>,
}

impl From<TokenRow> for ApiToken {
    fn from(r: TokenRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            created_at_ms: r.created_at,
            expires_at_ms: r.expires_at,
            last_used_at_ms: r.last_used_at,
        }
    }
}

/// An S3 access key as listed (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct S3Key {
    pub access_key_id: String,
    pub org_id: String,
    pub created_by: String,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
    /// `access`, or `export`: read-only, its downloads are exit egress.
    pub purpose: String,
    /// When an export key stops working.
    pub expires_at_ms: Option<i64>,
}

impl From<S3KeyRow> for S3Key {
    fn from(r: S3KeyRow) -> Self {
        Self {
            access_key_id: r.access_key_id,
            org_id: r.org_id,
            created_by: r.created_by,
            created_at_ms: r.created_at,
            revoked_at_ms: r.revoked_at,
            purpose: r.purpose,
            expires_at_ms: r.expires_at,
        }
    }
}

/// The longest lifetime a token can be given.
pub const MAX_TOKEN_DAYS: u32 = 3650;

impl Platform {
    /// Resolves a bearer token to its principal. Unknown, revoked and expired
    /// tokens are refused alike.
    pub async fn authenticate_token(&self, token: &str) -> ServiceResult<Principal> {
        let refused =
            || ServiceError::Unauthenticated("the token is unknown, revoked or expired".into());
        if token.is_empty() || token.len() > 200 {
            return Err(refused());
        }
        let mut conn = self.db().acquire().await?;
        let row = repo::find_token_by_hash(&mut conn, &secret::sha256_hex(token))
            .await?
            .ok_or_else(refused)?;
        let now = self.now_ms();
        if row.revoked_at.is_some() || row.expires_at.is_some_and(|e| e <= now) {
            return Err(refused());
        }
        // At most once a minute, so that reads stay reads (on SQLite any
        // UPDATE takes the write lock, even one that changes nothing).
        if row.last_used_at.is_none_or(|t| t < now - 60_000) {
            repo::touch_token(&mut conn, &row.id, now).await?;
        }
        if row.is_root == 1 {
            return Ok(Principal::Root {
                token: TokenId::parse(&row.id)?,
            });
        }
        let user_id = row.user_id.ok_or_else(refused)?;
        let user = nuage_db::repo::identity::get_user(&mut conn, &user_id)
            .await?
            .ok_or_else(refused)?;
        Ok(Principal::User {
            id: nuage_domain::ids::UserId::parse(&user.id)?,
            is_operator: user.is_operator == 1,
        })
    }

    /// Creates an API token for the calling user; the secret is returned once.
    pub async fn create_api_token(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        name: &str,
        expires_in_days: Option<u32>,
    ) -> ServiceResult<(ApiToken, String)> {
        let Some(user) = who.user_id() else {
            return Err(ServiceError::Forbidden(
                "API tokens belong to users; the root token cannot create them".into(),
            ));
        };
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                "name",
                "a token's name has 1 to 100 characters and no control characters",
            )
            .into());
        }
        if let Some(days) = expires_in_days
            && !(1..=MAX_TOKEN_DAYS).contains(&days)
        {
            return Err(DomainError::invalid(
                "expires_in_days",
                format!("a token lives 1 to {MAX_TOKEN_DAYS} days"),
            )
            .into());
        }
        let token = new_token_secret();
        let now = self.now_ms();
        let row = TokenRow {
            id: TokenId::new().to_string(),
            token_hash: secret::sha256_hex(&token),
            name: name.to_owned(),
            user_id: Some(user.to_string()),
            is_root: 0,
            created_at: now,
            expires_at: expires_in_days.map(|d| now + i64::from(d) * 86_400_000),
            last_used_at: None,
            revoked_at: None,
        };
        let mut tx = self.db().begin_write().await?;
        repo::insert_token(&mut tx, &row).await?;
        self.commit_audited(
            tx,
            who,
            meta,
            AuditEvent::new("api_token.create", format!("token:{}", row.id))
                .details(serde_json::json!({"name": row.name})),
        )
        .await?;
        Ok((ApiToken::from(row), token))
    }

    pub async fn list_api_tokens(
        &self,
        who: &Principal,
        page: &PageRequest,
    ) -> ServiceResult<Page<ApiToken>> {
        let Some(user) = who.user_id() else {
            return Err(ServiceError::Forbidden("API tokens belong to users".into()));
        };
        let (limit, after) = (page.limit()?, page.after()?);
        let rows = repo::list_tokens_of_user(
            &mut *self.db().acquire().await?,
            &user.to_string(),
            &after,
            limit,
        )
        .await?;
        Ok(Page::from_rows(
            rows,
            limit,
            |r| r.id.clone(),
            ApiToken::from,
        ))
    }

    pub async fn revoke_api_token(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        id: TokenId,
    ) -> ServiceResult<()> {
        let Some(user) = who.user_id() else {
            return Err(ServiceError::Forbidden("API tokens belong to users".into()));
        };
        let mut tx = self.db().begin_write().await?;
        if !repo::revoke_token(&mut tx, &id.to_string(), &user.to_string(), self.now_ms()).await? {
            return Err(ServiceError::NotFound("API token"));
        }
        self.commit_audited(
            tx,
            who,
            meta,
            AuditEvent::new("api_token.revoke", format!("token:{id}")),
        )
        .await
    }

    /// Creates an S3 access key for an organisation (owners, admins, operator).
    /// The secret is stored sealed under the master key and returned once.
    /// An organisation has one live export key at most.
    pub async fn create_s3_key(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        org: OrgId,
        purpose: KeyPurpose,
    ) -> ServiceResult<(S3Key, String)> {
        let mut tx = self.db().begin_write().await?;
        self.authorize_org(&mut tx, who, org, Permission::Manage)
            .await?;
        if purpose == KeyPurpose::Export {
            repo::retire_expired_export_keys(&mut tx, &org.to_string(), self.now_ms()).await?;
        }
        let (row, secret_access_key) = self
            .insert_s3_key(&mut tx, who, org, purpose)
            .await
            .map_err(|e| match e {
                ServiceError::Conflict(_) => ServiceError::Conflict(
                    "this organisation already has a live export key: revoke it first".into(),
                ),
                e => e,
            })?;
        let action = match purpose {
            KeyPurpose::Access => "s3_key.create",
            KeyPurpose::Export => "s3_key.create_export",
        };
        self.commit_audited(
            tx,
            who,
            meta,
            AuditEvent::new(action, format!("s3_key:{}", row.access_key_id)).org(org),
        )
        .await?;
        Ok((S3Key::from(row), secret_access_key))
    }

    /// Stores a fresh S3 key of `org` in the caller's transaction; returns
    /// it with its secret, which is never stored in clear.
    pub async fn insert_s3_key(
        &self,
        conn: &mut nuage_db::AnyConnection,
        who: &Principal,
        org: OrgId,
        purpose: KeyPurpose,
    ) -> ServiceResult<(S3KeyRow, String)> {
        // AWS-shaped: a 20-character upper-case key id, a 40-character secret.
        let access_key_id =
            format!("NK{}", secret::random_token(15).to_ascii_uppercase())[..20].to_owned();
        let secret_access_key = secret::random_token(25);
        let created_at = self.now_ms();
        let row = S3KeyRow {
            access_key_id,
            org_id: org.to_string(),
            secret_sealed: self.key().seal(secret_access_key.as_bytes()),
            created_by: who.actor(),
            created_at,
            revoked_at: None,
            purpose: purpose.as_str().to_owned(),
            expires_at: (purpose == KeyPurpose::Export)
                .then_some(created_at + EXPORT_KEY_DAYS * 86_400_000),
        };
        repo::insert_s3_key(conn, &row).await?;
        Ok((row, secret_access_key))
    }

    pub async fn list_s3_keys(
        &self,
        who: &Principal,
        org: OrgId,
        page: &PageRequest,
    ) -> ServiceResult<Page<S3Key>> {
        let (limit, after) = (page.limit()?, page.after()?);
        let mut conn = self.db().acquire().await?;
        self.authorize_org(&mut conn, who, org, Permission::Manage)
            .await?;
        let rows = repo::list_s3_keys(&mut conn, &org.to_string(), &after, limit).await?;
        Ok(Page::from_rows(
            rows,
            limit,
            |r| r.access_key_id.clone(),
            S3Key::from,
        ))
    }

    /// Revokes an S3 key at once: the next request signed with it is refused.
    pub async fn revoke_s3_key(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        access_key_id: &str,
    ) -> ServiceResult<S3Key> {
        if access_key_id.len() > 128 || !access_key_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(DomainError::invalid(
                "access_key_id",
                "an access key id has only letters and digits",
            )
            .into());
        }
        let mut tx = self.db().begin_write().await?;
        let key = repo::get_s3_key(&mut tx, access_key_id)
            .await?
            .ok_or(ServiceError::NotFound("S3 key"))?;
        let org = OrgId::parse(&key.org_id)?;
        self.authorize_org(&mut tx, who, org, Permission::Manage)
            .await
            .map_err(|e| match e {
                ServiceError::Forbidden(m) => ServiceError::Forbidden(m),
                _ => ServiceError::NotFound("S3 key"),
            })?;
        if !repo::revoke_s3_key(&mut tx, access_key_id, self.now_ms()).await? {
            return Err(ServiceError::Conflict("this key is already revoked".into()));
        }
        self.commit_audited(
            tx,
            who,
            meta,
            AuditEvent::new("s3_key.revoke", format!("s3_key:{access_key_id}")).org(org),
        )
        .await?;
        let row = repo::get_s3_key(&mut *self.db().acquire().await?, access_key_id)
            .await?
            .ok_or(ServiceError::NotFound("S3 key"))?;
        Ok(S3Key::from(row))
    }

    /// The organisation, secret and purpose of an active S3 key, for
    /// request signing checks. Revoked and expired keys are unknown.
    pub async fn s3_credentials(
        &self,
        access_key_id: &str,
    ) -> ServiceResult<Option<(OrgId, String, KeyPurpose)>> {
        let Some(row) = repo::get_s3_key(&mut *self.db().acquire().await?, access_key_id).await?
        else {
            return Ok(None);
        };
        if row.revoked_at.is_some() || row.expires_at.is_some_and(|at| at <= self.now_ms()) {
            return Ok(None);
        }
        let secret = String::from_utf8(self.key().open(&row.secret_sealed)?)
            .map_err(|_| ServiceError::Internal("a sealed S3 secret is not UTF-8".into()))?;
        Ok(Some((
            OrgId::parse(&row.org_id)?,
            secret,
            KeyPurpose::parse(&row.purpose)?,
        )))
    }
}
