//! Container logs, as the Engine keeps them: the last `tail` lines of stdout and stderr
//! with the Engine's timestamps, and — with `follow` — each line written after, until
//! the reader stops. Nothing is buffered here beyond the chunk being handed over: a
//! reader that stops reading stops the stream.

use crate::provider::{Provider, ProviderError};
use bollard::container::{LogOutput, LogsOptions};
use futures_util::{Stream, StreamExt};

/// The most lines a reader may ask for at once.
pub const MAX_TAIL: usize = 10_000;

/// A chunk of a container's log (one or more whole lines as the Engine sends them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    /// `stdout` or `stderr`.
    pub stream: &'static str,
    pub text: String,
}

impl Provider {
    /// The log of `container`: its last `tail` lines (at most [`MAX_TAIL`]), then, with
    /// `follow`, what it writes next.
    pub fn logs(
        &self,
        container: &str,
        tail: usize,
        follow: bool,
    ) -> impl Stream<Item = Result<LogChunk, ProviderError>> + Send + 'static {
        let options = LogsOptions::<String> {
            follow,
            stdout: true,
            stderr: true,
            timestamps: true,
            tail: tail.min(MAX_TAIL).to_string(),
            ..Default::default()
        };
        let name = container.to_string();
        let docker = self.client().clone();
        futures_util::stream::once(async move { docker }).flat_map(move |docker| {
            let name = name.clone();
            docker.logs(&name, Some(options.clone())).map(move |item| {
                item.map(|out| match out {
                    LogOutput::StdErr { message } => LogChunk {
                        stream: "stderr",
                        text: String::from_utf8_lossy(&message).into_owned(),
                    },
                    LogOutput::StdOut { message }
                    | LogOutput::Console { message }
                    | LogOutput::StdIn { message } => LogChunk {
                        stream: "stdout",
                        text: String::from_utf8_lossy(&message).into_owned(),
                    },
                })
                .map_err(|e| ProviderError::Failed(format!("reading the log of {name}: {e}")))
            })
        })
    }
}
