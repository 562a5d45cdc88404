//! Parser for Compose `.env` files and `env_file` files.
//!
//! The grammar follows the `dotenv` package of
//! [compose-go](https://github.com/compose-spec/compose-go) (v2), which is what
//! `docker compose` uses:
//!
//! * Statements are `KEY=VALUE` (or the YAML-like `KEY: VALUE`), optionally
//!   prefixed with `export `. Whitespace around the key and before the value
//!   is ignored. Blank lines and lines starting with `#` are skipped. A UTF-8
//!   byte order mark at the start of the text is ignored.
//! * Keys consist of letters, digits, `_`, `.`, `-`, `[` and `]`; anything
//!   else is an error.
//! * A line holding only `KEY` takes its value from the caller's lookup; if the
//!   lookup has no value the key is left out entirely.
//! * Unquoted values run to the end of the line. Everything from the first
//!   `" #"` (space, hash) on is a comment; a `#` not preceded by a space is
//!   part of the value. Trailing whitespace is trimmed. Note that, as in
//!   compose, `KEY= #x` has the value `#x`: the whitespace after `=` is skipped
//!   before comments are looked for.
//! * Single-quoted values are taken literally: no interpolation and no escape
//!   processing (a `\'` does not end the value and is kept as is).
//! * Double-quoted values may span lines and support the escapes `\n`, `\r`,
//!   `\t`, `\a`, `\b`, `\f`, `\v`, `\\`, `\"`, `\$` (a literal `$`) and octal
//!   `\0NNN`; other backslashes are kept.
//! * Text after the closing quote is parsed like the start of a new statement
//!   (so a trailing `# comment` is ignored), exactly like compose.
//! * Unquoted and double-quoted values are interpolated with
//!   [`crate::interpolate`]. Variables defined earlier in the same file are
//!   looked up first, then the caller-provided lookup.
//! * When a key appears more than once the last value wins; the entry keeps
//!   the position of the first occurrence.
//!
//! Errors carry the 1-based line number of the offending statement (for an
//! unterminated quote or a failed interpolation: the line where the value
//! starts).

use std::collections::HashMap;

use crate::interpolate::{interpolate, Lookup};

/// Error produced by [`parse`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct DotenvError {
    /// 1-based line number.
    pub line: usize,
    /// Description of the problem.
    pub message: String,
}

/// Result of [`parse_detailed`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedEnv {
    /// Entries in file order (see [`parse`]).
    pub entries: Vec<(String, String)>,
    /// Variables referenced by values that were unset and replaced by an
    /// empty string (compose warns about those), in order of first reference.
    pub unset: Vec<String>,
}

/// Parses the contents of a `.env` / `env_file` file.
///
/// Returns `(key, value)` pairs in file order. A key that is defined several
/// times appears once, at the position of its first definition, with the
/// value of its last one. `lookup` provides the values of `KEY`-only lines and
/// the variables that are not defined earlier in the file during
/// interpolation.
///
/// # Errors
///
/// A [`DotenvError`] for an invalid key, an unterminated quoted value or a
/// failed interpolation (e.g. `${VAR:?message}` with `VAR` unset).
pub fn parse(text: &str, lookup: &dyn Lookup) -> Result<Vec<(String, String)>, DotenvError> {
    parse_detailed(text, lookup).map(|parsed| parsed.entries)
}

/// Like [`parse`], but also reports the variables that interpolation found
/// unset.
///
/// # Errors
///
/// See [`parse`].
pub fn parse_detailed(text: &str, lookup: &dyn Lookup) -> Result<ParsedEnv, DotenvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parser = Parser {
        text,
        lookup,
        entries: Vec::new(),
        index: HashMap::new(),
        unset: Vec::new(),
        lines: LineCounter::default(),
    };
    let mut pos = 0;
    while let Some(start) = parser.statement_start(pos) {
        pos = parser.statement(start)?;
    }
    Ok(ParsedEnv {
        entries: parser.entries,
        unset: parser.unset,
    })
}

/// Whitespace that does not end a line (compose-go's `isSpace`).
fn is_inline_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\u{0b}' | '\u{0c}' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    )
}

