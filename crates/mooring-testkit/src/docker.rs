//! The machine's real Docker daemon, through the `docker` CLI: the local test image,
//! unique app names, and clean-up of everything an app created, even on failure.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The image every test uses, built locally from Debian's busybox-static.
pub const IMAGE: &str = "mooring.local/busybox:latest";

/// Runs `docker ARGS`, returning stdout; panics on failure.
pub fn docker(args: &[&str]) -> String {
    let out = docker_output(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs `docker ARGS` and returns the raw output (for commands allowed to fail).
pub fn docker_output(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the `docker` CLI is required for these tests")
}

/// Checks the Docker daemon answers and the test image exists (building it if not).
/// Fails — never skips — when Docker is missing: these tests exist to exercise it.
pub fn require() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let info = docker_output(&["info", "--format", "{{.ServerVersion}}"]);
        assert!(
            info.status.success(),
            "these tests need a running Docker daemon (CI={}): {}",
            std::env::var("CI").unwrap_or_default(),
            String::from_utf8_lossy(&info.stderr)
        );
        run_script("busybox-image.sh");
    });
}

/// Runs `scripts/NAME` of the workspace; fails the test when it fails.
fn run_script(name: &str) {
    let script = workspace_root().join("scripts").join(name);
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .expect("bash is required");
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// [`require`], and the local image `mooring.local/sqlite:latest` (busybox with
/// sqlite3: a real database engine, no registry), built if missing.
pub fn require_sqlite_image() -> &'static str {
    static READY: OnceLock<()> = OnceLock::new();
    require();
    READY.get_or_init(|| run_script("sqlite-image.sh"));
    "mooring.local/sqlite:latest"
}

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A unique app name for this test process.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes every container, network, volume and image tag of an app when dropped.
/// (Image tags whose name contains the app's unique name are removed too.)
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        remove_app(&self.0);
    }
}

/// Removes what carries the app's label or its Compose project label (containers,
/// networks, volumes: Compose v2 made some in the tests that compare with it) and
/// images tagged `mooring.local/<app>`.
pub fn remove_app(app: &str) {
    for label in [
        format!("label=io.mooring.app={app}"),
        format!("label=com.docker.compose.project={app}"),
    ] {
        let ids = docker_output(&["ps", "-aq", "--filter", &label]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = docker_output(&["rm", "-f", "-v", id]);
        }
        let nets = docker_output(&["network", "ls", "-q", "--filter", &label]);
        for id in String::from_utf8_lossy(&nets.stdout).split_whitespace() {
            let _ = docker_output(&["network", "rm", id]);
        }
        let vols = docker_output(&["volume", "ls", "-q", "--filter", &label]);
        for id in String::from_utf8_lossy(&vols.stdout).split_whitespace() {
            let _ = docker_output(&["volume", "rm", "-f", id]);
        }
    }
    let images = docker_output(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    for tag in String::from_utf8_lossy(&images.stdout)
        .lines()
        .filter(|t| t.contains(app))
    {
        let _ = docker_output(&["rmi", "-f", tag]);
    }
}

/// `name state` of the app's containers, sorted.
pub fn containers(app: &str) -> Vec<String> {
    let label = format!("label=io.mooring.app={app}");
    let out = docker(&[
        "ps",
        "-a",
        "--filter",
        &label,
        "--format",
        "{{.Names}} {{.State}}",
    ]);
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// `docker inspect --format FORMAT NAME`.
pub fn inspect(name: &str, format: &str) -> String {
    docker(&["inspect", "--format", format, name])
}

/// A private registry (Debian's `docker-registry`) on 127.0.0.1, storing in a temp
/// folder, killed on drop. Docker treats loopback registries as insecure by default,
/// so `docker push 127.0.0.1:PORT/...` works without TLS.
pub struct Registry {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    /// The address it listens on (127.0.0.1, or this machine's port on a test Swarm's
    /// switch).
    pub ip: String,
    pub port: u16,
}

/// The account of a registry started with [`Registry::start_private`].
pub const REGISTRY_USER: &str = "mooring";
/// Its password (a word no log holds by chance).
pub const REGISTRY_PASSWORD: &str = "reg-pw-5Kq9Zt";
/// `REGISTRY_USER:bcrypt(REGISTRY_PASSWORD)`, as `htpasswd -B` writes it (the registry
/// takes bcrypt only).
const HTPASSWD: &str = "mooring:$2b$05$Mooringtestsaltsaltsaer5WLvA44QyqzlR1XG5WK53GlgzjzQFK";

impl Registry {
    /// Starts the registry; panics (never skips) when `docker-registry` is missing.
    pub fn start() -> Registry {
        Registry::start_with(false, "127.0.0.1")
    }

    /// A registry that serves [`REGISTRY_USER`] alone (basic auth, as a private
    /// registry does); log in with [`Registry::login`].
    pub fn start_private() -> Registry {
        Registry::start_with(true, "127.0.0.1")
    }

    /// A private registry listening on `ip` (an address of this machine's that only
    /// namespaces the test made reach, such as [`crate::swarm::Swarm::host_ip`]).
    pub fn start_private_at(ip: &str) -> Registry {
        Registry::start_with(true, ip)
    }

    /// Logs a Docker CLI configuration folder `config` in (`docker --config FOLDER
    /// login`), for pushes to a private registry.
    pub fn login(&self, config: &std::path::Path) {
        self.login_with(Command::new("docker"), config)
    }

    /// [`Registry::login`] with the Docker CLI `docker` (e.g. one aimed at another
    /// Engine).
    pub fn login_with(&self, mut docker: Command, config: &std::path::Path) {
        use std::io::Write;
        let mut child = docker
            .arg("--config")
            .arg(config)
            .args(["login", "--username", REGISTRY_USER, "--password-stdin"])
            .arg(format!("{}:{}", self.ip, self.port))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(REGISTRY_PASSWORD.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "docker login");
    }

    fn start_with(private: bool, ip: &str) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind((ip, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {ip}:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        if private {
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{HTPASSWD}\n")).unwrap();
            let mut text = std::fs::read_to_string(&config).unwrap();
            text += &format!(
                "auth:\n  htpasswd:\n    realm: mooring-test\n    path: {}\n",
                htpasswd.display()
            );
            std::fs::write(&config, text).unwrap();
        }
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("Debian's `docker-registry` is required for the pull tests (apt-get install docker-registry)");
        let mut registry = Registry {
            child,
            _dir: dir,
            ip: ip.to_string(),
            port,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect((ip, port)).is_err() {
            if let Some(status) = registry.child.try_wait().unwrap() {
                panic!("docker-registry exited early: {status}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "docker-registry did not start listening"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        registry
    }

    /// `IP:PORT/NAME`.
    pub fn reference(&self, name: &str) -> String {
        format!("{}:{}/{name}", self.ip, self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
