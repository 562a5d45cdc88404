//! The daemon's own sections of `mooring.yaml`: `server` (listen address, data
//! folder, workers, retention, HTTP bounds), `hosts`, `webhooks` and `notifications`.

use super::{
    positive, secret, HostConfig, HttpConfig, Notification, NotificationFormat, Retention, Secret,
    ServerConfig, WebhookConfig, NOTIFICATION_EVENTS, STUCK_AFTER,
};
use mooring_compose::decode::{check_keys, entries, err, key_of, string, string_list, unsigned};
use mooring_compose::yaml::{Node, Value};
use mooring_compose::LoadError;
use mooring_docker::{Endpoint, SshIdentity, SshOptions, Tls};
use mooring_vcs::SshKey;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default of `server.listen`.
const LISTEN: ([u8; 4], u16) = ([127, 0, 0, 1], 7420);
/// Default of `server.workers`.
const WORKERS: u64 = 4;
/// Default of `server.retention`.
const RETENTION: Retention = Retention {
    operations_per_app: 200,
    events: 10_000,
};

/// `server:` of the document, defaults when absent.
pub(super) fn server_or_default(doc: &Node, base: &Path) -> Result<ServerConfig, LoadError> {
    match doc.get("server") {
        Some(n) => server(n, base),
        None => Ok(ServerConfig {
            listen: SocketAddr::from(LISTEN),
            data_dir: base.join(".mooring"),
            workers: WORKERS as usize,
            retention: RETENTION,
            http: HttpConfig::default(),
            stuck_after: STUCK_AFTER,
        }),
    }
}

fn server(n: &Node, base: &Path) -> Result<ServerConfig, LoadError> {
    check_keys(
        n,
        "server",
        &[
            "listen",
            "data_dir",
            "workers",
            "retention",
            "http",
            "stuck_after",
        ],
    )?;
    let listen = match n.get("listen") {
        None => SocketAddr::from(LISTEN),
        Some(l) => {
            let text = string(l, "server.listen")?;
            text.parse().map_err(|_| {
                err(
                    l,
                    format!("server.listen: {text:?} is not an address (use e.g. 127.0.0.1:7420)"),
                )
            })?
        }
    };
    let data_dir = match n.get("data_dir") {
        None => base.join(".mooring"),
        Some(d) => base.join(string(d, "server.data_dir")?),
    };
    let workers = n
        .get("workers")
        .map(|w| unsigned(w, "server.workers"))
        .transpose()?
        .unwrap_or(WORKERS);
    if workers == 0 {
        return Err(err(
            n.get("workers").unwrap_or(n),
            "server.workers must be at least 1",
        ));
    }
    let mut retention = RETENTION;
    if let Some(r) = n.get("retention") {
        check_keys(r, "server.retention", &["operations_per_app", "events"])?;
        if let Some(v) = r.get("operations_per_app") {
            retention.operations_per_app =
                unsigned(v, "server.retention.operations_per_app")? as usize;
        }
        if let Some(v) = r.get("events") {
            retention.events = unsigned(v, "server.retention.events")? as usize;
        }
    }
    Ok(ServerConfig {
        listen,
        data_dir,
        workers: workers as usize,
        retention,
        http: n.get("http").map(http).transpose()?.unwrap_or_default(),
        stuck_after: n
            .get("stuck_after")
            .map(|v| positive(v, "server.stuck_after"))
            .transpose()?
            .unwrap_or(STUCK_AFTER),
    })
}

/// `server.http: { header_timeout, body_timeout, max_connections }`.
fn http(n: &Node) -> Result<HttpConfig, LoadError> {
    check_keys(
        n,
        "server.http",
        &["header_timeout", "body_timeout", "max_connections"],
    )?;
    let mut http = HttpConfig::default();
    for (key, slot) in [
        ("header_timeout", &mut http.header_timeout),
        ("body_timeout", &mut http.body_timeout),
    ] {
        if let Some(v) = n.get(key) {
            let what = format!("server.http.{key}");
            *slot = positive(v, &what)?;
            if *slot > Duration::from_secs(3600) {
                return Err(err(v, format!("{what} must be at most 1h (e.g. 10s)")));
            }
        }
    }
    if let Some(v) = n.get("max_connections") {
        let max = unsigned(v, "server.http.max_connections")?;
        if !(1..=65_536).contains(&max) {
            return Err(err(
                v,
                "server.http.max_connections must be between 1 and 65536 (e.g. 512)",
            ));
        }
        http.max_connections = max as usize;
    }
    Ok(http)
}

