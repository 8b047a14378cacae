//! Bucket policies: a documented subset of AWS's IAM policy language, and
//! Block Public Access, which decides when a policy may make a bucket
//! public.
//!
//! A policy is a JSON document of statements. Each statement has an
//! `Effect` (`Allow` or `Deny`), a `Principal` (`"*"`, anyone, signed or
//! not; or organisations, by id or as `arn:aws:iam::ORG_ID:root`), an
//! `Action` (`s3:…`, with `*` wildcards), a `Resource` (this bucket's ARNs,
//! `arn:aws:s3:::BUCKET` and `arn:aws:s3:::BUCKET/KEY-PATTERN`) and
//! optionally a `Condition` on the source address (`IpAddress`,
//! `NotIpAddress` on `aws:SourceIp`), on TLS (`Bool` on
//! `aws:SecureTransport`) or on a listing's prefix (`StringEquals`,
//! `StringLike`, `StringNotEquals`, `StringNotLike` on `s3:prefix`). An
//! explicit `Deny` wins over any `Allow`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a policy says of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A statement denies it: refused, whoever asks.
    Deny,
    Allow,
    /// No statement speaks of it.
    Silent,
}

/// Who asks: an organisation, or nobody known (an unsigned request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester<'a> {
    Org(&'a str),
    Anonymous,
}

/// A request as a policy sees it.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub requester: Requester<'a>,
    /// The IAM action, e.g. `s3:GetObject`.
    pub action: &'a str,
    pub bucket: &'a str,
    /// The object's key, for object actions.
    pub key: Option<&'a str>,
    pub source: Option<IpAddr>,
    /// Whether the request came over TLS.
    pub secure: bool,
    /// A listing's prefix.
    pub prefix: Option<&'a str>,
    /// The version a request names, for the ACL of that version.
    pub version: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

fn bad(message: impl Into<String>) -> PolicyError {
    PolicyError(message.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Principals {
    Anyone,
    Orgs(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    SourceIp {
        networks: Vec<Network>,
        negate: bool,
    },
    SecureTransport(bool),
    Prefix {
        patterns: Vec<String>,
        like: bool,
        negate: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Network {
    addr: IpAddr,
    bits: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    effect: Effect,
    principals: Principals,
    actions: Vec<String>,
    /// Patterns over `BUCKET` or `BUCKET/KEY`.
    resources: Vec<String>,
    conditions: Vec<Condition>,
}

/// A parsed, checked bucket policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    statements: Vec<Statement>,
}

const ARN_PREFIX: &str = "arn:aws:s3:::";
const MAX_POLICY_BYTES: usize = 20 * 1024;

/// A value that may be one string or an array of them.
fn strings(value: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad(format!("{what} holds something that is not a string")))
            })
            .collect(),
        Value::Bool(b) => Ok(vec![b.to_string()]),
        _ => Err(bad(format!(
            "{what} is neither a string nor a list of strings"
        ))),
    }
}

impl Network {
    fn parse(text: &str) -> Result<Self, PolicyError> {
        let (addr, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| bad(format!("{text:?} is not an IP address or a CIDR block")))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| bad(format!("{text:?} has a bad prefix length")))?,
            None => max,
        };
        Ok(Self { addr, bits })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            _ => ip,
        };
        let (net, ip, width) = match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                (u128::from(n.to_bits()), u128::from(i.to_bits()), 32)
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => (n.to_bits(), i.to_bits(), 128),
            _ => return false,
        };
        let shift = width - u32::from(self.bits);
        if shift >= 128 {
            return true;
        }
        (net >> shift) == (ip >> shift)
    }
}

/// `*` matches any run of characters, `?` any one character.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

