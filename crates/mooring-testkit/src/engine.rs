//! More Docker Engines for tests: a real `dockerd` in a network namespace the test
//! makes, reached as another machine would be. The namespace gets a veth pair (the host
//! end `10.231.A.B+1`, the engine `…+2`, a /30 of its own per engine); `dockerd` is
//! started inside it with `nsenter --net=/run/netns/NAME` (not `ip netns exec`, which
//! remounts /sys and hides the cgroup mounts) and in a mount namespace of its own whose
//! `/etc/docker` is the engine's (so its identity, the engine id, is its own; its
//! mounts stay out of the machine's table), with its own data root, exec root, pid file,
//! unix socket, a config file without `data-root`, the host's storage driver and a
//! cgroup parent of its own. It also listens on `tcp://IP:2376` with TLS: a CA, a
//! server certificate for its IP and a client certificate, all made by `openssl` for
//! this engine. The local test image is copied in (`docker save | docker load`).
//! Everything is torn down on drop: the daemon (its containers stop with it), the
//! namespace and its veth, the folders.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A second (third…) Docker Engine in its own network namespace.
pub struct RemoteEngine {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// The namespace's name (`/run/netns/NAME`).
    pub netns: String,
    /// The engine's address, as other machines reach it.
    pub ip: String,
    /// Its unix socket on this machine (for the test's own checks).
    pub socket: PathBuf,
    /// The TLS port.
    pub port: u16,
    driver: String,
}

