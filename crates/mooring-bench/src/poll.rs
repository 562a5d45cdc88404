//! Benchmark helper (not a test): the cost of one poll of a source when nothing
//! changed, as the daemon does it (`Cache::fetch`): warm the cache once, then time N
//! polls and print the median in milliseconds.
//!
//! `poll SOURCE [REF] [N]` (SOURCE as `mooring sync` takes it: a path, git://, svn://,
//! hg+http://…); used by `bench/sources.sh`.

use mooring_vcs::{Cache, SourceSpec};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let source = args.next().expect("SOURCE");
    let reference = args.next().filter(|r| !r.is_empty());
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let spec = SourceSpec::parse(&source, reference.as_deref()).expect("source");
    let data = tempfile::tempdir().expect("temp dir");
    let cache = Cache::new(data.path());
    cache.fetch(&spec).expect("first fetch");
    let mut times: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            cache.fetch(&spec).expect("fetch");
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    println!("{:.1}", times[n / 2]);
}
