//! A real `mooring serve` for tests: its own config, data directory and loopback port;
//! killed on drop. Every JSON answer `Server::call` receives is checked against its
//! route's OpenAPI schema (`schema`).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub child: Option<Child>,
    pub port: u16,
    pub config: PathBuf,
    pub log: PathBuf,
    pub admin: String,
    /// Extra variables in the daemon's environment.
    pub env: Vec<(String, String)>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// Writes `mooring.yaml` (`{port}` is replaced) into `dir` and starts the daemon.
    pub fn start(dir: &Path, config: &str) -> Server {
        Server::start_with_env(dir, config, &[])
    }

    /// Like [`Server::start`], with extra variables in the daemon's environment.
    pub fn start_with_env(dir: &Path, config: &str, env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let path = dir.join("mooring.yaml");
        std::fs::write(&path, config.replace("{port}", &port.to_string())).unwrap();
        let mut s = Server {
            child: None,
            port,
            config: path,
            log: dir.join("serve.log"),
            admin: String::new(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        s.spawn();
        s.admin = s.token("admin");
        s
    }

    /// Starts (again) the daemon process with the same config and data.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_mooring"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("MOORING_LOG", "debug")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = ureq::get(&self.url("/readyz")).call() {
                if r.status() == 200 {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("mooring serve exited early ({status}):\n{}", self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "mooring serve not ready:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `mooring token create` against this daemon's store.
    pub fn token(&self, role: &str) -> String {
        self.token_with(&["--role", role])
    }

    /// `mooring token create ARGS` against this daemon's store (must succeed).
    pub fn token_with(&self, args: &[&str]) -> String {
        let out = self.token_command(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `mooring token create ARGS --config CONFIG`, whatever its outcome.
    pub fn token_command(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_mooring"))
            .args(["token", "create"])
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap()
    }

    /// A request with an optional token: `(status, JSON body or Null)`.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = ureq::request(method, &self.url(path)).timeout(Duration::from_secs(120));
        if let Some(t) = token {
            req = req.set("authorization", &format!("Bearer {t}"));
        }
        let res = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        let res = match res {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = res.status();
        let text = res.into_string().unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        super::schema::check_answer(method, path, status, &value);
        (status, value)
    }

    /// A POST sent from the local address `from` (any of 127/8 on Linux): the
    /// daemon sees that source address. Returns the status and the whole answer
    /// (header lines and body).
    pub fn post_from(
        &self,
        from: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let port = self.port;
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        let from: std::net::IpAddr = from.parse().unwrap();
        let answer = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.bind((from, 0).into()).unwrap();
                let mut stream = tokio::time::timeout(
                    Duration::from_secs(10),
                    socket.connect(([127, 0, 0, 1], port).into()),
                )
                .await
                .expect("connect timed out")
                .unwrap();
                stream.write_all(request.as_bytes()).await.unwrap();
                let mut answer = Vec::new();
                tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
                    .await
                    .expect("answer timed out")
                    .unwrap();
                String::from_utf8_lossy(&answer).into_owned()
            });
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
        (status, answer)
    }

    /// How many operations app `app` has recorded.
    pub fn op_count(&self, app: &str) -> usize {
        self.get(&format!("/api/v1/apps/{app}/operations"))["operations"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0)
    }

    pub fn get(&self, path: &str) -> Value {
        let (status, v) = self.call("GET", path, Some(&self.admin), None);
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    /// The app's status from the API.
    pub fn app(&self, name: &str) -> Value {
        self.get(&format!("/api/v1/apps/{name}"))
    }

    /// `mooring app ARGS` against this daemon, with the admin token.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        self.command(&[&["app"][..], args].concat())
    }

    /// `mooring ARGS` against this daemon, with the admin token.
    pub fn command(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_mooring"))
            .args(args)
            .env("MOORING_SERVER", self.url(""))
            .env("MOORING_TOKEN", &self.admin)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM, and the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "mooring serve did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `f` every 100 ms until it is true; panics with `what` after `secs`.
pub fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}
