//! Backups and restores asked for through the API: operations of the app, run under its
//! lock — so self-heal waits for them instead of starting the writers a backup stopped —
//! and recorded in its history with one action per volume. A restore that would be
//! refused (a volume holding data, without `force`) is refused before any container is
//! stopped and before any operation starts.

use super::{ControlError, Controller, TriggerKind};
use mooring_backup::BackupMeta;
use mooring_docker::volumes::WriterChange;
use mooring_docker::ProviderError;
use mooring_store::{now_ms, ActionRecord, OpResult};
use mooring_vcs::Revision;
use std::time::Instant;

/// What a requested backup or restore did.
#[derive(Debug, Default)]
pub struct DataRun {
    /// The operation recorded for it.
    pub operation: Option<i64>,
    /// The backups taken, by id.
    pub backups: Vec<String>,
    /// Restored: the volume, files and bytes, whether the volume was created for it.
    pub restored: Option<(String, u64, u64, bool)>,
    /// Why it failed (the operation says which volume).
    pub error: Option<String>,
}

impl Controller {
    /// Backs up the app's volumes (or only `only`), each verified, as one operation.
    pub async fn back_up(
        &self,
        name: &str,
        only: Option<&str>,
        by: Option<&str>,
    ) -> Result<DataRun, ControlError> {
        let (app, provider) = self.app_on_host(name)?;
        let volumes = match only {
            Some(v) => vec![v.to_string()],
            None => provider.app_volumes(&app.config.project).await?,
        };
        if volumes.is_empty() {
            return Err(ProviderError::Failed(format!(
                "app {name} has no volumes on host {}",
                app.config.host
            ))
            .into());
        }
        let _lock = app.runtime.lock().await;
        let _busy = self
            .activity
            .begin(format!("app {name}: backup"), Instant::now());
        let deployed = self.deployed(name);
        let op = self.begin(name, (TriggerKind::Backup, by), deployed.as_ref(), false);
        let dir = self.config.server.data_dir.join("backups");
        let mut run = DataRun {
            operation: op,
            ..Default::default()
        };
        for (seq, volume) in volumes.iter().enumerate() {
            let meta = BackupMeta {
                app: name.to_string(),
                volume: volume.clone(),
                revision: deployed.as_ref().map(|r| r.id.clone()),
                reason: "manual".into(),
                created_at: now_ms(),
            };
            let started = Instant::now();
            let result = provider
                .back_up_volume(volume, &dir, meta, &|c| log_writer(name, c))
                .await;
            let (reason, error) = match &result {
                Ok((record, access)) => {
                    let m = &record.manifest;
                    run.backups.push(record.id.clone());
                    (
                        format!(
                            "backup {} asked for: {} files, {} bytes, read {access}, verified",
                            record.id, m.files, m.bytes
                        ),
                        None,
                    )
                }
                Err(e) => ("backup asked for".to_string(), Some(e.to_string())),
            };
            let action = data_action(seq, "back up", volume, reason, started, error.clone());
            self.record_data_action(op, action);
            if let Some(e) = error {
                run.error = Some(format!("backing up volume {volume}: {e}"));
                break;
            }
        }
        self.end_data_run(op, &run);
        Ok(run)
    }

    /// Backup `id` of app `name` (another app's is not found).
    async fn own_backup(
        &self,
        name: &str,
        id: &str,
    ) -> Result<mooring_backup::BackupRecord, ControlError> {
        let dir = self.config.server.data_dir.join("backups");
        let record = {
            let (dir, id) = (dir.clone(), id.to_string());
            tokio::task::spawn_blocking(move || mooring_backup::load(&dir, &id)).await??
        };
        if record.manifest.meta.app != name {
            return Err(mooring_backup::BackupError::NotFound {
                dir,
                id: id.to_string(),
            }
            .into());
        }
        Ok(record)
    }

    /// Re-reads backup `id` of app `name` and checks it against its manifest (archive
    /// size and sha256, every entry): `Ok(Err(why))` when it does not verify, `Err` when
    /// it is not this app's or cannot be read at all.
    pub async fn verify_backup(
        &self,
        name: &str,
        id: &str,
    ) -> Result<Result<mooring_backup::VerifyReport, String>, ControlError> {
        let record = self.own_backup(name, id).await?;
        let report = tokio::task::spawn_blocking(move || mooring_backup::verify(&record)).await?;
        Ok(report.map_err(|e| e.to_string()))
    }

