//! A container's engine settings that Compose passes to the Docker Engine as written:
//! `expose`, `stdin_open`, `tty`, `sysctls`, `ulimits`, `dns`, `dns_search`,
//! `dns_opt`, `domainname`, `logging`, `pids_limit`, `shm_size`, `mem_reservation`,
//! `memswap_limit`, `cpu_shares`, `runtime`, `group_add`, `security_opt`, `oom_score_adj`,
//! `oom_kill_disable`, `mem_swappiness`, `cpu_quota`, `cpu_period`, `cpu_rt_runtime`,
//! `cpu_rt_period`, `cpuset`, `storage_opt`, `mac_address`, `cgroup_parent`,
//! `platform`, `annotations`, `attach`.
//!
//! Each field is spelled, and serialized, as `docker compose config --format json`
//! prints it (byte sizes as strings of bytes, a single ulimit as a number), so a
//! rendered project reads like Compose's; all of them enter the spec hash through
//! [`Service`](crate::Service), where they are flattened.

use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::ops::Not;

/// Compose's pass-through settings of one service (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Settings {
    /// Ports exposed without publishing: `3000`, `4000-4001/udp` (the Engine gets them
    /// as written, as Compose sends them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<String>,
    #[serde(skip_serializing_if = "Not::not")]
    pub stdin_open: bool,
    #[serde(skip_serializing_if = "Not::not")]
    pub tty: bool,
    /// Namespaced kernel parameters (`net.core.somaxconn`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ulimits: BTreeMap<String, Ulimit>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_opt: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<Logging>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    /// Bytes.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "bytes_as_string"
    )]
    pub shm_size: Option<i64>,
    /// Bytes.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "bytes_as_string"
    )]
    pub mem_reservation: Option<i64>,
    /// Bytes (memory plus swap; `-1`: unlimited swap).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "bytes_as_string"
    )]
    pub memswap_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<i64>,
    /// An OCI runtime the engine knows (`runc`, `nvidia`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Extra groups of the container's process (names or ids).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    /// Security options (`no-new-privileges:true`, `label=type:…`); the policy
    /// decides on those that lift a protection (`seccomp=unconfined`…).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i64>,
    #[serde(skip_serializing_if = "Not::not")]
    pub oom_kill_disable: bool,
    /// 0–100; printed as Compose prints it (a string).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "bytes_as_string"
    )]
    pub mem_swappiness: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_period: Option<i64>,
    /// Microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_rt_runtime: Option<i64>,
    /// Microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_rt_period: Option<i64>,
    /// CPUs the container may run on (`0-3`, `0,2`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset: Option<String>,
    /// Storage driver options (`size: 1G`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub storage_opt: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_parent: Option<String>,
    /// `os/arch[/variant]` of the image to run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Metadata for the runtime (`HostConfig.Annotations`, Engine API 1.43 and later).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Whether `docker compose up` (attached) shows its logs: no effect on a deploy,
    /// kept for the render.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach: Option<bool>,
}

/// One `ulimits` entry: a single value (soft = hard) or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
    /// Written as one number (`nproc: 65535`): printed back so.
    pub single: bool,
}

impl Serialize for Ulimit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Both {
            soft: i64,
            hard: i64,
        }
        if self.single {
            s.serialize_i64(self.soft)
        } else {
            Both {
                soft: self.soft,
                hard: self.hard,
            }
            .serialize(s)
        }
    }
}

/// `logging`: the log driver and its options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Logging {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

/// Compose prints byte sizes as strings of bytes (`"67108864"`).
fn bytes_as_string<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(n) => s.serialize_str(&n.to_string()),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_as_compose_prints_them() {
        let s = Settings {
            expose: vec!["3000".into(), "4000-4001/udp".into()],
            ulimits: BTreeMap::from([
                (
                    "nproc".into(),
                    Ulimit {
                        soft: 65535,
                        hard: 65535,
                        single: true,
                    },
                ),
                (
                    "nofile".into(),
                    Ulimit {
                        soft: 20000,
                        hard: 40000,
                        single: false,
                    },
                ),
            ]),
            shm_size: Some(64 << 20),
            ..Settings::default()
        };
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!({
                "expose": ["3000", "4000-4001/udp"],
                "ulimits": {"nofile": {"soft": 20000, "hard": 40000}, "nproc": 65535},
                "shm_size": "67108864",
            })
        );
    }
}
