//! The attachments checker driven with the sample SQS event in `events/attachments/` (an S3
//! notification for one quarantined upload, an `s3:TestEvent` and a body that is not a
//! notification), over a real SQLite store and the filesystem blob store.

use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::sqs::SqsEvent;
use bytes::Bytes;
use madoguchi_applications::keys::{UPLOAD_TOTAL_SK, attachment_sk, quarantine_key, upload_pk};
use madoguchi_applications::{AttachmentRecord, AttachmentStatus, RefusalReason};
use madoguchi_attachments::{AttachmentsState, Outcome, check, handle};
use madoguchi_domain::ids::{ApplicationId, AttachmentId};
use madoguchi_domain::tenant::TenantId;
use madoguchi_embedded::EmbeddedBackend;
use madoguchi_ports::{
    Clock, Condition, FixedClock, Item, ItemStore, Key, MalwareScanner, PortResult, ScanVerdict,
};

const DRAFT: &str = "01936f6e-7c1a-7cc2-9d6e-1f2a3b4c5d6e";
/// The attachment the sample event announces.
const SAMPLE: &str = "01936f6e-7c1a-7cc2-9d6e-1f2a3b4c5d70";
const SAMPLE_MESSAGE: &str = "6c3f1d2e-4a5b-4c6d-8e9f-0a1b2c3d4e01";
const KIB: u64 = 1024;

fn tenant() -> TenantId {
    TenantId::parse("272060").unwrap()
}

fn draft() -> ApplicationId {
    ApplicationId::parse(DRAFT).unwrap()
}

/// A v7 attachment id ending in `n`.
fn attachment(n: u8) -> AttachmentId {
    AttachmentId::parse(&format!("01936f6e-7c1a-7cc2-9d6e-1f2a3b4c5d{n:02x}")).unwrap()
}

fn sample_id() -> AttachmentId {
    AttachmentId::parse(SAMPLE).unwrap()
}

fn object_key(id: &AttachmentId) -> String {
    quarantine_key(&tenant(), &draft(), id)
}

fn record_key(id: &AttachmentId) -> Key {
    Key::new(upload_pk(&tenant(), &draft()), attachment_sk(id))
}

fn total_key() -> Key {
    Key::new(upload_pk(&tenant(), &draft()), UPLOAD_TOTAL_SK)
}

fn event_file() -> SqsEvent {
    let path = format!(
        "{}/../../events/attachments/s3-object-created.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The sample's notification, announcing `ids` instead of the sample's object (one message
/// each), in an `event_name` of the caller's choice.
fn event_for(ids: &[AttachmentId], event_name: &str) -> SqsEvent {
    let mut ev = event_file();
    let template = ev.records[0].clone();
    ev.records = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut m = template.clone();
            m.message_id = Some(format!("message-{i}"));
            m.body = Some(
                template
                    .body
                    .as_deref()
                    .unwrap()
                    .replace(SAMPLE, &id.to_string())
                    .replace("ObjectCreated:Post", event_name),
            );
            m
        })
        .collect();
    ev
}

struct Fixture {
    state: AttachmentsState,
    backend: EmbeddedBackend,
    _dir: tempfile::TempDir,
}

/// A scanner with a fixed answer: nothing scans files here, so the verdicts GuardDuty would
/// give are played by this stand-in.
struct Scanner(ScanVerdict);

#[async_trait]
impl MalwareScanner for Scanner {
    async fn verdict(&self, _bucket_key: &str) -> PortResult<ScanVerdict> {
        Ok(self.0)
    }
}

fn fixture() -> Fixture {
    fixture_with(None, None)
}

fn fixture_with(
    scanner: Option<Arc<dyn MalwareScanner>>,
    items: Option<Arc<dyn ItemStore>>,
) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(FixedClock::new("2026-11-23T07:00:00Z".parse().unwrap()));
    let backend = EmbeddedBackend::open(dir.path(), "http://127.0.0.1:9", clock.clone()).unwrap();
    let state = AttachmentsState {
        items: items.unwrap_or_else(|| backend.items() as Arc<dyn ItemStore>),
        blobs: backend.blobs("attachments"),
        scanner: scanner.unwrap_or_else(|| backend.scanner() as Arc<dyn MalwareScanner>),
        clock,
    };
    Fixture {
        state,
        backend,
        _dir: dir,
    }
}

const EXPIRES_AT: i64 = 1_900_000_000;

