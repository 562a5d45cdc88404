//! Building a `build:` service's image with the Engine's build API: the context's
//! entries (`mooring_compose::build_context`: `.dockerignore` applied, no symlink
//! followed out of it) as a tar in one request, the Dockerfile — a file of the context,
//! or one outside it or `dockerfile_inline`, sent inside the tar under a name of its
//! own — and the build settings; the image is tagged as the service's `image` and
//! labelled with its inputs hash (`io.mooring.build`), which the plan compares.
//! A failed build says the step that failed and the builder's last lines.

use crate::provider::{Provider, ProviderError};
use bollard::image::BuildImageOptions;
use futures_util::StreamExt;
use mooring_compose::build_context::{self, EntryKind};
use mooring_compose::paths::normalize;
use mooring_core::{Build, Service};
use std::collections::HashMap;
use std::path::Path;

/// The name a Dockerfile given inline or kept outside the context gets in the tar.
const SENT_DOCKERFILE: &str = ".mooring.Dockerfile";

/// Builder output lines kept for an error message.
const TAIL: usize = 12;

impl Provider {
    /// Builds `svc`'s image from its `build`; a line for the operation's log.
    pub(crate) async fn build_service_image(
        &self,
        project: &str,
        svc: &Service,
        output: &(dyn Fn(&str) + Sync),
    ) -> Result<String, ProviderError> {
        let Some(build) = &svc.build else {
            return Err(ProviderError::Failed(format!(
                "service {} has no build",
                svc.name
            )));
        };
        let image = svc.image.clone();
        let fail = |e: String| ProviderError::Failed(format!("building image {image}: {e}"));
        let b = build.clone();
        let (tar, dockerfile, files) = tokio::task::spawn_blocking(move || context_tar(&b))
            .await
            .map_err(|e| fail(e.to_string()))?
            .map_err(fail)?;
        let mut labels: HashMap<String, String> = build
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // Its inputs and whose image it is (old builds are found by it), in one label.
        labels.insert(
            mooring_core::labels::BUILD.to_string(),
            mooring_core::labels::build_value(&build.inputs, project, &svc.name),
        );
        let options = BuildImageOptions::<String> {
            dockerfile,
            t: image.clone(),
            extrahosts: (!build.extra_hosts.is_empty()).then(|| build.extra_hosts.join(",")),
            nocache: build.no_cache,
            cachefrom: build.cache_from.clone(),
            pull: build.pull,
            rm: true,
            forcerm: true,
            buildargs: build.args.clone().into_iter().collect(),
            shmsize: build.shm_size.and_then(|s| u64::try_from(s).ok()),
            labels,
            networkmode: build.network.clone().unwrap_or_default(),
            target: build.target.clone().unwrap_or_default(),
            ..Default::default()
        };
        let mut stream = self.client().build_image(options, None, Some(tar.into()));
        let mut tail: Vec<String> = Vec::new();
        let mut step: Option<String> = None;
        let mut steps = 0;
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                // The builder's own error (a failed step) arrives as a stream error.
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    bollard::models::BuildInfo {
                        error: Some(error),
                        ..Default::default()
                    }
                }
                Err(e) => return Err(fail(e.to_string())),
            };
            if let Some(text) = info.stream {
                for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
                    output(line);
                    if line.starts_with("Step ") {
                        step = Some(line.to_string());
                        steps += 1;
                    }
                    tail.push(line.to_string());
                    if tail.len() > TAIL {
                        tail.remove(0);
                    }
                }
            }
            let error = info.error_detail.and_then(|d| d.message).or(info.error);
            if let Some(e) = error {
                let at = step.map(|s| format!(" at {s}")).unwrap_or_default();
                return Err(fail(format!(
                    "{}{at}; the builder's last lines:\n  {}",
                    e.trim(),
                    tail.join("\n  ")
                )));
            }
        }
        let removed = self.remove_old_builds(project, &svc.name).await?;
        Ok(format!(
            "built {image} from {} ({files} files sent, {steps} steps){}",
            build.context,
            match removed {
                0 => String::new(),
                n => format!("; {n} older build(s) removed"),
            }
        ))
    }

    /// Removes the service's images Mooring built but the newest [`KEEP_BUILDS`], never
    /// one a container uses (the Engine refuses those; they stay). How many went.
    async fn remove_old_builds(
        &self,
        project: &str,
        service: &str,
    ) -> Result<usize, ProviderError> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![mooring_core::labels::BUILD.to_string()],
        )]);
        let owner = format!("{project}/{service}");
        let mut images = self
            .client()
            .list_images(Some(bollard::image::ListImagesOptions::<String> {
                filters,
                ..Default::default()
            }))
            .await
            .map_err(|e| {
                ProviderError::Failed(format!("listing the builds of {project}-{service}: {e}"))
            })?;
        images.retain(|i| {
            i.labels
                .get(mooring_core::labels::BUILD)
                .is_some_and(|v| mooring_core::labels::parse_build_value(v).1 == owner)
        });
        images.sort_by_key(|i| std::cmp::Reverse(i.created));
        let mut removed = 0;
        for old in images.iter().skip(KEEP_BUILDS) {
            let options = bollard::image::RemoveImageOptions {
                noprune: false,
                force: false,
            };
            if self
                .client()
                .remove_image(&old.id, Some(options), None)
                .await
                .is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Builds of a service kept (the newest; an older one a container uses is kept too).
pub const KEEP_BUILDS: usize = 3;

/// The tar of the context, the Dockerfile's name in it, and how many files it holds.
fn context_tar(build: &Build) -> Result<(Vec<u8>, String, usize), String> {
    let context = Path::new(&build.context);
    let entries = build_context::entries(context, &build.dockerfile).map_err(|e| e.to_string())?;
    let mut tar = tar::Builder::new(Vec::new());
    tar.mode(tar::HeaderMode::Deterministic);
    let mut files = 0;
    for e in &entries {
        let io = |x: std::io::Error| format!("{}: {x}", e.full.display());
        match &e.kind {
            EntryKind::Dir => {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                tar.append_data(&mut h, &e.path, std::io::empty())
                    .map_err(io)?;
            }
            EntryKind::Symlink(target) => {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                tar.append_link(&mut h, &e.path, target).map_err(io)?;
            }
            EntryKind::File { size, mode } => {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(*size);
                let f = std::fs::File::open(&e.full).map_err(io)?;
                tar.append_data(&mut h, &e.path, f).map_err(io)?;
                files += 1;
            }
        }
    }
    let inside = inside_context(context, &build.dockerfile);
    let dockerfile = match (&build.dockerfile_inline, inside) {
        (None, Some(rel)) => rel,
        (inline, _) => {
            let text = match inline {
                Some(t) => t.clone().into_bytes(),
                None => std::fs::read(context.join(&build.dockerfile))
                    .map_err(|e| format!("reading {}: {e}", build.dockerfile))?,
            };
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(text.len() as u64);
            tar.append_data(&mut h, SENT_DOCKERFILE, text.as_slice())
                .map_err(|e| e.to_string())?;
            SENT_DOCKERFILE.to_string()
        }
    };
    let bytes = tar.into_inner().map_err(|e| e.to_string())?;
    Ok((bytes, dockerfile, files))
}

/// `dockerfile` relative to the context when it lies inside it (`None`: outside).
fn inside_context(context: &Path, dockerfile: &str) -> Option<String> {
    normalize(&context.join(dockerfile))
        .strip_prefix(context)
        .ok()
        .map(|p| p.to_string_lossy().to_string())
}
