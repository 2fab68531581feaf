//! CSV export, measured (`make bench`): 100,000 applications exported through the router on
//! the embedded adapters (real SQLite file, files for the exports bucket), in UTF-8 and in
//! CP932, and the peak memory of the process during each export against one of 10,000 rows
//! (Linux: the peak resident set `VmHWM`, reset before each export through
//! `/proc/self/clear_refs`). Flat memory means the two peaks are about the same.
//!
//! A benchmark, not a test: it asserts nothing about time or memory. Under `cargo test` it
//! runs at 1/100 scale as a smoke test.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::Request;
use madoguchi_applications::keys::{
    FORM_GRANTS_SK, FORM_META_SK, SINGLE_SK, form_pk, forms_index_pk, org_pk,
};
use madoguchi_applications::{
    ApplicationRecord, ApplicationStatus, DisplayRow, FormMeta, FormState, application_item,
};
use madoguchi_audit::AuditLog;
use madoguchi_domain::authz::{Department, FormGrants, OrgTree};
use madoguchi_domain::form::parse_definition;
use madoguchi_domain::ids::ApplicationId;
use madoguchi_domain::tenant::TenantId;
use madoguchi_fieldcrypt::{CachePolicy, FieldCipher};
use madoguchi_http::Authenticator;
use madoguchi_http::auth::Role;
use madoguchi_http::dev_issuer::{DevIssuer, DevTokenRequest};
use madoguchi_ports::{Clock, Condition, IdGen, Item, ItemStore, Key, SystemClock, UuidV7Gen};
use madoguchi_staff::{Settings, StaffState, router};
use serde_json::json;
use tower::ServiceExt;

const TENANT: &str = "272060";
const SLUG: &str = "juminhyo";
const DAYS: u64 = 10;

fn peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn current_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resets the peak to the current resident set (Linux ≥ 4.0).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

