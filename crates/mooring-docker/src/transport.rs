//! Reaching an Engine that is not on a local socket. A [`Bridge`] listens on a
//! private unix socket (in a folder of mode 0700 that only this process's user can
//! enter) and carries each connection made to it to the Engine — over TLS with the
//! endpoint's client certificate (the server's name always verified against the given
//! CA), or through `ssh … docker system dial-stdio` as the Docker CLI does — so
//! bollard and `engine_http` talk to every Engine the same way, over a unix socket.
//! Why the last connection failed is kept for the error a person reads.

use crate::endpoint::{Endpoint, SshIdentity, SshOptions, Tls};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};

/// How long a TCP connection to a remote Engine may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A private socket that leads to a remote Engine; it closes when dropped.
pub(crate) struct Bridge {
    _dir: tempfile::TempDir,
    pub(crate) socket: PathBuf,
    task: tokio::task::JoinHandle<()>,
    last_error: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bridge({})", self.socket.display())
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Bridge {
    /// Forgets why an earlier connection failed.
    pub(crate) fn clear_error(&self) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Why the last connection to the Engine failed, if one did.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// How a connection reaches the Engine.
enum Dialer {
    Tls {
        host: String,
        port: u16,
        name: ServerName<'static>,
        connector: tokio_rustls::TlsConnector,
    },
    /// Plain TCP (a loopback address only: `Endpoint::check`).
    Tcp {
        host: String,
        port: u16,
    },
    /// A local socket that did not exist when the provider was opened (the Engine
    /// may not have started yet).
    Unix(PathBuf),
    Ssh {
        args: Vec<String>,
    },
}

/// Opens a bridge to `endpoint` (a `tcp://` or `ssh://` one, or a local socket that
/// is not there yet).
pub(crate) fn bridge(endpoint: &Endpoint) -> Result<Bridge, String> {
    use std::os::unix::fs::PermissionsExt;
    let private =
        |e: std::io::Error| format!("a private socket for the connection to {endpoint}: {e}");
    // The folders a killed daemon's bridges left go first.
    mooring_private::clean_temp("engine");
    let dir = mooring_private::tempdir(None, "engine").map_err(private)?;
    let dialer = Arc::new(dialer(endpoint, dir.path())?);
    let socket = dir.path().join("docker.sock");
    let listener = UnixListener::bind(&socket).map_err(private)?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).map_err(private)?;
    let me = rustix::process::getuid().as_raw();
    let last_error = Arc::new(Mutex::new(None));
    let last = last_error.clone();
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                // Only this process's user: the connection carries its credentials.
                Ok((local, _)) => match local.peer_cred() {
                    Ok(cred) if cred.uid() == me => {
                        tokio::spawn(carry(local, dialer.clone(), last.clone()));
                    }
                    _ => drop(local),
                },
                // Out of descriptors, say: the bridge stays, and takes the next.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    Ok(Bridge {
        _dir: dir,
        socket,
        task,
        last_error,
    })
}

/// How to reach `endpoint`; `dir` is the bridge's private folder (an SSH key given as
/// content is written there for ssh).
fn dialer(endpoint: &Endpoint, dir: &Path) -> Result<Dialer, String> {
    match endpoint {
        Endpoint::Unix(path) => Ok(Dialer::Unix(path.clone())),
        Endpoint::Tcp {
            host,
            port,
            tls: Some(tls),
        } => Ok(Dialer::Tls {
            host: host.clone(),
            port: *port,
            name: ServerName::try_from(host.clone())
                .map_err(|e| format!("{endpoint}: {host} is not a valid server name: {e}"))?,
            connector: tokio_rustls::TlsConnector::from(Arc::new(
                client_config(tls).map_err(|e| format!("{endpoint}: TLS settings: {e}"))?,
            )),
        }),
        Endpoint::Tcp {
            host,
            port,
            tls: None,
        } => Ok(Dialer::Tcp {
            host: host.clone(),
            port: *port,
        }),
        Endpoint::Ssh {
            user,
            host,
            port,
            options,
        } => {
            let key = match &options.identity {
                Some(SshIdentity::File(path)) => Some(path.clone()),
                Some(SshIdentity::Key(key)) => Some(
                    write_key(dir, key)
                        .map_err(|e| format!("{endpoint}: writing the SSH key for ssh: {e}"))?,
                ),
                None => None,
            };
            Ok(Dialer::Ssh {
                args: ssh_args(user.as_deref(), host, *port, key.as_deref(), options),
            })
        }
    }
}

