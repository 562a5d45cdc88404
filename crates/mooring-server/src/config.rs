//! `mooring.yaml`: the daemon's configuration, parsed strictly — unknown keys, bad
//! durations, duplicate app names and unknown hosts are errors with `file:line:col`, and
//! the daemon refuses to start. Secrets may be inline, `file:PATH` or `env:NAME`
//! (`ssh_key: file:PATH` names the key file, used in place). Files a source needs
//! (SSH key, known_hosts, verification keys) are checked at load.
//! Start-up and reload share this one path.

use mooring_compose::decode::{
    boolean, check_keys, duration, entries, err, key_of, string, string_list, unsigned,
};
use mooring_compose::yaml::{self, Node, Value};
use mooring_compose::{LoadError, Pos};
use mooring_core::policy::{Exception, Policy, Profile, EXCEPTION_FORMS};
use mooring_vcs::{KnownHosts, SourceError, SourceSpec, SshKey};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod app_env;
pub use app_env::AppEnv;

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub hosts: BTreeMap<String, HostConfig>,
    pub webhooks: WebhookConfig,
    pub notifications: Vec<Notification>,
    pub apps: Vec<AppConfig>,
    /// The configuration's folder (absolute): Mooring's own, never a bind source.
    pub folder: PathBuf,
}

/// `server:`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Absolute (relative paths are resolved against the config file's folder).
    pub data_dir: PathBuf,
    /// Operations running at once, across apps.
    pub workers: usize,
    pub retention: Retention,
    pub http: HttpConfig,
    /// `/readyz` fails while an operation or fetch has run longer than this.
    pub stuck_after: Duration,
}

/// Default of `server.stuck_after`.
pub const STUCK_AFTER: Duration = Duration::from_secs(30 * 60);

/// `server.http`: what one HTTP connection may hold, so that slow or idle clients
/// cannot use up the daemon's connections or file descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    /// A request's headers must arrive within this; a keep-alive connection waiting for
    /// its next request is closed after it too.
    pub header_timeout: Duration,
    /// A request's body must arrive within this.
    pub body_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 512,
        }
    }
}

/// How much history the store keeps.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub operations_per_app: usize,
    pub events: usize,
}

/// A Docker host.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// `unix:///var/run/docker.sock`.
    pub docker: String,
}

/// A secret value, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret's bytes.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `webhooks:` — the secret (or token, for GitLab) of each provider; a provider without
/// one refuses every delivery.
#[derive(Debug, Clone, Default)]
pub struct WebhookConfig {
    pub github: Option<Secret>,
    pub gitlab: Option<Secret>,
    pub gitea: Option<Secret>,
    pub bitbucket: Option<Secret>,
    pub generic: Option<Secret>,
}

/// An outgoing notification target.
#[derive(Debug, Clone)]
pub struct Notification {
    pub url: String,
    pub format: NotificationFormat,
    /// Which events; empty = all.
    pub events: Vec<String>,
}

/// Payload shape of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationFormat {
    Generic,
    Slack,
}

/// The notification events.
pub const NOTIFICATION_EVENTS: [&str; 4] = [
    "sync_failed",
    "sync_recovered",
    "drift_detected",
    "health_degraded",
];

/// Where an app's desired state lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Git,
    Svn,
    Hg,
    Dir,
}

/// `apps[].source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConfig {
    pub kind: SourceKind,
    /// URL or folder (absolute).
    pub location: String,
    pub reference: Option<String>,
    pub path: String,
    /// `username` / `password` (secrets: inline, `file:` or `env:`).
    pub username: Option<Secret>,
    pub password: Option<Secret>,
    /// `ssh_key`: a private key file (`file:PATH`, used in place) or the key itself
    /// (`env:NAME`, inline); checked at load (readable, a private key, mode 0600).
    pub ssh_key: Option<SshKey>,
    /// `known_hosts`: a file of trusted host keys, or `accept-new`.
    pub known_hosts: Option<KnownHosts>,
    /// Git commit verification.
    pub verify: Option<VerifyConfig>,
    /// `allow_refs`: branch and tag names (a trailing `*` matches any rest) that may be
    /// deployed besides the configured ref; a commit id may be deployed when it is
    /// reachable from the configured ref. `["*"]` allows every revision.
    pub allow_refs: Vec<String>,
    /// `timeout`: how long one tool process for this source may run (a poll at most
    /// 60 s too); the default bounds are 60 s for a poll and 10 min for the rest.
    pub timeout: Option<Duration>,
}

/// `source.verify`: which signatures count and the trusted keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyConfig {
    /// `head`, `tag` or `any`.
    pub mode: String,
    /// OpenPGP armored public keys or SSH allowed-signers lines (read from files).
    pub keys: Vec<String>,
}

