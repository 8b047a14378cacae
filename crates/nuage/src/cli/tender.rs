//! `nuage tender`: the buyer's opening key made on the buyer's machine, bids
//! sealed on the bidder's machine (age, X25519) before they leave it, receipts
//! checked against the platform's published key, and the buyer's procedure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use age::secrecy::ExposeSecret;
use base64::Engine as _;
use clap::Subcommand;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use nuage_domain::tender::{Bid, SignedReceipt, TenderSpec, Warning};
use nuage_procurement::tender_changes::{AmendmentView, QuestionView, VersionView};
use nuage_procurement::tender_documents::DocumentView;
use nuage_procurement::tenders::{
    AwardView, EnvelopeView, LotEvaluation, OpeningReport, TenderView,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::client::{Client, ClientError};
use super::output::{date_of_ms, fail, show, urlencode};

#[derive(Debug, Subcommand)]
pub enum TenderCommand {
    /// Make a call's opening key on this machine: the private half goes to
    /// FILE (mode 0600), the public half (age1…) is printed for `publish`.
    /// With --shares N --threshold K, the private half is split instead into
    /// N files FILE.share-1 … FILE.share-N, one per committee member, any K
    /// of which open; it is written nowhere whole.
    Keygen {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, requires = "threshold")]
        shares: Option<u8>,
        #[arg(long, requires = "shares")]
        threshold: Option<u8>,
    },
    /// Draft a call for tender from a JSON file (see docs/tenders.md).
    Create {
        #[arg(long)]
        org: String,
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Publish a draft with the public half of its opening key.
    Publish {
        #[arg(long)]
        tender: String,
        /// The age recipient (age1…), or
        #[arg(long, required_unless_present = "key_file")]
        recipient: Option<String>,
        /// the key file made by `keygen`, whose public half is sent.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// The key was split into this many shares (as in `keygen`)…
        #[arg(long, requires = "threshold")]
        shares: Option<u8>,
        /// … of which this many open.
        #[arg(long, requires = "shares")]
        threshold: Option<u8>,
        #[arg(long)]
        json: bool,
    },
    /// A call, as published.
    Show {
        tender: String,
        #[arg(long)]
        json: bool,
    },
    /// Published calls; with --org, that buyer's own, drafts included.
    List {
        #[arg(long)]
        org: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The call's documents: attach them to the draft, list them.
    Document {
        #[command(subcommand)]
        command: DocumentCommand,
    },
    /// Bids: seal and submit, withdraw, list one's envelopes.
    Bid {
        #[command(subcommand)]
        command: BidCommand,
    },
    /// Receipts of bids.
    Receipt {
        #[command(subcommand)]
        command: ReceiptCommand,
    },
    /// Open the bids after the deadline with the call's private key, or
    /// with enough of its shares (--share FILE, repeated).
    Open {
        #[arg(long)]
        tender: String,
        #[arg(long, required_unless_present = "share")]
        key_file: Option<PathBuf>,
        #[arg(long, conflicts_with = "key_file")]
        share: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// A lot's bids with their eligibility, marks and ranking.
    Evaluation {
        #[arg(long)]
        tender: String,
        #[arg(long)]
        lot: i64,
        #[arg(long)]
        json: bool,
    },
    /// Mark a bid on the technical criteria, or exclude it with a reason.
    Mark {
        #[arg(long)]
        tender: String,
        #[arg(long)]
        lot: i64,
        #[arg(long)]
        bid: String,
        /// CRITERION=MARK, repeated.
        #[arg(long = "mark", value_name = "CRITERION=MARK")]
        marks: Vec<String>,
        #[arg(long)]
        exclude: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Award a lot to its best ranked bid.
    Award {
        #[arg(long)]
        tender: String,
        #[arg(long)]
        lot: i64,
        #[arg(long)]
        json: bool,
    },
    /// Sign a lot's contract after the standstill period; orders the offer.
    Sign {
        #[arg(long)]
        tender: String,
        #[arg(long)]
        lot: i64,
        #[arg(long)]
        json: bool,
    },
    /// Ask the buyer a question, privately (as a supplier).
    Ask {
        #[arg(long)]
        tender: String,
        #[arg(long)]
        org: String,
        #[arg(long)]
        question: String,
        #[arg(long)]
        json: bool,
    },
    /// Answer a question, for everyone to read (as the buyer).
    Answer {
        #[arg(long)]
        tender: String,
        #[arg(long)]
        question_id: String,
        #[arg(long)]
        answer: String,
        #[arg(long)]
        json: bool,
    },
    /// A call's questions: the answered ones, the organisation's own
    /// (--org), or all of them for the buyer.
    Questions {
        #[arg(long)]
        tender: String,
        #[arg(long)]
        org: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Amend a published call: the whole call as it becomes (a JSON file as
    /// for `create`), and why.
    Amend {
        #[arg(long)]
        tender: String,
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        summary: String,
        #[arg(long)]
        json: bool,
    },
    /// A call's publication and amendments, with what each changed.
    Versions {
        #[arg(long)]
        tender: String,
        #[arg(long)]
        json: bool,
    },
    /// Declare a call without follow-up.
    Cancel {
        #[arg(long)]
        tender: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DocumentCommand {
    /// Attach a file to a draft; it is kept sealed and published with the call.
    Add {
        #[arg(long)]
        tender: String,
        file: PathBuf,
        /// Its media type; guessed from the file's extension otherwise.
        #[arg(long)]
        media_type: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// A call's documents, with their download addresses.
    List {
        #[arg(long)]
        tender: String,
        #[arg(long)]
        json: bool,
    },
}

/// The media type of a document by its extension.
fn media_type_of(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match extension.as_str() {
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "csv" => "text/csv",
        "json" => "application/json",
        "xml" => "application/xml",
        "zip" => "application/zip",
        "odt" => "application/vnd.oasis.opendocument.text",
        "ods" => "application/vnd.oasis.opendocument.spreadsheet",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    }
}

async fn run_document(client: &Client, command: &DocumentCommand) -> Result<(), ClientError> {
    match command {
        DocumentCommand::Add {
            tender,
            file,
            media_type,
            json,
        } => {
            let bytes = std::fs::read(file)
                .map_err(|e| usage(format!("cannot read {}: {e}", file.display())))?;
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| usage("the file needs a name"))?;
            let media_type = media_type.as_deref().unwrap_or(media_type_of(file));
            let document = client
                .post_file(
                    &format!(
                        "/tenders/{}/documents?name={}",
                        urlencode(tender),
                        urlencode(name)
                    ),
                    media_type,
                    bytes,
                )
                .await?;
            show(document, *json, |d: &DocumentView| {
                format!(
                    "attached {} ({} bytes, sha256 {})",
                    d.name, d.size, d.sha256
                )
            })
        }
        DocumentCommand::List { tender, json } => {
            let path = format!("/tenders/{}/documents", urlencode(tender));
            let documents = client.get(&path).await?;
            show(documents, *json, |all: &Vec<DocumentView>| {
                all.iter()
                    .map(|d| format!("{}\t{}\t{} bytes\t{path}/{}", d.id, d.name, d.size, d.id))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum BidCommand {
    /// Check a bid file, seal it to the call's key here, and submit it; the
    /// sealed envelope and the signed receipt are kept beside the file.
    Submit {
        #[arg(long)]
        tender: String,
        /// The bidding organisation.
        #[arg(long)]
        org: String,
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Withdraw the organisation's bid (before the deadline).
    Withdraw {
        #[arg(long)]
        tender: String,
        #[arg(long)]
        org: String,
    },
    /// The organisation's envelopes on a call, with their receipts.
    List {
        #[arg(long)]
        tender: String,
        #[arg(long)]
        org: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReceiptCommand {
    /// Check a receipt's signature with the platform's public key (the
    /// signing key of the receipt's epoch, from the keys the server
    /// publishes, or --public-key), and that it is the receipt of ENVELOPE.
    Verify {
        #[arg(long)]
        file: PathBuf,
        /// The platform's Ed25519 public key, hex; asked of --server otherwise.
        #[arg(long)]
        public_key: Option<String>,
        /// The sealed envelope that was submitted.
        #[arg(long)]
        envelope: Option<PathBuf>,
    },
}

/// The commands that need no token: they run before a client exists.
pub async fn run_offline(command: &TenderCommand, server: Option<&str>) -> Option<ExitCode> {
    match command {
        TenderCommand::Keygen {
            out,
            shares,
            threshold,
        } => Some(finish(match (shares, threshold) {
            (Some(n), Some(k)) => keygen_shares(out, *n, *k),
            _ => keygen(out),
        })),
        TenderCommand::Receipt {
            command:
                ReceiptCommand::Verify {
                    file,
                    public_key,
                    envelope,
                },
        } => Some(verify_receipt(file, public_key.as_deref(), envelope.as_deref(), server).await),
        _ => None,
    }
}

fn finish(result: Result<(), ClientError>) -> ExitCode {
    result.map_or_else(|e| fail(&e), |()| ExitCode::SUCCESS)
}

fn usage(message: impl Into<String>) -> ClientError {
    ClientError::Usage(message.into())
}

fn keygen(out: &Path) -> Result<(), ClientError> {
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    write_private(
        out,
        &format!(
            "# opening key of a call for tender; public key: {recipient}\n{}\n",
            identity.to_string().expose_secret()
        ),
    )?;
    println!("{recipient}");
    eprintln!(
        "the private key is in {} (only you can read it): keep it offline until the opening",
        out.display()
    );
    Ok(())
}

fn write_private(path: &Path, text: &str) -> Result<(), ClientError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| usage(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(text.as_bytes())
        .map_err(|e| usage(format!("cannot write {}: {e}", path.display())))
}

fn keygen_shares(out: &Path, total: u8, threshold: u8) -> Result<(), ClientError> {
    nuage_domain::tender::SharesPolicy { threshold, total }
        .validate()
        .map_err(|e| usage(e.to_string()))?;
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let secret = identity.to_string();
    let dealer = blahaj::Sharks(threshold).dealer(secret.expose_secret().as_bytes());
    for (i, share) in dealer.take(usize::from(total)).enumerate() {
        let path = PathBuf::from(format!("{}.share-{}", out.display(), i + 1));
        write_private(
            &path,
            &format!(
                "# share {} of {total} of a call's opening key ({threshold} open); public key: {recipient}\n{}\n",
                i + 1,
                nuage_domain::tender::share_text(threshold, &Vec::from(&share))
            ),
        )?;
    }
    println!("{recipient}");
    eprintln!(
        "the private key is split into {}.share-1 … .share-{total}: give one to each member of the committee; any {threshold} open the bids",
        out.display()
    );
    Ok(())
}

/// The first line of a key or share file that starts with `prefix`.
fn read_secret_line(path: &Path, prefix: &str, what: &str) -> Result<String, ClientError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with(prefix))
        .map(str::to_owned)
        .ok_or_else(|| usage(format!("{} holds no {what}", path.display())))
}

fn read_share(path: &Path) -> Result<String, ClientError> {
    read_secret_line(path, "NUAGE-SHARE-", "share")
}

fn read_identity(path: &Path) -> Result<String, ClientError> {
    read_secret_line(path, "AGE-SECRET-KEY-", "age private key")
}

fn read_json(path: &Path) -> Result<Value, ClientError> {
    let text =
        std::fs::read(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_slice(&text).map_err(|e| usage(format!("{} is not JSON: {e}", path.display())))
}

fn tender_line(t: &TenderView) -> String {
    format!(
        "{}\t{}\t{}\tdeadline {}\t{}",
        t.id,
        t.state,
        t.buyer_name,
        date_of_ms(t.spec.deadline_ms),
        t.spec.title
    )
}

fn with_warnings(mut out: String, warnings: &[Warning]) -> String {
    for w in warnings {
        out.push_str(&format!("\nwarning: {}", w.message));
    }
    out
}

pub async fn run(client: &Client, command: &TenderCommand) -> Result<(), ClientError> {
    match command {
        TenderCommand::Keygen { .. } | TenderCommand::Receipt { .. } => {
            Err(usage("this command runs without a server"))
        }
        TenderCommand::Create { org, file, json } => {
            let t = client
                .post(
                    &format!("/orgs/{}/tenders", urlencode(org)),
                    &read_json(file)?,
                )
                .await?;
            show(t, *json, |t: &TenderView| {
                format!("drafted {}", tender_line(t))
            })
        }
        TenderCommand::Publish {
            tender,
            recipient,
            key_file,
            shares,
            threshold,
            json,
        } => {
            let recipient = match (recipient, key_file) {
                (Some(r), _) => r.clone(),
                (None, Some(path)) => read_identity(path)?
                    .parse::<age::x25519::Identity>()
                    .map_err(|_| usage(format!("{} holds no valid age key", path.display())))?
                    .to_public()
                    .to_string(),
                (None, None) => return Err(usage("give --recipient or --key-file")),
            };
            let t = client
                .post(
                    &format!("/tenders/{}/publish", urlencode(tender)),
                    &json!({
                        "recipient": recipient,
                        "shares": shares.zip(*threshold).map(|(total, threshold)| json!({"threshold": threshold, "total": total})),
                    }),
                )
                .await?;
            show(t, *json, |t: &TenderView| {
                with_warnings(format!("published {}", tender_line(t)), &t.warnings)
            })
        }
        TenderCommand::Show { tender, json } => {
            let t = client
                .get(&format!("/tenders/{}", urlencode(tender)))
                .await?;
            show(t, *json, tender_line)
        }
        TenderCommand::List { org, json } => {
            let path = match org {
                Some(o) => format!("/orgs/{}/tenders", urlencode(o)),
                None => "/tenders".into(),
            };
            let all = Value::Array(client.get_all(&path).await?);
            show(all, *json, |all: &Vec<TenderView>| {
                all.iter().map(tender_line).collect::<Vec<_>>().join("\n")
            })
        }
        TenderCommand::Bid { command } => run_bid(client, command).await,
        TenderCommand::Document { command } => run_document(client, command).await,
        TenderCommand::Open {
            tender,
            key_file,
            share,
            json,
        } => {
            let body = match key_file {
                Some(path) => json!({ "identity": read_identity(path)? }),
                None => json!({
                    "shares": share.iter().map(|p| read_share(p)).collect::<Result<Vec<_>, _>>()?
                }),
            };
            let report = client
                .post(&format!("/tenders/{}/open", urlencode(tender)), &body)
                .await?;
            show(report, *json, |r: &OpeningReport| {
                let mut out = format!("opened {} of {} envelopes", r.opened, r.envelopes);
                for u in &r.unreadable {
                    out.push_str(&format!(
                        "\nunreadable {} ({}): {}",
                        u.bid_id, u.bidder_id, u.reason
                    ));
                }
                out
            })
        }
        TenderCommand::Evaluation { tender, lot, json } => {
            let e = client
                .get(&format!(
                    "/tenders/{}/lots/{lot}/evaluation",
                    urlencode(tender)
                ))
                .await?;
            show(e, *json, evaluation_text)
        }
        TenderCommand::Mark {
            tender,
            lot,
            bid,
            marks,
            exclude,
            json,
        } => {
            let mut map = serde_json::Map::new();
            for m in marks {
                let (name, value) = m
                    .split_once('=')
                    .ok_or_else(|| usage(format!("{m:?}: write CRITERION=MARK")))?;
                map.insert(name.trim().to_owned(), json!(value.trim()));
            }
            let e = client
                .put(
                    &format!(
                        "/tenders/{}/lots/{lot}/bids/{}/marks",
                        urlencode(tender),
                        urlencode(bid)
                    ),
                    &json!({ "marks": map, "exclude": exclude }),
                )
                .await?;
            show(e, *json, evaluation_text)
        }
        TenderCommand::Award { tender, lot, json } | TenderCommand::Sign { tender, lot, json } => {
            let action = if matches!(command, TenderCommand::Award { .. }) {
                "award"
            } else {
                "sign"
            };
            let a = client
                .post(
                    &format!("/tenders/{}/lots/{lot}/{action}", urlencode(tender)),
                    &Value::Null,
                )
                .await?;
            show(a, *json, |a: &AwardView| {
                format!(
                    "lot {}: {} · offer {} · {} € a month · standstill until {}{}",
                    a.lot,
                    a.supplier_id,
                    a.offer_id,
                    a.monthly_price,
                    date_of_ms(a.standstill_until_ms),
                    a.subscription_id
                        .as_deref()
                        .map(|s| format!(" · signed, subscription {s}"))
                        .unwrap_or_default()
                )
            })
        }
        TenderCommand::Ask {
            tender,
            org,
            question,
            json,
        } => {
            let q = client
                .post(
                    &format!(
                        "/tenders/{}/questions?org_id={}",
                        urlencode(tender),
                        urlencode(org)
                    ),
                    &json!({ "question": question }),
                )
                .await?;
            show(q, *json, |q: &QuestionView| format!("asked {}", q.id))
        }
        TenderCommand::Answer {
            tender,
            question_id,
            answer,
            json,
        } => {
            let q = client
                .post(
                    &format!(
                        "/tenders/{}/questions/{}/answer",
                        urlencode(tender),
                        urlencode(question_id)
                    ),
                    &json!({ "answer": answer }),
                )
                .await?;
            show(q, *json, |q: &QuestionView| format!("answered {}", q.id))
        }
        TenderCommand::Questions { tender, org, json } => {
            let path = match org {
                Some(o) => format!(
                    "/tenders/{}/questions?org_id={}",
                    urlencode(tender),
                    urlencode(o)
                ),
                None => format!("/tenders/{}/questions", urlencode(tender)),
            };
            let all = client.get(&path).await?;
            show(all, *json, |all: &Vec<QuestionView>| {
                all.iter()
                    .map(|q| {
                        format!(
                            "Q ({}): {}\nA: {}",
                            q.id,
                            q.question,
                            q.answer.as_deref().unwrap_or("(not answered yet)")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        TenderCommand::Amend {
            tender,
            file,
            summary,
            json,
        } => {
            let a = client
                .post(
                    &format!("/tenders/{}/amendments", urlencode(tender)),
                    &json!({ "spec": read_json(file)?, "summary": summary }),
                )
                .await?;
            show(a, *json, |a: &AmendmentView| {
                let out = format!(
                    "version {}: changed {}; {} bidder(s) told",
                    a.version.version,
                    a.version.changes.join(", "),
                    a.bidders_told
                );
                with_warnings(out, &a.warnings)
            })
        }
        TenderCommand::Versions { tender, json } => {
            let all = client
                .get(&format!("/tenders/{}/versions", urlencode(tender)))
                .await?;
            show(all, *json, |all: &Vec<VersionView>| {
                all.iter()
                    .map(|v| format!("v{}\t{}\t{}", v.version, date_of_ms(v.at_ms), v.summary))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        TenderCommand::Cancel {
            tender,
            reason,
            json,
        } => {
            let t = client
                .post(
                    &format!("/tenders/{}/cancel", urlencode(tender)),
                    &json!({ "reason": reason }),
                )
                .await?;
            show(t, *json, |t: &TenderView| {
                format!("declared without follow-up: {}", tender_line(t))
            })
        }
    }
}

fn evaluation_text(e: &LotEvaluation) -> String {
    let mut out = Vec::new();
    for c in &e.candidates {
        let failed: Vec<String> = c
            .eligibility
            .iter()
            .filter(|o| !o.passed)
            .map(|o| format!("{}: {}", o.rule, o.explanation))
            .collect();
        out.push(format!(
            "{}\t{}\t{} €\t{}",
            c.bid_id,
            c.bidder_name,
            c.monthly_price,
            match (&c.excluded_reason, failed.is_empty()) {
                (Some(r), _) => format!("excluded: {r}"),
                (None, true) => "eligible".to_owned(),
                (None, false) => format!("not eligible: {}", failed.join("; ")),
            }
        ));
    }
    if let Some(why) = &e.incomplete {
        out.push(format!("ranking not final: {why}"));
    }
    for s in &e.ranking {
        out.push(format!("#{}\t{}\t{} points", s.rank, s.bid_id, s.total));
    }
    out.join("\n")
}

async fn run_bid(client: &Client, command: &BidCommand) -> Result<(), ClientError> {
    match command {
        BidCommand::Submit {
            tender,
            org,
            file,
            json,
        } => {
            let t = client
                .get(&format!("/tenders/{}", urlencode(tender)))
                .await?;
            let recipient: age::x25519::Recipient = t["recipient"]
                .as_str()
                .ok_or_else(|| usage("this call is not published: it has no key yet"))?
                .parse()
                .map_err(|_| usage("the call's key is not an age key"))?;
            let spec: TenderSpec = serde_json::from_value(t["spec"].clone())
                .map_err(|e| usage(format!("the call cannot be read: {e}")))?;
            let plain = std::fs::read(file)
                .map_err(|e| usage(format!("cannot read {}: {e}", file.display())))?;
            // Checked here, before sealing: nobody can check it afterwards
            // until the opening.
            let id = t["id"].as_str().unwrap_or(tender);
            Bid::parse(&plain, id, &spec).map_err(|e| usage(format!("{}: {e}", file.display())))?;
            let sealed = age::encrypt(&recipient, &plain)
                .map_err(|e| usage(format!("cannot seal the bid: {e}")))?;
            let envelope = file.with_extension("age");
            std::fs::write(&envelope, &sealed)
                .map_err(|e| usage(format!("cannot write {}: {e}", envelope.display())))?;
            let receipt = client
                .post_bytes(
                    &format!(
                        "/tenders/{}/bids?org_id={}",
                        urlencode(tender),
                        urlencode(org)
                    ),
                    sealed,
                )
                .await?;
            let receipt_path = file.with_extension("receipt.json");
            std::fs::write(&receipt_path, format!("{receipt:#}\n"))
                .map_err(|e| usage(format!("cannot write {}: {e}", receipt_path.display())))?;
            show(receipt, *json, |r: &SignedReceipt| {
                format!(
                    "submitted bid {} at {} (sha256 {})\nsealed envelope: {}\nsigned receipt: {}",
                    r.receipt.bid_id,
                    date_of_ms(r.receipt.received_at_ms),
                    r.receipt.sha256,
                    envelope.display(),
                    receipt_path.display()
                )
            })
        }
        BidCommand::Withdraw { tender, org } => {
            client
                .delete(&format!(
                    "/tenders/{}/bids?org_id={}",
                    urlencode(tender),
                    urlencode(org)
                ))
                .await?;
            println!("withdrawn");
            Ok(())
        }
        BidCommand::List { tender, org, json } => {
            let all = client
                .get(&format!(
                    "/tenders/{}/bids?org_id={}",
                    urlencode(tender),
                    urlencode(org)
                ))
                .await?;
            show(all, *json, |all: &Vec<EnvelopeView>| {
                all.iter()
                    .map(|e| {
                        format!(
                            "{}\t{}\t{}",
                            e.receipt.receipt.bid_id,
                            e.status,
                            date_of_ms(e.receipt.receipt.received_at_ms)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
    }
}

async fn verify_receipt(
    file: &Path,
    public_key: Option<&str>,
    envelope: Option<&Path>,
    server: Option<&str>,
) -> ExitCode {
    let outcome = async {
        let signed: SignedReceipt = serde_json::from_value(read_json(file)?)
            .map_err(|e| usage(format!("{} is not a receipt: {e}", file.display())))?;
        let key_hex = match public_key {
            Some(k) => k.trim().to_owned(),
            None => {
                let server = server.ok_or_else(|| {
                    usage("give --public-key, or --server to ask for the platform's key")
                })?;
                // The history of the platform's keys: a receipt signed
                // before a rotation checks with its own epoch's key.
                let keys: Value = reqwest::get(format!(
                    "{}/api/v1/platform/keys",
                    server.trim_end_matches('/')
                ))
                .await
                .map_err(|e| ClientError::Unreachable(e.to_string()))?
                .json()
                .await
                .map_err(|e| ClientError::Unreachable(e.to_string()))?;
                keys.as_array()
                    .into_iter()
                    .flatten()
                    .find(|k| k["purpose"] == "signing" && k["epoch"] == signed.key_epoch)
                    .and_then(|k| k["public_key"].as_str())
                    .ok_or_else(|| {
                        ClientError::Invalid(format!(
                            "the platform publishes no signing key of epoch {}",
                            signed.key_epoch
                        ))
                    })?
                    .to_owned()
            }
        };
        let refused = ClientError::Invalid;
        if !signed.public_key.eq_ignore_ascii_case(&key_hex) {
            return Err(refused(
                "the receipt names another key than the platform's".into(),
            ));
        }
        let key_bytes: [u8; 32] = hex::decode(&key_hex)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| usage("the public key is not 32 bytes of hex"))?;
        let key = VerifyingKey::from_bytes(&key_bytes)
            .map_err(|_| usage("the public key is not an Ed25519 key"))?;
        let signature: [u8; 64] = base64::engine::general_purpose::STANDARD
            .decode(&signed.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| refused("the signature is not 64 bytes of base64".into()))?;
        key.verify(
            signed.receipt.message().as_bytes(),
            &Signature::from_bytes(&signature),
        )
        .map_err(|_| refused("the signature does not match: this receipt was altered".into()))?;
        if let Some(path) = envelope {
            let bytes = std::fs::read(path)
                .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
            if hex::encode(Sha256::digest(&bytes)) != signed.receipt.sha256
                || bytes.len() as u64 != signed.receipt.size
            {
                return Err(refused(format!(
                    "{} is not the envelope this receipt is for",
                    path.display()
                )));
            }
        }
        println!(
            "valid: bid {} on call {} by {}, received {}{}",
            signed.receipt.bid_id,
            signed.receipt.tender_id,
            signed.receipt.bidder_org_id,
            date_of_ms(signed.receipt.received_at_ms),
            if envelope.is_some() {
                ", for this envelope"
            } else {
                ""
            }
        );
        Ok(())
    }
    .await;
    finish(outcome)
}
