//! Item store: the single-table key-value store (DynamoDB in AWS, SQLite embedded).
//!
//! # Contract
//! - Items live under a partition key `pk` and a sort key `sk`. Every `pk` starts with the
//!   tenant code (`"131016#..."`); the store does not check this, the domain's key builders do.
//! - `put` with [`Condition::NotExists`] fails with `ConditionFailed` if an item with the same
//!   key exists (an expired item counts as absent); with [`Condition::VersionEquals`] it fails
//!   unless the stored item has exactly that version. The stored version is whatever the caller
//!   put in `Item::version`; the usual update is "read v, write v+1 on `VersionEquals(v)`".
//! - `get` returns `None` for an absent or expired item (expiry is `expires_at` in epoch
//!   seconds, compared with the store's clock; backends may delete expired items later).
//! - `query` returns items of one partition in sort-key order (ascending unless `descending`),
//!   at most `limit` per page (`limit` 0 is `Invalid`; a page may hold fewer items than
//!   `limit`, e.g. when expired items were skipped), and a [`Cursor`] when more may follow. A cursor is opaque, only
//!   valid for the same partition and index, and refused (`Invalid`) otherwise.
//! - `query` on [`Index::Gsi1`] reads the secondary index built from `Item::gsi1`; items
//!   without `gsi1` are not in it. The index is eventually consistent in AWS.
//! - `transact` applies up to 25 operations all or nothing; one failed condition fails the
//!   whole transaction with `ConditionFailed { index }` and changes nothing.
//! - `increment` atomically adds to a counter item's value, creating it at 0 first; returns the
//!   new value. A counter item reads back as `data = {"n": value}`, its version bumped on
//!   every increment; an expired counter starts again from 0.
//! - A transaction may name each key once; naming a key twice is `Invalid` (as DynamoDB).
//! - `put_batch` writes any number of items unconditionally (each as `put` with
//!   [`Condition::None`]); it is not a transaction (see [`ItemStore::put_batch`]).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::PortResult;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub key: Key,
    /// Optimistic-concurrency version; see the module contract.
    pub version: u64,
    /// The record itself: a JSON object. Fields holding personal data arrive here already
    /// encrypted by the caller.
    pub data: serde_json::Value,
    /// Key in the secondary index (GSI1), if the item should be found through it.
    pub gsi1: Option<Key>,
    /// Expiry in epoch seconds (DynamoDB TTL); `None` keeps the item.
    pub expires_at: Option<i64>,
}

impl Item {
    pub fn new(key: Key, data: serde_json::Value) -> Self {
        Self {
            key,
            version: 1,
            data,
            gsi1: None,
            expires_at: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Write whatever is there.
    None,
    /// Only if no (unexpired) item has this key.
    NotExists,
    /// Only if the stored item exists with exactly this version.
    VersionEquals(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Index {
    /// The table's own keys.
    Table,
    /// The secondary index over `Item::gsi1`.
    Gsi1,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKeyCondition {
    All,
    /// Sort keys starting with this string.
    BeginsWith(String),
    /// Sort keys `lo <= sk <= hi` (inclusive, as DynamoDB's BETWEEN).
    Between(String, String),
}

/// An opaque pagination cursor. Treat it as a string handed to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor(pub String);

#[derive(Debug, Clone)]
pub struct QueryRequest {
    pub index: Index,
    pub pk: String,
    pub sk: SortKeyCondition,
    pub limit: usize,
    pub descending: bool,
    pub cursor: Option<Cursor>,
}

impl QueryRequest {
    pub fn partition(pk: impl Into<String>) -> Self {
        Self {
            index: Index::Table,
            pk: pk.into(),
            sk: SortKeyCondition::All,
            limit: 100,
            descending: false,
            cursor: None,
        }
    }
    pub fn on(mut self, index: Index) -> Self {
        self.index = index;
        self
    }
    pub fn sk(mut self, sk: SortKeyCondition) -> Self {
        self.sk = sk;
        self
    }
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
    pub fn descending(mut self) -> Self {
        self.descending = true;
        self
    }
    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        self.cursor = cursor;
        self
    }
}

#[derive(Debug, Clone, Default)]
pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<Cursor>,
}

#[derive(Debug, Clone)]
pub enum TxOp {
    Put(Item, Condition),
    Delete(Key, Condition),
    /// Fails the transaction unless the condition holds; writes nothing.
    Check(Key, Condition),
}

/// Maximum operations in one [`ItemStore::transact`] call (DynamoDB's limit is 100; we keep
/// transactions small on purpose).
pub const MAX_TRANSACTION_OPS: usize = 25;

#[async_trait]
pub trait ItemStore: Send + Sync {
    async fn put(&self, item: Item, condition: Condition) -> PortResult<()>;
    async fn get(&self, key: &Key) -> PortResult<Option<Item>>;
    /// Deleting an absent item succeeds unless the condition requires it to exist.
    async fn delete(&self, key: &Key, condition: Condition) -> PortResult<()>;
    async fn query(&self, request: QueryRequest) -> PortResult<Page>;
    async fn transact(&self, ops: Vec<TxOp>) -> PortResult<()>;
    async fn increment(&self, key: &Key, by: i64) -> PortResult<i64>;
    /// Bulk load: stores every item as [`ItemStore::put`] with [`Condition::None`] would
    /// (each replaces whatever had its key; version, data, `gsi1` and expiry as given).
    /// Any number of items, none is fine; if the same key appears more than once, the last
    /// one wins.
    ///
    /// Returns `Ok` once every item is stored. An item the adapter can refuse up front (an
    /// empty key, say) fails the call with `Invalid` before anything is written. Otherwise an
    /// error means the backend still refused some items after the adapter's retries; **any
    /// subset of the items may have been stored by then**, so callers make their batches
    /// idempotent (write the same items again to finish) and order dependent writes by
    /// separate calls.
    /// Adapters write in chunks, several at once (DynamoDB: `BatchWriteItem` of 25 with
    /// retries of unprocessed items; SQLite: one transaction per few thousand items).
    async fn put_batch(&self, items: Vec<Item>) -> PortResult<()>;
    /// Bulk read: the item of each key, in the order of `keys` (`None` where
    /// [`ItemStore::get`] would give `None`). Any number of keys, repeated keys fine. Reads
    /// are as consistent as `get`'s, each on its own: the items are not a snapshot of one
    /// moment. An error means nothing is returned (the adapter retried what it could).
    /// Adapters read in chunks, several at once (DynamoDB: `BatchGetItem` of 100 with retries
    /// of unprocessed keys; SQLite: one read transaction per few thousand keys).
    async fn get_batch(&self, keys: &[Key]) -> PortResult<Vec<Option<Item>>>;
}

/// Every item a query matches, page after page, stopping after `max` items: for the small
/// partitions that are read whole (a tenant's forms, its staff directory). Large partitions
/// page through [`ItemStore::query`] themselves.
pub async fn query_all(
    store: &dyn ItemStore,
    request: QueryRequest,
    max: usize,
) -> PortResult<Vec<Item>> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.query(request.clone().after(cursor)).await?;
        out.extend(page.items);
        match page.next {
            Some(next) if out.len() < max => cursor = Some(next),
            _ => {
                out.truncate(max);
                return Ok(out);
            }
        }
    }
}
