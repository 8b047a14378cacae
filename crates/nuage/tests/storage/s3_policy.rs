//! Bucket policies, Block Public Access and anonymous requests: what a
//! bucket's owner can open to another organisation or to everyone, and
//! what stays shut, through aws-sdk-s3 and unsigned HTTP requests.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::PublicAccessBlockConfiguration;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Tenant, TestApp, create_bucket, get_bytes, put, s3_code, spawn, spawn_app};

/// The entries of `org`'s access log, once flushed.
async fn access_log(app: &TestApp, org: &str) -> Vec<Value> {
    app.maintain().await;
    let (status, log) = app
        .root(
            Method::GET,
            &format!("/orgs/{org}/access-log?limit=1000"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{log}");
    log.as_array().expect("entries").clone()
}

/// An unsigned GET: its status and body.
async fn anonymous_get(app: &TestApp, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("{}/{path}", app.s3))
        .await
        .expect("answer");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

fn public_read(bucket: &str, prefix: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "PublicRead",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/{prefix}*"),
        }]
    })
    .to_string()
}

async fn open_org(app: &TestApp, t: &Tenant, on: bool) {
    let (status, body) = app
        .root(
            Method::PUT,
            &format!("/orgs/{}/public-access-block", t.org),
            Some(json!({
                "block_public_acls": on,
                "ignore_public_acls": on,
                "block_public_policy": on,
                "restrict_public_buckets": on,
            })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["restrict_public_buckets"], on);
}

fn switches(on: bool) -> PublicAccessBlockConfiguration {
    PublicAccessBlockConfiguration::builder()
        .block_public_acls(on)
        .ignore_public_acls(on)
        .block_public_policy(on)
        .restrict_public_buckets(on)
        .build()
}

#[tokio::test]
async fn a_public_read_policy_opens_its_prefix_once_block_public_access_is_lifted_at_every_level() {
    let app = spawn_app().await;
    let t = app.tenant("Publisher").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "site").await;
    put(
        &s3,
        "site",
        "public/index.html",
        ByteStream::from_static(b"<h1>hi</h1>"),
    )
    .await;
    put(
        &s3,
        "site",
        "private/secret",
        ByteStream::from_static(b"secret"),
    )
    .await;
    // Without a policy, an unsigned request is refused, in S3's XML.
    let (status, body) = anonymous_get(&app, "site/public/index.html").await;
    assert_eq!(status, 403);
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    // Block Public Access is on by default, for the bucket and its organisation.
    let block = s3
        .get_public_access_block()
        .bucket("site")
        .send()
        .await
        .expect("switches");
    let c = block
        .public_access_block_configuration()
        .expect("configuration");
    assert_eq!(
        (c.block_public_policy(), c.restrict_public_buckets()),
        (Some(true), Some(true))
    );
    let (status, org_block) = app
        .root(
            Method::GET,
            &format!("/orgs/{}/public-access-block", t.org),
            None,
        )
        .await;
    assert_eq!(
        (status, org_block["block_public_policy"].clone()),
        (200, json!(true))
    );
    let policy = public_read("site", "public/");
    let refused = s3
        .put_bucket_policy()
        .bucket("site")
        .policy(&policy)
        .send()
        .await;
    assert_eq!(s3_code(refused), "AccessDenied");
    // Lifting the bucket's switches is not enough while its organisation's hold.
    s3.put_public_access_block()
        .bucket("site")
        .public_access_block_configuration(switches(false))
        .send()
        .await
        .expect("bucket switches off");
    let refused = s3
        .put_bucket_policy()
        .bucket("site")
        .policy(&policy)
        .send()
        .await;
    assert_eq!(s3_code(refused), "AccessDenied");
    open_org(&app, &t, false).await;
    s3.put_bucket_policy()
        .bucket("site")
        .policy(&policy)
        .send()
        .await
        .expect("public policy");
    let status = s3
        .get_bucket_policy_status()
        .bucket("site")
        .send()
        .await
        .expect("status");
    assert_eq!(
        status.policy_status().and_then(|s| s.is_public()),
        Some(true)
    );
    assert_eq!(
        s3.get_bucket_policy()
            .bucket("site")
            .send()
            .await
            .expect("policy")
            .policy(),
        Some(policy.as_str())
    );
    // Anyone reads what the policy opens, and nothing else.
    assert_eq!(
        anonymous_get(&app, "site/public/index.html").await,
        (200, "<h1>hi</h1>".to_owned())
    );
    assert_eq!(anonymous_get(&app, "site/private/secret").await.0, 403);
    assert_eq!(anonymous_get(&app, "site").await.0, 403, "no listing");
    let write = reqwest::Client::new()
        .put(format!("{}/site/public/defaced.html", app.s3))
        .body("defaced")
        .send()
        .await
        .expect("answer");
    assert_eq!(write.status(), 403);
    // Another organisation reads it too (the policy says anyone).
    let other = app.tenant("Reader").await;
    assert_eq!(
        get_bytes(&app.s3_client(&other), "site", "public/index.html").await,
        &b"<h1>hi</h1>"[..]
    );
    // Every one of these is in the owner's access log: the anonymous read
    // without a key, the refusals too.
    let log = access_log(&app, &t.org).await;
    let anonymous: Vec<&Value> = log
        .iter()
        .filter(|e| e["access_key_id"].is_null())
        .collect();
    assert!(
        anonymous
            .iter()
            .any(|e| e["key"] == "public/index.html" && e["status"] == 200),
        "{log:?}"
    );
    assert!(
        anonymous
            .iter()
            .any(|e| e["key"] == "private/secret" && e["status"] == 403),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|e| e["access_key_id"] == other.access_key_id.as_str() && e["status"] == 200),
        "{log:?}"
    );
    // Restricting public buckets again shuts it at once, for everyone but
    // its owner.
    s3.put_public_access_block()
        .bucket("site")
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .expect("restricted");
    assert_eq!(anonymous_get(&app, "site/public/index.html").await.0, 403);
    assert_eq!(
        get_bytes(&s3, "site", "public/index.html").await,
        &b"<h1>hi</h1>"[..]
    );
    s3.delete_bucket_policy()
        .bucket("site")
        .send()
        .await
        .expect("deleted");
    assert_eq!(
        s3_code(s3.get_bucket_policy().bucket("site").send().await),
        "NoSuchBucketPolicy"
    );
}

