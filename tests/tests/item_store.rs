//! ItemStore contract: conditions, versions, pagination, secondary index, transactions,
//! expiry, counters, batch writes.

use std::collections::HashSet;

use jiff::SignedDuration;
use madoguchi_ports::{
    Clock, Condition, Cursor, Index, Item, ItemStore, Key, PortError, QueryRequest,
    SortKeyCondition, TxOp,
};
use madoguchi_tests::{Env, Kind, contract_tests};
use serde_json::json;

contract_tests!(
    conditional_put_conflict,
    version_check,
    absent_items,
    data_round_trips,
    pagination_cursor,
    cursor_from_other_partition_refused,
    descending_and_range_queries,
    secondary_index_query,
    transactional_write_rolled_back,
    transaction_too_large_refused,
    expiry_hides_items,
    atomic_increment_under_concurrency,
    query_all_reads_every_page_up_to_a_bound,
    batch_write_reads_back_identical,
    batch_write_overwrites_and_moves_index_entries,
    batch_write_empty_and_invalid,
    batch_read_in_key_order,
);

fn tenant_pk(env: &Env, rest: &str) -> String {
    // Tenant first, as every real key; the env prefix keeps partitions apart across tests.
    format!("131016#{}#{rest}", env.prefix)
}

fn item(pk: &str, sk: &str, version: u64, data: serde_json::Value) -> Item {
    let mut item = Item::new(Key::new(pk, sk), data);
    item.version = version;
    item
}

async fn conditional_put_conflict(env: Env) {
    let store = env.items().await;
    let pk = tenant_pk(&env, "APP");
    store
        .put(
            item(&pk, "A#1", 1, json!({"status": "draft"})),
            Condition::NotExists,
        )
        .await
        .expect("first create");
    let err = store
        .put(
            item(&pk, "A#1", 1, json!({"status": "other"})),
            Condition::NotExists,
        )
        .await
        .expect_err("second create must conflict");
    assert!(
        matches!(err, PortError::ConditionFailed { index: None }),
        "{err:?}"
    );
    let stored = store.get(&Key::new(&pk, "A#1")).await.unwrap().unwrap();
    assert_eq!(
        stored.data,
        json!({"status": "draft"}),
        "the loser changed nothing"
    );
    // Unconditional put overwrites.
    store
        .put(item(&pk, "A#1", 5, json!({"status": "x"})), Condition::None)
        .await
        .unwrap();
    assert_eq!(
        store
            .get(&Key::new(&pk, "A#1"))
            .await
            .unwrap()
            .unwrap()
            .version,
        5
    );
}

async fn version_check(env: Env) {
    let store = env.items().await;
    let pk = tenant_pk(&env, "APP");
    let key = Key::new(&pk, "A#1");
    store
        .put(item(&pk, "A#1", 1, json!({"n": 1})), Condition::NotExists)
        .await
        .unwrap();
    // Read v, write v+1 on VersionEquals(v).
    store
        .put(
            item(&pk, "A#1", 2, json!({"n": 2})),
            Condition::VersionEquals(1),
        )
        .await
        .expect("update on the current version");
    // A concurrent editor that read version 1 loses.
    let err = store
        .put(
            item(&pk, "A#1", 2, json!({"n": 99})),
            Condition::VersionEquals(1),
        )
        .await
        .expect_err("stale version must fail");
    assert!(err.is_condition_failed(), "{err:?}");
    let stored = store.get(&key).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.data), (2, json!({"n": 2})));
    // VersionEquals on an absent item fails.
    let err = store
        .put(item(&pk, "A#2", 2, json!({})), Condition::VersionEquals(1))
        .await
        .expect_err("absent item has no version");
    assert!(err.is_condition_failed(), "{err:?}");
    assert!(store.get(&Key::new(&pk, "A#2")).await.unwrap().is_none());
    // Conditional delete.
    let err = store
        .delete(&key, Condition::VersionEquals(1))
        .await
        .expect_err("delete on a stale version");
    assert!(err.is_condition_failed(), "{err:?}");
    store
        .delete(&key, Condition::VersionEquals(2))
        .await
        .unwrap();
    assert!(store.get(&key).await.unwrap().is_none());
}

