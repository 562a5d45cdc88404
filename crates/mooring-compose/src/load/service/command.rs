//! A service's `command` and `entrypoint`: a list, or a string split into words the way
//! Compose does (shell-like quoting, no expansion).

use crate::decode::*;
use crate::error::LoadError;
use crate::yaml::{Node, Value};

/// `key` (`command` or `entrypoint`) of the service; `None` when absent or null.
pub(super) fn command(
    service: &Node,
    what: &str,
    key: &str,
) -> Result<Option<Vec<String>>, LoadError> {
    service
        .get(key)
        .map(|c| decode(c, &format!("{what}.{key}")))
        .transpose()
        .map(Option::flatten)
}

/// Splits a command string the way Compose does (shell-like quoting, no expansion).
fn shell_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => cur.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\' | '$' | '`') => cur.push(c),
                            c => {
                                cur.push('\\');
                                cur.push(c);
                            }
                        },
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next()?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

fn decode(n: &Node, what: &str) -> Result<Option<Vec<String>>, LoadError> {
    match &n.value {
        Value::Null => Ok(None),
        Value::Scalar { text, .. } => shell_words(text)
            .map(Some)
            .ok_or_else(|| err(n, format!("{what}: unterminated quote in {text:?}"))),
        Value::Seq(_) => string_list(n, what).map(Some),
        Value::Map(_) => Err(err(
            n,
            format!("{what} must be a string or a list, found a mapping"),
        )),
    }
}
