//! Masking environment values where people see them (diffs in the CLI, the API and
//! the UI), never in the containers. A value is masked when it holds one of the
//! app's secrets anywhere in it (the operator's `variables`, even interpolated into
//! a longer value) or when its variable's name is marked (`NAME`, or `PREFIX_*`).
//! A masked value reads `*** (hash)`: the hash is keyed, so two different values
//! show two different hashes (a diff still says what changed) without letting a
//! viewer test guesses against it.

use crate::hash::hex;
use crate::view::Comparison;
use sha2::{Digest, Sha256};

/// Values that are secret, whatever variable holds them (decrypted from the
/// repository). Its `Debug` shows how many, never what.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretValues(Vec<String>);

impl std::fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretValues({} values)", self.0.len())
    }
}

impl SecretValues {
    /// Adds `value` (empty ones and repeats are left out).
    pub fn add(&mut self, value: impl Into<String>) {
        let value = value.into();
        if !value.is_empty() && !self.0.contains(&value) {
            self.0.push(value);
        }
    }

    /// The values.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with every value replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        // Longer values first, so a value holding a shorter one is replaced whole.
        let mut values: Vec<&String> = self.0.iter().collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        for v in values {
            out = out.replace(v.as_str(), "***");
        }
        out
    }
}

/// A key for masked values' hashes, random per process: a hash tells a viewer that a
/// value changed, and cannot be checked against guesses offline.
pub fn process_key() -> &'static [u8] {
    static KEY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let mut key = vec![0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // No randomness: the clock and the process id still make a key no
            // viewer knows in advance.
            let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
            key = crate::hash::sha256_hex(seed.as_bytes()).into_bytes();
        }
        key
    })
}

/// Which environment values to mask, and the key of their hashes.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct EnvMask {
    secrets: Vec<String>,
    names: Vec<String>,
    key: Vec<u8>,
}

impl std::fmt::Debug for EnvMask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvMask")
            .field("secrets", &self.secrets.len())
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl EnvMask {
    /// `secrets`: values masked wherever they appear (empty ones are ignored);
    /// `names`: variable names or `PREFIX_*` patterns; `key`: the hashes' key.
    pub fn new(
        secrets: impl IntoIterator<Item = String>,
        names: impl IntoIterator<Item = String>,
        key: &[u8],
    ) -> EnvMask {
        EnvMask {
            secrets: secrets.into_iter().filter(|s| !s.is_empty()).collect(),
            names: names.into_iter().collect(),
            key: key.to_vec(),
        }
    }

    /// This mask, also masking what `project` decrypted: the values wherever they
    /// appear, and by name every environment variable holding one — so the value it
    /// replaces (the live one, say) is masked too.
    pub fn for_project(mut self, project: &crate::Project) -> EnvMask {
        for v in project.secret_values.iter() {
            if !self.secrets.iter().any(|s| s == v) {
                self.secrets.push(v.to_string());
            }
        }
        let names: Vec<String> = project
            .services
            .values()
            .flat_map(|svc| &svc.environment)
            .filter(|(_, value)| project.secret_values.iter().any(|s| value.contains(s)))
            .map(|(name, _)| name.clone())
            .collect();
        for name in names {
            if !self.names.contains(&name) {
                self.names.push(name);
            }
        }
        self
    }

    /// Whether the value of variable `name` is masked.
    pub fn masks(&self, name: &str, value: &str) -> bool {
        self.names.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == p,
        }) || self.secrets.iter().any(|s| value.contains(s.as_str()))
    }

    /// `*** (h)`, with `h` the first 12 hex digits of the keyed sha256 of `value`.
    pub fn masked(&self, value: &str) -> String {
        let mut h = Sha256::new();
        h.update((self.key.len() as u64).to_be_bytes());
        h.update(&self.key);
        h.update(value.as_bytes());
        format!("*** ({})", &hex(&h.finalize())[..12])
    }

    /// Masks, in place, the `env NAME` fields of `comparisons` whose desired or live
    /// value is masked, and any other field holding a secret (both sides, so the pair reads the same way); whether the
    /// field differs is kept.
    pub fn apply(&self, comparisons: &mut [Comparison]) {
        for field in comparisons.iter_mut().flat_map(|c| c.fields.iter_mut()) {
            let name = field.name.strip_prefix("env ");
            // Other fields (a command, a label) are masked when they hold a secret.
            let hit = |v: &Option<String>| {
                v.as_deref().is_some_and(|v| match name {
                    Some(name) => self.masks(name, v),
                    None => self.secrets.iter().any(|s| v.contains(s.as_str())),
                })
            };
            if hit(&field.desired) || hit(&field.live) {
                field.desired = field.desired.as_deref().map(|v| self.masked(v));
                field.live = field.live.as_deref().map(|v| self.masked(v));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::Field;

    fn env(name: &str, desired: &str, live: Option<&str>) -> Field {
        Field {
            name: format!("env {name}"),
            desired: Some(desired.into()),
            live: live.map(str::to_string),
            differs: live != Some(desired),
        }
    }

    #[test]
    fn secrets_anywhere_and_marked_names_are_masked_with_keyed_hashes() {
        let mask = EnvMask::new(
            ["hunter2".to_string(), String::new()],
            ["TOKEN".to_string(), "DB_*".to_string()],
            b"key",
        );
        let mut c = vec![Comparison {
            resource: "container a-web-1".into(),
            fields: vec![
                env(
                    "URL",
                    "postgres://u:hunter2@db/x",
                    Some("postgres://u:old@db/x"),
                ),
                env("TOKEN", "t1", Some("t1")),
                env("DB_HOST", "db", None),
                env("GREETING", "hello", Some("hello")),
                Field {
                    name: "image".into(),
                    desired: Some("hunter2".into()),
                    live: None,
                    differs: true,
                },
            ],
        }];
        mask.apply(&mut c);
        let f = &c[0].fields;
        let text = format!("{c:?}");
        assert!(!text.contains("old@db") && !text.contains("t1"), "{text}");
        assert!(
            f[0].differs && f[0].desired != f[0].live,
            "a change still shows"
        );
        assert!(f[0].desired.as_deref().unwrap().starts_with("*** ("));
        assert!(
            !f[1].differs && f[1].desired == f[1].live,
            "equal values hash the same"
        );
        assert_eq!(f[2].live, None);
        assert!(f[2].desired.as_deref().unwrap().starts_with("***"));
        assert_eq!(f[3].desired.as_deref(), Some("hello"), "other values stay");
        assert!(
            f[4].desired.as_deref().unwrap().starts_with("*** ("),
            "a field other than env holding a secret is masked too"
        );
        assert!(!mask.masks("DB", "x") && mask.masks("DB_", "x"));
        // Another key, another hash: a viewer cannot precompute them.
        let other = EnvMask::new([], [], b"other");
        assert_ne!(other.masked("t1"), mask.masked("t1"));
        assert!(!format!("{mask:?}").contains("hunter2"));
    }
}
