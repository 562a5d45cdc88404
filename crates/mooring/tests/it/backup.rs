//! Volume backups end to end on the machine's Docker: a real volume filled with known
//! data (thousands of files, binary content, nested folders, permissions, a symlink, an
//! empty file), backed up, verified, restored — and the data afterwards has exactly the
//! same checksums — through the volume's mount point (the default here: the tests run
//! as root next to the Docker daemon) and through the Docker archive API, and across the
//! two. Plus corruption, non-empty targets and `kill -9` mid-backup and mid-restore.

use crate::common::*;
use std::process::{Command, Stdio};

/// Fills `volume` with the test corpus.
fn fill(volume: &str) {
    let script = "set -e; cd /v; mkdir -p a/b/c deep/er/still; \
        i=0; while [ $i -lt 2000 ]; do echo \"file $i\" > a/f$i.txt; i=$((i+1)); done; \
        dd if=/dev/urandom of=deep/er/still/blob.bin bs=64k count=48 2>/dev/null; \
        dd if=/dev/urandom of=a/b/c/small.bin bs=1k count=3 2>/dev/null; \
        : > empty; mkdir emptydir; chmod 600 a/f1.txt; chmod 755 a/b; chmod 4750 a/b/c/small.bin; \
        chown 1234:5678 a/f3.txt; ln a/f4.txt hard; \
        mkdir -p owned && chown 999:999 owned && chmod 1770 owned; \
        ln -s a/f2.txt link; chown -h 42:43 link; ln -s /etc/passwd outside";
    write_in(volume, script);
}

/// A file capability (cap_net_bind_service, permitted + effective, v2 layout).
fn capability() -> Vec<u8> {
    [0x0200_0001u32, 1 << 10, 0, 0, 0]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect()
}

/// Extended attributes the mount-point path keeps: a `user.*` one on a file and a folder,
/// and a file capability (Docker's archive API keeps only the capability when it reads).
const XATTRS: &[(&str, &str)] = &[
    ("a/f7.txt", "user.note"),
    ("a/b", "user.folder"),
    ("a/f8.txt", "security.capability"),
];

