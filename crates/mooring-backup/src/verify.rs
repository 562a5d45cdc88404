//! Verifying a backup against its manifest, and restoring it.

use std::borrow::Borrow;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::thread;

use sha2::Digest;

use crate::entries::{describe, difference, HASH_BUF};
use crate::manifest::hex;
use crate::pipe::{chunk_channel, read_full, ChunkSender, HashReader, CHUNK};
use crate::{BackupError, BackupRecord, EntryKind, FileEntry, Manifest};

/// What a successful verification checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyReport {
    /// Tar entries checked (all kinds).
    pub entries: u64,
    /// Regular files whose size and sha256 matched.
    pub files: u64,
    /// Content bytes of those files.
    pub bytes: u64,
    /// Size of the compressed archive.
    pub archive_size: u64,
}

/// Re-reads the backup and checks it against its manifest: the archive file's size and
/// sha256, then — decompressing — every entry in order (path, kind, size, mode, and each
/// file's sha256), the entry count and totals, and the end-of-archive marker.
///
/// Fails on the first problem, naming it: [`BackupError::ArchiveSize`] or
/// [`BackupError::ArchiveChecksum`] when the file changed (these win over any later
/// symptom), [`BackupError::Corrupt`] when it cannot be decompressed or parsed, and
/// [`BackupError::Mismatch`] with the first differing entry's path when the archive and
/// the manifest disagree, and [`BackupError::ManifestChanged`] when all of that matched
/// but the manifest was edited elsewhere (its [digest](Manifest::digest)).
pub fn verify(record: &BackupRecord) -> Result<VerifyReport, BackupError> {
    let file = open_archive(&record.archive, &record.manifest)?;
    let report = verify_open(&file, &record.archive, &record.manifest)?;
    check_digest(record)?;
    Ok(report)
}

/// Streams the backup's tar stream — exactly the bytes that were backed up — to `out`
/// (flushed at the end), checking every file's sha256 again on the way.
///
/// Before the first byte is written, the backup's integrity is established: the
/// manifest's [digest](Manifest::digest) matches its content, and the archive file's size
/// and sha256 match the manifest. That sha256 was verified against every entry when the
/// backup was written (see [`write_backup`](crate::write_backup)), so what is handed out
/// is those verified bytes: a changed or damaged archive or manifest is refused with
/// nothing written ([`BackupError::ManifestChanged`], [`BackupError::ArchiveSize`],
/// [`BackupError::ArchiveChecksum`]). This check reads the compressed file once, where
/// a full [`verify`] decompresses it; call `verify` first to have every entry checked
/// before anything is written.
///
/// While streaming (decompression, checking and output overlap in three threads), every
/// entry is checked against the manifest as [`verify`] does — each 1 MiB chunk is
/// written out once the checks have read through it — and zstd checks its frame
/// checksum. These fail only if the archive is changed in place during the restore, or
/// was rewritten together with a resealed manifest: the stream then stops with
/// [`BackupError::Mismatch`] or [`BackupError::Corrupt`] before the chunk where the
/// problem was found (a file that spans chunks may have been partly written). One open file serves both reads, so a file renamed over the archive
/// meanwhile does not matter. A failing `out` is [`BackupError::Output`].
pub fn restore_to<W: Write>(record: &BackupRecord, out: W) -> Result<VerifyReport, BackupError> {
    let file = check_archive(record)?;
    stream_checked(record, &file, out)
}

/// The first half of [`restore_to`]: the manifest's digest, then the archive file's size
/// and sha256 against the manifest. Returns the file, opened once, for
/// [`stream_checked`].
pub fn check_archive(record: &BackupRecord) -> Result<File, BackupError> {
    let path = record.archive.as_path();
    let manifest = &record.manifest;
    check_digest(record)?;
    let file = open_archive(path, manifest)?;
    let read_error = |e| BackupError::io("read", path, e);
    let mut hashed = HashReader::new(&file);
    let mut buf = vec![0u8; CHUNK];
    while read_full(&mut hashed, &mut buf).map_err(read_error)? > 0 {}
    let (sha256, size) = (hex(&hashed.hasher.finalize()), hashed.count);
    Decoded {
        sha256,
        size,
        error: None,
    }
    .check(path, manifest)?;
    Ok(file)
}

