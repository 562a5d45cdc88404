//! Git signature verification: is a fetched commit signed (directly, or through a
//! signed tag) by one of the keys a [`VerifyPolicy`] trusts?
//!
//! Only the policy's keys count, never the user's keyring or configuration: each
//! verification builds a throwaway keyring in a private temporary directory (mode
//! 0700) — a `GNUPGHOME` into which the OpenPGP public keys are imported (`gpg
//! --batch --import`) and given ultimate owner trust (being in the policy *is* the
//! trust decision), with `no-autostart` so no `gpg-agent` is left behind, and an
//! SSH allowed-signers file with the SSH lines. Git then checks the signature with
//! `git -c gpg.program=gpg -c gpg.ssh.allowedSignersFile=… verify-commit --raw`
//! (or `verify-tag --raw`), and its raw output (GnuPG status lines, `ssh-keygen`
//! messages) says who signed, or why not.
//!
//! Modes: [`VerifyMode::Head`] checks the commit's own signature;
//! [`VerifyMode::Tag`] requires the source's ref to be an annotated tag with a
//! valid signature that points at the commit; [`VerifyMode::Any`] accepts a signed
//! commit, or a valid signed tag pointing at it — the source's ref, or any other
//! tag of the last fetch.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

use crate::error::SourceError;
use crate::git::Repo;
use crate::run::{output, spawn_error};
use crate::snapshot::Revision;
use crate::spec::is_commit_id;

/// Which signatures make a revision acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyMode {
    /// The commit itself must carry a valid signature by a trusted key.
    Head,
    /// The source's ref must be an annotated tag, pointing at the commit, with a
    /// valid signature by a trusted key.
    Tag,
    /// Either of the above; any signed tag pointing at the commit also counts.
    Any,
}

/// A trusted key.
#[derive(Clone, PartialEq, Eq)]
pub enum VerifyKey {
    /// An ASCII-armored OpenPGP public key (`gpg --armor --export`).
    OpenPgp(String),
    /// A line of an SSH allowed-signers file, e.g. `user@x ssh-ed25519 AAAA…`.
    Ssh(String),
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyKey::OpenPgp(text) => write!(f, "OpenPgp({} bytes)", text.len()),
            VerifyKey::Ssh(line) => f.debug_tuple("Ssh").field(line).finish(),
        }
    }
}

/// What [`Cache::verify`](crate::Cache::verify) checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyPolicy {
    /// Which signatures count.
    pub mode: VerifyMode,
    /// The trusted keys; at least one.
    pub keys: Vec<VerifyKey>,
}

/// The kind of signature that was verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureFormat {
    /// OpenPGP (GnuPG).
    OpenPgp,
    /// SSH (`ssh-keygen -Y`).
    Ssh,
}

/// The object whose signature was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedObject {
    /// The commit itself.
    Commit,
    /// An annotated tag pointing at the commit.
    Tag {
        /// The tag name (without `refs/tags/`).
        name: String,
    },
}

/// A successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The full commit id.
    pub commit: String,
    /// What carried the signature.
    pub object: SignedObject,
    /// OpenPGP or SSH.
    pub format: SignatureFormat,
    /// The signing key: the OpenPGP primary key fingerprint, or the SSH key
    /// fingerprint (`SHA256:…`).
    pub key: String,
    /// Who signed: the OpenPGP user id, or the SSH principal.
    pub signer: String,
}

/// `commit 1a2b3c4 signed by Alice <a@x> (OpenPGP key 29B8…)`, or `tag v1 (commit
/// 1a2b3c4) signed by …`.
impl fmt::Display for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = match self.format {
            SignatureFormat::OpenPgp => "OpenPGP",
            SignatureFormat::Ssh => "SSH",
        };
        match &self.object {
            SignedObject::Commit => write!(f, "commit {}", short(&self.commit))?,
            SignedObject::Tag { name } => write!(f, "tag {name} (commit {})", short(&self.commit))?,
        }
        write!(f, " signed by {} ({format} key {})", self.signer, self.key)
    }
}

