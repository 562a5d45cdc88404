//! Plumbing between threads: byte chunks passed along bounded channels, readers and
//! writers that hash what goes through them, and a reader that follows a file while it
//! is being written.
//!
//! Each operation is a pipeline of two or three threads (tar parsing and per-file
//! hashing, compression or decompression, output or read-back verification) joined by
//! bounded channels of 1 MiB chunks that are recycled, so memory stays bounded and
//! chunks are not allocated again and again.

use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError};
use std::sync::{Condvar, Mutex, PoisonError};

use sha2::{Digest, Sha256};

/// Size of the chunks passed between threads and of the large I/O buffers.
pub(crate) const CHUNK: usize = 1 << 20;
/// Chunks in flight in one direction.
const DEPTH: usize = 4;

/// Both ends of a chunk channel with recycling.
pub(crate) fn chunk_channel() -> (ChunkSender, ChunkReceiver) {
    let (tx, rx) = std::sync::mpsc::sync_channel(DEPTH);
    let (free_tx, free_rx) = std::sync::mpsc::channel();
    (
        ChunkSender {
            tx,
            free: free_rx,
            buf: Vec::new(),
        },
        ChunkReceiver {
            rx,
            free: free_tx,
            current: Vec::new(),
            pos: 0,
            forward: None,
        },
    )
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the other thread stopped")
}

/// The sending end: collects bytes into chunks and sends them when full.
pub(crate) struct ChunkSender {
    tx: SyncSender<Vec<u8>>,
    free: Receiver<Vec<u8>>,
    buf: Vec<u8>,
}

impl ChunkSender {
    /// An empty chunk with room for [`CHUNK`] bytes (recycled when possible).
    pub(crate) fn fresh(&self) -> Vec<u8> {
        match self.free.try_recv() {
            Ok(mut chunk) => {
                chunk.clear();
                chunk
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => Vec::with_capacity(CHUNK),
        }
    }

    /// A chunk of exactly [`CHUNK`] bytes to overwrite (recycled when possible; only
    /// the part a recycled chunk did not have is zeroed).
    pub(crate) fn fresh_full(&self) -> Vec<u8> {
        let mut chunk = match self.free.try_recv() {
            Ok(chunk) => chunk,
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => Vec::with_capacity(CHUNK),
        };
        chunk.resize(CHUNK, 0);
        chunk
    }

    /// Reads up to `max` bytes from `input` straight into the current chunk (sending it
    /// when full); returns the bytes read, empty at the end of `input`.
    pub(crate) fn read_from(&mut self, input: &mut impl Read, max: usize) -> io::Result<&[u8]> {
        if self.buf.len() == CHUNK {
            let full = std::mem::take(&mut self.buf);
            self.send(full)?;
        }
        if self.buf.capacity() == 0 {
            self.buf = self.fresh_full();
            self.buf.truncate(0);
        }
        let start = self.buf.len();
        let room = (CHUNK - start).min(max);
        // The chunk's memory beyond `start` is initialized (recycled chunks keep theirs):
        // extend to the room, read, keep what was read.
        self.buf.resize(start + room, 0);
        let n = loop {
            match input.read(&mut self.buf[start..start + room]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(start);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(start + n);
        Ok(&self.buf[start..start + n])
    }

    /// Sends a whole chunk (fails when the receiver is gone).
    pub(crate) fn send(&self, chunk: Vec<u8>) -> io::Result<()> {
        self.tx.send(chunk).map_err(|_| closed())
    }

    /// Appends `data`, sending full chunks.
    pub(crate) fn push(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.buf.capacity() == 0 {
                self.buf = self.fresh();
            }
            let room = CHUNK - self.buf.len();
            let take = room.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == CHUNK {
                let full = std::mem::take(&mut self.buf);
                self.send(full)?;
            }
        }
        Ok(())
    }

    /// Sends what is left; dropping the sender then ends the stream.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let last = std::mem::take(&mut self.buf);
            self.send(last)?;
        }
        Ok(())
    }
}

/// The receiving end: a [`Read`] over the chunks, returning them for reuse.
pub(crate) struct ChunkReceiver {
    rx: Receiver<Vec<u8>>,
    free: Sender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    /// Where chunks go once read through (instead of back to the sender).
    forward: Option<SyncSender<Vec<u8>>>,
}

impl ChunkReceiver {
    /// The next whole chunk, for consumers that do not need [`Read`].
    pub(crate) fn next_chunk(&mut self) -> Option<Vec<u8>> {
        self.rx.recv().ok()
    }

    /// A second stage: each chunk, once [read](Read) through here, goes on to the returned
    /// receiver (which recycles it to this channel's sender) instead of back.
    pub(crate) fn forward(&mut self) -> ChunkReceiver {
        let (tx, rx) = std::sync::mpsc::sync_channel(DEPTH);
        self.forward = Some(tx);
        ChunkReceiver {
            rx,
            free: self.free.clone(),
            current: Vec::new(),
            pos: 0,
            forward: None,
        }
    }

