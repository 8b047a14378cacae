//! The house provider (the operator's own offers, created on first start)
//! and the demo ecosystem of `nuage serve --demo`: fictional providers in
//! several regions with their certifications and prices, publishers with
//! their applications, organisations that use them. Every name is invented.

use std::path::{Path, PathBuf};

use nuage_db::repo::catalogue::{self as repo, Relation, RolesRow, Sheet, SheetRow};
use nuage_db::repo::tenders as tenders_repo;
use nuage_db::repo::{identity, settings};
use nuage_domain::catalogue::{OfferSheet, Profile, Publication, ServiceSheet};
use nuage_domain::ids::{OrgId, TokenId};
use nuage_domain::org::Role;
use nuage_domain::tender::{DAY_MS, TenderSpec};
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

fn publish(grant: Grant) -> Verdict {
    Verdict {
        decision: Decision::Publish,
        note: None,
        grant,
    }
}

struct DemoOrg {
    name: &'static str,
    kind: &'static str,
    email: &'static str,
    profile: Option<serde_json::Value>,
    grant: Grant,
}

fn cert(scheme: &str, issuer: &str, scope: &str) -> serde_json::Value {
    json!({"scheme": scheme, "issuer": issuer, "scope": scope, "valid_from": "2025-01-15", "valid_until": "2028-01-14"})
}

fn profile(
    legal_name: &str,
    siren: Option<&str>,
    country: &str,
    description: &str,
    eu_share: &str,
    certifications: Vec<serde_json::Value>,
    email: &str,
) -> serde_json::Value {
    json!({
        "legal_name": legal_name, "siren": siren, "headquarters_country": country,
        "description": description,
        "capital": {"eu_share_percent": eu_share, "controlled_by": "Fondateurs et salariés (fictif)"},
        "extra_eu_exposure": {"exposed": eu_share != "100", "statement": if eu_share == "100" {
            "Aucune entité hors UE ne contrôle la société ; aucune loi extra-européenne ne s'applique aux données."
        } else {
            "Un actionnaire minoritaire hors UE ; les données restent dans l'UE."
        }},
        "certifications": certifications,
        "contact_email": email,
        "website": null,
    })
}

fn offer(
    (name, description): (&str, &str),
    category: &str,
    regions: &[&str],
    certifications: &[&str],
    capacity_gb: Option<u64>,
    availability: &str,
    price: serde_json::Value,
) -> serde_json::Value {
    json!({
        "name": name, "description": description, "category": category,
        "regions": regions, "certifications": certifications, "capacity_gb": capacity_gb,
        "sla": {"availability_percent": availability, "support_hours": "24/7", "rto_hours": 4, "rpo_hours": 1},
        "reversibility": {"export_formats": ["S3", "tar"], "notice_days": 30},
        "price": price,
    })
}

