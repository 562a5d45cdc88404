//! SOPS-encrypted files in a project, encrypted by the real `sops` with keys made by
//! the real `age-keygen`, deployed to the machine's Docker: an encrypted `env_file`,
//! `.env` (interpolation), a binary secret, a YAML config and a bind-mounted JSON file
//! reach the containers
//! decrypted — at the right path, owner and mode — and never any output, file or
//! answer of Mooring's. A new value recreates exactly the service using it; the same
//! values re-encrypted recreate nothing; a tampered file or a wrong key applies nothing.

use crate::common::daemon::{wait_until, Server};
use crate::common::*;
use mooring_testkit::sops::{encrypt_in_place, AgeKey};
use std::path::Path;

const PASSWORD: &str = "pw-correct-horse-battery";
const TOKEN: &str = "tok-4f1d2c9a8e7b";
const CONFIG_SECRET: &str = "cfg-s3cr3t-value";
const BIND_SECRET: &str = "bind-s3cr3t-json";

/// Bytes of the binary secret: not text, not UTF-8.
fn api_key() -> Vec<u8> {
    (0..600u32).map(|i| (i * 31 % 256) as u8).collect()
}

/// Writes the project into `d`, its data files encrypted for `key`.
fn project(d: &Path, app: &str, key: &AgeKey, password: &str) {
    std::fs::write(
        d.join("compose.yaml"),
        format!(
            r#"name: {app}
services:
  db:
    image: {IMAGE}
    init: true
    command: ["sh", "-c", "exec sleep 3600"]
    env_file: [db.env]
    environment:
      FROM_DOTENV: ${{TOKEN}}
    secrets:
      - source: api_key
        target: api_key
        uid: "1000"
        gid: "1000"
        mode: 0400
  web:
    image: {IMAGE}
    init: true
    command: ["sh", "-c", "exec sleep 3600"]
    configs:
      - source: site
        target: /etc/site.yaml
    volumes:
      - ./app.json:/etc/app.json:ro
secrets:
  api_key:
    file: ./api_key.bin
configs:
  site:
    file: ./site.yaml
"#
        ),
    )
    .unwrap();
    encrypt_in_place(
        &d.join("db.env"),
        format!("DB_PASSWORD={password}\nDB_USER_unencrypted=app\n").as_bytes(),
        &[key],
        &[],
    );
    encrypt_in_place(
        &d.join(".env"),
        format!("TOKEN={TOKEN}\n").as_bytes(),
        &[key],
        &[],
    );
    encrypt_in_place(&d.join("api_key.bin"), &api_key(), &[key], &[]);
    encrypt_in_place(
        &d.join("site.yaml"),
        format!("site:\n  secret: {CONFIG_SECRET}\n  port: 8080\n").as_bytes(),
        &[key],
        &[],
    );
    encrypt_in_place(
        &d.join("app.json"),
        format!("{{\"token\": \"{BIND_SECRET}\", \"debug\": false}}").as_bytes(),
        &[key],
        &[],
    );
}

fn assert_clean(what: &str, text: &str) {
    for secret in [PASSWORD, TOKEN, CONFIG_SECRET] {
        assert!(
            !text.contains(secret),
            "{what} holds a decrypted value:\n{text}"
        );
    }
}

/// `mooring ARGS` with this key (or none) as SOPS_AGE_KEY_FILE, and no default key
/// file (HOME is a fresh folder).
fn run(app: &TestApp, code: i32, args: &[&str], key: Option<&AgeKey>) -> String {
    let home = tempfile::tempdir().unwrap();
    let home = home.path().display().to_string();
    let file = key
        .map(|k| k.file.display().to_string())
        .unwrap_or_default();
    let mut env = vec![("HOME", home.as_str()), ("XDG_CONFIG_HOME", home.as_str())];
    if key.is_some() {
        env.push(("SOPS_AGE_KEY_FILE", file.as_str()));
    }
    app.expect_env(code, args, &env)
}

fn exec(container: &str, cmd: &str) -> String {
    docker(&["exec", container, "sh", "-c", cmd])
}

