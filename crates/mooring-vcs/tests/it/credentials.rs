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

/// The cache folder an earlier version kept for `url`: `git/<16 hex of sha256(url)>`.
fn old_cache_folder(data: &Path, url: &str) -> std::path::PathBuf {
    use sha2::{Digest, Sha256};
    let hex: String = Sha256::digest(url.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    data.join("sources/git").join(&hex[..16])
}

#[test]
fn a_password_in_the_url_is_sent_but_never_written_to_disk() {
    hermetic();
    const SECRET: &str = "url-Pa55word-s3cret";
    let gate = AuthProxy::start("alice", "something else", None);
    let url = format!("http://alice:{SECRET}@127.0.0.1:{}/repo.git", gate.port);
    let source = SourceSpec::parse(&url, Some("main")).unwrap();
    let data = tempfile::tempdir().unwrap();
    // What an earlier version left: a cache keyed by the whole URL, the password in
    // its config.
    let old = old_cache_folder(data.path(), &url);
    fs::create_dir_all(old.join("repo.git")).unwrap();
    fs::write(
        old.join("repo.git/config"),
        format!("[remote \"origin\"]\n\turl = \"{url}\"\n"),
    )
    .unwrap();

    let cache = Cache::new(data.path());
    let err = cache.fetch(&source).unwrap_err();
    let shown = format!("{err} / {err:?} / {cache:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(
        gate.seen().contains(&Some(format!("alice:{SECRET}"))),
        "git sent the URL's credentials: {:?}",
        gate.seen()
    );
    assert!(!old.exists(), "the old cache holding the password is gone");
    assert_nowhere_below(data.path(), SECRET);
    // The cache repository's remote is the URL without its user info.
    let repos: Vec<_> = fs::read_dir(data.path().join("sources/git"))
        .unwrap()
        .map(|e| e.unwrap().path().join("repo.git/config"))
        .collect();
    assert_eq!(repos.len(), 1);
    let config = fs::read_to_string(&repos[0]).unwrap();
    assert!(
        config.contains(&format!(
            "url = \"http://127.0.0.1:{}/repo.git\"",
            gate.port
        )),
        "{config}"
    );
}

#[test]
fn credential_files_live_in_a_private_folder_cleaned_after_a_crash() {
    use std::os::unix::fs::PermissionsExt;
    hermetic();
    let data = tempfile::tempdir().unwrap();
    let folder = data.path().join("sources/.credentials");
    // A process killed with -9 while a fetch ran left its credential file behind.
    let leftover = folder.join("4999998-git-AbC123");
    fs::create_dir_all(&leftover).unwrap();
    fs::write(leftover.join("store"), "https://alice:left-behind@h\n").unwrap();
    let gate = AuthProxy::start("alice", "x", None);
    let source = SourceSpec::parse(&format!("{}r.git", gate.url()), None).unwrap();
    let cache = Cache::new(data.path()).with_credentials(Credentials::new(
        Some("alice".into()),
        Some("in-use".into()),
    ));
    assert!(!leftover.exists(), "opening the cache removes it");
    cache.fetch(&source).unwrap_err();
    assert!(gate.seen().contains(&Some("alice:in-use".to_string())));
    let mode = fs::metadata(&folder).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the folder is private");
    assert_eq!(
        fs::read_dir(&folder).unwrap().count(),
        0,
        "nothing outlives the fetch"
    );
}
