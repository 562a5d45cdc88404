//! Writing a backup: tar stream in, `<id>.tar.zst` and `<id>.manifest.json` out.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read};
use std::path::Path;
use std::thread;

use sha2::Digest;

use crate::entries::{describe, HASH_BUF};
use crate::manifest::{
    archive_path, check_meta, hex, manifest_path, new_id, partial, read_manifest, write_manifest,
};
use crate::pipe::{
    chunk_channel, Announce, ChunkReceiver, ChunkSender, FailOnDrop, Follower, HashReader,
    Progress, Tee, CHUNK,
};
use crate::{BackupError, BackupMeta, BackupRecord, EntryKind, FileEntry, Manifest, FORMAT};

/// The zstd level archives are written with (fast; about `zstd -3`).
pub const ZSTD_LEVEL: i32 = 3;

/// Stores the tar stream `input` as a new backup in `dir` and returns it, verified.
///
/// One pass over the input, in bounded memory (beyond the manifest itself): the stream's
/// bytes are kept exactly as they come (zstd-compressed, level [`ZSTD_LEVEL`], with zstd's
/// frame checksum) while every entry is described — path, kind, size, mode, and the
/// sha256 of each file's content. Three threads: parsing and hashing (the caller's),
/// compression, and verification.
///
/// Verification reads the archive back from its file while it is being written,
/// decompresses it and checks it as [`verify`](crate::verify) does: every entry equals
/// the one described from the input, the end-of-archive marker is there, and the size
/// read is the size written. The manifest's `archive_sha256` is the sha256 of those
/// bytes read back. It runs beside compression (the slow part), so it adds little time.
///
/// The stream must be a complete tar archive, ending with the end-of-archive marker (as
/// Docker's archive API and `tar -c` write it): a stream cut short is refused with
/// [`BackupError::InputTruncated`].
///
/// Crash safety: the archive and manifest are written as `<id>.tar.zst.partial` and
/// `<id>.manifest.json.partial` and fsynced, and the manifest is read back; only when all
/// of it verified is the archive renamed into place, then the manifest, and the folder
/// fsynced. A backup exists (is [listed](crate::list)) only once its manifest does, so a
/// crash at any point leaves at most files that [`clean_partials`](crate::clean_partials)
/// removes. On any error every file of this backup is removed; a backup that does not
/// verify is reported as [`BackupError::NotVerified`].
///
/// The id is `<app>-<volume>-<yyyymmddThhmmss>-<6 hex>` (UTC of `meta.created_at`, and a
/// random suffix); app and volume names may only use `[A-Za-z0-9_.-]`.
pub fn write_backup(
    input: impl Read,
    dir: &Path,
    meta: BackupMeta,
) -> Result<BackupRecord, BackupError> {
    write_backup_from(|sink| parse(input, sink), dir, meta)
}

/// A producer of a tar stream for [`write_backup_from`]: writes the stream into the
/// sink and returns its entries, described as the manifest does, and its [`StreamSum`].
pub(crate) type Produced = Result<(Vec<FileEntry>, StreamSum), BackupError>;

/// [`write_backup`] with the stream produced by `produce` (on the caller's thread)
/// instead of parsed from a reader.
pub(crate) fn write_backup_from(
    produce: impl FnOnce(ChunkSender) -> Produced,
    dir: &Path,
    meta: BackupMeta,
) -> Result<BackupRecord, BackupError> {
    check_meta(&meta)?;
    let id = new_id(&meta)?;
    let archive = archive_path(dir, &id);
    let manifest_file = manifest_path(dir, &id);
    let archive_partial = partial(&archive);
    let manifest_partial = partial(&manifest_file);

    let outcome = (|| {
        let manifest = stream_archive(produce, &archive_partial, &id, meta)?;
        write_manifest(&manifest_partial, &manifest)?;
        sync_dir(dir)?;
        let stored = read_manifest(&manifest_partial)?;
        if stored != manifest || stored.compute_digest() != stored.digest {
            return Err(BackupError::NotVerified {
                id: id.clone(),
                source: Box::new(BackupError::ManifestChanged {
                    path: manifest_partial.clone(),
                }),
            });
        }
        rename(&archive_partial, &archive)?;
        rename(&manifest_partial, &manifest_file)?;
        sync_dir(dir)?;
        Ok(stored)
    })();

    match outcome {
        Ok(manifest) => Ok(BackupRecord::new(dir, &id, manifest)),
        Err(e) => {
            // Best effort: the manifest goes first, so nothing half-removed is ever listed.
            for path in [
                &manifest_file,
                &manifest_partial,
                &archive,
                &archive_partial,
            ] {
                let _ = fs::remove_file(path);
            }
            Err(e)
        }
    }
}

