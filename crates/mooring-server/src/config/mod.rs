//! `mooring.yaml`: the daemon's configuration, parsed strictly — unknown keys, bad
//! durations, duplicate app names and unknown hosts are errors with `file:line:col`, and
//! the daemon refuses to start. Secrets may be inline, `file:PATH` or `env:NAME`
//! (`ssh_key: file:PATH` names the key file, used in place). Files a source needs
//! (SSH key, known_hosts, verification keys) are checked at load.
//! Start-up and reload share this one path.

use mooring_compose::decode::{check_keys, duration, err};
use mooring_compose::yaml::{self, Node, Value};
use mooring_compose::{LoadError, Pos};
use mooring_core::policy::Policy;
use mooring_core::state::EventKind;
use mooring_core::DataPolicy;
use mooring_vcs::{KnownHosts, SourceSpec, SshKey, VerifyMode};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod app;
mod app_env;
mod registries;
mod secrets;
mod server;
mod sops;
mod source;
pub mod targets;

pub use app_env::AppEnv;
use secrets::secret;
pub use secrets::Secret;

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub hosts: BTreeMap<String, HostConfig>,
    pub webhooks: WebhookConfig,
    pub notifications: Vec<Notification>,
    /// `backup_targets`: where backups are copied off the host.
    pub backup_targets: BTreeMap<String, targets::BackupTarget>,
    /// `registries`: credentials for the registries images are pulled from.
    pub registries: std::sync::Arc<mooring_docker::Registries>,
    pub apps: Vec<AppConfig>,
    /// `sops.age` at the top level: identities for every app's SOPS files (each app's
    /// `sops` holds these and its own).
    pub sops: mooring_sops::Keys,
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
    /// Where its Engine listens and how to reach it (`unix://`, `tcp://` with TLS,
    /// `ssh://`).
    pub endpoint: mooring_docker::Endpoint,
    /// `labels`: what an app's `hosts: { labels: … }` selects it by.
    pub labels: BTreeMap<String, String>,
    /// `variables`: interpolation values of every app deployed there (an app's own
    /// `variables` and its `per_host` ones win).
    pub variables: BTreeMap<String, Secret>,
    /// `mode: swarm`: the Engine is a Swarm manager, and apps are deployed to it as
    /// stacks (services, overlay networks); `engine` (default): as Compose projects.
    pub swarm: bool,
    /// `nodes` of a Swarm host: other hosts, each the Engine of one of its nodes,
    /// through which the stacks' volumes on that node are backed up and restored.
    pub nodes: Vec<String>,
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
    EventKind::SyncFailed.as_str(),
    EventKind::SyncRecovered.as_str(),
    EventKind::DriftDetected.as_str(),
    EventKind::HealthDegraded.as_str(),
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
    /// The source as `mooring_vcs` takes it, built at load from `kind`, `location` and
    /// `reference`: nothing downstream builds another.
    pub spec: SourceSpec,
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
    /// `head` (default), `tag` or `any`; anything else is a load error.
    pub mode: VerifyMode,
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
    /// `rollback: { on_failure: true, health_timeout }`: a new revision whose deploy
    /// fails, or that is not Healthy within this time, is rolled back to the revision
    /// before; `None`: not.
    pub rollback: Option<Duration>,
}

/// One app: a source path deployed to a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppConfig {
    /// The app's name, or for an app deployed to several hosts this instance's,
    /// `NAME@HOST`: status, history, diff and metrics are per app and host.
    pub name: String,
    /// The Compose project on the host: the app's name as configured (every instance
    /// of an app deployed to several hosts runs the same project on its own host).
    pub project: String,
    pub source: SourceConfig,
    pub host: String,
    /// Deployed to several hosts (`hosts:`): this instance merges the project's
    /// `compose.<host>.yaml` last when present, and has its own deploy tree.
    pub several_hosts: bool,
    pub files: Vec<String>,
    pub sync: SyncPolicy,
    /// `data.volumes`: `protect` (default) or `backup-then-delete`.
    pub volumes: DataPolicy,
    /// `data.backup`: `on-change` backs volumes up before every deploy that changes the
    /// containers writing to them; `never` (default) does not.
    pub backup_on_change: bool,
    /// `data.restore_on_rollback: [VOLUME…]` (Compose keys or Docker names): backed up
    /// before each deploy that changes their writers, and restored from that backup
    /// when the deploy is rolled back (`sync.rollback`).
    pub restore_on_rollback: Vec<String>,
    /// `data.copy_to: [TARGET…]`: each new backup of the app is copied to these
    /// `backup_targets`, in the background (a deploy never waits for it).
    pub copy_to: Vec<String>,
    /// `data.consistent`: volumes (Compose keys or Docker names) backed up while their
    /// service runs — by a dump, or between commands — when a person asks for a backup.
    pub consistent: std::collections::BTreeMap<String, mooring_core::ConsistentBackup>,
    /// `data.backup_max_age`: a volume the app writes to whose newest backup is older
    /// than this (or that has none) is reported (`BackupStale`); `None`: not watched.
    pub backup_max_age: Option<std::time::Duration>,
    /// `data.retention: { keep: N, older_than: 30d }`, applied after each new backup.
    pub retention: mooring_core::Retention,
    /// `policy`: what the repository may ask of the host (profile and exceptions).
    pub policy: Policy,
    /// `variables`, `pass_env`, `mask_env`: what interpolation sees, what is masked.
    pub env: AppEnv,
    /// `sops.age` (top level and the app's): identities for the app's SOPS files.
    pub sops: mooring_sops::Keys,
}

