//! Data policies in the plan, on the machine's Docker: removing a volume from the
//! Compose file never deletes it under `protect`; under `backup-then-delete` (with
//! prune) it is deleted only after a verified backup, which restores every byte; a
//! volume whose definition cannot change in place blocks the sync with `VolumeDiverged`.

use crate::common::*;
use std::fs;

fn compose(app: &str, with_data: bool, opts: &str) -> String {
    let mut s = format!("name: {app}\nservices:\n  web:\n    image: {IMAGE}\n    init: true\n    command: [sleep, \"3600\"]\n");
    if with_data {
        s += &format!("  db:\n    image: {IMAGE}\n    init: true\n    command: [sleep, \"3600\"]\n    volumes: [data:/data]\nvolumes:\n  data:{opts}\n");
    }
    s
}

/// A project folder holding `compose`, synced once; the folder lives as long as `dir`.
fn synced(app: &TestApp, compose: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().to_str().unwrap().to_string();
    fs::write(dir.path().join("compose.yaml"), compose).unwrap();
    app.expect(0, &["sync", &src]);
    (dir, src)
}

#[test]
fn protect_keeps_backup_then_delete_backs_up_first_and_restores_everything() {
    let app = TestApp::new("mpol");
    let (dir, src) = synced(&app, &compose(&app.name, true, ""));
    let src = src.as_str();
    let volume = format!("{}_data", app.name);
    docker(&["exec", &app.container("db"), "sh", "-c", "mkdir -p /data/x && i=0; while [ $i -lt 500 ]; do echo $i > /data/x/$i; i=$((i+1)); done; dd if=/dev/urandom of=/data/blob bs=64k count=16 2>/dev/null; ln -s x/1 /data/link"]);
    let before = fingerprint(&volume);

    // The service and the volume leave the repository.
    fs::write(
        dir.path().join("compose.yaml"),
        compose(&app.name, false, ""),
    )
    .unwrap();
    let out = app.expect(0, &["sync", "--prune", src]);
    assert!(
        out.contains(&format!(
            "volume {volume} is no longer declared; kept (protected"
        )),
        "{out}"
    );
    assert!(
        docker_output(&["volume", "inspect", &volume])
            .status
            .success(),
        "protect never deletes"
    );
    assert_eq!(fingerprint(&volume), before);

    // Without --prune, backup-then-delete keeps it too.
    let out = app.expect(0, &["sync", "--data-policy", "backup-then-delete", src]);
    assert!(out.contains("only with prune"), "{out}");
    // With it: a verified backup, then the removal — in that order.
    let diff = app.expect(
        2,
        &[
            "diff",
            "--prune",
            "--data-policy",
            "backup-then-delete",
            src,
        ],
    );
    let b = diff
        .find(&format!("back up volume {volume}"))
        .expect("backup planned");
    let r = diff
        .find(&format!("remove volume {volume}"))
        .expect("removal planned");
    assert!(b < r, "{diff}");
    let out = app.expect(
        0,
        &[
            "sync",
            "--prune",
            "--data-policy",
            "backup-then-delete",
            src,
        ],
    );
    assert!(
        out.contains(&format!("back up volume {volume}"))
            && out.contains(&format!("remove volume {volume}")),
        "{out}"
    );
    assert!(
        !docker_output(&["volume", "inspect", &volume])
            .status
            .success(),
        "removed after the backup"
    );
    let list = app.expect(0, &["backup", "list", &app.name, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(list.trim()).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "{list}");
    assert!(v[0]["reason"]
        .as_str()
        .unwrap()
        .contains("backup-then-delete"));
    let id = v[0]["id"].as_str().unwrap().to_string();
    app.expect(0, &["backup", "verify", &id]);
    // Restore is one command; every byte comes back.
    app.expect(0, &["backup", "restore", &id]);
    assert_eq!(fingerprint(&volume), before, "zero bytes lost");
    docker(&["volume", "rm", &volume]);
}

#[test]
fn a_volume_that_cannot_change_in_place_blocks_the_sync_until_recreated() {
    let app = TestApp::new("mdiv");
    let (dir, src) = synced(&app, &compose(&app.name, true, ""));
    let src = src.as_str();
    let volume = format!("{}_data", app.name);
    docker(&["exec", &app.container("db"), "sh", "-c", "mkdir -p /data/d && echo keep > /data/d/f && dd if=/dev/urandom of=/data/r bs=1k count=64 2>/dev/null"]);
    let before = fingerprint(&volume);
    let db = app.id("db");
    // New driver options: the volume's data will live in a host folder.
    let host = tempfile::tempdir().unwrap();
    let opts = format!(
        "\n    driver_opts: {{ type: none, o: bind, device: {} }}",
        host.path().display()
    );
    fs::write(
        dir.path().join("compose.yaml"),
        compose(&app.name, true, &opts),
    )
    .unwrap();
    let out = app.expect(1, &["sync", src]);
    assert!(
        out.contains("VolumeDiverged")
            && out.contains("cannot be changed in place")
            && out.contains("o=bind"),
        "{out}"
    );
    assert_eq!(app.id("db"), db, "nothing changed");
    assert_eq!(fingerprint(&volume), before);
    app.expect(1, &["diff", src]);

    // Resolved explicitly: backed up, recreated as declared, restored.
    let out = app.expect(0, &["sync", src, "--recreate-volume", &volume]);
    for step in [
        format!("back up volume {volume}"),
        format!("remove volume {volume}"),
        format!("create volume {volume}"),
        format!("restore volume {volume}"),
    ] {
        assert!(out.contains(&step), "{step} missing:\n{out}");
    }
    assert_eq!(
        inspect(&volume, "{{index .Options \"device\"}}"),
        host.path().display().to_string()
    );
    assert_eq!(fingerprint(&volume), before, "zero bytes lost");
    assert!(
        host.path().join("d/f").exists(),
        "the data lives where the new definition says"
    );
    assert_eq!(
        inspect(&app.container("db"), "{{.State.Status}}"),
        "running"
    );
    app.expect(0, &["diff", src]);
    let list = app.expect(0, &["backup", "list", "-o", "json"]);
    assert!(
        list.contains("\"volume\""),
        "the backup stays in the catalogue: {list}"
    );
}

#[test]
fn the_compose_file_can_ask_for_backup_then_delete_per_volume() {
    let app = TestApp::new("mxm");
    let (dir, src) = synced(
        &app,
        &compose(
            &app.name,
            true,
            "\n    x-mooring: { data: backup-then-delete }",
        ),
    );
    let src = src.as_str();
    let volume = format!("{}_data", app.name);
    assert_eq!(
        inspect(&volume, "{{index .Labels \"io.mooring.data-policy\"}}"),
        "backup-then-delete"
    );
    docker(&[
        "exec",
        &app.container("db"),
        "sh",
        "-c",
        "echo precious > /data/file",
    ]);
    let before = fingerprint(&volume);
    fs::write(
        dir.path().join("compose.yaml"),
        compose(&app.name, false, ""),
    )
    .unwrap();
    // The app's policy is the default (protect); the volume's own annotation wins.
    let out = app.expect(0, &["sync", "--prune", src]);
    assert!(
        out.contains(&format!("back up volume {volume}"))
            && out.contains(&format!("remove volume {volume}")),
        "{out}"
    );
    let list = app.expect(0, &["backup", "list", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(list.trim()).unwrap();
    let id = v[0]["id"].as_str().unwrap().to_string();
    app.expect(0, &["backup", "restore", &id]);
    assert_eq!(fingerprint(&volume), before);
    docker(&["volume", "rm", &volume]);
}

/// The `db` service mounting the volume declared under `key`.
fn compose_key(app: &str, key: &str, opts: &str) -> String {
    format!("name: {app}\nservices:\n  db:\n    image: {IMAGE}\n    init: true\n    command: [sleep, \"3600\"]\n    volumes: [{key}:/data]\nvolumes:\n  {key}:{opts}\n")
}

#[test]
fn renaming_a_volume_keeps_the_old_one_under_protect_and_backs_it_up_before_deleting() {
    let app = TestApp::new("mren");
    let (dir, src) = synced(&app, &compose_key(&app.name, "data", ""));
    let src = src.as_str();
    let old = format!("{}_data", app.name);
    let new = format!("{}_store", app.name);
    docker(&["exec", &app.container("db"), "sh", "-c", "mkdir -p /data/x/y && i=0; while [ $i -lt 300 ]; do echo $i > /data/x/$i; i=$((i+1)); done; dd if=/dev/urandom of=/data/x/y/blob bs=64k count=16 2>/dev/null; chmod 640 /data/x/1; chown 7:8 /data/x/2; ln -s x/3 /data/link; : > /data/empty"]);
    let before = fingerprint(&old);

    // The Compose key is renamed: a new volume; the old one is kept with its data.
    fs::write(
        dir.path().join("compose.yaml"),
        compose_key(&app.name, "store", ""),
    )
    .unwrap();
    let out = app.expect(0, &["sync", "--prune", src]);
    assert!(
        out.contains(&format!("create volume {new}"))
            && out.contains(&format!(
                "volume {old} is no longer declared; kept (protected"
            )),
        "{out}"
    );
    assert_eq!(fingerprint(&old), before, "protect never deletes");
    assert_eq!(
        inspect(&app.container("db"), "{{range .Mounts}}{{.Name}}{{end}}"),
        new
    );

    // Under backup-then-delete: backed up and verified, then removed — in that order.
    let out = app.expect(
        0,
        &[
            "sync",
            "--prune",
            "--data-policy",
            "backup-then-delete",
            src,
        ],
    );
    let b = out
        .find(&format!("back up volume {old}"))
        .unwrap_or_else(|| panic!("backup missing:\n{out}"));
    let r = out
        .find(&format!("remove volume {old}"))
        .unwrap_or_else(|| panic!("removal missing:\n{out}"));
    assert!(b < r, "{out}");
    assert!(
        !docker_output(&["volume", "inspect", &old]).status.success(),
        "removed after its backup"
    );
    assert!(
        docker_output(&["volume", "inspect", &new]).status.success(),
        "the declared volume stays"
    );
    let list = app.expect(0, &["backup", "list", &app.name, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(list.trim()).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(v[0]["volume"], old.as_str());
    let id = v[0]["id"].as_str().unwrap().to_string();
    app.expect(0, &["backup", "verify", &id]);
    let copy = format!("{}_back", app.name);
    app.expect(0, &["backup", "restore", &id, "--to-volume", &copy]);
    let restored = fingerprint(&copy);
    docker(&["volume", "rm", &copy]);
    assert_eq!(restored, before, "zero bytes lost");
}

#[test]
fn killed_backup_then_delete_never_deletes_without_a_complete_verified_backup() {
    let app = TestApp::new("mkdel");
    let (dir, src) = synced(
        &app,
        &compose(
            &app.name,
            true,
            "\n    x-mooring: { data: backup-then-delete }",
        ),
    );
    let src = src.as_str();
    let volume = format!("{}_data", app.name);
    docker(&[
        "exec",
        &app.container("db"),
        "sh",
        "-c",
        "dd if=/dev/urandom of=/data/big bs=1M count=300 2>/dev/null && echo precious > /data/small",
    ]);
    let before = fingerprint(&volume);
    fs::write(
        dir.path().join("compose.yaml"),
        compose(&app.name, false, ""),
    )
    .unwrap();
    let backups = app.data.path().join("backups");
    for attempt in 0..2 {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mooring"))
            .args(["sync", "--prune", src])
            .env("MOORING_DATA_DIR", app.data.path())
            .env_remove("MOORING_VOLUME_ACCESS")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Killed while the backup is being written (its .partial files exist).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !fs::read_dir(&backups)
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            })
            .unwrap_or(false)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "attempt {attempt}: no backup started"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            docker_output(&["volume", "inspect", &volume])
                .status
                .success(),
            "attempt {attempt}: no volume is deleted without a complete verified backup"
        );
        assert_eq!(fingerprint(&volume), before, "attempt {attempt}");
        let list = app.expect(0, &["backup", "list", "-o", "json"]);
        assert_eq!(list.trim(), "[]", "a half-written backup is never listed");
    }
    // Uninterrupted, the same sync finishes the job: backup, verified, then removal.
    let out = app.expect(0, &["sync", "--prune", src]);
    assert!(
        out.contains(&format!("back up volume {volume}"))
            && out.contains(&format!("remove volume {volume}")),
        "{out}"
    );
    assert!(!docker_output(&["volume", "inspect", &volume])
        .status
        .success());
    let list = app.expect(0, &["backup", "list", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(list.trim()).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "{list}");
    let id = v[0]["id"].as_str().unwrap().to_string();
    app.expect(0, &["backup", "verify", &id]);
    app.expect(0, &["backup", "restore", &id]);
    assert_eq!(fingerprint(&volume), before, "zero bytes lost");
    docker(&["volume", "rm", &volume]);
}

#[test]
fn x_mooring_backup_on_change_in_the_compose_file_with_retention() {
    let app = TestApp::new("mxch");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().to_str().unwrap();
    let write = |rev: u32| {
        fs::write(
            dir.path().join("compose.yaml"),
            compose_key(
                &app.name,
                "data",
                "\n    x-mooring: { backup: on-change, retention: { keep: 1 } }",
            )
            .replace(
                "command: [sleep, \"3600\"]",
                &format!("command: [sleep, \"360{rev}\"]"),
            ),
        )
        .unwrap();
    };
    write(0);
    let out = app.expect(0, &["sync", src]);
    assert!(!out.contains("back up"), "nothing to back up yet: {out}");
    let volume = format!("{}_data", app.name);
    let mut ids = Vec::new();
    for rev in 1..=2 {
        docker(&[
            "exec",
            &app.container("db"),
            "sh",
            "-c",
            &format!("echo {rev} > /data/f{rev}"),
        ]);
        let before = fingerprint(&volume);
        write(rev);
        let diff = app.expect(2, &["diff", src]);
        let b = diff.find(&format!("back up volume {volume}")).expect(&diff);
        let r = diff
            .find(&format!("recreate container {}", app.container("db")))
            .expect(&diff);
        assert!(b < r && diff.contains("on-change"), "{diff}");
        let out = app.expect(0, &["sync", src]);
        assert!(out.contains("· backup "), "{out}");
        let list = app.expect(0, &["backup", "list", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(list.trim()).unwrap();
        assert_eq!(
            v.as_array().unwrap().len(),
            1,
            "retention keeps one: {list}"
        );
        let id = v[0]["id"].as_str().unwrap().to_string();
        assert!(!ids.contains(&id));
        ids.push(id.clone());
        let copy = format!("{}_copy", app.name);
        app.expect(0, &["backup", "restore", &id, "--to-volume", &copy]);
        let restored = fingerprint(&copy);
        docker(&["volume", "rm", &copy]);
        assert_eq!(restored, before, "the data just before the change");
    }
    let out = app.expect(0, &["sync", src]);
    assert!(!out.contains("back up"), "no change, no backup: {out}");
}

/// A service that keeps running but stops mounting a volume: under `backup-then-delete`
/// (with prune) the container is recreated without it first, then the volume is backed
/// up and removed — not refused by Docker as "in use" on every retry.
#[test]
fn a_volume_a_running_service_stops_using_is_backed_up_and_removed() {
    let app = TestApp::new("mrel");
    let (dir, src) = synced(&app, &compose(&app.name, true, ""));
    let volume = format!("{}_data", app.name);
    docker(&[
        "exec",
        &app.container("db"),
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    let before = fingerprint(&volume);
    let db = app.id("db");
    // `db` stays, without the volume; the volume leaves the file.
    fs::write(
        dir.path().join("compose.yaml"),
        format!("name: {a}\nservices:\n  web:\n    image: {IMAGE}\n    init: true\n    command: [sleep, \"3600\"]\n  db:\n    image: {IMAGE}\n    init: true\n    command: [sleep, \"3600\"]\n", a = app.name),
    )
    .unwrap();
    let out = app.expect(
        0,
        &[
            "sync",
            "--prune",
            "--data-policy",
            "backup-then-delete",
            &src,
        ],
    );
    assert!(out.contains(&format!("remove volume {volume}")), "{out}");
    assert_ne!(app.id("db"), db, "db was recreated without the volume");
    assert!(
        !docker_output(&["volume", "inspect", &volume])
            .status
            .success(),
        "the volume was removed"
    );
    // Its backup holds every byte.
    let listed = app.expect(0, &["backup", "list", &app.name]);
    let id = listed
        .lines()
        .find(|l| l.contains(&volume))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    app.expect(0, &["backup", "restore", &id]);
    assert_eq!(fingerprint(&volume), before);
    docker(&["volume", "rm", &volume]);
}

/// A removal that keeps failing (a container outside the app holds the volume) is
/// retried without piling up copies: each retry reuses the newest backup while the
/// volume's content is unchanged, takes a new one once it changed, and the removal
/// finally goes through on the backup that holds every byte.
#[test]
fn a_retried_removal_reuses_the_backup_of_unchanged_content() {
    let app = TestApp::new("mreuse");
    let (dir, src) = synced(&app, &compose(&app.name, true, ""));
    let volume = format!("{}_data", app.name);
    docker(&[
        "exec",
        &app.container("db"),
        "sh",
        "-c",
        "echo one > /data/f",
    ]);
    let blocker = format!("{}-blocker", app.name);
    /// Removes the container outside the app however the test ends.
    struct Removed(String);
    impl Drop for Removed {
        fn drop(&mut self) {
            let _ = docker_output(&["rm", "-f", &self.0]);
        }
    }
    let _removed = Removed(blocker.clone());
    docker(&[
        "run",
        "-d",
        "--name",
        &blocker,
        "-v",
        &format!("{volume}:/x"),
        IMAGE,
        "sleep",
        "3600",
    ]);
    fs::write(
        dir.path().join("compose.yaml"),
        compose(&app.name, false, ""),
    )
    .unwrap();
    let sync = |code| {
        app.expect(
            code,
            &[
                "sync",
                "--prune",
                "--data-policy",
                "backup-then-delete",
                &src,
            ],
        )
    };
    let backups = || {
        app.expect(0, &["backup", "list", &app.name])
            .lines()
            .filter(|l| l.contains(&volume))
            .count()
    };
    // The removal fails while the blocker holds the volume.
    sync(1);
    assert_eq!(backups(), 1);
    for _ in 0..2 {
        sync(1);
        assert_eq!(backups(), 1, "the retry reused the backup");
    }
    // Changed content: a new backup.
    docker(&["exec", &blocker, "sh", "-c", "echo two > /x/g"]);
    let before = fingerprint(&volume);
    sync(1);
    assert_eq!(backups(), 2);
    docker(&["rm", "-f", &blocker]);
    sync(0);
    assert_eq!(backups(), 2, "the removal went through on the last backup");
    assert!(!docker_output(&["volume", "inspect", &volume])
        .status
        .success());
    let id = app
        .expect(0, &["backup", "list", &app.name])
        .lines()
        .filter(|l| l.contains(&volume))
        .filter_map(|l| l.split_whitespace().next())
        .max()
        .unwrap()
        .to_string();
    app.expect(0, &["backup", "restore", &id]);
    assert_eq!(
        fingerprint(&volume),
        before,
        "every byte, the second file included"
    );
    docker(&["volume", "rm", &volume]);
}

/// What a killed run leaves — a probe file in the volume's root, a helper container
/// (created, never started) mounting it — is Mooring's own: the next volume operation
/// removes the probe, and removing the volume removes the helper first instead of
/// failing with "volume is in use".
#[test]
fn leftovers_of_a_killed_run_are_cleaned_and_never_block_a_removal() {
    let app = TestApp::new("mleft");
    let (dir, src) = synced(&app, &compose(&app.name, true, ""));
    let volume = format!("{}_data", app.name);
    docker(&[
        "exec",
        &app.container("db"),
        "sh",
        "-c",
        "echo data > /data/f && echo x > /data/.mooring-probe-0123456789abcdef",
    ]);
    // A backup through the mount point: the stale probe goes, the data stays.
    app.expect_env(
        0,
        &["backup", "create", &app.name],
        &[("MOORING_VOLUME_ACCESS", "mount-point")],
    );
    let listing = docker(&["exec", &app.container("db"), "ls", "-a", "/data"]);
    assert!(!listing.contains(".mooring-probe-"), "{listing}");
    assert!(listing.contains('f'), "{listing}");
    // Removing the volume: the stale helper does not hold it.
    let helper = format!("mooring-volume-io-{volume}-999999");
    docker(&[
        "create",
        "--name",
        &helper,
        "--label",
        &format!("io.mooring.volume-helper={volume}"),
        "-v",
        &format!("{volume}:/v"),
        IMAGE,
        "true",
    ]);
    fs::write(
        dir.path().join("compose.yaml"),
        compose(&app.name, false, ""),
    )
    .unwrap();
    app.expect(
        0,
        &[
            "sync",
            "--prune",
            "--data-policy",
            "backup-then-delete",
            &src,
        ],
    );
    assert!(!docker_output(&["volume", "inspect", &volume])
        .status
        .success());
    assert!(!docker_output(&["container", "inspect", &helper])
        .status
        .success());
}
