//! Organisations, users and memberships.

use sqlx::{AnyConnection, FromRow};

use crate::DbError;

#[derive(Debug, Clone, FromRow)]
pub struct OrgRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub siret: Option<String>,
    pub vat_number: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub require_totp: i64,
    pub created_at: i64,
}

#[derive(Clone, FromRow)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    pub totp_secret: Option<String>,
    pub totp_enabled: i64,
    pub totp_last_step: i64,
    pub is_operator: i64,
    pub created_at: i64,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("totp_enabled", &self.totp_enabled)
            .field("is_operator", &self.is_operator)
            .finish_non_exhaustive()
    }
}

/// A membership seen from either side, with the names a page shows.
#[derive(Debug, Clone, FromRow)]
pub struct MembershipRow {
    pub org_id: String,
    pub org_name: String,
    pub user_id: String,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub created_at: i64,
}

const ORG_COLUMNS: &str = "id, name, kind, siret, vat_number, country, require_totp, created_at";
const USER_COLUMNS: &str = "id, email, display_name, password_hash, totp_secret, totp_enabled, totp_last_step, is_operator, created_at";
const MEMBERSHIP_SELECT: &str = "SELECT m.org_id, o.name AS org_name, m.user_id, u.email, u.display_name, m.role, m.created_at \
     FROM memberships m JOIN organisations o ON o.id = m.org_id JOIN users u ON u.id = m.user_id";

/// Every organisation's name (to refuse one that reads like another).
pub async fn org_names(conn: &mut AnyConnection) -> Result<Vec<String>, DbError> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT name FROM organisations")
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

pub async fn insert_org(conn: &mut AnyConnection, org: &OrgRow) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO organisations (id, name, kind, siret, vat_number, country, require_totp, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&org.id)
    .bind(&org.name)
    .bind(&org.kind)
    .bind(&org.siret)
    .bind(&org.vat_number)
    .bind(&org.country)
    .bind(org.require_totp)
    .bind(org.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_org(conn: &mut AnyConnection, id: &str) -> Result<Option<OrgRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ORG_COLUMNS} FROM organisations WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// All organisations after the cursor, in creation order (operator view).
pub async fn list_orgs(
    conn: &mut AnyConnection,
    after: &str,
    limit: i64,
) -> Result<Vec<OrgRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ORG_COLUMNS} FROM organisations WHERE id > $1 ORDER BY id LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// The organisations a user belongs to, after the cursor.
pub async fn list_orgs_of_user(
    conn: &mut AnyConnection,
    user_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<OrgRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT o.id, o.name, o.kind, o.siret, o.vat_number, o.country, o.require_totp, o.created_at FROM organisations o \
         JOIN memberships m ON m.org_id = o.id WHERE m.user_id = $1 AND o.id > $2 ORDER BY o.id LIMIT $3",
    )
    .bind(user_id)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

pub async fn set_org_require_totp(
    conn: &mut AnyConnection,
    id: &str,
    require: bool,
) -> Result<bool, DbError> {
    let done = sqlx::query("UPDATE organisations SET require_totp = $1 WHERE id = $2")
        .bind(i64::from(require))
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets what invoices say of an organisation for VAT.
pub async fn set_org_tax(
    conn: &mut AnyConnection,
    id: &str,
    vat_number: Option<&str>,
    country: &str,
) -> Result<(), DbError> {
    sqlx::query("UPDATE organisations SET vat_number = $1, country = $2 WHERE id = $3")
        .bind(vat_number)
        .bind(country)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_org_siret(
    conn: &mut AnyConnection,
    id: &str,
    siret: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query("UPDATE organisations SET siret = $1 WHERE id = $2")
        .bind(siret)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// An organisation's legal identity for invoices (a JSON document).
pub async fn legal_identity(
    conn: &mut AnyConnection,
    org: &str,
) -> Result<Option<String>, DbError> {
    Ok(
        sqlx::query_scalar("SELECT document FROM org_legal_identities WHERE org_id = $1")
            .bind(org)
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn set_legal_identity(
    conn: &mut AnyConnection,
    org: &str,
    document: &str,
    at: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO org_legal_identities (org_id, document, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (org_id) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at",
    )
    .bind(org)
    .bind(document)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn insert_user(conn: &mut AnyConnection, user: &UserRow) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .bind(&user.id)
    .bind(&user.email)
    .bind(&user.display_name)
    .bind(&user.password_hash)
    .bind(&user.totp_secret)
    .bind(user.totp_enabled)
    .bind(user.totp_last_step)
    .bind(user.is_operator)
    .bind(user.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_user(conn: &mut AnyConnection, id: &str) -> Result<Option<UserRow>, DbError> {
    Ok(
        sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn get_user_by_email(
    conn: &mut AnyConnection,
    email: &str,
) -> Result<Option<UserRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
    ))
    .bind(email)
    .fetch_optional(conn)
    .await?)
}

pub async fn set_password_hash(
    conn: &mut AnyConnection,
    user_id: &str,
    hash: &str,
) -> Result<(), DbError> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Stores a (sealed) TOTP secret, enabled or pending confirmation.
pub async fn set_totp(
    conn: &mut AnyConnection,
    user_id: &str,
    sealed_secret: Option<&str>,
    enabled: bool,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE users SET totp_secret = $1, totp_enabled = $2, totp_last_step = 0 WHERE id = $3",
    )
    .bind(sealed_secret)
    .bind(i64::from(enabled))
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the time step of an accepted code, only if it is newer than the
/// last one: a code is never accepted twice, even across nodes.
pub async fn advance_totp_step(
    conn: &mut AnyConnection,
    user_id: &str,
    step: i64,
) -> Result<bool, DbError> {
    let done =
        sqlx::query("UPDATE users SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1")
            .bind(step)
            .bind(user_id)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn insert_membership(
    conn: &mut AnyConnection,
    org_id: &str,
    user_id: &str,
    role: &str,
    at: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(role)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_membership(
    conn: &mut AnyConnection,
    org_id: &str,
    user_id: &str,
) -> Result<Option<MembershipRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "{MEMBERSHIP_SELECT} WHERE m.org_id = $1 AND m.user_id = $2"
    ))
    .bind(org_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await?)
}

pub async fn list_members(
    conn: &mut AnyConnection,
    org_id: &str,
    after_user: &str,
    limit: i64,
) -> Result<Vec<MembershipRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "{MEMBERSHIP_SELECT} WHERE m.org_id = $1 AND m.user_id > $2 ORDER BY m.user_id LIMIT $3"
    ))
    .bind(org_id)
    .bind(after_user)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

pub async fn list_memberships_of_user(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Vec<MembershipRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "{MEMBERSHIP_SELECT} WHERE m.user_id = $1 ORDER BY o.name, m.org_id"
    ))
    .bind(user_id)
    .fetch_all(conn)
    .await?)
}

