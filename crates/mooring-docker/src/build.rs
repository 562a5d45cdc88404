//! Building a `build:` service's image with the Engine's BuildKit, as Compose does:
//! the context's entries (`mooring_compose::build_context`: `.dockerignore` applied,
//! no symlink followed out of it) as a tar in one request, the Dockerfile — a file of
//! the context, or one outside it or `dockerfile_inline`, sent inside the tar under a
//! name of its own — and the build settings; a build with `secrets` gets a session
//! that hands them over (`build_session`). The image is tagged as the service's
//! `image` (and its `tags`) and labelled with its inputs hash (`io.mooring.build`),
//! which the plan compares. Progress streams in BuildKit's plain form
//! (`build_progress`); a failed build says the step that failed and the builder's
//! last lines.

use crate::build_progress::Progress;
use crate::build_session::{self, Session};
use crate::engine_http::{error_text, json_lines, Engine};
use crate::provider::{Provider, ProviderError};
use bytes::Bytes;
use http_body_util::Full;
use mooring_compose::build_context::{self, EntryKind};
use mooring_compose::paths::normalize;
use mooring_core::{Build, Service};
use std::collections::{BTreeMap, HashMap};
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
        let mut labels: BTreeMap<&str, &str> = build
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        // Its inputs and whose image it is (old builds are found by it), in one label.
        let owner = mooring_core::labels::build_value(&build.inputs, project, &svc.name);
        labels.insert(mooring_core::labels::BUILD, &owner);
        let platform = svc
            .settings
            .platform
            .as_deref()
            .or(build.platforms.first().map(String::as_str));
        let session = match build.secrets.is_empty() {
            true => None,
            false => {
                let values = build
                    .secrets
                    .iter()
                    .map(|s| (s.id().to_string(), s.value.clone()))
                    .collect();
                Some(
                    build_session::start(self.engine(), values)
                        .await
                        .map_err(fail)?,
                )
            }
        };
        let query = query(
            build,
            &image,
            &dockerfile,
            &labels,
            platform,
            session.as_ref(),
        );
        let request = Engine::request("POST", &format!("/build?{query}"))
            .header(hyper::header::CONTENT_TYPE, "application/x-tar")
            .body(Full::new(Bytes::from(tar)))
            .map_err(|e| fail(e.to_string()))?;
        let response = self.engine().send(request).await.map_err(fail)?;
        if !response.status().is_success() {
            return Err(fail(error_text(response).await));
        }
        let mut progress = Progress::default();
        let mut tail: Vec<String> = Vec::new();
        let mut error: Option<String> = None;
        let mut built = false;
        // A step that prints a build secret shows `***` instead: the value, and each
        // line of one that has several (a key printed line by line).
        let mut hidden = mooring_core::mask::SecretValues::default();
        for secret in &build.secrets {
            if let Ok(text) = std::str::from_utf8(&secret.value) {
                hidden.add(text.trim());
                for line in text.lines().map(str::trim).filter(|l| l.len() >= 4) {
                    hidden.add(line);
                }
            }
        }
        let mut say = |line: String| {
            let line = hidden.scrub(&line);
            output(&line);
            tail.push(line);
            if tail.len() > TAIL {
                tail.remove(0);
            }
        };
        json_lines(response.into_body(), |m| {
            match m["id"].as_str() {
                Some("moby.buildkit.trace") => {
                    for line in progress.lines(m["aux"].as_str().unwrap_or_default()) {
                        say(line);
                    }
                }
                Some("moby.image.id") => built = m["aux"]["ID"].is_string(),
                _ => {}
            }
            if let Some(text) = m["stream"].as_str() {
                for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
                    say(line.to_string());
                }
            }
            if let Some(e) = m["errorDetail"]["message"].as_str().or(m["error"].as_str()) {
                error.get_or_insert_with(|| hidden.scrub(e.trim()));
            }
            Ok(())
        })
        .await
        .map_err(fail)?;
        drop(session);
        if let Some(e) =
            error.or_else(|| (!built).then(|| "the builder ended without an image".to_string()))
        {
            let at = match &progress.failed {
                Some((step, _)) => format!(" at {}", hidden.scrub(step)),
                None => String::new(),
            };
            return Err(fail(format!(
                "{e}{at}; the builder's last lines:\n  {}",
                tail.join("\n  ")
            )));
        }
        let removed = self.remove_old_builds(project, &svc.name).await?;
        Ok(format!(
            "built {image} from {} ({files} files sent, {} steps){}",
            build.context,
            progress.steps(),
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

/// The build's settings as the Engine's `/build` takes them: BuildKit (`version=2`),
/// tagged as the service's `image` and each of `tags`.
fn query(
    build: &Build,
    image: &str,
    dockerfile: &str,
    labels: &BTreeMap<&str, &str>,
    platform: Option<&str>,
    session: Option<&Session>,
) -> String {
    let json = |v: serde_json::Value| v.to_string();
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("version", "2");
    q.append_pair("dockerfile", dockerfile);
    for t in std::iter::once(image).chain(build.tags.iter().map(String::as_str)) {
        q.append_pair("t", t);
    }
    q.append_pair("buildargs", &json(serde_json::json!(build.args)));
    q.append_pair("labels", &json(serde_json::json!(labels)));
    q.append_pair("rm", "1");
    q.append_pair("forcerm", "1");
    if let Some(target) = &build.target {
        q.append_pair("target", target);
    }
    if let Some(network) = &build.network {
        q.append_pair("networkmode", network);
    }
    if let Some(shm) = build.shm_size {
        q.append_pair("shmsize", &shm.to_string());
    }
    if !build.extra_hosts.is_empty() {
        q.append_pair("extrahosts", &build.extra_hosts.join(","));
    }
    if !build.cache_from.is_empty() {
        q.append_pair("cachefrom", &json(serde_json::json!(build.cache_from)));
    }
    if !build.ulimits.is_empty() {
        let ulimits: Vec<_> = build
            .ulimits
            .iter()
            .map(|(name, u)| serde_json::json!({"Name": name, "Soft": u.soft, "Hard": u.hard}))
            .collect();
        q.append_pair("ulimits", &json(serde_json::json!(ulimits)));
    }
    if build.no_cache {
        q.append_pair("nocache", "1");
    }
    if build.pull {
        q.append_pair("pull", "1");
    }
    if let Some(p) = platform {
        q.append_pair("platform", p);
    }
    if let Some(s) = session {
        q.append_pair("session", &s.id);
    }
    q.finish()
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
