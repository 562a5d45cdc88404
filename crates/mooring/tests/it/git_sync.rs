//! End to end over Git: a repository served by `git daemon` on 127.0.0.1, the real
//! `mooring` binary, the machine's Docker daemon. First deploy, idempotence, an env
//! change, a mounted file change, removing a service with and without prune, and
//! going back to an earlier commit.

use crate::common::*;

#[test]
fn git_lifecycle_over_git_daemon() {
    let app = TestApp::new("mgit");
    let repo = Repo::new("infra");
    repo.write("apps/demo/compose.yaml", &demo_compose(&app.name, "hello"))
        .write("apps/demo/site/index.html", "v1")
        .write("README", "outside the app path");
    let first = repo.commit("first");
    let daemon = Daemon::serve(&repo);
    let url = daemon.url(&repo);
    let src = |extra: &[&str]| -> Vec<String> {
        let mut v = vec![url.clone(), "--path".into(), "apps/demo".into()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let args = |cmd: &str, extra: &[&str]| -> Vec<String> {
        let mut v = vec![cmd.to_string()];
        v.extend(src(extra));
        v
    };
    let run = |code: i32, cmd: &str, extra: &[&str]| -> String {
        let a = args(cmd, extra);
        app.expect(code, &a.iter().map(String::as_str).collect::<Vec<_>>())
    };

    // First deploy: diff says what, sync does it.
    let diff = run(2, "diff", &[]);
    assert!(
        diff.contains(&format!("create container {}-web-1", app.name)),
        "{diff}"
    );
    assert!(
        diff.contains(&first[..7]),
        "the commit id is printed: {diff}"
    );
    let out = run(0, "sync", &[]);
    assert!(out.contains("synced"), "{out}");
    assert_eq!(
        app.containers(),
        [
            format!("{}-web-1 running", app.name),
            format!("{}-worker-1 running", app.name)
        ]
    );
    let listed = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.compose.project={}", app.name),
    ]);
    assert_eq!(
        listed.lines().count(),
        2,
        "docker ps by compose project label lists both"
    );
    assert_eq!(
        docker(&["exec", &app.container("web"), "cat", "/www/index.html"]),
        "v1"
    );

    // Idempotent.
    let out = run(0, "sync", &[]);
    assert!(out.contains("nothing to do"), "{out}");
    run(0, "diff", &[]);
    let worker_id = app.id("worker");
    let web_id = app.id("web");

    // A commit outside the app's path changes nothing on the host.
    repo.write("README", "still outside");
    repo.commit("docs");
    assert!(run(0, "sync", &[]).contains("nothing to do"));

    // Env change: only web is recreated, with the reason named.
    repo.write(
        "apps/demo/compose.yaml",
        &demo_compose(&app.name, "bonjour"),
    );
    repo.commit("greet in French");
    let diff = run(2, "diff", &[]);
    assert!(
        diff.contains("recreate container") && diff.contains("environment GREETING changed"),
        "{diff}"
    );
    assert!(!diff.contains("worker-1"), "worker untouched: {diff}");
    run(0, "sync", &[]);
    assert_eq!(app.id("worker"), worker_id);
    assert_ne!(app.id("web"), web_id);
    let env = inspect(
        &app.container("web"),
        "{{range .Config.Env}}{{println .}}{{end}}",
    );
    assert!(env.lines().any(|l| l == "GREETING=bonjour"), "{env}");

    // Mounted file change redeploys web, and the container sees the new content.
    repo.write("apps/demo/site/index.html", "v2");
    repo.commit("new page");
    let diff = run(2, "diff", &[]);
    assert!(
        diff.contains("content of mounted repository files changed"),
        "{diff}"
    );
    run(0, "sync", &[]);
    assert_eq!(
        docker(&["exec", &app.container("web"), "cat", "/www/index.html"]),
        "v2"
    );
    assert_eq!(app.id("worker"), worker_id);

    // Remove a service: kept without --prune (and reported), removed with it; the volume stays.
    let compose = demo_compose(&app.name, "bonjour");
    let without_worker = compose.replace(
        "  worker:\n    image: mooring.local/busybox:latest\n    init: true\n    command: [\"sleep\", \"3600\"]\n    volumes:\n      - data:/data\n",
        "",
    ).replace("volumes:\n  data:\n", "");
    assert_ne!(compose, without_worker);
    repo.write("apps/demo/compose.yaml", &without_worker);
    repo.commit("drop worker");
    let out = run(0, "sync", &[]);
    assert!(
        out.contains(&format!("orphan container {}-worker-1 kept", app.name)),
        "{out}"
    );
    assert_eq!(app.containers().len(), 2);
    run(2, "diff", &[]);
    let out = run(0, "sync", &["--prune"]);
    assert!(
        out.contains(&format!("remove container {}-worker-1", app.name)),
        "{out}"
    );
    assert_eq!(app.containers(), [format!("{}-web-1 running", app.name)]);
    let vol = docker(&[
        "volume",
        "ls",
        "-q",
        "--filter",
        &format!("name={}_data", app.name),
    ]);
    assert_eq!(
        vol,
        format!("{}_data", app.name),
        "volumes are never removed by sync"
    );
    let diff = run(0, "diff", &[]);
    assert!(diff.contains("no longer declared; kept"), "{diff}");

    // Back to the first commit by id: worker returns, web serves v1 again.
    run(0, "sync", &["--ref", &first]);
    assert_eq!(app.containers().len(), 2);
    assert_eq!(
        docker(&["exec", &app.container("web"), "cat", "/www/index.html"]),
        "v1"
    );
    run(0, "diff", &["--ref", &first]);
}

