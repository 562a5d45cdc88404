//! Networks, aliases, published ports and the other container settings, checked on the
//! real containers; and no false drift: a second sync of the same project is a no-op.

use crate::common::*;
use std::fs;
use std::io::{Read, Write};

#[test]
fn settings_reach_the_containers_without_false_drift() {
    let app = TestApp::new("mnet");
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("www")).unwrap();
    fs::write(dir.path().join("www/index.html"), "from-api").unwrap();
    let compose = format!(
        r#"name: {app}
services:
  api:
    image: {IMAGE}
    init: true
    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
    volumes: ["./www:/www:ro"]
    networks:
      back:
        aliases: [backend]
    ports: ["127.0.0.1::8080"]
  client:
    image: {IMAGE}
    init: true
    command: ["sleep", "3600"]
    networks: [front, back]
    extra_hosts: ["gateway.test:10.1.2.3"]
    labels: {{team: ops}}
    hostname: clienthost
    tmpfs: ["/scratch"]
    read_only: true
    cap_drop: [NET_RAW]
    user: "1000"
    working_dir: /tmp
    stop_grace_period: 2s
    restart: on-failure:3
    deploy:
      resources:
        limits: {{cpus: "0.5", memory: 32m}}
networks:
  front:
  back:
    labels: {{tier: back}}
"#,
        app = app.name
    );
    fs::write(dir.path().join("compose.yaml"), compose).unwrap();
    let src = dir.path().to_str().unwrap();
    app.expect(0, &["sync", src]);
    let (api, client) = (app.container("api"), app.container("client"));

    // Alias on the shared network.
    let page = docker(&["exec", &client, "wget", "-qO-", "http://backend:8080/"]);
    assert_eq!(page, "from-api");
    // Published on a random loopback port.
    let port = docker(&["port", &api, "8080/tcp"]);
    let addr = port.lines().next().unwrap().to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.ends_with("from-api"), "{body}");

    let nets = inspect(
        &client,
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
    );
    assert_eq!(nets.trim(), format!("{0}_back {0}_front", app.name));
    assert_eq!(
        inspect(&format!("{}_back", app.name), "{{index .Labels \"tier\"}}"),
        "back"
    );
    assert!(docker(&["exec", &client, "cat", "/etc/hosts"]).contains("10.1.2.3\tgateway.test"));
    assert_eq!(docker(&["exec", &client, "hostname"]), "clienthost");
    assert!(
        !docker_output(&["exec", &client, "touch", "/x"])
            .status
            .success(),
        "read-only root"
    );
    docker(&["exec", &client, "touch", "/scratch/x"]);
    assert_eq!(docker(&["exec", &client, "id", "-u"]), "1000");
    assert_eq!(docker(&["exec", &client, "pwd"]), "/tmp");
    assert_eq!(
        inspect(&client, "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}} {{.HostConfig.CapDrop}} {{.Config.StopTimeout}} {{index .Config.Labels \"team\"}}"),
        "33554432 500000000 on-failure:3 [NET_RAW] 2 ops"
    );

    let out = app.expect(0, &["sync", src]);
    assert!(out.contains("nothing to do"), "no false drift: {out}");
    app.expect(0, &["diff", src]);
}

/// A published port another container holds: the sync is refused before anything is
/// removed, names the blocker, and the running container keeps serving.
#[test]
fn a_port_held_by_another_container_refuses_the_sync_before_removing_anything() {
    let app = TestApp::new("mport");
    let blocker = format!("{}-blocker", app.name);
    // A container outside the app, removed by name when the test ends.
    docker(&[
        "run",
        "-d",
        "--name",
        &blocker,
        "--label",
        &format!("io.mooring.test-blocker={}", app.name),
        "-p",
        "127.0.0.1:18391:80",
        IMAGE,
        "sleep",
        "3600",
    ]);
    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = docker_output(&["rm", "-f", &self.0]);
        }
    }
    let _gone = Gone(blocker.clone());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let file = |port: u16| {
        format!("name: {}\nservices:\n  web:\n    image: {IMAGE}\n    init: true\n    command: [sleep, \"3600\"]\n    ports: [\"127.0.0.1:{port}:80\"]\n", app.name)
    };
    fs::write(dir.path().join("compose.yaml"), file(18390)).unwrap();
    app.expect(0, &["sync", d]);
    let web = format!("{}-web-1", app.name);
    let id = inspect(&web, "{{.Id}}");
    fs::write(dir.path().join("compose.yaml"), file(18391)).unwrap();
    let out = app.expect(1, &["sync", d]);
    assert!(
        out.contains(&format!(
            "publishes port 18391/tcp, which container {blocker} (not of this app) already holds"
        )),
        "{out}"
    );
    assert_eq!(
        inspect(&web, "{{.Id}}"),
        id,
        "the running container was not touched"
    );
    assert_eq!(inspect(&web, "{{.State.Status}}").trim(), "running");
}
