//! Docker Compose's `com.docker.compose.config-hash` of a service: sha256 over the
//! service as Compose v2 marshals it (Go's `encoding/json` of compose-go's
//! `ServiceConfig`: fields in their declaration order, maps by sorted key, `<`, `>`
//! and `&` escaped) without what does not change the container (`build`,
//! `pull_policy`, `scale`, `deploy.replicas`, `depends_on`, `profiles`). A container
//! carrying the hash Compose computes is one `docker compose up -d` leaves alone.
//!
//! The service's values are `mooring render`'s, which equal `docker compose config`'s
//! (the conformance corpus checks it); only the order and the escaping are Go's here.

use mooring_core::{Project, Service};
use serde_json::Value;
use std::fmt::Write;

/// The hash Compose labels the container of `svc` with.
pub fn config_hash(project: &Project, svc: &Service) -> String {
    let mut v = crate::output::service_json(project, svc);
    if let Some(o) = v.as_object_mut() {
        for key in ["build", "pull_policy", "scale", "depends_on", "profiles"] {
            o.remove(key);
        }
        if let Some(d) = o.get_mut("deploy").and_then(Value::as_object_mut) {
            d.remove("replicas");
        }
        o.retain(|k, _| !k.starts_with("x-"));
    }
    let mut out = String::new();
    write_go(&v, Struct::Service, &mut out);
    mooring_core::hash::sha256_hex(out.as_bytes())
}

/// The compose-go types whose fields keep their declaration order.
#[derive(Clone, Copy)]
enum Struct {
    Service,
    Port,
    Mount,
    Bind,
    VolumeOptions,
    Tmpfs,
    Healthcheck,
    Logging,
    Network,
    FileRef,
    Device,
    DeviceRequest,
    Hook,
    EnvFile,
    Deploy,
    Resources,
    Resource,
    RestartPolicy,
    Placement,
    UpdateConfig,
    Ulimit,
    /// A map (keys sorted) or a value whose members are not structs.
    Other,
}

impl Struct {
    /// The JSON names of the type's fields, in declaration order.
    fn fields(self) -> &'static [&'static str] {
        match self {
            Struct::Service => &[
                "profiles",
                "annotations",
                "attach",
                "build",
                "develop",
                "blkio_config",
                "cap_add",
                "cap_drop",
                "cgroup_parent",
                "cgroup",
                "cpu_count",
                "cpu_percent",
                "cpu_period",
                "cpu_quota",
                "cpu_rt_period",
                "cpu_rt_runtime",
                "cpus",
                "cpuset",
                "cpu_shares",
                "command",
                "configs",
                "container_name",
                "credential_spec",
                "depends_on",
                "deploy",
                "device_cgroup_rules",
                "devices",
                "dns",
                "dns_opt",
                "dns_search",
                "dockerfile",
                "domainname",
                "entrypoint",
                "provider",
                "environment",
                "env_file",
                "expose",
                "extends",
                "external_links",
                "extra_hosts",
                "group_add",
                "gpus",
                "hostname",
                "healthcheck",
                "image",
                "init",
                "ipc",
                "isolation",
                "labels",
                "label_file",
                "links",
                "logging",
                "log_driver",
                "log_opt",
                "mem_limit",
                "mem_reservation",
                "memswap_limit",
                "mem_swappiness",
                "mac_address",
                "models",
                "net",
                "network_mode",
                "networks",
                "oom_kill_disable",
                "oom_score_adj",
                "pid",
                "pids_limit",
                "platform",
                "ports",
                "privileged",
                "pull_policy",
                "read_only",
                "restart",
                "runtime",
                "scale",
                "secrets",
                "security_opt",
                "shm_size",
                "stdin_open",
                "stop_grace_period",
                "stop_signal",
                "storage_opt",
                "sysctls",
                "tmpfs",
                "tty",
                "ulimits",
                "use_api_socket",
                "user",
                "userns_mode",
                "uts",
                "volume_driver",
                "volumes",
                "volumes_from",
                "working_dir",
                "post_start",
                "pre_stop",
            ],
            Struct::Port => &[
                "name",
                "mode",
                "host_ip",
                "target",
                "published",
                "protocol",
                "app_protocol",
            ],
            Struct::Mount => &[
                "type",
                "source",
                "target",
                "read_only",
                "consistency",
                "bind",
                "volume",
                "tmpfs",
                "image",
            ],
            Struct::Bind => &["selinux", "propagation", "create_host_path", "recursive"],
            Struct::VolumeOptions => &["labels", "nocopy", "subpath"],
            Struct::Tmpfs => &["size", "mode"],
            Struct::Healthcheck => &[
                "test",
                "timeout",
                "interval",
                "retries",
                "start_period",
                "start_interval",
                "disable",
            ],
            Struct::Logging => &["driver", "options"],
            Struct::Network => &[
                "aliases",
                "driver_opts",
                "gw_priority",
                "interface_name",
                "ipv4_address",
                "ipv6_address",
                "link_local_ips",
                "mac_address",
                "priority",
            ],
            Struct::FileRef => &["source", "target", "uid", "gid", "mode"],
            Struct::Device => &["source", "target", "permissions"],
            Struct::DeviceRequest => &["capabilities", "driver", "count", "device_ids", "options"],
            Struct::Hook => &[
                "command",
                "user",
                "privileged",
                "working_dir",
                "environment",
            ],
            Struct::EnvFile => &["path", "required", "format"],
            Struct::Deploy => &[
                "mode",
                "replicas",
                "labels",
                "update_config",
                "rollback_config",
                "resources",
                "restart_policy",
                "placement",
                "endpoint_mode",
            ],
            Struct::Resources => &["limits", "reservations"],
            Struct::Resource => &["cpus", "memory", "pids", "devices", "generic_resources"],
            Struct::RestartPolicy => &["condition", "delay", "max_attempts", "window"],
            Struct::Placement => &["constraints", "preferences", "max_replicas_per_node"],
            Struct::UpdateConfig => &[
                "parallelism",
                "delay",
                "failure_action",
                "monitor",
                "max_failure_ratio",
                "order",
            ],
            Struct::Ulimit => &["soft", "hard"],
            Struct::Other => &[],
        }
    }

    /// The type of field `key`'s value (of each item, for a list; of each value, for a
    /// map of structs).
    fn child(self, key: &str) -> Struct {
        match (self, key) {
            (Struct::Service, "ports") => Struct::Port,
            (Struct::Service, "volumes") => Struct::Mount,
            (Struct::Service, "healthcheck") => Struct::Healthcheck,
            (Struct::Service, "logging") => Struct::Logging,
            (Struct::Service, "networks") => Struct::Network,
            (Struct::Service, "secrets" | "configs") => Struct::FileRef,
            (Struct::Service, "devices") => Struct::Device,
            (Struct::Service, "gpus") | (Struct::Resource, "devices") => Struct::DeviceRequest,
            (Struct::Service, "post_start" | "pre_stop") => Struct::Hook,
            (Struct::Service, "env_file") => Struct::EnvFile,
            (Struct::Service, "deploy") => Struct::Deploy,
            (Struct::Service, "ulimits") => Struct::Ulimit,
            (Struct::Mount, "bind") => Struct::Bind,
            (Struct::Mount, "volume") => Struct::VolumeOptions,
            (Struct::Mount, "tmpfs") => Struct::Tmpfs,
            (Struct::Deploy, "resources") => Struct::Resources,
            (Struct::Deploy, "restart_policy") => Struct::RestartPolicy,
            (Struct::Deploy, "placement") => Struct::Placement,
            (Struct::Deploy, "update_config" | "rollback_config") => Struct::UpdateConfig,
            (Struct::Resources, _) => Struct::Resource,
            _ => Struct::Other,
        }
    }
}

