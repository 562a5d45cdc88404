//! A service's storage: `volumes` (named volumes, binds — repository paths hashed
//! into `files_hash`, absolute host paths checked — and `type: tmpfs`) and `tmpfs`.
//! Each mount's position is kept for the policy.

use super::super::files::path_error;
use super::super::files_decl::Source;
use super::super::Decoder;
use crate::decode::*;
use crate::error::LoadError;
use crate::paths::{hash_paths, normalize, resolve_inside};
use crate::yaml::{Node, Value};
use mooring_core::{
    BindOptions, FileKind, FileRef, InlineFile, Mount, MountKind, SwarmFile, Volume, VolumeOptions,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a service's storage keys decode to.
pub(super) struct Storage {
    pub(super) mounts: Vec<Mount>,
    pub(super) tmpfs: Vec<String>,
    /// The long-syntax `type: tmpfs` entries of `volumes`, for `render`: where each
    /// stood among the mounts, as Compose prints it, and the `tmpfs` entry it became.
    pub(super) written_tmpfs: Vec<(usize, serde_json::Value, String)>,
    /// Hash of the repository files the binds mount, if any.
    pub(super) files_hash: Option<String>,
    /// The service's anonymous volumes (`- /data`), named after the app, service and
    /// target: the project declares them so their data is kept and protected.
    pub(super) anonymous: Vec<Volume>,
    /// `secrets` and `configs` as written; those from a file are among `mounts`,
    /// the others in `inline`.
    pub(super) secrets: Vec<FileRef>,
    pub(super) configs: Vec<FileRef>,
    pub(super) inline: Vec<InlineFile>,
    /// On a Swarm, the secrets and configs as Swarm objects (none is then a mount or
    /// inline).
    pub(super) swarm: Vec<SwarmFile>,
}

enum MountOrTmpfs {
    Mount(Mount),
    Tmpfs(String),
    /// A repository file that is encrypted: copied into the container decrypted.
    Inline(InlineFile),
}

/// One `volumes` entry as written, before its source is resolved.
struct Entry {
    kind: String,
    /// `None`: an anonymous volume.
    source: Option<String>,
    target: String,
    read_only: bool,
    bind: Option<BindOptions>,
    volume: Option<VolumeOptions>,
    /// `type: tmpfs` options in the Engine's form (`size=1048576,mode=1777`).
    tmpfs: Option<String>,
}

/// Where a service's secrets and configs go.
struct Into<'a> {
    mounts: &'a mut Vec<Mount>,
    inline: &'a mut Vec<InlineFile>,
    swarm: &'a mut Vec<SwarmFile>,
    repo_files: &'a mut Vec<(String, PathBuf)>,
}

/// The Swarm object a service's reference `r` (in `section`) names: the declared one's
/// name and the digest of its content, or the external one's name. The target as
/// `docker stack deploy` gives it: a secret's as written (Swarm puts a relative one
/// under `/run/secrets/`), a config's `/SOURCE` when none is written.
fn swarm_file(
    item: &Node,
    what: &str,
    (section, key): (&str, Option<&[u8; 32]>),
    r: &FileRef,
    declared: mooring_core::ProjectFile,
    source: Source,
) -> Result<SwarmFile, LoadError> {
    let kind = if section == "secrets" {
        FileKind::Secret
    } else {
        FileKind::Config
    };
    let (name, content) = match source {
        Source::External(name) => (name, None),
        Source::Value(bytes) => {
            let name = format!("{}_{}", declared.name, SwarmFile::digest(&bytes, key));
            (name, Some(bytes))
        }
        Source::File(path) => {
            return Err(err(
                item,
                format!("{what}: {path} was not read for the Swarm"),
            ))
        }
    };
    // Swarm's limit on an object's name.
    if name.len() > 64 {
        return Err(err(item, format!("{what}: the Swarm {kind} would be named {name}, longer than the 64 characters Swarm takes; give the top-level entry a shorter `name:`")));
    }
    let target = match (&r.target, kind) {
        (Some(t), _) => t.clone(),
        (None, FileKind::Secret) => r.source.clone(),
        (None, FileKind::Config) => format!("/{}", r.source),
    };
    Ok(SwarmFile {
        kind,
        name,
        target,
        uid: r.uid.clone().unwrap_or_else(|| "0".into()),
        gid: r.gid.clone().unwrap_or_else(|| "0".into()),
        mode: r.mode.unwrap_or(0o444),
        content,
        labels: declared.labels,
    })
}

