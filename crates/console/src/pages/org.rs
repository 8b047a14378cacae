//! The current organisation: the home page (landing or dashboard), the
//! organisation switcher, the members and the audit log.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use nuage_domain::ids::{OrgId, UserId};
use nuage_domain::org::Role;
use nuage_service::ServiceError;
use nuage_service::auth::Session;
use serde::Deserialize;

use super::{Choice, ListQuery, NoFields, current_org, next_page_href, read_query};
use crate::error::{FormAlert, FormError, PageError};
use crate::form::Posted;
use crate::session::{Ctx, safe_next};
use crate::views::{Chrome, When};

#[derive(Template)]
#[template(path = "landing.html")]
pub struct LandingPage {
    pub c: Chrome,
}

/// The current organisation as the dashboard shows it.
pub struct OrgView {
    pub name: String,
    pub role: &'static str,
    /// The details only readable when the organisation lets the user act in it.
    pub details: Option<OrgDetails>,
}

pub struct OrgDetails {
    pub kind: &'static str,
    pub siret: Option<String>,
    pub vat_number: Option<String>,
    pub created: When,
    pub require_totp: bool,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    pub c: Chrome,
    pub display_name: String,
    pub org: Option<OrgView>,
    pub totp_enabled: bool,
    /// The organisation refuses the user until they enable a second factor.
    pub totp_required: bool,
    pub can_manage: bool,
    pub csrf: String,
    /// Invitations waiting for the user's answer: nothing changes for them
    /// until they accept one.
    pub invitations: Vec<InvitationRow>,
}

pub struct InvitationRow {
    pub id: String,
    pub org_name: String,
    pub role: String,
}

