//! Running the version-control command-line tools: an optional secret written to
//! the child's stdin (never its arguments), and their stderr turned into a short,
//! redacted excerpt for error messages.
//!
//! Every tool process runs in its own process group under a bound ([`Timeouts`]: a
//! poll — `git ls-remote`, `svn info`, `hg identify` — or anything else, e.g. a fetch or
//! a checkout); past it the whole group (the tool and its helpers: `git-remote-http`,
//! `ssh`, …) is killed and the call fails with [`SourceError::Timeout`]. A [`Cache`]
//! applies its source's bounds to the tools it runs on the calling thread
//! ([`scope`]).
//!
//! [`Cache`]: crate::Cache

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::credentials::{scrub_opt, Credentials};
use crate::error::SourceError;
use crate::redact::scrub;

/// Longest stderr excerpt put into an error message.
const STDERR_LIMIT: usize = 2000;

/// Subcommands that only ask a server what its current revision is.
const POLLS: &[&str] = &["ls-remote", "info", "identify"];

/// How long one tool process may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A poll (`git ls-remote`, `svn info`, `hg identify`).
    pub poll: Duration,
    /// Anything else: a fetch, a pull, an export or checkout, a local command.
    pub transfer: Duration,
}

impl Default for Timeouts {
    /// 60 s for a poll, 10 min for the rest.
    fn default() -> Timeouts {
        Timeouts {
            poll: Duration::from_secs(60),
            transfer: Duration::from_secs(600),
        }
    }
}

impl Timeouts {
    /// Bounds for a source with its own `timeout`: every command within it, polls
    /// within the default poll bound too.
    pub fn within(timeout: Duration) -> Timeouts {
        Timeouts {
            poll: timeout.min(Timeouts::default().poll),
            transfer: timeout,
        }
    }
}

thread_local! {
    static TIMEOUTS: Cell<Timeouts> = Cell::new(Timeouts::default());
}

/// Restores the thread's previous bounds when dropped.
pub(crate) struct Scope(Timeouts);

impl Drop for Scope {
    fn drop(&mut self) {
        TIMEOUTS.with(|t| t.set(self.0));
    }
}

/// Tools run on this thread use `timeouts` until the returned value is dropped.
pub(crate) fn scope(timeouts: Timeouts) -> Scope {
    Scope(TIMEOUTS.with(|t| t.replace(timeouts)))
}

/// A tool process that ran past its bound and was killed with its process group.
#[derive(Debug, thiserror::Error)]
#[error("{command} did not finish within {after:?}")]
pub(crate) struct ToolTimeout {
    command: String,
    after: Duration,
}

/// The [`SourceError::Timeout`] behind an error of [`output`], if it is one.
pub(crate) fn timed_out(e: &io::Error) -> Option<SourceError> {
    let t = e.get_ref()?.downcast_ref::<ToolTimeout>()?;
    Some(SourceError::Timeout {
        command: t.command.clone(),
        after: t.after,
    })
}

/// Runs `cmd` to completion in its own process group, within the thread's bound for
/// its kind ([`scope`]). With `stdin`, the bytes are written to the child's standard
/// input (then closed); otherwise stdin is `/dev/null`. Past the bound the group is
/// killed and the error is a [`ToolTimeout`] (see [`timed_out`]).
pub(crate) fn output(cmd: &mut Command, stdin: Option<&[u8]>) -> io::Result<Output> {
    #[cfg(test)]
    spawned::record(cmd);
    let (tool, sub) = subcommand(cmd);
    let timeouts = TIMEOUTS.with(Cell::get);
    let limit = if POLLS.contains(&sub.as_str()) {
        timeouts.poll
    } else {
        timeouts.transfer
    };
    let deadline = Instant::now() + limit;
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let input = input.to_vec();
        // A writer thread: the child may fill its stdout before it reads stdin. The
        // child may exit without reading (e.g. a usage error): EPIPE is ignored.
        thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let stdout = read_all(child.stdout.take());
    let stderr = read_all(child.stderr.take());
    let group = child.id();
    // A waiter thread reaps the child; this one waits for it within the bound.
    let (tx, exited) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let timed_out = || {
        kill_group(group);
        io::Error::new(
            io::ErrorKind::TimedOut,
            ToolTimeout {
                command: format!("{tool} {sub}").trim_end().to_string(),
                after: limit,
            },
        )
    };
    let left = || deadline.saturating_duration_since(Instant::now());
    let status = match exited.recv_timeout(left()) {
        Ok(status) => status?,
        Err(_) => {
            let e = timed_out();
            let _ = exited.recv(); // reaped once killed
            return Err(e);
        }
    };
    // Helpers that outlive the tool may still hold its pipes open.
    let (Ok(stdout), Ok(stderr)) = (stdout.recv_timeout(left()), stderr.recv_timeout(left()))
    else {
        return Err(timed_out());
    };
    Ok(Output {
        status,
        stdout: stdout?,
        stderr: stderr?,
    })
}

