//! Throughput of the archive engine alone on a folder (no Docker):
//! `cargo run --release -p mooring-backup --example dir_throughput -- SRC WORKDIR`.
//! Backs SRC up into WORKDIR/backups with `backup_dir`, verifies it, restores it into
//! WORKDIR/restore with `restore_dir`, and prints each step's time.

use std::path::PathBuf;
use std::time::Instant;

/// CPU seconds (user + system) this process used so far.
fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(src), Some(work)) = (args.next(), args.next()) else {
        return Err("usage: dir_throughput SRC WORKDIR".into());
    };
    let (src, work) = (PathBuf::from(src), PathBuf::from(work));
    let backups = work.join("backups");
    let restore = work.join("restore");
    std::fs::create_dir_all(&backups)?;
    std::fs::create_dir_all(&restore)?;
    let meta = mooring_backup::BackupMeta {
        app: "bench".into(),
        volume: "dir".into(),
        revision: None,
        reason: "benchmark".into(),
        created_at: 0,
        dump: None,
    };
    let (t, c) = (Instant::now(), cpu());
    let record = mooring_backup::backup_dir(&src, &backups, meta)?;
    let (backup, backup_cpu) = (t.elapsed(), cpu() - c);
    let t = Instant::now();
    mooring_backup::verify(&record)?;
    let verify = t.elapsed();
    let (t, c) = (Instant::now(), cpu());
    mooring_backup::restore_dir(&record, &restore)?;
    let (restored, restore_cpu) = (t.elapsed(), cpu() - c);
    println!("CPU: backup {backup_cpu:.2} s, restore {restore_cpu:.2} s");
    let mib = record.manifest.bytes as f64 / 1048576.0;
    println!(
        "{mib:.0} MiB: backup_dir {:.2} s ({:.0} MiB/s) · verify {:.2} s · restore_dir {:.2} s ({:.0} MiB/s)",
        backup.as_secs_f64(),
        mib / backup.as_secs_f64(),
        verify.as_secs_f64(),
        restored.as_secs_f64(),
        mib / restored.as_secs_f64()
    );
    Ok(())
}
