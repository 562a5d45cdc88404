//! `sops-decrypt DIR KEYFILE [ROUNDS]`: decrypts every file in DIR with Mooring's
//! native SOPS decryption (`mooring_sops`), ROUNDS times (default 5), as the loader
//! does for an app's encrypted files — one process, no `sops` — and prints each
//! round's milliseconds and the median. `bench/sops.sh` compares it with `sops
//! decrypt` run once per file.

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(key)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: sops-decrypt DIR KEYFILE [ROUNDS]");
        std::process::exit(2);
    };
    let rounds: usize = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(5);
    let mut keys = mooring_sops::Keys::none();
    let text = std::fs::read_to_string(key).expect("reading the key file");
    keys.add_age(&text, key).expect("an age key file");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("reading DIR")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut times = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        let mut values = 0;
        for f in &files {
            let bytes = std::fs::read(f).expect("reading a file");
            let name = f.to_string_lossy();
            let format = mooring_sops::detect(&bytes, &name).expect("a SOPS file");
            let plain = mooring_sops::decrypt(&bytes, format, &keys).expect("decrypts");
            values += plain.secrets.len();
        }
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        println!("round: {ms:.1} ms ({} files, {values} values)", files.len());
        times.push(ms);
    }
    times.sort_by(f64::total_cmp);
    println!("median_ms {:.1}", times[times.len() / 2]);
}