#[test]
fn broken_commits_apply_nothing() {
    let app = TestApp::new("mbad");
    let repo = Repo::new("bad");
    repo.write("compose.yaml", &demo_compose(&app.name, "hello"))
        .write("site/index.html", "ok");
    repo.commit("good");
    let url = repo.file_url();
    app.expect(0, &["sync", &url]);
    let ids = (app.id("web"), app.id("worker"));

    // An unsupported key: error with file:line:col, nothing changes.
    repo.write(
        "compose.yaml",
        &demo_compose(&app.name, "changed").replace(
            "    init: true\n    command: [\"httpd\"",
            "    build: .\n    init: true\n    command: [\"httpd\"",
        ),
    );
    repo.commit("unsupported key");
    let out = app.expect(1, &["sync", &url]);
    assert!(
        out.contains(
            "compose.yaml:5:12: services.web.build.dockerfile: Dockerfile does not exist in ."
        ),
        "{out}"
    );
    assert_eq!((app.id("web"), app.id("worker")), ids);
    app.expect(1, &["diff", &url]);

    // Malformed YAML.
    repo.write("compose.yaml", "services:\n  web: [unclosed\n");
    repo.commit("broken yaml");
    let out = app.expect(1, &["sync", &url]);
    assert!(
        out.contains("compose.yaml:") && out.contains("invalid YAML"),
        "{out}"
    );
    assert_eq!((app.id("web"), app.id("worker")), ids);

    // A dependency cycle.
    repo.write("compose.yaml", &format!("name: {}\nservices:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n", app.name));
    repo.commit("cycle");
    let out = app.expect(1, &["sync", &url]);
    assert!(out.contains("dependency cycle"), "{out}");

    // A missing required variable.
    repo.write(
        "compose.yaml",
        &demo_compose(&app.name, "${GREETING:?set GREETING}"),
    );
    repo.commit("required var");
    let out = app.expect(1, &["sync", &url]);
    assert!(
        out.contains("compose.yaml:8:17") && out.contains("set GREETING"),
        "{out}"
    );
    assert_eq!((app.id("web"), app.id("worker")), ids);

    // Unknown ref and path.
    let out = app.expect(1, &["sync", &url, "--ref", "nope"]);
    assert!(
        out.contains("nope") && out.contains("main"),
        "lists branches: {out}"
    );
    let out = app.expect(1, &["sync", &url, "--path", "apps/missing"]);
    assert!(out.contains("apps/missing"), "{out}");
    assert_eq!(app.containers().len(), 2);
}

/// A committed `.env` symlink to a host file outside the repository: `mooring sync`
/// refuses it, says which file, deploys nothing and never shows the file's content.
#[test]
fn a_symlinked_env_file_leaving_the_repository_is_refused() {
    let app = TestApp::new("mlink");
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("host.secret");
    std::fs::write(&secret, "STOLEN=root-only-host-secret\n").unwrap();
    let repo = Repo::new("linked");
    repo.write(
        "compose.yaml",
        &format!(
            "name: {}\nservices:\n  web:\n    image: {IMAGE}\n    command: [sleep, \"3600\"]\n    environment: [\"S=${{STOLEN:-none}}\"]\n",
            app.name
        ),
    );
    std::os::unix::fs::symlink(&secret, repo.work.join(".env")).unwrap();
    repo.commit("symlinked .env");
    let out = app.expect(1, &["sync", &repo.file_url()]);
    assert!(
        out.contains(".env goes through symlink") && out.contains("outside the repository"),
        "{out}"
    );
    assert!(!out.contains("root-only-host-secret"), "{out}");
    assert!(app.containers().is_empty(), "nothing deployed");
}

#[test]
fn a_project_at_the_repository_root_is_named_after_the_repository() {
    let app = TestApp::new("mroot");
    // No `name:` and no --app: the snapshot's folder ("root") must not name the app.
    let repo = Repo::new(&app.name);
    let compose = demo_compose(&app.name, "hi").replacen(&format!("name: {}\n", app.name), "", 1);
    repo.write("compose.yaml", &compose)
        .write("site/index.html", "x");
    repo.commit("first");
    let daemon = Daemon::serve(&repo);
    let url = daemon.url(&repo);
    let out = app.expect(2, &["diff", &url]);
    assert!(out.contains(&format!("app {} at", app.name)), "{out}");
    assert!(
        out.contains(&format!("create container {}-web-1", app.name)),
        "{out}"
    );
}
