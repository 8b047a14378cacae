//! Access control lists, AWS's model. A bucket's Object Ownership is
//! `BucketOwnerEnforced` unless its owner chooses otherwise (AWS's default
//! since 2023): ACLs are then disabled, reading an ACL answers the owner's
//! full control, and setting one is accepted only when it grants nothing
//! more. `BucketOwnerPreferred` and `ObjectWriter` enable ACLs: canned ACLs
//! and grants to other organisations (by canonical user id, which on Nuage
//! is the organisation id) and to the groups of all users and of
//! authenticated users. On Nuage the bucket's organisation owns every
//! object in it whoever wrote it, so `ObjectWriter` behaves as
//! `BucketOwnerPreferred`.

use serde::{Deserialize, Serialize};

/// Anyone, signed or not.
pub const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
/// Any signed request, of any organisation.
pub const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

/// AWS's limit on the grants of one ACL.
const MAX_GRANTS: usize = 100;

const PERMISSIONS: [&str; 5] = ["FULL_CONTROL", "READ", "WRITE", "READ_ACP", "WRITE_ACP"];

/// Who owns the objects of a bucket, and whether its ACLs count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    BucketOwnerEnforced,
    BucketOwnerPreferred,
    ObjectWriter,
}

impl Ownership {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "BucketOwnerEnforced" => Some(Self::BucketOwnerEnforced),
            "BucketOwnerPreferred" => Some(Self::BucketOwnerPreferred),
            "ObjectWriter" => Some(Self::ObjectWriter),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BucketOwnerEnforced => "BucketOwnerEnforced",
            Self::BucketOwnerPreferred => "BucketOwnerPreferred",
            Self::ObjectWriter => "ObjectWriter",
        }
    }

    /// As stored: none is the default, `BucketOwnerEnforced`.
    pub fn from_stored(value: Option<&str>) -> Self {
        value
            .and_then(Self::parse)
            .unwrap_or(Self::BucketOwnerEnforced)
    }

    pub fn acls_enabled(self) -> bool {
        self != Self::BucketOwnerEnforced
    }
}

/// The canned ACLs S3 defines for buckets and objects.
const CANNED: [&str; 7] = [
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
];

/// Whom a grant names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Grantee {
    /// A canonical user id: on Nuage, an organisation id.
    CanonicalUser(String),
    /// A predefined group (all users, authenticated users, log delivery).
    Group(String),
    EmailAddress(String),
}

/// One grant of an ACL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub grantee: Grantee,
    /// `FULL_CONTROL`, `READ`, `WRITE`, `READ_ACP` or `WRITE_ACP`.
    pub permission: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// Not a canned ACL, a grant header that does not parse, a grantee or
    /// permission S3 does not have.
    #[error("{0}")]
    Invalid(String),
}

/// Parses an `x-amz-grant-*` header: `id="…", uri="…", emailAddress="…"`,
/// comma-separated.
pub fn parse_grant_header(value: &str, permission: &str) -> Result<Vec<Grant>, AclError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (kind, name) = part.split_once('=').ok_or_else(|| {
                AclError::Invalid(format!("the grantee {part:?} is not kind=\"value\""))
            })?;
            let name = name.trim().trim_matches('"').to_owned();
            let grantee = match kind.trim() {
                "id" => Grantee::CanonicalUser(name),
                "uri" => Grantee::Group(name),
                "emailAddress" => Grantee::EmailAddress(name),
                other => {
                    return Err(AclError::Invalid(format!(
                        "the grantee type {other:?} is not id, uri or emailAddress"
                    )));
                }
            };
            Ok(Grant {
                grantee,
                permission: permission.to_owned(),
            })
        })
        .collect()
}