/// Why a revision is not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No signature where one is required.
    #[error("{object} is not signed{detail}")]
    Unsigned {
        /// The full commit id.
        commit: String,
        /// `commit 1a2b3c4` or `tag v1 (commit 1a2b3c4)`.
        object: String,
        /// More about what was checked.
        detail: String,
    },
    /// Signed, but not by a trusted key.
    #[error("{object} is signed with {key}, which is not one of the trusted keys")]
    UnknownKey {
        /// The full commit id.
        commit: String,
        /// `commit 1a2b3c4` or `tag v1 (commit 1a2b3c4)`.
        object: String,
        /// The signing key as far as it is known (`OpenPGP key <fingerprint>`,
        /// `SSH key SHA256:…`).
        key: String,
    },
    /// The signature does not verify (tampered content, expired or revoked key,
    /// a tag pointing elsewhere…).
    #[error("{object} has a bad signature: {reason}")]
    Bad {
        /// The full commit id.
        commit: String,
        /// `commit 1a2b3c4` or `tag v1 (commit 1a2b3c4)`.
        object: String,
        /// What is wrong.
        reason: String,
    },
    /// Mode `tag`, but the source's ref is not a tag.
    #[error(
        "commit {} is not verified: verification mode 'tag' needs the source ref to be a \
         signed, annotated tag, and {}",
        short(commit),
        match reference { Some(r) => format!("'{r}' is not a tag"), None => "no ref was given".to_string() }
    )]
    NotATag {
        /// The full commit id.
        commit: String,
        /// The source's ref.
        reference: Option<String>,
    },
    /// The source is not a Git repository.
    #[error("cannot verify {spec}: verification is only available for Git sources")]
    Unsupported {
        /// The (redacted) source.
        spec: String,
    },
    /// The policy cannot be used (no keys, a key that does not import…).
    #[error("invalid verification policy: {reason}")]
    Policy {
        /// What is wrong.
        reason: String,
    },
    /// The revision is not usable (not fetched, not a commit id) or a tool failed.
    #[error("cannot verify: {0}")]
    Source(#[source] SourceError),
}

fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

/// The throwaway `GNUPGHOME` and allowed-signers file of one verification.
struct Keyring {
    _dir: tempfile::TempDir,
    gnupghome: PathBuf,
    allowed_signers: PathBuf,
}

impl Keyring {
    fn new(keys: &[VerifyKey]) -> Result<Keyring, VerifyError> {
        if keys.is_empty() {
            return Err(VerifyError::Policy {
                reason: "it has no keys; add an OpenPGP public key or an SSH allowed-signers \
                         line"
                    .to_string(),
            });
        }
        let io = |what: &str, e| VerifyError::Source(SourceError::io(what.to_string(), e));
        // tempfile creates directories with mode 0700, as GnuPG wants.
        let dir = tempfile::Builder::new()
            .prefix("mooring-verify-")
            .tempdir()
            .map_err(|e| io("cannot create a temporary keyring directory", e))?;
        let gnupghome = dir.path().join("gnupg");
        fs::create_dir(&gnupghome).map_err(|e| io("cannot create a temporary GNUPGHOME", e))?;
        fs::write(
            gnupghome.join("gpg.conf"),
            "no-autostart\nno-auto-key-retrieve\n",
        )
        .map_err(|e| io("cannot write gpg.conf", e))?;

        let mut signers = String::new();
        let mut pgp = 0;
        for (i, key) in keys.iter().enumerate() {
            match key {
                VerifyKey::OpenPgp(text) => {
                    pgp += 1;
                    let out = gpg(&gnupghome, &["--status-fd", "1", "--import"], Some(text))?;
                    let status = String::from_utf8_lossy(&out.stdout);
                    if !status.contains("[GNUPG:] IMPORT_OK") {
                        return Err(VerifyError::Policy {
                            reason: format!(
                                "key {} (OpenPGP) could not be imported; give an ASCII-armored \
                                 public key (gpg --armor --export): {}",
                                i + 1,
                                tail(&out.stderr)
                            ),
                        });
                    }
                }
                VerifyKey::Ssh(line) => {
                    for l in line.lines().map(str::trim) {
                        if l.is_empty() || l.starts_with('#') {
                            continue;
                        }
                        if !valid_signers_line(l) {
                            return Err(VerifyError::Policy {
                                reason: format!(
                                    "key {} (SSH) is not an allowed-signers line such as \
                                     'user@example.com ssh-ed25519 AAAA…'",
                                    i + 1
                                ),
                            });
                        }
                        signers.push_str(l);
                        signers.push('\n');
                    }
                }
            }
        }
        if pgp > 0 {
            // Ultimate owner trust for every imported key.
            let out = gpg(&gnupghome, &["--with-colons", "--list-keys"], None)?;
            let listing = String::from_utf8_lossy(&out.stdout);
            let mut trust = String::new();
            let mut primary = false;
            for line in listing.lines() {
                let fields: Vec<&str> = line.split(':').collect();
                match fields.first() {
                    Some(&"pub") => primary = true,
                    Some(&"fpr") if primary => {
                        if let Some(fpr) = fields.get(9) {
                            trust.push_str(&format!("{fpr}:6:\n"));
                        }
                        primary = false;
                    }
                    Some(&"sub") => primary = false,
                    _ => {}
                }
            }
            let out = gpg(&gnupghome, &["--import-ownertrust"], Some(&trust))?;
            if !out.status.success() {
                return Err(VerifyError::Policy {
                    reason: format!("cannot trust the OpenPGP keys: {}", tail(&out.stderr)),
                });
            }
        }
        let allowed_signers = dir.path().join("allowed_signers");
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&allowed_signers)
            .map_err(|e| io("cannot write the allowed-signers file", e))?;
        file.write_all(signers.as_bytes())
            .map_err(|e| io("cannot write the allowed-signers file", e))?;
        Ok(Keyring {
            _dir: dir,
            gnupghome,
            allowed_signers,
        })
    }

    /// `git verify-commit|verify-tag --raw OBJECT` against this keyring only.
    fn git_verify(
        &self,
        repo: &Repo,
        subcommand: &str,
        object: &str,
    ) -> Result<Output, VerifyError> {
        let mut cmd = repo.command();
        cmd.args(["-c", "gpg.program=gpg", "-c", "gpg.ssh.program=ssh-keygen"])
            .arg("-c")
            .arg(format!(
                "gpg.ssh.allowedSignersFile={}",
                self.allowed_signers.display()
            ))
            .args([subcommand, "--raw", object])
            .env("GNUPGHOME", &self.gnupghome);
        output(&mut cmd, None).map_err(|e| VerifyError::Source(spawn_error("git", "Git", e)))
    }
}