impl SourceConfig {
    /// The key shared fetches are grouped by: one fetch per repository and ref.
    pub fn fetch_key(&self) -> (String, Option<String>) {
        (self.location.clone(), self.reference.clone())
    }

    /// Whether `other` authenticates the same way (the shared fetch uses one).
    pub fn same_credentials(&self, other: &SourceConfig) -> bool {
        self.username == other.username
            && self.password == other.password
            && self.ssh_key == other.ssh_key
            && self.known_hosts == other.known_hosts
    }
}

/// `apps[].sync`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPolicy {
    pub auto: bool,
    pub self_heal: bool,
    pub prune: bool,
    pub interval: Duration,
    pub retry_limit: u32,
    pub retry_backoff: Duration,
    pub retry_max_backoff: Duration,
}

/// One app: a source path deployed to a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppConfig {
    pub name: String,
    pub source: SourceConfig,
    pub host: String,
    pub files: Vec<String>,
    pub sync: SyncPolicy,
    /// `data.volumes`: `protect` (default) or `backup-then-delete`.
    pub volumes: String,
    /// `data.backup`: `on-change` backs volumes up before every deploy that changes the
    /// containers writing to them; `never` (default) does not.
    pub backup_on_change: bool,
    /// `data.retention: { keep: N, older_than: 30d }`, applied after each new backup.
    pub retention: mooring_core::Retention,
    /// `policy`: what the repository may ask of the host (profile and exceptions).
    pub policy: Policy,
    /// `variables`, `pass_env`, `mask_env`: what interpolation sees, what is masked.
    pub env: AppEnv,
}

/// Reads and validates the configuration file.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LoadError::new(format!("cannot read {}: {e}", path.display())))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    };
    parse(&text, &path.display().to_string(), &base)
}

/// Parses configuration text; `base` resolves relative paths.
pub fn parse(text: &str, file: &str, base: &Path) -> Result<Config, LoadError> {
    let file: Arc<str> = Arc::from(file);
    let doc = yaml::parse(text, &file)?;
    let doc = match doc.value {
        Value::Null => Node::new(Value::Map(vec![]), doc.pos),
        Value::Map(_) => doc,
        _ => return Err(err(&doc, "the configuration must be a mapping")),
    };
    check_keys(
        &doc,
        "top level",
        &["server", "hosts", "webhooks", "notifications", "apps"],
    )?;
    let base = base.canonicalize().unwrap_or_else(|_| base.to_path_buf());

    let server = match doc.get("server") {
        Some(n) => server(n, &base)?,
        None => ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7420)),
            data_dir: base.join(".mooring"),
            workers: 4,
            retention: Retention {
                operations_per_app: 200,
                events: 10_000,
            },
            http: HttpConfig::default(),
            stuck_after: STUCK_AFTER,
        },
    };

    let mut hosts = BTreeMap::new();
    if let Some(n) = doc.get("hosts") {
        for (k, v) in entries(n, "hosts")? {
            let name = key_of(k).to_string();
            let what = format!("hosts.{name}");
            check_keys(v, &what, &["docker"])?;
            let docker = match v.get("docker") {
                Some(d) => string(d, &format!("{what}.docker"))?,
                None => {
                    return Err(err(
                        v,
                        format!("{what}: `docker` is required (e.g. unix:///var/run/docker.sock)"),
                    ))
                }
            };
            if !docker.starts_with("unix://") {
                return Err(err(
                    v.get("docker").unwrap_or(v),
                    format!("{what}.docker: only unix:// endpoints are supported yet"),
                ));
            }
            hosts.insert(name, HostConfig { docker });
        }
    }
    if hosts.is_empty() {
        hosts.insert(
            "local".into(),
            HostConfig {
                docker: "unix:///var/run/docker.sock".into(),
            },
        );
    }

    let webhooks = match doc.get("webhooks") {
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
                    Some(s) => Ok(Some(secret(s, &format!("{what}.{key}"), &base)?)),
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
    };

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

    let mut apps: Vec<AppConfig> = Vec::new();
    let own_secrets = app_env::secret_names(&doc);
    let mut seen: BTreeMap<String, Pos> = BTreeMap::new();
    if let Some(n) = doc.get("apps") {
        let Value::Seq(items) = &n.value else {
            return Err(err(n, "apps must be a list"));
        };
        for (i, item) in items.iter().enumerate() {
            let a = app(item, i, &hosts, &base)?;
            app_env::refuse_own_secrets(item, &format!("apps.{}", a.name), &own_secrets)?;
            if let Some(prev) = seen.get(&a.name) {
                return Err(err(
                    item,
                    format!(
                        "app {} is defined twice (first at line {})",
                        a.name, prev.line
                    ),
                ));
            }
            // One fetch serves every app of a repository and ref, with one set of
            // credentials.
            if let Some(other) = apps.iter().find(|o| {
                o.source.fetch_key() == a.source.fetch_key()
                    && !o.source.same_credentials(&a.source)
            }) {
                return Err(err(
                    item.get("source").unwrap_or(item),
                    format!(
                        "apps.{}.source: the same repository and ref as app {} but other \
                         credentials (username, password, ssh_key, known_hosts); one fetch \
                         serves both apps, so give them the same credentials",
                        a.name, other.name
                    ),
                ));
            }
            seen.insert(a.name.clone(), item.pos.clone());
            apps.push(a);
        }
    }
    Ok(Config {
        server,
        hosts,
        webhooks,
        notifications,
        apps,
        folder: base,
    })
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
        None => SocketAddr::from(([127, 0, 0, 1], 7420)),
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
        .unwrap_or(4);
    if workers == 0 {
        return Err(err(
            n.get("workers").unwrap_or(n),
            "server.workers must be at least 1",
        ));
    }
    let mut retention = Retention {
        operations_per_app: 200,
        events: 10_000,
    };
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

