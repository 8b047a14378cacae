//! The directory and the catalogue: declared regions, profiles, services,
//! offers and their publication; subscriptions and their history; webhooks
//! to providers. The search index is `repo::search`, re-exported here.

use sqlx::{AnyConnection, FromRow};

use crate::DbError;

pub use super::search::*;

// --- regions -----------------------------------------------------------------

#[derive(Debug, Clone, FromRow)]
pub struct RegionRow {
    pub name: String,
    pub location: String,
    pub jurisdiction: String,
    pub house: i64,
    pub created_at: i64,
}

/// Declares a region, or updates where it is.
pub async fn upsert_region(conn: &mut AnyConnection, r: &RegionRow) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO regions (name, location, jurisdiction, house, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (name) DO UPDATE SET location = excluded.location, jurisdiction = excluded.jurisdiction, house = excluded.house",
    )
    .bind(&r.name)
    .bind(&r.location)
    .bind(&r.jurisdiction)
    .bind(r.house)
    .bind(r.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn list_regions(conn: &mut AnyConnection) -> Result<Vec<RegionRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT name, location, jurisdiction, house, created_at FROM regions ORDER BY name",
    )
    .fetch_all(conn)
    .await?)
}

// --- profiles, services and offers ------------------------------------------------

/// The three kinds of sheets that go through review and publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sheet {
    Profile,
    Service,
    Offer,
}

impl Sheet {
    fn table(self) -> &'static str {
        match self {
            Self::Profile => "profiles",
            Self::Service => "services",
            Self::Offer => "offers",
        }
    }

    fn id_column(self) -> &'static str {
        match self {
            Self::Profile => "org_id",
            _ => "id",
        }
    }

    fn owner_column(self) -> &'static str {
        match self {
            Self::Profile => "org_id",
            Self::Service => "publisher_id",
            Self::Offer => "provider_id",
        }
    }

    fn select(self) -> String {
        format!(
            "SELECT {} AS id, {} AS owner_id, state, document, published, review_note, created_at, updated_at FROM {}",
            self.id_column(),
            self.owner_column(),
            self.table()
        )
    }
}

/// A profile, service or offer as stored: its document is the JSON sheet.
#[derive(Debug, Clone, FromRow)]
pub struct SheetRow {
    pub id: String,
    pub owner_id: String,
    pub state: String,
    pub document: String,
    pub published: Option<String>,
    pub review_note: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub async fn insert_sheet(
    conn: &mut AnyConnection,
    sheet: Sheet,
    row: &SheetRow,
) -> Result<(), DbError> {
    let sql = match sheet {
        Sheet::Profile => {
            "INSERT INTO profiles (org_id, state, document, review_note, created_at, updated_at, published) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        }
        Sheet::Service => {
            "INSERT INTO services (id, state, document, review_note, created_at, updated_at, published, publisher_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        }
        Sheet::Offer => {
            "INSERT INTO offers (id, state, document, review_note, created_at, updated_at, published, provider_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        }
    };
    let mut query = sqlx::query(sql)
        .bind(&row.id)
        .bind(&row.state)
        .bind(&row.document)
        .bind(&row.review_note)
        .bind(row.created_at)
        .bind(row.updated_at)
        .bind(&row.published);
    if sheet != Sheet::Profile {
        query = query.bind(&row.owner_id);
    }
    query.execute(conn).await?;
    Ok(())
}

/// Replaces a sheet's document, state and review note.
pub async fn update_sheet(
    conn: &mut AnyConnection,
    sheet: Sheet,
    row: &SheetRow,
) -> Result<(), DbError> {
    sqlx::query(&format!(
        "UPDATE {} SET state = $1, document = $2, published = $3, review_note = $4, updated_at = $5 WHERE {} = $6",
        sheet.table(),
        sheet.id_column()
    ))
    .bind(&row.state)
    .bind(&row.document)
    .bind(&row.published)
    .bind(&row.review_note)
    .bind(row.updated_at)
    .bind(&row.id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_sheet(
    conn: &mut AnyConnection,
    sheet: Sheet,
    id: &str,
) -> Result<Option<SheetRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "{} WHERE {} = $1",
        sheet.select(),
        sheet.id_column()
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Sheets of one kind by id, in one statement per 500 ids.
pub async fn get_sheets(
    conn: &mut AnyConnection,
    sheet: Sheet,
    ids: &[String],
) -> Result<Vec<SheetRow>, DbError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let params: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "{} WHERE {} IN ({})",
            sheet.select(),
            sheet.id_column(),
            params.join(", ")
        );
        let mut query = sqlx::query_as(&sql);
        for id in chunk {
            query = query.bind(id);
        }
        out.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

/// An owner's sheets of one kind, newest first.
pub async fn sheets_of(
    conn: &mut AnyConnection,
    sheet: Sheet,
    owner: &str,
) -> Result<Vec<SheetRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "{} WHERE {} = $1 ORDER BY created_at DESC",
        sheet.select(),
        sheet.owner_column()
    ))
    .bind(owner)
    .fetch_all(conn)
    .await?)
}

/// Every sheet of a kind with a published version (to rebuild the index).
pub async fn published_sheets(
    conn: &mut AnyConnection,
    sheet: Sheet,
) -> Result<Vec<SheetRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "{} WHERE published IS NOT NULL ORDER BY {}",
        sheet.select(),
        sheet.id_column()
    ))
    .fetch_all(conn)
    .await?)
}

