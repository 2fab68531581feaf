//! [`Queue`] over one SQS standard queue.
//!
//! Dead-lettering is SQS's own: the queue's `RedrivePolicy` (set by
//! [`crate::provision::ensure_queue`]) names `<name>-dlq` and `maxReceiveCount` = the
//! contract's `max_receives`. `retry_later` is `ChangeMessageVisibility` (whole seconds,
//! rounded up, at most 12 hours).
//!
//! `send_batch` is one `SendMessageBatch`; if SQS accepts some entries and refuses others the
//! call fails (`Backend`) although the accepted ones were sent: a retry may duplicate them,
//! which consumers tolerate (they are idempotent).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, SendMessageBatchRequestEntry,
};
use madoguchi_ports::queue::MAX_BATCH;
use madoguchi_ports::{OutgoingMessage, PortError, PortResult, Queue, ReceivedMessage};

use crate::error::{malformed, map_sdk};

/// SQS's longest long poll.
const MAX_WAIT: Duration = Duration::from_secs(20);
/// SQS's longest delivery delay.
const MAX_DELAY: Duration = Duration::from_secs(900);
/// SQS's longest visibility timeout.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

/// Error codes that mean "this receipt is no longer valid": ignored, as the contract says.
const STALE_RECEIPT: &[&str] = &[
    "ReceiptHandleIsInvalid",
    "AWS.SimpleQueueService.ReceiptHandleIsInvalid",
    "InvalidParameterValue",
    "MessageNotInflight",
    "AWS.SimpleQueueService.MessageNotInflight",
];

#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
    name: String,
}

fn whole_secs_up(d: Duration) -> i32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

impl SqsQueue {
    pub fn new(client: Client, url: &str) -> Self {
        let name = url.rsplit('/').next().unwrap_or(url).to_owned();
        Self {
            client,
            url: url.to_owned(),
            name,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The queue's name (last segment of the URL), as logged.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send_batch(&self, messages: Vec<OutgoingMessage>) -> PortResult<()> {
        // SQS refuses an empty batch too (EmptyBatchRequest); so does the embedded queue.
        if messages.is_empty() || messages.len() > MAX_BATCH {
            return Err(PortError::Invalid(format!(
                "a batch holds 1 to {MAX_BATCH} messages"
            )));
        }
        let mut entries = Vec::with_capacity(messages.len());
        for (i, m) in messages.into_iter().enumerate() {
            let delay = match m.delay {
                Some(d) if d > MAX_DELAY => {
                    return Err(PortError::Invalid("delay longer than 15 minutes".into()));
                }
                Some(d) => Some(whole_secs_up(d)),
                None => None,
            };
            entries.push(
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(m.body)
                    .set_delay_seconds(delay)
                    .build()
                    .map_err(|_| malformed("batch entry"))?,
            );
        }
        let count = entries.len();
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| map_sdk("sqs", "SendMessageBatch", &e))?;
        if let Some(f) = out.failed().first() {
            tracing::warn!(queue = %self.name, failed = out.failed().len(), code = f.code(), "send batch partly refused");
            return Err(PortError::Backend(format!(
                "SendMessageBatch: {}",
                f.code()
            )));
        }
        tracing::debug!(queue = %self.name, count, "messages sent");
        Ok(())
    }

    async fn receive(&self, max: usize, wait: Duration) -> PortResult<Vec<ReceivedMessage>> {
        let max = max.clamp(1, MAX_BATCH) as i32;
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max)
            .wait_time_seconds(whole_secs_up(wait.min(MAX_WAIT)))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| map_sdk("sqs", "ReceiveMessage", &e))?;
        let messages = out
            .messages()
            .iter()
            .map(|m| {
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                Ok(ReceivedMessage {
                    message_id: m
                        .message_id()
                        .ok_or_else(|| malformed("message id"))?
                        .to_owned(),
                    receipt: m
                        .receipt_handle()
                        .ok_or_else(|| malformed("receipt"))?
                        .to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                    receive_count,
                })
            })
            .collect::<PortResult<Vec<_>>>()?;
        tracing::debug!(queue = %self.name, count = messages.len(), "messages received");
        Ok(messages)
    }

    async fn delete(&self, receipts: &[String]) -> PortResult<()> {
        for chunk in receipts.chunks(MAX_BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(r)
                        .build()
                        .map_err(|_| malformed("delete entry"))
                })
                .collect::<PortResult<Vec<_>>>()?;
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| map_sdk("sqs", "DeleteMessageBatch", &e))?;
            let stale = out
                .failed()
                .iter()
                .filter(|f| STALE_RECEIPT.contains(&f.code()))
                .count();
            if let Some(f) = out
                .failed()
                .iter()
                .find(|f| !STALE_RECEIPT.contains(&f.code()))
            {
                tracing::warn!(queue = %self.name, code = f.code(), "delete batch partly refused");
                return Err(PortError::Backend(format!(
                    "DeleteMessageBatch: {}",
                    f.code()
                )));
            }
            tracing::debug!(queue = %self.name, count = chunk.len(), stale, "messages deleted");
        }
        Ok(())
    }

    async fn retry_later(&self, receipt: &str, delay: Duration) -> PortResult<()> {
        let result = self
            .client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(whole_secs_up(delay.min(MAX_VISIBILITY)))
            .send()
            .await;
        match result {
            Ok(_) => {
                tracing::debug!(queue = %self.name, secs = delay.as_secs(), "message scheduled for retry");
                Ok(())
            }
            Err(e) => match e
                .as_service_error()
                .map(aws_sdk_sqs::error::ProvideErrorMetadata::code)
            {
                Some(Some(code)) if STALE_RECEIPT.contains(&code) => {
                    tracing::debug!(queue = %self.name, code, "retry of a stale receipt ignored");
                    Ok(())
                }
                _ => Err(map_sdk("sqs", "ChangeMessageVisibility", &e)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::whole_secs_up;
    use std::time::Duration;

    #[test]
    fn delays_round_up_to_whole_seconds() {
        assert_eq!(whole_secs_up(Duration::ZERO), 0);
        assert_eq!(whole_secs_up(Duration::from_millis(1)), 1);
        assert_eq!(whole_secs_up(Duration::from_secs(2)), 2);
        assert_eq!(whole_secs_up(Duration::from_millis(2001)), 3);
    }
}
