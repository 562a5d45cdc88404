//! Docker Swarm: a real Swarm of a manager and two workers (`mooring_testkit::swarm`:
//! engines in network namespaces joined by a switch), the daemon deploying an app to
//! its manager as a stack (`hosts.NAME.mode: swarm`).

use crate::common::daemon::{wait_until, Server};
use crate::common::*;
use mooring_testkit::docker::Registry;
use mooring_testkit::swarm::Swarm;

/// Waits for `ready`; on time out, fails with the app's status, its last operations and
/// the stack's tasks.
fn wait_or_tell(
    s: &Server,
    app: &str,
    m: &mooring_testkit::engine::RemoteEngine,
    secs: u64,
    what: &str,
    mut ready: impl FnMut() -> bool,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}: {}\n{}\n{}",
            s.app(app),
            s.get(&format!("/api/v1/apps/{app}/operations?limit=3")),
            m.docker(&["service", "ps", &format!("{app}_web"), "--no-trunc"])
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// The web service alone, its health check failing when `broken`; an update that
/// fails is rolled back by Swarm.
fn checked(app: &str, greeting: &str, broken: bool) -> String {
    let check = if broken {
        "[\"CMD\", \"false\"]"
    } else {
        "[\"CMD\", \"true\"]"
    };
    format!(
        "name: {app}\nservices:\n  web:\n    image: {IMAGE}\n    init: true\n    command: [\"sleep\", \"3600\"]\n    environment:\n      GREETING: {greeting}\n    healthcheck:\n      test: {check}\n      interval: 1s\n      retries: 1\n    deploy:\n      replicas: 3\n      placement:\n        constraints: [\"node.role == worker\"]\n      update_config:\n        parallelism: 1\n        order: start-first\n        monitor: 5s\n        failure_action: rollback\n"
    )
}

fn stack(app: &str, greeting: &str, with_db: bool) -> String {
    let db = if with_db {
        format!("  db:\n    image: {IMAGE}\n    init: true\n    command: [\"sleep\", \"3600\"]\n")
    } else {
        String::new()
    };
    format!(
        "name: {app}\nservices:\n  web:\n    image: {IMAGE}\n    init: true\n    command: [\"sleep\", \"3600\"]\n    volumes: [\"data:/data\"]\n    environment:\n      GREETING: {greeting}\n    secrets: [db]\n    configs: [{{ source: site, target: /etc/site.conf }}]\n    read_only: true\n    stop_signal: SIGINT\n    extra_hosts: [\"backend:10.0.0.5\"]\n    ulimits: {{ nofile: {{ soft: 1024, hard: 2048 }} }}\n    sysctls: {{ net.core.somaxconn: \"1024\" }}\n    logging: {{ driver: json-file, options: {{ max-size: 1m }} }}\n    deploy:\n      replicas: 3\n      placement:\n        constraints: [\"node.role == worker\"]\n      update_config:\n        parallelism: 1\n        order: start-first\n{db}volumes:\n  data: {{}}\nsecrets:\n  db: {{ file: ./db.txt }}\nconfigs:\n  site: {{ content: \"greeting {greeting}\" }}\n"
    )
}

