//! The client's address behind trusted proxies (`server.trusted_proxies`):
//! when a connection comes from one of them, the client is the rightmost
//! address of `Forwarded` (preferred) or else `X-Forwarded-For` that is not
//! itself a trusted proxy. Anyone else's headers are ignored, so nobody can
//! forge the address the audit and access logs show. Every listener puts the
//! result in the request's `ConnectInfo`, where the surfaces read it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

/// The networks whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<Vec<IpNet>>);

impl TrustedProxies {
    /// Parses `10.0.0.0/8`, `192.0.2.1` (one address)… and says which is
    /// wrong.
    pub fn parse(entries: &[String]) -> anyhow::Result<Self> {
        let mut nets = Vec::with_capacity(entries.len());
        for entry in entries {
            let net = match entry.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => match entry.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => anyhow::bail!(
                        "server.trusted_proxies: {entry:?} is neither an address nor a network (10.0.0.0/8)"
                    ),
                },
            };
            nets.push(net);
        }
        Ok(Self(Arc::new(nets)))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request that reached us from `peer`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let chain = forwarded_for(headers).or_else(|| x_forwarded_for(headers));
        let Some(chain) = chain else {
            return peer;
        };
        // From the nearest hop back: the first address that is not one of
        // ours is the client; a chain made only of ours leaves the last one.
        let mut client = peer;
        for ip in chain.into_iter().rev() {
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

/// An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) is the IPv4 one.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The `for=` addresses of every `Forwarded` header, in order (RFC 7239);
/// `None` without the header or when one of them cannot be read (then
/// nothing of it is believed).
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<IpAddr>> {
    let mut chain = Vec::new();
    let mut seen = false;
    for value in headers.get_all("forwarded") {
        seen = true;
        let value = value.to_str().ok()?;
        for element in value.split(',') {
            for pair in element.split(';') {
                let Some((name, v)) = pair.trim().split_once('=') else {
                    continue;
                };
                if name.trim().eq_ignore_ascii_case("for") {
                    chain.push(node_address(v.trim())?);
                }
            }
        }
    }
    (seen && !chain.is_empty()).then_some(chain)
}

/// A `Forwarded` node: `192.0.2.60`, `"192.0.2.60:4711"`, `"[2001:db8::1]:80"`.
fn node_address(node: &str) -> Option<IpAddr> {
    let node = node.trim_matches('"');
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok().map(canonical);
    }
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    node.parse::<SocketAddr>().ok().map(|s| canonical(s.ip()))
}

fn x_forwarded_for(headers: &HeaderMap) -> Option<Vec<IpAddr>> {
    let mut chain = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        for part in value.to_str().ok()?.split(',') {
            chain.push(node_address(part.trim())?);
        }
    }
    (!chain.is_empty()).then_some(chain)
}

/// Put in a request's extensions when a trusted proxy says the client
/// reached it over TLS (`X-Forwarded-Proto: https`, or `proto=https` in
/// `Forwarded`).
#[derive(Debug, Clone, Copy)]
pub struct ForwardedHttps;

fn forwarded_https(headers: &HeaderMap) -> bool {
    let x_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let proto = headers
        .get_all(axum::http::header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([';', ',']))
        .any(|pair| pair.trim().eq_ignore_ascii_case("proto=https"));
    x_proto || proto
}

/// The middleware every listener runs first: `ConnectInfo` becomes the
/// client's address (its port kept), and a trusted proxy's word that the
/// client used TLS is kept as [`ForwardedHttps`].
pub async fn client_address(
    axum::extract::State(trusted): axum::extract::State<TrustedProxies>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(ConnectInfo(peer)) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .copied()
    {
        if trusted.contains(peer.ip()) && forwarded_https(request.headers()) {
            request.extensions_mut().insert(ForwardedHttps);
        }
        let client = trusted.client(peer.ip(), request.headers());
        if client != peer.ip() {
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(client, peer.port())));
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_trusted_proxies_are_believed_and_forwarded_wins() {
        let trusted =
            TrustedProxies::parse(&["10.0.0.0/8".into(), "192.0.2.1".into()]).expect("parse");
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=198.51.100.17;proto=https"),
        ]);
        // From a stranger, nothing is believed.
        assert_eq!(trusted.client(ip("203.0.113.50"), &h), ip("203.0.113.50"));
        // From the load balancer, Forwarded is preferred.
        assert_eq!(trusted.client(ip("10.1.2.3"), &h), ip("198.51.100.17"));
        let xff = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(trusted.client(ip("192.0.2.1"), &xff), ip("203.0.113.9"));
        assert!(TrustedProxies::parse(&["ten".into()]).is_err());
    }

    #[test]
    fn the_client_is_the_rightmost_address_that_is_not_a_proxy() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8".into()]).expect("parse");
        // The client forged the first entry; the proxy chain appended.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.2")]);
        assert_eq!(trusted.client(ip("10.0.0.1"), &h), ip("203.0.113.9"));
        let h = headers(&[("forwarded", "for=\"[2001:db8::1]:4711\", for=10.0.0.5")]);
        assert_eq!(trusted.client(ip("10.0.0.1"), &h), ip("2001:db8::1"));
        // Unreadable headers are not believed at all.
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(trusted.client(ip("10.0.0.1"), &h), ip("10.0.0.1"));
        // An IPv4 proxy seen as IPv6 is still the proxy.
        assert!(trusted.contains(ip("::ffff:10.0.0.1")));
    }
}
