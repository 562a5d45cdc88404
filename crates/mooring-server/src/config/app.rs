//! One entry of `apps`: its name, `source` (see [`super::source`]), `host`, `files`,
//! `sync`, `data`, `policy` and environment (see [`super::app_env`]).

use super::{app_env, positive, source, AppConfig, HostConfig, SyncPolicy};
use mooring_compose::decode::{boolean, check_keys, err, string, string_list, unsigned};
use mooring_compose::yaml::{Node, Value};
use mooring_compose::LoadError;
use mooring_core::policy::{Exception, Policy, Profile, EXCEPTION_FORMS};
use mooring_core::DataPolicy;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

pub(super) fn app(
    n: &Node,
    index: usize,
    hosts: &BTreeMap<String, HostConfig>,
    base: &Path,
) -> Result<AppConfig, LoadError> {
    let what = format!("apps[{index}]");
    check_keys(
        n,
        &what,
        &[
            "name",
            "source",
            "host",
            "files",
            "sync",
            "data",
            "policy",
            "variables",
            "pass_env",
            "mask_env",
            "sops",
        ],
    )?;
    let name_node = n
        .get("name")
        .ok_or_else(|| err(n, format!("{what}: `name` is required")))?;
    let name = string(name_node, &format!("{what}.name"))?;
    if mooring_compose::normalize_project_name(&name) != name || name.is_empty() {
        return Err(err(name_node, format!("{what}.name: {name:?} is not a valid app name (lower-case letters, digits, '-' and '_', starting with a letter or digit)")));
    }
    let what = format!("apps.{name}");
    let source = source::source(n, &what, base)?;
    let host = host(n, &what, hosts)?;
    let files = n
        .get("files")
        .map(|f| string_list(f, &format!("{what}.files")))
        .transpose()?
        .unwrap_or_default();
    let sync = sync_policy(n, &what)?;
    let data = data(n, &what)?;
    let policy = match n.get("policy") {
        Some(p) => policy(p, &format!("{what}.policy"))?,
        None => Policy::default(),
    };
    let env = app_env::parse(n, &what, base)?;
    Ok(AppConfig {
        name,
        source,
        host,
        files,
        sync,
        volumes: data.volumes,
        backup_on_change: data.backup_on_change,
        retention: data.retention,
        policy,
        env,
        sops: mooring_sops::Keys::none(),
    })
}

