//! Configuration, in layers: embedded defaults, then a TOML file, then
//! `NUAGE_` environment variables (`__` for nesting, e.g.
//! `NUAGE_DATABASE__URL`), then command-line flags. With no configuration at
//! all, the embedded defaults run everything on this machine.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};
use nuage_domain::catalogue::{Price, PriceModel};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Everything `nuage serve` can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the SQLite database, object data, master key and checkpoints live.
    pub data_dir: PathBuf,
    /// The console and REST API.
    pub listen: SocketAddr,
    /// The S3 API.
    pub s3_listen: SocketAddr,
    /// The website listener, where buckets published as websites are
    /// served (none by default).
    pub website_listen: Option<SocketAddr>,
    /// Websites are `<bucket>.<website_domain>` on the website listener.
    pub website_domain: String,
    /// Certificates of websites' own domains, one folder per domain as
    /// certbot keeps them: `DIR/<domain>/fullchain.pem` and `privkey.pem`.
    /// With it the website listener speaks TLS, choosing by SNI.
    pub website_tls_dir: Option<PathBuf>,
    /// The DNS server asked for the TXT records that prove websites'
    /// domains (`IP:port`); the system's resolver when unset.
    pub dns_server: Option<SocketAddr>,
    /// The address users reach the console at (for links in e-mails);
    /// derived from `listen` when unset.
    pub public_url: Option<String>,
    /// Serve plain HTTP on a non-loopback address (behind a TLS proxy only).
    pub insecure_http: bool,
    /// The master key file; `DATA_DIR/master.key` when unset.
    pub master_key_file: Option<PathBuf>,
    /// Where new epochs of the platform's keys are made (docs/keys.md).
    pub keys: KeysConfig,
    pub tls: Option<TlsConfig>,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    /// An SMTP relay; without one, e-mails stay in the outbox.
    pub mail: Option<MailConfig>,
    /// How long a console session lasts, in hours.
    pub session_hours: u64,
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub catalogue: CatalogueConfig,
    pub billing: BillingConfig,
    pub tenders: TendersConfig,
}

/// Connections on every listener (console and API, S3, websites), and the
/// proxies in front of them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Networks (`10.0.0.0/8`) or addresses of load balancers whose
    /// `Forwarded` / `X-Forwarded-For` headers name the client; nobody
    /// else's are believed. They are not held to the per-source cap.
    pub trusted_proxies: Vec<String>,
    /// Connections one source address may hold open at once on each
    /// listener; more are closed at once (0: no cap).
    pub max_connections_per_source: usize,
    /// A connection that has not sent a request's headers within this many
    /// seconds (a new connection, or an idle keep-alive one) is closed.
    pub header_read_timeout_seconds: u64,
    /// A request body (console, API, WebDAV) that sends nothing for this
    /// long is cut.
    pub body_idle_timeout_seconds: u64,
    /// E-mails sent on anyone's request (invitations, password resets) to
    /// one address in an hour; past it, nothing more is sent.
    pub mail_per_recipient_per_hour: i64,
    /// Invitations one organisation sends in a day.
    pub invitations_per_org_per_day: i64,
    /// Who hears of vulnerabilities (`mailto:` or `https:`), published in
    /// `/.well-known/security.txt`; `mailto:security@<the console's host>`
    /// when unset.
    pub security_contact: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            max_connections_per_source: 256,
            header_read_timeout_seconds: 20,
            body_idle_timeout_seconds: 60,
            mail_per_recipient_per_hour: 5,
            invitations_per_org_per_day: 100,
            security_contact: None,
        }
    }
}

/// Calls for tender.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TendersConfig {
    /// Days between an award and the earliest signature of the contract
    /// (the délai de suspension; 11 by default, as in French procurement
    /// for electronic notification).
    pub standstill_days: u32,
}

impl Default for TendersConfig {
    fn default() -> Self {
        Self {
            standstill_days: 11,
        }
    }
}

