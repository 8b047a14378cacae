//! Signed streaming bodies (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, with or
//! without `-TRAILER`) of a request signed again for `us-east-1`: each
//! chunk's signature chains from the one before, starting at the seed (the
//! header's signature). Every chunk is checked against the client's chain
//! and given the signature of the new one, so that `s3s` checks the body as
//! it checks any other. A chunk that does not hold, and every one after it,
//! gets a signature that cannot hold: `s3s` then refuses the body as it
//! refuses any forged chunk. Anything this reader does not understand goes
//! on unchanged, to be refused by `s3s` against the new chain.

use std::collections::VecDeque;
use std::time::SystemTime;

use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};

/// SHA-256 of nothing, in hex.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// A chunk's header line is at most this long (as `s3s` reads it).
const MAX_META: usize = 1024;
/// Trailing headers are at most this long (as `s3s` reads them).
const MAX_TRAILERS: usize = 16 * 1024;
/// A chunk larger than this is not held here: it goes on as it came, and
/// fails against the new chain. Clients send 64 KiB to 8 MiB.
const MAX_CHUNK: usize = 16 * 1024 * 1024;

/// One signer's chain: its signing key, scope and last signature.
struct Chain {
    key: Vec<u8>,
    scope: String,
    previous: String,
}

impl Chain {
    fn new(secret: &str, time: SystemTime, day: &str, region: &str, service: &str) -> Self {
        Self {
            key: generate_signing_key(secret, time, region, service)
                .as_ref()
                .to_vec(),
            scope: format!("{day}/{region}/{service}/aws4_request"),
            previous: String::new(),
        }
    }

    /// Signs the next link: `kind` is `AWS4-HMAC-SHA256-PAYLOAD` or
    /// `-TRAILER`, `hashes` what that kind signs.
    fn sign(&mut self, kind: &str, amz_date: &str, hashes: &str) -> String {
        let to_sign = format!(
            "{kind}\n{amz_date}\n{}\n{}\n{hashes}",
            self.scope, self.previous
        );
        self.previous = calculate_signature(&self.key, to_sign.as_bytes());
        self.previous.clone()
    }
}

/// The client's chain and the new one, link by link.
pub struct Chains {
    amz_date: String,
    theirs: Chain,
    ours: Chain,
    broken: bool,
}

impl Chains {
    /// `seeds`: the header's signature as the client made it, and as it
    /// was made again.
    pub fn new(
        secret: &str,
        (time, amz_date): (SystemTime, &str),
        (their_region, our_region): (&str, &str),
        service: &str,
        (their_seed, our_seed): (&str, &str),
    ) -> Self {
        let day = &amz_date[..amz_date.len().min(8)];
        let mut theirs = Chain::new(secret, time, day, their_region, service);
        theirs.previous = their_seed.to_owned();
        let mut ours = Chain::new(secret, time, day, our_region, service);
        ours.previous = our_seed.to_owned();
        Self {
            amz_date: amz_date.to_owned(),
            theirs,
            ours,
            broken: false,
        }
    }

    /// The new signature of the next link, given the client's.
    fn link(&mut self, kind: &str, hashes: &str, given: &[u8]) -> String {
        let theirs = self.theirs.sign(kind, &self.amz_date, hashes);
        self.broken |= !super::constant_time_eq(theirs.as_bytes(), given);
        let ours = self.ours.sign(kind, &self.amz_date, hashes);
        if self.broken { "0".repeat(64) } else { ours }
    }

    fn chunk(&mut self, data: &[u8], given: &[u8]) -> String {
        let hashes = format!("{EMPTY_SHA256}\n{}", hex::encode(Sha256::digest(data)));
        self.link("AWS4-HMAC-SHA256-PAYLOAD", &hashes, given)
    }

    fn trailer(&mut self, canonical: &[u8], given: &[u8]) -> String {
        let hash = hex::encode(Sha256::digest(canonical));
        self.link("AWS4-HMAC-SHA256-TRAILER", &hash, given)
    }
}

/// Where the reader is in the body.
#[derive(Clone, Copy)]
enum At {
    /// Before a chunk's header line.
    Header,
    /// Before a chunk's data and its CRLF.
    Data(usize),
    /// After the last (empty) chunk: the trailing headers, if any.
    Trailers,
    /// Passing on what is left, unchanged.
    Through,
}

struct Reader<S> {
    body: S,
    chains: Chains,
    buffer: BytesMut,
    at: At,
    /// The header line of the chunk being read: its size as sent, and the
    /// client's signature.
    header: Option<(String, Vec<u8>)>,
    out: VecDeque<Bytes>,
    ended: bool,
}

/// The body with each chunk's signature made again.
pub fn resigned<S, E>(
    body: S,
    chains: Chains,
) -> impl Stream<Item = Result<Bytes, E>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: Send + 'static,
{
    let reader = Reader {
        body,
        chains,
        buffer: BytesMut::new(),
        at: At::Header,
        header: None,
        out: VecDeque::new(),
        ended: false,
    };
    futures::stream::unfold(reader, |mut r| async move {
        let next = r.next().await;
        next.map(|item| (item, r))
    })
}