impl Principals {
    fn parse(value: &Value) -> Result<Self, PolicyError> {
        let ids = match value {
            Value::String(s) if s == "*" => return Ok(Self::Anyone),
            Value::Object(map) => {
                let mut ids = Vec::new();
                for (kind, v) in map {
                    if kind != "AWS" && kind != "CanonicalUser" {
                        return Err(bad(format!(
                            "the principal type {kind:?} is not AWS or CanonicalUser"
                        )));
                    }
                    ids.extend(strings(v, "Principal")?);
                }
                ids
            }
            _ => return Err(bad("Principal is \"*\" or an object of AWS principals")),
        };
        if ids.iter().any(|id| id == "*") {
            return Ok(Self::Anyone);
        }
        let orgs = ids
            .into_iter()
            .map(|id| {
                let org = id
                    .strip_prefix("arn:aws:iam::")
                    .and_then(|rest| rest.strip_suffix(":root"))
                    .unwrap_or(&id);
                if org.is_empty() || org.contains(':') {
                    return Err(bad(format!(
                        "the principal {id:?} is not an organisation id (or arn:aws:iam::ID:root)"
                    )));
                }
                Ok(org.to_owned())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::Orgs(orgs))
    }

    fn matches(&self, requester: Requester<'_>) -> bool {
        match (self, requester) {
            (Self::Anyone, _) => true,
            (Self::Orgs(ids), Requester::Org(org)) => ids.iter().any(|id| id == org),
            (Self::Orgs(_), Requester::Anonymous) => false,
        }
    }
}

impl Condition {
    fn parse(operator: &str, body: &Value) -> Result<Vec<Self>, PolicyError> {
        let Value::Object(keys) = body else {
            return Err(bad(format!("the condition {operator} is not an object")));
        };
        keys.iter()
            .map(|(key, value)| {
                let values = strings(value, operator)?;
                match (operator, key.as_str()) {
                    ("IpAddress" | "NotIpAddress", "aws:SourceIp") => Ok(Self::SourceIp {
                        networks: values
                            .iter()
                            .map(|v| Network::parse(v))
                            .collect::<Result<_, _>>()?,
                        negate: operator == "NotIpAddress",
                    }),
                    ("Bool", "aws:SecureTransport") => match values.as_slice() {
                        [v] if v == "true" || v == "false" => {
                            Ok(Self::SecureTransport(v == "true"))
                        }
                        _ => Err(bad("aws:SecureTransport is \"true\" or \"false\"")),
                    },
                    (
                        "StringEquals" | "StringLike" | "StringNotEquals" | "StringNotLike",
                        "s3:prefix",
                    ) => Ok(Self::Prefix {
                        patterns: values,
                        like: operator.ends_with("Like"),
                        negate: operator.contains("Not"),
                    }),
                    _ => Err(bad(format!(
                        "the condition {operator} on {key} is not one Nuage evaluates \
                         (IpAddress/NotIpAddress on aws:SourceIp, Bool on aws:SecureTransport, \
                         String(Not)Equals/Like on s3:prefix)"
                    ))),
                }
            })
            .collect()
    }

    fn holds(&self, req: &Request<'_>) -> bool {
        match self {
            Self::SourceIp { networks, negate } => {
                let inside = req
                    .source
                    .is_some_and(|ip| networks.iter().any(|n| n.contains(ip)));
                inside != *negate
            }
            Self::SecureTransport(wanted) => req.secure == *wanted,
            Self::Prefix {
                patterns,
                like,
                negate,
            } => {
                // A request without a prefix does not satisfy a condition on it
                // (nor its negation: AWS leaves a missing key unmatched).
                let Some(prefix) = req.prefix else {
                    return false;
                };
                let found = patterns
                    .iter()
                    .any(|p| if *like { glob(p, prefix) } else { p == prefix });
                found != *negate
            }
        }
    }
}

impl Statement {
    fn parse(value: &Value, bucket: &str) -> Result<Self, PolicyError> {
        let Value::Object(map) = value else {
            return Err(bad("a statement is an object"));
        };
        for key in map.keys() {
            if ![
                "Sid",
                "Effect",
                "Principal",
                "Action",
                "Resource",
                "Condition",
            ]
            .contains(&key.as_str())
            {
                return Err(bad(format!(
                    "the statement element {key} is not supported (Sid, Effect, Principal, \
                     Action, Resource, Condition)"
                )));
            }
        }
        let effect = match map.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            _ => return Err(bad("a statement's Effect is Allow or Deny")),
        };
        let principals = Principals::parse(
            map.get("Principal")
                .ok_or_else(|| bad("a statement needs a Principal"))?,
        )?;
        let actions = strings(
            map.get("Action")
                .ok_or_else(|| bad("a statement needs an Action"))?,
            "Action",
        )?;
        for a in &actions {
            if a != "*" && !a.starts_with("s3:") {
                return Err(bad(format!("the action {a:?} is not an s3: action")));
            }
        }
        let resources = strings(
            map.get("Resource")
                .ok_or_else(|| bad("a statement needs a Resource"))?,
            "Resource",
        )?
        .into_iter()
        .map(|r| {
            let rest = r
                .strip_prefix(ARN_PREFIX)
                .ok_or_else(|| bad(format!("the resource {r:?} is not an arn:aws:s3::: ARN")))?;
            let named = rest.split('/').next().unwrap_or_default();
            if named != bucket {
                return Err(bad(format!(
                    "the resource {r:?} is not in this bucket: a policy speaks only of its bucket"
                )));
            }
            Ok(rest.to_owned())
        })
        .collect::<Result<Vec<_>, _>>()?;
        let mut conditions = Vec::new();
        if let Some(c) = map.get("Condition") {
            let Value::Object(operators) = c else {
                return Err(bad("Condition is an object"));
            };
            for (operator, body) in operators {
                conditions.extend(Condition::parse(operator, body)?);
            }
        }
        Ok(Self {
            effect,
            principals,
            actions,
            resources,
            conditions,
        })
    }

