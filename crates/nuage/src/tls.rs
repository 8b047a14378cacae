//! The website listener's certificates, chosen by the name the client asks
//! for (SNI): one folder per domain under the operator's directory, laid
//! out as certbot keeps them (`<domain>/fullchain.pem`, `<domain>/privkey.pem`),
//! so a renewal is picked up without a restart. A name without a folder
//! gets the listener's main certificate (the wildcard of the website
//! domain), if any. ACME is not built in: the operator's own client renews
//! the files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// How long a domain's certificate is used before its file's date is
/// looked at again.
const RECHECK: Duration = Duration::from_secs(30);

/// Reads a PEM certificate chain and its private key.
pub fn load_pair(cert: &Path, key: &Path) -> anyhow::Result<CertifiedKey> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read the certificates of {}", cert.display()))?;
    if chain.is_empty() {
        bail!("{} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read the private key {}", key.display()))?;
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)
        .context("the private key is of no supported type")?;
    Ok(CertifiedKey::new(chain, signing))
}

struct Kept {
    checked: Instant,
    modified: Option<SystemTime>,
    key: Option<Arc<CertifiedKey>>,
}

/// Certificates by server name, read from the directory as asked for.
pub struct SiteCerts {
    dir: PathBuf,
    fallback: Option<Arc<CertifiedKey>>,
    kept: Mutex<HashMap<String, Kept>>,
}

impl std::fmt::Debug for SiteCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteCerts")
            .field("dir", &self.dir)
            .field("fallback", &self.fallback.is_some())
            .finish_non_exhaustive()
    }
}

impl SiteCerts {
    pub fn new(dir: &Path, fallback: Option<CertifiedKey>) -> anyhow::Result<Self> {
        if !dir.is_dir() {
            bail!(
                "the website certificates' directory {} does not exist",
                dir.display()
            );
        }
        Ok(Self {
            dir: dir.to_owned(),
            fallback: fallback.map(Arc::new),
            kept: Mutex::new(HashMap::new()),
        })
    }

    /// A name's certificate, from memory or read again once [`RECHECK`] has
    /// passed and the file changed.
    fn lookup(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        // Only a plain DNS name reaches the file system.
        let plain = !name.is_empty()
            && name.len() <= 253
            && !name.starts_with('.')
            && !name.contains("..")
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !plain {
            return None;
        }
        let previous = {
            let kept = self.kept.lock().ok()?;
            match kept.get(name) {
                Some(k) if k.checked.elapsed() < RECHECK => return k.key.clone(),
                Some(k) => Some((k.modified, k.key.clone())),
                None => None,
            }
        };
        let folder = self.dir.join(name);
        let chain = folder.join("fullchain.pem");
        let modified = std::fs::metadata(&chain).and_then(|m| m.modified()).ok();
        let key = match previous {
            Some((before, key)) if before == modified => key,
            _ if modified.is_none() => None,
            _ => match load_pair(&chain, &folder.join("privkey.pem")) {
                Ok(key) => Some(Arc::new(key)),
                Err(e) => {
                    tracing::warn!(
                        domain = name,
                        error = format!("{e:#}"),
                        "a website certificate could not be loaded"
                    );
                    None
                }
            },
        };
        if let Ok(mut kept) = self.kept.lock() {
            if kept.len() > 10_000 {
                kept.clear();
            }
            kept.insert(
                name.to_owned(),
                Kept {
                    checked: Instant::now(),
                    modified,
                    key: key.clone(),
                },
            );
        }
        key
    }
}

impl ResolvesServerCert for SiteCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        hello
            .server_name()
            .and_then(|name| self.lookup(&name.to_ascii_lowercase()))
            .or_else(|| self.fallback.clone())
    }
}

/// The website listener's TLS: by SNI from `dir`, else the main pair.
pub fn site_tls(dir: &Path, main: Option<(&Path, &Path)>) -> anyhow::Result<RustlsConfig> {
    let fallback = main.map(|(cert, key)| load_pair(cert, key)).transpose()?;
    let certs = SiteCerts::new(dir, fallback)?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(certs));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(RustlsConfig::from_config(Arc::new(config)))
}
