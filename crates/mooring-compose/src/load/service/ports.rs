//! A service's `ports`: the short syntax (`[HOST_IP:][HOST:]CONTAINER[/PROTOCOL]`, ranges,
//! bracketed IPv6) and the long one, each entry to one or more [`Port`]s.

use crate::decode::*;
use crate::error::LoadError;
use crate::yaml::{Node, Value};
use mooring_core::Port;

/// `ports`: a list of entries.
pub(super) fn ports(n: &Node, what: &str) -> Result<Vec<Port>, LoadError> {
    let mut ports = Vec::new();
    if let Some(p) = n.get("ports") {
        let what = format!("{what}.ports");
        let Value::Seq(items) = &p.value else {
            return Err(err(p, format!("{what} must be a list, found {}", p.kind())));
        };
        for item in items {
            ports.extend(port(item, &what)?);
        }
    }
    Ok(ports)
}

/// One entry: the long syntax gives one port, the short one a port per number of its range.
fn port(n: &Node, what: &str) -> Result<Vec<Port>, LoadError> {
    match n.value {
        Value::Map(_) => Ok(vec![long_syntax(n, what)?]),
        _ => short_syntax(n, what),
    }
}

/// `{ target, published, host_ip, protocol, mode }`.
fn long_syntax(n: &Node, what: &str) -> Result<Port, LoadError> {
    let bad = |msg: String| err(n, format!("{what}: {msg}"));
    check_keys(
        n,
        what,
        &[
            "target",
            "published",
            "host_ip",
            "protocol",
            "mode",
            "name",
            "app_protocol",
        ],
    )?;
    let target = n
        .get("target")
        .ok_or_else(|| bad("`target` is required".into()))?;
    let target = u16::try_from(unsigned(target, what)?)
        .map_err(|_| bad("target port out of range".into()))?;
    let published = n.get("published").map(|p| string(p, what)).transpose()?;
    if let Some(p) = &published {
        parse_range(p).ok_or_else(|| bad(format!("invalid published port {p:?}")))?;
    }
    let protocol = n
        .get("protocol")
        .map(|p| string(p, what))
        .transpose()?
        .unwrap_or_else(|| "tcp".into());
    check_protocol(&protocol).map_err(bad)?;
    if let Some(m) = n.get("mode") {
        if string(m, what)? != "ingress" && string(m, what)? != "host" {
            return Err(bad("mode must be ingress or host".into()));
        }
    }
    Ok(Port {
        target,
        published,
        host_ip: n.get("host_ip").map(|h| string(h, what)).transpose()?,
        protocol,
        name: n.get("name").map(|h| string(h, what)).transpose()?,
        app_protocol: n.get("app_protocol").map(|h| string(h, what)).transpose()?,
    })
}

/// `[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]`, ports possibly ranges.
fn short_syntax(n: &Node, what: &str) -> Result<Vec<Port>, LoadError> {
    let bad = |msg: String| err(n, format!("{what}: {msg}"));
    let text = string(n, what)?;
    let (spec, protocol) = match text.rsplit_once('/') {
        Some((s, p)) => (s, p.to_string()),
        None => (text.as_str(), "tcp".to_string()),
    };
    check_protocol(&protocol).map_err(bad)?;
    // [HOST_IP:][HOST:]CONTAINER, the host IP possibly in brackets (IPv6).
    let (host_ip, rest) = if let Some(stripped) = spec.strip_prefix('[') {
        let (ip, rest) = stripped
            .split_once("]:")
            .ok_or_else(|| bad(format!("invalid port {text:?}")))?;
        (Some(ip.to_string()), rest)
    } else {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts.len() {
            1 | 2 => (None, spec),
            3 => (Some(parts[0].to_string()), &spec[parts[0].len() + 1..]),
            _ => {
                return Err(bad(format!(
                    "invalid port {text:?} (use [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL])"
                )))
            }
        }
    };
    let (published, container) = match rest.split_once(':') {
        Some((h, c)) => (Some(h), c),
        None => (None, rest),
    };
    let (c_start, c_end) = parse_range(container)
        .ok_or_else(|| bad(format!("invalid container port {container:?} in {text:?}")))?;
    let host = match published.filter(|p| !p.is_empty()) {
        Some(p) => Some(
            parse_range(p).ok_or_else(|| bad(format!("invalid host port {p:?} in {text:?}")))?,
        ),
        None => None,
    };
    let count = c_end - c_start + 1;
    let mut out = Vec::new();
    for i in 0..count {
        let published = match host {
            None => None,
            Some((h_start, h_end)) if h_end - h_start + 1 == count => {
                Some((h_start + i).to_string())
            }
            Some((h_start, h_end)) if count == 1 => Some(format!("{h_start}-{h_end}")),
            Some(_) => {
                return Err(bad(format!(
                    "host and container port ranges differ in size in {text:?}"
                )))
            }
        };
        out.push(Port {
            target: c_start + i,
            published,
            host_ip: host_ip.clone(),
            protocol: protocol.clone(),
            name: None,
            app_protocol: None,
        });
    }
    Ok(out)
}

fn parse_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b): (u16, u16) = (a.parse().ok()?, b.parse().ok()?);
    (a > 0 && a <= b).then_some((a, b))
}

fn check_protocol(p: &str) -> Result<(), String> {
    match p {
        "tcp" | "udp" | "sctp" => Ok(()),
        other => Err(format!("unknown protocol {other:?} (use tcp, udp or sctp)")),
    }
}
