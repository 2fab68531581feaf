//! Embedded-specific behaviour over a real data directory. The port contracts themselves are
//! also checked by the cross-adapter contract suite in `tests/`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use jiff::{SignedDuration, Timestamp};
use madoguchi_ports::{
    BlobStore, Condition, Cursor, EncryptionContext, FixedClock, Index, Item, ItemStore, Key, Keys,
    Mailer, OutgoingMessage, PortError, PresignMethod, QueryRequest, Queue, SortKeyCondition, TxOp,
};
use serde_json::json;
use tokio::io::AsyncReadExt;

use crate::{EmbeddedBackend, QueueSettings};

const BASE: &str = "http://127.0.0.1:8080/";

fn t0() -> Timestamp {
    "2026-04-01T00:00:00Z".parse().unwrap()
}

fn open(dir: &Path) -> (EmbeddedBackend, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::new(t0()));
    let b = EmbeddedBackend::open(dir, BASE, clock.clone()).unwrap();
    (b, clock)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every file name under `dir`, recursively.
fn all_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(
                all_names(&e.path())
                    .into_iter()
                    .map(|n| format!("{name}/{n}")),
            );
        } else {
            out.push(name);
        }
    }
    out
}

fn item(pk: &str, sk: &str) -> Item {
    Item::new(Key::new(pk, sk), json!({ "sk": sk }))
}

// ---------------------------------------------------------------------------------------------
// Data directory, SQLite, keys on disk

#[tokio::test]
async fn open_creates_layout_with_private_keys_and_wal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let dir = dir.as_path();
    let (b, _) = open(dir);
    assert_eq!(mode(dir), 0o700);
    // Touch the database so the WAL exists, then check modes of everything holding data.
    b.items()
        .put(item("131016#A", "S#1"), Condition::None)
        .await
        .unwrap();
    b.blobs("uploads")
        .put("a.txt", Bytes::from_static(b"x"), None)
        .await
        .unwrap();
    for f in [
        "madoguchi.sqlite3",
        "madoguchi.sqlite3-wal",
        "blobs/uploads/a.txt",
    ] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    for sub in ["blobs", "keys", "outbox"] {
        assert!(dir.join(sub).is_dir(), "{sub}");
    }
    assert!(dir.join("madoguchi.sqlite3").is_file());
    assert_eq!(mode(&dir.join("keys")), 0o700);
    for key in ["master.key", "presign.key"] {
        let p = dir.join("keys").join(key);
        assert_eq!(mode(&p), 0o600, "{key}");
        assert_eq!(std::fs::read(&p).unwrap().len(), 32);
    }
    assert_eq!(all_names(&dir.join("keys")).len(), 2, "no temp key files");
    b.db.with_conn(|c| {
        let jm: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(jm, "wal");
        let sync: i64 = c.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        assert_eq!(sync, 1, "NORMAL");
        let v: i64 = c
            .query_row("SELECT MAX(version) FROM migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, crate::db::MIGRATION_COUNT as i64);
    });
}

#[tokio::test]
async fn reopen_keeps_keys_items_queues_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = EncryptionContext::new("131016", "my-number");
    let (wrapped, plain, mac, url) = {
        let (b, _) = open(dir.path());
        b.items()
            .put(item("131016#A", "S#1"), Condition::NotExists)
            .await
            .unwrap();
        b.queue("q", QueueSettings::default())
            .send_batch(vec![OutgoingMessage::new("m1")])
            .await
            .unwrap();
        b.blobs("uploads")
            .put("x/y.txt", Bytes::from_static(b"hello"), Some("text/plain"))
            .await
            .unwrap();
        let dk = b.keys().generate_data_key(&ctx).await.unwrap();
        let mac = b.keys().mac(&ctx, b"123456789012").await.unwrap();
        let url = b
            .blobs("uploads")
            .presign("x/y.txt", PresignMethod::Get, Duration::from_secs(60))
            .await
            .unwrap()
            .url;
        (dk.wrapped, *dk.plaintext, mac, url)
    };
    let (b, _) = open(dir.path());
    assert_eq!(
        *b.keys().unwrap_data_key(&wrapped, &ctx).await.unwrap(),
        plain
    );
    assert_eq!(b.keys().mac(&ctx, b"123456789012").await.unwrap(), mac);
    let query = url.split_once('?').unwrap().1;
    b.presign_verifier()
        .verify("uploads", "x/y.txt", PresignMethod::Get, query, t0())
        .unwrap();
    assert!(
        b.items()
            .get(&Key::new("131016#A", "S#1"))
            .await
            .unwrap()
            .is_some()
    );
    let got = b
        .queue("q", QueueSettings::default())
        .receive(10, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let meta = b.blobs("uploads").head("x/y.txt").await.unwrap().unwrap();
    assert_eq!(meta.content_type.as_deref(), Some("text/plain"));
}

