//! The top level of a Compose file: the project name, top-level networks and volumes
//! (with their `x-mooring` keys), the services loop, and the dependency checks across
//! services (unknown targets, cycles).

use super::Decoder;
use crate::decode::*;
use crate::error::{LoadError, Pos};
use crate::yaml::{Node, Value};
use mooring_core::{DataPolicy, Ipam, IpamPool, Network, Project, Service, Volume};
use std::collections::{BTreeMap, BTreeSet};

/// Compose's project name normalisation: lower case, only `a-z0-9_-`, no leading `_`/`-`.
pub fn normalize_project_name(raw: &str) -> String {
    let lower = raw.to_lowercase();
    let kept: String = lower
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    kept.trim_start_matches(['_', '-']).to_string()
}

fn valid_project_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn valid_service_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// The keys networks and volumes share.
struct TopLevel {
    name: String,
    driver: Option<String>,
    driver_opts: BTreeMap<String, String>,
    external: bool,
    labels: BTreeMap<String, String>,
}

impl Decoder<'_> {
    pub(super) fn project(
        &mut self,
        doc: &Node,
        name_override: Option<&str>,
        fallback: &str,
    ) -> Result<Project, LoadError> {
        check_keys(
            doc,
            "top level",
            &[
                "version", "name", "services", "networks", "volumes", "secrets", "configs",
            ],
        )?;
        if doc.get("version").is_some() {
            self.notes.push("`version` is obsolete and ignored".into());
        }
        let name = project_name(doc, name_override, fallback)?;
        self.files = self.declared_files(doc, &name)?;
        let mut networks = self.networks(doc, &name)?;
        let mut volumes = self.volumes(doc, &name)?;
        let active = active_profiles(&self.vars);
        // What only services disabled by profiles use is left out, as Compose does.
        let mut unused = Unused::default();

        let services_node = doc
            .get("services")
            .ok_or_else(|| err(doc, "the Compose file declares no `services`"))?;
        let service_entries = entries(services_node, "services")?;
        if service_entries.is_empty() {
            return Err(err(services_node, "`services` is empty"));
        }
        let mut services = BTreeMap::new();
        let mut depends_pos = BTreeMap::new();
        for (k, v) in service_entries {
            let sname = key_of(k).to_string();
            if !valid_service_name(&sname) {
                return Err(err(k, format!("service name {sname:?} is not valid: use letters, digits, '.', '-' and '_'")));
            }
            let profiles = v
                .get("profiles")
                .map(|p| string_list(p, &format!("services.{sname}.profiles")))
                .transpose()?
                .unwrap_or_default();
            if !enabled(&profiles, &active) {
                // Checked like the others, then left out with what it alone uses.
                let mut scratch = networks.clone();
                let svc = self.service(&name, &sname, v, &mut scratch, &volumes)?;
                self.anonymous.clear();
                unused.note(&svc);
                unused.services.insert(sname, profiles);
                continue;
            }
            self.positions
                .insert(format!("services.{sname}"), k.pos.to_string());
            let mut svc = self.service(&name, &sname, v, &mut networks, &volumes)?;
            svc.profiles = profiles;
            for anon in std::mem::take(&mut self.anonymous) {
                volumes.insert(anon.name.clone(), anon);
            }
            if let Some(taken) = svc.container_name.as_deref().and_then(|c| {
                services
                    .values()
                    .find(|o: &&mooring_core::Service| o.container_name.as_deref() == Some(c))
            }) {
                return Err(err(
                    v.get("container_name").unwrap_or(v),
                    format!(
                        "services.{sname}.container_name: {:?} is already the container name of service {}",
                        svc.container_name.as_deref().unwrap_or_default(),
                        taken.name
                    ),
                ));
            }
            if let Some(d) = v.get("depends_on") {
                depends_pos.insert(sname.clone(), d.pos.clone());
            }
            services.insert(sname, svc);
        }
        if services.is_empty() {
            return Err(err(
                services_node,
                format!(
                    "every service is disabled by profiles (active: {}); enable one with --profile or COMPOSE_PROFILES",
                    if active.is_empty() { "none".to_string() } else { active.join(", ") }
                ),
            ));
        }
        unused.remove_from(&services, &mut networks, &mut volumes);
        for (sname, svc) in &services {
            let disabled = svc
                .depends_on
                .iter()
                .find(|(dep, d)| d.required && unused.services.contains_key(*dep));
            if let Some((dep, _)) = disabled {
                return Err(LoadError {
                    pos: depends_pos.get(sname).cloned(),
                    message: format!(
                        "services.{sname}.depends_on: service `{dep}` is disabled by its profiles ({}); active profiles: {} — enable one with --profile or COMPOSE_PROFILES",
                        unused.services[dep].join(", "),
                        if active.is_empty() { "none".to_string() } else { active.join(", ") }
                    ),
                });
            }
        }
        check_dependencies(&mut services, &depends_pos)?;
        // The secrets and configs some service (or its build) uses, as Compose prints
        // them.
        let used = |refs: &dyn Fn(&Service) -> Vec<&str>,
                    declared: &BTreeMap<
            String,
            (mooring_core::ProjectFile, super::files_decl::Source),
        >| {
            declared
                .iter()
                .filter(|(k, _)| services.values().any(|s| refs(s).contains(&k.as_str())))
                .map(|(k, (f, _))| (k.clone(), f.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        let secrets = used(
            &|s| s.secret_refs().map(|r| r.source.as_str()).collect(),
            &self.files.secrets,
        );
        let configs = used(
            &|s| s.configs.iter().map(|r| r.source.as_str()).collect(),
            &self.files.configs,
        );
        Ok(Project {
            name,
            working_dir: String::new(),
            config_files: vec![],
            services,
            networks,
            volumes,
            secrets,
            configs,
            notes: vec![],
            positions: BTreeMap::new(),
            secret_values: Default::default(),
            extensions: match &doc.value {
                Value::Map(entries) => entries
                    .iter()
                    .filter(|(k, _)| key_of(k).starts_with("x-"))
                    .map(|(k, v)| (key_of(k).to_string(), crate::decode::as_json(v)))
                    .collect(),
                _ => BTreeMap::new(),
            },
        })
    }

    /// Top-level `networks`.
    fn networks(
        &mut self,
        doc: &Node,
        project: &str,
    ) -> Result<BTreeMap<String, Network>, LoadError> {
        let mut networks = BTreeMap::new();
        if let Some(n) = doc.get("networks") {
            for (k, v) in entries(n, "networks")? {
                let key = key_of(k).to_string();
                let what = format!("networks.{key}");
                let t = self.top_level(
                    "networks",
                    project,
                    &key,
                    v,
                    &["internal", "attachable", "enable_ipv6", "ipam"],
                )?;
                self.positions.insert(what.clone(), k.pos.to_string());
                let flag = |f: &str| -> Result<Option<bool>, LoadError> {
                    v.get(f)
                        .map(|b| boolean(b, &format!("{what}.{f}")))
                        .transpose()
                };
                let network = Network {
                    name: t.name,
                    driver: t.driver,
                    driver_opts: t.driver_opts,
                    ipam: v.get("ipam").map(|i| self.ipam(i, &what)).transpose()?,
                    external: t.external,
                    internal: flag("internal")?.unwrap_or(false),
                    attachable: flag("attachable")?.unwrap_or(false),
                    enable_ipv6: flag("enable_ipv6")?,
                    labels: t.labels,
                };
                networks.insert(key, network);
            }
        }
        Ok(networks)
    }

    /// Top-level `volumes`, with their `x-mooring` data policy, backup and retention.
    fn volumes(
        &mut self,
        doc: &Node,
        project: &str,
    ) -> Result<BTreeMap<String, Volume>, LoadError> {
        let mut volumes = BTreeMap::new();
        if let Some(n) = doc.get("volumes") {
            for (k, v) in entries(n, "volumes")? {
                let key = key_of(k).to_string();
                let t = self.top_level("volumes", project, &key, v, &[])?;
                self.positions
                    .insert(format!("volumes.{key}"), k.pos.to_string());
                let volume = Volume {
                    name: t.name,
                    driver: t.driver,
                    driver_opts: t.driver_opts,
                    external: t.external,
                    labels: t.labels,
                    policy: data_policy(v, &format!("volumes.{key}"))?,
                    backup_on_change: x_mooring_backup(v, &format!("volumes.{key}"))?,
                    retention: x_mooring_retention(v, &format!("volumes.{key}"))?,
                    anonymous: false,
                };
                volumes.insert(key, volume);
            }
        }
        Ok(volumes)
    }

    /// A top-level network or volume: both take the same keys. The Docker name is
    /// `name:`, else the key for external ones, else `<project>_<key>`.
    fn top_level(
        &self,
        section: &str,
        project: &str,
        key: &str,
        n: &Node,
        more_keys: &[&str],
    ) -> Result<TopLevel, LoadError> {
        let what = format!("{section}.{key}");
        let keys = [
            &["name", "driver", "driver_opts", "external", "labels"][..],
            more_keys,
        ]
        .concat();
        check_keys(n, &what, &keys)?;
        let field = |k: &str| format!("{what}.{k}");
        let external = n
            .get("external")
            .map(|e| boolean(e, &field("external")))
            .transpose()?
            .unwrap_or(false);
        let name = match n.get("name") {
            Some(v) => string(v, &field("name"))?,
            None if external => key.to_string(),
            None => format!("{project}_{key}"),
        };
        Ok(TopLevel {
            name,
            driver: n
                .get("driver")
                .map(|v| string(v, &field("driver")))
                .transpose()?,
            driver_opts: self.label_map(n.get("driver_opts"), &field("driver_opts"))?,
            external,
            labels: self.label_map(n.get("labels"), &field("labels"))?,
        })
    }
}

impl Decoder<'_> {
    /// A network's `ipam`: `driver`, `config` (pools), `options`.
    fn ipam(&self, n: &Node, network: &str) -> Result<Ipam, LoadError> {
        let what = format!("{network}.ipam");
        check_keys(n, &what, &["driver", "config", "options"])?;
        let mut config = Vec::new();
        if let Some(list) = n.get("config") {
            let cw = format!("{what}.config");
            let Value::Seq(items) = &list.value else {
                return Err(err(
                    list,
                    format!("{cw} must be a list, found {}", list.kind()),
                ));
            };
            for item in items {
                check_keys(
                    item,
                    &cw,
                    &["subnet", "gateway", "ip_range", "aux_addresses"],
                )?;
                let text = |k: &str| {
                    item.get(k)
                        .map(|v| string(v, &format!("{cw}.{k}")))
                        .transpose()
                };
                config.push(IpamPool {
                    subnet: text("subnet")?,
                    gateway: text("gateway")?,
                    ip_range: text("ip_range")?,
                    aux_addresses: self
                        .label_map(item.get("aux_addresses"), &format!("{cw}.aux_addresses"))?,
                });
            }
        }
        Ok(Ipam {
            driver: n
                .get("driver")
                .map(|d| string(d, &format!("{what}.driver")))
                .transpose()?,
            config,
            options: self.label_map(n.get("options"), &format!("{what}.options"))?,
        })
    }
}

/// The active profiles: `COMPOSE_PROFILES` (comma separated) as interpolation sees it
/// — the environment (`--profile` on the command line, an app's `variables`) over the
/// project's `.env`.
fn active_profiles(vars: &BTreeMap<String, String>) -> Vec<String> {
    vars.get("COMPOSE_PROFILES")
        .map(|p| {
            p.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A service runs when it names no profile, or one that is active (`*`: all).
fn enabled(profiles: &[String], active: &[String]) -> bool {
    profiles.is_empty()
        || active.iter().any(|a| a == "*")
        || profiles.iter().any(|p| active.contains(p))
}

/// Networks and volumes used by services that profiles disable.
#[derive(Default)]
struct Unused {
    /// The disabled services, with their profiles.
    services: BTreeMap<String, Vec<String>>,
    networks: BTreeSet<String>,
    volumes: BTreeSet<String>,
}

impl Unused {
    fn note(&mut self, svc: &Service) {
        self.networks.extend(svc.networks.keys().cloned());
        self.volumes.extend(
            svc.mounts
                .iter()
                .filter(|m| m.kind == mooring_core::MountKind::Volume)
                .map(|m| m.source.clone()),
        );
    }

    /// Removes what no enabled service uses too.
    fn remove_from(
        &self,
        services: &BTreeMap<String, Service>,
        networks: &mut BTreeMap<String, Network>,
        volumes: &mut BTreeMap<String, Volume>,
    ) {
        let used_networks: BTreeSet<&String> =
            services.values().flat_map(|s| s.networks.keys()).collect();
        networks.retain(|k, _| !self.networks.contains(k) || used_networks.contains(k));
        let used_volumes: BTreeSet<&String> = services
            .values()
            .flat_map(|s| s.mounts.iter())
            .filter(|m| m.kind == mooring_core::MountKind::Volume)
            .map(|m| &m.source)
            .collect();
        volumes.retain(|_, v| !self.volumes.contains(&v.name) || used_volumes.contains(&v.name));
    }
}

/// The app name: `--app`, else `name:`, else the folder's name normalised.
fn project_name(
    doc: &Node,
    name_override: Option<&str>,
    fallback: &str,
) -> Result<String, LoadError> {
    match (name_override, doc.get("name")) {
        (Some(n), _) => {
            if !valid_project_name(n) {
                return Err(LoadError::new(format!("app name {n:?} is not valid: use lower-case letters, digits, '-' and '_', starting with a letter or digit")));
            }
            Ok(n.to_string())
        }
        (None, Some(node)) => {
            let n = string(node, "name")?;
            if !valid_project_name(&n) {
                return Err(err(node, format!("project name {n:?} is not valid: use lower-case letters, digits, '-' and '_', starting with a letter or digit")));
            }
            Ok(n)
        }
        (None, None) => {
            let n = normalize_project_name(fallback);
            if n.is_empty() {
                return Err(LoadError::new(format!(
                    "cannot derive an app name from folder {fallback:?}; set `name:` or pass --app"
                )));
            }
            Ok(n)
        }
    }
}

/// `x-mooring: { backup: on-change | never }` on a top-level volume.
fn x_mooring_backup(n: &Node, what: &str) -> Result<Option<bool>, LoadError> {
    match n.get("x-mooring").and_then(|x| x.get("backup")) {
        Some(b) => backup_schedule(b, &format!("{what}.x-mooring.backup")).map(Some),
        None => Ok(None),
    }
}

/// `x-mooring: { retention: { keep: N, older_than: 30d } }` on a top-level volume.
fn x_mooring_retention(n: &Node, what: &str) -> Result<Option<mooring_core::Retention>, LoadError> {
    match n.get("x-mooring").and_then(|x| x.get("retention")) {
        Some(r) => retention(r, &format!("{what}.x-mooring.retention")).map(Some),
        None => Ok(None),
    }
}

/// `x-mooring: { data: protect | backup-then-delete }` on a top-level volume (and the
/// keys `x-mooring` accepts).
fn data_policy(n: &Node, what: &str) -> Result<Option<DataPolicy>, LoadError> {
    let Some(x) = n.get("x-mooring") else {
        return Ok(None);
    };
    let what = format!("{what}.x-mooring");
    check_keys(x, &what, &["data", "backup", "retention"])?;
    let Some(d) = x.get("data") else {
        return Ok(None);
    };
    let text = string(d, &format!("{what}.data"))?;
    DataPolicy::parse(&text).map(Some).ok_or_else(|| {
        err(
            d,
            format!("{what}.data: {text:?} (use protect or backup-then-delete)"),
        )
    })
}

/// Unknown dependencies and cycles are errors (at the `depends_on` that names them);
/// optional dependencies on services that don't exist are dropped.
fn check_dependencies(
    services: &mut BTreeMap<String, Service>,
    pos: &BTreeMap<String, Pos>,
) -> Result<(), LoadError> {
    let names: BTreeSet<String> = services.keys().cloned().collect();
    for (name, svc) in services.iter_mut() {
        let mut missing = Vec::new();
        svc.depends_on.retain(|dep, d| {
            if names.contains(dep) {
                true
            } else {
                if d.required {
                    missing.push(dep.clone());
                }
                false
            }
        });
        if let Some(dep) = missing.first() {
            let message = format!("services.{name}.depends_on: service `{dep}` does not exist");
            return Err(LoadError {
                pos: pos.get(name).cloned(),
                message,
            });
        }
    }
    // Cycle detection (depth-first, three colours).
    fn visit<'a>(
        n: &'a str,
        services: &'a BTreeMap<String, Service>,
        state: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let start = path.iter().position(|p| *p == n).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(n, 1);
        path.push(n);
        if let Some(svc) = services.get(n) {
            for dep in svc.depends_on.keys() {
                if let Some(c) = visit(dep, services, state, path) {
                    return Some(c);
                }
            }
        }
        path.pop();
        state.insert(n, 2);
        None
    }
    let mut state = BTreeMap::new();
    for name in services.keys() {
        if let Some(cycle) = visit(name, services, &mut state, &mut Vec::new()) {
            let message = format!("dependency cycle: {}", cycle.join(" → "));
            return Err(LoadError {
                pos: pos.get(&cycle[0]).cloned(),
                message,
            });
        }
    }
    Ok(())
}
