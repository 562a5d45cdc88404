//! The stack's pure parts (specs, plans) on projects loaded as a user writes them.

use super::*;
use mooring_core::Plan;

/// Each planned action, as the plan prints it.
fn actions(p: &Plan) -> Vec<String> {
    p.actions.iter().map(|a| a.action.to_string()).collect()
}

/// Each planned action with its reason.
fn with_reasons(p: &Plan) -> Vec<String> {
    p.actions
        .iter()
        .map(|a| format!("{} — {}", a.action, a.reason))
        .collect()
}

fn project(compose: &str) -> Project {
    load(compose, true).unwrap()
}

fn opts(prune: bool) -> ReconcileOptions {
    ReconcileOptions {
        prune,
        ..ReconcileOptions::default()
    }
}

fn load(compose: &str, swarm: bool) -> Result<Project, mooring_compose::LoadError> {
    load_with(compose, &[], swarm)
}

/// `compose` beside `files` (path, content).
fn load_with(
    compose: &str,
    files: &[(&str, &str)],
    swarm: bool,
) -> Result<Project, mooring_compose::LoadError> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("compose.yaml"), compose).unwrap();
    for (path, content) in files {
        std::fs::write(dir.path().join(path), content).unwrap();
    }
    mooring_compose::load(&mooring_compose::LoadOptions {
        project_dir: dir.path().to_path_buf(),
        snapshot_root: dir.path().to_path_buf(),
        project_name: Some("shop".into()),
        swarm,
        ..Default::default()
    })
}

#[test]
fn a_global_service_runs_on_every_node_of_a_swarm_only() {
    let compose = "services:\n  agent:\n    image: x\n    deploy: { mode: global, placement: { constraints: [\"node.role == worker\"] } }\n";
    let p = load(compose, true).unwrap();
    let s = spec(&p, &p.services["agent"]);
    assert_eq!(s["Mode"], json!({"Global": {}}));
    assert!(
        p.notes.iter().all(|n| !n.contains("ignored")),
        "{:?}",
        p.notes
    );
    // On a single Engine Compose refuses it, as before.
    let e = load(compose, false).unwrap_err().to_string();
    assert!(e.contains("\"global\" needs Docker Swarm"), "{e}");
}

#[test]
fn an_image_runs_pinned_to_its_registrys_digest_and_a_moved_tag_rolls_out() {
    // (Labels of the file cannot take the stack's own.)
    let p = project("services:\n  web:\n    image: reg:5000/web:1\n    deploy: { labels: { com.docker.stack.namespace: other, com.docker.stack.image: x } }\n");
    let resolved = |r: Result<&str, &str>| {
        crate::pin::Resolved::from([(
            "reg:5000/web:1".to_string(),
            r.map(|d| crate::pin::Pin {
                digest: d.into(),
                platforms: vec![json!({"Architecture": "amd64", "OS": "linux"})],
            })
            .map_err(str::to_string),
        )])
    };
    let mut live = LiveStack {
        networks: vec!["shop_default".into()],
        images: resolved(Ok("sha256:one")),
        ..LiveStack::default()
    };
    let (running, why) = desired(&p, &p.services["web"], &live);
    assert_eq!(why, None);
    assert_eq!(
        running["TaskTemplate"]["ContainerSpec"]["Image"],
        "reg:5000/web:1@sha256:one"
    );
    assert_eq!(running["Labels"][IMAGE_LABEL], "reg:5000/web:1");
    assert_eq!(running["Labels"][NAMESPACE], "shop");
    live.services
        .insert("shop_web".into(), ("id1".into(), 3, running.clone()));
    assert!(plan(&p, &live, &opts(true)).actions.is_empty());
    // The tag moved in the registry: a rolling update, saying so.
    live.images = resolved(Ok("sha256:two"));
    let moved = plan(&p, &live, &opts(true));
    assert_eq!(moved.actions.len(), 1, "{moved:?}");
    assert!(
        moved.actions[0].reason.contains(
            "TaskTemplate.ContainerSpec.Image: \"reg:5000/web:1@sha256:one\" → \"reg:5000/web:1@sha256:two\""
        ),
        "{moved:?}"
    );
    // The registry does not answer: the digest running is kept, and noted.
    live.images = resolved(Err("connection refused"));
    let down = plan(&p, &live, &opts(true));
    assert!(down.actions.is_empty(), "{down:?}");
    assert!(
        down.notes
            .iter()
            .any(|n| n.starts_with("image reg:5000/web:1: ")
                && n.contains("connection refused")
                && n.contains("kept")),
        "{:?}",
        down.notes
    );
}

