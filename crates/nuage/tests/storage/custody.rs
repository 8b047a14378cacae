//! An organisation holds its key in its own KMS (KMIP, PyKMIP's server
//! here): its content is readable only while the KMS releases the key;
//! revoking the key or losing the KMS stops content operations at once
//! (the cache lifetime is 0 here), not listings, nor other tenants.

use aws_sdk_s3::primitives::ByteStream;
use nuage_service::key_provider::kmip::RevocationReason;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Spawn, Tenant, TestApp, create_bucket, get_bytes, put, s3_code, spawn};
use crate::storage::key_rotation::rotate;

#[path = "../../../service/tests/support/pykmip.rs"]
mod pykmip;
use pykmip::PyKmip;

/// A platform whose identity toward KMSs is a certificate of `kms`'s
/// authority named "nuage", and which keeps no released key in memory.
async fn platform_for(kms: &PyKmip, dir: &std::path::Path) -> TestApp {
    let (cert, key) = kms.authority.issue(
        Vec::new(),
        "nuage",
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    );
    std::fs::write(dir.join("kmip.crt"), cert).expect("cert");
    std::fs::write(dir.join("kmip.key"), key).expect("key");
    spawn(Spawn {
        env: vec![
            (
                "NUAGE_KEYS__KMIP__CLIENT_CERT".into(),
                dir.join("kmip.crt").display().to_string(),
            ),
            (
                "NUAGE_KEYS__KMIP__CLIENT_KEY".into(),
                dir.join("kmip.key").display().to_string(),
            ),
            ("NUAGE_KEYS__KMIP__TIMEOUT_MS".into(), "3000".into()),
            // The test's KMS listens on loopback.
            (
                "NUAGE_KEYS__KMIP__ALLOW_PRIVATE_ADDRESSES".into(),
                "true".into(),
            ),
            ("NUAGE_KEYS__EXTERNAL_KEY_CACHE_SECONDS".into(), "0".into()),
        ],
        ..Spawn::default()
    })
    .await
}

fn external(kms: &PyKmip, key_id: &str) -> Value {
    json!({"mode": "external", "kms": {
        "endpoint": kms.endpoint, "server_name": "127.0.0.1",
        "ca_pem": kms.ca_pem(), "key_id": key_id,
    }})
}

async fn custody(app: &TestApp, tenant: &Tenant, token: &str, body: Option<Value>) -> (u16, Value) {
    let method = if body.is_some() {
        Method::PUT
    } else {
        Method::GET
    };
    app.call(
        method,
        &format!("/orgs/{}/custody", tenant.org),
        token,
        body,
    )
    .await
}

#[tokio::test]
async fn an_organisation_holds_its_key_in_its_own_kmip_kms_and_can_cut_access() {
    let kms = PyKmip::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = platform_for(&kms, dir.path()).await;
    // The organisation's key in its KMS, which lets "nuage" use it (PyKMIP:
    // the key's owner).
    let admin = kms.client("nuage");
    let key_id = admin.create_aes_key("tenant-kek").await.expect("created");
    let tenant = app.tenant("Clé Chez Moi").await;
    let neighbour = app.tenant("Clé Chez Nuage").await;
    let s3 = app.s3_client(&tenant);
    let other = app.s3_client(&neighbour);
    create_bucket(&s3, "chez-moi").await;
    create_bucket(&other, "chez-nuage").await;
    put(
        &s3,
        "chez-moi",
        "before.txt",
        ByteStream::from_static(b"before"),
    )
    .await;
    put(
        &other,
        "chez-nuage",
        "n.txt",
        ByteStream::from_static(b"neighbour"),
    )
    .await;
    let (_, owner) = app
        .create_user(&tenant.org, "owner@chezmoi.fr", "owner")
        .await;
    let (_, member) = app
        .create_user(&tenant.org, "admin@chezmoi.fr", "admin")
        .await;

    // Only an owner chooses (not another member, nor the operator); a key
    // the KMS has not activated is refused.
    let (status, body) = custody(&app, &tenant, &member, Some(external(&kms, &key_id))).await;
    assert_eq!(status, 403, "{body}");
    let root = app.root_token.clone();
    let (status, body) = custody(&app, &tenant, &root, Some(external(&kms, &key_id))).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = custody(&app, &tenant, &owner, Some(external(&kms, &key_id))).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("PreActive"),
        "{body}"
    );
    admin.activate(&key_id).await.expect("activated");
    let (status, body) = custody(&app, &tenant, &owner, Some(external(&kms, &key_id))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["mode"].as_str(), body["key_state"].as_str()),
        (Some("external"), Some("Active")),
        "{body}"
    );
    let mut db = app.database().await;
    let stored: String = sqlx::query_scalar("SELECT sealed_key FROM org_keys WHERE org_id = $1")
        .bind(&tenant.org)
        .fetch_one(&mut db)
        .await
        .expect("org key");
    assert!(stored.starts_with("kms:"), "wrapped by the KMS: {stored}");

    // Content reads and writes go through the KMS.
    assert_eq!(
        get_bytes(&s3, "chez-moi", "before.txt").await,
        b"before".to_vec()
    );
    put(
        &s3,
        "chez-moi",
        "after.txt",
        ByteStream::from_static(b"after"),
    )
    .await;
    assert_eq!(
        get_bytes(&s3, "chez-moi", "after.txt").await,
        b"after".to_vec()
    );

    // The organisation revokes the key: content is refused, saying why;
    // names still list; the neighbour is unaffected.
    admin
        .revoke(&key_id, RevocationReason::KeyCompromise)
        .await
        .expect("revoked");
    let refused = s3
        .get_object()
        .bucket("chez-moi")
        .key("before.txt")
        .send()
        .await;
    let message = format!("{refused:?}");
    assert_eq!(s3_code(refused), "AccessDenied", "{message}");
    assert!(
        message.contains("Compromised"),
        "names the key's state: {message}"
    );
    let refused = s3
        .put_object()
        .bucket("chez-moi")
        .key("new.txt")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(s3_code(refused), "AccessDenied");
    let listed = s3
        .list_objects_v2()
        .bucket("chez-moi")
        .send()
        .await
        .expect("listed");
    assert_eq!(listed.contents().len(), 2);
    assert_eq!(
        get_bytes(&other, "chez-nuage", "n.txt").await,
        b"neighbour".to_vec()
    );
    let (_, state) = custody(&app, &tenant, &owner, None).await;
    assert_eq!(state["key_state"], "Compromised", "{state}");

    // Another key of the organisation's KMS: a revoked key cannot hand over
    // (KMIP revocation is final), so restoring means a key it still holds.
    let fresh = admin.create_aes_key("tenant-kek-2").await.expect("created");
    admin.activate(&fresh).await.expect("activated");
    let (status, body) = custody(&app, &tenant, &owner, Some(external(&kms, &fresh))).await;
    assert_eq!(
        status, 409,
        "the revoked key does not release the organisation's key: {body}"
    );

    // The KMS gone: requests fail fast, the neighbour is unaffected.
    drop(kms);
    let started = std::time::Instant::now();
    let refused = s3
        .get_object()
        .bucket("chez-moi")
        .key("after.txt")
        .send()
        .await;
    let message = format!("{refused:?}");
    assert_eq!(s3_code(refused), "AccessDenied", "{message}");
    assert!(message.contains("unreachable"), "{message}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "no hang"
    );
    assert_eq!(
        get_bytes(&other, "chez-nuage", "n.txt").await,
        b"neighbour".to_vec()
    );
    let metrics = app
        .http
        .get(format!("{}/metrics", app.console))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("nuage_kms_failures_total{reason=\"unreachable\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("nuage_kms_failures_total{reason=\"refused\"}"),
        "{metrics}"
    );
}