/// The second half of [`restore_to`]: streams the archive `file` (checked by
/// [`check_archive`]) to `out`, checking every entry again on the way.
pub fn stream_checked<W: Write>(
    record: &BackupRecord,
    mut file: &File,
    mut out: W,
) -> Result<VerifyReport, BackupError> {
    let path = record.archive.as_path();
    let manifest = &record.manifest;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| BackupError::io("read", path, e))?;

    // Decompression, checking (a second thread) and output (this thread) overlap: each
    // chunk is checked, then written out.
    let (sender, mut checker_chunks) = chunk_channel();
    let mut checked_chunks = checker_chunks.forward();
    let (copy_error, checked, decoded) = thread::scope(|scope| {
        let decoder = scope.spawn(|| decompress(file, sender));
        let checker = scope.spawn(|| check_manifest(checker_chunks, path, manifest));
        let mut copy_error = None;
        // The chunks end early when the checker stops; it says why.
        while let Some(chunk) = checked_chunks.next_chunk() {
            if let Err(e) = out.write_all(&chunk) {
                copy_error = Some(e);
                break;
            }
            checked_chunks.recycle(chunk);
        }
        drop(checked_chunks);
        let checked = checker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let decoded = decoder
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (copy_error, checked, decoded)
    });
    if let Some(source) = copy_error {
        return Err(BackupError::Output { source });
    }
    decoded.map_err(|e| BackupError::Corrupt {
        path: path.to_owned(),
        detail: format!("zstd: {e}"),
    })?;
    let report = checked?;
    out.flush()
        .map_err(|source| BackupError::Output { source })?;
    Ok(VerifyReport {
        archive_size: manifest.archive_size,
        ..report
    })
}

/// Refuses a manifest whose content does not match its digest.
pub(crate) fn check_digest(record: &BackupRecord) -> Result<(), BackupError> {
    if record.manifest.compute_digest() == record.manifest.digest {
        Ok(())
    } else {
        Err(BackupError::ManifestChanged {
            path: record.manifest_path.clone(),
        })
    }
}

/// Opens the archive and checks its size against the manifest.
pub(crate) fn open_archive(path: &Path, manifest: &Manifest) -> Result<File, BackupError> {
    let file = File::open(path).map_err(|e| BackupError::io("open", path, e))?;
    let actual = file
        .metadata()
        .map_err(|e| BackupError::io("read", path, e))?
        .len();
    if actual != manifest.archive_size {
        return Err(BackupError::ArchiveSize {
            path: path.to_owned(),
            expected: manifest.archive_size,
            actual,
        });
    }
    Ok(file)
}

/// Verifies the open archive (read from its current position).
fn verify_open(file: &File, path: &Path, manifest: &Manifest) -> Result<VerifyReport, BackupError> {
    let (sender, chunks) = chunk_channel();
    let (checked, decoded) = thread::scope(|scope| {
        let decoder = scope.spawn(|| decompress_hashed(file, sender));
        let checked = check_manifest(chunks, path, manifest);
        let decoded = decoder
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (checked, decoded)
    });
    decoded.check(path, manifest)?;
    checked.map(|report| VerifyReport {
        archive_size: manifest.archive_size,
        ..report
    })
}

/// What the decompressing thread saw.
pub(crate) struct Decoded {
    sha256: String,
    size: u64,
    error: Option<io::Error>,
}

impl Decoded {
    /// The archive's own checks: sha256 and size first, then decompression.
    pub(crate) fn check(self, path: &Path, manifest: &Manifest) -> Result<(), BackupError> {
        if self.sha256 != manifest.archive_sha256 {
            return Err(BackupError::ArchiveChecksum {
                path: path.to_owned(),
                expected: manifest.archive_sha256.clone(),
                actual: self.sha256,
            });
        }
        if self.size != manifest.archive_size {
            return Err(BackupError::ArchiveSize {
                path: path.to_owned(),
                expected: manifest.archive_size,
                actual: self.size,
            });
        }
        match self.error {
            Some(e) => Err(BackupError::Corrupt {
                path: path.to_owned(),
                detail: format!("zstd: {e}"),
            }),
            None => Ok(()),
        }
    }
}

