//! A measurement, not a check (`#[ignore]`): a generated 住民記録 file of
//! `MADOGUCHI_INGEST_ROWS` rows (default 100,000) ingested end to end on the embedded
//! backend. Run with `cargo test --release -p madoguchi-linkage-inbound --test large --
//! --ignored --nocapture`.

#[path = "../../../shared/linkage/tests/common/mod.rs"]
mod common;

use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use madoguchi_domain::tenant::TenantId;
use madoguchi_fieldcrypt::{CachePolicy, FieldCipher};
use madoguchi_linkage_inbound::{InboundFile, InboundState, handle, process};
use madoguchi_ports::{BlobStore, Clock, SystemClock};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run by hand"]
async fn ingest_a_large_file_on_the_embedded_backend() {
    let rows: u64 = std::env::var("MADOGUCHI_INGEST_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let backend =
        madoguchi_embedded::EmbeddedBackend::open(dir.path(), "http://127.0.0.1:9", clock.clone())
            .unwrap();
    let blobs: Arc<dyn BlobStore> = backend.blobs("linkage");
    let mut bytes = Vec::new();
    common::Generated::new(rows)
        .read_to_end(&mut bytes)
        .unwrap();
    let size = bytes.len();
    blobs
        .put("inbound/jumin/large.csv", bytes.into(), None)
        .await
        .unwrap();
    let state = InboundState::new(
        backend.items(),
        blobs.clone(),
        FieldCipher::new(backend.keys(), clock.clone(), CachePolicy::default()),
        clock,
        TenantId::parse("272060").unwrap(),
    );
    let body = serde_json::json!({"Records": [{"eventName": "ObjectCreated:Put",
        "s3": {"object": {"key": "inbound/jumin/large.csv", "size": size, "sequencer": "01"}}}]});
    let mut message = SqsMessage::default();
    message.message_id = Some("m".into());
    message.body = Some(body.to_string());
    let mut event = SqsEvent::default();
    event.records = vec![message];
    // Memory of the ingest itself: the process's resident set sampled while it runs, against
    // what it held before (the generated file was handed to the blob store and dropped).
    let before = rss_kib();
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(before));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        })
    };
    let started = Instant::now();
    let file = InboundFile {
        system: "jumin".into(),
        key: "inbound/jumin/large.csv".into(),
        name: "large.csv".into(),
        version: "01".into(),
        size: size as i64,
        version_id: None,
        etag: None,
    };
    // `process` rather than `handle`: a failure shows its reason here.
    let outcome = process(&state, &file).await;
    assert!(outcome.is_ok(), "{:?}", outcome.err());
    // The notification delivered again: nothing to do.
    assert!(handle(&state, event).await.batch_item_failures.is_empty());
    let elapsed = started.elapsed();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "resident set: {} MiB before the ingest, {} MiB at its peak (+{} MiB)",
        before / 1024,
        peak / 1024,
        peak.saturating_sub(before) / 1024
    );
    let (_, mut summary) = blobs
        .get("results/jumin/large.csv.summary.json")
        .await
        .unwrap();
    let mut json = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut summary, &mut json)
        .await
        .unwrap();
    println!(
        "{rows} rows ({size} bytes) in {elapsed:?}: {:.0} rows/s\n{json}",
        rows as f64 / elapsed.as_secs_f64()
    );
}

/// VmRSS of this process in KiB (Linux), 0 where unknown.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}
