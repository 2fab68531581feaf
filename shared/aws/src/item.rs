//! [`ItemStore`] over one DynamoDB table.
//!
//! # Table layout
//! | attribute | type | meaning |
//! |---|---|---|
//! | `pk`, `sk` | S | table key (hash, range) |
//! | `v` | N | `Item::version` |
//! | `d` | M | `Item::data` (any JSON value; see [`crate::attr`]) |
//! | `gsi1pk`, `gsi1sk` | S | `Item::gsi1`; absent when the item is not in the index |
//! | `ttl` | N | `Item::expires_at` (epoch seconds); the table's TTL attribute |
//!
//! The secondary index is named `gsi1` (keys `gsi1pk`/`gsi1sk`, projection ALL).
//!
//! DynamoDB deletes expired items lazily (often hours later), so every read also hides
//! items whose `ttl <= now` by this store's clock, and conditions treat them as absent.
//!
//! Counters ([`ItemStore::increment`]) are ordinary items whose data is `{"n": <value>}`;
//! every increment also adds 1 to the version (as the embedded store does). The increment is
//! one `UpdateItem ... ADD d.n :by, v :1` (`ReturnValues=UPDATED_NEW`) conditional on a live
//! item; at the first increment (or over an expired counter) a conditional create of
//! `{"n": by}`, version 1, comes instead.
//!
//! Reads on the table are strongly consistent; reads on `gsi1` are eventually consistent
//! (DynamoDB offers nothing else for a global secondary index).
//!
//! [`ItemStore::put_batch`] drops all but the last item of each key (DynamoDB refuses a
//! request naming a key twice, and two chunks in flight must not race on one key), then sends
//! `BatchWriteItem` requests of 25 items, [`BATCH_WRITES_IN_FLIGHT`] at a time. Items that
//! DynamoDB leaves unprocessed (throttling, partition limits) and requests that fail as
//! `Unavailable` are sent again after an exponential backoff with full jitter, at most
//! [`BATCH_ATTEMPTS`] times per chunk.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, PutRequest, ReturnValue,
    TransactWriteItem, WriteRequest,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::{StreamExt, TryStreamExt};
use madoguchi_ports::item::MAX_TRANSACTION_OPS;
use madoguchi_ports::{
    Clock, Condition, Cursor, Index, Item, ItemStore, Key, Page, PortError, PortResult,
    QueryRequest, SortKeyCondition, TxOp,
};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::attr;
use crate::error::{malformed, map_sdk};

pub const GSI1: &str = "gsi1";
const PK: &str = "pk";
const SK: &str = "sk";
const VERSION: &str = "v";
const DATA: &str = "d";
const GSI1PK: &str = "gsi1pk";
const GSI1SK: &str = "gsi1sk";
const TTL: &str = "ttl";
/// The counter field inside `d`.
const COUNTER: &str = "n";
/// Largest page one query asks DynamoDB for.
const MAX_PAGE: usize = 1000;
/// Items per `BatchWriteItem` request (DynamoDB's limit).
const BATCH_WRITE_ITEMS: usize = 25;
/// Keys per `BatchGetItem` request (DynamoDB's limit).
const BATCH_GET_ITEMS: usize = 100;
/// `BatchWriteItem` requests one `put_batch` call keeps in flight. A first load of a
/// 1,000,000-row resident file is about 3,000,000 items: at ~15 ms per request, 4 in flight
/// would spend some 7 minutes of Lambda's 15 writing; 8 halve that (the items spread over
/// many partitions, so DynamoDB takes the concurrency).
pub const BATCH_WRITES_IN_FLIGHT: usize = 8;
/// Attempts per chunk of 25: the first request and the retries of what was left unprocessed.
pub const BATCH_ATTEMPTS: u32 = 8;
/// Backoff before retry `n` (1-based) is uniform in `0..=min(CAP, BASE * 2^(n-1))` ms: with
/// 8 attempts at most about 3.2 s of waiting per chunk.
const BATCH_BACKOFF_BASE_MS: u64 = 25;
const BATCH_BACKOFF_CAP_MS: u64 = 1_600;

