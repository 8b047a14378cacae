//! A call for tender from draft to signed contract, with real clients: the
//! buyer's key made by `nuage tender keygen`, bids sealed and submitted by
//! `nuage tender bid submit`, receipts checked by `nuage tender receipt
//! verify`. Before the deadline nobody reads a bid: not the API, not the
//! database, not the data directory. The test build's clock moves the call
//! past its deadline and its standstill period.

use reqwest::Method;
use serde_json::{Value, json};

use crate::billing::invoicing::{house, house_offer};
use crate::helpers::{CliOutput, TestApp, run_cli, spawn_at};
use crate::market::catalogue::{offer, published_offer, published_org};

const DAY: i64 = 86_400_000;
/// 2026-10-01T00:00:00Z.
const START: i64 = 1_790_812_800_000;

fn spec(deadline_ms: i64) -> Value {
    json!({
        "title": "Stockage objet souverain pour les archives",
        "description": "Stockage S3 des archives numérisées de la collectivité.",
        "cpv": "72317000-0",
        "estimated_value": "36000",
        "place": {"code": "75", "kind": "department"},
        "duration_months": 36,
        "price_form": "unit",
        "ccag": "information_technology",
        "procedure": "open",
        "deadline_ms": deadline_ms,
        "lots": [{
            "title": "Archives",
            "category": "storage",
            "usage_profile": {"stored_gb": "100", "class_a_requests": 0, "class_b_requests": 0, "egress_gb": "0"},
            "requirements": [
                {"rule": "jurisdiction", "allowed": ["FR"]},
                {"rule": "reversibility_formats", "required": ["S3"]},
                {"rule": "max_price", "monthly_eur": "100"},
            ],
        }],
        "criteria": [
            {"name": "prix", "kind": "price", "weight": 60},
            {"name": "sécurité", "kind": "technical", "weight": 40, "scale_max": 20},
        ],
    })
}

fn bid(tender: &str, offer: &str, prices: Value, marker: &str) -> String {
    json!({
        "tender_id": tender,
        "lots": [{"lot": 1, "offer_id": offer, "prices": prices,
                  "answers": {"sécurité": format!("Chiffrement par locataire. {marker}")}}],
    })
    .to_string()
}

