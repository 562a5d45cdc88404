//! Drift on the machine's Docker daemon, from a plain-directory source: every kind of
//! hand-made change is named by `diff` (exit 2) and reverted by `sync`.

use crate::common::*;
use std::fs;

fn project(app: &TestApp, image: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let compose = demo_compose(&app.name, "hello").replace(
        &format!("image: {IMAGE}\n    init: true\n    command: [\"sleep\""),
        &format!("image: {image}\n    init: true\n    command: [\"sleep\""),
    );
    fs::write(dir.path().join("compose.yaml"), compose).unwrap();
    fs::create_dir(dir.path().join("site")).unwrap();
    fs::write(dir.path().join("site/index.html"), "hi").unwrap();
    dir
}

#[test]
fn drift_is_named_and_reverted() {
    let app = TestApp::new("mdrift");
    let tag = format!("mooring.local/{}:v1", app.name);
    docker(&["tag", IMAGE, &tag]);
    let dir = project(&app, &tag);
    let src = dir.path().to_str().unwrap();
    app.expect(0, &["sync", src]);
    app.expect(0, &["diff", src]);
    let (web, worker) = (app.container("web"), app.container("worker"));

    // Stopped by hand.
    docker(&["stop", "-t", "1", &worker]);
    let diff = app.expect(2, &["diff", src]);
    assert!(
        diff.contains(&format!("start container {worker}")) && diff.contains("exited"),
        "{diff}"
    );
    app.expect(0, &["sync", src]);
    assert_eq!(inspect(&worker, "{{.State.Status}}"), "running");

    // Removed by hand.
    docker(&["rm", "-f", &web]);
    let diff = app.expect(2, &["diff", src]);
    assert!(diff.contains(&format!("create container {web}")), "{diff}");
    app.expect(0, &["sync", src]);
    assert_eq!(inspect(&web, "{{.State.Status}}"), "running");

    // Restart policy and memory changed with `docker update`.
    docker(&["update", "--restart", "no", &web]);
    let diff = app.expect(2, &["diff", src]);
    assert!(
        diff.contains("restart policy is no (changed by hand); desired unless-stopped"),
        "{diff}"
    );
    app.expect(0, &["sync", src]);
    assert_eq!(
        inspect(&web, "{{.HostConfig.RestartPolicy.Name}}"),
        "unless-stopped"
    );
    docker(&["update", "--memory", "64m", "--memory-swap", "64m", &worker]);
    let diff = app.expect(2, &["diff", src]);
    assert!(
        diff.contains("memory limit is 64MiB (changed by hand)"),
        "{diff}"
    );
    app.expect(0, &["sync", src]);
    assert_eq!(inspect(&worker, "{{.HostConfig.Memory}}"), "0");

    // A different image behind the same tag.
    let old_image = inspect(&worker, "{{.Image}}");
    let tmp = format!("{}-imgsrc", app.name);
    docker(&["run", "--name", &tmp, IMAGE, "touch", "/new-layer"]);
    docker(&["commit", &tmp, &tag]);
    docker(&["rm", &tmp]);
    let new_image = inspect(&tag, "{{.Id}}");
    assert_ne!(old_image, new_image);
    let diff = app.expect(2, &["diff", src]);
    assert!(
        diff.contains(&format!("recreate container {worker}")) && diff.contains("now points to"),
        "{diff}"
    );
    app.expect(0, &["sync", src]);
    assert_eq!(inspect(&worker, "{{.Image}}"), new_image);

    // An extra container carrying the app's label.
    let extra = format!("{}-intruder", app.name);
    docker(&[
        "run",
        "-d",
        "--name",
        &extra,
        "--label",
        &format!("io.mooring.app={}", app.name),
        "--label",
        "com.docker.compose.service=ghost",
        IMAGE,
        "sleep",
        "600",
    ]);
    let diff = app.expect(2, &["diff", src]);
    assert!(
        diff.contains(&format!("orphan container {extra} kept")),
        "{diff}"
    );
    let diff = app.expect(2, &["diff", src, "--prune"]);
    assert!(
        diff.contains(&format!("remove container {extra}")),
        "{diff}"
    );
    app.expect(0, &["sync", "--prune", src]);
    assert_eq!(
        app.containers(),
        [format!("{web} running"), format!("{worker} running")]
    );
    let json = app.expect(0, &["diff", src, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["in_sync"], true);
}

#[test]
fn dry_run_changes_nothing() {
    let app = TestApp::new("mdry");
    let dir = project(&app, IMAGE);
    let src = dir.path().to_str().unwrap();
    let out = app.expect(0, &["sync", "--dry-run", src]);
    assert!(
        out.contains("dry run") && out.contains("create container"),
        "{out}"
    );
    assert!(app.containers().is_empty());
    let nets = app.networks();
    assert!(nets.is_empty());
}
