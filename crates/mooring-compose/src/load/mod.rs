//! From files to [`Project`], the pipeline: files ([`files`]) → `.env` → interpolation
//! → merge → decode ([`project`], [`service`]) → the project with its notes and
//! positions. The decoder's shared context ([`Decoder`]) lives here.

mod extends;
mod files;
mod files_decl;
mod include;
mod project;
mod service;

use crate::decode::*;
use crate::dotenv;
use crate::error::{LoadError, Pos};
use crate::interpolate::{interpolate, Lookup};
use crate::merge::{list_to_map, merge_documents};
use crate::paths::normalize;
use crate::yaml::{self, Node, Value};
use files::Snapshot;
use mooring_core::Project;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub use files::COMPOSE_FILE_NAMES;
pub use project::normalize_project_name;

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
    /// Decrypts the data files that are encrypted (`None`: every file is read as it is).
    pub decrypter: Option<std::sync::Arc<dyn crate::Decrypter>>,
    /// A file merged after the others when the project folder holds it, as an
    /// override file is merged (the per-host `compose.<host>.yaml` of an app deployed
    /// to several hosts); absent, nothing changes.
    pub optional_override: Option<String>,
    /// The project is deployed to a Swarm as a stack: `deploy`'s Swarm keys are its
    /// own (not noted as ignored), and `deploy.mode` may be `global`.
    pub swarm: bool,
    /// The key of the digests Swarm secrets and configs are named after (see
    /// [`mooring_core::SwarmFile::digest`]).
    pub digest_key: Option<[u8; 32]>,
}

/// Renders the project described by `opts`. An error never holds a value decrypted
/// from the repository (each is replaced by `***`).
pub fn load(opts: &LoadOptions) -> Result<Project, LoadError> {
    let snapshot = Snapshot::open(
        &opts.snapshot_root,
        &opts.project_dir,
        opts.decrypter.clone(),
    )?;
    load_from(opts, &snapshot).map_err(|mut e| {
        e.message = snapshot.found.borrow().0.scrub(&e.message);
        e
    })
}