fn service(
    name: &str,
    description: &str,
    category: &str,
    licence: &str,
    deployments: &[&str],
) -> serde_json::Value {
    json!({
        "name": name, "description": description, "category": category, "licence": licence,
        "deployments": deployments, "data_locations": ["FR"], "website": null,
    })
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
        let root = Principal::Root {
            token: TokenId::new(),
        };
        let meta = RequestMeta {
            source: "demo".into(),
        };
        for (name, location, jurisdiction) in [
            ("fr-lyon", "Lyon, France", "FR"),
            ("fr-lille", "Lille, France", "FR"),
            ("de-fra", "Francfort, Allemagne", "DE"),
            ("nl-ams", "Amsterdam, Pays-Bas", "NL"),
        ] {
            self.declare_region(&root, &meta, name, location, jurisdiction)
                .await?;
        }
        let provider = Grant {
            provider: true,
            publisher: false,
        };
        let publisher = Grant {
            provider: false,
            publisher: true,
        };
        let orgs = [
            DemoOrg {
                name: "Cumulus Hébergement",
                kind: "company",
                email: "admin@cumulus.example",
                profile: Some(profile(
                    "Cumulus Hébergement SAS",
                    Some("901000018"),
                    "FR",
                    "Hébergeur lyonnais : machines virtuelles, stockage objet et sauvegarde dans deux centres de données en Auvergne-Rhône-Alpes.",
                    "100",
                    vec![
                        cert(
                            "SecNumCloud",
                            "ANSSI",
                            "IaaS et stockage objet, région fr-lyon",
                        ),
                        cert(
                            "ISO 27001",
                            "Bureau de certification fictif",
                            "Exploitation des centres de données",
                        ),
                    ],
                    "contact@cumulus.example",
                )),
                grant: provider,
            },
            DemoOrg {
                name: "Stratus Données",
                kind: "company",
                email: "admin@stratus.example",
                profile: Some(profile(
                    "Stratus Données SA",
                    Some("902000025"),
                    "FR",
                    "Hébergeur de données de santé à Lille : stockage, sauvegarde et hébergement d'applications métier.",
                    "100",
                    vec![
                        cert(
                            "HDS",
                            "Organisme certificateur fictif",
                            "Hébergement de données de santé",
                        ),
                        cert(
                            "ISO 27001",
                            "Organisme certificateur fictif",
                            "Hébergement et infogérance",
                        ),
                    ],
                    "contact@stratus.example",
                )),
                grant: provider,
            },
            DemoOrg {
                name: "Altocloud",
                kind: "company",
                email: "admin@altocloud.example",
                profile: Some(profile(
                    "Altocloud GmbH",
                    None,
                    "DE",
                    "Cloud provider in Frankfurt and Amsterdam: object storage and compute at low prices.",
                    "80",
                    vec![cert(
                        "ISO 27001",
                        "Fictional certification body",
                        "Cloud infrastructure",
                    )],
                    "contact@altocloud.example",
                )),
                grant: provider,
            },
            DemoOrg {
                name: "Coopérative Logiciels Libres",
                kind: "company",
                email: "admin@cooplibre.example",
                profile: Some(profile(
                    "Coopérative Logiciels Libres SCOP",
                    Some("903000032"),
                    "FR",
                    "Éditeur coopératif de logiciels libres de gestion : paie, comptabilité, messagerie.",
                    "100",
                    vec![],
                    "contact@cooplibre.example",
                )),
                grant: Grant {
                    provider: true,
                    publisher: true,
                },
            },
            DemoOrg {
                name: "Éditions Numériques de l'Ouest",
                kind: "company",
                email: "admin@eno.example",
                profile: Some(profile(
                    "Éditions Numériques de l'Ouest SAS",
                    Some("904000049"),
                    "FR",
                    "Éditeur d'applications pour l'éducation et la santé.",
                    "100",
                    vec![],
                    "contact@eno.example",
                )),
                grant: publisher,
            },
            DemoOrg {
                name: "Commune de Belleville-sur-Loire (fictive)",
                kind: "public",
                email: "dsi@belleville.example",
                profile: None,
                grant: Grant::default(),
            },
            DemoOrg {
                name: "Centre hospitalier de Valmont (fictif)",
                kind: "public",
                email: "dsi@ch-valmont.example",
                profile: None,
                grant: Grant::default(),
            },
            DemoOrg {
                name: "Atelier Exemple SARL",
                kind: "company",
                email: "gerance@atelier.example",
                profile: None,
                grant: Grant::default(),
            },
        ];
        let mut ids = Vec::new();
        let mut credentials = String::from(
            "# Demo accounts of this Nuage platform (fictional organisations).\n# e-mail\tpassword\torganisation\n",
        );
        for o in &orgs {
            let org = platform
                .create_org(
                    &root,
                    &meta,
                    NewOrg {
                        name: o.name.into(),
                        kind: o.kind.into(),
                        // Public bodies need one to run calls for tender.
                        siret: match o.email {
                            "dsi@belleville.example" => Some("21450001900010".into()),
                            "dsi@ch-valmont.example" => Some("26590001900018".into()),
                            _ => None,
                        },
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
                        email: o.email.into(),
                        password: password.clone(),
                        display_name: None,
                    },
                    Role::Owner,
                )
                .await?;
            credentials.push_str(&format!("{}\t{password}\t{}\n", o.email, o.name));
            if let Some(p) = &o.profile {
                self.save_profile(&root, &meta, org.id, sheet(p.clone())?)
                    .await?;
                self.move_own_sheet(
                    &root,
                    &meta,
                    Sheet::Profile,
                    &org.id.to_string(),
                    Publication::InReview,
                )
                .await?;
                self.review(
                    &root,
                    &meta,
                    Sheet::Profile,
                    &org.id.to_string(),
                    publish(o.grant),
                )
                .await?;
            }
            ids.push(org.id);
        }
        let offers: [(usize, serde_json::Value); 8] = [
            (
                0,
                offer(
                    (
                        "Stockage objet souverain",
                        "Stockage objet S3 qualifié SecNumCloud, répliqué sur deux sites lyonnais.",
                    ),
                    "storage",
                    &["fr-lyon"],
                    &["SecNumCloud", "ISO 27001"],
                    None,
                    "99.95",
                    json!({"per_gb_month": "0.012", "per_1k_class_a": "0.005", "per_1k_class_b": "0.0004", "per_gb_egress": "0"}),
                ),
            ),
            (
                0,
                offer(
                    (
                        "Hébergement web mutualisé",
                        "Hébergement de sites web statiques et PHP, certificat TLS inclus.",
                    ),
                    "hosting",
                    &["fr-lyon"],
                    &["SecNumCloud"],
                    Some(50),
                    "99.9",
                    json!({"monthly_fee": "7.5", "included_gb": 50}),
                ),
            ),
            (
                0,
                offer(
                    (
                        "Machines virtuelles qualifiées",
                        "Machines virtuelles sur une infrastructure qualifiée SecNumCloud.",
                    ),
                    "compute",
                    &["fr-lyon"],
                    &["SecNumCloud"],
                    None,
                    "99.95",
                    json!({"monthly_fee": "39", "commitment_months": 12}),
                ),
            ),
            (
                1,
                offer(
                    (
                        "Stockage de données de santé",
                        "Stockage objet certifié HDS pour les établissements de santé.",
                    ),
                    "storage",
                    &["fr-lille"],
                    &["HDS", "ISO 27001"],
                    Some(5000),
                    "99.9",
                    json!({"monthly_fee": "25", "included_gb": 500, "per_gb_month": "0.02", "tiers": [{"from_gb": 2000, "per_gb_month": "0.015"}]}),
                ),
            ),
            (
                1,
                offer(
                    (
                        "Sauvegarde externalisée",
                        "Sauvegarde chiffrée et rétention de 30 jours.",
                    ),
                    "storage",
                    &["fr-lille"],
                    &["ISO 27001"],
                    Some(2000),
                    "99.5",
                    json!({"monthly_fee": "12", "included_gb": 200, "per_gb_month": "0.009"}),
                ),
            ),
            (
                2,
                offer(
                    (
                        "Object Storage Standard",
                        "S3 object storage in Frankfurt or Amsterdam, billed per use.",
                    ),
                    "storage",
                    &["de-fra", "nl-ams"],
                    &["ISO 27001"],
                    None,
                    "99.9",
                    json!({"per_gb_month": "0.0049", "per_1k_class_a": "0.0045", "per_1k_class_b": "0.00036", "per_gb_egress": "0.008"}),
                ),
            ),
            (
                2,
                offer(
                    ("Compute Small", "2 vCPU, 4 GB RAM virtual machines."),
                    "compute",
                    &["de-fra"],
                    &["ISO 27001"],
                    None,
                    "99.9",
                    json!({"monthly_fee": "9.9"}),
                ),
            ),
            (
                3,
                offer(
                    (
                        "Paie Libre hébergée",
                        "Le logiciel de paie Paie Libre hébergé et maintenu par ses auteurs.",
                    ),
                    "payroll",
                    &["fr-lyon"],
                    &[],
                    None,
                    "99.5",
                    json!({"monthly_fee": "49", "commitment_months": 12}),
                ),
            ),
        ];
        let mut offer_ids = Vec::new();
        for (owner, o) in offers {
            let saved = self
                .save_offer(&root, &meta, ids[owner], None, sheet(o)?)
                .await?;
            offer_ids.push(saved.id.clone());
            self.move_own_sheet(&root, &meta, Sheet::Offer, &saved.id, Publication::InReview)
                .await?;
            self.review(
                &root,
                &meta,
                Sheet::Offer,
                &saved.id,
                publish(Grant::default()),
            )
            .await?;
        }
        let services: [(usize, serde_json::Value, &[usize], &[usize]); 5] = [
            (
                3,
                service(
                    "Paie Libre",
                    "Logiciel libre de paie conforme à la DSN, pour les collectivités et les PME.",
                    "payroll",
                    "AGPL-3.0-or-later",
                    &["nuage", "provider_cloud", "on_premises"],
                ),
                &[5, 7],
                &[0, 3],
            ),
            (
                3,
                service(
                    "Compta Ouverte",
                    "Progiciel de gestion intégré libre : comptabilité, facturation, achats.",
                    "erp",
                    "AGPL-3.0-or-later",
                    &["provider_cloud", "on_premises"],
                ),
                &[7],
                &[3],
            ),
            (
                3,
                service(
                    "Messagerie Azur",
                    "Messagerie et agenda partagés, webmail et synchronisation mobile.",
                    "mail",
                    "GPL-3.0-or-later",
                    &["provider_cloud", "on_premises"],
                ),
                &[5],
                &[0, 1],
            ),
            (
                4,
                service(
                    "Classe Ouverte",
                    "Espace numérique de travail pour les collèges et lycées.",
                    "education",
                    "EUPL-1.2",
                    &["provider_cloud"],
                ),
                &[5],
                &[0],
            ),
            (
                4,
                service(
                    "Dossier Patient Valmont",
                    "Dossier patient informatisé pour les établissements de santé.",
                    "health",
                    "proprietary",
                    &["provider_cloud", "on_premises"],
                ),
                &[6],
                &[1],
            ),
        ];
        for (owner, s, users, supporters) in services {
            let saved = self
                .save_service(&root, &meta, ids[owner], None, sheet::<ServiceSheet>(s)?)
                .await?;
            self.move_own_sheet(
                &root,
                &meta,
                Sheet::Service,
                &saved.id,
                Publication::InReview,
            )
            .await?;
            self.review(
                &root,
                &meta,
                Sheet::Service,
                &saved.id,
                publish(Grant::default()),
            )
            .await?;
            for u in users {
                self.declare(&root, &meta, Relation::Uses, &saved.id, ids[*u], true)
                    .await?;
            }
            for p in supporters {
                self.declare(&root, &meta, Relation::Supports, &saved.id, ids[*p], true)
                    .await?;
            }
        }
        // Calls for tender: one open (a week ahead), one closed and ready to
        // open, with bids of two providers; their opening keys go to the
        // credentials file (in real life they stay on the buyer's machine).
        let keys = self
            .seed_demo_tenders(
                &root,
                &meta,
                ids[5],
                ids[6],
                &[(ids[0], &offer_ids[0]), (ids[1], &offer_ids[4])],
            )
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
}

