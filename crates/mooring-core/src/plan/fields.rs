//! The fields that differ between the spec a container was created from and the one
//! the repository now declares, as people read them: `ports: 8080:80 → 8081:80`,
//! `labels.tier: web → api`, `command: [sleep, 1] → [sleep, 2]` (never environment
//! values: those are named only, see `containers`).

use crate::mask::EnvMask;
use serde_json::Value;

/// Appends `path: old → new` for each leaf of `old` and `new` that differs.
/// The fields that differ, as `(path, old, new)` in people's words (no masking: the
/// caller masks, as the view does).
pub(crate) fn changed_fields(old: &Value, new: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    collect(old, new, "", &mut out);
    out
}

fn collect(old: &Value, new: &Value, path: &str, out: &mut Vec<(String, String, String)>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                collect(
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    &p,
                    out,
                );
            }
        }
        _ if path == "files_hash" => out.push((
            FILES.into(),
            "previous content".into(),
            "new content".into(),
        )),
        // A flag left out is false (it is serialized only when set).
        (Value::Null, Value::Bool(_)) | (Value::Bool(_), Value::Null) => out.push((
            path.to_string(),
            show(
                path,
                if old.is_null() {
                    &Value::Bool(false)
                } else {
                    old
                },
            ),
            show(
                path,
                if new.is_null() {
                    &Value::Bool(false)
                } else {
                    new
                },
            ),
        )),
        _ => out.push((path.to_string(), show(path, old), show(path, new))),
    }
}

/// Appends `path: old → new` for each field that differs; a value that holds one of
/// the app's secrets is masked (`mask`).
pub(super) fn changes(old: &Value, new: &Value, mask: Option<&EnvMask>, out: &mut Vec<String>) {
    for (path, was, now) in changed_fields(old, new) {
        if path == FILES {
            // A digest says nothing to a person; what it covers does.
            out.push(FILES_CHANGED.into());
            continue;
        }
        // Both sides are masked when either is (the old value of a secret is one).
        let name = path.strip_prefix("environment.").unwrap_or(&path);
        match mask {
            Some(m) if m.masks(name, &was) || m.masks(name, &now) => {
                out.push(format!("{path}: {} → {}", m.masked(&was), m.masked(&now)))
            }
            _ => out.push(format!("{path}: {was} → {now}")),
        }
    }
}

/// What a changed `files_hash` says before the caller names the files.
pub(super) const FILES_CHANGED: &str = "content of mounted repository files changed";

/// How `files_hash` reads in a comparison.
const FILES: &str = "mounted repository files";

/// A value as people read it: plain text, ports and mounts in Compose's short syntax,
/// `none` for nothing.
fn show(path: &str, v: &Value) -> String {
    match v {
        Value::Null => "none".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) if path == "ports" => {
            items.iter().map(port).collect::<Vec<_>>().join(", ")
        }
        Value::Array(items) if path == "volumes" => {
            items.iter().map(mount).collect::<Vec<_>>().join(", ")
        }
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|i| show("", i))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

fn port(p: &Value) -> String {
    let target = p["target"].to_string();
    let proto = p["protocol"].as_str().unwrap_or("tcp");
    let published = p["published"].as_str();
    let host = p["host_ip"].as_str();
    let mut s = match (host, published) {
        (Some(h), Some(pb)) => format!("{h}:{pb}:{target}"),
        (None, Some(pb)) => format!("{pb}:{target}"),
        _ => target,
    };
    if proto != "tcp" {
        s.push('/');
        s.push_str(proto);
    }
    s
}

fn mount(m: &Value) -> String {
    let mut s = format!(
        "{}:{}",
        m["source"].as_str().unwrap_or(""),
        m["target"].as_str().unwrap_or("")
    );
    if m["read_only"] == Value::Bool(true) {
        s.push_str(":ro");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_each_changed_field_with_old_and_new() {
        let old = json!({"image": "web:1", "ports": [{"target": 80, "published": "8080", "protocol": "tcp"}], "labels": {"tier": "web"}, "command": ["sleep", "1"]});
        let new = json!({"image": "web:1", "ports": [{"target": 80, "published": "8081", "protocol": "tcp"}], "labels": {"tier": "api", "new": "x"}, "command": ["sleep", "2"], "user": "1000"});
        let mut out = Vec::new();
        changes(&old, &new, None, &mut out);
        // A value holding a secret is masked.
        let mask = EnvMask::new(["hunter2".to_string()], [], b"k");
        let mut masked = Vec::new();
        changes(
            &json!({"command": ["login", "hunter2"]}),
            &json!({"command": ["login", "other"]}),
            Some(&mask),
            &mut masked,
        );
        assert!(masked[0].starts_with("command: *** ("), "{masked:?}");
        assert!(!masked[0].contains("hunter2"));
        assert_eq!(
            out,
            [
                "command: [sleep, 1] → [sleep, 2]",
                "labels.new: none → x",
                "labels.tier: web → api",
                "ports: 8080:80 → 8081:80",
                "user: none → 1000",
            ]
        );
    }
}
