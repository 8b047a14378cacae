//! Buckets published as static websites, with aws-sdk-s3 for the
//! configuration and plain HTTP (reqwest, and curl for the raw headers) on
//! the website listener.

use std::process::Command;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    Condition, ErrorDocument, IndexDocument, Redirect, RoutingRule, WebsiteConfiguration,
};
use reqwest::Method;

use crate::helpers::{TestApp, create_bucket, put, s3_code, spawn_app};

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
    create_bucket(&s3, "blog").await;
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
    put(
        &s3,
        "blog",
        "style.css",
        ByteStream::from_static(b"body { color: #000; }"),
    )
    .await;
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
    create_bucket(&s3, "vitrine").await;
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

/// A DNS server for the tests: it answers TXT questions from the records it
/// holds (by name, without the final dot), and NXDOMAIN otherwise.
struct Dns {
    addr: std::net::SocketAddr,
    records: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<String>>>>,
}

impl Dns {
    async fn start() -> Self {
        use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
        use hickory_proto::rr::rdata::TXT;
        use hickory_proto::rr::{RData, Record, RecordType};
        use hickory_proto::serialize::binary::BinEncodable;

        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("udp");
        let addr = socket.local_addr().expect("addr");
        let records = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
            String,
            Vec<String>,
        >::new()));
        let held = records.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let mut answer = Message::new();
                answer
                    .set_id(query.id())
                    .set_message_type(MessageType::Response)
                    .set_op_code(OpCode::Query)
                    .set_recursion_desired(query.recursion_desired())
                    .set_recursion_available(true);
                for q in query.queries() {
                    answer.add_query(q.clone());
                    let name = q.name().to_ascii().trim_end_matches('.').to_lowercase();
                    let values = held
                        .lock()
                        .expect("records")
                        .get(&name)
                        .cloned()
                        .unwrap_or_default();
                    if q.query_type() == RecordType::TXT {
                        for v in values {
                            answer.add_answer(Record::from_rdata(
                                q.name().clone(),
                                0,
                                RData::TXT(TXT::new(vec![v])),
                            ));
                        }
                    }
                }
                if answer.answers().is_empty() {
                    answer.set_response_code(ResponseCode::NXDomain);
                }
                if let Ok(bytes) = answer.to_bytes() {
                    let _ = socket.send_to(&bytes, peer).await;
                }
            }
        });
        Self { addr, records }
    }

    fn publish(&self, name: &str, value: &str) {
        self.records
            .lock()
            .expect("records")
            .entry(name.to_owned())
            .or_default()
            .push(value.to_owned());
    }
}

/// A self-signed certificate for `domain`, where `--website-tls-dir` looks.
fn certificate(dir: &std::path::Path, domain: &str) -> std::path::PathBuf {
    let cert = rcgen::generate_simple_self_signed(vec![domain.to_owned()]).expect("certificate");
    let folder = dir.join(domain);
    std::fs::create_dir_all(&folder).expect("folder");
    std::fs::write(folder.join("fullchain.pem"), cert.cert.pem()).expect("cert");
    std::fs::write(folder.join("privkey.pem"), cert.key_pair.serialize_pem()).expect("key");
    folder.join("fullchain.pem")
}

/// curl over HTTPS (HTTP/2 unless `version` says otherwise) to the website
/// listener for `host`, trusting `ca`: "<HTTP version> <status> <body>".
fn curl_tls(app: &TestApp, host: &str, ca: &std::path::Path) -> String {
    curl_tls_as(app, host, ca, "--http2")
}