/// The grants a request's ACL gives, beyond the owner's full control
/// (always there, never stored): a canned ACL, or explicit grants, not
/// both. Grantees are checked here but for the organisations' existence.
pub fn grants_of(
    canned: Option<&str>,
    explicit: Vec<Grant>,
    owner: &str,
) -> Result<Vec<Grant>, AclError> {
    let grant = |uri: &str, permission: &str| Grant {
        grantee: Grantee::Group(uri.to_owned()),
        permission: permission.to_owned(),
    };
    let grants = match canned {
        Some(_) if !explicit.is_empty() => {
            return Err(AclError::Invalid(
                "Specifying both Canned ACLs and Header Grants is not allowed".into(),
            ));
        }
        Some("public-read") => vec![grant(ALL_USERS, "READ")],
        Some("public-read-write") => vec![grant(ALL_USERS, "READ"), grant(ALL_USERS, "WRITE")],
        Some("authenticated-read") => vec![grant(AUTHENTICATED_USERS, "READ")],
        Some(c) if CANNED.contains(&c) => Vec::new(),
        Some(c) => return Err(AclError::Invalid(format!("{c:?} is not a canned ACL"))),
        None => explicit,
    };
    if grants.len() > MAX_GRANTS {
        return Err(AclError::Invalid(format!(
            "an ACL holds at most {MAX_GRANTS} grants"
        )));
    }
    let mut kept = Vec::new();
    for g in grants {
        if !PERMISSIONS.contains(&g.permission.as_str()) {
            return Err(AclError::Invalid(format!(
                "{:?} is not a permission (FULL_CONTROL, READ, WRITE, READ_ACP, WRITE_ACP)",
                g.permission
            )));
        }
        match &g.grantee {
            Grantee::CanonicalUser(id) if id.is_empty() => {
                return Err(AclError::Invalid("a grantee's id is empty".into()));
            }
            Grantee::CanonicalUser(id) if id == owner && g.permission == "FULL_CONTROL" => continue,
            Grantee::Group(uri) if uri != ALL_USERS && uri != AUTHENTICATED_USERS => {
                return Err(AclError::Invalid(format!(
                    "the group {uri} is not one Nuage has (AllUsers, AuthenticatedUsers)"
                )));
            }
            Grantee::EmailAddress(_) => {
                return Err(AclError::Invalid(
                    "grantees are named by canonical id (their organisation id), not e-mail".into(),
                ));
            }
            _ => {}
        }
        if !kept.contains(&g) {
            kept.push(g);
        }
    }
    Ok(kept)
}

/// Whether some grant opens to everyone, or to anyone signed.
pub fn is_public(grants: &[Grant]) -> bool {
    grants
        .iter()
        .any(|g| matches!(&g.grantee, Grantee::Group(_)))
}

/// Whether the grants give `permission` to the requester (an organisation,
/// or `None` for an unsigned request); public grants count only when not
/// ignored (Block Public Access's `IgnorePublicAcls`).
pub fn allows(
    grants: &[Grant],
    requester: Option<&str>,
    permission: &str,
    ignore_public: bool,
) -> bool {
    grants.iter().any(|g| {
        let holds = g.permission == permission || g.permission == "FULL_CONTROL";
        let names = match &g.grantee {
            Grantee::CanonicalUser(id) => requester == Some(id.as_str()),
            Grantee::Group(_) if ignore_public => false,
            Grantee::Group(uri) if uri == ALL_USERS => true,
            Grantee::Group(_) => requester.is_some(),
            Grantee::EmailAddress(_) => false,
        };
        holds && names
    })
}

/// Which ACL an action is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    Bucket,
    Object,
}

