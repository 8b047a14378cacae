//! Outgoing e-mail. Every message is written to the outbox first; when an SMTP
//! relay is configured it is then delivered, and the outbox records the outcome.

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use nuage_db::Db;
use nuage_db::repo::mail::{self as repo, OutboxRow};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::Clock;
use crate::error::ServiceResult;

/// A file sent with a message.
pub struct MailAttachment {
    pub file_name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailOutcome {
    /// The relay took it.
    Sent,
    /// No relay is configured: the operator reads the outbox.
    KeptInOutbox,
    /// The relay refused it, or could not be reached.
    Failed(String),
}

/// How to reach the SMTP relay.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub from: String,
}

/// Sends messages through the relay, or keeps them in the outbox only.
#[derive(Clone)]
pub struct Mailer {
    relay: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)>,
}

impl Mailer {
    /// No relay: messages stay in the outbox, which the operator reads.
    pub fn outbox_only() -> Self {
        Self { relay: None }
    }

    pub fn smtp(settings: &SmtpSettings) -> Result<Self, String> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| format!("mail.from is not an address: {e}"))?;
        // A plain connection: the relay is expected on a trusted network (TLS to
        // the relay is a later step; see docs/operator-guide.md).
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port);
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        Ok(Self {
            relay: Some((builder.build(), from)),
        })
    }

    /// Records the message and tries to deliver it. Delivery failures are
    /// recorded, never returned: the action that sent the mail has happened.
    ///
    /// `secret` is a part of the body (a one-time link) that the outbox keeps
    /// only until the relay has taken the message: then it is cut out. Without
    /// a relay it stays, since the operator must pass the message on.
    pub async fn send(
        &self,
        db: &Db,
        clock: &dyn Clock,
        to: &str,
        subject: &str,
        body: &str,
        secret: Option<&str>,
    ) -> ServiceResult<()> {
        self.deliver(db, clock, (to, subject, body), secret, None)
            .await
            .map(|_| ())
    }

    /// Sends a message with a file attached (the outbox keeps the text and
    /// the file's name), and says what became of it.
    pub async fn send_attached(
        &self,
        db: &Db,
        clock: &dyn Clock,
        (to, subject, body): (&str, &str, &str),
        attachment: &MailAttachment,
    ) -> ServiceResult<MailOutcome> {
        self.deliver(db, clock, (to, subject, body), None, Some(attachment))
            .await
    }

    async fn deliver(
        &self,
        db: &Db,
        clock: &dyn Clock,
        (to, subject, body): (&str, &str, &str),
        secret: Option<&str>,
        attachment: Option<&MailAttachment>,
    ) -> ServiceResult<MailOutcome> {
        let id = Uuid::now_v7().to_string();
        let mut conn = db.acquire().await?;
        let recorded = match attachment {
            Some(a) => format!("{body}\n\n[attached: {}]", a.file_name),
            None => body.to_owned(),
        };
        repo::insert(
            &mut conn,
            &OutboxRow {
                id: id.clone(),
                recipient: to.into(),
                subject: subject.into(),
                body: recorded.clone(),
                created_at: clock.now_ms(),
                sent_at: None,
                last_error: None,
            },
        )
        .await?;
        let Some((transport, from)) = &self.relay else {
            return Ok(MailOutcome::KeptInOutbox);
        };
        let outcome = match to.parse::<Mailbox>() {
            Ok(recipient) => {
                let builder = Message::builder()
                    .from(from.clone())
                    .to(recipient)
                    .subject(subject);
                let message = match attachment {
                    Some(a) => match ContentType::parse(&a.content_type) {
                        Ok(kind) => builder.multipart(
                            MultiPart::mixed()
                                .singlepart(SinglePart::plain(body.to_owned()))
                                .singlepart(
                                    Attachment::new(a.file_name.clone())
                                        .body(a.bytes.clone(), kind),
                                ),
                        ),
                        Err(e) => {
                            return Err(crate::ServiceError::Internal(format!(
                                "an attachment's content type: {e}"
                            )));
                        }
                    },
                    None => builder.body(body.to_owned()),
                };
                match message {
                    Ok(message) => transport
                        .send(message)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => {
                let kept = match secret {
                    Some(secret) if !secret.is_empty() => {
                        recorded.replace(secret, "[removed once delivered]")
                    }
                    _ => recorded,
                };
                repo::mark_sent(&mut conn, &id, clock.now_ms(), &kept).await?;
                Ok(MailOutcome::Sent)
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not deliver an e-mail; it stays in the outbox");
                repo::mark_failed(&mut conn, &id, &e).await?;
                Ok(MailOutcome::Failed(e))
            }
        }
    }
}
