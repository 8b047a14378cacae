//! Organisations, users and memberships, and who may act on them.

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use nuage_db::AnyConnection;
use nuage_db::repo::identity::{self as repo, MembershipRow, OrgRow, UserRow};
use nuage_domain::DomainError;
use nuage_domain::ids::{OrgId, UserId};
use nuage_domain::legal::{Siret, VatNumber, parse_country};
use nuage_domain::legal_identity::{LegalIdentity, Missing, PartyFacts};
use nuage_domain::org::Permission;
use nuage_domain::org::{OrgKind, OrgName, Role};
use nuage_domain::user::{Email, check_new_password};
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ServiceError, ServiceResult};
use crate::{AuditEvent, Page, PageRequest, Platform, Principal, RequestMeta};

/// An organisation's legal identity, and what invoices naming it still
/// lack.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LegalIdentityView {
    pub siret: Option<String>,
    pub identity: LegalIdentity,
    /// What an invoice it issues would lack.
    pub missing_as_issuer: Vec<Missing>,
    /// What an invoice to it would lack: none issued until it is filled in.
    pub missing_as_buyer: Vec<Missing>,
}

/// A stored legal identity; the empty one when none is.
pub fn stored_identity(document: Option<&str>) -> ServiceResult<LegalIdentity> {
    document.map_or(Ok(LegalIdentity::default()), |d| {
        serde_json::from_str(d)
            .map_err(|e| ServiceError::Internal(format!("a stored legal identity: {e}")))
    })
}

/// An organisation as clients see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Org {
    #[schema(value_type = String)]
    pub id: OrgId,
    pub name: String,
    pub kind: OrgKind,
    pub siret: Option<String>,
    pub vat_number: Option<String>,
    /// ISO 3166-1 alpha-2: VAT applies by it.
    pub country: String,
    pub require_totp: bool,
    pub created_at_ms: i64,
}

impl TryFrom<OrgRow> for Org {
    type Error = ServiceError;
    fn try_from(r: OrgRow) -> ServiceResult<Self> {
        Ok(Self {
            id: OrgId::parse(&r.id)?,
            name: r.name,
            kind: OrgKind::parse(&r.kind)?,
            siret: r.siret,
            vat_number: r.vat_number,
            country: r.country,
            require_totp: r.require_totp == 1,
            created_at_ms: r.created_at,
        })
    }
}

/// A user as clients see it (never the password hash or TOTP secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct User {
    #[schema(value_type = String)]
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub totp_enabled: bool,
    pub is_operator: bool,
    pub created_at_ms: i64,
}

impl TryFrom<&UserRow> for User {
    type Error = ServiceError;
    fn try_from(r: &UserRow) -> ServiceResult<Self> {
        Ok(Self {
            id: UserId::parse(&r.id)?,
            email: r.email.clone(),
            display_name: r.display_name.clone(),
            totp_enabled: r.totp_enabled == 1,
            is_operator: r.is_operator == 1,
            created_at_ms: r.created_at,
        })
    }
}

/// A user's place in an organisation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Membership {
    pub org_id: String,
    pub org_name: String,
    pub user_id: String,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub created_at_ms: i64,
}

impl TryFrom<MembershipRow> for Membership {
    type Error = ServiceError;
    fn try_from(r: MembershipRow) -> ServiceResult<Self> {
        Ok(Self {
            role: Role::parse(&r.role)?,
            org_id: r.org_id,
            org_name: r.org_name,
            user_id: r.user_id,
            email: r.email,
            display_name: r.display_name,
            created_at_ms: r.created_at,
        })
    }
}

/// How long an invitation waits for its answer.
pub const INVITATION_TTL_MS: i64 = 14 * 86_400_000;

/// An invitation to join an organisation, as its invitee (or the inviter)
/// sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Invitation {
    pub id: String,
    pub org_id: String,
    pub org_name: String,
    pub email: String,
    pub role: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// Always true: an address is invited, never added, whether or not it
    /// has an account.
    pub invited: bool,
}

impl From<repo::InvitationRow> for Invitation {
    fn from(r: repo::InvitationRow) -> Self {
        Self {
            id: r.id,
            org_id: r.org_id,
            org_name: r.org_name,
            email: r.email,
            role: r.role,
            created_at_ms: r.created_at,
            expires_at_ms: r.expires_at,
            invited: true,
        }
    }
}

