//! A KMS through KMIP, the OASIS protocol most key managers speak: the TTLV
//! binary encoding (KMIP 1.4, section 9.1) and a client for the few
//! operations a key provider needs. The key-encryption key stays in the KMS,
//! which encrypts and decrypts with it (AES-256-GCM, the organisation's id
//! as associated data); the platform only ever names it by its unique id.
//!
//! The client speaks protocol version 1.4: PyKMIP, the reference server the
//! tests run against, reads a request's fields with the header's version,
//! and GCM's associated data and tag only exist from 1.4 on. It connects
//! anew for each call, over TLS with a client certificate (the KMS knows
//! the platform by it): a handshake costs about 10 ms, and servers close
//! idle connections (PyKMIP after 10 s), so a kept connection would need
//! the same reconnecting, with a retry that could repeat an operation.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsConnector;

use crate::error::ServiceError;

/// The tags this client writes or reads (KMIP 1.4, section 9.1.3.1).
pub mod tag {
    pub const ATTRIBUTE: u32 = 0x42_0008;
    pub const ATTRIBUTE_NAME: u32 = 0x42_000A;
    pub const ATTRIBUTE_VALUE: u32 = 0x42_000B;
    pub const BATCH_COUNT: u32 = 0x42_000D;
    pub const BATCH_ITEM: u32 = 0x42_000F;
    pub const BLOCK_CIPHER_MODE: u32 = 0x42_0011;
    pub const CRYPTOGRAPHIC_ALGORITHM: u32 = 0x42_0028;
    pub const CRYPTOGRAPHIC_PARAMETERS: u32 = 0x42_002B;
    pub const IV_COUNTER_NONCE: u32 = 0x42_003D;
    pub const NAME: u32 = 0x42_0053;
    pub const NAME_TYPE: u32 = 0x42_0054;
    pub const NAME_VALUE: u32 = 0x42_0055;
    pub const OBJECT_TYPE: u32 = 0x42_0057;
    pub const OPERATION: u32 = 0x42_005C;
    pub const PROTOCOL_VERSION: u32 = 0x42_0069;
    pub const PROTOCOL_VERSION_MAJOR: u32 = 0x42_006A;
    pub const PROTOCOL_VERSION_MINOR: u32 = 0x42_006B;
    pub const REQUEST_HEADER: u32 = 0x42_0077;
    pub const REQUEST_MESSAGE: u32 = 0x42_0078;
    pub const REQUEST_PAYLOAD: u32 = 0x42_0079;
    pub const RESPONSE_MESSAGE: u32 = 0x42_007B;
    pub const RESPONSE_PAYLOAD: u32 = 0x42_007C;
    pub const RESULT_MESSAGE: u32 = 0x42_007D;
    pub const RESULT_REASON: u32 = 0x42_007E;
    pub const RESULT_STATUS: u32 = 0x42_007F;
    pub const REVOCATION_REASON: u32 = 0x42_0081;
    pub const REVOCATION_REASON_CODE: u32 = 0x42_0082;
    pub const TEMPLATE_ATTRIBUTE: u32 = 0x42_0091;
    pub const UNIQUE_IDENTIFIER: u32 = 0x42_0094;
    pub const DATA: u32 = 0x42_00C2;
    pub const TAG_LENGTH: u32 = 0x42_00CE;
    pub const AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA: u32 = 0x42_00FE;
    pub const AUTHENTICATED_ENCRYPTION_TAG: u32 = 0x42_00FF;
}

/// The operations this client asks for.
pub mod operation {
    pub const CREATE: u32 = 0x01;
    pub const GET_ATTRIBUTES: u32 = 0x0B;
    pub const ACTIVATE: u32 = 0x12;
    pub const REVOKE: u32 = 0x13;
    pub const ENCRYPT: u32 = 0x1F;
    pub const DECRYPT: u32 = 0x20;
}

/// Why a KMS refused an operation (the Result Reason a refusal carries).
pub mod result_reason {
    pub const ITEM_NOT_FOUND: u32 = 0x01;
    pub const AUTHENTICATION_NOT_SUCCESSFUL: u32 = 0x03;
    pub const INVALID_MESSAGE: u32 = 0x04;
    pub const OPERATION_NOT_SUPPORTED: u32 = 0x05;
    pub const MISSING_DATA: u32 = 0x06;
    pub const INVALID_FIELD: u32 = 0x07;
    pub const FEATURE_NOT_SUPPORTED: u32 = 0x08;
    pub const CRYPTOGRAPHIC_FAILURE: u32 = 0x0A;
    pub const ILLEGAL_OPERATION: u32 = 0x0B;
    pub const PERMISSION_DENIED: u32 = 0x0C;
    pub const OBJECT_ARCHIVED: u32 = 0x0D;
    pub const GENERAL_FAILURE: u32 = 0x100;
}

const RESULT_STATUS_SUCCESS: u32 = 0;
const OBJECT_TYPE_SYMMETRIC_KEY: u32 = 0x02;
const ALGORITHM_AES: u32 = 0x03;
const BLOCK_CIPHER_MODE_GCM: u32 = 0x09;
const NAME_TYPE_TEXT: u32 = 0x01;
const USAGE_ENCRYPT: i32 = 0x04;
const USAGE_DECRYPT: i32 = 0x08;
const GCM_TAG_LENGTH: usize = 16;

/// Deeper than any message this client exchanges, and shallow enough that a
/// hostile answer cannot exhaust the stack.
const MAX_DEPTH: usize = 16;

/// The largest answer read: this client's are a few hundred bytes, and the
/// frame's length must not size an allocation unchecked.
const MAX_MESSAGE: usize = 1 << 20;

/// One TTLV item: a tag and a typed value.
#[derive(Clone, PartialEq, Eq)]
pub struct Item {
    pub tag: u32,
    pub value: Value,
}

impl Item {
    pub fn new(tag: u32, value: Value) -> Self {
        Self { tag, value }
    }
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06X} ", self.tag)?;
        self.value.fmt(f)
    }
}

