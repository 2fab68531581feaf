//! The handler driven with the sample SQS events in `events/linkage-inbound/`, on a real
//! SQLite store. The sample objects do not exist in the bucket: each file is registered and
//! rejected with a report (`file.io`), which is what an object deleted before its turn gets.

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use madoguchi_domain::tenant::TenantId;
use madoguchi_fieldcrypt::{CachePolicy, FieldCipher};
use madoguchi_linkage_inbound::{InboundState, handle};
use madoguchi_ports::{BlobStore, Clock, ItemStore, Keys, QueryRequest, SystemClock};

fn event(name: &str) -> SqsEvent {
    let path = format!(
        "{}/../../events/linkage-inbound/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn state(items: Arc<dyn ItemStore>, dir: &std::path::Path) -> InboundState {
    let backend = backend(dir);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let keys: Arc<dyn Keys> = backend.keys();
    let blobs: Arc<dyn BlobStore> = backend.blobs("linkage");
    InboundState::new(
        items,
        blobs,
        FieldCipher::new(keys, clock.clone(), CachePolicy::default()),
        clock,
        TenantId::parse("272060").unwrap(),
    )
}

fn backend(dir: &std::path::Path) -> madoguchi_embedded::EmbeddedBackend {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    madoguchi_embedded::EmbeddedBackend::open(dir, "http://127.0.0.1:9", clock).unwrap()
}

fn embedded(dir: &std::path::Path) -> Arc<dyn ItemStore> {
    backend(dir).items()
}

#[tokio::test]
async fn a_file_delivered_twice_is_registered_once() {
    let dir = tempfile::tempdir().unwrap();
    let items = embedded(dir.path());
    let st = state(items.clone(), dir.path());
    // The sample holds the same notification twice and an s3:TestEvent.
    let response = handle(&st, event("s3-object-created.json")).await;
    assert!(response.batch_item_failures.is_empty());
    // And the whole batch redelivered changes nothing.
    let response = handle(&st, event("s3-object-created.json")).await;
    assert!(response.batch_item_failures.is_empty());
    let page = items
        .query(QueryRequest::partition("272060#LINKAGE#IN#jumin"))
        .await
        .unwrap();
    let sks: Vec<&str> = page.items.iter().map(|i| i.key.sk.as_str()).collect();
    // One checkpoint (done: the object is missing, so the file was rejected with a report),
    // the counter, one registration, one sequence pointer.
    assert_eq!(
        sks,
        [
            "CKPT#inbound/jumin/20261123 差分.csv#096fKKXTRTtl3on89fVO.nfljtsv6qko",
            "COUNTER#SEQ",
            "FILE#inbound/jumin/20261123 差分.csv#096fKKXTRTtl3on89fVO.nfljtsv6qko",
            "SEQ#00000000000000000001",
        ]
    );
    let registration = &page.items[2];
    assert_eq!(registration.data["key"], "inbound/jumin/20261123 差分.csv");
    assert_eq!(registration.data["seq"], 1);
    let blobs = backend(dir.path()).blobs("linkage");
    let (_, mut body) = blobs
        .get("results/jumin/20261123 差分.csv.summary.json")
        .await
        .unwrap();
    let mut json = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut body, &mut json)
        .await
        .unwrap();
    let summary: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(summary["file_error"]["code"], "file.io");
}

#[tokio::test]
async fn the_test_event_alone_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let items = embedded(dir.path());
    let response = handle(
        &state(items.clone(), dir.path()),
        event("s3-test-event.json"),
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    let page = items
        .query(QueryRequest::partition("272060#LINKAGE#IN#jumin"))
        .await
        .unwrap();
    assert!(page.items.is_empty());
}

#[tokio::test]
async fn bodies_that_are_not_notifications_do_not_fail_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut ev = event("s3-test-event.json");
    for body in [
        "",
        "{",
        "[]",
        "{\"Records\": 5}",
        "{\"Records\": [{\"s3\": null}]}",
    ] {
        let mut m = ev.records[0].clone();
        m.body = Some(body.to_owned());
        ev.records.push(m);
    }
    let response = handle(&state(embedded(dir.path()), dir.path()), ev).await;
    assert!(response.batch_item_failures.is_empty());
}

#[tokio::test]
async fn a_store_failure_fails_only_the_messages_it_touched() {
    let dir = tempfile::tempdir().unwrap();
    let response = handle(
        &state(Arc::new(madoguchi_tests::UnavailableItemStore), dir.path()),
        event("s3-object-created.json"),
    )
    .await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    // The two notifications failed; the test event did not need the store.
    assert_eq!(
        failed,
        [
            "059f36b4-87a3-44ab-83d2-661975830a7d",
            "059f36b4-87a3-44ab-83d2-661975830a7e"
        ]
    );
}

mod arbitrary_bodies {
    use super::*;
    use proptest::prelude::*;

    fn body() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,200}",
            // Notification-shaped JSON with arbitrary keys, names and sizes.
            ("[a-zA-Z0-9%+/._-]{0,60}", "[A-Za-z:*]{0,20}", any::<i64>()).prop_map(
                |(key, name, size)| {
                    serde_json::json!({"Records": [{"eventName": name, "s3": {"object": {"key": key, "size": size, "eTag": "e"}}}]})
                        .to_string()
                }
            ),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// With a healthy store, no body fails the batch (a permanent problem must not loop
        /// until the dead-letter queue), and nothing panics.
        #[test]
        fn never_fail_or_panic(bodies in prop::collection::vec(body(), 1..6)) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let dir = tempfile::tempdir().unwrap();
            let mut ev = event("s3-test-event.json");
            let template = ev.records[0].clone();
            ev.records = bodies
                .into_iter()
                .enumerate()
                .map(|(i, b)| {
                    let mut m = template.clone();
                    m.message_id = Some(format!("m{i}"));
                    m.body = Some(b);
                    m
                })
                .collect();
            let response = rt.block_on(handle(&state(embedded(dir.path()), dir.path()), ev));
            prop_assert!(response.batch_item_failures.is_empty());
        }
    }
}
