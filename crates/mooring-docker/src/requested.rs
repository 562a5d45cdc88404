//! Backups and restores a person asks for — from the command line, or through the
//! daemon's API as an operation of the app — one path each: the writers are stopped for
//! a consistent copy and started again ([`Provider::with_writers_stopped`]), and a
//! restore that would be refused is refused before anything is stopped.

use crate::provider::{Provider, ProviderError};
use crate::volumes::{Hold, Restored, VolumeAccess, WriterChange};
use crate::Host;
use mooring_backup::{BackupMeta, BackupRecord};
use std::path::Path;

/// What a requested restore did: the restore, and whether the volume was created for it.
#[derive(Debug)]
pub struct RestoreDone {
    pub restored: Restored,
    pub created: bool,
}

impl Provider {
    /// Backs up `volume` into `dir`, verified, with the containers writing to it held
    /// still as `hold` says.
    pub async fn back_up_volume(
        &self,
        volume: &str,
        dir: &Path,
        meta: BackupMeta,
        hold: Hold,
        report: &(dyn Fn(WriterChange<'_>) + Sync),
    ) -> Result<(BackupRecord, VolumeAccess), ProviderError> {
        if !self.volume_exists(volume).await? {
            return Err(ProviderError::Failed(format!(
                "volume {volume} does not exist"
            )));
        }
        self.with_writers_held(volume, &[], hold, report, |image| async move {
            self.backup_volume_into(volume, &image, dir, meta).await
        })
        .await
    }

    /// Restores `record` into `volume` (created when missing, and removed again when the
    /// restore fails), with the containers writing to it stopped. A volume holding data
    /// is refused unless `overwrite` — before any container is stopped.
    pub async fn restore_volume(
        &self,
        volume: &str,
        record: BackupRecord,
        overwrite: bool,
        report: &(dyn Fn(WriterChange<'_>) + Sync),
    ) -> Result<RestoreDone, ProviderError> {
        self.check_restore(volume, &record, overwrite).await?;
        let created = !self.volume_exists(volume).await?;
        if created {
            self.create_plain_volume(volume).await?;
        }
        let result = self
            .with_writers_stopped(volume, &[], report, |image| async move {
                self.restore_volume_from(volume, &image, record, overwrite)
                    .await
            })
            .await;
        match result {
            Ok(restored) => Ok(RestoreDone { restored, created }),
            Err(e) if created => {
                // Nothing of the backup is in it: leave the host as it was.
                match Host::remove_volume(self, volume).await {
                    Ok(()) => Err(ProviderError::Failed(format!(
                        "{e} (volume {volume}, created for this restore, was removed again)"
                    ))),
                    Err(removing) => Err(ProviderError::Failed(format!(
                        "{e} (volume {volume} was created for this restore and could not be removed again: {removing})"
                    ))),
                }
            }
            Err(e) => Err(e),
        }
    }
}