/// Runs `gpg --batch --no-tty ARGS` with `GNUPGHOME` set.
fn gpg(home: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Result<Output, VerifyError> {
    let mut cmd = Command::new("gpg");
    cmd.args(["--batch", "--no-tty"])
        .args(args)
        .env("GNUPGHOME", home)
        .env("LC_ALL", "C");
    output(&mut cmd, stdin.map(str::as_bytes))
        .map_err(|e| VerifyError::Source(spawn_error("gpg", "GnuPG", e)))
}

/// The last lines of a tool's stderr, for messages.
fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let start = lines.len().saturating_sub(3);
    lines[start..].join("; ")
}

/// `principals [options] keytype base64 [comment]`: at least three fields, one of
/// them a key type.
fn valid_signers_line(line: &str) -> bool {
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return false;
    }
    let fields: Vec<&str> = line.split_whitespace().collect();
    fields.len() >= 3
        && fields
            .iter()
            .skip(1)
            .any(|f| f.starts_with("ssh-") || f.starts_with("ecdsa-") || f.starts_with("sk-"))
}

/// What the raw output of a verification says.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Good {
        format: SignatureFormat,
        key: String,
        signer: String,
    },
    Unsigned,
    Unknown {
        key: String,
    },
    Bad {
        reason: String,
    },
}

