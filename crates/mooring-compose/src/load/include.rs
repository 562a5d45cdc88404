//! `include`: other Compose projects brought into this one, as Compose does. Each
//! entry (`path`, a file or a list merged in order; `project_directory`, default the
//! first file's folder; `env_file`, default that folder's `.env`) is read inside the
//! snapshot, interpolated with its own variables, its own `include` and `extends`
//! resolved, its relative paths rebased onto this project's folder, and its services,
//! networks, volumes, secrets and configs added — a name this project already has is
//! an error, as in Compose. Nesting is bounded.

use super::extends::{rebase, relative, resolve_extends};
use super::files::{path_error, Snapshot};
use super::{interpolate_tree, variables_from};
use crate::decode::*;
use crate::error::LoadError;
use crate::merge::merge_documents;
use crate::paths::{inside_file, normalize, resolve_inside};
use crate::yaml::{self, Node, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How deep includes may nest.
const MAX_DEPTH: usize = 8;

/// Replaces `include` in `doc` (whose relative paths resolve against `dir`) with
/// what it brings.
pub(super) fn resolve_includes(
    doc: &mut Node,
    snapshot: &Snapshot,
    dir: &Path,
    environment: &BTreeMap<String, String>,
    notes: &mut Vec<String>,
    depth: usize,
) -> Result<(), LoadError> {
    let Some(list) = doc.get("include").cloned() else {
        return Ok(());
    };
    if depth >= MAX_DEPTH {
        return Err(err(
            &list,
            format!("include: nested more than {MAX_DEPTH} levels deep"),
        ));
    }
    let items = match &list.value {
        Value::Seq(items) => items.clone(),
        _ => {
            return Err(err(
                &list,
                format!("include must be a list, found {}", list.kind()),
            ))
        }
    };
    let root = &snapshot.root;
    let open = |rel: &str, at: &Node, what: &str| -> Result<PathBuf, LoadError> {
        let p =
            resolve_inside(root, dir, rel).map_err(|e| path_error(e, rel, what, Some(&at.pos)))?;
        inside_file(root, &p)
            .map_err(|e| path_error(e, rel, what, Some(&at.pos)))?
            .ok_or_else(|| err(at, format!("include: {what} {rel} not found")))
    };
    for item in &items {
        let (paths, project_dir, env_file) = match &item.value {
            Value::Scalar { text, .. } => (vec![text.clone()], None, None),
            Value::Map(_) => {
                check_keys(item, "include", &["path", "project_directory", "env_file"])?;
                let p = item
                    .get("path")
                    .ok_or_else(|| err(item, "include: `path` is required"))?;
                let text = |k: &str| {
                    item.get(k)
                        .map(|v| string(v, &format!("include.{k}")))
                        .transpose()
                };
                (
                    string_or_list(p, "include.path")?,
                    text("project_directory")?,
                    text("env_file")?,
                )
            }
            _ => return Err(err(item, "include: each entry is a path or a mapping")),
        };
        let files: Vec<PathBuf> = paths
            .iter()
            .map(|p| open(p, item, "file"))
            .collect::<Result<_, _>>()?;
        let sub_dir = project_directory_of(&project_dir, dir, &files);
        if !sub_dir.starts_with(root) {
            return Err(err(
                item,
                format!(
                    "include.project_directory {} leaves the repository",
                    project_dir.as_deref().unwrap_or_default()
                ),
            ));
        }
        let dotenv = match &env_file {
            Some(e) => open(e, item, "env_file")?,
            None => sub_dir.join(".env"),
        };
        let vars = variables_from(snapshot, &dotenv, environment)?;
        let mut merged: Option<Node> = None;
        for f in &files {
            let text = snapshot.read(f)?;
            let mut d = yaml::parse(&text, &snapshot.display(f))?;
            interpolate_tree(&mut d, &vars, notes)?;
            merged = Some(match merged {
                None => d,
                Some(base) => merge_documents(base, d),
            });
        }
        let Some(mut sub) = merged else { continue };
        resolve_includes(&mut sub, snapshot, &sub_dir, environment, notes, depth + 1)?;
        resolve_extends(&mut sub, snapshot, &sub_dir, &vars, notes)?;
        if sub_dir != dir {
            rebase_project(&mut sub, &sub_dir, dir);
        }
        add_resources(doc, sub, item)?;
    }
    if let Value::Map(entries) = &mut doc.value {
        entries.retain(|(k, _)| k.text() != Some("include"));
    }
    Ok(())
}

/// The included project's folder: `project_directory` (relative to `dir`), else the
/// first file's folder.
fn project_directory_of(given: &Option<String>, dir: &Path, files: &[PathBuf]) -> PathBuf {
    match given {
        Some(p) => normalize(&dir.join(p)),
        None => files
            .first()
            .and_then(|f| f.parent())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.to_path_buf()),
    }
}

/// Rebases the relative paths of an included project from `from` onto `to`: its
/// services' binds and env files, and its secrets' and configs' files.
fn rebase_project(doc: &mut Node, from: &Path, to: &Path) {
    let Value::Map(sections) = &mut doc.value else {
        return;
    };
    for (k, v) in sections.iter_mut() {
        match k.text() {
            Some("services") => {
                if let Value::Map(services) = &mut v.value {
                    for (_, s) in services.iter_mut() {
                        rebase(s, from, to);
                    }
                }
            }
            Some("secrets" | "configs") => {
                if let Value::Map(items) = &mut v.value {
                    for (_, item) in items.iter_mut() {
                        if let Value::Map(fields) = &mut item.value {
                            for (fk, fv) in fields.iter_mut() {
                                if let (Some("file"), Value::Scalar { text, .. }) =
                                    (fk.text(), &mut fv.value)
                                {
                                    if !Path::new(text.as_str()).is_absolute() {
                                        let abs = normalize(&from.join(text.as_str()));
                                        *text = relative(to, &abs).to_string_lossy().into_owned();
                                    }
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Adds the included project's resources to `doc`; a name both declare is an error.
fn add_resources(doc: &mut Node, sub: Node, at: &Node) -> Result<(), LoadError> {
    let Value::Map(sub_sections) = sub.value else {
        return Ok(());
    };
    let Value::Map(sections) = &mut doc.value else {
        return Ok(());
    };
    for (key, value) in sub_sections {
        let Some(name) = key.text().map(str::to_string) else {
            continue;
        };
        if !["services", "networks", "volumes", "secrets", "configs"].contains(&name.as_str()) {
            continue;
        }
        let Value::Map(new_entries) = value.value else {
            continue;
        };
        match sections
            .iter_mut()
            .find(|(k, _)| k.text() == Some(name.as_str()))
        {
            Some((_, existing)) => {
                let Value::Map(entries) = &mut existing.value else {
                    continue;
                };
                for (k, v) in new_entries {
                    if entries.iter().any(|(e, _)| e.text() == k.text()) {
                        return Err(err(
                            at,
                            format!(
                                "include: {name}.{} is declared both here and in the included project",
                                k.text().unwrap_or_default()
                            ),
                        ));
                    }
                    entries.push((k, v));
                }
            }
            None => sections.push((key, Node::new(Value::Map(new_entries), value.pos))),
        }
    }
    Ok(())
}
