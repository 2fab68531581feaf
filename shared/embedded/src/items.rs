//! `ItemStore` over the SQLite table `items`.
//!
//! - Expiry: an item is expired when `expires_at <= now` (epoch seconds from the injected
//!   clock). Expired rows stay in the table until overwritten or deleted, but every read and
//!   every condition treats them as absent.
//! - Sort order is SQLite's BINARY collation, i.e. UTF-8 byte order, the same as DynamoDB's.
//! - GSI1 queries are ordered by `(gsi1sk, pk, sk)` so equal index sort keys page stably.
//! - Cursors: base64url (no padding) of JSON `{"v":1,"i":"t"|"g","pk":..,"sk":..,"tpk":..,"tsk":..}`
//!   where `pk` is the queried partition, `sk` the last returned sort key in the queried index
//!   and, for GSI1, `tpk`/`tsk` the last returned item's table key. A cursor for another index
//!   or partition is refused with `Invalid`.
//! - Limits mirror DynamoDB so both adapter sets refuse the same requests: `pk` ≤ 2048 bytes,
//!   `sk` ≤ 1024 bytes, neither empty; item data ≤ 400 KiB of JSON; a transaction holds
//!   1..=25 operations on distinct keys.
//! - `put_batch` checks every item first, then writes them in order, [`BATCH_TRANSACTION_ITEMS`]
//!   per transaction (one commit, i.e. one WAL append, per few thousand items instead of one
//!   per item; the cap keeps a very large call from holding the write lock for long).

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use madoguchi_ports::item::MAX_TRANSACTION_OPS;
use madoguchi_ports::{
    Clock, Condition, Cursor, Index, Item, ItemStore, Key, Page, PortError, PortResult,
    QueryRequest, SortKeyCondition, TxOp,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::db::{Db, sql_err};

const MAX_PK_BYTES: usize = 2048;
const MAX_SK_BYTES: usize = 1024;
const MAX_DATA_BYTES: usize = 400 * 1024;
/// Items per SQLite transaction in [`ItemStore::put_batch`].
pub const BATCH_TRANSACTION_ITEMS: usize = 5_000;

/// Items in SQLite. Obtain it from [`crate::EmbeddedBackend::items`].
pub struct SqliteItemStore {
    db: Db,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for SqliteItemStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteItemStore").finish_non_exhaustive()
    }
}

impl SqliteItemStore {
    pub(crate) fn new(db: Db, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
    }

    fn now(&self) -> i64 {
        self.clock.now().as_second()
    }
}

// ---------------------------------------------------------------------------------------------
// Validation

fn check_key(key: &Key) -> PortResult<()> {
    if key.pk.is_empty() || key.sk.is_empty() {
        return Err(PortError::Invalid("empty partition or sort key".into()));
    }
    if key.pk.len() > MAX_PK_BYTES || key.sk.len() > MAX_SK_BYTES {
        return Err(PortError::Invalid("partition or sort key too long".into()));
    }
    Ok(())
}

/// A validated item ready to write.
struct Row {
    key: Key,
    version: i64,
    data: String,
    gsi1: Option<Key>,
    expires_at: Option<i64>,
}

fn to_row(item: Item) -> PortResult<Row> {
    check_key(&item.key)?;
    if let Some(g) = &item.gsi1 {
        check_key(g)?;
    }
    let version = i64::try_from(item.version)
        .map_err(|_| PortError::Invalid("version out of range".into()))?;
    let data = serde_json::to_string(&item.data)
        .map_err(|e| PortError::Invalid(format!("item data: {:?}", e.classify())))?;
    if data.len() > MAX_DATA_BYTES {
        return Err(PortError::Invalid("item data larger than 400 KiB".into()));
    }
    Ok(Row {
        key: item.key,
        version,
        data,
        gsi1: item.gsi1,
        expires_at: item.expires_at,
    })
}

// ---------------------------------------------------------------------------------------------
// Row helpers (run inside a transaction on the blocking pool)

const COLUMNS: &str = "pk, sk, version, data, gsi1pk, gsi1sk, expires_at";
const ALIVE: &str = "(expires_at IS NULL OR expires_at > ?2)";

fn read_item(r: &rusqlite::Row<'_>) -> rusqlite::Result<Item> {
    let version: i64 = r.get(2)?;
    let data: String = r.get(3)?;
    let gsi1pk: Option<String> = r.get(4)?;
    let gsi1sk: Option<String> = r.get(5)?;
    let data = serde_json::from_str(&data).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(Item {
        key: Key::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?),
        version: version as u64,
        data,
        gsi1: match (gsi1pk, gsi1sk) {
            (Some(pk), Some(sk)) => Some(Key::new(pk, sk)),
            _ => None,
        },
        expires_at: r.get(6)?,
    })
}

