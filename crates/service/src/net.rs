//! Where the platform may connect on someone else's word: a provider's
//! webhook, an organisation's KMS. Only to public addresses, unless the
//! operator allows private ones (tests, closed networks): otherwise whoever
//! names the destination could reach the platform's own machine, its
//! private networks or a cloud's metadata service through it.

use std::net::{IpAddr, SocketAddr};

/// Whether an address is one the platform must not reach on someone else's
/// word: its own machine, its private networks, link-local (cloud metadata
/// services), multicast or unspecified.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 // 100.64/10
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local
                || (v6.segments()[0] & 0xffc0) == 0xfe80 // link-local
                || v6.to_ipv4_mapped().is_some_and(|v4| is_internal(v4.into()))
        }
    }
}

/// The addresses of a host, if none is internal. Connect to these, not to
/// the name again: a name that resolves elsewhere a moment later (DNS
/// rebinding) then reaches no internal address.
pub async fn public_addresses(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("{host} does not resolve: {e}"))?
        .collect();
    if addresses.is_empty() {
        return Err(format!("{host} does not resolve"));
    }
    if let Some(a) = addresses.iter().find(|a| is_internal(a.ip())) {
        return Err(format!(
            "{host} resolves to {}, an internal address: public endpoints only",
            a.ip()
        ));
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(
                is_internal(internal.parse().expect("address")),
                "{internal}"
            );
        }
        for public in ["193.51.24.1", "2001:db8::1", "8.8.8.8"] {
            assert!(!is_internal(public.parse().expect("address")), "{public}");
        }
    }
}
