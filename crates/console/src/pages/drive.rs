//! The drive in the console: a folder's files (search, new folder), each
//! item's page (rename, move, share, trash), uploads sent by `static/drive.js` one file per request with
//! their progress, downloads and previews, a file's versions, the trash, and
//! the app passwords that connect a computer over WebDAV.

use askama::Template;
use axum::Extension;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use futures::TryStreamExt;
use nuage_domain::DomainError;
use nuage_domain::drive::DrivePath;
use nuage_domain::ids::OrgId;
use nuage_service::ServiceError;
use nuage_service::auth::Session;
use nuage_service::drive_access::AppPassword;
use nuage_storage::drive::{Drive, DriveEntry, TrashItem, Upload};
use nuage_storage::{ObjectInfo, Storage, StorageUsage};
use serde::Deserialize;

use super::{Pairs, current_org, field, read_query, storage_caller, storage_error};
use crate::error::{FormAlert, FormError, PageError};
use crate::form::Posted;
use crate::session::Ctx;
use crate::views::{Chrome, When};

/// Search results shown at most.
const SEARCH_LIMIT: usize = 200;

#[derive(Debug, Default, Deserialize)]
pub struct DriveQuery {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub inline: Option<String>,
}

/// A size as people read it.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Whether a browser may show the file itself (in a sandbox).
fn previewable(content_type: Option<&str>) -> bool {
    let t = media_type(content_type.unwrap_or_default());
    (t.starts_with("image/") && t != "image/svg+xml") || t == "application/pdf" || t == "text/plain"
}

/// A content type's essence as browsers read it: lower case, without its
/// parameters (`Image/SVG+XML; charset=x` is `image/svg+xml`).
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

pub struct Row {
    pub name: String,
    pub path: String,
    pub folder: bool,
    pub size: String,
    pub modified: Option<When>,
    pub preview: bool,
    /// The folder it is in (search results).
    pub parent: String,
}

impl Row {
    pub(crate) fn of(e: &DriveEntry) -> Self {
        Self {
            name: e.path.name().to_owned(),
            path: e.path.as_str().to_owned(),
            folder: e.folder,
            size: if e.folder {
                String::new()
            } else {
                human_size(e.size)
            },
            modified: (e.modified > 0).then(|| When::at(e.modified)),
            preview: !e.folder && previewable(e.content_type.as_deref()),
            parent: e.path.parent().unwrap_or_default().as_str().to_owned(),
        }
    }
}

pub struct Crumb {
    pub name: String,
    pub path: String,
}

#[derive(Template)]
#[template(path = "drive/folder.html")]
pub struct FolderPage {
    pub c: Chrome,
    pub csrf: String,
    pub org_name: Option<String>,
    pub path: String,
    pub crumbs: Vec<Crumb>,
    pub query: String,
    pub searching: bool,
    pub rows: Vec<Row>,
    pub used: String,
    pub quota: Option<String>,
    /// At the root: what people of other organisations shared with the user.
    pub received: Vec<Received>,
    pub error: FormAlert,
}

impl FolderPage {
    /// The size of the parts a large upload is sent in.
    pub fn part_bytes(&self) -> u64 {
        PART_BYTES
    }
}

pub struct Received {
    pub id: String,
    pub name: String,
    pub folder: bool,
    pub owner: String,
    pub write: bool,
}

/// One file or folder and what can be done with it.
#[derive(Template)]
#[template(path = "drive/item.html")]
pub struct ItemPage {
    pub c: Chrome,
    pub csrf: String,
    pub r: Row,
    pub error: FormAlert,
}

#[derive(Template)]
#[template(path = "drive/trash.html")]
pub struct TrashPage {
    pub c: Chrome,
    pub csrf: String,
    pub items: Vec<TrashRow>,
    pub error: FormAlert,
}

pub struct TrashRow {
    pub entry: String,
    pub name: String,
    pub was_at: String,
    pub folder: bool,
    pub size: String,
    pub deleted: When,
}

impl TrashRow {
    fn of(item: TrashItem) -> Self {
        Self {
            name: item.path.name().to_owned(),
            was_at: item.path.to_string(),
            folder: item.folder,
            size: human_size(item.size),
            deleted: When::at(item.deleted_at),
            entry: item.entry,
        }
    }
}

#[derive(Template)]
#[template(path = "drive/versions.html")]
pub struct VersionsPage {
    pub c: Chrome,
    pub csrf: String,
    pub path: String,
    pub parent: String,
    pub name: String,
    pub versions: Vec<VersionRow>,
    pub error: FormAlert,
}

