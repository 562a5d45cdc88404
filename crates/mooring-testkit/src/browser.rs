//! Headless Chromium for the web UI's tests: Debian's `chromium` driven by its
//! `chromedriver` (package `chromium-driver`) on 127.0.0.1. Missing binaries fail the
//! test with the packages to install; the driver is killed on drop.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `chromedriver`.
pub struct Chromedriver {
    child: Child,
    /// `http://127.0.0.1:PORT`, for a WebDriver client.
    pub url: String,
    /// The Chromium binary the sessions should start.
    pub chromium: PathBuf,
}

fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([
            PathBuf::from("/usr/bin"),
            PathBuf::from("/usr/lib/chromium"),
        ])
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

impl Chromedriver {
    /// Starts `chromedriver` on a free loopback port and waits until it answers.
    pub fn start() -> Chromedriver {
        let driver = find(&["chromedriver"]).unwrap_or_else(|| {
            panic!(
                "the web UI tests need chromedriver (CI={}): apt-get install chromium chromium-driver",
                std::env::var("CI").unwrap_or_default()
            )
        });
        let chromium = find(&["chromium", "chromium-browser"]).unwrap_or_else(|| {
            panic!("the web UI tests need Chromium: apt-get install chromium chromium-driver")
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on 127.0.0.1:{port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Chromedriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            chromium,
        }
    }

    /// The `goog:chromeOptions` arguments for a headless window of `width`×`height`.
    pub fn args(width: u32, height: u32) -> Vec<String> {
        vec![
            "--headless=new".into(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            format!("--window-size={width},{height}"),
        ]
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where tests save screenshots: `target/ui-screenshots/` of the workspace.
pub fn screenshot_dir() -> PathBuf {
    let dir = crate::docker::workspace_root().join("target/ui-screenshots");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// Writes a PNG screenshot as `name.png` into [`screenshot_dir`] and returns its path.
pub fn save_screenshot(name: &str, png: &[u8]) -> PathBuf {
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

/// True when `path` holds a PNG file.
pub fn is_png(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.starts_with(b"\x89PNG"))
}