/// Reads a pipe to its end on a thread; the bytes arrive on the returned channel.
fn read_all<R: Read + Send + 'static>(pipe: Option<R>) -> mpsc::Receiver<io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let result = match pipe {
            Some(mut p) => p.read_to_end(&mut buf).map(|_| buf),
            None => Ok(buf),
        };
        let _ = tx.send(result);
    });
    rx
}

/// Kills a process group: the tool (its leader) and every helper it started.
fn kill_group(group: u32) {
    if let Some(pid) = i32::try_from(group)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// `(tool, subcommand)` of a `git`/`svn`/`hg` command line: the first argument that
/// is not an option (nor an option's value).
fn subcommand(cmd: &Command) -> (String, String) {
    /// Options of `git`, `hg` and `svn` that come before the subcommand and take a value.
    const WITH_VALUE: &[&str] = &[
        "-c",
        "--git-dir",
        "--work-tree",
        "--repository",
        "-R",
        "--config-option",
        "--username",
    ];
    let tool = cmd.get_program().to_string_lossy().into_owned();
    let mut args = cmd.get_args().map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        if WITH_VALUE.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            return (tool, arg);
        }
    }
    (tool, String::new())
}

/// The error for a tool that could not be started.
pub(crate) fn spawn_error(tool: &'static str, package: &'static str, e: io::Error) -> SourceError {
    if let Some(timeout) = timed_out(&e) {
        return timeout;
    }
    if e.kind() == io::ErrorKind::NotFound {
        SourceError::ToolMissing {
            tool,
            package,
            source: e,
        }
    } else {
        SourceError::io(format!("cannot run {tool}"), e)
    }
}

/// A tool's stderr as one line: redacted (URLs, the secret part of `url`, the
/// password of `credentials`) and trimmed to a readable size.
pub(crate) fn stderr_excerpt(out: &Output, url: &str, credentials: Option<&Credentials>) -> String {
    let text = String::from_utf8_lossy(&out.stderr);
    let text: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut text = scrub_opt(&scrub(&text.join("; "), url), credentials);
    if text.len() > STDERR_LIMIT {
        let mut cut = text.len() - STDERR_LIMIT;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text = format!("…{}", &text[cut..]);
    }
    if text.is_empty() {
        text = format!("exit status {}", out.status);
    }
    text
}

/// First line of a commit message, control characters replaced, at most 80
/// characters.
pub(crate) fn first_line(message: &str) -> String {
    let line = message.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut subject: String = line
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if subject.chars().count() > 80 {
        subject = subject.chars().take(79).collect();
        subject.push('…');
    }
    subject
}

/// Unit tests: which commands this thread ran through [`output`], to prove what a
/// fetch did (or did not) run.
#[cfg(test)]
pub(crate) mod spawned {
    use std::cell::RefCell;
    use std::process::Command;

    thread_local! {
        static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    pub(crate) fn record(cmd: &Command) {
        let (tool, sub) = super::subcommand(cmd);
        LOG.with(|log| log.borrow_mut().push(format!("{tool} {sub}")));
    }

    /// The commands run on this thread since the last call, as `tool subcommand`
    /// (e.g. `git ls-remote`), oldest first.
    pub(crate) fn take() -> Vec<String> {
        LOG.with(|log| std::mem::take(&mut *log.borrow_mut()))
    }
}
