//! Read queries: a diff (a dry run), the resource tree, revision info, backups and
//! data volumes. None of them waits for a running sync.

use super::error::{OperationError, RevisionRefused, SourceFailure};
use super::{AppHandle, ControlError, Controller, Diff, Trigger, TriggerKind};
use crate::failure::OperationFailure;
use mooring_core::ResourceTree;
use mooring_docker::reconcile;
use mooring_docker::Host;
use mooring_vcs::{Revision, RevisionInfo, SourceError};

impl Controller {
    /// What `asked` (a branch, tag, commit id…) is for the app, if the app may deploy it:
    /// fetched, and in the history of the configured ref or named by `allow_refs`.
    /// Nothing is deployed or recorded. A revision that does not exist, or that the app
    /// may not deploy, is [`OperationFailure::Invalid`]; a source that cannot be reached,
    /// [`OperationFailure::Source`].
    pub async fn resolve_revision(
        &self,
        name: &str,
        asked: &str,
    ) -> Result<Revision, ControlError> {
        let app = self
            .apps
            .get(name)
            .ok_or_else(|| ControlError::UnknownApp(name.to_string()))?;
        let not_there = |e: &SourceFailure| {
            matches!(
                e,
                SourceFailure::NoHistory { .. }
                    | SourceFailure::Source(
                        SourceError::RefNotFound { .. }
                            | SourceError::CommitNotFound { .. }
                            | SourceError::InvalidRevision { .. }
                            | SourceError::PathNotFound { .. }
                    )
            )
        };
        let revision = self.fetch_revision(app, asked).await.map_err(|e| {
            if not_there(&e) {
                OperationFailure::Invalid(format!("revision {asked}: {e}"))
            } else {
                OperationError::from(e).failure()
            }
        })?;
        self.allowed_revision(app, asked, &revision)
            .await
            .map_err(|e| match e {
                RevisionRefused::Source(s) if !not_there(&s) => OperationError::from(s).failure(),
                other => OperationFailure::Invalid(other.to_string()),
            })?;
        Ok(revision)
    }

    /// The plan a sync would execute now (a dry run), after rendering the revision a
    /// sync would deploy — or `asked` (a branch, tag or commit the app may deploy: what
    /// a sync to that revision, or a rollback to it, would do).
    pub async fn diff(&self, name: &str, asked: Option<&str>) -> Result<Diff, ControlError> {
        let app = self
            .apps
            .get(name)
            .ok_or_else(|| ControlError::UnknownApp(name.to_string()))?;
        let revision = match asked {
            Some(asked) => self.resolve_revision(name, asked).await?,
            None => {
                let pinned = self.store.app(name).ok().flatten().and_then(|s| s.pinned);
                self.target_revision(app, &Trigger::of(TriggerKind::Api), pinned.as_deref())
                    .await
                    .map_err(|e| OperationError::from(e).failure())?
            }
        };
        let rendered = self
            .rendered(app, &revision)
            .await
            .map_err(|e| OperationFailure::Invalid(e.message))?;
        let provider = self
            .providers
            .get(&app.config.host)
            .ok_or_else(|| OperationError::NotConnected(app.config.host.clone()).failure())?;
        let mut options = self.reconcile_options(app, true);
        // As the sync a person asks for: a Swarm's images all asked of their registries.
        options.resolve_images = true;
        let swarm = self
            .config
            .hosts
            .get(&app.config.host)
            .is_some_and(|h| h.swarm);
        let outcome = if swarm {
            // The stack's plan: what a sync to a Swarm manager does (and its digest).
            mooring_docker::stack::reconcile(
                provider,
                &rendered.project,
                &options,
                &|| Ok(()),
                &|_| {},
            )
            .await
        } else {
            reconcile(provider, &rendered.project, options, &|| Ok(()), &|_| {}).await
        }
        .map_err(|e| OperationError::from(e).failure())?;
        // Secret and marked environment values never leave the daemon in clear.
        let mut comparisons = mooring_core::compare(&rendered.project, &outcome.live);
        mooring_core::view::agree_with_plan(&mut comparisons, &outcome.plan);
        app.config
            .env
            .masking()
            .for_project(&rendered.project)
            .apply(&mut comparisons);
        Ok(Diff {
            comparisons,
            plan: outcome.plan,
            revision,
        })
    }

