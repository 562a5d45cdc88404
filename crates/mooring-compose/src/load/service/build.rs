//! `build`: the image built from a folder of the repository. The context must be a
//! folder inside the snapshot (a remote context is refused); the Dockerfile a file in
//! the snapshot, or `dockerfile_inline`. Its inputs — the context's files after
//! `.dockerignore` (`build_context`), the Dockerfile and every build setting — are hashed
//! into `Build::inputs`, which decides whether the image is built again. Keys that need
//! BuildKit or a registry, or that would reach the host (`ssh`, `secrets`,
//! `privileged`, …), are refused with their position.

use super::super::files::path_error;
use super::super::files_decl::Source;
use super::super::Decoder;
use super::{mounts, networks, resources, settings};
use crate::build_context;
use crate::decode::*;
use crate::error::LoadError;
use crate::paths::resolve_inside;
use crate::yaml::{Node, Value};
use mooring_core::{Build, BuildSecret};
use std::path::Path;

/// The keys of `build` Mooring applies.
const KEYS: &[&str] = &[
    "context",
    "dockerfile",
    "dockerfile_inline",
    "args",
    "target",
    "labels",
    "network",
    "shm_size",
    "extra_hosts",
    "cache_from",
    "no_cache",
    "pull",
    "secrets",
    "tags",
    "ulimits",
    "platforms",
];

/// Keys of Compose's `build` that are refused, and why.
const REFUSED: &[(&str, &str)] = &[
    (
        "ssh",
        "an SSH agent or key forwarded into the build would hand the daemon's credentials to whatever the repository's Dockerfile runs; fetch private sources before the build or use `secrets`",
    ),
    (
        "additional_contexts",
        "additional build contexts are not supported yet; copy the files into the context or build a base image as another service",
    ),
    (
        "privileged",
        "a privileged build would run with full access to the host, and the Engine's build API cannot grant it",
    ),
    (
        "entitlements",
        "build entitlements would give the build access to the host, and the Engine's build API cannot grant them",
    ),
    (
        "cache_to",
        "the Engine's own builder cannot export its cache (Compose refuses it with this builder too)",
    ),
    ("isolation", "build isolation is for Windows engines"),
    (
        "provenance",
        "attestations need a registry-backed builder; the Engine's builder keeps the image locally",
    ),
    (
        "sbom",
        "attestations need a registry-backed builder; the Engine's builder keeps the image locally",
    ),
];

impl Decoder<'_> {
    /// `build`, or `None` when the service has none.
    pub(super) fn build(&self, n: &Node, what: &str) -> Result<Option<Build>, LoadError> {
        let Some(b) = n.get("build") else {
            return Ok(None);
        };
        let w = format!("{what}.build");
        let empty = Node::new(Value::Map(vec![]), b.pos.clone());
        let (context_node, m) = match &b.value {
            Value::Map(_) => (b.get("context"), b),
            _ => (Some(b), &empty),
        };
        if let Value::Map(pairs) = &m.value {
            for (k, v) in pairs {
                if let Some((key, why)) = REFUSED.iter().find(|(r, _)| *r == key_of(k)) {
                    return Err(err(v, format!("{w}.{key} is not supported: {why}")));
                }
            }
            check_keys(m, &w, KEYS)?;
        }
        let context_text = match context_node {
            Some(c) => string(c, &format!("{w}.context"))?,
            None => ".".to_string(),
        };
        let at = context_node.unwrap_or(b);
        if context_text.contains("://") || context_text.starts_with("git@") {
            return Err(err(at, format!("{w}.context: {context_text} is a remote context; Mooring builds only from folders of the repository (put the sources in it)")));
        }
        if Path::new(&context_text).is_absolute() {
            return Err(err(at, format!("{w}.context: {context_text} is an absolute path; use a folder of the repository, relative to the project folder")));
        }
        let root = &self.snapshot.root;
        let context = resolve_inside(root, &self.snapshot.project_dir, &context_text)
            .map_err(|e| path_error(e, &context_text, &format!("{w}.context"), Some(&at.pos)))?;
        if !context.is_dir() {
            return Err(err(
                at,
                format!("{w}.context: {context_text} is not a folder of the repository"),
            ));
        }
        let opt = |k: &str| m.get(k).map(|v| string(v, &format!("{w}.{k}"))).transpose();
        let dockerfile_inline = opt("dockerfile_inline")?;
        let dockerfile = opt("dockerfile")?;
        if dockerfile.is_some() && dockerfile_inline.is_some() {
            return Err(err(
                m,
                format!("{w}: `dockerfile` and `dockerfile_inline` cannot both be set"),
            ));
        }
        let dockerfile = dockerfile.unwrap_or_else(|| "Dockerfile".to_string());
        if dockerfile_inline.is_none() {
            let at = m.get("dockerfile").unwrap_or(at);
            if Path::new(&dockerfile).is_absolute() {
                return Err(err(at, format!("{w}.dockerfile: {dockerfile} is an absolute path; use a file of the repository, relative to the context")));
            }
            let file = resolve_inside(root, &context, &dockerfile).map_err(|e| {
                path_error(e, &dockerfile, &format!("{w}.dockerfile"), Some(&at.pos))
            })?;
            if !file.is_file() {
                return Err(err(
                    at,
                    format!("{w}.dockerfile: {dockerfile} does not exist in {context_text}"),
                ));
            }
        }
        let shm_size = m
            .get("shm_size")
            .map(|v| {
                let text = string(v, &format!("{w}.shm_size"))?;
                resources::memory_bytes(&text).ok_or_else(|| {
                    err(
                        v,
                        format!("{w}.shm_size: invalid size {text:?} (use e.g. 256m)"),
                    )
                })
            })
            .transpose()?;
        let bool_of = |k: &str| {
            m.get(k)
                .map(|v| boolean(v, &format!("{w}.{k}")))
                .transpose()
                .map(Option::unwrap_or_default)
        };
        let mut build = Build {
            context: context.to_string_lossy().to_string(),
            dockerfile,
            dockerfile_inline,
            args: self.string_map(m.get("args"), &format!("{w}.args"))?,
            target: opt("target")?,
            labels: self.label_map(m.get("labels"), &format!("{w}.labels"))?,
            network: opt("network")?,
            shm_size,
            extra_hosts: networks::extra_hosts(m, &w)?,
            cache_from: m
                .get("cache_from")
                .map(|v| string_list(v, &format!("{w}.cache_from")))
                .transpose()?
                .unwrap_or_default(),
            no_cache: bool_of("no_cache")?,
            pull: bool_of("pull")?,
            secrets: self.build_secrets(m, &w)?,
            tags: m
                .get("tags")
                .map(|v| string_list(v, &format!("{w}.tags")))
                .transpose()?
                .unwrap_or_default(),
            ulimits: settings::ulimits(m, &w)?,
            platforms: m
                .get("platforms")
                .map(|v| string_list(v, &format!("{w}.platforms")))
                .transpose()?
                .unwrap_or_default(),
            inputs: String::new(),
        };
        let platform = n
            .get("platform")
            .map(|p| string(p, &format!("{what}.platform")))
            .transpose()?;
        if let Some(p) = m.get("platforms") {
            if build.platforms.len() > 1 {
                return Err(err(p, format!("{w}.platforms: {} platforms; the Engine's builder makes an image for one platform (a multi-platform image needs a registry-backed builder); keep one", build.platforms.len())));
            }
            if let Some(service) = &platform {
                if !build.platforms.contains(service) {
                    return Err(err(p, format!("{w}.platforms must include the service's platform {service}, as Compose requires")));
                }
            }
        }
        build.inputs = inputs(&build, platform.as_deref(), &context, at)?;
        Ok(Some(build))
    }
}

