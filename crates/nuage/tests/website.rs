//! Buckets published as static websites, with aws-sdk-s3 for the
//! configuration and plain HTTP (reqwest, and curl for the raw headers) on
//! the website listener.

use std::process::Command;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    Condition, ErrorDocument, IndexDocument, Redirect, RoutingRule, WebsiteConfiguration,
};
use reqwest::Method;

use crate::helpers::{TestApp, s3_code, spawn_app};

/// The listener's port.
fn port(app: &TestApp) -> u16 {
    app.web
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port")
}

/// A client that reaches `*.sites.localhost` on the website listener.
fn web_client(app: &TestApp, hosts: &[&str]) -> reqwest::Client {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port(app)));
    let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    for host in hosts {
        builder = builder.resolve(host, addr);
    }
    builder.build().expect("client")
}

/// curl's response headers, as sent (no decoding).
fn curl_headers(app: &TestApp, host: &str, path: &str, extra: &[&str]) -> String {
    let port = port(app);
    let output = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", "--resolve"])
        .arg(format!("{host}:{port}:127.0.0.1"))
        .args(extra)
        .arg(format!("http://{host}:{port}{path}"))
        .output()
        .expect("curl runs");
    assert!(output.status.success(), "curl: {output:?}");
    String::from_utf8_lossy(&output.stdout).to_lowercase()
}

