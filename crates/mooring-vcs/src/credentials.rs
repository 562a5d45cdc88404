//! [`Credentials`]: a user name and password (or token) for a source, given as values
//! (for example from Mooring's configuration) rather than through a tool's own
//! credential store.
//!
//! They are attached to a [`Cache`](crate::Cache) with
//! [`Cache::with_credentials`](crate::Cache::with_credentials) and handed to each tool
//! without ever appearing on a command line (where other local users could read them
//! in the process list), in a cache folder name, or in a message:
//!
//! - Git (http/https only): a `credential-store` file (mode 0600, in a private 0700
//!   temporary directory) that exists only while `git fetch` runs, selected with
//!   `-c credential.helper= -c credential.helper=store --file=…`;
//! - Subversion: `--username` plus `--password-from-stdin` (the password is written to
//!   the child's stdin), with `--no-auth-cache` so nothing is saved;
//! - Mercurial: an `[auth]` section in the temporary configuration file (mode 0600)
//!   that `HGRCPATH` points at for the duration of one command.
//!
//! Every error text produced while credentials are set is scrubbed of the password.

use std::fmt;

use crate::error::SourceError;

/// A user name and a password or token.
///
/// `Debug` never shows the password. If only a password is given, Git uses the user
/// name `x-access-token` (accepted with tokens by the common Git hosts), Subversion
/// and Mercurial their own default (the local user name).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The user name, if any.
    pub username: Option<String>,
    /// The password or access token, if any.
    pub password: Option<String>,
}

impl Credentials {
    /// Credentials from a user name and a password or token.
    pub fn new(username: Option<String>, password: Option<String>) -> Credentials {
        Credentials { username, password }
    }

    /// Rejects values no tool can take safely: control characters (a newline would
    /// end a configuration line or the password on stdin), leading or trailing
    /// spaces (configuration files strip them) and empty strings.
    pub(crate) fn validate(&self) -> Result<(), SourceError> {
        for (what, value) in [("user name", &self.username), ("password", &self.password)] {
            if let Some(value) = value {
                let bad = |reason: &str| SourceError::InvalidCredentials {
                    reason: format!("the {what} {reason}"),
                };
                if value.is_empty() {
                    return Err(bad("is empty"));
                }
                if value.chars().any(char::is_control) {
                    return Err(bad("contains control characters"));
                }
                if value.trim() != value {
                    return Err(bad("starts or ends with white space"));
                }
            }
        }
        Ok(())
    }

    /// Removes every occurrence of the password from `text`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        match self.password.as_deref() {
            Some(secret) if !secret.is_empty() => {
                let mut out = text.replace(secret, "***");
                let encoded = percent_encode(secret);
                if encoded != secret {
                    out = out.replace(&encoded, "***");
                }
                out
            }
            _ => text.to_string(),
        }
    }
}

/// Removes the password of `credentials` (if any) from `text`.
pub(crate) fn scrub_opt(text: &str, credentials: Option<&Credentials>) -> String {
    match credentials {
        Some(c) => c.scrub(text),
        None => text.to_string(),
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Percent-encodes everything except unreserved characters (RFC 3986).
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let c = Credentials::new(Some("alice".into()), Some("hunter2".into()));
        let shown = format!("{c:?}");
        assert!(shown.contains("alice"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn scrubs_plain_and_encoded_password() {
        let c = Credentials::new(None, Some("p@ss word".into()));
        assert_eq!(c.scrub("x p@ss word y p%40ss%20word"), "x *** y ***");
    }

    #[test]
    fn rejects_unusable_values() {
        for (u, p) in [
            (Some(""), None),
            (None, Some("a\nb")),
            (None, Some(" lead")),
            (Some("u\t"), None),
        ] {
            let c = Credentials::new(u.map(str::to_string), p.map(str::to_string));
            let err = c.validate().unwrap_err();
            assert!(matches!(err, SourceError::InvalidCredentials { .. }));
            if let Some(p) = p {
                assert!(!err.to_string().contains(p), "{err}");
            }
        }
        Credentials::new(Some("u".into()), Some("p w".into()))
            .validate()
            .unwrap();
    }
}
