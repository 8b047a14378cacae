//! The drive over WebDAV: app passwords, files and folders, moves in one
//! transaction, locks, the trash, and the same objects over S3. Requests are
//! raw HTTP (reqwest, and a TCP socket for a client that goes away); rclone
//! runs in `scripts/dav-compat`.

use std::io::Write;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{Spawn, Tenant, TestApp, spawn, spawn_app};

fn method(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).expect("a method")
}

/// A WebDAV client: the user's e-mail address and an app password.
struct Dav {
    http: reqwest::Client,
    base: String,
    /// `/dav`, or `/dav-shared/<grant>` for a folder shared with the user.
    root: String,
    email: String,
    password: String,
}

impl Dav {
    async fn send(
        &self,
        verb: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> (u16, String) {
        let mut request = self
            .http
            .request(method(verb), format!("{}{}{path}", self.base, self.root))
            .basic_auth(&self.email, Some(&self.password));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.expect("sent");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    async fn put(&self, path: &str, body: &[u8]) -> u16 {
        self.send("PUT", path, &[], Some(body.to_vec())).await.0
    }

    async fn get(&self, path: &str) -> (u16, String) {
        self.send("GET", path, &[], None).await
    }

    /// The hrefs a `PROPFIND` with `Depth: 1` lists.
    async fn list(&self, path: &str) -> Vec<String> {
        let (status, body) = self.send("PROPFIND", path, &[("Depth", "1")], None).await;
        assert_eq!(status, 207, "{body}");
        body.split("<D:href>")
            .skip(1)
            .filter_map(|s| s.split_once("</D:href>").map(|(h, _)| h.to_owned()))
            .collect()
    }

    async fn move_to(&self, from: &str, to: &str, overwrite: bool) -> (u16, String) {
        let destination = format!("{}{}{to}", self.base, self.root);
        let overwrite = if overwrite { "T" } else { "F" };
        self.send(
            "MOVE",
            from,
            &[("Destination", &destination), ("Overwrite", overwrite)],
            None,
        )
        .await
    }
}

/// A member of the tenant's organisation with an app password.
async fn dav_user(app: &TestApp, tenant: &Tenant, email: &str) -> Dav {
    app.create_user(&tenant.org, email, "member").await;
    dav_login(app, tenant, email).await
}

/// An app password for a user already made.
async fn dav_login(app: &TestApp, tenant: &Tenant, email: &str) -> Dav {
    let token = app.token_for(email, None).await;
    let (status, body) = app
        .call(
            Method::POST,
            "/app-passwords",
            &token,
            Some(json!({"name": "laptop", "org_id": tenant.org})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    Dav {
        http: reqwest::Client::new(),
        base: app.console.clone(),
        root: "/dav".to_owned(),
        email: email.to_owned(),
        password: body["secret"].as_str().expect("secret").to_owned(),
    }
}

/// Whether the organisation's access log shows `operation` by a key that
/// starts with `by`, within five seconds (the log is written in batches).
async fn in_access_log(app: &TestApp, tenant: &Tenant, operation: &str, by: &str) -> bool {
    for _ in 0..50 {
        let (_, log) = app
            .root(
                Method::GET,
                &format!("/orgs/{}/access-log", tenant.org),
                None,
            )
            .await;
        let found = log.as_array().is_some_and(|items| {
            items.iter().any(|e| {
                e["operation"] == operation
                    && e["access_key_id"]
                        .as_str()
                        .is_some_and(|k| k.starts_with(by))
            })
        });
        if found {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn drive_bucket(tenant: &Tenant) -> String {
    format!("drive-{}", tenant.org.replace('-', ""))
}

/// Every key of the drive's bucket, over S3.
async fn keys(app: &TestApp, tenant: &Tenant) -> Vec<String> {
    let out = app
        .s3_client(tenant)
        .list_objects_v2()
        .bucket(drive_bucket(tenant))
        .send()
        .await
        .expect("listed");
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn the_drive_is_served_over_webdav_with_app_passwords_and_reached_over_s3() {
    let app = spawn_app().await;
    let tenant = app.tenant("Drive Co").await;
    let dav = dav_user(&app, &tenant, "ann@drive.example").await;

    // No credentials, a wrong password, another address: 401 with a challenge.
    let anonymous = app
        .http
        .request(method("PROPFIND"), format!("{}/dav/", app.console))
        .send()
        .await
        .expect("sent");
    assert_eq!(anonymous.status(), 401);
    assert!(
        anonymous.headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .starts_with("Basic")
    );
    for (email, password) in [
        (dav.email.as_str(), "aaaa-bbbb-cccc-dddd-eeee-ffff"),
        ("someone@drive.example", dav.password.as_str()),
    ] {
        let wrong = Dav {
            email: email.to_owned(),
            password: password.to_owned(),
            http: reqwest::Client::new(),
            base: app.console.clone(),
            root: "/dav".into(),
        };
        assert_eq!(wrong.send("PROPFIND", "/", &[], None).await.0, 401);
    }

    assert_eq!(dav.send("MKCOL", "/Docs", &[], None).await.0, 201);
    assert_eq!(dav.put("/Docs/notes.txt", b"first").await, 201);
    assert_eq!(dav.put("/Docs/notes.txt", b"second version").await, 204);
    assert_eq!(dav.put("/Docs/caf%C3%A9.txt", "é".as_bytes()).await, 201);
    let listed = dav.list("/Docs/").await;
    assert_eq!(
        listed,
        vec![
            "/dav/Docs/",
            "/dav/Docs/caf%C3%A9.txt",
            "/dav/Docs/notes.txt"
        ]
    );
    assert_eq!(
        dav.get("/Docs/notes.txt").await,
        (200, "second version".into())
    );
    let (status, body) = dav
        .send("GET", "/Docs/notes.txt", &[("Range", "bytes=7-")], None)
        .await;
    assert_eq!((status, body.as_str()), (206, "version"));
    // A file in a folder that does not exist: 409, as RFC 4918 says.
    assert_eq!(dav.put("/Nowhere/x.txt", b"x").await, 409);

    // The same files are objects of the organisation's drive bucket, with
    // every version kept.
    let mut seen = keys(&app, &tenant).await;
    seen.sort();
    assert_eq!(seen, vec!["Docs/", "Docs/café.txt", "Docs/notes.txt"]);
    let versions = app
        .s3_client(&tenant)
        .list_object_versions()
        .bucket(drive_bucket(&tenant))
        .prefix("Docs/notes.txt")
        .send()
        .await
        .expect("versions");
    assert_eq!(versions.versions().len(), 2);
    // And what S3 writes, the drive shows.
    app.s3_client(&tenant)
        .put_object()
        .bucket(drive_bucket(&tenant))
        .key("Docs/from-s3.txt")
        .body(ByteStream::from_static(b"s3"))
        .send()
        .await
        .expect("put over S3");
    assert_eq!(dav.get("/Docs/from-s3.txt").await, (200, "s3".into()));
    // The drive's bucket refuses Object Lock: moving a file rewrites keys.
    let lock = app
        .s3_client(&tenant)
        .put_object_lock_configuration()
        .bucket(drive_bucket(&tenant))
        .object_lock_configuration(
            aws_sdk_s3::types::ObjectLockConfiguration::builder()
                .object_lock_enabled(aws_sdk_s3::types::ObjectLockEnabled::Enabled)
                .build(),
        )
        .send()
        .await;
    assert_eq!(crate::helpers::s3_code(lock), "InvalidRequest");

    // Another organisation's member sees its own, empty drive.
    let other_tenant = app.tenant("Other Co").await;
    let other = dav_user(&app, &other_tenant, "bob@other.example").await;
    assert_eq!(other.list("/").await, vec!["/dav/"]);
    assert_eq!(other.get("/Docs/notes.txt").await.0, 404);

    // Requests are in the owner's access log, under the app password.
    let logged = in_access_log(&app, &tenant, "DrivePut", "dav:").await;
    assert!(
        logged,
        "a DrivePut by the app password is in the access log"
    );

    // A revoked app password stops at once.
    let (_, token) = (0, app.token_for(&dav.email, None).await);
    let (_, list) = app.call(Method::GET, "/app-passwords", &token, None).await;
    let id = list[0]["id"].as_str().expect("id").to_owned();
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/app-passwords/{id}"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(dav.send("PROPFIND", "/", &[], None).await.0, 401);
}

#[tokio::test]
async fn moves_are_metadata_and_bad_names_and_targets_change_nothing() {
    let app = spawn_app().await;
    let tenant = app.tenant("Move Co").await;
    let dav = dav_user(&app, &tenant, "ann@move.example").await;
    assert_eq!(dav.send("MKCOL", "/Photos", &[], None).await.0, 201);
    assert_eq!(dav.send("MKCOL", "/Photos/2026", &[], None).await.0, 201);
    for i in 0..20 {
        let status = dav
            .put(
                &format!("/Photos/2026/p{i:02}.jpg"),
                format!("photo {i}").as_bytes(),
            )
            .await;
        assert_eq!(status, 201);
    }
    let etags_before = etags(&app, &tenant).await;

    // A whole folder moves, with every file, keeping its versions' bytes.
    assert_eq!(dav.send("MKCOL", "/Archive", &[], None).await.0, 201);
    let (status, body) = dav.move_to("/Photos/", "/Archive/Photos", false).await;
    assert_eq!(status, 201, "{body}");
    let after = etags(&app, &tenant).await;
    assert_eq!(after.len(), etags_before.len() + 1, "and Archive/");
    for (key, etag) in &etags_before {
        let moved = key.replacen("Photos/", "Archive/Photos/", 1);
        assert_eq!(after.get(&moved), Some(etag), "{key} moved as it was");
    }
    assert_eq!(
        dav.get("/Archive/Photos/2026/p07.jpg").await,
        (200, "photo 7".into())
    );
    assert_eq!(dav.get("/Photos/2026/p07.jpg").await.0, 404);

    let unchanged = etags(&app, &tenant).await;
    // Onto itself, into its own child, onto an existing name without
    // overwrite, names with `..`, NUL, control characters, or too long.
    assert_eq!(dav.move_to("/Archive/", "/Archive", true).await.0, 403);
    let (status, _) = dav
        .move_to("/Archive/", "/Archive/Photos/Inside", false)
        .await;
    assert!(matches!(status, 403 | 409), "into itself: {status}");
    assert_eq!(dav.put("/Archive/readme.txt", b"r").await, 201);
    assert_eq!(
        dav.move_to("/Archive/readme.txt", "/Archive/Photos", false)
            .await
            .0,
        412
    );
    for bad in [
        "/a%00b.txt",
        "/tab%09.txt",
        "/%2E%2E/escape.txt",
        "/back%5Cslash.txt",
    ] {
        let status = dav.put(bad, b"x").await;
        assert!((400..500).contains(&status), "{bad}: {status}");
    }
    let long = format!("/{}.txt", "n".repeat(300));
    assert!((400..500).contains(&dav.put(&long, b"x").await));
    // Names that differ only by case or accents clash in one folder.
    assert_eq!(dav.put("/Archive/Readme.TXT", b"x").await, 409);
    assert_eq!(dav.put("/Archive/readme.txt", b"r2").await, 204);
    let mut expected = unchanged.clone();
    expected.insert(
        "Archive/readme.txt".into(),
        etags(&app, &tenant).await["Archive/readme.txt"].clone(),
    );
    assert_eq!(etags(&app, &tenant).await, expected, "nothing else changed");
    // A rename that only changes case is allowed: it is the same file.
    assert_eq!(
        dav.move_to("/Archive/readme.txt", "/Archive/README.txt", false)
            .await
            .0,
        201
    );

    // Deleting a folder moves it to the trash in one step; nothing is lost.
    assert_eq!(
        dav.send("DELETE", "/Archive/Photos/", &[], None).await.0,
        204
    );
    assert_eq!(dav.get("/Archive/Photos/2026/p07.jpg").await.0, 404);
    let trashed: Vec<String> = keys(&app, &tenant)
        .await
        .into_iter()
        .filter(|k| k.starts_with(".trash/"))
        .collect();
    assert_eq!(trashed.len(), 22, "{trashed:?}");
    assert!(
        trashed
            .iter()
            .any(|k| k.ends_with("/Archive/Photos/2026/p07.jpg"))
    );
    // The trash is not part of the drive's tree.
    assert!(!dav.list("/").await.iter().any(|h| h.contains("trash")));
    assert_eq!(
        dav.send("PROPFIND", "/.trash/", &[("Depth", "1")], None)
            .await
            .0,
        403
    );
}

async fn etags(app: &TestApp, tenant: &Tenant) -> std::collections::BTreeMap<String, String> {
    let out = app
        .s3_client(tenant)
        .list_objects_v2()
        .bucket(drive_bucket(tenant))
        .send()
        .await
        .expect("listed");
    out.contents()
        .iter()
        .filter(|o| !o.key().unwrap_or_default().starts_with(".trash/"))
        .map(|o| {
            (
                o.key().unwrap_or_default().to_owned(),
                o.e_tag().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_lock_keeps_other_clients_out_until_it_is_released() {
    let app = spawn_app().await;
    let tenant = app.tenant("Lock Co").await;
    let ann = dav_user(&app, &tenant, "ann@lock.example").await;
    let bob = dav_user(&app, &tenant, "bob@lock.example").await;
    assert_eq!(ann.put("/plan.odt", b"v1").await, 201);
    let lock_body = r#"<?xml version="1.0" encoding="utf-8"?>
<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>
<D:locktype><D:write/></D:locktype><D:owner>ann</D:owner></D:lockinfo>"#;
    let response = ann
        .http
        .request(method("LOCK"), format!("{}/dav/plan.odt", ann.base))
        .basic_auth(&ann.email, Some(&ann.password))
        .header("Timeout", "Second-600")
        .body(lock_body)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let token = response.headers()["lock-token"]
        .to_str()
        .expect("ascii")
        .trim_matches(|c| c == '<' || c == '>')
        .to_owned();

    // Someone else cannot write, move, delete or lock it.
    assert_eq!(bob.put("/plan.odt", b"bob").await, 423);
    assert_eq!(bob.move_to("/plan.odt", "/moved.odt", false).await.0, 423);
    assert_eq!(bob.send("DELETE", "/plan.odt", &[], None).await.0, 423);
    let (status, _) = bob
        .send("LOCK", "/plan.odt", &[], Some(lock_body.into()))
        .await;
    assert_eq!(status, 423);
    assert_eq!(ann.get("/plan.odt").await, (200, "v1".into()));
    // The lock is in the database: a second server on the same database
    // would see it too. Its holder writes with the token.
    let if_header = format!("(<{token}>)");
    let (status, _) = ann
        .send(
            "PUT",
            "/plan.odt",
            &[("If", &if_header)],
            Some(b"v2".to_vec()),
        )
        .await;
    assert_eq!(status, 204);
    let lock_token = format!("<{token}>");
    let (status, _) = ann
        .send("UNLOCK", "/plan.odt", &[("Lock-Token", &lock_token)], None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(bob.put("/plan.odt", b"bob").await, 204);
    assert_eq!(ann.get("/plan.odt").await, (200, "bob".into()));
}

#[tokio::test]
async fn a_client_that_stops_mid_file_leaves_nothing_behind() {
    let app = spawn_app().await;
    let tenant = app.tenant("Cut Co").await;
    let dav = dav_user(&app, &tenant, "ann@cut.example").await;
    assert_eq!(dav.put("/kept.txt", b"kept").await, 201);
    let address = app.console.trim_start_matches("http://").to_owned();
    let auth = base64_basic(&dav.email, &dav.password);
    {
        let mut socket = std::net::TcpStream::connect(&address).expect("connected");
        let head = format!(
            "PUT /dav/kept.txt HTTP/1.1\r\nHost: {address}\r\nAuthorization: Basic {auth}\r\n\
             Content-Length: 100000\r\n\r\n"
        );
        socket.write_all(head.as_bytes()).expect("head");
        socket.write_all(&[b'x'; 1000]).expect("some of the body");
        socket.flush().expect("flushed");
        std::thread::sleep(Duration::from_millis(300));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(dav.get("/kept.txt").await, (200, "kept".into()));
    assert_eq!(keys(&app, &tenant).await, vec!["kept.txt"]);
    let (_, usage) = app
        .root(Method::GET, &format!("/orgs/{}/storage", tenant.org), None)
        .await;
    assert_eq!(usage["bytes"], 4, "{usage}");

    // A write of part of the file (Content-Range) makes a new version of
    // the old bytes around the new ones; SabreDAV's PATCH appends.
    let (status, _) = dav
        .send(
            "PUT",
            "/kept.txt",
            &[("Content-Range", "bytes 1-2/4")],
            Some(b"XX".to_vec()),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(dav.get("/kept.txt").await, (200, "kXXt".into()));
    let (status, _) = dav
        .send(
            "PATCH",
            "/kept.txt",
            &[
                ("Content-Type", "application/x-sabredav-partialupdate"),
                ("X-Update-Range", "append"),
            ],
            Some(b"!!".to_vec()),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(dav.get("/kept.txt").await, (200, "kXXt!!".into()));
    // A range that starts past the end changes nothing.
    let (status, _) = dav
        .send(
            "PUT",
            "/kept.txt",
            &[("Content-Range", "bytes 10-11/12")],
            Some(b"YY".to_vec()),
        )
        .await;
    assert_eq!(status, 416);
    assert_eq!(dav.get("/kept.txt").await, (200, "kXXt!!".into()));
}

fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

#[tokio::test]
async fn a_crash_in_the_middle_of_a_move_leaves_the_old_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let app = spawn(Spawn {
        data_dir: Some(data_dir.clone()),
        env: vec![("NUAGE_TEST_CRASH_AT".into(), "drive.move".into())],
        process: true,
        ..Spawn::default()
    })
    .await;
    let tenant = app.tenant("Crash Co").await;
    let dav = dav_user(&app, &tenant, "ann@crash.example").await;
    assert_eq!(dav.send("MKCOL", "/Old", &[], None).await.0, 201);
    for i in 0..10 {
        assert_eq!(dav.put(&format!("/Old/f{i}.txt"), b"data").await, 201);
    }
    let before = keys(&app, &tenant).await;
    let destination = format!("{}/dav/New", app.console);
    let crashed = dav
        .http
        .request(method("MOVE"), format!("{}/dav/Old/", app.console))
        .basic_auth(&dav.email, Some(&dav.password))
        .header("Destination", destination)
        .send()
        .await;
    assert!(crashed.is_err(), "the server died in the move: {crashed:?}");
    let (database_url, root_token) = (app.database_url.clone(), app.root_token.clone());
    drop(app);

    let app = spawn(Spawn {
        data_dir: Some(data_dir),
        database_url: Some(database_url),
        root_token: Some(root_token),
        ..Spawn::default()
    })
    .await;
    let dav = Dav {
        base: app.console.clone(),
        ..dav
    };
    assert_eq!(keys(&app, &tenant).await, before, "the old tree, whole");
    assert_eq!(dav.get("/Old/f3.txt").await, (200, "data".into()));
    // And the move, tried again, goes through.
    assert_eq!(dav.move_to("/Old/", "/New", false).await.0, 201);
    assert_eq!(dav.get("/New/f3.txt").await, (200, "data".into()));
}

/// The console's drive pages, as a browser reaches them (session cookie,
/// CSRF token).
struct Console {
    http: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

impl Console {
    async fn open(app: &TestApp, email: &str) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let session = app.console_session(email).await;
        let mut console = Self {
            http,
            base: app.console.clone(),
            cookie: format!("nuage_session={session}"),
            csrf: String::new(),
        };
        let page = console.page("/drive").await.1;
        console.csrf = page
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a CSRF token")
            .to_owned();
        console
    }

    async fn page(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("accept-language", "en")
            .send()
            .await
            .expect("page");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    async fn upload(&self, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
        let response = self
            .http
            .put(format!("{}/drive/content", self.base))
            .query(&[("path", path)])
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .header("content-type", content_type)
            .body(body.to_vec())
            .send()
            .await
            .expect("upload");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String, String) {
        let mut form = vec![("csrf", self.csrf.as_str())];
        form.extend_from_slice(fields);
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("accept-language", "en")
            .form(&form)
            .send()
            .await
            .expect("post");
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, location, response.text().await.unwrap_or_default())
    }
}

#[tokio::test]
async fn the_console_manages_files_folders_versions_and_the_trash() {
    let app = spawn_app().await;
    let tenant = app.tenant("Console Drive").await;
    app.create_user(&tenant.org, "ann@console.example", "member")
        .await;
    let console = Console::open(&app, "ann@console.example").await;

    // A folder upload: the files' relative paths make the folders.
    for (path, body) in [
        ("Projet/plan.txt", "le plan"),
        ("Projet/images/logo.png", "png"),
        ("Projet/page.html", "<script>alert(1)</script>"),
    ] {
        let kind = if path.ends_with(".png") {
            "image/png"
        } else if path.ends_with(".html") {
            "text/html"
        } else {
            "text/plain"
        };
        let (status, body) = console.upload(path, kind, body.as_bytes()).await;
        assert_eq!(status, 201, "{body}");
    }
    let (_, root) = console.page("/drive").await;
    assert!(root.contains("Projet"), "{root}");
    let (_, folder) = console.page("/drive?path=Projet").await;
    for name in ["plan.txt", "images", "page.html"] {
        assert!(folder.contains(name), "{name} listed");
    }
    // Without the CSRF token, or with a bad name: refused, nothing stored.
    let refused = console
        .http
        .put(format!("{}/drive/content?path=x.txt", console.base))
        .header("cookie", &console.cookie)
        .body("x")
        .send()
        .await
        .expect("sent");
    assert_eq!(refused.status(), 403);
    let (status, body) = console
        .upload("Projet/../escape.txt", "text/plain", b"x")
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("a name is not . or .."), "{body}");

    // Text previews as plain text in a sandbox; HTML only downloads.
    let preview = console
        .http
        .get(format!(
            "{}/drive/file?path=Projet/plan.txt&inline=1",
            console.base
        ))
        .header("cookie", &console.cookie)
        .send()
        .await
        .expect("preview");
    assert_eq!(preview.status(), 200);
    assert_eq!(
        preview.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert!(
        preview.headers()["content-security-policy"]
            .to_str()
            .expect("ascii")
            .starts_with("sandbox")
    );
    assert!(
        preview.headers()["content-disposition"]
            .to_str()
            .expect("ascii")
            .starts_with("inline")
    );
    let html = console
        .http
        .get(format!(
            "{}/drive/file?path=Projet/page.html&inline=1",
            console.base
        ))
        .header("cookie", &console.cookie)
        .send()
        .await
        .expect("html");
    assert_eq!(html.headers()["content-type"], "application/octet-stream");
    assert!(
        html.headers()["content-disposition"]
            .to_str()
            .expect("ascii")
            .starts_with("attachment")
    );

    // A second version, then the first restored.
    console
        .upload("Projet/plan.txt", "text/plain", b"le plan v2")
        .await;
    let (_, versions) = console.page("/drive/versions?path=Projet/plan.txt").await;
    let old = versions
        .split("name=\"version\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("an older version to restore")
        .to_owned();
    let (status, location, _) = console
        .post(
            "/drive/versions",
            &[("path", "Projet/plan.txt"), ("version", &old)],
        )
        .await;
    assert_eq!(status, 303, "{location}");
    let (_, text) = console.page("/drive/file?path=Projet/plan.txt").await;
    assert_eq!(text, "le plan");

    // New folder, rename, move, and a clash refused with a readable message.
    let (status, ..) = console
        .post(
            "/drive",
            &[("action", "mkdir"), ("folder", ""), ("name", "Archives")],
        )
        .await;
    assert_eq!(status, 303);
    let (status, ..) = console
        .post(
            "/drive",
            &[
                ("action", "rename"),
                ("folder", "Projet"),
                ("path", "Projet/plan.txt"),
                ("name", "plan-final.txt"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let (status, ..) = console
        .post(
            "/drive",
            &[
                ("action", "move"),
                ("folder", ""),
                ("path", "Projet"),
                ("to", "Archives"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let (_, text) = console
        .page("/drive/file?path=Archives/Projet/plan-final.txt")
        .await;
    assert_eq!(text, "le plan");
    let (status, _, page) = console
        .post(
            "/drive",
            &[("action", "mkdir"), ("folder", ""), ("name", "ARCHIVES")],
        )
        .await;
    assert_eq!(status, 409);
    assert!(page.contains("only by case"), "{page}");

    // Search finds by name, folded.
    let (_, found) = console.page("/drive?q=FINAL").await;
    assert!(found.contains("plan-final.txt"), "{found}");

    // To the trash, listed there, restored where it was.
    let (status, ..) = console
        .post(
            "/drive",
            &[
                ("action", "trash"),
                ("folder", ""),
                ("path", "Archives/Projet"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        console
            .page("/drive/file?path=Archives/Projet/plan-final.txt")
            .await
            .0,
        404
    );
    let (_, trash) = console.page("/drive/trash").await;
    assert!(trash.contains("/Archives/Projet"), "{trash}");
    let entry = trash
        .split("name=\"entry\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("an entry")
        .to_owned();
    let (status, location, _) = console
        .post("/drive/trash", &[("action", "restore"), ("entry", &entry)])
        .await;
    assert_eq!(status, 303, "{location}");
    assert_eq!(
        console
            .page("/drive/file?path=Archives/Projet/plan-final.txt")
            .await,
        (200, "le plan".into())
    );

    // Trash again and empty it: the bytes are freed.
    let (_, before) = app
        .root(Method::GET, &format!("/orgs/{}/storage", tenant.org), None)
        .await;
    console
        .post(
            "/drive",
            &[("action", "trash"), ("folder", ""), ("path", "Archives")],
        )
        .await;
    let (status, ..) = console.post("/drive/trash", &[("action", "empty")]).await;
    assert_eq!(status, 303);
    let (_, after) = app
        .root(Method::GET, &format!("/orgs/{}/storage", tenant.org), None)
        .await;
    assert!(
        after["bytes"].as_i64() < before["bytes"].as_i64(),
        "{before} → {after}"
    );
    assert!(
        console
            .page("/drive/trash")
            .await
            .1
            .contains("trash is empty")
    );

    // An app password made in the console opens the drive over WebDAV.
    let (status, _, page) = console
        .post("/drive/connect", &[("name", "my laptop")])
        .await;
    assert_eq!(status, 200);
    let secret = page
        .split("id=\"new-app-password\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .expect("the new secret, shown once")
        .to_owned();
    let dav = Dav {
        http: reqwest::Client::new(),
        base: app.console.clone(),
        root: "/dav".into(),
        email: "ann@console.example".into(),
        password: secret.clone(),
    };
    assert_eq!(dav.list("/").await, vec!["/dav/"]);
    assert!(!console.page("/drive/connect").await.1.contains(&secret));
}

/// A visitor of a share link: no account, its own cookies.
fn visitor() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A visitor's request, with the cookie it was given, if any.
async fn visit(client: &reqwest::Client, url: &str, cookie: Option<&str>) -> (u16, String, String) {
    let mut request = client.get(url).header("accept-language", "fr");
    if let Some(c) = cookie {
        request = request.header("cookie", c);
    }
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, location, response.text().await.unwrap_or_default())
}

/// The address of the newest link on the owner's list.
async fn newest_link(console: &Console) -> String {
    let (_, page) = console.page("/drive/shares").await;
    page.rsplit("class=\"share-url\" href=\"")
        .next()
        .and_then(|r| r.split('"').next())
        .expect("a link")
        .to_owned()
}

#[tokio::test]
async fn share_links_open_a_folder_to_visitors_with_a_password_until_revoked() {
    let app = spawn_app().await;
    let tenant = app.tenant("Share Co").await;
    app.create_user(&tenant.org, "ann@share.example", "member")
        .await;
    let console = Console::open(&app, "ann@share.example").await;
    for (path, body) in [
        ("Public/notes.txt", "public notes"),
        ("Public/sub/deep.txt", "deep"),
        ("Private/secret.txt", "not shared"),
    ] {
        assert_eq!(
            console.upload(path, "text/plain", body.as_bytes()).await.0,
            201
        );
    }
    let tomorrow = (time::OffsetDateTime::now_utc() + time::Duration::days(1)).date();
    let (status, location, page) = console
        .post(
            "/drive/shares",
            &[
                ("path", "Public"),
                ("mode", "read"),
                ("password", "open sesame"),
                ("expires", &tomorrow.to_string()),
            ],
        )
        .await;
    assert_eq!(status, 303, "{location} {page}");
    let link = newest_link(&console).await;
    assert!(link.contains("/s/"), "{link}");
    let token = link.rsplit('/').next().expect("token").to_owned();
    let url = |rest: &str| format!("{}/s/{token}{rest}", app.console);
    let client = visitor();

    // Locked: the password form, in the visitor's language; files redirect.
    let (status, _, page) = visit(&client, &url(""), None).await;
    assert_eq!(status, 200);
    assert!(page.contains("protégé par un mot de passe"), "{page}");
    assert!(!page.contains("notes.txt"));
    let (status, location, _) = visit(&client, &url("/file?path=notes.txt"), None).await;
    assert_eq!(
        (status, location.as_str()),
        (303, format!("/s/{token}").as_str())
    );
    let wrong = client
        .post(url(""))
        .header("accept-language", "en")
        .form(&[("password", "guess")])
        .send()
        .await
        .expect("sent");
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong
            .text()
            .await
            .unwrap_or_default()
            .contains("Wrong password")
    );
    let right = client
        .post(url(""))
        .form(&[("password", "open sesame")])
        .send()
        .await
        .expect("sent");
    assert_eq!(right.status(), 303);
    let cookie = right.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("a cookie")
        .to_owned();
    let unlocked = cookie.as_str();
    let cookie = Some(unlocked);

    // Unlocked: the folder, its subfolders, files, and the whole as a ZIP.
    let (status, _, page) = visit(&client, &url(""), cookie).await;
    assert_eq!(status, 200);
    assert!(page.contains("notes.txt") && page.contains("sub"), "{page}");
    assert!(!page.contains("secret.txt"));
    let (status, _, body) = visit(&client, &url("/file?path=sub/deep.txt"), cookie).await;
    assert_eq!((status, body.as_str()), (200, "deep"));
    // Nothing outside the shared folder, whatever the path says.
    for escape in [
        "../Private/secret.txt",
        "/../Private/secret.txt",
        "sub/../../Private/secret.txt",
    ] {
        let (status, _, body) = visit(&client, &url(&format!("/file?path={escape}")), cookie).await;
        assert!(status == 400 || status == 404, "{escape}: {status}");
        assert!(!body.contains("not shared"));
    }
    let zip = client
        .get(url("/zip"))
        .header("cookie", unlocked)
        .send()
        .await
        .expect("zip");
    assert_eq!(zip.status(), 200);
    assert_eq!(zip.headers()["content-type"], "application/zip");
    let bytes = zip.bytes().await.expect("bytes");
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), &bytes).expect("written");
    let check = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; \
             print(sorted(z.namelist())); print(z.read('Public/sub/deep.txt').decode())",
        ])
        .arg(file.path())
        .output()
        .expect("python3");
    let listing = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        listing.contains("['Public/notes.txt', 'Public/sub/deep.txt']") && listing.contains("deep"),
        "{listing}"
    );

    // Links follow what they share when the owner renames it, or a folder
    // above it: one on the folder itself, one on a folder inside.
    let (status, ..) = console
        .post("/drive/shares", &[("path", "Public/sub"), ("mode", "read")])
        .await;
    assert_eq!(status, 303);
    let inner = newest_link(&console).await;
    let (status, ..) = console
        .post(
            "/drive",
            &[
                ("action", "rename"),
                ("folder", ""),
                ("path", "Public"),
                ("name", "Publié"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let (status, _, page) = visit(&client, &url(""), cookie).await;
    assert_eq!(status, 200);
    assert!(page.contains("notes.txt") && page.contains("sub"), "{page}");
    let (status, _, page) = visit(&client, &inner, None).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("deep.txt") && !page.contains("notes.txt"),
        "{page}"
    );
    let (_, links) = console.page("/drive/shares").await;
    assert!(
        links.contains("Publié/sub") && !links.contains("Public/"),
        "{links}"
    );

    // Every access through the link is in the owner's access log.
    let logged = in_access_log(&app, &tenant, "DriveGet", "share:").await;
    assert!(logged, "the visitor's download is in the access log");

    // Past its expiry date, the link is gone.
    app.set_clock((time::OffsetDateTime::now_utc().unix_timestamp() + 3 * 86_400) * 1000)
        .await;
    let (status, _, page) = visit(&client, &url(""), cookie).await;
    assert_eq!(status, 410);
    assert!(page.contains("a expiré ou a été révoqué"), "{page}");
    let response = app
        .http
        .put(app.url("/test-clock"))
        .bearer_auth(&app.root_token)
        .json(&json!({ "now_ms": null }))
        .send()
        .await
        .expect("clock reset");
    assert_eq!(response.status(), 204);
    assert_eq!(visit(&client, &url(""), cookie).await.0, 200);

    // Revoked: gone at once, for everyone.
    let (_, links) = console.page("/drive/shares").await;
    let id = links
        .split("name=\"revoke\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a link to revoke")
        .to_owned();
    let (status, ..) = console.post("/drive/shares", &[("revoke", &id)]).await;
    assert_eq!(status, 303);
    assert_eq!(visit(&client, &url(""), cookie).await.0, 410);
    assert_eq!(
        visit(&client, &url("/file?path=notes.txt"), cookie).await.0,
        410
    );
    // An unknown token says nothing about any tenant.
    let (status, _, page) = visit(&client, &format!("{}/s/nosuchlink", app.console), None).await;
    assert_eq!(status, 404);
    assert!(!page.contains("Public"));
}

#[tokio::test]
async fn wrong_link_passwords_are_rate_limited_and_drop_boxes_only_take_files() {
    let app = spawn_app().await;
    let tenant = app.tenant("Drop Co").await;
    app.create_user(&tenant.org, "ann@drop.example", "member")
        .await;
    let console = Console::open(&app, "ann@drop.example").await;
    assert_eq!(
        console
            .upload("Inbox/existing.txt", "text/plain", b"mine")
            .await
            .0,
        201
    );
    // A drop box on a file is refused, readably.
    let (status, _, page) = console
        .post(
            "/drive/shares",
            &[("path", "Inbox/existing.txt"), ("mode", "upload")],
        )
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("only a folder takes uploads"), "{page}");
    let (status, ..) = console
        .post(
            "/drive/shares",
            &[
                ("path", "Inbox"),
                ("mode", "upload"),
                ("password", "dropit"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let token = newest_link(&console)
        .await
        .rsplit('/')
        .next()
        .expect("token")
        .to_owned();
    let url = |rest: &str| format!("{}/s/{token}{rest}", app.console);
    let client = visitor();

    // Ten wrong guesses, then even the right password waits.
    for _ in 0..10 {
        let r = client
            .post(url(""))
            .form(&[("password", "nope")])
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 401);
    }
    let r = client
        .post(url(""))
        .form(&[("password", "dropit")])
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 429);

    // A fresh box without a password: files go in, nothing comes out.
    let (status, ..) = console
        .post("/drive/shares", &[("path", "Inbox"), ("mode", "upload")])
        .await;
    assert_eq!(status, 303);
    let token = newest_link(&console)
        .await
        .rsplit('/')
        .next()
        .expect("token")
        .to_owned();
    let url = |rest: &str| format!("{}/s/{token}{rest}", app.console);
    let (status, _, page) = visit(&client, &url(""), None).await;
    assert_eq!(status, 200);
    assert!(
        !page.contains("existing.txt"),
        "a drop box shows no content"
    );
    let drop = |name: &'static str, with_header: bool| {
        let mut request = client
            .put(url("/upload"))
            .query(&[("path", name)])
            .body(format!("dropped {name}"));
        if with_header {
            request = request.header("x-nuage-share", "1");
        }
        request.send()
    };
    assert_eq!(drop("report.pdf", false).await.expect("sent").status(), 403);
    assert_eq!(drop("report.pdf", true).await.expect("sent").status(), 201);
    assert_eq!(
        drop("existing.txt", true).await.expect("sent").status(),
        201
    );
    assert_eq!(
        drop("../escape.txt", true).await.expect("sent").status(),
        400
    );
    assert_eq!(
        visit(&client, &url("/file?path=existing.txt"), None)
            .await
            .0,
        404
    );
    assert_eq!(visit(&client, &url("/zip"), None).await.0, 404);
    // The owner has the dropped files, and its own untouched.
    assert_eq!(
        console.page("/drive/file?path=Inbox/existing.txt").await,
        (200, "mine".into())
    );
    assert_eq!(
        console
            .page("/drive/file?path=Inbox/existing (2).txt")
            .await,
        (200, "dropped existing.txt".into())
    );
    assert_eq!(
        console.page("/drive/file?path=Inbox/report.pdf").await,
        (200, "dropped report.pdf".into())
    );
}

#[tokio::test]
async fn a_folder_shared_with_a_person_shows_in_their_drive_with_the_access_given() {
    let app = spawn_app().await;
    let owner_org = app.tenant("Owner Co").await;
    let guest_org = app.tenant("Guest Co").await;
    app.create_user(&owner_org.org, "ann@owner.example", "member")
        .await;
    app.create_user(&guest_org.org, "bob@guest.example", "member")
        .await;
    app.create_user(&guest_org.org, "eve@guest.example", "member")
        .await;
    let ann = Console::open(&app, "ann@owner.example").await;
    let bob = Console::open(&app, "bob@guest.example").await;
    let eve = Console::open(&app, "eve@guest.example").await;
    for (path, body) in [
        ("Team/plan.txt", "the plan"),
        ("Private/pay.txt", "salaries"),
    ] {
        assert_eq!(ann.upload(path, "text/plain", body.as_bytes()).await.0, 201);
    }
    // Someone unknown is refused, readably; then Bob gets read access.
    let (status, _, page) = ann
        .post(
            "/drive/grants",
            &[
                ("path", "Team"),
                ("email", "nobody@nowhere.example"),
                ("access", "read"),
            ],
        )
        .await;
    assert_eq!(status, 404, "{page}");
    let (status, ..) = ann
        .post(
            "/drive/grants",
            &[
                ("path", "Team"),
                ("email", "bob@guest.example"),
                ("access", "read"),
            ],
        )
        .await;
    assert_eq!(status, 303);

    // In Bob's drive, under "shared with you", with the owner's name.
    let (_, root) = bob.page("/drive").await;
    assert!(
        root.contains("Shared with you") && root.contains("Owner Co"),
        "{root}"
    );
    let id = root
        .split("href=\"/drive/shared/")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the shared folder")
        .to_owned();
    let (status, page) = bob.page(&format!("/drive/shared/{id}")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("plan.txt") && page.contains("read only"),
        "{page}"
    );
    assert_eq!(
        bob.page(&format!("/drive/shared/{id}/file?path=plan.txt"))
            .await,
        (200, "the plan".into())
    );
    // Nothing outside the folder; no writing with read access.
    for escape in ["../Private/pay.txt", "/../Private/pay.txt"] {
        let (status, body) = bob
            .page(&format!("/drive/shared/{id}/file?path={escape}"))
            .await;
        assert!(status == 400 || status == 404, "{escape}: {status}");
        assert!(!body.contains("salaries"));
    }
    let refused = bob
        .http
        .put(format!(
            "{}/drive/shared/{id}/content?path=new.txt",
            bob.base
        ))
        .header("cookie", &bob.cookie)
        .header("x-csrf-token", &bob.csrf)
        .body("bob's")
        .send()
        .await
        .expect("sent");
    assert_eq!(refused.status(), 403);
    // Over WebDAV, the folder is mounted at /dav-shared/<grant>/: read,
    // never written with read access, nothing outside it.
    let bob_dav = dav_login(&app, &guest_org, "bob@guest.example").await;
    let shared = Dav {
        root: format!("/dav-shared/{id}"),
        ..bob_dav
    };
    let listed = shared.list("/").await;
    assert!(
        listed.iter().any(|h| h.ends_with("/plan.txt")),
        "{listed:?}"
    );
    assert!(
        listed
            .iter()
            .all(|h| h.starts_with(&format!("/dav-shared/{id}"))),
        "{listed:?}"
    );
    assert_eq!(shared.get("/plan.txt").await, (200, "the plan".into()));
    assert_eq!(shared.put("/new.txt", b"bob's").await, 403);
    assert_eq!(shared.send("MKCOL", "/sub", &[], None).await.0, 403);
    assert_eq!(shared.send("DELETE", "/plan.txt", &[], None).await.0, 403);
    for escape in ["/../Private/pay.txt", "/%2e%2e/Private/pay.txt"] {
        let (status, body) = shared.get(escape).await;
        assert!(!body.contains("salaries"), "{escape}: {status}");
    }
    // Eve, of the same organisation as Bob, was given nothing.
    let eve_dav = dav_login(&app, &guest_org, "eve@guest.example").await;
    let stranger = Dav {
        root: format!("/dav-shared/{id}"),
        ..eve_dav
    };
    assert_eq!(stranger.get("/plan.txt").await.0, 404);
    assert_eq!(eve.page(&format!("/drive/shared/{id}")).await.0, 404);
    assert!(!eve.page("/drive").await.1.contains("Owner Co"));

    // With write access: uploads, folders, the trash — inside only.
    let (status, ..) = ann
        .post(
            "/drive/grants",
            &[
                ("path", "Team"),
                ("email", "bob@guest.example"),
                ("access", "write"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let (_, root) = bob.page("/drive").await;
    let write_id = root
        .split("href=\"/drive/shared/")
        .skip(1)
        .filter_map(|r| r.split('"').next())
        .find(|g| *g != id)
        .expect("the second grant")
        .to_owned();
    let put = bob
        .http
        .put(format!(
            "{}/drive/shared/{write_id}/content?path=notes/bob.txt",
            bob.base
        ))
        .header("cookie", &bob.cookie)
        .header("x-csrf-token", &bob.csrf)
        .body("bob's notes")
        .send()
        .await
        .expect("sent");
    assert_eq!(put.status(), 201);
    assert_eq!(
        ann.page("/drive/file?path=Team/notes/bob.txt").await,
        (200, "bob's notes".into())
    );
    let (status, ..) = bob
        .post(
            &format!("/drive/shared/{write_id}"),
            &[("action", "trash"), ("folder", ""), ("path", "plan.txt")],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(ann.page("/drive/file?path=Team/plan.txt").await.0, 404);
    let (status, ..) = bob
        .post(
            &format!("/drive/shared/{write_id}"),
            &[("action", "trash"), ("folder", ""), ("path", "")],
        )
        .await;
    assert_eq!(status, 403, "the shared folder itself stays");
    // Write access over WebDAV too: a file in, a folder made; the shared
    // folder itself cannot be deleted or moved away.
    let writer = Dav {
        root: format!("/dav-shared/{write_id}"),
        ..dav_login(&app, &guest_org, "bob@guest.example").await
    };
    assert_eq!(writer.put("/from-webdav.txt", b"over webdav").await, 201);
    assert_eq!(
        ann.page("/drive/file?path=Team/from-webdav.txt").await,
        (200, "over webdav".into())
    );
    assert_eq!(writer.send("MKCOL", "/made", &[], None).await.0, 201);
    assert_eq!(writer.send("DELETE", "/", &[], None).await.0, 403);
    assert!(!writer.list("/").await.is_empty());
    assert!(in_access_log(&app, &owner_org, "DrivePut", "grant:").await);

    // Removed: gone from Bob's drive at once.
    let (_, shares) = ann.page("/drive/shares").await;
    for grant in shares
        .split("name=\"revoke\" value=\"")
        .skip(1)
        .filter_map(|r| r.split('"').next())
    {
        let (status, ..) = ann.post("/drive/grants", &[("revoke", grant)]).await;
        assert_eq!(status, 303);
    }
    assert_eq!(bob.page(&format!("/drive/shared/{write_id}")).await.0, 404);
    assert!(!bob.page("/drive").await.1.contains("Owner Co"));
}

impl Console {
    /// One call of the browser's upload in parts (`/drive/uploads…`).
    async fn part_call(
        &self,
        method: Method,
        path: &str,
        file: &str,
        body: Option<Vec<u8>>,
    ) -> (u16, serde_json::Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .query(&[("path", file)])
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .header("accept-language", "en");
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.expect("sent");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }
}

#[tokio::test]
async fn a_large_upload_in_parts_resumes_after_a_cut_and_shows_only_when_whole() {
    let app = spawn_app().await;
    let tenant = app.tenant("Resumable").await;
    app.create_user(&tenant.org, "eve@resumable.example", "member")
        .await;
    let console = Console::open(&app, "eve@resumable.example").await;
    let file = "Archives/film.bin";
    let part = 8 * 1024 * 1024;
    let content: Vec<u8> = (0..part + 1234).map(|i| (i % 251) as u8).collect();

    let (status, begun) = console
        .part_call(Method::POST, "/drive/uploads", file, None)
        .await;
    assert_eq!(status, 201, "{begun}");
    assert_eq!(begun["part_bytes"], part);
    let id = begun["upload"].as_str().expect("an upload id").to_owned();
    let at = format!("/drive/uploads/{id}");

    // The first part arrives; the connection is cut while the second is sent.
    let (status, body) = console
        .part_call(
            Method::PUT,
            &format!("{at}/1"),
            file,
            Some(content[..part].to_vec()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let address = app.console.trim_start_matches("http://").to_owned();
    {
        let mut socket = std::net::TcpStream::connect(&address).expect("connected");
        let head = format!(
            "PUT {at}/2?path=Archives%2Ffilm.bin HTTP/1.1\r\nHost: {address}\r\n\
             Cookie: {}\r\nx-csrf-token: {}\r\nContent-Length: 1234\r\n\r\n",
            console.cookie, console.csrf
        );
        socket.write_all(head.as_bytes()).expect("head");
        socket
            .write_all(&content[part..part + 100])
            .expect("some of the part");
        socket.flush().expect("flushed");
        std::thread::sleep(Duration::from_millis(300));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Nothing shows in the drive yet, and the upload knows what it holds:
    // the first part only.
    let (_, folder) = console.page("/drive?path=Archives").await;
    assert!(!folder.contains("film.bin"), "{folder}");
    assert!(
        !keys(&app, &tenant)
            .await
            .iter()
            .any(|k| k.contains("film.bin"))
    );
    let (status, received) = console.part_call(Method::GET, &at, file, None).await;
    assert_eq!(status, 200, "{received}");
    assert_eq!(
        received["parts"],
        serde_json::json!([{"part": 1, "size": part}])
    );

    // Someone else's upload id, or the same id for another name: not found.
    let (status, _) = console
        .part_call(Method::GET, &at, "Archives/autre.bin", None)
        .await;
    assert_eq!(status, 404);
    let other = app.tenant("Other").await;
    app.create_user(&other.org, "mallory@other.example", "owner")
        .await;
    let intruder = Console::open(&app, "mallory@other.example").await;
    let (status, _) = intruder.part_call(Method::GET, &at, file, None).await;
    assert_eq!(status, 404);
    let (status, _) = intruder
        .part_call(Method::PUT, &format!("{at}/2"), file, Some(vec![0; 10]))
        .await;
    assert_eq!(status, 404);

    // Resumed: only the missing part is sent, then the file is made whole.
    let (status, body) = console
        .part_call(
            Method::PUT,
            &format!("{at}/2"),
            file,
            Some(content[part..].to_vec()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, done) = console.part_call(Method::POST, &at, file, None).await;
    assert_eq!(status, 201, "{done}");
    assert_eq!(done["size"], content.len());
    let download = console
        .http
        .get(format!("{}/drive/file", console.base))
        .query(&[("path", file)])
        .header("cookie", &console.cookie)
        .send()
        .await
        .expect("download");
    assert_eq!(download.status(), 200);
    assert_eq!(
        download.bytes().await.expect("bytes").as_ref(),
        content.as_slice()
    );
    // Finished, the upload is gone.
    let (status, _) = console.part_call(Method::GET, &at, file, None).await;
    assert_eq!(status, 404);

    // A name taken by a folder is refused at the start; a cancelled upload
    // leaves nothing.
    let (status, body) = console
        .part_call(Method::POST, "/drive/uploads", "Archives", None)
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, begun) = console
        .part_call(
            Method::POST,
            "/drive/uploads",
            "Archives/brouillon.bin",
            None,
        )
        .await;
    assert_eq!(status, 201);
    let id = begun["upload"].as_str().expect("id");
    let (status, _) = console
        .part_call(
            Method::PUT,
            &format!("/drive/uploads/{id}/1"),
            "Archives/brouillon.bin",
            Some(vec![1; 1000]),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = console
        .part_call(
            Method::DELETE,
            &format!("/drive/uploads/{id}"),
            "Archives/brouillon.bin",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = console
        .part_call(
            Method::POST,
            &format!("/drive/uploads/{id}"),
            "Archives/brouillon.bin",
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert!(
        !keys(&app, &tenant)
            .await
            .iter()
            .any(|k| k.contains("brouillon"))
    );
    // Bad names are refused before anything is begun.
    let (status, body) = console
        .part_call(Method::POST, "/drive/uploads", "Archives/../x.bin", None)
        .await;
    assert_eq!(status, 400, "{body}");
}
