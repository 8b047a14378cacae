//! Invoices in the metadata database: numbers per issuer without gaps under
//! concurrency and after a transaction that never commits, and no change to
//! an issued invoice, on SQLite and PostgreSQL.

use nuage_db::Db;
use nuage_db::repo::billing::{self as repo, NewInvoice};

use crate::helpers::{create_bucket, put, spawn_app};

fn invoice(issuer: &str, customer: &str, n: usize) -> NewInvoice {
    NewInvoice {
        id: uuid::Uuid::now_v7().to_string(),
        issuer_id: issuer.to_owned(),
        kind: "invoice".into(),
        corrects_id: None,
        customer_id: customer.to_owned(),
        period_start: 0,
        period_end: 1,
        currency: "EUR".into(),
        net: format!("{n}.00"),
        vat: "0.00".into(),
        gross: format!("{n}.00"),
        document: "{}".into(),
        issued_at: n as i64,
        run_id: None,
    }
}

async fn issue(db: &Db, new: &NewInvoice) -> i64 {
    let mut tx = db.begin_write().await.expect("a transaction");
    let number = repo::insert_invoice(&mut tx, new).await.expect("issued");
    tx.commit().await.expect("committed");
    number
}

#[tokio::test]
async fn invoice_numbers_have_no_gap_and_issued_invoices_do_not_change() {
    let app = spawn_app().await;
    let provider = app.create_org("Provider Invoicing").await;
    let other = app.create_org("Provider Other").await;
    let customer = app.create_org("Customer Invoiced").await;
    let db = Db::connect(&app.database_url, 8)
        .await
        .expect("the database");

    // Eight writers at once, two issuers: each issuer's numbers are 1..n.
    let mut tasks = Vec::new();
    for w in 0..8 {
        let db = db.clone();
        let issuer = if w % 4 == 0 {
            other.clone()
        } else {
            provider.clone()
        };
        let customer = customer.clone();
        tasks.push(tokio::spawn(async move {
            let mut numbers = Vec::new();
            for i in 0..5 {
                numbers.push(issue(&db, &invoice(&issuer, &customer, w * 10 + i)).await);
            }
            numbers
        }));
    }
    for t in tasks {
        t.await.expect("a writer");
    }
    let mut conn = db.acquire().await.expect("a connection");
    let numbers = |rows: Vec<repo::InvoiceRow>| rows.iter().map(|r| r.number).collect::<Vec<_>>();
    let issued = numbers(
        repo::invoices_of_issuer(&mut conn, &provider)
            .await
            .expect("read"),
    );
    assert_eq!(issued, (1..=30).collect::<Vec<_>>());
    let issued = numbers(
        repo::invoices_of_issuer(&mut conn, &other)
            .await
            .expect("read"),
    );
    assert_eq!(issued, (1..=10).collect::<Vec<_>>());
    drop(conn);

    // A transaction that takes a number and never commits (a failure, a
    // node that stops) leaves no gap: the next invoice takes that number.
    {
        let mut tx = db.begin_write().await.expect("a transaction");
        let taken = repo::insert_invoice(&mut tx, &invoice(&provider, &customer, 99))
            .await
            .expect("issued");
        assert_eq!(taken, 31);
        tx.rollback().await.expect("rolled back");
    }
    assert_eq!(issue(&db, &invoice(&provider, &customer, 100)).await, 31);

    // An issued invoice can be neither changed nor removed, even by someone
    // with access to the database.
    let mut raw = app.database().await;
    for sql in [
        "UPDATE invoices SET gross = '0.00' WHERE number = 1",
        "DELETE FROM invoices WHERE number = 1",
    ] {
        let refused = sqlx::query(sql).execute(&mut raw).await;
        assert!(refused.is_err(), "{sql}");
    }
    let mut conn = db.acquire().await.expect("a connection");
    let first = &repo::invoices_of_issuer(&mut conn, &provider)
        .await
        .expect("read")[0];
    assert_ne!(first.invoice.gross, "0.00");
    assert_eq!(
        repo::invoices_of_issuer(&mut conn, &provider)
            .await
            .expect("read")
            .len(),
        31
    );
}

