//! API tokens and their roles.
//!
//! A token is `mrg_` followed by 64 lowercase hex digits (32 bytes from the operating
//! system's random source). It is shown once, by [`Store::create_token`]; the store
//! keeps only its SHA-256 and a short display prefix (`mrg_` and the next 8 digits,
//! 32 of the 256 random bits) so people can tell tokens apart in listings.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{params, OptionalExtension, Row, ToSql};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Store, StoreError};

/// What every token starts with.
pub const TOKEN_PREFIX: &str = "mrg_";

/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;
/// Hex digits after [`TOKEN_PREFIX`] kept as the display prefix.
const DISPLAY_DIGITS: usize = 8;
/// `last_used_at` is written at most this often per token.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// What a token may do. Ordered: `Viewer < Operator < Admin`, so a route that needs a
/// role accepts `token.role >= needed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read everything (never a credential).
    Viewer,
    /// Viewer, plus sync, rollback, pin and other operations on apps.
    Operator,
    /// Operator, plus token management and settings.
    Admin,
}

impl Role {
    /// `viewer`, `operator` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a [`Role`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role '{0}': use viewer, operator or admin")]
pub struct ParseRoleError(pub String);

impl FromStr for Role {
    type Err = ParseRoleError;

    /// Accepts `viewer`, `operator` and `admin` (lowercase only).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(ParseRoleError(other.to_owned())),
        }
    }
}

impl ToSql for Role {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Role {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value
            .as_str()?
            .parse()
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// Who a valid token belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The token's id (for [`Store::revoke_token`]).
    pub id: i64,
    /// The name it was given.
    pub name: String,
    /// What it may do.
    pub role: Role,
}

/// A token as listed by [`Store::tokens`]; never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The token's id.
    pub id: i64,
    /// The name it was given.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// `mrg_` and the first 8 hex digits, to recognise it.
    pub prefix: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms, to the minute; `None` if never used.
    pub last_used_at: Option<i64>,
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Whether `token` has the shape of a token; others are refused without a lookup.
fn well_formed(token: &str) -> bool {
    token.strip_prefix(TOKEN_PREFIX).is_some_and(|rest| {
        rest.len() == TOKEN_BYTES * 2
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn record_from_row(row: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        role: row.get(2)?,
        prefix: row.get(3)?,
        created_at: row.get(4)?,
        last_used_at: row.get(5)?,
    })
}

impl Store {
    /// Creates a token named `name` with `role` and returns it. This is the only time
    /// the token is available: the store keeps its SHA-256 only.
    pub fn create_token(&self, name: &str, role: Role, now: i64) -> Result<String, StoreError> {
        let mut secret = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut secret).map_err(|source| StoreError::Random { source })?;
        let digits = to_hex(&secret);
        let token = format!("{TOKEN_PREFIX}{digits}");
        let prefix = format!("{TOKEN_PREFIX}{}", &digits[..DISPLAY_DIGITS]);
        let inner = self.lock();
        inner
            .conn
            .execute(
                "INSERT INTO api_tokens (name, role, hash, prefix, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![name, role, hash(&token).as_slice(), prefix, now],
            )
            .map_err(self.err("creating an API token"))?;
        Ok(token)
    }

    /// The owner of `token`, or `None` if it is unknown, revoked or malformed. Records
    /// the use at `now` (at most once a minute per token, to spare writes).
    ///
    /// The lookup is an SQL equality on the token's SHA-256. Its timing can depend on
    /// the hash, but an attacker who learns about the hash of a guess learns nothing
    /// about the secret behind a stored hash (finding a token from its hash means
    /// inverting SHA-256 over 256 random bits), so no constant-time comparison is needed.
    pub fn authenticate(&self, token: &str, now: i64) -> Result<Option<TokenInfo>, StoreError> {
        if !well_formed(token) {
            return Ok(None);
        }
        let inner = self.lock();
        let info = inner
            .conn
            .query_row(
                "SELECT id, name, role FROM api_tokens WHERE hash = ?1",
                [hash(token).as_slice()],
                |row| {
                    Ok(TokenInfo {
                        id: row.get(0)?,
                        name: row.get(1)?,
                        role: row.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(self.err("looking up an API token"))?;
        if let Some(info) = &info {
            inner
                .conn
                .execute(
                    "UPDATE api_tokens SET last_used_at = ?2
                     WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= ?2 - ?3)",
                    params![info.id, now, LAST_USED_RESOLUTION_MS],
                )
                .map_err(self.err("recording an API token's use"))?;
        }
        Ok(info)
    }

    /// Every token (never the token itself), oldest first.
    pub fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let inner = self.lock();
        let map = self.err("listing API tokens");
        let mut stmt = inner
            .conn
            .prepare_cached(
                "SELECT id, name, role, prefix, created_at, last_used_at
                 FROM api_tokens ORDER BY id",
            )
            .map_err(&map)?;
        let rows = stmt.query_map([], record_from_row).map_err(&map)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&map)
    }

    /// Deletes token `id`; it stops authenticating at once. Returns whether it existed.
    pub fn revoke_token(&self, id: i64) -> Result<bool, StoreError> {
        let inner = self.lock();
        let n = inner
            .conn
            .execute("DELETE FROM api_tokens WHERE id = ?1", [id])
            .map_err(self.err("revoking an API token"))?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_order_and_parse() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        for r in [Role::Viewer, Role::Operator, Role::Admin] {
            assert_eq!(r.to_string().parse::<Role>(), Ok(r));
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{r}\""));
        }
        assert!("Admin".parse::<Role>().is_err());
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn token_shape() {
        assert_eq!(to_hex(&[0x00, 0x9f, 0xff]), "009fff");
        let good = format!("{TOKEN_PREFIX}{}", "a1".repeat(32));
        assert!(well_formed(&good));
        assert!(!well_formed(&good[..good.len() - 1]));
        assert!(!well_formed(&good.to_uppercase()));
        assert!(!well_formed(&format!("xyz_{}", "a1".repeat(32))));
    }
}