/// Pay-per-use billing: the VAT rate and the operator's price list for
/// usage that no subscription covers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillingConfig {
    /// Bill each month by itself, an hour after it ends (every node checks;
    /// they share the work).
    pub automatic: bool,
    /// How often the schedule checks, in seconds.
    pub schedule_check_seconds: u64,
    /// How often quota alerts are checked, in seconds.
    pub alert_check_seconds: u64,
    /// The standard VAT rate, in percent.
    pub vat_rate: rust_decimal::Decimal,
    /// The operator's own list; none for the built-in one (the house's
    /// storage by use: 0.006 € per GB-month, 0.004 € per 1,000 class-A
    /// and 0.0004 € per 1,000 class-B requests, 0.01 € per GB out).
    pub pay_as_you_go: Option<PayAsYouGoConfig>,
    /// How often due invoice deliveries are sent, in seconds.
    pub delivery_check_seconds: u64,
    /// The operator's plateforme agréée, which invoices to French
    /// businesses go through (docs/billing.md says what Nuage sends it).
    pub pa: Option<PaConfig>,
    /// Chorus Pro, which invoices to public bodies go through (PISTE).
    pub chorus_pro: Option<ChorusProConfig>,
}

/// Where the platform's keys are made.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// `file`: derived from the master key file; `pkcs11`: made and used
    /// inside an HSM (`[keys.pkcs11]`). Epochs made by the master key file
    /// stay readable with it after a move to an HSM.
    pub provider: KeyProviderKind,
    pub pkcs11: Option<Pkcs11Config>,
    /// How the platform proves who it is to organisations' own KMSs
    /// (KMIP); without it, no organisation can hold its key there.
    pub kmip: Option<KmipConfig>,
    /// The longest an organisation key its own KMS released stays in
    /// memory, in seconds: the bound on how long access survives a
    /// revocation in the KMS (docs/keys.md).
    pub external_key_cache_seconds: u64,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            provider: KeyProviderKind::File,
            pkcs11: None,
            kmip: None,
            external_key_cache_seconds: 300,
        }
    }
}

/// The platform's client certificate toward organisations' KMSs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmipConfig {
    /// Its certificate and chain (PEM file); organisations grant access to it.
    pub client_cert: PathBuf,
    /// Its private key (PEM file, PKCS#8, readable by the server only).
    pub client_key: PathBuf,
    /// The longest one call to a KMS may take, in milliseconds.
    #[serde(default = "default_kmip_timeout_ms")]
    pub timeout_ms: u64,
    /// Let organisations name KMSs at internal addresses (this machine, its
    /// private networks): for closed networks only, since an owner could
    /// otherwise make the platform connect there.
    #[serde(default)]
    pub allow_private_addresses: bool,
}

fn default_kmip_timeout_ms() -> u64 {
    2000
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyProviderKind {
    #[default]
    File,
    Pkcs11,
}

/// An HSM through its PKCS#11 library.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// The vendor's library (SoftHSM2: `/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// The token's label.
    pub token_label: String,
    /// The user PIN, a string: better from `NUAGE_KEYS__PKCS11__PIN`, where
    /// a PIN of digits alone is given in double quotes (`'"1234"'`).
    #[serde(serialize_with = "never_serialize_required_secret")]
    pub pin: SecretString,
    /// What the labels of the platform's keys start with (`nuage-kek-1`…).
    #[serde(default = "default_label_prefix")]
    pub label_prefix: String,
}

fn default_label_prefix() -> String {
    "nuage".into()
}

/// The plateforme agréée's endpoint for invoices, and Nuage's token there.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaConfig {
    pub url: String,
    #[serde(serialize_with = "never_serialize_required_secret")]
    pub token: SecretString,
}

/// Chorus Pro through PISTE: the OAuth2 client and the technical account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChorusProConfig {
    pub token_url: String,
    pub api_url: String,
    pub client_id: String,
    #[serde(serialize_with = "never_serialize_required_secret")]
    pub client_secret: SecretString,
    pub account_login: String,
    #[serde(serialize_with = "never_serialize_required_secret")]
    pub account_password: SecretString,
}

/// The operator's pay-as-you-go prices, excluding VAT. Given as a table,
/// it states its currency: a price without one is refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayAsYouGoConfig {
    pub currency: String,
    #[serde(default)]
    pub per_gb_month: Price,
    #[serde(default)]
    pub per_1k_class_a: Price,
    #[serde(default)]
    pub per_1k_class_b: Price,
    #[serde(default)]
    pub per_gb_egress: Price,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            automatic: true,
            schedule_check_seconds: 300,
            alert_check_seconds: 60,
            vat_rate: rust_decimal::Decimal::from(20),
            pay_as_you_go: None,
            delivery_check_seconds: 60,
            pa: None,
            chorus_pro: None,
        }
    }
}

