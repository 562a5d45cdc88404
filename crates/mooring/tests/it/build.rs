//! `build:` services against the real Docker Engine, without any registry: images
//! built `FROM` the local test image (multi-stage, `ARG`, `target`) and `FROM scratch`;
//! rebuilt only when the context after `.dockerignore` changes, recreating exactly that
//! service; a broken Dockerfile applies nothing and names the step; a context leaving
//! the repository is refused.

use crate::common::*;
use mooring_testkit::sops::{encrypt_in_place, AgeKey};
use std::fs;
use std::path::Path;

/// Removes every image Mooring built for the app (containers, networks and volumes go
/// with the app itself).
struct Images(String);

impl Drop for Images {
    fn drop(&mut self) {
        for id in built_images(&self.0, None) {
            let _ = docker_output(&["rmi", "-f", &id]);
        }
    }
}

/// Ids of the images Mooring built for `app` (and `service`): their `io.mooring.build`
/// label ends with ` app/service`.
fn built_images(app: &str, service: Option<&str>) -> Vec<String> {
    let all = docker(&[
        "images",
        "-q",
        "--no-trunc",
        "--filter",
        "label=io.mooring.build",
    ]);
    let mut ids: Vec<String> = all
        .lines()
        .filter(|id| {
            // Another test may remove its own image between the listing and this.
            let out = docker_output(&[
                "inspect",
                "--format",
                "{{index .Config.Labels \"io.mooring.build\"}}",
                id,
            ]);
            let owner = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let owner = owner.split_once(' ').map(|(_, o)| o).unwrap_or("");
            match service {
                Some(s) => owner == format!("{app}/{s}"),
                None => owner.starts_with(&format!("{app}/")),
            }
        })
        .map(str::to_string)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

#[test]
fn built_images_follow_their_context_and_only_a_changed_one_is_rebuilt() {
    let app = TestApp::new("bld");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let _images = Images(app.name.clone());
    write(
        d,
        "compose.yaml",
        &format!(
            r#"name: {name}
services:
  web:
    build:
      context: ./web
      args: {{ GREETING: hello }}
      target: final
      labels: {{ team: site }}
    init: true
    command: ["sh", "-c", "cat /greeting /app.sh; exec sleep 3600"]
  tiny:
    build:
      context: ./tiny
      dockerfile_inline: |
        FROM scratch
        COPY busybox /bin/busybox
        CMD ["/bin/busybox", "sleep", "3600"]
  worker:
    image: {IMAGE}
    init: true
    command: ["sleep", "3600"]
"#,
            name = app.name
        ),
    );
    write(
        d,
        "web/Dockerfile",
        &format!(
            "FROM {IMAGE} AS base\nARG GREETING=unset\nRUN echo \"$GREETING\" > /greeting\n\nFROM base AS final\nCOPY app.sh /app.sh\n\nFROM base AS unused\nRUN false\n"
        ),
    );
    write(d, "web/app.sh", "echo one\n");
    write(d, "web/notes.md", "not sent\n");
    write(d, "web/.dockerignore", "*.md\n");
    fs::create_dir_all(d.join("tiny")).unwrap();
    fs::copy("/bin/busybox", d.join("tiny/busybox")).unwrap();
    let folder = d.to_str().unwrap();

    let out = app.expect(0, &["sync", folder]);
    // BuildKit's lines as they come (the unused stage is never built), then each
    // build's result.
    assert!(
        out.contains("[base 2/2] RUN echo \"hello\" > /greeting"),
        "{out}"
    );
    assert!(!out.contains("RUN false"), "{out}");
    assert!(
        out.contains(&format!("build image {}-web (service web)", app.name))
            && out.contains(&format!("build image {}-tiny (service tiny)", app.name)),
        "{out}"
    );
    let web = app.container("web");
    assert_eq!(
        docker(&["exec", &web, "cat", "/greeting"]).trim(),
        "hello",
        "ARG reached the build"
    );
    assert_eq!(
        inspect(
            &format!("{}-web", app.name),
            "{{index .Config.Labels \"team\"}}"
        ),
        "site"
    );
    assert_eq!(
        inspect(&app.container("tiny"), "{{.State.Running}}"),
        "true"
    );
    // In sync: nothing is built again.
    app.expect(0, &["diff", folder]);

    // A change that .dockerignore leaves out rebuilds nothing.
    write(d, "web/notes.md", "still not sent\n");
    app.expect(0, &["diff", folder]);

    // A change in the context rebuilds that image and recreates only its service.
    let (web_id, tiny_id, worker_id) = (app.id("web"), app.id("tiny"), app.id("worker"));
    write(d, "web/app.sh", "echo two\n");
    let out = app.expect(2, &["diff", folder]);
    assert!(out.contains("build inputs changed"), "{out}");
    app.expect(0, &["sync", folder]);
    assert_ne!(app.id("web"), web_id, "web was recreated on its new image");
    assert_eq!(app.id("tiny"), tiny_id);
    assert_eq!(app.id("worker"), worker_id);
    assert!(docker(&["exec", &app.container("web"), "cat", "/app.sh"]).contains("two"));

    // Old builds go: the newest three of a service are kept.
    for n in 3..=5 {
        write(d, "web/app.sh", &format!("echo {n}\n"));
        app.expect(0, &["sync", folder]);
    }
    assert_eq!(built_images(&app.name, Some("web")).len(), 3);
    assert_eq!(built_images(&app.name, Some("tiny")).len(), 1);

    // A broken Dockerfile: the sync fails naming the step, nothing is applied.
    let web_id = app.id("web");
    write(
        d,
        "web/Dockerfile",
        &format!("FROM {IMAGE} AS final\nCOPY app.sh /app.sh\nRUN echo failing-step && exit 3\n"),
    );
    let out = app.expect(1, &["sync", folder]);
    assert!(
        out.contains(" at [3/3] RUN echo failing-step && exit 3; the builder's last lines:")
            && out.contains(" failing-step\n")
            && out.contains("exit code: 3"),
        "{out}"
    );
    assert_eq!(app.id("web"), web_id, "the running container was kept");
}

#[test]
fn a_context_outside_the_repository_or_a_symlink_out_of_it_is_refused() {
    let app = TestApp::new("bldout");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("repo");
    write(
        &d,
        "compose.yaml",
        &format!(
            "name: {}\nservices:\n  web:\n    build: ../outside\n",
            app.name
        ),
    );
    fs::create_dir_all(dir.path().join("outside")).unwrap();
    write(&dir.path().join("outside"), "Dockerfile", "FROM scratch\n");
    let out = app.expect(1, &["validate", d.to_str().unwrap()]);
    assert!(
        out.contains(
            "compose.yaml:4:12: services.web.build.context ../outside leaves the repository"
        ),
        "{out}"
    );
    write(
        &d,
        "compose.yaml",
        &format!("name: {}\nservices:\n  web:\n    build: ./web\n", app.name),
    );
    write(&d, "web/Dockerfile", "FROM scratch\n");
    // A build on the host's network is the policy's to allow.
    write(
        &d,
        "compose.yaml",
        &format!(
            "name: {}\nservices:\n  web:\n    build: {{ context: ./web, network: host }}\n",
            app.name
        ),
    );
    let out = app.expect(1, &["validate", d.to_str().unwrap()]);
    assert!(
        out.contains("the image's build steps join the host's network stack")
            && out.contains("host_network"),
        "{out}"
    );
    app.expect(
        0,
        &["validate", d.to_str().unwrap(), "--allow", "host_network"],
    );
    write(
        &d,
        "compose.yaml",
        &format!("name: {}\nservices:\n  web:\n    build: ./web\n", app.name),
    );
    std::os::unix::fs::symlink("/etc/passwd", d.join("web/passwd")).unwrap();
    let out = app.expect(1, &["validate", d.to_str().unwrap()]);
    assert!(
        out.contains("symlink passwd points outside the build context"),
        "{out}"
    );
}

/// The daemon builds from the revision it deploys (the deploy tree of a Git source),
/// when a webhook says a commit was pushed: a commit that changes the context rebuilds
/// and recreates the service, the builder's lines kept in the operation's record and
/// shown on the history page; a commit that changes only an ignored file deploys the
/// new revision without a build; a commit that does not build is reported and not
/// retried, not even when the same push is announced again.
#[test]
fn the_daemon_rebuilds_on_a_pushed_commit_only_when_it_changes_the_context() {
    use crate::common::daemon::{wait_until, Server};
    let app = TestApp::new("bldd");
    let _images = Images(app.name.clone());
    let repo = Repo::new("built");
    repo.write(
        "compose.yaml",
        &format!(
            "name: {}\nservices:\n  web:\n    build: ./web\n    init: true\n    command: [\"sh\", \"-c\", \"cat /app.sh; exec sleep 3600\"]\n",
            app.name
        ),
    )
    // The app's name keeps the steps out of the builder's cache of earlier runs.
    .write("web/Dockerfile", &format!("FROM {IMAGE}\nCOPY app.sh /app.sh\nRUN echo built-at-step-3 {}\n", app.name))
    .write("web/app.sh", "echo one\n")
    .write("web/.dockerignore", "*.md\n")
    .write("web/notes.md", "a\n");
    repo.commit("first");
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\nwebhooks:\n  generic: {{ secret: hush }}\napps:\n  - name: {}\n    source: {{ git: {}, ref: main }}\n    sync: {{ interval: 1h }}\n",
            app.name,
            repo.file_url()
        ),
    );
    let mut deliveries = 0;
    let mut push = || {
        deliveries += 1;
        let body = serde_json::json!({ "repository": repo.file_url(), "ref": "refs/heads/main" })
            .to_string();
        let sig = mooring_server::hooks::sign("hush", body.as_bytes());
        let r = ureq::post(&s.url("/hooks/generic"))
            .set("x-mooring-signature", &format!("sha256={sig}"))
            .set("x-mooring-delivery", &format!("d-{deliveries}"))
            .send_string(&body)
            .unwrap();
        assert_eq!(r.status(), 202);
    };
    wait_until(120, "first deploy", || s.app(&app.name)["sync"] == "Synced");
    let build_action = |op: &serde_json::Value| {
        op["actions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| {
                a["resource"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("build image")
            })
            .cloned()
    };
    let first =
        build_action(&s.app(&app.name)["operations"][0]).expect("the first deploy built the image");
    // The builder's lines are in the operation's record.
    let output = first["output"].as_str().unwrap_or_default();
    assert!(
        output.contains("RUN echo built-at-step-3")
            && output.contains(&format!(" built-at-step-3 {}\n", app.name)),
        "{first}"
    );
    let web = app.container("web");
    let first_id = app.id("web");

    let notes = repo.write("web/notes.md", "b\n").commit("notes only");
    push();
    wait_until(60, "the notes commit deployed", || {
        s.app(&app.name)["revision"] == notes.as_str()
    });
    assert_eq!(
        app.id("web"),
        first_id,
        "an ignored file rebuilds and recreates nothing"
    );

    let change = repo.write("web/app.sh", "echo two\n").commit("app change");
    push();
    wait_until(120, "the change deployed", || {
        let a = s.app(&app.name);
        a["revision"] == change.as_str() && a["sync"] == "Synced"
    });
    assert_ne!(app.id("web"), first_id);
    assert!(docker(&["exec", &web, "cat", "/app.sh"]).contains("two"));
    let ops = s.app(&app.name)["operations"].clone();
    assert!(
        ops.as_array()
            .unwrap()
            .iter()
            .any(|o| o["revision"] == change.as_str() && build_action(o).is_some()),
        "{ops}"
    );
    // The history page shows the output under its action.
    let admin = s.token("admin");
    let page = ureq::get(&s.url(&format!("/apps/{}/history", app.name)))
        .set("authorization", &format!("Bearer {admin}"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        page.contains(&format!("Output of build image {}-web", app.name))
            && page.contains(" built-at-step-3"),
        "{page}"
    );

    // A commit whose image does not build: reported like a render error, the running
    // container kept, and not retried until a new revision.
    let running = app.id("web");
    let broken = repo
        .write("web/Dockerfile", &format!("FROM {IMAGE}\nRUN exit 7\n"))
        .commit("broken build");
    push();
    wait_until(60, "the failed build to be reported", || {
        s.app(&app.name)["conditions"]
            .to_string()
            .contains("BuildFailed")
    });
    let conditions = s.app(&app.name)["conditions"].to_string();
    assert!(conditions.contains("RUN exit 7"), "{conditions}");
    let attempts = |s: &Server| {
        s.get(&format!("/api/v1/apps/{}/operations", app.name))["operations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["revision"] == broken.as_str())
            .count()
    };
    let after_first = attempts(&s);
    push();
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert_eq!(attempts(&s), after_first, "a failed build is not retried");
    assert_eq!(app.id("web"), running);
}

/// The daemon builds at most `server.workers` images at once: with one worker, two
/// services' builds run one after the other (each records when its step began and
/// ended; the two spans do not overlap).
#[test]
fn the_daemon_builds_within_its_workers() {
    use crate::common::daemon::{wait_until, Server};
    let app = TestApp::new("bldw");
    let _images = Images(app.name.clone());
    let proj = tempfile::tempdir().unwrap();
    let d = proj.path();
    let mut compose = format!("name: {}\nservices:\n", app.name);
    for s in ["one", "two"] {
        // The app's name in the step keeps the builder's cache from answering.
        write(
            d,
            &format!("{s}/Dockerfile"),
            &format!(
                "FROM {IMAGE}\nRUN echo {} {s} && cut -d' ' -f1 /proc/uptime > /began && sleep 1 && cut -d' ' -f1 /proc/uptime > /ended\n",
                app.name
            ),
        );
        compose.push_str(&format!(
            "  {s}:\n    build: ./{s}\n    init: true\n    command: [\"sh\", \"-c\", \"exec sleep 3600\"]\n"
        ));
    }
    write(d, "compose.yaml", &compose);
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state, workers: 1 }}\napps:\n  - name: {}\n    source: {{ dir: {} }}\n    sync: {{ interval: 1h }}\n",
            app.name,
            d.display()
        ),
    );
    wait_until(120, "deployed", || s.app(&app.name)["sync"] == "Synced");
    // The kernel's uptime (shared by every container) when each step began and ended.
    let span = |service: &str| -> (f64, f64) {
        let out = docker(&["exec", &app.container(service), "cat", "/began", "/ended"]);
        let mut n = out.lines().map(|l| l.trim().parse::<f64>().unwrap());
        (n.next().unwrap(), n.next().unwrap())
    };
    let (a, b) = (span("one"), span("two"));
    assert!(
        a.1 <= b.0 || b.1 <= a.0,
        "the builds overlapped with one worker: {a:?} {b:?}"
    );
}

