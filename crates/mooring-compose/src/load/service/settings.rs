//! The settings Compose passes to the Engine as written (`mooring_core::Settings`):
//! `expose`, `stdin_open`, `tty`, `sysctls`, `ulimits`, `dns`, `dns_search`, `dns_opt`,
//! `domainname`, `logging`, `runtime`, `group_add`, `security_opt`; the resource
//! sizes come from `resources`.

use super::resources::Resources;
use crate::decode::*;
use crate::error::LoadError;
use crate::merge::list_to_map;
use crate::yaml::{Node, Value};
use mooring_core::{Logging, Settings, Ulimit};
use std::collections::BTreeMap;

/// A service's settings.
pub(super) fn settings(n: &Node, what: &str, r: &Resources) -> Result<Settings, LoadError> {
    let w = |k: &str| format!("{what}.{k}");
    let flag = |k: &str| -> Result<bool, LoadError> {
        Ok(n.get(k)
            .map(|b| boolean(b, &w(k)))
            .transpose()?
            .unwrap_or(false))
    };
    let list = |k: &str| -> Result<Vec<String>, LoadError> {
        Ok(n.get(k)
            .map(|l| string_or_list(l, &w(k)))
            .transpose()?
            .unwrap_or_default())
    };
    let text = |k: &str| n.get(k).map(|v| string(v, &w(k))).transpose();
    let number = |k: &str, min: i64, max: i64| -> Result<Option<i64>, LoadError> {
        let Some(v) = n.get(k) else {
            return Ok(None);
        };
        match v.text().and_then(|t| t.parse::<i64>().ok()) {
            Some(x) if (min..=max).contains(&x) => Ok(Some(x)),
            _ => Err(err(
                v,
                format!(
                    "{} must be a whole number{}, found {}",
                    w(k),
                    if max == i64::MAX {
                        format!(" from {min}")
                    } else {
                        format!(" from {min} to {max}")
                    },
                    describe(v)
                ),
            )),
        }
    };
    Ok(Settings {
        expose: expose(n, what)?,
        stdin_open: flag("stdin_open")?,
        tty: flag("tty")?,
        sysctls: sysctls(n, what)?,
        ulimits: ulimits(n, what)?,
        dns: list("dns")?,
        dns_opt: list("dns_opt")?,
        dns_search: list("dns_search")?,
        domainname: text("domainname")?,
        logging: logging(n, what)?,
        pids_limit: r.pids_limit,
        shm_size: r.shm_size,
        mem_reservation: r.mem_reservation,
        memswap_limit: r.memswap_limit,
        cpu_shares: r.cpu_shares,
        runtime: text("runtime")?,
        group_add: list("group_add")?,
        security_opt: security_opt(n, what)?,
        oom_score_adj: number("oom_score_adj", -1000, 1000)?,
        oom_kill_disable: flag("oom_kill_disable")?,
        mem_swappiness: number("mem_swappiness", 0, 100)?,
        cpu_quota: number("cpu_quota", -1, i64::MAX)?,
        cpu_period: number("cpu_period", 0, i64::MAX)?,
        cpu_rt_runtime: number("cpu_rt_runtime", -1, i64::MAX)?,
        cpu_rt_period: number("cpu_rt_period", 0, i64::MAX)?,
        cpuset: text("cpuset")?,
        storage_opt: string_map(n, what, "storage_opt")?,
        mac_address: text("mac_address")?,
        cgroup_parent: text("cgroup_parent")?,
        platform: text("platform")?,
        attach: n
            .get("attach")
            .map(|b| boolean(b, &w("attach")))
            .transpose()?,
        annotations: string_map(n, what, "annotations")?,
    })
}

/// A mapping of strings, or a list of `NAME=VALUE` (`storage_opt`, `annotations`).
fn string_map(n: &Node, what: &str, key: &str) -> Result<BTreeMap<String, String>, LoadError> {
    let Some(m) = n.get(key) else {
        return Ok(BTreeMap::new());
    };
    let w = format!("{what}.{key}");
    // A mapping, or a list of `NAME=VALUE`.
    let m = &list_to_map(m.clone(), "labels");
    let mut out = BTreeMap::new();
    for (k, v) in entries(m, &w)? {
        let name = key_of(k);
        out.insert(name.to_string(), string(v, &format!("{w}.{name}"))?);
    }
    Ok(out)
}