#[tokio::test]
async fn a_bucket_is_served_as_a_website() {
    let app = spawn_app().await;
    let t = app.tenant("Blogueurs").await;
    let s3 = app.s3_client(&t);
    s3.create_bucket()
        .bucket("blog")
        .send()
        .await
        .expect("bucket");
    let page = format!(
        "<!doctype html><title>Blog</title>{}",
        "<p>Un blog souverain.</p>".repeat(200)
    );
    for (key, body, content_type) in [
        (
            "index.html",
            page.as_str(),
            Some("text/html; charset=utf-8"),
        ),
        ("docs/index.html", "<h1>Docs</h1>", Some("text/html")),
        ("style.css", "body { color: #222; }", None),
        ("404.html", "<h1>Page introuvable</h1>", Some("text/html")),
    ] {
        let mut put = s3
            .put_object()
            .bucket("blog")
            .key(key)
            .body(ByteStream::from(body.as_bytes().to_vec()));
        if let Some(ct) = content_type {
            put = put.content_type(ct);
        }
        put.send().await.expect("put");
    }
    let host = "blog.sites.localhost";
    let port = port(&app);
    let web = web_client(&app, &[host, "nothing.sites.localhost"]);
    let get = |path: &str| web.get(format!("http://{host}:{port}{path}"));

    // Not yet a website: the same answer as for a bucket that does not exist.
    let before = get("/").send().await.expect("get");
    assert_eq!(before.status(), 404);
    let text = before.text().await.expect("text");
    let nothing = web
        .get(format!("http://nothing.sites.localhost:{port}/"))
        .send()
        .await
        .expect("get");
    assert_eq!(nothing.status(), 404);
    assert_eq!(nothing.text().await.expect("text"), text);
    let err = s3.get_bucket_website().bucket("blog").send().await;
    assert_eq!(s3_code(err), "NoSuchWebsiteConfiguration");

    // A configuration without an index document is refused, nothing changed.
    let err = s3
        .put_bucket_website()
        .bucket("blog")
        .website_configuration(
            WebsiteConfiguration::builder()
                .error_document(
                    ErrorDocument::builder()
                        .key("404.html")
                        .build()
                        .expect("doc"),
                )
                .build(),
        )
        .send()
        .await;
    assert_eq!(s3_code(err), "InvalidArgument");

    let config = WebsiteConfiguration::builder()
        .index_document(
            IndexDocument::builder()
                .suffix("index.html")
                .build()
                .expect("index"),
        )
        .error_document(
            ErrorDocument::builder()
                .key("404.html")
                .build()
                .expect("doc"),
        )
        .routing_rules(
            RoutingRule::builder()
                .condition(Condition::builder().key_prefix_equals("old/").build())
                .redirect(Redirect::builder().replace_key_prefix_with("docs/").build())
                .build(),
        )
        .build();
    s3.put_bucket_website()
        .bucket("blog")
        .website_configuration(config)
        .send()
        .await
        .expect("website");
    let read = s3
        .get_bucket_website()
        .bucket("blog")
        .send()
        .await
        .expect("read back");
    assert_eq!(
        read.index_document().map(|d| d.suffix()),
        Some("index.html")
    );
    assert_eq!(read.routing_rules().len(), 1);

    // The index, with its type, ETag and cache headers.
    let home = get("/").send().await.expect("get");
    assert_eq!(home.status(), 200);
    assert_eq!(home.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(home.headers()["accept-ranges"], "bytes");
    assert!(home.headers().contains_key("cache-control"));
    let etag = home.headers()["etag"].to_str().expect("etag").to_owned();
    assert_eq!(home.text().await.expect("body"), page);
    let css = get("/style.css").send().await.expect("get");
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");

    // Conditional requests and ranges.
    let same = get("/")
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("get");
    assert_eq!(same.status(), 304);
    let part = get("/index.html")
        .header("range", "bytes=0-14")
        .send()
        .await
        .expect("get");
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 0-14/{}", page.len()).as_str()
    );
    assert_eq!(part.text().await.expect("body"), &page[..15]);
    let beyond = get("/index.html")
        .header("range", format!("bytes={}-", page.len() + 10))
        .send()
        .await
        .expect("get");
    assert_eq!(beyond.status(), 416);

    // A new version is served at once (the page kept in memory is dropped).
    s3.put_object()
        .bucket("blog")
        .key("style.css")
        .body(ByteStream::from_static(b"body { color: #000; }"))
        .send()
        .await
        .expect("put");
    let css = get("/style.css").send().await.expect("get");
    assert_eq!(css.text().await.expect("body"), "body { color: #000; }");

    // Folders, routing rules, the error document.
    let folder = get("/docs").send().await.expect("get");
    assert_eq!(folder.status(), 302);
    assert_eq!(folder.headers()["location"], "/docs/");
    let docs = get("/docs/").send().await.expect("get");
    assert_eq!(docs.text().await.expect("body"), "<h1>Docs</h1>");
    let moved = get("/old/page.html").send().await.expect("get");
    assert_eq!(moved.status(), 301);
    assert_eq!(
        moved.headers()["location"],
        format!("http://{host}:{port}/docs/page.html").as_str()
    );
    let missing = get("/nowhere.html").send().await.expect("get");
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.text().await.expect("body"),
        "<h1>Page introuvable</h1>"
    );
    let post = web
        .post(format!("http://{host}:{port}/"))
        .send()
        .await
        .expect("post");
    assert_eq!(post.status(), 405);
    let traversal = get("/%2e%2e/%2e%2e/etc/passwd").send().await.expect("get");
    assert_eq!(traversal.status(), 404);

    // Text is compressed as the client asks, with curl's raw headers.
    let gzip = curl_headers(&app, host, "/", &["-H", "Accept-Encoding: gzip"]);
    assert!(gzip.contains("content-encoding: gzip"), "{gzip}");
    let brotli = curl_headers(&app, host, "/", &["-H", "Accept-Encoding: br"]);
    assert!(brotli.contains("content-encoding: br"), "{brotli}");
    let plain = curl_headers(&app, host, "/", &[]);
    assert!(!plain.contains("content-encoding"), "{plain}");

    // Every request is in the owner's access log, metered as GETs.
    app.maintain().await;
    let (status, log) = app
        .root(
            Method::GET,
            &format!("/orgs/{}/access-log?limit=500", t.org),
            None,
        )
        .await;
    assert_eq!(status, 200, "{log}");
    let entries = log.as_array().expect("entries");
    assert!(
        entries.iter().any(|e| e["operation"] == "WebsiteGet"
            && e["key"] == "index.html"
            && e["status"] == 200
            && e["bytes"].as_u64() >= Some(page.len() as u64 / 10)),
        "{log}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["operation"] == "WebsiteGet" && e["status"] == 404),
        "{log}"
    );

    // Unpublished: the listener answers as for any other name.
    s3.delete_bucket_website()
        .bucket("blog")
        .send()
        .await
        .expect("delete website");
    let after = get("/").send().await.expect("get");
    assert_eq!(after.status(), 404);
    assert_eq!(after.text().await.expect("text"), text);
}

