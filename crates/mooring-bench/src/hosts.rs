//! Many-hosts benchmark (not a test): push-to-converged of APPS apps (one service each,
//! one Git repository, a signed webhook) when they all run on one Docker host, against
//! the same apps spread over three hosts, and against three hosts of which one is
//! stopped (the other two hosts' apps). The hosts are real `dockerd`s in network
//! namespaces reached over TCP with TLS (`mooring_testkit::engine`); the daemon is the
//! release `mooring serve`. Run as root (namespaces):
//!
//! `cargo build --release -p mooring --bin mooring && cargo run --release -p mooring-bench --bin hosts -- [APPS] [RUNS]`
//!
//! Targets (issue 16): three hosts ≤ 1.2× one host; one host stopped: the others
//! ≤ 1.1× three hosts.

use hmac::{Hmac, Mac};
use mooring_testkit::engine::RemoteEngine;
use mooring_testkit::git::Repo;
use sha2::Sha256;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "bench-hush";

fn main() {
    let mut args = std::env::args().skip(1);
    let apps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let mooring = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/mooring");
    assert!(
        mooring.exists(),
        "build it first: cargo build --release -p mooring --bin mooring"
    );
    mooring_testkit::git::hermetic();
    let mut engines: Vec<RemoteEngine> = (0..3).map(RemoteEngine::start).collect();

    let one = scenario(&mooring, &engines, apps, runs, 1, "one");
    let three = scenario(&mooring, &engines, apps, runs, 3, "three");
    // Host c stopped: the apps of a and b.
    engines[2].stop();
    let degraded = scenario(&mooring, &engines, apps, runs, 3, "down");
    engines[2].restart();

    println!(
        "{apps} apps, {runs} runs, medians on {} cores (push → every app converged)",
        num_cpus()
    );
    println!("{:<44} {:>8}", "measure", "ms");
    println!("{:<44} {:>8}", "all apps on one host", one);
    println!("{:<44} {:>8}", "apps spread over three hosts", three);
    println!(
        "{:<44} {:>8}",
        "three hosts, one stopped (the other two's apps)", degraded
    );
    println!(
        "ratio three hosts / one host = {:.3} (target <= 1.2)",
        three as f64 / one as f64
    );
    println!(
        "ratio one stopped / three hosts = {:.3} (target <= 1.1)",
        degraded as f64 / three as f64
    );
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The median push-to-converged (ms) of `apps` apps spread over the first `hosts`
/// engines; with an engine stopped, only the apps of the running ones are waited for.
fn scenario(
    mooring: &Path,
    engines: &[RemoteEngine],
    apps: usize,
    runs: usize,
    hosts: usize,
    tag: &str,
) -> u128 {
    let repo = Repo::new(&format!("hosts-{tag}"));
    let names: Vec<String> = (0..apps).map(|i| format!("h{tag}{i}")).collect();
    let write = |greeting: &str| {
        for n in &names {
            repo.write(
                &format!("{n}/compose.yaml"),
                &format!(
                    "services:\n  web:\n    image: {}\n    init: true\n    command: [\"sleep\", \"3600\"]\n    environment: {{ GREETING: {greeting} }}\n",
                    mooring_testkit::docker::IMAGE
                ),
            );
        }
    };
    write("g0");
    let first = repo.commit("g0");
    let dir = tempfile::tempdir().unwrap();
    let port = mooring_testkit::git::free_port();
    let mut config = format!(
        "server: {{ listen: 127.0.0.1:{port}, data_dir: ./state, workers: 4 }}\nwebhooks:\n  generic: {{ secret: {SECRET} }}\nhosts:\n"
    );
    for (i, e) in engines.iter().enumerate().take(hosts) {
        config += &e.host_yaml(&format!("h{i}"));
    }
    config += "apps:\n";
    let host_of = |i: usize| i % hosts;
    for (i, n) in names.iter().enumerate() {
        config += &format!(
            "  - name: {n}\n    host: h{}\n    source: {{ git: {}, ref: main, path: {n} }}\n    sync: {{ interval: 1h }}\n",
            host_of(i),
            repo.file_url()
        );
    }
    let cfg = dir.path().join("mooring.yaml");
    std::fs::write(&cfg, config).unwrap();
    let token = String::from_utf8(
        Command::new(mooring)
            .args(["token", "create", "--role", "admin", "--config"])
            .arg(&cfg)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let mut daemon = Daemon(
        Command::new(mooring)
            .args(["serve", "--config"])
            .arg(&cfg)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let api = format!("http://127.0.0.1:{port}");
    let running: Vec<usize> = (0..apps)
        .filter(|i| tag != "down" || host_of(*i) != 2)
        .collect();
    let status = || -> Option<serde_json::Value> {
        ureq::get(&format!("{api}/api/v1/apps"))
            .set("authorization", &format!("Bearer {token}"))
            .call()
            .ok()?
            .into_json()
            .ok()
    };
    let converged = |revision: &str| {
        let Some(v) = status() else { return false };
        let list = v["apps"].as_array().cloned().unwrap_or_default();
        running.iter().all(|i| {
            list.iter().any(|a| {
                a["name"] == names[*i].as_str()
                    && a["revision"] == revision
                    && a["sync"] == "Synced"
            })
        })
    };
    wait(
        180,
        || converged(&first),
        || format!("{:#}", status().unwrap_or_default()),
    );
    let mut times = Vec::new();
    for r in 1..=runs {
        write(&format!("g{r}"));
        let commit = repo.commit(&format!("g{r}"));
        let start = Instant::now();
        push(&api, &repo.file_url());
        wait(
            300,
            || converged(&commit),
            || format!("{:#}", status().unwrap_or_default()),
        );
        times.push(start.elapsed().as_millis());
    }
    daemon.stop();
    for e in engines {
        if e.docker_command(&["version"])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            let ids = e.docker(&["ps", "-aq", "--filter", "label=io.mooring.app"]);
            let ids: Vec<&str> = ids.lines().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                e.docker(&args);
            }
            // The apps' networks too: an engine's default address pools hold 31.
            e.docker(&["network", "prune", "-f"]);
        }
    }
    times.sort();
    times[times.len() / 2]
}

struct Daemon(Child);

impl Daemon {
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

fn push(api: &str, url: &str) {
    let body = serde_json::json!({ "repository": url, "ref": "refs/heads/main" }).to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let sig: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let r = ureq::post(&format!("{api}/hooks/generic"))
        .set("x-mooring-signature", &format!("sha256={sig}"))
        .set(
            "x-mooring-delivery",
            &format!("bench-{}-{n}", std::process::id()),
        )
        .send_string(&body)
        .unwrap();
    assert_eq!(r.status(), 202);
}

fn wait(secs: u64, mut done: impl FnMut() -> bool, state: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "not converged within {secs}s: {}",
            state()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
