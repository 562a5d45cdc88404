//! Running the version-control command-line tools: an optional secret written to
//! the child's stdin (never its arguments), and their stderr turned into a short,
//! redacted excerpt for error messages.

use std::io::{self, Write};
use std::process::{Command, Output, Stdio};
use std::thread;

use crate::credentials::{scrub_opt, Credentials};
use crate::error::SourceError;
use crate::redact::scrub;

/// Longest stderr excerpt put into an error message.
const STDERR_LIMIT: usize = 2000;

/// Runs `cmd` to completion. With `stdin`, the bytes are written to the child's
/// standard input (then closed); otherwise stdin is `/dev/null`.
pub(crate) fn output(cmd: &mut Command, stdin: Option<&[u8]>) -> io::Result<Output> {
    #[cfg(test)]
    spawned::record(cmd);
    let Some(input) = stdin else {
        return cmd.stdin(Stdio::null()).output();
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pipe = child.stdin.take();
    let input = input.to_vec();
    // A writer thread: the child may fill its stdout before it reads stdin.
    let writer = thread::spawn(move || {
        if let Some(mut pipe) = pipe {
            // The child may exit without reading (e.g. a usage error): ignore EPIPE.
            let _ = pipe.write_all(&input);
        }
    });
    let out = child.wait_with_output();
    let _ = writer.join();
    out
}

/// The error for a tool that could not be started.
pub(crate) fn spawn_error(tool: &'static str, package: &'static str, e: io::Error) -> SourceError {
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

    /// Options of `git` and `hg` that come before the subcommand and take a value.
    const WITH_VALUE: &[&str] = &["-c", "--git-dir", "--work-tree", "--repository", "-R"];

    pub(crate) fn record(cmd: &Command) {
        let tool = cmd.get_program().to_string_lossy().into_owned();
        let mut args = cmd.get_args().map(|a| a.to_string_lossy().into_owned());
        let mut sub = String::new();
        while let Some(arg) = args.next() {
            if WITH_VALUE.contains(&arg.as_str()) {
                args.next();
            } else if !arg.starts_with('-') {
                sub = arg;
                break;
            }
        }
        LOG.with(|log| log.borrow_mut().push(format!("{tool} {sub}")));
    }

    /// The commands run on this thread since the last call, as `tool subcommand`
    /// (e.g. `git ls-remote`), oldest first.
    pub(crate) fn take() -> Vec<String> {
        LOG.with(|log| std::mem::take(&mut *log.borrow_mut()))
    }
}