    fn applies(&self, req: &Request<'_>) -> bool {
        let resource = match req.key {
            Some(k) => format!("{}/{k}", req.bucket),
            None => req.bucket.to_owned(),
        };
        self.principals.matches(req.requester)
            && self.actions.iter().any(|a| {
                a == "*" || glob(&a.to_ascii_lowercase(), &req.action.to_ascii_lowercase())
            })
            && self.resources.iter().any(|r| glob(r, &resource))
            && self.conditions.iter().all(|c| c.holds(req))
    }

    /// Public, as AWS judges it: it allows anyone, unless a condition pins
    /// the source addresses.
    fn is_public(&self) -> bool {
        self.effect == Effect::Allow
            && self.principals == Principals::Anyone
            && !self
                .conditions
                .iter()
                .any(|c| matches!(c, Condition::SourceIp { negate: false, .. }))
    }
}

impl Policy {
    /// Parses and checks a policy for `bucket`: what it cannot evaluate
    /// exactly is refused, never half-understood.
    pub fn parse(text: &str, bucket: &str) -> Result<Self, PolicyError> {
        // AWS's limit: every request to the bucket is judged by it.
        if text.len() > MAX_POLICY_BYTES {
            return Err(bad("a bucket policy is at most 20 KB"));
        }
        let doc: Value =
            serde_json::from_str(text).map_err(|e| bad(format!("the policy is not JSON: {e}")))?;
        let Value::Object(map) = &doc else {
            return Err(bad("a policy is a JSON object"));
        };
        for key in map.keys() {
            if !["Version", "Id", "Statement"].contains(&key.as_str()) {
                return Err(bad(format!("the policy element {key} is not supported")));
            }
        }
        match map.get("Version").and_then(Value::as_str) {
            Some("2012-10-17" | "2008-10-17") => {}
            _ => return Err(bad("the policy's Version is 2012-10-17 or 2008-10-17")),
        }
        let statements = match map.get("Statement") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|s| Statement::parse(s, bucket))
                .collect::<Result<Vec<_>, _>>()?,
            Some(one @ Value::Object(_)) => vec![Statement::parse(one, bucket)?],
            _ => return Err(bad("a policy needs a Statement")),
        };
        if statements.is_empty() {
            return Err(bad("a policy needs at least one statement"));
        }
        Ok(Self { statements })
    }

    /// What the policy says of a request: an explicit deny wins.
    pub fn evaluate(&self, req: &Request<'_>) -> Decision {
        let mut decision = Decision::Silent;
        for s in self.statements.iter().filter(|s| s.applies(req)) {
            match s.effect {
                Effect::Deny => return Decision::Deny,
                Effect::Allow => decision = Decision::Allow,
            }
        }
        decision
    }

    /// Whether some statement makes the bucket public.
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(Statement::is_public)
    }
}

