//! The house provider (the operator's own offers, created on first start)
//! and the demo ecosystem of `nuage serve --demo`: fictional providers in
//! several regions with their certifications and prices, publishers with
//! their applications, organisations that use them. Every name is invented.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use nuage_db::repo::catalogue::{self as repo, Relation, RolesRow, Sheet, SheetRow};
use nuage_db::repo::tenders as tenders_repo;
use nuage_db::repo::{identity, settings};
use nuage_domain::catalogue::{OfferSheet, Profile, Publication, ServiceSheet};
use nuage_domain::ids::{OrgId, TokenId};
use nuage_domain::org::Role;
use nuage_domain::tender::{DAY_MS, TenderSpec};
use serde::Deserialize;
use serde_json::json;

use super::{Catalogue, Decision, Grant, HOUSE_SETTING, Verdict, index, to_json};
use crate::accounts::{NewOrg, NewUser};
use crate::keys::secret;
use crate::storage::Storage;
use crate::{AuditEvent, Platform, Principal, RequestMeta, ServiceError, ServiceResult};

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

/// The demo ecosystem, read from `demo.json`: organisations are named there
/// by their owner's e-mail, offers by their name.
#[derive(Deserialize)]
struct Ecosystem {
    regions: Vec<DemoRegion>,
    organisations: Vec<DemoOrg>,
    offers: Vec<DemoOffer>,
    services: Vec<DemoService>,
    calls_for_tender: DemoCalls,
}

#[derive(Deserialize)]
struct DemoRegion {
    name: String,
    location: String,
    jurisdiction: String,
}

#[derive(Deserialize)]
struct DemoOrg {
    name: String,
    kind: String,
    email: String,
    /// Public bodies need one to run calls for tender.
    siret: Option<String>,
    grant: Grant,
    profile: Option<Profile>,
}

#[derive(Deserialize)]
struct DemoOffer {
    provider: String,
    sheet: OfferSheet,
}

#[derive(Deserialize)]
struct DemoService {
    publisher: String,
    sheet: ServiceSheet,
    used_by: Vec<String>,
    supported_by: Vec<String>,
}

/// One call open (a week ahead), one closed and ready to open with its bids,
/// both on the same terms (`spec`, without title and deadline).
#[derive(Deserialize)]
struct DemoCalls {
    spec: serde_json::Value,
    open: DemoCall,
    closed: DemoCall,
}

#[derive(Deserialize)]
struct DemoCall {
    title: String,
    buyer: String,
    #[serde(default)]
    bids: Vec<DemoBid>,
}

#[derive(Deserialize)]
struct DemoBid {
    supplier: String,
    offer: String,
    prices: serde_json::Value,
    answers: serde_json::Value,
}

fn ecosystem() -> ServiceResult<Ecosystem> {
    serde_json::from_str(include_str!("demo.json"))
        .map_err(|e| ServiceError::Internal(format!("demo data: {e}")))
}

/// The id of the demo organisation whose owner has this e-mail.
fn org_of(ids: &HashMap<String, OrgId>, email: &str) -> ServiceResult<OrgId> {
    ids.get(email)
        .copied()
        .ok_or_else(|| ServiceError::Internal(format!("demo data: no organisation {email}")))
}

