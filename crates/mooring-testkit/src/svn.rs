//! Real Subversion repositories built with `svnadmin` and `svn`, and `svnserve`
//! serving them on 127.0.0.1 (optionally behind a password).
//!
//! The test-side `svn` overrides the settings of `~/.subversion` that could change
//! what it commits (ignores, auto-props) and never caches credentials.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::git::{free_port, wait_listening, write};

/// Runs `svn ARGS` in `dir` (non-interactive, no credential cache, no global
/// ignores or auto-props), panicking (never skipping) if it is missing or fails;
/// returns stdout.
pub fn svn(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("svn")
        .args([
            "--non-interactive",
            "--no-auth-cache",
            "--config-option",
            "config:miscellany:global-ignores=",
            "--config-option",
            "config:miscellany:enable-auto-props=no",
            "--config-option",
            "config:auth:password-stores=",
        ])
        .args(args)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .output()
        .expect("the `svn` executable (Subversion) is required for these tests");
    assert!(
        out.status.success(),
        "svn {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A repository (`svnadmin create`) with the standard `trunk`, `branches`, `tags`
/// layout, and a working copy of `trunk` to commit from.
pub struct Repo {
    _tmp: tempfile::TempDir,
    /// The folder holding the repository, which `svnserve -r` serves.
    pub root: PathBuf,
    /// The repository itself.
    pub path: PathBuf,
    /// A working copy of `trunk` (or of what it was last switched to).
    pub wc: PathBuf,
    /// The repository's folder name.
    pub name: String,
}

impl Repo {
    /// A new repository named `name`; revision 1 creates the layout.
    pub fn new(name: &str) -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("served");
        fs::create_dir_all(&root).unwrap();
        let status = Command::new("svnadmin")
            .args(["create", name])
            .current_dir(&root)
            .status()
            .expect("`svnadmin` (Subversion) is required for these tests");
        assert!(status.success(), "svnadmin create failed");
        let path = root.join(name);
        let repo = Repo {
            wc: tmp.path().join("wc"),
            _tmp: tmp,
            root,
            path,
            name: name.to_string(),
        };
        let url = repo.file_url();
        svn(
            &repo.root,
            &[
                "mkdir",
                "-q",
                "-m",
                "layout",
                &format!("{url}/trunk"),
                &format!("{url}/branches"),
                &format!("{url}/tags"),
            ],
        );
        let wc = repo.wc.to_str().unwrap().to_string();
        svn(
            &repo.root,
            &["checkout", "-q", &format!("{url}/trunk"), &wc],
        );
        repo
    }

    /// `file://` URL of the repository.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.path.display())
    }

    /// Writes a file in the working copy (added at the next commit).
    pub fn write(&self, rel: &str, contents: &str) -> &Repo {
        write(&self.wc.join(rel), contents);
        self
    }

    /// Removes a file or folder from the working copy (`svn rm`).
    pub fn remove(&self, rel: &str) -> &Repo {
        svn(&self.wc, &["rm", "-q", "--force", rel]);
        self
    }

    /// Sets a versioned property on a working-copy path.
    pub fn propset(&self, name: &str, value: &str, rel: &str) -> &Repo {
        svn(&self.wc, &["propset", "-q", name, value, rel]);
        self
    }

    /// Adds everything new, commits, updates; returns the new revision number.
    pub fn commit(&self, message: &str) -> String {
        svn(&self.wc, &["add", "-q", "--force", "."]);
        let out = svn(&self.wc, &["commit", "-m", message]);
        svn(&self.wc, &["update", "-q"]);
        out.lines()
            .find_map(|l| l.strip_prefix("Committed revision "))
            .map(|r| r.trim_end_matches('.').to_string())
            .unwrap_or_else(|| panic!("no revision in svn commit output: {out}"))
    }

    /// Server-side copy (`svn copy URL/from URL/to`), e.g. a branch; returns the
    /// new revision number.
    pub fn copy(&self, from: &str, to: &str, message: &str) -> String {
        let url = self.file_url();
        let out = svn(
            &self.root,
            &[
                "copy",
                "-m",
                message,
                &format!("{url}/{from}"),
                &format!("{url}/{to}"),
            ],
        );
        out.lines()
            .find_map(|l| l.strip_prefix("Committed revision "))
            .map(|r| r.trim_end_matches('.').to_string())
            .unwrap_or_else(|| panic!("no revision in svn copy output: {out}"))
    }

    /// Switches the working copy to another folder of the repository (`trunk`,
    /// `branches/x`).
    pub fn switch(&self, to: &str) -> &Repo {
        svn(&self.wc, &["switch", "-q", &format!("^/{to}")]);
        self
    }

    /// Makes `svnserve` require `user`/`password` (no anonymous access).
    pub fn require_password(&self, user: &str, password: &str) -> &Repo {
        fs::write(
            self.path.join("conf/svnserve.conf"),
            "[general]\nanon-access = none\nauth-access = read\npassword-db = passwd\n\
             realm = mooring-test\n",
        )
        .unwrap();
        fs::write(
            self.path.join("conf/passwd"),
            format!("[users]\n{user} = {password}\n"),
        )
        .unwrap();
        self
    }
}

/// `svnserve` serving a folder of repositories on 127.0.0.1, killed on drop.
pub struct Server {
    child: Option<Child>,
    root: PathBuf,
    pub port: u16,
}

impl Server {
    /// Serves the folder holding `repo`.
    pub fn serve(repo: &Repo) -> Server {
        Server::start(&repo.root)
    }

    /// Serves `root` (`svnserve -r root`).
    pub fn start(root: &Path) -> Server {
        let mut server = Server {
            child: None,
            root: root.to_path_buf(),
            port: free_port(),
        };
        server.restart();
        server
    }

    /// `svn://` URL of a repository served by this server.
    pub fn url(&self, repo: &Repo) -> String {
        format!("svn://127.0.0.1:{}/{}", self.port, repo.name)
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
        let mut child = Command::new("svnserve")
            .args([
                "-d",
                "--foreground",
                "--listen-host",
                "127.0.0.1",
                "--listen-port",
                &port,
                "-r",
            ])
            .arg(&self.root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("`svnserve` (Subversion) is required for these tests");
        wait_listening(&mut child, self.port, "svnserve");
        self.child = Some(child);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
