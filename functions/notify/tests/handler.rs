//! The notify consumer driven with the sample SQS event in `events/notify/`, over a real
//! SQLite store and the outbox mailer (`.eml` files).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use base64::Engine;
use madoguchi_applications::keys::{APP_SK, app_pk, mail_sk};
use madoguchi_applications::{ApplicationRecord, ApplicationStatus, DisplayRow};
use madoguchi_domain::ids::ApplicationId;
use madoguchi_domain::tenant::TenantId;
use madoguchi_embedded::EmbeddedBackend;
use madoguchi_notify::{NotifyState, Sent, handle, notify};
use madoguchi_ports::{
    Clock, Condition, Email, FixedClock, Item, ItemStore, Key, Mailer, PortError, PortResult,
};

const APPLICATION: &str = "01936f6e-7c1a-7cc2-9d6e-1f2a3b4c5d6e";
const MESSAGE: &str = "3f0b5c1a-9d2e-4e7f-8a6b-1c2d3e4f5a01";
const TITLE: &str = "子育て応援給付金の申請";
const RECEIPT: &str = "K7MQ-4XP9-T";
const TO: &str = "hanako@example.jp";

fn tenant() -> TenantId {
    TenantId::parse("272060").unwrap()
}

fn app_id() -> ApplicationId {
    ApplicationId::parse(APPLICATION).unwrap()
}

fn sample() -> SqsEvent {
    let path = format!(
        "{}/../../events/notify/receipt.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The sample's message with other bodies, one message each.
fn event_with(bodies: &[&str]) -> SqsEvent {
    let mut ev = sample();
    let template = ev.records[0].clone();
    ev.records = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut m = template.clone();
            m.message_id = Some(format!("m-{i}"));
            m.body = Some((*b).to_owned());
            m
        })
        .collect();
    ev
}

fn record(email: Option<&str>, notify: &[&str]) -> ApplicationRecord {
    ApplicationRecord {
        id: app_id(),
        tenant: "272060".into(),
        receipt: RECEIPT.into(),
        slug: "kosodate-kyufu".into(),
        form_title: TITLE.into(),
        form_version: 3,
        owner: "a-0123456789abcdef0123456789abcdef".into(),
        status: ApplicationStatus::Received,
        submitted_at: "2026-11-23T09:05:00Z".into(),
        answers: BTreeMap::from([("applicant".to_owned(), "山田花子".into())]),
        summary: vec![DisplayRow {
            field: "applicant".into(),
            label: "氏名".into(),
            display: "山田花子".into(),
        }],
        attachments: vec![],
        email: email.map(str::to_owned),
        blind_indexes: BTreeMap::new(),
        notify: notify.iter().map(|s| (*s).to_owned()).collect(),
        applicant_name: Some("山田花子".into()),
        correction: None,
        completed_at: None,
        timeline: vec![],
        signature: None,
    }
}

struct Fixture {
    state: NotifyState,
    backend: EmbeddedBackend,
    dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(FixedClock::new("2026-11-23T09:05:01Z".parse().unwrap()));
    let backend = EmbeddedBackend::open(dir.path(), "http://127.0.0.1:9", clock.clone()).unwrap();
    let state = NotifyState {
        items: backend.items(),
        mailer: backend.mailer(),
        clock,
        mail_from: "窓口 <no-reply@city.example.lg.jp>".into(),
    };
    Fixture {
        state,
        backend,
        dir,
    }
}

impl Fixture {
    async fn store(&self, record: ApplicationRecord) {
        let item = Item::new(
            Key::new(app_pk(&tenant(), &record.id), APP_SK),
            serde_json::to_value(record).unwrap(),
        );
        self.backend
            .items()
            .put(item, Condition::NotExists)
            .await
            .unwrap();
    }

    async fn marker(&self, event: &str) -> bool {
        self.backend
            .items()
            .get(&Key::new(app_pk(&tenant(), &app_id()), mail_sk(event)))
            .await
            .unwrap()
            .is_some()
    }

