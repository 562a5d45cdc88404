//! Backups and restores asked for through the API: operations of the app, run under its
//! lock — so self-heal waits for them instead of starting the writers a backup stopped —
//! and recorded in its history with one action per volume. A restore that would be
//! refused (a volume holding data, without `force`) is refused before any container is
//! stopped and before any operation starts.

use super::{AppHandle, ControlError, Controller, TriggerKind};
use mooring_backup::BackupMeta;
use mooring_core::{Consistency, ConsistentBackup};
use mooring_docker::volumes::{Hold, WriterChange};
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
    /// Backs up the app's volumes (or only `only`), each verified, as one operation. On
    /// a Swarm host, a stack's volumes on each of its `nodes` (`VOLUME@NODE`, or
    /// `only` as `VOLUME` on every node or `VOLUME@NODE` on one), their tasks paused; a
    /// node that cannot be reached is a failed action of the operation, and the others
    /// are still backed up.
    pub async fn back_up(
        &self,
        name: &str,
        only: Option<&str>,
        by: Option<&str>,
    ) -> Result<DataRun, ControlError> {
        let (app, provider) = self.app_on_host(name)?;
        let targets = self.volumes_to_back_up(name, provider, only).await?;
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
        let mut failures = Vec::new();
        for (seq, target) in targets.into_iter().enumerate() {
            let started = Instant::now();
            let result = match target.engine {
                Err(e) => Err(e),
                Ok((engine, hold)) => {
                    let meta = BackupMeta {
                        app: name.to_string(),
                        volume: target.shown.clone(),
                        revision: deployed.as_ref().map(|r| r.id.clone()),
                        reason: "manual".into(),
                        created_at: now_ms(),
                        dump: None,
                    };
                    let report = |c: WriterChange<'_>| log_writer(name, c);
                    match consistent_for(app, &target.volume).filter(|_| target.node.is_none()) {
                        Some(how) if !has_service(app, &how.service) => Err(ProviderError::Failed(format!(
                            "data.consistent names service {} for volume {}, and the app has no such service",
                            how.service, target.volume
                        ))),
                        Some(how) => engine
                            .back_up_consistently(
                                &target.volume,
                                &app.config.project,
                                how,
                                &dir,
                                meta,
                                &report,
                            )
                            .await
                            .map(|(record, taken)| (record, taken.to_string())),
                        None => engine
                            .back_up_volume(&target.volume, &dir, meta, hold, &report)
                            .await
                            .map(|(record, access)| (record, format!("read {access}"))),
                    }
                    .map_err(|e| e.to_string())
                }
            };
            let (reason, error) = match &result {
                Ok((record, taken)) => {
                    let m = &record.manifest;
                    run.backups.push(record.id.clone());
                    let content = match &m.meta.dump {
                        Some(_) => format!("a dump of {} bytes", m.bytes),
                        None => format!("{} files, {} bytes", m.files, m.bytes),
                    };
                    (
                        format!(
                            "backup {} asked for: {content}, {taken}, verified",
                            record.id
                        ),
                        None,
                    )
                }
                Err(e) => ("backup asked for".to_string(), Some(e.clone())),
            };
            if error.is_none() {
                self.data_duration(name, "backup", started.elapsed());
            }
            let action = data_action(
                seq,
                "back up",
                &target.shown,
                reason,
                started,
                error.clone(),
            );
            self.record_data_action(op, action);
            if let Some(e) = error {
                failures.push(format!("backing up volume {}: {e}", target.shown));
                // On one Engine, the first failure ends it; a Swarm's other nodes are
                // still backed up.
                if target.node.is_none() {
                    break;
                }
            }
        }
        if !failures.is_empty() {
            run.error = Some(failures.join("; "));
        }
        self.end_data_run(op, &run);
        Ok(run)
    }

    /// The volumes a backup of app `name` takes, and through which Engine: the app's
    /// host, or on a Swarm host each of its nodes.
    async fn volumes_to_back_up<'a>(
        &'a self,
        name: &str,
        provider: &'a mooring_docker::Provider,
        only: Option<&str>,
    ) -> Result<Vec<BackupTarget<'a>>, ControlError> {
        let config = &self.apps[name].config;
        let host = &self.config.hosts[&config.host];
        let mut out = Vec::new();
        if !host.swarm {
            let volumes = match only {
                Some(v) => vec![v.to_string()],
                None => provider.app_volumes(&config.project).await?,
            };
            for volume in volumes {
                out.push(BackupTarget {
                    engine: Ok((provider, Hold::Stop)),
                    shown: volume.clone(),
                    volume,
                    node: None,
                });
            }
        } else {
            let (only_volume, only_node) = match only.map(|o| o.split_once('@')) {
                Some(Some((v, n))) => (Some(v), Some(n)),
                Some(None) => (only, None),
                None => (None, None),
            };
            // The manager is a node too (it runs tasks unless drained).
            for node in std::iter::once(&config.host).chain(&host.nodes) {
                if only_node.is_some_and(|n| n != node) {
                    continue;
                }
                let volumes = match self.providers.get(node) {
                    None => Err(format!("node {node} is not connected")),
                    Some(engine) => engine
                        .app_volumes(&config.project)
                        .await
                        .map(|v| (engine, v))
                        .map_err(|e| format!("node {node} cannot be reached: {e}")),
                };
                match volumes {
                    Err(e) => out.push(BackupTarget {
                        engine: Err(e),
                        shown: format!("{}@{node}", only_volume.unwrap_or("*")),
                        volume: String::new(),
                        node: Some(node.clone()),
                    }),
                    Ok((engine, volumes)) => {
                        for volume in volumes {
                            if only_volume.is_some_and(|v| v != volume) {
                                continue;
                            }
                            out.push(BackupTarget {
                                engine: Ok((engine, Hold::Pause)),
                                shown: format!("{volume}@{node}"),
                                volume,
                                node: Some(node.clone()),
                            });
                        }
                    }
                }
            }
        }
        if out.is_empty() {
            return Err(ProviderError::Failed(match only {
                Some(v) => format!("app {name} has no volume {v} on host {}", config.host),
                None => format!("app {name} has no volumes on host {}", config.host),
            })
            .into());
        }
        Ok(out)
    }

    /// Backup `id` of app `name` (another app's is not found).
    async fn own_backup(
        &self,
        name: &str,
        id: &str,
    ) -> Result<mooring_backup::BackupRecord, ControlError> {
        let dir = self.config.server.data_dir.join("backups");
        let loaded = {
            let (dir, id) = (dir.clone(), id.to_string());
            tokio::task::spawn_blocking(move || mooring_backup::load(&dir, &id)).await?
        };
        // The local copy gone: brought back from a backup target that has it.
        let record = match loaded {
            Err(mooring_backup::BackupError::NotFound { .. }) => {
                match self.fetch_copy(name, id).await {
                    Some(Ok(record)) => record,
                    Some(Err(e)) => return Err(ProviderError::Failed(e).into()),
                    None => loaded?,
                }
            }
            other => other?,
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
        // Under the app's lock from here: no deploy schedules a task meanwhile.
        let _lock = app.runtime.lock().await;
        // A backup of a Swarm's volume names its node (`VOLUME@NODE`): restored there.
        let (volume, provider) = match record.manifest.meta.volume.split_once('@') {
            None => (
                to.unwrap_or(&record.manifest.meta.volume).to_string(),
                provider,
            ),
            Some((volume, node)) => {
                let host = &app.config.host;
                if node != host && !self.config.hosts[host].nodes.iter().any(|n| n == node) {
                    return Err(ProviderError::Refused(format!(
                        "backup {id} was taken on node {node}, which is not one of host {host}'s nodes"
                    ))
                    .into());
                }
                let engine = self
                    .providers
                    .get(node)
                    .ok_or_else(|| ControlError::NotConnected(node.to_string()))?;
                let volume = to.unwrap_or(volume).to_string();
                // A task stopped would be replaced by Swarm, and one paused would see
                // its files change under it: refused while one runs with the volume.
                let running: Vec<String> = engine
                    .volume_users(&volume)
                    .await?
                    .into_iter()
                    .filter(|(_, running, _)| *running)
                    .map(|(c, _, _)| c)
                    .collect();
                if !running.is_empty() {
                    return Err(ProviderError::Refused(format!(
                        "volume {volume} on node {node} is in use by {}: scale the service down first (docker service scale SERVICE=0), or restore into another volume with `to`",
                        running.join(", ")
                    ))
                    .into());
                }
                (volume, engine)
            }
        };
        // A dump goes back into its service's database, as its `load` command reads it.
        let dump = match &record.manifest.meta.dump {
            None => None,
            Some(service) => {
                let how = dump_restore(app, id, service, (&volume, to), force)?;
                // Refused before any operation starts: nothing to load into.
                if provider
                    .running_container_of(&app.config.project, &how.service)
                    .await?
                    .is_none()
                {
                    return Err(ProviderError::Refused(format!(
                        "backup {id} is a dump: it is loaded into a running container of service {}, which has none; start it (sync the app) and restore again",
                        how.service
                    ))
                    .into());
                }
                Some(how)
            }
        };
        // Refused before any container is stopped and before any operation starts.
        if dump.is_none() {
            provider.check_restore(&volume, &record, force).await?;
        }
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
        if let Some(how) = dump {
            let loaded = provider
                .load_dump(&app.config.project, &how, record)
                .await
                .map_err(|e| e.to_string());
            let (reason, error) = match &loaded {
                Ok((report, container)) => {
                    run.restored = Some((volume.clone(), report.files, report.bytes, false));
                    (
                        format!(
                            "restore of backup {id} asked for: a dump of {} bytes loaded in {container}, checksums verified",
                            report.bytes
                        ),
                        None,
                    )
                }
                Err(e) => (format!("restore of backup {id} asked for"), Some(e.clone())),
            };
            return Ok(self.end_restore(&name, op, run, started, (id, &volume), (reason, error)));
        }
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
        Ok(self.end_restore(&name, op, run, started, (id, &volume), (reason, error)))
    }

    /// Records a restore's action and ends its operation as it went.
    fn end_restore(
        &self,
        name: &str,
        op: Option<i64>,
        mut run: DataRun,
        started: Instant,
        (id, volume): (&str, &str),
        (reason, error): (String, Option<String>),
    ) -> DataRun {
        if error.is_none() {
            self.data_duration(name, "restore", started.elapsed());
        }
        let action = data_action(0, "restore", volume, reason, started, error.clone());
        self.record_data_action(op, action);
        run.error = error.map(|e| format!("restoring backup {id} into volume {volume}: {e}"));
        self.end_data_run(op, &run);
        run
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

/// A volume a backup takes: the Engine it is on and how its writers are held (or why
/// that Engine cannot be reached), its name there, its name in the backup
/// (`VOLUME@NODE` on a Swarm), and the node.
struct BackupTarget<'a> {
    engine: Result<(&'a mooring_docker::Provider, Hold), String>,
    volume: String,
    shown: String,
    node: Option<String>,
}

/// Whether the app's last render has `service` (`true` before any render: the backup
/// then says what it finds).
fn has_service(app: &AppHandle, service: &str) -> bool {
    app.last_render()
        .rendered
        .is_none_or(|r| r.project.services.contains_key(service))
}

/// `data.consistent`'s entry for Docker volume `volume`, named there by its Compose key
/// (as the last render names it, else `<project>_<key>`) or its Docker name.
fn consistent_for<'a>(app: &'a AppHandle, volume: &str) -> Option<&'a ConsistentBackup> {
    let rendered = app.last_render().rendered;
    app.config
        .consistent
        .iter()
        .find(|(key, _)| {
            key.as_str() == volume
                || match rendered.as_ref().and_then(|r| r.project.volumes.get(*key)) {
                    Some(v) => v.name == volume,
                    None => format!("{}_{key}", app.config.project) == volume,
                }
        })
        .map(|(_, how)| how)
}

