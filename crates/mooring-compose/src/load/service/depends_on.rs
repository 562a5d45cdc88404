//! A service's `depends_on`: a list or a mapping with `condition`, `required`,
//! `restart`. Whether the targets exist (and cycles) is checked across services, in
//! `project`.

use crate::decode::*;
use crate::error::LoadError;
use crate::merge::list_to_map;
use crate::yaml::Node;
use mooring_core::{DependsOn, DependsOnCondition};
use std::collections::BTreeMap;

/// The service's `depends_on` (empty when absent).
pub(super) fn depends_on(
    service: &Node,
    what: &str,
) -> Result<BTreeMap<String, DependsOn>, LoadError> {
    service
        .get("depends_on")
        .map(|d| decode(d, &format!("{what}.depends_on")))
        .transpose()
        .map(Option::unwrap_or_default)
}

fn decode(n: &Node, what: &str) -> Result<BTreeMap<String, DependsOn>, LoadError> {
    let map = list_to_map(n.clone(), "depends_on");
    let mut out = BTreeMap::new();
    for (k, v) in entries(&map, what)? {
        let key = key_of(k).to_string();
        let dw = format!("{what}.{key}");
        check_keys(v, &dw, &["condition", "required", "restart"])?;
        let condition = match v.get("condition") {
            None => DependsOnCondition::ServiceStarted,
            Some(c) => match string(c, &dw)?.as_str() {
                "service_started" => DependsOnCondition::ServiceStarted,
                "service_healthy" => DependsOnCondition::ServiceHealthy,
                "service_completed_successfully" => DependsOnCondition::ServiceCompletedSuccessfully,
                other => return Err(err(c, format!("{dw}.condition: {other:?} is not a condition (use service_started, service_healthy or service_completed_successfully)"))),
            },
        };
        let required = v
            .get("required")
            .map(|r| boolean(r, &dw))
            .transpose()?
            .unwrap_or(true);
        let restart = v
            .get("restart")
            .map(|r| boolean(r, &dw))
            .transpose()?
            .unwrap_or(false);
        out.insert(
            key,
            DependsOn {
                condition,
                required,
                restart,
            },
        );
    }
    Ok(out)
}
