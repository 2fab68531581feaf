//! The `payment-events` function: what the gateway tells us, and the schedule.
//!
//! - From the `payment-events` queue: webhook events the `payments` function verified. Each
//!   is handled once by event id; the state is read back from the gateway, so a repeat, a
//!   late or an out-of-order event ends in the same place (`madoguchi-payment-ledger`).
//! - From the EventBridge schedule: [`Payments::reconcile`]: payments still in progress are
//!   read back from the gateway, unsent refunds are sent, unpaid payments at submission past
//!   their time are cancelled with their application (and the citizen told), and the
//!   gateway's recent payment intents and refund events are compared with our ledgers (what
//!   a lost webhook left behind is fixed here).

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use madoguchi_domain::tenant::TenantId;
use madoguchi_payment_gateway::Event;
use madoguchi_payment_ledger::{Applied, EventMessage, Payments, ReconcileReport};

#[derive(Clone)]
pub struct EventsState {
    pub payments: Payments,
    /// The deployment's tenant: events of any other tenant are dropped.
    pub tenant: TenantId,
}

/// What happened to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied(Applied),
    /// Not an event message of this tenant: dropped (logged), never retried.
    Dropped(&'static str),
}

/// Handles one message body. An error is transient (the gateway or the store): the message
/// is retried by the queue.
pub async fn handle_message(
    state: &EventsState,
    body: &str,
) -> Result<Outcome, madoguchi_payment_ledger::PayError> {
    let Ok(message) = serde_json::from_str::<EventMessage>(body) else {
        return Ok(Outcome::Dropped("not an event message"));
    };
    if message.tenant != state.tenant.as_str() {
        return Ok(Outcome::Dropped("another tenant"));
    }
    let Ok(event) = serde_json::from_value::<Event>(message.event) else {
        return Ok(Outcome::Dropped("not a gateway event"));
    };
    let applied = state.payments.handle_event(&state.tenant, &event).await?;
    tracing::info!(event = %event.id, kind = %event.event_type, ?applied, "payment event");
    Ok(Outcome::Applied(applied))
}

/// An SQS batch: each message on its own; failures are reported for redelivery.
pub async fn handle_sqs(state: &EventsState, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let body = message.body.as_deref().unwrap_or("");
        match handle_message(state, body).await {
            Ok(Outcome::Dropped(why)) => tracing::warn!(message_id = %id, why, "message dropped"),
            Ok(Outcome::Applied(_)) => {}
            Err(e) => {
                tracing::warn!(message_id = %id, error = %e, "payment event failed; will retry");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
    }
    response
}

/// The scheduled run.
pub async fn scheduled(state: &EventsState) -> ReconcileReport {
    state.payments.reconcile(&state.tenant).await
}

/// The Lambda entry: an SQS batch or an EventBridge scheduled event.
pub async fn handle(state: &EventsState, event: serde_json::Value) -> serde_json::Value {
    if event.get("Records").is_some() {
        let batch: SqsEvent = serde_json::from_value(event).unwrap_or_default();
        let answer = handle_sqs(state, batch).await;
        return serde_json::to_value(answer).unwrap_or_default();
    }
    let report = scheduled(state).await;
    serde_json::to_value(report).unwrap_or_default()
}

/// Lambda wiring shared by `payments` and `payment-events`: the gateway named by
/// `MADOGUCHI_PAYMENT_GATEWAY` (`stripe`) with each tenant's credentials from Secrets
/// Manager (`MADOGUCHI_PAYMENT_SECRET_PREFIX` + tenant code), and the flow settings.
pub mod lambda {
    use std::sync::Arc;
    use std::time::Duration;

    use madoguchi_aws::AwsBackend;
    use madoguchi_payment_gateway::{GatewayAccounts, StripeConfig, StripeGateway};
    use madoguchi_payment_ledger::{PaymentSettings, Payments};
    use madoguchi_ports::{Clock, ItemStore, Queue};

    fn var(name: &str) -> Result<String, String> {
        std::env::var(name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| format!("{name} is not set"))
    }

    /// Builds the flows from the environment.
    pub fn payments_from_env(
        aws: &AwsBackend,
        items: Arc<dyn ItemStore>,
        notify: Arc<dyn Queue>,
        clock: Arc<dyn Clock>,
    ) -> Result<(Payments, Arc<dyn GatewayAccounts>), String> {
        let gateway = var("MADOGUCHI_PAYMENT_GATEWAY")?;
        if gateway != "stripe" {
            return Err(format!(
                "MADOGUCHI_PAYMENT_GATEWAY {gateway:?} is not supported (stripe)"
            ));
        }
        let prefix = var("MADOGUCHI_PAYMENT_SECRET_PREFIX")?;
        let accounts: Arc<dyn GatewayAccounts> =
            aws.payment_accounts(&prefix, Duration::from_secs(300));
        let stripe = StripeGateway::new(StripeConfig::default(), accounts.clone())
            .map_err(|e| format!("payment gateway: {e}"))?;
        let settings = PaymentSettings {
            environment: var("MADOGUCHI_PAYMENT_ENVIRONMENT")?,
            return_url: std::env::var("MADOGUCHI_PAYMENT_RETURN_URL").ok(),
        };
        Ok((
            Payments {
                items,
                gateway: Arc::new(stripe),
                notify,
                clock,
                settings: Arc::new(settings),
            },
            accounts,
        ))
    }
}
