//! Volume content in and out, for backups and restores, by one of two paths
//! ([`VolumeAccess`], chosen per volume by [`Provider::volume_access`]):
//!
//! - **the mount point**, when Docker runs on this machine: the volume uses the `local`
//!   driver without options (a volume with driver options is mounted only while a
//!   container uses it), its `Mountpoint` is a folder this process can change, and a
//!   modification time set on it shows through Docker's archive API — proof that the
//!   folder is the volume Docker sees (not a same-named volume of another daemon), with
//!   nothing written into the volume (its times are put back). Then
//!   `mooring-backup` reads and writes the folder itself ([`mooring_backup::backup_dir`],
//!   [`mooring_backup::restore_dir`]): no dockerd in the data path.
//! - **the Docker archive API** otherwise (a remote or virtualised daemon, no root):
//!   a helper container that mounts the volume and is never started — so no image is
//!   pulled (the caller names a local one) — streams a tar of its content (`./…`) out
//!   or in; the caller reads or writes it on a blocking thread.
//!
//! `MOORING_VOLUME_ACCESS=archive-api` forces the archive API, `mount-point` refuses to
//! fall back, `auto` (the default) picks as above.

use crate::provider::{Provider, ProviderError};
use bollard::container::{
    Config, CreateContainerOptions, DownloadFromContainerOptions, RemoveContainerOptions,
    UploadToContainerOptions,
};
use bollard::models::HostConfig;
use bytes::Bytes;
use futures_util::StreamExt;
use mooring_backup::{BackupError, BackupMeta, BackupRecord, PROBE_PREFIX};
use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// The environment variable choosing how volume content is accessed:
/// `auto` (default), `mount-point` or `archive-api`.
pub const ACCESS_ENV: &str = "MOORING_VOLUME_ACCESS";

/// How a volume's content is read or written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeAccess {
    /// Directly in its folder on this machine: no Docker daemon in the data path.
    MountPoint(PathBuf),
    /// Through Docker's archive API on a helper container; why the mount point was not
    /// used.
    ArchiveApi(String),
}

impl std::fmt::Display for VolumeAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VolumeAccess::MountPoint(path) => write!(f, "at its mount point {}", path.display()),
            VolumeAccess::ArchiveApi(why) => write!(f, "through the Docker archive API ({why})"),
        }
    }
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The path used.
    pub access: VolumeAccess,
    /// Files and bytes restored (checked against the manifest).
    pub report: mooring_backup::VerifyReport,
    /// An interrupted restore of this backup had verified everything already; this one
    /// finished moving it into place.
    pub resumed: bool,
    /// Staging folders of interrupted, unverified restores removed first.
    pub cleaned: usize,
    /// Through the archive API: an interrupted restore of this backup into this volume
    /// had written part of it (its marker was in the backups folder); all of it was
    /// written again.
    pub rewrote_interrupted: bool,
    /// Extended attributes the volume's file system or this process could not set, one
    /// line per attribute (through the archive API dockerd decides, and does not say).
    pub xattrs_not_set: Vec<String>,
}

