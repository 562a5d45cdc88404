//! The **policy**: what a repository may ask of a host. Repository content is untrusted
//! (a committer is not an administrator of the host), so a rendered [`Project`] is checked
//! against the app's policy before anything is applied — a pure function of values, like
//! [`crate::plan()`].
//!
//! Profiles, in the spirit of Kubernetes Pod Security and Argo CD's AppProject:
//! - [`Profile::Baseline`] (the default) refuses the Docker socket and other sensitive host
//!   paths as bind sources, capabilities beyond Docker's default set, bind-type volume
//!   drivers and device volumes, the host's network, and volumes and networks created
//!   outside the app (`external`);
//! - [`Profile::Restricted`] also refuses every host bind mount (files of the repository
//!   stay allowed: they live in the app's deploy tree) and every added capability but
//!   `NET_BIND_SERVICE`;
//! - [`Profile::Privileged`] allows anything Compose accepts.
//!
//! Each refusal names the key, its position and the [`Exception`] that would allow it;
//! what is allowed but notable (absolute host binds, added capabilities) becomes a note
//! shown in every plan.

use crate::desired::{MountKind, Project};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// A policy profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// No host takeover: the default.
    #[default]
    Baseline,
    /// Baseline, and no host bind mounts nor added capabilities.
    Restricted,
    /// Anything Compose accepts.
    Privileged,
}

impl Profile {
    /// The profile's name in `mooring.yaml` and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Baseline => "baseline",
            Profile::Restricted => "restricted",
            Profile::Privileged => "privileged",
        }
    }

    /// Parses `baseline` / `restricted` / `privileged`.
    pub fn parse(s: &str) -> Option<Profile> {
        match s {
            "baseline" => Some(Profile::Baseline),
            "restricted" => Some(Profile::Restricted),
            "privileged" => Some(Profile::Privileged),
            _ => None,
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named exception to the profile, given by the operator (`policy.allow`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exception {
    /// `docker_socket`: the Docker socket (root on the host) as a bind source.
    DockerSocket,
    /// `host_network`: the host's network stack (an external network named `host`).
    HostNetwork,
    /// `host_path:/srv/media`: host paths at or under this one as bind sources (also
    /// sensitive ones, and with `restricted`).
    HostPath(String),
    /// `cap:NET_ADMIN`: this capability in `cap_add`.
    Cap(String),
    /// `volume:NAME`: the volume named so on the host may be external, or a device.
    Volume(String),
    /// `network:NAME`: the network named so on the host may be external.
    Network(String),
    /// `host_namespace:pid` (or `ipc`, `uts`, `userns`, `cgroup`): this namespace
    /// shared with the host.
    HostNamespace(String),
    /// `device:/dev/ttyUSB0`: this host device given to a container.
    Device(String),
    /// `gpus`: the host's GPUs (and other devices of the Engine's device drivers).
    Gpus,
}

/// Why an exception could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExceptionError(String);

/// What `policy.allow` accepts, for error messages.
pub const EXCEPTION_FORMS: &str =
    "docker_socket, host_network, host_path:/ABSOLUTE/PATH, cap:NAME, volume:NAME, network:NAME, host_namespace:pid|ipc|uts|userns|cgroup, device:/dev/PATH, gpus";

impl Exception {
    /// Parses one `allow` entry.
    pub fn parse(s: &str) -> Result<Exception, ExceptionError> {
        let bad = |why: &str| ExceptionError(format!("policy exception {s:?}: {why}"));
        match s.split_once(':') {
            None => match s {
                "docker_socket" => Ok(Exception::DockerSocket),
                "host_network" => Ok(Exception::HostNetwork),
                "gpus" => Ok(Exception::Gpus),
                _ => Err(bad(&format!("unknown; use one of {EXCEPTION_FORMS}"))),
            },
            Some(("host_path", p)) => {
                let path = Path::new(p);
                if !path.is_absolute()
                    || path
                        .components()
                        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
                {
                    return Err(bad("the host path must be absolute, without `.` or `..`"));
                }
                Ok(Exception::HostPath(lexical(path).to_string_lossy().into()))
            }
            Some(("cap", c)) => {
                let cap = capability(c);
                if cap.is_empty() || !cap.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                    return Err(bad("a capability name such as NET_ADMIN"));
                }
                Ok(Exception::Cap(cap))
            }
            Some(("volume", n)) if !n.is_empty() => Ok(Exception::Volume(n.into())),
            Some(("network", n)) if !n.is_empty() => Ok(Exception::Network(n.into())),
            Some(("host_namespace", n)) => match n {
                "pid" | "ipc" | "uts" | "userns" | "cgroup" => {
                    Ok(Exception::HostNamespace(n.into()))
                }
                "network" => Err(bad("the host's network is `host_network`")),
                _ => Err(bad("one of pid, ipc, uts, userns, cgroup")),
            },
            Some(("device", d)) if d.starts_with("/dev/") => Ok(Exception::Device(d.into())),
            Some(("device", _)) => Err(bad("a device path under /dev/")),
            Some(_) => Err(bad(&format!("unknown; use one of {EXCEPTION_FORMS}"))),
        }
    }
}

impl fmt::Display for Exception {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exception::DockerSocket => f.write_str("docker_socket"),
            Exception::HostNetwork => f.write_str("host_network"),
            Exception::HostPath(p) => write!(f, "host_path:{p}"),
            Exception::Cap(c) => write!(f, "cap:{c}"),
            Exception::Volume(n) => write!(f, "volume:{n}"),
            Exception::Network(n) => write!(f, "network:{n}"),
            Exception::HostNamespace(n) => write!(f, "host_namespace:{n}"),
            Exception::Device(d) => write!(f, "device:{d}"),
            Exception::Gpus => f.write_str("gpus"),
        }
    }
}