pub struct VersionRow {
    pub id: String,
    pub current: bool,
    pub size: String,
    pub when: When,
}

impl VersionRow {
    fn of(v: &ObjectInfo) -> Self {
        Self {
            id: v.version_id.clone(),
            current: v.is_latest,
            size: human_size(v.size),
            when: When::at(v.last_modified),
        }
    }
}

#[derive(Template)]
#[template(path = "drive/connect.html")]
pub struct ConnectPage {
    pub c: Chrome,
    pub csrf: String,
    pub org_name: Option<String>,
    pub address: String,
    pub email: String,
    pub passwords: Vec<PasswordRow>,
    pub secret: Option<String>,
    pub error: FormAlert,
}

pub struct PasswordRow {
    pub id: String,
    pub name: String,
    pub created: When,
    pub last_used: Option<When>,
}

impl PasswordRow {
    fn of(p: AppPassword) -> Self {
        Self {
            created: When::at(p.created_at_ms),
            last_used: p.last_used_at_ms.map(When::at),
            id: p.id,
            name: p.name,
        }
    }
}

fn parse_path(raw: &str) -> Result<DrivePath, ServiceError> {
    DrivePath::parse(raw).map_err(ServiceError::from)
}

/// The member's organisation's drive, opened (made on first use).
async fn open_drive(
    ctx: &Ctx,
    storage: &Storage,
    session: &Session,
) -> Result<Option<(OrgId, Drive)>, PageError> {
    let Some((org, _)) = current_org(session)? else {
        return Ok(None);
    };
    let drive = storage.drive(storage_caller(ctx, storage, session, org).await?);
    drive.open().await.map_err(storage_error)?;
    Ok(Some((org, drive)))
}

async fn folder_page(
    ctx: &Ctx,
    storage: &Storage,
    q: &DriveQuery,
    error: FormAlert,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let mut view = FolderPage {
        c: ctx.chrome("drive"),
        csrf: session.csrf_token.clone(),
        org_name: None,
        path: String::new(),
        crumbs: Vec::new(),
        query: q.q.trim().to_owned(),
        searching: !q.q.trim().is_empty(),
        rows: Vec::new(),
        used: String::new(),
        quota: None,
        received: Vec::new(),
        error,
    };
    if q.path.trim_matches('/').is_empty() && !view.searching {
        view.received = storage
            .grants_received(&session.principal())
            .await?
            .into_iter()
            .map(|g| Received {
                name: g.path.name().to_owned(),
                folder: g.folder,
                owner: g.org_name,
                write: g.access == nuage_storage::grants::Access::Write,
                id: g.id,
            })
            .collect();
    }
    let Some((_, drive)) = open_drive(ctx, storage, session).await? else {
        return ctx.page(StatusCode::OK, &view);
    };
    view.org_name = session.current_org.as_ref().map(|m| m.org_name.clone());
    let path = parse_path(&q.path)?;
    view.path = path.as_str().to_owned();
    view.crumbs = path
        .ancestors()
        .into_iter()
        .map(|(name, p)| Crumb {
            name,
            path: p.as_str().to_owned(),
        })
        .collect();
    let entries = if view.searching {
        drive.search(&view.query, SEARCH_LIMIT).await
    } else {
        drive.list(&path).await
    };
    view.rows = entries
        .map_err(storage_error)?
        .iter()
        .map(Row::of)
        .collect();
    let usage: StorageUsage = drive.usage().await.map_err(storage_error)?;
    view.used = human_size(usage.bytes.max(0) as u64);
    view.quota = usage.max_bytes.map(|m| human_size(m.max(0) as u64));
    drive.record("DriveList", path.as_str(), 200, 0);
    let status = view.error.status_or(StatusCode::OK);
    ctx.page(status, &view)
}

pub async fn folder(
    ctx: Ctx,
    Extension(storage): Extension<Storage>,
    query: Result<Query<DriveQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    folder_page(&ctx, &storage, &read_query(query), FormAlert::none()).await
}

