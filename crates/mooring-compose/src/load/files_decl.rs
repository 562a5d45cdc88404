//! Top-level `secrets` and `configs`: where each one's content comes from — a file
//! (in the repository, or an absolute host path the policy judges), a variable
//! (`environment:`), or the Compose file itself (`content:`, configs only). Services
//! refer to them by key (`service/mounts`).

use super::Decoder;
use crate::decode::*;
use crate::error::LoadError;
use crate::yaml::Node;
use mooring_core::ProjectFile;
use std::collections::BTreeMap;

/// What a service's reference resolves to.
#[derive(Debug, Clone)]
pub(super) enum Source {
    /// A file, by the path as written (a bind source).
    File(String),
    /// Bytes from a variable, the Compose file, or a decrypted file (on a Swarm, any
    /// file of the repository).
    Value(Vec<u8>),
    /// `external: true` on a Swarm: the object of that name exists there.
    External(String),
}

/// The most Swarm takes in a secret (500 KiB) and a config (1000 KiB).
const SWARM_MAX: [(&str, usize); 2] = [("secrets", 500 << 10), ("configs", 1000 << 10)];

/// The top-level `secrets` and `configs`, by key.
#[derive(Debug, Default)]
pub(super) struct Declared {
    pub(super) secrets: BTreeMap<String, (ProjectFile, Source)>,
    pub(super) configs: BTreeMap<String, (ProjectFile, Source)>,
}

