//! Orders and subscriptions. An order of a published offer becomes a
//! subscription with the offer as it was (its price holds). The house
//! provider's storage offers are provisioned in the order's transaction: a
//! bucket in the chosen region, the organisation's quota, an S3 key. Other
//! providers fulfil their orders (accept, reject with a reason, deliver), and
//! are told of new orders by a webhook signed with HMAC-SHA256.

use hmac::{Hmac, Mac};
use nuage_db::AnyConnection;
use nuage_db::repo::catalogue::{
    self as repo, DeliveryRow, Side, SubscriptionEventRow, SubscriptionRow, WebhookRow,
};
use nuage_db::repo::storage as storage_repo;
use nuage_domain::DomainError;
use nuage_domain::catalogue::{BYTES_PER_GB, Category, OfferSheet, SubscriptionState, check_url};
use nuage_domain::ids::OrgId;
use nuage_domain::org::Permission;
use nuage_domain::storage::KeyPurpose;
use nuage_domain::tender::BidPrices;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

use crate::{Catalogue, parse_doc, to_json};
use nuage_service::keys::secret;
use nuage_service::net::public_addresses;
use nuage_service::{AuditEvent, Principal, RequestMeta, ServiceError, ServiceResult};

/// What the house provisioned for a subscription (never a secret).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Resources {
    pub buckets: Vec<String>,
    pub region: String,
    /// The quota this subscription adds, in bytes; none for no limit.
    pub quota_bytes: Option<i64>,
    /// The S3 key issued with it.
    pub access_key_id: Option<String>,
}

/// A subscription, with its history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Subscription {
    pub id: String,
    pub offer_id: String,
    pub offer_name: String,
    pub provider_id: String,
    pub provider_name: String,
    pub buyer_id: String,
    pub buyer_name: String,
    pub region: String,
    pub state: SubscriptionState,
    /// The offer as ordered; its price applies.
    pub offer: OfferSheet,
    pub resources: Option<Resources>,
    /// The provider's last word: a reason for a rejection, delivery details.
    pub note: Option<String>,
    pub history: Vec<HistoryEntry>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub at_ms: i64,
    pub actor: String,
    pub event: String,
    pub state: SubscriptionState,
    pub note: Option<String>,
}

/// S3 credentials issued with a house order: shown once.
#[derive(Clone, Serialize, ToSchema)]
pub struct IssuedKey {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKey")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// The outcome of an order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderOutcome {
    pub subscription: Subscription,
    /// For instant (house) orders: the S3 key, shown this once.
    pub credentials: Option<IssuedKey>,
}

/// What a provider does with an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fulfilment {
    /// Acknowledged; delivery follows.
    Accept,
    /// Refused, with a reason: the subscription is cancelled.
    Reject,
    /// Delivered: the subscription is active.
    Deliver,
    /// Suspended (the provider or an operator).
    Suspend,
    /// Active again after a suspension.
    Resume,
}

/// A provider's webhook, as it is shown (the secret only when set).
#[derive(Clone, Serialize, ToSchema)]
pub struct Webhook {
    pub url: String,
    /// Shown once, when the webhook is set.
    pub secret: Option<String>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// A delivery to a provider's endpoint.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Delivery {
    pub id: String,
    pub event: String,
    pub attempts: i64,
    pub delivered_at_ms: Option<i64>,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
}

/// Resolves a webhook's host and refuses internal destinations.
async fn check_destination(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    let host = parsed.host_str().ok_or("the URL has no host")?;
    let port = parsed.port_or_known_default().unwrap_or(443);
    public_addresses(host.trim_start_matches('[').trim_end_matches(']'), port).await?;
    Ok(())
}

/// The webhook client's resolver: it connects only to the addresses it
/// checked, so a name that resolves elsewhere between the check before a
/// delivery and the connection (DNS rebinding) reaches no internal
/// address. Addresses written in the URL are checked before each delivery
/// and cannot change; redirects are not followed.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = public_addresses(&host, 0).await?;
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The client webhooks are sent with: no redirects, a timeout, and unless
/// private destinations are allowed (tests, closed networks), public
/// addresses only.
pub(super) fn webhook_client(allow_private: bool) -> reqwest::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none());
    if allow_private {
        builder.build()
    } else {
        builder
            .dns_resolver(std::sync::Arc::new(PublicOnly))
            .build()
    }
}