impl BillingConfig {
    /// Where invoices are delivered.
    pub fn delivery(&self) -> nuage_billing::DeliverySettings {
        nuage_billing::DeliverySettings {
            pa: self.pa.as_ref().map(|p| nuage_billing::PaSettings {
                url: p.url.clone(),
                token: p.token.clone(),
            }),
            chorus_pro: self
                .chorus_pro
                .as_ref()
                .map(|c| nuage_billing::ChorusProSettings {
                    token_url: c.token_url.clone(),
                    api_url: c.api_url.clone(),
                    client_id: c.client_id.clone(),
                    client_secret: c.client_secret.clone(),
                    account_login: c.account_login.clone(),
                    account_password: c.account_password.clone(),
                }),
        }
    }

    /// The pay-as-you-go prices in force.
    pub fn pay_as_you_go_prices(&self) -> PriceModel {
        let price = |s: &str| Price::parse(s, "price").unwrap_or_default();
        match &self.pay_as_you_go {
            Some(list) => list.price_model(),
            None => PriceModel {
                per_gb_month: price("0.006"),
                per_1k_class_a: price("0.004"),
                per_1k_class_b: price("0.0004"),
                per_gb_egress: price("0.01"),
                ..PriceModel::default()
            },
        }
    }
}

impl PayAsYouGoConfig {
    pub fn price_model(&self) -> PriceModel {
        PriceModel {
            per_gb_month: self.per_gb_month,
            per_1k_class_a: self.per_1k_class_a,
            per_1k_class_b: self.per_1k_class_b,
            per_gb_egress: self.per_gb_egress,
            ..PriceModel::default()
        }
    }
}

/// The single window and the directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogueConfig {
    /// The name of the house provider: the organisation whose offers this
    /// platform provisions itself (set on first start).
    pub house_name: String,
    /// Fill an empty platform with a fictional ecosystem (`serve --demo`).
    pub demo: bool,
    /// How often failed webhook deliveries are retried, in seconds.
    pub webhook_retry_seconds: u64,
    /// Let webhooks reach loopback and private addresses (tests and
    /// development only).
    pub webhook_allow_private_addresses: bool,
    /// How many matches a search reads at most: beyond, it ranks a fair
    /// sample of this size and estimates the facet counts.
    pub search_sample: u32,
}

impl Default for CatalogueConfig {
    fn default() -> Self {
        Self {
            house_name: "Nuage".into(),
            demo: false,
            webhook_retry_seconds: 30,
            webhook_allow_private_addresses: false,
            search_sample: 1000,
        }
    }
}

/// Object storage: regions, limits and upkeep.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// The regions buckets can live in; the first is the default.
    pub regions: Vec<RegionConfig>,
    /// With a root domain, `<bucket>.<root domain>` addresses a bucket
    /// (virtual-host style) besides path style.
    pub root_domain: Option<String>,
    /// Incomplete multipart uploads are aborted after this many hours.
    pub upload_expiry_hours: u64,
    /// A request body that sends nothing for this long is abandoned.
    pub body_idle_timeout_seconds: u64,
    /// Requests served at once; more get `503 SlowDown`.
    pub max_concurrent_requests: usize,
    /// The largest object a browser form (`POST` Object) uploads: its file
    /// is held in memory until the form's policy is checked, so it stays
    /// small; larger objects go up with `PUT` or multipart uploads.
    pub post_object_max_bytes: u64,
    /// Browser-form uploads read at once; more get `503 SlowDown`. With
    /// `post_object_max_bytes`, bounds the memory they can take.
    pub max_concurrent_post_objects: usize,
    /// Unsigned requests to a bucket (served where a bucket policy lets
    /// them in, refused elsewhere), per second; more get `503 SlowDown`.
    pub anonymous_requests_per_second: u32,
    /// The length of a day in lifecycle rules (86400; shorter only for tests).
    pub lifecycle_day_seconds: u64,
    /// How often released blobs, orphans, expired uploads and lifecycle
    /// rules are handled.
    pub maintenance_interval_seconds: u64,
    /// How often the access log and metering are written, in milliseconds.
    pub flush_interval_ms: u64,
    /// Blobs without metadata are collected when older than this.
    pub orphan_grace_seconds: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            regions: vec![RegionConfig {
                name: "fr-par".into(),
                jurisdiction: "FR".into(),
                location: "France".into(),
                path: None,
                s3: None,
                swift: None,
                block_public_access: false,
            }],
            root_domain: None,
            upload_expiry_hours: 7 * 24,
            body_idle_timeout_seconds: 60,
            max_concurrent_requests: 512,
            post_object_max_bytes: 32 * 1024 * 1024,
            anonymous_requests_per_second: 100,
            max_concurrent_post_objects: 4,
            lifecycle_day_seconds: 86_400,
            maintenance_interval_seconds: 300,
            flush_interval_ms: 1000,
            orphan_grace_seconds: 3600,
        }
    }
}

