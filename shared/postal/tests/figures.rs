//! Figures for the docs: `cargo test -p madoguchi-postal --release --test figures -- --ignored --nocapture`.
//! No timed assertions.

use std::time::Instant;

#[test]
#[ignore]
fn print_figures() {
    let t = Instant::now();
    let n = madoguchi_postal::entry_count(); // first use decodes the bundle
    let load = t.elapsed();
    let manifest: serde_json::Value =
        serde_json::from_str(include_str!("../data/postal.bin.json")).unwrap();
    println!("entries: {n}, codes: {}", manifest["code_count"]);
    println!(
        "bundle on disk: {} bytes",
        include_bytes!("../data/postal.bin").len()
    );
    println!(
        "decompressed payload: {} bytes",
        manifest["decompressed_bytes"]
    );
    println!("load (inflate + decode) once: {load:?}");

    let codes: Vec<String> = (0..200_000u32)
        .map(|i| format!("{:07}", (i * 7919 * 13) % 10_000_000))
        .collect();
    let t = Instant::now();
    let mut found = 0usize;
    for c in &codes {
        found += madoguchi_postal::lookup(c).len();
    }
    let d = t.elapsed();
    println!(
        "lookup (mixed hits/misses, {found} entries found): {:.0}/s",
        codes.len() as f64 / d.as_secs_f64()
    );

    let hits = ["5950025", "1000001", "0287302", "5300001", "6020847"];
    let t = Instant::now();
    let rounds = 100_000;
    for i in 0..rounds {
        std::hint::black_box(madoguchi_postal::lookup(hits[i % hits.len()]));
    }
    println!(
        "lookup (hits): {:.0}/s",
        rounds as f64 / t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    for i in 0..rounds {
        std::hint::black_box(madoguchi_postal::is_in_municipality(
            hits[i % hits.len()],
            "271004",
        ));
    }
    println!(
        "is_in_municipality: {:.0}/s",
        rounds as f64 / t.elapsed().as_secs_f64()
    );
}