#[tokio::test]
async fn usage_is_told_per_bucket_and_day_as_it_accrues() {
    use aws_sdk_s3::primitives::ByteStream;
    use reqwest::Method;

    let app = spawn_app().await;
    let t = app.tenant("Usage Told").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "usage-told").await;
    let started = std::time::SystemTime::now();
    for key in ["a", "b"] {
        put(&s3, "usage-told", key, ByteStream::from(vec![7u8; 1000])).await;
    }
    for _ in 0..3 {
        s3.get_object()
            .bucket("usage-told")
            .key("a")
            .send()
            .await
            .expect("get")
            .body
            .collect()
            .await
            .expect("body");
    }

    // Requests are recorded within seconds; storage at once. (From the
    // day the test started, in case it runs across midnight.)
    let day_of = |t: std::time::SystemTime| time::OffsetDateTime::from(t).date().to_string();
    let path = format!(
        "/orgs/{}/usage?from={}&to={}",
        t.org,
        day_of(started),
        day_of(std::time::SystemTime::now())
    );
    let sum = |days: &serde_json::Value, field: &str| -> f64 {
        days.as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["bucket"] == "usage-told")
            .map(|d| match &d[field] {
                serde_json::Value::String(s) => s.parse().unwrap_or(f64::NAN),
                v => v.as_f64().unwrap_or(f64::NAN),
            })
            .sum()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let days = loop {
        let (status, body) = app.root(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{body}");
        if sum(&body, "class_b_requests") >= 3.0 {
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    // Two PUTs (and the bucket's creation), three GETs, 3,000 bytes out.
    assert!(sum(&days, "class_a_requests") >= 2.0, "{days}");
    assert_eq!(sum(&days, "class_b_requests"), 3.0, "{days}");
    assert!((sum(&days, "egress_gb") - 0.000003).abs() < 1e-12, "{days}");
    // 2,000 bytes stored since the PUTs, up to now: more than nothing, and
    // no more than 2,000 bytes since `started`, in the shortest month.
    let gb_months = sum(&days, "storage_gb_months");
    let elapsed = started.elapsed().expect("time").as_secs_f64();
    let at_most = 2000.0 / 1e9 * elapsed / (28.0 * 86400.0);
    assert!(
        gb_months > 0.0 && gb_months <= at_most,
        "{gb_months} > {at_most}: {days}"
    );

    // The same through the command line, as JSON and as a table.
    let out = app.cli(&["usage", "--org", &t.org, "--json"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.json()
            .as_array()
            .is_some_and(|days| days.iter().any(|d| d["bucket"] == "usage-told")),
        "{}",
        out.stdout
    );
    let out = app.cli(&["usage", "--org", &t.org], None);
    assert!(
        out.stdout.contains("usage-told") && out.stdout.contains("GB-months"),
        "{}",
        out.stdout
    );
    let out = app.cli(&["usage", "--org", &t.org, "--from", "2027-13-01"], None);
    assert_eq!(out.code, 1, "refused by the server: {}", out.stderr);

    // Bad ranges are refused, and another organisation's usage is not told.
    for bad in [
        "from=2027-02-30",
        "from=2027-03-02&to=2027-03-01",
        "from=2025-01-01&to=2027-01-01",
    ] {
        let (status, body) = app
            .root(Method::GET, &format!("/orgs/{}/usage?{bad}", t.org), None)
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let other = app.tenant("Usage Other").await;
    let stranger = app
        .create_user(&other.org, "u@usage-other.example", "owner")
        .await
        .1;
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/orgs/{}/usage", t.org),
            &stranger,
            None,
        )
        .await;
    assert!(status == 403 || status == 404, "{status}");
}
