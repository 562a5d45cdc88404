//! How a service's container starts and stops: `restart`, `pull_policy`,
//! `stop_grace_period`, `init`.

use crate::decode::*;
use crate::error::LoadError;
use crate::yaml::Node;
use mooring_core::desired::GoDuration;
use mooring_core::PullPolicy;

/// `restart`: no (default), always, unless-stopped, on-failure[:N].
pub(super) fn restart(n: &Node, what: &str) -> Result<String, LoadError> {
    let Some(r) = n.get("restart") else {
        return Ok("no".to_string());
    };
    let w = format!("{what}.restart");
    let value = string(r, &w)?;
    let ok = matches!(
        value.as_str(),
        "no" | "always" | "unless-stopped" | "on-failure"
    ) || value
        .strip_prefix("on-failure:")
        .is_some_and(|c| c.parse::<u32>().is_ok());
    if !ok {
        return Err(err(r, format!("{w}: invalid restart policy {value:?} (use no, always, unless-stopped, on-failure[:N])")));
    }
    Ok(value)
}

/// `pull_policy`: missing (default; also `if_not_present`), always, never; for a service
/// with `build`, `build` (its default: the image is built when missing or when its
/// inputs changed, never pulled).
pub(super) fn pull_policy(n: &Node, what: &str, built: bool) -> Result<PullPolicy, LoadError> {
    let w = format!("{what}.pull_policy");
    if built {
        return match n.get("pull_policy").map(|p| string(p, &w).map(|s| (p, s))).transpose()? {
            None => Ok(PullPolicy::Build),
            Some((_, s)) if matches!(s.as_str(), "build" | "missing" | "if_not_present") => {
                Ok(PullPolicy::Build)
            }
            Some((p, s)) => Err(err(p, format!("{w}: {s:?} with `build`: the image is built from the repository when missing or when its inputs change; leave pull_policy out (or say build)"))),
        };
    }
    let Some(p) = n.get("pull_policy") else {
        return Ok(PullPolicy::Missing);
    };
    match string(p, &w)?.as_str() {
        "missing" | "if_not_present" => Ok(PullPolicy::Missing),
        "always" => Ok(PullPolicy::Always),
        "never" => Ok(PullPolicy::Never),
        other => Err(err(
            p,
            format!("{w}: {other:?} is not supported (use missing, always or never)"),
        )),
    }
}

/// `stop_grace_period`, a Go duration.
pub(super) fn stop_grace_period(n: &Node, what: &str) -> Result<Option<GoDuration>, LoadError> {
    n.get("stop_grace_period")
        .map(|d| duration(d, &format!("{what}.stop_grace_period")))
        .transpose()
}

/// `init`, when given.
pub(super) fn init(n: &Node, what: &str) -> Result<Option<bool>, LoadError> {
    n.get("init")
        .map(|b| boolean(b, &format!("{what}.init")))
        .transpose()
}