#[test]
fn build_secrets_reach_the_run_steps_and_never_the_image() {
    let app = TestApp::new("bsec");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = tempfile::tempdir().unwrap();
    let key = AgeKey::generate(keys.path(), "key.txt");
    let _images = Images(app.name.clone());
    // Goes with the app's image (removed by id, every tag with it).
    let extra_tag = format!("{}-extra:1", app.name);
    const TOKEN: &str = "tok-3f9a1c77e2";
    const FROM_ENV: &str = "env-8b21d0c4aa";
    write(
        d,
        "compose.yaml",
        &format!(
            r#"name: {name}
services:
  web:
    build:
      context: ./web
      secrets: [token, {{ source: api, target: api_key }}]
      tags: ["{extra_tag}"]
      platforms: [linux/amd64]
    command: ["sleep", "3600"]
secrets:
  token: {{ file: ./token.txt }}
  api: {{ environment: API_VALUE }}
"#,
            name = app.name
        ),
    );
    encrypt_in_place(&d.join("token.txt"), TOKEN.as_bytes(), &[&key], &[]);
    write(
        d,
        "web/Dockerfile",
        // The Dockerfile (which the image's history keeps) names only their digests.
        &format!(
            // The app's name keeps the steps out of the builder's cache of earlier runs.
            "FROM {IMAGE}\nRUN echo {} > /app\nRUN --mount=type=secret,id=token --mount=type=secret,id=api_key \
             test \"$(sha256sum < /run/secrets/token)\" = \"{}  -\" && \
             test \"$(sha256sum < /run/secrets/api_key)\" = \"{}  -\" && echo secrets-read\n\
             RUN test ! -e /run/secrets/token && echo step-without-mount > /proof\n\
             RUN --mount=type=secret,id=token cat /run/secrets/token && echo\n",
            app.name,
            mooring_core::hash::sha256_hex(TOKEN.as_bytes()),
            mooring_core::hash::sha256_hex(FROM_ENV.as_bytes()),
        ),
    );
    let folder = d.to_str().unwrap();
    let keyfile = key.file.display().to_string();
    let env = [
        ("SOPS_AGE_KEY_FILE", keyfile.as_str()),
        ("API_VALUE", FROM_ENV),
    ];
    let out = app.expect_env(0, &["sync", folder], &env);
    assert!(out.contains(" secrets-read"), "{out}");
    // A step that prints a secret shows `***` in its place.
    assert!(out.contains(" ***\n"), "{out}");
    assert!(!out.contains(TOKEN) && !out.contains(FROM_ENV), "{out}");
    let web = app.container("web");
    assert_eq!(
        docker(&["exec", &web, "cat", "/proof"]).trim(),
        "step-without-mount"
    );
    // The extra tag names the same image.
    assert_eq!(
        inspect(&extra_tag, "{{.Id}}"),
        inspect(&format!("{}-web", app.name), "{{.Id}}")
    );
    // No layer, label or history entry of the image holds a value.
    let saved = std::process::Command::new("docker")
        .args(["save", &format!("{}-web", app.name)])
        .output()
        .unwrap();
    assert!(saved.status.success());
    let image = String::from_utf8_lossy(&saved.stdout);
    assert!(!image.contains(TOKEN) && !image.contains(FROM_ENV));
    // A secret the build needs but is not given fails the build, naming the step;
    // nothing is applied.
    let web_id = app.id("web");
    write(
        d,
        "web/Dockerfile",
        &format!("FROM {IMAGE}\nRUN echo {} > /app\nRUN --mount=type=secret,id=missing,required=true cat /run/secrets/missing\n", app.name),
    );
    let out = app.expect_env(1, &["sync", folder], &env);
    assert!(
        out.contains("at [3/3] RUN --mount=type=secret,id=missing,required=true"),
        "{out}"
    );
    assert_eq!(app.id("web"), web_id);
}

