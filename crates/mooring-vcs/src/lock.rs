//! The per-repository lock across threads and processes: an exclusive `flock(2)` on a
//! lock file. The kernel releases it when the file is closed — when the guard drops, or
//! when the holding process dies, `kill -9` included — so nothing stale is left to detect
//! or break, and there is no in-process state that a failing step could leave held.
//! Each acquire opens its own file description, so threads contend like processes.
//!
//! Advisory: it excludes Mooring processes (and `flock(1)`) that take the same lock. It
//! holds across pid namespaces on one file system; a data directory on NFS needs the
//! server's lock support.

use std::fs::{self, File, OpenOptions};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;

use crate::error::SourceError;

/// The lock of a repository's cache folder; released when dropped (the file is closed).
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock on the file at `path` (created if missing), waiting up to
    /// `timeout` for another holder to release it.
    pub(crate) fn acquire(path: &Path, timeout: Duration) -> Result<DirLock, SourceError> {
        if path.is_dir() {
            // A lock directory left by a Mooring from before locks were flocks.
            fs::remove_dir_all(path).map_err(|e| {
                SourceError::io(
                    format!("cannot remove the old lock directory {}", path.display()),
                    e,
                )
            })?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| {
                SourceError::io(
                    format!(
                        "cannot open lock file {} (check free disk space and the open-file limit)",
                        path.display()
                    ),
                    e,
                )
            })?;
        let start = Instant::now();
        let mut delay = Duration::from_millis(20);
        loop {
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(DirLock { _file: file }),
                Err(Errno::WOULDBLOCK | Errno::INTR) => {}
                Err(e) => {
                    return Err(SourceError::io(
                        format!("cannot lock {}", path.display()),
                        e.into(),
                    ))
                }
            }
            if start.elapsed() >= timeout {
                return Err(SourceError::LockTimeout {
                    path: path.to_path_buf(),
                    waited_secs: start.elapsed().as_secs(),
                });
            }
            thread::sleep(delay.min(timeout.saturating_sub(start.elapsed())));
            delay = (delay * 2).min(Duration::from_millis(500));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn exclusive_and_released_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("lock");
        let first = DirLock::acquire(&path, Duration::from_secs(1)).unwrap();
        let err = DirLock::acquire(&path, Duration::from_millis(100)).unwrap_err();
        assert!(matches!(err, SourceError::LockTimeout { .. }), "{err}");
        drop(first);
        let started = Instant::now();
        let _again = DirLock::acquire(&path, Duration::from_secs(1)).unwrap();
        assert!(started.elapsed() < Duration::from_millis(100));
    }

    #[test]
    fn a_lock_directory_of_an_older_mooring_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("lock");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("pid"), "1").unwrap();
        let _lock = DirLock::acquire(&path, Duration::from_secs(1)).unwrap();
        assert!(path.is_file());
    }

    /// `flock(1)` on `path`, its exit code: 0 when it got the lock, 1 when held.
    fn flock_cli(path: &Path) -> i32 {
        let out = Command::new("flock")
            .args(["--nonblock", "--conflict-exit-code", "1"])
            .arg(path)
            .arg("true")
            .output()
            .unwrap();
        out.status.code().unwrap()
    }

    #[test]
    fn contention_between_processes() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("lock");
        let held = DirLock::acquire(&path, Duration::from_secs(1)).unwrap();
        assert_eq!(flock_cli(&path), 1, "another process sees the lock held");
        drop(held);
        assert_eq!(flock_cli(&path), 0, "and free once the guard is dropped");
    }

    #[test]
    fn released_when_the_holding_process_is_killed() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("lock");
        // A child process holding the lock (flock(1) execs `sleep` with the locked fd).
        let mut child = Command::new("flock")
            .arg("--no-fork")
            .arg(&path)
            .args(["sleep", "60"])
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while DirLock::acquire(&path, Duration::ZERO).is_ok() {
            assert!(Instant::now() < deadline, "the child never took the lock");
            thread::sleep(Duration::from_millis(20));
        }
        let err = DirLock::acquire(&path, Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, SourceError::LockTimeout { .. }), "{err}");
        child.kill().unwrap(); // SIGKILL: no chance to unlock by itself
        child.wait().unwrap();
        let _lock = DirLock::acquire(&path, Duration::from_secs(5)).unwrap();
    }

    /// Runs `f` on a thread and fails the test if it does not return within `secs`
    /// (a deadlock fails instead of hanging the run).
    fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(secs))
            .expect("the lock call did not return: deadlock")
    }

    /// Lowers this process's open-file limit so that the next `open` fails with EMFILE,
    /// as under fd exhaustion by slow clients; restores it on drop. (nextest runs each
    /// test in its own process.)
    struct NoMoreFiles(rustix::process::Rlimit);

    impl NoMoreFiles {
        fn now() -> NoMoreFiles {
            use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
            let old = getrlimit(Resource::Nofile);
            let probe = fs::File::open("/dev/null").unwrap();
            let next = std::os::fd::AsRawFd::as_raw_fd(&probe) as u64;
            drop(probe);
            setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(next),
                    maximum: old.maximum,
                },
            )
            .unwrap();
            assert!(fs::File::open("/dev/null").is_err(), "no fd left");
            NoMoreFiles(old)
        }
    }

    impl Drop for NoMoreFiles {
        fn drop(&mut self) {
            let old = rustix::process::Rlimit {
                current: self.0.current,
                maximum: self.0.maximum,
            };
            rustix::process::setrlimit(rustix::process::Resource::Nofile, old).unwrap();
        }
    }

    #[test]
    fn no_deadlock_when_the_lock_file_cannot_be_written() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("lock");
        let exhausted = NoMoreFiles::now();
        let p = path.clone();
        let err = within(10, move || {
            DirLock::acquire(&p, Duration::from_secs(1)).map(|_| ())
        });
        drop(exhausted);
        let err = err.unwrap_err();
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert!(err.to_string().contains("open files"), "{err}");
        // Nothing is left held: the next acquire, in this process, succeeds at once.
        let p = path.clone();
        within(10, move || {
            DirLock::acquire(&p, Duration::from_secs(1)).map(|_| ())
        })
        .unwrap();
    }

    #[test]
    fn threads_serialize() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("lock");
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                let counter = counter.clone();
                thread::spawn(move || {
                    let _lock = DirLock::acquire(&path, Duration::from_secs(10)).unwrap();
                    let inside = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    assert_eq!(inside, 0);
                    thread::sleep(Duration::from_millis(20));
                    counter.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
}
