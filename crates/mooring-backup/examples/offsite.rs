//! An off-host copy to an SFTP server (`Target::Sftp::put`: the archive and manifest put
//! as `.partial`, the archive read back into a scratch file and its size and sha256
//! checked, both renamed) against `scp` of the same archive, in the same run. A
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

use mooring_backup::{BackupMeta, HostKeys, Sftp, Target};

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
        identity: Some(PathBuf::from(key)),
        host_keys: HostKeys::File(PathBuf::from(known)),
    };
    let target = Target::Sftp(sftp.clone());
    let clear = || -> Res<()> {
        for entry in std::fs::read_dir(remote).into_iter().flatten() {
            std::fs::remove_file(entry?.path())?;
        }
        Ok(())
    };
    let mooring = |scratch: &Path| -> Res<f64> {
        clear()?;
        let t = Instant::now();
        target.put(&record, scratch)?;
        Ok(t.elapsed().as_secs_f64())
    };
    let scp = || -> Res<f64> {
        clear()?;
        let t = Instant::now();
        let status = Command::new("scp")
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
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for run in 0..runs {
        if run % 2 == 0 {
            ours.push(mooring(&backups)?);
            theirs.push(scp()?);
        } else {
            theirs.push(scp()?);
            ours.push(mooring(&backups)?);
        }
        println!(
            "round {}: mooring {:.2} s, scp {:.2} s",
            run + 1,
            ours[run],
            theirs[run]
        );
    }
    clear()?;
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (m, s) = (median(&mut ours), median(&mut theirs));
    let mib = size as f64 / 1048576.0;
    println!("archive {mib:.0} MiB, {runs} rounds, medians:");
    println!(
        "  mooring (put, read back, sha256 checked, renamed)  {m:.2} s  {:.0} MiB/s",
        mib / m
    );
    println!(
        "  scp                                               {s:.2} s  {:.0} MiB/s  ratio {:.2}",
        mib / s,
        s / m
    );
    Ok(())
}
