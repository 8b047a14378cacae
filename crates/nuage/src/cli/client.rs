//! A small client of the REST API for the command line.

use std::path::Path;

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    /// Not authenticated or not allowed: the command could not be checked.
    #[error("{status}: {detail}")]
    Denied { status: u16, detail: String },
    /// The server understood and refused.
    #[error("{status}: {detail}")]
    Refused { status: u16, detail: String },
    /// What was checked here is not valid (a receipt, a signature).
    #[error("{0}")]
    Invalid(String),
    /// The server answered with something this client does not read.
    #[error("the server's answer was not understood: {0}")]
    Unexpected(String),
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// The client's TLS: aws-lc-rs, preferring the hybrid post-quantum key
/// exchange (X25519MLKEM768), trusting the web's roots and `ca_cert`.
fn tls_config(ca_cert: Option<&Path>) -> Result<rustls::ClientConfig, ClientError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path)
            .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", path.display())))?;
        let not_pem = |e: String| {
            ClientError::Usage(format!("{} is not a PEM certificate: {e}", path.display()))
        };
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots
                .add(cert.map_err(|e| not_pem(e.to_string()))?)
                .map_err(|e| not_pem(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(not_pem("no certificate in it".into()));
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Usage(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl Client {
    pub fn new(
        server: Option<&str>,
        token: Option<&str>,
        ca_cert: Option<&Path>,
    ) -> Result<Self, ClientError> {
        let server = server.ok_or_else(|| {
            ClientError::Usage("give the server's address with --server or NUAGE_CLI_SERVER".into())
        })?;
        let token = token.ok_or_else(|| {
            ClientError::Usage("give a token with --token or NUAGE_CLI_TOKEN".into())
        })?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("nuage-cli/", env!("CARGO_PKG_VERSION")))
            .use_preconfigured_tls(tls_config(ca_cert)?)
            .build()
            .map_err(|e| ClientError::Usage(e.to_string()))?;
        let base = format!(
            "{}/api/v1",
            server.trim_end_matches('/').trim_end_matches("/api/v1")
        );
        Ok(Self {
            http,
            base,
            token: token.to_owned(),
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, ClientError> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        let status = response.status();
        let body: Value = if status == reqwest::StatusCode::NO_CONTENT {
            Value::Null
        } else {
            response
                .json()
                .await
                .map_err(|e| ClientError::Unreachable(format!("the answer is not JSON: {e}")))?
        };
        if status.is_success() {
            return Ok(body);
        }
        let detail = body["detail"]
            .as_str()
            .or(body["title"].as_str())
            .unwrap_or("the server refused the request")
            .to_owned();
        let status = status.as_u16();
        Err(if matches!(status, 401 | 403) || status >= 500 {
            ClientError::Denied { status, detail }
        } else {
            ClientError::Refused { status, detail }
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// Every item of a paginated list.
    pub async fn get_all(&self, path: &str) -> Result<Vec<Value>, ClientError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut request = self
                .http
                .get(format!("{}{path}", self.base))
                .query(&[("limit", "500")]);
            if let Some(c) = &cursor {
                request = request.query(&[("cursor", c)]);
            }
            let page = self.send(request).await?;
            items.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(items),
            }
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("idempotency-key", uuid::Uuid::new_v4().to_string());
        let request = if body.is_null() {
            request
        } else {
            request.json(body)
        };
        self.send(request).await
    }

    /// POSTs raw bytes (a sealed bid).
    pub async fn post_bytes(&self, path: &str, body: Vec<u8>) -> Result<Value, ClientError> {
        self.post_file(path, "application/octet-stream", body).await
    }

    /// POSTs a file with its media type.
    pub async fn post_file(
        &self,
        path: &str,
        media_type: &str,
        body: Vec<u8>,
    ) -> Result<Value, ClientError> {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header(reqwest::header::CONTENT_TYPE, media_type)
                .body(body),
        )
        .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.send(self.http.put(format!("{}{path}", self.base)).json(body))
            .await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, ClientError> {
        self.send(self.http.delete(format!("{}{path}", self.base)))
            .await
    }
}
