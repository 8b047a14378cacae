//! The console's two languages: which one a request gets, and every string
//! the pages show (the console reads them as `nuage_console::i18n`). The strings are the fields of one struct with a constant
//! per language, so that a string missing in one language fails to compile.

mod billing;
mod drive;
mod en;
mod fr;
mod market;
mod tender_desk;
mod tenders;
mod websites;

use nuage_domain::org::{OrgKind, Role};

pub use billing::{BILLING_EN, BILLING_FR, BillingTexts};
pub use drive::{DRIVE_EN, DRIVE_FR, DriveTexts};
pub use en::EN;
pub use fr::FR;
pub use market::{MARKET_EN, MARKET_FR, MarketTexts};
pub use tender_desk::{DESK_EN, DESK_FR, DeskTexts};
pub use tenders::{TENDERS_EN, TENDERS_FR, TenderTexts};
pub use websites::{WEBSITES_EN, WEBSITES_FR, WebsiteTexts};

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Fr,
    En,
}

impl Lang {
    /// The language a request gets: its `lang` cookie, else the first of
    /// French and English that its `Accept-Language` prefers, else French.
    pub fn negotiate(cookie: Option<&str>, accept_language: Option<&str>) -> Self {
        cookie
            .and_then(Self::parse)
            .or_else(|| accept_language.and_then(preferred_in_accept_language))
            .unwrap_or(Self::Fr)
    }

    pub fn parse(code: &str) -> Option<Self> {
        match code.trim().to_ascii_lowercase().as_str() {
            "fr" => Some(Self::Fr),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Fr => "fr",
            Self::En => "en",
        }
    }

    /// The other language, offered by the switch link on every page.
    pub fn other(self) -> Self {
        match self {
            Self::Fr => Self::En,
            Self::En => Self::Fr,
        }
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Self::Fr => &FR,
            Self::En => &EN,
        }
    }
}

/// The first of French and English in an `Accept-Language` header, by
/// quality (ties keep the header's order); `None` if it names neither.
fn preferred_in_accept_language(header: &str) -> Option<Lang> {
    let mut ranges: Vec<(u16, Lang)> = header
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let tag = parts.next()?.trim();
            let primary = tag.split('-').next()?;
            let lang = Lang::parse(primary)?;
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .next()
                .map_or(Some(1000), |q| {
                    q.trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))
                        .map(|q| (q * 1000.0) as u16)
                })?;
            (quality > 0).then_some((quality, lang))
        })
        .collect();
    // A stable sort keeps the header's order between equal qualities.
    ranges.sort_by_key(|r| std::cmp::Reverse(r.0));
    ranges.first().map(|(_, lang)| *lang)
}

/// Every string of the console, in one language.
pub struct Texts {
    /// The single window's and the directory's strings.
    pub m: &'static MarketTexts,
    /// The usage and billing page's strings.
    pub b: &'static BillingTexts,
    /// The calls for tender pages' strings.
    pub tn: &'static TenderTexts,
    pub td: &'static DeskTexts,
    pub ws: &'static WebsiteTexts,
    pub dr: &'static DriveTexts,
    pub lang_name: &'static str,
    pub switch_to: &'static str,
    pub skip_link: &'static str,
    pub nav_label: &'static str,
    pub nav_dashboard: &'static str,
    pub nav_members: &'static str,
    pub nav_tokens: &'static str,
    pub nav_s3_keys: &'static str,
    pub nav_audit: &'static str,
    pub nav_security: &'static str,
    pub nav_outbox: &'static str,
    pub nav_login: &'static str,
    pub nav_signup: &'static str,
    pub logout: &'static str,
    pub signed_in_as: &'static str,
    pub org_switch_label: &'static str,
    pub org_switch_submit: &'static str,
    pub audit_broken_banner: &'static str,
    pub footer: &'static str,
    pub required: &'static str,
    pub optional: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
    pub never: &'static str,
    pub you: &'static str,
    pub list_empty: &'static str,
    pub next_page: &'static str,
    pub first_page: &'static str,
    pub detail_label: &'static str,