async fn absent_items(env: Env) {
    let store = env.items().await;
    let pk = tenant_pk(&env, "NONE");
    let key = Key::new(&pk, "nothing");
    assert!(store.get(&key).await.unwrap().is_none());
    store
        .delete(&key, Condition::None)
        .await
        .expect("deleting an absent item succeeds");
    let page = store.query(QueryRequest::partition(&pk)).await.unwrap();
    assert!(page.items.is_empty() && page.next.is_none());
}

async fn data_round_trips(env: Env) {
    let store = env.items().await;
    let pk = tenant_pk(&env, "DATA");
    let data = json!({
        "name": "山田 太郎",
        "empty": "",
        "none": null,
        "flags": [true, false],
        "count": 42,
        "negative": -7,
        "ratio": 0.25,
        "nested": {"list": [{"a": 1}, [2, 3], "四"], "obj": {}},
    });
    let mut it = item(&pk, "X", 3, data.clone());
    it.gsi1 = Some(Key::new(tenant_pk(&env, "G"), "S"));
    it.expires_at = Some(env.clock.now().as_second() + 3600);
    store.put(it.clone(), Condition::None).await.unwrap();
    assert_eq!(store.get(&it.key).await.unwrap(), Some(it));
}

/// Pages through a query, checking that no page is larger than `limit`.
async fn collect(store: &dyn ItemStore, request: QueryRequest) -> Vec<String> {
    let limit = request.limit;
    let mut request = request;
    let mut out = Vec::new();
    for _ in 0..100 {
        let page = store.query(request.clone()).await.expect("query page");
        assert!(page.items.len() <= limit, "page larger than the limit");
        out.extend(page.items.iter().map(|i| match request.index {
            Index::Table => i.key.sk.clone(),
            Index::Gsi1 => i.gsi1.as_ref().expect("index item has gsi1").sk.clone(),
        }));
        match page.next {
            Some(c) => request = request.after(Some(c)),
            None => return out,
        }
    }
    panic!("pagination did not end");
}

async fn pagination_cursor(env: Env) {
    let store = env.items().await;
    let pk = tenant_pk(&env, "LIST");
    for i in 0..23 {
        store
            .put(
                item(&pk, &format!("item#{i:02}"), 1, json!({"i": i})),
                Condition::None,
            )
            .await
            .unwrap();
    }
    store
        .put(item(&pk, "other#1", 1, json!({})), Condition::None)
        .await
        .unwrap();
    let first = store
        .query(
            QueryRequest::partition(&pk)
                .sk(SortKeyCondition::BeginsWith("item#".into()))
                .limit(10),
        )
        .await
        .unwrap();
    assert_eq!(first.items.len(), 10);
    assert!(first.next.is_some(), "a full page announces more");
    let all = collect(
        store.as_ref(),
        QueryRequest::partition(&pk)
            .sk(SortKeyCondition::BeginsWith("item#".into()))
            .limit(10),
    )
    .await;
    let expected: Vec<String> = (0..23).map(|i| format!("item#{i:02}")).collect();
    assert_eq!(all, expected, "every item once, in sort-key order");
    let everything = collect(store.as_ref(), QueryRequest::partition(&pk).limit(7)).await;
    assert_eq!(everything.len(), 24);
    assert_eq!(everything.last().map(String::as_str), Some("other#1"));
}

