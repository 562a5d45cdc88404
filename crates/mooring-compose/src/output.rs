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
        }
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
    match v {
        J::String(s) if secrets.iter().any(|x| s.contains(x)) => *s = "***".into(),
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
    if let Some(nets) = svc.get_mut("networks").and_then(Value::as_object_mut) {
        for net in nets.values_mut() {
            if let Some(o) = net.as_object_mut() {
                o.remove("name");
                if let Some(a) = o.get_mut("aliases").and_then(Value::as_array_mut) {
                    a.retain(|x| x != name);
                    if a.is_empty() {
                        o.remove("aliases");
                    }
                }
                if o.is_empty() {
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
                let key = o.get("source").and_then(Value::as_str).and_then(|docker| {
                    project
                        .volumes
                        .iter()
                        .find(|(_, v)| v.name == docker)
                        .map(|(k, _)| k.clone())
                });
                if let Some(k) = key {
                    o.insert("source".into(), json!(k));
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
