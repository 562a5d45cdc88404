//! The daemon end to end: a real `mooring serve` on loopback with its SQLite store in a
//! temp folder, Git repositories served by `git daemon`, the machine's Docker.

use crate::common::daemon::{wait_until, Server};
use crate::common::*;
use serde_json::{json, Value};
use std::fs;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn signed_generic(s: &Server, secret: &str, body: &str, delivery: &str, forge: bool) -> u16 {
    let sig = mooring_server::hooks::sign(if forge { "wrong" } else { secret }, body.as_bytes());
    let res = ureq::post(&s.url("/hooks/generic"))
        .set("x-mooring-signature", &format!("sha256={sig}"))
        .set("x-mooring-delivery", delivery)
        .send_string(body);
    match res {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r.status(),
        Err(e) => panic!("{e}"),
    }
}

/// A Git repository whose first commit (message and greeting `greeting`) holds the
/// demo project of `app`; returns it and that commit's id.
fn demo_repo(name: &str, app: &str, greeting: &str) -> (Repo, String) {
    let repo = Repo::new(name);
    repo.write("compose.yaml", &demo_compose(app, greeting))
        .write("site/index.html", "x");
    let commit = repo.commit(greeting);
    (repo, commit)
}

#[test]
fn webhook_push_converges_and_forgeries_change_nothing() {
    let app = TestApp::new("swh");
    let (repo, _) = demo_repo("hooked", &app.name, "one");
    let git = Daemon::serve(&repo);
    let url = git.url(&repo);
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\nwebhooks:\n  generic: {{ secret: hush }}\n  github: {{ secret: gh-hush }}\napps:\n  - name: {}\n    source: {{ git: {url}, ref: main }}\n    sync: {{ interval: 1h }}\n",
            app.name
        ),
    );
    wait_until(60, "first sync", || s.app(&app.name)["sync"] == "Synced");
    assert_eq!(s.app(&app.name)["health"], "Healthy");
    let web = app.container("web");
    assert!(env_of(&web).contains("GREETING=one"));
    let ops = s.op_count(&app.name);

    repo.write("compose.yaml", &demo_compose(&app.name, "two"));
    repo.commit("two");
    let body = json!({ "repository": url, "ref": "refs/heads/main" }).to_string();
    assert_eq!(
        signed_generic(&s, "hush", &body, "d-forged", true),
        401,
        "forged"
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(
        env_of(&web).contains("GREETING=one"),
        "a forged webhook triggers nothing"
    );
    assert_eq!(s.op_count(&app.name), ops);

    assert_eq!(signed_generic(&s, "hush", &body, "d-1", false), 202);
    wait_until(30, "the pushed commit to run", || {
        env_of(&web).contains("GREETING=two")
    });
    assert_eq!(
        signed_generic(&s, "hush", &body, "d-1", false),
        409,
        "replayed delivery"
    );

    // GitHub's form: signature header, clone_url naming the repository.
    repo.write("compose.yaml", &demo_compose(&app.name, "three"));
    repo.commit("three");
    let gh = json!({ "ref": "refs/heads/main", "repository": { "clone_url": url } }).to_string();
    let sig = mooring_server::hooks::sign("gh-hush", gh.as_bytes());
    let r = ureq::post(&s.url("/hooks/github"))
        .set("x-hub-signature-256", &format!("sha256={sig}"))
        .set("x-github-delivery", "g-1")
        .send_string(&gh)
        .unwrap();
    assert_eq!(r.status(), 202);
    wait_until(30, "the GitHub push to run", || {
        env_of(&web).contains("GREETING=three")
    });
    // Each operation a webhook started names its delivery.
    wait_until(10, "the operation recorded", || {
        s.get(&format!("/api/v1/apps/{}/operations", app.name))["operations"][0]["result"]
            .is_string()
    });
    let ops = s.get(&format!("/api/v1/apps/{}/operations", app.name));
    let by: Vec<&str> = ops["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["trigger"] == "webhook")
        .map(|o| o["requested_by"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(by, ["github delivery g-1", "generic delivery d-1"], "{ops}");
    // `mooring app hook-test` sends a provider's signed sample push, with the secret
    // from the configuration.
    repo.write("compose.yaml", &demo_compose(&app.name, "four"));
    repo.commit("four");
    let config = s.config.to_str().unwrap().to_string();
    let out = s.cli(&[
        "hook-test",
        "generic",
        "--repository",
        &url,
        "--config",
        &config,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!(
            "generic delivery accepted (202): refreshing 1 app(s): {}",
            app.name
        )),
        "{text}"
    );
    wait_until(30, "the tested push to run", || {
        env_of(&web).contains("GREETING=four")
    });
    let out = s.cli(&[
        "hook-test",
        "gitlab",
        "--repository",
        &url,
        "--config",
        &config,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("webhooks.gitlab is not configured"));
    // An oversized body is refused.
    let big = "x".repeat(2 << 20);
    let status = match ureq::post(&s.url("/hooks/generic")).send_string(&big) {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r.status(),
        Err(_) => 413,
    };
    assert_eq!(status, 413);
    let metrics = ureq::get(&s.url("/metrics"))
        .set("authorization", &format!("Bearer {}", s.admin))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics
            .contains("mooring_webhook_requests_total{provider=\"generic\",result=\"forged\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("mooring_webhook_requests_total{provider=\"github\",result=\"accepted\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "mooring_app_info{{app=\"{}\",sync=\"Synced\",health=\"Healthy\"",
            app.name
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("mooring_source_fetch_duration_seconds_count"),
        "{metrics}"
    );
}

/// Collects POST bodies sent to a loopback listener (a notification target).
fn notification_sink() -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buf = vec![0u8; 65536];
            let mut got = Vec::new();
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .ok();
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        let _ = tx.send(body.to_string());
                        break;
                    }
                }
            }
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        }
    });
    (port, rx)
}

