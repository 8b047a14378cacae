//! Calls for tender, their sealed bids, the evaluation of each lot of each
//! bid, and awards.

use sqlx::{AnyConnection, FromRow};

use crate::DbError;

#[derive(Debug, Clone, FromRow)]
pub struct TenderRow {
    pub id: String,
    pub buyer_org_id: String,
    pub state: String,
    pub spec: String,
    pub version: i64,
    pub deadline_at: i64,
    pub recipient: Option<String>,
    pub key_mode: Option<String>,
    pub shares_threshold: Option<i64>,
    pub shares_total: Option<i64>,
    pub standstill_days: i64,
    pub created_by: String,
    pub created_at: i64,
    pub published_at: Option<i64>,
    pub opened_at: Option<i64>,
    pub opened_by: Option<String>,
    pub cancelled_at: Option<i64>,
    pub cancel_reason: Option<String>,
}

const TENDER_COLUMNS: &str = "id, buyer_org_id, state, spec, version, deadline_at, recipient, \
     key_mode, shares_threshold, shares_total, standstill_days, created_by, created_at, \
     published_at, opened_at, opened_by, cancelled_at, cancel_reason";

pub async fn insert_tender(conn: &mut AnyConnection, t: &TenderRow) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT INTO tenders ({TENDER_COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
    ))
    .bind(&t.id)
    .bind(&t.buyer_org_id)
    .bind(&t.state)
    .bind(&t.spec)
    .bind(t.version)
    .bind(t.deadline_at)
    .bind(&t.recipient)
    .bind(&t.key_mode)
    .bind(t.shares_threshold)
    .bind(t.shares_total)
    .bind(t.standstill_days)
    .bind(&t.created_by)
    .bind(t.created_at)
    .bind(t.published_at)
    .bind(t.opened_at)
    .bind(&t.opened_by)
    .bind(t.cancelled_at)
    .bind(&t.cancel_reason)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_tender(conn: &mut AnyConnection, id: &str) -> Result<Option<TenderRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TENDER_COLUMNS} FROM tenders WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Published calls (every state but draft) by id; or one buyer's own,
