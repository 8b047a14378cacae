//! A bucket published as a static website (S3 `PutBucketWebsite`): its
//! index and error documents, a redirection of every request, and routing
//! rules; and what a request for a path asks for, before any object is read.

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// Every request goes to another host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectAll {
    pub host_name: String,
    /// `http` or `https`; the request's own when absent.
    #[serde(default)]
    pub protocol: Option<String>,
}

/// Where a routing rule sends a request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    #[serde(default)]
    pub host_name: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub replace_key_prefix_with: Option<String>,
    #[serde(default)]
    pub replace_key_with: Option<String>,
    /// 301 when absent.
    #[serde(default)]
    pub http_redirect_code: Option<u16>,
}

/// A routing rule: when its conditions hold, the request is redirected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingRule {
    #[serde(default)]
    pub key_prefix_equals: Option<String>,
    /// Only checked once the object was looked up and this error came back.
    #[serde(default)]
    pub http_error_code_returned_equals: Option<u16>,
    pub redirect: Redirect,
}

/// A bucket's website configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebsiteConfig {
    /// The index document of every folder, e.g. `index.html`.
    #[serde(default)]
    pub index_suffix: Option<String>,
    /// The object served, with the error's status, when a page is missing.
    #[serde(default)]
    pub error_key: Option<String>,
    #[serde(default)]
    pub redirect_all: Option<RedirectAll>,
    #[serde(default)]
    pub routing_rules: Vec<RoutingRule>,
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The object of this key.
    Object { key: String },
    /// Elsewhere.
    Redirect { location: String, status: u16 },
}

const MAX_RULES: usize = 50;

fn invalid(reason: impl Into<String>) -> DomainError {
    DomainError::invalid("website", reason)
}

fn check_protocol(protocol: &Option<String>) -> Result<(), DomainError> {
    match protocol.as_deref() {
        None | Some("http") | Some("https") => Ok(()),
        Some(other) => Err(invalid(format!("protocol {other:?} is not http or https"))),
    }
}

fn check_host(host: &str) -> Result<(), DomainError> {
    let plausible = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:".contains(c));
    if plausible {
        Ok(())
    } else {
        Err(invalid(format!("{host:?} is not a host name")))
    }
}

impl WebsiteConfig {
    /// Checks the configuration as S3 does.
    pub fn validate(&self) -> Result<(), DomainError> {
        if let Some(all) = &self.redirect_all {
            if self.index_suffix.is_some()
                || self.error_key.is_some()
                || !self.routing_rules.is_empty()
            {
                return Err(invalid(
                    "a redirection of every request stands alone: no index, error document or rules",
                ));
            }
            check_host(&all.host_name)?;
            return check_protocol(&all.protocol);
        }
        match self.index_suffix.as_deref() {
            None => return Err(invalid("an index document is required")),
            Some(s) if s.is_empty() || s.contains('/') || s.len() > 1024 => {
                return Err(invalid("the index document is a file name without a slash"));
            }
            Some(_) => {}
        }
        if let Some(key) = &self.error_key
            && (key.is_empty() || key.len() > 1024)
        {
            return Err(invalid("the error document is an object key"));
        }
        if self.routing_rules.len() > MAX_RULES {
            return Err(invalid(format!("at most {MAX_RULES} routing rules")));
        }
        for rule in &self.routing_rules {
            let r = &rule.redirect;
            if r.replace_key_with.is_some() && r.replace_key_prefix_with.is_some() {
                return Err(invalid("a rule replaces the key or its prefix, not both"));
            }
            if let Some(code) = rule.http_error_code_returned_equals
                && !(400..=599).contains(&code)
            {
                return Err(invalid(format!("{code} is not an error code")));
            }
            if let Some(code) = r.http_redirect_code
                && !matches!(code, 301 | 302 | 303 | 307 | 308)
            {
                return Err(invalid(format!("{code} is not a redirection code")));
            }
            if let Some(host) = &r.host_name {
                check_host(host)?;
            }
            check_protocol(&r.protocol)?;
            if r.host_name.is_none()
                && r.protocol.is_none()
                && r.replace_key_with.is_none()
                && r.replace_key_prefix_with.is_none()
                && r.http_redirect_code.is_none()
            {
                return Err(invalid("a rule's redirect says where to go"));
            }
        }
        Ok(())
    }

    /// What a request for `path` (percent-decoded, with its leading `/`)
    /// asks for, before any object is looked up.
    pub fn route(&self, path: &str, host: &str, protocol: &str) -> Route {
        let key = path.strip_prefix('/').unwrap_or(path);
        if let Some(all) = &self.redirect_all {
            return Route::Redirect {
                location: format!(
                    "{}://{}/{key}",
                    all.protocol.as_deref().unwrap_or(protocol),
                    all.host_name
                ),
                status: 301,
            };
        }
        if let Some(rule) = self
            .routing_rules
            .iter()
            .find(|r| r.http_error_code_returned_equals.is_none() && r.matches(key))
        {
            return rule.redirect_for(key, host, protocol);
        }
        Route::Object {
            key: self.index_of(key),
        }
    }

