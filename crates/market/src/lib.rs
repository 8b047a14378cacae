//! The open directory and the single window: regions, public profiles,
//! services and offers, their review and publication, search, open data,
//! comparison (here); orders, subscriptions and webhooks (`orders`); the
//! house provider (`house`). Billing, which rates its subscriptions, and
//! calls for tender, which order through it, are crates above it
//! (`nuage-billing`, `nuage-procurement`).
//!
//! A sheet (profile, service, offer) has the document its owner edits and,
//! once an operator approved it, the version the public sees. Editing a
//! published sheet makes a new draft; the public version stays until the
//! draft is approved in turn. Only published versions are in the search
//! index (`listings`).

mod house;
mod index;
pub mod orders;

use std::collections::HashMap;
use std::sync::Arc;

use nuage_db::Dialect;
use nuage_db::repo::catalogue::{self as repo, RolesRow, SheetRow};
use nuage_db::repo::identity;
use nuage_domain::DomainError;
use nuage_domain::catalogue::{
    OfferSheet, Price, Profile, Publication, ServiceSheet, UsageProfile, parse_jurisdiction,
    short_text, to_cents,
};
use nuage_domain::ids::OrgId;
use nuage_domain::org::Permission;
use rust_decimal::Decimal;
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use nuage_service::{AuditEvent, Platform, Principal, RequestMeta, ServiceError, ServiceResult};
use nuage_storage::Storage;

pub use index::{FACETS, SearchQuery, SearchResults};
pub use nuage_db::repo::catalogue::{Relation, Sheet, Side};

/// The licence of the directory's open data.
pub const OPEN_DATA_LICENCE: &str = "Licence Ouverte / Open Licence 2.0";
pub const OPEN_DATA_LICENCE_URL: &str =
    "https://www.etalab.gouv.fr/wp-content/uploads/2017/04/ETALAB-Licence-Ouverte-v2.0.pdf";

/// The setting that names the house provider's organisation.
const HOUSE_SETTING: &str = "house_provider_org";

/// A region the operator declared.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegionView {
    pub name: String,
    pub location: String,
    pub jurisdiction: String,
    /// Whether this platform stores data there (orders are provisioned there).
    pub house: bool,
}

impl From<repo::RegionRow> for RegionView {
    fn from(r: repo::RegionRow) -> Self {
        Self {
            name: r.name,
            location: r.location,
            jurisdiction: r.jurisdiction,
            house: r.house == 1,
        }
    }
}

/// A sheet as its owner sees it: the document being edited, the version
/// the public sees, and where it is in review.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Owned<T> {
    pub id: String,
    pub owner_id: String,
    pub owner_name: String,
    pub state: Publication,
    pub document: T,
    pub published: Option<T>,
    /// The reviewer's note when it was sent back or withdrawn.
    pub review_note: Option<String>,
    pub is_provider: bool,
    pub is_publisher: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// An organisation named on a public page.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrgRef {
    pub id: String,
    pub name: String,
    pub kind: String,
}

/// A published organisation's public page.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrganisationPage {
    pub id: String,
    pub name: String,
    pub is_provider: bool,
    pub is_publisher: bool,
    pub profile: Profile,
    pub services: Vec<Card>,
    pub offers: Vec<Card>,
}

/// A published service's public page.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServicePage {
    pub id: String,
    pub publisher: OrgRef,
    pub sheet: ServiceSheet,
    pub free_software: bool,
    /// Organisations that declare they use it.
    pub used_by: Vec<OrgRef>,
    /// Providers that declare they support it.
    pub supported_by: Vec<OrgRef>,
}

/// A published offer's public page.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OfferPage {
    pub id: String,
    pub provider: OrgRef,
    pub sheet: OfferSheet,
    pub regions: Vec<RegionView>,
    /// The provider's certifications that the offer claims, valid today.
    pub certifications: Vec<nuage_domain::catalogue::Certification>,
    /// The month's price for the reference usage profile, to the cent.
    #[schema(value_type = String)]
    pub reference_monthly_price: Decimal,
    /// Whether this platform provisions it at once when ordered.
    pub instant: bool,
}

/// A line in a listing: what a search hit or an owner's list shows.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Card {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub summary: String,
    pub owner_id: String,
    pub owner_name: String,
    /// For offers: the month's price for the reference usage profile.
    #[schema(value_type = Option<String>)]
    pub reference_monthly_price: Option<Decimal>,
}

/// An offer priced for a usage profile, beside others.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Comparison {
    pub offer: OfferPage,
    /// The month's price for the stated usage, to the cent.
    #[schema(value_type = String)]
    pub monthly_price: Decimal,
    /// Unrounded.
    #[schema(value_type = String)]
    pub monthly_price_exact: Decimal,
    /// The whole commitment's price (the monthly price × the months), if any.
    #[schema(value_type = Option<String>)]
    pub commitment_price: Option<Decimal>,
}

/// Everything published, for the open-data downloads.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OpenData {
    pub licence: &'static str,
    pub licence_url: &'static str,
    pub generated_at_ms: i64,
    pub regions: Vec<RegionView>,
    pub organisations: Vec<OrganisationPage>,
    pub services: Vec<ServicePage>,
    pub offers: Vec<OfferPage>,
}

/// A reviewer's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Publish,
    SendBack,
    Withdraw,
}

/// An operator's decision on a sheet, with its note (required to send
/// back) and, for a profile it publishes, the roles it grants.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub decision: Decision,
    pub note: Option<String>,
    pub grant: Grant,
}

