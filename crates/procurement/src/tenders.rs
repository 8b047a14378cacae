//! Calls for tender, from draft to signature, over the catalogue.
//!
//! - A buyer (role `buyer` or `owner` of a public body) drafts a call and
//!   publishes it with the public half of its opening key, an age X25519
//!   recipient made by the buyer's own client (`nuage tender keygen`); the
//!   platform never sees the private half until the committee brings it to
//!   open the bids.
//! - Bidders seal their bids on their side; the platform stores the
//!   ciphertext, its SHA-256 and a receipt it signs with its Ed25519 key.
//!   The time that counts is the end of the upload.
//! - After the deadline, opening with the key decrypts every envelope, checks
//!   each against its receipt, reads it, and checks every lot's eligibility.
//! - The buyer marks the technical criteria, may exclude a bid with a
//!   written reason, and awards each lot to the best ranked; the standstill
//!   period runs before signature, which orders the winning offer at the
//!   bid's prices (and provisions it when it is a house offer).

use std::collections::BTreeMap;

use base64::Engine as _;
use nuage_db::AnyConnection;
use nuage_db::repo::catalogue as catalogue_repo;
use nuage_db::repo::tenders::{self as repo, AwardRow, BidLotRow, BidRow, TenderRow};
use nuage_domain::DomainError;
use nuage_domain::catalogue::OfferSheet;
use nuage_domain::ids::OrgId;
use nuage_domain::org::OrgKind;
use nuage_domain::org::Permission;
use nuage_domain::tender::{
    Bid, Candidate, MAX_BID_BYTES, MAX_ENVELOPES_PER_HOUR, OfferFacts, Receipt, RuleOutcome,
    Scored, SharesPolicy, SignedReceipt, TenderSpec, Warning, eligibility, marks_complete, rank,
    standstill_end,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use nuage_market::{parse_doc, to_json};

use crate::Procurement;
use nuage_service::{
    AuditEvent, Page, PageRequest, Principal, RequestMeta, ServiceError, ServiceResult,
};

/// A call for tender as shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TenderView {
    pub id: String,
    pub buyer_id: String,
    pub buyer_name: String,
    /// `draft`, `published`, `opened` or `cancelled`.
    pub state: String,
    /// Whether the deadline has passed.
    pub closed: bool,
    pub version: i64,
    pub spec: TenderSpec,
    /// The age recipient bids are sealed to.
    pub recipient: Option<String>,
    /// How its private half is held: `single`, or `shares` (`shares` says
    /// how many of how many open).
    pub key_mode: Option<String>,
    pub shares: Option<SharesPolicy>,
    pub published_at_ms: Option<i64>,
    pub opened_at_ms: Option<i64>,
    pub cancelled_at_ms: Option<i64>,
    pub cancel_reason: Option<String>,
    pub standstill_days: i64,
    /// What the buyer is warned of (a deadline shorter than the rule).
    pub warnings: Vec<Warning>,
    pub awards: Vec<AwardView>,
}

/// The award of a lot.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AwardView {
    pub lot: i64,
    pub bid_id: String,
    pub supplier_id: String,
    pub offer_id: String,
    /// The monthly price for the lot's usage profile, excluding VAT.
    pub monthly_price: String,
    /// Over the duration of the contract.
    pub amount: String,
    pub awarded_at_ms: i64,
    pub standstill_until_ms: i64,
    pub signed_at_ms: Option<i64>,
    pub subscription_id: Option<String>,
}

impl From<AwardRow> for AwardView {
    fn from(a: AwardRow) -> Self {
        Self {
            lot: a.lot,
            bid_id: a.bid_id,
            supplier_id: a.supplier_org_id,
            offer_id: a.offer_id,
            monthly_price: a.price,
            amount: a.amount,
            awarded_at_ms: a.awarded_at,
            standstill_until_ms: a.standstill_until,
            signed_at_ms: a.signed_at,
            subscription_id: a.subscription_id,
        }
    }
}

/// What the committee brings to open the bids.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum OpeningSecret {
    /// The private key, `AGE-SECRET-KEY-1…`.
    Identity(String),
    /// At least the threshold's number of shares, `NUAGE-SHARE-1-…`.
    Shares(Vec<String>),
}

impl std::fmt::Debug for OpeningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Identity(_) => f.write_str("Identity(…)"),
            Self::Shares(s) => write!(f, "Shares({} shares)", s.len()),
        }
    }
}

/// The call's private key from what the committee brought; a clear
/// refusal when it is not the call's, or when shares are too few.
fn opening_identity(
    tender: &TenderRow,
    secret: &OpeningSecret,
) -> ServiceResult<age::x25519::Identity> {
    let text = match secret {
        OpeningSecret::Identity(key) => key.trim().to_owned(),
        OpeningSecret::Shares(texts) => {
            let Some(threshold) = tender.shares_threshold else {
                return Err(DomainError::invalid(
                    "shares",
                    "this call's key is held whole, not in shares: bring the key",
                )
                .into());
            };
            let mut shares = Vec::new();
            for t in texts {
                let (_, bytes) = nuage_domain::tender::parse_share(t)?;
                let share = blahaj::Share::try_from(bytes.as_slice()).map_err(|e| {
                    DomainError::invalid("shares", format!("a share is damaged: {e}"))
                })?;
                shares.push(share);
            }
            let distinct = texts
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            if (distinct as i64) < threshold {
                return Err(DomainError::invalid(
                    "shares",
                    format!("too few shares: {threshold} are needed, {distinct} given"),
                )
                .into());
            }
            let bytes = blahaj::Sharks(threshold as u8)
                .recover(&shares)
                .map_err(|e| {
                    DomainError::invalid("shares", format!("the shares do not combine: {e}"))
                })?;
            String::from_utf8(bytes).map_err(|_| {
                DomainError::invalid("shares", "these shares do not make this call's key")
            })?
        }
    };
    let field = match secret {
        OpeningSecret::Identity(_) => "identity",
        OpeningSecret::Shares(_) => "shares",
    };
    let identity: age::x25519::Identity = text.parse().map_err(|_| {
        DomainError::invalid(
            field,
            match secret {
                OpeningSecret::Identity(_) => "an age X25519 private key (AGE-SECRET-KEY-1…)",
                OpeningSecret::Shares(_) => "these shares do not make this call's key",
            },
        )
    })?;
    if tender.recipient.as_deref() != Some(identity.to_public().to_string().as_str()) {
        return Err(DomainError::invalid(
            field,
            "this is not the key of this call (its public half differs)",
        )
        .into());
    }
    Ok(identity)
}