#[test]
fn a_service_spec_is_what_stack_deploy_sends_and_swarm_s_own_fields_are_no_drift() {
    let p = project(
        "services:\n  web:\n    image: nginx:1\n    command: [nginx, -g, daemon off;]\n    environment: { TOKEN: s3cret }\n    ports: [\"8080:80\"]\n    deploy:\n      replicas: 2\n      labels: { tier: front }\n      update_config: { parallelism: 1, delay: 10s, order: start-first, failure_action: rollback }\n      restart_policy: { condition: on-failure, max_attempts: 3 }\n      placement: { constraints: [\"node.role == worker\"], max_replicas_per_node: 1 }\n      resources: { limits: { cpus: \"0.5\", memory: 64M } }\n",
    );
    let svc = &p.services["web"];
    let s = spec(&p, svc);
    assert_eq!(s["Name"], "shop_web");
    assert_eq!(s["Labels"][NAMESPACE], "shop");
    assert_eq!(s["Labels"]["tier"], "front");
    assert_eq!(s["Labels"][IMAGE_LABEL], "nginx:1");
    assert_eq!(s["Mode"]["Replicated"]["Replicas"], 2);
    assert_eq!(
        s["TaskTemplate"]["ContainerSpec"]["Args"],
        json!(["nginx", "-g", "daemon off;"])
    );
    assert_eq!(s["TaskTemplate"]["Networks"][0]["Target"], "shop_default");
    assert_eq!(
        s["UpdateConfig"],
        json!({"Parallelism": 1, "Delay": 10_000_000_000u64, "FailureAction": "rollback", "Order": "start-first"})
    );
    assert_eq!(s["TaskTemplate"]["Placement"]["MaxReplicas"], 1);
    assert_eq!(
        s["TaskTemplate"]["Resources"]["Limits"],
        json!({"NanoCPUs": 500_000_000, "MemoryBytes": 67_108_864})
    );
    assert_eq!(
        s["EndpointSpec"]["Ports"][0],
        json!({"Protocol": "tcp", "TargetPort": 80, "PublishMode": "ingress", "PublishedPort": 8080})
    );
    // The API takes it.
    let _: bollard::models::ServiceSpec = serde_json::from_value(s.clone()).unwrap();

    // Live as Swarm keeps it: fields of its own added, nothing of ours changed.
    let mut have = s.clone();
    have["TaskTemplate"]["ContainerSpec"]["Isolation"] = json!("default");
    have["TaskTemplate"]["ForceUpdate"] = json!(0);
    have["EndpointSpec"]["Ports"][0]["Name"] = json!("");
    let live = LiveStack {
        services: BTreeMap::from([("shop_web".to_string(), ("id1".to_string(), 7, have.clone()))]),
        networks: vec!["shop_default".into()],
        ..LiveStack::default()
    };
    assert!(
        plan(&p, &live, &opts(true)).actions.is_empty(),
        "{:?}",
        plan(&p, &live, &opts(true))
    );

    // Scaled by hand, and its environment changed: named, the value never shown.
    have["Mode"]["Replicated"]["Replicas"] = json!(5);
    have["TaskTemplate"]["ContainerSpec"]["Env"] = json!(["TOKEN=other"]);
    let live = LiveStack {
        services: BTreeMap::from([
            ("shop_web".to_string(), ("id1".to_string(), 7, have)),
            ("shop_old".to_string(), ("id2".to_string(), 1, json!({}))),
        ]),
        networks: vec![],
        ..LiveStack::default()
    };
    let planned = plan(&p, &live, &opts(true));
    let text = with_reasons(&planned);
    assert_eq!(
        text,
        [
            "create network shop_default — network does not exist",
            "update service shop_web — TaskTemplate.ContainerSpec.Env changed, Mode.Replicated.Replicas: 5 → 2",
            "remove service shop_old — the stack no longer declares it",
        ]
    );
    assert!(!format!("{planned:?}").contains("s3cret"));
    // What a stack does not deploy yet is refused, not dropped.
    assert_eq!(not_yet_on_swarm(&p), None);
    let v = project("services:\n  db:\n    image: x\n    volumes: [\"/srv:/d\"]\n");
    assert_eq!(
        not_yet_on_swarm(&v).unwrap(),
        "not deployed to a Swarm yet: service db: bind mounts (a host path is each node's own); deploy the app to an engine host, or leave these out for its Swarm host"
    );
    // A named volume is made on each node by Swarm, labelled with the stack.
    let v = project("services:\n  db:\n    image: x\n    volumes: [\"data:/d:ro\", \"/cache\"]\n    tmpfs: [/run]\nvolumes:\n  data: { labels: { keep: \"yes\" } }\n");
    assert_eq!(not_yet_on_swarm(&v), None);
    assert_eq!(
        spec(&v, &v.services["db"])["TaskTemplate"]["ContainerSpec"]["Mounts"],
        json!([
            {"Type": "volume", "Source": "shop_data", "Target": "/d", "ReadOnly": true, "VolumeOptions": {"Labels": {"keep": "yes", NAMESPACE: "shop"}}},
            // Mooring names an anonymous volume (as on an Engine): one per node.
            {"Type": "volume", "Source": "shop_db_anon_4f7cfe6fcd42", "Target": "/cache", "VolumeOptions": {"Labels": {NAMESPACE: "shop"}}},
            {"Type": "tmpfs", "Target": "/run"}
        ])
    );
    assert_eq!(
        plan(&p, &live, &opts(false)).orphans_kept,
        ["service shop_old"]
    );

    // A setting the repository stops setting: the spec's fingerprint moved, so the
    // service is updated though every field it still sets is as it was.
    let old = project("services:\n  web:\n    image: nginx:1\n    command: [a]\n    volumes: [\"data:/d\"]\n    tmpfs: [/run]\nvolumes:\n  data: {}\n");
    let new = project("services:\n  web:\n    image: nginx:1\n    volumes: [\"data:/d\"]\n    tmpfs: [/run]\nvolumes:\n  data: {}\n");
    let live = LiveStack {
        services: BTreeMap::from([(
            "shop_web".to_string(),
            ("id1".to_string(), 3, spec(&old, &old.services["web"])),
        )]),
        networks: vec!["shop_default".into()],
        ..LiveStack::default()
    };
    let planned = plan(&new, &live, &opts(true));
    assert_eq!(planned.actions.len(), 1, "{planned:?}");
    assert_eq!(
        planned.actions[0].reason,
        "a setting the repository no longer sets is removed"
    );
    // Mounts of several kinds compare item by item: no drift.
    assert!(plan(&old, &live, &opts(true)).actions.is_empty());
}

