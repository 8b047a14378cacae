//! Websites at domains of their owners': a claim on a domain for a bucket,
//! proven by a TXT record that carries the claim's token, and the lookup
//! the website listener makes for a Host header that is not one of the
//! platform's own names.
//!
//! Only a TXT record is accepted as proof. A token file would prove control
//! of whatever server answers for the domain, and once a domain points at
//! the platform that server is the platform itself: another tenant could
//! then "prove" a domain it does not hold.

use std::net::SocketAddr;

use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::{ResolveErrorKind, TokioResolver};
use nuage_db::repo::websites::{self as repo, SiteDomainRow};
use nuage_domain::DomainError;
use nuage_domain::website::SiteDomain;
use rand::RngCore;

use super::{S3Caller, Storage, StorageError};
use nuage_service::error::ServiceResult;
use nuage_service::{AuditEvent, Principal, RequestMeta, ServiceError};

/// How many domains one bucket may claim.
const MAX_DOMAINS: usize = 20;

/// A claim on a domain, as its owner sees it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DomainClaim {
    pub domain: String,
    pub bucket: String,
    /// The TXT record to publish: its name and its value.
    pub record_name: String,
    pub record_value: String,
    pub created_at: i64,
    /// When the proof was found; the domain is served from then on.
    pub verified_at: Option<i64>,
}

impl DomainClaim {
    fn of(r: SiteDomainRow) -> Self {
        Self {
            record_name: format!("_nuage-challenge.{}", r.domain),
            record_value: SiteDomain::challenge_value(&r.token),
            domain: r.domain,
            bucket: r.bucket,
            created_at: r.created_at,
            verified_at: r.verified_at,
        }
    }
}

/// Looks TXT records up, through the system's resolver or a configured one.
pub(super) struct TxtLookup {
    resolver: TokioResolver,
}

