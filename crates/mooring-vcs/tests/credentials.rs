//! Credentials given as values reach Git over HTTP (observed by a Basic-auth gate
//! on 127.0.0.1 that refuses everything) and never appear in errors, `Debug`
//! output or the cache. Subversion and Mercurial credentials are tested against
//! real servers in `svn.rs` and `hg.rs`.

use std::fs;
use std::path::Path;

use mooring_testkit::git::hermetic;
use mooring_testkit::http::AuthProxy;
use mooring_vcs::{Cache, Credentials, SourceError, SourceSpec};

fn assert_nowhere_below(dir: &Path, secret: &str) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        assert!(
            !path.to_string_lossy().contains(secret),
            "{}",
            path.display()
        );
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            assert_nowhere_below(&path, secret);
        } else if meta.is_file() {
            let content = fs::read(&path).unwrap();
            assert!(
                !String::from_utf8_lossy(&content).contains(secret),
                "{}",
                path.display()
            );
        }
    }
}

#[test]
fn git_sends_credentials_but_never_shows_them() {
    hermetic();
    const SECRET: &str = "git-T0ken-s3cret";
    let gate = AuthProxy::start("alice", "something else", None);
    let url = format!("{}repo.git", gate.url());
    let source = SourceSpec::parse(&url, Some("main")).unwrap();
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path())
        .with_credentials(Credentials::new(Some("alice".into()), Some(SECRET.into())));
    let err = cache.fetch(&source).unwrap_err();
    let shown = format!("{err} / {err:?} / {cache:?}");
    assert!(matches!(err, SourceError::Git { .. }), "{shown}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(
        gate.seen().contains(&Some(format!("alice:{SECRET}"))),
        "git sent the credentials: {:?}",
        gate.seen()
    );
    assert_nowhere_below(data.path(), SECRET);
}

#[test]
fn a_token_alone_gets_a_placeholder_user() {
    hermetic();
    const TOKEN: &str = "ghp_0nly-a-t0ken";
    let gate = AuthProxy::start("x", "y", None);
    let source = SourceSpec::parse(&format!("{}r.git", gate.url()), None).unwrap();
    let data = tempfile::tempdir().unwrap();
    let cache =
        Cache::new(data.path()).with_credentials(Credentials::new(None, Some(TOKEN.into())));
    let err = cache.fetch(&source).unwrap_err();
    assert!(!format!("{err} {err:?}").contains(TOKEN), "{err}");
    assert!(
        gate.seen()
            .contains(&Some(format!("x-access-token:{TOKEN}"))),
        "{:?}",
        gate.seen()
    );
}

#[test]
fn unusable_credentials_are_refused_without_showing_them() {
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path()).with_credentials(Credentials::new(
        Some("alice".into()),
        Some("line\nbreak-secret".into()),
    ));
    let source = SourceSpec::parse("https://127.0.0.1:9/r.git", None).unwrap();
    let err = cache.fetch(&source).unwrap_err();
    assert!(
        matches!(err, SourceError::InvalidCredentials { .. }),
        "{err}"
    );
    assert!(!format!("{err} {err:?}").contains("break-secret"), "{err}");
}