impl<S, E> Reader<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    /// Reads more of the body; `false` at its end.
    async fn fill(&mut self) -> Result<bool, E> {
        if self.ended {
            return Ok(false);
        }
        match self.body.next().await {
            Some(Ok(bytes)) => {
                self.buffer.extend_from_slice(&bytes);
                Ok(true)
            }
            Some(Err(e)) => Err(e),
            None => {
                self.ended = true;
                Ok(false)
            }
        }
    }

    async fn next(&mut self) -> Option<Result<Bytes, E>> {
        loop {
            if let Some(bytes) = self.out.pop_front() {
                return Some(Ok(bytes));
            }
            match self.at {
                At::Header => {
                    if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                        let line = self.buffer.split_to(end + 1).freeze();
                        match chunk_header(&line) {
                            Some((size, text, given)) if size <= MAX_CHUNK => {
                                self.header = Some((text, given));
                                self.at = At::Data(size);
                            }
                            _ => {
                                self.out.push_back(line);
                                self.at = At::Through;
                            }
                        }
                        continue;
                    }
                    if self.buffer.len() > MAX_META {
                        self.at = At::Through;
                        continue;
                    }
                }
                At::Data(size) => {
                    // An empty chunk is the last: no CRLF of its own here,
                    // what follows is the trailing headers' block.
                    let needed = if size == 0 { 0 } else { size + 2 };
                    if self.buffer.len() >= needed {
                        let data = self.buffer.split_to(size).freeze();
                        let (text, given) = self.header.take().unwrap_or_default();
                        let signature = self.chains.chunk(&data, &given);
                        self.out.push_back(Bytes::from(format!(
                            "{text};chunk-signature={signature}\r\n"
                        )));
                        if size == 0 {
                            self.at = At::Trailers;
                        } else {
                            self.out.push_back(data);
                            self.out.push_back(self.buffer.split_to(2).freeze());
                            self.at = At::Header;
                        }
                        continue;
                    }
                }
                At::Trailers => {
                    if self.ended || self.buffer.len() > MAX_TRAILERS {
                        let block = self.buffer.split().freeze();
                        if !self.ended {
                            self.out.push_back(block);
                            self.at = At::Through;
                            continue;
                        }
                        self.at = At::Through;
                        let block = self.trailers(&block);
                        self.out.push_back(block);
                        continue;
                    }
                }
                At::Through => {
                    if !self.buffer.is_empty() {
                        return Some(Ok(self.buffer.split().freeze()));
                    }
                    if self.ended {
                        return None;
                    }
                    return match self.body.next().await {
                        Some(item) => Some(item),
                        None => {
                            self.ended = true;
                            None
                        }
                    };
                }
            }
            match self.fill().await {
                Err(e) => return Some(Err(e)),
                Ok(true) => {}
                // Cut short: what was read goes on, for s3s to refuse.
                Ok(false) if !matches!(self.at, At::Trailers) => {
                    if let Some((text, given)) = self.header.take() {
                        let mut line = format!("{text};chunk-signature=").into_bytes();
                        line.extend_from_slice(&given);
                        line.extend_from_slice(b"\r\n");
                        self.out.push_back(Bytes::from(line));
                    }
                    self.at = At::Through;
                }
                Ok(false) => {}
            }
        }
    }

    /// The trailing headers, with `x-amz-trailer-signature` made again over
    /// the others, canonical as `s3s` makes them (names in lower case,
    /// values trimmed, sorted by name, `name:value\n`).
    fn trailers(&mut self, block: &[u8]) -> Bytes {
        let mut entries: Vec<(String, String)> = Vec::new();
        let mut given = None;
        for line in block.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some((name, value)) = split_header(line) else {
                continue;
            };
            if name == "x-amz-trailer-signature" {
                given = Some(value);
            } else {
                entries.push((name, value));
            }
        }
        let Some(given) = given else {
            return Bytes::copy_from_slice(block);
        };
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let canonical: String = entries.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
        let signature = self.chains.trailer(canonical.as_bytes(), given.as_bytes());
        let mut out = Vec::with_capacity(block.len());
        for line in block.split_inclusive(|b| *b == b'\n') {
            let bare = line.strip_suffix(b"\n").unwrap_or(line);
            let bare = bare.strip_suffix(b"\r").unwrap_or(bare);
            match split_header(bare) {
                Some((name, _)) if name == "x-amz-trailer-signature" => {
                    out.extend_from_slice(
                        format!("x-amz-trailer-signature:{signature}").as_bytes(),
                    );
                    out.extend_from_slice(&line[bare.len()..]);
                }
                _ => out.extend_from_slice(line),
            }
        }
        Bytes::from(out)
    }
}

/// `size;chunk-signature=<64 hex>\r\n`: the size, its text as sent, and
/// the signature.
fn chunk_header(line: &[u8]) -> Option<(usize, String, Vec<u8>)> {
    let line = std::str::from_utf8(line.strip_suffix(b"\r\n")?).ok()?;
    let (size, rest) = line.split_once(';')?;
    let signature = rest.strip_prefix("chunk-signature=")?;
    if size.is_empty() || size.len() > 8 || signature.len() != 64 {
        return None;
    }
    let value = usize::from_str_radix(size, 16).ok()?;
    Some((value, size.to_owned(), signature.as_bytes().to_vec()))
}

/// A trailing header line: its name in lower case, its value trimmed.
fn split_header(line: &[u8]) -> Option<(String, String)> {
    let line = std::str::from_utf8(line).ok()?;
    let (name, value) = line.split_once(':')?;
    Some((name.to_ascii_lowercase(), value.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_header_is_read_whole() {
        let sig = "a".repeat(64);
        let line = format!("10000;chunk-signature={sig}\r\n");
        let (size, text, given) = chunk_header(line.as_bytes()).expect("read");
        assert_eq!((size, text.as_str()), (0x10000, "10000"));
        assert_eq!(given, sig.as_bytes());
        assert!(chunk_header(b"10000\r\n").is_none());
        assert!(chunk_header(format!("zz;chunk-signature={sig}\r\n").as_bytes()).is_none());
        assert!(chunk_header(b"10;chunk-signature=short\r\n").is_none());
    }
}
