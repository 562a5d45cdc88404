//! From files to [`Project`]: discovery, `.env`, interpolation, merge, and the typed
//! decoding of every supported Compose key, with validation.

use crate::decode::*;
use crate::dotenv;
use crate::error::{LoadError, Pos};
use crate::interpolate::{interpolate, Lookup};
use crate::merge::{list_to_map, merge_documents};
use crate::paths::{hash_paths, inside_file, normalize, resolve_inside, PathError};
use crate::yaml::{self, Node, Value};
use mooring_core::policy::capability;
use mooring_core::{
    DataPolicy, DependsOn, DependsOnCondition, Healthcheck, Mount, MountKind, Network, Port,
    Project, PullPolicy, Service, ServiceNetwork, Volume,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Compose file names looked for when no `-f` is given, in Compose's order.
pub const COMPOSE_FILE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// What to render.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Folder holding the Compose files (inside `snapshot_root`).
    pub project_dir: PathBuf,
    /// Root of the snapshot: nothing outside it is read.
    pub snapshot_root: PathBuf,
    /// Name to use when neither `project_name` nor `name:` gives one (default: the
    /// project folder's name), normalised as Compose does.
    pub default_name: Option<String>,
    /// Compose files (`-f`), relative to `project_dir`; empty = discovery.
    pub files: Vec<String>,
    /// Project name override (`--app`).
    pub project_name: Option<String>,
    /// The process environment (wins over `.env`).
    pub environment: BTreeMap<String, String>,
    /// Host folders an absolute bind path may not point into (Mooring's data directory).
    pub protected_dirs: Vec<PathBuf>,
}

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

/// Renders the project described by `opts`.
pub fn load(opts: &LoadOptions) -> Result<Project, LoadError> {
    let root = opts.snapshot_root.canonicalize().map_err(|e| {
        LoadError::new(format!("cannot open {}: {e}", opts.snapshot_root.display()))
    })?;
    let project_dir = opts.project_dir.canonicalize().map_err(|e| {
        LoadError::new(format!(
            "cannot open project folder {}: {e}",
            opts.project_dir.display()
        ))
    })?;
    if !project_dir.starts_with(&root) {
        return Err(LoadError::new(format!(
            "project folder {} is outside the snapshot {}",
            project_dir.display(),
            root.display()
        )));
    }
    let display = |p: &Path| -> Arc<str> {
        let rel = p.strip_prefix(&root).unwrap_or(p);
        Arc::from(rel.to_string_lossy().as_ref())
    };

    // Files.
    // Every file read is checked to stay inside the snapshot (symlinks included), and
    // read at its canonical path.
    let file_inside = |path: &Path, what: &str| {
        let raw = display(path);
        inside_file(&root, path).map_err(|e| path_error(e, &raw, what, None))
    };
    let mut files = Vec::new();
    if opts.files.is_empty() {
        let mut found = None;
        for name in COMPOSE_FILE_NAMES {
            found = file_inside(&project_dir.join(name), "compose file")?;
            if found.is_some() {
                break;
            }
        }
        let Some(main) = found else {
            return Err(LoadError::new(format!(
                "no Compose file in {} (looked for {}); pass one with -f",
                display(&project_dir),
                COMPOSE_FILE_NAMES.join(", ")
            )));
        };
        let stem = if main
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("docker-"))
        {
            "docker-compose"
        } else {
            "compose"
        };
        files.push(main);
        for ext in ["yaml", "yml"] {
            let over = project_dir.join(format!("{stem}.override.{ext}"));
            if let Some(over) = file_inside(&over, "override file")? {
                files.push(over);
                break;
            }
        }
    } else {
        for f in &opts.files {
            let path = resolve_inside(&root, &project_dir, f)
                .map_err(|e| path_error(e, f, "compose file", None))?;
            let Some(path) =
                inside_file(&root, &path).map_err(|e| path_error(e, f, "compose file", None))?
            else {
                return Err(LoadError::new(format!(
                    "compose file {f} not found in {}",
                    display(&project_dir)
                )));
            };
            files.push(path);
        }
    }

    // Variables: the process environment wins over the project's .env file.
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    if let Some(dotenv_path) = file_inside(&project_dir.join(".env"), ".env file")? {
        let text = read(&dotenv_path, &display)?;
        let env = &opts.environment;
        let lookup = |k: &str| env.get(k).cloned();
        let entries = dotenv::parse(&text, &lookup)
            .map_err(|e| LoadError::at(Pos::new(display(&dotenv_path), e.line, 1), e.message))?;
        vars.extend(entries);
    }
    vars.extend(opts.environment.iter().map(|(k, v)| (k.clone(), v.clone())));

    let mut notes = Vec::new();
    let mut merged: Option<Node> = None;
    for path in &files {
        let name = display(path);
        let text = read(path, &display)?;
        let mut doc = yaml::parse(&text, &name)?;
        if !matches!(doc.value, Value::Map(_)) {
            return Err(LoadError::at(
                doc.pos.clone(),
                format!("a Compose file must be a mapping, found {}", doc.kind()),
            ));
        }
        interpolate_tree(&mut doc, &vars, &mut notes)?;
        merged = Some(match merged {
            None => doc,
            Some(base) => merge_documents(base, doc),
        });
    }
    let doc = merged.ok_or_else(|| LoadError::new("no Compose file"))?;

    let mut ctx = Decoder {
        root: root.clone(),
        project_dir: project_dir.clone(),
        protected: opts.protected_dirs.iter().map(|p| normalize(p)).collect(),
        vars,
        notes,
        positions: BTreeMap::new(),
        display: &display,
    };
    let fallback_name = opts
        .project_name
        .clone()
        .or_else(|| {
            project_dir
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
        })
        .unwrap_or_default();
    let mut project = ctx.project(&doc, opts.project_name.as_deref(), &fallback_name)?;
    project.working_dir = project_dir.to_string_lossy().to_string();
    project.config_files = files.iter().map(|f| display(f).to_string()).collect();
    project.notes = ctx.notes;
    project.positions = ctx.positions;
    Ok(project)
}

