//! Subversion sources against real repositories (`svnadmin create`) served by
//! `svnserve` on 127.0.0.1, or read through `file://`.
//!
//! These tests need Subversion (`svn`, `svnadmin`, `svnserve`) and fail if it is
//! missing.

use std::fs;
use std::path::Path;

use mooring_testkit::svn::{Repo, Server};
use mooring_vcs::{Cache, Credentials, Revision, SourceError, SourceSpec};

/// trunk with `apps/blog` (r2), a change outside it (r3), tag `tags/v1` (r4), and
/// a change to `apps/blog` (r5).
fn fixture() -> Repo {
    let repo = Repo::new("repo");
    repo.write("apps/blog/compose.yaml", "v1\n");
    repo.write("other/readme.txt", "other\n");
    assert_eq!(repo.commit("add the blog\n\nwith details"), "2");
    repo.write("other/readme.txt", "changed\n");
    assert_eq!(repo.commit("outside"), "3");
    assert_eq!(repo.copy("trunk", "tags/v1", "tag v1"), "4");
    repo.write("apps/blog/compose.yaml", "v2\n");
    assert_eq!(repo.commit("blog v2"), "5");
    repo
}

fn spec(source: &str, reference: Option<&str>) -> SourceSpec {
    SourceSpec::parse(source, reference).unwrap()
}

fn compose(cache: &Cache, spec: &SourceSpec, rev: &Revision) -> String {
    let snap = cache.checkout(spec, rev, "apps/blog").unwrap();
    fs::read_to_string(snap.root.join("apps/blog/compose.yaml")).unwrap()
}

#[test]
fn revision_is_the_last_change_of_the_path() {
    let repo = fixture();
    let server = Server::serve(&repo);
    let url = server.url(&repo);
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path());
    let trunk = spec(&url, None);

    let blog = cache.fetch_path(&trunk, "apps/blog").unwrap();
    assert_eq!(blog.id, "5");
    assert_eq!(blog.describe, "trunk@r5 (blog v2)");
    assert_eq!(blog.tree.as_deref(), Some("5"));
    let other = cache.fetch_path(&trunk, "other").unwrap();
    assert_eq!(other.id, "3", "r4 and r5 did not touch trunk/other");
    assert_eq!(other.describe, "trunk@r3 (outside)");

    // Pinned: trunk as of r4; the blog last changed in r2.
    let pinned = spec(&url, Some("trunk@4"));
    let old = cache.fetch_path(&pinned, "apps/blog").unwrap();
    assert_eq!(old.id, "2");
    assert_eq!(old.describe, "trunk@r2 (add the blog)");
    assert_eq!(compose(&cache, &pinned, &old), "v1\n");
    assert_eq!(compose(&cache, &trunk, &blog), "v2\n");

    // A tag is a path too. Inside the copy, the blog's last change is still r2,
    // when tags/v1 did not exist yet: the export must address it at the fetched
    // revision, not at r2.
    let tag = spec(&url, Some("tags/v1"));
    let rev = cache.fetch_path(&tag, "apps/blog").unwrap();
    assert_eq!(rev.id, "2");
    assert_eq!(rev.describe, "tags/v1@r2 (add the blog)");
    assert_eq!(compose(&cache, &tag, &rev), "v1\n");
    let whole = cache.fetch(&tag).unwrap();
    assert_eq!(whole.id, "4", "the copy itself is the tag's last change");
    let snap = cache.checkout(&tag, &whole, "other").unwrap();
    assert_eq!(
        fs::read_to_string(snap.root.join("other/readme.txt")).unwrap(),
        "changed\n"
    );

    // A revision no fetch returned for the path: the path as it was then.
    let stranger = Revision {
        id: "3".into(),
        describe: String::new(),
        tree: None,
    };
    assert_eq!(compose(&cache, &trunk, &stranger), "v1\n");

    // No local mirror: the cache holds only snapshots, log lines and a note.
    let base = fs::read_dir(data.path().join("sources/svn"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut names: Vec<String> = fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["log", "pegs", "snapshots", "url.txt"]);
    assert_eq!(
        fs::read_to_string(base.join("url.txt")).unwrap().trim(),
        url
    );
}