/// The stored, unexpired version of `key`, if any.
fn live_version(conn: &Connection, key: &Key, now: i64) -> PortResult<Option<i64>> {
    conn.prepare_cached(&format!(
        "SELECT version FROM items WHERE pk = ?1 AND sk = ?3 AND {ALIVE}"
    ))
    .and_then(|mut s| {
        s.query_row(params![key.pk, now, key.sk], |r| r.get(0))
            .optional()
    })
    .map_err(sql_err)
}

fn holds(conn: &Connection, key: &Key, condition: Condition, now: i64) -> PortResult<bool> {
    Ok(match condition {
        Condition::None => true,
        Condition::NotExists => live_version(conn, key, now)?.is_none(),
        Condition::VersionEquals(v) => {
            live_version(conn, key, now)?.is_some_and(|stored| stored as u64 == v)
        }
    })
}

fn write_row(conn: &Connection, row: &Row) -> PortResult<()> {
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO items ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    ))
    .and_then(|mut s| {
        s.execute(params![
            row.key.pk,
            row.key.sk,
            row.version,
            row.data,
            row.gsi1.as_ref().map(|g| g.pk.as_str()),
            row.gsi1.as_ref().map(|g| g.sk.as_str()),
            row.expires_at,
        ])
    })
    .map_err(sql_err)?;
    Ok(())
}

fn delete_row(conn: &Connection, key: &Key) -> PortResult<()> {
    conn.prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2")
        .and_then(|mut s| s.execute(params![key.pk, key.sk]))
        .map_err(sql_err)?;
    Ok(())
}

fn immediate(conn: &mut Connection) -> PortResult<rusqlite::Transaction<'_>> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql_err)
}

// ---------------------------------------------------------------------------------------------
// Cursors

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct CursorData {
    v: u8,
    i: String,
    pk: String,
    sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tpk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tsk: Option<String>,
}

fn index_tag(index: Index) -> &'static str {
    match index {
        Index::Table => "t",
        Index::Gsi1 => "g",
    }
}

fn encode_cursor(index: Index, pk: &str, last: &Item) -> Cursor {
    let data = match index {
        Index::Table => CursorData {
            v: 1,
            i: index_tag(index).into(),
            pk: pk.into(),
            sk: last.key.sk.clone(),
            tpk: None,
            tsk: None,
        },
        Index::Gsi1 => CursorData {
            v: 1,
            i: index_tag(index).into(),
            pk: pk.into(),
            sk: last.gsi1.as_ref().map(|g| g.sk.clone()).unwrap_or_default(),
            tpk: Some(last.key.pk.clone()),
            tsk: Some(last.key.sk.clone()),
        },
    };
    let json = serde_json::to_vec(&data).expect("cursor serializes");
    Cursor(URL_SAFE_NO_PAD.encode(json))
}

fn decode_cursor(cursor: &Cursor, index: Index, pk: &str) -> PortResult<CursorData> {
    let bad = || PortError::Invalid("malformed cursor".into());
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.0.as_bytes())
        .map_err(|_| bad())?;
    let data: CursorData = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if data.v != 1 {
        return Err(bad());
    }
    if data.i != index_tag(index) || data.pk != pk {
        return Err(PortError::Invalid(
            "cursor belongs to another partition or index".into(),
        ));
    }
    if index == Index::Gsi1 && (data.tpk.is_none() || data.tsk.is_none()) {
        return Err(bad());
    }
    Ok(data)
}

