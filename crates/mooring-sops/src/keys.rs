//! The identities that open a file's data key. Age X25519 identities (`AGE-SECRET-KEY-1…`,
//! as `age-keygen` writes them and `SOPS_AGE_KEY_FILE` holds them) are used
//! natively: the file's stanza for a recipient whose public key matches one of them
//! is an armored age file whose plaintext is the 32-byte data key.

use crate::metadata::Metadata;
use crate::SopsError;
use std::io::Read;
use std::str::FromStr;
use zeroize::Zeroizing;

/// The identities Mooring decrypts with. Its `Debug` shows recipients, never keys.
#[derive(Clone, Default)]
pub struct Keys {
    age: Vec<(age::x25519::Identity, String)>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("age", &self.recipients())
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

    /// Whether no identity is configured.
    pub fn is_empty(&self) -> bool {
        self.age.is_empty()
    }

    /// The public recipients (`age1…`) of the configured identities.
    pub fn recipients(&self) -> Vec<String> {
        self.age.iter().map(|(_, r)| r.clone()).collect()
    }

    /// The file's data key, from the first of its age stanzas one of these
    /// identities opens.
    pub fn data_key(&self, meta: &Metadata) -> Result<Zeroizing<[u8; 32]>, SopsError> {
        for stanza in &meta.age {
            let Some((identity, _)) = self.age.iter().find(|(_, r)| *r == stanza.recipient) else {
                continue;
            };
            return open_age(&stanza.enc, identity);
        }
        let mut recipients: Vec<String> = meta
            .age
            .iter()
            .map(|s| format!("age {}", s.recipient))
            .collect();
        recipients.extend(
            meta.pgp
                .iter()
                .map(|fp| format!("PGP {fp} (PGP keys are not supported yet)")),
        );
        recipients.extend(meta.others.iter().map(|k| format!("{k} (not supported)")));
        if recipients.is_empty() {
            recipients.push("no recipient at all".into());
        }
        Err(SopsError::NoKey {
            recipients: recipients.join(", "),
        })
    }
}

fn open_age(enc: &str, identity: &age::x25519::Identity) -> Result<Zeroizing<[u8; 32]>, SopsError> {
    let failed = |e: &dyn std::fmt::Display| SopsError::DataKey(e.to_string());
    let armored = age::armor::ArmoredReader::new(enc.as_bytes());
    let decryptor = age::Decryptor::new(armored).map_err(|e| failed(&e))?;
    let mut reader = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(|e| failed(&e))?;
    let mut key = Zeroizing::new(Vec::new());
    reader.read_to_end(&mut key).map_err(|e| failed(&e))?;
    let key: [u8; 32] = key
        .as_slice()
        .try_into()
        .map_err(|_| SopsError::DataKey(format!("the data key is {} bytes, not 32", key.len())))?;
    Ok(Zeroizing::new(key))
}

/// The variables SOPS reads its age identities from (`SOPS_AGE_KEY_CMD` is not run:
/// Mooring runs no command a variable names).
pub const ENVIRONMENT: [&str; 3] = ["SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY_CMD"];

impl PartialEq for Keys {
    /// The same identities (an identity is known by its public recipient).
    fn eq(&self, other: &Keys) -> bool {
        self.recipients() == other.recipients()
    }
}

impl Eq for Keys {}

impl Keys {
    /// Adds every identity of `other`.
    pub fn extend(&mut self, other: &Keys) {
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
        Ok(keys)
    }
}
