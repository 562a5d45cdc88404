//! A service's resources, as Compose sends them to the Engine: `mem_limit`, `cpus`,
//! `pids_limit` and `deploy.resources.limits` (`cpus`, `memory`, `pids`; both given,
//! they must agree, as Compose requires), `deploy.resources.reservations.memory` (or
//! `mem_reservation`, the same), `memswap_limit`, `cpu_shares`, `shm_size`, with
//! Docker's byte units.

use crate::decode::*;
use crate::error::LoadError;
use crate::yaml::Node;

/// The resources a service asks for; `None` = the Engine's default (unlimited).
#[derive(Default)]
pub(super) struct Resources {
    pub(super) nano_cpus: Option<i64>,
    pub(super) memory: Option<i64>,
    pub(super) pids_limit: Option<i64>,
    pub(super) mem_reservation: Option<i64>,
    pub(super) memswap_limit: Option<i64>,
    pub(super) cpu_shares: Option<i64>,
    pub(super) shm_size: Option<i64>,
    /// `deploy.restart_policy` as a restart policy (`restart` wins when given).
    pub(super) restart: Option<String>,
    /// What `deploy` says that a single Engine does not do (said in the plan).
    pub(super) notes: Vec<String>,
    /// `scale` as written.
    pub(super) scale: Option<u32>,
    /// How many containers run the service: `scale`, else `deploy.replicas`, else 1.
    pub(super) replicas: u32,
    /// `deploy.resources.reservations.devices`.
    pub(super) devices: Vec<mooring_core::DeviceRequest>,
    /// `mem_limit` and `cpus` as written (deploy's limits may win), and `deploy` as
    /// Compose prints it: for `render`.
    pub(super) written_mem_limit: Option<i64>,
    pub(super) written_cpus: Option<f64>,
    pub(super) written_deploy: Option<serde_json::Value>,
}

/// Every resource key of a service.
pub(super) fn resources(n: &Node, what: &str, swarm: bool) -> Result<Resources, LoadError> {
    let w = |k: &str| format!("{what}.{k}");
    let mut r = Resources {
        nano_cpus: n.get("cpus").map(|c| cpus(c, &w("cpus"))).transpose()?,
        memory: n
            .get("mem_limit")
            .map(|m| bytes(m, &w("mem_limit")))
            .transpose()?,
        pids_limit: n
            .get("pids_limit")
            .map(|p| integer(p, &w("pids_limit")))
            .transpose()?,
        mem_reservation: n
            .get("mem_reservation")
            .map(|m| bytes(m, &w("mem_reservation")))
            .transpose()?,
        memswap_limit: n
            .get("memswap_limit")
            .map(|m| swap(m, &w("memswap_limit")))
            .transpose()?,
        cpu_shares: n
            .get("cpu_shares")
            .map(|c| integer(c, &w("cpu_shares")))
            .transpose()?,
        shm_size: n
            .get("shm_size")
            .map(|s| bytes(s, &w("shm_size")))
            .transpose()?,
        restart: None,
        notes: vec![],
        scale: n.get("scale").map(|s| count(s, &w("scale"))).transpose()?,
        replicas: 1,
        devices: vec![],
        written_mem_limit: None,
        written_cpus: None,
        written_deploy: None,
    };
    r.written_mem_limit = r.memory;
    r.written_cpus = r.nano_cpus.map(|n| n as f64 / 1e9);
    let own = [r.memory, r.nano_cpus, r.pids_limit, r.mem_reservation];
    let replicas = deploy(n, what, &mut r, swarm)?;
    // A service's own key and `deploy`'s must agree, as in Compose.
    let pairs = [
        ("mem_limit", "deploy.resources.limits.memory"),
        ("cpus", "deploy.resources.limits.cpus"),
        ("pids_limit", "deploy.resources.limits.pids"),
        ("mem_reservation", "deploy.resources.reservations.memory"),
    ];
    let merged = [r.memory, r.nano_cpus, r.pids_limit, r.mem_reservation];
    for ((own, merged), (key, deploy_key)) in own.iter().zip(merged).zip(pairs) {
        if own.is_some_and(|o| Some(o) != merged) {
            return Err(err(
                n.get("deploy").unwrap_or(n),
                format!("{what}: `{key}` and `{deploy_key}` differ; give one of them, or the same value"),
            ));
        }
    }
    r.replicas = match (r.scale, replicas) {
        (Some(s), Some((d, node))) if s != d => {
            return Err(err(
                node,
                format!("{what}: `scale` ({s}) and `deploy.replicas` ({d}) differ; give one of them, or the same number"),
            ))
        }
        (Some(s), _) => s,
        (None, Some((d, _))) => d,
        (None, None) => 1,
    };
    Ok(r)
}