#[test]
fn a_stack_is_deployed_updated_healed_and_pruned_on_a_swarm() {
    let mut swarm = Swarm::start(2);
    let m = swarm.manager();
    let app = TestApp::new("swm");
    let dir = tempfile::tempdir().unwrap();
    // A Git repository: Mooring's rollback deploys one of its earlier revisions.
    let repo = Repo::new("swarm");
    repo.write("compose.yaml", &stack(&app.name, "one", true))
        .write("db.txt", "pw-one")
        .commit("one");
    // A private registry the nodes reach (this machine's port on the switch), holding
    // an image no node has: the nodes pull it with the credentials Mooring sends.
    let registry = Registry::start_private_at(&swarm.host_ip());
    let private = registry.reference(&format!("{}/priv:1", app.name));
    let login = tempfile::tempdir().unwrap();
    let login_dir = login.path().to_str().unwrap();
    registry.login_with(m.docker_command(&[]), login.path());
    m.docker(&["tag", IMAGE, &private]);
    m.docker(&["--config", login_dir, "push", &private]);
    m.docker(&["rmi", &private]);
    let s = Server::start_with_env(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\nregistries:\n  \"{}:{}\": {{ username: mooring, password: env:REGISTRY_PW }}\nhosts:\n{}    mode: swarm\n    nodes: [w2]\n{}    mode: swarm\n{}apps:\n  - name: {}\n    host: cluster\n    source: {{ git: {}, ref: main }}\n    sync: {{ interval: 1h, prune: true }}\n    data: {{ backup: on-change, volumes: backup-then-delete }}\n  - name: {}-w\n    host: worker\n    source: {{ git: {}, ref: main }}\n    sync: {{ interval: 1h }}\n",
            registry.ip,
            registry.port,
            m.host_yaml("cluster"),
            swarm.nodes[1].host_yaml("worker"),
            swarm.nodes[2].host_yaml("w2"),
            app.name,
            repo.file_url(),
            app.name,
            repo.file_url()
        ),
        &[("REGISTRY_PW", mooring_testkit::docker::REGISTRY_PASSWORD)],
    );
    // A worker named as a Swarm host: refused, saying why. (Generous: its first sync
    // may wait for a worker slot behind the stack's first deploy.)
    let worker_app = format!("{}-w", app.name);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    while !s.app(&worker_app)["conditions"]
        .to_string()
        .contains("is not a Swarm manager")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker was not refused as a Swarm host: {}\n{}",
            s.app(&worker_app),
            s.get(&format!("/api/v1/apps/{worker_app}/operations?limit=3"))
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    // Each new revision is taken at once (the app polls hourly): the Refresh action.
    let refresh = || {
        let (code, v) = s.call(
            "POST",
            &format!("/api/v1/apps/{}/refresh", app.name),
            Some(&s.admin),
            None,
        );
        assert_eq!(code, 202, "{v}");
    };
    let push = |compose: String| {
        repo.write("compose.yaml", &compose).commit("next");
        refresh();
    };
    let web = format!("{}_web", app.name);
    let db = format!("{}_db", app.name);
    // Generous: the first deploy on three fresh engines under a loaded CI machine.
    wait_or_tell(
        &s,
        &app.name,
        m,
        240,
        "the stack deployed and its tasks running",
        || {
            let a = s.app(&app.name);
            a["sync"] == "Synced" && a["health"] == "Healthy"
        },
    );
    let services = m.docker(&["service", "ls", "--format", "{{.Name}} {{.Replicas}}"]);
    assert!(
        services.contains(&format!("{web} 3/3")) && services.contains(&format!("{db} 1/1")),
        "{services}"
    );
    // As `docker stack deploy` makes it: the namespace label, an overlay network, and
    // the placement constraint held (web runs on the workers only).
    let label = m.docker(&[
        "service",
        "inspect",
        &web,
        "--format",
        "{{index .Spec.Labels \"com.docker.stack.namespace\"}}",
    ]);
    assert_eq!(label.trim(), app.name);
    let driver = m.docker(&[
        "network",
        "inspect",
        &format!("{}_default", app.name),
        "--format",
        "{{.Driver}}",
    ]);
    assert_eq!(driver.trim(), "overlay");
    let on_manager = m.docker(&[
        "node",
        "ps",
        "self",
        "--filter",
        "desired-state=running",
        "--format",
        "{{.Name}}",
    ]);
    let running = m.docker(&[
        "service",
        "ps",
        &web,
        "--filter",
        "desired-state=running",
        "--format",
        "{{.Name}}",
    ]);
    assert!(
        running.lines().count() == 3 && !on_manager.contains(&web),
        "web on the workers only: {running} / on the manager: {on_manager}"
    );

    // Its named volume is made by Swarm on the nodes its tasks run on, labelled with
    // the stack (the manager runs none).
    for (node, expected) in [(&swarm.nodes[1], true), (&swarm.nodes[2], true), (m, false)] {
        let volumes = node.docker(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("label=com.docker.stack.namespace={}", app.name),
        ]);
        assert_eq!(
            volumes.contains(&format!("{}_data", app.name)),
            expected,
            "{}: {volumes}",
            node.ip
        );
    }

    // The secret and the config are Swarm objects named after their content, which
    // the tasks read as files.
    let read_in_task = |path: &str| {
        let worker = &swarm.nodes[1];
        let id = worker.docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.service.name={web}"),
        ]);
        let id = id
            .lines()
            .next()
            .unwrap_or_else(|| panic!("no task of {web} on {}", worker.ip));
        worker.docker(&["exec", id, "cat", path])
    };
    let objects = |kind: &str| m.docker(&[kind, "ls", "--format", "{{.Name}}"]);
    // Named `APP_db_<12 hex digits>`: a keyed digest of the content (the daemon's key,
    // so the name tells nothing of a weak secret), not its plain sha256.
    let db_secret = || {
        objects("secret")
            .lines()
            .filter(|l| l.starts_with(&format!("{}_db_", app.name)))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let plain = |text: &str| mooring_core::hash::sha256_hex(text.as_bytes())[..12].to_string();
    assert_eq!(read_in_task("/run/secrets/db"), "pw-one");
    assert_eq!(read_in_task("/etc/site.conf"), "greeting one");
    // The container settings a service takes are the tasks' (and, sent as read back,
    // never drift: the end of this test counts the operations).
    assert!(
        read_in_task("/etc/hosts").contains("10.0.0.5\tbackend")
            || read_in_task("/etc/hosts").contains("10.0.0.5 backend"),
        "{}",
        read_in_task("/etc/hosts")
    );
    assert_eq!(read_in_task("/proc/sys/net/core/somaxconn").trim(), "1024");
    let first = db_secret();
    assert!(
        first.len() == 1
            && first[0].len() == format!("{}_db_", app.name).len() + 12
            && !first[0].ends_with(&plain("pw-one")),
        "{first:?}"
    );
    let first = first[0].clone();

    // A backup of the stack's volume through the node's own Engine (host w2, named in
    // the Swarm host's `nodes`): its task paused for it, not replaced by Swarm.
    let w2 = &swarm.nodes[2];
    let task_on_w2 = || {
        w2.docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.service.name={web}"),
        ])
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no task of {web} on w2"))
        .to_string()
    };
    let task = task_on_w2();
    w2.docker(&["exec", &task, "sh", "-c", "echo kept > /data/f"]);
    let (code, v) = s.call(
        "POST",
        &format!("/api/v1/apps/{}/backups", app.name),
        Some(&s.admin),
        None,
    );
    assert_eq!(code, 200, "{v}");
    let id = v["backups"][0]["id"].as_str().unwrap().to_string();
    assert!(
        id.contains(&format!("{}_data@w2", app.name))
            && v["backups"].as_array().unwrap().len() == 1,
        "{v}"
    );
    assert_eq!(task_on_w2(), task, "the task was paused, not replaced");
    assert_eq!(
        w2.docker(&[
            "inspect",
            "-f",
            "{{.State.Running}} {{.State.Paused}}",
            &task
        ])
        .trim(),
        "true false"
    );
    // Restored on that node: refused while a task runs with the volume; into another
    // volume there, every byte back.
    let restore = |body: serde_json::Value| {
        s.call(
            "POST",
            &format!("/api/v1/apps/{}/backups/{id}/restore", app.name),
            Some(&s.admin),
            Some(body),
        )
    };
    let (code, v) = restore(serde_json::json!({"force": true}));
    assert!(
        code == 409 && v.to_string().contains("on node w2 is in use by"),
        "{code} {v}"
    );
    let (code, v) = restore(serde_json::json!({"to_volume": "restored_here"}));
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        w2.docker(&[
            "run",
            "--rm",
            "-v",
            "restored_here:/r",
            IMAGE,
            "cat",
            "/r/f"
        ])
        .trim(),
        "kept"
    );
    w2.docker(&["volume", "rm", "restored_here"]);

    // A new revision: the service is updated in place (Swarm rolls it out), and the plan
    // said which field changed without printing its value. The secret's new content is
    // a new secret; the old one, unused, is removed.
    repo.write("db.txt", "pw-two");
    push(stack(&app.name, "two", true));
    wait_until(120, "the update rolled out", || {
        let env = m.docker(&[
            "service",
            "inspect",
            &web,
            "--format",
            "{{json .Spec.TaskTemplate.ContainerSpec.Env}}",
        ]);
        // The operation ends when Swarm's rolling update has.
        let last = s.get(&format!("/api/v1/apps/{}/operations?limit=1", app.name));
        env.contains("GREETING=two")
            && last["operations"][0]["result"] == "succeeded"
            && s.app(&app.name)["health"] == "Healthy"
    });
    let ops = s.get(&format!("/api/v1/apps/{}/operations", app.name));
    let text = ops.to_string();
    assert!(
        text.contains(&format!("update service {web}"))
            && text.contains("TaskTemplate.ContainerSpec.Env changed")
            && text.contains("TaskTemplate.ContainerSpec.Secrets changed")
            // backup: on-change — the volume web writes to, on the node named for it,
            // before the update (its tasks paused, not replaced).
            && text.contains(&format!("back up volume {}_data@w2", app.name))
            && text.contains(&format!("remove secret {first}"))
            && !text.contains("GREETING=two")
            && !text.contains("pw-two"),
        "{text}"
    );
    assert_eq!(read_in_task("/run/secrets/db"), "pw-two");
    assert_eq!(read_in_task("/etc/site.conf"), "greeting two");
    let second = db_secret();
    assert!(
        second.len() == 1 && second[0] != first,
        "a new secret for the new content, the old one gone: {second:?}"
    );

    // Scaled by hand: drift, seen on the Swarm's event stream (the app polls hourly)
    // and put back.
    m.docker(&["service", "scale", "--detach", &format!("{web}=1")]);
    wait_until(60, "the replicas put back", || {
        m.docker(&[
            "service",
            "inspect",
            &web,
            "--format",
            "{{.Spec.Mode.Replicated.Replicas}}",
        ])
        .trim()
            == "3"
    });
    // Named as drift, with the field and both values.
    wait_until(10, "the drift recorded", || {
        let events = s
            .get(&format!("/api/v1/events?app={}", app.name))
            .to_string();
        events.contains("drift_detected") && events.contains("Mode.Replicated.Replicas: 1 → 3")
    });

    // A service the repository drops is removed (prune).
    push(stack(&app.name, "two", false));
    wait_until(60, "db removed", || {
        !m.docker(&["service", "ls", "--format", "{{.Name}}"])
            .contains(&db)
    });
    assert!(m
        .docker(&["service", "ls", "--format", "{{.Name}}"])
        .contains(&web));

    // A revision whose health check fails: Swarm rolls the update back, Mooring reports
    // it with the tasks' errors and holds the revision (no retry undone again), and the
    // tasks of the revision before keep running.
    let env = || {
        m.docker(&[
            "service",
            "inspect",
            &web,
            "--format",
            "{{json .Spec.TaskTemplate.ContainerSpec.Env}}",
        ])
    };
    push(checked(&app.name, "two", false));
    // Nor the volume: under backup-then-delete (with prune), on the node named for the
    // Swarm host (w2), once its tasks stopped, backed up there and then removed there.
    // On the worker Mooring does not know as a node, it stays.
    let data = format!("{}_data", app.name);
    let on = |node: &mooring_testkit::engine::RemoteEngine| {
        node.docker(&["volume", "ls", "-q"])
            .lines()
            .any(|v| v == data)
    };
    wait_or_tell(
        &s,
        &app.name,
        m,
        180,
        "the released volume removed on w2",
        || !on(&swarm.nodes[2]),
    );
    let backups = s.get(&format!("/api/v1/apps/{}/backups", app.name));
    assert!(
        backups["backups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["volume"] == format!("{data}@w2")
                && b["reason"]
                    .as_str()
                    .unwrap_or("")
                    .contains("no longer declared")),
        "{backups}"
    );
    assert!(on(&swarm.nodes[1]), "kept on a node Mooring was not given");
    // That revision uses no secret or config: the stack's are removed once unused.
    wait_until(120, "the stack's secrets and configs removed", || {
        !objects("secret").contains(&app.name) && !objects("config").contains(&app.name)
    });
    let settled = |greeting: &str| {
        let last = s.get(&format!("/api/v1/apps/{}/operations?limit=1", app.name));
        let a = s.app(&app.name);
        last["operations"][0]["result"] == "succeeded"
            && a["sync"] == "Synced"
            && a["health"] == "Healthy"
            && env().contains(&format!("GREETING={greeting}"))
    };
    wait_or_tell(
        &s,
        &app.name,
        m,
        120,
        "the checked revision healthy",
        || {
            settled("two")
                && m.docker(&[
                    "service",
                    "inspect",
                    &web,
                    "--format",
                    "{{json .Spec.TaskTemplate.ContainerSpec.Healthcheck}}",
                ])
                .contains("true")
        },
    );
    let two = s.app(&app.name)["revision"].as_str().unwrap().to_string();
    push(checked(&app.name, "broken", true));
    wait_until(120, "the failed update reported", || {
        let c = s.app(&app.name)["conditions"].to_string();
        c.contains("RolloutFailed") && c.contains("was rolled back by Swarm")
    });
    let held = s.op_count(&app.name);
    // Longer than the first retry's backoff: nothing tries the held revision again.
    std::thread::sleep(std::time::Duration::from_secs(8));
    assert_eq!(
        s.op_count(&app.name),
        held,
        "the rolled back revision is not retried"
    );
    assert!(
        env().contains("GREETING=two"),
        "the previous spec kept: {}",
        env()
    );
    // The next revision still deploys.
    push(checked(&app.name, "three", false));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let a = s.app(&app.name);
        if settled("three") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the next revision did not roll out: {a}\n{}\n{}",
            s.get(&format!("/api/v1/apps/{}/operations?limit=4", app.name)),
            m.docker(&["service", "ps", &web, "--no-trunc"])
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }

    // Mooring's own rollback to an earlier revision: the service updated back (Swarm
    // rolls it out), the app pinned there and the operation in its history; then
    // unpinned, the source's revision again.
    let (code, v) = s.call(
        "POST",
        &format!("/api/v1/apps/{}/rollback", app.name),
        Some(&s.admin),
        Some(serde_json::json!({ "to": two })),
    );
    assert!(code < 300, "{code} {v}");
    wait_or_tell(&s, &app.name, m, 120, "rolled back to two", || {
        let a = s.app(&app.name);
        a["pinned"] == two.as_str() && a["health"] == "Healthy" && env().contains("GREETING=two")
    });
    let history = s.get(&format!("/api/v1/apps/{}/operations?limit=1", app.name));
    assert!(
        history["operations"][0].to_string().contains("rollback")
            && history["operations"][0]["result"] == "succeeded",
        "{history}"
    );
    let latest = || {
        s.get(&format!("/api/v1/apps/{}/operations?limit=1", app.name))["operations"][0]["id"]
            .as_i64()
            .unwrap_or(0)
    };
    let rolled_back = latest();
    let (code, v) = s.call(
        "POST",
        &format!("/api/v1/apps/{}/unpin", app.name),
        Some(&s.admin),
        None,
    );
    assert!(code < 300, "{code} {v}");
    // (The deploy after the unpin, not the rollback: a newer operation.)
    wait_or_tell(&s, &app.name, m, 180, "three again after the unpin", || {
        latest() > rolled_back && settled("three")
    });

    // A worker goes down: Swarm moves its tasks to the other worker; the app says so
    // until they run, then is Healthy again, without a deploy.
    let ops_before = s.op_count(&app.name);
    swarm.nodes[2].stop();
    let m = swarm.manager();
    wait_until(120, "the tasks rescheduled and the app healthy", || {
        let running = m.docker(&[
            "service",
            "ps",
            &web,
            "--filter",
            "desired-state=running",
            "--format",
            "{{.CurrentState}}",
        ]);
        running.lines().filter(|l| l.starts_with("Running")).count() == 3
            && s.app(&app.name)["health"] == "Healthy"
    });
    let ops_after = s.op_count(&app.name);
    assert_eq!(
        ops_before, ops_after,
        "Swarm reschedules; Mooring deploys nothing"
    );
    // A service whose tasks fail: Degraded, saying on which node and why.
    let failing = checked(&app.name, "three", false).replace(
        "services:\n",
        &format!("services:\n  job:\n    image: {IMAGE}\n    command: [\"false\"]\n    deploy:\n      restart_policy: {{ condition: none }}\n"),
    );
    push(failing);
    wait_or_tell(
        &s,
        &app.name,
        m,
        120,
        "the failing service reported",
        || {
            let a = s.app(&app.name);
            a["health"] == "Degraded"
                && a.to_string()
                    .contains("0/1 tasks running; a task failed on node ")
        },
    );
    // A node that cannot be reached: its backup is reported failed, not skipped.
    let (code, v) = s.call(
        "POST",
        &format!("/api/v1/apps/{}/backups", app.name),
        Some(&s.admin),
        None,
    );
    assert!(
        code == 502 && v["error"].to_string().contains("node w2 cannot be reached"),
        "{code} {v}"
    );

    // An image from the private registry: the service is created with the registry's
    // credentials (as `docker stack deploy --with-registry-auth`), and the worker,
    // which never had the image, pulls it.
    let with_private = |image: &str| {
        checked(&app.name, "three", false).replace(
            "services:\n",
            &format!("services:\n  priv:\n    image: {image}\n    init: true\n    command: [\"sleep\", \"3600\"]\n    deploy:\n      replicas: 2\n      placement:\n        constraints: [\"node.role == worker\"]\n      update_config: {{ parallelism: 1, delay: 4s }}\n"),
        )
    };
    push(with_private(&private));
    let priv_service = format!("{}_priv", app.name);
    wait_or_tell(
        &s,
        &app.name,
        m,
        120,
        "the private image's task running",
        || {
            // (The service may not be there yet.)
            let out = m
                .docker_command(&[
                    "service",
                    "ps",
                    &priv_service,
                    "--filter",
                    "desired-state=running",
                    "--format",
                    "{{.CurrentState}}",
                ])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.starts_with("Running"))
        },
    );
    // It runs pinned to the digest the registry gave (as `docker stack deploy`). A new
    // image pushed behind the same tag is rolled out at the next sync, the plan saying
    // so, and its task runs the new digest.
    let pinned = |image: &str| {
        let digest = m.docker(&[
            "image",
            "inspect",
            image,
            "--format",
            "{{index .RepoDigests 0}}",
        ]);
        format!("{image}@{}", digest.trim().rsplit_once('@').unwrap().1)
    };
    // Each task meant to run: its state and image.
    let running_image = || {
        let tasks = m.docker(&[
            "service",
            "ps",
            "-q",
            "--filter",
            "desired-state=running",
            &priv_service,
        ]);
        let mut args = vec![
            "inspect",
            "--format",
            "{{.Status.State}} {{.Spec.ContainerSpec.Image}}",
        ];
        args.extend(tasks.lines());
        let out = m.docker_command(&args).output().unwrap();
        let mut tasks: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        tasks.sort();
        tasks
    };
    let all_run = |image: &str| running_image() == vec![format!("running {image}"); 2];
    m.docker(&["--config", login_dir, "pull", &private]);
    let first = pinned(&private);
    wait_or_tell(&s, &app.name, m, 60, "both tasks running", || {
        all_run(&first)
    });
    // The worker has it by digest (a pinned pull does not tag it).
    let (repo, _) = private.rsplit_once(':').unwrap();
    let (_, digest) = first.rsplit_once('@').unwrap();
    swarm.nodes[1].docker(&["image", "inspect", &format!("{repo}@{digest}")]);
    // A new image (`version` labelled) pushed as `reference`: its pinned form.
    let push_image = |reference: &str, version: &str| {
        let base = format!("{}-v{version}", app.name);
        m.docker(&["create", "--name", &base, IMAGE]);
        let label = format!("LABEL v={version}");
        m.docker(&["commit", "--change", &label, &base, reference]);
        m.docker(&["rm", &base]);
        m.docker(&["--config", login_dir, "push", reference]);
        pinned(reference)
    };
    let second = push_image(&private, "2");
    assert_ne!(first, second);
    refresh();
    wait_or_tell(&s, &app.name, m, 120, "the moved tag rolled out", || {
        all_run(&second)
    });
    wait_or_tell(&s, &app.name, m, 60, "the update's plan recorded", || {
        s.get(&format!("/api/v1/apps/{}/operations?limit=3", app.name))
            .to_string()
            .contains("TaskTemplate.ContainerSpec.Image")
    });
    // Another tag in the repository: a rolling update as `update_config` says, one
    // task at a time (for a while one runs the new image and one the old), to the
    // new tag's digest.
    let tagged = registry.reference(&format!("{}/priv:2", app.name));
    let third = push_image(&tagged, "3");
    push(with_private(&tagged));
    let mut halfway = false;
    wait_or_tell(&s, &app.name, m, 120, "the new tag rolled out", || {
        let now = running_image();
        halfway |= now == [format!("running {second}"), format!("running {third}")]
            || now == [format!("running {third}"), format!("running {second}")];
        all_run(&third)
    });
    assert!(halfway, "never one task updated and the other not yet");
    assert!(!s
        .logs()
        .contains(mooring_testkit::docker::REGISTRY_PASSWORD));
}
