//! Issued invoices delivered to their buyers (the channel is
//! [`nuage_domain::invoice_delivery::Channel::for_buyer`]'s): French
//! businesses through the operator's plateforme agréée, public bodies
//! through Chorus Pro, others by e-mail with the Factur-X attached or by
//! their signed webhook with the UBL. A delivery is queued with its invoice,
//! in the same transaction, and sent by the `invoice-deliveries` job, which
//! takes each under a lease, keeps every attempt, and tries again with
//! backoff until it is delivered or given up.
//!
//! The plateforme agréée's interface, as Nuage calls it (docs/billing.md):
//! `POST {url}` with the Factur-X PDF as body (`application/pdf`),
//! `Authorization: Bearer {token}`, `Idempotency-Key: {invoice id}`,
//! `Nuage-Invoice-Number`, `Nuage-Seller-Siren`, `Nuage-Buyer-Siren`; a 2xx
//! answer whose JSON may name the platform's `id` for it.

use base64::Engine as _;
use nuage_db::repo::catalogue as webhooks;
use nuage_db::repo::deliveries::{self as store, AttemptRow, DeliveryRow};
use nuage_domain::invoice_delivery::{Channel, Status, refused_for_good, retry_in_ms};
use nuage_service::mail::{MailAttachment, MailOutcome};
use secrecy::{ExposeSecret, SecretString};

use super::*;

/// How long an attempt holds its delivery before another node may take it.
const LEASE_MS: i64 = 5 * 60_000;
/// Deliveries one run of the job sends at the most.
const BATCH: i64 = 50;

/// Where the operator's delivery platforms are.
#[derive(Clone, Default)]
pub struct DeliverySettings {
    pub pa: Option<PaSettings>,
    pub chorus_pro: Option<ChorusProSettings>,
}

/// The operator's plateforme agréée.
#[derive(Clone)]
pub struct PaSettings {
    /// Where invoices are posted.
    pub url: String,
    pub token: SecretString,
}

/// Chorus Pro through PISTE: an OAuth2 client and a technical account.
#[derive(Clone)]
pub struct ChorusProSettings {
    /// PISTE's token endpoint.
    pub token_url: String,
    /// The API's base, e.g. `https://api.piste.gouv.fr`.
    pub api_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub account_login: String,
    pub account_password: SecretString,
}

impl std::fmt::Debug for DeliverySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliverySettings")
            .field("pa", &self.pa.as_ref().map(|p| &p.url))
            .field("chorus_pro", &self.chorus_pro.as_ref().map(|c| &c.api_url))
            .finish_non_exhaustive()
    }
}

/// A delivery as both parties see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Delivery {
    pub id: String,
    pub channel: Channel,
    pub status: Status,
    pub attempts: Vec<Attempt>,
    /// When it is tried next, while pending.
    pub next_attempt_at_ms: Option<i64>,
    /// What the receiving platform calls it.
    pub remote_id: Option<String>,
    pub delivered_at_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attempt {
    pub at_ms: i64,
    pub ok: bool,
    pub detail: String,
}

/// What an attempt came to.
enum Outcome {
    Delivered {
        remote_id: Option<String>,
        detail: String,
    },
    /// Tried again later, unless `for_good`.
    Failed { for_good: bool, detail: String },
}

fn failed(detail: impl Into<String>) -> Outcome {
    Outcome::Failed {
        for_good: false,
        detail: detail.into(),
    }
}

impl Billing {
    /// Queues an issued invoice's delivery, in its transaction.
    pub(super) async fn queue_delivery(
        &self,
        tx: &mut AnyConnection,
        invoice: &NewInvoice,
    ) -> ServiceResult<()> {
        let buyer = identity::get_org(tx, &invoice.customer_id)
            .await?
            .ok_or(ServiceError::NotFound("organisation"))?;
        let has_webhook = webhooks::get_webhook(tx, &buyer.id).await?.is_some();
        let channel = Channel::for_buyer(OrgKind::parse(&buyer.kind)?, &buyer.country, has_webhook);
        store::insert(
            tx,
            &DeliveryRow {
                id: uuid::Uuid::now_v7().to_string(),
                invoice_id: invoice.id.clone(),
                channel: channel.as_str().into(),
                status: Status::Pending.as_str().into(),
                attempts: 0,
                next_attempt_at: invoice.issued_at,
                last_error: None,
                remote_id: None,
                delivered_at: None,
                created_at: invoice.issued_at,
            },
        )
        .await?;
        Ok(())
    }