fn random_hex() -> Result<String, ProviderError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)
        .map_err(|e| ProviderError::Failed(format!("drawing random bytes: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Removes the probe files (regular files named `PROBE_PREFIX…`) left in a volume's root
/// folder by a run killed while it checked the mount point.
fn remove_stale_probes(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let probe = e.file_name().to_string_lossy().starts_with(PROBE_PREFIX);
        if probe && e.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// A backup error worded for a volume: damage to the backup says so.
/// A database dump is not files: it goes back through its service's load command
/// (`data.consistent`), never into a volume's folder.
fn refuse_dump(record: &BackupRecord) -> Result<(), ProviderError> {
    match &record.manifest.meta.dump {
        None => Ok(()),
        Some(service) => Err(ProviderError::Refused(format!(
            "backup {} is a database dump of service {service}, not the volume's files: the daemon restores it through the service's `load` command (data.consistent) — start the daemon and restore again — or by hand: zstd -dc {} | tar -xO | docker exec -i CONTAINER LOAD-COMMAND",
            record.id,
            record.archive.display()
        ))),
    }
}

fn backup_failure(id: &str, volume: &str, e: BackupError) -> ProviderError {
    if e.is_damaged_backup() {
        ProviderError::Failed(format!(
            "backup {id} does not verify; refusing to restore it (nothing was moved into volume {volume}): {e}"
        ))
    } else {
        ProviderError::Failed(format!("restoring backup {id} into volume {volume}: {e}"))
    }
}

/// Says that a restore of a backup into a volume through the archive API is under way or
/// was interrupted: the file `<backups>/restoring/<id>.<volume>`.
#[derive(Clone)]
struct InterruptedMarker {
    path: PathBuf,
}

impl InterruptedMarker {
    fn new(record: &BackupRecord, volume: &str) -> Self {
        let dir = record.archive.parent().unwrap_or(Path::new("."));
        // Docker's volume names are [a-zA-Z0-9][a-zA-Z0-9_.-]*; anything else stays a name.
        let volume: String = volume
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        InterruptedMarker {
            path: dir
                .join("restoring")
                .join(format!("{}.{volume}", record.id)),
        }
    }

    fn present(&self) -> bool {
        self.path.exists()
    }

    fn write(&self) -> Result<(), BackupError> {
        let failed = |source| BackupError::Io {
            action: "write",
            path: self.path.clone(),
            source,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(failed)?;
        std::fs::write(&self.path, b"").map_err(failed)?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(failed)
    }

    fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The entries of a tar stream other than the root (`./`) and Mooring's own
/// staging and probe files.
fn volume_entries(r: &mut dyn Read) -> io::Result<Vec<String>> {
    let mut archive = tar::Archive::new(r);
    let mut names = Vec::new();
    for entry in archive.entries()? {
        let entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let name = entry_name(&path);
        if !name.is_empty()
            && name != "."
            && !name.starts_with(mooring_backup::STAGING_PREFIX)
            && !name.starts_with(PROBE_PREFIX)
        {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// A tar entry's path without `./` in front or `/` behind (both paths write either).
fn entry_name(path: &str) -> &str {
    path.trim_start_matches("./").trim_end_matches('/')
}

/// The label marking helper containers (value: the volume).
pub const HELPER_LABEL: &str = "io.mooring.volume-helper";

/// A `Read` over chunks sent from the async side (an error ends it with that error).
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    buf: Bytes,
}

impl ChannelReader {
    fn new(rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>) -> Self {
        ChannelReader {
            rx,
            buf: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.buf = b,
                Some(Err(e)) => return Err(io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}

/// A `Write` sending chunks of [`CHUNK`] bytes to the async side.
pub(crate) struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

const CHUNK: usize = 1 << 20;

impl ChannelWriter {
    pub(crate) fn new(tx: tokio::sync::mpsc::Sender<Bytes>) -> Self {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::take(&mut self.buf));
            self.tx
                .blocking_send(chunk)
                .map_err(|_| io::Error::other("Docker closed the upload"))?;
        }
        Ok(())
    }
}

impl Provider {
    async fn helper(
        &self,
        volume: &str,
        image: &str,
        read_only: bool,
    ) -> Result<String, ProviderError> {
        self.remove_stale_helpers(volume).await?;
        let name = format!("mooring-volume-io-{}-{}", volume, std::process::id());
        let config = Config {
            image: Some(image.to_string()),
            cmd: Some(vec!["true".to_string()]),
            labels: Some(HashMap::from([
                (
                    mooring_core::labels::MANAGED_BY.to_string(),
                    mooring_core::labels::MANAGED_BY_VALUE.to_string(),
                ),
                (HELPER_LABEL.to_string(), volume.to_string()),
            ])),
            host_config: Some(HostConfig {
                binds: Some(vec![format!(
                    "{volume}:/v{}",
                    if read_only { ":ro" } else { "" }
                )]),
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: name.clone(),
            platform: None,
        };
        self.client()
            .create_container(Some(options), config)
            .await
            .map_err(|e| {
                ProviderError::Failed(format!(
                    "creating a helper container for volume {volume} (image {image}): {e}"
                ))
            })?;
        Ok(name)
    }

    /// Removes helper containers a killed run left behind for `volume`.
    pub(crate) async fn remove_stale_helpers(&self, volume: &str) -> Result<(), ProviderError> {
        let list = self
            .containers_where(
                "label",
                format!("{HELPER_LABEL}={volume}"),
                "helper containers",
            )
            .await?;
        for c in list {
            if let Some(id) = c.id {
                let _ = self
                    .client()
                    .remove_container(
                        &id,
                        Some(RemoveContainerOptions {
                            force: true,
                            ..Default::default()
                        }),
                    )
                    .await;
            }
        }
        Ok(())
    }

    async fn drop_helper(&self, name: &str) {
        let _ = self
            .client()
            .remove_container(
                name,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await;
    }

    /// Streams `volume`'s content (a tar, entries `./…`) to `consume`, run on a
    /// blocking thread; returns what it returns.
    pub async fn export_volume<R: Send + 'static>(
        &self,
        volume: &str,
        image: &str,
        consume: impl FnOnce(&mut dyn Read) -> R + Send + 'static,
    ) -> Result<R, ProviderError> {
        let helper = self.helper(volume, image, true).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let reader = tokio::task::spawn_blocking(move || {
            let mut r = ChannelReader::new(rx);
            let out = consume(&mut r);
            // Drain whatever the consumer left, so the sender never blocks forever.
            let _ = io::copy(&mut r, &mut io::sink());
            out
        });
        let mut stream = self
            .client()
            .download_from_container(&helper, Some(DownloadFromContainerOptions { path: "/v/." }));
        let mut failure = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => {
                    if tx.send(Ok(chunk)).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let msg = format!("reading volume {volume}: {e}");
                    let _ = tx.send(Err(msg.clone())).await;
                    failure = Some(msg);
                    break;
                }
            }
        }
        drop(tx);
        let result = reader
            .await
            .map_err(|e| ProviderError::Failed(e.to_string()));
        self.drop_helper(&helper).await;
        match failure {
            Some(f) => Err(ProviderError::Failed(f)),
            None => result,
        }
    }

    /// Writes into `volume` the tar stream `produce` writes (on a blocking thread).
    /// Existing files with the same names are overwritten; others are kept. Returns what
    /// `produce` returned and how the upload went: when both failed, the caller knows
    /// which one caused the other.
    pub async fn import_volume<T: Send + 'static, E: Send + 'static>(
        &self,
        volume: &str,
        image: &str,
        produce: impl FnOnce(&mut dyn Write) -> Result<T, E> + Send + 'static,
    ) -> Result<(Result<T, E>, Result<(), ProviderError>), ProviderError> {
        let helper = self.helper(volume, image, false).await?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        let writer = tokio::task::spawn_blocking(move || {
            let mut w = ChannelWriter::new(tx);
            let produced = produce(&mut w);
            let flushed = produced.is_ok().then(|| w.flush());
            (produced, flushed)
        });
        let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let options = UploadToContainerOptions {
            path: "/v",
            no_overwrite_dir_non_dir: "",
        };
        let uploaded = self
            .client()
            .upload_to_container_streaming(&helper, Some(options), body)
            .await;
        let written = writer.await;
        self.drop_helper(&helper).await;
        let failed =
            |e: String| ProviderError::Failed(format!("writing into volume {volume}: {e}"));
        let (produced, flushed) = written.map_err(|e| failed(e.to_string()))?;
        let uploaded = match (uploaded, flushed) {
            (Err(e), _) => Err(failed(e.to_string())),
            (Ok(_), Some(Err(e))) => Err(failed(e.to_string())),
            (Ok(_), _) => Ok(()),
        };
        Ok((produced, uploaded))
    }

    /// How `volume`'s content will be read or written (see the module docs for the rule).
    /// `image` is a local image for the helper container of the probe (or of the archive
    /// API).
    pub async fn volume_access(
        &self,
        volume: &str,
        image: &str,
    ) -> Result<VolumeAccess, ProviderError> {
        let wanted = std::env::var(ACCESS_ENV).unwrap_or_default();
        match wanted.as_str() {
            "" | "auto" | "mount-point" => {}
            "archive-api" => {
                return Ok(VolumeAccess::ArchiveApi(format!(
                    "{ACCESS_ENV}=archive-api"
                )))
            }
            other => {
                return Err(ProviderError::Failed(format!(
                    "{ACCESS_ENV}={other:?} is not a choice: use auto, mount-point or archive-api"
                )))
            }
        }
        match self.usable_mount_point(volume, image).await? {
            Ok(path) => Ok(VolumeAccess::MountPoint(path)),
            Err(why) if wanted == "mount-point" => Err(ProviderError::Failed(format!(
                "{ACCESS_ENV}=mount-point, but volume {volume}'s mount point cannot be used: {why}"
            ))),
            Err(why) => Ok(VolumeAccess::ArchiveApi(why)),
        }
    }

    /// The volume's mount point when it can be used directly, else why not.
    async fn usable_mount_point(
        &self,
        volume: &str,
        image: &str,
    ) -> Result<Result<PathBuf, String>, ProviderError> {
        // A folder of this machine is never another machine's volume, whatever its
        // path (the modification-time proof below would catch it; this says why).
        if !self.endpoint().is_local() {
            return Ok(Err(format!(
                "its Engine is remote ({}): its folders are on that machine",
                self.endpoint()
            )));
        }
        let v = self
            .client()
            .inspect_volume(volume)
            .await
            .map_err(|e| ProviderError::Failed(format!("inspecting volume {volume}: {e}")))?;
        if v.driver != "local" {
            return Ok(Err(format!("its driver is {}, not local", v.driver)));
        }
        if !v.options.is_empty() {
            return Ok(Err(
                "it has driver options, so its folder is mounted only while a container uses it"
                    .into(),
            ));
        }
        let path = PathBuf::from(&v.mountpoint);
        if !path.is_absolute() || !path.is_dir() {
            return Ok(Err(format!(
                "its mount point {} is not a folder on this machine (Docker runs elsewhere)",
                v.mountpoint
            )));
        }
        // Probes an older Mooring, killed while it checked, left in the volume's root
        // are Mooring's, not the user's data.
        remove_stale_probes(&path);
        // The proof writes nothing into the volume: the folder's modification time, set
        // here to a second nobody else would pick, must be the one Docker shows for the
        // volume's root; the folder's times are put back right after.
        let folder = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                return Ok(Err(format!(
                    "its mount point {} cannot be opened by Mooring ({e}; it needs root for this)",
                    path.display()
                )))
            }
        };
        let before = folder.metadata().map_err(|e| {
            ProviderError::Failed(format!("reading the times of {}: {e}", path.display()))
        })?;
        let draw = u64::from_str_radix(&random_hex()?[..8], 16).unwrap_or(0);
        let marker = 1_000_000_000 + draw % 500_000_000;
        let marked = std::fs::FileTimes::new()
            .set_accessed(before.accessed().unwrap_or(std::time::UNIX_EPOCH))
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(marker));
        if let Err(e) = folder.set_times(marked) {
            return Ok(Err(format!(
                "its mount point {} is not writable by Mooring ({e}; it needs root for this)",
                path.display()
            )));
        }
        let seen = self.root_mtime(volume, image).await;
        let mut restored = std::fs::FileTimes::new();
        if let Ok(t) = before.accessed() {
            restored = restored.set_accessed(t);
        }
        if let Ok(t) = before.modified() {
            restored = restored.set_modified(t);
        }
        let _ = folder.set_times(restored);
        match seen {
            Ok(Some(seconds)) if seconds == marker => Ok(Ok(path)),
            Ok(_) | Err(_) => Ok(Err(format!(
                "the folder {} is not the volume Docker sees (its modification time, set there, did not show through Docker)",
                path.display()
            ))),
        }
    }

    /// The modification time (seconds) of the volume's root as Docker shows it: the
    /// first header of the archive API's tar of the root, the rest never read.
    async fn root_mtime(&self, volume: &str, image: &str) -> Result<Option<u64>, ProviderError> {
        let helper = self.helper(volume, image, true).await?;
        let mut stream = self
            .client()
            .download_from_container(&helper, Some(DownloadFromContainerOptions { path: "/v" }));
        let mut head = Vec::new();
        let mut failure = None;
        while head.len() < 512 {
            match stream.next().await {
                Some(Ok(chunk)) => head.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    failure = Some(e);
                    break;
                }
                None => break,
            }
        }
        // Dropping the stream ends the transfer; the volume is not read further.
        drop(stream);
        self.drop_helper(&helper).await;
        if let Some(e) = failure {
            return Err(ProviderError::Failed(format!(
                "reading the volume's root through Docker: {e}"
            )));
        }
        Ok(head
            .get(..512)
            .map(tar::Header::from_byte_slice)
            .and_then(|h| h.mtime().ok()))
    }

    /// Writes a verified backup of `volume` into `dir` (created if missing), by the path
    /// [`volume_access`](Self::volume_access) picks; returns it and the path used.
    pub async fn backup_volume_into(
        &self,
        volume: &str,
        image: &str,
        dir: &Path,
        meta: BackupMeta,
    ) -> Result<(BackupRecord, VolumeAccess), ProviderError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ProviderError::Failed(format!("creating {}: {e}", dir.display())))?;
        let access = self.volume_access(volume, image).await?;
        let dir = dir.to_path_buf();
        let written = match &access {
            VolumeAccess::MountPoint(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || mooring_backup::backup_dir(&path, &dir, meta))
                    .await
                    .map_err(|e| {
                        ProviderError::Failed(format!("backing up volume {volume}: {e}"))
                    })?
            }
            VolumeAccess::ArchiveApi(_) => {
                self.export_volume(volume, image, move |r| {
                    mooring_backup::write_backup(r, &dir, meta)
                })
                .await?
            }
        };
        let record = written
            .map_err(|e| ProviderError::Failed(format!("backing up volume {volume}: {e}")))?;
        Ok((record, access))
    }

    /// The newest backup of `app`'s `volume` in `dir` when the volume (read at its mount
    /// point) holds exactly what it holds, byte for byte, and its archive still
    /// verifies; `None` otherwise, or when the volume is only reachable through the
    /// archive API.
    pub async fn unchanged_backup(
        &self,
        app: &str,
        volume: &str,
        image: &str,
        dir: &Path,
    ) -> Result<Option<BackupRecord>, ProviderError> {
        let newest = mooring_backup::list(dir)
            .ok()
            .into_iter()
            .flatten()
            .filter(|r| r.manifest.meta.app == app && r.manifest.meta.volume == volume)
            .max_by_key(|r| r.manifest.meta.created_at);
        let Some(record) = newest else {
            return Ok(None);
        };
        let VolumeAccess::MountPoint(path) = self.volume_access(volume, image).await? else {
            return Ok(None);
        };
        tokio::task::spawn_blocking(move || {
            // Byte for byte, the archive checked on the way; any doubt takes a new one.
            let same = mooring_backup::unchanged_since(&path, &record).unwrap_or(false);
            same.then_some(record)
        })
        .await
        .map_err(|e| {
            ProviderError::Failed(format!("comparing volume {volume} with its backup: {e}"))
        })
    }

    /// Restores `record` into `volume` (which must exist), verifying every checksum, by
    /// the path [`volume_access`](Self::volume_access) picks. Refuses a volume that holds
    /// data unless `overwrite` (files of the same names are replaced, others kept) — but
    /// always finishes an interrupted restore of the same backup.
    ///
    /// Through the mount point, the archive is checked while it is staged inside the
    /// volume and only then moved into place (see [`mooring_backup::restore_dir`]);
    /// through the archive API, the archive file is checked against the manifest (size,
    /// sha256, digest) before the first byte, then streamed in with every entry checked
    /// again on the way.
    pub async fn restore_volume_from(
        &self,
        volume: &str,
        image: &str,
        record: BackupRecord,
        overwrite: bool,
    ) -> Result<Restored, ProviderError> {
        refuse_dump(&record)?;
        let access = self.volume_access(volume, image).await?;
        let id = record.id.clone();
        let interrupted = self
            .restore_target(volume, image, &access, &record, overwrite)
            .await?;
        match &access {
            VolumeAccess::MountPoint(path) => {
                let path = path.clone();
                // An archive-API restore of this backup interrupted here is done now.
                let marker = InterruptedMarker::new(&record, volume);
                let done = tokio::task::spawn_blocking(move || {
                    mooring_backup::restore_dir(&record, &path)
                })
                .await
                .map_err(|e| ProviderError::Failed(format!("restoring volume {volume}: {e}")))?
                .map_err(|e| backup_failure(&id, volume, e))?;
                marker.remove();
                Ok(Restored {
                    access,
                    report: done.report,
                    resumed: done.resumed,
                    cleaned: done.cleaned,
                    rewrote_interrupted: false,
                    xattrs_not_set: done.xattrs_not_set.lines(),
                })
            }
            VolumeAccess::ArchiveApi(_) => {
                // dockerd writes as the stream comes, so a restore killed part-way leaves
                // part of it in the volume. A marker, written once the archive checked
                // out and removed when the restore is done, lets the next restore of
                // the same backup into that volume finish it without --force — when the
                // volume holds nothing but paths of the backup.
                let marker = InterruptedMarker::new(&record, volume);
                let writing = marker.clone();
                let (produced, uploaded) = self
                    .import_volume(volume, image, move |w| {
                        // Checked before the first byte (the file was verified entry by
                        // entry when written), then every entry checked again as it goes.
                        let file = mooring_backup::check_archive(&record)?;
                        writing.write()?;
                        mooring_backup::stream_checked(&record, &file, w)
                    })
                    .await?;
                let report = match (produced, uploaded) {
                    (Ok(report), Ok(())) => report,
                    // dockerd stopped taking the stream: its error is the cause.
                    (Err(BackupError::Output { .. }) | Ok(_), Err(e)) => return Err(e),
                    (Err(e), _) => return Err(backup_failure(&id, volume, e)),
                };
                marker.remove();
                Ok(Restored {
                    access,
                    report,
                    resumed: false,
                    cleaned: 0,
                    rewrote_interrupted: interrupted,
                    xattrs_not_set: Vec::new(),
                })
            }
        }
    }

    /// Whether `record` may be restored into `volume` as it is now: refused when the
    /// volume holds data and `overwrite` is off, unless an interrupted restore of the same
    /// backup left it (then it is finished). Through the archive API, returns whether such
    /// an interrupted restore had written part of it.
    async fn restore_target(
        &self,
        volume: &str,
        image: &str,
        access: &VolumeAccess,
        record: &BackupRecord,
        overwrite: bool,
    ) -> Result<bool, ProviderError> {
        let not_empty = |entries: usize| {
            ProviderError::Refused(format!(
                "volume {volume} is not empty ({entries} entries); restoring would overwrite them: restore with force (--force; on the app page, “Write over its files”) or into a new volume (--to-volume NEW)"
            ))
        };
        match access {
            VolumeAccess::MountPoint(path) => {
                let state = mooring_backup::inspect_dir(path)
                    .map_err(|e| ProviderError::Failed(format!("volume {volume}: {e}")))?;
                let resumable = state
                    .staged
                    .iter()
                    .any(|(s, complete)| *complete && *s == record.id);
                if !resumable && state.entries > 0 && !overwrite {
                    return Err(not_empty(state.entries));
                }
                Ok(false)
            }
            VolumeAccess::ArchiveApi(_) => {
                let marker = InterruptedMarker::new(record, volume);
                let entries = self
                    .export_volume(volume, image, volume_entries)
                    .await?
                    .map_err(|e| ProviderError::Failed(format!("reading volume {volume}: {e}")))?;
                let interrupted = marker.present() && {
                    let backed_up: HashSet<&str> = record
                        .manifest
                        .entries
                        .iter()
                        .map(|e| entry_name(&e.path))
                        .collect();
                    entries.iter().all(|e| backed_up.contains(e.as_str()))
                };
                if !entries.is_empty() && !overwrite && !interrupted {
                    return Err(not_empty(entries.len()));
                }
                Ok(interrupted)
            }
        }
    }

    /// Checks, before anything is stopped, that `record` may be restored into `volume`
    /// (see [`restore_volume_from`](Self::restore_volume_from)); a missing volume may.
    pub async fn check_restore(
        &self,
        volume: &str,
        record: &BackupRecord,
        overwrite: bool,
    ) -> Result<(), ProviderError> {
        refuse_dump(record)?;
        if !self.volume_exists(volume).await? {
            return Ok(());
        }
        let image = self.helper_image(volume, &[]).await?;
        let access = self.volume_access(volume, &image).await?;
        self.restore_target(volume, &image, &access, record, overwrite)
            .await
            .map(|_| ())
    }

    /// A local image for helper containers on `volume`: one of `preferred`, else one its
    /// containers run, else any.
    pub(crate) async fn helper_image(
        &self,
        volume: &str,
        preferred: &[String],
    ) -> Result<String, ProviderError> {
        let mut images = preferred.to_vec();
        for (name, _, _) in self.volume_users(volume).await? {
            if let Some(c) = crate::Host::container(self, &name).await? {
                images.push(c.image_ref);
            }
        }
        self.local_image(&images).await
    }

    /// Runs `work` with the running containers that write to `volume` stopped — a
    /// consistent copy — and starts them again whatever `work` returned: the one path of
    /// the daemon's and the command line's backups and restores. `work` is given a local
    /// image for helper containers: one of `preferred`, else one the volume's users run,
    /// else any. `report` hears each stop and start. The work's error wins; a container
    /// that does not start again is an error too (after the others were started).
    pub async fn with_writers_stopped<T, F, Fut>(
        &self,
        volume: &str,
        preferred: &[String],
        report: &(dyn Fn(WriterChange<'_>) + Sync),
        work: F,
    ) -> Result<T, ProviderError>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, ProviderError>>,
    {
        self.with_writers_held(volume, preferred, Hold::Stop, report, work)
            .await
    }

    /// [`Provider::with_writers_stopped`], the writers held as `hold` says: on a Swarm
    /// node they are paused (frozen, their files still), since a task stopped would be
    /// replaced by Swarm.
    pub async fn with_writers_held<T, F, Fut>(
        &self,
        volume: &str,
        preferred: &[String],
        hold: Hold,
        report: &(dyn Fn(WriterChange<'_>) + Sync),
        work: F,
    ) -> Result<T, ProviderError>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, ProviderError>>,
    {
        let image = self.helper_image(volume, preferred).await?;
        let users = self.volume_users(volume).await?;
        let mut held = Vec::new();
        let mut outcome = Ok(());
        for (name, running, read_only) in users {
            if running && !read_only {
                let r = match hold {
                    Hold::Stop => {
                        report(WriterChange::Stopping(&name));
                        self.stop(&name).await
                    }
                    Hold::Pause => {
                        report(WriterChange::Pausing(&name));
                        self.client()
                            .pause_container(&name)
                            .await
                            .map_err(|e| ProviderError::Failed(format!("pausing {name}: {e}")))
                    }
                };
                if let Err(e) = r {
                    outcome = Err(e);
                    break;
                }
                held.push(name);
            }
        }
        let result = match outcome {
            Ok(()) => work(image).await,
            Err(e) => Err(e),
        };
        let mut released = Ok(());
        for name in &held {
            let r = match hold {
                Hold::Stop => self.start(name).await,
                Hold::Pause => self
                    .client()
                    .unpause_container(name)
                    .await
                    .map_err(|e| ProviderError::Failed(format!("unpausing {name}: {e}"))),
            };
            match r {
                Ok(()) => report(WriterChange::Started(name)),
                Err(e) => {
                    report(WriterChange::NotStarted(name, &e));
                    released = Err(e);
                }
            }
        }
        let value = result?;
        released?;
        Ok(value)
    }

    /// Containers that mount `volume`: `(name, running, read_only)`.
    pub async fn volume_users(
        &self,
        volume: &str,
    ) -> Result<Vec<(String, bool, bool)>, ProviderError> {
        let list = self
            .containers_where(
                "volume",
                volume.to_string(),
                &format!("containers using volume {volume}"),
            )
            .await?;
        Ok(list
            .into_iter()
            .filter(|c| {
                !c.labels
                    .as_ref()
                    .is_some_and(|l| l.contains_key(HELPER_LABEL))
            })
            .map(|c| {
                let name = crate::provider::summary_name(&c);
                let running = c.state.as_deref() == Some("running");
                let ro = c
                    .mounts
                    .unwrap_or_default()
                    .iter()
                    .any(|m| m.name.as_deref() == Some(volume) && m.rw == Some(false));
                (name, running, ro)
            })
            .collect())
    }

    /// Volumes carrying the app's label (`io.mooring.app`, Compose's project label, or
    /// on a Swarm node the stack's namespace).
    pub async fn app_volumes(&self, app: &str) -> Result<Vec<String>, ProviderError> {
        let mut out = Vec::new();
        for label in [
            mooring_core::labels::APP,
            mooring_core::labels::COMPOSE_PROJECT,
            crate::stack::NAMESPACE,
        ] {
            for (name, _) in self.labelled_volumes(label, app).await? {
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Volumes whose label `label` is `value`, with their labels.
    pub async fn labelled_volumes(
        &self,
        label: &str,
        value: &str,
    ) -> Result<Vec<(String, HashMap<String, String>)>, ProviderError> {
        let filters = HashMap::from([("label".to_string(), vec![format!("{label}={value}")])]);
        let list = self
            .client()
            .list_volumes(Some(bollard::volume::ListVolumesOptions { filters }))
            .await
            .map_err(|e| ProviderError::Failed(format!("listing volumes of {value}: {e}")))?;
        let mut out: Vec<(String, HashMap<String, String>)> = list
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| (v.name, v.labels))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Whether a volume exists.
    pub async fn volume_exists(&self, name: &str) -> Result<bool, ProviderError> {
        match self.client().inspect_volume(name).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(ProviderError::Failed(format!(
                "inspecting volume {name}: {e}"
            ))),
        }
    }

    /// Creates a plain volume (a restore target that does not exist yet).
    pub async fn create_plain_volume(&self, name: &str) -> Result<(), ProviderError> {
        let options = bollard::volume::CreateVolumeOptions::<String> {
            name: name.to_string(),
            ..Default::default()
        };
        self.client()
            .create_volume(options)
            .await
            .map(|_| ())
            .map_err(|e| ProviderError::Failed(format!("creating volume {name}: {e}")))
    }

    /// An image present on the host for helper containers: `preferred` when present,
    /// else any local image.
    pub async fn local_image(&self, preferred: &[String]) -> Result<String, ProviderError> {
        for p in preferred {
            if self.image_id(p).await?.is_some() {
                return Ok(p.clone());
            }
        }
        let images = self
            .client()
            .list_images(None::<bollard::image::ListImagesOptions<String>>)
            .await
            .map_err(|e| ProviderError::Failed(format!("listing images: {e}")))?;
        images
            .into_iter()
            .find_map(|i| i.repo_tags.into_iter().find(|t| t != "<none>:<none>"))
            .ok_or_else(|| {
                ProviderError::Failed(
                    "no image on the host to run a helper container; load any image first".into(),
                )
            })
    }

    /// Stops a container (its own grace period).
    pub async fn stop(&self, name: &str) -> Result<(), ProviderError> {
        match self.client().stop_container(name, None).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(ProviderError::Failed(format!("stopping {name}: {e}"))),
        }
    }

    /// Starts a container.
    pub async fn start(&self, name: &str) -> Result<(), ProviderError> {
        crate::Host::start_container(self, name).await
    }
}

/// How the containers writing to a volume are held still while it is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Stopped, then started again (a Compose project's containers).
    Stop,
    /// Paused, then unpaused (a Swarm's tasks, which Swarm would replace if stopped).
    Pause,
}

/// What [`Provider::with_writers_held`] does to a container that writes to the volume.
#[derive(Debug)]
pub enum WriterChange<'a> {
    /// Being stopped for a consistent copy.
    Stopping(&'a str),
    /// Being paused for a consistent copy.
    Pausing(&'a str),
    /// Started (or unpaused) again.
    Started(&'a str),
    /// Would not start (or unpause) again.
    NotStarted(&'a str, &'a ProviderError),
}