async fn cursor_from_other_partition_refused(env: Env) {
    let store = env.items().await;
    let pk_a = tenant_pk(&env, "A");
    let pk_b = tenant_pk(&env, "B");
    for pk in [&pk_a, &pk_b] {
        for i in 0..3 {
            store
                .put(item(pk, &format!("s#{i}"), 1, json!({})), Condition::None)
                .await
                .unwrap();
        }
    }
    let page = store
        .query(QueryRequest::partition(&pk_a).limit(1))
        .await
        .unwrap();
    let cursor = page.next.expect("more items follow");
    let err = store
        .query(
            QueryRequest::partition(&pk_b)
                .limit(1)
                .after(Some(cursor.clone())),
        )
        .await
        .expect_err("cursor of another partition");
    assert!(matches!(err, PortError::Invalid(_)), "{err:?}");
    let err = store
        .query(
            QueryRequest::partition(&pk_a)
                .on(Index::Gsi1)
                .limit(1)
                .after(Some(cursor.clone())),
        )
        .await
        .expect_err("cursor of another index");
    assert!(matches!(err, PortError::Invalid(_)), "{err:?}");
    let err = store
        .query(QueryRequest::partition(&pk_a).after(Some(Cursor("not a cursor!".into()))))
        .await
        .expect_err("garbage cursor");
    assert!(matches!(err, PortError::Invalid(_)), "{err:?}");
    // The cursor still works where it belongs.
    let next = store
        .query(QueryRequest::partition(&pk_a).limit(1).after(Some(cursor)))
        .await
        .unwrap();
    assert_eq!(next.items[0].key.sk, "s#1");
}

async fn descending_and_range_queries(env: Env) {
    let store = env.items().await;
    let pk = tenant_pk(&env, "RANGE");
    for d in [
        "2026-01-05",
        "2026-01-10",
        "2026-01-15",
        "2026-01-20",
        "2026-02-01",
    ] {
        store
            .put(
                item(&pk, &format!("day#{d}"), 1, json!({})),
                Condition::None,
            )
            .await
            .unwrap();
    }
    let between = collect(
        store.as_ref(),
        QueryRequest::partition(&pk)
            .sk(SortKeyCondition::Between(
                "day#2026-01-10".into(),
                "day#2026-01-20".into(),
            ))
            .limit(2),
    )
    .await;
    assert_eq!(
        between,
        ["day#2026-01-10", "day#2026-01-15", "day#2026-01-20"],
        "BETWEEN is inclusive"
    );
    let desc = collect(
        store.as_ref(),
        QueryRequest::partition(&pk)
            .sk(SortKeyCondition::BeginsWith("day#2026-01".into()))
            .descending()
            .limit(3),
    )
    .await;
    assert_eq!(
        desc,
        [
            "day#2026-01-20",
            "day#2026-01-15",
            "day#2026-01-10",
            "day#2026-01-05"
        ]
    );
}

async fn secondary_index_query(env: Env) {
    let store = env.items().await;
    let pk = tenant_pk(&env, "APP");
    let gpk = tenant_pk(&env, "STATUS#submitted");
    for (i, sk) in ["2026-03-01", "2026-01-01", "2026-02-01"]
        .iter()
        .enumerate()
    {
        let mut it = item(&pk, &format!("A#{i}"), 1, json!({"i": i}));
        it.gsi1 = Some(Key::new(&gpk, *sk));
        store.put(it, Condition::None).await.unwrap();
    }
    // Not in the index: no gsi1, or another index partition.
    store
        .put(item(&pk, "A#9", 1, json!({})), Condition::None)
        .await
        .unwrap();
    let mut other = item(&pk, "A#8", 1, json!({}));
    other.gsi1 = Some(Key::new(tenant_pk(&env, "STATUS#draft"), "2026-01-01"));
    store.put(other, Condition::None).await.unwrap();

    let found = collect(
        store.as_ref(),
        QueryRequest::partition(&gpk).on(Index::Gsi1).limit(2),
    )
    .await;
    assert_eq!(found, ["2026-01-01", "2026-02-01", "2026-03-01"]);
    let page = store
        .query(
            QueryRequest::partition(&gpk)
                .on(Index::Gsi1)
                .sk(SortKeyCondition::BeginsWith("2026-02".into())),
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].key, Key::new(&pk, "A#2"));
    assert_eq!(
        page.items[0].data,
        json!({"i": 2}),
        "the index returns whole items"
    );
}