    /// Hands a chunk that was read through to the next stage, or back for reuse.
    fn done_with(&self, chunk: Vec<u8>) -> io::Result<()> {
        match &self.forward {
            Some(next) => next.send(chunk).map_err(|_| closed()),
            None => {
                self.recycle(chunk);
                Ok(())
            }
        }
    }

    /// Gives a chunk back for reuse.
    pub(crate) fn recycle(&self, chunk: Vec<u8>) {
        // The sender may be gone already; then the chunk is simply freed.
        let _ = self.free.send(chunk);
    }
}

impl Read for ChunkReceiver {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.pos == self.current.len() {
            match self.rx.recv() {
                Ok(next) => {
                    let done = std::mem::replace(&mut self.current, next);
                    self.pos = 0;
                    if done.capacity() > 0 {
                        self.done_with(done)?;
                    }
                }
                Err(_) => {
                    // The end: the last chunk is read through too.
                    let last = std::mem::take(&mut self.current);
                    self.pos = 0;
                    if last.capacity() > 0 {
                        self.done_with(last)?;
                    }
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A reader that copies everything read through it into a [`ChunkSender`], counts and
/// hashes it (XXH3-128, for the read-back check), and notes the end of its input.
pub(crate) struct Tee<R> {
    pub(crate) inner: R,
    pub(crate) sink: ChunkSender,
    pub(crate) count: u64,
    pub(crate) eof: bool,
    pub(crate) hasher: xxhash_rust::xxh3::Xxh3,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.eof = true;
        }
        self.sink.push(&buf[..n])?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A reader that hashes and counts what is read through it.
pub(crate) struct HashReader<R> {
    pub(crate) inner: R,
    pub(crate) hasher: Sha256,
    pub(crate) count: u64,
}

impl<R> HashReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts what is written through it.
pub(crate) struct HashWriter<W> {
    pub(crate) inner: W,
    pub(crate) hasher: Sha256,
    pub(crate) count: u64,
}

impl<W> HashWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// How far a file being written has got: shared by its writer ([`Announce`]) and a
/// reader that follows it ([`Follower`]).
#[derive(Default)]
pub(crate) struct Progress {
    state: Mutex<Written>,
    changed: Condvar,
}

#[derive(Default, Clone, Copy)]
pub(crate) struct Written {
    pub(crate) bytes: u64,
    pub(crate) finished: bool,
    pub(crate) failed: bool,
}

impl Progress {
    fn update(&self, change: impl FnOnce(&mut Written)) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut state);
        self.changed.notify_all();
    }

    /// The file is complete.
    pub(crate) fn finish(&self) {
        self.update(|w| w.finished = true);
    }

    /// The writer gave up; followers fail.
    pub(crate) fn fail(&self) {
        self.update(|w| w.failed = true);
    }

    /// Waits until more than `pos` bytes exist, or the end.
    pub(crate) fn wait_beyond(&self, pos: u64) -> Written {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while state.bytes <= pos && !state.finished && !state.failed {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *state
    }
}

/// Marks `progress` failed when dropped before [`Progress::finish`] (early return, panic).
pub(crate) struct FailOnDrop<'a>(pub(crate) &'a Progress);

impl Drop for FailOnDrop<'_> {
    fn drop(&mut self) {
        let finished = self
            .0
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .finished;
        if !finished {
            self.0.fail();
        }
    }
}

/// A writer that announces every byte it has handed to `inner` (the file).
pub(crate) struct Announce<'a, W> {
    pub(crate) inner: W,
    pub(crate) progress: &'a Progress,
    pub(crate) count: u64,
}

impl<W: Write> Write for Announce<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        let count = self.count;
        self.progress.update(|w| w.bytes = count);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader of a file that is still being written: it waits for the writer's progress
/// and ends where the writer finished.
pub(crate) struct Follower<'a, R> {
    pub(crate) inner: R,
    pub(crate) progress: &'a Progress,
    pub(crate) pos: u64,
}

impl<R: Read> Read for Follower<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let state = self.progress.wait_beyond(self.pos);
        if state.bytes > self.pos {
            let room = usize::try_from(state.bytes - self.pos).unwrap_or(usize::MAX);
            let want = buf.len().min(room);
            let n = self.inner.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file is shorter than what was written to it",
                ));
            }
            self.pos += n as u64;
            Ok(n)
        } else if state.failed {
            Err(io::Error::other("writing the file failed"))
        } else {
            Ok(0)
        }
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
pub(crate) fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_carry_every_byte_in_order() {
        let data: Vec<u8> = (0..3 * CHUNK + 12345).map(|i| (i % 251) as u8).collect();
        let (mut tx, mut rx) = chunk_channel();
        let copy = data.clone();
        let sender = std::thread::spawn(move || {
            for piece in copy.chunks(70_001) {
                tx.push(piece).expect("push");
            }
            tx.finish().expect("finish");
        });
        let mut got = Vec::new();
        rx.read_to_end(&mut got).expect("read");
        sender.join().expect("join");
        assert_eq!(got, data);
    }
}