/// Input to create an organisation, as received.
#[derive(Debug, Clone)]
pub struct NewOrg {
    pub name: String,
    pub kind: String,
    pub siret: Option<String>,
    pub vat_number: Option<String>,
    /// ISO 3166-1 alpha-2; by default the VAT number's, else France.
    pub country: Option<String>,
}

struct ParsedOrg {
    name: OrgName,
    kind: OrgKind,
    siret: Option<Siret>,
    vat_number: Option<VatNumber>,
    country: String,
}

impl NewOrg {
    fn parse(&self) -> Result<ParsedOrg, DomainError> {
        let blank_to_none = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let vat_number = blank_to_none(&self.vat_number)
            .map(|s| VatNumber::parse(&s))
            .transpose()?;
        let country = match blank_to_none(&self.country) {
            Some(c) => parse_country(&c)?,
            None => vat_number.as_ref().map_or("FR", |v| v.country()).to_owned(),
        };
        Ok(ParsedOrg {
            name: OrgName::parse(&self.name)?,
            kind: OrgKind::parse(&self.kind)?,
            siret: blank_to_none(&self.siret)
                .map(|s| Siret::parse(&s))
                .transpose()?,
            vat_number,
            country,
        })
    }
}

/// Input to create a user with a password.
#[derive(Clone)]
pub struct NewUser {
    pub email: String,
    pub password: String,
    pub display_name: Option<String>,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// Argon2 is slow on purpose. It runs on the blocking pool, a few at a time,
/// so that a flood of sign-ins cannot starve the workers that serve requests.
async fn on_argon2_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> ServiceResult<T> {
    static SLOTS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    });
    let _slot = SLOTS
        .acquire()
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ServiceError::Internal(format!("password hashing stopped: {e}")))
}

/// Hashes a new password with argon2id.
pub async fn hash_password(password: &str) -> ServiceResult<String> {
    let password = password.to_owned();
    on_argon2_pool(move || hash_password_now(&password)).await?
}

/// Checks a password against a stored argon2id hash.
pub async fn password_matches(password: &str, hash: &str) -> ServiceResult<bool> {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    on_argon2_pool(move || password_matches_now(&password, &hash)).await
}

fn hash_password_now(password: &str) -> ServiceResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::Internal(format!("password hashing failed: {e}")))
}

fn password_matches_now(password: &str, hash: &str) -> bool {
    password.len() <= nuage_domain::user::MAX_PASSWORD_BYTES
        && PasswordHash::new(hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
}

/// A hash to verify against when the user does not exist, so that a login
/// takes as long whether or not the address is known.
pub(crate) fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password_now("decoy password, never matches").unwrap_or_default())
}

impl NewUser {
    async fn into_row(self, is_operator: bool, now_ms: i64) -> ServiceResult<UserRow> {
        let email = Email::parse(&self.email)?;
        check_new_password(&self.password)?;
        let display_name = self
            .display_name
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| email.to_string());
        if display_name.chars().count() > 200 || display_name.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                "display_name",
                "the name must have at most 200 characters and no control characters",
            )
            .into());
        }
        Ok(UserRow {
            id: UserId::new().to_string(),
            email: email.to_string(),
            display_name,
            password_hash: hash_password(&self.password).await?,
            totp_secret: None,
            totp_enabled: 0,
            totp_last_step: 0,
            is_operator: i64::from(is_operator),
            created_at: now_ms,
        })
    }
}

fn duplicate_email(e: ServiceError) -> ServiceError {
    match e {
        ServiceError::Conflict(_) => {
            ServiceError::Conflict("a user with this e-mail address already exists".into())
        }
        other => other,
    }
}

