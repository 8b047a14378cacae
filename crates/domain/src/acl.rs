//! Access control lists, AWS's model, as far as Nuage offers them: every
//! bucket's Object Ownership is `BucketOwnerEnforced` (AWS's default since
//! 2023), so ACLs are disabled: the bucket's owner owns every object and has
//! full control, reading an ACL answers that, and setting one is accepted
//! only when it grants nothing more. An organisation's canonical user id in
//! S3 is its organisation id.

/// The canned ACLs an ACL-disabled bucket accepts, as AWS's do.
const OWNER_ONLY_CANNED: [&str; 2] = ["private", "bucket-owner-full-control"];

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee {
    /// A canonical user id: on Nuage, an organisation id.
    CanonicalUser(String),
    /// A predefined group (all users, authenticated users, log delivery).
    Group(String),
    EmailAddress(String),
}

/// One grant of an ACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub grantee: Grantee,
    /// `FULL_CONTROL`, `READ`, `WRITE`, `READ_ACP` or `WRITE_ACP`.
    pub permission: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// Not a canned ACL, or a grant header that does not parse.
    #[error("{0}")]
    Invalid(String),
    /// An ACL that grants more than the owner's full control, which a
    /// bucket with ACLs disabled refuses.
    #[error("The bucket does not allow ACLs")]
    NotSupported,
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

/// Whether an ACL-disabled bucket takes this ACL: a canned ACL that grants
/// the owner alone, and grants (from headers or an XML body) of full
/// control to the owner only.
pub fn check_owner_only(
    canned: Option<&str>,
    grants: &[Grant],
    owner: &str,
) -> Result<(), AclError> {
    if let Some(c) = canned {
        if !CANNED.contains(&c) {
            return Err(AclError::Invalid(format!("{c:?} is not a canned ACL")));
        }
        if !OWNER_ONLY_CANNED.contains(&c) {
            return Err(AclError::NotSupported);
        }
    }
    let owner_only = grants.iter().all(|g| {
        g.permission == "FULL_CONTROL" && g.grantee == Grantee::CanonicalUser(owner.to_owned())
    });
    if !owner_only {
        return Err(AclError::NotSupported);
    }
    Ok(())
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
    fn only_the_owners_full_control_is_taken() {
        assert_eq!(check_owner_only(None, &[], OWNER), Ok(()));
        assert_eq!(check_owner_only(Some("private"), &[], OWNER), Ok(()));
        assert_eq!(
            check_owner_only(Some("bucket-owner-full-control"), &[], OWNER),
            Ok(())
        );
        assert_eq!(
            check_owner_only(Some("public-read"), &[], OWNER),
            Err(AclError::NotSupported)
        );
        assert!(matches!(
            check_owner_only(Some("world-readable"), &[], OWNER),
            Err(AclError::Invalid(_))
        ));
        let full = parse_grant_header(&format!("id={OWNER}"), "FULL_CONTROL").expect("parsed");
        assert_eq!(check_owner_only(None, &full, OWNER), Ok(()));
        let read = parse_grant_header(&format!("id={OWNER}"), "READ").expect("parsed");
        assert_eq!(
            check_owner_only(None, &read, OWNER),
            Err(AclError::NotSupported)
        );
        let other = parse_grant_header("id=someone-else", "FULL_CONTROL").expect("parsed");
        assert_eq!(
            check_owner_only(None, &other, OWNER),
            Err(AclError::NotSupported)
        );
    }
}
