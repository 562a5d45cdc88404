//! A service's `environment`, `env_file` (read inside the snapshot, `required`) and
//! `labels` (Mooring's and Compose's own label keys are reserved).

use super::super::files::path_error;
use super::super::Decoder;
use crate::decode::*;
use crate::dotenv;
use crate::error::{LoadError, Pos};
use crate::paths::{inside_file, resolve_inside};
use crate::yaml::{Node, Value};
use std::collections::BTreeMap;
use std::path::Path;

impl Decoder<'_> {
    /// `env_file` entries, then `environment` over them.
    pub(super) fn environment(
        &self,
        n: &Node,
        what: &str,
    ) -> Result<BTreeMap<String, String>, LoadError> {
        let mut environment = BTreeMap::new();
        if let Some(ef) = n.get("env_file") {
            environment.extend(self.env_files(ef, &format!("{what}.env_file"))?);
        }
        environment.extend(self.string_map(n.get("environment"), &format!("{what}.environment"))?);
        Ok(environment)
    }

    /// `labels`, none under `io.mooring.` or `com.docker.compose.`.
    pub(super) fn labels(
        &self,
        n: &Node,
        what: &str,
    ) -> Result<BTreeMap<String, String>, LoadError> {
        let labels = self.label_map(n.get("labels"), &format!("{what}.labels"))?;
        if let Some(bad) = labels
            .keys()
            .find(|k| k.starts_with("io.mooring.") || k.starts_with("com.docker.compose."))
        {
            return Err(err(
                n.get("labels").unwrap_or(n),
                format!("{what}.labels: label {bad} is reserved for Mooring and Compose"),
            ));
        }
        Ok(labels)
    }

    fn env_files(&self, n: &Node, what: &str) -> Result<BTreeMap<String, String>, LoadError> {
        let items: Vec<&Node> = match &n.value {
            Value::Seq(items) => items.iter().collect(),
            _ => vec![n],
        };
        let root = &self.snapshot.root;
        let mut out = BTreeMap::new();
        for item in items {
            let (path, required, raw) = match &item.value {
                Value::Map(_) => {
                    check_keys(item, what, &["path", "required", "format"])?;
                    let raw = match item.get("format").map(|f| string(f, what)).transpose()? {
                        None => false,
                        Some(f) if f == "raw" => true,
                        Some(f) => {
                            return Err(err(
                                item.get("format").unwrap_or(item),
                                format!("{what}: format {f:?} is not supported (leave it out, or use raw: values as written)"),
                            ))
                        }
                    };
                    let p = item
                        .get("path")
                        .ok_or_else(|| err(item, format!("{what}: `path` is required")))?;
                    let req = item
                        .get("required")
                        .map(|r| boolean(r, what))
                        .transpose()?
                        .unwrap_or(true);
                    (string(p, what)?, req, raw)
                }
                _ => (string(item, what)?, true, false),
            };
            if Path::new(&path).is_absolute() {
                return Err(err(item, format!("{what}: {path} must be a path inside the repository, relative to the project folder")));
            }
            let full = resolve_inside(root, &self.snapshot.project_dir, &path)
                .map_err(|e| path_error(e, &path, "env_file", Some(&item.pos)))?;
            let Some(full) = inside_file(root, &full)
                .map_err(|e| path_error(e, &path, "env_file", Some(&item.pos)))?
            else {
                if required {
                    return Err(err(item, format!("{what}: file {path} not found (set `required: false` to make it optional)")));
                }
                continue;
            };
            let name = self.snapshot.display(&full);
            let (text, encrypted) = self
                .snapshot
                .read_data(&full)
                .map_err(|e| err(item, format!("{what}: {}", e.message)))?;
            if raw {
                // `KEY=VALUE` lines taken as written: no quotes, no interpolation.
                for (i, line) in text.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let (k, v) = line.split_once('=').ok_or_else(|| {
                        LoadError::at(
                            Pos::new(name.clone(), i + 1, 1),
                            format!("{what}: a raw env file line must be KEY=VALUE"),
                        )
                    })?;
                    if encrypted {
                        self.snapshot.add_secrets([&v.to_string()]);
                    }
                    out.insert(k.to_string(), v.to_string());
                }
                continue;
            }
            let lookup = |k: &str| self.vars.get(k).cloned();
            let entries = dotenv::parse(&text, &lookup)
                .map_err(|e| LoadError::at(Pos::new(name, e.line, 1), e.message))?;
            if encrypted {
                self.snapshot.add_secrets(entries.iter().map(|(_, v)| v));
            }
            out.extend(entries);
        }
        Ok(out)
    }
}
