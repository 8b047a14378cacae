//! What every listener does with a connection before HTTP sees it, so that
//! nobody can hold the platform's connections: a cap on the connections of
//! one source address (trusted proxies excepted), a deadline for a request's
//! headers that also closes idle keep-alive connections (hyper's header read
//! timeout, which runs from the moment a connection waits for a request, and
//! a deadline for the first byte, before hyper knows the protocol), and a TLS
//! handshake deadline. Bodies that stop sending are cut by
//! [`body_idle_timeout`] (the S3 listener has its own, in the storage).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum_server::Handle;
use axum_server::accept::Accept;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use hyper_util::rt::TokioTimer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::config::ServerConfig;
use crate::proxies::TrustedProxies;

/// How long a TLS client has to finish its handshake.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);

/// The connections open per source address, shared by the listeners.
#[derive(Clone, Default)]
pub struct ConnectionCounts(Arc<Mutex<HashMap<IpAddr, usize>>>);

impl ConnectionCounts {
    /// Takes a place for `ip`, unless it already holds `cap` connections.
    fn take(&self, ip: IpAddr, cap: usize) -> Option<Place> {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let held = counts.entry(ip).or_insert(0);
        if *held >= cap {
            return None;
        }
        *held += 1;
        Some(Place {
            counts: self.clone(),
            ip,
        })
    }
}

/// A connection's place among its source's; given back when it closes.
struct Place {
    counts: ConnectionCounts,
    ip: IpAddr,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(held) = counts.get_mut(&self.ip) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// The acceptor that refuses a source's connections beyond its cap: the
/// connection is closed at once, before TLS or HTTP.
#[derive(Clone)]
pub struct LimitAcceptor {
    counts: ConnectionCounts,
    per_source: usize,
    trusted: TrustedProxies,
}

impl LimitAcceptor {
    pub fn new(counts: ConnectionCounts, config: &ServerConfig, trusted: TrustedProxies) -> Self {
        Self {
            counts,
            per_source: config.max_connections_per_source,
            trusted,
        }
    }
}

impl<S: Send + 'static> Accept<TcpStream, S> for LimitAcceptor {
    type Stream = Guarded<TcpStream>;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Guarded<TcpStream>, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let place = match stream.peer_addr() {
            Ok(peer) if self.per_source > 0 && !self.trusted.contains(peer.ip()) => {
                match self.counts.take(peer.ip(), self.per_source) {
                    Some(place) => Some(place),
                    None => {
                        metrics::counter!("nuage_connections_refused_total").increment(1);
                        return std::future::ready(Err(io::Error::new(
                            io::ErrorKind::ConnectionRefused,
                            "too many connections from this address",
                        )));
                    }
                }
            }
            Ok(_) => None,
            Err(e) => return std::future::ready(Err(e)),
        };
        std::future::ready(Ok((
            Guarded {
                inner: stream,
                _place: place,
                first_byte: None,
            },
            service,
        )))
    }
}

/// Wraps an acceptor's connections in a deadline for their first byte:
/// hyper's header deadline runs only once it knows the protocol, which it
/// learns from the first bytes, so a connection that never sends one (after
/// its TLS handshake, if any) would otherwise wait for ever.
#[derive(Clone)]
pub struct FirstByteDeadline<A> {
    inner: A,
    deadline: Duration,
}

impl<A, I, S> Accept<I, S> for FirstByteDeadline<A>
where
    A: Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Guarded<A::Stream>;
    type Service = A::Service;
    type Future = Pin<
        Box<dyn std::future::Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>,
    >;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let accepted = self.inner.accept(stream, service);
        let deadline = self.deadline;
        Box::pin(async move {
            let (stream, service) = accepted.await?;
            Ok((
                Guarded {
                    inner: stream,
                    _place: None,
                    first_byte: Some(Box::pin(tokio::time::sleep(deadline))),
                },
                service,
            ))
        })
    }
}

/// A connection as the listener holds it: its source's place (given back
/// when it closes), and the deadline of its first byte, if still due.
pub struct Guarded<S> {
    inner: S,
    _place: Option<Place>,
    first_byte: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.inner).poll_read(cx, buf);
        let Some(sleep) = self.first_byte.as_mut() else {
            return read;
        };
        match read {
            Poll::Ready(Ok(())) if buf.filled().len() > before => self.first_byte = None,
            Poll::Pending if sleep.as_mut().poll(cx).is_ready() => {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no request before the deadline",
                )));
            }
            _ => {}
        }
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Serves a router on a listener, plain or TLS, with the connection limits.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<RustlsConfig>,
    handle: Handle,
    limits: LimitAcceptor,
    config: &ServerConfig,
) -> anyhow::Result<()> {
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let header_timeout = Duration::from_secs(config.header_read_timeout_seconds.max(1));
    match tls {
        Some(tls) => {
            let acceptor = FirstByteDeadline {
                inner: RustlsAcceptor::new(tls)
                    .handshake_timeout(TLS_HANDSHAKE)
                    .acceptor(limits),
                deadline: header_timeout,
            };
            let mut server = axum_server::from_tcp(listener).acceptor(acceptor);
            tune(server.http_builder(), header_timeout);
            server.handle(handle).serve(service).await?
        }
        None => {
            let acceptor = FirstByteDeadline {
                inner: limits,
                deadline: header_timeout,
            };
            let mut server = axum_server::from_tcp(listener).acceptor(acceptor);
            tune(server.http_builder(), header_timeout);
            server.handle(handle).serve(service).await?
        }
    }
    Ok(())
}

/// The header deadline for HTTP/1 (a timer makes hyper enforce it), and
/// keep-alive pings that close dead HTTP/2 connections.
fn tune(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    header_timeout: Duration,
) {
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
}

/// Cuts a request body that sends nothing for `idle` (console, API,
/// WebDAV): a client trickling a body holds nothing for long.
pub fn body_idle_timeout(idle: Duration) -> tower_http::timeout::RequestBodyTimeoutLayer {
    tower_http::timeout::RequestBodyTimeoutLayer::new(idle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_holds_at_most_its_cap_and_gets_places_back() {
        let counts = ConnectionCounts::default();
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        let other: IpAddr = "192.0.2.8".parse().expect("ip");
        let a = counts.take(ip, 2).expect("first");
        let _b = counts.take(ip, 2).expect("second");
        assert!(counts.take(ip, 2).is_none(), "third refused");
        assert!(
            counts.take(other, 2).is_some(),
            "another source is not held back"
        );
        drop(a);
        assert!(
            counts.take(ip, 2).is_some(),
            "a closed connection gives its place back"
        );
    }
}