impl Platform {
    /// The role `who` holds in `org`, if it may act there with at least the
    /// given right. The operator may act everywhere. An organisation that
    /// requires a second factor refuses members who have not enabled one.
    pub async fn authorize_org(
        &self,
        conn: &mut AnyConnection,
        who: &Principal,
        org: OrgId,
        permission: Permission,
    ) -> ServiceResult<OrgRow> {
        let row = repo::get_org(conn, &org.to_string()).await?;
        if who.is_operator() {
            return row.ok_or(ServiceError::NotFound("organisation"));
        }
        let Some(user) = who.user_id() else {
            return Err(ServiceError::Unauthenticated("sign in first".into()));
        };
        // Not a member and no such organisation look the same from outside.
        let membership = repo::get_membership(conn, &org.to_string(), &user.to_string()).await?;
        let (Some(row), Some(membership)) = (row, membership) else {
            return Err(ServiceError::NotFound("organisation"));
        };
        if !Role::parse(&membership.role)?.may(permission) {
            return Err(ServiceError::Forbidden(format!(
                "your role ({}) does not allow this",
                membership.role
            )));
        }
        if row.require_totp == 1 {
            let user = repo::get_user(conn, &user.to_string())
                .await?
                .ok_or(ServiceError::NotFound("user"))?;
            if user.totp_enabled != 1 {
                return Err(ServiceError::Forbidden(
                    "this organisation requires a second factor: enable TOTP first".into(),
                ));
            }
        }
        Ok(row)
    }

    /// Creates an organisation. A user who creates one becomes its owner.
    pub async fn create_org(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        input: NewOrg,
    ) -> ServiceResult<Org> {
        if matches!(who, Principal::Anonymous) {
            return Err(ServiceError::Unauthenticated("sign in first".into()));
        }
        let parsed = input.parse()?;
        let mut tx = self.db().begin_write().await?;
        let org = self.insert_org(&mut tx, parsed).await?;
        if let Some(user) = who.user_id() {
            repo::insert_membership(
                &mut tx,
                &org.id,
                &user.to_string(),
                Role::Owner.as_str(),
                org.created_at,
            )
            .await?;
        }
        self.commit_audited(
            tx,
            who,
            meta,
            AuditEvent::new("org.create", format!("org:{}", org.id))
                .org(&org.id)
                .details(serde_json::json!({"name": org.name, "kind": org.kind})),
        )
        .await?;
        Org::try_from(org)
    }

    async fn insert_org(
        &self,
        conn: &mut AnyConnection,
        parsed: ParsedOrg,
    ) -> ServiceResult<OrgRow> {
        // One organisation per name, as people read names: see `OrgName::key`.
        let key = parsed.name.key();
        for existing in repo::org_names(conn).await? {
            if OrgName::parse(&existing).is_ok_and(|n| n.key() == key) {
                return Err(ServiceError::Conflict(format!(
                    "an organisation named « {existing} » exists already: choose a name that cannot be taken for it"
                )));
            }
        }
        let row = OrgRow {
            id: OrgId::new().to_string(),
            name: parsed.name.as_str().to_owned(),
            kind: parsed.kind.as_str().to_owned(),
            siret: parsed.siret.map(|s| s.to_string()),
            vat_number: parsed.vat_number.map(|v| v.to_string()),
            country: parsed.country,
            require_totp: 0,
            created_at: self.now_ms(),
        };
        repo::insert_org(conn, &row).await?;
        Ok(row)
    }

    /// Signs up a new user with a new organisation that they own.
    pub async fn sign_up(
        &self,
        meta: &RequestMeta,
        org: NewOrg,
        user: NewUser,
    ) -> ServiceResult<(User, Org)> {
        let parsed = org.parse()?;
        let user_row = user.into_row(false, self.now_ms()).await?;
        let mut tx = self.db().begin_write().await?;
        repo::insert_user(&mut tx, &user_row)
            .await
            .map_err(|e| duplicate_email(e.into()))?;
        let who = Principal::User {
            id: UserId::parse(&user_row.id)?,
            is_operator: false,
        };
        let org_row = self.insert_org(&mut tx, parsed).await?;
        repo::insert_membership(
            &mut tx,
            &org_row.id,
            &user_row.id,
            Role::Owner.as_str(),
            org_row.created_at,
        )
        .await?;
        self.commit_audited(
            tx,
            &who,
            meta,
            AuditEvent::new("account.sign_up", format!("user:{}", user_row.id))
                .org(&org_row.id)
                .details(serde_json::json!({"org": org_row.name, "kind": org_row.kind})),
        )
        .await?;
        Ok((User::try_from(&user_row)?, Org::try_from(org_row)?))
    }