/// An app's policy: a profile and the operator's exceptions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    pub profile: Profile,
    pub allow: Vec<Exception>,
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.profile.as_str())?;
        if !self.allow.is_empty() {
            let allow: Vec<String> = self.allow.iter().map(Exception::to_string).collect();
            write!(f, " (allow: {})", allow.join(", "))?;
        }
        Ok(())
    }
}

/// What the check needs to know about the host, gathered at the edge.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    /// Mooring's own folders and files (data directory, configuration): never bind sources.
    pub protected: Vec<String>,
    /// Absolute host paths as the host resolves them (symlinks followed), where known:
    /// a bind of `/srv/link` that resolves to `/` is `/`.
    pub resolved: BTreeMap<String, String>,
}

/// Which rule a finding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// The Docker socket (or a folder holding it) as a bind source.
    DockerSocket,
    /// A sensitive host path (or a folder holding one) as a bind source.
    SensitivePath,
    /// Any host path as a bind source.
    HostBind,
    /// A capability added with `cap_add`.
    Capability,
    /// A volume whose driver options mount a device.
    VolumeDevice,
    /// A volume created outside the app (`external`).
    ExternalVolume,
    /// A network created outside the app (`external`).
    ExternalNetwork,
    /// The host's network stack.
    HostNetwork,
    /// A volume plugin (a driver other than `local`).
    VolumeDriver,
    /// A security option that lifts a protection (`seccomp=unconfined`,
    /// `apparmor=unconfined`, `label=disable`, `systempaths=unconfined`).
    SecurityOpt,
    /// `privileged: true`.
    PrivilegedContainer,
    /// A namespace shared with the host (`pid: host`, …).
    HostNamespace,
    /// The namespaces of a container outside the app (`network_mode: container:X`).
    ContainerNamespace,
    /// A host device (`devices`).
    Device,
}

