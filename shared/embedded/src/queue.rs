//! `Queue` over the SQLite table `queue_messages` (all queues in one table, by name).
//!
//! - Times (`visible_at`, `created_at`) are epoch milliseconds from the injected clock.
//! - `receive` runs in one immediate transaction: it picks visible messages oldest first,
//!   moves any whose `receive_count` already reached `max_receives` to `<name>-dlq` (receive
//!   count reset, visible at once, as SQS redrive does), and hides the rest for the visibility
//!   timeout under a fresh receipt.
//! - `wait` is long polling: poll every 50 ms (real time) until a message arrives or `wait`
//!   passes.
//! - Limits mirror SQS so both adapter sets refuse the same requests: 1..=10 messages per
//!   batch or receive, bodies ≤ 256 KiB of XML-legal characters, delivery delay ≤ 15 min,
//!   `wait` ≤ 20 s, `retry_later` delay ≤ 12 h.
//! - Stale receipts are ignored by `delete` and `retry_later`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use madoguchi_ports::queue::MAX_BATCH;
use madoguchi_ports::{Clock, OutgoingMessage, PortError, PortResult, Queue, ReceivedMessage};
use rusqlite::params;

use crate::QueueSettings;
use crate::db::{Db, sql_err};

const POLL_INTERVAL: Duration = Duration::from_millis(50);
const MAX_WAIT: Duration = Duration::from_secs(20);
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);
const MAX_BODY_BYTES: usize = 256 * 1024;
const MAX_NAME_LEN: usize = 80;

/// One named queue in SQLite. Obtain it from [`crate::EmbeddedBackend::queue`].
pub struct SqliteQueue {
    db: Db,
    name: String,
    dlq: String,
    settings: QueueSettings,
    clock: Arc<dyn Clock>,
    name_ok: bool,
}

impl fmt::Debug for SqliteQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteQueue")
            .field("name", &self.name)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// SQS accepts only XML 1.0 characters in bodies: tab, LF, CR, and U+0020 and above except
