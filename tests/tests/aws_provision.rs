//! AWS only: `madoguchi_aws::provision` creates everything once and finds it again, and the
//! result reads back through the environment variables the Lambda functions use.

use std::sync::Arc;
use std::time::Duration;

use madoguchi_aws::provision::{ProvisionSpec, provision};
use madoguchi_aws::{AwsBackend, AwsResources};
use madoguchi_ports::{
    EncryptionContext, Item, ItemStore, Key, Keys, OutgoingMessage, Queue, SystemClock,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_is_idempotent_and_round_trips_through_env() {
    let endpoint = madoguchi_tests::aws_endpoint();
    let backend = AwsBackend::local(&endpoint, Arc::new(SystemClock)).await;
    let prefix = format!("mdg-{}", uuid::Uuid::now_v7().simple());
    let spec = ProvisionSpec::named(&prefix)
        .bucket("attachments")
        .bucket("linkage-inbound")
        .queue("notify", Duration::from_secs(30), 5)
        .mail_from(&format!("no-reply@{prefix}.example.jp"));
    let first = provision(&backend, &spec).await.expect("provision");
    let again = provision(&backend, &spec).await.expect("provision again");
    assert_eq!(first, again, "the same resources are found again");

    let vars = first.to_vars();
    let names: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
    for expected in [
        "MADOGUCHI_TABLE",
        "MADOGUCHI_BUCKET_ATTACHMENTS",
        "MADOGUCHI_BUCKET_LINKAGE_INBOUND",
        "MADOGUCHI_QUEUE_NOTIFY_URL",
        "MADOGUCHI_QUEUE_NOTIFY_DLQ_URL",
        "MADOGUCHI_DATA_KEY_ID",
        "MADOGUCHI_MAC_KEY_ID",
        "MADOGUCHI_MAIL_FROM",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let res = AwsResources::from_vars(vars).unwrap();
    assert_eq!(res, first);

    // The resources work through the adapters.
    let items = backend.items(&res.table);
    items
        .put(
            Item::new(Key::new("131016#X", "Y"), serde_json::json!({})),
            madoguchi_ports::Condition::NotExists,
        )
        .await
        .unwrap();
    let queue = backend.queue(res.queue_url("notify").unwrap());
    queue
        .send_batch(vec![OutgoingMessage::new("hello")])
        .await
        .unwrap();
    let keys = backend.keys(res.data_key_id().unwrap(), res.mac_key_id().unwrap());
    let ctx = EncryptionContext::new("131016", "test");
    let dk = keys.generate_data_key(&ctx).await.unwrap();
    assert_eq!(
        *keys.unwrap_data_key(&dk.wrapped, &ctx).await.unwrap(),
        *dk.plaintext
    );
    // Keys are also addressable by alias.
    let by_alias = backend.keys(&spec.data_key_alias, &spec.mac_key_alias);
    assert_eq!(
        *by_alias.unwrap_data_key(&dk.wrapped, &ctx).await.unwrap(),
        *dk.plaintext
    );
    assert_eq!(
        by_alias.mac(&ctx, b"x").await.unwrap(),
        keys.mac(&ctx, b"x").await.unwrap()
    );
}