/// The actions a policy may grant to someone other than the bucket's
/// owner: reading, listing and writing objects. Managing the bucket itself
/// (its policy, settings, locks, deletion) stays with its owner.
const GRANTABLE: [&str; 17] = [
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:GetObjectTagging",
    "s3:GetObjectVersionTagging",
    "s3:GetObjectAttributes",
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:ListBucketMultipartUploads",
    "s3:ListMultipartUploadParts",
    "s3:PutObject",
    "s3:PutObjectTagging",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:DeleteObjectTagging",
    "s3:AbortMultipartUpload",
    "s3:GetBucketLocation",
    "s3:GetObjectRetention",
];

/// The IAM action of an S3 operation (`versioned` when the request names
/// a version), as AWS's documentation pairs them.
pub fn action_of(operation: &str, versioned: bool) -> String {
    let action = match (operation, versioned) {
        ("GetObject" | "HeadObject", false) => "s3:GetObject",
        ("GetObject" | "HeadObject", true) => "s3:GetObjectVersion",
        ("GetObjectTagging", true) => "s3:GetObjectVersionTagging",
        ("DeleteObject", false) => "s3:DeleteObject",
        ("DeleteObject", true) => "s3:DeleteObjectVersion",
        ("ListObjects" | "ListObjectsV2" | "HeadBucket", _) => "s3:ListBucket",
        ("ListObjectVersions", _) => "s3:ListBucketVersions",
        ("ListMultipartUploads", _) => "s3:ListBucketMultipartUploads",
        ("ListParts", _) => "s3:ListMultipartUploadParts",
        (
            "PutObject"
            | "CopyObject"
            | "CreateMultipartUpload"
            | "UploadPart"
            | "UploadPartCopy"
            | "CompleteMultipartUpload",
            _,
        ) => "s3:PutObject",
        ("GetObjectAttributes", true) => "s3:GetObjectVersionAttributes",
        (other, _) => return format!("s3:{other}"),
    };
    action.to_owned()
}

/// Who a request acts as, once the bucket's owner, policy and Block Public
/// Access have been consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The requester owns the bucket.
    Owner,
    /// Someone else, whom the policy allows.
    Granted,
    Denied,
}

/// The one rule of access to a bucket: its owner may do anything its
/// policy does not explicitly deny; anyone else only what the policy
/// allows, among the grantable actions, and nothing while Block Public
/// Access restricts a bucket whose policy is public — or what the bucket's
/// or object's ACL grants (`acl_allows`, judged by
/// [`acl::allows`](crate::acl::allows)), unless the policy denies it.
pub fn decide(
    owner: &str,
    policy: Option<&Policy>,
    block: PublicAccessBlock,
    req: &Request<'_>,
    acl_allows: bool,
) -> Verdict {
    let decision = policy.map_or(Decision::Silent, |p| p.evaluate(req));
    if req.requester == Requester::Org(owner) {
        return if decision == Decision::Deny {
            Verdict::Denied
        } else {
            Verdict::Owner
        };
    }
    let public_blocked = block.restrict_public_buckets && policy.is_some_and(Policy::is_public);
    let by_policy =
        decision == Decision::Allow && GRANTABLE.contains(&req.action) && !public_blocked;
    let by_acl = acl_allows && decision != Decision::Deny;
    if by_policy || by_acl {
        Verdict::Granted
    } else {
        Verdict::Denied
    }
}

/// Block Public Access: four switches, each on unless turned off. Nuage has
/// no ACL grants (every bucket is `BucketOwnerEnforced`), so the two on ACLs
/// are kept and shown but have nothing to block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    /// Refuses a public policy.
    pub block_public_policy: bool,
    /// Serves only the owner while the policy is public.
    pub restrict_public_buckets: bool,
}

impl Default for PublicAccessBlock {
    fn default() -> Self {
        Self::ALL
    }
}

impl PublicAccessBlock {
    pub const ALL: Self = Self {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    };

    pub fn from_stored(value: Option<&str>) -> Self {
        value
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default()
    }

    pub fn to_stored(self) -> String {
        serde_json::to_string(&self).expect("serialises")
    }

    /// What holds when several levels speak (bucket, organisation,
    /// region): each switch on at any level is on.
    pub fn and(self, other: Self) -> Self {
        Self {
            block_public_acls: self.block_public_acls || other.block_public_acls,
            ignore_public_acls: self.ignore_public_acls || other.ignore_public_acls,
            block_public_policy: self.block_public_policy || other.block_public_policy,
            restrict_public_buckets: self.restrict_public_buckets || other.restrict_public_buckets,
        }
    }