/// A move in a sheet's publication.
struct Move {
    to: Publication,
    as_reviewer: bool,
    note: Option<String>,
    grant: Grant,
}

/// Roles granted when a profile is published.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
pub struct Grant {
    pub provider: bool,
    pub publisher: bool,
}

/// An entry of the operator's review queue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReviewItem {
    /// `profile`, `service` or `offer`.
    pub kind: String,
    pub id: String,
    pub owner_id: String,
    pub owner_name: String,
    pub name: String,
    pub submitted_at_ms: i64,
}

/// Settings of the catalogue.
#[derive(Debug, Clone)]
pub struct CatalogueSettings {
    /// The house provider's name, used when it is created.
    pub house_name: String,
    /// Whether webhooks may point at loopback, private or link-local
    /// addresses (never in production: a provider could reach the
    /// operator's internal services).
    pub allow_private_webhooks: bool,
    /// How many matches a search reads at most (see `index`).
    pub search_sample: u32,
}

struct Inner {
    storage: Storage,
    house: OrgId,
    allow_private_webhooks: bool,
    search_sample: u32,
    http: reqwest::Client,
    wake: tokio::sync::Notify,
    /// The index's fingerprint when `tidy_index` last merged it.
    tidied: std::sync::Mutex<Option<(i64, i64)>>,
}

/// The directory and the catalogue, over the platform and its storage.
#[derive(Clone)]
pub struct Catalogue {
    inner: Arc<Inner>,
}

fn kind_of(sheet: Sheet) -> &'static str {
    match sheet {
        Sheet::Profile => "profile",
        Sheet::Service => "service",
        Sheet::Offer => "offer",
    }
}

/// Reads a stored JSON document.
pub fn parse_doc<T: DeserializeOwned>(json: &str) -> ServiceResult<T> {
    serde_json::from_str(json)
        .map_err(|e| ServiceError::Internal(format!("a stored sheet does not parse: {e}")))
}

/// Writes a document to be stored as JSON.
pub fn to_json<T: Serialize>(value: &T) -> ServiceResult<String> {
    serde_json::to_string(value).map_err(|e| ServiceError::Internal(e.to_string()))
}

