//! From a SOURCE argument to a rendered project: fetch and check out (Git) or read in
//! place (folder), render, and place repository paths where they live on the host.

use anyhow::{Context, Result};
use mooring_compose::{load, LoadOptions};
use mooring_core::Project;
use mooring_vcs::{sync_tree, Cache, Revision, SourceSpec};
use std::path::{Path, PathBuf};

/// A rendered project and where it came from.
pub struct Rendered {
    pub project: Project,
    pub revision: Revision,
    /// For Git sources: the snapshot to copy to `deploy_tree` before applying.
    snapshot_root: Option<PathBuf>,
    deploy_tree: Option<PathBuf>,
}

impl Rendered {
    /// Copies the snapshot to the app's deploy tree (Git sources), where the
    /// containers' repository bind mounts point.
    pub fn materialize(&self) -> Result<()> {
        if let (Some(from), Some(to)) = (&self.snapshot_root, &self.deploy_tree) {
            sync_tree(from, to)
                .with_context(|| format!("writing the deploy tree {}", to.display()))?;
        }
        Ok(())
    }
}

fn environment() -> std::collections::BTreeMap<String, String> {
    std::env::vars().collect()
}

/// Renders a local project folder (validate, render).
pub fn local(dir: &Path, files: &[String], app: Option<&str>) -> Result<Project> {
    let opts = LoadOptions {
        project_dir: dir.to_path_buf(),
        snapshot_root: dir.to_path_buf(),
        files: files.to_vec(),
        project_name: app.map(str::to_string),
        environment: environment(),
        ..Default::default()
    };
    Ok(load(&opts)?)
}

/// Fetches SOURCE at REF and renders the project at PATH in it.
pub fn from_source(
    data_dir: &Path,
    source: &str,
    reference: Option<&str>,
    path: &str,
    files: &[String],
    app: Option<&str>,
) -> Result<Rendered> {
    let spec = SourceSpec::parse(source, reference)?;
    let cache = Cache::new(data_dir);
    let revision = cache.fetch(&spec)?;
    let snapshot = cache.checkout(&spec, &revision, path)?;
    let project_dir = snapshot.root.join(path);
    let default_name = match (&spec, path.trim_matches('/')) {
        (SourceSpec::Git { url, .. }, "" | ".") => Some(repo_name(url)),
        _ => None,
    };
    let opts = LoadOptions {
        project_dir: project_dir.clone(),
        snapshot_root: snapshot.root.clone(),
        files: files.to_vec(),
        project_name: app.map(str::to_string),
        default_name,
        environment: environment(),
        protected_dirs: vec![data_dir.to_path_buf()],
    };
    let mut project =
        load(&opts).with_context(|| format!("rendering {} at {}", spec, revision.describe))?;
    match spec {
        SourceSpec::Git { .. } => {
            let root = snapshot
                .root
                .canonicalize()
                .with_context(|| format!("opening {}", snapshot.root.display()))?;
            let tree = data_dir.join("apps").join(&project.name).join("tree");
            project.rebase_repository_paths(&root, &tree);
            Ok(Rendered {
                project,
                revision,
                snapshot_root: Some(root),
                deploy_tree: Some(tree),
            })
        }
        SourceSpec::Dir { .. } => Ok(Rendered {
            project,
            revision,
            snapshot_root: None,
            deploy_tree: None,
        }),
    }
}

/// `https://host/ops/infra.git` → `infra`.
fn repo_name(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    let last = trimmed.rsplit(['/', ':']).next().unwrap_or(trimmed);
    last.strip_suffix(".git").unwrap_or(last).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn repo_names() {
        assert_eq!(super::repo_name("https://h/ops/infra.git"), "infra");
        assert_eq!(super::repo_name("git@h:ops/infra"), "infra");
        assert_eq!(super::repo_name("/srv/repos/blog/"), "blog");
    }
}
