//! Mercurial sources against real repositories, served by `hg serve` on 127.0.0.1
//! (directly, or behind an HTTP Basic-auth gate) or read from a local path.
//!
//! These tests need Mercurial (`hg`) and fail if it is missing.

use std::fs;
use std::path::Path;

use mooring_testkit::hg::{hg, Repo, Server};
use mooring_testkit::http::AuthProxy;
use mooring_vcs::{Cache, Credentials, Revision, SourceError, SourceSpec};

/// `default` with two changesets, bookmark `stable` on the first, tag `v1` on the
/// second (the tag itself is a third changeset), a `feature` branch.
struct Fixture {
    repo: Repo,
    first: String,
    second: String,
    feature: String,
}

fn fixture() -> Fixture {
    let repo = Repo::new("repo");
    repo.write("apps/blog/compose.yaml", "v1\n");
    repo.write("other/readme.txt", "other\n");
    std::os::unix::fs::symlink("compose.yaml", repo.path.join("apps/blog/link.yaml")).unwrap();
    let first = repo.commit("first\n\nbody");
    hg(&repo.path, &["bookmark", "-r", &first, "stable"]);
    repo.write("apps/blog/compose.yaml", "v2\n");
    let second = repo.commit("second");
    hg(&repo.path, &["tag", "-r", &second, "v1"]);
    repo.branch("feature");
    repo.write("apps/blog/compose.yaml", "feature\n");
    let feature = repo.commit("on feature");
    repo.update("default");
    Fixture {
        repo,
        first,
        second,
        feature,
    }
}

fn spec(source: &str, reference: Option<&str>) -> SourceSpec {
    SourceSpec::parse(source, reference).unwrap()
}

fn compose(cache: &Cache, spec: &SourceSpec, rev: &Revision) -> String {
    let snap = cache.checkout(spec, rev, "apps/blog").unwrap();
    fs::read_to_string(snap.root.join("apps/blog/compose.yaml")).unwrap()
}

#[test]
fn branches_bookmarks_tags_and_ids() {
    let fx = fixture();
    let mut server = Server::serve(&fx.repo);
    let source = format!("hg+{}", server.url());
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path());

    let default = cache.fetch_path(&spec(&source, None), "apps/blog").unwrap();
    let tip_of_default = fx.repo.node("default");
    assert_eq!(default.id, tip_of_default);
    assert_eq!(
        default.describe,
        format!(
            "default@{} (Added tag v1 for changeset {})",
            &tip_of_default[..12],
            &fx.second[..12]
        )
    );
    assert_eq!(compose(&cache, &spec(&source, None), &default), "v2\n");

    for (reference, node, content) in [
        ("stable", &fx.first, "v1\n"),
        ("v1", &fx.second, "v2\n"),
        ("feature", &fx.feature, "feature\n"),
        ("tip", &fx.feature, "feature\n"),
    ] {
        let s = spec(&source, Some(reference));
        let rev = cache.fetch_path(&s, "apps/blog").unwrap();
        assert_eq!(&rev.id, node, "{reference}");
        assert!(
            rev.describe
                .starts_with(&format!("{reference}@{}", &node[..12])),
            "{}",
            rev.describe
        );
        assert_eq!(compose(&cache, &s, &rev), content, "{reference}");
    }
    let first = cache.fetch(&spec(&source, Some("stable"))).unwrap();
    assert_eq!(
        first.describe,
        format!("stable@{} (first)", &fx.first[..12])
    );

    // Symlinks stay symlinks; no archive metadata file.
    let snap = cache.checkout(&spec(&source, None), &default, "").unwrap();
    assert_eq!(
        fs::read_link(snap.root.join("apps/blog/link.yaml")).unwrap(),
        Path::new("compose.yaml")
    );
    assert!(!snap.root.join(".hg_archival.txt").exists());
    assert!(snap.root.join(".hgtags").is_file());

    // A changeset id already in the cache needs no server.
    server.stop();
    let pinned = spec(&source, Some(&fx.first.to_uppercase()));
    let rev = cache.fetch_path(&pinned, "apps/blog").unwrap();
    assert_eq!(rev.id, fx.first);
    assert_eq!(rev.describe, format!("{} (first)", &fx.first[..12]));
    assert_eq!(compose(&cache, &pinned, &rev), "v1\n");
    let err = cache.fetch(&spec(&source, None)).unwrap_err();
    assert!(matches!(err, SourceError::Tool { .. }), "{err:?}");
}

#[test]
fn unknown_refs_and_changesets() {
    let fx = fixture();
    let source = fx.repo.file_source();
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path());
    let err = cache.fetch(&spec(&source, Some("nope"))).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SourceError::NoSuchRef { .. }), "{msg}");
    for name in ["default", "feature", "stable", "v1"] {
        assert!(msg.contains(name), "{name}: {msg}");
    }
    let missing = "0123456789abcdef0123456789abcdef01234567";
    let err = cache.fetch(&spec(&source, Some(missing))).unwrap_err();
    assert!(matches!(err, SourceError::CommitNotFound { .. }), "{err}");

    let empty = Repo::new("empty");
    let err = cache.fetch(&spec(&empty.file_source(), None)).unwrap_err();
    assert!(err.to_string().contains("no changesets"), "{err}");

    let stranger = Revision {
        id: fx.first.clone(),
        describe: String::new(),
        tree: None,
    };
    let other = tempfile::tempdir().unwrap();
    let err = Cache::new(other.path())
        .checkout(&spec(&source, None), &stranger, "")
        .unwrap_err();
    assert!(err.to_string().contains("fetch the source first"), "{err}");
}