/// A region the operator declares.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    /// The name clients give as LocationConstraint.
    pub name: String,
    /// The jurisdiction the data is under (e.g. `FR`, `EU`).
    pub jurisdiction: String,
    /// Where the data is, in words.
    pub location: String,
    /// The folder of the region's blobs; `DATA_DIR/blobs/NAME` when no
    /// backend is given.
    pub path: Option<PathBuf>,
    /// Or a bucket of an S3-compatible store.
    pub s3: Option<RemoteS3Config>,
    /// Or a container of an OpenStack Swift store.
    pub swift: Option<RemoteSwiftConfig>,
    /// Keeps Block Public Access on for every bucket of the region, whatever
    /// its owner sets: no bucket there can be made public.
    #[serde(default)]
    pub block_public_access: bool,
}

/// A bucket of an S3-compatible store that holds a region's (sealed) blobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteS3Config {
    pub endpoint: String,
    pub bucket: String,
    #[serde(default = "default_s3_region")]
    pub region: String,
    pub access_key_id: String,
    #[serde(serialize_with = "never_serialize_required_secret")]
    pub secret_access_key: SecretString,
    /// A folder inside the bucket.
    #[serde(default)]
    pub root: String,
}

fn default_s3_region() -> String {
    "us-east-1".into()
}

/// A container of an OpenStack Swift store that holds a region's blobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteSwiftConfig {
    pub endpoint: String,
    pub container: String,
    #[serde(serialize_with = "never_serialize_required_secret")]
    pub token: SecretString,
    #[serde(default)]
    pub root: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://…`; `DATA_DIR/nuage.db` when unset.
    pub url: Option<String>,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `nuage=debug,sqlx=warn`.
    pub filter: String,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub username: Option<String>,
    #[serde(serialize_with = "never_serialize_secret", default)]
    pub password: Option<SecretString>,
    pub from: String,
}

/// Secrets are read from configuration, never written back out.
fn never_serialize_required_secret<S: serde::Serializer>(
    _: &SecretString,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str("")
}

fn never_serialize_secret<S: serde::Serializer>(
    _: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_none()
}

impl std::fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailConfig")
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("from", &self.from)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("nuage-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            s3_listen: SocketAddr::from(([127, 0, 0, 1], 9000)),
            website_listen: None,
            website_domain: "sites.localhost".into(),
            website_tls_dir: None,
            dns_server: None,
            public_url: None,
            insecure_http: false,
            master_key_file: None,
            keys: KeysConfig::default(),
            tls: None,
            database: DatabaseConfig {
                url: None,
                max_connections: 16,
            },
            log: LogConfig {
                format: LogFormat::Text,
                filter: "info,sqlx=warn,s3s=off".into(),
            },
            mail: None,
            session_hours: 12,
            server: ServerConfig::default(),
            storage: StorageConfig::default(),
            catalogue: CatalogueConfig::default(),
            billing: BillingConfig::default(),
            tenders: TendersConfig::default(),
        }
    }
}

/// Settings renamed since a release: a deployed configuration (file or
/// `NUAGE_` variable) that still gives the old name starts as before; the
/// new name wins where both are given.
const RENAMED: [(&str, &str); 3] = [
    ("web_listen", "website_listen"),
    ("web_domain", "website_domain"),
    ("web_tls_dir", "website_tls_dir"),
];