/// An envelope as its bidder sees it: the receipt, and whether it counts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnvelopeView {
    pub receipt: SignedReceipt,
    /// `live`, `replaced` or `withdrawn`.
    pub status: String,
}

/// What opening found.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OpeningReport {
    pub envelopes: usize,
    pub opened: usize,
    /// Envelopes that could not be read, and why (sealed to another key, not
    /// the published shape…).
    pub unreadable: Vec<Unreadable>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Unreadable {
    pub bid_id: String,
    pub bidder_id: String,
    pub reason: String,
}

/// One bid for one lot, after opening.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LotCandidate {
    pub bid_id: String,
    pub bidder_id: String,
    pub bidder_name: String,
    pub offer_id: String,
    pub monthly_price: String,
    pub eligible: bool,
    pub eligibility: Vec<RuleOutcome>,
    pub excluded_reason: Option<String>,
    #[schema(value_type = BTreeMap<String, String>)]
    pub marks: BTreeMap<String, Decimal>,
    pub answers: BTreeMap<String, String>,
}

/// A lot's evaluation: every bid with its eligibility, and the ranking of
/// the eligible ones once every mark is given.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LotEvaluation {
    pub lot: i64,
    pub candidates: Vec<LotCandidate>,
    /// Why the ranking is not final yet (marks missing); none when it is.
    pub incomplete: Option<String>,
    pub ranking: Vec<Scored>,
}

/// What a bidder learns of a lot it bid for, once the lot is awarded.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LotResult {
    pub lot: i64,
    pub won: bool,
    /// Its bid's total score and rank; none when it was not eligible or
    /// was excluded.
    pub your_score: Option<String>,
    pub your_rank: Option<u32>,
    pub winner_score: String,
    pub standstill_until_ms: i64,
    pub signed: bool,
}

/// The buyer's marks for one lot of one bid, and an exclusion.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Marking {
    #[schema(value_type = BTreeMap<String, String>)]
    #[serde(default)]
    pub marks: BTreeMap<String, Decimal>,
    /// Excludes the bid; a written reason is required.
    #[serde(default)]
    pub exclude: Option<String>,
}

impl Procurement {
    fn tender_view(
        &self,
        row: TenderRow,
        buyer_name: String,
        awards: Vec<AwardRow>,
    ) -> ServiceResult<TenderView> {
        let spec: TenderSpec = parse_doc(&row.spec)?;
        let warnings = match row.published_at {
            Some(at) => spec.warnings(at),
            None => spec.warnings(self.now_ms()),
        };
        Ok(TenderView {
            id: row.id,
            buyer_id: row.buyer_org_id,
            buyer_name,
            state: row.state,
            closed: self.now_ms() >= row.deadline_at,
            version: row.version,
            spec,
            recipient: row.recipient,
            key_mode: row.key_mode,
            shares: match (row.shares_threshold, row.shares_total) {
                (Some(threshold), Some(total)) => Some(SharesPolicy {
                    threshold: threshold as u8,
                    total: total as u8,
                }),
                _ => None,
            },
            published_at_ms: row.published_at,
            opened_at_ms: row.opened_at,
            cancelled_at_ms: row.cancelled_at,
            cancel_reason: row.cancel_reason,
            standstill_days: row.standstill_days,
            warnings,
            awards: awards.into_iter().map(AwardView::from).collect(),
        })
    }

    async fn load_view(
        &self,
        conn: &mut AnyConnection,
        row: TenderRow,
    ) -> ServiceResult<TenderView> {
        let name = nuage_db::repo::identity::get_org(conn, &row.buyer_org_id)
            .await?
            .map(|o| o.name)
            .unwrap_or_default();
        let awards = repo::awards(conn, &row.id).await?;
        self.tender_view(row, name, awards)
    }

    /// A published call (in any state but draft), for everyone.
    pub(super) async fn published_tender(
        &self,
        conn: &mut AnyConnection,
        id: &str,
    ) -> ServiceResult<TenderRow> {
        repo::get_tender(conn, id)
            .await?
            .filter(|t| t.state != "draft")
            .ok_or(ServiceError::NotFound("call for tender"))
    }

    /// Refuses what changes a lot once it is awarded.
    async fn refuse_awarded(
        &self,
        conn: &mut AnyConnection,
        id: &str,
        lot: i64,
    ) -> ServiceResult<()> {
        if repo::awards(conn, id).await?.iter().any(|a| a.lot == lot) {
            return Err(ServiceError::Conflict("this lot is already awarded".into()));
        }
        Ok(())
    }

    /// A call, with the caller allowed to run it (for the buyer's actions).
    pub(super) async fn own_tender(
        &self,
        conn: &mut AnyConnection,
        who: &Principal,
        id: &str,
    ) -> ServiceResult<TenderRow> {
        let row = repo::get_tender(conn, id)
            .await?
            .ok_or(ServiceError::NotFound("call for tender"))?;
        self.platform()
            .authorize_org(
                conn,
                who,
                OrgId::parse(&row.buyer_org_id)?,
                Permission::RunCalls,
            )
            .await
            .map_err(|e| match e {
                ServiceError::Forbidden(m) => ServiceError::Forbidden(m),
                _ => ServiceError::NotFound("call for tender"),
            })?;
        Ok(row)
    }

