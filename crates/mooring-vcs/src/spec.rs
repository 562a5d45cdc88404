//! [`SourceSpec`]: what the user pointed Mooring at, and how that string is parsed.
//!
//! Also home of the validation shared by parsing and by the cache (URLs, refs and
//! paths inside a source), since [`SourceSpec`]'s fields are public and may be
//! built without [`SourceSpec::parse`].

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::credentials::percent_encode;
use crate::error::SourceError;
use crate::redact::redact_url;

/// URL schemes accepted for Git sources.
const GIT_SCHEMES: &[&str] = &["file", "http", "https", "ssh", "git", "git+ssh", "ssh+git"];
/// URL schemes accepted for Subversion sources (after `svn+` is stripped).
const SVN_SCHEMES: &[&str] = &["svn", "svn+ssh", "http", "https", "file"];
/// URL schemes accepted for Mercurial sources (after `hg+` is stripped).
const HG_SCHEMES: &[&str] = &["http", "https", "ssh"];

/// The Subversion ref used when none is given.
pub(crate) const SVN_DEFAULT_REF: &str = "trunk";
/// The Mercurial ref used when none is given.
pub(crate) const HG_DEFAULT_REF: &str = "default";

/// Where desired state lives.
#[derive(Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// A Git repository.
    Git {
        /// Repository URL: `file://`, `https://`, `http://`, `ssh://`, `git://`,
        /// scp-like `user@host:path`, or an absolute local path.
        url: String,
        /// Branch, tag, or full commit id; `None` means the remote's HEAD.
        reference: Option<String>,
    },
    /// A Subversion repository.
    Svn {
        /// Repository URL as `svn` takes it: `svn://`, `svn+ssh://`, `http://`,
        /// `https://` or `file://` (the `svn+` prefix of `svn+https://…` is already
        /// stripped).
        url: String,
        /// A path in the repository such as `trunk`, `branches/x` or `tags/v1`,
        /// optionally pinned to a revision (`trunk@1234`); `.` is the URL itself.
        /// `None` means `trunk`.
        reference: Option<String>,
    },
    /// A Mercurial repository.
    Hg {
        /// Repository URL as `hg` takes it: `https://`, `http://`, `ssh://`, or an
        /// absolute local path (the `hg+` prefix is already stripped).
        url: String,
        /// Branch, bookmark, tag or full changeset id; `None` means `default`.
        reference: Option<String>,
    },
    /// A plain local directory, used as it is.
    Dir {
        /// Absolute path of the directory.
        path: PathBuf,
    },
}

impl SourceSpec {
    /// Whether the source is reached over SSH (and so can use an SSH key): Git
    /// `ssh://`, `git+ssh://`, `ssh+git://` and scp-like `user@host:path` URLs,
    /// Subversion `svn+ssh://`, Mercurial `ssh://`.
    pub fn uses_ssh(&self) -> bool {
        let scheme = |url: &str| {
            url.split_once("://")
                .map(|(scheme, _)| scheme.to_ascii_lowercase())
        };
        match self {
            SourceSpec::Git { url, .. } => match scheme(url) {
                Some(s) => matches!(s.as_str(), "ssh" | "git+ssh" | "ssh+git"),
                None => is_scp_like(url) && !Path::new(url).is_absolute(),
            },
            SourceSpec::Svn { url, .. } => scheme(url).as_deref() == Some("svn+ssh"),
            SourceSpec::Hg { url, .. } => scheme(url).as_deref() == Some("ssh"),
            SourceSpec::Dir { .. } => false,
        }
    }

