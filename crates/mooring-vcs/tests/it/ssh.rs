//! Git, Subversion and Mercurial over SSH against a real OpenSSH server on
//! 127.0.0.1 (`mooring_testkit::ssh::SshServer`): a configured key fetches and
//! checks out; no key, an unknown host or a changed host key are refused with a
//! clear error; the key's content and its temporary path never appear in errors,
//! `Debug` output or the cache.
//!
//! These tests need `sshd` (openssh-server), `ssh`/`ssh-keygen` (openssh-client),
//! `git`, Subversion and Mercurial, and fail if any is missing.

use std::fs;
use std::path::{Path, PathBuf};

use mooring_testkit::git::{self, hermetic};
use mooring_testkit::ssh::SshServer;
use mooring_testkit::{hg, svn};
use mooring_vcs::{Cache, Credentials, KnownHosts, SourceError, SourceSpec, SshKey};

/// A repository of one kind, with `apps/blog/compose.yaml` committed as `v1`.
struct Fixture {
    _keep: Box<dyn std::any::Any>,
    /// The source string (`ssh://…`, `svn+ssh://…`, `hg+ssh://…`).
    source: String,
    /// Its ref.
    reference: &'static str,
}

fn git_fixture(server: &SshServer) -> Fixture {
    hermetic();
    let repo = git::Repo::new("infra");
    repo.write("apps/blog/compose.yaml", "v1\n");
    repo.commit("one");
    let source = format!("ssh://{}{}", server.authority(), repo.bare.display());
    Fixture {
        _keep: Box::new(repo),
        source,
        reference: "main",
    }
}

fn svn_fixture(server: &SshServer) -> Fixture {
    let repo = svn::Repo::new("infra");
    repo.write("apps/blog/compose.yaml", "v1\n");
    repo.commit("one");
    let source = format!("svn+ssh://{}{}", server.authority(), repo.path.display());
    Fixture {
        _keep: Box::new(repo),
        source,
        reference: "trunk",
    }
}

fn hg_fixture(server: &SshServer) -> Fixture {
    let repo = hg::Repo::new("infra");
    repo.write("apps/blog/compose.yaml", "v1\n");
    repo.commit("one");
    let source = format!("hg+ssh://{}/{}", server.authority(), repo.path.display());
    Fixture {
        _keep: Box::new(repo),
        source,
        reference: "default",
    }
}

fn key_file(server: &SshServer) -> SshKey {
    SshKey::File(server.client_key.private.clone())
}

fn key_text(server: &SshServer) -> String {
    fs::read_to_string(&server.client_key.private).unwrap()
}

/// The base64 body lines of a private key: what must never be shown.
fn secret_lines(key: &str) -> Vec<String> {
    key.lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(str::to_string)
        .collect()
}

fn assert_no_secret(shown: &str, key: &str) {
    for line in secret_lines(key) {
        assert!(!shown.contains(&line), "the key leaked: {shown}");
    }
    assert!(
        !shown.contains("mooring-ssh-"),
        "the temporary key path leaked: {shown}"
    );
}

fn assert_nowhere_below(dir: &Path, key: &str) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            assert_nowhere_below(&path, key);
        } else if meta.is_file() {
            let content = String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned();
            for line in secret_lines(key) {
                assert!(!content.contains(&line), "the key is in {}", path.display());
            }
        }
    }
}

