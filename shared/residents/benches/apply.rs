//! Resident rows applied per second: `cargo bench -p madoguchi-residents --bench apply`.
//!
//! Generates N valid 住民記録 rows (parsed by `LayoutReader` before the clock starts) and
//! applies them in calls of 1,000 rows, three times: all new (every row written), the same
//! file again (every row skipped: reads only), and a later full file with the same content
//! (every row unchanged). Embedded (SQLite in a temporary directory) always; DynamoDB + KMS on
//! moto when `MADOGUCHI_BENCH_AWS=1`.
//!
//! Rows: `MADOGUCHI_BENCH_ROWS`, else 100,000 with `--bench` (what `cargo bench` passes) and
//! 1,000 otherwise (`cargo test --benches` runs it as a smoke test). Moto is a slow
//! single-process Python server: its row count is `MADOGUCHI_BENCH_AWS_ROWS`, else a tenth of
//! the embedded one. Moto's figures say little about DynamoDB's; they show the adapter's path.

use std::time::Instant;

use madoguchi_domain::mynumber::my_number_check_digit;
use madoguchi_domain::tenant::TenantId;
use madoguchi_fieldcrypt::{CachePolicy, FieldCipher};
use madoguchi_linkage::{ConversionTable, Layout, LayoutReader, Record, RowOutcome};
use madoguchi_residents::{ApplyOutcome, FileRef, ResidentStore};
use madoguchi_tests::Env;

const ROWS_PER_CALL: usize = 1_000;

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn my_number(i: u64) -> String {
    let first11 = format!("{:011}", 20_000_000_000 + i);
    let c = my_number_check_digit(&first11).expect("check digit");
    format!("{first11}{c}")
}

fn line(i: u64) -> String {
    const SURNAMES: [(&str, &str); 5] = [
        ("山田", "ヤマダ"),
        ("佐藤", "サトウ"),
        ("鈴木", "スズキ"),
        ("高橋", "タカハシ"),
        ("田中", "タナカ"),
    ];
    const GIVEN: [(&str, &str); 4] = [
        ("太郎", "タロウ"),
        ("花子", "ハナコ"),
        ("一郎", "イチロウ"),
        ("美咲", "ミサキ"),
    ];
    let (sn, sk) = SURNAMES[(i % 5) as usize];
    let (gn, gk) = GIVEN[(i % 4) as usize];
    // 1940..=2018 without 1989 (昭和 and 平成 share it): every date inside its era.
    let year = match 1940 + i % 79 {
        1989 => 1990,
        y => y,
    };
    let birth = if year >= 1989 {
        format!("H{}.{:02}.{:02}", year - 1988, 1 + i % 12, 1 + i % 28)
    } else {
        format!("S{}.{:02}.{:02}", year - 1925, 1 + i % 12, 1 + i % 28)
    };
    let mut f = vec![
        format!("{:010}", 1_000_000 + i),
        format!("{:010}", 500_000 + i / 3),
        format!("{:011}", 40_000_000_000 + i),
        if i.is_multiple_of(7) {
            String::new()
        } else {
            my_number(i)
        },
        format!("{sn}　{gn}"),
        format!("{sk}　{gk}"),
        birth,
        ["1", "2"][(i % 2) as usize].to_owned(),
        if i.is_multiple_of(3) { "01" } else { "04" }.to_owned(),
        format!("{sn}　太郎"),
        format!(
            "東京都千代田区霞が関{}丁目{}番{}号",
            1 + i % 3,
            1 + i % 30,
            1 + i % 20
        ),
        String::new(),
        format!("100-{:04}", 8900 + i % 100),
        "R2.04.01".to_owned(),
        "1".to_owned(),
        String::new(),
        String::new(),
    ];
    f.extend(std::iter::repeat_n(String::new(), 7));
    f.join(",") + "\r\n"
}

/// `n` valid rows, in calls of [`ROWS_PER_CALL`].
fn calls(n: usize) -> Vec<Vec<(u64, Record)>> {
    let layout = Layout::jumin();
    let header: Vec<&str> = layout.columns.iter().map(|c| c.header_name()).collect();
    let mut csv = header.join(",") + "\r\n";
    for i in 0..n as u64 {
        csv.push_str(&line(i));
    }
    let conversion = ConversionTable::empty();
    let mut reader = LayoutReader::new(&layout, &conversion, csv.as_bytes()).expect("header");
    let mut out = vec![Vec::with_capacity(ROWS_PER_CALL)];
    while let Some(outcome) = reader.next_row().expect("readable") {
        let (row_no, record) = match outcome {
            RowOutcome::Valid { row_no, record } => (row_no, record),
            RowOutcome::Invalid { row_no, errors } => {
                panic!("generated row {row_no} invalid: {errors:?}")
            }
        };
        if out.last().is_some_and(|c| c.len() == ROWS_PER_CALL) {
            out.push(Vec::with_capacity(ROWS_PER_CALL));
        }
        out.last_mut().expect("a call").push((row_no, record));
    }
    out
}

fn file(seq: u64) -> FileRef {
    FileRef {
        system: "jumin".into(),
        key: format!("inbound/jumin/bench-{seq}.csv"),
        version: "1".into(),
        seq,
    }
}

async fn pass(
    store: &ResidentStore,
    tenant: &TenantId,
    file: &FileRef,
    calls: Vec<Vec<(u64, Record)>>,
) -> (ApplyOutcome, f64) {
    let started = Instant::now();
    let mut total = ApplyOutcome::default();
    for rows in calls {
        let o = store.apply(tenant, file, rows).await.expect("apply");
        total.applied += o.applied;
        total.unchanged += o.unchanged;
        total.skipped += o.skipped;
        total.rejected.extend(o.rejected);
    }
    (total, started.elapsed().as_secs_f64())
}

async fn run(label: &str, env: Env, n: usize) {
    let tenant = TenantId::parse("131016").expect("tenant");
    let items = env.items().await;
    let cipher = FieldCipher::new(env.keys().await, env.clock.clone(), CachePolicy::default());
    let store = ResidentStore::new(items, cipher);
    let prepared = calls(n);
    let rows = prepared.iter().map(Vec::len).sum::<usize>();
    for (what, seq, expect) in [
        ("new rows (all written)", 1, "applied"),
        ("same file again (all skipped)", 1, "skipped"),
        ("next full file, no change (all unchanged)", 2, "unchanged"),
    ] {
        let (outcome, secs) = pass(&store, &tenant, &file(seq), prepared.clone()).await;
        let counted = match expect {
            "applied" => outcome.applied,
            "skipped" => outcome.skipped,
            _ => outcome.unchanged,
        } as usize;
        assert_eq!(counted, rows, "{label}: {what}: {outcome:?}");
        let rate = rows as f64 / secs;
        println!(
            "{label:<11} {what:<42} {rows:>8} rows {secs:>8.2} s {rate:>10.0} rows/s   1,000,000 rows ≈ {:.1} min",
            1_000_000.0 / rate / 60.0
        );
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n = env_usize("MADOGUCHI_BENCH_ROWS").unwrap_or(if bench { 100_000 } else { 1_000 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        run("embedded", Env::embedded().await, n).await;
        if std::env::var("MADOGUCHI_BENCH_AWS").as_deref() == Ok("1") {
            let n = env_usize("MADOGUCHI_BENCH_AWS_ROWS").unwrap_or((n / 10).max(100));
            run("aws (moto)", Env::aws().await, n).await;
        }
    });
}
