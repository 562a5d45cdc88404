//! Swarm benchmark (not a test): a stack of SERVICES services (two replicas each) on a
//! real three-node Swarm (`mooring_testkit::swarm`), deployed by Mooring's daemon
//! (`mode: swarm`, a sync asked through the API) and by `docker stack deploy` in the
//! same run, both over TCP with TLS to the manager: cold (from the request to every
//! task running, and its own share: to every task made, from the manager's
//! timestamps) and no-op (a second deploy of the same files). Run as root
//! (namespaces):
//!
//! `cargo build --release -p mooring --bin mooring && cargo run --release -p mooring-bench --bin swarm -- [SERVICES] [RUNS]`
//!
//! Targets (issue 17): cold ≤ 0.9× `docker stack deploy`, no-op ≤ 0.1×.

use mooring_testkit::engine::RemoteEngine;
use mooring_testkit::swarm::Swarm;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let services: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let mooring = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/mooring");
    assert!(
        mooring.exists(),
        "build it first: cargo build --release -p mooring --bin mooring"
    );
    let swarm = Swarm::start(2);
    let m = swarm.manager();
    let dir = tempfile::tempdir().unwrap();
    let compose = (0..services).fold(String::from("version: \"3.8\"\nservices:\n"), |out, i| {
        out + &format!(
            "  s{i}:\n    image: {}\n    init: true\n    command: [\"sleep\", \"3600\"]\n    environment: {{ N: \"{i}\" }}\n    deploy: {{ replicas: 2 }}\n",
            mooring_testkit::docker::IMAGE
        )
    });
    // One app per run (auto-sync off: each is deployed when the benchmark asks).
    let port = mooring_testkit::git::free_port();
    let mut config = format!(
        "server: {{ listen: 127.0.0.1:{port}, data_dir: ./state }}\nhosts:\n{}    mode: swarm\napps:\n",
        m.host_yaml("cluster")
    );
    for r in 0..runs {
        let app = dir.path().join(format!("m{r}"));
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(app.join("compose.yaml"), &compose).unwrap();
        config += &format!(
            "  - name: m{r}\n    host: cluster\n    source: {{ dir: {} }}\n    sync: {{ auto: false, self_heal: false, interval: 1h }}\n",
            app.display()
        );
    }
    std::fs::write(dir.path().join("compose.yaml"), &compose).unwrap();
    let cfg = dir.path().join("mooring.yaml");
    std::fs::write(&cfg, config).unwrap();
    let token = String::from_utf8(
        Command::new(&mooring)
            .args(["token", "create", "--role", "admin", "--config"])
            .arg(&cfg)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let mut daemon = Command::new(&mooring)
        .args(["serve", "--config"])
        .arg(&cfg)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let api = format!("http://127.0.0.1:{port}");
    let sync = |app: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match ureq::post(&format!("{api}/api/v1/apps/{app}/sync"))
                .set("authorization", &format!("Bearer {token}"))
                .send_string("{}")
            {
                Ok(_) => return,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("sync {app}: {e}"),
            }
        }
    };
    let compose_file = dir.path().join("compose.yaml");
    let (mut cold_m, mut cold_d, mut noop_m, mut noop_d) = (vec![], vec![], vec![], vec![]);
    let (mut made_m, mut made_d) = (vec![], vec![]);
    for r in 0..runs {
        // Each starts on an idle Swarm (the other's tasks gone), and they take turns
        // going first.
        let peer = |cold: &mut Vec<u128>, made: &mut Vec<u128>, noop: &mut Vec<u128>| {
            let stack = format!("peer{r}");
            let (t, wall) = (Instant::now(), now_ns());
            stack_deploy(m, &compose_file, &stack);
            converged(m, &stack, services);
            cold.push(t.elapsed().as_millis());
            made.push(timeline(m, &stack, wall));
            let t = Instant::now();
            stack_deploy(m, &compose_file, &stack);
            noop.push(t.elapsed().as_millis());
            remove_stack(&swarm, &stack);
        };
        let ours = |cold: &mut Vec<u128>, made: &mut Vec<u128>, noop: &mut Vec<u128>| {
            let app = format!("m{r}");
            let (t, wall) = (Instant::now(), now_ns());
            sync(&app);
            converged(m, &app, services);
            cold.push(t.elapsed().as_millis());
            made.push(timeline(m, &app, wall));
            let t = Instant::now();
            sync(&app);
            noop.push(t.elapsed().as_millis());
            remove_stack(&swarm, &app);
        };
        if r % 2 == 0 {
            peer(&mut cold_d, &mut made_d, &mut noop_d);
            ours(&mut cold_m, &mut made_m, &mut noop_m);
        } else {
            ours(&mut cold_m, &mut made_m, &mut noop_m);
            peer(&mut cold_d, &mut made_d, &mut noop_d);
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let _ = daemon.wait();
    let med = |v: &mut Vec<u128>| {
        v.sort();
        v[v.len() / 2]
    };
    let (cm, cd, nm, nd) = (
        med(&mut cold_m),
        med(&mut cold_d),
        med(&mut noop_m),
        med(&mut noop_d),
    );
    println!(
        "a stack of {services} services (2 replicas each) on a 3-node Swarm, {runs} runs, medians (ms)"
    );
    println!("{:<36} {:>8} {:>8}", "", "mooring", "docker");
    println!(
        "{:<36} {:>8} {:>8}",
        "cold: every task created (its share)",
        med(&mut made_m),
        med(&mut made_d)
    );
    println!("{:<36} {:>8} {:>8}", "cold (to every task running)", cm, cd);
    println!("{:<36} {:>8} {:>8}", "no-op (the same files again)", nm, nd);
    println!(
        "ratio cold = {:.3} (target <= 0.9), no-op = {:.3} (target <= 0.1)",
        cm as f64 / cd as f64,
        nm as f64 / nd as f64
    );
}

/// `docker stack deploy` over the same road Mooring takes: TCP with TLS to the manager.
fn stack_deploy(m: &RemoteEngine, compose: &Path, stack: &str) {
    let out = Command::new("docker")
        .args(["--tlsverify", "-H", &m.tcp(), "stack", "deploy", "-c"])
        .arg(compose)
        .arg(stack)
        .envs(m.cli_env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker stack deploy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128
}

/// When (ms after the request, on this machine's clock, which the manager's is) the
/// stack's services were made, its tasks made, and its tasks running — the first and
/// last of each, printed —; the last task's making returned: the deployer's own share
/// of a cold deploy, the rest being Swarm's.
fn timeline(m: &RemoteEngine, stack: &str, start: i128) -> u128 {
    let ms = |ns: &str| (ns.trim().parse::<i128>().unwrap_or(0) - start) / 1_000_000;
    let span = |v: &[i128]| {
        (
            v.iter().copied().min().unwrap_or(0),
            v.iter().copied().max().unwrap_or(0),
        )
    };
    let services = m.docker(&[
        "service",
        "ls",
        "-q",
        "--filter",
        &format!("label=com.docker.stack.namespace={stack}"),
    ]);
    let mut args = vec!["service", "inspect", "--format", "{{.CreatedAt.UnixNano}}"];
    args.extend(services.lines());
    let created: Vec<i128> = m.docker(&args).lines().map(ms).collect();
    let tasks = m.docker(&[
        "stack",
        "ps",
        "-q",
        "--filter",
        "desired-state=running",
        stack,
    ]);
    let mut args = vec![
        "inspect",
        "--format",
        "{{.CreatedAt.UnixNano}} {{.Status.Timestamp.UnixNano}}",
    ];
    args.extend(tasks.lines());
    let (mut made, mut running) = (vec![], vec![]);
    for l in m.docker(&args).lines() {
        let (a, b) = l.split_once(' ').unwrap_or((l, l));
        made.push(ms(a));
        running.push(ms(b));
    }
    let (created, made, running) = (span(&created), span(&made), span(&running));
    eprintln!(
        "{stack}: services made {}..{} ms, tasks made {}..{} ms, running {}..{} ms",
        created.0, created.1, made.0, made.1, running.0, running.1
    );
    made.1.max(0) as u128
}

/// Waits until each of the stack's `services` services runs all its tasks.
fn converged(m: &RemoteEngine, stack: &str, services: usize) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let ls = m.docker(&[
            "service",
            "ls",
            "--filter",
            &format!("label=com.docker.stack.namespace={stack}"),
            "--format",
            "{{.Replicas}}",
        ]);
        let done = ls
            .lines()
            .filter(|l| {
                let (a, b) = l.split_once('/').unwrap_or(("", "-"));
                a == b.split_whitespace().next().unwrap_or("-")
            })
            .count();
        if done == services {
            return;
        }
        assert!(Instant::now() < deadline, "{stack} did not converge: {ls}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Removes a stack's services (Mooring's: the app's auto-sync is off, nothing puts
/// them back) and waits until no node runs a task of it.
fn remove_stack(swarm: &Swarm, stack: &str) {
    let m = swarm.manager();
    let ids = m.docker(&[
        "service",
        "ls",
        "-q",
        "--filter",
        &format!("label=com.docker.stack.namespace={stack}"),
    ]);
    let ids: Vec<&str> = ids.lines().collect();
    if !ids.is_empty() {
        let mut args = vec!["service", "rm"];
        args.extend(ids);
        m.docker(&args);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while swarm.nodes.iter().any(|n| {
        !n.docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.stack.namespace={stack}"),
        ])
        .trim()
        .is_empty()
    }) {
        assert!(Instant::now() < deadline, "the tasks of {stack} did not go");
        std::thread::sleep(Duration::from_millis(100));
    }
}
