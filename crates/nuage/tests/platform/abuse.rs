//! The platform tried as an attacker would: each test is named after the
//! threat it closes, and failed before its fix. Sources are told apart by
//! the loopback address a client binds (127.0.0.1, 127.0.0.2…).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::{PASSWORD, Spawn, TestApp, s3_code, spawn, spawn_app};
use crate::platform::api::{current_code, data_encoding_decode};

const MIB: u64 = 1024 * 1024;

/// An HTTP client whose connections come from `source` (a loopback address).
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().expect("address"))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// An app password for the token's user, opening `org`'s drive.
async fn app_password(app: &TestApp, token: &str, org: &str) -> String {
    let (status, made) = app
        .call(
            Method::POST,
            "/app-passwords",
            token,
            Some(json!({"name": "laptop", "org_id": org})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    made["secret"].as_str().expect("secret").to_owned()
}

/// The server's peak resident memory so far (`VmHWM`), in bytes.
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM")
        * 1024
}

/// Sends a browser-form upload (`POST` Object) with no credentials and a
/// file of `size` bytes, as fast as the server reads it; returns the
/// status line the server answered, if it answered.
async fn unsigned_form_post(s3: &str, size: u64) -> Option<String> {
    let addr: SocketAddr = s3.trim_start_matches("http://").parse().expect("address");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let boundary = "nuage-abuse-boundary";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nbig.bin\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let length = head.len() as u64 + size + tail.len() as u64;
    let request = format!(
        "POST /no-such-bucket HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n\r\n{head}"
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let chunk = vec![0u8; MIB as usize];
    let mut sent = 0;
    while sent < size {
        if stream.write_all(&chunk).await.is_err() {
            break;
        }
        sent += MIB;
    }
    let _ = stream.write_all(tail.as_bytes()).await;
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut answer))
        .await
        .ok()?
        .ok()?;
    String::from_utf8_lossy(&answer[..n])
        .lines()
        .next()
        .map(str::to_owned)
}

#[tokio::test]
async fn unauthenticated_form_uploads_cannot_exhaust_the_servers_memory() {
    // A process of its own: its peak memory is the server's alone.
    let mut app = spawn(Spawn {
        process: true,
        ..Spawn::default()
    })
    .await;
    // Let start-up settle, then take the peak so far.
    assert_eq!(
        app.http
            .get(format!("{}/healthz", app.console))
            .send()
            .await
            .expect("healthz")
            .status(),
        200
    );
    let before = peak_memory(app.pid());
    let (a, b) = tokio::join!(
        unsigned_form_post(&app.s3, 512 * MIB),
        unsigned_form_post(&app.s3, 512 * MIB)
    );
    let grown = peak_memory(app.pid()).saturating_sub(before);
    assert!(
        grown < 256 * MIB,
        "two unsigned 512 MiB form uploads raised the peak memory by {} MiB",
        grown / MIB
    );
    // Refused, in S3's own form (too large, or slow down for the second).
    for answer in [a, b].into_iter().flatten() {
        assert!(
            answer.contains(" 400 ") || answer.contains(" 503 ") || answer.contains(" 403 "),
            "{answer}"
        );
    }
    // And the server still serves.
    let r = app
        .http
        .get(format!("{}/healthz", app.console))
        .send()
        .await
        .expect("healthz after");
    assert_eq!(r.status(), 200);
}

/// Opens a connection from `source` to `to` and sends nothing.
async fn idle_connection(source: IpAddr, to: SocketAddr) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::new(source, 0)).ok()?;
    socket.connect(to).await.ok()
}

