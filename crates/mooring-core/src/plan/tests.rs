use super::*;
use crate::desired::*;
use crate::hash::tests::service;
use crate::live::*;
use std::collections::BTreeMap;

pub(crate) mod support {
    pub(crate) use super::{live_for, project_of};
}

pub(crate) fn project_of(names: &[&str]) -> Project {
    project(names.iter().map(|n| named(n)).collect())
}

fn project(services: Vec<Service>) -> Project {
    let net = Network {
        name: "app_default".into(),
        ..Network::default()
    };
    Project {
        name: "app".into(),
        working_dir: "/srv/app".into(),
        config_files: vec!["compose.yaml".into()],
        services: services.into_iter().map(|s| (s.name.clone(), s)).collect(),
        networks: BTreeMap::from([("default".into(), net)]),
        volumes: BTreeMap::new(),
        notes: vec![],
        positions: BTreeMap::new(),
        secret_values: Default::default(),
        extensions: Default::default(),
        secrets: BTreeMap::new(),
        configs: BTreeMap::new(),
    }
}

fn named(name: &str) -> Service {
    Service {
        name: name.into(),
        ..service()
    }
}

fn running(svc: &Service) -> LiveContainer {
    LiveContainer {
        id: format!("id-{}", svc.name),
        name: format!("app-{}-1", svc.name),
        service: Some(svc.name.clone()),
        spec_hash: Some(crate::hash::spec_hash(svc)),
        spec: Some(crate::hash::spec_record(svc).to_string()),
        files_hash: svc.files_hash.clone(),
        files: Default::default(),
        state: ContainerState::Running,
        exit_code: Some(0),
        health: None,
        image_ref: svc.image.clone(),
        image_id: "sha256:aaa".into(),
        restart: svc.restart.clone(),
        memory: svc.memory.unwrap_or(0),
        nano_cpus: svc.nano_cpus.unwrap_or(0),
        env: svc
            .environment
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        restart_count: 0,
        updatable: Default::default(),
    }
}

pub(crate) fn live_for(p: &Project) -> Live {
    Live {
        containers: p.services.values().map(running).collect(),
        networks: BTreeMap::from([(
            "app_default".into(),
            LiveNetwork {
                name: "app_default".into(),
                id: "n1".into(),
                driver: "bridge".into(),
                labels: BTreeMap::from([(crate::labels::APP.into(), "app".into())]),
            },
        )]),
        volumes: BTreeMap::new(),
        images: BTreeMap::from([("busybox:1".into(), "sha256:aaa".into())]),
        image_builds: BTreeMap::new(),
    }
}

fn kinds(p: &Plan) -> Vec<String> {
    p.actions.iter().map(|a| a.action.to_string()).collect()
}

#[test]
fn empty_host_creates_everything_in_dependency_order() {
    let mut web = named("web");
    web.depends_on.insert(
        "db".into(),
        DependsOn {
            condition: DependsOnCondition::ServiceHealthy,
            required: true,
            restart: false,
        },
    );
    let p = project(vec![web, named("db")]);
    let plan = plan(&p, &Live::default(), PlanOptions::default()).unwrap();
    assert_eq!(
        kinds(&plan),
        [
            "create network app_default",
            "pull image busybox:1",
            "create container app-db-1",
            "create container app-web-1"
        ]
    );
    assert!(!plan.in_sync());
}

#[test]
fn matching_host_is_in_sync() {
    let p = project(vec![named("web"), named("db")]);
    let plan = plan(&p, &live_for(&p), PlanOptions::default()).unwrap();
    assert!(plan.in_sync(), "{plan:?}");
}

#[test]
fn env_change_recreates_and_names_the_variable() {
    let p = project(vec![named("web")]);
    let live = live_for(&p);
    let mut p2 = p.clone();
    p2.services
        .get_mut("web")
        .unwrap()
        .environment
        .insert("A".into(), "2".into());
    let plan = plan(&p2, &live, PlanOptions::default()).unwrap();
    assert_eq!(kinds(&plan), ["recreate container app-web-1"]);
    assert_eq!(plan.actions[0].reason, "environment A changed");
}