    /// Drafts a call for tender for a public body.
    pub async fn create_tender(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        org: OrgId,
        spec: TenderSpec,
    ) -> ServiceResult<TenderView> {
        let now = self.now_ms();
        let spec = spec.validated(now)?;
        let mut tx = self.platform().db().begin_write().await?;
        let buyer = self
            .platform()
            .authorize_org(&mut tx, who, org, Permission::RunCalls)
            .await?;
        if OrgKind::parse(&buyer.kind)? != OrgKind::Public {
            return Err(ServiceError::Forbidden(
                "only a public body publishes calls for tender".into(),
            ));
        }
        if buyer.siret.is_none() {
            return Err(ServiceError::Conflict(
                "set the organisation's SIRET first: the contracts' open data (DECP) names the \
                 buyer by it"
                    .into(),
            ));
        }
        let row = TenderRow {
            id: uuid::Uuid::now_v7().to_string(),
            buyer_org_id: org.to_string(),
            state: "draft".into(),
            spec: to_json(&spec)?,
            version: 0,
            deadline_at: spec.deadline_ms,
            recipient: None,
            key_mode: None,
            shares_threshold: None,
            shares_total: None,
            standstill_days: i64::from(self.inner.standstill_days),
            created_by: who.actor(),
            created_at: now,
            published_at: None,
            opened_at: None,
            opened_by: None,
            cancelled_at: None,
            cancel_reason: None,
        };
        repo::insert_tender(&mut tx, &row).await?;
        let view = self.tender_view(row, buyer.name, Vec::new())?;
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("tender.create", format!("tender:{}", view.id)).org(org),
            )
            .await?;
        Ok(view)
    }

    /// Replaces a draft.
    pub async fn update_tender(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        id: &str,
        spec: TenderSpec,
    ) -> ServiceResult<TenderView> {
        let spec = spec.validated(self.now_ms())?;
        let mut tx = self.platform().db().begin_write().await?;
        let row = self.own_tender(&mut tx, who, id).await?;
        if !repo::update_draft(&mut tx, id, &to_json(&spec)?, spec.deadline_ms).await? {
            return Err(ServiceError::Conflict(
                "a published call changes only by amendment".into(),
            ));
        }
        let row = repo::get_tender(&mut tx, id).await?.unwrap_or(row);
        let view = self.load_view(&mut tx, row).await?;
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("tender.update", format!("tender:{id}")).org(&view.buyer_id),
            )
            .await?;
        Ok(view)
    }

    /// Publishes a draft with its opening key's public half, and tells the
    /// providers whose published offers meet a lot's requirements.
    pub async fn publish_tender(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        id: &str,
        recipient: &str,
        shares: Option<SharesPolicy>,
    ) -> ServiceResult<TenderView> {
        let shares = shares.map(SharesPolicy::validate).transpose()?;
        let recipient = recipient.trim();
        if recipient.parse::<age::x25519::Recipient>().is_err() {
            return Err(DomainError::invalid(
                "recipient",
                "an age X25519 public key (age1…), as `nuage tender keygen` prints it",
            )
            .into());
        }
        let now = self.now_ms();
        let mut tx = self.platform().db().begin_write().await?;
        let mut row = self.own_tender(&mut tx, who, id).await?;
        if row.state != "draft" {
            return Err(ServiceError::Conflict(
                "this call is already published".into(),
            ));
        }
        if row.deadline_at <= now {
            return Err(DomainError::invalid(
                "deadline_ms",
                "the deadline for bids is in the past: change the draft first",
            )
            .into());
        }
        row.recipient = Some(recipient.to_owned());
        row.key_mode = Some(if shares.is_some() { "shares" } else { "single" }.into());
        row.shares_threshold = shares.map(|s| i64::from(s.threshold));
        row.shares_total = shares.map(|s| i64::from(s.total));
        row.published_at = Some(now);
        if !repo::publish(&mut tx, &row).await? {
            return Err(ServiceError::Conflict(
                "this call is already published".into(),
            ));
        }
        repo::insert_version(
            &mut tx,
            &repo::VersionRow {
                tender_id: id.to_owned(),
                version: 1,
                spec: row.spec.clone(),
                summary: "publication".into(),
                changes: "[]".into(),
                at: now,
            },
        )
        .await?;
        row.state = "published".into();
        row.version = 1;
        let spec: TenderSpec = parse_doc(&row.spec)?;
        let matched = self.matching_providers(&mut tx, &spec).await?;
        for provider in &matched {
            self.catalogue()
                .enqueue_event(
                    &mut tx,
                    provider,
                    "tender.published",
                    "tender",
                    serde_json::json!({
                        "id": id, "title": spec.title, "deadline_ms": spec.deadline_ms,
                        "cpv": spec.cpv, "buyer_id": row.buyer_org_id,
                    }),
                )
                .await?;
        }
        let view = self.load_view(&mut tx, row).await?;
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("tender.publish", format!("tender:{id}"))
                    .org(&view.buyer_id)
                    .details(serde_json::json!({
                        "recipient": recipient, "deadline_ms": view.spec.deadline_ms,
                        "providers_told": matched.len(),
                        "warnings": view.warnings.iter().map(|w| w.code.as_str()).collect::<Vec<_>>(),
                    })),
            )
            .await?;
        if !matched.is_empty() {
            self.catalogue().wake_deliveries();
        }
        Ok(view)
    }

    /// The providers with a published offer that meets every requirement of
    /// some lot (the price is the bid's, so it is not checked here).
    async fn matching_providers(
        &self,
        conn: &mut AnyConnection,
        spec: &TenderSpec,
    ) -> ServiceResult<Vec<String>> {
        let jurisdictions = self.jurisdictions(conn).await?;
        let mut found = std::collections::BTreeSet::new();
        for offer in catalogue_repo::published_sheets(conn, catalogue_repo::Sheet::Offer).await? {
            if let Some(facts) = offer_facts(&offer, &jurisdictions)?
                && meets_some_lot(spec, &offer.id, &facts)
            {
                found.insert(facts.provider_id.clone());
            }
        }
        Ok(found.into_iter().collect())
    }

    /// The calls open for bids whose lots one of `org`'s published offers
    /// meets (the price apart, as it is the bid's): what a provider is told
    /// of in the console.
    pub async fn matching_tenders(
        &self,
        who: &Principal,
        org: OrgId,
    ) -> ServiceResult<Vec<TenderView>> {
        let now = self.now_ms();
        let mut conn = self.platform().db().acquire().await?;
        self.platform()
            .authorize_org(&mut conn, who, org, Permission::Use)
            .await?;
        let jurisdictions = self.jurisdictions(&mut conn).await?;
        let mut offers = Vec::new();
        for sheet in
            catalogue_repo::sheets_of(&mut conn, catalogue_repo::Sheet::Offer, &org.to_string())
                .await?
        {
            if let Some(facts) = offer_facts(&sheet, &jurisdictions)?.filter(|f| f.published) {
                offers.push((sheet.id, facts));
            }
        }
        let mut out = Vec::new();
        for row in repo::list_tenders(&mut conn, None, "", i64::MAX).await? {
            if row.state != "published"
                || row.deadline_at <= now
                || row.buyer_org_id == org.to_string()
            {
                continue;
            }
            let spec: TenderSpec = parse_doc(&row.spec)?;
            if offers
                .iter()
                .any(|(id, facts)| meets_some_lot(&spec, id, facts))
            {
                out.push(self.load_view(&mut conn, row).await?);
            }
        }
        Ok(out)
    }

    async fn jurisdictions(
        &self,
        conn: &mut AnyConnection,
    ) -> ServiceResult<BTreeMap<String, String>> {
        Ok(catalogue_repo::list_regions(conn)
            .await?
            .into_iter()
            .map(|r| (r.name, r.jurisdiction))
            .collect())
    }

    /// A call: published ones for everyone; drafts for their buyer only.
    pub async fn tender(&self, who: Option<&Principal>, id: &str) -> ServiceResult<TenderView> {
        let mut conn = self.platform().db().acquire().await?;
        let row = repo::get_tender(&mut conn, id)
            .await?
            .ok_or(ServiceError::NotFound("call for tender"))?;
        if row.state == "draft" {
            let Some(who) = who else {
                return Err(ServiceError::NotFound("call for tender"));
            };
            self.own_tender(&mut conn, who, id).await?;
        }
        self.load_view(&mut conn, row).await
    }

    /// Published calls, for everyone; with `buyer`, that buyer's own, drafts
    /// included (its members only).
    pub async fn tenders(
        &self,
        who: Option<&Principal>,
        buyer: Option<OrgId>,
        page: &PageRequest,
    ) -> ServiceResult<Page<TenderView>> {
        let (limit, after) = (page.limit()?, page.after()?);
        let mut conn = self.platform().db().acquire().await?;
        if let Some(org) = buyer {
            let who = who.ok_or_else(|| ServiceError::Unauthenticated("sign in first".into()))?;
            self.platform()
                .authorize_org(&mut conn, who, org, Permission::Use)
                .await?;
        }
        let buyer = buyer.map(|b| b.to_string());
        let rows = repo::list_tenders(&mut conn, buyer.as_deref(), &after, limit).await?;
        let more = rows.len() as i64 > limit;
        let mut items = Vec::new();
        for row in rows.into_iter().take(limit as usize) {
            items.push(self.load_view(&mut conn, row).await?);
        }
        let next_cursor = more
            .then(|| items.last().map(|t: &TenderView| t.id.clone()))
            .flatten();
        Ok(Page { items, next_cursor })
    }

    /// Receives a sealed envelope from `bidder` and returns its signed
    /// receipt. The envelope replaces the bidder's earlier one.
    pub async fn submit_bid(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        id: &str,
        bidder: OrgId,
        envelope: &[u8],
    ) -> ServiceResult<SignedReceipt> {
        // The upload is over: this is the time that counts.
        let received = self.now_ms();
        check_envelope(envelope)?;
        let mut tx = self.platform().db().begin_write().await?;
        self.platform()
            .authorize_org(&mut tx, who, bidder, Permission::Manage)
            .await?;
        let tender = self.published_tender(&mut tx, id).await?;
        if tender.buyer_org_id == bidder.to_string() {
            return Err(ServiceError::Conflict(
                "a buyer does not bid on its own call".into(),
            ));
        }
        if tender.state != "published" || received >= tender.deadline_at {
            return Err(ServiceError::Conflict(format!(
                "bids closed at {} (ms since the epoch); this one ended its upload at {received}",
                tender.deadline_at
            )));
        }
        let recent =
            repo::count_bids_since(&mut tx, id, &bidder.to_string(), received - 3_600_000).await?;
        if recent >= MAX_ENVELOPES_PER_HOUR {
            return Err(ServiceError::RateLimited);
        }
        let receipt = Receipt {
            tender_id: id.to_owned(),
            bid_id: uuid::Uuid::now_v7().to_string(),
            bidder_org_id: bidder.to_string(),
            sha256: hex::encode(Sha256::digest(envelope)),
            size: envelope.len() as u64,
            received_at_ms: received,
        };
        let signed = self.sign_receipt(receipt).await?;
        repo::insert_bid(
            &mut tx,
            &BidRow {
                id: signed.receipt.bid_id.clone(),
                tender_id: id.to_owned(),
                bidder_org_id: bidder.to_string(),
                ciphertext: base64::engine::general_purpose::STANDARD.encode(envelope),
                sha256: signed.receipt.sha256.clone(),
                size: envelope.len() as i64,
                submitted_at: received,
                submitted_by: who.actor(),
                receipt: to_json(&signed)?,
                replaced_by: None,
                withdrawn_at: None,
                opened: None,
                open_error: None,
            },
        )
        .await?;
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("tender.bid", format!("tender:{id}"))
                    .org(bidder)
                    .details(serde_json::json!({
                        "bid": signed.receipt.bid_id, "sha256": signed.receipt.sha256,
                        "size": signed.receipt.size,
                    })),
            )
            .await?;
        Ok(signed)
    }

    async fn sign_receipt(&self, receipt: Receipt) -> ServiceResult<SignedReceipt> {
        let signed = self.platform().sign(receipt.message().as_bytes()).await?;
        Ok(SignedReceipt {
            receipt,
            signature: base64::engine::general_purpose::STANDARD.encode(signed.signature),
            public_key: hex::encode(signed.public_key),
            key_epoch: signed.epoch,
        })
    }

    /// Withdraws the bidder's envelope, before the deadline.
    pub async fn withdraw_bid(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        id: &str,
        bidder: OrgId,
    ) -> ServiceResult<()> {
        let now = self.now_ms();
        let mut tx = self.platform().db().begin_write().await?;
        self.platform()
            .authorize_org(&mut tx, who, bidder, Permission::Manage)
            .await?;
        let tender = self.published_tender(&mut tx, id).await?;
        if tender.state != "published" || now >= tender.deadline_at {
            return Err(ServiceError::Conflict(
                "the deadline has passed: the bid stands".into(),
            ));
        }
        if !repo::withdraw_bid(&mut tx, id, &bidder.to_string(), now).await? {
            return Err(ServiceError::NotFound("bid"));
        }
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("tender.bid_withdraw", format!("tender:{id}")).org(bidder),
            )
            .await
    }

    /// A bidder's envelopes on a call, latest first, with their receipts.
    pub async fn envelopes(
        &self,
        who: &Principal,
        id: &str,
        bidder: OrgId,
    ) -> ServiceResult<Vec<EnvelopeView>> {
        let mut conn = self.platform().db().acquire().await?;
        self.platform()
            .authorize_org(&mut conn, who, bidder, Permission::Manage)
            .await?;
        repo::bids_of(&mut conn, id, &bidder.to_string())
            .await?
            .into_iter()
            .map(|b| {
                Ok(EnvelopeView {
                    receipt: parse_doc(&b.receipt)?,
                    status: b.status().into(),
                })
            })
            .collect()
    }

    /// The results of the awarded lots that `bidder`'s bid answered: its
    /// score and rank, and the winner's score (as the `tender.result`
    /// webhook tells them).
    pub async fn bid_results(
        &self,
        who: &Principal,
        id: &str,
        bidder: OrgId,
    ) -> ServiceResult<Vec<LotResult>> {
        let mut conn = self.platform().db().acquire().await?;
        self.platform()
            .authorize_org(&mut conn, who, bidder, Permission::Use)
            .await?;
        self.published_tender(&mut conn, id).await?;
        let live = repo::bids_of(&mut conn, id, &bidder.to_string())
            .await?
            .into_iter()
            .find(|b| b.status() == "live");
        let Some(bid) = live else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for award in repo::awards(&mut conn, id).await? {
            let answered = repo::bid_lots(&mut conn, id, award.lot)
                .await?
                .iter()
                .any(|l| l.bid_id == bid.id);
            if !answered {
                continue;
            }
            let ranking: Vec<Scored> = parse_doc(&award.ranking)?;
            let own = ranking.iter().find(|s| s.bid_id == bid.id);
            out.push(LotResult {
                lot: award.lot,
                won: award.bid_id == bid.id,
                your_score: own.map(|s| format!("{:.2}", s.total)),
                your_rank: own.map(|s| s.rank),
                winner_score: ranking
                    .first()
                    .map(|s| format!("{:.2}", s.total))
                    .unwrap_or_default(),
                standstill_until_ms: award.standstill_until,
                signed: award.signed_at.is_some(),
            });
        }
        Ok(out)
    }

    /// Opens the bids with the call's private key, or enough of its shares,
    /// after the deadline.
    pub async fn open_tender(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        id: &str,
        secret: &OpeningSecret,
    ) -> ServiceResult<OpeningReport> {
        let now = self.now_ms();
        let mut tx = self.platform().db().begin_write().await?;
        let tender = self.own_tender(&mut tx, who, id).await?;
        match tender.state.as_str() {
            "published" => {}
            "draft" => return Err(ServiceError::Conflict("this call is not published".into())),
            _ => {
                return Err(ServiceError::Conflict(format!(
                    "this call is {}",
                    tender.state
                )));
            }
        }
        if now < tender.deadline_at {
            return Err(ServiceError::Conflict(format!(
                "bids open only after the deadline, in {} s",
                (tender.deadline_at - now + 999) / 1000
            )));
        }
        let identity = opening_identity(&tender, secret)?;
        let spec: TenderSpec = parse_doc(&tender.spec)?;
        let jurisdictions = self.jurisdictions(&mut tx).await?;
        let envelopes = repo::live_bids(&mut tx, id).await?;
        let mut report = OpeningReport {
            envelopes: envelopes.len(),
            opened: 0,
            unreadable: Vec::new(),
        };
        // Decrypting is the work: spread it over the machine's cores.
        let read = read_all(&envelopes, &identity, id, &spec).await?;
        let offer_ids: Vec<String> = read
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .flat_map(|b| b.lots.iter().map(|l| l.offer_id.clone()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut offers: BTreeMap<String, OfferFacts> = BTreeMap::new();
        for sheet in
            catalogue_repo::get_sheets(&mut tx, catalogue_repo::Sheet::Offer, &offer_ids).await?
        {
            if let Some(facts) = offer_facts(&sheet, &jurisdictions)? {
                offers.insert(sheet.id.clone(), facts);
            }
        }
        let mut opened = Vec::new();
        let mut lots = Vec::new();
        for (envelope, result) in envelopes.iter().zip(read) {
            match result {
                Ok(bid) => {
                    for lot_bid in &bid.lots {
                        let lot = &spec.lots[lot_bid.lot as usize - 1];
                        let facts = offers.get(&lot_bid.offer_id);
                        let outcomes = eligibility(lot, lot_bid, &envelope.bidder_org_id, facts);
                        lots.push(BidLotRow {
                            bid_id: envelope.id.clone(),
                            lot: i64::from(lot_bid.lot),
                            tender_id: id.to_owned(),
                            offer_id: lot_bid.offer_id.clone(),
                            price: lot_bid.prices.monthly_total(&lot.usage_profile).to_string(),
                            eligible: i64::from(outcomes.iter().all(|o| o.passed)),
                            eligibility: to_json(&outcomes)?,
                            excluded_reason: None,
                            marks: "{}".into(),
                        });
                    }
                    let sealed = self.platform().key().seal(
                        &serde_json::to_vec(&bid)
                            .map_err(|e| ServiceError::Internal(e.to_string()))?,
                    );
                    opened.push((envelope.id.clone(), sealed));
                    report.opened += 1;
                }
                Err(reason) => {
                    repo::set_bid_opened(&mut tx, &envelope.id, None, Some(&reason)).await?;
                    report.unreadable.push(Unreadable {
                        bid_id: envelope.id.clone(),
                        bidder_id: envelope.bidder_org_id.clone(),
                        reason,
                    });
                }
            }
        }
        repo::set_bids_opened(&mut tx, &opened).await?;
        repo::insert_bid_lots(&mut tx, &lots).await?;
        if !repo::set_opened(&mut tx, id, now, &who.actor()).await? {
            return Err(ServiceError::Conflict(
                "this call was opened meanwhile".into(),
            ));
        }
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("tender.open", format!("tender:{id}"))
                    .org(&tender.buyer_org_id)
                    .details(serde_json::json!({
                        "envelopes": report.envelopes, "opened": report.opened,
                        "unreadable": report.unreadable.len(),
                    })),
            )
            .await?;
        Ok(report)
    }

    /// A lot's bids after opening, with eligibility, marks and the ranking.
    pub async fn evaluation(
        &self,
        who: &Principal,
        id: &str,
        lot: i64,
    ) -> ServiceResult<LotEvaluation> {
        let mut conn = self.platform().db().acquire().await?;
        let tender = self.own_tender(&mut conn, who, id).await?;
        self.evaluate_lot(&mut conn, &tender, lot).await
    }

    async fn evaluate_lot(
        &self,
        conn: &mut AnyConnection,
        tender: &TenderRow,
        lot: i64,
    ) -> ServiceResult<LotEvaluation> {
        if tender.opened_at.is_none() {
            return Err(ServiceError::Conflict("the bids are not opened yet".into()));
        }
        let spec: TenderSpec = parse_doc(&tender.spec)?;
        if lot < 1 || lot as usize > spec.lots.len() {
            return Err(ServiceError::NotFound("lot"));
        }
        let rows = repo::lot_candidates(conn, &tender.id, lot).await?;
        let mut candidates = Vec::with_capacity(rows.len());
        let mut ranked = Vec::with_capacity(rows.len());
        for c in rows {
            let row = c.lot;
            let bid: Bid = match &c.opened {
                Some(sealed) => serde_json::from_slice(&self.platform().key().open(sealed)?)
                    .map_err(|e| ServiceError::Internal(e.to_string()))?,
                None => continue,
            };
            let answers = bid
                .lots
                .into_iter()
                .find(|l| i64::from(l.lot) == lot)
                .map(|l| l.answers)
                .unwrap_or_default();
            let marks: BTreeMap<String, Decimal> = parse_doc(&row.marks)?;
            let price: Decimal = row
                .price
                .parse()
                .map_err(|_| ServiceError::Internal("a stored price does not parse".into()))?;
            let eligible = row.eligible == 1;
            if eligible && row.excluded_reason.is_none() {
                ranked.push(Candidate {
                    bid_id: row.bid_id.clone(),
                    price,
                    submitted_at: c.submitted_at,
                    marks: marks.clone(),
                });
            }
            candidates.push(LotCandidate {
                bid_id: row.bid_id,
                bidder_id: c.bidder_org_id,
                bidder_name: c.bidder_name,
                offer_id: row.offer_id,
                monthly_price: format!("{price:.2}"),
                eligible,
                eligibility: parse_doc(&row.eligibility)?,
                excluded_reason: row.excluded_reason,
                marks,
                answers,
            });
        }
        let incomplete = marks_complete(&spec.criteria, &ranked).err();
        Ok(LotEvaluation {
            lot,
            candidates,
            incomplete,
            ranking: rank(&spec.criteria, &ranked),
        })
    }

    /// Records the buyer's marks on one lot of one bid, or its exclusion
    /// with a written reason.
    pub async fn mark_bid(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        id: &str,
        lot: i64,
        bid_id: &str,
        marking: Marking,
    ) -> ServiceResult<LotEvaluation> {
        let mut tx = self.platform().db().begin_write().await?;
        let tender = self.own_tender(&mut tx, who, id).await?;
        require_opened(&tender, "bids are marked")?;
        self.refuse_awarded(&mut tx, id, lot).await?;
        let spec: TenderSpec = parse_doc(&tender.spec)?;
        for (name, mark) in &marking.marks {
            let Some(c) = spec.criteria.iter().find(|c| {
                c.kind == nuage_domain::tender::CriterionKind::Technical && &c.name == name
            }) else {
                return Err(DomainError::invalid(
                    "marks",
                    format!("{name:?} is not a technical criterion of the call"),
                )
                .into());
            };
            if mark.is_sign_negative() || *mark > Decimal::from(c.scale()) {
                return Err(DomainError::invalid(
                    "marks",
                    format!("a mark for {name:?} is between 0 and {}", c.scale()),
                )
                .into());
            }
        }
        let exclude = match marking.exclude.as_deref().map(str::trim) {
            Some("") => {
                return Err(
                    DomainError::invalid("exclude", "an exclusion needs a written reason").into(),
                );
            }
            Some(reason) => {
                nuage_domain::catalogue::short_text(reason, "exclude", 2000, true)?;
                Some(reason.to_owned())
            }
            None => None,
        };
        let current = repo::bid_lots(&mut tx, id, lot)
            .await?
            .into_iter()
            .find(|r| r.bid_id == bid_id)
            .ok_or(ServiceError::NotFound("bid"))?;
        let mut marks: BTreeMap<String, Decimal> = parse_doc(&current.marks)?;
        marks.extend(marking.marks);
        let excluded = exclude.or(current.excluded_reason);
        repo::update_bid_lot(&mut tx, bid_id, lot, &to_json(&marks)?, excluded.as_deref()).await?;
        let evaluation = self.evaluate_lot(&mut tx, &tender, lot).await?;
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("tender.mark", format!("tender:{id}"))
                    .org(&tender.buyer_org_id)
                    .details(serde_json::json!({
                        "lot": lot, "bid": bid_id, "marks": marks, "excluded": excluded,
                    })),
            )
            .await?;
        Ok(evaluation)
    }

    /// Awards a lot to the best ranked bid, once every mark is given; the
    /// bidders are told their score and the winner's.
    pub async fn award_lot(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        id: &str,
        lot: i64,
    ) -> ServiceResult<AwardView> {
        let now = self.now_ms();
        let mut tx = self.platform().db().begin_write().await?;
        let tender = self.own_tender(&mut tx, who, id).await?;
        require_opened(&tender, "a lot is awarded")?;
        self.refuse_awarded(&mut tx, id, lot).await?;
        let evaluation = self.evaluate_lot(&mut tx, &tender, lot).await?;
        if let Some(why) = &evaluation.incomplete {
            return Err(ServiceError::Conflict(format!(
                "the evaluation is not finished: {why}"
            )));
        }
        let Some(best) = evaluation.ranking.first() else {
            return Err(ServiceError::Conflict(
                "no eligible bid for this lot: declare it without follow-up".into(),
            ));
        };
        let winner = evaluation
            .candidates
            .iter()
            .find(|c| c.bid_id == best.bid_id)
            .ok_or_else(|| ServiceError::Internal("the winner is not a candidate".into()))?;
        let spec: TenderSpec = parse_doc(&tender.spec)?;
        let award = AwardRow {
            tender_id: id.to_owned(),
            lot,
            bid_id: best.bid_id.clone(),
            supplier_org_id: winner.bidder_id.clone(),
            offer_id: winner.offer_id.clone(),
            price: format!("{:.2}", best.price),
            amount: format!("{:.2}", best.price * Decimal::from(spec.duration_months)),
            ranking: to_json(&evaluation.ranking)?,
            awarded_at: now,
            awarded_by: who.actor(),
            standstill_until: standstill_end(now, tender.standstill_days as u32),
            signed_at: None,
            signed_by: None,
            subscription_id: None,
        };
        repo::insert_award(&mut tx, &award).await?;
        for c in &evaluation.candidates {
            let own = evaluation.ranking.iter().find(|s| s.bid_id == c.bid_id);
            self.catalogue()
                .enqueue_event(
                    &mut tx,
                    &c.bidder_id,
                    "tender.result",
                    "result",
                    serde_json::json!({
                        "tender_id": id, "lot": lot, "won": c.bid_id == best.bid_id,
                        "your_score": own.map(|s| s.total), "your_rank": own.map(|s| s.rank),
                        "eligible": c.eligible, "excluded_reason": c.excluded_reason,
                        "winner_score": best.total, "winner_id": winner.bidder_id,
                        "standstill_until_ms": award.standstill_until,
                    }),
                )
                .await?;
        }
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("tender.award", format!("tender:{id}"))
                    .org(&tender.buyer_org_id)
                    .details(serde_json::json!({
                        "lot": lot, "bid": award.bid_id, "supplier": award.supplier_org_id,
                        "price": award.price,
                    })),
            )
            .await?;
        self.catalogue().wake_deliveries();
        Ok(AwardView::from(award))
    }

    /// Signs an awarded lot's contract once the standstill period is over,
    /// and orders the winning offer at the bid's prices.
    pub async fn sign_contract(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        id: &str,
        lot: i64,
    ) -> ServiceResult<AwardView> {
        let now = self.now_ms();
        let (tender, award, prices) = {
            let mut conn = self.platform().db().acquire().await?;
            let tender = self.own_tender(&mut conn, who, id).await?;
            let award = repo::awards(&mut conn, id)
                .await?
                .into_iter()
                .find(|a| a.lot == lot)
                .ok_or_else(|| ServiceError::Conflict("this lot is not awarded".into()))?;
            if award.signed_at.is_some() {
                return Err(ServiceError::Conflict(
                    "this contract is already signed".into(),
                ));
            }
            if tender.state == "cancelled" {
                return Err(ServiceError::Conflict(
                    "this call was declared without follow-up".into(),
                ));
            }
            if now < award.standstill_until {
                return Err(ServiceError::Conflict(format!(
                    "the standstill period runs until {} (ms since the epoch): no signature before",
                    award.standstill_until
                )));
            }
            let envelope = repo::live_bids(&mut conn, id)
                .await?
                .into_iter()
                .find(|b| b.id == award.bid_id)
                .ok_or_else(|| ServiceError::Internal("the awarded bid is gone".into()))?;
            let bid: Bid = serde_json::from_slice(
                &self
                    .platform()
                    .key()
                    .open(envelope.opened.as_deref().unwrap_or_default())?,
            )
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
            let prices = bid
                .lots
                .into_iter()
                .find(|l| i64::from(l.lot) == lot)
                .map(|l| l.prices)
                .ok_or_else(|| {
                    ServiceError::Internal("the awarded lot is not in its bid".into())
                })?;
            (tender, award, prices)
        };
        let buyer = OrgId::parse(&tender.buyer_org_id)?;
        let order = self
            .catalogue()
            .order_contract(who, meta, buyer, &award.offer_id, &prices)
            .await?;
        let mut tx = self.platform().db().begin_write().await?;
        if !repo::sign_award(
            &mut tx,
            id,
            lot,
            now,
            &who.actor(),
            Some(&order.subscription.id),
        )
        .await?
        {
            return Err(ServiceError::Conflict(
                "this contract is already signed".into(),
            ));
        }
        let award = repo::awards(&mut tx, id)
            .await?
            .into_iter()
            .find(|a| a.lot == lot)
            .ok_or(ServiceError::NotFound("award"))?;
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("tender.sign", format!("tender:{id}"))
                    .org(buyer)
                    .details(serde_json::json!({
                        "lot": lot, "supplier": award.supplier_org_id,
                        "subscription": order.subscription.id,
                    })),
            )
            .await?;
        Ok(AwardView::from(award))
    }

    /// Declares a call without follow-up, with its reason (before any
    /// contract is signed).
    pub async fn cancel_tender(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        id: &str,
        reason: &str,
    ) -> ServiceResult<TenderView> {
        let reason = reason.trim();
        nuage_domain::catalogue::short_text(reason, "reason", 2000, true)?;
        let now = self.now_ms();
        let mut tx = self.platform().db().begin_write().await?;
        let tender = self.own_tender(&mut tx, who, id).await?;
        if repo::awards(&mut tx, id)
            .await?
            .iter()
            .any(|a| a.signed_at.is_some())
        {
            return Err(ServiceError::Conflict(
                "a contract of this call is signed".into(),
            ));
        }
        if !repo::set_cancelled(&mut tx, id, now, reason).await? {
            return Err(ServiceError::Conflict(format!(
                "a {} call cannot be declared without follow-up",
                tender.state
            )));
        }
        let row = repo::get_tender(&mut tx, id).await?.unwrap_or(tender);
        let view = self.load_view(&mut tx, row).await?;
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("tender.cancel", format!("tender:{id}"))
                    .org(&view.buyer_id)
                    .details(serde_json::json!({ "reason": reason })),
            )
            .await?;
        Ok(view)
    }
}