/// Validates against the copies of the schemas in `schemas/`, offline: the
/// OCDS package schema refers to the release schema by its https address,
/// where the local copy is registered.
fn open_data_errors(document: &Value, which: &str) -> Vec<String> {
    let read = |path: &str| -> Value {
        let text = std::fs::read_to_string(format!(
            "{}/../../schemas/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("schema");
        serde_json::from_str(&text).expect("schema JSON")
    };
    let (schema, registry) = match which {
        "ocds" => (
            read("ocds-1.1.5/release-package-schema.json"),
            jsonschema::Registry::new()
                .add(
                    "https://standard.open-contracting.org/schema/1__1__5/release-schema.json",
                    read("ocds-1.1.5/release-schema.json"),
                )
                .expect("registered")
                .prepare()
                .expect("prepared"),
        ),
        _ => (
            read("decp-2.0.3/schema_decp_v2.0.3.json"),
            jsonschema::Registry::new().prepare().expect("prepared"),
        ),
    };
    let validator = jsonschema::options()
        .with_registry(&registry)
        .build(&schema)
        .expect("a validator");
    validator
        .iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn check_open_data(document: &Value, which: &str) {
    let errors = open_data_errors(document, which);
    assert!(errors.is_empty(), "{which}: {errors:#?}\n{document:#}");
}

async fn public_json(app: &TestApp, path: &str) -> Value {
    let response = app.http.get(app.url(path)).send().await.expect("get");
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.expect("json")
}

/// A public body named `name` with a member of role buyer, and a draft of
/// `call`: (buyer's token, call id).
async fn buyer_with_draft(app: &TestApp, name: &str, email: &str, call: Value) -> (String, String) {
    let (status, body) = app
        .root(
            Method::POST,
            "/orgs",
            Some(json!({"name": name, "kind": "public", "siret": "73282932000074"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let buyer = body["id"].as_str().expect("id").to_owned();
    let (_, token) = app.create_user(&buyer, email, "buyer").await;
    let (status, draft) = app
        .call(
            Method::POST,
            &format!("/orgs/{buyer}/tenders"),
            &token,
            Some(call),
        )
        .await;
    assert_eq!(status, 201, "{draft}");
    let id = draft["id"].as_str().expect("id").to_owned();
    (token, id)
}

fn cli(app: &TestApp, token: &str, args: &[&str]) -> CliOutput {
    run_cli(&app.console, token, args, None)
}

/// The house, with a published offer named `offer`, bids 20 € a month on
/// call `id` through the CLI: (the house's id, the signed receipt).
async fn house_bid(app: &TestApp, id: &str, offer: &str) -> (String, Value) {
    let (house_id, region) = house(app).await;
    let offer_id = house_offer(app, &house_id, &region, offer, json!({"monthly_fee": "20"})).await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("bid.json");
    std::fs::write(
        &file,
        bid(id, &offer_id, json!({"monthly_fee": "20"}), offer),
    )
    .expect("bid");
    let out = cli(
        app,
        &app.root_token,
        &[
            "tender",
            "bid",
            "submit",
            "--tender",
            id,
            "--org",
            &house_id,
            "--file",
            &file.to_string_lossy(),
            "--json",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    (house_id, out.json())
}

/// Every file of the data directory, and the bid and audit tables, as text
/// a marker could be found in.
async fn everything_stored(app: &TestApp) -> String {
    let mut all = String::new();
    let mut stack = vec![app.data_dir.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("data dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                all.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    let mut db = app.database().await;
    for sql in [
        "SELECT ciphertext || receipt || COALESCE(opened, '') FROM bids",
        "SELECT details FROM audit_log",
    ] {
        let rows: Vec<(String,)> = sqlx::query_as(sql).fetch_all(&mut db).await.expect("read");
        for (text,) in rows {
            all.push_str(&text);
        }
    }
    all
}

/// A call for tender as the journey's stages leave it: a public body with a
/// buyer; the house (FR), a provider in France (Nuées), one whose offer is in
/// a region under US jurisdiction (Far Cloud), and one that seals to another
/// key (Égaré). Each test plays the stages before the one it checks.
struct Journey {
    app: TestApp,
    dir: tempfile::TempDir,
    buyer: String,
    buyer_token: String,
    house_id: String,
    house_offer_id: String,
    fr: String,
    fr_token: String,
    fr_offer: String,
    us: String,
    us_token: String,
    us_offer: String,
    other: String,
    other_token: String,
    deadline: i64,
    /// The call, once drafted.
    id: String,
    /// The call's key and its public recipient, made by `nuage tender
    /// keygen` on the buyer's machine.
    key_file: String,
    recipient: String,
    /// In every bid's answers: what must never be stored or shown in clear
    /// before the opening.
    marker: String,
}

impl Journey {
    /// The parties, on a server whose clock is frozen at `START`.
    async fn new() -> Self {
        let app = spawn_at(START).await;
        app.set_clock(START).await;
        let (status, body) = app
            .root(
                Method::POST,
                "/orgs",
                Some(
                    json!({"name": "Ville de Paris", "kind": "public", "siret": "73282932000074"}),
                ),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let buyer = body["id"].as_str().expect("id").to_owned();
        let (_, buyer_token) = app
            .create_user(&buyer, "achats@paris.example", "buyer")
            .await;
        let (house_id, region) = house(&app).await;
        let house_offer_id = house_offer(
            &app,
            &house_id,
            &region,
            "Archives Maison",
            json!({"monthly_fee": "20"}),
        )
        .await;
        let (status, body) = app
            .root(
                Method::PUT,
                "/regions/us-east",
                Some(json!({"location": "Virginia, USA", "jurisdiction": "US"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (fr, fr_token) = published_org(&app, "Nuées", "dsi@nuees.example", true, false).await;
        let fr_offer = published_offer(
            &app,
            &fr,
            &fr_token,
            offer("Nuées Archives", &region, json!({"monthly_fee": "30"})),
        )
        .await;
        let (us, us_token) = published_org(&app, "Far Cloud", "ops@far.example", true, false).await;
        let us_offer = published_offer(
            &app,
            &us,
            &us_token,
            offer("Far Archives", "us-east", json!({"monthly_fee": "10"})),
        )
        .await;
        let (other, other_token) =
            published_org(&app, "Égaré", "dsi@egare.example", true, false).await;
        Self {
            app,
            dir: tempfile::tempdir().expect("dir"),
            buyer,
            buyer_token,
            house_id,
            house_offer_id,
            fr,
            fr_token,
            fr_offer,
            us,
            us_token,
            us_offer,
            other,
            other_token,
            // Twenty days: short for an open procedure.
            deadline: START + 20 * DAY,
            id: String::new(),
            key_file: String::new(),
            recipient: String::new(),
            marker: format!("MARQUEUR-{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// A file of the buyer's and bidders' machines.
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    fn tenders(&self) -> String {
        format!("/orgs/{}/tenders", self.buyer)
    }

    /// The buyer drafts the call.
    async fn draft(&mut self) {
        let (status, draft) = self
            .app
            .call(
                Method::POST,
                &self.tenders(),
                &self.buyer_token,
                Some(spec(self.deadline)),
            )
            .await;
        assert_eq!(status, 201, "{draft}");
        self.id = draft["id"].as_str().expect("id").to_owned();
    }

    /// The buyer makes the call's key on its machine and publishes the call
    /// with it: the client's answer.
    async fn publish(&mut self) -> Value {
        self.key_file = self.path("opening.key");
        let out = run_cli(
            &self.app.console,
            "unused",
            &["tender", "keygen", "--out", &self.key_file],
            None,
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        self.recipient = out.stdout.trim().to_owned();
        let out = cli(
            &self.app,
            &self.buyer_token,
            &[
                "tender",
                "publish",
                "--tender",
                &self.id,
                "--key-file",
                &self.key_file,
                "--json",
            ],
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.json()
    }

    /// A bid written to `name` on the bidder's machine, sealed and submitted
    /// by the client.
    fn submit(&self, token: &str, org: &str, name: &str, body: String) -> CliOutput {
        let file = self.path(name);
        std::fs::write(&file, body).expect("bid file");
        cli(
            &self.app,
            token,
            &[
                "tender", "bid", "submit", "--tender", &self.id, "--org", org, "--file", &file,
                "--json",
            ],
        )
    }

    /// The envelope Égaré seals to a key that is not the call's.
    fn sealed_to_a_stranger(&self) -> Vec<u8> {
        let stranger = age::x25519::Identity::generate();
        age::encrypt(
            &stranger.to_public(),
            bid(&self.id, &self.fr_offer, json!({}), &self.marker).as_bytes(),
        )
        .expect("seal")
    }

    /// Posts an envelope as Égaré.
    async fn post_as_other(&self, body: Vec<u8>) -> reqwest::Response {
        self.app
            .http
            .post(
                self.app
                    .url(&format!("/tenders/{}/bids?org_id={}", self.id, self.other)),
            )
            .bearer_auth(&self.other_token)
            .body(body)
            .send()
            .await
            .expect("post")
    }

    /// The bids: Nuées twice (99 €, then 30 € + 0.5 €/GB: only the second
    /// counts), the house at 50 €, Far Cloud at 40 €, through the client;
    /// Égaré's envelope sealed to another key.
    async fn bid(&self) {
        let marker = &self.marker;
        let bids = [
            (
                &self.fr_token,
                &self.fr,
                "fr-1.json",
                &self.fr_offer,
                json!({"monthly_fee": "99"}),
            ),
            (
                &self.fr_token,
                &self.fr,
                "fr-2.json",
                &self.fr_offer,
                json!({"monthly_fee": "30", "per_gb_month": "0.5"}),
            ),
            (
                &self.app.root_token,
                &self.house_id,
                "house.json",
                &self.house_offer_id,
                json!({"monthly_fee": "50"}),
            ),
            (
                &self.us_token,
                &self.us,
                "us.json",
                &self.us_offer,
                json!({"monthly_fee": "40"}),
            ),
        ];
        for (token, org, name, offer, prices) in bids {
            let out = self.submit(token, org, name, bid(&self.id, offer, prices, marker));
            assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        }
        let response = self.post_as_other(self.sealed_to_a_stranger()).await;
        assert_eq!(response.status(), 201);
    }

    /// Past the deadline, the buyer opens the bids with the call's key: the
    /// opening's report.
    async fn open(&self) -> Value {
        self.app.set_clock(self.deadline).await;
        let out = cli(
            &self.app,
            &self.buyer_token,
            &[
                "tender",
                "open",
                "--tender",
                &self.id,
                "--key-file",
                &self.key_file,
                "--json",
            ],
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.json()
    }

    /// The buyer's evaluation of the lot, through the API.
    async fn evaluation(&self) -> Value {
        let (status, evaluation) = self
            .app
            .call(
                Method::GET,
                &format!("/tenders/{}/lots/1/evaluation", self.id),
                &self.buyer_token,
                None,
            )
            .await;
        assert_eq!(status, 200, "{evaluation}");
        evaluation
    }

    /// The buyer marks the house 10/20 and Nuées 20/20 on security: their
    /// bids' ids.
    async fn mark(&self) -> (String, String) {
        let evaluation = self.evaluation().await;
        let house = by_bidder(&evaluation, &self.house_id)["bid_id"]
            .as_str()
            .expect("bid")
            .to_owned();
        let nuees = by_bidder(&evaluation, &self.fr)["bid_id"]
            .as_str()
            .expect("bid")
            .to_owned();
        for (bid_id, mark) in [(&house, "10"), (&nuees, "20")] {
            let out = cli(
                &self.app,
                &self.buyer_token,
                &[
                    "tender",
                    "mark",
                    "--tender",
                    &self.id,
                    "--lot",
                    "1",
                    "--bid",
                    bid_id,
                    "--mark",
                    &format!("sécurité={mark}"),
                ],
            );
            assert_eq!(out.code, 0, "{}", out.stderr);
        }
        (house, nuees)
    }

    /// The buyer awards the lot: the award.
    async fn award(&self) -> Value {
        let out = cli(
            &self.app,
            &self.buyer_token,
            &[
                "tender", "award", "--tender", &self.id, "--lot", "1", "--json",
            ],
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.json()
    }

    /// Once the standstill is over, the buyer signs: the contract.
    async fn sign(&self) -> Value {
        self.app.set_clock(self.deadline + 11 * DAY).await;
        let out = cli(
            &self.app,
            &self.buyer_token,
            &[
                "tender", "sign", "--tender", &self.id, "--lot", "1", "--json",
            ],
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.json()
    }

    /// A call published and bid on.
    async fn with_bids() -> Self {
        let mut journey = Self::new().await;
        journey.draft().await;
        journey.publish().await;
        journey.bid().await;
        journey
    }
}

/// The candidate `org` of an evaluation.
fn by_bidder(evaluation: &Value, org: &str) -> Value {
    evaluation["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .find(|c| c["bidder_id"] == org)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn bad_drafts_are_refused_and_nothing_is_made() {
    let j = Journey::new().await;
    let app = &j.app;
    let mut bad = spec(j.deadline);
    bad["criteria"][1]["weight"] = json!(30);
    let (status, body) = app
        .call(Method::POST, &j.tenders(), &j.buyer_token, Some(bad))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("sum to 90"),
        "{body}"
    );
    let (status, body) = app
        .call(
            Method::POST,
            &j.tenders(),
            &j.buyer_token,
            Some(spec(START - 1)),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "deadline_ms");
    let (status, body) = app
        .call(
            Method::POST,
            &j.tenders(),
            &j.fr_token,
            Some(spec(START + DAY)),
        )
        .await;
    assert!(
        status == 403 || status == 404,
        "a company is not a buyer: {status} {body}"
    );
    let (status, calls) = app
        .call(Method::GET, &j.tenders(), &j.buyer_token, None)
        .await;
    assert_eq!(status, 200, "{calls}");
    assert_eq!(calls["items"].as_array().map(Vec::len), Some(0), "{calls}");
}

#[tokio::test]
async fn a_draft_is_private_until_published_with_a_key_made_on_the_buyers_machine() {
    let mut j = Journey::new().await;
    j.draft().await;
    let (app, id) = (&j.app, j.id.clone());
    let response = app
        .http
        .get(app.url(&format!("/tenders/{id}")))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 404, "a draft is not public");
    let published = j.publish().await;
    let app = &j.app;
    assert!(j.recipient.starts_with("age1"), "{}", j.recipient);
    assert_eq!(published["state"], "published");
    assert_eq!(published["recipient"], j.recipient.as_str());
    // Twenty days is short for an open procedure: warned.
    assert_eq!(
        published["warnings"][0]["code"], "short_deadline",
        "{published}"
    );
    let public = public_json(app, &format!("/tenders/{id}")).await;
    assert_eq!(
        public["spec"]["title"],
        "Stockage objet souverain pour les archives"
    );
    let package = public_json(app, &format!("/open-data/tenders/{id}/ocds.json")).await;
    check_open_data(&package, "ocds");
    assert_eq!(package["releases"][0]["tag"], json!(["tender"]));
    // The release schema is applied through the registered copy: a tag
    // outside its codelist is caught.
    let mut broken = package.clone();
    broken["releases"][0]["tag"] = json!(["auction"]);
    assert!(!open_data_errors(&broken, "ocds").is_empty());
}

#[tokio::test]
async fn providers_whose_offers_meet_a_lot_are_told_of_the_call() {
    let mut j = Journey::new().await;
    j.draft().await;
    j.publish().await;
    let matching = |org: &str, token: &str| {
        let (http, url, token, id) = (
            j.app.http.clone(),
            j.app.url(&format!("/orgs/{org}/matching-tenders")),
            token.to_owned(),
            j.id.clone(),
        );
        async move {
            let found: Value = http
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("get")
                .json()
                .await
                .expect("json");
            found
                .as_array()
                .expect("calls")
                .iter()
                .any(|t| t["id"] == id.as_str())
        }
    };
    assert!(
        matching(&j.fr, &j.fr_token).await,
        "Nuées is told of the call"
    );
    assert!(
        !matching(&j.us, &j.us_token).await,
        "Far Cloud's offer is under US jurisdiction"
    );
}

#[tokio::test]
async fn bids_are_sealed_by_the_client_and_their_receipts_prove_them() {
    let j = Journey::with_bids().await;
    let (app, id, path) = (&j.app, &j.id, |name: &str| j.path(name));
    // A bid for a lot the call does not have is refused before it is sealed.
    let mut wrong: Value =
        serde_json::from_str(&bid(id, &j.fr_offer, json!({}), &j.marker)).expect("json");
    wrong["lots"][0]["lot"] = json!(2);
    let out = j.submit(&j.fr_token, &j.fr, "wrong.json", wrong.to_string());
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stderr.contains("no lot 2"), "{}", out.stderr);

    // The receipts verify; an altered one does not.
    let receipt = path("fr-2.receipt.json");
    let envelope = path("fr-2.age");
    let out = cli(
        app,
        "unused",
        &[
            "tender",
            "receipt",
            "verify",
            "--file",
            &receipt,
            "--envelope",
            &envelope,
        ],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.starts_with("valid:"), "{}", out.stdout);
    // Once the platform's signing key turns, the receipt still checks with
    // the key of its own epoch, from the published history.
    let (status, rotated) = app
        .root(Method::POST, "/platform/keys/signing/rotate", None)
        .await;
    assert_eq!(status, 201, "{rotated}");
    let out = cli(
        app,
        "unused",
        &[
            "tender",
            "receipt",
            "verify",
            "--file",
            &receipt,
            "--envelope",
            &envelope,
        ],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let mut forged_epoch: Value =
        serde_json::from_str(&std::fs::read_to_string(&receipt).expect("receipt")).expect("json");
    assert_eq!(forged_epoch["key_epoch"], 1);
    forged_epoch["key_epoch"] = json!(2);
    let forged_path = path("forged-epoch.json");
    std::fs::write(&forged_path, forged_epoch.to_string()).expect("write");
    let out = cli(
        app,
        "unused",
        &["tender", "receipt", "verify", "--file", &forged_path],
    );
    assert_eq!(
        out.code, 1,
        "another epoch's key does not check it: {}",
        out.stdout
    );
    let mut altered: Value =
        serde_json::from_str(&std::fs::read_to_string(&receipt).expect("receipt")).expect("json");
    altered["receipt"]["received_at_ms"] = json!(START + 1);
    let altered_path = path("altered.json");
    std::fs::write(&altered_path, altered.to_string()).expect("write");
    let out = cli(
        app,
        "unused",
        &["tender", "receipt", "verify", "--file", &altered_path],
    );
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stderr.contains("altered"), "{}", out.stderr);
    let out = cli(
        app,
        "unused",
        &[
            "tender",
            "receipt",
            "verify",
            "--file",
            &receipt,
            "--envelope",
            &path("fr-1.age"),
        ],
    );
    assert_eq!(out.code, 1, "another envelope: {}", out.stdout);
    // The replaced envelope is dropped from the platform; its digest and
    // receipt stay, and the receipt still proves it with the bidder's copy.
    let mut db = app.database().await;
    let fr_bids: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT ciphertext, sha256, replaced_by FROM bids WHERE bidder_org_id = $1 ORDER BY submitted_at, id",
    )
    .bind(&j.fr)
    .fetch_all(&mut db)
    .await
    .expect("bids");
    assert_eq!(fr_bids.len(), 2);
    assert!(
        fr_bids[0].0.is_empty() && fr_bids[0].2.is_some(),
        "{fr_bids:?}"
    );
    assert_eq!(fr_bids[0].1.len(), 64);
    assert!(!fr_bids[1].0.is_empty() && fr_bids[1].2.is_none());
    let out = cli(
        app,
        "unused",
        &[
            "tender",
            "receipt",
            "verify",
            "--file",
            &path("fr-1.receipt.json"),
            "--envelope",
            &path("fr-1.age"),
        ],
    );
    assert_eq!(
        out.code, 0,
        "the dropped bid's receipt: {}{}",
        out.stdout, out.stderr
    );
}

#[tokio::test]
async fn a_bidder_cannot_flood_a_call_and_the_buyers_members_cannot_bid() {
    let j = Journey::with_bids().await;
    // Égaré's envelope, sealed to another key, was accepted (age does not
    // name its recipient; the opening reports it). A bidder corrects its
    // bid a few times an hour, but cannot flood the call: past ten
    // envelopes in an hour, it waits.
    for _ in 1..10 {
        assert_eq!(
            j.post_as_other(j.sealed_to_a_stranger()).await.status(),
            201
        );
    }
    assert_eq!(
        j.post_as_other(j.sealed_to_a_stranger()).await.status(),
        429
    );
    // Not an age file at all: refused at once.
    let response = j
        .post_as_other(format!("{{\"plain\": \"{}\"}}", j.marker).into_bytes())
        .await;
    assert_eq!(response.status(), 400);
    let problem: Value = response.json().await.expect("problem");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("not an age-encrypted file"),
        "{problem}"
    );
    // The buyer's own members do not bid on its call.
    let own = age::encrypt(
        &j.recipient
            .parse::<age::x25519::Recipient>()
            .expect("recipient"),
        b"{}",
    )
    .expect("seal");
    let response = j
        .app
        .http
        .post(
            j.app
                .url(&format!("/tenders/{}/bids?org_id={}", j.id, j.buyer)),
        )
        .bearer_auth(&j.buyer_token)
        .body(own)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn before_the_deadline_nobody_reads_a_bid() {
    let j = Journey::with_bids().await;
    let (app, id, buyer, marker) = (&j.app, &j.id, &j.buyer, &j.marker);
    // The buyer cannot open or evaluate, the API shows no content, and
    // neither the database nor the data directory holds the plaintext.
    let identity = std::fs::read_to_string(&j.key_file).expect("key");
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/tenders/{id}/open"),
            &j.buyer_token,
            Some(json!({"identity": identity.lines().last().expect("line")})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("after the deadline"),
        "{body}"
    );
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/tenders/{id}/lots/1/evaluation"),
            &j.buyer_token,
            None,
        )
        .await;
    assert_eq!(status, 409, "{body}");
    for token in [&j.buyer_token, &app.root_token] {
        for p in [
            format!("/tenders/{id}"),
            format!("/orgs/{buyer}/tenders"),
            "/tenders".into(),
        ] {
            let (_, body) = app.call(Method::GET, &p, token, None).await;
            assert!(!body.to_string().contains(marker.as_str()), "{p}: {body}");
        }
    }
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/tenders/{id}/bids?org_id={}", j.fr),
            &j.us_token,
            None,
        )
        .await;
    assert!(
        status == 403 || status == 404,
        "another bidder's receipts: {status}"
    );
    assert!(
        !everything_stored(app).await.contains(marker.as_str()),
        "plaintext stored"
    );
}

#[tokio::test]
async fn past_the_deadline_bids_are_closed_and_only_the_calls_key_opens_them() {
    let j = Journey::with_bids().await;
    let (app, id) = (&j.app, &j.id);
    // Bids and withdrawals are refused.
    app.set_clock(j.deadline).await;
    let late = j.submit(
        &j.fr_token,
        &j.fr,
        "late.json",
        bid(id, &j.fr_offer, json!({"monthly_fee": "1"}), &j.marker),
    );
    assert_eq!(late.code, 1, "{}", late.stdout);
    assert!(late.stderr.contains("bids closed"), "{}", late.stderr);
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/tenders/{id}/bids?org_id={}", j.fr),
            &j.fr_token,
            None,
        )
        .await;
    assert_eq!(status, 409);

    // A wrong key is refused and changes nothing; the right one opens three
    // envelopes and reports the fourth.
    let wrong_key = j.path("wrong.key");
    assert_eq!(
        run_cli(
            &app.console,
            "unused",
            &["tender", "keygen", "--out", &wrong_key],
            None
        )
        .code,
        0
    );
    let out = cli(
        app,
        &j.buyer_token,
        &["tender", "open", "--tender", id, "--key-file", &wrong_key],
    );
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains("not the key of this call"),
        "{}",
        out.stderr
    );
    let report = j.open().await;
    assert_eq!(report["envelopes"], 4, "{report}");
    assert_eq!(report["opened"], 3, "{report}");
    assert_eq!(report["unreadable"][0]["bidder_id"], j.other.as_str());
    assert!(
        report["unreadable"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("another key"),
        "{report}"
    );
}

#[tokio::test]
async fn opened_bids_are_checked_rule_by_rule_and_ranked_once_marked() {
    let j = Journey::with_bids().await;
    j.open().await;
    let (app, id) = (&j.app, &j.id);
    // Eligibility per rule, with the reason; the ranking waits for marks.
    let evaluation = j.evaluation().await;
    let far = by_bidder(&evaluation, &j.us);
    assert_eq!(far["eligible"], false);
    let failed: Vec<&Value> = far["eligibility"]
        .as_array()
        .expect("rules")
        .iter()
        .filter(|o| o["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{far}");
    assert_eq!(failed[0]["rule"], "jurisdiction");
    assert_eq!(failed[0]["explanation"], "us-east (US) not under FR");
    let nuees = by_bidder(&evaluation, &j.fr);
    assert_eq!(
        nuees["monthly_price"], "80.00",
        "the second envelope counts"
    );
    assert!(
        nuees["answers"]["sécurité"]
            .as_str()
            .unwrap_or_default()
            .contains(&j.marker)
    );
    assert!(evaluation["incomplete"].is_string(), "{evaluation}");
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/tenders/{id}/lots/1/award"),
            &j.buyer_token,
            None,
        )
        .await;
    assert_eq!(status, 409, "no award before evaluation: {body}");

    // An exclusion needs a reason; marks stay in the scale.
    let nuees_bid_id = nuees["bid_id"].as_str().expect("bid").to_owned();
    let out = cli(
        app,
        &j.buyer_token,
        &[
            "tender",
            "mark",
            "--tender",
            id,
            "--lot",
            "1",
            "--bid",
            &nuees_bid_id,
            "--mark",
            "sécurité=21",
        ],
    );
    assert_eq!(out.code, 1, "{}", out.stdout);
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/tenders/{id}/lots/1/bids/{nuees_bid_id}/marks"),
            &j.buyer_token,
            Some(json!({"exclude": "  "})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    // Marks: house 10/20, Nuées 20/20. House: 60 + 20 = 80; Nuées:
    // 50/80 × 60 + 40 = 77.5.
    let (house_bid_id, nuees_bid_id) = j.mark().await;
    let out = cli(
        app,
        &j.buyer_token,
        &[
            "tender",
            "evaluation",
            "--tender",
            id,
            "--lot",
            "1",
            "--json",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let evaluation = out.json();
    assert!(evaluation["incomplete"].is_null(), "{evaluation}");
    let ranking: Vec<(String, String)> = evaluation["ranking"]
        .as_array()
        .expect("ranking")
        .iter()
        .map(|s| {
            (
                s["bid_id"].as_str().expect("id").to_owned(),
                s["total"].as_str().expect("total").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        ranking,
        vec![
            (house_bid_id.clone(), "80.00".to_owned()),
            (nuees_bid_id, "77.50".to_owned())
        ]
    );
    // The same for people: the client reads the answers as the server's own
    // types (a call with its terms, an evaluation) and writes them out.
    let text = cli(
        app,
        &j.buyer_token,
        &["tender", "evaluation", "--tender", id, "--lot", "1"],
    );
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout
            .contains(&format!("#1\t{house_bid_id}\t80.00 points")),
        "{}",
        text.stdout
    );
    let text = cli(app, &j.buyer_token, &["tender", "show", id]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.starts_with(&format!("{id}\topened\t")),
        "{}",
        text.stdout
    );
}

#[tokio::test]
async fn the_award_waits_out_the_standstill_then_the_signature_provisions_the_offer() {
    let j = Journey::with_bids().await;
    j.open().await;
    j.mark().await;
    let (app, id) = (&j.app, &j.id);
    // Award, then the standstill: no signature for 11 days.
    let award = j.award().await;
    assert_eq!(award["supplier_id"], j.house_id.as_str());
    assert_eq!(award["monthly_price"], "50.00");
    assert_eq!(award["amount"], "1800.00");
    assert_eq!(award["standstill_until_ms"], j.deadline + 11 * DAY);
    let out = cli(
        app,
        &j.buyer_token,
        &["tender", "sign", "--tender", id, "--lot", "1"],
    );
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stderr.contains("standstill"), "{}", out.stderr);

    // After it, signature orders the house offer at the bid's price, and it
    // is provisioned for the buyer at once.
    let signed = j.sign().await;
    let subscription = signed["subscription_id"]
        .as_str()
        .expect("ordered")
        .to_owned();
    let (status, sub) = app
        .call(
            Method::GET,
            &format!("/subscriptions/{subscription}"),
            &j.buyer_token,
            None,
        )
        .await;
    assert_eq!(status, 200, "{sub}");
    assert_eq!(sub["buyer_id"], j.buyer.as_str());
    assert_eq!(sub["state"], "active", "{sub}");
    assert_eq!(sub["offer"]["price"]["monthly_fee"], "50", "{sub}");
    assert_eq!(
        sub["resources"]["buckets"].as_array().map(Vec::len),
        Some(1),
        "{sub}"
    );
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/tenders/{id}/lots/1/sign"),
            &j.buyer_token,
            None,
        )
        .await;
    assert_eq!(status, 409, "signed once");
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/tenders/{id}/cancel"),
            &j.buyer_token,
            Some(json!({"reason": "trop tard"})),
        )
        .await;
    assert_eq!(status, 409, "a signed call is not cancelled");
}

#[tokio::test]
async fn a_signed_contract_is_open_data_as_ocds_and_decp_and_in_the_audit_trail() {
    let j = Journey::with_bids().await;
    j.open().await;
    j.mark().await;
    j.award().await;
    j.sign().await;
    let (app, id) = (&j.app, &j.id);
    // Open data, without an account: the call's OCDS releases (publication,
    // award, contract) and the contract as DECP, both valid.
    let package = public_json(app, &format!("/open-data/tenders/{id}/ocds.json")).await;
    check_open_data(&package, "ocds");
    let tags: Vec<&Value> = package["releases"]
        .as_array()
        .expect("releases")
        .iter()
        .map(|r| &r["tag"][0])
        .collect();
    assert_eq!(
        tags,
        [&json!("tender"), &json!("award"), &json!("contract")]
    );
    let contract = &package["releases"][2];
    assert_eq!(
        contract["awards"][0]["suppliers"][0]["id"],
        j.house_id.as_str()
    );
    assert_eq!(contract["awards"][0]["value"]["amount"], 1800.0);
    assert_eq!(contract["contracts"][0]["status"], "active");
    assert_eq!(contract["tender"]["status"], "complete");
    let all = public_json(app, "/open-data/ocds.json").await;
    check_open_data(&all, "ocds");
    let decp = public_json(app, "/open-data/decp.json").await;
    check_open_data(&decp, "decp");
    let mut broken = decp.clone();
    broken["marches"]["marche"][0]["acheteur"]["id"] = json!("not a SIRET");
    assert!(!open_data_errors(&broken, "decp").is_empty());
    let marches = decp["marches"]["marche"].as_array().expect("marches");
    assert_eq!(marches.len(), 1, "{decp}");
    assert_eq!(marches[0]["acheteur"]["id"], "73282932000074");
    assert_eq!(marches[0]["montant"], 1800.0);
    assert_eq!(marches[0]["offresRecues"], 3);
    assert_eq!(marches[0]["procedure"], "Appel d'offres ouvert");
    assert_eq!(marches[0]["dateNotification"], "2026-11-01");

    // The opening and the award are in the audit trail.
    let (status, audit) = app
        .root(Method::GET, &format!("/orgs/{}/audit", j.buyer), None)
        .await;
    assert_eq!(status, 200, "{audit}");
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in [
        "tender.publish",
        "tender.open",
        "tender.award",
        "tender.sign",
    ] {
        assert!(actions.contains(&action), "{action}: {actions:?}");
    }
}

/// The bid's published JSON Schema and the shape the opening reads agree:
/// what one accepts the other accepts, sample by sample.
#[test]
fn the_published_bid_schema_says_what_the_opening_reads() {
    use nuage_domain::tender::Bid;

    let schema: Value =
        serde_json::from_str(include_str!("../../../../docs/tender-bid.schema.json"))
            .expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let good = [
        json!({"tender_id": "t", "lots": [{"lot": 1, "offer_id": "o", "prices": {"monthly_fee": "30"}}]}),
        json!({"tender_id": "t", "lots": [{"lot": 1, "offer_id": "o", "prices": {"monthly_fee": 30.5}}]}),
        json!({"tender_id": "t", "lots": [{"lot": 2, "offer_id": "o",
            "prices": {"per_gb_month": "0.004", "per_1k_class_a": "0.005", "per_1k_class_b": "0", "per_gb_egress": "0.01"},
            "answers": {"sécurité": "HSM"}}],
            "documents": [{"name": "m.pdf", "media_type": "application/pdf", "content_base64": "JVBERg=="}]}),
    ];
    let bad = [
        json!({"tender_id": "t"}),
        json!({"tender_id": "t", "lots": [{"lot": 1, "offer_id": "o", "prices": {"monthly_fee": -30}}]}),
        json!({"tender_id": "t", "lots": [{"lot": 1, "offer_id": "o", "prices": {}, "extra": 1}]}),
        json!({"tender_id": "t", "lots": [{"lot": 1, "offer_id": "o", "prices": {"monthly_fee": "-1"}}]}),
        json!({"tender_id": "t", "lots": [{"lot": 1, "prices": {}}]}),
    ];
    for sample in &good {
        assert!(validator.is_valid(sample), "schema refuses {sample}");
        serde_json::from_value::<Bid>(sample.clone()).expect("the opening reads it");
    }
    for sample in &bad {
        assert!(!validator.is_valid(sample), "schema accepts {sample}");
        assert!(
            serde_json::from_value::<Bid>(sample.clone()).is_err(),
            "the opening reads {sample}"
        );
    }
}

/// A call declared without follow-up: the reason is required, a draft is
/// not published data, and the cancellation is an OCDS release.
#[tokio::test]
async fn a_call_declared_without_follow_up_is_published_as_such() {
    let app = spawn_at(START).await;
    app.set_clock(START).await;
    let (token, id) = buyer_with_draft(
        &app,
        "Département",
        "achats@dep.example",
        spec(START + 40 * DAY),
    )
    .await;
    let response = app
        .http
        .get(app.url(&format!("/open-data/tenders/{id}/ocds.json")))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 404, "a draft is not open data");
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/tenders/{id}/cancel"),
            &token,
            Some(json!({"reason": "Besoin disparu"})),
        )
        .await;
    assert_eq!(status, 409, "a draft is not cancelled: {body}");
    for bad in ["not-a-key", "AGE-SECRET-KEY-1QQQ"] {
        let (status, body) = app
            .call(
                Method::POST,
                &format!("/tenders/{id}/publish"),
                &token,
                Some(json!({"recipient": bad})),
            )
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["field"], "recipient");
    }
    let recipient = age::x25519::Identity::generate().to_public().to_string();
    let (status, published) = app
        .call(
            Method::POST,
            &format!("/tenders/{id}/publish"),
            &token,
            Some(json!({"recipient": recipient})),
        )
        .await;
    assert_eq!(status, 200, "{published}");
    assert_eq!(published["warnings"], json!([]), "40 days is enough");
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/tenders/{id}/cancel"),
            &token,
            Some(json!({"reason": "  "})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, cancelled) = app
        .call(
            Method::POST,
            &format!("/tenders/{id}/cancel"),
            &token,
            Some(json!({"reason": "Besoin disparu"})),
        )
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled");
    let package = public_json(&app, &format!("/open-data/tenders/{id}/ocds.json")).await;
    check_open_data(&package, "ocds");
    let last = &package["releases"][1];
    assert_eq!(last["tag"], json!(["tenderCancellation"]));
    assert_eq!(last["tender"]["status"], "cancelled");
    assert_eq!(last["tender"]["statusDetails"], "Besoin disparu");
    let decp = public_json(&app, "/open-data/decp.json").await;
    check_open_data(&decp, "decp");
    assert_eq!(decp["marches"]["marche"], json!([]));
}

/// A key split among a committee: any two of three shares open, one does
/// not, and the same share twice counts once.
#[tokio::test]
async fn a_committee_opens_with_enough_shares_and_no_fewer() {
    let app = spawn_at(START).await;
    app.set_clock(START).await;
    let dir = tempfile::tempdir().expect("dir");
    let base = dir.path().join("committee").to_string_lossy().into_owned();
    let (token, id) = buyer_with_draft(
        &app,
        "Région",
        "achats@region.example",
        spec(START + 40 * DAY),
    )
    .await;

    let out = run_cli(
        &app.console,
        "unused",
        &[
            "tender",
            "keygen",
            "--out",
            &base,
            "--shares",
            "3",
            "--threshold",
            "2",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let recipient = out.stdout.trim().to_owned();
    assert!(
        !std::path::Path::new(&base).exists(),
        "the whole key is written nowhere"
    );
    let share = |n: u8| format!("{base}.share-{n}");
    let text = std::fs::read_to_string(share(1)).expect("share");
    assert!(!text.contains("AGE-SECRET-KEY"), "{text}");
    let out = cli(
        &app,
        &token,
        &[
            "tender",
            "publish",
            "--tender",
            &id,
            "--recipient",
            &recipient,
            "--shares",
            "3",
            "--threshold",
            "2",
            "--json",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["shares"], json!({"threshold": 2, "total": 3}));

    house_bid(&app, &id, "Archives Comité").await;

    app.set_clock(START + 40 * DAY).await;
    let open = |shares: &[u8]| {
        let mut args = vec![
            "tender".to_owned(),
            "open".into(),
            "--tender".into(),
            id.clone(),
            "--json".into(),
        ];
        for n in shares {
            args.push("--share".into());
            args.push(share(*n));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&app, &token, &args)
    };
    let out = open(&[2]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains("too few shares: 2 are needed, 1 given"),
        "{}",
        out.stderr
    );
    let out = open(&[2, 2]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stderr.contains("too few shares"), "{}", out.stderr);
    let out = open(&[1, 3]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["opened"], 1);
}

/// Questions stay between the asker and the buyer until answered, then are
/// public without the asker's name; amendments are versioned, extend the
/// deadline only, tell the bidders, and are OCDS releases.
#[tokio::test]
async fn questions_are_answered_to_all_and_amendments_are_versioned() {
    let app = spawn_at(START).await;
    app.set_clock(START).await;
    let dir = tempfile::tempdir().expect("dir");
    let mut call = spec(START + 40 * DAY);
    call["questions_until_ms"] = json!(START + 30 * DAY);
    let (token, id) =
        buyer_with_draft(&app, "Métropole", "achats@metropole.example", call.clone()).await;
    let recipient = age::x25519::Identity::generate().to_public().to_string();
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/tenders/{id}/publish"),
            &token,
            Some(json!({"recipient": recipient})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (one, one_token) = published_org(&app, "Brume", "dsi@brume.example", true, false).await;
    let (two, two_token) = published_org(&app, "Bruine", "dsi@bruine.example", true, false).await;

    // Two private questions.
    let out = cli(
        &app,
        &one_token,
        &[
            "tender",
            "ask",
            "--tender",
            &id,
            "--org",
            &one,
            "--question",
            "Le chiffrement côté client est-il exigé ?",
            "--json",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let q1 = out.json()["id"].as_str().expect("id").to_owned();
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/tenders/{id}/questions?org_id={two}"),
            &two_token,
            Some(json!({"question": "Quelle réversibilité ?"})),
        )
        .await;
    assert_eq!(status, 201);
    let questions = |token: Option<&str>, org: Option<&str>| {
        let mut url = app.url(&format!("/tenders/{id}/questions"));
        if let Some(o) = org {
            url.push_str(&format!("?org_id={o}"));
        }
        let mut request = app.http.get(url);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        async move {
            let response = request.send().await.expect("get");
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    assert_eq!(
        questions(None, None).await,
        (200, json!([])),
        "nothing is public yet"
    );
    let (_, mine) = questions(Some(&one_token), Some(&one)).await;
    assert_eq!(mine.as_array().map(Vec::len), Some(1), "{mine}");
    assert!(mine[0]["asker_id"].is_null());
    let (status, _) = questions(Some(&two_token), Some(&one)).await;
    assert!(
        status == 403 || status == 404,
        "another's questions: {status}"
    );
    let (_, all) = questions(Some(&token), None).await;
    assert_eq!(all.as_array().map(Vec::len), Some(2), "{all}");
    assert_eq!(all[0]["asker_id"], one.as_str());

    // The answer is public, without the asker; once only.
    let out = cli(
        &app,
        &token,
        &[
            "tender",
            "answer",
            "--tender",
            &id,
            "--question-id",
            &q1,
            "--answer",
            "Non : le chiffrement au repos par locataire suffit.",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (_, public) = questions(None, None).await;
    assert_eq!(public.as_array().map(Vec::len), Some(1), "{public}");
    assert!(public[0]["asker_id"].is_null(), "{public}");
    assert!(
        public[0]["answer"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Non")
    );
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/tenders/{id}/questions/{q1}/answer"),
            &token,
            Some(json!({"answer": "encore"})),
        )
        .await;
    assert_eq!(status, 409);

    // A bid, then an amendment: weights and a later deadline. The bidder is
    // told; the deadline cannot come forward; nothing changed is refused.
    house_bid(&app, &id, "Archives Métropole").await;
    let mut amended = call.clone();
    amended["criteria"][0]["weight"] = json!(50);
    amended["criteria"][1]["weight"] = json!(50);
    amended["deadline_ms"] = json!(START + 45 * DAY);
    let amended_file = dir.path().join("amended.json");
    std::fs::write(&amended_file, amended.to_string()).expect("write");
    let out = cli(
        &app,
        &token,
        &[
            "tender",
            "amend",
            "--tender",
            &id,
            "--file",
            &amended_file.to_string_lossy(),
            "--summary",
            "Pondération revue, délai prolongé",
            "--json",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let amendment = out.json();
    assert_eq!(amendment["version"]["version"], 2);
    assert_eq!(
        amendment["version"]["changes"],
        json!(["deadline_ms", "criteria"])
    );
    assert_eq!(amendment["bidders_told"], 1);
    let mut earlier = amended.clone();
    earlier["deadline_ms"] = json!(START + 41 * DAY);
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/tenders/{id}/amendments"),
            &token,
            Some(json!({"spec": earlier, "summary": "plus tôt"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "deadline_ms");
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/tenders/{id}/amendments"),
            &token,
            Some(json!({"spec": amended, "summary": "rien"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let versions = public_json(&app, &format!("/tenders/{id}/versions")).await;
    assert_eq!(versions.as_array().map(Vec::len), Some(2), "{versions}");
    assert_eq!(versions[0]["spec"]["criteria"][0]["weight"], 60);
    assert_eq!(versions[1]["spec"]["criteria"][0]["weight"], 50);
    let call_now = public_json(&app, &format!("/tenders/{id}")).await;
    assert_eq!(call_now["version"], 2);
    assert_eq!(call_now["spec"]["deadline_ms"], START + 45 * DAY);
    let package = public_json(&app, &format!("/open-data/tenders/{id}/ocds.json")).await;
    check_open_data(&package, "ocds");
    assert_eq!(package["releases"][1]["tag"], json!(["tenderAmendment"]));
    assert_eq!(
        package["releases"][1]["tender"]["amendments"][0]["rationale"],
        "Pondération revue, délai prolongé"
    );

    // After the questions' cut-off, no more questions.
    app.set_clock(START + 30 * DAY).await;
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/tenders/{id}/questions?org_id={two}"),
            &two_token,
            Some(json!({"question": "Trop tard ?"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
}

/// A call's documents: attached to the draft, sealed in the platform's
/// storage (no plaintext on disk), published with the call and listed in
/// its OCDS release; bad names, duplicates and late changes refused.
#[tokio::test]
async fn a_calls_documents_are_sealed_and_published_with_it() {
    let app = spawn_at(START).await;
    app.set_clock(START).await;
    let (token, id) = buyer_with_draft(
        &app,
        "Métropole",
        "achats@metropole.example",
        spec(START + 40 * DAY),
    )
    .await;
    let marker = "RC-DOCUMENT-MARKER-4c1d";
    // Several 64 KiB chunks, so that every chunk is sealed and opened.
    let content = format!("{marker}\n").repeat(20_000).into_bytes();
    let upload = |name: &str, body: Vec<u8>, token: Option<&str>| {
        let mut request = app
            .http
            .post(app.url(&format!("/tenders/{id}/documents")))
            .query(&[("name", name)])
            .header("content-type", "application/pdf")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let response = upload(
        "Règlement de consultation.pdf",
        content.clone(),
        Some(&token),
    )
    .await
    .expect("upload");
    assert_eq!(response.status(), 201);
    let document: Value = response.json().await.expect("json");
    assert_eq!(document["size"], content.len());
    assert_eq!(document["media_type"], "application/pdf");
    let doc_id = document["id"].as_str().expect("id").to_owned();

    // Bad names and a duplicate change nothing.
    for bad in ["../etc/passwd", "a/b.pdf", "", "..", "nul\u{0}.pdf"] {
        let response = upload(bad, b"x".to_vec(), Some(&token))
            .await
            .expect("upload");
        assert_eq!(response.status(), 400, "{bad:?}");
        let problem: Value = response.json().await.expect("json");
        assert_eq!(problem["field"], "name", "{bad:?}");
    }
    let response = upload("Règlement de consultation.pdf", b"x".to_vec(), Some(&token))
        .await
        .expect("upload");
    assert_eq!(response.status(), 409);
    let response = upload("anonyme.pdf", b"x".to_vec(), None)
        .await
        .expect("upload");
    assert_eq!(response.status(), 401);
    let response = upload("CCTP.txt", b"to be removed".to_vec(), Some(&token))
        .await
        .expect("upload");
    assert_eq!(response.status(), 201);
    let removed: Value = response.json().await.expect("json");
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!(
                "/tenders/{id}/documents/{}",
                removed["id"].as_str().expect("id")
            ),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 204);
    // The CLI attaches a file under its own name, its type by its extension.
    let dir = tempfile::tempdir().expect("dir");
    let annex = dir.path().join("Annexe financière.csv");
    std::fs::write(&annex, "ligne;prix\n").expect("write");
    let out = cli(
        &app,
        &token,
        &[
            "tender",
            "document",
            "add",
            "--tender",
            &id,
            annex.to_str().expect("path"),
            "--json",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["media_type"], "text/csv");
    let out = cli(
        &app,
        &token,
        &["tender", "document", "list", "--tender", &id],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("Annexe financière.csv"),
        "{}",
        out.stdout
    );

    // A draft's documents are its buyer's only.
    let anonymous = app
        .http
        .get(app.url(&format!("/tenders/{id}/documents")))
        .send()
        .await
        .expect("get");
    assert_eq!(anonymous.status(), 404);
    let (status, listed) = app
        .call(
            Method::GET,
            &format!("/tenders/{id}/documents"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");

    // Sealed: the marker is nowhere in the data directory nor the tables.
    assert!(
        !everything_stored(&app).await.contains(marker),
        "a document is stored in the clear"
    );

    let recipient = age::x25519::Identity::generate().to_public().to_string();
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/tenders/{id}/publish"),
            &token,
            Some(json!({"recipient": recipient})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let response = upload("Annexe.pdf", b"late".to_vec(), Some(&token))
        .await
        .expect("upload");
    assert_eq!(
        response.status(),
        409,
        "a published call's documents are fixed"
    );

    // Published: anyone downloads it, byte for byte, under its name.
    let listed = public_json(&app, &format!("/tenders/{id}/documents")).await;
    assert_eq!(
        listed[1]["name"], "Règlement de consultation.pdf",
        "sorted by name"
    );
    let download = app
        .http
        .get(app.url(&format!("/tenders/{id}/documents/{doc_id}")))
        .send()
        .await
        .expect("get");
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["content-type"], "application/pdf");
    assert_eq!(
        download.headers()["content-disposition"],
        "attachment; filename*=UTF-8''R%C3%A8glement%20de%20consultation.pdf"
    );
    assert_eq!(
        download.bytes().await.expect("bytes").as_ref(),
        content.as_slice()
    );
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/tenders/{id}/documents/{doc_id}"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 409, "a published call's documents stay");

    // The OCDS release names the document with its address.
    let package = public_json(&app, &format!("/open-data/tenders/{id}/ocds.json")).await;
    check_open_data(&package, "ocds");
    let documents = &package["releases"][0]["tender"]["documents"];
    assert_eq!(documents[1]["id"], doc_id.as_str());
    assert_eq!(documents[1]["title"], "Règlement de consultation.pdf");
    assert!(
        documents[1]["url"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("/api/v1/tenders/{id}/documents/{doc_id}"))),
        "{documents}"
    );
}

/// The console's signature form, past a standstill that no browser test can
/// wait for: refused inside it with the reason, nothing signed; after it, the
/// contract is signed and the winning offer ordered.
#[tokio::test]
async fn the_console_signs_a_contract_once_the_standstill_is_over() {
    use age::secrecy::ExposeSecret;

    let app = spawn_at(START).await;
    app.set_clock(START).await;
    let (token, id) = buyer_with_draft(
        &app,
        "Agglomération",
        "achats@agglo.example",
        spec(START + 40 * DAY),
    )
    .await;
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public();
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/tenders/{id}/publish"),
            &token,
            Some(json!({"recipient": recipient.to_string()})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (house_id, receipt) = house_bid(&app, &id, "Archives Agglo").await;
    let bid_id = receipt["receipt"]["bid_id"].as_str().expect("bid id");

    let deadline = START + 40 * DAY;
    app.set_clock(deadline).await;
    for (method, path, body) in [
        (
            Method::POST,
            format!("/tenders/{id}/open"),
            Some(json!({"identity": identity.to_string().expose_secret()})),
        ),
        (
            Method::PUT,
            format!("/tenders/{id}/lots/1/bids/{bid_id}/marks"),
            Some(json!({"marks": {"sécurité": "15"}})),
        ),
        (Method::POST, format!("/tenders/{id}/lots/1/award"), None),
    ] {
        let (status, body) = app.call(method, &path, &token, body).await;
        assert_eq!(status, 200, "{path}: {body}");
    }

    // The bidder learns its result.
    let (status, results) = app
        .call(
            Method::GET,
            &format!("/tenders/{id}/results?org_id={house_id}"),
            &app.root_token,
            None,
        )
        .await;
    assert_eq!(status, 200, "{results}");
    assert_eq!(results[0]["won"], true, "{results}");
    assert_eq!(results[0]["your_rank"], 1, "{results}");
    assert_eq!(results[0]["your_score"], results[0]["winner_score"]);

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let lot_page = format!("{}/tenders/{id}/lots/1", app.console);
    // Signs in, reads the lot's page and posts its signature form.
    let sign = || async {
        let session = app.console_session("achats@agglo.example").await;
        let page = client
            .get(&lot_page)
            .header("cookie", format!("nuage_session={session}"))
            .send()
            .await
            .expect("lot page")
            .text()
            .await
            .expect("html");
        assert!(page.contains("id=\"sign-form\""), "{page}");
        let csrf = page
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the form's CSRF token")
            .to_owned();
        client
            .post(format!("{lot_page}/sign"))
            .header("cookie", format!("nuage_session={session}"))
            .header("accept-language", "en")
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .expect("sign")
    };
    let refused = sign().await;
    assert_eq!(refused.status(), 409);
    let html = refused.text().await.expect("html");
    assert!(
        html.contains("role=\"alert\"") && html.contains("standstill"),
        "{html}"
    );
    let (_, view) = app
        .call(Method::GET, &format!("/tenders/{id}"), &token, None)
        .await;
    assert_eq!(
        view["awards"][0]["signed_at_ms"],
        Value::Null,
        "nothing signed"
    );

    // Eleven days later (a new session: the first has expired).
    app.set_clock(deadline + 11 * DAY).await;
    let signed = sign().await;
    assert_eq!(signed.status(), 303);
    assert!(
        signed.headers()["location"]
            .to_str()
            .is_ok_and(|l| l.ends_with("/lots/1?notice=contract_signed")),
        "{:?}",
        signed.headers()
    );
    let (_, view) = app
        .call(Method::GET, &format!("/tenders/{id}"), &token, None)
        .await;
    assert_eq!(view["awards"][0]["signed_at_ms"], deadline + 11 * DAY);
    assert!(
        view["awards"][0]["subscription_id"].is_string(),
        "ordered: {view}"
    );
}
