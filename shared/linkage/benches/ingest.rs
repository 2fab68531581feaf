//! Ingest benchmark: a generated 住民記録 file (UTF-8 and CP932) read by a plain `csv`
//! reader and by our decode + parse + validate, in the same run.
//!
//! - plain csv: `csv::Reader::read_byte_record` over the file itself (no decoding): it
//!   splits and copies every byte of every field into the record, nothing more;
//! - decode+parse+validate: `LayoutReader::next_row`, i.e. decoding, parsing, the 外字
//!   table, every check and a `Record` of owned values per valid row;
//! - check only: `LayoutReader::check_next_row`, the same decoding, parsing, table
//!   and checks (same errors and summary) without building the values.
//!
//! The three are timed one after the other on the same file (in the page cache after
//! it is written), `RUNS` times, and each keeps its fastest run, so a burst of load
//! from other processes on a shared machine does not decide a ratio.
//!
//! `cargo bench -p madoguchi-linkage --bench ingest` → 1,000,000 rows; without
//! `--bench` (as `cargo test --all-targets` runs it) → 10,000 rows, a smoke test.

#[path = "../tests/common/mod.rs"]
mod common;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use madoguchi_linkage::{ConversionTable, Layout, LayoutReader, RowCheck, RowOutcome};

fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l["VmHWM:".len()..].trim().to_owned())
        })
        .unwrap_or_else(|| "n/a".to_owned())
}

fn write_file(path: &Path, rows: u64, cp932: bool) -> u64 {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    let mut bytes = 0u64;
    let mut put = |s: &str, w: &mut BufWriter<File>| {
        if cp932 {
            let (b, _, bad) = encoding_rs::SHIFT_JIS.encode(s);
            assert!(!bad);
            bytes += b.len() as u64;
            w.write_all(&b).unwrap();
        } else {
            bytes += s.len() as u64;
            w.write_all(s.as_bytes()).unwrap();
        }
    };
    if !cp932 {
        put("\u{FEFF}", &mut w);
    }
    put(&format!("{}\r\n", common::jumin_header()), &mut w);
    for i in 0..rows {
        put(&common::line(&common::fields(i)), &mut w);
    }
    w.flush().unwrap();
    bytes
}

/// How many times each reader goes over each file (the fastest run counts).
const RUNS: usize = 5;

fn plain_csv(path: &Path) -> (u64, f64) {
    let start = Instant::now();
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(File::open(path).unwrap());
    let mut rec = csv::ByteRecord::new();
    let mut n = 0u64;
    while r.read_byte_record(&mut rec).unwrap() {
        n += 1;
    }
    (n, start.elapsed().as_secs_f64())
}

fn ours(path: &Path, layout: &Layout, conv: &ConversionTable) -> (u64, u64, f64) {
    let start = Instant::now();
    let mut r = LayoutReader::new(layout, conv, File::open(path).unwrap()).unwrap();
    let (mut valid, mut invalid) = (0u64, 0u64);
    while let Some(o) = r.next_row().unwrap() {
        match o {
            RowOutcome::Valid { .. } => valid += 1,
            RowOutcome::Invalid { .. } => invalid += 1,
        }
    }
    (valid, invalid, start.elapsed().as_secs_f64())
}

fn check_only(path: &Path, layout: &Layout, conv: &ConversionTable) -> (u64, u64, f64) {
    let start = Instant::now();
    let mut r = LayoutReader::new(layout, conv, File::open(path).unwrap()).unwrap();
    let (mut valid, mut invalid) = (0u64, 0u64);
    while let Some(o) = r.check_next_row().unwrap() {
        match o {
            RowCheck::Valid { .. } => valid += 1,
            RowCheck::Invalid { .. } => invalid += 1,
        }
    }
    (valid, invalid, start.elapsed().as_secs_f64())
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let rows: u64 = if bench { 1_000_000 } else { 10_000 };
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::jumin();
    let conv = ConversionTable::from_json(r#"{"\uE000": "髙"}"#).unwrap();
    println!(
        "ingest: {rows} rows of layout `{}`, fastest of {RUNS} runs each",
        layout.id
    );
    for (name, cp932) in [("utf8-bom", false), ("cp932", true)] {
        let path = dir.path().join(format!("jumin-{name}.csv"));
        let bytes = write_file(&path, rows, cp932);
        let (mut t_plain, mut t_ours, mut t_check) = (f64::MAX, f64::MAX, f64::MAX);
        for _ in 0..RUNS {
            let (n_plain, t) = plain_csv(&path);
            assert_eq!(n_plain, rows);
            t_plain = t_plain.min(t);
            let (valid, invalid, t) = ours(&path, &layout, &conv);
            assert_eq!((valid, invalid), (rows, 0));
            t_ours = t_ours.min(t);
            let (valid, invalid, t) = check_only(&path, &layout, &conv);
            assert_eq!((valid, invalid), (rows, 0));
            t_check = t_check.min(t);
        }
        let plain_rps = rows as f64 / t_plain;
        let ours_rps = rows as f64 / t_ours;
        let check_rps = rows as f64 / t_check;
        println!(
            "  {name:9} {:7.1} MB | plain csv {:>10.0} rows/s ({t_plain:.2} s) | decode+parse+validate {:>10.0} rows/s ({t_ours:.2} s) | ratio {:5.1} % | VmHWM {}",
            bytes as f64 / 1e6,
            plain_rps,
            ours_rps,
            100.0 * ours_rps / plain_rps,
            vm_hwm()
        );
        println!(
            "  {name:9} check only (no values) {:>10.0} rows/s ({t_check:.2} s) | ratio {:5.1} % of plain csv",
            check_rps,
            100.0 * check_rps / plain_rps,
        );
    }
}