/// Reads GnuPG status lines or `ssh-keygen` messages from `git verify-* --raw`.
fn classify(out: &Output) -> Outcome {
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ok = out.status.success();
    if text.contains("no signature found") {
        return Outcome::Unsigned;
    }
    let status: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("[GNUPG:] "))
        .map(|l| l.split_once(' ').unwrap_or((l, "")))
        .collect();
    if !status.is_empty() {
        let find = |kw: &str| status.iter().find(|(k, _)| *k == kw).map(|(_, rest)| *rest);
        let keyid = |rest: &str| rest.split(' ').next().unwrap_or("").to_string();
        for (kw, reason) in [
            ("BADSIG", "the signature does not match the signed content"),
            ("EXPKEYSIG", "the signing key has expired"),
            ("REVKEYSIG", "the signing key has been revoked"),
            ("EXPSIG", "the signature has expired"),
        ] {
            if let Some(rest) = find(kw) {
                return Outcome::Bad {
                    reason: format!("{reason} (OpenPGP key {})", keyid(rest)),
                };
            }
        }
        if let Some(rest) = find("ERRSIG") {
            // ERRSIG <keyid> <algo> <hash> <class> <time> <rc> [<fpr>]
            let fields: Vec<&str> = rest.split(' ').collect();
            let key = fields
                .get(6)
                .filter(|f| f.len() >= 32)
                .or(fields.first())
                .copied()
                .unwrap_or("");
            if find("NO_PUBKEY").is_some() {
                return Outcome::Unknown {
                    key: format!("OpenPGP key {key}"),
                };
            }
            return Outcome::Bad {
                reason: format!("the signature cannot be checked (OpenPGP key {key})"),
            };
        }
        if let (Some(good), Some(valid)) = (find("GOODSIG"), find("VALIDSIG")) {
            let signer = good.split_once(' ').map_or("", |(_, uid)| uid).to_string();
            // VALIDSIG <fpr> … [<primary key fpr>]: report the primary key.
            let fields: Vec<&str> = valid.split(' ').collect();
            let key = if fields.len() >= 10 {
                fields[fields.len() - 1]
            } else {
                fields[0]
            };
            if ok {
                return Outcome::Good {
                    format: SignatureFormat::OpenPgp,
                    key: key.to_string(),
                    signer,
                };
            }
            return Outcome::Unknown {
                key: format!("OpenPGP key {key}"),
            };
        }
    }
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Good \"git\" signature for ") {
            if let Some((principal, key)) = rest.split_once(" with ") {
                if ok {
                    return Outcome::Good {
                        format: SignatureFormat::Ssh,
                        key: key.rsplit(' ').next().unwrap_or(key).to_string(),
                        signer: principal.to_string(),
                    };
                }
            }
        }
        if let Some(rest) = line.strip_prefix("Good \"git\" signature with ") {
            return Outcome::Unknown {
                key: format!("SSH key {}", rest.rsplit(' ').next().unwrap_or(rest)),
            };
        }
    }
    let reason = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("[GNUPG:]"))
        .collect::<Vec<_>>()
        .join("; ");
    Outcome::Bad {
        reason: if reason.is_empty() {
            format!("git exited with {}", out.status)
        } else {
            reason
        },
    }
}

/// Turns an outcome into the result for `object`.
fn judge(outcome: Outcome, commit: &str, object: SignedObject) -> Result<Verified, VerifyError> {
    let shown = match &object {
        SignedObject::Commit => format!("commit {}", short(commit)),
        SignedObject::Tag { name } => format!("tag {name} (commit {})", short(commit)),
    };
    match outcome {
        Outcome::Good {
            format,
            key,
            signer,
        } => Ok(Verified {
            commit: commit.to_string(),
            object,
            format,
            key,
            signer,
        }),
        Outcome::Unsigned => Err(VerifyError::Unsigned {
            commit: commit.to_string(),
            object: shown,
            detail: String::new(),
        }),
        Outcome::Unknown { key } => Err(VerifyError::UnknownKey {
            commit: commit.to_string(),
            object: shown,
            key,
        }),
        Outcome::Bad { reason } => Err(VerifyError::Bad {
            commit: commit.to_string(),
            object: shown,
            reason,
        }),
    }
}

/// Runs a read-only git command in the cache repository, returning stdout.
fn git_text(repo: &Repo, args: &[&str]) -> Result<Option<String>, VerifyError> {
    let mut cmd = repo.command();
    cmd.args(args);
    let out =
        output(&mut cmd, None).map_err(|e| VerifyError::Source(spawn_error("git", "Git", e)))?;
    Ok(out
        .status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()))
}

/// The tag the source's ref resolved to (`refs/tags/X`), if it is one: fetch
/// prefers a branch of the same name, and so does this.
fn tag_of_ref(repo: &Repo, reference: Option<&str>) -> Result<Option<String>, VerifyError> {
    let Some(r) = reference else {
        return Ok(None);
    };
    if is_commit_id(r) || r.starts_with("refs/heads/") {
        return Ok(None);
    }
    let full = if r.starts_with("refs/tags/") {
        r.to_string()
    } else {
        if repo
            .resolve(&format!("refs/heads/{r}"))
            .map_err(VerifyError::Source)?
            .is_some()
        {
            return Ok(None);
        }
        format!("refs/tags/{r}")
    };
    let exists = git_text(repo, &["rev-parse", "--verify", "--quiet", &full])?.is_some();
    Ok(exists.then_some(full))
}

/// Annotated tags pointing at `commit`.
fn tags_pointing_at(repo: &Repo, commit: &str) -> Result<Vec<String>, VerifyError> {
    let text = git_text(
        repo,
        &[
            "for-each-ref",
            "--points-at",
            commit,
            "--format=%(objecttype) %(refname)",
            "refs/tags",
        ],
    )?
    .unwrap_or_default();
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix("tag "))
        .map(str::to_string)
        .collect())
}