fn curl_tls_as(app: &TestApp, host: &str, ca: &std::path::Path, version: &str) -> String {
    let port = port(app);
    let output = Command::new("curl")
        .args([
            "-s",
            version,
            "-w",
            "\n%{http_version} %{http_code}",
            "--resolve",
        ])
        .arg(format!("{host}:{port}:127.0.0.1"))
        .arg("--cacert")
        .arg(ca)
        .arg(format!("https://{host}:{port}/"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    match text.rsplit_once('\n') {
        Some((body, status)) => format!("{status} {body}"),
        None => format!("curl failed: {output:?}"),
    }
}

/// Publishes a bucket with `index.html` as its index document.
async fn publish(s3: &aws_sdk_s3::Client, bucket: &str) {
    let index = IndexDocument::builder()
        .suffix("index.html")
        .build()
        .expect("index");
    s3.put_bucket_website()
        .bucket(bucket)
        .website_configuration(
            WebsiteConfiguration::builder()
                .index_document(index)
                .build(),
        )
        .send()
        .await
        .expect("website");
}

#[tokio::test]
async fn a_website_is_served_at_its_own_domain_once_proven() {
    let dns = Dns::start().await;
    let certs = tempfile::tempdir().expect("certs");
    let ca = certificate(certs.path(), "www.mairie-exemple.test");
    let ca_other = certificate(certs.path(), "www.autre.test");
    let app = crate::helpers::spawn(crate::helpers::Spawn {
        args: vec![
            "--website-tls-dir".into(),
            certs.path().display().to_string(),
            "--dns-server".into(),
            dns.addr.to_string(),
        ],
        ..crate::helpers::Spawn::default()
    })
    .await;
    assert!(app.web.starts_with("https://"), "{}", app.web);
    let t = app.tenant("Mairie").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "mairie").await;
    s3.put_object()
        .bucket("mairie")
        .key("index.html")
        .content_type("text/html")
        .body(ByteStream::from_static(b"<h1>Mairie</h1>"))
        .send()
        .await
        .expect("put");
    let domains = format!("/orgs/{}/websites/mairie/domains", t.org);

    // Only a published website takes domains of its own, and only its
    // organisation's managers claim them.
    let (_, owner) = app.create_user(&t.org, "maire@mairie.test", "owner").await;
    let (status, _) = app
        .call(
            Method::POST,
            &domains,
            &owner,
            Some(serde_json::json!({"domain": "www.mairie-exemple.test"})),
        )
        .await;
    assert_eq!(status, 404, "no website yet");
    publish(&s3, "mairie").await;
    let (_, member) = app.create_user(&t.org, "agent@mairie.test", "member").await;
    let (status, body) = app
        .call(
            Method::POST,
            &domains,
            &member,
            Some(serde_json::json!({"domain": "www.mairie-exemple.test"})),
        )
        .await;
    assert_eq!(status, 403, "{body}");

    // Bad names are refused as problems, and nothing is claimed.
    for bad in [
        "localhost",
        "mairie.sites.localhost",
        "10.0.0.1",
        "www.mairie..test",
        "../etc/passwd",
    ] {
        let (status, body) = app
            .call(
                Method::POST,
                &domains,
                &owner,
                Some(serde_json::json!({"domain": bad})),
            )
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["detail"].as_str().is_some(), "{body}");
    }

    let (status, claim) = app
        .call(
            Method::POST,
            &domains,
            &owner,
            Some(serde_json::json!({"domain": "WWW.Mairie-Exemple.test."})),
        )
        .await;
    assert_eq!(status, 201, "{claim}");
    assert_eq!(claim["domain"], "www.mairie-exemple.test");
    assert_eq!(
        claim["record_name"],
        "_nuage-challenge.www.mairie-exemple.test"
    );
    assert!(claim["verified_at"].is_null());
    let value = claim["record_value"].as_str().expect("value").to_owned();
    assert!(value.starts_with("nuage-site-verification="), "{value}");

    // Claimed but not proven: served nowhere, the same answer as for a name
    // nobody claimed.
    let unknown = curl_tls(&app, "www.autre.test", &ca_other);
    assert!(unknown.starts_with("2 404 "), "{unknown}");
    let before = curl_tls(&app, "www.mairie-exemple.test", &ca);
    assert_eq!(before, unknown);
    let verify = format!("{domains}/www.mairie-exemple.test/verify");
    let (status, body) = app.call(Method::POST, &verify, &owner, None).await;
    assert_eq!(status, 409, "no record yet: {body}");
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("_nuage-challenge.www.mairie-exemple.test"),
        "{body}"
    );

    // Another tenant may claim the same name, but its proof is its own
    // token: the first tenant's record proves nothing for it.
    let other = app.tenant("Usurpateur").await;
    let s3_other = app.s3_client(&other);
    create_bucket(&s3_other, "usurpateur").await;
    publish(&s3_other, "usurpateur").await;
    let other_domains = format!("/orgs/{}/websites/usurpateur/domains", other.org);
    let (status, _) = app
        .root(
            Method::POST,
            &other_domains,
            Some(serde_json::json!({"domain": "www.mairie-exemple.test"})),
        )
        .await;
    assert_eq!(status, 201);
    // Nor can it reach the first tenant's bucket through its own organisation.
    let (status, _) = app
        .root(
            Method::POST,
            &format!(
                "/orgs/{}/websites/mairie/domains/www.mairie-exemple.test/verify",
                other.org
            ),
            None,
        )
        .await;
    assert_eq!(status, 404);

    // The owner publishes the record: verified, and served over TLS with
    // the domain's own certificate, over HTTP/2.
    dns.publish("_nuage-challenge.www.mairie-exemple.test", "v=other-record");
    dns.publish("_nuage-challenge.www.mairie-exemple.test", &value);
    let (status, _) = app
        .root(
            Method::POST,
            &format!("{other_domains}/www.mairie-exemple.test/verify"),
            None,
        )
        .await;
    assert_eq!(
        status, 409,
        "the first tenant's token proves nothing for another"
    );
    let (status, proven) = app.call(Method::POST, &verify, &owner, None).await;
    assert_eq!(status, 200, "{proven}");
    assert!(proven["verified_at"].as_i64().is_some());
    assert_eq!(
        curl_tls(&app, "www.mairie-exemple.test", &ca),
        "2 200 <h1>Mairie</h1>"
    );
    assert_eq!(
        curl_tls_as(&app, "www.mairie-exemple.test", &ca, "--http1.1"),
        "1.1 200 <h1>Mairie</h1>"
    );
    let (status, list) = app.call(Method::GET, &domains, &owner, None).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(1));

    // Released, it is served no more, at once.
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("{domains}/www.mairie-exemple.test"),
            &owner,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(curl_tls(&app, "www.mairie-exemple.test", &ca), before);
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("{domains}/www.mairie-exemple.test"),
            &owner,
            None,
        )
        .await;
    assert_eq!(status, 404);
}

