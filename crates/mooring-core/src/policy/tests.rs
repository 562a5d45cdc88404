use super::*;
use crate::desired::{Mount, Network, Service, Volume};
use crate::hash::tests::service;

/// A project with one service `web` (plus what `edit` adds).
fn project(edit: impl FnOnce(&mut Project)) -> Project {
    let mut p = Project {
        name: "app".into(),
        working_dir: "/srv/app".into(),
        config_files: vec!["compose.yaml".into()],
        services: BTreeMap::from([(
            "web".to_string(),
            Service {
                name: "web".into(),
                ..service()
            },
        )]),
        networks: BTreeMap::new(),
        volumes: BTreeMap::new(),
        notes: vec![],
        positions: BTreeMap::new(),
        secret_values: Default::default(),
        extensions: Default::default(),
        secrets: BTreeMap::new(),
        configs: BTreeMap::new(),
    };
    edit(&mut p);
    p
}

fn web(p: &mut Project) -> &mut Service {
    p.services.get_mut("web").expect("web")
}

fn bind(source: &str) -> impl FnOnce(&mut Project) + '_ {
    move |p| {
        web(p).mounts.push(Mount {
            kind: MountKind::Bind,
            source: source.into(),
            target: "/mnt".into(),
            read_only: false,
            bind: None,
            volume: None,
            from_repository: false,
        })
    }
}

fn cap(c: &str) -> impl FnOnce(&mut Project) + '_ {
    move |p| web(p).cap_add.push(c.into())
}

fn volume(driver_opts: &[(&str, &str)], external: bool) -> impl FnOnce(&mut Project) {
    let driver_opts: BTreeMap<String, String> = driver_opts
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |p| {
        p.volumes.insert(
            "data".into(),
            Volume {
                name: if external {
                    "data".into()
                } else {
                    "app_data".into()
                },
                driver: None,
                driver_opts,
                external,
                labels: BTreeMap::new(),
                policy: None,
                backup_on_change: None,
                retention: None,
                anonymous: false,
            },
        );
    }
}

fn network(name: &str, driver: Option<&str>, external: bool) -> impl FnOnce(&mut Project) {
    let (name, driver) = (name.to_string(), driver.map(str::to_string));
    move |p| {
        p.networks.insert(
            "net".into(),
            Network {
                name,
                driver,
                external,
                ..Network::default()
            },
        );
    }
}

fn policy(profile: Profile, allow: &[&str]) -> Policy {
    Policy {
        profile,
        allow: allow
            .iter()
            .map(|a| Exception::parse(a).expect("exception"))
            .collect(),
    }
}

/// What the check says: `refused` rules, then `noted` rules.
fn verdict(p: &Project, pol: &Policy) -> (Vec<Rule>, Vec<Rule>) {
    let v = check(p, pol, &host());
    (
        v.refused.iter().map(|f| f.rule).collect(),
        v.notes.iter().map(|f| f.rule).collect(),
    )
}

fn host() -> HostFacts {
    HostFacts {
        protected: vec![
            "/var/lib/mooring".into(),
            "/etc/mooring/mooring.yaml".into(),
        ],
        resolved: BTreeMap::from([("/srv/link".to_string(), "/".to_string())]),
    }
}

fn access(edit: impl FnOnce(&mut crate::HostAccess)) -> impl FnOnce(&mut Project) {
    move |p| edit(&mut web(p).host)
}

fn device(path: &str) -> crate::Device {
    crate::Device {
        source: path.into(),
        target: path.into(),
        permissions: "rwm".into(),
    }
}

fn security_opt(opt: &'static str) -> impl FnOnce(&mut Project) {
    move |p| web(p).settings.security_opt.push(opt.into())
}

use Profile::{Baseline, Privileged, Restricted};
use Rule::*;

