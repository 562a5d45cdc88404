//! Git signature verification with keys generated for the test: OpenPGP keys
//! (`gpg --quick-gen-key`, no passphrase, private GNUPGHOME) and SSH keys
//! (`ssh-keygen -t ed25519 -N ''`).
//!
//! These tests need `git`, `gpg` and `ssh-keygen` and fail if one is missing.

use mooring_testkit::git::{git, Repo};
use mooring_testkit::signing::{GpgKey, SshKey};
use mooring_vcs::{
    Cache, Revision, SignatureFormat, SignedObject, SourceSpec, VerifyError, VerifyKey, VerifyMode,
    VerifyPolicy,
};

/// The keys of one test (their agents stop when they are dropped).
struct Keys {
    alice: GpgKey,
    eve: GpgKey,
    bob: SshKey,
    mallory: SshKey,
}

fn keys() -> Keys {
    Keys {
        alice: GpgKey::generate("Alice", "alice@example.com"),
        eve: GpgKey::generate("Eve", "eve@example.com"),
        bob: SshKey::generate("bob"),
        mallory: SshKey::generate("mallory"),
    }
}

/// Trusts Alice (OpenPGP) and Bob (SSH).
fn policy(k: &Keys, mode: VerifyMode) -> VerifyPolicy {
    VerifyPolicy {
        mode,
        keys: vec![
            VerifyKey::OpenPgp(k.alice.public_armored()),
            VerifyKey::Ssh(k.bob.allowed_signers_line("bob@example.com")),
        ],
    }
}

/// Branches, each with one commit on top of `main`'s first commit:
/// `alice` (signed by Alice), `unsigned`, `eve` (signed by Eve), `bob` (SSH,
/// Bob), `mallory` (SSH, Mallory), `tampered` (Alice's signature over other
/// content). Tags: `v1` signed by Alice and `v2` signed by Bob, both on
/// `unsigned`; `v0` annotated but unsigned, `lw` lightweight, both on `eve`.
struct Fixture {
    repo: Repo,
    data: tempfile::TempDir,
    keys: Keys,
}

fn fixture() -> Fixture {
    let keys = keys();
    let k = &keys;
    let repo = Repo::new("repo");
    repo.write("README.md", "hi\n");
    repo.commit("first");
    let work = &repo.work;
    let start = |name: &str| {
        git(work, &["checkout", "-q", "-b", name, "main"]);
        repo.write(&format!("{name}.txt"), name);
        git(work, &["add", "-A"]);
    };
    let push = |name: &str| {
        git(work, &["push", "-q", "origin", name]);
    };
    start("alice");
    k.alice
        .git(work, &["commit", "-q", "-S", "-m", "commit alice"]);
    push("alice");
    start("unsigned");
    git(work, &["commit", "-q", "-m", "commit unsigned"]);
    push("unsigned");
    start("eve");
    k.eve.git(work, &["commit", "-q", "-S", "-m", "commit eve"]);
    push("eve");
    start("bob");
    k.bob.git(work, &["commit", "-q", "-S", "-m", "commit bob"]);
    push("bob");
    start("mallory");
    k.mallory
        .git(work, &["commit", "-q", "-S", "-m", "commit mallory"]);
    push("mallory");

    // Alice's signature over different content.
    let raw = git(work, &["cat-file", "commit", "alice"]);
    let forged = raw.replace("commit alice", "commit forged");
    let path = work.join("forged");
    std::fs::write(&path, format!("{forged}\n")).unwrap();
    let id = git(
        work,
        &["hash-object", "-t", "commit", "-w", path.to_str().unwrap()],
    );
    git(
        work,
        &["push", "-q", "origin", &format!("{id}:refs/heads/tampered")],
    );

    k.alice
        .git(work, &["tag", "-s", "-m", "release v1", "v1", "unsigned"]);
    k.bob
        .git(work, &["tag", "-s", "-m", "release v2", "v2", "unsigned"]);
    git(work, &["tag", "-a", "-m", "not signed", "v0", "eve"]);
    git(work, &["tag", "lw", "eve"]);
    git(work, &["push", "-q", "origin", "--tags"]);
    Fixture {
        repo,
        data: tempfile::tempdir().unwrap(),
        keys,
    }
}

impl Fixture {
    fn spec(&self, reference: &str) -> SourceSpec {
        SourceSpec::parse(&self.repo.file_url(), Some(reference)).unwrap()
    }

    /// Fetches `reference` and verifies it under `mode`.
    fn check(
        &self,
        reference: &str,
        mode: VerifyMode,
    ) -> (Revision, Result<mooring_vcs::Verified, VerifyError>) {
        let cache = Cache::new(self.data.path());
        let spec = self.spec(reference);
        let rev = cache.fetch(&spec).unwrap();
        let result = cache.verify(&spec, &rev, &policy(&self.keys, mode));
        (rev, result)
    }
}

