//! Secrets and configs: files Compose puts into a service's container. On a single
//! Engine (no Swarm), as Compose does: one from a `file:` is bind-mounted read-only
//! (it is one of the service's mounts, so the policy and the spec hash see it), one
//! from `environment:` or `content:` is copied into the container after it is created
//! and before it starts, with its `uid`, `gid` and `mode`. Its content lives in memory
//! only: never in the deploy tree, the store, a label or a printed project.

use serde::{Serialize, Serializer};

/// A secret or config reference of a service, as written (printed like Compose).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct FileRef {
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "octal")]
    pub mode: Option<u32>,
}

impl FileRef {
    /// Where the container sees it, as Compose puts it: an absolute `target` as written,
    /// else under `/run/secrets/` for a secret (`secret`) and `/` for a config, named
    /// after the target or the source.
    pub fn container_path(&self, secret: bool) -> String {
        let base = if secret { "/run/secrets/" } else { "/" };
        match self.target.as_deref() {
            Some(t) if t.starts_with('/') => t.to_string(),
            Some(t) => format!("{base}{t}"),
            None => format!("{base}{}", self.source),
        }
    }
}

/// A project secret a build reads (`build.secrets`): printed as its reference; its
/// value is sent to the builder in the build's session only, never serialized, never
/// an input of the build (a changed secret does not rebuild, as with Compose).
#[derive(Clone, PartialEq, Eq, Default, Serialize)]
pub struct BuildSecret {
    #[serde(flatten)]
    pub reference: FileRef,
    #[serde(skip)]
    pub value: Vec<u8>,
}

impl BuildSecret {
    /// The id a `RUN --mount=type=secret,id=…` names: the `target`, else the source
    /// (Compose's rule).
    pub fn id(&self) -> &str {
        self.reference
            .target
            .as_deref()
            .unwrap_or(&self.reference.source)
    }
}

impl std::fmt::Debug for BuildSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildSecret")
            .field("reference", &self.reference)
            .field("value", &format_args!("{} bytes", self.value.len()))
            .finish()
    }
}

/// A file copied into a container before it starts.
#[derive(Clone, PartialEq, Eq, Default, Serialize)]
pub struct InlineFile {
    /// Absolute path in the container.
    pub target: String,
    /// What it holds: never serialized (the spec hash covers it through
    /// `Service::files_hash`).
    #[serde(skip)]
    pub content: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    #[serde(serialize_with = "octal_mode")]
    pub mode: u32,
    /// What it is, in people's words (`secret db_password`, `config site`, `file
    /// ./app.json`): what a plan says changed. Not part of the spec.
    #[serde(skip)]
    pub origin: String,
}

impl InlineFile {
    /// A short digest of the content: on the container's `io.mooring.files` label, so a
    /// plan can say which file changed. (Whoever reads labels can read the file itself.)
    pub fn digest(&self) -> String {
        crate::hash::sha256_hex(&self.content)[..16].to_string()
    }
}

impl std::fmt::Debug for InlineFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineFile")
            .field("target", &self.target)
            .field("content", &format_args!("{} bytes", self.content.len()))
            .field("uid", &self.uid)
            .field("gid", &self.gid)
            .field("mode", &format_args!("{:o}", self.mode))
            .finish()
    }
}

/// Compose prints a mode as an octal string (`"0400"`).
fn octal<S: Serializer>(mode: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
    match mode {
        Some(m) => s.serialize_str(&format!("{m:04o}")),
        None => s.serialize_none(),
    }
}

fn octal_mode<S: Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{mode:04o}"))
}

/// A top-level secret or config, as Compose prints it (the value of an
/// `environment:` one is never printed).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ProjectFile {
    /// `<project>_<key>` unless `name:` is set.
    pub name: String,
    /// Absolute path of a `file:` one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The variable an `environment:` one takes its value from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// A config's `content:`, as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// `external: true`: it exists in the Swarm already (Swarm only).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
    /// `labels` (Swarm only).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Whether a Swarm file is a secret or a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Secret,
    Config,
}

impl FileKind {
    /// `secret` or `config`: as people and the Engine's routes (`/secrets`) say it.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Secret => "secret",
            FileKind::Config => "config",
        }
    }
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A secret or config of a service deployed to a Swarm: a Swarm object its tasks get
/// as a file. One from the repository or a variable is named after its content
/// (`<name>_<digest>`): Swarm objects cannot change, so new content is a new object
/// and the service's update rolls it out, as a changed image would.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct SwarmFile {
    pub kind: FileKind,
    /// The object's name: `<declared name>_<digest>`, or the declared name of an
    /// external one.
    pub name: String,
    /// `File.Name` as Swarm takes it: for a secret, under `/run/secrets/` unless
    /// absolute; for a config, an absolute path.
    pub target: String,
    pub uid: String,
    pub gid: String,
    #[serde(serialize_with = "octal_mode")]
    pub mode: u32,
    /// The content; `None` for an external object. Never serialized.
    #[serde(skip)]
    pub content: Option<Vec<u8>>,
    /// Labels of the object (`labels:` of the top-level entry).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
}

impl SwarmFile {
    /// The digest a content-named object carries: 12 hex digits of the content's
    /// HMAC-SHA256 under `key` (the daemon's own, kept in its data folder), so a name
    /// shown to anyone who can list Swarm secrets or read a plan does not let them
    /// check guesses of a weak secret; a plain sha256 without a key (a one-shot
    /// render).
    pub fn digest(content: &[u8], key: Option<&[u8; 32]>) -> String {
        use hmac::{Mac, SimpleHmac};
        match key {
            Some(k) => {
                let mut mac = SimpleHmac::<sha2::Sha256>::new_from_slice(k)
                    .expect("HMAC takes a key of any length");
                mac.update(content);
                let bytes = mac.finalize().into_bytes();
                bytes[..6].iter().map(|b| format!("{b:02x}")).collect()
            }
            None => crate::hash::sha256_hex(content)[..12].to_string(),
        }
    }
}

impl std::fmt::Debug for SwarmFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwarmFile")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("target", &self.target)
            .field(
                "content",
                &format_args!(
                    "{}",
                    self.content
                        .as_ref()
                        .map_or("external".to_string(), |c| format!("{} bytes", c.len()))
                ),
            )
            .finish()
    }
}