impl RemoteEngine {
    /// Starts engine number `n` (0–3) of this test process (its addresses and names
    /// come from the process id and `n`: unique while each test runs in a process of
    /// its own, as under nextest).
    pub fn start(n: u32) -> RemoteEngine {
        assert!(n < 4);
        for tool in ["ip", "nsenter", "dockerd", "openssl"] {
            assert!(
                Command::new("sh")
                    .args(["-c", &format!("command -v {tool}")])
                    .output()
                    .is_ok_and(|o| o.status.success()),
                "`{tool}` is required for the multi-host tests"
            );
        }
        let id = engine_id(n);
        let (a, b) = (id / 64, (id % 64) * 4);
        let host_ip = format!("10.231.{a}.{}", b + 1);
        let ip = format!("10.231.{a}.{}", b + 2);
        let netns = format!("mooring-e{id}");
        let (veth_host, veth_ns) = (format!("mh{id}"), format!("mn{id}"));
        run("ip", &["netns", "add", &netns]);
        run(
            "ip",
            &[
                "link", "add", &veth_host, "type", "veth", "peer", "name", &veth_ns,
            ],
        );
        run("ip", &["link", "set", &veth_ns, "netns", &netns]);
        run(
            "ip",
            &["addr", "add", &format!("{host_ip}/30"), "dev", &veth_host],
        );
        run("ip", &["link", "set", &veth_host, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", netns.as_str()];
            all.extend_from_slice(args);
            run("ip", &all);
        };
        inside(&["ip", "addr", "add", &format!("{ip}/30"), "dev", &veth_ns]);
        inside(&["ip", "link", "set", &veth_ns, "up"]);
        inside(&["ip", "link", "set", "lo", "up"]);
        Self::start_in(netns, ip)
    }

    /// Starts an engine in the network namespace `netns` (made and wired by the
    /// caller; dropped with the engine) at address `ip`.
    pub(crate) fn start_in(netns: String, ip: String) -> RemoteEngine {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        certificates(d, &ip);
        // A registry on this machine's port of a test Swarm's switch (10.232.S.1) is
        // plain HTTP, as one on loopback is for the machine's own Engine.
        fs::write(
            d.join("daemon.json"),
            "{\"insecure-registries\": [\"10.232.0.0/16\"]}\n",
        )
        .unwrap();
        let driver = String::from_utf8(
            Command::new("docker")
                .args(["info", "--format", "{{.Driver}}"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .trim()
        .to_string();
        let socket = d.join("docker.sock");
        let port = 2376;
        let mut engine = RemoteEngine {
            child: None,
            dir,
            netns,
            ip,
            socket,
            port,
            driver,
        };
        engine.spawn();
        engine.load_test_image();
        engine
    }

    fn spawn(&mut self) {
        let driver = self.driver.clone();
        let d = self.dir.path();
        let log = fs::File::create(d.join("dockerd.log")).unwrap();
        let p = |name: &str| d.join(name).display().to_string();
        // Its own /etc/docker (in a mount namespace of its own), so its own identity,
        // as another machine has: Engine 20.10 derives its id from `key.json` there
        // (newer Engines keep an `engine-id` file in the data root, its own too).
        fs::create_dir_all(d.join("etc")).unwrap();
        let dockerd = [
            "exec dockerd",
            &format!("--data-root '{}' --exec-root '{}'", p("data"), p("exec")),
            &format!(
                "--pidfile '{}' --config-file '{}'",
                p("dockerd.pid"),
                p("daemon.json")
            ),
            &format!(
                "-H 'unix://{}' -H 'tcp://{}:{}'",
                self.socket.display(),
                self.ip,
                self.port
            ),
            &format!("--tlsverify --tlscacert '{}'", p("ca.pem")),
            &format!(
                "--tlscert '{}' --tlskey '{}'",
                p("server.pem"),
                p("server-key.pem")
            ),
            &format!(
                "--storage-driver {driver} --cgroup-parent {}-cg",
                self.netns
            ),
        ]
        .join(" ");
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.netns))
            .args(["unshare", "--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount --bind '{}' /etc/docker && {dockerd}",
                p("etc")
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("cannot start dockerd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.docker_ok(&["version"]) {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("dockerd exited early ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn docker_ok(&self, args: &[&str]) -> bool {
        self.docker_command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// `docker` against this engine's unix socket.
    pub fn docker_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args);
        c
    }

    /// `docker ARGS` against this engine; its stdout (must succeed).
    pub fn docker(&self, args: &[&str]) -> String {
        let out = self.docker_command(args).output().unwrap();
        assert!(
            out.status.success(),
            "docker {args:?} on {}: {}",
            self.ip,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn load_test_image(&self) {
        let sh = format!(
            "docker save {} | docker -H unix://{} load -q",
            crate::docker::IMAGE,
            self.socket.display()
        );
        run("sh", &["-c", &sh]);
    }

    /// Its entry under `hosts:` in `mooring.yaml`, named `name`: the TLS endpoint with
    /// the client's certificate files.
    pub fn host_yaml(&self, name: &str) -> String {
        let f = |n: &str| format!("file:{}", self.tls_file(n).display());
        format!(
            "  {name}:\n    docker: {}\n    tls: {{ ca: {}, cert: {}, key: {} }}\n",
            self.tcp(),
            f("ca.pem"),
            f("cert.pem"),
            f("key.pem")
        )
    }

    /// The Docker CLI's TLS settings for this engine (`DOCKER_CERT_PATH` holds the
    /// client's `ca.pem`, `cert.pem` and `key.pem`).
    pub fn cli_env(&self) -> [(&'static str, String); 2] {
        [
            ("DOCKER_CERT_PATH", self.dir.path().display().to_string()),
            ("DOCKER_TLS_VERIFY", "1".to_string()),
        ]
    }

    /// The engine's `tcp://IP:PORT`.
    pub fn tcp(&self) -> String {
        format!("tcp://{}:{}", self.ip, self.port)
    }

    /// A file of its TLS material: `ca.pem`, `cert.pem`, `key.pem` (the client's),
    /// `server.pem`, `other-ca.pem` (a CA that signed nothing of this engine's).
    pub fn tls_file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The daemon's log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// Starts the daemon again on its data (after [`RemoteEngine::stop`]).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the engine is running");
        self.spawn();
    }

    /// The machine replaced: stopped, its identity and data gone, started afresh
    /// (another engine id; the test image loaded again).
    pub fn replace(&mut self) {
        self.stop();
        let d = self.dir.path();
        let _ = fs::remove_dir_all(d.join("etc"));
        let _ = fs::remove_dir_all(d.join("data"));
        self.spawn();
        self.load_test_image();
    }

    /// The engine's id (`docker info`).
    pub fn id(&self) -> String {
        self.docker(&["info", "--format", "{{.ID}}"])
            .trim()
            .to_string()
    }

    /// Stops the daemon (its containers stop with it), as a machine going down.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RemoteEngine {
    fn drop(&mut self) {
        self.stop();
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.netns])
            .status();
        // Mounts the daemon left (it unmounts on a clean stop) would keep the folder.
        let _ = Command::new("sh")
            .args([
                "-c",
                &format!(
                    "grep -o ' {}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l",
                    self.dir.path().display()
                ),
            ])
            .status();
    }
}

/// The number behind engine `n`'s names and addresses in this test process.
pub(crate) fn engine_id(n: u32) -> u32 {
    (std::process::id() % 4000) * 4 + n
}

pub(crate) fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, the server's certificate for `ip`, a client certificate, and another CA.
fn certificates(d: &Path, ip: &str) {
    let sh = format!(
        r#"set -e
cd '{dir}'
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mooring-test-ca -keyout ca-key.pem -out ca.pem 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=impostor-ca -keyout other-ca-key.pem -out other-ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN={ip} -keyout server-key.pem -out server.csr 2>/dev/null
printf 'subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile server.ext -out server.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=mooring-client -keyout key.pem -out client.csr 2>/dev/null
printf 'extendedKeyUsage=clientAuth\n' > client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile client.ext -out cert.pem 2>/dev/null
"#,
        dir = d.display()
    );
    run("sh", &["-c", &sh]);
}