/// How dump `id` of `service` is restored into `volume`: by the `load` command of the
/// volume's `data.consistent` entry. Refused — before anything changes — into another
/// volume, without `force` (a load changes a live database), or without that entry.
fn dump_restore(
    app: &AppHandle,
    id: &str,
    service: &str,
    (volume, to): (&str, Option<&str>),
    force: bool,
) -> Result<ConsistentBackup, ControlError> {
    let refused = |why: String| -> ControlError { ProviderError::Refused(why).into() };
    if to.is_some() {
        return Err(refused(format!("backup {id} is a dump of service {service}: it is loaded into that service's database, not into another volume (`to`)")));
    }
    let how = consistent_for(app, volume).ok_or_else(|| {
        refused(format!("backup {id} is a dump of service {service}; restoring it needs the volume's `load` command in data.consistent"))
    })?;
    if how.service != service {
        return Err(refused(format!("backup {id} is a dump of service {service}, but data.consistent now gives volume {volume} to service {}; restore it by hand, or name {service} again", how.service)));
    }
    if !matches!(how.way, Consistency::Dump { .. }) {
        return Err(refused(format!("backup {id} is a dump of service {service}, but data.consistent gives volume {volume} `before`/`after` commands, not a `load` command")));
    }
    if !force {
        return Err(refused(format!("backup {id} is a dump: loading it changes what service {service}'s database holds now; ask again with force")));
    }
    Ok(how.clone())
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
        WriterChange::Pausing(c) => {
            tracing::info!(app, container = c, "pausing a writer for a consistent copy")
        }
        WriterChange::Started(c) => tracing::info!(app, container = c, "writer started again"),
        WriterChange::NotStarted(c, e) => {
            tracing::warn!(app, container = c, error = %e, "writer did not start again")
        }
    }
}