async fn transactional_write_rolled_back(env: Env) {
    let store = env.items().await;
    let pk = tenant_pk(&env, "TX");
    store
        .put(
            item(&pk, "existing", 3, json!({"v": "old"})),
            Condition::None,
        )
        .await
        .unwrap();
    store
        .put(item(&pk, "doomed", 1, json!({})), Condition::None)
        .await
        .unwrap();
    let err = store
        .transact(vec![
            TxOp::Put(
                item(&pk, "new", 1, json!({"v": "new"})),
                Condition::NotExists,
            ),
            TxOp::Delete(Key::new(&pk, "doomed"), Condition::None),
            TxOp::Put(
                item(&pk, "existing", 4, json!({"v": "changed"})),
                Condition::VersionEquals(2),
            ),
        ])
        .await
        .expect_err("one failed condition fails all");
    assert!(
        matches!(err, PortError::ConditionFailed { index: Some(2) }),
        "{err:?}"
    );
    assert!(
        store.get(&Key::new(&pk, "new")).await.unwrap().is_none(),
        "put rolled back"
    );
    assert!(
        store.get(&Key::new(&pk, "doomed")).await.unwrap().is_some(),
        "delete rolled back"
    );
    assert_eq!(
        store
            .get(&Key::new(&pk, "existing"))
            .await
            .unwrap()
            .unwrap()
            .data,
        json!({"v": "old"})
    );
    // A failing check alone also cancels.
    let err = store
        .transact(vec![
            TxOp::Check(Key::new(&pk, "existing"), Condition::NotExists),
            TxOp::Put(item(&pk, "new", 1, json!({})), Condition::None),
        ])
        .await
        .expect_err("check fails");
    assert!(
        matches!(err, PortError::ConditionFailed { index: Some(0) }),
        "{err:?}"
    );
    assert!(store.get(&Key::new(&pk, "new")).await.unwrap().is_none());
    // All conditions hold: everything applies.
    store
        .transact(vec![
            TxOp::Check(Key::new(&pk, "existing"), Condition::VersionEquals(3)),
            TxOp::Put(
                item(&pk, "new", 1, json!({"v": "new"})),
                Condition::NotExists,
            ),
            TxOp::Delete(Key::new(&pk, "doomed"), Condition::VersionEquals(1)),
        ])
        .await
        .expect("transaction applies");
    assert!(store.get(&Key::new(&pk, "new")).await.unwrap().is_some());
    assert!(store.get(&Key::new(&pk, "doomed")).await.unwrap().is_none());
}

