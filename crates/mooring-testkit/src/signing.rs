//! Signing keys generated for a test: an OpenPGP key in a private `GNUPGHOME`
//! (`gpg --batch --quick-gen-key`, no passphrase) and an SSH key (`ssh-keygen -t
//! ed25519 -N ''`), each able to sign Git commits and tags.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::git::git_with;

/// An OpenPGP key pair in its own `GNUPGHOME`; its `gpg-agent` is stopped on drop.
pub struct GpgKey {
    home: tempfile::TempDir,
    /// The primary key fingerprint.
    pub fingerprint: String,
}

fn gpg(home: &Path, args: &[&str]) -> String {
    let out = Command::new("gpg")
        .args(["--batch", "--no-tty"])
        .args(args)
        .env("GNUPGHOME", home)
        .env("LC_ALL", "C")
        .output()
        .expect("`gpg` (GnuPG) is required for these tests");
    assert!(
        out.status.success(),
        "gpg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl GpgKey {
    /// A new ed25519 signing key for `Name <email>`.
    pub fn generate(name: &str, email: &str) -> GpgKey {
        let home = tempfile::tempdir().unwrap();
        let uid = format!("{name} <{email}>");
        gpg(
            home.path(),
            &[
                "--passphrase",
                "",
                "--quick-gen-key",
                &uid,
                "ed25519",
                "sign",
                "never",
            ],
        );
        let listing = gpg(home.path(), &["--with-colons", "--list-keys", email]);
        let fingerprint = listing
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .and_then(|l| l.split(':').nth(8))
            .expect("a fingerprint in gpg --list-keys")
            .to_string();
        GpgKey { home, fingerprint }
    }

    /// A new key for `Name <email>` that also encrypts (a cv25519 subkey), as SOPS's
    /// PGP recipients need.
    pub fn generate_for_encryption(name: &str, email: &str) -> GpgKey {
        let key = GpgKey::generate(name, email);
        gpg(
            key.home.path(),
            &[
                "--passphrase",
                "",
                "--quick-add-key",
                &key.fingerprint,
                "cv25519",
                "encr",
                "never",
            ],
        );
        key
    }

    /// Its `GNUPGHOME`.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The ASCII-armored public key.
    pub fn public_armored(&self) -> String {
        gpg(
            self.home.path(),
            &["--armor", "--export", &self.fingerprint],
        )
    }

    /// Runs git in `dir` signing with this key (`-S` / `-s` still needed).
    pub fn git(&self, dir: &Path, args: &[&str]) -> String {
        let signing = format!("user.signingkey={}", self.fingerprint);
        let mut all = vec!["-c", "gpg.format=openpgp", "-c", "gpg.program=gpg", "-c"];
        all.push(&signing);
        all.extend_from_slice(args);
        git_with(dir, &[("GNUPGHOME", self.home.path())], &all)
    }
}

impl Drop for GpgKey {
    fn drop(&mut self) {
        // Stops only the agent of this GNUPGHOME.
        let _ = Command::new("gpgconf")
            .args(["--kill", "gpg-agent"])
            .env("GNUPGHOME", self.home.path())
            .status();
    }
}

/// An SSH ed25519 key pair without passphrase.
pub struct SshKey {
    _dir: tempfile::TempDir,
    /// The private key file.
    pub private: PathBuf,
    /// The public key line (`ssh-ed25519 AAAA… comment`).
    pub public: String,
}

impl SshKey {
    /// A new key with `comment`.
    pub fn generate(comment: &str) -> SshKey {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("id_ed25519");
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(&private)
            .status()
            .expect("`ssh-keygen` is required for these tests");
        assert!(status.success(), "ssh-keygen failed");
        let public = std::fs::read_to_string(private.with_extension("pub"))
            .unwrap()
            .trim()
            .to_string();
        SshKey {
            _dir: dir,
            private,
            public,
        }
    }

    /// An allowed-signers line trusting this key for `principal`.
    pub fn allowed_signers_line(&self, principal: &str) -> String {
        let mut fields = self.public.split_whitespace();
        let kind = fields.next().unwrap_or_default();
        let key = fields.next().unwrap_or_default();
        format!("{principal} {kind} {key}")
    }

    /// Runs git in `dir` signing with this key (`-S` / `-s` still needed).
    pub fn git(&self, dir: &Path, args: &[&str]) -> String {
        let signing = format!("user.signingkey={}", self.private.display());
        let mut all = vec!["-c", "gpg.format=ssh", "-c"];
        all.push(&signing);
        all.extend_from_slice(args);
        git_with(dir, &[], &all)
    }
}
