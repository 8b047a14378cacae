//! Share links: the owner's list (make, copy, revoke) and what a visitor
//! sees at `/s/{token}` — a password form when the link has one, a file to
//! download, a folder to browse and download (file by file or as a ZIP), or
//! a drop box — in the visitor's language, without an account.

use askama::Template;
use axum::Extension;
use axum::body::Body;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use nuage_domain::DomainError;
use nuage_domain::drive::DrivePath;
use nuage_service::ServiceError;
use nuage_storage::shares::{NewShare, OpenShare, ShareAccess, ShareLink, ShareMode};
use nuage_storage::{Storage, StorageError};

use super::drive::{DriveQuery, Row, human_size, send_file, upload_of};
use super::{Pairs, current_org, field, read_form, read_query, storage_caller, storage_error};
use crate::error::{FormAlert, FormError, PageError};
use crate::form::Posted;
use crate::session::Ctx;
use crate::views::{Chrome, When};

// --- the owner's links ----------------------------------------------------------

pub struct LinkRow {
    pub id: String,
    pub item: String,
    pub folder: bool,
    pub upload: bool,
    pub password: bool,
    pub expires: Option<When>,
    pub url: String,
}

impl LinkRow {
    fn of(base: &str, l: ShareLink) -> Self {
        Self {
            item: l.path.to_string(),
            folder: l.folder,
            upload: l.mode == ShareMode::Upload,
            password: l.has_password,
            expires: l.expires_at.map(When::at),
            url: format!("{base}/s/{}", l.token),
            id: l.id,
        }
    }
}

/// Access given to a person.
pub struct GrantRow {
    pub id: String,
    pub item: String,
    pub folder: bool,
    pub email: String,
    pub write: bool,
}

#[derive(Template)]
#[template(path = "drive/shares.html")]
pub struct LinksPage {
    pub c: Chrome,
    pub csrf: String,
    pub links: Vec<LinkRow>,
    pub grants: Vec<GrantRow>,
    pub error: FormAlert,
}

fn public_base(ctx: &Ctx) -> String {
    ctx.platform
        .settings()
        .public_url
        .trim_end_matches('/')
        .to_owned()
}

async fn links_page(ctx: &Ctx, storage: &Storage, error: FormAlert) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let (mut links, mut grants) = (Vec::new(), Vec::new());
    if let Some((org, _)) = current_org(session)? {
        let who = session.principal();
        links = storage
            .shares(&who, org)
            .await?
            .into_iter()
            .map(|l| LinkRow::of(&public_base(ctx), l))
            .collect();
        grants = storage
            .grants_made(&who, org)
            .await?
            .into_iter()
            .map(|g| GrantRow {
                item: g.path.to_string(),
                folder: g.folder,
                write: g.access == nuage_storage::grants::Access::Write,
                email: g.email,
                id: g.id,
            })
            .collect();
    }
    let view = LinksPage {
        c: ctx.chrome("drive"),
        csrf: session.csrf_token.clone(),
        links,
        grants,
        error,
    };
    let status = view.error.status_or(StatusCode::OK);
    ctx.page(status, &view)
}

pub async fn links(
    ctx: Ctx,
    Extension(storage): Extension<Storage>,
) -> Result<Response, PageError> {
    links_page(&ctx, &storage, FormAlert::none()).await
}

/// The end of a day (`YYYY-MM-DD`, UTC) in milliseconds.
fn end_of_day(date: &str) -> Result<i64, ServiceError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let day = time::Date::parse(date, &format)
        .map_err(|_| DomainError::invalid("expires", "a date as YYYY-MM-DD"))?;
    let end = day
        .with_hms(23, 59, 59)
        .map_err(|_| DomainError::invalid("expires", "a date as YYYY-MM-DD"))?
        .assume_utc();
    Ok(end.unix_timestamp() * 1000)
}

/// Makes a link (`path`, `mode`, `password`, `expires`) or revokes one
/// (`revoke` = id).
pub async fn links_act(
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
            let expires = field(&f, "expires");
            let new = NewShare {
                path: DrivePath::parse(&field(&f, "path"))?,
                mode: ShareMode::parse(&field(&f, "mode"))?,
                password: Some(field(&f, "password")).filter(|p| !p.is_empty()),
                expires_at: if expires.is_empty() {
                    None
                } else {
                    Some(end_of_day(&expires)?)
                },
            };
            storage.create_share(&who, &ctx.meta, &drive, new).await?;
            Ok::<_, ServiceError>("link_created")
        }
        .await
    } else {
        storage
            .revoke_share(&who, &ctx.meta, org, &revoke)
            .await
            .map(|()| "link_revoked")
    };
    links_answer(&ctx, &storage, outcome).await
}

