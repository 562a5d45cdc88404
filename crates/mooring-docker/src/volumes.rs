//! Volume content in and out, for backups and restores, through the Engine's archive
//! API on a helper container that mounts the volume and is never started — so no image
//! is pulled (the caller names a local one) and it works on any host Docker can reach.
//! Content travels as a tar stream whose entries are relative to the volume's root
//! (`./…`); the caller reads or writes it on a blocking thread.

use crate::provider::{Provider, ProviderError};
use bollard::container::{
    Config, CreateContainerOptions, DownloadFromContainerOptions, ListContainersOptions,
    RemoveContainerOptions, UploadToContainerOptions,
};
use bollard::models::HostConfig;
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::io::{self, Read, Write};

/// The label marking helper containers (value: the volume).
pub const HELPER_LABEL: &str = "io.mooring.volume-helper";

/// A `Read` over chunks sent from the async side.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    buf: Bytes,
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

/// A `Write` sending chunks to the async side.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

const CHUNK: usize = 1 << 20;

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
    async fn remove_stale_helpers(&self, volume: &str) -> Result<(), ProviderError> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{HELPER_LABEL}={volume}")],
        )]);
        let list = self
            .client()
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters,
                ..Default::default()
            }))
            .await
            .map_err(|e| ProviderError::Failed(format!("listing helper containers: {e}")))?;
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
            let mut r = ChannelReader {
                rx,
                buf: Bytes::new(),
            };
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
    /// Existing files with the same names are overwritten; others are kept.
    pub async fn import_volume(
        &self,
        volume: &str,
        image: &str,
        produce: impl FnOnce(&mut dyn Write) -> Result<(), String> + Send + 'static,
    ) -> Result<(), ProviderError> {
        let helper = self.helper(volume, image, false).await?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        let writer = tokio::task::spawn_blocking(move || {
            let mut w = ChannelWriter {
                tx,
                buf: Vec::with_capacity(CHUNK),
            };
            let r = produce(&mut w);
            r.and_then(|()| w.flush().map_err(|e| e.to_string()))
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
        let produced = writer.await.map_err(|e| e.to_string()).and_then(|r| r);
        self.drop_helper(&helper).await;
        produced.map_err(|e| ProviderError::Failed(format!("restoring volume {volume}: {e}")))?;
        uploaded.map_err(|e| ProviderError::Failed(format!("writing into volume {volume}: {e}")))
    }

    /// Containers that mount `volume`: `(name, running, read_only)`.
    pub async fn volume_users(
        &self,
        volume: &str,
    ) -> Result<Vec<(String, bool, bool)>, ProviderError> {
        let filters = HashMap::from([("volume".to_string(), vec![volume.to_string()])]);
        let list = self
            .client()
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters,
                ..Default::default()
            }))
            .await
            .map_err(|e| {
                ProviderError::Failed(format!("listing containers using volume {volume}: {e}"))
            })?;
        Ok(list
            .into_iter()
            .filter(|c| {
                !c.labels
                    .as_ref()
                    .is_some_and(|l| l.contains_key(HELPER_LABEL))
            })
            .map(|c| {
                let name = c
                    .names
                    .and_then(|n| n.first().cloned())
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_string();
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

    /// Volumes carrying the app's label (`io.mooring.app` or Compose's project label).
    pub async fn app_volumes(&self, app: &str) -> Result<Vec<String>, ProviderError> {
        let mut out = Vec::new();
        for label in [
            mooring_core::labels::APP,
            mooring_core::labels::COMPOSE_PROJECT,
        ] {
            let filters = HashMap::from([("label".to_string(), vec![format!("{label}={app}")])]);
            let list = self
                .client()
                .list_volumes(Some(bollard::volume::ListVolumesOptions { filters }))
                .await
                .map_err(|e| ProviderError::Failed(format!("listing volumes of app {app}: {e}")))?;
            for v in list.volumes.unwrap_or_default() {
                if !out.contains(&v.name) {
                    out.push(v.name);
                }
            }
        }
        out.sort();
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