#[test]
fn encrypted_files_reach_the_containers_and_nothing_else() {
    let app = TestApp::new("sops");
    let keys = tempfile::tempdir().unwrap();
    let key = AgeKey::generate(keys.path(), "key.txt");
    let other = AgeKey::generate(keys.path(), "other.txt");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let folder = d.to_str().unwrap();
    project(d, &app.name, &key, PASSWORD);

    // Without a key, validate and render still judge the file, and say what they
    // could not decrypt.
    let out = run(&app, 0, &["validate", folder], None);
    assert!(
        out.contains("db.env is encrypted and no configured key can decrypt it"),
        "{out}"
    );
    assert!(out.contains("site.yaml is encrypted"), "{out}");
    // With the key, render decrypts (the MAC is checked) and prints values masked.
    let out = run(&app, 0, &["render", folder, "-o", "json"], Some(&key));
    assert_clean("render", &out);
    // stdout (the JSON) comes first, then stderr (the notes).
    let json: serde_json::Value =
        serde_json::Deserializer::from_str(&out[out.find('{').unwrap()..])
            .into_iter()
            .next()
            .unwrap()
            .unwrap();
    assert!(
        out.contains(
            "app.json is encrypted: it is copied into the container decrypted at /etc/app.json"
        ),
        "{out}"
    );
    assert_eq!(
        json["services"]["db"]["environment"]["DB_PASSWORD"], "***",
        "{out}"
    );
    assert_eq!(
        json["services"]["db"]["environment"]["FROM_DOTENV"], "***",
        "{out}"
    );
    assert_eq!(
        json["services"]["db"]["environment"]["DB_USER_unencrypted"], "app",
        "{out}"
    );

    // A wrong key, and no key: sync refuses, naming the file and its recipient.
    let out = run(&app, 1, &["sync", folder], Some(&other));
    assert!(
        out.contains(".env") && out.contains(&key.recipient),
        "{out}"
    );
    assert!(app.containers().is_empty(), "nothing applied");
    let out = run(&app, 1, &["sync", folder], None);
    assert!(out.contains("no configured key can decrypt it"), "{out}");

    // Deployed: each value where it belongs.
    let out = run(&app, 0, &["sync", folder], Some(&key));
    assert_clean("sync", &out);
    let db = app.container("db");
    let env = env_of(&db);
    assert!(env.contains(&format!("DB_PASSWORD={PASSWORD}\n")), "{env}");
    assert!(env.contains(&format!("FROM_DOTENV={TOKEN}\n")), "{env}");
    assert_eq!(
        exec(&db, "stat -c '%a %u %g' /run/secrets/api_key").trim(),
        "400 1000 1000"
    );
    let got = docker_output(&["exec", &db, "cat", "/run/secrets/api_key"]).stdout;
    assert_eq!(got, api_key(), "the binary secret, byte for byte");
    let site = exec(&app.container("web"), "cat /etc/site.yaml");
    assert!(
        site.contains(&format!("secret: {CONFIG_SECRET}")) && site.contains("port: 8080"),
        "{site}"
    );
    // Nothing in the data directory holds a value.
    assert_clean("the data directory", &walk(app.data.path()).join("\n"));

    // The same values encrypted again (a new data key, another recipient too):
    // nothing changes.
    let (db_id, web_id) = (app.id("db"), app.id("web"));
    project(d, &app.name, &key, PASSWORD);
    encrypt_in_place(
        &d.join("db.env"),
        format!("DB_PASSWORD={PASSWORD}\nDB_USER_unencrypted=app\n").as_bytes(),
        &[&key, &other],
        &[],
    );
    let out = run(&app, 0, &["sync", folder], Some(&key));
    assert_eq!(
        (app.id("db"), app.id("web")),
        (db_id.clone(), web_id.clone()),
        "{out}"
    );

    // A new password: exactly the service using it is recreated, the plan says which
    // variable changed and shows neither value.
    let new_password = "pw-rotated-staple-9";
    encrypt_in_place(
        &d.join("db.env"),
        format!("DB_PASSWORD={new_password}\nDB_USER_unencrypted=app\n").as_bytes(),
        &[&key],
        &[],
    );
    let out = run(&app, 0, &["sync", folder, "--dry-run"], Some(&key));
    assert!(out.contains("DB_PASSWORD: *** ("), "{out}");
    assert!(!out.contains(new_password), "{out}");
    assert_clean("the plan", &out);
    run(&app, 0, &["sync", folder], Some(&key));
    assert_ne!(app.id("db"), db_id, "db is recreated");
    assert_eq!(app.id("web"), web_id, "web is not");
    assert!(env_of(&db).contains(&format!("DB_PASSWORD={new_password}\n")));

    // A new secret file and config: the plan names them, nothing else.
    encrypt_in_place(&d.join("api_key.bin"), b"rotated-key", &[&key], &[]);
    encrypt_in_place(&d.join("site.yaml"), b"site:\n  port: 9090\n", &[&key], &[]);
    let out = run(&app, 0, &["sync", folder, "--dry-run"], Some(&key));
    assert!(
        out.contains("secret api_key changed") && out.contains("config site changed"),
        "{out}"
    );
    assert!(
        !out.contains("rotated-key") && !out.contains("9090"),
        "{out}"
    );
    run(&app, 0, &["sync", folder], Some(&key));
    assert_eq!(exec(&db, "cat /run/secrets/api_key"), "rotated-key");

    // Tampered (a clear value changed without the key): refused, nothing applied.
    let db_id = app.id("db");
    let text = std::fs::read_to_string(d.join("db.env")).unwrap();
    std::fs::write(
        d.join("db.env"),
        text.replace("DB_USER_unencrypted=app", "DB_USER_unencrypted=root"),
    )
    .unwrap();
    let out = run(&app, 1, &["sync", folder], Some(&key));
    assert!(
        out.contains("db.env") && out.contains("MAC does not match"),
        "{out}"
    );
    assert_eq!(app.id("db"), db_id, "the running container is kept");
}