/// `deploy` as `docker compose up` reads it on a single Engine: `resources.limits`,
/// `resources.reservations.memory` and `devices`, `restart_policy`, `replicas` (returned with its
/// node); the Swarm-only
/// keys (`mode`, `labels`, `placement`, `update_config`, `rollback_config`,
/// `endpoint_mode`, reserved CPUs) are accepted and noted as ignored, as Compose ignores
/// them. For a Swarm (`swarm`), they are the stack's: nothing is noted, and `mode`
/// may be `global`.
fn deploy<'n>(
    n: &'n Node,
    what: &str,
    r: &mut Resources,
    swarm: bool,
) -> Result<Option<(u32, &'n Node)>, LoadError> {
    let w = |k: &str| format!("{what}.{k}");
    let Some(d) = n.get("deploy") else {
        return Ok(None);
    };
    r.written_deploy = Some(deploy_as_compose_prints(d, what)?);
    const SWARM_ONLY: [&str; 5] = [
        "labels",
        "placement",
        "update_config",
        "rollback_config",
        "endpoint_mode",
    ];
    check_keys(
        d,
        &w("deploy"),
        &[
            &["mode", "replicas", "resources", "restart_policy"][..],
            &SWARM_ONLY,
        ]
        .concat(),
    )?;
    for key in SWARM_ONLY.iter().filter(|_| !swarm) {
        if d.get(key).is_some() {
            r.notes.push(format!("{}.{key} applies to Docker Swarm only; ignored on a single Engine, as docker compose up ignores it", w("deploy")));
        }
    }
    if let Some(m) = d.get("mode") {
        let mode = string(m, &w("deploy.mode"))?;
        if mode != "replicated" && !(swarm && mode == "global") {
            return Err(err(
                m,
                format!(
                    "{}: {mode:?} needs Docker Swarm; a single Engine runs `replicated` services",
                    w("deploy.mode")
                ),
            ));
        }
    }
    let replicas = d
        .get("replicas")
        .map(|rep| count(rep, &w("deploy.replicas")).map(|c| (c, rep)))
        .transpose()?;
    if let Some(p) = d.get("restart_policy") {
        let pw = w("deploy.restart_policy");
        check_keys(p, &pw, &["condition", "delay", "max_attempts", "window"])?;
        let attempts = p
            .get("max_attempts")
            .map(|a| unsigned(a, &format!("{pw}.max_attempts")))
            .transpose()?;
        let condition = p
            .get("condition")
            .map(|c| string(c, &format!("{pw}.condition")))
            .transpose()?
            .unwrap_or_else(|| "any".into());
        r.restart = Some(match condition.as_str() {
            "none" => "no".to_string(),
            "on-failure" => match attempts {
                Some(n) if n > 0 => format!("on-failure:{n}"),
                _ => "on-failure".to_string(),
            },
            "any" => "always".to_string(),
            other => {
                return Err(err(
                    p.get("condition").unwrap_or(p),
                    format!("{pw}.condition: {other:?} is not one of none, on-failure, any"),
                ))
            }
        });
        for key in ["delay", "window"] {
            if p.get(key).is_some() {
                r.notes.push(format!(
                    "{pw}.{key} applies to Docker Swarm only; ignored on a single Engine"
                ));
            }
        }
    }
    let Some(res) = d.get("resources") else {
        return Ok(replicas);
    };
    check_keys(res, &w("deploy.resources"), &["limits", "reservations"])?;
    if let Some(l) = res.get("limits") {
        let lw = w("deploy.resources.limits");
        check_keys(l, &lw, &["cpus", "memory", "pids"])?;
        if let Some(c) = l.get("cpus") {
            r.nano_cpus = Some(cpus(c, &format!("{lw}.cpus"))?);
        }
        if let Some(m) = l.get("memory") {
            r.memory = Some(bytes(m, &format!("{lw}.memory"))?);
        }
        if let Some(p) = l.get("pids") {
            r.pids_limit = Some(integer(p, &format!("{lw}.pids"))?);
        }
    }
    if let Some(v) = res.get("reservations") {
        let rw = w("deploy.resources.reservations");
        check_keys(v, &rw, &["memory", "cpus", "devices", "generic_resources"])?;
        if let Some(m) = v.get("memory") {
            r.mem_reservation = Some(bytes(m, &format!("{rw}.memory"))?);
        }
        if v.get("cpus").is_some() {
            r.notes.push(format!(
                "{rw}.cpus applies to Docker Swarm only; ignored on a single Engine"
            ));
        }
        if let Some(d) = v.get("devices") {
            r.devices = super::host_access::device_requests(d, &format!("{rw}.devices"), true)?;
        }
        if v.get("generic_resources").is_some() {
            r.notes.push(format!(
                "{rw}.generic_resources applies to Docker Swarm only; ignored on a single Engine"
            ));
        }
    }
    Ok(replicas)
}

