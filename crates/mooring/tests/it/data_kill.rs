//! `kill -9` at random moments of destructive syncs, as a table of five scenarios, five
//! runs each: three that delete a volume under `backup-then-delete` (a service removed
//! with its volume, a volume a running service stops mounting, a volume renamed), one
//! that recreates it (its driver options changed to a bind, `--recreate-volume`: backed
//! up, removed, created again, restored), and a rollback two revisions back in a Git
//! repository (`--ref` the first, which mounted another volume). The `mooring sync`
//! process is killed after a random delay (the seed is printed). After each kill: the
//! volume still holds exactly what it held (not a stray file in it) or a listed backup
//! restores it byte for byte; no volume is ever gone or emptied without one. Then an
//! uninterrupted sync finishes the job — a recreated volume holds its data again — and
//! leaves no helper container behind.

use crate::common::*;
use std::fs;
use std::time::{Duration, Instant};

/// `db` mounting `key` (or nothing) beside `web`, both kept running.
fn compose(app: &str, db: Option<&str>, declared: Option<&str>) -> String {
    let mut s = format!("name: {app}\nservices:\n  web:\n    image: {IMAGE}\n    init: true\n    command: [sleep, \"3600\"]\n  db:\n    image: {IMAGE}\n    init: true\n    command: [sleep, \"3600\"]\n");
    if let Some(key) = db {
        s += &format!("    volumes: [\"{key}:/data\"]\n");
    }
    if let Some(key) = declared {
        s += &format!("volumes:\n  {key}: {{}}\n");
    }
    s
}

struct Scenario {
    name: &'static str,
    /// The revision after (the one before mounts and declares `data`), of an app and
    /// a folder of the test's.
    after: fn(&str, &str) -> String,
    /// `data` is recreated (`--recreate-volume`), not removed.
    recreates: bool,
    /// From a Git repository whose third commit is deployed, back to its first
    /// (`--ref`), which mounted another volume: `after` is that first revision.
    rolls_back: bool,
}

const SCENARIOS: [Scenario; 5] = [
    Scenario {
        name: "service removed with its volume",
        after: |app, _| {
            format!("name: {app}\nservices:\n  web:\n    image: {IMAGE}\n    init: true\n    command: [sleep, \"3600\"]\n")
        },
        recreates: false,
        rolls_back: false,
    },
    Scenario {
        name: "volume no longer mounted",
        after: |app, _| compose(app, None, None),
        recreates: false,
        rolls_back: false,
    },
    Scenario {
        name: "volume renamed",
        after: |app, _| compose(app, Some("store"), Some("store")),
        recreates: false,
        rolls_back: false,
    },
    Scenario {
        name: "driver options changed",
        // (Bound to a folder: a tmpfs would lose its content with its last user.)
        after: |app, dir| {
            compose(app, Some("data"), None)
                + &format!("volumes:\n  data:\n    driver_opts: {{ type: none, o: bind, device: {dir}/bound }}\n")
        },
        recreates: true,
        rolls_back: false,
    },
    Scenario {
        name: "rolled back two revisions",
        after: |app, _| compose(app, Some("old"), Some("old")),
        recreates: false,
        rolls_back: true,
    },
];

/// A small deterministic generator (xorshift), so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Whether `volume` exists.
fn exists(volume: &str) -> bool {
    docker_output(&["volume", "inspect", volume])
        .status
        .success()
}

