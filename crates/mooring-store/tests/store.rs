//! The store against real SQLite files in a temporary directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mooring_core::{ConditionKind, EventKind, Health, SyncState};
use mooring_store::{
    ActionRecord, AppStatus, Condition, NewEvent, NewOperation, OpResult, Role, Store, StoreError,
    TokenOptions, SESSION_LIFETIME_MS, SESSION_PREFIX, TOKEN_PREFIX,
};

fn db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mooring.db");
    (dir, path)
}

/// A raw connection, to look at the file behind the store's back.
fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

fn user_version(path: &Path) -> i64 {
    raw(path)
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

fn status(name: &str, at: i64) -> AppStatus {
    AppStatus {
        name: name.to_owned(),
        sync: SyncState::Synced,
        health: Health::Healthy,
        revision: Some("0123abcd".to_owned()),
        revision_describe: Some("v1.2-3-g0123abc".to_owned()),
        source: "https://example.org/repo.git//apps/web@main".to_owned(),
        pinned: None,
        conditions: vec![Condition {
            kind: ConditionKind::VolumeDiverged,
            message: "volume data: driver changed".to_owned(),
        }],
        last_operation: Some(7),
        next_retry_at: None,
        failures: 0,
        updated_at: at,
        held: Some(mooring_store::Held {
            revision: "4567ef".to_owned(),
            condition: Condition {
                kind: ConditionKind::RolledBack,
                message: "revision 4567ef rolled back to 0123abcd".to_owned(),
            },
        }),
        probation: Some(mooring_store::Probation {
            revision: "0123abcd".to_owned(),
            good: "89ab".to_owned(),
            until: at + 120_000,
            failed: None,
            backups: vec![(
                "web_db".to_owned(),
                "web-web_db-20261205T000000-abcdef".to_owned(),
            )],
        }),
    }
}

fn new_op(app: &str, trigger: &str, at: i64) -> NewOperation {
    NewOperation {
        app: app.to_owned(),
        trigger: trigger.to_owned(),
        revision: Some(format!("rev-{at}")),
        dry_run: false,
        started_at: at,
        requested_by: (trigger == "api").then(|| "token ops".to_owned()),
    }
}

fn action(seq: u32, at: i64) -> ActionRecord {
    ActionRecord {
        seq,
        kind: "create".to_owned(),
        resource: format!("container web-{seq}"),
        reason: "missing".to_owned(),
        started_at: at,
        duration_ms: 12,
        error: None,
        output: None,
    }
}

fn event(app: Option<&str>, message: &str, at: i64) -> NewEvent {
    NewEvent {
        app: app.map(str::to_owned),
        kind: EventKind::DriftDetected,
        message: message.to_owned(),
        at,
    }
}

#[test]
fn migrations_from_empty_file() {
    let (_dir, path) = db();
    let store = Store::open(&path).unwrap();
    assert_eq!(store.path(), path);
    assert!(store.apps().unwrap().is_empty());
    assert_eq!(
        usize::try_from(user_version(&path)).unwrap(),
        Store::schema_version()
    );
    let conn = raw(&path);
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for t in [
        "actions",
        "api_tokens",
        "apps",
        "events",
        "operations",
        "webhook_deliveries",
        "sessions",
    ] {
        assert!(tables.iter().any(|n| n == t), "{t} missing in {tables:?}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Opening again applies nothing and keeps the version.
    drop(store);
    Store::open(&path).unwrap();
    assert_eq!(
        usize::try_from(user_version(&path)).unwrap(),
        Store::schema_version()
    );
}

#[test]
fn open_in_a_missing_directory_names_the_path() {
    let (dir, _) = db();
    let path = dir.path().join("no-such-dir").join("mooring.db");
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-dir"), "{err}");
}

#[test]
fn history_survives_restarts() {
    let (_dir, path) = db();
    let (op_id, token) = {
        let store = Store::open(&path).unwrap();
        store.put_app(&status("web", 1_000)).unwrap();
        store.set_pin("web", Some("0123abcd")).unwrap();
        let op = store
            .begin_operation(&new_op("web", "startup", 1_000))
            .unwrap();
        store.record_action(op, &action(1, 1_001)).unwrap();
        store
            .finish_operation(op, OpResult::Succeeded, None, 1_050)
            .unwrap();
        store
            .add_event(&event(Some("web"), "synced", 1_050))
            .unwrap();
        let token = store.create_token("ci", Role::Operator, 1_000).unwrap();
        (op, token)
    };
    let store = Store::open(&path).unwrap();
    let app = store.app("web").unwrap().unwrap();
    assert_eq!(app.pinned.as_deref(), Some("0123abcd"));
    assert_eq!(app.conditions.len(), 1);
    let op = store.operation(op_id).unwrap().unwrap();
    assert_eq!(op.result, Some(OpResult::Succeeded));
    assert_eq!(op.actions, vec![action(1, 1_001)]);
    assert_eq!(store.events(None, None, 10).unwrap().len(), 1);
    assert_eq!(
        store.authenticate(&token, 2_000).unwrap().unwrap().name,
        "ci"
    );
}

#[test]
fn newer_schema_is_refused() {
    let (_dir, path) = db();
    Store::open(&path).unwrap();
    raw(&path)
        .pragma_update(None, "user_version", 999_i64)
        .unwrap();
    let err = Store::open(&path).unwrap_err();
    match &err {
        StoreError::TooNew { found, known, .. } => {
            assert_eq!(*found, 999);
            assert_eq!(*known, Store::schema_version());
        }
        other => panic!("expected TooNew, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("mooring.db") && msg.contains("999"), "{msg}");
    // The file was left alone.
    assert_eq!(user_version(&path), 999);
}

#[test]
fn apps_round_trip_in_name_order() {
    let (_dir, path) = db();
    let store = Store::open(&path).unwrap();
    for name in ["web", "api", "db"] {
        store.put_app(&status(name, 5)).unwrap();
    }
    let names: Vec<String> = store.apps().unwrap().into_iter().map(|a| a.name).collect();
    assert_eq!(names, ["api", "db", "web"]);
    let mut changed = status("web", 9);
    changed.sync = SyncState::OutOfSync;
    changed.failures = 3;
    changed.next_retry_at = Some(99);
    changed.conditions.clear();
    store.put_app(&changed).unwrap();
    assert_eq!(store.app("web").unwrap(), Some(changed));
    assert!(store.delete_app("web").unwrap());
    assert!(!store.delete_app("web").unwrap());
    assert_eq!(store.app("web").unwrap(), None);
}

#[test]
fn pin_is_not_clobbered_by_put_app() {
    let (_dir, path) = db();
    let store = Store::open(&path).unwrap();
    // A pin on an unknown app changes nothing.
    assert!(!store.set_pin("web", Some("abc")).unwrap());
    // A new app starts unpinned, whatever the status says.
    let mut s = status("web", 1);
    s.pinned = Some("ignored".to_owned());
    store.put_app(&s).unwrap();
    assert_eq!(store.app("web").unwrap().unwrap().pinned, None);

    assert!(store.set_pin("web", Some("abc")).unwrap());
    let mut s = status("web", 2);
    s.pinned = None;
    store.put_app(&s).unwrap();
    s.pinned = Some("other".to_owned());
    store.put_app(&s).unwrap();
    let app = store.app("web").unwrap().unwrap();
    assert_eq!(app.pinned.as_deref(), Some("abc"));
    assert_eq!(app.updated_at, 2);

    assert!(store.set_pin("web", None).unwrap());
    assert_eq!(store.app("web").unwrap().unwrap().pinned, None);
}

#[test]
fn operations_with_actions_round_trip_newest_first() {
    let (_dir, path) = db();
    let store = Store::open(&path).unwrap();
    let mut ids = Vec::new();
    for i in 0..5_i64 {
        let app = if i % 2 == 0 { "web" } else { "api" };
        let id = store
            .begin_operation(&new_op(app, "interval", 100 * i))
            .unwrap();
        // Recorded out of order; read back by seq.
        for seq in [2_u32, 0, 1] {
            let mut a = action(seq, 100 * i + i64::from(seq));
            if seq == 2 {
                a.error = Some("boom".to_owned());
            }
            store.record_action(id, &a).unwrap();
        }
        store
            .finish_operation(id, OpResult::Failed, Some("boom"), 100 * i + 50)
            .unwrap();
        ids.push(id);
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    let all = store.operations(None, 100, None).unwrap();
    assert_eq!(
        all.iter().map(|o| o.id).collect::<Vec<_>>(),
        ids.iter().rev().copied().collect::<Vec<_>>()
    );
    for op in &all {
        let seqs: Vec<u32> = op.actions.iter().map(|a| a.seq).collect();
        assert_eq!(seqs, [0, 1, 2]);
        assert_eq!(op.actions[2].error.as_deref(), Some("boom"));
        assert_eq!(op.result, Some(OpResult::Failed));
        assert_eq!(op.error.as_deref(), Some("boom"));
        assert!(op.finished_at.is_some());
        assert_eq!(store.operation(op.id).unwrap().as_ref(), Some(op));
    }

    // One app, paged.
    let web = store.operations(Some("web"), 2, None).unwrap();
    assert_eq!(
        web.iter().map(|o| o.id).collect::<Vec<_>>(),
        [ids[4], ids[2]]
    );
    let next = store.operations(Some("web"), 2, Some(ids[2])).unwrap();
    assert_eq!(next.iter().map(|o| o.id).collect::<Vec<_>>(), [ids[0]]);
    assert_eq!(next[0].actions.len(), 3);
    assert!(store.operations(None, 0, None).unwrap().is_empty());
    assert_eq!(store.operation(9_999).unwrap(), None);

    // Unknown operation, duplicate seq: errors, not panics.
    assert!(store.record_action(9_999, &action(0, 0)).is_err());
    assert!(store.record_action(ids[0], &action(0, 0)).is_err());
    assert!(!store
        .finish_operation(9_999, OpResult::NoOp, None, 0)
        .unwrap());

    // The JSON form uses snake_case results.
    let json = serde_json::to_value(&all[0]).unwrap();
    assert_eq!(json["result"], "failed");
}

#[test]
fn unfinished_operations_are_interrupted() {
    let (_dir, path) = db();
    let (running, done) = {
        let store = Store::open(&path).unwrap();
        let done = store.begin_operation(&new_op("web", "api", 1)).unwrap();
        store
            .finish_operation(done, OpResult::NoOp, None, 2)
            .unwrap();
        let running = store.begin_operation(&new_op("web", "webhook", 3)).unwrap();
        store.record_action(running, &action(0, 3)).unwrap();
        let op = store.operation(running).unwrap().unwrap();
        assert_eq!((op.finished_at, op.result), (None, None));
        (running, done)
        // "Crash": the store is dropped with the operation open.
    };
    let store = Store::open(&path).unwrap();
    assert_eq!(store.interrupt_unfinished(10).unwrap(), 1);
    assert_eq!(store.interrupt_unfinished(11).unwrap(), 0);
    let op = store.operation(running).unwrap().unwrap();
    assert_eq!(op.result, Some(OpResult::Interrupted));
    assert_eq!(op.finished_at, Some(10));
    assert!(op.error.unwrap().contains("interrupted"));
    assert_eq!(op.actions.len(), 1);
    let op = store.operation(done).unwrap().unwrap();
    assert_eq!((op.result, op.finished_at), (Some(OpResult::NoOp), Some(2)));
    // Who asked is kept; Mooring's own operations have nobody.
    assert_eq!(op.requested_by.as_deref(), Some("token ops"));
    let op = store.operation(running).unwrap().unwrap();
    assert_eq!(op.requested_by, None);
}

#[test]
fn operation_notes_are_kept_with_the_operation() {
    let (_dir, path) = db();
    let store = Store::open(&path).unwrap();
    let op = store.begin_operation(&new_op("web", "api", 1)).unwrap();
    assert!(store.operation(op).unwrap().unwrap().notes.is_empty());
    let notes = vec![
        "policy: compose.yaml:6:9: services.web.volumes: /srv/media:/media: a host path outside the repository".to_string(),
        "volume web_old is no longer declared; kept".to_string(),
    ];
    assert!(store.set_operation_notes(op, &notes).unwrap());
    assert!(!store.set_operation_notes(op + 1, &notes).unwrap());
    store
        .finish_operation(op, OpResult::Succeeded, None, 2)
        .unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.operation(op).unwrap().unwrap().notes, notes);
    assert_eq!(
        store.operations(Some("web"), 10, None).unwrap()[0].notes,
        notes
    );
}

#[test]
fn events_stream_ascending_and_list_newest_first() {
    let (_dir, path) = db();
    let store = Store::open(&path).unwrap();
    let mut ids = Vec::new();
    for i in 0..6 {
        let app = if i % 2 == 0 { Some("web") } else { None };
        ids.push(store.add_event(&event(app, &format!("e{i}"), i)).unwrap());
    }
    let latest = store.events(None, None, 3).unwrap();
    assert_eq!(
        latest
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>(),
        ["e5", "e4", "e3"]
    );
    let stream = store.events(None, Some(ids[1]), 3).unwrap();
    assert_eq!(
        stream
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>(),
        ["e2", "e3", "e4"]
    );
    let web = store.events(Some("web"), Some(0), 10).unwrap();
    assert_eq!(
        web.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
        ["e0", "e2", "e4"]
    );
    assert_eq!(web[0].app.as_deref(), Some("web"));
    assert!(store.events(None, Some(ids[5]), 10).unwrap().is_empty());
}

#[test]
fn tokens_authenticate_by_hash_only() {
    let (_dir, path) = db();
    let store = Store::open(&path).unwrap();
    let admin = store.create_token("alice", Role::Admin, 1_000).unwrap();
    let viewer = store.create_token("dash", Role::Viewer, 1_000).unwrap();
    assert!(admin.starts_with(TOKEN_PREFIX));
    assert_eq!(admin.len(), TOKEN_PREFIX.len() + 64);
    assert_ne!(admin, viewer);

    let info = store.authenticate(&admin, 2_000).unwrap().unwrap();
    assert_eq!((info.name.as_str(), info.role), ("alice", Role::Admin));
    assert_eq!(
        store.authenticate(&viewer, 2_000).unwrap().unwrap().role,
        Role::Viewer
    );

    // Wrong tokens: one digit changed, malformed, empty.
    let mut wrong = admin.clone().into_bytes();
    let last = wrong.len() - 1;
    wrong[last] = if wrong[last] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).unwrap();
    assert_eq!(store.authenticate(&wrong, 2_000).unwrap(), None);
    assert_eq!(store.authenticate("mrg_", 2_000).unwrap(), None);
    assert_eq!(store.authenticate("", 2_000).unwrap(), None);
    assert_eq!(
        store
            .authenticate(&admin[TOKEN_PREFIX.len()..], 2_000)
            .unwrap(),
        None
    );

    // last_used_at moves at most once a minute.
    let used = |store: &Store| {
        store
            .tokens()
            .unwrap()
            .into_iter()
            .find(|t| t.id == info.id)
            .unwrap()
            .last_used_at
    };
    assert_eq!(used(&store), Some(2_000));
    store.authenticate(&admin, 30_000).unwrap().unwrap();
    assert_eq!(used(&store), Some(2_000));
    store.authenticate(&admin, 62_000).unwrap().unwrap();
    assert_eq!(used(&store), Some(62_000));

    let listed = store.tokens().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].name, "alice");
    assert_eq!(listed[0].created_at, 1_000);
    assert_eq!(listed[0].prefix, admin[..TOKEN_PREFIX.len() + 8]);
    assert!(listed[1].last_used_at.is_some());

    // The token is nowhere in the files (database, WAL, shared memory), even after a
    // checkpoint; only its display prefix is.
    let secret = &admin[TOKEN_PREFIX.len()..];
    let find = |needle: &str| {
        let mut found = false;
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            if let Ok(bytes) = std::fs::read(&file) {
                found |= bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
            }
        }
        found
    };
    assert!(
        find(&listed[0].prefix),
        "the display prefix should be stored"
    );
    assert!(!find(&admin));
    assert!(!find(&secret[8..]));
    drop(store);
    let store = Store::open(&path).unwrap();
    raw(&path)
        .pragma_update(None, "wal_checkpoint", "TRUNCATE")
        .unwrap();
    assert!(!find(&admin));
    assert!(!find(&secret[8..]));

    // Revoked tokens stop working at once.
    assert!(store.revoke_token(info.id).unwrap());
    assert!(!store.revoke_token(info.id).unwrap());
    assert_eq!(store.authenticate(&admin, 70_000).unwrap(), None);
    assert!(store.authenticate(&viewer, 70_000).unwrap().is_some());
    assert_eq!(store.tokens().unwrap().len(), 1);
}

#[test]
fn prune_keeps_the_newest() {
    let (_dir, path) = db();
    let store = Store::open(&path).unwrap();
    let mut web = Vec::new();
    for i in 0..5 {
        let id = store
            .begin_operation(&new_op("web", "interval", i))
            .unwrap();
        store.record_action(id, &action(0, i)).unwrap();
        store
            .finish_operation(id, OpResult::Succeeded, None, i)
            .unwrap();
        web.push(id);
    }
    let api = store
        .begin_operation(&new_op("api", "interval", 9))
        .unwrap();
    store
        .finish_operation(api, OpResult::Succeeded, None, 9)
        .unwrap();
    // Still running: never pruned.
    let running = store.begin_operation(&new_op("db", "api", 10)).unwrap();
    for i in 0..10 {
        store.add_event(&event(None, &format!("e{i}"), i)).unwrap();
    }

    assert_eq!(store.prune(2, 4).unwrap(), (3, 6));
    let ids: Vec<i64> = store
        .operations(None, 100, None)
        .unwrap()
        .iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(ids, [running, api, web[4], web[3]]);
    let events: Vec<String> = store
        .events(None, None, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(events, ["e9", "e8", "e7", "e6"]);
    // Actions went with their operations.
    let actions: i64 = raw(&path)
        .query_row("SELECT count(*) FROM actions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(actions, 2);

    assert_eq!(store.prune(2, 4).unwrap(), (0, 0));
    assert_eq!(store.prune(0, 0).unwrap(), (3, 4));
    assert_eq!(
        store
            .operations(None, 100, None)
            .unwrap()
            .iter()
            .map(|o| o.id)
            .collect::<Vec<_>>(),
        [running]
    );
    // Ids are not reused after everything was pruned.
    assert!(store.add_event(&event(None, "new", 11)).unwrap() > 10);
}

#[test]
fn concurrent_use_from_threads_and_two_connections() {
    let (_dir, path) = db();
    let shared = Arc::new(Store::open(&path).unwrap());
    // A second connection to the same file (as a CLI next to the daemon would be).
    let other = Arc::new(Store::open(&path).unwrap());
    let threads: Vec<_> = (0..6_u32)
        .map(|t| {
            let store = if t % 2 == 0 {
                Arc::clone(&shared)
            } else {
                Arc::clone(&other)
            };
            std::thread::spawn(move || {
                let app = format!("app{t}");
                for i in 0..25_i64 {
                    store.put_app(&status(&app, i)).unwrap();
                    let id = store.begin_operation(&new_op(&app, "drift", i)).unwrap();
                    for seq in 0..3 {
                        store.record_action(id, &action(seq, i)).unwrap();
                    }
                    store
                        .finish_operation(id, OpResult::Succeeded, None, i)
                        .unwrap();
                    store
                        .add_event(&event(Some(&app), &format!("{i}"), i))
                        .unwrap();
                    store.operations(Some(&app), 5, None).unwrap();
                    if i % 10 == 0 {
                        store.prune(1_000, 1_000).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(shared.apps().unwrap().len(), 6);
    let ops = shared.operations(None, 1_000, None).unwrap();
    assert_eq!(ops.len(), 150);
    assert!(ops.iter().all(|o| o.actions.len() == 3));
    assert!(ops.windows(2).all(|w| w[0].id > w[1].id));
    assert_eq!(other.events(None, Some(0), 1_000).unwrap().len(), 150);
}

#[test]
fn a_held_lock_is_reported_as_busy() {
    let (_dir, path) = db();
    let store = Store::open(&path).unwrap();
    let blocker = raw(&path);
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let err = store.put_app(&status("web", 1)).unwrap_err();
    assert!(err.is_busy(), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("mooring.db") && msg.contains("saving app status"),
        "{msg}"
    );
    blocker.execute_batch("ROLLBACK").unwrap();
    store.put_app(&status("web", 1)).unwrap();
}

#[test]
fn unreadable_values_are_errors() {
    let (_dir, path) = db();
    let store = Store::open(&path).unwrap();
    store.put_app(&status("web", 1)).unwrap();
    raw(&path)
        .execute("UPDATE apps SET conditions = 'not json'", [])
        .unwrap();
    let err = store.app("web").unwrap_err();
    assert!(err.to_string().contains("reading app status"), "{err}");
    let op = store.begin_operation(&new_op("web", "api", 1)).unwrap();
    raw(&path)
        .execute("UPDATE operations SET result = 'exploded'", [])
        .unwrap();
    let err = store.operation(op).unwrap_err();
    assert!(err.to_string().contains("exploded"), "{err}");
}

#[test]
fn deliveries_are_accepted_once_a_day() {
    let (_dir, path) = db();
    let store = Store::open(&path).unwrap();
    let day = mooring_store::DELIVERY_WINDOW_MS;
    assert!(store.remember_delivery("github", "d-1", 1_000).unwrap());
    assert!(!store.remember_delivery("github", "d-1", 2_000).unwrap());
    // Another provider has its own ids.
    assert!(store.remember_delivery("gitlab", "d-1", 2_000).unwrap());
    assert!(store.remember_delivery("github", "d-2", 2_000).unwrap());
    // Still inside the window of the first sighting.
    assert!(!store
        .remember_delivery("github", "d-1", 1_000 + day - 1)
        .unwrap());
    // Past it, the id is new again.
    assert!(store
        .remember_delivery("github", "d-1", 1_000 + day)
        .unwrap());
    assert!(!store
        .remember_delivery("github", "d-1", 1_000 + day + 5)
        .unwrap());

    // Old entries are deleted by a later call.
    store.remember_delivery("github", "d-3", 10 * day).unwrap();
    let left: Vec<String> = raw(&path)
        .prepare("SELECT delivery_id FROM webhook_deliveries ORDER BY delivery_id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(left, ["d-3"]);
    // Survives a restart.
    drop(store);
    let store = Store::open(&path).unwrap();
    assert!(!store
        .remember_delivery("github", "d-3", 10 * day + 1)
        .unwrap());
}

#[test]
fn latest_operations_gives_each_apps_newest() {
    let (_dir, path) = db();
    let store = Store::open(&path).unwrap();
    let a1 = store.begin_operation(&new_op("a", "interval", 1)).unwrap();
    let b1 = store.begin_operation(&new_op("b", "api", 2)).unwrap();
    let a2 = store.begin_operation(&new_op("a", "webhook", 3)).unwrap();
    store.record_action(a2, &action(0, 3)).unwrap();
    store
        .finish_operation(a2, OpResult::Failed, Some("boom"), 4)
        .unwrap();
    let latest = store.latest_operations().unwrap();
    assert_eq!(latest.len(), 2);
    assert_eq!(latest["a"].id, a2);
    assert_eq!(latest["a"].result, Some(OpResult::Failed));
    assert_eq!(latest["a"].error.as_deref(), Some("boom"));
    assert!(latest["a"].actions.is_empty(), "no actions in the summary");
    assert_eq!(latest["b"].id, b1);
    assert_ne!(a1, a2);
}

#[test]
fn another_process_reads_the_daemons_store_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(mooring_store::FILE_NAME);
    assert!(
        Store::open_read_only(&path).is_err(),
        "a missing file is an error"
    );
    assert!(!path.exists(), "and is not created");
    let store = Store::open(&path).unwrap();
    store.put_app(&status("web", 1_000)).unwrap();
    let reader = Store::open_read_only(&path).unwrap();
    assert_eq!(
        reader.app("web").unwrap().unwrap().revision.as_deref(),
        Some("0123abcd")
    );
    assert!(
        reader.put_app(&status("other", 2_000)).is_err(),
        "nothing is written through it"
    );
    assert!(store.app("other").unwrap().is_none());
}

#[test]
fn tokens_expire_and_may_be_limited_to_apps() {
    let (_dir, path) = db();
    let store = Store::open(&path).unwrap();
    let options = TokenOptions {
        expires_at: Some(10_000),
        apps: Some(vec!["blog".into(), "shop".into()]),
    };
    let limited = store
        .create_token_with("ci", Role::Operator, &options, 1_000)
        .unwrap();
    let info = store.authenticate(&limited, 9_999).unwrap().unwrap();
    assert_eq!(info.role, Role::Operator);
    assert_eq!(info.expires_at, Some(10_000));
    assert_eq!(info.apps, options.apps);
    assert_eq!(
        store.authenticate(&limited, 10_000).unwrap(),
        None,
        "expired"
    );
    let listed = &store.tokens().unwrap()[0];
    assert_eq!(
        (listed.expires_at, listed.apps.clone()),
        (Some(10_000), options.apps.clone())
    );
    // An unlimited token says so.
    let plain = store.create_token("all", Role::Viewer, 1_000).unwrap();
    let info = store.authenticate(&plain, 1_000_000).unwrap().unwrap();
    assert_eq!((info.expires_at, info.apps), (None, None));
    // A limit to no app at all is refused, saying why.
    let err = store
        .create_token_with(
            "none",
            Role::Viewer,
            &TokenOptions {
                expires_at: None,
                apps: Some(vec![]),
            },
            1_000,
        )
        .unwrap_err();
    assert!(err.to_string().contains("at least one app"), "{err}");
    assert_eq!(store.tokens().unwrap().len(), 2);
}

#[test]
fn sessions_end_at_log_out_at_expiry_and_with_their_token() {
    let (_dir, path) = db();
    let store = Store::open(&path).unwrap();
    let token = store.create_token("ui", Role::Admin, 1_000).unwrap();
    let id = store.authenticate(&token, 1_000).unwrap().unwrap().id;
    let session = store.create_session(id, 2_000).unwrap();
    assert!(session.starts_with(SESSION_PREFIX));
    assert_eq!(session.len(), SESSION_PREFIX.len() + 64);
    assert!(
        !session.contains(&token[TOKEN_PREFIX.len()..]),
        "not the token"
    );
    assert_eq!(store.session(&session, 3_000).unwrap().unwrap().id, id);
    // The token is no session id, and a session id is no token.
    assert_eq!(store.session(&token, 3_000).unwrap(), None);
    assert_eq!(store.authenticate(&session, 3_000).unwrap(), None);
    // Kept across a restart, until it expires.
    drop(store);
    let store = Store::open(&path).unwrap();
    assert!(store.session(&session, 3_000).unwrap().is_some());
    assert_eq!(
        store
            .session(&session, 2_000 + SESSION_LIFETIME_MS)
            .unwrap(),
        None
    );
    // Log-out ends it.
    let other = store.create_session(id, 4_000).unwrap();
    assert!(store.end_session(&other).unwrap());
    assert!(!store.end_session(&other).unwrap());
    assert_eq!(store.session(&other, 4_001).unwrap(), None);
    assert!(store.session(&session, 4_001).unwrap().is_some());
    // It dies with its token.
    assert!(store.revoke_token(id).unwrap());
    assert_eq!(store.session(&session, 4_002).unwrap(), None);
    let err = store.create_session(id, 4_003).unwrap_err();
    assert!(err.to_string().contains("revoked or expired"), "{err}");
    // A token's expiry bounds its sessions.
    let short = store
        .create_token_with(
            "short",
            Role::Viewer,
            &TokenOptions {
                expires_at: Some(10_000),
                apps: None,
            },
            5_000,
        )
        .unwrap();
    let short_id = store.authenticate(&short, 5_000).unwrap().unwrap().id;
    let s = store.create_session(short_id, 5_000).unwrap();
    assert!(store.session(&s, 9_999).unwrap().is_some());
    assert_eq!(store.session(&s, 10_000).unwrap(), None);
    // Nothing secret is in the files: neither the session id nor the token.
    for suffix in ["", "-wal"] {
        let bytes = std::fs::read(format!("{}{suffix}", path.display())).unwrap_or_default();
        for secret in [&session[SESSION_PREFIX.len()..], &s[SESSION_PREFIX.len()..]] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
        }
    }
}
