//! An off-host copy to an SFTP server (`Target::Sftp::put`: the archive streamed through
//! ssh as `.partial`, written and hashed by the server in one pass, flushed — the account has a
//! shell here — and checked, the manifest put and read back, both renamed) against `scp`
//! of the same archive (with ssh's default cipher, and with the AES-GCM Mooring prefers
//! on a CPU with AES instructions), and against `scp` then `sync` and `openssl dgst
//! -sha256` on the server (the same guarantees by hand), in the same run. A
//! benchmark, not a test; `bench/offsite.sh` starts the sshd and runs it.
//!
//! ```text
//! cargo run --release -p mooring-backup --example offsite -- \
//!     USER@HOST PORT KEY KNOWN_HOSTS REMOTE_DIR [MB] [RUNS]
//! ```
//!
//! A backup of MB (default 1024) of random bytes (incompressible: the archive is that
//! large) is made in `$TMPDIR`; RUNS rounds (default 3), the order alternating; medians.

use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use mooring_backup::{BackupMeta, HostKeys, Identity, Sftp, Target};

type Res<T> = Result<T, Box<dyn Error>>;

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dest, port, key, known, remote, rest @ ..] = args.as_slice() else {
        return Err("usage: offsite USER@HOST PORT KEY KNOWN_HOSTS REMOTE_DIR [MB] [RUNS]".into());
    };
    let mb: u64 = rest.first().map(|s| s.parse()).transpose()?.unwrap_or(1024);
    let runs: usize = rest.get(1).map(|s| s.parse()).transpose()?.unwrap_or(3);
    let work = tempfile::tempdir()?;
    let data = work.path().join("data");
    std::fs::create_dir(&data)?;
    let mut file = std::fs::File::create(data.join("random.bin"))?;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mb {
        getrandom::fill(&mut block)?;
        file.write_all(&block)?;
    }
    drop(file);
    let backups = work.path().join("backups");
    std::fs::create_dir(&backups)?;
    let meta = BackupMeta {
        app: "bench".into(),
        volume: "data".into(),
        revision: None,
        reason: "benchmark".into(),
        created_at: 1_700_000_000_000,
        dump: None,
    };
    let record = mooring_backup::backup_dir(&data, &backups, meta)?;
    std::fs::remove_dir_all(&data)?;
    let size = record.manifest.archive_size;
    let sftp = Sftp {
        destination: dest.clone(),
        port: Some(port.parse()?),
        folder: remote.clone(),
        identity: Some(Identity::File(PathBuf::from(key))),
        host_keys: HostKeys::File(PathBuf::from(known)),
    };
    let target = Target::Sftp(sftp.clone());
    let clear = || -> Res<()> {
        // The app's folder there (`<folder>/bench`), and what scp put at the top.
        let app_folder = Path::new(remote).join("bench");
        for entry in std::fs::read_dir(remote)
            .into_iter()
            .flatten()
            .chain(std::fs::read_dir(&app_folder).into_iter().flatten())
        {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                continue;
            }
            std::fs::remove_file(entry.path())?;
        }
        Ok(())
    };
    let mooring = |scratch: &Path| -> Res<f64> {
        clear()?;
        let t = Instant::now();
        target.put(&record, scratch)?;
        Ok(t.elapsed().as_secs_f64())
    };
    let scp_with = |options: &[&str]| -> Res<f64> {
        clear()?;
        let t = Instant::now();
        let status = Command::new("scp")
            .args(options)
            .args(["-q", "-o", "BatchMode=yes", "-P", port, "-i", key])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={known}"))
            .arg(&record.archive)
            .arg(format!("{dest}:{remote}/"))
            .status()?;
        if !status.success() {
            return Err("scp failed".into());
        }
        Ok(t.elapsed().as_secs_f64())
    };
    let gcm = [
        "-o",
        "Ciphers=aes128-gcm@openssh.com,aes256-gcm@openssh.com",
    ];
    let scp = || scp_with(&[]);
    // The same guarantees by hand: scp, then the server flushes and hashes it.
    let scp_checked = || -> Res<f64> {
        let t = scp()?;
        let t2 = Instant::now();
        let name = record
            .archive
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let status = Command::new("ssh")
            .args(["-o", "BatchMode=yes", "-p", port, "-i", key])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={known}"))
            .arg(dest)
            .arg(format!("sync && openssl dgst -sha256 -r {remote}/{name}"))
            .stdout(std::process::Stdio::null())
            .status()?;
        if !status.success() {
            return Err("ssh failed".into());
        }
        Ok(t + t2.elapsed().as_secs_f64())
    };
    // Rows in the order they run; the order turns round every other round.
    let mut rows: Vec<(&str, Vec<f64>)> = vec![
        (
            "mooring (streamed, sha256 and flush on the server, renamed)",
            vec![],
        ),
        ("scp (ssh's default cipher)", vec![]),
        (
            "scp, AES-GCM first (the cipher Mooring prefers here)",
            vec![],
        ),
        ("scp, then sync and openssl sha256 on the server", vec![]),
    ];
    for run in 0..runs {
        let mut order: Vec<usize> = (0..rows.len()).collect();
        if run % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let t = match i {
                0 => mooring(&backups)?,
                1 => scp()?,
                2 => scp_with(&gcm)?,
                _ => scp_checked()?,
            };
            rows[i].1.push(t);
        }
        let times: Vec<String> = rows
            .iter()
            .map(|(_, v)| format!("{:.2} s", v[run]))
            .collect();
        println!("round {}: {}", run + 1, times.join(", "));
    }
    clear()?;
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let mib = size as f64 / 1048576.0;
    println!("archive {mib:.0} MiB, {runs} rounds, medians (ratio: its time / Mooring's):");
    let ours = median(&mut rows[0].1);
    for (name, times) in &mut rows {
        let t = median(times);
        println!(
            "  {name:<62} {t:.2} s  {:>4.0} MiB/s  ratio {:.2}",
            mib / t,
            t / ours
        );
    }
    Ok(())
}