    pub err_invalid: &'static str,
    pub err_unauthenticated: &'static str,
    pub err_wrong_credentials: &'static str,
    pub err_wrong_code: &'static str,
    pub err_forbidden: &'static str,
    pub err_not_found: &'static str,
    pub err_conflict: &'static str,
    pub err_rate_limited: &'static str,
    pub err_bad_form: &'static str,
    pub err_field: &'static str,

    pub field_email: &'static str,
    pub field_password: &'static str,
    pub field_new_password: &'static str,
    pub field_password_hint: &'static str,
    pub field_display_name: &'static str,
    pub field_org_name: &'static str,
    pub field_org_kind: &'static str,
    pub kind_public: &'static str,
    pub kind_company: &'static str,
    pub kind_person: &'static str,
    pub field_siret: &'static str,
    pub field_siret_hint: &'static str,
    pub field_vat: &'static str,
    pub field_vat_hint: &'static str,
    pub field_role: &'static str,
    pub field_token_name: &'static str,
    pub field_token_days: &'static str,
    pub field_token_days_hint: &'static str,
    pub field_totp_code: &'static str,
    pub field_totp_hint: &'static str,

    pub role_owner: &'static str,
    pub role_admin: &'static str,
    pub role_buyer: &'static str,
    pub role_billing: &'static str,
    pub role_member: &'static str,

    pub landing_title: &'static str,
    pub landing_intro: &'static str,
    pub landing_storage: &'static str,
    pub landing_window: &'static str,
    pub landing_tenders: &'static str,

    pub signup_title: &'static str,
    pub signup_org_legend: &'static str,
    pub signup_user_legend: &'static str,
    pub signup_submit: &'static str,
    pub signup_have_account: &'static str,

    pub login_title: &'static str,
    pub login_submit: &'static str,
    pub login_forgot: &'static str,
    pub login_no_account: &'static str,
    pub login_totp_title: &'static str,
    pub login_totp_intro: &'static str,
    pub login_totp_submit: &'static str,

    pub reset_title: &'static str,
    pub reset_intro: &'static str,
    pub reset_submit: &'static str,
    pub reset_sent: &'static str,
    pub reset_new_title: &'static str,
    pub reset_new_submit: &'static str,
    pub reset_link_invalid: &'static str,

    pub hello: &'static str,
    pub dash_title: &'static str,
    pub dash_org_heading: &'static str,
    pub dash_kind: &'static str,
    pub dash_role: &'static str,
    pub dash_siret: &'static str,
    pub dash_vat: &'static str,
    pub dash_created: &'static str,
    pub dash_require_totp: &'static str,
    pub dash_no_org: &'static str,
    pub dash_totp_required: &'static str,
    pub dash_totp_off: &'static str,
    pub dash_shortcuts: &'static str,

    pub members_title: &'static str,
    pub members_add_title: &'static str,
    pub members_add_intro: &'static str,
    pub members_add_submit: &'static str,
    pub col_name: &'static str,
    pub col_email: &'static str,
    pub col_role: &'static str,
    pub col_since: &'static str,
    pub col_actions: &'static str,
    pub remove: &'static str,

    pub tokens_title: &'static str,
    pub tokens_intro: &'static str,
    pub tokens_create_title: &'static str,
    pub tokens_create_submit: &'static str,
    pub tokens_secret_title: &'static str,
    pub secret_shown_once: &'static str,
    pub col_created: &'static str,
    pub col_expires: &'static str,
    pub col_last_used: &'static str,
    pub revoke: &'static str,