// ---------------------------------------------------------------------------------------------
// Items

#[tokio::test]
async fn conditions_and_expiry_use_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let (b, clock) = open(dir.path());
    let s = b.items();
    let k = Key::new("131016#A", "S#1");
    let mut it = item("131016#A", "S#1");
    it.expires_at = Some(t0().as_second() + 60);
    s.put(it.clone(), Condition::NotExists).await.unwrap();
    assert!(
        s.put(it.clone(), Condition::NotExists)
            .await
            .unwrap_err()
            .is_condition_failed()
    );
    let mut v2 = it.clone();
    v2.version = 2;
    assert!(
        s.put(v2.clone(), Condition::VersionEquals(7))
            .await
            .unwrap_err()
            .is_condition_failed()
    );
    s.put(v2.clone(), Condition::VersionEquals(1))
        .await
        .unwrap();
    assert_eq!(s.get(&k).await.unwrap().unwrap().version, 2);

    clock.advance(SignedDuration::from_secs(60));
    assert!(s.get(&k).await.unwrap().is_none(), "expired at expires_at");
    assert!(
        s.query(QueryRequest::partition("131016#A"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        s.put(v2.clone(), Condition::VersionEquals(2))
            .await
            .unwrap_err()
            .is_condition_failed(),
        "an expired item has no version"
    );
    s.put(item("131016#A", "S#1"), Condition::NotExists)
        .await
        .unwrap();
    s.delete(&k, Condition::VersionEquals(1)).await.unwrap();
    s.delete(&k, Condition::None).await.unwrap();
    assert!(
        s.delete(&k, Condition::VersionEquals(1))
            .await
            .unwrap_err()
            .is_condition_failed()
    );
}

#[tokio::test]
async fn query_ranges_order_and_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = open(dir.path());
    let s = b.items();
    for i in 0..7 {
        s.put(item("P", &format!("A#{i}")), Condition::None)
            .await
            .unwrap();
    }
    s.put(item("P", "B#0"), Condition::None).await.unwrap();
    s.put(item("Q", "A#9"), Condition::None).await.unwrap();

    let sks =
        |p: &madoguchi_ports::Page| p.items.iter().map(|i| i.key.sk.clone()).collect::<Vec<_>>();
    let all = s.query(QueryRequest::partition("P")).await.unwrap();
    assert_eq!(all.items.len(), 8);
    assert!(all.next.is_none());

    let mut seen = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = s
            .query(
                QueryRequest::partition("P")
                    .sk(SortKeyCondition::BeginsWith("A#".into()))
                    .descending()
                    .limit(3)
                    .after(cursor.clone()),
            )
            .await
            .unwrap();
        seen.extend(sks(&page));
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(
        seen,
        (0..7).rev().map(|i| format!("A#{i}")).collect::<Vec<_>>()
    );

    let between = s
        .query(
            QueryRequest::partition("P").sk(SortKeyCondition::Between("A#2".into(), "A#4".into())),
        )
        .await
        .unwrap();
    assert_eq!(sks(&between), ["A#2", "A#3", "A#4"]);

    let first = s
        .query(QueryRequest::partition("P").limit(2))
        .await
        .unwrap();
    let c = first.next.unwrap();
    for bad in [
        QueryRequest::partition("Q").after(Some(c.clone())),
        QueryRequest::partition("P")
            .on(Index::Gsi1)
            .after(Some(c.clone())),
        QueryRequest::partition("P").after(Some(Cursor("garbage".into()))),
        QueryRequest::partition("P").limit(0),
    ] {
        assert!(matches!(s.query(bad).await, Err(PortError::Invalid(_))));
    }
}