    /// Parses a source as given on the command line.
    ///
    /// - Git: a `file://`, `https://`, `http://`, `ssh://` or `git://` URL, scp-like
    ///   `user@host:path`, or a local path that is a Git work tree (has `.git`) or a
    ///   bare repository (only committed content is used). `reference` is a branch,
    ///   tag or full commit id; none means the remote's HEAD.
    /// - Subversion: `svn://…` and `svn+ssh://…` URLs, and `svn+http://`,
    ///   `svn+https://`, `svn+file://` (the `svn+` is stripped), or a local path that
    ///   is a repository (`svnadmin create`; becomes a `file://` URL). `reference` is
    ///   a path in the repository (`trunk`, `branches/x`, `tags/v1`), optionally
    ///   `@REV`; none means `trunk`. A Subversion *working copy* is refused, with
    ///   its repository URL in the message.
    /// - Mercurial: `hg+http://`, `hg+https://`, `hg+ssh://`, `hg+file://` (the
    ///   `hg+` is stripped; `hg+file:///x` becomes the local path `/x`), or a local
    ///   path that has `.hg`. `reference` is a branch, bookmark, tag or full
    ///   changeset id; none means `default`.
    /// - Any other existing directory is a [`SourceSpec::Dir`]; `reference` is an
    ///   error with it.
    pub fn parse(source: &str, reference: Option<&str>) -> Result<SourceSpec, SourceError> {
        if source.is_empty() {
            return Err(invalid(source, "the source is empty"));
        }
        if source.chars().any(char::is_control) {
            return Err(invalid(source, "it contains control characters"));
        }
        if let Some(pos) = source.find("://") {
            let scheme = source[..pos].to_ascii_lowercase();
            match scheme.as_str() {
                "svn" | "svn+ssh" => return svn_spec(source.to_string(), reference),
                "svn+http" | "svn+https" | "svn+file" => {
                    return svn_spec(source["svn+".len()..].to_string(), reference)
                }
                "hg+http" | "hg+https" | "hg+ssh" => {
                    return hg_spec(source["hg+".len()..].to_string(), reference)
                }
                "hg+file" => {
                    let path = local_path_of_file_url(source, &source[pos + 3..])?;
                    return hg_spec(path, reference);
                }
                _ => {}
            }
            return git_spec(source.to_string(), reference);
        }
        let path = Path::new(source);
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                let abs = fs::canonicalize(path).map_err(|e| {
                    SourceError::io(format!("cannot resolve {}", path.display()), e)
                })?;
                let abs_str = || {
                    abs.to_str()
                        .map(str::to_string)
                        .ok_or_else(|| invalid(source, "the repository path is not valid UTF-8"))
                };
                if is_git_repository(&abs) {
                    return git_spec(abs_str()?, reference);
                }
                if abs.join(".hg").is_dir() {
                    return hg_spec(abs_str()?, reference);
                }
                if is_svn_repository(&abs) {
                    return svn_spec(file_url(&abs_str()?), reference);
                }
                if abs.join(".svn").is_dir() {
                    return Err(SourceError::SvnWorkingCopy {
                        url: crate::svn::working_copy_url(&abs).map(|u| redact_url(&u)),
                        path: abs,
                    });
                }
                match reference {
                    Some(reference) => Err(SourceError::RefWithDir {
                        path: abs,
                        reference: reference.to_string(),
                    }),
                    None => Ok(SourceSpec::Dir { path: abs }),
                }
            }
            Ok(_) => Err(invalid(
                source,
                "it is a file; pass a directory or a repository",
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if is_scp_like(source) {
                    git_spec(source.to_string(), reference)
                } else {
                    Err(SourceError::NotFound {
                        path: path.to_path_buf(),
                    })
                }
            }
            Err(e) => Err(SourceError::io(
                format!("cannot access {}", path.display()),
                e,
            )),
        }
    }

    /// The kind of source: `"git"`, `"svn"`, `"hg"` or `"dir"`.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceSpec::Git { .. } => "git",
            SourceSpec::Svn { .. } => "svn",
            SourceSpec::Hg { .. } => "hg",
            SourceSpec::Dir { .. } => "dir",
        }
    }
}

fn git_spec(url: String, reference: Option<&str>) -> Result<SourceSpec, SourceError> {
    let reference = reference.map(validate_ref).transpose()?;
    validate_git_url(&url)?;
    Ok(SourceSpec::Git { url, reference })
}

fn svn_spec(url: String, reference: Option<&str>) -> Result<SourceSpec, SourceError> {
    let reference = reference.map(validate_svn_ref).transpose()?;
    validate_svn_url(&url)?;
    Ok(SourceSpec::Svn { url, reference })
}

fn hg_spec(url: String, reference: Option<&str>) -> Result<SourceSpec, SourceError> {
    let reference = reference.map(validate_hg_ref).transpose()?;
    validate_hg_url(&url)?;
    Ok(SourceSpec::Hg { url, reference })
}

