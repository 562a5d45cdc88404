//! Encrypted repository files. The loader hands every data file it reads — the
//! project's `.env`, each `env_file`, a secret's or config's `file:` — to the
//! [`Decrypter`] its caller gives ([`crate::LoadOptions::decrypter`]; the
//! `mooring-sops` crate implements it for SOPS). A file that is encrypted is used
//! decrypted; the values it held join [`mooring_core::Project::secret_values`], so
//! they are masked wherever people see values. The loader itself knows no format.

/// A decrypted file.
pub struct Plaintext {
    /// The file's content, decrypted (or, when no key opens it and the caller asked
    /// for masking, with every encrypted value replaced by `***`).
    pub bytes: Vec<u8>,
    /// The values that were encrypted.
    pub secrets: Vec<String>,
    /// Set when no key opened the file and its values are `***`: why.
    pub masked: Option<String>,
}

/// Decrypts repository files that are encrypted.
pub trait Decrypter: Send + Sync + std::fmt::Debug {
    /// `Ok(None)`: `bytes` (the file at `path`, relative to the snapshot) are not
    /// encrypted. `Err`: they are and cannot be decrypted (the message says why and
    /// what to do; it never holds a value).
    fn decrypt(&self, bytes: &[u8], path: &str) -> Result<Option<Plaintext>, String>;
}
