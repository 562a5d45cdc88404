//! A database dump as a backup (an app-consistent backup): the output of a dump command,
//! of a length nobody knows beforehand, stored as a tar of parts — `dump/000000`,
//! `dump/000001`, … of [`PART`] bytes each, the last one shorter — so it is written,
//! verified, listed and retained as every other backup is, and handed back as the one
//! stream it was for the matching load command. The manifest's [`BackupMeta::dump`]
//! names the service it was taken in.

use std::io::{self, Read, Write};
use std::path::Path;

use crate::{write_backup, BackupError, BackupMeta, BackupRecord, VerifyReport};

/// The size of each part but the last (a part is held in memory while it is read).
pub const PART: usize = 8 << 20;

/// Stores the dump `input` (read to its end) as a new backup in `dir`, verified as
/// [`write_backup`] verifies every backup. `meta.dump` must name the service; an error
/// reading `input` (the dump command failed) leaves no backup, and so does an empty
/// dump (the command printed nothing).
pub fn write_dump(
    input: impl Read,
    dir: &Path,
    meta: BackupMeta,
) -> Result<BackupRecord, BackupError> {
    write_dump_in_parts(input, dir, meta, PART)
}

fn write_dump_in_parts(
    input: impl Read,
    dir: &Path,
    meta: BackupMeta,
    part: usize,
) -> Result<BackupRecord, BackupError> {
    if meta.dump.is_none() {
        return Err(BackupError::NotADump {
            id: format!("{}/{}", meta.app, meta.volume),
        });
    }
    write_backup(Parts::new(input, part), dir, meta)
}

/// Writes the dump `record` holds — the bytes the dump command printed, exactly — to
/// `out`, every part's sha256 checked on the way as [`restore_to`](crate::restore_to)
/// checks every backup.
pub fn restore_dump_to(
    record: &BackupRecord,
    out: impl Write,
) -> Result<VerifyReport, BackupError> {
    if record.manifest.meta.dump.is_none() {
        return Err(BackupError::NotADump {
            id: record.id.clone(),
        });
    }
    crate::restore_to(record, Joined::new(out))
}

/// A tar stream of the input in parts: each part read whole (up to `part` bytes), then
/// handed out behind its header and followed by its padding; the end-of-archive marker
/// last.
struct Parts<R> {
    input: R,
    part: usize,
    /// The next part's number.
    index: u64,
    /// What is being handed out, and how much of it has been.
    pending: Vec<u8>,
    at: usize,
    ended: bool,
}

impl<R: Read> Parts<R> {
    fn new(input: R, part: usize) -> Self {
        Parts {
            input,
            part,
            index: 0,
            pending: Vec::new(),
            at: 0,
            ended: false,
        }
    }

