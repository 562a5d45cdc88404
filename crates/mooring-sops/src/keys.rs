//! The identities that open a file's data key. Age X25519 identities (`AGE-SECRET-KEY-1…`,
//! as `age-keygen` writes them and `SOPS_AGE_KEY_FILE` holds them) are used
//! natively: the file's stanza for a recipient whose public key matches one of them
//! is an armored age file whose plaintext is the 32-byte data key. PGP keys are used
//! through `gpg` (as `sops` uses them), in a GnuPG home that holds their secret keys
//! without a passphrase: only when no age identity fits, one `gpg --decrypt` of the
//! 32-byte key per file — the one process this crate may start.

use crate::metadata::{KeyGroup, Metadata, PgpStanza};
use crate::SopsError;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::str::FromStr;
use zeroize::Zeroizing;

/// The identities Mooring decrypts with. Its `Debug` shows recipients, never keys.
#[derive(Clone, Default)]
pub struct Keys {
    age: Vec<(age::x25519::Identity, String)>,
    /// Where `gpg` finds PGP secret keys: `None` — PGP keys are not tried;
    /// `Some(None)` — gpg's own default (`GNUPGHOME`, else `~/.gnupg`).
    gnupg: Option<Option<PathBuf>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("age", &self.recipients())
            .field("gnupg", &self.gnupg)
            .finish()
    }
}

impl Keys {
    /// No identity: every encrypted file is reported as undecryptable.
    pub fn none() -> Keys {
        Keys::default()
    }

    /// Adds the age identities in `text` (a key file: `AGE-SECRET-KEY-1…` lines,
    /// `#` comments and blank lines). `origin` names where it came from in errors.
    pub fn add_age(&mut self, text: &str, origin: &str) -> Result<(), String> {
        let mut found = 0;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let identity = age::x25519::Identity::from_str(line).map_err(|_| {
                format!(
                    "{origin}: line {} is not an age identity (AGE-SECRET-KEY-1…)",
                    n + 1
                )
            })?;
            let recipient = identity.to_public().to_string();
            if !self.age.iter().any(|(_, r)| *r == recipient) {
                self.age.push((identity, recipient));
            }
            found += 1;
        }
        if found == 0 {
            return Err(format!(
                "{origin}: holds no age identity (AGE-SECRET-KEY-1…)"
            ));
        }
        Ok(())
    }

    /// Also tries PGP keys through `gpg`, in the GnuPG home `home` (`None`: gpg's
    /// default). A later call replaces the home.
    pub fn use_gnupg(&mut self, home: Option<PathBuf>) {
        self.gnupg = Some(home);
    }

    /// Whether no identity is configured.
    pub fn is_empty(&self) -> bool {
        self.age.is_empty() && self.gnupg.is_none()
    }

    /// The public recipients (`age1…`) of the configured identities.
    pub fn recipients(&self) -> Vec<String> {
        self.age.iter().map(|(_, r)| r.clone()).collect()
    }

    /// The file's data key: with one key group, its part; with several, the Shamir
    /// combination of the parts of every group a key here opens (at least
    /// `shamir_threshold` of them).
    pub fn data_key(&self, meta: &Metadata) -> Result<Zeroizing<[u8; 32]>, SopsError> {
        let mut parts = Vec::new();
        let mut missing = Vec::new();
        for group in &meta.groups {
            match self.open_group(group)? {
                Ok(part) => parts.push(part),
                Err(reasons) => missing.extend(reasons),
            }
        }
        let key = match (meta.groups.len(), parts.len()) {
            (_, 0) => {
                if missing.is_empty() {
                    missing.push("no recipient at all".into());
                }
                return Err(SopsError::NoKey {
                    recipients: missing.join(", "),
                });
            }
            (1, _) => parts.swap_remove(0),
            (_, n) if n < meta.shamir_threshold.max(2) => {
                return Err(SopsError::NoKey {
                    recipients: format!(
                        "{} of its {} key groups ({n} opened here, {} needed; the others: {})",
                        meta.shamir_threshold,
                        meta.groups.len(),
                        meta.shamir_threshold,
                        missing.join(", ")
                    ),
                })
            }
            _ => Zeroizing::new(
                crate::shamir::combine(&parts.iter().map(|p| p.to_vec()).collect::<Vec<_>>())
                    .map_err(|e| {
                        SopsError::DataKey(format!("its key groups' shares do not combine: {e}"))
                    })?,
            ),
        };
        let key: [u8; 32] = key.as_slice().try_into().map_err(|_| {
            SopsError::DataKey(format!("the data key is {} bytes, not 32", key.len()))
        })?;
        Ok(Zeroizing::new(key))
    }

    /// One group's part: from the first of its age stanzas one of these identities
    /// opens, else the first PGP stanza `gpg` opens. `Ok(Err(reasons))`: none fits.
    fn open_group(
        &self,
        group: &KeyGroup,
    ) -> Result<Result<Zeroizing<Vec<u8>>, Vec<String>>, SopsError> {
        for stanza in &group.age {
            let Some((identity, _)) = self.age.iter().find(|(_, r)| *r == stanza.recipient) else {
                continue;
            };
            return open_age(&stanza.enc, identity).map(Ok);
        }
        let mut gpg_errors = Vec::new();
        if let Some(home) = &self.gnupg {
            for stanza in &group.pgp {
                match open_pgp(stanza, home.as_ref()) {
                    Ok(part) => return Ok(Ok(part)),
                    Err(e) => gpg_errors.push(format!("PGP {} ({e})", stanza.fp)),
                }
            }
        }
        let mut reasons: Vec<String> = group
            .age
            .iter()
            .map(|s| format!("age {}", s.recipient))
            .collect();
        if gpg_errors.is_empty() {
            reasons.extend(group.pgp.iter().map(|s| {
                format!(
                    "PGP {} (PGP keys are not tried: give sops.gnupg_home)",
                    s.fp
                )
            }));
        } else {
            reasons.extend(gpg_errors);
        }
        reasons.extend(group.others.iter().map(|k| format!("{k} (not supported)")));
        Ok(Err(reasons))
    }
}