/// The smallest string greater than every string starting with `prefix`, if there is one:
/// the prefix with its last character replaced by the next character (UTF-8 byte order is
/// code point order, so `[prefix, upper)` is exactly the strings starting with `prefix`).
fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(c as u32 + 1),
        };
        if let Some(n) = next {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The larger of two lower bounds (an exclusive bound is tighter than an inclusive one at the
/// same value).
fn tighter_lower(a: Option<(String, bool)>, b: (String, bool)) -> (String, bool) {
    match a {
        None => b,
        Some(a) if a.0 > b.0 => a,
        Some(a) if a.0 < b.0 => b,
        Some(a) => (a.0, a.1 && b.1),
    }
}

/// The smaller of two upper bounds.
fn tighter_upper(a: Option<(String, bool)>, b: (String, bool)) -> (String, bool) {
    match a {
        None => b,
        Some(a) if a.0 < b.0 => a,
        Some(a) if a.0 > b.0 => b,
        Some(a) => (a.0, a.1 && b.1),
    }
}

/// Builds the page query. Parameters: `?1` partition, `?2` now, then the rest in order.
fn build_query(req: &QueryRequest, cursor: Option<&CursorData>, now: i64) -> (String, Vec<Value>) {
    let (pcol, scol) = match req.index {
        Index::Table => ("pk", "sk"),
        Index::Gsi1 => ("gsi1pk", "gsi1sk"),
    };
    let mut sql = format!("SELECT {COLUMNS} FROM items WHERE {pcol} = ?1 AND {ALIVE}");
    let mut values = vec![Value::Text(req.pk.clone()), Value::Integer(now)];
    let mut bind = |sql: &mut String, clause: &str, v: String| {
        values.push(Value::Text(v));
        sql.push_str(&clause.replace('?', &format!("?{}", values.len())));
    };
    // One lower and one upper bound on the sort-key column: the tighter of the condition and
    // the cursor. SQLite seeks an index with one range per column; a cursor given only as a
    // second bound (or a row value) would make every page scan from the start of the range.
    let mut lower: Option<(String, bool)> = None; // (value, inclusive)
    let mut upper: Option<(String, bool)> = None;
    match &req.sk {
        SortKeyCondition::All => {}
        SortKeyCondition::BeginsWith(p) if p.is_empty() => {}
        SortKeyCondition::BeginsWith(p) => {
            lower = Some((p.clone(), true));
            upper = prefix_upper_bound(p).map(|u| (u, false));
        }
        SortKeyCondition::Between(lo, hi) => {
            lower = Some((lo.clone(), true));
            upper = Some((hi.clone(), true));
        }
    }
    let op = if req.descending { "<" } else { ">" };
    let dir = if req.descending { "DESC" } else { "ASC" };
    if let Some(c) = cursor {
        // The table's sort key is unique: the cursor bound is exclusive. In the index, equal
        // sort keys are ordered by (pk, sk): inclusive here, the row value below decides.
        let bound = (c.sk.clone(), req.index == Index::Gsi1);
        if req.descending {
            upper = Some(tighter_upper(upper, bound));
        } else {
            lower = Some(tighter_lower(lower, bound));
        }
    }
    if let Some((v, inclusive)) = lower {
        let cmp = if inclusive { ">=" } else { ">" };
        bind(&mut sql, &format!(" AND {scol} {cmp} ?"), v);
    }
    if let Some((v, inclusive)) = upper {
        let cmp = if inclusive { "<=" } else { "<" };
        bind(&mut sql, &format!(" AND {scol} {cmp} ?"), v);
    }
    if let Some(c) = cursor
        && req.index == Index::Gsi1
    {
        bind(
            &mut sql,
            &format!(" AND (gsi1sk, pk, sk) {op} (?"),
            c.sk.clone(),
        );
        bind(&mut sql, ", ?", c.tpk.clone().unwrap_or_default());
        bind(&mut sql, ", ?)", c.tsk.clone().unwrap_or_default());
    }
    match req.index {
        Index::Table => sql.push_str(&format!(" ORDER BY sk {dir}")),
        Index::Gsi1 => sql.push_str(&format!(" ORDER BY gsi1sk {dir}, pk {dir}, sk {dir}")),
    }
    // One more than asked tells whether a next page exists.
    let fetch = i64::try_from(req.limit.saturating_add(1)).unwrap_or(i64::MAX);
    values.push(Value::Integer(fetch));
    sql.push_str(&format!(" LIMIT ?{}", values.len()));
    (sql, values)
}

// ---------------------------------------------------------------------------------------------
// The port

#[async_trait]
impl ItemStore for SqliteItemStore {
    async fn put(&self, item: Item, condition: Condition) -> PortResult<()> {
        let row = to_row(item)?;
        let now = self.now();
        let size = row.data.len();
        self.db
            .call(move |conn| {
                let tx = immediate(conn)?;
                if !holds(&tx, &row.key, condition, now)? {
                    return Err(PortError::ConditionFailed { index: None });
                }
                write_row(&tx, &row)?;
                tx.commit().map_err(sql_err)
            })
            .await?;
        tracing::trace!(size, "item put");
        Ok(())
    }

    async fn get(&self, key: &Key) -> PortResult<Option<Item>> {
        check_key(key)?;
        let key = key.clone();
        let now = self.now();
        self.db
            .call(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM items WHERE pk = ?1 AND sk = ?3 AND {ALIVE}"
                ))
                .and_then(|mut s| {
                    s.query_row(params![key.pk, now, key.sk], read_item)
                        .optional()
                })
                .map_err(sql_err)
            })
            .await
    }

    async fn delete(&self, key: &Key, condition: Condition) -> PortResult<()> {
        check_key(key)?;
        let key = key.clone();
        let now = self.now();
        self.db
            .call(move |conn| {
                let tx = immediate(conn)?;
                if !holds(&tx, &key, condition, now)? {
                    return Err(PortError::ConditionFailed { index: None });
                }
                delete_row(&tx, &key)?;
                tx.commit().map_err(sql_err)
            })
            .await
    }

    async fn query(&self, request: QueryRequest) -> PortResult<Page> {
        if request.pk.is_empty() {
            return Err(PortError::Invalid("empty partition key".into()));
        }
        if request.limit == 0 {
            return Err(PortError::Invalid("limit must be at least 1".into()));
        }
        if let SortKeyCondition::Between(lo, hi) = &request.sk
            && lo > hi
        {
            return Err(PortError::Invalid(
                "sort key range has its lower bound above its upper bound".into(),
            ));
        }
        let cursor = request
            .cursor
            .as_ref()
            .map(|c| decode_cursor(c, request.index, &request.pk))
            .transpose()?;
        let now = self.now();
        let (sql, values) = build_query(&request, cursor.as_ref(), now);
        let mut items = self
            .db
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(values), read_item)
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await?;
        let next = if items.len() > request.limit {
            items.truncate(request.limit);
            items
                .last()
                .map(|last| encode_cursor(request.index, &request.pk, last))
        } else {
            None
        };
        tracing::trace!(count = items.len(), more = next.is_some(), "item query");
        Ok(Page { items, next })
    }

    async fn transact(&self, ops: Vec<TxOp>) -> PortResult<()> {
        if ops.is_empty() || ops.len() > MAX_TRANSACTION_OPS {
            return Err(PortError::Invalid(format!(
                "a transaction holds 1 to {MAX_TRANSACTION_OPS} operations"
            )));
        }
        enum Op {
            Put(Row, Condition),
            Delete(Key, Condition),
            Check(Key, Condition),
        }
        let mut seen = HashSet::new();
        let mut prepared = Vec::with_capacity(ops.len());
        for op in ops {
            let op = match op {
                TxOp::Put(item, c) => Op::Put(to_row(item)?, c),
                TxOp::Delete(key, c) => {
                    check_key(&key)?;
                    Op::Delete(key, c)
                }
                TxOp::Check(key, c) => {
                    check_key(&key)?;
                    Op::Check(key, c)
                }
            };
            let key = match &op {
                Op::Put(row, _) => &row.key,
                Op::Delete(k, _) | Op::Check(k, _) => k,
            };
            if !seen.insert(key.clone()) {
                return Err(PortError::Invalid(
                    "a transaction may touch each key only once".into(),
                ));
            }
            prepared.push(op);
        }
        let count = prepared.len();
        let now = self.now();
        self.db
            .call(move |conn| {
                let tx = immediate(conn)?;
                // Keys are distinct, so checking each condition just before its write sees
                // the same state as checking them all first.
                for (i, op) in prepared.iter().enumerate() {
                    let (key, condition) = match op {
                        Op::Put(row, c) => (&row.key, *c),
                        Op::Delete(k, c) | Op::Check(k, c) => (k, *c),
                    };
                    if !holds(&tx, key, condition, now)? {
                        // Dropping `tx` rolls everything back.
                        return Err(PortError::ConditionFailed { index: Some(i) });
                    }
                    match op {
                        Op::Put(row, _) => write_row(&tx, row)?,
                        Op::Delete(k, _) => delete_row(&tx, k)?,
                        Op::Check(..) => {}
                    }
                }
                tx.commit().map_err(sql_err)
            })
            .await?;
        tracing::trace!(ops = count, "item transaction committed");
        Ok(())
    }

    async fn put_batch(&self, items: Vec<Item>) -> PortResult<()> {
        let count = items.len();
        let rows = items
            .into_iter()
            .map(to_row)
            .collect::<PortResult<Vec<_>>>()?;
        let mut rows = rows.into_iter();
        loop {
            let chunk: Vec<Row> = rows.by_ref().take(BATCH_TRANSACTION_ITEMS).collect();
            if chunk.is_empty() {
                break;
            }
            self.db
                .call(move |conn| {
                    let tx = immediate(conn)?;
                    // In order: a later item with the same key replaces an earlier one.
                    for row in &chunk {
                        write_row(&tx, row)?;
                    }
                    tx.commit().map_err(sql_err)
                })
                .await?;
        }
        tracing::trace!(count, "item batch written");
        Ok(())
    }

    async fn get_batch(&self, keys: &[Key]) -> PortResult<Vec<Option<Item>>> {
        for key in keys {
            check_key(key)?;
        }
        let now = self.now();
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_TRANSACTION_ITEMS) {
            let chunk = chunk.to_vec();
            let found = self
                .db
                .call(move |conn| {
                    // One read transaction: one snapshot and one lock round for the chunk.
                    let tx = conn.transaction().map_err(sql_err)?;
                    let mut found = Vec::with_capacity(chunk.len());
                    {
                        let mut s = tx
                            .prepare_cached(&format!(
                                "SELECT {COLUMNS} FROM items WHERE pk = ?1 AND sk = ?3 AND {ALIVE}"
                            ))
                            .map_err(sql_err)?;
                        for key in &chunk {
                            found.push(
                                s.query_row(params![key.pk, now, key.sk], read_item)
                                    .optional()
                                    .map_err(sql_err)?,
                            );
                        }
                    }
                    tx.finish().map_err(sql_err)?;
                    Ok(found)
                })
                .await?;
            out.extend(found);
        }
        Ok(out)
    }

    async fn increment(&self, key: &Key, by: i64) -> PortResult<i64> {
        check_key(key)?;
        let key = key.clone();
        let now = self.now();
        self.db
            .call(move |conn| {
                let tx = immediate(conn)?;
                let existing = tx
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM items WHERE pk = ?1 AND sk = ?3 AND {ALIVE}"
                    ))
                    .and_then(|mut s| {
                        s.query_row(params![key.pk, now, key.sk], read_item)
                            .optional()
                    })
                    .map_err(sql_err)?;
                let mut item = existing.unwrap_or_else(|| Item {
                    key: key.clone(),
                    version: 0,
                    data: serde_json::json!({ "n": 0 }),
                    gsi1: None,
                    expires_at: None,
                });
                let current = match item.data.get("n") {
                    None => 0,
                    Some(n) => n.as_i64().ok_or_else(|| {
                        PortError::Invalid("counter item's \"n\" is not an integer".into())
                    })?,
                };
                let new = current
                    .checked_add(by)
                    .ok_or_else(|| PortError::Invalid("counter overflow".into()))?;
                match item.data.as_object_mut() {
                    Some(obj) => {
                        obj.insert("n".into(), new.into());
                    }
                    None => {
                        return Err(PortError::Invalid(
                            "counter item's data is not an object".into(),
                        ));
                    }
                }
                item.version = item.version.saturating_add(1);
                let row = to_row(item)?;
                write_row(&tx, &row)?;
                tx.commit().map_err(sql_err)?;
                Ok(new)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_upper_bound_is_the_next_string() {
        assert_eq!(prefix_upper_bound("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound("申請#").as_deref(), Some("申請$"));
    }

    #[test]
    fn cursors_roundtrip_and_are_bound_to_partition_and_index() {
        let mut item = Item::new(Key::new("131016#A", "S#1"), serde_json::json!({}));
        item.gsi1 = Some(Key::new("G", "GS"));
        let c = encode_cursor(Index::Table, "131016#A", &item);
        assert_eq!(
            decode_cursor(&c, Index::Table, "131016#A").unwrap().sk,
            "S#1"
        );
        assert!(matches!(
            decode_cursor(&c, Index::Table, "131016#B"),
            Err(PortError::Invalid(_))
        ));
        assert!(matches!(
            decode_cursor(&c, Index::Gsi1, "131016#A"),
            Err(PortError::Invalid(_))
        ));
        let g = encode_cursor(Index::Gsi1, "G", &item);
        let d = decode_cursor(&g, Index::Gsi1, "G").unwrap();
        assert_eq!((d.sk.as_str(), d.tpk.as_deref()), ("GS", Some("131016#A")));
        for junk in ["", "!!!", "e30", "bm90IGpzb24"] {
            assert!(matches!(
                decode_cursor(&Cursor(junk.into()), Index::Table, "131016#A"),
                Err(PortError::Invalid(_))
            ));
        }
    }
}
