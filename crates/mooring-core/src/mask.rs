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