/// One thing the policy refused or noted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    /// The Compose key (`services.web.volumes`, `volumes.data`).
    pub key: String,
    /// `file:line:col` of the entry, when the loader recorded it.
    pub at: Option<String>,
    /// What the entry asks for and why it matters.
    pub message: String,
    /// The exception that would allow it (`None`: only the `privileged` profile does).
    pub allow: Option<Exception>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(at) = &self.at {
            write!(f, "{at}: ")?;
        }
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// The outcome of [`check`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verdict {
    /// What the policy refuses: nothing may be applied while this is not empty.
    pub refused: Vec<Finding>,
    /// What the policy allows but a person should know.
    pub notes: Vec<Finding>,
}

impl Verdict {
    /// True when nothing was refused.
    pub fn allowed(&self) -> bool {
        self.refused.is_empty()
    }

    /// One line per refusal, each saying how to allow it.
    pub fn refusal_message(&self, policy: &Policy) -> String {
        let lines: Vec<String> = self
            .refused
            .iter()
            .map(|r| {
                let how = match &r.allow {
                    Some(e) => format!(
                        "to allow it, add `{e}` to the app's `policy.allow` in mooring.yaml (one-shot: --allow {e})"
                    ),
                    None => "only the `privileged` profile allows it".to_string(),
                };
                format!("{r}; refused by policy {}: {how}", policy.profile)
            })
            .collect();
        lines.join("\n")
    }

    /// The notes as plan notes.
    pub fn note_lines(&self) -> Vec<String> {
        self.notes.iter().map(|n| format!("policy: {n}")).collect()
    }
}

/// Docker's default capabilities: adding them changes nothing.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Where Docker's socket lives.
pub const DOCKER_SOCKETS: [&str; 2] = ["/var/run/docker.sock", "/run/docker.sock"];

/// Host paths that are never bind sources under `baseline`: the host's configuration,
/// kernel interfaces, system binaries and the container engine's own state. A folder
/// holding one of them (`/`, `/var`) is sensitive too.
pub const SENSITIVE_PATHS: [&str; 17] = [
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/root",
    "/run/containerd",
    "/sbin",
    "/sys",
    "/usr",
    "/var/lib/containerd",
    "/var/lib/docker",
    "/var/run/containerd",
];

/// Whether a `security_opt` entry turns a protection off (`seccomp=unconfined`,
/// `apparmor:unconfined`, `label=disable`, `systempaths=unconfined`) or may (a seccomp
/// profile of the repository's in place of the Engine's default one).
pub fn lifts_protection(opt: &str) -> bool {
    let Some((name, value)) = opt.split_once(['=', ':']) else {
        return false;
    };
    matches!(
        (name, value),
        ("seccomp" | "apparmor" | "systempaths", "unconfined") | ("label", "disable")
    ) || seccomp_profile_path(opt).is_some()
}

/// The profile file a `seccomp=FILE` (or `seccomp:FILE`) entry names; `None` for
/// `unconfined`, `builtin` and other options.
pub fn seccomp_profile_path(opt: &str) -> Option<&str> {
    opt.strip_prefix("seccomp=")
        .or_else(|| opt.strip_prefix("seccomp:"))
        .filter(|p| !matches!(*p, "unconfined" | "builtin"))
}

