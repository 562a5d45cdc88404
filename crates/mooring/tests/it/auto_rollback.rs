//! Automatic rollback with the data brought back (`sync.rollback`,
//! `data.restore_on_rollback`): the daemon, a Git repository, the machine's Docker and
//! a real volume. A revision whose "migration" rewrites the data and whose health check
//! then fails is replaced by the revision before, its volume restored byte for byte,
//! and is not tried again until a newer revision arrives.

use crate::common::daemon::{wait_until, Server};
use crate::common::*;

/// Revision `name`: service db keeps its rows in volume `data`; `migration` is the
/// shell run at start; the health check passes when `healthy`.
fn compose(app: &str, name: &str, migration: &str, healthy: bool) -> String {
    let check = if healthy { "true" } else { "false" };
    format!(
        "name: {app}\nservices:\n  db:\n    image: {IMAGE}\n    init: true\n    environment: {{ REVISION: {name} }}\n    command: [\"sh\", \"-c\", \"{migration}; exec sleep 3600\"]\n    volumes: [\"data:/data\"]\n    healthcheck: {{ test: [\"CMD\", \"{check}\"], interval: 1s, retries: 1 }}\nvolumes:\n  data: {{}}\n"
    )
}

#[test]
fn a_revision_that_breaks_its_data_is_rolled_back_with_the_data() {
    let app = TestApp::new("arb");
    let repo = Repo::new("autoroll");
    repo.write(
        "compose.yaml",
        &compose(
            &app.name,
            "one",
            "[ -f /data/rows ] || echo good rows > /data/rows",
            true,
        ),
    );
    let one = repo.commit("one");
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {}\n    source: {{ git: {}, ref: main }}\n    sync: {{ interval: 1s, rollback: {{ on_failure: true, health_timeout: 6s }} }}\n    data: {{ restore_on_rollback: [data], backup_max_age: 1h }}\n",
            app.name,
            repo.file_url()
        ),
    );
    let db = app.container("db");
    let rows = || docker(&["exec", &db, "cat", "/data/rows"]);
    wait_until(60, "one deployed and healthy", || {
        let a = s.app(&app.name);
        a["revision"] == one.as_str() && a["health"] == "Healthy"
    });
    assert_eq!(rows(), "good rows");
    // No backup of the data yet: reported (data.backup_max_age).
    wait_until(30, "the missing backup reported", || {
        s.app(&app.name)["conditions"]
            .to_string()
            .contains(&format!("volume {}_data has no backup", app.name))
    });
    let events = s
        .get(&format!("/api/v1/events?app={}", app.name))
        .to_string();
    assert!(events.contains("backup_stale"), "{events}");

    // Two's migration rewrites the rows, then its health check fails.
    repo.write(
        "compose.yaml",
        &compose(&app.name, "two", "echo broken > /data/rows", false),
    );
    let two = repo.commit("two");
    wait_until(90, "two rolled back", || {
        s.app(&app.name)["conditions"]
            .to_string()
            .contains("RolledBack")
    });
    let a = s.app(&app.name);
    assert_eq!(a["revision"], one.as_str(), "{a}");
    let condition = a["conditions"].to_string();
    assert!(
        condition.contains(&format!(
            "revision {} rolled back to {}: not Healthy within 6s",
            &two[..12],
            &one[..12]
        )) && condition.contains(&format!("{db}: Degraded"))
            && condition.contains(&format!("restored {}_data from backup", app.name)),
        "{condition}"
    );
    assert!(env_of(&db).contains("REVISION=one"));
    assert_eq!(rows(), "good rows", "the data as it was before two");
    // Recorded: the backup before two's deploy, the restore, the rollback's deploy.
    let history = s.get(&format!("/api/v1/apps/{}/operations?limit=10", app.name));
    let ops = history["operations"].as_array().unwrap();
    let deploy_two = ops
        .iter()
        .find(|o| o["revision"] == two.as_str() && o["trigger"] != "auto-rollback")
        .unwrap_or_else(|| panic!("{history}"));
    assert!(
        deploy_two
            .to_string()
            .contains(&format!("back up volume {}_data", app.name)),
        "{deploy_two}"
    );
    let auto: Vec<&serde_json::Value> = ops
        .iter()
        .filter(|o| o["trigger"] == "auto-rollback")
        .collect();
    assert!(
        auto.iter().any(|o| o
            .to_string()
            .contains(&format!("restore volume {}_data", app.name))
            && o["result"] == "succeeded")
            && auto
                .iter()
                .any(|o| o["revision"] == one.as_str() && o["result"] == "succeeded"),
        "{history}"
    );
    let events = s
        .get(&format!("/api/v1/events?app={}", app.name))
        .to_string();
    assert!(events.contains("rolled_back"), "{events}");
    // The backup before two made the data's backup fresh; the metrics say how old, how
    // large, and how long the backup and the restore took.
    assert!(!s.app(&app.name)["conditions"]
        .to_string()
        .contains("BackupStale"));
    let (_, metrics) = s.call("GET", "/metrics", Some(&s.admin), None);
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    let volume = format!("app=\"{}\",volume=\"{}_data\"", app.name, app.name);
    for line in [
        format!("mooring_volume_last_backup_timestamp_seconds{{{volume}}} "),
        format!("mooring_volume_last_backup_bytes{{{volume}}} 10"),
        format!(
            "mooring_data_operation_duration_seconds_count{{app=\"{}\",kind=\"backup\"}} ",
            app.name
        ),
        format!(
            "mooring_data_operation_duration_seconds_count{{app=\"{}\",kind=\"restore\"}} 1",
            app.name
        ),
    ] {
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }

    // Never loops: two stays out while the source still says two.
    let count = s.op_count(&app.name);
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert_eq!(s.op_count(&app.name), count, "two is not tried again");
    assert!(env_of(&db).contains("REVISION=one"));
    // Nor after a restart of the daemon: the hold is kept in its store.
    let mut s = s;
    s.terminate();
    s.spawn();
    wait_until(30, "the daemon back, two still held", || {
        let a = s.app(&app.name);
        a["revision"] == one.as_str() && a["conditions"].to_string().contains("RolledBack")
    });
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(
        s.op_count(&app.name),
        count,
        "two is not tried again after a restart"
    );
    assert!(env_of(&db).contains("REVISION=one"));

    // A newer revision deploys as any would.
    repo.write("compose.yaml", &compose(&app.name, "three", "true", true));
    let three = repo.commit("three");
    wait_until(60, "three deployed and healthy", || {
        let a = s.app(&app.name);
        a["revision"] == three.as_str() && a["health"] == "Healthy"
    });
    assert!(!s.app(&app.name)["conditions"]
        .to_string()
        .contains("RolledBack"));
    assert_eq!(rows(), "good rows");

    // A revision whose container cannot start (its shell is missing): exited, never
    // Healthy, rolled back too; and while it is held, the revision deployed is still
    // looked after (its health followed).
    repo.write(
        "compose.yaml",
        &compose(&app.name, "four", "true", true).replace(
            "command: [\"sh\", \"-c\"",
            "command: [\"/no/such/shell\", \"-c\"",
        ),
    );
    let four = repo.commit("four");
    // On probation, and the daemon restarts meanwhile: the probation is in its store,
    // its deadline holds.
    wait_until(60, "four on probation", || {
        let a = s.app(&app.name);
        a["revision"] == four.as_str() && a["probation"]["revision"] == four.as_str()
    });
    let a = s.app(&app.name);
    assert_eq!(a["probation"]["good"], three.as_str(), "{a}");
    let until = a["probation"]["until"].as_i64().unwrap();
    s.terminate();
    let restarted = mooring_core::clock::now_ms();
    assert!(
        restarted < until,
        "the restart falls inside the probation, or this proves nothing"
    );
    s.spawn();
    wait_until(60, "four rolled back", || {
        let a = s.app(&app.name);
        a["revision"] == three.as_str()
            && a["conditions"].to_string().contains(&format!(
                "revision {} rolled back to {}: not Healthy within 6s",
                &four[..12],
                &three[..12]
            ))
    });
    // Rolled back by the daemon started again, at the deadline it read from its store.
    let history = s.get(&format!("/api/v1/apps/{}/operations?limit=5", app.name));
    let rollback = history["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["trigger"] == "auto-rollback")
        .unwrap_or_else(|| panic!("{history}"));
    assert!(
        rollback["started_at"].as_i64().unwrap() >= restarted.max(until - 1000),
        "{rollback}"
    );
    wait_until(30, "three running and healthy again, four held", || {
        let a = s.app(&app.name);
        env_of(&db).contains("REVISION=three")
            && a["health"] == "Healthy"
            && a["sync"] == "OutOfSync"
            && a["conditions"].to_string().contains("RolledBack")
    });
    assert_eq!(rows(), "good rows");
    assert!(
        s.app(&app.name)["probation"].is_null(),
        "the probation ended with the rollback"
    );

    // A revision whose deploy fails half-way: db is recreated (its migration rewrites
    // the rows), then web cannot start (its port is taken). It keeps its retries until
    // the deadline, then three is deployed again with its data restored.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    repo.write(
        "compose.yaml",
        &format!(
            "{}  web:\n    image: {IMAGE}\n    init: true\n    command: [sleep, \"3600\"]\n    depends_on: [db]\n    ports: [\"127.0.0.1:{port}:80\"]\nvolumes:\n  data: {{}}\n",
            compose(&app.name, "five", "echo broken > /data/rows", true)
                .replace("volumes:\n  data: {}\n", "")
        ),
    );
    let five = repo.commit("five");
    wait_until(60, "five rolled back after its deploy failed", || {
        let a = s.app(&app.name);
        a["conditions"].to_string().contains(&format!(
            "revision {} rolled back to {}: its deploy failed",
            &five[..12],
            &three[..12]
        ))
    });
    wait_until(30, "three running again", || {
        env_of(&db).contains("REVISION=three") && s.app(&app.name)["health"] == "Healthy"
    });
    assert_eq!(rows(), "good rows");
}