/// Today, `YYYY-MM-DD`, for certification validity.
pub(crate) fn today(now_ms: i64) -> String {
    let now = time::OffsetDateTime::from_unix_timestamp(now_ms / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let d = now.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

impl Catalogue {
    /// Declares the storage regions as the house's, and makes sure the house
    /// provider exists with its catalogue (the operator's own offers).
    pub async fn start(storage: Storage, settings: CatalogueSettings) -> ServiceResult<Self> {
        let platform = storage.platform().clone();
        let mut tx = platform.db().begin_write().await?;
        for region in storage.regions() {
            repo::upsert_region(
                &mut tx,
                &repo::RegionRow {
                    name: region.name.clone(),
                    location: region.location.clone(),
                    jurisdiction: parse_jurisdiction(&region.jurisdiction, "jurisdiction")?,
                    house: 1,
                    created_at: platform.now_ms(),
                },
            )
            .await?;
        }
        tx.commit().await.map_err(nuage_db::DbError::from)?;
        let house = house::ensure_house(&platform, &storage, &settings.house_name).await?;
        let mut tx = platform.db().begin_write().await?;
        let rebuilt =
            index::rebuild_if_empty(&mut tx, platform.db().dialect(), platform.now_ms()).await?;
        tx.commit().await.map_err(nuage_db::DbError::from)?;
        if rebuilt > 0 {
            tracing::info!(listings = rebuilt, "search index rebuilt");
        }
        let http = orders::webhook_client(settings.allow_private_webhooks)
            .map_err(|e| ServiceError::Internal(format!("HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                storage,
                house,
                allow_private_webhooks: settings.allow_private_webhooks,
                search_sample: settings.search_sample,
                http,
                wake: tokio::sync::Notify::new(),
                tidied: std::sync::Mutex::new(None),
            }),
        })
    }

    pub fn platform(&self) -> &Platform {
        self.inner.storage.platform()
    }

    /// The platform's clock, in ms since the epoch.
    pub fn now_ms(&self) -> i64 {
        self.platform().now_ms()
    }

    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    /// The organisation of the operator's own offers.
    pub fn house(&self) -> OrgId {
        self.inner.house
    }

    /// Wakes this node's webhook deliveries for events just queued.
    pub fn wake_deliveries(&self) {
        self.inner.wake.notify_one();
    }

    // --- regions -------------------------------------------------------------------

    pub async fn regions(&self) -> ServiceResult<Vec<RegionView>> {
        let rows = repo::list_regions(&mut *self.platform().db().acquire().await?).await?;
        Ok(rows.into_iter().map(RegionView::from).collect())
    }

    async fn region_names(&self, conn: &mut nuage_db::AnyConnection) -> ServiceResult<Vec<String>> {
        Ok(repo::list_regions(conn)
            .await?
            .into_iter()
            .map(|r| r.name)
            .collect())
    }

    /// Declares a region of the ecosystem, where providers' offers may be
    /// (operators only). Storage regions come from the configuration.
    pub async fn declare_region(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        name: &str,
        location: &str,
        jurisdiction: &str,
    ) -> ServiceResult<RegionView> {
        if !who.is_operator() {
            return Err(ServiceError::Forbidden(
                "only operators declare regions".into(),
            ));
        }
        let name = name.trim();
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(DomainError::invalid(
                "name",
                "a region name is 1 to 64 lower-case letters, digits and hyphens",
            )
            .into());
        }
        short_text(location, "location", 200, true)?;
        let jurisdiction = parse_jurisdiction(jurisdiction, "jurisdiction")?;
        let mut tx = self.platform().db().begin_write().await?;
        let house = repo::list_regions(&mut tx)
            .await?
            .iter()
            .any(|r| r.name == name && r.house == 1);
        if house {
            return Err(ServiceError::Conflict(
                "a storage region is declared in the configuration".into(),
            ));
        }
        let row = repo::RegionRow {
            name: name.to_owned(),
            location: location.trim().to_owned(),
            jurisdiction,
            house: 0,
            created_at: self.now_ms(),
        };
        repo::upsert_region(&mut tx, &row).await?;
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("region.declare", format!("region:{name}")).details(
                    serde_json::json!({"location": row.location, "jurisdiction": row.jurisdiction}),
                ),
            )
            .await?;
        Ok(row.into())
    }

    // --- sheets, as their owners edit them ------------------------------------------------

    /// The owner's view of a sheet row.
    async fn owned<T: DeserializeOwned>(
        &self,
        conn: &mut nuage_db::AnyConnection,
        row: SheetRow,
    ) -> ServiceResult<Owned<T>> {
        let owner = identity::get_org(conn, &row.owner_id)
            .await?
            .ok_or(ServiceError::NotFound("organisation"))?;
        let roles = repo::roles(conn, &row.owner_id).await?;
        Ok(Owned {
            document: parse_doc(&row.document)?,
            published: row.published.as_deref().map(parse_doc).transpose()?,
            state: Publication::parse(&row.state)?,
            id: row.id,
            owner_id: row.owner_id,
            owner_name: owner.name,
            review_note: row.review_note,
            is_provider: roles.is_provider == 1,
            is_publisher: roles.is_publisher == 1,
            created_at_ms: row.created_at,
            updated_at_ms: row.updated_at,
        })
    }

    /// Saves a new version of a sheet as a draft (the public version, if
    /// any, stays until this draft is approved).
    async fn save_sheet<T: Serialize + DeserializeOwned>(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        sheet: Sheet,
        owner: OrgId,
        id: Option<String>,
        document: &T,
    ) -> ServiceResult<Owned<T>> {
        let mut tx = self.platform().db().begin_write().await?;
        self.platform()
            .authorize_org(&mut tx, who, owner, Permission::Manage)
            .await?;
        let roles = repo::roles(&mut tx, &owner.to_string()).await?;
        match sheet {
            Sheet::Service if roles.is_publisher != 1 => {
                return Err(ServiceError::Forbidden(
                    "only organisations approved as publishers list services: publish your profile first".into(),
                ));
            }
            Sheet::Offer if roles.is_provider != 1 => {
                return Err(ServiceError::Forbidden(
                    "only organisations approved as providers list offers: publish your profile first".into(),
                ));
            }
            _ => {}
        }
        let now = self.now_ms();
        let existing = match &id {
            Some(id) => repo::get_sheet(&mut tx, sheet, id).await?,
            None => None,
        };
        let row = match existing {
            Some(mut row) => {
                if row.owner_id != owner.to_string() {
                    return Err(ServiceError::NotFound(kind_of(sheet)));
                }
                row.document = to_json(document)?;
                row.state = Publication::Draft.as_str().into();
                row.updated_at = now;
                repo::update_sheet(&mut tx, sheet, &row).await?;
                row
            }
            None if sheet != Sheet::Profile && id.is_some() => {
                return Err(ServiceError::NotFound(kind_of(sheet)));
            }
            None => {
                let row = SheetRow {
                    id: id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
                    owner_id: owner.to_string(),
                    state: Publication::Draft.as_str().into(),
                    document: to_json(document)?,
                    published: None,
                    review_note: None,
                    created_at: now,
                    updated_at: now,
                };
                repo::insert_sheet(&mut tx, sheet, &row).await?;
                row
            }
        };
        let owned = self.owned(&mut tx, row).await?;
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new(
                    match sheet {
                        Sheet::Profile => "profile.save",
                        Sheet::Service => "service.save",
                        Sheet::Offer => "offer.save",
                    },
                    format!("{}:{}", kind_of(sheet), owned.id),
                )
                .org(owner)
                .details(serde_json::to_value(&owned.document).unwrap_or_default()),
            )
            .await?;
        Ok(owned)
    }

    /// The sheet, if `who` may manage it (its owner's admins, operators).
    async fn sheet_for_owner(
        &self,
        conn: &mut nuage_db::AnyConnection,
        who: &Principal,
        sheet: Sheet,
        id: &str,
    ) -> ServiceResult<SheetRow> {
        let row = repo::get_sheet(conn, sheet, id)
            .await?
            .ok_or(ServiceError::NotFound(kind_of(sheet)))?;
        let owner = OrgId::parse(&row.owner_id)?;
        self.platform()
            .authorize_org(conn, who, owner, Permission::Manage)
            .await
            .map_err(|e| match e {
                ServiceError::NotFound(_) => ServiceError::NotFound(kind_of(sheet)),
                other => other,
            })?;
        Ok(row)
    }

    /// Moves a sheet in its publication: by its owner (submit, take back,
    /// withdraw) or by an operator reviewing (publish, send back, withdraw).
    async fn move_sheet(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        sheet: Sheet,
        id: &str,
        step: Move,
    ) -> ServiceResult<()> {
        let Move {
            to,
            as_reviewer,
            note,
            grant,
        } = step;
        if let Some(n) = &note {
            short_text(n, "note", 2000, false)?;
        }
        let mut tx = self.platform().db().begin_write().await?;
        let mut row = if as_reviewer {
            if !who.is_operator() {
                return Err(ServiceError::Forbidden(
                    "only operators review the directory".into(),
                ));
            }
            repo::get_sheet(&mut tx, sheet, id)
                .await?
                .ok_or(ServiceError::NotFound(kind_of(sheet)))?
        } else {
            self.sheet_for_owner(&mut tx, who, sheet, id).await?
        };
        let from = Publication::parse(&row.state)?;
        let allowed = if as_reviewer {
            from.reviewer_may(to)
        } else {
            from.owner_may(to)
        };
        if !allowed {
            return Err(ServiceError::Conflict(format!(
                "a {} that is {from} cannot become {to}",
                kind_of(sheet)
            )));
        }
        let dialect = self.platform().db().dialect();
        match to {
            Publication::Published => {
                if sheet != Sheet::Profile {
                    let owner = repo::get_sheet(&mut tx, Sheet::Profile, &row.owner_id).await?;
                    if owner.is_none_or(|p| p.published.is_none()) {
                        return Err(ServiceError::Conflict(
                            "the owner's profile is not published yet".into(),
                        ));
                    }
                } else {
                    repo::set_roles(
                        &mut tx,
                        &row.owner_id,
                        RolesRow {
                            is_provider: i64::from(grant.provider),
                            is_publisher: i64::from(grant.publisher),
                        },
                    )
                    .await?;
                }
                row.published = Some(row.document.clone());
                row.review_note = None;
            }
            Publication::Withdrawn => {
                row.published = None;
                row.review_note = note.clone();
            }
            Publication::Draft if as_reviewer => row.review_note = note.clone(),
            _ => {}
        }
        row.state = to.as_str().into();
        row.updated_at = self.now_ms();
        repo::update_sheet(&mut tx, sheet, &row).await?;
        match &row.published {
            Some(_) => index::index(&mut tx, dialect, sheet, &row, self.now_ms()).await?,
            None => repo::unindex_listing(&mut tx, dialect, &row.id).await?,
        }
        // A profile carries its organisation's offers and services: their
        // listings show its name and certifications.
        if sheet == Sheet::Profile {
            index::reindex_owned(
                &mut tx,
                dialect,
                &row.owner_id,
                row.published.is_some(),
                self.now_ms(),
            )
            .await?;
        }
        let action = match (to, as_reviewer) {
            (Publication::Published, _) => "directory.publish",
            (Publication::Withdrawn, _) => "directory.withdraw",
            (Publication::InReview, _) => "directory.submit",
            (Publication::Draft, true) => "directory.send_back",
            (Publication::Draft, false) => "directory.take_back",
        };
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new(action, format!("{}:{}", kind_of(sheet), row.id))
                    .org(&row.owner_id)
                    .details(serde_json::json!({
                        "from": from, "to": to, "note": note,
                        "provider": (sheet == Sheet::Profile && to == Publication::Published).then_some(grant.provider),
                        "publisher": (sheet == Sheet::Profile && to == Publication::Published).then_some(grant.publisher),
                    })),
            )
            .await
    }

    // --- profiles ------------------------------------------------------------------------

    pub async fn save_profile(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        org: OrgId,
        profile: Profile,
    ) -> ServiceResult<Owned<Profile>> {
        let profile = profile.validated()?;
        self.save_sheet(
            who,
            meta,
            Sheet::Profile,
            org,
            Some(org.to_string()),
            &profile,
        )
        .await
    }

    pub async fn profile(&self, who: &Principal, org: OrgId) -> ServiceResult<Owned<Profile>> {
        let mut conn = self.platform().db().acquire().await?;
        let row = self
            .sheet_for_owner(&mut conn, who, Sheet::Profile, &org.to_string())
            .await?;
        self.owned(&mut conn, row).await
    }

    // --- services --------------------------------------------------------------------------

    pub async fn save_service(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        publisher: OrgId,
        id: Option<String>,
        sheet: ServiceSheet,
    ) -> ServiceResult<Owned<ServiceSheet>> {
        let sheet = sheet.validated()?;
        self.save_sheet(who, meta, Sheet::Service, publisher, id, &sheet)
            .await
    }

    // --- offers ----------------------------------------------------------------------------

    pub async fn save_offer(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        provider: OrgId,
        id: Option<String>,
        sheet: OfferSheet,
    ) -> ServiceResult<Owned<OfferSheet>> {
        let names = self
            .region_names(&mut *self.platform().db().acquire().await?)
            .await?;
        let sheet = sheet.validated(&names)?;
        if provider == self.house() {
            let house: Vec<&str> = self.storage().regions().map(|r| r.name.as_str()).collect();
            if let Some(r) = sheet.regions.iter().find(|r| !house.contains(&r.as_str())) {
                return Err(DomainError::invalid(
                    "regions",
                    format!("the house's offers are in its storage regions, and {r} is not one"),
                )
                .into());
            }
        }
        self.save_sheet(who, meta, Sheet::Offer, provider, id, &sheet)
            .await
    }

    /// An owner's sheets of one kind, newest first.
    pub async fn sheets_of<T: DeserializeOwned>(
        &self,
        who: &Principal,
        sheet: Sheet,
        owner: OrgId,
    ) -> ServiceResult<Vec<Owned<T>>> {
        let mut conn = self.platform().db().acquire().await?;
        self.platform()
            .authorize_org(&mut conn, who, owner, Permission::Use)
            .await?;
        let rows = repo::sheets_of(&mut conn, sheet, &owner.to_string()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.owned(&mut conn, row).await?);
        }
        Ok(out)
    }

    /// One sheet, for its owner.
    pub async fn sheet<T: DeserializeOwned>(
        &self,
        who: &Principal,
        sheet: Sheet,
        id: &str,
    ) -> ServiceResult<Owned<T>> {
        let mut conn = self.platform().db().acquire().await?;
        let row = self.sheet_for_owner(&mut conn, who, sheet, id).await?;
        self.owned(&mut conn, row).await
    }

    /// The owner submits a draft, takes it back from review, or withdraws.
    pub async fn move_own_sheet(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        sheet: Sheet,
        id: &str,
        to: Publication,
    ) -> ServiceResult<()> {
        let step = Move {
            to,
            as_reviewer: false,
            note: None,
            grant: Grant::default(),
        };
        self.move_sheet(who, meta, sheet, id, step).await
    }

    /// An operator's decision on a sheet.
    pub async fn review(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        sheet: Sheet,
        id: &str,
        verdict: Verdict,
    ) -> ServiceResult<()> {
        let Verdict {
            decision,
            note,
            grant,
        } = verdict;
        let to = match decision {
            Decision::Publish => Publication::Published,
            Decision::SendBack => Publication::Draft,
            Decision::Withdraw => Publication::Withdrawn,
        };
        if decision == Decision::SendBack && note.as_deref().is_none_or(|n| n.trim().is_empty()) {
            return Err(DomainError::invalid("note", "say why it is sent back").into());
        }
        if sheet == Sheet::Profile
            && decision == Decision::Publish
            && !grant.provider
            && !grant.publisher
        {
            return Err(DomainError::invalid(
                "grant",
                "a published profile is a provider, a publisher, or both",
            )
            .into());
        }
        let step = Move {
            to,
            as_reviewer: true,
            note,
            grant,
        };
        self.move_sheet(who, meta, sheet, id, step).await
    }

    /// What waits for an operator's review, oldest first.
    pub async fn review_queue(&self, who: &Principal) -> ServiceResult<Vec<ReviewItem>> {
        if !who.is_operator() {
            return Err(ServiceError::Forbidden(
                "only operators review the directory".into(),
            ));
        }
        let mut conn = self.platform().db().acquire().await?;
        let mut items = Vec::new();
        for sheet in [Sheet::Profile, Sheet::Service, Sheet::Offer] {
            for row in
                repo::sheets_in_state(&mut conn, sheet, Publication::InReview.as_str(), 500).await?
            {
                let owner = identity::get_org(&mut conn, &row.owner_id)
                    .await?
                    .map(|o| o.name)
                    .unwrap_or_default();
                let doc: serde_json::Value = parse_doc(&row.document)?;
                let name = doc
                    .get("name")
                    .or_else(|| doc.get("legal_name"))
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned();
                items.push(ReviewItem {
                    kind: kind_of(sheet).into(),
                    id: row.id,
                    owner_id: row.owner_id,
                    owner_name: owner,
                    name,
                    submitted_at_ms: row.updated_at,
                });
            }
        }
        items.sort_by_key(|i| i.submitted_at_ms);
        Ok(items)
    }

    // --- who uses and supports a service ----------------------------------------------------

    /// An organisation declares that it uses a published service, or (a
    /// provider) that it supports it; or takes the declaration back.
    pub async fn declare(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        relation: repo::Relation,
        service: &str,
        org: OrgId,
        on: bool,
    ) -> ServiceResult<()> {
        let mut tx = self.platform().db().begin_write().await?;
        self.platform()
            .authorize_org(&mut tx, who, org, Permission::Manage)
            .await?;
        let row = repo::get_sheet(&mut tx, Sheet::Service, service)
            .await?
            .filter(|r| r.published.is_some())
            .ok_or(ServiceError::NotFound("service"))?;
        if relation == repo::Relation::Supports
            && repo::roles(&mut tx, &org.to_string()).await?.is_provider != 1
        {
            return Err(ServiceError::Forbidden(
                "only providers declare support".into(),
            ));
        }
        if on {
            repo::declare(&mut tx, relation, &row.id, &org.to_string(), self.now_ms()).await?;
        } else if !repo::undeclare(&mut tx, relation, &row.id, &org.to_string()).await? {
            return Err(ServiceError::NotFound("declaration"));
        }
        let action = match (relation, on) {
            (repo::Relation::Uses, true) => "service.declare_use",
            (repo::Relation::Uses, false) => "service.withdraw_use",
            (repo::Relation::Supports, true) => "service.declare_support",
            (repo::Relation::Supports, false) => "service.withdraw_support",
        };
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new(action, format!("service:{}", row.id)).org(org),
            )
            .await
    }

    /// Whether an organisation is an approved provider.
    pub async fn is_provider(&self, org: &str) -> ServiceResult<bool> {
        let mut conn = self.platform().db().acquire().await?;
        Ok(repo::roles(&mut conn, org).await?.is_provider == 1)
    }

    // --- public pages -------------------------------------------------------------------------

    async fn org_ref(&self, conn: &mut nuage_db::AnyConnection, id: &str) -> ServiceResult<OrgRef> {
        let org = identity::get_org(conn, id)
            .await?
            .ok_or(ServiceError::NotFound("organisation"))?;
        Ok(OrgRef {
            id: org.id,
            name: org.name,
            kind: org.kind,
        })
    }

    /// A published organisation's page.
    pub async fn organisation_page(&self, id: &str) -> ServiceResult<OrganisationPage> {
        let mut conn = self.platform().db().acquire().await?;
        let row = repo::get_sheet(&mut conn, Sheet::Profile, id)
            .await?
            .filter(|r| r.published.is_some())
            .ok_or(ServiceError::NotFound("organisation"))?;
        let roles = repo::roles(&mut conn, id).await?;
        let org = self.org_ref(&mut conn, id).await?;
        let mut cards = (Vec::new(), Vec::new());
        for (sheet, out) in [(Sheet::Service, &mut cards.0), (Sheet::Offer, &mut cards.1)] {
            for r in repo::sheets_of(&mut conn, sheet, id).await? {
                if r.published.is_some()
                    && let Some(l) = repo::get_listing(&mut conn, &r.id).await?
                {
                    out.push(index::card(l));
                }
            }
        }
        organisation_page_of(&row, roles, org, cards)
    }

    /// A published service's page.
    pub async fn service_page(&self, id: &str) -> ServiceResult<ServicePage> {
        let mut conn = self.platform().db().acquire().await?;
        let row = repo::get_sheet(&mut conn, Sheet::Service, id)
            .await?
            .filter(|r| r.published.is_some())
            .ok_or(ServiceError::NotFound("service"))?;
        let ids = [row.id.clone()];
        let publisher = self.org_ref(&mut conn, &row.owner_id).await?;
        let used_by = repo::related(&mut conn, repo::Relation::Uses, &ids).await?;
        let supported_by = repo::related(&mut conn, repo::Relation::Supports, &ids).await?;
        service_page_of(row, publisher, used_by, supported_by)
    }

    /// A published offer's page.
    pub async fn offer_page(&self, id: &str) -> ServiceResult<OfferPage> {
        let mut conn = self.platform().db().acquire().await?;
        self.offer_page_on(&mut conn, id).await
    }

    async fn offer_page_on(
        &self,
        conn: &mut nuage_db::AnyConnection,
        id: &str,
    ) -> ServiceResult<OfferPage> {
        let row = repo::get_sheet(conn, Sheet::Offer, id)
            .await?
            .filter(|r| r.published.is_some())
            .ok_or(ServiceError::NotFound("offer"))?;
        let regions = repo::list_regions(conn).await?;
        let profile = match repo::get_sheet(conn, Sheet::Profile, &row.owner_id)
            .await?
            .and_then(|p| p.published)
        {
            Some(p) => Some(parse_doc::<Profile>(&p)?),
            None => None,
        };
        let provider = self.org_ref(conn, &row.owner_id).await?;
        self.offer_page_of(row, &regions, profile.as_ref(), provider)
    }

    /// An offer's page from its published row and what it refers to.
    fn offer_page_of(
        &self,
        row: SheetRow,
        regions: &[repo::RegionRow],
        profile: Option<&Profile>,
        provider: OrgRef,
    ) -> ServiceResult<OfferPage> {
        let sheet: OfferSheet = parse_doc(row.published.as_deref().unwrap_or_default())?;
        let regions = regions
            .iter()
            .filter(|r| sheet.regions.contains(&r.name))
            .cloned()
            .map(RegionView::from)
            .collect();
        let certifications = profile
            .map(|p| index::claimed_certifications(p, &sheet, self.now_ms()))
            .unwrap_or_default();
        Ok(OfferPage {
            provider,
            reference_monthly_price: to_cents(sheet.price.monthly_cost(&UsageProfile::reference())),
            instant: row.owner_id == self.house().to_string(),
            id: row.id,
            sheet,
            regions,
            certifications,
        })
    }

    /// The offer described for machines, in the Gaia-X service-offering
    /// vocabulary where it fits (JSON-LD).
    pub async fn self_description(
        &self,
        id: &str,
        public_url: &str,
    ) -> ServiceResult<serde_json::Value> {
        let page = self.offer_page(id).await?;
        let s = &page.sheet;
        let p = &s.price;
        Ok(serde_json::json!({
            "@context": {
                "gx": "https://w3id.org/gaia-x/development#",
                "schema": "https://schema.org/",
                "nuage": format!("{public_url}/api/v1/catalogue/vocabulary#"),
            },
            "@id": format!("{public_url}/api/v1/catalogue/offers/{}", page.id),
            "@type": "gx:ServiceOffering",
            "schema:name": s.name,
            "schema:description": s.description,
            "gx:providedBy": {
                "@id": format!("{public_url}/api/v1/directory/organisations/{}", page.provider.id),
                "schema:name": page.provider.name,
            },
            "gx:keyword": [s.category],
            "gx:dataAccountExport": s.reversibility.export_formats.iter().map(|f| serde_json::json!({
                "gx:requestType": "API", "gx:accessType": "digital", "gx:formatType": f,
            })).collect::<Vec<_>>(),
            "nuage:noticeDays": s.reversibility.notice_days,
            "gx:dataLocation": page.regions.iter().map(|r| serde_json::json!({
                "nuage:region": r.name, "schema:address": r.location, "gx:jurisdiction": r.jurisdiction,
            })).collect::<Vec<_>>(),
            "gx:certification": page.certifications,
            "nuage:capacityGB": s.capacity_gb,
            "nuage:sla": s.sla,
            "nuage:price": {
                "schema:priceCurrency": "EUR",
                "nuage:vatIncluded": false,
                "nuage:monthlyFee": p.monthly_fee,
                "nuage:includedGB": p.included_gb,
                "nuage:perGBMonth": p.per_gb_month,
                "nuage:per1000ClassA": p.per_1k_class_a,
                "nuage:per1000ClassB": p.per_1k_class_b,
                "nuage:perGBEgress": p.per_gb_egress,
                "nuage:tiers": p.tiers,
                "nuage:commitmentMonths": p.commitment_months,
                "nuage:gigabyte": "1e9 bytes",
            },
        }))
    }

    /// Up to six published offers priced for one usage profile.
    pub async fn compare(
        &self,
        offer_ids: &[String],
        usage: &UsageProfile,
    ) -> ServiceResult<Vec<Comparison>> {
        usage.validate()?;
        if offer_ids.is_empty() || offer_ids.len() > 6 {
            return Err(DomainError::invalid("offers", "compare 1 to 6 offers").into());
        }
        let mut conn = self.platform().db().acquire().await?;
        let mut out = Vec::new();
        for id in offer_ids {
            let offer = self.offer_page_on(&mut conn, id).await?;
            let exact = offer.sheet.price.monthly_cost(usage);
            let months = offer.sheet.price.commitment_months;
            out.push(Comparison {
                monthly_price: to_cents(exact),
                monthly_price_exact: exact.normalize(),
                commitment_price: (months > 0).then(|| to_cents(exact * Decimal::from(months))),
                offer,
            });
        }
        Ok(out)
    }

    /// Writes sheets as published and indexes them, in one transaction,
    /// without review: for bulk imports by the operator's own code and for
    /// benchmarks. No protocol reaches it. The owners' profiles must be
    /// published for their services and offers to be listed.
    pub async fn load_published(
        &self,
        sheets: Vec<(Sheet, OrgId, serde_json::Value)>,
    ) -> ServiceResult<Vec<String>> {
        let names = self
            .region_names(&mut *self.platform().db().acquire().await?)
            .await?;
        let dialect = self.platform().db().dialect();
        let mut tx = self.platform().db().begin_write().await?;
        let mut ids = Vec::with_capacity(sheets.len());
        for (sheet, owner, document) in sheets {
            let bad = |e: serde_json::Error| DomainError::invalid("document", e.to_string());
            let document = match sheet {
                Sheet::Profile => to_json(
                    &serde_json::from_value::<Profile>(document)
                        .map_err(bad)?
                        .validated()?,
                )?,
                Sheet::Service => to_json(
                    &serde_json::from_value::<ServiceSheet>(document)
                        .map_err(bad)?
                        .validated()?,
                )?,
                Sheet::Offer => to_json(
                    &serde_json::from_value::<OfferSheet>(document)
                        .map_err(bad)?
                        .validated(&names)?,
                )?,
            };
            let now = self.now_ms();
            let row = SheetRow {
                id: match sheet {
                    Sheet::Profile => owner.to_string(),
                    _ => uuid::Uuid::now_v7().to_string(),
                },
                owner_id: owner.to_string(),
                state: Publication::Published.as_str().into(),
                published: Some(document.clone()),
                document,
                review_note: None,
                created_at: now,
                updated_at: now,
            };
            repo::insert_sheet(&mut tx, sheet, &row).await?;
            if sheet == Sheet::Profile {
                repo::set_roles(
                    &mut tx,
                    &row.owner_id,
                    RolesRow {
                        is_provider: 1,
                        is_publisher: 1,
                    },
                )
                .await?;
            }
            index::index(&mut tx, dialect, sheet, &row, self.now_ms()).await?;
            ids.push(row.id);
        }
        tx.commit().await.map_err(nuage_db::DbError::from)?;
        Ok(ids)
    }

    /// Upkeep of the search index, run every few minutes: on SQLite, once
    /// the index has changed since the last time, FTS5's segments are
    /// merged into one (each publication adds a small segment, and reading
    /// many costs searches about a third more). Returns whether it merged.
    pub async fn tidy_index(&self) -> ServiceResult<bool> {
        let db = self.platform().db();
        if db.dialect() != Dialect::Sqlite {
            return Ok(false);
        }
        let fingerprint = repo::index_fingerprint(&mut *db.acquire().await?).await?;
        if *self.inner.tidied.lock().expect("not poisoned") == Some(fingerprint) {
            return Ok(false);
        }
        let mut tx = db.begin_write().await?;
        repo::merge_search_index(&mut tx).await?;
        tx.commit().await.map_err(nuage_db::DbError::from)?;
        *self.inner.tidied.lock().expect("not poisoned") = Some(fingerprint);
        Ok(true)
    }

    /// Searches what is published.
    pub async fn search(&self, query: &SearchQuery) -> ServiceResult<SearchResults> {
        index::search(self.platform(), query, self.inner.search_sample).await
    }

    /// Everything published, for the open-data downloads: what the index
    /// lists (an organisation's services and offers only while its profile
    /// is published), read in a few statements whatever its size.
    pub async fn open_data(&self) -> ServiceResult<OpenData> {
        let mut conn = self.platform().db().acquire().await?;
        let org_listings = repo::listings_of_kind(&mut conn, "organisation").await?;
        let service_listings = repo::listings_of_kind(&mut conn, "service").await?;
        let offer_listings = repo::listings_of_kind(&mut conn, "offer").await?;
        let by_id = |rows: Vec<SheetRow>| {
            rows.into_iter()
                .map(|r| (r.id.clone(), r))
                .collect::<HashMap<_, _>>()
        };
        let mut profiles = by_id(repo::published_sheets(&mut conn, Sheet::Profile).await?);
        let mut services = by_id(repo::published_sheets(&mut conn, Sheet::Service).await?);
        let mut offers = by_id(repo::published_sheets(&mut conn, Sheet::Offer).await?);
        let roles: HashMap<String, RolesRow> = repo::published_roles(&mut conn)
            .await?
            .into_iter()
            .map(|(org, is_provider, is_publisher)| {
                (
                    org,
                    RolesRow {
                        is_provider,
                        is_publisher,
                    },
                )
            })
            .collect();
        let mut orgs: HashMap<String, OrgRef> = HashMap::new();
        let mut after = String::new();
        loop {
            let page = identity::list_orgs(&mut conn, &after, 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.id.clone();
            for o in page {
                orgs.insert(
                    o.id.clone(),
                    OrgRef {
                        id: o.id,
                        name: o.name,
                        kind: o.kind,
                    },
                );
            }
        }
        let org_ref = |id: &str| {
            orgs.get(id)
                .cloned()
                .ok_or(ServiceError::NotFound("organisation"))
        };
        let service_ids: Vec<String> = service_listings.iter().map(|l| l.id.clone()).collect();
        let mut used_by: HashMap<String, Vec<repo::RelatedRow>> = HashMap::new();
        let mut supported_by: HashMap<String, Vec<repo::RelatedRow>> = HashMap::new();
        for chunk in service_ids.chunks(500) {
            for (relation, into) in [
                (repo::Relation::Uses, &mut used_by),
                (repo::Relation::Supports, &mut supported_by),
            ] {
                for r in repo::related(&mut conn, relation, chunk).await? {
                    into.entry(r.service_id.clone()).or_default().push(r);
                }
            }
        }
        let regions = repo::list_regions(&mut conn).await?;
        drop(conn);

        let mut cards: HashMap<String, (Vec<Card>, Vec<Card>)> = HashMap::new();
        for l in service_listings.iter().cloned() {
            cards
                .entry(l.owner_id.clone())
                .or_default()
                .0
                .push(index::card(l));
        }
        for l in offer_listings.iter().cloned() {
            cards
                .entry(l.owner_id.clone())
                .or_default()
                .1
                .push(index::card(l));
        }
        let mut parsed: HashMap<String, Profile> = HashMap::new();
        let mut organisation_pages = Vec::with_capacity(org_listings.len());
        for l in &org_listings {
            let Some(row) = profiles.remove(&l.id) else {
                continue;
            };
            let page = organisation_page_of(
                &row,
                roles.get(&l.id).copied().unwrap_or_default(),
                org_ref(&l.id)?,
                cards.remove(&l.id).unwrap_or_default(),
            )?;
            parsed.insert(l.id.clone(), page.profile.clone());
            organisation_pages.push(page);
        }
        let mut service_pages = Vec::with_capacity(service_listings.len());
        for l in &service_listings {
            let Some(row) = services.remove(&l.id) else {
                continue;
            };
            service_pages.push(service_page_of(
                row,
                org_ref(&l.owner_id)?,
                used_by.remove(&l.id).unwrap_or_default(),
                supported_by.remove(&l.id).unwrap_or_default(),
            )?);
        }
        let mut offer_pages = Vec::with_capacity(offer_listings.len());
        for l in &offer_listings {
            let Some(row) = offers.remove(&l.id) else {
                continue;
            };
            offer_pages.push(self.offer_page_of(
                row,
                &regions,
                parsed.get(&l.owner_id),
                org_ref(&l.owner_id)?,
            )?);
        }
        Ok(OpenData {
            licence: OPEN_DATA_LICENCE,
            licence_url: OPEN_DATA_LICENCE_URL,
            generated_at_ms: self.now_ms(),
            regions: regions.into_iter().map(RegionView::from).collect(),
            organisations: organisation_pages,
            services: service_pages,
            offers: offer_pages,
        })
    }
}