    pub s3_title: &'static str,
    pub s3_intro: &'static str,
    pub s3_create_submit: &'static str,
    pub s3_secret_title: &'static str,
    pub s3_access_key: &'static str,
    pub s3_secret_key: &'static str,
    pub s3_col_purpose: &'static str,
    pub s3_purpose_access: &'static str,
    pub s3_purpose_export: &'static str,
    pub s3_expires: &'static str,
    pub s3_export_title: &'static str,
    pub s3_export_intro: &'static str,
    pub s3_export_submit: &'static str,
    pub s3_public_title: &'static str,
    pub s3_public_intro: &'static str,
    pub s3_public_block_acls: &'static str,
    pub s3_public_ignore_acls: &'static str,
    pub s3_public_block_policy: &'static str,
    pub s3_public_restrict: &'static str,
    pub s3_public_submit: &'static str,
    pub col_created_by: &'static str,
    pub col_status: &'static str,
    pub status_active: &'static str,
    pub status_revoked: &'static str,

    pub audit_title: &'static str,
    pub audit_intro: &'static str,
    pub col_date: &'static str,
    pub col_actor: &'static str,
    pub col_action: &'static str,
    pub col_target: &'static str,
    pub col_source: &'static str,
    pub col_details: &'static str,

    pub security_title: &'static str,
    pub totp_title: &'static str,
    pub totp_on: &'static str,
    pub totp_off: &'static str,
    pub totp_begin_submit: &'static str,
    pub totp_enrol_intro: &'static str,
    pub totp_secret_label: &'static str,
    pub totp_uri_label: &'static str,
    pub totp_confirm_submit: &'static str,
    pub totp_restart: &'static str,
    pub totp_disable_intro: &'static str,
    pub totp_disable_submit: &'static str,
    pub require_totp_title: &'static str,
    pub require_totp_intro: &'static str,
    pub require_totp_checkbox: &'static str,
    pub require_totp_submit: &'static str,
    pub org_key_title: &'static str,
    pub org_key_intro: &'static str,
    pub org_key_version: &'static str,
    pub org_key_rewrapping: &'static str,
    pub org_key_rotate_submit: &'static str,
    pub notice_org_key_rotated: &'static str,
    pub custody_title: &'static str,
    pub custody_platform: &'static str,
    pub custody_external: &'static str,
    pub custody_state: &'static str,
    pub field_kms_endpoint: &'static str,
    pub field_kms_server_name: &'static str,
    pub field_kms_ca_pem: &'static str,
    pub field_kms_key_id: &'static str,
    pub custody_consent: &'static str,
    pub custody_submit: &'static str,
    pub custody_back_submit: &'static str,
    pub notice_custody_set: &'static str,
    pub password_title: &'static str,
    pub password_intro: &'static str,

    pub outbox_title: &'static str,
    pub outbox_intro: &'static str,
    pub col_to: &'static str,
    pub col_subject: &'static str,
    pub mail_sent: &'static str,
    pub mail_kept: &'static str,
    pub mail_failed: &'static str,
    pub mail_show: &'static str,

    pub notice_member_added: &'static str,
    pub notice_member_invited: &'static str,
    pub notice_invitation_accepted: &'static str,
    pub dash_invitations: &'static str,
    pub dash_invitation_accept: &'static str,
    pub dash_invitation_decline: &'static str,
    pub notice_member_removed: &'static str,
    pub notice_token_revoked: &'static str,
    pub notice_s3_key_revoked: &'static str,
    pub notice_public_access_saved: &'static str,
    pub notice_totp_enabled: &'static str,
    pub notice_totp_disabled: &'static str,
    pub notice_setting_saved: &'static str,
    pub notice_password_changed: &'static str,
    pub notice_logged_out: &'static str,

    pub csrf_title: &'static str,
    pub csrf_text: &'static str,
    pub forbidden_title: &'static str,
    pub not_found_title: &'static str,
    pub not_found_text: &'static str,
    pub server_error_title: &'static str,
    pub server_error_text: &'static str,
    pub back_home: &'static str,
}

