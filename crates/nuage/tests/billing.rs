//! Invoices in the metadata database: numbers per issuer without gaps under
//! concurrency and after a transaction that never commits, and no change to
//! an issued invoice, on SQLite and PostgreSQL.

use nuage_db::Db;
use nuage_db::repo::billing::{self as repo, NewInvoice};

use crate::helpers::spawn_app;

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
    assert_ne!(first.gross, "0.00");
    assert_eq!(
        repo::invoices_of_issuer(&mut conn, &provider)
            .await
            .expect("read")
            .len(),
        31
    );
}
