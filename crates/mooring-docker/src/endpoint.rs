//! Where a Docker Engine listens, named as the Docker CLI names it: `unix:///path`,
//! `tcp://host:port` (TLS with a client certificate; plain only on a loopback address,
//! as for a local socket proxy), or `ssh://[user@]host[:port]` (the Docker CLI's SSH
//! transport: `docker system dial-stdio` run on the remote through `ssh`). Parsing is
//! pure; the transports are in `transport`.

use std::fmt;
use std::path::PathBuf;

/// A Docker Engine's address and how to reach it.
#[derive(Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A socket on this machine.
    Unix(PathBuf),
    /// TCP, with TLS unless the address is a loopback one.
    Tcp {
        host: String,
        port: u16,
        tls: Option<Tls>,
    },
    /// `ssh [-l user] [-p port] host docker system dial-stdio`.
    Ssh {
        user: Option<String>,
        host: String,
        port: Option<u16>,
        options: SshOptions,
    },
}

/// A TCP endpoint's TLS material, PEM: the CA that signed the Engine's certificate
/// (the server name is always verified), and the client's certificate and key.
#[derive(Clone, PartialEq, Eq)]
pub struct Tls {
    pub ca: Vec<u8>,
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tls { ca, cert, key: (hidden) }")
    }
}

/// How `ssh` authenticates: a key (a file, or its content) and a `known_hosts` file
/// (each optional: ssh's defaults otherwise, in batch mode, host keys always checked).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SshOptions {
    pub identity: Option<SshIdentity>,
    pub known_hosts: Option<PathBuf>,
}

/// An SSH private key: a file ssh reads, or the key itself (from the configuration or
/// a variable), written for ssh into the connection's private folder (0700; the key
/// 0600) and gone with it.
#[derive(Clone, PartialEq, Eq)]
pub enum SshIdentity {
    File(PathBuf),
    Key(Vec<u8>),
}

impl fmt::Debug for SshOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let identity = match &self.identity {
            Some(SshIdentity::File(p)) => p.display().to_string(),
            Some(SshIdentity::Key(_)) => "(a key, hidden)".into(),
            None => "none".into(),
        };
        write!(
            f,
            "SshOptions {{ identity: {identity}, known_hosts: {:?} }}",
            self.known_hosts
        )
    }
}

impl Endpoint {
    /// Reads an endpoint's address; TLS material and SSH options are added by the
    /// caller (`with_tls`, `with_ssh`). A `tcp://` endpoint on a non-loopback address
    /// without TLS is refused by [`Endpoint::check`].
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        let bad = |why: &str| format!("Docker endpoint {text:?}: {why}");
        if let Some(path) = text.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(bad(
                    "a unix:// endpoint needs an absolute path (unix:///var/run/docker.sock)",
                ));
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = text.strip_prefix("tcp://") {
            let rest = rest.trim_end_matches('/');
            let (host, port) = split_port(rest).ok_or_else(|| {
                bad("a tcp:// endpoint needs a host and a port (tcp://docker1.lan:2376)")
            })?;
            return Ok(Endpoint::Tcp {
                host,
                port: port.ok_or_else(|| bad("a tcp:// endpoint needs a port (2376 for TLS)"))?,
                tls: None,
            });
        }
        if let Some(rest) = text.strip_prefix("ssh://") {
            let rest = rest.trim_end_matches('/');
            if rest.contains('/') {
                return Err(bad("an ssh:// endpoint has no path; the remote's own Docker CLI settings choose its socket"));
            }
            let (user, hostport) = match rest.rsplit_once('@') {
                Some((u, h)) => (Some(u.to_string()), h),
                None => (None, rest),
            };
            let (host, port) = split_port(hostport)
                .ok_or_else(|| bad("an ssh:// endpoint needs a host (ssh://user@docker1.lan)"))?;
            if host.starts_with('-')
                || user
                    .as_deref()
                    .is_some_and(|u| u.is_empty() || u.starts_with('-'))
            {
                return Err(bad("the host and user must not start with '-'"));
            }
            return Ok(Endpoint::Ssh {
                user,
                host,
                port,
                options: SshOptions::default(),
            });
        }
        Err(bad(
            "use unix:///path, tcp://host:port (with TLS) or ssh://user@host",
        ))
    }

    /// The endpoint with TLS material (a `tcp://` one; others are returned as they are).
    pub fn with_tls(self, material: Tls) -> Endpoint {
        match self {
            Endpoint::Tcp { host, port, .. } => Endpoint::Tcp {
                host,
                port,
                tls: Some(material),
            },
            other => other,
        }
    }

    /// The endpoint with SSH options (an `ssh://` one; others are returned as they are).
    pub fn with_ssh(self, ssh: SshOptions) -> Endpoint {
        match self {
            Endpoint::Ssh {
                user, host, port, ..
            } => Endpoint::Ssh {
                user,
                host,
                port,
                options: ssh,
            },
            other => other,
        }
    }

    /// Whether the Engine runs on this machine (a local socket, or TCP to a loopback
    /// address such as a socket proxy): its bind sources and volume folders are this
    /// machine's files.
    pub fn is_local(&self) -> bool {
        match self {
            Endpoint::Unix(_) => true,
            Endpoint::Tcp { host, .. } => is_loopback(host),
            Endpoint::Ssh { .. } => false,
        }
    }

    /// Refuses what would hand the Engine (root on its host) to anyone on the network:
    /// plain TCP to an address that is not a loopback one.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Endpoint::Tcp { host, tls: None, .. } if !is_loopback(host) => Err(format!(
                "{self}: plain TCP to the Docker API gives root on that host to anyone who can reach it; give the endpoint's `tls` (ca, cert, key), use ssh://, or a loopback address"
            )),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Endpoint {
    /// The address, as written (never the TLS material or key paths).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp { host, port, .. } => write!(f, "tcp://{}:{port}", bracket(host)),
            Endpoint::Ssh {
                user, host, port, ..
            } => {
                write!(f, "ssh://")?;
                if let Some(u) = user {
                    write!(f, "{u}@")?;
                }
                write!(f, "{}", bracket(host))?;
                if let Some(p) = port {
                    write!(f, ":{p}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({self})")
    }
}

/// TLS material as the Docker CLI finds it for a `tcp://` `DOCKER_HOST`: with
/// `DOCKER_TLS_VERIFY` set (or `DOCKER_CERT_PATH` given), `ca.pem`, `cert.pem` and
/// `key.pem` in `DOCKER_CERT_PATH` (default `~/.docker`); `None` without either.
pub fn tls_from_env() -> Result<Option<Tls>, String> {
    let verify = std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty());
    let dir = std::env::var("DOCKER_CERT_PATH")
        .ok()
        .filter(|d| !d.is_empty());
    if !verify && dir.is_none() {
        return Ok(None);
    }
    let dir = match dir {
        Some(d) => PathBuf::from(d),
        None => std::env::var("HOME")
            .map(|h| PathBuf::from(h).join(".docker"))
            .map_err(|_| {
                "DOCKER_TLS_VERIFY is set but neither DOCKER_CERT_PATH nor HOME is".to_string()
            })?,
    };
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|e| format!("{}: {e} (DOCKER_CERT_PATH)", path.display()))
    };
    Ok(Some(Tls {
        ca: read("ca.pem")?,
        cert: read("cert.pem")?,
        key: read("key.pem")?,
    }))
}