#[tokio::test]
async fn gsi_pages_stably_over_equal_index_sort_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = open(dir.path());
    let s = b.items();
    for i in 0..5 {
        let mut it = item(&format!("T#{i}"), "META");
        it.gsi1 = Some(Key::new("STATUS#open", "2026-04-01"));
        s.put(it, Condition::None).await.unwrap();
    }
    s.put(item("T#9", "META"), Condition::None).await.unwrap(); // not in the index
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = s
            .query(
                QueryRequest::partition("STATUS#open")
                    .on(Index::Gsi1)
                    .limit(2)
                    .after(cursor),
            )
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|i| i.key.pk.clone()));
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["T#0", "T#1", "T#2", "T#3", "T#4"]);
}

#[tokio::test]
async fn transact_is_all_or_nothing_and_names_the_failing_op() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = open(dir.path());
    let s = b.items();
    s.put(item("P", "existing"), Condition::None).await.unwrap();
    let err = s
        .transact(vec![
            TxOp::Put(item("P", "new"), Condition::NotExists),
            TxOp::Check(Key::new("P", "existing"), Condition::VersionEquals(1)),
            TxOp::Delete(Key::new("P", "existing"), Condition::None),
        ])
        .await;
    assert!(matches!(err, Err(PortError::Invalid(_))), "same key twice");
    let err = s
        .transact(vec![
            TxOp::Put(item("P", "new"), Condition::NotExists),
            TxOp::Check(Key::new("P", "existing"), Condition::VersionEquals(1)),
            TxOp::Put(item("P", "existing2"), Condition::None),
            TxOp::Put(item("P", "existing"), Condition::NotExists),
        ])
        .await;
    assert!(matches!(err, Err(PortError::Invalid(_))));
    let err = s
        .transact(vec![
            TxOp::Put(item("P", "new"), Condition::NotExists),
            TxOp::Check(Key::new("P", "existing"), Condition::VersionEquals(1)),
            TxOp::Check(Key::new("P", "missing"), Condition::VersionEquals(1)),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::ConditionFailed { index: Some(2) }));
    assert!(s.get(&Key::new("P", "new")).await.unwrap().is_none());

    let too_many = (0..26)
        .map(|i| TxOp::Put(item("P", &format!("k{i}")), Condition::None))
        .collect();
    assert!(matches!(
        s.transact(too_many).await,
        Err(PortError::Invalid(_))
    ));
    let ok = (0..25)
        .map(|i| TxOp::Put(item("P", &format!("k{i}")), Condition::None))
        .collect();
    s.transact(ok).await.unwrap();
}

#[tokio::test]
async fn increment_is_atomic_under_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = open(dir.path());
    let k = Key::new("131016#COUNTER", "applications");
    assert_eq!(b.items().increment(&k, 0).await.unwrap(), 0);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let s = b.items();
        let k = k.clone();
        tasks.push(tokio::spawn(
            async move { s.increment(&k, 1).await.unwrap() },
        ));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap());
    }
    got.sort();
    assert_eq!(got, (1..=20).collect::<Vec<_>>());
    let stored = b.items().get(&k).await.unwrap().unwrap();
    assert_eq!(stored.data, json!({ "n": 20 }));
}

// ---------------------------------------------------------------------------------------------
// Queue

fn settings(max_receives: u32) -> QueueSettings {
    QueueSettings {
        visibility_timeout: Duration::from_secs(30),
        max_receives,
    }
}

