//! The command line: `nuage serve` runs the platform; the other commands are a
//! client of a running server's REST API, with JSON output for scripts.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub mod client;
mod output;
pub mod tender;

use crate::config::LogFormat;
use client::{Client, ClientError};
use nuage_api::CreatedS3Key;
use nuage_billing::{RevenueRow, RunSummary};
use nuage_domain::billing::{DayUsage, Invoice};
use nuage_domain::platform_key::KeyPurpose;
use nuage_service::ChainReport;
use nuage_service::accounts::{Org, User};
use nuage_service::platform_keys::{PlatformKey, RewrapProgress};
use nuage_service::tokens::S3Key;
use nuage_storage::StorageUsage;
use nuage_storage::rotation::KeyRotation;
use output::{date_of_ms, fail, show, urlencode};

#[derive(Debug, Parser)]
#[command(
    name = "nuage",
    version,
    about = "Nuage, a sovereign cloud platform: the server and its client"
)]
pub struct Cli {
    /// The server's address, for client commands (e.g. http://127.0.0.1:8080).
    #[arg(long, global = true, env = "NUAGE_CLI_SERVER")]
    pub server: Option<String>,
    /// An API token or the operator's root token, for client commands.
    #[arg(long, global = true, env = "NUAGE_CLI_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A PEM certificate to trust besides the system's, for a server with its own CA.
    #[arg(long, global = true, env = "NUAGE_CLI_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the platform.
    Serve(ServeArgs),
    /// Operator commands.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// An organisation's usage per bucket and day, as it accrues.
    Usage {
        #[arg(long)]
        org: String,
        /// The first day, YYYY-MM-DD (the month's first by default).
        #[arg(long)]
        from: Option<String>,
        /// The last day, included (today by default).
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// An organisation's invoices and credit notes, received and issued.
    Invoices {
        #[arg(long)]
        org: String,
        #[arg(long)]
        json: bool,
    },
    /// Calls for tender: the opening key, sealed bids and receipts, opening,
    /// evaluation, award and signature.
    Tender {
        #[command(subcommand)]
        command: tender::TenderCommand,
    },
}

/// Flags of `serve`; each overrides the configuration file and environment.
#[derive(Debug, Args, Serialize)]
pub struct ServeArgs {
    /// A TOML configuration file (default: ./nuage.toml if present).
    #[arg(long, env = "NUAGE_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Where data, the master key and the database live (default ./nuage-data).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// The console and API address (default 127.0.0.1:8080; port 0 picks one).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// The S3 address (default 127.0.0.1:9000; port 0 picks one).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_listen: Option<SocketAddr>,
    /// The website listener's address (none by default; port 0 picks one):
    /// buckets published as websites, as <bucket>.<website_domain>.
    #[arg(long, alias = "web-listen")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website_listen: Option<SocketAddr>,
    /// Certificates of websites' own domains: DIR/<domain>/fullchain.pem and
    /// privkey.pem (certbot's layout); the website listener then speaks TLS.
    #[arg(long, alias = "web-tls-dir")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website_tls_dir: Option<PathBuf>,
    /// The DNS server (IP:port) asked for websites' domain proofs (default:
    /// the system's resolver).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_server: Option<SocketAddr>,
    /// The master key file (default DATA_DIR/master.key, generated if absent).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_key_file: Option<PathBuf>,
    /// PEM certificate chain for TLS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    #[serde(skip)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS (with --tls-cert).
    #[arg(long, requires = "tls_cert")]
    #[serde(skip)]
    pub tls_key: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback address (only behind a TLS proxy).
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub insecure_http: bool,
    /// The console's public address, for links in e-mails.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Log format.
    #[arg(long, value_enum)]
    #[serde(skip)]
    pub log_format: Option<LogFormat>,
    /// Fill an empty platform with a fictional ecosystem of providers,
    /// publishers and buyers; their logins go to DATA_DIR/demo-credentials.txt.
    #[arg(long)]
    #[serde(skip)]
    pub demo: bool,
}

impl ServeArgs {
    /// The flags in the configuration's shape, for the last layer.
    pub fn overrides(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or_else(|_| json!({}));
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            value["tls"] = json!({ "cert": cert, "key": key });
        }
        if let Some(format) = self.log_format {
            value["log"] = json!({ "format": format });
        }
        if self.demo {
            value["catalogue"] = json!({ "demo": true });
        }
        value
    }
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Organisations.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// S3 access keys.
    #[command(name = "s3-key")]
    S3Key {
        #[command(subcommand)]
        command: S3KeyCommand,
    },
    /// Storage quotas of organisations.
    Quota {
        #[command(subcommand)]
        command: QuotaCommand,
    },
    /// Billing runs and revenue.
    Billing {
        #[command(subcommand)]
        command: BillingCommand,
    },
    /// The platform's keys: their epochs, rotation.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Every key the platform has had, by purpose and epoch.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Start a new epoch of a platform key: kek (wraps organisation keys,
    /// which are then rewrapped), audit (links the audit chain) or signing
    /// (signs checkpoints and receipts); or a new version of an
    /// organisation's key (`org --org ID`), whose data keys are then
    /// rewrapped. What older epochs and versions made stays readable.
    Rotate {
        /// kek, audit, signing, or org.
        purpose: String,
        /// The organisation, for `org`.
        #[arg(long)]
        org: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BillingCommand {
    /// Bill a month that is over: one invoice per customer and provider.
    /// Running it again finishes an interrupted run, or reports a complete one.
    Run {
        /// The month, YYYY-MM (UTC).
        #[arg(long)]
        period: String,
        #[arg(long)]
        json: bool,
    },
    /// Net revenue per month, provider and offer.
    Revenue {
        /// The first month, YYYY-MM.
        #[arg(long)]
        from: String,
        /// The last month, included (the first by default).
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum QuotaCommand {
    /// Set an organisation's quota; a limit left out is no limit.
    Set {
        #[arg(long)]
        org: String,
        /// The most bytes the organisation may store (all versions and parts).
        #[arg(long)]
        bytes: Option<u64>,
        /// The most objects the organisation may store (all versions).
        #[arg(long)]
        objects: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Show an organisation's storage use and quota.
    Show {
        #[arg(long)]
        org: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organisation.
    Create {
        #[arg(long)]
        name: String,
        /// public, company or person.
        #[arg(long)]
        kind: String,
        #[arg(long)]
        siret: Option<String>,
        #[arg(long)]
        vat_number: Option<String>,
        /// ISO 3166-1 alpha-2, for VAT (the VAT number's, else FR, by default).
        #[arg(long)]
        country: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List organisations.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user in an organisation (or an operator); the password is read from stdin.
    Create {
        /// The organisation the user joins (not with --operator).
        #[arg(
            long,
            required_unless_present = "operator",
            conflicts_with = "operator"
        )]
        org: Option<String>,
        /// Make the user an operator of the platform, in no organisation.
        #[arg(long)]
        operator: bool,
        #[arg(long)]
        email: String,
        /// Read the password from standard input (required: never on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// owner, admin, buyer, billing or member.
        #[arg(long, default_value = "member")]
        role: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum S3KeyCommand {
    /// Create an S3 access key for an organisation.
    Create {
        #[arg(long)]
        org: String,
        /// An export key, for leaving the platform: read-only, 30 days, its
        /// downloads are exit egress and never charged.
        #[arg(long)]
        export: bool,
        #[arg(long)]
        json: bool,
    },
    /// Revoke an S3 access key at once.
    Revoke {
        access_key_id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole audit chain: exit 0 intact, 1 tampered, 2 cannot check.
    Verify {
        #[arg(long)]
        json: bool,
    },
}

/// Runs a client command. Exit codes: 0 done, 1 refused by the server
/// (or tampering found), 2 could not ask (usage, network, authentication).
pub async fn run_client(cli: &Cli) -> ExitCode {
    if let Command::Tender { command } = &cli.command
        && let Some(code) = tender::run_offline(command, cli.server.as_deref()).await
    {
        return code;
    }
    let client = match Client::new(
        cli.server.as_deref(),
        cli.token.as_deref(),
        cli.ca_cert.as_deref(),
    ) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let outcome = match &cli.command {
        Command::Serve(_) => unreachable_serve(),
        Command::Admin { command } => run_admin(&client, command).await,
        Command::Audit {
            command: AuditCommand::Verify { json },
        } => return verify_audit(&client, *json).await,
        Command::Tender { command } => tender::run(&client, command).await,
        Command::Usage {
            org,
            from,
            to,
            json,
        } => usage(&client, org, from.as_deref(), to.as_deref(), *json).await,
        Command::Invoices { org, json } => match client
            .get(&format!("/orgs/{}/invoices", urlencode(org)))
            .await
        {
            Ok(invoices) => show(invoices, *json, |all: &Vec<Invoice>| {
                all.iter()
                    .map(|i| {
                        format!(
                            "{}\t{}\t{}\t{} → {}\t{} € incl. VAT",
                            i.number,
                            i.period,
                            i.kind,
                            i.document.issuer.name,
                            i.document.customer.name,
                            i.gross
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
            Err(e) => Err(e),
        },
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

async fn usage(
    client: &Client,
    org: &str,
    from: Option<&str>,
    to: Option<&str>,
    json: bool,
) -> Result<(), ClientError> {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in [("from", from), ("to", to)] {
        if let Some(v) = value {
            query.append_pair(name, v);
        }
    }
    let days = client
        .get(&format!(
            "/orgs/{}/usage?{}",
            urlencode(org),
            query.finish()
        ))
        .await?;
    show(days, json, |days: &Vec<DayUsage>| {
        let mut lines = vec![format!(
            "{:<10}  {:<24}  {:>16}  {:>10}  {:>10}  {:>12}  {:>12}",
            "day", "bucket", "GB-months", "class A", "class B", "egress GB", "exit GB"
        )];
        for d in days {
            lines.push(format!(
                "{:<10}  {:<24}  {:>16}  {:>10}  {:>10}  {:>12}  {:>12}",
                d.day,
                d.bucket,
                d.storage_gb_months.to_string(),
                d.class_a_requests,
                d.class_b_requests,
                d.egress_gb.to_string(),
                d.exit_egress_gb.to_string(),
            ));
        }
        lines.join("\n")
    })
}

fn unreachable_serve() -> Result<(), ClientError> {
    Err(ClientError::Usage("serve is not a client command".into()))
}

async fn run_admin(client: &Client, command: &AdminCommand) -> Result<(), ClientError> {
    match command {
        AdminCommand::Org {
            command:
                OrgCommand::Create {
                    name,
                    kind,
                    siret,
                    vat_number,
                    country,
                    json,
                },
        } => {
            let org = client.post("/orgs", &json!({ "name": name, "kind": kind, "siret": siret, "vat_number": vat_number, "country": country })).await?;
            show(org, *json, org_line)?;
        }
        AdminCommand::Org {
            command: OrgCommand::List { json },
        } => {
            let orgs = client.get_all("/orgs").await?;
            show(Value::Array(orgs), *json, |orgs: &Vec<Org>| {
                orgs.iter().map(org_line).collect::<Vec<_>>().join("\n")
            })?;
        }
        AdminCommand::User {
            command:
                UserCommand::Create {
                    org,
                    operator,
                    email,
                    password_stdin: _,
                    role,
                    display_name,
                    json,
                },
        } => {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .map_err(|e| {
                    ClientError::Usage(format!("cannot read the password from stdin: {e}"))
                })?;
            let password = password.trim_end_matches(['\r', '\n']);
            let user = match org {
                Some(org) if !operator => client.post("/users", &json!({ "org_id": org, "email": email, "password": password, "role": role, "display_name": display_name })).await?,
                _ => client.post("/operators", &json!({ "email": email, "password": password, "display_name": display_name })).await?,
            };
            show(user, *json, |u: &User| format!("{}\t{}", u.id, u.email))?;
        }
        AdminCommand::S3Key {
            command: S3KeyCommand::Create { org, export, json },
        } => {
            let purpose = if *export { "export" } else { "access" };
            let key = client
                .post(
                    &format!("/orgs/{}/s3-keys", urlencode(org)),
                    &json!({ "purpose": purpose }),
                )
                .await?;
            let out = json!({ "access_key_id": key["access_key_id"], "secret_access_key": key["secret_access_key"], "org_id": key["org_id"], "purpose": key["purpose"], "expires_at_ms": key["expires_at_ms"] });
            show(if *json { out } else { key }, *json, |k: &CreatedS3Key| {
                let expiry = match k.expires_at_ms {
                    Some(at) => format!(
                        "\nexport key: read-only, its downloads are not charged; it expires {}",
                        date_of_ms(at)
                    ),
                    None => String::new(),
                };
                format!(
                    "access key id: {}\nsecret access key: {}\n(the secret is shown only now){expiry}",
                    k.access_key_id, k.secret_access_key
                )
            })?;
        }
        AdminCommand::Quota {
            command:
                QuotaCommand::Set {
                    org,
                    bytes,
                    objects,
                    json,
                },
        } => {
            let usage = client
                .put(
                    &format!("/orgs/{}/quota", urlencode(org)),
                    &json!({ "max_bytes": bytes, "max_objects": objects }),
                )
                .await?;
            show(usage, *json, quota_line)?;
        }
        AdminCommand::Quota {
            command: QuotaCommand::Show { org, json },
        } => {
            let usage = client
                .get(&format!("/orgs/{}/storage", urlencode(org)))
                .await?;
            show(usage, *json, quota_line)?;
        }
        AdminCommand::S3Key {
            command:
                S3KeyCommand::Revoke {
                    access_key_id,
                    json,
                },
        } => {
            let key = client
                .delete(&format!("/s3-keys/{}", urlencode(access_key_id)))
                .await?;
            show(key, *json, |k: &S3Key| {
                format!("revoked {}", k.access_key_id)
            })?;
        }
        AdminCommand::Billing {
            command: BillingCommand::Run { period, json },
        } => {
            let run = client
                .post("/billing/runs", &json!({ "period": period }))
                .await?;
            show(run, *json, |r: &RunSummary| {
                format!(
                    "{}: {} invoices ({} issued now), {} € excl. VAT, {} € incl. VAT",
                    r.period, r.invoices, r.issued_now, r.net, r.gross
                )
            })?;
        }
        AdminCommand::Billing {
            command: BillingCommand::Revenue { from, to, json },
        } => {
            let to = to.as_deref().unwrap_or(from);
            let rows = client
                .get(&format!(
                    "/billing/revenue?from={}&to={}",
                    urlencode(from),
                    urlencode(to)
                ))
                .await?;
            show(rows, *json, |rows: &Vec<RevenueRow>| {
                rows.iter()
                    .map(|r| format!("{}\t{}\t{}\t{} €", r.month, r.provider_name, r.offer, r.net))
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        AdminCommand::Keys {
            command: KeysCommand::List { json },
        } => {
            let keys = client.get("/platform/keys").await?;
            show(keys, *json, |keys: &Vec<PlatformKey>| {
                keys.iter().map(key_line).collect::<Vec<_>>().join("\n")
            })?;
        }
        AdminCommand::Keys {
            command:
                KeysCommand::Rotate {
                    purpose,
                    org: Some(org),
                    json,
                },
        } if purpose == "org" => {
            let path = format!("/orgs/{}/key", urlencode(org));
            client.post(&format!("{path}/rotate"), &json!({})).await?;
            // The data keys are rewrapped now rather than at the job's next
            // turn; the answer says how far that went.
            client.post("/jobs/key-rewrap/run", &json!({})).await?;
            show(client.get(&path).await?, *json, |k: &KeyRotation| {
                if k.rewrapping {
                    format!(
                        "organisation key version {}: rewrapping, {} data keys so far, {} objects to go",
                        k.version, k.rewrapped, k.remaining_objects
                    )
                } else {
                    format!(
                        "organisation key version {}: every data key rewrapped",
                        k.version
                    )
                }
            })?;
        }
        AdminCommand::Keys {
            command: KeysCommand::Rotate { purpose, json, .. },
        } => {
            if purpose == "org" {
                return Err(ClientError::Usage("give the organisation: --org ID".into()));
            }
            let key = client
                .post(
                    &format!("/platform/keys/{}/rotate", urlencode(purpose)),
                    &json!({}),
                )
                .await?;
            let rotated = PlatformKey::deserialize(&key)
                .map_err(|e| ClientError::Unexpected(e.to_string()))?;
            // The organisation keys are rewrapped now rather than at the
            // job's next turn; the answer says how far that went.
            let rewrap = if rotated.purpose == KeyPurpose::Kek {
                client.post("/jobs/key-rewrap/run", &json!({})).await?;
                Some(client.get("/platform/keys/rewrap").await?)
            } else {
                None
            };
            if *json {
                println!("{}", json!({ "key": key, "rewrap": rewrap }));
            } else {
                println!("{}", key_line(&rotated));
                if let Some(progress) = rewrap {
                    show(progress, false, |p: &RewrapProgress| {
                        format!(
                            "organisation keys: {} wrapped at epoch {}, {} behind",
                            p.rewrapped, p.epoch, p.remaining
                        )
                    })?;
                }
            }
        }
    }
    Ok(())
}

fn key_line(k: &PlatformKey) -> String {
    let state = match k.retired_at_ms {
        Some(at) => format!("retired {}", date_of_ms(at)),
        None => "current".to_owned(),
    };
    format!(
        "{}\tepoch {}\t{}\t{}\t{}{}",
        k.purpose.as_str(),
        k.epoch,
        k.provider,
        k.fingerprint,
        state,
        k.public_key
            .as_deref()
            .map(|p| format!("\tpublic key {p}"))
            .unwrap_or_default()
    )
}

async fn verify_audit(client: &Client, json: bool) -> ExitCode {
    let report = match client.get("/audit/verify").await {
        Ok(r) => r,
        Err(e) => {
            fail(&e);
            return ExitCode::from(2);
        }
    };
    let intact = report["intact"].as_bool() == Some(true);
    let shown = show(report, json, |r: &ChainReport| {
        if r.intact {
            format!("audit chain intact: {} entries verified", r.entries)
        } else {
            format!(
                "AUDIT CHAIN BROKEN at entry {}: {}",
                r.broken_at
                    .map_or_else(|| "?".to_owned(), |n| n.to_string()),
                r.reason.as_deref().unwrap_or("unknown")
            )
        }
    });
    if let Err(e) = shown {
        return fail(&e);
    }
    if intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn quota_line(u: &StorageUsage) -> String {
    let limit = |v: Option<i64>| v.map_or_else(|| "no limit".to_owned(), |n| n.to_string());
    format!(
        "bytes: {} of {}\nobjects: {} of {}",
        u.bytes,
        limit(u.max_bytes),
        u.objects,
        limit(u.max_objects)
    )
}

fn org_line(o: &Org) -> String {
    format!("{}\t{}\t{}", o.id, o.kind.as_str(), o.name)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn the_website_flags_old_names_are_still_accepted() {
        for (listen, tls) in [
            ("--website-listen", "--website-tls-dir"),
            ("--web-listen", "--web-tls-dir"),
        ] {
            let cli = Cli::try_parse_from(["nuage", "serve", listen, "127.0.0.1:0", tls, "/certs"])
                .expect("parses");
            let Command::Serve(args) = cli.command else {
                panic!("not serve");
            };
            assert_eq!(
                args.website_listen,
                Some(SocketAddr::from(([127, 0, 0, 1], 0)))
            );
            assert_eq!(args.website_tls_dir, Some(PathBuf::from("/certs")));
        }
    }
}
