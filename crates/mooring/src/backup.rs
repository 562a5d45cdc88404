//! `mooring backup …`: verified volume backups (through `mooring-backup`), read and
//! restored at the volume's mount point when Docker runs on this machine, else through
//! the Docker archive API (`mooring_docker::volumes` decides and the output says which).
//! Containers writing to a volume are stopped for a consistent copy and started again
//! afterwards.

use anyhow::{bail, Context, Result};
use mooring_backup::{list, load, prune, verify, BackupMeta};
use mooring_docker::volumes::{Hold, WriterChange};
use mooring_docker::Provider;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where backups live: `<data dir>/backups`.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("backups")
}

/// The revision the daemon last deployed for `app`, when its store is in `data_dir`
/// (a backup taken from the command line records it as the daemon's own backups do).
fn deployed_revision(data_dir: &Path, app: &str) -> Option<String> {
    let path = data_dir.join(mooring_store::FILE_NAME);
    if !path.exists() {
        return None;
    }
    let status = match mooring_store::Store::open_read_only(&path) {
        Ok(store) => store.app(app),
        Err(e) => Err(e),
    };
    match status {
        Ok(status) => status.and_then(|s| s.revision),
        Err(e) => {
            eprintln!(
                "warning: the backup records no revision: reading {}: {e}",
                path.display()
            );
            None
        }
    }
}

/// Says on stderr what the backup or restore does to the containers writing to the volume.
fn say(change: WriterChange<'_>) {
    match change {
        WriterChange::Stopping(name) => {
            eprintln!("  stopping {name} (it writes to the volume) for a consistent copy")
        }
        WriterChange::Pausing(name) => {
            eprintln!("  pausing {name} (it writes to the volume) for a consistent copy")
        }
        WriterChange::Started(name) => eprintln!("  started {name} again"),
        WriterChange::NotStarted(name, e) => {
            eprintln!("error: could not start {name} again: {e}")
        }
    }
}