async fn seed(items: &Arc<dyn ItemStore>, tenant: &TenantId, rows: u64) {
    let org = OrgTree {
        departments: vec![Department {
            id: "shimin-ka".into(),
            name: "市民課".into(),
            parent: None,
            resident_lookup: false,
        }],
    };
    items
        .put(
            Item::new(
                Key::new(org_pk(tenant), SINGLE_SK),
                serde_json::to_value(&org).unwrap(),
            ),
            Condition::None,
        )
        .await
        .unwrap();
    let definition = parse_definition(&json!({
        "title": "住民票の写しの交付申請",
        "items": [
            {"id": "applicant", "type": "name", "label": "氏名", "required": true},
            {"id": "my_number", "type": "my_number", "label": "個人番号"},
            {"id": "address", "type": "address", "label": "住所", "required": true},
            {"id": "phone", "type": "phone", "label": "電話番号", "required": true},
            {"id": "copies", "type": "number", "label": "通数", "required": true, "integer": true}
        ]
    }))
    .unwrap();
    let now = SystemClock.now().to_string();
    let meta = FormMeta {
        slug: SLUG.into(),
        state: FormState::Published,
        definition,
        published_version: Some(1),
        created_at: now.clone(),
        updated_at: now,
    };
    let mut meta_item = Item::new(
        Key::new(form_pk(tenant, SLUG), FORM_META_SK),
        serde_json::to_value(&meta).unwrap(),
    );
    meta_item.gsi1 = Some(Key::new(forms_index_pk(tenant), SLUG));
    items.put(meta_item, Condition::None).await.unwrap();
    items
        .put(
            Item::new(
                Key::new(form_pk(tenant, SLUG), FORM_GRANTS_SK),
                serde_json::to_value(FormGrants::for_new_form("shimin-ka")).unwrap(),
            ),
            Condition::None,
        )
        .await
        .unwrap();
    // `rows` applications spread over DAYS days of November 2026 (Japan time).
    let start = jiff::Timestamp::from_second(1_793_458_800).unwrap(); // 2026-11-01T00:00+09:00
    let per_day = rows / DAYS;
    let ids = UuidV7Gen;
    for i in 0..rows {
        let day = i / per_day.max(1);
        let at = start
            .checked_add(jiff::SignedDuration::from_secs(
                (day * 86_400 + 9 * 3600 + (i % per_day.max(1)) % 28_000) as i64,
            ))
            .unwrap();
        let family = if i % 1000 == 0 { "𠮷田" } else { "山田" };
        let record = ApplicationRecord {
            id: ApplicationId::new(ids.new_id()),
            tenant: TENANT.into(),
            receipt: format!("{:04}-{:04}-{}", i / 10_000, i % 10_000, i % 10),
            slug: SLUG.into(),
            form_title: "住民票の写しの交付申請".into(),
            form_version: 1,
            owner: format!("a-{i:032x}"),
            status: ApplicationStatus::Received,
            submitted_at: at.to_string(),
            answers: Default::default(),
            summary: vec![
                DisplayRow {
                    field: "applicant".into(),
                    label: "氏名".into(),
                    display: format!("{family} 花子{i}"),
                },
                DisplayRow {
                    field: "my_number".into(),
                    label: "個人番号".into(),
                    display: "********1234".into(),
                },
                DisplayRow {
                    field: "address".into(),
                    label: "住所".into(),
                    display: "大阪府泉大津市東雲町9-12 市役所前マンション101号".into(),
                },
                DisplayRow {
                    field: "phone".into(),
                    label: "電話番号".into(),
                    display: "0725331131".into(),
                },
                DisplayRow {
                    field: "copies".into(),
                    label: "通数".into(),
                    display: "2".into(),
                },
            ],
            attachments: vec![],
            email: None,
            blind_indexes: Default::default(),
            notify: vec![],
            applicant_name: Some(format!("{family} 花子{i}")),
            correction: None,
            completed_at: None,
            timeline: vec![],
            signature: None,
        };
        items
            .put(application_item(tenant, &record), Condition::NotExists)
            .await
            .unwrap();
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it.
    let full = std::env::args().any(|a| a == "--bench");
    let rows: u64 = if full { 100_000 } else { 1_000 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let backend =
            madoguchi_embedded::EmbeddedBackend::open(dir.path(), "http://127.0.0.1:9", clock.clone())
                .unwrap();
        let items: Arc<dyn ItemStore> = backend.items();
        let tenant = TenantId::parse(TENANT).unwrap();
        let t0 = Instant::now();
        seed(&items, &tenant, rows).await;
        println!("seeded {rows} applications in {:.1} s", t0.elapsed().as_secs_f64());
        let issuer = DevIssuer::ephemeral();
        let token = issuer.mint(&DevTokenRequest {
            sub: "clerk-1".into(),
            tenant,
            role: Role::Staff,
            depts: vec!["shimin-ka".into()],
            ttl_seconds: 3600,
            now: jiff::Timestamp::now().as_second(),
            email: None,
        });
        let keys = backend.keys();
        let state = StaffState {
            items: items.clone(),
            attachments: backend.blobs("attachments"),
            exports: backend.blobs("exports"),
            notify: backend.queue("notify", Default::default()),
            outbound: backend.queue("linkage-outbound", Default::default()),
            residents: madoguchi_residents::ResidentStore::new(
                items.clone(),
                FieldCipher::new(backend.keys(), clock.clone(), CachePolicy::default()),
            ),
            cipher: Arc::new(FieldCipher::new(keys, clock.clone(), CachePolicy::default())),
            audit: AuditLog::new(items.clone(), clock.clone()),
            audit_mirror: None,
            auth: Authenticator::shared(vec![issuer.trusted()]),
            clock,
            ids: Arc::new(UuidV7Gen),
            settings: Arc::new(Settings::default()),
        };
        let app = router(state);
        let can_reset = reset_peak();
        println!("export of a form's applications (embedded, streamed to a file through the upload port)");
        println!("{:>8} {:>9} {:>10} {:>9} {:>12} {:>14}", "rows", "encoding", "seconds", "rows/s", "MiB written", "peak RSS +MiB");
        // The first export warms up what any request does once (SQLite's page cache, the
        // allocator's arenas, the key cache); it is measured and shown apart.
        for (days, encoding) in [(DAYS, "warm-up"), (1u64, "utf8_bom"), (DAYS, "utf8_bom"), (1, "cp932"), (DAYS, "cp932")] {
            let encoding_name = encoding;
            let encoding = if encoding == "warm-up" { "utf8_bom" } else { encoding };
            let to = format!("2026-11-{:02}", days);
            let body = json!({
                "form": SLUG, "from": "2026-11-01", "to": to,
                "columns": ["receipt", "submitted_at", "status", "applicant_name", "my_number", "address", "phone", "copies"],
                "encoding": encoding
            });
            let baseline = current_kib().unwrap_or(0);
            if can_reset {
                reset_peak();
            }
            let t = Instant::now();
            let res = app
                .clone()
                .oneshot(
                    Request::post(format!("/v1/tenants/{TENANT}/staff/exports"))
                        .header("authorization", format!("Bearer {token}"))
                        .header("content-type", "application/json")
                        .body(Body::from(body.to_string()))
                        .unwrap(),
                )
                .await
                .unwrap();
            let secs = t.elapsed().as_secs_f64();
            let status = res.status();
            let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
            let out: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(status.as_u16(), 201, "{out}");
            let n = out["rows"].as_u64().unwrap();
            let peak = if can_reset {
                peak_kib().map(|p| format!("{:.1}", p.saturating_sub(baseline) as f64 / 1024.0)).unwrap_or("-".into())
            } else {
                "n/a".into()
            };
            println!(
                "{n:>8} {encoding_name:>9} {secs:>10.2} {:>9.0} {:>12.1} {peak:>14}",
                n as f64 / secs,
                out["bytes"].as_u64().unwrap_or(0) as f64 / 1_048_576.0,
            );
            if encoding == "cp932" {
                println!("{:>8} characters replaced (〓) and reported", out["substitutions_total"]);
            }
        }
    });
}
