//! A service's resources: `deploy.resources.limits` (`cpus`, `memory`), with Docker's
//! memory units.

use crate::decode::*;
use crate::error::LoadError;
use crate::yaml::Node;

/// The limits a service asks for; `None` = unlimited.
#[derive(Default)]
pub(super) struct Limits {
    pub(super) nano_cpus: Option<i64>,
    pub(super) memory: Option<i64>,
}

/// `deploy`: only `resources.limits` is supported.
pub(super) fn limits(n: &Node, what: &str) -> Result<Limits, LoadError> {
    let w = |k: &str| format!("{what}.{k}");
    let mut limits = Limits::default();
    let Some(d) = n.get("deploy") else {
        return Ok(limits);
    };
    check_keys(d, &w("deploy"), &["resources"])?;
    let Some(r) = d.get("resources") else {
        return Ok(limits);
    };
    check_keys(r, &w("deploy.resources"), &["limits"])?;
    let Some(l) = r.get("limits") else {
        return Ok(limits);
    };
    let lw = w("deploy.resources.limits");
    check_keys(l, &lw, &["cpus", "memory"])?;
    if let Some(c) = l.get("cpus") {
        let text = string(c, &lw)?;
        let cpus: f64 = text
            .parse()
            .ok()
            .filter(|v: &f64| *v > 0.0)
            .ok_or_else(|| err(c, format!("{lw}.cpus: invalid number of CPUs {text:?}")))?;
        limits.nano_cpus = Some((cpus * 1e9).round() as i64);
    }
    if let Some(m) = l.get("memory") {
        let text = string(m, &lw)?;
        limits.memory = Some(memory_bytes(&text).ok_or_else(|| {
            err(
                m,
                format!("{lw}.memory: invalid size {text:?} (use e.g. 512m, 1g)"),
            )
        })?);
    }
    Ok(limits)
}

/// Docker's memory units: `512m`, `1g`, `1024` (bytes), `1.5gb`.
fn memory_bytes(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let digits = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let value: f64 = s[..digits].parse().ok()?;
    let mult: f64 = match s[digits..].trim() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0f64.powi(4),
        _ => return None,
    };
    Some((value * mult) as i64)
}