/// From the console, an owner entrusts the key to the organisation's KMS
/// once they say they understand what losing it means; a rotation then
/// stays with the KMS; and, with the KMS answering, the owner takes the key
/// back to the platform: content reads again without the KMS.
#[tokio::test]
async fn an_organisation_takes_its_key_back_from_its_kmip_kms() {
    let kms = PyKmip::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = platform_for(&kms, dir.path()).await;
    let admin = kms.client("nuage");
    let key_id = admin.create_aes_key("tenant-kek").await.expect("created");
    admin.activate(&key_id).await.expect("activated");
    let tenant = app.tenant("Clé Rendue").await;
    let s3 = app.s3_client(&tenant);
    create_bucket(&s3, "rendue").await;
    put(&s3, "rendue", "a.txt", ByteStream::from_static(b"kept")).await;
    let (_, owner) = app
        .create_user(&tenant.org, "owner@rendue.fr", "owner")
        .await;
    let session = app.console_session("owner@rendue.fr").await;
    let page = app.console_page(&session, "/security").await;
    assert!(
        page.contains("Who holds the key") && page.contains("gone for good"),
        "{page}"
    );
    let ca = kms.ca_pem();
    let fields = [
        ("mode", "external"),
        ("endpoint", kms.endpoint.as_str()),
        ("server_name", "127.0.0.1"),
        ("ca_pem", ca.as_str()),
        ("key_id", key_id.as_str()),
    ];
    let refused = app
        .console_post(&session, "/security", "/security/custody", &fields)
        .await;
    assert_eq!(refused.status(), 400, "no consent, no change");
    let page = refused.text().await.expect("html");
    assert!(page.contains("what losing the key means"), "{page}");
    assert!(
        page.contains(&format!("value=\"{key_id}\"")),
        "the form is kept: {page}"
    );
    let (_, state) = custody(&app, &tenant, &owner, None).await;
    assert_eq!(state["mode"], "platform");
    let mut consented = fields.to_vec();
    consented.push(("consent", "on"));
    let done = app
        .console_post(&session, "/security", "/security/custody", &consented)
        .await;
    assert_eq!(done.status(), 303, "{:?}", done.text().await);
    let page = app
        .console_page(&session, "/security?notice=custody_set")
        .await;
    assert!(
        page.contains("<dd id=\"custody-state\">Active</dd>"),
        "{page}"
    );
    // A rotation while the KMS holds the key: the new version is its too.
    let (status, rotated) = rotate(&app, &tenant, &owner).await;
    assert_eq!(status, 201, "{rotated}");
    app.run_job("key-rewrap").await;
    let mut db = app.database().await;
    let (stored, holder): (String, String) =
        sqlx::query_as("SELECT sealed_key, custody FROM org_keys WHERE org_id = $1")
            .bind(&tenant.org)
            .fetch_one(&mut db)
            .await
            .expect("org key");
    assert!(
        stored.starts_with("kms:") && holder == "external",
        "{stored} {holder}"
    );
    assert_eq!(get_bytes(&s3, "rendue", "a.txt").await, b"kept".to_vec());
    let back = app
        .console_post(
            &session,
            "/security",
            "/security/custody",
            &[("mode", "platform")],
        )
        .await;
    assert_eq!(back.status(), 303, "{:?}", back.text().await);
    let (_, body) = custody(&app, &tenant, &owner, None).await;
    assert_eq!(body["mode"], "platform", "{body}");
    drop(kms);
    assert_eq!(get_bytes(&s3, "rendue", "a.txt").await, b"kept".to_vec());
    let (status, body) = custody(&app, &tenant, &owner, Some(json!({"mode": "elsewhere"}))).await;
    assert_eq!(status, 400, "{body}");
}
