//! Lambda bootstrap for `payment-events`: the `payment-events` queue (verified webhooks)
//! and the EventBridge schedule (time-outs and reconciliation) both invoke it.

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use madoguchi_domain::tenant::TenantId;
use madoguchi_payment_events::{EventsState, handle, lambda::payments_from_env};
use madoguchi_ports::{Clock, SystemClock};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    madoguchi_http::logging::init();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let endpoint = std::env::var("MADOGUCHI_AWS_ENDPOINT").ok();
    let aws = madoguchi_aws::AwsBackend::from_env(endpoint.as_deref(), clock.clone()).await;
    let resources = madoguchi_aws::resources::AwsResources::from_env()?;
    let tenant = TenantId::parse(&std::env::var("MADOGUCHI_TENANT")?)
        .map_err(|_| "MADOGUCHI_TENANT is not a valid 全国地方公共団体コード")?;
    let items = aws.items(&resources.table);
    let notify = aws.queue(resources.queue_url("notify")?);
    let (payments, _accounts) = payments_from_env(&aws, items, notify, clock)?;
    let state = EventsState { payments, tenant };
    let state = &state;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            Ok::<serde_json::Value, lambda_runtime::Error>(handle(state, event.payload).await)
        },
    ))
    .await
}