/// Streams `input` into a new compressed file at `path`, verifying it as it is written;
/// returns the manifest.
fn stream_archive(
    produce: impl FnOnce(ChunkSender) -> Produced,
    path: &Path,
    id: &str,
    meta: BackupMeta,
) -> Result<Manifest, BackupError> {
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| BackupError::io("create", path, e))?;
    let read_back = File::open(path).map_err(|e| BackupError::io("open", path, e))?;
    let flushed = file
        .try_clone()
        .map_err(|e| BackupError::io("open", path, e))?;
    let progress = Progress::default();
    let (sender, receiver) = chunk_channel();
    let (parsed, compressed, verified) = thread::scope(|scope| {
        let progress = &progress;
        let compressor = scope.spawn(move || compress(receiver, file, path, progress));
        let verifier = scope.spawn(move || follow_and_verify(read_back, progress, path));
        // Disk writes start while compression goes on, so the final fsync is short.
        scope.spawn(move || flush_behind(&flushed, progress));
        let parsed = produce(sender);
        let compressed = compressor
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let verified = verifier
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (parsed, compressed, verified)
    });
    // A compressor failure (disk full…) is the cause of any other error it provoked, and
    // a bad input the cause of any verification failure.
    let archive_size = compressed?;
    let (entries, stream) = parsed?;
    let not_verified = |source| BackupError::NotVerified {
        id: id.to_owned(),
        source: Box::new(source),
    };
    // The archive's sha256 is that of the bytes read back and verified.
    let read = verified.map_err(not_verified)?;
    if read.stream != stream {
        return Err(not_verified(BackupError::Corrupt {
            path: path.to_owned(),
            detail: format!(
                "it decompresses to {} bytes that differ from the {} bytes of the tar stream \
                 backed up",
                read.stream.1, stream.1
            ),
        }));
    }
    let (archive_sha256, read_size) = (read.sha256, read.size);
    if read_size != archive_size {
        return Err(not_verified(BackupError::ArchiveSize {
            path: path.to_owned(),
            expected: archive_size,
            actual: read_size,
        }));
    }
    let (files, bytes) = entries
        .iter()
        .filter(|e| e.kind == EntryKind::File)
        .fold((0, 0), |(n, b), e| (n + 1, b + e.size));
    let mut manifest = Manifest {
        format: FORMAT,
        meta,
        entries,
        files,
        bytes,
        archive_sha256,
        archive_size,
        digest: String::new(),
    };
    manifest.digest = manifest.compute_digest();
    Ok(manifest)
}

/// A stream's XXH3-128 and length.
pub(crate) type StreamSum = (u128, u64);

/// Parses the tar stream (every byte read goes to `sink`); returns its entries and the
/// whole stream's [`StreamSum`].
fn parse(input: impl Read, sink: ChunkSender) -> Produced {
    let input_error = |source| BackupError::Input { source };
    // No buffering here: the sources hand over large chunks already.
    let tee = Tee {
        inner: input,
        sink,
        count: 0,
        eof: false,
        hasher: xxhash_rust::xxh3::Xxh3::new(),
    };
    let mut archive = tar::Archive::new(tee);
    let mut entries = Vec::new();
    let mut buf = vec![0u8; HASH_BUF];
    for entry in archive.entries().map_err(input_error)? {
        let mut entry = entry.map_err(input_error)?;
        let described = describe(&mut entry, &mut buf).map_err(input_error)?;
        entries.push(described);
    }
    let mut tee = archive.into_inner();
    if tee.eof {
        return Err(BackupError::InputTruncated { bytes: tee.count });
    }
    // Whatever follows the end-of-archive marker (padding to the record size) is kept too,
    // so a restore hands back exactly the bytes that came in.
    io::copy(&mut tee, &mut io::sink()).map_err(input_error)?;
    let sum = (tee.hasher.digest128(), tee.count);
    tee.sink.finish().map_err(input_error)?;
    Ok((entries, sum))
}

