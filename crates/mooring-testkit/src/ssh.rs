//! A real OpenSSH server (`/usr/sbin/sshd`, Debian's `openssh-server`) on
//! 127.0.0.1 and a free port, for Git, Subversion (`svnserve -t`) and Mercurial
//! (`hg serve --stdio`) over SSH.
//!
//! Everything lives in a temporary folder: a generated ed25519 host key, an
//! `authorized_keys` holding one generated client key ([`SshServer::client_key`]),
//! the `sshd_config`, the pid file, and a `known_hosts` for the client naming the
//! host key as `[127.0.0.1]:PORT`. sshd runs in the foreground (`-D -e`) as the
//! current user (root on the test machines: `PermitRootLogin prohibit-password`),
//! public keys only, and is killed on drop. Port 22 and the system's sshd are never
//! used. A missing sshd or ssh-keygen makes the test fail, never skip.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::git::free_port;
use crate::signing::SshKey;

/// Debian's OpenSSH server binary (sshd must be started by absolute path).
pub const SSHD: &str = "/usr/sbin/sshd";

/// Fails — never skips — when `sshd` or `ssh` is missing: these tests exist to
/// exercise them.
pub fn require() {
    assert!(
        Path::new(SSHD).is_file(),
        "{SSHD} is required for these tests (Debian package openssh-server; CI={})",
        std::env::var("CI").unwrap_or_default()
    );
    let ssh = Command::new("ssh").arg("-V").output();
    assert!(
        ssh.is_ok_and(|o| o.status.success()),
        "`ssh` is required for these tests (Debian package openssh-client)"
    );
}

/// An sshd on 127.0.0.1 that accepts [`SshServer::client_key`], killed on drop.
pub struct SshServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// The port sshd listens on.
    pub port: u16,
    /// The key the server accepts.
    pub client_key: SshKey,
    /// The server's host key (public line, `ssh-ed25519 AAAA…`).
    pub host_key: String,
    /// A `known_hosts` file trusting exactly this server.
    pub known_hosts: PathBuf,
    /// The user the tests log in as (the current user).
    pub user: String,
    /// The address it listens on.
    pub ip: String,
    /// The network namespace it runs in (`None`: the machine's own).
    netns: Option<String>,
}

impl SshServer {
    /// Starts a server with fresh host and client keys.
    pub fn start() -> SshServer {
        SshServer::start_at(None, "127.0.0.1", "")
    }

    /// Starts a server listening on `ip` inside network namespace `netns` (or the
    /// machine's own), with `extra` lines added to its `sshd_config` (e.g. `SetEnv`).
    pub fn start_at(netns: Option<&str>, ip: &str, extra: &str) -> SshServer {
        require();
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host_ed25519");
        keygen(&host, "mooring-test-host");
        let host_key = public_line(&host);
        let client_key = SshKey::generate("mooring-test-client");
        fs::write(
            dir.path().join("authorized_keys"),
            format!("{}\n", client_key.public),
        )
        .unwrap();
        let port = free_port();
        let known_hosts = dir.path().join("known_hosts");
        fs::write(&known_hosts, format!("[{ip}]:{port} {host_key}\n")).unwrap();
        let config = format!(
            "ListenAddress {ip}\n\
             Port {port}\n\
             HostKey {host}\n\
             AuthorizedKeysFile {dir}/authorized_keys\n\
             PidFile {dir}/sshd.pid\n\
             StrictModes no\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             PermitRootLogin prohibit-password\n\
             AllowTcpForwarding no\n\
             X11Forwarding no\n\
             PrintMotd no\n\
             LogLevel INFO\n\
             {extra}\n",
            host = host.display(),
            dir = dir.path().display(),
        );
        fs::write(dir.path().join("sshd_config"), config).unwrap();
        // sshd needs its privilege separation directory.
        fs::create_dir_all("/run/sshd").expect("cannot create /run/sshd for sshd");
        let user = String::from_utf8(
            Command::new("id")
                .arg("-un")
                .output()
                .expect("`id` is required")
                .stdout,
        )
        .unwrap()
        .trim()
        .to_string();
        let mut server = SshServer {
            child: None,
            dir,
            port,
            client_key,
            host_key,
            known_hosts,
            user,
            ip: ip.to_string(),
            netns: netns.map(str::to_string),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let log = fs::File::create(self.dir.path().join("sshd.log")).unwrap();
        let mut command = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{ns}")).arg(SSHD);
                c
            }
            None => Command::new(SSHD),
        };
        let mut child = command
            .args(["-D", "-e", "-f"])
            .arg(self.dir.path().join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("cannot start sshd");
        crate::git::wait_listening_at(&mut child, &self.ip, self.port, "sshd");
        self.child = Some(child);
    }

    /// The server's log (its stderr).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// `user@IP:PORT`, the authority of the server's URLs.
    pub fn authority(&self) -> String {
        format!("{}@{}:{}", self.user, self.ip, self.port)
    }

    /// A `known_hosts` file naming another key for this server (a
    /// man-in-the-middle, as the client sees it).
    pub fn wrong_known_hosts(&self) -> PathBuf {
        let other = self.dir.path().join("other_host_ed25519");
        if !other.exists() {
            keygen(&other, "impostor");
        }
        let path = self.dir.path().join("wrong_known_hosts");
        fs::write(
            &path,
            format!("[{}]:{} {}\n", self.ip, self.port, public_line(&other)),
        )
        .unwrap();
        path
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `ssh-keygen -t ed25519 -N ''` into `path` (and `path.pub`).
fn keygen(path: &Path, comment: &str) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("`ssh-keygen` (openssh-client) is required for these tests");
    assert!(status.success(), "ssh-keygen failed");
}

/// `TYPE BASE64` of a generated key's public half.
fn public_line(private: &Path) -> String {
    let text = fs::read_to_string(private.with_extension("pub")).unwrap();
    let mut fields = text.split_whitespace();
    format!(
        "{} {}",
        fields.next().unwrap_or_default(),
        fields.next().unwrap_or_default()
    )
}
