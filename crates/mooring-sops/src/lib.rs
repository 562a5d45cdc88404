//! Decrypting SOPS files natively, as `sops decrypt` does, for the files a
//! repository holds encrypted: dotenv, YAML, JSON, INI and binary. Pure: bytes and
//! keys in, plaintext out; no file, and no process except `gpg` for a data key held
//! by PGP keys only (see [`keys`]).
//!
//! A SOPS file is a tree whose leaves are `ENC[AES256_GCM,…]` values ([`value`]) and
//! a `sops` metadata block ([`metadata`]): the file's data key encrypted to each
//! recipient (age here; see [`keys`]), the time of the last change, and a MAC — a
//! SHA-512 of the plaintext leaves in order, itself encrypted with the data key and
//! that time as additional data. Each store ([`stores`]) reads its format into the
//! shared [`tree::Node`], [`tree`] decrypts it and checks the MAC, and the store
//! writes the plaintext back in its format. A file whose MAC does not match is
//! refused: nothing of it is returned.
//!
//! Why native and not the `sops` binary: no process per file (decrypting 100 files is
//! one key unwrap each and AES-GCM, not 100 `fork`/`exec`s and 100 Go start-ups), no
//! plaintext on a pipe or in another process's environment, and no binary to install
//! beside Mooring. The reference for compatibility is the real `sops` (the tests
//! encrypt with it).

mod decrypter;
mod error;
pub mod keys;
pub mod metadata;
mod shamir;
pub mod stores;
pub mod tree;
pub mod value;

pub use decrypter::Sops;
pub use error::SopsError;
pub use keys::Keys;
pub use stores::Format;

use zeroize::Zeroizing;

/// A decrypted file: its plaintext, as `sops decrypt` writes it, and the plaintext
/// values it held (for masking wherever people see values).
pub struct Decrypted {
    /// The file in its own format, decrypted.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// Every value that was encrypted, decrypted (strings; empty ones left out).
    pub secrets: Vec<String>,
}

impl std::fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decrypted")
            .field("plaintext", &format_args!("{} bytes", self.plaintext.len()))
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

/// The format of `bytes` when they are a SOPS-encrypted file, `None` when they are
/// not. `path` decides between JSON and binary as `sops` does (a binary file is
/// stored as JSON with one `data` value; a `.json` file stays JSON).
pub fn detect(bytes: &[u8], path: &str) -> Option<Format> {
    stores::detect(bytes, path)
}

/// Decrypts `bytes`, stored as `format`, with `keys`; the MAC must match.
pub fn decrypt(bytes: &[u8], format: Format, keys: &Keys) -> Result<Decrypted, SopsError> {
    let (mut branches, meta) = stores::read(bytes, format)?;
    let data_key = keys.data_key(&meta)?;
    let mut secrets = Vec::new();
    tree::decrypt(&mut branches, &meta, &data_key, &mut secrets)?;
    let plaintext = stores::write(&branches, format)?;
    Ok(Decrypted {
        plaintext: Zeroizing::new(plaintext),
        secrets,
    })
}