pub async fn home(ctx: Ctx) -> Result<Response, PageError> {
    if ctx.session.is_none() {
        return ctx.page(
            StatusCode::OK,
            &LandingPage {
                c: ctx.chrome("home"),
            },
        );
    }
    let session = ctx.user()?;
    let (org, totp_required) = match current_org(session)? {
        None => (None, false),
        Some((id, membership)) => {
            let (details, totp_required) =
                match ctx.platform.get_org(&session.principal(), id).await {
                    Ok(org) => (
                        Some(OrgDetails {
                            kind: ctx.t.kind(org.kind),
                            siret: org.siret,
                            vat_number: org.vat_number,
                            created: When::at(org.created_at_ms),
                            require_totp: org.require_totp,
                        }),
                        false,
                    ),
                    Err(ServiceError::Forbidden(_)) => (None, !session.user.totp_enabled),
                    Err(e) if e.is_server_fault() => return Err(e.into()),
                    Err(_) => (None, false),
                };
            (
                Some(OrgView {
                    name: membership.org_name.clone(),
                    role: ctx.t.role(membership.role),
                    details,
                }),
                totp_required,
            )
        }
    };
    let invitations = ctx
        .platform
        .invitations(&session.principal())
        .await?
        .into_iter()
        .map(|i| InvitationRow {
            id: i.id,
            org_name: i.org_name,
            role: Role::parse(&i.role).map_or(i.role, |r| ctx.t.role(r).to_owned()),
        })
        .collect();
    let page = DashboardPage {
        c: ctx.chrome("home"),
        csrf: session.csrf_token.clone(),
        invitations,
        display_name: session.user.display_name.clone(),
        can_manage: session
            .current_org
            .as_ref()
            .is_some_and(|m| m.role.manages_org()),
        org,
        totp_enabled: session.user.totp_enabled,
        totp_required,
    };
    ctx.page(StatusCode::OK, &page)
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct SwitchForm {
    pub csrf: String,
    pub org: String,
    pub next: String,
}

pub async fn switch(Posted { ctx, form, .. }: Posted<SwitchForm>) -> Result<Response, PageError> {
    ctx.user()?;
    let org = OrgId::parse(&form.org).map_err(|_| PageError::NotFound)?;
    let secret = ctx.session_secret.as_deref().unwrap_or_default();
    ctx.platform.switch_org(secret, org).await?;
    // The page may belong to the previous organisation (a cursor, a key):
    // go back to its path only.
    let next = safe_next(Some(&form.next));
    let path = next.split('?').next().unwrap_or("/");
    Ok(Redirect::to(path).into_response())
}

/// Accepts (`/invitations/{id}/accept`) or declines an invitation, then
/// back to the dashboard; an accepted organisation becomes the current one.
pub async fn answer_invitation(
    Path((id, answer)): Path<(String, String)>,
    Posted { ctx, form: _, .. }: Posted<NoFields>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let who = session.principal();
    match answer.as_str() {
        "accept" => {
            let membership = ctx.platform.accept_invitation(&who, &ctx.meta, &id).await?;
            let org = OrgId::parse(&membership.org_id).map_err(|_| PageError::NotFound)?;
            let secret = ctx.session_secret.as_deref().unwrap_or_default();
            ctx.platform.switch_org(secret, org).await?;
            Ok(Redirect::to("/?notice=invitation_accepted").into_response())
        }
        "decline" => {
            ctx.platform
                .decline_invitation(&who, &ctx.meta, &id)
                .await?;
            Ok(Redirect::to("/").into_response())
        }
        _ => Err(PageError::NotFound),
    }
}

pub struct MemberRow {
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub since: When,
    pub is_me: bool,
}

#[derive(Template)]
#[template(path = "members.html")]
pub struct MembersPage {
    pub c: Chrome,
    pub csrf: String,
    pub org_name: Option<String>,
    pub rows: Vec<MemberRow>,
    pub next_href: Option<String>,
    pub can_manage: bool,
    pub roles: Vec<Choice>,
    pub email: String,
    pub error: FormAlert,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct AddMemberForm {
    pub csrf: String,
    pub email: String,
    pub role: String,
}

pub async fn members(
    ctx: Ctx,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    members_page(
        &ctx,
        session,
        &read_query(query),
        AddMemberForm::default(),
        FormAlert::none(),
    )
    .await
}

/// The members page, with the add form as it was sent and its error, if any.
async fn members_page(
    ctx: &Ctx,
    session: &Session,
    query: &ListQuery,
    form: AddMemberForm,
    error: FormAlert,
) -> Result<Response, PageError> {
    let my_role = session.current_org.as_ref().map(|m| m.role);
    let chosen = Role::parse(&form.role).unwrap_or(Role::Member);
    let roles = Role::ALL
        .into_iter()
        .filter(|r| *r != Role::Owner || my_role == Some(Role::Owner))
        .map(|r| Choice {
            value: r.as_str(),
            label: ctx.t.role(r),
            selected: r == chosen,
        })
        .collect();
    let mut page = MembersPage {
        c: ctx.chrome("members"),
        csrf: session.csrf_token.clone(),
        org_name: None,
        rows: Vec::new(),
        next_href: None,
        can_manage: my_role.is_some_and(Role::manages_org),
        roles,
        email: form.email,
        error,
    };
    if let Some((org, membership)) = current_org(session)? {
        let list = ctx
            .platform
            .list_members(&session.principal(), org, &query.page())
            .await?;
        page.org_name = Some(membership.org_name.clone());
        page.next_href = next_page_href("/members", list.next_cursor.as_deref());
        page.rows = list
            .items
            .into_iter()
            .map(|m| MemberRow {
                is_me: m.user_id == session.user.id.to_string(),
                role: ctx.t.role(m.role),
                since: When::at(m.created_at_ms),
                user_id: m.user_id,
                name: m.display_name,
                email: m.email,
            })
            .collect();
    }
    ctx.page(page.error.status_or(StatusCode::OK), &page)
}

pub async fn add_member(
    Posted { ctx, form, .. }: Posted<AddMemberForm>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let Some((org, _)) = current_org(session)? else {
        return Err(PageError::NotFound);
    };
    let outcome = match Role::parse(&form.role) {
        Ok(role) => {
            ctx.platform
                .add_member(&session.principal(), &ctx.meta, org, &form.email, role)
                .await
        }
        Err(e) => Err(e.into()),
    };
    match outcome {
        Ok(_) => Ok(Redirect::to("/members?notice=member_invited").into_response()),
        Err(e) => {
            let error = FormError::from_service(ctx.t, e)?;
            members_page(&ctx, session, &ListQuery::default(), form, error.into()).await
        }
    }
}

pub async fn remove_member(
    Path(user_id): Path<String>,
    Posted { ctx, form: _, .. }: Posted<NoFields>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let user = UserId::parse(&user_id).map_err(|_| PageError::NotFound)?;
    let Some((org, _)) = current_org(session)? else {
        return Err(PageError::NotFound);
    };
    match ctx
        .platform
        .remove_member(&session.principal(), &ctx.meta, org, user)
        .await
    {
        // Who leaves an organisation no longer sees its members.
        Ok(()) if user == session.user.id => {
            Ok(Redirect::to("/?notice=member_removed").into_response())
        }
        Ok(()) => Ok(Redirect::to("/members?notice=member_removed").into_response()),
        Err(e) => {
            let error = FormError::from_service(ctx.t, e)?;
            let form = AddMemberForm::default();
            members_page(&ctx, session, &ListQuery::default(), form, error.into()).await
        }
    }
}

pub struct AuditRow {
    pub when: When,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub source: String,
    pub details: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
pub struct AuditPage {
    pub c: Chrome,
    pub org_name: Option<String>,
    pub rows: Vec<AuditRow>,
    pub next_href: Option<String>,
    pub first_page: bool,
}

pub async fn audit(
    ctx: Ctx,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let query = read_query(query);
    let mut page = AuditPage {
        c: ctx.chrome("audit"),
        org_name: None,
        rows: Vec::new(),
        next_href: None,
        first_page: query.cursor.is_none(),
    };
    if let Some((org, membership)) = current_org(session)? {
        let entries = ctx
            .platform
            .org_audit(&session.principal(), org, &query.page())
            .await?;
        page.org_name = Some(membership.org_name.clone());
        page.next_href = next_page_href("/audit", entries.next_cursor.as_deref());
        page.rows = entries
            .items
            .into_iter()
            .map(|e| AuditRow {
                when: When::at(e.at_ms),
                actor: e.actor,
                action: e.action,
                target: e.target,
                source: e.source,
                details: match &e.details {
                    serde_json::Value::Object(map) if map.is_empty() => String::new(),
                    serde_json::Value::Null => String::new(),
                    other => other.to_string(),
                },
            })
            .collect();
    }
    ctx.page(StatusCode::OK, &page)
}