    /// Reads who made `revision`, when and why, unless already known.
    pub(super) async fn learn_revision_info(&self, app: &AppHandle, revision: &str) {
        let known = app
            .revision_info
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|(id, _)| id == revision);
        if known {
            return;
        }
        let (cache, spec) = (app.source.cache.clone(), app.spec.clone());
        let rev = Revision {
            id: revision.to_string(),
            describe: String::new(),
            tree: None,
        };
        let info = tokio::task::spawn_blocking(move || cache.revision_info(&spec, &rev)).await;
        match info {
            Ok(Ok(info)) => {
                *app.revision_info.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((revision.to_string(), info));
            }
            Ok(Err(e)) => {
                tracing::debug!(app = %app.config.name, error = %e, "no revision info")
            }
            Err(e) => tracing::debug!(app = %app.config.name, error = %e, "no revision info"),
        }
    }

    /// The first line of each of `revisions`' messages (those the app's source can
    /// read; each read once, then kept).
    pub async fn revision_subjects(
        &self,
        name: &str,
        revisions: &[&str],
    ) -> std::collections::BTreeMap<String, String> {
        let Some(app) = self.apps.get(name) else {
            return Default::default();
        };
        let missing: Vec<String> = {
            let known = app.revisions.lock().unwrap_or_else(|e| e.into_inner());
            let mut m: Vec<String> = revisions
                .iter()
                .filter(|r| !known.contains_key(**r))
                .map(|r| r.to_string())
                .collect();
            m.sort_unstable();
            m.dedup();
            m
        };
        if !missing.is_empty() {
            let (cache, spec) = (app.source.cache.clone(), app.spec.clone());
            let read = tokio::task::spawn_blocking(move || {
                missing
                    .into_iter()
                    .map(|id| {
                        let rev = Revision {
                            id,
                            describe: String::new(),
                            tree: None,
                        };
                        let info = cache.revision_info(&spec, &rev).ok();
                        (rev.id, info)
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            let mut known = app.revisions.lock().unwrap_or_else(|e| e.into_inner());
            if known.len() + read.len() > super::REVISIONS_KEPT {
                known.clear();
            }
            known.extend(read);
        }
        let known = app.revisions.lock().unwrap_or_else(|e| e.into_inner());
        revisions
            .iter()
            .filter_map(|r| {
                let info = known.get(*r)?.as_ref()?;
                let subject = info.message.as_deref()?.lines().next()?;
                Some((r.to_string(), subject.to_string()))
            })
            .collect()
    }

    /// Author, time and message of the app's deployed revision, when known.
    pub fn revision_info(&self, name: &str) -> Option<(String, RevisionInfo)> {
        self.apps.get(name)?.revision_info.lock().ok()?.clone()
    }

    /// The app's backups, newest first: the manifests in the backups folder (the truth,
    /// whoever took them — the daemon or `mooring backup create`), mirrored into the
    /// store's catalogue first.
    pub async fn app_backups(
        &self,
        name: &str,
    ) -> Result<Vec<mooring_store::BackupRow>, ControlError> {
        let dir = self.config.server.data_dir.join("backups");
        let app = name.to_string();
        let rows = tokio::task::spawn_blocking(move || {
            mooring_backup::list(&dir).map(|records| {
                records
                    .into_iter()
                    .filter(|r| r.manifest.meta.app == app)
                    .map(|r| {
                        let m = r.manifest;
                        let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                        mooring_store::BackupRow {
                            id: r.id,
                            app: m.meta.app,
                            volume: m.meta.volume,
                            created_at: m.meta.created_at,
                            revision: m.meta.revision,
                            reason: m.meta.reason,
                            files: int(m.files),
                            bytes: int(m.bytes),
                            archive_size: int(m.archive_size),
                            archive_sha256: m.archive_sha256,
                            dump: m.meta.dump,
                        }
                    })
                    .collect::<Vec<_>>()
            })
        })
        .await??;
        self.store.mirror_backups(name, &rows)?;
        Ok(self.store.backups(name)?)
    }

    /// The app's volumes that its services mount read-write (data that may change).
    pub async fn data_volumes(&self, name: &str) -> Vec<String> {
        let Some(app) = self.apps.get(name) else {
            return vec![];
        };
        let rendered = app.last_render().rendered;
        let Some(r) = rendered else { return vec![] };
        let mut out: Vec<String> = r
            .project
            .services
            .values()
            .flat_map(|s| s.mounts.iter())
            .filter(|m| m.kind == mooring_core::MountKind::Volume && !m.read_only)
            .map(|m| m.source.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The app's resource tree with health and data policies (a fresh observation);
    /// `None` before its first render.
    pub async fn resources(&self, name: &str) -> Result<Option<ResourceTree>, ControlError> {
        let app = self
            .apps
            .get(name)
            .ok_or_else(|| ControlError::UnknownApp(name.to_string()))?;
        let rendered = app.last_render().rendered;
        let Some(rendered) = rendered else {
            return Ok(None);
        };
        let provider = self
            .providers
            .get(&app.config.host)
            .ok_or_else(|| ControlError::NotConnected(app.config.host.clone()))?;
        let policy = app.config.volumes;
        if self
            .config
            .hosts
            .get(&app.config.host)
            .is_some_and(|h| h.swarm)
        {
            // A stack: its services' tasks, through the manager.
            let nodes = self.reconcile_options(app, true).nodes;
            return Ok(Some(
                provider
                    .stack_tree(&rendered.project, policy, &nodes)
                    .await?,
            ));
        }
        let live = provider.observe(&rendered.project).await?;
        Ok(Some(mooring_core::resource_tree(
            &rendered.project,
            &live,
            policy,
        )))
    }

    /// Where the logs of the app's services are (or of `service` alone): the provider of
    /// its host and `(service, container)` pairs of its last rendered project.
    pub async fn log_sources(
        &self,
        name: &str,
        service: Option<&str>,
    ) -> Result<(mooring_docker::Provider, Vec<(String, String)>), ControlError> {
        let (app, provider) = self.app_on_host(name)?;
        let provider = provider.clone();
        let Some(rendered) = app.last_render().rendered else {
            return Ok((provider, Vec::new()));
        };
        let project = &rendered.project;
        let mut out = Vec::new();
        for svc in project.services.keys() {
            if service.is_none_or(|s| s == svc) {
                out.extend(
                    project
                        .replica_names(svc)
                        .into_iter()
                        .map(|c| (svc.clone(), c)),
                );
            }
        }
        if let (Some(s), true) = (service, out.is_empty()) {
            return Err(ControlError::Operation(
                crate::failure::OperationFailure::Invalid(format!(
                    "app {name} has no service {s} (its services: {})",
                    project
                        .services
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            ));
        }
        Ok((provider, out))
    }
}