/// A file's or folder's page: preview, versions, rename, move, share, trash.
pub async fn item(
    ctx: Ctx,
    Extension(storage): Extension<Storage>,
    query: Result<Query<DriveQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let Some((_, drive)) = open_drive(&ctx, &storage, session).await? else {
        return Err(PageError::NotFound);
    };
    let path = parse_path(&read_query(query).path)?;
    if path.is_root() {
        return Err(PageError::NotFound);
    }
    let entry = drive
        .stat(&path)
        .await
        .map_err(storage_error)?
        .ok_or(PageError::NotFound)?;
    let view = ItemPage {
        c: ctx.chrome("drive"),
        csrf: session.csrf_token.clone(),
        r: Row::of(&entry),
        error: FormAlert::none(),
    };
    ctx.page(StatusCode::OK, &view)
}

fn back_to(folder: &DrivePath, notice: &str) -> Response {
    Redirect::to(&format!(
        "/drive?path={}&notice={notice}",
        url_encode(folder.as_str())
    ))
    .into_response()
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The folder page's forms: `mkdir` (`folder`, `name`), `rename` (`path`,
/// `name`), `move` (`path`, `to`), `trash` (`path`).
pub async fn act(
    Extension(storage): Extension<Storage>,
    Posted { ctx, form: f, .. }: Posted<Pairs>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let Some((_, drive)) = open_drive(&ctx, &storage, session).await? else {
        return Err(PageError::NotFound);
    };
    let here = parse_path(&field(&f, "folder")).unwrap_or_default();
    let outcome: Result<(DrivePath, &str), ServiceError> = async {
        match field(&f, "action").as_str() {
            "mkdir" => {
                let path = here.join(&field(&f, "name"))?;
                drive.create_folder(&path).await.map_err(storage_error)?;
                drive.record("DriveMkdir", path.as_str(), 200, 0);
                Ok((here.clone(), "folder_created"))
            }
            "rename" => {
                let from = parse_path(&field(&f, "path"))?;
                let to = from.parent().unwrap_or_default().join(&field(&f, "name"))?;
                drive.rename(&from, &to).await.map_err(storage_error)?;
                drive.record("DriveMove", to.as_str(), 200, 0);
                Ok((here.clone(), "moved"))
            }
            "move" => {
                let from = parse_path(&field(&f, "path"))?;
                let folder = parse_path(&field(&f, "to"))?;
                let to = folder.join(from.name())?;
                drive.rename(&from, &to).await.map_err(storage_error)?;
                drive.record("DriveMove", to.as_str(), 200, 0);
                Ok((folder, "moved"))
            }
            "trash" => {
                let path = parse_path(&field(&f, "path"))?;
                drive.trash(&path).await.map_err(storage_error)?;
                drive.record("DriveDelete", path.as_str(), 200, 0);
                Ok((here.clone(), "trashed"))
            }
            _ => Err(DomainError::invalid("action", "unknown action").into()),
        }
    }
    .await;
    match outcome {
        Ok((folder, notice)) => Ok(back_to(&folder, notice)),
        Err(e) => {
            let error = FormError::from_service(ctx.t, e)?;
            let q = DriveQuery {
                path: here.as_str().to_owned(),
                ..DriveQuery::default()
            };
            folder_page(&ctx, &storage, &q, error.into()).await
        }
    }
}

/// One file sent by `static/drive.js`: `PUT /drive/content?path=…` with the
/// raw bytes (streamed into the drive, never held whole), the CSRF token in
/// `x-csrf-token`. Missing folders on the way are made (folder uploads).
pub async fn upload(
    ctx: Ctx,
    Extension(storage): Extension<Storage>,
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
        let Some((_, drive)) = open_drive(&ctx, &storage, session)
            .await
            .map_err(|_| ServiceError::NotFound("organisation"))?
        else {
            return Err(ServiceError::NotFound("organisation"));
        };
        let path = parse_path(&q.path)?;
        if path.is_root() {
            return Err(DomainError::invalid("path", "a file needs a name").into());
        }
        let out = drive
            .upload(upload_of(path.clone(), &headers, body, true))
            .await
            .map_err(storage_error)?;
        drive.record("DrivePut", path.as_str(), 201, out.size);
        Ok(serde_json::json!({"path": path.as_str(), "size": out.size}))
    }
    .await;
    crate::script::answer(&ctx, outcome)
}

/// What `static/drive.js` does with a large file's upload in parts.
pub enum Resumable {
    /// `POST /drive/uploads?path=…`: begins; answers the upload's id and the
    /// size of a part.
    Begin,
    /// `GET /drive/uploads/{id}?path=…`: the parts received so far.
    Received(String),
    /// `PUT /drive/uploads/{id}/{part}?path=…`: one part's bytes.
    Part(String, u32),
    /// `POST /drive/uploads/{id}?path=…`: the file made of its parts.
    Finish(String),
    /// `DELETE /drive/uploads/{id}?path=…`: given up.
    Cancel(String),
}

