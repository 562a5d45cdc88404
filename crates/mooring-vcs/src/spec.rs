//! [`SourceSpec`]: what the user pointed Mooring at, and how that string is parsed.
//!
//! Also home of the validation shared by parsing and by the cache (URLs, refs and
//! paths inside a source), since [`SourceSpec`]'s fields are public and may be
//! built without [`SourceSpec::parse`].

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::SourceError;
use crate::redact::redact_url;

/// URL schemes accepted for Git sources.
const GIT_SCHEMES: &[&str] = &["file", "http", "https", "ssh", "git", "git+ssh", "ssh+git"];

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
    /// A plain local directory, used as it is.
    Dir {
        /// Absolute path of the directory.
        path: PathBuf,
    },
}

impl SourceSpec {
    /// Parses a source as given on the command line.
    ///
    /// `source` is a local directory, or a Git repository: a local path to a
    /// repository, a `file://`, `https://`, `http://`, `ssh://` or `git://` URL, or
    /// scp-like `user@host:path`. A local path that is a Git work tree (has `.git`)
    /// or a bare repository becomes [`SourceSpec::Git`] with the absolute path as
    /// URL (only committed content is used); any other existing directory becomes
    /// [`SourceSpec::Dir`]. `reference` (`--ref`) is a branch, tag or full commit
    /// id and is an error with a plain directory.
    pub fn parse(source: &str, reference: Option<&str>) -> Result<SourceSpec, SourceError> {
        let reference = reference.map(validate_ref).transpose()?;
        if source.is_empty() {
            return Err(invalid(source, "the source is empty"));
        }
        if source.chars().any(char::is_control) {
            return Err(invalid(source, "it contains control characters"));
        }
        if source.contains("://") {
            validate_git_url(source)?;
            return Ok(SourceSpec::Git {
                url: source.to_string(),
                reference,
            });
        }
        let path = Path::new(source);
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                let abs = fs::canonicalize(path).map_err(|e| {
                    SourceError::io(format!("cannot resolve {}", path.display()), e)
                })?;
                if is_git_repository(&abs) {
                    let url = abs
                        .to_str()
                        .ok_or_else(|| invalid(source, "the repository path is not valid UTF-8"))?
                        .to_string();
                    return Ok(SourceSpec::Git { url, reference });
                }
                match reference {
                    Some(reference) => Err(SourceError::RefWithDir {
                        path: abs,
                        reference,
                    }),
                    None => Ok(SourceSpec::Dir { path: abs }),
                }
            }
            Ok(_) => Err(invalid(
                source,
                "it is a file; pass a directory or a Git repository",
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if is_scp_like(source) {
                    validate_git_url(source)?;
                    Ok(SourceSpec::Git {
                        url: source.to_string(),
                        reference,
                    })
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
            SourceSpec::Dir { path } => write!(f, "dir {}", path.display()),
        }
    }
}

/// `Debug` redacts credentials in the URL, so specs can be logged freely.
impl fmt::Debug for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::Git { url, reference } => f
                .debug_struct("Git")
                .field("url", &redact_url(url))
                .field("reference", reference)
                .finish(),
            SourceSpec::Dir { path } => f.debug_struct("Dir").field("path", path).finish(),
        }
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
                     or user@host:path"
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

/// True for a full commit id: 40 (SHA-1) or 64 (SHA-256) hex digits.
pub(crate) fn is_commit_id(reference: &str) -> bool {
    matches!(reference.len(), 40 | 64) && reference.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks that a ref is a plausible branch/tag name or commit id (a subset of
/// `git check-ref-format`), and returns it owned.
pub(crate) fn validate_ref(reference: &str) -> Result<String, SourceError> {
    let bad = |reason: &str| SourceError::InvalidRef {
        reference: reference.to_string(),
        reason: reason.to_string(),
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

/// Normalizes a folder path inside a source: drops empty and `.` components and
/// rejects absolute paths and `..`. Returns `""` for the whole source.
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
            ".git" => return Err(bad("'.git' is not part of a snapshot")),
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
}
