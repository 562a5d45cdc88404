use super::*;
use mooring_core::desired::GoDuration;
use mooring_core::DeviceRequest;
use std::fs;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(files: &[(&str, &str)]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            let p = dir.path().join("My_App").join(name);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, content).unwrap();
        }
        Fixture { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("My_App")
    }

    fn opts(&self) -> LoadOptions {
        LoadOptions {
            project_dir: self.root(),
            snapshot_root: self.root(),
            ..Default::default()
        }
    }

    fn load(&self) -> Result<Project, LoadError> {
        load(&self.opts())
    }
}

/// Each `(lines, error)`: a service `web` with `image: x` and these lines fails with an
/// error starting so; every mismatch is reported at once.
fn assert_service_errors(cases: &[(&str, &str)]) {
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(line, want)| {
            let e = err_of(&[(
                "compose.yaml",
                &format!("services:\n  web:\n    image: x\n{line}"),
            )]);
            (!e.starts_with(want)).then(|| format!("{line}  got: {e}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn err_of(files: &[(&str, &str)]) -> String {
    Fixture::new(files).load().unwrap_err().to_string()
}

#[test]
fn minimal_project_gets_compose_defaults() {
    let f = Fixture::new(&[("compose.yaml", "services:\n  web:\n    image: busybox:1\n")]);
    let p = f.load().unwrap();
    assert_eq!(p.name, "my_app");
    let web = &p.services["web"];
    assert_eq!(web.restart, "no");
    assert_eq!(web.networks["default"].name, "my_app_default");
    assert_eq!(web.networks["default"].aliases, ["web"]);
    assert_eq!(p.networks["default"].name, "my_app_default");
    assert_eq!(p.config_files, ["compose.yaml"]);
}

#[test]
fn the_default_name_stands_in_for_the_folders_and_yields_to_name_and_app() {
    let f = Fixture::new(&[("compose.yaml", "services:\n  web:\n    image: busybox:1\n")]);
    let named = |default: Option<&str>, app: Option<&str>| {
        load(&LoadOptions {
            default_name: default.map(str::to_string),
            project_name: app.map(str::to_string),
            ..f.opts()
        })
        .unwrap()
        .name
    };
    // A repository checked out at its root: the snapshot folder's name means nothing.
    assert_eq!(named(Some("Infra.Repo"), None), "infrarepo");
    assert_eq!(named(Some("infra"), Some("shop")), "shop");
    assert_eq!(named(None, None), "my_app");
    let f = Fixture::new(&[(
        "compose.yaml",
        "name: blog\nservices:\n  web:\n    image: busybox:1\n",
    )]);
    let p = load(&LoadOptions {
        default_name: Some("infra".into()),
        ..f.opts()
    })
    .unwrap();
    assert_eq!(p.name, "blog");
}

#[test]
fn interpolation_uses_env_file_and_process_env_wins() {
    let f = Fixture::new(&[
        (".env", "TAG=1.0\nPORT=8080\nNAME=from-dotenv\n"),
        (
            "compose.yaml",
            "services:\n  web:\n    image: \"busybox:${TAG}\"\n    ports: [\"${PORT}:80\"]\n    environment:\n      NAME: $NAME\n      LITERAL: $$HOME\n      DEF: ${MISSING:-fallback}\n",
        ),
    ]);
    let mut opts = f.opts();
    opts.environment.insert("NAME".into(), "from-shell".into());
    let p = load(&opts).unwrap();
    let web = &p.services["web"];
    assert_eq!(web.image, "busybox:1.0");
    assert_eq!(web.ports[0].published.as_deref(), Some("8080"));
    assert_eq!(web.environment["NAME"], "from-shell");
    assert_eq!(web.environment["LITERAL"], "$HOME");
    assert_eq!(web.environment["DEF"], "fallback");
}

#[test]
fn unset_variable_is_noted_and_required_one_fails_with_position() {
    let f = Fixture::new(&[(
        "compose.yaml",
        "services:\n  web:\n    image: busybox:${NOPE}x\n",
    )]);
    let p = f.load().unwrap();
    assert_eq!(p.services["web"].image, "busybox:x");
    assert!(p.notes[0].contains("NOPE"), "{:?}", p.notes);
    let e = err_of(&[(
        "compose.yaml",
        "services:\n  web:\n    image: ${IMG:?set IMG}\n",
    )]);
    assert!(e.starts_with("compose.yaml:3:12: "), "{e}");
    assert!(e.contains("set IMG"), "{e}");
}

#[test]
fn env_file_then_environment() {
    let f = Fixture::new(&[
        ("app.env", "A=1\nB=2\n"),
        (
            "compose.yaml",
            "services:\n  web:\n    image: x\n    env_file: app.env\n    environment: [B=3, C]\n",
        ),
    ]);
    let mut opts = f.opts();
    opts.environment.insert("C".into(), "from-shell".into());
    let env = &load(&opts).unwrap().services["web"].environment;
    assert_eq!(
        env.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>(),
        ["A=1", "B=3", "C=from-shell"]
    );
}

#[test]
fn ports_short_and_long() {
    let f = Fixture::new(&[(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    ports:\n      - 80\n      - \"8080:80\"\n      - \"127.0.0.1:9000-9001:9000-9001/udp\"\n      - \"[::1]:53:53\"\n      - target: 443\n        published: \"8443\"\n        host_ip: 0.0.0.0\n",
    )]);
    let ports = &f.load().unwrap().services["web"].ports;
    let s: Vec<String> = ports
        .iter()
        .map(|p| {
            format!(
                "{}|{}|{}/{}",
                p.host_ip.clone().unwrap_or_default(),
                p.published.clone().unwrap_or_default(),
                p.target,
                p.protocol
            )
        })
        .collect();
    assert_eq!(
        s,
        [
            "|80/tcp",
            "|8080|80/tcp",
            "127.0.0.1|9000|9000/udp",
            "127.0.0.1|9001|9001/udp",
            "::1|53|53/tcp",
            "0.0.0.0|8443|443/tcp"
        ]
        .map(|x| {
            // normalise the first expectation: no published port
            x.replacen("|80/tcp", "||80/tcp", if x == "|80/tcp" { 1 } else { 0 })
        })
    );
}

#[test]
fn bad_port_has_position() {
    let e = err_of(&[(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    ports:\n      - \"80:abc\"\n",
    )]);
    assert_eq!(
        e,
        "compose.yaml:5:9: services.web.ports: invalid container port \"abc\" in \"80:abc\""
    );
}

#[test]
fn volumes_named_bind_and_readonly() {
    let f = Fixture::new(&[
        ("conf/nginx.conf", "a"),
        (
            "compose.yaml",
            "services:\n  web:\n    image: x\n    volumes:\n      - data:/data\n      - ./conf/nginx.conf:/etc/nginx.conf:ro\n      - /var/log:/host-log\n      - type: tmpfs\n        target: /run\nvolumes:\n  data:\n",
        ),
    ]);
    let p = f.load().unwrap();
    let web = &p.services["web"];
    assert_eq!(web.mounts[0].source, "my_app_data");
    assert_eq!(web.mounts[0].kind, MountKind::Volume);
    let root = f.root().canonicalize().unwrap();
    assert_eq!(
        web.mounts[1].source,
        root.join("conf/nginx.conf").to_string_lossy()
    );
    assert!(web.mounts[1].read_only && web.mounts[1].from_repository);
    assert_eq!(web.mounts[2].source, "/var/log");
    assert!(!web.mounts[2].from_repository);
    assert_eq!(web.tmpfs, ["/run"]);
    assert!(web.files_hash.is_some());
    // The host path is the policy's to judge and note; the loader keeps where it is.
    assert!(
        p.notes.iter().all(|n| !n.contains("/var/log")),
        "{:?}",
        p.notes
    );
    assert_eq!(
        p.positions
            .get("services.web.volumes./host-log")
            .map(String::as_str),
        Some("compose.yaml:7:9")
    );
    assert_eq!(
        p.positions.get("services.web").map(String::as_str),
        Some("compose.yaml:2:3")
    );
}

#[test]
fn host_root_rebases_repository_binds() {
    let f = Fixture::new(&[
        ("conf/a", "1"),
        (
            "compose.yaml",
            "services:\n  web:\n    image: x\n    volumes: [./conf:/conf]\n",
        ),
    ]);
    let mut p = f.load().unwrap();
    p.rebase_repository_paths(
        &f.root().canonicalize().unwrap(),
        Path::new("/srv/mooring/apps/x"),
    );
    assert_eq!(
        p.services["web"].mounts[0].source,
        "/srv/mooring/apps/x/conf"
    );
    assert_eq!(p.working_dir, "/srv/mooring/apps/x");
}

#[test]
fn mounted_file_content_changes_the_hash() {
    let f = Fixture::new(&[
        ("conf/a", "1"),
        (
            "compose.yaml",
            "services:\n  web:\n    image: x\n    volumes: [./conf:/conf]\n  db:\n    image: x\n",
        ),
    ]);
    let before = f.load().unwrap();
    fs::write(f.root().join("conf/a"), "2").unwrap();
    let after = f.load().unwrap();
    assert_ne!(
        before.services["web"].files_hash,
        after.services["web"].files_hash
    );
    assert_eq!(before.services["db"], after.services["db"]);
}

#[test]
fn every_file_read_is_checked_for_symlinks_leaving_the_repository() {
    use std::os::unix::fs::symlink;
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.env");
    fs::write(&secret, "STOLEN=root-only-secret\n").unwrap();
    fs::write(
        outside.path().join("compose.yaml"),
        "services:\n  web:\n    image: x\n",
    )
    .unwrap();
    let compose = "services:\n  web:\n    image: x\n    environment: [\"S=${STOLEN:-}\"]\n";
    let refused = |f: &Fixture, file: &str| {
        let e = f.load().unwrap_err().to_string();
        assert!(
            e.contains(&format!("{file} goes through symlink"))
                && e.contains("outside the repository"),
            "{e}"
        );
        assert!(!e.contains("root-only-secret"), "{e}");
    };
    // `.env`, absolute and relative.
    let f = Fixture::new(&[("compose.yaml", compose)]);
    symlink(&secret, f.root().join(".env")).unwrap();
    refused(&f, ".env");
    let f = Fixture::new(&[("compose.yaml", compose)]);
    let up = "../".repeat(f.root().components().count());
    symlink(format!("{up}{}", secret.display()), f.root().join(".env")).unwrap();
    refused(&f, ".env");
    // The discovered compose file and its override.
    let f = Fixture::new(&[]);
    fs::create_dir_all(f.root()).unwrap();
    symlink(
        outside.path().join("compose.yaml"),
        f.root().join("compose.yaml"),
    )
    .unwrap();
    refused(&f, "compose.yaml");
    let f = Fixture::new(&[("compose.yaml", compose)]);
    symlink(
        outside.path().join("compose.yaml"),
        f.root().join("compose.override.yaml"),
    )
    .unwrap();
    refused(&f, "compose.override.yaml");
    // env_file through a symlinked folder.
    let f = Fixture::new(&[(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    env_file: conf/secret.env\n",
    )]);
    symlink(outside.path(), f.root().join("conf")).unwrap();
    let e = f.load().unwrap_err().to_string();
    assert!(
        e.starts_with("compose.yaml:4:15: env_file conf/secret.env goes through symlink"),
        "{e}"
    );
    // Symlinks inside the repository are followed.
    let f = Fixture::new(&[
        ("compose.yaml", compose),
        ("conf/real.env", "STOLEN=fine\n"),
    ]);
    symlink("conf/real.env", f.root().join(".env")).unwrap();
    assert_eq!(f.load().unwrap().services["web"].environment["S"], "fine");
}

#[test]
fn paths_leaving_the_repository_are_refused() {
    let e = err_of(&[(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    volumes: [../../etc:/x]\n",
    )]);
    assert!(e.contains("leaves the repository"), "{e}");
    assert!(e.starts_with("compose.yaml:4:15"), "{e}");
    let e = err_of(&[(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    env_file: ../secret.env\n",
    )]);
    assert!(e.contains("leaves the repository"), "{e}");
    let f = Fixture::new(&[(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    volumes: [./link/passwd:/x]\n",
    )]);
    std::os::unix::fs::symlink("/etc", f.root().join("link")).unwrap();
    let e = f.load().unwrap_err().to_string();
    assert!(e.contains("symlink"), "{e}");
    let f = Fixture::new(&[(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    volumes: [/x/y:/x]\n",
    )]);
    let mut opts = f.opts();
    opts.protected_dirs = vec![PathBuf::from("/x")];
    assert!(load(&opts)
        .unwrap_err()
        .to_string()
        .contains("Mooring's data"));
}

#[test]
fn unsupported_and_unknown_keys_are_errors_with_position() {
    let e = err_of(&[(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    build: { context: ., ssh: [default] }\n",
    )]);
    assert!(
        e.starts_with("compose.yaml:4:31: services.web.build.ssh is not supported: an SSH agent"),
        "{e}"
    );
    let e = err_of(&[(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    build: .\n",
    )]);
    assert!(
        e.starts_with(
            "compose.yaml:4:12: services.web.build.dockerfile: Dockerfile does not exist in ."
        ),
        "{e}"
    );
    let e = err_of(&[(
        "compose.yaml",
        "services:\n  web:\n    build: ../elsewhere\n",
    )]);
    assert!(
        e.contains("services.web.build.context ../elsewhere leaves the repository"),
        "{e}"
    );
    let e = err_of(&[(
        "compose.yaml",
        "services:\n  web:\n    image: x\ncolour: {}\n",
    )]);
    assert!(
        e.starts_with("compose.yaml:4:1: top level: key `colour`"),
        "{e}"
    );
    let f = Fixture::new(&[(
        "compose.yaml",
        "x-common: &c\n  image: x\nservices:\n  web:\n    <<: *c\n    x-note: hi\n",
    )]);
    assert_eq!(f.load().unwrap().services["web"].image, "x");
}

#[test]
fn wrong_types_and_anonymous_volumes() {
    let e = err_of(&[(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    read_only: maybe\n",
    )]);
    assert_eq!(
        e,
        "compose.yaml:4:16: services.web.read_only must be true or false, found \"maybe\""
    );
    let e = err_of(&[("compose.yaml", "services:\n  web:\n    image: [x]\n")]);
    assert!(e.contains("services.web.image must be a string"), "{e}");
    // An anonymous volume gets a stable name and is declared, not printed.
    let f = Fixture::new(&[(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    volumes: [/data, {type: volume, target: /cache}]\n",
    )]);
    let p = f.load().unwrap();
    let sources: Vec<&str> = p.services["web"]
        .mounts
        .iter()
        .map(|m| m.source.as_str())
        .collect();
    assert!(
        sources.iter().all(|s| s.starts_with("my_app_web_anon_")),
        "{sources:?}"
    );
    assert_ne!(sources[0], sources[1]);
    assert_eq!(
        f.load().unwrap().services["web"].mounts[0].source,
        sources[0],
        "stable"
    );
    assert!(p.volumes[sources[0]].anonymous);
    assert!(crate::output::to_json(&p).get("volumes").is_none());
    let e = err_of(&[(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    volumes: [nope:/data]\n",
    )]);
    assert!(e.contains("volume `nope` is not declared"), "{e}");
}

#[test]
fn depends_on_unknown_and_cycles() {
    let e = err_of(&[(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    depends_on: [db]\n",
    )]);
    assert_eq!(
        e,
        "compose.yaml:4:17: services.web.depends_on: service `db` does not exist"
    );
    let e = err_of(&[(
        "compose.yaml",
        "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on:\n      a:\n        condition: service_healthy\n",
    )]);
    assert!(e.contains("dependency cycle: a → b → a"), "{e}");
}

#[test]
fn depends_on_long_form_and_healthcheck() {
    let f = Fixture::new(&[(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    depends_on:\n      db: {condition: service_healthy}\n      init: {condition: service_completed_successfully}\n  db:\n    image: x\n    healthcheck:\n      test: pg_isready\n      interval: 1m30s\n      retries: 3\n  init:\n    image: x\n",
    )]);
    let p = f.load().unwrap();
    assert_eq!(
        p.services["web"].depends_on["db"].condition,
        DependsOnCondition::ServiceHealthy
    );
    let hc = p.services["db"].healthcheck.as_ref().unwrap();
    assert_eq!(hc.test, ["CMD-SHELL", "pg_isready"]);
    assert_eq!(hc.interval, Some(GoDuration(90_000_000_000)));
    let order: Vec<&str> = p
        .services_in_order()
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(order, ["db", "init", "web"]);
}

#[test]
fn several_files_merge_and_override_is_discovered() {
    let f = Fixture::new(&[
        (
            "compose.yaml",
            "services:\n  web:\n    image: x\n    environment: [A=1]\n",
        ),
        (
            "compose.override.yaml",
            "services:\n  web:\n    environment: [B=2]\n",
        ),
        ("prod.yaml", "services:\n  web:\n    image: y\n"),
    ]);
    let p = f.load().unwrap();
    assert_eq!(p.services["web"].environment.len(), 2);
    assert_eq!(p.config_files, ["compose.yaml", "compose.override.yaml"]);
    let mut opts = f.opts();
    opts.files = vec!["compose.yaml".into(), "prod.yaml".into()];
    let p = load(&opts).unwrap();
    assert_eq!(p.services["web"].image, "y");
    assert_eq!(p.services["web"].environment.len(), 1);
}

#[test]
fn misc_service_keys() {
    let f = Fixture::new(&[(
        "compose.yaml",
        "name: shop\nservices:\n  web:\n    image: x\n    command: sh -c 'echo \"hi there\"'\n    entrypoint: [/bin/sh]\n    restart: unless-stopped\n    stop_grace_period: 5s\n    extra_hosts: [\"db:10.0.0.2\", \"cache=10.0.0.3\"]\n    cap_add: [NET_ADMIN]\n    init: true\n    pull_policy: never\n    deploy:\n      resources:\n        limits: {cpus: '0.5', memory: 64m}\n    labels: {team: a}\n",
    )]);
    let p = f.load().unwrap();
    assert_eq!(p.name, "shop");
    let web = &p.services["web"];
    assert_eq!(
        web.command.as_deref().unwrap(),
        ["sh", "-c", "echo \"hi there\""]
    );
    assert_eq!(web.restart, "unless-stopped");
    assert_eq!(web.extra_hosts, ["db:10.0.0.2", "cache:10.0.0.3"]);
    assert_eq!(web.nano_cpus, Some(500_000_000));
    assert_eq!(web.memory, Some(64 << 20));
    assert_eq!(web.pull_policy, PullPolicy::Never);
    assert_eq!(web.init, Some(true));
    assert_eq!(web.stop_grace_period, Some(GoDuration(5_000_000_000)));
}

#[test]
fn missing_file_and_invalid_names() {
    let f = Fixture::new(&[("readme", "")]);
    assert!(f
        .load()
        .unwrap_err()
        .to_string()
        .starts_with("no Compose file in"));
    let e = err_of(&[(
        "compose.yaml",
        "name: Bad Name\nservices:\n  web:\n    image: x\n",
    )]);
    assert!(e.starts_with("compose.yaml:1:7: project name"), "{e}");
    assert_eq!(normalize_project_name("-My.App_1"), "myapp_1");
}

#[test]
fn render_output_is_stable() {
    let f = Fixture::new(&[(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    environment: {A: 1}\n",
    )]);
    let p = f.load().unwrap();
    let yaml = crate::output::to_yaml(&p);
    assert!(
        yaml.starts_with(
            "name: my_app\nservices:\n  web:\n    image: x\n    environment:\n      A: \"1\"\n"
        ),
        "{yaml}"
    );
    // As Compose prints it: what the file did not write is not invented (restart,
    // pull_policy), command and entrypoint are null.
    let web = &crate::output::to_json(&p)["services"]["web"];
    assert!(
        web.get("restart").is_none() && web.get("pull_policy").is_none(),
        "{web}"
    );
    assert!(web["command"].is_null() && web.get("command").is_some());
}

#[test]
fn pass_through_settings_are_decoded_and_bad_values_named() {
    let f = Fixture::new(&[(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    container_name: web-main\n    expose: [3000, \"53/udp\"]\n    sysctls: [net.core.somaxconn=1024]\n    ulimits: {nproc: 512, nofile: {soft: 1, hard: 2}}\n    mem_limit: 256m\n    cpus: 1.5\n    deploy: {resources: {limits: {memory: 256m, pids: 50}, reservations: {memory: 64m}}}\n    memswap_limit: -1\n    dns: 1.1.1.1\n",
    )]);
    let p = f.load().unwrap();
    let web = &p.services["web"];
    assert_eq!(p.container_name("web"), "web-main");
    let s = &web.settings;
    assert_eq!(s.expose, ["3000", "53/udp"]);
    assert_eq!(s.sysctls["net.core.somaxconn"], "1024");
    assert_eq!((s.ulimits["nofile"].soft, s.ulimits["nofile"].hard), (1, 2));
    assert!(s.ulimits["nproc"].single);
    // deploy.resources.limits and mem_limit agree (Compose refuses them otherwise).
    assert_eq!(web.memory, Some(256 << 20));
    assert_eq!(web.nano_cpus, Some(1_500_000_000));
    assert_eq!(s.pids_limit, Some(50));
    assert_eq!(s.mem_reservation, Some(64 << 20));
    assert_eq!(s.memswap_limit, Some(-1));
    assert_eq!(s.dns, ["1.1.1.1"]);

    let cases = [
        ("    expose: [\"80-70\"]\n", "compose.yaml:4:14: services.web.expose: invalid port \"80-70\""),
        ("    ulimits: {nofile: {soft: 3, hard: 2}}\n", "compose.yaml:4:23: services.web.ulimits.nofile: soft limit 3 is above the hard limit 2"),
        ("    ulimits: {nofile: {soft: 3}}\n", "compose.yaml:4:23: services.web.ulimits.nofile needs `soft` and `hard`"),
        ("    security_opt: [\"seccomp=./profile.json\"]\n", "compose.yaml:4:20: services.web.security_opt: seccomp profile ./profile.json not found"),
        ("    security_opt: [\"seccomp=/etc/profile.json\"]\n", "compose.yaml:4:20: services.web.security_opt: seccomp profile /etc/profile.json must be a file inside the repository"),
        ("    container_name: \"-web\"\n", "compose.yaml:4:21: services.web.container_name: invalid container name \"-web\""),
        ("    mem_limit: lots\n", "compose.yaml:4:16: services.web.mem_limit: invalid size \"lots\""),
        ("    stdin_open: sometimes\n", "compose.yaml:4:17: services.web.stdin_open must be true or false"),
        ("    logging: {driver: json-file, colour: red}\n", "compose.yaml:4:34: services.web.logging: key `colour` is not supported"),
    ];
    assert_service_errors(&cases);
    let e = err_of(&[(
        "compose.yaml",
        "services:\n  a:\n    image: x\n    container_name: one\n  b:\n    image: x\n    container_name: one\n",
    )]);
    assert!(
        e.starts_with("compose.yaml:7:21: services.b.container_name: \"one\" is already the container name of service a"),
        "{e}"
    );
}

#[test]
fn gpus_and_device_reservations_read_as_compose_reads_them() {
    let f = Fixture::new(&[(
        "compose.yaml",
        "services:\n  a:\n    image: x\n    gpus: all\n  b:\n    image: x\n    gpus: [{driver: nvidia, count: 2, capabilities: [compute], options: {x: \"1\"}}, {device_ids: [\"1\"]}]\n    deploy: {resources: {reservations: {devices: [{capabilities: [gpu], driver: cdi, device_ids: [nvidia.com/gpu=all]}, {capabilities: [gpu], count: all}]}}}\n",
    )]);
    let p = f.load().unwrap();
    let a = &p.services["a"].host;
    assert_eq!(
        a.gpus,
        [DeviceRequest {
            count: -1,
            ..DeviceRequest::default()
        }]
    );
    let b = &p.services["b"].host;
    assert_eq!(
        (b.gpus[0].count, b.gpus[0].driver.as_deref()),
        (2, Some("nvidia"))
    );
    assert_eq!(b.gpus[0].options["x"], "1");
    assert_eq!(
        (b.gpus[1].count, &b.gpus[1].device_ids[..]),
        (0, &["1".to_string()][..])
    );
    assert_eq!(b.device_reservations.len(), 2);
    assert_eq!(b.device_reservations[1].count, -1);
    assert_eq!(
        p.positions["services.b.deploy.resources.reservations.devices"],
        "compose.yaml:8:50"
    );
    let cases = [
        ("    gpus: [{count: 1, device_ids: [\"0\"]}]\n", "compose.yaml:4:20: services.web.gpus: `count` and `device_ids` are exclusive"),
        ("    gpus: some\n", "compose.yaml:4:11: services.web.gpus must be a list (or `all`)"),
        ("    deploy: {resources: {reservations: {devices: [{count: 1}]}}}\n", "compose.yaml:4:51: services.web.deploy.resources.reservations.devices: each device needs `capabilities`"),
    ];
    assert_service_errors(&cases);
}

#[test]
fn a_seccomp_profile_file_is_sent_compacted_and_its_content_recreates() {
    let compose = "services:\n  web:\n    image: x\n    security_opt: [\"seccomp:profiles/p.json\", no-new-privileges:true]\n";
    let load = |profile: &str| {
        Fixture::new(&[("compose.yaml", compose), ("profiles/p.json", profile)])
            .load()
            .map(|p| p.services["web"].clone())
    };
    let web = load("{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": []\n}\n").unwrap();
    assert_eq!(
        web.seccomp_profile.as_deref(),
        Some("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[]}")
    );
    // As written for `render`, like `docker compose config`.
    assert_eq!(
        web.settings.security_opt,
        ["seccomp:profiles/p.json", "no-new-privileges:true"]
    );
    let other = load("{\"defaultAction\": \"SCMP_ACT_LOG\"}").unwrap();
    assert_ne!(
        mooring_core::hash::spec_hash(&web),
        mooring_core::hash::spec_hash(&other)
    );
    let e = load("{not json").unwrap_err().to_string();
    assert!(
        e.starts_with("compose.yaml:4:20: services.web.security_opt: seccomp profile profiles/p.json is not JSON"),
        "{e}"
    );
}

#[test]
fn host_access_is_decoded_with_positions_and_bad_values_named() {
    let f = Fixture::new(&[(
        "compose.yaml",
        "services:\n  db:\n    image: x\n  web:\n    image: x\n    network_mode: service:db\n    pid: host\n    devices: [/dev/ttyUSB0, \"/dev/sda:/dev/xvda:r\", {source: /dev/fuse}]\n",
    )]);
    let p = f.load().unwrap();
    let web = &p.services["web"];
    assert!(
        web.networks.is_empty(),
        "network_mode: no network of its own"
    );
    assert!(
        web.depends_on.contains_key("db"),
        "network_mode waits for db"
    );
    assert_eq!(web.host.pid.as_deref(), Some("host"));
    let d: Vec<(&str, &str, &str)> = web
        .host
        .devices
        .iter()
        .map(|d| (d.source.as_str(), d.target.as_str(), d.permissions.as_str()))
        .collect();
    assert_eq!(
        d,
        [
            ("/dev/ttyUSB0", "/dev/ttyUSB0", "rwm"),
            ("/dev/sda", "/dev/xvda", "r"),
            ("/dev/fuse", "/dev/fuse", "rwm")
        ]
    );
    assert_eq!(p.positions["services.web.pid"], "compose.yaml:7:10");

    let cases = [
        ("    network_mode: host\n    networks: [default]\n", "compose.yaml:5:15: services.web: `network_mode` and `networks` cannot both be set"),
        ("    pid: shared\n", "compose.yaml:4:10: services.web.pid: \"shared\" is not one of host, service:NAME, container:NAME"),
        ("    uts: container:x\n", "compose.yaml:4:10: services.web.uts: \"container:x\" is not one of host"),
        ("    devices: [ttyUSB0]\n", "compose.yaml:4:15: services.web.devices: device paths must be absolute"),
        ("    devices: [\"/dev/a:/dev/b:rwx\"]\n", "compose.yaml:4:15: services.web.devices: permissions \"rwx\" must be made of r, w and m"),
        ("    privileged: yes please\n", "compose.yaml:4:17: services.web.privileged must be true or false"),
    ];
    assert_service_errors(&cases);
}

#[test]
fn mount_options_and_home_paths() {
    let f = Fixture::new(&[(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    volumes:\n      - data:/data:nocopy\n      - ./site:/site:ro,z\n      - /srv/media:/media:rslave\n      - ~/cfg:/cfg\n      - {type: tmpfs, target: /cache, tmpfs: {size: 1m, mode: 0o1777}}\nvolumes:\n  data: {}\n",
    ), ("site/index.html", "hi")]);
    let mut opts = f.opts();
    opts.environment.insert("HOME".into(), "/home/ops".into());
    let p = load(&opts).unwrap();
    let specs: Vec<String> = p.services["web"]
        .mounts
        .iter()
        .map(|m| m.bind_spec())
        .collect();
    let site = f.root().join("site");
    assert_eq!(
        specs,
        [
            "my_app_data:/data:nocopy".to_string(),
            format!("{}:/site:ro,z", site.display()),
            "/srv/media:/media:rslave".to_string(),
            "/home/ops/cfg:/cfg".to_string(),
        ]
    );
    assert_eq!(p.services["web"].tmpfs, ["/cache:size=1048576,mode=1777"]);
    // Without a HOME the daemon cannot know whose home `~` is.
    let e = f.load().unwrap_err().to_string();
    assert!(
        e.contains("~/cfg needs a home folder, and HOME is not set"),
        "{e}"
    );
    for (entry, want) in [
        (
            "./site:/site:nocopy",
            "volume option \"nocopy\" is not valid here",
        ),
        ("data:/data:z", "volume option \"z\" is not valid here"),
        (
            "{type: volume, source: data, target: /d, volume: {subpath: x}}",
            "subpath needs Docker Engine API 1.45",
        ),
        (
            "{type: bind, source: ./site, target: /d, bind: {propagation: sideways}}",
            "propagation: \"sideways\" is not one of",
        ),
        ("~other/x:/x", "another user's home folder"),
    ] {
        let e = err_of(&[(
            "compose.yaml",
            &format!("services:\n  web:\n    image: x\n    volumes:\n      - {entry}\nvolumes:\n  data: {{}}\n"),
        ), ("site/a", "a")]);
        assert!(e.contains(want), "{entry}: {e}");
    }
}

#[test]
fn secrets_and_configs_refuse_what_a_single_engine_cannot_do() {
    let base = "services:\n  web:\n    image: x\n    secrets: [s]\n";
    let mut wrong = Vec::new();
    for (top, want) in [
        ("secrets:\n  s: {external: true}\n", "compose.yaml:6:6: secrets.s: external secrets exist in a Docker Swarm only"),
        ("secrets:\n  s: {content: x}\n", "compose.yaml:6:7: secrets.s: key `content` is not supported"),
        ("secrets:\n  s: {file: ./a, environment: A}\n", "compose.yaml:6:6: secrets.s needs exactly one of file, environment"),
        ("secrets:\n  s: {environment: NOT_SET_ANYWHERE}\n", "compose.yaml:6:20: secrets.s.environment: variable NOT_SET_ANYWHERE is not set"),
        ("secrets:\n  s: {file: ../outside}\n", "../outside"),
        ("secrets:\n  t: {file: ./a}\n", "compose.yaml:4:15: services.web.secrets: `s` is not declared under the top-level `secrets`"),
    ] {
        let e = err_of(&[("compose.yaml", &format!("{base}{top}")), ("a", "a")]);
        if !(e.starts_with(want) || (want.starts_with("..") && e.contains(want))) {
            wrong.push(format!("{top}: {e}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn decrypted_values_never_print_even_read_as_numbers_or_flags() {
    let f = Fixture::new(&[(
        "compose.yaml",
        "x-pin: 4242\nx-on: true\nservices:\n  web:\n    image: x\n    environment: {PIN: \"4242\"}\n",
    )]);
    let mut p = f.load().unwrap();
    // As a render that decrypted them would have recorded them.
    p.secret_values.add("4242");
    p.secret_values.add("true");
    let out = crate::output::to_json(&p).to_string();
    assert!(!out.contains("4242") && !out.contains("true"), "{out}");
    assert_eq!(crate::output::to_json(&p)["x-pin"], "***");
}
