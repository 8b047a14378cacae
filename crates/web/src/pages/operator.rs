//! The operator's pages: the outbox, where every e-mail the platform sent
//! is kept (and, without an SMTP relay, the only place it reaches).

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;

use crate::error::PageError;
use crate::session::Ctx;
use crate::views::{Chrome, When};

/// How many of the newest messages the page shows.
const OUTBOX_PAGE: i64 = 100;

pub enum Delivery {
    Sent(When),
    Failed(String),
    Kept,
}

pub struct MailRow {
    pub id: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub created: When,
    pub delivery: Delivery,
}

#[derive(Template)]
#[template(path = "outbox.html")]
pub struct OutboxPage {
    pub c: Chrome,
    pub rows: Vec<MailRow>,
}

pub async fn outbox(ctx: Ctx) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let rows = ctx
        .platform
        .outbox(&session.principal(), OUTBOX_PAGE)
        .await?
        .into_iter()
        .map(|m| MailRow {
            delivery: match (m.sent_at, m.last_error) {
                (Some(at), _) => Delivery::Sent(When::at(at)),
                (None, Some(error)) => Delivery::Failed(error),
                (None, None) => Delivery::Kept,
            },
            id: m.id,
            to: m.recipient,
            subject: m.subject,
            body: m.body,
            created: When::at(m.created_at),
        })
        .collect();
    ctx.page(
        StatusCode::OK,
        &OutboxPage {
            c: ctx.chrome("outbox"),
            rows,
        },
    )
}