#[test]
fn secrets_and_configs_are_swarm_objects_named_after_their_content() {
    let compose = "services:\n  web:\n    image: x\n    secrets: [db, { source: token, target: /etc/token, uid: \"100\", mode: 0400 }]\n    configs: [site]\nsecrets:\n  db: { file: ./db.txt, labels: { team: a } }\n  token: { external: true, name: prod_token }\nconfigs:\n  site: { content: \"listen 80\" }\n";
    let p = load_with(compose, &[("db.txt", "hunter2")], true).unwrap();
    let db = format!(
        "shop_db_{}",
        &mooring_core::hash::sha256_hex(b"hunter2")[..12]
    );
    let site = format!(
        "shop_site_{}",
        &mooring_core::hash::sha256_hex(b"listen 80")[..12]
    );
    let s = spec(&p, &p.services["web"]);
    assert_eq!(
        s["TaskTemplate"]["ContainerSpec"]["Secrets"],
        json!([
            {"File": {"Name": "db", "UID": "0", "GID": "0", "Mode": 0o444}, "SecretName": db},
            {"File": {"Name": "/etc/token", "UID": "100", "GID": "0", "Mode": 0o400}, "SecretName": "prod_token"},
        ])
    );
    assert_eq!(
        s["TaskTemplate"]["ContainerSpec"]["Configs"],
        json!([{"File": {"Name": "/site", "UID": "0", "GID": "0", "Mode": 0o444}, "ConfigName": site}])
    );
    assert!(!s.to_string().contains("hunter2"));
    assert!(!format!("{p:?}").contains("hunter2"));
    assert_eq!(not_yet_on_swarm(&p), None);

    // Nothing there yet: the two made before the service; the external one is not
    // Mooring's to make, and the service cannot be sent without it.
    let planned = plan(&p, &LiveStack::default(), &opts(true));
    let text = actions(&planned);
    assert_eq!(
        text,
        [
            "create network shop_default".to_string(),
            format!("create secret {db}"),
            format!("create config {site}"),
            "create service shop_web".to_string(),
        ]
    );
    let file = |id: &str, stack: bool, by_mooring: bool| LiveFile {
        id: id.into(),
        stack,
        by_mooring,
    };
    let mut files = BTreeMap::from([
        ((FileKind::Secret, db.clone()), file("s1", true, true)),
        ((FileKind::Config, site.clone()), file("c1", true, true)),
    ]);
    let e = with_file_ids(s.clone(), &files).unwrap_err();
    assert!(e.contains("the Swarm has no secret prod_token"), "{e}");
    files.insert(
        (FileKind::Secret, "prod_token".into()),
        file("s2", false, false),
    );
    let sent = with_file_ids(s.clone(), &files).unwrap();
    assert_eq!(
        sent["TaskTemplate"]["ContainerSpec"]["Secrets"][1]["SecretID"],
        "s2"
    );
    assert_eq!(
        sent["TaskTemplate"]["ContainerSpec"]["Configs"][0]["ConfigID"],
        "c1"
    );

    // Running as sent (ids and all): no drift.
    let live = LiveStack {
        services: BTreeMap::from([("shop_web".to_string(), ("id1".to_string(), 2, sent))]),
        networks: vec!["shop_default".into()],
        files: files.clone(),
        ..LiveStack::default()
    };
    assert!(plan(&p, &live, &opts(false)).actions.is_empty());

    // New content: a new secret, the service moved onto it, the old one removed
    // (Mooring's, even without prune); a hand-made one of the stack is kept.
    let q = load_with(compose, &[("db.txt", "hunter3")], true).unwrap();
    let db3 = format!(
        "shop_db_{}",
        &mooring_core::hash::sha256_hex(b"hunter3")[..12]
    );
    let mut live = live;
    live.files.insert(
        (FileKind::Secret, "shop_manual".into()),
        file("s9", true, false),
    );
    let planned = plan(&q, &live, &opts(false));
    let text = with_reasons(&planned);
    assert_eq!(
        text,
        [
            format!("create secret {db3} — no secret holds this content yet"),
            "update service shop_web — TaskTemplate.ContainerSpec.Secrets changed".to_string(),
            format!("remove secret {db} — no service of the stack uses it any more"),
        ]
    );
    assert_eq!(planned.orphans_kept, ["secret shop_manual"]);
    assert!(!format!("{planned:?}").contains("hunter"));
}

