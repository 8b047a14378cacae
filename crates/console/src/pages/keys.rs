//! The user's API tokens and the organisation's S3 keys: listed without
//! their secrets, created with the secret shown once (in the answer to the
//! creating form, never stored for a later page), revoked at once.

use askama::Template;
use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use nuage_domain::DomainError;
use nuage_domain::bucket_policy::PublicAccessBlock;
use nuage_domain::ids::TokenId;
use nuage_domain::storage::KeyPurpose;
use nuage_service::auth::Session;
use nuage_storage::Storage;
use serde::Deserialize;

use super::{ListQuery, NoFields, current_org, next_page_href, read_query};
use crate::error::{FormAlert, FormError, PageError};
use crate::form::Posted;
use crate::session::Ctx;
use crate::views::{Chrome, When};

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub created: When,
    pub expires: Option<When>,
    pub last_used: Option<When>,
}

/// A secret just created, shown this once.
pub struct NewSecret {
    pub name: String,
    pub secret: String,
}

#[derive(Template)]
#[template(path = "tokens.html")]
pub struct TokensPage {
    pub c: Chrome,
    pub csrf: String,
    pub rows: Vec<TokenRow>,
    pub next_href: Option<String>,
    pub created: Option<NewSecret>,
    pub name: String,
    pub days: String,
    pub error: FormAlert,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct TokenForm {
    pub csrf: String,
    pub name: String,
    pub expires_in_days: String,
}

pub async fn tokens(
    ctx: Ctx,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    tokens_page(
        &ctx,
        session,
        &read_query(query),
        TokenForm::default(),
        None,
        FormAlert::none(),
    )
    .await
}

async fn tokens_page(
    ctx: &Ctx,
    session: &Session,
    query: &ListQuery,
    form: TokenForm,
    created: Option<NewSecret>,
    error: FormAlert,
) -> Result<Response, PageError> {
    let list = ctx
        .platform
        .list_api_tokens(&session.principal(), &query.page())
        .await?;
    let page = TokensPage {
        c: ctx.chrome("tokens"),
        csrf: session.csrf_token.clone(),
        next_href: next_page_href("/tokens", list.next_cursor.as_deref()),
        rows: list
            .items
            .into_iter()
            .map(|t| TokenRow {
                id: t.id,
                name: t.name,
                created: When::at(t.created_at_ms),
                expires: t.expires_at_ms.map(When::at),
                last_used: t.last_used_at_ms.map(When::at),
            })
            .collect(),
        created,
        name: form.name,
        days: form.expires_in_days,
        error,
    };
    let status = page.error.status_or(if page.created.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    });
    ctx.page(status, &page)
}

/// An optional number of days, as typed.
fn parse_days(days: &str) -> Result<Option<u32>, DomainError> {
    match days.trim() {
        "" => Ok(None),
        n => n.parse::<u32>().map(Some).map_err(|_| {
            DomainError::invalid("expires_in_days", "the lifetime is a whole number of days")
        }),
    }
}

pub async fn create_token(
    Posted { ctx, mut form, .. }: Posted<TokenForm>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let outcome = match parse_days(&form.expires_in_days) {
        Ok(days) => {
            ctx.platform
                .create_api_token(&session.principal(), &ctx.meta, &form.name, days)
                .await
        }
        Err(e) => Err(e.into()),
    };
    match outcome {
        Ok((token, secret)) => {
            form = TokenForm::default();
            let created = NewSecret {
                name: token.name,
                secret,
            };
            tokens_page(
                &ctx,
                session,
                &ListQuery::default(),
                form,
                Some(created),
                FormAlert::none(),
            )
            .await
        }
        Err(e) => {
            let error = FormError::from_service(ctx.t, e)?;
            tokens_page(
                &ctx,
                session,
                &ListQuery::default(),
                form,
                None,
                error.into(),
            )
            .await
        }
    }
}

pub async fn revoke_token(
    Path(id): Path<String>,
    Posted { ctx, form: _, .. }: Posted<NoFields>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let id = TokenId::parse(&id).map_err(|_| PageError::NotFound)?;
    ctx.platform
        .revoke_api_token(&session.principal(), &ctx.meta, id)
        .await?;
    Ok(Redirect::to("/tokens?notice=token_revoked").into_response())
}

pub struct S3KeyRow {
    pub access_key_id: String,
    pub created_by: String,
    pub created: When,
    pub revoked: Option<When>,
    pub export: bool,
    pub expires: Option<When>,
}

/// The form that creates a key: an export key when `purpose` says so.
#[derive(Deserialize)]
pub struct CreateS3KeyForm {
    #[serde(default)]
    pub purpose: Option<String>,
}

