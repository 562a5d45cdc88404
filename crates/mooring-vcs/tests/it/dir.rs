//! Plain directory sources: content-hash revisions and in-place snapshots.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use mooring_vcs::{Cache, SourceError, SourceSpec};

fn setup() -> (tempfile::TempDir, SourceSpec, Cache) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("apps/web")).unwrap();
    fs::write(src.join("apps/web/compose.yaml"), "services: {}\n").unwrap();
    fs::write(src.join("README"), "hi\n").unwrap();
    symlink("compose.yaml", src.join("apps/web/link")).unwrap();
    let spec = SourceSpec::parse(src.to_str().unwrap(), None).unwrap();
    let cache = Cache::new(&tmp.path().join("data"));
    (tmp, spec, cache)
}

fn dir_of(spec: &SourceSpec) -> &Path {
    match spec {
        SourceSpec::Dir { path } => path,
        other => panic!("expected a directory source, got {other:?}"),
    }
}

#[test]
fn revision_is_stable_and_tracks_changes() {
    let (_tmp, spec, cache) = setup();
    let dir = dir_of(&spec).to_path_buf();
    let first = cache.fetch(&spec).unwrap();
    assert!(first.id.starts_with("sha256:"), "{}", first.id);
    assert_eq!(first.id.len(), "sha256:".len() + 64);
    assert_eq!(first.describe, format!("dir {}", &first.id[..19]));
    assert_eq!(
        cache.fetch(&spec).unwrap(),
        first,
        "stable when nothing changes"
    );

    // Touching without changing content keeps the id.
    fs::write(dir.join("README"), "hi\n").unwrap();
    assert_eq!(cache.fetch(&spec).unwrap().id, first.id);

    let mut seen = vec![first.id.clone()];
    let mut assert_new = |what: &str| {
        let id = cache.fetch(&spec).unwrap().id;
        assert!(!seen.contains(&id), "{what} must change the revision");
        seen.push(id);
    };

    fs::write(dir.join("README"), "hello\n").unwrap();
    assert_new("content change");

    fs::set_permissions(dir.join("README"), fs::Permissions::from_mode(0o755)).unwrap();
    assert_new("mode change");

    fs::remove_file(dir.join("apps/web/link")).unwrap();
    symlink("../../README", dir.join("apps/web/link")).unwrap();
    assert_new("symlink target change");

    fs::create_dir(dir.join("apps/empty")).unwrap();
    assert_new("new directory");

    fs::rename(dir.join("README"), dir.join("README.md")).unwrap();
    assert_new("rename");

    // .git is ignored.
    let before = cache.fetch(&spec).unwrap().id;
    fs::create_dir_all(dir.join(".git/objects")).unwrap();
    fs::write(dir.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    fs::write(dir.join("apps/.git"), "gitdir: elsewhere\n").unwrap();
    assert_eq!(cache.fetch(&spec).unwrap().id, before);
}

#[test]
fn checkout_is_the_directory_itself() {
    let (_tmp, spec, cache) = setup();
    let rev = cache.fetch(&spec).unwrap();
    let snap = cache.checkout(&spec, &rev, "apps/web").unwrap();
    assert_eq!(snap.root, dir_of(&spec));
    assert_eq!(snap.revision, rev);
    let whole = cache.checkout(&spec, &rev, ".").unwrap();
    assert_eq!(whole.root, dir_of(&spec));
}

#[test]
fn checkout_checks_the_path() {
    let (_tmp, spec, cache) = setup();
    let rev = cache.fetch(&spec).unwrap();
    let err = cache.checkout(&spec, &rev, "apps/nope").unwrap_err();
    assert!(matches!(err, SourceError::PathNotFound { .. }), "{err}");
    assert!(
        err.to_string().contains("path apps/nope not found in"),
        "{err}"
    );
    let err = cache.checkout(&spec, &rev, "README").unwrap_err();
    assert!(matches!(err, SourceError::NotADirectory { .. }), "{err}");
    for bad in ["..", "../src", "/etc"] {
        let err = cache.checkout(&spec, &rev, bad).unwrap_err();
        assert!(
            matches!(err, SourceError::InvalidPath { .. }),
            "{bad}: {err}"
        );
    }
}

#[test]
fn vanished_directory_is_reported() {
    let (tmp, spec, cache) = setup();
    fs::remove_dir_all(tmp.path().join("src")).unwrap();
    let err = cache.fetch(&spec).unwrap_err();
    assert!(matches!(err, SourceError::NotFound { .. }), "{err}");
}
