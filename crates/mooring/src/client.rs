//! `mooring app …`: a client of a running `mooring serve` (the JSON API), printing
//! tables or `-o json`.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::process::ExitCode;
use std::time::Duration;

/// The URL of a daemon listening on `listen` (an unspecified address is reached on
/// loopback).
pub fn url_of(listen: std::net::SocketAddr) -> String {
    let ip = match listen.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    };
    format!("http://{ip}:{}", listen.port())
}

/// Where the server is and who we are.
pub struct Client {
    server: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(server: &str, token: Option<String>) -> Client {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(600))
            .build();
        Client {
            server: server.trim_end_matches('/').to_string(),
            token,
            agent,
        }
    }

    /// A request and its answer, whatever its status: `(status, JSON body or Null)`.
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value)> {
        let url = format!("{}{path}", self.server);
        let mut req = self.agent.request(method, &url);
        if let Some(t) = &self.token {
            req = req.set("authorization", &format!("Bearer {t}"));
        }
        let res = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        let res = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "cannot reach the Mooring server at {}: {e}",
                    self.server
                ))
            }
        };
        let status = res.status();
        let value: Value = res.into_json().unwrap_or(Value::Null);
        Ok((status, value))
    }

    /// The server's URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Whether a daemon answers at the server's address (its liveness probe).
    pub fn answers(&self) -> bool {
        self.send("GET", "/healthz", None).is_ok()
    }

    /// A request and its answer, whatever its status (a refusal before anything ran —
    /// 4xx without `ok` — is an error).
    pub fn operation(&self, path: &str, body: Value) -> Result<(u16, Value)> {
        let (status, v) = self.send("POST", path, Some(body))?;
        if v.get("ok").is_none() {
            self.refused(status, &v)?;
        }
        Ok((status, v))
    }

    /// A request that must succeed: any status from 400 up is an error, with the
    /// server's message.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value)> {
        let (status, value) = self.send(method, path, body)?;
        self.refused(status, &value)?;
        Ok((status, value))
    }

    /// The error for a refused request (status 400 and up).
    fn refused(&self, status: u16, value: &Value) -> Result<()> {
        let message = value["error"].as_str().unwrap_or("");
        match status {
            ..=399 => Ok(()),
            401 | 403 => bail!(
                "{} (server {}; pass --token or set MOORING_TOKEN)",
                if message.is_empty() {
                    "not allowed"
                } else {
                    message
                },
                self.server
            ),
            500.. if message.is_empty() => bail!("server error: HTTP {status}"),
            _ if message.is_empty() => bail!("request refused: HTTP {status}"),
            _ => bail!("{message}"),
        }
    }

    fn get(&self, path: &str) -> Result<Value> {
        Ok(self.call("GET", path, None)?.1)
    }
}

fn short(rev: &Value) -> String {
    rev.as_str()
        .map(|r| mooring_core::short_revision(r).to_string())
        .unwrap_or_else(|| "-".into())
}