#[tokio::test]
async fn a_policy_grants_another_organisation_what_it_names_and_a_deny_binds_the_owner() {
    let app = spawn_app().await;
    let owner = app.tenant("Owner").await;
    let partner = app.tenant("Partner").await;
    let stranger = app.tenant("Stranger").await;
    let s3 = app.s3_client(&owner);
    let (sp, ss) = (app.s3_client(&partner), app.s3_client(&stranger));
    create_bucket(&s3, "shared").await;
    put(
        &s3,
        "shared",
        "report.pdf",
        ByteStream::from_static(b"report"),
    )
    .await;
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": [format!("arn:aws:iam::{}:root", partner.org)]},
                "Action": ["s3:GetObject", "s3:ListBucket", "s3:PutObject"],
                "Resource": ["arn:aws:s3:::shared", "arn:aws:s3:::shared/*"],
            },
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:DeleteObject",
                "Resource": "arn:aws:s3:::shared/*",
            }
        ]
    })
    .to_string();
    // Not public: Block Public Access, on, lets it through.
    s3.put_bucket_policy()
        .bucket("shared")
        .policy(&policy)
        .send()
        .await
        .expect("policy");
    assert_eq!(get_bytes(&sp, "shared", "report.pdf").await, &b"report"[..]);
    let listed = sp
        .list_objects_v2()
        .bucket("shared")
        .send()
        .await
        .expect("list");
    assert_eq!(listed.contents().len(), 1);
    put(
        &sp,
        "shared",
        "answer.pdf",
        ByteStream::from_static(b"answer"),
    )
    .await;
    assert_eq!(get_bytes(&s3, "shared", "answer.pdf").await, &b"answer"[..]);
    // What the policy does not name stays the owner's.
    assert_eq!(
        s3_code(
            sp.delete_object()
                .bucket("shared")
                .key("report.pdf")
                .send()
                .await
        ),
        "AccessDenied"
    );
    assert_eq!(
        s3_code(sp.get_bucket_policy().bucket("shared").send().await),
        "AccessDenied"
    );
    assert_eq!(
        s3_code(
            sp.copy_object()
                .bucket("shared")
                .key("copied")
                .copy_source("shared/report.pdf")
                .send()
                .await
        ),
        "AccessDenied",
        "a copy reads as the owner: not for a grantee"
    );
    assert_eq!(
        s3_code(
            sp.put_object()
                .bucket("shared")
                .key("locked")
                .object_lock_legal_hold_status(aws_sdk_s3::types::ObjectLockLegalHoldStatus::On)
                .body(ByteStream::from_static(b"x"))
                .send()
                .await
        ),
        "AccessDenied"
    );
    assert_eq!(
        s3_code(
            ss.get_object()
                .bucket("shared")
                .key("report.pdf")
                .send()
                .await
        ),
        "AccessDenied",
        "an organisation the policy does not name"
    );
    // The explicit deny holds for the owner too.
    assert_eq!(
        s3_code(
            s3.delete_object()
                .bucket("shared")
                .key("report.pdf")
                .send()
                .await
        ),
        "AccessDenied"
    );
    // A batch is judged key by key: the deny holds inside DeleteObjects.
    let batch = s3
        .delete_objects()
        .bucket("shared")
        .delete(
            aws_sdk_s3::types::Delete::builder()
                .objects(
                    aws_sdk_s3::types::ObjectIdentifier::builder()
                        .key("report.pdf")
                        .build()
                        .expect("identifier"),
                )
                .build()
                .expect("delete"),
        )
        .send()
        .await
        .expect("batch");
    assert_eq!(batch.errors().len(), 1);
    assert_eq!(batch.errors()[0].code(), Some("AccessDenied"));
    assert_eq!(get_bytes(&s3, "shared", "report.pdf").await, &b"report"[..]);
    // The partner's requests are in the owner's log, under its key.
    let log = access_log(&app, &owner.org).await;
    let partners: Vec<&Value> = log
        .iter()
        .filter(|e| e["access_key_id"] == partner.access_key_id.as_str())
        .collect();
    assert!(
        partners
            .iter()
            .any(|e| e["operation"] == "PutObject" && e["status"] == 200),
        "{partners:?}"
    );
    assert!(
        partners
            .iter()
            .any(|e| e["operation"] == "DeleteObject" && e["status"] == 403),
        "{partners:?}"
    );
    // Once the policy is gone, so is the partner's access.
    s3.delete_bucket_policy()
        .bucket("shared")
        .send()
        .await
        .expect("deleted");
    assert_eq!(
        s3_code(
            sp.get_object()
                .bucket("shared")
                .key("report.pdf")
                .send()
                .await
        ),
        "AccessDenied"
    );
}