#[tokio::test]
async fn visibility_timeout_follows_the_clock_and_retry_later() {
    let dir = tempfile::tempdir().unwrap();
    let (b, clock) = open(dir.path());
    let q = b.queue("jobs", settings(5));
    q.send_batch(vec![OutgoingMessage::new("a"), OutgoingMessage::new("b")])
        .await
        .unwrap();
    let first = q.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|m| m.receive_count == 1));
    assert!(
        uuid::Uuid::parse_str(&first[0].message_id)
            .unwrap()
            .get_version_num()
            == 7
    );
    assert!(q.receive(10, Duration::ZERO).await.unwrap().is_empty());
    clock.advance(SignedDuration::from_secs(30));
    let second = q.receive(1, Duration::ZERO).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].receive_count, 2);
    // The first receipt of that message is stale now: deleting with it changes nothing.
    let stale = first
        .iter()
        .find(|m| m.message_id == second[0].message_id)
        .unwrap();
    q.delete(std::slice::from_ref(&stale.receipt))
        .await
        .unwrap();
    assert_eq!(q.approximate_len().await.unwrap(), 2);
    q.retry_later(&second[0].receipt, Duration::from_secs(5))
        .await
        .unwrap();
    clock.advance(SignedDuration::from_secs(4));
    let other = q.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(other.len(), 1, "only the other message is visible");
    assert_ne!(other[0].message_id, second[0].message_id);
    clock.advance(SignedDuration::from_secs(1));
    let again = q.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(again[0].message_id, second[0].message_id);
    q.delete(&[again[0].receipt.clone(), other[0].receipt.clone()])
        .await
        .unwrap();
    assert_eq!(q.approximate_len().await.unwrap(), 0);
}

#[tokio::test]
async fn message_moves_to_dlq_after_max_receives() {
    let dir = tempfile::tempdir().unwrap();
    let (b, clock) = open(dir.path());
    let q = b.queue("notify", settings(2));
    q.send_batch(vec![OutgoingMessage::new("poison")])
        .await
        .unwrap();
    for n in 1..=2 {
        let got = q.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(got[0].receive_count, n);
        clock.advance(SignedDuration::from_secs(30));
    }
    assert!(q.receive(10, Duration::ZERO).await.unwrap().is_empty());
    assert_eq!(q.approximate_len().await.unwrap(), 0);
    let dlq = b.queue("notify-dlq", settings(0));
    assert_eq!(q.dead_letter_queue_name(), "notify-dlq");
    let dead = dlq.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "poison");
    assert_eq!(dead[0].receive_count, 1);
}

#[tokio::test]
async fn long_poll_returns_when_a_message_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = open(dir.path());
    let q = b.queue("poll", settings(5));
    let started = std::time::Instant::now();
    assert!(
        q.receive(10, Duration::from_millis(120))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(started.elapsed() >= Duration::from_millis(120));

    let sender = b.queue("poll", settings(5));
    let send = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        sender
            .send_batch(vec![OutgoingMessage::new("late")])
            .await
            .unwrap();
    });
    let started = std::time::Instant::now();
    let got = q.receive(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert!(started.elapsed() < Duration::from_secs(2));
    send.await.unwrap();
}

