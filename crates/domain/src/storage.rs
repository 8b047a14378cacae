//! The rules of object storage that do not depend on any protocol: bucket
//! names, object keys, tags, S3's multipart limits, versioning states,
//! lifecycle rules, and the order in which keys are listed.

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// Largest single PUT (S3's limit).
pub const MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Smallest part of a multipart upload, but for the last one.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Largest part of a multipart upload.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
pub const MAX_PARTS: u32 = 10_000;
/// Largest object, whole.
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024 * 1024;
/// Longest object key, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// A bucket name, by S3's rules for new buckets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketName(String);

impl BucketName {
    pub fn parse(name: &str) -> Result<Self, DomainError> {
        let bad = |reason: &str| Err(DomainError::invalid("bucket", reason.to_owned()));
        if !(3..=63).contains(&name.len()) {
            return bad("a bucket name has 3 to 63 characters");
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            return bad("a bucket name has only lowercase letters, digits, hyphens and dots");
        }
        let first = name.as_bytes()[0];
        let last = name.as_bytes()[name.len() - 1];
        if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
            return bad("a bucket name starts and ends with a letter or a digit");
        }
        if name.contains("..") || name.contains(".-") || name.contains("-.") {
            return bad("a bucket name has no two adjacent dots, nor a dot next to a hyphen");
        }
        if name.parse::<std::net::Ipv4Addr>().is_ok() {
            return bad("a bucket name is not an IP address");
        }
        if name.starts_with("xn--") || name.starts_with("sthree-") || name.ends_with("-s3alias") {
            return bad("this prefix or suffix is reserved");
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BucketName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An object key: 1 to 1024 bytes of UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn parse(key: &str) -> Result<Self, DomainError> {
        if key.is_empty() {
            return Err(DomainError::invalid("key", "an object key is not empty"));
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(DomainError::invalid(
                "key",
                format!("an object key has at most {MAX_KEY_BYTES} bytes"),
            ));
        }
        Ok(Self(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A bucket's versioning state. A bucket that never had versioning enabled
/// is `Unversioned`; once enabled it can only be suspended, never turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    Unversioned,
    Enabled,
    Suspended,
}

impl Versioning {
    pub fn from_stored(value: Option<&str>) -> Self {
        match value {
            Some("Enabled") => Self::Enabled,
            Some("Suspended") => Self::Suspended,
            _ => Self::Unversioned,
        }
    }

    pub fn as_stored(self) -> Option<&'static str> {
        match self {
            Self::Unversioned => None,
            Self::Enabled => Some("Enabled"),
            Self::Suspended => Some("Suspended"),
        }
    }

    /// Whether a new write keeps the versions it replaces.
    pub fn keeps_versions(self) -> bool {
        self == Self::Enabled
    }
}

/// What an S3 access key is for. An export key is how an organisation
/// takes its data out when it leaves the platform (EU Data Act, art. 29):
/// it can only read, it lives [`EXPORT_KEY_DAYS`] days at most, and what is
/// downloaded with it is exit egress, never charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyPurpose {
    #[default]
    Access,
    Export,
}

/// How long an export key lives: the Data Act's transitional period.
pub const EXPORT_KEY_DAYS: i64 = 30;

impl KeyPurpose {
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        match value {
            "access" => Ok(Self::Access),
            "export" => Ok(Self::Export),
            _ => Err(DomainError::invalid(
                "purpose",
                "a key's purpose is \"access\" or \"export\"",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Export => "export",
        }
    }

    /// Whether a key of this purpose may run an S3 operation (by its
    /// name in the S3 API). Export keys only read.
    pub fn allows(self, operation: &str) -> bool {
        match self {
            Self::Access => true,
            Self::Export => matches!(
                operation,
                "GetObject"
                    | "HeadObject"
                    | "HeadBucket"
                    | "ListBuckets"
                    | "ListObjects"
                    | "ListObjectsV2"
                    | "ListObjectVersions"
                    | "GetBucketLocation"
                    | "GetBucketVersioning"
                    | "GetBucketTagging"
                    | "GetObjectTagging"
                    | "GetBucketCors"
                    | "GetBucketLifecycleConfiguration"
                    | "ListMultipartUploads"
                    | "ListParts"
            ),
        }
    }
}

/// The version id S3 shows for versions written while versioning was off or
/// suspended.
pub const NULL_VERSION: &str = "null";

/// Tags of an object (at most 10) or a bucket (at most 50).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tags(pub Vec<(String, String)>);

impl Tags {
    pub fn parse(pairs: Vec<(String, String)>, max: usize) -> Result<Self, DomainError> {
        if pairs.len() > max {
            return Err(DomainError::invalid("tags", format!("at most {max} tags")));
        }
        let mut seen = std::collections::HashSet::new();
        for (k, v) in &pairs {
            if k.is_empty() || k.chars().count() > 128 {
                return Err(DomainError::invalid(
                    "tags",
                    "a tag key has 1 to 128 characters",
                ));
            }
            if v.chars().count() > 256 {
                return Err(DomainError::invalid(
                    "tags",
                    "a tag value has at most 256 characters",
                ));
            }
            if !seen.insert(k) {
                return Err(DomainError::invalid(
                    "tags",
                    format!("the tag key {k} is repeated"),
                ));
            }
        }
        Ok(Self(pairs))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// One lifecycle rule of a bucket, as far as Nuage applies them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleRule {
    pub id: Option<String>,
    pub enabled: bool,
    pub prefix: String,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// Only objects larger than this many bytes (`ObjectSizeGreaterThan`).
    #[serde(default)]
    pub size_greater_than: Option<i64>,
    /// Only objects smaller than this many bytes (`ObjectSizeLessThan`).
    #[serde(default)]
    pub size_less_than: Option<i64>,
    /// Current versions expire this many days after their creation…
    pub expiration_days: Option<u32>,
    /// …or at this time (milliseconds since the epoch).
    pub expiration_date: Option<i64>,
    /// Non-current versions are deleted this many days after they stopped being current.
    pub noncurrent_days: Option<u32>,
    /// Incomplete multipart uploads are aborted this many days after they began.
    pub abort_incomplete_days: Option<u32>,
    /// A delete marker that is the current version and the object's last
    /// version left is removed (`ExpiredObjectDeleteMarker`).
    #[serde(default)]
    pub expired_object_delete_marker: bool,
    /// Non-current versions expire (after `noncurrent_days`) only once this
    /// many newer non-current versions of the object exist: the newest ones
    /// are kept (`NewerNoncurrentVersions`).
    #[serde(default)]
    pub newer_noncurrent_versions: Option<u32>,
}

impl LifecycleRule {
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.expiration_days == Some(0)
            || self.noncurrent_days == Some(0)
            || self.abort_incomplete_days == Some(0)
        {
            return Err(DomainError::invalid(
                "lifecycle",
                "a number of days is at least 1",
            ));
        }
        if self.size_greater_than.is_some_and(|s| s < 0)
            || self.size_less_than.is_some_and(|s| s <= 0)
            || self
                .size_greater_than
                .zip(self.size_less_than)
                .is_some_and(|(gt, lt)| gt >= lt)
        {
            return Err(DomainError::invalid(
                "lifecycle",
                "object size filters must be positive and leave a range of sizes",
            ));
        }
        if self.expiration_days.is_some() && self.expiration_date.is_some() {
            return Err(DomainError::invalid(
                "lifecycle",
                "an expiration has days or a date, not both",
            ));
        }
        if self.expired_object_delete_marker
            && (self.expiration_days.is_some() || self.expiration_date.is_some())
        {
            return Err(DomainError::invalid(
                "lifecycle",
                "ExpiredObjectDeleteMarker cannot be given with Days or Date in the same expiration",
            ));
        }
        if let Some(n) = self.newer_noncurrent_versions {
            if !(1..=100).contains(&n) {
                return Err(DomainError::invalid(
                    "lifecycle",
                    "NewerNoncurrentVersions is between 1 and 100",
                ));
            }
            if self.noncurrent_days.is_none() {
                return Err(DomainError::invalid(
                    "lifecycle",
                    "NewerNoncurrentVersions needs NoncurrentDays",
                ));
            }
        }
        if self.expiration_days.is_none()
            && self.expiration_date.is_none()
            && self.noncurrent_days.is_none()
            && self.abort_incomplete_days.is_none()
            && !self.expired_object_delete_marker
        {
            return Err(DomainError::invalid(
                "lifecycle",
                "a rule has at least one action",
            ));
        }
        Ok(())
    }

    /// Whether the rule's filter selects an object with this key, tags and
    /// size in bytes.
    pub fn selects(&self, key: &str, tags: &Tags, size: i64) -> bool {
        key.starts_with(&self.prefix)
            && self.size_greater_than.is_none_or(|gt| size > gt)
            && self.size_less_than.is_none_or(|lt| size < lt)
            && self
                .tags
                .iter()
                .all(|(k, v)| tags.get(k) == Some(v.as_str()))
    }
}

/// One CORS rule of a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    pub id: Option<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    pub max_age_seconds: Option<i32>,
}

impl CorsRule {
    /// Whether the rule lets a page from `origin` send `method` with these
    /// request headers (origins and headers may hold one `*`; header names
    /// compare without case).
    pub fn allows(&self, origin: &str, method: &str, headers: &[String]) -> bool {
        self.allowed_origins.iter().any(|o| wildcard(o, origin))
            && self.allowed_methods.iter().any(|m| m == method)
            && headers.iter().all(|h| {
                let h = h.to_ascii_lowercase();
                self.allowed_headers
                    .iter()
                    .any(|a| wildcard(&a.to_ascii_lowercase(), &h))
            })
    }

    pub fn validate(&self) -> Result<(), DomainError> {
        const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];
        if self.allowed_origins.is_empty() || self.allowed_methods.is_empty() {
            return Err(DomainError::invalid(
                "cors",
                "a CORS rule names at least one origin and one method",
            ));
        }
        if let Some(m) = self
            .allowed_methods
            .iter()
            .find(|m| !METHODS.contains(&m.as_str()))
        {
            return Err(DomainError::invalid(
                "cors",
                format!("{m} is not a CORS method"),
            ));
        }
        Ok(())
    }
}

/// The first rule that allows a cross-origin request, as S3 chooses.
pub fn cors_rule_for<'a>(
    rules: &'a [CorsRule],
    origin: &str,
    method: &str,
    headers: &[String],
) -> Option<&'a CorsRule> {
    rules.iter().find(|r| r.allows(origin, method, headers))
}

