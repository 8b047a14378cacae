//! The platform's keys: published with their history, turned by the
//! operator alone, and what older epochs made (wrapped organisation keys,
//! audit links, signatures) still reads and checks after they turn.

use aws_sdk_s3::primitives::ByteStream;
use reqwest::Method;
use serde_json::Value;
use sqlx::Row;

use crate::helpers::{
    NUAGE, Spawn, TestApp, create_bucket, get_bytes, output_within_a_minute, put,
    random_root_token, spawn,
};

/// The published keys, asked without credentials.
async fn published(app: &TestApp) -> Vec<Value> {
    let keys: Value = app
        .http
        .get(app.url("/platform/keys"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    keys.as_array().expect("a list").clone()
}

fn key<'a>(keys: &'a [Value], purpose: &str, epoch: i64) -> &'a Value {
    keys.iter()
        .find(|k| k["purpose"] == purpose && k["epoch"] == epoch)
        .unwrap_or_else(|| panic!("no {purpose} key of epoch {epoch}: {keys:?}"))
}

#[tokio::test]
async fn each_key_turns_to_a_new_epoch_and_what_older_epochs_made_still_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let token = random_root_token();
    let app = spawn(Spawn {
        data_dir: Some(data_dir.clone()),
        root_token: Some(token.clone()),
        ..Spawn::default()
    })
    .await;

    // Epoch 1 of each purpose is published from the first start; only the
    // signing key has a public half.
    let keys = published(&app).await;
    assert_eq!(keys.len(), 3, "{keys:?}");
    for purpose in ["kek", "audit", "signing"] {
        let k = key(&keys, purpose, 1);
        assert!(k["retired_at_ms"].is_null(), "{k}");
        assert_eq!(k["provider"], "file");
        assert_eq!(k["fingerprint"].as_str().map(str::len), Some(32), "{k}");
        assert_eq!(k["public_key"].is_string(), purpose == "signing", "{k}");
    }
    let (_, info) = app.root(Method::GET, "/platform", None).await;
    assert_eq!(
        info["signing_public_key"],
        key(&keys, "signing", 1)["public_key"]
    );
    assert_eq!(info["signing_key_epoch"], 1);

    // An object written under the first key-encryption key.
    let tenant = app.tenant("Avant Rotation").await;
    let s3 = app.s3_client(&tenant);
    create_bucket(&s3, "avant-rotation").await;
    put(
        &s3,
        "avant-rotation",
        "before.txt",
        ByteStream::from_static(b"written at epoch 1"),
    )
    .await;

    // Only the operator turns a key; a key the platform has not is refused.
    let (_, owner) = app
        .create_user(&tenant.org, "owner@avant.fr", "owner")
        .await;
    let (status, body) = app
        .call(Method::POST, "/platform/keys/kek/rotate", &owner, None)
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = app
        .root(Method::POST, "/platform/keys/master/rotate", None)
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("kek, audit or signing"),
        "{body}"
    );
    assert_eq!(published(&app).await.len(), 3, "nothing changed");

    for purpose in ["kek", "audit", "signing"] {
        let (status, rotated) = app
            .root(
                Method::POST,
                &format!("/platform/keys/{purpose}/rotate"),
                None,
            )
            .await;
        assert_eq!(status, 201, "{rotated}");
        assert_eq!(
            (rotated["purpose"].as_str(), rotated["epoch"].as_i64()),
            (Some(purpose), Some(2))
        );
    }
    let keys = published(&app).await;
    assert_eq!(keys.len(), 6, "the history is kept: {keys:?}");
    for purpose in ["kek", "audit", "signing"] {
        assert!(key(&keys, purpose, 1)["retired_at_ms"].is_i64(), "{keys:?}");
        assert!(
            key(&keys, purpose, 2)["retired_at_ms"].is_null(),
            "{keys:?}"
        );
        assert_ne!(
            key(&keys, purpose, 1)["fingerprint"],
            key(&keys, purpose, 2)["fingerprint"]
        );
    }
    let (_, info) = app.root(Method::GET, "/platform", None).await;
    assert_eq!(
        info["signing_public_key"],
        key(&keys, "signing", 2)["public_key"]
    );
    assert_eq!(info["signing_key_epoch"], 2);

    // The organisation key is rewrapped by the job, not before; its key
    // does not change, so no object is rewritten.
    let (status, progress) = app.root(Method::GET, "/platform/keys/rewrap", None).await;
    assert_eq!(status, 200, "{progress}");
    assert_eq!(
        (
            progress["epoch"].as_i64(),
            progress["rewrapped"].as_i64(),
            progress["remaining"].as_i64()
        ),
        (Some(2), Some(0), Some(1)),
        "{progress}"
    );
    let (status, body) = app
        .call(Method::GET, "/platform/keys/rewrap", &owner, None)
        .await;
    assert_eq!(status, 403, "{body}");
    let outcome = app.run_job("key-rewrap").await;
    assert!(
        outcome.contains("1 organisation keys wrapped at epoch 2, 0 behind"),
        "{outcome}"
    );
    let mut db = app.database().await;
    let stored = sqlx::query("SELECT sealed_key, kek_epoch FROM org_keys")
        .fetch_all(&mut db)
        .await
        .expect("org keys");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].get::<i64, _>("kek_epoch"), 2);
    assert!(stored[0].get::<String, _>("sealed_key").starts_with("2:"));

    // Written after: an object, and audit records linked with the audit
    // key of epoch 2 beside those of epoch 1; the chain checks across both.
    put(
        &s3,
        "avant-rotation",
        "after.txt",
        ByteStream::from_static(b"written at epoch 2"),
    )
    .await;
    app.create_org("Après Rotation").await;
    let epochs: Vec<i64> =
        sqlx::query("SELECT DISTINCT key_epoch FROM audit_log ORDER BY key_epoch")
            .fetch_all(&mut db)
            .await
            .expect("epochs")
            .iter()
            .map(|r| r.get::<i64, _>(0))
            .collect();
    assert_eq!(epochs, [1, 2]);
    let rotations: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'platform.key.rotate'")
            .fetch_one(&mut db)
            .await
            .expect("count");
    assert_eq!(rotations, 3, "each rotation is audited");
    let verdict = app.cli(&["audit", "verify", "--json"], None);
    assert_eq!(verdict.code, 0, "{} {}", verdict.stdout, verdict.stderr);
    let checkpoint: Value = serde_json::from_str(
        &std::fs::read_to_string(data_dir.join("audit-checkpoint.json")).expect("checkpoint"),
    )
    .expect("json");
    assert_eq!(
        checkpoint["key_epoch"], 2,
        "signed with the new signing key"
    );
    let database_url = app.database_url.clone();
    drop(db);
    drop(app);

    // A node that starts afresh (no key in memory) unwraps the rewrapped
    // key, reads both objects, and finds the chain and its checkpoint good.
    let app = spawn(Spawn {
        data_dir: Some(data_dir),
        root_token: Some(token),
        database_url: Some(database_url),
        ..Spawn::default()
    })
    .await;
    assert!(
        !app.log().contains("AUDIT CHAIN IS BROKEN"),
        "{}",
        app.log()
    );
    let s3 = app.s3_client(&tenant);
    assert_eq!(
        &get_bytes(&s3, "avant-rotation", "before.txt").await[..],
        b"written at epoch 1"
    );
    assert_eq!(
        &get_bytes(&s3, "avant-rotation", "after.txt").await[..],
        b"written at epoch 2"
    );
    let verdict = app.cli(&["audit", "verify", "--json"], None);
    assert_eq!(verdict.code, 0, "{} {}", verdict.stdout, verdict.stderr);
}