/// The value of an item, one variant per TTLV type (Big Integer aside).
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    Structure(Vec<Item>),
    Integer(i32),
    LongInteger(i64),
    Enumeration(u32),
    Boolean(bool),
    TextString(String),
    ByteString(Vec<u8>),
    /// Seconds since the Unix epoch.
    DateTime(i64),
    /// Seconds.
    Interval(u32),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Structure(items) => f.debug_list().entries(items).finish(),
            Self::Integer(v) => write!(f, "Integer({v})"),
            Self::LongInteger(v) => write!(f, "LongInteger({v})"),
            Self::Enumeration(v) => write!(f, "Enumeration({v:#x})"),
            Self::Boolean(v) => write!(f, "Boolean({v})"),
            Self::TextString(v) => write!(f, "TextString({v:?})"),
            // Data may be a key in the clear: only its length shows.
            Self::ByteString(v) => write!(f, "ByteString(<{} bytes>)", v.len()),
            Self::DateTime(v) => write!(f, "DateTime({v})"),
            Self::Interval(v) => write!(f, "Interval({v})"),
        }
    }
}

impl Value {
    fn type_code(&self) -> u8 {
        match self {
            Self::Structure(_) => 0x01,
            Self::Integer(_) => 0x02,
            Self::LongInteger(_) => 0x03,
            Self::Enumeration(_) => 0x05,
            Self::Boolean(_) => 0x06,
            Self::TextString(_) => 0x07,
            Self::ByteString(_) => 0x08,
            Self::DateTime(_) => 0x09,
            Self::Interval(_) => 0x0A,
        }
    }
}

/// `item` in TTLV: a 3-byte tag, a type byte, the value's length (4 bytes,
/// big-endian, without padding) and the value, zero-padded to 8 bytes.
pub fn encode(item: &Item) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(item, &mut out);
    out
}

fn encode_into(item: &Item, out: &mut Vec<u8>) {
    debug_assert!(item.tag <= 0xFF_FFFF, "a KMIP tag has 3 bytes");
    out.extend_from_slice(&item.tag.to_be_bytes()[1..]);
    out.push(item.value.type_code());
    let length_at = out.len();
    out.extend_from_slice(&[0; 4]);
    let start = out.len();
    match &item.value {
        Value::Structure(items) => items.iter().for_each(|item| encode_into(item, out)),
        Value::Integer(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::LongInteger(v) | Value::DateTime(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Enumeration(v) | Value::Interval(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Boolean(v) => out.extend_from_slice(&u64::from(*v).to_be_bytes()),
        Value::TextString(v) => out.extend_from_slice(v.as_bytes()),
        Value::ByteString(v) => out.extend_from_slice(v),
    }
    let length = out.len() - start;
    out[length_at..start].copy_from_slice(&(length as u32).to_be_bytes());
    out.resize(start + length.next_multiple_of(8), 0);
}

/// The one item `bytes` holds, refused unless every length, type and
/// padding is right and nothing follows it.
pub fn decode(bytes: &[u8]) -> Result<Item, KmipError> {
    let (item, rest) = decode_item(bytes, 0)?;
    if !rest.is_empty() {
        return Err(malformed(format!(
            "{} bytes follow the message",
            rest.len()
        )));
    }
    Ok(item)
}

fn malformed(what: String) -> KmipError {
    KmipError::Malformed(what)
}

fn decode_item(input: &[u8], depth: usize) -> Result<(Item, &[u8]), KmipError> {
    let Some((header, rest)) = input.split_first_chunk::<8>() else {
        return Err(malformed(format!(
            "{} bytes left, an item needs 8",
            input.len()
        )));
    };
    let tag = u32::from_be_bytes([0, header[0], header[1], header[2]]);
    let length = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let padded = length
        .checked_next_multiple_of(8)
        .filter(|padded| *padded <= rest.len())
        .ok_or_else(|| {
            malformed(format!(
                "item {tag:06X} has {length} bytes, {} are left",
                rest.len()
            ))
        })?;
    let (body, rest) = rest.split_at(padded);
    let (bytes, padding) = body.split_at(length);
    if padding.iter().any(|b| *b != 0) {
        return Err(malformed(format!(
            "item {tag:06X} is padded with non-zero bytes"
        )));
    }
    let value = match header[3] {
        0x01 => {
            if length != padded {
                return Err(malformed(format!(
                    "structure {tag:06X} has {length} bytes, not a multiple of 8"
                )));
            }
            if depth == MAX_DEPTH {
                return Err(malformed(format!(
                    "structures nest deeper than {MAX_DEPTH}"
                )));
            }
            let mut items = Vec::new();
            let mut left = bytes;
            while !left.is_empty() {
                let (item, rest) = decode_item(left, depth + 1)?;
                items.push(item);
                left = rest;
            }
            Value::Structure(items)
        }
        0x02 => Value::Integer(i32::from_be_bytes(fixed(tag, bytes)?)),
        0x03 => Value::LongInteger(i64::from_be_bytes(fixed(tag, bytes)?)),
        0x05 => Value::Enumeration(u32::from_be_bytes(fixed(tag, bytes)?)),
        0x06 => match u64::from_be_bytes(fixed(tag, bytes)?) {
            0 => Value::Boolean(false),
            1 => Value::Boolean(true),
            other => return Err(malformed(format!("boolean {tag:06X} is {other}"))),
        },
        0x07 => Value::TextString(
            String::from_utf8(bytes.to_vec())
                .map_err(|_| malformed(format!("text {tag:06X} is not UTF-8")))?,
        ),
        0x08 => Value::ByteString(bytes.to_vec()),
        0x09 => Value::DateTime(i64::from_be_bytes(fixed(tag, bytes)?)),
        0x0A => Value::Interval(u32::from_be_bytes(fixed(tag, bytes)?)),
        other => {
            return Err(malformed(format!(
                "item {tag:06X} has type {other:#04x}, which this client does not read"
            )));
        }
    };
    Ok((Item::new(tag, value), rest))
}

/// A fixed-size value's bytes, refused unless the length is its type's.
fn fixed<const N: usize>(tag: u32, bytes: &[u8]) -> Result<[u8; N], KmipError> {
    bytes.try_into().map_err(|_| {
        malformed(format!(
            "item {tag:06X} has {} bytes, its type has {N}",
            bytes.len()
        ))
    })
}

/// Why a call to the KMS failed.
#[derive(Debug, thiserror::Error)]
pub enum KmipError {
    /// The KMS answered and said no: the key is unknown, not ours, not in a
    /// state that allows it, or the data does not authenticate.
    #[error("the KMS refused: {}", refusal(*reason, message))]
    Refused {
        /// The Result Reason ([`result_reason`]).
        reason: u32,
        /// The KMS's own words.
        message: String,
    },
    /// No answer: the connection, the TLS handshake or the exchange failed
    /// or took too long.
    #[error("the KMS is unreachable: {0}")]
    Unreachable(String),
    /// An answer this client cannot read.
    #[error("the KMS's answer is malformed: {0}")]
    Malformed(String),
    /// The settings cannot make a connection (a certificate or key that does
    /// not parse, a bad server name).
    #[error("the KMS settings are wrong: {0}")]
    Settings(String),
}

fn refusal(reason: u32, message: &str) -> String {
    use result_reason::*;
    let reason = match reason {
        ITEM_NOT_FOUND => "key not found".to_owned(),
        AUTHENTICATION_NOT_SUCCESSFUL => "authentication failed".to_owned(),
        INVALID_MESSAGE => "invalid message".to_owned(),
        OPERATION_NOT_SUPPORTED => "operation not supported".to_owned(),
        MISSING_DATA => "missing data".to_owned(),
        INVALID_FIELD => "invalid field".to_owned(),
        FEATURE_NOT_SUPPORTED => "feature not supported".to_owned(),
        CRYPTOGRAPHIC_FAILURE => "cryptographic failure".to_owned(),
        ILLEGAL_OPERATION => "illegal operation".to_owned(),
        PERMISSION_DENIED => "permission denied".to_owned(),
        OBJECT_ARCHIVED => "key archived".to_owned(),
        GENERAL_FAILURE => "general failure".to_owned(),
        other => format!("reason {other:#x}"),
    };
    if message.is_empty() {
        reason
    } else {
        format!("{reason} — {message}")
    }
}

impl From<KmipError> for ServiceError {
    fn from(e: KmipError) -> Self {
        ServiceError::Internal(e.to_string())
    }
}

/// Where the KMS is, and how the platform proves who it is.
#[derive(Clone)]
pub struct KmipSettings {
    /// `host:port` (5696 is KMIP's).
    pub endpoint: String,
    /// The name (or IP address) the KMS's certificate must carry.
    pub server_name: String,
    /// The certificates the KMS's certificate must chain to (PEM).
    pub ca_pem: String,
    /// The platform's certificate, then its chain (PEM). The KMS identifies
    /// the platform by it (PyKMIP: by its common name).
    pub client_cert_pem: String,
    /// The platform's private key (PEM, PKCS#8).
    pub client_key_pem: SecretString,
    /// The longest one call may take, connection and handshake included.
    pub timeout: Duration,
    /// Whether the KMS may be at an internal address (the platform's own
    /// machine, its private networks): only where the operator allows it,
    /// since whoever names the endpoint would otherwise reach them
    /// ([`crate::net`]).
    pub allow_private: bool,
}

impl fmt::Debug for KmipSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmipSettings")
            .field("endpoint", &self.endpoint)
            .field("server_name", &self.server_name)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A key's place in its life (KMIP 1.4, section 3.22): only an active key
/// encrypts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    PreActive,
    Active,
    Deactivated,
    Compromised,
    Destroyed,
    DestroyedCompromised,
}

impl KeyState {
    fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            1 => Self::PreActive,
            2 => Self::Active,
            3 => Self::Deactivated,
            4 => Self::Compromised,
            5 => Self::Destroyed,
            6 => Self::DestroyedCompromised,
            _ => return None,
        })
    }
}

