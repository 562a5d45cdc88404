//! `extends`: a service built on another, in the same file (`extends: base` or
//! `{service: base}`) or in another (`{file: common.yaml, service: base}`, read
//! inside the snapshot and interpolated like the project's files). The two merge as
//! Compose merges an override (`merge::merge_service`: the extending service wins),
//! recursively; a cycle is an error. Relative bind sources and `env_file` paths of a
//! service taken from another folder are rebased onto the project folder, as Compose
//! resolves them against the file that declares them.

use super::files::{path_error, Snapshot};
use super::interpolate_tree;
use crate::decode::*;
use crate::error::LoadError;
use crate::merge::merge_service;
use crate::paths::{inside_file, normalize, resolve_inside};
use crate::yaml::{self, Node, Value};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Where a service definition comes from: its file's folder and that file's services.
#[derive(Clone)]
struct Origin {
    dir: PathBuf,
    /// The file, for messages and cycle detection (`None`: the project's own files).
    file: Option<PathBuf>,
    services: Node,
}

/// Replaces every service's `extends` with the merged definition.
pub(super) fn resolve_extends(
    doc: &mut Node,
    snapshot: &Snapshot,
    dir: &Path,
    vars: &BTreeMap<String, String>,
    notes: &mut Vec<String>,
) -> Result<(), LoadError> {
    let Some(services) = doc.get("services").cloned() else {
        return Ok(());
    };
    if !entries(&services, "services")?
        .iter()
        .any(|(_, s)| s.get("extends").is_some())
    {
        return Ok(());
    }
    let origin = Origin {
        dir: dir.to_path_buf(),
        file: None,
        services: services.clone(),
    };
    let mut resolved = Vec::new();
    for (k, s) in entries(&services, "services")? {
        let name = key_of(k).to_string();
        let node = if s.get("extends").is_some() {
            let mut ctx = Ctx {
                snapshot,
                vars,
                notes,
                stack: vec![],
            };
            ctx.resolve(&name, s, &origin)?
        } else {
            s.clone()
        };
        resolved.push((k.clone(), node));
    }
    if let Value::Map(entries) = &mut doc.value {
        for (k, v) in entries.iter_mut() {
            if k.text() == Some("services") {
                *v = Node::new(Value::Map(resolved), v.pos.clone());
                break;
            }
        }
    }
    Ok(())
}

struct Ctx<'a> {
    snapshot: &'a Snapshot,
    vars: &'a BTreeMap<String, String>,
    notes: &'a mut Vec<String>,
    /// The services being resolved, outermost first: `(file, service)`.
    stack: Vec<(Option<PathBuf>, String)>,
}

