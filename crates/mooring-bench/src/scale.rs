//! Scale benchmark (not a test): 1,000 apps of 10 services each, all on one Git
//! repository, reconciled by Mooring's real pipeline — one shared fetch, per-app
//! check-out and render, observe → plan → apply with 4 workers — against a
//! **simulated Docker host** (an in-memory `Host`: no containers run; it answers as
//! Docker's inspect would, so the numbers are Mooring's own costs).
//!
//! `cargo run --release -p mooring-bench --bin scale -- [APPS] [SERVICES] [LATENCY_MS]`
//!
//! Prints: first deploy, then one shared commit that changes every app: fetch, render,
//! reconcile times, actions, and peak memory (VmHWM).

use futures_util::stream::{self, StreamExt};
use mooring_core::hash::spec_hash;
use mooring_core::{
    ContainerState, Live, LiveContainer, LiveNetwork, LiveVolume, Project, Service,
};
use mooring_docker::{reconcile, Host, ProviderError, ReconcileOptions};
use mooring_render::{render, RenderRequest, Rendered};
use mooring_vcs::{Cache, SourceSpec};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The simulated Docker host: state in memory, optional per-call latency.
struct SimulatedHost {
    state: Mutex<SimState>,
    latency: Duration,
}

#[derive(Default)]
struct SimState {
    /// app → containers.
    containers: HashMap<String, BTreeMap<String, LiveContainer>>,
    networks: BTreeMap<String, LiveNetwork>,
    volumes: BTreeMap<String, LiveVolume>,
    calls: u64,
}

impl SimulatedHost {
    async fn call(&self) {
        self.state.lock().unwrap().calls += 1;
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }
}

fn live_of(svc: &Service, name: &str) -> LiveContainer {
    LiveContainer {
        id: format!("sim-{name}"),
        name: name.to_string(),
        service: Some(svc.name.clone()),
        spec_hash: Some(spec_hash(svc)),
        spec: None,
        files_hash: svc.files_hash.clone(),
        files: Default::default(),
        state: ContainerState::Running,
        exit_code: Some(0),
        health: None,
        image_ref: svc.image.clone(),
        image_id: "sha256:sim".into(),
        restart: svc.restart.clone(),
        memory: svc.memory.unwrap_or(0),
        nano_cpus: svc.nano_cpus.unwrap_or(0),
        env: svc
            .environment
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        restart_count: 0,
        updatable: Default::default(),
    }
}

impl Host for SimulatedHost {
    async fn observe(&self, project: &Project) -> Result<Live, ProviderError> {
        self.call().await;
        let s = self.state.lock().unwrap();
        Ok(Live {
            containers: s
                .containers
                .get(&project.name)
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default(),
            networks: project
                .networks
                .values()
                .filter_map(|n| s.networks.get(&n.name).map(|l| (n.name.clone(), l.clone())))
                .collect(),
            volumes: project
                .volumes
                .values()
                .filter_map(|v| s.volumes.get(&v.name).map(|l| (v.name.clone(), l.clone())))
                .collect(),
            images: project
                .services
                .values()
                .map(|s| (s.image.clone(), "sha256:sim".to_string()))
                .collect(),
            image_builds: project
                .services
                .values()
                .filter_map(|s| Some((s.image.clone(), s.build.as_ref()?.inputs.clone())))
                .collect(),
        })
    }
    async fn container(&self, id: &str) -> Result<Option<LiveContainer>, ProviderError> {
        self.call().await;
        let s = self.state.lock().unwrap();
        Ok(s.containers
            .values()
            .find_map(|m| m.values().find(|c| c.id == id || c.name == id).cloned()))
    }
    async fn create_network(&self, project: &Project, name: &str) -> Result<(), ProviderError> {
        self.call().await;
        let net = LiveNetwork {
            name: name.into(),
            id: name.into(),
            driver: "bridge".into(),
            labels: app_label(project),
        };
        self.state.lock().unwrap().networks.insert(name.into(), net);
        Ok(())
    }
    async fn remove_network(&self, name: &str) -> Result<(), ProviderError> {
        self.call().await;
        self.state.lock().unwrap().networks.remove(name);
        Ok(())
    }
    async fn disconnect_all(&self, _: &str) -> Result<(), ProviderError> {
        self.call().await;
        Ok(())
    }
    async fn create_volume(&self, project: &Project, name: &str) -> Result<(), ProviderError> {
        self.call().await;
        let vol = LiveVolume {
            name: name.into(),
            driver: "local".into(),
            options: BTreeMap::new(),
            labels: app_label(project),
        };
        self.state.lock().unwrap().volumes.insert(name.into(), vol);
        Ok(())
    }
    async fn pull_image(
        &self,
        _: &str,
        _: Option<&str>,
        _: &(dyn Fn(&str) + Sync),
    ) -> Result<(), ProviderError> {
        self.call().await;
        Ok(())
    }
    async fn build_image(
        &self,
        _: &Project,
        svc: &Service,
        _: &(dyn Fn(&str) + Sync),
    ) -> Result<String, ProviderError> {
        self.call().await;
        Ok(format!("simulated build of {}", svc.image))
    }
    async fn create_container(
        &self,
        project: &Project,
        svc: &Service,
        replica: u32,
    ) -> Result<(), ProviderError> {
        self.call().await;
        let name = &project.replica_name(&svc.name, replica);
        let c = live_of(svc, name);
        self.state
            .lock()
            .unwrap()
            .containers
            .entry(project.name.clone())
            .or_default()
            .insert(name.to_string(), c);
        Ok(())
    }
    async fn start_container(&self, _: &str) -> Result<(), ProviderError> {
        self.call().await;
        Ok(())
    }
    async fn remove_container(&self, id: &str, _: Option<i64>) -> Result<(), ProviderError> {
        self.call().await;
        for m in self.state.lock().unwrap().containers.values_mut() {
            m.retain(|_, c| c.id != id);
        }
        Ok(())
    }
    async fn backup_volume(
        &self,
        _: &Project,
        volume: &str,
        _: &Path,
        _: mooring_docker::BackupWhy<'_>,
        _: bool,
    ) -> Result<String, ProviderError> {
        self.call().await;
        Ok(format!("sim-backup-{volume}"))
    }
    async fn remove_volume(&self, name: &str) -> Result<(), ProviderError> {
        self.call().await;
        self.state.lock().unwrap().volumes.remove(name);
        Ok(())
    }
    async fn restore_volume(
        &self,
        _: &Project,
        _: &str,
        _: &str,
        _: &Path,
        _: bool,
    ) -> Result<(), ProviderError> {
        self.call().await;
        Ok(())
    }
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "b")
        .env("GIT_AUTHOR_EMAIL", "b@b")
        .env("GIT_COMMITTER_NAME", "b")
        .env("GIT_COMMITTER_EMAIL", "b@b")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .status()
        .expect("git")
        .success();
    assert!(ok, "git {args:?}");
}

