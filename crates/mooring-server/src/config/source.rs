//! An app's `source`: its kind (`git`, `svn`, `hg`, `dir`), location, `ref` and
//! `path`, credentials (`username`/`password`, `ssh_key`, `known_hosts`, checked now),
//! `verify`, `allow_refs` and `timeout` — and the [`SourceSpec`] built from them, once.

use super::{positive, secret, SourceConfig, SourceKind, VerifyConfig};
use mooring_compose::decode::{check_keys, err, string, string_list};
use mooring_compose::yaml::Node;
use mooring_compose::LoadError;
use mooring_vcs::{KnownHosts, SourceError, SourceSpec, SshKey, VerifyMode};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `apps[].source` of app `app` (`what` = `apps.NAME`).
pub(super) fn source(app: &Node, what: &str, base: &Path) -> Result<SourceConfig, LoadError> {
    let src = app
        .get("source")
        .ok_or_else(|| err(app, format!("{what}: `source` is required")))?;
    let sw = format!("{what}.source");
    check_keys(
        src,
        &sw,
        &[
            "git",
            "svn",
            "hg",
            "dir",
            "ref",
            "path",
            "username",
            "password",
            "ssh_key",
            "known_hosts",
            "verify",
            "allow_refs",
            "timeout",
        ],
    )?;
    let (kind, location) = kind_and_location(src, &sw, base)?;
    let reference = src
        .get("ref")
        .map(|r| string(r, &format!("{sw}.ref")))
        .transpose()?;
    if kind == SourceKind::Dir && reference.is_some() {
        return Err(err(src, format!("{sw}: a `dir` source has no `ref`")));
    }
    let path = folder(src, &sw)?;
    let username = src
        .get("username")
        .map(|u| secret(u, &format!("{sw}.username"), base))
        .transpose()?;
    let password = src
        .get("password")
        .map(|p| secret(p, &format!("{sw}.password"), base))
        .transpose()?;
    let ssh_key = src
        .get("ssh_key")
        .map(|k| ssh_key(k, &format!("{sw}.ssh_key"), base))
        .transpose()?;
    let known_hosts = src
        .get("known_hosts")
        .map(|k| known_hosts(k, &format!("{sw}.known_hosts"), base))
        .transpose()?;
    let spec = spec_of(kind, &location, &reference);
    for (key, given) in [
        ("ssh_key", ssh_key.is_some()),
        ("known_hosts", known_hosts.is_some()),
    ] {
        if given && !spec.uses_ssh() {
            return Err(err(
                src.get(key).unwrap_or(src),
                format!(
                    "{sw}.{key}: this source is not reached over SSH; `{key}` needs an SSH URL \
                     (git: ssh://… or user@host:path, svn: svn+ssh://…, hg: ssh://…)"
                ),
            ));
        }
    }
    let verify = match src.get("verify") {
        None => None,
        Some(v) => Some(verify_config(v, &format!("{sw}.verify"), kind, base)?),
    };
    let allow_refs = match src.get("allow_refs") {
        Some(r) => allow_refs(r, &format!("{sw}.allow_refs"), kind)?,
        None => vec![],
    };
    let timeout = timeout(src, &sw, kind)?;
    Ok(SourceConfig {
        kind,
        location,
        reference,
        spec,
        path,
        username,
        password,
        ssh_key,
        known_hosts,
        verify,
        allow_refs,
        timeout,
    })
}

/// Exactly one of `git`, `svn`, `hg`, `dir`, and its URL or folder (absolute).
fn kind_and_location(src: &Node, sw: &str, base: &Path) -> Result<(SourceKind, String), LoadError> {
    let kinds = [
        ("git", SourceKind::Git),
        ("svn", SourceKind::Svn),
        ("hg", SourceKind::Hg),
        ("dir", SourceKind::Dir),
    ];
    let given: Vec<_> = kinds.iter().filter(|(k, _)| src.get(k).is_some()).collect();
    let [(key, kind)] = given.as_slice() else {
        return Err(err(
            src,
            format!("{sw}: give exactly one of `git`, `svn`, `hg` or `dir`"),
        ));
    };
    let kind = *kind;
    let raw = string(src.get(key).unwrap_or(src), &format!("{sw}.{key}"))?;
    let location = if kind == SourceKind::Dir {
        base.join(raw).to_string_lossy().to_string()
    } else {
        raw
    };
    Ok((kind, location))
}

/// The [`SourceSpec`] of a source: built here, once.
fn spec_of(kind: SourceKind, location: &str, reference: &Option<String>) -> SourceSpec {
    let (url, reference) = (location.to_string(), reference.clone());
    match kind {
        SourceKind::Git => SourceSpec::Git { url, reference },
        SourceKind::Svn => SourceSpec::Svn { url, reference },
        SourceKind::Hg => SourceSpec::Hg { url, reference },
        SourceKind::Dir => SourceSpec::Dir {
            path: PathBuf::from(url),
        },
    }
}