/// Refuses what only an opened call allows (`what`: "bids are marked", …).
fn require_opened(tender: &TenderRow, what: &str) -> ServiceResult<()> {
    if tender.state != "opened" {
        return Err(ServiceError::Conflict(format!(
            "{what} once the bids are opened; this call is {}",
            tender.state
        )));
    }
    Ok(())
}

/// Whether an offer meets every requirement of some lot of a call, the
/// price ceiling apart (the price is the bid's).
fn meets_some_lot(spec: &TenderSpec, offer_id: &str, facts: &OfferFacts) -> bool {
    spec.lots.iter().any(|lot| {
        let mut probe = lot.clone();
        probe
            .requirements
            .retain(|r| !matches!(r, nuage_domain::tender::Requirement::MaxPrice { .. }));
        let bid = nuage_domain::tender::LotBid {
            lot: 1,
            offer_id: offer_id.to_owned(),
            prices: Default::default(),
            answers: BTreeMap::new(),
        };
        eligibility(&probe, &bid, &facts.provider_id, Some(facts))
            .iter()
            .all(|o| o.passed)
    })
}

/// An offer's self-description as eligibility reads it; none when the
/// sheet was never published.
fn offer_facts(
    sheet: &catalogue_repo::SheetRow,
    jurisdictions: &BTreeMap<String, String>,
) -> ServiceResult<Option<OfferFacts>> {
    let Some(published) = sheet.published.as_deref() else {
        return Ok(None);
    };
    let offer: OfferSheet = parse_doc(published)?;
    Ok(Some(OfferFacts {
        provider_id: sheet.owner_id.clone(),
        published: sheet.state == "published",
        category: offer.category,
        regions: offer
            .regions
            .iter()
            .map(|r| (r.clone(), jurisdictions.get(r).cloned().unwrap_or_default()))
            .collect(),
        certifications: offer.certifications,
        availability_percent: offer.sla.availability_percent,
        capacity_gb: offer.capacity_gb,
        export_formats: offer.reversibility.export_formats,
    }))
}