    /// Restores backup `id` of app `name` into its volume (or `to`), as an operation of
    /// the app. `Err` when refused before anything changed.
    pub async fn restore(
        &self,
        name: &str,
        (id, to): (&str, Option<&str>),
        force: bool,
        by: Option<&str>,
    ) -> Result<DataRun, ControlError> {
        let record = self.own_backup(name, id).await?;
        let (app, provider) = self.app_on_host(name)?;
        let name = name.to_string();
        let volume = to.unwrap_or(&record.manifest.meta.volume).to_string();
        let _lock = app.runtime.lock().await;
        // Refused before any container is stopped and before any operation starts.
        provider.check_restore(&volume, &record, force).await?;
        let _busy = self
            .activity
            .begin(format!("app {name}: restore"), Instant::now());
        let op = self.begin(
            &name,
            (TriggerKind::Restore, by),
            self.deployed(&name).as_ref(),
            false,
        );
        let started = Instant::now();
        let mut run = DataRun {
            operation: op,
            ..Default::default()
        };
        let result = provider
            .restore_volume(&volume, record, force, &|c| log_writer(&name, c))
            .await;
        let (reason, error) = match &result {
            Ok(done) => {
                let r = &done.restored;
                run.restored = Some((volume.clone(), r.report.files, r.report.bytes, done.created));
                (
                    format!(
                        "restore of backup {id} asked for: {} files, {} bytes, written {}, checksums verified{}",
                        r.report.files,
                        r.report.bytes,
                        r.access,
                        if done.created { "; volume created" } else { "" }
                    ),
                    None,
                )
            }
            Err(e) => (
                format!("restore of backup {id} asked for"),
                Some(e.to_string()),
            ),
        };
        let action = data_action(0, "restore", &volume, reason, started, error.clone());
        self.record_data_action(op, action);
        run.error = error.map(|e| format!("restoring backup {id} into volume {volume}: {e}"));
        self.end_data_run(op, &run);
        Ok(run)
    }

    /// The app's deployed revision, as its status names it.
    fn deployed(&self, name: &str) -> Option<Revision> {
        let status = self.store.app(name).ok().flatten()?;
        Some(Revision {
            id: status.revision?,
            describe: status.revision_describe.unwrap_or_default(),
            tree: None,
        })
    }

    /// Records one volume's action of a backup or restore operation.
    fn record_data_action(&self, op: Option<i64>, action: ActionRecord) {
        let Some(op) = op else { return };
        if let Err(e) = self.store.record_action(op, &action) {
            tracing::error!(error = %e, "cannot record action");
        }
    }

    /// Ends a backup or restore operation as it went.
    fn end_data_run(&self, op: Option<i64>, run: &DataRun) {
        match &run.error {
            Some(e) => self.finish(op, OpResult::Failed, Some(e)),
            None => self.finish(op, OpResult::Succeeded, None),
        }
    }
}

/// One volume's action of a backup or restore operation, started at `started`.
fn data_action(
    seq: usize,
    verb: &str,
    volume: &str,
    reason: String,
    started: Instant,
    error: Option<String>,
) -> ActionRecord {
    let took = started.elapsed().as_millis() as i64;
    ActionRecord {
        seq: seq as u32,
        kind: format!("{verb} volume"),
        resource: format!("{verb} volume {volume}"),
        reason,
        started_at: now_ms() - took,
        duration_ms: took,
        error,
        output: None,
    }
}

/// The daemon's log line for a writer stopped or started around a backup or restore.
fn log_writer(app: &str, change: WriterChange<'_>) {
    match change {
        WriterChange::Stopping(c) => tracing::info!(
            app,
            container = c,
            "stopping a writer for a consistent copy"
        ),
        WriterChange::Started(c) => tracing::info!(app, container = c, "writer started again"),
        WriterChange::NotStarted(c, e) => {
            tracing::warn!(app, container = c, error = %e, "writer did not start again")
        }
    }
}