fn write_apps(work: &Path, apps: usize, services: usize, version: u32) {
    for a in 0..apps {
        let dir = work.join(format!("apps/a{a}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut text = format!("name: sim-a{a}\nservices:\n");
        for s in 0..services {
            text.push_str(&format!(
                "  s{s}:\n    image: mooring.local/busybox:latest\n    command: [sleep, \"3600\"]\n    environment:\n      VERSION: \"{version}\"\n      INDEX: \"{s}\"\n    restart: unless-stopped\n"
            ));
        }
        std::fs::write(dir.join("compose.yaml"), text).unwrap();
    }
}

fn peak_rss_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

async fn round(
    label: &str,
    cache: &Cache,
    data: &Path,
    spec: &SourceSpec,
    host: &SimulatedHost,
    apps: usize,
) {
    let t = Instant::now();
    let revision = cache.fetch(spec).expect("fetch");
    let fetch = t.elapsed();
    let t = Instant::now();
    let rendered: Vec<Rendered> = (0..apps)
        .map(|a| {
            let path = format!("apps/a{a}");
            render(RenderRequest {
                data_dir: data,
                cache,
                spec,
                revision: &revision,
                path: &path,
                files: &[],
                app: None,
                host: None,
                swarm: false,
                environment: BTreeMap::new(),
                policy: &mooring_core::Policy::default(),
                protected: &[],
                decrypter: None,
            })
            .expect("render")
        })
        .collect();
    let render_time = t.elapsed();
    let calls_before = host.state.lock().unwrap().calls;
    let t = Instant::now();
    let options = ReconcileOptions {
        prune: true,
        ..Default::default()
    };
    let actions: usize = stream::iter(rendered.iter())
        .map(|r| {
            let options = options.clone();
            async move {
                reconcile(host, &r.project, options, &|| r.materialize(), &|_| {})
                    .await
                    .expect("reconcile")
                    .results
                    .len()
            }
        })
        .buffer_unordered(4)
        .fold(0, |acc, n| async move { acc + n })
        .await;
    let reconcile_time = t.elapsed();
    let calls = host.state.lock().unwrap().calls - calls_before;
    println!(
        "{label}: fetch {:.0} ms · check-out+render {apps} apps {:.0} ms · reconcile {:.0} ms ({actions} actions, {calls} host calls) · total {:.1} s · peak RSS {} MB",
        fetch.as_secs_f64() * 1e3,
        render_time.as_secs_f64() * 1e3,
        reconcile_time.as_secs_f64() * 1e3,
        (fetch + render_time + reconcile_time).as_secs_f64(),
        peak_rss_mb()
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let apps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let services: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let latency = Duration::from_millis(args.next().and_then(|a| a.parse().ok()).unwrap_or(0));
    let tmp = tempfile::tempdir().unwrap();
    let (work, bare, data) = (
        tmp.path().join("work"),
        tmp.path().join("repo.git"),
        tmp.path().join("data"),
    );
    std::fs::create_dir_all(&work).unwrap();
    git(
        tmp.path(),
        &["init", "-q", "--bare", bare.to_str().unwrap()],
    );
    git(&work, &["init", "-q", "-b", "main"]);
    write_apps(&work, apps, services, 1);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-qm", "first"]);
    git(&work, &["push", "-q", bare.to_str().unwrap(), "HEAD:main"]);
    println!("scale simulation: {apps} apps × {services} services on one Git repository, simulated Docker host (latency {} ms per call), 4 workers", latency.as_millis());
    let cache = Cache::new(&data);
    let spec = SourceSpec::Git {
        url: format!("file://{}", bare.display()),
        reference: Some("main".into()),
    };
    let host = SimulatedHost {
        state: Mutex::new(SimState::default()),
        latency,
    };
    round("first deploy", &cache, &data, &spec, &host, apps).await;
    round("no change", &cache, &data, &spec, &host, apps).await;
    write_apps(&work, apps, services, 2);
    git(&work, &["commit", "-qam", "shared change"]);
    git(&work, &["push", "-q", bare.to_str().unwrap(), "HEAD:main"]);
    round("one shared commit", &cache, &data, &spec, &host, apps).await;
}

/// The label that makes a simulated volume or network the app's, as Docker's would be.
fn app_label(project: &Project) -> BTreeMap<String, String> {
    BTreeMap::from([(mooring_core::labels::APP.to_string(), project.name.clone())])
}
