//! The drive over WebDAV (class 1 and 2), at `/dav/` on the main listener.
//!
//! A request carries the user's e-mail address and one of its app passwords
//! (HTTP Basic); the password opens one organisation's drive. The protocol
//! is dav-server's; [`fs::DriveFs`] maps it onto the drive's use cases and
//! [`locks::DbLocks`] keeps its locks in the database. Deleting a folder is
//! one move to the trash, not a walk through its files.

pub mod fs;
pub mod locks;

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use dav_server::DavHandler;
use dav_server::davpath::DavPath;
use nuage_domain::drive::LockQuery;
use nuage_domain::ids::OrgId;
use nuage_domain::storage::KeyPurpose;
use nuage_service::ServiceError;
use nuage_service::drive_access::DriveUser;
use nuage_storage::drive::Drive;
use nuage_storage::grants::Access;
use nuage_storage::{S3Caller, Storage};

/// Where WebDAV is served on the main listener.
pub const PREFIX: &str = "/dav";
/// Folders shared with the user by people of other organisations, each at
/// `/dav-shared/<grant id>/`.
pub const SHARED: &str = "/dav-shared";

/// The WebDAV routes; the main router provides the `Storage` extension.
pub fn router() -> Router {
    Router::new()
        .route_service(PREFIX, axum::routing::any(serve))
        .route_service(&format!("{PREFIX}/"), axum::routing::any(serve))
        .route_service(&format!("{PREFIX}/{{*path}}"), axum::routing::any(serve))
        .route_service(&format!("{SHARED}/{{*path}}"), axum::routing::any(serve))
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Nuage drive\", charset=\"UTF-8\""),
        )],
        "Sign in with your e-mail address and an app password made in the console (Drive).\n",
    )
        .into_response()
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The lock tokens an `If` header submits (every `<...>` in it: resource
/// tags among them match no lock).
fn submitted_tokens(headers: &HeaderMap) -> Vec<String> {
    let Some(value) = headers.get("if").and_then(|v| v.to_str().ok()) else {
        return Vec::new();
    };
    value
        .split('<')
        .skip(1)
        .filter_map(|s| s.split_once('>').map(|(t, _)| t.to_owned()))
        .collect()
}

fn operation(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "DriveGet",
        "HEAD" => "DriveHead",
        "PUT" => "DrivePut",
        "PROPFIND" => "DriveList",
        "MOVE" => "DriveMove",
        "COPY" => "DriveCopy",
        "MKCOL" => "DriveMkdir",
        "DELETE" => "DriveDelete",
        "LOCK" => "DriveLock",
        "UNLOCK" => "DriveUnlock",
        _ => "DriveOther",
    }
}