fn load_from(opts: &LoadOptions, snapshot: &Snapshot) -> Result<Project, LoadError> {
    let vars = variables(snapshot, &opts.environment)?;
    // Compose's own variables, from the environment or the project's `.env`, when the
    // command line does not say: COMPOSE_FILE (separated by COMPOSE_PATH_SEPARATOR,
    // `:` by default) and COMPOSE_PROJECT_NAME.
    let from_env: Vec<String> = match (opts.files.is_empty(), vars.get("COMPOSE_FILE")) {
        (true, Some(list)) => {
            let sep = vars
                .get("COMPOSE_PATH_SEPARATOR")
                .map(String::as_str)
                .unwrap_or(":");
            list.split(sep)
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect()
        }
        _ => opts.files.clone(),
    };
    let mut files = snapshot.compose_files(&from_env)?;
    if let Some(name) = &opts.optional_override {
        let path = snapshot.project_dir.join(name);
        if let Some(found) = snapshot.file_inside(&path, "compose file")? {
            if !files.contains(&found) {
                files.push(found);
            }
        }
    }
    let project_name = opts
        .project_name
        .clone()
        .or_else(|| vars.get("COMPOSE_PROJECT_NAME").cloned());

    let mut notes = Vec::new();
    let mut merged: Option<Node> = None;
    for path in &files {
        let name = snapshot.display(path);
        let text = snapshot.read(path)?;
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
    let mut doc = merged.ok_or_else(|| LoadError::new("no Compose file"))?;
    include::resolve_includes(
        &mut doc,
        snapshot,
        &snapshot.project_dir,
        &opts.environment,
        &mut notes,
        0,
    )?;
    extends::resolve_extends(&mut doc, snapshot, &snapshot.project_dir, &vars, &mut notes)?;

    let mut ctx = Decoder {
        snapshot,
        protected: opts.protected_dirs.iter().map(|p| normalize(p)).collect(),
        vars,
        notes,
        positions: BTreeMap::new(),
        anonymous: Vec::new(),
        files: files_decl::Declared::default(),
        swarm: opts.swarm,
        digest_key: opts.digest_key,
    };
    let fallback_name = project_name
        .clone()
        .or_else(|| opts.default_name.clone())
        .or_else(|| {
            snapshot
                .project_dir
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
        })
        .unwrap_or_default();
    let mut project = ctx.project(&doc, project_name.as_deref(), &fallback_name)?;
    project.working_dir = snapshot.project_dir.to_string_lossy().to_string();
    project.config_files = files
        .iter()
        .map(|f| snapshot.display(f).to_string())
        .collect();
    project.notes = ctx.notes;
    project.positions = ctx.positions;
    let (secrets, masked) = snapshot.found.take();
    project.notes.extend(masked);
    project.secret_values = secrets;
    Ok(project)
}

/// Interpolation's variables: the process environment wins over the project's `.env`.
fn variables(
    snapshot: &Snapshot,
    environment: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, LoadError> {
    variables_from(snapshot, &snapshot.project_dir.join(".env"), environment)
}

/// The process environment over the env file at `dotenv` (inside the snapshot; absent
/// is fine).
fn variables_from(
    snapshot: &Snapshot,
    dotenv: &std::path::Path,
    environment: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, LoadError> {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    if let Some(dotenv_path) = snapshot.file_inside(dotenv, ".env file")? {
        let (text, encrypted) = snapshot.read_data(&dotenv_path)?;
        let lookup = |k: &str| environment.get(k).cloned();
        let entries = dotenv::parse(&text, &lookup).map_err(|e| {
            LoadError::at(
                Pos::new(snapshot.display(&dotenv_path), e.line, 1),
                e.message,
            )
        })?;
        if encrypted {
            snapshot.add_secrets(entries.iter().map(|(_, v)| v));
        }
        vars.extend(entries);
    }
    vars.extend(environment.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(vars)
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

/// The decode step's context: the snapshot, the variables (for `env_file` and null
/// values), and what decoding collects besides the project (notes, positions).
struct Decoder<'a> {
    snapshot: &'a Snapshot,
    protected: Vec<PathBuf>,
    vars: BTreeMap<String, String>,
    notes: Vec<String>,
    /// Where the entries the policy looks at were written (see [`Project::positions`]).
    positions: BTreeMap<String, String>,
    /// The anonymous volumes of the service just decoded (the project declares them).
    anonymous: Vec<mooring_core::Volume>,
    /// The top-level secrets and configs services refer to.
    files: files_decl::Declared,
    /// The project goes to a Swarm (see [`LoadOptions::swarm`]).
    swarm: bool,
    /// See [`LoadOptions::digest_key`].
    digest_key: Option<[u8; 32]>,
}

impl Decoder<'_> {
    /// A mapping (or `KEY=VALUE` list) of strings; a null value takes the variable of
    /// that name from the environment (and is dropped when unset), as Compose does for
    /// `environment` and build `args`.
    fn string_map(
        &self,
        n: Option<&Node>,
        what: &str,
    ) -> Result<BTreeMap<String, String>, LoadError> {
        self.map_of_strings(n, what, true)
    }

    /// A mapping (or `KEY=VALUE` list) of strings where a key without a value is the
    /// empty string, as Compose reads labels and options.
    fn label_map(
        &self,
        n: Option<&Node>,
        what: &str,
    ) -> Result<BTreeMap<String, String>, LoadError> {
        self.map_of_strings(n, what, false)
    }

    fn map_of_strings(
        &self,
        n: Option<&Node>,
        what: &str,
        from_variables: bool,
    ) -> Result<BTreeMap<String, String>, LoadError> {
        let Some(n) = n else {
            return Ok(BTreeMap::new());
        };
        let n = list_to_map(n.clone(), "environment");
        let mut out = BTreeMap::new();
        for (k, v) in entries(&n, what)? {
            let key = key_of(k).to_string();
            match &v.value {
                Value::Null if !from_variables => {
                    out.insert(key, String::new());
                }
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
}

/// Names `load/tests.rs` reaches through `use super::*`.
#[cfg(test)]
use {
    mooring_core::{DependsOnCondition, MountKind, PullPolicy},
    std::path::Path,
};

#[cfg(test)]
mod tests;
