//! A poll that finds nothing new runs only the cheap remote query (`git ls-remote`,
//! `hg identify`) and transfers nothing; a poll that finds something fetches it.
//! Proven with the per-thread log of the commands run ([`spawned`]).

use std::path::Path;

use mooring_testkit::git::{git, Daemon, Repo as GitRepo};
use mooring_testkit::hg::{hg, Repo as HgRepo, Server};

use crate::run::spawned;
use crate::{Cache, Revision, SourceError, SourceSpec};

fn spec(source: &str, reference: Option<&str>) -> SourceSpec {
    SourceSpec::parse(source, reference).unwrap()
}

/// Fetches `path` and returns the revision and the commands that ran.
fn poll(cache: &Cache, spec: &SourceSpec, path: &str) -> (Revision, Vec<String>) {
    spawned::take();
    let rev = cache.fetch_path(spec, path).unwrap();
    (rev, spawned::take())
}

fn ran(log: &[String], command: &str) -> bool {
    log.iter().any(|c| c == command)
}

fn memo_files(data: &Path) -> usize {
    fn walk(dir: &Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .map(|e| e.unwrap().path())
                .map(|p| if p.is_dir() { walk(&p) } else { 1 })
                .sum()
        })
    }
    let kinds = std::fs::read_dir(data.join("sources")).unwrap();
    kinds
        .flat_map(|kind| std::fs::read_dir(kind.unwrap().path()).unwrap())
        .map(|base| walk(&base.unwrap().path().join("meta")))
        .sum()
}

#[test]
fn git_poll_without_changes_only_lists_the_remote() {
    let repo = GitRepo::new("repo");
    repo.write("apps/blog/compose.yaml", "v1\n");
    let first = repo.commit("first");
    git(&repo.work, &["tag", "-a", "v1", "-m", "version 1"]);
    git(&repo.work, &["push", "-q", "origin", "v1"]);
    let mut daemon = Daemon::serve(&repo);
    let url = daemon.url(&repo);
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path());

    // The first fetch goes straight to `git fetch`.
    let (rev, log) = poll(&cache, &spec(&url, Some("main")), "apps/blog");
    assert_eq!(rev.id, first);
    assert!(
        ran(&log, "git fetch") && !ran(&log, "git ls-remote"),
        "{log:?}"
    );

    for reference in [Some("main"), None, Some("v1"), Some("refs/heads/main")] {
        let s = spec(&url, reference);
        let (rev, _) = poll(&cache, &s, "apps/blog");
        assert_eq!(rev.id, first, "{reference:?}");
        let (again, log) = poll(&cache, &s, "apps/blog");
        assert_eq!(again, rev, "{reference:?}");
        assert_eq!(log, ["git ls-remote", "git for-each-ref"], "{reference:?}");
    }
    let (tag, _) = poll(&cache, &spec(&url, Some("v1")), "");
    assert_eq!(tag.describe, format!("v1@{} (first)", &first[..7]));

    // A commit id the cache has: no network, and nothing to describe again.
    let (rev, log) = poll(&cache, &spec(&url, Some(&first)), "apps/blog");
    assert_eq!(rev.describe, format!("{} (first)", &first[..7]));
    assert_eq!(log, ["git cat-file"]);

    // A new commit is fetched, and then polled cheaply again.
    repo.write("apps/blog/compose.yaml", "v2\n");
    let second = repo.commit("second");
    let (rev, log) = poll(&cache, &spec(&url, Some("main")), "apps/blog");
    assert_eq!(rev.id, second);
    assert_eq!(rev.describe, format!("main@{} (second)", &second[..7]));
    assert!(ran(&log, "git fetch"), "{log:?}");
    let (head, log) = poll(&cache, &spec(&url, None), "apps/blog");
    assert_eq!(head.id, second);
    assert!(ran(&log, "git fetch"), "HEAD is its own ref: {log:?}");
    let (_, log) = poll(&cache, &spec(&url, Some("main")), "apps/blog");
    assert!(!ran(&log, "git fetch"), "{log:?}");

    // Another branch does not matter to `main`...
    git(&repo.work, &["push", "-q", "origin", "HEAD:refs/heads/dev"]);
    let (_, log) = poll(&cache, &spec(&url, Some("main")), "apps/blog");
    assert!(!ran(&log, "git fetch"), "{log:?}");
    // ...but is fetched when asked for, and pruned by the next fetch once deleted.
    let (dev, log) = poll(&cache, &spec(&url, Some("dev")), "apps/blog");
    assert_eq!(dev.id, second);
    assert!(ran(&log, "git fetch"), "{log:?}");
    git(&repo.bare, &["update-ref", "-d", "refs/heads/dev"]);
    let (_, log) = poll(&cache, &spec(&url, Some("main")), "apps/blog");
    assert!(!ran(&log, "git fetch"), "{log:?}");
    match cache.fetch(&spec(&url, Some("dev"))).unwrap_err() {
        SourceError::RefNotFound { branches, .. } => assert_eq!(branches, ["main"]),
        err => panic!("{err}"),
    }

    // Tags always matter (verification reads them): a new tag on the same commit
    // is fetched although `main` did not move.
    git(&repo.work, &["tag", "-a", "v2", "-m", "version 2"]);
    git(&repo.work, &["push", "-q", "origin", "v2"]);
    let (rev, log) = poll(&cache, &spec(&url, Some("main")), "apps/blog");
    assert_eq!(rev.id, second);
    assert!(ran(&log, "git fetch"), "{log:?}");
    let (rev, log) = poll(&cache, &spec(&url, Some("v2")), "apps/blog");
    assert_eq!(rev.id, second);
    assert_eq!(log, ["git ls-remote", "git for-each-ref"]);

    // A tag moved to another commit the cache already has is fetched too (the ref
    // changed) and resolves to that commit.
    git(
        &repo.work,
        &["tag", "-f", "-a", "v2", "-m", "moved", &first],
    );
    git(&repo.work, &["push", "-q", "-f", "origin", "v2"]);
    let (rev, log) = poll(&cache, &spec(&url, Some("v2")), "apps/blog");
    assert_eq!(rev.id, first);
    assert!(ran(&log, "git fetch"), "{log:?}");

    // A path that does not exist is still an error, without a fetch.
    let err = cache
        .fetch_path(&spec(&url, Some("main")), "apps/nope")
        .unwrap_err();
    assert!(matches!(err, SourceError::PathNotFound { .. }), "{err}");

    // A server that is down: a clear error, from the listing.
    daemon.stop();
    let err = cache.fetch(&spec(&url, Some("main"))).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SourceError::Git { .. }), "{msg}");
    assert!(
        msg.contains("git ls-remote failed for git://127.0.0.1:"),
        "{msg}"
    );
    assert!(msg.contains("check the URL, network access"), "{msg}");
    daemon.restart();
    assert_eq!(cache.fetch(&spec(&url, Some("main"))).unwrap().id, second);

    // path_tree reads what fetch remembered.
    spawned::take();
    let tree = cache
        .path_tree(&spec(&url, None), &head, "apps/blog")
        .unwrap();
    assert_eq!(tree, head.tree);
    assert!(spawned::take().is_empty());
}

