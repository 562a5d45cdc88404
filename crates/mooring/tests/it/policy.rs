//! The policy against the real thing: repository content that asks for the host (the
//! Docker socket, a capability, a host path) committed to a Git repository a real
//! `mooring serve` watches, and the one-shot `mooring sync`, on the machine's Docker.

use crate::common::daemon::{wait_until, Server};
use crate::common::*;
use serde_json::Value;

/// A compose file whose one service asks for `extra` (YAML lines under the service).
fn compose(app: &str, extra: &str) -> String {
    format!(
        "name: {app}\nservices:\n  box:\n    image: {IMAGE}\n    init: true\n    command: [sleep, \"3600\"]\n{extra}"
    )
}

const TAKEOVER: &str =
    "    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock\n    cap_add: [SYS_ADMIN]\n";

fn exists(container: &str) -> bool {
    docker_output(&["inspect", container]).status.success()
}

fn conditions(app: &Value) -> String {
    app["conditions"].to_string()
}

fn notes_of(op: &Value) -> Vec<String> {
    op["notes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_commit_cannot_take_the_host_and_exceptions_are_the_operators() {
    let evil = TestApp::new("polx");
    let media = TestApp::new("polm");
    let host_dir = tempfile::tempdir().unwrap();
    let host_path = host_dir.path().to_string_lossy().to_string();
    let repo = Repo::new("policy");
    repo.write("evil/compose.yaml", &compose(&evil.name, TAKEOVER))
        .write(
            "media/compose.yaml",
            &compose(
                &media.name,
                &format!("    volumes:\n      - {host_path}:/media:ro\n"),
            ),
        );
    repo.commit("one");
    let git = Daemon::serve(&repo);
    let url = git.url(&repo);
    let dir = tempfile::tempdir().unwrap();
    let config = |evil_policy: &str| {
        format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {e}\n    source: {{ git: {url}, ref: main, path: evil }}\n    sync: {{ interval: 1h }}\n{evil_policy}  - name: {m}\n    source: {{ git: {url}, ref: main, path: media }}\n    sync: {{ interval: 1h }}\n",
            e = evil.name,
            m = media.name
        )
    };
    let mut s = Server::start(dir.path(), &config(""));

    // Baseline (the default): the takeover is refused before anything is applied.
    wait_until(60, "the refusal", || {
        conditions(&s.app(&evil.name)).contains("PolicyRefused")
    });
    let app = s.app(&evil.name);
    let op = &app["operations"][0];
    assert_eq!(op["result"], "failed", "{app}");
    let error = op["error"].as_str().unwrap_or_default();
    for expected in [
        "evil/compose.yaml:8:9: services.box.volumes: /var/run/docker.sock:/var/run/docker.sock exposes the Docker socket",
        "add `docker_socket` to the app's `policy.allow`",
        "evil/compose.yaml:9:15: services.box.cap_add: adds capability SYS_ADMIN",
        "`cap:SYS_ADMIN`",
        "nothing was applied",
    ] {
        assert!(error.contains(expected), "{expected:?} missing from: {error}");
    }
    assert!(!exists(&evil.container("box")), "nothing may be created");

    // What baseline allows but is notable reaches the plan, the API and the record.
    wait_until(60, "the media app", || {
        s.app(&media.name)["sync"] == "Synced"
    });
    assert!(exists(&media.container("box")));
    let op = &s.app(&media.name)["operations"][0];
    let expected = format!("{host_path}:/media:ro: a host path outside the repository");
    assert!(
        notes_of(op)
            .iter()
            .any(|n| n.contains(&expected) && n.contains("media/compose.yaml:8:9")),
        "{op}"
    );
    let diff = s.get(&format!("/api/v1/apps/{}/diff", media.name));
    assert!(
        diff["plan"]["notes"].to_string().contains(&expected),
        "{diff}"
    );

    // The operator, not the committer, grants the exception.
    s.terminate();
    std::fs::write(
        dir.path().join("mooring.yaml"),
        config("    policy: { profile: baseline, allow: [docker_socket, \"cap:SYS_ADMIN\"] }\n")
            .replace("{port}", &s.port.to_string()),
    )
    .unwrap();
    s.spawn();
    wait_until(60, "the allowed deploy", || {
        s.app(&evil.name)["sync"] == "Synced"
    });
    assert!(exists(&evil.container("box")));
    let app = s.app(&evil.name);
    assert_eq!(
        app["host_policy"],
        serde_json::json!({"profile": "baseline", "allow": ["docker_socket", "cap:SYS_ADMIN"], "allow_refs": []})
    );
    let op = &app["operations"][0];
    let notes = notes_of(op).join("\n");
    assert!(notes.contains("exposes the Docker socket"), "{notes}");
    assert!(notes.contains("adds capability SYS_ADMIN"), "{notes}");
}