/// The TLS client: the endpoint's CA only (not the system's), its client certificate.
fn client_config(tls: &Tls) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&tls.ca) {
        let cert = cert.map_err(|e| format!("ca: {e}"))?;
        roots.add(cert).map_err(|e| format!("ca: {e}"))?;
    }
    if roots.is_empty() {
        return Err("ca: no certificate in it".into());
    }
    let certs = CertificateDer::pem_slice_iter(&tls.cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cert: {e}"))?;
    if certs.is_empty() {
        return Err("cert: no certificate in it".into());
    }
    // Never the key's text in an error.
    let key = PrivateKeyDer::from_pem_slice(&tls.key)
        .map_err(|_| "key: not a PEM private key".to_string())?;
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(|e| format!("cert and key: {e}"))
}

/// `ssh` in batch mode (never a prompt), host keys always checked, kept alive (a
/// vanished host ends the connection within about a minute, as a TCP one's keepalive
/// does), then the Docker CLI's own transport on the remote.
///
/// A login a connection, as the Docker CLI's `ssh://` does. Sharing one SSH connection
/// (ControlMaster) was tried and left out: the daemon keeps some connections open for
/// good (events, Swarm calls), sshd takes ten sessions on one connection, and a master
/// that outlives a killed daemon, or exits under a container's PID 1, is a process
/// nobody ends or reaps.
fn ssh_args(
    user: Option<&str>,
    host: &str,
    port: Option<u16>,
    key: Option<&Path>,
    o: &SshOptions,
) -> Vec<String> {
    let mut args: Vec<String> = [
        "-o",
        "BatchMode=yes",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=30",
        "-o",
        "ServerAliveInterval=15",
        "-o",
        "ServerAliveCountMax=4",
    ]
    .map(String::from)
    .to_vec();
    if let Some(key) = key {
        args.extend(["-i".into(), key.display().to_string()]);
        args.extend(["-o".into(), "IdentitiesOnly=yes".into()]);
    }
    if let Some(file) = &o.known_hosts {
        args.extend([
            "-o".into(),
            format!("UserKnownHostsFile={}", file.display()),
            "-o".into(),
            "GlobalKnownHostsFile=/dev/null".into(),
        ]);
    }
    args.extend(["-o".into(), "StrictHostKeyChecking=yes".into()]);
    if let Some(p) = port {
        args.extend(["-p".into(), p.to_string()]);
    }
    if let Some(u) = user {
        args.extend(["-l".into(), u.to_string()]);
    }
    args.extend(["--".into(), host.to_string()]);
    args.extend(["docker", "system", "dial-stdio"].map(String::from));
    args
}

/// Writes an SSH key given as content into the bridge's private folder.
fn write_key(dir: &Path, key: &[u8]) -> std::io::Result<PathBuf> {
    let path = dir.join("identity");
    mooring_private::write_key(&path, key)?;
    Ok(path)
}

/// Carries one connection to the Engine and back.
async fn carry(mut local: UnixStream, dialer: Arc<Dialer>, last: Arc<Mutex<Option<String>>>) {
    let fail = |e: String| *last.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
    match dialer.as_ref() {
        Dialer::Tls {
            host,
            port,
            name,
            connector,
        } => {
            let tcp = match connect(host, *port).await {
                Ok(t) => t,
                Err(e) => return fail(e),
            };
            let mut tls = match connector.connect(name.clone(), tcp).await {
                Ok(t) => t,
                Err(e) => return fail(format!("TLS with {host}:{port}: {e}")),
            };
            let _ = tokio::io::copy_bidirectional(&mut local, &mut tls).await;
        }
        Dialer::Unix(path) => {
            let mut unix = match UnixStream::connect(path).await {
                Ok(u) => u,
                Err(e) => return fail(format!("{}: {e}", path.display())),
            };
            let _ = tokio::io::copy_bidirectional(&mut local, &mut unix).await;
        }
        Dialer::Tcp { host, port } => {
            let mut tcp = match connect(host, *port).await {
                Ok(t) => t,
                Err(e) => return fail(e),
            };
            let _ = tokio::io::copy_bidirectional(&mut local, &mut tcp).await;
        }
        Dialer::Ssh { args } => {
            let child = tokio::process::Command::new("ssh")
                .args(args)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn();
            let mut child = match child {
                Ok(c) => c,
                Err(e) => return fail(format!("cannot run ssh: {e}")),
            };
            let (Some(stdin), Some(stdout), Some(mut stderr)) =
                (child.stdin.take(), child.stdout.take(), child.stderr.take())
            else {
                return fail("ssh's pipes could not be opened".into());
            };
            // Each way on its own; the end of the local side closes ssh's input (a
            // shutdown of a pipe does not close it), so the remote `dial-stdio` sees
            // the end, closes the Engine's side and exits: neither ssh nor the remote
            // process outlives its connection.
            let (mut from_local, mut to_local) = local.split();
            let (mut stdin, mut stdout) = (stdin, stdout);
            let up = async move {
                let _ = tokio::io::copy(&mut from_local, &mut stdin).await;
                drop(stdin);
            };
            let down = async move {
                let _ = tokio::io::copy(&mut stdout, &mut to_local).await;
                let _ = to_local.shutdown().await;
            };
            tokio::join!(up, down);
            let mut said = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(5), stderr.read_to_end(&mut said)).await;
            let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            if let Ok(Ok(s)) = status {
                if !s.success() {
                    let said = String::from_utf8_lossy(&said);
                    fail(format!("ssh {s}: {}", said.trim()));
                }
            }
        }
    }
}