#[test]
fn mounted_file_change_recreates() {
    let p = project(vec![named("web")]);
    let live = live_for(&p);
    let mut p2 = p.clone();
    p2.services.get_mut("web").unwrap().files_hash = Some("new".into());
    let plan = plan(&p2, &live, PlanOptions::default()).unwrap();
    assert_eq!(
        plan.actions[0].reason,
        "content of mounted repository files changed"
    );
}

#[test]
fn stopped_container_is_started() {
    let p = project(vec![named("web")]);
    let mut live = live_for(&p);
    live.containers[0].state = ContainerState::Exited;
    live.containers[0].exit_code = Some(137);
    let plan = plan(&p, &live, PlanOptions::default()).unwrap();
    assert_eq!(kinds(&plan), ["start container app-web-1"]);
    assert!(plan.actions[0].reason.contains("code 137"));
}

#[test]
fn completed_one_shot_is_left_alone() {
    let mut web = named("web");
    web.depends_on.insert(
        "init".into(),
        DependsOn {
            condition: DependsOnCondition::ServiceCompletedSuccessfully,
            required: true,
            restart: false,
        },
    );
    let p = project(vec![web, named("init")]);
    let mut live = live_for(&p);
    let init = live
        .containers
        .iter_mut()
        .find(|c| c.name == "app-init-1")
        .unwrap();
    init.state = ContainerState::Exited;
    init.exit_code = Some(0);
    assert!(plan(&p, &live, PlanOptions::default()).unwrap().in_sync());
    live.containers
        .iter_mut()
        .find(|c| c.name == "app-init-1")
        .unwrap()
        .exit_code = Some(1);
    let plan = plan(&p, &live, PlanOptions::default()).unwrap();
    assert_eq!(kinds(&plan), ["start container app-init-1"]);
}

#[test]
fn hand_made_drift_is_recreated_with_reasons() {
    let p = project(vec![named("web")]);
    let mut live = live_for(&p);
    live.containers[0].restart = "always".into();
    live.containers[0].memory = 64 << 20;
    let plan = plan(&p, &live, PlanOptions::default()).unwrap();
    assert_eq!(kinds(&plan), ["recreate container app-web-1"]);
    assert_eq!(
        plan.actions[0].reason,
        "restart policy is always (changed by hand); desired no; memory limit is 64MiB (changed by hand); desired unlimited"
    );
}

#[test]
fn new_image_behind_same_tag_recreates() {
    let p = project(vec![named("web")]);
    let mut live = live_for(&p);
    live.images
        .insert("busybox:1".into(), "sha256:bbbbbbbbbbbbbbbb".into());
    let plan = plan(&p, &live, PlanOptions::default()).unwrap();
    assert_eq!(kinds(&plan), ["recreate container app-web-1"]);
    assert!(
        plan.actions[0].reason.contains("bbbbbbbbbbbb"),
        "{}",
        plan.actions[0].reason
    );
}