#[test]
fn a_swarm_file_comes_from_the_repository_and_fits_in_swarm() {
    let absolute = "services:\n  web:\n    image: x\n    secrets: [db]\nsecrets:\n  db: { file: /etc/hostname }\n";
    let e = load(absolute, true).unwrap_err().to_string();
    assert!(e.contains("compose.yaml:6:15: secrets.db.file: the file /etc/hostname is outside the repository; on a Swarm"), "{e}");
    let big = "x".repeat(600 << 10);
    let e = load_with(
        "services:\n  web:\n    image: x\n    secrets: [db]\nsecrets:\n  db: { file: ./big }\n",
        &[("big", &big)],
        true,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("secrets.db holds 614400 bytes; Swarm takes at most 500 KiB"),
        "{e}"
    );
    // External ones and labels are a Swarm's; on an Engine, refused as before.
    let external =
        "services:\n  web:\n    image: x\n    secrets: [db]\nsecrets:\n  db: { external: true }\n";
    let e = load(external, false).unwrap_err().to_string();
    assert!(
        e.contains("external secrets exist in a Docker Swarm only"),
        "{e}"
    );
    let p = load(external, true).unwrap();
    assert_eq!(p.services["web"].swarm_files[0].name, "db");
    assert!(p.services["web"].swarm_files[0].content.is_none());
    let e = load(
        "services:\n  web:\n    image: x\nsecrets:\n  db: { external: true, file: ./x }\n",
        true,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("an external one has no `file`"), "{e}");
}