pub struct DynamoItemStore {
    client: Client,
    table: String,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DynamoItemStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoItemStore")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

/// A condition expression with its placeholders.
#[derive(Default)]
struct Expr {
    expression: Option<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }
    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

fn condition_expr(condition: Condition, now: i64) -> Expr {
    let mut e = Expr::default();
    match condition {
        Condition::None => {}
        Condition::NotExists => {
            e.expression = Some("attribute_not_exists(#pk) OR #ttl <= :now".into());
            e.names.insert("#pk".into(), PK.into());
            e.names.insert("#ttl".into(), TTL.into());
            e.values
                .insert(":now".into(), AttributeValue::N(now.to_string()));
        }
        Condition::VersionEquals(v) => {
            e.expression = Some("#v = :v AND (attribute_not_exists(#ttl) OR #ttl > :now)".into());
            e.names.insert("#v".into(), VERSION.into());
            e.names.insert("#ttl".into(), TTL.into());
            e.values
                .insert(":v".into(), AttributeValue::N(v.to_string()));
            e.values
                .insert(":now".into(), AttributeValue::N(now.to_string()));
        }
    }
    e
}

fn key_attrs(key: &Key) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

fn check_key(key: &Key) -> PortResult<()> {
    if key.pk.is_empty() || key.sk.is_empty() {
        return Err(PortError::Invalid("empty pk or sk".into()));
    }
    Ok(())
}

fn item_attrs(item: &Item) -> PortResult<HashMap<String, AttributeValue>> {
    check_key(&item.key)?;
    let mut attrs = key_attrs(&item.key);
    attrs.insert(VERSION.into(), AttributeValue::N(item.version.to_string()));
    attrs.insert(DATA.into(), attr::to_attr(&item.data));
    if let Some(g) = &item.gsi1 {
        if g.pk.is_empty() || g.sk.is_empty() {
            return Err(PortError::Invalid("empty gsi1 pk or sk".into()));
        }
        attrs.insert(GSI1PK.into(), AttributeValue::S(g.pk.clone()));
        attrs.insert(GSI1SK.into(), AttributeValue::S(g.sk.clone()));
    }
    if let Some(t) = item.expires_at {
        attrs.insert(TTL.into(), AttributeValue::N(t.to_string()));
    }
    Ok(attrs)
}

fn s_attr<'a>(attrs: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    attrs
        .get(name)
        .and_then(|a| a.as_s().ok())
        .map(String::as_str)
}

fn n_attr<T: std::str::FromStr>(
    attrs: &HashMap<String, AttributeValue>,
    name: &str,
) -> PortResult<Option<T>> {
    match attrs.get(name) {
        None => Ok(None),
        Some(a) => a
            .as_n()
            .ok()
            .and_then(|n| n.parse().ok())
            .map(Some)
            .ok_or_else(|| malformed("number attribute")),
    }
}

fn item_from_attrs(attrs: &HashMap<String, AttributeValue>) -> PortResult<Item> {
    let pk = s_attr(attrs, PK).ok_or_else(|| malformed("item key"))?;
    let sk = s_attr(attrs, SK).ok_or_else(|| malformed("item key"))?;
    let data = match attrs.get(DATA) {
        Some(d) => attr::from_attr(d).map_err(|e| PortError::Backend(e.0))?,
        None => serde_json::Value::Object(Default::default()),
    };
    let gsi1 = match (s_attr(attrs, GSI1PK), s_attr(attrs, GSI1SK)) {
        (Some(p), Some(s)) => Some(Key::new(p, s)),
        _ => None,
    };
    Ok(Item {
        key: Key::new(pk, sk),
        version: n_attr(attrs, VERSION)?.unwrap_or(0),
        data,
        gsi1,
        expires_at: n_attr(attrs, TTL)?,
    })
}

fn expired(attrs: &HashMap<String, AttributeValue>, now: i64) -> bool {
    matches!(n_attr::<i64>(attrs, TTL), Ok(Some(t)) if t <= now)
}

/// The backoff ceiling before retry `retry` (1-based).
fn backoff_ceiling_ms(retry: u32) -> u64 {
    let exp = retry.saturating_sub(1).min(20);
    BATCH_BACKOFF_BASE_MS
        .saturating_mul(1 << exp)
        .min(BATCH_BACKOFF_CAP_MS)
}