/// After a form of the sharing page (links, or access given to people):
/// back to the list with its notice, or the list again with the error.
pub(crate) async fn links_answer(
    ctx: &Ctx,
    storage: &Storage,
    outcome: Result<&str, ServiceError>,
) -> Result<Response, PageError> {
    match outcome {
        Ok(notice) => Ok(Redirect::to(&format!("/drive/shares?notice={notice}")).into_response()),
        Err(e) => {
            let error = FormError::from_service(ctx.t, e)?;
            links_page(ctx, storage, error.into()).await
        }
    }
}

// --- what visitors see -------------------------------------------------------------

#[derive(Template)]
#[template(path = "drive/visit.html")]
pub struct VisitPage {
    pub c: Chrome,
    pub token: String,
    /// `gone`, `unknown`, `locked`, `file`, `folder` or `upload`.
    pub state: &'static str,
    pub title: String,
    /// The visitor's folder, relative to the shared one.
    pub here: String,
    pub crumbs: Vec<(String, String)>,
    pub rows: Vec<Row>,
    pub size: String,
    pub wrong_password: bool,
}

fn cookie_name(id: &str) -> String {
    format!("nuage_share_{}", id.replace('-', ""))
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(name)?.strip_prefix('='))
}

/// Opens the link with the visitor's unlock cookie, if any.
async fn visit(
    ctx: &Ctx,
    storage: &Storage,
    token: &str,
    headers: &HeaderMap,
) -> Result<ShareAccess, PageError> {
    // The proof's cookie is named after the link, which is not known yet:
    // every `nuage_share_` cookie is tried against the link found.
    let access = storage.open_share(token, None, &ctx.meta.source).await?;
    let ShareAccess::Open(share) = access else {
        return Ok(access);
    };
    if !share.locked {
        return Ok(ShareAccess::Open(share));
    }
    let proof = cookie(headers, &cookie_name(&share.id));
    Ok(storage.open_share(token, proof, &ctx.meta.source).await?)
}

fn blank(ctx: &Ctx, token: &str, state: &'static str) -> VisitPage {
    VisitPage {
        c: ctx.chrome("share"),
        token: token.to_owned(),
        state,
        title: String::new(),
        here: String::new(),
        crumbs: Vec::new(),
        rows: Vec::new(),
        size: String::new(),
        wrong_password: false,
    }
}

fn refused(ctx: &Ctx, token: &str, access: &ShareAccess) -> Result<Response, PageError> {
    let (status, state) = match access {
        ShareAccess::Gone => (StatusCode::GONE, "gone"),
        _ => (StatusCode::NOT_FOUND, "unknown"),
    };
    ctx.page(status, &blank(ctx, token, state))
}

pub async fn visitor_page(
    ctx: Ctx,
    Extension(storage): Extension<Storage>,
    Path(token): Path<String>,
    query: Result<Query<DriveQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let q = read_query(query);
    let access = visit(&ctx, &storage, &token, &headers).await?;
    let ShareAccess::Open(share) = &access else {
        return refused(&ctx, &token, &access);
    };
    let mut view = blank(&ctx, &token, "locked");
    view.title = share.path.name().to_owned();
    if share.locked {
        return ctx.page(StatusCode::OK, &view);
    }
    let drive = &share.drive;
    match (share.folder, share.mode) {
        (false, _) => {
            let entry = drive
                .stat(&share.path)
                .await
                .map_err(storage_error)?
                .ok_or(PageError::NotFound)?;
            view.state = "file";
            view.size = human_size(entry.size);
            drive.record("DriveHead", share.path.as_str(), 200, 0);
        }
        (true, ShareMode::Upload) => view.state = "upload",
        (true, ShareMode::Read) => {
            let path = share.resolve(&q.path)?;
            view.state = "folder";
            view.here = path.relative_to(&share.path);
            view.crumbs = DrivePath::parse(&view.here)
                .unwrap_or_default()
                .ancestors()
                .into_iter()
                .map(|(name, p)| (name, p.as_str().to_owned()))
                .collect();
            let entries = drive.list(&path).await.map_err(storage_error)?;
            view.rows = entries
                .iter()
                .map(|e| {
                    let mut row = Row::of(e);
                    row.path = e.path.relative_to(&share.path);
                    row
                })
                .collect();
            drive.record("DriveList", path.as_str(), 200, 0);
        }
    }
    ctx.page(StatusCode::OK, &view)
}

/// The password form of a protected link.
pub async fn unlock(
    ctx: Ctx,
    Extension(storage): Extension<Storage>,
    Path(token): Path<String>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Result<Response, PageError> {
    let f = read_form(form)?;
    let access = storage.open_share(&token, None, &ctx.meta.source).await?;
    let ShareAccess::Open(share) = &access else {
        return refused(&ctx, &token, &access);
    };
    match storage
        .unlock_share(&token, &field(&f, "password"), &ctx.meta.source)
        .await?
    {
        Some(proof) => {
            share
                .drive
                .record("ShareUnlock", share.path.as_str(), 200, 0);
            let secure = if ctx.config.secure_cookies {
                "; Secure"
            } else {
                ""
            };
            let mut response = Redirect::to(&format!("/s/{token}")).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{}={proof}; Path=/s/{token}; HttpOnly; SameSite=Lax{secure}",
                cookie_name(&share.id)
            )) {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
            Ok(response)
        }
        None => {
            share
                .drive
                .record("ShareUnlock", share.path.as_str(), 401, 0);
            let mut view = blank(&ctx, &token, "locked");
            view.title = share.path.name().to_owned();
            view.wrong_password = true;
            ctx.page(StatusCode::UNAUTHORIZED, &view)
        }
    }
}

