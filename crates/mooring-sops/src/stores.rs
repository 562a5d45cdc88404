//! The formats SOPS stores files in, read into a [`Node`] tree plus [`Metadata`] and
//! written back as `sops decrypt` writes them:
//! - YAML: the document's `sops` mapping (parsed with the Compose loader's bounded
//!   parser; plain scalars typed as yaml.v3 types them);
//! - JSON: the object's `sops` member (order kept);
//! - binary: JSON with one `data` value, written back as its raw bytes;
//! - dotenv: `KEY=VALUE` lines (`\n` in a value is a newline), metadata in flattened
//!   `sops_…` keys, `#` lines are comments (left out of the plaintext, as they are
//!   out of the MAC).
//! - INI: `[section]`s of `key = value` (keys before any header are the `DEFAULT`
//!   section), metadata in `[sops]` with flattened keys; the common subset of
//!   gopkg.in/ini.v1's syntax (one line per value, `;`/`#` comments, one pair of
//!   quotes stripped) — a multi-line (`"""`) or continued (`\`) value is refused.

use crate::metadata::{self, Metadata};
use crate::tree::{format_float, Node};
use crate::SopsError;
use mooring_compose::yaml::{self, Value};
use std::sync::Arc;

/// How a SOPS file is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Dotenv,
    Binary,
    Ini,
}

/// The format of `bytes` if they hold SOPS metadata (`None`: not encrypted).
pub(crate) fn detect(bytes: &[u8], path: &str) -> Option<Format> {
    let text = std::str::from_utf8(bytes).ok()?;
    let trimmed = text.trim_start();
    if !text.contains("ENC[AES256_GCM,") {
        return None;
    }
    if trimmed.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        let obj = v.as_object()?;
        obj.get("sops")?.as_object()?;
        let binary = obj.len() == 2 && obj.contains_key("data") && !path.ends_with(".json");
        return Some(if binary { Format::Binary } else { Format::Json });
    }
    if text.lines().any(|l| l.starts_with("sops_mac=")) {
        return Some(Format::Dotenv);
    }
    if text.lines().any(|l| l.trim_end() == "[sops]") {
        return Some(Format::Ini);
    }
    if text.lines().any(|l| l.trim_end() == "sops:") {
        return Some(Format::Yaml);
    }
    None
}

/// Reads `bytes` stored as `format`: the data's branches and the metadata.
pub(crate) fn read(bytes: &[u8], format: Format) -> Result<(Vec<Node>, Metadata), SopsError> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| SopsError::Format("it is not UTF-8 text".into()))?;
    let (data, meta) = match format {
        Format::Yaml => read_yaml(text)?,
        Format::Json | Format::Binary => read_json(text)?,
        Format::Dotenv => read_dotenv(text)?,
        Format::Ini => read_ini(text)?,
    };
    Ok((vec![data], Metadata::from_node(&meta)?))
}

/// Splits the `sops` entry off a mapping.
fn split_metadata(node: Node) -> Result<(Node, Node), SopsError> {
    let Node::Map(mut items) = node else {
        return Err(SopsError::Format("its top level is not a mapping".into()));
    };
    let i = items
        .iter()
        .position(|(k, _)| k == "sops")
        .ok_or_else(|| SopsError::Format("it has no `sops` metadata".into()))?;
    let (_, meta) = items.remove(i);
    Ok((Node::Map(items), meta))
}

fn read_yaml(text: &str) -> Result<(Node, Node), SopsError> {
    let file: Arc<str> = Arc::from("sops file");
    let doc = yaml::parse(text, &file).map_err(|e| SopsError::Format(e.to_string()))?;
    split_metadata(from_yaml(doc))
}

/// A YAML node as yaml.v3 decodes it into Go values.
fn from_yaml(node: yaml::Node) -> Node {
    match node.value {
        Value::Null => Node::Null,
        Value::Seq(items) => Node::List(items.into_iter().map(from_yaml).collect()),
        Value::Map(items) => Node::Map(
            items
                .into_iter()
                .map(|(k, v)| (k.text().unwrap_or_default().to_string(), from_yaml(v)))
                .collect(),
        ),
        Value::Scalar { text, plain: false } => Node::Str(text),
        Value::Scalar { text, plain: true } => plain_scalar(text),
    }
}

/// yaml.v3's resolution of a plain scalar (the core schema).
fn plain_scalar(text: String) -> Node {
    match text.as_str() {
        "true" | "True" | "TRUE" => return Node::Bool(true),
        "false" | "False" | "FALSE" => return Node::Bool(false),
        "" | "~" | "null" | "Null" | "NULL" => return Node::Null,
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Node::Int(i);
    }
    let numeric = text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
    match text.parse::<f64>() {
        Ok(f) if numeric => Node::Float(f),
        _ => Node::Str(text),
    }
}