/// The last item of each key, in the order of their last occurrence.
fn last_per_key(items: Vec<Item>) -> Vec<Item> {
    let mut last = HashMap::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        last.insert(item.key.clone(), i);
    }
    if last.len() == items.len() {
        return items;
    }
    items
        .into_iter()
        .enumerate()
        .filter(|(i, item)| last.get(&item.key) == Some(i))
        .map(|(_, item)| item)
        .collect()
}

/// What a cursor carries: the partition and index it belongs to, and DynamoDB's
/// `LastEvaluatedKey` (all key attributes are strings in this table).
#[derive(Serialize, Deserialize)]
struct CursorBody {
    p: String,
    i: Index,
    k: HashMap<String, String>,
}

fn index_names(index: Index) -> (&'static str, &'static str) {
    match index {
        Index::Table => (PK, SK),
        Index::Gsi1 => (GSI1PK, GSI1SK),
    }
}

fn encode_cursor(
    pk: &str,
    index: Index,
    last: &HashMap<String, AttributeValue>,
) -> PortResult<Cursor> {
    let k = last
        .iter()
        .map(|(name, v)| {
            v.as_s()
                .map(|s| (name.clone(), s.clone()))
                .map_err(|_| malformed("LastEvaluatedKey"))
        })
        .collect::<PortResult<HashMap<_, _>>>()?;
    let body = CursorBody {
        p: pk.to_owned(),
        i: index,
        k,
    };
    let json = serde_json::to_vec(&body).map_err(|_| malformed("cursor"))?;
    Ok(Cursor(URL_SAFE_NO_PAD.encode(json)))
}

fn decode_cursor(
    cursor: &Cursor,
    pk: &str,
    index: Index,
) -> PortResult<HashMap<String, AttributeValue>> {
    let bad = || PortError::Invalid("cursor not valid for this query".into());
    let json = URL_SAFE_NO_PAD
        .decode(cursor.0.as_bytes())
        .map_err(|_| bad())?;
    let body: CursorBody = serde_json::from_slice(&json).map_err(|_| bad())?;
    let (pk_name, sk_name) = index_names(index);
    // The partition is checked twice: the cursor's claim and the key it carries, so that a
    // hand-edited cursor cannot start a query in another partition.
    if body.p != pk || body.i != index || body.k.get(pk_name).map(String::as_str) != Some(pk) {
        return Err(bad());
    }
    let allowed = [PK, SK, pk_name, sk_name];
    if !body.k.contains_key(sk_name) || body.k.keys().any(|k| !allowed.contains(&k.as_str())) {
        return Err(bad());
    }
    Ok(body
        .k
        .into_iter()
        .map(|(k, v)| (k, AttributeValue::S(v)))
        .collect())
}

