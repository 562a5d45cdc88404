//! The loader's [`mooring_compose::Decrypter`] for SOPS files: a repository file with
//! SOPS metadata is decrypted with the configured keys. Without a key that opens it,
//! `mooring validate` and `render` still read it, with every encrypted value `***`
//! ([`Sops::masking`]); `diff`, `sync` and the daemon refuse it ([`Sops::strict`]).

use crate::{decrypt, detect, stores, tree::Node, Keys, SopsError};
use mooring_compose::{Decrypter, Plaintext};

/// SOPS decryption for the loader.
#[derive(Debug, Clone)]
pub struct Sops {
    keys: Keys,
    mask_without_key: bool,
}

impl Sops {
    /// Encrypted files must decrypt with `keys`, or the render fails.
    pub fn strict(keys: Keys) -> Sops {
        Sops {
            keys,
            mask_without_key: false,
        }
    }

    /// A file no key opens is read with its values as `***`, and said so in a note.
    pub fn masking(keys: Keys) -> Sops {
        Sops {
            keys,
            mask_without_key: true,
        }
    }
}

impl Decrypter for Sops {
    fn decrypt(&self, bytes: &[u8], path: &str) -> Result<Option<Plaintext>, String> {
        let Some(format) = detect(bytes, path) else {
            return Ok(None);
        };
        let what = || format!("SOPS-encrypted ({format:?})");
        match decrypt(bytes, format, &self.keys) {
            Ok(d) => Ok(Some(Plaintext {
                bytes: d.plaintext.to_vec(),
                secrets: d.secrets,
                masked: None,
            })),
            Err(e @ SopsError::NoKey { .. }) if self.mask_without_key => {
                let bytes = masked(bytes, format).map_err(|e| format!("{}, {e}", what()))?;
                Ok(Some(Plaintext {
                    bytes,
                    secrets: Vec::new(),
                    masked: Some(e.to_string()),
                }))
            }
            Err(e) => Err(format!("{}, {e}", what())),
        }
    }
}

/// The file with every encrypted value replaced by `***` (no key, no MAC check).
fn masked(bytes: &[u8], format: stores::Format) -> Result<Vec<u8>, SopsError> {
    let (mut branches, _) = stores::read(bytes, format)?;
    fn mask(node: &mut Node) {
        match node {
            Node::Map(items) => items.iter_mut().for_each(|(_, v)| mask(v)),
            Node::List(items) => items.iter_mut().for_each(mask),
            Node::Str(s) if crate::value::is_encrypted(s) => *s = "***".into(),
            _ => {}
        }
    }
    branches.iter_mut().for_each(mask);
    stores::write(&branches, format)
}