/// Sheets of one kind in a state, oldest first (the review queue).
pub async fn sheets_in_state(
    conn: &mut AnyConnection,
    sheet: Sheet,
    state: &str,
    limit: i64,
) -> Result<Vec<SheetRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "{} WHERE state = $1 ORDER BY updated_at, {} LIMIT $2",
        sheet.select(),
        sheet.id_column()
    ))
    .bind(state)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// What an organisation is in the directory.
#[derive(Debug, Clone, Copy, Default, FromRow)]
pub struct RolesRow {
    pub is_provider: i64,
    pub is_publisher: i64,
}

pub async fn roles(conn: &mut AnyConnection, org: &str) -> Result<RolesRow, DbError> {
    Ok(
        sqlx::query_as("SELECT is_provider, is_publisher FROM profiles WHERE org_id = $1")
            .bind(org)
            .fetch_optional(conn)
            .await?
            .unwrap_or_default(),
    )
}

/// The roles of every organisation with a published profile.
pub async fn published_roles(conn: &mut AnyConnection) -> Result<Vec<(String, i64, i64)>, DbError> {
    Ok(sqlx::query_as(
        "SELECT org_id, is_provider, is_publisher FROM profiles WHERE published IS NOT NULL",
    )
    .fetch_all(conn)
    .await?)
}

pub async fn set_roles(
    conn: &mut AnyConnection,
    org: &str,
    roles: RolesRow,
) -> Result<(), DbError> {
    sqlx::query("UPDATE profiles SET is_provider = $1, is_publisher = $2 WHERE org_id = $3")
        .bind(roles.is_provider)
        .bind(roles.is_publisher)
        .bind(org)
        .execute(conn)
        .await?;
    Ok(())
}

// --- who uses and who supports a service ---------------------------------------

/// Which relation between an organisation and a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// The organisation uses the service.
    Uses,
    /// The provider supports the service.
    Supports,
}

impl Relation {
    fn table_and_column(self) -> (&'static str, &'static str) {
        match self {
            Self::Uses => ("service_users", "org_id"),
            Self::Supports => ("service_support", "provider_id"),
        }
    }
}