    /// (To header, subject, body) of every mail in the outbox.
    fn outbox(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.dir.path().join("outbox")).unwrap() {
            let path = e.unwrap().path();
            if path.extension().is_none_or(|x| x != "eml") {
                continue;
            }
            let text = std::fs::read_to_string(path).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            let head = head.replace("\r\n ", " ");
            let header = |name: &str| {
                head.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .unwrap_or_default()
                    .to_owned()
            };
            let subject: Vec<u8> = header("Subject: ")
                .split_whitespace()
                .flat_map(|w| {
                    let inner = w
                        .strip_prefix("=?UTF-8?B?")
                        .and_then(|w| w.strip_suffix("?="))
                        .expect("encoded word");
                    base64::engine::general_purpose::STANDARD
                        .decode(inner)
                        .unwrap()
                })
                .collect();
            let b64: String = body.split_whitespace().collect();
            let body = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            out.push((
                header("To: "),
                String::from_utf8(subject).unwrap(),
                String::from_utf8(body).unwrap(),
            ));
        }
        out
    }
}

fn failed(response: &SqsBatchResponse) -> Vec<&str> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
}

#[tokio::test]
async fn the_receipt_is_mailed_once_though_delivered_twice() {
    let f = fixture();
    f.store(record(Some(TO), &["received", "completed"])).await;
    let response = handle(&f.state, sample()).await;
    assert!(failed(&response).is_empty());
    // Redelivered, also twice within one batch.
    let mut twice = sample();
    twice.records.push(twice.records[0].clone());
    let response = handle(&f.state, twice).await;
    assert!(failed(&response).is_empty());
    let body = sample().records[0].body.clone().unwrap();
    assert_eq!(notify(&f.state, &body).await.unwrap(), Sent::AlreadySent);

    let mails = f.outbox();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let (to, subject, text) = &mails[0];
    assert_eq!(to, TO);
    assert!(subject.contains("受付完了"), "{subject}");
    assert!(
        subject.contains(TITLE) && subject.contains(RECEIPT),
        "{subject}"
    );
    assert!(
        text.contains(&format!("「{TITLE}」の申請を受け付けました。")),
        "{text}"
    );
    assert!(text.contains(&format!("受付番号: {RECEIPT}")), "{text}");
    // Japan time, with the 和暦 date.
    assert!(
        text.contains("2026年11月23日（令和8年11月23日） 18:05"),
        "{text}"
    );
    // Ids and the receipt only: no answers in a mail.
    assert!(!text.contains("山田花子"), "{text}");
    assert!(f.marker("received").await);
    assert!(!f.marker("completed").await);
}

#[tokio::test]
async fn other_events_are_mailed_once_each() {
    let f = fixture();
    f.store(record(Some(TO), &["received", "completed"])).await;
    let received = sample().records[0].body.clone().unwrap();
    let completed = received.replace("\"received\"", "\"completed\"");
    assert_eq!(notify(&f.state, &received).await.unwrap(), Sent::Mailed);
    assert_eq!(notify(&f.state, &completed).await.unwrap(), Sent::Mailed);
    assert_eq!(
        notify(&f.state, &completed).await.unwrap(),
        Sent::AlreadySent
    );
    let mut subjects: Vec<String> = f.outbox().into_iter().map(|m| m.1).collect();
    subjects.sort();
    assert_eq!(subjects.len(), 2);
    assert!(
        subjects.iter().any(|s| s.starts_with("【手続完了】")),
        "{subjects:?}"
    );
    assert!(
        subjects.iter().any(|s| s.starts_with("【受付完了】")),
        "{subjects:?}"
    );
}

#[tokio::test]
async fn a_form_that_does_not_mail_the_event_sends_nothing() {
    let f = fixture();
    f.store(record(Some(TO), &["completed"])).await;
    let response = handle(&f.state, sample()).await;
    assert!(failed(&response).is_empty());
    let body = sample().records[0].body.clone().unwrap();
    assert_eq!(notify(&f.state, &body).await.unwrap(), Sent::NotWanted);
    assert!(f.outbox().is_empty());
    assert!(
        !f.marker("received").await,
        "no marker for a mail never sent"
    );
}

#[tokio::test]
async fn no_address_means_no_mail() {
    let f = fixture();
    f.store(record(None, &["received"])).await;
    let response = handle(&f.state, sample()).await;
    assert!(failed(&response).is_empty());
    let body = sample().records[0].body.clone().unwrap();
    assert_eq!(notify(&f.state, &body).await.unwrap(), Sent::NotWanted);
    assert!(f.outbox().is_empty());
    assert!(!f.marker("received").await);
}

