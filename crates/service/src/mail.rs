//! Outgoing e-mail. Every message is written to the outbox first; when an SMTP
//! relay is configured it is then delivered, and the outbox records the outcome.

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use nuage_db::Db;
use nuage_db::repo::mail::{self as repo, OutboxRow};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::Clock;
use crate::error::ServiceResult;

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
        let id = Uuid::now_v7().to_string();
        let mut conn = db.acquire().await?;
        repo::insert(
            &mut conn,
            &OutboxRow {
                id: id.clone(),
                recipient: to.into(),
                subject: subject.into(),
                body: body.into(),
                created_at: clock.now_ms(),
                sent_at: None,
                last_error: None,
            },
        )
        .await?;
        let Some((transport, from)) = &self.relay else {
            return Ok(());
        };
        let outcome = match to.parse::<Mailbox>() {
            Ok(recipient) => match Message::builder()
                .from(from.clone())
                .to(recipient)
                .subject(subject)
                .body(body.to_owned())
            {
                Ok(message) => transport
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => {
                let kept = match secret {
                    Some(secret) if !secret.is_empty() => {
                        body.replace(secret, "[removed once delivered]")
                    }
                    _ => body.to_owned(),
                };
                repo::mark_sent(&mut conn, &id, clock.now_ms(), &kept).await?
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not deliver an e-mail; it stays in the outbox");
                repo::mark_failed(&mut conn, &id, &e).await?;
            }
        }
        Ok(())
    }
}
