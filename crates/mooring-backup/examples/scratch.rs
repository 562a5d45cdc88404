use mooring_backup::*;
use std::time::Instant;
fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mb = std::fs::metadata("/tmp/mb.tar").unwrap().len() as f64 / 1e6;
    for _ in 0..2 {
        let t = Instant::now();
        let f = std::fs::File::open("/tmp/mb.tar").unwrap();
        let r = write_backup(
            f,
            dir.path(),
            BackupMeta {
                app: "a".into(),
                volume: "v".into(),
                revision: None,
                reason: "x".into(),
                created_at: 1,
            },
        )
        .unwrap();
        println!("write_backup {:.0} MB/s", mb / t.elapsed().as_secs_f64());
        let t = Instant::now();
        verify(&r).unwrap();
        println!("verify {:.0} MB/s", mb / t.elapsed().as_secs_f64());
        let t = Instant::now();
        restore_to(&r, std::io::sink()).unwrap();
        println!("restore_to sink {:.0} MB/s", mb / t.elapsed().as_secs_f64());
    }
}
