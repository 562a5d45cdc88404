//! What an app's interpolation may see, and which of its environment values people
//! never see in clear: `apps[].variables` (values the operator gives the app; secrets,
//! inline, `file:PATH` or `env:NAME`), `apps[].pass_env` (the daemon's own variables
//! the app may read, by name; Mooring's own secrets are refused at load) and
//! `apps[].mask_env` (more names, or `PREFIX_*`, whose values are masked in diffs).
//! The daemon's process environment is otherwise never handed to interpolation.

use super::{secret, Secret};
use mooring_compose::decode::{entries, err, key_of, string_list};
use mooring_compose::yaml::{Node, Value};
use mooring_compose::LoadError;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// `apps[].variables`, `pass_env` and `mask_env`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppEnv {
    /// Values the operator gives the app for interpolation; all are secrets.
    pub variables: BTreeMap<String, Secret>,
    /// Names of the daemon's own environment variables interpolation may read.
    pub pass_env: Vec<String>,
    /// Names (or `PREFIX_*`) of container variables whose values are masked.
    pub mask_env: Vec<String>,
}

impl AppEnv {
    /// The variables interpolation sees besides the project's `.env`: the allowed
    /// daemon variables that are set, then the operator's `variables` (which win).
    pub fn interpolation(&self) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = self
            .pass_env
            .iter()
            .filter_map(|name| Some((name.clone(), std::env::var(name).ok()?)))
            .collect();
        for (name, value) in &self.variables {
            out.insert(name.clone(), value.expose().to_string());
        }
        out
    }

    /// `text` (a render error, say) with every `variables` value replaced by `***`: a
    /// committed file must not read a secret back through an error message.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in self.variables.values().map(Secret::expose) {
            if !secret.is_empty() {
                out = out.replace(secret, "***");
            }
        }
        out
    }

    /// How this app's environment values are masked where people see them.
    pub fn masking(&self) -> mooring_core::EnvMask {
        mooring_core::EnvMask::new(
            self.variables.values().map(|s| s.expose().to_string()),
            self.mask_env.iter().cloned(),
            mooring_core::mask::process_key(),
        )
    }
}