fn content_length(headers: &HeaderMap) -> u64 {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn serve(req: Request) -> Response {
    let Some(storage) = req.extensions().get::<Storage>().cloned() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let Some((email, password)) = basic_credentials(req.headers()) else {
        return unauthorized();
    };
    let source = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let meta = nuage_service::RequestMeta {
        source: source.clone(),
    };
    let user = match storage
        .platform()
        .authenticate_app_password(&meta, &email, &password)
        .await
    {
        Ok(user) => user,
        Err(ServiceError::Unauthenticated(_)) => return unauthorized(),
        Err(ServiceError::RateLimited) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "60")],
                "Too many failed attempts: try again later.\n",
            )
                .into_response();
        }
        Err(e) => {
            tracing::error!(error = %e, "app password check failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    // The user's own drive, or a folder shared with them (a grant): the
    // owner's drive, shown from that folder, written only with write access.
    let (drive, mount, writable, locks_of) = match shared_grant(req.uri().path()) {
        None => (
            storage.drive(S3Caller {
                org: user.org,
                access_key_id: format!("dav:{}", user.app_password),
                source,
                purpose: KeyPurpose::Access,
            }),
            fs::Mount::drive(),
            true,
            user.org,
        ),
        Some(id) => {
            let who = nuage_service::Principal::User {
                id: user.user,
                is_operator: false,
            };
            match storage.open_grant(&who, id, &source).await {
                Ok(open) if open.grant.folder => {
                    let Ok(owner) = OrgId::parse(&open.grant.org_id) else {
                        return StatusCode::NOT_FOUND.into_response();
                    };
                    let writable = open.grant.access == Access::Write;
                    let mount = fs::Mount::shared(id, open.grant.path.clone());
                    (open.drive, mount, writable, owner)
                }
                // A shared file is reached in the console; WebDAV mounts folders.
                Ok(_) | Err(ServiceError::NotFound(_)) => {
                    return StatusCode::NOT_FOUND.into_response();
                }
                Err(e) => {
                    tracing::error!(error = %e, "a share could not be opened");
                    return StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
            }
        }
    };
    if let Err(e) = drive.open().await {
        tracing::error!(error = %e, "the drive could not be opened");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let method = req.method().clone();
    let key = req.uri().path().to_owned();
    let sent = content_length(req.headers());
    let deleting = (method == Method::DELETE).then(|| (req.uri().clone(), req.headers().clone()));
    let folder_deleted = match deleting {
        Some((uri, headers)) if writable => {
            delete_folder(&storage, &drive, &user, &mount, locks_of, &uri, &headers).await
        }
        _ => None,
    };
    let response = match folder_deleted {
        Some(response) => response,
        None => {
            let handler = DavHandler::builder()
                .strip_prefix(mount.prefix.clone())
                .filesystem(Box::new(fs::DriveFs::new(
                    drive.clone(),
                    mount.clone(),
                    writable,
                )))
                .locksystem(Box::new(locks::DbLocks::new(
                    storage.platform().clone(),
                    locks_of,
                    mount.clone(),
                )))
                .principal(user.email.clone())
                .build_handler();
            handler.handle(req).await.map(Body::new)
        }
    };
    let bytes = if method == Method::PUT {
        sent
    } else {
        content_length(response.headers())
    };
    let status = response.status().as_u16();
    drive.record(operation(&method), &key, status, bytes);
    response
}

/// `DELETE` of a folder: the whole folder goes to the trash in one move
/// (dav-server would delete it file by file). `None` when the request is
/// something else.
/// The grant a `/dav-shared/<grant>/…` path names.
fn shared_grant(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(SHARED)?.strip_prefix('/')?;
    let id = rest.split('/').next().unwrap_or_default();
    (!id.is_empty()).then_some(id)
}

async fn delete_folder(
    storage: &Storage,
    drive: &Drive,
    user: &DriveUser,
    mount: &fs::Mount,
    org: OrgId,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
) -> Option<Response> {
    // `DavPath::new` decodes the path (`%20` is a space), as dav-server does
    // for every other method; `from_uri` would keep it encoded.
    let mut dav = DavPath::new(uri.path()).ok()?;
    dav.set_prefix(&mount.prefix).ok()?;
    let path = mount.path(&dav).ok()?;
    let entry = drive.stat(&path).await.ok()??;
    if !entry.folder || path.is_root() || path == mount.root {
        return None;
    }
    let tokens = submitted_tokens(headers);
    let query = LockQuery {
        principal: Some(&user.email),
        ignore_principal: false,
        tokens: &tokens,
    };
    let platform = storage.platform();
    match platform.dav_check(&org, &path, query, true).await {
        Ok(None) => {}
        Ok(Some(_)) => return Some(StatusCode::LOCKED.into_response()),
        Err(e) => {
            tracing::error!(error = %e, "WebDAV locks could not be read");
            return Some(StatusCode::SERVICE_UNAVAILABLE.into_response());
        }
    }
    Some(match drive.trash(&path).await {
        Ok(_) => {
            let _ = platform.dav_forget(&org, &path).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            let status = dav_status(fs::fs_error(e));
            status.into_response()
        }
    })
}

fn dav_status(e: dav_server::fs::FsError) -> StatusCode {
    use dav_server::fs::FsError as E;
    match e {
        E::NotFound => StatusCode::NOT_FOUND,
        E::Exists => StatusCode::CONFLICT,
        E::Forbidden => StatusCode::FORBIDDEN,
        E::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_read_and_other_schemes_ignored() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YW5uQGV4YW1wbGUub3JnOmFiY2QtZWZnaA=="),
        );
        assert_eq!(
            basic_credentials(&h),
            Some(("ann@example.org".into(), "abcd-efgh".into()))
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(basic_credentials(&h), None);
    }

    #[test]
    fn if_headers_give_their_tokens() {
        let mut h = HeaderMap::new();
        h.insert(
            "if",
            HeaderValue::from_static("<http://x/dav/a> (<urn:uuid:1>) (Not <urn:uuid:2>)"),
        );
        assert_eq!(
            submitted_tokens(&h),
            vec!["http://x/dav/a", "urn:uuid:1", "urn:uuid:2"]
        );
    }
}