impl Decoder<'_> {
    /// Reads `secrets` and `configs` at the top level of `doc`.
    pub(super) fn declared_files(&self, doc: &Node, project: &str) -> Result<Declared, LoadError> {
        Ok(Declared {
            secrets: self.section(doc, project, "secrets")?,
            configs: self.section(doc, project, "configs")?,
        })
    }

    fn section(
        &self,
        doc: &Node,
        project: &str,
        section: &str,
    ) -> Result<BTreeMap<String, (ProjectFile, Source)>, LoadError> {
        let mut out = BTreeMap::new();
        let Some(n) = doc.get(section) else {
            return Ok(out);
        };
        let sources: &[&str] = if section == "configs" {
            &["file", "environment", "content"]
        } else {
            &["file", "environment"]
        };
        for (k, v) in entries(n, section)? {
            let key = key_of(k).to_string();
            let what = format!("{section}.{key}");
            check_keys(
                v,
                &what,
                &[
                    &["name", "external", "labels", "driver", "template_driver"][..],
                    sources,
                ]
                .concat(),
            )?;
            let external = v
                .get("external")
                .map(|e| boolean(e, &format!("{what}.external")))
                .transpose()?
                .unwrap_or(false);
            if external && !self.swarm {
                return Err(err(v, format!("{what}: external {section} exist in a Docker Swarm only; on a single Engine give its `file:` or `environment:`")));
            }
            let swarm_only: &[&str] = if self.swarm { &[] } else { &["labels"] };
            for key in swarm_only {
                if let Some(x) = v.get(key) {
                    return Err(err(
                        x,
                        format!(
                            "{what}.{key} applies to Docker Swarm {section} only; leave it out"
                        ),
                    ));
                }
            }
            for key in ["driver", "template_driver"] {
                if let Some(x) = v.get(key) {
                    return Err(err(
                        x,
                        format!("{what}.{key}: Mooring does not use {section} drivers or templates; leave it out (the content is sent as written)"),
                    ));
                }
            }
            let labels = self.label_map(v.get("labels"), &format!("{what}.labels"))?;
            if external {
                let given: Vec<&&str> = sources.iter().filter(|s| v.get(s).is_some()).collect();
                if let Some(s) = given.first() {
                    return Err(err(
                        v.get(s).unwrap_or(v),
                        format!(
                            "{what}: an external one has no `{s}` (it exists in the Swarm already)"
                        ),
                    ));
                }
                let name = match v.get("name") {
                    Some(n) => string(n, &format!("{what}.name"))?,
                    None => key.clone(),
                };
                out.insert(
                    key,
                    (
                        ProjectFile {
                            name: name.clone(),
                            external: true,
                            labels,
                            ..ProjectFile::default()
                        },
                        Source::External(name),
                    ),
                );
                continue;
            }
            let given: Vec<&&str> = sources.iter().filter(|s| v.get(s).is_some()).collect();
            if given.len() != 1 {
                return Err(err(
                    v,
                    format!("{what} needs exactly one of {}", sources.join(", ")),
                ));
            }
            let name = match v.get("name") {
                Some(n) => string(n, &format!("{what}.name"))?,
                None => format!("{project}_{key}"),
            };
            let field = |f: &str| string(v.get(f).unwrap_or(v), &format!("{what}.{f}"));
            let (file, source) = match *given[0] {
                "file" => {
                    let path = field("file")?;
                    let shown = if std::path::Path::new(&path).is_absolute() {
                        path.clone()
                    } else {
                        crate::paths::normalize(&self.snapshot.project_dir.join(&path))
                            .to_string_lossy()
                            .into_owned()
                    };
                    (
                        ProjectFile {
                            name,
                            file: Some(shown),
                            labels: labels.clone(),
                            ..ProjectFile::default()
                        },
                        match self.encrypted_file(&path)? {
                            Some(plain) => Source::Value(plain),
                            None if self.swarm => Source::Value(self.repository_file(
                                v.get("file").unwrap_or(v),
                                &path,
                                &format!("{what}.file"),
                                "on a Swarm, Mooring reads the file and sends it to the manager, so it must be kept in the repository",
                            )?),
                            None => Source::File(path),
                        },
                    )
                }
                "environment" => {
                    let var = field("environment")?;
                    let value = self.vars.get(&var).cloned().ok_or_else(|| {
                        err(
                            v.get("environment").unwrap_or(v),
                            format!("{what}.environment: variable {var} is not set (for the daemon, give it in the app's `variables` or `pass_env`)"),
                        )
                    })?;
                    (
                        ProjectFile {
                            name,
                            environment: Some(var),
                            labels: labels.clone(),
                            ..ProjectFile::default()
                        },
                        Source::Value(value.into_bytes()),
                    )
                }
                _ => {
                    let content = field("content")?;
                    (
                        ProjectFile {
                            name,
                            content: Some(content.clone()),
                            labels,
                            ..ProjectFile::default()
                        },
                        Source::Value(content.into_bytes()),
                    )
                }
            };
            if let (Source::Value(bytes), Some((_, max))) =
                (&source, SWARM_MAX.iter().find(|(s, _)| *s == section))
            {
                if self.swarm && bytes.len() > *max {
                    return Err(err(
                        v,
                        format!(
                            "{what} holds {} bytes; Swarm takes at most {} KiB in one of its {section}",
                            bytes.len(),
                            max >> 10
                        ),
                    ));
                }
            }
            out.insert(key, (file, source));
        }
        Ok(out)
    }

    /// The bytes of `path`, a file of the repository (relative to the project folder):
    /// Mooring reads it itself and hands it on, so a host path (refused saying `why`)
    /// would let a commit copy any file the daemon can read.
    pub(super) fn repository_file(
        &self,
        at: &Node,
        path: &str,
        w: &str,
        why: &str,
    ) -> Result<Vec<u8>, LoadError> {
        if std::path::Path::new(path).is_absolute() || path.starts_with('~') {
            return Err(err(
                at,
                format!("{w}: the file {path} is outside the repository; {why}"),
            ));
        }
        let root = &self.snapshot.root;
        let full = crate::paths::resolve_inside(root, &self.snapshot.project_dir, path)
            .map_err(|e| super::files::path_error(e, path, w, Some(&at.pos)))?;
        let real = crate::paths::inside_file(root, &full)
            .map_err(|e| super::files::path_error(e, path, w, Some(&at.pos)))?
            .ok_or_else(|| {
                err(
                    at,
                    format!("{w}: the file {path} does not exist in the repository"),
                )
            })?;
        crate::limits::read_bytes(&real).map_err(|e| err(at, format!("{w}: {path}: {e}")))
    }

    /// The decrypted content of a repository file `path` (relative to the project
    /// folder) when it is encrypted. A path that does not resolve inside the snapshot
    /// is left to the mount's own checks, which say why.
    fn encrypted_file(&self, path: &str) -> Result<Option<Vec<u8>>, LoadError> {
        if std::path::Path::new(path).is_absolute() {
            return Ok(None);
        }
        let root = &self.snapshot.root;
        let Ok(full) = crate::paths::resolve_inside(root, &self.snapshot.project_dir, path) else {
            return Ok(None);
        };
        match crate::paths::inside_file(root, &full) {
            Ok(Some(full)) => self.snapshot.read_encrypted(&full),
            _ => Ok(None),
        }
    }
}
