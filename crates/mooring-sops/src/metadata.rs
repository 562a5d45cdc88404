//! The `sops` block of a file, as far as decrypting needs it: the data key's
//! encrypted copies (age recipients, PGP fingerprints), the last-modified time
//! (the MAC's additional data), the encrypted MAC and `mac_only_encrypted`. The
//! flattened form of dotenv files (`sops_age__list_0__map_enc`) is unflattened by
//! [`unflatten`] first.

use crate::tree::Node;
use crate::SopsError;

/// One age recipient's copy of the data key.
#[derive(Debug, Clone)]
pub struct AgeStanza {
    pub recipient: String,
    /// An armored age file whose plaintext is the 32-byte data key.
    pub enc: String,
}

/// One PGP key's copy of the data key.
#[derive(Debug, Clone)]
pub struct PgpStanza {
    /// The key's fingerprint.
    pub fp: String,
    /// An armored OpenPGP message whose plaintext is the data key.
    pub enc: String,
}

/// One key group: any one of its keys opens the group's part of the data key.
#[derive(Debug, Clone, Default)]
pub struct KeyGroup {
    pub age: Vec<AgeStanza>,
    /// The PGP keys the part is also encrypted for.
    pub pgp: Vec<PgpStanza>,
    /// Other key services named in the group (`kms`, `gcp_kms`, …): reported when
    /// nothing else fits.
    pub others: Vec<String>,
}

/// What decrypting needs of a file's `sops` block.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// One group (the top-level key lists): its part is the data key. Several
    /// (`key_groups`): each part is a Shamir share, `shamir_threshold` of them
    /// give the data key.
    pub groups: Vec<KeyGroup>,
    pub shamir_threshold: usize,
    pub last_modified: String,
    pub mac: String,
    pub mac_only_encrypted: bool,
}

impl Metadata {
    /// Reads the `sops` mapping.
    pub fn from_node(node: &Node) -> Result<Metadata, SopsError> {
        let Node::Map(items) = node else {
            return Err(SopsError::Format(
                "its `sops` entry is not a mapping".into(),
            ));
        };
        let get = |k: &str| items.iter().find(|(key, _)| key == k).map(|(_, v)| v);
        let text = |k: &str| match get(k) {
            Some(Node::Str(s)) => Ok(s.clone()),
            _ => Err(SopsError::Format(format!(
                "its `sops.{k}` is missing or not a string"
            ))),
        };
        // The top-level key lists make the one group; else each `key_groups` entry is
        // a group (sops's `internalKeygroups`).
        let top = group(items);
        let groups = if !top.age.is_empty() || !top.pgp.is_empty() || !top.others.is_empty() {
            vec![top]
        } else {
            match get("key_groups") {
                Some(Node::List(list)) => list
                    .iter()
                    .filter_map(|g| match g {
                        Node::Map(fields) => Some(group(fields)),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            }
        };
        let shamir_threshold = match get("shamir_threshold") {
            Some(Node::Int(n)) => usize::try_from(*n).unwrap_or(0),
            Some(Node::Str(s)) => s.parse().unwrap_or(0),
            _ => 0,
        };
        let mac_only_encrypted = match get("mac_only_encrypted") {
            Some(Node::Bool(b)) => *b,
            Some(Node::Str(s)) => s == "true",
            _ => false,
        };
        Ok(Metadata {
            groups,
            shamir_threshold,
            last_modified: text("lastmodified")?,
            mac: text("mac")?,
            mac_only_encrypted,
        })
    }
}

/// The keys of one group's mapping (or of the top level).
fn group(fields: &[(String, Node)]) -> KeyGroup {
    let get = |k: &str| fields.iter().find(|(key, _)| key == k).map(|(_, v)| v);
    let stanzas = |k: &str| -> Vec<Vec<(String, String)>> {
        match get(k) {
            Some(Node::List(list)) => list
                .iter()
                .filter_map(|e| match e {
                    Node::Map(f) => Some(
                        f.iter()
                            .filter_map(|(k, v)| match v {
                                Node::Str(s) => Some((k.clone(), s.clone())),
                                _ => None,
                            })
                            .collect(),
                    ),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    let field = |e: &[(String, String)], k: &str| {
        e.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone())
    };
    KeyGroup {
        age: stanzas("age")
            .iter()
            .filter_map(|e| {
                Some(AgeStanza {
                    recipient: field(e, "recipient")?,
                    enc: field(e, "enc")?,
                })
            })
            .collect(),
        pgp: stanzas("pgp")
            .iter()
            .filter_map(|e| {
                Some(PgpStanza {
                    fp: field(e, "fp")?,
                    enc: field(e, "enc")?,
                })
            })
            .collect(),
        others: ["kms", "gcp_kms", "azure_kv", "hc_vault", "hckms"]
            .into_iter()
            .filter(|k| matches!(get(k), Some(Node::List(l)) if !l.is_empty()))
            .map(str::to_string)
            .collect(),
    }
}

/// Unflattens `sops_`-less keys such as `age__list_0__map_enc` into a tree
/// (`stores/flatten.go`: `__list_N` is a list index, `__map_K` a mapping key).
pub fn unflatten(items: Vec<(String, Node)>) -> Result<Node, SopsError> {
    let mut root = Node::Map(Vec::new());
    for (key, value) in items {
        let mut parts = key.split("__");
        let first = parts.next().unwrap_or_default().to_string();
        let mut node = map_entry(&mut root, &first);
        for part in parts {
            node = if let Some(i) = part.strip_prefix("list_") {
                let i: usize = i
                    .parse()
                    .map_err(|_| SopsError::Format(format!("metadata key sops_{key}")))?;
                if !matches!(node, Node::List(_)) {
                    *node = Node::List(Vec::new());
                }
                let Node::List(list) = node else {
                    unreachable!()
                };
                while list.len() <= i {
                    list.push(Node::Null);
                }
                &mut list[i]
            } else if let Some(k) = part.strip_prefix("map_") {
                map_entry(node, k)
            } else {
                return Err(SopsError::Format(format!("metadata key sops_{key}")));
            };
        }
        *node = value;
    }
    Ok(root)
}

fn map_entry<'a>(node: &'a mut Node, key: &str) -> &'a mut Node {
    if !matches!(node, Node::Map(_)) {
        *node = Node::Map(Vec::new());
    }
    let Node::Map(items) = node else {
        unreachable!()
    };
    let i = match items.iter().position(|(k, _)| k == key) {
        Some(i) => i,
        None => {
            items.push((key.to_string(), Node::Null));
            items.len() - 1
        }
    };
    &mut items[i].1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattened_keys_become_a_tree() {
        let tree = unflatten(vec![
            ("age__list_0__map_recipient".into(), Node::Str("r0".into())),
            ("age__list_0__map_enc".into(), Node::Str("e0".into())),
            ("age__list_1__map_recipient".into(), Node::Str("r1".into())),
            ("age__list_1__map_enc".into(), Node::Str("e1".into())),
            ("lastmodified".into(), Node::Str("t".into())),
            ("mac".into(), Node::Str("m".into())),
            ("mac_only_encrypted".into(), Node::Str("true".into())),
        ])
        .unwrap();
        let meta = Metadata::from_node(&tree).unwrap();
        assert_eq!(meta.groups.len(), 1);
        assert_eq!(meta.groups[0].age.len(), 2);
        assert_eq!(meta.groups[0].age[1].recipient, "r1");
        assert_eq!(meta.groups[0].age[1].enc, "e1");
        assert!(meta.mac_only_encrypted);
        assert!(unflatten(vec![("age__oops".into(), Node::Null)]).is_err());
    }
}