/// `path`: a folder inside the repository (default: its root).
fn folder(src: &Node, sw: &str) -> Result<String, LoadError> {
    let path = src
        .get("path")
        .map(|p| string(p, &format!("{sw}.path")))
        .transpose()?
        .unwrap_or_default();
    if path.split('/').any(|c| c == "..") || path.starts_with('/') {
        return Err(err(
            src.get("path").unwrap_or(src),
            format!("{sw}.path must be a folder inside the repository"),
        ));
    }
    Ok(path)
}

/// `timeout`: a bound for the source's tool processes (not for plain folders).
fn timeout(src: &Node, sw: &str, kind: SourceKind) -> Result<Option<Duration>, LoadError> {
    Ok(match src.get("timeout") {
        None => None,
        Some(_) if kind == SourceKind::Dir => {
            return Err(err(
                src,
                format!("{sw}.timeout: a plain folder runs no tool to bound; remove it"),
            ))
        }
        Some(t) => Some(positive(t, &format!("{sw}.timeout"))?),
    })
}

/// `ssh_key`: `file:PATH` (relative to the config's folder; the file is used in
/// place), `env:NAME` or the key inline (a block scalar); checked now.
pub(super) fn ssh_key(n: &Node, what: &str, base: &Path) -> Result<SshKey, LoadError> {
    let raw = string(n, what)?;
    let key = if let Some(path) = raw.strip_prefix("file:") {
        SshKey::File(base.join(path))
    } else if let Some(name) = raw.strip_prefix("env:") {
        SshKey::Value(std::env::var(name).map_err(|_| {
            err(
                n,
                format!("{what}: environment variable {name} is not set (it should hold the private key)"),
            )
        })?)
    } else if raw.contains("PRIVATE KEY-----") {
        SshKey::Value(raw)
    } else {
        return Err(err(
            n,
            format!(
                "{what}: not a private key; use `file:PATH` for a key file, `env:NAME` for an \
                 environment variable holding the key, or the key itself as a block scalar (|)"
            ),
        ));
    };
    key.check()
        .map_err(|e| err(n, format!("{what}: {}", reason_of(e))))?;
    Ok(key)
}

/// `known_hosts`: `accept-new`, or a file (relative to the config's folder) that
/// must be readable now.
pub(super) fn known_hosts(n: &Node, what: &str, base: &Path) -> Result<KnownHosts, LoadError> {
    let raw = string(n, what)?;
    if raw.is_empty() {
        return Err(err(
            n,
            format!("{what} is empty (give a known_hosts file or accept-new)"),
        ));
    }
    let known = KnownHosts::parse(&raw, base);
    known
        .check()
        .map_err(|e| err(n, format!("{what}: {}", reason_of(e))))?;
    Ok(known)
}

/// The reason of a credentials error, without its "invalid credentials" prefix.
fn reason_of(e: SourceError) -> String {
    match e {
        SourceError::InvalidCredentials { reason } => reason,
        other => other.to_string(),
    }
}

/// `source.allow_refs`: branch and tag names or `prefix*` patterns.
fn allow_refs(n: &Node, what: &str, kind: SourceKind) -> Result<Vec<String>, LoadError> {
    if matches!(kind, SourceKind::Dir) {
        return Err(err(n, format!("{what}: a plain folder has no refs")));
    }
    let refs = string_list(n, what)?;
    for r in &refs {
        let body = r.strip_suffix('*').unwrap_or(r);
        if (body.is_empty() && r != "*")
            || body.contains('*')
            || body.starts_with('-')
            || body.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(err(
                n,
                format!("{what}: {r:?} is not a ref name or `prefix*` pattern"),
            ));
        }
    }
    Ok(refs)
}

fn verify_config(
    v: &Node,
    vw: &str,
    kind: SourceKind,
    base: &Path,
) -> Result<VerifyConfig, LoadError> {
    if kind != SourceKind::Git {
        return Err(err(
            v,
            format!("{vw}: commit verification is only available for Git sources"),
        ));
    }
    check_keys(v, vw, &["mode", "keys"])?;
    let mode = match v.get("mode") {
        None => VerifyMode::Head,
        Some(m) => {
            let text = string(m, &format!("{vw}.mode"))?;
            verify_mode(&text)
                .ok_or_else(|| err(m, format!("{vw}.mode: {text:?} (use head, tag or any)")))?
        }
    };
    let keys_node = v
        .get("keys")
        .ok_or_else(|| err(v, format!("{vw}: `keys` is required (files with OpenPGP public keys or SSH allowed-signers lines)")))?;
    let mut keys = Vec::new();
    for file in string_list(keys_node, &format!("{vw}.keys"))? {
        let p = base.join(&file);
        let text = std::fs::read_to_string(&p).map_err(|e| {
            err(
                keys_node,
                format!("{vw}.keys: cannot read {}: {e}", p.display()),
            )
        })?;
        keys.push(text);
    }
    if keys.is_empty() {
        return Err(err(
            keys_node,
            format!("{vw}.keys: at least one key is needed"),
        ));
    }
    Ok(VerifyConfig { mode, keys })
}