/// Decompresses `file` into chunks for `out`, hashing the compressed bytes. When
/// decompression fails or the receiver stops early, the rest of the file is still hashed,
/// so a changed file is reported as such.
pub(crate) fn decompress_hashed(file: &File, out: ChunkSender) -> Decoded {
    let mut hashed = HashReader::new(file);
    let mut error = decompress(&mut hashed, out).err();
    if let Err(e) = io::copy(&mut hashed, &mut io::sink()) {
        error.get_or_insert(e);
    }
    Decoded {
        sha256: hex(&hashed.hasher.finalize()),
        size: hashed.count,
        error,
    }
}

/// Decompresses `input` into chunks for `out` until its end, a zstd error (zstd's frame
/// checksum included), or the receiver stops.
fn decompress(input: impl Read, out: ChunkSender) -> io::Result<()> {
    let mut decoder =
        zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(CHUNK, input))?;
    loop {
        let mut chunk = out.fresh_full();
        let n = read_full(&mut decoder, &mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        chunk.truncate(n);
        if out.send(chunk).is_err() {
            return Ok(()); // The consumer stopped; it reports why.
        }
    }
}

/// [`check_entries`] against every entry of `manifest`, and its totals.
pub(crate) fn check_manifest(
    reader: impl Read,
    path: &Path,
    manifest: &Manifest,
) -> Result<VerifyReport, BackupError> {
    check_entries(
        reader,
        path,
        &manifest.entries,
        Some((manifest.files, manifest.bytes)),
    )
}

/// Parses a decompressed tar stream and compares it with the expected entries (and the
/// totals, when given), reading it to its end.
pub(crate) fn check_entries<E: Borrow<FileEntry>>(
    reader: impl Read,
    path: &Path,
    expected: impl IntoIterator<Item = E>,
    totals: Option<(u64, u64)>,
) -> Result<VerifyReport, BackupError> {
    let corrupt = |e: io::Error| BackupError::Corrupt {
        path: path.to_owned(),
        detail: format!("tar: {e}"),
    };
    let mismatch = |entry: &str, detail: String| BackupError::Mismatch {
        path: path.to_owned(),
        entry: entry.to_owned(),
        detail,
    };
    let mut archive = tar::Archive::new(TrackEof {
        inner: reader,
        eof: false,
    });
    let mut expected = expected.into_iter();
    let mut buf = vec![0u8; HASH_BUF];
    let mut report = VerifyReport {
        entries: 0,
        files: 0,
        bytes: 0,
        archive_size: 0,
    };
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let found = describe(&mut entry, &mut buf).map_err(corrupt)?;
        let Some(wanted) = expected.next() else {
            return Err(mismatch(
                &found.path,
                "the archive has this entry but the manifest does not".into(),
            ));
        };
        let wanted = wanted.borrow();
        if let Some(detail) = difference(wanted, &found) {
            return Err(mismatch(&wanted.path, detail));
        }
        report.entries += 1;
        if found.kind == EntryKind::File {
            report.files += 1;
            report.bytes += found.size;
        }
    }
    if let Some(missing) = expected.next() {
        return Err(mismatch(
            &missing.borrow().path,
            "the manifest lists this entry but the archive ends before it".into(),
        ));
    }
    let mut rest = archive.into_inner();
    if rest.eof {
        return Err(corrupt(io::Error::other(
            "the tar stream ends without its end-of-archive marker",
        )));
    }
    // Read to the end, so the decompressor checks the whole file (and zstd's checksum).
    while rest.read(&mut buf).map_err(corrupt)? > 0 {}
    if let Some((files, bytes)) = totals {
        if (report.files, report.bytes) != (files, bytes) {
            return Err(mismatch(
                "(totals)",
                format!(
                    "the archive has {} files and {} bytes but the manifest says {files} and \
                     {bytes}",
                    report.files, report.bytes
                ),
            ));
        }
    }
    Ok(report)
}

/// A reader that notes the end of its input.
pub(crate) struct TrackEof<R> {
    inner: R,
    pub(crate) eof: bool,
}

impl<R> TrackEof<R> {
    pub(crate) fn new(inner: R) -> Self {
        TrackEof { inner, eof: false }
    }
}

impl<R: Read> Read for TrackEof<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.eof = true;
        }
        Ok(n)
    }
}