#[test]
fn orphans_are_kept_without_prune_and_removed_with_it() {
    let p = project(vec![named("web")]);
    let mut live = live_for(&p);
    let mut old = running(&named("old"));
    old.id = "id-old".into();
    live.containers.push(old);
    let kept = plan(&p, &live, PlanOptions::default()).unwrap();
    assert!(kept.actions.is_empty());
    assert_eq!(kept.orphans_kept, ["app-old-1"]);
    assert!(!kept.in_sync());
    let pruned = plan(
        &p,
        &live,
        PlanOptions {
            prune: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(kinds(&pruned), ["remove container app-old-1"]);
    assert!(pruned.orphans_kept.is_empty());
}

#[test]
fn duplicate_container_of_a_service_is_removed() {
    let p = project(vec![named("web")]);
    let mut live = live_for(&p);
    let mut dup = running(&named("web"));
    dup.id = "dup".into();
    dup.name = "intruder".into();
    live.containers.push(dup);
    let plan = plan(&p, &live, PlanOptions::default()).unwrap();
    assert_eq!(kinds(&plan), ["remove container intruder"]);
}

#[test]
fn foreign_container_is_recreated() {
    let p = project(vec![named("web")]);
    let mut live = live_for(&p);
    live.containers[0].spec_hash = None;
    let plan = plan(&p, &live, PlanOptions::default()).unwrap();
    assert_eq!(kinds(&plan), ["recreate container app-web-1"]);
}

#[test]
fn pull_policies() {
    let mut p = project(vec![named("web")]);
    let mut live = live_for(&p);
    p.services.get_mut("web").unwrap().pull_policy = PullPolicy::Always;
    let always = plan(&p, &live, PlanOptions::default()).unwrap();
    assert_eq!(kinds(&always), ["pull image busybox:1"]);
    let after = plan(
        &p,
        &live,
        PlanOptions {
            images_pulled: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(after.in_sync());
    p.services.get_mut("web").unwrap().pull_policy = PullPolicy::Never;
    live.images.clear();
    assert!(matches!(
        plan(&p, &live, PlanOptions::default()),
        Err(PlanError::ImageMissing { .. })
    ));
}

#[test]
fn a_built_image_is_built_when_missing_or_its_inputs_changed_and_never_pulled() {
    let mut p = project(vec![named("web"), named("worker")]);
    for svc in p.services.values_mut() {
        svc.image = "app-web".into();
    }
    p.services.get_mut("web").unwrap().build = Some(crate::Build {
        context: "/repo/web".into(),
        dockerfile: "Dockerfile".into(),
        dockerfile_inline: None,
        args: BTreeMap::new(),
        target: None,
        labels: BTreeMap::new(),
        network: None,
        shm_size: None,
        extra_hosts: vec![],
        cache_from: vec![],
        no_cache: false,
        pull: false,
        inputs: "in-1".into(),
        ..Default::default()
    });
    let mut live = live_for(&p);
    live.images.clear();
    let missing = plan(&p, &live, PlanOptions::default()).unwrap();
    let builds: Vec<_> = missing
        .actions
        .iter()
        .filter(|a| {
            matches!(
                a.action,
                Action::BuildImage { .. } | Action::PullImage { .. }
            )
        })
        .map(|a| (a.action.to_string(), a.reason.clone()))
        .collect();
    // One build; `worker` runs the built image and pulls nothing.
    assert_eq!(
        builds,
        [(
            "build image app-web (service web)".to_string(),
            "image is not present on the host".to_string()
        )]
    );
    live.images.insert("app-web".into(), "sha256:built".into());
    live.image_builds.insert("app-web".into(), "in-1".into());
    let same = plan(&p, &live, PlanOptions::default()).unwrap();
    assert!(!same
        .actions
        .iter()
        .any(|a| matches!(a.action, Action::BuildImage { .. })));
    live.image_builds.insert("app-web".into(), "in-0".into());
    let changed = plan(&p, &live, PlanOptions::default()).unwrap();
    assert!(changed
        .actions
        .iter()
        .any(|a| matches!(a.action, Action::BuildImage { .. })
            && a.reason.contains("build inputs changed")));
}

#[test]
fn external_network_must_exist() {
    let mut p = project(vec![named("web")]);
    p.networks.get_mut("default").unwrap().external = true;
    assert_eq!(
        plan(&p, &Live::default(), PlanOptions::default()),
        Err(PlanError::ExternalNetworkMissing("app_default".into()))
    );
}

#[test]
fn another_apps_volume_or_network_is_never_taken_over() {
    let label = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
    let with = |labels: BTreeMap<String, String>, external: bool| {
        let mut p = project(vec![named("web")]);
        p.volumes.insert(
            "data".into(),
            Volume {
                name: "other_data".into(),
                driver: None,
                driver_opts: BTreeMap::new(),
                external,
                labels: BTreeMap::new(),
                policy: None,
                backup_on_change: None,
                retention: None,
                anonymous: false,
            },
        );
        let mut live = live_for(&p);
        live.volumes.insert(
            "other_data".into(),
            LiveVolume {
                name: "other_data".into(),
                driver: "local".into(),
                options: BTreeMap::new(),
                labels,
            },
        );
        plan(&p, &live, PlanOptions::default())
    };
    let refused = with(label(crate::labels::APP, "other"), false).unwrap_err();
    assert_eq!(
        refused,
        PlanError::NotOwned {
            kind: "volume",
            name: "other_data".into(),
            owner: "app other".into()
        }
    );
    assert!(refused
        .to_string()
        .contains("`volume:other_data` in `policy.allow`"));
    let unlabelled = with(BTreeMap::new(), false).unwrap_err().to_string();
    assert!(
        unlabelled.contains("created outside Mooring"),
        "{unlabelled}"
    );
    // Compose's own volume of the same project is adopted, as `docker compose up` does.
    assert!(with(label(crate::labels::COMPOSE_PROJECT, "app"), false).is_ok());
    assert!(with(label(crate::labels::COMPOSE_PROJECT, "other"), false).is_err());
    // Declared external (the policy decides whether that is allowed): used as is.
    assert!(with(label(crate::labels::APP, "other"), true).is_ok());

    let mut p = project(vec![named("web")]);
    let mut live = live_for(&p);
    live.networks.get_mut("app_default").unwrap().labels = label(crate::labels::APP, "other");
    assert!(matches!(
        plan(&p, &live, PlanOptions::default()),
        Err(PlanError::NotOwned {
            kind: "network",
            ..
        })
    ));
    p.networks.get_mut("default").unwrap().external = true;
    assert!(plan(&p, &live, PlanOptions::default()).is_ok());
}

#[test]
fn undeclared_volume_is_kept_with_a_note() {
    let p = project(vec![named("web")]);
    let mut live = live_for(&p);
    live.volumes.insert(
        "app_data".into(),
        LiveVolume {
            name: "app_data".into(),
            driver: "local".into(),
            options: BTreeMap::new(),
            labels: BTreeMap::from([(crate::labels::APP.into(), "app".into())]),
        },
    );
    let plan = plan(
        &p,
        &live,
        PlanOptions {
            prune: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(plan.actions.is_empty());
    assert!(plan.notes[0].contains("app_data"));
}

fn with_data_volume(p: &mut Project, live: &mut Live, declared: bool) {
    let vol = Volume {
        name: "app_data".into(),
        driver: None,
        driver_opts: BTreeMap::new(),
        external: false,
        labels: BTreeMap::new(),
        policy: None,
        backup_on_change: None,
        retention: None,
        anonymous: false,
    };
    if declared {
        p.volumes.insert("data".into(), vol);
    }
    live.volumes.insert(
        "app_data".into(),
        LiveVolume {
            name: "app_data".into(),
            driver: "local".into(),
            options: BTreeMap::new(),
            labels: BTreeMap::from([(crate::labels::APP.into(), "app".into())]),
        },
    );
}

#[test]
fn undeclared_volume_under_backup_then_delete_is_backed_up_then_removed_only_with_prune() {
    let mut p = project(vec![named("web")]);
    let mut live = live_for(&p);
    with_data_volume(&mut p, &mut live, false);
    let policy = DataPolicy::BackupThenDelete;
    let without_prune = plan(
        &p,
        &live,
        PlanOptions {
            volume_policy: policy,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(without_prune.actions.is_empty());
    assert!(
        without_prune.notes[0].contains("only with prune"),
        "{:?}",
        without_prune.notes
    );
    let pruned = plan(
        &p,
        &live,
        PlanOptions {
            volume_policy: policy,
            prune: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        kinds(&pruned),
        ["back up volume app_data", "remove volume app_data"]
    );
    let protected = plan(
        &p,
        &live,
        PlanOptions {
            prune: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(protected.actions.is_empty() && protected.notes[0].contains("protected"));
}

#[test]
fn a_diverged_volume_blocks_the_plan() {
    let mut p = project(vec![named("web")]);
    let mut live = live_for(&p);
    with_data_volume(&mut p, &mut live, true);
    assert!(plan(&p, &live, PlanOptions::default()).unwrap().in_sync());
    p.volumes
        .get_mut("data")
        .unwrap()
        .driver_opts
        .insert("type".into(), "tmpfs".into());
    let err = plan(&p, &live, PlanOptions::default()).unwrap_err();
    assert_eq!(
        err,
        PlanError::VolumeDiverged {
            volume: "app_data".into(),
            declared: "driver local with type=tmpfs".into(),
            live: "driver local".into()
        }
    );
    assert!(err
        .to_string()
        .starts_with("VolumeDiverged: volume app_data cannot be changed in place"));
}

#[test]
fn a_recreation_cut_short_is_finished() {
    let mut p = project(vec![named("web")]);
    let mut live = live_for(&p);
    with_data_volume(&mut p, &mut live, true);
    let options = || PlanOptions {
        recreations: BTreeMap::from([("app_data".into(), "app-app_data-1".into())]),
        ..Default::default()
    };
    // Killed after it was created again: the restore alone, before its writers start.
    let restore = plan(&p, &live, options()).unwrap();
    assert_eq!(kinds(&restore), ["restore volume app_data"]);
    assert!(restore.actions[0].reason.contains("app-app_data-1"));
    // Killed between its removal and its creation: both.
    live.volumes.remove("app_data");
    let both = plan(&p, &live, options()).unwrap();
    assert_eq!(
        kinds(&both),
        ["create volume app_data", "restore volume app_data"]
    );
    // Still the old definition (killed before its removal): a diverged volume as before.
    with_data_volume(&mut p, &mut live, true);
    p.volumes
        .get_mut("data")
        .unwrap()
        .driver_opts
        .insert("type".into(), "tmpfs".into());
    assert!(matches!(
        plan(&p, &live, options()),
        Err(PlanError::VolumeDiverged { .. })
    ));
}

#[test]
fn a_volume_remembers_its_own_policy() {
    let mut p = project(vec![named("web")]);
    let mut live = live_for(&p);
    with_data_volume(&mut p, &mut live, false);
    let v = live.volumes.get_mut("app_data").unwrap();
    v.labels.insert(
        crate::labels::DATA_POLICY.into(),
        "backup-then-delete".into(),
    );
    let pruned = plan(
        &p,
        &live,
        PlanOptions {
            prune: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        kinds(&pruned),
        ["back up volume app_data", "remove volume app_data"]
    );
    live.volumes
        .get_mut("app_data")
        .unwrap()
        .labels
        .insert(crate::labels::DATA_POLICY.into(), "protect".into());
    let policy = DataPolicy::BackupThenDelete;
    let kept = plan(
        &p,
        &live,
        PlanOptions {
            prune: true,
            volume_policy: policy,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(kept.actions.is_empty(), "the volume's own protect wins");
}

#[test]
fn backup_on_change_backs_up_a_volume_before_its_writers_change_and_only_then() {
    let mount = |read_only| Mount {
        kind: MountKind::Volume,
        source: "app_data".into(),
        target: "/data".into(),
        read_only,
        bind: None,
        volume: None,
        from_repository: false,
    };
    let db = Service {
        mounts: vec![mount(false)],
        ..named("db")
    };
    let reader = Service {
        mounts: vec![mount(true)],
        ..named("reader")
    };
    let mut p = project(vec![db.clone(), reader.clone(), named("web")]);
    let mut live = live_for(&p);
    with_data_volume(&mut p, &mut live, true);
    let on = PlanOptions {
        backup_on_change: true,
        ..Default::default()
    };
    // Nothing changes: no backup.
    assert!(plan(&p, &live, on.clone()).unwrap().actions.is_empty());
    // Only a read-only user or an unrelated service changes: no backup.
    for changed in ["reader", "web"] {
        let mut q = p.clone();
        q.services.get_mut(changed).unwrap().environment =
            BTreeMap::from([("V".into(), "2".into())]);
        let planned = plan(&q, &live, on.clone()).unwrap();
        assert_eq!(
            kinds(&planned),
            [format!("recreate container app-{changed}-1")]
        );
    }
    // The writer changes: backed up first, with the reason.
    let mut q = p.clone();
    q.services.get_mut("db").unwrap().environment = BTreeMap::from([("V".into(), "2".into())]);
    let planned = plan(&q, &live, on.clone()).unwrap();
    assert_eq!(
        kinds(&planned),
        ["back up volume app_data", "recreate container app-db-1"]
    );
    assert!(
        planned.actions[0].reason.contains("on-change") && planned.actions[0].reason.contains("db")
    );
    // Off (the default), or off for this volume: no backup.
    assert_eq!(
        plan(&q, &live, PlanOptions::default())
            .unwrap()
            .actions
            .len(),
        1
    );
    q.volumes.get_mut("data").unwrap().backup_on_change = Some(false);
    assert_eq!(plan(&q, &live, on.clone()).unwrap().actions.len(), 1);
    // On for this volume only.
    q.volumes.get_mut("data").unwrap().backup_on_change = Some(true);
    assert_eq!(
        plan(&q, &live, PlanOptions::default())
            .unwrap()
            .actions
            .len(),
        2
    );
    // A volume that does not exist yet has nothing to back up.
    let mut fresh = live.clone();
    fresh.volumes.clear();
    let planned = plan(&q, &fresh, on).unwrap();
    assert!(!kinds(&planned).iter().any(|k| k.starts_with("back up")));
}

#[test]
fn ages_parse() {
    assert_eq!(parse_age("30d"), Some(30 * 86_400));
    assert_eq!(parse_age("12h"), Some(12 * 3_600));
    assert_eq!(parse_age("90m"), Some(5_400));
    assert_eq!(parse_age("45s"), Some(45));
    for bad in ["", "d", "30", "30w", "-1d", "1.5d"] {
        assert_eq!(parse_age(bad), None, "{bad}");
    }
}

#[test]
fn scaling_adds_and_removes_the_last_containers_and_leaves_the_others() {
    let mut p = project(vec![named("web")]);
    let mut live = live_for(&p);
    let web = p.services.get_mut("web").unwrap();
    web.replicas = Replicas(3);
    web.scale = Some(3);
    let up = plan(&p, &live, PlanOptions::default()).unwrap();
    assert_eq!(
        kinds(&up),
        ["create container app-web-2", "create container app-web-3"]
    );
    assert!(matches!(
        up.actions[1].action,
        Action::CreateContainer { replica: 3, .. }
    ));
    // Three running; scaled down to one: the last two go, the first stays as it is.
    let svc = p.services["web"].clone();
    for n in [2, 3] {
        let mut c = running(&svc);
        c.name = format!("app-web-{n}");
        c.id = format!("id-web-{n}");
        live.containers.push(c);
    }
    assert!(plan(&p, &live, PlanOptions::default()).unwrap().in_sync());
    let web = p.services.get_mut("web").unwrap();
    web.replicas = Replicas(1);
    web.scale = None;
    let down = plan(&p, &live, PlanOptions::default()).unwrap();
    assert_eq!(
        kinds(&down),
        ["remove container app-web-2", "remove container app-web-3"]
    );
    assert_eq!(
        down.actions[0].reason,
        "extra container of service web (only app-web-1 is managed)"
    );
    p.services.get_mut("web").unwrap().replicas = Replicas(0);
    let none = plan(&p, &live, PlanOptions::default()).unwrap();
    assert_eq!(none.actions.len(), 3, "{none:?}");
    assert!(none
        .actions
        .iter()
        .all(|a| a.reason == "service web runs no container (scale 0)"));
}

#[test]
fn each_replica_has_its_own_anonymous_volume() {
    let mut p = project(vec![named("web")]);
    for (name, anonymous) in [
        ("app_web_anon_1", true),
        ("app_web_anon_1_2", true),
        ("data", false),
    ] {
        p.volumes.insert(
            name.into(),
            Volume {
                name: name.into(),
                anonymous,
                ..Volume::default()
            },
        );
    }
    let web = p.services.get_mut("web").unwrap();
    web.replicas = Replicas(2);
    for source in ["app_web_anon_1", "data"] {
        web.mounts.push(Mount {
            kind: MountKind::Volume,
            source: source.into(),
            target: format!("/{source}"),
            read_only: false,
            bind: None,
            volume: None,
            from_repository: false,
        });
    }
    let sources = |replica| -> Vec<String> {
        p.replica_mounts(&p.services["web"], replica)
            .into_iter()
            .map(|m| m.source)
            .collect()
    };
    assert_eq!(sources(1), ["app_web_anon_1", "data"]);
    assert_eq!(sources(2), ["app_web_anon_1_2", "data"]);
    assert_eq!(p.replica_names("web"), ["app-web-1", "app-web-2"]);
}

#[test]
fn one_host_port_for_several_containers_is_refused_before_anything() {
    let mut p = project(vec![named("web")]);
    let web = p.services.get_mut("web").unwrap();
    web.replicas = Replicas(3);
    web.ports.push(Port {
        target: 80,
        published: Some("8080".into()),
        protocol: "tcp".into(),
        ..Default::default()
    });
    let err = plan(&p, &Live::default(), PlanOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "service web runs 3 containers but publishes host port 8080, which only one of them can hold; nothing was changed. Publish a range with a port for each (e.g. 8080-8082), leave the host port out, or run one container"
    );
    p.services.get_mut("web").unwrap().ports[0].published = Some("8080-8082".into());
    assert!(plan(&p, &Live::default(), PlanOptions::default()).is_ok());
}

#[test]
fn a_network_created_with_other_settings_is_recreated_around_its_containers() {
    let mut p = project(vec![named("web"), named("db")]);
    p.services.get_mut("web").unwrap().networks = BTreeMap::from([(
        "default".into(),
        ServiceNetwork {
            name: "app_default".into(),
            ..ServiceNetwork::default()
        },
    )]);
    let mut live = live_for(&p);
    // Created by Mooring as `internal`; the repository no longer says so.
    let mut old = p.networks["default"].clone();
    old.internal = true;
    let labels = &mut live.networks.get_mut("app_default").unwrap().labels;
    labels.insert(crate::labels::SPEC_HASH.into(), old.settings_hash());
    labels.insert(crate::labels::SPEC.into(), old.settings().to_string());
    let recreate = plan(&p, &live, PlanOptions::default()).unwrap();
    assert_eq!(
        kinds(&recreate),
        [
            "remove container app-web-1",
            "remove network app_default",
            "create network app_default",
            "create container app-web-1"
        ],
        "db does not join it and stays"
    );
    assert_eq!(
        recreate.actions[1].reason,
        "recreated: internal: true → false"
    );
    assert_eq!(
        recreate.actions[0].reason,
        "it joins network app_default, which is recreated"
    );
    // Labelled with the declared settings: nothing to do.
    let labels = &mut live.networks.get_mut("app_default").unwrap().labels;
    labels.insert(
        crate::labels::SPEC_HASH.into(),
        p.networks["default"].settings_hash(),
    );
    assert!(plan(&p, &live, PlanOptions::default()).unwrap().in_sync());
}
