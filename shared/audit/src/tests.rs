use std::sync::Arc;

use madoguchi_embedded::EmbeddedBackend;
use madoguchi_ports::{BlobStore, Clock, Condition, FixedClock, Item, ItemStore, Key};
use serde_json::json;

use super::*;
use crate::verify::REORDER_WINDOW;

const APP: &str = "01890a5d-ac96-774b-bcce-b302099a8057";

fn tenant() -> TenantId {
    TenantId::parse("131016").unwrap()
}

/// A valid chain of `n` records.
fn chain(n: u64) -> Vec<AuditRecord> {
    let mut prev = GENESIS_HASH.to_owned();
    (1..=n)
        .map(|seq| {
            let mut r = AuditRecord {
                seq,
                at: "2026-04-01T00:00:00Z".into(),
                tenant: "131016".into(),
                event: AuditEvent::new(AuditAction::ApplicationRead, "staff-1").detail("n", seq),
                prev: prev.clone(),
                hash: String::new(),
            };
            r.hash = r.compute_hash();
            prev = r.hash.clone();
            r
        })
        .collect()
}

fn head_of(records: &[AuditRecord]) -> Option<(u64, String)> {
    records.last().map(|r| (r.seq, r.hash.clone()))
}

fn kinds(report: &VerifyReport) -> Vec<(u64, FindingKind)> {
    report.findings.iter().map(|f| (f.seq, f.kind)).collect()
}

/// A record that claims `seq`, with a valid hash, linked to `prev`.
fn forged(seq: u64, prev: &str) -> AuditRecord {
    let mut r = AuditRecord {
        seq,
        at: "2026-04-02T00:00:00Z".into(),
        tenant: "131016".into(),
        event: AuditEvent::new(AuditAction::Export, "intruder"),
        prev: prev.to_owned(),
        hash: String::new(),
    };
    r.hash = r.compute_hash();
    r
}

#[test]
fn action_names_are_the_serde_names() {
    for action in AuditAction::ALL {
        assert_eq!(
            serde_json::to_value(action).unwrap(),
            json!(action.as_str()),
            "{action:?}"
        );
        let back: AuditAction = serde_json::from_value(json!(action.as_str())).unwrap();
        assert_eq!(back, action);
    }
}