/// Redacted, human-readable form, e.g. `git https://***@host/r.git (ref main)`.
impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::Git { url, reference } => {
                write!(f, "git {}", redact_url(url))?;
                match reference {
                    Some(r) => write!(f, " (ref {r})"),
                    None => write!(f, " (remote HEAD)"),
                }
            }
            SourceSpec::Svn { url, reference } => write!(
                f,
                "svn {} (ref {})",
                redact_url(url),
                reference.as_deref().unwrap_or(SVN_DEFAULT_REF)
            ),
            SourceSpec::Hg { url, reference } => write!(
                f,
                "hg {} (ref {})",
                redact_url(url),
                reference.as_deref().unwrap_or(HG_DEFAULT_REF)
            ),
            SourceSpec::Dir { path } => write!(f, "dir {}", path.display()),
        }
    }
}

/// `Debug` redacts credentials in the URL, so specs can be logged freely.
impl fmt::Debug for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, url, reference) = match self {
            SourceSpec::Git { url, reference } => ("Git", url, reference),
            SourceSpec::Svn { url, reference } => ("Svn", url, reference),
            SourceSpec::Hg { url, reference } => ("Hg", url, reference),
            SourceSpec::Dir { path } => {
                return f.debug_struct("Dir").field("path", path).finish();
            }
        };
        f.debug_struct(name)
            .field("url", &redact_url(url))
            .field("reference", reference)
            .finish()
    }
}

fn invalid(source: &str, reason: &str) -> SourceError {
    SourceError::InvalidSource {
        input: redact_url(source),
        reason: reason.to_string(),
    }
}

/// A Git work tree (has `.git`, a directory or a file) or a bare repository.
fn is_git_repository(dir: &Path) -> bool {
    dir.join(".git").exists()
        || (dir.join("HEAD").is_file() && dir.join("objects").is_dir() && dir.join("refs").is_dir())
}

/// A Subversion repository made by `svnadmin create` (not a working copy).
fn is_svn_repository(dir: &Path) -> bool {
    dir.join("format").is_file() && dir.join("db").is_dir()
}

/// `file://` URL of an absolute local path, percent-encoded as `svn` requires.
pub(crate) fn file_url(path: &str) -> String {
    let encoded: Vec<String> = path.split('/').map(percent_encode).collect();
    format!("file://{}", encoded.join("/"))
}

/// The local path of `hg+file://[localhost]/path`, percent-decoded.
fn local_path_of_file_url(source: &str, rest: &str) -> Result<String, SourceError> {
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    if !path.starts_with('/') {
        return Err(invalid(
            source,
            "a file URL needs an absolute path, such as hg+file:///srv/hg/repo",
        ));
    }
    let decoded = percent_decode(path)
        .ok_or_else(|| invalid(source, "the path has an invalid %-escape or is not UTF-8"))?;
    if decoded.chars().any(char::is_control) {
        return Err(invalid(source, "the path contains control characters"));
    }
    Ok(decoded)
}

/// Decodes `%XX` escapes; `None` for a bad escape or text that is not UTF-8.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `[user@]host:path` with no `/` before the first `:` (Git's own rule).
fn is_scp_like(source: &str) -> bool {
    let Some(colon) = source.find(':') else {
        return false;
    };
    let host = &source[..colon];
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    !host.is_empty() && !source[..colon].contains('/') && colon + 1 < source.len()
}

/// Checks that a Git URL is safe to hand to `git`: no control characters, no
/// option-like leading `-`, a supported scheme, and no `transport::address`
/// remote-helper syntax.
pub(crate) fn validate_git_url(url: &str) -> Result<(), SourceError> {
    if url.is_empty() {
        return Err(invalid(url, "the URL is empty"));
    }
    if url.chars().any(char::is_control) {
        return Err(invalid(url, "it contains control characters"));
    }
    if url.starts_with('-') {
        return Err(invalid(url, "it starts with '-'"));
    }
    let scheme_len = url
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
        .unwrap_or(url.len());
    let after_scheme = &url[scheme_len..];
    if scheme_len > 0 && after_scheme.starts_with("::") {
        return Err(invalid(
            url,
            "the transport::address remote-helper syntax is not supported",
        ));
    }
    if let Some(rest) = after_scheme.strip_prefix("://") {
        let scheme = url[..scheme_len].to_ascii_lowercase();
        if !GIT_SCHEMES.contains(&scheme.as_str()) {
            return Err(invalid(
                url,
                &format!(
                    "unsupported URL scheme '{scheme}'; use https, http, ssh, git or file, \
                     or user@host:path for Git, svn://, svn+ssh://, svn+https:// or \
                     svn+file:// for Subversion, hg+https://, hg+ssh:// or hg+file:// for \
                     Mercurial"
                ),
            ));
        }
        if rest.is_empty() {
            return Err(invalid(url, "the URL has no host or path"));
        }
    } else if url.contains("://") {
        return Err(invalid(url, "the URL scheme is malformed"));
    }
    Ok(())
}