pub async fn set_membership_role(
    conn: &mut AnyConnection,
    org_id: &str,
    user_id: &str,
    role: &str,
) -> Result<bool, DbError> {
    let done = sqlx::query("UPDATE memberships SET role = $1 WHERE org_id = $2 AND user_id = $3")
        .bind(role)
        .bind(org_id)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete_membership(
    conn: &mut AnyConnection,
    org_id: &str,
    user_id: &str,
) -> Result<bool, DbError> {
    let done = sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn count_owners(conn: &mut AnyConnection, org_id: &str) -> Result<i64, DbError> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role = 'owner'")
            .bind(org_id)
            .fetch_one(conn)
            .await?;
    Ok(n)
}

/// Records a failed sign-in for an address (known or not).
pub async fn record_login_failure(
    conn: &mut AnyConnection,
    email: &str,
    at: i64,
) -> Result<(), DbError> {
    sqlx::query("INSERT INTO login_failures (email, at) VALUES ($1, $2)")
        .bind(email)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Failed sign-ins for an address since a time.
pub async fn count_login_failures(
    conn: &mut AnyConnection,
    email: &str,
    since: i64,
) -> Result<i64, DbError> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM login_failures WHERE email = $1 AND at > $2")
            .bind(email)
            .bind(since)
            .fetch_one(conn)
            .await?;
    Ok(n)
}

/// Failed attempts of a throttling key since a time: how many, and when the
/// last one was.
pub async fn failures_since(
    conn: &mut AnyConnection,
    key: &str,
    since: i64,
) -> Result<(i64, Option<i64>), DbError> {
    Ok(
        sqlx::query_as("SELECT COUNT(*), MAX(at) FROM login_failures WHERE email = $1 AND at > $2")
            .bind(key)
            .bind(since)
            .fetch_one(conn)
            .await?,
    )
}

/// Forgets an address's failures (after a successful sign-in), and old ones.
pub async fn clear_login_failures(
    conn: &mut AnyConnection,
    email: &str,
    before: i64,
) -> Result<(), DbError> {
    sqlx::query("DELETE FROM login_failures WHERE email = $1 OR at < $2")
        .bind(email)
        .bind(before)
        .execute(conn)
        .await?;
    Ok(())
}

/// Locks an organisation's row until the transaction ends, so that checks
/// on its memberships (e.g. "one owner remains") hold on PostgreSQL too.
pub async fn lock_org(conn: &mut AnyConnection, id: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE organisations SET id = id WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn count_orgs(conn: &mut AnyConnection) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM organisations")
        .fetch_one(conn)
        .await?)
}

// --- invitations -------------------------------------------------------------

#[derive(Debug, Clone, FromRow)]
pub struct InvitationRow {
    pub id: String,
    pub org_id: String,
    pub org_name: String,
    pub email: String,
    pub role: String,
    pub invited_by: String,
    pub created_at: i64,
    pub expires_at: i64,
}