/// Why a key is revoked: a compromised key leaves use at once, a retired
/// one may still decrypt what it encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationReason {
    KeyCompromise,
    Superseded,
    CessationOfOperation,
}

impl RevocationReason {
    fn code(self) -> u32 {
        match self {
            Self::KeyCompromise => 2,
            Self::Superseded => 5,
            Self::CessationOfOperation => 6,
        }
    }
}

/// A KMIP client: one TLS connection per call.
pub struct KmipClient {
    endpoint: String,
    server_name: ServerName<'static>,
    connector: TlsConnector,
    timeout: Duration,
    allow_private: bool,
}

impl fmt::Debug for KmipClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmipClient")
            .field("endpoint", &self.endpoint)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl KmipClient {
    /// Reads the certificates and the key; connects only when called.
    pub fn new(settings: &KmipSettings) -> Result<Self, KmipError> {
        let wrong = |what: String| KmipError::Settings(what);
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(settings.ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| wrong(format!("the CA certificates: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| wrong(format!("a CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(wrong("no CA certificate in its PEM".into()));
        }
        let chain = CertificateDer::pem_slice_iter(settings.client_cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| wrong(format!("the client certificate: {e}")))?;
        if chain.is_empty() {
            return Err(wrong("no client certificate in its PEM".into()));
        }
        // The parser's error is not shown: it may quote the key.
        let key = PrivateKeyDer::from_pem_slice(settings.client_key_pem.expose_secret().as_bytes())
            .map_err(|_| wrong("the client key is not a PEM private key".into()))?;
        // TLS 1.2 too: PyKMIP and many appliances speak nothing newer.
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| wrong(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| wrong(format!("the client certificate and key: {e}")))?;
        let server_name = ServerName::try_from(settings.server_name.clone()).map_err(|_| {
            wrong(format!(
                "{:?} is not a host name or an IP address",
                settings.server_name
            ))
        })?;
        Ok(Self {
            endpoint: settings.endpoint.clone(),
            server_name,
            connector: TlsConnector::from(Arc::new(config)),
            timeout: settings.timeout,
            allow_private: settings.allow_private,
        })
    }

    /// `data` encrypted with AES-GCM by the key `uid`: the ciphertext (as
    /// long as `data`) and the 16-byte tag.
    pub async fn encrypt(
        &self,
        uid: &str,
        iv: [u8; 12],
        aad: &[u8],
        data: &[u8],
    ) -> Result<(Vec<u8>, [u8; 16]), KmipError> {
        let answer = self
            .call(operation::ENCRYPT, encrypt_payload(uid, iv, aad, data))
            .await?;
        encrypted(&answer, data.len())
    }

    /// What [`KmipClient::encrypt`] encrypted; a wrong IV, AAD, ciphertext
    /// or tag is refused by the KMS.
    pub async fn decrypt(
        &self,
        uid: &str,
        iv: [u8; 12],
        aad: &[u8],
        ciphertext: &[u8],
        tag: [u8; 16],
    ) -> Result<Vec<u8>, KmipError> {
        let payload = decrypt_payload(uid, iv, aad, ciphertext, tag);
        let answer = self.call(operation::DECRYPT, payload).await?;
        Ok(bytes(&answer, tag::DATA, "Data")?.to_vec())
    }

    /// The state of the key `uid`.
    pub async fn state(&self, uid: &str) -> Result<KeyState, KmipError> {
        let answer = self
            .call(operation::GET_ATTRIBUTES, state_payload(uid))
            .await?;
        key_state(&answer)
    }

    /// Makes an AES-256 key for encrypting and decrypting, named `name`, and
    /// returns its unique id. It starts pre-active: see
    /// [`KmipClient::activate`].
    pub async fn create_aes_key(&self, name: &str) -> Result<String, KmipError> {
        let answer = self.call(operation::CREATE, create_payload(name)).await?;
        Ok(text(&answer, tag::UNIQUE_IDENTIFIER, "Unique Identifier")?.to_owned())
    }

    /// Puts the key `uid` to use.
    pub async fn activate(&self, uid: &str) -> Result<(), KmipError> {
        self.call(operation::ACTIVATE, vec![unique_identifier(uid)])
            .await?;
        Ok(())
    }

    /// Takes the key `uid` out of use.
    pub async fn revoke(&self, uid: &str, reason: RevocationReason) -> Result<(), KmipError> {
        self.call(operation::REVOKE, revoke_payload(uid, reason))
            .await?;
        Ok(())
    }

    /// Sends one request of one batch item and returns the answer's payload.
    async fn call(&self, operation: u32, payload: Vec<Item>) -> Result<Vec<Item>, KmipError> {
        let answer = self.exchange(&encode(&request(operation, payload))).await?;
        batch_result(decode(&answer)?, operation)
    }

    /// Connects, sends `request` and reads the answer, all within the
    /// timeout: a KMS that stops answering must not hold a caller.
    async fn exchange(&self, request: &[u8]) -> Result<Vec<u8>, KmipError> {
        let deadline = Instant::now() + self.timeout;
        let endpoint = &self.endpoint;
        let late = |what: &str| {
            KmipError::Unreachable(format!(
                "{what} {endpoint} took longer than {:?}",
                self.timeout
            ))
        };
        let unreachable = |what: &str, e: std::io::Error| {
            KmipError::Unreachable(format!("{what} {endpoint}: {e}"))
        };
        let connect = async {
            if self.allow_private {
                return TcpStream::connect(endpoint)
                    .await
                    .map_err(|e| unreachable("cannot connect to", e));
            }
            // Only the public addresses the name resolved to: never the
            // platform's own machine or networks on an owner's word.
            let (host, port) = endpoint
                .rsplit_once(':')
                .and_then(|(h, p)| {
                    Some((
                        h.trim_start_matches('[').trim_end_matches(']'),
                        p.parse().ok()?,
                    ))
                })
                .ok_or_else(|| KmipError::Settings(format!("{endpoint} is not host:port")))?;
            let addresses = crate::net::public_addresses(host, port)
                .await
                .map_err(KmipError::Unreachable)?;
            TcpStream::connect(&addresses[..])
                .await
                .map_err(|e| unreachable("cannot connect to", e))
        };
        let tcp = timeout_at(deadline, connect)
            .await
            .map_err(|_| late("connecting to"))??;
        // One small request, then the answer: nothing to coalesce.
        tcp.set_nodelay(true)
            .map_err(|e| unreachable("cannot set up the connection to", e))?;
        let mut tls = timeout_at(
            deadline,
            self.connector.connect(self.server_name.clone(), tcp),
        )
        .await
        .map_err(|_| late("the TLS handshake with"))?
        .map_err(|e| unreachable("the TLS handshake failed with", e))?;
        timeout_at(deadline, async {
            tls.write_all(request)
                .await
                .map_err(|e| unreachable("cannot send to", e))?;
            tls.flush()
                .await
                .map_err(|e| unreachable("cannot send to", e))?;
            let answer = read_message(&mut tls, endpoint).await?;
            // The answer is in hand: a failed goodbye changes nothing.
            let _ = tls.shutdown().await;
            Ok(answer)
        })
        .await
        .map_err(|_| late("the answer of"))?
    }
}

/// One TTLV message: its 8-byte header, then as many bytes as it says.
async fn read_message(
    stream: &mut (impl AsyncRead + Unpin),
    endpoint: &str,
) -> Result<Vec<u8>, KmipError> {
    let failed = |e: std::io::Error| {
        KmipError::Unreachable(match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                format!("{endpoint} closed the connection before the whole answer")
            }
            _ => format!("no answer from {endpoint}: {e}"),
        })
    };
    let mut message = vec![0; 8];
    stream.read_exact(&mut message).await.map_err(failed)?;
    let length = u32::from_be_bytes([message[4], message[5], message[6], message[7]]) as usize;
    if length > MAX_MESSAGE {
        return Err(malformed(format!(
            "an answer of {length} bytes, more than the {MAX_MESSAGE} this client reads"
        )));
    }
    message.resize(8 + length, 0);
    stream.read_exact(&mut message[8..]).await.map_err(failed)?;
    Ok(message)
}

