//! Credential redaction for URLs and for free text that may contain URLs
//! (such as Git's stderr).

/// Schemes whose bare user name (no password) is not a secret and is kept,
/// e.g. `ssh://git@host/repo`. For all other schemes (notably http/https, where
/// tokens are commonly passed as the user name) any user info is redacted.
const USER_IS_PUBLIC: &[&str] = &["ssh", "git+ssh", "ssh+git", "git", "svn+ssh"];

/// Replaces credentials embedded in URLs with `***`.
///
/// Works on a single URL or on any text containing URLs: in every
/// `scheme://userinfo@host…` occurrence the user info is replaced by `***` when
/// it contains a password (`user:password@`), or when the scheme is not an ssh/git
/// one (a lone `token@` for https is usually a secret). Text without embedded
/// credentials is returned unchanged, as are scp-like `user@host:path` addresses
/// (they cannot carry a password).
///
/// ```
/// use mooring_vcs::redact_url;
/// assert_eq!(redact_url("https://me:s3cret@example.com/r.git"), "https://***@example.com/r.git");
/// assert_eq!(redact_url("ssh://git@example.com/r.git"), "ssh://git@example.com/r.git");
/// ```
pub fn redact_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let scheme_start = rest[..pos]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            .last()
            .map_or(pos, |(i, _)| i);
        let scheme = rest[scheme_start..pos].to_ascii_lowercase();
        let after = &rest[pos + 3..];
        out.push_str(&rest[..pos + 3]);
        let end = after
            .find(|c: char| {
                c == '/' || c.is_whitespace() || matches!(c, '\'' | '"' | '<' | '>' | '`')
            })
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                if userinfo.contains(':') || !USER_IS_PUBLIC.contains(&scheme.as_str()) {
                    out.push_str("***");
                } else {
                    out.push_str(userinfo);
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The user-info part of `url` that [`redact_url`] would hide, if any, so that
/// stray occurrences of it elsewhere in a message can be scrubbed as well.
pub(crate) fn secret_of(url: &str) -> Option<String> {
    let pos = url.find("://")?;
    let scheme = url[..pos].to_ascii_lowercase();
    let after = &url[pos + 3..];
    let end = after.find('/').unwrap_or(after.len());
    let authority = &after[..end];
    let at = authority.rfind('@')?;
    let userinfo = &authority[..at];
    if userinfo.is_empty() {
        return None;
    }
    if let Some((_, password)) = userinfo.split_once(':') {
        // Keep the whole user info secret only if it is long enough not to
        // blank out ordinary words in stderr.
        if password.len() >= 4 {
            return Some(password.to_string());
        }
        return None;
    }
    if !USER_IS_PUBLIC.contains(&scheme.as_str()) && userinfo.len() >= 4 {
        return Some(userinfo.to_string());
    }
    None
}

/// Redacts URLs in `text` and additionally removes any literal occurrence of the
/// secret part of `url`.
pub(crate) fn scrub(text: &str, url: &str) -> String {
    let mut out = redact_url(text);
    if let Some(secret) = secret_of(url) {
        out = out.replace(&secret, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_user_and_password() {
        assert_eq!(
            redact_url("https://alice:hunter22@example.com/org/repo.git"),
            "https://***@example.com/org/repo.git"
        );
        assert_eq!(
            redact_url("HTTP://alice:pw@example.com:8080"),
            "HTTP://***@example.com:8080"
        );
        assert_eq!(
            redact_url("ssh://git:pw@example.com/r"),
            "ssh://***@example.com/r"
        );
    }

    #[test]
    fn redacts_https_token_user() {
        assert_eq!(
            redact_url("https://ghp_abcdef@github.com/o/r"),
            "https://***@github.com/o/r"
        );
    }

    #[test]
    fn password_with_at_sign_is_fully_hidden() {
        assert_eq!(redact_url("https://u:p@ss@host/r"), "https://***@host/r");
    }

    #[test]
    fn keeps_public_user_names_and_plain_urls() {
        for url in [
            "ssh://git@example.com/org/repo.git",
            "git@github.com:org/repo.git",
            "https://example.com/org/repo.git",
            "file:///srv/git/repo.git",
            "/srv/git/repo",
            "git://127.0.0.1:9418/repo",
            "svn+ssh://root@127.0.0.1:2222/srv/svn/repo",
            "",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }

    #[test]
    fn redacts_urls_inside_text() {
        let text = "fatal: unable to access 'https://bob:tok3n@h.example/r/': 403\n\
                    fatal: also http://x:y@other/ and ssh://git@keep/me";
        assert_eq!(
            redact_url(text),
            "fatal: unable to access 'https://***@h.example/r/': 403\n\
             fatal: also http://***@other/ and ssh://git@keep/me"
        );
    }

    #[test]
    fn scrub_removes_stray_secrets() {
        let url = "https://bob:sup3rsecret@h/r";
        assert_eq!(
            scrub(
                "password sup3rsecret rejected for https://bob:sup3rsecret@h/r",
                url
            ),
            "password *** rejected for https://***@h/r"
        );
        assert_eq!(scrub("nothing here", "https://h/r"), "nothing here");
    }
}
