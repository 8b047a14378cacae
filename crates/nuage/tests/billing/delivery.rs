//! Invoices delivered to their buyers through each channel — the operator's
//! plateforme agréée, Chorus Pro, e-mail, a signed webhook — each against a
//! local stand-in that checks what it receives, with their failure paths,
//! and visible to both parties.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

use crate::billing::invoicing::{invoices, personal_bundle, run};
use crate::helpers::{Spawn, TestApp, spawn};
use crate::market::catalogue::webhook_receiver;
use crate::platform::mail::SmtpSink;

const DAY: i64 = 86_400_000;
/// 2026-10-01 and 2026-11-01, 00:00 UTC.
const OCTOBER: i64 = 1_790_812_800_000;
const NOVEMBER: i64 = OCTOBER + 31 * DAY;

/// What a stand-in received: its headers and body.
type Seen = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// A plateforme agréée that answers the attempts it is sent in turn with
/// `answers` (the last one from then on), and keeps what it received.
async fn plateforme_agreee(answers: Vec<u16>) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let router = axum::Router::new().route(
        "/invoices",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let record = record.clone();
            let answers = answers.clone();
            async move {
                let mut seen = record.lock().expect("lock");
                seen.push((headers, body.to_vec()));
                let status = answers[(seen.len() - 1).min(answers.len() - 1)];
                let body = json!({"id": format!("pa-{}", seen.len())}).to_string();
                (StatusCode::from_u16(status).expect("status"), body)
            }
        }),
    );
    (serve(router, "/invoices").await, seen)
}

/// PISTE's token endpoint and Chorus Pro's deposit of a flow, which takes
/// the first flow and refuses the others.
async fn chorus_pro() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let router = axum::Router::new()
        .route(
            "/token",
            axum::routing::post(|body: String| async move {
                assert!(body.contains("grant_type=client_credentials"), "{body}");
                assert!(body.contains("client_id=nuage-client"), "{body}");
                axum::Json(json!({"access_token": "piste-token", "token_type": "Bearer"}))
            }),
        )
        .route(
            "/cpro/factures/v1/deposer/flux",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let record = record.clone();
                async move {
                    let mut seen = record.lock().expect("lock");
                    seen.push((headers, body.to_vec()));
                    // The first flow is taken, the next refused.
                    if seen.len() == 1 {
                        axum::Json(json!({"codeRetour": 0, "libelle": "GCU_MSG_01_000", "numeroFluxDepot": "flux-42"}))
                    } else {
                        axum::Json(json!({"codeRetour": 1, "libelle": "GCU_MSG_05_001 flux non conforme"}))
                    }
                }
            }),
        );
    (serve(router, "").await, seen)
}

/// Serves a stand-in on a free port; its URL, with `path`.
async fn serve(router: axum::Router, path: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}{path}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn customer(app: &TestApp, name: &str, kind: &str, country: &str, offer: &str) -> String {
    crate::billing::invoicing::customer(
        app,
        json!({"name": name, "kind": kind, "country": country}),
        offer,
    )
    .await
}

async fn deliveries(app: &TestApp, token: &str, invoice: &Value) -> Vec<Value> {
    let id = invoice["id"].as_str().expect("id");
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/invoices/{id}/deliveries"),
            token,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_array().expect("deliveries").clone()
}

