//! Remote Docker Engines: real `dockerd`s in network namespaces the tests make
//! (`mooring_testkit::engine`), reached over TCP with TLS certificates the test
//! generates, by the one-shot commands (`--host`, `DOCKER_CERT_PATH` as the Docker
//! CLI reads it) and by the daemon (`hosts:` in `mooring.yaml`).

use crate::common::daemon::{wait_until, Server};
use crate::common::*;
use mooring_testkit::engine::RemoteEngine;
use mooring_testkit::ssh::SshServer;
use std::fs;
use std::path::Path;

fn project(dir: &std::path::Path, name: &str) {
    fs::write(
        dir.join("compose.yaml"),
        format!(
            "name: {name}\nservices:\n  web:\n    image: {IMAGE}\n    init: true\n    command: [\"sleep\", \"3600\"]\n"
        ),
    )
    .unwrap();
}

/// `env` as `expect_env` takes it.
fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A daemon whose one host, `edge`, is `engine` (TLS), deploying `app` from the folder
/// `proj` every `interval`.
fn daemon_on(
    dir: &Path,
    engine: &RemoteEngine,
    app: &TestApp,
    proj: &Path,
    interval: &str,
) -> Server {
    Server::start(
        dir,
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\nhosts:\n{}apps:\n  - name: {}\n    host: edge\n    source: {{ dir: {} }}\n    sync: {{ interval: {interval} }}\n",
            engine.host_yaml("edge"),
            app.name,
            proj.display()
        ),
    )
}

/// The environment of `app`'s web container on `e` (empty when there is none).
fn web_env(e: &RemoteEngine, app: &TestApp) -> String {
    let name = format!("{}-web-1", app.name);
    let out = e
        .docker_command(&["inspect", "--format", "{{json .Config.Env}}", &name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Names of the app's containers on `engine`.
fn remote_containers(engine: &RemoteEngine, app: &str) -> Vec<String> {
    let mut names: Vec<String> = engine
        .docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=io.mooring.app={app}"),
            "--format",
            "{{.Names}}",
        ])
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

#[test]
fn one_shot_commands_reach_a_remote_engine_over_tls_and_refuse_a_wrong_one() {
    let engine = RemoteEngine::start(0);
    let app = TestApp::new("hst");
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), &app.name);
    let folder = dir.path().to_str().unwrap();
    let cli = engine.cli_env();
    let env = pairs(&cli);
    let tcp = engine.tcp();

    // Plain TCP off loopback is refused before anything is sent.
    let out = app.expect(1, &["sync", folder, "--host", &tcp]);
    assert!(
        out.contains("plain TCP to the Docker API gives root"),
        "{out}"
    );

    // With the Docker CLI's TLS settings: deployed there, not here.
    app.expect_env(0, &["sync", folder, "--host", &tcp], &env);
    assert_eq!(
        remote_containers(&engine, &app.name),
        [format!("{}-web-1", app.name)]
    );
    assert!(app.containers().is_empty(), "nothing on the local engine");
    // DOCKER_HOST works as --host does; in sync, nothing to do.
    let mut env_host = env.clone();
    env_host.push(("DOCKER_HOST", tcp.as_str()));
    app.expect_env(0, &["diff", folder], &env_host);

    // A CA that did not sign the engine's certificate: refused, saying why.
    let impostor = tempfile::tempdir().unwrap();
    fs::copy(
        engine.tls_file("other-ca.pem"),
        impostor.path().join("ca.pem"),
    )
    .unwrap();
    fs::copy(
        engine.tls_file("cert.pem"),
        impostor.path().join("cert.pem"),
    )
    .unwrap();
    fs::copy(engine.tls_file("key.pem"), impostor.path().join("key.pem")).unwrap();
    let out = app.expect_env(
        1,
        &["diff", folder, "--host", &tcp],
        &[
            ("DOCKER_CERT_PATH", impostor.path().to_str().unwrap()),
            ("DOCKER_TLS_VERIFY", "1"),
        ],
    );
    assert!(
        out.contains(&format!("cannot reach the Docker Engine at {tcp}"))
            && out.contains("certificate"),
        "{out}"
    );
    let key = fs::read_to_string(engine.tls_file("key.pem")).unwrap();
    let key_line = key.lines().nth(1).unwrap();
    assert!(!out.contains(key_line), "no key material in errors");
}

