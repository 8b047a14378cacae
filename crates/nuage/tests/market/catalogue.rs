//! The open directory and the single window, through the real server: the
//! publication workflow and its audit trail, search with the database's own
//! full-text search, facets and the fair order, open data, comparison,
//! orders provisioned at once by the house and fulfilled by other providers
//! (with a signed webhook), the demo, and bad input that changes nothing.

use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{TestApp, put, spawn, spawn_app};

fn profile(name: &str) -> Value {
    json!({
        "legal_name": format!("{name} SAS"),
        "siren": "732 829 320",
        "headquarters_country": "fr",
        "description": format!("{name}, a provider of the test ecosystem."),
        "capital": {"eu_share_percent": "100", "controlled_by": "its founders"},
        "extra_eu_exposure": {"exposed": false, "statement": "No extra-EU control."},
        "certifications": [{"scheme": "SecNumCloud", "issuer": "ANSSI", "scope": "IaaS",
            "valid_from": "2025-01-01", "valid_until": "2099-12-31"}],
        "contact_email": "contact@example.org",
        "website": "https://example.org",
    })
}

pub(crate) fn offer(name: &str, region: &str, price: Value) -> Value {
    json!({
        "name": name,
        "description": format!("{name}: object storage for tests."),
        "category": "storage",
        "regions": [region],
        "certifications": ["SecNumCloud"],
        "capacity_gb": 100,
        "sla": {"availability_percent": "99.9", "support_hours": "24/7", "rto_hours": 4, "rpo_hours": 1},
        "reversibility": {"export_formats": ["S3"], "notice_days": 30},
        "price": price,
    })
}

