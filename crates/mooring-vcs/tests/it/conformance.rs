//! One conformance suite, four source kinds: the same scenarios run against a Git
//! repository behind `git daemon`, a Subversion repository behind `svnserve`, a
//! Mercurial repository behind `hg serve` (all real servers on 127.0.0.1), and a
//! plain directory.
//!
//! Every repository starts with `apps/blog/compose.yaml` = `v1`,
//! `apps/blog/conf/app.conf`, `other/readme.txt` and `README.md`; the scenarios
//! fetch the folder `apps/blog` (one of them fetches the whole source and asks
//! [`Cache::path_tree`] about its folders).

use std::fs;
use std::path::{Path, PathBuf};

use mooring_testkit::git::{git, Daemon, Repo as GitRepo};
use mooring_testkit::hg::{Repo as HgRepo, Server as HgServer};
use mooring_testkit::svn::{Repo as SvnRepo, Server as SvnServer};

use mooring_vcs::{Cache, SourceError, SourceSpec};

/// What a scenario needs from a source kind.
trait Kind {
    /// The source string, as a user would give it.
    fn source(&self) -> String;
    /// Writes a file in the work tree / working copy / directory.
    fn write(&self, rel: &str, contents: &str);
    /// Records the work (no-op for a directory).
    fn commit(&self, message: &str);
    /// Creates a branch whose `apps/blog/compose.yaml` is `dev`, leaving the main
    /// line as it was; returns the ref naming it, `None` if the kind has no refs.
    fn branch(&self) -> Option<String>;
    /// Makes the source unreachable (server stopped, folder moved away).
    fn stop(&mut self);
    /// Makes it reachable again.
    fn start(&mut self);
    /// Whether the revision id only changes with the fetched path (Subversion's
    /// last changed revision, a directory's content hash).
    fn id_is_per_path(&self) -> bool;
    /// Whether equal content gives an equal tree (content-addressed trees).
    fn tree_is_content(&self) -> bool;
    /// Whether a checkout holds only the requested path.
    fn checkout_is_partial(&self) -> bool {
        true
    }
}

fn seed(write: impl Fn(&str, &str)) {
    write("apps/blog/compose.yaml", "v1\n");
    write("apps/blog/conf/app.conf", "conf\n");
    write("other/readme.txt", "other\n");
    write("README.md", "readme\n");
}

struct GitKind {
    repo: GitRepo,
    daemon: Daemon,
}

fn git_kind() -> GitKind {
    let repo = GitRepo::new("repo");
    seed(|rel, c| {
        repo.write(rel, c);
    });
    repo.commit("first");
    let daemon = Daemon::serve(&repo);
    GitKind { repo, daemon }
}

impl Kind for GitKind {
    fn source(&self) -> String {
        self.daemon.url(&self.repo)
    }
    fn write(&self, rel: &str, contents: &str) {
        self.repo.write(rel, contents);
    }
    fn commit(&self, message: &str) {
        self.repo.commit(message);
    }
    fn branch(&self) -> Option<String> {
        let work = &self.repo.work;
        git(work, &["checkout", "-q", "-b", "dev"]);
        self.repo.write("apps/blog/compose.yaml", "dev\n");
        git(work, &["commit", "-q", "-a", "-m", "dev"]);
        git(work, &["push", "-q", "origin", "dev"]);
        git(work, &["checkout", "-q", "main"]);
        Some("dev".to_string())
    }
    fn stop(&mut self) {
        self.daemon.stop();
    }
    fn start(&mut self) {
        self.daemon.restart();
    }
    fn id_is_per_path(&self) -> bool {
        false
    }
    fn tree_is_content(&self) -> bool {
        true
    }
}

struct SvnKind {
    repo: SvnRepo,
    server: SvnServer,
}

fn svn_kind() -> SvnKind {
    let repo = SvnRepo::new("repo");
    seed(|rel, c| {
        repo.write(rel, c);
    });
    repo.commit("first");
    let server = SvnServer::serve(&repo);
    SvnKind { repo, server }
}

impl Kind for SvnKind {
    fn source(&self) -> String {
        self.server.url(&self.repo)
    }
    fn write(&self, rel: &str, contents: &str) {
        self.repo.write(rel, contents);
    }
    fn commit(&self, message: &str) {
        self.repo.commit(message);
    }
    fn branch(&self) -> Option<String> {
        self.repo.copy("trunk", "branches/dev", "branch dev");
        self.repo.switch("branches/dev");
        self.repo.write("apps/blog/compose.yaml", "dev\n");
        self.repo.commit("dev");
        self.repo.switch("trunk");
        Some("branches/dev".to_string())
    }
    fn stop(&mut self) {
        self.server.stop();
    }
    fn start(&mut self) {
        self.server.restart();
    }
    fn id_is_per_path(&self) -> bool {
        true
    }
    fn tree_is_content(&self) -> bool {
        false
    }
}