#[tokio::test]
async fn conditions_pin_a_grant_to_addresses_prefixes_and_tls() {
    let app = spawn_app().await;
    let owner = app.tenant("Owner").await;
    let partner = app.tenant("Partner").await;
    let s3 = app.s3_client(&owner);
    let sp = app.s3_client(&partner);
    create_bucket(&s3, "pinned").await;
    put(&s3, "pinned", "docs/a", ByteStream::from_static(b"a")).await;
    let grant = |cidr: &str| {
        json!({
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": partner.org},
                    "Action": "s3:ListBucket",
                    "Resource": "arn:aws:s3:::pinned",
                    "Condition": {
                        "IpAddress": {"aws:SourceIp": cidr},
                        "StringLike": {"s3:prefix": "docs/*"}
                    }
                },
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::pinned/*",
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}}
                }
            ]
        })
        .to_string()
    };
    let list = |prefix: &'static str| sp.list_objects_v2().bucket("pinned").prefix(prefix).send();
    s3.put_bucket_policy()
        .bucket("pinned")
        .policy(grant("10.0.0.0/8"))
        .send()
        .await
        .expect("policy");
    assert_eq!(
        s3_code(list("docs/").await),
        "AccessDenied",
        "not from 10/8"
    );
    s3.put_bucket_policy()
        .bucket("pinned")
        .policy(grant("127.0.0.0/8"))
        .send()
        .await
        .expect("policy");
    assert_eq!(list("docs/").await.expect("listed").contents().len(), 1);
    assert_eq!(
        s3_code(list("other/").await),
        "AccessDenied",
        "outside docs/"
    );
    // This server speaks plain HTTP: reads are denied to everyone, the
    // owner included, while the rest of its rights hold.
    assert_eq!(
        s3_code(s3.get_object().bucket("pinned").key("docs/a").send().await),
        "AccessDenied"
    );
    s3.head_bucket()
        .bucket("pinned")
        .send()
        .await
        .expect("the owner still reaches its bucket");
    // A policy that cannot be evaluated exactly is refused whole.
    let odd = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::pinned/*",
            "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}}
        }]
    })
    .to_string();
    assert_eq!(
        s3_code(
            s3.put_bucket_policy()
                .bucket("pinned")
                .policy(odd)
                .send()
                .await
        ),
        "MalformedPolicy"
    );
    let elsewhere = public_read("another-bucket", "");
    assert_eq!(
        s3_code(
            s3.put_bucket_policy()
                .bucket("pinned")
                .policy(elsewhere)
                .send()
                .await
        ),
        "MalformedPolicy"
    );
}

#[tokio::test]
async fn a_region_can_keep_every_bucket_from_being_public() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("regions.toml");
    std::fs::write(
        &config,
        format!(
            "[[storage.regions]]\nname = \"fr-par\"\njurisdiction = \"FR\"\nlocation = \"Paris\"\n\
             path = \"{}\"\nblock_public_access = true\n",
            dir.path().join("blobs").display()
        ),
    )
    .expect("config");
    let app = spawn(crate::helpers::Spawn {
        args: vec!["--config".into(), config.display().to_string()],
        ..Default::default()
    })
    .await;
    let t = app.tenant("Publisher").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "closed").await;
    s3.put_public_access_block()
        .bucket("closed")
        .public_access_block_configuration(switches(false))
        .send()
        .await
        .expect("bucket switches off");
    open_org(&app, &t, false).await;
    let refused = s3
        .put_bucket_policy()
        .bucket("closed")
        .policy(public_read("closed", ""))
        .send()
        .await;
    assert_eq!(s3_code(refused), "AccessDenied", "the region keeps it shut");
}

#[tokio::test]
async fn only_an_organisations_managers_change_its_block_public_access() {
    let app = spawn_app().await;
    let t = app.tenant("Org").await;
    let (_, secret) = app
        .create_user(&t.org, "member@example.org", "member")
        .await;
    let secret = secret.as_str();
    let body = json!({
        "block_public_acls": false, "ignore_public_acls": false,
        "block_public_policy": false, "restrict_public_buckets": false,
    });
    let path = format!("/orgs/{}/public-access-block", t.org);
    let (status, problem) = app
        .call(Method::PUT, &path, secret, Some(body.clone()))
        .await;
    assert_eq!(status, 403, "{problem}");
    let (status, read) = app.call(Method::GET, &path, secret, None).await;
    assert_eq!(
        (status, read["block_public_policy"].clone()),
        (200, json!(true))
    );
    let (status, problem) = app
        .root(
            Method::PUT,
            &path,
            Some(json!({"block_public_acls": false})),
        )
        .await;
    assert_eq!(status, 422, "every switch is given: {problem}");
}

#[tokio::test]
async fn the_console_shows_and_sets_an_organisations_block_public_access() {
    let app = spawn_app().await;
    let t = app.tenant("Console").await;
    app.create_user(&t.org, "owner@console.example", "owner")
        .await;
    let session = app.console_session("owner@console.example").await;
    let page = || app.console_page(&session, "/s3-keys");
    let html = page().await;
    assert!(html.contains("Public access to the buckets"), "{html}");
    assert_eq!(
        html.matches("value=\"on\" checked").count(),
        4,
        "all on by default"
    );
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF field")
        .to_owned();
    let saved = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(format!("{}/s3-keys/public-access", app.console))
        .header("cookie", format!("nuage_session={session}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("block_public_acls", "on"),
            ("ignore_public_acls", "on"),
        ])
        .send()
        .await
        .expect("posted");
    assert_eq!(saved.status(), 303);
    let (status, now) = app
        .root(
            Method::GET,
            &format!("/orgs/{}/public-access-block", t.org),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            now["block_public_acls"].clone(),
            now["block_public_policy"].clone(),
            now["restrict_public_buckets"].clone()
        ),
        (json!(true), json!(false), json!(false))
    );
    assert_eq!(page().await.matches("value=\"on\" checked").count(), 2);
}
