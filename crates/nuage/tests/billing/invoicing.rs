//! Billing runs end to end: a usage history played at known times (the
//! test build's clock), rated into the invoice computed by hand below; late
//! records billed once, by the next run; runs replayed, resumed after a
//! crash, and refused when they make no sense; credit notes and revenue.

use aws_sdk_s3::primitives::ByteStream;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Spawn, TestApp, create_bucket, get_bytes, put, s3_client, spawn, spawn_at};

const DAY: i64 = 86_400_000;
/// 2026-10-01T00:00:00Z.
const OCTOBER: i64 = 1_790_812_800_000;
/// 2026-11-01T00:00:00Z and 2026-12-01T00:00:00Z.
const NOVEMBER: i64 = OCTOBER + 31 * DAY;
const DECEMBER: i64 = NOVEMBER + 30 * DAY;

/// A published house offer with these prices; returns its id.
pub(crate) async fn house_offer(
    app: &TestApp,
    house: &str,
    region: &str,
    name: &str,
    price: Value,
) -> String {
    let (status, body) = app
        .root(
            Method::POST,
            &format!("/orgs/{house}/offers"),
            Some(json!({
                "name": name,
                "description": format!("{name}: object storage billed by the test."),
                "category": "storage", "regions": [region], "certifications": [],
                "capacity_gb": 1,
                "sla": {"availability_percent": "99.9", "support_hours": "24/7", "rto_hours": 4, "rpo_hours": 1},
                "reversibility": {"export_formats": ["S3"], "notice_days": 0},
                "price": price,
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().expect("offer id").to_owned();
    for path in [
        (
            format!("/sheets/offers/{id}/state"),
            json!({"state": "in_review"}),
        ),
        (
            format!("/review/offers/{id}"),
            json!({"decision": "publish"}),
        ),
    ] {
        let (status, body) = app.root(Method::POST, &path.0, Some(path.1)).await;
        assert_eq!(status, 204, "{body}");
    }
    id
}

/// The house's personal bundle (1.50 € a month, 100 GB).
pub(crate) async fn personal_bundle(app: &TestApp) -> String {
    let found: Value = app
        .http
        .get(app.url("/directory/search?kind=offer&q=personnel"))
        .send()
        .await
        .expect("search")
        .json()
        .await
        .expect("json");
    found["hits"][0]["id"]
        .as_str()
        .expect("the personal bundle")
        .to_owned()
}

/// Organisations named `{prefix} {i}`, each ordering `offer` as the operator.
async fn customers_of(app: &TestApp, offer: &str, prefix: &str, count: usize) -> Vec<String> {
    let mut customers = Vec::new();
    for i in 0..count {
        let org = app.create_org(&format!("{prefix} {i:03}")).await;
        let (status, body) = app
            .root(
                Method::POST,
                &format!("/orgs/{org}/orders"),
                Some(json!({"offer_id": offer})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        customers.push(org);
    }
    customers
}

/// The house's id and its region, from its published personal bundle.
/// Creates an organisation (`org`: what `POST /orgs` takes) that orders
/// `offer`; returns its id.
pub(crate) async fn customer(app: &TestApp, org: Value, offer: &str) -> String {
    let (status, org) = app.root(Method::POST, "/orgs", Some(org)).await;
    assert_eq!(status, 201, "{org}");
    let org = org["id"].as_str().expect("id").to_owned();
    let (status, body) = app
        .root(
            Method::POST,
            &format!("/orgs/{org}/orders"),
            Some(json!({"offer_id": offer})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    org
}

pub(crate) async fn house(app: &TestApp) -> (String, String) {
    let id = personal_bundle(app).await;
    let page: Value = app
        .http
        .get(app.url(&format!("/catalogue/offers/{id}")))
        .send()
        .await
        .expect("page")
        .json()
        .await
        .expect("json");
    (
        page["provider"]["id"].as_str().expect("house").to_owned(),
        page["sheet"]["regions"][0]
            .as_str()
            .expect("region")
            .to_owned(),
    )
}

/// One of an invoice's documents (`facturx` or `ubl`), fetched with
/// `token`, after checking its type and file name.
async fn document(app: &TestApp, token: &str, invoice: &Value, kind: &str) -> Vec<u8> {
    let (content_type, extension) = match kind {
        "facturx" => ("application/pdf", "pdf"),
        _ => ("application/xml", "xml"),
    };
    let id = invoice["id"].as_str().expect("id");
    let response = app
        .http
        .get(app.url(&format!("/invoices/{id}/{kind}")))
        .bearer_auth(token)
        .send()
        .await
        .expect("document");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], content_type);
    assert_eq!(
        response.headers()["content-disposition"],
        format!(
            "attachment; filename=\"{}.{extension}\"",
            invoice["number"].as_str().expect("number")
        )
        .as_str()
    );
    response.bytes().await.expect("bytes").to_vec()
}

/// An invoice's Factur-X PDF, fetched with `token`.
async fn facturx(app: &TestApp, token: &str, invoice: &Value) -> Vec<u8> {
    document(app, token, invoice, "facturx").await
}

/// An invoice's UBL (Peppol BIS Billing 3.0), fetched with `token`.
async fn ubl(app: &TestApp, token: &str, invoice: &Value) -> String {
    String::from_utf8(document(app, token, invoice, "ubl").await).expect("UTF-8")
}

/// Bills `period` on a platform whose organisations have all filled in
/// their legal identity (for the other case, see
/// `an_incomplete_identity_holds_its_invoices_until_it_is_filled_in`).
pub(crate) async fn run(app: &TestApp, period: &str) -> (u16, Value) {
    app.complete_identities().await;
    app.root(
        Method::POST,
        "/billing/runs",
        Some(json!({ "period": period })),
    )
    .await
}

pub(crate) async fn invoices(app: &TestApp, org: &str) -> Vec<Value> {
    let (status, body) = app
        .root(Method::GET, &format!("/orgs/{org}/invoices"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_array().expect("invoices").clone()
}

/// An invoice's lines as (description's start, quantity, unit price,
/// amount, adjustment), in order.
fn lines(invoice: &Value) -> Vec<(String, String, String, String, bool)> {
    invoice["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            (
                l["kind"].as_str().expect("kind").to_owned(),
                l["quantity"].as_str().expect("quantity").to_owned(),
                l["unit_price"].as_str().expect("price").to_owned(),
                l["amount"].as_str().expect("amount").to_owned(),
                l["adjustment"].as_bool().expect("flag"),
            )
        })
        .collect()
}

fn line(
    kind: &str,
    quantity: &str,
    price: &str,
    amount: &str,
) -> (String, String, String, String, bool) {
    (
        kind.into(),
        quantity.into(),
        price.into(),
        amount.into(),
        false,
    )
}

/// `customer` orders the storage offer `offer` as `token`'s holder: the
/// order, its bucket and an S3 client with the order's credentials.
async fn order_storage(
    app: &TestApp,
    customer: &str,
    token: &str,
    offer: &str,
) -> (Value, String, aws_sdk_s3::Client) {
    let (status, order) = app
        .call(
            Method::POST,
            &format!("/orgs/{customer}/orders"),
            token,
            Some(json!({"offer_id": offer})),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    let bucket = order["subscription"]["resources"]["buckets"][0]
        .as_str()
        .expect("bucket")
        .to_owned();
    let s3 = s3_client(
        &app.s3,
        order["credentials"]["access_key_id"].as_str().expect("key"),
        order["credentials"]["secret_access_key"]
            .as_str()
            .expect("secret"),
    );
    (order, bucket, s3)
}

#[tokio::test]
async fn a_month_of_usage_with_an_upgrade_and_a_cancellation_is_invoiced_to_the_cent() {
    let app = spawn(Spawn {
        clock: Some(OCTOBER),
        env: vec![
            (
                "NUAGE_BILLING__PAY_AS_YOU_GO__CURRENCY".into(),
                "EUR".into(),
            ),
            (
                "NUAGE_BILLING__PAY_AS_YOU_GO__PER_GB_MONTH".into(),
                "100".into(),
            ),
        ],
        ..Spawn::default()
    })
    .await;
    let (house, region) = house(&app).await;
    let small = house_offer(
        &app,
        &house,
        &region,
        "Essai Petit",
        json!({
            "monthly_fee": "31", "per_gb_month": "1000", "per_1k_class_a": "10",
            "per_1k_class_b": "5", "per_gb_egress": "100",
        }),
    )
    .await;
    let large = house_offer(
        &app,
        &house,
        &region,
        "Essai Grand",
        json!({
            "monthly_fee": "62", "per_gb_month": "500", "per_1k_class_a": "10",
            "per_1k_class_b": "5", "per_gb_egress": "100", "commitment_months": 12,
        }),
    )
    .await;
    let customer = app.create_org("Client Facturé").await;
    let (_, token) = app
        .create_user(&customer, "achats@client.example", "owner")
        .await;

    // Day 0, 00:00: the small offer is ordered; 3.1 MB are stored.
    app.set_clock(OCTOBER).await;
    let (order, bucket, s3) = order_storage(&app, &customer, &token, &small).await;
    let first = order["subscription"]["id"].as_str().expect("id").to_owned();
    let put = |key: &'static str, bytes: usize| {
        let s3 = s3.clone();
        let bucket = bucket.clone();
        async move {
            put(&s3, bucket, key, ByteStream::from(vec![1u8; bytes])).await;
        }
    };
    let get = |key: &'static str| {
        let s3 = s3.clone();
        let bucket = bucket.clone();
        async move {
            let o = s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .expect("get");
            o.body.collect().await.expect("body");
        }
    };
    put("a", 3_100_000).await;
    // Day 5: a is read once (3.1 MB out), b (1.55 MB) is stored.
    app.maintain().await;
    app.set_clock(OCTOBER + 5 * DAY).await;
    get("a").await;
    put("b", 1_550_000).await;
    // Day 10: b is deleted (deletes are not billed).
    app.maintain().await;
    app.set_clock(OCTOBER + 10 * DAY).await;
    s3.delete_object()
        .bucket(&bucket)
        .key("b")
        .send()
        .await
        .expect("delete");
    // Day 15, 00:00: the customer moves to the large offer.
    app.maintain().await;
    app.set_clock(OCTOBER + 15 * DAY).await;
    let (status, changed) = app
        .call(
            Method::POST,
            &format!("/subscriptions/{first}/change"),
            &token,
            Some(json!({"offer_id": large})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    let second = changed["id"].as_str().expect("id").to_owned();
    assert_eq!(changed["resources"]["buckets"][0], bucket.as_str());
    // Day 20: c (6.2 MB) is stored and read twice (12.4 MB out).
    app.set_clock(OCTOBER + 20 * DAY).await;
    put("c", 6_200_000).await;
    get("c").await;
    get("c").await;
    // Day 25, 12:00: cancelled, eleven months and a half into a
    // twelve-month commitment... of which ten days and a half were used.
    app.maintain().await;
    app.set_clock(OCTOBER + 25 * DAY + DAY / 2).await;
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/subscriptions/{second}/cancel"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // The house states its VAT number, as EN 16931 invoices must.
    let (status, body) = app
        .root(
            Method::PUT,
            &format!("/orgs/{house}/tax"),
            Some(json!({"vat_number": "FR76411050487"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // October is billed on November 2nd.
    app.set_clock(NOVEMBER + DAY).await;
    let (status, summary) = run(&app, "2026-10").await;
    assert_eq!(status, 200, "{summary}");
    let all = invoices(&app, &customer).await;
    assert_eq!(all.len(), 1, "one invoice per customer and issuer: {all:?}");
    let invoice = &all[0];
    assert_eq!(invoice["number"], "F-000001");
    assert_eq!(invoice["issuer"]["id"], house.as_str());
    assert_eq!(invoice["period"], "2026-10");
    // By hand. Storage in GB-months of October (31 days): bytes × days /
    // (10⁹ × 31). Each line is quantity × unit price, rounded once to the
    // cent, half away from zero.
    let expected = vec![
        // Small, in force days 0–15: the fee for the 15 days before the
        // change (the change's day is the large offer's), 15/31 × 31 €.
        line(
            "monthly_fee",
            "0.4838709677419354838709677419",
            "31",
            "15.00",
        ),
        // a for 15 days + b for 5 days: 0.0015 + 0.00025 GB-month × 1000 €.
        line("storage", "0.00175", "1000", "1.75"),
        // PUT a, PUT b: 2 class-A requests; GET a: 1 class-B request.
        line("class_a_requests", "0.002", "10", "0.02"),
        line("class_b_requests", "0.001", "5", "0.01"),
        // 3.1 MB out: 0.0031 GB × 100 €.
        line("egress", "0.0031", "100", "0.31"),
        // Large, in force from day 15 to day 25.5: days 15 to 25 touched,
        // 11/31 × 62 €.
        line(
            "monthly_fee",
            "0.3548387096774193548387096774",
            "62",
            "22.00",
        ),
        // a for 10.5 days + c for 5.5 days: 0.00105 + 0.0011 GB-month ×
        // 500 € = 1.075, rounded up.
        line("storage", "0.00215", "500", "1.08"),
        line("class_a_requests", "0.001", "10", "0.01"),
        line("class_b_requests", "0.002", "5", "0.01"),
        line("egress", "0.0124", "100", "1.24"),
        // The rest of the commitment (ends 2027-10-16), from the day after
        // the cancellation: 5/31 of October, 11 months, 15/31 of October
        // 2027 = 11 + 20/31 months × 62 € = 722 €.
        line(
            "commitment_remainder",
            "11.645161290322580645161290323",
            "62",
            "722.00",
        ),
        // Pay-as-you-go from day 25.5: a and c for 5.5 days, 0.00055 +
        // 0.0011 GB-month × 100 €.
        line("storage", "0.00165", "100", "0.17"),
    ];
    assert_eq!(lines(invoice), expected, "{invoice}");
    assert_eq!(invoice["net"], "763.60");
    assert_eq!(invoice["vat"]["treatment"], "standard");
    assert_eq!(invoice["vat_amount"], "152.72");
    assert_eq!(invoice["gross"], "916.32");
    assert_eq!(summary["invoices"], 1);
    assert_eq!(summary["issued_now"], 1);
    // Its Factur-X: the XML taken back out of the PDF passes the XSD and
    // the EN 16931 rules, and says what the invoice says; so does its UBL.
    let mut cen = crate::billing::facturx::CenRules::new();
    let xml = cen.check(&facturx(&app, &token, invoice).await, invoice);
    cen.check_ubl(&ubl(&app, &token, invoice).await, invoice);
    assert!(xml.contains("<ram:RateApplicablePercent>20</ram:RateApplicablePercent>"));
    assert!(xml.contains("<ram:ID schemeID=\"VA\">FR76411050487</ram:ID>"));

    // Running October again changes nothing.
    let (status, again) = run(&app, "2026-10").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["issued_now"], 0);
    assert_eq!(invoices(&app, &customer).await.len(), 1);

    // A record of October 20th reaches the metering late, twice: it is
    // stored once, and billed once, with November, at the price of the
    // subscription that held the bucket then.
    let record = json!({"records": [{
        "id": "edge-7:2026-10-20T10", "org_id": customer, "bucket": bucket,
        "hour_ms": OCTOBER + 19 * DAY + 10 * 3_600_000, "class_a": 1000,
    }]});
    let (status, body) = app
        .root(Method::POST, "/usage-records", Some(record.clone()))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"accepted": 1, "duplicates": 0}));
    let (status, body) = app.root(Method::POST, "/usage-records", Some(record)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"accepted": 0, "duplicates": 1}));

    app.set_clock(DECEMBER + 3_600_000).await;
    let (status, body) = run(&app, "2026-11").await;
    assert_eq!(status, 200, "{body}");
    let all = invoices(&app, &customer).await;
    assert_eq!(all.len(), 2);
    let november = &all[0];
    assert_eq!(november["number"], "F-000002");
    assert_eq!(
        lines(november),
        vec![
            // The late thousand class-A requests, at the price of the large
            // offer, which held the bucket on October 20th.
            (
                "class_a_requests".into(),
                "1".into(),
                "10".into(),
                "10.00".into(),
                true
            ),
            // a and c all November: 0.0093 GB-month × 100 €, pay-as-you-go.
            line("storage", "0.0093", "100", "0.93"),
        ],
        "{november}"
    );
    let adjustment = &november["lines"][0];
    assert_eq!(adjustment["subscription_id"], second.as_str());
    assert_eq!(november["net"], "10.93");

    // A credit note cancels October whole, in the same numbering; October
    // cannot be credited twice, nor a credit note credited.
    let october = invoice["id"].as_str().expect("id");
    let (status, note) = app
        .root(
            Method::POST,
            &format!("/invoices/{october}/credit-notes"),
            Some(json!({"reason": "geste commercial"})),
        )
        .await;
    assert_eq!(status, 201, "{note}");
    assert_eq!(note["number"], "A-000003");
    assert_eq!(note["kind"], "credit_note");
    assert_eq!(note["gross"], "-916.32");
    let xml = cen.check(&facturx(&app, &token, &note).await, &note);
    assert!(
        xml.contains("<ram:IssuerAssignedID>F-000001</ram:IssuerAssignedID>"),
        "{xml}"
    );
    let credit_ubl = ubl(&app, &token, &note).await;
    cen.check_ubl(&credit_ubl, &note);
    assert!(
        credit_ubl.contains(
            "<cac:BillingReference><cac:InvoiceDocumentReference><cbc:ID>F-000001</cbc:ID>"
        ),
        "{credit_ubl}"
    );
    cen.assert_valid();
    for (id, why) in [
        (october, "twice"),
        (note["id"].as_str().expect("id"), "a credit note"),
    ] {
        let (status, body) = app
            .root(
                Method::POST,
                &format!("/invoices/{id}/credit-notes"),
                Some(json!({"reason": "encore"})),
            )
            .await;
        assert_eq!(status, 409, "{why}: {body}");
    }
    // The customer's owner sees its invoices; another organisation does not.
    let (status, _) = app
        .call(Method::GET, &format!("/invoices/{october}"), &token, None)
        .await;
    assert_eq!(status, 200);
    let stranger = app.create_org("Curieux").await;
    let (_, nosy) = app
        .create_user(&stranger, "curieux@example.org", "owner")
        .await;
    let (status, _) = app
        .call(Method::GET, &format!("/invoices/{october}"), &nosy, None)
        .await;
    assert_eq!(status, 404);

    // Revenue: per month, provider and offer, credit notes deducted.
    let (status, revenue) = app
        .root(
            Method::GET,
            "/billing/revenue?from=2026-10&to=2026-11",
            None,
        )
        .await;
    assert_eq!(status, 200, "{revenue}");
    let rows: Vec<(String, String, String)> = revenue
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["month"].as_str().expect("month").to_owned(),
                r["offer"].as_str().expect("offer").to_owned(),
                r["net"].as_str().expect("net").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("2026-10".into(), "Essai Grand".into(), "0.00".into()),
            ("2026-10".into(), "Essai Petit".into(), "0.00".into()),
            ("2026-10".into(), "Paiement à l'usage".into(), "0.00".into()),
            ("2026-11".into(), "Essai Grand".into(), "10.00".into()),
            ("2026-11".into(), "Paiement à l'usage".into(), "0.93".into()),
        ]
    );
    let csv = app
        .http
        .get(app.url("/billing/revenue?from=2026-11&format=csv"))
        .bearer_auth(&app.root_token)
        .send()
        .await
        .expect("csv")
        .text()
        .await
        .expect("text");
    assert!(
        csv.starts_with("month,provider_id,provider_name,offer,net_eur,invoices\n"),
        "{csv}"
    );
    assert!(csv.contains(",Essai Grand,10.00,1\n"), "{csv}");
}

/// An organisation leaving the platform takes its data out with an export
/// key: it can only read, what it downloads is exit egress on the invoice at
/// no charge (nor are its requests billed), and it stops after 30 days.
#[tokio::test]
async fn data_taken_out_with_an_export_key_is_exit_egress_and_not_charged() {
    let app = spawn_at(OCTOBER).await;
    let (house, region) = house(&app).await;
    let offer = house_offer(
        &app,
        &house,
        &region,
        "Essai Départ",
        json!({
            "monthly_fee": "31", "per_gb_month": "0", "per_1k_class_a": "10",
            "per_1k_class_b": "5", "per_gb_egress": "100",
        }),
    )
    .await;
    let customer = app.create_org("Client Sortant").await;
    let (_, token) = app
        .create_user(&customer, "dsi@sortant.example", "owner")
        .await;
    app.set_clock(OCTOBER).await;
    let (_, bucket, s3) = order_storage(&app, &customer, &token, &offer).await;
    put(
        &s3,
        &bucket,
        "archive.tar",
        ByteStream::from(vec![3u8; 2_000_000]),
    )
    .await;

    // Day 1: the customer announces its departure with an export key.
    app.set_clock(OCTOBER + DAY).await;
    let path = format!("/orgs/{customer}/s3-keys");
    let (status, export) = app
        .call(
            Method::POST,
            &path,
            &token,
            Some(json!({"purpose": "export"})),
        )
        .await;
    assert_eq!(status, 201, "{export}");
    assert_eq!(export["purpose"], "export");
    assert_eq!(export["expires_at_ms"], OCTOBER + 31 * DAY);
    // One at a time; a purpose that does not exist is refused.
    let (status, body) = app
        .call(
            Method::POST,
            &path,
            &token,
            Some(json!({"purpose": "export"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = app
        .call(
            Method::POST,
            &path,
            &token,
            Some(json!({"purpose": "everything"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "purpose", "{body}");
    let (status, keys) = app.call(Method::GET, &path, &token, None).await;
    assert_eq!(status, 200, "{keys}");
    assert_eq!(keys["items"].as_array().map(Vec::len), Some(2), "{keys}");
    // The usage of a day is told up to the present: let an hour and a half pass.
    app.set_clock(OCTOBER + DAY + 90 * 60_000).await;

    let out = s3_client(
        &app.s3,
        export["access_key_id"].as_str().expect("key"),
        export["secret_access_key"].as_str().expect("secret"),
    );
    // It reads and lists: the archive is downloaded twice (4 MB out)...
    for _ in 0..2 {
        let body = get_bytes(&out, &bucket, "archive.tar").await;
        assert_eq!(body.len(), 2_000_000);
    }
    let listed = out
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .expect("an export key lists");
    assert_eq!(listed.key_count(), Some(1));
    // ... but writes nothing, deletes nothing.
    let code = crate::helpers::s3_code(
        out.put_object()
            .bucket(&bucket)
            .key("intrus")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    );
    assert_eq!(code, "AccessDenied");
    let code = crate::helpers::s3_code(
        out.delete_object()
            .bucket(&bucket)
            .key("archive.tar")
            .send()
            .await,
    );
    assert_eq!(code, "AccessDenied");
    let code = crate::helpers::s3_code(out.create_bucket().bucket("sortant-copie").send().await);
    assert_eq!(code, "AccessDenied");
    // The ordinary key still serves the customer's users: 2 MB of egress.
    s3.get_object()
        .bucket(&bucket)
        .key("archive.tar")
        .send()
        .await
        .expect("get")
        .body
        .collect()
        .await
        .expect("body");

    // The day's usage tells both egresses apart.
    let usage = format!("/orgs/{customer}/usage?from=2026-10-01&to=2026-10-31");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let day = loop {
        let (status, days) = app.call(Method::GET, &usage, &token, None).await;
        assert_eq!(status, 200, "{days}");
        let day = days
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["day"] == "2026-10-02")
            .cloned();
        if let Some(day) = day.filter(|d| d["egress_gb"] == "0.002") {
            break day;
        }
        assert!(std::time::Instant::now() < deadline, "{days}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(day["exit_egress_gb"], "0.004", "{day}");
    assert_eq!(day["class_b_requests"], 1, "{day}");
    assert_eq!(day["class_a_requests"], 0, "{day}");

    // October's invoice: exit egress is a line at no charge; the export
    // key's requests are not billed.
    let (status, body) = app
        .root(
            Method::PUT,
            &format!("/orgs/{house}/tax"),
            Some(json!({"vat_number": "FR76411050487"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.set_clock(NOVEMBER + DAY).await;
    let (status, summary) = run(&app, "2026-10").await;
    assert_eq!(status, 200, "{summary}");
    let all = invoices(&app, &customer).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(
        lines(&all[0]),
        vec![
            line("monthly_fee", "1", "31", "31.00"),
            line("class_a_requests", "0.001", "10", "0.01"),
            line("class_b_requests", "0.001", "5", "0.01"),
            line("egress", "0.002", "100", "0.20"),
            line("exit_egress", "0.004", "0", "0.00"),
        ],
        "{}",
        all[0]
    );
    assert_eq!(all[0]["net"], "31.22");
    let xml = crate::billing::facturx::check(&facturx(&app, &token, &all[0]).await, &all[0]);
    assert!(xml.contains("0.004"), "{xml}");

    // Thirty days on, the export key no longer works, and another can be
    // made: the first shows as ended at its expiry.
    let code = crate::helpers::s3_code(
        out.get_object()
            .bucket(&bucket)
            .key("archive.tar")
            .send()
            .await,
    );
    assert_eq!(code, "InvalidAccessKeyId");
    let (status, again) = app
        .call(
            Method::POST,
            &path,
            &token,
            Some(json!({"purpose": "export"})),
        )
        .await;
    assert_eq!(status, 201, "{again}");
    let (_, keys) = app.call(Method::GET, &path, &token, None).await;
    let first = keys["items"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["access_key_id"] == export["access_key_id"])
        .expect("the first export key")
        .clone();
    assert_eq!(first["revoked_at_ms"], OCTOBER + 31 * DAY, "{first}");
}

#[tokio::test]
async fn bad_usage_records_and_runs_are_refused_and_change_nothing() {
    // 2 December 2026, 10:00: November is over, 2099 is not.
    let now = DECEMBER + DAY + 10 * 3_600_000;
    let app = spawn_at(now).await;
    let t = app.tenant("Mesures").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "mesures").await;
    let hour = now / 3_600_000 * 3_600_000 - 3_600_000;
    let good =
        json!({"id": "m-1", "org_id": t.org, "bucket": "mesures", "hour_ms": hour, "class_b": 5});
    let mut cases = vec![];
    for (field, value, why) in [
        ("class_a", json!(-1), "negative"),
        ("bucket", json!("ailleurs"), "no bucket"),
        (
            "org_id",
            json!("00000000-0000-0000-0000-000000000000"),
            "organisation",
        ),
        ("hour_ms", json!(hour + 48 * 3_600_000), "future"),
        ("hour_ms", json!(hour + 1), "hour"),
        ("id", json!("a b"), "id"),
    ] {
        let mut record = good.clone();
        record[field] = value;
        cases.push((record, why));
    }
    for (record, why) in cases {
        // The good record rides along: one bad record refuses the delivery.
        let (status, body) = app
            .root(
                Method::POST,
                "/usage-records",
                Some(json!({"records": [good.clone(), record]})),
            )
            .await;
        assert_eq!(status, 400, "{why}: {body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("record 1"),
            "{why}: {body}"
        );
    }
    let mut db = app.database().await;
    let stored: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM usage_records WHERE id LIKE 'meter:%'")
            .fetch_one(&mut db)
            .await
            .expect("count");
    assert_eq!(stored, 0, "nothing of a refused delivery is kept");
    assert!(
        app.log().contains("usage records refused"),
        "refusals are logged"
    );
    // The same id with other values is a conflict, not a silent overwrite.
    let (status, _) = app
        .root(
            Method::POST,
            "/usage-records",
            Some(json!({"records": [good.clone()]})),
        )
        .await;
    assert_eq!(status, 200);
    let mut changed = good.clone();
    changed["class_b"] = json!(6);
    let (status, _) = app
        .root(
            Method::POST,
            "/usage-records",
            Some(json!({"records": [changed]})),
        )
        .await;
    assert_eq!(status, 400);
    // Only operators meter.
    let (_, owner) = app
        .create_user(&t.org, "owner@mesures.example", "owner")
        .await;
    let (status, _) = app
        .call(
            Method::POST,
            "/usage-records",
            &owner,
            Some(json!({"records": [good]})),
        )
        .await;
    assert_eq!(status, 403);

    // Runs: a month not over, a malformed one, one that skips a month, and
    // a customer asking.
    for (period, status_expected) in [("2099-01", 400), ("2026-13", 400), ("octobre", 400)] {
        let (status, body) = run(&app, period).await;
        assert_eq!(status, status_expected, "{period}: {body}");
    }
    let (status, body) = run(&app, "2026-09").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = run(&app, "2026-07").await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("2026-10"),
        "{body}"
    );
    let (status, _) = app
        .call(
            Method::POST,
            "/billing/runs",
            &owner,
            Some(json!({"period": "2026-10"})),
        )
        .await;
    assert_eq!(status, 403);
}

async fn issued(db: &mut sqlx::AnyConnection) -> Vec<(i64, String, String)> {
    sqlx::query_as("SELECT number, customer_id, gross FROM invoices ORDER BY number")
        .fetch_all(db)
        .await
        .expect("invoices")
}

#[tokio::test]
async fn a_run_killed_while_issuing_resumes_without_a_gap_or_a_double() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    // The test build's crash point aborts the server, as a crash would,
    // right after the batch holding its 60th invoice is committed: the
    // second batch of ISSUE_BATCH (50).
    let app = spawn(Spawn {
        clock: Some(OCTOBER),
        data_dir: Some(data_dir.clone()),
        env: vec![("NUAGE_TEST_CRASH_AFTER_INVOICES".into(), "60".into())],
        process: true,
        ..Spawn::default()
    })
    .await;
    let (database_url, root_token) = (app.database_url.clone(), app.root_token.clone());
    let personal = personal_bundle(&app).await;
    // 150 customers of the personal bundle (1.50 € a month) since October 1st.
    app.set_clock(OCTOBER).await;
    let customers = customers_of(&app, &personal, "Client", 150).await;
    app.set_clock(NOVEMBER + DAY).await;
    app.complete_identities().await;

    let answer = app
        .http
        .post(app.url("/billing/runs"))
        .bearer_auth(&root_token)
        .json(&json!({"period": "2026-10"}))
        .send()
        .await;
    assert!(answer.is_err(), "the server died in the run: {answer:?}");
    let before = issued(&mut app.database().await).await;
    drop(app);
    assert_eq!(
        before.len(),
        2 * nuage_billing::ISSUE_BATCH,
        "the crash fell after the second batch"
    );
    let numbers: Vec<i64> = before.iter().map(|i| i.0).collect();
    assert_eq!(numbers, (1..=before.len() as i64).collect::<Vec<_>>());

    // Restarted, the same command finishes the run from its cut.
    let app = spawn(Spawn {
        clock: Some(NOVEMBER + DAY),
        data_dir: Some(data_dir.clone()),
        database_url: Some(database_url.clone()),
        root_token: Some(root_token.clone()),
        ..Spawn::default()
    })
    .await;
    let (status, summary) = run(&app, "2026-10").await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["invoices"], customers.len());
    assert_eq!(summary["issued_now"], customers.len() - before.len());
    let after = issued(&mut app.database().await).await;
    assert_eq!(
        after.iter().map(|i| i.0).collect::<Vec<_>>(),
        (1..=customers.len() as i64).collect::<Vec<_>>(),
        "numbers 1 to n, none lost, none twice"
    );
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "what was issued stands"
    );
    let mut billed: Vec<&String> = after.iter().map(|i| &i.1).collect();
    billed.sort();
    let mut expected: Vec<&String> = customers.iter().collect();
    expected.sort();
    assert_eq!(billed, expected, "each customer billed exactly once");
    assert!(
        after.iter().all(|i| i.2 == "1.80"),
        "a month of 1.50 € + 20 % VAT each"
    );
}

#[tokio::test]
async fn runs_of_the_same_period_side_by_side_issue_each_invoice_once() {
    let app = spawn_at(OCTOBER).await;
    let personal = personal_bundle(&app).await;
    app.set_clock(OCTOBER).await;
    let customers = customers_of(&app, &personal, "Voisin", 30).await;
    app.set_clock(NOVEMBER + DAY).await;
    let (a, b, c) = tokio::join!(
        run(&app, "2026-10"),
        run(&app, "2026-10"),
        run(&app, "2026-10")
    );
    for (status, body) in [&a, &b, &c] {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["cut_at_ms"], a.1["cut_at_ms"], "one run, one cut");
    }
    let issued_now: u64 = [&a, &b, &c]
        .iter()
        .map(|r| r.1["issued_now"].as_u64().expect("count"))
        .sum();
    assert_eq!(issued_now, 30, "each invoice issued by exactly one of them");
    let after = issued(&mut app.database().await).await;
    assert_eq!(
        after.iter().map(|i| i.0).collect::<Vec<_>>(),
        (1..=30).collect::<Vec<_>>()
    );
    let mut billed: Vec<&String> = after.iter().map(|i| &i.1).collect();
    billed.sort();
    let mut expected: Vec<&String> = customers.iter().collect();
    expected.sort();
    assert_eq!(billed, expected, "each customer billed exactly once");
}

#[tokio::test]
async fn invoices_are_factur_x_for_each_vat_treatment() {
    // The billing job issues held invoices; it runs when asked here.
    let app = spawn(Spawn {
        clock: Some(OCTOBER),
        env: vec![
            ("NUAGE_BILLING__AUTOMATIC".into(), "true".into()),
            (
                "NUAGE_BILLING__SCHEDULE_CHECK_SECONDS".into(),
                "3600".into(),
            ),
        ],
        ..Spawn::default()
    })
    .await;
    let (house, _) = house(&app).await;
    let personal = personal_bundle(&app).await;
    app.set_clock(OCTOBER).await;
    // A French consumer, a German business, an American one.
    let mut customers = Vec::new();
    for (name, kind, vat, country) in [
        ("Particulier", "person", None, None),
        ("Kunde GmbH", "company", Some("DE139115146"), None),
        ("Customer Inc", "company", None, Some("US")),
    ] {
        customers.push(
            customer(
                &app,
                json!({"name": name, "kind": kind, "vat_number": vat, "country": country}),
                &personal,
            )
            .await,
        );
    }
    app.create_user(&customers[0], "particulier@treatments.example", "owner")
        .await;
    app.create_operator("ops@treatments.example");
    let revenue_page = || app.console_page_as("ops@treatments.example", "/operator/revenue");
    let metrics = || async {
        app.http
            .get(format!("{}/metrics", app.console))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    };
    app.set_clock(NOVEMBER + DAY).await;
    // Nobody has filled in a legal identity yet: the run issues nothing,
    // takes no number, and says what is missing of whom.
    let (status, summary) = app
        .root(
            Method::POST,
            "/billing/runs",
            Some(json!({"period": "2026-10"})),
        )
        .await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["invoices"], 0, "{summary}");
    let held = summary["held"].as_array().expect("held");
    assert_eq!(held.len(), 3, "{summary}");
    for h in held {
        assert_eq!(h["issuer_id"], house.as_str());
        assert_eq!(
            h["missing"]["issuer"],
            json!([
                "address",
                "siren",
                "vat_number",
                "legal_form",
                "share_capital",
                "rcs"
            ]),
            "{h}"
        );
        assert_eq!(h["missing"]["customer"], json!(["address"]), "{h}");
    }
    for org in &customers {
        assert!(invoices(&app, org).await.is_empty());
    }
    assert!(
        app.log()
            .contains("the platform's legal identity is incomplete"),
        "the operator is told at start-up"
    );
    let page = revenue_page().await;
    assert!(
        page.contains("id=\"house-incomplete\"") && page.contains("postal address, SIREN"),
        "and on the console: {page}"
    );
    assert!(metrics().await.contains("nuage_billing_invoices_held 3"));
    // The buyer's owner is told what its organisation lacks, once.
    let mut db = app.database().await;
    let told: Vec<String> = sqlx::query_scalar(
        "SELECT body FROM outbox WHERE recipient = 'particulier@treatments.example'",
    )
    .fetch_all(&mut db)
    .await
    .expect("outbox");
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].contains("2026-10") && told[0].contains("postal address"),
        "{told:?}"
    );
    // An identity is checked before it is kept.
    let (status, body) = app
        .root(
            Method::PUT,
            &format!("/orgs/{house}/legal-identity"),
            Some(json!({"siret": "73282932000075",
                        "address": {"line1": "1 rue de la Paix", "postcode": "75002", "city": "Paris", "country": "FR"}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app
        .root(
            Method::PUT,
            &format!("/orgs/{house}/legal-identity"),
            Some(json!({"address": {"line1": "1 rue de la Paix", "postcode": "752", "city": "Paris", "country": "FR"}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app
        .root(Method::GET, &format!("/orgs/{house}/legal-identity"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["missing_as_issuer"].as_array().map(Vec::len),
        Some(6),
        "{body}"
    );
    let (status, body) = app
        .root(
            Method::PUT,
            &format!("/orgs/{house}/tax"),
            Some(json!({"vat_number": "FR00000000000"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    // Once everyone has, the billing job issues the held invoices, numbered
    // from the first without a gap.
    app.complete_identities().await;
    assert_eq!(app.run_job("billing").await, "nothing due");
    assert!(!revenue_page().await.contains("house-incomplete"));
    assert!(metrics().await.contains("nuage_billing_invoices_held 0"));
    let mut by_treatment = Vec::new();
    for org in &customers {
        let all = invoices(&app, org).await;
        assert_eq!(all.len(), 1);
        by_treatment.push(all[0].clone());
    }
    let mut numbers: Vec<&str> = by_treatment
        .iter()
        .map(|i| i["number"].as_str().expect("number"))
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, ["F-000001", "F-000002", "F-000003"]);
    let (status, again) = app
        .root(
            Method::POST,
            "/billing/runs",
            Some(json!({"period": "2026-10"})),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["invoices"], 3, "{again}");
    assert_eq!(again["held"], json!([]), "{again}");
    let treatments: Vec<&str> = by_treatment
        .iter()
        .map(|i| i["vat"]["treatment"].as_str().expect("treatment"))
        .collect();
    assert_eq!(treatments, ["standard", "reverse_charge", "outside_eu"]);
    assert_eq!(
        by_treatment
            .iter()
            .map(|i| i["gross"].as_str().expect("gross"))
            .collect::<Vec<_>>(),
        ["1.80", "1.50", "1.50"]
    );
    // Each states both parties' legal identity, in the XML as on the page,
    // and as UBL; every one of them passes the CEN rules.
    let mut cen = crate::billing::facturx::CenRules::new();
    let standard = cen.check(
        &facturx(&app, &app.root_token, &by_treatment[0]).await,
        &by_treatment[0],
    );
    for mention in [
        "<ram:Description>SAS au capital de 10000 €, RCS Paris 732829320</ram:Description>",
        "<ram:ID schemeID=\"0002\">732829320</ram:ID>",
        "<ram:LineOne>1 rue de la Paix</ram:LineOne>",
        "<ram:CityName>Paris</ram:CityName>",
        "Catégorie d&apos;opération : prestations de services.",
        "<ram:SpecifiedTaxRegistration><ram:ID schemeID=\"VA\">FR76411050487</ram:ID>",
    ] {
        assert!(standard.contains(mention), "{mention}: {standard}");
    }
    cen.check(
        &facturx(&app, &app.root_token, &by_treatment[1]).await,
        &by_treatment[1],
    );
    let outside = cen.check(
        &facturx(&app, &app.root_token, &by_treatment[2]).await,
        &by_treatment[2],
    );
    assert!(outside.contains("<ram:CategoryCode>O</ram:CategoryCode>"));
    assert!(outside.contains("<ram:ExemptionReason>Hors du champ de la TVA</ram:ExemptionReason>"));
    assert!(
        !outside.contains("schemeID=\"VA\""),
        "no VAT number outside VAT (BR-O-02)"
    );
    assert!(
        outside.contains("<ram:CityName>Berlin</ram:CityName>"),
        "{outside}"
    );
    let mut ubls = Vec::new();
    for invoice in &by_treatment {
        let xml = ubl(&app, &app.root_token, invoice).await;
        cen.check_ubl(&xml, invoice);
        ubls.push(xml);
    }
    // The house by its SIREN, the French consumer too, the German business
    // by its VAT number; the American has no Peppol address.
    for mention in [
        "<cbc:EndpointID schemeID=\"0002\">732829320</cbc:EndpointID>",
        "<cbc:CompanyLegalForm>SAS au capital de 10000 €, RCS Paris 732829320</cbc:CompanyLegalForm>",
        "<cbc:StreetName>1 rue de la Paix</cbc:StreetName>",
        "<cac:TaxCategory><cbc:ID>S</cbc:ID><cbc:Percent>20</cbc:Percent>",
    ] {
        assert!(ubls[0].contains(mention), "{mention}: {}", ubls[0]);
    }
    assert_eq!(
        ubls[0]
            .matches("schemeID=\"0002\">732829320</cbc:EndpointID>")
            .count(),
        2
    );
    assert!(
        ubls[1].contains("<cbc:EndpointID schemeID=\"9930\">DE139115146</cbc:EndpointID>"),
        "{}",
        ubls[1]
    );
    assert!(
        ubls[1].contains("<cbc:TaxExemptionReasonCode>VATEX-EU-AE</cbc:TaxExemptionReasonCode>")
    );
    assert_eq!(ubls[2].matches("<cbc:EndpointID").count(), 1, "{}", ubls[2]);
    assert!(
        !ubls[2].contains("PartyTaxScheme"),
        "no VAT number outside VAT (BR-O-02)"
    );
    let id = by_treatment[0]["id"].as_str().expect("id");

    // November, with the house's VAT number: standard and reverse charge.
    app.set_clock(DECEMBER + DAY).await;
    let (status, body) = run(&app, "2026-11").await;
    assert_eq!(status, 200, "{body}");
    for (org, category) in customers.iter().zip(["S", "AE", "O"]) {
        let november = invoices(&app, org).await[0].clone();
        let xml = cen.check(&facturx(&app, &app.root_token, &november).await, &november);
        assert!(
            xml.contains(&format!("<ram:CategoryCode>{category}</ram:CategoryCode>")),
            "{xml}"
        );
        cen.check_ubl(&ubl(&app, &app.root_token, &november).await, &november);
    }
    cen.assert_valid();
    // Nobody else reads them.
    let stranger = app.create_org("Curieux").await;
    let (_, nosy) = app
        .create_user(&stranger, "curieux@example.org", "owner")
        .await;
    for route in ["facturx", "ubl"] {
        let (status, _) = app
            .call(Method::GET, &format!("/invoices/{id}/{route}"), &nosy, None)
            .await;
        assert_eq!(status, 404, "{route}");
    }
}

#[tokio::test]
async fn a_month_is_billed_by_itself_an_hour_after_it_ends() {
    let app = spawn(Spawn {
        clock: Some(NOVEMBER),
        env: vec![
            ("NUAGE_BILLING__AUTOMATIC".into(), "true".into()),
            ("NUAGE_BILLING__SCHEDULE_CHECK_SECONDS".into(), "1".into()),
        ],
        ..Spawn::default()
    })
    .await;
    let personal = personal_bundle(&app).await;
    app.set_clock(NOVEMBER).await;
    let customer = app.create_org("Client Régulier").await;
    let (status, body) = app
        .root(
            Method::POST,
            &format!("/orgs/{customer}/orders"),
            Some(json!({"offer_id": personal})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    app.complete_identities().await;
    // Half an hour after November ends, it is not billed yet.
    app.set_clock(DECEMBER + 1_800_000).await;
    assert_eq!(app.run_job("billing").await, "nothing due");
    assert!(invoices(&app, &customer).await.is_empty());
    // Past the hour, the schedule bills it, as the platform itself.
    app.set_clock(DECEMBER + 2 * 3_600_000).await;
    let mut all = Vec::new();
    for _ in 0..100 {
        all = invoices(&app, &customer).await;
        if !all.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(all.len(), 1, "November billed on schedule");
    assert_eq!(all[0]["period"], "2026-11");
    assert_eq!(all[0]["gross"], "1.80");
    // The run logs its end once every organisation is billed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !app.log().contains("billing run complete") {
        assert!(std::time::Instant::now() < deadline, "{}", app.log());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut db = app.database().await;
    let actors: Vec<String> =
        sqlx::query_scalar("SELECT actor FROM audit_log WHERE action = 'billing.run.complete'")
            .fetch_all(&mut db)
            .await
            .expect("audit");
    assert!(
        !actors.is_empty() && actors.iter().all(|a| a == "system"),
        "{actors:?}"
    );
}

#[tokio::test]
async fn the_month_is_forecast_and_quota_alerts_are_told_once_per_crossing() {
    let app = spawn(Spawn {
        clock: Some(NOVEMBER),
        env: vec![
            ("NUAGE_BILLING__ALERT_CHECK_SECONDS".into(), "1".into()),
            (
                "NUAGE_CATALOGUE__WEBHOOK_ALLOW_PRIVATE_ADDRESSES".into(),
                "true".into(),
            ),
            ("NUAGE_CATALOGUE__WEBHOOK_RETRY_SECONDS".into(), "1".into()),
        ],
        ..Spawn::default()
    })
    .await;
    let (house, region) = house(&app).await;
    let (status, _) = app
        .root(
            Method::PUT,
            &format!("/orgs/{house}/tax"),
            Some(json!({"vat_number": "FR76411050487"})),
        )
        .await;
    assert_eq!(status, 200);
    let offer = house_offer(
        &app,
        &house,
        &region,
        "Essai Prévision",
        json!({
            "monthly_fee": "30", "per_gb_month": "1000", "per_1k_class_a": "10",
        }),
    )
    .await;
    let customer = app.create_org("Client Prévoyant").await;
    let (_, owner) = app
        .create_user(&customer, "gestion@prevoyant.example", "owner")
        .await;
    let (_, member) = app
        .create_user(&customer, "membre@prevoyant.example", "member")
        .await;
    app.set_clock(NOVEMBER).await;
    let (_, bucket, s3) = order_storage(&app, &customer, &owner, &offer).await;
    // A quota of 10 MB, alerts at half and at nine tenths.
    let (status, _) = app
        .root(
            Method::PUT,
            &format!("/orgs/{customer}/quota"),
            Some(json!({"max_bytes": 10_000_000})),
        )
        .await;
    assert_eq!(status, 200);
    for bad in [json!([0]), json!([101]), json!([10, 20, 30, 40, 50, 60])] {
        let (status, body) = app
            .call(
                Method::PUT,
                &format!("/orgs/{customer}/quota-alerts"),
                &owner,
                Some(json!({"thresholds": bad})),
            )
            .await;
        assert_eq!(status, 400, "{body}");
    }
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/orgs/{customer}/quota-alerts"),
            &member,
            Some(json!({"thresholds": [50]})),
        )
        .await;
    assert_eq!(status, 403, "a plain member does not set alerts");
    let (status, alerts) = app
        .call(
            Method::PUT,
            &format!("/orgs/{customer}/quota-alerts"),
            &owner,
            Some(json!({"thresholds": [90, 50]})),
        )
        .await;
    assert_eq!(status, 200, "{alerts}");
    assert_eq!(alerts["thresholds"], json!([50, 90]));
    let (url, seen) = crate::market::catalogue::webhook_receiver().await;
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/orgs/{customer}/webhook"),
            &owner,
            Some(json!({"url": url})),
        )
        .await;
    assert_eq!(status, 200);

    // November 10th: 9.3 MB stored, 93 % of the quota.
    app.set_clock(NOVEMBER + 9 * DAY).await;
    let put = || {
        s3.put_object()
            .bucket(&bucket)
            .key("a")
            .body(ByteStream::from(vec![2u8; 9_300_000]))
            .send()
    };
    put().await.expect("put");
    app.maintain().await;
    let (status, forecast) = app
        .call(
            Method::GET,
            &format!("/orgs/{customer}/forecast"),
            &owner,
            None,
        )
        .await;
    assert_eq!(status, 200, "{forecast}");
    assert_eq!(forecast["period"], "2026-11");
    // By hand: the month's fee, 30 €; 9.3 MB kept the 21 days left, 0.00651
    // GB-month × 1000 € = 6.51 €; 1 PUT in 9 days of 30 makes 3.33, 3 for
    // the month, 0.003 thousand × 10 € = 0.03 €. Net 36.54, VAT 7.31.
    let lines: Vec<(String, String)> = forecast["invoices"][0]["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            (
                l["kind"].as_str().expect("kind").to_owned(),
                l["amount"].as_str().expect("amount").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("monthly_fee".to_owned(), "30.00".to_owned()),
            ("storage".to_owned(), "6.51".to_owned()),
            ("class_a_requests".to_owned(), "0.03".to_owned()),
        ],
        "{forecast}"
    );
    assert_eq!(forecast["net"], "36.54");
    assert_eq!(forecast["gross"], "43.85");
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/orgs/{customer}/forecast"),
            &member,
            None,
        )
        .await;
    assert_eq!(status, 403, "money is for owners, admins and billing");

    // The 90 % alert is told once, in the console's data and by webhook.
    let told = |app: &TestApp| {
        let app_url = app.url(&format!("/orgs/{customer}/quota-alerts"));
        let http = app.http.clone();
        let owner = owner.clone();
        async move {
            let body: Value = http
                .get(app_url)
                .bearer_auth(owner)
                .send()
                .await
                .expect("alerts")
                .json()
                .await
                .expect("json");
            body
        }
    };
    let mut alerts = Value::Null;
    for _ in 0..100 {
        alerts = told(&app).await;
        if !alerts["events"].as_array().expect("events").is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(alerts["percent_used"], 93);
    let events = alerts["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{alerts}");
    assert_eq!(events[0]["percent"], 90);
    let mut hooks = Vec::new();
    for _ in 0..100 {
        hooks = seen
            .lock()
            .expect("hooks")
            .iter()
            .filter(|h| h.0 == "quota.threshold")
            .map(|h| h.2.clone())
            .collect();
        if !hooks.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(hooks.len(), 1);
    let hook: Value = serde_json::from_str(&hooks[0]).expect("payload");
    assert_eq!(hook["quota"]["threshold_percent"], 90);
    assert_eq!(hook["quota"]["used_bytes"], 9_300_000);
    // Still above: not told again. Below, then above again: told again.
    app.run_job("quota-alerts").await;
    assert_eq!(
        told(&app).await["events"].as_array().expect("events").len(),
        1
    );
    s3.delete_object()
        .bucket(&bucket)
        .key("a")
        .send()
        .await
        .expect("delete");
    app.run_job("quota-alerts").await;
    put().await.expect("put");
    let mut count = 0;
    for _ in 0..100 {
        count = told(&app).await["events"].as_array().expect("events").len();
        if count == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(count, 2, "crossing again is told again");
}

/// A usage history and how a meter delivers it: each record once, or again
/// (a retry), in any order, over several deliveries.
#[derive(Debug, Clone)]
struct Delivered {
    /// (hour of October, class A, egress bytes), one record per hour.
    records: Vec<(i64, i64, i64)>,
    /// The order the records (with their replays) arrive in.
    order: Vec<usize>,
    /// Where the arrivals are cut into deliveries.
    cuts: Vec<usize>,
}

fn deliveries() -> impl proptest::strategy::Strategy<Value = Delivered> {
    use proptest::prelude::*;
    proptest::collection::btree_map(0i64..744, (0i64..5_000, 0i64..3_000_000_000), 1..12)
        .prop_flat_map(|by_hour| {
            let records: Vec<(i64, i64, i64)> =
                by_hour.into_iter().map(|(h, (a, e))| (h, a, e)).collect();
            let n = records.len();
            (
                Just(records),
                // Every record at least once, some twice or three times.
                proptest::collection::vec(0..n, 0..n * 2)
                    .prop_map(move |extra| (0..n).chain(extra).collect::<Vec<_>>())
                    .prop_shuffle(),
                proptest::collection::vec(0usize..40, 0..4),
            )
        })
        .prop_map(|(records, order, cuts)| Delivered {
            records,
            order,
            cuts,
        })
}

#[tokio::test]
async fn records_replayed_reordered_or_split_across_deliveries_bill_the_same() {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, TestRunner};

    let app = spawn_at(OCTOBER).await;
    let found: Value = app
        .http
        .get(app.url("/directory/search?kind=offer&q=usage"))
        .send()
        .await
        .expect("search")
        .json()
        .await
        .expect("json");
    let per_use = found["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .find(|h| h["name"].as_str().unwrap_or_default().contains("à l'usage"))
        .expect("the house's storage by use")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut runner = TestRunner::new(Config::with_cases(8));
    let strategy = deliveries();
    let mut cases = Vec::new();
    app.set_clock(OCTOBER).await;
    for i in 0..8 {
        let case = strategy.new_tree(&mut runner).expect("a case").current();
        let org = app.create_org(&format!("Mesuré {i}")).await;
        let (status, order) = app
            .root(
                Method::POST,
                &format!("/orgs/{org}/orders"),
                Some(json!({"offer_id": per_use})),
            )
            .await;
        assert_eq!(status, 201, "{order}");
        let bucket = order["subscription"]["resources"]["buckets"][0]
            .as_str()
            .expect("bucket")
            .to_owned();
        cases.push((case, org, bucket));
    }
    app.set_clock(NOVEMBER).await;
    for (i, (case, org, bucket)) in cases.iter().enumerate() {
        let arrivals: Vec<Value> = case
            .order
            .iter()
            .map(|&r| {
                let (hour, class_a, egress) = case.records[r];
                json!({"id": format!("case-{i}-hour-{hour}"), "org_id": org, "bucket": bucket,
                       "hour_ms": OCTOBER + hour * 3_600_000, "class_a": class_a, "egress_bytes": egress})
            })
            .collect();
        let mut at = 0;
        let mut cuts: Vec<usize> = case.cuts.iter().map(|c| c % (arrivals.len() + 1)).collect();
        cuts.push(arrivals.len());
        cuts.sort_unstable();
        for cut in cuts {
            if cut > at {
                let (status, body) = app
                    .root(
                        Method::POST,
                        "/usage-records",
                        Some(json!({"records": arrivals[at..cut]})),
                    )
                    .await;
                assert_eq!(status, 200, "{body}");
                at = cut;
            }
        }
    }
    app.set_clock(NOVEMBER + DAY).await;
    let (status, body) = run(&app, "2026-10").await;
    assert_eq!(status, 200, "{body}");
    for (case, org, _) in &cases {
        let class_a: i64 = case.records.iter().map(|r| r.1).sum();
        let egress: i64 = case.records.iter().map(|r| r.2).sum();
        // A case whose usage rates to 0.00 is a statement, not an invoice;
        // its lines count the same.
        let invoice = match invoices(&app, org).await.first() {
            Some(invoice) => invoice.clone(),
            None => {
                let (status, statements) = app
                    .root(Method::GET, &format!("/orgs/{org}/statements"), None)
                    .await;
                assert_eq!(status, 200, "{statements}");
                assert_eq!(statements[0]["kind"], "zero", "{case:?} {statements}");
                statements[0]["document"].clone()
            }
        };
        let quantity = |kind: &str| {
            invoice["lines"]
                .as_array()
                .expect("lines")
                .iter()
                .find(|l| l["kind"] == kind)
                .map(|l| {
                    l["quantity"]
                        .as_str()
                        .expect("quantity")
                        .parse::<rust_decimal::Decimal>()
                        .expect("decimal")
                })
                .unwrap_or_default()
        };
        let expected =
            |n: i64, per: i64| rust_decimal::Decimal::from(n) / rust_decimal::Decimal::from(per);
        assert_eq!(
            quantity("class_a_requests"),
            expected(class_a, 1000),
            "{case:?}"
        );
        assert_eq!(
            quantity("egress"),
            expected(egress, 1_000_000_000),
            "{case:?}"
        );
    }
}

/// A month that comes to exactly 0.00 issues no invoice and takes no
/// number: its customer sees a statement; any other amount is invoiced,
/// numbered without a gap.
#[tokio::test]
async fn a_month_that_comes_to_zero_is_a_statement_and_takes_no_number() {
    let app = spawn_at(OCTOBER).await;
    let (house, region) = house(&app).await;
    let free = house_offer(
        &app,
        &house,
        &region,
        "Essai Gratuit",
        json!({
            "monthly_fee": "0", "per_gb_month": "0", "per_1k_class_a": "0.001",
            "per_1k_class_b": "0", "per_gb_egress": "0",
        }),
    )
    .await;
    let personal = personal_bundle(&app).await;
    app.set_clock(OCTOBER).await;
    let trial = app.create_org("Client Essai").await;
    let (_, token) = app.create_user(&trial, "essai@example.org", "owner").await;
    let (_, bucket, s3) = order_storage(&app, &trial, &token, &free).await;
    // One write: a thousandth of a cent, which rates to 0.00.
    put(&s3, &bucket, "note.txt", ByteStream::from_static(b"free")).await;
    app.maintain().await;
    let payer = customers_of(&app, &personal, "Payant", 1).await;

    app.set_clock(NOVEMBER + DAY).await;
    let (status, summary) = run(&app, "2026-10").await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["invoices"], 1, "{summary}");
    assert_eq!(summary["statements"], 1, "{summary}");
    assert!(
        invoices(&app, &trial).await.is_empty(),
        "no invoice at 0.00"
    );
    let paid = invoices(&app, &payer[0]).await;
    assert_eq!(paid.len(), 1);
    assert_eq!(paid[0]["number"], "F-000001", "no number taken for 0.00");
    let (status, statements) = app
        .call(
            Method::GET,
            &format!("/orgs/{trial}/statements"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 200, "{statements}");
    let statements = statements.as_array().expect("statements").clone();
    assert_eq!(statements.len(), 1, "{statements:?}");
    assert_eq!(statements[0]["kind"], "zero");
    assert_eq!(statements[0]["period"], "2026-10");
    let lines = statements[0]["document"]["lines"]
        .as_array()
        .expect("lines");
    assert!(!lines.is_empty(), "the month's usage is shown");
    assert!(
        lines
            .iter()
            .all(|l| l["amount"] == "0" || l["amount"] == "0.00"),
        "{lines:?}"
    );
    // Running the month again changes nothing.
    let (status, again) = run(&app, "2026-10").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (again["invoices"].clone(), again["statements"].clone()),
        (json!(1), json!(1))
    );
    // Another organisation does not see the statement.
    let stranger = app.create_org("Curieux Essai").await;
    let (_, nosy) = app
        .create_user(&stranger, "curieux-essai@example.org", "owner")
        .await;
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/orgs/{trial}/statements"),
            &nosy,
            None,
        )
        .await;
    assert!(status == 403 || status == 404, "{status}");
}

/// An organisation's owner fills in its legal identity in the console; a
/// bad value is refused with the form shown again and nothing saved.
#[tokio::test]
async fn an_organisation_fills_in_its_legal_identity_in_the_console() {
    let app = spawn_at(OCTOBER).await;
    let org = app.create_org("Identité Console").await;
    app.create_user(&org, "dg@identite.example", "owner").await;
    let session = app.console_session("dg@identite.example").await;
    let html = app.console_page(&session, "/billing").await;
    assert!(
        html.contains("id=\"missing-buyer\"") && html.contains("postal address, SIREN"),
        "{html}"
    );
    let post = |fields: Vec<(&'static str, &'static str)>| {
        let (app, session) = (&app, session.clone());
        async move {
            app.console_post(&session, "/billing", "/billing/identity", &fields)
                .await
        }
    };
    let good = vec![
        ("siret", "73282932000074"),
        ("line1", "3 place de la Mairie"),
        ("postcode", "69001"),
        ("city", "Lyon"),
        ("country", "FR"),
        ("legal_form", "SARL"),
        ("share_capital", "7 500,50"),
        ("rcs", "RCS Lyon"),
    ];
    let mut bad = good.clone();
    bad[2] = ("postcode", "690");
    let refused = post(bad).await;
    assert_eq!(refused.status(), 400);
    let page = refused.text().await.expect("html");
    assert!(
        page.contains("Postcode") && page.contains("value=\"690\""),
        "{page}"
    );
    let (_, stored) = app
        .root(Method::GET, &format!("/orgs/{org}/legal-identity"), None)
        .await;
    assert!(stored["identity"]["address"].is_null(), "{stored}");
    let saved = post(good).await;
    assert_eq!(saved.status(), 303);
    let (status, stored) = app
        .root(Method::GET, &format!("/orgs/{org}/legal-identity"), None)
        .await;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["siret"], "73282932000074");
    assert_eq!(stored["identity"]["address"]["city"], "Lyon");
    assert_eq!(stored["identity"]["share_capital"], "7500.50");
    assert_eq!(stored["missing_as_buyer"], json!([]));
    // Audited without the values.
    let mut db = app.database().await;
    let details: Vec<String> =
        sqlx::query_scalar("SELECT details FROM audit_log WHERE action = 'org.legal_identity'")
            .fetch_all(&mut db)
            .await
            .expect("audit");
    assert_eq!(details.len(), 1, "{details:?}");
    assert!(details[0].contains("\"address\":true"), "{details:?}");
    assert!(
        !details[0].contains("Lyon") && !details[0].contains("Mairie"),
        "{details:?}"
    );
    let html = app.console_page(&session, "/billing").await;
    assert!(
        html.contains("id=\"identity-complete\"") || html.contains("id=\"missing-issuer\""),
        "{html}"
    );
    assert!(!html.contains("id=\"missing-buyer\""), "{html}");
}

/// With billing by hand only, running the month again issues what it held
/// once the parties are complete.
#[tokio::test]
async fn running_a_month_again_issues_what_it_held() {
    let app = spawn_at(OCTOBER).await;
    let personal = personal_bundle(&app).await;
    app.set_clock(OCTOBER).await;
    let org = customer(
        &app,
        json!({"name": "Client Retardataire", "kind": "company"}),
        &personal,
    )
    .await;
    app.set_clock(NOVEMBER + DAY).await;
    let by_hand = || {
        app.root(
            Method::POST,
            "/billing/runs",
            Some(json!({"period": "2026-10"})),
        )
    };
    let (status, held) = by_hand().await;
    assert_eq!(status, 200, "{held}");
    assert_eq!(
        (
            held["invoices"].clone(),
            held["held"].as_array().map(Vec::len)
        ),
        (json!(0), Some(1))
    );
    app.complete_identities().await;
    let (status, again) = by_hand().await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["invoices"], 1, "{again}");
    assert_eq!(again["held"], json!([]), "{again}");
    let issued = invoices(&app, &org).await;
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0]["number"], "F-000001");
}