#[tokio::test]
async fn idle_connections_from_one_source_neither_starve_others_nor_stay_open() {
    // Idle connections are closed after 2 s here (20 s by default).
    let app = spawn(Spawn {
        env: vec![(
            "NUAGE_SERVER__HEADER_READ_TIMEOUT_SECONDS".into(),
            "2".into(),
        )],
        ..Spawn::default()
    })
    .await;
    let console: SocketAddr = app
        .console
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let attacker: IpAddr = "127.0.0.1".parse().expect("ip");
    let mut held = Vec::new();
    for _ in 0..1500 {
        if let Some(c) = idle_connection(attacker, console).await {
            held.push(c);
        }
    }
    assert!(held.len() >= 1400, "only {} connections opened", held.len());
    // Someone else is served at once.
    let started = std::time::Instant::now();
    let r = client_from("127.0.0.2")
        .get(format!("{}/healthz", app.console))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .expect("healthz answered within 2 s while 1,500 connections are held");
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(2));
    // The server closes the idle ones by itself.
    let total = held.len();
    let closed = futures_closed(held, Duration::from_secs(45)).await;
    assert!(
        closed * 10 >= total * 9,
        "the server closed {closed} of {total} idle connections within 45 s"
    );
}

/// How many of the connections the server closed within `limit`.
async fn futures_closed(held: Vec<TcpStream>, limit: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + limit;
    let mut tasks = Vec::with_capacity(held.len());
    for mut stream in held {
        tasks.push(tokio::spawn(async move {
            let mut buf = [0u8; 64];
            loop {
                match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                    Err(_) => return false,
                    Ok(Ok(0)) | Ok(Err(_)) => return true,
                    Ok(Ok(_)) => continue,
                }
            }
        }));
    }
    let mut closed = 0;
    for task in tasks {
        if task.await.unwrap_or(false) {
            closed += 1;
        }
    }
    closed
}

async fn sign_in(client: &reqwest::Client, app: &TestApp, email: &str, password: &str) -> u16 {
    client
        .post(app.url("/auth/token"))
        .json(&json!({"email": email, "password": password, "name": "x"}))
        .send()
        .await
        .expect("sent")
        .status()
        .as_u16()
}

#[tokio::test]
async fn nobody_locks_an_owner_out_by_failing_to_sign_in_on_purpose() {
    let app = spawn_app().await;
    let org = app.create_org("Verrou").await;
    app.create_user(&org, "owner@verrou.fr", "owner").await;
    let attacker = client_from("127.0.0.3");
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(sign_in(&attacker, &app, "owner@verrou.fr", "a wrong guess!!").await);
    }
    assert!(
        statuses[..5].iter().all(|s| *s == 401),
        "a few mistakes cost nothing: {statuses:?}"
    );
    assert!(
        statuses.contains(&429),
        "guessing is throttled: {statuses:?}"
    );
    // Even the right password waits, from the guessing source...
    assert_eq!(
        sign_in(&attacker, &app, "owner@verrou.fr", PASSWORD).await,
        429
    );
    // ...but not from the owner's.
    let owner = client_from("127.0.0.4");
    assert_eq!(
        sign_in(&owner, &app, "owner@verrou.fr", PASSWORD).await,
        201
    );
    // The same over WebDAV Basic.
    let token = app.token_for("owner@verrou.fr", None).await;
    let secret = app_password(&app, &token, &org).await;
    let propfind = |client: reqwest::Client, password: String| {
        let url = format!("{}/dav/", app.console);
        async move {
            client
                .request(Method::from_bytes(b"PROPFIND").expect("method"), url)
                .header("Depth", "0")
                .basic_auth("owner@verrou.fr", Some(password))
                .send()
                .await
                .expect("sent")
                .status()
                .as_u16()
        }
    };
    let mut dav = Vec::new();
    for _ in 0..12 {
        dav.push(propfind(client_from("127.0.0.5"), "wrong-wrong-wrong".into()).await);
    }
    assert!(dav.contains(&429), "WebDAV guessing is throttled: {dav:?}");
    assert_eq!(propfind(client_from("127.0.0.6"), secret).await, 207);
}

