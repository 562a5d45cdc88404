//! The tree every store reads into, and its decryption: each `ENC[…]` leaf is
//! decrypted with its path as additional data (the keys from the root, joined and
//! ended by `:`; list items add nothing), and the plaintext of every leaf — or of
//! the encrypted ones only, with `mac_only_encrypted` — feeds a SHA-512 in document
//! order. The hex of that hash must equal the decrypted MAC (`sops.go`, `Tree::Decrypt`).

use crate::metadata::Metadata;
use crate::value::{self, Kind};
use crate::SopsError;
use sha2::{Digest, Sha512};

/// A value of a SOPS tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Map(Vec<(String, Node)>),
    List(Vec<Node>),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Raw bytes (a binary file's `data` decrypts to these).
    Bytes(Vec<u8>),
    Null,
}

/// The MAC of a `mac_only_encrypted` tree starts from these bytes (`sops.go`,
/// `MACOnlyEncryptedInitialization`), so it never equals the MAC over all values.
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// Decrypts every encrypted leaf of `branches` in place and checks the MAC; the
/// decrypted strings are added to `secrets`.
pub fn decrypt(
    branches: &mut [Node],
    meta: &Metadata,
    key: &[u8; 32],
    secrets: &mut Vec<String>,
) -> Result<(), SopsError> {
    let mut walk = Walk {
        key,
        hash: Sha512::new(),
        mac_only_encrypted: meta.mac_only_encrypted,
        secrets,
    };
    if meta.mac_only_encrypted {
        walk.hash.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    let mut path = Vec::new();
    for branch in branches.iter_mut() {
        walk.node(branch, &mut path)?;
    }
    let computed = hex_upper(&walk.hash.finalize());
    let (mac, _) =
        value::decrypt(&meta.mac, key, &meta.last_modified).map_err(|_| SopsError::MacMismatch)?;
    if mac.as_slice() != computed.as_bytes() {
        return Err(SopsError::MacMismatch);
    }
    Ok(())
}

struct Walk<'a> {
    key: &'a [u8; 32],
    hash: Sha512,
    mac_only_encrypted: bool,
    secrets: &'a mut Vec<String>,
}

impl Walk<'_> {
    fn node(&mut self, node: &mut Node, path: &mut Vec<String>) -> Result<(), SopsError> {
        match node {
            Node::Map(items) => {
                for (k, v) in items.iter_mut() {
                    path.push(k.clone());
                    self.node(v, path)?;
                    path.pop();
                }
            }
            Node::List(items) => {
                for v in items.iter_mut() {
                    self.node(v, path)?;
                }
            }
            Node::Null => {}
            Node::Str(s) if value::is_encrypted(s) => {
                let aad = format!("{}:", path.join(":"));
                let (plain, kind) = value::decrypt(s, self.key, &aad)?;
                let bad = |what: &str| SopsError::Value {
                    path: path.join(":"),
                    why: format!("is not a valid {what} after decryption"),
                };
                let text = || String::from_utf8(plain.to_vec()).map_err(|_| bad("string"));
                *node = match kind {
                    // A Go string holds any bytes: a binary file's `data` is one.
                    Kind::Str | Kind::Comment => match String::from_utf8(plain.to_vec()) {
                        Ok(s) => Node::Str(s),
                        Err(_) => Node::Bytes(plain.to_vec()),
                    },
                    Kind::Int => Node::Int(text()?.parse().map_err(|_| bad("integer"))?),
                    Kind::Float => Node::Float(text()?.parse().map_err(|_| bad("number"))?),
                    Kind::Bool => Node::Bool(parse_bool(&text()?).ok_or_else(|| bad("boolean"))?),
                    Kind::Bytes => Node::Bytes(plain.to_vec()),
                };
                self.hash.update(mac_bytes(node));
                match node {
                    Node::Str(s) if !s.is_empty() => self.secrets.push(s.clone()),
                    Node::Bytes(b) if !b.is_empty() => {
                        self.secrets.push(String::from_utf8_lossy(b).into_owned())
                    }
                    _ => {}
                }
            }
            leaf => {
                if !self.mac_only_encrypted {
                    self.hash.update(mac_bytes(leaf));
                }
            }
        }
        Ok(())
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A leaf's bytes in the MAC (`sops.go`, `ToBytes`).
fn mac_bytes(node: &Node) -> Vec<u8> {
    match node {
        Node::Str(s) => s.as_bytes().to_vec(),
        Node::Int(i) => i.to_string().into_bytes(),
        Node::Float(f) => format_float(*f).into_bytes(),
        Node::Bool(true) => b"True".to_vec(),
        Node::Bool(false) => b"False".to_vec(),
        Node::Bytes(b) => b.clone(),
        Node::Map(_) | Node::List(_) | Node::Null => Vec::new(),
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: the shortest digits that read back
/// as `f`, never an exponent.
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{f}")
    }
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_go_does() {
        assert_eq!(format_float(1.5), "1.5");
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(1e21), "1000000000000000000000");
        assert_eq!(format_float(0.000001), "0.000001");
        assert_eq!(format_float(-2.25), "-2.25");
    }

    #[test]
    fn go_booleans() {
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("F"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }
}