/// The ACL permission an IAM action needs, as AWS maps them; `None` for
/// what no ACL grants.
pub fn permission_for(action: &str) -> Option<(On, &'static str)> {
    Some(match action {
        "s3:ListBucket" | "s3:ListBucketVersions" | "s3:ListBucketMultipartUploads" => {
            (On::Bucket, "READ")
        }
        "s3:PutObject"
        | "s3:DeleteObject"
        | "s3:DeleteObjectVersion"
        | "s3:AbortMultipartUpload"
        | "s3:ListMultipartUploadParts" => (On::Bucket, "WRITE"),
        "s3:GetBucketAcl" => (On::Bucket, "READ_ACP"),
        "s3:PutBucketAcl" => (On::Bucket, "WRITE_ACP"),
        "s3:GetObject"
        | "s3:GetObjectVersion"
        | "s3:GetObjectAttributes"
        | "s3:GetObjectVersionAttributes" => (On::Object, "READ"),
        "s3:GetObjectAcl" | "s3:GetObjectVersionAcl" => (On::Object, "READ_ACP"),
        "s3:PutObjectAcl" | "s3:PutObjectVersionAcl" => (On::Object, "WRITE_ACP"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: &str = "0190f1e2-0000-7000-8000-000000000001";

    #[test]
    fn grant_headers_parse_every_kind() {
        let grants = parse_grant_header(
            &format!(r#"id="{OWNER}", uri="http://acs.amazonaws.com/groups/global/AllUsers",emailAddress="a@b.example""#),
            "READ",
        )
        .expect("parsed");
        assert_eq!(grants.len(), 3);
        assert_eq!(grants[0].grantee, Grantee::CanonicalUser(OWNER.into()));
        assert!(matches!(grants[1].grantee, Grantee::Group(_)));
        assert!(parse_grant_header("name=x", "READ").is_err());
        assert!(parse_grant_header("nonsense", "READ").is_err());
    }

    #[test]
    fn canned_acls_and_grants_become_stored_grants() {
        assert_eq!(grants_of(Some("private"), vec![], OWNER), Ok(vec![]));
        let public = grants_of(Some("public-read"), vec![], OWNER).expect("grants");
        assert!(is_public(&public));
        assert!(allows(&public, None, "READ", false));
        assert!(!allows(&public, None, "READ", true), "IgnorePublicAcls");
        assert!(!allows(&public, None, "WRITE", false));
        let authenticated = grants_of(Some("authenticated-read"), vec![], OWNER).expect("grants");
        assert!(allows(&authenticated, Some("anyone"), "READ", false));
        assert!(!allows(&authenticated, None, "READ", false));
        let partner = parse_grant_header("id=partner-org", "FULL_CONTROL").expect("parsed");
        let stored = grants_of(None, partner, OWNER).expect("grants");
        assert!(allows(&stored, Some("partner-org"), "WRITE_ACP", false));
        assert!(!allows(&stored, Some("other-org"), "READ", false));
        assert!(!is_public(&stored));
        // The owner's own full control is implicit, never stored.
        let own = parse_grant_header(&format!("id={OWNER}"), "FULL_CONTROL").expect("parsed");
        assert_eq!(grants_of(None, own, OWNER), Ok(vec![]));
        let both = parse_grant_header("id=x", "READ").expect("parsed");
        assert!(grants_of(Some("private"), both, OWNER).is_err());
        let mail = parse_grant_header("emailAddress=a@b.example", "READ").expect("parsed");
        assert!(grants_of(None, mail, OWNER).is_err());
        let log = parse_grant_header(
            "uri=http://acs.amazonaws.com/groups/s3/LogDelivery",
            "WRITE",
        )
        .expect("parsed");
        assert!(grants_of(None, log, OWNER).is_err());
    }

    #[test]
    fn an_acl_holds_at_most_100_grants() {
        let header = (0..101)
            .map(|i| format!("id=org-{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let grants = parse_grant_header(&header, "READ").expect("parsed");
        assert!(grants_of(None, grants, OWNER).is_err());
    }

    #[test]
    fn actions_map_to_the_acl_that_judges_them() {
        assert_eq!(permission_for("s3:ListBucket"), Some((On::Bucket, "READ")));
        assert_eq!(permission_for("s3:PutObject"), Some((On::Bucket, "WRITE")));
        assert_eq!(
            permission_for("s3:GetObjectVersion"),
            Some((On::Object, "READ"))
        );
        assert_eq!(
            permission_for("s3:PutObjectAcl"),
            Some((On::Object, "WRITE_ACP"))
        );
        assert_eq!(permission_for("s3:DeleteBucket"), None);
        assert_eq!(permission_for("s3:PutBucketPolicy"), None);
    }
}