#[tokio::test]
async fn nobody_squats_another_organisations_drive() {
    let app = spawn_app().await;
    let victim = app.tenant("Victime").await;
    let squatter = app.tenant("Squatteur").await;
    let drive_bucket = format!("drive-{}", victim.org.replace('-', ""));
    let code = s3_code(
        app.s3_client(&squatter)
            .create_bucket()
            .bucket(&drive_bucket)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidBucketName");
    // Nor its own, by hand: drives are the platform's to make.
    let own = format!("drive-{}", squatter.org.replace('-', ""));
    let code = s3_code(
        app.s3_client(&squatter)
            .create_bucket()
            .bucket(&own)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidBucketName");
    // The victim's drive opens.
    app.create_user(&victim.org, "user@victime.fr", "member")
        .await;
    let token = app.token_for("user@victime.fr", None).await;
    let password = app_password(&app, &token, &victim.org).await;
    let r = app
        .http
        .put(format!("{}/dav/note.txt", app.console))
        .basic_auth("user@victime.fr", Some(password))
        .body("hello")
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 201);
}

/// Enables TOTP for the token's user; returns its secret.
async fn enable_totp(app: &TestApp, token: &str) -> Vec<u8> {
    let (s, enrol) = app.call(Method::POST, "/me/totp", token, None).await;
    assert_eq!(s, 201, "{enrol}");
    let secret = data_encoding_decode(enrol["secret_base32"].as_str().expect("secret"));
    let (s, b) = app
        .call(
            Method::POST,
            "/me/totp/confirm",
            token,
            Some(json!({"code": current_code(&secret)})),
        )
        .await;
    assert_eq!(s, 204, "{b}");
    secret
}

#[tokio::test]
async fn a_required_second_factor_holds_on_the_drive_and_webdav() {
    let app = spawn_app().await;
    let org = app.create_org("Exigeante").await;
    let (_, owner) = app.create_user(&org, "owner@exigeante.fr", "owner").await;
    let (_, member) = app.create_user(&org, "member@exigeante.fr", "member").await;
    // An app password made before the policy.
    let old_password = app_password(&app, &member, &org).await;
    let console_session = app.console_session("member@exigeante.fr").await;
    enable_totp(&app, &owner).await;
    let (s, b) = app
        .call(
            Method::PATCH,
            &format!("/orgs/{org}"),
            &owner,
            Some(json!({"require_totp": true})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    // No new app password...
    let (status, body) = app
        .call(
            Method::POST,
            "/app-passwords",
            &member,
            Some(json!({"name": "phone", "org_id": org})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    // ...the old one opens nothing...
    let r = app
        .http
        .request(
            Method::from_bytes(b"PROPFIND").expect("method"),
            format!("{}/dav/", app.console),
        )
        .header("Depth", "0")
        .basic_auth("member@exigeante.fr", Some(&old_password))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 401);
    // ...and neither do the console's drive and websites pages.
    for page in ["/drive", "/websites"] {
        let r = app
            .http
            .get(format!("{}{page}", app.console))
            .header("cookie", format!("nuage_session={console_session}"))
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 403, "{page}");
    }
}

#[tokio::test]
async fn a_webdav_delete_names_the_decoded_folder() {
    let app = spawn_app().await;
    let org = app.create_org("Encodage").await;
    let (_, token) = app.create_user(&org, "user@encodage.fr", "member").await;
    let password = app_password(&app, &token, &org).await;
    let dav = |verb: &str, path: &str| {
        app.http
            .request(
                Method::from_bytes(verb.as_bytes()).expect("method"),
                format!("{}/dav/{path}", app.console),
            )
            .header("Depth", "0")
            .basic_auth("user@encodage.fr", Some(&password))
            .send()
    };
    // "a b", and a folder literally named "a%20b".
    assert_eq!(dav("MKCOL", "a%20b/").await.expect("sent").status(), 201);
    assert_eq!(dav("MKCOL", "a%2520b/").await.expect("sent").status(), 201);
    assert_eq!(dav("DELETE", "a%20b/").await.expect("sent").status(), 204);
    assert_eq!(dav("PROPFIND", "a%20b/").await.expect("sent").status(), 404);
    assert_eq!(
        dav("PROPFIND", "a%2520b/").await.expect("sent").status(),
        207,
        "the folder named with a percent sign is untouched"
    );
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client_and_nobody_else_can() {
    let app = spawn(Spawn {
        env: vec![(
            "NUAGE_SERVER__TRUSTED_PROXIES".into(),
            "[\"127.0.0.7\"]".into(),
        )],
        ..Spawn::default()
    })
    .await;
    let org = app.create_org("Mandataire").await;
    app.create_user(&org, "owner@mandataire.fr", "owner").await;
    let forwarded_sign_in = |from: &str, client: &'static str| {
        let http = client_from(from);
        let url = app.url("/auth/token");
        async move {
            http.post(url)
                .header("X-Forwarded-For", "198.51.100.1")
                .header("Forwarded", format!("for={client}"))
                .json(&json!({"email": "owner@mandataire.fr", "password": "wrong guess!!", "name": "x"}))
                .send()
                .await
                .expect("sent")
                .status()
                .as_u16()
        }
    };
    // Through the proxy, the throttle counts the forwarded client...
    let mut through = Vec::new();
    for _ in 0..12 {
        through.push(forwarded_sign_in("127.0.0.7", "203.0.113.9").await);
    }
    assert!(through.contains(&429), "{through:?}");
    // ...so another client behind the same proxy is not held back...
    assert_eq!(forwarded_sign_in("127.0.0.7", "203.0.113.10").await, 401);
    // ...and a stranger's header names nobody: its own address counts.
    assert_eq!(forwarded_sign_in("127.0.0.8", "203.0.113.9").await, 401);
    let mut db = app.database().await;
    let keys: Vec<(String,)> = sqlx::query_as("SELECT DISTINCT email FROM login_failures")
        .fetch_all(&mut db)
        .await
        .expect("failures");
    let keys: Vec<String> = keys.into_iter().map(|k| k.0).collect();
    assert!(keys.iter().any(|k| k.ends_with("@203.0.113.9")), "{keys:?}");
    assert!(keys.iter().any(|k| k.ends_with("@127.0.0.8")), "{keys:?}");
    assert!(!keys.iter().any(|k| k.contains("198.51.100.1")), "{keys:?}");
}

#[tokio::test]
async fn an_organisation_cannot_be_named_like_another() {
    let app = spawn_app().await;
    app.create_org("Mairie de Lyon").await;
    for lookalike in [
        "Mairie  de Lyon",
        "MAIRIE DE LYON",
        "Ｍａｉｒｉｅ de Lyon",
        "Mairie de\u{00A0}Lyon",
    ] {
        let (status, body) = app
            .root(
                Method::POST,
                "/orgs",
                Some(json!({"name": lookalike, "kind": "company"})),
            )
            .await;
        assert_eq!(status, 409, "{lookalike:?}: {body}");
    }
    let (status, body) = app
        .root(
            Method::POST,
            "/orgs",
            Some(json!({"name": "Mairie\u{200B} de Lyon", "kind": "company"})),
        )
        .await;
    assert_eq!(status, 400, "an invisible character: {body}");
}

#[tokio::test]
async fn open_data_csv_keeps_formulas_as_text() {
    let app = spawn_app().await;
    crate::market::catalogue::published_org(
        &app,
        "=HYPERLINK(\"http://x\";\"y\")",
        "a@formule.fr",
        true,
        false,
    )
    .await;
    let csv = app
        .http
        .get(app.url("/open-data/organisations.csv"))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(csv.contains("'=HYPERLINK"), "{csv}");
    assert!(
        !csv.lines().any(|l| l
            .split(',')
            .any(|cell| cell.trim_matches('"').starts_with('='))),
        "{csv}"
    );
}

#[tokio::test]
async fn user_content_is_never_active_on_the_consoles_origin() {
    let app = spawn_app().await;
    let org = app.create_org("Contenus").await;
    let (_, token) = app.create_user(&org, "user@contenus.fr", "member").await;
    let password = app_password(&app, &token, &org).await;
    let page = "<html><script>alert(document.cookie)</script></html>";
    let r = app
        .http
        .put(format!("{}/dav/page.html", app.console))
        .basic_auth("user@contenus.fr", Some(&password))
        .header("content-type", "text/html")
        .body(page)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 201);
    // Over WebDAV, on the console's origin: sandboxed, never sniffed.
    let r = app
        .http
        .get(format!("{}/dav/page.html", app.console))
        .basic_auth("user@contenus.fr", Some(&password))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(
        csp.contains("sandbox") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    // The API's answers too; and security.txt says whom to tell.
    let r = app
        .http
        .get(app.url("/regions"))
        .send()
        .await
        .expect("sent");
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .expect("csp")
            .contains("frame-ancestors 'none'")
    );
    let r = app
        .http
        .get(format!("{}/.well-known/security.txt", app.console))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("text");
    assert!(
        text.contains("Contact: mailto:security@") && text.contains("Expires: "),
        "{text}"
    );
}

#[tokio::test]
async fn guessing_s3_secrets_is_throttled_per_source() {
    let app = spawn_app().await;
    let tenant = app.tenant("Signatures").await;
    app.s3_client(&tenant)
        .create_bucket()
        .bucket("signatures")
        .send()
        .await
        .expect("bucket");
    let forged = |from: &str| {
        let http = client_from(from);
        let url = format!("{}/signatures", app.s3);
        let key = tenant.access_key_id.clone();
        async move {
            let now = time::OffsetDateTime::now_utc();
            let date = format!(
                "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
                now.year(),
                u8::from(now.month()),
                now.day(),
                now.hour(),
                now.minute(),
                now.second()
            );
            http.get(url)
                .header("x-amz-date", &date)
                .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
                .header(
                    "authorization",
                    format!(
                        "AWS4-HMAC-SHA256 Credential={key}/{}/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={}",
                        &date[..8],
                        "0".repeat(64)
                    ),
                )
                .send()
                .await
                .expect("sent")
                .status()
                .as_u16()
        }
    };
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(forged("127.0.0.9").await);
    }
    assert_eq!(statuses[..5], [403; 5], "{statuses:?}");
    assert!(statuses.contains(&503), "{statuses:?}");
    // Another source is not held back, and the key's owner still works.
    assert_eq!(forged("127.0.0.10").await, 403);
    app.s3_client(&tenant)
        .list_objects_v2()
        .bucket("signatures")
        .send()
        .await
        .expect("the owner lists");
}

/// The organisation the console shows on its home page for a session.
async fn console_org(app: &TestApp, session: &str) -> String {
    let page = app
        .http
        .get(format!("{}/", app.console))
        .header("cookie", format!("nuage_session={session}"))
        .header("accept-language", "en")
        .send()
        .await
        .expect("home")
        .text()
        .await
        .expect("page");
    page.split("Your organisation · ")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_sign_in_opens_the_organisation_the_user_chose_not_one_named_to_sort_first() {
    let app = spawn_app().await;
    let mine = app.create_org("Zéphyr Conseil").await;
    let (_, user) = app.create_user(&mine, "user@zephyr.fr", "owner").await;
    // Another organisation, named to sort first, invites the user; until
    // they accept, nothing changes.
    let other = app.create_org("Aaa Zéphyr").await;
    let (_, admin) = app.create_user(&other, "admin@aaa.fr", "owner").await;
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/orgs/{other}/members"),
            &admin,
            Some(json!({"email": "user@zephyr.fr", "role": "member"})),
        )
        .await;
    assert_eq!(status, 202);
    let session = app.console_session("user@zephyr.fr").await;
    assert_eq!(console_org(&app, &session).await, "Zéphyr Conseil");
    // Accepted: a member of both, the sign-in still opens the oldest...
    let (_, waiting) = app.call(Method::GET, "/invitations", &user, None).await;
    let id = waiting[0]["id"].as_str().expect("invitation");
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/invitations/{id}/accept"),
            &user,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let session = app.console_session("user@zephyr.fr").await;
    assert_eq!(console_org(&app, &session).await, "Zéphyr Conseil");
    // ...until the user chooses the other one, which the next sign-in restores.
    let login = app
        .http
        .get(format!("{}/", app.console))
        .header("cookie", format!("nuage_session={session}"))
        .send()
        .await
        .expect("home");
    let csrf = login
        .text()
        .await
        .expect("page")
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF field")
        .to_owned();
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(format!("{}/org/switch", app.console))
        .header("cookie", format!("nuage_session={session}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("org", other.as_str()),
            ("next", "/"),
        ])
        .send()
        .await
        .expect("switch");
    assert!(r.status().is_redirection(), "{}", r.status());
    let session = app.console_session("user@zephyr.fr").await;
    assert_eq!(console_org(&app, &session).await, "Aaa Zéphyr");
}