fn is_key_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '[' | ']')
}

/// Maps byte offsets to 1-based line numbers, scanning incrementally.
#[derive(Default)]
struct LineCounter {
    offset: usize,
    newlines: usize,
}

impl LineCounter {
    fn line_at(&mut self, text: &str, offset: usize) -> usize {
        if offset < self.offset {
            *self = Self::default();
        }
        self.newlines += text[self.offset..offset].matches('\n').count();
        self.offset = offset;
        self.newlines + 1
    }
}

struct Parser<'a> {
    text: &'a str,
    lookup: &'a dyn Lookup,
    entries: Vec<(String, String)>,
    index: HashMap<String, usize>,
    unset: Vec<String>,
    lines: LineCounter,
}

impl Parser<'_> {
    fn error(&mut self, offset: usize, message: String) -> DotenvError {
        DotenvError {
            line: self.lines.line_at(self.text, offset),
            message,
        }
    }

    fn insert(&mut self, key: &str, value: String) {
        if let Some(&i) = self.index.get(key) {
            self.entries[i].1 = value;
        } else {
            self.index.insert(key.to_owned(), self.entries.len());
            self.entries.push((key.to_owned(), value));
        }
    }

    /// Index of the next statement at or after `pos`, skipping whitespace and
    /// comment lines; `None` at end of input.
    fn statement_start(&self, mut pos: usize) -> Option<usize> {
        loop {
            let rest = &self.text[pos..];
            pos += rest.find(|c: char| !c.is_whitespace())?;
            if !self.text[pos..].starts_with('#') {
                return Some(pos);
            }
            pos += self.text[pos..].find('\n')?;
        }
    }

    /// Index of the first non-inline-space character at or after `pos`.
    fn skip_inline_space(&self, pos: usize) -> usize {
        self.text[pos..]
            .find(|c: char| !is_inline_space(c))
            .map_or(self.text.len(), |n| pos + n)
    }

    /// Parses the statement starting at `start`; returns where parsing
    /// continues.
    fn statement(&mut self, start: usize) -> Result<usize, DotenvError> {
        let text = self.text;
        let mut key_start = start;
        if let Some(after) = text[start..].strip_prefix("export") {
            // compose-go strips `^export\s+`.
            if after.starts_with([' ', '\t', '\n', '\u{0c}', '\r']) {
                key_start = self.skip_inline_space(start + "export".len());
            }
        }

        let mut terminator = None;
        for (i, c) in text[key_start..].char_indices() {
            match c {
                '=' | ':' | '\n' => {
                    terminator = Some((key_start + i, c));
                    break;
                }
                c if is_inline_space(c) || is_key_char(c) => {}
                c => {
                    let line = text[start..].lines().next().unwrap_or_default();
                    return Err(self.error(
                        start,
                        format!("unexpected character \"{c}\" in variable name {line:?}"),
                    ));
                }
            }
        }
        // A key on the last line without a newline is a `KEY`-only line too.
        let (key_end, terminator) = terminator.unwrap_or((text.len(), '\n'));
        let key = text[key_start..key_end].trim_end();
        if key.contains(|c: char| c.is_whitespace()) {
            return Err(self.error(start, format!("key cannot contain a space: {key:?}")));
        }

        if terminator == '\n' {
            if !key.is_empty() {
                if let Some(value) = self.lookup.get(key) {
                    self.insert(key, value);
                }
            }
            return Ok((key_end + 1).min(text.len()));
        }
        if key.is_empty() {
            return Err(self.error(
                start,
                format!("missing variable name before {terminator:?}"),
            ));
        }

        let value_start = self.skip_inline_space(key_end + 1);
        let (value, next) = if let Some(quote @ ('"' | '\'')) = text[value_start..].chars().next() {
            let body_start = value_start + 1;
            let Some(close) = find_closing_quote(&text[body_start..], quote) else {
                let line = text[value_start..].lines().next().unwrap_or_default();
                return Err(self.error(value_start, format!("unterminated quoted value {line}")));
            };
            let raw = &text[body_start..body_start + close];
            let value = if quote == '"' {
                self.expand(&expand_escapes(raw), value_start)?
            } else {
                raw.to_owned()
            };
            (value, body_start + close + 1)
        } else {
            let line_end = text[value_start..]
                .find('\n')
                .map_or(text.len(), |n| value_start + n);
            let mut raw = &text[value_start..line_end];
            if let Some(comment) = raw.find(" #") {
                raw = &raw[..comment];
            }
            (self.expand(raw.trim_end(), value_start)?, line_end)
        };
        self.insert(key, value);
        Ok(next)
    }

    /// Interpolates a value, resolving earlier entries of the file first.
    fn expand(&mut self, raw: &str, offset: usize) -> Result<String, DotenvError> {
        let entries = &self.entries;
        let index = &self.index;
        let lookup = self.lookup;
        let vars = |name: &str| match index.get(name) {
            Some(&i) => Some(entries[i].1.clone()),
            None => lookup.get(name),
        };
        match interpolate(raw, &vars) {
            Ok(result) => {
                for name in result.unset {
                    if !self.unset.contains(&name) {
                        self.unset.push(name);
                    }
                }
                Ok(result.value)
            }
            Err(e) => Err(self.error(offset, e.to_string())),
        }
    }
}

