//! Container logs through the daemon: `mooring app logs` and
//! `GET /api/v1/apps/NAME/logs`, against a real `mooring serve` and the machine's
//! Docker — the last lines of stdout and stderr with timestamps, one service or all, and
//! `-f` following lines written after the request.

use crate::common::daemon::{wait_until, Server};
use crate::common::*;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A synced daemon app of two services: `ticker` writes `tick-N` to stdout and `err-N`
/// to stderr every 0.3 s, `quiet` writes `quiet-started` once. Shared with the web UI's
/// logs tab test. The daemon goes first when it is dropped (fields drop in order): were
/// the app's containers removed while it still ran, it would put them back, and they
/// would outlive the test.
pub(crate) struct Ticking {
    pub s: Server,
    pub app: TestApp,
    _proj: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

pub(crate) fn ticking(prefix: &str) -> Ticking {
    let app = TestApp::new(prefix);
    let proj = tempfile::tempdir().unwrap();
    std::fs::write(
        proj.path().join("compose.yaml"),
        format!(
            "name: {}\nservices:\n  ticker:\n    image: {IMAGE}\n    init: true\n    command: [\"sh\", \"-c\", \"echo started; i=0; while true; do i=$$((i+1)); echo tick-$$i; echo err-$$i >&2; sleep 0.3; done\"]\n  quiet:\n    image: {IMAGE}\n    init: true\n    command: [\"sh\", \"-c\", \"echo quiet-started; exec sleep 3600\"]\n",
            app.name
        ),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {}\n    source: {{ dir: {} }}\n    sync: {{ interval: 1h }}\n",
            app.name,
            proj.path().display()
        ),
    );
    wait_until(60, "synced", || s.app(&app.name)["sync"] == "Synced");
    Ticking {
        s,
        app,
        _proj: proj,
        _dir: dir,
    }
}

#[test]
fn logs_show_the_last_lines_and_follow_new_ones() {
    let Ticking { app, s, .. } = &ticking("slog");
    let logs = |args: &[&str]| {
        let out = s.cli(&[&["logs", &app.name][..], args].concat());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    wait_until(30, "a few ticks", || logs(&["ticker"]).contains("tick-4"));

    // The last lines of one service, stdout and stderr, each with its timestamp.
    let last = logs(&["ticker", "--tail", "4"]);
    let lines: Vec<&str> = last.lines().collect();
    assert_eq!(lines.len(), 4, "{last}");
    assert!(lines.iter().all(|l| l.starts_with("ticker | 20")), "{last}");
    assert!(last.contains("tick-") && last.contains("err-"), "{last}");
    // Every service when none is named.
    let all = logs(&["--tail", "50"]);
    assert!(
        all.contains("quiet  | ") && all.contains("quiet-started"),
        "{all}"
    );
    assert!(all.contains("ticker | "), "{all}");
    // An unknown service is an error naming the app's services.
    let out = s.cli(&["logs", &app.name, "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("its services: quiet, ticker"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A token is needed; a viewer's is enough.
    let path = format!("/api/v1/apps/{}/logs?tail=1", app.name);
    assert_eq!(s.call("GET", &path, None, None).0, 401);
    let viewer = s.token("viewer");
    assert_eq!(s.call("GET", &path, Some(&viewer), None).0, 200);

    // -f: lines written after the request arrive while it stays open.
    let seen_before: u64 = last
        .lines()
        .filter_map(|l| l.rsplit("tick-").next()?.trim().parse().ok())
        .max()
        .unwrap_or(0);
    let mut follower = Command::new(env!("CARGO_BIN_EXE_mooring"))
        .args(["app", "logs", &app.name, "ticker", "-f", "--tail", "0"])
        .env("MOORING_SERVER", s.url(""))
        .env("MOORING_TOKEN", &viewer)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut newer = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while newer.is_none() && std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) {
            if let Some(n) = line
                .rsplit("tick-")
                .next()
                .and_then(|n| n.trim().parse::<u64>().ok())
                .filter(|n| *n > seen_before)
            {
                newer = Some(n);
            }
        }
    }
    follower.kill().unwrap();
    follower.wait().unwrap();
    assert!(newer.is_some(), "no new line arrived while following");
    // The daemon keeps answering after the follower went away.
    assert_eq!(s.call("GET", "/readyz", None, None).0, 200);
}