#[test]
fn head_mode_checks_the_commit() {
    let fx = fixture();
    let k = &fx.keys;

    let (rev, ok) = fx.check("alice", VerifyMode::Head);
    let ok = ok.unwrap();
    assert_eq!(ok.commit, rev.id);
    assert_eq!(ok.object, SignedObject::Commit);
    assert_eq!(ok.format, SignatureFormat::OpenPgp);
    assert_eq!(ok.key, k.alice.fingerprint);
    assert_eq!(ok.signer, "Alice <alice@example.com>");
    assert_eq!(
        ok.to_string(),
        format!(
            "commit {} signed by Alice <alice@example.com> (OpenPGP key {})",
            &rev.id[..7],
            k.alice.fingerprint
        )
    );

    let (rev, ok) = fx.check("bob", VerifyMode::Head);
    let ok = ok.unwrap();
    assert_eq!(ok.format, SignatureFormat::Ssh);
    assert_eq!(ok.signer, "bob@example.com");
    assert!(ok.key.starts_with("SHA256:"), "{}", ok.key);
    assert_eq!(ok.commit, rev.id);

    let (rev, err) = fx.check("unsigned", VerifyMode::Head);
    let err = err.unwrap_err();
    assert!(matches!(err, VerifyError::Unsigned { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("commit {} is not signed", &rev.id[..7])
    );

    let (rev, err) = fx.check("eve", VerifyMode::Head);
    let err = err.unwrap_err();
    assert!(matches!(err, VerifyError::UnknownKey { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&rev.id[..7]), "{msg}");
    assert!(msg.contains(&k.eve.fingerprint), "names Eve's key: {msg}");
    assert!(msg.contains("not one of the trusted keys"), "{msg}");

    let (_, err) = fx.check("mallory", VerifyMode::Head);
    let err = err.unwrap_err();
    assert!(matches!(err, VerifyError::UnknownKey { .. }), "{err:?}");
    assert!(err.to_string().contains("SSH key SHA256:"), "{err}");

    let (rev, err) = fx.check("tampered", VerifyMode::Head);
    let err = err.unwrap_err();
    assert!(matches!(err, VerifyError::Bad { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&rev.id[..7]) && msg.contains("bad signature"),
        "{msg}"
    );
}

#[test]
fn tag_mode_needs_a_signed_tag() {
    let fx = fixture();
    let (rev, ok) = fx.check("v1", VerifyMode::Tag);
    let ok = ok.unwrap();
    assert_eq!(ok.object, SignedObject::Tag { name: "v1".into() });
    assert_eq!(ok.format, SignatureFormat::OpenPgp);
    assert_eq!(ok.commit, rev.id);
    assert!(ok
        .to_string()
        .starts_with(&format!("tag v1 (commit {})", &rev.id[..7])));

    let ok = fx.check("refs/tags/v2", VerifyMode::Tag).1.unwrap();
    assert_eq!(ok.format, SignatureFormat::Ssh);
    assert_eq!(ok.signer, "bob@example.com");

    // A signed branch head is not a tag.
    let err = fx.check("alice", VerifyMode::Tag).1.unwrap_err();
    assert!(matches!(err, VerifyError::NotATag { .. }), "{err:?}");
    assert!(err.to_string().contains("'alice' is not a tag"), "{err}");

    for unsigned in ["v0", "lw"] {
        let (rev, err) = fx.check(unsigned, VerifyMode::Tag);
        let err = err.unwrap_err();
        assert!(
            matches!(err, VerifyError::Unsigned { .. }),
            "{unsigned}: {err:?}"
        );
        assert!(err.to_string().contains(&rev.id[..7]), "{err}");
    }
}

#[test]
fn any_mode_accepts_a_signed_commit_or_a_signed_tag() {
    let fx = fixture();
    // Signed commit.
    let ok = fx.check("alice", VerifyMode::Any).1.unwrap();
    assert_eq!(ok.object, SignedObject::Commit);
    // Unsigned commit, reached through its signed tag, whichever ref was used.
    for reference in ["v1", "unsigned"] {
        let ok = fx.check(reference, VerifyMode::Any).1.unwrap();
        assert!(
            matches!(ok.object, SignedObject::Tag { .. }),
            "{reference}: {ok:?}"
        );
    }
    // Unsigned commit with no tag at all.
    let err = fx.check("main", VerifyMode::Any).1.unwrap_err();
    assert!(matches!(err, VerifyError::Unsigned { .. }), "{err:?}");
    assert!(err.to_string().contains("no annotated tag"), "{err}");
    // Unknown key on the commit, only unsigned tags: the key is the problem.
    let err = fx.check("eve", VerifyMode::Any).1.unwrap_err();
    assert!(matches!(err, VerifyError::UnknownKey { .. }), "{err:?}");
}

#[test]
fn policy_and_source_errors() {
    let fx = fixture();
    let cache = Cache::new(fx.data.path());
    let spec = fx.spec("alice");
    let rev = cache.fetch(&spec).unwrap();

    let empty = VerifyPolicy {
        mode: VerifyMode::Head,
        keys: vec![],
    };
    let err = cache.verify(&spec, &rev, &empty).unwrap_err();
    assert!(matches!(err, VerifyError::Policy { .. }), "{err:?}");

    for bad in [
        VerifyKey::OpenPgp("not a key".into()),
        VerifyKey::Ssh("ssh-ed25519 AAAA".into()),
    ] {
        let policy = VerifyPolicy {
            mode: VerifyMode::Head,
            keys: vec![bad],
        };
        let err = cache.verify(&spec, &rev, &policy).unwrap_err();
        assert!(matches!(err, VerifyError::Policy { .. }), "{err:?}");
    }

    // Not fetched into this cache.
    let other = tempfile::tempdir().unwrap();
    let err = Cache::new(other.path())
        .verify(&spec, &rev, &policy(&fx.keys, VerifyMode::Head))
        .unwrap_err();
    assert!(err.to_string().contains("fetch the source first"), "{err}");

    // Only Git.
    let dir = SourceSpec::parse(fx.repo.work.to_str().unwrap(), None).unwrap();
    assert!(matches!(dir, SourceSpec::Git { .. }));
    for source in ["svn://127.0.0.1/repo", "hg+https://127.0.0.1/repo"] {
        let spec = SourceSpec::parse(source, None).unwrap();
        let err = cache
            .verify(&spec, &rev, &policy(&fx.keys, VerifyMode::Head))
            .unwrap_err();
        assert!(matches!(err, VerifyError::Unsupported { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("verification is only available for Git sources"),
            "{err}"
        );
    }
}
