//! What every page shares: the frame around it (header, navigation,
//! organisation switcher, language switch, banners), how a page becomes a
//! response, and how dates are written.

use askama::Template;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::PageError;
use crate::i18n::Texts;
use crate::session::{Ctx, url_encode};

/// The frame of every page.
pub struct Chrome {
    pub t: &'static Texts,
    pub lang: &'static str,
    /// The language the switch link offers, and where it goes.
    pub other_lang: &'static str,
    pub switch_href: String,
    /// The navigation entry of this page, marked `aria-current`.
    pub active: &'static str,
    /// The signed-in user's bar; absent while anonymous or a second factor is due.
    pub user: Option<UserBar>,
    /// The CSRF token of the logout form, whenever there is a session.
    pub logout_csrf: Option<String>,
    /// The audit chain failed its last verification (shown to the operator).
    pub audit_broken: bool,
    /// A confirmation of what the previous form did.
    pub notice: Option<&'static str>,
}

pub struct UserBar {
    pub display_name: String,
    pub is_operator: bool,
    /// An owner or admin of the current organisation: sees its keys and audit log.
    pub can_manage: bool,
    pub csrf: String,
    pub orgs: Vec<OrgChoice>,
    /// This page, to come back to after switching organisation.
    pub here: String,
}

pub struct OrgChoice {
    pub id: String,
    pub name: String,
    pub selected: bool,
}

impl Ctx {
    /// The frame of a page whose navigation entry is `active`.
    pub fn chrome(&self, active: &'static str) -> Chrome {
        let user = self
            .session
            .as_ref()
            .filter(|s| !s.second_factor_pending)
            .map(|s| {
                let current = s.current_org.as_ref().map(|m| m.org_id.as_str());
                UserBar {
                    display_name: s.user.display_name.clone(),
                    is_operator: s.user.is_operator,
                    can_manage: s.current_org.as_ref().is_some_and(|m| m.role.manages_org()),
                    csrf: s.csrf_token.clone(),
                    orgs: s
                        .memberships
                        .iter()
                        .map(|m| OrgChoice {
                            id: m.org_id.clone(),
                            name: m.org_name.clone(),
                            selected: Some(m.org_id.as_str()) == current,
                        })
                        .collect(),
                    here: self.here.clone(),
                }
            });
        let audit_broken = user.as_ref().is_some_and(|u| u.is_operator)
            && !self.platform.audit().last_known_intact();
        Chrome {
            t: self.t,
            lang: self.lang.code(),
            other_lang: self.lang.other().code(),
            switch_href: format!(
                "/lang/{}?next={}",
                self.lang.other().code(),
                url_encode(&self.here)
            ),
            active,
            user,
            logout_csrf: self.session.as_ref().map(|s| s.csrf_token.clone()),
            audit_broken,
            notice: query_param(&self.here, "notice").and_then(|key| notice(self.t, key)),
        }
    }

    /// Renders a page as the response, with the cookies this request owes.
    pub fn page(&self, status: StatusCode, page: &impl Template) -> Result<Response, PageError> {
        let html = page.render()?;
        let mut response = (status, html).into_response();
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        // Pages carry CSRF tokens and, once, secrets: never keep them.
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(cookie) = self.pending_cookie() {
            headers.append(SET_COOKIE, cookie);
        }
        Ok(response)
    }
}

/// The value of a query parameter in a path, left encoded (only the
/// console's own plain values are read this way).
fn query_param<'a>(path: &'a str, name: &str) -> Option<&'a str> {
    let (_, query) = path.split_once('?')?;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The confirmations that a form's redirect can ask the next page to show.
fn notice(t: &'static Texts, key: &str) -> Option<&'static str> {
    Some(match key {
        "member_added" => t.notice_member_added,
        "member_invited" => t.notice_member_invited,
        "invitation_accepted" => t.notice_invitation_accepted,
        "member_removed" => t.notice_member_removed,
        "token_revoked" => t.notice_token_revoked,
        "s3_key_revoked" => t.notice_s3_key_revoked,
        "public_access_saved" => t.notice_public_access_saved,
        "totp_enabled" => t.notice_totp_enabled,
        "totp_disabled" => t.notice_totp_disabled,
        "setting_saved" => t.notice_setting_saved,
        "org_key_rotated" => t.notice_org_key_rotated,
        "custody_set" => t.notice_custody_set,
        "password_changed" => t.notice_password_changed,
        "logged_out" => t.notice_logged_out,
        "sheet_saved" => t.m.notice_sheet_saved,
        "sheet_moved" => t.m.notice_sheet_moved,
        "order_updated" => t.m.notice_order_updated,
        "review_done" => t.m.notice_review_done,
        "subscription_cancelled" => t.m.notice_subscription_cancelled,
        "declaration_saved" => t.m.notice_declaration_saved,
        "tender_saved" => t.td.notice_saved,
        "tender_amended" => t.td.notice_amended,
        "tender_published" => t.td.notice_published,
        "question_sent" => t.td.notice_question,
        "answer_published" => t.td.notice_answer,
        "bid_withdrawn" => t.td.notice_withdrawn,
        "bids_opened" => t.td.notice_opened,
        "tender_cancelled" => t.td.notice_cancelled,
        "marks_saved" => t.td.notice_marks,
        "lot_awarded" => t.td.notice_awarded,
        "contract_signed" => t.td.notice_signed,
        "document_removed" => t.td.notice_document_removed,
        "document_added" => t.td.notice_document_added,
        "folder_created" => t.dr.notice_folder_created,
        "moved" => t.dr.notice_moved,
        "trashed" => t.dr.notice_trashed,
        "restored" => t.dr.notice_restored,
        "purged" => t.dr.notice_purged,
        "version_restored" => t.dr.notice_version_restored,
        "app_password_revoked" => t.dr.notice_app_password_revoked,
        "link_created" => t.dr.notice_link_created,
        "link_revoked" => t.dr.notice_link_revoked,
        "granted" => t.dr.notice_granted,
        "grant_revoked" => t.dr.notice_grant_revoked,
        _ => return None,
    })
}

/// A date as `2025-03-14 09:26:53`, in UTC.
pub fn datetime(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|d| d.format(&format).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// A date as ISO 8601, for `<time datetime>`.
pub fn iso(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A date as shown in a table: readable text, machine-readable attribute.
pub struct When {
    pub text: String,
    pub iso: String,
}

impl When {
    pub fn at(ms: i64) -> Self {
        Self {
            text: datetime(ms),
            iso: iso(ms),
        }
    }
}

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub c: Chrome,
    pub title: &'static str,
    pub message: &'static str,
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc() {
        assert_eq!(datetime(0), "1970-01-01 00:00:00");
        assert_eq!(datetime(1_700_000_000_123), "2023-11-14 22:13:20");
        assert_eq!(iso(1_700_000_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn notices_are_read_from_the_query() {
        assert_eq!(
            query_param("/members?cursor=x&notice=member_added", "notice"),
            Some("member_added")
        );
        assert_eq!(query_param("/members", "notice"), None);
        assert_eq!(
            notice(&crate::i18n::EN, "member_added"),
            Some(crate::i18n::EN.notice_member_added)
        );
        assert_eq!(notice(&crate::i18n::EN, "<script>"), None);
    }
}
