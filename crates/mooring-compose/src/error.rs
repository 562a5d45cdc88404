//! The loader's error: what went wrong, where (file:line:col), and what to do.

use std::fmt;
use std::sync::Arc;

/// A position in a Compose or env file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    pub file: Arc<str>,
    pub line: usize,
    pub col: usize,
}

impl Pos {
    /// A position.
    pub fn new(file: Arc<str>, line: usize, col: usize) -> Pos {
        Pos { file, line, col }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// Why a project could not be rendered. Rendering errors apply nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    /// Where, when the error is about a place in a file.
    pub pos: Option<Pos>,
    pub message: String,
}

impl LoadError {
    /// An error at a position.
    pub fn at(pos: Pos, message: impl Into<String>) -> LoadError {
        LoadError {
            pos: Some(pos),
            message: message.into(),
        }
    }

    /// An error about the project as a whole.
    pub fn new(message: impl Into<String>) -> LoadError {
        LoadError {
            pos: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pos {
            Some(pos) => write!(f, "{pos}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}