impl DynamoItemStore {
    pub fn new(client: Client, table: &str, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            table: table.to_owned(),
            clock,
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn now(&self) -> i64 {
        self.clock.now().as_second()
    }

    fn tx_item(&self, op: &TxOp, now: i64) -> PortResult<Option<TransactWriteItem>> {
        let build = |_| malformed("transaction item");
        Ok(Some(match op {
            TxOp::Put(item, cond) => {
                let e = condition_expr(*cond, now);
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item_attrs(item)?))
                    .set_condition_expression(e.expression.clone())
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(build)?;
                TransactWriteItem::builder().put(put).build()
            }
            TxOp::Delete(key, cond) => {
                check_key(key)?;
                let e = condition_expr(*cond, now);
                let del = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_attrs(key)))
                    .set_condition_expression(e.expression.clone())
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(build)?;
                TransactWriteItem::builder().delete(del).build()
            }
            TxOp::Check(key, cond) => {
                check_key(key)?;
                let e = condition_expr(*cond, now);
                // A check without a condition always holds: nothing to send.
                let Some(expression) = e.expression.clone() else {
                    return Ok(None);
                };
                let check = ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_attrs(key)))
                    .condition_expression(expression)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(build)?;
                TransactWriteItem::builder().condition_check(check).build()
            }
        }))
    }

    /// Writes one chunk (at most 25 requests), retrying what DynamoDB leaves unprocessed.
    async fn write_chunk(&self, mut requests: Vec<WriteRequest>) -> PortResult<()> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = requests.len();
            // A clone goes out: if the request fails as a whole, the same items go again.
            let result = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests.clone())
                .send()
                .await;
            let failure = match result {
                Ok(mut out) => {
                    requests = out
                        .unprocessed_items
                        .as_mut()
                        .and_then(|u| u.remove(&self.table))
                        .unwrap_or_default();
                    if requests.is_empty() {
                        return Ok(());
                    }
                    PortError::Unavailable(format!(
                        "BatchWriteItem left {} of {sent} items unprocessed",
                        requests.len()
                    ))
                }
                Err(err) => match map_sdk("dynamodb", "BatchWriteItem", &err) {
                    e @ PortError::Unavailable(_) => e,
                    e => return Err(e),
                },
            };
            if attempt >= BATCH_ATTEMPTS {
                tracing::warn!(table = %self.table, left = requests.len(), attempts = attempt, "batch write gave up");
                return Err(failure);
            }
            let wait = rand::thread_rng().gen_range(0..=backoff_ceiling_ms(attempt));
            tracing::debug!(table = %self.table, left = requests.len(), attempt, wait_ms = wait, "batch write retry");
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        }
    }

    /// Reads one chunk (at most 100 distinct keys), retrying what DynamoDB leaves
    /// unprocessed; the items found, in no particular order.
    async fn read_chunk(
        &self,
        keys: Vec<HashMap<String, AttributeValue>>,
    ) -> PortResult<Vec<Item>> {
        let mut keys = keys;
        let mut found = Vec::with_capacity(keys.len());
        let mut attempt = 0;
        let now = self.now();
        loop {
            attempt += 1;
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys.clone()))
                .consistent_read(true)
                .build()
                .map_err(|_| malformed("batch get request"))?;
            let result = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await;
            let failure = match result {
                Ok(mut out) => {
                    if let Some(items) = out.responses.as_mut().and_then(|r| r.remove(&self.table))
                    {
                        for attrs in &items {
                            if !expired(attrs, now) {
                                found.push(item_from_attrs(attrs)?);
                            }
                        }
                    }
                    keys = out
                        .unprocessed_keys
                        .as_mut()
                        .and_then(|u| u.remove(&self.table))
                        .map(|k| k.keys)
                        .unwrap_or_default();
                    if keys.is_empty() {
                        return Ok(found);
                    }
                    PortError::Unavailable(format!(
                        "BatchGetItem left {} keys unprocessed",
                        keys.len()
                    ))
                }
                Err(err) => match map_sdk("dynamodb", "BatchGetItem", &err) {
                    e @ PortError::Unavailable(_) => e,
                    e => return Err(e),
                },
            };
            if attempt >= BATCH_ATTEMPTS {
                tracing::warn!(table = %self.table, left = keys.len(), attempts = attempt, "batch read gave up");
                return Err(failure);
            }
            let wait = rand::thread_rng().gen_range(0..=backoff_ceiling_ms(attempt));
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        }
    }

    /// Adds to an existing counter; `ConditionFailed` when the item does not exist (yet).
    async fn add_to_counter(&self, key: &Key, by: i64) -> PortResult<i64> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .update_expression("ADD #d.#n :by, #v :one")
            .condition_expression(
                "attribute_exists(#pk) AND (attribute_not_exists(#ttl) OR #ttl > :now)",
            )
            .expression_attribute_names("#d", DATA)
            .expression_attribute_names("#n", COUNTER)
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":by", AttributeValue::N(by.to_string()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":now", AttributeValue::N(self.now().to_string()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| map_sdk("dynamodb", "UpdateItem", &e))?;
        out.attributes()
            .and_then(|a| a.get(DATA))
            .and_then(|d| d.as_m().ok())
            .and_then(|m| m.get(COUNTER))
            .and_then(|n| n.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| malformed("counter value"))
    }
}