    /// Reads the next part into `pending` (header, content, padding), or the end marker.
    fn next_part(&mut self) -> io::Result<()> {
        self.pending.clear();
        self.at = 0;
        self.pending.resize(512, 0);
        let start = self.pending.len();
        let mut read = 0;
        self.pending.resize(start + self.part, 0);
        while read < self.part {
            match self.input.read(&mut self.pending[start + read..]) {
                Ok(0) => break,
                Ok(n) => read += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.pending.truncate(start + read);
        if read == 0 && self.index == 0 {
            // A dump command that printed nothing (its output sent elsewhere, a wrong
            // redirection): not a backup of anything.
            return Err(io::Error::other(
                "the dump command printed nothing: its output is the backup",
            ));
        }
        if read == 0 {
            // Two zero blocks: the end of the archive.
            self.pending.clear();
            self.pending.resize(1024, 0);
            self.ended = true;
            return Ok(());
        }
        let mut header = tar::Header::new_ustar();
        header.set_path(format!("dump/{:06}", self.index))?;
        header.set_size(read as u64);
        header.set_mode(0o600);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        self.pending[..512].copy_from_slice(header.as_bytes());
        self.pending
            .resize(self.pending.len() + (512 - read % 512) % 512, 0);
        self.index += 1;
        Ok(())
    }
}

impl<R: Read> Read for Parts<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.at == self.pending.len() {
            if self.ended {
                return Ok(0);
            }
            self.next_part()?;
        }
        let n = out.len().min(self.pending.len() - self.at);
        out[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The other way: a `Write` taking a tar stream of parts and writing their contents,
/// one after the other, to `out`.
struct Joined<W> {
    out: W,
    /// The header being gathered.
    header: Vec<u8>,
    /// Content bytes left in the current part, then its padding.
    content: u64,
    padding: u64,
    ended: bool,
}

impl<W: Write> Joined<W> {
    fn new(out: W) -> Self {
        Joined {
            out,
            header: Vec::with_capacity(512),
            content: 0,
            padding: 0,
            ended: false,
        }
    }
}

impl<W: Write> Write for Joined<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let given = data.len();
        while !data.is_empty() && !self.ended {
            if self.content > 0 {
                let n = data.len().min(self.content as usize);
                self.out.write_all(&data[..n])?;
                self.content -= n as u64;
                data = &data[n..];
            } else if self.padding > 0 {
                let n = data.len().min(self.padding as usize);
                self.padding -= n as u64;
                data = &data[n..];
            } else {
                let n = data.len().min(512 - self.header.len());
                self.header.extend_from_slice(&data[..n]);
                data = &data[n..];
                if self.header.len() == 512 {
                    if self.header.iter().all(|b| *b == 0) {
                        self.ended = true;
                    } else {
                        let header = tar::Header::from_byte_slice(&self.header);
                        if header.entry_type() != tar::EntryType::Regular {
                            return Err(io::Error::other("a dump holds only its parts"));
                        }
                        self.content = header.entry_size()?;
                        self.padding = (512 - self.content % 512) % 512;
                    }
                    self.header.clear();
                }
            }
        }
        // What follows the end marker is padding.
        Ok(given)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(dump: Option<&str>) -> BackupMeta {
        BackupMeta {
            app: "shop".into(),
            volume: "shop_db".into(),
            revision: None,
            reason: "manual".into(),
            created_at: 1_700_000_000_000,
            dump: dump.map(str::to_string),
        }
    }

    /// Bytes no two parts share, so a part out of order or missing shows.
    fn dump_bytes(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn a_dump_comes_back_byte_for_byte_across_parts() {
        for len in [1, 511, 512, 1000, 4096, 4097, 10_000] {
            let dir = tempfile::tempdir().unwrap();
            let input = dump_bytes(len);
            let record =
                write_dump_in_parts(&input[..], dir.path(), meta(Some("db")), 4096).unwrap();
            assert_eq!(record.manifest.bytes, len as u64);
            assert_eq!(record.manifest.files as usize, len.div_ceil(4096));
            assert_eq!(record.manifest.meta.dump.as_deref(), Some("db"));
            crate::verify(&record).unwrap();
            let mut out = Vec::new();
            restore_dump_to(&record, &mut out).unwrap();
            assert_eq!(out, input, "{len} bytes");
        }
    }

    #[test]
    fn an_empty_dump_is_no_backup() {
        let dir = tempfile::tempdir().unwrap();
        let e = write_dump_in_parts(&b""[..], dir.path(), meta(Some("db")), 4096)
            .unwrap_err()
            .to_string();
        assert!(e.contains("the dump command printed nothing"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_failing_dump_leaves_no_backup() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("pg_dump exited with 1: no such database"));
                }
                let n = out.len().min(self.0);
                out[..n].fill(b'x');
                self.0 -= n;
                Ok(n)
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let err = write_dump_in_parts(Failing(10_000), dir.path(), meta(Some("db")), 4096)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such database"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn only_a_dump_is_restored_as_one() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            write_dump(&b"x"[..], dir.path(), meta(None)),
            Err(BackupError::NotADump { .. })
        ));
        let files = tempfile::tempdir().unwrap();
        std::fs::write(files.path().join("a"), b"a").unwrap();
        let record = crate::backup_dir(files.path(), dir.path(), meta(None)).unwrap();
        assert!(matches!(
            restore_dump_to(&record, io::sink()),
            Err(BackupError::NotADump { .. })
        ));
    }
}