impl Texts {
    pub fn role(&self, role: Role) -> &'static str {
        match role {
            Role::Owner => self.role_owner,
            Role::Admin => self.role_admin,
            Role::Buyer => self.role_buyer,
            Role::Billing => self.role_billing,
            Role::Member => self.role_member,
        }
    }

    pub fn kind(&self, kind: OrgKind) -> &'static str {
        match kind {
            OrgKind::Public => self.kind_public,
            OrgKind::Company => self.kind_company,
            OrgKind::Person => self.kind_person,
        }
    }

    /// The label of a form field named as the domain names it, for error messages.
    pub fn field_label(&self, field: &str) -> Option<&'static str> {
        Some(match field {
            "email" => self.field_email,
            "password" => self.field_password,
            "display_name" => self.field_display_name,
            "name" => self.field_org_name,
            "kind" => self.field_org_kind,
            "siret" => self.field_siret,
            "vat_number" => self.field_vat,
            "role" => self.field_role,
            "expires_in_days" => self.field_token_days,
            "deadline_ms" => self.tn.deadline,
            "cpv" => self.tn.cpv,
            "address.line1" => self.b.f_line1,
            "address.line2" => self.b.f_line2,
            "address.postcode" => self.b.f_postcode,
            "address.city" => self.b.f_city,
            "country" => self.b.f_country,
            "legal_form" => self.b.f_legal_form,
            "share_capital" => self.b.f_share_capital,
            "rcs" => self.b.f_rcs,
            "chorus_pro.service_code" => self.b.f_chorus_service,
            "chorus_pro.engagement_number" => self.b.f_chorus_engagement,
            "endpoint" => self.field_kms_endpoint,
            "server_name" => self.field_kms_server_name,
            "ca_pem" => self.field_kms_ca_pem,
            "key_id" => self.field_kms_key_id,
            "consent" => self.custody_consent,
            _ => return self.td.field_label(field),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_wins_over_the_header() {
        assert_eq!(
            Lang::negotiate(Some("en"), Some("fr-FR,fr;q=0.9")),
            Lang::En
        );
        assert_eq!(Lang::negotiate(Some("fr"), Some("en-US")), Lang::Fr);
    }

    #[test]
    fn an_unknown_cookie_falls_back_to_the_header() {
        assert_eq!(Lang::negotiate(Some("de"), Some("en-GB")), Lang::En);
    }

    #[test]
    fn the_header_is_read_by_quality() {
        assert_eq!(Lang::negotiate(None, Some("en-US,en;q=0.9")), Lang::En);
        assert_eq!(
            Lang::negotiate(None, Some("fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7")),
            Lang::Fr
        );
        assert_eq!(
            Lang::negotiate(None, Some("de-DE,de;q=0.9,en;q=0.8,fr;q=0.7")),
            Lang::En
        );
        assert_eq!(Lang::negotiate(None, Some("fr;q=0.5, en;q=0.8")), Lang::En);
        assert_eq!(Lang::negotiate(None, Some("EN-us")), Lang::En);
    }

    #[test]
    fn french_is_the_default() {
        assert_eq!(Lang::negotiate(None, None), Lang::Fr);
        assert_eq!(Lang::negotiate(None, Some("de-DE,es")), Lang::Fr);
        assert_eq!(Lang::negotiate(None, Some("en;q=0")), Lang::Fr);
        assert_eq!(Lang::negotiate(None, Some("*")), Lang::Fr);
        assert_eq!(Lang::negotiate(None, Some(";;,q=,en;q=abc")), Lang::Fr);
    }

    #[test]
    fn each_language_offers_the_other() {
        assert_eq!(Lang::Fr.other(), Lang::En);
        assert_eq!(Lang::Fr.texts().switch_to, Lang::En.texts().lang_name);
        assert_eq!(Lang::En.texts().switch_to, Lang::Fr.texts().lang_name);
    }
}
