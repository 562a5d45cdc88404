//! `.dockerignore`, applied as Docker applies it (moby's `patternmatcher`): which files
//! of a build context are sent to the builder — and so which files decide whether an
//! image must be built again. Pure: text in, a yes/no per path out.
//!
//! Each line is trimmed; blank lines and lines starting with `#` are skipped; `!` makes
//! an exception. A pattern is cleaned (`./a/`, `/a` and `a` are the same) and matches a
//! path when it matches the path itself or one of its parent folders; the last pattern
//! that matches decides. The glob is Go's `filepath.Match` plus `**`: `*` and `?` stop at
//! `/`, `[...]` is a class (`^` negates it), `\` escapes, `**` matches any number of
//! folders (none included).

/// A parsed `.dockerignore`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerIgnore {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    /// `!pattern`: re-includes what an earlier pattern excluded.
    exception: bool,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `?`: one character but `/`.
    Any,
    /// `*`: any run of characters without `/`.
    Star,
    /// `**` (with a following `/` eaten): any run of characters, `/` included.
    DoubleStar,
    /// `[...]`: (negated, ranges).
    Class(bool, Vec<(char, char)>),
}

/// A line Docker would refuse, with its number (1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(".dockerignore:{line}: {message}")]
pub struct IgnoreError {
    pub line: usize,
    pub message: String,
}

impl DockerIgnore {
    /// Parses a `.dockerignore` file's text.
    pub fn parse(text: &str) -> Result<DockerIgnore, IgnoreError> {
        let mut rules = Vec::new();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let fail = |message: &str| IgnoreError {
                line: i + 1,
                message: message.to_string(),
            };
            if pattern.is_empty() {
                return Err(fail("illegal exclusion pattern: \"!\""));
            }
            let cleaned = clean(pattern);
            let cleaned = cleaned.strip_prefix('/').unwrap_or(&cleaned).to_string();
            let tokens = tokenize(&cleaned).map_err(|m| fail(&m))?;
            rules.push(Rule { exception, tokens });
        }
        Ok(DockerIgnore { rules })
    }

    /// Whether `path` (relative to the context, `/`-separated) is left out.
    pub fn excludes(&self, path: &str) -> bool {
        let path = clean(path);
        let parents: Vec<&str> = match path.rfind('/') {
            Some(i) => path[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for rule in &self.rules {
            // An exception only matters once something matched, a pattern only before.
            if rule.exception != matched {
                continue;
            }
            let mut hit = matches(&rule.tokens, &path);
            if !hit {
                hit = (1..=parents.len()).any(|n| matches(&rule.tokens, &parents[..n].join("/")));
            }
            if hit {
                matched = !rule.exception;
            }
        }
        matched
    }

    /// Whether a later `!` line may re-include something under an excluded folder (then
    /// an excluded folder must still be walked).
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|r| r.exception)
    }
}

/// Go's `filepath.Clean` for `/`-separated relative or absolute paths.
fn clean(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|p| *p != "..") {
                    out.pop();
                } else if !absolute {
                    out.push("..");
                }
            }
            p => out.push(p),
        }
    }
    let joined = out.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

fn tokenize(pattern: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                tokens.push(Token::DoubleStar);
            }
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::Any),
            '\\' => match chars.next() {
                Some(e) => tokens.push(Token::Char(e)),
                None => return Err("a pattern ends with `\\`".into()),
            },
            '[' => {
                let negated = chars.peek() == Some(&'^');
                if negated {
                    chars.next();
                }
                let mut ranges = Vec::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    let lo = match c {
                        ']' if !ranges.is_empty() => {
                            closed = true;
                            break;
                        }
                        '\\' => chars.next().ok_or("a pattern ends with `\\`")?,
                        c => c,
                    };
                    let hi = if chars.peek() == Some(&'-') {
                        chars.next();
                        match chars.next() {
                            Some('\\') => chars.next().ok_or("a pattern ends with `\\`")?,
                            Some(h) if h != ']' => h,
                            _ => return Err("unterminated range in a `[...]` class".into()),
                        }
                    } else {
                        lo
                    };
                    if hi < lo {
                        return Err(format!("the range {lo}-{hi} runs backwards"));
                    }
                    ranges.push((lo, hi));
                }
                if !closed {
                    return Err("syntax error in pattern: unterminated `[`".into());
                }
                tokens.push(Token::Class(negated, ranges));
            }
            c => tokens.push(Token::Char(c)),
        }
    }
    Ok(tokens)
}