/// The link, opened and unlocked, for reading; or the page that says why not.
async fn readable(
    ctx: &Ctx,
    storage: &Storage,
    token: &str,
    headers: &HeaderMap,
) -> Result<Result<Box<OpenShare>, Response>, PageError> {
    let access = visit(ctx, storage, token, headers).await?;
    match access {
        ShareAccess::Open(share) if share.locked => {
            Ok(Err(Redirect::to(&format!("/s/{token}")).into_response()))
        }
        ShareAccess::Open(share) if share.mode == ShareMode::Read => Ok(Ok(share)),
        ShareAccess::Open(_) => Err(PageError::NotFound),
        other => Ok(Err(refused(ctx, token, &other)?)),
    }
}

/// A file of the link (`path` within a folder link).
pub async fn visitor_file(
    ctx: Ctx,
    Extension(storage): Extension<Storage>,
    Path(token): Path<String>,
    query: Result<Query<DriveQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let q = read_query(query);
    let share = match readable(&ctx, &storage, &token, &headers).await? {
        Ok(share) => share,
        Err(response) => return Ok(response),
    };
    let path = share.resolve(&q.path)?;
    send_file(&share.drive, &path, None, q.inline.is_some()).await
}

/// A folder of the link, as one ZIP archive.
pub async fn visitor_zip(
    ctx: Ctx,
    Extension(storage): Extension<Storage>,
    Path(token): Path<String>,
    query: Result<Query<DriveQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let q = read_query(query);
    let share = match readable(&ctx, &storage, &token, &headers).await? {
        Ok(share) => share,
        Err(response) => return Ok(response),
    };
    if !share.folder {
        return Err(PageError::NotFound);
    }
    let path = share.resolve(&q.path)?;
    let body = share.drive.zip(&path).await.map_err(storage_error)?;
    share.drive.record("DriveGet", path.as_str(), 200, 0);
    let name = format!("{}.zip", path.name());
    let mut response = Body::from_stream(body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename*=UTF-8''{}",
        percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC)
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}

/// A file dropped through an upload link: `PUT /s/{token}/upload?name=…`.
/// The `x-nuage-share` header makes a cross-site request need a preflight,
/// which nothing answers: only the link's own page can drop files. A name
/// already taken gets a number.
pub async fn visitor_upload(
    ctx: Ctx,
    Extension(storage): Extension<Storage>,
    Path(token): Path<String>,
    query: Result<Query<DriveQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !headers.contains_key("x-nuage-share") {
        return crate::script::problem(StatusCode::FORBIDDEN, ctx.t.err_forbidden, None);
    }
    let access = match visit(&ctx, &storage, &token, &headers).await {
        Ok(a) => a,
        Err(_) => {
            return crate::script::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                ctx.t.server_error_text,
                None,
            );
        }
    };
    let share = match access {
        ShareAccess::Open(s) if !s.locked && s.mode == ShareMode::Upload => s,
        ShareAccess::Gone => {
            return crate::script::problem(StatusCode::GONE, ctx.t.dr.link_gone, None);
        }
        _ => return crate::script::problem(StatusCode::NOT_FOUND, ctx.t.dr.link_unknown, None),
    };
    let name = read_query(query).path;
    let outcome = async {
        if name.contains('/') {
            return Err(StorageError::InvalidArgument("a name has no slash".into()));
        }
        let mut path = share.path.join(&name)?;
        let mut n = 2;
        while share.drive.stat(&path).await?.is_some()
            || share.drive.check_new(&path, false).await.is_err()
        {
            path = share.path.join(&nuage_domain::drive::numbered(&name, n))?;
            n += 1;
            if n > 1000 {
                return Err(StorageError::Conflict(format!("{path} already exists")));
            }
        }
        share
            .drive
            .upload(upload_of(path.clone(), &headers, body, false))
            .await
            .map(|out| (path, out.size))
    }
    .await;
    match outcome {
        Ok((path, size)) => {
            share.drive.record("DrivePut", path.as_str(), 201, size);
            (
                StatusCode::CREATED,
                [(header::CONTENT_TYPE, "application/json")],
                serde_json::json!({"name": path.name(), "size": size}).to_string(),
            )
                .into_response()
        }
        Err(e) => {
            share.drive.record("DrivePut", share.path.as_str(), 400, 0);
            crate::script::failure(&ctx, storage_error(e))
        }
    }
}