async fn transaction_too_large_refused(env: Env) {
    let store = env.items().await;
    let pk = tenant_pk(&env, "BIG");
    let ops = (0..=madoguchi_ports::item::MAX_TRANSACTION_OPS)
        .map(|i| TxOp::Put(item(&pk, &format!("i#{i}"), 1, json!({})), Condition::None))
        .collect();
    let err = store.transact(ops).await.expect_err("too many operations");
    assert!(matches!(err, PortError::Invalid(_)), "{err:?}");
    assert!(
        store
            .query(QueryRequest::partition(&pk))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

async fn expiry_hides_items(env: Env) {
    let store = env.items().await;
    let pk = tenant_pk(&env, "SESSION");
    let now = env.clock.now().as_second();
    let mut short = item(&pk, "s#short", 1, json!({"who": "a"}));
    short.expires_at = Some(now + 60);
    let mut long = item(&pk, "s#long", 1, json!({"who": "b"}));
    long.expires_at = Some(now + 3600);
    let mut idx = item(&pk, "s#indexed", 1, json!({}));
    idx.expires_at = Some(now + 60);
    idx.gsi1 = Some(Key::new(tenant_pk(&env, "G"), "x"));
    for it in [short.clone(), long, idx] {
        store.put(it, Condition::None).await.unwrap();
    }
    assert!(store.get(&short.key).await.unwrap().is_some());

    env.clock.advance(SignedDuration::from_secs(61));
    assert!(
        store.get(&short.key).await.unwrap().is_none(),
        "expired item is gone"
    );
    let page = store.query(QueryRequest::partition(&pk)).await.unwrap();
    let sks: Vec<_> = page.items.iter().map(|i| i.key.sk.as_str()).collect();
    assert_eq!(sks, ["s#long"], "queries hide expired items");
    let page = store
        .query(QueryRequest::partition(tenant_pk(&env, "G")).on(Index::Gsi1))
        .await
        .unwrap();
    assert!(page.items.is_empty(), "the index hides expired items");
    // An expired item counts as absent for conditions.
    let err = store
        .put(
            item(&pk, "s#short", 2, json!({})),
            Condition::VersionEquals(1),
        )
        .await
        .expect_err("expired item has no version");
    assert!(err.is_condition_failed(), "{err:?}");
    store
        .put(
            item(&pk, "s#short", 1, json!({"who": "c"})),
            Condition::NotExists,
        )
        .await
        .expect("create over an expired item");
    assert_eq!(
        store.get(&short.key).await.unwrap().unwrap().data,
        json!({"who": "c"})
    );
}

async fn atomic_increment_under_concurrency(env: Env) {
    let store = env.items().await;
    let key = Key::new(tenant_pk(&env, "SEQ"), "receipt-number");
    const TASKS: i64 = 16;
    // moto's server runs requests on threads without a lock around DynamoDB's item updates,
    // so concurrent ADDs and conditional creates can interleave there (seen in CI: a value
    // handed out twice), which DynamoDB itself documents as atomic. Against moto the same
    // increments run one after another; the embedded store (real SQLite) gets them all at once.
    let concurrent = env.kind == Kind::Embedded;
    let mut values = HashSet::new();
    if concurrent {
        let handles: Vec<_> = (0..TASKS)
            .map(|_| {
                let store = store.clone();
                let key = key.clone();
                tokio::spawn(async move { store.increment(&key, 1).await })
            })
            .collect();
        for h in handles {
            let v = h.await.expect("task").expect("increment");
            assert!(values.insert(v), "value {v} handed out twice");
        }
    } else {
        for _ in 0..TASKS {
            let v = store.increment(&key, 1).await.expect("increment");
            assert!(values.insert(v), "value {v} handed out twice");
        }
    }
    assert_eq!(values, (1..=TASKS).collect::<HashSet<_>>());
    assert_eq!(store.increment(&key, 10).await.unwrap(), TASKS + 10);
    assert_eq!(store.increment(&key, -3).await.unwrap(), TASKS + 7);
    let counter = store.get(&key).await.unwrap().expect("counter item");
    assert_eq!(counter.data["n"], json!(TASKS + 7));
    // A fresh counter starts at 0.
    let other = Key::new(tenant_pk(&env, "SEQ"), "other");
    assert_eq!(store.increment(&other, 5).await.unwrap(), 5);
}

async fn query_all_reads_every_page_up_to_a_bound(env: Env) {
    let store = env.items().await;
    let pk = tenant_pk(&env, "ALL");
    for i in 0..23 {
        store
            .put(
                item(&pk, &format!("S#{i:03}"), 1, json!({"i": i})),
                Condition::None,
            )
            .await
            .unwrap();
    }
    let request = QueryRequest::partition(pk.clone()).limit(5);
    let all = madoguchi_ports::query_all(store.as_ref(), request.clone(), 100)
        .await
        .unwrap();
    let sks: Vec<&str> = all.iter().map(|i| i.key.sk.as_str()).collect();
    let expected: Vec<String> = (0..23).map(|i| format!("S#{i:03}")).collect();
    assert_eq!(sks, expected);
    let bounded = madoguchi_ports::query_all(store.as_ref(), request, 12)
        .await
        .unwrap();
    assert_eq!(bounded.len(), 12);
    assert_eq!(bounded[11].key.sk, "S#011");
}

/// Reads the whole partition (pages of `limit`), as full items.
async fn all_items(store: &dyn ItemStore, request: QueryRequest) -> Vec<Item> {
    madoguchi_ports::query_all(store, request, 10_000)
        .await
        .expect("query")
}

async fn batch_write_reads_back_identical(env: Env) {
    let store = env.items().await;
    let pk = tenant_pk(&env, "BATCH");
    let gpk_even = tenant_pk(&env, "BG#even");
    let gpk_odd = tenant_pk(&env, "BG#odd");
    let now = env.clock.now().as_second();
    // 60 items: more than two DynamoDB chunks of 25, with every optional part exercised.
    let items: Vec<Item> = (0..60u64)
        .map(|i| {
            let mut it = item(
                &pk,
                &format!("R#{i:03}"),
                1 + i % 4,
                json!({"i": i, "name": format!("住民{i}"), "list": [i, "x"], "none": null}),
            );
            if i % 3 != 0 {
                let gpk = if i % 2 == 0 { &gpk_even } else { &gpk_odd };
                it.gsi1 = Some(Key::new(gpk, format!("{:03}", 60 - i)));
            }
            if i % 5 == 0 {
                it.expires_at = Some(now + 3600);
            }
            it
        })
        .collect();
    store.put_batch(items.clone()).await.expect("batch write");

    for it in &items {
        assert_eq!(
            store.get(&it.key).await.unwrap().as_ref(),
            Some(it),
            "{}",
            it.key.sk
        );
    }
    let stored = all_items(store.as_ref(), QueryRequest::partition(&pk).limit(17)).await;
    assert_eq!(stored, items, "every item once, in sort-key order");

    for gpk in [&gpk_even, &gpk_odd] {
        let found = all_items(
            store.as_ref(),
            QueryRequest::partition(gpk).on(Index::Gsi1).limit(7),
        )
        .await;
        let mut expected: Vec<Item> = items
            .iter()
            .filter(|it| it.gsi1.as_ref().is_some_and(|g| &g.pk == gpk))
            .cloned()
            .collect();
        expected.sort_by(|a, b| {
            a.gsi1
                .as_ref()
                .unwrap()
                .sk
                .cmp(&b.gsi1.as_ref().unwrap().sk)
        });
        assert_eq!(found.len(), 20);
        assert_eq!(
            found, expected,
            "the index holds whole items, in index order"
        );
    }
}

async fn batch_write_overwrites_and_moves_index_entries(env: Env) {
    let store = env.items().await;
    let pk = tenant_pk(&env, "BATCHOVER");
    let old_g = tenant_pk(&env, "HH#old");
    let new_g = tenant_pk(&env, "HH#new");
    for i in 0..30u64 {
        let mut it = item(
            &pk,
            &format!("P#{i:02}"),
            3,
            json!({"state": "old", "i": i}),
        );
        it.gsi1 = Some(Key::new(&old_g, format!("{i:02}")));
        it.expires_at = Some(env.clock.now().as_second() + 60);
        store.put(it, Condition::None).await.unwrap();
    }
    // Even items move to another index partition, odd ones leave the index; the version may go
    // down (unconditional: whatever the caller gives), the expiry goes away.
    let mut replacement: Vec<Item> = (0..30u64)
        .map(|i| {
            let mut it = item(
                &pk,
                &format!("P#{i:02}"),
                1,
                json!({"state": "new", "i": i}),
            );
            if i % 2 == 0 {
                it.gsi1 = Some(Key::new(&new_g, format!("{i:02}")));
            }
            it
        })
        .collect();
    // The same key twice in one call: the last one wins.
    replacement.push(item(&pk, "P#07", 9, json!({"state": "last"})));
    store.put_batch(replacement.clone()).await.unwrap();

    for i in 0..30u64 {
        let got = store
            .get(&Key::new(&pk, format!("P#{i:02}")))
            .await
            .unwrap()
            .expect("item");
        let expected = if i == 7 {
            &replacement[30]
        } else {
            &replacement[i as usize]
        };
        assert_eq!(&got, expected);
    }
    let stale = store
        .query(QueryRequest::partition(&old_g).on(Index::Gsi1))
        .await
        .unwrap();
    assert!(
        stale.items.is_empty(),
        "the overwrite removed the old index entries"
    );
    let moved = all_items(
        store.as_ref(),
        QueryRequest::partition(&new_g).on(Index::Gsi1),
    )
    .await;
    assert_eq!(moved.len(), 15);
    // Past the old expiry the items are still there: the expiry was replaced too.
    env.clock.advance(SignedDuration::from_secs(120));
    assert_eq!(
        all_items(store.as_ref(), QueryRequest::partition(&pk))
            .await
            .len(),
        30
    );
}

async fn batch_write_empty_and_invalid(env: Env) {
    let store = env.items().await;
    let pk = tenant_pk(&env, "BATCHBAD");
    store
        .put_batch(Vec::new())
        .await
        .expect("an empty batch is fine");
    let mut items: Vec<Item> = (0..40)
        .map(|i| item(&pk, &format!("X#{i:02}"), 1, json!({})))
        .collect();
    items.push(item(&pk, "", 1, json!({})));
    let err = store
        .put_batch(items)
        .await
        .expect_err("an item without a sort key");
    assert!(matches!(err, PortError::Invalid(_)), "{err:?}");
    assert!(
        store
            .query(QueryRequest::partition(&pk))
            .await
            .unwrap()
            .items
            .is_empty(),
        "a refused batch wrote nothing"
    );
}

async fn batch_read_in_key_order(env: Env) {
    let store = env.items().await;
    let pk = tenant_pk(&env, "BREAD");
    let other = tenant_pk(&env, "BREAD2");
    let now = env.clock.now().as_second();
    // 250 items over two partitions: three DynamoDB requests of 100.
    let mut items: Vec<Item> = (0..250u64)
        .map(|i| {
            let p = if i % 2 == 0 { &pk } else { &other };
            let mut it = item(
                p,
                &format!("R#{i:03}"),
                1 + i % 3,
                json!({"i": i, "名": "住民"}),
            );
            if i % 7 == 0 {
                it.gsi1 = Some(Key::new(tenant_pk(&env, "BG"), format!("{i:03}")));
            }
            it
        })
        .collect();
    let mut short = item(&pk, "S#short", 1, json!({}));
    short.expires_at = Some(now + 60);
    items.push(short.clone());
    store.put_batch(items.clone()).await.unwrap();
    env.clock.advance(SignedDuration::from_secs(61));

    // Asked in a shuffled order, with absent keys, a repeated key and the expired one.
    let mut keys: Vec<Key> = items[..250].iter().rev().map(|i| i.key.clone()).collect();
    keys.insert(3, Key::new(&pk, "R#999"));
    keys.insert(10, items[42].key.clone());
    keys.push(short.key.clone());
    keys.push(Key::new(tenant_pk(&env, "NOWHERE"), "x"));
    let got = store.get_batch(&keys).await.unwrap();
    assert_eq!(got.len(), keys.len());
    for (key, found) in keys.iter().zip(&got) {
        let expected = items[..250].iter().find(|i| &i.key == key);
        assert_eq!(found.as_ref(), expected, "{key:?}");
    }
    assert!(got[3].is_none(), "an absent key");
    assert_eq!(
        got[10].as_ref(),
        Some(&items[42]),
        "a repeated key, both times"
    );
    assert!(
        got[got.len() - 2].is_none(),
        "an expired item is absent, as for get"
    );
    assert!(store.get_batch(&[]).await.unwrap().is_empty());
    let err = store.get_batch(&[Key::new("", "x")]).await.unwrap_err();
    assert!(matches!(err, PortError::Invalid(_)), "{err:?}");
}
