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
    /// Bytes from a variable, the Compose file, or a decrypted file.
    Value(Vec<u8>),
}

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
            if v.get("external")
                .map(|e| boolean(e, &format!("{what}.external")))
                .transpose()?
                .unwrap_or(false)
            {
                return Err(err(v, format!("{what}: external {section} exist in a Docker Swarm only; on a single Engine give its `file:` or `environment:`")));
            }
            for swarm in ["driver", "template_driver", "labels"] {
                if let Some(x) = v.get(swarm) {
                    return Err(err(
                        x,
                        format!(
                            "{what}.{swarm} applies to Docker Swarm {section} only; leave it out"
                        ),
                    ));
                }
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
                            ..ProjectFile::default()
                        },
                        match self.encrypted_file(&path)? {
                            Some(plain) => Source::Value(plain),
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
                            ..ProjectFile::default()
                        },
                        Source::Value(content.into_bytes()),
                    )
                }
            };
            out.insert(key, (file, source));
        }
        Ok(out)
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
