//! Git sources against real repositories built with the real `git` CLI, served
//! from a local path, a `file://` URL and a `git daemon` on 127.0.0.1.
//!
//! These tests need `git` (including `git daemon`) and fail if it is missing.

use std::collections::BTreeSet;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::thread;

use mooring_testkit::git::{git, hermetic, write, Daemon};

use mooring_vcs::{Cache, SourceError, SourceSpec};

/// The fixture: a work tree with branches `main` and `dev`, an annotated tag
/// `v1`, symlinks, and a bare copy for serving.
struct Fixture {
    _tmp: tempfile::TempDir,
    work: PathBuf,
    bare: PathBuf,
    data: PathBuf,
    first: String,
    main: String,
    dev: String,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path().join("work");
        fs::create_dir(&work).unwrap();
        git(&work, &["init", "-q"]);
        write(&work.join("README.md"), "readme\n");
        write(&work.join("apps/web/compose.yaml"), "services: {}\n");
        for i in 0..30 {
            write(
                &work.join(format!("apps/other/file{i}.txt")),
                &format!("{i}\n"),
            );
        }
        std::os::unix::fs::symlink("compose.yaml", work.join("apps/web/link.yaml")).unwrap();
        std::os::unix::fs::symlink("../../README.md", work.join("apps/web/up")).unwrap();
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "first commit"]);
        let first = git(&work, &["rev-parse", "HEAD"]);
        git(&work, &["tag", "-a", "v1", "-m", "version 1"]);

        git(&work, &["checkout", "-q", "-b", "dev"]);
        write(&work.join("apps/web/dev.txt"), "dev\n");
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "dev work"]);
        let dev = git(&work, &["rev-parse", "HEAD"]);

        git(&work, &["checkout", "-q", "main"]);
        write(&work.join("apps/web/compose.yaml"), "services: {web: {}}\n");
        git(&work, &["commit", "-q", "-a", "-m", "add web service"]);
        let main = git(&work, &["rev-parse", "HEAD"]);

        let served = tmp.path().join("served");
        fs::create_dir(&served).unwrap();
        git(
            &served,
            &["clone", "-q", "--bare", work.to_str().unwrap(), "repo.git"],
        );
        let bare = served.join("repo.git");
        let data = tmp.path().join("data");
        Fixture {
            _tmp: tmp,
            work,
            bare,
            data,
            first,
            main,
            dev,
        }
    }

    fn cache(&self) -> Cache {
        Cache::new(&self.data)
    }

    /// Adds a commit on `main` in the work tree and pushes it to the bare copy.
    fn new_commit(&self, name: &str) -> String {
        write(&self.work.join("apps/web").join(name), "new\n");
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "-q", "-m", &format!("add {name}")]);
        git(
            &self.work,
            &["push", "-q", self.bare.to_str().unwrap(), "main"],
        );
        git(&self.work, &["rev-parse", "HEAD"])
    }
}

fn spec(url: &str, reference: Option<&str>) -> SourceSpec {
    SourceSpec::parse(url, reference).unwrap()
}