#[tokio::test]
async fn each_invoice_reaches_its_buyer_through_its_channel_and_says_how() {
    // The PA refuses the first attempt for now (503), the second for good
    // (422), then takes everything.
    let (pa_url, pa_seen) = plateforme_agreee(vec![503, 422, 201]).await;
    let (chorus_url, chorus_seen) = chorus_pro().await;
    let sink = SmtpSink::start().await;
    let (hook_url, hook_seen) = webhook_receiver().await;
    let app = spawn(Spawn {
        clock: Some(OCTOBER),
        env: vec![
            ("NUAGE_BILLING__PA__URL".into(), pa_url.clone()),
            ("NUAGE_BILLING__PA__TOKEN".into(), "pa-secret-token".into()),
            (
                "NUAGE_BILLING__CHORUS_PRO__TOKEN_URL".into(),
                format!("{chorus_url}/token"),
            ),
            (
                "NUAGE_BILLING__CHORUS_PRO__API_URL".into(),
                chorus_url.clone(),
            ),
            (
                "NUAGE_BILLING__CHORUS_PRO__CLIENT_ID".into(),
                "nuage-client".into(),
            ),
            (
                "NUAGE_BILLING__CHORUS_PRO__CLIENT_SECRET".into(),
                "client-secret".into(),
            ),
            (
                "NUAGE_BILLING__CHORUS_PRO__ACCOUNT_LOGIN".into(),
                "tech@nuage".into(),
            ),
            (
                "NUAGE_BILLING__CHORUS_PRO__ACCOUNT_PASSWORD".into(),
                "account-password".into(),
            ),
            (
                "NUAGE_BILLING__DELIVERY_CHECK_SECONDS".into(),
                "3600".into(),
            ),
            ("NUAGE_MAIL__SMTP_HOST".into(), "127.0.0.1".into()),
            ("NUAGE_MAIL__SMTP_PORT".into(), sink.port.to_string()),
            ("NUAGE_MAIL__FROM".into(), "factures@localhost.test".into()),
            (
                "NUAGE_CATALOGUE__WEBHOOK_ALLOW_PRIVATE_ADDRESSES".into(),
                "true".into(),
            ),
        ],
        ..Spawn::default()
    })
    .await;
    let personal = personal_bundle(&app).await;
    app.set_clock(OCTOBER).await;
    let (company_a, company_b) = (
        customer(&app, "Entreprise A", "company", "FR", &personal).await,
        customer(&app, "Entreprise B", "company", "FR", &personal).await,
    );
    let public = customer(&app, "Mairie de Test", "public", "FR", &personal).await;
    let public_b = customer(&app, "Syndicat de Test", "public", "FR", &personal).await;
    let person = customer(&app, "Particulière", "person", "FR", &personal).await;
    let (_, person_token) = app
        .create_user(&person, "particuliere@example.org", "owner")
        .await;
    let foreign = customer(&app, "Kunde GmbH", "company", "DE", &personal).await;
    let (status, _) = app
        .root(
            Method::PUT,
            &format!("/orgs/{foreign}/tax"),
            Some(json!({"vat_number": "DE139115146"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = app
        .root(
            Method::PUT,
            &format!("/orgs/{foreign}/webhook"),
            Some(json!({"url": hook_url})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let secret = body["secret"].as_str().expect("secret").to_owned();

    app.set_clock(NOVEMBER + DAY).await;
    let (status, summary) = run(&app, "2026-10").await;
    assert_eq!(status, 200, "{summary}");
    let invoice_of = |org: String| {
        let app = &app;
        async move {
            let all = invoices(app, &org).await;
            assert_eq!(all.len(), 1, "{org}");
            all[0].clone()
        }
    };
    let inv_public_b = invoice_of(public_b.clone()).await;
    let (inv_a, inv_b, inv_public, inv_person, inv_foreign) = (
        invoice_of(company_a.clone()).await,
        invoice_of(company_b.clone()).await,
        invoice_of(public.clone()).await,
        invoice_of(person.clone()).await,
        invoice_of(foreign.clone()).await,
    );
    // Queued with the invoice, each on its buyer's channel.
    for (invoice, channel) in [
        (&inv_a, "pa"),
        (&inv_b, "pa"),
        (&inv_public, "chorus_pro"),
        (&inv_public_b, "chorus_pro"),
        (&inv_person, "email"),
        (&inv_foreign, "webhook"),
    ] {
        let d = deliveries(&app, &app.root_token, invoice).await;
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0]["channel"], channel);
        assert_eq!(d[0]["status"], "pending");
        assert_eq!(d[0]["attempts"], json!([]));
    }

    assert_eq!(
        app.run_job("invoice-deliveries").await,
        "3 invoices delivered"
    );

    // Chorus Pro: a token from PISTE, then the Factur-X deposited; the
    // flow Chorus Pro refuses is given up, not sent again.
    let taken_number = {
        let seen = chorus_seen.lock().expect("lock");
        assert_eq!(seen.len(), 2);
        let (h, body) = &seen[0];
        assert_eq!(header(h, "authorization"), "Bearer piste-token");
        assert_eq!(
            header(h, "cpro-account"),
            base64::engine::general_purpose::STANDARD.encode("tech@nuage:account-password")
        );
        let body: Value = serde_json::from_slice(body).expect("json");
        assert_eq!(body["syntaxeFlux"], "IN_DP_E2_CII_FACTURX");
        let pdf = base64::engine::general_purpose::STANDARD
            .decode(body["fichierFlux"].as_str().expect("flow"))
            .expect("base64");
        assert!(pdf.starts_with(b"%PDF"), "a PDF");
        body["nomFichier"].as_str().expect("name").to_owned()
    };
    let (taken, refused) =
        if taken_number == format!("{}.pdf", inv_public["number"].as_str().expect("n")) {
            (&inv_public, &inv_public_b)
        } else {
            (&inv_public_b, &inv_public)
        };
    let d = deliveries(&app, &app.root_token, taken).await;
    assert_eq!(
        (d[0]["status"].clone(), d[0]["remote_id"].clone()),
        (json!("delivered"), json!("flux-42"))
    );
    let d = deliveries(&app, &app.root_token, refused).await;
    assert_eq!(d[0]["status"], "failed", "{d:?}");
    assert!(
        d[0]["attempts"][0]["detail"]
            .as_str()
            .expect("detail")
            .contains("flux non conforme"),
        "{d:?}"
    );
    // E-mail to the buyer's owner, Factur-X attached.
    let mail = sink
        .wait_for(&format!(
            "{}.pdf",
            inv_person["number"].as_str().expect("n")
        ))
        .await;
    assert!(mail.contains("particuliere@example.org"), "{mail}");
    assert!(mail.contains("application/pdf"), "{mail}");
    let d = deliveries(&app, &person_token, &inv_person).await;
    assert_eq!(d[0]["status"], "delivered", "the buyer sees it: {d:?}");
    // The webhook, signed with the buyer's secret, with the UBL.
    {
        let seen = hook_seen.lock().expect("lock");
        let (event, signature, body) = seen
            .iter()
            .find(|(e, _, _)| e == "invoice.issued")
            .expect("an invoice.issued delivery");
        assert_eq!(event, "invoice.issued");
        let (t, v1) = signature
            .split_once(",v1=")
            .map(|(t, v)| (t.trim_start_matches("t="), v))
            .expect("signature");
        use hmac::Mac as _;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(format!("{t}.{body}").as_bytes());
        assert_eq!(hex::encode(mac.finalize().into_bytes()), v1, "signed");
        let body: Value = serde_json::from_str(body).expect("json");
        assert_eq!(body["invoice"]["id"], inv_foreign["id"]);
        assert!(
            body["ubl"].as_str().expect("ubl").contains("<Invoice"),
            "{body}"
        );
    }
    // The PA: one attempt failed for now, the other for good.
    let (a, b) = (
        deliveries(&app, &app.root_token, &inv_a).await.remove(0),
        deliveries(&app, &app.root_token, &inv_b).await.remove(0),
    );
    let (retried, refused) = if a["status"] == "pending" {
        (a, b)
    } else {
        (b, a)
    };
    let retried_invoice =
        if retried["id"] == deliveries(&app, &app.root_token, &inv_a).await[0]["id"] {
            inv_a.clone()
        } else {
            inv_b.clone()
        };
    assert_eq!(retried["status"], "pending", "{retried}");
    assert_eq!(retried["attempts"][0]["ok"], false);
    assert!(
        retried["attempts"][0]["detail"]
            .as_str()
            .expect("detail")
            .contains("503"),
        "{retried}"
    );
    assert!(retried["next_attempt_at_ms"].as_i64().is_some());
    assert_eq!(refused["status"], "failed", "{refused}");
    assert!(
        refused["attempts"][0]["detail"]
            .as_str()
            .expect("detail")
            .contains("422"),
        "{refused}"
    );
    // Not before its time; then delivered, and the PA names it.
    assert_eq!(
        app.run_job("invoice-deliveries").await,
        "0 invoices delivered"
    );
    app.set_clock(NOVEMBER + DAY + 2 * 60_000).await;
    assert_eq!(
        app.run_job("invoice-deliveries").await,
        "1 invoices delivered"
    );
    let d = deliveries(&app, &app.root_token, &retried_invoice).await;
    assert_eq!(d[0]["status"], "delivered", "{d:?}");
    assert_eq!(d[0]["remote_id"], "pa-3");
    assert_eq!(d[0]["attempts"].as_array().map(Vec::len), Some(2));
    {
        let seen = pa_seen.lock().expect("lock");
        assert_eq!(seen.len(), 3, "the refused one is not sent again");
        let (h, body) = &seen[2];
        assert_eq!(header(h, "authorization"), "Bearer pa-secret-token");
        assert_eq!(header(h, "content-type"), "application/pdf");
        assert_eq!(
            header(h, "idempotency-key"),
            retried_invoice["id"].as_str().expect("id")
        );
        assert_eq!(
            header(h, "nuage-invoice-number"),
            retried_invoice["number"].as_str().expect("n")
        );
        assert_eq!(header(h, "nuage-buyer-siren"), "732829320");
        assert!(body.starts_with(b"%PDF"));
    }
    // The buyer sees its deliveries; another organisation does not.
    let (_, buyer_token) = app
        .create_user(&company_a, "compta@entreprise-a.example", "owner")
        .await;
    assert_eq!(deliveries(&app, &buyer_token, &inv_a).await.len(), 1);
    let id = inv_a["id"].as_str().expect("id");
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/invoices/{id}/deliveries"),
            &person_token,
            None,
        )
        .await;
    assert_eq!(status, 404);
    // No secret in the log.
    let log = app.log();
    for secret in ["pa-secret-token", "client-secret", "account-password"] {
        assert!(!log.contains(secret), "{secret} logged");
    }
}

#[tokio::test]
async fn what_cannot_be_delivered_yet_waits_and_says_why() {
    // Nothing configured: no plateforme agréée, no Chorus Pro, no SMTP
    // relay; the buyer's webhook answers nothing.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        drop(listener);
        url
    };
    let app = spawn(Spawn {
        clock: Some(OCTOBER),
        env: vec![
            (
                "NUAGE_BILLING__DELIVERY_CHECK_SECONDS".into(),
                "3600".into(),
            ),
            (
                "NUAGE_CATALOGUE__WEBHOOK_ALLOW_PRIVATE_ADDRESSES".into(),
                "true".into(),
            ),
        ],
        ..Spawn::default()
    })
    .await;
    let personal = personal_bundle(&app).await;
    app.set_clock(OCTOBER).await;
    let company = customer(&app, "Entreprise C", "company", "FR", &personal).await;
    let public = customer(&app, "Syndicat Mixte", "public", "FR", &personal).await;
    let person = customer(&app, "Particulier", "person", "FR", &personal).await;
    app.create_user(&person, "particulier@example.org", "owner")
        .await;
    let foreign = customer(&app, "Client Suisse", "company", "CH", &personal).await;
    let (status, body) = app
        .root(
            Method::PUT,
            &format!("/orgs/{foreign}/webhook"),
            Some(json!({"url": closed})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.set_clock(NOVEMBER + DAY).await;
    let (status, summary) = run(&app, "2026-10").await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(
        app.run_job("invoice-deliveries").await,
        "1 invoices delivered"
    );
    for (org, status, says) in [
        (&company, "pending", "no plateforme agréée is configured"),
        (&public, "pending", "Chorus Pro is not configured"),
        (
            &person,
            "delivered",
            "kept in the outbox: no SMTP relay is configured",
        ),
        (&foreign, "pending", "could not reach the endpoint"),
    ] {
        let invoice = invoices(&app, org).await.remove(0);
        let d = deliveries(&app, &app.root_token, &invoice).await.remove(0);
        assert_eq!(d["status"], status, "{d}");
        let detail = d["attempts"][0]["detail"].as_str().expect("detail");
        assert!(detail.contains(says), "{d}");
    }
    // The buyer's console says how its invoice went.
    let page = app
        .console_page_as("particulier@example.org", "/billing")
        .await;
    assert!(
        page.contains("<td class=\"delivery\">e-mail · delivered</td>"),
        "{page}"
    );
    // The e-mail waits in the outbox for the operator, its attachment named.
    let mut db = app.database().await;
    let kept: Vec<String> =
        sqlx::query_scalar("SELECT body FROM outbox WHERE recipient = 'particulier@example.org'")
            .fetch_all(&mut db)
            .await
            .expect("outbox");
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].contains("[attached: F-"), "{kept:?}");
}

/// An invoice issued by an earlier version without the seller's VAT number
/// can be written as no EN 16931 document: its delivery is given up, saying
/// why, and the job goes on with the others.
#[tokio::test]
async fn an_invoice_no_document_can_be_made_of_is_given_up_not_retried() {
    use nuage_db::repo::billing::{self as invoices_repo, NewInvoice};
    use nuage_db::repo::deliveries::{self as deliveries_repo, DeliveryRow};
    let app = spawn(Spawn {
        clock: Some(OCTOBER),
        env: vec![(
            "NUAGE_BILLING__DELIVERY_CHECK_SECONDS".into(),
            "3600".into(),
        )],
        ..Spawn::default()
    })
    .await;
    let personal = personal_bundle(&app).await;
    app.set_clock(OCTOBER).await;
    let person = customer(&app, "Particulier Ancien", "person", "FR", &personal).await;
    app.create_user(&person, "ancien@example.org", "owner")
        .await;
    app.set_clock(NOVEMBER + DAY).await;
    let (status, summary) = run(&app, "2026-10").await;
    assert_eq!(status, 200, "{summary}");
    let issued = invoices(&app, &person).await.remove(0);
    // The same invoice as an earlier version could issue it: no VAT
    // number for the seller.
    let mut db = app.database().await;
    let document: String = sqlx::query_scalar("SELECT document FROM invoices WHERE id = $1")
        .bind(issued["id"].as_str().expect("id"))
        .fetch_one(&mut db)
        .await
        .expect("document");
    let mut document: Value = serde_json::from_str(&document).expect("json");
    let issuer = document["issuer"]["id"]
        .as_str()
        .expect("issuer")
        .to_owned();
    document["issuer"]["vat_number"] = Value::Null;
    let legacy = NewInvoice {
        id: uuid::Uuid::now_v7().to_string(),
        issuer_id: issuer,
        kind: "invoice".into(),
        corrects_id: None,
        customer_id: person.clone(),
        period_start: OCTOBER,
        period_end: NOVEMBER,
        currency: "EUR".into(),
        net: "1.50".into(),
        vat: "0.30".into(),
        gross: "1.80".into(),
        document: document.to_string(),
        issued_at: NOVEMBER + DAY,
        run_id: None,
    };
    invoices_repo::insert_invoice(&mut db, &legacy)
        .await
        .expect("issued");
    deliveries_repo::insert(
        &mut db,
        &DeliveryRow {
            id: uuid::Uuid::now_v7().to_string(),
            invoice_id: legacy.id.clone(),
            channel: "email".into(),
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: NOVEMBER,
            last_error: None,
            remote_id: None,
            delivered_at: None,
            created_at: NOVEMBER,
        },
    )
    .await
    .expect("queued");
    assert_eq!(
        app.run_job("invoice-deliveries").await,
        "1 invoices delivered"
    );
    let d = deliveries(&app, &app.root_token, &json!({"id": legacy.id})).await;
    assert_eq!(d[0]["status"], "failed", "{d:?}");
    assert!(
        d[0]["attempts"][0]["detail"]
            .as_str()
            .expect("detail")
            .contains("no VAT number"),
        "{d:?}"
    );
    assert!(d[0]["next_attempt_at_ms"].is_null());
    let d = deliveries(&app, &app.root_token, &issued).await;
    assert_eq!(d[0]["status"], "delivered", "the other one went: {d:?}");
}