    /// Sends the deliveries that are due; returns how many were delivered.
    pub async fn deliver_invoices(&self) -> ServiceResult<usize> {
        let now = self.now_ms();
        let due = store::due(&mut *self.platform().db().acquire().await?, now, BATCH).await?;
        let mut delivered = 0;
        for d in due {
            let mut conn = self.platform().db().acquire().await?;
            if !store::claim(&mut conn, &d.id, now, now + LEASE_MS).await? {
                continue;
            }
            drop(conn);
            let d = DeliveryRow {
                attempts: d.attempts + 1,
                ..d
            };
            let outcome = match Channel::parse(&d.channel) {
                Some(channel) => self.attempt(channel, &d).await?,
                None => Outcome::Failed {
                    for_good: true,
                    detail: format!("unknown channel {:?}", d.channel),
                },
            };
            let at = self.now_ms();
            let counted = match &outcome {
                Outcome::Delivered { .. } => "delivered",
                Outcome::Failed { .. } => "failed",
            };
            metrics::counter!("nuage_invoice_deliveries_total", "channel" => d.channel.clone(), "outcome" => counted)
                .increment(1);
            let mut tx = self.platform().db().begin_write().await?;
            match &outcome {
                Outcome::Delivered { remote_id, detail } => {
                    delivered += 1;
                    store::record(
                        &mut tx,
                        &d,
                        at,
                        Status::Delivered.as_str(),
                        at,
                        (true, detail),
                        remote_id.as_deref(),
                    )
                    .await?;
                }
                Outcome::Failed { for_good, detail } => {
                    let retry = if *for_good {
                        None
                    } else {
                        retry_in_ms(d.attempts)
                    };
                    let (status, next) = match retry {
                        Some(wait) => (Status::Pending, at + wait),
                        None => (Status::Failed, at),
                    };
                    tracing::warn!(delivery = %d.id, channel = %d.channel, attempt = d.attempts, status = status.as_str(), error = %detail, "an invoice's delivery failed");
                    store::record(
                        &mut tx,
                        &d,
                        at,
                        status.as_str(),
                        next,
                        (false, detail),
                        None,
                    )
                    .await?;
                }
            }
            tx.commit().await.map_err(nuage_db::DbError::from)?;
        }
        Ok(delivered)
    }

    /// One attempt of a delivery.
    async fn attempt(&self, channel: Channel, d: &DeliveryRow) -> ServiceResult<Outcome> {
        let (invoice, corrects) = match self.renderable(&Principal::System, &d.invoice_id).await {
            Ok(r) => r,
            // An invoice that no EN 16931 document can be made of (issued
            // without the seller's VAT number by an earlier version).
            Err(ServiceError::Conflict(why)) => {
                return Ok(Outcome::Failed {
                    for_good: true,
                    detail: why,
                });
            }
            Err(e) => return Err(e),
        };
        let rendering = nuage_facturx::Rendering {
            invoice: &invoice,
            corrects_number: corrects.as_deref(),
        };
        let pdf =
            || nuage_facturx::pdf(&rendering).map_err(|e| ServiceError::Internal(e.to_string()));
        Ok(match channel {
            Channel::Pa => match &self.inner.settings.delivery.pa {
                Some(pa) => self.to_pa(pa, &invoice, pdf()?).await,
                None => failed("no plateforme agréée is configured (billing.delivery.pa)"),
            },
            Channel::ChorusPro => match &self.inner.settings.delivery.chorus_pro {
                Some(chorus) => self.to_chorus_pro(chorus, &invoice, pdf()?).await,
                None => failed("Chorus Pro is not configured (billing.delivery.chorus_pro)"),
            },
            Channel::Email => self.by_email(&invoice, pdf()?).await?,
            Channel::Webhook => {
                let payload = serde_json::json!({
                    "invoice": invoice,
                    "ubl": nuage_facturx::ubl_xml(&rendering),
                })
                .to_string();
                match self
                    .inner
                    .catalogue
                    .post_signed(
                        &invoice.document.customer.id,
                        "invoice.issued",
                        &d.id,
                        &payload,
                    )
                    .await?
                {
                    Ok(()) => Outcome::Delivered {
                        remote_id: None,
                        detail: "posted to the buyer's webhook, signed".into(),
                    },
                    Err(e) => failed(e),
                }
            }
        })
    }

