//! Compose-compatible variable interpolation.
//!
//! This module reproduces the behaviour of the `template` package of
//! [compose-go](https://github.com/compose-spec/compose-go) (v2), which is what
//! `docker compose` uses to substitute variables in compose files and in
//! `.env` / `env_file` files.
//!
//! Supported syntax:
//!
//! | syntax             | result                                                      |
//! |--------------------|-------------------------------------------------------------|
//! | `$VAR`, `${VAR}`   | value of `VAR`, or an empty string if unset (reported)      |
//! | `${VAR:-default}`  | `default` if `VAR` is unset **or empty**                    |
//! | `${VAR-default}`   | `default` if `VAR` is unset                                 |
//! | `${VAR:?message}`  | error if `VAR` is unset **or empty**                        |
//! | `${VAR?message}`   | error if `VAR` is unset                                     |
//! | `${VAR:+alt}`      | `alt` if `VAR` is set **and non-empty**, else empty         |
//! | `${VAR+alt}`       | `alt` if `VAR` is set, else empty                           |
//! | `$$`               | a literal `$`                                               |
//!
//! Names match `[A-Za-z_][A-Za-z0-9_]*`. Defaults, alternatives and error
//! messages are interpolated themselves, so `${A:-${B:-x}}` and `${A:-$B}`
//! work. A `$` that is followed by neither `$`, `{` nor a character that can
//! start a name is kept literally (`"$1"`, `"a $ b"`, a trailing `$`).
//!
//! Compose-go details that are reproduced on purpose:
//!
//! * The operator is the one directly after the name; everything after it up
//!   to the matching `}` is the argument (`${A-x:-y}` has the default `x:-y`).
//! * The argument of an operator is interpolated *before* the variable is
//!   inspected, even when it ends up unused. Consequently
//!   `${SET:-${MISSING:?boom}}` is an error and `${SET:-$UNSET}` reports
//!   `UNSET` as unset, exactly like compose (which logs a warning for it).
//! * The closing brace is found by counting `{`/`}` pairs (any `{`, not only
//!   `${`), so `${A:-{x}}` yields `{x}` when `A` is unset. If the braces do not
//!   balance, the last `}` on the same line closes the expression, and a
//!   `${...}` expression never spans a line break.
//! * `${NAME[...]}` (compose-go's "named mapping" syntax, which `docker
//!   compose` does not enable) is left in the output verbatim.
//!
//! An unterminated `${`, an empty or invalid name inside braces (`${}`,
//! `${A B}`, `${ A}`, `${A!}`) is an [`InterpolationError::Invalid`] error.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;

/// Maximum nesting depth of `${...}` expressions inside operator arguments.
///
/// Compose has no such limit; it exists here only to keep hostile input from
/// exhausting the stack.
const MAX_DEPTH: usize = 64;

/// Source of variable values.
///
/// `None` means "unset", which is distinct from `Some(String::new())`
/// ("set but empty") for the `:-` / `-`, `:?` / `?` and `:+` / `+` operators.
pub trait Lookup {
    /// Returns the value of `name`, or `None` if it is unset.
    fn get(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Lookup for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

impl<S: BuildHasher> Lookup for HashMap<String, String, S> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

impl Lookup for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        BTreeMap::get(self, name).cloned()
    }
}

/// Error returned by [`interpolate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolationError {
    /// A `${NAME:?message}` / `${NAME?message}` variable had no (non-empty)
    /// value. `message` is the interpolated user text, possibly empty.
    #[error("required variable {name} is missing a value{}", MessageSuffix(.message))]
    Required {
        /// Name of the missing variable.
        name: String,
        /// User-provided message after `:?` / `?` (already interpolated).
        message: String,
    },
    /// The input is not a valid template.
    #[error("invalid interpolation format for {input:?}: {reason}")]
    Invalid {
        /// The complete input that was being interpolated.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Renders `": message"`, or nothing when the message is empty (compose's
/// wording for `${VAR:?}`).
struct MessageSuffix<'a>(&'a str);

impl fmt::Display for MessageSuffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, ": {}", self.0)
        }
    }
}