struct HgKind {
    repo: HgRepo,
    server: HgServer,
}

fn hg_kind() -> HgKind {
    let repo = HgRepo::new("repo");
    seed(|rel, c| {
        repo.write(rel, c);
    });
    repo.commit("first");
    let server = HgServer::serve(&repo);
    HgKind { repo, server }
}

impl Kind for HgKind {
    fn source(&self) -> String {
        format!("hg+{}", self.server.url())
    }
    fn write(&self, rel: &str, contents: &str) {
        self.repo.write(rel, contents);
    }
    fn commit(&self, message: &str) {
        self.repo.commit(message);
    }
    fn branch(&self) -> Option<String> {
        self.repo.branch("dev");
        self.repo.write("apps/blog/compose.yaml", "dev\n");
        self.repo.commit("dev");
        self.repo.update("default");
        Some("dev".to_string())
    }
    fn stop(&mut self) {
        self.server.stop();
    }
    fn start(&mut self) {
        self.server.restart();
    }
    fn id_is_per_path(&self) -> bool {
        false
    }
    fn tree_is_content(&self) -> bool {
        false
    }
}

struct DirKind {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    away: PathBuf,
}

fn dir_kind() -> DirKind {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("src");
    let away = tmp.path().join("away");
    seed(|rel, c| mooring_testkit::git::write(&dir.join(rel), c));
    DirKind {
        _tmp: tmp,
        dir,
        away,
    }
}

impl Kind for DirKind {
    fn source(&self) -> String {
        self.dir.to_str().unwrap().to_string()
    }
    fn write(&self, rel: &str, contents: &str) {
        mooring_testkit::git::write(&self.dir.join(rel), contents);
    }
    fn commit(&self, _message: &str) {}
    fn branch(&self) -> Option<String> {
        None
    }
    fn stop(&mut self) {
        fs::rename(&self.dir, &self.away).unwrap();
    }
    fn start(&mut self) {
        fs::rename(&self.away, &self.dir).unwrap();
    }
    fn id_is_per_path(&self) -> bool {
        true
    }
    fn tree_is_content(&self) -> bool {
        true
    }
    fn checkout_is_partial(&self) -> bool {
        false
    }
}

const PATH: &str = "apps/blog";

fn spec(k: &dyn Kind, reference: Option<&str>) -> SourceSpec {
    SourceSpec::parse(&k.source(), reference).unwrap()
}

fn read(root: &Path, rel: &str) -> String {
    fs::read_to_string(root.join(rel))
        .unwrap_or_else(|e| panic!("{}: {e}", root.join(rel).display()))
}

/// Fetches `apps/blog` and returns the revision and the content of its compose file.
fn fetch_blog(cache: &Cache, spec: &SourceSpec) -> (mooring_vcs::Revision, String) {
    let rev = cache
        .fetch_path(spec, PATH)
        .unwrap_or_else(|e| panic!("{spec}: {e}"));
    let snap = cache
        .checkout(spec, &rev, PATH)
        .unwrap_or_else(|e| panic!("{spec}: {e}"));
    let content = read(&snap.root, "apps/blog/compose.yaml");
    (rev, content)
}

fn first_fetch_and_checkout(k: &mut dyn Kind) {
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path());
    let spec = spec(k, None);
    let rev = cache.fetch_path(&spec, PATH).unwrap();
    assert!(rev.tree.is_some(), "{rev:?}");
    assert!(!rev.describe.is_empty(), "{rev:?}");
    let snap = cache.checkout(&spec, &rev, PATH).unwrap();
    assert_eq!(read(&snap.root, "apps/blog/compose.yaml"), "v1\n");
    assert_eq!(read(&snap.root, "apps/blog/conf/app.conf"), "conf\n");
    if k.checkout_is_partial() {
        assert!(
            !snap.root.join("other").exists(),
            "only {PATH} is checked out"
        );
        assert!(
            snap.root.starts_with(data.path()),
            "{}",
            snap.root.display()
        );
    }
    assert_eq!(
        cache.fetch_path(&spec, PATH).unwrap(),
        rev,
        "stable when nothing changed"
    );
    // The whole source as well.
    let whole = cache.fetch(&spec).unwrap();
    let snap = cache.checkout(&spec, &whole, "").unwrap();
    assert_eq!(read(&snap.root, "other/readme.txt"), "other\n");
    assert_eq!(read(&snap.root, "apps/blog/compose.yaml"), "v1\n");
}