/// The size of a part the browser sends (the last one may be shorter).
pub const PART_BYTES: u64 = 8 * 1024 * 1024;

/// A large file sent in parts by the browser: a cut connection loses at
/// most the part in flight, and choosing the file again later resumes
/// from what was received. The file shows only once finished.
pub async fn resumable(
    ctx: &Ctx,
    storage: &Storage,
    query: Result<Query<DriveQuery>, QueryRejection>,
    headers: &HeaderMap,
    body: Body,
    step: Resumable,
) -> Response {
    let session = match crate::script::session(ctx, headers) {
        Ok(s) => s,
        Err(response) => return *response,
    };
    let q = read_query(query);
    let mut status = StatusCode::OK;
    let outcome: Result<serde_json::Value, ServiceError> = async {
        let Some((_, drive)) = open_drive(ctx, storage, session)
            .await
            .map_err(|_| ServiceError::NotFound("organisation"))?
        else {
            return Err(ServiceError::NotFound("organisation"));
        };
        let path = parse_path(&q.path)?;
        if path.is_root() {
            return Err(DomainError::invalid("path", "a file needs a name").into());
        }
        match step {
            Resumable::Begin => {
                let content_type = headers
                    .get("x-file-type")
                    .and_then(|v| v.to_str().ok())
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned);
                let id = drive
                    .begin_upload(&path, content_type, true)
                    .await
                    .map_err(storage_error)?;
                status = StatusCode::CREATED;
                Ok(serde_json::json!({"upload": id, "part_bytes": PART_BYTES}))
            }
            Resumable::Received(id) => {
                let parts = drive.received(&path, &id).await.map_err(storage_error)?;
                let parts: Vec<_> = parts
                    .iter()
                    .map(|p| serde_json::json!({"part": p.part_number, "size": p.size}))
                    .collect();
                Ok(serde_json::json!({"upload": id, "parts": parts}))
            }
            Resumable::Part(id, number) => {
                let length = headers
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok());
                let stream = Box::pin(body.into_data_stream().map_err(std::io::Error::other));
                let part = drive
                    .upload_chunk(&path, &id, number, length, stream)
                    .await
                    .map_err(storage_error)?;
                Ok(serde_json::json!({"part": part.part_number, "size": part.size}))
            }
            Resumable::Finish(id) => {
                let out = drive
                    .finish_upload(&path, &id, true)
                    .await
                    .map_err(storage_error)?;
                drive.record("DrivePut", path.as_str(), 201, out.size);
                status = StatusCode::CREATED;
                Ok(serde_json::json!({"path": path.as_str(), "size": out.size}))
            }
            Resumable::Cancel(id) => {
                drive
                    .cancel_upload(&path, &id)
                    .await
                    .map_err(storage_error)?;
                Ok(serde_json::json!({"upload": id, "cancelled": true}))
            }
        }
    }
    .await;
    crate::script::reply(ctx, status, outcome)
}

/// `POST /drive/uploads`: begins an upload in parts.
pub async fn upload_begin(
    ctx: Ctx,
    Extension(storage): Extension<Storage>,
    query: Result<Query<DriveQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    resumable(
        &ctx,
        &storage,
        query,
        &headers,
        Body::empty(),
        Resumable::Begin,
    )
    .await
}

/// `/drive/uploads/{id}`: what was received (GET), the file made (POST),
/// or the upload given up (DELETE).
pub async fn upload_at(
    ctx: Ctx,
    Extension(storage): Extension<Storage>,
    method: axum::http::Method,
    Path(id): Path<String>,
    query: Result<Query<DriveQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let step = match method {
        axum::http::Method::POST => Resumable::Finish(id),
        axum::http::Method::DELETE => Resumable::Cancel(id),
        _ => Resumable::Received(id),
    };
    resumable(&ctx, &storage, query, &headers, Body::empty(), step).await
}

/// `PUT /drive/uploads/{id}/{part}`: one part's bytes.
pub async fn upload_part(
    ctx: Ctx,
    Extension(storage): Extension<Storage>,
    Path((id, part)): Path<(String, u32)>,
    query: Result<Query<DriveQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let step = Resumable::Part(id, part);
    resumable(&ctx, &storage, query, &headers, body, step).await
}