#[test]
fn the_daemon_deploys_to_a_remote_engine_and_heals_it() {
    let engine = RemoteEngine::start(1);
    let app = TestApp::new("hsd");
    let dir = tempfile::tempdir().unwrap();
    let proj = dir.path().join("proj");
    fs::create_dir_all(&proj).unwrap();
    project(&proj, &app.name);
    let s = daemon_on(dir.path(), &engine, &app, &proj, "1h");
    wait_until(120, "the deploy to the remote engine", || {
        s.app(&app.name)["sync"] == "Synced"
    });
    let name = format!("{}-web-1", app.name);
    assert_eq!(
        remote_containers(&engine, &app.name),
        std::slice::from_ref(&name)
    );
    assert!(app.containers().is_empty(), "nothing on the local engine");

    // Drift on the remote engine: its event stream (through the same TLS connection)
    // tells the daemon, which puts the container back.
    engine.docker(&["rm", "-f", &name]);
    wait_until(60, "self-heal on the remote engine", || {
        remote_containers(&engine, &app.name) == [name.clone()]
            && s.app(&app.name)["sync"] == "Synced"
    });
}

/// An engine reached over SSH as the Docker CLI reaches one: `ssh … docker system
/// dial-stdio` on the remote, whose sshd (in the engine's namespace) points the
/// remote's Docker CLI at that engine (`SetEnv DOCKER_HOST`).
fn ssh_to(engine: &RemoteEngine) -> SshServer {
    SshServer::start_at(
        Some(&engine.netns),
        &engine.ip,
        &format!("SetEnv DOCKER_HOST=unix://{}", engine.socket.display()),
    )
}

#[test]
fn an_engine_over_ssh_is_deployed_to_by_the_cli_and_the_daemon_and_an_unknown_host_key_is_refused()
{
    let engine = RemoteEngine::start(2);
    let sshd = ssh_to(&engine);
    let app = TestApp::new("hss");
    let dir = tempfile::tempdir().unwrap();
    let proj = dir.path().join("proj");
    fs::create_dir_all(&proj).unwrap();
    project(&proj, &app.name);
    let folder = proj.to_str().unwrap();
    let url = format!("ssh://{}", sshd.authority());
    // The CLI: the key and known_hosts files from the environment.
    let key = sshd.client_key.private.display().to_string();
    let known = sshd.known_hosts.display().to_string();
    let env = [
        ("MOORING_SSH_IDENTITY", key.as_str()),
        ("MOORING_SSH_KNOWN_HOSTS", known.as_str()),
    ];
    app.expect_env(0, &["sync", folder, "--host", &url], &env);
    let name = format!("{}-web-1", app.name);
    assert_eq!(
        remote_containers(&engine, &app.name),
        std::slice::from_ref(&name)
    );
    assert!(app.containers().is_empty(), "nothing on the local engine");

    // A host key that is not the known one: refused, ssh's reason shown.
    let wrong = sshd.wrong_known_hosts().display().to_string();
    let env = [
        ("MOORING_SSH_IDENTITY", key.as_str()),
        ("MOORING_SSH_KNOWN_HOSTS", wrong.as_str()),
    ];
    let out = app.expect_env(1, &["diff", folder, "--host", &url], &env);
    assert!(
        out.contains(&format!("cannot reach the Docker Engine at {url}"))
            && out.contains("Host key verification failed"),
        "{out}"
    );

    // The daemon: `ssh: { identity, known_hosts }` of the host, the key inline (as a
    // source's `ssh_key` may be).
    engine.docker(&["rm", "-f", &name]);
    let inline: String = fs::read_to_string(&sshd.client_key.private)
        .unwrap()
        .lines()
        .map(|l| format!("        {l}\n"))
        .collect();
    let s = Server::start(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\nhosts:\n  far:\n    docker: {url}\n    ssh:\n      identity: |\n{inline}      known_hosts: {}\napps:\n  - name: {}\n    host: far\n    source: {{ dir: {} }}\n    sync: {{ interval: 1h }}\n",
            sshd.known_hosts.display(),
            app.name,
            proj.display()
        ),
    );
    wait_until(120, "the deploy over SSH", || {
        s.app(&app.name)["sync"] == "Synced"
    });
    assert_eq!(
        remote_containers(&engine, &app.name),
        std::slice::from_ref(&name)
    );
    // Each call is a connection through ssh (the Engine client opens one a call, as the Docker
    // CLI's ssh:// does); its `dial-stdio` on the remote ends with it: three more syncs
    // leave no process behind there.
    for _ in 0..3 {
        let (code, v) = s.call(
            "POST",
            &format!("/api/v1/apps/{}/sync", app.name),
            Some(&s.admin),
            Some(serde_json::json!({})),
        );
        assert_eq!(code, 200, "{v}");
    }
    // (The remote processes of this engine: those whose environment names it.)
    let remote = || {
        let mut n = 0;
        for p in fs::read_dir("/proc").unwrap().flatten() {
            let cmd = fs::read(p.path().join("cmdline")).unwrap_or_default();
            let env = fs::read(p.path().join("environ")).unwrap_or_default();
            let socket = engine.socket.display().to_string();
            if cmd.starts_with(b"docker\0system\0dial-stdio")
                && env.windows(socket.len()).any(|w| w == socket.as_bytes())
            {
                n += 1;
            }
        }
        n
    };
    wait_until(10, "the calls' remote processes gone", || remote() <= 2);
}

