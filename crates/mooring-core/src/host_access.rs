//! What a service asks of the host beyond its mounts and capabilities: `privileged`,
//! `network_mode`, the namespaces it shares (`pid`, `ipc`, `uts`, `userns_mode`,
//! `cgroup`), `devices`, `device_cgroup_rules`, and GPUs (`gpus`,
//! `deploy.resources.reservations.devices`). Each passes the app's policy (`policy`) before it reaches
//! the Engine. Serialized as `docker compose config` prints them; flattened into
//! [`Service`](crate::Service), so each enters the spec hash.

use serde::Serialize;
use std::collections::BTreeMap;
use std::ops::Not;

/// A service's host access (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct HostAccess {
    /// Every capability, every device, no confinement: root on the host.
    #[serde(skip_serializing_if = "Not::not")]
    pub privileged: bool,
    /// `host`, `none`, `bridge`, `service:NAME`, `container:NAME`; `None`: the
    /// service's `networks`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    /// `host`, `service:NAME`, `container:NAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    /// `host`, `shareable`, `private`, `none`, `service:NAME`, `container:NAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipc: Option<String>,
    /// `host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uts: Option<String>,
    /// `host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userns_mode: Option<String>,
    /// `host` or `private`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Device>,
    /// Device cgroup rules (`c 1:3 mr`): access to device nodes by number.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_cgroup_rules: Vec<String>,
    /// `gpus`: GPUs from the Engine's device drivers (the Engine gets each with the
    /// `gpu` capability added, as Compose sends it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<DeviceRequest>,
    /// `deploy.resources.reservations.devices`, sent as written, before `gpus`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_reservations: Vec<DeviceRequest>,
}

/// Devices asked of one of the Engine's device drivers (`nvidia`, `cdi`…), as Compose
/// prints them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct DeviceRequest {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// How many devices; `-1`: all (the default without `device_ids`); `0` with them.
    #[serde(skip_serializing_if = "is_zero")]
    pub count: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_ids: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// A host device given to the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    /// The host's device path.
    pub source: String,
    /// Where the container sees it.
    pub target: String,
    /// `r`, `w`, `m` in any combination (`rwm` by default).
    pub permissions: String,
}

impl HostAccess {
    /// The namespaces shared with the host, with the key that asks it: `pid`,
    /// `ipc`, `uts`, `userns`, `cgroup` (and `network` for `network_mode: host`).
    pub fn host_namespaces(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (kind, mode) in [
            ("network", &self.network_mode),
            ("pid", &self.pid),
            ("ipc", &self.ipc),
            ("uts", &self.uts),
            ("userns", &self.userns_mode),
            ("cgroup", &self.cgroup),
        ] {
            if mode.as_deref() == Some("host") {
                out.push(kind);
            }
        }
        out
    }

    /// Containers outside the project whose namespaces it joins (`container:NAME`),
    /// with the key that asks it.
    pub fn joined_containers(&self) -> Vec<(&'static str, &str)> {
        [
            ("network_mode", &self.network_mode),
            ("pid", &self.pid),
            ("ipc", &self.ipc),
        ]
        .into_iter()
        .filter_map(|(key, mode)| Some((key, mode.as_deref()?.strip_prefix("container:")?)))
        .collect()
    }

    /// Services of the project whose namespaces it joins (`service:NAME`): Compose
    /// starts them first.
    pub fn joined_services(&self) -> Vec<&str> {
        [&self.network_mode, &self.pid, &self.ipc]
            .into_iter()
            .filter_map(|mode| mode.as_deref()?.strip_prefix("service:"))
            .collect()
    }
}
