//! Backup and restore throughput of `mooring-backup` against the system pipelines
//! `tar -cf - . | zstd -3 > x` and `zstd -dc x | tar -xf -`. A benchmark, not a test.
//!
//! ```text
//! cargo run --release -p mooring-backup --example throughput -- --generate DIR [MB]
//! cargo run --release -p mooring-backup --example throughput -- DIR [RUNS]
//! ```
//!
//! `--generate` fills DIR with a mixed data set (default 200 MB: compressible text,
//! random binary, ~5,000 small files, sparse-ish database-like pages).
//!
//! The measurement streams `tar -cf - -C DIR .` into `write_backup` (fsync and the
//! read-back verification included) and `restore_to` into `tar -xf -`, and runs the two
//! system pipelines on the same data, back to back in each of RUNS runs (default 3).
//! "verify + restore" is `verify` then `restore_to`, for callers that want every entry
//! checked before the first byte is written. Reported: MB/s of tar stream (1 MB = 10^6
//! bytes), median and best; the ratio of each run's pair; CPU seconds of all processes.
//! The page cache is warmed first; work files go to `$TMPDIR` (`TMPDIR=/dev/shm` takes
//! the disk out). Needs `tar` and `zstd` on PATH.

use std::error::Error;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use mooring_backup::{restore_to, verify, write_backup, BackupMeta};

type Res<T> = Result<T, Box<dyn Error>>;

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, dir, rest @ ..] if flag == "--generate" => {
            let mb: u64 = rest.first().map(|s| s.parse()).transpose()?.unwrap_or(200);
            generate(Path::new(dir), mb * 1_000_000)
        }
        [dir, rest @ ..] => {
            let runs: usize = rest.first().map(|s| s.parse()).transpose()?.unwrap_or(3);
            measure(Path::new(dir), runs.max(1))
        }
        [] => Err("usage: throughput DIR [RUNS] | throughput --generate DIR [MB]".into()),
    }
}

/// Pseudo-random bytes (xorshift64*), fast and deterministic.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Log-like text: compresses about 4-6x with zstd -3.
fn text(noise: &mut Noise, len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "GET",
        "POST",
        "/api/v1/items",
        "/health",
        "200",
        "404",
        "500",
        "user",
        "session",
        "INFO",
        "WARN",
        "ERROR",
        "request",
        "completed",
        "in",
        "ms",
        "cache",
        "miss",
        "hit",
        "db",
        "query",
        "timeout",
        "retry",
        "worker",
        "started",
        "stopped",
        "id=",
    ];
    let mut out = Vec::with_capacity(len + 128);
    while out.len() < len {
        write!(
            out,
            "2024-05-{:02}T{:02}:{:02}:{:02}.{:03}Z ",
            1 + noise.below(28),
            noise.below(24),
            noise.below(60),
            noise.below(60),
            noise.below(1000)
        )
        .ok();
        for _ in 0..(4 + noise.below(10)) {
            out.extend_from_slice(WORDS[noise.below(WORDS.len() as u64) as usize].as_bytes());
            out.push(b' ');
        }
        write!(out, "{:x}", noise.next()).ok();
        out.push(b'\n');
    }
    out.truncate(len);
    out
}