#[async_trait]
impl ItemStore for DynamoItemStore {
    async fn put(&self, item: Item, condition: Condition) -> PortResult<()> {
        let attrs = item_attrs(&item)?;
        let e = condition_expr(condition, self.now());
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attrs))
            .set_condition_expression(e.expression.clone())
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .send()
            .await
            .map_err(|e| map_sdk("dynamodb", "PutItem", &e))?;
        tracing::debug!(table = %self.table, "item put");
        Ok(())
    }

    async fn get(&self, key: &Key) -> PortResult<Option<Item>> {
        check_key(key)?;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map_sdk("dynamodb", "GetItem", &e))?;
        match out.item() {
            Some(attrs) if !expired(attrs, self.now()) => Ok(Some(item_from_attrs(attrs)?)),
            _ => Ok(None),
        }
    }

    async fn delete(&self, key: &Key, condition: Condition) -> PortResult<()> {
        check_key(key)?;
        let e = condition_expr(condition, self.now());
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .set_condition_expression(e.expression.clone())
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .send()
            .await
            .map_err(|e| map_sdk("dynamodb", "DeleteItem", &e))?;
        tracing::debug!(table = %self.table, "item deleted");
        Ok(())
    }

    async fn query(&self, request: QueryRequest) -> PortResult<Page> {
        if request.pk.is_empty() {
            return Err(PortError::Invalid("empty partition key".into()));
        }
        let (pk_name, sk_name) = index_names(request.index);
        let now = self.now();
        let mut names = HashMap::from([
            ("#pk".to_owned(), pk_name.to_owned()),
            ("#ttl".to_owned(), TTL.to_owned()),
        ]);
        let mut values = HashMap::from([
            (":pk".to_owned(), AttributeValue::S(request.pk.clone())),
            (":now".to_owned(), AttributeValue::N(now.to_string())),
        ]);
        let mut key_condition = "#pk = :pk".to_owned();
        match &request.sk {
            SortKeyCondition::All => {}
            SortKeyCondition::BeginsWith(prefix) => {
                if !prefix.is_empty() {
                    key_condition.push_str(" AND begins_with(#sk, :p)");
                    names.insert("#sk".into(), sk_name.into());
                    values.insert(":p".into(), AttributeValue::S(prefix.clone()));
                }
            }
            SortKeyCondition::Between(lo, hi) => {
                if lo > hi {
                    return Ok(Page::default());
                }
                key_condition.push_str(" AND #sk BETWEEN :lo AND :hi");
                names.insert("#sk".into(), sk_name.into());
                values.insert(":lo".into(), AttributeValue::S(lo.clone()));
                values.insert(":hi".into(), AttributeValue::S(hi.clone()));
            }
        }
        let start = match &request.cursor {
            Some(c) => Some(decode_cursor(c, &request.pk, request.index)?),
            None => None,
        };
        if request.limit == 0 {
            return Err(PortError::Invalid("limit must be at least 1".into()));
        }
        let limit = request.limit.min(MAX_PAGE);
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(key_condition)
            .filter_expression("attribute_not_exists(#ttl) OR #ttl > :now")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(!request.descending)
            .limit(limit as i32)
            .set_exclusive_start_key(start);
        q = match request.index {
            Index::Table => q.consistent_read(true),
            Index::Gsi1 => q.index_name(GSI1),
        };
        let out = q
            .send()
            .await
            .map_err(|e| map_sdk("dynamodb", "Query", &e))?;
        let items = out
            .items()
            .iter()
            // The filter expression already did this; the clock may have moved since.
            .filter(|attrs| !expired(attrs, now))
            .map(item_from_attrs)
            .collect::<PortResult<Vec<_>>>()?;
        let next = match out.last_evaluated_key() {
            Some(last) if !last.is_empty() => {
                Some(encode_cursor(&request.pk, request.index, last)?)
            }
            _ => None,
        };
        tracing::debug!(table = %self.table, index = ?request.index, count = items.len(), more = next.is_some(), "query");
        Ok(Page { items, next })
    }

    async fn transact(&self, ops: Vec<TxOp>) -> PortResult<()> {
        if ops.len() > MAX_TRANSACTION_OPS {
            return Err(PortError::Invalid(format!(
                "at most {MAX_TRANSACTION_OPS} operations per transaction"
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for op in &ops {
            let key = match op {
                TxOp::Put(item, _) => &item.key,
                TxOp::Delete(key, _) | TxOp::Check(key, _) => key,
            };
            if !seen.insert(key) {
                return Err(PortError::Invalid(
                    "one transaction may touch an item only once".into(),
                ));
            }
        }
        let now = self.now();
        // `positions[i]` is the caller's index of the i-th item sent.
        let mut positions = Vec::with_capacity(ops.len());
        let mut items = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            if let Some(item) = self.tx_item(op, now)? {
                positions.push(i);
                items.push(item);
            }
        }
        if items.is_empty() {
            return Ok(());
        }
        let count = items.len();
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => {
                tracing::debug!(table = %self.table, count, "transaction written");
                Ok(())
            }
            Err(err) => {
                if let Some(TransactWriteItemsError::TransactionCanceledException(e)) =
                    err.as_service_error()
                {
                    let codes: Vec<&str> = e
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None"))
                        .collect();
                    tracing::debug!(table = %self.table, count, reasons = ?codes, "transaction cancelled");
                    if let Some(pos) = codes.iter().position(|c| *c == "ConditionalCheckFailed") {
                        return Err(PortError::ConditionFailed {
                            index: positions.get(pos).copied(),
                        });
                    }
                    if codes.iter().any(|c| {
                        matches!(
                            *c,
                            "TransactionConflict"
                                | "ThrottlingError"
                                | "ProvisionedThroughputExceeded"
                        )
                    }) {
                        return Err(PortError::Unavailable("TransactionConflict".into()));
                    }
                    return Err(PortError::Backend(format!(
                        "TransactionCanceledException {codes:?}"
                    )));
                }
                Err(map_sdk("dynamodb", "TransactWriteItems", &err))
            }
        }
    }

    async fn put_batch(&self, items: Vec<Item>) -> PortResult<()> {
        let items = last_per_key(items);
        let count = items.len();
        // Every item is checked before the first request, so a bad one writes nothing.
        let mut requests = Vec::with_capacity(count);
        for item in &items {
            let put = PutRequest::builder()
                .set_item(Some(item_attrs(item)?))
                .build()
                .map_err(|_| malformed("put request"))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        drop(items);
        let mut chunks = Vec::with_capacity(count.div_ceil(BATCH_WRITE_ITEMS));
        let mut rest = requests.into_iter();
        loop {
            let chunk: Vec<WriteRequest> = rest.by_ref().take(BATCH_WRITE_ITEMS).collect();
            if chunk.is_empty() {
                break;
            }
            chunks.push(chunk);
        }
        futures::stream::iter(chunks)
            .map(|chunk| self.write_chunk(chunk))
            .buffer_unordered(BATCH_WRITES_IN_FLIGHT)
            .try_collect::<()>()
            .await?;
        tracing::debug!(table = %self.table, count, "batch written");
        Ok(())
    }

    async fn get_batch(&self, keys: &[Key]) -> PortResult<Vec<Option<Item>>> {
        for key in keys {
            check_key(key)?;
        }
        // DynamoDB refuses a key twice in one request: each distinct key is read once.
        let mut distinct: Vec<&Key> = Vec::with_capacity(keys.len());
        let mut seen = std::collections::HashSet::with_capacity(keys.len());
        for key in keys {
            if seen.insert(key) {
                distinct.push(key);
            }
        }
        let chunks: Vec<Vec<HashMap<String, AttributeValue>>> = distinct
            .chunks(BATCH_GET_ITEMS)
            .map(|c| c.iter().map(|k| key_attrs(k)).collect())
            .collect();
        let found: Vec<Vec<Item>> = futures::stream::iter(chunks)
            .map(|chunk| self.read_chunk(chunk))
            .buffer_unordered(BATCH_WRITES_IN_FLIGHT)
            .try_collect()
            .await?;
        let mut by_key: HashMap<Key, Item> = found
            .into_iter()
            .flatten()
            .map(|item| (item.key.clone(), item))
            .collect();
        let mut left: HashMap<&Key, usize> = HashMap::with_capacity(distinct.len());
        for key in keys {
            *left.entry(key).or_default() += 1;
        }
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            // The last occurrence of a key takes the item; earlier ones get a clone.
            let n = left.get_mut(key).map(|n| {
                *n -= 1;
                *n
            });
            out.push(if n == Some(0) {
                by_key.remove(key)
            } else {
                by_key.get(key).cloned()
            });
        }
        Ok(out)
    }

    async fn increment(&self, key: &Key, by: i64) -> PortResult<i64> {
        check_key(key)?;
        for _ in 0..3 {
            match self.add_to_counter(key, by).await {
                Err(PortError::ConditionFailed { .. }) => {}
                other => return other,
            }
            // First increment: create the counter at `by` (0 + by), unless someone else
            // created it in the meantime, in which case add to theirs.
            let counter = Item::new(key.clone(), serde_json::json!({ COUNTER: by }));
            match self.put(counter, Condition::NotExists).await {
                Ok(()) => return Ok(by),
                Err(PortError::ConditionFailed { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Err(PortError::Unavailable("counter contention".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_is_bound_to_partition_and_index() {
        let last = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("131016#A".into())),
            ("sk".to_owned(), AttributeValue::S("x#1".into())),
        ]);
        let c = encode_cursor("131016#A", Index::Table, &last).unwrap();
        assert_eq!(decode_cursor(&c, "131016#A", Index::Table).unwrap(), last);
        assert!(matches!(
            decode_cursor(&c, "131016#B", Index::Table),
            Err(PortError::Invalid(_))
        ));
        assert!(matches!(
            decode_cursor(&c, "131016#A", Index::Gsi1),
            Err(PortError::Invalid(_))
        ));
        assert!(matches!(
            decode_cursor(&Cursor("!!".into()), "131016#A", Index::Table),
            Err(PortError::Invalid(_))
        ));
    }

    #[test]
    fn edited_cursor_cannot_switch_partition() {
        let body = CursorBody {
            p: "131016#A".into(),
            i: Index::Table,
            k: HashMap::from([
                ("pk".to_owned(), "272094#B".to_owned()),
                ("sk".to_owned(), "x".to_owned()),
            ]),
        };
        let c = Cursor(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&body).unwrap()));
        assert!(decode_cursor(&c, "131016#A", Index::Table).is_err());
    }

    #[test]
    fn batch_keeps_the_last_item_of_each_key() {
        let it = |sk: &str, v: u64| {
            let mut i = Item::new(Key::new("131016#B", sk), serde_json::json!({}));
            i.version = v;
            i
        };
        let kept = last_per_key(vec![it("a", 1), it("b", 1), it("a", 2), it("c", 1)]);
        let got: Vec<(&str, u64)> = kept
            .iter()
            .map(|i| (i.key.sk.as_str(), i.version))
            .collect();
        assert_eq!(got, [("b", 1), ("a", 2), ("c", 1)]);
    }

    #[test]
    fn batch_backoff_grows_and_is_capped() {
        let ceilings: Vec<u64> = (1..=BATCH_ATTEMPTS).map(backoff_ceiling_ms).collect();
        assert_eq!(ceilings[0], BATCH_BACKOFF_BASE_MS);
        assert!(ceilings.windows(2).all(|w| w[0] <= w[1]));
        assert!(ceilings.iter().all(|&c| c <= BATCH_BACKOFF_CAP_MS));
        assert!(ceilings.iter().sum::<u64>() < 5_000, "bounded total wait");
        assert_eq!(backoff_ceiling_ms(u32::MAX), BATCH_BACKOFF_CAP_MS);
    }

    #[test]
    fn item_attributes_round_trip() {
        let mut item = Item::new(
            Key::new("131016#A", "B"),
            serde_json::json!({"x": [1, "y"]}),
        );
        item.version = 7;
        item.gsi1 = Some(Key::new("131016#G", "S"));
        item.expires_at = Some(1_900_000_000);
        let attrs = item_attrs(&item).unwrap();
        assert_eq!(item_from_attrs(&attrs).unwrap(), item);
        assert!(expired(&attrs, 1_900_000_000));
        assert!(!expired(&attrs, 1_899_999_999));
    }
}
