//! `madoguchi audit verify` run as a binary against an embedded data directory: an intact
//! chain exits 0, a tampered one exits 1 and says where, bad input exits 2.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use madoguchi_audit::{AuditAction, AuditEvent, AuditLog};
use madoguchi_domain::tenant::TenantId;
use madoguchi_embedded::EmbeddedBackend;
use madoguchi_ports::{Clock, Condition, ItemStore, Key, SystemClock};

const TENANT: &str = "131016";

async fn verify_cli(data_dir: &Path, tenant: &str, extra: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_madoguchi"))
        .args(["audit", "verify", "--tenant", tenant, "--data-dir"])
        .arg(data_dir)
        .args(extra)
        // Settings of the developer's shell must not pick another store.
        .env_remove("MADOGUCHI_BACKEND")
        .env_remove("MADOGUCHI_AWS_ENDPOINT")
        .env_remove("MADOGUCHI_DATA_DIR")
        .output()
        .await
        .expect("run madoguchi")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn open(dir: &Path) -> EmbeddedBackend {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    EmbeddedBackend::open(dir, "http://127.0.0.1:9", clock).unwrap()
}

#[tokio::test]
async fn audit_verify_exit_status_and_output() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::parse(TENANT).unwrap();
    {
        let backend = open(dir.path());
        // As the host writes it: the table and the mirror bucket the host wires.
        let log = AuditLog::new(backend.items(), Arc::new(SystemClock))
            .with_mirror(backend.blobs(madoguchi_host::names::AUDIT_BUCKET));
        for i in 0..5 {
            log.append(
                &tenant,
                AuditEvent::new(AuditAction::ApplicationRead, "staff-1").detail("i", i),
            )
            .await
            .unwrap();
        }
    }

    let out = verify_cli(dir.path(), TENANT, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        stdout(&out).starts_with("OK: 5 records, chain intact"),
        "{out:?}"
    );
    let out = verify_cli(dir.path(), TENANT, &["--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["tenant"], TENANT);
    assert_eq!(report["records"], 5);
    assert_eq!(report["last_seq"], 5);
    assert_eq!(report["findings"], serde_json::json!([]));

    // Tamper with record 3 in the table.
    {
        let backend = open(dir.path());
        let items = backend.items();
        let key = Key::new(format!("{TENANT}#AUDIT"), "R#000000000003");
        let mut item = items.get(&key).await.unwrap().unwrap();
        item.data["actor"] = serde_json::json!("staff-2");
        items.put(item, Condition::None).await.unwrap();
    }
    let out = verify_cli(dir.path(), TENANT, &[]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stdout(&out);
    assert!(text.starts_with("FINDINGS: "), "{text}");
    assert!(text.contains("\nseq 3: changed — "), "{text}");
    let out = verify_cli(dir.path(), TENANT, &["--json"]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings: Vec<(u64, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["seq"].as_u64().unwrap(),
                f["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(findings.contains(&(3, "changed".into())), "{findings:?}");
    // The mirror still holds the original record 3.
    assert!(
        findings.contains(&(3, "mirror_mismatch".into())),
        "{findings:?}"
    );
    assert!(findings.iter().all(|(seq, _)| *seq == 3), "{findings:?}");

    // Another tenant of the same store: nothing recorded, nothing wrong.
    let out = verify_cli(dir.path(), "272060", &[]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout(&out).starts_with("OK: 0 records"), "{out:?}");

    // Errors: a bad tenant code, a directory without a store.
    let out = verify_cli(dir.path(), "131017", &[]).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tenant"));
    let empty = tempfile::tempdir().unwrap();
    let out = verify_cli(&empty.path().join("none"), TENANT, &[]).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        !empty.path().join("none").exists(),
        "verify creates nothing"
    );
}