/// Checks a `scheme://authority/path` URL for `svn` or `hg`: a scheme from
/// `schemes`, no control characters, and no host that could pass for an option.
fn validate_tool_url(url: &str, schemes: &[&str], what: &str) -> Result<(), SourceError> {
    if url.chars().any(char::is_control) {
        return Err(invalid(url, "it contains control characters"));
    }
    let Some(pos) = url.find("://") else {
        return Err(invalid(url, &format!("a {what} source needs a URL")));
    };
    let scheme = url[..pos].to_ascii_lowercase();
    if !schemes.contains(&scheme.as_str()) {
        return Err(invalid(
            url,
            &format!("unsupported URL scheme '{scheme}' for {what}"),
        ));
    }
    let rest = &url[pos + 3..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.starts_with('-') || authority.starts_with('-') {
        return Err(invalid(url, "the host starts with '-'"));
    }
    if scheme != "file" && host.is_empty() {
        return Err(invalid(url, "the URL has no host"));
    }
    if scheme == "file" && !rest.starts_with('/') && !rest.starts_with("localhost/") {
        return Err(invalid(url, "a file URL needs an absolute path"));
    }
    Ok(())
}

/// Checks a Subversion URL (as `svn` takes it, without a `svn+` prefix).
pub(crate) fn validate_svn_url(url: &str) -> Result<(), SourceError> {
    validate_tool_url(url, SVN_SCHEMES, "Subversion")
}

/// Checks a Mercurial URL (as `hg` takes it): http(s), ssh, or an absolute path.
pub(crate) fn validate_hg_url(url: &str) -> Result<(), SourceError> {
    if url.contains("://") {
        return validate_tool_url(url, HG_SCHEMES, "Mercurial");
    }
    if url.chars().any(char::is_control) {
        return Err(invalid(url, "it contains control characters"));
    }
    if !Path::new(url).is_absolute() {
        return Err(invalid(
            url,
            "a local Mercurial repository must be given by absolute path",
        ));
    }
    Ok(())
}

/// True for a full commit id: 40 (SHA-1) or 64 (SHA-256) hex digits.
pub(crate) fn is_commit_id(reference: &str) -> bool {
    matches!(reference.len(), 40 | 64) && reference.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `reference` may be an abbreviated commit id: 7 to 39 hex digits.
pub(crate) fn is_commit_prefix(reference: &str) -> bool {
    (7..40).contains(&reference.len()) && reference.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks that a ref is a plausible branch/tag name or commit id (a subset of
/// `git check-ref-format`), and returns it owned.
pub(crate) fn validate_ref(reference: &str) -> Result<String, SourceError> {
    let bad = |reason: &str| SourceError::InvalidRef {
        reference: reference.to_string(),
        reason: format!("{reason}; use a branch name, a tag name or a full commit id"),
    };
    if reference.is_empty() {
        return Err(bad("it is empty"));
    }
    if reference.starts_with('-') {
        return Err(bad("it starts with '-'"));
    }
    if reference.chars().any(|c| {
        c.is_control() || c.is_whitespace() || matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\')
    }) {
        return Err(bad(
            "it contains a space, a control character or one of ~ ^ : ? * [ \\",
        ));
    }
    if reference.contains("..") || reference.contains("@{") || reference.contains("//") {
        return Err(bad("it contains '..', '@{' or '//'"));
    }
    if reference == "@"
        || reference.starts_with('/')
        || reference.ends_with('/')
        || reference.ends_with('.')
        || reference.ends_with(".lock")
        || reference.split('/').any(|c| c.starts_with('.'))
    {
        return Err(bad("it is not a valid Git ref name"));
    }
    Ok(reference.to_string())
}

/// A parsed Subversion ref: a path in the repository and an optional peg revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SvnRef {
    /// Normalized path (`""` for the URL itself).
    pub(crate) path: String,
    /// The pinned revision, if any.
    pub(crate) peg: Option<u64>,
}

impl SvnRef {
    /// The path as shown to humans: `.` for the URL itself.
    pub(crate) fn label(&self) -> &str {
        if self.path.is_empty() {
            "."
        } else {
            &self.path
        }
    }
}

/// Parses a Subversion ref: `PATH[@REV]` where `PATH` is relative (`trunk`,
/// `branches/x`, `.`) and `REV` a revision number (or `HEAD`).
pub(crate) fn parse_svn_ref(reference: &str) -> Result<SvnRef, SourceError> {
    let bad = |reason: &str| SourceError::InvalidRef {
        reference: reference.to_string(),
        reason: format!(
            "{reason}; use a path in the repository such as trunk, branches/NAME or \
             tags/NAME, optionally pinned as trunk@1234"
        ),
    };
    if reference.chars().any(char::is_control) {
        return Err(bad("it contains control characters"));
    }
    if reference.starts_with('-') {
        return Err(bad("it starts with '-'"));
    }
    if reference.contains('\\') {
        return Err(bad("use '/' as the separator"));
    }
    let (path, peg) = match reference.rsplit_once('@') {
        Some((path, rev)) if rev.eq_ignore_ascii_case("HEAD") => (path, None),
        Some((path, rev)) => {
            if rev.is_empty() || !rev.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("the part after '@' must be a revision number"));
            }
            let rev: u64 = rev
                .parse()
                .map_err(|_| bad("the revision number is too large"))?;
            (path, Some(rev))
        }
        None => (reference, None),
    };
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(bad("'..' components are not allowed")),
            other => parts.push(other),
        }
    }
    if parts.is_empty() && path.trim_matches('/') != "." {
        return Err(bad("the path is empty (use '.' for the URL itself)"));
    }
    Ok(SvnRef {
        path: parts.join("/"),
        peg,
    })
}