    pub const NONE: Self = Self {
        block_public_acls: false,
        ignore_public_acls: false,
        block_public_policy: false,
        restrict_public_buckets: false,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "0190f1e2-0000-7000-8000-000000000002";

    fn req<'a>(requester: Requester<'a>, action: &'a str, key: Option<&'a str>) -> Request<'a> {
        Request {
            requester,
            action,
            bucket: "site",
            key,
            source: Some("203.0.113.9".parse().expect("ip")),
            secure: true,
            prefix: None,
            version: None,
        }
    }

    fn public_read() -> Policy {
        Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",
               "Action":"s3:GetObject","Resource":"arn:aws:s3:::site/public/*"}]}"#,
            "site",
        )
        .expect("policy")
    }

    #[test]
    fn a_public_read_policy_opens_its_prefix_only() {
        let p = public_read();
        assert!(p.is_public());
        let anon = Requester::Anonymous;
        assert_eq!(
            p.evaluate(&req(anon, "s3:GetObject", Some("public/a.html"))),
            Decision::Allow
        );
        assert_eq!(
            p.evaluate(&req(anon, "s3:GetObject", Some("private/a"))),
            Decision::Silent
        );
        assert_eq!(
            p.evaluate(&req(anon, "s3:PutObject", Some("public/a"))),
            Decision::Silent
        );
    }

    #[test]
    fn organisations_are_named_by_id_or_root_arn_and_deny_wins() {
        let p = Policy::parse(
            &format!(
                r#"{{"Version":"2012-10-17","Statement":[
                {{"Effect":"Allow","Principal":{{"AWS":["arn:aws:iam::{ORG}:root"]}},"Action":["s3:Get*","s3:ListBucket"],"Resource":["arn:aws:s3:::site","arn:aws:s3:::site/*"]}},
                {{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::site/*","Condition":{{"Bool":{{"aws:SecureTransport":"false"}}}}}}]}}"#
            ),
            "site",
        )
        .expect("policy");
        assert!(!p.is_public());
        let org = Requester::Org(ORG);
        assert_eq!(
            p.evaluate(&req(org, "s3:GetObject", Some("k"))),
            Decision::Allow
        );
        assert_eq!(
            p.evaluate(&req(org, "s3:ListBucket", None)),
            Decision::Allow
        );
        assert_eq!(
            p.evaluate(&req(Requester::Org("other"), "s3:GetObject", Some("k"))),
            Decision::Silent
        );
        let mut plain = req(org, "s3:GetObject", Some("k"));
        plain.secure = false;
        assert_eq!(p.evaluate(&plain), Decision::Deny);
    }

    #[test]
    fn source_addresses_and_prefixes_are_conditions() {
        let p = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"*"},
               "Action":"s3:ListBucket","Resource":"arn:aws:s3:::site",
               "Condition":{"IpAddress":{"aws:SourceIp":["203.0.113.0/24","2001:db8::/32"]},
                            "StringLike":{"s3:prefix":"docs/*"}}}}"#,
            "site",
        )
        .expect("policy");
        assert!(!p.is_public(), "pinned to addresses");
        let mut r = req(Requester::Anonymous, "s3:ListBucket", None);
        assert_eq!(p.evaluate(&r), Decision::Silent, "no prefix");
        r.prefix = Some("docs/2026/");
        assert_eq!(p.evaluate(&r), Decision::Allow);
        r.source = Some("198.51.100.1".parse().expect("ip"));
        assert_eq!(p.evaluate(&r), Decision::Silent);
        r.source = Some("2001:db8::5".parse().expect("ip"));
        assert_eq!(p.evaluate(&r), Decision::Allow);
    }

    #[test]
    fn what_cannot_be_evaluated_exactly_is_refused() {
        for bad in [
            "not json",
            r#"{"Version":"2012-10-17"}"#,
            r#"{"Version":"2020-01-01","Statement":[]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"iam:PassRole","Resource":"arn:aws:s3:::site/*"}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotPrincipal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*"}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2026-01-01"}}}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*","Condition":{"IpAddress":{"aws:SourceIp":"300.1.1.1/8"}}}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*"}]}"#,
        ] {
            assert!(Policy::parse(bad, "site").is_err(), "{bad}");
        }
    }

    #[test]
    fn the_owner_needs_no_grant_and_others_need_one_block_public_access_permitting() {
        let owner = "owner-org";
        let get = |requester| req(requester, "s3:GetObject", Some("public/a"));
        let p = public_read();
        let open = PublicAccessBlock::NONE;
        assert_eq!(
            decide(owner, None, open, &get(Requester::Org(owner)), false),
            Verdict::Owner
        );
        assert_eq!(
            decide(owner, None, open, &get(Requester::Anonymous), false),
            Verdict::Denied
        );
        assert_eq!(
            decide(owner, Some(&p), open, &get(Requester::Anonymous), false),
            Verdict::Granted
        );
        assert_eq!(
            decide(owner, Some(&p), open, &get(Requester::Org(ORG)), false),
            Verdict::Granted
        );
        // Block Public Access on: the public policy serves only its owner.
        let blocked = PublicAccessBlock::ALL;
        assert_eq!(
            decide(owner, Some(&p), blocked, &get(Requester::Anonymous), false),
            Verdict::Denied
        );
        assert_eq!(
            decide(owner, Some(&p), blocked, &get(Requester::Org(owner)), false),
            Verdict::Owner
        );
        // Managing the bucket is never granted, even by `s3:*`.
        let all = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::site"}]}"#,
            "site",
        )
        .expect("policy");
        let delete = req(Requester::Org(ORG), "s3:DeleteBucket", None);
        assert_eq!(
            decide(owner, Some(&all), open, &delete, false),
            Verdict::Denied
        );
        // An explicit deny binds the owner too.
        let deny = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::site/*"}]}"#,
            "site",
        )
        .expect("policy");
        let erase = req(Requester::Org(owner), "s3:DeleteObject", Some("k"));
        assert_eq!(
            decide(owner, Some(&deny), open, &erase, false),
            Verdict::Denied
        );
        // An ACL grant lets another organisation in, unless the policy denies.
        let read = get(Requester::Org(ORG));
        assert_eq!(decide(owner, None, blocked, &read, true), Verdict::Granted);
        let erase_other = req(Requester::Org(ORG), "s3:DeleteObject", Some("k"));
        assert_eq!(
            decide(owner, Some(&deny), open, &erase_other, true),
            Verdict::Denied
        );
    }

    #[test]
    fn operations_map_to_their_iam_actions() {
        assert_eq!(action_of("HeadObject", false), "s3:GetObject");
        assert_eq!(action_of("GetObject", true), "s3:GetObjectVersion");
        assert_eq!(action_of("DeleteObject", true), "s3:DeleteObjectVersion");
        assert_eq!(action_of("ListObjectsV2", false), "s3:ListBucket");
        assert_eq!(action_of("UploadPart", false), "s3:PutObject");
        assert_eq!(action_of("PutBucketPolicy", false), "s3:PutBucketPolicy");
    }

    #[test]
    fn a_policy_is_at_most_20_kb() {
        let statement = r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::site/a"}"#;
        let many = vec![statement; 300].join(",");
        let large = format!(r#"{{"Version":"2012-10-17","Statement":[{many}]}}"#);
        assert!(large.len() > MAX_POLICY_BYTES);
        assert!(Policy::parse(&large, "site").is_err());
    }

    #[test]
    fn globs_match_as_iam_does() {
        assert!(glob("site/*", "site/a/b"));
        assert!(glob("s3:get*", "s3:getobject"));
        assert!(glob("site/a?c", "site/abc"));
        assert!(!glob("site/a?c", "site/ac"));
        assert!(!glob("site/public/*", "site/private/x"));
    }

    #[test]
    fn block_public_access_is_on_unless_turned_off_at_every_level() {
        assert_eq!(PublicAccessBlock::from_stored(None), PublicAccessBlock::ALL);
        let off = PublicAccessBlock::NONE;
        assert_eq!(off.and(PublicAccessBlock::NONE), PublicAccessBlock::NONE);
        assert!(off.and(PublicAccessBlock::ALL).restrict_public_buckets);
        assert_eq!(PublicAccessBlock::from_stored(Some(&off.to_stored())), off);
    }
}
