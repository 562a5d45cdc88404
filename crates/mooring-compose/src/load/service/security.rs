//! What a service may do on the host besides its mounts: `cap_add` (positions kept for
//! the policy), `cap_drop`, `read_only`, a seccomp profile file from the repository.

use super::super::files::path_error;
use super::super::Decoder;
use crate::decode::*;
use crate::error::LoadError;
use crate::paths::{inside_file, resolve_inside};
use crate::yaml::{Node, Value};
use mooring_core::policy::capability;

impl Decoder<'_> {
    /// Records where each added capability was written (`services.S.cap_add.CAP`), and
    /// the security option that lifts a protection (`services.S.security_opt`).
    pub(super) fn policy_positions(&mut self, n: &Node, what: &str) {
        if let Some(Value::Seq(items)) = n.get("cap_add").map(|c| &c.value) {
            for item in items {
                if let Some(cap) = item.text() {
                    self.positions.insert(
                        format!("{what}.cap_add.{}", capability(cap)),
                        item.pos.to_string(),
                    );
                }
            }
        }
        // The first security option the policy may refuse.
        if let Some(Value::Seq(items)) = n.get("security_opt").map(|c| &c.value) {
            if let Some(item) = items
                .iter()
                .find(|i| i.text().is_some_and(mooring_core::policy::lifts_protection))
            {
                self.positions
                    .insert(format!("{what}.security_opt"), item.pos.to_string());
            }
        }
    }
}

/// `key` (`cap_add` or `cap_drop`): a list of capabilities (empty when absent).
pub(super) fn capabilities(n: &Node, what: &str, key: &str) -> Result<Vec<String>, LoadError> {
    Ok(n.get(key)
        .map(|c| string_list(c, &format!("{what}.{key}")))
        .transpose()?
        .unwrap_or_default())
}

/// `read_only` (default false).
pub(super) fn read_only(n: &Node, what: &str) -> Result<bool, LoadError> {
    Ok(n.get("read_only")
        .map(|b| boolean(b, &format!("{what}.read_only")))
        .transpose()?
        .unwrap_or(false))
}

impl Decoder<'_> {
    /// The seccomp profile a `security_opt: seccomp=FILE` entry names: a JSON file
    /// inside the repository (relative to the project folder), read bounded and
    /// compacted, which the Engine receives in place of the path — as the Docker CLI
    /// sends it. `None` without such an entry (`unconfined` and `builtin` name none).
    pub(super) fn seccomp_profile(
        &self,
        n: &Node,
        what: &str,
    ) -> Result<Option<String>, LoadError> {
        let w = format!("{what}.security_opt");
        let Some(Value::Seq(items)) = n.get("security_opt").map(|s| &s.value) else {
            return Ok(None);
        };
        for item in items {
            let Some(path) = item
                .text()
                .and_then(mooring_core::policy::seccomp_profile_path)
            else {
                continue;
            };
            if std::path::Path::new(path).is_absolute() {
                return Err(err(item, format!("{w}: seccomp profile {path} must be a file inside the repository, relative to the project folder")));
            }
            let root = &self.snapshot.root;
            let full = resolve_inside(root, &self.snapshot.project_dir, path)
                .and_then(|full| inside_file(root, &full))
                .map_err(|e| path_error(e, path, "seccomp profile", Some(&item.pos)))?
                .ok_or_else(|| err(item, format!("{w}: seccomp profile {path} not found")))?;
            let text = self
                .snapshot
                .read(&full)
                .map_err(|e| err(item, format!("{w}: {}", e.message)))?;
            if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
                return Err(err(
                    item,
                    format!("{w}: seccomp profile {path} is not JSON ({e})"),
                ));
            }
            return Ok(Some(compact_json(&text)));
        }
        Ok(None)
    }
}

/// Valid JSON without the whitespace between tokens, everything else as written (Go's
/// `json.Compact`, which the Docker CLI applies to a seccomp profile).
fn compact_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if !c.is_whitespace() {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn compact_json_keeps_strings_and_order() {
        assert_eq!(
            super::compact_json("{ \"b\" : [1, 2],\n \"a\": \"x \\\" y\" }"),
            "{\"b\":[1,2],\"a\":\"x \\\" y\"}"
        );
    }
}