/// Checks a Subversion ref and returns its normalized form.
pub(crate) fn validate_svn_ref(reference: &str) -> Result<String, SourceError> {
    let parsed = parse_svn_ref(reference)?;
    Ok(match parsed.peg {
        Some(rev) => format!("{}@{rev}", parsed.label()),
        None => parsed.label().to_string(),
    })
}

/// Checks a Mercurial ref: a branch, bookmark or tag name, or a changeset id. It
/// is looked up as a quoted revset symbol, so quotes and backslashes are refused;
/// local revision numbers are refused because they differ between clones.
pub(crate) fn validate_hg_ref(reference: &str) -> Result<String, SourceError> {
    let bad = |reason: &str| SourceError::InvalidRef {
        reference: reference.to_string(),
        reason: format!(
            "{reason}; use a branch, bookmark or tag name, or a full changeset id (40 hex digits)"
        ),
    };
    if reference.is_empty() {
        return Err(bad("it is empty"));
    }
    if reference.starts_with('-') {
        return Err(bad("it starts with '-'"));
    }
    if reference.trim() != reference {
        return Err(bad("it starts or ends with white space"));
    }
    if reference
        .chars()
        .any(|c| c.is_control() || matches!(c, '\'' | '"' | '\\'))
    {
        return Err(bad(
            "it contains a control character, a quote or a backslash",
        ));
    }
    if reference.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(
            "local revision numbers differ between clones and are not supported",
        ));
    }
    if matches!(reference, "." | "null") {
        return Err(bad("it names no changeset in a cache clone"));
    }
    Ok(reference.to_string())
}