#[test]
fn path_tree_reads_the_cache_only() {
    let fx = fixture();
    let source = spec(&fx.repo.file_source(), None);
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path());
    let rev = |id: &str| Revision {
        id: id.to_string(),
        describe: String::new(),
        tree: None,
    };

    // Nothing fetched yet.
    let err = cache.path_tree(&source, &rev(&fx.first), "").unwrap_err();
    assert!(matches!(err, SourceError::CommitNotFound { .. }), "{err}");
    assert!(err.to_string().contains("fetch the source first"), "{err}");

    let default = cache.fetch(&source).unwrap();
    // Any pulled changeset, by id in either case, on any branch.
    for (node, reference) in [
        (&fx.first, "stable"),
        (&fx.second, "v1"),
        (&fx.feature, "feature"),
        (&default.id, "default"),
    ] {
        let s = spec(&fx.repo.file_source(), Some(reference));
        for path in ["", "apps/blog"] {
            assert_eq!(
                cache
                    .path_tree(&source, &rev(&node.to_uppercase()), path)
                    .unwrap(),
                cache.fetch_path(&s, path).unwrap().tree,
                "{reference} {path}"
            );
        }
    }
    let blog_first = cache.path_tree(&source, &rev(&fx.first), "apps/blog");
    assert_ne!(
        blog_first.unwrap(),
        cache.path_tree(&source, &default, "apps/blog").unwrap()
    );

    // A changeset committed after the pull is not in the cache: an error, not "no
    // such path".
    fx.repo.write("apps/blog/compose.yaml", "later\n");
    let later = fx.repo.commit("later");
    let err = cache
        .path_tree(&source, &rev(&later), "apps/nope")
        .unwrap_err();
    assert!(matches!(err, SourceError::CommitNotFound { .. }), "{err}");

    let err = cache
        .path_tree(&source, &rev("../../etc"), "apps/blog")
        .unwrap_err();
    assert!(matches!(err, SourceError::InvalidRevision { .. }), "{err}");
    // A symlink is a file in a manifest.
    let err = cache
        .path_tree(&source, &default, "apps/blog/link.yaml")
        .unwrap_err();
    assert!(matches!(err, SourceError::NotADirectory { .. }), "{err}");
}

#[test]
fn nothing_from_the_repositories_runs() {
    let fx = fixture();
    // Hooks in the source repository's own configuration: `hg pull` from a local
    // path would run its outgoing hooks, and the cache's incoming hooks.
    let marker = fx.repo.path.parent().unwrap().join("hook-ran");
    let touch = format!("touch {}", marker.display());
    fs::write(
        fx.repo.path.join(".hg/hgrc"),
        format!(
            "[hooks]\npreoutgoing = {touch}\noutgoing.x = {touch}\nchangegroup = {touch}\n\
             incoming = {touch}\npretxnchangegroup = {touch}\n"
        ),
    )
    .unwrap();
    // A subrepository is not followed.
    let sub = fx.repo.path.join("sub");
    fs::create_dir(&sub).unwrap();
    hg(&sub, &["init"]);
    fs::write(sub.join("secret.txt"), "sub\n").unwrap();
    hg(&sub, &["commit", "-A", "-q", "-m", "sub"]);
    fx.repo.write(".hgsub", "sub = sub\n");
    fx.repo.commit("with a subrepository");

    let source = fx.repo.path.to_str().unwrap().to_string();
    assert!(matches!(spec(&source, None), SourceSpec::Hg { .. }));
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path());
    let rev = cache.fetch(&spec(&source, None)).unwrap();
    let snap = cache.checkout(&spec(&source, None), &rev, "").unwrap();
    assert!(snap.root.join(".hgsub").is_file());
    assert!(
        !snap.root.join("sub/secret.txt").exists(),
        "subrepo followed"
    );
    fx.repo.write("apps/blog/compose.yaml", "v3\n");
    fx.repo.commit("more");
    cache.fetch(&spec(&source, None)).unwrap();
    assert!(!marker.exists(), "a repository hook ran");
    // The cache repository has no configuration of its own.
    let base = fs::read_dir(data.path().join("sources/hg"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(!base.join("repo/.hg/hgrc").exists());
}

#[test]
fn credentials_over_http() {
    const SECRET: &str = "hg-Pa55-s3cret";
    let fx = fixture();
    let server = Server::serve(&fx.repo);
    let gate = AuthProxy::start("alice", SECRET, Some(server.port));
    let source = spec(&format!("hg+{}", gate.url()), None);
    let data = tempfile::tempdir().unwrap();

    let err = Cache::new(data.path()).fetch(&source).unwrap_err();
    assert!(err.to_string().contains("authentication"), "{err}");

    let wrong = format!("{SECRET}-wrong");
    let cache = Cache::new(data.path())
        .with_credentials(Credentials::new(Some("alice".into()), Some(wrong.clone())));
    let err = cache.fetch(&source).unwrap_err();
    let shown = format!("{err} {err:?} {cache:?}");
    assert!(shown.contains("authentication"), "{shown}");
    assert!(!shown.contains(&wrong), "{shown}");
    assert!(gate.seen().contains(&Some(format!("alice:{wrong}"))));

    let cache = Cache::new(data.path())
        .with_credentials(Credentials::new(Some("alice".into()), Some(SECRET.into())));
    let rev = cache.fetch_path(&source, "apps/blog").unwrap();
    assert_eq!(compose(&cache, &source, &rev), "v2\n");
    let err = cache.fetch_path(&source, "apps/nope").unwrap_err();
    assert!(!format!("{err} {err:?}").contains(SECRET));
}