#[test]
fn one_shot_sync_refuses_until_allowed() {
    let app = TestApp::new("polc");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        compose(&app.name, TAKEOVER),
    )
    .unwrap();
    let project = dir.path().to_str().unwrap();
    let out = app.expect(1, &["sync", project]);
    assert!(out.contains("compose.yaml:8:9"), "{out}");
    assert!(out.contains("--allow docker_socket"), "{out}");
    assert!(out.contains("--allow cap:SYS_ADMIN"), "{out}");
    assert!(!exists(&app.container("box")), "nothing may be created");

    let out = app.expect(1, &["sync", project, "--allow", "docker_socket"]);
    assert!(
        out.contains("cap:SYS_ADMIN") && !out.contains("--allow docker_socket"),
        "{out}"
    );

    let out = app.expect(
        0,
        &[
            "sync",
            project,
            "--allow",
            "docker_socket",
            "--allow",
            "cap:SYS_ADMIN",
        ],
    );
    assert!(
        out.contains("exposes the Docker socket"),
        "the plan notes it: {out}"
    );
    assert!(exists(&app.container("box")));

    // `restricted` refuses any host path; `privileged` takes anything.
    std::fs::write(
        dir.path().join("compose.yaml"),
        compose(&app.name, "    volumes:\n      - /srv:/srv:ro\n"),
    )
    .unwrap();
    let out = app.expect(1, &["diff", project, "--policy", "restricted"]);
    assert!(out.contains("--allow host_path:/srv"), "{out}");
    app.expect(2, &["diff", project, "--policy", "privileged"]);
}

#[test]
fn only_the_configured_refs_history_is_deployed_unless_allowed() {
    let app = TestApp::new("polr");
    let repo = Repo::new("refs");
    repo.write("compose.yaml", &demo_compose(&app.name, "one"))
        .write("site/index.html", "x");
    let one = repo.commit("one");
    repo.write("compose.yaml", &demo_compose(&app.name, "two"));
    repo.commit("two");
    // A committer pushes a branch the operator never configured.
    let git_in = |args: &[&str]| mooring_testkit::git::git(&repo.work, args);
    git_in(&["checkout", "-q", "-b", "evil"]);
    repo.write("compose.yaml", &demo_compose(&app.name, "evil"));
    git_in(&["commit", "-q", "-am", "evil"]);
    git_in(&["push", "-q", "origin", "HEAD:evil"]);
    let evil = git_in(&["rev-parse", "HEAD"]);
    let git = Daemon::serve(&repo);
    let url = git.url(&repo);
    let dir = tempfile::tempdir().unwrap();
    let config = |extra: &str| {
        format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {}\n    source: {{ git: {url}, ref: main{extra} }}\n    sync: {{ interval: 1h }}\n",
            app.name
        )
    };
    let mut s = Server::start(dir.path(), &config(""));
    wait_until(60, "first sync", || s.app(&app.name)["sync"] == "Synced");
    let web = app.container("web");
    assert!(env_of(&web).contains("GREETING=two"));
    let sync_to = |s: &Server, rev: &str| {
        s.call(
            "POST",
            &format!("/api/v1/apps/{}/sync", app.name),
            Some(&s.admin),
            Some(serde_json::json!({ "revision": rev })),
        )
    };

    let operations = |s: &Server| {
        s.app(&app.name)["operations"]
            .as_array()
            .map_or(0, Vec::len)
    };
    let before = operations(&s);
    for asked in ["evil", evil.trim()] {
        let (status, body) = sync_to(&s, asked);
        assert_eq!(status, 422, "{asked}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("is not in the history of main") && error.contains("allow_refs"),
            "{error}"
        );
        assert!(env_of(&web).contains("GREETING=two"), "nothing changed");
        // Refused before any operation starts: the app's state is not touched.
        assert_eq!(operations(&s), before, "{asked}: no operation");
        assert_eq!(s.app(&app.name)["sync"], "Synced");
    }
    // A pin stores only what the source resolves and the app may deploy.
    let pin = |rev: &str| {
        s.call(
            "POST",
            &format!("/api/v1/apps/{}/pin", app.name),
            Some(&s.admin),
            Some(serde_json::json!({ "revision": rev })),
        )
    };
    for asked in [
        "evil",
        "no-such-branch",
        "ünïcödé-ref-that-is-quite-long-indeed",
    ] {
        let (status, body) = pin(asked);
        assert_eq!(status, 422, "{asked}: {body}");
        assert!(
            s.app(&app.name)["pinned"].is_null(),
            "{asked} was not pinned"
        );
    }
    let (status, body) = pin("main");
    assert_eq!(status, 202, "{body}");
    let head = s.app(&app.name)["revision"].clone();
    assert_eq!(
        s.app(&app.name)["pinned"],
        head,
        "the resolved commit is pinned, not `main`"
    );
    let (status, _) = s.call(
        "POST",
        &format!("/api/v1/apps/{}/unpin", app.name),
        Some(&s.admin),
        None,
    );
    assert!(status < 300);

    // An older revision of the configured ref is fine (a rollback).
    let (status, body) = sync_to(&s, one.trim());
    assert_eq!(status, 200, "{body}");
    assert!(env_of(&web).contains("GREETING=one"));

    // The operator widens the refs; the pattern names the branch.
    s.terminate();
    std::fs::write(
        dir.path().join("mooring.yaml"),
        config(", allow_refs: [\"ev*\"]").replace("{port}", &s.port.to_string()),
    )
    .unwrap();
    s.spawn();
    wait_until(60, "restart", || s.app(&app.name)["sync"] == "Synced");
    let (status, body) = sync_to(&s, "evil");
    assert_eq!(status, 200, "{body}");
    assert!(env_of(&web).contains("GREETING=evil"));
}
