//! Calls for tender as open data: every published call as OCDS 1.1.5
//! releases (publication, cancellation, each award, each signed contract),
//! and every signed contract as a DECP 2.0.3 record (`marche`). Public, no
//! account needed; both validate against the schemas in `schemas/`.

use nuage_db::AnyConnection;
use nuage_db::repo::identity::{self, OrgRow};
use nuage_db::repo::tenders::{self as repo, AwardRow, TenderRow};
use nuage_domain::tender::TenderSpec;
use serde_json::{Value, json};

use nuage_market::parse_doc;

use crate::Procurement;
use nuage_service::{ServiceError, ServiceResult};

/// The prefix of this platform's Open Contracting IDs.
pub const OCID_PREFIX: &str = "ocds-nuage";

/// Licence Ouverte 2.0 (Etalab), as for the directory's open data.
const LICENCE: &str = "https://www.etalab.gouv.fr/licence-ouverte-open-licence/";

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn day(ms: i64) -> String {
    rfc3339(ms).chars().take(10).collect()
}

fn party(org: &OrgRow, roles: &[&str]) -> Value {
    let mut p = json!({"id": org.id, "name": org.name, "roles": roles});
    if let Some(siret) = &org.siret {
        p["identifier"] = json!({"id": siret, "legalName": org.name});
    }
    p
}

/// The euros of an amount string, as a JSON number.
fn amount(text: &str) -> Value {
    text.parse::<f64>().map(Value::from).unwrap_or(Value::Null)
}

impl Procurement {
    async fn org_row(&self, conn: &mut AnyConnection, id: &str) -> ServiceResult<OrgRow> {
        identity::get_org(conn, id)
            .await?
            .ok_or(ServiceError::NotFound("organisation"))
    }

    /// The OCDS releases of one published call, oldest first.
    async fn releases(&self, conn: &mut AnyConnection, t: &TenderRow) -> ServiceResult<Vec<Value>> {
        let spec: TenderSpec = parse_doc(&t.spec)?;
        let Some(published) = t.published_at else {
            return Ok(Vec::new());
        };
        let buyer = self.org_row(conn, &t.buyer_org_id).await?;
        let awards = repo::awards(conn, &t.id).await?;
        let ocid = format!("{OCID_PREFIX}-{}", t.id);
        let versions = repo::versions(conn, &t.id).await?;
        let public_url = &self.platform().settings().public_url;
        let documents: Vec<Value> = repo::documents(conn, &t.id)
            .await?
            .iter()
            .map(|d| {
                json!({
                    "id": d.id, "documentType": "biddingDocuments", "title": d.name,
                    "format": d.media_type, "datePublished": rfc3339(published),
                    "url": format!("{public_url}/api/v1/tenders/{}/documents/{}", t.id, d.id),
                })
            })
            .collect();
        let with_documents = |mut tender: Value| {
            if !documents.is_empty() {
                tender["documents"] = json!(documents);
            }
            tender
        };
        let mut tender = with_documents(tender_json(&t.id, &spec, &buyer, published));
        let mut parties = vec![party(&buyer, &["buyer", "procuringEntity"])];
        let base = |id: String, date: i64, tag: &str, tender: &Value, parties: &[Value]| {
            json!({
                "ocid": ocid, "id": id, "date": rfc3339(date), "tag": [tag],
                "initiationType": "tender", "language": "fr",
                "buyer": {"id": buyer.id, "name": buyer.name},
                "parties": parties, "tender": tender,
            })
        };
        let first = match versions.first() {
            Some(v) => with_documents(tender_json(&t.id, &parse_doc(&v.spec)?, &buyer, published)),
            None => tender.clone(),
        };
        let mut out = vec![base(
            format!("{}-tender", t.id),
            published,
            "tender",
            &first,
            &parties,
        )];
        let mut amendments = Vec::new();
        for v in versions.iter().skip(1) {
            let changes: Vec<String> = parse_doc(&v.changes)?;
            amendments.push(json!({
                "id": format!("{}-v{}", t.id, v.version),
                "date": rfc3339(v.at),
                "rationale": v.summary,
                "description": format!("Modifié : {}", changes.join(", ")),
                "releaseID": format!("{}-amendment-{}", t.id, v.version),
            }));
            let mut amended =
                with_documents(tender_json(&t.id, &parse_doc(&v.spec)?, &buyer, published));
            amended["amendments"] = json!(amendments);
            out.push(base(
                format!("{}-amendment-{}", t.id, v.version),
                v.at,
                "tenderAmendment",
                &amended,
                &parties,
            ));
        }
        if !amendments.is_empty() {
            tender["amendments"] = json!(amendments);
        }
        let mut award_views = Vec::new();
        let mut contract_views = Vec::new();
        for a in &awards {
            let supplier = self.org_row(conn, &a.supplier_org_id).await?;
            if !parties.iter().any(|p| p["id"] == supplier.id.as_str()) {
                parties.push(party(&supplier, &["tenderer", "supplier"]));
            }
            award_views.push(award_json(a, &supplier, &spec));
            if a.signed_at.is_some() {
                contract_views.push(contract_json(a, &spec));
            }
        }
        if !awards.is_empty() {
            let last = awards
                .iter()
                .map(|a| a.awarded_at)
                .max()
                .unwrap_or(published);
            let mut r = base(format!("{}-award", t.id), last, "award", &tender, &parties);
            r["awards"] = json!(award_views);
            out.push(r);
        }
        if let Some(signed) = awards.iter().filter_map(|a| a.signed_at).max() {
            tender["status"] = json!(if awards.len() == spec.lots.len() {
                "complete"
            } else {
                "active"
            });
            let mut r = base(
                format!("{}-contract", t.id),
                signed,
                "contract",
                &tender,
                &parties,
            );
            r["awards"] = json!(award_views);
            r["contracts"] = json!(contract_views);
            out.push(r);
        }
        if let Some(cancelled) = t.cancelled_at {
            tender["status"] = json!("cancelled");
            tender["statusDetails"] = json!(t.cancel_reason);
            let mut r = base(
                format!("{}-cancellation", t.id),
                cancelled,
                "tenderCancellation",
                &tender,
                &parties,
            );
            if !award_views.is_empty() {
                r["awards"] = json!(award_views);
            }
            out.push(r);
        }
        Ok(out)
    }