#[test]
fn git_memo_is_forgotten_with_the_repository() {
    let repo = GitRepo::new("repo");
    repo.write("apps/blog/compose.yaml", "v1\n");
    repo.commit("first");
    let url = repo.file_url();
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path());
    let rev = cache.fetch_path(&spec(&url, None), "apps/blog").unwrap();
    assert_eq!(memo_files(data.path()), 1);
    // The cache repository is lost: the next fetch starts afresh, memo included.
    let base = std::fs::read_dir(data.path().join("sources/git"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_dir_all(base.join("repo.git")).unwrap();
    let (again, log) = poll(&cache, &spec(&url, None), "");
    assert!(ran(&log, "git fetch"), "{log:?}");
    assert_eq!(again.id, rev.id);
    assert_eq!(memo_files(data.path()), 1, "only the new entry");
}

/// `default` with two changesets, bookmark `stable` on the first, tag `v1` on the
/// second (the tag itself is a third changeset), a `my feature` branch.
struct HgFixture {
    repo: HgRepo,
    first: String,
    second: String,
    feature: String,
}

fn hg_fixture() -> HgFixture {
    let repo = HgRepo::new("repo");
    repo.write("apps/blog/compose.yaml", "v1\n");
    let first = repo.commit("first");
    hg(&repo.path, &["bookmark", "-r", &first, "stable"]);
    repo.write("apps/blog/compose.yaml", "v2\n");
    let second = repo.commit("second");
    hg(&repo.path, &["tag", "-r", &second, "v1"]);
    repo.branch("my feature");
    repo.write("apps/blog/compose.yaml", "feature\n");
    let feature = repo.commit("on feature");
    repo.update("default");
    HgFixture {
        repo,
        first,
        second,
        feature,
    }
}

/// The same checks over `hg serve` and on a local path (`hg+file://`).
fn hg_poll_checks(fx: &HgFixture, source: &str) {
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path());

    // The first fetch pulls straight away.
    let (default, log) = poll(&cache, &spec(source, None), "apps/blog");
    assert_eq!(default.id, fx.repo.node("default"));
    assert!(ran(&log, "hg pull") && !ran(&log, "hg identify"), "{log:?}");

    for (reference, node) in [
        (None, fx.repo.node("default")),
        (Some("stable"), fx.first.clone()),
        (Some("v1"), fx.second.clone()),
        (Some("my feature"), fx.feature.clone()),
        (Some("tip"), fx.feature.clone()),
    ] {
        let s = spec(source, reference);
        let (rev, log) = poll(&cache, &s, "apps/blog");
        assert_eq!(rev.id, node, "{reference:?}");
        assert!(!ran(&log, "hg pull"), "{reference:?}: {log:?}");
        // Unchanged and described before: one process, the remote query.
        let (again, log) = poll(&cache, &s, "apps/blog");
        assert_eq!(again, rev, "{reference:?}");
        assert_eq!(log, ["hg identify"], "{reference:?}");
    }
    let (stable, _) = poll(&cache, &spec(source, Some("stable")), "apps/blog");
    assert_eq!(
        stable.describe,
        format!("stable@{} (first)", &fx.first[..12])
    );

    // A changeset id the cache has (and has described): no process at all.
    let (rev, log) = poll(&cache, &spec(source, Some(&fx.first)), "apps/blog");
    assert_eq!(rev.describe, format!("{} (first)", &fx.first[..12]));
    assert!(log.is_empty(), "{log:?}");

    // A new changeset is pulled.
    fx.repo.write("apps/blog/compose.yaml", "v3\n");
    let third = fx.repo.commit("third");
    let (rev, log) = poll(&cache, &spec(source, None), "apps/blog");
    assert_eq!(rev.id, third);
    assert_eq!(rev.describe, format!("default@{} (third)", &third[..12]));
    assert!(ran(&log, "hg pull"), "{log:?}");
    let (_, log) = poll(&cache, &spec(source, None), "apps/blog");
    assert_eq!(log, ["hg identify"]);

    // A bookmark moved onto a changeset the cache has: no pull, the new place.
    hg(
        &fx.repo.path,
        &["bookmark", "-f", "-r", &fx.second, "stable"],
    );
    let (rev, log) = poll(&cache, &spec(source, Some("stable")), "");
    assert_eq!(rev.id, fx.second);
    assert!(!ran(&log, "hg pull"), "{log:?}");

    // An unknown ref is pulled for, and the names there are listed.
    spawned::take();
    let err = cache.fetch(&spec(source, Some("nope"))).unwrap_err();
    assert!(ran(&spawned::take(), "hg pull"));
    let msg = err.to_string();
    assert!(matches!(err, SourceError::NoSuchRef { .. }), "{msg}");
    assert!(
        msg.contains("my feature") && msg.contains("stable"),
        "{msg}"
    );

    // path_tree reads what fetch remembered.
    spawned::take();
    let tree = cache
        .path_tree(&spec(source, None), &default, "apps/blog")
        .unwrap();
    assert_eq!(tree, default.tree);
    assert!(spawned::take().is_empty());
}

#[test]
fn hg_poll_without_changes_runs_one_identify_over_http() {
    let fx = hg_fixture();
    let mut server = Server::serve(&fx.repo);
    let source = format!("hg+{}", server.url());
    hg_poll_checks(&fx, &source);

    // A server that is down: a clear error, from the remote query.
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path());
    cache.fetch(&spec(&source, None)).unwrap();
    server.stop();
    let err = cache.fetch(&spec(&source, None)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SourceError::Tool { .. }), "{msg}");
    assert!(
        msg.contains("hg identify failed for http://127.0.0.1:"),
        "{msg}"
    );
    assert!(msg.contains("check the URL, network access"), "{msg}");
}

#[test]
fn hg_poll_without_changes_runs_one_identify_on_a_local_path() {
    let fx = hg_fixture();
    hg_poll_checks(&fx, &fx.repo.file_source());
}
