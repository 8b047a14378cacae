//! An organisation's key turns without rewriting its data: a new version
//! wraps every data key from then on, the earlier ones are rewrapped by a
//! resumable job while reads and writes go on, and every object still reads.

use aws_sdk_s3::primitives::ByteStream;
use reqwest::Method;
use sqlx::Row;

use crate::helpers::{Spawn, Tenant, TestApp, create_bucket, get_bytes, put, spawn, spawn_app};

/// `n` objects `o{i}` holding `body {i}`.
async fn fill(s3: &aws_sdk_s3::Client, bucket: &str, n: usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (s3, bucket) = (s3.clone(), bucket.to_owned());
        tasks.spawn(async move {
            put(
                &s3,
                bucket,
                format!("o{i}"),
                ByteStream::from(format!("body {i}").into_bytes()),
            )
            .await;
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("put");
    }
}

async fn all_read(s3: &aws_sdk_s3::Client, bucket: &str, n: usize) {
    for i in 0..n {
        assert_eq!(
            get_bytes(s3, bucket, format!("o{i}")).await,
            format!("body {i}").into_bytes(),
            "o{i}"
        );
    }
}

/// The versions of the organisation's key the stored data keys name.
async fn versions_in_use(app: &TestApp, bucket: &str) -> Vec<String> {
    let mut db = app.database().await;
    let mut versions: Vec<String> = sqlx::query("SELECT segments FROM objects WHERE bucket = $1")
        .bind(bucket)
        .fetch_all(&mut db)
        .await
        .expect("objects")
        .iter()
        .flat_map(|row| {
            let segments: serde_json::Value =
                serde_json::from_str(&row.get::<String, _>(0)).expect("segments");
            segments
                .as_array()
                .expect("a list")
                .iter()
                .map(|s| {
                    let key = s["key"].as_str().expect("a key");
                    key.split_once(':').map_or("1", |(v, _)| v).to_owned()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    versions.sort();
    versions.dedup();
    versions
}

/// Asks for a new version of the tenant's organisation key as `token`.
pub(crate) async fn rotate(
    app: &TestApp,
    tenant: &Tenant,
    token: &str,
) -> (u16, serde_json::Value) {
    app.call(
        Method::POST,
        &format!("/orgs/{}/key/rotate", tenant.org),
        token,
        None,
    )
    .await
}

async fn key_state(app: &TestApp, tenant: &Tenant) -> serde_json::Value {
    let (status, state) = app
        .root(Method::GET, &format!("/orgs/{}/key", tenant.org), None)
        .await;
    assert_eq!(status, 200, "{state}");
    state
}

#[tokio::test]
async fn an_organisation_key_turns_under_load_and_every_object_still_reads() {
    let app = spawn_app().await;
    let tenant = app.tenant("Clé Tournante").await;
    let s3 = app.s3_client(&tenant);
    create_bucket(&s3, "tournante").await;
    fill(&s3, "tournante", 40).await;
    // An upload under way keeps its part through the rotation.
    let upload = s3
        .create_multipart_upload()
        .bucket("tournante")
        .key("big")
        .send()
        .await
        .expect("upload");
    let upload_id = upload.upload_id().expect("id").to_owned();
    let part = s3
        .upload_part()
        .bucket("tournante")
        .key("big")
        .upload_id(&upload_id)
        .part_number(1)
        .body(ByteStream::from(vec![7u8; 5 * 1024 * 1024]))
        .send()
        .await
        .expect("part");
    assert_eq!(versions_in_use(&app, "tournante").await, ["1"]);

    // A member who is not an owner cannot turn it.
    let (_, member) = app
        .create_user(&tenant.org, "admin@tournante.fr", "admin")
        .await;
    let (status, body) = rotate(&app, &tenant, &member).await;
    assert_eq!(status, 403, "{body}");
    let (_, owner) = app
        .create_user(&tenant.org, "owner@tournante.fr", "owner")
        .await;
    let (status, rotated) = rotate(&app, &tenant, &owner).await;
    assert_eq!(status, 201, "{rotated}");
    assert_eq!(rotated["version"], 2);
    assert_eq!(rotated["rewrapping"], true);
    assert_eq!(rotated["remaining_objects"], 40, "{rotated}");
    // One rotation at a time.
    let (status, body) = rotate(&app, &tenant, &owner).await;
    assert_eq!(status, 409, "{body}");

    // Reads and writes go on while the job rewraps.
    let load = {
        let s3 = s3.clone();
        tokio::spawn(async move {
            for i in 0..30 {
                put(
                    &s3,
                    "tournante",
                    format!("during{i}"),
                    ByteStream::from_static(b"during"),
                )
                .await;
                assert_eq!(
                    get_bytes(&s3, "tournante", format!("o{}", i % 40)).await,
                    format!("body {}", i % 40).into_bytes()
                );
            }
        })
    };
    let outcome = app.run_job("key-rewrap").await;
    load.await.expect("the load ran through");
    assert!(outcome.contains("41 data keys rewrapped"), "{outcome}");
    let state = key_state(&app, &tenant).await;
    assert_eq!(
        (state["version"].as_i64(), state["rewrapping"].as_bool()),
        (Some(2), Some(false)),
        "{state}"
    );
    assert_eq!(versions_in_use(&app, "tournante").await, ["2"]);

    all_read(&s3, "tournante", 40).await;
    assert_eq!(
        get_bytes(&s3, "tournante", "during29").await,
        b"during".to_vec()
    );
    let done = s3
        .complete_multipart_upload()
        .bucket("tournante")
        .key("big")
        .upload_id(&upload_id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .parts(
                    aws_sdk_s3::types::CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().expect("etag"))
                        .build(),
                )
                .build(),
        )
        .send()
        .await;
    assert!(done.is_ok(), "{done:?}");
    assert_eq!(
        get_bytes(&s3, "tournante", "big").await,
        vec![7u8; 5 * 1024 * 1024]
    );

    // It turns again once done; the organisation reads both in its trail.
    let (status, again) = rotate(&app, &tenant, &owner).await;
    assert_eq!(
        (status, again["version"].as_i64()),
        (201, Some(3)),
        "{again}"
    );
    let (_, trail) = app
        .call(
            Method::GET,
            &format!("/orgs/{}/audit?limit=500", tenant.org),
            &owner,
            None,
        )
        .await;
    let actions: Vec<&str> = trail["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| a.starts_with("org.key."))
        .collect();
    assert_eq!(
        actions,
        ["org.key.rotate", "org.key.rotated", "org.key.rotate"]
    );
}

/// A node that dies in the middle of a rewrap leaves every object readable,
/// and the next run goes on from where it stopped.
#[tokio::test]
async fn a_crash_in_the_middle_of_a_rewrap_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let app = spawn(Spawn {
        data_dir: Some(data_dir.clone()),
        env: vec![("NUAGE_TEST_CRASH_AT".into(), "storage.rewrap.page".into())],
        process: true,
        ..Spawn::default()
    })
    .await;
    let tenant = app.tenant("Clé Interrompue").await;
    let s3 = app.s3_client(&tenant);
    create_bucket(&s3, "interrompue").await;
    // More than a page (64 object versions per transaction).
    fill(&s3, "interrompue", 100).await;
    let (status, rotated) = rotate(&app, &tenant, &app.root_token).await;
    assert_eq!(status, 201, "{rotated}");
    let crashed = app
        .http
        .post(app.url("/jobs/key-rewrap/run"))
        .bearer_auth(&app.root_token)
        .send()
        .await;
    assert!(crashed.is_err(), "the node died in the rewrap: {crashed:?}");
    let (database_url, root_token) = (app.database_url.clone(), app.root_token.clone());
    drop(app);

    let app = spawn(Spawn {
        data_dir: Some(data_dir),
        database_url: Some(database_url),
        root_token: Some(root_token),
        ..Spawn::default()
    })
    .await;
    let s3 = app.s3_client(&tenant);
    // A page was committed before the crash, the rest was not (the dead
    // node still holds the job's lease: nothing runs meanwhile).
    let state = key_state(&app, &tenant).await;
    assert_eq!(state["rewrapping"], true, "{state}");
    assert_eq!(state["rewrapped"], 64, "{state}");
    assert_eq!(state["remaining_objects"], 36, "{state}");
    assert_eq!(versions_in_use(&app, "interrompue").await, ["1", "2"]);
    all_read(&s3, "interrompue", 100).await;
    // Once the dead node's lease lapses (after its minute, passed here at
    // once), the job goes on (on its own or when run) and finishes.
    sqlx::query("UPDATE jobs SET lease_until = 0 WHERE name = 'key-rewrap'")
        .execute(&mut app.database().await)
        .await
        .expect("lease lapsed");
    app.run_job("key-rewrap").await;
    let state = key_state(&app, &tenant).await;
    assert_eq!(state["rewrapping"], false, "{state}");
    assert_eq!(versions_in_use(&app, "interrompue").await, ["2"]);
    all_read(&s3, "interrompue", 100).await;
}

/// The operator's command line turns an organisation's key and rewraps at
/// once.
#[tokio::test]
async fn the_command_line_turns_an_organisation_key() {
    let app = spawn_app().await;
    let tenant = app.tenant("Clé En Ligne").await;
    let s3 = app.s3_client(&tenant);
    create_bucket(&s3, "en-ligne").await;
    fill(&s3, "en-ligne", 3).await;
    let out = app.cli(
        &["admin", "keys", "rotate", "org", "--org", &tenant.org],
        None,
    );
    assert_eq!(out.code, 0, "{} {}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("organisation key version 2: every data key rewrapped"),
        "{}",
        out.stdout
    );
    let out = app.cli(&["admin", "keys", "rotate", "org"], None);
    assert_eq!(out.code, 2, "a usage error: {}", out.stdout);
    assert!(out.stderr.contains("--org"), "{}", out.stderr);
    all_read(&s3, "en-ligne", 3).await;
}

/// An owner sees the organisation's key and turns it from the console's
/// security page; other members do not see it.
#[tokio::test]
async fn an_owner_turns_the_organisation_key_in_the_console() {
    let app = spawn_app().await;
    let tenant = app.tenant("Clé Console").await;
    let s3 = app.s3_client(&tenant);
    create_bucket(&s3, "console").await;
    fill(&s3, "console", 2).await;
    app.create_user(&tenant.org, "owner@console.fr", "owner")
        .await;
    app.create_user(&tenant.org, "admin@console.fr", "admin")
        .await;
    let admin = app.console_page_as("admin@console.fr", "/security").await;
    assert!(!admin.contains("id=\"org-key\""), "{admin}");
    let session = app.console_session("owner@console.fr").await;
    let page = app.console_page(&session, "/security").await;
    assert!(page.contains("Organisation key"), "{page}");
    assert!(page.contains("<dd id=\"org-key-version\">1</dd>"), "{page}");
    let posted = app
        .console_post(&session, "/security", "/security/org-key/rotate", &[])
        .await;
    assert_eq!(posted.status(), 303, "{:?}", posted.text().await);
    assert_eq!(
        posted.headers()["location"],
        "/security?notice=org_key_rotated#org-key"
    );
    let page = app
        .console_page(&session, "/security?notice=org_key_rotated")
        .await;
    assert!(page.contains("<dd id=\"org-key-version\">2</dd>"), "{page}");
    assert!(
        page.contains("<dd id=\"org-key-progress\">0 · 2</dd>"),
        "{page}"
    );
    assert!(page.contains("New key version"), "{page}");
    assert!(
        !page.contains("/security/org-key/rotate"),
        "one rotation at a time: {page}"
    );
    app.run_job("key-rewrap").await;
    let page = app.console_page(&session, "/security").await;
    assert!(!page.contains("org-key-progress"), "{page}");
    all_read(&s3, "console", 2).await;
}