/// Attempts after which a delivery is given up.
const MAX_ATTEMPTS: i64 = 12;

/// The signature header's value: `t=<unix seconds>,v1=<hex HMAC-SHA256 of
/// "<t>.<body>">`.
pub fn webhook_signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any size");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// The quota an offer's capacity adds, in bytes; none for no limit.
fn quota_of(offer: &OfferSheet) -> Option<i64> {
    offer.capacity_gb.map(|gb| {
        i64::try_from(gb)
            .unwrap_or(i64::MAX)
            .saturating_mul(BYTES_PER_GB)
    })
}

fn event_row(
    sub: &SubscriptionRow,
    who: &Principal,
    event: &str,
    note: Option<&str>,
    at: i64,
) -> SubscriptionEventRow {
    SubscriptionEventRow {
        id: uuid::Uuid::now_v7().to_string(),
        subscription_id: sub.id.clone(),
        at,
        actor: who.actor(),
        event: event.into(),
        state: sub.state.clone(),
        note: note.map(str::to_owned),
    }
}

impl Catalogue {
    async fn subscription_view(
        &self,
        conn: &mut AnyConnection,
        row: SubscriptionRow,
    ) -> ServiceResult<Subscription> {
        let name =
            |o: Option<nuage_db::repo::identity::OrgRow>| o.map(|o| o.name).unwrap_or_default();
        let provider_name = name(nuage_db::repo::identity::get_org(conn, &row.provider_id).await?);
        let buyer_name = name(nuage_db::repo::identity::get_org(conn, &row.buyer_id).await?);
        let offer: OfferSheet = parse_doc(&row.offer_document)?;
        let history = repo::subscription_events(conn, &row.id)
            .await?
            .into_iter()
            .map(|e| {
                Ok(HistoryEntry {
                    at_ms: e.at,
                    actor: e.actor,
                    event: e.event,
                    state: SubscriptionState::parse(&e.state)?,
                    note: e.note,
                })
            })
            .collect::<ServiceResult<_>>()?;
        Ok(Subscription {
            state: SubscriptionState::parse(&row.state)?,
            resources: row.resources.as_deref().map(parse_doc).transpose()?,
            offer_name: offer.name.clone(),
            offer,
            history,
            provider_name,
            buyer_name,
            id: row.id,
            offer_id: row.offer_id,
            provider_id: row.provider_id,
            buyer_id: row.buyer_id,
            region: row.region,
            note: row.note,
            created_at_ms: row.created_at,
            updated_at_ms: row.updated_at,
        })
    }

    /// Orders a published offer for `buyer` (its owners, admins and buyers).
    pub async fn order(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        buyer: OrgId,
        offer_id: &str,
        region: Option<&str>,
    ) -> ServiceResult<OrderOutcome> {
        self.order_at(who, meta, buyer, offer_id, region, None)
            .await
    }

    /// Orders an offer awarded by a call for tender, at the prices of the
    /// winning bid (which its subscription keeps, and billing applies).
    pub async fn order_contract(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        buyer: OrgId,
        offer_id: &str,
        prices: &BidPrices,
    ) -> ServiceResult<OrderOutcome> {
        self.order_at(who, meta, buyer, offer_id, None, Some(prices))
            .await
    }

