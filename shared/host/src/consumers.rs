//! Queue consumers with the contract of Lambda's SQS event source: a batch in, the failed
//! message ids out, failed messages redelivered with backoff and dead-lettered after the
//! queue's maximum receives. The functions' handlers take `aws_lambda_events` types, exactly
//! what Lambda hands them, so the same handler code runs here and on Lambda.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::BoxFuture;
use madoguchi_ports::{
    BatchHandler, BatchOutcome, Queue, ReceivedMessage, RedeliveryPolicy, drive_once,
};
use tokio_util::sync::CancellationToken;

type SqsFn = dyn Fn(SqsEvent) -> BoxFuture<'static, SqsBatchResponse> + Send + Sync;

/// Adapts a Lambda SQS handler to the port's [`BatchHandler`].
pub struct LambdaSqsHandler {
    pub queue_arn: String,
    pub handler: Arc<SqsFn>,
}

impl LambdaSqsHandler {
    pub fn new<F, Fut>(queue_arn: &str, f: F) -> Self
    where
        F: Fn(SqsEvent) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = SqsBatchResponse> + Send + 'static,
    {
        Self {
            queue_arn: queue_arn.to_owned(),
            handler: Arc::new(move |e| Box::pin(f(e))),
        }
    }
}

/// Builds the event Lambda would deliver for these messages.
pub fn to_sqs_event(queue_arn: &str, batch: &[ReceivedMessage]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = batch
        .iter()
        .map(|m| {
            let mut msg = SqsMessage::default();
            msg.message_id = Some(m.message_id.clone());
            msg.receipt_handle = Some(m.receipt.clone());
            msg.body = Some(m.body.clone());
            msg.event_source = Some("aws:sqs".to_owned());
            msg.event_source_arn = Some(queue_arn.to_owned());
            msg.attributes = HashMap::from([(
                "ApproximateReceiveCount".to_owned(),
                m.receive_count.to_string(),
            )]);
            msg
        })
        .collect();
    event
}

#[async_trait]
impl BatchHandler for LambdaSqsHandler {
    async fn handle(&self, batch: Vec<ReceivedMessage>) -> BatchOutcome {
        let event = to_sqs_event(&self.queue_arn, &batch);
        let response = (self.handler)(event).await;
        BatchOutcome {
            failed_message_ids: response
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect(),
        }
    }
}

/// Runs one consumer until `stop` is cancelled. A batch that has been received is always
/// finished and acknowledged before the loop looks at `stop`, so shutting down never loses
/// acknowledged work; unacknowledged messages simply become visible again.
pub async fn run_consumer(
    name: String,
    queue: Arc<dyn Queue>,
    handler: Arc<dyn BatchHandler>,
    policy: RedeliveryPolicy,
    wait: Duration,
    stop: CancellationToken,
) {
    tracing::info!(consumer = %name, "consumer started");
    while !stop.is_cancelled() {
        match drive_once(queue.as_ref(), handler.as_ref(), wait, policy).await {
            Ok(report) if report.received > 0 => tracing::info!(
                consumer = %name,
                received = report.received,
                succeeded = report.succeeded,
                failed = report.failed,
                "batch done"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(consumer = %name, error = %e, "receive failed; backing off");
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    tracing::info!(consumer = %name, "consumer stopped");
}