/// drafts included.
pub async fn list_tenders(
    conn: &mut AnyConnection,
    buyer: Option<&str>,
    after: &str,
    limit: i64,
) -> Result<Vec<TenderRow>, DbError> {
    let filter = match buyer {
        Some(_) => "buyer_org_id = $1",
        None => "state <> 'draft' AND $1 = $1",
    };
    Ok(sqlx::query_as(&format!(
        "SELECT {TENDER_COLUMNS} FROM tenders WHERE {filter} AND id > $2 ORDER BY id LIMIT $3"
    ))
    .bind(buyer.unwrap_or(""))
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Replaces a draft's spec (drafts only).
pub async fn update_draft(
    conn: &mut AnyConnection,
    id: &str,
    spec: &str,
    deadline_at: i64,
) -> Result<bool, DbError> {
    Ok(sqlx::query(
        "UPDATE tenders SET spec = $1, deadline_at = $2 WHERE id = $3 AND state = 'draft'",
    )
    .bind(spec)
    .bind(deadline_at)
    .bind(id)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Moves a published call's deadline (only the demo does: its closed call
/// is seeded before its deadline, then closed).
pub async fn set_deadline(
    conn: &mut AnyConnection,
    id: &str,
    deadline_at: i64,
    spec: &str,
) -> Result<(), DbError> {
    sqlx::query("UPDATE tenders SET deadline_at = $1, spec = $2 WHERE id = $3")
        .bind(deadline_at)
        .bind(spec)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Publishes a draft with the public half of its opening key.
pub async fn publish(conn: &mut AnyConnection, t: &TenderRow) -> Result<bool, DbError> {
    Ok(sqlx::query(
        "UPDATE tenders SET state = 'published', recipient = $1, key_mode = $2, \
         shares_threshold = $3, shares_total = $4, published_at = $5, version = 1 \
         WHERE id = $6 AND state = 'draft'",
    )
    .bind(&t.recipient)
    .bind(&t.key_mode)
    .bind(t.shares_threshold)
    .bind(t.shares_total)
    .bind(t.published_at)
    .bind(&t.id)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

#[derive(Debug, Clone, FromRow)]
pub struct VersionRow {
    pub tender_id: String,
    pub version: i64,
    pub spec: String,
    pub summary: String,
    /// JSON: the names of the fields that changed.
    pub changes: String,
    pub at: i64,
}

pub async fn insert_version(conn: &mut AnyConnection, v: &VersionRow) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO tender_versions (tender_id, version, spec, summary, changes, at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&v.tender_id)
    .bind(v.version)
    .bind(&v.spec)
    .bind(&v.summary)
    .bind(&v.changes)
    .bind(v.at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn versions(
    conn: &mut AnyConnection,
    tender_id: &str,
) -> Result<Vec<VersionRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT tender_id, version, spec, summary, changes, at FROM tender_versions \
         WHERE tender_id = $1 ORDER BY version",
    )
    .bind(tender_id)
    .fetch_all(conn)
    .await?)
}

/// Replaces a published call's spec by its amendment, as version
/// `version`; false when it is no longer published or was amended meanwhile.
pub async fn amend(
    conn: &mut AnyConnection,
    id: &str,
    version: i64,
    spec: &str,
    deadline_at: i64,
) -> Result<bool, DbError> {
    Ok(sqlx::query(
        "UPDATE tenders SET spec = $1, deadline_at = $2, version = $3 \
         WHERE id = $4 AND state = 'published' AND version = $5",
    )
    .bind(spec)
    .bind(deadline_at)
    .bind(version)
    .bind(id)
    .bind(version - 1)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

#[derive(Debug, Clone, FromRow)]
pub struct QuestionRow {
    pub id: String,
    pub tender_id: String,
    pub asker_org_id: String,
    pub question: String,
    pub asked_by: String,
    pub asked_at: i64,
    pub answer: Option<String>,
    pub answered_by: Option<String>,
    pub answered_at: Option<i64>,
}

const QUESTION_COLUMNS: &str = "id, tender_id, asker_org_id, question, asked_by, asked_at, \
     answer, answered_by, answered_at";

pub async fn insert_question(conn: &mut AnyConnection, q: &QuestionRow) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT INTO tender_questions ({QUESTION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .bind(&q.id)
    .bind(&q.tender_id)
    .bind(&q.asker_org_id)
    .bind(&q.question)
    .bind(&q.asked_by)
    .bind(q.asked_at)
    .bind(&q.answer)
    .bind(&q.answered_by)
    .bind(q.answered_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A call's questions in the order they were asked.
pub async fn questions(
    conn: &mut AnyConnection,
    tender_id: &str,
) -> Result<Vec<QuestionRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {QUESTION_COLUMNS} FROM tender_questions WHERE tender_id = $1 ORDER BY asked_at, id"
    ))
    .bind(tender_id)
    .fetch_all(conn)
    .await?)
}

/// Answers a question once; false when it does not exist or is answered.
pub async fn answer_question(
    conn: &mut AnyConnection,
    tender_id: &str,
    id: &str,
    answer: &str,
    by: &str,
    at: i64,
) -> Result<bool, DbError> {
    Ok(sqlx::query(
        "UPDATE tender_questions SET answer = $1, answered_by = $2, answered_at = $3 \
         WHERE id = $4 AND tender_id = $5 AND answer IS NULL",
    )
    .bind(answer)
    .bind(by)
    .bind(at)
    .bind(id)
    .bind(tender_id)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Marks a published call opened; false when it is not published.
pub async fn set_opened(
    conn: &mut AnyConnection,
    id: &str,
    at: i64,
    by: &str,
) -> Result<bool, DbError> {
    Ok(sqlx::query(
        "UPDATE tenders SET state = 'opened', opened_at = $1, opened_by = $2 \
         WHERE id = $3 AND state = 'published'",
    )
    .bind(at)
    .bind(by)
    .bind(id)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Declares a call without follow-up; false when it is a draft or already
/// cancelled.
pub async fn set_cancelled(
    conn: &mut AnyConnection,
    id: &str,
    at: i64,
    reason: &str,
) -> Result<bool, DbError> {
    Ok(sqlx::query(
        "UPDATE tenders SET state = 'cancelled', cancelled_at = $1, cancel_reason = $2 \
         WHERE id = $3 AND state IN ('published', 'opened')",
    )
    .bind(at)
    .bind(reason)
    .bind(id)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

#[derive(Debug, Clone, FromRow)]
pub struct BidRow {
    pub id: String,
    pub tender_id: String,
    pub bidder_org_id: String,
    pub ciphertext: String,
    pub sha256: String,
    pub size: i64,
    pub submitted_at: i64,
    pub submitted_by: String,
    pub receipt: String,
    pub replaced_by: Option<String>,
    pub withdrawn_at: Option<i64>,
    pub opened: Option<String>,
    pub open_error: Option<String>,
}

impl BidRow {
    /// `live` (the envelope that counts), `replaced` or `withdrawn`.
    pub fn status(&self) -> &'static str {
        if self.withdrawn_at.is_some() {
            "withdrawn"
        } else if self.replaced_by.is_some() {
            "replaced"
        } else {
            "live"
        }
    }
}

const BID_COLUMNS: &str = "id, tender_id, bidder_org_id, ciphertext, sha256, size, submitted_at, \
     submitted_by, receipt, replaced_by, withdrawn_at, opened, open_error";

/// Stores an envelope; the bidder's envelope before it, if any, is marked
/// replaced by this one.
/// Stores a new envelope. The bidder's envelope it replaces keeps its
/// digest and receipt, not its ciphertext: it will never be opened.
pub async fn insert_bid(conn: &mut AnyConnection, b: &BidRow) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE bids SET replaced_by = $1, ciphertext = '' WHERE tender_id = $2 \
         AND bidder_org_id = $3 AND replaced_by IS NULL AND withdrawn_at IS NULL",
    )
    .bind(&b.id)
    .bind(&b.tender_id)
    .bind(&b.bidder_org_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(&format!(
        "INSERT INTO bids ({BID_COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    ))
    .bind(&b.id)
    .bind(&b.tender_id)
    .bind(&b.bidder_org_id)
    .bind(&b.ciphertext)
    .bind(&b.sha256)
    .bind(b.size)
    .bind(b.submitted_at)
    .bind(&b.submitted_by)
    .bind(&b.receipt)
    .bind(&b.replaced_by)
    .bind(b.withdrawn_at)
    .bind(&b.opened)
    .bind(&b.open_error)
    .execute(conn)
    .await?;
    Ok(())
}

/// How many envelopes a bidder sent for a call since a time.
pub async fn count_bids_since(
    conn: &mut AnyConnection,
    tender_id: &str,
    bidder: &str,
    since: i64,
) -> Result<i64, DbError> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM bids WHERE tender_id = $1 AND bidder_org_id = $2 AND submitted_at > $3",
    )
    .bind(tender_id)
    .bind(bidder)
    .bind(since)
    .fetch_one(conn)
    .await?;
    Ok(n)
}

/// Withdraws a bidder's live envelope; false when it has none.
pub async fn withdraw_bid(
    conn: &mut AnyConnection,
    tender_id: &str,
    bidder: &str,
    at: i64,
) -> Result<bool, DbError> {
    Ok(sqlx::query(
        "UPDATE bids SET withdrawn_at = $1, ciphertext = '' WHERE tender_id = $2 \
         AND bidder_org_id = $3 AND replaced_by IS NULL AND withdrawn_at IS NULL",
    )
    .bind(at)
    .bind(tender_id)
    .bind(bidder)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// The envelopes that count: the last of each bidder, not withdrawn.
pub async fn live_bids(conn: &mut AnyConnection, tender_id: &str) -> Result<Vec<BidRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {BID_COLUMNS} FROM bids WHERE tender_id = $1 AND replaced_by IS NULL \
         AND withdrawn_at IS NULL ORDER BY submitted_at, id"
    ))
    .bind(tender_id)
    .fetch_all(conn)
    .await?)
}

/// Every envelope of one bidder, latest first.
pub async fn bids_of(
    conn: &mut AnyConnection,
    tender_id: &str,
    bidder: &str,
) -> Result<Vec<BidRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {BID_COLUMNS} FROM bids WHERE tender_id = $1 AND bidder_org_id = $2 \
         ORDER BY submitted_at DESC, id DESC"
    ))
    .bind(tender_id)
    .bind(bidder)
    .fetch_all(conn)
    .await?)
}

/// Records what opening read of many envelopes, 500 a statement: (bid id,
/// the bid sealed under the platform's key).
pub async fn set_bids_opened(
    conn: &mut AnyConnection,
    opened: &[(String, String)],
) -> Result<(), DbError> {
    for chunk in opened.chunks(500) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
            .collect();
        let sql = format!(
            "UPDATE bids SET opened = v.column2 FROM (VALUES {}) AS v WHERE bids.id = v.column1",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for (id, sealed) in chunk {
            query = query.bind(id).bind(sealed);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

pub async fn set_bid_opened(
    conn: &mut AnyConnection,
    id: &str,
    opened: Option<&str>,
    error: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query("UPDATE bids SET opened = $1, open_error = $2 WHERE id = $3")
        .bind(opened)
        .bind(error)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct BidLotRow {
    pub bid_id: String,
    pub lot: i64,
    pub tender_id: String,
    pub offer_id: String,
    pub price: String,
    pub eligibility: String,
    pub eligible: i64,
    pub excluded_reason: Option<String>,
    pub marks: String,
}

const BID_LOT_COLUMNS: &str =
    "bid_id, lot, tender_id, offer_id, price, eligibility, eligible, excluded_reason, marks";

/// Writes evaluations, 200 a statement.
pub async fn insert_bid_lots(conn: &mut AnyConnection, rows: &[BidLotRow]) -> Result<(), DbError> {
    for chunk in rows.chunks(200) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let p: Vec<String> = (1..=9).map(|j| format!("${}", 9 * i + j)).collect();
                format!("({})", p.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO bid_lots ({BID_LOT_COLUMNS}) VALUES {}",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for l in chunk {
            query = query
                .bind(&l.bid_id)
                .bind(l.lot)
                .bind(&l.tender_id)
                .bind(&l.offer_id)
                .bind(&l.price)
                .bind(&l.eligibility)
                .bind(l.eligible)
                .bind(&l.excluded_reason)
                .bind(&l.marks);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A lot's evaluations with their envelope's bidder, its name, the end of
/// its upload and the bid read at opening: one statement.
#[derive(Debug, Clone, FromRow)]
pub struct CandidateRow {
    #[sqlx(flatten)]
    pub lot: BidLotRow,
    pub bidder_org_id: String,
    pub bidder_name: String,
    pub submitted_at: i64,
    pub opened: Option<String>,
}

pub async fn lot_candidates(
    conn: &mut AnyConnection,
    tender_id: &str,
    lot: i64,
) -> Result<Vec<CandidateRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT l.bid_id, l.lot, l.tender_id, l.offer_id, l.price, l.eligibility, l.eligible, \
         l.excluded_reason, l.marks, b.bidder_org_id, o.name AS bidder_name, b.submitted_at, \
         b.opened FROM bid_lots l JOIN bids b ON b.id = l.bid_id \
         JOIN organisations o ON o.id = b.bidder_org_id \
         WHERE l.tender_id = $1 AND l.lot = $2 AND b.replaced_by IS NULL \
         AND b.withdrawn_at IS NULL ORDER BY l.bid_id",
    )
    .bind(tender_id)
    .bind(lot)
    .fetch_all(conn)
    .await?)
}

pub async fn bid_lots(
    conn: &mut AnyConnection,
    tender_id: &str,
    lot: i64,
) -> Result<Vec<BidLotRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {BID_LOT_COLUMNS} FROM bid_lots WHERE tender_id = $1 AND lot = $2 ORDER BY bid_id"
    ))
    .bind(tender_id)
    .bind(lot)
    .fetch_all(conn)
    .await?)
}

/// Sets the buyer's marks and exclusion of one lot of one bid.
pub async fn update_bid_lot(
    conn: &mut AnyConnection,
    bid_id: &str,
    lot: i64,
    marks: &str,
    excluded_reason: Option<&str>,
) -> Result<bool, DbError> {
    Ok(sqlx::query(
        "UPDATE bid_lots SET marks = $1, excluded_reason = $2 WHERE bid_id = $3 AND lot = $4",
    )
    .bind(marks)
    .bind(excluded_reason)
    .bind(bid_id)
    .bind(lot)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

#[derive(Debug, Clone, FromRow)]
pub struct AwardRow {
    pub tender_id: String,
    pub lot: i64,
    pub bid_id: String,
    pub supplier_org_id: String,
    pub offer_id: String,
    pub price: String,
    pub amount: String,
    pub ranking: String,
    pub awarded_at: i64,
    pub awarded_by: String,
    pub standstill_until: i64,
    pub signed_at: Option<i64>,
    pub signed_by: Option<String>,
    pub subscription_id: Option<String>,
}

const AWARD_COLUMNS: &str = "tender_id, lot, bid_id, supplier_org_id, offer_id, price, amount, \
     ranking, awarded_at, awarded_by, standstill_until, signed_at, signed_by, subscription_id";

pub async fn insert_award(conn: &mut AnyConnection, a: &AwardRow) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT INTO tender_awards ({AWARD_COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    ))
    .bind(&a.tender_id)
    .bind(a.lot)
    .bind(&a.bid_id)
    .bind(&a.supplier_org_id)
    .bind(&a.offer_id)
    .bind(&a.price)
    .bind(&a.amount)
    .bind(&a.ranking)
    .bind(a.awarded_at)
    .bind(&a.awarded_by)
    .bind(a.standstill_until)
    .bind(a.signed_at)
    .bind(&a.signed_by)
    .bind(&a.subscription_id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn awards(conn: &mut AnyConnection, tender_id: &str) -> Result<Vec<AwardRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {AWARD_COLUMNS} FROM tender_awards WHERE tender_id = $1 ORDER BY lot"
    ))
    .bind(tender_id)
    .fetch_all(conn)
    .await?)
}

/// Records the signature of an awarded lot; false when already signed.
pub async fn sign_award(
    conn: &mut AnyConnection,
    tender_id: &str,
    lot: i64,
    at: i64,
    by: &str,
    subscription_id: Option<&str>,
) -> Result<bool, DbError> {
    Ok(sqlx::query(
        "UPDATE tender_awards SET signed_at = $1, signed_by = $2, subscription_id = $3 \
         WHERE tender_id = $4 AND lot = $5 AND signed_at IS NULL",
    )
    .bind(at)
    .bind(by)
    .bind(subscription_id)
    .bind(tender_id)
    .bind(lot)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

// --- documents --------------------------------------------------------------------------

#[derive(Debug, Clone, FromRow)]
pub struct DocumentRow {
    pub id: String,
    pub tender_id: String,
    pub name: String,
    pub media_type: String,
    pub size: i64,
    pub sha256: String,
    pub region: String,
    pub blob_id: String,
    pub wrapped_key: String,
    pub uploaded_by: String,
    pub uploaded_at: i64,
}

const DOCUMENT_COLUMNS: &str = "id, tender_id, name, media_type, size, sha256, region, blob_id, \
     wrapped_key, uploaded_by, uploaded_at";

/// Records a document; false when the call already has one of that name.
pub async fn insert_document(conn: &mut AnyConnection, d: &DocumentRow) -> Result<bool, DbError> {
    let done = sqlx::query(&format!(
        "INSERT INTO tender_documents ({DOCUMENT_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (tender_id, name) DO NOTHING"
    ))
    .bind(&d.id)
    .bind(&d.tender_id)
    .bind(&d.name)
    .bind(&d.media_type)
    .bind(d.size)
    .bind(&d.sha256)
    .bind(&d.region)
    .bind(&d.blob_id)
    .bind(&d.wrapped_key)
    .bind(&d.uploaded_by)
    .bind(d.uploaded_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn documents(
    conn: &mut AnyConnection,
    tender_id: &str,
) -> Result<Vec<DocumentRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {DOCUMENT_COLUMNS} FROM tender_documents WHERE tender_id = $1 ORDER BY name"
    ))
    .bind(tender_id)
    .fetch_all(conn)
    .await?)
}

pub async fn get_document(
    conn: &mut AnyConnection,
    tender_id: &str,
    id: &str,
) -> Result<Option<DocumentRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {DOCUMENT_COLUMNS} FROM tender_documents WHERE tender_id = $1 AND id = $2"
    ))
    .bind(tender_id)
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

pub async fn delete_document(conn: &mut AnyConnection, id: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM tender_documents WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