/// Reads and validates the configuration file.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            "; name the configuration with --config FILE or MOORING_CONFIG (the bundled one is examples/mooring.yaml)"
        } else {
            ""
        };
        LoadError::new(format!("cannot read {}: {e}{hint}", path.display()))
    })?;
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
        &[
            "server",
            "hosts",
            "webhooks",
            "notifications",
            "sops",
            "backup_targets",
            "registries",
            "apps",
        ],
    )?;
    let base = base.canonicalize().unwrap_or_else(|_| base.to_path_buf());

    let server = server::server_or_default(&doc, &base)?;
    let hosts = server::hosts(&doc, &base)?;
    let webhooks = server::webhooks(&doc, &base)?;
    let notifications = server::notifications(&doc)?;
    let backup_targets = targets::backup_targets(&doc, &base)?;
    let registries = std::sync::Arc::new(registries::registries(&doc, &base)?);
    let mut sops_keys = mooring_sops::Keys::none();
    sops::parse(&doc, "", &base, &mut sops_keys)?;

    let mut apps: Vec<AppConfig> = Vec::new();
    let own_secrets = app_env::secret_names(&doc);
    let mut seen: BTreeMap<String, Pos> = BTreeMap::new();
    if let Some(n) = doc.get("apps") {
        let Value::Seq(items) = &n.value else {
            return Err(err(n, "apps must be a list"));
        };
        for (i, item) in items.iter().enumerate() {
            let (template, targets) = app::app(item, i, &hosts, &base)?;
            let mut keys = sops_keys.clone();
            sops::parse(item, &format!("apps.{}.", template.name), &base, &mut keys)?;
            app_env::refuse_own_secrets(item, &format!("apps.{}", template.name), &own_secrets)?;
            // A name once, whether it runs on one host or several (each Compose project
            // on a host belongs to one app).
            if let Some(prev) = seen.get(&template.name) {
                return Err(err(
                    item,
                    format!(
                        "app {} is defined twice (first at line {})",
                        template.name, prev.line
                    ),
                ));
            }
            seen.insert(template.name.clone(), item.pos.clone());
            if let Some(unknown) = template
                .copy_to
                .iter()
                .find(|t| !backup_targets.contains_key(*t))
            {
                let at = item
                    .get("data")
                    .and_then(|d| d.get("copy_to"))
                    .unwrap_or(item);
                return Err(err(
                    at,
                    format!(
                        "apps.{}.data.copy_to: {unknown} is not one of backup_targets ({})",
                        template.name,
                        backup_targets
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            for host in &targets.hosts {
                let mut a = template.clone();
                a.sops = keys.clone();
                a.host = host.clone();
                if targets.several {
                    a.name = format!("{}@{host}", template.name);
                }
                // The most specific value wins: the host's, the app's, the app's on that host.
                let mut variables = hosts
                    .get(host)
                    .map(|h| h.variables.clone())
                    .unwrap_or_default();
                variables.extend(template.env.variables.clone());
                variables.extend(targets.per_host.get(host).cloned().unwrap_or_default());
                a.env.variables = variables;
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
                apps.push(a);
            }
        }
    }
    Ok(Config {
        server,
        hosts,
        webhooks,
        notifications,
        backup_targets,
        registries,
        apps,
        sops: sops_keys,
        folder: base,
    })
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

    pub(super) fn parse_ok(text: &str) -> Config {
        parse(text, "mooring.yaml", Path::new("/tmp")).unwrap()
    }

    pub(super) fn parse_err(text: &str) -> String {
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
    fn strict_errors_have_positions() {
        assert_eq!(
            parse_err("apps:\n  - name: a\n    source: { dir: x }\n    colour: blue\n"),
            "mooring.yaml:4:5: apps[0]: key `colour` is not supported (supported: name, source, host, hosts, per_host, files, sync, data, policy, variables, pass_env, mask_env, sops)"
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
}