/// Decrypts a PGP stanza's data key (or share) with `gpg --decrypt` (batch, no pinentry, the
/// message on stdin, the key on stdout, nothing of the caller's environment but the
/// GnuPG home, `PATH` and `HOME`).
fn open_pgp(stanza: &PgpStanza, home: Option<&PathBuf>) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut cmd = Command::new("gpg");
    cmd.args([
        "--batch",
        "--no-tty",
        "--quiet",
        "--pinentry-mode",
        "cancel",
        "--decrypt",
    ])
    .env_clear()
    .env("LC_ALL", "C")
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for var in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    if let Some(h) = home
        .cloned()
        .or_else(|| std::env::var_os("GNUPGHOME").map(PathBuf::from))
    {
        cmd.env("GNUPGHOME", h);
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot run gpg: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("gpg has no stdin")?;
    let enc = stanza.enc.clone();
    let writer = std::thread::spawn(move || stdin.write_all(enc.as_bytes()));
    let out = child.wait_with_output().map_err(|e| format!("gpg: {e}"))?;
    let _ = writer.join();
    let key = Zeroizing::new(out.stdout);
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        let why = why.lines().last().unwrap_or("failed").trim().to_string();
        return Err(format!("gpg could not decrypt the data key: {why}"));
    }
    Ok(key)
}

fn open_age(enc: &str, identity: &age::x25519::Identity) -> Result<Zeroizing<Vec<u8>>, SopsError> {
    let failed = |e: &dyn std::fmt::Display| SopsError::DataKey(e.to_string());
    let armored = age::armor::ArmoredReader::new(enc.as_bytes());
    let decryptor = age::Decryptor::new(armored).map_err(|e| failed(&e))?;
    let mut reader = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(|e| failed(&e))?;
    let mut key = Zeroizing::new(Vec::new());
    reader.read_to_end(&mut key).map_err(|e| failed(&e))?;
    Ok(key)
}

/// The variables SOPS reads its age identities from (`SOPS_AGE_KEY_CMD` is not run:
/// Mooring runs no command a variable names).
pub const ENVIRONMENT: [&str; 3] = ["SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY_CMD"];

impl PartialEq for Keys {
    /// The same identities (an identity is known by its public recipient) and GnuPG home.
    fn eq(&self, other: &Keys) -> bool {
        self.recipients() == other.recipients() && self.gnupg == other.gnupg
    }
}

impl Eq for Keys {}

impl Keys {
    /// Adds every identity of `other` (and its GnuPG home, when it has one).
    pub fn extend(&mut self, other: &Keys) {
        if other.gnupg.is_some() {
            self.gnupg = other.gnupg.clone();
        }
        for (identity, recipient) in &other.age {
            if !self.age.iter().any(|(_, r)| r == recipient) {
                self.age.push((identity.clone(), recipient.clone()));
            }
        }
    }

    /// The identities the process environment gives, as `sops` finds them:
    /// `SOPS_AGE_KEY` (the keys themselves), `SOPS_AGE_KEY_FILE` (a key file), and the
    /// default key file (`$XDG_CONFIG_HOME/sops/age/keys.txt`, else
    /// `~/.config/sops/age/keys.txt`) when it exists.
    pub fn from_environment() -> Result<Keys, String> {
        let mut keys = Keys::none();
        if let Ok(text) = std::env::var("SOPS_AGE_KEY") {
            keys.add_age(&text, "SOPS_AGE_KEY")?;
        }
        if let Ok(path) = std::env::var("SOPS_AGE_KEY_FILE") {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("SOPS_AGE_KEY_FILE: cannot read {path}: {e}"))?;
            keys.add_age(&text, &format!("SOPS_AGE_KEY_FILE {path}"))?;
        }
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".config"))
            });
        if let Some(default) = config.map(|c| c.join("sops/age/keys.txt")) {
            if let Ok(text) = std::fs::read_to_string(&default) {
                keys.add_age(&text, &default.display().to_string())?;
            }
        }
        // PGP keys as sops finds them: gpg's default home (`GNUPGHOME`, else ~/.gnupg).
        keys.use_gnupg(None);
        Ok(keys)
    }
}
