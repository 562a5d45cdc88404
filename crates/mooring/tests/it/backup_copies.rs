//! Off-host copies (`backup_targets`, `data.copy_to`): the daemon, a Git repository,
//! the machine's Docker and a real volume; the target is another folder (as a mounted
//! share is). Each new backup is copied there in the background and read back, the
//! target's retention applies, a backup whose local copy is gone is restored from the
//! target, and a target that cannot be written is reported, then recovers.

use crate::common::daemon::{wait_until, Server};
use crate::common::*;
use serde_json::json;

/// Deletes backup `id`'s local files, breaks the rows, and restores `id`: brought back
/// from a target, the rows are good again and the local copy is there once more.
fn restore_without_local_copy(s: &Server, app: &TestApp, local: &std::path::Path, id: &str) {
    for suffix in [".tar.zst", ".manifest.json"] {
        std::fs::remove_file(local.join(format!("{id}{suffix}"))).unwrap();
    }
    let db = app.container("db");
    docker(&["exec", &db, "sh", "-c", "echo broken > /data/rows"]);
    let (code, v) = s.call(
        "POST",
        &format!("/api/v1/apps/{}/backups/{id}/restore", app.name),
        Some(&s.admin),
        Some(json!({ "force": true })),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(docker(&["exec", &db, "cat", "/data/rows"]), "good rows");
    assert!(local.join(format!("{id}.manifest.json")).exists());
}

/// Service db keeping `good rows` in volume `data`.
fn rows_app(app: &str) -> String {
    format!("name: {app}\nservices:\n  db:\n    image: {IMAGE}\n    init: true\n    command: [\"sh\", \"-c\", \"[ -f /data/rows ] || echo good rows > /data/rows; exec sleep 3600\"]\n    volumes: [\"data:/data\"]\nvolumes:\n  data: {{}}\n")
}

#[test]
fn backups_are_copied_off_the_host_and_restored_from_there() {
    let app = TestApp::new("copies");
    let repo = Repo::new("copies");
    repo.write("compose.yaml", &rows_app(&app.name));
    let one = repo.commit("one");
    let dir = tempfile::tempdir().unwrap();
    let nas = dir.path().join("nas");
    // The share, mounted (a folder that does not exist is refused: an unmounted share).
    std::fs::create_dir(&nas).unwrap();
    let s = Server::start(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\nbackup_targets:\n  nas: {{ folder: ./nas, retention: {{ keep: 2 }} }}\napps:\n  - name: {}\n    source: {{ git: {}, ref: main }}\n    sync: {{ interval: 1h }}\n    data: {{ copy_to: [nas] }}\n",
            app.name,
            repo.file_url()
        ),
    );
    wait_until(60, "one deployed", || {
        s.app(&app.name)["revision"] == one.as_str()
    });
    let volume = format!("{}_data", app.name);
    let back_up = || {
        let (code, v) = s.call(
            "POST",
            &format!("/api/v1/apps/{}/backups", app.name),
            Some(&s.admin),
            Some(json!({ "volume": volume })),
        );
        assert_eq!(code, 200, "{v}");
        v["backups"][0]["id"].as_str().unwrap().to_string()
    };
    let on_nas = || -> Vec<String> {
        let list = s.get(&format!("/api/v1/apps/{}/backups", app.name));
        assert_eq!(list["copies"][0]["target"], "nas", "{list}");
        let mut ids: Vec<String> = list["copies"][0]["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    let first = back_up();
    wait_until(30, "the backup copied to nas", || on_nas().contains(&first));
    // The copy is the backup, byte for byte.
    let local = dir.path().join("state/backups");
    for suffix in [".tar.zst", ".manifest.json"] {
        assert_eq!(
            std::fs::read(local.join(format!("{first}{suffix}"))).unwrap(),
            // Each app has its folder there.
            std::fs::read(nas.join(&app.name).join(format!("{first}{suffix}"))).unwrap(),
        );
    }
    // keep: 2 on the target: the third backup's copy removes the first's.
    let second = back_up();
    let third = back_up();
    wait_until(30, "the target's retention applied", || {
        on_nas() == sorted(vec![third.clone(), second.clone()])
    });
    let (_, metrics) = s.call("GET", "/metrics", Some(&s.admin), None);
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    let copied = metrics
        .lines()
        .find(|l| l.starts_with("mooring_backup_copies_total") && l.contains("copied"));
    assert_eq!(
        copied,
        Some(
            format!(
                "mooring_backup_copies_total{{app=\"{}\",target=\"nas\",result=\"copied\"}} 3",
                app.name
            )
            .as_str()
        ),
        "{metrics}"
    );

    // The disk with the local backups died: the restore brings the backup back from nas.
    restore_without_local_copy(&s, &app, &local, &third);

    // The target cannot be written (the share is gone, a file in its place): reported,
    // and the backup itself succeeds.
    std::fs::rename(&nas, dir.path().join("nas-away")).unwrap();
    std::fs::write(&nas, "not a folder").unwrap();
    let fourth = back_up();
    wait_until(30, "the failed copy reported", || {
        s.app(&app.name)["conditions"]
            .to_string()
            .contains("backups cannot be copied to nas: folder")
            && s.app(&app.name)["conditions"]
                .to_string()
                .contains("does not exist (is the share mounted?)")
    });
    let events = s
        .get(&format!("/api/v1/events?app={}", app.name))
        .to_string();
    assert!(events.contains("backup_copy_failed"), "{events}");
    // Back again: the missed backup is copied after the next operation.
    std::fs::remove_file(&nas).unwrap();
    std::fs::rename(dir.path().join("nas-away"), &nas).unwrap();
    let fifth = back_up();
    wait_until(30, "copies again", || {
        on_nas() == sorted(vec![fifth.clone(), fourth.clone()])
    });
    wait_until(30, "the condition cleared", || {
        !s.app(&app.name)["conditions"]
            .to_string()
            .contains("BackupCopyFailed")
    });
    let events = s
        .get(&format!("/api/v1/events?app={}", app.name))
        .to_string();
    assert!(events.contains("backup_copied"), "{events}");
}

#[test]
fn backups_are_copied_to_an_sftp_server_and_restored_from_there() {
    // A real sshd on loopback that serves SFTP (and checks the client's key).
    let server = mooring_testkit::ssh::SshServer::start_at(
        None,
        "127.0.0.1",
        "Subsystem sftp internal-sftp",
    );
    let app = TestApp::new("sftp");
    let repo = Repo::new("sftp");
    repo.write("compose.yaml", &rows_app(&app.name));
    let one = repo.commit("one");
    let dir = tempfile::tempdir().unwrap();
    // The server's folder (this machine's, as sshd sees it).
    let remote = dir.path().join("offsite");
    std::fs::create_dir(&remote).unwrap();
    let config_with_key = |server: &mooring_testkit::ssh::SshServer,
                           known_hosts: &std::path::Path,
                           key: &str| {
        format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\nbackup_targets:\n  offsite:\n    sftp: \"{}@127.0.0.1:{}\"\n    port: {}\n    ssh_key: {key}\n    known_hosts: {}\n    retention: {{ keep: 1 }}\napps:\n  - name: {}\n    source: {{ git: {}, ref: main }}\n    sync: {{ interval: 1h }}\n    data: {{ copy_to: [offsite] }}\n",
            server.user,
            remote.display(),
            server.port,
            known_hosts.display(),
            app.name,
            repo.file_url()
        )
    };
    let key_file = format!("file:{}", server.client_key.private.display());
    let config = |server: &mooring_testkit::ssh::SshServer, known_hosts: &std::path::Path| {
        config_with_key(server, known_hosts, &key_file)
    };
    // This account has a shell: each copy is hashed on the server.
    let s = Server::start(dir.path(), &config(&server, &server.known_hosts));
    wait_until(60, "one deployed", || {
        s.app(&app.name)["revision"] == one.as_str()
    });
    let back_up = |s: &Server| {
        let (code, v) = s.call(
            "POST",
            &format!("/api/v1/apps/{}/backups", app.name),
            Some(&s.admin),
            Some(json!({ "volume": format!("{}_data", app.name) })),
        );
        assert_eq!(code, 200, "{v}");
        v["backups"][0]["id"].as_str().unwrap().to_string()
    };
    let offsite =
        |s: &Server| s.get(&format!("/api/v1/apps/{}/backups", app.name))["copies"][0].clone();
    let first = back_up(&s);
    wait_until(30, "the backup on the SFTP server", || {
        offsite(&s)["ids"] == json!([first])
    });
    let local = dir.path().join("state/backups");
    for suffix in [".tar.zst", ".manifest.json"] {
        assert_eq!(
            std::fs::read(local.join(format!("{first}{suffix}"))).unwrap(),
            std::fs::read(remote.join(&app.name).join(format!("{first}{suffix}"))).unwrap(),
        );
    }
    // keep: 1 there: the next backup's copy replaces it.
    let second = back_up(&s);
    wait_until(30, "the retention applied on the server", || {
        offsite(&s)["ids"] == json!([second])
    });
    let left: Vec<String> = std::fs::read_dir(remote.join(&app.name))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left.len(),
        2,
        "the archive and its manifest, nothing partial: {left:?}"
    );

    // The local copy gone: restored from the server.
    restore_without_local_copy(&s, &app, &local, &second);

    assert!(
        s.logs().contains("checked=\"hashed on the target\""),
        "{}",
        s.logs()
    );
    // An SFTP-only account (no shell, no commands): each copy is read back instead.
    // Its key is given as a secret this time, in an environment variable.
    drop(s);
    let sftp_only = mooring_testkit::ssh::SshServer::start_at(
        None,
        "127.0.0.1",
        "Subsystem sftp internal-sftp\nForceCommand internal-sftp",
    );
    let key = std::fs::read_to_string(&sftp_only.client_key.private).unwrap();
    let s = Server::start_with_env(
        dir.path(),
        &config_with_key(&sftp_only, &sftp_only.known_hosts, "env:OFFSITE_KEY"),
        &[("OFFSITE_KEY", &key)],
    );
    let third = back_up(&s);
    wait_until(30, "the backup read back from an SFTP-only account", || {
        offsite(&s)["ids"] == json!([third])
    });
    assert_eq!(
        std::fs::read(local.join(format!("{third}.tar.zst"))).unwrap(),
        std::fs::read(remote.join(&app.name).join(format!("{third}.tar.zst"))).unwrap(),
    );
    assert!(
        s.logs().contains("checked=\"read back from the target\""),
        "{}",
        s.logs()
    );
    // The commands of a copy share one ssh connection, closed when the copy ends: no
    // ssh of Mooring's stays behind, nor the private folder of its socket and the key
    // (those of the daemon killed above are swept by this one).
    // (Within 4 s: left alone, they would close themselves only after 5 s.)
    wait_until(4, "Mooring's shared ssh connections closed", || {
        shared_ssh_connections().is_empty()
    });

    // A server whose host key is not the one known (a man in the middle): refused,
    // reported, and the backup itself succeeds.
    drop(s);
    let s = Server::start(dir.path(), &config(&server, &server.wrong_known_hosts()));
    let (code, v) = s.call(
        "POST",
        &format!("/api/v1/apps/{}/backups", app.name),
        Some(&s.admin),
        Some(json!({ "volume": format!("{}_data", app.name) })),
    );
    assert_eq!(code, 200, "{v}");
    wait_until(30, "the refused copy reported", || {
        let c = s.app(&app.name)["conditions"].to_string();
        c.contains("backups cannot be copied to offsite")
            && c.contains("Host key verification failed")
            && !c.contains("@@@")
    });
}

/// The command lines of running processes that use a socket in a `mooring-ssh-` folder
/// (an SFTP target's shared connection), and such folders left in the temporary folder.
fn shared_ssh_connections() -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        // (A master left running names itself `ssh: /tmp/mooring-ssh-…/link [mux]`.)
        .filter(|c| {
            c.contains("mooring-ssh-") && (c.contains("ControlPath=") || c.contains("[mux]"))
        })
        .collect();
    // (Only folders holding a connection's socket or a key: other tests' ssh commands
    // have folders of their own there.)
    found.extend(
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("mooring-ssh-"))
            .filter(|e| e.path().join("link").exists() || e.path().join("key").exists())
            .map(|e| e.path().display().to_string()),
    );
    found
}
