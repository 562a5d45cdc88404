//! A service's `networks` (declared ones only, with `aliases`; the project's `default`
//! network created on first use) and `extra_hosts`.

use crate::decode::*;
use crate::error::LoadError;
use crate::merge::list_to_map;
use crate::yaml::{Node, Value};
use mooring_core::{Network, ServiceNetwork};
use std::collections::BTreeMap;

/// The project's `default` network, declared when a service first uses it.
fn default_network<'a>(
    networks: &'a mut BTreeMap<String, Network>,
    project: &str,
) -> &'a mut Network {
    networks.entry("default".into()).or_insert_with(|| Network {
        name: format!("{project}_default"),
        ..Network::default()
    })
}

/// The networks service `name` joins (no `networks:` = the default one), each with the
/// service's name as the first alias.
pub(super) fn service_networks(
    n: &Node,
    what: &str,
    project: &str,
    name: &str,
    networks: &mut BTreeMap<String, Network>,
) -> Result<BTreeMap<String, ServiceNetwork>, LoadError> {
    let mut service_networks = BTreeMap::new();
    let Some(nets) = n.get("networks") else {
        let default = default_network(networks, project);
        service_networks.insert(
            "default".into(),
            ServiceNetwork {
                name: default.name.clone(),
                aliases: vec![name.to_string()],
                ..ServiceNetwork::default()
            },
        );
        return Ok(service_networks);
    };
    let w = format!("{what}.networks");
    let nets = list_to_map(nets.clone(), "networks");
    for (k, v) in entries(&nets, &w)? {
        let key = key_of(k);
        let decl = if key == "default" {
            default_network(networks, project)
        } else {
            networks.get_mut(key).ok_or_else(|| {
                err(
                    k,
                    format!("{w}: network `{key}` is not declared under the top-level `networks`"),
                )
            })?
        };
        let nw = format!("{w}.{key}");
        check_keys(
            v,
            &nw,
            &[
                "aliases",
                "ipv4_address",
                "ipv6_address",
                "link_local_ips",
                "mac_address",
                "priority",
                "driver_opts",
            ],
        )?;
        if let Some(d) = v.get("driver_opts") {
            return Err(err(
                d,
                format!(
                    "{nw}.driver_opts needs Docker Engine API 1.42; this Mooring speaks API 1.41"
                ),
            ));
        }
        let text = |k: &str| {
            v.get(k)
                .map(|x| string(x, &format!("{nw}.{k}")))
                .transpose()
        };
        let mut aliases = vec![name.to_string()];
        if let Some(a) = v.get("aliases") {
            for alias in string_list(a, &format!("{nw}.aliases"))? {
                if !aliases.contains(&alias) {
                    aliases.push(alias);
                }
            }
        }
        service_networks.insert(
            key.to_string(),
            ServiceNetwork {
                name: decl.name.clone(),
                aliases,
                ipv4_address: text("ipv4_address")?,
                ipv6_address: text("ipv6_address")?,
                link_local_ips: v
                    .get("link_local_ips")
                    .map(|l| string_list(l, &format!("{nw}.link_local_ips")))
                    .transpose()?
                    .unwrap_or_default(),
                mac_address: text("mac_address")?,
                priority: v
                    .get("priority")
                    .map(|p| {
                        p.text().and_then(|t| t.parse::<i64>().ok()).ok_or_else(|| {
                            err(
                                p,
                                format!(
                                    "{nw}.priority must be a whole number, found {}",
                                    describe(p)
                                ),
                            )
                        })
                    })
                    .transpose()?,
                written_as_mapping: matches!(v.value, Value::Map(_)),
            },
        );
    }
    Ok(service_networks)
}

/// `links` (`SERVICE[:ALIAS]`) and `external_links` (`CONTAINER[:ALIAS]`).
pub(super) fn links(n: &Node, what: &str, key: &str) -> Result<Vec<String>, LoadError> {
    let Some(l) = n.get(key) else {
        return Ok(vec![]);
    };
    let w = format!("{what}.{key}");
    let links = string_list(l, &w)?;
    if let Some(bad) = links
        .iter()
        .find(|l| l.is_empty() || l.split(':').count() > 2 || l.split(':').any(str::is_empty))
    {
        return Err(err(
            l,
            format!("{w}: invalid link {bad:?} (use NAME or NAME:ALIAS)"),
        ));
    }
    Ok(links)
}

/// `extra_hosts` (list or mapping) as `HOST:IP` entries.
pub(super) fn extra_hosts(n: &Node, what: &str) -> Result<Vec<String>, LoadError> {
    let mut extra_hosts = Vec::new();
    if let Some(h) = n.get("extra_hosts") {
        let w = format!("{what}.extra_hosts");
        let map = list_to_map(h.clone(), "extra_hosts");
        for (k, v) in entries(&map, &w)? {
            let ip = string(v, &w)?;
            extra_hosts.push(format!("{}:{}", key_of(k), ip));
        }
    }
    Ok(extra_hosts)
}