    async fn to_pa(&self, pa: &PaSettings, invoice: &Invoice, pdf: Vec<u8>) -> Outcome {
        let doc = &invoice.document;
        let answer = self
            .inner
            .http
            .post(&pa.url)
            .bearer_auth(pa.token.expose_secret())
            .header("content-type", "application/pdf")
            .header("idempotency-key", &invoice.id)
            .header("nuage-invoice-number", &invoice.number)
            .header("nuage-seller-siren", doc.issuer.siren().unwrap_or_default())
            .header(
                "nuage-buyer-siren",
                doc.customer.siren().unwrap_or_default(),
            )
            .body(pdf)
            .send()
            .await;
        match answer {
            Ok(r) if r.status().is_success() => {
                let remote_id = json_answer(r)
                    .await
                    .ok()
                    .and_then(|v| v["id"].as_str().map(str::to_owned));
                Outcome::Delivered {
                    remote_id,
                    detail: "taken by the plateforme agréée".into(),
                }
            }
            Ok(r) => answered("the plateforme agréée", r).await,
            Err(e) => failed(format!("could not reach the plateforme agréée: {e}")),
        }
    }

    async fn to_chorus_pro(
        &self,
        chorus: &ChorusProSettings,
        invoice: &Invoice,
        pdf: Vec<u8>,
    ) -> Outcome {
        let token = self
            .inner
            .http
            .post(&chorus.token_url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", chorus.client_id.as_str()),
                ("client_secret", chorus.client_secret.expose_secret()),
                ("scope", "openid"),
            ])
            .send()
            .await;
        let token = match token {
            Ok(r) if r.status().is_success() => match json_answer(r).await {
                Ok(v) => match v["access_token"].as_str() {
                    Some(t) => t.to_owned(),
                    None => return failed("PISTE's token answer has no access_token"),
                },
                Err(e) => return failed(format!("PISTE's token answer is not JSON: {e}")),
            },
            Ok(r) => return answered("PISTE's token endpoint", r).await,
            Err(e) => return failed(format!("could not reach PISTE's token endpoint: {e}")),
        };
        let account = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            chorus.account_login,
            chorus.account_password.expose_secret()
        ));
        let body = serde_json::json!({
            "fichierFlux": base64::engine::general_purpose::STANDARD.encode(&pdf),
            "nomFichier": format!("{}.pdf", invoice.number),
            "syntaxeFlux": "IN_DP_E2_CII_FACTURX",
            "avecSignature": false,
        });
        let url = format!(
            "{}/cpro/factures/v1/deposer/flux",
            chorus.api_url.trim_end_matches('/')
        );
        let answer = self
            .inner
            .http
            .post(url)
            .bearer_auth(token)
            .header("cpro-account", account)
            .json(&body)
            .send()
            .await;
        match answer {
            Ok(r) if r.status().is_success() => match json_answer(r).await {
                Ok(v) if v["codeRetour"].as_i64() == Some(0) => Outcome::Delivered {
                    remote_id: v["numeroFluxDepot"].as_str().map(str::to_owned),
                    detail: "deposited on Chorus Pro".into(),
                },
                Ok(v) => Outcome::Failed {
                    for_good: true,
                    detail: format!(
                        "Chorus Pro refused the flow: {}",
                        v["libelle"].as_str().unwrap_or("no reason given")
                    ),
                },
                Err(e) => failed(format!("Chorus Pro's answer is not JSON: {e}")),
            },
            Ok(r) => answered("Chorus Pro", r).await,
            Err(e) => failed(format!("could not reach Chorus Pro: {e}")),
        }
    }

    /// To the buyer's owners, admins and billing members, Factur-X
    /// attached.
    async fn by_email(&self, invoice: &Invoice, pdf: Vec<u8>) -> ServiceResult<Outcome> {
        let mut conn = self.platform().db().acquire().await?;
        let recipients: Vec<String> =
            identity::list_members(&mut conn, &invoice.document.customer.id, "", 500)
                .await?
                .into_iter()
                .filter(|m| Role::parse(&m.role).is_ok_and(|r| r.may(Permission::SeeInvoices)))
                .map(|m| m.email)
                .collect();
        drop(conn);
        if recipients.is_empty() {
            return Ok(failed("the buyer has no member who may see invoices"));
        }
        let label = if invoice.kind == "credit_note" {
            "Avoir"
        } else {
            "Facture"
        };
        let subject = format!(
            "{label} {} — {}",
            invoice.number, invoice.document.issuer.name
        );
        let body = format!(
            "Bonjour,\n\nVeuillez trouver ci-joint {} {} de {} pour la période {}, d'un montant de {} € TTC (Factur-X : PDF lisible, données EN 16931 jointes).\n",
            if invoice.kind == "credit_note" {
                "l'avoir"
            } else {
                "la facture"
            },
            invoice.number,
            invoice.document.issuer.name,
            invoice.period,
            invoice.gross,
        );
        let attachment = MailAttachment {
            file_name: format!("{}.pdf", invoice.number),
            content_type: "application/pdf".into(),
            bytes: pdf,
        };
        let mut kept = false;
        for to in &recipients {
            match self
                .platform()
                .mailer()
                .send_attached(
                    self.platform().db(),
                    self.platform().clock().as_ref(),
                    (to, &subject, &body),
                    &attachment,
                )
                .await?
            {
                MailOutcome::Sent => {}
                MailOutcome::KeptInOutbox => kept = true,
                MailOutcome::Failed(e) => return Ok(failed(format!("e-mail to {to}: {e}"))),
            }
        }
        Ok(Outcome::Delivered {
            remote_id: None,
            detail: if kept {
                format!(
                    "e-mail to {} kept in the outbox: no SMTP relay is configured",
                    recipients.join(", ")
                )
            } else {
                format!("e-mailed to {}", recipients.join(", "))
            },
        })
    }

    /// An invoice's deliveries and their attempts: for whoever may read the
    /// invoice (its customer's and its issuer's owners, admins and billing
    /// members, and operators).
    pub async fn deliveries(
        &self,
        who: &Principal,
        invoice_id: &str,
    ) -> ServiceResult<Vec<Delivery>> {
        self.invoice(who, invoice_id).await?;
        let mut conn = self.platform().db().acquire().await?;
        let mut out = Vec::new();
        for d in store::of_invoice(&mut conn, invoice_id).await? {
            let attempts = store::attempts(&mut conn, &d.id).await?;
            out.push(delivery_view(d, attempts)?);
        }
        Ok(out)
    }
}

