//! Users: e-mail addresses and the password policy.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// An e-mail address, lower-cased so that it identifies one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let value = value.trim().to_lowercase();
        let err = |reason: &str| DomainError::invalid("email", reason.to_owned());
        if value.len() > 254 {
            return Err(err("the address is longer than 254 characters"));
        }
        let Some((local, domain)) = value.rsplit_once('@') else {
            return Err(err("the address has no @"));
        };
        if local.is_empty() || local.len() > 64 {
            return Err(err("the part before @ must have 1 to 64 characters"));
        }
        if domain.is_empty()
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return Err(err("the domain after @ is not valid"));
        }
        if value.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | ',' | ';')
        }) || local.contains('@')
        {
            return Err(err("the address contains characters that are not allowed"));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The shortest password accepted; length beats composition rules (NIST SP 800-63B).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Argon2 hashes anything, but an unbounded input is a denial of service.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Checks a new password against the policy. The password itself never
/// appears in the error.
pub fn check_new_password(password: &str) -> Result<(), DomainError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(DomainError::invalid(
            "password",
            format!("the password must have at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(DomainError::invalid(
            "password",
            format!("the password must be at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse(" Alice@Example.FR ").map(|e| e.to_string()),
            Ok("alice@example.fr".into())
        );
        for bad in [
            "",
            "no-at",
            "@example.fr",
            "a@",
            "a@b",
            "a b@c.fr",
            "a@.fr",
            "a@@b.fr",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(check_new_password("short").is_err());
        assert!(check_new_password("a long enough passphrase").is_ok());
    }
}
