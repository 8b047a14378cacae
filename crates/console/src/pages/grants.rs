//! Sharing with people of the platform: the owner gives (and removes)
//! access to a file or folder; its user finds it under "shared with you"
//! and browses it at `/drive/shared/{id}` — downloads, and with write
//! access uploads, new folders and the trash — never outside the item.

use askama::Template;
use axum::Extension;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use nuage_domain::DomainError;
use nuage_domain::drive::DrivePath;
use nuage_service::ServiceError;
use nuage_storage::Storage;
use nuage_storage::grants::{Access, OpenGrant};

use super::drive::{DriveQuery, Row, send_file, upload_of};
use super::{Pairs, current_org, field, read_query, storage_caller, storage_error};
use crate::error::{FormAlert, FormError, PageError};
use crate::form::Posted;
use crate::session::Ctx;
use crate::views::Chrome;

/// Gives a person access (`path`, `email`, `access`) or removes it
/// (`revoke` = id).
pub async fn act(
    Extension(storage): Extension<Storage>,
    Posted { ctx, form: f, .. }: Posted<Pairs>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let Some((org, _)) = current_org(session)? else {
        return Err(PageError::NotFound);
    };
    let who = session.principal();
    let revoke = field(&f, "revoke");
    let outcome = if revoke.is_empty() {
        async {
            let drive = storage.drive(storage_caller(&ctx, &storage, session, org).await?);
            drive.open().await.map_err(storage_error)?;
            let path = DrivePath::parse(&field(&f, "path"))?;
            let access = Access::parse(&field(&f, "access"))?;
            storage
                .grant(&who, &ctx.meta, &drive, &path, &field(&f, "email"), access)
                .await?;
            Ok::<_, ServiceError>("granted")
        }
        .await
    } else {
        storage
            .revoke_grant(&who, &ctx.meta, org, &revoke)
            .await
            .map(|()| "grant_revoked")
    };
    super::shares::links_answer(&ctx, &storage, outcome).await
}

#[derive(Template)]
#[template(path = "drive/shared.html")]
pub struct SharedPage {
    pub c: Chrome,
    pub csrf: String,
    pub id: String,
    pub title: String,
    pub owner: String,
    pub writable: bool,
    /// The user's folder, relative to the granted one.
    pub here: String,
    pub crumbs: Vec<(String, String)>,
    pub rows: Vec<Row>,
    pub error: FormAlert,
}

async fn open(ctx: &Ctx, storage: &Storage, id: &str) -> Result<OpenGrant, PageError> {
    let session = ctx.user()?;
    Ok(storage
        .open_grant(&session.principal(), id, &ctx.meta.source)
        .await?)
}

async fn shared_page(
    ctx: &Ctx,
    storage: &Storage,
    id: &str,
    sub: &str,
    error: FormAlert,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let grant = open(ctx, storage, id).await?;
    let path = grant.resolve(sub)?;
    let base = &grant.grant.path;
    let mut view = SharedPage {
        c: ctx.chrome("drive"),
        csrf: session.csrf_token.clone(),
        id: id.to_owned(),
        title: base.name().to_owned(),
        owner: grant.grant.org_name.clone(),
        writable: grant.grant.access == Access::Write && grant.grant.folder,
        here: path.relative_to(base),
        crumbs: Vec::new(),
        rows: Vec::new(),
        error,
    };
    view.crumbs = DrivePath::parse(&view.here)
        .unwrap_or_default()
        .ancestors()
        .into_iter()
        .map(|(name, p)| (name, p.as_str().to_owned()))
        .collect();
    let entries = if grant.grant.folder {
        grant.drive.list(&path).await.map_err(storage_error)?
    } else {
        vec![
            grant
                .drive
                .stat(&path)
                .await
                .map_err(storage_error)?
                .ok_or(PageError::NotFound)?,
        ]
    };
    view.rows = entries
        .iter()
        .map(|e| {
            let mut row = Row::of(e);
            row.path = e.path.relative_to(base);
            row
        })
        .collect();
    grant.drive.record("DriveList", path.as_str(), 200, 0);
    let status = view.error.status_or(StatusCode::OK);
    ctx.page(status, &view)
}

pub async fn shared(
    ctx: Ctx,
    Extension(storage): Extension<Storage>,
    Path(id): Path<String>,
    query: Result<Query<DriveQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let q = read_query(query);
    shared_page(&ctx, &storage, &id, &q.path, FormAlert::none()).await
}

/// A file of the shared item.
pub async fn file(
    ctx: Ctx,
    Extension(storage): Extension<Storage>,
    Path(id): Path<String>,
    query: Result<Query<DriveQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let q = read_query(query);
    let grant = open(&ctx, &storage, &id).await?;
    let path = grant.resolve(&q.path)?;
    send_file(&grant.drive, &path, None, q.inline.is_some()).await
}

/// With write access: `mkdir` (`folder`, `name`) and `trash` (`path`).
pub async fn change(
    Extension(storage): Extension<Storage>,
    Path(id): Path<String>,
    Posted { ctx, form: f, .. }: Posted<Pairs>,
) -> Result<Response, PageError> {
    ctx.user()?;
    let grant = open(&ctx, &storage, &id).await?;
    let here = field(&f, "folder");
    let outcome = async {
        grant.check_write()?;
        match field(&f, "action").as_str() {
            "mkdir" => {
                let path = grant.resolve(&here)?.join(&field(&f, "name"))?;
                grant
                    .drive
                    .create_folder(&path)
                    .await
                    .map_err(storage_error)?;
                Ok("folder_created")
            }
            "trash" => {
                let path = grant.resolve(&field(&f, "path"))?;
                if path == grant.grant.path {
                    return Err(ServiceError::Forbidden(
                        "the shared item itself is its owner's to delete".into(),
                    ));
                }
                grant.drive.trash(&path).await.map_err(storage_error)?;
                Ok("trashed")
            }
            _ => Err(DomainError::invalid("action", "unknown action").into()),
        }
    }
    .await;
    match outcome {
        Ok(notice) => Ok(Redirect::to(&format!(
            "/drive/shared/{id}?path={}&notice={notice}",
            url::form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>()
        ))
        .into_response()),
        Err(e) => {
            let error = FormError::from_service(ctx.t, e)?;
            shared_page(&ctx, &storage, &id, &here, error.into()).await
        }
    }
}

/// With write access, one file sent by `static/drive.js`.
pub async fn upload(
    ctx: Ctx,
    Extension(storage): Extension<Storage>,
    Path(id): Path<String>,
    query: Result<Query<DriveQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let session = match crate::script::session(&ctx, &headers) {
        Ok(s) => s,
        Err(response) => return *response,
    };
    let q = read_query(query);
    let outcome: Result<serde_json::Value, ServiceError> = async {
        let grant = storage
            .open_grant(&session.principal(), &id, &ctx.meta.source)
            .await?;
        grant.check_write()?;
        let path = grant.resolve(&q.path)?;
        if path == grant.grant.path {
            return Err(DomainError::invalid("path", "a file needs a name").into());
        }
        let out = grant
            .drive
            .upload(upload_of(path.clone(), &headers, body, true))
            .await
            .map_err(storage_error)?;
        grant.drive.record("DrivePut", path.as_str(), 201, out.size);
        Ok(serde_json::json!({"path": path.as_str(), "size": out.size}))
    }
    .await;
    crate::script::answer(&ctx, outcome)
}