#[test]
fn record_format_and_hash_are_pinned() {
    // The expected bytes and hash were computed independently with Python's
    // json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
    // the rule docs/audit.md gives auditors.
    let mut r = AuditRecord {
        seq: 1,
        at: "2026-04-01T00:00:00Z".into(),
        tenant: "131016".into(),
        event: AuditEvent::new(AuditAction::MyNumberDecrypt, "staff-0001")
            .form("juminhyo")
            .application(ApplicationId::parse(APP).unwrap())
            .detail("field", "my_number")
            .detail("purpose", "本人確認")
            .detail("rows", 3)
            .detail("cols", json!(["a", "b"])),
        prev: GENESIS_HASH.into(),
        hash: String::new(),
    };
    assert_eq!(
        String::from_utf8(r.canonical_bytes()).unwrap(),
        r#"{"action":"my_number_decrypt","actor":"staff-0001","application":"01890a5d-ac96-774b-bcce-b302099a8057","at":"2026-04-01T00:00:00Z","detail":{"cols":["a","b"],"field":"my_number","purpose":"本人確認","rows":3},"form":"juminhyo","prev":"0000000000000000000000000000000000000000000000000000000000000000","seq":1,"tenant":"131016"}"#
    );
    assert_eq!(
        r.compute_hash(),
        "72a0d57a90e7739c73294bb6eafa7fcccb60899bd0645f4246940763ffd4dead"
    );
    r.hash = r.compute_hash();
    // Stored form = serde form; it reads back as the same record.
    assert_eq!(r.to_value(), serde_json::to_value(&r).unwrap());
    let back: AuditRecord = serde_json::from_value(r.to_value()).unwrap();
    assert_eq!(back, r);
    // Absent form and application are nulls, in the hash too.
    let bare = AuditEvent::new(AuditAction::StaffLogin, "system");
    let mut b = r.clone();
    b.event = bare;
    let v = b.to_value();
    assert_eq!(v["form"], Value::Null);
    assert_eq!(v["application"], Value::Null);
    assert_eq!(v["detail"], json!({}));
    assert!(
        String::from_utf8(b.canonical_bytes())
            .unwrap()
            .contains(r#""form":null"#)
    );
}

#[test]
fn an_intact_chain_verifies() {
    let records = chain(10);
    let head = head_of(&records);
    let report = verify_records(records, head);
    assert!(report.ok(), "{report:?}");
    assert_eq!((report.records, report.last_seq), (10, 10));
    assert_eq!(report.tenant, "131016");
    let empty = verify_records(Vec::new(), None);
    assert!(empty.ok());
    assert_eq!((empty.records, empty.last_seq), (0, 0));
}

#[test]
fn changed_content_is_found_at_its_seq() {
    let mut records = chain(10);
    let head = head_of(&records);
    records[4].event.actor = "someone-else".into();
    let report = verify_records(records, head);
    assert_eq!(kinds(&report), [(5, FindingKind::Changed)], "{report:?}");
}

#[test]
fn changed_and_rehashed_content_is_found_by_the_next_link() {
    let mut records = chain(10);
    let head = head_of(&records);
    records[4].event.detail.insert("n".into(), json!(99));
    records[4].hash = records[4].compute_hash();
    let report = verify_records(records.clone(), head.clone());
    assert_eq!(kinds(&report), [(5, FindingKind::Changed)], "{report:?}");
    // The last record rehashed: only the head can tell.
    records = chain(10);
    records[9].event.actor = "x".into();
    records[9].hash = records[9].compute_hash();
    let report = verify_records(records, head);
    assert_eq!(
        kinds(&report),
        [(10, FindingKind::HeadMismatch)],
        "{report:?}"
    );
}

#[test]
fn changed_prev_of_the_first_record() {
    let mut records = chain(3);
    let head = head_of(&records);
    records[0].prev = "11".repeat(32);
    let report = verify_records(records, head);
    assert_eq!(kinds(&report), [(1, FindingKind::Changed)], "{report:?}");
}

#[test]
fn deleted_records_are_found_where_they_were() {
    let full = chain(10);
    let head = head_of(&full);
    let mut records = full.clone();
    records.remove(4);
    let report = verify_records(records, head.clone());
    assert_eq!(kinds(&report), [(5, FindingKind::Deleted)], "{report:?}");
    assert_eq!(report.records, 9);

    let mut records = full.clone();
    records.drain(4..6);
    let report = verify_records(records, head.clone());
    assert_eq!(kinds(&report), [(5, FindingKind::Deleted)]);
    assert!(report.findings[0].message.contains("5 to 6"), "{report:?}");

    let report = verify_records(full[1..].to_vec(), head.clone());
    assert_eq!(kinds(&report), [(1, FindingKind::Deleted)], "{report:?}");
}

#[test]
fn a_deleted_tail_is_a_head_mismatch() {
    let full = chain(10);
    let head = head_of(&full);
    let report = verify_records(full[..8].to_vec(), head.clone());
    assert_eq!(
        kinds(&report),
        [(9, FindingKind::HeadMismatch)],
        "{report:?}"
    );
    assert_eq!(report.last_seq, 8);
    let report = verify_records(Vec::new(), head);
    assert_eq!(
        kinds(&report),
        [(1, FindingKind::HeadMismatch)],
        "{report:?}"
    );
}

#[test]
fn head_problems() {
    let records = chain(4);
    let report = verify_records(records.clone(), None);
    assert_eq!(
        kinds(&report),
        [(4, FindingKind::HeadMismatch)],
        "{report:?}"
    );
    let report = verify_records(records.clone(), Some((4, "ab".repeat(32))));
    assert_eq!(
        kinds(&report),
        [(4, FindingKind::HeadMismatch)],
        "{report:?}"
    );
    let report = verify_records(Vec::new(), Some((0, "ab".repeat(32))));
    assert_eq!(
        kinds(&report),
        [(0, FindingKind::HeadMismatch)],
        "{report:?}"
    );
    assert!(verify_records(Vec::new(), Some((0, GENESIS_HASH.into()))).ok());
}

#[test]
fn a_duplicate_seq_is_an_insertion_wherever_it_is_stored() {
    let full = chain(10);
    let head = head_of(&full);
    // A forgery that even links to record 4, stored after or before the real record 5.
    let fake = forged(5, &full[3].hash);
    for at in [4, 5] {
        let mut records = full.clone();
        records.insert(at, fake.clone());
        let report = verify_records(records, head.clone());
        assert_eq!(
            kinds(&report),
            [(5, FindingKind::Inserted)],
            "{at}: {report:?}"
        );
        assert_eq!(report.records, 11);
    }
    // A duplicate of the last record: the head picks the real one.
    let mut records = full.clone();
    records.insert(9, forged(10, &full[8].hash));
    let report = verify_records(records, head);
    assert_eq!(kinds(&report), [(10, FindingKind::Inserted)], "{report:?}");
}

#[test]
fn a_record_that_fits_neither_neighbour_is_an_insertion() {
    let full = chain(10);
    let head = head_of(&full);
    let mut records = full.clone();
    records[4] = forged(5, &"cd".repeat(32));
    let report = verify_records(records, head.clone());
    assert_eq!(kinds(&report), [(5, FindingKind::Inserted)], "{report:?}");
    // Two forgeries in a row.
    let mut records = full.clone();
    records[4] = forged(5, &"cd".repeat(32));
    records[5] = forged(6, &"ef".repeat(32));
    let report = verify_records(records, head.clone());
    assert_eq!(
        kinds(&report),
        [(5, FindingKind::Inserted), (6, FindingKind::Inserted)],
        "{report:?}"
    );
    // The last record replaced: fits neither record 9 nor the head.
    let mut records = full.clone();
    records[9] = forged(10, &"cd".repeat(32));
    let report = verify_records(records, head);
    assert_eq!(kinds(&report), [(10, FindingKind::Inserted)], "{report:?}");
}

#[test]
fn records_beyond_the_head_are_insertions() {
    let mut records = chain(10);
    let head = head_of(&records);
    let extra = forged(11, &records[9].hash);
    records.push(extra);
    let report = verify_records(records, head);
    assert_eq!(kinds(&report), [(11, FindingKind::Inserted)], "{report:?}");
    assert_eq!(report.last_seq, 11);
}

#[test]
fn swapped_records_are_reordered() {
    let mut records = chain(10);
    let head = head_of(&records);
    records.swap(3, 4);
    let report = verify_records(records, head.clone());
    assert_eq!(kinds(&report), [(4, FindingKind::Reordered)], "{report:?}");
    // Far apart (within the window).
    let mut records = chain(10);
    records.swap(1, 8);
    let report = verify_records(records, head);
    assert_eq!(
        kinds(&report),
        [(2, FindingKind::Reordered), (3, FindingKind::Reordered)],
        "{report:?}"
    );
}

#[test]
fn a_record_displaced_beyond_the_window_is_reordered_and_missing() {
    let n = REORDER_WINDOW as u64 + 100;
    let mut records = chain(n);
    let head = head_of(&records);
    let moved = records.remove(1);
    records.push(moved);
    let report = verify_records(records, head);
    assert_eq!(
        kinds(&report),
        [(2, FindingKind::Deleted), (2, FindingKind::Reordered)],
        "{report:?}"
    );
}

#[test]
fn several_findings_at_once_are_in_seq_order() {
    let mut records = chain(20);
    let head = head_of(&records);
    records[15].event.actor = "x".into(); // 16 changed
    records.remove(10); // 11 deleted
    records.swap(2, 3); // 3 and 4 swapped
    let report = verify_records(records, head);
    assert_eq!(
        kinds(&report),
        [
            (3, FindingKind::Reordered),
            (11, FindingKind::Deleted),
            (16, FindingKind::Changed),
        ],
        "{report:?}"
    );
    assert!(!report.ok());
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["findings"][0]["kind"], "reordered");
}