/// The operator's command line lists and turns keys; turning the
/// key-encryption key rewraps the organisation keys at once.
#[tokio::test]
async fn the_command_line_lists_and_turns_keys() {
    let app = spawn(Spawn::default()).await;
    let tenant = app.tenant("Clé En Main").await;
    let s3 = app.s3_client(&tenant);
    create_bucket(&s3, "cle-en-main").await;
    put(&s3, "cle-en-main", "a.txt", ByteStream::from_static(b"a")).await;
    let out = app.cli(&["admin", "keys", "rotate", "kek", "--json"], None);
    assert_eq!(out.code, 0, "{} {}", out.stdout, out.stderr);
    let answer = out.json();
    assert_eq!(answer["key"]["epoch"], 2);
    assert_eq!(answer["rewrap"]["remaining"], 0, "{answer}");
    assert_eq!(answer["rewrap"]["rewrapped"], 1, "{answer}");
    let out = app.cli(&["admin", "keys", "list"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", out.stdout);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("kek\tepoch 2\tfile\t") && l.ends_with("current")),
        "{}",
        out.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("kek\tepoch 1\t") && l.contains("retired")),
        "{}",
        out.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("signing\tepoch 1\t") && l.contains("public key ")),
        "{}",
        out.stdout
    );
    let out = app.cli(&["admin", "keys", "rotate", "master"], None);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains("kek, audit or signing"),
        "{}",
        out.stderr
    );
}