/// `head`, `tag` or `any`.
fn verify_mode(text: &str) -> Option<VerifyMode> {
    match text {
        "head" => Some(VerifyMode::Head),
        "tag" => Some(VerifyMode::Tag),
        "any" => Some(VerifyMode::Any),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use mooring_vcs::{KnownHosts, SourceSpec, SshKey, VerifyMode};

    #[test]
    fn ssh_keys_are_checked_at_load() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("deploy_key");
        std::fs::write(
            &key,
            "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
        )
        .unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(
            dir.path().join("known_hosts"),
            "[h]:2222 ssh-ed25519 AAAA\n",
        )
        .unwrap();
        let app = |source: &str| format!("apps:\n  - name: a\n    source: {source}\n");
        let load = |source: &str| parse(&app(source), "m.yaml", dir.path());

        let c = load(
            "{ git: ssh://git@h:2222/r.git, ssh_key: file:deploy_key, known_hosts: known_hosts }",
        )
        .unwrap();
        let src = &c.apps[0].source;
        assert_eq!(
            src.ssh_key,
            Some(SshKey::File(dir.path().join("deploy_key")))
        );
        assert_eq!(
            src.known_hosts,
            Some(KnownHosts::File(dir.path().join("known_hosts")))
        );
        let c = load("{ svn: svn+ssh://h/r, ssh_key: file:deploy_key, known_hosts: accept-new }")
            .unwrap();
        assert_eq!(c.apps[0].source.known_hosts, Some(KnownHosts::AcceptNew));
        let inline = "\n      git: git@h:r.git\n      ssh_key: |\n        -----BEGIN OPENSSH PRIVATE KEY-----\n        AAAA\n        -----END OPENSSH PRIVATE KEY-----";
        let c = load(inline).unwrap();
        assert!(matches!(c.apps[0].source.ssh_key, Some(SshKey::Value(_))));
        assert_eq!(
            format!("{:?}", c.apps[0].source.ssh_key),
            "Some(Value(***))"
        );

        let e = load("{ hg: ssh://h//r, ssh_key: file:nope }")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("m.yaml:3:40: apps.a.source.ssh_key: cannot read the ssh key file")
                && e.contains("nope"),
            "{e}"
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load("{ git: ssh://h/r, ssh_key: file:deploy_key }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = load("{ git: https://h/r, ssh_key: file:deploy_key }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not reached over SSH"), "{e}");
        let e = load("{ git: ssh://h/r, ssh_key: ~/.ssh/id_ed25519 }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("use `file:PATH`"), "{e}");
        let e = load("{ git: ssh://h/r, ssh_key: env:MOORING_TEST_UNSET_KEY }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("MOORING_TEST_UNSET_KEY is not set"), "{e}");
        let two = "apps:\n  - name: a\n    source: { git: ssh://h/r, ssh_key: file:deploy_key }\n  - name: b\n    source: { git: ssh://h/r }\n";
        let e = parse(two, "m.yaml", dir.path()).unwrap_err().to_string();
        assert!(
            e.starts_with("m.yaml:5:13: apps.b.source: the same repository and ref as app a"),
            "{e}"
        );
        let e = load("{ git: ssh://h/r, known_hosts: missing_hosts }")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "m.yaml:3:44: apps.a.source.known_hosts: cannot read the known_hosts file"
            ),
            "{e}"
        );
    }

    #[test]
    fn verify_mode_and_spec_are_typed_at_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ops.asc"),
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n",
        )
        .unwrap();
        let load = |source: &str| {
            parse(
                &format!("apps:\n  - name: a\n    source: {source}\n"),
                "m.yaml",
                dir.path(),
            )
        };
        for (mode, expected) in [
            ("", VerifyMode::Head),
            ("mode: head, ", VerifyMode::Head),
            ("mode: tag, ", VerifyMode::Tag),
            ("mode: any, ", VerifyMode::Any),
        ] {
            let c = load(&format!(
                "{{ git: https://h/r.git, ref: main, verify: {{ {mode}keys: [ops.asc] }} }}"
            ))
            .unwrap();
            let src = &c.apps[0].source;
            assert_eq!(src.verify.as_ref().unwrap().mode, expected, "{mode}");
            assert_eq!(
                src.spec,
                SourceSpec::Git {
                    url: "https://h/r.git".into(),
                    reference: Some("main".into())
                }
            );
        }
        let e = load("{ git: https://h/r.git, verify: { mode: heads, keys: [ops.asc] } }")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "m.yaml:3:53: apps.a.source.verify.mode: \"heads\" (use head, tag or any)"
        );
        let c = load("{ dir: site }").unwrap();
        assert_eq!(
            c.apps[0].source.spec,
            SourceSpec::Dir {
                path: dir.path().canonicalize().unwrap().join("site")
            }
        );
    }
}
