//! `sops:` — the identities that decrypt an app's SOPS files, at the top level
//! (every app) and per app (added to those): `sops: { age: [KEY…], gnupg_home: PATH }`,
//! each age key a [`Secret`](super::Secret) (inline `AGE-SECRET-KEY-1…`, `file:PATH`
//! holding one or more, or `env:NAME`), the GnuPG home a folder holding PGP secret
//! keys (relative to the configuration's folder); checked at load with positions. The process's
//! `SOPS_AGE_KEY`/`SOPS_AGE_KEY_FILE` are added at render time
//! (`mooring_sops::Keys::from_environment`).

use super::secret;
use mooring_compose::decode::{check_keys, err, string};
use mooring_compose::yaml::{Node, Value};
use mooring_compose::LoadError;
use mooring_sops::Keys;
use std::path::Path;

/// Adds the identities of the `sops` entry of `n` (if any) to `keys`.
pub(super) fn parse(n: &Node, what: &str, base: &Path, keys: &mut Keys) -> Result<(), LoadError> {
    let Some(s) = n.get("sops") else {
        return Ok(());
    };
    let what = format!("{what}sops");
    check_keys(s, &what, &["age", "gnupg_home"])?;
    if let Some(h) = s.get("gnupg_home") {
        let home = base.join(string(h, &format!("{what}.gnupg_home"))?);
        if !home.is_dir() {
            return Err(err(
                h,
                format!("{what}.gnupg_home: {} is not a folder (a GnuPG home holding the PGP secret keys)", home.display()),
            ));
        }
        keys.use_gnupg(Some(home));
    }
    let Some(age) = s.get("age") else {
        return Ok(());
    };
    let items: Vec<&Node> = match &age.value {
        Value::Seq(items) => items.iter().collect(),
        _ => vec![age],
    };
    for (i, item) in items.into_iter().enumerate() {
        let w = format!("{what}.age[{i}]");
        let value = secret(item, &w, base)?;
        keys.add_age(value.expose(), &w).map_err(|e| err(item, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse_err, parse_ok};

    // A real identity (made for this test with age-keygen; it protects nothing).
    const KEY: &str = "AGE-SECRET-KEY-15J0J5573YMUXZZV42TYJVY78HXLJSAU7PSNY82RES5KEPSQY8D7SHQRMU2";

    #[test]
    fn identities_at_the_top_and_per_app_are_checked_with_positions() {
        let app = "apps:\n  - name: a\n    source: { dir: /tmp }\n";
        let cfg = parse_ok(&format!("sops:\n  age: [\"{KEY}\"]\n{app}"));
        assert_eq!(cfg.sops.recipients().len(), 1);
        assert_eq!(
            cfg.apps[0].sops, cfg.sops,
            "every app has the top-level identities"
        );

        let e = parse_err(&format!("sops:\n  age: [\"AGE-SECRET-KEY-1nope\"]\n{app}"));
        assert!(
            e.starts_with("mooring.yaml:2:9: sops.age[0]: line 1 is not an age identity"),
            "{e}"
        );
        assert!(!e.contains("nope"), "an error never repeats key text: {e}");
        let e = parse_err(&format!("{app}    sops: {{ kms: [x] }}\n"));
        assert!(e.contains("apps.a.sops: key `kms` is not supported"), "{e}");
        // SOPS's key variables are the daemon's own secrets: no app may read them.
        let e = parse_err(&format!("{app}    pass_env: [SOPS_AGE_KEY_FILE]\n"));
        assert!(e.contains("SOPS_AGE_KEY_FILE"), "{e}");
    }
}
