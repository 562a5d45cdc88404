//! Shared harness for the CLI's black-box tests: runs the real `mooring` binary in a
//! temp data directory, against the machine's Docker daemon.

#![allow(dead_code, unused_imports)]

pub mod daemon;
pub mod schema;

pub use mooring_testkit::docker::{
    containers, docker, docker_output, inspect, require, Cleanup, IMAGE,
};
pub use mooring_testkit::git::{Daemon, Repo};
use std::path::Path;
use std::process::{Command, Output};

/// One test's app: unique name, own data directory, removed from Docker on drop.
pub struct TestApp {
    pub name: String,
    pub data: tempfile::TempDir,
    _cleanup: Cleanup,
}

impl TestApp {
    pub fn new(prefix: &str) -> TestApp {
        require();
        let name = mooring_testkit::docker::unique_name(prefix);
        TestApp {
            _cleanup: Cleanup(name.clone()),
            name,
            data: tempfile::tempdir().unwrap(),
        }
    }

    /// Runs `mooring ARGS` with this app's data directory.
    pub fn run(&self, args: &[&str]) -> Output {
        mooring(args, Some(self.data.path()))
    }

    /// Runs and asserts the exit code; returns stdout + stderr.
    pub fn expect(&self, code: i32, args: &[&str]) -> String {
        self.expect_env(code, args, &[])
    }

    /// Like [`TestApp::expect`], with extra environment variables.
    pub fn expect_env(&self, code: i32, args: &[&str], env: &[(&str, &str)]) -> String {
        mooring_testkit::git::hermetic();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mooring"));
        cmd.args(args)
            .env("NO_COLOR", "1")
            .env_remove("DOCKER_HOST")
            .env_remove("MOORING_VOLUME_ACCESS")
            .env("MOORING_DATA_DIR", self.data.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("running mooring");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.status.code(),
            Some(code),
            "mooring {args:?} exited {:?}:\n{text}",
            out.status.code()
        );
        text
    }

    /// The app's containers, `name state`, sorted.
    pub fn containers(&self) -> Vec<String> {
        containers(&self.name)
    }

    /// Ids of the networks carrying the app's label.
    pub fn networks(&self) -> String {
        docker(&[
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("label=io.mooring.app={}", self.name),
        ])
    }

    pub fn container(&self, service: &str) -> String {
        format!("{}-{service}-1", self.name)
    }

    pub fn id(&self, service: &str) -> String {
        inspect(&self.container(service), "{{.Id}}")
    }
}

/// Runs the `mooring` binary built for these tests.
pub fn mooring(args: &[&str], data_dir: Option<&Path>) -> Output {
    mooring_testkit::git::hermetic();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mooring"));
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env_remove("DOCKER_HOST");
    if let Some(d) = data_dir {
        cmd.env("MOORING_DATA_DIR", d);
    }
    cmd.output().expect("running mooring")
}

/// A two-service project: `web` serves ./site (a repository folder), `worker` writes a volume.
/// The container's environment, `KEY=VALUE` lines; empty while it does not exist (being
/// recreated).
pub fn env_of(container: &str) -> String {
    let out = docker_output(&[
        "inspect",
        "--format",
        "{{range .Config.Env}}{{println .}}{{end}}",
        container,
    ]);
    String::from_utf8_lossy(&out.stdout).to_string()
}

pub fn demo_compose(app: &str, greeting: &str) -> String {
    format!(
        r#"name: {app}
services:
  web:
    image: {IMAGE}
    init: true
    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
    environment:
      GREETING: {greeting}
    volumes:
      - ./site:/www:ro
    restart: unless-stopped
  worker:
    image: {IMAGE}
    init: true
    command: ["sleep", "3600"]
    volumes:
      - data:/data
volumes:
  data:
"#
    )
}

/// Every path of a volume with its type, mode (setuid and the like included), size,
/// owner and link count, every file's sha256 and every symlink's target, sorted: equal
/// fingerprints mean not a byte lost.
pub fn fingerprint(volume: &str) -> String {
    let script = "cd /v && find . -exec stat -c '%n %F %a %s %u:%g %h' {} + | sort && \
        find . -type f -exec sha256sum {} + | sort && \
        find . -type l -exec readlink {} + | sort";
    docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{volume}:/v:ro"),
        IMAGE,
        "sh",
        "-c",
        script,
    ])
}

/// Every path and file content under `dir` (small files only): what a leak check greps.
pub fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            out.push(p.display().to_string());
            if p.is_dir() {
                out.extend(walk(&p));
            } else if let Ok(bytes) = std::fs::read(&p) {
                if bytes.len() < 1 << 20 {
                    out.push(String::from_utf8_lossy(&bytes).to_string());
                }
            }
        }
    }
    out
}

/// A Compose file for `app` that is the classic billion-laughs attack: nine levels of
/// nine aliases (9^9 strings once expanded) in about 600 bytes.
pub fn billion_laughs(app: &str) -> String {
    let mut text = format!("name: {app}\nservices:\n  web:\n    image: {IMAGE}\nx-a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n");
    for (prev, level) in ('a'..'i').zip('b'..='i') {
        let items = vec![format!("*{prev}"); 9].join(",");
        text += &format!("x-{level}: &{level} [{items}]\n");
    }
    text
}