#[test]
fn build_keys_the_engine_cannot_honour_safely_are_refused_with_their_position() {
    let app = TestApp::new("bref");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "web/Dockerfile", &format!("FROM {IMAGE}\n"));
    let folder = d.to_str().unwrap();
    let cases = [
        (
            "      secrets: [host]\nsecrets:\n  host: { file: /etc/hostname }\n",
            "compose.yaml:6:17: services.web.build.secrets: the file /etc/hostname is outside the repository",
        ),
        (
            "      platforms: [linux/amd64, linux/arm64]\n",
            "compose.yaml:6:18: services.web.build.platforms: 2 platforms; the Engine's builder makes an image for one platform",
        ),
        (
            "      ssh: [default]\n",
            "services.web.build.ssh is not supported: an SSH agent or key forwarded into the build would hand the daemon's credentials",
        ),
        (
            "      privileged: true\n",
            "services.web.build.privileged is not supported: a privileged build would run with full access to the host",
        ),
    ];
    for (extra, expected) in cases {
        write(
            d,
            "compose.yaml",
            &format!(
                "name: {}\nservices:\n  web:\n    build:\n{extra_build}",
                app.name,
                extra_build = format_args!("      context: ./web\n{extra}")
            ),
        );
        let out = app.expect(1, &["validate", folder]);
        assert!(out.contains(expected), "{expected}\n{out}");
    }
    write(
        d,
        "compose.yaml",
        &format!(
            "name: {}\nservices:\n  web:\n    platform: linux/arm64\n    build:\n      context: ./web\n      platforms: [linux/amd64]\n",
            app.name
        ),
    );
    let out = app.expect(1, &["validate", folder]);
    assert!(
        out.contains("compose.yaml:7:18: services.web.build.platforms must include the service's platform linux/arm64"),
        "{out}"
    );
}

