//! Printing a rendered project, like `docker compose config`: JSON, or YAML through
//! `yaml-rust2`'s emitter. Values decrypted from the repository print as `***`.

use mooring_core::Project;
use yaml_rust2::yaml::{Hash, Yaml};
use yaml_rust2::YamlEmitter;

/// The project as JSON, in `docker compose config`'s form.
pub fn to_json(project: &Project) -> serde_json::Value {
    let mut v = serde_json::to_value(project).unwrap_or(serde_json::Value::Null);
    if let Some(services) = v.get_mut("services").and_then(|s| s.as_object_mut()) {
        for (name, svc) in services.iter_mut() {
            compose_form(project, name, svc);
            if let Some(s) = project.services.get(name) {
                as_written(s, svc);
            }
        }
    }
    // Only what a service uses, as Compose prints a project.
    let used_volumes: Vec<&str> = project
        .services
        .values()
        .flat_map(|s| &s.mounts)
        .map(|m| m.source.as_str())
        .collect();
    if let Some(vols) = v.get_mut("volumes").and_then(|n| n.as_object_mut()) {
        vols.retain(|key, _| {
            project
                .volumes
                .get(key)
                .is_some_and(|vol| used_volumes.contains(&vol.name.as_str()))
        });
        if vols.is_empty() {
            v.as_object_mut().map(|o| o.remove("volumes"));
        }
    }
    for (section, refs) in [
        (
            "secrets",
            project
                .services
                .values()
                .flat_map(|s| s.secret_refs())
                .collect::<Vec<_>>(),
        ),
        (
            "configs",
            project.services.values().flat_map(|s| &s.configs).collect(),
        ),
    ] {
        if let Some(files) = v.get_mut(section).and_then(|n| n.as_object_mut()) {
            files.retain(|key, _| refs.iter().any(|r| r.source == *key));
            if files.is_empty() {
                v.as_object_mut().map(|o| o.remove(section));
            }
        }
    }
    // Every network with its `ipam` (empty when not set), as Compose prints them.
    for net in v
        .get_mut("networks")
        .and_then(|n| n.as_object_mut())
        .into_iter()
        .flat_map(|n| n.values_mut())
        .filter_map(|n| n.as_object_mut())
    {
        net.entry("ipam").or_insert(serde_json::json!({}));
    }
    if !project.secret_values.is_empty() {
        mask(&mut v, &project.secret_values);
    }
    v
}

/// Replaces every string holding a decrypted value with `***`: a render is printed,
/// and what was encrypted in the repository never is.
fn mask(v: &mut serde_json::Value, secrets: &mooring_core::mask::SecretValues) {
    use serde_json::Value as J;
    let holds = |text: &str| secrets.iter().any(|x| text.contains(x));
    // A value read as a number or a flag (an unquoted `${PIN}` in an extension).
    if matches!(v, J::Number(_) | J::Bool(_)) && holds(&v.to_string()) {
        *v = "***".into();
        return;
    }
    match v {
        J::String(s) if holds(s) => *s = "***".into(),
        J::Array(items) => items.iter_mut().for_each(|i| mask(i, secrets)),
        J::Object(map) => map.values_mut().for_each(|i| mask(i, secrets)),
        _ => {}
    }
}

/// A service as Compose prints it where Mooring's own form differs: networks without
/// their Docker name and the implicit alias (`null` when nothing else is set), ports
/// with `mode: ingress`, named volumes by their key with `volume: {}`, short binds with
/// `bind.create_host_path`, `depends_on` without `restart: false`, `extra_hosts` as
/// `HOST=IP`.
fn compose_form(project: &Project, name: &str, svc: &mut serde_json::Value) {
    use serde_json::{json, Value};
    let service = project.services.get(name);
    if let Some(nets) = svc.get_mut("networks").and_then(Value::as_object_mut) {
        for (key, net) in nets.iter_mut() {
            let mapping = service
                .and_then(|s| s.networks.get(key))
                .is_some_and(|n| n.written_as_mapping);
            if let Some(o) = net.as_object_mut() {
                o.remove("name");
                if let Some(a) = o.get_mut("aliases").and_then(Value::as_array_mut) {
                    a.retain(|x| x != name);
                    if a.is_empty() {
                        o.remove("aliases");
                    }
                }
                if o.is_empty() && !mapping {
                    *net = Value::Null;
                }
            }
        }
    }
    for port in svc
        .get_mut("ports")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(o) = port.as_object_mut() {
            o.entry("mode").or_insert(json!("ingress"));
        }
    }
    for m in svc
        .get_mut("volumes")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let Some(o) = m.as_object_mut() else { continue };
        match o.get("type").and_then(Value::as_str) {
            Some("volume") => {
                let key = o
                    .get("source")
                    .and_then(Value::as_str)
                    .and_then(|docker| project.volumes.iter().find(|(_, v)| v.name == docker));
                match key {
                    // Compose names anonymous volumes itself: no source.
                    Some((_, v)) if v.anonymous => {
                        o.remove("source");
                    }
                    Some((k, _)) => {
                        o.insert("source".into(), json!(k));
                    }
                    None => {}
                }
                o.entry("volume").or_insert(json!({}));
            }
            Some("bind") => {
                o.entry("bind")
                    .or_insert(json!({}))
                    .as_object_mut()
                    .map(|b| b.entry("create_host_path").or_insert(json!(true)));
            }
            _ => {}
        }
    }
    for dep in svc
        .get_mut("depends_on")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|d| d.values_mut())
    {
        if let Some(o) = dep.as_object_mut() {
            if o.get("restart") == Some(&json!(false)) {
                o.remove("restart");
            }
        }
    }
    for host in svc
        .get_mut("extra_hosts")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some((h, ip)) = host.as_str().and_then(|s| s.split_once(':')) {
            *host = json!(format!("{h}={ip}"));
        }
    }
}