#[test]
fn path_tree_is_the_last_change_of_the_path_at_the_revision() {
    let repo = fixture();
    let url = format!("svn+{}", repo.file_url());
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path());
    let rev = |id: &str| Revision {
        id: id.to_string(),
        describe: String::new(),
        tree: None,
    };
    let tree = |s: &SourceSpec, r: &Revision, path: &str| cache.path_tree(s, r, path).unwrap();
    let some = |t: &str| Some(t.to_string());

    let trunk = spec(&url, None);
    let whole = cache.fetch(&trunk).unwrap();
    assert_eq!(whole.id, "5");
    assert_eq!(tree(&trunk, &whole, "apps/blog"), some("5"));
    assert_eq!(tree(&trunk, &whole, "other"), some("3"));
    assert_eq!(tree(&trunk, &whole, ""), some("5"));

    // Pinned: trunk as of r4, whose last change is r3.
    let pinned = spec(&url, Some("trunk@4"));
    let old = cache.fetch(&pinned).unwrap();
    assert_eq!(old.id, "3");
    assert_eq!(tree(&pinned, &old, "apps/blog"), some("2"));
    assert_eq!(tree(&pinned, &old, "other"), some("3"));

    // Inside a copy, the path's last change predates the copy: the info is pegged
    // at the revision the fetch resolved.
    let tag = spec(&url, Some("tags/v1"));
    let whole = cache.fetch(&tag).unwrap();
    assert_eq!(whole.id, "4");
    assert_eq!(
        tree(&tag, &whole, "apps/blog"),
        cache.fetch_path(&tag, "apps/blog").unwrap().tree
    );
    assert_eq!(tree(&tag, &whole, "apps/blog"), some("2"));
    assert_eq!(tree(&tag, &whole, "apps/nope"), None);

    // A revision no fetch of this cache returned: the source as it was then. The
    // answer can be checked out as the revision of the path.
    let other = tempfile::tempdir().unwrap();
    let fresh = Cache::new(other.path());
    assert_eq!(
        fresh.path_tree(&trunk, &rev("3"), "apps/blog").unwrap(),
        some("2")
    );
    assert_eq!(
        fresh.path_tree(&trunk, &rev("1"), "apps/blog").unwrap(),
        None
    );
    assert_eq!(fresh.path_tree(&trunk, &rev("1"), "").unwrap(), some("1"));
    let blog = fresh.path_tree(&tag, &rev("4"), "apps/blog").unwrap();
    assert_eq!(blog, some("2"));
    let snap = fresh
        .checkout(&tag, &rev(&blog.unwrap()), "apps/blog")
        .unwrap();
    assert_eq!(
        fs::read_to_string(snap.root.join("apps/blog/compose.yaml")).unwrap(),
        "v1\n"
    );

    let err = cache.path_tree(&trunk, &rev("abc"), "").unwrap_err();
    assert!(matches!(err, SourceError::InvalidRevision { .. }), "{err}");
    let err = cache.path_tree(&trunk, &rev("99"), "").unwrap_err();
    assert!(matches!(err, SourceError::Tool { .. }), "{err:?}");
}

#[test]
fn a_pinned_revision_that_does_not_exist_is_an_error() {
    let repo = fixture();
    let data = tempfile::tempdir().unwrap();
    let err = Cache::new(data.path())
        .fetch(&spec(&format!("svn+{}", repo.file_url()), Some("trunk@99")))
        .unwrap_err();
    assert!(matches!(err, SourceError::Tool { .. }), "{err:?}");
    assert!(err.to_string().contains("revision"), "{err}");
}

#[test]
fn unknown_ref_lists_branches_and_tags() {
    let repo = fixture();
    repo.copy("trunk", "branches/feature", "branch");
    let data = tempfile::tempdir().unwrap();
    let source = format!("svn+{}", repo.file_url());
    let err = Cache::new(data.path())
        .fetch(&spec(&source, Some("branches/nope")))
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SourceError::NoSuchRef { .. }), "{msg}");
    assert!(msg.contains("ref 'branches/nope' not found"), "{msg}");
    assert!(msg.contains("branches/feature"), "{msg}");
    assert!(msg.contains("tags/v1"), "{msg}");
}