/// A file as a request brings it: its bytes streamed (never held whole),
/// its declared length and type.
pub(crate) fn upload_of(
    path: DrivePath,
    headers: &HeaderMap,
    body: Body,
    create_parents: bool,
) -> Upload {
    Upload {
        path,
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
        content_length: headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()),
        body: Box::pin(body.into_data_stream().map_err(std::io::Error::other)),
        create_parents,
    }
}

/// A file's bytes: a download, or a preview (`inline=1`) for the types a
/// browser shows safely, in a sandbox.
pub async fn file(
    ctx: Ctx,
    Extension(storage): Extension<Storage>,
    query: Result<Query<DriveQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let q = read_query(query);
    let Some((_, drive)) = open_drive(&ctx, &storage, session).await? else {
        return Err(PageError::NotFound);
    };
    let path = parse_path(&q.path)?;
    send_file(&drive, &path, q.version.clone(), q.inline.is_some()).await
}

/// Reads a file (or one of its versions) of a drive, records the download,
/// and answers it (see [`file_response`]).
pub(crate) async fn send_file(
    drive: &Drive,
    path: &DrivePath,
    version: Option<String>,
    inline: bool,
) -> Result<Response, PageError> {
    let read = drive
        .download(path, version, None)
        .await
        .map_err(storage_error)?;
    drive.record("DriveGet", path.as_str(), 200, read.content_length);
    Ok(file_response(read, path.name(), inline))
}

