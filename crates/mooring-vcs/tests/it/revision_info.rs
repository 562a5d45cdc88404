//! `Cache::revision_info` on real repositories of every kind: author, time and the
//! whole message of a fetched revision.
//!
//! These tests need `git`, Subversion and Mercurial and fail if any is missing.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use mooring_testkit::git::hermetic;
use mooring_testkit::{git, hg, svn};
use mooring_vcs::{Cache, Revision, RevisionInfo, SourceError, SourceSpec};

const MESSAGE: &str = "add the blog\n\nwith details: <b> & \"quotes\"\n  indented";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The time is this test's (within ten minutes; the clock is the same machine's).
fn assert_recent(info: &RevisionInfo) {
    let t = info.time_ms.expect("a time");
    assert!((now_ms() - t).abs() < 600_000, "{t} vs {}", now_ms());
}

fn user_name() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn git_author_time_and_message() {
    hermetic();
    let repo = git::Repo::new("infra");
    repo.write("apps/blog/compose.yaml", "v1\n");
    let first = repo.commit(MESSAGE);
    repo.write("apps/blog/compose.yaml", "v2\n");
    repo.commit("second");
    let spec = SourceSpec::parse(&repo.file_url(), Some(&first)).unwrap();
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path());

    let stranger = Revision {
        id: first.clone(),
        describe: String::new(),
        tree: None,
    };
    let err = cache.revision_info(&spec, &stranger).unwrap_err();
    assert!(matches!(err, SourceError::CommitNotFound { .. }), "{err}");

    let rev = cache.fetch(&spec).unwrap();
    let info = cache.revision_info(&spec, &rev).unwrap();
    assert_eq!(info.author.as_deref(), Some("Test <test@example.com>"));
    assert_eq!(info.message.as_deref(), Some(MESSAGE));
    assert_recent(&info);
    let stamp = git::git(&repo.work, &["log", "-1", "--format=%at", &first]);
    assert_eq!(info.time_ms, Some(stamp.parse::<i64>().unwrap() * 1000));
}

#[test]
fn svn_author_time_and_message() {
    let repo = svn::Repo::new("infra");
    repo.write("apps/blog/compose.yaml", "v1\n");
    assert_eq!(repo.commit(MESSAGE), "2");
    repo.write("other/x", "x\n");
    repo.commit("elsewhere");
    let server = svn::Server::serve(&repo);
    let spec = SourceSpec::parse(&server.url(&repo), None).unwrap();
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path());
    let rev = cache.fetch_path(&spec, "apps/blog").unwrap();
    assert_eq!(rev.id, "2");
    let info = cache.revision_info(&spec, &rev).unwrap();
    assert_eq!(info.author.as_deref(), Some(user_name().as_str()));
    assert_eq!(info.message.as_deref(), Some(MESSAGE));
    assert_recent(&info);

    // Kept: the server is not asked again.
    drop(server);
    assert_eq!(cache.revision_info(&spec, &rev).unwrap(), info);

    let bad = Revision {
        id: "trunk".into(),
        describe: String::new(),
        tree: None,
    };
    let err = cache.revision_info(&spec, &bad).unwrap_err();
    assert!(matches!(err, SourceError::InvalidRevision { .. }), "{err}");
}

#[test]
fn hg_author_time_and_message() {
    let repo = hg::Repo::new("infra");
    repo.write("apps/blog/compose.yaml", "v1\n");
    let first = repo.commit(MESSAGE);
    let spec = SourceSpec::parse(&repo.file_source(), None).unwrap();
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path());
    let rev = cache.fetch(&spec).unwrap();
    assert_eq!(rev.id, first);
    let info = cache.revision_info(&spec, &rev).unwrap();
    assert_eq!(info.author.as_deref(), Some("Test <test@example.com>"));
    assert_eq!(info.message.as_deref(), Some(MESSAGE));
    assert_recent(&info);
    let stamp = hg::hg(&repo.path, &["log", "-r", &first, "-T", "{date|hgdate}"]);
    let seconds: i64 = stamp.split_whitespace().next().unwrap().parse().unwrap();
    assert_eq!(info.time_ms, Some(seconds * 1000));
}

#[test]
fn a_directory_has_no_revision_info() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("compose.yaml"), "services: {}\n").unwrap();
    let spec = SourceSpec::parse(dir.path().to_str().unwrap(), None).unwrap();
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path());
    let rev = cache.fetch(&spec).unwrap();
    assert_eq!(
        cache.revision_info(&spec, &rev).unwrap(),
        RevisionInfo::default()
    );
}