/// The outbox behind a mail service that refuses the first `fail` messages (SES throttling).
struct Flaky {
    inner: Arc<dyn Mailer>,
    fail: AtomicU32,
}

#[async_trait]
impl Mailer for Flaky {
    async fn send(&self, email: &Email) -> PortResult<String> {
        if self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(PortError::Unavailable("test: throttled".into()));
        }
        self.inner.send(email).await
    }
}

#[tokio::test]
async fn a_failed_send_is_retried_and_then_sent_once() {
    let mut f = fixture();
    f.state.mailer = Arc::new(Flaky {
        inner: f.backend.mailer(),
        fail: AtomicU32::new(1),
    });
    f.store(record(Some(TO), &["received"])).await;
    let response = handle(&f.state, sample()).await;
    assert_eq!(failed(&response), [MESSAGE]);
    assert!(
        !f.marker("received").await,
        "the marker is removed for the retry"
    );
    assert!(f.outbox().is_empty());
    // The queue redelivers.
    let response = handle(&f.state, sample()).await;
    assert!(failed(&response).is_empty());
    assert_eq!(f.outbox().len(), 1);
    assert!(f.marker("received").await);
    let response = handle(&f.state, sample()).await;
    assert!(failed(&response).is_empty());
    assert_eq!(f.outbox().len(), 1);
}

#[tokio::test]
async fn malformed_and_foreign_messages_are_dropped_not_retried() {
    let f = fixture();
    f.store(record(Some(TO), &["received", "payment_requested"]))
        .await;
    let other_app = "01936f6e-7c1a-7cc2-9d6e-1f2a3b4c5d6f";
    let bodies = [
        String::new(),
        "{".into(),
        "[]".into(),
        "null".into(),
        "{\"tenant\": \"272060\"}".into(),
        format!(
            "{{\"tenant\": \"272061\", \"application\": \"{APPLICATION}\", \"event\": \"received\"}}"
        ),
        format!(
            "{{\"tenant\": \"131016\", \"application\": \"{APPLICATION}\", \"event\": \"received\"}}"
        ),
        format!(
            "{{\"tenant\": \"272060\", \"application\": \"{other_app}\", \"event\": \"received\"}}"
        ),
        "{\"tenant\": \"272060\", \"application\": \"not-an-id\", \"event\": \"received\"}".into(),
        format!("{{\"tenant\": \"272060\", \"application\": \"{APPLICATION}\", \"event\": 5}}"),
        format!(
            "{{\"tenant\": \"272060\", \"application\": \"{APPLICATION}\", \"event\": \"unknown\"}}"
        ),
        // A payment notice for an application without a payment ledger: no amounts to state.
        format!(
            "{{\"tenant\": \"272060\", \"application\": \"{APPLICATION}\", \"event\": \"payment_requested\"}}"
        ),
        "x".repeat(100_000),
    ];
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let response = handle(&f.state, event_with(&refs)).await;
    assert!(failed(&response).is_empty(), "{response:?}");
    assert!(f.outbox().is_empty());
}

#[tokio::test]
async fn a_title_cannot_inject_mail_headers() {
    let f = fixture();
    let mut r = record(Some(TO), &["received"]);
    r.form_title = "給付金\r\nBcc: victim@example.jp\r\n\r\n本文".into();
    f.store(r).await;
    assert!(failed(&handle(&f.state, sample()).await).is_empty());
    let mails = f.outbox();
    assert_eq!(mails.len(), 1);
    let (to, subject, _) = &mails[0];
    assert_eq!(to, TO);
    assert!(
        !subject.contains('\r') && !subject.contains('\n'),
        "{subject:?}"
    );
    let raw: String = std::fs::read_dir(f.dir.path().join("outbox"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(!raw.contains("Bcc:"), "{raw}");
}

#[tokio::test]
async fn a_store_failure_is_retried() {
    let mut f = fixture();
    f.state.items = Arc::new(madoguchi_tests::UnavailableItemStore);
    let mut ev = sample();
    let mut junk = ev.records[0].clone();
    junk.message_id = Some("junk".into());
    junk.body = Some("{".into());
    ev.records.push(junk);
    let response = handle(&f.state, ev).await;
    assert_eq!(failed(&response), [MESSAGE]);
    assert!(f.outbox().is_empty());
}
