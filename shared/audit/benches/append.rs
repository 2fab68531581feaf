//! The audit log, measured (`make bench`) on the embedded adapters (a real SQLite file):
//! appends per second from one task and from several at once (every append is one
//! conditional transaction on the tenant's head item, so a tenant's appends form one queue),
//! and records per second checked by `verify`.
//!
//! A benchmark, not a test: it asserts only that the chain verifies. Under `cargo test` it runs
//! at 1/20 scale as a smoke test.

use std::sync::Arc;
use std::time::{Duration, Instant};

use madoguchi_audit::{AuditAction, AuditEvent, AuditLog, verify};
use madoguchi_domain::tenant::TenantId;
use madoguchi_ports::{Clock, ItemStore, SystemClock};

fn event(i: usize) -> AuditEvent {
    AuditEvent::new(AuditAction::ApplicationRead, format!("clerk-{}", i % 7))
        .form("juminhyo")
        .detail("n", i as u64)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n = if full { 2_000 } else { 100 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let backend = madoguchi_embedded::EmbeddedBackend::open(
            dir.path(),
            "http://127.0.0.1:9",
            clock.clone(),
        )
        .unwrap();
        let items: Arc<dyn ItemStore> = backend.items();
        let tenant = TenantId::parse("272060").unwrap();
        println!("audit log on the embedded adapters (SQLite WAL), one tenant");

        let log = AuditLog::new(items.clone(), clock.clone());
        let mut lat = Vec::with_capacity(n);
        let started = Instant::now();
        for i in 0..n {
            let t = Instant::now();
            log.append(&tenant, event(i)).await.unwrap();
            lat.push(t.elapsed());
        }
        let secs = started.elapsed().as_secs_f64();
        lat.sort();
        println!(
            "  1 task:   {n} appends, {:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
            n as f64 / secs,
            percentile(&lat, 0.5).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3
        );

        // Several handlers of one process (clones of one log), as under load.
        for tasks in [4usize, 16] {
            let started = Instant::now();
            let mut handles = Vec::new();
            for t in 0..tasks {
                let log = log.clone();
                let per = n / tasks;
                handles.push(tokio::spawn(async move {
                    for i in 0..per {
                        log.append(&tenant, event(t * per + i)).await.unwrap();
                    }
                }));
            }
            for h in handles {
                h.await.unwrap();
            }
            let secs = started.elapsed().as_secs_f64();
            println!(
                "  {tasks} tasks: {} appends, {:.0}/s",
                (n / tasks) * tasks,
                ((n / tasks) * tasks) as f64 / secs
            );
        }

        let started = Instant::now();
        let report = verify(items.as_ref(), &tenant).await.unwrap();
        let secs = started.elapsed().as_secs_f64();
        assert!(report.ok(), "{report:?}");
        println!(
            "  verify:   {} records in {:.2} s, {:.0} records/s",
            report.records,
            secs,
            report.records as f64 / secs
        );
    });
}