#[tokio::test]
async fn queue_limits_mirror_sqs() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = open(dir.path());
    let q = b.queue("limits", settings(5));
    let eleven = (0..11)
        .map(|i| OutgoingMessage::new(i.to_string()))
        .collect();
    assert!(matches!(
        q.send_batch(eleven).await,
        Err(PortError::Invalid(_))
    ));
    assert!(matches!(
        q.send_batch(vec![OutgoingMessage::new("bad\u{0}")]).await,
        Err(PortError::Invalid(_))
    ));
    assert!(matches!(
        q.receive(11, Duration::ZERO).await,
        Err(PortError::Invalid(_))
    ));
    let bad = b.queue("no spaces", settings(5));
    assert!(matches!(
        bad.send_batch(vec![OutgoingMessage::new("x")]).await,
        Err(PortError::Invalid(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Blobs

#[tokio::test]
async fn blob_put_is_atomic_and_leaves_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = open(dir.path());
    let s = b.blobs("uploads");
    let m1 = s
        .put(
            "131016/a/b.pdf",
            Bytes::from_static(b"one"),
            Some("application/pdf"),
        )
        .await
        .unwrap();
    assert_eq!(m1.size, 3);
    let m2 = s
        .put("131016/a/b.pdf", Bytes::from_static(b"two!"), None)
        .await
        .unwrap();
    assert_ne!(m1.etag, m2.etag);
    assert_eq!(
        m2.etag,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"two!"))
    );
    let on_disk = dir.path().join("blobs/uploads/131016/a/b.pdf");
    assert_eq!(std::fs::read(&on_disk).unwrap(), b"two!");
    let names = all_names(&dir.path().join("blobs/uploads"));
    assert!(
        names.iter().all(|n| !n.contains("tmp")),
        "temp files left: {names:?}"
    );
    let (meta, mut body) = s.get("131016/a/b.pdf").await.unwrap();
    assert_eq!(meta, m2);
    let mut buf = Vec::new();
    body.read_to_end(&mut buf).await.unwrap();
    assert_eq!(buf, b"two!");

    s.delete("131016/a/b.pdf").await.unwrap();
    s.delete("131016/a/b.pdf").await.unwrap();
    assert!(s.head("131016/a/b.pdf").await.unwrap().is_none());
    assert!(matches!(
        s.get("131016/a/b.pdf").await,
        Err(PortError::NotFound)
    ));
    assert!(
        !dir.path().join("blobs/uploads/131016").exists(),
        "empty dirs pruned"
    );
}

#[tokio::test]
async fn blob_list_is_lexicographic_with_start_after_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = open(dir.path());
    let s = b.blobs("inbox");
    let keys = ["a-c", "a/b", "a/c/d", "a0", "b", "ab/x", "a/b2"];
    for k in keys {
        s.put(k, Bytes::from(k.as_bytes().to_vec()), None)
            .await
            .unwrap();
    }
    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort_unstable();
    let listed: Vec<String> = s
        .list("", None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(listed, sorted);

    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.list("a", after.as_deref(), 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|m| m.key.clone());
        paged.extend(page.into_iter().map(|m| m.key));
    }
    let expected: Vec<&str> = sorted
        .iter()
        .copied()
        .filter(|k| k.starts_with('a'))
        .collect();
    assert_eq!(paged, expected);
    let under: Vec<String> = s
        .list("a/", None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(under, ["a/b", "a/b2", "a/c/d"]);
    assert!(s.list("zzz/", None, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn hand_dropped_files_are_listed_with_computed_etags() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = open(dir.path());
    let s = b.blobs("inbox");
    let drop_dir = dir.path().join("blobs/inbox/jumin");
    std::fs::create_dir_all(&drop_dir).unwrap();
    std::fs::write(drop_dir.join("2026-04-01.csv"), b"id,name\n").unwrap();
    let listed = s.list("jumin/", None, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, "jumin/2026-04-01.csv");
    assert_eq!(
        listed[0].etag,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"id,name\n"))
    );
    // Overwriting by hand changes the etag although a sidecar exists.
    std::fs::write(drop_dir.join("2026-04-01.csv"), b"id,name\n1,x\n").unwrap();
    let head = s.head("jumin/2026-04-01.csv").await.unwrap().unwrap();
    assert_eq!(head.size, 12);
    assert_ne!(head.etag, listed[0].etag);
}

#[tokio::test]
async fn blob_keys_that_collide_or_escape_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = open(dir.path());
    let s = b.blobs("uploads");
    s.put("a", Bytes::from_static(b"x"), None).await.unwrap();
    assert!(matches!(
        s.put("a/b", Bytes::from_static(b"x"), None).await,
        Err(PortError::Invalid(_))
    ));
    s.put("c/d", Bytes::from_static(b"x"), None).await.unwrap();
    assert!(matches!(
        s.put("c", Bytes::from_static(b"x"), None).await,
        Err(PortError::Invalid(_))
    ));
    for bad in ["../etc/passwd", "/abs", "a//b", ".madoguchi-meta/a"] {
        assert!(
            matches!(s.head(bad).await, Err(PortError::Invalid(_))),
            "{bad}"
        );
    }
    let bad_bucket = b.blobs("../x");
    assert!(matches!(
        bad_bucket.head("a").await,
        Err(PortError::Invalid(_))
    ));
    assert!(
        all_names(&dir.path().join("blobs/uploads"))
            .iter()
            .all(|n| !n.contains("tmp"))
    );
}