/// A configuration source whose renamed settings ([`RENAMED`]) are read
/// under their current names.
struct Aliased<P>(P);

impl<P: Provider> Provider for Aliased<P> {
    fn metadata(&self) -> Metadata {
        self.0.metadata()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut data = self.0.data()?;
        for dict in data.values_mut() {
            for (old, new) in RENAMED {
                if let Some(value) = dict.remove(old) {
                    dict.entry(new.to_owned()).or_insert(value);
                }
            }
        }
        Ok(data)
    }
}

/// The top-level keys that `NUAGE_` variables may set. Other `NUAGE_`
/// variables (the client's `NUAGE_CLI_*`, `NUAGE_ROOT_TOKEN`) are not
/// configuration of the server.
const ENV_KEYS: [&str; 24] = [
    "data_dir",
    "listen",
    "s3_listen",
    "website_listen",
    "website_domain",
    "website_tls_dir",
    "web_listen",
    "web_domain",
    "web_tls_dir",
    "dns_server",
    "public_url",
    "insecure_http",
    "master_key_file",
    "keys",
    "tls",
    "database",
    "log",
    "mail",
    "session_hours",
    "server",
    "storage",
    "catalogue",
    "billing",
    "tenders",
];

/// `NUAGE_` variables that are not server configuration.
const OTHER_NUAGE_VARIABLES: [&str; 8] = [
    "cli_server",
    "cli_token",
    "cli_ca_cert",
    "root_token",
    "config",
    "test_database_url",
    "test_crash_after_invoices",
    "test_clock_ms",
];

/// Says which `NUAGE_` variables will be ignored: a typo such as
/// `NUAGE_DATABASE_URL` (one underscore) must not go unnoticed.
fn warn_unknown_environment() {
    for (name, _) in std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v))) {
        let Some(key) = name.strip_prefix("NUAGE_").map(str::to_ascii_lowercase) else {
            continue;
        };
        let known = ENV_KEYS.iter().any(|top| {
            key == *top
                || key
                    .strip_prefix(*top)
                    .is_some_and(|rest| rest.starts_with("__"))
        });
        if !known && !OTHER_NUAGE_VARIABLES.contains(&key.as_str()) {
            eprintln!(
                "nuage: warning: {name} is not a configuration variable and is ignored (nesting uses a double underscore, e.g. NUAGE_DATABASE__URL)"
            );
        }
    }
}