fn change_then_revert(k: &mut dyn Kind) {
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path());
    let spec = spec(k, None);
    let (first, content) = fetch_blog(&cache, &spec);
    assert_eq!(content, "v1\n");

    k.write("apps/blog/compose.yaml", "v2\n");
    k.commit("v2");
    let (second, content) = fetch_blog(&cache, &spec);
    assert_eq!(content, "v2\n");
    assert_ne!(second.id, first.id);
    assert_ne!(second.tree, first.tree);

    k.write("apps/blog/compose.yaml", "v1\n");
    k.commit("back to v1");
    let (third, content) = fetch_blog(&cache, &spec);
    assert_eq!(content, "v1\n", "reverted content is back");
    assert_ne!(third.tree, second.tree);
    if k.tree_is_content() {
        assert_eq!(third.tree, first.tree, "same content, same tree");
    }
    // Old snapshots stay as they were.
    if k.checkout_is_partial() {
        let old = cache.checkout(&spec, &second, PATH).unwrap();
        assert_eq!(read(&old.root, "apps/blog/compose.yaml"), "v2\n");
    }
}

fn switch_ref(k: &mut dyn Kind) {
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path());
    let Some(reference) = k.branch() else {
        let err = SourceSpec::parse(&k.source(), Some("dev")).unwrap_err();
        assert!(matches!(err, SourceError::RefWithDir { .. }), "{err}");
        return;
    };
    let (main, content) = fetch_blog(&cache, &spec(k, None));
    assert_eq!(content, "v1\n");
    let (dev, content) = fetch_blog(&cache, &spec(k, Some(&reference)));
    assert_eq!(content, "dev\n");
    assert_ne!(dev.id, main.id);
    assert!(dev.describe.contains(&reference), "{}", dev.describe);
}

fn ancestry(k: &mut dyn Kind) {
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path());
    let main_spec = spec(k, None);
    let (first, _) = fetch_blog(&cache, &main_spec);
    k.write("apps/blog/compose.yaml", "v2\n");
    k.commit("v2");
    let (second, _) = fetch_blog(&cache, &main_spec);
    let is_ancestor = |a: &mooring_vcs::Revision, b: &mooring_vcs::Revision| {
        cache.is_ancestor(&main_spec, a, b).unwrap()
    };
    assert!(is_ancestor(&first, &first));
    assert!(
        !is_ancestor(&second, &first),
        "a newer revision is no ancestor"
    );
    let Some(reference) = k.branch() else {
        // A folder has no history: only its current content is its own.
        assert!(!is_ancestor(&first, &second));
        return;
    };
    assert!(is_ancestor(&first, &second));
    let (dev, content) = fetch_blog(&cache, &spec(k, Some(&reference)));
    assert_eq!(content, "dev\n");
    let (main, _) = fetch_blog(&cache, &main_spec);
    assert!(
        !is_ancestor(&dev, &main),
        "a branch's revision is not in the main line's history"
    );
}

fn missing_path(k: &mut dyn Kind) {
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path());
    let spec = spec(k, None);
    let err = cache.fetch_path(&spec, "apps/nope").unwrap_err();
    assert!(matches!(err, SourceError::PathNotFound { .. }), "{err:?}");
    assert!(
        err.to_string().contains("path apps/nope not found in"),
        "{err}"
    );
    let rev = cache.fetch_path(&spec, PATH).unwrap();
    let err = cache.checkout(&spec, &rev, "apps/nope").unwrap_err();
    assert!(matches!(err, SourceError::PathNotFound { .. }), "{err:?}");
    let err = cache
        .fetch_path(&spec, "apps/blog/compose.yaml")
        .unwrap_err();
    assert!(matches!(err, SourceError::NotADirectory { .. }), "{err:?}");
}

fn unreachable_then_back(k: &mut dyn Kind) {
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path());
    let spec = spec(k, None);
    let (first, _) = fetch_blog(&cache, &spec);

    k.stop();
    let err = cache.fetch_path(&spec, PATH).unwrap_err();
    let msg = err.to_string();
    match &spec {
        SourceSpec::Dir { .. } => {
            assert!(matches!(err, SourceError::NotFound { .. }), "{msg}")
        }
        _ => {
            assert!(msg.contains("failed for"), "{msg}");
            assert!(msg.contains("127.0.0.1"), "names the server: {msg}");
            // What was already checked out stays usable.
            let snap = cache.checkout(&spec, &first, PATH).unwrap();
            assert_eq!(read(&snap.root, "apps/blog/compose.yaml"), "v1\n");
        }
    }
    k.start();
    k.write("apps/blog/compose.yaml", "v3\n");
    k.commit("v3");
    let (back, content) = fetch_blog(&cache, &spec);
    assert_eq!(content, "v3\n", "recovers");
    assert_ne!(back.id, first.id);
}