/// `inline`, `file:PATH` (relative to the config's folder) or `env:NAME`.
fn secret(n: &Node, what: &str, base: &Path) -> Result<Secret, LoadError> {
    let raw = string(n, what)?;
    let value = if let Some(path) = raw.strip_prefix("file:") {
        let p = base.join(path);
        std::fs::read_to_string(&p)
            .map_err(|e| {
                err(
                    n,
                    format!("{what}: cannot read secret file {}: {e}", p.display()),
                )
            })?
            .trim_end_matches(['\n', '\r'])
            .to_string()
    } else if let Some(name) = raw.strip_prefix("env:") {
        std::env::var(name)
            .map_err(|_| err(n, format!("{what}: environment variable {name} is not set")))?
    } else {
        raw
    };
    if value.is_empty() {
        return Err(err(n, format!("{what} is empty")));
    }
    Ok(Secret(value))
}

/// `ssh_key`: `file:PATH` (relative to the config's folder; the file is used in
/// place), `env:NAME` or the key inline (a block scalar); checked now.
fn ssh_key(n: &Node, what: &str, base: &Path) -> Result<SshKey, LoadError> {
    let raw = string(n, what)?;
    let key = if let Some(path) = raw.strip_prefix("file:") {
        SshKey::File(base.join(path))
    } else if let Some(name) = raw.strip_prefix("env:") {
        SshKey::Value(std::env::var(name).map_err(|_| {
            err(
                n,
                format!("{what}: environment variable {name} is not set (it should hold the private key)"),
            )
        })?)
    } else if raw.contains("PRIVATE KEY-----") {
        SshKey::Value(raw)
    } else {
        return Err(err(
            n,
            format!(
                "{what}: not a private key; use `file:PATH` for a key file, `env:NAME` for an \
                 environment variable holding the key, or the key itself as a block scalar (|)"
            ),
        ));
    };
    key.check()
        .map_err(|e| err(n, format!("{what}: {}", reason_of(e))))?;
    Ok(key)
}

/// `known_hosts`: `accept-new`, or a file (relative to the config's folder) that
/// must be readable now.
fn known_hosts(n: &Node, what: &str, base: &Path) -> Result<KnownHosts, LoadError> {
    let raw = string(n, what)?;
    if raw.is_empty() {
        return Err(err(
            n,
            format!("{what} is empty (give a known_hosts file or accept-new)"),
        ));
    }
    let known = KnownHosts::parse(&raw, base);
    known
        .check()
        .map_err(|e| err(n, format!("{what}: {}", reason_of(e))))?;
    Ok(known)
}

/// The reason of a credentials error, without its "invalid credentials" prefix.
fn reason_of(e: SourceError) -> String {
    match e {
        SourceError::InvalidCredentials { reason } => reason,
        other => other.to_string(),
    }
}

