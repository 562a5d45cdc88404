//! Volume backups end to end on the machine's Docker: a real volume filled with known
//! data (thousands of files, binary content, nested folders, permissions, a symlink, an
//! empty file), backed up, verified, restored — and the data afterwards has exactly the
//! same checksums. Plus corruption, non-empty targets and `kill -9` mid-backup.

mod common;
use common::*;
use std::process::{Command, Stdio};

/// Fills `volume` with the test corpus.
fn fill(volume: &str) {
    let script = "set -e; cd /v; mkdir -p a/b/c deep/er/still; \
        i=0; while [ $i -lt 2000 ]; do echo \"file $i\" > a/f$i.txt; i=$((i+1)); done; \
        dd if=/dev/urandom of=deep/er/still/blob.bin bs=64k count=48 2>/dev/null; \
        dd if=/dev/urandom of=a/b/c/small.bin bs=1k count=3 2>/dev/null; \
        : > empty; mkdir emptydir; chmod 600 a/f1.txt; chmod 755 a/b; chmod 4750 a/b/c/small.bin; \
        ln -s a/f2.txt link";
    docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{volume}:/v"),
        IMAGE,
        "sh",
        "-c",
        script,
    ]);
}

fn backup_id(app: &TestApp) -> String {
    let out = app.expect(0, &["backup", "list", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    v[0]["id"].as_str().unwrap().to_string()
}

#[test]
fn backup_verify_restore_loses_nothing() {
    let app = TestApp::new("mbak");
    let volume = format!("{}_data", app.name);
    docker(&[
        "volume",
        "create",
        "--label",
        &format!("io.mooring.app={}", app.name),
        &volume,
    ]);
    fill(&volume);
    let before = fingerprint(&volume);
    assert!(
        before.lines().count() > 2000,
        "corpus: {} entries",
        before.lines().count()
    );
    // A running writer is stopped for the copy and started again.
    let writer = format!("{}-writer", app.name);
    docker(&[
        "run",
        "-d",
        "--init",
        "--name",
        &writer,
        "--label",
        &format!("io.mooring.app={}", app.name),
        "-v",
        &format!("{volume}:/v"),
        IMAGE,
        "sleep",
        "600",
    ]);

    let out = app.expect(0, &["backup", "create", &app.name]);
    assert!(
        out.contains("(verified)")
            && out.contains(&format!("stopping {writer}"))
            && out.contains(&format!("started {writer} again")),
        "{out}"
    );
    assert_eq!(inspect(&writer, "{{.State.Status}}"), "running");
    let id = backup_id(&app);
    let listed = app.expect(0, &["backup", "list", &app.name]);
    assert!(
        listed.contains(&id) && listed.contains(&volume) && listed.contains("manual"),
        "{listed}"
    );
    app.expect(0, &["backup", "verify", &id]);

    // Onto the non-empty volume: refused without --force, nothing changed.
    let out = app.expect(1, &["backup", "restore", &id]);
    assert!(
        out.contains("not empty") && out.contains("--force"),
        "{out}"
    );
    // Into a new volume: identical.
    let copy = format!("{}_copy", app.name);
    app.expect(0, &["backup", "restore", &id, "--to-volume", &copy]);
    let restored = fingerprint(&copy);
    docker(&["volume", "rm", &copy]);
    assert_eq!(restored, before, "zero bytes lost");

    // The data is lost on the host; the backup brings it back exactly.
    docker(&["rm", "-f", &writer]);
    docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{volume}:/v"),
        IMAGE,
        "sh",
        "-c",
        "rm -rf /v/* /v/.[!.]* 2>/dev/null; true",
    ]);
    assert_ne!(fingerprint(&volume), before);
    app.expect(0, &["backup", "restore", &id]);
    assert_eq!(fingerprint(&volume), before, "zero bytes lost");
}

#[test]
fn a_damaged_archive_is_detected_and_refused() {
    let app = TestApp::new("mcor");
    let volume = format!("{}_data", app.name);
    docker(&[
        "volume",
        "create",
        "--label",
        &format!("io.mooring.app={}", app.name),
        &volume,
    ]);
    fill(&volume);
    app.expect(0, &["backup", "create", &app.name]);
    let id = backup_id(&app);
    let archive = app
        .data
        .path()
        .join("backups")
        .join(format!("{id}.tar.zst"));
    let mut bytes = std::fs::read(&archive).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&archive, bytes).unwrap();
    let out = app.expect(1, &["backup", "verify", &id]);
    assert!(out.contains("does not verify"), "{out}");
    let target = format!("{}_target", app.name);
    let out = app.expect(1, &["backup", "restore", &id, "--to-volume", &target]);
    assert!(out.contains("refusing to restore"), "{out}");
    assert!(
        !docker_output(&["volume", "inspect", &target])
            .status
            .success(),
        "nothing was created or written"
    );
}

#[test]
fn killed_backup_leaves_no_listed_backup() {
    let app = TestApp::new("mkbk");
    let volume = format!("{}_big", app.name);
    docker(&[
        "volume",
        "create",
        "--label",
        &format!("io.mooring.app={}", app.name),
        &volume,
    ]);
    docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{volume}:/v"),
        IMAGE,
        "sh",
        "-c",
        "dd if=/dev/urandom of=/v/big bs=1M count=300 2>/dev/null",
    ]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_mooring"))
        .args(["backup", "create", &app.name])
        .env("MOORING_DATA_DIR", app.data.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let dir = app.data.path().join("backups");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let partial = std::fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            })
            .unwrap_or(false);
        if partial {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no partial archive appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let out = app.expect(0, &["backup", "list", "-o", "json"]);
    assert_eq!(out.trim(), "[]", "a half-written archive is never listed");
    // The next backup works (and leaves no helper container behind).
    app.expect(0, &["backup", "create", &app.name]);
    assert!(!backup_id(&app).is_empty());
    let helpers = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=io.mooring.volume-helper={volume}"),
    ]);
    assert!(helpers.is_empty(), "helper containers left: {helpers}");
}