impl Fixture {
    /// A pending record as the upload grant writes it.
    async fn pending(&self, id: &AttachmentId, extension: &str, max_bytes: u64, max_total: u64) {
        let record = AttachmentRecord {
            id: *id,
            draft_id: draft(),
            slug: "kosodate-kyufu".into(),
            field: "passbook".into(),
            file_name: format!("通帳.{extension}"),
            extension: extension.into(),
            declared_size: 100,
            max_bytes,
            max_total_bytes: max_total,
            status: AttachmentStatus::Pending,
            reason: None,
            size: None,
            scan: None,
            object_key: object_key(id),
            created_at: "2026-11-23T06:59:00Z".into(),
            checked_at: None,
            sha256: None,
        };
        let mut item = Item::new(record_key(id), serde_json::to_value(&record).unwrap());
        item.expires_at = Some(EXPIRES_AT);
        self.backend
            .items()
            .put(item, Condition::NotExists)
            .await
            .unwrap();
    }

    async fn upload(&self, id: &AttachmentId, bytes: Vec<u8>) {
        self.state
            .blobs
            .put(&object_key(id), Bytes::from(bytes), None)
            .await
            .unwrap();
    }

    async fn record(&self, id: &AttachmentId) -> (AttachmentRecord, Item) {
        let item = self
            .backend
            .items()
            .get(&record_key(id))
            .await
            .unwrap()
            .unwrap();
        (serde_json::from_value(item.data.clone()).unwrap(), item)
    }

    async fn total(&self) -> Option<u64> {
        self.backend
            .items()
            .get(&total_key())
            .await
            .unwrap()
            .map(|i| i.data["bytes"].as_u64().unwrap())
    }

    async fn object_exists(&self, id: &AttachmentId) -> bool {
        self.state
            .blobs
            .head(&object_key(id))
            .await
            .unwrap()
            .is_some()
    }
}

fn pdf(size: usize) -> Vec<u8> {
    let mut v = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    v.resize(size, b' ');
    v
}

fn png(size: usize) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    v.resize(size, 7);
    v
}

#[tokio::test]
async fn an_honest_file_is_accepted_once_though_delivered_twice() {
    let f = fixture();
    let id = sample_id();
    f.pending(&id, "pdf", 1024 * KIB, 3 * 1024 * KIB).await;
    f.upload(&id, pdf(2048)).await;
    // The sample: the notification, a test event and a body that is not a notification.
    let response = handle(&f.state, event_file()).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let (record, item) = f.record(&id).await;
    assert_eq!(record.status, AttachmentStatus::Accepted);
    assert_eq!(record.size, Some(2048));
    assert_eq!(record.reason, None);
    assert_eq!(
        record.scan.as_deref(),
        Some("not_scanned"),
        "never a false clean"
    );
    assert!(record.checked_at.is_some());
    // The digest of the whole file, as `sha256sum` would print it.
    use sha2::Digest;
    assert_eq!(
        record.sha256.as_deref(),
        Some(hex::encode(sha2::Sha256::digest(pdf(2048))).as_str())
    );
    assert_eq!(
        item.expires_at,
        Some(EXPIRES_AT),
        "the record keeps its expiry"
    );
    assert_eq!(f.total().await, Some(2048));
    assert!(f.object_exists(&id).await);

    // Redelivered: nothing changes (same versions, same total).
    let response = handle(&f.state, event_file()).await;
    assert!(response.batch_item_failures.is_empty());
    let (_, again) = f.record(&id).await;
    assert_eq!(again.version, item.version);
    assert_eq!(f.total().await, Some(2048));
    assert_eq!(
        check(&f.state, &object_key(&id)).await.unwrap(),
        Outcome::AlreadyDone
    );
}

#[tokio::test]
async fn a_clean_verdict_is_recorded_as_clean() {
    let f = fixture_with(Some(Arc::new(Scanner(ScanVerdict::Clean))), None);
    let id = sample_id();
    f.pending(&id, "pdf", 1024 * KIB, 3 * 1024 * KIB).await;
    f.upload(&id, pdf(100)).await;
    assert_eq!(
        check(&f.state, &object_key(&id)).await.unwrap(),
        Outcome::Accepted
    );
    assert_eq!(f.record(&id).await.0.scan.as_deref(), Some("clean"));
}

/// Refusals: the record says why, the object is gone, the total is untouched, and a
/// redelivery changes nothing.
async fn assert_refused(f: &Fixture, id: &AttachmentId, reason: RefusalReason) {
    let response = handle(&f.state, event_for(&[*id], "ObjectCreated:Post")).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let (record, item) = f.record(id).await;
    assert_eq!(record.status, AttachmentStatus::Refused, "{record:?}");
    assert_eq!(record.reason, Some(reason));
    assert!(!f.object_exists(id).await, "a refused object is deleted");
    assert_eq!(f.total().await, None, "refused files do not count");
    // The record (a file name is personal data) expires with its draft, refused or not.
    assert_eq!(item.expires_at, Some(EXPIRES_AT), "{reason:?}");
    let response = handle(&f.state, event_for(&[*id], "ObjectCreated:Post")).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(f.record(id).await.1.version, item.version);
    assert_eq!(
        check(&f.state, &object_key(id)).await.unwrap(),
        Outcome::AlreadyDone
    );
}