fn app(
    n: &Node,
    index: usize,
    hosts: &BTreeMap<String, HostConfig>,
    base: &Path,
) -> Result<AppConfig, LoadError> {
    let what = format!("apps[{index}]");
    check_keys(
        n,
        &what,
        &[
            "name",
            "source",
            "host",
            "files",
            "sync",
            "data",
            "policy",
            "variables",
            "pass_env",
            "mask_env",
        ],
    )?;
    let name_node = n
        .get("name")
        .ok_or_else(|| err(n, format!("{what}: `name` is required")))?;
    let name = string(name_node, &format!("{what}.name"))?;
    if mooring_compose::normalize_project_name(&name) != name || name.is_empty() {
        return Err(err(name_node, format!("{what}.name: {name:?} is not a valid app name (lower-case letters, digits, '-' and '_', starting with a letter or digit)")));
    }
    let what = format!("apps.{name}");
    let src = n
        .get("source")
        .ok_or_else(|| err(n, format!("{what}: `source` is required")))?;
    let sw = format!("{what}.source");
    check_keys(
        src,
        &sw,
        &[
            "git",
            "svn",
            "hg",
            "dir",
            "ref",
            "path",
            "username",
            "password",
            "ssh_key",
            "known_hosts",
            "verify",
            "allow_refs",
            "timeout",
        ],
    )?;
    let kinds = [
        ("git", SourceKind::Git),
        ("svn", SourceKind::Svn),
        ("hg", SourceKind::Hg),
        ("dir", SourceKind::Dir),
    ];
    let given: Vec<_> = kinds.iter().filter(|(k, _)| src.get(k).is_some()).collect();
    let [(key, kind)] = given.as_slice() else {
        return Err(err(
            src,
            format!("{sw}: give exactly one of `git`, `svn`, `hg` or `dir`"),
        ));
    };
    let kind = *kind;
    let raw = string(src.get(key).unwrap_or(src), &format!("{sw}.{key}"))?;
    let location = if kind == SourceKind::Dir {
        base.join(raw).to_string_lossy().to_string()
    } else {
        raw
    };
    let reference = src
        .get("ref")
        .map(|r| string(r, &format!("{sw}.ref")))
        .transpose()?;
    if kind == SourceKind::Dir && reference.is_some() {
        return Err(err(src, format!("{sw}: a `dir` source has no `ref`")));
    }
    let path = src
        .get("path")
        .map(|p| string(p, &format!("{sw}.path")))
        .transpose()?
        .unwrap_or_default();
    if path.split('/').any(|c| c == "..") || path.starts_with('/') {
        return Err(err(
            src.get("path").unwrap_or(src),
            format!("{sw}.path must be a folder inside the repository"),
        ));
    }
    let username = src
        .get("username")
        .map(|u| secret(u, &format!("{sw}.username"), base))
        .transpose()?;
    let password = src
        .get("password")
        .map(|p| secret(p, &format!("{sw}.password"), base))
        .transpose()?;
    let ssh_key = src
        .get("ssh_key")
        .map(|k| ssh_key(k, &format!("{sw}.ssh_key"), base))
        .transpose()?;
    let known_hosts = src
        .get("known_hosts")
        .map(|k| known_hosts(k, &format!("{sw}.known_hosts"), base))
        .transpose()?;
    for (key, given) in [
        ("ssh_key", ssh_key.is_some()),
        ("known_hosts", known_hosts.is_some()),
    ] {
        let uses_ssh = match kind {
            SourceKind::Git => SourceSpec::Git {
                url: location.clone(),
                reference: None,
            },
            SourceKind::Svn => SourceSpec::Svn {
                url: location.clone(),
                reference: None,
            },
            SourceKind::Hg => SourceSpec::Hg {
                url: location.clone(),
                reference: None,
            },
            SourceKind::Dir => SourceSpec::Dir {
                path: PathBuf::from(&location),
            },
        }
        .uses_ssh();
        if given && !uses_ssh {
            return Err(err(
                src.get(key).unwrap_or(src),
                format!(
                    "{sw}.{key}: this source is not reached over SSH; `{key}` needs an SSH URL \
                     (git: ssh://… or user@host:path, svn: svn+ssh://…, hg: ssh://…)"
                ),
            ));
        }
    }
    let verify = match src.get("verify") {
        None => None,
        Some(v) => Some(verify_config(v, &format!("{sw}.verify"), kind, base)?),
    };
    let host = match n.get("host") {
        Some(h) => {
            let host = string(h, &format!("{what}.host"))?;
            if !hosts.contains_key(&host) {
                return Err(err(
                    h,
                    format!(
                        "{what}.host: unknown host {host:?} (declared: {})",
                        hosts.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            host
        }
        None if hosts.len() == 1 => hosts.keys().next().cloned().unwrap_or_default(),
        None => {
            return Err(err(
                n,
                format!("{what}: `host` is required when several hosts are declared"),
            ))
        }
    };
    let files = n
        .get("files")
        .map(|f| string_list(f, &format!("{what}.files")))
        .transpose()?
        .unwrap_or_default();
    let mut sync = SyncPolicy {
        auto: true,
        self_heal: true,
        prune: false,
        interval: Duration::from_secs(180),
        retry_limit: 5,
        retry_backoff: Duration::from_secs(5),
        retry_max_backoff: Duration::from_secs(300),
    };
    if let Some(s) = n.get("sync") {
        let sw = format!("{what}.sync");
        check_keys(s, &sw, &["auto", "self_heal", "prune", "interval", "retry"])?;
        let flag = |k: &str, default: bool| {
            s.get(k)
                .map(|v| boolean(v, &format!("{sw}.{k}")))
                .transpose()
                .map(|v| v.unwrap_or(default))
        };
        sync.auto = flag("auto", sync.auto)?;
        sync.self_heal = flag("self_heal", sync.self_heal)?;
        sync.prune = flag("prune", sync.prune)?;
        if let Some(i) = s.get("interval") {
            sync.interval = positive(i, &format!("{sw}.interval"))?;
        }
        if let Some(r) = s.get("retry") {
            let rw = format!("{sw}.retry");
            check_keys(r, &rw, &["limit", "backoff", "max_backoff"])?;
            if let Some(l) = r.get("limit") {
                sync.retry_limit =
                    u32::try_from(unsigned(l, &format!("{rw}.limit"))?).unwrap_or(u32::MAX);
            }
            if let Some(b) = r.get("backoff") {
                sync.retry_backoff = positive(b, &format!("{rw}.backoff"))?;
            }
            if let Some(b) = r.get("max_backoff") {
                sync.retry_max_backoff = positive(b, &format!("{rw}.max_backoff"))?;
            }
        }
    }
    let mut volumes = "protect".to_string();
    let mut backup_on_change = false;
    let mut retention = mooring_core::Retention::default();
    if let Some(d) = n.get("data") {
        check_keys(
            d,
            &format!("{what}.data"),
            &["volumes", "backup", "retention"],
        )?;
        if let Some(b) = d.get("backup") {
            backup_on_change =
                mooring_compose::decode::backup_schedule(b, &format!("{what}.data.backup"))?;
        }
        if let Some(r) = d.get("retention") {
            retention = mooring_compose::decode::retention(r, &format!("{what}.data.retention"))?;
        }
        if let Some(v) = d.get("volumes") {
            volumes = string(v, &format!("{what}.data.volumes"))?;
            if volumes != "protect" && volumes != "backup-then-delete" {
                return Err(err(
                    v,
                    format!("{what}.data.volumes: {volumes:?} (use protect or backup-then-delete)"),
                ));
            }
        }
    }
    let allow_refs = match src.get("allow_refs") {
        Some(r) => allow_refs(r, &format!("{sw}.allow_refs"), kind)?,
        None => vec![],
    };
    let policy = match n.get("policy") {
        Some(p) => policy(p, &format!("{what}.policy"))?,
        None => Policy::default(),
    };
    let timeout = match src.get("timeout") {
        None => None,
        Some(_) if kind == SourceKind::Dir => {
            return Err(err(
                src,
                format!("{sw}.timeout: a plain folder runs no tool to bound; remove it"),
            ))
        }
        Some(t) => Some(positive(t, &format!("{sw}.timeout"))?),
    };
    let env = app_env::parse(n, &what, base)?;
    let source = SourceConfig {
        kind,
        location,
        reference,
        path,
        username,
        password,
        ssh_key,
        known_hosts,
        verify,
        allow_refs,
        timeout,
    };
    Ok(AppConfig {
        name,
        source,
        host,
        files,
        sync,
        volumes,
        backup_on_change,
        retention,
        policy,
        env,
    })
}

/// `policy: baseline` or `policy: { profile: restricted, allow: [docker_socket, …] }`.
fn policy(n: &Node, what: &str) -> Result<Policy, LoadError> {
    let profile_of = |p: &Node, what: &str| -> Result<Profile, LoadError> {
        let text = string(p, what)?;
        Profile::parse(&text).ok_or_else(|| {
            err(
                p,
                format!(
                    "{what}: unknown profile {text:?} (use baseline, restricted or privileged)"
                ),
            )
        })
    };
    if let Value::Scalar { .. } = n.value {
        return Ok(Policy {
            profile: profile_of(n, what)?,
            allow: vec![],
        });
    }
    check_keys(n, what, &["profile", "allow"])?;
    let profile = match n.get("profile") {
        Some(p) => profile_of(p, &format!("{what}.profile"))?,
        None => Profile::default(),
    };
    let mut allow = Vec::new();
    if let Some(a) = n.get("allow") {
        let aw = format!("{what}.allow");
        let Value::Seq(items) = &a.value else {
            return Err(err(
                a,
                format!("{aw} must be a list of exceptions ({EXCEPTION_FORMS})"),
            ));
        };
        for item in items {
            let text = string(item, &aw)?;
            let e = Exception::parse(&text).map_err(|e| err(item, format!("{aw}: {e}")))?;
            if !allow.contains(&e) {
                allow.push(e);
            }
        }
    }
    Ok(Policy { profile, allow })
}

/// `source.allow_refs`: branch and tag names or `prefix*` patterns.
fn allow_refs(n: &Node, what: &str, kind: SourceKind) -> Result<Vec<String>, LoadError> {
    if matches!(kind, SourceKind::Dir) {
        return Err(err(n, format!("{what}: a plain folder has no refs")));
    }
    let refs = string_list(n, what)?;
    for r in &refs {
        let body = r.strip_suffix('*').unwrap_or(r);
        if (body.is_empty() && r != "*")
            || body.contains('*')
            || body.starts_with('-')
            || body.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(err(
                n,
                format!("{what}: {r:?} is not a ref name or `prefix*` pattern"),
            ));
        }
    }
    Ok(refs)
}

fn verify_config(
    v: &Node,
    vw: &str,
    kind: SourceKind,
    base: &Path,
) -> Result<VerifyConfig, LoadError> {
    if kind != SourceKind::Git {
        return Err(err(
            v,
            format!("{vw}: commit verification is only available for Git sources"),
        ));
    }
    check_keys(v, vw, &["mode", "keys"])?;
    let mode = v
        .get("mode")
        .map(|m| string(m, &format!("{vw}.mode")))
        .transpose()?
        .unwrap_or_else(|| "head".into());
    if !["head", "tag", "any"].contains(&mode.as_str()) {
        return Err(err(
            v.get("mode").unwrap_or(v),
            format!("{vw}.mode: {mode:?} (use head, tag or any)"),
        ));
    }
    let keys_node = v
        .get("keys")
        .ok_or_else(|| err(v, format!("{vw}: `keys` is required (files with OpenPGP public keys or SSH allowed-signers lines)")))?;
    let mut keys = Vec::new();
    for file in string_list(keys_node, &format!("{vw}.keys"))? {
        let p = base.join(&file);
        let text = std::fs::read_to_string(&p).map_err(|e| {
            err(
                keys_node,
                format!("{vw}.keys: cannot read {}: {e}", p.display()),
            )
        })?;
        keys.push(text);
    }
    if keys.is_empty() {
        return Err(err(
            keys_node,
            format!("{vw}.keys: at least one key is needed"),
        ));
    }
    Ok(VerifyConfig { mode, keys })
}

fn positive(n: &Node, what: &str) -> Result<Duration, LoadError> {
    let d = duration(n, what)?;
    if d.0 == 0 {
        return Err(err(n, format!("{what} must be more than 0s")));
    }
    Ok(Duration::from_nanos(d.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Config {
        parse(text, "mooring.yaml", Path::new("/tmp")).unwrap()
    }

    fn parse_err(text: &str) -> String {
        parse(text, "mooring.yaml", Path::new("/tmp"))
            .unwrap_err()
            .to_string()
    }

    const FULL: &str = "server: { listen: 127.0.0.1:7999, data_dir: ./state }
hosts:
  local: { docker: unix:///var/run/docker.sock }
webhooks:
  github: { secret: s3cret }
apps:
  - name: blog
    source: { git: https://git.example.com/ops/infra.git, ref: main, path: apps/blog }
    host: local
    sync: { auto: true, self_heal: true, prune: true, interval: 1m, retry: { limit: 3, backoff: 2s } }
    data: { volumes: protect }
  - name: site
    source: { dir: ./site }
  - name: legacy
    source: { svn: svn://127.0.0.1/repo, ref: trunk@12, path: apps/x, username: ops, password: env:HOME }
  - name: merc
    source: { hg: https://hg.example.com/infra, ref: stable }
";

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

    #[test]
    fn full_example() {
        let c = parse_ok(FULL);
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:7999");
        assert!(c.server.data_dir.ends_with("state"));
        assert_eq!(c.apps.len(), 4);
        assert_eq!(c.apps[2].source.kind, SourceKind::Svn);
        assert_eq!(c.apps[2].source.reference.as_deref(), Some("trunk@12"));
        assert_eq!(c.apps[2].source.username.as_ref().unwrap().expose(), "ops");
        assert_eq!(c.apps[3].source.kind, SourceKind::Hg);
        let e = parse_err("apps:\n  - name: a\n    source: { svn: x, verify: { keys: [k] } }\n");
        assert!(e.contains("only available for Git"), "{e}");
        assert_eq!(c.apps[0].sync.interval, Duration::from_secs(60));
        assert_eq!(c.apps[0].sync.retry_limit, 3);
        assert_eq!(c.apps[1].host, "local");
        assert_eq!(c.apps[1].source.kind, SourceKind::Dir);
        assert_eq!(c.webhooks.github.as_ref().unwrap().expose(), "s3cret");
        assert_eq!(format!("{:?}", c.webhooks.github), "Some(Secret(***))");
    }

    #[test]
    fn policies_and_allowed_refs() {
        let c = parse_ok(
            "apps:\n  - name: a\n    source: { git: https://h/r.git, allow_refs: [release/*, v1] }\n    policy: restricted\n  - name: b\n    source: { dir: x }\n    policy: { allow: [docker_socket, \"host_path:/srv/media\", \"cap:net_admin\"] }\n  - name: c\n    source: { dir: x }\n",
        );
        assert_eq!(c.apps[0].policy.profile, Profile::Restricted);
        assert_eq!(c.apps[0].source.allow_refs, ["release/*", "v1"]);
        assert_eq!(c.apps[1].policy.profile, Profile::Baseline);
        assert_eq!(
            c.apps[1].policy.allow,
            [
                Exception::DockerSocket,
                Exception::HostPath("/srv/media".into()),
                Exception::Cap("NET_ADMIN".into())
            ]
        );
        assert_eq!(c.apps[2].policy, Policy::default());
        for (text, expected) in [
            ("policy: root", "mooring.yaml:4:13: apps.a.policy: unknown profile \"root\" (use baseline, restricted or privileged)"),
            ("policy: { profile: x }", "mooring.yaml:4:24: apps.a.policy.profile: unknown profile \"x\""),
            ("policy: { allow: [sudo] }", "mooring.yaml:4:23: apps.a.policy.allow: policy exception \"sudo\": unknown; use one of docker_socket"),
            ("policy: { allow: [\"host_path:srv\"] }", "the host path must be absolute"),
            ("policy: { allow: docker_socket }", "apps.a.policy.allow must be a list"),
            ("policy: { deny: [x] }", "key `deny` is not supported"),
        ] {
            let e = parse_err(&format!("apps:\n  - name: a\n    source: {{ dir: x }}\n    {text}\n"));
            assert!(e.contains(expected), "{text}: {e}");
        }
        let e = parse_err("apps:\n  - name: a\n    source: { dir: x, allow_refs: [main] }\n");
        assert!(e.contains("a plain folder has no refs"), "{e}");
        let e = parse_err(
            "apps:\n  - name: a\n    source: { git: https://h/r.git, allow_refs: [\"a*b\"] }\n",
        );
        assert!(e.contains("not a ref name or `prefix*` pattern"), "{e}");
    }

    #[test]
    fn strict_errors_have_positions() {
        assert_eq!(
            parse_err("apps:\n  - name: a\n    source: { dir: x }\n    colour: blue\n"),
            "mooring.yaml:4:5: apps[0]: key `colour` is not supported (supported: name, source, host, files, sync, data, policy, variables, pass_env, mask_env)"
        );
        let e =
            parse_err("apps:\n  - name: a\n    source: { dir: x }\n    sync: { interval: 5 }\n");
        assert!(
            e.starts_with("mooring.yaml:4:23: apps.a.sync.interval: invalid duration"),
            "{e}"
        );
        assert!(parse_err(
            "apps:\n  - name: a\n    source: { dir: x }\n  - name: a\n    source: { dir: y }\n"
        )
        .contains("app a is defined twice (first at line 2)"));
        assert!(
            parse_err("apps:\n  - name: a\n    source: { dir: x }\n    host: far\n")
                .contains("unknown host \"far\"")
        );
        assert!(parse_err("apps:\n  - name: A b\n    source: { dir: x }\n")
            .contains("not a valid app name"));
        assert!(parse_err("server: { listen: nowhere }\n")
            .starts_with("mooring.yaml:1:19: server.listen"));
        assert!(
            parse_err("webhooks: { github: { secret: env:MOORING_TEST_UNSET_VAR } }\n")
                .contains("MOORING_TEST_UNSET_VAR is not set")
        );
        assert!(
            parse_err("apps:\n  - name: a\n    source: { git: x, dir: y }\n")
                .contains("exactly one of")
        );
    }

    #[test]
    fn ssh_keys_are_checked_at_load() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("deploy_key");
        std::fs::write(
            &key,
            "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
        )
        .unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(
            dir.path().join("known_hosts"),
            "[h]:2222 ssh-ed25519 AAAA\n",
        )
        .unwrap();
        let app = |source: &str| format!("apps:\n  - name: a\n    source: {source}\n");
        let load = |source: &str| parse(&app(source), "m.yaml", dir.path());

        let c = load(
            "{ git: ssh://git@h:2222/r.git, ssh_key: file:deploy_key, known_hosts: known_hosts }",
        )
        .unwrap();
        let src = &c.apps[0].source;
        assert_eq!(
            src.ssh_key,
            Some(SshKey::File(dir.path().join("deploy_key")))
        );
        assert_eq!(
            src.known_hosts,
            Some(KnownHosts::File(dir.path().join("known_hosts")))
        );
        let c = load("{ svn: svn+ssh://h/r, ssh_key: file:deploy_key, known_hosts: accept-new }")
            .unwrap();
        assert_eq!(c.apps[0].source.known_hosts, Some(KnownHosts::AcceptNew));
        let inline = "\n      git: git@h:r.git\n      ssh_key: |\n        -----BEGIN OPENSSH PRIVATE KEY-----\n        AAAA\n        -----END OPENSSH PRIVATE KEY-----";
        let c = load(inline).unwrap();
        assert!(matches!(c.apps[0].source.ssh_key, Some(SshKey::Value(_))));
        assert_eq!(
            format!("{:?}", c.apps[0].source.ssh_key),
            "Some(Value(***))"
        );

        let e = load("{ hg: ssh://h//r, ssh_key: file:nope }")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("m.yaml:3:40: apps.a.source.ssh_key: cannot read the ssh key file")
                && e.contains("nope"),
            "{e}"
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load("{ git: ssh://h/r, ssh_key: file:deploy_key }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = load("{ git: https://h/r, ssh_key: file:deploy_key }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not reached over SSH"), "{e}");
        let e = load("{ git: ssh://h/r, ssh_key: ~/.ssh/id_ed25519 }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("use `file:PATH`"), "{e}");
        let e = load("{ git: ssh://h/r, ssh_key: env:MOORING_TEST_UNSET_KEY }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("MOORING_TEST_UNSET_KEY is not set"), "{e}");
        let two = "apps:\n  - name: a\n    source: { git: ssh://h/r, ssh_key: file:deploy_key }\n  - name: b\n    source: { git: ssh://h/r }\n";
        let e = parse(two, "m.yaml", dir.path()).unwrap_err().to_string();
        assert!(
            e.starts_with("m.yaml:5:13: apps.b.source: the same repository and ref as app a"),
            "{e}"
        );
        let e = load("{ git: ssh://h/r, known_hosts: missing_hosts }")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "m.yaml:3:44: apps.a.source.known_hosts: cannot read the known_hosts file"
            ),
            "{e}"
        );
    }

    #[test]
    fn data_backups_and_retention() {
        let c = parse_ok(
            "apps:\n  - name: a\n    source: { dir: x }\n    data: { volumes: backup-then-delete, backup: on-change, retention: { keep: 3, older_than: 30d } }\n  - name: b\n    source: { dir: y }\n",
        );
        assert!(c.apps[0].backup_on_change);
        assert_eq!(c.apps[0].retention.keep, Some(3));
        assert_eq!(c.apps[0].retention.older_than_secs, Some(30 * 86_400));
        assert!(!c.apps[1].backup_on_change);
        assert!(c.apps[1].retention.is_empty());
        let app = "apps:\n  - name: a\n    source: { dir: x }\n    data: ";
        assert_eq!(
            parse_err(&format!("{app}{{ backup: always }}\n")),
            "mooring.yaml:4:21: apps.a.data.backup: \"always\" (use on-change or never)"
        );
        assert_eq!(
            parse_err(&format!("{app}{{ retention: {{ keep: 0 }} }}\n")),
            "mooring.yaml:4:32: apps.a.data.retention.keep must be at least 1 (the newest backup is always kept)"
        );
        assert!(
            parse_err(&format!("{app}{{ retention: {{ older_than: 1y }} }}\n"))
                .starts_with("mooring.yaml:4:38: apps.a.data.retention.older_than: \"1y\"")
        );
        assert!(
            parse_err(&format!("{app}{{ retention: {{ count: 1 }} }}\n")).starts_with(
                "mooring.yaml:4:26: apps.a.data.retention: key `count` is not supported"
            )
        );
    }

    #[test]
    fn secrets_from_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hook.secret"), "from-file\n").unwrap();
        let c = parse(
            "webhooks: { generic: { secret: file:hook.secret } }\n",
            "m.yaml",
            dir.path(),
        )
        .unwrap();
        assert_eq!(c.webhooks.generic.unwrap().expose(), "from-file");
    }
}
