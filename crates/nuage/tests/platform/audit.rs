//! The audit trail: every change recorded, organisations read their own
//! entries, and tampering with the database is detected and located.

use reqwest::Method;
use serde_json::json;
use sqlx::AnyConnection;

use crate::helpers::{Spawn, TestApp, random_root_token, spawn, spawn_app};

#[tokio::test]
async fn organisations_read_their_own_entries() {
    let app = spawn_app().await;
    let a = app.create_org("Audited A").await;
    let b = app.create_org("Audited B").await;
    let (alice_id, alice) = app.create_user(&a, "alice@a.fr", "owner").await;
    app.call(Method::POST, &format!("/orgs/{a}/s3-keys"), &alice, None)
        .await;
    app.root(Method::POST, &format!("/orgs/{b}/s3-keys"), None)
        .await;
    let (s, page) = app
        .call(
            Method::GET,
            &format!("/orgs/{a}/audit?limit=500"),
            &alice,
            None,
        )
        .await;
    assert_eq!(s, 200, "{page}");
    let entries = page["items"].as_array().expect("items");
    let actions: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        vec!["s3_key.create", "user.create", "org.create"],
        "newest first, only A's"
    );
    let key_entry = &entries[0];
    assert_eq!(key_entry["actor"], format!("user:{alice_id}"));
    assert_eq!(
        key_entry["source"], "127.0.0.1",
        "where the request came from"
    );
    assert!(
        key_entry["at_ms"]
            .as_i64()
            .is_some_and(|t| t > 1_700_000_000_000)
    );
    assert!(entries.iter().all(|e| e["org_id"] == a));
    // Reads are not audited.
    app.call(Method::GET, &format!("/orgs/{a}"), &alice, None)
        .await;
    let (_, again) = app
        .call(Method::GET, &format!("/orgs/{a}/audit"), &alice, None)
        .await;
    assert_eq!(again["items"].as_array().map(Vec::len), Some(3));
}

/// A platform with a few audited actions, and a database connection to it.
async fn platform_with_history() -> (TestApp, AnyConnection) {
    let app = spawn_app().await;
    for name in ["One", "Two", "Three", "Four"] {
        app.create_org(name).await;
    }
    let verdict = app.cli(&["audit", "verify", "--json"], None);
    assert_eq!(
        verdict.code, 0,
        "intact before tampering: {} {}",
        verdict.stdout, verdict.stderr
    );
    assert_eq!(
        verdict.json()["entries"],
        7,
        "the root token's creation, the platform's first keys, the house provider and four organisations"
    );
    let db = app.database().await;
    (app, db)
}