/// Checks `project` against `policy`.
pub fn check(project: &Project, policy: &Policy, host: &HostFacts) -> Verdict {
    let mut c = Checker {
        policy,
        host,
        positions: &project.positions,
        verdict: Verdict::default(),
    };
    for (name, svc) in &project.services {
        for m in svc.mounts.iter().filter(|m| m.kind == MountKind::Bind) {
            if m.from_repository {
                continue;
            }
            let key = format!("services.{name}.volumes");
            let at = c.position(&format!("{key}.{}", m.target));
            let what = format!(
                "{}:{}{}",
                m.source,
                m.target,
                if m.read_only { ":ro" } else { "" }
            );
            c.host_path(&key, at, &m.source, &what);
        }
        let key = |k: &str| format!("services.{name}.{k}");
        let here = |c: &Checker, k: &str| {
            c.position(&key(k))
                .or_else(|| c.position(&format!("services.{name}")))
        };
        if svc
            .post_start
            .iter()
            .chain(&svc.pre_stop)
            .any(|h| h.privileged)
        {
            let at = here(&c, "post_start").or_else(|| here(&c, "pre_stop"));
            c.profile_only(
                Rule::PrivilegedContainer,
                &key("post_start"),
                at,
                "a lifecycle hook runs privileged (every capability, root on the host)".into(),
            );
        }
        if svc.host.privileged {
            let at = here(&c, "privileged");
            c.profile_only(
                Rule::PrivilegedContainer,
                &key("privileged"),
                at,
                "privileged: every capability and device, no confinement (root on the host)".into(),
            );
        }
        if svc
            .build
            .as_ref()
            .is_some_and(|b| b.network.as_deref() == Some("host"))
        {
            let at = here(&c, "build");
            c.finding(
                Rule::HostNetwork,
                &key("build.network"),
                at,
                "the image's build steps join the host's network stack".into(),
                policy.profile != Profile::Privileged,
                Exception::HostNetwork,
            );
        }
        for kind in svc.host.host_namespaces() {
            let k = match kind {
                "network" => "network_mode",
                "userns" => "userns_mode",
                other => other,
            };
            let at = here(&c, k);
            let (rule, allow) = if kind == "network" {
                (Rule::HostNetwork, Exception::HostNetwork)
            } else {
                (Rule::HostNamespace, Exception::HostNamespace(kind.into()))
            };
            let message = if kind == "network" {
                "joins the host's network stack (it sees and binds every host interface)"
                    .to_string()
            } else {
                format!("shares the host's {kind} namespace")
            };
            let refused = policy.profile != Profile::Privileged;
            c.finding(rule, &key(k), at, message, refused, allow);
        }
        for (k, other) in svc.host.joined_containers() {
            let at = here(&c, k);
            c.profile_only(
                Rule::ContainerNamespace,
                &key(k),
                at,
                format!("joins the namespaces of container {other}, outside the app"),
            );
        }
        for rule in &svc.host.device_cgroup_rules {
            let at = here(&c, "device_cgroup_rules");
            c.profile_only(
                Rule::Device,
                &key("device_cgroup_rules"),
                at,
                format!("device cgroup rule {rule:?} opens host device nodes to the container"),
            );
        }
        for d in &svc.host.devices {
            let at = here(&c, "devices");
            let refused = policy.profile != Profile::Privileged;
            c.finding(
                Rule::Device,
                &key("devices"),
                at,
                format!("gives the container host device {}", d.source),
                refused,
                Exception::Device(d.source.clone()),
            );
        }
        for (k, requests) in [
            ("gpus", &svc.host.gpus),
            (
                "deploy.resources.reservations.devices",
                &svc.host.device_reservations,
            ),
        ] {
            for d in requests {
                let at = here(&c, k);
                let refused = policy.profile != Profile::Privileged;
                c.finding(
                    Rule::Device,
                    &key(k),
                    at,
                    format!(
                        "gives the container the host's devices of driver {}",
                        d.driver.as_deref().unwrap_or("(the Engine's choice)")
                    ),
                    refused,
                    Exception::Gpus,
                );
            }
        }
        for opt in &svc.settings.security_opt {
            if lifts_protection(opt) {
                let key = format!("services.{name}.security_opt");
                let at = c.position(&key);
                c.profile_only(
                    Rule::SecurityOpt,
                    &key,
                    at,
                    match seccomp_profile_path(opt) {
                        Some(p) => format!("{opt} replaces the Engine's default seccomp profile with the repository's {p}, which may allow system calls the default denies"),
                        None => format!("{opt} turns off one of the Engine's protections of the host"),
                    },
                );
            }
        }
        for cap in &svc.cap_add {
            let cap = capability(cap);
            if DEFAULT_CAPABILITIES.contains(&cap.as_str()) {
                continue;
            }
            let key = format!("services.{name}.cap_add");
            let at = c.position(&format!("{key}.{cap}"));
            let refused = match policy.profile {
                Profile::Privileged => false,
                Profile::Baseline => true,
                Profile::Restricted => cap != "NET_BIND_SERVICE",
            };
            let why = if cap == "ALL" {
                "adds every capability (as good as privileged)".to_string()
            } else {
                format!("adds capability {cap}, beyond Docker's default set")
            };
            c.finding(
                Rule::Capability,
                &key,
                at,
                why,
                refused,
                Exception::Cap(cap),
            );
        }
    }
    for (key, vol) in &project.volumes {
        let k = format!("volumes.{key}");
        let at = c.position(&k);
        if vol.external {
            c.finding(
                Rule::ExternalVolume,
                &k,
                at.clone(),
                format!(
                    "uses volume {} created outside the app (external): its data may be another app's",
                    vol.name
                ),
                policy.profile != Profile::Privileged,
                Exception::Volume(vol.name.clone()),
            );
        }
        let opts = &vol.driver_opts;
        let bind = opts
            .get("o")
            .is_some_and(|o| o.split(',').any(|t| matches!(t.trim(), "bind" | "rbind")));
        match opts.get("device") {
            Some(device) if bind => {
                let what = format!("volume {} binds host path {device}", vol.name);
                c.host_path(&k, at.clone(), device, &what);
            }
            Some(device) if opts.get("type").map(String::as_str) != Some("tmpfs") => c.finding(
                Rule::VolumeDevice,
                &k,
                at.clone(),
                format!(
                    "volume {} mounts device {device} ({}) on the host",
                    vol.name,
                    opts.get("type").map(String::as_str).unwrap_or("no type")
                ),
                policy.profile != Profile::Privileged,
                Exception::Volume(vol.name.clone()),
            ),
            _ => {}
        }
        if let Some(driver) = vol.driver.as_deref().filter(|d| *d != "local") {
            c.verdict.notes.push(Finding {
                rule: Rule::VolumeDriver,
                key: k.clone(),
                at,
                message: format!("volume {} uses the volume plugin {driver}", vol.name),
                allow: None,
            });
        }
    }
    for (key, net) in &project.networks {
        let k = format!("networks.{key}");
        let at = c.position(&k);
        let host = net.driver.as_deref() == Some("host") || (net.external && net.name == "host");
        if host {
            c.finding(
                Rule::HostNetwork,
                &k,
                at,
                "joins the host's network stack (it sees and binds every host interface)".into(),
                policy.profile != Profile::Privileged,
                Exception::HostNetwork,
            );
        } else if net.external {
            c.finding(
                Rule::ExternalNetwork,
                &k,
                at,
                format!(
                    "uses network {} created outside the app (external)",
                    net.name
                ),
                policy.profile != Profile::Privileged,
                Exception::Network(net.name.clone()),
            );
        }
    }
    c.verdict
}