    /// A routing rule's redirect for an error `status` on `key`, if one
    /// applies.
    pub fn on_error(&self, key: &str, status: u16, host: &str, protocol: &str) -> Option<Route> {
        self.routing_rules
            .iter()
            .find(|r| r.http_error_code_returned_equals == Some(status) && r.matches(key))
            .map(|r| r.redirect_for(key, host, protocol))
    }

    /// The key served for a path's key: a folder's (`""`, `docs/`) is its
    /// index document.
    pub fn index_of(&self, key: &str) -> String {
        match &self.index_suffix {
            Some(suffix) if key.is_empty() || key.ends_with('/') => format!("{key}{suffix}"),
            _ => key.to_owned(),
        }
    }

    /// For a key that is not an object, the folder whose index it may name
    /// (`docs` → `docs/index.html`): S3 then redirects to `docs/`.
    pub fn folder_index(&self, key: &str) -> Option<String> {
        match &self.index_suffix {
            Some(suffix) if !key.is_empty() && !key.ends_with('/') => {
                Some(format!("{key}/{suffix}"))
            }
            _ => None,
        }
    }
}

impl RoutingRule {
    fn matches(&self, key: &str) -> bool {
        self.key_prefix_equals
            .as_deref()
            .is_none_or(|prefix| key.starts_with(prefix))
    }

    fn redirect_for(&self, key: &str, host: &str, protocol: &str) -> Route {
        let r = &self.redirect;
        let new_key = match (&r.replace_key_with, &r.replace_key_prefix_with) {
            (Some(whole), _) => whole.clone(),
            (None, Some(prefix)) => {
                let rest = self
                    .key_prefix_equals
                    .as_deref()
                    .and_then(|p| key.strip_prefix(p))
                    .unwrap_or(key);
                format!("{prefix}{rest}")
            }
            (None, None) => key.to_owned(),
        };
        Route::Redirect {
            location: format!(
                "{}://{}/{new_key}",
                r.protocol.as_deref().unwrap_or(protocol),
                r.host_name.as_deref().unwrap_or(host)
            ),
            status: r.http_redirect_code.unwrap_or(301),
        }
    }
}

/// A domain of its own that a website is served at, besides
/// `<bucket>.<web domain>`: `www.mairie-exemple.fr`. It is served only once
/// its owner has proven it controls the domain's DNS (see
/// [`SiteDomain::challenge_name`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SiteDomain(String);

/// The TXT record that proves a claim carries this before its token.
pub const CHALLENGE_PREFIX: &str = "nuage-site-verification=";