async fn run(db: &mut AnyConnection, statements: &[&str]) {
    for s in statements {
        sqlx::query(s)
            .execute(&mut *db)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

fn assert_broken_at(app: &TestApp, seq: i64) {
    let verdict = app.cli(&["audit", "verify", "--json"], None);
    assert_eq!(
        verdict.code, 1,
        "tampering must be reported: {} {}",
        verdict.stdout, verdict.stderr
    );
    let report = verdict.json();
    assert_eq!(report["intact"], false);
    assert_eq!(report["broken_at"], seq, "{report}");
    let text = app.cli(&["audit", "verify"], None);
    assert_eq!(text.code, 1);
    assert!(
        text.stdout.contains(&format!("entry {seq}")),
        "the human output says where: {}",
        text.stdout
    );
}

#[tokio::test]
async fn an_edited_entry_is_detected() {
    let (app, mut db) = platform_with_history().await;
    run(
        &mut db,
        &["UPDATE audit_log SET details = '{\"name\":\"Forged\"}' WHERE seq = 3"],
    )
    .await;
    assert_broken_at(&app, 3);
}

/// A record's link checks only with the audit key of the epoch it names:
/// moving it to another epoch is tampering, found where it was done.
#[tokio::test]
async fn a_record_moved_to_another_key_epoch_is_detected() {
    let (app, mut db) = platform_with_history().await;
    let (status, rotated) = app
        .root(Method::POST, "/platform/keys/audit/rotate", None)
        .await;
    assert_eq!(status, 201, "{rotated}");
    app.create_org("Five").await;
    let verdict = app.cli(&["audit", "verify", "--json"], None);
    assert_eq!(verdict.code, 0, "both epochs check: {}", verdict.stdout);
    assert_eq!(verdict.json()["entries"], 9);
    run(
        &mut db,
        &["UPDATE audit_log SET key_epoch = 2 WHERE seq = 3"],
    )
    .await;
    assert_broken_at(&app, 3);
}

#[tokio::test]
async fn a_deleted_entry_is_detected() {
    let (app, mut db) = platform_with_history().await;
    run(&mut db, &["DELETE FROM audit_log WHERE seq = 2"]).await;
    assert_broken_at(&app, 2);
}

#[tokio::test]
async fn reordered_entries_are_detected() {
    let (app, mut db) = platform_with_history().await;
    run(
        &mut db,
        &[
            "UPDATE audit_log SET seq = -1 WHERE seq = 2",
            "UPDATE audit_log SET seq = 2 WHERE seq = 3",
            "UPDATE audit_log SET seq = 3 WHERE seq = -1",
        ],
    )
    .await;
    assert_broken_at(&app, 2);
}

#[tokio::test]
async fn a_truncated_tail_is_detected_even_with_a_rewound_head() {
    let (app, mut db) = platform_with_history().await;
    // Remove the last two entries and rewind the head so the rest looks whole:
    // only the signed checkpoint outside the database shows what is missing.
    run(
        &mut db,
        &[
            "DELETE FROM audit_log WHERE seq > 3",
            "UPDATE audit_head SET seq = 3, link = (SELECT link FROM audit_log WHERE seq = 3)",
        ],
    )
    .await;
    assert_broken_at(&app, 4);
}

#[tokio::test]
async fn a_forged_checkpoint_is_detected() {
    let (app, _db) = platform_with_history().await;
    let path = app.data_dir.join("audit-checkpoint.json");
    let text = std::fs::read_to_string(&path).expect("checkpoint file");
    let mut checkpoint: serde_json::Value = serde_json::from_str(&text).expect("json");
    checkpoint["seq"] = json!(2);
    std::fs::write(&path, checkpoint.to_string()).expect("write");
    let verdict = app.cli(&["audit", "verify", "--json"], None);
    assert_eq!(verdict.code, 1, "{}", verdict.stdout);
    assert!(
        verdict.json()["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("signature")
    );
}

#[tokio::test]
async fn verify_exits_2_when_it_cannot_check() {
    let app = spawn_app().await;
    let org = app.create_org("Plain").await;
    let (_, token) = app.create_user(&org, "plain@user.fr", "owner").await;
    let denied = crate::helpers::run_cli(&app.console, &token, &["audit", "verify"], None);
    assert_eq!(
        denied.code, 2,
        "a user who is not the operator cannot check: {}",
        denied.stderr
    );
    let down = crate::helpers::run_cli(
        "http://127.0.0.1:9",
        &app.root_token,
        &["audit", "verify"],
        None,
    );
    assert_eq!(down.code, 2, "{}", down.stderr);
}

#[tokio::test]
async fn the_server_starts_on_a_broken_chain_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let token = random_root_token();
    let app = spawn(Spawn {
        data_dir: Some(data_dir.clone()),
        root_token: Some(token.clone()),
        ..Spawn::default()
    })
    .await;
    app.create_org("Before").await;
    app.create_operator("ops@nuage.test");
    let calm = app.console_page_as("ops@nuage.test", "/").await;
    assert!(
        !calm.contains("chain is broken"),
        "no alarm on an intact chain"
    );
    let database_url = app.database_url.clone();
    let mut db = app.database().await;
    run(
        &mut db,
        &["UPDATE audit_log SET actor = 'someone else' WHERE seq = 1"],
    )
    .await;
    drop(db);
    drop(app);
    let app = spawn(Spawn {
        data_dir: Some(data_dir),
        root_token: Some(token),
        database_url: Some(database_url),
        ..Spawn::default()
    })
    .await;
    assert!(app.log().contains("AUDIT CHAIN IS BROKEN"), "{}", app.log());
    let metrics = app
        .http
        .get(format!("{}/metrics", app.console))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("nuage_audit_chain_intact 0"), "{metrics}");
    assert_eq!(app.cli(&["audit", "verify"], None).code, 1);

    // Operators see the alarm on every console page.
    let page = app.console_page_as("ops@nuage.test", "/").await;
    assert!(
        page.contains("chain is broken") && page.contains("role=\"alert\""),
        "{page}"
    );
}