/// Whether a raw commit has a signature header (`git verify-commit` says nothing
/// about unsigned commits).
fn commit_is_signed(raw: &str) -> bool {
    raw.split("\n\n")
        .next()
        .unwrap_or("")
        .lines()
        .any(|l| l.starts_with("gpgsig ") || l.starts_with("gpgsig-sha256 "))
}

fn check_commit(repo: &Repo, keyring: &Keyring, commit: &str) -> Result<Verified, VerifyError> {
    let raw = git_text(repo, &["cat-file", "commit", commit])?.unwrap_or_default();
    if !commit_is_signed(&raw) {
        return judge(Outcome::Unsigned, commit, SignedObject::Commit);
    }
    let out = keyring.git_verify(repo, "verify-commit", commit)?;
    judge(classify(&out), commit, SignedObject::Commit)
}

fn check_tag(
    repo: &Repo,
    keyring: &Keyring,
    tag_ref: &str,
    commit: &str,
) -> Result<Verified, VerifyError> {
    let name = tag_ref
        .strip_prefix("refs/tags/")
        .unwrap_or(tag_ref)
        .to_string();
    let object = SignedObject::Tag { name: name.clone() };
    let shown = format!("tag {name} (commit {})", short(commit));
    let kind = git_text(repo, &["cat-file", "-t", tag_ref])?.unwrap_or_default();
    if kind != "tag" {
        return Err(VerifyError::Unsigned {
            commit: commit.to_string(),
            object: shown,
            detail: " (it is a lightweight tag, which cannot carry a signature)".to_string(),
        });
    }
    let target = repo.resolve(tag_ref).map_err(VerifyError::Source)?;
    if target.as_deref() != Some(commit) {
        return Err(VerifyError::Bad {
            commit: commit.to_string(),
            object: shown,
            reason: format!(
                "the tag points at {}, not at the fetched commit",
                target.as_deref().map_or("no commit", short)
            ),
        });
    }
    let out = keyring.git_verify(repo, "verify-tag", tag_ref)?;
    judge(classify(&out), commit, object)
}

