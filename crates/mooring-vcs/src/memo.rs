//! Facts about a revision that never change once it is in a cache repository: the
//! first line of its message and the [`Revision::tree`](crate::Revision::tree) of a
//! path in it. Remembered on disk, under `<kind>/<key>/meta/<id>/<pathkey>`, so that
//! a poll that finds nothing new does not have to run the tool again to describe a
//! revision it already described (each `hg` process costs a Python start-up).
//!
//! Only successful answers (the path is a folder) are remembered. Everything is
//! best effort: an unreadable or malformed entry is a miss, a failed write is
//! ignored. Entries are written to a temporary file and renamed into place, so a
//! reader never sees half of one. An entry is only ever written for a revision that
//! is in the cache repository; the cache repository never loses a Mercurial
//! changeset, so for Mercurial an entry also proves the changeset is there (Git may
//! prune unreachable commits: the Git backend checks presence separately).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::snapshot::path_key;

/// What is remembered about one path of one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Facts {
    /// [`Revision::tree`](crate::Revision::tree) of the path.
    pub(crate) tree: String,
    /// First line of the revision's message, as [`first_line`](crate::run::first_line)
    /// makes it (no control characters).
    pub(crate) subject: String,
}

/// The `meta` folder of one cache repository.
#[derive(Debug, Clone)]
pub(crate) struct Memo {
    dir: PathBuf,
}

impl Memo {
    pub(crate) fn new(dir: PathBuf) -> Memo {
        Memo { dir }
    }

    fn file(&self, id: &str, path: &str) -> Option<PathBuf> {
        // Ids are full hex ids; anything else is never a file name here.
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(self.dir.join(id.to_ascii_lowercase()).join(path_key(path)))
    }

    /// The facts remembered for `path` of revision `id`, if any.
    pub(crate) fn get(&self, id: &str, path: &str) -> Option<Facts> {
        let text = fs::read_to_string(self.file(id, path)?).ok()?;
        let (tree, subject) = text.strip_suffix('\n')?.split_once('\n')?;
        let tree_ok = !tree.is_empty() && !tree.contains(char::is_whitespace);
        if !tree_ok || subject.contains(char::is_control) {
            return None;
        }
        Some(Facts {
            tree: tree.to_string(),
            subject: subject.to_string(),
        })
    }

    /// Remembers `facts` for `path` of revision `id` (best effort).
    pub(crate) fn put(&self, id: &str, path: &str, facts: &Facts) {
        let Some(file) = self.file(id, path) else {
            return;
        };
        if facts.tree.contains(char::is_whitespace) || facts.subject.contains(char::is_control) {
            return;
        }
        let _ = write_file(&file, &format!("{}\n{}\n", facts.tree, facts.subject));
    }

    /// Forgets everything (best effort): for a cache repository created afresh.
    pub(crate) fn clear(&self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Writes `text` to `file` whole or not at all: a temporary file in the same folder
/// (created if missing), renamed into place. Readers never see a half-written file.
pub(crate) fn write_file(file: &Path, text: &str) -> std::io::Result<()> {
    let parent = file.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(parent)?;
    tmp.write_all(text.as_bytes())?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_misses() {
        let tmp = tempfile::tempdir().unwrap();
        let memo = Memo::new(tmp.path().join("meta"));
        let id = "0123456789abcdef0123456789abcdef01234567";
        let facts = Facts {
            tree: "sha256:00ff".into(),
            subject: "first line …".into(),
        };
        assert_eq!(memo.get(id, ""), None);
        memo.put(id, "", &facts);
        memo.put(id, "apps/blog", &facts);
        assert_eq!(memo.get(id, ""), Some(facts.clone()));
        assert_eq!(
            memo.get(&id.to_uppercase(), "apps/blog"),
            Some(facts.clone())
        );
        assert_eq!(memo.get(id, "apps/other"), None);
        assert_eq!(memo.get("../x", ""), None);

        // A malformed entry is a miss.
        fs::write(memo.file(id, "").unwrap(), "only one line\n").unwrap();
        assert_eq!(memo.get(id, ""), None);

        memo.clear();
        assert_eq!(memo.get(id, "apps/blog"), None);
    }
}