/// Two remote hosts; one is down when the daemon starts and goes down again later:
/// the other host's app converges all along, the down host's app says
/// `HostUnreachable` (why, and when it was last seen), and converges once its host is
/// back.
#[test]
fn a_host_that_is_down_never_stalls_another_and_converges_when_back() {
    let a = RemoteEngine::start(0);
    let mut b = RemoteEngine::start(1);
    let (app_a, app_b) = (TestApp::new("hfa"), TestApp::new("hfb"));
    let dir = tempfile::tempdir().unwrap();
    let write = |app: &TestApp, greeting: &str| {
        let proj = dir.path().join(&app.name);
        fs::create_dir_all(&proj).unwrap();
        fs::write(
            proj.join("compose.yaml"),
            format!(
                "name: {}\nservices:\n  web:\n    image: {IMAGE}\n    init: true\n    command: [\"sleep\", \"3600\"]\n    environment: {{ GREETING: {greeting} }}\n",
                app.name
            ),
        )
        .unwrap();
        proj
    };
    let (proj_a, proj_b) = (write(&app_a, "one"), write(&app_b, "one"));
    let app_entry = |app: &TestApp, host: &str, proj: &std::path::Path| {
        format!(
            "  - name: {}\n    host: {host}\n    source: {{ dir: {} }}\n    sync: {{ interval: 1s, retry: {{ backoff: 1s, max_backoff: 2s }} }}\n",
            app.name,
            proj.display()
        )
    };
    b.stop();
    let s = Server::start(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\nhosts:\n{}{}apps:\n{}{}",
            a.host_yaml("a"),
            b.host_yaml("b"),
            app_entry(&app_a, "a", &proj_a),
            app_entry(&app_b, "b", &proj_b)
        ),
    );
    let unreachable = |s: &Server, app: &TestApp| {
        s.app(&app.name)["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["kind"] == "HostUnreachable")
            .map(|c| c["message"].as_str().unwrap_or_default().to_string())
    };
    // The daemon starts with b down: a's app deploys, b's says why it cannot.
    wait_until(60, "app a deployed while host b is down", || {
        s.app(&app_a.name)["sync"] == "Synced"
    });
    wait_until(30, "app b reported unreachable", || {
        unreachable(&s, &app_b).is_some()
    });
    let message = unreachable(&s, &app_b).unwrap();
    assert!(
        message.contains(&format!("host b ({}) is unreachable", b.tcp()))
            && message.contains("not seen since the daemon started"),
        "{message}"
    );
    let (_, metrics) = s.call("GET", "/metrics", Some(&s.admin), None);
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        metrics.contains("mooring_host_up{host=\"a\"} 1")
            && metrics.contains("mooring_host_up{host=\"b\"} 0"),
        "{metrics}"
    );
    let hosts = s.get("/api/v1/hosts").to_string();
    assert!(hosts.contains("\"condition\":\"Unreachable\""), "{hosts}");
    // The web UI's overview puts the host first, red, with its apps.
    let page = ureq::get(&s.url("/"))
        .set("authorization", &format!("Bearer {}", s.admin))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        page.contains(&format!(
            "✗ Host <b>b</b> ({}) · Unreachable — apps: {}",
            b.tcp(),
            app_b.name
        )),
        "{page}"
    );
    // b comes back: its app converges.
    b.restart();
    wait_until(60, "app b deployed once host b is back", || {
        s.app(&app_b.name)["sync"] == "Synced" && web_env(&b, &app_b).contains("GREETING=one")
    });

    // b goes down again; both projects change: a converges meanwhile.
    b.stop();
    write(&app_a, "two");
    write(&app_b, "two");
    wait_until(60, "app a converged while host b is down", || {
        web_env(&a, &app_a).contains("GREETING=two")
    });
    wait_until(30, "app b reported unreachable again", || {
        unreachable(&s, &app_b).is_some_and(|m| m.contains("last seen"))
    });
    b.restart();
    wait_until(90, "app b converged once host b is back", || {
        web_env(&b, &app_b).contains("GREETING=two")
            && s.app(&app_b.name)["sync"] == "Synced"
            && unreachable(&s, &app_b).is_none()
    });
}