/// Fills `dir` with about `total` bytes of mixed data.
fn generate(dir: &Path, total: u64) -> Res<()> {
    let mut noise = Noise(0x5EED_1234_ABCD_0001);
    let mut written = 0u64;
    let mut files = 0u64;
    let mut put = |path: PathBuf, data: &[u8]| -> Res<()> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, data)?;
        written += data.len() as u64;
        files += 1;
        Ok(())
    };
    // 35 %: text files of 1-8 MB.
    let mut budget = total * 35 / 100;
    let mut i = 0;
    while budget > 0 {
        let len = (1_000_000 + noise.below(7_000_000)).min(budget) as usize;
        put(
            dir.join(format!("logs/app-{i}.log")),
            &text(&mut noise, len),
        )?;
        budget -= len as u64;
        i += 1;
    }
    // 30 %: random binary files of 5-30 MB (media, already-compressed data).
    let mut budget = total * 30 / 100;
    let mut i = 0;
    while budget > 0 {
        let len = (5_000_000 + noise.below(25_000_000)).min(budget) as usize;
        let mut data = vec![0u8; len];
        noise.fill(&mut data);
        put(dir.join(format!("media/blob-{i}.bin")), &data)?;
        budget -= len as u64;
        i += 1;
    }
    // 15 %: database-like pages: mostly zeros with random records.
    let mut budget = total * 15 / 100;
    let mut i = 0;
    while budget > 0 {
        let len = (4_000_000u64).min(budget) as usize;
        let mut data = vec![0u8; len];
        for page in data.chunks_mut(4096) {
            let used = noise.below(page.len() as u64) as usize;
            noise.fill(&mut page[..used / 3]);
        }
        put(dir.join(format!("db/pages-{i}.db")), &data)?;
        budget -= len as u64;
        i += 1;
    }
    // 20 %: small files of 100 B - 16 KB in nested folders, half text, half binary.
    let mut budget = total * 20 / 100;
    let mut i = 0u64;
    while budget > 0 {
        let len = (100 + noise.below(16_000)).min(budget) as usize;
        let data = if i.is_multiple_of(2) {
            text(&mut noise, len)
        } else {
            let mut data = vec![0u8; len];
            noise.fill(&mut data);
            data
        };
        put(dir.join(format!("small/{}/{}/f{i}", i % 17, i % 11)), &data)?;
        budget -= len as u64;
        i += 1;
    }
    println!(
        "generated {:.1} MB in {files} files under {}",
        written as f64 / 1e6,
        dir.display()
    );
    Ok(())
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