/// A file's bytes as a response: a download, or for the types a browser
/// shows safely (`inline` asked), a preview in a sandbox.
fn file_response(read: nuage_storage::ObjectRead, name: &str, inline: bool) -> Response {
    let stored_type = read.info.headers.content_type.clone();
    let inline = inline && previewable(stored_type.as_deref());
    let content_type = match stored_type.as_deref().map(media_type) {
        Some(t) if inline && t == "text/plain" => "text/plain; charset=utf-8".to_owned(),
        Some(t) if inline => t,
        _ => "application/octet-stream".to_owned(),
    };
    let disposition = format!(
        "{}; filename*=UTF-8''{}",
        if inline { "inline" } else { "attachment" },
        percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
    );
    let mut response = Body::from_stream(read.body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(read.content_length),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

async fn trash_page(ctx: &Ctx, storage: &Storage, error: FormAlert) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let mut view = TrashPage {
        c: ctx.chrome("drive"),
        csrf: session.csrf_token.clone(),
        items: Vec::new(),
        error,
    };
    if let Some((_, drive)) = open_drive(ctx, storage, session).await? {
        view.items = drive
            .trash_items()
            .await
            .map_err(storage_error)?
            .into_iter()
            .map(TrashRow::of)
            .collect();
    }
    let status = view.error.status_or(StatusCode::OK);
    ctx.page(status, &view)
}

pub async fn trash(
    ctx: Ctx,
    Extension(storage): Extension<Storage>,
) -> Result<Response, PageError> {
    trash_page(&ctx, &storage, FormAlert::none()).await
}

/// The trash's forms: `restore` and `purge` (`entry`), `empty`.
pub async fn trash_act(
    Extension(storage): Extension<Storage>,
    Posted { ctx, form: f, .. }: Posted<Pairs>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let Some((_, drive)) = open_drive(&ctx, &storage, session).await? else {
        return Err(PageError::NotFound);
    };
    let entry = field(&f, "entry");
    let outcome = match field(&f, "action").as_str() {
        "restore" => drive
            .restore(&entry)
            .await
            .map(|to| back_to(&to.parent().unwrap_or_default(), "restored")),
        "purge" => drive
            .purge(Some(&entry))
            .await
            .map(|_| Redirect::to("/drive/trash?notice=purged").into_response()),
        "empty" => drive
            .purge(None)
            .await
            .map(|_| Redirect::to("/drive/trash?notice=purged").into_response()),
        _ => Err(nuage_storage::StorageError::InvalidArgument(
            "unknown action".into(),
        )),
    };
    match outcome.map_err(storage_error) {
        Ok(response) => Ok(response),
        Err(e) => {
            let error = FormError::from_service(ctx.t, e)?;
            trash_page(&ctx, &storage, error.into()).await
        }
    }
}

async fn versions_page(
    ctx: &Ctx,
    storage: &Storage,
    raw: &str,
    error: FormAlert,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let Some((_, drive)) = open_drive(ctx, storage, session).await? else {
        return Err(PageError::NotFound);
    };
    let path = parse_path(raw)?;
    let versions = drive.versions(&path).await.map_err(storage_error)?;
    let view = VersionsPage {
        c: ctx.chrome("drive"),
        csrf: session.csrf_token.clone(),
        name: path.name().to_owned(),
        parent: path.parent().unwrap_or_default().as_str().to_owned(),
        path: path.as_str().to_owned(),
        versions: versions.iter().map(VersionRow::of).collect(),
        error,
    };
    let status = view.error.status_or(StatusCode::OK);
    ctx.page(status, &view)
}

pub async fn versions(
    ctx: Ctx,
    Extension(storage): Extension<Storage>,
    query: Result<Query<DriveQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    versions_page(&ctx, &storage, &read_query(query).path, FormAlert::none()).await
}

/// Makes an older version current again (`path`, `version`).
pub async fn restore_version(
    Extension(storage): Extension<Storage>,
    Posted { ctx, form: f, .. }: Posted<Pairs>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let Some((_, drive)) = open_drive(&ctx, &storage, session).await? else {
        return Err(PageError::NotFound);
    };
    let raw = field(&f, "path");
    let outcome = async {
        let path = parse_path(&raw)?;
        drive
            .restore_version(&path, &field(&f, "version"))
            .await
            .map_err(storage_error)?;
        Ok::<_, ServiceError>(path)
    }
    .await;
    match outcome {
        Ok(path) => Ok(Redirect::to(&format!(
            "/drive/versions?path={}&notice=version_restored",
            url_encode(path.as_str())
        ))
        .into_response()),
        Err(e) => {
            let error = FormError::from_service(ctx.t, e)?;
            versions_page(&ctx, &storage, &raw, error.into()).await
        }
    }
}

async fn connect_page(
    ctx: &Ctx,
    secret: Option<String>,
    error: FormAlert,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let org_id = session.current_org.as_ref().map(|m| m.org_id.clone());
    let passwords = ctx
        .platform
        .list_app_passwords(&session.principal())
        .await?
        .into_iter()
        .filter(|p| Some(&p.org_id) == org_id.as_ref())
        .map(PasswordRow::of)
        .collect();
    let view = ConnectPage {
        c: ctx.chrome("drive"),
        csrf: session.csrf_token.clone(),
        org_name: session.current_org.as_ref().map(|m| m.org_name.clone()),
        address: format!(
            "{}/dav/",
            ctx.platform.settings().public_url.trim_end_matches('/')
        ),
        email: session.user.email.clone(),
        passwords,
        secret,
        error,
    };
    let status = view.error.status_or(StatusCode::OK);
    ctx.page(status, &view)
}

pub async fn connect(ctx: Ctx) -> Result<Response, PageError> {
    connect_page(&ctx, None, FormAlert::none()).await
}

/// Creates (`name`) or revokes (`revoke` = id) an app password.
pub async fn connect_act(
    Posted { ctx, form: f, .. }: Posted<Pairs>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let Some((org, _)) = current_org(session)? else {
        return Err(PageError::NotFound);
    };
    let who = session.principal();
    let revoke = field(&f, "revoke");
    if !revoke.is_empty() {
        return match ctx
            .platform
            .revoke_app_password(&who, &ctx.meta, &revoke)
            .await
        {
            Ok(()) => {
                Ok(Redirect::to("/drive/connect?notice=app_password_revoked").into_response())
            }
            Err(e) => {
                let error = FormError::from_service(ctx.t, e)?;
                connect_page(&ctx, None, error.into()).await
            }
        };
    }
    match ctx
        .platform
        .create_app_password(&who, &ctx.meta, org, &field(&f, "name"))
        .await
    {
        Ok((_, secret)) => connect_page(&ctx, Some(secret), FormAlert::none()).await,
        Err(e) => {
            let error = FormError::from_service(ctx.t, e)?;
            connect_page(&ctx, None, error.into()).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_passive_types_are_previewed_whatever_their_spelling() {
        for t in [
            "image/png",
            "IMAGE/PNG",
            "application/pdf",
            "text/plain; charset=utf-8",
        ] {
            assert!(previewable(Some(t)), "{t}");
        }
        for t in [
            "image/svg+xml",
            "Image/SVG+XML",
            "image/svg+xml; charset=utf-8",
            "text/html",
            "TEXT/HTML",
            "text/plain-but-html",
            "application/xhtml+xml",
        ] {
            assert!(!previewable(Some(t)), "{t}");
        }
        assert!(!previewable(None));
    }

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1500), "1.5 KB");
        assert_eq!(human_size(3_145_728), "3.1 MB");
    }
}