pub fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// `app list`.
pub fn list(c: &Client, json_out: bool) -> Result<ExitCode> {
    let v = c.get("/api/v1/apps")?;
    if json_out {
        print_json(&v);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:<10} {:<12} {:<13} {:<8} {:<10} CONDITIONS",
        "APP", "SYNC", "HEALTH", "REVISION", "PINNED", "HOST"
    );
    for a in v["apps"].as_array().into_iter().flatten() {
        let conditions: Vec<&str> = a["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["kind"].as_str())
            .collect();
        println!(
            "{:<20} {:<10} {:<12} {:<13} {:<8} {:<10} {}",
            a["name"].as_str().unwrap_or(""),
            a["sync"].as_str().unwrap_or(""),
            a["health"].as_str().unwrap_or(""),
            short(&a["revision"]),
            if a["pinned"].is_string() { "yes" } else { "" },
            a["host"].as_str().unwrap_or(""),
            conditions.join(",")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `app get NAME`.
pub fn get(c: &Client, name: &str, json_out: bool) -> Result<ExitCode> {
    let a = c.get(&format!("/api/v1/apps/{name}"))?;
    if json_out {
        print_json(&a);
        return Ok(ExitCode::SUCCESS);
    }
    println!("app       {}", a["name"].as_str().unwrap_or(""));
    println!(
        "source    {} (path {:?}, ref {})",
        a["source"].as_str().unwrap_or("-"),
        a["path"].as_str().unwrap_or(""),
        a["ref"].as_str().unwrap_or("default")
    );
    println!(
        "sync      {}    health {}",
        a["sync"].as_str().unwrap_or(""),
        a["health"].as_str().unwrap_or("")
    );
    println!(
        "revision  {}",
        a["revision_describe"].as_str().unwrap_or("-")
    );
    if let Some(p) = a["pinned"].as_str() {
        println!("pinned    {p}");
    }
    for cond in a["conditions"].as_array().into_iter().flatten() {
        println!(
            "  ! {}: {}",
            cond["kind"].as_str().unwrap_or(""),
            cond["message"].as_str().unwrap_or("")
        );
    }
    println!("resources");
    for r in a["resources"].as_array().into_iter().flatten() {
        println!(
            "  {:<32} {:<12} {}",
            r["container"].as_str().unwrap_or(""),
            r["health"].as_str().unwrap_or(""),
            r["message"].as_str().unwrap_or("")
        );
    }
    println!("recent operations");
    print_operations(&a["operations"]);
    Ok(ExitCode::SUCCESS)
}

fn print_operations(ops: &Value) {
    for op in ops.as_array().into_iter().flatten() {
        let result = op["result"].as_str().unwrap_or("running");
        let started = op["started_at"]
            .as_i64()
            .map(|t| mooring_core::clock::UtcTime::from_unix_ms(t).to_string())
            .unwrap_or_default();
        println!(
            "  #{:<5} {started}  {:<10} {:<12} {:<13} {} action(s){}{}",
            op["id"],
            op["trigger"].as_str().unwrap_or(""),
            result,
            short(&op["revision"]),
            op["actions"].as_array().map(Vec::len).unwrap_or(0),
            op["requested_by"]
                .as_str()
                .map(|b| format!("  by {b}"))
                .unwrap_or_default(),
            op["error"]
                .as_str()
                .map(|e| format!("  error: {e}"))
                .unwrap_or_default()
        );
    }
}

/// `app diff NAME`: exit 0 in sync, 2 out of sync.
pub fn diff(c: &Client, name: &str, json_out: bool) -> Result<ExitCode> {
    let d = c.get(&format!("/api/v1/apps/{name}/diff"))?;
    if json_out {
        print_json(&d);
    } else {
        println!(
            "app {} at {}",
            name,
            d["revision_describe"].as_str().unwrap_or("")
        );
        for step in d["steps"].as_array().into_iter().flatten() {
            crate::print::step(
                step["verb"].as_str().unwrap_or(""),
                step["text"].as_str().unwrap_or(""),
                step["reason"].as_str().unwrap_or(""),
            );
        }
        for o in d["plan"]["orphans_kept"].as_array().into_iter().flatten() {
            println!(
                "  ! orphan container {} kept (prune is off)",
                o.as_str().unwrap_or("")
            );
        }
        for n in d["plan"]["notes"].as_array().into_iter().flatten() {
            println!("  note: {}", n.as_str().unwrap_or(""));
        }
        println!(
            "{}",
            if d["in_sync"] == json!(true) {
                "in sync."
            } else {
                "out of sync."
            }
        );
    }
    Ok(if d["in_sync"] == json!(true) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// `app sync NAME [--revision REV]`, `app rollback NAME --to REV`: waits for the operation.
pub fn operate(
    c: &Client,
    name: &str,
    path: &str,
    body: Value,
    json_out: bool,
) -> Result<ExitCode> {
    let (status, v) = c.operation(&format!("/api/v1/apps/{name}/{path}"), body)?;
    let ok = status < 300 && v["ok"] == json!(true);
    if !ok {
        eprintln!(
            "error: {name}: {} (HTTP {status})",
            v["error"].as_str().unwrap_or("the operation failed")
        );
    }
    if json_out {
        print_json(&v);
    } else {
        let s = &v["status"];
        if ok {
            println!(
                "{name}: {} {} at {}",
                s["sync"].as_str().unwrap_or(""),
                s["health"].as_str().unwrap_or(""),
                s["revision_describe"].as_str().unwrap_or("-")
            );
            if let Some(p) = s["pinned"].as_str() {
                println!(
                    "pinned to {p}: auto-sync holds this revision until `mooring app unpin {name}`"
                );
            }
        }
        if let Some(w) = v.get("data_warning") {
            println!("! data: {}", w["message"].as_str().unwrap_or(""));
            for b in w["backups"].as_array().into_iter().flatten() {
                println!(
                    "  backup {} of {} (mooring backup restore {})",
                    b["id"].as_str().unwrap_or(""),
                    b["volume"].as_str().unwrap_or(""),
                    b["id"].as_str().unwrap_or("")
                );
            }
        }
        // Exactly the operation this request started; none when nothing needed doing.
        let op = &v["operation"];
        match op["id"].as_i64() {
            Some(id) => {
                println!(
                    "operation #{id} ({}, {})",
                    op["trigger"].as_str().unwrap_or(""),
                    crate::print::count(
                        op["actions"].as_array().map_or(0, Vec::len),
                        "action",
                        "actions"
                    )
                );
                for a in op["actions"].as_array().into_iter().flatten() {
                    let mark = if a["error"].is_null() { "✓" } else { "✗" };
                    println!(
                        "  {mark} {}  {}ms · {}",
                        a["resource"].as_str().unwrap_or(""),
                        a["duration_ms"],
                        a["reason"].as_str().unwrap_or("")
                    );
                }
            }
            None if ok => println!("nothing to do: the host already matches"),
            None => {}
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `app pin NAME [--revision REV]`.
pub fn pin(c: &Client, name: &str, revision: Option<&str>) -> Result<ExitCode> {
    let (_, v) = c.call(
        "POST",
        &format!("/api/v1/apps/{name}/pin"),
        Some(json!({ "revision": revision })),
    )?;
    println!(
        "{name}: pinned to {}; auto-sync holds it until `mooring app unpin {name}`.",
        v["pinned"].as_str().unwrap_or("?")
    );
    Ok(ExitCode::SUCCESS)
}

/// `app hook-test`: posts a signed sample delivery; the server's answer is printed,
/// and a refusal exits 1.
pub fn hook_test(
    c: &Client,
    provider: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<ExitCode> {
    let url = format!("{}/hooks/{provider}", c.server);
    let mut req = c.agent.post(&url).set("content-type", "application/json");
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let res = match req.send_bytes(body) {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => bail!("cannot reach the Mooring server at {}: {e}", c.server),
    };
    let status = res.status();
    let v: Value = res.into_json().unwrap_or(Value::Null);
    let message = v["message"].as_str().unwrap_or("(no message)");
    if status >= 400 {
        eprintln!("error: the server refused the delivery ({status}): {message}");
        return Ok(ExitCode::from(1));
    }
    println!("{provider} delivery accepted ({status}): {message}");
    Ok(ExitCode::SUCCESS)
}

/// `app reload [--force]`.
pub fn reload(c: &Client, force: bool, json_out: bool) -> Result<ExitCode> {
    let (_, v) = c.call("POST", "/api/v1/reload", Some(json!({ "force": force })))?;
    if json_out {
        print_json(&v);
    } else {
        let apps: Vec<&str> = v["apps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        println!(
            "configuration reloaded: {} ({})",
            crate::print::count(apps.len(), "app", "apps"),
            apps.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `host list`.
pub fn hosts(c: &Client, json_out: bool) -> Result<ExitCode> {
    let (_, v) = c.call("GET", "/api/v1/hosts", None)?;
    if json_out {
        print_json(&v);
        return Ok(ExitCode::SUCCESS);
    }
    for h in v["hosts"].as_array().into_iter().flatten() {
        print_host(h);
    }
    Ok(ExitCode::SUCCESS)
}

/// `host accept NAME [--engine-id ID]`.
pub fn accept_host(
    c: &Client,
    name: &str,
    engine_id: Option<&str>,
    json_out: bool,
) -> Result<ExitCode> {
    let (_, v) = c.call(
        "POST",
        &format!("/api/v1/hosts/{name}/accept"),
        Some(json!({ "engine_id": engine_id })),
    )?;
    if json_out {
        print_json(&v);
    } else {
        println!(
            "host {name}: Docker Engine {} accepted; its apps are deployed to it again",
            v["engine_id"].as_str().unwrap_or("?")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_host(h: &Value) {
    let text = |k: &str| h[k].as_str().unwrap_or_default().to_string();
    let apps: Vec<&str> = h["apps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    println!(
        "{}  {}  {}  apps: {}",
        text("name"),
        text("endpoint"),
        text("condition"),
        if apps.is_empty() {
            "-".to_string()
        } else {
            apps.join(", ")
        }
    );
    if let Some(m) = h["message"].as_str() {
        println!("  {m}");
    }
}

/// `app unpin NAME`.
pub fn unpin(c: &Client, name: &str) -> Result<ExitCode> {
    c.call(
        "POST",
        &format!("/api/v1/apps/{name}/unpin"),
        Some(json!({})),
    )?;
    println!("{name}: unpinned; auto-sync follows the source again.");
    Ok(ExitCode::SUCCESS)
}

/// `app history NAME`.
pub fn history(c: &Client, name: &str, json_out: bool) -> Result<ExitCode> {
    let v = c
        .get(&format!("/api/v1/apps/{name}/operations?limit=50"))
        .context("reading history")?;
    if json_out {
        print_json(&v);
    } else {
        print_operations(&v["operations"]);
    }
    Ok(ExitCode::SUCCESS)
}

/// `app logs NAME [SERVICE] [-f] [--tail N]`: the server's text copied to stdout as it
/// comes (no read timeout while following).
pub fn logs(
    c: &Client,
    name: &str,
    service: Option<&str>,
    follow: bool,
    tail: usize,
) -> Result<ExitCode> {
    let mut url = format!(
        "{}/api/v1/apps/{name}/logs?tail={tail}&follow={follow}",
        c.server
    );
    if let Some(s) = service {
        url.push_str(&format!("&service={s}"));
    }
    // A follower waits for lines as long as it takes; only connecting is bounded.
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(10))
        .build();
    let mut req = agent.get(&url);
    if let Some(t) = &c.token {
        req = req.set("authorization", &format!("Bearer {t}"));
    }
    let res = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(status, r)) => {
            let v: Value = r.into_json().unwrap_or(Value::Null);
            c.refused(status, &v)?;
            bail!("request refused: HTTP {status}");
        }
        Err(e) => bail!("cannot reach the Mooring server at {}: {e}", c.server),
    };
    let mut body = res.into_reader();
    let mut out = std::io::stdout().lock();
    match std::io::copy(&mut body, &mut out) {
        Ok(_) => Ok(ExitCode::SUCCESS),
        // The reader went away (`| head`): done.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => bail!("reading the logs of {name}: {e}"),
    }
}