/// `pattern` with at most one `*` standing for any run of characters.
fn wildcard(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        Some((head, tail)) => {
            value.len() >= head.len() + tail.len()
                && value.starts_with(head)
                && value.ends_with(tail)
        }
        None => pattern == value,
    }
}

/// The smallest string greater than every string that starts with `prefix`,
/// in UTF-8 byte order (which is code point order); `None` when there is none.
pub fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The ETag of a multipart object: the MD5 of the parts' binary MD5s, then
/// a dash and the number of parts.
pub fn multipart_etag(part_md5s: &[[u8; 16]]) -> String {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    for m in part_md5s {
        h.update(m);
    }
    format!("{}-{}", hex::encode(h.finalize()), part_md5s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["abc", "my-bucket.v2", "a1b", &"a".repeat(63)] {
            assert!(BucketName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "ABC",
            "-abc",
            "abc-",
            "a..b",
            "a.-b",
            "192.168.1.1",
            "xn--abc",
            "a_b",
            &"a".repeat(64),
            "abc-s3alias",
        ] {
            assert!(BucketName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_have_at_most_1024_bytes() {
        assert!(ObjectKey::parse(&"é".repeat(512)).is_ok());
        assert!(ObjectKey::parse(&"é".repeat(513)).is_err());
        assert!(ObjectKey::parse("").is_err());
    }

    #[test]
    fn successor_bounds_every_key_with_the_prefix() {
        assert_eq!(prefix_successor("a/").as_deref(), Some("a0"));
        assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_successor("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_successor("\u{10FFFF}"), None);
        let s = prefix_successor("photos/").expect("has a successor");
        for key in ["photos/", "photos/\u{10FFFF}", "photos/zzz"] {
            assert!(key.as_bytes() < s.as_bytes(), "{key}");
        }
    }

    #[test]
    fn multipart_etag_is_md5_of_md5s() {
        // Two parts "a" and "b": the value every S3 implementation computes.
        use md5::{Digest, Md5};
        let a: [u8; 16] = Md5::digest(b"a").into();
        let b: [u8; 16] = Md5::digest(b"b").into();
        let mut both = a.to_vec();
        both.extend(b);
        let expected = format!("{}-2", hex::encode(Md5::digest(&both)));
        assert_eq!(multipart_etag(&[a, b]), expected);
    }

    #[test]
    fn cors_rules_match_origins_methods_and_headers() {
        let rules = vec![
            CorsRule {
                id: None,
                allowed_origins: vec!["https://*.example.fr".into()],
                allowed_methods: vec!["GET".into(), "PUT".into()],
                allowed_headers: vec!["x-amz-*".into(), "Content-Type".into()],
                expose_headers: vec![],
                max_age_seconds: None,
            },
            CorsRule {
                id: Some("any".into()),
                allowed_origins: vec!["*".into()],
                allowed_methods: vec!["GET".into()],
                allowed_headers: vec![],
                expose_headers: vec![],
                max_age_seconds: None,
            },
        ];
        let h = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let first = cors_rule_for(
            &rules,
            "https://app.example.fr",
            "PUT",
            &h(&["content-type", "X-Amz-Date"]),
        );
        assert!(first.is_some_and(|r| r.id.is_none()));
        assert!(cors_rule_for(&rules, "https://evil.test", "PUT", &[]).is_none());
        assert!(cors_rule_for(&rules, "https://app.example.fr", "DELETE", &[]).is_none());
        assert!(
            cors_rule_for(
                &rules,
                "https://app.example.fr",
                "PUT",
                &h(&["authorization"])
            )
            .is_none()
        );
        let any = cors_rule_for(&rules, "https://evil.test", "GET", &[]);
        assert_eq!(any.and_then(|r| r.id.as_deref()), Some("any"));
    }

    #[test]
    fn lifecycle_rules_need_an_action_and_match_prefix_and_tags() {
        let mut rule = LifecycleRule {
            id: None,
            enabled: true,
            prefix: "logs/".into(),
            tags: vec![("tier".into(), "cold".into())],
            size_greater_than: None,
            size_less_than: None,
            expiration_days: None,
            expiration_date: None,
            noncurrent_days: None,
            abort_incomplete_days: None,
            expired_object_delete_marker: false,
            newer_noncurrent_versions: None,
        };
        assert!(rule.validate().is_err());
        rule.expired_object_delete_marker = true;
        assert!(rule.validate().is_ok(), "removing markers is an action");
        rule.expiration_days = Some(3);
        assert!(rule.validate().is_err(), "not with days");
        rule.expired_object_delete_marker = false;
        assert!(rule.validate().is_ok());
        rule.newer_noncurrent_versions = Some(2);
        assert!(rule.validate().is_err(), "needs NoncurrentDays");
        rule.noncurrent_days = Some(1);
        assert!(rule.validate().is_ok());
        rule.newer_noncurrent_versions = Some(101);
        assert!(rule.validate().is_err());
        rule.newer_noncurrent_versions = None;
        rule.noncurrent_days = None;
        let cold = Tags(vec![("tier".into(), "cold".into())]);
        assert!(rule.selects("logs/a", &cold, 10));
        assert!(!rule.selects("logs/a", &Tags::default(), 10));
        assert!(!rule.selects("data/a", &cold, 10));
        rule.size_greater_than = Some(100);
        rule.size_less_than = Some(1000);
        assert!(rule.selects("logs/a", &cold, 101));
        assert!(!rule.selects("logs/a", &cold, 100));
        assert!(!rule.selects("logs/a", &cold, 1000));
        rule.size_less_than = Some(100);
        assert!(rule.validate().is_err(), "an empty range of sizes");
    }
}