impl Decoder<'_> {
    /// `tmpfs` and `volumes`.
    pub(super) fn mounts(
        &mut self,
        n: &Node,
        what: &str,
        names: (&str, &str),
        volumes: &BTreeMap<String, Volume>,
    ) -> Result<Storage, LoadError> {
        let mut tmpfs = n
            .get("tmpfs")
            .map(|t| string_or_list(t, &format!("{what}.tmpfs")))
            .transpose()?
            .unwrap_or_default();
        let mut mounts = Vec::new();
        let mut anonymous = Vec::new();
        let mut repo_files = Vec::new();
        let mut inline = Vec::new();
        let mut written_tmpfs = Vec::new();
        if let Some(v) = n.get("volumes") {
            let w = format!("{what}.volumes");
            let Value::Seq(items) = &v.value else {
                return Err(err(v, format!("{w} must be a list, found {}", v.kind())));
            };
            for item in items {
                match self.mount(item, &w, names, volumes, &mut repo_files, &mut anonymous)? {
                    MountOrTmpfs::Mount(m) => {
                        self.positions
                            .insert(format!("{w}.{}", m.target), item.pos.to_string());
                        mounts.push(m)
                    }
                    MountOrTmpfs::Tmpfs(t) => {
                        if matches!(item.value, Value::Map(_)) {
                            written_tmpfs.push((
                                mounts.len(),
                                tmpfs_as_compose_prints(&t),
                                t.clone(),
                            ));
                        }
                        tmpfs.push(t)
                    }
                    MountOrTmpfs::Inline(f) => inline.push(f),
                }
            }
        }
        let mut swarm = Vec::new();
        let mut into = Into {
            mounts: &mut mounts,
            inline: &mut inline,
            swarm: &mut swarm,
            repo_files: &mut repo_files,
        };
        let secrets = self.file_refs(n, what, "secrets", &mut into)?;
        let configs = self.file_refs(n, what, "configs", &mut into)?;
        let mut files_hash = if repo_files.is_empty() {
            None
        } else {
            Some(hash_paths(&repo_files).map_err(|e| {
                err(
                    n,
                    format!("{what}: cannot read mounted repository files: {e}"),
                )
            })?)
        };
        if !inline.is_empty() {
            // What inline files hold enters the spec hash here, never as itself.
            let mut text = files_hash.unwrap_or_default();
            for f in &inline {
                text.push_str(&format!(
                    "\n{}:{}",
                    f.target,
                    mooring_core::hash::sha256_hex(&f.content)
                ));
            }
            files_hash = Some(mooring_core::hash::sha256_hex(text.as_bytes()));
        }
        Ok(Storage {
            mounts,
            tmpfs,
            written_tmpfs,
            files_hash,
            anonymous,
            secrets,
            configs,
            inline,
            swarm,
        })
    }

    fn mount(
        &mut self,
        n: &Node,
        what: &str,
        (project, service): (&str, &str),
        volumes: &BTreeMap<String, Volume>,
        repo_files: &mut Vec<(String, PathBuf)>,
        anonymous: &mut Vec<Volume>,
    ) -> Result<MountOrTmpfs, LoadError> {
        let Entry {
            kind,
            source,
            target,
            read_only,
            bind,
            volume,
            tmpfs,
        } = match &n.value {
            Value::Scalar { text, .. } => short_syntax(n, text, what)?,
            Value::Map(_) => long_syntax(n, what)?,
            _ => {
                return Err(err(
                    n,
                    format!(
                        "{what}: each entry must be a string or a mapping, found {}",
                        n.kind()
                    ),
                ))
            }
        };
        if kind == "tmpfs" {
            return Ok(MountOrTmpfs::Tmpfs(match tmpfs {
                Some(opts) => format!("{target}:{opts}"),
                None => target,
            }));
        }
        if !target.starts_with('/') {
            return Err(err(
                n,
                format!("{what}: container path {target:?} must be absolute"),
            ));
        }
        match (kind.as_str(), source) {
            ("volume", None) => {
                // Named after what it is for: the same on every render, so a recreated
                // container finds its data again.
                let digest = mooring_core::hash::sha256_hex(target.as_bytes());
                let name = format!("{project}_{service}_anon_{}", &digest[..12]);
                anonymous.push(Volume {
                    name: name.clone(),
                    anonymous: true,
                    ..Volume::default()
                });
                Ok(MountOrTmpfs::Mount(Mount {
                    kind: MountKind::Volume,
                    source: name,
                    target,
                    read_only,
                    bind: None,
                    volume,
                    from_repository: false,
                }))
            }
            ("volume", Some(source)) => {
                let vol = volumes.get(&source).ok_or_else(|| err(n, format!("{what}: volume `{source}` is not declared under the top-level `volumes`")))?;
                Ok(MountOrTmpfs::Mount(Mount {
                    kind: MountKind::Volume,
                    source: vol.name.clone(),
                    target,
                    read_only,
                    bind: None,
                    volume,
                    from_repository: false,
                }))
            }
            ("bind", Some(source)) => {
                let (host, from_repository) = self.bind_source(n, &source, what, repo_files)?;
                // An encrypted repository file is copied in decrypted, as a secret is:
                // its plaintext never lands on the host.
                if from_repository && Path::new(&host).is_file() {
                    if let Some(content) = self.snapshot.read_encrypted(Path::new(&host))? {
                        repo_files.pop();
                        self.notes.push(format!(
                            "{what}: {source} is encrypted: it is copied into the container decrypted at {target}, not bind-mounted ({})",
                            n.pos
                        ));
                        return Ok(MountOrTmpfs::Inline(InlineFile {
                            target,
                            content,
                            uid: 0,
                            gid: 0,
                            mode: if read_only { 0o444 } else { 0o644 },
                            origin: format!("file {source}"),
                        }));
                    }
                }
                Ok(MountOrTmpfs::Mount(Mount {
                    kind: MountKind::Bind,
                    source: host,
                    target,
                    read_only,
                    bind,
                    volume: None,
                    from_repository,
                }))
            }
            ("bind", None) => Err(err(n, format!("{what}: a bind mount needs `source`"))),
            (other, _) => Err(err(
                n,
                format!(
                    "{what}: mount type {other:?} is not supported (use volume, bind or tmpfs)"
                ),
            )),
        }
    }

    /// A service's `secrets` or `configs` (`section`): each one from a file becomes a
    /// read-only bind mount, each one from a value an inline file. Targets as Compose
    /// puts them: `/run/secrets/NAME` for secrets, `/NAME` for configs. On a Swarm,
    /// each is a Swarm object instead (see [`SwarmFile`]).
    fn file_refs(
        &mut self,
        n: &Node,
        what: &str,
        section: &str,
        into: &mut Into<'_>,
    ) -> Result<Vec<FileRef>, LoadError> {
        let (items, w) = items(n, what, section)?;
        let mut refs = Vec::new();
        for item in items {
            let r = file_ref(item, &w)?;
            let declared = if section == "secrets" {
                &self.files.secrets
            } else {
                &self.files.configs
            };
            let (declared_name, source) = declared.get(&r.source).cloned().ok_or_else(|| {
                err(
                    item,
                    format!(
                        "{w}: `{}` is not declared under the top-level `{section}`",
                        r.source
                    ),
                )
            })?;
            let target = r.container_path(section == "secrets");
            let id = |v: &Option<String>, k: &str| -> Result<u32, LoadError> {
                v.as_deref().map_or(Ok(0), |t| {
                    t.parse().map_err(|_| {
                        err(item, format!("{w}.{k} must be a numeric id, found {t:?}"))
                    })
                })
            };
            if self.swarm {
                let key = self.digest_key;
                into.swarm.push(swarm_file(
                    item,
                    &w,
                    (section, key.as_ref()),
                    &r,
                    declared_name,
                    source,
                )?);
                refs.push(r);
                continue;
            }
            match source {
                Source::File(path) => {
                    let (host, from_repository) =
                        self.bind_source(item, &path, &w, into.repo_files)?;
                    self.positions
                        .insert(format!("{what}.volumes.{target}"), item.pos.to_string());
                    into.mounts.push(Mount {
                        kind: MountKind::Bind,
                        source: host,
                        target,
                        read_only: true,
                        bind: None,
                        volume: None,
                        from_repository,
                    });
                }
                Source::External(_) => {
                    return Err(err(
                        item,
                        format!("{w}: `{}` is external, which only a Swarm has", r.source),
                    ))
                }
                Source::Value(value) => into.inline.push(InlineFile {
                    target,
                    content: value,
                    uid: id(&r.uid, "uid")?,
                    gid: id(&r.gid, "gid")?,
                    mode: r.mode.unwrap_or(0o444),
                    origin: format!("{} {}", section.trim_end_matches('s'), r.source),
                }),
            }
            refs.push(r);
        }
        Ok(refs)
    }

    /// Where a bind source lives on the host, and whether it comes from the repository.
    fn bind_source(
        &mut self,
        n: &Node,
        source: &str,
        what: &str,
        repo_files: &mut Vec<(String, PathBuf)>,
    ) -> Result<(String, bool), LoadError> {
        // `~` is the home folder of whoever renders, as with Compose: the shell's
        // HOME on the command line; for the daemon, only a HOME the app is given
        // (`pass_env: [HOME]` or `variables`).
        let expanded;
        let source = match source.strip_prefix('~') {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                let home = self.vars.get("HOME").filter(|h| h.starts_with('/')).ok_or_else(|| {
                    err(n, format!("{what}: {source} needs a home folder, and HOME is not set for this app (give it with `pass_env: [HOME]` or `variables`, or use an absolute path)"))
                })?;
                expanded = format!("{}{rest}", home.trim_end_matches('/'));
                expanded.as_str()
            }
            Some(_) => {
                return Err(err(n, format!("{what}: {source}: another user's home folder (~user) is not supported; use an absolute path")))
            }
            None => source,
        };
        if Path::new(source).is_absolute() {
            let p = normalize(Path::new(source));
            if p.starts_with(&self.snapshot.root) || self.protected.iter().any(|d| p.starts_with(d))
            {
                return Err(err(n, format!("{what}: absolute path {source} points into the repository or Mooring's data; use a path relative to the project folder")));
            }
            // The policy decides whether it may reach the host, and notes it.
            return Ok((p.to_string_lossy().to_string(), false));
        }
        let full = resolve_inside(&self.snapshot.root, &self.snapshot.project_dir, source)
            .map_err(|e| path_error(e, source, "bind path", Some(&n.pos)))?;
        let rel = full
            .strip_prefix(&self.snapshot.root)
            .unwrap_or(Path::new(""))
            .to_path_buf();
        repo_files.push((rel.to_string_lossy().to_string(), full.clone()));
        Ok((full.to_string_lossy().to_string(), true))
    }
}