impl Config {
    /// Reads the layers. `file` is `--config`; without it `nuage.toml` in the
    /// working directory is read if present. `flags` are the command line's
    /// overrides, already in the config's shape.
    pub fn load(file: Option<&Path>, flags: &impl Serialize) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.exists() {
                    bail!("the configuration file {} does not exist", path.display());
                }
                figment = figment.merge(Aliased(Toml::file_exact(path)));
            }
            None if Path::new("nuage.toml").exists() => {
                figment = figment.merge(Aliased(Toml::file_exact("nuage.toml")))
            }
            None => {}
        }
        let env = Env::prefixed("NUAGE_")
            .filter(|key| {
                let key = key.as_str().to_ascii_lowercase();
                ENV_KEYS.iter().any(|top| {
                    key == *top
                        || key
                            .strip_prefix(*top)
                            .is_some_and(|rest| rest.starts_with("__") || rest.starts_with('.'))
                })
            })
            .split("__");
        warn_unknown_environment();
        let config: Config = figment
            .merge(Aliased(env))
            .merge(Serialized::defaults(flags))
            .extract()
            .context("invalid configuration")?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        let web_plain = self
            .website_tls_dir
            .is_none()
            .then_some(self.website_listen);
        let exposed = [Some(self.listen), Some(self.s3_listen), web_plain.flatten()]
            .into_iter()
            .flatten()
            .find(|a| !a.ip().is_loopback());
        if let Some(addr) = exposed
            && self.tls.is_none()
            && !self.insecure_http
        {
            bail!(
                "refusing to listen on {addr} without TLS: give --tls-cert and --tls-key, \
                 or --insecure-http if a TLS proxy stands in front"
            );
        }
        if self.keys.provider == KeyProviderKind::Pkcs11 && self.keys.pkcs11.is_none() {
            bail!("keys.provider is pkcs11: give [keys.pkcs11] (module, token_label, pin)");
        }
        if self.catalogue.house_name.trim().is_empty()
            || self.catalogue.house_name.chars().count() > 200
        {
            bail!("catalogue.house_name must have 1 to 200 characters");
        }
        if self.catalogue.webhook_retry_seconds == 0 {
            bail!("catalogue.webhook_retry_seconds must be at least 1");
        }
        if !(1..=100_000).contains(&self.catalogue.search_sample) {
            bail!("catalogue.search_sample must be between 1 and 100000");
        }
        if self.tenders.standstill_days > 365 {
            bail!("tenders.standstill_days is at most 365");
        }
        if self.billing.schedule_check_seconds == 0 || self.billing.alert_check_seconds == 0 {
            bail!(
                "billing.schedule_check_seconds and billing.alert_check_seconds must be at least 1"
            );
        }
        if let Some(list) = &self.billing.pay_as_you_go
            && list.currency != "EUR"
        {
            bail!(
                "billing.pay_as_you_go.currency is {:?}: prices are in euros (EUR)",
                list.currency
            );
        }
        if self.billing.vat_rate.is_sign_negative()
            || self.billing.vat_rate >= rust_decimal::Decimal::from(100)
        {
            bail!("billing.vat_rate is a percentage, from 0 to under 100");
        }
        if self.session_hours == 0 || self.session_hours > 24 * 30 {
            bail!("session_hours must be between 1 and 720");
        }
        if self.database.max_connections == 0 {
            bail!("database.max_connections must be at least 1");
        }
        let regions = &self.storage.regions;
        if regions.is_empty() {
            bail!("storage.regions must declare at least one region");
        }
        for (i, r) in regions.iter().enumerate() {
            if r.name.is_empty() || regions[..i].iter().any(|o| o.name == r.name) {
                bail!("storage.regions: every region has a name of its own");
            }
            let backends = [r.path.is_some(), r.s3.is_some(), r.swift.is_some()];
            if backends.iter().filter(|b| **b).count() > 1 {
                bail!(
                    "storage.regions: region {} has one backend: path, s3 or swift",
                    r.name
                );
            }
        }
        if self.storage.max_concurrent_requests == 0 || self.storage.lifecycle_day_seconds == 0 {
            bail!(
                "storage.max_concurrent_requests and storage.lifecycle_day_seconds are at least 1"
            );
        }
        Ok(())
    }

    pub fn database_url(&self) -> String {
        self.database.url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("nuage.db").display()
            )
        })
    }

    pub fn master_key_path(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's test jail returns its own error type
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct NoFlags {}

    #[test]
    fn a_price_list_without_its_currency_or_in_another_is_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "none.toml",
                "[billing.pay_as_you_go]\nper_gb_month = \"0.01\"\n",
            )?;
            let refused =
                Config::load(Some(Path::new("none.toml")), &NoFlags {}).expect_err("no currency");
            assert!(format!("{refused:#}").contains("currency"), "{refused:#}");
            jail.create_file(
                "usd.toml",
                "[billing.pay_as_you_go]\ncurrency = \"USD\"\nper_gb_month = \"0.01\"\n",
            )?;
            let refused =
                Config::load(Some(Path::new("usd.toml")), &NoFlags {}).expect_err("not euros");
            assert!(format!("{refused:#}").contains("EUR"), "{refused:#}");
            jail.create_file(
                "eur.toml",
                "[billing.pay_as_you_go]\ncurrency = \"EUR\"\nper_gb_month = \"0.01\"\n",
            )?;
            let config = Config::load(Some(Path::new("eur.toml")), &NoFlags {}).expect("loads");
            assert_eq!(
                config.billing.pay_as_you_go_prices().per_gb_month,
                Price::parse("0.01", "price").expect("test value")
            );
            Ok(())
        });
    }

    #[test]
    fn defaults_need_no_configuration() {
        figment::Jail::expect_with(|_| {
            let config = Config::load(None, &NoFlags {}).expect("defaults load");
            assert_eq!(config.data_dir, PathBuf::from("nuage-data"));
            assert!(
                config
                    .database_url()
                    .starts_with("sqlite://nuage-data/nuage.db")
            );
            Ok(())
        });
    }

    #[test]
    fn file_then_environment_then_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("n.toml", "data_dir = \"/from-file\"\nsession_hours = 3\n[database]\nurl = \"sqlite://file.db\"\nmax_connections = 4\n")?;
            jail.set_env("NUAGE_DATABASE__URL", "postgres://env/db");
            jail.set_env("NUAGE_CLI_TOKEN", "not server configuration");
            #[derive(Serialize)]
            struct Flags {
                data_dir: &'static str,
            }
            let config = Config::load(
                Some(Path::new("n.toml")),
                &Flags {
                    data_dir: "/from-flag",
                },
            )
            .expect("loads");
            assert_eq!(config.data_dir, PathBuf::from("/from-flag"));
            assert_eq!(config.database.url.as_deref(), Some("postgres://env/db"));
            assert_eq!(config.database.max_connections, 4);
            assert_eq!(config.session_hours, 3);
            Ok(())
        });
    }

    #[test]
    fn the_website_settings_old_names_still_start_a_deployed_configuration() {
        figment::Jail::expect_with(|jail| {
            // Where a source gives both names, the current one wins.
            jail.create_file(
                "both.toml",
                "web_domain = \"old.example.org\"\nwebsite_domain = \"new.example.org\"\n",
            )?;
            let config = Config::load(Some(Path::new("both.toml")), &NoFlags {}).expect("loads");
            assert_eq!(config.website_domain, "new.example.org");
            jail.create_file(
                "old.toml",
                "web_listen = \"127.0.0.1:8081\"\nweb_tls_dir = \"/certs\"\n",
            )?;
            jail.set_env("NUAGE_WEB_DOMAIN", "sites.example.org");
            let config = Config::load(Some(Path::new("old.toml")), &NoFlags {}).expect("loads");
            let listen = |port| Some(SocketAddr::from(([127, 0, 0, 1], port)));
            assert_eq!(config.website_listen, listen(8081));
            assert_eq!(config.website_tls_dir, Some(PathBuf::from("/certs")));
            assert_eq!(config.website_domain, "sites.example.org");
            // A later source overrides an earlier one under either name.
            jail.set_env("NUAGE_WEBSITE_LISTEN", "127.0.0.1:8082");
            let config = Config::load(Some(Path::new("old.toml")), &NoFlags {}).expect("loads");
            assert_eq!(config.website_listen, listen(8082));
            Ok(())
        });
    }

    #[test]
    fn typos_and_exposed_plain_http_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("typo.toml", "data_dri = \"x\"\n")?;
            assert!(Config::load(Some(Path::new("typo.toml")), &NoFlags {}).is_err());
            jail.create_file("open.toml", "listen = \"0.0.0.0:8080\"\n")?;
            let err = Config::load(Some(Path::new("open.toml")), &NoFlags {}).expect_err("refused");
            assert!(err.to_string().contains("without TLS"));
            Ok(())
        });
    }

    #[test]
    fn mail_password_is_not_in_debug_output() {
        let mail = MailConfig {
            smtp_host: "h".into(),
            smtp_port: 25,
            username: None,
            password: Some("hunter2-secret".to_owned().into()),
            from: "a@b.fr".into(),
        };
        assert!(!format!("{mail:?}").contains("hunter2"));
    }

    #[test]
    fn delivery_secrets_are_not_in_debug_output_nor_written_back() {
        let billing = BillingConfig {
            pa: Some(PaConfig {
                url: "https://pa.example".into(),
                token: "pa-token-secret".to_owned().into(),
            }),
            chorus_pro: Some(ChorusProConfig {
                token_url: "https://oauth.example".into(),
                api_url: "https://api.example".into(),
                client_id: "client".into(),
                client_secret: "client-secret-value".to_owned().into(),
                account_login: "login".into(),
                account_password: "account-password-value".to_owned().into(),
            }),
            ..BillingConfig::default()
        };
        let shown = format!("{billing:?} {:?}", billing.delivery());
        let written = serde_json::to_string(&billing).expect("serialised");
        for secret in [
            "pa-token-secret",
            "client-secret-value",
            "account-password-value",
        ] {
            assert!(!shown.contains(secret), "{shown}");
            assert!(!written.contains(secret), "{written}");
        }
    }
}