impl Catalogue {
    /// Fills an empty platform with the demo ecosystem; writes the demo
    /// accounts' logins to `DATA_DIR/demo-credentials.txt` (mode 0600) and
    /// returns its path. Does nothing (returns `None`) on a platform that
    /// already has organisations of its own.
    pub async fn seed_demo(&self, data_dir: &Path) -> ServiceResult<Option<PathBuf>> {
        let platform = self.platform().clone();
        if identity::count_orgs(&mut *platform.db().acquire().await?).await? > 1 {
            return Ok(None);
        }
        let demo = ecosystem()?;
        let root = Principal::Root {
            token: TokenId::new(),
        };
        let meta = RequestMeta {
            source: "demo".into(),
        };
        for r in &demo.regions {
            self.declare_region(&root, &meta, &r.name, &r.location, &r.jurisdiction)
                .await?;
        }
        let mut ids = HashMap::new();
        let mut credentials = String::from(
            "# Demo accounts of this Nuage platform (fictional organisations).\n# e-mail\tpassword\torganisation\n",
        );
        for o in demo.organisations {
            let org = platform
                .create_org(
                    &root,
                    &meta,
                    NewOrg {
                        name: o.name.clone(),
                        kind: o.kind,
                        siret: o.siret,
                        vat_number: None,
                        country: None,
                    },
                )
                .await?;
            let password = secret::random_token(12);
            platform
                .create_user(
                    &root,
                    &meta,
                    org.id,
                    NewUser {
                        email: o.email.clone(),
                        password: password.clone(),
                        display_name: None,
                    },
                    Role::Owner,
                )
                .await?;
            credentials.push_str(&format!("{}\t{password}\t{}\n", o.email, o.name));
            if let Some(profile) = o.profile {
                self.save_profile(&root, &meta, org.id, profile).await?;
                self.publish_demo_sheet(&root, &meta, Sheet::Profile, &org.id.to_string(), o.grant)
                    .await?;
            }
            ids.insert(o.email, org.id);
        }
        let mut offers = HashMap::new();
        for o in demo.offers {
            let provider = org_of(&ids, &o.provider)?;
            let name = o.sheet.name.clone();
            let saved = self
                .save_offer(&root, &meta, provider, None, o.sheet)
                .await?;
            self.publish_demo_sheet(&root, &meta, Sheet::Offer, &saved.id, Grant::default())
                .await?;
            offers.insert(name, saved.id);
        }
        for s in demo.services {
            let publisher = org_of(&ids, &s.publisher)?;
            let saved = self
                .save_service(&root, &meta, publisher, None, s.sheet)
                .await?;
            self.publish_demo_sheet(&root, &meta, Sheet::Service, &saved.id, Grant::default())
                .await?;
            for (relation, orgs) in [
                (Relation::Uses, s.used_by),
                (Relation::Supports, s.supported_by),
            ] {
                for email in orgs {
                    self.declare(
                        &root,
                        &meta,
                        relation,
                        &saved.id,
                        org_of(&ids, &email)?,
                        true,
                    )
                    .await?;
                }
            }
        }
        // Their opening keys go to the credentials file (in real life they
        // stay on the buyer's machine).
        let keys = self
            .seed_demo_tenders(&root, &meta, demo.calls_for_tender, &ids, &offers)
            .await?;
        credentials.push_str(
            "\n# Opening keys of the demo's calls for tender (nuage tender open --key-file FILE,\n# with the key's line saved in FILE)\n",
        );
        for (title, key) in keys {
            credentials.push_str(&format!("# {title}\n{key}\n"));
        }
        let path = data_dir.join("demo-credentials.txt");
        write_private(&path, credentials.as_bytes())
            .map_err(|e| ServiceError::Internal(format!("{}: {e}", path.display())))?;
        Ok(Some(path))
    }

    /// Sends a demo sheet to review and publishes it, granting `grant`.
    async fn publish_demo_sheet(
        &self,
        root: &Principal,
        meta: &RequestMeta,
        kind: Sheet,
        id: &str,
        grant: Grant,
    ) -> ServiceResult<()> {
        self.move_own_sheet(root, meta, kind, id, Publication::InReview)
            .await?;
        let verdict = Verdict {
            decision: Decision::Publish,
            note: None,
            grant,
        };
        self.review(root, meta, kind, id, verdict).await?;
        Ok(())
    }

