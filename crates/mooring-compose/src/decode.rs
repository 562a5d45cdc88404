//! Typed access to positioned YAML nodes, with errors that name the field and its
//! position: shared by the Compose loader and by Mooring's own configuration file.

use crate::error::LoadError;
use crate::yaml::{Node, Value};
use mooring_core::desired::GoDuration;

pub fn err(n: &Node, msg: impl Into<String>) -> LoadError {
    LoadError::at(n.pos.clone(), msg.into())
}

pub fn entries<'n>(n: &'n Node, what: &str) -> Result<&'n [(Node, Node)], LoadError> {
    match &n.value {
        Value::Map(e) => Ok(e),
        Value::Null => Ok(&[]),
        _ => Err(err(
            n,
            format!("{what} must be a mapping, found {}", n.kind()),
        )),
    }
}

pub fn key_of(k: &Node) -> &str {
    k.text().unwrap_or_default()
}

pub fn check_keys(n: &Node, what: &str, allowed: &[&str]) -> Result<(), LoadError> {
    for (k, _) in entries(n, what)? {
        let key = key_of(k);
        if !allowed.contains(&key) && !key.starts_with("x-") {
            return Err(err(
                k,
                format!(
                    "{what}: key `{key}` is not supported (supported: {})",
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

pub fn string(n: &Node, what: &str) -> Result<String, LoadError> {
    match &n.value {
        Value::Scalar { text, .. } => Ok(text.clone()),
        _ => Err(err(
            n,
            format!("{what} must be a string, found {}", n.kind()),
        )),
    }
}

pub fn boolean(n: &Node, what: &str) -> Result<bool, LoadError> {
    match n.text() {
        Some("true" | "True" | "TRUE") => Ok(true),
        Some("false" | "False" | "FALSE") => Ok(false),
        _ => Err(err(
            n,
            format!("{what} must be true or false, found {}", describe(n)),
        )),
    }
}

pub fn unsigned(n: &Node, what: &str) -> Result<u64, LoadError> {
    n.text().and_then(|t| t.parse::<u64>().ok()).ok_or_else(|| {
        err(
            n,
            format!("{what} must be a whole number, found {}", describe(n)),
        )
    })
}

/// A whole number, possibly negative (`pids_limit: -1`).
pub fn integer(n: &Node, what: &str) -> Result<i64, LoadError> {
    n.text().and_then(|t| t.parse::<i64>().ok()).ok_or_else(|| {
        err(
            n,
            format!("{what} must be a whole number, found {}", describe(n)),
        )
    })
}

/// The items of list `key` of `n` (none when absent) and the list's name for messages
/// (`what.key`); anything but a list is an error.
pub fn items<'n>(n: &'n Node, what: &str, key: &str) -> Result<(&'n [Node], String), LoadError> {
    let w = format!("{what}.{key}");
    match n.get(key) {
        None => Ok((&[], w)),
        Some(list) => match &list.value {
            Value::Seq(items) => Ok((items, w)),
            _ => Err(err(
                list,
                format!("{w} must be a list, found {}", list.kind()),
            )),
        },
    }
}

pub fn describe(n: &Node) -> String {
    match n.text() {
        Some(t) => format!("{t:?}"),
        None => n.kind().to_string(),
    }
}

pub fn string_list(n: &Node, what: &str) -> Result<Vec<String>, LoadError> {
    match &n.value {
        Value::Seq(items) => items.iter().map(|i| string(i, what)).collect(),
        Value::Null => Ok(vec![]),
        _ => Err(err(
            n,
            format!("{what} must be a list of strings, found {}", n.kind()),
        )),
    }
}

pub fn string_or_list(n: &Node, what: &str) -> Result<Vec<String>, LoadError> {
    match &n.value {
        Value::Scalar { text, .. } => Ok(vec![text.clone()]),
        _ => string_list(n, what),
    }
}

/// Go duration syntax: `1h30m`, `10s`, `500ms`, `1.5s`.
pub fn duration(n: &Node, what: &str) -> Result<GoDuration, LoadError> {
    let text = string(n, what)?;
    parse_duration(&text).ok_or_else(|| {
        err(
            n,
            format!("{what}: invalid duration {text:?} (use e.g. 10s, 1m30s, 500ms)"),
        )
    })
}

pub fn parse_duration(s: &str) -> Option<GoDuration> {
    if s == "0" {
        return Some(GoDuration(0));
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    Some(GoDuration(total.round() as u64))
}

/// `backup: on-change | never` (Mooring's `data:` config and `x-mooring` on a volume):
/// whether to back a volume up before every deploy that changes its writers.
pub fn backup_schedule(n: &Node, what: &str) -> Result<bool, LoadError> {
    let text = string(n, what)?;
    mooring_core::parse_backup_schedule(&text)
        .ok_or_else(|| err(n, format!("{what}: {text:?} (use on-change or never)")))
}

/// `retention: { keep: N, older_than: 30d }` (Mooring's `data:` config and `x-mooring`
/// on a volume).
pub fn retention(n: &Node, what: &str) -> Result<mooring_core::Retention, LoadError> {
    check_keys(n, what, &["keep", "older_than"])?;
    let mut r = mooring_core::Retention::default();
    if let Some(k) = n.get("keep") {
        let keep = unsigned(k, &format!("{what}.keep"))?;
        if keep == 0 {
            return Err(err(
                k,
                format!("{what}.keep must be at least 1 (the newest backup is always kept)"),
            ));
        }
        r.keep = Some(u32::try_from(keep).unwrap_or(u32::MAX));
    }
    if let Some(a) = n.get("older_than") {
        let text = string(a, &format!("{what}.older_than"))?;
        r.older_than_secs = Some(mooring_core::parse_age(&text).ok_or_else(|| {
            err(
                a,
                format!(
                    "{what}.older_than: {text:?} (use a number and a unit: 30d, 12h, 90m, 45s)"
                ),
            )
        })?);
    }
    Ok(r)
}

/// A YAML node as JSON, plain scalars typed as YAML reads them (numbers, booleans),
/// quoted ones strings (a value printed as Compose prints what it does not type).
pub fn as_json(n: &Node) -> serde_json::Value {
    use crate::yaml::Value as Y;
    use serde_json::Value as J;
    match &n.value {
        Y::Null => J::Null,
        Y::Seq(items) => J::Array(items.iter().map(as_json).collect()),
        Y::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| (key_of(k).to_string(), as_json(v)))
                .collect(),
        ),
        Y::Scalar { text, plain: false } => J::from(text.as_str()),
        Y::Scalar { text, .. } => {
            if let Ok(i) = text.parse::<i64>() {
                J::from(i)
            } else if let Ok(f) = text.parse::<f64>() {
                J::from(f)
            } else if let Ok(b) = text.parse::<bool>() {
                J::from(b)
            } else {
                J::from(text.as_str())
            }
        }
    }
}

/// A number as Go's JSON encoder writes a float: a whole one without a fraction (`2`,
/// not `2.0`), as `docker compose config` prints `cpus`.
pub fn go_number(f: f64) -> serde_json::Value {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        serde_json::Value::from(f as i64)
    } else {
        serde_json::Value::from(f)
    }
}