/// Mount propagation modes.
const PROPAGATIONS: [&str; 6] = [
    "rprivate", "private", "rshared", "shared", "rslave", "slave",
];

/// `SOURCE:TARGET[:MODE]` (a bind when SOURCE starts with `.`, `/` or `~`, else a named
/// volume), or `TARGET` alone: an anonymous volume. MODE: `ro`/`rw`, `z`/`Z`, a
/// propagation, `nocopy`; `cached`, `delegated`, `consistent` change nothing on Linux.
fn short_syntax(n: &Node, text: &str, what: &str) -> Result<Entry, LoadError> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, ""),
        [s, t] => (Some(*s), *t, ""),
        [s, t, m] => (Some(*s), *t, *m),
        _ => {
            return Err(err(
                n,
                format!("{what}: invalid volume {text:?} (use SOURCE:TARGET[:MODE] or TARGET)"),
            ))
        }
    };
    let is_bind = source.is_some_and(|s| s.starts_with(['.', '/', '~']));
    let mut read_only = false;
    let mut bind = BindOptions::default();
    let mut nocopy = false;
    for opt in mode.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => read_only = true,
            "rw" | "cached" | "delegated" | "consistent" => {}
            "z" | "Z" if is_bind => bind.selinux = Some(opt.to_string()),
            p if is_bind && PROPAGATIONS.contains(&p) => bind.propagation = Some(p.to_string()),
            "nocopy" if !is_bind => nocopy = true,
            other => {
                return Err(err(
                    n,
                    format!(
                        "{what}: volume option {other:?} is not valid here (ro, rw; for binds z, Z, {}; for volumes nocopy)",
                        PROPAGATIONS.join(", ")
                    ),
                ))
            }
        }
    }
    Ok(Entry {
        kind: if is_bind { "bind" } else { "volume" }.to_string(),
        source: source.map(str::to_string),
        target: target.to_string(),
        read_only,
        bind: (bind != BindOptions::default()).then_some(bind),
        volume: nocopy.then_some(VolumeOptions { nocopy }),
        tmpfs: None,
    })
}