struct Checker<'a> {
    policy: &'a Policy,
    host: &'a HostFacts,
    positions: &'a BTreeMap<String, String>,
    verdict: Verdict,
}

impl Checker<'_> {
    fn position(&self, key: &str) -> Option<String> {
        self.positions.get(key).cloned()
    }

    fn allows(&self, e: &Exception) -> bool {
        self.policy.allow.contains(e)
    }

    /// Whether a `host_path:` exception covers `path`.
    fn path_allowed(&self, path: &Path) -> bool {
        self.policy.allow.iter().any(|e| match e {
            Exception::HostPath(a) => path.starts_with(a),
            _ => false,
        })
    }

    /// A refusal (when `refused` and not excepted) or a note.
    fn finding(
        &mut self,
        rule: Rule,
        key: &str,
        at: Option<String>,
        message: String,
        refused: bool,
        allow: Exception,
    ) {
        let excepted = self.allows(&allow);
        let finding = Finding {
            rule,
            key: key.to_string(),
            at,
            message,
            allow: Some(allow),
        };
        if refused && !excepted {
            self.verdict.refused.push(finding);
        } else {
            self.verdict.notes.push(finding);
        }
    }

    /// A refusal only the `privileged` profile lifts (no exception names it).
    fn profile_only(&mut self, rule: Rule, key: &str, at: Option<String>, message: String) {
        let finding = Finding {
            rule,
            key: key.to_string(),
            at,
            message,
            allow: None,
        };
        if self.policy.profile == Profile::Privileged {
            self.verdict.notes.push(finding);
        } else {
            self.verdict.refused.push(finding);
        }
    }

    /// A host path used as a bind source (a mount, or a bind-type volume's device).
    fn host_path(&mut self, key: &str, at: Option<String>, source: &str, what: &str) {
        let privileged = self.policy.profile == Profile::Privileged;
        let raw = lexical(Path::new(source));
        let mut paths = vec![raw.clone()];
        if let Some(r) = self.host.resolved.get(source) {
            let r = lexical(Path::new(r));
            if r != raw {
                paths.push(r);
            }
        }
        let shown = |p: &Path| {
            if *p == raw {
                String::new()
            } else {
                format!(" (it resolves to {} on the host)", p.display())
            }
        };
        let covered = paths.iter().all(|p| self.path_allowed(p));
        for p in &paths {
            if DOCKER_SOCKETS.iter().any(|s| Path::new(s).starts_with(p))
                || p.file_name().is_some_and(|n| n == "docker.sock")
            {
                let message = format!(
                    "{what}{} exposes the Docker socket: whoever controls the container is root on the host",
                    shown(p)
                );
                self.finding(
                    Rule::DockerSocket,
                    key,
                    at.clone(),
                    message,
                    !privileged,
                    Exception::DockerSocket,
                );
                if DOCKER_SOCKETS.iter().any(|s| Path::new(s) == p.as_path())
                    || p.file_name().is_some_and(|n| n == "docker.sock")
                {
                    return;
                }
                // A folder holding the socket: the rules for folders apply as well.
                break;
            }
        }
        for p in &paths {
            let protected = self.host.protected.iter().map(|s| (s.as_str(), true));
            let sensitive = SENSITIVE_PATHS.iter().map(|s| (*s, false));
            let hit = sensitive
                .chain(protected)
                .find(|(s, _)| p.starts_with(s) || Path::new(s).starts_with(p));
            if let Some((s, own)) = hit {
                let whose = if own {
                    "Mooring's own data or configuration"
                } else {
                    "a sensitive host path"
                };
                let message = format!("{what}{} reaches {s}, {whose}", shown(p));
                let allow = Exception::HostPath(p.to_string_lossy().into());
                let refused = !privileged && !covered;
                self.finding(
                    Rule::SensitivePath,
                    key,
                    at.clone(),
                    message,
                    refused,
                    allow,
                );
                return;
            }
        }
        let message = format!("{what}: a host path outside the repository{}", {
            let extra: Vec<String> = paths.iter().skip(1).map(|p| shown(p)).collect();
            extra.concat()
        });
        let refused = self.policy.profile == Profile::Restricted && !covered;
        self.finding(
            Rule::HostBind,
            key,
            at,
            message,
            refused,
            Exception::HostPath(raw.to_string_lossy().into()),
        );
    }
}

/// `cap_add` spelling as Docker takes it: upper case, without `CAP_`.
pub fn capability(s: &str) -> String {
    let up = s.trim().to_ascii_uppercase();
    up.strip_prefix("CAP_").unwrap_or(&up).to_string()
}

/// `path` with `.` and `..` resolved lexically (`..` above `/` stays at `/`).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests;
