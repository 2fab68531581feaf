//! Queue: at-least-once messages between functions (SQS in AWS, SQLite embedded), and the
//! consumer loop that gives every backend the contract of Lambda's SQS event source.
//!
//! # Contract
//! - `send_batch` enqueues 1 to 10 messages (an empty batch is `Invalid`, as in SQS); all or
//!   an error. Bodies are at most 256 KiB.
//! - `receive` returns up to `max` visible messages (waiting up to `wait` for the first) and
//!   hides them for the queue's visibility timeout. Each receive increments the message's
//!   receive count. A message already received `max_receives` times is moved to the queue's
//!   dead-letter queue instead of being delivered again.
//! - `delete` removes received messages by receipt; a stale receipt is ignored.
//! - `retry_later` makes a received message visible again after `delay` (backoff).
//! - Consumers are idempotent: a message can arrive more than once.
//!
//! [`drive_once`] is the consumer loop's single step, used by the local host for both adapter
//! sets: receive a batch, hand it to a [`BatchHandler`], delete what succeeded, and schedule
//! what failed for redelivery with exponential backoff. This is the same partial-batch
//! contract as Lambda's SQS event source with `ReportBatchItemFailures`.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::PortResult;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub body: String,
    /// Delivery delay (SQS allows up to 15 minutes).
    pub delay: Option<Duration>,
}

impl OutgoingMessage {
    pub fn new(body: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            delay: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    /// Handle for `delete` / `retry_later`; valid for this receive only.
    pub receipt: String,
    pub body: String,
    /// How many times this message has been received, this time included (1 = first).
    pub receive_count: u32,
}

pub const MAX_BATCH: usize = 10;

#[async_trait]
pub trait Queue: Send + Sync {
    async fn send_batch(&self, messages: Vec<OutgoingMessage>) -> PortResult<()>;
    async fn receive(&self, max: usize, wait: Duration) -> PortResult<Vec<ReceivedMessage>>;
    async fn delete(&self, receipts: &[String]) -> PortResult<()>;
    async fn retry_later(&self, receipt: &str, delay: Duration) -> PortResult<()>;
}

/// What a consumer reports for a batch: the ids of the messages that failed
/// (Lambda's `batchItemFailures`). Everything else in the batch succeeded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub failed_message_ids: Vec<String>,
}

#[async_trait]
pub trait BatchHandler: Send + Sync {
    async fn handle(&self, batch: Vec<ReceivedMessage>) -> BatchOutcome;
}

/// Backoff for failed messages: `base * 2^(receive_count-1)`, capped at `max`.
#[derive(Debug, Clone, Copy)]
pub struct RedeliveryPolicy {
    pub base: Duration,
    pub max: Duration,
}

impl Default for RedeliveryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

impl RedeliveryPolicy {
    pub fn delay_for(&self, receive_count: u32) -> Duration {
        let shift = receive_count.saturating_sub(1).min(20);
        self.base
            .checked_mul(1u32 << shift)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriveReport {
    pub received: usize,
    pub succeeded: usize,
    pub failed: usize,
}

/// One step of a consumer: receive, handle, acknowledge. Messages the handler reports as
/// failed, and ids it reports that were not in the batch, are never deleted; if the handler
/// names an unknown id the whole batch is treated as failed, as Lambda does.
pub async fn drive_once(
    queue: &dyn Queue,
    handler: &dyn BatchHandler,
    wait: Duration,
    policy: RedeliveryPolicy,
) -> PortResult<DriveReport> {
    let batch = queue.receive(MAX_BATCH, wait).await?;
    if batch.is_empty() {
        return Ok(DriveReport::default());
    }
    let received = batch.len();
    let outcome = handler.handle(batch.clone()).await;
    let unknown = outcome
        .failed_message_ids
        .iter()
        .any(|id| !batch.iter().any(|m| &m.message_id == id));
    let (failed, ok): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .partition(|m| unknown || outcome.failed_message_ids.contains(&m.message_id));
    if !ok.is_empty() {
        let receipts: Vec<String> = ok.iter().map(|m| m.receipt.clone()).collect();
        queue.delete(&receipts).await?;
    }
    for m in &failed {
        queue
            .retry_later(&m.receipt, policy.delay_for(m.receive_count))
            .await?;
    }
    Ok(DriveReport {
        received,
        succeeded: ok.len(),
        failed: failed.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RedeliveryPolicy {
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
        };
        assert_eq!(p.delay_for(1), Duration::from_secs(2));
        assert_eq!(p.delay_for(2), Duration::from_secs(4));
        assert_eq!(p.delay_for(5), Duration::from_secs(32));
        assert_eq!(p.delay_for(6), Duration::from_secs(60));
        assert_eq!(p.delay_for(u32::MAX), Duration::from_secs(60));
    }
}