/// A remote engine's volume is backed up through the archive API into this machine's
/// backup folder (its folders are on that machine), and restored there the same way.
#[test]
fn a_remote_volume_is_backed_up_here_and_restored_there_through_the_archive_api() {
    let engine = RemoteEngine::start(3);
    let app = TestApp::new("hsb");
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("compose.yaml"),
        format!(
            "name: {}\nservices:\n  db:\n    image: {IMAGE}\n    init: true\n    command: [\"sleep\", \"3600\"]\n    volumes: [\"data:/data\"]\nvolumes:\n  data: {{}}\n",
            app.name
        ),
    )
    .unwrap();
    let folder = dir.path().to_str().unwrap();
    let env = engine.cli_env();
    let env = pairs(&env);
    let tcp = engine.tcp();
    app.expect_env(0, &["sync", folder, "--host", &tcp], &env);
    let db = format!("{}-db-1", app.name);
    engine.docker(&[
        "exec",
        &db,
        "sh",
        "-c",
        "echo precious > /data/file && mkdir /data/sub && echo x > /data/sub/y",
    ]);

    let out = app.expect_env(0, &["backup", "create", &app.name, "--host", &tcp], &env);
    let volume = format!("{}_data", app.name);
    assert!(
        out.contains(&format!(
            "read volume {volume} through the Docker archive API"
        )) && out.contains(&format!("its Engine is remote ({tcp})"))
            && out.contains("(verified)"),
        "{out}"
    );
    let listed = app.expect(0, &["backup", "list", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(listed.trim()).unwrap();
    let id = v[0]["id"].as_str().unwrap().to_string();

    // Lost there; restored there from here.
    engine.docker(&["exec", &db, "sh", "-c", "rm -rf /data/file /data/sub"]);
    app.expect_env(
        0,
        &["backup", "restore", &id, "--force", "--host", &tcp],
        &env,
    );
    assert_eq!(
        engine.docker(&["exec", &db, "cat", "/data/file", "/data/sub/y"]),
        "precious\nx\n"
    );
}

/// A host whose Engine now answers with another id (the machine replaced: new identity,
/// no data) gets nothing deployed — its volumes are not the data that was there — until
/// an admin accepts it; then its apps are deployed to it.
#[test]
fn a_replaced_engine_is_refused_until_an_admin_accepts_it() {
    let mut engine = RemoteEngine::start(0);
    let app = TestApp::new("hsr");
    let dir = tempfile::tempdir().unwrap();
    let proj = dir.path().join("proj");
    fs::create_dir_all(&proj).unwrap();
    project(&proj, &app.name);
    let s = daemon_on(dir.path(), &engine, &app, &proj, "1s");
    wait_until(120, "the first deploy", || {
        s.app(&app.name)["sync"] == "Synced"
    });
    let old_id = engine.id();
    let hosts = s.get("/api/v1/hosts");
    let edge = hosts["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "edge")
        .unwrap()
        .clone();
    assert_eq!(edge["condition"], "Reachable", "{hosts}");
    assert_eq!(edge["engine_id"], old_id.as_str());
    assert_eq!(edge["apps"], serde_json::json!([app.name]));

    engine.replace();
    assert_ne!(engine.id(), old_id, "a new identity");
    let replaced = |s: &Server| {
        s.app(&app.name)["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["kind"] == "HostReplaced")
            .map(|c| c["message"].as_str().unwrap_or_default().to_string())
    };
    wait_until(90, "the replaced engine noticed", || replaced(&s).is_some());
    let message = replaced(&s).unwrap();
    assert!(
        message.contains("answers as another Docker Engine")
            && message.contains(&old_id)
            && message.contains("mooring host accept edge"),
        "{message}"
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(
        remote_containers(&engine, &app.name).is_empty(),
        "nothing deployed to the new engine"
    );
    let out = s.cli(&["list"]);
    assert!(out.status.success());

    // An operator may not accept a host; an admin may.
    let operator = s.token("operator");
    let (status, _) = s.call("POST", "/api/v1/hosts/edge/accept", Some(&operator), None);
    assert_eq!(status, 403);
    // A token limited to the app sees its host, with that app.
    let limited = s.token_with(&["--role", "viewer", "--app", &app.name]);
    let (status, v) = s.call("GET", "/api/v1/hosts", Some(&limited), None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["hosts"][0]["apps"], serde_json::json!([app.name]), "{v}");
    // Accepting the Engine seen earlier is refused: it is not the one answering.
    let (status, v) = s.call(
        "POST",
        "/api/v1/hosts/edge/accept",
        Some(&s.admin),
        Some(serde_json::json!({ "engine_id": old_id })),
    );
    assert_eq!(status, 409, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("nothing accepted"),
        "{v}"
    );
    let new_id = engine.id();
    let out = s.command(&["host", "accept", "edge", "--engine-id", &new_id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!(
            "host edge: Docker Engine {} accepted",
            engine.id()
        )),
        "{text}"
    );
    wait_until(60, "deployed to the accepted engine", || {
        remote_containers(&engine, &app.name).len() == 1
            && s.app(&app.name)["sync"] == "Synced"
            && replaced(&s).is_none()
    });
}

/// A remote Engine has none of the repository's files: each one a service binds (a
/// bind, a config's or a secret's `file:`) is copied into its container instead, and
/// a folder of the repository is refused, saying what to do. A changed file still
/// recreates the container, as on a local Engine.
#[test]
fn repository_files_are_copied_to_a_remote_engine_and_a_folder_is_refused() {
    let engine = RemoteEngine::start(1);
    let app = TestApp::new("hsf");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("site.conf"), "listen 80\n").unwrap();
    fs::write(d.join("app.json"), "{\"a\": 1}\n").unwrap();
    fs::write(d.join("token.txt"), "t0ken\n").unwrap();
    fs::create_dir_all(d.join("html")).unwrap();
    fs::write(d.join("html/index.html"), "hi\n").unwrap();
    let compose = |extra: &str| {
        format!(
            "name: {}\nservices:\n  web:\n    image: {IMAGE}\n    init: true\n    command: [\"sleep\", \"3600\"]\n    volumes: [\"./site.conf:/etc/site.conf:ro\"{extra}]\n    configs: [{{ source: app, target: /etc/app.json }}]\n    secrets: [token]\nconfigs:\n  app: {{ file: ./app.json }}\nsecrets:\n  token: {{ file: ./token.txt }}\n",
            app.name
        )
    };
    fs::write(d.join("compose.yaml"), compose("")).unwrap();
    let folder = d.to_str().unwrap();
    let env = engine.cli_env();
    let env = pairs(&env);
    let tcp = engine.tcp();
    app.expect_env(0, &["sync", folder, "--host", &tcp], &env);
    let web = format!("{}-web-1", app.name);
    assert_eq!(
        engine.docker(&[
            "exec",
            &web,
            "cat",
            "/etc/site.conf",
            "/etc/app.json",
            "/run/secrets/token"
        ]),
        "listen 80\n{\"a\": 1}\nt0ken\n"
    );
    // Nothing is bound from this machine's folders.
    let binds = engine.docker(&["inspect", "--format", "{{json .HostConfig.Binds}}", &web]);
    assert!(!binds.contains(folder), "{binds}");
    // In sync; a changed file recreates the container with the new content.
    app.expect_env(0, &["diff", folder, "--host", &tcp], &env);
    fs::write(d.join("site.conf"), "listen 8080\n").unwrap();
    app.expect_env(0, &["sync", folder, "--host", &tcp], &env);
    assert_eq!(
        engine.docker(&["exec", &web, "cat", "/etc/site.conf"]),
        "listen 8080\n"
    );

    // A folder cannot be copied so: refused before anything changes, the running
    // container kept.
    let id = engine.docker(&["inspect", "--format", "{{.Id}}", &web]);
    fs::write(
        d.join("compose.yaml"),
        compose(", \"./html:/usr/share/html\""),
    )
    .unwrap();
    let out = app.expect_env(1, &["sync", folder, "--host", &tcp], &env);
    assert!(
        out.contains(
            "html (bound at /usr/share/html) is a folder of the repository, and the Engine at"
        ) && out.contains("build its files into an image"),
        "{out}"
    );
    assert_eq!(engine.docker(&["inspect", "--format", "{{.Id}}", &web]), id);
    assert_eq!(
        engine.docker(&["exec", &web, "cat", "/etc/site.conf"]),
        "listen 8080\n"
    );
}

/// An image is built by the remote Engine (BuildKit through the same connection), a
/// build secret handed over in its session.
#[test]
fn a_remote_engine_builds_the_image_with_its_secrets() {
    let engine = RemoteEngine::start(2);
    let app = TestApp::new("hsbld");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir_all(d.join("web")).unwrap();
    fs::write(d.join("token.txt"), "remote-s3cret").unwrap();
    fs::write(
        d.join("web/Dockerfile"),
        format!(
            "FROM {IMAGE}\nRUN --mount=type=secret,id=token test -s /run/secrets/token && echo built-remotely > /proof\n"
        ),
    )
    .unwrap();
    fs::write(
        d.join("compose.yaml"),
        format!(
            "name: {}\nservices:\n  web:\n    build: {{ context: ./web, secrets: [token] }}\n    init: true\n    command: [\"sleep\", \"3600\"]\nsecrets:\n  token: {{ file: ./token.txt }}\n",
            app.name
        ),
    )
    .unwrap();
    let env = engine.cli_env();
    let env = pairs(&env);
    let out = app.expect_env(
        0,
        &["sync", d.to_str().unwrap(), "--host", &engine.tcp()],
        &env,
    );
    assert!(out.contains(&format!("built {}-web", app.name)), "{out}");
    assert_eq!(
        engine.docker(&["exec", &format!("{}-web-1", app.name), "cat", "/proof"]),
        "built-remotely\n"
    );
    assert!(
        docker_output(&["image", "inspect", &format!("{}-web", app.name)])
            .status
            .code()
            != Some(0),
        "not built on the local engine"
    );
}

/// A host killed in the middle of a sync (its app waits for a health check there):
/// the sync fails and says why, another host's app converges meanwhile, and the killed
/// host's app converges once it is back.
#[test]
fn a_host_killed_mid_sync_converges_when_back_and_never_holds_up_another() {
    let a = RemoteEngine::start(0);
    let mut b = RemoteEngine::start(1);
    let (app_a, app_b) = (TestApp::new("hka"), TestApp::new("hkb"));
    let dir = tempfile::tempdir().unwrap();
    let proj = |app: &TestApp, compose: String| {
        let p = dir.path().join(&app.name);
        fs::create_dir_all(&p).unwrap();
        fs::write(p.join("compose.yaml"), compose).unwrap();
        p
    };
    let simple = |greeting: &str| {
        format!(
            "name: {}\nservices:\n  web:\n    image: {IMAGE}\n    init: true\n    command: [\"sleep\", \"3600\"]\n    environment: {{ GREETING: {greeting} }}\n",
            app_a.name
        )
    };
    let proj_a = proj(&app_a, simple("one"));
    // b's web waits for its db to be healthy, which takes a few seconds.
    let proj_b = proj(
        &app_b,
        format!(
            "name: {}\nservices:\n  db:\n    image: {IMAGE}\n    init: true\n    command: [\"sh\", \"-c\", \"sleep 6; touch /tmp/ready; exec sleep 3600\"]\n    healthcheck: {{ test: [\"CMD\", \"test\", \"-f\", \"/tmp/ready\"], interval: 1s, retries: 30 }}\n  web:\n    image: {IMAGE}\n    init: true\n    command: [\"sleep\", \"3600\"]\n    depends_on: {{ db: {{ condition: service_healthy }} }}\n",
            app_b.name
        ),
    );
    let s = Server::start(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\nhosts:\n{}{}apps:\n  - name: {}\n    host: a\n    source: {{ dir: {} }}\n    sync: {{ interval: 1s }}\n  - name: {}\n    host: b\n    source: {{ dir: {} }}\n    sync: {{ interval: 1s, retry: {{ backoff: 1s, max_backoff: 2s }} }}\n",
            a.host_yaml("a"),
            b.host_yaml("b"),
            app_a.name,
            proj_a.display(),
            app_b.name,
            proj_b.display()
        ),
    );
    wait_until(60, "app a deployed", || {
        s.app(&app_a.name)["sync"] == "Synced"
    });
    // b's sync is under way (db created, web waiting for it): b is killed.
    wait_until(60, "b's sync waiting for db's health", || {
        remote_containers(&b, &app_b.name) == [format!("{}-db-1", app_b.name)]
    });
    b.stop();
    fs::write(proj_a.join("compose.yaml"), simple("two")).unwrap();
    wait_until(60, "app a converged while b is down", || {
        web_env(&a, &app_a).contains("GREETING=two")
    });
    wait_until(60, "b's failure said", || {
        s.app(&app_b.name)["conditions"]
            .to_string()
            .contains("HostUnreachable")
    });
    b.restart();
    wait_until(120, "app b converged once b is back", || {
        s.app(&app_b.name)["sync"] == "Synced"
            && s.app(&app_b.name)["health"] == "Healthy"
            && remote_containers(&b, &app_b.name).len() == 2
    });
}

/// One app on three hosts (this machine's Engine and two remote ones over TLS), chosen
/// by label: one instance per host (`APP@HOST`), each with its own status and history,
/// the same revision everywhere, and the values of its host — a host's `variables`, the
/// app's `per_host` ones, and the project's `compose.<host>.yaml` merged last. A push
/// reaches all three; drift on one host is healed there alone.
#[test]
fn one_app_on_three_hosts_with_per_host_values() {
    let a = RemoteEngine::start(0);
    let b = RemoteEngine::start(1);
    let app = TestApp::new("hmh");
    let compose = |greeting: &str| {
        format!(
            "services:\n  web:\n    image: {IMAGE}\n    init: true\n    command: [\"sleep\", \"3600\"]\n    volumes: [\"data:/data\"]\n    environment:\n      SITE: ${{SITE}}\n      TIER: ${{TIER:-standard}}\n      GREETING: {greeting}\nvolumes:\n  data: {{}}\n"
        )
    };
    let repo = Repo::new("multi");
    repo.write("compose.yaml", &compose("one")).write(
        "compose.b.yaml",
        "services:\n  web:\n    environment:\n      ONLY_ON_B: \"yes\"\n",
    );
    let first = repo.commit("one");
    let git = Daemon::serve(&repo);
    let url = git.url(&repo);
    let dir = tempfile::tempdir().unwrap();
    let edge = "    labels: { role: edge }\n";
    let s = Server::start(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\nhosts:\n  here:\n    docker: unix:///var/run/docker.sock\n{edge}{}{edge}    variables: {{ TIER: gold }}\n{}{edge}  other:\n    docker: unix:///run/mooring-test-none.sock\napps:\n  - name: {name}\n    hosts: {{ labels: {{ role: edge }} }}\n    source: {{ git: {url}, ref: main }}\n    variables: {{ SITE: main }}\n    per_host:\n      b: {{ variables: {{ SITE: bee }} }}\n    data: {{ backup: on-change }}\n    sync: {{ interval: 1h }}\n",
            a.host_yaml("a"),
            b.host_yaml("b"),
            name = app.name,
        ),
    );
    let instances = ["a", "b", "here"].map(|h| format!("{}@{h}", app.name));
    wait_until(120, "the app on its three hosts", || {
        instances.iter().all(|i| s.app(i)["sync"] == "Synced")
    });
    let listed: Vec<(String, String)> = s.get("/api/v1/apps")["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let text = |k: &str| x[k].as_str().unwrap_or_default().to_string();
            (text("name"), text("host"))
        })
        .collect();
    let expected: Vec<(String, String)> = ["a", "b", "here"]
        .iter()
        .map(|h| (format!("{}@{h}", app.name), h.to_string()))
        .collect();
    assert_eq!(
        listed, expected,
        "one instance per host with the label, none on the other host"
    );
    for i in &instances {
        assert_eq!(
            s.app(i)["revision"],
            first.as_str(),
            "{i}: the same revision"
        );
    }
    // The same project on each host, with that host's values.
    let name = format!("{}-web-1", app.name);
    let here = env_of(&name);
    assert!(
        here.contains("SITE=main") && here.contains("TIER=standard") && !here.contains("ONLY_ON_B"),
        "{here}"
    );
    let on_a = web_env(&a, &app);
    assert!(
        on_a.contains("SITE=main") && on_a.contains("TIER=gold") && !on_a.contains("ONLY_ON_B"),
        "the host's variables on a: {on_a}"
    );
    let on_b = web_env(&b, &app);
    assert!(
        on_b.contains("SITE=bee")
            && on_b.contains("ONLY_ON_B=yes")
            && on_b.contains("TIER=standard"),
        "per_host values and compose.b.yaml on b: {on_b}"
    );

    // Drift on one host: healed there, as an operation of that instance only.
    let ops = |i: &str| s.op_count(i);
    let before: Vec<usize> = instances.iter().map(|i| ops(i)).collect();
    a.docker(&["rm", "-f", &name]);
    wait_until(60, "self-heal on host a", || {
        remote_containers(&a, &app.name) == [name.clone()] && ops(&instances[0]) > before[0]
    });
    assert_eq!(ops(&instances[1]), before[1], "b untouched");
    assert_eq!(ops(&instances[2]), before[2], "here untouched");

    // A push reaches every host.
    repo.write("compose.yaml", &compose("two"));
    let second = repo.commit("two");
    let (code, _) = s.call(
        "POST",
        &format!("/api/v1/apps/{}/refresh", instances[2]),
        None,
        None,
    );
    assert_eq!(code, 401, "the API needs a token");
    for i in &instances {
        let (code, v) = s.call(
            "POST",
            &format!("/api/v1/apps/{i}/sync"),
            Some(&s.admin),
            Some(serde_json::json!({})),
        );
        assert_eq!(code, 200, "{i}: {v}");
    }
    wait_until(60, "the push on every host", || {
        instances
            .iter()
            .all(|i| s.app(i)["revision"] == second.as_str())
    });
    assert!(env_of(&name).contains("GREETING=two"));
    assert!(web_env(&a, &app).contains("GREETING=two"));
    assert!(web_env(&b, &app).contains("GREETING=two"));
    // The backup taken before each host's deploy is that instance's own.
    for i in &instances {
        let backups = s.get(&format!("/api/v1/apps/{i}/backups"))["backups"].clone();
        let ids: Vec<&str> = backups
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap_or_default())
            .collect();
        assert!(
            !ids.is_empty() && ids.iter().all(|id| id.starts_with(&format!("{i}-"))),
            "{i}: {ids:?}"
        );
    }
    let (_, metrics) = s.call("GET", "/metrics", Some(&s.admin), None);
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    for i in &instances {
        assert!(
            metrics.contains(&format!("app=\"{i}\"")),
            "per instance: {metrics}"
        );
    }

    // A reload without host b: its instance and its gauge go.
    let config = fs::read_to_string(&s.config).unwrap();
    let without_b = config
        .replace(&format!("{}{edge}", b.host_yaml("b")), "")
        .replace("    per_host:\n      b: { variables: { SITE: bee } }\n", "");
    assert_ne!(without_b, config);
    fs::write(&s.config, &without_b).unwrap();
    let (code, v) = s.call("POST", "/api/v1/reload", Some(&s.admin), None);
    assert_eq!(code, 200, "{v}");
    let names: Vec<String> = s.get("/api/v1/apps")["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names, [instances[0].clone(), instances[2].clone()]);
    let (_, metrics) = s.call("GET", "/metrics", Some(&s.admin), None);
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        metrics.contains("mooring_host_up{host=\"a\"} 1") && !metrics.contains("host=\"b\""),
        "{metrics}"
    );
}