/// SSH options for an `ssh://` endpoint of a one-shot command: `MOORING_SSH_IDENTITY`
/// and `MOORING_SSH_KNOWN_HOSTS` (files), else ssh's own configuration.
pub fn ssh_from_env() -> SshOptions {
    let file = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    SshOptions {
        identity: file("MOORING_SSH_IDENTITY").map(SshIdentity::File),
        known_hosts: file("MOORING_SSH_KNOWN_HOSTS"),
    }
}

fn bracket(host: &str) -> String {
    match host.contains(':') {
        true => format!("[{host}]"),
        false => host.to_string(),
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; `None` when the host is empty or the
/// port is not a number.
fn split_port(text: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p > 0)?),
        None => None,
    };
    Some((host.to_string(), port))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_read_as_the_docker_cli_names_them() {
        assert_eq!(
            Endpoint::parse("unix:///var/run/docker.sock").unwrap(),
            Endpoint::Unix("/var/run/docker.sock".into())
        );
        let tcp = Endpoint::parse("tcp://docker1.lan:2376").unwrap();
        assert_eq!(tcp.to_string(), "tcp://docker1.lan:2376");
        assert!(tcp.check().unwrap_err().contains("plain TCP"));
        assert!(Endpoint::parse("tcp://127.0.0.1:2375")
            .unwrap()
            .check()
            .is_ok());
        assert_eq!(
            Endpoint::parse("tcp://[::1]:2375").unwrap().to_string(),
            "tcp://[::1]:2375"
        );
        let ssh = Endpoint::parse("ssh://deploy@10.0.0.3:2222").unwrap();
        assert_eq!(
            ssh,
            Endpoint::Ssh {
                user: Some("deploy".into()),
                host: "10.0.0.3".into(),
                port: Some(2222),
                options: SshOptions::default()
            }
        );
        assert_eq!(ssh.to_string(), "ssh://deploy@10.0.0.3:2222");
        for (bad, why) in [
            ("unix://run/docker.sock", "absolute path"),
            ("tcp://docker1.lan", "needs a port"),
            ("tcp://:2376", "needs a host and a port"),
            ("tcp://h:notaport", "needs a host and a port"),
            ("ssh://-oProxyCommand=x", "must not start with '-'"),
            ("ssh://u@h/var/run/docker.sock", "has no path"),
            ("npipe:////./pipe/docker_engine", "use unix:///path"),
        ] {
            let e = Endpoint::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn tls_material_never_prints() {
        let e = Endpoint::parse("tcp://h:2376").unwrap().with_tls(Tls {
            ca: b"ca".to_vec(),
            cert: b"cert".to_vec(),
            key: b"PRIVATE".to_vec(),
        });
        assert!(e.check().is_ok());
        assert!(!format!("{e:?} {e}").contains("PRIVATE"));
    }
}