/// A request message of one batch item, protocol version 1.4.
fn request(operation: u32, payload: Vec<Item>) -> Item {
    let structure = |tag, items| Item::new(tag, Value::Structure(items));
    structure(
        tag::REQUEST_MESSAGE,
        vec![
            structure(
                tag::REQUEST_HEADER,
                vec![
                    structure(
                        tag::PROTOCOL_VERSION,
                        vec![
                            Item::new(tag::PROTOCOL_VERSION_MAJOR, Value::Integer(1)),
                            Item::new(tag::PROTOCOL_VERSION_MINOR, Value::Integer(4)),
                        ],
                    ),
                    Item::new(tag::BATCH_COUNT, Value::Integer(1)),
                ],
            ),
            structure(
                tag::BATCH_ITEM,
                vec![
                    Item::new(tag::OPERATION, Value::Enumeration(operation)),
                    structure(tag::REQUEST_PAYLOAD, payload),
                ],
            ),
        ],
    )
}

fn unique_identifier(uid: &str) -> Item {
    Item::new(tag::UNIQUE_IDENTIFIER, Value::TextString(uid.to_owned()))
}

fn byte_string(tag: u32, bytes: &[u8]) -> Item {
    Item::new(tag, Value::ByteString(bytes.to_vec()))
}

