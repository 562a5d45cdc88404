//! What goes wrong decrypting a SOPS file, in words an operator can act on. No
//! message ever holds a decrypted value.

/// Why a SOPS file could not be decrypted.
#[derive(Debug, thiserror::Error)]
pub enum SopsError {
    /// The file is not a well-formed SOPS file of its format.
    #[error("not a valid SOPS file: {0}")]
    Format(String),
    /// One encrypted value is broken or does not decrypt.
    #[error("the value at {path} {why}")]
    Value { path: String, why: String },
    /// No configured key is one of the file's recipients.
    #[error("no configured key can decrypt it: it is encrypted for {recipients}; give one of their identities (mooring.yaml `sops.age`, or SOPS_AGE_KEY_FILE)")]
    NoKey { recipients: String },
    /// A recipient matched but its stanza did not open (corrupt or tampered).
    #[error("its data key does not decrypt with the configured identity: {0}")]
    DataKey(String),
    /// The MAC does not match the values: the file was changed without the key.
    #[error("its MAC does not match its content: the file was changed after it was encrypted (tampered, or edited without sops); nothing of it is used")]
    MacMismatch,
    /// A SOPS feature Mooring does not decrypt.
    #[error("{0}")]
    Unsupported(String),
}
