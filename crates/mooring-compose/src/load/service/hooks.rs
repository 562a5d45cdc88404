//! `post_start` and `pre_stop`: commands run inside the container after it starts and
//! before it stops (`command`, `user`, `privileged`, `working_dir`, `environment`).

use super::super::Decoder;
use super::command::command;
use crate::decode::*;
use crate::error::LoadError;
use crate::yaml::Node;
use mooring_core::Hook;

impl Decoder<'_> {
    /// The service's hooks under `key` (`post_start` or `pre_stop`).
    pub(super) fn hooks(
        &mut self,
        n: &Node,
        what: &str,
        key: &str,
    ) -> Result<Vec<Hook>, LoadError> {
        let (items, w) = items(n, what, key)?;
        if let Some(list) = n.get(key) {
            self.positions.insert(w.clone(), list.pos.to_string());
        }
        let mut out = Vec::new();
        for item in items {
            check_keys(
                item,
                &w,
                &[
                    "command",
                    "user",
                    "privileged",
                    "working_dir",
                    "environment",
                ],
            )?;
            let cmd = command(item, &w, "command")?
                .filter(|c| !c.is_empty())
                .ok_or_else(|| err(item, format!("{w}: `command` is required")))?;
            let text = |k: &str| {
                item.get(k)
                    .map(|v| string(v, &format!("{w}.{k}")))
                    .transpose()
            };
            out.push(Hook {
                command: cmd,
                user: text("user")?,
                privileged: item
                    .get("privileged")
                    .map(|b| boolean(b, &format!("{w}.privileged")))
                    .transpose()?
                    .unwrap_or(false),
                working_dir: text("working_dir")?,
                environment: self
                    .string_map(item.get("environment"), &format!("{w}.environment"))?,
            });
        }
        Ok(out)
    }
}
