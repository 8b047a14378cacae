//! What the repositories promise, on a real database of each engine
//! (SQLite, or PostgreSQL when `NUAGE_TEST_DATABASE_URL` names a server),
//! without a server above them: invoice numbers without gaps or doubles,
//! whatever the concurrency and the rollbacks, and issued invoices that no
//! statement can change or remove.

mod support;

use nuage_db::repo::billing::{NewInvoice, insert_invoice, invoices_of_issuer};
use nuage_db::repo::identity::{OrgRow, insert_org};
use support::test_db::TestDb;

async fn org(db: &nuage_db::Db, name: &str) -> String {
    let row = OrgRow {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_owned(),
        kind: "company".to_owned(),
        siret: None,
        vat_number: None,
        country: "FR".to_owned(),
        require_totp: 0,
        created_at: 0,
    };
    let mut tx = db.begin_write().await.expect("begin");
    insert_org(&mut tx, &row).await.expect("organisation");
    tx.commit().await.expect("commit");
    row.id
}

fn invoice(issuer: &str, customer: &str) -> NewInvoice {
    NewInvoice {
        id: uuid::Uuid::now_v7().to_string(),
        issuer_id: issuer.to_owned(),
        kind: "invoice".to_owned(),
        corrects_id: None,
        customer_id: customer.to_owned(),
        period_start: 0,
        period_end: 1,
        currency: "EUR".to_owned(),
        net: "10.00".to_owned(),
        vat: "2.00".to_owned(),
        gross: "12.00".to_owned(),
        document: "{}".to_owned(),
        issued_at: 1,
        run_id: None,
    }
}

/// Issues one invoice in its own write transaction: its number.
async fn issue(db: &nuage_db::Db, issuer: &str, customer: &str) -> i64 {
    let mut tx = db.begin_write().await.expect("begin");
    let number = insert_invoice(&mut tx, &invoice(issuer, customer))
        .await
        .expect("invoice");
    tx.commit().await.expect("commit");
    number
}

async fn numbers_of(db: &nuage_db::Db, issuer: &str) -> Vec<i64> {
    let mut conn = db.acquire().await.expect("connection");
    invoices_of_issuer(&mut conn, issuer)
        .await
        .expect("invoices")
        .into_iter()
        .map(|i| i.number)
        .collect()
}

#[tokio::test]
async fn invoice_numbers_follow_each_other_per_issuer_and_a_rollback_takes_none() {
    let test = TestDb::new().await;
    let db = test.node().await;
    let (house, other, customer) = (
        org(&db, "House").await,
        org(&db, "Other issuer").await,
        org(&db, "Customer").await,
    );
    assert_eq!(issue(&db, &house, &customer).await, 1);
    assert_eq!(issue(&db, &house, &customer).await, 2);
    // Each issuer counts on its own.
    assert_eq!(issue(&db, &other, &customer).await, 1);
    // An invoice whose transaction is rolled back leaves no gap.
    let mut tx = db.begin_write().await.expect("begin");
    assert_eq!(
        insert_invoice(&mut tx, &invoice(&house, &customer))
            .await
            .expect("invoice"),
        3
    );
    tx.rollback().await.expect("rollback");
    assert_eq!(issue(&db, &house, &customer).await, 3);
    assert_eq!(numbers_of(&db, &house).await, [1, 2, 3]);
    db.close().await;
    test.drop_database().await;
}

#[tokio::test]
async fn issuers_writing_at_once_get_distinct_numbers_without_gaps() {
    let test = TestDb::new().await;
    let db = test.node().await;
    let (house, customer) = (org(&db, "House").await, org(&db, "Customer").await);
    let writers: Vec<_> = (0..12)
        .map(|_| {
            let (db, house, customer) = (db.clone(), house.clone(), customer.clone());
            tokio::spawn(async move { issue(&db, &house, &customer).await })
        })
        .collect();
    let mut numbers = Vec::new();
    for writer in writers {
        numbers.push(writer.await.expect("writer"));
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=12).collect::<Vec<i64>>());
    assert_eq!(numbers_of(&db, &house).await, numbers);
    db.close().await;
    test.drop_database().await;
}

#[tokio::test]
async fn an_issued_invoice_cannot_be_changed_or_removed() {
    let test = TestDb::new().await;
    let db = test.node().await;
    let (house, customer) = (org(&db, "House").await, org(&db, "Customer").await);
    issue(&db, &house, &customer).await;
    for statement in [
        "UPDATE invoices SET gross = '0.00'",
        "UPDATE invoices SET number = 7",
        "DELETE FROM invoices",
    ] {
        let mut conn = db.acquire().await.expect("connection");
        let refused = sqlx::query(statement).execute(&mut *conn).await;
        assert!(refused.is_err(), "{statement} was accepted");
    }
    let mut conn = db.acquire().await.expect("connection");
    let kept = invoices_of_issuer(&mut conn, &house)
        .await
        .expect("invoices");
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].invoice.gross, "12.00");
    drop(conn);
    db.close().await;
    test.drop_database().await;
}