/// An organisation's page from its published profile and what it lists.
fn organisation_page_of(
    row: &SheetRow,
    roles: RolesRow,
    org: OrgRef,
    (services, offers): (Vec<Card>, Vec<Card>),
) -> ServiceResult<OrganisationPage> {
    Ok(OrganisationPage {
        id: org.id,
        name: org.name,
        is_provider: roles.is_provider == 1,
        is_publisher: roles.is_publisher == 1,
        profile: parse_doc(row.published.as_deref().unwrap_or_default())?,
        services,
        offers,
    })
}

/// A service's page from its published row and the organisations related
/// to it.
fn service_page_of(
    row: SheetRow,
    publisher: OrgRef,
    used_by: Vec<repo::RelatedRow>,
    supported_by: Vec<repo::RelatedRow>,
) -> ServiceResult<ServicePage> {
    let sheet: ServiceSheet = parse_doc(row.published.as_deref().unwrap_or_default())?;
    let refs = |rows: Vec<repo::RelatedRow>| {
        rows.into_iter()
            .map(|r| OrgRef {
                id: r.org_id,
                name: r.org_name,
                kind: r.org_kind,
            })
            .collect()
    };
    Ok(ServicePage {
        publisher,
        free_software: nuage_domain::catalogue::Licence::parse(&sheet.licence)
            .is_ok_and(|l| l.is_free()),
        used_by: refs(used_by),
        supported_by: refs(supported_by),
        id: row.id,
        sheet,
    })
}

/// A price in euros as a form gives it (empty is zero).
pub fn form_price(value: &str, field: &'static str) -> Result<Price, DomainError> {
    if value.trim().is_empty() {
        Ok(Price::ZERO)
    } else {
        Price::parse(value, field)
    }
}
