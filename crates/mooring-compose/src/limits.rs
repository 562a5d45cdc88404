//! Bounds on what one repository file may cost to read and parse. Repository content is
//! untrusted: a file may be huge, nest without end, or expand through YAML aliases to
//! billions of nodes (the "billion laughs"). These bounds turn each of those into a
//! [`LoadError`](crate::LoadError) with a position instead of exhausted memory or stack.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// The largest Compose file, env file or `mooring.yaml` read (4 MiB). Real ones are a
/// few kilobytes.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// The deepest nesting of YAML sequences and mappings. Compose files nest about eight
/// levels deep; Go's yaml.v3 (which Compose uses) stops at 10,000, but our tree is
/// walked recursively on threads with small stacks.
pub const MAX_DEPTH: usize = 128;

/// The most YAML nodes one document may expand to, aliases included.
pub const MAX_NODES: usize = 2_000_000;

/// The share of a document's nodes that aliases may produce, as in Go's yaml.v3
/// (`allowedAliasRatio`): 99% up to 400,000 nodes, falling linearly to 10% at
/// 4,000,000. Checked once aliases have produced more than 100 nodes and the document
/// has more than 1,000.
pub fn allowed_alias_ratio(nodes: usize) -> f64 {
    const LOW: usize = 400_000;
    const HIGH: usize = 4_000_000;
    if nodes <= LOW {
        0.99
    } else if nodes >= HIGH {
        0.10
    } else {
        0.99 - 0.89 * ((nodes - LOW) as f64 / (HIGH - LOW) as f64)
    }
}

/// Why a bounded read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(
        "the file is larger than {} MiB, the most Mooring reads from a repository file; \
         split it or keep large data out of Compose and env files",
        MAX_FILE_BYTES >> 20
    )]
    TooLarge,
}

/// Reads a UTF-8 text file of at most [`MAX_FILE_BYTES`] (never more than that plus one
/// byte, even when the file grows while it is read).
pub fn read_text(path: &Path) -> Result<String, ReadError> {
    String::from_utf8(read_bytes(path)?).map_err(|_| {
        ReadError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ))
    })
}

/// Reads a file of at most [`MAX_FILE_BYTES`], as [`read_text`] does.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, ReadError> {
    let file = File::open(path)?;
    if file.metadata()?.len() > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge);
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_ratio_follows_yaml_v3() {
        assert_eq!(allowed_alias_ratio(1_000), 0.99);
        assert_eq!(allowed_alias_ratio(4_000_000), 0.10);
        let mid = allowed_alias_ratio(2_200_000);
        assert!((mid - 0.545).abs() < 1e-9, "{mid}");
    }

    #[test]
    fn read_text_refuses_oversized_files() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.env");
        std::fs::write(&big, vec![b'#'; MAX_FILE_BYTES as usize + 1]).unwrap();
        let e = read_text(&big).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge), "{e}");
        assert!(e.to_string().contains("larger than 4 MiB"), "{e}");
        let ok = dir.path().join("ok.env");
        std::fs::write(&ok, "A=1\n").unwrap();
        assert_eq!(read_text(&ok).unwrap(), "A=1\n");
    }
}