fn read_json(text: &str) -> Result<(Node, Node), SopsError> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| SopsError::Format(format!("its JSON is broken: {e}")))?;
    split_metadata(from_json(v))
}

fn from_json(v: serde_json::Value) -> Node {
    use serde_json::Value as J;
    match v {
        J::Null => Node::Null,
        J::Bool(b) => Node::Bool(b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Node::Int(i),
            None => Node::Float(n.as_f64().unwrap_or_default()),
        },
        J::String(s) => Node::Str(s),
        J::Array(items) => Node::List(items.into_iter().map(from_json).collect()),
        J::Object(items) => Node::Map(items.into_iter().map(|(k, v)| (k, from_json(v))).collect()),
    }
}

fn read_dotenv(text: &str) -> Result<(Node, Node), SopsError> {
    let mut data = Vec::new();
    let mut meta = Vec::new();
    for (n, line) in text.split('\n').enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| SopsError::Format(format!("line {} has no `=`", n + 1)))?;
        let value = value.replace("\\n", "\n");
        match key.strip_prefix("sops_") {
            Some(k) => meta.push((k.to_string(), Node::Str(value))),
            None => data.push((key.to_string(), Node::Str(value))),
        }
    }
    if meta.is_empty() {
        return Err(SopsError::Format("it has no `sops_` metadata".into()));
    }
    Ok((Node::Map(data), metadata::unflatten(meta)?))
}

fn read_ini(text: &str) -> Result<(Node, Node), SopsError> {
    let mut sections: Vec<(String, Vec<(String, Node)>)> = vec![("DEFAULT".into(), Vec::new())];
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            sections.push((name.trim().to_string(), Vec::new()));
            continue;
        }
        let at = line
            .find(['=', ':'])
            .ok_or_else(|| SopsError::Format(format!("line {} is not `key = value`", n + 1)))?;
        let key = line[..at].trim().to_string();
        let mut value = line[at + 1..].trim();
        if value.starts_with("\"\"\"") || value.starts_with('`') || value.ends_with('\\') {
            return Err(SopsError::Unsupported(format!(
                "line {} holds a multi-line INI value, which Mooring does not read; keep each value on one line",
                n + 1
            )));
        }
        let quoted = value.len() >= 2
            && ((value.starts_with('"') && value.ends_with('"'))
                || (value.starts_with('\'') && value.ends_with('\'')));
        if quoted {
            value = &value[1..value.len() - 1];
        } else if let Some(i) = value.find(['#', ';']) {
            value = value[..i].trim_end();
        }
        if let Some(section) = sections.last_mut() {
            // Metadata values carry their newlines as `\n` (sops's EscapeNewlines).
            let value = match section.0.as_str() {
                "sops" => value.replace("\\n", "\n"),
                _ => value.to_string(),
            };
            section.1.push((key, Node::Str(value)));
        }
    }
    let i = sections
        .iter()
        .position(|(name, _)| name == "sops")
        .ok_or_else(|| SopsError::Format("it has no [sops] metadata section".into()))?;
    let (_, meta) = sections.remove(i);
    let data = sections
        .into_iter()
        .map(|(name, keys)| (name, Node::Map(keys)))
        .collect();
    Ok((Node::Map(data), metadata::unflatten(meta)?))
}

