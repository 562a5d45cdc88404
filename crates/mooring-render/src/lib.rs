//! The render stage of the loop, source + revision → rendered project + deploy tree:
//! check out (Git, Subversion, Mercurial) or read in place (folder), render with
//! `mooring_compose`, enforce the app's policy with the host's view of its paths, and
//! place repository paths where they live on the host (the app's deploy tree). Below
//! both the one-shot CLI (`mooring`) and the daemon (`mooring-server`), which share it.

use mooring_compose::{load, LoadError, LoadOptions};
use mooring_core::policy::{self, HostFacts, Policy};
use mooring_core::{MountKind, Project};
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
    /// The app's policy refuses what the revision asks of the host.
    #[error("{origin} at {revision} asks for more than the app's policy allows; nothing was applied:\n{message}")]
    Policy {
        origin: String,
        revision: String,
        message: String,
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
    /// The host of an app deployed to several: its `compose.<host>.yaml` is merged
    /// last when present, and its deploy tree is `apps/<app>@<host>`, one per host.
    pub host: Option<&'a str>,
    /// The project goes to a Swarm manager as a stack (see `LoadOptions::swarm`).
    pub swarm: bool,
    /// Variables for interpolation besides the project's `.env`: the daemon passes
    /// the app's `AppEnv::interpolation` (`mooring_server::config`), the one-shot CLI
    /// [`shell_environment`].
    pub environment: BTreeMap<String, String>,
    /// What the repository may ask of the host.
    pub policy: &'a Policy,
    /// Mooring's own folders and files besides `data_dir` (the configuration's folder):
    /// never bind sources.
    pub protected: &'a [PathBuf],
    /// Decrypts the repository's encrypted data files (`mooring_sops::Sops`).
    pub decrypter: Option<std::sync::Arc<dyn mooring_compose::Decrypter>>,
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
        // At the repository's root the folder is the snapshot's; the name is the repository's.
        (
            SourceSpec::Git { url, .. } | SourceSpec::Svn { url, .. } | SourceSpec::Hg { url, .. },
            "" | ".",
        ) => Some(repo_name(url)),
        _ => None,
    };
    let mut protected = vec![req.data_dir.to_path_buf()];
    protected.extend(req.protected.iter().cloned());
    let opts = LoadOptions {
        project_dir,
        snapshot_root: snapshot.root.clone(),
        files: req.files.to_vec(),
        project_name: req.app.map(str::to_string),
        default_name,
        environment: req.environment,
        protected_dirs: protected.clone(),
        decrypter: req.decrypter,
        optional_override: req.host.map(|h| format!("compose.{h}.yaml")),
        swarm: req.swarm,
        digest_key: if req.swarm {
            Some(digest_key(req.data_dir).map_err(|e| RenderError::Load {
                origin: req.spec.to_string(),
                revision: req.revision.describe.clone(),
                error: LoadError::new(format!(
                    "the key Swarm secrets and configs are named with ({}): {e}",
                    req.data_dir.join(DIGEST_KEY).display()
                )),
            })?)
        } else {
            None
        },
    };
    let mut project = load(&opts).map_err(|error| RenderError::Load {
        origin: req.spec.to_string(),
        revision: req.revision.describe.clone(),
        error,
    })?;
    enforce_policy(&mut project, req.policy, &protected).map_err(|message| {
        RenderError::Policy {
            origin: req.spec.to_string(),
            revision: req.revision.describe.clone(),
            message,
        }
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
            let folder = match req.host {
                Some(host) => format!("{}@{host}", project.name),
                None => project.name.clone(),
            };
            let tree = req.data_dir.join("apps").join(folder).join("tree");
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

/// Checks a rendered project against the app's policy, with the host's view of its
/// paths (symlinks resolved here, on the host); the policy's notes join the project's.
/// `Err` holds one line per refusal, each saying how to allow it.
pub fn enforce_policy(
    project: &mut Project,
    policy: &Policy,
    protected: &[PathBuf],
) -> Result<(), String> {
    let facts = host_facts(project, protected);
    let verdict = policy::check(project, policy, &facts);
    if !verdict.allowed() {
        return Err(verdict.refusal_message(policy));
    }
    project.notes.extend(verdict.note_lines());
    Ok(())
}

/// Mooring's own paths, and every absolute host path the project names resolved
/// through the host's symlinks.
fn host_facts(project: &Project, protected: &[PathBuf]) -> HostFacts {
    let mut paths: Vec<&str> = project
        .services
        .values()
        .flat_map(|s| &s.mounts)
        .filter(|m| m.kind == MountKind::Bind && !m.from_repository)
        .map(|m| m.source.as_str())
        .collect();
    paths.extend(
        project
            .volumes
            .values()
            .filter_map(|v| v.driver_opts.get("device"))
            .filter(|d| d.starts_with('/'))
            .map(String::as_str),
    );
    let protected = protected
        .iter()
        .flat_map(|p| [Some(p.clone()), p.canonicalize().ok()])
        .flatten()
        .map(|p| p.to_string_lossy().to_string());
    HostFacts {
        protected: protected.collect(),
        resolved: paths
            .into_iter()
            .filter_map(|p| Some((p.to_string(), resolve_host_path(Path::new(p))?)))
            .collect(),
    }
}

/// `path` as the host resolves it: its longest existing ancestor through symlinks,
/// then the rest (Docker creates missing bind sources).
fn resolve_host_path(path: &Path) -> Option<String> {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let full = rest.iter().rev().fold(real, |p: PathBuf, c| p.join(c));
            return Some(full.to_string_lossy().to_string());
        }
        rest.push(existing.file_name()?.to_os_string());
        existing = existing.parent()?;
    }
}