fn change_outside_path(k: &mut dyn Kind) {
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path());
    let spec = spec(k, None);
    let blog = cache.fetch_path(&spec, PATH).unwrap();
    let whole = cache.fetch(&spec).unwrap();

    k.write("other/readme.txt", "changed\n");
    k.commit("outside");
    let blog2 = cache.fetch_path(&spec, PATH).unwrap();
    let whole2 = cache.fetch(&spec).unwrap();
    assert_eq!(blog2.tree, blog.tree, "nothing under {PATH} changed");
    if k.id_is_per_path() {
        assert_eq!(blog2.id, blog.id);
    } else {
        assert_ne!(blog2.id, blog.id);
    }
    assert_ne!(whole2.id, whole.id, "the source as a whole changed");
    assert_ne!(whole2.tree, whole.tree);
    let snap = cache.checkout(&spec, &blog2, PATH).unwrap();
    assert_eq!(read(&snap.root, "apps/blog/compose.yaml"), "v1\n");
}

/// [`Cache::path_tree`] on a revision fetched once for the whole source agrees with
/// fetching each path, follows changes under the path only, and needs no network
/// for Git and Mercurial.
fn path_tree_of_a_fetched_revision(k: &mut dyn Kind) {
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path());
    let spec = spec(k, None);
    let whole = cache.fetch(&spec).unwrap();
    let paths = ["", "apps", PATH, "apps/blog/conf", "other"];
    let agree = |rev: &mooring_vcs::Revision| {
        for path in paths {
            let tree = cache.path_tree(&spec, rev, path).unwrap();
            assert!(tree.is_some(), "{spec} {path}");
            assert_eq!(
                tree,
                cache.fetch_path(&spec, path).unwrap().tree,
                "{spec} {path}"
            );
        }
    };
    agree(&whole);
    assert_eq!(cache.path_tree(&spec, &whole, "").unwrap(), whole.tree);
    let blog = cache.path_tree(&spec, &whole, PATH).unwrap();
    assert_eq!(
        cache.path_tree(&spec, &whole, "./apps//blog/").unwrap(),
        blog
    );
    assert_eq!(cache.path_tree(&spec, &whole, "apps/nope").unwrap(), None);
    assert_eq!(
        cache
            .path_tree(&spec, &whole, "apps/blog/compose.yaml/x")
            .unwrap(),
        None
    );
    let err = cache
        .path_tree(&spec, &whole, "apps/blog/compose.yaml")
        .unwrap_err();
    assert!(matches!(err, SourceError::NotADirectory { .. }), "{err:?}");
    let err = cache.path_tree(&spec, &whole, "../x").unwrap_err();
    assert!(matches!(err, SourceError::InvalidPath { .. }), "{err:?}");
    let other = cache.path_tree(&spec, &whole, "other").unwrap();

    // A commit outside the path.
    k.write("other/readme.txt", "changed\n");
    k.commit("outside");
    let outside = cache.fetch(&spec).unwrap();
    assert_ne!(outside.id, whole.id);
    agree(&outside);
    assert_eq!(
        cache.path_tree(&spec, &outside, PATH).unwrap(),
        blog,
        "nothing under {PATH} changed"
    );
    assert_ne!(cache.path_tree(&spec, &outside, "other").unwrap(), other);

    // A commit inside it.
    k.write("apps/blog/conf/app.conf", "conf 2\n");
    k.commit("inside");
    let inside = cache.fetch(&spec).unwrap();
    agree(&inside);
    let blog2 = cache.path_tree(&spec, &inside, PATH).unwrap();
    assert_ne!(blog2, blog, "something under {PATH} changed");
    assert_eq!(
        cache.path_tree(&spec, &inside, "other").unwrap(),
        cache.path_tree(&spec, &outside, "other").unwrap()
    );
    if !matches!(spec, SourceSpec::Dir { .. }) {
        // Older revisions still answer for their own content (a directory has no
        // history: it always answers for what is there now).
        assert_eq!(cache.path_tree(&spec, &whole, PATH).unwrap(), blog);
        assert_eq!(cache.path_tree(&spec, &whole, "other").unwrap(), other);
    }

    // With the source unreachable.
    k.stop();
    match &spec {
        SourceSpec::Git { .. } | SourceSpec::Hg { .. } => {
            assert_eq!(cache.path_tree(&spec, &inside, PATH).unwrap(), blog2);
            assert_eq!(cache.path_tree(&spec, &whole, PATH).unwrap(), blog);
            assert_eq!(cache.path_tree(&spec, &inside, "apps/nope").unwrap(), None);
            assert!(cache.fetch(&spec).is_err(), "the server is stopped");
        }
        SourceSpec::Svn { .. } => {
            let err = cache.path_tree(&spec, &inside, PATH).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("127.0.0.1"), "names the server: {msg}");
        }
        SourceSpec::Dir { .. } => {
            let err = cache.path_tree(&spec, &inside, PATH).unwrap_err();
            assert!(matches!(err, SourceError::NotFound { .. }), "{err:?}");
        }
    }
    k.start();
}

