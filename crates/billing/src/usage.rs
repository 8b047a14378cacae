//! Usage delivered by meters outside the S3 path (hosting nodes, imports), counted once per record id.

use super::*;

/// A usage record delivered by a meter outside the S3 path (a hosting
/// node, an import): the same `id` delivered again counts once.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageRecordInput {
    /// The meter's own id for the record: letters, digits, `.`, `_`, `:`,
    /// `-`, at most 100.
    pub id: String,
    pub org_id: String,
    pub bucket: String,
    /// The hour it measures, in Unix milliseconds (a whole hour, not in the
    /// future).
    pub hour_ms: i64,
    #[serde(default)]
    pub class_a: i64,
    #[serde(default)]
    pub class_b: i64,
    #[serde(default)]
    pub egress_bytes: i64,
    /// Egress for leaving the platform: metered, never charged.
    #[serde(default)]
    pub exit_egress_bytes: i64,
}

/// What became of a delivery of usage records.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IngestOutcome {
    pub accepted: usize,
    /// Records already stored with the same content: counted once.
    pub duplicates: usize,
}

/// The most records one delivery may carry.
pub const MAX_RECORDS_PER_DELIVERY: usize = 1_000;

impl Billing {
    /// Stores usage records from a meter: operators only. Every record is
    /// checked first; one bad record refuses the whole delivery, which
    /// changes nothing and is logged.
    pub async fn ingest_usage(
        &self,
        who: &Principal,
        records: &[UsageRecordInput],
    ) -> ServiceResult<IngestOutcome> {
        if !who.is_operator() {
            return Err(ServiceError::Forbidden("metering is the operator's".into()));
        }
        let refused = |i: usize, message: String| -> ServiceError {
            tracing::warn!(record = i, %message, "usage records refused");
            DomainError::invalid("records", format!("record {i}: {message}")).into()
        };
        if records.is_empty() || records.len() > MAX_RECORDS_PER_DELIVERY {
            return Err(refused(
                0,
                format!("a delivery holds 1 to {MAX_RECORDS_PER_DELIVERY} records"),
            ));
        }
        let now = self.now_ms();
        let mut tx = self.platform().db().begin_write().await?;
        let (mut accepted, mut duplicates) = (0, 0);
        let mut seen: HashMap<&str, &UsageRecordInput> = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            if r.id.is_empty()
                || r.id.len() > 100
                || !r
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c))
            {
                return Err(refused(
                    i,
                    "an id has 1 to 100 letters, digits, '.', '_', ':' or '-'".into(),
                ));
            }
            if [r.class_a, r.class_b, r.egress_bytes, r.exit_egress_bytes]
                .iter()
                .any(|&q| q < 0)
            {
                return Err(refused(i, "a quantity cannot be negative".into()));
            }
            if r.hour_ms < 0 || r.hour_ms % HOUR_MS != 0 {
                return Err(refused(
                    i,
                    "hour_ms is the start of an hour (a multiple of 3600000)".into(),
                ));
            }
            if r.hour_ms > now {
                return Err(refused(i, "the hour is in the future".into()));
            }
            let known = OrgId::parse(&r.org_id).is_ok()
                && nuage_db::repo::storage::get_bucket(&mut tx, &r.bucket)
                    .await?
                    .is_some_and(|b| b.org_id == r.org_id);
            if !known {
                return Err(refused(
                    i,
                    format!("no bucket {:?} of organisation {:?}", r.bucket, r.org_id),
                ));
            }
            let row = nuage_db::repo::storage::UsageRow {
                id: format!("meter:{}", r.id),
                org_id: r.org_id.clone(),
                bucket: r.bucket.clone(),
                hour: r.hour_ms,
                class_a: r.class_a,
                class_b: r.class_b,
                egress_bytes: r.egress_bytes,
                exit_egress_bytes: r.exit_egress_bytes,
                recorded_at: now,
            };
            let stored = match seen.get(r.id.as_str()) {
                Some(earlier) => Some(*earlier == r),
                None => repo::get_usage(&mut tx, &row.id).await?.map(|o| {
                    (
                        o.org_id,
                        o.bucket,
                        o.hour,
                        o.class_a,
                        o.class_b,
                        o.egress_bytes,
                        o.exit_egress_bytes,
                    ) == (
                        row.org_id.clone(),
                        row.bucket.clone(),
                        row.hour,
                        row.class_a,
                        row.class_b,
                        row.egress_bytes,
                        row.exit_egress_bytes,
                    )
                }),
            };
            match stored {
                Some(true) => duplicates += 1,
                Some(false) => {
                    return Err(refused(
                        i,
                        format!("record {:?} was delivered before with other values", r.id),
                    ));
                }
                None => {
                    nuage_db::repo::storage::insert_usage(&mut tx, &row).await?;
                    seen.insert(&r.id, r);
                    accepted += 1;
                }
            }
        }
        tx.commit().await.map_err(nuage_db::DbError::from)?;
        Ok(IngestOutcome {
            accepted,
            duplicates,
        })
    }
}
