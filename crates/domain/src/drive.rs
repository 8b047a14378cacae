//! The drive: an organisation's files and folders, laid out as objects of
//! one bucket of its own storage so that S3 reaches the same data.
//!
//! The layout, documented in `docs/drive.md`:
//! - the bucket is `drive-<organisation id without dashes>`, versioned;
//! - a file `Documents/report.pdf` is the object of that key;
//! - a folder is a zero-byte object whose key ends in `/` (`Documents/`),
//!   so an empty folder exists;
//! - the trash is under `.trash/<entry>/`, where the entry is the time of
//!   deletion and a random suffix, followed by the item's original path.
//!
//! Names are compared as people see them: two names that differ only in
//! Unicode normalisation or in case are the same name in one folder, as on
//! the desktop systems that mount the drive.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

use crate::DomainError;
use crate::ids::OrgId;

/// The folder that holds the trash, at the root of the drive's bucket.
pub const TRASH: &str = ".trash";
/// The longest name of one file or folder, in bytes of UTF-8.
pub const MAX_NAME: usize = 255;
/// The longest path, in bytes, leaving room within S3's 1,024-byte keys for
/// the trash prefix and a folder's trailing slash.
pub const MAX_PATH: usize = 960;

/// The bucket that holds an organisation's drive.
pub fn bucket_of(org: &OrgId) -> String {
    format!("drive-{}", org.as_uuid().simple())
}

/// Whether a bucket name is one the platform keeps for an organisation's
/// drive (`drive-` and 32 hexadecimal digits): no tenant creates one, so
/// nobody can take another organisation's drive before it is first used.
pub fn is_drive_bucket(name: &str) -> bool {
    name.strip_prefix("drive-")
        .is_some_and(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A path in the drive: normalised (NFC), relative to the root, without
/// empty, `.` or `..` segments. The root is the empty path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct DrivePath(String);

fn bad(reason: impl Into<String>) -> DomainError {
    DomainError::invalid("path", reason)
}

impl DrivePath {
    /// The root folder.
    pub fn root() -> Self {
        Self(String::new())
    }

    /// Parses a path as a client sends it: `/`-separated, leading and
    /// trailing slashes ignored.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if raw.contains('\0') {
            return Err(bad("a name has no NUL character"));
        }
        let normal: String = raw.nfc().collect();
        let mut segments = Vec::new();
        for segment in normal.split('/') {
            if segment.is_empty() {
                continue;
            }
            check_name(segment)?;
            segments.push(segment);
        }
        let path = segments.join("/");
        if path.len() > MAX_PATH {
            return Err(bad(format!("a path has at most {MAX_PATH} bytes")));
        }
        if segments.first() == Some(&TRASH) {
            return Err(bad(format!("{TRASH} is reserved for the trash")));
        }
        Ok(Self(path))
    }

    /// The path from an object key of the drive's bucket (a folder's key ends
    /// in `/`); `None` for keys outside the layout.
    pub fn from_key(key: &str) -> Option<Self> {
        Self::parse(key).ok().filter(|p| !p.is_root())
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment; empty for the root.
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or_default()
    }

    /// The folder that holds this path; `None` for the root.
    pub fn parent(&self) -> Option<Self> {
        if self.is_root() {
            return None;
        }
        Some(Self(
            self.0
                .rsplit_once('/')
                .map_or(String::new(), |(p, _)| p.to_owned()),
        ))
    }

    /// A child of this folder, from one name.
    pub fn join(&self, name: &str) -> Result<Self, DomainError> {
        if name.contains('/') {
            return Err(bad("a name has no slash"));
        }
        Self::parse(&format!("{}/{name}", self.0))
    }

    /// The object key of the file at this path.
    pub fn file_key(&self) -> String {
        self.0.clone()
    }

    /// The object key of the folder at this path, which is also the prefix
    /// of everything in it (empty for the root).
    pub fn folder_key(&self) -> String {
        if self.is_root() {
            String::new()
        } else {
            format!("{}/", self.0)
        }
    }

    /// A path under this one, from a relative path a client names (`""` is
    /// this one); never outside it.
    pub fn descend(&self, relative: &str) -> Result<Self, DomainError> {
        let sub = Self::parse(relative)?;
        if sub.is_root() {
            return Ok(self.clone());
        }
        Self::parse(&format!("{}/{}", self.0, sub.0))
    }

    /// This path relative to `base` (which contains it), without a slash.
    pub fn relative_to(&self, base: &DrivePath) -> String {
        self.0
            .strip_prefix(&base.0)
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned()
    }

    /// Whether `other` is this path or inside it.
    pub fn contains(&self, other: &DrivePath) -> bool {
        self.is_root() || other.0 == self.0 || other.0.starts_with(&self.folder_key())
    }

    /// The segments from the root, each with its own path (for breadcrumbs).
    pub fn ancestors(&self) -> Vec<(String, DrivePath)> {
        let mut out = Vec::new();
        let mut acc = String::new();
        for segment in self.0.split('/').filter(|s| !s.is_empty()) {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(segment);
            out.push((segment.to_owned(), DrivePath(acc.clone())));
        }
        out
    }
}

