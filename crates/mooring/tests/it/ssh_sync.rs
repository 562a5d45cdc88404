//! Deploying from Git over SSH: the one-shot `mooring sync --ssh-key`, and the
//! daemon with `ssh_key` / `known_hosts` in mooring.yaml — against a real sshd on
//! loopback (`mooring_testkit::ssh::SshServer`) and the machine's Docker. The key
//! never shows in logs, the API, the store or the source cache.

use crate::common::daemon::{wait_until, Server};
use crate::common::*;
use mooring_testkit::ssh::SshServer;

/// A repository with the demo project at its root, and its `ssh://` URL.
fn repo_over_ssh(server: &SshServer, app: &TestApp, greeting: &str) -> (Repo, String) {
    let repo = Repo::new("infra");
    repo.write("compose.yaml", &demo_compose(&app.name, greeting))
        .write("site/index.html", "hello");
    repo.commit("one");
    let url = format!("ssh://{}{}", server.authority(), repo.bare.display());
    (repo, url)
}

#[test]
fn one_shot_sync_over_ssh_with_a_key_file() {
    let server = SshServer::start();
    let app = TestApp::new("sshcli");
    let (_repo, url) = repo_over_ssh(&server, &app, "over-ssh");
    let key = server.client_key.private.display().to_string();
    let known = server.known_hosts.display().to_string();

    // Without the key: refused, and the error says which flag is missing.
    let out = app.expect(1, &["sync", &url, "--known-hosts", &known]);
    assert!(
        out.contains("Permission denied (publickey") && out.contains("--ssh-key"),
        "{out}"
    );
    assert!(app.containers().is_empty(), "nothing was deployed");

    let out = app.expect(
        0,
        &["sync", &url, "--ssh-key", &key, "--known-hosts", &known],
    );
    assert!(out.contains("HEAD@"), "{out}");
    assert!(env_of(&app.container("web")).contains("GREETING=over-ssh"));
    app.expect(
        0,
        &["diff", &url, "--ssh-key", &key, "--known-hosts", &known],
    );

    // A key flag with a source that is not SSH is a mistake, said so.
    let out = app.expect(
        1,
        &[
            "sync",
            "https://127.0.0.1:9/r.git",
            "--ssh-key",
            &key,
            "--app",
            &app.name,
        ],
    );
    assert!(out.contains("need an SSH source"), "{out}");
}

#[test]
fn daemon_deploys_over_ssh_and_never_leaks_the_key() {
    let server = SshServer::start();
    let app = TestApp::new("sshdaemon");
    let (repo, url) = repo_over_ssh(&server, &app, "d1");
    let key = std::fs::read_to_string(&server.client_key.private).unwrap();
    let indented: String = key.lines().map(|l| format!("        {l}\n")).collect();
    let dir = tempfile::tempdir().unwrap();
    let wrong = server.wrong_known_hosts();
    let cfg = |known_hosts: &std::path::Path| {
        format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {}\n    source:\n      git: {url}\n      ref: main\n      known_hosts: {}\n      ssh_key: |\n{indented}    sync: {{ interval: 1s }}\n",
            app.name,
            known_hosts.display()
        )
    };
    let s = Server::start(dir.path(), &cfg(&server.known_hosts));
    wait_until(90, "synced over ssh", || {
        s.app(&app.name)["sync"] == "Synced"
    });
    assert!(env_of(&app.container("web")).contains("GREETING=d1"));
    repo.write("compose.yaml", &demo_compose(&app.name, "d2"));
    repo.commit("two");
    wait_until(60, "the new commit deployed", || {
        env_of(&app.container("web")).contains("GREETING=d2")
    });

    // The server's host key no longer matches: nothing is trusted, the app says why.
    std::fs::write(
        &s.config,
        cfg(&wrong).replace("{port}", &s.port.to_string()),
    )
    .unwrap();
    assert_eq!(
        s.call("POST", "/api/v1/reload", Some(&s.admin), None).0,
        200
    );
    wait_until(60, "the host key mismatch reported", || {
        s.app(&app.name)["conditions"]
            .to_string()
            .contains("does not match")
    });
    assert!(
        env_of(&app.container("web")).contains("GREETING=d2"),
        "the running state is kept"
    );

    let mut everything = s.app(&app.name).to_string();
    everything += &s.get("/api/v1/events").to_string();
    everything += &s
        .get(&format!("/api/v1/apps/{}/operations", app.name))
        .to_string();
    // The key is on disk only in a private 0600 file while an ssh command runs (a poll
    // runs every second): stopped, the daemon has none left anywhere.
    let mut s = s;
    assert!(s.terminate().success());
    everything += &s.logs();
    everything +=
        &String::from_utf8_lossy(&std::fs::read(dir.path().join("state/mooring.db")).unwrap());
    if let Ok(wal) = std::fs::read(dir.path().join("state/mooring.db-wal")) {
        everything += &String::from_utf8_lossy(&wal);
    }
    for entry in walk(&dir.path().join("state")) {
        everything += &entry;
    }
    let body: Vec<&str> = key
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .collect();
    assert!(!body.is_empty());
    for line in body {
        if let Some(at) = everything.find(line) {
            let from = everything[..at]
                .char_indices()
                .rev()
                .nth(300)
                .map_or(0, |(i, _)| i);
            panic!("the key leaked: …{}…", &everything[from..at]);
        }
    }
    assert!(
        !everything.contains("mooring-ssh-"),
        "the temporary key path leaked"
    );
}