#[test]
fn kill_9_at_random_moments_never_loses_a_volume_or_leaves_a_stray_file() {
    let seed = std::env::var("MOORING_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("kill table seed: MOORING_KILL_SEED={seed}");
    let mut rng = Rng(seed);
    let mut table = Vec::new();
    // How long a sync takes here: what the last uninterrupted one took. The delays are
    // drawn below it, so that nearly every run is killed part-way, wherever it is.
    let mut takes = Duration::from_millis(800);
    // And from the backup's start to the end (the backup, its check, the removal).
    let mut tail = Duration::from_millis(400);
    for run in 0..25 {
        let scenario = &SCENARIOS[run % SCENARIOS.len()];
        let app = TestApp::new("kill");
        let dir = tempfile::tempdir().unwrap();
        let mut src = dir.path().to_str().unwrap().to_string();
        let current = compose(&app.name, Some("data"), Some("data"));
        // The revision the killed sync deploys (`--ref`, from a repository).
        let mut rollback_to = None;
        if scenario.rolls_back {
            let repo = Repo::new("rollback");
            repo.write("compose.yaml", &(scenario.after)(&app.name, &src));
            let first = repo.commit("one: old");
            app.expect(0, &["sync", &repo.file_url(), "--ref", &first]);
            repo.write("compose.yaml", &current).commit("two: data");
            repo.write("compose.yaml", &current.replace("3600", "3601"))
                .commit("three");
            src = repo.file_url();
            rollback_to = Some((repo, first));
        } else {
            fs::write(dir.path().join("compose.yaml"), &current).unwrap();
        }
        app.expect(0, &["sync", &src]);
        let volume = format!("{}_data", app.name);
        // Hundreds of files and a few megabytes: a backup long enough to be killed in.
        docker(&[
            "exec",
            &app.container("db"),
            "sh",
            "-c",
            "mkdir -p /data/f && for i in $(seq 600); do echo row $i > /data/f/$i; done && dd if=/dev/urandom of=/data/blob bs=1M count=48 2>/dev/null",
        ]);
        let before = fingerprint(&volume);
        fs::create_dir(dir.path().join("bound")).unwrap();
        if !scenario.rolls_back {
            fs::write(
                dir.path().join("compose.yaml"),
                (scenario.after)(&app.name, &src),
            )
            .unwrap();
        }
        // Every other run: from when the backup starts being written (its `.partial`
        // files appear), to land in the backup, its read-back check or the removal.
        let from_backup = run % 2 == 1;
        let span = if from_backup { tail } else { takes };
        let delay = Duration::from_millis(rng.below(span.as_millis() as u64 * 11 / 10));
        let backups = app.data.path().join("backups");
        let writing = || {
            fs::read_dir(&backups).is_ok_and(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            })
        };
        let mut counting_from: Option<Instant> = None;
        let started = Instant::now();
        let mut sync = vec!["sync", "--prune", "--data-policy", "backup-then-delete"];
        if scenario.recreates {
            sync.extend(["--recreate-volume", &volume]);
        }
        if let Some((_, first)) = &rollback_to {
            sync.extend(["--ref", first]);
        }
        sync.push(&src);
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mooring"))
            .args(&sync)
            .env("MOORING_DATA_DIR", app.data.path())
            .env("NO_COLOR", "1")
            .env_remove("MOORING_VOLUME_ACCESS")
            .env_remove("DOCKER_HOST")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let finished = loop {
            if let Some(status) = child.try_wait().unwrap() {
                let floor = Duration::from_millis(50);
                match (from_backup, counting_from) {
                    (true, Some(t)) => tail = t.elapsed().max(floor),
                    (false, _) => takes = started.elapsed().max(floor),
                    _ => {}
                }
                break Some(status);
            }
            if counting_from.is_none() && (!from_backup || writing()) {
                counting_from = Some(Instant::now());
            }
            if counting_from.is_some_and(|t| t.elapsed() >= delay) {
                child.kill().unwrap();
                child.wait().unwrap();
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let what = format!(
            "run {run} ({}, killed {} ms after {}, seed {seed})",
            scenario.name,
            delay.as_millis(),
            if from_backup {
                "the backup began"
            } else {
                "the start"
            }
        );
        // What the kill left: the volume as it was, or a backup that restores it.
        let listed = app.expect(0, &["backup", "list", "-o", "json"]);
        let backups: serde_json::Value = serde_json::from_str(listed.trim()).unwrap();
        let state = if exists(&volume) && !(scenario.recreates && fingerprint(&volume) != before) {
            assert_eq!(fingerprint(&volume), before, "{what}: the volume changed");
            "volume kept"
        } else {
            let id = backups
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["volume"] == volume.as_str())
                .unwrap_or_else(|| panic!("{what}: the volume is gone without a backup"))["id"]
                .as_str()
                .unwrap()
                .to_string();
            app.expect(0, &["backup", "verify", &id]);
            let copy = format!("{}_copy", app.name);
            app.expect(0, &["backup", "restore", &id, "--to-volume", &copy]);
            assert_eq!(fingerprint(&copy), before, "{what}: the backup restores it");
            docker(&["volume", "rm", &copy]);
            if exists(&volume) {
                "recreated part-way, backup restores it"
            } else {
                "removed, backup restores it"
            }
        };
        // Then the job is finished, and nothing of Mooring's is left on the host.
        let finished_by = app.expect(0, &sync);
        if scenario.recreates {
            assert!(
                fingerprint(&volume) == before,
                "{what}: the recreated volume holds its data again; the last sync said:\n{finished_by}"
            );
            let options = docker(&["volume", "inspect", "-f", "{{.Options.o}}", &volume]);
            assert_eq!(options.trim(), "bind", "{what}: recreated as declared");
        } else {
            assert!(!exists(&volume), "{what}: the volume is removed in the end");
        }
        // This app's (other tests run beside this one, with their own).
        for v in [
            &volume,
            &format!("{}_store", app.name),
            &format!("{}_old", app.name),
        ] {
            let helpers = docker(&[
                "ps",
                "-aq",
                "--filter",
                &format!("label=io.mooring.volume-helper={v}"),
            ]);
            assert!(
                helpers.is_empty(),
                "{what}: helper containers of {v} left: {helpers}"
            );
        }
        if let Some(other) = match scenario.name {
            "volume renamed" => Some("store"),
            "rolled back two revisions" => Some("old"),
            _ => None,
        } {
            let store = format!("{}_{other}", app.name);
            assert!(
                !fingerprint(&store).contains(".mooring"),
                "{what}: a stray file in {store}"
            );
        }
        table.push(format!(
            "{what}: {} → {state}",
            if finished.is_some() {
                "finished before the kill"
            } else {
                "killed"
            }
        ));
    }
    eprintln!("{}", table.join("\n"));
    assert!(
        table.iter().filter(|r| r.contains(": killed")).count() >= 12,
        "most runs must be killed part-way: {table:#?}"
    );
}