/// AES-GCM with a 16-byte tag, in the order the specification lists the
/// fields (PyKMIP reads them in that order).
fn gcm_parameters() -> Item {
    Item::new(
        tag::CRYPTOGRAPHIC_PARAMETERS,
        Value::Structure(vec![
            Item::new(
                tag::BLOCK_CIPHER_MODE,
                Value::Enumeration(BLOCK_CIPHER_MODE_GCM),
            ),
            Item::new(
                tag::CRYPTOGRAPHIC_ALGORITHM,
                Value::Enumeration(ALGORITHM_AES),
            ),
            Item::new(tag::TAG_LENGTH, Value::Integer(GCM_TAG_LENGTH as i32)),
        ]),
    )
}

fn encrypt_payload(uid: &str, iv: [u8; 12], aad: &[u8], data: &[u8]) -> Vec<Item> {
    vec![
        unique_identifier(uid),
        gcm_parameters(),
        byte_string(tag::DATA, data),
        byte_string(tag::IV_COUNTER_NONCE, &iv),
        byte_string(tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, aad),
    ]
}

fn decrypt_payload(
    uid: &str,
    iv: [u8; 12],
    aad: &[u8],
    ciphertext: &[u8],
    tag: [u8; 16],
) -> Vec<Item> {
    vec![
        unique_identifier(uid),
        gcm_parameters(),
        byte_string(tag::DATA, ciphertext),
        byte_string(tag::IV_COUNTER_NONCE, &iv),
        byte_string(tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, aad),
        byte_string(tag::AUTHENTICATED_ENCRYPTION_TAG, &tag),
    ]
}

fn state_payload(uid: &str) -> Vec<Item> {
    vec![
        unique_identifier(uid),
        Item::new(tag::ATTRIBUTE_NAME, Value::TextString("State".into())),
    ]
}

/// A symmetric key's template, in the KMIP 1.x form: attributes named by
/// their specification names.
fn create_payload(name: &str) -> Vec<Item> {
    let attribute = |name: &str, value| {
        Item::new(
            tag::ATTRIBUTE,
            Value::Structure(vec![
                Item::new(tag::ATTRIBUTE_NAME, Value::TextString(name.into())),
                Item::new(tag::ATTRIBUTE_VALUE, value),
            ]),
        )
    };
    vec![
        Item::new(
            tag::OBJECT_TYPE,
            Value::Enumeration(OBJECT_TYPE_SYMMETRIC_KEY),
        ),
        Item::new(
            tag::TEMPLATE_ATTRIBUTE,
            Value::Structure(vec![
                attribute("Cryptographic Algorithm", Value::Enumeration(ALGORITHM_AES)),
                attribute("Cryptographic Length", Value::Integer(256)),
                attribute(
                    "Cryptographic Usage Mask",
                    Value::Integer(USAGE_ENCRYPT | USAGE_DECRYPT),
                ),
                attribute(
                    "Name",
                    Value::Structure(vec![
                        Item::new(tag::NAME_VALUE, Value::TextString(name.into())),
                        Item::new(tag::NAME_TYPE, Value::Enumeration(NAME_TYPE_TEXT)),
                    ]),
                ),
            ]),
        ),
    ]
}

fn revoke_payload(uid: &str, reason: RevocationReason) -> Vec<Item> {
    vec![
        unique_identifier(uid),
        Item::new(
            tag::REVOCATION_REASON,
            Value::Structure(vec![Item::new(
                tag::REVOCATION_REASON_CODE,
                Value::Enumeration(reason.code()),
            )]),
        ),
    ]
}

/// The payload of the one batch item of `response`, or its refusal.
fn batch_result(response: Item, operation: u32) -> Result<Vec<Item>, KmipError> {
    let Value::Structure(message) = response.value else {
        return Err(malformed("the answer is not a structure".into()));
    };
    if response.tag != tag::RESPONSE_MESSAGE {
        return Err(malformed(format!(
            "the answer is item {:06X}, not a response",
            response.tag
        )));
    }
    let mut batches = message.iter().filter(|i| i.tag == tag::BATCH_ITEM);
    let (Some(batch), None) = (batches.next(), batches.next()) else {
        return Err(malformed("not one batch item in the answer".into()));
    };
    let Value::Structure(batch) = &batch.value else {
        return Err(malformed("the batch item is not a structure".into()));
    };
    if let Some(answered) = find(batch, tag::OPERATION)
        && *answered != Value::Enumeration(operation)
    {
        return Err(malformed(format!(
            "operation {operation:#x} answered as {answered:?}"
        )));
    }
    if enumeration(batch, tag::RESULT_STATUS, "Result Status")? != RESULT_STATUS_SUCCESS {
        return Err(KmipError::Refused {
            reason: enumeration(batch, tag::RESULT_REASON, "Result Reason").unwrap_or(0),
            message: text(batch, tag::RESULT_MESSAGE, "Result Message")
                .unwrap_or_default()
                .to_owned(),
        });
    }
    match find(batch, tag::RESPONSE_PAYLOAD) {
        None => Ok(Vec::new()),
        Some(Value::Structure(payload)) => Ok(payload.clone()),
        Some(_) => Err(malformed("the Response Payload is not a structure".into())),
    }
}

