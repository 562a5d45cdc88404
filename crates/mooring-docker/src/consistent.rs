//! App-consistent backups (`data.consistent` in Mooring's configuration): a volume backed
//! up while its service keeps running — the output of the service's dump command stored
//! as the backup ([`mooring_backup::write_dump`]), or its files copied between the
//! service's `before` and `after` commands — and a dump given back to the service's load
//! command on its input. Commands run in a running container of the service through
//! the Engine's exec API, as `docker exec` runs them; their output and input are
//! streamed, never held whole. When the service has no running container, there is no
//! database to ask: the files are copied with the writers stopped, which is consistent
//! too, and the backup says so.

use crate::provider::{Provider, ProviderError};
use crate::volumes::{ChannelWriter, VolumeAccess, WriterChange};
use bollard::container::{ListContainersOptions, LogOutput};
use bollard::exec::{CreateExecOptions, StartExecResults};
use bytes::Bytes;
use futures_util::StreamExt;
use mooring_backup::{BackupMeta, BackupRecord, VerifyReport};
use mooring_core::{Consistency, ConsistentBackup, Hook};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use tokio::io::AsyncWriteExt;

/// How a backup of a volume with a [`ConsistentBackup`] was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// The dump command's output, in this container.
    Dumped { container: String },
    /// The files, read as `access` says, between the commands run in this container.
    BetweenHooks {
        container: String,
        access: VolumeAccess,
    },
    /// The files with the writers stopped: the service had no running container.
    Stopped {
        service: String,
        access: VolumeAccess,
    },
}

impl std::fmt::Display for Taken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Taken::Dumped { container } => write!(f, "dumped in {container}, which kept running"),
            Taken::BetweenHooks { container, access } => write!(
                f,
                "read {access} between `before` and `after` run in {container}, which kept running"
            ),
            Taken::Stopped { service, access } => write!(
                f,
                "read {access} with its writers stopped (service {service} has no running container to dump in)"
            ),
        }
    }
}

/// What a running command prints, frame by frame.
type ExecOutput = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
>;

/// A running command's standard input.
type ExecInput = std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>;

/// A command as errors name it: its program only — its arguments may hold a password
/// (`mysqldump -pSECRET`, a `postgres://user:password@…` URL).
fn shown(command: &[String], container: &str) -> String {
    let program = command.first().map_or("", String::as_str);
    if command.len() > 1 {
        format!("`{program} …` in {container}")
    } else {
        format!("`{program}` in {container}")
    }
}

/// A chunk of a command's output for a blocking reader: the end is said, so a stream
/// that stops without it — the operation cancelled, the daemon stopping — is an error,
/// never a shorter dump.
enum Chunk {
    Data(Bytes),
    End,
    Failed(String),
}

/// A `Read` over [`Chunk`]s.
struct Ended {
    rx: tokio::sync::mpsc::Receiver<Chunk>,
    buf: Bytes,
    ended: bool,
}

impl Read for Ended {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() && !self.ended {
            match self.rx.blocking_recv() {
                Some(Chunk::Data(b)) => self.buf = b,
                Some(Chunk::End) => self.ended = true,
                Some(Chunk::Failed(e)) => return Err(std::io::Error::other(e)),
                None => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the command's output was cut short (the operation stopped)",
                    ))
                }
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}

/// The last bytes a command printed on its error output, for its error.
const TAIL: usize = 2048;

fn keep_tail(tail: &mut Vec<u8>, more: &[u8]) {
    tail.extend_from_slice(more);
    if tail.len() > TAIL {
        tail.drain(..tail.len() - TAIL);
    }
}