/// `hosts:`; a single `local` host on the default socket when absent. Each host's
/// `docker` endpoint as the Docker CLI names it; a `tcp://` one takes `tls: { ca,
/// cert, key }` (each inline, `file:` or `env:`), an `ssh://` one `ssh: { identity,
/// known_hosts }` (the key a file, `env:NAME` or inline, as a source's `ssh_key`;
/// `known_hosts` a file). Endpoints are checked here: plain TCP off loopback, or
/// TLS or SSH settings on the wrong kind, are refused with their position.
pub(super) fn hosts(doc: &Node, base: &Path) -> Result<BTreeMap<String, HostConfig>, LoadError> {
    let mut hosts = BTreeMap::new();
    let mut node_refs = Vec::new();
    if let Some(n) = doc.get("hosts") {
        for (k, v) in entries(n, "hosts")? {
            let name = key_of(k).to_string();
            let what = format!("hosts.{name}");
            // It names files (`compose.<host>.yaml`) and app instances (`web@<host>`).
            let plain = name.len() <= 63
                && name.starts_with(|c: char| c.is_ascii_alphanumeric())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !plain {
                return Err(err(
                    k,
                    format!("{what}: {name:?} is not a valid host name (letters, digits, '-', '_' and '.', starting with a letter or digit, at most 63)"),
                ));
            }
            check_keys(
                v,
                &what,
                &[
                    "docker",
                    "tls",
                    "ssh",
                    "labels",
                    "variables",
                    "mode",
                    "nodes",
                ],
            )?;
            let swarm = match v.get("mode") {
                None => false,
                Some(m) => match string(m, &format!("{what}.mode"))?.as_str() {
                    "engine" => false,
                    "swarm" => true,
                    other => {
                        return Err(err(
                            m,
                            format!(
                                "{what}.mode: {other:?} (use engine, or swarm for a Swarm manager)"
                            ),
                        ))
                    }
                },
            };
            let Some(d) = v.get("docker") else {
                return Err(err(
                    v,
                    format!("{what}: `docker` is required (e.g. unix:///var/run/docker.sock, tcp://docker1.lan:2376, ssh://deploy@docker1.lan)"),
                ));
            };
            let text = string(d, &format!("{what}.docker"))?;
            let mut endpoint =
                Endpoint::parse(&text).map_err(|e| err(d, format!("{what}.docker: {e}")))?;
            if let Some(t) = v.get("tls") {
                let w = format!("{what}.tls");
                if !matches!(endpoint, Endpoint::Tcp { .. }) {
                    return Err(err(
                        t,
                        format!("{w}: TLS settings are for a tcp:// endpoint"),
                    ));
                }
                check_keys(t, &w, &["ca", "cert", "key"])?;
                let part = |key: &str| -> Result<Vec<u8>, LoadError> {
                    let n = t.get(key).ok_or_else(|| err(t, format!("{w}: `{key}` is required (ca, cert and key, each inline, file:PATH or env:NAME)")))?;
                    Ok(secret(n, &format!("{w}.{key}"), base)?
                        .expose()
                        .as_bytes()
                        .to_vec())
                };
                endpoint = endpoint.with_tls(Tls {
                    ca: part("ca")?,
                    cert: part("cert")?,
                    key: part("key")?,
                });
            }
            if let Some(o) = v.get("ssh") {
                let w = format!("{what}.ssh");
                if !matches!(endpoint, Endpoint::Ssh { .. }) {
                    return Err(err(
                        o,
                        format!("{w}: SSH settings are for an ssh:// endpoint"),
                    ));
                }
                check_keys(o, &w, &["identity", "known_hosts"])?;
                let file = |key: &str| -> Result<Option<PathBuf>, LoadError> {
                    let Some(n) = o.get(key) else { return Ok(None) };
                    let raw = string(n, &format!("{w}.{key}"))?;
                    let path = base.join(raw.strip_prefix("file:").unwrap_or(&raw));
                    // ssh expands `%x` and `${VAR}` in these options and splits a
                    // known_hosts setting at white space: such a path is not what it says.
                    let shown = path.display().to_string();
                    if shown.chars().any(|c| {
                        c.is_whitespace()
                            || c.is_control()
                            || matches!(c, '%' | '$' | '"' | '\'' | '\\')
                    }) {
                        return Err(err(n, format!("{w}.{key}: {shown} holds white space, quotes, '%' or '$', which ssh would read otherwise; move or rename the file")));
                    }
                    std::fs::File::open(&path).map_err(|e| {
                        err(n, format!("{w}.{key}: cannot read {}: {e}", path.display()))
                    })?;
                    Ok(Some(path))
                };
                // The key as sources take one: a file, `env:NAME` or inline (a block).
                let identity = match o.get("identity") {
                    Some(n)
                        if matches!(&n.value, Value::Scalar { text, .. }
                            if text.starts_with("env:") || text.contains("PRIVATE KEY-----")) =>
                    {
                        match super::source::ssh_key(n, &format!("{w}.identity"), base)? {
                            SshKey::File(path) => Some(SshIdentity::File(path)),
                            SshKey::Value(key) => Some(SshIdentity::Key(key.into_bytes())),
                        }
                    }
                    _ => file("identity")?.map(SshIdentity::File),
                };
                endpoint = endpoint.with_ssh(SshOptions {
                    identity,
                    known_hosts: file("known_hosts")?,
                });
            }
            endpoint
                .check()
                .map_err(|e| err(d, format!("{what}.docker: {e}")))?;
            // Two names for one Engine would deploy the same project twice over itself.
            let shown = endpoint.to_string();
            if let Some((other, _)) = hosts
                .iter()
                .find(|(_, h): &(&String, &HostConfig)| h.endpoint.to_string() == shown)
            {
                return Err(err(
                    d,
                    format!(
                        "{what}.docker: {shown} is already host {other}; one Engine is one host"
                    ),
                ));
            }
            let mut labels = BTreeMap::new();
            if let Some(l) = v.get("labels") {
                for (lk, lv) in entries(l, &format!("{what}.labels"))? {
                    let key = key_of(lk).to_string();
                    let value = string(lv, &format!("{what}.labels.{key}"))?;
                    labels.insert(key, value);
                }
            }
            let variables = super::app_env::variables(v, &what, base)?;
            let nodes = match v.get("nodes") {
                None => Vec::new(),
                Some(n) if !swarm => {
                    return Err(err(
                        n,
                        format!("{what}.nodes: only a host with mode: swarm has nodes"),
                    ))
                }
                Some(n) => {
                    let names = string_list(n, &format!("{what}.nodes"))?;
                    node_refs.push((what.clone(), n.pos.clone(), names.clone()));
                    names
                }
            };
            hosts.insert(
                name,
                HostConfig {
                    endpoint,
                    labels,
                    variables,
                    swarm,
                    nodes,
                },
            );
        }
    }
    // A node is another host, an Engine (not itself a Swarm host).
    for (what, pos, names) in node_refs {
        for node in names {
            let problem = match hosts.get(&node) {
                None => Some(format!("{node} is not a host here; declare each node's Engine as a host (its docker: and tls: or ssh:) and name it")),
                Some(h) if h.swarm => Some(format!("{node} has mode: swarm; a node is named by its own Engine, a host with mode: engine")),
                Some(_) => None,
            };
            if let Some(p) = problem {
                return Err(LoadError {
                    pos: Some(pos.clone()),
                    message: format!("{what}.nodes: {p}"),
                });
            }
        }
    }
    if hosts.is_empty() {
        hosts.insert(
            "local".into(),
            HostConfig {
                endpoint: Endpoint::Unix("/var/run/docker.sock".into()),
                labels: BTreeMap::new(),
                variables: BTreeMap::new(),
                swarm: false,
                nodes: Vec::new(),
            },
        );
    }
    Ok(hosts)
}