fn read(path: &Path, display: &dyn Fn(&Path) -> Arc<str>) -> Result<String, LoadError> {
    crate::limits::read_text(path)
        .map_err(|e| LoadError::new(format!("cannot read {}: {e}", display(path))))
}

fn path_error(e: PathError, raw: &str, what: &str, pos: Option<&Pos>) -> LoadError {
    let message = match e {
        PathError::Escapes => format!("{what} {raw} leaves the repository; only paths inside the repository (or absolute host paths) are allowed"),
        PathError::SymlinkEscapes(p) => format!("{what} {raw} goes through symlink {} that points outside the repository; only files inside the repository are read", p.display()),
        PathError::Unreadable(p, e) => format!("{what} {raw}: cannot inspect {}: {e}; Mooring must be able to read the repository's files to check where they lead (fix the permissions)", p.display()),
    };
    LoadError {
        pos: pos.cloned(),
        message,
    }
}

/// Interpolates every scalar value (not keys) in place.
fn interpolate_tree(
    node: &mut Node,
    vars: &BTreeMap<String, String>,
    notes: &mut Vec<String>,
) -> Result<(), LoadError> {
    let lookup = |k: &str| vars.get(k).cloned();
    walk(node, &lookup, notes)
}

fn walk(node: &mut Node, lookup: &dyn Lookup, notes: &mut Vec<String>) -> Result<(), LoadError> {
    match &mut node.value {
        Value::Scalar { text, .. } => {
            if text.contains('$') {
                let out = interpolate(text, lookup)
                    .map_err(|e| LoadError::at(node.pos.clone(), e.to_string()))?;
                for name in out.unset {
                    let note = format!(
                        "variable {name} is not set; using an empty string ({})",
                        node.pos
                    );
                    if !notes.contains(&note) {
                        notes.push(note);
                    }
                }
                *text = out.value;
            }
        }
        Value::Seq(items) => {
            for i in items {
                walk(i, lookup, notes)?;
            }
        }
        Value::Map(entries) => {
            for (_, v) in entries {
                walk(v, lookup, notes)?;
            }
        }
        Value::Null => {}
    }
    Ok(())
}

const SERVICE_KEYS: &[&str] = &[
    "image",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "volumes",
    "networks",
    "labels",
    "restart",
    "healthcheck",
    "depends_on",
    "working_dir",
    "user",
    "hostname",
    "stop_grace_period",
    "stop_signal",
    "tmpfs",
    "read_only",
    "cap_add",
    "cap_drop",
    "extra_hosts",
    "init",
    "pull_policy",
    "deploy",
];

struct Decoder<'a> {
    root: PathBuf,
    project_dir: PathBuf,
    protected: Vec<PathBuf>,
    vars: BTreeMap<String, String>,
    notes: Vec<String>,
    /// Where the entries the policy looks at were written (see [`Project::positions`]).
    positions: BTreeMap<String, String>,
    display: &'a dyn Fn(&Path) -> Arc<str>,
}

/// Docker's memory units: `512m`, `1g`, `1024` (bytes), `1.5gb`.
fn memory_bytes(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let digits = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let value: f64 = s[..digits].parse().ok()?;
    let mult: f64 = match s[digits..].trim() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0f64.powi(4),
        _ => return None,
    };
    Some((value * mult) as i64)
}

