//! A service's `healthcheck`: `test` (string → `CMD-SHELL`, or a `CMD`/`CMD-SHELL`/`NONE`
//! list), durations, retries, `disable`.

use crate::decode::*;
use crate::error::LoadError;
use crate::yaml::{Node, Value};
use mooring_core::Healthcheck;

/// The service's `healthcheck`, if any.
pub(super) fn healthcheck(service: &Node, what: &str) -> Result<Option<Healthcheck>, LoadError> {
    service
        .get("healthcheck")
        .map(|h| decode(h, &format!("{what}.healthcheck")))
        .transpose()
        .map(Option::flatten)
}

fn decode(n: &Node, what: &str) -> Result<Option<Healthcheck>, LoadError> {
    check_keys(
        n,
        what,
        &[
            "test",
            "interval",
            "timeout",
            "retries",
            "start_period",
            "start_interval",
            "disable",
        ],
    )?;
    if n.get("disable")
        .map(|d| boolean(d, what))
        .transpose()?
        .unwrap_or(false)
    {
        return Ok(Some(Healthcheck {
            test: vec!["NONE".into()],
            interval: None,
            timeout: None,
            retries: None,
            start_period: None,
            start_interval: None,
        }));
    }
    let test = match n.get("test") {
        None => {
            return Err(err(
                n,
                format!("{what}: `test` is required (or `disable: true`)"),
            ))
        }
        Some(t) => match &t.value {
            Value::Scalar { text, .. } => vec!["CMD-SHELL".to_string(), text.clone()],
            _ => {
                let list = string_list(t, &format!("{what}.test"))?;
                if !matches!(
                    list.first().map(String::as_str),
                    Some("CMD" | "CMD-SHELL" | "NONE")
                ) {
                    return Err(err(
                        t,
                        format!("{what}.test: a list must start with CMD, CMD-SHELL or NONE"),
                    ));
                }
                list
            }
        },
    };
    let d = |k: &str| {
        n.get(k)
            .map(|v| duration(v, &format!("{what}.{k}")))
            .transpose()
    };
    Ok(Some(Healthcheck {
        test,
        interval: d("interval")?,
        timeout: d("timeout")?,
        retries: n
            .get("retries")
            .map(|r| unsigned(r, &format!("{what}.retries")))
            .transpose()?,
        start_period: d("start_period")?,
        start_interval: d("start_interval")?,
    }))
}
