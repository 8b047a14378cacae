//! Benchmark of a call for tender's opening, run by `scripts/bench-tenders`
//! (not a test: timings never decide a pass or a fail).
//!
//! `cargo run --release --example bench_tenders [DATABASE_URL]`
//!
//! It builds the real server in-process (`Application::build` on port 0),
//! and with the test build's clock frozen (examples are built with the
//! package's dev-dependencies, which turn on `test-hooks`):
//!
//! 1. creates a public buyer and a call of one storage lot with three
//!    requirements (jurisdiction, reversibility, a price ceiling) and one
//!    price criterion, published with a fresh age key (`Procurement` use
//!    cases);
//! 2. creates `NUAGE_BENCH_BIDS` (10,000) bidder organisations
//!    (`Platform::create_org`) and one published storage offer for each,
//!    written straight into `offers` (the review workflow is not what is
//!    measured); one in ten is in a region outside the call's jurisdiction,
//!    one in ten above the price ceiling;
//! 3. seals one bid per bidder with age and submits it through
//!    `Procurement::submit_bid` (the receipts are signed as in production);
//! 4. moves the clock past the deadline and times, through the use cases,
//!    `Procurement::open_tender` (decrypt every envelope, check it against its
//!    receipt, read it, check eligibility rule by rule, write the results)
//!    and `Procurement::evaluation` of the lot (read every bid, score and rank
//!    the eligible ones) — the measured figure is their sum;
//! 5. measures the machine's limits in the same run: decrypting the same
//!    envelopes with age alone, in memory, and writing as many bare rows as
//!    the opening writes, in one transaction, into a scratch table.
//!
//! It prints one table row (stdout) and one JSON line (stderr).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use nuage::config::{Config, DatabaseConfig};
use nuage::server::Application;
use nuage_domain::ids::TokenId;
use nuage_domain::tender::TenderSpec;
use nuage_service::accounts::NewOrg;
use nuage_service::{Principal, RequestMeta};
use serde_json::json;