#[test]
fn every_key_that_reaches_the_host_under_every_profile() {
    type Edit = Box<dyn FnOnce(&mut Project)>;
    /// What, project edit, profile, exceptions, refused, noted.
    type Case = (
        &'static str,
        Edit,
        Profile,
        &'static [&'static str],
        &'static [Rule],
        &'static [Rule],
    );
    #[rustfmt::skip]
    let table: Vec<Case> = vec![
        ("nothing", Box::new(|_| {}), Baseline, &[], &[], &[]),
        ("nothing", Box::new(|_| {}), Restricted, &[], &[], &[]),
        // The Docker socket, and folders holding it.
        ("socket", Box::new(bind("/var/run/docker.sock")), Baseline, &[], &[DockerSocket], &[]),
        ("socket", Box::new(bind("/run/docker.sock")), Restricted, &[], &[DockerSocket], &[]),
        ("socket", Box::new(bind("/var/run/docker.sock")), Privileged, &[], &[], &[DockerSocket]),
        ("socket", Box::new(bind("/var/run/docker.sock")), Baseline, &["docker_socket"], &[], &[DockerSocket]),
        ("socket elsewhere", Box::new(bind("/home/u/.docker/run/docker.sock")), Baseline, &[], &[DockerSocket], &[]),
        ("socket folder", Box::new(bind("/run")), Baseline, &["docker_socket"], &[SensitivePath], &[DockerSocket]),
        ("root", Box::new(bind("/")), Baseline, &[], &[DockerSocket, SensitivePath], &[]),
        ("root", Box::new(bind("/")), Privileged, &[], &[], &[DockerSocket, SensitivePath]),
        // Sensitive paths, below and above.
        ("etc", Box::new(bind("/etc")), Baseline, &[], &[SensitivePath], &[]),
        ("etc file", Box::new(bind("/etc/shadow")), Baseline, &[], &[SensitivePath], &[]),
        ("etc dots", Box::new(bind("/srv/../etc")), Baseline, &[], &[SensitivePath], &[]),
        ("var holds docker", Box::new(bind("/var")), Baseline, &[], &[DockerSocket, SensitivePath], &[]),
        ("docker state", Box::new(bind("/var/lib/docker/volumes")), Baseline, &[], &[SensitivePath], &[]),
        ("proc", Box::new(bind("/proc")), Baseline, &[], &[SensitivePath], &[]),
        ("sys", Box::new(bind("/sys/fs/cgroup")), Baseline, &[], &[SensitivePath], &[]),
        ("root home", Box::new(bind("/root/.ssh")), Baseline, &[], &[SensitivePath], &[]),
        ("mooring data", Box::new(bind("/var/lib/mooring/store.db")), Baseline, &[], &[SensitivePath], &[]),
        ("mooring config", Box::new(bind("/etc/mooring/mooring.yaml")), Baseline, &["host_path:/etc/mooring"], &[], &[SensitivePath]),
        ("etc allowed", Box::new(bind("/etc/letsencrypt")), Baseline, &["host_path:/etc/letsencrypt"], &[], &[SensitivePath]),
        ("etc wider than allowed", Box::new(bind("/etc")), Baseline, &["host_path:/etc/letsencrypt"], &[SensitivePath], &[]),
        ("symlink to root", Box::new(bind("/srv/link")), Baseline, &[], &[DockerSocket, SensitivePath], &[]),
        ("symlink allowed by its name only", Box::new(bind("/srv/link")), Baseline, &["host_path:/srv/link", "docker_socket"], &[SensitivePath], &[DockerSocket]),
        // Ordinary host paths.
        ("media", Box::new(bind("/srv/media")), Baseline, &[], &[], &[HostBind]),
        ("media", Box::new(bind("/srv/media")), Restricted, &[], &[HostBind], &[]),
        ("media", Box::new(bind("/srv/media/movies")), Restricted, &["host_path:/srv/media"], &[], &[HostBind]),
        ("media sibling", Box::new(bind("/srv/mediax")), Restricted, &["host_path:/srv/media"], &[HostBind], &[]),
        // Capabilities.
        ("default cap", Box::new(cap("CHOWN")), Baseline, &[], &[], &[]),
        ("net admin", Box::new(cap("NET_ADMIN")), Baseline, &[], &[Capability], &[]),
        ("net admin spelled", Box::new(cap("cap_net_admin")), Baseline, &["cap:NET_ADMIN"], &[], &[Capability]),
        ("sys admin", Box::new(cap("SYS_ADMIN")), Privileged, &[], &[], &[Capability]),
        ("all", Box::new(cap("ALL")), Baseline, &["cap:NET_ADMIN"], &[Capability], &[]),
        ("bind service", Box::new(cap("NET_BIND_SERVICE")), Restricted, &[], &[], &[]),
        ("sys time", Box::new(cap("SYS_TIME")), Restricted, &[], &[Capability], &[]),
        // Volumes.
        ("plain volume", Box::new(volume(&[], false)), Restricted, &[], &[], &[]),
        ("tmpfs volume", Box::new(volume(&[("type", "tmpfs"), ("device", "tmpfs")], false)), Baseline, &[], &[], &[]),
        ("bind volume", Box::new(volume(&[("type", "none"), ("o", "bind"), ("device", "/srv/data")], false)), Baseline, &[], &[], &[HostBind]),
        ("bind volume", Box::new(volume(&[("type", "none"), ("o", "bind"), ("device", "/srv/data")], false)), Restricted, &[], &[HostBind], &[]),
        ("bind volume etc", Box::new(volume(&[("type", "none"), ("o", "rbind,ro"), ("device", "/etc")], false)), Baseline, &[], &[SensitivePath], &[]),
        ("bind volume socket", Box::new(volume(&[("o", "bind"), ("device", "/var/run/docker.sock")], false)), Baseline, &[], &[DockerSocket], &[]),
        ("block device", Box::new(volume(&[("type", "ext4"), ("device", "/dev/sdb1")], false)), Baseline, &[], &[VolumeDevice], &[]),
        ("nfs", Box::new(volume(&[("type", "nfs"), ("o", "addr=10.0.0.1"), ("device", ":/export")], false)), Baseline, &["volume:app_data"], &[], &[VolumeDevice]),
        ("external volume", Box::new(volume(&[], true)), Baseline, &[], &[ExternalVolume], &[]),
        ("external volume", Box::new(volume(&[], true)), Baseline, &["volume:data"], &[], &[ExternalVolume]),
        ("external volume", Box::new(volume(&[], true)), Privileged, &[], &[], &[ExternalVolume]),
        // Networks.
        ("own network", Box::new(network("app_net", None, false)), Restricted, &[], &[], &[]),
        ("external network", Box::new(network("proxy", None, true)), Baseline, &[], &[ExternalNetwork], &[]),
        ("external network", Box::new(network("proxy", None, true)), Baseline, &["network:proxy"], &[], &[ExternalNetwork]),
        ("host network", Box::new(network("host", None, true)), Baseline, &["network:host"], &[HostNetwork], &[]),
        ("host network", Box::new(network("host", None, true)), Baseline, &["host_network"], &[], &[HostNetwork]),
        ("host driver", Box::new(network("app_net", Some("host"), false)), Restricted, &[], &[HostNetwork], &[]),
        ("host network", Box::new(network("host", None, true)), Privileged, &[], &[], &[HostNetwork]),
        // Security options.
        ("no new privileges", Box::new(security_opt("no-new-privileges:true")), Restricted, &[], &[], &[]),
        ("selinux label", Box::new(security_opt("label=type:svirt_apache_t")), Restricted, &[], &[], &[]),
        ("seccomp off", Box::new(security_opt("seccomp=unconfined")), Baseline, &[], &[SecurityOpt], &[]),
        ("apparmor off", Box::new(security_opt("apparmor:unconfined")), Baseline, &["docker_socket"], &[SecurityOpt], &[]),
        ("selinux off", Box::new(security_opt("label=disable")), Restricted, &[], &[SecurityOpt], &[]),
        ("system paths", Box::new(security_opt("systempaths=unconfined")), Baseline, &[], &[SecurityOpt], &[]),
        ("seccomp off", Box::new(security_opt("seccomp:unconfined")), Privileged, &[], &[], &[SecurityOpt]),
        ("seccomp profile", Box::new(security_opt("seccomp=./p.json")), Baseline, &[], &[SecurityOpt], &[]),
        ("seccomp profile", Box::new(security_opt("seccomp=./p.json")), Privileged, &[], &[], &[SecurityOpt]),
        ("seccomp default", Box::new(security_opt("seccomp=builtin")), Restricted, &[], &[], &[]),
        ("gpus", Box::new(access(|h| h.gpus = vec![crate::DeviceRequest { count: -1, ..Default::default() }])), Baseline, &[], &[Device], &[]),
        ("gpus", Box::new(access(|h| h.gpus = vec![crate::DeviceRequest { count: -1, ..Default::default() }])), Baseline, &["gpus"], &[], &[Device]),
        ("device reservation", Box::new(access(|h| h.device_reservations = vec![crate::DeviceRequest { count: -1, ..Default::default() }])), Restricted, &["gpus"], &[], &[Device]),
        // Privileges, namespaces, devices.
        ("privileged", Box::new(access(|h| h.privileged = true)), Baseline, &["docker_socket"], &[PrivilegedContainer], &[]),
        ("privileged", Box::new(access(|h| h.privileged = true)), Privileged, &[], &[], &[PrivilegedContainer]),
        ("host pid", Box::new(access(|h| h.pid = Some("host".into()))), Baseline, &[], &[HostNamespace], &[]),
        ("host pid", Box::new(access(|h| h.pid = Some("host".into()))), Restricted, &["host_namespace:pid"], &[], &[HostNamespace]),
        ("host ipc, pid allowed", Box::new(access(|h| h.ipc = Some("host".into()))), Baseline, &["host_namespace:pid"], &[HostNamespace], &[]),
        ("host uts", Box::new(access(|h| h.uts = Some("host".into()))), Baseline, &[], &[HostNamespace], &[]),
        ("host userns", Box::new(access(|h| h.userns_mode = Some("host".into()))), Baseline, &[], &[HostNamespace], &[]),
        ("host cgroup", Box::new(access(|h| h.cgroup = Some("host".into()))), Baseline, &["host_namespace:cgroup"], &[], &[HostNamespace]),
        ("shareable ipc", Box::new(access(|h| h.ipc = Some("shareable".into()))), Restricted, &[], &[], &[]),
        ("network mode host", Box::new(access(|h| h.network_mode = Some("host".into()))), Baseline, &[], &[HostNetwork], &[]),
        ("network mode host", Box::new(access(|h| h.network_mode = Some("host".into()))), Baseline, &["host_network"], &[], &[HostNetwork]),
        ("network mode none", Box::new(access(|h| h.network_mode = Some("none".into()))), Restricted, &[], &[], &[]),
        ("a service's network", Box::new(access(|h| h.network_mode = Some("service:db".into()))), Restricted, &[], &[], &[]),
        ("another container's network", Box::new(access(|h| h.network_mode = Some("container:vpn".into()))), Baseline, &[], &[ContainerNamespace], &[]),
        ("another container's pid", Box::new(access(|h| h.pid = Some("container:x".into()))), Privileged, &[], &[], &[ContainerNamespace]),
        ("device", Box::new(access(|h| h.devices.push(device("/dev/ttyUSB0")))), Baseline, &[], &[Device], &[]),
        ("device", Box::new(access(|h| h.devices.push(device("/dev/ttyUSB0")))), Baseline, &["device:/dev/ttyUSB0"], &[], &[Device]),
        ("other device", Box::new(access(|h| h.devices.push(device("/dev/sda")))), Baseline, &["device:/dev/ttyUSB0"], &[Device], &[]),
        ("device rule", Box::new(access(|h| h.device_cgroup_rules.push("c 1:3 mr".into()))), Baseline, &["device:/dev/null"], &[Device], &[]),
        ("device rule", Box::new(access(|h| h.device_cgroup_rules.push("c 1:3 mr".into()))), Privileged, &[], &[], &[Device]),
        ("privileged hook", Box::new(|p: &mut Project| web(p).post_start.push(crate::Hook { command: vec!["x".into()], privileged: true, ..Default::default() })), Baseline, &["docker_socket"], &[PrivilegedContainer], &[]),
        ("plain hook", Box::new(|p: &mut Project| web(p).pre_stop.push(crate::Hook { command: vec!["x".into()], ..Default::default() })), Restricted, &[], &[], &[]),
    ];
    let mut wrong = Vec::new();
    for (what, edit, profile, allow, refused, noted) in table {
        let p = project(edit);
        let pol = policy(profile, allow);
        let (r, n) = verdict(&p, &pol);
        if (r.as_slice(), n.as_slice()) != (refused, noted) {
            wrong.push(format!("{what} under {pol}: refused {r:?}, noted {n:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn repository_files_are_not_host_paths() {
    let p = project(|p| {
        web(p).mounts.push(Mount {
            kind: MountKind::Bind,
            source: "/var/lib/mooring/apps/app/tree/nginx.conf".into(),
            target: "/etc/nginx/nginx.conf".into(),
            read_only: true,
            bind: None,
            volume: None,
            from_repository: true,
        })
    });
    assert_eq!(verdict(&p, &policy(Restricted, &[])), (vec![], vec![]));
}

#[test]
fn a_refusal_names_the_key_its_position_and_the_exception() {
    let mut p = project(bind("/var/run/docker.sock"));
    p.positions.insert(
        "services.web.volumes./mnt".into(),
        "compose.yaml:7:9".into(),
    );
    let pol = policy(Baseline, &[]);
    let v = check(&p, &pol, &host());
    let msg = v.refusal_message(&pol);
    assert!(msg.starts_with("compose.yaml:7:9: services.web.volumes: /var/run/docker.sock:/mnt exposes the Docker socket"), "{msg}");
    assert!(msg.contains("refused by policy baseline"), "{msg}");
    assert!(
        msg.contains("add `docker_socket` to the app's `policy.allow`"),
        "{msg}"
    );
    assert!(msg.contains("--allow docker_socket"), "{msg}");
}

#[test]
fn notes_say_what_is_allowed_but_notable() {
    let p = project(|p| {
        bind("/srv/media")(p);
        cap("NET_ADMIN")(p);
    });
    let v = check(&p, &policy(Baseline, &["cap:NET_ADMIN"]), &host());
    assert!(v.allowed());
    assert_eq!(
        v.note_lines(),
        vec![
            "policy: services.web.volumes: /srv/media:/mnt: a host path outside the repository",
            "policy: services.web.cap_add: adds capability NET_ADMIN, beyond Docker's default set",
        ]
    );
}

#[test]
fn exceptions_parse_strictly() {
    for ok in [
        "docker_socket",
        "host_network",
        "host_path:/srv/media",
        "cap:NET_ADMIN",
        "cap:cap_sys_time",
        "volume:shared",
        "network:proxy",
        "host_namespace:pid",
        "device:/dev/ttyUSB0",
    ] {
        let e = Exception::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert!(Exception::parse(&e.to_string()).is_ok());
    }
    assert_eq!(
        Exception::parse("cap:cap_sys_time").map(|e| e.to_string()),
        Ok("cap:SYS_TIME".to_string())
    );
    for bad in [
        "",
        "docker",
        "host_path:srv",
        "host_path:/srv/../etc",
        "cap:",
        "cap:NET-ADMIN",
        "volume:",
        "privileged",
        "device:sda",
        "host_namespace:network",
        "host_namespace:mnt",
    ] {
        let e = Exception::parse(bad).expect_err(bad);
        assert!(e.to_string().contains("policy exception"), "{e}");
    }
}

#[test]
fn profiles_parse() {
    for p in [Baseline, Restricted, Privileged] {
        assert_eq!(Profile::parse(p.as_str()), Some(p));
    }
    assert_eq!(Profile::parse("root"), None);
    assert_eq!(Profile::default(), Baseline);
}
