//! What a service may do on the host besides its mounts: `cap_add` (positions kept for
//! the policy), `cap_drop`, `read_only`.

use super::super::Decoder;
use crate::decode::*;
use crate::error::LoadError;
use crate::yaml::{Node, Value};
use mooring_core::policy::capability;

impl Decoder<'_> {
    /// Records where each added capability was written (`services.S.cap_add.CAP`).
    pub(super) fn cap_add_positions(&mut self, n: &Node, what: &str) {
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
