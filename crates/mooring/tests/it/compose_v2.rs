//! Docker Compose v2 — the real binary, `docker compose` — looking at what Mooring
//! deployed: a Mooring project is a Compose project to it (`ls`, `ps`, `logs`, `top`).

use crate::common::*;
use std::fs;

/// `docker compose ARGS`; Compose v2 must be installed (scripts/test-deps.sh installs
/// it): a missing one fails the test.
fn compose(args: &[&str]) -> String {
    let out = docker_output(&[&["compose"][..], args].concat());
    assert!(
        out.status.success(),
        "docker compose {args:?} failed (Compose v2 is installed by scripts/test-deps.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn compose_v2_lists_shows_logs_and_tops_a_mooring_project() {
    let app = TestApp::new("cv2");
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("compose.yaml"),
        format!(
            "name: {}\nservices:\n  db:\n    image: {IMAGE}\n    init: true\n    command: [sh, -c, 'echo db-ready; exec sleep 3600']\n  web:\n    image: {IMAGE}\n    init: true\n    command: [sh, -c, 'echo web-ready; exec sleep 3600']\n    depends_on: [db]\n",
            app.name
        ),
    )
    .unwrap();
    let d = dir.path().to_str().unwrap();
    app.expect(0, &["sync", d]);

    let ls = compose(&["ls", "--all", "--format", "json"]);
    let projects: serde_json::Value = serde_json::from_str(&ls).unwrap();
    let listed = projects
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["Name"] == app.name.as_str())
        .unwrap_or_else(|| panic!("docker compose ls does not list {}: {ls}", app.name));
    assert_eq!(listed["Status"], "running(2)", "{listed}");
    let files = listed["ConfigFiles"].as_str().unwrap();
    assert!(
        files.starts_with('/') && files.ends_with("compose.yaml"),
        "absolute config files, as Compose writes them: {files}"
    );

    let ps = compose(&["-p", &app.name, "ps", "--format", "{{.Service}} {{.State}}"]);
    let mut rows: Vec<&str> = ps.lines().collect();
    rows.sort_unstable();
    assert_eq!(rows, ["db running", "web running"], "{ps}");

    let logs = compose(&["-p", &app.name, "logs", "--no-color"]);
    assert!(
        logs.contains("db-ready") && logs.contains("web-ready"),
        "{logs}"
    );
    let top = compose(&["-p", &app.name, "top"]);
    assert!(top.contains("sleep 3600"), "{top}");

    // What Compose reads from the labels: the dependency and the image id.
    let web = format!("{}-web-1", app.name);
    assert_eq!(
        inspect(
            &web,
            "{{index .Config.Labels \"com.docker.compose.depends_on\"}}"
        )
        .trim(),
        "db:service_started:false"
    );
    assert_eq!(
        inspect(
            &web,
            "{{index .Config.Labels \"com.docker.compose.image\"}}"
        )
        .trim(),
        inspect(&web, "{{.Image}}").trim()
    );
}