#[tokio::test]
async fn a_file_whose_extension_lies_is_refused_and_deleted() {
    let f = fixture();
    let id = attachment(1);
    f.pending(&id, "pdf", 1024 * KIB, 3 * 1024 * KIB).await;
    f.upload(&id, png(2000)).await;
    assert_refused(&f, &id, RefusalReason::ContentMismatch).await;
    // An executable named .pdf likewise.
    let exe = attachment(2);
    f.pending(&exe, "pdf", 1024 * KIB, 3 * 1024 * KIB).await;
    let mut mz = b"MZ\x90\0\x03\0\0\0".to_vec();
    mz.resize(600, 0);
    f.upload(&exe, mz).await;
    assert_refused(&f, &exe, RefusalReason::ContentMismatch).await;
}

#[tokio::test]
async fn a_file_over_its_limit_is_refused() {
    let f = fixture();
    let id = attachment(3);
    f.pending(&id, "pdf", 1000, 3 * 1024 * KIB).await;
    f.upload(&id, pdf(1001)).await;
    assert_refused(&f, &id, RefusalReason::TooLarge).await;
    assert_eq!(f.record(&id).await.0.size, Some(1001));
}

#[tokio::test]
async fn a_file_of_exactly_the_limit_is_accepted() {
    let f = fixture();
    let id = attachment(4);
    f.pending(&id, "png", 1000, 1000).await;
    f.upload(&id, png(1000)).await;
    assert_eq!(
        check(&f.state, &object_key(&id)).await.unwrap(),
        Outcome::Accepted
    );
    assert_eq!(f.total().await, Some(1000));
}

#[tokio::test]
async fn an_empty_file_is_refused() {
    let f = fixture();
    let id = attachment(5);
    f.pending(&id, "pdf", 1000, 3 * 1024 * KIB).await;
    f.upload(&id, Vec::new()).await;
    assert_refused(&f, &id, RefusalReason::Empty).await;
}

#[tokio::test]
async fn an_infected_file_is_refused() {
    let f = fixture_with(Some(Arc::new(Scanner(ScanVerdict::Infected))), None);
    let id = attachment(6);
    f.pending(&id, "pdf", 1024 * KIB, 3 * 1024 * KIB).await;
    f.upload(&id, pdf(500)).await;
    assert_refused(&f, &id, RefusalReason::Malware).await;
}