/// `https://host/ops/infra.git` → `infra`.
fn repo_name(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    let last = trimmed.rsplit(['/', ':']).next().unwrap_or(trimmed);
    last.strip_suffix(".git").unwrap_or(last).to_string()
}

/// The file in the data folder holding the key of Swarm files' digests.
const DIGEST_KEY: &str = "swarm-digest.key";

/// The daemon's key for Swarm files' digests: read from the data folder, made there
/// (32 random bytes, readable by its owner only, never through a symlink) the first
/// time. Made whole in a private temporary file, then linked into place (never over
/// one already there): apps rendered at once never read a key half written.
fn digest_key(data_dir: &Path) -> std::io::Result<[u8; 32]> {
    use std::io::{Read, Write};
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let path = data_dir.join(DIGEST_KEY);
    let no_follow = rustix::fs::OFlags::NOFOLLOW.bits() as i32;
    let read = || -> std::io::Result<[u8; 32]> {
        let mut key = [0u8; 32];
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(no_follow)
            .open(&path)?
            .read_exact(&mut key)?;
        Ok(key)
    };
    match read() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        other => return other,
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(std::io::Error::other)?;
    let mut made = tempfile::Builder::new()
        .prefix(".swarm-digest-")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(data_dir)?;
    made.write_all(&key)?;
    made.as_file().sync_all()?;
    match std::fs::hard_link(made.path(), &path) {
        Ok(()) => {
            // The folder's entry on disk too: a key lost in a crash would rename every
            // secret (a rollout).
            std::fs::File::open(data_dir)?.sync_all()?;
            Ok(key)
        }
        // Another render made it first: its key is the one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn repo_names() {
        assert_eq!(super::repo_name("https://h/ops/infra.git"), "infra");
        assert_eq!(super::repo_name("git@h:ops/infra"), "infra");
        assert_eq!(super::repo_name("/srv/repos/blog/"), "blog");
    }

    #[test]
    fn the_swarm_digest_key_is_made_once_private_and_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = super::digest_key(dir.path()).unwrap();
        assert_eq!(super::digest_key(dir.path()).unwrap(), key, "kept");
        let meta = std::fs::metadata(dir.path().join(super::DIGEST_KEY)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // A symlink planted in its place is not followed.
        let other = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/hostname", other.path().join(super::DIGEST_KEY)).unwrap();
        assert!(super::digest_key(other.path()).is_err());
        // Made by many at once (twenty times over): one key, whole, for all; no
        // temporary file left.
        for _ in 0..20 {
            let racing = tempfile::tempdir().unwrap();
            let keys: Vec<[u8; 32]> = std::thread::scope(|s| {
                let each: Vec<_> = (0..16)
                    .map(|_| s.spawn(|| super::digest_key(racing.path()).unwrap()))
                    .collect();
                each.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert!(keys.iter().all(|k| *k == keys[0]));
            assert_eq!(std::fs::read_dir(racing.path()).unwrap().count(), 1);
        }
        // Keyed: another key, another name; no key, the plain sha256.
        let a = mooring_core::SwarmFile::digest(b"hunter2", Some(&key));
        assert_ne!(
            a,
            mooring_core::SwarmFile::digest(b"hunter2", Some(&[7; 32]))
        );
        assert_eq!(a.len(), 12);
        assert_eq!(
            mooring_core::SwarmFile::digest(b"hunter2", None),
            mooring_core::hash::sha256_hex(b"hunter2")[..12]
        );
    }
}