/// A TCP connection to a remote Engine, with keepalive: a machine that vanishes
/// without closing (power cut, network gone) ends the connection within about a
/// minute instead of leaving a read waiting forever; and without Nagle's delay, as the
/// Docker CLI's (Go's) connections are.
async fn connect(host: &str, port: u16) -> Result<TcpStream, String> {
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port))).await {
        Ok(Ok(t)) => {
            let keepalive = socket2::TcpKeepalive::new()
                .with_time(Duration::from_secs(30))
                .with_interval(Duration::from_secs(10))
                .with_retries(3);
            socket2::SockRef::from(&t)
                .set_tcp_keepalive(&keepalive)
                .map_err(|e| format!("connecting to {host}:{port}: setting keepalive: {e}"))?;
            // Requests are small writes answered at once: without this, Nagle's
            // algorithm holds a TLS record back until the previous one is acknowledged,
            // and the Engine acknowledges late (40 ms a call).
            t.set_nodelay(true)
                .map_err(|e| format!("connecting to {host}:{port}: setting nodelay: {e}"))?;
            Ok(t)
        }
        Ok(Err(e)) => Err(format!("connecting to {host}:{port}: {e}")),
        Err(_) => Err(format!(
            "connecting to {host}:{port}: no answer within {}s",
            CONNECT_TIMEOUT.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn the_bridge_is_private_to_this_user() {
        let endpoint = Endpoint::parse("ssh://nobody@192.0.2.1").unwrap();
        let b = bridge(&endpoint).unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(b.socket.parent().unwrap()), 0o700);
        assert_eq!(mode(&b.socket), 0o600);
        let scratch = tempfile::tempdir().unwrap();
        let args = match dialer(&endpoint, scratch.path()).unwrap() {
            Dialer::Ssh { args } => args,
            _ => unreachable!(),
        };
        // The host comes after `--`, the user by `-l`: neither can be read as an option.
        let at = args.iter().position(|a| a == "--").unwrap();
        assert_eq!(args[at + 1], "192.0.2.1");
        assert_eq!(&args[at + 2..], ["docker", "system", "dial-stdio"]);
        assert!(args.windows(2).any(|w| w == ["-l", "nobody"]));
        assert!(args.contains(&"StrictHostKeyChecking=yes".to_string()));
        assert!(args.contains(&"ServerAliveInterval=15".to_string()));
    }

    #[tokio::test]
    async fn a_key_given_as_content_is_written_for_ssh_into_the_private_folder_only() {
        let key = b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----";
        let endpoint = Endpoint::parse("ssh://nobody@192.0.2.1")
            .unwrap()
            .with_ssh(SshOptions {
                identity: Some(SshIdentity::Key(key.to_vec())),
                known_hosts: None,
            });
        assert!(!format!("{endpoint:?}").contains("AAAA"), "{endpoint:?}");
        let b = bridge(&endpoint).unwrap();
        let dir = b.socket.parent().unwrap().to_path_buf();
        let written = dir.join("identity");
        let mode = std::fs::metadata(&written).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mut expected = key.to_vec();
        expected.push(b'\n');
        assert_eq!(std::fs::read(&written).unwrap(), expected);
        drop(b);
        assert!(!dir.exists(), "the key goes with the bridge");
    }
}