/// `webhooks:`: each provider's secret (GitLab's token).
pub(super) fn webhooks(doc: &Node, base: &Path) -> Result<WebhookConfig, LoadError> {
    Ok(match doc.get("webhooks") {
        None => WebhookConfig::default(),
        Some(n) => {
            check_keys(
                n,
                "webhooks",
                &["github", "gitlab", "gitea", "bitbucket", "generic"],
            )?;
            let hook = |name: &str, key: &str| -> Result<Option<Secret>, LoadError> {
                let Some(h) = n.get(name) else {
                    return Ok(None);
                };
                let what = format!("webhooks.{name}");
                check_keys(h, &what, &[key])?;
                match h.get(key) {
                    Some(s) => Ok(Some(secret(s, &format!("{what}.{key}"), base)?)),
                    None => Err(err(h, format!("{what}: `{key}` is required"))),
                }
            };
            WebhookConfig {
                github: hook("github", "secret")?,
                gitlab: hook("gitlab", "token")?,
                gitea: hook("gitea", "secret")?,
                bitbucket: hook("bitbucket", "secret")?,
                generic: hook("generic", "secret")?,
            }
        }
    })
}

/// `notifications:`: outgoing webhook targets.
pub(super) fn notifications(doc: &Node) -> Result<Vec<Notification>, LoadError> {
    let mut notifications = Vec::new();
    if let Some(n) = doc.get("notifications") {
        let Value::Seq(items) = &n.value else {
            return Err(err(n, "notifications must be a list"));
        };
        for (i, item) in items.iter().enumerate() {
            let what = format!("notifications[{i}]");
            check_keys(item, &what, &["url", "format", "events"])?;
            let url = string(
                item.get("url")
                    .ok_or_else(|| err(item, format!("{what}: `url` is required")))?,
                &what,
            )?;
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(err(item, format!("{what}.url must be an http(s) URL")));
            }
            let format = match item
                .get("format")
                .map(|f| string(f, &what))
                .transpose()?
                .as_deref()
            {
                None | Some("generic") => NotificationFormat::Generic,
                Some("slack") => NotificationFormat::Slack,
                Some(other) => {
                    return Err(err(
                        item.get("format").unwrap_or(item),
                        format!("{what}.format: {other:?} (use generic or slack)"),
                    ))
                }
            };
            let events = item
                .get("events")
                .map(|e| string_list(e, &format!("{what}.events")))
                .transpose()?
                .unwrap_or_default();
            if let Some(bad) = events
                .iter()
                .find(|e| !NOTIFICATION_EVENTS.contains(&e.as_str()))
            {
                return Err(err(
                    item.get("events").unwrap_or(item),
                    format!(
                        "{what}.events: unknown event {bad:?} (use {})",
                        NOTIFICATION_EVENTS.join(", ")
                    ),
                ));
            }
            notifications.push(Notification {
                url,
                format,
                events,
            });
        }
    }
    Ok(notifications)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse_err, parse_ok};
    use super::super::{HttpConfig, STUCK_AFTER};
    use std::time::Duration;

    #[test]
    fn hosts_take_docker_endpoints_checked_with_their_position() {
        let c = parse_ok("hosts:\n  a: { docker: 'ssh://deploy@10.0.0.3:2222' }\n  b: { docker: 'tcp://127.0.0.1:2375' }\n");
        assert_eq!(
            c.hosts["a"].endpoint.to_string(),
            "ssh://deploy@10.0.0.3:2222"
        );
        assert_eq!(c.hosts["b"].endpoint.to_string(), "tcp://127.0.0.1:2375");
        assert_eq!(
            parse_ok("").hosts["local"].endpoint.to_string(),
            "unix:///var/run/docker.sock"
        );
        for (text, message) in [
            ("hosts: { a: { docker: 'tcp://10.0.0.2:2376' } }\n", "mooring.yaml:1:23: hosts.a.docker: tcp://10.0.0.2:2376: plain TCP to the Docker API gives root"),
            ("hosts: { a: { docker: 'tcp://h:2376', tls: { ca: x } } }\n", "mooring.yaml:1:44: hosts.a.tls: `cert` is required"),
            ("hosts: { a: { docker: 'ssh://h', tls: { ca: x } } }\n", "mooring.yaml:1:39: hosts.a.tls: TLS settings are for a tcp:// endpoint"),
            ("hosts: { a: { docker: 'tcp://h:2376', ssh: { identity: k } } }\n", "mooring.yaml:1:44: hosts.a.ssh: SSH settings are for an ssh:// endpoint"),
            ("hosts: { a: { docker: 'ssh://h', ssh: { identity: file:/nonexistent/key } } }\n", "mooring.yaml:1:51: hosts.a.ssh.identity: cannot read /nonexistent/key"),
            ("hosts: { a: { docker: 'ssh://h', ssh: { known_hosts: 'file:/k/%h' } } }\n", "mooring.yaml:1:54: hosts.a.ssh.known_hosts: /k/%h holds white space, quotes, '%' or '$'"),
            ("hosts: { a: { docker: 'npipe://x' } }\n", "mooring.yaml:1:23: hosts.a.docker: Docker endpoint \"npipe://x\": use unix:///path"),
        ] {
            let e = parse_err(text);
            assert!(e.starts_with(message), "{e}\n{message}");
        }
    }

    #[test]
    fn daemon_bounds_have_defaults_and_are_validated() {
        assert_eq!(parse_ok("").server.http, HttpConfig::default());
        let c = parse_ok("server: { http: { header_timeout: 2s, max_connections: 8 } }\n");
        assert_eq!(c.server.http.header_timeout, Duration::from_secs(2));
        assert_eq!(c.server.http.body_timeout, Duration::from_secs(30));
        assert_eq!(c.server.http.max_connections, 8);
        for (text, message) in [
            ("server: { http: { header_timeout: 0s } }\n", "mooring.yaml:1:35: server.http.header_timeout must be more than 0s"),
            ("server: { http: { body_timeout: 2h } }\n", "mooring.yaml:1:33: server.http.body_timeout must be at most 1h (e.g. 10s)"),
            ("server: { http: { max_connections: 0 } }\n", "mooring.yaml:1:36: server.http.max_connections must be between 1 and 65536 (e.g. 512)"),
        ] {
            assert_eq!(parse_err(text), message);
        }
        assert!(parse_err("server: { http: { idle: 1s } }\n").contains("idle"));
        assert_eq!(parse_ok("").server.stuck_after, STUCK_AFTER);
        let app = |source: &str| format!("apps:\n  - name: a\n    source: {source}\n");
        assert_eq!(
            parse_ok(&app("{ git: https://h/r.git, timeout: 20m }")).apps[0]
                .source
                .timeout,
            Some(Duration::from_secs(1200))
        );
        assert_eq!(
            parse_ok(&app("{ git: https://h/r.git }")).apps[0]
                .source
                .timeout,
            None
        );
        assert!(
            parse_err(&app("{ dir: /srv, timeout: 1m }")).contains("a plain folder runs no tool")
        );
        assert_eq!(
            parse_err(&app("{ git: https://h/r.git, timeout: 0s }")),
            "mooring.yaml:3:46: apps.a.source.timeout must be more than 0s"
        );
        assert_eq!(
            parse_ok("server: { stuck_after: 5m }\n").server.stuck_after,
            Duration::from_secs(300)
        );
        assert_eq!(
            parse_err("server: { stuck_after: 0s }\n"),
            "mooring.yaml:1:24: server.stuck_after must be more than 0s"
        );
    }
}