fn encrypted(payload: &[Item], length: usize) -> Result<(Vec<u8>, [u8; 16]), KmipError> {
    let ciphertext = bytes(payload, tag::DATA, "Data")?;
    if ciphertext.len() != length {
        return Err(malformed(format!(
            "{} bytes of GCM ciphertext for {length} of data",
            ciphertext.len()
        )));
    }
    let tag = bytes(
        payload,
        tag::AUTHENTICATED_ENCRYPTION_TAG,
        "Authenticated Encryption Tag",
    )?;
    let tag = tag
        .try_into()
        .map_err(|_| malformed(format!("a GCM tag of {} bytes, not 16", tag.len())))?;
    Ok((ciphertext.to_vec(), tag))
}

/// The State attribute among a Get Attributes answer's attributes.
fn key_state(payload: &[Item]) -> Result<KeyState, KmipError> {
    let code = payload
        .iter()
        .filter(|i| i.tag == tag::ATTRIBUTE)
        .find_map(|attribute| match &attribute.value {
            Value::Structure(fields)
                if text(fields, tag::ATTRIBUTE_NAME, "Attribute Name").ok() == Some("State") =>
            {
                Some(enumeration(fields, tag::ATTRIBUTE_VALUE, "State"))
            }
            _ => None,
        })
        .ok_or_else(|| malformed("the answer has no State attribute".into()))??;
    KeyState::from_code(code).ok_or_else(|| malformed(format!("unknown key state {code}")))
}

fn find(items: &[Item], tag: u32) -> Option<&Value> {
    items.iter().find(|i| i.tag == tag).map(|i| &i.value)
}

fn missing(name: &str) -> KmipError {
    malformed(format!("no {name} of the right type in the answer"))
}

fn enumeration(items: &[Item], tag: u32, name: &str) -> Result<u32, KmipError> {
    match find(items, tag) {
        Some(Value::Enumeration(v)) => Ok(*v),
        _ => Err(missing(name)),
    }
}

fn text<'a>(items: &'a [Item], tag: u32, name: &str) -> Result<&'a str, KmipError> {
    match find(items, tag) {
        Some(Value::TextString(v)) => Ok(v),
        _ => Err(missing(name)),
    }
}