impl fmt::Display for DrivePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0)
    }
}

fn check_name(name: &str) -> Result<(), DomainError> {
    if name == "." || name == ".." {
        return Err(bad("a name is not . or .."));
    }
    if name.len() > MAX_NAME {
        return Err(bad(format!("a name has at most {MAX_NAME} bytes")));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(bad("a name has no control characters"));
    }
    if name.contains('\\') {
        return Err(bad("a name has no backslash"));
    }
    if name.trim() != name {
        return Err(bad("a name does not start or end with a space"));
    }
    Ok(())
}

/// A name as it is compared with its neighbours: normalised, then folded to
/// lower case.
pub fn fold_name(name: &str) -> String {
    name.nfc().flat_map(char::to_lowercase).collect()
}

/// Whether two names stand for the same entry of a folder, without being
/// the same string.
pub fn clash(a: &str, b: &str) -> bool {
    a != b && fold_name(a) == fold_name(b)
}

/// Another name for an item whose name is taken: `report.pdf` →
/// `report (2).pdf`; `photos` → `photos (2)`.
pub fn numbered(name: &str, n: u32) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem} ({n}).{ext}"),
        _ => format!("{name} ({n})"),
    }
}

/// Where an item goes in the trash: `.trash/<entry>/<original path>`.
pub fn trash_key(entry: &str, path: &DrivePath) -> String {
    format!("{TRASH}/{entry}/{}", path.as_str())
}

/// An item of the trash: its entry and original path, from a key under
/// `.trash/`; `None` for keys outside the layout.
pub fn parse_trash_key(key: &str) -> Option<(String, DrivePath)> {
    let rest = key.strip_prefix(TRASH)?.strip_prefix('/')?;
    let (entry, path) = rest.split_once('/')?;
    if entry.is_empty() {
        return None;
    }
    Some((entry.to_owned(), DrivePath::from_key(path)?))
}

/// Whether `to` may receive `from`: not the same path, not inside it.
pub fn check_move(from: &DrivePath, to: &DrivePath) -> Result<(), DomainError> {
    if from.is_root() || to.is_root() {
        return Err(bad("the root folder cannot be moved or replaced"));
    }
    if from == to {
        return Err(bad("an item cannot be moved onto itself"));
    }
    if from.contains(to) {
        return Err(bad("a folder cannot be moved into itself"));
    }
    Ok(())
}

/// A WebDAV lock on a path of the drive (RFC 4918), as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub token: String,
    pub path: DrivePath,
    pub principal: Option<String>,
    pub shared: bool,
    /// Depth infinity: the lock covers everything under a folder.
    pub deep: bool,
}

impl Lock {
    /// Whether the lock applies to `path`: it is on it, or on a folder above
    /// it with depth infinity.
    pub fn covers(&self, path: &DrivePath) -> bool {
        self.path == *path || (self.deep && self.path.contains(path))
    }
}