#[test]
fn externals_are_never_fetched() {
    let repo = fixture();
    repo.propset("svn:externals", "^/trunk/other ext", "apps/blog");
    repo.commit("externals");
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path());
    let source = spec(&format!("svn+{}", repo.file_url()), None);
    let rev = cache.fetch_path(&source, "apps/blog").unwrap();
    let snap = cache.checkout(&source, &rev, "apps/blog").unwrap();
    assert!(snap.root.join("apps/blog/compose.yaml").is_file());
    assert!(
        !snap.root.join("apps/blog/ext").exists(),
        "external fetched"
    );
}

#[test]
fn local_repository_path_is_a_file_url() {
    let repo = fixture();
    let source = SourceSpec::parse(repo.path.to_str().unwrap(), None).unwrap();
    let SourceSpec::Svn { url, reference } = &source else {
        panic!("expected Svn, got {source:?}");
    };
    assert!(url.starts_with("file:///"), "{url}");
    assert_eq!(reference, &None);
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path());
    let rev = cache.fetch(&source).unwrap();
    assert_eq!(rev.id, "5");
    let snap = cache.checkout(&source, &rev, "").unwrap();
    assert!(snap.root.join("other/readme.txt").is_file());
    // A snapshot is reused without asking the server again.
    fs::remove_dir_all(&repo.path).unwrap();
    assert_eq!(cache.checkout(&source, &rev, "").unwrap().root, snap.root);
}

#[test]
fn working_copy_is_not_a_source() {
    let repo = fixture();
    let err = SourceSpec::parse(repo.wc.to_str().unwrap(), None).unwrap_err();
    assert!(matches!(err, SourceError::SvnWorkingCopy { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("{}/trunk", repo.file_url())),
        "suggests the repository URL: {err}"
    );
}

fn files_below(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        out.push((path.display().to_string(), Vec::new()));
        if meta.is_dir() {
            files_below(&path, out);
        } else if meta.is_file() {
            out.last_mut().unwrap().1 = fs::read(&path).unwrap();
        }
    }
}

#[test]
fn password_protected_server() {
    const SECRET: &str = "s3cret-Pa55word";
    let repo = fixture();
    repo.require_password("alice", SECRET);
    let server = Server::serve(&repo);
    let source = spec(&server.url(&repo), None);
    let data = tempfile::tempdir().unwrap();

    // Anonymous: refused.
    let err = Cache::new(data.path()).fetch(&source).unwrap_err();
    assert!(err.to_string().contains("authentication"), "{err}");

    // Wrong password: refused, and the password is nowhere in the error.
    let wrong = format!("{SECRET}-wrong");
    let cache = Cache::new(data.path())
        .with_credentials(Credentials::new(Some("alice".into()), Some(wrong.clone())));
    let err = cache.fetch_path(&source, "apps/blog").unwrap_err();
    let shown = format!("{err} {err:?} {cache:?}");
    assert!(shown.contains("authentication failed"), "{shown}");
    assert!(!shown.contains(&wrong), "{shown}");

    // Right password: works, for fetch and checkout.
    let cache = Cache::new(data.path())
        .with_credentials(Credentials::new(Some("alice".into()), Some(SECRET.into())));
    let rev = cache.fetch_path(&source, "apps/blog").unwrap();
    assert_eq!(rev.describe, "trunk@r5 (blog v2)");
    assert_eq!(compose(&cache, &source, &rev), "v2\n");
    let err = cache.fetch_path(&source, "apps/nope").unwrap_err();
    assert!(!format!("{err} {err:?}").contains(SECRET));

    // Neither in the cache's names nor in its files.
    let mut files = Vec::new();
    files_below(data.path(), &mut files);
    for (name, content) in files {
        assert!(!name.contains(SECRET), "{name}");
        assert!(
            !String::from_utf8_lossy(&content).contains(SECRET),
            "{name}"
        );
    }
}