/// Byte offset in `body` of the first `quote` not escaped by an odd number
/// of backslashes.
fn find_closing_quote(body: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == quote {
            return Some(i);
        }
    }
    None
}

/// Processes the escape sequences of a double-quoted value the way
/// compose-go does (`\$` becomes `$$` so that interpolation yields a literal
/// `$`).
fn expand_escapes(raw: &str) -> String {
    if !raw.contains('\\') {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some(e @ ('a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '"' | '\\' | '$')) => {
                chars.next();
                match e {
                    'a' => out.push('\u{07}'),
                    'b' => out.push('\u{08}'),
                    'f' => out.push('\u{0c}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'v' => out.push('\u{0b}'),
                    '$' => out.push_str("$$"),
                    other => out.push(other),
                }
            }
            Some('0') => {
                // `\0` followed by up to three digits; only exactly three
                // octal digits (value <= 0o377) form a character, otherwise
                // compose-go leaves `\` + digits (dropping the `0`).
                chars.next();
                let mut digits = String::new();
                while digits.len() < 3 {
                    match chars.peek() {
                        Some(d) if d.is_ascii_digit() => {
                            digits.push(*d);
                            chars.next();
                        }
                        _ => break,
                    }
                }
                match u8::from_str_radix(&digits, 8) {
                    Ok(byte) if digits.len() == 3 => out.push(char::from(byte)),
                    _ => {
                        out.push('\\');
                        out.push_str(&digits);
                    }
                }
            }
            // Unknown escape (or trailing backslash): kept verbatim.
            _ => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn parse_ok(text: &str) -> Vec<(String, String)> {
        parse(text, &none).unwrap()
    }

    fn single(text: &str) -> String {
        let entries = parse_ok(text);
        assert_eq!(entries.len(), 1, "{text:?} -> {entries:?}");
        entries[0].1.clone()
    }

    fn parse_err(text: &str) -> DotenvError {
        parse(text, &none).unwrap_err()
    }

    #[test]
    fn simple_assignments() {
        assert_eq!(
            parse_ok("ONE=1\nTWO='2'\nTHREE = \"3\""),
            env(&[("ONE", "1"), ("TWO", "2"), ("THREE", "3")])
        );
        assert_eq!(single("FOO=bar"), "bar");
        assert_eq!(single("FOO =bar"), "bar");
        assert_eq!(single("FOO= bar"), "bar");
        assert_eq!(single("FOO=bar "), "bar");
        assert_eq!(single(" KEY =value"), "value");
        assert_eq!(single("\tKEY=value"), "value");
        assert_eq!(single("FOO=foobar="), "foobar=");
        assert_eq!(single("OPTION_A=1:B"), "1:B");
        assert_eq!(
            single("OPTION_A=postgres://localhost:5432/database?sslmode=disable"),
            "postgres://localhost:5432/database?sslmode=disable"
        );
        assert_eq!(single("FOO=a b  c"), "a b  c");
        assert_eq!(single("EMPTY="), "");
        assert_eq!(
            parse_ok("EMPTY=\nNEXT=1"),
            env(&[("EMPTY", ""), ("NEXT", "1")])
        );
    }

    #[test]
    fn empty_input_and_blank_lines() {
        assert!(parse_ok("").is_empty());
        assert!(parse_ok("\n\n  \n\t\t \r\n").is_empty());
        assert_eq!(
            parse_ok("\n\nA=1\n\n\nB=2\n\n"),
            env(&[("A", "1"), ("B", "2")])
        );
    }

    #[test]
    fn yaml_style_separator() {
        assert_eq!(single("OPTION_A: 1"), "1");
        assert_eq!(single("OPTION_A: Foo=bar"), "Foo=bar");
    }

    #[test]
    fn key_characters() {
        assert_eq!(
            parse_ok(
                "a=b\na[1]=c\na.propertyKey=d\nárvíztűrő-TÜKÖRFÚRÓGÉP=ÁRVÍZTŰRŐ-tükörfúrógép\n"
            ),
            env(&[
                ("a", "b"),
                ("a[1]", "c"),
                ("a.propertyKey", "d"),
                ("árvíztűrő-TÜKÖRFÚRÓGÉP", "ÁRVÍZTŰRŐ-tükörfúrógép"),
            ])
        );
        assert_eq!(parse_ok("lower_case9=x"), env(&[("lower_case9", "x")]));
    }

    #[test]
    fn export_prefix() {
        assert_eq!(parse_ok("export OPTION_A=2"), env(&[("OPTION_A", "2")]));
        assert_eq!(parse_ok("export\tOPTION_A=2"), env(&[("OPTION_A", "2")]));
        assert_eq!(parse_ok("  export OPTION_A=2"), env(&[("OPTION_A", "2")]));
        assert_eq!(parse_ok("export  OPTION_A=2"), env(&[("OPTION_A", "2")]));
        assert_eq!(
            parse_ok("export OPTION_B='\\n'"),
            env(&[("OPTION_B", "\\n")])
        );
        assert_eq!(parse_ok("export exportFoo=2"), env(&[("exportFoo", "2")]));
        assert_eq!(parse_ok("exportFOO=2"), env(&[("exportFOO", "2")]));
        assert_eq!(parse_ok("export_FOO =2"), env(&[("export_FOO", "2")]));
        assert_eq!(parse_ok("export.FOO= 2"), env(&[("export.FOO", "2")]));
        assert_eq!(parse_ok("export=1"), env(&[("export", "1")]));
    }

    #[test]
    fn comments() {
        assert_eq!(
            parse_ok("# comment\n\t # indented comment\nA=1\n#B=2\n# trailing"),
            env(&[("A", "1")])
        );
        assert_eq!(single("FOO=bar # this is foo"), "bar");
        assert_eq!(single("FOO=bar    # spaced"), "bar");
        assert_eq!(single("FOO=bar#baz"), "bar#baz");
        assert_eq!(single("FOO=bar#baz # comment"), "bar#baz");
        assert_eq!(single("FOO=a # b # c"), "a");
        assert_eq!(single("FOO=\"bar#baz\" # comment"), "bar#baz");
        assert_eq!(single("FOO='bar#baz' # comment"), "bar#baz");
        assert_eq!(single("FOO=\"bar#baz#bang\" # comment"), "bar#baz#bang");
        assert_eq!(single("FOO=\"ba#r\""), "ba#r");
        assert_eq!(single("FOO='ba#r'"), "ba#r");
        // compose-go: only " #" starts a comment, so after the whitespace that
        // follows `=` has been skipped a `#` is part of the value.
        assert_eq!(single("FOO= #not a comment"), "#not a comment");
        assert_eq!(single("FOO=#value"), "#value");
    }

    #[test]
    fn comments_and_quotes_from_compose_fixture() {
        let text = "# Full line comment\n\
                    qux=thud # fred # other\n\
                    thud=fred#qux # other\n\
                    fred=qux#baz # other # more\n\
                    foo=bar # baz\n\
                    bar=foo#baz\n\
                    baz=\"foo\"#bar\n";
        assert_eq!(
            parse_ok(text),
            env(&[
                ("qux", "thud"),
                ("thud", "fred#qux"),
                ("fred", "qux#baz"),
                ("foo", "bar"),
                ("bar", "foo#baz"),
                ("baz", "foo"),
            ])
        );
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(single("FOO='bar'"), "bar");
        assert_eq!(single("FOO=''"), "");
        assert_eq!(single("FOO='\\n'"), "\\n");
        assert_eq!(single("FOO='$HOME ${X:-y} $$'"), "$HOME ${X:-y} $$");
        assert_eq!(single("FOO='a \"b\" c'"), "a \"b\" c");
        assert_eq!(single("FOO='  padded  '"), "  padded  ");
        assert_eq!(
            single("OPTION_K='line one\nthis is \\'quoted\\'\none more line'"),
            "line one\nthis is \\'quoted\\'\none more line"
        );
    }

    #[test]
    fn double_quotes() {
        assert_eq!(single("FOO=\"bar\""), "bar");
        assert_eq!(single("FOO=\"\""), "");
        assert_eq!(single("FOO=\"escaped\\\"bar\""), "escaped\"bar");
        assert_eq!(single("FOO=\"'d'\""), "'d'");
        assert_eq!(single("FOO=\"  padded  \""), "  padded  ");
        assert_eq!(single("OPTION_I = \"echo 'asd'\""), "echo 'asd'");
    }

    #[test]
    fn double_quote_escapes() {
        assert_eq!(single("FOO=\"\\n\""), "\n");
        assert_eq!(single("FOO=\"bar\\nbaz\""), "bar\nbaz");
        assert_eq!(single("FOO=\"a\\tb\""), "a\tb");
        assert_eq!(single("FOO=\"a\\rb\""), "a\rb");
        assert_eq!(single("FOO=\"a\\\\b\""), "a\\b");
        assert_eq!(single("FOO=\"a\\\\nb\""), "a\\nb");
        assert_eq!(single("FOO=\"back\\\\\""), "back\\");
        assert_eq!(single("FOO=\"\\a\\b\\f\\v\""), "\u{07}\u{08}\u{0c}\u{0b}");
        assert_eq!(single("FOO=\"\\0101\\0102\""), "AB");
        // Unknown escapes keep their backslash.
        assert_eq!(single("FOO=\"a\\xb\\ c\\#\""), "a\\xb\\ c\\#");
        assert_eq!(single("FOO=\"bar\\n\\ b\\az\""), "bar\n\\ b\u{07}z");
    }

    #[test]
    fn escaped_dollar_is_literal() {
        assert_eq!(single("FOO=\"foo\\$BAR\""), "foo$BAR");
        assert_eq!(single("FOO=\"foo\\${BAR}\""), "foo${BAR}");
        assert_eq!(
            parse_ok("FOO=test\nBAR=\"foo\\${FOO} ${FOO}\""),
            env(&[("FOO", "test"), ("BAR", "foo${FOO} test")])
        );
        assert_eq!(single("FOO=$$BAR"), "$BAR");
        assert_eq!(single("FOO=\"$$BAR\""), "$BAR");
    }

    #[test]
    fn multi_line_values() {
        assert_eq!(
            parse_ok("OPTION_J='line 1\nline 2'\nOPTION_L=\"line 1\nline 2\"\nNEXT=x"),
            env(&[
                ("OPTION_J", "line 1\nline 2"),
                ("OPTION_L", "line 1\nline 2"),
                ("NEXT", "x"),
            ])
        );
        assert_eq!(
            single("OPTION_M=\"line one\nthis is \\\"quoted\\\"\none more line\""),
            "line one\nthis is \"quoted\"\none more line"
        );
        assert_eq!(
            single(
                "TEST_URLS=\"stratum+tcp://stratum.antpool.com:3333\nstratum+tcp://stratum.antpool.com:443\""
            ),
            "stratum+tcp://stratum.antpool.com:3333\nstratum+tcp://stratum.antpool.com:443"
        );
    }

    #[test]
    fn crlf_line_endings() {
        assert_eq!(
            parse_ok("A=1\r\nB='2'\r\nC=\"3\"\r\n# c\r\nD=4 # x\r\n"),
            env(&[("A", "1"), ("B", "2"), ("C", "3"), ("D", "4")])
        );
    }

    #[test]
    fn byte_order_mark_is_ignored() {
        assert_eq!(parse_ok("\u{feff}A=1\n"), env(&[("A", "1")]));
    }

    #[test]
    fn interpolation_of_unquoted_and_double_quoted_values() {
        let text = "OPTION_A=1\n\
                    OPTION_B=${OPTION_A}\n\
                    OPTION_C=$OPTION_B\n\
                    OPTION_D=${OPTION_A}${OPTION_B}\n\
                    OPTION_E=${OPTION_NOT_DEFINED}\n\
                    OPTION_F=\"$FOO\"\n\
                    OPTION_G=\"${OPTION_NOT_DEFINED}\"\n\
                    OPTION_H='${OPTION_A}'\n\
                    OPTION_I=\"\\${OPTION_A}\"\n";
        let parsed = parse_detailed(text, &none).unwrap();
        assert_eq!(
            parsed.entries,
            env(&[
                ("OPTION_A", "1"),
                ("OPTION_B", "1"),
                ("OPTION_C", "1"),
                ("OPTION_D", "11"),
                ("OPTION_E", ""),
                ("OPTION_F", ""),
                ("OPTION_G", ""),
                ("OPTION_H", "${OPTION_A}"),
                ("OPTION_I", "${OPTION_A}"),
            ])
        );
        assert_eq!(
            parsed.unset,
            vec!["OPTION_NOT_DEFINED".to_owned(), "FOO".to_owned()]
        );
    }

    #[test]
    fn interpolation_operators() {
        let text = "SET=v\n\
                    EMPTY=\n\
                    A=${UNSET:-Default Value}\n\
                    B=${EMPTY:-d}\n\
                    C=${EMPTY-d}\n\
                    D=${SET:+alt}\n\
                    E=\"${UNSET-${SET}x}\"\n\
                    F=${SET:?must}\n";
        assert_eq!(
            parse_ok(text),
            env(&[
                ("SET", "v"),
                ("EMPTY", ""),
                ("A", "Default Value"),
                ("B", "d"),
                ("C", ""),
                ("D", "alt"),
                ("E", "vx"),
                ("F", "v"),
            ])
        );
    }

    #[test]
    fn interpolation_prefers_earlier_entries_over_lookup() {
        let lookup = |name: &str| match name {
            "GLOBAL_OPTION" => Some("global".to_owned()),
            "A" => Some("from-lookup".to_owned()),
            _ => None,
        };
        let text = "B=$A\nA=from-file\nC=$A\nD=${GLOBAL_OPTION}\n";
        assert_eq!(
            parse(text, &lookup).unwrap(),
            env(&[
                ("B", "from-lookup"),
                ("A", "from-file"),
                ("C", "from-file"),
                ("D", "global"),
            ])
        );
    }

    #[test]
    fn self_reference_sees_previous_definition() {
        let lookup = |name: &str| (name == "PATH").then(|| "/bin".to_owned());
        assert_eq!(
            parse("PATH=$PATH:/a\nPATH=${PATH}:/b\n", &lookup).unwrap(),
            env(&[("PATH", "/bin:/a:/b")])
        );
    }

    #[test]
    fn key_only_lines_use_the_lookup() {
        let lookup = |name: &str| match name {
            "FROM_ENV" => Some("env-value".to_owned()),
            "EMPTY_ENV" => Some(String::new()),
            _ => None,
        };
        let text = "FROM_ENV\nMISSING\nfoo=bar\n  EMPTY_ENV  \nexport FROM_ENV\nLAST_MISSING";
        assert_eq!(
            parse(text, &lookup).unwrap(),
            env(&[("FROM_ENV", "env-value"), ("foo", "bar"), ("EMPTY_ENV", "")])
        );
        // The key-only lookup does not see earlier entries of the file.
        assert_eq!(parse_ok("A=1\nA\n"), env(&[("A", "1")]));
        assert_eq!(
            parse("LAST", &|n: &str| (n == "LAST").then(|| "x".to_owned())).unwrap(),
            env(&[("LAST", "x")])
        );
    }

    #[test]
    fn duplicates_keep_first_position_and_last_value() {
        assert_eq!(
            parse_ok("A=1\nB=2\nA=3\nC=4\nB=5"),
            env(&[("A", "3"), ("B", "5"), ("C", "4")])
        );
    }

    #[test]
    fn text_after_closing_quote_starts_a_new_statement() {
        assert_eq!(parse_ok("A='1' B=2"), env(&[("A", "1"), ("B", "2")]));
        assert_eq!(parse_ok("A=\"1\"   \nB=2"), env(&[("A", "1"), ("B", "2")]));
    }

    #[test]
    fn invalid_keys_report_line() {
        let e = parse_err("A=1\n\nlol$wut\n");
        assert_eq!(e.line, 3);
        assert_eq!(
            e.message,
            "unexpected character \"$\" in variable name \"lol$wut\""
        );
        assert_eq!(
            e.to_string(),
            "line 3: unexpected character \"$\" in variable name \"lol$wut\""
        );
        assert_eq!(parse_err("%!(EXTRA string)=foo").line, 1);
        assert_eq!(parse_err("A=1\nINVALID LINE\nfoo=bar\n").line, 2);
        assert_eq!(parse_err("A=1\nMY KEY=v\n").line, 2);
        assert_eq!(parse_err("A=1\n=value\n").line, 2);
        assert_eq!(parse_err("# c\n  : x\n").line, 2);
        assert_eq!(parse_err("A=1\nFOO;BAR=1\n").line, 2);
    }

    #[test]
    fn unterminated_quotes_report_line() {
        let e = parse_err("A=1\nKEY=\"value\nB=2\n");
        assert_eq!(e.line, 2);
        assert_eq!(e.message, "unterminated quoted value \"value");
        let e = parse_err("A=1\nB=2\nKEY='value");
        assert_eq!(e.line, 3);
        assert_eq!(e.to_string(), "line 3: unterminated quoted value 'value");
        assert_eq!(parse_err("KEY=\"").line, 1);
        assert_eq!(parse_err("KEY=\"escaped end\\\"").line, 1);
    }

    #[test]
    fn line_numbers_account_for_multi_line_values_and_comments() {
        let text = "# header\nA=\"multi\nline\nvalue\"\n\n# comment\nB='x\ny'\nbad key=1\n";
        let e = parse_err(text);
        assert_eq!(e.line, 9);
        assert_eq!(e.message, "key cannot contain a space: \"bad key\"");
    }

    #[test]
    fn interpolation_errors_report_line() {
        let e = parse_err("A=1\nB=${MISSING:?is required}\n");
        assert_eq!(
            e,
            DotenvError {
                line: 2,
                message: "required variable MISSING is missing a value: is required".to_owned(),
            }
        );
        let e = parse_err("A=1\n\nB=\"x\ny ${C\"\n");
        assert_eq!(e.line, 3);
        assert!(
            e.message.starts_with("invalid interpolation format for "),
            "{}",
            e.message
        );
        assert_eq!(parse_err("A=${}").line, 1);
        // Single-quoted values are not interpolated, so no error.
        assert_eq!(single("A='${'"), "${");
    }

    #[test]
    fn escapes_helper() {
        assert_eq!(expand_escapes("plain"), "plain");
        assert_eq!(expand_escapes("\\$x"), "$$x");
        assert_eq!(expand_escapes("\\0"), "\\");
        assert_eq!(expand_escapes("\\012"), "\\12");
        assert_eq!(expand_escapes("\\0123"), "S");
        assert_eq!(expand_escapes("\\01234"), "S4");
        assert_eq!(expand_escapes("\\0377"), "\u{ff}");
        assert_eq!(expand_escapes("\\0089"), "\\089");
        assert_eq!(expand_escapes("trailing\\"), "trailing\\");
        assert_eq!(expand_escapes("\\c"), "\\c");
    }
}