/// `backup create APP [--volume NAME]`.
pub async fn create(
    host: Option<&str>,
    data_dir: &Path,
    app: &str,
    only: Option<&str>,
    json_out: bool,
) -> Result<ExitCode> {
    let provider = Provider::connect(host).await?;
    let volumes = match only {
        Some(v) => vec![v.to_string()],
        None => provider.app_volumes(app).await?,
    };
    if volumes.is_empty() {
        bail!("app {app} has no volumes on this host (volumes are found by the io.mooring.app or com.docker.compose.project label; name one with --volume)");
    }
    let dir = dir(data_dir);
    let revision = deployed_revision(data_dir, app);
    let mut made = Vec::new();
    for volume in volumes {
        let meta = BackupMeta {
            app: app.to_string(),
            volume: volume.clone(),
            revision: revision.clone(),
            reason: "manual".into(),
            created_at: mooring_store::now_ms(),
            dump: None,
        };
        let (record, access) = provider
            .back_up_volume(&volume, &dir, meta, Hold::Stop, &say)
            .await
            .with_context(|| format!("backing up volume {volume}"))?;
        let m = &record.manifest;
        eprintln!("  read volume {volume} {access}");
        if !json_out {
            println!(
                "{}  {volume}: {} files, {} bytes → {} bytes, sha256 {} (verified){}",
                record.id,
                m.files,
                m.bytes,
                m.archive_size,
                &m.archive_sha256[..16],
                match &revision {
                    Some(r) => format!(", revision {}", mooring_core::short_revision(r)),
                    None => String::new(),
                }
            );
        }
        made.push(json!({"id": record.id, "volume": volume, "revision": revision, "access": access_word(&access), "files": m.files, "bytes": m.bytes, "archive_size": m.archive_size, "archive_sha256": m.archive_sha256}));
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(&made)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// `backup list [APP]`.
pub fn list_cmd(data_dir: &Path, app: Option<&str>, json_out: bool) -> Result<ExitCode> {
    let records = list(&dir(data_dir))?;
    let records: Vec<_> = records
        .into_iter()
        .filter(|r| app.is_none_or(|a| r.manifest.meta.app == a))
        .collect();
    if json_out {
        let v: Vec<_> = records
            .iter()
            .map(|r| {
                let m = &r.manifest;
                json!({"id": r.id, "app": m.meta.app, "volume": m.meta.volume, "created_at": m.meta.created_at, "files": m.files, "bytes": m.bytes, "archive_size": m.archive_size, "archive_sha256": m.archive_sha256, "revision": m.meta.revision, "reason": m.meta.reason})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<52} {:<16} {:<24} {:>10} {:>8} {:<17} {:<12} REASON",
        "ID", "APP", "VOLUME", "SIZE", "FILES", "SHA256", "REVISION"
    );
    for r in &records {
        let m = &r.manifest;
        println!(
            "{:<52} {:<16} {:<24} {:>10} {:>8} {:<17} {:<12} {}",
            r.id,
            m.meta.app,
            m.meta.volume,
            m.archive_size,
            m.files,
            &m.archive_sha256[..16],
            m.meta
                .revision
                .as_deref()
                .map(mooring_core::short_revision)
                .unwrap_or("-"),
            m.meta.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `backup verify ID`: exit 0 when the archive matches its manifest, 1 otherwise.
pub fn verify_cmd(data_dir: &Path, id: &str) -> Result<ExitCode> {
    let record = load(&dir(data_dir), id)?;
    let report = verify(&record).with_context(|| format!("backup {id} does not verify"))?;
    println!(
        "{id}: ok — {} entries, {} files, {} bytes; archive {} bytes, sha256 matches",
        report.entries, report.files, report.bytes, report.archive_size
    );
    Ok(ExitCode::SUCCESS)
}

fn access_word(access: &mooring_docker::volumes::VolumeAccess) -> &'static str {
    match access {
        mooring_docker::volumes::VolumeAccess::MountPoint(_) => "mount-point",
        mooring_docker::volumes::VolumeAccess::ArchiveApi(_) => "archive-api",
    }
}

/// `backup restore ID [--to-volume NAME] [--force]`.
pub async fn restore(
    host: Option<&str>,
    data_dir: &Path,
    id: &str,
    to: Option<&str>,
    force: bool,
) -> Result<ExitCode> {
    let record = load(&dir(data_dir), id)?;
    let volume = to.unwrap_or(&record.manifest.meta.volume).to_string();
    let provider = Provider::connect(host).await?;
    let done = provider
        .restore_volume(&volume, record, force, &say)
        .await?;
    if done.created {
        eprintln!("  created volume {volume}");
    }
    let restored = done.restored;
    if restored.cleaned > 0 {
        eprintln!(
            "  removed the staging folder of {} interrupted restore(s) (nothing of it had been moved into the volume)",
            restored.cleaned
        );
    }
    if restored.rewrote_interrupted {
        eprintln!(
            "  an interrupted restore of this backup had written part of it into {volume}; all of it was written again"
        );
    }
    eprintln!("  wrote volume {volume} {}", restored.access);
    for line in &restored.xattrs_not_set {
        eprintln!("warning: extended attribute not set (the data is restored): {line}");
    }
    if restored.resumed {
        println!(
            "{id} restored into {volume}: an interrupted restore had verified every checksum; its remaining files were moved into place"
        );
    } else {
        println!(
            "{id} restored into {volume}: {} files, {} bytes (checksums verified)",
            restored.report.files, restored.report.bytes
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `backup prune [--keep N] [--older-than DURATION]`.
pub fn prune_cmd(
    data_dir: &Path,
    keep: Option<usize>,
    older_than: Option<std::time::Duration>,
) -> Result<ExitCode> {
    if keep.is_none() && older_than.is_none() {
        bail!("say what to prune: --keep N (per app and volume) and/or --older-than DURATION (e.g. 30d, 12h)");
    }
    let removed = prune(
        &dir(data_dir),
        keep,
        older_than.map(|d| d.as_millis() as i64),
        mooring_store::now_ms(),
    )?;
    for id in &removed {
        println!("removed {id}");
    }
    println!("{} backup(s) removed", removed.len());
    Ok(ExitCode::SUCCESS)
}

/// `30d`, `12h`, `90m`, `45s`.
pub fn parse_age(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: use e.g. 30d, 12h, 90m"))?;
    let secs = match unit {
        "d" => n * 86_400,
        "h" => n * 3_600,
        "m" => n * 60,
        "s" => n,
        _ => return Err(format!("{s:?}: use e.g. 30d, 12h, 90m")),
    };
    Ok(std::time::Duration::from_secs(secs))
}