/// Whether a field's value is a map of structs (networks, ulimits), keyed by name.
fn is_map_of_structs(key: Option<&str>) -> bool {
    matches!(key, Some("networks" | "ulimits"))
}

/// Writes `v` as Go's `encoding/json` does for a value of type `t`.
fn write_go(v: &Value, t: Struct, out: &mut String) {
    write_value(v, t, None, out);
}

fn write_value(v: &Value, t: Struct, key: Option<&str>, out: &mut String) {
    match v {
        Value::Object(o) if is_map_of_structs(key) => {
            // A map of structs: sorted keys (Go sorts a map's), each value of type `t`.
            out.push('{');
            let mut entries: Vec<_> = o.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_value(item, t, None, out);
            }
            out.push('}');
        }
        Value::Object(o) => {
            out.push('{');
            let fields = t.fields();
            let mut keys: Vec<&String> = o.keys().collect();
            // Declared fields in their order; a map's keys (and anything else), sorted.
            keys.sort_by_key(|k| {
                (
                    fields.iter().position(|f| f == k).unwrap_or(usize::MAX),
                    (*k).clone(),
                )
            });
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                let child = t.child(k);
                write_value(&o[k], child, Some(k), out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, t, None, out);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

/// A string as Go escapes it: quotes, backslashes, control characters, `<`, `>`, `&`,
/// U+2028 and U+2029.
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_go_escapes_them() {
        let mut out = String::new();
        write_string("a<b>&\"c\"\\\n\u{1}\u{2028}é", &mut out);
        assert_eq!(out, r#""a\u003cb\u003e\u0026\"c\"\\\n\u0001\u2028é""#);
    }

    #[test]
    fn fields_keep_their_declared_order_and_maps_sort() {
        let v = serde_json::json!({
            "image": "x",
            "command": null,
            "networks": {"b": null, "a": {"priority": 1, "aliases": ["z"]}},
            "ports": [{"target": 80, "mode": "ingress", "published": "8080"}],
            "environment": {"B": "2", "A": "1"},
        });
        let mut out = String::new();
        write_go(&v, Struct::Service, &mut out);
        assert_eq!(
            out,
            r#"{"command":null,"environment":{"A":"1","B":"2"},"image":"x","networks":{"a":{"aliases":["z"],"priority":1},"b":null},"ports":[{"mode":"ingress","target":80,"published":"8080"}]}"#
        );
    }
}