/// The long syntax: `type`, `source`, `target`, `read_only`, `consistency`, and
/// `bind` (`propagation`, `create_host_path`, `selinux`), `volume` (`nocopy`),
/// `tmpfs` (`size`, `mode`).
/// A `type: tmpfs` mount (`TARGET[:size=N,mode=OCTAL]`) as Compose prints it: the size
/// in bytes as a string, the mode as a (decimal) number.
fn tmpfs_as_compose_prints(tmpfs: &str) -> serde_json::Value {
    use serde_json::{json, Map};
    let (target, opts) = tmpfs.split_once(':').unwrap_or((tmpfs, ""));
    let mut options = Map::new();
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        match opt.split_once('=') {
            Some(("size", n)) => options.insert("size".into(), json!(n)),
            Some(("mode", m)) => options.insert(
                "mode".into(),
                json!(u32::from_str_radix(m, 8).unwrap_or_default()),
            ),
            _ => None,
        };
    }
    let mut out = json!({"type": "tmpfs", "target": target});
    if !options.is_empty() {
        out["tmpfs"] = serde_json::Value::Object(options);
    }
    out
}

fn long_syntax(n: &Node, what: &str) -> Result<Entry, LoadError> {
    check_keys(
        n,
        what,
        &[
            "type",
            "source",
            "target",
            "read_only",
            "consistency",
            "bind",
            "volume",
            "tmpfs",
        ],
    )?;
    let kind = n
        .get("type")
        .map(|t| string(t, what))
        .transpose()?
        .unwrap_or_else(|| "volume".into());
    let target = string(
        n.get("target")
            .ok_or_else(|| err(n, format!("{what}: `target` is required")))?,
        what,
    )?;
    let text = |node: &Node, k: &str, w: &str| {
        node.get(k)
            .map(|v| string(v, &format!("{w}.{k}")))
            .transpose()
    };
    let mut bind = None;
    if let Some(b) = n.get("bind") {
        let bw = format!("{what}.bind");
        check_keys(b, &bw, &["propagation", "create_host_path", "selinux"])?;
        if let Some(c) = b.get("create_host_path") {
            boolean(c, &format!("{bw}.create_host_path"))?;
        }
        let options = BindOptions {
            propagation: text(b, "propagation", &bw)?,
            selinux: text(b, "selinux", &bw)?,
        };
        if let Some(p) = options
            .propagation
            .as_deref()
            .filter(|p| !PROPAGATIONS.contains(p))
        {
            return Err(err(
                b,
                format!(
                    "{bw}.propagation: {p:?} is not one of {}",
                    PROPAGATIONS.join(", ")
                ),
            ));
        }
        if let Some(z) = options
            .selinux
            .as_deref()
            .filter(|z| !matches!(*z, "z" | "Z"))
        {
            return Err(err(b, format!("{bw}.selinux: {z:?} is not z or Z")));
        }
        bind = (options != BindOptions::default()).then_some(options);
    }
    let mut volume = None;
    if let Some(v) = n.get("volume") {
        let vw = format!("{what}.volume");
        check_keys(v, &vw, &["nocopy", "subpath"])?;
        if let Some(sp) = v.get("subpath") {
            return Err(err(sp, format!("{vw}.subpath needs Docker Engine API 1.45; this Mooring speaks API 1.41 — mount the volume and use the sub-folder's path instead")));
        }
        let nocopy = v
            .get("nocopy")
            .map(|b| boolean(b, &format!("{vw}.nocopy")))
            .transpose()?
            .unwrap_or(false);
        volume = nocopy.then_some(VolumeOptions { nocopy });
    }
    let mut tmpfs = None;
    if let Some(t) = n.get("tmpfs") {
        let tw = format!("{what}.tmpfs");
        check_keys(t, &tw, &["size", "mode"])?;
        let mut opts = Vec::new();
        if let Some(size) = t.get("size") {
            let text = string(size, &format!("{tw}.size"))?;
            let bytes = super::resources::memory_bytes(&text).ok_or_else(|| {
                err(
                    size,
                    format!("{tw}.size: invalid size {text:?} (use e.g. 64m)"),
                )
            })?;
            opts.push(format!("size={bytes}"));
        }
        if let Some(mode) = t.get("mode") {
            let m = mode
                .text()
                .and_then(|m| {
                    m.strip_prefix("0o")
                        .map(|o| u32::from_str_radix(o, 8).ok())
                        .unwrap_or_else(|| m.parse::<u32>().ok())
                })
                .ok_or_else(|| {
                    err(
                        mode,
                        format!("{tw}.mode must be a file mode (e.g. 0o1777 or 1023)"),
                    )
                })?;
            opts.push(format!("mode={m:o}"));
        }
        tmpfs = (!opts.is_empty()).then(|| opts.join(","));
    }
    let source = n.get("source").map(|s| string(s, what)).transpose()?;
    let read_only = n
        .get("read_only")
        .map(|r| boolean(r, what))
        .transpose()?
        .unwrap_or(false);
    Ok(Entry {
        kind,
        source,
        target,
        read_only,
        bind,
        volume,
        tmpfs,
    })
}

