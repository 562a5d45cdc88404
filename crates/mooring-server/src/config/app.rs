//! One entry of `apps`: its name, `source` (see [`super::source`]), `host` or `hosts`
//! (with `per_host` values), `files`, `sync`, `data`, `policy` and environment (see
//! [`super::app_env`]).

use super::{app_env, positive, source, AppConfig, HostConfig, Secret, SyncPolicy};
use mooring_compose::decode::{boolean, check_keys, err, string, string_list, unsigned};
use mooring_compose::yaml::{Node, Value};
use mooring_compose::LoadError;
use mooring_core::policy::{Exception, Policy, Profile, EXCEPTION_FORMS};
use mooring_core::{Consistency, ConsistentBackup, DataPolicy};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Where an app is deployed, and its values per host.
pub(super) struct Targets {
    /// The hosts, in the order given (a selector: by name).
    pub hosts: Vec<String>,
    /// `hosts:` was given (a list or a selector): one instance per host, `NAME@HOST`.
    pub several: bool,
    /// `per_host.HOST.variables`: the values of the app on that host (they win).
    pub per_host: BTreeMap<String, BTreeMap<String, Secret>>,
}

pub(super) fn app(
    n: &Node,
    index: usize,
    hosts: &BTreeMap<String, HostConfig>,
    base: &Path,
) -> Result<(AppConfig, Targets), LoadError> {
    let what = format!("apps[{index}]");
    check_keys(
        n,
        &what,
        &[
            "name",
            "source",
            "host",
            "hosts",
            "per_host",
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
    let targets = targets(n, &what, hosts, base)?;
    let files = n
        .get("files")
        .map(|f| string_list(f, &format!("{what}.files")))
        .transpose()?
        .unwrap_or_default();
    let sync = sync_policy(n, &what)?;
    if sync.rollback.is_some() && source.kind == super::SourceKind::Dir {
        let at = n.get("sync").and_then(|s| s.get("rollback")).unwrap_or(n);
        return Err(err(at, format!("{what}.sync.rollback: a plain folder keeps no earlier revision to roll back to; use a Git, Subversion or Mercurial source")));
    }
    let data = data(n, &what)?;
    if let Some(h) = targets
        .hosts
        .iter()
        .find(|h| hosts.get(*h).is_some_and(|h| h.swarm))
    {
        if let Some(c) = n.get("data").and_then(|d| d.get("consistent")) {
            return Err(err(c, format!("{what}.data.consistent: host {h} is a Swarm (mode: swarm), where a stack's volumes are backed up on each node with their tasks paused; dumps and hooks run only on Engine hosts")));
        }
    }
    let policy = match n.get("policy") {
        Some(p) => policy(p, &format!("{what}.policy"))?,
        None => Policy::default(),
    };
    let env = app_env::parse(n, &what, base)?;
    Ok((
        AppConfig {
            project: name.clone(),
            name,
            source,
            host: targets.hosts.first().cloned().unwrap_or_default(),
            several_hosts: targets.several,
            files,
            sync,
            volumes: data.volumes,
            backup_on_change: data.backup_on_change,
            restore_on_rollback: data.restore_on_rollback,
            consistent: data.consistent,
            copy_to: data.copy_to,
            backup_max_age: data.backup_max_age,
            retention: data.retention,
            policy,
            env,
            sops: mooring_sops::Keys::none(),
        },
        targets,
    ))
}

/// `host: a` (one), or `hosts: [a, b]` / `hosts: { labels: { role: edge } }` (several),
/// with `per_host: { a: { variables: {…} } }`.
fn targets(
    n: &Node,
    what: &str,
    hosts: &BTreeMap<String, HostConfig>,
    base: &Path,
) -> Result<Targets, LoadError> {
    let declared = || hosts.keys().cloned().collect::<Vec<_>>().join(", ");
    let Some(h) = n.get("hosts") else {
        if let Some(p) = n.get("per_host") {
            return Err(err(
                p,
                format!(
                    "{what}.per_host: values per host are for an app with `hosts:` (several hosts)"
                ),
            ));
        }
        return Ok(Targets {
            hosts: vec![host(n, what, hosts)?],
            several: false,
            per_host: BTreeMap::new(),
        });
    };
    let hw = format!("{what}.hosts");
    if n.get("host").is_some() {
        return Err(err(
            h,
            format!("{hw}: give `host` (one) or `hosts` (several), not both"),
        ));
    }
    let mut chosen: Vec<String> = Vec::new();
    match &h.value {
        Value::Seq(items) => {
            for item in items {
                let name = string(item, &hw)?;
                if !hosts.contains_key(&name) {
                    return Err(err(
                        item,
                        format!("{hw}: unknown host {name:?} (declared: {})", declared()),
                    ));
                }
                if chosen.contains(&name) {
                    return Err(err(item, format!("{hw}: host {name:?} is named twice")));
                }
                chosen.push(name);
            }
        }
        Value::Map(_) => {
            check_keys(h, &hw, &["labels"])?;
            let l = h.get("labels").ok_or_else(|| {
                err(
                    h,
                    format!("{hw}: a selector is `{{ labels: {{ KEY: VALUE }} }}`"),
                )
            })?;
            let mut wanted = Vec::new();
            for (k, v) in mooring_compose::decode::entries(l, &format!("{hw}.labels"))? {
                let key = mooring_compose::decode::key_of(k).to_string();
                wanted.push((key.clone(), string(v, &format!("{hw}.labels.{key}"))?));
            }
            chosen = hosts
                .iter()
                .filter(|(_, c)| wanted.iter().all(|(k, v)| c.labels.get(k) == Some(v)))
                .map(|(name, _)| name.clone())
                .collect();
        }
        _ => {
            return Err(err(
                h,
                format!("{hw}: a list of hosts or `{{ labels: {{ KEY: VALUE }} }}`"),
            ))
        }
    }
    if chosen.is_empty() {
        return Err(err(
            h,
            format!(
                "{hw}: names no host (declared: {}); the app would run nowhere",
                declared()
            ),
        ));
    }
    let mut per_host = BTreeMap::new();
    if let Some(p) = n.get("per_host") {
        let pw = format!("{what}.per_host");
        for (k, v) in mooring_compose::decode::entries(p, &pw)? {
            let host = mooring_compose::decode::key_of(k).to_string();
            if !chosen.contains(&host) {
                return Err(err(
                    k,
                    format!(
                        "{pw}.{host}: the app is not deployed there (its hosts: {})",
                        chosen.join(", ")
                    ),
                ));
            }
            let w = format!("{pw}.{host}");
            check_keys(v, &w, &["variables"])?;
            per_host.insert(host, app_env::variables(v, &w, base)?);
        }
    }
    Ok(Targets {
        hosts: chosen,
        several: true,
        per_host,
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
        rollback: None,
    };
    if let Some(s) = n.get("sync") {
        let sw = format!("{what}.sync");
        check_keys(
            s,
            &sw,
            &[
                "auto",
                "self_heal",
                "prune",
                "interval",
                "retry",
                "rollback",
            ],
        )?;
        if let Some(r) = s.get("rollback") {
            let rw = format!("{sw}.rollback");
            check_keys(r, &rw, &["on_failure", "health_timeout"])?;
            let on = r
                .get("on_failure")
                .map(|v| boolean(v, &format!("{rw}.on_failure")))
                .transpose()?
                .unwrap_or(false);
            let timeout = match r.get("health_timeout") {
                Some(t) => positive(t, &format!("{rw}.health_timeout"))?,
                None => Duration::from_secs(120),
            };
            sync.rollback = on.then_some(timeout);
        }
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
    restore_on_rollback: Vec<String>,
    consistent: BTreeMap<String, ConsistentBackup>,
    copy_to: Vec<String>,
    backup_max_age: Option<Duration>,
    retention: mooring_core::Retention,
}

/// `data`: `volumes`, `backup`, `retention`.
fn data(n: &Node, what: &str) -> Result<Data, LoadError> {
    let mut volumes = DataPolicy::Protect;
    let mut backup_on_change = false;
    let mut retention = mooring_core::Retention::default();
    let mut restore_on_rollback = Vec::new();
    let mut backup_max_age = None;
    let mut consistent = BTreeMap::new();
    let mut copy_to = Vec::new();
    if let Some(d) = n.get("data") {
        check_keys(
            d,
            &format!("{what}.data"),
            &[
                "volumes",
                "backup",
                "retention",
                "restore_on_rollback",
                "backup_max_age",
                "consistent",
                "copy_to",
            ],
        )?;
        if let Some(c) = d.get("copy_to") {
            copy_to = string_list(c, &format!("{what}.data.copy_to"))?;
        }
        if let Some(c) = d.get("consistent") {
            consistent = consistent_backups(c, &format!("{what}.data.consistent"))?;
        }
        if let Some(a) = d.get("backup_max_age") {
            backup_max_age = Some(positive(a, &format!("{what}.data.backup_max_age"))?);
        }
        if let Some(r) = d.get("restore_on_rollback") {
            restore_on_rollback = mooring_compose::decode::string_list(
                r,
                &format!("{what}.data.restore_on_rollback"),
            )?;
            if n.get("sync").and_then(|s| s.get("rollback")).is_none() {
                return Err(err(
                    r,
                    format!("{what}.data.restore_on_rollback: restores on an automatic rollback, which needs `sync: {{ rollback: {{ on_failure: true }} }}`"),
                ));
            }
        }
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
        restore_on_rollback,
        consistent,
        copy_to,
        backup_max_age,
        retention,
    })
}

/// `data.consistent: { VOLUME: { service, dump, load } | { service, before, after } }`:
/// the volumes backed up while their service runs.
fn consistent_backups(
    n: &Node,
    what: &str,
) -> Result<BTreeMap<String, ConsistentBackup>, LoadError> {
    let Value::Map(entries) = &n.value else {
        return Err(err(
            n,
            format!("{what} must map volumes (Compose keys or Docker names) to {{ service, dump, load }} or {{ service, before, after }}"),
        ));
    };
    let mut out = BTreeMap::new();
    for (k, v) in entries {
        let volume = string(k, what)?;
        let at = format!("{what}.{volume}");
        check_keys(v, &at, &["service", "dump", "load", "before", "after"])?;
        let service = match v.get("service") {
            Some(s) => string(s, &format!("{at}.service"))?,
            None => return Err(err(v, format!("{at}: `service` is missing: the Compose service whose running container runs the commands"))),
        };
        let command = |key: &str| -> Result<Option<Vec<String>>, LoadError> {
            let Some(c) = v.get(key) else { return Ok(None) };
            let list = string_list(c, &format!("{at}.{key}"))?;
            if list.is_empty() || list[0].is_empty() {
                return Err(err(
                    c,
                    format!("{at}.{key}: a command as a list, e.g. [pg_dump, -U, app, app] (run as docker exec runs it; [sh, -c, \"…\"] for a shell)"),
                ));
            }
            Ok(Some(list))
        };
        let way = match (
            command("dump")?,
            command("load")?,
            command("before")?,
            command("after")?,
        ) {
            (Some(dump), Some(load), None, None) => Consistency::Dump { dump, load },
            (None, None, Some(before), after) => Consistency::Hooks {
                before,
                after: after.unwrap_or_default(),
            },
            (Some(_), None, None, None) => {
                return Err(err(v, format!("{at}: `load` is missing: the command a restore gives the dump to, on its input")))
            }
            (None, Some(_), None, None) => {
                return Err(err(v, format!("{at}: `dump` is missing: the command whose output is the backup")))
            }
            (None, None, None, Some(_)) => {
                return Err(err(v, format!("{at}: `after` needs `before`")))
            }
            (None, None, None, None) => {
                return Err(err(v, format!("{at}: give `dump` and `load` (the backup is the dump's output), or `before` (and `after`) around a copy of the files")))
            }
            _ => {
                return Err(err(v, format!("{at}: either `dump` and `load`, or `before` and `after`, not both")))
            }
        };
        out.insert(volume, ConsistentBackup { service, way });
    }
    Ok(out)
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
    use mooring_core::{Consistency, ConsistentBackup};
    use std::time::Duration;

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
    fn an_app_on_several_hosts_is_one_instance_per_host() {
        let hosts = "hosts:\n  a: { docker: \"tcp://127.0.0.1:2375\", labels: { role: edge }, variables: { TIER: gold, SITE: from-host } }\n  b: { docker: \"tcp://127.0.0.1:2376\", labels: { role: edge } }\n  c: { docker: \"unix:///c.sock\" }\n";
        let c = parse_ok(&format!(
            "{hosts}apps:\n  - name: web\n    hosts: {{ labels: {{ role: edge }} }}\n    source: {{ dir: x }}\n    variables: {{ SITE: main }}\n    per_host: {{ b: {{ variables: {{ SITE: bee }} }} }}\n  - name: one\n    host: c\n    source: {{ dir: x }}\n"
        ));
        let names: Vec<(&str, &str, &str)> = c
            .apps
            .iter()
            .map(|a| (a.name.as_str(), a.project.as_str(), a.host.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("web@a", "web", "a"),
                ("web@b", "web", "b"),
                ("one", "one", "c")
            ]
        );
        assert!(c.apps[0].several_hosts && !c.apps[2].several_hosts);
        let vars = |i: usize| -> Vec<(String, String)> {
            c.apps[i]
                .env
                .variables
                .iter()
                .map(|(k, v)| (k.clone(), v.expose().to_string()))
                .collect()
        };
        // The most specific wins: host < app < app on that host.
        assert_eq!(
            vars(0),
            [
                ("SITE".into(), "main".into()),
                ("TIER".into(), "gold".into())
            ]
        );
        assert_eq!(vars(1), [("SITE".into(), "bee".into())]);
        let list = parse_ok(&format!(
            "{hosts}apps:\n  - name: web\n    hosts: [c, a]\n    source: {{ dir: x }}\n"
        ));
        assert_eq!(list.apps[0].name, "web@c");
        assert_eq!(list.apps[1].name, "web@a");

        let app = "apps:\n  - name: web\n    source: { dir: x }\n    ";
        for (text, expected) in [
            (
                "hosts: [a, z]",
                "apps.web.hosts: unknown host \"z\" (declared: a, b, c)",
            ),
            ("hosts: [a, a]", "host \"a\" is named twice"),
            (
                "hosts: { labels: { role: core } }",
                "apps.web.hosts: names no host",
            ),
            ("hosts: []", "apps.web.hosts: names no host"),
            (
                "hosts: a",
                "apps.web.hosts: a list of hosts or `{ labels: { KEY: VALUE } }`",
            ),
            (
                "host: a\n    hosts: [a]",
                "give `host` (one) or `hosts` (several), not both",
            ),
            (
                "hosts: [a]\n    per_host: { b: { variables: { X: y } } }",
                "apps.web.per_host.b: the app is not deployed there (its hosts: a)",
            ),
            (
                "host: a\n    per_host: { a: {} }",
                "values per host are for an app with `hosts:`",
            ),
        ] {
            let e = parse_err(&format!("{hosts}{app}{text}\n"));
            assert!(e.contains(expected), "{text}: {e}");
        }
        // One name, one app: on one host and on several is twice.
        let e = parse_err(&format!(
            "{hosts}apps:\n  - name: web\n    host: a\n    source: {{ dir: x }}\n  - name: web\n    hosts: [a, b]\n    source: {{ dir: x }}\n"
        ));
        assert!(
            e.contains("app web is defined twice (first at line 6)"),
            "{e}"
        );
        // One Engine is one host; host names become file and instance names.
        let e = parse_err(
            "hosts:\n  a: { docker: \"unix:///x.sock\" }\n  b: { docker: \"unix:///x.sock\" }\n",
        );
        assert!(
            e.contains("hosts.b.docker: unix:///x.sock is already host a"),
            "{e}"
        );
        let e = parse_err("hosts:\n  \"a/b\": { docker: \"unix:///x.sock\" }\n");
        assert!(e.contains("is not a valid host name"), "{e}");
        // A Swarm host's nodes are other hosts, Engines.
        let swarm = "hosts:\n  m: { docker: \"unix:///m.sock\", mode: swarm, nodes: [n1] }\n";
        let c = parse_ok(&format!("{swarm}  n1: {{ docker: \"unix:///n1.sock\" }}\n"));
        assert_eq!(c.hosts["m"].nodes, ["n1"]);
        for (text, expected) in [
            ("", "hosts.m.nodes: n1 is not a host here"),
            (
                "  n1: { docker: \"unix:///n1.sock\", mode: swarm }\n",
                "hosts.m.nodes: n1 has mode: swarm",
            ),
        ] {
            let e = parse_err(&format!("{swarm}{text}"));
            assert!(
                e.contains(expected) && e.contains("mooring.yaml:2:"),
                "{text}: {e}"
            );
        }
        let e = parse_err("hosts:\n  m: { docker: \"unix:///m.sock\", nodes: [n1] }\n");
        assert!(
            e.contains("hosts.m.nodes: only a host with mode: swarm has nodes"),
            "{e}"
        );
    }

    #[test]
    fn data_consistent_is_a_dump_or_commands_around_a_copy() {
        let app = "apps:\n  - name: a\n    source: { dir: x }\n    data:\n      consistent:\n";
        let c = parse_ok(&format!(
            "{app}        db: {{ service: pg, dump: [pg_dump, app], load: [psql, app] }}\n        files: {{ service: web, before: [sync] }}\n"
        ));
        let consistent = &c.apps[0].consistent;
        assert_eq!(
            consistent["db"],
            ConsistentBackup {
                service: "pg".into(),
                way: Consistency::Dump {
                    dump: vec!["pg_dump".into(), "app".into()],
                    load: vec!["psql".into(), "app".into()],
                },
            }
        );
        assert_eq!(
            consistent["files"].way,
            Consistency::Hooks {
                before: vec!["sync".into()],
                after: vec![],
            }
        );
        for (entry, expected) in [
            (
                "{ dump: [a], load: [b] }",
                "mooring.yaml:6:13: apps.a.data.consistent.db: `service` is missing",
            ),
            (
                "{ service: s, dump: [a] }",
                "apps.a.data.consistent.db: `load` is missing",
            ),
            (
                "{ service: s, load: [a] }",
                "apps.a.data.consistent.db: `dump` is missing",
            ),
            ("{ service: s, after: [a] }", "`after` needs `before`"),
            ("{ service: s }", "give `dump` and `load`"),
            (
                "{ service: s, dump: [a], load: [b], before: [c] }",
                "not both",
            ),
            (
                "{ service: s, dump: \"pg_dump app\", load: [b] }",
                "apps.a.data.consistent.db.dump must be a list of strings",
            ),
            ("{ service: s, dump: [], load: [b] }", "a command as a list"),
            ("{ service: s, dump: [a], load: [b], shell: true }", "shell"),
        ] {
            let e = parse_err(&format!("{app}        db: {entry}\n"));
            assert!(e.contains(expected), "{entry}: {e}");
        }
        // Not on a Swarm host: a stack's volumes are per node.
        let e = parse_err(
            "hosts:\n  m: { docker: \"unix:///m.sock\", mode: swarm }\napps:\n  - name: a\n    source: { dir: x }\n    host: m\n    data: { consistent: { db: { service: s, before: [a] } } }\n",
        );
        assert!(
            e.contains("apps.a.data.consistent: host m is a Swarm"),
            "{e}"
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

    #[test]
    fn sync_rollback_and_the_volumes_it_restores() {
        let app = "apps:\n  - name: a\n    source: { git: \"https://example.org/r.git\" }\n";
        assert_eq!(parse_ok(app).apps[0].sync.rollback, None);
        let c = parse_ok(&format!(
            "{app}    sync: {{ rollback: {{ on_failure: true }} }}\n    data: {{ restore_on_rollback: [db] }}\n"
        ));
        assert_eq!(c.apps[0].sync.rollback, Some(Duration::from_secs(120)));
        assert_eq!(c.apps[0].restore_on_rollback, ["db"]);
        let c = parse_ok(&format!(
            "{app}    sync: {{ rollback: {{ on_failure: true, health_timeout: 30s }} }}\n"
        ));
        assert_eq!(c.apps[0].sync.rollback, Some(Duration::from_secs(30)));
        let c = parse_ok(&format!(
            "{app}    sync: {{ rollback: {{ on_failure: false, health_timeout: 30s }} }}\n"
        ));
        assert_eq!(c.apps[0].sync.rollback, None);
        let e = parse_err(&format!("{app}    data: {{ restore_on_rollback: [db] }}\n"));
        assert!(e.contains("apps.a.data.restore_on_rollback: restores on an automatic rollback, which needs `sync: { rollback: { on_failure: true } }`"), "{e}");
        let c = parse_ok(&format!("{app}    data: {{ backup_max_age: 24h }}\n"));
        assert_eq!(c.apps[0].backup_max_age, Some(Duration::from_secs(86_400)));
        assert_eq!(parse_ok(app).apps[0].backup_max_age, None);
        let dir = "apps:\n  - name: a\n    source: { dir: x }\n";
        let e = parse_err(&format!(
            "{dir}    sync: {{ rollback: {{ on_failure: true }} }}\n"
        ));
        assert!(
            e.contains("a plain folder keeps no earlier revision"),
            "{e}"
        );
        let e = parse_err(&format!(
            "{app}    sync: {{ rollback: {{ on_fail: true }} }}\n"
        ));
        assert!(e.contains("on_fail"), "{e}");
    }
}
