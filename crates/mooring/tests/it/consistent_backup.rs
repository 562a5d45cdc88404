//! App-consistent backups (`data.consistent`): the daemon, a Git repository, the
//! machine's Docker and a real database engine (SQLite, in an image made from this
//! machine's sqlite3). A volume is backed up by its service's dump command while the
//! service keeps running, restored by its load command; a failing dump keeps nothing;
//! `before`/`after` commands run around a copy of the files.

use crate::common::daemon::{wait_until, Server};
use crate::common::*;
use serde_json::json;

/// `POST /api/v1/apps/APP/backups` of volume `APP_KEY`: its status and answer.
fn back_up(s: &Server, app: &str, key: &str) -> (u16, serde_json::Value) {
    s.call(
        "POST",
        &format!("/api/v1/apps/{app}/backups"),
        Some(&s.admin),
        Some(json!({ "volume": format!("{app}_{key}") })),
    )
}

#[test]
fn a_database_is_dumped_while_it_runs_and_loaded_back() {
    let image = mooring_testkit::docker::require_sqlite_image();
    let app = TestApp::new("dump");
    let repo = Repo::new("dump");
    // db: the database (its file in volume data); files: another volume, copied between
    // commands that leave their marks in it.
    repo.write(
        "compose.yaml",
        &format!(
            "name: {}\nservices:\n  db:\n    image: {image}\n    init: true\n    command: [\"sh\", \"-c\", \"sqlite3 /data/app.db 'create table if not exists t(x); insert into t values (1)'; exec sleep 3600\"]\n    volumes: [\"data:/data\", \"files:/files\"]\nvolumes:\n  data: {{}}\n  files: {{}}\n",
            app.name
        ),
    );
    let one = repo.commit("one");
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {}\n    source: {{ git: {}, ref: main }}\n    sync: {{ interval: 1h, self_heal: false }}\n    data:\n      consistent:\n        data:\n          service: db\n          dump: [sqlite3, /data/app.db, .dump]\n          load: [sh, -c, \"rm -f /data/app.db && sqlite3 -bail /data/app.db\"]\n        files:\n          service: db\n          before: [sh, -c, \"echo frozen > /files/state\"]\n          after: [sh, -c, \"echo thawed > /files/state\"]\n",
            app.name,
            repo.file_url()
        ),
    );
    let db = app.container("db");
    wait_until(60, "one deployed", || {
        s.app(&app.name)["revision"] == one.as_str()
    });
    let query = |sql: &str| docker(&["exec", &db, "sqlite3", "/data/app.db", sql]);
    // 100,000 rows: a dump of a few megabytes, in more than one part.
    query("with recursive n(i) as (select 2 union all select i + 1 from n where i < 100001) insert into t select printf('row %d of the good data, padded to make it longer', i) from n");
    let started = || docker(&["inspect", "-f", "{{.State.StartedAt}}", &db]);
    let before = started();

    let (code, v) = back_up(&s, &app.name, "data");
    assert_eq!(code, 200, "{v}");
    let backup = &v["backups"][0];
    assert_eq!(backup["dump"], "db", "{v}");
    let dump_id = backup["id"].as_str().unwrap().to_string();
    let id = dump_id.clone();
    let reason = v["operation"].to_string();
    assert!(
        reason.contains(&format!("dumped in {db}, which kept running")),
        "{reason}"
    );
    assert!(backup["bytes"].as_i64().unwrap() > 5_000_000, "{v}");
    assert_eq!(started(), before, "the database was not stopped");
    // What `sqlite3 .dump` prints now, to compare with what the restore brings back.
    let dump = docker(&["exec", &db, "sqlite3", "/data/app.db", ".dump"]);
    let (code, verified) = s.call(
        "POST",
        &format!("/api/v1/apps/{}/backups/{id}/verify", app.name),
        Some(&s.admin),
        None,
    );
    assert_eq!(code, 200, "{verified}");

    // The data goes bad; the dump brings it back, through the load command.
    query("delete from t where rowid % 2 = 0; insert into t values ('bad')");
    let restore = format!("/api/v1/apps/{}/backups/{id}/restore", app.name);
    let (code, v) = s.call("POST", &restore, Some(&s.admin), Some(json!({})));
    assert_eq!(
        code, 409,
        "a load changes a live database: force asked: {v}"
    );
    assert!(v.to_string().contains("ask again with force"), "{v}");
    let (code, v) = s.call(
        "POST",
        &restore,
        Some(&s.admin),
        Some(json!({"to_volume": "elsewhere", "force": true})),
    );
    assert_eq!(code, 409, "{v}");
    let (code, v) = s.call(
        "POST",
        &restore,
        Some(&s.admin),
        Some(json!({"force": true})),
    );
    assert_eq!(code, 200, "{v}");
    assert!(
        v["operation"]
            .to_string()
            .contains(&format!("loaded in {db}")),
        "{v}"
    );
    assert_eq!(query("select count(*) from t"), "100001");
    assert_eq!(query("select count(*) from t where x = 'bad'"), "0");
    assert_eq!(
        docker(&["exec", &db, "sqlite3", "/data/app.db", ".dump"]),
        dump,
        "the database as dumped"
    );

    // A dump that fails keeps nothing, and says why.
    let count = || {
        s.get(&format!("/api/v1/apps/{}/backups", app.name))["backups"]
            .as_array()
            .unwrap()
            .len()
    };
    let backups = count();
    docker(&["exec", &db, "mv", "/data/app.db", "/data/gone.db"]);
    docker(&["exec", &db, "mkdir", "/data/app.db"]);
    let (code, v) = back_up(&s, &app.name, "data");
    assert_eq!(code, 502, "{v}");
    let error = v["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("`sqlite3 …` in {db} exited with")) && !error.contains(".dump"),
        "{v}"
    );
    assert_eq!(count(), backups, "nothing kept of a failed dump");
    docker(&["exec", &db, "rmdir", "/data/app.db"]);
    docker(&["exec", &db, "mv", "/data/gone.db", "/data/app.db"]);

    // `before` and `after` around a copy of the files: the copy holds what `before`
    // left, the volume what `after` left, and the service ran on.
    let (code, v) = back_up(&s, &app.name, "files");
    assert_eq!(code, 200, "{v}");
    assert!(
        v["operation"]
            .to_string()
            .contains("between `before` and `after`"),
        "{v}"
    );
    assert_eq!(v["backups"][0]["dump"], serde_json::Value::Null, "{v}");
    assert_eq!(docker(&["exec", &db, "cat", "/files/state"]), "thawed");
    let id = v["backups"][0]["id"].as_str().unwrap().to_string();
    let (code, v) = s.call(
        "POST",
        &format!("/api/v1/apps/{}/backups/{id}/restore", app.name),
        Some(&s.admin),
        Some(json!({"to_volume": format!("{}_copy", app.name)})),
    );
    assert_eq!(code, 200, "{v}");
    let copied = docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{}_copy:/c", app.name),
        image,
        "cat",
        "/c/state",
    ]);
    assert_eq!(copied, "frozen");
    docker_output(&["volume", "rm", &format!("{}_copy", app.name)]);
    assert_eq!(started(), before, "the service ran throughout");

    // With the service stopped there is no database to ask: the files are copied.
    docker(&["stop", &db]);
    let (code, v) = back_up(&s, &app.name, "data");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["backups"][0]["dump"], serde_json::Value::Null, "{v}");
    assert!(
        v["operation"]
            .to_string()
            .contains("service db has no running container to dump in"),
        "{v}"
    );

    // Without the daemon, the command line works on the volume directly: a dump is not
    // files, and is refused with the way to load it by hand.
    s.terminate();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mooring"))
        .args(["backup", "restore", &dump_id, "--force", "--config"])
        .arg(dir.path().join("mooring.yaml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "backup {dump_id} is a database dump of service db"
        )) && stderr.contains("tar -xO | docker exec -i CONTAINER LOAD-COMMAND"),
        "{stderr}"
    );
}