#[test]
fn a_seq_zero_record_is_an_insertion() {
    let mut records = chain(3);
    let head = head_of(&records);
    records.insert(0, forged(0, GENESIS_HASH));
    let report = verify_records(records, head);
    assert_eq!(kinds(&report), [(0, FindingKind::Inserted)], "{report:?}");
}

#[test]
fn builder_sets_the_fields() {
    let id = ApplicationId::parse(APP).unwrap();
    let e = AuditEvent::new(AuditAction::StatusChange, "staff-9")
        .form("f")
        .application(id)
        .detail("from", "received")
        .detail("to", "in_review");
    assert_eq!(e.form.as_deref(), Some("f"));
    assert_eq!(e.application, Some(id));
    assert_eq!(e.detail["from"], "received");
}

// --- the log over the embedded store -------------------------------------------------

struct Fixture {
    backend: EmbeddedBackend,
    clock: Arc<FixedClock>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new(
        jiff::Timestamp::from_second(1_775_000_000).unwrap(),
    ));
    let backend = EmbeddedBackend::open(dir.path(), "http://127.0.0.1:9", clock.clone()).unwrap();
    Fixture {
        backend,
        clock,
        _dir: dir,
    }
}

impl Fixture {
    fn items(&self) -> Arc<dyn ItemStore> {
        self.backend.items()
    }
    fn log(&self) -> AuditLog {
        AuditLog::new(self.items(), self.clock.clone())
    }
}