/// Result of a successful [`interpolate`] call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interpolated {
    /// The interpolated string.
    pub value: String,
    /// Variables that were referenced as `$NAME` / `${NAME}` but are unset and
    /// were therefore replaced by an empty string (compose warns: "The "NAME"
    /// variable is not set. Defaulting to a blank string."). Each name appears
    /// once, in order of first reference.
    pub unset: Vec<String>,
}

/// Interpolates `input` the way `docker compose` does, resolving variables
/// through `vars`.
///
/// # Errors
///
/// [`InterpolationError::Required`] when a `:?` / `?` variable is missing,
/// [`InterpolationError::Invalid`] when the input is malformed.
pub fn interpolate(input: &str, vars: &dyn Lookup) -> Result<Interpolated, InterpolationError> {
    if !input.contains('$') {
        return Ok(Interpolated {
            value: input.to_owned(),
            unset: Vec::new(),
        });
    }
    let mut state = State {
        vars,
        input,
        unset: Vec::new(),
    };
    let mut value = String::with_capacity(input.len());
    state.substitute(input, &mut value, 0)?;
    Ok(Interpolated {
        value,
        unset: state.unset,
    })
}

/// Operators accepted after a braced name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `:-`
    DefaultIfEmpty,
    /// `-`
    DefaultIfUnset,
    /// `:?`
    RequiredNonEmpty,
    /// `?`
    Required,
    /// `:+`
    AltIfNonEmpty,
    /// `+`
    AltIfSet,
}

struct State<'a> {
    vars: &'a dyn Lookup,
    /// Top-level input, used in error messages.
    input: &'a str,
    unset: Vec<String>,
}