impl Decoder<'_> {
    /// `build.secrets`: each a project secret, with its value now. One from a file must
    /// be a file of the repository (a SOPS-encrypted one is decrypted): Mooring reads it
    /// and hands it to the builder, so a host path would let a commit copy any file the
    /// daemon can read into an image.
    fn build_secrets(&self, m: &Node, w: &str) -> Result<Vec<BuildSecret>, LoadError> {
        let (items, w) = items(m, w, "secrets")?;
        let mut out: Vec<BuildSecret> = Vec::new();
        for item in items {
            let reference = mounts::file_ref(item, &w)?;
            let (_, source) = self.files.secrets.get(&reference.source).ok_or_else(|| {
                err(
                    item,
                    format!(
                        "{w}: `{}` is not declared under the top-level `secrets`",
                        reference.source
                    ),
                )
            })?;
            let value = match source {
                Source::Value(v) => v.clone(),
                Source::File(path) => self.repository_file(item, path, &w, "a build reads only secrets kept in the repository (SOPS-encrypted) or given by a variable (`environment:`)")?,
                Source::External(name) => {
                    return Err(err(item, format!("{w}: `{name}` is an external Swarm secret, which a build cannot read; give the build its `file:` or `environment:`")))
                }
            };
            let secret = BuildSecret { reference, value };
            if out.iter().any(|s| s.id() == secret.id()) {
                return Err(err(
                    item,
                    format!(
                        "{w}: two secrets have the id `{}`; give one a `target`",
                        secret.id()
                    ),
                ));
            }
            out.push(secret);
        }
        Ok(out)
    }
}

/// The inputs hash: every setting of `build`, the service's `platform` (the image is
/// built for it) and the context's files.
fn inputs(
    build: &Build,
    platform: Option<&str>,
    context: &Path,
    at: &Node,
) -> Result<String, LoadError> {
    let files = build_context::entries(context, &build.dockerfile)
        .and_then(|entries| build_context::hash(&entries))
        .map_err(|e| err(at, format!("build context {}: {e}", build.context)))?;
    // Where the context lies (a checkout of this revision) is not an input.
    let mut settings = build.clone();
    settings.context.clear();
    let settings = serde_json::to_string(&settings).unwrap_or_default();
    let platform = match platform {
        Some(p) => format!("\nplatform {p}"),
        None => String::new(),
    };
    Ok(mooring_core::hash::sha256_hex(
        format!("{settings}{platform}\n{files}").as_bytes(),
    ))
}