/// Sites' configurations are kept for minutes in each node's memory; a
/// change made through another node still shows within seconds, because
/// every node follows the shared version of buckets' settings.
#[tokio::test]
async fn a_site_unpublished_through_one_node_stops_on_the_others() {
    let a = spawn_app().await;
    let b = crate::helpers::spawn(crate::helpers::Spawn {
        database_url: Some(a.database_url.clone()),
        master_key_file: Some(a.data_dir.join("master.key")),
        root_token: Some(a.root_token.clone()),
        ..crate::helpers::Spawn::default()
    })
    .await;
    let t = a.tenant("Deux noeuds").await;
    let s3 = a.s3_client(&t);
    create_bucket(&s3, "shared").await;
    // A site that redirects every request: its answer needs no object,
    // whose blobs are on node A's disk.
    s3.put_bucket_website()
        .bucket("shared")
        .website_configuration(
            WebsiteConfiguration::builder()
                .redirect_all_requests_to(
                    aws_sdk_s3::types::RedirectAllRequestsTo::builder()
                        .host_name("example.org")
                        .build()
                        .expect("redirect"),
                )
                .build(),
        )
        .send()
        .await
        .expect("website");
    let host = "shared.sites.localhost";
    let on_b = web_client(&b, &[host]);
    let url = format!("http://{host}:{}/", port(&b));
    // Node B reads the configuration and keeps it.
    assert_eq!(on_b.get(&url).send().await.expect("get").status(), 301);
    assert_eq!(on_b.get(&url).send().await.expect("get").status(), 301);

    s3.delete_bucket_website()
        .bucket("shared")
        .send()
        .await
        .expect("unpublished through node A");
    // B keeps configurations for 300 s; it must drop this one long before.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let status = on_b.get(&url).send().await.expect("get").status();
        if status == 404 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node B still serves the unpublished site ({status})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