impl State<'_> {
    fn invalid(&self, reason: String) -> InterpolationError {
        InterpolationError::Invalid {
            input: self.input.to_owned(),
            reason,
        }
    }

    /// Appends the interpolation of `s` to `out`.
    fn substitute(
        &mut self,
        s: &str,
        out: &mut String,
        depth: usize,
    ) -> Result<(), InterpolationError> {
        if depth > MAX_DEPTH {
            return Err(self.invalid(format!(
                "expressions are nested more than {MAX_DEPTH} levels deep"
            )));
        }
        let bytes = s.as_bytes();
        let mut i = 0;
        while let Some(off) = s[i..].find('$') {
            let dollar = i + off;
            out.push_str(&s[i..dollar]);
            i = match bytes.get(dollar + 1) {
                Some(b'$') => {
                    out.push('$');
                    dollar + 2
                }
                Some(b'{') => self.braced(s, dollar, out, depth)?,
                Some(&c) if is_name_start(c) => {
                    let end = name_end(bytes, dollar + 1);
                    self.push_var(&s[dollar + 1..end], out);
                    end
                }
                _ => {
                    out.push('$');
                    dollar + 1
                }
            };
        }
        out.push_str(&s[i..]);
        Ok(())
    }

    /// Handles the `${...}` expression whose `$` is at `dollar`; returns the
    /// index just past it.
    fn braced(
        &mut self,
        s: &str,
        dollar: usize,
        out: &mut String,
        depth: usize,
    ) -> Result<usize, InterpolationError> {
        let bytes = s.as_bytes();
        let start = dollar + 2;
        // A `${...}` expression never spans lines (compose's regexp `.` does
        // not match `\n`).
        let line_end = s[start..].find('\n').map_or(s.len(), |n| start + n);
        let end = if bytes.get(start).copied().is_some_and(is_name_start) {
            name_end(bytes, start)
        } else {
            start
        };
        let name = &s[start..end];
        if name.is_empty() {
            return Err(self.invalid(match bytes.get(start) {
                Some(b'}') => "empty variable name in \"${}\"".to_owned(),
                Some(b'\n') | None => "\"${\" is not followed by a variable name".to_owned(),
                Some(_) => format!(
                    "\"${{\" is not followed by a valid variable name (got {:?})",
                    next_char(s, start)
                ),
            }));
        }
        if let Some((op, arg_start)) = parse_op(bytes, end) {
            let close = find_closing_brace(bytes, arg_start, line_end).ok_or_else(|| {
                self.invalid(format!(
                    "missing closing brace for \"{}\"",
                    &s[dollar..arg_start]
                ))
            })?;
            self.apply(name, op, &s[arg_start..close], out, depth)?;
            return Ok(close + 1);
        }
        match bytes.get(end) {
            Some(b'}') => {
                self.push_var(name, out);
                Ok(end + 1)
            }
            Some(b'[') if is_named_mapping(bytes, end, line_end) => {
                // compose-go keeps `${name[key]...}` verbatim unless named
                // mappings are configured, which docker compose does not do.
                let close = find_closing_brace(bytes, end, line_end).unwrap_or(end);
                out.push_str(&s[dollar..=close]);
                Ok(close + 1)
            }
            Some(b'\n') | None => {
                Err(self.invalid(format!("missing closing brace for \"{}\"", &s[dollar..end])))
            }
            Some(_) => Err(self.invalid(format!(
                "unexpected character {:?} after variable name {name:?}",
                next_char(s, end)
            ))),
        }
    }

    /// Evaluates `${name<op>arg}` into `out`.
    fn apply(
        &mut self,
        name: &str,
        op: Op,
        arg: &str,
        out: &mut String,
        depth: usize,
    ) -> Result<(), InterpolationError> {
        // compose-go interpolates the argument before looking at the
        // variable, whether or not the argument is used.
        let mut arg_value = String::new();
        self.substitute(arg, &mut arg_value, depth + 1)?;
        let value = self.vars.get(name);
        let set = value.is_some();
        let value = value.unwrap_or_default();
        let non_empty = !value.is_empty();
        let result = match op {
            Op::DefaultIfEmpty => {
                if non_empty {
                    value
                } else {
                    arg_value
                }
            }
            Op::DefaultIfUnset => {
                if set {
                    value
                } else {
                    arg_value
                }
            }
            // When the alternative does not apply, the (empty) value is used.
            Op::AltIfNonEmpty => {
                if non_empty {
                    arg_value
                } else {
                    value
                }
            }
            Op::AltIfSet => {
                if set {
                    arg_value
                } else {
                    value
                }
            }
            Op::RequiredNonEmpty | Op::Required => {
                let ok = if op == Op::Required { set } else { non_empty };
                if !ok {
                    return Err(InterpolationError::Required {
                        name: name.to_owned(),
                        message: arg_value,
                    });
                }
                value
            }
        };
        out.push_str(&result);
        Ok(())
    }

    /// Appends the value of a plain `$NAME` / `${NAME}` reference.
    fn push_var(&mut self, name: &str, out: &mut String) {
        match self.vars.get(name) {
            Some(v) => out.push_str(&v),
            None => {
                if !self.unset.iter().any(|n| n == name) {
                    self.unset.push(name.to_owned());
                }
            }
        }
    }
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Index just past the name starting at `start` (which must be a name start).
fn name_end(bytes: &[u8], start: usize) -> usize {
    bytes[start..]
        .iter()
        .position(|&c| !is_name_char(c))
        .map_or(bytes.len(), |n| start + n)
}

/// The character at byte index `i` of `s` (which must be a char boundary).
fn next_char(s: &str, i: usize) -> char {
    s[i..].chars().next().unwrap_or_default()
}

/// Recognises an operator at `i`; returns it and the index just past it.
fn parse_op(bytes: &[u8], i: usize) -> Option<(Op, usize)> {
    match (bytes.get(i), bytes.get(i + 1)) {
        (Some(b':'), Some(b'-')) => Some((Op::DefaultIfEmpty, i + 2)),
        (Some(b':'), Some(b'?')) => Some((Op::RequiredNonEmpty, i + 2)),
        (Some(b':'), Some(b'+')) => Some((Op::AltIfNonEmpty, i + 2)),
        (Some(b'-'), _) => Some((Op::DefaultIfUnset, i + 1)),
        (Some(b'?'), _) => Some((Op::Required, i + 1)),
        (Some(b'+'), _) => Some((Op::AltIfSet, i + 1)),
        _ => None,
    }
}