impl Provider {
    /// A running container of `service` in Compose project `project`, if any.
    pub async fn running_container_of(
        &self,
        project: &str,
        service: &str,
    ) -> Result<Option<String>, ProviderError> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![
                format!("com.docker.compose.project={project}"),
                format!("com.docker.compose.service={service}"),
            ],
        )]);
        let list = self
            .client()
            .list_containers(Some(ListContainersOptions {
                filters,
                ..Default::default()
            }))
            .await
            .map_err(|e| {
                ProviderError::Failed(format!("listing the containers of service {service}: {e}"))
            })?;
        Ok(list
            .into_iter()
            .filter_map(|c| {
                c.names?
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
            })
            .min())
    }

    /// Backs up `volume` of `project` as `how` says, while its service runs; with no
    /// running container of the service, its files with the writers stopped.
    pub async fn back_up_consistently(
        &self,
        volume: &str,
        project: &str,
        how: &ConsistentBackup,
        dir: &Path,
        mut meta: BackupMeta,
        report: &(dyn Fn(WriterChange<'_>) + Sync),
    ) -> Result<(BackupRecord, Taken), ProviderError> {
        if !self.volume_exists(volume).await? {
            return Err(ProviderError::Failed(format!(
                "volume {volume} does not exist"
            )));
        }
        let Some(container) = self.running_container_of(project, &how.service).await? else {
            let (record, access) = self
                .back_up_volume(volume, dir, meta, crate::volumes::Hold::Stop, report)
                .await?;
            let service = how.service.clone();
            return Ok((record, Taken::Stopped { service, access }));
        };
        match &how.way {
            Consistency::Dump { dump, .. } => {
                meta.dump = Some(how.service.clone());
                std::fs::create_dir_all(dir).map_err(|e| {
                    ProviderError::Failed(format!("creating {}: {e}", dir.display()))
                })?;
                let dir = dir.to_path_buf();
                let record = self
                    .exec_output_into(&container, dump, move |out| {
                        mooring_backup::write_dump(out, &dir, meta)
                    })
                    .await?
                    .map_err(|e| {
                        ProviderError::Failed(format!("storing the dump of volume {volume}: {e}"))
                    })?;
                Ok((record, Taken::Dumped { container }))
            }
            Consistency::Hooks { before, after } => {
                let hook = |command: &Vec<String>| Hook {
                    command: command.clone(),
                    ..Default::default()
                };
                // `after` undoes what `before` did, even part of it: it runs whatever
                // `before` and the copy did.
                let copied = match self.run_hook(&container, "before", &hook(before)).await {
                    Err(e) => Err(e),
                    Ok(()) => match self.helper_image(volume, &[]).await {
                        Ok(image) => self.backup_volume_into(volume, &image, dir, meta).await,
                        Err(e) => Err(e),
                    },
                };
                let released = if after.is_empty() {
                    Ok(())
                } else {
                    self.run_hook(&container, "after", &hook(after)).await
                };
                let (record, access) = copied?;
                if let Err(e) = released {
                    let _ = mooring_backup::remove(dir, &record.id);
                    return Err(e);
                }
                Ok((record, Taken::BetweenHooks { container, access }))
            }
        }
    }

    /// Gives the dump `record` holds to the load command of `how` in a running container
    /// of its service; returns what was checked and the container. The service keeps
    /// running: the load is a client of its database, as the dump was.
    pub async fn load_dump(
        &self,
        project: &str,
        how: &ConsistentBackup,
        record: BackupRecord,
    ) -> Result<(VerifyReport, String), ProviderError> {
        let Consistency::Dump { load, .. } = &how.way else {
            return Err(ProviderError::Refused(format!(
                "backup {} is a dump of service {}; restoring it needs its `load` command in data.consistent",
                record.id, how.service
            )));
        };
        let Some(container) = self.running_container_of(project, &how.service).await? else {
            return Err(ProviderError::Refused(format!(
                "backup {} is a dump: it is loaded into a running container of service {}, which has none; start it (sync the app) and restore again",
                record.id, how.service
            )));
        };
        let id = record.id.clone();
        // Every part checked before the first byte: a load never gets half a dump
        // because the archive turned out damaged on the way.
        let checked = record.clone();
        tokio::task::spawn_blocking(move || mooring_backup::verify(&checked))
            .await
            .map_err(|e| ProviderError::Failed(e.to_string()))?
            .map_err(|e| {
                ProviderError::Failed(format!(
                    "backup {id} does not verify; nothing was given to the load command: {e}"
                ))
            })?;
        let report = self
            .exec_input_from(&container, load, move |input| {
                mooring_backup::restore_dump_to(&record, input)
            })
            .await?
            .map_err(|e| ProviderError::Failed(format!("reading backup {id}: {e}")))?;
        Ok((report, container))
    }

    /// Runs `command` in `container` with its standard output given to `consume` (on a
    /// blocking thread) as a reader. A command that exits with another code than 0 is an
    /// error naming it and the end of its error output — and the reader fails at its
    /// end, so `consume` keeps nothing of it.
    async fn exec_output_into<R: Send + 'static>(
        &self,
        container: &str,
        command: &[String],
        consume: impl FnOnce(&mut dyn Read) -> R + Send + 'static,
    ) -> Result<R, ProviderError> {
        let what = shown(command, container);
        let (exec, mut output, _) = self.exec_attached(container, command, false, &what).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let consumer = tokio::task::spawn_blocking(move || {
            let mut r = Ended {
                rx,
                buf: Bytes::new(),
                ended: false,
            };
            let out = consume(&mut r);
            // Drain what the consumer left, so the sender never blocks forever.
            let _ = std::io::copy(&mut r, &mut std::io::sink());
            out
        });
        let mut tail = Vec::new();
        let mut failure = None;
        while let Some(frame) = output.next().await {
            match frame {
                Ok(LogOutput::StdOut { message }) => {
                    if tx.send(Chunk::Data(message)).await.is_err() {
                        break;
                    }
                }
                Ok(other) => keep_tail(&mut tail, &other.into_bytes()),
                Err(e) => {
                    failure = Some(format!("reading the output of {what}: {e}"));
                    break;
                }
            }
        }
        let outcome = match failure {
            Some(f) => Err(ProviderError::Failed(f)),
            None => self.exec_exit(&exec, &what, &tail).await,
        };
        let _ = match &outcome {
            Ok(()) => tx.send(Chunk::End).await,
            Err(e) => tx.send(Chunk::Failed(e.to_string())).await,
        };
        drop(tx);
        let consumed = consumer
            .await
            .map_err(|e| ProviderError::Failed(e.to_string()))?;
        outcome.map(|()| consumed)
    }

    /// Runs `command` in `container` with what `produce` writes (on a blocking thread)
    /// on its standard input, closed when `produce` returns. A command that exits with
    /// another code than 0 is an error naming it and the end of its output.
    async fn exec_input_from<T: Send + 'static, E: Send + 'static>(
        &self,
        container: &str,
        command: &[String],
        produce: impl FnOnce(&mut dyn Write) -> Result<T, E> + Send + 'static,
    ) -> Result<Result<T, E>, ProviderError> {
        let what = shown(command, container);
        let (exec, mut output, input) = self.exec_attached(container, command, true, &what).await?;
        let Some(mut input) = input else {
            return Err(ProviderError::Failed(format!(
                "the Engine gave {what} no input"
            )));
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        let producer = tokio::task::spawn_blocking(move || {
            let mut w = ChannelWriter::new(tx);
            let produced = produce(&mut w);
            if produced.is_ok() {
                let _ = w.flush();
            }
            produced
        });
        let feed = async move {
            let mut fed = Ok(());
            while let Some(chunk) = rx.recv().await {
                if let Err(e) = input.write_all(&chunk).await {
                    // The command stopped reading: its exit code says why.
                    fed = Err(e);
                    break;
                }
            }
            drop(rx);
            let closed = input.shutdown().await;
            fed.and(closed)
        };
        let drain = async move {
            let mut tail = Vec::new();
            while let Some(frame) = output.next().await {
                match frame {
                    Ok(f) => keep_tail(&mut tail, &f.into_bytes()),
                    Err(e) => return Err(e),
                }
            }
            Ok(tail)
        };
        let (fed, drained) = tokio::join!(feed, drain);
        let tail = drained
            .map_err(|e| ProviderError::Failed(format!("reading the output of {what}: {e}")))?;
        let produced = producer
            .await
            .map_err(|e| ProviderError::Failed(e.to_string()))?;
        self.exec_exit(&exec, &what, &tail).await?;
        fed.map_err(|e| ProviderError::Failed(format!("writing to {what}: {e}")))?;
        Ok(produced)
    }

    /// Creates and starts `command` in `container`, attached: its id, its output, and
    /// its input when asked for.
    async fn exec_attached(
        &self,
        container: &str,
        command: &[String],
        with_input: bool,
        what: &str,
    ) -> Result<(String, ExecOutput, Option<ExecInput>), ProviderError> {
        let exec = self
            .client()
            .create_exec(
                container,
                CreateExecOptions {
                    cmd: Some(command.to_vec()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    attach_stdin: Some(with_input),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| ProviderError::Failed(format!("creating {what}: {e}")))?;
        match self
            .client()
            .start_exec(&exec.id, None)
            .await
            .map_err(|e| ProviderError::Failed(format!("starting {what}: {e}")))?
        {
            StartExecResults::Attached { output, input } => {
                Ok((exec.id, output, with_input.then_some(input)))
            }
            StartExecResults::Detached => Err(ProviderError::Failed(format!(
                "the Engine ran {what} detached"
            ))),
        }
    }

    /// Waits for exec `id` to end (its output closes just before) and makes any exit
    /// code but 0 an error with the end of what it printed.
    pub(crate) async fn exec_exit(
        &self,
        id: &str,
        what: &str,
        tail: &[u8],
    ) -> Result<(), ProviderError> {
        for _ in 0..250 {
            let inspected = self
                .client()
                .inspect_exec(id)
                .await
                .map_err(|e| ProviderError::Failed(format!("inspecting {what}: {e}")))?;
            if inspected.running == Some(true) {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
            return match inspected.exit_code {
                Some(0) => Ok(()),
                code => Err(ProviderError::Failed(format!(
                    "{what} exited with {}: {}",
                    code.map_or("no code".to_string(), |c| c.to_string()),
                    String::from_utf8_lossy(tail).trim()
                ))),
            };
        }
        Err(ProviderError::Failed(format!(
            "{what} closed its output but did not end within 5 s"
        )))
    }
}