const DAY: i64 = 86_400_000;
/// 2026-10-01T00:00:00Z.
const START: i64 = 1_790_812_800_000;

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bids: usize = std::env::var("NUAGE_BENCH_BIDS")
        .ok()
        .map(|v| v.parse())
        .transpose()
        .context("NUAGE_BENCH_BIDS")?
        .unwrap_or(10_000);
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("NUAGE_BENCH_DATABASE_URL").ok())
        .filter(|u| !u.is_empty());
    let temp = tempfile::Builder::new()
        .prefix("nuage-bench-tenders.")
        .tempdir()?;
    let local = SocketAddr::from(([127, 0, 0, 1], 0));
    let defaults = Config::default();
    let config = Config {
        data_dir: PathBuf::from(temp.path()),
        listen: local,
        s3_listen: local,
        database: DatabaseConfig {
            url,
            max_connections: defaults.database.max_connections,
        },
        billing: nuage::config::BillingConfig {
            automatic: false,
            ..defaults.billing.clone()
        },
        ..defaults
    };
    let engine = if config.database_url().starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    };
    let app = Application::build(config, None).await?;
    let procurement = app.procurement().clone();
    let platform = app.platform().clone();
    let pool = platform.db().pool().clone();
    let root = Principal::Root {
        token: TokenId::new(),
    };
    let meta = RequestMeta::local();
    app.hooks().settable_clock().set(Some(START));

    // 1. The call.
    let buyer = platform
        .create_org(
            &root,
            &meta,
            NewOrg {
                name: "Acheteur du banc d'essai".into(),
                kind: "public".into(),
                siret: Some("73282932000074".into()),
                vat_number: None,
                country: None,
            },
        )
        .await?;
    let region: String = sqlx::query_scalar("SELECT name FROM regions ORDER BY name LIMIT 1")
        .fetch_one(&pool)
        .await?;
    sqlx::query("INSERT INTO regions (name, location, jurisdiction, house, created_at) VALUES ('bench-us', 'Ailleurs', 'US', 0, 0)")
        .execute(&pool)
        .await?;
    let spec: TenderSpec = serde_json::from_value(json!({
        "title": "Banc d'essai", "description": "Un lot de stockage.", "cpv": "72317000-0",
        "estimated_value": "100000", "place": {"code": "FR", "kind": "country"},
        "duration_months": 12, "price_form": "unit", "ccag": "information_technology",
        "procedure": "open", "deadline_ms": START + 35 * DAY,
        "lots": [{"title": "Stockage", "category": "storage",
            "usage_profile": {"stored_gb": "1000", "class_a_requests": 100000, "class_b_requests": 1000000, "egress_gb": "100"},
            "requirements": [
                {"rule": "jurisdiction", "allowed": ["FR"]},
                {"rule": "reversibility_formats", "required": ["S3"]},
                {"rule": "max_price", "monthly_eur": "500"}]}],
        "criteria": [{"name": "prix", "kind": "price", "weight": 100}],
    }))?;
    let buyer_id = buyer.id;
    let tender = procurement
        .create_tender(&root, &meta, buyer_id, spec)
        .await?;
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public();
    procurement
        .publish_tender(&root, &meta, &tender.id, &recipient.to_string(), None)
        .await?;

    // 2. The bidders and their offers.
    eprintln!("bench: {engine}: {bids} bidders and offers");
    let t = Instant::now();
    let mut bidders = Vec::with_capacity(bids);
    for i in 0..bids {
        let org = platform
            .create_org(
                &root,
                &meta,
                NewOrg {
                    name: format!("Soumissionnaire {i:05}"),
                    kind: "company".into(),
                    siret: None,
                    vat_number: None,
                    country: None,
                },
            )
            .await?;
        let offer_id = uuid::Uuid::now_v7().to_string();
        let sheet = json!({
            "name": format!("Offre {i}"), "description": "Stockage objet.", "category": "storage",
            "regions": [if i % 10 == 3 { "bench-us" } else { region.as_str() }],
            "certifications": [], "capacity_gb": null,
            "sla": {"availability_percent": "99.9", "support_hours": "24/7", "rto_hours": 4, "rpo_hours": 1},
            "reversibility": {"export_formats": ["S3"], "notice_days": 30},
            "price": {"monthly_fee": "10"},
        })
        .to_string();
        sqlx::query("INSERT INTO offers (id, provider_id, state, document, published, review_note, created_at, updated_at) VALUES ($1, $2, 'published', $3, $3, NULL, 0, 0)")
            .bind(&offer_id)
            .bind(org.id.to_string())
            .bind(&sheet)
            .execute(&pool)
            .await?;
        bidders.push((org.id, offer_id));
    }
    let setup_orgs = secs(t.elapsed());

    // 3. Sealed bids, through the use case.
    eprintln!("bench: {engine}: sealing and submitting {bids} bids");
    let t = Instant::now();
    let mut envelopes = Vec::with_capacity(bids);
    for (i, (org, offer)) in bidders.iter().enumerate() {
        // 1,000 GB × per_gb_month + 100 × 1,000 class A … : a tenth above 500 €.
        let per_gb = if i % 10 == 7 { "0.6" } else { "0.1" };
        let bid = json!({"tender_id": tender.id, "lots": [{"lot": 1, "offer_id": offer,
            "prices": {"monthly_fee": format!("{}", 10 + i % 50), "per_gb_month": per_gb,
                       "per_1k_class_a": "0.005", "per_1k_class_b": "0.0004", "per_gb_egress": "0.01"}}]});
        let sealed = age::encrypt(&recipient, bid.to_string().as_bytes())?;
        procurement
            .submit_bid(&root, &meta, &tender.id, *org, &sealed)
            .await?;
        envelopes.push(sealed);
    }
    let setup_bids = secs(t.elapsed());

    // 4. The measured figure: opening, then the lot's evaluation.
    app.hooks().settable_clock().set(Some(START + 36 * DAY));
    let key = {
        use age::secrecy::ExposeSecret;
        identity.to_string().expose_secret().to_owned()
    };
    let t = Instant::now();
    let report = procurement
        .open_tender(
            &root,
            &meta,
            &tender.id,
            &nuage_procurement::tenders::OpeningSecret::Identity(key),
        )
        .await?;
    let open = secs(t.elapsed());
    let t = Instant::now();
    let evaluation = procurement.evaluation(&root, &tender.id, 1).await?;
    let evaluate = secs(t.elapsed());
    let eligible = evaluation.candidates.iter().filter(|c| c.eligible).count();
    anyhow::ensure!(report.opened == bids, "opened {} of {bids}", report.opened);
    anyhow::ensure!(evaluation.ranking.len() == eligible, "ranked all eligible");

    // 5. The machine's limits, in the same run.
    let t = Instant::now();
    for e in &envelopes {
        let plain = age::decrypt(&identity, e)?;
        std::hint::black_box(plain);
    }
    let decrypt_only = secs(t.elapsed());
    sqlx::query("CREATE TABLE bench_scratch (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&pool)
        .await?;
    let row_body = "x".repeat(400);
    let t = Instant::now();
    {
        let mut tx = platform.db().begin_write().await?;
        for i in 0..(2 * bids) {
            sqlx::query("INSERT INTO bench_scratch (id, body) VALUES ($1, $2)")
                .bind(format!("{i:08}"))
                .bind(&row_body)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    let write_only = secs(t.elapsed());
    sqlx::query("DROP TABLE bench_scratch")
        .execute(&pool)
        .await?;

    let total = open + evaluate;
    println!(
        "| {engine} | {bids} | {open:.3} | {evaluate:.3} | **{total:.3}** | {decrypt_only:.3} | {write_only:.3} | {:.1} | {eligible} |",
        total / (decrypt_only + write_only).max(0.001)
    );
    eprintln!(
        "{}",
        json!({
            "engine": engine, "bids": bids, "open_s": open, "evaluation_s": evaluate,
            "total_s": total, "decrypt_only_s": decrypt_only, "write_2n_rows_s": write_only,
            "ratio_to_limits": total / (decrypt_only + write_only).max(0.001),
            "eligible": eligible, "setup_orgs_s": setup_orgs, "setup_bids_s": setup_bids,
        })
    );
    drop(app);
    Ok(())
}