/// `deploy` as `docker compose config` prints it: `resources` and `placement` always,
/// sizes in bytes (as strings), CPUs as numbers, durations in Go's form, the rest as
/// written.
fn deploy_as_compose_prints(d: &Node, what: &str) -> Result<serde_json::Value, LoadError> {
    use serde_json::{json, Map, Value as J};
    let w = |k: &str| format!("{what}.deploy.{k}");
    let mut out = Map::new();
    for key in ["mode", "endpoint_mode"] {
        if let Some(v) = d.get(key) {
            out.insert(key.into(), json!(string(v, &w(key))?));
        }
    }
    if let Some(v) = d.get("replicas") {
        out.insert("replicas".into(), json!(unsigned(v, &w("replicas"))?));
    }
    if let Some(l) = d.get("labels") {
        let l = crate::merge::list_to_map(l.clone(), "labels");
        let mut labels = Map::new();
        for (k, v) in entries(&l, &w("labels"))? {
            labels.insert(key_of(k).into(), json!(v.text().unwrap_or_default()));
        }
        out.insert("labels".into(), J::Object(labels));
    }
    let mut resources = Map::new();
    if let Some(res) = d.get("resources") {
        for part in ["limits", "reservations"] {
            let Some(p) = res.get(part) else { continue };
            let pw = w(&format!("resources.{part}"));
            let mut m = Map::new();
            if let Some(c) = p.get("cpus") {
                let nano = cpus(c, &format!("{pw}.cpus"))?;
                m.insert("cpus".into(), go_number(nano as f64 / 1e9));
            }
            if let Some(b) = p.get("memory") {
                m.insert(
                    "memory".into(),
                    json!(bytes(b, &format!("{pw}.memory"))?.to_string()),
                );
            }
            if let Some(x) = p.get("pids") {
                m.insert("pids".into(), json!(integer(x, &format!("{pw}.pids"))?));
            }
            if let Some(x) = p.get("devices") {
                let devices =
                    super::host_access::device_requests(x, &format!("{pw}.devices"), true)?;
                m.insert(
                    "devices".into(),
                    serde_json::to_value(devices).unwrap_or_default(),
                );
            }
            resources.insert(part.into(), J::Object(m));
        }
    }
    out.insert("resources".into(), J::Object(resources));
    if let Some(p) = d.get("restart_policy") {
        let mut m = Map::new();
        for key in ["condition", "delay", "max_attempts", "window"] {
            let Some(v) = p.get(key) else { continue };
            let kw = w(&format!("restart_policy.{key}"));
            m.insert(
                key.into(),
                match key {
                    "delay" | "window" => json!(duration(v, &kw)?.to_string()),
                    "max_attempts" => json!(unsigned(v, &kw)?),
                    _ => json!(string(v, &kw)?),
                },
            );
        }
        out.insert("restart_policy".into(), J::Object(m));
    }
    for key in ["update_config", "rollback_config"] {
        if let Some(v) = d.get(key) {
            let mut config = as_json(v);
            // Durations in Go's form (`1m` is `1m0s`).
            for field in ["delay", "monitor"] {
                if let Some(d) = v.get(field) {
                    config[field] = json!(duration(d, &w(&format!("{key}.{field}")))?.to_string());
                }
            }
            out.insert(key.into(), config);
        }
    }
    out.insert(
        "placement".into(),
        d.get("placement").map_or_else(|| json!({}), as_json),
    );
    Ok(J::Object(out))
}

/// `replicas`/`scale`: a number of containers (0 runs none).
fn count(n: &Node, what: &str) -> Result<u32, LoadError> {
    let c = unsigned(n, what)?;
    u32::try_from(c)
        .ok()
        .filter(|c| *c <= MAX_REPLICAS)
        .ok_or_else(|| {
            err(
                n,
                format!("{what}: {c} containers is more than one Engine runs for a service here (at most {MAX_REPLICAS})"),
            )
        })
}

/// A bound on a service's containers on one Engine (a typo like `scale: 10000` would
/// otherwise create ten thousand containers).
const MAX_REPLICAS: u32 = 1000;

/// A number of CPUs (`0.5`, `2`) in units of 1e-9 CPUs (Docker's `NanoCpus`).
fn cpus(n: &Node, what: &str) -> Result<i64, LoadError> {
    let text = string(n, what)?;
    let cpus: f64 = text
        .parse()
        .ok()
        .filter(|v: &f64| *v > 0.0 && v.is_finite())
        .ok_or_else(|| err(n, format!("{what}: invalid number of CPUs {text:?}")))?;
    Ok((cpus * 1e9).round() as i64)
}

/// A byte size in Docker's units (`512m`, `1g`, `1024`).
fn bytes(n: &Node, what: &str) -> Result<i64, LoadError> {
    let text = string(n, what)?;
    memory_bytes(&text).ok_or_else(|| {
        err(
            n,
            format!("{what}: invalid size {text:?} (use e.g. 512m, 1g)"),
        )
    })
}

/// `memswap_limit`: a byte size, or `-1` for unlimited swap.
fn swap(n: &Node, what: &str) -> Result<i64, LoadError> {
    if n.text() == Some("-1") {
        return Ok(-1);
    }
    bytes(n, what)
}

/// Docker's memory units: `512m`, `1g`, `1024` (bytes), `1.5gb`.
pub(super) fn memory_bytes(s: &str) -> Option<i64> {
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