fn bytes<'a>(items: &'a [Item], tag: u32, name: &str) -> Result<&'a [u8], KmipError> {
    match find(items, tag) {
        Some(Value::ByteString(v)) => Ok(v),
        _ => Err(missing(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(hex: &str) -> Vec<u8> {
        hex::decode(hex.replace([' ', '\n'], "")).expect("hex")
    }

    /// The examples of KMIP 1.4, section 9.1.2, one per type.
    fn specification_examples() -> Vec<(&'static str, Value)> {
        vec![
            ("420020 02 00000004 00000008 00000000", Value::Integer(8)),
            (
                "420020 03 00000008 01B69B4BA5749200",
                Value::LongInteger(123_456_789_000_000_000),
            ),
            (
                "420020 05 00000004 000000FF 00000000",
                Value::Enumeration(255),
            ),
            ("420020 06 00000008 0000000000000001", Value::Boolean(true)),
            (
                "420020 07 0000000B 48656C6C6F20576F726C64 0000000000",
                Value::TextString("Hello World".into()),
            ),
            (
                "420020 08 00000003 010203 0000000000",
                Value::ByteString(vec![1, 2, 3]),
            ),
            // Friday, March 14, 2008, 11:56:40 GMT.
            (
                "420020 09 00000008 0000000047DA67F8",
                Value::DateTime(1_205_495_800),
            ),
            // Ten days.
            (
                "420020 0A 00000004 000D2F00 00000000",
                Value::Interval(864_000),
            ),
            (
                "420020 01 00000020 420004 05 00000004 000000FE 00000000
                                    420005 02 00000004 000000FF 00000000",
                Value::Structure(vec![
                    Item::new(0x42_0004, Value::Enumeration(254)),
                    Item::new(0x42_0005, Value::Integer(255)),
                ]),
            ),
        ]
    }

    #[test]
    fn kmip_ttlv_matches_the_specification_examples() {
        for (hex, value) in specification_examples() {
            let item = Item::new(0x42_0020, value);
            assert_eq!(encode(&item), unhex(hex), "{item:?}");
            assert_eq!(decode(&unhex(hex)).expect(hex), item);
        }
    }

    #[test]
    fn kmip_ttlv_round_trips_every_type() {
        let values = vec![
            Value::Integer(i32::MIN),
            Value::Integer(-1),
            Value::LongInteger(i64::MIN),
            Value::Enumeration(u32::MAX),
            Value::Boolean(false),
            Value::TextString(String::new()),
            Value::TextString("clé à 8 octets".into()),
            Value::ByteString(Vec::new()),
            Value::ByteString(vec![0xFF; 8]),
            Value::ByteString((0..=255).collect()),
            Value::DateTime(-1),
            Value::Interval(0),
            Value::Structure(Vec::new()),
        ];
        let nested = Item::new(
            tag::REQUEST_MESSAGE,
            Value::Structure(vec![
                Item::new(
                    tag::BATCH_ITEM,
                    Value::Structure(
                        values
                            .iter()
                            .map(|v| Item::new(tag::DATA, v.clone()))
                            .collect(),
                    ),
                ),
                Item::new(tag::DATA, Value::ByteString(vec![7; 9])),
            ]),
        );
        for item in values
            .into_iter()
            .map(|value| Item::new(tag::DATA, value))
            .chain([nested])
        {
            let bytes = encode(&item);
            assert_eq!(bytes.len() % 8, 0, "{item:?} is padded to 8 bytes");
            assert_eq!(decode(&bytes).expect("decodes"), item);
        }
    }

    /// PyKMIP 0.11's own Encrypt request (the research's gcm_raw.out): key
    /// "2", the 32 bytes 0..=31, AAD "org:0190abcd".
    const PYKMIP_ENCRYPT: &str = "42007801000001004200770100000038420069010000002042006a0200000004000000010000000042006b0200000004000000040000000042000d0200000004000000010000000042000f01000000b842005c05000000040000001f0000000042007901000000a04200940700000001320000000000000042002b010000003042001105000000040000000900000000420028050000000400000003000000004200ce020000000400000010000000004200c20800000020000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f42003d080000000cb5d3d7b411cde1d7ba153bce000000004200fe080000000c6f72673a303139306162636400000000";
    const PYKMIP_ENCRYPTED: &str = "42007b01000000d042007a0100000048420069010000002042006a0200000004000000010000000042006b020000000400000004000000004200920900000008000000006b1734d642000d0200000004000000010000000042000f010000007842005c05000000040000001f0000000042007f0500000004000000000000000042007c0100000050420094070000000132000000000000004200c20800000020e93630a28ae7dc3a7bcf89732b4ca9b9805817ae250444f86e58e3c815bb05624200ff08000000106497b08c74bb3cb7e31cbc7b2901e29c";
    const PYKMIP_DECRYPT: &str = "42007801000001184200770100000038420069010000002042006a0200000004000000010000000042006b0200000004000000040000000042000d0200000004000000010000000042000f01000000d042005c0500000004000000200000000042007901000000b84200940700000001320000000000000042002b010000003042001105000000040000000900000000420028050000000400000003000000004200ce020000000400000010000000004200c20800000020e93630a28ae7dc3a7bcf89732b4ca9b9805817ae250444f86e58e3c815bb056242003d080000000cb5d3d7b411cde1d7ba153bce000000004200fe080000000c6f72673a3031393061626364000000004200ff08000000106497b08c74bb3cb7e31cbc7b2901e29c";
    const PYKMIP_GET_STATE: &str = "42007801000000804200770100000038420069010000002042006a0200000004000000010000000042006b0200000004000000040000000042000d0200000004000000010000000042000f010000003842005c05000000040000000b0000000042007901000000204200940700000001320000000000000042000a07000000055374617465000000";
    const PYKMIP_STATE_ACTIVE: &str = "42007b01000000b842007a0100000048420069010000002042006a0200000004000000010000000042006b020000000400000004000000004200920900000008000000006b1734d642000d0200000004000000010000000042000f010000006042005c05000000040000000b0000000042007f0500000004000000000000000042007c010000003842009407000000013200000000000000420008010000002042000a0700000005537461746500000042000b05000000040000000200000000";
    /// PyKMIP's Create of "nuage-kek-1" (AES, 256, Encrypt|Decrypt), its
    /// Activate and its Revoke (key compromise) of key "1".
    const PYKMIP_CREATE: &str = "42007801000001684200770100000038420069010000002042006a0200000004000000010000000042006b0200000004000000040000000042000d0200000004000000010000000042000f010000012042005c0500000004000000010000000042007901000001084200570500000004000000020000000042009101000000f0420008010000003042000a070000001743727970746f6772617068696320416c676f726974686d0042000b05000000040000000300000000420008010000003042000a070000001443727970746f67726170686963204c656e6774680000000042000b02000000040000010000000000420008010000003042000a070000001843727970746f67726170686963205573616765204d61736b42000b02000000040000000c00000000420008010000004042000a07000000044e616d650000000042000b0100000028420055070000000b6e756167652d6b656b2d31000000000042005405000000040000000100000000";
    const PYKMIP_ACTIVATE: &str = "42007801000000704200770100000038420069010000002042006a0200000004000000010000000042006b0200000004000000040000000042000d0200000004000000010000000042000f010000002842005c05000000040000001200000000420079010000001042009407000000013100000000000000";
    const PYKMIP_REVOKE: &str = "42007801000000884200770100000038420069010000002042006a0200000004000000010000000042006b0200000004000000040000000042000d0200000004000000010000000042000f010000004042005c05000000040000001300000000420079010000002842009407000000013100000000000000420081010000001042008205000000040000000200000000";

    const IV: [u8; 12] = [
        0xb5, 0xd3, 0xd7, 0xb4, 0x11, 0xcd, 0xe1, 0xd7, 0xba, 0x15, 0x3b, 0xce,
    ];
    const AAD: &[u8] = b"org:0190abcd";

    fn key_bytes() -> Vec<u8> {
        (0..32).collect()
    }

    #[test]
    fn kmip_requests_are_the_bytes_pykmip_sends() {
        let ciphertext = unhex("e93630a28ae7dc3a7bcf89732b4ca9b9805817ae250444f86e58e3c815bb0562");
        let gcm_tag: [u8; 16] = unhex("6497b08c74bb3cb7e31cbc7b2901e29c")
            .try_into()
            .expect("16 bytes");
        let cases = [
            (
                operation::ENCRYPT,
                encrypt_payload("2", IV, AAD, &key_bytes()),
                PYKMIP_ENCRYPT,
            ),
            (
                operation::DECRYPT,
                decrypt_payload("2", IV, AAD, &ciphertext, gcm_tag),
                PYKMIP_DECRYPT,
            ),
            (
                operation::GET_ATTRIBUTES,
                state_payload("2"),
                PYKMIP_GET_STATE,
            ),
            (
                operation::CREATE,
                create_payload("nuage-kek-1"),
                PYKMIP_CREATE,
            ),
            (
                operation::ACTIVATE,
                vec![unique_identifier("1")],
                PYKMIP_ACTIVATE,
            ),
            (
                operation::REVOKE,
                revoke_payload("1", RevocationReason::KeyCompromise),
                PYKMIP_REVOKE,
            ),
        ];
        for (operation, payload, pykmip) in cases {
            let ours = encode(&request(operation, payload));
            assert_eq!(hex::encode(ours), pykmip, "operation {operation:#x}");
        }
    }

    #[test]
    fn kmip_answers_pykmip_gave_are_read() {
        let answer = decode(&unhex(PYKMIP_ENCRYPTED)).expect("decodes");
        let payload = batch_result(answer, operation::ENCRYPT).expect("success");
        let (ciphertext, gcm_tag) = encrypted(&payload, 32).expect("encrypted");
        assert_eq!(
            hex::encode(ciphertext),
            "e93630a28ae7dc3a7bcf89732b4ca9b9805817ae250444f86e58e3c815bb0562"
        );
        assert_eq!(hex::encode(gcm_tag), "6497b08c74bb3cb7e31cbc7b2901e29c");
        // GCM keeps the length: an answer that does not is not trusted.
        assert!(matches!(
            encrypted(&payload, 31),
            Err(KmipError::Malformed(_))
        ));

        let answer = decode(&unhex(PYKMIP_STATE_ACTIVE)).expect("decodes");
        // An answer to another operation than the one asked is refused.
        assert!(matches!(
            batch_result(answer.clone(), operation::ENCRYPT),
            Err(KmipError::Malformed(_))
        ));
        let payload = batch_result(answer, operation::GET_ATTRIBUTES).expect("success");
        assert_eq!(key_state(&payload).expect("a state"), KeyState::Active);
    }

    #[test]
    fn kmip_refusals_carry_the_reason_and_read_plainly() {
        let structure = |tag, items| Item::new(tag, Value::Structure(items));
        let refused = structure(
            tag::RESPONSE_MESSAGE,
            vec![structure(
                tag::BATCH_ITEM,
                vec![
                    Item::new(tag::OPERATION, Value::Enumeration(operation::ENCRYPT)),
                    Item::new(tag::RESULT_STATUS, Value::Enumeration(1)),
                    Item::new(
                        tag::RESULT_REASON,
                        Value::Enumeration(result_reason::PERMISSION_DENIED),
                    ),
                    Item::new(
                        tag::RESULT_MESSAGE,
                        Value::TextString("Could not locate object: 1".into()),
                    ),
                ],
            )],
        );
        let error = batch_result(
            decode(&encode(&refused)).expect("decodes"),
            operation::ENCRYPT,
        )
        .expect_err("refused");
        assert!(
            matches!(&error, KmipError::Refused { reason: result_reason::PERMISSION_DENIED, message } if message == "Could not locate object: 1"),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "the KMS refused: permission denied — Could not locate object: 1"
        );
        assert_eq!(
            KmipError::Unreachable("connecting to 10.0.0.1:5696 took longer than 5s".into())
                .to_string(),
            "the KMS is unreachable: connecting to 10.0.0.1:5696 took longer than 5s"
        );
        let service: ServiceError = error.into();
        assert!(service.to_string().contains("permission denied"));
    }

    #[test]
    fn kmip_malformed_input_is_refused() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("420020 02 00000004", "a header cut short"),
            (
                "420020 08 00000009 0102030405060708",
                "a length past the end",
            ),
            ("420020 08 FFFFFFFF 0102030405060708", "a huge length"),
            ("420020 0B 00000004 00000000 00000000", "an unknown type"),
            ("420020 04 00000008 0000000000000001", "a Big Integer"),
            (
                "420020 02 00000008 0000000000000001",
                "an Integer of 8 bytes",
            ),
            (
                "420020 03 00000004 00000001 00000000",
                "a Long Integer of 4 bytes",
            ),
            ("420020 06 00000008 0000000000000002", "a Boolean of 2"),
            (
                "420020 07 00000002 FFFE000000000000",
                "text that is not UTF-8",
            ),
            ("420020 08 00000003 010203 0000000001", "non-zero padding"),
            (
                "420020 01 00000004 00000000 00000000",
                "a structure of 4 bytes",
            ),
            (
                "420020 01 00000010 420021 02 00000004 00000001 00000000 00000000",
                "a structure longer than its items",
            ),
            (
                "420020 02 00000004 00000001 00000000 420021 02 00000004 00000001 00000000",
                "bytes after the message",
            ),
        ];
        for (hex, what) in cases {
            assert!(
                matches!(decode(&unhex(hex)), Err(KmipError::Malformed(_))),
                "{what} was accepted"
            );
        }
        // Nesting deeper than any answer is refused, not recursed into.
        let mut deep = Item::new(tag::DATA, Value::Integer(1));
        for _ in 0..=MAX_DEPTH {
            deep = Item::new(tag::BATCH_ITEM, Value::Structure(vec![deep]));
        }
        assert!(matches!(
            decode(&encode(&deep)),
            Err(KmipError::Malformed(_))
        ));
        // Every cut of a real message is refused, and no damage panics.
        let message = unhex(PYKMIP_ENCRYPTED);
        for cut in 0..message.len() {
            assert!(decode(&message[..cut]).is_err(), "cut at {cut}");
        }
        for at in 0..message.len() {
            let mut damaged = message.clone();
            damaged[at] ^= 0xA5;
            let _ = decode(&damaged);
        }
    }

    #[tokio::test]
    async fn kmip_messages_are_read_whole_and_bounded() {
        let message = unhex(PYKMIP_ENCRYPTED);
        let mut stream = [message.as_slice(), b"next"].concat();
        let read = read_message(&mut stream.as_slice(), "kms")
            .await
            .expect("read");
        assert_eq!(read, message, "exactly one message is read");
        stream.truncate(message.len() - 1);
        let cut = read_message(&mut stream.as_slice(), "kms").await;
        assert!(matches!(cut, Err(KmipError::Unreachable(_))), "{cut:?}");
        let huge = unhex("42007B01 7FFFFFFF");
        let huge = read_message(&mut huge.as_slice(), "kms").await;
        assert!(matches!(huge, Err(KmipError::Malformed(_))), "{huge:?}");
    }

    #[test]
    fn kmip_secrets_stay_out_of_debug_output() {
        let settings = KmipSettings {
            endpoint: "kms.example:5696".into(),
            server_name: "kms.example".into(),
            ca_pem: String::new(),
            client_cert_pem: String::new(),
            client_key_pem: "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n".to_owned().into(),
            timeout: Duration::from_secs(5),
            allow_private: false,
        };
        let shown = format!("{settings:?}");
        assert!(
            shown.contains("kms.example:5696") && !shown.contains("c2VjcmV0"),
            "{shown}"
        );
        let data = Item::new(tag::DATA, Value::ByteString(b"the org key".to_vec()));
        assert_eq!(format!("{data:?}"), "4200C2 ByteString(<11 bytes>)");
        // Settings that cannot work are refused at once, before any call.
        assert!(matches!(
            KmipClient::new(&settings),
            Err(KmipError::Settings(_))
        ));
    }
}