/// Whether `name` is a shell variable name (`[A-Za-z_][A-Za-z0-9_]*`).
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `WHAT.variables` of `n` (an app's, a host's, an app's on one host): names and
/// values (secrets: inline, `file:PATH` or `env:NAME`).
pub(super) fn variables(
    n: &Node,
    what: &str,
    base: &Path,
) -> Result<BTreeMap<String, Secret>, LoadError> {
    let mut out = BTreeMap::new();
    if let Some(v) = n.get("variables") {
        for (k, value) in entries(v, &format!("{what}.variables"))? {
            let name = key_of(k);
            let vw = format!("{what}.variables.{name}");
            if !is_variable_name(name) {
                return Err(err(
                    k,
                    format!("{vw}: not a variable name (letters, digits and '_', not starting with a digit)"),
                ));
            }
            out.insert(name.to_string(), secret(value, &vw, base)?);
        }
    }
    Ok(out)
}

/// Parses the app's `variables`, `pass_env` and `mask_env` (all optional).
pub(super) fn parse(n: &Node, what: &str, base: &Path) -> Result<AppEnv, LoadError> {
    let mut env = AppEnv {
        variables: variables(n, what, base)?,
        ..AppEnv::default()
    };
    if let Some(p) = n.get("pass_env") {
        let names = string_list(p, &format!("{what}.pass_env"))?;
        if let Some(bad) = names.iter().find(|name| !is_variable_name(name)) {
            return Err(err(
                p,
                format!("{what}.pass_env: {bad:?} is not a variable name"),
            ));
        }
        env.pass_env = names;
    }
    if let Some(m) = n.get("mask_env") {
        let names = string_list(m, &format!("{what}.mask_env"))?;
        if let Some(bad) = names
            .iter()
            .find(|name| !is_variable_name(name.strip_suffix('*').unwrap_or(name)))
        {
            return Err(err(
                m,
                format!("{what}.mask_env: {bad:?} is neither a variable name nor a prefix such as `DB_*`"),
            ));
        }
        env.mask_env = names;
    }
    Ok(env)
}

/// The names of every `env:NAME` value in the configuration: Mooring's own secrets.
pub(super) fn secret_names(doc: &Node) -> BTreeSet<String> {
    // SOPS's own key variables are always the daemon's secrets.
    let mut out: BTreeSet<String> = mooring_sops::keys::ENVIRONMENT
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut stack = vec![doc];
    while let Some(n) = stack.pop() {
        match &n.value {
            Value::Scalar { text, .. } => {
                if let Some(name) = text.strip_prefix("env:") {
                    out.insert(name.to_string());
                }
            }
            Value::Seq(items) => stack.extend(items),
            Value::Map(pairs) => stack.extend(pairs.iter().map(|(_, v)| v)),
            Value::Null => {}
        }
    }
    out
}

/// Refuses an app's `pass_env` entry that names one of Mooring's own secrets (a
/// variable an `env:` value of the configuration reads, or any `MOORING_*`).
pub(super) fn refuse_own_secrets(
    app: &Node,
    what: &str,
    secrets: &BTreeSet<String>,
) -> Result<(), LoadError> {
    let Some(p) = app.get("pass_env") else {
        return Ok(());
    };
    let Value::Seq(items) = &p.value else {
        return Ok(());
    };
    for item in items {
        let Some(name) = item.text() else { continue };
        let why = if name.starts_with("MOORING_") {
            "MOORING_* variables configure Mooring itself"
        } else if secrets.contains(name) {
            "an `env:` value of this configuration reads it, so it holds one of Mooring's own secrets"
        } else {
            continue;
        };
        return Err(err(
            item,
            format!(
                "{what}.pass_env: {name} is not passed to apps ({why}); give the app the value it \
                 needs under `variables:` instead"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use std::path::Path;

    fn load(apps: &str) -> Result<crate::config::Config, String> {
        let text = format!(
            "webhooks: {{ generic: {{ secret: env:MOORING_TEST_APP_ENV_HOOK }} }}\napps:\n  - name: a\n    source: {{ dir: x }}\n{apps}"
        );
        parse(&text, "m.yaml", Path::new("/tmp")).map_err(|e| e.to_string())
    }

    #[test]
    fn variables_pass_env_and_mask_env() {
        std::env::set_var("MOORING_TEST_APP_ENV_HOOK", "hook-secret");
        std::env::set_var("APP_ENV_TEST_FROM_ENV", "from-env");
        std::env::set_var("APP_ENV_TEST_PASSED", "passed");
        std::env::set_var("APP_ENV_TEST_NOT_PASSED", "not-passed");
        let c = load(
            "    variables: { DB_PASSWORD: inline-secret, TOKEN: env:APP_ENV_TEST_FROM_ENV }\n    pass_env: [APP_ENV_TEST_PASSED, APP_ENV_TEST_UNSET]\n    mask_env: [API_KEY, DB_*]\n",
        )
        .unwrap();
        let env = &c.apps[0].env;
        let vars = env.interpolation();
        assert_eq!(vars["DB_PASSWORD"], "inline-secret");
        assert_eq!(vars["TOKEN"], "from-env");
        assert_eq!(vars["APP_ENV_TEST_PASSED"], "passed");
        assert!(!vars.contains_key("APP_ENV_TEST_NOT_PASSED"), "not allowed");
        assert!(
            !vars.contains_key("APP_ENV_TEST_UNSET"),
            "allowed but unset"
        );
        assert!(!vars.contains_key("MOORING_TEST_APP_ENV_HOOK"));
        assert!(!format!("{env:?}").contains("inline-secret"));
        let mask = env.masking();
        assert!(mask.masks("URL", "postgres://u:inline-secret@db"));
        assert!(mask.masks("DB_HOST", "db") && mask.masks("API_KEY", "k"));
        assert!(!mask.masks("GREETING", "hello"));
        assert_eq!(
            env.scrub("invalid port \"inline-secret:80\""),
            "invalid port \"***:80\""
        );
        // Without the keys: nothing but the project's `.env`.
        assert!(load("").unwrap().apps[0].env.interpolation().is_empty());
    }

    #[test]
    fn own_secrets_and_bad_names_are_refused_with_positions() {
        std::env::set_var("MOORING_TEST_APP_ENV_HOOK", "hook-secret");
        assert_eq!(
            load("    pass_env: [HOME, MOORING_TEST_APP_ENV_HOOK]\n").unwrap_err(),
            "m.yaml:5:22: apps.a.pass_env: MOORING_TEST_APP_ENV_HOOK is not passed to apps \
             (MOORING_* variables configure Mooring itself); give the app the value it needs \
             under `variables:` instead"
        );
        // A variable another app's source password reads is a secret too.
        std::env::set_var("APP_ENV_TEST_GIT_PASSWORD", "pw");
        let e = load(
            "    pass_env: [APP_ENV_TEST_GIT_PASSWORD]\n  - name: b\n    source: { svn: svn://h/r, username: u, password: env:APP_ENV_TEST_GIT_PASSWORD }\n",
        )
        .unwrap_err();
        assert!(
            e.starts_with("m.yaml:5:16: apps.a.pass_env: APP_ENV_TEST_GIT_PASSWORD is not passed")
                && e.contains("an `env:` value of this configuration reads it"),
            "{e}"
        );
        assert!(load("    pass_env: [\"A B\"]\n")
            .unwrap_err()
            .starts_with("m.yaml:5:15: apps.a.pass_env: \"A B\" is not a variable name"));
        assert!(load("    mask_env: [\"*\"]\n")
            .unwrap_err()
            .contains("neither a variable name nor a prefix"));
        assert!(load("    variables: { 1X: y }\n")
            .unwrap_err()
            .starts_with("m.yaml:5:18: apps.a.variables.1X: not a variable name"));
        assert!(load("    variables: { X: env:APP_ENV_TEST_UNSET_VAR }\n")
            .unwrap_err()
            .contains("APP_ENV_TEST_UNSET_VAR is not set"));
    }
}