/// U+FFFE and U+FFFF (surrogates cannot occur in a Rust string).
fn valid_body_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl SqliteQueue {
    pub(crate) fn new(db: Db, name: &str, settings: QueueSettings, clock: Arc<dyn Clock>) -> Self {
        let dlq = format!("{name}-dlq");
        let name_ok = valid_name(name) && valid_name(&dlq);
        Self {
            db,
            name: name.to_owned(),
            dlq,
            settings,
            clock,
            name_ok,
        }
    }

    /// This queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name of the queue dead letters move to (`<name>-dlq`).
    pub fn dead_letter_queue_name(&self) -> &str {
        &self.dlq
    }

    /// Messages in this queue, visible or not (SQS `ApproximateNumberOfMessages` plus
    /// in-flight). For tests and the local host's status page.
    pub async fn approximate_len(&self) -> PortResult<u64> {
        self.check_name()?;
        let name = self.name.clone();
        self.db
            .call(move |conn| {
                conn.query_row(
                    "SELECT COUNT(*) FROM queue_messages WHERE queue = ?1",
                    [name],
                    |r| r.get::<_, i64>(0),
                )
                .map(|n| n as u64)
                .map_err(sql_err)
            })
            .await
    }

    fn check_name(&self) -> PortResult<()> {
        if self.name_ok {
            Ok(())
        } else {
            Err(PortError::Invalid(
                "queue names are 1 to 76 characters of A-Z a-z 0-9 - _".into(),
            ))
        }
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().as_millisecond()
    }

    /// One non-waiting receive.
    async fn receive_now(&self, max: usize) -> PortResult<Vec<ReceivedMessage>> {
        let name = self.name.clone();
        let dlq = self.dlq.clone();
        let max_receives = self.settings.max_receives;
        let now = self.now_ms();
        let visible_at = now.saturating_add(millis(self.settings.visibility_timeout));
        let (messages, moved) = self
            .db
            .call(move |conn| {
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(sql_err)?;
                let mut out = Vec::new();
                let mut moved = 0usize;
                loop {
                    let candidates: Vec<(i64, String, String, u32)> = {
                        let mut stmt = tx
                            .prepare_cached(
                                "SELECT seq, id, body, receive_count FROM queue_messages
                                 WHERE queue = ?1 AND visible_at <= ?2
                                 ORDER BY seq LIMIT ?3",
                            )
                            .map_err(sql_err)?;
                        let rows = stmt
                            .query_map(params![name, now, (max - out.len()) as i64], |r| {
                                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                            })
                            .map_err(sql_err)?;
                        rows.collect::<Result<_, _>>().map_err(sql_err)?
                    };
                    if candidates.is_empty() {
                        break;
                    }
                    let mut moved_now = false;
                    for (seq, id, body, count) in candidates {
                        if max_receives > 0 && count >= max_receives {
                            tx.prepare_cached(
                                "UPDATE queue_messages
                                 SET queue = ?2, receive_count = 0, receipt = NULL, visible_at = ?3
                                 WHERE seq = ?1",
                            )
                            .and_then(|mut s| s.execute(params![seq, dlq, now]))
                            .map_err(sql_err)?;
                            moved += 1;
                            moved_now = true;
                            continue;
                        }
                        let receipt = uuid::Uuid::now_v7().to_string();
                        let receive_count = count.saturating_add(1);
                        tx.prepare_cached(
                            "UPDATE queue_messages
                             SET receive_count = ?2, receipt = ?3, visible_at = ?4
                             WHERE seq = ?1",
                        )
                        .and_then(|mut s| {
                            s.execute(params![seq, receive_count, receipt, visible_at])
                        })
                        .map_err(sql_err)?;
                        out.push(ReceivedMessage {
                            message_id: id,
                            receipt,
                            body,
                            receive_count,
                        });
                    }
                    // Only a dead-letter move can leave room for more in this round.
                    if !moved_now || out.len() >= max {
                        break;
                    }
                }
                tx.commit().map_err(sql_err)?;
                Ok((out, moved))
            })
            .await?;
        if moved > 0 {
            tracing::warn!(queue = %self.name, dlq = %self.dlq, moved, "messages moved to dead-letter queue");
        }
        if !messages.is_empty() {
            tracing::debug!(queue = %self.name, count = messages.len(), "messages received");
        }
        Ok(messages)
    }
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn send_batch(&self, messages: Vec<OutgoingMessage>) -> PortResult<()> {
        self.check_name()?;
        if messages.is_empty() || messages.len() > MAX_BATCH {
            return Err(PortError::Invalid(format!(
                "a batch holds 1 to {MAX_BATCH} messages"
            )));
        }
        for m in &messages {
            if m.body.is_empty() || m.body.len() > MAX_BODY_BYTES {
                return Err(PortError::Invalid(
                    "message body must be 1 byte to 256 KiB".into(),
                ));
            }
            if !m.body.chars().all(valid_body_char) {
                return Err(PortError::Invalid(
                    "message body holds characters SQS refuses".into(),
                ));
            }
            if m.delay.is_some_and(|d| d > MAX_DELAY) {
                return Err(PortError::Invalid(
                    "delivery delay is at most 15 minutes".into(),
                ));
            }
        }
        let name = self.name.clone();
        let now = self.now_ms();
        let count = messages.len();
        let bytes: usize = messages.iter().map(|m| m.body.len()).sum();
        self.db
            .call(move |conn| {
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(sql_err)?;
                {
                    let mut stmt = tx
                        .prepare_cached(
                            "INSERT INTO queue_messages
                             (queue, id, body, visible_at, receive_count, receipt, created_at)
                             VALUES (?1, ?2, ?3, ?4, 0, NULL, ?5)",
                        )
                        .map_err(sql_err)?;
                    for m in messages {
                        let id = uuid::Uuid::now_v7().to_string();
                        let visible_at = now.saturating_add(m.delay.map(millis).unwrap_or(0));
                        stmt.execute(params![name, id, m.body, visible_at, now])
                            .map_err(sql_err)?;
                    }
                }
                tx.commit().map_err(sql_err)
            })
            .await?;
        tracing::debug!(queue = %self.name, count, bytes, "messages sent");
        Ok(())
    }

    async fn receive(&self, max: usize, wait: Duration) -> PortResult<Vec<ReceivedMessage>> {
        self.check_name()?;
        if max == 0 || max > MAX_BATCH {
            return Err(PortError::Invalid(format!(
                "receive takes 1 to {MAX_BATCH} messages"
            )));
        }
        if wait > MAX_WAIT {
            return Err(PortError::Invalid("wait is at most 20 seconds".into()));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let got = self.receive_now(max).await?;
            if !got.is_empty() {
                return Ok(got);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(got);
            }
            tokio::time::sleep(POLL_INTERVAL.min(deadline - now)).await;
        }
    }

    async fn delete(&self, receipts: &[String]) -> PortResult<()> {
        self.check_name()?;
        if receipts.is_empty() {
            return Ok(());
        }
        let name = self.name.clone();
        let receipts = receipts.to_vec();
        let deleted = self
            .db
            .call(move |conn| {
                let tx = conn.transaction().map_err(sql_err)?;
                let mut deleted = 0usize;
                {
                    let mut stmt = tx
                        .prepare_cached(
                            "DELETE FROM queue_messages WHERE queue = ?1 AND receipt = ?2",
                        )
                        .map_err(sql_err)?;
                    for r in &receipts {
                        deleted += stmt.execute(params![name, r]).map_err(sql_err)?;
                    }
                }
                tx.commit().map_err(sql_err)?;
                Ok(deleted)
            })
            .await?;
        tracing::debug!(queue = %self.name, deleted, "messages deleted");
        Ok(())
    }

    async fn retry_later(&self, receipt: &str, delay: Duration) -> PortResult<()> {
        self.check_name()?;
        if delay > MAX_VISIBILITY {
            return Err(PortError::Invalid("retry delay is at most 12 hours".into()));
        }
        let name = self.name.clone();
        let receipt = receipt.to_owned();
        let visible_at = self.now_ms().saturating_add(millis(delay));
        let changed = self
            .db
            .call(move |conn| {
                conn.prepare_cached(
                    "UPDATE queue_messages SET visible_at = ?3 WHERE queue = ?1 AND receipt = ?2",
                )
                .and_then(|mut s| s.execute(params![name, receipt, visible_at]))
                .map_err(sql_err)
            })
            .await?;
        tracing::debug!(queue = %self.name, changed, delay_ms = millis(delay), "message retry scheduled");
        Ok(())
    }
}