const INVITATION_SELECT: &str = "SELECT i.id, i.org_id, o.name AS org_name, i.email, i.role, \
     i.invited_by, i.created_at, i.expires_at FROM invitations i JOIN organisations o ON o.id = i.org_id";

/// Records an invitation, or renews the pending one of the same
/// organisation and address (its role and expiry); a lapsed one is closed
/// first.
pub async fn upsert_invitation(
    conn: &mut AnyConnection,
    inv: &InvitationRow,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE invitations SET declined_at = $1 WHERE org_id = $2 AND email = $3 \
         AND accepted_at IS NULL AND declined_at IS NULL AND expires_at <= $1",
    )
    .bind(inv.created_at)
    .bind(&inv.org_id)
    .bind(&inv.email)
    .execute(&mut *conn)
    .await?;
    let renewed = sqlx::query(
        "UPDATE invitations SET role = $1, invited_by = $2, expires_at = $3 WHERE org_id = $4 \
         AND email = $5 AND accepted_at IS NULL AND declined_at IS NULL",
    )
    .bind(&inv.role)
    .bind(&inv.invited_by)
    .bind(inv.expires_at)
    .bind(&inv.org_id)
    .bind(&inv.email)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if renewed == 0 {
        sqlx::query(
            "INSERT INTO invitations (id, org_id, email, role, invited_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&inv.id)
        .bind(&inv.org_id)
        .bind(&inv.email)
        .bind(&inv.role)
        .bind(&inv.invited_by)
        .bind(inv.created_at)
        .bind(inv.expires_at)
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// The live invitations sent to an address, newest first.
pub async fn pending_invitations(
    conn: &mut AnyConnection,
    email: &str,
    now: i64,
) -> Result<Vec<InvitationRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "{INVITATION_SELECT} WHERE i.email = $1 AND i.accepted_at IS NULL \
         AND i.declined_at IS NULL AND i.expires_at > $2 ORDER BY i.created_at DESC, i.id"
    ))
    .bind(email)
    .bind(now)
    .fetch_all(conn)
    .await?)
}

/// Closes a live invitation sent to `email`: accepted, or declined. Returns
/// it, or none when there is no such live invitation.
pub async fn close_invitation(
    conn: &mut AnyConnection,
    id: &str,
    email: &str,
    now: i64,
    accepted: bool,
) -> Result<Option<InvitationRow>, DbError> {
    let row: Option<InvitationRow> = sqlx::query_as(&format!(
        "{INVITATION_SELECT} WHERE i.id = $1 AND i.email = $2 AND i.accepted_at IS NULL \
         AND i.declined_at IS NULL AND i.expires_at > $3"
    ))
    .bind(id)
    .bind(email)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    if row.is_none() {
        return Ok(None);
    }
    let column = if accepted {
        "accepted_at"
    } else {
        "declined_at"
    };
    let done = sqlx::query(&format!(
        "UPDATE invitations SET {column} = $1 WHERE id = $2 AND accepted_at IS NULL AND declined_at IS NULL"
    ))
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(row.filter(|_| done.rows_affected() == 1))
}

/// Invitations sent to an address, and by an organisation, since a time
/// (the limits on e-mails sent on anyone's request).
pub async fn invitations_sent_since(
    conn: &mut AnyConnection,
    email: &str,
    org_id: &str,
    since_email: i64,
    since_org: i64,
) -> Result<(i64, i64), DbError> {
    let (to_address,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM invitations WHERE email = $1 AND created_at > $2")
            .bind(email)
            .bind(since_email)
            .fetch_one(&mut *conn)
            .await?;
    let (by_org,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM invitations WHERE org_id = $1 AND created_at > $2")
            .bind(org_id)
            .bind(since_org)
            .fetch_one(conn)
            .await?;
    Ok((to_address, by_org))
}

// --- the organisation a user works in ----------------------------------------

pub async fn set_last_org(
    conn: &mut AnyConnection,
    user_id: &str,
    org_id: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO last_orgs (user_id, org_id) VALUES ($1, $2) \
         ON CONFLICT (user_id) DO UPDATE SET org_id = excluded.org_id",
    )
    .bind(user_id)
    .bind(org_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The organisation the console opens at sign-in: the one the user last
/// chose while still a member of it, else their oldest membership.
pub async fn opening_org(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Option<String>, DbError> {
    let chosen: Option<(String,)> = sqlx::query_as(
        "SELECT l.org_id FROM last_orgs l JOIN memberships m \
         ON m.org_id = l.org_id AND m.user_id = l.user_id WHERE l.user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((org,)) = chosen {
        return Ok(Some(org));
    }
    let oldest: Option<(String,)> = sqlx::query_as(
        "SELECT org_id FROM memberships WHERE user_id = $1 ORDER BY created_at, org_id LIMIT 1",
    )
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    Ok(oldest.map(|o| o.0))
}