/// Refuses what is not an age file sealed to X25519 recipients, before it
/// is stored: a wrong format is told at once (a file sealed to another
/// X25519 key cannot be told apart, by design; opening reports it).
fn check_envelope(envelope: &[u8]) -> ServiceResult<()> {
    if envelope.is_empty() {
        return Err(DomainError::invalid("bid", "the envelope is empty").into());
    }
    if envelope.len() > MAX_BID_BYTES {
        return Err(DomainError::invalid(
            "bid",
            format!("an envelope is at most {MAX_BID_BYTES} bytes"),
        )
        .into());
    }
    let decryptor = age::Decryptor::new(envelope).map_err(|e| {
        DomainError::invalid(
            "bid",
            format!("not an age-encrypted file ({e}): seal the bid with `nuage tender bid submit`"),
        )
    })?;
    if decryptor.is_scrypt() {
        return Err(DomainError::invalid(
            "bid",
            "sealed with a passphrase: seal it to the call's public key",
        )
        .into());
    }
    Ok(())
}

/// Reads every envelope, on as many threads as the machine has cores, in
/// the envelopes' order.
async fn read_all(
    envelopes: &[BidRow],
    identity: &age::x25519::Identity,
    tender_id: &str,
    spec: &TenderSpec,
) -> ServiceResult<Vec<Result<Bid, String>>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = envelopes.len().div_ceil(threads).max(1);
    let mut tasks = Vec::new();
    for part in envelopes.chunks(chunk) {
        let part = part.to_vec();
        let (identity, tender_id, spec) = (identity.clone(), tender_id.to_owned(), spec.clone());
        tasks.push(tokio::task::spawn_blocking(move || {
            part.iter()
                .map(|e| read_envelope(e, &identity, &tender_id, &spec))
                .collect::<Vec<_>>()
        }));
    }
    let mut out = Vec::with_capacity(envelopes.len());
    for task in tasks {
        out.extend(
            task.await
                .map_err(|e| ServiceError::Internal(format!("reading envelopes: {e}")))?,
        );
    }
    Ok(out)
}

/// Decrypts and reads one envelope, or says why it cannot be.
fn read_envelope(
    envelope: &BidRow,
    identity: &age::x25519::Identity,
    tender_id: &str,
    spec: &TenderSpec,
) -> Result<Bid, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&envelope.ciphertext)
        .map_err(|_| "the stored envelope is damaged".to_owned())?;
    if hex::encode(Sha256::digest(&bytes)) != envelope.sha256 {
        return Err("the envelope does not match its receipt's SHA-256".into());
    }
    let plain = age::decrypt(identity, &bytes).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => {
            "sealed to another key than this call's: it cannot be read".to_owned()
        }
        other => format!("the envelope cannot be decrypted: {other}"),
    })?;
    Bid::parse(&plain, tender_id, spec)
}