    /// Creates a user in an organisation (operator, or the organisation's
    /// owners and admins). Only an owner or the operator can make owners.
    pub async fn create_user(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        org: OrgId,
        user: NewUser,
        role: Role,
    ) -> ServiceResult<User> {
        let row = user.into_row(false, self.now_ms()).await?;
        let mut tx = self.db().begin_write().await?;
        self.authorize_org(&mut tx, who, org, Permission::Grant(role))
            .await?;
        repo::insert_user(&mut tx, &row)
            .await
            .map_err(|e| duplicate_email(e.into()))?;
        repo::insert_membership(
            &mut tx,
            &org.to_string(),
            &row.id,
            role.as_str(),
            row.created_at,
        )
        .await?;
        self.commit_audited(
            tx,
            who,
            meta,
            AuditEvent::new("user.create", format!("user:{}", row.id))
                .org(org)
                .details(serde_json::json!({"email": row.email, "role": role})),
        )
        .await?;
        User::try_from(&row)
    }

    /// Creates a user with the operator role, who administers the platform
    /// (operator only).
    pub async fn create_operator(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        user: NewUser,
    ) -> ServiceResult<User> {
        if !who.is_operator() {
            return Err(ServiceError::Forbidden(
                "only the operator can create operators".into(),
            ));
        }
        let row = user.into_row(true, self.now_ms()).await?;
        let mut tx = self.db().begin_write().await?;
        repo::insert_user(&mut tx, &row)
            .await
            .map_err(|e| duplicate_email(e.into()))?;
        self.commit_audited(
            tx,
            who,
            meta,
            AuditEvent::new("operator.create", format!("user:{}", row.id))
                .details(serde_json::json!({"email": row.email})),
        )
        .await?;
        User::try_from(&row)
    }

    pub async fn get_org(&self, who: &Principal, org: OrgId) -> ServiceResult<Org> {
        let mut conn = self.db().acquire().await?;
        Org::try_from(
            self.authorize_org(&mut conn, who, org, Permission::Use)
                .await?,
        )
    }

    /// The organisations `who` belongs to (all of them for the operator).
    pub async fn list_orgs(&self, who: &Principal, page: &PageRequest) -> ServiceResult<Page<Org>> {
        let (limit, after) = (page.limit()?, page.after()?);
        let mut conn = self.db().acquire().await?;
        let rows = match who {
            _ if who.is_operator() => repo::list_orgs(&mut conn, &after, limit).await?,
            Principal::User { id, .. } => {
                repo::list_orgs_of_user(&mut conn, &id.to_string(), &after, limit).await?
            }
            _ => return Err(ServiceError::Unauthenticated("sign in first".into())),
        };
        let page = Page::from_rows(rows, limit, |r| r.id.clone(), Org::try_from);
        Ok(Page {
            items: page.items.into_iter().collect::<ServiceResult<_>>()?,
            next_cursor: page.next_cursor,
        })
    }

    /// Makes a second factor mandatory (or not) for the organisation's members.
    pub async fn set_org_require_totp(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        org: OrgId,
        require: bool,
    ) -> ServiceResult<Org> {
        let mut tx = self.db().begin_write().await?;
        self.authorize_org(&mut tx, who, org, Permission::Own)
            .await?;
        if require && let Some(user) = who.user_id() {
            let me = repo::get_user(&mut tx, &user.to_string())
                .await?
                .ok_or(ServiceError::NotFound("user"))?;
            if me.totp_enabled != 1 {
                return Err(ServiceError::Conflict(
                    "enable a second factor on your own account before requiring it of others"
                        .into(),
                ));
            }
        }
        repo::set_org_require_totp(&mut tx, &org.to_string(), require).await?;
        let row = repo::get_org(&mut tx, &org.to_string())
            .await?
            .ok_or(ServiceError::NotFound("organisation"))?;
        self.commit_audited(
            tx,
            who,
            meta,
            AuditEvent::new("org.require_totp", format!("org:{org}"))
                .org(org)
                .details(serde_json::json!({"require_totp": require})),
        )
        .await?;
        Org::try_from(row)
    }