#[test]
fn the_daemon_decrypts_with_its_configured_key_and_never_shows_a_value() {
    let app = TestApp::new("sopsd");
    let keys = tempfile::tempdir().unwrap();
    let key = AgeKey::generate(keys.path(), "key.txt");
    let proj = tempfile::tempdir().unwrap();
    project(proj.path(), &app.name, &key, PASSWORD);
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\nsops:\n  age: [\"file:{}\"]\napps:\n  - name: {}\n    source: {{ dir: {} }}\n    sync: {{ interval: 1h }}\n",
            key.file.display(),
            app.name,
            proj.path().display()
        ),
    );
    wait_until(60, "synced", || s.app(&app.name)["sync"] == "Synced");
    assert!(env_of(&app.container("db")).contains(&format!("DB_PASSWORD={PASSWORD}\n")));

    // A new value: the diff names the variable, masked.
    encrypt_in_place(
        &proj.path().join("db.env"),
        b"DB_PASSWORD=pw-next-one-77\nDB_USER_unencrypted=app\n",
        &[&key],
        &[],
    );
    let diff = s
        .get(&format!("/api/v1/apps/{}/diff", app.name))
        .to_string();
    assert!(diff.contains("DB_PASSWORD"), "{diff}");
    assert!(!diff.contains("pw-next-one-77"), "{diff}");
    let out = s.cli(&["sync", &app.name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(env_of(&app.container("db")).contains("DB_PASSWORD=pw-next-one-77\n"));

    let mut everything = s.app(&app.name).to_string();
    everything += &s
        .get(&format!("/api/v1/apps/{}/diff", app.name))
        .to_string();
    everything += &s.get("/api/v1/events").to_string();
    everything += &s
        .get(&format!("/api/v1/apps/{}/operations", app.name))
        .to_string();
    for page in ["/", &format!("/apps/{}", app.name)] {
        let (status, body) = s.call("GET", page, Some(&s.admin), None);
        assert_eq!(status, 200, "{page}");
        everything += &body.to_string();
    }
    assert!(s.terminate().success());
    everything += &s.logs();
    for entry in walk(&dir.path().join("state")) {
        everything += &entry;
    }
    for secret in [
        PASSWORD,
        TOKEN,
        CONFIG_SECRET,
        BIND_SECRET,
        "pw-next-one-77",
    ] {
        assert!(
            !everything.contains(secret),
            "a decrypted value leaked: {secret}"
        );
    }
}
