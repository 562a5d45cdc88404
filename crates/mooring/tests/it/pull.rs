//! Image pulls from a real registry (Debian's `docker-registry` on 127.0.0.1): a missing
//! image is pulled before anything is created, and `pull_policy: always` picks up a new
//! image pushed behind the same tag and recreates the container on it.

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