fn set_xattrs(volume: &str) {
    let root = mount_point(volume);
    for (rel, name) in XATTRS {
        let value = match *name {
            "security.capability" => capability(),
            other => format!("{other} of {rel}").into_bytes(),
        };
        rustix::fs::setxattr(
            root.join(rel),
            *name,
            &value,
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap_or_else(|e| panic!("setxattr {name} on {rel}: {e}"));
    }
}

/// `rel name=value` of each of [`XATTRS`] in `volume` (`-` when missing).
fn xattrs(volume: &str) -> Vec<String> {
    let root = mount_point(volume);
    XATTRS
        .iter()
        .map(|(rel, name)| {
            let mut buf = vec![0u8; 256];
            match rustix::fs::getxattr(root.join(rel), *name, &mut buf[..]) {
                Ok(n) => format!("{rel} {name}={:?}", &buf[..n]),
                Err(e) => format!("{rel} {name} - ({e})"),
            }
        })
        .collect()
}

/// Creates `volume` labelled as the app's (so `mooring backup create APP` backs it up).
fn app_volume(app: &TestApp, volume: &str) {
    docker(&[
        "volume",
        "create",
        "--label",
        &format!("io.mooring.app={}", app.name),
        volume,
    ]);
}

/// Runs the shell `script` in a container that mounts `volume` at `/v`.
fn write_in(volume: &str, script: &str) {
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

const ARCHIVE_API: &[(&str, &str)] = &[("MOORING_VOLUME_ACCESS", "archive-api")];
const MOUNT_POINT: &[(&str, &str)] = &[("MOORING_VOLUME_ACCESS", "mount-point")];

#[test]
fn backup_verify_restore_loses_nothing_at_the_mount_point() {
    backup_verify_restore_loses_nothing(MOUNT_POINT, ARCHIVE_API, "at its mount point");
}

#[test]
fn backup_verify_restore_loses_nothing_through_the_archive_api() {
    backup_verify_restore_loses_nothing(ARCHIVE_API, MOUNT_POINT, "through the Docker archive API");
}

/// The scenario with one access path, restoring a copy with the other (`cross`).
fn backup_verify_restore_loses_nothing(env: &[(&str, &str)], cross: &[(&str, &str)], said: &str) {
    let app = TestApp::new("mbak");
    let volume = format!("{}_data", app.name);
    app_volume(&app, &volume);
    fill(&volume);
    let at_mount_point = env == MOUNT_POINT;
    if at_mount_point {
        set_xattrs(&volume);
    }
    let attrs = xattrs(&volume);
    assert_eq!(
        attrs.iter().all(|a| a.contains('=')),
        at_mount_point,
        "{attrs:?}"
    );
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

    let out = app.expect_env(0, &["backup", "create", &app.name], env);
    assert!(
        out.contains(&format!("read volume {volume} {said}")),
        "{out}"
    );
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
    let out = app.expect_env(1, &["backup", "restore", &id], env);
    assert!(
        out.contains("not empty") && out.contains("--force"),
        "{out}"
    );
    assert_eq!(fingerprint(&volume), before);
    // Into a new volume, by the other path: identical.
    let copy = format!("{}_copy", app.name);
    app.expect_env(0, &["backup", "restore", &id, "--to-volume", &copy], cross);
    let restored = fingerprint(&copy);
    let restored_attrs = xattrs(&copy);
    docker(&["volume", "rm", &copy]);
    assert_eq!(restored, before, "zero bytes lost");
    if at_mount_point {
        // Read at the mount point, written by dockerd from the archive's PAX records.
        assert_eq!(restored_attrs, attrs, "extended attributes kept");
    }

    // The data is lost on the host; the backup brings it back exactly.
    docker(&["rm", "-f", &writer]);
    write_in(&volume, "rm -rf /v/* /v/.[!.]* 2>/dev/null; true");
    assert_ne!(fingerprint(&volume), before);
    let out = app.expect_env(0, &["backup", "restore", &id], env);
    assert!(
        out.contains(&format!("wrote volume {volume} {said}")),
        "{out}"
    );
    assert_eq!(fingerprint(&volume), before, "zero bytes lost");
    if at_mount_point {
        assert_eq!(xattrs(&volume), attrs, "extended attributes kept");
        assert!(!out.contains("not set"), "{out}");
    }
    // With --force over changed data: the backup's files come back, others are kept.
    write_in(
        &volume,
        "echo changed > /v/a/f5.txt && rm -rf /v/a/b && echo new > /v/extra",
    );
    app.expect_env(0, &["backup", "restore", &id, "--force"], env);
    let after = fingerprint(&volume);
    let without_extra: Vec<&str> = after.lines().filter(|l| !l.contains("extra")).collect();
    assert_eq!(
        without_extra.join("\n"),
        before,
        "the backup's files are back"
    );
    assert!(
        after.contains("./extra"),
        "files not in the backup are kept"
    );
}

#[test]
fn a_damaged_archive_is_detected_and_refused() {
    let app = TestApp::new("mcor");
    let volume = format!("{}_data", app.name);
    app_volume(&app, &volume);
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
    // Into an existing empty volume, by either path: refused, named, nothing written.
    docker(&["volume", "create", &target]);
    for env in [MOUNT_POINT, ARCHIVE_API] {
        let out = app.expect_env(1, &["backup", "restore", &id, "--to-volume", &target], env);
        assert!(
            out.contains("refusing to restore") && out.contains("sha256"),
            "{env:?}: {out}"
        );
        let left = docker(&[
            "run",
            "--rm",
            "-v",
            &format!("{target}:/v:ro"),
            IMAGE,
            "ls",
            "-A",
            "/v",
        ]);
        assert_eq!(left.trim(), "", "{env:?}: nothing written: {out}");
    }
    docker(&["volume", "rm", &target]);
}

#[test]
fn killed_backup_leaves_no_listed_backup() {
    let app = TestApp::new("mkbk");
    let volume = format!("{}_big", app.name);
    app_volume(&app, &volume);
    write_in(
        &volume,
        "dd if=/dev/urandom of=/v/big bs=1M count=300 2>/dev/null",
    );
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

/// The volume's folder on this machine (the tests run as root beside the daemon).
fn mount_point(volume: &str) -> std::path::PathBuf {
    inspect(volume, "{{.Mountpoint}}").into()
}

/// Checking that a volume's mount point is the volume Docker sees writes nothing into
/// the volume — watched throughout five backups, no entry ever appears in its root —
/// and leaves the root folder's modification time as it was.
#[test]
fn proving_the_mount_point_writes_nothing_into_the_volume() {
    let app = TestApp::new("mprove");
    let volume = format!("{}_watched", app.name);
    app_volume(&app, &volume);
    write_in(
        &volume,
        "echo data > /v/f && touch -d '2024-01-02 03:04:05' /v",
    );
    let root = mount_point(&volume);
    // (Its access time moves whenever the folder is read, by the backup as by anyone.)
    let times = || std::fs::metadata(&root).unwrap().modified().unwrap();
    let before = times();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (stop, root) = (stop.clone(), root.clone());
        std::thread::spawn(move || {
            let mut seen = std::collections::BTreeSet::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for e in std::fs::read_dir(&root).into_iter().flatten().flatten() {
                    seen.insert(e.file_name().to_string_lossy().into_owned());
                }
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            seen
        })
    };
    for _ in 0..5 {
        let out = app.expect_env(
            0,
            &["backup", "create", &app.name, "--volume", &volume],
            &[("MOORING_VOLUME_ACCESS", "mount-point")],
        );
        assert!(out.contains("at its mount point"), "the proof held: {out}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    assert_eq!(seen, ["f".to_string()].into(), "only the user's file, ever");
    assert_eq!(times(), before, "the root's modification time is put back");
}

/// A backup of a volume holding a 300 MB file `d/big` (long enough to kill a restore
/// part-way) and a small one: the volume's fingerprint and the backup's id.
fn big_backup(app: &TestApp) -> (String, String) {
    let volume = format!("{}_big", app.name);
    app_volume(app, &volume);
    write_in(&volume, "mkdir /v/d && dd if=/dev/urandom of=/v/d/big bs=1M count=300 2>/dev/null && echo small > /v/z");
    let before = fingerprint(&volume);
    app.expect(0, &["backup", "create", &app.name]);
    (before, backup_id(app))
}

#[test]
fn killed_restore_is_never_claimed_done_and_the_next_restore_finishes_it() {
    let app = TestApp::new("mkrs");
    let (before, id) = big_backup(&app);
    let target = format!("{}_target", app.name);
    // Where the volume will be mounted, known before it exists, so that the loop below
    // polls the folder itself (a `docker volume inspect` per turn is slower, under load,
    // than the whole restore of the file).
    let root = std::path::PathBuf::from(
        String::from_utf8(docker_output(&["info", "-f", "{{.DockerRootDir}}"]).stdout)
            .unwrap()
            .trim(),
    );
    let folder = root.join("volumes").join(&target).join("_data");
    let log = app.data.path().join("killed-restore.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mooring"))
        .args(["backup", "restore", &id, "--to-volume", &target])
        .env("MOORING_DATA_DIR", app.data.path())
        // The path staged inside the volume, whatever a busy machine's probe says
        // (under load, `auto` may fall back to the archive API, which stages nothing).
        .env("MOORING_VOLUME_ACCESS", "mount-point")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Killed while the archive is being staged inside the volume.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let staged_big = loop {
        let staged = std::fs::read_dir(&folder)
            .ok()
            .and_then(|d| {
                d.flatten().find(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(".mooring-restore-")
                })
            })
            .map(|e| e.path().join("data/d/big"));
        if let Some(big) = staged.filter(|b| b.metadata().is_ok_and(|m| m.len() > 0)) {
            break big;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the restore ended ({status}) before it could be killed: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no staging folder appeared in {}",
            folder.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the restore was killed");
    assert!(
        staged_big.metadata().unwrap().len() < 300 << 20,
        "killed mid-way (the file was still being written)"
    );
    // The volume holds nothing but the staging folder: no data claimed restored.
    let visible = fingerprint(&target);
    assert!(
        visible
            .lines()
            .all(|l| l.starts_with(". ") || l.contains("./.mooring-restore-")),
        "{visible}"
    );
    // The backup stays valid, and restoring again (no --force needed) finishes the job.
    app.expect(0, &["backup", "verify", &id]);
    let out = app.expect(0, &["backup", "restore", &id, "--to-volume", &target]);
    assert!(out.contains("interrupted restore"), "{out}");
    assert_eq!(fingerprint(&target), before, "zero bytes lost");
    docker(&["volume", "rm", &target]);
}

#[test]
fn killed_archive_api_restore_is_finished_by_the_next_without_force() {
    let app = TestApp::new("mkra");
    let (before, id) = big_backup(&app);
    let target = format!("{}_target", app.name);
    docker(&["volume", "create", &target]);
    let big = mount_point(&target).join("d/big");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mooring"))
        .args(["backup", "restore", &id, "--to-volume", &target])
        .env("MOORING_DATA_DIR", app.data.path())
        .env("MOORING_VOLUME_ACCESS", "archive-api")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed while dockerd writes the big file into the volume.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !big.metadata().is_ok_and(|m| m.len() > 0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the restore wrote nothing"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success(), "the restore was killed");
    assert_ne!(fingerprint(&target), before, "killed part-way");
    // Restoring through the archive API without --force must be refused as not empty.
    let refused = || {
        let out = app.expect_env(
            1,
            &["backup", "restore", &id, "--to-volume", &target],
            ARCHIVE_API,
        );
        assert!(
            out.contains("not empty") && out.contains("--force"),
            "{out}"
        );
    };
    // A file the backup does not have: that is someone's data, so --force is needed.
    write_in(&target, "echo mine > /v/not-from-the-backup");
    refused();
    write_in(&target, "rm /v/not-from-the-backup");
    // Holding only the backup's own paths, it finishes what the killed one started.
    let out = app.expect_env(
        0,
        &["backup", "restore", &id, "--to-volume", &target],
        ARCHIVE_API,
    );
    assert!(out.contains("interrupted restore"), "{out}");
    assert_eq!(fingerprint(&target), before, "zero bytes lost");
    // Done: the next restore into it is refused again without --force.
    refused();
    docker(&["volume", "rm", &target]);
}