#[test]
fn self_heal_auto_off_and_notifications() {
    let healed = TestApp::new("sheal");
    let manual = TestApp::new("sman");
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    for (d, a) in [(&d1, &healed), (&d2, &manual)] {
        fs::write(d.path().join("compose.yaml"), demo_compose(&a.name, "x")).unwrap();
        fs::create_dir(d.path().join("site")).unwrap();
    }
    let (port, notes) = notification_sink();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\nnotifications:\n  - url: http://127.0.0.1:{port}/hook\n    events: [drift_detected]\napps:\n  - name: {h}\n    source: {{ dir: {p1} }}\n    sync: {{ interval: 1h }}\n  - name: {m}\n    source: {{ dir: {p2} }}\n    sync: {{ auto: false, interval: 1s }}\n",
            h = healed.name,
            m = manual.name,
            p1 = d1.path().display(),
            p2 = d2.path().display()
        ),
    );
    wait_until(60, "self-healing app synced", || {
        s.app(&healed.name)["sync"] == "Synced"
    });
    // auto: false — observed and reported, never changed without a request.
    wait_until(30, "manual app reported", || {
        s.app(&manual.name)["sync"] == "OutOfSync"
    });
    assert!(
        manual.containers().is_empty(),
        "auto: false created nothing: {:?}",
        manual.containers()
    );
    // The policy as it acts: no self-heal without auto; unpinning changes nothing.
    assert_eq!(s.app(&manual.name)["policy"]["self_heal"], false);
    assert_eq!(s.app(&healed.name)["policy"]["self_heal"], true);
    let out = s.cli(&["unpin", &manual.name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        manual.containers().is_empty(),
        "unpin deployed an auto: false app: {:?}",
        manual.containers()
    );

    let worker = healed.container("worker");
    docker(&["stop", "-t", "1", &worker]);
    let took = wait_until(15, "self-heal after docker stop", || {
        inspect(&worker, "{{.State.Status}}") == "running"
    });
    eprintln!("self-heal after docker stop took {took:?}");
    docker(&["rm", "-f", &healed.container("web")]);
    wait_until(15, "self-heal after docker rm", || {
        docker_output(&["inspect", &healed.container("web")])
            .status
            .success()
    });
    let note = notes
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("a drift notification");
    let v: Value = serde_json::from_str(&note).unwrap();
    assert_eq!(v["event"], "drift_detected");
    assert_eq!(v["app"], healed.name.as_str());
    let events = s.get(&format!("/api/v1/events?app={}", healed.name));
    assert!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "drift_detected"),
        "{events}"
    );

    // The manual app syncs on request.
    let out = s.cli(&["sync", &manual.name]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(manual.containers().len(), 2);
    assert_eq!(s.app(&manual.name)["sync"], "Synced");
    let out = s.cli(&["list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&healed.name) && text.contains("Synced"),
        "{text}"
    );
}

fn git_daemon_on(base: &std::path::Path, port: u16) -> Child {
    let exec = String::from_utf8(
        Command::new("git")
            .arg("--exec-path")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let child = Command::new(std::path::Path::new(exec.trim()).join("git-daemon"))
        .args(["--reuseaddr", "--export-all", "--listen=127.0.0.1"])
        .arg(format!("--base-path={}", base.display()))
        .arg(format!("--port={port}"))
        .arg(base)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(20, "git daemon", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    child
}

#[test]
fn broken_commit_and_source_outage_keep_the_running_state() {
    let app = TestApp::new("sbrk");
    let (repo, _) = demo_repo("flaky", &app.name, "good");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = repo.bare.parent().unwrap().to_path_buf();
    let mut git = git_daemon_on(&base, port);
    let url = format!("git://127.0.0.1:{port}/flaky.git");
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &format!("server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {}\n    source: {{ git: {url} }}\n    sync: {{ interval: 1s, retry: {{ limit: 100, backoff: 1s, max_backoff: 2s }} }}\n", app.name));
    wait_until(60, "first sync", || s.app(&app.name)["sync"] == "Synced");
    let web_id = app.id("web");

    // A broken commit: the operation fails with the position, the containers stay.
    repo.write(
        "compose.yaml",
        &demo_compose(&app.name, "bad").replace(
            "    init: true\n    command: [\"httpd\"",
            "    build: .\n    init: true\n    command: [\"httpd\"",
        ),
    );
    repo.commit("broken");
    wait_until(30, "the broken commit to be reported", || {
        s.app(&app.name)["conditions"]
            .to_string()
            .contains("compose.yaml:5:12")
    });
    let ops = s.get(&format!("/api/v1/apps/{}/operations", app.name));
    let failed = ops["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["result"] == "failed")
        .expect("a failed operation");
    assert!(
        failed["error"].as_str().unwrap().contains(
            "compose.yaml:5:12: services.web.build.dockerfile: Dockerfile does not exist in ."
        ),
        "{failed}"
    );
    assert_eq!(app.id("web"), web_id, "running containers untouched");
    // The overview shows the app as failing, with the error's first line.
    let cookie = log_in(&s, &s.admin);
    let (status, page) = with_cookie(&s, "GET", "/", &cookie);
    assert_eq!(status, 200);
    assert!(
        page.contains("data-failing=\"RenderError\"")
            && page.contains("services.web.build.dockerfile: Dockerfile does not exist in ."),
        "{page}"
    );

    // The server goes away: the error is reported, the last good state kept.
    git.kill().unwrap();
    git.wait().unwrap();
    wait_until(30, "the source error to be reported", || {
        s.app(&app.name)["conditions"]
            .to_string()
            .contains("source:")
    });
    assert_eq!(app.id("web"), web_id);
    assert_eq!(
        inspect(&app.container("web"), "{{.State.Status}}"),
        "running"
    );

    // It comes back with a good commit: the app converges.
    repo.write("compose.yaml", &demo_compose(&app.name, "fixed"));
    repo.commit("fixed");
    let mut git = git_daemon_on(&base, port);
    wait_until(60, "the fixed commit to run", || {
        docker_output(&["inspect", &app.container("web")])
            .status
            .success()
            && env_of(&app.container("web")).contains("GREETING=fixed")
    });
    wait_until(30, "synced again", || {
        s.app(&app.name)["sync"] == "Synced"
            && s.app(&app.name)["conditions"]
                .as_array()
                .unwrap()
                .is_empty()
    });
    git.kill().unwrap();
    git.wait().unwrap();
}

#[test]
fn kill_9_mid_sync_then_restart_converges_with_history() {
    let app = TestApp::new("skill");
    let dir = tempfile::tempdir().unwrap();
    let proj = tempfile::tempdir().unwrap();
    let compose = format!(
        "name: {a}\nservices:\n  db:\n    image: {IMAGE}\n    init: true\n    command: [\"sh\", \"-c\", \"sleep 3; touch /tmp/ready; exec sleep 3600\"]\n    healthcheck:\n      test: [\"CMD\", \"test\", \"-f\", \"/tmp/ready\"]\n      interval: 1s\n      retries: 30\n  web:\n    image: {IMAGE}\n    init: true\n    command: [\"sleep\", \"3600\"]\n    depends_on:\n      db: {{ condition: service_healthy }}\n",
        a = app.name
    );
    fs::write(proj.path().join("compose.yaml"), compose).unwrap();
    let mut s = Server::start(dir.path(), &format!("server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {}\n    source: {{ dir: {} }}\n    sync: {{ interval: 1h }}\n", app.name, proj.path().display()));
    wait_until(30, "db to be created", || {
        app.containers().iter().any(|c| c.contains("-db-1"))
    });
    s.kill9();
    assert!(
        !app.containers().iter().any(|c| c.contains("-web-1")),
        "killed mid-sync"
    );
    s.spawn();
    wait_until(60, "converged after restart", || {
        s.app(&app.name)["sync"] == "Synced"
    });
    let all = app.containers();
    assert_eq!(all.len(), 2, "no duplicates: {all:?}");
    let ops = s.get(&format!("/api/v1/apps/{}/operations", app.name));
    let results: Vec<&str> = ops["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["result"].as_str().unwrap_or("running"))
        .collect();
    assert!(
        results.contains(&"interrupted") && results.contains(&"succeeded"),
        "history survived: {results:?}"
    );
    // SIGTERM: a clean, prompt stop.
    let status = s.terminate();
    assert!(status.success(), "exit status {status}");
}

#[test]
fn rollback_pins_until_unpinned() {
    let app = TestApp::new("sroll");
    let (repo, one) = demo_repo("rolling", &app.name, "one");
    repo.write("compose.yaml", &demo_compose(&app.name, "two"));
    repo.commit("two");
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &format!("server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {}\n    source: {{ git: {}, ref: main }}\n    sync: {{ interval: 1s }}\n", app.name, repo.file_url()));
    let web = app.container("web");
    wait_until(60, "two deployed", || {
        s.app(&app.name)["sync"] == "Synced" && env_of(&web).contains("GREETING=two")
    });

    // A backup of the data taken while two runs: the rollback offers it.
    let backup = Command::new(env!("CARGO_BIN_EXE_mooring"))
        .args(["backup", "create", &app.name])
        .env("MOORING_DATA_DIR", dir.path().join("state"))
        .output()
        .unwrap();
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    let out = s.cli(&["rollback", &app.name, "--to", &one]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("pinned"), "{text}");
    assert!(
        text.contains("! data: the rollback changed containers, not data")
            && text.contains(&format!("{}_data", app.name)),
        "{text}"
    );
    assert!(
        text.contains("mooring backup restore"),
        "the backup is offered: {text}"
    );
    assert!(env_of(&web).contains("GREETING=one"));
    assert_eq!(s.app(&app.name)["pinned"], one.as_str());

    repo.write("compose.yaml", &demo_compose(&app.name, "three"));
    let three = repo.commit("three");
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert!(
        env_of(&web).contains("GREETING=one"),
        "the pin holds against auto-sync"
    );
    assert!(s.app(&app.name)["conditions"]
        .to_string()
        .contains("Pinned"));

    let out = s.cli(&["unpin", &app.name]);
    assert!(out.status.success());
    wait_until(30, "head deployed after unpin", || {
        env_of(&web).contains("GREETING=three")
    });
    let out = s.cli(&["history", &app.name]);
    let history = String::from_utf8_lossy(&out.stdout);
    assert!(
        history.contains("rollback") && history.contains(" UTC "),
        "operations with their start times: {history}"
    );
    // Who asked: the rollback by the CLI's token (named `cli`), Mooring's own by nobody.
    assert!(
        history
            .lines()
            .any(|l| l.contains("rollback") && l.contains("by cli")),
        "{history}"
    );
    let own: Vec<&str> = history
        .lines()
        .filter(|l| l.contains("startup") || l.contains("revision ") || l.contains("interval"))
        .collect();
    assert!(
        !own.is_empty() && own.iter().all(|l| !l.contains(" by ")),
        "{history}"
    );

    // `app pin` holds the deployed revision without deploying anything.
    wait_until(30, "three recorded as deployed", || {
        s.app(&app.name)["revision"] == three.as_str()
    });
    let out = s.cli(&["pin", &app.name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&three));
    repo.write("compose.yaml", &demo_compose(&app.name, "four"));
    repo.commit("four");
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert!(env_of(&web).contains("GREETING=three"), "the pin holds");
    assert_eq!(s.app(&app.name)["pinned"], three.as_str());
}

#[test]
fn every_route_is_authenticated_with_roles() {
    let app = TestApp::new("sauth");
    let proj = tempfile::tempdir().unwrap();
    fs::write(proj.path().join("compose.yaml"), format!("name: {}\nservices:\n  web:\n    image: {IMAGE}\n    init: true\n    command: [sleep, \"3600\"]\n", app.name)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path(), &format!("server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {}\n    source: {{ dir: {} }}\n    sync: {{ interval: 1h }}\n", app.name, proj.path().display()));
    wait_until(60, "synced", || s.app(&app.name)["sync"] == "Synced");
    let viewer = s.token("viewer");
    let operator = s.token("operator");
    let doc = s.get("/api/v1/openapi.json");
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(
        paths.len(),
        mooring_server::routes::ROUTES
            .iter()
            .map(|r| r.path)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    let ops_before = s.op_count(&app.name);
    for route in mooring_server::routes::ROUTES {
        let path = route
            .path
            .replace("{name}", &app.name)
            .replace("{id}", "1")
            .replace("{provider}", "generic")
            .replace("{asset}", "app.css");
        let body = Some(json!({"to": "x", "name": "t", "role": "viewer"}));
        let send = |token: Option<&str>| {
            s.call(
                route.method,
                &path,
                token,
                if route.method == "GET" {
                    None
                } else {
                    body.clone()
                },
            )
        };
        // A web UI page sends a visitor without a (valid) token to the log-in form.
        let page = !route.path.starts_with("/api/") && route.path != "/metrics";
        let to_login = |(status, body): (u16, Value)| {
            status == 200
                && body
                    .as_str()
                    .is_some_and(|b| b.contains("action=\"/login\""))
        };
        let send = |token: Option<&str>| send(token).0;
        match route.role {
            None => assert_ne!(send(None), 404, "{} {} is served", route.method, route.path),
            Some(_) if page => {
                let call = |token| s.call(route.method, &path, token, None);
                assert!(
                    to_login(call(None)),
                    "{} {} without a token",
                    route.method,
                    route.path
                );
                assert!(
                    to_login(call(Some(
                        "mrg_0000000000000000000000000000000000000000000000000000000000000000"
                    ))),
                    "{} {} with a wrong token",
                    route.method,
                    route.path
                );
                assert_eq!(
                    send(Some(&viewer)),
                    200,
                    "{} {} for a viewer",
                    route.method,
                    route.path
                );
            }
            Some(role) => {
                assert_eq!(
                    send(None),
                    401,
                    "{} {} without a token",
                    route.method,
                    route.path
                );
                assert_eq!(
                    send(Some(
                        "mrg_0000000000000000000000000000000000000000000000000000000000000000"
                    )),
                    401,
                    "{} {} with a wrong token",
                    route.method,
                    route.path
                );
                let weaker = match role {
                    mooring_store::Role::Viewer => None,
                    mooring_store::Role::Operator => Some(viewer.as_str()),
                    mooring_store::Role::Admin => Some(operator.as_str()),
                };
                if let Some(t) = weaker {
                    assert_eq!(
                        send(Some(t)),
                        403,
                        "{} {} with a weaker role",
                        route.method,
                        route.path
                    );
                }
            }
        }
    }
    assert_eq!(
        s.op_count(&app.name),
        ops_before,
        "refused requests did nothing"
    );
    assert_eq!(s.call("GET", "/api/v1/apps", Some(&viewer), None).0, 200);
    assert_eq!(
        s.call(
            "POST",
            &format!("/api/v1/apps/{}/sync", app.name),
            Some(&operator),
            Some(json!({}))
        )
        .0,
        200
    );
    // Admin: tokens through the API, and revocation.
    let (status, created) = s.call(
        "POST",
        "/api/v1/tokens",
        Some(&s.admin),
        Some(json!({"name": "ci", "role": "viewer"})),
    );
    assert_eq!(status, 201);
    let t = created["token"].as_str().unwrap().to_string();
    assert_eq!(s.call("GET", "/api/v1/apps", Some(&t), None).0, 200);
    let tokens = s.get("/api/v1/tokens");
    let id = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "ci")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    assert!(!tokens.to_string().contains(&t), "secrets are never listed");
    assert_eq!(
        s.call(
            "DELETE",
            &format!("/api/v1/tokens/{id}"),
            Some(&s.admin),
            None
        )
        .0,
        200
    );
    assert_eq!(s.call("GET", "/api/v1/apps", Some(&t), None).0, 401);
    // Reload refuses a broken configuration and keeps running.
    let good = fs::read_to_string(&s.config).unwrap();
    fs::write(&s.config, format!("{good}    colour: blue\n")).unwrap();
    let (status, v) = s.call("POST", "/api/v1/reload", Some(&s.admin), None);
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("colour"), "{v}");
    fs::write(&s.config, good).unwrap();
    assert_eq!(
        s.call("POST", "/api/v1/reload", Some(&s.admin), None).0,
        200
    );
    assert!(s.terminate().success());
}

fn metric(s: &Server, prefix: &str) -> u64 {
    let text = ureq::get(&s.url("/metrics"))
        .set("authorization", &format!("Bearer {}", s.admin))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn one_fetch_per_push_for_all_apps_and_no_render_outside_their_paths() {
    let apps: Vec<TestApp> = (0..3).map(|_| TestApp::new("sshare")).collect();
    let repo = Repo::new("shared");
    for (i, a) in apps.iter().enumerate() {
        repo.write(
            &format!("apps/{i}/compose.yaml"),
            &demo_compose(&a.name, "v1"),
        )
        .write(&format!("apps/{i}/site/index.html"), "x");
    }
    repo.write("README", "docs");
    repo.commit("three apps");
    let git = Daemon::serve(&repo);
    let url = git.url(&repo);
    let mut cfg = "server: { listen: 127.0.0.1:{port}, data_dir: ./state }\nwebhooks:\n  generic: { secret: hush }\napps:\n".to_string();
    for (i, a) in apps.iter().enumerate() {
        cfg += &format!("  - name: {}\n    source: {{ git: {url}, ref: main, path: apps/{i} }}\n    sync: {{ interval: 1h }}\n", a.name);
    }
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &cfg);
    wait_until(90, "all synced", || {
        apps.iter().all(|a| s.app(&a.name)["sync"] == "Synced")
    });
    let renders = metric(&s, "mooring_render_total");
    assert_eq!(renders, 3);
    let fetches = metric(&s, "mooring_source_fetch_total");

    // A commit outside every app's path: one fetch, three reconciles, no render.
    repo.write("README", "more docs");
    let head = repo.commit("docs only");
    let body = json!({ "repository": url, "ref": "refs/heads/main" }).to_string();
    assert_eq!(signed_generic(&s, "hush", &body, "one", false), 202);
    wait_until(30, "every app at the new revision", || {
        apps.iter()
            .all(|a| s.app(&a.name)["revision"] == head.as_str())
    });
    assert_eq!(
        metric(&s, "mooring_source_fetch_total") - fetches,
        1,
        "one fetch shared by the three apps"
    );
    assert_eq!(
        metric(&s, "mooring_render_total"),
        3,
        "nothing under the apps' paths changed: no render"
    );

    // A commit inside one app's path re-renders that app only.
    repo.write("apps/1/compose.yaml", &demo_compose(&apps[1].name, "v2"));
    let head = repo.commit("app 1");
    assert_eq!(signed_generic(&s, "hush", &body, "two", false), 202);
    wait_until(30, "app 1 redeployed", || {
        env_of(&apps[1].container("web")).contains("GREETING=v2")
    });
    wait_until(30, "every app at the new revision", || {
        apps.iter()
            .all(|a| s.app(&a.name)["revision"] == head.as_str())
    });
    assert_eq!(metric(&s, "mooring_render_total"), 4);
    assert_eq!(metric(&s, "mooring_source_fetch_total") - fetches, 2);
}

#[test]
fn event_stream_shows_changes_live() {
    use std::io::{BufRead, BufReader};
    let app = TestApp::new("ssse");
    let proj = tempfile::tempdir().unwrap();
    fs::write(proj.path().join("compose.yaml"), format!("name: {}\nservices:\n  web:\n    image: {IMAGE}\n    init: true\n    command: [sleep, \"3600\"]\n", app.name)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &format!("server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {}\n    source: {{ dir: {} }}\n    sync: {{ interval: 1h }}\n", app.name, proj.path().display()));
    wait_until(60, "synced", || s.app(&app.name)["sync"] == "Synced");
    let viewer = s.token("viewer");
    let res = ureq::get(&s.url("/api/v1/stream"))
        .set("authorization", &format!("Bearer {viewer}"))
        .call()
        .unwrap();
    assert_eq!(res.header("content-type"), Some("text/event-stream"));
    let mut lines = BufReader::new(res.into_reader()).lines();
    docker(&["rm", "-f", &app.container("web")]);
    let start = std::time::Instant::now();
    let mut seen = Vec::new();
    while start.elapsed() < std::time::Duration::from_secs(20) {
        let line = lines.next().expect("stream open").unwrap();
        if line.starts_with("event: ") {
            seen.push(line.clone());
        }
        if line.starts_with("data: ")
            && line.contains("\"kind\":\"app\"")
            && line.contains("\"Synced\"")
            && seen.iter().any(|e| e == "event: operation")
        {
            return;
        }
    }
    panic!("no live update after the container was removed: {seen:?}");
}

#[test]
fn rolling_back_two_revisions_leaves_data_untouched_and_offers_the_backups_of_that_time() {
    let app = TestApp::new("sroll2");
    let (repo, one) = demo_repo("rolling2", &app.name, "one");
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &format!("server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {}\n    source: {{ git: {}, ref: main }}\n    sync: {{ interval: 1s }}\n", app.name, repo.file_url()));
    let web = app.container("web");
    let worker = app.container("worker");
    let volume = format!("{}_data", app.name);
    let backup = || {
        let out = Command::new(env!("CARGO_BIN_EXE_mooring"))
            .args(["backup", "create", &app.name, "-o", "json"])
            .env("MOORING_DATA_DIR", dir.path().join("state"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            v[0]["id"].as_str().unwrap().to_string(),
            v[0]["revision"].as_str().unwrap_or("none").to_string(),
        )
    };
    // Three revisions, each writing data, each backed up while it runs.
    let mut taken = Vec::new();
    for (i, greeting) in ["one", "two", "three"].iter().enumerate() {
        let revision = if i > 0 {
            repo.write("compose.yaml", &demo_compose(&app.name, greeting));
            repo.commit(greeting)
        } else {
            one.clone()
        };
        // The saved status names the revision once its operation ended (a container
        // with the new environment alone may still be mid-operation).
        wait_until(60, &format!("{greeting} deployed"), || {
            let a = s.app(&app.name);
            a["sync"] == "Synced"
                && a["revision"] == revision.as_str()
                && env_of(&web).contains(&format!("GREETING={greeting}"))
        });
        docker(&["exec", &worker, "sh", "-c", &format!("mkdir -p /data/{greeting} && i=0; while [ $i -lt 200 ]; do echo {greeting} $i > /data/{greeting}/$i; i=$((i+1)); done; dd if=/dev/urandom of=/data/{greeting}/blob bs=64k count=8 2>/dev/null; echo {greeting} >> /data/history")]);
        let (id, recorded) = backup();
        assert_eq!(
            recorded, revision,
            "a command-line backup records the deployed revision"
        );
        taken.push((id, fingerprint(&volume)));
        // Backups of one revision are older than the next deploy.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let before = fingerprint(&volume);

    let (status, v) = s.call(
        "POST",
        &format!("/api/v1/apps/{}/rollback", app.name),
        Some(&s.admin),
        Some(json!({ "to": one })),
    );
    assert!(status < 300, "{status} {v}");
    let warning = &v["data_warning"];
    assert!(
        warning["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == volume.as_str()),
        "{v}"
    );
    let offered: Vec<&str> = warning["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        offered,
        vec![taken[0].0.as_str()],
        "only the backup taken while revision one ran: {v}"
    );
    wait_until(60, "one deployed again", || {
        env_of(&web).contains("GREETING=one")
    });
    assert_eq!(s.app(&app.name)["pinned"], one.as_str());
    assert_eq!(
        fingerprint(&volume),
        before,
        "the rollback changed containers, not data"
    );
    // The offered backup holds exactly the data of revision one.
    let copy = format!("{}_one", app.name);
    let out = Command::new(env!("CARGO_BIN_EXE_mooring"))
        .args(["backup", "restore", offered[0], "--to-volume", &copy])
        .env("MOORING_DATA_DIR", dir.path().join("state"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = fingerprint(&copy);
    docker(&["volume", "rm", &copy]);
    assert_eq!(restored, taken[0].1, "zero bytes lost");
}

/// One service writing a volume; `rev` changes its container.
fn writer_compose(app: &str, rev: u32) -> String {
    format!("name: {app}\nservices:\n  worker:\n    image: {IMAGE}\n    init: true\n    command: [sleep, \"3600\"]\n    environment: {{ REV: \"{rev}\" }}\n    volumes: [data:/data]\nvolumes:\n  data: {{}}\n")
}

#[test]
fn backup_on_change_backs_up_before_each_redeploy_and_retention_prunes() {
    let app = TestApp::new("sonch");
    let repo = Repo::new("onchange");
    repo.write("compose.yaml", &writer_compose(&app.name, 1));
    let mut repo_revisions = vec![String::new(), repo.commit("1")];
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &format!("server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {}\n    source: {{ git: {}, ref: main }}\n    sync: {{ interval: 1s }}\n    data: {{ backup: on-change, retention: {{ keep: 2 }} }}\n", app.name, repo.file_url()));
    let worker = app.container("worker");
    let volume = format!("{}_data", app.name);
    let state = dir.path().join("state");
    let backups = || -> Vec<Value> {
        let out = Command::new(env!("CARGO_BIN_EXE_mooring"))
            .args(["backup", "list", &app.name, "-o", "json"])
            .env("MOORING_DATA_DIR", &state)
            .output()
            .unwrap();
        assert!(out.status.success());
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let deployed = |rev: u32| {
        // Until its operation ended: reading the app no longer waits for a running sync.
        wait_until(60, &format!("revision {rev} deployed"), || {
            let v = s.app(&app.name);
            v["sync"] == "Synced"
                && !v["operations"][0]["finished_at"].is_null()
                && env_of(&worker).contains(&format!("REV={rev}"))
        })
    };
    deployed(1);
    assert!(backups().is_empty(), "a new volume has nothing to back up");

    let mut before_each = Vec::new();
    for rev in 2..=4u32 {
        docker(&["exec", &worker, "sh", "-c", &format!("mkdir -p /data/r{rev} && i=0; while [ $i -lt 100 ]; do echo {rev} $i > /data/r{rev}/$i; i=$((i+1)); done; dd if=/dev/urandom of=/data/r{rev}/blob bs=32k count=4 2>/dev/null")]);
        before_each.push(fingerprint(&volume));
        repo.write("compose.yaml", &writer_compose(&app.name, rev));
        repo_revisions.push(repo.commit(&rev.to_string()));
        deployed(rev);
        // The redeploy's operation: the backup ran before the container changed.
        let op_id = s.get(&format!("/api/v1/apps/{}/operations", app.name))["operations"][0]["id"]
            .as_i64()
            .unwrap();
        let op = s.get(&format!("/api/v1/operations/{op_id}"));
        let actions: Vec<String> = op["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["resource"].as_str().unwrap().to_string())
            .collect();
        let b = actions
            .iter()
            .position(|a| *a == format!("back up volume {volume}"))
            .unwrap_or_else(|| panic!("no backup in {op}"));
        let r = actions
            .iter()
            .position(|a| *a == format!("recreate container {worker}"))
            .unwrap_or_else(|| panic!("no recreate in {op}"));
        assert!(b < r, "backup before the redeploy: {actions:?}");
    }
    // Retention keeps the newest two: those taken before revisions 3 and 4.
    let list = backups();
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(list
        .iter()
        .all(|b| b["reason"].as_str().unwrap().contains("on-change")));
    // Each holds the data of the revision deployed until then.
    assert_eq!(list[0]["revision"], repo_revisions[3].as_str(), "{list:?}");
    assert_eq!(list[1]["revision"], repo_revisions[2].as_str(), "{list:?}");
    // The daemon's catalogue (viewer role) lists the same backups, newest first.
    let viewer = s.token("viewer");
    let (status, catalogue) = s.call(
        "GET",
        &format!("/api/v1/apps/{}/backups", app.name),
        Some(&viewer),
        None,
    );
    assert_eq!(status, 200, "{catalogue}");
    let ids = |v: &[Value]| -> Vec<String> {
        v.iter()
            .map(|b| b["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(catalogue["backups"].as_array().unwrap()), ids(&list));
    assert_eq!(catalogue["backups"][0]["volume"], volume.as_str());
    // The newest holds exactly the data as it was just before revision 4 was deployed.
    let copy = format!("{}_copy", app.name);
    let out = Command::new(env!("CARGO_BIN_EXE_mooring"))
        .args([
            "backup",
            "restore",
            list[0]["id"].as_str().unwrap(),
            "--to-volume",
            &copy,
        ])
        .env("MOORING_DATA_DIR", &state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = fingerprint(&copy);
    docker(&["volume", "rm", &copy]);
    assert_eq!(restored, before_each[2], "zero bytes lost");
}

#[test]
fn billion_laughs_commit_fails_its_app_only_and_the_daemon_restarts() {
    let (good, bad) = (TestApp::new("slaugh"), TestApp::new("slaugh"));
    let repo = Repo::new("laughs");
    for (dir, a) in [("good", &good), ("bad", &bad)] {
        repo.write(&format!("{dir}/compose.yaml"), &demo_compose(&a.name, "v1"))
            .write(&format!("{dir}/site/index.html"), "x");
    }
    repo.commit("two apps");
    let git = Daemon::serve(&repo);
    let url = git.url(&repo);
    let mut cfg = "server: { listen: 127.0.0.1:{port}, data_dir: ./state }\napps:\n".to_string();
    for (dir, a) in [("good", &good), ("bad", &bad)] {
        cfg += &format!("  - name: {}\n    source: {{ git: {url}, ref: main, path: {dir} }}\n    sync: {{ interval: 1s }}\n", a.name);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path(), &cfg);
    wait_until(90, "both synced", || {
        [&good, &bad]
            .iter()
            .all(|a| s.app(&a.name)["sync"] == "Synced")
    });
    let bad_web = bad.id("web");

    // One commit: the bad app's file expands to 9^9 nodes, the good app moves on.
    repo.write("bad/compose.yaml", &billion_laughs(&bad.name))
        .write("good/compose.yaml", &demo_compose(&good.name, "v2"));
    let head = repo.commit("laughs");
    wait_until(60, "the good app at the new revision", || {
        s.app(&good.name)["revision"] == head.as_str()
            && env_of(&good.container("web")).contains("GREETING=v2")
    });
    let alias_error = |s: &Server| {
        s.get(&format!("/api/v1/apps/{}/operations", bad.name))["operations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["result"] == "failed" && o["revision"] == head.as_str())
            .map(|o| o["error"].as_str().unwrap_or_default().to_string())
    };
    wait_until(30, "the bad app's failed operation", || {
        alias_error(&s).is_some()
    });
    let error = alias_error(&s).unwrap();
    assert!(
        error.contains("bad/compose.yaml:8:") && error.contains("alias bound"),
        "{error}"
    );
    let (status, body) = s.call("GET", "/healthz", None, None);
    assert_eq!((status, body), (200, json!("ok")));
    assert_eq!(bad.id("web"), bad_web, "the bad app's containers untouched");

    // A restart with the commit still there: the daemon starts (spawn waits for
    // /readyz), reports the bad app again, and keeps the good one synced.
    s.kill9();
    s.spawn();
    wait_until(30, "the render error after the restart", || {
        s.app(&bad.name)["conditions"]
            .to_string()
            .contains("excessive YAML aliasing")
    });
    assert_eq!(s.app(&good.name)["sync"], "Synced");
    assert_eq!(s.app(&good.name)["revision"], head.as_str());
    assert_eq!(s.call("GET", "/healthz", None, None).0, 200);
}

/// A client that sends half a request and stalls.
fn stalled_client(s: &Server) -> std::net::TcpStream {
    use std::io::Write;
    let mut c = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .unwrap();
    c
}

/// How long until the server closes `c` (EOF or reset); panics after `secs`.
fn closed_after(c: &mut std::net::TcpStream, start: std::time::Instant, secs: u64) -> Duration {
    use std::io::Read;
    c.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 256];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            Ok(_) => {} // e.g. a 408 before the close
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return start.elapsed(), // reset
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "the server kept a stalled connection open for {secs}s"
        );
    }
}

#[test]
fn slow_clients_do_not_starve_requests_and_are_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        "server: { listen: 127.0.0.1:{port}, data_dir: ./state, http: { header_timeout: 1s, max_connections: 16 } }\n",
    );
    let pid = s.child.as_ref().unwrap().id();
    let fds = || fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    let healthz = || {
        let start = std::time::Instant::now();
        let (status, _) = s.call("GET", "/healthz", None, None);
        assert_eq!(status, 200);
        start.elapsed()
    };

    // Below the connection limit: a genuine request is answered at once, and the
    // stalled connections are closed after the header timeout, not before.
    let start = std::time::Instant::now();
    let mut slow: Vec<_> = (0..8).map(|_| stalled_client(&s)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let took = healthz();
    assert!(took < Duration::from_millis(800), "answered in {took:?}");
    for c in &mut slow {
        let closed = closed_after(c, start, 10);
        assert!(
            closed >= Duration::from_millis(900),
            "closed after {closed:?}"
        );
    }
    let base = fds();

    // Four times the limit, plus one that trickles a header byte every 200 ms: the
    // daemon holds at most 16 of them, a genuine request still gets through once the
    // timeout frees slots, and every stalled connection is closed.
    let start = std::time::Instant::now();
    let mut slow: Vec<_> = (0..64).map(|_| stalled_client(&s)).collect();
    let mut trickle = stalled_client(&s);
    let trickler = {
        let mut t = trickle.try_clone().unwrap();
        std::thread::spawn(move || {
            use std::io::Write;
            for _ in 0..40 {
                if t.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let held = fds();
    assert!(
        held <= base + 16 + 2,
        "{held} descriptors open (from {base})"
    );
    let took = healthz();
    assert!(took < Duration::from_secs(10), "answered in {took:?}");
    closed_after(&mut trickle, start, 10);
    trickler.join().unwrap();
    for c in &mut slow {
        closed_after(c, start, 20);
    }
    assert!(fds() <= base + 2, "connections left open");
}

#[test]
fn readyz_reports_an_operation_that_hangs() {
    let app = TestApp::new("sstuck");
    let hole = mooring_testkit::blackhole::BlackHole::start();
    let dir = tempfile::tempdir().unwrap();
    // The app's source accepts and never answers: its first sync hangs in the fetch.
    let mut s = Server::start(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state, stuck_after: 3s }}\napps:\n  - name: {}\n    source: {{ git: git://127.0.0.1:{}/never.git }}\n",
            app.name, hole.port
        ),
    );
    let readyz = |s: &Server| s.call("GET", "/readyz", None, None);
    wait_until(30, "/readyz to report the hang", || readyz(&s).0 == 503);
    let (_, why) = readyz(&s);
    let why = why.as_str().unwrap().to_string();
    // The oldest running work: the source poller's fetch (the app's sync waits for it).
    let fetch = format!(
        "stuck: fetching git git://127.0.0.1:{}/never.git (remote HEAD) has been running for ",
        hole.port
    );
    assert!(why.starts_with(&fetch), "{why}");
    assert!(why.contains("longer than server.stuck_after (3s)"), "{why}");
    assert_eq!(
        s.call("GET", "/healthz", None, None).0,
        200,
        "alive, not ready"
    );

    // The server goes away: the fetch fails, the operation ends, the daemon is ready.
    drop(hole);
    wait_until(30, "/readyz to recover", || readyz(&s).0 == 200);
    assert_eq!(readyz(&s).1, json!("ready"));
    s.kill9();
}

#[test]
fn a_source_that_never_answers_fails_the_sync_within_its_timeout() {
    let app = TestApp::new("shang");
    let hole = mooring_testkit::blackhole::BlackHole::start();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {}\n    source: {{ git: git://127.0.0.1:{}/never.git, timeout: 2s }}\n",
            app.name, hole.port
        ),
    );
    let took = wait_until(20, "the timeout to be reported", || {
        s.app(&app.name)["conditions"]
            .to_string()
            .contains("did not finish within 2s and was stopped")
    });
    assert!(took < Duration::from_secs(15), "{took:?}");
    let conditions = s.app(&app.name)["conditions"].to_string();
    assert!(conditions.contains("source: git "), "{conditions}");
    assert!(conditions.contains("`timeout:`"), "{conditions}");
}

/// `demo_compose` that cannot be rendered (`build: .` without a Dockerfile, at compose.yaml:5:12).
fn broken_compose(app: &str) -> String {
    demo_compose(app, "bad").replace(
        "    init: true\n    command: [\"httpd\"",
        "    build: .\n    init: true\n    command: [\"httpd\"",
    )
}

#[test]
fn a_failed_sync_is_a_failure_for_the_api_and_the_cli() {
    let app = TestApp::new("sfail");
    let (repo, _) = demo_repo("failing", &app.name, "good");
    let git = Daemon::serve(&repo);
    let url = git.url(&repo);
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &format!("server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {}\n    source: {{ git: {url}, ref: main }}\n    sync: {{ interval: 1h }}\n", app.name));
    wait_until(60, "first sync", || s.app(&app.name)["sync"] == "Synced");
    // In sync: the CLI says nothing needed doing (no earlier operation printed as new).
    let out = s.cli(&["sync", &app.name]);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("nothing to do: the host already matches")
            && !printed.contains("operation #"),
        "{printed}"
    );

    // `app diff` prints the plan as `mooring diff` does: sign, what, why. A request
    // right after a commit sees it (the source is fetched after the request arrived).
    repo.write("compose.yaml", &demo_compose(&app.name, "better"));
    let better = repo.commit("better");
    let out = s.cli(&["diff", &app.name]);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{printed}");
    assert!(
        printed.contains(&format!("~ recreate container {}-web-1", app.name))
            && printed.contains("environment.GREETING: ")
            && printed.contains(" → better"),
        "{printed}"
    );

    // `app sync` at once deploys that commit and prints exactly its operation.
    let out = s.cli(&["sync", &app.name]);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{printed}");
    assert_eq!(s.app(&app.name)["revision"], better.as_str());
    assert!(env_of(&app.container("web")).contains("GREETING=better"));
    let op = s.app(&app.name)["last_operation"].as_i64().unwrap();
    assert!(
        printed.contains(&format!("operation #{op} (api, "))
            && printed.contains(&format!("✓ recreate container {}-web-1", app.name)),
        "{printed}"
    );
    let web_id = app.id("web");

    repo.write("compose.yaml", &broken_compose(&app.name));
    repo.commit("broken");
    let out = s.cli(&["sync", &app.name]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed sync exits 1: {stderr}"
    );
    assert!(
        stderr.contains(
            "compose.yaml:5:12: services.web.build.dockerfile: Dockerfile does not exist in ."
        ),
        "{stderr}"
    );
    assert!(stderr.contains("HTTP 422"), "{stderr}");
    // The same through the API, also for a revision given explicitly, and a rollback.
    let (status, v) = s.call(
        "POST",
        &format!("/api/v1/apps/{}/sync", app.name),
        Some(&s.admin),
        Some(json!({})),
    );
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["kind"], "invalid", "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("compose.yaml:5:12"),
        "{v}"
    );
    let (status, v) = s.call(
        "POST",
        &format!("/api/v1/apps/{}/rollback", app.name),
        Some(&s.admin),
        Some(json!({"to": "main"})),
    );
    assert_eq!(status, 422, "{v}");
    assert!(
        s.app(&app.name)["pinned"].is_null(),
        "a failed rollback pins nothing"
    );
    // `-o json` exits 1 too.
    let out = s.cli(&["-o", "json", "sync", &app.name]);
    assert_eq!(out.status.code(), Some(1));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["kind"], "invalid", "{printed}");
    // The diff of a broken revision is the same refusal, not a server error.
    let (status, v) = s.call(
        "GET",
        &format!("/api/v1/apps/{}/diff", app.name),
        Some(&s.admin),
        None,
    );
    assert_eq!(status, 422, "{v}");
    let out = s.cli(&["diff", &app.name]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("compose.yaml:5:12"));
    // A revision the source does not have is refused before any operation starts.
    let ops = s.op_count(&app.name);
    let (status, v) = s.call(
        "POST",
        &format!("/api/v1/apps/{}/sync", app.name),
        Some(&s.admin),
        Some(json!({"revision": "no-such-branch"})),
    );
    assert_eq!((status, v["kind"].as_str()), (422, Some("invalid")), "{v}");
    assert!(
        v["error"].as_str().unwrap_or("").contains("no-such-branch"),
        "{v}"
    );
    assert_eq!(s.op_count(&app.name), ops, "no operation started");
    let out = s.cli(&["sync", &app.name, "--revision", "no-such-branch"]);
    assert_eq!(out.status.code(), Some(1));
    // Other commands fail too when the server refuses: an unknown app.
    for args in [
        &["get", "no-such-app"][..],
        &["diff", "no-such-app"],
        &["sync", "no-such-app"],
        &["unpin", "no-such-app"],
        &["pin", "no-such-app", "--revision", "x"],
    ] {
        let out = s.cli(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("no-such-app"),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(app.id("web"), web_id, "nothing was applied");
}

#[test]
fn garbage_from_one_address_never_refuses_genuine_deliveries_or_log_ins() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        "server: { listen: 127.0.0.1:{port}, data_dir: ./state }\nwebhooks:\n  generic: { secret: hush }\n  github: { secret: gh-hush }\n",
    );
    let body = json!({ "repository": "git://127.0.0.1/nothing.git" }).to_string();
    let signed = |secret: &str, body: &str| {
        format!(
            "sha256={}",
            mooring_server::hooks::sign(secret, body.as_bytes())
        )
    };
    // An unsigned and forged flood from 127.0.0.2: refused, then limited.
    let (max, _) = mooring_server::limits::Scope::Webhook.limit();
    let forged = signed("wrong", &body);
    let mut statuses = Vec::new();
    for i in 0..max + 10 {
        let headers: &[(&str, &str)] = if i % 2 == 0 {
            &[]
        } else {
            &[
                ("x-mooring-signature", &forged),
                ("x-mooring-delivery", "f"),
            ]
        };
        statuses.push(s.post_from("127.0.0.2", "/hooks/generic", headers, &body).0);
    }
    assert!(
        statuses[..max as usize].iter().all(|&c| c == 401),
        "{statuses:?}"
    );
    assert!(
        statuses[max as usize..].iter().all(|&c| c == 429),
        "{statuses:?}"
    );
    // A genuine delivery is taken, from another address and from the flooding one.
    let good = signed("hush", &body);
    for (from, id) in [("127.0.0.1", "g-1"), ("127.0.0.2", "g-2")] {
        let (status, answer) = s.post_from(
            from,
            "/hooks/generic",
            &[("x-mooring-signature", &good), ("x-mooring-delivery", id)],
            &body,
        );
        assert_eq!(status, 202, "{from}: {answer}");
    }
    // GitHub without X-GitHub-Delivery: no replay protection, so refused.
    let gh =
        json!({ "ref": "refs/heads/main", "repository": { "clone_url": "git://127.0.0.1/x.git" } })
            .to_string();
    let gh_sig = signed("gh-hush", &gh);
    let (status, answer) = s.post_from(
        "127.0.0.1",
        "/hooks/github",
        &[("x-hub-signature-256", &gh_sig)],
        &gh,
    );
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("X-GitHub-Delivery"), "{answer}");
    let (status, answer) = s.post_from(
        "127.0.0.1",
        "/hooks/github",
        &[
            ("x-hub-signature-256", &gh_sig),
            ("x-github-delivery", "gh-1"),
        ],
        &gh,
    );
    assert_eq!(status, 202, "{answer}");

    // Log-ins: wrong tokens from 127.0.0.3 lock out 127.0.0.3 only.
    let form = |token: &str| format!("token={token}&next=%2F");
    let form_type = [("content-type", "application/x-www-form-urlencoded")];
    let (max, _) = mooring_server::limits::Scope::Login.limit();
    for _ in 0..max {
        let (status, _) = s.post_from("127.0.0.3", "/login", &form_type, &form("mrg_wrong"));
        assert_eq!(status, 401);
    }
    let viewer = s.token("viewer");
    let (status, answer) = s.post_from("127.0.0.3", "/login", &form_type, &form(&viewer));
    assert_eq!(status, 429, "the failing address waits: {answer}");
    assert!(answer.contains("wait"), "{answer}");
    let (status, answer) = s.post_from("127.0.0.1", "/login", &form_type, &form(&viewer));
    assert_eq!(status, 303, "another address logs in: {answer}");
}

#[test]
fn reload_refuses_a_configuration_without_apps_unless_forced() {
    let app = TestApp::new("sreload");
    let proj = tempfile::tempdir().unwrap();
    fs::write(
        proj.path().join("compose.yaml"),
        format!("name: {}\nservices:\n  web:\n    image: {IMAGE}\n    init: true\n    command: [sleep, \"3600\"]\n", app.name),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let header = "server: { listen: 127.0.0.1:{port}, data_dir: ./state }\n";
    let s = Server::start(
        dir.path(),
        &format!(
            "{header}apps:\n  - name: {}\n    source: {{ dir: {} }}\n    sync: {{ interval: 1h }}\n",
            app.name,
            proj.path().display()
        ),
    );
    let header = header.replace("{port}", &s.port.to_string());
    let names = |s: &Server| -> Vec<String> {
        s.get("/api/v1/apps")["apps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&s), [app.name.as_str()]);
    let good = fs::read_to_string(&s.config).unwrap();
    // Every app commented out, an explicit empty list, an emptied file.
    let commented: String = good
        .lines()
        .map(|l| {
            if l.starts_with("server") {
                l.to_string()
            } else {
                format!("# {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    for config in [commented, format!("{header}apps: []\n"), String::new()] {
        fs::write(&s.config, &config).unwrap();
        let (status, v) = s.call("POST", "/api/v1/reload", Some(&s.admin), None);
        assert_eq!(status, 409, "{config:?}: {v}");
        let error = v["error"].as_str().unwrap();
        assert!(error.contains("declares no apps"), "{v}");
        assert!(error.contains(&app.name), "{v}");
        assert!(error.contains("\"force\": true"), "{v}");
        assert_eq!(names(&s), [app.name.as_str()], "the running apps are kept");
    }
    // The same through the command line: refused (exit 1, the server's words), then
    // reloaded with the good file.
    let out = s.cli(&["reload"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("declares no apps"));
    fs::write(&s.config, &good).unwrap();
    let out = s.cli(&["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("configuration reloaded: 1 app ({})", app.name)
    );
    // Forced: the operator meant it.
    fs::write(&s.config, format!("{header}apps: []\n")).unwrap();
    let out = s.cli(&["reload", "--force"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(names(&s).is_empty());
}

#[test]
fn every_response_carries_the_security_headers_and_log_in_stays_on_the_site() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        "server: { listen: 127.0.0.1:{port}, data_dir: ./state }\nwebhooks:\n  generic: { secret: hush }\n",
    );
    let viewer = s.token("viewer");
    let bearer = format!("Bearer {viewer}");
    let requests: [(&str, &str, Option<&str>); 9] = [
        ("GET", "/", Some(&bearer)),
        ("GET", "/", None),
        ("GET", "/login", None),
        ("GET", "/ui/app.js", None),
        ("GET", "/api/v1/apps", Some(&bearer)),
        ("GET", "/api/v1/apps", None),
        ("GET", "/no/such/route", None),
        ("GET", "/healthz", None),
        ("POST", "/hooks/generic", None),
    ];
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    for (method, path, auth) in requests {
        let mut req = agent.request(method, &s.url(path));
        if let Some(a) = auth {
            req = req.set("authorization", a);
        }
        let res = match req.call() {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        for (name, value) in mooring_server::headers::HEADERS {
            assert_eq!(
                res.header(name),
                Some(value),
                "{method} {path} ({}): {name}",
                res.status()
            );
        }
    }
    let csp = mooring_server::headers::CONTENT_SECURITY_POLICY;
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'self'"));
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));

    // A log-in with a hostile `next` lands on `/`; a path of the site is kept.
    let form_type = [("content-type", "application/x-www-form-urlencoded")];
    for (next, to) in [
        ("%2F%09%2Fevil.example%2F", "/"),
        ("%2F%2Fevil.example", "/"),
        ("%2F%5Cevil.example", "/"),
        ("%252F%252Fevil.example", "/"),
        ("%2Fapps%2Fx", "/apps/x"),
    ] {
        let (status, answer) = s.post_from(
            "127.0.0.1",
            "/login",
            &form_type,
            &format!("token={viewer}&next={next}"),
        );
        assert_eq!(status, 303, "{answer}");
        let location = answer
            .lines()
            .find_map(|l| l.strip_prefix("location: "))
            .unwrap_or_else(|| panic!("{answer}"));
        assert_eq!(location, to, "next={next}");
    }
}

/// A request carrying the UI's session cookie: `(status, body)`.
fn with_cookie(s: &Server, method: &str, path: &str, cookie: &str) -> (u16, String) {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let res = agent
        .request(method, &s.url(path))
        .set("cookie", cookie)
        .set("x-mooring-ui", "1");
    let res = match res.call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    (res.status(), res.into_string().unwrap_or_default())
}

/// Logs in with `token` from 127.0.0.1 and returns the `name=value` session cookie.
fn log_in(s: &Server, token: &str) -> String {
    let (status, answer) = s.post_from(
        "127.0.0.1",
        "/login",
        &[("content-type", "application/x-www-form-urlencoded")],
        &format!("token={token}&next=%2F"),
    );
    assert_eq!(status, 303, "{answer}");
    let cookie = answer
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap_or_else(|| panic!("no cookie: {answer}"));
    cookie.split(';').next().unwrap().to_string()
}

#[test]
fn sessions_are_ids_and_tokens_expire_and_may_be_limited_to_apps() {
    let mine = TestApp::new("stokm");
    let other = TestApp::new("stoko");
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (d, a) in [(&d1, &mine), (&d2, &other)] {
        fs::write(
            d.path().join("compose.yaml"),
            format!("name: {}\nservices:\n  web:\n    image: {IMAGE}\n    init: true\n    command: [sleep, \"3600\"]\n", a.name),
        )
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {m}\n    source: {{ dir: {p1} }}\n    sync: {{ interval: 1h }}\n  - name: {o}\n    source: {{ dir: {p2} }}\n    sync: {{ interval: 1h }}\n",
            m = mine.name,
            o = other.name,
            p1 = d1.path().display(),
            p2 = d2.path().display()
        ),
    );
    wait_until(60, "both apps synced", || {
        s.app(&mine.name)["sync"] == "Synced" && s.app(&other.name)["sync"] == "Synced"
    });
    let others_op = s.app(&other.name)["last_operation"].as_i64().unwrap();

    // A token limited to one app sees only that one and may not touch the other.
    let limited = s.token_with(&["--role", "admin", "--app", &mine.name]);
    let t = Some(limited.as_str());
    let (status, v) = s.call("GET", "/api/v1/apps", t, None);
    assert_eq!(status, 200);
    let names: Vec<&str> = v["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [mine.name.as_str()]);
    assert_eq!(
        s.call("GET", &format!("/api/v1/apps/{}", mine.name), t, None)
            .0,
        200
    );
    for (method, path) in [
        ("GET", format!("/api/v1/apps/{}", other.name)),
        ("GET", format!("/api/v1/apps/{}/diff", other.name)),
        ("POST", format!("/api/v1/apps/{}/sync", other.name)),
        ("GET", format!("/api/v1/operations/{others_op}")),
        ("GET", format!("/apps/{}", other.name)),
        ("GET", "/api/v1/tokens".to_string()),
        ("POST", "/api/v1/reload".to_string()),
        ("GET", "/metrics".to_string()),
    ] {
        let body = (method == "POST").then(|| json!({}));
        let (status, v) = s.call(method, &path, t, body);
        assert_eq!(status, 403, "{method} {path}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains("limited to app(s)"),
            "{v}"
        );
    }
    // Drift in both apps: events for each; the limited token sees its app's only.
    for a in [&mine, &other] {
        docker(&["stop", "-t", "0", &a.container("web")]);
    }
    wait_until(60, "drift events of both apps", || {
        let all = s.get("/api/v1/events").to_string();
        all.contains(&format!("\"app\":\"{}\"", mine.name))
            && all.contains(&format!("\"app\":\"{}\"", other.name))
    });
    let events = s.call("GET", "/api/v1/events", t, None).1;
    assert!(!events["events"].as_array().unwrap().is_empty());
    assert!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["app"] == mine.name.as_str()),
        "{events}"
    );
    // A limit to an app that is not configured is refused, saying which apps are.
    let out = s.token_command(&["--role", "viewer", "--app", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("app nope is not configured") && stderr.contains(&mine.name),
        "{stderr}"
    );
    let out = s.token_command(&["--role", "viewer", "--expires", "soon"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid lifetime \"soon\""));
    // An expired token is refused.
    let brief = s.token_with(&["--role", "viewer", "--expires", "1s"]);
    assert_eq!(s.call("GET", "/api/v1/apps", Some(&brief), None).0, 200);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (status, v) = s.call("GET", "/api/v1/apps", Some(&brief), None);
    assert_eq!(status, 401, "{v}");
    assert!(v["error"].as_str().unwrap().contains("expired"), "{v}");
    // The API makes limited, expiring tokens too.
    let (status, v) = s.call(
        "POST",
        "/api/v1/tokens",
        Some(&s.admin),
        Some(json!({"name": "ci", "role": "viewer", "expires": "30d", "apps": [other.name]})),
    );
    assert_eq!(status, 201, "{v}");
    assert!(v["expires_at"].as_i64().unwrap() > 0);
    let api_made = v["token"].as_str().unwrap().to_string();
    let (_, v) = s.call("GET", "/api/v1/apps", Some(&api_made), None);
    assert_eq!(v["apps"].as_array().unwrap().len(), 1);
    assert_eq!(v["apps"][0]["name"], other.name.as_str());

    // The session cookie holds a random id, never the token.
    let viewer = s.token("viewer");
    let cookie = log_in(&s, &viewer);
    assert!(cookie.starts_with("mooring_session=mrs_"), "{cookie}");
    assert!(
        !cookie.contains(&viewer[4..]),
        "the token is not in the cookie"
    );
    assert_eq!(with_cookie(&s, "GET", "/api/v1/apps", &cookie).0, 200);
    // The token itself as a cookie is no session.
    assert_eq!(
        with_cookie(
            &s,
            "GET",
            "/api/v1/apps",
            &format!("mooring_session={viewer}")
        )
        .0,
        401
    );
    // It survives a restart of the daemon (sessions are in the store)…
    s.kill9();
    s.spawn();
    assert_eq!(with_cookie(&s, "GET", "/api/v1/apps", &cookie).0, 200);
    // …and ends at log-out, even for a copy of the cookie.
    assert_eq!(with_cookie(&s, "POST", "/logout", &cookie).0, 303);
    let (status, body) = with_cookie(&s, "GET", "/api/v1/apps", &cookie);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("log in again"), "{body}");
    // A session dies with its token.
    let cookie = log_in(&s, &viewer);
    let id = s.get("/api/v1/tokens")["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| viewer.starts_with(t["prefix"].as_str().unwrap()))
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        s.call(
            "DELETE",
            &format!("/api/v1/tokens/{id}"),
            Some(&s.admin),
            None
        )
        .0,
        200
    );
    assert_eq!(with_cookie(&s, "GET", "/api/v1/apps", &cookie).0, 401);
    // A limited token's session: its overview lists its app only.
    let cookie = log_in(&s, &limited);
    let (status, page) = with_cookie(&s, "GET", "/", &cookie);
    assert_eq!(status, 200);
    assert!(
        page.contains(&mine.name) && !page.contains(&other.name),
        "{page}"
    );
}

/// A committed compose file asks for the daemon's secrets: interpolation never sees
/// them. It sees the project's `.env`, the app's `variables` and its `pass_env`
/// allow-list; secret and `mask_env` values reach the container but are masked in the
/// diff a viewer reads.
#[test]
fn interpolation_never_sees_the_daemons_environment_and_secrets_are_masked() {
    let app = TestApp::new("senv");
    let repo = Repo::new("envprobe");
    let compose = |db: &str| {
        format!(
            "name: {}\nservices:\n  web:\n    image: {IMAGE}\n    init: true\n    command: [sleep, \"3600\"]\n    environment:\n      PROBE: \"${{PROBE_SECRET:-absent}}\"\n      GITPW: \"${{PROBE_GIT_PASSWORD:-absent}}\"\n      HOOK: \"${{PROBE_HOOK_SECRET:-absent}}\"\n      OWN: \"${{MOORING_LOG:-absent}}\"\n      FROM_DOTENV: \"${{DOTENV_VALUE}}\"\n      GIVEN: \"${{GIVEN}}\"\n      URL: \"postgres://u:${{DB_PASSWORD}}@{db}/x\"\n      PASSED: \"${{PROBE_PASSED}}\"\n      TOKEN_VALUE: \"${{PROBE_TOKEN}}\"\n",
            app.name
        )
    };
    repo.write("compose.yaml", &compose("db"))
        .write(".env", "DOTENV_VALUE=from-dotenv\n");
    repo.commit("probe");
    let git = Daemon::serve(&repo);
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("given.secret"), "given-value\n").unwrap();
    // A credential file a `kill -9` left behind: removed when the daemon starts.
    let leftover = dir
        .path()
        .join("state/sources/.credentials/4999997-git-AbC");
    fs::create_dir_all(&leftover).unwrap();
    fs::write(leftover.join("store"), "http://u:left-behind@h\n").unwrap();
    let secrets = [
        ("PROBE_SECRET", "probe-secret-value"),
        ("PROBE_GIT_PASSWORD", "git-password-value"),
        ("PROBE_HOOK_SECRET", "hook-secret-value"),
        ("PROBE_PASSED", "passed-value"),
        ("PROBE_TOKEN", "token-value"),
    ];
    let s = Server::start_with_env(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\nwebhooks:\n  generic: {{ secret: env:PROBE_HOOK_SECRET }}\napps:\n  - name: {}\n    source: {{ git: {}, ref: main, username: ops, password: env:PROBE_GIT_PASSWORD }}\n    sync: {{ interval: 1h }}\n    variables: {{ GIVEN: file:given.secret, DB_PASSWORD: db-hunter2 }}\n    pass_env: [PROBE_PASSED, PROBE_TOKEN]\n    mask_env: [TOKEN_*]\n",
            app.name,
            git.url(&repo)
        ),
        &secrets,
    );
    wait_until(60, "first sync", || s.app(&app.name)["sync"] == "Synced");
    assert!(!leftover.exists(), "the leftover credential folder is gone");
    let env = env_of(&app.container("web"));
    for line in [
        "PROBE=absent",
        "GITPW=absent",
        "HOOK=absent",
        "OWN=absent",
        "FROM_DOTENV=from-dotenv",
        "GIVEN=given-value",
        "URL=postgres://u:db-hunter2@db/x",
        "PASSED=passed-value",
        "TOKEN_VALUE=token-value",
    ] {
        assert!(env.lines().any(|l| l == line), "{line} in:\n{env}");
    }

    // A new commit changes the URL around the secret: the viewer's diff says it
    // changed without showing it, nor any other secret.
    repo.write("compose.yaml", &compose("db2"));
    repo.commit("db2");
    let viewer = s.token("viewer");
    let path = format!("/api/v1/apps/{}/diff", app.name);
    let mut diff = Value::Null;
    wait_until(30, "the diff to show the new commit", || {
        let (status, v) = s.call("GET", &path, Some(&viewer), None);
        assert_eq!(status, 200, "{v}");
        diff = v;
        diff["in_sync"] == false
    });
    let text = diff.to_string();
    // The plan names the field that changed, its values masked.
    let reason = diff["steps"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("environment.URL: *** ("), "{reason}");
    for (_, secret) in &secrets[..3] {
        assert!(!text.contains(secret), "{secret} in the diff: {text}");
    }
    for secret in ["db-hunter2", "given-value", "token-value"] {
        assert!(!text.contains(secret), "{secret} in the diff: {text}");
    }
    let fields: Vec<&Value> = diff["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["fields"].as_array().unwrap())
        .collect();
    let field = |name: &str| *fields.iter().find(|f| f["name"] == name).unwrap();
    let url = field("env URL");
    assert_eq!(url["differs"], true, "{url}");
    assert!(
        url["desired"].as_str().unwrap().starts_with("*** (")
            && url["live"].as_str().unwrap().starts_with("*** (")
            && url["desired"] != url["live"],
        "{url}"
    );
    for name in ["env GIVEN", "env TOKEN_VALUE"] {
        let f = field(name);
        assert!(f["desired"].as_str().unwrap().starts_with("*** ("), "{f}");
        assert_eq!(f["differs"], false, "{f}");
    }
    assert_eq!(field("env PASSED")["desired"], "passed-value");
    assert_eq!(field("env PROBE")["desired"], "absent");

    // A commit that reads a secret back through a render error gets `***`.
    repo.write(
        "compose.yaml",
        &format!("{}    ports: [\"${{DB_PASSWORD}}:80\"]\n", compose("db3")),
    );
    repo.commit("leak through an error");
    let get = |path: String| s.call("GET", &path, Some(&viewer), None).1;
    let mut seen = String::new();
    wait_until(60, "the render error to be recorded", || {
        let (status, _) = s.call(
            "POST",
            &format!("/api/v1/apps/{}/refresh", app.name),
            Some(&s.admin),
            None,
        );
        assert_eq!(status, 202);
        std::thread::sleep(std::time::Duration::from_secs(1));
        seen = format!(
            "{} {} {}",
            get(format!("/api/v1/apps/{}/operations", app.name)),
            get(format!("/api/v1/apps/{}", app.name)),
            s.logs()
        );
        seen.contains("***:80")
    });
    assert!(seen.contains("invalid"), "{seen}");
    assert!(!seen.contains("db-hunter2"), "{seen}");
    let state = walk(&dir.path().join("state")).join("\n");
    for secret in [
        "git-password-value",
        "hook-secret-value",
        "probe-secret-value",
        "db-hunter2",
    ] {
        assert!(!state.contains(secret), "{secret} on disk");
    }
}

#[test]
fn readers_never_wait_for_a_running_sync() {
    let app = TestApp::new("sread");
    let dir = tempfile::tempdir().unwrap();
    let proj = tempfile::tempdir().unwrap();
    // `web` waits for `db` to be healthy, which takes 20 s: the sync runs that long.
    let compose = format!(
        "name: {a}\nservices:\n  db:\n    image: {IMAGE}\n    init: true\n    command: [\"sh\", \"-c\", \"sleep 20; touch /tmp/ready; exec sleep 3600\"]\n    healthcheck:\n      test: [\"CMD\", \"test\", \"-f\", \"/tmp/ready\"]\n      interval: 1s\n      retries: 60\n  web:\n    image: {IMAGE}\n    init: true\n    command: [\"sleep\", \"3600\"]\n    depends_on:\n      db: {{ condition: service_healthy }}\n",
        a = app.name
    );
    fs::write(proj.path().join("compose.yaml"), compose).unwrap();
    let s = Server::start(dir.path(), &format!("server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {}\n    source: {{ dir: {} }}\n    sync: {{ interval: 1h }}\n", app.name, proj.path().display()));
    wait_until(30, "db to be created", || {
        app.containers().iter().any(|c| c.contains("-db-1"))
    });
    let cookie = log_in(&s, &s.admin);
    let path = format!("/api/v1/apps/{}", app.name);
    let start = std::time::Instant::now();
    let (status, v) = s.call("GET", &path, Some(&s.admin), None);
    let api = start.elapsed();
    assert_eq!(status, 200, "{v}");
    let start = std::time::Instant::now();
    let (status, page) = with_cookie(&s, "GET", &format!("/apps/{}", app.name), &cookie);
    let ui = start.elapsed();
    assert_eq!(status, 200, "{page}");
    // Both were read while the sync ran: its operation has no result yet.
    let running = s.app(&app.name)["operations"][0].clone();
    assert_eq!(running["result"], Value::Null, "{running}");
    // Well under the sync's 20 s (a loaded machine may take a second or two to answer).
    assert!(api < Duration::from_secs(8), "GET {path} took {api:?}");
    assert!(ui < Duration::from_secs(8), "the app page took {ui:?}");
    // The resource tree is the project being applied.
    assert!(
        v["resources"].as_array().is_some_and(|r| !r.is_empty()),
        "{v}"
    );
    wait_until(60, "the sync to finish", || {
        s.app(&app.name)["sync"] == "Synced"
    });
}

#[test]
fn a_reload_onto_an_unreachable_docker_host_is_taken_and_the_app_says_why_it_waits() {
    let app = TestApp::new("sgone");
    let proj = tempfile::tempdir().unwrap();
    fs::write(
        proj.path().join("compose.yaml"),
        format!("name: {}\nservices:\n  web:\n    image: {IMAGE}\n    init: true\n    command: [sleep, \"3600\"]\n", app.name),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let apps = format!(
        "apps:\n  - name: {}\n    source: {{ dir: {} }}\n    sync: {{ interval: 1h }}\n",
        app.name,
        proj.path().display()
    );
    let s = Server::start(
        dir.path(),
        &format!("server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\n{apps}"),
    );
    // The first sync done: nothing in flight when the test ends (a network create the
    // killed daemon had asked for could land after the clean-up and outlive the test).
    wait_until(60, "synced", || s.app(&app.name)["sync"] == "Synced");
    let header = format!(
        "server: {{ listen: 127.0.0.1:{}, data_dir: ./state }}\n",
        s.port
    );
    // The app moves to a host whose Docker socket does not exist. A host that does
    // not answer never keeps a configuration (and other hosts' apps) from running:
    // the reload is taken, and the app says why it waits, and until when it is retried.
    fs::write(
        &s.config,
        format!("{header}hosts:\n  gone: {{ docker: unix:///nonexistent/docker.sock }}\n{apps}    host: gone\n"),
    )
    .unwrap();
    let (status, v) = s.call("POST", "/api/v1/reload", Some(&s.admin), None);
    assert_eq!(status, 200, "{v}");
    let (status, v) = s.call(
        "POST",
        &format!("/api/v1/apps/{}/sync", app.name),
        Some(&s.admin),
        None,
    );
    assert_eq!(status, 502, "{v}");
    let condition = s.app(&app.name)["conditions"].to_string();
    assert!(
        condition.contains("HostUnreachable")
            && condition.contains("host gone (unix:///nonexistent/docker.sock) is unreachable"),
        "{condition}"
    );
    assert_eq!(
        s.get("/api/v1/apps")["apps"][0]["name"],
        json!(app.name),
        "the daemon serves on"
    );
}

#[test]
fn a_missing_configuration_says_how_to_name_one() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["serve"][..], &["token", "create", "--role", "viewer"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_mooring"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("MOORING_CONFIG")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("cannot read mooring.yaml")
                && err.contains("--config FILE or MOORING_CONFIG"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn health_follows_dockers_health_check_as_it_changes() {
    let app = TestApp::new("shealth");
    let repo = Repo::new("healthy");
    repo.write(
        "compose.yaml",
        &format!(
            "name: {}\nservices:\n  web:\n    image: {IMAGE}\n    init: true\n    command: [\"sh\", \"-c\", \"touch /tmp/ok; exec sleep 3600\"]\n    healthcheck:\n      test: [\"CMD\", \"test\", \"-f\", \"/tmp/ok\"]\n      interval: 1s\n      timeout: 1s\n      retries: 2\n",
            app.name
        ),
    );
    repo.commit("one");
    let git = Daemon::serve(&repo);
    let url = git.url(&repo);
    let dir = tempfile::tempdir().unwrap();
    // The interval is an hour: only Docker's events can bring the health up to date.
    let s = Server::start(dir.path(), &format!("server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {}\n    source: {{ git: {url}, ref: main }}\n    sync: {{ interval: 1h }}\n", app.name));
    wait_until(60, "healthy", || s.app(&app.name)["health"] == "Healthy");
    let web = app.container("web");
    // What the check looks for goes away: Docker's check fails, and the app says so.
    docker(&["exec", &web, "rm", "-f", "/tmp/ok"]);
    wait_until(30, "unhealthy reported", || {
        s.app(&app.name)["health"] == "Degraded"
    });
    // Stopped by hand: self-heal starts it again, and Healthy follows Docker's check.
    docker(&["stop", &web]);
    wait_until(30, "healthy again within seconds", || {
        s.app(&app.name)["health"] == "Healthy"
    });
}

#[test]
fn operations_are_logged_at_start_and_end_as_json_lines() {
    let app = TestApp::new("slog");
    let proj = tempfile::tempdir().unwrap();
    fs::write(proj.path().join("compose.yaml"), format!("name: {}\nservices:\n  web:\n    image: {IMAGE}\n    init: true\n    command: [sleep, \"3600\"]\n", app.name)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with_env(
        dir.path(),
        &format!("server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {}\n    source: {{ dir: {} }}\n    sync: {{ interval: 1h }}\n", app.name, proj.path().display()),
        &[("MOORING_LOG_FORMAT", "json")],
    );
    wait_until(60, "synced", || s.app(&app.name)["sync"] == "Synced");
    let lines: Vec<Value> = s
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let has = |message: &str, key: &str, value: &str| {
        lines
            .iter()
            .any(|l| l["fields"]["message"] == message && l["fields"][key] == value)
    };
    assert!(has("operation started", "app", &app.name), "{}", s.logs());
    assert!(
        has("operation ended", "result", "succeeded"),
        "{}",
        s.logs()
    );
    let logs = s.logs();
    assert!(
        logs.lines()
            .filter(|l| !l.trim().is_empty())
            .all(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v["level"].is_string())),
        "every line is a JSON object: {logs}"
    );
}