#[tokio::test]
async fn files_over_the_draft_total_are_refused() {
    let f = fixture();
    let (a, b, c) = (attachment(7), attachment(8), attachment(9));
    for id in [&a, &b, &c] {
        f.pending(id, "pdf", 1000, 1500).await;
    }
    f.upload(&a, pdf(1000)).await;
    f.upload(&b, pdf(1000)).await;
    f.upload(&c, pdf(500)).await;
    let response = handle(&f.state, event_for(&[a, b], "ObjectCreated:Put")).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(f.record(&a).await.0.status, AttachmentStatus::Accepted);
    let (refused, _) = f.record(&b).await;
    assert_eq!(refused.status, AttachmentStatus::Refused);
    assert_eq!(refused.reason, Some(RefusalReason::TotalExceeded));
    assert!(!f.object_exists(&b).await);
    assert_eq!(f.total().await, Some(1000));
    // What is left of the limit is still usable.
    assert_eq!(
        check(&f.state, &object_key(&c)).await.unwrap(),
        Outcome::Accepted
    );
    assert_eq!(f.total().await, Some(1500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_files_checked_at_once_cannot_both_slip_under_the_total() {
    for round in 0..5u8 {
        let f = fixture();
        let (a, b) = (attachment(0x20 + 2 * round), attachment(0x21 + 2 * round));
        for id in [&a, &b] {
            f.pending(id, "pdf", 1000, 1500).await;
            f.upload(id, pdf(1000)).await;
        }
        let (ka, kb) = (object_key(&a), object_key(&b));
        let (ra, rb) = tokio::join!(check(&f.state, &ka), check(&f.state, &kb));
        // A lost race is a transient failure: the message is retried and sees the new total.
        for (id, r) in [(&a, ra), (&b, rb)] {
            if let Err(e) = r {
                assert!(e.is_condition_failed(), "{e}");
                check(&f.state, &object_key(id)).await.unwrap();
            }
        }
        let statuses = [f.record(&a).await.0.status, f.record(&b).await.0.status];
        let accepted = statuses
            .iter()
            .filter(|s| **s == AttachmentStatus::Accepted)
            .count();
        assert_eq!(accepted, 1, "round {round}: {statuses:?}");
        assert_eq!(f.total().await, Some(1000));
    }
}

#[tokio::test]
async fn an_object_nobody_asked_for_is_deleted() {
    let f = fixture();
    let id = sample_id();
    f.upload(&id, pdf(100)).await;
    let response = handle(&f.state, event_file()).await;
    assert!(response.batch_item_failures.is_empty());
    assert!(!f.object_exists(&id).await, "orphan deleted");
    assert_eq!(
        check(&f.state, &object_key(&id)).await.unwrap(),
        Outcome::Orphan
    );
    assert!(
        f.backend
            .items()
            .get(&record_key(&id))
            .await
            .unwrap()
            .is_none(),
        "no record invented"
    );
}

#[tokio::test]
async fn keys_outside_the_quarantine_prefix_are_left_alone() {
    let f = fixture();
    for key in [
        "inbound/jumin/a.csv",
        "quarantine/272060/not-an-id/x",
        "quarantine/272061/01936f6e-7c1a-7cc2-9d6e-1f2a3b4c5d6e/01936f6e-7c1a-7cc2-9d6e-1f2a3b4c5d70",
        "accepted/272060/01936f6e-7c1a-7cc2-9d6e-1f2a3b4c5d6e/01936f6e-7c1a-7cc2-9d6e-1f2a3b4c5d70",
    ] {
        f.state
            .blobs
            .put(key, Bytes::from_static(b"data"), None)
            .await
            .unwrap();
        assert!(matches!(
            check(&f.state, key).await.unwrap(),
            Outcome::Ignored(_)
        ));
        assert!(
            f.state.blobs.head(key).await.unwrap().is_some(),
            "{key} kept"
        );
    }
}

#[tokio::test]
async fn an_object_gone_before_its_check_changes_nothing() {
    let f = fixture();
    let id = attachment(10);
    f.pending(&id, "pdf", 1000, 1000).await;
    assert!(matches!(
        check(&f.state, &object_key(&id)).await.unwrap(),
        Outcome::Ignored(_)
    ));
    assert_eq!(f.record(&id).await.0.status, AttachmentStatus::Pending);
}

#[tokio::test]
async fn a_later_infected_verdict_refuses_an_accepted_file() {
    let f = fixture();
    let id = sample_id();
    f.pending(&id, "pdf", 1024 * KIB, 3 * 1024 * KIB).await;
    f.upload(&id, pdf(300)).await;
    assert!(
        handle(&f.state, event_file())
            .await
            .batch_item_failures
            .is_empty()
    );
    assert_eq!(f.record(&id).await.0.status, AttachmentStatus::Accepted);
    // GuardDuty finishes later and tags the object.
    let later = AttachmentsState {
        scanner: Arc::new(Scanner(ScanVerdict::Infected)),
        ..f.state.clone()
    };
    let response = handle(&later, event_for(&[id], "ObjectTagging:Put")).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let (record, item) = f.record(&id).await;
    assert_eq!(record.status, AttachmentStatus::Refused);
    assert_eq!(record.reason, Some(RefusalReason::Malware));
    assert_eq!(item.expires_at, Some(EXPIRES_AT));
    assert!(!f.object_exists(&id).await);
}

#[tokio::test]
async fn a_store_failure_fails_only_the_message_that_needed_it() {
    let f = fixture_with(None, Some(Arc::new(madoguchi_tests::UnavailableItemStore)));
    let id = sample_id();
    f.upload(&id, pdf(100)).await;
    let response = handle(&f.state, event_file()).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|x| x.item_identifier.as_str())
        .collect();
    assert_eq!(failed, [SAMPLE_MESSAGE]);
    // Not treated as an orphan: the object stays for the retry.
    assert!(f.object_exists(&id).await);
}

#[tokio::test]
async fn bodies_that_are_not_notifications_are_dropped() {
    let f = fixture();
    let mut ev = event_file();
    let template = ev.records[1].clone();
    for (i, body) in [
        "",
        "{",
        "[]",
        "null",
        "{\"Records\": 5}",
        "{\"Records\": [{\"s3\": null}]}",
        "{\"Records\": [{\"eventName\": \"ObjectCreated:Put\", \"s3\": {\"object\": {\"key\": \"%zz\"}}}]}",
        "{\"Records\": [{\"eventName\": \"ObjectRemoved:Delete\", \"s3\": {\"object\": {\"key\": \"quarantine/272060/01936f6e-7c1a-7cc2-9d6e-1f2a3b4c5d6e/01936f6e-7c1a-7cc2-9d6e-1f2a3b4c5d70\"}}}]}",
    ]
    .into_iter()
    .enumerate()
    {
        let mut m = template.clone();
        m.message_id = Some(format!("junk-{i}"));
        m.body = Some(body.to_owned());
        ev.records.push(m);
    }
    let response = handle(&f.state, ev).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
}
