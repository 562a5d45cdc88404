//! What a service asks of the host (`mooring_core::HostAccess`): `privileged`,
//! `network_mode`, `pid`, `ipc`, `uts`, `userns_mode`, `cgroup`, `devices`,
//! `device_cgroup_rules`, `gpus` (and `deploy`'s device reservations). Decoded
//! as Compose decodes them, with each key's position kept for the policy, which
//! decides later whether the app may have it.

use super::super::Decoder;
use crate::decode::*;
use crate::error::LoadError;
use crate::yaml::{Node, Value};
use mooring_core::{Device, DeviceRequest, HostAccess};

/// The keys this part reads.
pub(super) const KEYS: &[&str] = &[
    "privileged",
    "network_mode",
    "pid",
    "ipc",
    "uts",
    "userns_mode",
    "cgroup",
    "devices",
    "device_cgroup_rules",
    "gpus",
];

impl Decoder<'_> {
    /// A service's host access.
    pub(super) fn host_access(&mut self, n: &Node, what: &str) -> Result<HostAccess, LoadError> {
        for key in KEYS {
            if let Some(v) = n.get(key) {
                self.positions
                    .insert(format!("{what}.{key}"), v.pos.to_string());
            }
        }
        let w = |k: &str| format!("{what}.{k}");
        let mode = |k: &str, allowed: &[&str], joins: bool| -> Result<Option<String>, LoadError> {
            let Some(v) = n.get(k) else {
                return Ok(None);
            };
            let text = string(v, &w(k))?;
            let joined = joins
                && ["service:", "container:"]
                    .iter()
                    .any(|p| text.strip_prefix(p).is_some_and(|rest| !rest.is_empty()));
            if !(allowed.contains(&text.as_str()) || joined) {
                let mut forms: Vec<&str> = allowed.to_vec();
                if joins {
                    forms.extend(["service:NAME", "container:NAME"]);
                }
                return Err(err(
                    v,
                    format!("{}: {text:?} is not one of {}", w(k), forms.join(", ")),
                ));
            }
            Ok(Some(text))
        };
        Ok(HostAccess {
            privileged: n
                .get("privileged")
                .map(|b| boolean(b, &w("privileged")))
                .transpose()?
                .unwrap_or(false),
            network_mode: mode("network_mode", &["host", "none", "bridge", "default"], true)?,
            pid: mode("pid", &["host"], true)?,
            ipc: mode("ipc", &["host", "shareable", "private", "none"], true)?,
            uts: mode("uts", &["host"], false)?,
            userns_mode: mode("userns_mode", &["host"], false)?,
            cgroup: mode("cgroup", &["host", "private"], false)?,
            devices: devices(n, what)?,
            device_cgroup_rules: n
                .get("device_cgroup_rules")
                .map(|l| string_list(l, &w("device_cgroup_rules")))
                .transpose()?
                .unwrap_or_default(),
            gpus: match n.get("gpus") {
                None => vec![],
                Some(g) if g.text() == Some("all") => vec![DeviceRequest {
                    count: -1,
                    ..DeviceRequest::default()
                }],
                Some(g) => device_requests(g, &w("gpus"), false)?,
            },
            // From `deploy.resources.reservations.devices` (see `resources`).
            device_reservations: vec![],
        })
    }
}

/// A list of device requests (`gpus`, or `deploy.resources.reservations.devices`
/// where `capabilities` is `required`), as Compose reads them: `count` a number or
/// `all`, exclusive with `device_ids`; neither means all (`-1`).
pub(super) fn device_requests(
    n: &Node,
    w: &str,
    required: bool,
) -> Result<Vec<DeviceRequest>, LoadError> {
    let Value::Seq(items) = &n.value else {
        return Err(err(
            n,
            format!("{w} must be a list (or `all`), found {}", n.kind()),
        ));
    };
    let mut out = Vec::new();
    for item in items {
        check_keys(
            item,
            w,
            &["capabilities", "driver", "count", "device_ids", "options"],
        )?;
        let list = |k: &str| {
            item.get(k)
                .map(|l| string_list(l, &format!("{w}.{k}")))
                .transpose()
                .map(Option::unwrap_or_default)
        };
        let capabilities = list("capabilities")?;
        if required && item.get("capabilities").is_none() {
            return Err(err(
                item,
                format!("{w}: each device needs `capabilities` (e.g. [gpu])"),
            ));
        }
        let device_ids = list("device_ids")?;
        let count = match item.get("count") {
            Some(c) if !device_ids.is_empty() => {
                return Err(err(
                    c,
                    format!("{w}: `count` and `device_ids` are exclusive"),
                ))
            }
            Some(c) if c.text() == Some("all") => -1,
            Some(c) => integer(c, &format!("{w}.count"))?,
            None if device_ids.is_empty() => -1,
            None => 0,
        };
        let mut options = std::collections::BTreeMap::new();
        if let Some(o) = item.get("options") {
            for (k, v) in entries(o, &format!("{w}.options"))? {
                let name = key_of(k);
                options.insert(name.to_string(), string(v, &format!("{w}.options.{name}"))?);
            }
        }
        out.push(DeviceRequest {
            capabilities,
            driver: item
                .get("driver")
                .map(|d| string(d, &format!("{w}.driver")))
                .transpose()?,
            count,
            device_ids,
            options,
        });
    }
    Ok(out)
}

/// `devices`: `SOURCE[:TARGET[:PERMISSIONS]]` or `{source, target, permissions}`.
fn devices(n: &Node, what: &str) -> Result<Vec<Device>, LoadError> {
    let (items, w) = items(n, what, "devices")?;
    let perms_ok = |p: &str| !p.is_empty() && p.chars().all(|c| matches!(c, 'r' | 'w' | 'm'));
    let mut out = Vec::new();
    for item in items {
        let device = match &item.value {
            Value::Map(_) => {
                check_keys(item, &w, &["source", "target", "permissions"])?;
                let get = |k: &str| {
                    item.get(k)
                        .map(|v| string(v, &format!("{w}.{k}")))
                        .transpose()
                };
                let source = get("source")?
                    .ok_or_else(|| err(item, format!("{w}: a device needs `source`")))?;
                Device {
                    target: get("target")?.unwrap_or_else(|| source.clone()),
                    permissions: get("permissions")?.unwrap_or_else(|| "rwm".into()),
                    source,
                }
            }
            _ => {
                let text = string(item, &w)?;
                let mut parts = text.splitn(3, ':');
                let source = parts.next().unwrap_or_default().to_string();
                let (target, permissions) = match (parts.next(), parts.next()) {
                    (None, _) => (source.clone(), "rwm".to_string()),
                    (Some(p), None) if perms_ok(p) => (source.clone(), p.to_string()),
                    (Some(t), None) => (t.to_string(), "rwm".to_string()),
                    (Some(t), Some(p)) => (t.to_string(), p.to_string()),
                };
                Device {
                    source,
                    target,
                    permissions,
                }
            }
        };
        if !device.source.starts_with('/') || !device.target.starts_with('/') {
            return Err(err(
                item,
                format!("{w}: device paths must be absolute (e.g. /dev/ttyUSB0:/dev/ttyUSB0)"),
            ));
        }
        if !perms_ok(&device.permissions) {
            return Err(err(
                item,
                format!(
                    "{w}: permissions {:?} must be made of r, w and m",
                    device.permissions
                ),
            ));
        }
        out.push(device);
    }
    Ok(out)
}
