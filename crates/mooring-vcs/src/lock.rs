//! A small cross-process lock built on atomic `mkdir`.
//!
//! The lock is a directory; whoever creates it owns it and writes its process id
//! into `pid` inside. It is released (removed) on drop. A lock left behind by a
//! crashed process is broken when its owner is known to be gone: on systems with
//! `/proc`, when no process with that id exists, or when the id is our own but
//! this process does not hold the lock (a restarted container reusing the pid).
//! Otherwise waiters give up after a timeout with an error naming the lock.
//!
//! Limitation: liveness is checked in the local pid namespace, so a data
//! directory must not be shared by concurrently running hosts or containers.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::error::SourceError;

/// A lock without a `pid` file older than this is considered abandoned.
const PID_GRACE: Duration = Duration::from_secs(30);

/// Lock directories held by this process. The mutex also serializes this
/// process's create/break/release steps, so threads never race each other.
fn held() -> MutexGuard<'static, HashSet<PathBuf>> {
    static HELD: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    HELD.get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// An acquired lock; released when dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    path: PathBuf,
}

impl DirLock {
    /// Takes the lock at `path` (a directory that must not exist), waiting up to
    /// `timeout` for another holder to release it.
    pub(crate) fn acquire(path: &Path, timeout: Duration) -> Result<DirLock, SourceError> {
        let start = Instant::now();
        let mut delay = Duration::from_millis(20);
        loop {
            {
                let mut set = held();
                match fs::create_dir(path) {
                    Ok(()) => {
                        set.insert(path.to_path_buf());
                        let lock = DirLock {
                            path: path.to_path_buf(),
                        };
                        let pid_file = path.join("pid");
                        fs::write(&pid_file, std::process::id().to_string()).map_err(|e| {
                            SourceError::io(format!("cannot write {}", pid_file.display()), e)
                        })?;
                        return Ok(lock);
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        if is_stale(path, &set) {
                            break_lock(path);
                            continue;
                        }
                    }
                    Err(e) => {
                        return Err(SourceError::io(
                            format!("cannot create lock {}", path.display()),
                            e,
                        ))
                    }
                }
            }
            if start.elapsed() >= timeout {
                return Err(SourceError::LockTimeout {
                    path: path.to_path_buf(),
                    waited_secs: start.elapsed().as_secs(),
                });
            }
            thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(500));
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let mut set = held();
        set.remove(&self.path);
        // Best effort: a lock we cannot remove will be found stale later.
        let _ = fs::remove_dir_all(&self.path);
    }
}

fn is_stale(path: &Path, held_here: &HashSet<PathBuf>) -> bool {
    match fs::read_to_string(path.join("pid")) {
        Ok(text) => match text.trim().parse::<u32>() {
            Ok(pid) if pid == std::process::id() => !held_here.contains(path),
            Ok(pid) => {
                let proc_fs = Path::new("/proc");
                proc_fs.join("self").exists() && !proc_fs.join(pid.to_string()).exists()
            }
            Err(_) => older_than(path, PID_GRACE),
        },
        // The owner may be between `mkdir` and writing its pid.
        Err(_) => older_than(path, PID_GRACE),
    }
}

fn older_than(path: &Path, age: Duration) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|elapsed| elapsed > age)
}

/// Moves a stale lock aside atomically (only one breaker wins) and deletes it.
fn break_lock(path: &Path) {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let aside = path.with_extension(format!("stale-{}-{nanos}", std::process::id()));
    if fs::rename(path, &aside).is_ok() {
        let _ = fs::remove_dir_all(&aside);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_and_released_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("lock");
        let first = DirLock::acquire(&path, Duration::from_secs(1)).unwrap();
        let err = DirLock::acquire(&path, Duration::from_millis(100)).unwrap_err();
        assert!(matches!(err, SourceError::LockTimeout { .. }), "{err}");
        drop(first);
        assert!(!path.exists());
        let _again = DirLock::acquire(&path, Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn breaks_lock_of_previous_incarnation() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("lock");
        fs::create_dir(&path).unwrap();
        // Same pid as ours, but not held by this process: left by a crash.
        fs::write(path.join("pid"), std::process::id().to_string()).unwrap();
        let _lock = DirLock::acquire(&path, Duration::from_secs(1)).unwrap();
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