    /// Sets an organisation's VAT number (or none) and country, as invoices
    /// issued from now on will state them: its owners and admins.
    pub async fn set_org_tax(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        org: OrgId,
        vat_number: Option<&str>,
        country: Option<&str>,
    ) -> ServiceResult<Org> {
        let vat_number = vat_number
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(VatNumber::parse)
            .transpose()?;
        let country = match country.map(str::trim).filter(|c| !c.is_empty()) {
            Some(c) => parse_country(c)?,
            None => vat_number.as_ref().map_or("FR", |v| v.country()).to_owned(),
        };
        let vat_number = vat_number.map(|v| v.to_string());
        let mut tx = self.db().begin_write().await?;
        self.authorize_org(&mut tx, who, org, Permission::Manage)
            .await?;
        repo::set_org_tax(&mut tx, &org.to_string(), vat_number.as_deref(), &country).await?;
        let row = repo::get_org(&mut tx, &org.to_string())
            .await?
            .ok_or(ServiceError::NotFound("organisation"))?;
        self.commit_audited(
            tx,
            who,
            meta,
            AuditEvent::new("org.tax", format!("org:{org}"))
                .org(org)
                .details(serde_json::json!({"vat_number": vat_number, "country": country})),
        )
        .await?;
        Org::try_from(row)
    }

    /// An organisation's legal identity for invoices, and what its
    /// invoices still lack of it: its owners and admins, or an operator.
    pub async fn legal_identity(
        &self,
        who: &Principal,
        org: OrgId,
    ) -> ServiceResult<LegalIdentityView> {
        let mut conn = self.db().acquire().await?;
        self.authorize_org(&mut conn, who, org, Permission::Manage)
            .await?;
        self.legal_identity_view(&mut conn, org).await
    }

    async fn legal_identity_view(
        &self,
        conn: &mut AnyConnection,
        org: OrgId,
    ) -> ServiceResult<LegalIdentityView> {
        let row = repo::get_org(conn, &org.to_string())
            .await?
            .ok_or(ServiceError::NotFound("organisation"))?;
        let identity = stored_identity(repo::legal_identity(conn, &row.id).await?.as_deref())?;
        let kind = OrgKind::parse(&row.kind)?;
        let facts = PartyFacts {
            kind,
            country: &row.country,
            siret: row.siret.as_deref(),
            vat_number: row.vat_number.as_deref(),
            identity: &identity,
        };
        Ok(LegalIdentityView {
            missing_as_buyer: facts.missing_as_buyer(),
            missing_as_issuer: facts.missing_as_issuer(),
            siret: row.siret,
            identity,
        })
    }