/// One service as `docker compose config` prints it, its values unmasked (for
/// Compose's config hash, never printed).
pub(crate) fn service_json(project: &Project, svc: &mooring_core::Service) -> serde_json::Value {
    let mut v = serde_json::to_value(svc).unwrap_or(serde_json::Value::Null);
    compose_form(project, &svc.name, &mut v);
    as_written(svc, &mut v);
    v
}

/// A service's keys as the file wrote them where Mooring keeps another form
/// (`AsWritten`), and without what only Mooring keeps (file hashes, the inline files
/// and mounts that secrets and configs became).
fn as_written(s: &mooring_core::Service, svc: &mut serde_json::Value) {
    use serde_json::{json, Value};
    let Some(o) = svc.as_object_mut() else { return };
    let w = &s.written;
    for key in ["command", "entrypoint"] {
        o.entry(key).or_insert(Value::Null);
    }
    for key in [
        "files_hash",
        "inline_files",
        "memory",
        "nano_cpus",
        "device_reservations",
    ] {
        o.remove(key);
    }
    if let Some(b) = o.get_mut("build").and_then(Value::as_object_mut) {
        b.remove("inputs");
    }
    if !w.image {
        o.remove("image");
    }
    if o.get("networks")
        .is_some_and(|n| n.as_object().is_some_and(|n| n.is_empty()))
    {
        o.remove("networks");
    }
    match &w.restart {
        Some(r) => o.insert("restart".into(), json!(r)),
        None => o.remove("restart"),
    };
    if w.pull_policy.is_none() {
        o.remove("pull_policy");
    }
    if let Some(m) = w.mem_limit {
        o.insert("mem_limit".into(), json!(m.to_string()));
    }
    if let Some(c) = w.cpus {
        o.insert("cpus".into(), crate::decode::go_number(c));
    }
    if let Some(d) = &w.deploy {
        o.insert("deploy".into(), d.clone());
        // What only `deploy` set is printed there, not as the service's own key.
        let limits = &d["resources"];
        for (key, set) in [
            ("mem_reservation", &limits["reservations"]["memory"]),
            ("pids_limit", &limits["limits"]["pids"]),
        ] {
            if !set.is_null() && !w.own_keys.iter().any(|k| k == key) {
                o.remove(key);
            }
        }
    }
    if !w.unset_environment.is_empty() {
        let env = o.entry("environment").or_insert(json!({}));
        if let Some(env) = env.as_object_mut() {
            for name in &w.unset_environment {
                env.insert(name.clone(), Value::Null);
            }
        }
    }
    if s.healthcheck.as_ref().is_some_and(|h| h.test == ["NONE"]) && w.healthcheck_disabled {
        o.insert("healthcheck".into(), json!({"disable": true}));
    }
    if let Some(hosts) = o.get_mut("extra_hosts").and_then(Value::as_array_mut) {
        hosts.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    }
    // Secrets by their default target, as Compose prints them; the mounts they became
    // are not the file's.
    if let Some(refs) = o.get_mut("secrets").and_then(Value::as_array_mut) {
        for r in refs.iter_mut().filter_map(Value::as_object_mut) {
            if !r.contains_key("target") {
                let source = r.get("source").and_then(Value::as_str).unwrap_or_default();
                let target = format!("/run/secrets/{source}");
                r.insert("target".into(), json!(target));
            }
        }
    }
    let file_targets: Vec<String> = s
        .secrets
        .iter()
        .map(|r| r.container_path(true))
        .chain(s.configs.iter().map(|r| r.container_path(false)))
        .collect();
    // Long-syntax tmpfs mounts where the file wrote them, not under `tmpfs`.
    if !w.volume_tmpfs.is_empty() {
        if let Some(list) = o.get_mut("tmpfs").and_then(Value::as_array_mut) {
            list.retain(|t| !w.volume_tmpfs.iter().any(|(_, _, s)| t == s));
            if list.is_empty() {
                o.remove("tmpfs");
            }
        }
        let mounts = o.entry("volumes").or_insert(json!([]));
        if let Some(mounts) = mounts.as_array_mut() {
            for (at, mount, _) in &w.volume_tmpfs {
                mounts.insert((*at).min(mounts.len()), mount.clone());
            }
        }
    }
    if let Some(mounts) = o.get_mut("volumes").and_then(Value::as_array_mut) {
        mounts.retain(|m| {
            !(m["type"] == "bind"
                && m["target"]
                    .as_str()
                    .is_some_and(|t| file_targets.iter().any(|f| f == t)))
        });
        if mounts.is_empty() {
            o.remove("volumes");
        }
    }
}

/// The project as a YAML document.
pub fn to_yaml(project: &Project) -> String {
    let yaml = json_to_yaml(&to_json(project));
    let mut out = String::new();
    let mut emitter = YamlEmitter::new(&mut out);
    // Writing to a String cannot fail.
    let _ = emitter.dump(&yaml);
    out.push('\n');
    out.strip_prefix("---\n").map(str::to_string).unwrap_or(out)
}

fn json_to_yaml(v: &serde_json::Value) -> Yaml {
    use serde_json::Value as J;
    match v {
        J::Null => Yaml::Null,
        J::Bool(b) => Yaml::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        J::String(s) => Yaml::String(s.clone()),
        J::Array(a) => Yaml::Array(a.iter().map(json_to_yaml).collect()),
        J::Object(o) => {
            let mut h = Hash::new();
            for (k, v) in o {
                h.insert(Yaml::String(k.clone()), json_to_yaml(v));
            }
            Yaml::Hash(h)
        }
    }
}