/// What every kind must do over SSH.
fn check(server: &SshServer, fx: &Fixture) {
    let spec = SourceSpec::parse(&fx.source, Some(fx.reference)).unwrap();
    let known = KnownHosts::File(server.known_hosts.clone());
    let key = key_text(server);

    // A key file and the server's known_hosts: fetch and check out.
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path()).with_credentials(
        Credentials::default()
            .with_ssh_key(key_file(server))
            .with_known_hosts(known.clone()),
    );
    let rev = cache
        .fetch_path(&spec, "apps/blog")
        .unwrap_or_else(|e| panic!("{}: {e}\nsshd log:\n{}", fx.source, server.log()));
    let snap = cache.checkout(&spec, &rev, "apps/blog").unwrap();
    assert_eq!(
        fs::read_to_string(snap.root.join("apps/blog/compose.yaml")).unwrap(),
        "v1\n"
    );
    // Again: the cache is used as for any other transport.
    assert_eq!(cache.fetch_path(&spec, "apps/blog").unwrap().id, rev.id);

    // The key as a value (from an environment variable or inline), into a fresh
    // cache: the same revision; the key is nowhere in the cache or in `Debug`.
    let data2 = tempfile::tempdir().unwrap();
    let cache2 = Cache::new(data2.path()).with_credentials(
        Credentials::default()
            .with_ssh_key(SshKey::Value(key.clone()))
            .with_known_hosts(known.clone()),
    );
    let rev2 = cache2.fetch_path(&spec, "apps/blog").unwrap();
    assert_eq!(rev2.id, rev.id);
    cache2.checkout(&spec, &rev2, "apps/blog").unwrap();
    assert_no_secret(&format!("{cache2:?}"), &key);
    assert_nowhere_below(data2.path(), &key);

    // No key (only the host is trusted): refused, and the error says what to do.
    let data3 = tempfile::tempdir().unwrap();
    let cache3 = Cache::new(data3.path())
        .with_credentials(Credentials::default().with_known_hosts(known.clone()));
    let err = cache3.fetch_path(&spec, "apps/blog").unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.contains("Permission denied (publickey") && shown.contains("ssh_key"),
        "{}: {shown}",
        fx.source
    );

    // A changed host key (a man in the middle): refused, even with the right key.
    let wrong = server.wrong_known_hosts();
    let data4 = tempfile::tempdir().unwrap();
    let cache4 = Cache::new(data4.path()).with_credentials(
        Credentials::default()
            .with_ssh_key(SshKey::Value(key.clone()))
            .with_known_hosts(KnownHosts::File(wrong.clone())),
    );
    let err = cache4.fetch_path(&spec, "apps/blog").unwrap_err();
    let shown = format!("{err} / {err:?}");
    assert!(
        shown.contains("does not match") && shown.contains(&wrong.display().to_string()),
        "{}: {shown}",
        fx.source
    );
    assert_no_secret(&shown, &key);

    // An unknown host (an empty known_hosts): refused, never trusted silently.
    let empty = data4.path().join("empty_known_hosts");
    fs::write(&empty, "").unwrap();
    let data5 = tempfile::tempdir().unwrap();
    let cache5 = Cache::new(data5.path()).with_credentials(
        Credentials::default()
            .with_ssh_key(key_file(server))
            .with_known_hosts(KnownHosts::File(empty)),
    );
    let err = cache5.fetch_path(&spec, "apps/blog").unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.contains("host key is not trusted") && shown.contains("ssh-keyscan"),
        "{}: {shown}",
        fx.source
    );
}

#[test]
fn git_over_ssh() {
    let server = SshServer::start();
    check(&server, &git_fixture(&server));
}

#[test]
fn svn_over_ssh() {
    let server = SshServer::start();
    check(&server, &svn_fixture(&server));
}

#[test]
fn hg_over_ssh() {
    let server = SshServer::start();
    check(&server, &hg_fixture(&server));
}

#[test]
fn a_broken_key_value_is_reported_without_its_content_or_path() {
    hermetic();
    let server = SshServer::start();
    let fx = git_fixture(&server);
    let spec = SourceSpec::parse(&fx.source, Some(fx.reference)).unwrap();
    // Looks like a key to Mooring, not to ssh.
    let broken = "-----BEGIN OPENSSH PRIVATE KEY-----\n\
                  bm90LWEtcmVhbC1rZXktYnV0LWEtc2VjcmV0LWFsbC10aGUtc2FtZQ==\n\
                  -----END OPENSSH PRIVATE KEY-----\n";
    let data = tempfile::tempdir().unwrap();
    let cache = Cache::new(data.path()).with_credentials(
        Credentials::default()
            .with_ssh_key(SshKey::Value(broken.into()))
            .with_known_hosts(KnownHosts::File(server.known_hosts.clone())),
    );
    let err = cache.fetch(&spec).unwrap_err();
    let shown = format!("{err} / {err:?}");
    assert!(matches!(err, SourceError::Git { .. }), "{shown}");
    assert_no_secret(&shown, broken);
    assert!(shown.contains("Permission denied"), "{shown}");
}

#[test]
fn unusable_keys_are_refused_before_running_anything() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SourceSpec::parse("ssh://git@127.0.0.1:9/r.git", None).unwrap();
    let fetch = |creds: Credentials| {
        let data = tempfile::tempdir().unwrap();
        Cache::new(data.path())
            .with_credentials(creds)
            .fetch(&spec)
            .unwrap_err()
            .to_string()
    };
    let key = |path: PathBuf| Credentials::default().with_ssh_key(SshKey::File(path));

    let missing = dir.path().join("nope");
    let e = fetch(key(missing.clone()));
    assert!(
        e.contains("cannot read the ssh key file") && e.contains(&missing.display().to_string()),
        "{e}"
    );

    let public = dir.path().join("id.pub");
    fs::write(&public, "ssh-ed25519 AAAAC3Nz… me@host\n").unwrap();
    let e = fetch(key(public));
    assert!(e.contains("holds a public key"), "{e}");

    use std::os::unix::fs::PermissionsExt;
    let open = dir.path().join("open_key");
    fs::write(
        &open,
        "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
    )
    .unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o644)).unwrap();
    let e = fetch(key(open.clone()));
    assert!(e.contains(&format!("chmod 600 {}", open.display())), "{e}");

    let e = fetch(Credentials::default().with_ssh_key(SshKey::Value("hunter2-not-a-key".into())));
    assert!(e.contains("does not hold a private key"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");

    let e = fetch(
        Credentials::default().with_known_hosts(KnownHosts::File(dir.path().join("no_hosts"))),
    );
    assert!(e.contains("cannot read the known_hosts file"), "{e}");
}