/// Splits a command string the way Compose does (shell-like quoting, no expansion).
fn shell_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => cur.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\' | '$' | '`') => cur.push(c),
                            c => {
                                cur.push('\\');
                                cur.push(c);
                            }
                        },
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next()?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

fn command(n: &Node, what: &str) -> Result<Option<Vec<String>>, LoadError> {
    match &n.value {
        Value::Null => Ok(None),
        Value::Scalar { text, .. } => shell_words(text)
            .map(Some)
            .ok_or_else(|| err(n, format!("{what}: unterminated quote in {text:?}"))),
        Value::Seq(_) => string_list(n, what).map(Some),
        Value::Map(_) => Err(err(
            n,
            format!("{what} must be a string or a list, found a mapping"),
        )),
    }
}

// ---- the decoder -------------------------------------------------------------------

impl Decoder<'_> {
    fn project(
        &mut self,
        doc: &Node,
        name_override: Option<&str>,
        fallback: &str,
    ) -> Result<Project, LoadError> {
        check_keys(
            doc,
            "top level",
            &["version", "name", "services", "networks", "volumes"],
        )?;
        if doc.get("version").is_some() {
            self.notes.push("`version` is obsolete and ignored".into());
        }
        let name = match (name_override, doc.get("name")) {
            (Some(n), _) => {
                if !valid_project_name(n) {
                    return Err(LoadError::new(format!("app name {n:?} is not valid: use lower-case letters, digits, '-' and '_', starting with a letter or digit")));
                }
                n.to_string()
            }
            (None, Some(node)) => {
                let n = string(node, "name")?;
                if !valid_project_name(&n) {
                    return Err(err(node, format!("project name {n:?} is not valid: use lower-case letters, digits, '-' and '_', starting with a letter or digit")));
                }
                n
            }
            (None, None) => {
                let n = normalize_project_name(fallback);
                if n.is_empty() {
                    return Err(LoadError::new(format!("cannot derive an app name from folder {fallback:?}; set `name:` or pass --app")));
                }
                n
            }
        };

        let mut networks = BTreeMap::new();
        if let Some(n) = doc.get("networks") {
            for (k, v) in entries(n, "networks")? {
                let key = key_of(k).to_string();
                let t = self.top_level("networks", &name, &key, v)?;
                self.positions
                    .insert(format!("networks.{key}"), k.pos.to_string());
                let network = Network {
                    name: t.name,
                    driver: t.driver,
                    driver_opts: t.driver_opts,
                    external: t.external,
                    labels: t.labels,
                };
                networks.insert(key, network);
            }
        }
        let mut volumes = BTreeMap::new();
        if let Some(n) = doc.get("volumes") {
            for (k, v) in entries(n, "volumes")? {
                let key = key_of(k).to_string();
                let t = self.top_level("volumes", &name, &key, v)?;
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
                };
                volumes.insert(key, volume);
            }
        }

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
            self.positions
                .insert(format!("services.{sname}"), k.pos.to_string());
            let svc = self.service(&name, &sname, v, &mut networks, &volumes)?;
            if let Some(d) = v.get("depends_on") {
                depends_pos.insert(sname.clone(), d.pos.clone());
            }
            services.insert(sname, svc);
        }
        check_dependencies(&mut services, &depends_pos)?;
        Ok(Project {
            name,
            working_dir: String::new(),
            config_files: vec![],
            services,
            networks,
            volumes,
            notes: vec![],
            positions: BTreeMap::new(),
        })
    }

    /// A top-level network or volume: both take the same keys. The Docker name is
    /// `name:`, else the key for external ones, else `<project>_<key>`.
    fn top_level(
        &self,
        section: &str,
        project: &str,
        key: &str,
        n: &Node,
    ) -> Result<TopLevel, LoadError> {
        let what = format!("{section}.{key}");
        check_keys(
            n,
            &what,
            &["name", "driver", "driver_opts", "external", "labels"],
        )?;
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
            driver_opts: self.string_map(n.get("driver_opts"), &field("driver_opts"))?,
            external,
            labels: self.string_map(n.get("labels"), &field("labels"))?,
        })
    }

    /// A mapping (or `KEY=VALUE` list) of strings; a null value takes the variable of
    /// that name from the environment (and is dropped when unset), as Compose does.
    fn string_map(
        &self,
        n: Option<&Node>,
        what: &str,
    ) -> Result<BTreeMap<String, String>, LoadError> {
        let Some(n) = n else {
            return Ok(BTreeMap::new());
        };
        let n = list_to_map(n.clone(), "environment");
        let mut out = BTreeMap::new();
        for (k, v) in entries(&n, what)? {
            let key = key_of(k).to_string();
            match &v.value {
                Value::Null => {
                    if let Some(val) = self.vars.get(&key) {
                        out.insert(key, val.clone());
                    }
                }
                Value::Scalar { text, .. } => {
                    out.insert(key, text.clone());
                }
                _ => {
                    return Err(err(
                        v,
                        format!("{what}.{key} must be a string, found {}", v.kind()),
                    ))
                }
            }
        }
        Ok(out)
    }

    fn service(
        &mut self,
        project: &str,
        name: &str,
        n: &Node,
        networks: &mut BTreeMap<String, Network>,
        volumes: &BTreeMap<String, Volume>,
    ) -> Result<Service, LoadError> {
        let what = format!("services.{name}");
        if !matches!(n.value, Value::Map(_)) {
            return Err(err(
                n,
                format!("{what} must be a mapping, found {}", n.kind()),
            ));
        }
        check_keys(n, &what, SERVICE_KEYS)?;
        let w = |k: &str| format!("{what}.{k}");
        let image = match n.get("image") {
            Some(v) => string(v, &w("image"))?,
            None => {
                return Err(err(
                    n,
                    format!(
                        "{what} has no `image` (Mooring deploys images; `build` is not supported)"
                    ),
                ))
            }
        };
        if image.trim().is_empty() {
            return Err(err(
                n.get("image").unwrap_or(n),
                format!("{what}.image is empty"),
            ));
        }

        let mut environment = BTreeMap::new();
        if let Some(ef) = n.get("env_file") {
            environment.extend(self.env_files(ef, &w("env_file"))?);
        }
        environment.extend(self.string_map(n.get("environment"), &w("environment"))?);

        let mut labels = self.string_map(n.get("labels"), &w("labels"))?;
        if let Some(bad) = labels
            .keys()
            .find(|k| k.starts_with("io.mooring.") || k.starts_with("com.docker.compose."))
        {
            return Err(err(
                n.get("labels").unwrap_or(n),
                format!("{what}.labels: label {bad} is reserved for Mooring and Compose"),
            ));
        }
        labels = std::mem::take(&mut labels);

        let mut ports = Vec::new();
        if let Some(p) = n.get("ports") {
            let Value::Seq(items) = &p.value else {
                return Err(err(
                    p,
                    format!("{} must be a list, found {}", w("ports"), p.kind()),
                ));
            };
            for item in items {
                ports.extend(port(item, &w("ports"))?);
            }
        }

        let mut tmpfs = n
            .get("tmpfs")
            .map(|t| string_or_list(t, &w("tmpfs")))
            .transpose()?
            .unwrap_or_default();
        let mut mounts = Vec::new();
        let mut repo_files = Vec::new();
        if let Some(v) = n.get("volumes") {
            let Value::Seq(items) = &v.value else {
                return Err(err(
                    v,
                    format!("{} must be a list, found {}", w("volumes"), v.kind()),
                ));
            };
            for item in items {
                match self.mount(item, &w("volumes"), volumes, &mut repo_files)? {
                    MountOrTmpfs::Mount(m) => {
                        self.positions.insert(
                            format!("{}.{}", w("volumes"), m.target),
                            item.pos.to_string(),
                        );
                        mounts.push(m)
                    }
                    MountOrTmpfs::Tmpfs(t) => tmpfs.push(t),
                }
            }
        }
        let files_hash = if repo_files.is_empty() {
            None
        } else {
            Some(hash_paths(&repo_files).map_err(|e| {
                err(
                    n,
                    format!("{what}: cannot read mounted repository files: {e}"),
                )
            })?)
        };

        if let Some(Value::Seq(items)) = n.get("cap_add").map(|c| &c.value) {
            for item in items {
                if let Some(cap) = item.text() {
                    self.positions.insert(
                        format!("{}.{}", w("cap_add"), capability(cap)),
                        item.pos.to_string(),
                    );
                }
            }
        }

        let mut service_networks = BTreeMap::new();
        match n.get("networks") {
            None => {
                let default = networks.entry("default".into()).or_insert_with(|| Network {
                    name: format!("{project}_default"),
                    driver: None,
                    driver_opts: BTreeMap::new(),
                    external: false,
                    labels: BTreeMap::new(),
                });
                service_networks.insert(
                    "default".into(),
                    ServiceNetwork {
                        name: default.name.clone(),
                        aliases: vec![name.to_string()],
                    },
                );
            }
            Some(nets) => {
                let nets = list_to_map(nets.clone(), "networks");
                for (k, v) in entries(&nets, &w("networks"))? {
                    let key = key_of(k);
                    let decl = if key == "default" {
                        networks.entry("default".into()).or_insert_with(|| Network {
                            name: format!("{project}_default"),
                            driver: None,
                            driver_opts: BTreeMap::new(),
                            external: false,
                            labels: BTreeMap::new(),
                        })
                    } else {
                        networks.get_mut(key).ok_or_else(|| err(k, format!("{}: network `{key}` is not declared under the top-level `networks`", w("networks"))))?
                    };
                    let nw = format!("{}.{key}", w("networks"));
                    check_keys(v, &nw, &["aliases"])?;
                    let mut aliases = vec![name.to_string()];
                    if let Some(a) = v.get("aliases") {
                        for alias in string_list(a, &format!("{nw}.aliases"))? {
                            if !aliases.contains(&alias) {
                                aliases.push(alias);
                            }
                        }
                    }
                    service_networks.insert(
                        key.to_string(),
                        ServiceNetwork {
                            name: decl.name.clone(),
                            aliases,
                        },
                    );
                }
            }
        }

        let restart = match n.get("restart") {
            None => "no".to_string(),
            Some(r) => {
                let value = string(r, &w("restart"))?;
                let ok = matches!(
                    value.as_str(),
                    "no" | "always" | "unless-stopped" | "on-failure"
                ) || value
                    .strip_prefix("on-failure:")
                    .is_some_and(|c| c.parse::<u32>().is_ok());
                if !ok {
                    return Err(err(r, format!("{}: invalid restart policy {value:?} (use no, always, unless-stopped, on-failure[:N])", w("restart"))));
                }
                value
            }
        };

        let healthcheck = n
            .get("healthcheck")
            .map(|h| healthcheck(h, &w("healthcheck")))
            .transpose()?
            .flatten();
        let depends_on = n
            .get("depends_on")
            .map(|d| depends_on(d, &w("depends_on")))
            .transpose()?
            .unwrap_or_default();

        let mut extra_hosts = Vec::new();
        if let Some(h) = n.get("extra_hosts") {
            let map = list_to_map(h.clone(), "extra_hosts");
            for (k, v) in entries(&map, &w("extra_hosts"))? {
                let ip = string(v, &w("extra_hosts"))?;
                extra_hosts.push(format!("{}:{}", key_of(k), ip));
            }
        }

        let pull_policy = match n.get("pull_policy") {
            None => PullPolicy::Missing,
            Some(p) => match string(p, &w("pull_policy"))?.as_str() {
                "missing" | "if_not_present" => PullPolicy::Missing,
                "always" => PullPolicy::Always,
                "never" => PullPolicy::Never,
                other => {
                    return Err(err(
                        p,
                        format!(
                            "{}: {other:?} is not supported (use missing, always or never)",
                            w("pull_policy")
                        ),
                    ))
                }
            },
        };

        let (mut nano_cpus, mut memory) = (None, None);
        if let Some(d) = n.get("deploy") {
            check_keys(d, &w("deploy"), &["resources"])?;
            if let Some(r) = d.get("resources") {
                check_keys(r, &w("deploy.resources"), &["limits"])?;
                if let Some(l) = r.get("limits") {
                    let lw = w("deploy.resources.limits");
                    check_keys(l, &lw, &["cpus", "memory"])?;
                    if let Some(c) = l.get("cpus") {
                        let text = string(c, &lw)?;
                        let cpus: f64 =
                            text.parse()
                                .ok()
                                .filter(|v: &f64| *v > 0.0)
                                .ok_or_else(|| {
                                    err(c, format!("{lw}.cpus: invalid number of CPUs {text:?}"))
                                })?;
                        nano_cpus = Some((cpus * 1e9).round() as i64);
                    }
                    if let Some(m) = l.get("memory") {
                        let text = string(m, &lw)?;
                        memory = Some(memory_bytes(&text).ok_or_else(|| {
                            err(
                                m,
                                format!("{lw}.memory: invalid size {text:?} (use e.g. 512m, 1g)"),
                            )
                        })?);
                    }
                }
            }
        }

        let opt_string = |k: &str| n.get(k).map(|v| string(v, &w(k))).transpose();
        Ok(Service {
            name: name.to_string(),
            image,
            command: n
                .get("command")
                .map(|c| command(c, &w("command")))
                .transpose()?
                .flatten(),
            entrypoint: n
                .get("entrypoint")
                .map(|c| command(c, &w("entrypoint")))
                .transpose()?
                .flatten(),
            environment,
            ports,
            mounts,
            networks: service_networks,
            labels,
            restart,
            healthcheck,
            depends_on,
            working_dir: opt_string("working_dir")?,
            user: opt_string("user")?,
            hostname: opt_string("hostname")?,
            stop_grace_period: n
                .get("stop_grace_period")
                .map(|d| duration(d, &w("stop_grace_period")))
                .transpose()?,
            stop_signal: opt_string("stop_signal")?,
            tmpfs,
            read_only: n
                .get("read_only")
                .map(|b| boolean(b, &w("read_only")))
                .transpose()?
                .unwrap_or(false),
            cap_add: n
                .get("cap_add")
                .map(|c| string_list(c, &w("cap_add")))
                .transpose()?
                .unwrap_or_default(),
            cap_drop: n
                .get("cap_drop")
                .map(|c| string_list(c, &w("cap_drop")))
                .transpose()?
                .unwrap_or_default(),
            extra_hosts,
            init: n.get("init").map(|b| boolean(b, &w("init"))).transpose()?,
            pull_policy,
            nano_cpus,
            memory,
            files_hash,
        })
    }

    fn env_files(&self, n: &Node, what: &str) -> Result<BTreeMap<String, String>, LoadError> {
        let items: Vec<&Node> = match &n.value {
            Value::Seq(items) => items.iter().collect(),
            _ => vec![n],
        };
        let mut out = BTreeMap::new();
        for item in items {
            let (path, required) = match &item.value {
                Value::Map(_) => {
                    check_keys(item, what, &["path", "required"])?;
                    let p = item
                        .get("path")
                        .ok_or_else(|| err(item, format!("{what}: `path` is required")))?;
                    let req = item
                        .get("required")
                        .map(|r| boolean(r, what))
                        .transpose()?
                        .unwrap_or(true);
                    (string(p, what)?, req)
                }
                _ => (string(item, what)?, true),
            };
            if Path::new(&path).is_absolute() {
                return Err(err(item, format!("{what}: {path} must be a path inside the repository, relative to the project folder")));
            }
            let full = resolve_inside(&self.root, &self.project_dir, &path)
                .map_err(|e| path_error(e, &path, "env_file", Some(&item.pos)))?;
            let Some(full) = inside_file(&self.root, &full)
                .map_err(|e| path_error(e, &path, "env_file", Some(&item.pos)))?
            else {
                if required {
                    return Err(err(item, format!("{what}: file {path} not found (set `required: false` to make it optional)")));
                }
                continue;
            };
            let name = (self.display)(&full);
            let text = crate::limits::read_text(&full)
                .map_err(|e| err(item, format!("{what}: cannot read {path}: {e}")))?;
            let lookup = |k: &str| self.vars.get(k).cloned();
            let entries = dotenv::parse(&text, &lookup)
                .map_err(|e| LoadError::at(Pos::new(name, e.line, 1), e.message))?;
            out.extend(entries);
        }
        Ok(out)
    }

    fn mount(
        &mut self,
        n: &Node,
        what: &str,
        volumes: &BTreeMap<String, Volume>,
        repo_files: &mut Vec<(String, PathBuf)>,
    ) -> Result<MountOrTmpfs, LoadError> {
        let (kind, source, target, read_only) = match &n.value {
            Value::Scalar { text, .. } => {
                let parts: Vec<&str> = text.split(':').collect();
                let (source, target, mode) = match parts.as_slice() {
                    [_] => return Err(err(n, format!("{what}: anonymous volume {text:?} cannot be protected; name it (e.g. `data:{text}`) and declare it under top-level `volumes`"))),
                    [s, t] => (*s, *t, ""),
                    [s, t, m] => (*s, *t, *m),
                    _ => return Err(err(n, format!("{what}: invalid volume {text:?} (use SOURCE:TARGET[:ro])"))),
                };
                let mut ro = false;
                for opt in mode.split(',').filter(|o| !o.is_empty()) {
                    match opt {
                        "ro" => ro = true,
                        "rw" | "cached" | "delegated" | "consistent" => {}
                        other => {
                            return Err(err(
                                n,
                                format!(
                                "{what}: volume option {other:?} is not supported (use ro or rw)"
                            ),
                            ))
                        }
                    }
                }
                let kind = if source.starts_with(['.', '/', '~']) {
                    "bind"
                } else {
                    "volume"
                };
                (kind.to_string(), source.to_string(), target.to_string(), ro)
            }
            Value::Map(_) => {
                check_keys(n, what, &["type", "source", "target", "read_only", "bind"])?;
                if let Some(b) = n.get("bind") {
                    check_keys(b, &format!("{what}.bind"), &["create_host_path"])?;
                }
                let kind = n
                    .get("type")
                    .map(|t| string(t, what))
                    .transpose()?
                    .unwrap_or_else(|| "volume".into());
                let target = string(
                    n.get("target")
                        .ok_or_else(|| err(n, format!("{what}: `target` is required")))?,
                    what,
                )?;
                if kind == "tmpfs" {
                    return Ok(MountOrTmpfs::Tmpfs(target));
                }
                let source = match n.get("source") {
                    Some(s) => string(s, what)?,
                    None => return Err(err(n, format!("{what}: `source` is required (anonymous volumes cannot be protected; name the volume)"))),
                };
                let ro = n
                    .get("read_only")
                    .map(|r| boolean(r, what))
                    .transpose()?
                    .unwrap_or(false);
                (kind, source, target, ro)
            }
            _ => {
                return Err(err(
                    n,
                    format!(
                        "{what}: each entry must be a string or a mapping, found {}",
                        n.kind()
                    ),
                ))
            }
        };
        if !target.starts_with('/') {
            return Err(err(
                n,
                format!("{what}: container path {target:?} must be absolute"),
            ));
        }
        match kind.as_str() {
            "volume" => {
                let vol = volumes.get(&source).ok_or_else(|| err(n, format!("{what}: volume `{source}` is not declared under the top-level `volumes`")))?;
                Ok(MountOrTmpfs::Mount(Mount {
                    kind: MountKind::Volume,
                    source: vol.name.clone(),
                    target,
                    read_only,
                    from_repository: false,
                }))
            }
            "bind" => {
                let (host, from_repository) = self.bind_source(n, &source, what, repo_files)?;
                Ok(MountOrTmpfs::Mount(Mount {
                    kind: MountKind::Bind,
                    source: host,
                    target,
                    read_only,
                    from_repository,
                }))
            }
            other => Err(err(
                n,
                format!(
                    "{what}: mount type {other:?} is not supported (use volume, bind or tmpfs)"
                ),
            )),
        }
    }

    /// Where a bind source lives on the host, and whether it comes from the repository.
    fn bind_source(
        &mut self,
        n: &Node,
        source: &str,
        what: &str,
        repo_files: &mut Vec<(String, PathBuf)>,
    ) -> Result<(String, bool), LoadError> {
        if source.starts_with('~') {
            return Err(err(n, format!("{what}: {source} depends on the reconciler's home folder; use an absolute host path")));
        }
        if Path::new(source).is_absolute() {
            let p = normalize(Path::new(source));
            if p.starts_with(&self.root) || self.protected.iter().any(|d| p.starts_with(d)) {
                return Err(err(n, format!("{what}: absolute path {source} points into the repository or Mooring's data; use a path relative to the project folder")));
            }
            // The policy decides whether it may reach the host, and notes it.
            return Ok((p.to_string_lossy().to_string(), false));
        }
        let full = resolve_inside(&self.root, &self.project_dir, source)
            .map_err(|e| path_error(e, source, "bind path", Some(&n.pos)))?;
        let rel = full
            .strip_prefix(&self.root)
            .unwrap_or(Path::new(""))
            .to_path_buf();
        repo_files.push((rel.to_string_lossy().to_string(), full.clone()));
        Ok((full.to_string_lossy().to_string(), true))
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

/// The keys networks and volumes share.
struct TopLevel {
    name: String,
    driver: Option<String>,
    driver_opts: BTreeMap<String, String>,
    external: bool,
    labels: BTreeMap<String, String>,
}

enum MountOrTmpfs {
    Mount(Mount),
    Tmpfs(String),
}

fn valid_service_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn port(n: &Node, what: &str) -> Result<Vec<Port>, LoadError> {
    let bad = |msg: String| err(n, format!("{what}: {msg}"));
    if let Value::Map(_) = n.value {
        check_keys(
            n,
            what,
            &["target", "published", "host_ip", "protocol", "mode"],
        )?;
        let target = n
            .get("target")
            .ok_or_else(|| bad("`target` is required".into()))?;
        let target = u16::try_from(unsigned(target, what)?)
            .map_err(|_| bad("target port out of range".into()))?;
        let published = n.get("published").map(|p| string(p, what)).transpose()?;
        if let Some(p) = &published {
            parse_range(p).ok_or_else(|| bad(format!("invalid published port {p:?}")))?;
        }
        let protocol = n
            .get("protocol")
            .map(|p| string(p, what))
            .transpose()?
            .unwrap_or_else(|| "tcp".into());
        check_protocol(&protocol).map_err(bad)?;
        if let Some(m) = n.get("mode") {
            if string(m, what)? != "ingress" && string(m, what)? != "host" {
                return Err(bad("mode must be ingress or host".into()));
            }
        }
        return Ok(vec![Port {
            target,
            published,
            host_ip: n.get("host_ip").map(|h| string(h, what)).transpose()?,
            protocol,
        }]);
    }
    let text = string(n, what)?;
    let (spec, protocol) = match text.rsplit_once('/') {
        Some((s, p)) => (s, p.to_string()),
        None => (text.as_str(), "tcp".to_string()),
    };
    check_protocol(&protocol).map_err(bad)?;
    // [HOST_IP:][HOST:]CONTAINER, the host IP possibly in brackets (IPv6).
    let (host_ip, rest) = if let Some(stripped) = spec.strip_prefix('[') {
        let (ip, rest) = stripped
            .split_once("]:")
            .ok_or_else(|| bad(format!("invalid port {text:?}")))?;
        (Some(ip.to_string()), rest)
    } else {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts.len() {
            1 | 2 => (None, spec),
            3 => (Some(parts[0].to_string()), &spec[parts[0].len() + 1..]),
            _ => {
                return Err(bad(format!(
                    "invalid port {text:?} (use [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL])"
                )))
            }
        }
    };
    let (published, container) = match rest.split_once(':') {
        Some((h, c)) => (Some(h), c),
        None => (None, rest),
    };
    let (c_start, c_end) = parse_range(container)
        .ok_or_else(|| bad(format!("invalid container port {container:?} in {text:?}")))?;
    let host = match published.filter(|p| !p.is_empty()) {
        Some(p) => Some(
            parse_range(p).ok_or_else(|| bad(format!("invalid host port {p:?} in {text:?}")))?,
        ),
        None => None,
    };
    let count = c_end - c_start + 1;
    let mut out = Vec::new();
    for i in 0..count {
        let published = match host {
            None => None,
            Some((h_start, h_end)) if h_end - h_start + 1 == count => {
                Some((h_start + i).to_string())
            }
            Some((h_start, h_end)) if count == 1 => Some(format!("{h_start}-{h_end}")),
            Some(_) => {
                return Err(bad(format!(
                    "host and container port ranges differ in size in {text:?}"
                )))
            }
        };
        out.push(Port {
            target: c_start + i,
            published,
            host_ip: host_ip.clone(),
            protocol: protocol.clone(),
        });
    }
    Ok(out)
}

fn parse_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b): (u16, u16) = (a.parse().ok()?, b.parse().ok()?);
    (a > 0 && a <= b).then_some((a, b))
}

fn check_protocol(p: &str) -> Result<(), String> {
    match p {
        "tcp" | "udp" | "sctp" => Ok(()),
        other => Err(format!("unknown protocol {other:?} (use tcp, udp or sctp)")),
    }
}

fn healthcheck(n: &Node, what: &str) -> Result<Option<Healthcheck>, LoadError> {
    check_keys(
        n,
        what,
        &[
            "test",
            "interval",
            "timeout",
            "retries",
            "start_period",
            "disable",
        ],
    )?;
    if n.get("disable")
        .map(|d| boolean(d, what))
        .transpose()?
        .unwrap_or(false)
    {
        return Ok(Some(Healthcheck {
            test: vec!["NONE".into()],
            interval: None,
            timeout: None,
            retries: None,
            start_period: None,
        }));
    }
    let test = match n.get("test") {
        None => {
            return Err(err(
                n,
                format!("{what}: `test` is required (or `disable: true`)"),
            ))
        }
        Some(t) => match &t.value {
            Value::Scalar { text, .. } => vec!["CMD-SHELL".to_string(), text.clone()],
            _ => {
                let list = string_list(t, &format!("{what}.test"))?;
                if !matches!(
                    list.first().map(String::as_str),
                    Some("CMD" | "CMD-SHELL" | "NONE")
                ) {
                    return Err(err(
                        t,
                        format!("{what}.test: a list must start with CMD, CMD-SHELL or NONE"),
                    ));
                }
                list
            }
        },
    };
    let d = |k: &str| {
        n.get(k)
            .map(|v| duration(v, &format!("{what}.{k}")))
            .transpose()
    };
    Ok(Some(Healthcheck {
        test,
        interval: d("interval")?,
        timeout: d("timeout")?,
        retries: n
            .get("retries")
            .map(|r| unsigned(r, &format!("{what}.retries")))
            .transpose()?,
        start_period: d("start_period")?,
    }))
}

fn depends_on(n: &Node, what: &str) -> Result<BTreeMap<String, DependsOn>, LoadError> {
    let map = list_to_map(n.clone(), "depends_on");
    let mut out = BTreeMap::new();
    for (k, v) in entries(&map, what)? {
        let key = key_of(k).to_string();
        let dw = format!("{what}.{key}");
        check_keys(v, &dw, &["condition", "required", "restart"])?;
        let condition = match v.get("condition") {
            None => DependsOnCondition::ServiceStarted,
            Some(c) => match string(c, &dw)?.as_str() {
                "service_started" => DependsOnCondition::ServiceStarted,
                "service_healthy" => DependsOnCondition::ServiceHealthy,
                "service_completed_successfully" => DependsOnCondition::ServiceCompletedSuccessfully,
                other => return Err(err(c, format!("{dw}.condition: {other:?} is not a condition (use service_started, service_healthy or service_completed_successfully)"))),
            },
        };
        let required = v
            .get("required")
            .map(|r| boolean(r, &dw))
            .transpose()?
            .unwrap_or(true);
        let restart = v
            .get("restart")
            .map(|r| boolean(r, &dw))
            .transpose()?
            .unwrap_or(false);
        out.insert(
            key,
            DependsOn {
                condition,
                required,
                restart,
            },
        );
    }
    Ok(out)
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

#[cfg(test)]
mod tests;