macro_rules! conformance {
    ($($kind:ident => $make:expr;)*) => {$(
        mod $kind {
            use super::*;

            #[test]
            fn first_fetch_and_checkout() {
                super::first_fetch_and_checkout(&mut $make);
            }

            #[test]
            fn change_then_revert() {
                super::change_then_revert(&mut $make);
            }

            #[test]
            fn switch_ref() {
                super::switch_ref(&mut $make);
            }

            #[test]
            fn ancestry() {
                super::ancestry(&mut $make);
            }

            #[test]
            fn missing_path() {
                super::missing_path(&mut $make);
            }

            #[test]
            fn unreachable_then_back() {
                super::unreachable_then_back(&mut $make);
            }

            #[test]
            fn change_outside_path() {
                super::change_outside_path(&mut $make);
            }

            #[test]
            fn path_tree_of_a_fetched_revision() {
                super::path_tree_of_a_fetched_revision(&mut $make);
            }
        }
    )*};
}

conformance! {
    git => git_kind();
    svn => svn_kind();
    hg => hg_kind();
    dir => dir_kind();
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        if let Ok(raw) = fs::read(entry.path().join("cmdline")) {
            let line = String::from_utf8_lossy(&raw).replace('\0', " ");
            if line.contains(needle) {
                found.push(format!("{}: {line}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// A server that accepts and never answers, behind each remote kind: the fetch fails
/// with the timeout error soon after the source's bound, and every tool process it
/// started (and their helpers: `git-remote-http`, …) is gone.
#[test]
fn a_server_that_never_answers_times_out_and_leaves_no_process() {
    let hole = mooring_testkit::blackhole::BlackHole::start();
    let port = hole.port;
    let data = tempfile::tempdir().unwrap();
    let bound = std::time::Duration::from_secs(2);
    let cache = Cache::new(data.path()).with_timeout(bound);
    for source in [
        format!("git://127.0.0.1:{port}/never.git"),
        format!("http://127.0.0.1:{port}/never.git"),
        format!("svn://127.0.0.1:{port}/never"),
        format!("hg+http://127.0.0.1:{port}/never"),
    ] {
        let spec = SourceSpec::parse(&source, None).unwrap();
        let started = std::time::Instant::now();
        let err = cache.fetch(&spec).unwrap_err();
        let took = started.elapsed();
        let msg = err.to_string();
        assert!(
            matches!(err, SourceError::Timeout { .. }),
            "{source}: {msg}"
        );
        assert!(
            took >= bound && took < bound + std::time::Duration::from_secs(5),
            "{source}: {took:?}"
        );
        let tool = msg.split(' ').next().unwrap();
        assert!(["git", "svn", "hg"].contains(&tool), "{msg}");
        assert!(
            msg.contains(
                " did not finish within 2s and was stopped; check that the server answers"
            ),
            "{msg}"
        );
        assert!(msg.contains("`timeout:`"), "{msg}");
        // SIGKILL is delivered at once but a loaded machine may take a moment to tear
        // a killed helper down: a process still there after 3 s was left behind.
        let port_text = port.to_string();
        let left = || -> Vec<String> {
            processes_mentioning(&port_text)
                .into_iter()
                .chain(processes_mentioning(&data.path().display().to_string()))
                .filter(|p| !p.contains("conformance"))
                .collect()
        };
        let gone_by = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while !left().is_empty() && std::time::Instant::now() < gone_by {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let left = left();
        assert!(left.is_empty(), "{source}: left behind: {left:?}");
    }
    assert!(hole.accepted() >= 4, "each tool reached the server");
}
