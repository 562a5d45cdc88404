//! `mooring backup create|restore` of an app the daemon manages, while it runs: sent to
//! the daemon, which runs them as operations of the app (under its lock, so self-heal
//! does not start the writers a backup stopped; recorded in its history). The output
//! matches the local path's (`backup.rs`).

use crate::client::{print_json, Client};
use anyhow::Result;
use serde_json::{json, Value};
use std::process::ExitCode;

/// Prints the operation a backup or restore recorded, and its error; the exit code.
fn finish(v: &Value, status: u16) -> ExitCode {
    let op = &v["operation"];
    if let Some(id) = op["id"].as_i64() {
        eprintln!(
            "  operation #{id} of app {} ({}), in its history",
            op["app"].as_str().unwrap_or(""),
            op["trigger"].as_str().unwrap_or("")
        );
    }
    for a in op["actions"].as_array().into_iter().flatten() {
        if let Some(e) = a["error"].as_str() {
            eprintln!("  ✗ {}: {e}", a["resource"].as_str().unwrap_or(""));
        }
    }
    if status < 300 && v["ok"] == json!(true) {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "error: {} (HTTP {status})",
            v["error"].as_str().unwrap_or("the operation failed")
        );
        ExitCode::from(1)
    }
}

/// `backup create APP [--volume NAME]` through the daemon.
pub fn create(c: &Client, app: &str, volume: Option<&str>, json_out: bool) -> Result<ExitCode> {
    let (status, v) = c.operation(
        &format!("/api/v1/apps/{app}/backups"),
        json!({ "volume": volume }),
    )?;
    let made: Vec<Value> = v["backups"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            json!({"id": b["id"], "volume": b["volume"], "revision": b["revision"], "files": b["files"], "bytes": b["bytes"], "archive_size": b["archive_size"], "archive_sha256": b["archive_sha256"], "operation": v["operation"]["id"]})
        })
        .collect();
    if json_out {
        print_json(&Value::Array(made));
    } else {
        for b in &made {
            let sha = b["archive_sha256"].as_str().unwrap_or("");
            println!(
                "{}  {}: {} files, {} bytes → {} bytes, sha256 {} (verified){}",
                b["id"].as_str().unwrap_or(""),
                b["volume"].as_str().unwrap_or(""),
                b["files"],
                b["bytes"],
                b["archive_size"],
                &sha[..sha.len().min(16)],
                match b["revision"].as_str() {
                    Some(r) => format!(", revision {}", mooring_core::short_revision(r)),
                    None => String::new(),
                }
            );
        }
    }
    Ok(finish(&v, status))
}

/// `backup restore ID [--to-volume NAME] [--force]` of an app's backup through the daemon.
pub fn restore(
    c: &Client,
    app: &str,
    id: &str,
    to: Option<&str>,
    force: bool,
    json_out: bool,
) -> Result<ExitCode> {
    let (status, v) = c.operation(
        &format!("/api/v1/apps/{app}/backups/{id}/restore"),
        json!({ "to_volume": to, "force": force }),
    )?;
    if json_out {
        print_json(&v);
    } else if let Some(r) = v["restored"].as_object() {
        if r["created"] == json!(true) {
            eprintln!("  created volume {}", r["volume"].as_str().unwrap_or(""));
        }
        println!(
            "{id} restored into {}: {} files, {} bytes (checksums verified)",
            r["volume"].as_str().unwrap_or(""),
            r["files"],
            r["bytes"]
        );
    }
    Ok(finish(&v, status))
}