#[tokio::test]
async fn presigned_urls_verify_only_untampered_unexpired_same_method() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = open(dir.path());
    let s = b.blobs("uploads");
    let key = "131016/添付 1.pdf";
    let p = s
        .presign(key, PresignMethod::Put, Duration::from_secs(300))
        .await
        .unwrap();
    assert!(p.url.starts_with(
        "http://127.0.0.1:8080/_blobs/uploads/131016/%E6%B7%BB%E4%BB%98%201.pdf?X-Method=PUT&X-Expires="
    ));
    let query = p.url.split_once('?').unwrap().1.to_owned();
    let v = b.presign_verifier();
    let now = t0();
    v.verify("uploads", key, PresignMethod::Put, &query, now)
        .unwrap();
    v.verify(
        "uploads",
        key,
        PresignMethod::Put,
        &format!("?{query}"),
        now,
    )
    .unwrap();
    let at_expiry = now.checked_add(SignedDuration::from_secs(300)).unwrap();
    v.verify("uploads", key, PresignMethod::Put, &query, at_expiry)
        .unwrap();

    let refused = |bucket: &str, k: &str, m: PresignMethod, q: &str, at: Timestamp| {
        matches!(v.verify(bucket, k, m, q, at), Err(PortError::Invalid(_)))
    };
    let later = now.checked_add(SignedDuration::from_secs(301)).unwrap();
    assert!(
        refused("uploads", key, PresignMethod::Put, &query, later),
        "expired"
    );
    assert!(
        refused("uploads", key, PresignMethod::Get, &query, now),
        "method"
    );
    assert!(
        refused(
            "uploads",
            "131016/other.pdf",
            PresignMethod::Put,
            &query,
            now
        ),
        "key"
    );
    assert!(
        refused("other", key, PresignMethod::Put, &query, now),
        "bucket"
    );
    let longer = query.replace(
        &format!("X-Expires={}", now.as_second() + 300),
        &format!("X-Expires={}", now.as_second() + 9999),
    );
    assert_ne!(longer, query);
    assert!(
        refused("uploads", key, PresignMethod::Put, &longer, later),
        "expiry tampered"
    );
    let mut sig_tampered = query.clone();
    let last = sig_tampered.pop().unwrap();
    sig_tampered.push(if last == '0' { '1' } else { '0' });
    assert!(
        refused("uploads", key, PresignMethod::Put, &sig_tampered, now),
        "signature"
    );
    let as_get = query.replace("X-Method=PUT", "X-Method=GET");
    assert!(
        refused("uploads", key, PresignMethod::Get, &as_get, now),
        "method swapped"
    );
    assert!(
        refused("uploads", key, PresignMethod::Put, "", now),
        "empty"
    );
    assert!(
        refused(
            "uploads",
            key,
            PresignMethod::Put,
            &format!("{query}&{query}"),
            now
        ),
        "repeated"
    );

    // Another data dir has another presign key.
    let other_dir = tempfile::tempdir().unwrap();
    let (other, _) = open(other_dir.path());
    assert!(matches!(
        other
            .presign_verifier()
            .verify("uploads", key, PresignMethod::Put, &query, now),
        Err(PortError::Invalid(_))
    ));
    assert!(matches!(
        s.presign(key, PresignMethod::Get, Duration::from_secs(8 * 24 * 3600))
            .await,
        Err(PortError::Invalid(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Mail

#[tokio::test]
async fn mail_lands_in_the_outbox_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = open(dir.path());
    let email = madoguchi_ports::Email {
        from: "noreply@city.example.jp".into(),
        to: vec!["taro@example.jp".into()],
        subject: "申請を受け付けました".into(),
        text_body: "山田 太郎 様".into(),
    };
    let id = b.mailer().send(&email).await.unwrap();
    let names = all_names(&dir.path().join("outbox"));
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(names[0], format!("20260401T000000Z-{id}.eml"));
    let path = dir.path().join("outbox").join(&names[0]);
    assert_eq!(mode(&path), 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(&format!("Message-ID: <{id}@city.example.jp>")));
    assert!(!text.contains("山田"), "body is base64");

    let injected = madoguchi_ports::Email {
        to: vec!["a@example.jp\r\nBcc: evil@example.com".into()],
        ..email
    };
    assert!(matches!(
        b.mailer().send(&injected).await,
        Err(PortError::Invalid(_))
    ));
}