/// An organisation key sealed by an earlier version (with the master key's
/// sealing key, before key-encryption keys had epochs) still opens, and the
/// first start of this version rewraps it under the key-encryption key.
#[tokio::test]
async fn keys_sealed_before_epochs_are_rewrapped_at_start() {
    use nuage_service::{FileKeyProvider, KeyProvider, MasterKey};

    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let token = random_root_token();
    let app = spawn(Spawn {
        data_dir: Some(data_dir.clone()),
        root_token: Some(token.clone()),
        ..Spawn::default()
    })
    .await;
    let tenant = app.tenant("Ancienne Version").await;
    let s3 = app.s3_client(&tenant);
    create_bucket(&s3, "ancienne").await;
    put(&s3, "ancienne", "old.txt", ByteStream::from_static(b"kept")).await;
    // The key as an earlier version stored it.
    let (master, _) =
        MasterKey::load_or_generate(&data_dir.join("master.key")).expect("master key");
    let master = std::sync::Arc::new(master);
    let org = nuage_domain::ids::OrgId::parse(&tenant.org).expect("org id");
    let mut db = app.database().await;
    let stored: String = sqlx::query_scalar("SELECT sealed_key FROM org_keys")
        .fetch_one(&mut db)
        .await
        .expect("org key");
    let plain = FileKeyProvider::new(master.clone())
        .unwrap_org_key(&org, &stored)
        .await
        .expect("unwrap");
    sqlx::query("UPDATE org_keys SET sealed_key = $1, kek_epoch = 0")
        .bind(master.seal(&plain))
        .execute(&mut db)
        .await
        .expect("downgrade");
    let database_url = app.database_url.clone();
    drop(db);
    drop(app);

    let app = spawn(Spawn {
        data_dir: Some(data_dir),
        root_token: Some(token),
        database_url: Some(database_url),
        ..Spawn::default()
    })
    .await;
    let s3 = app.s3_client(&tenant);
    assert_eq!(&get_bytes(&s3, "ancienne", "old.txt").await[..], b"kept");
    // The start's run of the job (or this one, if it has not run yet).
    app.run_job("key-rewrap").await;
    let mut db = app.database().await;
    let (sealed, epoch): (String, i64) =
        sqlx::query_as("SELECT sealed_key, kek_epoch FROM org_keys")
            .fetch_one(&mut db)
            .await
            .expect("org key");
    assert_eq!(epoch, 1);
    assert!(sealed.starts_with("1:"), "{sealed}");
}

/// The settings of the SoftHSM2 token nextest's setup script made for the
/// run (scripts/ensure-softhsm), under labels of this test's own.
fn softhsm_env(prefix: &str) -> Vec<(String, String)> {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run the tests with cargo nextest (scripts/ensure-softhsm)")
        })
    };
    [
        ("NUAGE_KEYS__PROVIDER", "pkcs11".to_owned()),
        ("NUAGE_KEYS__PKCS11__MODULE", var("SOFTHSM_TEST_MODULE")),
        ("NUAGE_KEYS__PKCS11__TOKEN_LABEL", var("SOFTHSM_TEST_TOKEN")),
        // Quoted: figment would read digits alone as a number.
        ("NUAGE_KEYS__PKCS11__PIN", "\"1234\"".to_owned()),
        ("NUAGE_KEYS__PKCS11__LABEL_PREFIX", prefix.to_owned()),
    ]
    .map(|(k, v)| (k.to_owned(), v))
    .to_vec()
}

