//! The REST API: documents, errors as problem details, authorisation between
//! tenants, pagination, idempotency.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, spawn_app};

fn is_problem(status: u16, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(
        body["status"], expected,
        "problem detail carries the status: {body}"
    );
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("urn:nuage:problem:")),
        "{body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn openapi_document_is_served_and_lists_the_api() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.expect("json");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/api/v1/orgs",
        "/api/v1/users",
        "/api/v1/orgs/{org_id}/s3-keys",
        "/api/v1/audit/verify",
        "/api/v1/tokens",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    assert!(doc["components"]["schemas"].get("Problem").is_some());
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let app = spawn_app().await;
    let base = &app.console;
    for path in ["/healthz", "/readyz"] {
        let r = app
            .http
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 200, "{path}");
    }
    app.create_org("Metrics SARL").await;
    let metrics = app
        .http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("nuage_http_requests_total"), "{metrics}");
    assert!(metrics.contains("nuage_audit_entries_total"), "{metrics}");
    let r = app
        .http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("sent");
    assert!(
        r.headers().get("x-request-id").is_some(),
        "every response carries a request id"
    );
}

#[tokio::test]
async fn bad_input_gets_a_problem_and_changes_nothing() {
    let app = spawn_app().await;
    let before = app.root(Method::GET, "/orgs", None).await.1["items"]
        .as_array()
        .map(Vec::len);

    let (s, b) = app
        .root(
            Method::POST,
            "/orgs",
            Some(json!({"name": "Mairie", "kind": "public", "siret": "13002526500014"})),
        )
        .await;
    is_problem(s, &b, 400);
    assert_eq!(b["field"], "siret");
    assert!(
        b["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("check digit"),
        "{b}"
    );

    let (s, b) = app
        .root(
            Method::POST,
            "/orgs",
            Some(json!({"name": "X", "kind": "public", "colour": "blue"})),
        )
        .await;
    is_problem(s, &b, 422);
    assert!(
        b["detail"].as_str().unwrap_or_default().contains("colour"),
        "the unknown field is named: {b}"
    );

    let (s, b) = app
        .root(
            Method::POST,
            "/orgs",
            Some(json!({"name": "X", "kind": "empire"})),
        )
        .await;
    is_problem(s, &b, 422);

    let (s, b) = app
        .root(
            Method::POST,
            "/orgs",
            Some(json!({"name": "   ", "kind": "public"})),
        )
        .await;
    is_problem(s, &b, 400);

    let r = app
        .http
        .post(app.url("/orgs"))
        .bearer_auth(&app.root_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("sent");
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let (s, b) = (r.status().as_u16(), r.json::<Value>().await.expect("json"));
    is_problem(s, &b, 400);

    let r = app
        .http
        .post(app.url("/orgs"))
        .bearer_auth(&app.root_token)
        .body("name=x")
        .send()
        .await
        .expect("sent");
    let (s, b) = (r.status().as_u16(), r.json::<Value>().await.expect("json"));
    is_problem(s, &b, 415);

    // The server answers before reading the whole body and closes the
    // connection, so this request gets a client of its own.
    let huge = json!({"name": "x".repeat(200_000), "kind": "public"});
    let r = reqwest::Client::new()
        .post(app.url("/orgs"))
        .bearer_auth(&app.root_token)
        .json(&huge)
        .send()
        .await
        .expect("sent");
    let (s, b) = (r.status().as_u16(), r.json::<Value>().await.expect("json"));
    is_problem(s, &b, 413);

    let (s, b) = app.root(Method::GET, "/orgs/not-a-uuid", None).await;
    is_problem(s, &b, 400);
    let (s, b) = app.root(Method::GET, "/no/such/thing", None).await;
    is_problem(s, &b, 404);
    let (s, b) = app.root(Method::PUT, "/orgs", None).await;
    is_problem(s, &b, 405);
    let (s, b) = app.root(Method::GET, "/orgs?limit=0", None).await;
    is_problem(s, &b, 400);
    let (s, b) = app
        .root(Method::GET, "/orgs?cursor=%27%20OR%201%3D1", None)
        .await;
    is_problem(s, &b, 400);

    let after = app.root(Method::GET, "/orgs", None).await.1["items"]
        .as_array()
        .map(Vec::len);
    assert_eq!(before, after, "no organisation was created by bad requests");
}

#[tokio::test]
async fn tokens_are_required_and_checked() {
    let app = spawn_app().await;
    let r = app.http.get(app.url("/orgs")).send().await.expect("sent");
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("www-authenticate").is_some());
    let (s, b) = app.call(Method::GET, "/orgs", "nuage_forged", None).await;
    is_problem(s, &b, 401);

    let org = app.create_org("Tokens SA").await;
    let (_, token) = app.create_user(&org, "alice@tokens.fr", "owner").await;
    let (s, me) = app.call(Method::GET, "/me", &token, None).await;
    assert_eq!(s, 200);
    assert_eq!(me["user"]["email"], "alice@tokens.fr");
    assert_eq!(me["memberships"][0]["role"], "owner");

    // A token is listed without its secret, and works until revoked.
    let (s, created) = app
        .call(
            Method::POST,
            "/tokens",
            &token,
            Some(json!({"name": "ci", "expires_in_days": 30})),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let second = created["secret"]
        .as_str()
        .expect("secret shown once")
        .to_owned();
    let (_, list) = app.call(Method::GET, "/tokens", &token, None).await;
    assert!(
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|t| t["name"] == "ci" && t.get("secret").is_none())
    );
    assert_eq!(app.call(Method::GET, "/me", &second, None).await.0, 200);
    let id = created["id"].as_str().expect("id");
    assert_eq!(
        app.call(Method::DELETE, &format!("/tokens/{id}"), &token, None)
            .await
            .0,
        204
    );
    assert_eq!(
        app.call(Method::GET, "/me", &second, None).await.0,
        401,
        "a revoked token is refused at once"
    );

    // Tokens are stored as digests only.
    let mut db = app.database().await;
    let rows: Vec<(String,)> = sqlx::query_as("SELECT token_hash FROM api_tokens")
        .fetch_all(&mut db)
        .await
        .expect("query");
    assert!(
        rows.iter()
            .all(|(h,)| h.len() == 64 && !h.contains(&token) && *h != token)
    );

    // An expired token is refused.
    let (_, third) = app
        .call(
            Method::POST,
            "/tokens",
            &token,
            Some(json!({"name": "short", "expires_in_days": 1})),
        )
        .await;
    let third_id = third["id"].as_str().expect("id");
    sqlx::query("UPDATE api_tokens SET expires_at = 1 WHERE id = $1")
        .bind(third_id)
        .execute(&mut db)
        .await
        .expect("expire");
    let (s, b) = app
        .call(
            Method::GET,
            "/me",
            third["secret"].as_str().expect("secret"),
            None,
        )
        .await;
    is_problem(s, &b, 401);

    // Wrong passwords get no token.
    let r = app
        .http
        .post(app.url("/auth/token"))
        .json(&json!({"email": "alice@tokens.fr", "password": "wrong password!!", "name": "x"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn tenants_cannot_reach_each_other() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha").await;
    let b = app.create_org("Beta").await;
    let (_, alice) = app.create_user(&a, "alice@alpha.fr", "owner").await;
    let (_, bob) = app.create_user(&b, "bob@beta.fr", "owner").await;
    let (_, bob_key) = app
        .call(Method::POST, &format!("/orgs/{b}/s3-keys"), &bob, None)
        .await;
    let bob_key_id = bob_key["access_key_id"].as_str().expect("key id");

    for (method, path) in [
        (Method::GET, format!("/orgs/{b}")),
        (Method::GET, format!("/orgs/{b}/members")),
        (Method::GET, format!("/orgs/{b}/s3-keys")),
        (Method::POST, format!("/orgs/{b}/s3-keys")),
        (Method::GET, format!("/orgs/{b}/audit")),
        (Method::DELETE, format!("/s3-keys/{bob_key_id}")),
    ] {
        let (s, body) = app.call(method.clone(), &path, &alice, None).await;
        assert_eq!(
            s, 404,
            "{method} {path} must look like nothing is there: {body}"
        );
    }
    let (_, orgs) = app.call(Method::GET, "/orgs", &alice, None).await;
    let ids: Vec<&str> = orgs["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|o| o["id"].as_str())
        .collect();
    assert_eq!(ids, vec![a.as_str()]);
    let (s, body) = app.call(Method::POST, "/users", &alice, Some(json!({"org_id": b, "email": "mole@alpha.fr", "password": PASSWORD, "role": "owner"}))).await;
    assert_eq!(s, 404, "{body}");
    let (_, keys) = app
        .call(Method::GET, &format!("/orgs/{b}/s3-keys"), &bob, None)
        .await;
    assert!(
        keys["items"][0]["revoked_at_ms"].is_null(),
        "Bob's key is untouched"
    );
}

#[tokio::test]
async fn roles_limit_what_members_do() {
    let app = spawn_app().await;
    let org = app.create_org("Roles").await;
    let (_, owner) = app.create_user(&org, "owner@roles.fr", "owner").await;
    let (_, member) = app.create_user(&org, "member@roles.fr", "member").await;
    let (_, admin) = app.create_user(&org, "admin@roles.fr", "admin").await;
    let (s, _) = app
        .call(Method::POST, &format!("/orgs/{org}/s3-keys"), &member, None)
        .await;
    assert_eq!(s, 403);
    let (s, _) = app
        .call(Method::GET, &format!("/orgs/{org}/audit"), &member, None)
        .await;
    assert_eq!(s, 403);
    assert_eq!(
        app.call(Method::GET, &format!("/orgs/{org}/members"), &member, None)
            .await
            .0,
        200
    );
    // An admin cannot make owners; an owner can.
    let (s, _) = app.call(Method::POST, "/users", &admin, Some(json!({"org_id": org, "email": "x@roles.fr", "password": PASSWORD, "role": "owner"}))).await;
    assert_eq!(s, 403);
    let (s, _) = app.call(Method::POST, "/users", &owner, Some(json!({"org_id": org, "email": "y@roles.fr", "password": PASSWORD, "role": "owner"}))).await;
    assert_eq!(s, 201);
    // The last owner cannot be removed... but one of two can.
    let (_, members) = app
        .call(Method::GET, &format!("/orgs/{org}/members"), &owner, None)
        .await;
    let y = members["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|m| m["email"] == "y@roles.fr")
        .expect("y")["user_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        app.call(
            Method::DELETE,
            &format!("/orgs/{org}/members/{y}"),
            &admin,
            None
        )
        .await
        .0,
        403
    );
    assert_eq!(
        app.call(
            Method::DELETE,
            &format!("/orgs/{org}/members/{y}"),
            &owner,
            None
        )
        .await
        .0,
        204
    );
    let (_, me) = app.call(Method::GET, "/me", &owner, None).await;
    let owner_id = me["user"]["id"].as_str().expect("id");
    let (s, b) = app
        .call(
            Method::DELETE,
            &format!("/orgs/{org}/members/{owner_id}"),
            &owner,
            None,
        )
        .await;
    assert_eq!(s, 409, "{b}");
    // Inviting an existing user and an unknown address answers the same:
    // nobody learns who has an account, and nobody is made a member of an
    // organisation they did not choose.
    let other = app.create_org("Other").await;
    let (_, guest) = app.create_user(&other, "guest@other.fr", "owner").await;
    let members = format!("/orgs/{org}/members");
    let invite = |email: &'static str, role: &'static str| {
        app.call(
            Method::POST,
            &members,
            &owner,
            Some(json!({"email": email, "role": role})),
        )
    };
    let (s, known) = invite("guest@other.fr", "buyer").await;
    assert_eq!(s, 202, "{known}");
    let (s, unknown) = invite("new@elsewhere.fr", "member").await;
    assert_eq!(s, 202, "{unknown}");
    let shape = |v: &Value| {
        let mut keys: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        keys.sort();
        (keys, v["invited"].clone())
    };
    assert_eq!(shape(&known), shape(&unknown));
    let (_, me) = app.call(Method::GET, "/me", &guest, None).await;
    assert_eq!(
        me["memberships"].as_array().map(Vec::len),
        Some(1),
        "nothing changes until the invitation is accepted: {me}"
    );
    // Someone else cannot accept it; its invitee can, once.
    let (_, waiting) = app.call(Method::GET, "/invitations", &guest, None).await;
    let id = waiting[0]["id"].as_str().expect("an invitation").to_owned();
    assert_eq!(waiting[0]["role"], "buyer");
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/invitations/{id}/accept"),
            &owner,
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, membership) = app
        .call(
            Method::POST,
            &format!("/invitations/{id}/accept"),
            &guest,
            None,
        )
        .await;
    assert_eq!(s, 200, "{membership}");
    assert_eq!(membership["role"], "buyer");
    assert_eq!(membership["org_id"], org.as_str());
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/invitations/{id}/accept"),
            &guest,
            None,
        )
        .await;
    assert_eq!(s, 404, "an invitation is answered once");
}

#[tokio::test]
async fn lists_are_paginated_by_cursor() {
    let app = spawn_app().await;
    // The house provider's organisation exists from the first start.
    let (_, before) = app.root(Method::GET, "/orgs?limit=500", None).await;
    let mut created: Vec<String> = before["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| o["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(created.len(), 1, "{before}");
    for i in 0..7 {
        created.push(app.create_org(&format!("Org {i}")).await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/orgs?limit=3&cursor={c}"),
            None => "/orgs?limit=3".into(),
        };
        let (s, page) = app.root(Method::GET, &path, None).await;
        assert_eq!(s, 200, "{page}");
        pages += 1;
        seen.extend(
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|o| o["id"].as_str().expect("id").to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, created, "every organisation once, in creation order");
    assert!(pages >= 3);
}

#[tokio::test]
async fn idempotency_key_makes_retries_safe() {
    let app = spawn_app().await;
    let send = |key: &str, name: &str| {
        app.http
            .post(app.url("/orgs"))
            .bearer_auth(&app.root_token)
            .header("Idempotency-Key", key)
            .json(&json!({"name": name, "kind": "company"}))
            .send()
    };
    let first = send("k-1", "Once").await.expect("sent");
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.expect("json");
    let retry = send("k-1", "Once").await.expect("sent");
    assert_eq!(retry.status(), 201);
    assert_eq!(
        retry
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let retry: Value = retry.json().await.expect("json");
    assert_eq!(
        first["id"], retry["id"],
        "the retry returns the first result"
    );
    let other = send("k-1", "Different").await.expect("sent");
    assert_eq!(other.status(), 422);
    let (_, list) = app.root(Method::GET, "/orgs", None).await;
    assert_eq!(
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|o| o["name"] == "Once")
            .count(),
        1
    );
    assert!(
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|o| o["name"] != "Different")
    );

    // A key names one operation: reused on another resource, it is refused.
    let a = app.create_org("Members A").await;
    let b = app.create_org("Members B").await;
    let add = |org: String| {
        app.http
            .post(app.url(&format!("/orgs/{org}/members")))
            .bearer_auth(&app.root_token)
            .header("Idempotency-Key", "member-1")
            .json(&json!({"email": "someone@nowhere.fr", "role": "member"}))
            .send()
    };
    assert_eq!(add(a).await.expect("sent").status(), 202);
    assert_eq!(add(b).await.expect("sent").status(), 422);

    // A reservation left by a request that never finished is taken over.
    let mut db = app.database().await;
    sqlx::query("INSERT INTO idempotency_keys (principal, idem_key, request_hash, created_at) VALUES ('root', 'stuck', 'x', $1)")
        .bind(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64 - 120_000)
        .execute(&mut db)
        .await
        .expect("insert");
    assert_eq!(send("stuck", "Retried").await.expect("sent").status(), 201);
}

#[tokio::test]
async fn s3_secrets_are_sealed_and_keys_revocable() {
    let app = spawn_app().await;
    let org = app.create_org("Keys").await;
    let create = || {
        app.http
            .post(app.url(&format!("/orgs/{org}/s3-keys")))
            .bearer_auth(&app.root_token)
            .header("Idempotency-Key", "create-key-1")
            .send()
    };
    let first = create().await.expect("sent");
    assert_eq!(first.status(), 201);
    let key: Value = first.json().await.expect("json");
    let replay: Value = create().await.expect("sent").json().await.expect("json");
    assert_eq!(replay, key, "a retry gets the same key, secret included");
    let secret = key["secret_access_key"].as_str().expect("secret");
    {
        let mut db = app.database().await;
        let stored: Vec<(Option<String>,)> =
            sqlx::query_as("SELECT response FROM idempotency_keys")
                .fetch_all(&mut db)
                .await
                .expect("rows");
        assert_eq!(stored.len(), 1);
        assert!(
            stored
                .iter()
                .all(|(r,)| r.as_deref().is_some_and(|r| !r.contains(secret))),
            "the replayable response is sealed"
        );
    }
    assert_eq!(key["access_key_id"].as_str().map(str::len), Some(20));
    assert!(secret.len() >= 40);
    let mut db = app.database().await;
    let (sealed,): (String,) = sqlx::query_as("SELECT secret_sealed FROM s3_keys")
        .fetch_one(&mut db)
        .await
        .expect("row");
    assert!(
        !sealed.contains(secret),
        "the secret is not stored in the clear"
    );
    let (_, list) = app
        .root(Method::GET, &format!("/orgs/{org}/s3-keys"), None)
        .await;
    assert!(list["items"][0].get("secret_access_key").is_none());
    assert!(!app.log().contains(secret), "the secret is never logged");
    let id = key["access_key_id"].as_str().expect("id");
    let (s, revoked) = app
        .root(Method::DELETE, &format!("/s3-keys/{id}"), None)
        .await;
    assert_eq!(s, 200);
    assert!(revoked["revoked_at_ms"].is_i64());
    assert_eq!(
        app.root(Method::DELETE, &format!("/s3-keys/{id}"), None)
            .await
            .0,
        409
    );
}

#[tokio::test]
async fn organisations_can_require_a_second_factor() {
    let app = spawn_app().await;
    let org = app.create_org("Strict").await;
    let (_, owner) = app.create_user(&org, "owner@strict.fr", "owner").await;
    let (_, member) = app.create_user(&org, "member@strict.fr", "member").await;
    // The owner cannot require what they do not have.
    assert_eq!(
        app.call(
            Method::PATCH,
            &format!("/orgs/{org}"),
            &owner,
            Some(json!({"require_totp": true}))
        )
        .await
        .0,
        409
    );
    let (s, enrol) = app.call(Method::POST, "/me/totp", &owner, None).await;
    assert_eq!(s, 201);
    let secret = data_encoding_decode(enrol["secret_base32"].as_str().expect("secret"));
    assert!(
        enrol["provisioning_uri"]
            .as_str()
            .is_some_and(|u| u.starts_with("otpauth://totp/"))
    );
    let (s, b) = app
        .call(
            Method::POST,
            "/me/totp/confirm",
            &owner,
            Some(json!({"code": "000000"})),
        )
        .await;
    assert_eq!(s, 401, "a wrong code does not enable it: {b}");
    let code = current_code(&secret);
    assert_eq!(
        app.call(
            Method::POST,
            "/me/totp/confirm",
            &owner,
            Some(json!({"code": code}))
        )
        .await
        .0,
        204
    );
    let (s, o) = app
        .call(
            Method::PATCH,
            &format!("/orgs/{org}"),
            &owner,
            Some(json!({"require_totp": true})),
        )
        .await;
    assert_eq!((s, o["require_totp"].as_bool()), (200, Some(true)));
    let (s, b) = app
        .call(Method::GET, &format!("/orgs/{org}/members"), &member, None)
        .await;
    assert_eq!(s, 403, "{b}");
    assert!(
        b["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("second factor")
    );
    // Signing in now needs the code, and guessing codes is throttled.
    let grant = |code: Option<String>| {
        app.http
            .post(app.url("/auth/token"))
            .json(&json!({"email": "owner@strict.fr", "password": PASSWORD, "totp_code": code, "name": "x"}))
            .send()
    };
    assert_eq!(grant(None).await.expect("sent").status(), 401);
    for _ in 0..10 {
        let wrong = if current_code(&secret) == "123456" {
            "654321"
        } else {
            "123456"
        };
        assert_eq!(grant(Some(wrong.into())).await.expect("sent").status(), 401);
    }
    let r = grant(Some(current_code(&secret))).await.expect("sent");
    assert_eq!(
        r.status(),
        429,
        "after ten wrong codes, even a right one waits"
    );
}

#[tokio::test]
async fn password_guessing_is_throttled_per_address_and_source() {
    let app = spawn_app().await;
    let org = app.create_org("Guarded").await;
    app.create_user(&org, "target@guarded.fr", "owner").await;
    let attempt = |password: &'static str| {
        app.http
            .post(app.url("/auth/token"))
            .json(&json!({"email": "target@guarded.fr", "password": password, "name": "x"}))
            .send()
    };
    // Five mistakes cost nothing; then each failure doubles the wait.
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(
            attempt("a wrong guess!!")
                .await
                .expect("sent")
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses[..5], [401; 5], "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    let r = attempt(PASSWORD).await.expect("sent");
    assert_eq!(
        r.status(),
        429,
        "after ten failures even the right password waits"
    );
    let body: Value = r.json().await.expect("json");
    is_problem(429, &body, 429);
    // Other addresses are not affected.
    app.create_user(&org, "other@guarded.fr", "member").await;
}

pub fn data_encoding_decode(b32: &str) -> Vec<u8> {
    // RFC 4648 base32 without padding.
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut n = 0;
    let mut out = Vec::new();
    for c in b32.chars() {
        bits = (bits << 5) | alphabet.find(c).expect("base32") as u64;
        n += 5;
        if n >= 8 {
            out.push((bits >> (n - 8)) as u8);
            n -= 8;
        }
    }
    out
}

pub fn current_code(secret: &[u8]) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    nuage_service::totp::code_at(secret, now / 30)
}