/// An S3 key just created, its secret shown this once.
pub struct NewS3Key {
    pub access_key_id: String,
    pub secret: String,
}

#[derive(Template)]
#[template(path = "s3_keys.html")]
pub struct S3KeysPage {
    pub c: Chrome,
    pub csrf: String,
    pub org_name: Option<String>,
    pub rows: Vec<S3KeyRow>,
    pub next_href: Option<String>,
    pub created: Option<NewS3Key>,
    /// The organisation's Block Public Access switches.
    pub public: PublicAccessBlock,
}

pub async fn s3_keys(
    Extension(storage): Extension<Storage>,
    ctx: Ctx,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    s3_keys_page(&storage, &ctx, session, &read_query(query), None).await
}

async fn s3_keys_page(
    storage: &Storage,
    ctx: &Ctx,
    session: &Session,
    query: &ListQuery,
    created: Option<NewS3Key>,
) -> Result<Response, PageError> {
    let mut page = S3KeysPage {
        c: ctx.chrome("s3_keys"),
        csrf: session.csrf_token.clone(),
        org_name: None,
        rows: Vec::new(),
        next_href: None,
        created,
        public: PublicAccessBlock::ALL,
    };
    if let Some((org, membership)) = current_org(session)? {
        page.public = storage
            .org_public_access_block(&session.principal(), org)
            .await?;
        let list = ctx
            .platform
            .list_s3_keys(&session.principal(), org, &query.page())
            .await?;
        page.org_name = Some(membership.org_name.clone());
        page.next_href = next_page_href("/s3-keys", list.next_cursor.as_deref());
        page.rows = list
            .items
            .into_iter()
            .map(|k| S3KeyRow {
                access_key_id: k.access_key_id,
                created_by: k.created_by,
                created: When::at(k.created_at_ms),
                revoked: k.revoked_at_ms.map(When::at),
                export: k.purpose == KeyPurpose::Export.as_str(),
                expires: k.expires_at_ms.map(When::at),
            })
            .collect();
    }
    let status = if page.created.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    ctx.page(status, &page)
}

pub async fn create_s3_key(
    Extension(storage): Extension<Storage>,
    Posted { ctx, form, .. }: Posted<CreateS3KeyForm>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let Some((org, _)) = current_org(session)? else {
        return Err(PageError::NotFound);
    };
    let purpose = match form.purpose.as_deref() {
        None | Some("") => KeyPurpose::Access,
        Some(p) => KeyPurpose::parse(p).map_err(nuage_service::ServiceError::from)?,
    };
    let (key, secret) = ctx
        .platform
        .create_s3_key(&session.principal(), &ctx.meta, org, purpose)
        .await?;
    s3_keys_page(
        &storage,
        &ctx,
        session,
        &ListQuery::default(),
        Some(NewS3Key {
            access_key_id: key.access_key_id,
            secret,
        }),
    )
    .await
}

pub async fn revoke_s3_key(
    Path(access_key_id): Path<String>,
    Posted { ctx, form: _, .. }: Posted<NoFields>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    ctx.platform
        .revoke_s3_key(&session.principal(), &ctx.meta, &access_key_id)
        .await?;
    Ok(Redirect::to("/s3-keys?notice=s3_key_revoked").into_response())
}

/// The organisation's Block Public Access, as its form posts it: a ticked
/// box is a switch on.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct PublicAccessForm {
    pub csrf: String,
    pub block_public_acls: Option<String>,
    pub ignore_public_acls: Option<String>,
    pub block_public_policy: Option<String>,
    pub restrict_public_buckets: Option<String>,
}

pub async fn set_public_access(
    Extension(storage): Extension<Storage>,
    Posted { ctx, form, .. }: Posted<PublicAccessForm>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let Some((org, _)) = current_org(session)? else {
        return Err(PageError::NotFound);
    };
    let block = PublicAccessBlock {
        block_public_acls: form.block_public_acls.is_some(),
        ignore_public_acls: form.ignore_public_acls.is_some(),
        block_public_policy: form.block_public_policy.is_some(),
        restrict_public_buckets: form.restrict_public_buckets.is_some(),
    };
    storage
        .set_org_public_access_block(&session.principal(), &ctx.meta, org, block)
        .await?;
    Ok(Redirect::to("/s3-keys?notice=public_access_saved").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_optional_whole_numbers() {
        assert_eq!(parse_days(""), Ok(None));
        assert_eq!(parse_days(" 30 "), Ok(Some(30)));
        assert!(parse_days("soon").is_err());
        assert!(parse_days("-1").is_err());
    }
}