/// One reference of a service's (or a build's) `secrets` or `configs`: a name, or a
/// mapping with `source`, `target`, `uid`, `gid` and `mode`.
pub(super) fn file_ref(item: &Node, w: &str) -> Result<FileRef, LoadError> {
    Ok(match &item.value {
        Value::Map(_) => {
            check_keys(item, w, &["source", "target", "uid", "gid", "mode"])?;
            let text = |k: &str| {
                item.get(k)
                    .map(|v| string(v, &format!("{w}.{k}")))
                    .transpose()
            };
            let mode = match item.get("mode") {
                None => None,
                Some(m) => Some(
                    m.text()
                        .and_then(|t| {
                            let t = t.strip_prefix("0o").unwrap_or(t);
                            u32::from_str_radix(t, 8).ok()
                        })
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| {
                            err(
                                m,
                                format!("{w}.mode must be an octal file mode (e.g. 0400)"),
                            )
                        })?,
                ),
            };
            FileRef {
                source: text("source")?
                    .ok_or_else(|| err(item, format!("{w}: `source` is required")))?,
                target: text("target")?,
                uid: text("uid")?,
                gid: text("gid")?,
                mode,
            }
        }
        _ => FileRef {
            source: string(item, w)?,
            ..FileRef::default()
        },
    })
}
