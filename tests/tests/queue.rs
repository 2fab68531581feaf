//! Queue contract and the consumer step `drive_once`: partial batch failures, redelivery,
//! dead letters.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use madoguchi_ports::{
    BatchHandler, BatchOutcome, OutgoingMessage, PortError, Queue, ReceivedMessage,
    RedeliveryPolicy, drive_once,
};
use madoguchi_tests::{Env, contract_tests};

contract_tests!(
    send_receive_delete,
    redelivery_after_failed_batch_item,
    dead_letter_after_max_receives,
    batch_size_outside_one_to_ten_refused,
);

const WAIT: Duration = Duration::from_secs(1);

/// Retry at once: the tests do not wait for backoff.
const NOW: RedeliveryPolicy = RedeliveryPolicy {
    base: Duration::ZERO,
    max: Duration::ZERO,
};

/// Drains what is visible now (a few receives), returning the bodies.
async fn receive_all(queue: &dyn Queue) -> Vec<ReceivedMessage> {
    let mut out = Vec::new();
    for _ in 0..5 {
        let batch = queue.receive(10, WAIT).await.expect("receive");
        if batch.is_empty() && !out.is_empty() {
            break;
        }
        out.extend(batch);
    }
    out
}

async fn send_receive_delete(env: Env) {
    let pair = env.queue("notify", Duration::from_secs(30), 5).await;
    let q = pair.queue.as_ref();
    q.send_batch(vec![
        OutgoingMessage::new(r#"{"kind":"mail","id":1}"#),
        OutgoingMessage::new("二番目"),
        OutgoingMessage::new("third"),
    ])
    .await
    .expect("send");
    let err = q
        .send_batch(vec![])
        .await
        .expect_err("an empty batch is refused");
    assert!(matches!(err, PortError::Invalid(_)), "{err:?}");
    let got = receive_all(q).await;
    let mut bodies: Vec<_> = got.iter().map(|m| m.body.as_str()).collect();
    bodies.sort();
    assert_eq!(bodies, ["third", r#"{"kind":"mail","id":1}"#, "二番目"]);
    assert!(got.iter().all(|m| m.receive_count == 1));
    // Received messages are hidden for the visibility timeout.
    assert!(q.receive(10, Duration::ZERO).await.unwrap().is_empty());
    let receipts: Vec<String> = got.iter().map(|m| m.receipt.clone()).collect();
    q.delete(&receipts).await.expect("delete");
    q.delete(&receipts)
        .await
        .expect("deleting again is ignored");
    assert!(q.receive(10, Duration::ZERO).await.unwrap().is_empty());
}

/// Fails the message with body `fail_body` while its receive count is at most `fail_until`;
/// records every delivery as (body, receive_count).
struct Handler {
    fail_body: &'static str,
    fail_until: u32,
    seen: Mutex<Vec<(String, u32)>>,
}

#[async_trait]
impl BatchHandler for Handler {
    async fn handle(&self, batch: Vec<ReceivedMessage>) -> BatchOutcome {
        let mut failed = Vec::new();
        let mut seen = self.seen.lock().unwrap();
        for m in batch {
            seen.push((m.body.clone(), m.receive_count));
            if m.body == self.fail_body && m.receive_count <= self.fail_until {
                failed.push(m.message_id);
            }
        }
        BatchOutcome {
            failed_message_ids: failed,
        }
    }
}

async fn redelivery_after_failed_batch_item(env: Env) {
    let pair = env.queue("jobs", Duration::from_secs(30), 5).await;
    let q = pair.queue.as_ref();
    q.send_batch(["a", "b", "c"].map(OutgoingMessage::new).to_vec())
        .await
        .unwrap();
    let handler = Handler {
        fail_body: "b",
        fail_until: 1,
        seen: Mutex::new(Vec::new()),
    };
    let (mut succeeded, mut failed) = (0, 0);
    for _ in 0..10 {
        let report = drive_once(q, &handler, WAIT, NOW).await.expect("drive");
        succeeded += report.succeeded;
        failed += report.failed;
        if succeeded == 3 {
            break;
        }
    }
    assert_eq!((succeeded, failed), (3, 1));
    let seen = handler.seen.lock().unwrap().clone();
    let mut by_body: HashMap<&str, Vec<u32>> = HashMap::new();
    for (body, count) in &seen {
        by_body.entry(body.as_str()).or_default().push(*count);
    }
    assert_eq!(by_body["a"], [1], "succeeded messages are deleted");
    assert_eq!(by_body["c"], [1]);
    assert_eq!(
        by_body["b"],
        [1, 2],
        "the failed message comes back, counted"
    );
    let last = drive_once(q, &handler, Duration::ZERO, NOW).await.unwrap();
    assert_eq!(last.received, 0, "nothing left");
    assert!(
        pair.dead_letters
            .receive(10, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn dead_letter_after_max_receives(env: Env) {
    const MAX_RECEIVES: u32 = 3;
    let pair = env
        .queue("poison", Duration::from_secs(30), MAX_RECEIVES)
        .await;
    let q = pair.queue.as_ref();
    q.send_batch(vec![
        OutgoingMessage::new("poison"),
        OutgoingMessage::new("fine"),
    ])
    .await
    .unwrap();
    let handler = Handler {
        fail_body: "poison",
        fail_until: u32::MAX,
        seen: Mutex::new(Vec::new()),
    };
    let mut quiet = 0;
    for _ in 0..20 {
        let report = drive_once(q, &handler, WAIT, NOW).await.expect("drive");
        quiet = if report.received == 0 { quiet + 1 } else { 0 };
        if quiet == 2 {
            break;
        }
    }
    let poison_counts: Vec<u32> = handler
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(b, _)| b == "poison")
        .map(|(_, c)| *c)
        .collect();
    assert_eq!(
        poison_counts,
        [1, 2, 3],
        "delivered max_receives times, then no more"
    );
    let dead = receive_all(pair.dead_letters.as_ref()).await;
    let bodies: Vec<_> = dead.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(
        bodies,
        ["poison"],
        "only the failing message is dead-lettered"
    );
    assert!(q.receive(10, Duration::ZERO).await.unwrap().is_empty());
}

async fn batch_size_outside_one_to_ten_refused(env: Env) {
    let pair = env.queue("big", Duration::from_secs(30), 5).await;
    let eleven = (0..11)
        .map(|i| OutgoingMessage::new(i.to_string()))
        .collect();
    let err = pair
        .queue
        .send_batch(eleven)
        .await
        .expect_err("11 messages");
    assert!(matches!(err, PortError::Invalid(_)), "{err:?}");
    assert!(
        pair.queue
            .receive(10, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
}