/// All files, symlinks and directories below `root`, relative, sorted.
fn listing(root: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            let meta = fs::symlink_metadata(&path).unwrap();
            out.insert(rel);
            if meta.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

fn check_all_refs(fx: &Fixture, url: &str) {
    let cache = fx.cache();

    let head = cache.fetch(&spec(url, None)).unwrap();
    assert_eq!(head.id, fx.main, "{url}");
    assert_eq!(
        head.describe,
        format!("HEAD@{} (add web service)", &fx.main[..7]),
        "{url}"
    );

    let main = cache.fetch(&spec(url, Some("main"))).unwrap();
    assert_eq!(main.id, fx.main, "{url}");
    assert_eq!(
        main.describe,
        format!("main@{} (add web service)", &fx.main[..7])
    );

    let dev = cache.fetch(&spec(url, Some("dev"))).unwrap();
    assert_eq!(dev.id, fx.dev, "{url}");
    assert!(dev.describe.starts_with("dev@"), "{}", dev.describe);

    let tag = cache.fetch(&spec(url, Some("v1"))).unwrap();
    assert_eq!(
        tag.id, fx.first,
        "annotated tag peels to its commit ({url})"
    );
    assert_eq!(
        tag.describe,
        format!("v1@{} (first commit)", &fx.first[..7])
    );

    let full = cache.fetch(&spec(url, Some("refs/tags/v1"))).unwrap();
    assert_eq!(full.id, fx.first, "{url}");

    let by_id = cache.fetch(&spec(url, Some(&fx.first))).unwrap();
    assert_eq!(by_id.id, fx.first, "{url}");
    assert_eq!(by_id.describe, format!("{} (first commit)", &fx.first[..7]));

    let upper = cache
        .fetch(&spec(url, Some(&fx.dev.to_uppercase())))
        .unwrap();
    assert_eq!(upper.id, fx.dev, "{url}");
}

#[test]
fn fetch_from_local_work_tree() {
    let fx = Fixture::new();
    let url = fx.work.to_str().unwrap().to_string();
    assert!(matches!(spec(&url, None), SourceSpec::Git { .. }));
    check_all_refs(&fx, &url);
}

#[test]
fn fetch_from_local_bare_repo_and_file_url() {
    let fx = Fixture::new();
    check_all_refs(&fx, fx.bare.to_str().unwrap());
    check_all_refs(&fx, &format!("file://{}", fx.bare.display()));
}

#[test]
fn fetch_from_git_daemon() {
    let fx = Fixture::new();
    let daemon = Daemon::start(fx.bare.parent().unwrap());
    check_all_refs(&fx, &format!("git://127.0.0.1:{}/repo.git", daemon.port));
}

#[test]
fn cache_layout_is_keyed_by_url() {
    let fx = Fixture::new();
    let url = format!("file://{}", fx.bare.display());
    fx.cache().fetch(&spec(&url, None)).unwrap();
    let git_dir = fx.data.join("sources/git");
    let keys: Vec<_> = fs::read_dir(&git_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(keys.len(), 1);
    let key = keys[0].to_str().unwrap();
    assert_eq!(key.len(), 16);
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
    let base = git_dir.join(key);
    assert!(base.join("repo.git/HEAD").is_file());
    let free = std::process::Command::new("flock")
        .arg("--nonblock")
        .arg(base.join("lock"))
        .arg("true")
        .status()
        .unwrap();
    assert!(free.success(), "lock released");
    assert_eq!(
        fs::read_to_string(base.join("url.txt")).unwrap().trim(),
        url
    );
}

fn object_files(repo: &Path) -> BTreeSet<PathBuf> {
    fn walk(dir: &Path, out: &mut BTreeSet<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.insert(path);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(&repo.join("objects"), &mut out);
    out
}

#[test]
fn second_fetch_is_incremental() {
    let fx = Fixture::new();
    let daemon = Daemon::start(fx.bare.parent().unwrap());
    let url = format!("git://127.0.0.1:{}/repo.git", daemon.port);
    let cache = fx.cache();
    let first = cache.fetch(&spec(&url, Some("main"))).unwrap();
    assert_eq!(first.id, fx.main);

    let key_dir = fs::read_dir(fx.data.join("sources/git"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let repo = key_dir.join("repo.git");
    let before = object_files(&repo);

    let newer = fx.new_commit("new.txt");
    let second = cache.fetch(&spec(&url, Some("main"))).unwrap();
    assert_eq!(second.id, newer);
    assert_ne!(second.id, first.id);
    assert!(
        second.describe.contains("add new.txt"),
        "{}",
        second.describe
    );

    let after = object_files(&repo);
    assert!(before.is_subset(&after), "existing objects were kept");
    let added = after.len() - before.len();
    assert!(
        added > 0 && added * 4 < before.len(),
        "only the new objects were transferred: {added} new vs {} before",
        before.len()
    );

    // HEAD follows too.
    assert_eq!(cache.fetch(&spec(&url, None)).unwrap().id, newer);
}

#[test]
fn unchanged_poll_fetches_nothing() {
    let fx = Fixture::new();
    let daemon = Daemon::start(fx.bare.parent().unwrap());
    let url = format!("git://127.0.0.1:{}/repo.git", daemon.port);
    let cache = fx.cache();
    let key_dir = |data: &Path| {
        fs::read_dir(data.join("sources/git"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
    };
    for reference in [Some("main"), None, Some("v1")] {
        let first = cache.fetch(&spec(&url, reference)).unwrap();
        // `git fetch` always writes FETCH_HEAD; a poll that finds nothing new must
        // not run it.
        let fetch_head = key_dir(&fx.data).join("repo.git/FETCH_HEAD");
        let _ = fs::remove_file(&fetch_head);
        let again = cache.fetch(&spec(&url, reference)).unwrap();
        assert_eq!(again, first, "{reference:?}");
        assert!(!fetch_head.exists(), "fetched again for {reference:?}");
    }
    let fetch_head = key_dir(&fx.data).join("repo.git/FETCH_HEAD");
    let newer = fx.new_commit("new.txt");
    let rev = cache.fetch(&spec(&url, Some("main"))).unwrap();
    assert_eq!(rev.id, newer);
    assert!(fetch_head.exists(), "a new commit is fetched");
}

#[test]
fn deleted_branch_is_pruned_and_unreachable_commit_is_fetched_by_id() {
    let fx = Fixture::new();
    let daemon = Daemon::start(fx.bare.parent().unwrap());
    let url = format!("git://127.0.0.1:{}/repo.git", daemon.port);
    let cache = fx.cache();
    // A commit only reachable from a branch that is then deleted upstream.
    git(&fx.bare, &["update-ref", "-d", "refs/heads/dev"]);
    let err = cache.fetch(&spec(&url, Some("dev"))).unwrap_err();
    assert!(matches!(err, SourceError::RefNotFound { .. }), "{err}");
    // The id still works: fetched directly (protocol v2 allows it).
    let rev = cache.fetch(&spec(&url, Some(&fx.dev))).unwrap();
    assert_eq!(rev.id, fx.dev);
    let snap = cache.checkout(&spec(&url, None), &rev, "apps/web").unwrap();
    assert!(snap.root.join("apps/web/dev.txt").is_file());
}

#[test]
fn unknown_commit_id_is_a_clear_error() {
    let fx = Fixture::new();
    let url = fx.bare.to_str().unwrap();
    let missing = "0123456789abcdef0123456789abcdef01234567";
    let err = fx.cache().fetch(&spec(url, Some(missing))).unwrap_err();
    assert!(matches!(err, SourceError::CommitNotFound { .. }), "{err}");
    assert!(err.to_string().contains(missing), "{err}");
}

#[test]
fn an_abbreviated_commit_id_resolves_to_its_commit() {
    let fx = Fixture::new();
    let url = format!("file://{}", fx.bare.display());
    let cache = fx.cache();
    let rev = cache.fetch(&spec(&url, Some(&fx.first[..7]))).unwrap();
    assert_eq!(rev.id, fx.first);
    let upper = fx.main[..12].to_ascii_uppercase();
    assert_eq!(cache.fetch(&spec(&url, Some(&upper))).unwrap().id, fx.main);
    // Too short to be taken for an id, and one that no commit starts with.
    for bad in [&fx.first[..5], "0000000"] {
        let err = cache.fetch(&spec(&url, Some(bad))).unwrap_err();
        assert!(
            matches!(err, SourceError::RefNotFound { .. }),
            "{bad}: {err}"
        );
    }
}

#[test]
fn nonexistent_ref_lists_branches_and_tags() {
    let fx = Fixture::new();
    let url = format!("file://{}", fx.bare.display());
    let err = fx.cache().fetch(&spec(&url, Some("nope"))).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SourceError::RefNotFound { .. }), "{msg}");
    assert!(msg.contains("ref 'nope' not found in"), "{msg}");
    assert!(
        msg.contains("main") && msg.contains("dev") && msg.contains("v1"),
        "{msg}"
    );
}

#[test]
fn empty_repository_has_no_head() {
    let fx = Fixture::new();
    let empty = fx.bare.parent().unwrap().join("empty.git");
    git(
        fx.bare.parent().unwrap(),
        &["init", "-q", "--bare", "empty.git"],
    );
    let err = fx
        .cache()
        .fetch(&spec(empty.to_str().unwrap(), None))
        .unwrap_err();
    assert!(matches!(err, SourceError::NoRemoteHead { .. }), "{err}");
    assert!(err.to_string().contains("--ref"), "{err}");
}

#[test]
fn checkout_subpath_contains_only_that_subpath() {
    let fx = Fixture::new();
    let url = format!("file://{}", fx.bare.display());
    let source = spec(&url, None);
    let cache = fx.cache();
    let rev = cache.fetch(&source).unwrap();

    let snap = cache.checkout(&source, &rev, "apps/web").unwrap();
    assert_eq!(snap.revision, rev);
    let expected: BTreeSet<String> = [
        "apps",
        "apps/web",
        "apps/web/compose.yaml",
        "apps/web/link.yaml",
        "apps/web/up",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(listing(&snap.root), expected);
    assert_eq!(
        fs::read_to_string(snap.root.join("apps/web/compose.yaml")).unwrap(),
        "services: {web: {}}\n"
    );
    assert!(snap.root.starts_with(fx.data.join("sources/git")));
    assert!(snap
        .root
        .to_str()
        .unwrap()
        .contains(&format!("/snapshots/{}/", rev.id)));

    // Reused, not rebuilt.
    fs::write(snap.root.join("marker"), "").unwrap();
    let again = cache.checkout(&source, &rev, "./apps//web/").unwrap();
    assert_eq!(again.root, snap.root);
    assert!(again.root.join("marker").exists());

    // No staging leftovers next to the snapshot.
    for entry in fs::read_dir(snap.root.parent().unwrap()).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(!name.to_str().unwrap().starts_with(".tmp-"), "{name:?}");
    }

    // The whole repository, at an older revision.
    let old = cache.fetch(&spec(&url, Some("v1"))).unwrap();
    for whole in ["", "."] {
        let snap = cache.checkout(&source, &old, whole).unwrap();
        let files = listing(&snap.root);
        assert!(files.contains("README.md"));
        assert!(files.contains("apps/other/file29.txt"));
        assert!(!files.contains(".git"));
        assert_eq!(
            fs::read_to_string(snap.root.join("apps/web/compose.yaml")).unwrap(),
            "services: {}\n"
        );
    }
}

#[test]
fn checkout_preserves_symlinks() {
    let fx = Fixture::new();
    let url = fx.bare.to_str().unwrap();
    let source = spec(url, None);
    let cache = fx.cache();
    let rev = cache.fetch(&source).unwrap();
    let snap = cache.checkout(&source, &rev, "apps/web").unwrap();
    let link = snap.root.join("apps/web/link.yaml");
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_link(&link).unwrap(), PathBuf::from("compose.yaml"));
    // A link leaving the checked-out path stays a (dangling) link; judging it is
    // the caller's job.
    let up = snap.root.join("apps/web/up");
    assert!(fs::symlink_metadata(&up).unwrap().file_type().is_symlink());
    assert_eq!(
        fs::read_link(&up).unwrap(),
        PathBuf::from("../../README.md")
    );
}

#[test]
fn checkout_nonexistent_or_invalid_path_is_an_error() {
    let fx = Fixture::new();
    let url = format!("file://{}", fx.bare.display());
    let source = spec(&url, None);
    let cache = fx.cache();
    let rev = cache.fetch(&source).unwrap();

    let err = cache.checkout(&source, &rev, "apps/x").unwrap_err();
    assert!(matches!(err, SourceError::PathNotFound { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("path apps/x not found in {url} at {}", rev.id)),
        "{err}"
    );

    let err = cache.checkout(&source, &rev, "README.md").unwrap_err();
    assert!(matches!(err, SourceError::NotADirectory { .. }), "{err}");

    for bad in ["../x", "apps/../../etc", "/etc", "apps/.."] {
        let err = cache.checkout(&source, &rev, bad).unwrap_err();
        assert!(
            matches!(err, SourceError::InvalidPath { .. }),
            "{bad}: {err}"
        );
    }
    // Nothing was materialized for failed checkouts.
    let snapshots = fs::read_dir(fx.data.join("sources/git"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("snapshots");
    assert!(!snapshots.exists() || listing(&snapshots).iter().all(|p| !p.contains("tmp")));
}

#[test]
fn checkout_requires_a_fetched_commit() {
    let fx = Fixture::new();
    let url = fx.bare.to_str().unwrap();
    let source = spec(url, None);
    let rev = mooring_vcs::Revision {
        id: fx.main.clone(),
        describe: String::new(),
        tree: None,
    };
    let err = fx.cache().checkout(&source, &rev, "").unwrap_err();
    assert!(matches!(err, SourceError::CommitNotFound { .. }), "{err}");
    assert!(err.to_string().contains("fetch the source first"), "{err}");

    let bogus = mooring_vcs::Revision {
        id: "../../etc".into(),
        describe: String::new(),
        tree: None,
    };
    let err = fx.cache().checkout(&source, &bogus, "").unwrap_err();
    assert!(matches!(err, SourceError::InvalidRevision { .. }), "{err}");
}

#[test]
fn path_tree_reads_the_cache_only() {
    let fx = Fixture::new();
    let url = fx.bare.to_str().unwrap();
    let source = spec(url, None);
    let cache = fx.cache();
    let rev = |id: &str| mooring_vcs::Revision {
        id: id.to_string(),
        describe: String::new(),
        tree: None,
    };

    // Nothing fetched yet.
    let err = cache.path_tree(&source, &rev(&fx.main), "").unwrap_err();
    assert!(matches!(err, SourceError::CommitNotFound { .. }), "{err}");
    assert!(err.to_string().contains("fetch the source first"), "{err}");

    let head = cache.fetch(&source).unwrap();
    let web = cache.path_tree(&source, &head, "apps/web").unwrap();
    assert_eq!(
        web.as_deref(),
        Some(git(&fx.work, &["rev-parse", &format!("{}:apps/web", fx.main)]).as_str())
    );
    // Any fetched commit, by id in either case, not only the last one fetched.
    let first = cache
        .path_tree(&source, &rev(&fx.first.to_uppercase()), "apps/web")
        .unwrap();
    assert_eq!(
        first.as_deref(),
        Some(git(&fx.work, &["rev-parse", &format!("{}:apps/web", fx.first)]).as_str())
    );
    assert_ne!(first, web);
    assert_eq!(
        cache.path_tree(&source, &rev(&fx.dev), "apps/web").unwrap(),
        cache
            .fetch_path(&spec(url, Some("dev")), "apps/web")
            .unwrap()
            .tree
    );

    // A commit pushed after the fetch is not in the cache: an error, not "no
    // such path".
    let later = fx.new_commit("later.txt");
    let err = cache
        .path_tree(&source, &rev(&later), "apps/web")
        .unwrap_err();
    assert!(matches!(err, SourceError::CommitNotFound { .. }), "{err}");
    let err = cache
        .path_tree(&source, &rev(&later), "apps/nope")
        .unwrap_err();
    assert!(matches!(err, SourceError::CommitNotFound { .. }), "{err}");

    let err = cache
        .path_tree(&source, &rev("../../etc"), "apps/web")
        .unwrap_err();
    assert!(matches!(err, SourceError::InvalidRevision { .. }), "{err}");
    // A symlink to a folder is not a folder.
    let err = cache.path_tree(&source, &head, "apps/web/up").unwrap_err();
    assert!(matches!(err, SourceError::NotADirectory { .. }), "{err}");
}

#[test]
fn credentials_never_appear_in_errors() {
    hermetic();
    // A port with nothing listening: the fetch fails fast, and git's stderr
    // mentions the URL.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://alice:hunter2secret@127.0.0.1:{port}/repo.git");
    let tmp = tempfile::tempdir().unwrap();
    let source = SourceSpec::parse(&url, Some("main")).unwrap();
    let err = Cache::new(tmp.path()).fetch(&source).unwrap_err();
    let shown = format!("{err} / {err:?} / {source} / {source:?}");
    assert!(!shown.contains("hunter2secret"), "{shown}");
    assert!(!shown.contains("alice"), "{shown}");
    assert!(matches!(err, SourceError::Git { .. }), "{shown}");
    assert!(
        shown.contains(&format!("http://***@127.0.0.1:{port}/repo.git")),
        "{shown}"
    );
    // Nor on the cache's human-readable note.
    let note = fs::read_dir(tmp.path().join("sources/git"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("url.txt");
    assert!(!fs::read_to_string(note).unwrap().contains("hunter2secret"));
}

#[test]
fn concurrent_fetches_of_one_repository() {
    let fx = Fixture::new();
    let url = format!("file://{}", fx.bare.display());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let cache = fx.cache();
            let source = spec(&url, Some("main"));
            thread::spawn(move || {
                let rev = cache.fetch(&source).unwrap();
                let snap = cache.checkout(&source, &rev, "apps/web").unwrap();
                (rev.id, snap.root)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (id, root) in &results {
        assert_eq!(id, &fx.main);
        assert_eq!(root, &results[0].1);
        assert!(root.join("apps/web/compose.yaml").is_file());
    }
}