pub async fn declare(
    conn: &mut AnyConnection,
    relation: Relation,
    service: &str,
    org: &str,
    at: i64,
) -> Result<(), DbError> {
    let (table, column) = relation.table_and_column();
    sqlx::query(&format!(
        "INSERT INTO {table} (service_id, {column}, declared_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
    ))
    .bind(service)
    .bind(org)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn undeclare(
    conn: &mut AnyConnection,
    relation: Relation,
    service: &str,
    org: &str,
) -> Result<bool, DbError> {
    let (table, column) = relation.table_and_column();
    let done = sqlx::query(&format!(
        "DELETE FROM {table} WHERE service_id = $1 AND {column} = $2"
    ))
    .bind(service)
    .bind(org)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// An organisation related to a service, with its name.
#[derive(Debug, Clone, FromRow)]
pub struct RelatedRow {
    pub service_id: String,
    pub org_id: String,
    pub org_name: String,
    pub org_kind: String,
}

/// The organisations related to the given services, by name.
pub async fn related(
    conn: &mut AnyConnection,
    relation: Relation,
    services: &[String],
) -> Result<Vec<RelatedRow>, DbError> {
    if services.is_empty() {
        return Ok(Vec::new());
    }
    let (table, column) = relation.table_and_column();
    let marks = placeholders(1, services.len());
    let sql = format!(
        "SELECT r.service_id, r.{column} AS org_id, o.name AS org_name, o.kind AS org_kind FROM {table} r \
         JOIN organisations o ON o.id = r.{column} WHERE r.service_id IN ({marks}) ORDER BY o.name, o.id"
    );
    let mut query = sqlx::query_as(&sql);
    for s in services {
        query = query.bind(s);
    }
    Ok(query.fetch_all(conn).await?)
}

pub(super) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// --- subscriptions ---------------------------------------------------------------

#[derive(Debug, Clone, FromRow)]
pub struct SubscriptionRow {
    pub id: String,
    pub offer_id: String,
    pub provider_id: String,
    pub buyer_id: String,
    pub region: String,
    pub state: String,
    pub offer_document: String,
    pub resources: Option<String>,
    pub note: Option<String>,
    pub ordered_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const SUBSCRIPTION_SELECT: &str = "SELECT id, offer_id, provider_id, buyer_id, region, state, offer_document, resources, note, ordered_by, created_at, updated_at FROM subscriptions";

pub async fn insert_subscription(
    conn: &mut AnyConnection,
    r: &SubscriptionRow,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO subscriptions (id, offer_id, provider_id, buyer_id, region, state, offer_document, resources, note, ordered_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&r.id)
    .bind(&r.offer_id)
    .bind(&r.provider_id)
    .bind(&r.buyer_id)
    .bind(&r.region)
    .bind(&r.state)
    .bind(&r.offer_document)
    .bind(&r.resources)
    .bind(&r.note)
    .bind(&r.ordered_by)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn update_subscription(
    conn: &mut AnyConnection,
    r: &SubscriptionRow,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE subscriptions SET state = $1, resources = $2, note = $3, updated_at = $4 WHERE id = $5",
    )
    .bind(&r.state)
    .bind(&r.resources)
    .bind(&r.note)
    .bind(r.updated_at)
    .bind(&r.id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_subscription(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<SubscriptionRow>, DbError> {
    Ok(
        sqlx::query_as(&format!("{SUBSCRIPTION_SELECT} WHERE id = $1"))
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Which side of subscriptions to list.
#[derive(Debug, Clone, Copy)]
pub enum Side {
    Buyer,
    Provider,
}

pub async fn subscriptions_of(
    conn: &mut AnyConnection,
    side: Side,
    org: &str,
) -> Result<Vec<SubscriptionRow>, DbError> {
    let column = match side {
        Side::Buyer => "buyer_id",
        Side::Provider => "provider_id",
    };
    Ok(sqlx::query_as(&format!(
        "{SUBSCRIPTION_SELECT} WHERE {column} = $1 ORDER BY created_at DESC, id DESC"
    ))
    .bind(org)
    .fetch_all(conn)
    .await?)
}

#[derive(Debug, Clone, FromRow)]
pub struct SubscriptionEventRow {
    pub id: String,
    pub subscription_id: String,
    pub at: i64,
    pub actor: String,
    pub event: String,
    pub state: String,
    pub note: Option<String>,
}

pub async fn insert_subscription_event(
    conn: &mut AnyConnection,
    e: &SubscriptionEventRow,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO subscription_events (id, subscription_id, at, actor, event, state, note) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&e.id)
    .bind(&e.subscription_id)
    .bind(e.at)
    .bind(&e.actor)
    .bind(&e.event)
    .bind(&e.state)
    .bind(&e.note)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn subscription_events(
    conn: &mut AnyConnection,
    subscription: &str,
) -> Result<Vec<SubscriptionEventRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT id, subscription_id, at, actor, event, state, note FROM subscription_events WHERE subscription_id = $1 ORDER BY id",
    )
    .bind(subscription)
    .fetch_all(conn)
    .await?)
}

// --- webhooks ------------------------------------------------------------------

#[derive(Clone, FromRow)]
pub struct WebhookRow {
    pub org_id: String,
    pub url: String,
    pub secret_sealed: String,
    pub updated_at: i64,
}

impl std::fmt::Debug for WebhookRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRow")
            .field("org_id", &self.org_id)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

pub async fn upsert_webhook(conn: &mut AnyConnection, w: &WebhookRow) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO webhooks (org_id, url, secret_sealed, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id) DO UPDATE SET url = excluded.url, secret_sealed = excluded.secret_sealed, updated_at = excluded.updated_at",
    )
    .bind(&w.org_id)
    .bind(&w.url)
    .bind(&w.secret_sealed)
    .bind(w.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_webhook(
    conn: &mut AnyConnection,
    org: &str,
) -> Result<Option<WebhookRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT org_id, url, secret_sealed, updated_at FROM webhooks WHERE org_id = $1",
    )
    .bind(org)
    .fetch_optional(conn)
    .await?)
}

#[derive(Debug, Clone, FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub org_id: String,
    pub event: String,
    pub payload: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub delivered_at: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
}

const DELIVERY_SELECT: &str = "SELECT id, org_id, event, payload, attempts, next_attempt_at, delivered_at, last_error, created_at FROM webhook_deliveries";

pub async fn insert_delivery(conn: &mut AnyConnection, d: &DeliveryRow) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, org_id, event, payload, attempts, next_attempt_at, delivered_at, last_error, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&d.id)
    .bind(&d.org_id)
    .bind(&d.event)
    .bind(&d.payload)
    .bind(d.attempts)
    .bind(d.next_attempt_at)
    .bind(d.delivered_at)
    .bind(&d.last_error)
    .bind(d.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deliveries due at `now`, oldest first.
pub async fn due_deliveries(
    conn: &mut AnyConnection,
    now: i64,
    limit: i64,
) -> Result<Vec<DeliveryRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "{DELIVERY_SELECT} WHERE delivered_at IS NULL AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Claims a delivery for one attempt: pushes its next attempt to `retry_at`
/// if it is still due, so that another node does not send it meanwhile.
pub async fn claim_delivery(
    conn: &mut AnyConnection,
    id: &str,
    now: i64,
    retry_at: i64,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = $1 \
         WHERE id = $2 AND delivered_at IS NULL AND next_attempt_at <= $3",
    )
    .bind(retry_at)
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn finish_delivery(
    conn: &mut AnyConnection,
    id: &str,
    delivered_at: Option<i64>,
    error: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query("UPDATE webhook_deliveries SET delivered_at = $1, last_error = $2 WHERE id = $3")
        .bind(delivered_at)
        .bind(error)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn deliveries_of(
    conn: &mut AnyConnection,
    org: &str,
    limit: i64,
) -> Result<Vec<DeliveryRow>, DbError> {
    Ok(sqlx::query_as(&format!(
        "{DELIVERY_SELECT} WHERE org_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
    ))
    .bind(org)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}