    /// Sets an organisation's SIRET and legal identity, as invoices issued
    /// from now on will state them (those held for want of them are
    /// issued by the next billing job): its owners and admins, or an
    /// operator.
    pub async fn set_legal_identity(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        org: OrgId,
        siret: Option<&str>,
        identity: &LegalIdentity,
    ) -> ServiceResult<LegalIdentityView> {
        let siret = siret
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Siret::parse)
            .transpose()?
            .map(|s| s.to_string());
        let identity = identity.checked()?;
        let document = serde_json::to_string(&identity)
            .map_err(|e| ServiceError::Internal(format!("legal identity: {e}")))?;
        let mut tx = self.db().begin_write().await?;
        self.authorize_org(&mut tx, who, org, Permission::Manage)
            .await?;
        repo::set_org_siret(&mut tx, &org.to_string(), siret.as_deref()).await?;
        repo::set_legal_identity(&mut tx, &org.to_string(), &document, self.now_ms()).await?;
        let view = self.legal_identity_view(&mut tx, org).await?;
        self.commit_audited(
            tx,
            who,
            meta,
            AuditEvent::new("org.legal_identity", format!("org:{org}"))
                .org(org)
                // Which fields are filled in, not their values: a
                // person's address has no place in a trail that is never
                // erased.
                .details(serde_json::json!({
                    "siret": siret.is_some(),
                    "address": identity.address.is_some(),
                    "legal_form": identity.legal_form.is_some(),
                    "share_capital": identity.share_capital.is_some(),
                    "rcs": identity.rcs.is_some(),
                    "chorus_pro": identity.chorus_pro.is_some(),
                    "vat_on_debits": identity.vat_on_debits,
                })),
        )
        .await?;
        Ok(view)
    }

    /// Invites an address to the organisation. The answer is the same
    /// whether or not the address has an account, and nothing changes for
    /// its user until they accept ([`Platform::accept_invitation`]): nobody
    /// is made a member of an organisation they did not choose.
    pub async fn add_member(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        org: OrgId,
        email: &str,
        role: Role,
    ) -> ServiceResult<Invitation> {
        let email = Email::parse(email)?;
        let now = self.now_ms();
        let limits = self.settings().mail_limits;
        let mut tx = self.db().begin_write().await?;
        let org_row = self
            .authorize_org(&mut tx, who, org, Permission::Grant(role))
            .await?;
        let (_, by_org) = repo::invitations_sent_since(
            &mut tx,
            email.as_str(),
            &org.to_string(),
            now - 3_600_000,
            now - 86_400_000,
        )
        .await?;
        if by_org >= limits.invitations_per_org_per_day {
            return Err(ServiceError::RateLimited);
        }
        let row = repo::InvitationRow {
            id: uuid::Uuid::now_v7().to_string(),
            org_id: org.to_string(),
            org_name: org_row.name.clone(),
            email: email.as_str().to_owned(),
            role: role.as_str().to_owned(),
            invited_by: who.actor(),
            created_at: now,
            expires_at: now + INVITATION_TTL_MS,
        };
        repo::upsert_invitation(&mut tx, &row).await?;
        // Sent at most a few times an hour to one address, whoever asks.
        let recent = nuage_db::repo::mail::count_to_recipient_since(
            &mut tx,
            email.as_str(),
            now - 3_600_000,
        )
        .await?;
        self.commit_audited(
            tx,
            who,
            meta,
            AuditEvent::new("member.invite", format!("email:{email}"))
                .org(org)
                .details(serde_json::json!({"role": role})),
        )
        .await?;
        if recent < limits.per_recipient_per_hour {
            // The console lists the invitations waiting for a user on its home page.
            let link = format!("{}/", self.settings().public_url);
            let body = format!(
                "Bonjour,\n\nVous êtes invité·e à rejoindre « {name} » sur Nuage. Connectez-vous (ou créez votre compte avec cette adresse) puis acceptez l'invitation : {link}\nSans réponse de votre part, rien ne change.\n\n---\n\nHello,\n\nYou are invited to join \"{name}\" on Nuage. Sign in (or create your account with this address), then accept the invitation: {link}\nIf you do nothing, nothing changes.\n",
                name = org_row.name
            );
            self.mailer()
                .send(
                    self.db(),
                    self.clock().as_ref(),
                    email.as_str(),
                    "Invitation Nuage",
                    &body,
                    None,
                )
                .await?;
        }
        Ok(Invitation::from(row))
    }

    /// The invitations waiting for the caller.
    pub async fn invitations(&self, who: &Principal) -> ServiceResult<Vec<Invitation>> {
        let (user, _) = self.me(who).await?;
        let rows =
            repo::pending_invitations(&mut *self.db().acquire().await?, &user.email, self.now_ms())
                .await?;
        Ok(rows.into_iter().map(Invitation::from).collect())
    }

    /// Accepts an invitation sent to the caller's address: they become a
    /// member with its role.
    pub async fn accept_invitation(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        id: &str,
    ) -> ServiceResult<Membership> {
        let (user, _) = self.me(who).await?;
        let mut tx = self.db().begin_write().await?;
        let invitation = repo::close_invitation(&mut tx, id, &user.email, self.now_ms(), true)
            .await?
            .ok_or(ServiceError::NotFound("invitation"))?;
        let user_id = user.id.to_string();
        if repo::get_membership(&mut tx, &invitation.org_id, &user_id)
            .await?
            .is_none()
        {
            repo::insert_membership(
                &mut tx,
                &invitation.org_id,
                &user_id,
                &invitation.role,
                self.now_ms(),
            )
            .await?;
        }
        let membership = repo::get_membership(&mut tx, &invitation.org_id, &user_id)
            .await?
            .ok_or(ServiceError::NotFound("membership"))?;
        self.commit_audited(
            tx,
            who,
            meta,
            AuditEvent::new("member.add", format!("user:{user_id}"))
                .org(OrgId::parse(&invitation.org_id)?)
                .details(serde_json::json!({"role": invitation.role, "invitation": id})),
        )
        .await?;
        Membership::try_from(membership)
    }

    /// Declines an invitation sent to the caller's address.
    pub async fn decline_invitation(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        id: &str,
    ) -> ServiceResult<()> {
        let (user, _) = self.me(who).await?;
        let mut tx = self.db().begin_write().await?;
        let invitation = repo::close_invitation(&mut tx, id, &user.email, self.now_ms(), false)
            .await?
            .ok_or(ServiceError::NotFound("invitation"))?;
        self.commit_audited(
            tx,
            who,
            meta,
            AuditEvent::new("member.decline", format!("user:{}", user.id))
                .org(OrgId::parse(&invitation.org_id)?),
        )
        .await
    }

    pub async fn list_members(
        &self,
        who: &Principal,
        org: OrgId,
        page: &PageRequest,
    ) -> ServiceResult<Page<Membership>> {
        let (limit, after) = (page.limit()?, page.after()?);
        let mut conn = self.db().acquire().await?;
        self.authorize_org(&mut conn, who, org, Permission::Use)
            .await?;
        let rows = repo::list_members(&mut conn, &org.to_string(), &after, limit).await?;
        let page = Page::from_rows(rows, limit, |r| r.user_id.clone(), Membership::try_from);
        Ok(Page {
            items: page.items.into_iter().collect::<ServiceResult<_>>()?,
            next_cursor: page.next_cursor,
        })
    }

    /// Removes a member. The last owner cannot be removed; only owners remove owners.
    pub async fn remove_member(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        org: OrgId,
        user: UserId,
    ) -> ServiceResult<()> {
        let mut tx = self.db().begin_write().await?;
        repo::lock_org(&mut tx, &org.to_string()).await?;
        self.authorize_org(&mut tx, who, org, Permission::Manage)
            .await?;
        let target = repo::get_membership(&mut tx, &org.to_string(), &user.to_string())
            .await?
            .ok_or(ServiceError::NotFound("member"))?;
        if target.role == Role::Owner.as_str() {
            if !who.is_operator() {
                let mine = repo::get_membership(
                    &mut tx,
                    &org.to_string(),
                    &who.user_id().map(|u| u.to_string()).unwrap_or_default(),
                )
                .await?;
                if mine.is_none_or(|m| m.role != Role::Owner.as_str()) {
                    return Err(ServiceError::Forbidden(
                        "only an owner can remove an owner".into(),
                    ));
                }
            }
            if repo::count_owners(&mut tx, &org.to_string()).await? <= 1 {
                return Err(ServiceError::Conflict(
                    "an organisation keeps at least one owner".into(),
                ));
            }
        }
        repo::delete_membership(&mut tx, &org.to_string(), &user.to_string()).await?;
        self.commit_audited(
            tx,
            who,
            meta,
            AuditEvent::new("member.remove", format!("user:{user}")).org(org),
        )
        .await
    }

    /// The user behind a principal, with their memberships.
    pub async fn me(&self, who: &Principal) -> ServiceResult<(User, Vec<Membership>)> {
        let Some(id) = who.user_id() else {
            return Err(ServiceError::Forbidden(
                "the root token is not a user".into(),
            ));
        };
        let mut conn = self.db().acquire().await?;
        let user = repo::get_user(&mut conn, &id.to_string()).await?.ok_or(
            ServiceError::Unauthenticated("the user no longer exists".into()),
        )?;
        let memberships = repo::list_memberships_of_user(&mut conn, &id.to_string())
            .await?
            .into_iter()
            .map(Membership::try_from)
            .collect::<ServiceResult<_>>()?;
        Ok((User::try_from(&user)?, memberships))
    }

    /// An organisation's own audit entries, newest first (owners and admins).
    pub async fn org_audit(
        &self,
        who: &Principal,
        org: OrgId,
        page: &PageRequest,
    ) -> ServiceResult<Page<crate::AuditEntry>> {
        let limit = page.limit()?;
        let before = match page.after()?.as_str() {
            "" => i64::MAX,
            c => c.parse::<i64>().map_err(|_| {
                DomainError::invalid("cursor", "the cursor is not one this server issued")
            })?,
        };
        let mut conn = self.db().acquire().await?;
        self.authorize_org(&mut conn, who, org, Permission::Manage)
            .await?;
        let rows =
            nuage_db::repo::audit::page_of_org(&mut conn, &org.to_string(), before, limit).await?;
        Ok(Page::from_rows(
            rows,
            limit,
            |r| r.seq.to_string(),
            crate::AuditEntry::from,
        ))
    }
}