/// Verifies `revision` (a commit in `repo`) under `policy`.
pub(crate) fn verify(
    repo: &Repo,
    reference: Option<&str>,
    revision: &Revision,
    policy: &VerifyPolicy,
) -> Result<Verified, VerifyError> {
    let commit = revision.id.to_ascii_lowercase();
    if !is_commit_id(&commit) {
        return Err(VerifyError::Source(SourceError::InvalidRevision {
            revision: revision.id.clone(),
            location: repo.shown_url(),
            reason: "a Git revision must be a full commit id".to_string(),
        }));
    }
    if !repo.exists() || !repo.has_commit(&commit).map_err(VerifyError::Source)? {
        return Err(VerifyError::Source(SourceError::CommitNotFound {
            url: repo.shown_url(),
            commit,
            detail: "it is not in the local cache; fetch the source first".to_string(),
        }));
    }
    let keyring = Keyring::new(&policy.keys)?;
    match policy.mode {
        VerifyMode::Head => check_commit(repo, &keyring, &commit),
        VerifyMode::Tag => match tag_of_ref(repo, reference)? {
            Some(tag) => check_tag(repo, &keyring, &tag, &commit),
            None => Err(VerifyError::NotATag {
                commit,
                reference: reference.map(str::to_string),
            }),
        },
        VerifyMode::Any => {
            let commit_err = match check_commit(repo, &keyring, &commit) {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let mut tags: Vec<String> = tag_of_ref(repo, reference)?.into_iter().collect();
            for t in tags_pointing_at(repo, &commit)? {
                if !tags.contains(&t) {
                    tags.push(t);
                }
            }
            let mut tag_err = None;
            for tag in &tags {
                match check_tag(repo, &keyring, tag, &commit) {
                    Ok(v) => return Ok(v),
                    Err(e) => {
                        // Keep the most telling tag failure: a key or signature
                        // problem beats "unsigned".
                        let better = !matches!(e, VerifyError::Unsigned { .. });
                        if tag_err.is_none() || better {
                            tag_err = Some(e);
                        }
                    }
                }
            }
            Err(match (commit_err, tag_err) {
                (VerifyError::Unsigned { commit, object, .. }, None) => VerifyError::Unsigned {
                    commit,
                    object,
                    detail: ", and no annotated tag points at it".to_string(),
                },
                (
                    VerifyError::Unsigned { commit, object, .. },
                    Some(VerifyError::Unsigned { .. }),
                ) => VerifyError::Unsigned {
                    commit,
                    object,
                    detail: ", and neither is any tag pointing at it".to_string(),
                },
                (VerifyError::Unsigned { .. }, Some(tag_err)) => tag_err,
                (commit_err, _) => commit_err,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    fn out(code: i32, stdout: &str, stderr: &str) -> Output {
        Output {
            status: ExitStatus::from_raw(code << 8),
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
        }
    }

    #[test]
    fn classifies_gpg_status() {
        let good = "[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG 0AB202C8E1102932 Alice <a@x>\n\
                    [GNUPG:] VALIDSIG AAAA 2026-11-27 1 0 4 0 22 8 00 29B827305D41263010DB670D0AB202C8E1102932\n\
                    [GNUPG:] TRUST_ULTIMATE 0 pgp\n";
        assert_eq!(
            classify(&out(0, "", good)),
            Outcome::Good {
                format: SignatureFormat::OpenPgp,
                key: "29B827305D41263010DB670D0AB202C8E1102932".into(),
                signer: "Alice <a@x>".into()
            }
        );
        let unknown = "[GNUPG:] ERRSIG 0AB202C8E1102932 22 8 00 1795819523 9 29B827305D41263010DB670D0AB202C8E1102932\n\
                       [GNUPG:] NO_PUBKEY 0AB202C8E1102932\n";
        assert_eq!(
            classify(&out(1, "", unknown)),
            Outcome::Unknown {
                key: "OpenPGP key 29B827305D41263010DB670D0AB202C8E1102932".into()
            }
        );
        let bad = "[GNUPG:] BADSIG 0AB202C8E1102932 Alice <a@x>\n";
        assert!(matches!(classify(&out(1, "", bad)), Outcome::Bad { .. }));
        assert_eq!(
            classify(&out(1, "", "error: no signature found\n")),
            Outcome::Unsigned
        );
    }

    #[test]
    fn classifies_ssh_messages() {
        let good = "Good \"git\" signature for bob@x with ED25519 key SHA256:abc\n";
        assert_eq!(
            classify(&out(0, good, "")),
            Outcome::Good {
                format: SignatureFormat::Ssh,
                key: "SHA256:abc".into(),
                signer: "bob@x".into()
            }
        );
        let unknown = "Good \"git\" signature with ED25519 key SHA256:def\nNo principal matched.\n";
        assert_eq!(
            classify(&out(1, unknown, "")),
            Outcome::Unknown {
                key: "SSH key SHA256:def".into()
            }
        );
        let bad =
            "Could not verify signature.\nSignature verification failed: incorrect signature\n";
        assert!(matches!(classify(&out(1, "", bad)), Outcome::Bad { .. }));
    }

    #[test]
    fn signature_headers() {
        assert!(commit_is_signed(
            "tree x\nparent y\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n -----END\n\nmsg"
        ));
        assert!(!commit_is_signed(
            "tree x\nauthor a\n\ngpgsig in the message\n"
        ));
    }

    #[test]
    fn signers_lines() {
        assert!(valid_signers_line("bob@x ssh-ed25519 AAAAC3Nz"));
        assert!(valid_signers_line(
            "bob@x namespaces=\"git\" ecdsa-sha2-nistp256 AAAA comment"
        ));
        assert!(!valid_signers_line("ssh-ed25519 AAAA"));
        assert!(!valid_signers_line("bob@x foo bar"));
    }

    #[test]
    fn messages_name_the_commit() {
        let id = "1a2b3c4d5e6f1a2b3c4d5e6f1a2b3c4d5e6f1a2b";
        let err = judge(Outcome::Unsigned, id, SignedObject::Commit).unwrap_err();
        assert_eq!(err.to_string(), "commit 1a2b3c4 is not signed");
        let err = judge(
            Outcome::Unknown {
                key: "SSH key SHA256:x".into(),
            },
            id,
            SignedObject::Tag { name: "v1".into() },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "tag v1 (commit 1a2b3c4) is signed with SSH key SHA256:x, which is not one of the \
             trusted keys"
        );
        let err = VerifyError::NotATag {
            commit: id.into(),
            reference: Some("main".into()),
        };
        assert!(err.to_string().contains("commit 1a2b3c4"), "{err}");
        assert!(err.to_string().contains("'main' is not a tag"), "{err}");
    }
}