/// Writes the decrypted branches in `format`.
pub(crate) fn write(branches: &[Node], format: Format) -> Result<Vec<u8>, SopsError> {
    let Some(data) = branches.first() else {
        return Ok(Vec::new());
    };
    match format {
        Format::Binary => match data {
            Node::Map(items) => match items.iter().find(|(k, _)| k == "data").map(|(_, v)| v) {
                Some(Node::Bytes(b)) => Ok(b.clone()),
                Some(Node::Str(s)) => Ok(s.clone().into_bytes()),
                _ => Err(SopsError::Format(
                    "a binary file needs one `data` value".into(),
                )),
            },
            _ => Err(SopsError::Format(
                "a binary file needs one `data` value".into(),
            )),
        },
        Format::Json => {
            let mut out = serde_json::to_vec_pretty(&to_json(data))
                .map_err(|e| SopsError::Format(e.to_string()))?;
            out.push(b'\n');
            Ok(out)
        }
        Format::Dotenv => {
            let Node::Map(items) = data else {
                return Err(SopsError::Format(
                    "a dotenv file is a list of KEY=VALUE".into(),
                ));
            };
            let mut out = String::new();
            for (k, v) in items {
                let value = match v {
                    Node::Str(s) => s.replace('\n', "\\n"),
                    other => scalar_text(other),
                };
                out.push_str(&format!("{k}={value}\n"));
            }
            Ok(out.into_bytes())
        }
        Format::Yaml => {
            let mut out = String::new();
            let mut emitter = yaml_rust2::YamlEmitter::new(&mut out);
            emitter.multiline_strings(true);
            emitter
                .dump(&to_yaml(data))
                .map_err(|e| SopsError::Format(format!("{e:?}")))?;
            // The emitter starts with a document marker and ends without a newline.
            let body = out.strip_prefix("---\n").unwrap_or(&out);
            Ok(format!("{body}\n").into_bytes())
        }
        Format::Ini => {
            let Node::Map(sections) = data else {
                return Err(SopsError::Format(
                    "an INI file is a list of sections".into(),
                ));
            };
            let mut out = String::new();
            for (name, keys) in sections {
                let Node::Map(keys) = keys else { continue };
                if name == "DEFAULT" && keys.is_empty() {
                    continue;
                }
                if name != "DEFAULT" {
                    out.push_str(&format!("[{name}]\n"));
                }
                for (k, v) in keys {
                    out.push_str(&format!("{k} = {}\n", scalar_text(v)));
                }
                out.push('\n');
            }
            Ok(out.into_bytes())
        }
    }
}

fn scalar_text(node: &Node) -> String {
    match node {
        Node::Str(s) => s.clone(),
        Node::Int(i) => i.to_string(),
        Node::Float(f) => format_float(*f),
        Node::Bool(b) => b.to_string(),
        Node::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Node::Null => String::new(),
        Node::Map(_) | Node::List(_) => String::new(),
    }
}

fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match node {
        Node::Null => J::Null,
        Node::Bool(b) => J::Bool(*b),
        Node::Int(i) => J::from(*i),
        // Go's encoding/json writes a whole float64 without a fraction (`7`, not `7.0`).
        Node::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => J::from(*f as i64),
        Node::Float(f) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .unwrap_or(J::Null),
        Node::Str(s) => J::String(s.clone()),
        Node::Bytes(b) => J::String(String::from_utf8_lossy(b).into_owned()),
        Node::List(items) => J::Array(items.iter().map(to_json).collect()),
        Node::Map(items) => J::Object(items.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

fn to_yaml(node: &Node) -> yaml_rust2::Yaml {
    use yaml_rust2::Yaml as Y;
    match node {
        Node::Null => Y::Null,
        Node::Bool(b) => Y::Boolean(*b),
        Node::Int(i) => Y::Integer(*i),
        Node::Float(f) => Y::Real(format_float(*f)),
        Node::Str(s) => Y::String(s.clone()),
        Node::Bytes(b) => Y::String(String::from_utf8_lossy(b).into_owned()),
        Node::List(items) => Y::Array(items.iter().map(to_yaml).collect()),
        Node::Map(items) => Y::Hash(
            items
                .iter()
                .map(|(k, v)| (Y::String(k.clone()), to_yaml(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_by_content() {
        assert_eq!(detect(b"A=1\n", "x.env"), None);
        assert_eq!(
            detect(
                b"A=ENC[AES256_GCM,data:x]\nsops_mac=ENC[AES256_GCM,x]\n",
                "x.env"
            ),
            Some(Format::Dotenv)
        );
        let bin = br#"{"data": "ENC[AES256_GCM,data:x]", "sops": {}}"#;
        assert_eq!(detect(bin, "cert.pem"), Some(Format::Binary));
        assert_eq!(detect(bin, "cert.json"), Some(Format::Json));
        assert_eq!(
            detect(b"a: ENC[AES256_GCM,x]\nsops:\n  mac: x\n", "a.yaml"),
            Some(Format::Yaml)
        );
    }

    #[test]
    fn plain_scalars_are_typed_as_yaml_v3_does() {
        assert_eq!(plain_scalar("5".into()), Node::Int(5));
        assert_eq!(plain_scalar("1.5".into()), Node::Float(1.5));
        assert_eq!(plain_scalar("True".into()), Node::Bool(true));
        assert_eq!(plain_scalar("inf".into()), Node::Str("inf".into()));
        assert_eq!(plain_scalar("yes".into()), Node::Str("yes".into()));
        assert_eq!(plain_scalar("~".into()), Node::Null);
    }
}
