use std::io::Read;
use std::time::Instant;
fn main() {
    let data = std::fs::read("/tmp/mb.tar").unwrap();
    let mb = data.len() as f64 / 1e6;
    let z = zstd::encode_all(&data[..], 3).unwrap();
    for _ in 0..3 {
        let mut out = vec![0u8; data.len() + 1000];
        let t = Instant::now();
        let n = zstd::bulk::decompress_to_buffer(&z, &mut out).unwrap();
        println!(
            "bulk decompress {:.0} MB/s {n}",
            mb / t.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        let mut d = zstd::stream::read::Decoder::new(&z[..]).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0;
        loop {
            let n = d.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n;
        }
        println!(
            "stream decompress 1MiB {:.0} MB/s {total}",
            mb / t.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        let mut d = zstd::stream::read::Decoder::new(&z[..]).unwrap();
        let mut buf = vec![0u8; 128 << 10];
        let mut total = 0;
        loop {
            let n = d.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n;
        }
        println!(
            "stream decompress 128K {:.0} MB/s {total}",
            mb / t.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        let _ = zstd::bulk::compress(&data, 3).unwrap();
        println!("bulk compress {:.0} MB/s", mb / t.elapsed().as_secs_f64());
    }
}
