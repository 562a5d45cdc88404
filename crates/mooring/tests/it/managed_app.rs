//! Commands on an app a running daemon manages: one data directory (the
//! configuration's); `backup create|restore` sent to the daemon and run as operations of
//! the app — under its lock, so self-heal does not start the writers a backup stopped —
//! with a refused restore refused before anything is stopped; `diff` is the daemon's, a
//! one-shot `sync` refused. Against a real `mooring serve` and the machine's Docker.

use crate::common::daemon::{wait_until, Server};
use crate::common::*;
use serde_json::Value;
use std::process::{Command, Output};

/// `mooring backup ARGS` run as an operator would: the configuration names the data
/// directory and the daemon; no `--data-dir`, no `--server`.
fn backup_cli(s: &Server, token: &str, args: &[&str]) -> Output {
    cli(s, token, &[&["backup"], args].concat())
}

/// `mooring ARGS --config CONFIG`, with `token`.
fn cli(s: &Server, token: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mooring"))
        .args(args)
        .arg("--config")
        .arg(&s.config)
        .env("MOORING_TOKEN", token)
        .env_remove("MOORING_DATA_DIR")
        .env_remove("MOORING_SERVER")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn operations(s: &Server, app: &str) -> Vec<Value> {
    s.get(&format!("/api/v1/apps/{app}/operations"))["operations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The demo project in a plain folder, managed by a running daemon that syncs it every
/// `interval`; waits for its first sync. `(app, project folder, daemon folder, daemon)`.
fn managed(
    prefix: &str,
    interval: &str,
) -> (TestApp, tempfile::TempDir, tempfile::TempDir, Server) {
    let app = TestApp::new(prefix);
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("compose.yaml"),
        demo_compose(&app.name, "one"),
    )
    .unwrap();
    std::fs::create_dir(project.path().join("site")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {}\n    source: {{ dir: {} }}\n    sync: {{ interval: {interval} }}\n",
            app.name,
            project.path().display()
        ),
    );
    wait_until(60, "first sync", || s.app(&app.name)["sync"] == "Synced");
    (app, project, dir, s)
}

#[test]
fn backups_and_restores_of_a_managed_app_are_its_operations() {
    // Self-heal on, every second: a writer stopped behind its back is started at once.
    let (app, project, _dir, s) = managed("dbk", "1s");
    let operator = s.token("operator");
    let worker = app.container("worker");
    let volume = format!("{}_data", app.name);
    docker(&["exec", &worker, "sh", "-c", "echo one > /data/f"]);

    // `diff` of the project is the daemon's (in sync), a one-shot `sync` is refused.
    let folder = project.path().to_str().unwrap();
    let out = cli(&s, &operator, &["diff", folder]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("app {} is managed by the daemon", app.name)),
        "{stderr}"
    );
    let out = cli(&s, &operator, &["sync", folder]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("use `mooring app sync {}`", app.name)),
        "{stderr}"
    );

    let out = backup_cli(&s, &operator, &["create", &app.name]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("{volume}: 1 files")) && stdout.contains("(verified)"),
        "{stdout}"
    );
    // In the app's history, with one action per volume.
    let ops = operations(&s, &app.name);
    let op = ops
        .iter()
        .find(|o| o["trigger"] == "backup")
        .unwrap_or_else(|| panic!("no backup operation: {ops:?}"));
    assert!(
        stderr.contains(&format!(
            "operation #{} of app {} (backup)",
            op["id"], app.name
        )),
        "{stderr}"
    );
    assert_eq!(op["result"], "succeeded", "{op}");
    assert_eq!(
        op["actions"][0]["resource"],
        format!("back up volume {volume}").as_str()
    );
    // Nothing else touched the app while its writer was stopped: self-heal waited.
    let (from, to) = (
        op["started_at"].as_i64().unwrap(),
        op["finished_at"].as_i64().unwrap(),
    );
    for other in ops.iter().filter(|o| o["id"] != op["id"]) {
        for a in other["actions"].as_array().into_iter().flatten() {
            let at = a["started_at"].as_i64().unwrap();
            assert!(
                at < from || at > to,
                "{a} ran during the backup ({from}..{to})"
            );
        }
    }
    // The daemon's catalogue shows it: one data directory for both.
    let id = stdout.split_whitespace().next().unwrap().to_string();
    let listed = s.get(&format!("/api/v1/apps/{}/backups", app.name));
    assert!(listed.to_string().contains(&id), "{listed}");
    let out = backup_cli(&s, &operator, &["list", &app.name]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&id));

    // A restore into the volume that now holds other data is refused, and nothing was
    // stopped for it, nor any operation started.
    docker(&["exec", &worker, "sh", "-c", "echo two > /data/f"]);
    let started = inspect(&worker, "{{.State.StartedAt}}");
    let count = operations(&s, &app.name).len();
    let out = backup_cli(&s, &operator, &["restore", &id]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("volume {volume} is not empty")) && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(inspect(&worker, "{{.State.StartedAt}}"), started);
    assert_eq!(operations(&s, &app.name).len(), count);
    // Through the API the refusal is a conflict.
    let (status, v) = s.call(
        "POST",
        &format!("/api/v1/apps/{}/backups/{id}/restore", app.name),
        Some(&operator),
        Some(serde_json::json!({})),
    );
    assert_eq!(status, 409, "{v}");

    // With --force: restored as an operation of the app; the writer runs again.
    let out = backup_cli(&s, &operator, &["restore", &id, "--force"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("{id} restored into {volume}: 1 files")),
        "{stdout}"
    );
    assert_eq!(docker(&["exec", &worker, "cat", "/data/f"]).trim(), "one");
    let newest = operations(&s, &app.name)
        .into_iter()
        .find(|o| o["trigger"] == "restore")
        .expect("a restore operation");
    assert_eq!(newest["result"], "succeeded", "{newest}");
    assert_eq!(inspect(&worker, "{{.State.Running}}"), "true");

    // A viewer may read but not back up.
    let viewer = s.token("viewer");
    let out = backup_cli(&s, &viewer, &["create", &app.name]);
    assert_eq!(out.status.code(), Some(1));
}

/// With the daemon stopped, the same command works on the volumes directly, in the
/// same data directory, and says so.
#[test]
fn without_the_daemon_a_backup_is_taken_directly_into_the_same_catalogue() {
    let (app, _project, dir, mut s) = managed("dbkoff", "1h");
    s.kill9();
    let out = backup_cli(&s, "", &["create", &app.name]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("does not answer"), "{stderr}");
    let id = stdout.split_whitespace().next().unwrap().to_string();
    let in_config_data_dir = std::fs::read_dir(dir.path().join("state/backups"))
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with(&id));
    assert!(in_config_data_dir, "the backup is in server.data_dir");
}