#[tokio::test]
async fn appends_chain_and_read_back() {
    let f = fixture();
    let log = f.log();
    let t = tenant();
    let a = log
        .append(&t, AuditEvent::new(AuditAction::StaffLogin, "staff-1"))
        .await
        .unwrap();
    let b = log
        .append(
            &t,
            AuditEvent::new(AuditAction::Export, "staff-1")
                .form("juminhyo")
                .detail("rows", 2.0)
                .detail("columns", json!(["receipt", "status"])),
        )
        .await
        .unwrap();
    let c = log
        .append(&t, AuditEvent::new(AuditAction::AuditVerify, "system"))
        .await
        .unwrap();
    assert_eq!((a.seq, b.seq, c.seq), (1, 2, 3));
    assert_eq!(a.prev, GENESIS_HASH);
    assert_eq!(b.prev, a.hash);
    assert_eq!(c.prev, b.hash);
    assert_eq!(a.at, f.clock.now().to_string());
    assert_eq!(a.tenant, "131016");
    assert_eq!(
        b.event.detail["rows"],
        json!(2),
        "integral floats become integers"
    );
    assert!(b.event.detail["rows"].is_u64());

    let head = f
        .items()
        .get(&Key::new("131016#AUDIT", "HEAD"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.data, json!({"seq": 3, "hash": c.hash}));
    let stored = f
        .items()
        .get(&Key::new("131016#AUDIT", "R#000000000002"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.data, b.to_value());

    assert_eq!(log.records(&t, 0, 2).await.unwrap(), [a.clone(), b.clone()]);
    assert_eq!(
        log.records(&t, 2, 10).await.unwrap(),
        std::slice::from_ref(&c)
    );
    assert!(log.records(&t, 3, 10).await.unwrap().is_empty());
    assert!(log.records(&t, 0, 0).await.unwrap().is_empty());
    assert!(log.records(&t, u64::MAX, 5).await.unwrap().is_empty());

    let report = verify(f.items().as_ref(), &t).await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!((report.records, report.last_seq), (3, 3));
    // Another tenant's log is empty and separate.
    let other = TenantId::parse("272060").unwrap();
    let report = verify(f.items().as_ref(), &other).await.unwrap();
    assert!(report.ok() && report.records == 0, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_from_separate_logs_make_one_gap_free_chain() {
    // Separate logs (as separate Lambda instances would have) race in the store: the
    // conditional transaction and the retries decide.
    let f = fixture();
    let t = tenant();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let log = f.log();
            tokio::spawn(async move {
                log.append(
                    &t,
                    AuditEvent::new(AuditAction::ApplicationRead, format!("staff-{i}")),
                )
                .await
                .unwrap()
                .seq
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=20).collect::<Vec<u64>>());
    let report = verify(f.items().as_ref(), &t).await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.records, 20);
}

#[tokio::test]
async fn a_blocked_next_seq_is_contended() {
    let f = fixture();
    // A record 1 without a head: every append's record write fails its condition.
    f.items()
        .put(
            Item::new(Key::new("131016#AUDIT", "R#000000000001"), json!({})),
            Condition::None,
        )
        .await
        .unwrap();
    let err = f
        .log()
        .append(&tenant(), AuditEvent::new(AuditAction::StaffLogin, "s"))
        .await
        .unwrap_err();
    assert!(matches!(err, AuditError::Contended), "{err:?}");
    let report = verify(f.items().as_ref(), &tenant()).await.unwrap();
    assert_eq!(kinds(&report), [(1, FindingKind::Unreadable)], "{report:?}");
}

#[tokio::test]
async fn the_mirror_holds_each_record_and_verify_compares() {
    let f = fixture();
    let mirror: Arc<dyn BlobStore> = f.backend.blobs("audit");
    let log = f.log().with_mirror(mirror.clone());
    let t = tenant();
    let mut last = None;
    for i in 0..3 {
        last = Some(
            log.append(
                &t,
                AuditEvent::new(AuditAction::Memo, "staff-1").detail("i", i),
            )
            .await
            .unwrap(),
        );
    }
    let last = last.unwrap();
    let (meta, mut body) = mirror.get("audit/131016/000000000003.json").await.unwrap();
    assert_eq!(meta.content_type.as_deref(), Some("application/json"));
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut body, &mut bytes)
        .await
        .unwrap();
    // The mirror object is the canonical form with the hash.
    assert_eq!(bytes, canonical::to_canonical_vec(&last.to_value()));
    let report = verify_with_mirror(f.items().as_ref(), mirror.as_ref(), &t)
        .await
        .unwrap();
    assert!(report.ok(), "{report:?}");

    // A mirror that cannot be written does not fail the append; verify finds the gap.
    let broken: Arc<dyn BlobStore> = f.backend.blobs("X");
    let r4 = f
        .log()
        .with_mirror(broken)
        .append(&t, AuditEvent::new(AuditAction::Memo, "staff-1"))
        .await
        .unwrap();
    assert_eq!(r4.seq, 4);
    mirror
        .delete("audit/131016/000000000002.json")
        .await
        .unwrap();
    mirror
        .put(
            "audit/131016/000000000099.json",
            bytes::Bytes::from_static(b"{}"),
            None,
        )
        .await
        .unwrap();
    let report = verify_with_mirror(f.items().as_ref(), mirror.as_ref(), &t)
        .await
        .unwrap();
    assert_eq!(
        kinds(&report),
        [
            (2, FindingKind::MirrorMismatch),
            (4, FindingKind::MirrorMismatch),
            (99, FindingKind::MirrorMismatch),
        ],
        "{report:?}"
    );
    // The table alone is intact.
    assert!(verify(f.items().as_ref(), &t).await.unwrap().ok());
}

#[tokio::test]
async fn stored_items_are_checked_beyond_the_record() {
    let f = fixture();
    let log = f.log();
    let t = tenant();
    for _ in 0..4 {
        log.append(&t, AuditEvent::new(AuditAction::Memo, "staff-1"))
            .await
            .unwrap();
    }
    let items = f.items();
    // An extra field: the record still hashes the same, the item does not match it.
    let key = Key::new("131016#AUDIT", record_sk(2));
    let mut item = items.get(&key).await.unwrap().unwrap();
    item.data["note"] = json!("x");
    items.put(item, Condition::None).await.unwrap();
    // Contents of 3 and 4 swapped between their keys.
    let k3 = Key::new("131016#AUDIT", record_sk(3));
    let k4 = Key::new("131016#AUDIT", record_sk(4));
    let mut i3 = items.get(&k3).await.unwrap().unwrap();
    let mut i4 = items.get(&k4).await.unwrap().unwrap();
    std::mem::swap(&mut i3.data, &mut i4.data);
    items.put(i3, Condition::None).await.unwrap();
    items.put(i4, Condition::None).await.unwrap();
    let report = verify(items.as_ref(), &t).await.unwrap();
    assert_eq!(
        kinds(&report),
        [
            (2, FindingKind::Changed),
            (3, FindingKind::Reordered),
            (4, FindingKind::Reordered),
        ],
        "{report:?}"
    );
}
