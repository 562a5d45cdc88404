//! Printing a rendered project, like `docker compose config`: JSON, or YAML through
//! `yaml-rust2`'s emitter.

use mooring_core::Project;
use yaml_rust2::yaml::{Hash, Yaml};
use yaml_rust2::YamlEmitter;

/// The project as JSON (Compose field names).
pub fn to_json(project: &Project) -> serde_json::Value {
    serde_json::to_value(project).unwrap_or(serde_json::Value::Null)
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