/// An operator moves the platform's keys into an HSM by configuring it and
/// rotating: new epochs are made and used inside the HSM, the epochs the
/// master key file made stay readable, and the master key file alone no
/// longer opens an organisation's key.
#[tokio::test]
async fn keys_move_into_an_hsm_by_rotation() {
    use nuage_service::{FileKeyProvider, KeyProvider, MasterKey};

    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let token = random_root_token();
    let hsm = softhsm_env(&format!("it-{}", uuid::Uuid::new_v4().simple()));
    let app = spawn(Spawn {
        data_dir: Some(data_dir.clone()),
        root_token: Some(token.clone()),
        ..Spawn::default()
    })
    .await;
    let tenant = app.tenant("Vers Le HSM").await;
    let s3 = app.s3_client(&tenant);
    create_bucket(&s3, "vers-le-hsm").await;
    put(
        &s3,
        "vers-le-hsm",
        "file.txt",
        ByteStream::from_static(b"under the file's key"),
    )
    .await;
    let database_url = app.database_url.clone();
    drop(app);

    let node = |env: Vec<(String, String)>| Spawn {
        data_dir: Some(data_dir.clone()),
        root_token: Some(token.clone()),
        database_url: Some(database_url.clone()),
        env,
        ..Spawn::default()
    };
    let app = spawn(node(hsm.clone())).await;
    let s3 = app.s3_client(&tenant);
    for purpose in ["kek", "audit", "signing"] {
        let (status, rotated) = app
            .root(
                Method::POST,
                &format!("/platform/keys/{purpose}/rotate"),
                None,
            )
            .await;
        assert_eq!(status, 201, "{rotated}");
        assert_eq!(rotated["provider"], "pkcs11", "{rotated}");
    }
    let keys = published(&app).await;
    for purpose in ["kek", "audit", "signing"] {
        assert_eq!(key(&keys, purpose, 1)["provider"], "file", "{keys:?}");
        assert_eq!(key(&keys, purpose, 2)["provider"], "pkcs11", "{keys:?}");
    }
    let outcome = app.run_job("key-rewrap").await;
    assert!(
        outcome.contains("1 organisation keys wrapped at epoch 2, 0 behind"),
        "{outcome}"
    );
    put(
        &s3,
        "vers-le-hsm",
        "hsm.txt",
        ByteStream::from_static(b"under the HSM's key"),
    )
    .await;
    app.create_org("Après Le HSM").await;
    let verdict = app.cli(&["audit", "verify", "--json"], None);
    assert_eq!(verdict.code, 0, "{} {}", verdict.stdout, verdict.stderr);

    // The master key file alone no longer opens the organisation's key.
    let (master, _) =
        MasterKey::load_or_generate(&data_dir.join("master.key")).expect("master key");
    let mut db = app.database().await;
    let stored: String = sqlx::query_scalar("SELECT sealed_key FROM org_keys")
        .fetch_one(&mut db)
        .await
        .expect("org key");
    let org = nuage_domain::ids::OrgId::parse(&tenant.org).expect("org id");
    assert!(
        FileKeyProvider::new(std::sync::Arc::new(master))
            .unwrap_org_key(&org, &stored)
            .await
            .is_err(),
        "the key-encryption key is in the HSM"
    );
    drop(db);
    drop(app);

    // A node without the HSM refuses to start, saying why.
    let out = output_within_a_minute(
        std::process::Command::new(NUAGE)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--s3-listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(&data_dir)
            .env("NUAGE_DATABASE__URL", &database_url)
            .env("NUAGE_ROOT_TOKEN", &token),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in the pkcs11 key provider"), "{stderr}");

    // With it, everything reads, and the chain and its checkpoint (signed
    // in the HSM) check.
    let app = spawn(node(hsm)).await;
    assert!(
        !app.log().contains("AUDIT CHAIN IS BROKEN"),
        "{}",
        app.log()
    );
    let s3 = app.s3_client(&tenant);
    assert_eq!(
        &get_bytes(&s3, "vers-le-hsm", "file.txt").await[..],
        b"under the file's key"
    );
    assert_eq!(
        &get_bytes(&s3, "vers-le-hsm", "hsm.txt").await[..],
        b"under the HSM's key"
    );
    let verdict = app.cli(&["audit", "verify", "--json"], None);
    assert_eq!(verdict.code, 0, "{} {}", verdict.stdout, verdict.stderr);
}