/// Whether the whole of `text` matches `tokens`.
fn matches(tokens: &[Token], text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    match_from(tokens, &chars)
}

fn match_from(tokens: &[Token], text: &[char]) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return text.is_empty();
    };
    match first {
        Token::DoubleStar => (0..=text.len()).any(|i| match_from(rest, &text[i..])),
        Token::Star => {
            let run = text.iter().take_while(|c| **c != '/').count();
            (0..=run).any(|i| match_from(rest, &text[i..]))
        }
        Token::Any => text.first().is_some_and(|c| *c != '/') && match_from(rest, &text[1..]),
        Token::Char(c) => text.first() == Some(c) && match_from(rest, &text[1..]),
        Token::Class(negated, ranges) => {
            text.first().is_some_and(|c| {
                *c != '/' && ranges.iter().any(|(lo, hi)| lo <= c && c <= hi) != *negated
            }) && match_from(rest, &text[1..])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).unwrap()
    }

    #[test]
    fn a_folder_excludes_what_it_holds_and_the_last_match_decides() {
        let i = ignore("# comment\n\nnode_modules\n*.log\n!keep.log\n/build/\n./tmp\n");
        assert!(i.excludes("node_modules"));
        assert!(i.excludes("node_modules/a/b.js"));
        assert!(i.excludes("app.log"));
        assert!(!i.excludes("keep.log"));
        assert!(!i.excludes("src/app.log"), "* stops at /");
        assert!(i.excludes("build/x"));
        assert!(i.excludes("tmp/y"));
        assert!(!i.excludes("src/main.rs"));
    }

    #[test]
    fn double_stars_cross_folders() {
        let i = ignore("**/*.pyc\ndocs/**\n**/secret\n");
        assert!(i.excludes("a.pyc"));
        assert!(i.excludes("a/b/c.pyc"));
        assert!(i.excludes("docs/x/y.md"));
        assert!(i.excludes("secret"));
        assert!(i.excludes("deep/down/secret/file"));
        assert!(!i.excludes("docsx/y.md"));
    }

    #[test]
    fn classes_question_marks_and_escapes() {
        let i = ignore("file[0-9].txt\n[^a]x\nwhat?\nstar\\*\n");
        assert!(i.excludes("file3.txt"));
        assert!(!i.excludes("fileA.txt"));
        assert!(i.excludes("bx"));
        assert!(!i.excludes("ax"));
        assert!(i.excludes("whats"));
        assert!(!i.excludes("what/"));
        assert!(i.excludes("star*"));
        assert!(!i.excludes("starry"));
    }

    #[test]
    fn exceptions_under_an_excluded_folder() {
        let i = ignore("vendor\n!vendor/keep\n");
        assert!(i.has_exceptions());
        assert!(i.excludes("vendor/drop"));
        assert!(!i.excludes("vendor/keep"));
        assert!(!i.excludes("vendor/keep/inner"));
    }

    #[test]
    fn lines_docker_refuses_are_errors_with_their_line() {
        assert_eq!(DockerIgnore::parse("a\n!\n").unwrap_err().line, 2);
        assert!(DockerIgnore::parse("[abc").is_err());
        assert!(DockerIgnore::parse("[z-a]").is_err());
    }

    #[test]
    fn paths_are_cleaned_like_go() {
        assert_eq!(clean("./a//b/../c/"), "a/c");
        assert_eq!(clean("/../x"), "/x");
        assert_eq!(clean("."), ".");
    }
}