    /// An OCDS release package: one call's releases, or every published
    /// call's.
    pub async fn ocds_package(&self, tender_id: Option<&str>) -> ServiceResult<Value> {
        let mut conn = self.platform().db().acquire().await?;
        let rows = match tender_id {
            Some(id) => vec![
                repo::get_tender(&mut conn, id)
                    .await?
                    .filter(|t| t.state != "draft")
                    .ok_or(ServiceError::NotFound("call for tender"))?,
            ],
            None => repo::list_tenders(&mut conn, None, "", i64::MAX).await?,
        };
        let mut releases = Vec::new();
        for row in &rows {
            releases.extend(self.releases(&mut conn, row).await?);
        }
        let house = self.org_row(&mut conn, &self.house().to_string()).await?;
        let public_url = &self.platform().settings().public_url;
        let uri = match tender_id {
            Some(id) => format!("{public_url}/api/v1/open-data/tenders/{id}/ocds.json"),
            None => format!("{public_url}/api/v1/open-data/ocds.json"),
        };
        Ok(json!({
            "uri": uri,
            "version": "1.1",
            "publishedDate": rfc3339(self.now_ms()),
            "publisher": {"name": house.name, "uri": public_url},
            "license": LICENCE,
            "publicationPolicy": format!("{public_url}/api/v1/open-data/ocds.json"),
            "releases": releases,
        }))
    }

    /// Every signed contract as DECP 2.0.3 (`{"marches": {"marche": […]}}`).
    pub async fn decp(&self) -> ServiceResult<Value> {
        let mut conn = self.platform().db().acquire().await?;
        let mut marches = Vec::new();
        for t in repo::list_tenders(&mut conn, None, "", i64::MAX).await? {
            let spec: TenderSpec = parse_doc(&t.spec)?;
            let buyer = self.org_row(&mut conn, &t.buyer_org_id).await?;
            let Some(buyer_siret) = buyer.siret.clone() else {
                continue;
            };
            for a in repo::awards(&mut conn, &t.id).await? {
                let Some(signed) = a.signed_at else {
                    continue;
                };
                let supplier = self.org_row(&mut conn, &a.supplier_org_id).await?;
                let received = repo::bid_lots(&mut conn, &t.id, a.lot).await?.len().max(1);
                let lot = &spec.lots[(a.lot - 1) as usize];
                let objet: String = format!("{} — lot {} : {}", spec.title, a.lot, lot.title)
                    .chars()
                    .take(1000)
                    .collect();
                marches.push(json!({
                    "id": decp_id(&t.id, a.lot),
                    "acheteur": {"id": buyer_siret},
                    "nature": "Marché",
                    "objet": objet,
                    "codeCPV": spec.cpv,
                    "techniques": {"technique": ["Sans objet"]},
                    "modalitesExecution": {"modaliteExecution": ["Sans objet"]},
                    "marcheInnovant": false,
                    "ccag": spec.ccag.decp(),
                    "offresRecues": received,
                    "attributionAvance": false,
                    "typeGroupementOperateurs": "Pas de groupement",
                    "procedure": spec.procedure.decp(),
                    "lieuExecution": {"code": spec.place.code, "typeCode": spec.place.kind.decp()},
                    "dureeMois": spec.duration_months,
                    "dateNotification": day(signed),
                    "datePublicationDonnees": day(signed),
                    "montant": amount(&a.amount),
                    "typesPrix": {"typePrix": ["Définitif ferme"]},
                    "formePrix": spec.price_form.decp(),
                    "sousTraitanceDeclaree": false,
                    "titulaires": [{"titulaire": titulaire(&supplier)}],
                    "considerationsSociales": {"considerationSociale": ["Pas de considération sociale"]},
                    "considerationsEnvironnementales": {"considerationEnvironnementale": ["Pas de considération environnementale"]},
                }));
            }
        }
        Ok(json!({"marches": {"marche": marches}}))
    }
}