/// An organisation with an owner, its profile published by the operator
/// with the given roles. Returns (org id, owner's token).
pub(crate) async fn published_org(
    app: &TestApp,
    name: &str,
    email: &str,
    provider: bool,
    publisher: bool,
) -> (String, String) {
    let org = app.create_org(name).await;
    let (_, token) = app.create_user(&org, email, "owner").await;
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/orgs/{org}/profile"),
            &token,
            Some(profile(name)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    submit(app, &token, "profiles", &org).await;
    let (status, body) = app
        .root(
            Method::POST,
            &format!("/review/profiles/{org}"),
            Some(json!({"decision": "publish", "provider": provider, "publisher": publisher})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    (org, token)
}

async fn submit(app: &TestApp, token: &str, kind: &str, id: &str) {
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/sheets/{kind}/{id}/state"),
            token,
            Some(json!({"state": "in_review"})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
}

async fn publish(app: &TestApp, kind: &str, id: &str) {
    let (status, body) = app
        .root(
            Method::POST,
            &format!("/review/{kind}/{id}"),
            Some(json!({"decision": "publish"})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
}

/// A published offer of `provider`; returns its id.
pub(crate) async fn published_offer(
    app: &TestApp,
    provider: &str,
    token: &str,
    sheet: Value,
) -> String {
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/orgs/{provider}/offers"),
            token,
            Some(sheet),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    submit(app, token, "offers", &id).await;
    publish(app, "offers", &id).await;
    id
}

async fn public(app: &TestApp, path: &str) -> (u16, Value) {
    let response = app.http.get(app.url(path)).send().await.expect("sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn search_ids(app: &TestApp, query: &str) -> Vec<String> {
    let (status, body) = public(app, &format!("/directory/search?{query}")).await;
    assert_eq!(status, 200, "{body}");
    body["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| h["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Gives a listing another search key, in the index of either engine.
async fn set_search_key(db: &mut sqlx::AnyConnection, database_url: &str, id: &str, key: i64) {
    let old: i64 = sqlx::query_scalar("SELECT search_key FROM listings WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *db)
        .await
        .expect("indexed");
    let index = if database_url.starts_with("sqlite:") {
        "UPDATE listings_fts SET rowid = $1 WHERE rowid = $2"
    } else {
        "UPDATE listing_search SET search_key = $1 WHERE search_key = $2"
    };
    for sql in [
        index,
        "UPDATE listings SET search_key = $1 WHERE search_key = $2",
    ] {
        sqlx::query(sql)
            .bind(key)
            .bind(old)
            .execute(&mut *db)
            .await
            .expect("moved");
    }
}

/// A sampled search for "sampled" (twelve matches): `ranked` of them are
/// ranked and can be paged through, in a stable order; the total and the
/// facet counts are estimates.
async fn check_sample(app: &TestApp, offers: &[String], ranked: i64) -> Value {
    let (status, body) = public(app, "/directory/search?q=sampled").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ranked"], ranked, "{body}");
    assert_eq!(body["total_exact"], false, "{body}");
    assert_eq!(body["facets_exact"], false, "{body}");
    assert_eq!(
        body["facets"]["kind"][0]["count"], body["total"],
        "every match is an offer: {body}"
    );
    let mut seen = Vec::new();
    for page in 1..=4 {
        seen.extend(search_ids(app, &format!("q=sampled&page={page}")).await);
    }
    assert_eq!(
        seen.len() as i64,
        ranked,
        "the pages hold the sample: {seen:?}"
    );
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no hit twice: {seen:?}");
    assert!(seen.iter().all(|id| offers.contains(id)), "{seen:?}");
    let again = search_ids(app, "q=sampled").await;
    assert_eq!(
        again,
        seen[..again.len()],
        "the same sample, in the same order"
    );
    body
}

async fn audit_actions(app: &TestApp, org: &str) -> Vec<String> {
    let (status, body) = app
        .root(Method::GET, &format!("/orgs/{org}/audit?limit=500"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_profile_is_public_only_once_an_operator_publishes_it_and_every_step_is_audited() {
    let app = spawn_app().await;
    let org = app.create_org("Provider Draft").await;
    let (_, token) = app.create_user(&org, "owner@draft.example", "owner").await;

    // Bad input: a wrong SIREN, a share over 100 %: refused, nothing saved.
    let mut bad = profile("Provider Draft");
    bad["siren"] = json!("732829321");
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/orgs/{org}/profile"),
            &token,
            Some(bad),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("siren")),
        "{body}"
    );
    let mut bad = profile("Provider Draft");
    bad["capital"]["eu_share_percent"] = json!("101");
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/orgs/{org}/profile"),
            &token,
            Some(bad),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .call(Method::GET, &format!("/orgs/{org}/profile"), &token, None)
        .await;
    assert_eq!(status, 404, "a refused profile is not saved");

    let (status, saved) = app
        .call(
            Method::PUT,
            &format!("/orgs/{org}/profile"),
            &token,
            Some(profile("Provider Draft")),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["state"], "draft");
    assert_eq!(saved["document"]["siren"], "732829320");
    assert!(
        search_ids(&app, "q=draft").await.is_empty(),
        "a draft is not public"
    );
    assert_eq!(
        public(&app, &format!("/directory/organisations/{org}"))
            .await
            .0,
        404
    );

    // Only an operator publishes; the owner cannot skip the review.
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/sheets/profiles/{org}/state"),
            &token,
            Some(json!({"state": "published"})),
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/review/profiles/{org}"),
            &token,
            Some(json!({"decision": "publish", "provider": true})),
        )
        .await;
    assert_eq!(status, 403);
    submit(&app, &token, "profiles", &org).await;
    let (_, queue) = app.root(Method::GET, "/review", None).await;
    assert!(
        queue
            .as_array()
            .expect("queue")
            .iter()
            .any(|i| i["id"] == org.as_str() && i["kind"] == "profile"),
        "{queue}"
    );
    // Sending back needs a reason.
    let (status, _) = app
        .root(
            Method::POST,
            &format!("/review/profiles/{org}"),
            Some(json!({"decision": "send_back"})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .root(
            Method::POST,
            &format!("/review/profiles/{org}"),
            Some(json!({"decision": "send_back", "note": "Add your certificate's scope."})),
        )
        .await;
    assert_eq!(status, 204);
    let (_, back) = app
        .call(Method::GET, &format!("/orgs/{org}/profile"), &token, None)
        .await;
    assert_eq!(back["state"], "draft");
    assert_eq!(back["review_note"], "Add your certificate's scope.");
    submit(&app, &token, "profiles", &org).await;
    let (status, _) = app
        .root(
            Method::POST,
            &format!("/review/profiles/{org}"),
            Some(json!({"decision": "publish", "provider": true})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, page) = public(&app, &format!("/directory/organisations/{org}")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["is_provider"], true);
    assert_eq!(
        page["profile"]["certifications"][0]["scheme"],
        "SecNumCloud"
    );
    assert_eq!(search_ids(&app, "q=draft").await, vec![org.clone()]);

    // An edit is a new draft: the public keeps the published version.
    let mut edited = profile("Provider Draft");
    edited["description"] = json!("A new description, not reviewed yet.");
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/orgs/{org}/profile"),
            &token,
            Some(edited),
        )
        .await;
    assert_eq!(status, 200);
    let (_, page) = public(&app, &format!("/directory/organisations/{org}")).await;
    assert_eq!(
        page["profile"]["description"],
        "Provider Draft, a provider of the test ecosystem."
    );

    // Withdrawn: gone from the directory.
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/sheets/profiles/{org}/state"),
            &token,
            Some(json!({"state": "withdrawn"})),
        )
        .await;
    assert_eq!(status, 204);
    assert!(search_ids(&app, "q=draft").await.is_empty());

    let actions = audit_actions(&app, &org).await;
    for expected in [
        "profile.save",
        "directory.submit",
        "directory.send_back",
        "directory.publish",
        "directory.withdraw",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} missing from {actions:?}"
        );
    }
    let (_, report) = app.root(Method::GET, "/audit/verify", None).await;
    assert_eq!(report["intact"], true, "{report}");
}

#[tokio::test]
async fn offers_reject_bad_prices_and_undeclared_regions_and_stay_their_providers() {
    let app = spawn_app().await;
    let (a, token_a) = published_org(&app, "Provider Alpha", "a@alpha.example", true, false).await;
    let (b, token_b) = published_org(&app, "Provider Beta", "b@beta.example", true, false).await;
    let (publisher, publisher_token) =
        published_org(&app, "Publisher Only", "p@publisher.example", false, true).await;

    for (price, why) in [
        (json!({"monthly_fee": "-1"}), "a negative price"),
        (json!({"per_gb_month": "0.0000001"}), "seven decimals"),
        (json!({"per_gb_month": "abc"}), "not a number"),
    ] {
        let (status, body) = app
            .call(
                Method::POST,
                &format!("/orgs/{a}/offers"),
                &token_a,
                Some(offer("Bad", "fr-par", price)),
            )
            .await;
        assert_eq!(status, 422, "{why}: {body}");
        assert_eq!(
            body["type"].as_str().map(|t| t.ends_with("invalid-body")),
            Some(true),
            "{body}"
        );
    }
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/orgs/{a}/offers"),
            &token_a,
            Some(offer("Nowhere", "mars-1", json!({}))),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("regions")),
        "{body}"
    );
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/orgs/{publisher}/offers"),
            &publisher_token,
            Some(offer("Not a provider", "fr-par", json!({}))),
        )
        .await;
    assert_eq!(status, 403, "only providers list offers");
    let (_, mine) = app
        .call(Method::GET, &format!("/orgs/{a}/offers"), &token_a, None)
        .await;
    assert_eq!(
        mine.as_array().map(Vec::len),
        Some(0),
        "nothing was saved: {mine}"
    );

    // The operator declares a region; then it is accepted.
    let (status, _) = app
        .call(
            Method::PUT,
            "/regions/fr-lyon",
            &token_a,
            Some(json!({"location": "Lyon, France", "jurisdiction": "FR"})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, region) = app
        .root(
            Method::PUT,
            "/regions/fr-lyon",
            Some(json!({"location": "Lyon, France", "jurisdiction": "fr"})),
        )
        .await;
    assert_eq!(
        (status, region["jurisdiction"].as_str()),
        (200, Some("FR")),
        "{region}"
    );
    let id = published_offer(
        &app,
        &a,
        &token_a,
        offer(
            "Alpha Object Storage",
            "fr-lyon",
            json!({"monthly_fee": "2", "per_gb_month": "0.000001"}),
        ),
    )
    .await;

    // A webhook may not reach the platform's own machine or networks.
    for internal in [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest",
    ] {
        let (status, body) = app
            .call(
                Method::PUT,
                &format!("/orgs/{a}/webhook"),
                &token_a,
                Some(json!({"url": internal})),
            )
            .await;
        assert_eq!(
            (status, body["field"].as_str()),
            (400, Some("url")),
            "{internal}: {body}"
        );
    }

    // Another provider cannot edit it, or move it.
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/offers/{id}"),
            &token_b,
            Some(offer("Hijacked", "fr-lyon", json!({}))),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/sheets/offers/{id}/state"),
            &token_b,
            Some(json!({"state": "withdrawn"})),
        )
        .await;
    assert_eq!(status, 404);
    let (_, page) = public(&app, &format!("/catalogue/offers/{id}")).await;
    assert_eq!(page["sheet"]["name"], "Alpha Object Storage");
    assert_eq!(
        page["sheet"]["price"]["per_gb_month"], "0.000001",
        "six decimals kept"
    );
    assert_eq!(page["regions"][0]["location"], "Lyon, France");
    assert_eq!(page["certifications"][0]["scheme"], "SecNumCloud");
    let _ = b;

    // The machine-readable self-description.
    let response = app
        .http
        .get(app.url(&format!("/catalogue/offers/{id}/self-description")))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.headers()["content-type"], "application/ld+json");
    let sd: Value = response.json().await.expect("json");
    assert_eq!(sd["@type"], "gx:ServiceOffering");
    assert_eq!(sd["gx:dataLocation"][0]["gx:jurisdiction"], "FR");
    assert_eq!(sd["nuage:price"]["nuage:monthlyFee"], "2");
}

#[tokio::test]
async fn search_uses_full_text_facets_and_a_fair_stable_order() {
    let app = spawn_app().await;
    let (a, token_a) = published_org(&app, "Provider Aaaa", "a@aaaa.example", true, true).await;
    let (b, token_b) = published_org(&app, "Provider Bbbb", "b@bbbb.example", true, false).await;
    let same = |name: &str| offer(name, "fr-par", json!({"monthly_fee": "3"}));
    let offer_a = published_offer(&app, &a, &token_a, same("Twin Hébergement Offer")).await;
    let offer_b = published_offer(&app, &b, &token_b, same("Twin Hébergement Offer")).await;
    let (status, service) = app
        .call(
            Method::POST,
            &format!("/orgs/{a}/services"),
            &token_a,
            Some(json!({"name": "Paie Ouverte", "description": "Logiciel de paie", "category": "payroll",
                "licence": "AGPL-3.0-or-later", "deployments": ["nuage", "on_premises"], "data_locations": ["FR"]})),
        )
        .await;
    assert_eq!(status, 201, "{service}");
    let service = service["id"].as_str().expect("id").to_owned();
    submit(&app, &token_a, "services", &service).await;
    publish(&app, "services", &service).await;

    // Folded: without accents, by prefix, every word required.
    let hits = search_ids(&app, "q=hebergem").await;
    assert!(
        hits.contains(&offer_a) && hits.contains(&offer_b),
        "{hits:?}"
    );
    assert!(
        search_ids(&app, "q=twin%20nothing-like-this")
            .await
            .is_empty()
    );
    assert_eq!(search_ids(&app, "q=paie").await, vec![service.clone()]);
    // Operators of the engine's syntax are words, not syntax.
    assert_eq!(
        public(&app, "/directory/search?q=%22twin%22%20OR%20*")
            .await
            .0,
        200
    );

    // Facets and filters.
    let (_, body) = public(&app, "/directory/search?q=twin").await;
    let count = |facet: &str, value: &str| {
        body["facets"][facet]
            .as_array()
            .and_then(|v| v.iter().find(|c| c["value"] == value))
            .map(|c| c["count"].as_i64().unwrap_or(0))
    };
    assert_eq!(count("kind", "offer"), Some(2), "{body}");
    assert_eq!(body["total"], 2, "{body}");
    assert_eq!(count("certification", "secnumcloud"), Some(2), "{body}");
    assert_eq!(count("location", "fr-par"), Some(2), "{body}");
    assert_eq!(count("price", "0-10"), Some(2), "{body}");
    let free = search_ids(&app, "free_software=yes&kind=service").await;
    assert_eq!(free, vec![service.clone()]);
    assert!(
        search_ids(&app, "q=twin&certification=HDS")
            .await
            .is_empty()
    );
    assert_eq!(search_ids(&app, "q=twin&max_price=2.99").await.len(), 0);
    assert_eq!(search_ids(&app, "q=twin&max_price=3").await.len(), 2);
    let (status, problem) = public(&app, "/directory/search?colour=blue").await;
    assert_eq!(status, 400, "{problem}");
    let (status, _) = public(&app, "/directory/search?max_price=-1").await;
    assert_eq!(status, 400);

    // Equal relevance: the same query gives the same order every time, and
    // different queries do not always put the same provider first.
    let queries = [
        "t",
        "tw",
        "twi",
        "twin",
        "twin%20o",
        "twin%20of",
        "twin%20off",
        "twin%20offe",
        "twin%20offer",
        "o",
        "of",
        "off",
        "offe",
        "offer",
        "offer%20twin",
        "offer%20tw",
        "h",
        "he",
        "heb",
        "hebe",
        "heber",
        "twin%20h",
        "twin%20he",
        "offer%20h",
        "offer%20he",
    ];
    let mut a_first = 0;
    for q in queries {
        let order = |ids: Vec<String>| {
            ids.into_iter()
                .filter(|i| *i == offer_a || *i == offer_b)
                .collect::<Vec<_>>()
        };
        let first = order(search_ids(&app, &format!("kind=offer&q={q}")).await);
        let again = order(search_ids(&app, &format!("kind=offer&q={q}")).await);
        assert_eq!(first.len(), 2, "{q}: {first:?}");
        assert_eq!(first, again, "the order is stable for {q}");
        if first[0] == offer_a {
            a_first += 1;
        }
    }
    assert!(
        a_first > 0 && a_first < queries.len(),
        "one provider was first for every query ({a_first} of {})",
        queries.len()
    );
}

#[tokio::test]
async fn open_data_and_comparison_need_no_account() {
    let app = spawn_app().await;
    let (a, token_a) = published_org(&app, "Open Provider", "o@open.example", true, true).await;
    let tiered = published_offer(
        &app,
        &a,
        &token_a,
        offer(
            "Tiered, \"quoted\" offer",
            "fr-par",
            json!({"monthly_fee": "1", "included_gb": 10, "per_gb_month": "0.01",
                "tiers": [{"from_gb": 100, "per_gb_month": "0.005"}], "per_1k_class_a": "0.005",
                "per_1k_class_b": "0.0004", "per_gb_egress": "0.01", "commitment_months": 12}),
        ),
    )
    .await;

    let (status, service) = app
        .call(
            Method::POST,
            &format!("/orgs/{a}/services"),
            &token_a,
            Some(
                json!({"name": "Open Drive", "description": "Un drive", "category": "drive",
                "licence": "AGPL-3.0-only", "deployments": ["nuage"], "data_locations": ["FR"]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{service}");
    let service = service["id"].as_str().expect("id").to_owned();
    submit(&app, &token_a, "services", &service).await;
    publish(&app, "services", &service).await;
    for relation in ["users", "supporters"] {
        let (status, body) = app
            .call(
                Method::PUT,
                &format!("/services/{service}/{relation}"),
                &token_a,
                Some(json!({"org_id": a})),
            )
            .await;
        assert_eq!(status, 204, "{relation}: {body}");
    }

    let (status, data) = public(&app, "/open-data/catalogue.json").await;
    assert_eq!(status, 200);
    assert_eq!(data["licence"], "Licence Ouverte / Open Licence 2.0");
    // The download holds the public pages as they are served one by one.
    let find = |list: &str, id: &str| {
        data[list]
            .as_array()
            .expect("list")
            .iter()
            .find(|e| e["id"] == id)
            .cloned()
            .unwrap_or(Value::Null)
    };
    for (list, path) in [
        ("organisations", format!("/directory/organisations/{a}")),
        ("services", format!("/directory/services/{service}")),
        ("offers", format!("/catalogue/offers/{tiered}")),
    ] {
        let (status, page) = public(&app, &path).await;
        assert_eq!(status, 200, "{path}: {page}");
        let id = page["id"].as_str().expect("id");
        assert_eq!(find(list, id), page, "{list} in the download = {path}");
    }
    let org = find("organisations", &a);
    assert_eq!(org["services"][0]["id"], service.as_str(), "{org}");
    assert_eq!(org["offers"][0]["id"], tiered.as_str(), "{org}");
    let listed = find("services", &service);
    assert_eq!(listed["used_by"][0]["id"], a.as_str(), "{listed}");
    assert_eq!(listed["supported_by"][0]["id"], a.as_str(), "{listed}");
    assert_eq!(
        find("offers", &tiered)["certifications"][0]["scheme"],
        "SecNumCloud"
    );
    assert!(
        data["offers"]
            .as_array()
            .expect("offers")
            .iter()
            .any(|o| o["id"] == tiered.as_str())
    );
    assert!(
        data["organisations"]
            .as_array()
            .expect("orgs")
            .iter()
            .any(|o| o["name"] == "Nuage"),
        "the house provider is listed: {data}"
    );
    let response = app
        .http
        .get(app.url("/open-data/offers.csv"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("test value")
            .starts_with("text/csv")
    );
    let csv = response.text().await.expect("text");
    let header = csv.lines().next().expect("header");
    assert!(
        header.starts_with("id,name,provider_id,provider,category,regions"),
        "{header}"
    );
    assert!(
        csv.contains("\"Tiered, \"\"quoted\"\" offer\""),
        "CSV quoting: {csv}"
    );
    for table in ["organisations", "services"] {
        assert_eq!(
            app.http
                .get(app.url(&format!("/open-data/{table}.csv")))
                .send()
                .await
                .expect("test value")
                .status()
                .as_u16(),
            200
        );
    }
    assert_eq!(public(&app, "/open-data/secrets.csv").await.0, 404);

    // 210 GB: 90 at 0.01 and 110 at 0.005; 2,000 class A, 10,000 class B, 5 GB out.
    let (status, compared) = app
        .http
        .post(app.url("/catalogue/compare"))
        .json(
            &json!({"offers": [tiered], "usage": {"stored_gb": "210", "class_a_requests": 2000,
            "class_b_requests": 10000, "egress_gb": "5"}}),
        )
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .expect("sent");
    assert_eq!(status, 200);
    let compared: Value = compared.json().await.expect("json");
    // 1 + 0.9 + 0.55 + 0.01 + 0.004 + 0.05 = 2.514
    assert_eq!(compared[0]["monthly_price_exact"], "2.514");
    assert_eq!(compared[0]["monthly_price"], "2.51");
    assert_eq!(compared[0]["commitment_price"], "30.17");
    let (status, _) = app
        .http
        .post(app.url("/catalogue/compare"))
        .json(&json!({"offers": [tiered], "usage": {"stored_gb": "-1", "class_a_requests": 0, "class_b_requests": 0, "egress_gb": "0"}}))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .expect("sent");
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_house_order_provisions_a_bucket_a_quota_and_a_key_at_once() {
    let app = spawn_app().await;
    let buyer = app.create_org("Person Buyer").await;
    let (_, token) = app.create_user(&buyer, "me@person.example", "owner").await;
    let (_, member) = app
        .create_user(&buyer, "kid@person.example", "member")
        .await;
    let (_, results) = public(&app, "/directory/search?kind=offer&q=personnel").await;
    let personal = results["hits"][0]["id"]
        .as_str()
        .expect("the personal bundle")
        .to_owned();
    let (_, page) = public(&app, &format!("/catalogue/offers/{personal}")).await;
    assert_eq!(page["instant"], true);
    assert_eq!(page["sheet"]["price"]["monthly_fee"], "1.5");

    let (status, _) = app
        .call(
            Method::POST,
            &format!("/orgs/{buyer}/orders"),
            &member,
            Some(json!({"offer_id": personal})),
        )
        .await;
    assert_eq!(status, 403, "a plain member does not buy");
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/orgs/{buyer}/orders"),
            &token,
            Some(json!({"offer_id": personal, "region": "de-fra"})),
        )
        .await;
    assert_eq!(status, 400, "not one of the offer's regions");

    // The operator's limit on objects survives the order.
    let (status, _) = app
        .root(
            Method::PUT,
            &format!("/orgs/{buyer}/quota"),
            Some(json!({"max_objects": 1000})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, outcome) = app
        .call(
            Method::POST,
            &format!("/orgs/{buyer}/orders"),
            &token,
            Some(json!({"offer_id": personal})),
        )
        .await;
    assert_eq!(status, 201, "{outcome}");
    let sub = &outcome["subscription"];
    assert_eq!(sub["state"], "active");
    assert_eq!(sub["history"][1]["event"], "provisioned");
    let bucket = sub["resources"]["buckets"][0]
        .as_str()
        .expect("bucket")
        .to_owned();
    assert_eq!(sub["resources"]["quota_bytes"], 100_000_000_000i64);
    let key = outcome["credentials"]["access_key_id"]
        .as_str()
        .expect("key")
        .to_owned();
    let secret = outcome["credentials"]["secret_access_key"]
        .as_str()
        .expect("secret")
        .to_owned();

    // The key works at once on the provisioned bucket.
    let s3 = crate::helpers::s3_client(&app.s3, &key, &secret);
    put(&s3, &bucket, "hello.txt", b"bonjour".to_vec().into()).await;
    let (_, usage) = app
        .call(Method::GET, &format!("/orgs/{buyer}/storage"), &token, None)
        .await;
    assert_eq!(usage["max_bytes"], 100_000_000_000i64, "{usage}");
    assert_eq!(usage["max_objects"], 1000, "{usage}");

    // The secret is not stored or shown again.
    let (_, listed) = app
        .call(
            Method::GET,
            &format!("/orgs/{buyer}/subscriptions"),
            &token,
            None,
        )
        .await;
    assert!(!listed.to_string().contains(&secret));

    // Cancelled: the key stops, the quota goes to zero; the data stays.
    let id = sub["id"].as_str().expect("id");
    let (status, cancelled) = app
        .call(
            Method::POST,
            &format!("/subscriptions/{id}/cancel"),
            &token,
            None,
        )
        .await;
    assert_eq!(
        (status, cancelled["state"].as_str()),
        (200, Some("cancelled")),
        "{cancelled}"
    );
    let (_, usage) = app
        .call(Method::GET, &format!("/orgs/{buyer}/storage"), &token, None)
        .await;
    assert_eq!(usage["max_bytes"], 0, "{usage}");
    assert_eq!(usage["objects"], 1);
    let refused = s3
        .get_object()
        .bucket(&bucket)
        .key("hello.txt")
        .send()
        .await;
    assert!(refused.is_err(), "the revoked key is refused");
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/subscriptions/{id}/cancel"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 409);
    assert!(
        audit_actions(&app, &buyer)
            .await
            .contains(&"order.create".to_owned())
    );
}

/// A provider's endpoint: records each delivery's headers and body.
pub async fn webhook_receiver() -> (String, Arc<Mutex<Vec<(String, String, String)>>>) {
    let seen: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let record = seen.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let record = record.clone();
            async move {
                let h = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                record.lock().expect("test value").push((
                    h("nuage-event"),
                    h("nuage-signature"),
                    body,
                ));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, seen)
}

#[tokio::test]
async fn another_providers_order_waits_for_it_and_its_webhook_is_signed() {
    // The receiver listens on loopback, which the default refuses.
    let app = spawn(crate::helpers::Spawn {
        env: vec![(
            "NUAGE_CATALOGUE__WEBHOOK_ALLOW_PRIVATE_ADDRESSES".into(),
            "true".into(),
        )],
        ..Default::default()
    })
    .await;
    let (provider, provider_token) =
        published_org(&app, "Remote Provider", "ops@remote.example", true, false).await;
    let offer_id = published_offer(
        &app,
        &provider,
        &provider_token,
        offer("Remote storage", "fr-par", json!({"monthly_fee": "10"})),
    )
    .await;
    let (url, seen) = webhook_receiver().await;
    let (status, hook) = app
        .call(
            Method::PUT,
            &format!("/orgs/{provider}/webhook"),
            &provider_token,
            Some(json!({"url": url})),
        )
        .await;
    assert_eq!(status, 200, "{hook}");
    let signing = hook["secret"].as_str().expect("secret").to_owned();
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/orgs/{provider}/webhook"),
            &provider_token,
            Some(json!({"url": "ftp://x"})),
        )
        .await;
    assert_eq!(status, 400);

    let buyer = app.create_org("Town Buyer").await;
    let (_, buyer_token) = app.create_user(&buyer, "buyer@town.example", "buyer").await;
    let (status, outcome) = app
        .call(
            Method::POST,
            &format!("/orgs/{buyer}/orders"),
            &buyer_token,
            Some(json!({"offer_id": offer_id})),
        )
        .await;
    assert_eq!(status, 201, "{outcome}");
    assert_eq!(outcome["subscription"]["state"], "pending");
    assert!(outcome["credentials"].is_null());
    let sub = outcome["subscription"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // The endpoint is told, with a signature it can check.
    let mut delivered = None;
    for _ in 0..100 {
        if let Some(d) = seen.lock().expect("test value").first().cloned() {
            delivered = Some(d);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (event, signature, body) = delivered.expect("a webhook delivery");
    assert_eq!(event, "order.created");
    let (t, v1) = signature
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .expect("t=…,v1=…");
    let mut mac = Hmac::<Sha256>::new_from_slice(signing.as_bytes()).expect("test value");
    mac.update(format!("{t}.{body}").as_bytes());
    mac.verify_slice(&hex::decode(v1).expect("hex"))
        .expect("the signature is the HMAC of t.body");
    let payload: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(payload["subscription"]["id"], sub.as_str());
    let (_, deliveries) = app
        .call(
            Method::GET,
            &format!("/orgs/{provider}/webhook/deliveries"),
            &provider_token,
            None,
        )
        .await;
    assert!(deliveries[0]["delivered_at_ms"].is_i64(), "{deliveries}");

    // The buyer cannot fulfil its own order; the provider can.
    let path = format!("/subscriptions/{sub}/fulfilment");
    let (status, _) = app
        .call(
            Method::POST,
            &path,
            &buyer_token,
            Some(json!({"action": "deliver"})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .call(
            Method::POST,
            &path,
            &provider_token,
            Some(json!({"action": "reject"})),
        )
        .await;
    assert_eq!(status, 400, "a rejection needs a reason");
    let (status, accepted) = app
        .call(
            Method::POST,
            &path,
            &provider_token,
            Some(json!({"action": "accept"})),
        )
        .await;
    assert_eq!((status, accepted["state"].as_str()), (200, Some("pending")));
    let (status, delivered) = app
        .call(
            Method::POST,
            &path,
            &provider_token,
            Some(json!({"action": "deliver", "note": "Your tenant is at https://remote.example/t/42"})),
        )
        .await;
    assert_eq!(
        (status, delivered["state"].as_str()),
        (200, Some("active")),
        "{delivered}"
    );
    let (_, seen_by_buyer) = app
        .call(
            Method::GET,
            &format!("/subscriptions/{sub}"),
            &buyer_token,
            None,
        )
        .await;
    let events: Vec<&str> = seen_by_buyer["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(events, ["ordered", "accepted", "delivered"]);
    assert_eq!(
        seen_by_buyer["note"],
        "Your tenant is at https://remote.example/t/42"
    );
    let (status, _) = app
        .call(
            Method::POST,
            &path,
            &provider_token,
            Some(json!({"action": "deliver"})),
        )
        .await;
    assert_eq!(status, 409, "already delivered");
    // Nobody else sees it, or acts on it.
    let stranger = app.create_org("Stranger").await;
    let (_, stranger_token) = app
        .create_user(&stranger, "s@stranger.example", "owner")
        .await;
    for (method, target) in [
        (Method::GET, format!("/subscriptions/{sub}")),
        (Method::POST, format!("/subscriptions/{sub}/cancel")),
    ] {
        let (status, _) = app.call(method, &target, &stranger_token, None).await;
        assert_eq!(status, 404, "{target}");
    }
    let (status, _) = app
        .call(
            Method::POST,
            &path,
            &stranger_token,
            Some(json!({"action": "suspend"})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/orgs/{provider}/sales"),
            &stranger_token,
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (_, sales) = app
        .call(
            Method::GET,
            &format!("/orgs/{provider}/sales"),
            &provider_token,
            None,
        )
        .await;
    assert_eq!(sales[0]["id"], sub.as_str());

    // A withdrawn offer cannot be ordered; nothing is created.
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/sheets/offers/{offer_id}/state"),
            &provider_token,
            Some(json!({"state": "withdrawn"})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/orgs/{buyer}/orders"),
            &buyer_token,
            Some(json!({"offer_id": offer_id})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (_, mine) = app
        .call(
            Method::GET,
            &format!("/orgs/{buyer}/subscriptions"),
            &buyer_token,
            None,
        )
        .await;
    assert_eq!(mine.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn the_demo_fills_an_empty_platform_and_keeps_its_logins_out_of_the_log() {
    let app = spawn(crate::helpers::Spawn {
        args: vec!["--demo".into()],
        ..Default::default()
    })
    .await;
    let path = app.data_dir.join("demo-credentials.txt");
    let credentials = std::fs::read_to_string(&path).expect("the credentials file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("test value")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    let log = app.log();
    assert!(
        log.contains("demo-credentials.txt"),
        "the log names the file"
    );
    let (_, total) = public(&app, "/directory/search?kind=offer").await;
    assert!(total["total"].as_i64().expect("test value") >= 8, "{total}");
    let (_, services) = public(&app, "/directory/search?kind=service").await;
    assert!(services["total"].as_i64().expect("test value") >= 4);
    let (_, jurisdictions) = public(&app, "/directory/search?kind=offer").await;
    assert!(
        jurisdictions["facets"]["jurisdiction"]
            .as_array()
            .expect("test value")
            .len()
            >= 3,
        "{jurisdictions}"
    );

    // Each demo login works, and no password is in the log.
    for line in credentials
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('\t'))
    {
        let mut fields = line.split('\t');
        let (email, password) = (
            fields.next().expect("test value"),
            fields.next().expect("test value"),
        );
        assert!(!log.contains(password), "a demo password is in the log");
        let response = app
            .http
            .post(app.url("/auth/token"))
            .json(&json!({"email": email, "password": password, "name": "demo"}))
            .send()
            .await
            .expect("test value");
        assert_eq!(response.status().as_u16(), 201, "{email}");
    }

    // Two calls for tender: one open a week ahead, one closed with two bids,
    // which the hospital opens with the key in the credentials file.
    let (_, calls) = public(&app, "/tenders").await;
    let calls = calls["items"].as_array().expect("calls").clone();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let key_of = |id: &str| -> String {
        let mut lines = credentials.lines();
        lines.find(|l| l.starts_with('#') && l.ends_with(id));
        lines.next().expect("the key's line").to_owned()
    };
    let closed = calls
        .iter()
        .find(|c| c["closed"] == true)
        .expect("a closed call");
    let open = calls
        .iter()
        .find(|c| c["closed"] == false)
        .expect("an open call");
    let token = |email: &str| {
        let password = credentials
            .lines()
            .find(|l| l.starts_with(email))
            .and_then(|l| l.split('\t').nth(1))
            .expect("a login")
            .to_owned();
        let http = app.http.clone();
        let url = app.url("/auth/token");
        let email = email.to_owned();
        async move {
            let body: Value = http
                .post(url)
                .json(&json!({"email": email, "password": password, "name": "demo"}))
                .send()
                .await
                .expect("token")
                .json()
                .await
                .expect("json");
            body["secret"].as_str().expect("secret").to_owned()
        }
    };
    let hospital = token("dsi@ch-valmont.example").await;
    let closed_id = closed["id"].as_str().expect("id");
    let (status, report) = app
        .call(
            reqwest::Method::POST,
            &format!("/tenders/{closed_id}/open"),
            &hospital,
            Some(json!({"identity": key_of(closed_id)})),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["opened"], 2, "{report}");
    let commune = token("dsi@belleville.example").await;
    let open_id = open["id"].as_str().expect("id");
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            &format!("/tenders/{open_id}/open"),
            &commune,
            Some(json!({"identity": key_of(open_id)})),
        )
        .await;
    assert_eq!(status, 409, "a week ahead: {body}");
}

#[tokio::test]
async fn a_large_search_ranks_a_fair_sample_and_says_so() {
    let app = spawn(crate::helpers::Spawn {
        env: vec![("NUAGE_CATALOGUE__SEARCH_SAMPLE".into(), "4".into())],
        ..crate::helpers::Spawn::default()
    })
    .await;
    let (org, token) =
        published_org(&app, "Provider Sample", "s@sample.example", true, false).await;
    let mut offers = Vec::new();
    for n in 1..=12 {
        let sheet = offer(
            &format!("Sampled Offer {n}"),
            "fr-par",
            json!({"monthly_fee": n.to_string()}),
        );
        offers.push(published_offer(&app, &org, &token, sheet).await);
    }

    // Twelve matches, a sample of four. Which listings a search reads
    // depends on their random search keys, so the test places them: the
    // keys of the buckets a query samples are the top bits of its seed.
    let seed = nuage_domain::catalogue::query_seed("sampled") as u64;
    let mut db = app.database().await;
    let inside = |i: i64| (seed >> 59) as i64 * (1 << 48) + i * 1000 + 1;
    let outside = |i: i64| (1 - (seed >> 63) as i64) * (1 << 52) + i * (1 << 40) + 7;

    // Eight in the query's finest buckets, four in the other half: the
    // probe bucket (an eighth of the keys) holds eight, enough to estimate
    // from, so the total is an estimate: what the sampled bucket holds
    // times the number of buckets.
    for (i, id) in offers.iter().enumerate() {
        let i = i as i64;
        let key = if i < 8 { inside(i) } else { outside(i) };
        set_search_key(&mut db, &app.database_url, id, key).await;
    }
    let body = check_sample(&app, &offers, 8).await;
    let total = body["total"].as_i64().expect("total");
    assert!(
        total >= 32 && total % 8 == 0 && (total as u64 / 8).is_power_of_two(),
        "{body}"
    );

    // None there: the matches are few, they are read whole, and
    // everything is exact.
    for (i, id) in offers.iter().enumerate() {
        set_search_key(&mut db, &app.database_url, id, outside(i as i64)).await;
    }
    let (_, body) = public(&app, "/directory/search?q=sampled").await;
    assert_eq!(body["total"], 12, "{body}");
    assert_eq!(body["total_exact"], true, "{body}");
    assert_eq!(body["ranked"], 12, "{body}");
    assert_eq!(body["facets_exact"], true, "{body}");

    // Three matches fit the sample: everything is exact. A ceiling that is
    // not a whole band is exact too.
    let (_, body) = public(&app, "/directory/search?q=sampled&max_price=3").await;
    assert_eq!(body["total"], 3, "{body}");
    assert_eq!(body["ranked"], 3, "{body}");
    assert_eq!(body["facets_exact"], true, "{body}");
    let (_, body) = public(&app, "/directory/search?q=sampled&max_price=2.5").await;
    assert_eq!(body["total"], 2, "{body}");
    assert_eq!(body["facets"]["price"][0]["count"], 2, "{body}");

    // Filters most listings pass are checked on the rows (SQLite), with or
    // without words, whether the walk stays within twice the sample (one
    // match) or not (twelve): the results are the same.
    // The house's three offers (1.50, 1.50 and 4.90 €) are listed too.
    for (query, total) in [
        ("q=sampled&kind=offer", 12),
        ("q=sampled+12&kind=offer", 1),
        ("kind=offer", 15),
        ("kind=offer&max_price=7", 10),
        ("q=sampled&kind=offer&max_price=100", 12),
        ("q=sampled&kind=organisation", 0),
    ] {
        let (status, body) = public(&app, &format!("/directory/search?{query}")).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(body["total"], total, "{query}: {body}");
        let hits = body["hits"].as_array().expect("hits");
        assert!(hits.iter().all(|h| h["kind"] == "offer"), "{query}: {body}");
        if query.starts_with("q=") {
            assert!(
                hits.iter()
                    .all(|h| offers.contains(&h["id"].as_str().unwrap_or_default().to_owned())),
                "{query}: {body}"
            );
        }
    }
}

#[tokio::test]
async fn an_emptied_index_is_rebuilt_from_the_published_sheets_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let token = crate::helpers::random_root_token();
    let app = spawn(crate::helpers::Spawn {
        data_dir: Some(data_dir.clone()),
        root_token: Some(token.clone()),
        ..crate::helpers::Spawn::default()
    })
    .await;
    let (org, owner) =
        published_org(&app, "Provider Rebuilt", "r@rebuilt.example", true, false).await;
    let sheet = offer("Rebuilt Offer", "fr-par", json!({"monthly_fee": "2"}));
    let id = published_offer(&app, &org, &owner, sheet).await;
    assert_eq!(
        search_ids(&app, "q=rebuilt&kind=offer").await,
        vec![id.clone()]
    );

    // A migration that recreates the index leaves it empty, as here.
    let database_url = app.database_url.clone();
    let mut db = app.database().await;
    let index = if database_url.starts_with("sqlite:") {
        "listings_fts"
    } else {
        "listing_search"
    };
    for table in [index, "fts_token_docs", "listings"] {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut db)
            .await
            .expect("emptied");
    }
    drop(db);
    drop(app);
    let app = spawn(crate::helpers::Spawn {
        data_dir: Some(data_dir),
        root_token: Some(token),
        database_url: Some(database_url),
        ..crate::helpers::Spawn::default()
    })
    .await;
    assert!(app.log().contains("search index rebuilt"), "{}", app.log());
    assert_eq!(search_ids(&app, "q=rebuilt&kind=offer").await, vec![id]);
    let (_, body) = public(&app, "/directory/search?q=rebuilt").await;
    assert_eq!(body["total"], 2, "the profile and the offer: {body}");

    // On SQLite, the upkeep then merges FTS5's segments (at start, then
    // every five minutes once the index changed).
    if app.database_url.starts_with("sqlite:") {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !app.log().contains("search index merged") {
            assert!(std::time::Instant::now() < deadline, "{}", app.log());
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(!app.log().contains("upkeep failed"), "{}", app.log());
    }
}
