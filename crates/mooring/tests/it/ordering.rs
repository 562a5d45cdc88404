//! Dependency order and conditions, interrupted syncs, and images, on the machine's
//! Docker daemon.

use crate::common::*;
use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn dir_with(compose: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("compose.yaml"), compose).unwrap();
    dir
}

/// `db` becomes healthy after a while; `init` runs once; `web` waits for both.
fn chain(app: &str) -> String {
    format!(
        r#"name: {app}
services:
  db:
    image: {IMAGE}
    init: true
    command: ["sh", "-c", "sleep 2; touch /tmp/ready; exec sleep 3600"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
      timeout: 1s
      retries: 30
  init:
    image: {IMAGE}
    command: ["sh", "-c", "exit 0"]
  web:
    image: {IMAGE}
    init: true
    command: ["sleep", "3600"]
    depends_on:
      db:
        condition: service_healthy
      init:
        condition: service_completed_successfully
"#
    )
}

#[test]
fn conditions_are_waited_for_and_one_shots_not_rerun() {
    let app = TestApp::new("mdeps");
    let dir = dir_with(&chain(&app.name));
    let src = dir.path().to_str().unwrap();
    let out = app.expect(0, &["sync", src]);
    assert!(out.contains("waiting for db to be healthy"), "{out}");
    assert_eq!(
        inspect(&app.container("db"), "{{.State.Health.Status}}"),
        "healthy"
    );
    let web_started = inspect(&app.container("web"), "{{.State.StartedAt}}");
    let db_healthy_log = inspect(&app.container("db"), "{{(index .State.Health.Log 0).End}}");
    assert!(
        web_started > db_healthy_log,
        "web started ({web_started}) after db's first health check ({db_healthy_log})"
    );
    assert_eq!(inspect(&app.container("init"), "{{.State.ExitCode}}"), "0");
    let out = app.expect(0, &["sync", src]);
    assert!(
        out.contains("nothing to do"),
        "a completed one-shot is not rerun: {out}"
    );
}

#[test]
fn failing_dependency_stops_the_sync() {
    let app = TestApp::new("mfail");
    let compose = chain(&app.name).replace("exit 0", "exit 3");
    let dir = dir_with(&compose);
    let out = app.expect(1, &["sync", dir.path().to_str().unwrap()]);
    assert!(out.contains("exited with code 3"), "{out}");
    assert!(
        !app.containers().iter().any(|c| c.contains("-web-1")),
        "web was not created: {:?}",
        app.containers()
    );
}

#[test]
fn killed_sync_converges_on_the_next_run() {
    let app = TestApp::new("mkill");
    let dir = dir_with(&chain(&app.name));
    let src = dir.path().to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mooring"))
        .args(["sync", src])
        .env("MOORING_DATA_DIR", app.data.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it while it waits for db to become healthy (db exists, web does not yet).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !app.containers().iter().any(|c| c.contains("-db-1")) {
        assert!(Instant::now() < deadline, "db never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !app.containers().iter().any(|c| c.contains("-web-1")),
        "killed before web: {:?}",
        app.containers()
    );
    app.expect(0, &["sync", src]);
    let all = app.containers();
    assert_eq!(all.len(), 3, "no duplicates, no leftovers: {all:?}");
    assert!(all.iter().any(|c| c.ends_with("-web-1 running")), "{all:?}");
    let out = app.expect(0, &["sync", src]);
    assert!(out.contains("nothing to do"), "{out}");
}

/// A container of the app under the name a service's container must take, which the
/// observation does not count as that service's (here: no service label, as a create a
/// killed run left the Engine to finish late can look), is replaced by the sync instead
/// of failing it with "the name is taken"; another owner's container of that name is
/// still refused.
#[test]
fn a_leftover_of_the_app_under_the_name_is_replaced_and_anothers_refused() {
    let app = TestApp::new("mleft");
    let compose = format!(
        "name: {}\nservices:\n  web:\n    image: {IMAGE}\n    init: true\n    command: [sleep, \"3600\"]\n",
        app.name
    );
    let dir = dir_with(&compose);
    let src = dir.path().to_str().unwrap();
    let name = format!("{}-web-1", app.name);
    docker(&[
        "create",
        "--name",
        &name,
        "--label",
        &format!("io.mooring.app={}", app.name),
        IMAGE,
        "sleep",
        "3600",
    ]);
    let out = app.expect(0, &["sync", src]);
    assert!(out.contains(&format!("create container {name}")), "{out}");
    assert_eq!(
        inspect(
            &name,
            "{{index .Config.Labels \"com.docker.compose.service\"}}"
        )
        .trim(),
        "web",
        "the sync's own container took the name"
    );
    // Someone else's container of that name: refused, nothing removed.
    docker(&["rm", "-f", &name]);
    docker(&["create", "--name", &name, IMAGE, "sleep", "3600"]);
    let out = app.expect(1, &["sync", src]);
    assert!(out.contains("not managed by Mooring"), "{out}");
    assert!(inspect(&name, "{{.Id}}").trim().len() > 10, "still there");
    docker(&["rm", "-f", &name]);
}

#[test]
fn missing_images_fail_before_anything_is_created() {
    let app = TestApp::new("mimg");
    let compose = format!(
        "name: {}\nservices:\n  web:\n    image: mooring.local/{}:absent\n",
        app.name, app.name
    );
    let dir = dir_with(&compose);
    let src = dir.path().to_str().unwrap();
    let out = app.expect(1, &["sync", src]);
    assert!(
        out.contains("pull image") && out.contains("absent"),
        "{out}"
    );
    assert!(app.containers().is_empty());
    let nets = app.networks();
    assert!(nets.is_empty(), "nothing created before the pull succeeded");
    let never = compose.replace(":absent\n", ":absent\n    pull_policy: never\n");
    fs::write(dir.path().join("compose.yaml"), never).unwrap();
    let out = app.expect(1, &["diff", src]);
    assert!(out.contains("pull_policy is never"), "{out}");
}