impl Ctx<'_> {
    /// `node` (service `name` of `origin`) with its `extends` merged in.
    fn resolve(&mut self, name: &str, node: &Node, origin: &Origin) -> Result<Node, LoadError> {
        let Some(ext) = node.get("extends") else {
            return Ok(node.clone());
        };
        let what = format!("services.{name}.extends");
        let (service, file) = match &ext.value {
            Value::Scalar { text, .. } => (text.clone(), None),
            Value::Map(_) => {
                check_keys(ext, &what, &["service", "file"])?;
                let service = string(
                    ext.get("service")
                        .ok_or_else(|| err(ext, format!("{what}: `service` is required")))?,
                    &format!("{what}.service"),
                )?;
                let file = ext
                    .get("file")
                    .map(|f| string(f, &format!("{what}.file")))
                    .transpose()?;
                (service, file)
            }
            _ => {
                return Err(err(
                    ext,
                    format!(
                        "{what} must be a service name or a mapping, found {}",
                        ext.kind()
                    ),
                ))
            }
        };
        let base_origin = match &file {
            None => origin.clone(),
            Some(f) => self.open(f, ext, &what, origin)?,
        };
        let key = (base_origin.file.clone(), service.clone());
        let here = (origin.file.clone(), name.to_string());
        if self.stack.contains(&key) || key == here {
            let chain: Vec<String> = self
                .stack
                .iter()
                .chain([&here, &key])
                .map(|(_, s)| s.clone())
                .collect();
            return Err(err(
                ext,
                format!(
                    "{what}: services extend each other in a cycle: {}",
                    chain.join(" → ")
                ),
            ));
        }
        let base = base_origin.services.get(&service).ok_or_else(|| {
            let place = match &base_origin.file {
                Some(f) => format!("in {}", self.snapshot.display(f)),
                None => "in this project".to_string(),
            };
            err(
                ext,
                format!("{what}: service `{service}` is not declared {place}"),
            )
        })?;
        self.stack.push(here);
        let mut base = self.resolve(&service, base, &base_origin)?;
        self.stack.pop();
        // Relative to the extending service's folder from here on.
        if base_origin.dir != origin.dir {
            rebase(&mut base, &base_origin.dir, &origin.dir);
        }
        let mut over = node.clone();
        remove_key(&mut over, "extends");
        remove_key(&mut base, "extends");
        Ok(merge_service(base, over))
    }

    /// Reads, checks and interpolates the file an `extends` names.
    fn open(
        &mut self,
        file: &str,
        at: &Node,
        what: &str,
        from: &Origin,
    ) -> Result<Origin, LoadError> {
        let root = &self.snapshot.root;
        let path = resolve_inside(root, &from.dir, file)
            .map_err(|e| path_error(e, file, "extends file", Some(&at.pos)))?;
        let path = inside_file(root, &path)
            .map_err(|e| path_error(e, file, "extends file", Some(&at.pos)))?
            .ok_or_else(|| err(at, format!("{what}.file: {file} not found")))?;
        let text = self.snapshot.read(&path)?;
        let mut doc = yaml::parse(&text, &self.snapshot.display(&path))?;
        interpolate_tree(&mut doc, self.vars, self.notes)?;
        let services = doc
            .get("services")
            .cloned()
            .ok_or_else(|| err(at, format!("{what}.file: {file} declares no `services`")))?;
        Ok(Origin {
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            file: Some(path),
            services,
        })
    }
}

fn remove_key(node: &mut Node, key: &str) {
    if let Value::Map(entries) = &mut node.value {
        entries.retain(|(k, _)| k.text() != Some(key));
    }
}

/// Makes the relative paths of a service from folder `from` relative to `to`: bind
/// sources (short and long syntax) and `env_file` entries.
pub(super) fn rebase(service: &mut Node, from: &Path, to: &Path) {
    let move_path = |p: &str| -> String {
        let abs = normalize(&from.join(p));
        relative(to, &abs).to_string_lossy().into_owned()
    };
    let Value::Map(entries) = &mut service.value else {
        return;
    };
    for (k, v) in entries.iter_mut() {
        match k.text() {
            Some("volumes") => {
                if let Value::Seq(items) = &mut v.value {
                    for item in items.iter_mut() {
                        match &mut item.value {
                            Value::Scalar { text, .. } if text.starts_with('.') => {
                                let (src, rest) =
                                    text.split_once(':').unwrap_or((text.as_str(), ""));
                                let moved = move_path(src);
                                *text = if rest.is_empty() {
                                    moved
                                } else {
                                    format!("{moved}:{rest}")
                                };
                            }
                            Value::Map(fields) => {
                                for (fk, fv) in fields.iter_mut() {
                                    if let (Some("source"), Value::Scalar { text, .. }) =
                                        (fk.text(), &mut fv.value)
                                    {
                                        if text.starts_with('.') {
                                            *text = move_path(text);
                                        }
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            Some("env_file") => {
                let mut fix = |n: &mut Node| match &mut n.value {
                    Value::Scalar { text, .. } if !Path::new(text.as_str()).is_absolute() => {
                        *text = move_path(text);
                    }
                    Value::Map(fields) => {
                        for (fk, fv) in fields.iter_mut() {
                            if let (Some("path"), Value::Scalar { text, .. }) =
                                (fk.text(), &mut fv.value)
                            {
                                if !Path::new(text.as_str()).is_absolute() {
                                    *text = move_path(text);
                                }
                            }
                        }
                    }
                    _ => {}
                };
                match &mut v.value {
                    Value::Seq(items) => items.iter_mut().for_each(&mut fix),
                    _ => fix(v),
                }
            }
            _ => {}
        }
    }
}

/// `to` as a path relative to `base` (both absolute and normalised): `../x/y`.
pub(super) fn relative(base: &Path, to: &Path) -> PathBuf {
    let b: Vec<Component> = base.components().collect();
    let t: Vec<Component> = to.components().collect();
    let common = b.iter().zip(&t).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::from(".");
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    out
}