impl TxtLookup {
    /// The system's resolver (`/etc/resolv.conf`) unless a server is named;
    /// without either, lookups fail with a readable error.
    pub(super) fn new(server: Option<SocketAddr>) -> Self {
        let mut resolver = match server {
            Some(addr) => TokioResolver::builder_with_config(
                ResolverConfig::from_parts(
                    None,
                    Vec::new(),
                    NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true),
                ),
                TokioConnectionProvider::default(),
            ),
            None => TokioResolver::builder_tokio().unwrap_or_else(|e| {
                tracing::warn!(error = %e, "no system DNS configuration: domains cannot be proven");
                TokioResolver::builder_with_config(
                    ResolverConfig::from_parts(None, Vec::new(), Vec::new()),
                    TokioConnectionProvider::default(),
                )
            }),
        };
        // A proof just published must be seen: no answer is kept.
        resolver.options_mut().cache_size = 0;
        Self {
            resolver: resolver.build(),
        }
    }

    /// The TXT records at a name; none when the name has none.
    async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
        match self.resolver.txt_lookup(format!("{name}.")).await {
            Ok(lookup) => Ok(lookup
                .iter()
                .map(|txt| {
                    txt.txt_data()
                        .iter()
                        .map(|part| String::from_utf8_lossy(part))
                        .collect::<String>()
                })
                .collect()),
            Err(e) if matches!(e.kind(), ResolveErrorKind::Proto(p) if p.is_no_records_found()) => {
                Ok(Vec::new())
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

fn invalid(reason: impl Into<String>) -> ServiceError {
    DomainError::invalid("domain", reason).into()
}

/// The storage's refusals, as a website's owner reads them.
fn refused(e: StorageError) -> ServiceError {
    match e {
        StorageError::Service(e) => e,
        StorageError::NoSuchBucket | StorageError::AccessDenied => ServiceError::NotFound("bucket"),
        other => ServiceError::Internal(other.to_string()),
    }
}

impl Storage {
    /// An owner or admin of `org` acting on its websites through the API.
    pub async fn website_caller(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        org: nuage_domain::ids::OrgId,
    ) -> ServiceResult<S3Caller> {
        self.member_caller(who, meta, org, nuage_domain::org::Permission::Manage, "api")
            .await
    }

    /// The one way a user (console, API) acts on an organisation's storage
    /// — its buckets, drive, shares and websites: through
    /// [`Platform::authorize_org`](nuage_service::Platform), so that the
    /// organisation's policy (its members' roles, a second factor required)
    /// holds on every surface. `via` names the surface in the access log.
    pub async fn member_caller(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        org: nuage_domain::ids::OrgId,
        permission: nuage_domain::org::Permission,
        via: &str,
    ) -> ServiceResult<S3Caller> {
        let mut conn = self.platform().db().acquire().await?;
        self.platform()
            .authorize_org(&mut conn, who, org, permission)
            .await?;
        Ok(S3Caller {
            org,
            access_key_id: match who.user_id() {
                Some(user) => format!("{via}:{user}"),
                None => format!("{via}:operator"),
            },
            source: meta.source.clone(),
            purpose: nuage_domain::storage::KeyPurpose::Access,
        })
    }

    /// Commits a change of a bucket's domains with its audit entry.
    async fn commit_domain(
        &self,
        tx: nuage_db::Transaction<'static, nuage_db::Any>,
        caller: &S3Caller,
        action: &'static str,
        bucket: &str,
        domain: &SiteDomain,
    ) -> ServiceResult<()> {
        let mut tx = tx;
        self.settings_changed(&mut tx).await?;
        let (who, meta) = Self::principal(caller);
        let event = AuditEvent::new(action, format!("bucket:{bucket}"))
            .org(caller.org)
            .details(serde_json::json!({ "domain": domain.as_str() }));
        self.platform()
            .commit_audited(tx, &who, &meta, event)
            .await?;
        Ok(())
    }

    fn site_domain(&self, raw: &str) -> ServiceResult<SiteDomain> {
        Ok(SiteDomain::parse(raw, &self.inner.settings.website_domain)?)
    }

    /// Claims a domain for a bucket of the caller's. The claim serves
    /// nothing until it is proven ([`Storage::verify_domain`]).
    pub async fn claim_domain(
        &self,
        caller: &S3Caller,
        bucket: &str,
        domain: &str,
    ) -> ServiceResult<DomainClaim> {
        let domain = self.site_domain(domain)?;
        let mut tx = self.platform().db().begin_write().await?;
        let b = self
            .owned_bucket(&mut tx, caller, bucket)
            .await
            .map_err(refused)?;
        if b.website.is_none() {
            return Err(ServiceError::NotFound("website"));
        }
        if let Some(existing) = repo::get_site_domain(&mut tx, bucket, domain.as_str()).await? {
            return Ok(DomainClaim::of(existing));
        }
        let org = caller.org.to_string();
        if repo::site_domains_of(&mut tx, bucket, &org).await?.len() >= MAX_DOMAINS {
            return Err(invalid(format!(
                "a website has at most {MAX_DOMAINS} domains"
            )));
        }
        let mut token = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut token);
        let row = SiteDomainRow {
            domain: domain.to_string(),
            bucket: bucket.to_owned(),
            org_id: org,
            token: hex::encode(token),
            created_at: self.now_ms(),
            verified_at: None,
        };
        repo::insert_site_domain(&mut tx, &row).await?;
        self.commit_domain(tx, caller, "website.domain.claim", bucket, &domain)
            .await?;
        Ok(DomainClaim::of(row))
    }

    /// The domains a bucket of the caller's claims, proven or not.
    pub async fn domains(
        &self,
        caller: &S3Caller,
        bucket: &str,
    ) -> ServiceResult<Vec<DomainClaim>> {
        let mut conn = self.platform().db().acquire().await?;
        self.owned_bucket(&mut conn, caller, bucket)
            .await
            .map_err(refused)?;
        let rows = repo::site_domains_of(&mut conn, bucket, &caller.org.to_string()).await?;
        Ok(rows.into_iter().map(DomainClaim::of).collect())
    }

    /// Looks for the claim's TXT record; once found, the domain serves the
    /// bucket (and no other bucket that proved it earlier). Not found, the
    /// claim stays as it was.
    pub async fn verify_domain(
        &self,
        caller: &S3Caller,
        bucket: &str,
        domain: &str,
    ) -> ServiceResult<DomainClaim> {
        let domain = self.site_domain(domain)?;
        let claim = {
            let mut conn = self.platform().db().acquire().await?;
            self.owned_bucket(&mut conn, caller, bucket)
                .await
                .map_err(refused)?;
            repo::get_site_domain(&mut conn, bucket, domain.as_str())
                .await?
                .filter(|c| c.org_id == caller.org.to_string())
                .ok_or(ServiceError::NotFound("domain"))?
        };
        let records = self
            .inner
            .dns
            .txt(&domain.challenge_name())
            .await
            .map_err(|e| {
                tracing::info!(domain = %domain, error = %e, "a domain's proof could not be looked up");
                ServiceError::Conflict(format!(
                    "the DNS of {domain} did not answer ({e}); try again in a moment"
                ))
            })?;
        if !SiteDomain::proven_by(&records, &claim.token) {
            return Err(ServiceError::Conflict(format!(
                "no TXT record {} with the value {} was found yet; a new record can take some minutes to show",
                domain.challenge_name(),
                SiteDomain::challenge_value(&claim.token)
            )));
        }
        let at = self.now_ms();
        let mut tx = self.platform().db().begin_write().await?;
        self.owned_bucket(&mut tx, caller, bucket)
            .await
            .map_err(refused)?;
        repo::prove_site_domain(&mut tx, bucket, domain.as_str(), at).await?;
        self.commit_domain(tx, caller, "website.domain.prove", bucket, &domain)
            .await?;
        self.changed();
        Ok(DomainClaim::of(SiteDomainRow {
            verified_at: Some(at),
            ..claim
        }))
    }

    /// Drops a claim; a proven domain stops serving the bucket at once.
    pub async fn release_domain(
        &self,
        caller: &S3Caller,
        bucket: &str,
        domain: &str,
    ) -> ServiceResult<()> {
        let domain = self.site_domain(domain)?;
        let mut tx = self.platform().db().begin_write().await?;
        self.owned_bucket(&mut tx, caller, bucket)
            .await
            .map_err(refused)?;
        let owned = repo::get_site_domain(&mut tx, bucket, domain.as_str())
            .await?
            .is_some_and(|c| c.org_id == caller.org.to_string());
        if !owned || !repo::delete_site_domain(&mut tx, bucket, domain.as_str()).await? {
            return Err(ServiceError::NotFound("domain"));
        }
        self.commit_domain(tx, caller, "website.domain.release", bucket, &domain)
            .await?;
        self.changed();
        Ok(())
    }

    /// The bucket a proven domain serves, for the website listener: none for
    /// a name nobody proved (or a claim whose bucket changed hands).
    pub async fn bucket_of_domain(&self, domain: &str) -> ServiceResult<Option<String>> {
        let mut conn = self.platform().db().acquire().await?;
        Ok(repo::bucket_of_site_domain(&mut conn, domain).await?)
    }
}