/// A daemon killed while it builds leaves the running containers as they were (builds
/// come before any change), and the next start builds again and converges. On an
/// Engine of its own (`RemoteEngine`): on Engine 20.10 with fuse-overlayfs, a BuildKit
/// build cancelled mid-step made containers that other tests created at that moment
/// fail to mount their volumes ("not a directory").
#[test]
fn a_build_interrupted_by_a_killed_daemon_changes_nothing_and_is_done_on_the_next_start() {
    use crate::common::daemon::{wait_until, Server};
    let engine = mooring_testkit::engine::RemoteEngine::start(0);
    let app = TestApp::new("bldk");
    let dir = tempfile::tempdir().unwrap();
    let proj = dir.path().join("proj");
    write(
        &proj,
        "compose.yaml",
        &format!(
            "name: {}\nservices:\n  web:\n    build: ./web\n    init: true\n    command: [\"sh\", \"-c\", \"cat /v; exec sleep 3600\"]\n",
            app.name
        ),
    );
    write(
        &proj,
        "web/Dockerfile",
        &format!("FROM {IMAGE}\nRUN echo one > /v\n"),
    );
    let mut s = Server::start(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\nhosts:\n{}apps:\n  - name: {}\n    host: edge\n    source: {{ dir: {} }}\n    sync: {{ interval: 1s }}\n",
            engine.host_yaml("edge"),
            app.name,
            proj.display()
        ),
    );
    let web = format!("{}-web-1", app.name);
    let id = || engine.docker(&["inspect", "--format", "{{.Id}}", &web]);
    let cat = || {
        engine
            .docker_command(&["exec", &web, "cat", "/v"])
            .output()
            .unwrap()
            .stdout
    };
    wait_until(120, "the first deploy", || {
        s.app(&app.name)["sync"] == "Synced"
    });
    let running = id();
    let first_revision = s.app(&app.name)["revision"].clone();

    // A slow build of a new revision; the daemon is killed while it runs.
    write(
        &proj,
        "web/Dockerfile",
        &format!("FROM {IMAGE}\nRUN sleep 6 && echo two > /v\n"),
    );
    wait_until(60, "the build of the new revision to run", || {
        let op = &s.app(&app.name)["operations"][0];
        op["revision"] != first_revision && op["finished_at"].is_null()
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    s.kill9();
    assert_eq!(id(), running, "the running container was kept");
    assert_eq!(cat(), b"one\n", "nothing half-deployed");

    // The next start builds again and converges.
    s.spawn();
    wait_until(120, "the new revision deployed after the restart", || {
        s.app(&app.name)["sync"] == "Synced" && cat() == b"two\n"
    });
    assert_ne!(id(), running);
}
