//! The house provider: the operator's own offers, created on first start.

use nuage_db::repo::catalogue::{self as repo, RolesRow, Sheet, SheetRow};
use nuage_db::repo::{identity, settings};
use nuage_domain::catalogue::{OfferSheet, Profile, Publication};
use nuage_domain::ids::{OrgId, TokenId};
use serde_json::json;

use crate::{HOUSE_SETTING, index, to_json};
use nuage_service::{AuditEvent, Platform, Principal, RequestMeta, ServiceError, ServiceResult};
use nuage_storage::Storage;

fn sheet<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> ServiceResult<T> {
    serde_json::from_value(value).map_err(|e| ServiceError::Internal(format!("demo data: {e}")))
}

/// The house's offers: the personal bundle, storage by use, a terabyte.
fn house_offers(regions: &[String]) -> Vec<serde_json::Value> {
    let sla = json!({"availability_percent": "99.9", "support_hours": "Lun–ven 9h–18h (heure de Paris)", "rto_hours": 24, "rpo_hours": 24});
    let reversibility = json!({"export_formats": ["S3"], "notice_days": 0});
    vec![
        json!({
            "name": "Personnel 100 Go",
            "description": "L'offre pour une personne : 100 Go de stockage chiffré, hébergé en France, pour 1,50 € HT par mois, sans engagement. For one person: 100 GB of encrypted storage in France.",
            "category": "storage", "regions": regions, "certifications": [], "capacity_gb": 100,
            "sla": sla, "reversibility": reversibility,
            "price": {"monthly_fee": "1.5", "included_gb": 100},
        }),
        json!({
            "name": "Stockage objet S3 à l'usage",
            "description": "Stockage objet compatible S3, chiffré par organisation, facturé à l'usage : au Go-mois, aux requêtes et au trafic sortant. S3 object storage billed per use.",
            "category": "storage", "regions": regions, "certifications": [], "capacity_gb": null,
            "sla": sla, "reversibility": reversibility,
            "price": {"per_gb_month": "0.006", "per_1k_class_a": "0.004", "per_1k_class_b": "0.0004", "per_gb_egress": "0.01"},
        }),
        json!({
            "name": "Stockage objet 1 To",
            "description": "1 To de stockage objet S3 pour 4,90 € HT par mois, engagement de 12 mois. 1 TB of S3 object storage, 12-month commitment.",
            "category": "storage", "regions": regions, "certifications": [], "capacity_gb": 1000,
            "sla": sla, "reversibility": reversibility,
            "price": {"monthly_fee": "4.9", "included_gb": 1000, "commitment_months": 12},
        }),
    ]
}

/// Makes sure the house provider exists: an organisation with a published
/// profile and the house's offers, created once (the first node to start).
pub(super) async fn ensure_house(
    platform: &Platform,
    storage: &Storage,
    name: &str,
) -> ServiceResult<OrgId> {
    let mut tx = platform.db().begin_write().await?;
    if let Some(id) = settings::get(&mut tx, HOUSE_SETTING).await? {
        return Ok(OrgId::parse(&id)?);
    }
    let org = OrgId::new();
    // Nodes starting together race here: the one whose claim is stored
    // creates the house; the others wait for its commit and use it.
    let claimed = settings::insert_if_absent(&mut tx, HOUSE_SETTING, &org.to_string()).await?;
    if claimed != org.to_string() {
        return Ok(OrgId::parse(&claimed)?);
    }
    let now = platform.now_ms();
    let country = storage
        .regions()
        .next()
        .map_or("FR", |r| r.jurisdiction.as_str())
        .to_owned();
    identity::insert_org(
        &mut tx,
        &identity::OrgRow {
            id: org.to_string(),
            name: nuage_domain::org::OrgName::parse(name)?.as_str().to_owned(),
            kind: "company".into(),
            siret: None,
            vat_number: None,
            country: if country == "EU" {
                "FR".into()
            } else {
                country
            },
            require_totp: 0,
            created_at: now,
        },
    )
    .await?;
    let profile: Profile = sheet(json!({
        "legal_name": name,
        "siren": null,
        "headquarters_country": storage.regions().next().map_or("FR", |r| r.jurisdiction.as_str()),
        "description": "L'opérateur de cette plateforme Nuage : ses offres sont mises en service dès la commande. The operator of this platform: its offers are provisioned when ordered.",
        "capital": {"eu_share_percent": "100", "controlled_by": "The operator"},
        "extra_eu_exposure": {"exposed": false, "statement": "Data stays in the declared regions, under the operator's control."},
        "certifications": [],
        "contact_email": "contact@nuage.example",
        "website": null,
    }))?;
    let profile = profile.validated()?;
    let published = |id: String, document: String| SheetRow {
        id,
        owner_id: org.to_string(),
        state: Publication::Published.as_str().into(),
        published: Some(document.clone()),
        document,
        review_note: None,
        created_at: now,
        updated_at: now,
    };
    let row = published(org.to_string(), to_json(&profile)?);
    repo::insert_sheet(&mut tx, Sheet::Profile, &row).await?;
    repo::set_roles(
        &mut tx,
        &org.to_string(),
        RolesRow {
            is_provider: 1,
            is_publisher: 0,
        },
    )
    .await?;
    let dialect = platform.db().dialect();
    index::index(&mut tx, dialect, Sheet::Profile, &row, now).await?;
    let regions: Vec<String> = storage.regions().map(|r| r.name.clone()).collect();
    for offer in house_offers(&regions) {
        let offer: OfferSheet = sheet(offer)?;
        let offer = offer.validated(&regions)?;
        let row = published(uuid::Uuid::now_v7().to_string(), to_json(&offer)?);
        repo::insert_sheet(&mut tx, Sheet::Offer, &row).await?;
        index::index(&mut tx, dialect, Sheet::Offer, &row, now).await?;
    }
    platform
        .commit_audited(
            tx,
            &Principal::Root {
                token: TokenId::new(),
            },
            &RequestMeta::local(),
            AuditEvent::new("catalogue.house.create", format!("org:{org}"))
                .org(org)
                .details(json!({"name": name, "regions": regions})),
        )
        .await?;
    Ok(org)
}
