//! API tokens, their roles, expiry and app limits; and the web UI's sessions.
//!
//! A token is `mrg_` followed by 64 lowercase hex digits (32 bytes from the operating
//! system's random source). It is shown once, by [`Store::create_token`]; the store
//! keeps only its SHA-256 and a short display prefix (`mrg_` and the next 8 digits,
//! 32 of the 256 random bits) so people can tell tokens apart in listings. A token may
//! expire ([`TokenOptions::expires_at`]) and may be limited to some apps
//! ([`TokenOptions::apps`]); an expired token authenticates no more.
//!
//! A session (the web UI's cookie) is `mrs_` and 64 hex digits, random, made by
//! [`Store::create_session`] after a log-in with a token; the store keeps its SHA-256,
//! the token it stands for and when it expires. It ends at log-out
//! ([`Store::end_session`]), at its expiry or its token's, and with its token
//! (revoking the token deletes its sessions). Sessions live in the store so a restart
//! of the daemon keeps people logged in, and the CLI's `token` commands see them.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{params, OptionalExtension, Row, ToSql};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Store, StoreError};

/// What every token starts with.
pub const TOKEN_PREFIX: &str = "mrg_";
/// What every session id starts with.
pub const SESSION_PREFIX: &str = "mrs_";

/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;
/// Hex digits after [`TOKEN_PREFIX`] kept as the display prefix.
const DISPLAY_DIGITS: usize = 8;
/// `last_used_at` is written at most this often per token.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// What a token may do. Ordered: `Viewer < Operator < Admin`, so a route that needs a
/// role accepts `token.role >= needed`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TokenInfo {
    /// The token's id (for [`Store::revoke_token`]).
    pub id: i64,
    /// The name it was given.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it stops working (unix ms); `None`: never.
    pub expires_at: Option<i64>,
    /// The apps it is limited to; `None`: every app.
    pub apps: Option<Vec<String>>,
}

/// Limits given to a new token (the default: none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenOptions {
    /// When it stops working (unix ms); `None`: never.
    pub expires_at: Option<i64>,
    /// The apps it is limited to; `None`: every app. An empty list is refused.
    pub apps: Option<Vec<String>>,
}

/// A token as listed by [`Store::tokens`]; never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// When it stops working (unix ms); `None`: never.
    pub expires_at: Option<i64>,
    /// The apps it is limited to; `None`: every app.
    pub apps: Option<Vec<String>>,
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
    shaped(token, TOKEN_PREFIX)
}

/// `prefix` and 64 lowercase hex digits.
fn shaped(token: &str, prefix: &str) -> bool {
    token.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == TOKEN_BYTES * 2
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A random secret: `prefix` and 64 hex digits.
fn random_secret(prefix: &str) -> Result<String, StoreError> {
    let mut secret = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut secret).map_err(|source| StoreError::Random { source })?;
    Ok(format!("{prefix}{}", to_hex(&secret)))
}

/// The `apps` column: a JSON array, or NULL for every app.
fn apps_from_column(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Vec<String>>> {
    let text: Option<String> = row.get(index)?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                index,
                rusqlite::types::Type::Text,
                Box::new(e),
            )
        })
    })
    .transpose()
}

fn record_from_row(row: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        role: row.get(2)?,
        prefix: row.get(3)?,
        created_at: row.get(4)?,
        last_used_at: row.get(5)?,
        expires_at: row.get(6)?,
        apps: apps_from_column(row, 7)?,
    })
}

fn info_from_row(row: &Row<'_>) -> rusqlite::Result<TokenInfo> {
    Ok(TokenInfo {
        id: row.get(0)?,
        name: row.get(1)?,
        role: row.get(2)?,
        expires_at: row.get(3)?,
        apps: apps_from_column(row, 4)?,
    })
}

/// How long a session lives at most (its token's expiry may end it sooner).
pub const SESSION_LIFETIME_MS: i64 = 7 * 24 * 3600 * 1000;

impl Store {
    /// Creates a token named `name` with `role` and returns it. This is the only time
    /// the token is available: the store keeps its SHA-256 only.
    pub fn create_token(&self, name: &str, role: Role, now: i64) -> Result<String, StoreError> {
        self.create_token_with(name, role, &TokenOptions::default(), now)
    }