    /// The demo's calls for tender; returns (title, opening key) of each.
    async fn seed_demo_tenders(
        &self,
        root: &Principal,
        meta: &RequestMeta,
        calls: DemoCalls,
        ids: &HashMap<String, OrgId>,
        offers: &HashMap<String, String>,
    ) -> ServiceResult<Vec<(String, String)>> {
        use age::secrecy::ExposeSecret;
        let now = self.now_ms();
        let spec = |title: &str, deadline: i64| -> ServiceResult<TenderSpec> {
            let mut spec = calls.spec.clone();
            spec["title"] = title.into();
            spec["deadline_ms"] = deadline.into();
            sheet(spec)
        };
        let mut keys = Vec::new();
        let open = &calls.open;
        let t = self
            .create_tender(
                root,
                meta,
                org_of(ids, &open.buyer)?,
                spec(&open.title, now + 7 * DAY_MS)?,
            )
            .await?;
        let key = age::x25519::Identity::generate();
        self.publish_tender(root, meta, &t.id, &key.to_public().to_string(), None)
            .await?;
        keys.push((
            format!("{}: {}", open.title, t.id),
            key.to_string().expose_secret().to_owned(),
        ));

        let closed = &calls.closed;
        let t = self
            .create_tender(
                root,
                meta,
                org_of(ids, &closed.buyer)?,
                spec(&closed.title, now + DAY_MS)?,
            )
            .await?;
        let key = age::x25519::Identity::generate();
        let recipient = key.to_public();
        self.publish_tender(root, meta, &t.id, &recipient.to_string(), None)
            .await?;
        for b in &closed.bids {
            let offer = offers.get(&b.offer).ok_or_else(|| {
                ServiceError::Internal(format!("demo data: no offer {}", b.offer))
            })?;
            let bid = json!({"tender_id": t.id, "lots": [{"lot": 1, "offer_id": offer,
                "prices": b.prices, "answers": b.answers}]});
            let sealed = age::encrypt(&recipient, bid.to_string().as_bytes())
                .map_err(|e| ServiceError::Internal(format!("sealing a demo bid: {e}")))?;
            self.submit_bid(root, meta, &t.id, org_of(ids, &b.supplier)?, &sealed)
                .await?;
        }
        // As if a day had passed: the deadline is behind, the bids wait.
        let mut spec = t.spec.clone();
        spec.deadline_ms = now - 3_600_000;
        tenders_repo::set_deadline(
            &mut *self.platform().db().acquire().await?,
            &t.id,
            spec.deadline_ms,
            &to_json(&spec)?,
        )
        .await?;
        keys.push((
            format!("{}: {}", closed.title, t.id),
            key.to_string().expose_secret().to_owned(),
        ));
        Ok(keys)
    }
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `demo.json` reads, and every organisation and offer it names exists
    /// in it: a mistake there fails here, not at `serve --demo`.
    #[test]
    fn the_demo_data_reads_and_names_only_what_it_defines() {
        let demo = ecosystem().expect("demo.json reads");
        let ids: HashMap<String, OrgId> = demo
            .organisations
            .iter()
            .map(|o| (o.email.clone(), OrgId::new()))
            .collect();
        assert_eq!(
            ids.len(),
            demo.organisations.len(),
            "one owner per organisation"
        );
        let offers: Vec<&str> = demo.offers.iter().map(|o| o.sheet.name.as_str()).collect();
        let mut named: Vec<&str> = demo.offers.iter().map(|o| o.provider.as_str()).collect();
        for s in &demo.services {
            named.push(&s.publisher);
            named.extend(s.used_by.iter().chain(&s.supported_by).map(String::as_str));
        }
        let calls = &demo.calls_for_tender;
        named.extend([calls.open.buyer.as_str(), calls.closed.buyer.as_str()]);
        for b in &calls.closed.bids {
            named.push(&b.supplier);
            assert!(offers.contains(&b.offer.as_str()), "no offer {}", b.offer);
        }
        for email in named {
            org_of(&ids, email).expect("a demo organisation");
        }
        let regions: Vec<String> = demo.regions.iter().map(|r| r.name.clone()).collect();
        for o in demo.offers {
            o.sheet.validated(&regions).expect("a valid offer");
        }
        for o in demo.organisations {
            if let Some(p) = o.profile {
                p.validated().expect("a valid profile");
            }
        }
        for s in demo.services {
            s.sheet.validated().expect("a valid service");
        }
        let mut spec = calls.spec.clone();
        spec["title"] = "t".into();
        spec["deadline_ms"] = 0.into();
        sheet::<TenderSpec>(spec).expect("a call's terms");
    }
}