/// The console's websites page publishes a bucket and takes it down, for
/// an owner; a plain member and a bad index are refused with nothing
/// changed.
#[tokio::test]
async fn the_console_publishes_a_bucket_as_a_website() {
    let app = spawn_app().await;
    let t = app.tenant("Vitrine").await;
    app.create_user(&t.org, "gerance@vitrine.example", "owner")
        .await;
    app.create_user(&t.org, "stagiaire@vitrine.example", "member")
        .await;
    let s3 = app.s3_client(&t);
    s3.create_bucket()
        .bucket("vitrine")
        .send()
        .await
        .expect("bucket");
    s3.put_object()
        .bucket("vitrine")
        .key("accueil.html")
        .content_type("text/html")
        .body(ByteStream::from_static(b"<h1>Vitrine</h1>"))
        .send()
        .await
        .expect("put");
    let port = port(&app);
    let host = "vitrine.sites.localhost";
    let web = web_client(&app, &[host]);
    let site = || web.get(format!("http://{host}:{port}/")).send();
    let console = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    // Signs in as `email`, reads the page, posts the bucket's form.
    let post = |email: &'static str, fields: Vec<(&'static str, &'static str)>| {
        let console = console.clone();
        let app = &app;
        async move {
            let session = app.console_session(email).await;
            let page = console
                .get(format!("{}/websites", app.console))
                .header("cookie", format!("nuage_session={session}"))
                .header("accept-language", "en")
                .send()
                .await
                .expect("page")
                .text()
                .await
                .expect("html");
            let csrf = page
                .split("name=\"csrf\" value=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .expect("a CSRF token")
                .to_owned();
            let mut form = vec![("csrf", csrf)];
            form.extend(fields.into_iter().map(|(k, v)| (k, v.to_owned())));
            let response = console
                .post(format!("{}/websites/vitrine", app.console))
                .header("cookie", format!("nuage_session={session}"))
                .header("accept-language", "en")
                .form(&form)
                .send()
                .await
                .expect("post");
            (page, response)
        }
    };

    let (page, published) = post(
        "gerance@vitrine.example",
        vec![
            ("index", "accueil.html"),
            ("error", ""),
            ("action", "publish"),
        ],
    )
    .await;
    assert!(
        page.contains("vitrine") && page.contains("Not published"),
        "{page}"
    );
    assert_eq!(published.status(), 303);
    let home = site().await.expect("get");
    assert_eq!(home.status(), 200);
    assert_eq!(home.text().await.expect("body"), "<h1>Vitrine</h1>");

    // A bad index and a plain member are refused; the site stays up.
    let (page, bad) = post(
        "gerance@vitrine.example",
        vec![("index", "a/b.html"), ("action", "publish")],
    )
    .await;
    assert!(
        page.contains(&format!("http://{host}:{port}/")),
        "the page gives the site's address: {page}"
    );
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.expect("html").contains("role=\"alert\""));
    let (_, member) = post("stagiaire@vitrine.example", vec![("action", "unpublish")]).await;
    assert_eq!(member.status(), 403);
    assert_eq!(site().await.expect("get").status(), 200);

    let (_, down) = post("gerance@vitrine.example", vec![("action", "unpublish")]).await;
    assert_eq!(down.status(), 303);
    assert_eq!(site().await.expect("get").status(), 404);
}