    /// [`Store::create_token`] with an expiry and/or a list of apps.
    pub fn create_token_with(
        &self,
        name: &str,
        role: Role,
        options: &TokenOptions,
        now: i64,
    ) -> Result<String, StoreError> {
        let map = self.err("creating an API token");
        let apps = match &options.apps {
            Some(apps) if apps.is_empty() => {
                return Err(StoreError::Refused {
                    reason: "a token limited to apps needs at least one app name".into(),
                })
            }
            Some(apps) => Some(
                serde_json::to_string(apps)
                    .map_err(|e| map(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?,
            ),
            None => None,
        };
        let token = random_secret(TOKEN_PREFIX)?;
        let prefix = token[..TOKEN_PREFIX.len() + DISPLAY_DIGITS].to_string();
        let inner = self.lock();
        inner
            .conn
            .execute(
                "INSERT INTO api_tokens (name, role, hash, prefix, created_at, expires_at, apps)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    name,
                    role,
                    hash(&token).as_slice(),
                    prefix,
                    now,
                    options.expires_at,
                    apps
                ],
            )
            .map_err(map)?;
        Ok(token)
    }

    /// The owner of `token`, or `None` if it is unknown, revoked, expired or malformed. Records
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
                "SELECT id, name, role, expires_at, apps FROM api_tokens
                 WHERE hash = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
                params![hash(token).as_slice(), now],
                info_from_row,
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
                "SELECT id, name, role, prefix, created_at, last_used_at, expires_at, apps
                 FROM api_tokens ORDER BY id",
            )
            .map_err(&map)?;
        let rows = stmt.query_map([], record_from_row).map_err(&map)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&map)
    }

    /// Deletes token `id` and its sessions; they stop authenticating at once. Returns
    /// whether it existed.
    pub fn revoke_token(&self, id: i64) -> Result<bool, StoreError> {
        let inner = self.lock();
        // The sessions go by `ON DELETE CASCADE`.
        let n = inner
            .conn
            .execute("DELETE FROM api_tokens WHERE id = ?1", [id])
            .map_err(self.err("revoking an API token"))?;
        Ok(n > 0)
    }

    /// Starts a session for token `token_id` and returns its id (shown once: the store
    /// keeps its SHA-256). It lives [`SESSION_LIFETIME_MS`], or until its token expires
    /// if that is sooner. Expired sessions are deleted on the way.
    pub fn create_session(&self, token_id: i64, now: i64) -> Result<String, StoreError> {
        let session = random_secret(SESSION_PREFIX)?;
        let inner = self.lock();
        let map = self.err("starting a session");
        inner
            .conn
            .execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])
            .map_err(&map)?;
        let n = inner
            .conn
            .execute(
                "INSERT INTO sessions (hash, token_id, created_at, expires_at)
                 SELECT ?1, id, ?3, min(?3 + ?4, coalesce(expires_at, ?3 + ?4))
                 FROM api_tokens WHERE id = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
                params![
                    hash(&session).as_slice(),
                    token_id,
                    now,
                    SESSION_LIFETIME_MS
                ],
            )
            .map_err(&map)?;
        if n == 0 {
            return Err(StoreError::Refused {
                reason: format!("token {token_id} is revoked or expired: no session started"),
            });
        }
        Ok(session)
    }

    /// The token behind `session` with its role and limits, or `None` when the session
    /// is unknown, ended, expired or malformed, or its token is revoked or expired.
    pub fn session(&self, session: &str, now: i64) -> Result<Option<TokenInfo>, StoreError> {
        if !shaped(session, SESSION_PREFIX) {
            return Ok(None);
        }
        let inner = self.lock();
        inner
            .conn
            .query_row(
                "SELECT t.id, t.name, t.role, t.expires_at, t.apps
                 FROM sessions s JOIN api_tokens t ON t.id = s.token_id
                 WHERE s.hash = ?1 AND s.expires_at > ?2
                   AND (t.expires_at IS NULL OR t.expires_at > ?2)",
                params![hash(session).as_slice(), now],
                info_from_row,
            )
            .optional()
            .map_err(self.err("looking up a session"))
    }

    /// Ends `session` (log-out). Returns whether it existed.
    pub fn end_session(&self, session: &str) -> Result<bool, StoreError> {
        if !shaped(session, SESSION_PREFIX) {
            return Ok(false);
        }
        let inner = self.lock();
        let n = inner
            .conn
            .execute(
                "DELETE FROM sessions WHERE hash = ?1",
                [hash(session).as_slice()],
            )
            .map_err(self.err("ending a session"))?;
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