/// Who asks, with which lock tokens (`If:` header), for a check.
#[derive(Debug, Clone, Copy)]
pub struct LockQuery<'a> {
    pub principal: Option<&'a str>,
    /// A lock is held by whoever submits its token, whatever the principal.
    pub ignore_principal: bool,
    pub tokens: &'a [String],
}

impl LockQuery<'_> {
    fn holds(&self, lock: &Lock) -> bool {
        self.tokens.contains(&lock.token)
            && (self.ignore_principal || self.principal == lock.principal.as_deref())
    }
}

/// The first lock that stops a request on `path`: one on the path or on a
/// folder above it that covers it, and, for a deep request, one below it.
/// `shared_ok` asks for a shared lock: other shared locks do not stop it.
pub fn lock_conflict<'l>(
    locks: &'l [Lock],
    path: &DrivePath,
    query: LockQuery<'_>,
    deep: bool,
    shared_ok: bool,
) -> Option<&'l Lock> {
    let mut holds = false;
    let mut shared_seen = None;
    for lock in locks {
        if !lock.covers(path) {
            continue;
        }
        if query.holds(lock) {
            holds = true;
        } else if !lock.shared {
            return Some(lock);
        } else if !shared_ok {
            shared_seen.get_or_insert(lock);
        }
    }
    if let Some(lock) = shared_seen.filter(|_| !holds) {
        return Some(lock);
    }
    if deep {
        return locks.iter().find(|lock| {
            lock.path != *path
                && path.contains(&lock.path)
                && (!lock.shared || !shared_ok)
                && !query.holds(lock)
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drive_buckets_are_told_from_tenants_names() {
        let org = OrgId::parse("0192f5a4-1c2b-7def-8123-456789abcdef").expect("id");
        assert!(is_drive_bucket(&bucket_of(&org)));
        for name in [
            "drive-backups",
            "drive-0192f5a41c2b7def8123456789abcde",
            "mydrive-0192f5a41c2b7def8123456789abcdef",
        ] {
            assert!(!is_drive_bucket(name), "{name}");
        }
    }

    #[test]
    fn paths_are_normalised_and_checked() {
        let p = DrivePath::parse("/Documents//Rapport.pdf/").expect("valid");
        assert_eq!(p.as_str(), "Documents/Rapport.pdf");
        assert_eq!(p.name(), "Rapport.pdf");
        assert_eq!(p.parent().expect("has one").as_str(), "Documents");
        assert_eq!(p.folder_key(), "Documents/Rapport.pdf/");
        assert!(DrivePath::parse("/").expect("root").is_root());
        // NFD in, NFC stored.
        let nfd = DrivePath::parse("cafe\u{301}.txt").expect("valid");
        assert_eq!(nfd.as_str(), "caf\u{e9}.txt");
        for bad in [
            "a/../b",
            "..",
            "./x",
            "a\0b",
            "a\u{7}b",
            "back\\slash",
            " lead",
            "trail ",
            ".trash/x",
        ] {
            assert!(DrivePath::parse(bad).is_err(), "{bad:?}");
        }
        assert!(DrivePath::parse(&"n".repeat(256)).is_err());
        assert!(DrivePath::parse(&"n".repeat(255)).is_ok());
        let long = vec!["d".repeat(200); 5].join("/");
        assert!(DrivePath::parse(&long).is_err());
        assert!(DrivePath::root().join("a/b").is_err());
    }

    #[test]
    fn descending_stays_below() {
        let base = DrivePath::parse("Public").expect("valid");
        assert_eq!(base.descend("").expect("itself"), base);
        let deep = base.descend("sub/deep.txt").expect("below");
        assert_eq!(deep.as_str(), "Public/sub/deep.txt");
        assert_eq!(deep.relative_to(&base), "sub/deep.txt");
        assert!(base.descend("../Private").is_err());
        assert!(base.descend("sub/../../x").is_err());
        assert_eq!(
            DrivePath::root().descend("a/b").expect("below").as_str(),
            "a/b"
        );
    }

    #[test]
    fn names_clash_by_case_and_normalisation() {
        assert!(clash("Report.pdf", "report.PDF"));
        assert!(clash("caf\u{e9}", "cafe\u{301}"));
        assert!(clash("\u{c9}t\u{e9}", "\u{e9}t\u{e9}"));
        assert!(!clash("a", "a"));
        assert!(!clash("a", "b"));
    }

    #[test]
    fn moves_stay_out_of_their_own_tree() {
        let p = |s: &str| DrivePath::parse(s).expect("valid");
        assert!(check_move(&p("a"), &p("a")).is_err());
        assert!(check_move(&p("a"), &p("a/b")).is_err());
        assert!(check_move(&p("a"), &p("ab")).is_ok());
        assert!(check_move(&p("a/b"), &p("b")).is_ok());
        assert!(check_move(&DrivePath::root(), &p("b")).is_err());
    }

    #[test]
    fn other_names_are_numbered_before_the_extension() {
        assert_eq!(numbered("report.pdf", 2), "report (2).pdf");
        assert_eq!(numbered("photos", 3), "photos (3)");
        assert_eq!(numbered(".env", 2), ".env (2)");
    }

    #[test]
    fn trash_keys_round_trip() {
        let p = DrivePath::parse("Photos/2026/été.jpg").expect("valid");
        let key = trash_key("1700000000000-ab12", &p);
        assert_eq!(
            parse_trash_key(&key),
            Some(("1700000000000-ab12".to_owned(), p))
        );
        assert_eq!(parse_trash_key(".trash/x"), None);
        assert_eq!(parse_trash_key("Photos/x"), None);
        let folder = DrivePath::parse("Photos").expect("valid");
        let (_, back) = parse_trash_key(&format!("{}/", trash_key("e", &folder))).expect("parses");
        assert_eq!(back, folder);
    }

    #[test]
    fn locks_stop_others_and_let_their_holder_through() {
        let p = |s: &str| DrivePath::parse(s).expect("valid");
        let lock = |path: &str, shared: bool, deep: bool| Lock {
            token: format!("t-{path}-{shared}"),
            path: p(path),
            principal: Some("ann".into()),
            shared,
            deep,
        };
        let nobody = LockQuery {
            principal: Some("bob"),
            ignore_principal: false,
            tokens: &[],
        };
        let exclusive = vec![lock("docs", false, true)];
        assert!(lock_conflict(&exclusive, &p("docs/a.txt"), nobody, false, false).is_some());
        assert!(lock_conflict(&exclusive, &p("other.txt"), nobody, false, false).is_none());
        // A deep request on a folder meets the locks below it.
        assert!(lock_conflict(&exclusive, &DrivePath::root(), nobody, true, false).is_some());
        assert!(lock_conflict(&exclusive, &DrivePath::root(), nobody, false, false).is_none());
        // A shallow lock on a folder does not cover its files.
        let shallow = vec![lock("docs", false, false)];
        assert!(lock_conflict(&shallow, &p("docs/a.txt"), nobody, false, false).is_none());
        // Its holder passes with the token; another principal with the same
        // token does not, unless principals are ignored.
        let tokens = vec![exclusive[0].token.clone()];
        let ann = LockQuery {
            principal: Some("ann"),
            ignore_principal: false,
            tokens: &tokens,
        };
        assert!(lock_conflict(&exclusive, &p("docs/a.txt"), ann, false, false).is_none());
        let bob_with_token = LockQuery {
            principal: Some("bob"),
            ..ann
        };
        assert!(
            lock_conflict(&exclusive, &p("docs/a.txt"), bob_with_token, false, false).is_some()
        );
        let anyone = LockQuery {
            ignore_principal: true,
            ..bob_with_token
        };
        assert!(lock_conflict(&exclusive, &p("docs/a.txt"), anyone, false, false).is_none());
        // Shared locks admit other shared locks, not exclusive ones.
        let shared = vec![lock("docs", true, true)];
        assert!(lock_conflict(&shared, &p("docs"), nobody, true, true).is_none());
        assert!(lock_conflict(&shared, &p("docs"), nobody, true, false).is_some());
    }

    #[test]
    fn the_bucket_name_is_a_valid_bucket_name() {
        let name = bucket_of(&OrgId::new());
        crate::storage::BucketName::parse(&name).expect("valid bucket name");
    }
}
