//! Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA1, 30-second
//! steps, 6 digits, one step of clock drift accepted either way.

use hmac::{Hmac, Mac};
use sha1::Sha1;

pub const STEP_SECONDS: i64 = 30;
const DIGITS: u32 = 6;

/// The code for a time step.
pub fn code_at(secret: &[u8], step: i64) -> String {
    let mut mac =
        <Hmac<Sha1> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let binary = (u32::from(digest[offset]) & 0x7f) << 24
        | u32::from(digest[offset + 1]) << 16
        | u32::from(digest[offset + 2]) << 8
        | u32::from(digest[offset + 3]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(DIGITS),
        width = DIGITS as usize
    )
}

/// The time step a code matches, among the current one and its neighbours.
pub fn matching_step(secret: &[u8], code: &str, now_ms: i64) -> Option<i64> {
    let code = code.trim().replace(' ', "");
    if code.len() != DIGITS as usize || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let current = now_ms.div_euclid(1000) / STEP_SECONDS;
    [current, current - 1, current + 1]
        .into_iter()
        .find(|&step| crate::keys::secret::constant_time_eq(&code_at(secret, step), &code))
}

/// The `otpauth://` URI that authenticator apps read from a QR code.
pub fn provisioning_uri(secret_base32: &str, account: &str) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    format!(
        "otpauth://totp/Nuage:{}?secret={secret_base32}&issuer=Nuage&digits=6&period=30",
        encode(account)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, truncated to 6 digits.
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, 59 / 30), "287082");
        assert_eq!(code_at(secret, 1_111_111_109 / 30), "081804");
        assert_eq!(code_at(secret, 2_000_000_000 / 30), "279037");
    }

    #[test]
    fn neighbouring_steps_match_and_others_do_not() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_109_000;
        let step = now / 1000 / 30;
        assert_eq!(
            matching_step(secret, &code_at(secret, step - 1), now),
            Some(step - 1)
        );
        assert_eq!(matching_step(secret, &code_at(secret, step - 3), now), None);
        assert_eq!(matching_step(secret, "12345", now), None);
    }
}
