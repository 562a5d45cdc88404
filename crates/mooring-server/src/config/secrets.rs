//! Secret values in `mooring.yaml`: [`Secret`] (never printed) and its three forms —
//! inline, `file:PATH` (relative to the config's folder) and `env:NAME`.

use mooring_compose::decode::{err, string};
use mooring_compose::yaml::Node;
use mooring_compose::LoadError;
use std::fmt;
use std::path::Path;

/// A secret value, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret's bytes.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `inline`, `file:PATH` (relative to the config's folder) or `env:NAME`.
pub(super) fn secret(n: &Node, what: &str, base: &Path) -> Result<Secret, LoadError> {
    let raw = string(n, what)?;
    let value = if let Some(path) = raw.strip_prefix("file:") {
        let p = base.join(path);
        std::fs::read_to_string(&p)
            .map_err(|e| {
                err(
                    n,
                    format!("{what}: cannot read secret file {}: {e}", p.display()),
                )
            })?
            .trim_end_matches(['\n', '\r'])
            .to_string()
    } else if let Some(name) = raw.strip_prefix("env:") {
        std::env::var(name)
            .map_err(|_| err(n, format!("{what}: environment variable {name} is not set")))?
    } else {
        raw
    };
    if value.is_empty() {
        return Err(err(n, format!("{what} is empty")));
    }
    Ok(Secret(value))
}

#[cfg(test)]
mod tests {
    use super::super::parse;

    #[test]
    fn secrets_from_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hook.secret"), "from-file\n").unwrap();
        let c = parse(
            "webhooks: { generic: { secret: file:hook.secret } }\n",
            "m.yaml",
            dir.path(),
        )
        .unwrap();
        assert_eq!(c.webhooks.generic.unwrap().expose(), "from-file");
    }
}