impl SiteDomain {
    /// A domain as its owner types it: case and a final dot do not count.
    /// An internationalised name is given in its ASCII (`xn--`) form. The
    /// platform's own website domain and its names are not anyone's to
    /// claim, and neither are addresses or single labels.
    pub fn parse(raw: &str, web_domain: &str) -> Result<Self, DomainError> {
        let invalid = |reason: String| DomainError::invalid("domain", reason);
        let name = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() {
            return Err(invalid("a domain name is required".into()));
        }
        if name.len() > 253 {
            return Err(invalid("a domain name has at most 253 characters".into()));
        }
        if !name.is_ascii() {
            return Err(invalid(format!(
                "{raw:?}: give an internationalised name in its ASCII form (xn--…)"
            )));
        }
        let labels: Vec<&str> = name.split('.').collect();
        if labels.len() < 2 {
            return Err(invalid(format!("{name:?} is not a full domain name")));
        }
        for label in &labels {
            let valid = (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !valid {
                return Err(invalid(format!(
                    "{name:?} is not a domain name: each label has 1 to 63 letters, digits or inner hyphens"
                )));
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(invalid(format!(
                "{name:?} is an address, not a domain name"
            )));
        }
        let web_domain = web_domain.trim_matches('.').to_ascii_lowercase();
        if name == web_domain || name.ends_with(&format!(".{web_domain}")) || name == "localhost" {
            return Err(invalid(format!(
                "{name:?} is one of the platform's own names, not a domain of yours"
            )));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where the proof is published: a TXT record at this name whose value
    /// is [`SiteDomain::challenge_value`].
    pub fn challenge_name(&self) -> String {
        format!("_nuage-challenge.{}", self.0)
    }

    pub fn challenge_value(token: &str) -> String {
        format!("{CHALLENGE_PREFIX}{token}")
    }

    /// Whether the TXT records found at [`SiteDomain::challenge_name`] carry
    /// this token (other records may stand beside it).
    pub fn proven_by(records: &[String], token: &str) -> bool {
        let expected = Self::challenge_value(token);
        records.iter().any(|r| r.trim() == expected)
    }
}

impl std::fmt::Display for SiteDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> WebsiteConfig {
        WebsiteConfig {
            index_suffix: Some("index.html".into()),
            error_key: Some("404.html".into()),
            redirect_all: None,
            routing_rules: vec![
                RoutingRule {
                    key_prefix_equals: Some("docs/".into()),
                    redirect: Redirect {
                        replace_key_prefix_with: Some("documents/".into()),
                        ..Redirect::default()
                    },
                    ..RoutingRule::default()
                },
                RoutingRule {
                    key_prefix_equals: Some("old/".into()),
                    http_error_code_returned_equals: Some(404),
                    redirect: Redirect {
                        host_name: Some("archive.example".into()),
                        protocol: Some("https".into()),
                        http_redirect_code: Some(302),
                        ..Redirect::default()
                    },
                },
            ],
        }
    }

    #[test]
    fn folders_are_served_by_their_index() {
        let s = site();
        let object = |key: &str| Route::Object { key: key.into() };
        assert_eq!(s.route("/", "h", "http"), object("index.html"));
        assert_eq!(s.route("/blog/", "h", "http"), object("blog/index.html"));
        assert_eq!(s.route("/a.css", "h", "http"), object("a.css"));
        assert_eq!(s.folder_index("blog"), Some("blog/index.html".into()));
        assert_eq!(s.folder_index("blog/"), None);
    }

    #[test]
    fn rules_redirect_by_prefix_and_by_error() {
        let s = site();
        assert_eq!(
            s.route("/docs/a/b.html", "site.example:8080", "http"),
            Route::Redirect {
                location: "http://site.example:8080/documents/a/b.html".into(),
                status: 301
            }
        );
        // An error rule does not apply before the object is looked up.
        assert_eq!(
            s.route("/old/page", "h", "http"),
            Route::Object {
                key: "old/page".into()
            }
        );
        assert_eq!(
            s.on_error("old/page", 404, "h", "http"),
            Some(Route::Redirect {
                location: "https://archive.example/old/page".into(),
                status: 302
            })
        );
        assert_eq!(s.on_error("old/page", 403, "h", "http"), None);
        assert_eq!(s.on_error("new/page", 404, "h", "http"), None);
    }

    #[test]
    fn a_redirection_of_everything_stands_alone() {
        let all = WebsiteConfig {
            redirect_all: Some(RedirectAll {
                host_name: "www.example.org".into(),
                protocol: Some("https".into()),
            }),
            ..WebsiteConfig::default()
        };
        assert!(all.validate().is_ok());
        assert_eq!(
            all.route("/x?y", "h", "http"),
            Route::Redirect {
                location: "https://www.example.org/x?y".into(),
                status: 301
            }
        );
        let mixed = WebsiteConfig {
            index_suffix: Some("index.html".into()),
            ..all
        };
        assert!(mixed.validate().is_err());
    }

    #[test]
    fn bad_configurations_are_refused() {
        assert!(site().validate().is_ok());
        let mut no_index = site();
        no_index.index_suffix = None;
        assert!(no_index.validate().is_err());
        let mut slash = site();
        slash.index_suffix = Some("a/index.html".into());
        assert!(slash.validate().is_err());
        let mut code = site();
        code.routing_rules[0].redirect.http_redirect_code = Some(200);
        assert!(code.validate().is_err());
        let mut both = site();
        both.routing_rules[0].redirect.replace_key_with = Some("x".into());
        assert!(both.validate().is_err());
        let mut protocol = site();
        protocol.routing_rules[1].redirect.protocol = Some("ftp".into());
        assert!(protocol.validate().is_err());
        let mut host = site();
        host.routing_rules[1].redirect.host_name = Some("a b".into());
        assert!(host.validate().is_err());
        let mut empty = site();
        empty.routing_rules[0].redirect = Redirect::default();
        assert!(empty.validate().is_err());
    }

    #[test]
    fn a_site_domain_is_a_full_name_that_is_not_the_platforms() {
        let web = "sites.nuage.example";
        let d = SiteDomain::parse(" WWW.Mairie-Exemple.fr. ", web).expect("a domain");
        assert_eq!(d.as_str(), "www.mairie-exemple.fr");
        assert_eq!(d.challenge_name(), "_nuage-challenge.www.mairie-exemple.fr");
        assert!(SiteDomain::parse("xn--mairie-exemple-bnb.fr", web).is_ok());
        for bad in [
            "",
            "localhost",
            "intranet",
            "mairie.fr/../x",
            "mairie..fr",
            "-mairie.fr",
            "mairie-.fr",
            "mairie_exemple.fr",
            "mairie.fr\0",
            "mairié.fr",
            "192.168.1.10",
            "[::1]",
            "sites.nuage.example",
            "blog.sites.nuage.example",
            &format!("{}.fr", "a".repeat(64)),
            &format!("{}fr", "abcdefghi.".repeat(26)),
        ] {
            assert!(SiteDomain::parse(bad, web).is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn a_claim_is_proven_by_its_own_token_only() {
        let records = vec![
            "v=spf1 -all".to_owned(),
            " nuage-site-verification=abc123 ".to_owned(),
        ];
        assert!(SiteDomain::proven_by(&records, "abc123"));
        assert!(!SiteDomain::proven_by(&records, "abc12"));
        assert!(!SiteDomain::proven_by(&records, "other"));
        assert!(!SiteDomain::proven_by(&[], "abc123"));
    }
}
