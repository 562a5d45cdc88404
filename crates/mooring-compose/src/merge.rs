//! Merging several Compose files (`-f a.yaml -f b.yaml`) the way Compose does: later
//! files override earlier ones; mappings merge key by key; `environment`, `labels`,
//! `extra_hosts`, `sysctls`, `depends_on` and `networks` merge as mappings whatever their
//! syntax;
//! `volumes` merge by container path; `ports` and other lists append; `command`,
//! `entrypoint` and `healthcheck.test` are replaced.

use crate::yaml::{Node, Value};

/// Merges `over` into `base` (both whole Compose documents).
pub fn merge_documents(base: Node, over: Node) -> Node {
    merge_map(base, over, &|key, base, over| match key {
        "services" => merge_map(base, over, &|_, b, o| merge_service(b, o)),
        _ => merge_deep(base, over),
    })
}

/// Merges two definitions of one service.
pub fn merge_service(base: Node, over: Node) -> Node {
    merge_map(base, over, &|key, base, over| match key {
        "environment" | "labels" | "extra_hosts" | "sysctls" => {
            merge_deep(list_to_map(base, key), list_to_map(over, key))
        }
        "depends_on" | "networks" => merge_deep(list_to_map(base, key), list_to_map(over, key)),
        "volumes" => merge_by(base, over, volume_target),
        "command" | "entrypoint" => over,
        "healthcheck" | "deploy" => merge_deep(base, over),
        _ => match (&base.value, &over.value) {
            (Value::Seq(_), Value::Seq(_)) => {
                merge_by(base, over, |n| Some(format!("{:?}", n.value)))
            }
            _ => merge_deep(base, over),
        },
    })
}

/// Mapping merge with a rule per key; non-mappings are replaced by `over`.
fn merge_map(base: Node, over: Node, rule: &dyn Fn(&str, Node, Node) -> Node) -> Node {
    let (Value::Map(mut entries), Value::Map(over_entries)) =
        (base.value.clone(), over.value.clone())
    else {
        return over;
    };
    for (k, v) in over_entries {
        match entries.iter_mut().find(|(e, _)| e.text() == k.text()) {
            Some((_, existing)) => {
                let key = k.text().unwrap_or_default().to_string();
                let old = std::mem::replace(existing, Node::new(Value::Null, v.pos.clone()));
                *existing = rule(&key, old, v);
            }
            None => entries.push((k, v)),
        }
    }
    Node::new(Value::Map(entries), base.pos)
}

/// Recursive merge: mappings merge, everything else is replaced.
fn merge_deep(base: Node, over: Node) -> Node {
    merge_map(base, over, &|key, b, o| match key {
        "test" => o,
        _ => merge_deep(b, o),
    })
}

/// Appends items of `over` to `base`, an item of `over` replacing a `base` item with the same key.
fn merge_by(base: Node, over: Node, key: impl Fn(&Node) -> Option<String>) -> Node {
    let (Value::Seq(mut items), Value::Seq(over_items)) = (base.value.clone(), over.value.clone())
    else {
        return over;
    };
    for item in over_items {
        let k = key(&item);
        match items.iter_mut().find(|i| k.is_some() && key(i) == k) {
            Some(existing) => *existing = item,
            None => items.push(item),
        }
    }
    Node::new(Value::Seq(items), base.pos)
}

/// The container path of a service volume entry (short or long syntax).
fn volume_target(n: &Node) -> Option<String> {
    match &n.value {
        Value::Scalar { text, .. } => {
            let parts: Vec<&str> = text.split(':').collect();
            Some(if parts.len() >= 2 { parts[1] } else { parts[0] }.to_string())
        }
        Value::Map(_) => n.get("target").and_then(Node::text).map(str::to_string),
        _ => None,
    }
}

/// Turns a list form (`- KEY=VALUE`, `- name`) into the mapping form so both merge alike.
/// Lists of `KEY=VALUE` split on `=` (`extra_hosts` also on `:`); bare names map to null.
pub fn list_to_map(node: Node, key: &str) -> Node {
    let Value::Seq(items) = &node.value else {
        return node;
    };
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        let Some(text) = item.text() else {
            return node;
        };
        let split = match key {
            "environment" | "labels" | "sysctls" => text.split_once('='),
            "extra_hosts" => text.split_once('=').or_else(|| text.split_once(':')),
            _ => None,
        };
        let (k, v) = match split {
            Some((k, v)) => (k, Node::scalar(v, item.pos.clone())),
            None => (text, Node::new(Value::Null, item.pos.clone())),
        };
        entries.push((Node::scalar(k, item.pos.clone()), v));
    }
    Node::new(Value::Map(entries), node.pos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;
    use std::sync::Arc;

    fn doc(s: &str) -> Node {
        parse(s, &Arc::from("t.yaml")).unwrap()
    }

    fn texts(n: &Node) -> Vec<String> {
        match &n.value {
            Value::Seq(items) => items
                .iter()
                .map(|i| i.text().unwrap_or("?").to_string())
                .collect(),
            Value::Map(e) => e
                .iter()
                .map(|(k, v)| format!("{}={}", k.text().unwrap(), v.text().unwrap_or("~")))
                .collect(),
            _ => vec![],
        }
    }

    #[test]
    fn compose_merge_rules() {
        let base = doc(
            "services:\n  web:\n    image: a\n    command: [x, y]\n    environment: [A=1, B=2]\n    ports: ['80:80']\n    volumes: ['./a:/etc/a', 'data:/data']\n    cap_add: [NET_ADMIN]\n",
        );
        let over = doc(
            "services:\n  web:\n    image: b\n    command: [z]\n    environment:\n      B: 3\n      C: 4\n    ports: ['443:443']\n    volumes: ['./b:/etc/a']\n    cap_add: [NET_ADMIN, SYS_TIME]\n  db:\n    image: c\n",
        );
        let m = merge_documents(base, over);
        let web = m.get("services").unwrap().get("web").unwrap();
        assert_eq!(web.get("image").unwrap().text(), Some("b"));
        assert_eq!(texts(web.get("command").unwrap()), ["z"]);
        assert_eq!(
            texts(web.get("environment").unwrap()),
            ["A=1", "B=3", "C=4"]
        );
        assert_eq!(texts(web.get("ports").unwrap()), ["80:80", "443:443"]);
        assert_eq!(
            texts(web.get("volumes").unwrap()),
            ["./b:/etc/a", "data:/data"]
        );
        assert_eq!(
            texts(web.get("cap_add").unwrap()),
            ["NET_ADMIN", "SYS_TIME"]
        );
        assert!(m.get("services").unwrap().get("db").is_some());
    }

    #[test]
    fn healthcheck_test_is_replaced_and_fields_merge() {
        let base =
            doc("services:\n  w:\n    healthcheck:\n      test: [CMD, a, b]\n      interval: 5s\n");
        let over = doc("services:\n  w:\n    healthcheck:\n      test: [CMD, c]\n");
        let m = merge_documents(base, over);
        let hc = m
            .get("services")
            .unwrap()
            .get("w")
            .unwrap()
            .get("healthcheck")
            .unwrap();
        assert_eq!(texts(hc.get("test").unwrap()), ["CMD", "c"]);
        assert_eq!(hc.get("interval").unwrap().text(), Some("5s"));
    }
}