/// `host`: a declared host; optional when only one is declared.
fn host(n: &Node, what: &str, hosts: &BTreeMap<String, HostConfig>) -> Result<String, LoadError> {
    Ok(match n.get("host") {
        Some(h) => {
            let host = string(h, &format!("{what}.host"))?;
            if !hosts.contains_key(&host) {
                return Err(err(
                    h,
                    format!(
                        "{what}.host: unknown host {host:?} (declared: {})",
                        hosts.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            host
        }
        None if hosts.len() == 1 => hosts.keys().next().cloned().unwrap_or_default(),
        None => {
            return Err(err(
                n,
                format!("{what}: `host` is required when several hosts are declared"),
            ))
        }
    })
}

/// `sync`: `auto`, `self_heal`, `prune`, `interval`, `retry`.
fn sync_policy(n: &Node, what: &str) -> Result<SyncPolicy, LoadError> {
    let mut sync = SyncPolicy {
        auto: true,
        self_heal: true,
        prune: false,
        interval: Duration::from_secs(180),
        retry_limit: 5,
        retry_backoff: Duration::from_secs(5),
        retry_max_backoff: Duration::from_secs(300),
    };
    if let Some(s) = n.get("sync") {
        let sw = format!("{what}.sync");
        check_keys(s, &sw, &["auto", "self_heal", "prune", "interval", "retry"])?;
        let flag = |k: &str, default: bool| {
            s.get(k)
                .map(|v| boolean(v, &format!("{sw}.{k}")))
                .transpose()
                .map(|v| v.unwrap_or(default))
        };
        sync.auto = flag("auto", sync.auto)?;
        sync.self_heal = flag("self_heal", sync.self_heal)?;
        sync.prune = flag("prune", sync.prune)?;
        if let Some(i) = s.get("interval") {
            sync.interval = positive(i, &format!("{sw}.interval"))?;
        }
        if let Some(r) = s.get("retry") {
            let rw = format!("{sw}.retry");
            check_keys(r, &rw, &["limit", "backoff", "max_backoff"])?;
            if let Some(l) = r.get("limit") {
                sync.retry_limit =
                    u32::try_from(unsigned(l, &format!("{rw}.limit"))?).unwrap_or(u32::MAX);
            }
            if let Some(b) = r.get("backoff") {
                sync.retry_backoff = positive(b, &format!("{rw}.backoff"))?;
            }
            if let Some(b) = r.get("max_backoff") {
                sync.retry_max_backoff = positive(b, &format!("{rw}.max_backoff"))?;
            }
        }
    }
    Ok(sync)
}

/// `data`: what an app's volumes get.
struct Data {
    volumes: DataPolicy,
    backup_on_change: bool,
    retention: mooring_core::Retention,
}

/// `data`: `volumes`, `backup`, `retention`.
fn data(n: &Node, what: &str) -> Result<Data, LoadError> {
    let mut volumes = DataPolicy::Protect;
    let mut backup_on_change = false;
    let mut retention = mooring_core::Retention::default();
    if let Some(d) = n.get("data") {
        check_keys(
            d,
            &format!("{what}.data"),
            &["volumes", "backup", "retention"],
        )?;
        if let Some(b) = d.get("backup") {
            backup_on_change =
                mooring_compose::decode::backup_schedule(b, &format!("{what}.data.backup"))?;
        }
        if let Some(r) = d.get("retention") {
            retention = mooring_compose::decode::retention(r, &format!("{what}.data.retention"))?;
        }
        if let Some(v) = d.get("volumes") {
            let text = string(v, &format!("{what}.data.volumes"))?;
            volumes = DataPolicy::parse(&text).ok_or_else(|| {
                err(
                    v,
                    format!("{what}.data.volumes: {text:?} (use protect or backup-then-delete)"),
                )
            })?;
        }
    }
    Ok(Data {
        volumes,
        backup_on_change,
        retention,
    })
}

/// `policy: baseline` or `policy: { profile: restricted, allow: [docker_socket, …] }`.
fn policy(n: &Node, what: &str) -> Result<Policy, LoadError> {
    let profile_of = |p: &Node, what: &str| -> Result<Profile, LoadError> {
        let text = string(p, what)?;
        Profile::parse(&text).ok_or_else(|| {
            err(
                p,
                format!(
                    "{what}: unknown profile {text:?} (use baseline, restricted or privileged)"
                ),
            )
        })
    };
    if let Value::Scalar { .. } = n.value {
        return Ok(Policy {
            profile: profile_of(n, what)?,
            allow: vec![],
        });
    }
    check_keys(n, what, &["profile", "allow"])?;
    let profile = match n.get("profile") {
        Some(p) => profile_of(p, &format!("{what}.profile"))?,
        None => Profile::default(),
    };
    let mut allow = Vec::new();
    if let Some(a) = n.get("allow") {
        let aw = format!("{what}.allow");
        let Value::Seq(items) = &a.value else {
            return Err(err(
                a,
                format!("{aw} must be a list of exceptions ({EXCEPTION_FORMS})"),
            ));
        };
        for item in items {
            let text = string(item, &aw)?;
            let e = Exception::parse(&text).map_err(|e| err(item, format!("{aw}: {e}")))?;
            if !allow.contains(&e) {
                allow.push(e);
            }
        }
    }
    Ok(Policy { profile, allow })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse_err, parse_ok};
    use mooring_core::policy::{Exception, Policy, Profile};
    use mooring_core::DataPolicy;

    #[test]
    fn policies_and_allowed_refs() {
        let c = parse_ok(
            "apps:\n  - name: a\n    source: { git: https://h/r.git, allow_refs: [release/*, v1] }\n    policy: restricted\n  - name: b\n    source: { dir: x }\n    policy: { allow: [docker_socket, \"host_path:/srv/media\", \"cap:net_admin\"] }\n  - name: c\n    source: { dir: x }\n",
        );
        assert_eq!(c.apps[0].policy.profile, Profile::Restricted);
        assert_eq!(c.apps[0].source.allow_refs, ["release/*", "v1"]);
        assert_eq!(c.apps[1].policy.profile, Profile::Baseline);
        assert_eq!(
            c.apps[1].policy.allow,
            [
                Exception::DockerSocket,
                Exception::HostPath("/srv/media".into()),
                Exception::Cap("NET_ADMIN".into())
            ]
        );
        assert_eq!(c.apps[2].policy, Policy::default());
        for (text, expected) in [
            ("policy: root", "mooring.yaml:4:13: apps.a.policy: unknown profile \"root\" (use baseline, restricted or privileged)"),
            ("policy: { profile: x }", "mooring.yaml:4:24: apps.a.policy.profile: unknown profile \"x\""),
            ("policy: { allow: [sudo] }", "mooring.yaml:4:23: apps.a.policy.allow: policy exception \"sudo\": unknown; use one of docker_socket"),
            ("policy: { allow: [\"host_path:srv\"] }", "the host path must be absolute"),
            ("policy: { allow: docker_socket }", "apps.a.policy.allow must be a list"),
            ("policy: { deny: [x] }", "key `deny` is not supported"),
        ] {
            let e = parse_err(&format!("apps:\n  - name: a\n    source: {{ dir: x }}\n    {text}\n"));
            assert!(e.contains(expected), "{text}: {e}");
        }
        let e = parse_err("apps:\n  - name: a\n    source: { dir: x, allow_refs: [main] }\n");
        assert!(e.contains("a plain folder has no refs"), "{e}");
        let e = parse_err(
            "apps:\n  - name: a\n    source: { git: https://h/r.git, allow_refs: [\"a*b\"] }\n",
        );
        assert!(e.contains("not a ref name or `prefix*` pattern"), "{e}");
    }

    #[test]
    fn data_backups_and_retention() {
        let c = parse_ok(
            "apps:\n  - name: a\n    source: { dir: x }\n    data: { volumes: backup-then-delete, backup: on-change, retention: { keep: 3, older_than: 30d } }\n  - name: b\n    source: { dir: y }\n",
        );
        assert!(c.apps[0].backup_on_change);
        assert_eq!(c.apps[0].retention.keep, Some(3));
        assert_eq!(c.apps[0].retention.older_than_secs, Some(30 * 86_400));
        assert!(!c.apps[1].backup_on_change);
        assert!(c.apps[1].retention.is_empty());
        let app = "apps:\n  - name: a\n    source: { dir: x }\n    data: ";
        assert_eq!(
            parse_err(&format!("{app}{{ backup: always }}\n")),
            "mooring.yaml:4:21: apps.a.data.backup: \"always\" (use on-change or never)"
        );
        assert_eq!(
            parse_err(&format!("{app}{{ retention: {{ keep: 0 }} }}\n")),
            "mooring.yaml:4:32: apps.a.data.retention.keep must be at least 1 (the newest backup is always kept)"
        );
        assert!(
            parse_err(&format!("{app}{{ retention: {{ older_than: 1y }} }}\n"))
                .starts_with("mooring.yaml:4:38: apps.a.data.retention.older_than: \"1y\"")
        );
        assert!(
            parse_err(&format!("{app}{{ retention: {{ count: 1 }} }}\n")).starts_with(
                "mooring.yaml:4:26: apps.a.data.retention: key `count` is not supported"
            )
        );
    }

    #[test]
    fn data_volumes_is_a_data_policy() {
        let app = "apps:\n  - name: a\n    source: { dir: x }\n";
        assert_eq!(parse_ok(app).apps[0].volumes, DataPolicy::Protect);
        let c = parse_ok(&format!(
            "{app}    data: {{ volumes: backup-then-delete }}\n"
        ));
        assert_eq!(c.apps[0].volumes, DataPolicy::BackupThenDelete);
        assert_eq!(
            parse_err(&format!("{app}    data: {{ volumes: delete }}\n")),
            "mooring.yaml:4:22: apps.a.data.volumes: \"delete\" (use protect or backup-then-delete)"
        );
    }
}
