//! The demo ecosystem of `nuage serve --demo`, seeded through every
//! context's use cases: fictional providers in
//! several regions with their certifications and prices, publishers with
//! their applications, organisations that use them. Every name is invented.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use nuage_db::repo::catalogue::{Relation, Sheet};
use nuage_db::repo::identity;
use nuage_db::repo::tenders as tenders_repo;
use nuage_domain::catalogue::{OfferSheet, Profile, Publication, ServiceSheet};
use nuage_domain::ids::{OrgId, TokenId};
use nuage_domain::org::Role;
use nuage_domain::tender::{DAY_MS, TenderSpec};
use serde::Deserialize;
use serde_json::json;

use nuage_market::{Decision, Grant, Verdict, to_json};

use crate::Procurement;
use nuage_service::accounts::{NewOrg, NewUser};
use nuage_service::keys::secret;
use nuage_service::{Principal, RequestMeta, ServiceError, ServiceResult};

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

impl Procurement {
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
            self.catalogue()
                .declare_region(&root, &meta, &r.name, &r.location, &r.jurisdiction)
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
                self.catalogue()
                    .save_profile(&root, &meta, org.id, profile)
                    .await?;
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
                .catalogue()
                .save_offer(&root, &meta, provider, None, o.sheet)
                .await?;
            self.publish_demo_sheet(&root, &meta, Sheet::Offer, &saved.id, Grant::default())
                .await?;
            offers.insert(name, saved.id);
        }
        for s in demo.services {
            let publisher = org_of(&ids, &s.publisher)?;
            let saved = self
                .catalogue()
                .save_service(&root, &meta, publisher, None, s.sheet)
                .await?;
            self.publish_demo_sheet(&root, &meta, Sheet::Service, &saved.id, Grant::default())
                .await?;
            for (relation, orgs) in [
                (Relation::Uses, s.used_by),
                (Relation::Supports, s.supported_by),
            ] {
                for email in orgs {
                    self.catalogue()
                        .declare(
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
        self.catalogue()
            .move_own_sheet(root, meta, kind, id, Publication::InReview)
            .await?;
        let verdict = Verdict {
            decision: Decision::Publish,
            note: None,
            grant,
        };
        self.catalogue()
            .review(root, meta, kind, id, verdict)
            .await?;
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
            serde_json::from_value(spec)
                .map_err(|e| ServiceError::Internal(format!("demo data: {e}")))
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
        serde_json::from_value::<TenderSpec>(spec).expect("a call's terms");
    }
}