fn delivery_view(d: DeliveryRow, attempts: Vec<AttemptRow>) -> ServiceResult<Delivery> {
    let bad = |what: &str| ServiceError::Internal(format!("a stored delivery's {what}"));
    let status = Status::parse(&d.status).ok_or_else(|| bad("status"))?;
    Ok(Delivery {
        channel: Channel::parse(&d.channel).ok_or_else(|| bad("channel"))?,
        next_attempt_at_ms: (status == Status::Pending).then_some(d.next_attempt_at),
        status,
        attempts: attempts
            .into_iter()
            .map(|a| Attempt {
                at_ms: a.at,
                ok: a.ok != 0,
                detail: a.detail,
            })
            .collect(),
        remote_id: d.remote_id,
        delivered_at_ms: d.delivered_at,
        id: d.id,
    })
}

/// A platform's non-2xx answer: for good when it is a client error other
/// than a timeout or a rate limit.
async fn answered(who: &str, r: reqwest::Response) -> Outcome {
    let status = r.status();
    let body = answer_body(r).await;
    let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
    Outcome::Failed {
        for_good: refused_for_good(status.as_u16()),
        detail: format!("{who} answered {status}: {text}"),
    }
}

/// A platform's answers are short JSON documents: at most this much of one
/// is read, whatever it sends.
const MAX_ANSWER: usize = 64 * 1024;

/// The start of an answer's body, at most `MAX_ANSWER` bytes of it.
async fn answer_body(mut r: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = r.chunk().await {
        let room = MAX_ANSWER - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_ANSWER {
            break;
        }
    }
    body
}

/// An answer's body as JSON.
async fn json_answer(r: reqwest::Response) -> Result<serde_json::Value, serde_json::Error> {
    serde_json::from_slice(&answer_body(r).await)
}
