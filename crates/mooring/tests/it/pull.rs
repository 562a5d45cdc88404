//! Image pulls from a real registry (Debian's `docker-registry` on 127.0.0.1): a missing
//! image is pulled before anything is created, and `pull_policy: always` picks up a new
//! image pushed behind the same tag and recreates the container on it. A private
//! registry (basic auth) is pulled from with the credentials of `registries` in
//! mooring.yaml (the daemon) or of `docker login` (the command line), and refused
//! without them.

use crate::common::daemon::{wait_until, Server};
use crate::common::*;
use mooring_testkit::docker::Registry;
use std::fs;

#[test]
fn missing_image_is_pulled_and_always_follows_the_tag() {
    let app = TestApp::new("mpull");
    let registry = Registry::start();
    let image = registry.reference(&format!("{}/web:1", app.name));
    docker(&["tag", IMAGE, &image]);
    docker(&["push", &image]);
    docker(&["rmi", &image]);
    assert!(!docker_output(&["image", "inspect", &image])
        .status
        .success());

    let dir = tempfile::tempdir().unwrap();
    let compose = format!(
        "name: {}\nservices:\n  web:\n    image: {image}\n    init: true\n    command: [sleep, \"3600\"]\n",
        app.name
    );
    fs::write(dir.path().join("compose.yaml"), &compose).unwrap();
    let src = dir.path().to_str().unwrap();
    let diff = app.expect(2, &["diff", src]);
    assert!(
        diff.contains(&format!("pull image {image}")) && diff.contains("not present"),
        "{diff}"
    );
    let out = app.expect(0, &["sync", src]);
    assert!(out.contains(&format!("pull image {image}")), "{out}");
    // The pull's progress as the Engine reports it (its layers are already here, the
    // local image's), down to its last word.
    assert!(
        out.contains("Pulling from ")
            && out.contains("Digest: sha256:")
            && out.contains(&format!("Downloaded newer image for {image}")),
        "{out}"
    );
    assert_eq!(
        inspect(&app.container("web"), "{{.State.Status}}"),
        "running"
    );
    assert!(
        app.expect(0, &["sync", src]).contains("nothing to do"),
        "missing policy: no second pull"
    );

    // A new image pushed behind the same tag; the local copy is the old one.
    let old = inspect(&image, "{{.Id}}");
    let builder = format!("{}-build", app.name);
    docker(&["run", "--name", &builder, IMAGE, "touch", "/v2"]);
    let v2 = registry.reference(&format!("{}/web:v2-build", app.name));
    docker(&["commit", &builder, &v2]);
    docker(&["rm", &builder]);
    docker(&["tag", &v2, &image]);
    docker(&["push", &image]);
    let new = inspect(&image, "{{.Id}}");
    assert_ne!(old, new);
    docker(&["tag", &old, &image]); // the host still has the old image under the tag
    assert_eq!(inspect(&image, "{{.Id}}"), old);

    fs::write(
        dir.path().join("compose.yaml"),
        compose.replace(
            "    init: true\n",
            "    init: true\n    pull_policy: always\n",
        ),
    )
    .unwrap();
    let out = app.expect(0, &["sync", src]);
    assert!(
        out.contains(&format!("pull image {image}")) && out.contains("recreate container"),
        "{out}"
    );
    assert_eq!(inspect(&app.container("web"), "{{.Image}}"), new);
}

#[test]
fn a_private_registry_is_pulled_from_with_the_configured_credentials() {
    use mooring_testkit::docker::REGISTRY_PASSWORD;
    let app = TestApp::new("ppull");
    let registry = Registry::start_private();
    let image = registry.reference(&format!("{}/web:1", app.name));
    let login = tempfile::tempdir().unwrap();
    registry.login(login.path());
    // A second tag, for the command line's own pull below.
    let second = registry.reference(&format!("{}/web:2", app.name));
    for image in [&image, &second] {
        docker(&["tag", IMAGE, image]);
        let pushed = std::process::Command::new("docker")
            .arg("--config")
            .arg(login.path())
            .args(["push", image])
            .output()
            .unwrap();
        assert!(pushed.status.success(), "{pushed:?}");
        docker(&["rmi", image]);
    }

    let dir = tempfile::tempdir().unwrap();
    let proj = dir.path().join("proj");
    fs::create_dir(&proj).unwrap();
    fs::write(
        proj.join("compose.yaml"),
        format!(
            "name: {}\nservices:\n  web:\n    image: {image}\n    init: true\n    command: [sleep, \"3600\"]\n",
            app.name
        ),
    )
    .unwrap();
    // Without credentials (no `docker login` for it): refused by the registry, and the
    // sync fails saying so.
    let nobody = tempfile::tempdir().unwrap();
    let out = app.expect_env(
        1,
        &["sync", proj.to_str().unwrap()],
        &[("DOCKER_CONFIG", nobody.path().to_str().unwrap())],
    );
    assert!(
        out.contains(&format!("pulling image {image}"))
            && out.contains("no basic auth credentials"),
        "{out}"
    );
    // The daemon, given the registry's credentials (the password a secret in the
    // environment), pulls it and deploys.
    let s = Server::start_with_env(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\nregistries:\n  \"127.0.0.1:{}\": {{ username: mooring, password: env:REGISTRY_PW }}\napps:\n  - name: {}\n    source: {{ dir: {} }}\n",
            registry.port,
            app.name,
            proj.display()
        ),
        &[("REGISTRY_PW", REGISTRY_PASSWORD)],
    );
    wait_until(60, "the private image deployed", || {
        let a = s.app(&app.name);
        a["sync"] == "Synced" && a["health"] == "Healthy"
    });
    assert!(docker_output(&["image", "inspect", &image])
        .status
        .success());
    assert!(
        !s.logs().contains(REGISTRY_PASSWORD),
        "the password never reaches the log"
    );

    // The command line pulls with what `docker login` stored, as Compose does.
    let other = TestApp::new("ppullcli");
    let cli = dir.path().join("cli");
    fs::create_dir(&cli).unwrap();
    fs::write(
        cli.join("compose.yaml"),
        format!(
            "name: {}\nservices:\n  web:\n    image: {second}\n    init: true\n    command: [sleep, \"3600\"]\n",
            other.name
        ),
    )
    .unwrap();
    let out = other.expect_env(
        0,
        &["sync", cli.to_str().unwrap()],
        &[("DOCKER_CONFIG", login.path().to_str().unwrap())],
    );
    assert!(out.contains(&format!("pull image {second}")), "{out}");
    assert!(!out.contains(REGISTRY_PASSWORD), "{out}");
}