/// Finds the `}` closing an expression whose body starts at `from`, looking
/// no further than `line_end`.
///
/// Mirrors compose-go: braces are counted (an opening `{` also skips the
/// byte after it), and when they do not balance, the last `}` of the line
/// closes the expression.
fn find_closing_brace(bytes: &[u8], from: usize, line_end: usize) -> Option<usize> {
    let mut open = 1usize;
    let mut j = from;
    while j < line_end {
        match bytes[j] {
            b'}' => {
                open -= 1;
                if open == 0 {
                    return Some(j);
                }
            }
            b'{' => {
                open += 1;
                j += 1;
            }
            _ => {}
        }
        j += 1;
    }
    bytes[from..line_end]
        .iter()
        .rposition(|&c| c == b'}')
        .map(|n| from + n)
}

/// Whether `${name[...` (with `[` at `bracket`) matches compose-go's named
/// mapping syntax `name[key]` optionally followed by an operator, then `}`.
fn is_named_mapping(bytes: &[u8], bracket: usize, line_end: usize) -> bool {
    let has_brace_after = |i: usize| bytes[i.min(line_end)..line_end].contains(&b'}');
    (bracket + 1..line_end).any(|p| {
        if bytes[p] != b']' {
            return false;
        }
        match bytes.get(p + 1) {
            Some(b'}') => true,
            Some(b':') => {
                matches!(bytes.get(p + 2), Some(b'-' | b'+' | b'?' | b'}'))
                    && has_brace_after(p + 3)
            }
            Some(b'-' | b'+' | b'?') => has_brace_after(p + 2),
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SET=value`, `EMPTY=""`, everything else unset, plus extras.
    fn vars(extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut m: HashMap<String, String> = [("SET", "value"), ("EMPTY", ""), ("FOO", "first")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        for (k, v) in extra {
            m.insert((*k).to_owned(), (*v).to_owned());
        }
        m
    }

    fn ok(input: &str) -> String {
        interpolate(input, &vars(&[])).unwrap().value
    }

    fn err(input: &str) -> InterpolationError {
        interpolate(input, &vars(&[])).unwrap_err()
    }

    fn assert_invalid(input: &str) {
        match err(input) {
            InterpolationError::Invalid { input: i, .. } => assert_eq!(i, input),
            other @ InterpolationError::Required { .. } => {
                panic!("expected invalid for {input:?}, got {other:?}")
            }
        }
    }

    fn required(name: &str, message: &str) -> InterpolationError {
        InterpolationError::Required {
            name: name.to_owned(),
            message: message.to_owned(),
        }
    }

    #[test]
    fn no_dollar_is_returned_verbatim() {
        let r = interpolate("plain text {}", &vars(&[])).unwrap();
        assert_eq!(r.value, "plain text {}");
        assert!(r.unset.is_empty());
        assert_eq!(ok(""), "");
    }

    #[test]
    fn plain_and_braced_references() {
        assert_eq!(ok("This $FOO var"), "This first var");
        assert_eq!(ok("This ${FOO} var"), "This first var");
        assert_eq!(ok("$SET"), "value");
        assert_eq!(ok("${SET}"), "value");
        assert_eq!(ok("a${EMPTY}b"), "ab");
        assert_eq!(ok("$SET$FOO"), "valuefirst");
        assert_eq!(ok("${SET}${FOO}"), "valuefirst");
        assert_eq!(ok("x${SET}y"), "xvaluey");
    }

    #[test]
    fn names_are_case_sensitive_and_greedy() {
        let v = vars(&[("lower", "l"), ("_U1", "u"), ("SET_2", "s2")]);
        assert_eq!(interpolate("$lower", &v).unwrap().value, "l");
        assert_eq!(interpolate("${_U1}", &v).unwrap().value, "u");
        assert_eq!(interpolate("$SET_2", &v).unwrap().value, "s2");
        // `$SETX` is the variable SETX, not SET followed by X.
        let r = interpolate("$SETX", &v).unwrap();
        assert_eq!(r.value, "");
        assert_eq!(r.unset, vec!["SETX".to_owned()]);
        assert_eq!(interpolate("$set", &v).unwrap().value, "");
    }

    #[test]
    fn non_braced_reference_stops_at_non_name_characters() {
        // compose issue 8601: operators are not supported without braces.
        assert_eq!(ok("$FOO-bar"), "first-bar");
        assert_eq!(ok("$FOO:-bar"), "first:-bar");
        assert_eq!(ok("$FOO.txt"), "first.txt");
        assert_eq!(ok("$FOO}"), "first}");
        assert_eq!(ok("$UNSET-bar"), "-bar");
    }

    #[test]
    fn unset_variables_become_empty_and_are_reported() {
        let r = interpolate("This ${missing} var $OTHER and $missing", &vars(&[])).unwrap();
        assert_eq!(r.value, "This  var  and ");
        assert_eq!(r.unset, vec!["missing".to_owned(), "OTHER".to_owned()]);
        // Empty but set is not reported.
        let r = interpolate("This ${EMPTY} var", &vars(&[])).unwrap();
        assert_eq!(r.value, "This  var");
        assert!(r.unset.is_empty());
    }

    #[test]
    fn default_if_unset_or_empty() {
        assert_eq!(ok("ok ${SET:-def}"), "ok value");
        assert_eq!(ok("ok ${EMPTY:-def}"), "ok def");
        assert_eq!(ok("ok ${UNSET:-def}"), "ok def");
        assert_eq!(ok("ok ${UNSET:-}"), "ok ");
        assert_eq!(
            ok("ok ${EMPTY:-/non:-alphanumeric}"),
            "ok /non:-alphanumeric"
        );
        let r = interpolate("${UNSET:-x}", &vars(&[])).unwrap();
        assert!(r.unset.is_empty());
    }

    #[test]
    fn default_if_unset() {
        assert_eq!(ok("ok ${SET-def}"), "ok value");
        assert_eq!(ok("ok ${EMPTY-def}"), "ok ");
        assert_eq!(ok("ok ${UNSET-def}"), "ok def");
        assert_eq!(ok("ok ${UNSET-}"), "ok ");
        assert_eq!(
            ok("${UNSET-default_value_for_unset_var}"),
            "default_value_for_unset_var"
        );
        assert!(interpolate("${UNSET-}", &vars(&[]))
            .unwrap()
            .unset
            .is_empty());
    }

    #[test]
    fn required_non_empty() {
        assert_eq!(ok("ok ${SET:?err}"), "ok value");
        assert_eq!(
            err("${EMPTY:?must be set}"),
            required("EMPTY", "must be set")
        );
        assert_eq!(
            err("not ok ${UNSET:?Mandatory Variable Unset}"),
            required("UNSET", "Mandatory Variable Unset")
        );
        assert_eq!(err("${UNSET:?}"), required("UNSET", ""));
    }

    #[test]
    fn required_set() {
        assert_eq!(ok("ok ${SET?err}"), "ok value");
        assert_eq!(ok("ok ${EMPTY?err}"), "ok ");
        assert_eq!(err("${UNSET?bar-baz}"), required("UNSET", "bar-baz"));
        assert_eq!(err("${UNSET?}"), required("UNSET", ""));
    }

    #[test]
    fn required_error_display() {
        assert_eq!(
            err("${UNSET:?Mandatory Variable Unset}").to_string(),
            "required variable UNSET is missing a value: Mandatory Variable Unset"
        );
        assert_eq!(
            err("${UNSET:?}").to_string(),
            "required variable UNSET is missing a value"
        );
        assert_eq!(
            err("${UNSET?}").to_string(),
            "required variable UNSET is missing a value"
        );
    }

    #[test]
    fn alternative_if_non_empty() {
        assert_eq!(ok("[${SET:+alt}]"), "[alt]");
        assert_eq!(ok("[${EMPTY:+alt}]"), "[]");
        assert_eq!(ok("[${UNSET:+alt}]"), "[]");
        assert!(interpolate("${UNSET:+alt}", &vars(&[]))
            .unwrap()
            .unset
            .is_empty());
    }

    #[test]
    fn alternative_if_set() {
        assert_eq!(ok("[${SET+alt}]"), "[alt]");
        assert_eq!(ok("[${EMPTY+alt}]"), "[alt]");
        assert_eq!(ok("[${UNSET+alt}]"), "[]");
        assert_eq!(ok("[${SET+}]"), "[]");
    }

    #[test]
    fn operator_is_the_first_one_after_the_name() {
        assert_eq!(ok("${UNSET-myerror?msg}"), "myerror?msg");
        assert_eq!(ok("${SET?bar-baz}"), "value");
        assert_eq!(ok("${UNSET-va:-lu:?e}"), "va:-lu:?e");
        assert_eq!(ok("${SET:+va:?lu:-e}"), "va:?lu:-e");
        assert_eq!(ok("${SET+va-lu?e}"), "va-lu?e");
        assert_eq!(err("${UNSET:?val?ue}"), required("UNSET", "val?ue"));
        assert_eq!(err("${UNSET?va-lu+e:?e}"), required("UNSET", "va-lu+e:?e"));
        assert_eq!(ok("${UNSET:-a:b}"), "a:b");
        assert_eq!(ok("${UNSET:-x=y}"), "x=y");
    }

    #[test]
    fn nested_defaults() {
        assert_eq!(ok("ok ${UNSET-$FOO}"), "ok first");
        assert_eq!(ok("ok ${UNSET-${FOO}}"), "ok first");
        assert_eq!(ok("ok ${UNSET-${FOO} ${FOO}}"), "ok first first");
        assert_eq!(ok("ok ${EMPTY:-$FOO}"), "ok first");
        assert_eq!(ok("ok ${EMPTY:-${FOO}}"), "ok first");
        assert_eq!(ok("ok ${EMPTY:-${FOO} ${FOO}}"), "ok first first");
        assert_eq!(ok("${A:-${B:-x}}"), "x");
        assert_eq!(ok("${A:-${B:-${C:-deep}}}"), "deep");
        assert_eq!(ok("${A:-${SET:-x}}"), "value");
        assert_eq!(ok("${SET:-${B:-x}}"), "value");
        assert_eq!(ok("${SET:+<${FOO}>}"), "<first>");
        assert_eq!(ok("${A:-${B:-x}}-${SET}"), "x-value");
        assert_eq!(ok("${A:-${B}x}"), "x");
    }

    #[test]
    fn nested_required_message_is_interpolated() {
        assert_eq!(
            err("not ok ${UNSET:?Mandatory Variable ${FOO}}"),
            required("UNSET", "Mandatory Variable first")
        );
        assert_eq!(
            err("not ok ${UNSET?Mandatory Variable ${FOO}}").to_string(),
            "required variable UNSET is missing a value: Mandatory Variable first"
        );
    }

    #[test]
    fn operator_arguments_are_evaluated_eagerly() {
        // compose-go interpolates the default before looking at the variable.
        assert_eq!(err("${SET:-${NOPE:?inner}}"), required("NOPE", "inner"));
        let r = interpolate("${SET:-$UNSET_DEFAULT}", &vars(&[])).unwrap();
        assert_eq!(r.value, "value");
        assert_eq!(r.unset, vec!["UNSET_DEFAULT".to_owned()]);
        let r = interpolate("${UNSET:-$ALSO_UNSET}", &vars(&[])).unwrap();
        assert_eq!(r.value, "");
        assert_eq!(r.unset, vec!["ALSO_UNSET".to_owned()]);
    }

    #[test]
    fn dollar_dollar_escapes() {
        assert_eq!(ok("$${foo}"), "${foo}");
        assert_eq!(ok("$$"), "$");
        assert_eq!(ok("$$SET"), "$SET");
        assert_eq!(ok("$$$SET"), "$value");
        assert_eq!(ok("$$$$"), "$$");
        assert_eq!(ok("a$$b"), "a$b");
        assert_eq!(ok("${UNSET:-$$}"), "$");
        assert_eq!(ok("${UNSET:-$${SET}}"), "${SET}");
        let r = interpolate("$${UNSET}", &vars(&[])).unwrap();
        assert!(r.unset.is_empty());
    }

    #[test]
    fn lone_dollar_is_literal() {
        assert_eq!(ok("$"), "$");
        assert_eq!(ok("a $ b"), "a $ b");
        assert_eq!(ok("cost: 5$"), "cost: 5$");
        assert_eq!(ok("$1"), "$1");
        assert_eq!(ok("$-x"), "$-x");
        assert_eq!(ok("$}"), "$}");
        assert_eq!(ok("$.$/"), "$.$/");
        assert_eq!(ok("$é"), "$é");
        assert_eq!(ok("${UNSET:-$}"), "$");
        assert_eq!(ok("${UNSET:-$}}"), "$}");
    }

    #[test]
    fn invalid_templates() {
        for input in [
            "${",
            "${}",
            "${ }",
            "${ foo}",
            "${foo }",
            "${foo!}",
            "${A B}",
            "${SET",
            "${SET:-x",
            "${SET-",
            "${1}",
            "${:-x}",
            "${-x}",
            "ok ${A:-${B}",
            "${A:x}",
            "${A:}",
            "${A\n}",
            "${A:-x\n}",
            "${é}",
        ] {
            assert_invalid(input);
        }
    }

    #[test]
    fn invalid_error_display() {
        let e = err("${A B}");
        let text = e.to_string();
        assert!(
            text.starts_with("invalid interpolation format for \"${A B}\": "),
            "{text}"
        );
        let e = err("x ${");
        assert!(e
            .to_string()
            .starts_with("invalid interpolation format for \"x ${\": "));
    }

    #[test]
    fn braces_in_defaults() {
        // compose-go counts every `{`, so balanced braces stay in the default.
        assert_eq!(ok("${UNSET:-{x}}"), "{x}");
        assert_eq!(ok("${UNSET:-{}}"), "{}");
        assert_eq!(ok("${UNSET:-x}}"), "x}");
        assert_eq!(ok("${UNSET:-a}b}"), "ab}");
        assert_eq!(ok("${UNSET:-{\"a\":1}}"), "{\"a\":1}");
        // Unbalanced: the last `}` on the line closes the expression.
        assert_eq!(ok("${UNSET:-{x}"), "{x");
        assert_eq!(ok("${SET:-{x}"), "value");
    }

    #[test]
    fn expressions_do_not_span_lines() {
        assert_eq!(ok("${SET}\n${FOO}"), "value\nfirst");
        assert_eq!(ok("${UNSET:-a}\n}"), "a\n}");
        assert_eq!(ok("${UNSET:-{a}\n}"), "{a\n}");
    }

    #[test]
    fn named_mapping_syntax_is_kept_verbatim() {
        assert_eq!(ok("${secret[key]}"), "${secret[key]}");
        assert_eq!(ok("a ${secret[key]:-x} $SET"), "a ${secret[key]:-x} value");
        assert_invalid("${secret[key]x}");
        assert_invalid("${secret[key}");
    }

    #[test]
    fn multibyte_text_is_preserved() {
        assert_eq!(ok("héllo ${SET} wörld €"), "héllo value wörld €");
        assert_eq!(ok("${UNSET:-ünïcødé}"), "ünïcødé");
    }

    #[test]
    fn closure_lookup() {
        let lookup = |name: &str| match name {
            "A" => Some("1".to_owned()),
            "E" => Some(String::new()),
            _ => None,
        };
        let r = interpolate("$A/${E:-e}/${U-u}/$U", &lookup).unwrap();
        assert_eq!(r.value, "1/e/u/");
        assert_eq!(r.unset, vec!["U".to_owned()]);
    }

    #[test]
    fn btreemap_lookup() {
        let mut m = BTreeMap::new();
        m.insert("K".to_owned(), "v".to_owned());
        assert_eq!(interpolate("${K}", &m).unwrap().value, "v");
    }

    #[test]
    fn values_are_not_reinterpolated() {
        let v = vars(&[("REF", "$SET"), ("BR", "${SET}")]);
        assert_eq!(interpolate("$REF ${BR}", &v).unwrap().value, "$SET ${SET}");
        assert_eq!(interpolate("${UNSET:-$REF}", &v).unwrap().value, "$SET");
    }

    #[test]
    fn deep_nesting_is_rejected_not_overflowing() {
        let mut input = String::new();
        for _ in 0..1000 {
            input.push_str("${A:-");
        }
        input.push('x');
        for _ in 0..1000 {
            input.push('}');
        }
        assert_invalid(&input);
        let mut input = String::new();
        for _ in 0..10 {
            input.push_str("${A:-");
        }
        input.push('x');
        for _ in 0..10 {
            input.push('}');
        }
        assert_eq!(ok(&input), "x");
    }
}