/// The OCDS `tender` of a call as `spec` describes it.
fn tender_json(id: &str, spec: &TenderSpec, buyer: &OrgRow, published: i64) -> Value {
    let weights: Vec<String> = spec
        .criteria
        .iter()
        .map(|c| format!("{} {} %", c.name, c.weight))
        .collect();
    json!({
        "id": id,
        "title": spec.title,
        "description": spec.description,
        "status": "active",
        "procuringEntity": {"id": buyer.id, "name": buyer.name},
        "value": {"amount": amount(&spec.estimated_value.to_string()), "currency": "EUR"},
        "procurementMethod": "open",
        "procurementMethodDetails": spec.procedure.decp(),
        "mainProcurementCategory": "services",
        "awardCriteria": "ratedCriteria",
        "awardCriteriaDetails": format!(
            "Prix : plus bas prix / prix de l'offre × pondération. Critères : {}.",
            weights.join(", ")
        ),
        "submissionMethod": ["electronicSubmission"],
        "submissionMethodDetails": "Plis chiffrés (age, X25519) par le soumissionnaire avant envoi ; ouverts après la date limite.",
        "tenderPeriod": {"startDate": rfc3339(published), "endDate": rfc3339(spec.deadline_ms)},
        "contractPeriod": {"durationInDays": i64::from(spec.duration_months) * 30},
        "items": spec.lots.iter().enumerate().map(|(i, lot)| json!({
            "id": format!("lot-{}", i + 1),
            "description": lot.title,
            "classification": {"scheme": "CPV", "id": spec.cpv.split('-').next().unwrap_or_default()},
        })).collect::<Vec<_>>(),
    })
}

/// A DECP contract id: 16 characters, from the call's id and the lot.
pub fn decp_id(tender_id: &str, lot: i64) -> String {
    let simple: String = tender_id.chars().filter(|c| *c != '-').collect();
    format!("{}{:02}", &simple[..14.min(simple.len())], lot % 100)
}

/// The supplier as DECP names it: its SIRET, else its VAT number, else
/// outside the EU.
fn titulaire(org: &OrgRow) -> Value {
    match (&org.siret, &org.vat_number) {
        (Some(siret), _) => json!({"id": siret, "typeIdentifiant": "SIRET"}),
        (None, Some(vat)) => json!({"id": vat, "typeIdentifiant": "TVA"}),
        (None, None) => json!({"id": org.id, "typeIdentifiant": "HORS-UE"}),
    }
}

fn award_json(a: &AwardRow, supplier: &OrgRow, spec: &TenderSpec) -> Value {
    json!({
        "id": format!("{}-lot-{}", a.tender_id, a.lot),
        "title": format!("Lot {}", a.lot),
        "status": if a.signed_at.is_some() { "active" } else { "pending" },
        "date": rfc3339(a.awarded_at),
        "value": {"amount": amount(&a.amount), "currency": "EUR"},
        "suppliers": [{"id": supplier.id, "name": supplier.name}],
        "items": [{"id": format!("lot-{}", a.lot), "description": spec.lots[(a.lot - 1) as usize].title}],
        "contractPeriod": {"durationInDays": i64::from(spec.duration_months) * 30},
    })
}

fn contract_json(a: &AwardRow, spec: &TenderSpec) -> Value {
    let signed = a.signed_at.unwrap_or(a.awarded_at);
    json!({
        "id": format!("{}-lot-{}-contract", a.tender_id, a.lot),
        "awardID": format!("{}-lot-{}", a.tender_id, a.lot),
        "title": format!("Lot {}", a.lot),
        "status": "active",
        "dateSigned": rfc3339(signed),
        "value": {"amount": amount(&a.amount), "currency": "EUR"},
        "period": {"startDate": rfc3339(signed), "durationInDays": i64::from(spec.duration_months) * 30},
    })
}