/// An Engine's id is read once while the connection it was read on stays open (what
/// answers there is that Engine), and read again once it closed: a restarted Engine
/// (or another machine) is asked who it is before anything is deployed to it.
#[test]
fn an_engine_s_id_is_asked_again_only_when_its_connection_closed() {
    let mut engine = RemoteEngine::start(3);
    let tls = |n: &str| fs::read(engine.tls_file(n)).unwrap();
    let endpoint = mooring_docker::Endpoint::parse(&engine.tcp())
        .unwrap()
        .with_tls(mooring_docker::Tls {
            ca: tls("ca.pem"),
            cert: tls("cert.pem"),
            key: tls("key.pem"),
        });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let provider = rt
        .block_on(mooring_docker::Provider::connect_to(endpoint))
        .unwrap();
    assert!(!rt.block_on(provider.same_engine()), "nothing read yet");
    let (id, manager) = rt.block_on(provider.engine_identity()).unwrap();
    assert_eq!((id.as_str(), manager), (engine.id().as_str(), false));
    for _ in 0..3 {
        assert!(rt.block_on(provider.same_engine()));
    }
    engine.stop();
    engine.restart();
    assert!(
        !rt.block_on(provider.same_engine()),
        "the Engine restarted: its id must be read again"
    );
    rt.block_on(provider.engine_identity()).unwrap();
    assert!(rt.block_on(provider.same_engine()));
}