/// Normalizes a folder path inside a source: drops empty and `.` components and
/// rejects absolute paths, `..` and repository metadata folders. Returns `""` for
/// the whole source.
pub(crate) fn normalize_subpath(path: &str) -> Result<String, SourceError> {
    let bad = |reason: &str| SourceError::InvalidPath {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if path.chars().any(char::is_control) {
        return Err(bad("it contains control characters"));
    }
    if path.starts_with('/') || Path::new(path).is_absolute() {
        return Err(bad("absolute paths are not allowed"));
    }
    if path.contains('\\') {
        return Err(bad("use '/' as the separator"));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(bad("'..' components are not allowed")),
            ".git" | ".hg" | ".svn" => {
                return Err(bad(&format!("'{part}' is not part of a snapshot")))
            }
            other => parts.push(other),
        }
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git_spec(url: &str, reference: Option<&str>) -> SourceSpec {
        SourceSpec::Git {
            url: url.to_string(),
            reference: reference.map(str::to_string),
        }
    }

    #[test]
    fn tells_ssh_transports() {
        for (source, ssh) in [
            ("ssh://git@host/r.git", true),
            ("git+ssh://host/r.git", true),
            ("git@github.com:org/r.git", true),
            ("https://host/r.git", false),
            ("git://host/r.git", false),
            ("svn+ssh://me@host/r", true),
            ("svn://host/r", false),
            ("hg+ssh://me@host//r", true),
            ("hg+https://host/r", false),
        ] {
            assert_eq!(
                SourceSpec::parse(source, None).unwrap().uses_ssh(),
                ssh,
                "{source}"
            );
        }
        assert!(!git_spec("/srv/r.git", None).uses_ssh());
    }

    #[test]
    fn parses_urls() {
        for url in [
            "https://example.com/org/repo.git",
            "http://example.com/repo",
            "ssh://git@example.com:2222/org/repo.git",
            "git://127.0.0.1:9418/repo",
            "file:///srv/git/repo.git",
            "git+ssh://git@example.com/repo",
            "HTTPS://Example.com/r",
        ] {
            assert_eq!(
                SourceSpec::parse(url, None).unwrap(),
                git_spec(url, None),
                "{url}"
            );
        }
        assert_eq!(
            SourceSpec::parse("https://example.com/r", Some("v1.2.3")).unwrap(),
            git_spec("https://example.com/r", Some("v1.2.3"))
        );
    }

    #[test]
    fn parses_scp_like() {
        assert_eq!(
            SourceSpec::parse("git@github.com:org/repo.git", Some("main")).unwrap(),
            git_spec("git@github.com:org/repo.git", Some("main"))
        );
        assert_eq!(
            SourceSpec::parse("myhost:repo", None).unwrap(),
            git_spec("myhost:repo", None)
        );
    }

    #[test]
    fn rejects_bad_urls() {
        for url in [
            "ftp://example.com/r",
            "ext::sh -c touch% /tmp/pwned",
            "fd::17",
            "https://",
            "-oProxyCommand=x:y",
            "https://example.com/r\nx",
        ] {
            assert!(
                matches!(
                    SourceSpec::parse(url, None),
                    Err(SourceError::InvalidSource { .. })
                ),
                "{url}"
            );
        }
    }

    #[test]
    fn invalid_source_message_is_redacted() {
        let err = SourceSpec::parse("ftp://me:secret@host/r", None).unwrap_err();
        let msg = err.to_string();
        assert!(!msg.contains("secret"), "{msg}");
        assert!(msg.contains("unsupported URL scheme 'ftp'"), "{msg}");
    }

    #[test]
    fn plain_directory_is_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = SourceSpec::parse(tmp.path().to_str().unwrap(), None).unwrap();
        assert_eq!(
            spec,
            SourceSpec::Dir {
                path: fs::canonicalize(tmp.path()).unwrap()
            }
        );
    }

    #[test]
    fn relative_directory_becomes_absolute() {
        let spec = SourceSpec::parse("src", None).unwrap();
        match spec {
            SourceSpec::Dir { path } => {
                assert!(path.is_absolute());
                assert!(path.ends_with("src"));
            }
            other => panic!("expected Dir, got {other:?}"),
        }
    }

    #[test]
    fn ref_with_plain_directory_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let err = SourceSpec::parse(tmp.path().to_str().unwrap(), Some("main")).unwrap_err();
        assert!(matches!(err, SourceError::RefWithDir { .. }), "{err}");
        assert!(err.to_string().contains("--ref main"), "{err}");
    }

    #[test]
    fn missing_local_path_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("nope");
        let err = SourceSpec::parse(missing.to_str().unwrap(), None).unwrap_err();
        assert!(matches!(err, SourceError::NotFound { .. }), "{err}");
        assert!(err.to_string().contains("does not exist"), "{err}");
        let err = SourceSpec::parse("./definitely/not/here", None).unwrap_err();
        assert!(matches!(err, SourceError::NotFound { .. }), "{err}");
    }

    #[test]
    fn file_is_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, "x").unwrap();
        let err = SourceSpec::parse(file.to_str().unwrap(), None).unwrap_err();
        assert!(matches!(err, SourceError::InvalidSource { .. }), "{err}");
    }

    #[test]
    fn git_work_tree_and_bare_repo_are_git() {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path().join("work");
        let bare = tmp.path().join("bare.git");
        for (args, dir) in [
            (vec!["init", "-q"], &work),
            (vec!["init", "-q", "--bare"], &bare),
        ] {
            let status = Command::new("git")
                .args(args)
                .arg(dir)
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .status()
                .expect("git must be installed to run these tests");
            assert!(status.success());
            let spec = SourceSpec::parse(dir.to_str().unwrap(), Some("main")).unwrap();
            let abs = fs::canonicalize(dir).unwrap();
            assert_eq!(spec, git_spec(abs.to_str().unwrap(), Some("main")));
        }
        // A sub-folder of a work tree is a plain directory.
        fs::create_dir(work.join("sub")).unwrap();
        let spec = SourceSpec::parse(work.join("sub").to_str().unwrap(), None).unwrap();
        assert!(matches!(spec, SourceSpec::Dir { .. }));
    }

    #[test]
    fn validates_refs() {
        for ok in [
            "main",
            "feature/x",
            "v1.2.3",
            "release-2024.01",
            "0123456789abcdef0123456789abcdef01234567",
        ] {
            assert_eq!(validate_ref(ok).unwrap(), ok);
        }
        for bad in [
            "", "-x", "a..b", "a b", "a:b", "a^", "a~1", "x@{1}", "/a", "a/", "a.lock", ".hidden",
            "a/.b", "@",
        ] {
            assert!(
                matches!(
                    SourceSpec::parse("https://h/r", Some(bad)),
                    Err(SourceError::InvalidRef { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn commit_ids() {
        assert!(is_commit_id("0123456789abcdef0123456789ABCDEF01234567"));
        assert!(is_commit_id(&"a".repeat(64)));
        assert!(!is_commit_id("0123456"));
        assert!(!is_commit_id(&"g".repeat(40)));
    }

    #[test]
    fn normalizes_subpaths() {
        assert_eq!(normalize_subpath("").unwrap(), "");
        assert_eq!(normalize_subpath(".").unwrap(), "");
        assert_eq!(normalize_subpath("./apps//web/").unwrap(), "apps/web");
        for bad in [
            "../x",
            "apps/../../x",
            "/etc",
            "a\\b",
            ".git/config",
            "a\nb",
        ] {
            assert!(
                matches!(normalize_subpath(bad), Err(SourceError::InvalidPath { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_and_display_are_redacted() {
        let spec = git_spec("https://u:topsecret@h/r", Some("main"));
        assert!(!format!("{spec:?}").contains("topsecret"));
        assert_eq!(spec.to_string(), "git https://***@h/r (ref main)");
    }

    fn tool(program: &str, args: &[&str], dir: &Path) {
        let status = Command::new(program)
            .args(args)
            .current_dir(dir)
            .env("HGRCPATH", "")
            .env("LC_ALL", "C")
            .status()
            .unwrap_or_else(|e| panic!("`{program}` must be installed to run these tests: {e}"));
        assert!(status.success(), "{program} {args:?}");
    }

    #[test]
    fn parses_svn_urls() {
        let svn = |url: &str, r: Option<&str>| SourceSpec::Svn {
            url: url.to_string(),
            reference: r.map(str::to_string),
        };
        for (given, url) in [
            ("svn://host/repo", "svn://host/repo"),
            ("svn+ssh://me@host/repo", "svn+ssh://me@host/repo"),
            ("svn+https://host/svn/repo", "https://host/svn/repo"),
            ("SVN+HTTP://host/svn/repo", "HTTP://host/svn/repo"),
            ("svn+file:///srv/svn/repo", "file:///srv/svn/repo"),
        ] {
            assert_eq!(
                SourceSpec::parse(given, None).unwrap(),
                svn(url, None),
                "{given}"
            );
        }
        assert_eq!(
            SourceSpec::parse("svn://h/r", Some("/branches/x/")).unwrap(),
            svn("svn://h/r", Some("branches/x"))
        );
        assert_eq!(
            SourceSpec::parse("svn://h/r", Some("trunk@0042")).unwrap(),
            svn("svn://h/r", Some("trunk@42"))
        );
        assert_eq!(
            SourceSpec::parse("svn://h/r", Some("tags/v1@HEAD")).unwrap(),
            svn("svn://h/r", Some("tags/v1"))
        );
        assert_eq!(
            SourceSpec::parse("svn://h/r", Some(".")).unwrap(),
            svn("svn://h/r", Some("."))
        );
        for bad in [
            "",
            "../x",
            "trunk@abc",
            "trunk@",
            "-r5",
            "a\\b",
            "@5",
            "a\nb",
        ] {
            assert!(
                matches!(
                    SourceSpec::parse("svn://h/r", Some(bad)),
                    Err(SourceError::InvalidRef { .. })
                ),
                "{bad:?}"
            );
        }
        for bad in [
            "svn+ftp://h/r",
            "svn://-oProxyCommand=x/r",
            "svn://",
            "svn+file://host/x",
        ] {
            assert!(
                matches!(
                    SourceSpec::parse(bad, None),
                    Err(SourceError::InvalidSource { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn parses_hg_urls() {
        let hg = |url: &str, r: Option<&str>| SourceSpec::Hg {
            url: url.to_string(),
            reference: r.map(str::to_string),
        };
        for (given, url) in [
            ("hg+https://host/repo", "https://host/repo"),
            ("hg+http://127.0.0.1:8000/", "http://127.0.0.1:8000/"),
            ("hg+ssh://hg@host/repo", "ssh://hg@host/repo"),
            ("hg+file:///srv/hg/my%20repo", "/srv/hg/my repo"),
            ("hg+file://localhost/srv/hg/r", "/srv/hg/r"),
        ] {
            assert_eq!(
                SourceSpec::parse(given, None).unwrap(),
                hg(url, None),
                "{given}"
            );
        }
        assert_eq!(
            SourceSpec::parse("hg+https://h/r", Some("stable branch")).unwrap(),
            hg("https://h/r", Some("stable branch"))
        );
        for bad in ["", "12", "-x", "a'b", "a\"b", " x", "null", "."] {
            assert!(
                matches!(
                    SourceSpec::parse("hg+https://h/r", Some(bad)),
                    Err(SourceError::InvalidRef { .. })
                ),
                "{bad:?}"
            );
        }
        for bad in [
            "hg+ftp://h/r",
            "hg+ssh://-oProxyCommand=x/r",
            "hg+file://h/x",
            "hg+file:///%zz",
        ] {
            assert!(
                matches!(
                    SourceSpec::parse(bad, None),
                    Err(SourceError::InvalidSource { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn local_hg_repository_is_hg() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("my repo");
        fs::create_dir(&repo).unwrap();
        tool("hg", &["init", "-q"], &repo);
        let abs = fs::canonicalize(&repo).unwrap();
        assert_eq!(
            SourceSpec::parse(repo.to_str().unwrap(), Some("stable")).unwrap(),
            SourceSpec::Hg {
                url: abs.to_str().unwrap().to_string(),
                reference: Some("stable".into())
            }
        );
    }

    #[test]
    fn local_svn_repository_is_svn_and_working_copy_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        tool("svnadmin", &["create", "my repo"], tmp.path());
        let repo = fs::canonicalize(tmp.path().join("my repo")).unwrap();
        let spec = SourceSpec::parse(repo.to_str().unwrap(), None).unwrap();
        let url = format!("file://{}", repo.display()).replace(' ', "%20");
        assert_eq!(
            spec,
            SourceSpec::Svn {
                url: url.clone(),
                reference: None
            }
        );
        assert_eq!(spec.to_string(), format!("svn {url} (ref trunk)"));
        tool(
            "svn",
            &["checkout", "-q", "--non-interactive", &url, "wc"],
            tmp.path(),
        );
        let err = SourceSpec::parse(tmp.path().join("wc").to_str().unwrap(), None).unwrap_err();
        assert!(matches!(err, SourceError::SvnWorkingCopy { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("working copy"), "{msg}");
        assert!(
            msg.contains(&url),
            "the message names the repository: {msg}"
        );
    }

    #[test]
    fn display_names_the_kind_and_default_ref() {
        let svn = SourceSpec::parse("svn+https://u:pw1234@h/r", None).unwrap();
        assert_eq!(svn.to_string(), "svn https://***@h/r (ref trunk)");
        assert!(!format!("{svn:?}").contains("pw1234"));
        let hg = SourceSpec::parse("hg+https://u:pw1234@h/r", None).unwrap();
        assert_eq!(hg.to_string(), "hg https://***@h/r (ref default)");
        assert!(!format!("{hg:?}").contains("pw1234"));
        assert_eq!(hg.kind(), "hg");
    }
}
