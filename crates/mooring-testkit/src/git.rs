//! Real Git repositories built with the `git` CLI, and `git daemon` serving them.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::thread;
use std::time::{Duration, Instant};

/// Makes every `git` run by the tests (and by the code under test) hermetic.
pub fn hermetic() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        std::env::set_var("GIT_CONFIG_GLOBAL", "/dev/null");
        std::env::set_var("GIT_CONFIG_NOSYSTEM", "1");
    });
}

/// Runs git in `dir`, panicking (never skipping) if it is missing or fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    git_with(dir, &[], args)
}

/// Runs git in `dir` with extra environment variables (e.g. `GNUPGHOME`).
pub fn git_with(dir: &Path, env: &[(&str, &Path)], args: &[&str]) -> String {
    hermetic();
    let mut cmd = Command::new("git");
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = cmd
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .expect("the `git` executable is required for these tests");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Writes a file, creating its folders.
pub fn write(path: &Path, contents: &str) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, contents).unwrap();
}

/// A work tree whose commits are pushed to a bare repository (`bare`), which is what
/// servers and `file://` URLs expose.
pub struct Repo {
    _tmp: tempfile::TempDir,
    pub work: PathBuf,
    pub bare: PathBuf,
}

impl Repo {
    /// An empty repository named `name` (the bare one is `<name>.git`).
    pub fn new(name: &str) -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path().join("work");
        let bare = tmp.path().join("served").join(format!("{name}.git"));
        fs::create_dir_all(&work).unwrap();
        fs::create_dir_all(&bare).unwrap();
        git(&work, &["init", "-q"]);
        git(&bare, &["init", "-q", "--bare"]);
        git(&work, &["remote", "add", "origin", &bare.to_string_lossy()]);
        Repo {
            _tmp: tmp,
            work,
            bare,
        }
    }

    /// Writes a file in the work tree.
    pub fn write(&self, rel: &str, contents: &str) -> &Repo {
        write(&self.work.join(rel), contents);
        self
    }

    /// Removes a file or folder from the work tree.
    pub fn remove(&self, rel: &str) -> &Repo {
        let p = self.work.join(rel);
        if p.is_dir() {
            fs::remove_dir_all(p).unwrap();
        } else {
            fs::remove_file(p).unwrap();
        }
        self
    }

    /// Commits everything and pushes `main`; returns the commit id.
    pub fn commit(&self, message: &str) -> String {
        git(&self.work, &["add", "-A"]);
        git(
            &self.work,
            &["commit", "-q", "--allow-empty", "-m", message],
        );
        git(&self.work, &["push", "-q", "origin", "HEAD:main"]);
        git(&self.work, &["rev-parse", "HEAD"])
    }

    /// `file://` URL of the bare repository.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.bare.display())
    }
}

/// `git daemon` serving a folder of bare repositories on 127.0.0.1, killed on drop.
pub struct Daemon {
    child: Option<Child>,
    base: PathBuf,
    pub port: u16,
}

/// A free TCP port on 127.0.0.1 (free when this returns).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `child` accepts connections on `port`, panicking if it exits first
/// or takes longer than 20 s.
pub fn wait_listening(child: &mut Child, port: u16, what: &str) {
    wait_listening_at(child, "127.0.0.1", port, what)
}

/// [`wait_listening`] on another address.
pub fn wait_listening_at(child: &mut Child, ip: &str, port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect((ip, port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited early: {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not start listening");
        thread::sleep(Duration::from_millis(50));
    }
}

impl Daemon {
    /// Serves the folder holding `repo`'s bare repository.
    pub fn serve(repo: &Repo) -> Daemon {
        Daemon::start(repo.bare.parent().unwrap())
    }

    /// Serves `base`.
    pub fn start(base: &Path) -> Daemon {
        let mut daemon = Daemon {
            child: None,
            base: base.to_path_buf(),
            port: free_port(),
        };
        daemon.restart();
        daemon
    }

    /// Stops serving (the port is closed) until [`Daemon::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Serves again, on the same port.
    pub fn restart(&mut self) {
        hermetic();
        self.stop();
        // Run `git-daemon` itself: `git daemon` would fork a child that outlives a killed wrapper.
        let exec_path = git(Path::new("."), &["--exec-path"]);
        let mut child = Command::new(Path::new(&exec_path).join("git-daemon"))
            .args(["--reuseaddr", "--export-all", "--listen=127.0.0.1"])
            .arg(format!("--base-path={}", self.base.display()))
            .arg(format!("--port={}", self.port))
            .arg(&self.base)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("`git daemon` is required for these tests");
        wait_listening(&mut child, self.port, "git daemon");
        self.child = Some(child);
    }

    /// `git://` URL of a repository served by this daemon.
    pub fn url(&self, repo: &Repo) -> String {
        let name = repo.bare.file_name().unwrap().to_string_lossy();
        format!("git://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}