/// Compresses the chunks into `file`, announcing its progress to the verifier; returns
/// the file's size.
fn compress(
    mut chunks: ChunkReceiver,
    file: File,
    path: &Path,
    progress: &Progress,
) -> Result<u64, BackupError> {
    let _fail_unless_finished = FailOnDrop(progress);
    let write_error = |e| BackupError::io("write", path, e);
    let announced = Announce {
        inner: file,
        progress,
        count: 0,
    };
    let out = BufWriter::with_capacity(CHUNK, announced);
    let mut encoder = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL).map_err(write_error)?;
    encoder.include_checksum(true).map_err(write_error)?;
    while let Some(chunk) = chunks.next_chunk() {
        io::Write::write_all(&mut encoder, &chunk).map_err(write_error)?;
        chunks.recycle(chunk);
    }
    let announced = encoder
        .finish()
        .map_err(write_error)?
        .into_inner()
        .map_err(|e| write_error(e.into_error()))?;
    announced
        .inner
        .sync_all()
        .map_err(|e| BackupError::io("fsync", path, e))?;
    progress.finish();
    Ok(announced.count)
}

/// How much is written between two early flushes of the archive.
const FLUSH_EVERY: u64 = 32 << 20;

/// Flushes the archive to disk every [`FLUSH_EVERY`] bytes while it is written (the
/// compressor's final fsync then waits only for the rest). Best effort: the final fsync
/// is what counts.
fn flush_behind(file: &File, progress: &Progress) {
    let mut flushed = 0;
    loop {
        let state = progress.wait_beyond(flushed + FLUSH_EVERY);
        if state.finished || state.failed {
            return;
        }
        if file.sync_data().is_err() {
            return;
        }
        flushed = state.bytes;
    }
}

/// What the read-back saw.
#[derive(Debug)]
struct ReadBack {
    /// sha256 of the archive file's bytes.
    sha256: String,
    /// The archive file's size.
    size: u64,
    /// The decompressed stream's XXH3-128 and length.
    stream: StreamSum,
}

/// Reads the archive back while it is written and decompresses it (checking zstd's frame
/// checksum); returns what it saw.
fn follow_and_verify(
    file: File,
    progress: &Progress,
    path: &Path,
) -> Result<ReadBack, BackupError> {
    let corrupt = |e: io::Error| BackupError::Corrupt {
        path: path.to_owned(),
        detail: format!("zstd: {e}"),
    };
    let mut hashed = HashReader::new(Follower {
        inner: file,
        progress,
        pos: 0,
    });
    let mut decoder =
        zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(CHUNK, &mut hashed))
            .map_err(corrupt)?;
    let mut stream = xxhash_rust::xxh3::Xxh3::new();
    let mut len = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(corrupt(e)),
        };
        stream.update(&buf[..n]);
        len += n as u64;
    }
    drop(decoder);
    Ok(ReadBack {
        sha256: hex(&hashed.hasher.finalize()),
        size: hashed.count,
        stream: (stream.digest128(), len),
    })
}

fn rename(from: &Path, to: &Path) -> Result<(), BackupError> {
    fs::rename(from, to).map_err(|e| BackupError::io("rename into place", from, e))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| BackupError::io("fsync the folder", dir, e))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn one_file_tar() -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, "a", &b"hello"[..])
            .expect("append");
        builder.into_inner().expect("tar")
    }

    /// Writes `data` to `path` in small pieces through [`Announce`], from another thread.
    fn write_slowly<'a>(
        scope: &'a thread::Scope<'a, '_>,
        path: &'a Path,
        data: &'a [u8],
        progress: &'a Progress,
        fail: bool,
    ) {
        let file = File::create(path).expect("create");
        scope.spawn(move || {
            let mut out = Announce {
                inner: file,
                progress,
                count: 0,
            };
            for piece in data.chunks(7) {
                out.write_all(piece).expect("write");
                thread::yield_now();
            }
            if fail {
                progress.fail();
            } else {
                progress.finish();
            }
        });
    }

    #[test]
    fn the_read_back_follows_the_writer_and_sums_what_it_decompresses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.tar.zst");
        let tar = one_file_tar();
        let archive = zstd::encode_all(&tar[..], 3).expect("zstd");
        let run = |fail: bool| {
            let progress = Progress::default();
            thread::scope(|scope| {
                write_slowly(scope, &path, &archive, &progress, fail);
                let reader = File::open(&path).expect("open");
                follow_and_verify(reader, &progress, &path)
            })
        };
        let read = run(false).expect("verifies");
        assert_eq!(read.size, archive.len() as u64);
        assert_eq!(read.sha256, hex(&sha2::Sha256::digest(&archive)));
        assert_eq!(
            read.stream,
            (xxhash_rust::xxh3::xxh3_128(&tar), tar.len() as u64)
        );
        let err = run(true).expect_err("writer failed");
        assert!(err.to_string().contains("writing the file failed"), "{err}");
    }
}
