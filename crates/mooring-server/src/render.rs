//! From a source and a revision to a rendered project: check out (Git) or read in
//! place (folder), render, and place repository paths where they live on the host
//! (the app's deploy tree). Shared by the one-shot CLI and the daemon.

use mooring_compose::{load, LoadError, LoadOptions};
use mooring_core::Project;
use mooring_vcs::{sync_tree, Cache, Revision, SourceError, SourceSpec};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a revision could not be rendered. Nothing is applied.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("rendering {origin} at {revision}: {error}")]
    Load {
        origin: String,
        revision: String,
        error: LoadError,
    },
    #[error("{0}")]
    Io(String),
}

/// What to render.
#[derive(Debug, Clone)]
pub struct RenderRequest<'a> {
    pub data_dir: &'a Path,
    /// The source cache (with the source's credentials).
    pub cache: &'a Cache,
    pub spec: &'a SourceSpec,
    pub revision: &'a Revision,
    /// Folder in the source holding the Compose files.
    pub path: &'a str,
    /// `-f` files; empty = discovery.
    pub files: &'a [String],
    /// App name (wins over `name:` in the file).
    pub app: Option<&'a str>,
    /// Variables for interpolation besides the project's `.env`: the daemon passes
    /// the app's [`AppEnv::interpolation`](crate::config::AppEnv::interpolation), the
    /// one-shot CLI [`shell_environment`].
    pub environment: BTreeMap<String, String>,
}

/// A rendered project and where it came from.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub project: Project,
    pub revision: Revision,
    /// For Git sources: the snapshot, copied to `deploy_tree` before applying.
    snapshot_root: Option<PathBuf>,
    deploy_tree: Option<PathBuf>,
}

impl Rendered {
    /// Copies the snapshot to the app's deploy tree (Git sources), where the
    /// containers' repository bind mounts point.
    pub fn materialize(&self) -> Result<(), String> {
        if let (Some(from), Some(to)) = (&self.snapshot_root, &self.deploy_tree) {
            sync_tree(from, to)
                .map_err(|e| format!("writing the deploy tree {}: {e}", to.display()))?;
        }
        Ok(())
    }
}

/// The one-shot CLI's interpolation variables: the user's shell environment, as
/// `docker compose` uses it, without the `MOORING_*` variables that configure Mooring
/// (the daemon never uses its process environment: see `AppEnv`).
pub fn shell_environment() -> BTreeMap<String, String> {
    std::env::vars()
        .filter(|(name, _)| !name.starts_with("MOORING_"))
        .collect()
}

/// Checks out `revision` and renders the project at `path` in it.
pub fn render(req: RenderRequest<'_>) -> Result<Rendered, RenderError> {
    let snapshot = req.cache.checkout(req.spec, req.revision, req.path)?;
    let project_dir = snapshot.root.join(req.path);
    let default_name = match (req.spec, req.path.trim_matches('/')) {
        (SourceSpec::Git { url, .. }, "" | ".") => Some(repo_name(url)),
        _ => None,
    };
    let opts = LoadOptions {
        project_dir,
        snapshot_root: snapshot.root.clone(),
        files: req.files.to_vec(),
        project_name: req.app.map(str::to_string),
        default_name,
        environment: req.environment,
        protected_dirs: vec![req.data_dir.to_path_buf()],
    };
    let mut project = load(&opts).map_err(|error| RenderError::Load {
        origin: req.spec.to_string(),
        revision: req.revision.describe.clone(),
        error,
    })?;
    match req.spec {
        SourceSpec::Dir { .. } => Ok(Rendered {
            project,
            revision: req.revision.clone(),
            snapshot_root: None,
            deploy_tree: None,
        }),
        _ => {
            let root = snapshot.root.canonicalize().map_err(|e| {
                RenderError::Io(format!("opening {}: {e}", snapshot.root.display()))
            })?;
            let tree = req.data_dir.join("apps").join(&project.name).join("tree");
            project.rebase_repository_paths(&root, &tree);
            Ok(Rendered {
                project,
                revision: req.revision.clone(),
                snapshot_root: Some(root),
                deploy_tree: Some(tree),
            })
        }
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