/// `expose`: ports or ranges, with an optional protocol (`3000`, `4000-4001/udp`).
fn expose(n: &Node, what: &str) -> Result<Vec<String>, LoadError> {
    let (items, w) = items(n, what, "expose")?;
    let mut out = Vec::new();
    for item in items {
        let text = string(item, &w)?;
        let (ports, proto) = text.split_once('/').unwrap_or((text.as_str(), "tcp"));
        let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0);
        let ok = match ports.split_once('-') {
            Some((a, b)) => port(a).zip(port(b)).is_some_and(|(a, b)| a <= b),
            None => port(ports).is_some(),
        } && matches!(proto, "tcp" | "udp" | "sctp");
        if !ok {
            return Err(err(
                item,
                format!("{w}: invalid port {text:?} (use e.g. 3000, 4000-4010 or 5000/udp)"),
            ));
        }
        out.push(text);
    }
    Ok(out)
}

/// `sysctls`: a mapping or a list of `name=value`.
fn sysctls(n: &Node, what: &str) -> Result<BTreeMap<String, String>, LoadError> {
    let Some(s) = n.get("sysctls") else {
        return Ok(BTreeMap::new());
    };
    let w = format!("{what}.sysctls");
    let s = list_to_map(s.clone(), "sysctls");
    let mut out = BTreeMap::new();
    for (k, v) in entries(&s, &w)? {
        let name = key_of(k);
        let value = match &v.value {
            Value::Scalar { text, .. } => text.clone(),
            _ => {
                return Err(err(
                    v,
                    format!(
                        "{w}.{name} must be a value (e.g. {name}=1), found {}",
                        v.kind()
                    ),
                ))
            }
        };
        out.insert(name.to_string(), value);
    }
    Ok(out)
}

/// `ulimits`: `name: N` or `name: {soft: N, hard: M}`.
pub(super) fn ulimits(n: &Node, what: &str) -> Result<BTreeMap<String, Ulimit>, LoadError> {
    let Some(u) = n.get("ulimits") else {
        return Ok(BTreeMap::new());
    };
    let w = format!("{what}.ulimits");
    let number = |n: &Node, what: &str| {
        n.text().and_then(|t| t.parse::<i64>().ok()).ok_or_else(|| {
            err(
                n,
                format!("{what} must be a whole number, found {}", describe(n)),
            )
        })
    };
    let mut out = BTreeMap::new();
    for (k, v) in entries(u, &w)? {
        let name = key_of(k);
        let lw = format!("{w}.{name}");
        let limit = match &v.value {
            Value::Map(_) => {
                check_keys(v, &lw, &["soft", "hard"])?;
                let get = |key: &str| {
                    v.get(key)
                        .ok_or_else(|| err(v, format!("{lw} needs `soft` and `hard`")))
                        .and_then(|x| number(x, &format!("{lw}.{key}")))
                };
                let (soft, hard) = (get("soft")?, get("hard")?);
                if soft > hard {
                    return Err(err(
                        v,
                        format!("{lw}: soft limit {soft} is above the hard limit {hard}"),
                    ));
                }
                Ulimit {
                    soft,
                    hard,
                    single: false,
                }
            }
            _ => {
                let n = number(v, &lw)?;
                Ulimit {
                    soft: n,
                    hard: n,
                    single: true,
                }
            }
        };
        out.insert(name.to_string(), limit);
    }
    Ok(out)
}

/// `logging`: `driver` and `options`.
fn logging(n: &Node, what: &str) -> Result<Option<Logging>, LoadError> {
    let Some(l) = n.get("logging") else {
        return Ok(None);
    };
    let w = format!("{what}.logging");
    check_keys(l, &w, &["driver", "options"])?;
    let driver = l
        .get("driver")
        .map(|d| string(d, &format!("{w}.driver")))
        .transpose()?;
    let mut options = BTreeMap::new();
    if let Some(o) = l.get("options") {
        for (k, v) in entries(o, &format!("{w}.options"))? {
            let name = key_of(k);
            options.insert(name.to_string(), string(v, &format!("{w}.options.{name}"))?);
        }
    }
    Ok(Some(Logging { driver, options }))
}

/// `security_opt`: the Engine's security options, as written (a seccomp profile file
/// is read by the decoder: see `seccomp_profile`).
fn security_opt(n: &Node, what: &str) -> Result<Vec<String>, LoadError> {
    let (items, w) = items(n, what, "security_opt")?;
    items.iter().map(|item| string(item, &w)).collect()
}