#[test]
fn container_settings_a_service_takes_are_passed_and_the_others_noted() {
    let p = project("services:\n  web:\n    image: x\n    read_only: true\n    stop_signal: SIGINT\n    tty: true\n    stdin_open: true\n    extra_hosts: [\"db:10.0.0.5\", \"v6:::1\"]\n    group_add: [\"100\"]\n    sysctls: { net.core.somaxconn: \"1024\" }\n    ulimits: { nofile: { soft: 1024, hard: 2048 }, nproc: 512 }\n    dns: [1.1.1.1]\n    dns_search: [example.org]\n    logging: { driver: json-file, options: { max-size: 1m } }\n    shm_size: 64m\n    expose: [\"80\"]\n    restart: always\n");
    let s = spec(&p, &p.services["web"]);
    let c = &s["TaskTemplate"]["ContainerSpec"];
    assert_eq!(c["ReadOnly"], true);
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(
        (c["TTY"].clone(), c["OpenStdin"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(c["Hosts"], json!(["10.0.0.5 db", "::1 v6"]));
    assert_eq!(c["Groups"], json!(["100"]));
    assert_eq!(c["Sysctls"], json!({"net.core.somaxconn": "1024"}));
    assert_eq!(
        c["Ulimits"],
        json!([{"Name": "nofile", "Soft": 1024, "Hard": 2048}, {"Name": "nproc", "Soft": 512, "Hard": 512}])
    );
    assert_eq!(
        c["DNSConfig"],
        json!({"Nameservers": ["1.1.1.1"], "Search": ["example.org"]})
    );
    assert_eq!(
        s["TaskTemplate"]["LogDriver"],
        json!({"Name": "json-file", "Options": {"max-size": "1m"}})
    );
    // The API takes it.
    let _: bollard::models::ServiceSpec = serde_json::from_value(s.clone()).unwrap();
    assert_eq!(not_yet_on_swarm(&p), None);
    // What a service has no place for is noted in every plan, as stack deploy warns.
    let planned = plan(&p, &LiveStack::default(), &opts(false));
    assert!(
        planned.notes.contains(&"service web: expose, shm_size, restart (deploy.restart_policy applies) ignored on a Swarm (a Swarm service has no place for it; docker stack deploy ignores it too)".to_string()),
        "{:?}",
        planned.notes
    );
    let plain = project("services:\n  web:\n    image: x\n");
    assert!(plan(&plain, &LiveStack::default(), &opts(false))
        .notes
        .is_empty());
}

#[test]
fn backup_on_change_backs_a_volume_up_on_each_node_before_its_writer_changes() {
    let old = project("services:\n  db:\n    image: x:1\n    volumes: [\"data:/d\"]\n  ro:\n    image: x:1\n    volumes: [\"data:/d:ro\"]\nvolumes:\n  data: {}\n");
    let new = project("services:\n  db:\n    image: x:2\n    volumes: [\"data:/d\"]\n  ro:\n    image: x:2\n    volumes: [\"data:/d:ro\"]\nvolumes:\n  data: {}\n");
    let live = LiveStack {
        services: ["db", "ro"]
            .iter()
            .map(|s| {
                let name = format!("shop_{s}");
                (name, ("id".to_string(), 1, spec(&old, &old.services[*s])))
            })
            .collect(),
        networks: vec!["shop_default".into()],
        node_volumes: BTreeMap::from([
            ("n1".to_string(), Ok(vec!["shop_data".to_string()])),
            ("n2".to_string(), Ok(vec![])),
            (
                "n3".to_string(),
                Err("node n3 cannot be reached: refused".to_string()),
            ),
        ]),
        ..LiveStack::default()
    };
    let on_change = ReconcileOptions {
        backup_on_change: true,
        ..opts(false)
    };
    let planned = plan(&new, &live, &on_change);
    let text = actions(&planned);
    assert_eq!(
        text,
        [
            "back up volume shop_data@n1",
            "update service shop_db",
            "update service shop_ro"
        ]
    );
    assert!(
        planned.actions[0]
            .reason
            .starts_with("backup: on-change — service db changes"),
        "{:?}",
        planned.actions[0]
    );
    assert!(
        planned.notes.contains(&"volume shop_data on node n3 is not backed up before this update: node n3 cannot be reached: refused".to_string()),
        "{:?}",
        planned.notes
    );
    // Without the policy, or with nothing changing, no backup.
    assert!(plan(&new, &live, &opts(false))
        .actions
        .iter()
        .all(|a| !matches!(a.action, Action::BackupVolume { .. })));
    assert!(plan(&old, &live, &on_change).actions.is_empty());
}

#[test]
fn a_volume_no_longer_declared_follows_the_data_policy_on_each_node() {
    let new = project("services:\n  web:\n    image: x:1\n");
    let live = LiveStack {
        services: BTreeMap::from([(
            "shop_web".to_string(),
            ("id".to_string(), 1, spec(&new, &new.services["web"])),
        )]),
        networks: vec!["shop_default".into()],
        node_volumes: BTreeMap::from([
            (
                "n1".to_string(),
                Ok(vec!["shop_data".to_string(), "shop_keep".to_string()]),
            ),
            ("n2".to_string(), Ok(vec![])),
            (
                "n3".to_string(),
                Err("node n3 cannot be reached: refused".to_string()),
            ),
        ]),
        // Created with `x-mooring: { data: protect }`: its own policy wins.
        volume_policies: BTreeMap::from([("shop_keep".to_string(), DataPolicy::Protect)]),
        ..LiveStack::default()
    };
    let policy = |volume_policy, prune| ReconcileOptions {
        volume_policy,
        ..opts(prune)
    };
    let text = actions;
    // backup-then-delete with prune: backed up there, then removed there.
    let deleted = plan(&new, &live, &policy(DataPolicy::BackupThenDelete, true));
    assert_eq!(
        text(&deleted),
        ["back up volume shop_data@n1", "remove volume shop_data@n1"]
    );
    assert!(deleted
        .notes
        .iter()
        .any(|n| n.contains("volumes on node n3 not checked")));
    assert!(
        deleted
            .notes
            .iter()
            .any(|n| n
                .starts_with("volume shop_keep on node n1 is no longer declared; kept (protected")),
        "{:?}",
        deleted.notes
    );
    // Without prune, or protected: kept, and the plan says so.
    for (p, kept) in [
        (
            policy(DataPolicy::BackupThenDelete, false),
            "removes it only with prune",
        ),
        (policy(DataPolicy::Protect, true), "kept (protected"),
    ] {
        let planned = plan(&new, &live, &p);
        assert!(planned.actions.is_empty(), "{:?}", planned.actions);
        assert!(
            planned.notes.iter().any(|n| n
                .starts_with("volume shop_data on node n1 is no longer declared")
                && n.contains(kept)),
            "{:?}",
            planned.notes
        );
    }
}
