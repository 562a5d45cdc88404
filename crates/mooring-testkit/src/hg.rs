//! Real Mercurial repositories built with `hg`, and `hg serve` serving one on
//! 127.0.0.1.
//!
//! The test-side `hg` runs with `HGRCPATH` empty (no user or system configuration)
//! and a fixed user name.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::git::{free_port, wait_listening, write};

/// Runs `hg ARGS` in `dir`, panicking (never skipping) if it is missing or fails;
/// returns stdout.
pub fn hg(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("hg")
        .args(args)
        .current_dir(dir)
        .env("HGRCPATH", "")
        .env("HGPLAIN", "1")
        .env("HGUSER", "Test <test@example.com>")
        .env("LC_ALL", "C")
        .output()
        .expect("the `hg` executable (Mercurial) is required for these tests");
    assert!(
        out.status.success(),
        "hg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A Mercurial repository with a working directory.
pub struct Repo {
    _tmp: tempfile::TempDir,
    /// The repository (and its working directory).
    pub path: PathBuf,
}

impl Repo {
    /// An empty repository in a folder named `name`.
    pub fn new(name: &str) -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(name);
        fs::create_dir_all(&path).unwrap();
        hg(&path, &["init"]);
        Repo { _tmp: tmp, path }
    }

    /// Writes a file in the working directory.
    pub fn write(&self, rel: &str, contents: &str) -> &Repo {
        write(&self.path.join(rel), contents);
        self
    }

    /// Removes a file or folder from the working directory (recorded at the next
    /// commit).
    pub fn remove(&self, rel: &str) -> &Repo {
        let p = self.path.join(rel);
        if p.is_dir() {
            fs::remove_dir_all(p).unwrap();
        } else {
            fs::remove_file(p).unwrap();
        }
        self
    }

    /// Commits everything (`hg commit --addremove`); returns the changeset id.
    pub fn commit(&self, message: &str) -> String {
        hg(&self.path, &["commit", "--addremove", "-q", "-m", message]);
        self.node(".")
    }

    /// Starts a named branch for the next commit.
    pub fn branch(&self, name: &str) -> &Repo {
        hg(&self.path, &["branch", "-q", name]);
        self
    }

    /// Updates the working directory to `rev`.
    pub fn update(&self, rev: &str) -> &Repo {
        hg(&self.path, &["update", "-q", rev]);
        self
    }

    /// The full changeset id of `rev`.
    pub fn node(&self, rev: &str) -> String {
        hg(&self.path, &["log", "-r", rev, "-T", "{node}"])
    }

    /// `hg+file://` source string of the repository.
    pub fn file_source(&self) -> String {
        format!("hg+file://{}", self.path.display())
    }
}

/// `hg serve` serving one repository over HTTP on 127.0.0.1, killed on drop.
pub struct Server {
    child: Option<Child>,
    repo: PathBuf,
    pub port: u16,
}

impl Server {
    /// Serves `repo`.
    pub fn serve(repo: &Repo) -> Server {
        let mut server = Server {
            child: None,
            repo: repo.path.clone(),
            port: free_port(),
        };
        server.restart();
        server
    }

    /// `http://` URL of the served repository.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Stops serving until [`Server::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Serves again, on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let port = self.port.to_string();
        let mut child = Command::new("hg")
            .args(["serve", "-a", "127.0.0.1", "-p", &port, "-R"])
            .arg(&self.repo)
            .args(["-A", "/dev/null", "-E", "/dev/null"])
            .env("HGRCPATH", "")
            .env("HGPLAIN", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the `hg` executable (Mercurial) is required for these tests");
        wait_listening(&mut child, self.port, "hg serve");
        self.child = Some(child);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