fn sh(script: &str) -> Res<()> {
    let status = Command::new("sh").arg("-c").arg(script).status()?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{script}` failed: {status}").into())
    }
}

fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

fn median(values: &[f64]) -> f64 {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// CPU seconds used so far by this process and its waited-for children (Linux
/// `/proc/self/stat`: utime, stime, cutime, cstime).
fn cpu_seconds() -> Res<f64> {
    let stat = fs::read_to_string("/proc/self/stat")?;
    let after_name = stat.rsplit_once(')').ok_or("odd /proc/self/stat")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields
        .get(11..15)
        .ok_or("short /proc/self/stat")?
        .iter()
        .map(|f| f.parse::<u64>())
        .sum::<Result<u64, _>>()?;
    Ok(ticks as f64 / 100.0) // USER_HZ is 100 on Linux
}

/// One timed step: wall seconds and CPU seconds (all processes).
struct Timed {
    wall: f64,
    cpu: f64,
}

fn timed(step: impl FnOnce() -> Res<()>) -> Res<Timed> {
    let (start, cpu) = (Instant::now(), cpu_seconds()?);
    step()?;
    Ok(Timed {
        wall: start.elapsed().as_secs_f64(),
        cpu: cpu_seconds()? - cpu,
    })
}

fn measure(src: &Path, runs: usize) -> Res<()> {
    let work = tempfile::tempdir()?;
    let backups = work.path().join("backups");
    let baseline = work.path().join("baseline.tar.zst");

    // Warm the page cache and learn the stream size (through a pipe: GNU tar skips reading
    // files when writing to /dev/null).
    let mut tar = Command::new("tar")
        .args(["-cf", "-", "-C"])
        .arg(src)
        .arg(".")
        .stdout(Stdio::piped())
        .spawn()?;
    let stream_len = io::copy(&mut tar.stdout.take().ok_or("no stdout")?, &mut io::sink())?;
    if !tar.wait()?.success() {
        return Err("tar -c failed".into());
    }
    let mb = stream_len as f64 / 1e6;

    // Each run times the four steps back to back, so each pair shares the machine's
    // conditions; ratios are taken per run.
    let mut steps: [Vec<Timed>; 5] = Default::default();
    let (mut ours_size, mut sys_size) = (0, 0);
    for run in 0..runs {
        fs::create_dir_all(&backups)?;
        let now = mooring_core::clock::now_ms();
        let meta = BackupMeta {
            app: "bench".into(),
            volume: "data".into(),
            revision: None,
            reason: "benchmark".into(),
            created_at: now,
            dump: None,
        };
        let mut record = None;
        steps[0].push(timed(|| {
            let mut tar = Command::new("tar")
                .args(["-cf", "-", "-C"])
                .arg(src)
                .arg(".")
                .stdout(Stdio::piped())
                .spawn()?;
            let mut input = Counting {
                inner: tar.stdout.take().ok_or("no stdout")?,
                count: 0,
            };
            record = Some(write_backup(&mut input, &backups, meta)?);
            if !tar.wait()?.success() || input.count != stream_len {
                return Err("tar -c failed or changed".into());
            }
            Ok(())
        })?);
        let record = record.ok_or("no backup")?;
        ours_size = record.manifest.archive_size;
        steps[1].push(timed(|| {
            sh(&format!(
                "tar -cf - -C {} . | zstd -3 -q > {}",
                quote(src),
                quote(&baseline)
            ))
        })?);
        sys_size = fs::metadata(&baseline)?.len();

        let restore = |dest: &Path, verify_first: bool| -> Res<()> {
            if verify_first {
                verify(&record)?;
            }
            let mut untar = Command::new("tar")
                .args(["-xf", "-", "-C"])
                .arg(dest)
                .stdin(Stdio::piped())
                .spawn()?;
            let stdin = untar.stdin.take().ok_or("no stdin")?;
            restore_to(&record, stdin)?;
            if !untar.wait()?.success() {
                return Err("tar -x failed".into());
            }
            Ok(())
        };
        let dest = work.path().join(format!("ours-{run}"));
        fs::create_dir(&dest)?;
        steps[2].push(timed(|| restore(&dest, false))?);
        let dest2 = work.path().join(format!("sys-{run}"));
        fs::create_dir(&dest2)?;
        steps[3].push(timed(|| {
            sh(&format!(
                "zstd -dc {} | tar -xf - -C {}",
                quote(&baseline),
                quote(&dest2)
            ))
        })?);

        let dest3 = work.path().join(format!("strict-{run}"));
        fs::create_dir(&dest3)?;
        steps[4].push(timed(|| restore(&dest3, true))?);

        // Clean up outside the timings.
        fs::remove_dir_all(&dest3)?;
        fs::remove_dir_all(&backups)?;
        fs::remove_file(&baseline)?;
        fs::remove_dir_all(&dest)?;
        fs::remove_dir_all(&dest2)?;
        sh("sync")?;
    }

    let rate = |v: &[Timed]| v.iter().map(|t| mb / t.wall).collect::<Vec<_>>();
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let cpu = |v: &[Timed]| median(&v.iter().map(|t| t.cpu).collect::<Vec<_>>());
    let ratios = |ours: &[Timed], sys: &[Timed]| {
        ours.iter()
            .zip(sys)
            .map(|(o, s)| s.wall / o.wall)
            .collect::<Vec<_>>()
    };
    println!(
        "data: {} — tar stream {mb:.1} MB; {runs} runs",
        src.display()
    );
    println!(
        "                  MB/s median (best)             ratio per run    CPU s (all processes)"
    );
    println!("                  mooring       system           median (best)    mooring  system");
    for (name, ours, sys) in [
        ("backup", &steps[0], &steps[1]),
        ("restore", &steps[2], &steps[3]),
        ("verify + restore", &steps[4], &steps[3]),
    ] {
        let (o, s, r) = (rate(ours), rate(sys), ratios(ours, sys));
        println!(
            "{name:<16}  {:>6.1} ({:>6.1})  {:>6.1} ({:>6.1})   {:>5.2} ({:>5.2})     {:>6.2}  {:>6.2}",
            median(&o),
            best(&o),
            median(&s),
            best(&s),
            median(&r),
            best(&r),
            cpu(ours),
            cpu(sys)
        );
    }
    println!(
        "archive           {:.1} MB (mooring) vs {:.1} MB (zstd -3)",
        ours_size as f64 / 1e6,
        sys_size as f64 / 1e6
    );
    Ok(())
}