impl Catalogue {
    /// The demo's calls for tender; returns (title, opening key) of each.
    async fn seed_demo_tenders(
        &self,
        root: &Principal,
        meta: &RequestMeta,
        open_buyer: OrgId,
        closed_buyer: OrgId,
        bidders: &[(OrgId, &String)],
    ) -> ServiceResult<Vec<(String, String)>> {
        use age::secrecy::ExposeSecret;
        let now = self.now_ms();
        let call = |title: &str, deadline: i64| -> ServiceResult<TenderSpec> {
            sheet(json!({
                "title": title,
                "description": "Appel d'offres fictif de la démonstration : stockage objet compatible S3 des données de l'établissement, chiffré, en France.",
                "cpv": "72317000-0",
                "estimated_value": "48000",
                "place": {"code": "FR", "kind": "country"},
                "duration_months": 36,
                "price_form": "unit",
                "ccag": "information_technology",
                "procedure": "adapted",
                "deadline_ms": deadline,
                "lots": [{
                    "title": "Stockage objet",
                    "category": "storage",
                    "usage_profile": {"stored_gb": "2000", "class_a_requests": 200000, "class_b_requests": 2000000, "egress_gb": "100"},
                    "requirements": [
                        {"rule": "jurisdiction", "allowed": ["FR"]},
                        {"rule": "reversibility_formats", "required": ["S3"]},
                        {"rule": "max_price", "monthly_eur": "200"},
                    ],
                }],
                "criteria": [
                    {"name": "prix", "kind": "price", "weight": 60},
                    {"name": "sécurité", "kind": "technical", "weight": 40, "scale_max": 20},
                ],
            }))
        };
        let mut keys = Vec::new();
        let open_title = "Hébergement des archives municipales (démonstration)";
        let t = self
            .create_tender(root, meta, open_buyer, call(open_title, now + 7 * DAY_MS)?)
            .await?;
        let key = age::x25519::Identity::generate();
        self.publish_tender(root, meta, &t.id, &key.to_public().to_string(), None)
            .await?;
        keys.push((
            format!("{open_title}: {}", t.id),
            key.to_string().expose_secret().to_owned(),
        ));

        let closed_title = "Stockage des sauvegardes hospitalières (démonstration)";
        let t = self
            .create_tender(root, meta, closed_buyer, call(closed_title, now + DAY_MS)?)
            .await?;
        let key = age::x25519::Identity::generate();
        let recipient = key.to_public();
        self.publish_tender(root, meta, &t.id, &recipient.to_string(), None)
            .await?;
        for (i, (bidder, offer)) in bidders.iter().enumerate() {
            let (fee, per_gb) = [("20", "0.012"), ("12", "0.009")][i % 2];
            let bid = json!({"tender_id": t.id, "lots": [{"lot": 1, "offer_id": offer,
                "prices": {"monthly_fee": fee, "per_gb_month": per_gb,
                           "per_1k_class_a": "0.005", "per_1k_class_b": "0.0004", "per_gb_egress": "0"},
                "answers": {"sécurité": "Chiffrement au repos par locataire, clés hors de portée de l'exploitant."}}]});
            let sealed = age::encrypt(&recipient, bid.to_string().as_bytes())
                .map_err(|e| ServiceError::Internal(format!("sealing a demo bid: {e}")))?;
            self.submit_bid(root, meta, &t.id, *bidder, &sealed).await?;
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
            format!("{closed_title}: {}", t.id),
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