    async fn order_at(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        buyer: OrgId,
        offer_id: &str,
        region: Option<&str>,
        contract: Option<&BidPrices>,
    ) -> ServiceResult<OrderOutcome> {
        let mut tx = self.platform().db().begin_write().await?;
        self.platform()
            .authorize_org(&mut tx, who, buyer, Permission::Order)
            .await?;
        let offer_row = repo::get_sheet(&mut tx, repo::Sheet::Offer, offer_id)
            .await?
            .ok_or(ServiceError::NotFound("offer"))?;
        let Some(published) = offer_row.published.as_deref() else {
            return Err(ServiceError::Conflict(
                "this offer is not (or no longer) published: it cannot be ordered".into(),
            ));
        };
        let mut offer: OfferSheet = parse_doc(published)?;
        let document = match contract {
            None => published.to_owned(),
            Some(p) => {
                let price = &mut offer.price;
                price.monthly_fee = p.monthly_fee;
                price.per_gb_month = p.per_gb_month;
                price.per_1k_class_a = p.per_1k_class_a;
                price.per_1k_class_b = p.per_1k_class_b;
                price.per_gb_egress = p.per_gb_egress;
                price.included_gb = 0;
                price.tiers.clear();
                to_json(&offer)?
            }
        };
        let region = match region.map(str::trim).filter(|r| !r.is_empty()) {
            None => offer.regions[0].clone(),
            Some(r) if offer.regions.iter().any(|o| o == r) => r.to_owned(),
            Some(r) => {
                return Err(DomainError::invalid(
                    "region",
                    format!(
                        "the offer is not available in {r:?} (it is in {})",
                        offer.regions.join(", ")
                    ),
                )
                .into());
            }
        };
        if offer_row.owner_id == buyer.to_string() {
            return Err(ServiceError::Conflict(
                "a provider does not order its own offer".into(),
            ));
        }
        let now = self.now_ms();
        let house = offer_row.owner_id == self.house().to_string();
        let mut row = SubscriptionRow {
            id: uuid::Uuid::now_v7().to_string(),
            offer_id: offer_row.id.clone(),
            provider_id: offer_row.owner_id.clone(),
            buyer_id: buyer.to_string(),
            region: region.clone(),
            state: SubscriptionState::Pending.as_str().into(),
            offer_document: document,
            resources: None,
            note: None,
            ordered_by: who.actor(),
            created_at: now,
            updated_at: now,
        };
        repo::insert_subscription(&mut tx, &row).await?;
        repo::insert_subscription_event(
            &mut tx,
            &event_row(&row, who, "ordered", None, self.now_ms()),
        )
        .await?;
        let mut credentials = None;
        if house {
            let (resources, key) = self.provision(&mut tx, who, &row, &offer).await?;
            row.resources = Some(to_json(&resources)?);
            row.state = SubscriptionState::Active.as_str().into();
            repo::update_subscription(&mut tx, &row).await?;
            self.apply_quota(&mut tx, buyer).await?;
            repo::insert_subscription_event(
                &mut tx,
                &event_row(&row, who, "provisioned", None, self.now_ms()),
            )
            .await?;
            credentials = key;
        } else {
            self.enqueue_webhook(&mut tx, &row, "order.created").await?;
        }
        let view = self.subscription_view(&mut tx, row).await?;
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("order.create", format!("subscription:{}", view.id))
                    .org(buyer)
                    .details(serde_json::json!({
                        "offer": view.offer_id, "provider": view.provider_id,
                        "region": view.region, "state": view.state,
                        "resources": view.resources,
                    })),
            )
            .await?;
        if !house {
            self.inner.wake.notify_one();
        }
        Ok(OrderOutcome {
            subscription: view,
            credentials,
        })
    }

    /// Creates what a house order buys: a bucket in the region, an S3 key.
    async fn provision(
        &self,
        conn: &mut AnyConnection,
        who: &Principal,
        sub: &SubscriptionRow,
        offer: &OfferSheet,
    ) -> ServiceResult<(Resources, Option<IssuedKey>)> {
        let buyer = OrgId::parse(&sub.buyer_id)?;
        if !matches!(
            offer.category,
            Category::Storage | Category::Drive | Category::Hosting
        ) {
            return Ok((
                Resources {
                    region: sub.region.clone(),
                    ..Resources::default()
                },
                None,
            ));
        }
        // A name of its own, valid for S3: the subscription's id, shortened.
        let simple = sub.id.replace('-', "");
        let bucket = format!("sub-{}", &simple[simple.len() - 20..]);
        storage_repo::insert_bucket(
            conn,
            &storage_repo::BucketRow {
                name: bucket.clone(),
                org_id: sub.buyer_id.clone(),
                region: sub.region.clone(),
                created_at: self.now_ms(),
                versioning: None,
                tagging: None,
                cors: None,
                lifecycle: None,
                website: None,
                object_lock: None,
                policy: None,
                public_access_block: None,
                ownership: None,
                acl: None,
            },
        )
        .await
        .map_err(|e| match e {
            nuage_db::DbError::Conflict => {
                ServiceError::Conflict("the bucket name is taken".into())
            }
            other => other.into(),
        })?;
        let (key, secret_access_key) = self
            .platform()
            .insert_s3_key(conn, who, buyer, KeyPurpose::Access)
            .await?;
        Ok((
            Resources {
                buckets: vec![bucket],
                region: sub.region.clone(),
                quota_bytes: quota_of(offer),
                access_key_id: Some(key.access_key_id.clone()),
            },
            Some(IssuedKey {
                access_key_id: key.access_key_id,
                secret_access_key,
            }),
        ))
    }

    /// Sets the buyer's storage quota to what its active house
    /// subscriptions add up to (no limit if one of them has none).
    async fn apply_quota(&self, conn: &mut AnyConnection, buyer: OrgId) -> ServiceResult<()> {
        let mut total: Option<i64> = Some(0);
        let mut any = false;
        for s in repo::subscriptions_of(conn, Side::Buyer, &buyer.to_string()).await? {
            let Some(resources) = s.resources.as_deref() else {
                continue;
            };
            let r: Resources = parse_doc(resources)?;
            if r.buckets.is_empty() {
                continue;
            }
            any = true;
            if s.state == SubscriptionState::Active.as_str() {
                total = match (total, r.quota_bytes) {
                    (Some(t), Some(q)) => Some(t.saturating_add(q)),
                    _ => None,
                };
            }
        }
        if any {
            // The object count limit stays the operator's.
            let current = storage_repo::org_storage(conn, &buyer.to_string()).await?;
            storage_repo::set_quota(conn, &buyer.to_string(), total, current.max_objects).await?;
        }
        Ok(())
    }

    /// A subscription, for its buyer or its provider (or an operator).
    pub async fn subscription(&self, who: &Principal, id: &str) -> ServiceResult<Subscription> {
        let mut conn = self.platform().db().acquire().await?;
        let row = self.subscription_for(&mut conn, who, id, false).await?;
        self.subscription_view(&mut conn, row).await
    }

    async fn subscription_for(
        &self,
        conn: &mut AnyConnection,
        who: &Principal,
        id: &str,
        provider_only: bool,
    ) -> ServiceResult<SubscriptionRow> {
        let row = repo::get_subscription(conn, id)
            .await?
            .ok_or(ServiceError::NotFound("subscription"))?;
        if who.is_operator() {
            return Ok(row);
        }
        let provider = OrgId::parse(&row.provider_id)?;
        if self
            .platform()
            .authorize_org(conn, who, provider, Permission::Manage)
            .await
            .is_ok()
        {
            return Ok(row);
        }
        if !provider_only {
            let buyer = OrgId::parse(&row.buyer_id)?;
            if self
                .platform()
                .authorize_org(conn, who, buyer, Permission::Use)
                .await
                .is_ok()
            {
                return Ok(row);
            }
        }
        Err(ServiceError::NotFound("subscription"))
    }

    /// An organisation's subscriptions (as buyer) or sales (as provider).
    pub async fn subscriptions(
        &self,
        who: &Principal,
        org: OrgId,
        side: Side,
    ) -> ServiceResult<Vec<Subscription>> {
        let mut conn = self.platform().db().acquire().await?;
        self.platform()
            .authorize_org(&mut conn, who, org, Permission::Use)
            .await?;
        let rows = repo::subscriptions_of(&mut conn, side, &org.to_string()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.subscription_view(&mut conn, row).await?);
        }
        Ok(out)
    }

    /// The provider (or an operator) acts on a subscription.
    pub async fn fulfil(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        id: &str,
        action: Fulfilment,
        note: Option<String>,
    ) -> ServiceResult<Subscription> {
        let note = note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
        if let Some(n) = &note {
            nuage_domain::catalogue::short_text(n, "note", 2000, false)?;
        }
        let mut tx = self.platform().db().begin_write().await?;
        let mut row = self.subscription_for(&mut tx, who, id, true).await?;
        let from = SubscriptionState::parse(&row.state)?;
        let (to, event) = match action {
            Fulfilment::Accept => (SubscriptionState::Pending, "accepted"),
            Fulfilment::Reject => (SubscriptionState::Cancelled, "rejected"),
            Fulfilment::Deliver => (SubscriptionState::Active, "delivered"),
            Fulfilment::Suspend => (SubscriptionState::Suspended, "suspended"),
            Fulfilment::Resume => (SubscriptionState::Active, "resumed"),
        };
        let allowed = match action {
            Fulfilment::Accept | Fulfilment::Reject | Fulfilment::Deliver => {
                from == SubscriptionState::Pending
            }
            Fulfilment::Suspend => from == SubscriptionState::Active,
            Fulfilment::Resume => from == SubscriptionState::Suspended,
        };
        if !allowed {
            return Err(ServiceError::Conflict(format!(
                "a {from} subscription cannot be {event}"
            )));
        }
        if action == Fulfilment::Reject && note.is_none() {
            return Err(DomainError::invalid("note", "say why the order is rejected").into());
        }
        row.state = to.as_str().into();
        if note.is_some() {
            row.note = note.clone();
        }
        row.updated_at = self.now_ms();
        repo::update_subscription(&mut tx, &row).await?;
        repo::insert_subscription_event(
            &mut tx,
            &event_row(&row, who, event, note.as_deref(), self.now_ms()),
        )
        .await?;
        self.apply_quota(&mut tx, OrgId::parse(&row.buyer_id)?)
            .await?;
        let view = self.subscription_view(&mut tx, row).await?;
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("subscription.fulfil", format!("subscription:{id}"))
                    .org(&view.provider_id)
                    .details(
                        serde_json::json!({"event": event, "from": from, "to": to, "note": note}),
                    ),
            )
            .await?;
        Ok(view)
    }

    /// A subscription, for its buyer's owners, admins and buyers (and
    /// operators); anyone else is told it does not exist.
    async fn buyers_subscription(
        &self,
        conn: &mut AnyConnection,
        who: &Principal,
        id: &str,
    ) -> ServiceResult<(SubscriptionRow, OrgId)> {
        let row = repo::get_subscription(conn, id)
            .await?
            .ok_or(ServiceError::NotFound("subscription"))?;
        let buyer = OrgId::parse(&row.buyer_id)?;
        self.platform()
            .authorize_org(conn, who, buyer, Permission::Order)
            .await
            .map_err(|e| match e {
                ServiceError::NotFound(_) => ServiceError::NotFound("subscription"),
                other => other,
            })?;
        Ok((row, buyer))
    }

    /// The buyer cancels. House resources stop counting in the quota and the
    /// key issued with the order is revoked; stored data stays readable.
    pub async fn cancel(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        id: &str,
    ) -> ServiceResult<Subscription> {
        let mut tx = self.platform().db().begin_write().await?;
        let (mut row, buyer) = self.buyers_subscription(&mut tx, who, id).await?;
        let from = SubscriptionState::parse(&row.state)?;
        if !from.may_become(SubscriptionState::Cancelled) {
            return Err(ServiceError::Conflict(format!(
                "a {from} subscription cannot be cancelled"
            )));
        }
        row.state = SubscriptionState::Cancelled.as_str().into();
        row.updated_at = self.now_ms();
        repo::update_subscription(&mut tx, &row).await?;
        repo::insert_subscription_event(
            &mut tx,
            &event_row(&row, who, "cancelled", None, self.now_ms()),
        )
        .await?;
        if let Some(r) = row.resources.as_deref() {
            let r: crate::orders::Resources = parse_doc(r)?;
            if let Some(key) = &r.access_key_id {
                nuage_db::repo::keys::revoke_s3_key(&mut tx, key, self.now_ms()).await?;
            }
        }
        self.apply_quota(&mut tx, buyer).await?;
        if row.provider_id != self.house().to_string() {
            self.enqueue_webhook(&mut tx, &row, "order.cancelled")
                .await?;
        }
        let view = self.subscription_view(&mut tx, row).await?;
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("subscription.cancel", format!("subscription:{id}")).org(buyer),
            )
            .await?;
        self.inner.wake.notify_one();
        Ok(view)
    }

    /// The buyer moves a house subscription to another of the house's
    /// offers of the same category (an upgrade or a downgrade). From now, a
    /// new subscription holds the buckets and the S3 key, at the new
    /// offer's price and quota; the old one ends as `changed`, without the
    /// rest of its commitment (the new offer's own commitment starts).
    pub async fn change_offer(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        id: &str,
        offer_id: &str,
    ) -> ServiceResult<Subscription> {
        let mut tx = self.platform().db().begin_write().await?;
        let (mut old, buyer) = self.buyers_subscription(&mut tx, who, id).await?;
        if old.state != SubscriptionState::Active.as_str() {
            return Err(ServiceError::Conflict(format!(
                "a {} subscription cannot change offer",
                old.state
            )));
        }
        if old.provider_id != self.house().to_string() {
            return Err(ServiceError::Conflict(
                "only the house's subscriptions change offer here: order the new offer from its provider".into(),
            ));
        }
        let offer_row = repo::get_sheet(&mut tx, repo::Sheet::Offer, offer_id)
            .await?
            .ok_or(ServiceError::NotFound("offer"))?;
        let (Some(published), true) = (
            offer_row.published.as_deref(),
            offer_row.owner_id == old.provider_id,
        ) else {
            return Err(ServiceError::Conflict(
                "the new offer must be a published offer of the same provider".into(),
            ));
        };
        let offer: OfferSheet = parse_doc(published)?;
        let current: OfferSheet = parse_doc(&old.offer_document)?;
        if offer_row.id == old.offer_id || offer.category != current.category {
            return Err(ServiceError::Conflict(format!(
                "a subscription changes to another offer of its category ({})",
                current.category
            )));
        }
        if !offer.regions.contains(&old.region) {
            return Err(ServiceError::Conflict(format!(
                "the new offer is not available in {}, where the data is",
                old.region
            )));
        }
        let mut resources: Resources = match old.resources.as_deref() {
            Some(r) => parse_doc(r)?,
            None => Resources::default(),
        };
        resources.quota_bytes = quota_of(&offer);
        let now = self.now_ms();
        let new = SubscriptionRow {
            id: uuid::Uuid::now_v7().to_string(),
            offer_id: offer_row.id.clone(),
            provider_id: old.provider_id.clone(),
            buyer_id: old.buyer_id.clone(),
            region: old.region.clone(),
            state: SubscriptionState::Active.as_str().into(),
            offer_document: published.to_owned(),
            resources: Some(to_json(&resources)?),
            note: None,
            ordered_by: who.actor(),
            created_at: now,
            updated_at: now,
        };
        old.state = SubscriptionState::Cancelled.as_str().into();
        old.updated_at = now;
        repo::update_subscription(&mut tx, &old).await?;
        let to = format!("to subscription {}", new.id);
        repo::insert_subscription_event(
            &mut tx,
            &event_row(&old, who, "changed", Some(&to), self.now_ms()),
        )
        .await?;
        repo::insert_subscription(&mut tx, &new).await?;
        let from = format!("changed from subscription {}", old.id);
        repo::insert_subscription_event(
            &mut tx,
            &event_row(&new, who, "provisioned", Some(&from), self.now_ms()),
        )
        .await?;
        self.apply_quota(&mut tx, buyer).await?;
        let view = self.subscription_view(&mut tx, new).await?;
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("subscription.change", format!("subscription:{id}"))
                    .org(buyer)
                    .details(serde_json::json!({"to": view.id, "offer": view.offer_id})),
            )
            .await?;
        Ok(view)
    }

    // --- webhooks --------------------------------------------------------------------

    /// Sets a provider's webhook; the signing secret is returned once.
    pub async fn set_webhook(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        org: OrgId,
        url: &str,
    ) -> ServiceResult<Webhook> {
        check_url(url, "url")?;
        if !self.inner.allow_private_webhooks
            && let Err(reason) = check_destination(url.trim()).await
        {
            return Err(DomainError::invalid("url", reason).into());
        }
        let mut tx = self.platform().db().begin_write().await?;
        self.platform()
            .authorize_org(&mut tx, who, org, Permission::Manage)
            .await?;
        let signing = format!("whsec_{}", secret::random_token(24));
        repo::upsert_webhook(
            &mut tx,
            &WebhookRow {
                org_id: org.to_string(),
                url: url.trim().to_owned(),
                secret_sealed: self.platform().key().seal(signing.as_bytes()),
                updated_at: self.now_ms(),
            },
        )
        .await?;
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("webhook.set", format!("org:{org}"))
                    .org(org)
                    .details(serde_json::json!({"url": url.trim()})),
            )
            .await?;
        Ok(Webhook {
            url: url.trim().to_owned(),
            secret: Some(signing),
        })
    }

    pub async fn deliveries(&self, who: &Principal, org: OrgId) -> ServiceResult<Vec<Delivery>> {
        let mut conn = self.platform().db().acquire().await?;
        self.platform()
            .authorize_org(&mut conn, who, org, Permission::Manage)
            .await?;
        Ok(repo::deliveries_of(&mut conn, &org.to_string(), 100)
            .await?
            .into_iter()
            .map(|d| Delivery {
                id: d.id,
                event: d.event,
                attempts: d.attempts,
                delivered_at_ms: d.delivered_at,
                last_error: d.last_error,
                created_at_ms: d.created_at,
            })
            .collect())
    }

    async fn enqueue_webhook(
        &self,
        conn: &mut AnyConnection,
        sub: &SubscriptionRow,
        event: &str,
    ) -> ServiceResult<()> {
        let subscription = serde_json::json!({
            "id": sub.id, "offer_id": sub.offer_id, "buyer_id": sub.buyer_id,
            "region": sub.region, "state": sub.state,
        });
        self.enqueue_event(conn, &sub.provider_id, event, "subscription", subscription)
            .await
    }

    /// Queues `event` for `org`'s webhook, if it has one, with `body` under
    /// `key` in the payload.
    pub async fn enqueue_event(
        &self,
        conn: &mut AnyConnection,
        org: &str,
        event: &str,
        key: &str,
        body: serde_json::Value,
    ) -> ServiceResult<()> {
        if repo::get_webhook(conn, org).await?.is_none() {
            return Ok(());
        }
        let id = uuid::Uuid::now_v7().to_string();
        let payload = serde_json::json!({
            "id": id,
            "event": event,
            key: body,
            "at_ms": self.now_ms(),
        });
        repo::insert_delivery(
            conn,
            &DeliveryRow {
                id,
                org_id: org.to_owned(),
                event: event.into(),
                payload: payload.to_string(),
                attempts: 0,
                next_attempt_at: self.now_ms(),
                delivered_at: None,
                last_error: None,
                created_at: self.now_ms(),
            },
        )
        .await?;
        Ok(())
    }

    /// Sends the deliveries that are due; returns how many succeeded.
    pub async fn deliver_due(&self) -> ServiceResult<usize> {
        let db = self.platform().db();
        let due = repo::due_deliveries(&mut *db.acquire().await?, self.now_ms(), 50).await?;
        let mut sent = 0;
        for d in due {
            let backoff = 10_000i64 << d.attempts.clamp(0, 8);
            let retry_at = if d.attempts + 1 >= MAX_ATTEMPTS {
                i64::MAX
            } else {
                self.now_ms() + backoff
            };
            if !repo::claim_delivery(&mut *db.acquire().await?, &d.id, self.now_ms(), retry_at)
                .await?
            {
                continue;
            }
            let (delivered, error) = match self
                .post_signed(&d.org_id, &d.event, &d.id, &d.payload)
                .await?
            {
                Ok(()) => (Some(self.now_ms()), None),
                Err(e) => (None, Some(e)),
            };
            if delivered.is_some() {
                sent += 1;
            } else {
                tracing::warn!(delivery = %d.id, error = error.as_deref().unwrap_or_default(), "webhook delivery failed; it will be retried");
            }
            repo::finish_delivery(
                &mut *db.acquire().await?,
                &d.id,
                delivered,
                error.as_deref(),
            )
            .await?;
        }
        Ok(sent)
    }

    /// Posts `payload` once to the organisation's webhook, signed with its
    /// secret; the error says why it was not taken (no webhook, a refused
    /// destination, the endpoint's answer).
    pub async fn post_signed(
        &self,
        org: &str,
        event: &str,
        delivery: &str,
        payload: &str,
    ) -> ServiceResult<Result<(), String>> {
        let db = self.platform().db();
        let Some(hook) = repo::get_webhook(&mut *db.acquire().await?, org).await? else {
            return Ok(Err("no webhook".into()));
        };
        let signing = String::from_utf8(self.platform().key().open(&hook.secret_sealed)?)
            .map_err(|_| ServiceError::Internal("a webhook secret is not UTF-8".into()))?;
        if !self.inner.allow_private_webhooks
            && let Err(reason) = check_destination(&hook.url).await
        {
            // Checked again at each delivery: a name may resolve
            // elsewhere since it was set.
            return Ok(Err(reason));
        }
        let timestamp = self.now_ms() / 1000;
        let outcome = self
            .inner
            .http
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("nuage-event", event)
            .header("nuage-delivery", delivery)
            .header(
                "nuage-signature",
                webhook_signature(&signing, timestamp, payload),
            )
            .body(payload.to_owned())
            .send()
            .await;
        Ok(match outcome {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("the endpoint answered {}", r.status())),
            Err(e) => Err(format!("could not reach the endpoint: {e}")),
        })
    }

    /// Whether the organisation has a webhook.
    pub async fn has_webhook(&self, org: &str) -> ServiceResult<bool> {
        let db = self.platform().db();
        Ok(repo::get_webhook(&mut *db.acquire().await?, org)
            .await?
            .is_some())
    }

    /// Waits until something was queued for delivery on this node (an
    /// order, an alert, a call's change): the webhooks job then runs at once.
    pub async fn deliveries_queued(&self) {
        self.inner.wake.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_webhook_client_connects_to_no_internal_address_a_name_resolves_to() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listener");
        let port = listener.local_addr().expect("address").port();
        let url = format!("http://localhost:{port}/hook");
        let refused = webhook_client(false)
            .expect("client")
            .post(&url)
            .send()
            .await
            .expect_err("an internal address");
        let chain =
            std::iter::successors(Some(&refused as &(dyn std::error::Error + 'static)), |e| {
                e.source()
            })
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(": ");
        assert!(chain.contains("public endpoints only"), "{chain}");
        let accepted =
            tokio::time::timeout(std::time::Duration::from_millis(200), listener.accept());
        assert!(accepted.await.is_err(), "nothing connected");
        // The same client with private destinations allowed does connect.
        let sent = tokio::spawn(async move {
            let _ = webhook_client(true)
                .expect("client")
                .post(&url)
                .send()
                .await;
        });
        let accepted = tokio::time::timeout(std::time::Duration::from_secs(5), listener.accept());
        assert!(accepted.await.is_ok(), "connected");
        sent.abort();
    }

    #[tokio::test]
    async fn webhooks_to_the_platforms_own_machine_are_refused() {
        assert!(
            check_destination("http://127.0.0.1:8080/hook")
                .await
                .is_err()
        );
        assert!(check_destination("http://localhost/hook").await.is_err());
        assert!(check_destination("http://[::1]/hook").await.is_err());
    }
}
