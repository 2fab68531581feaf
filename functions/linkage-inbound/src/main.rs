//! Lambda bootstrap for `linkage-inbound`: SQS batches of S3 notifications, with partial
//! batch responses (`ReportBatchItemFailures` on the event source mapping).

use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use madoguchi_domain::tenant::TenantId;
use madoguchi_fieldcrypt::{CachePolicy, FieldCipher};
use madoguchi_linkage_inbound::{InboundState, handle};
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
    let keys = aws.keys(resources.data_key_id()?, resources.mac_key_id()?);
    // One data-key cache for the whole (warm) function: a file of residents seals many
    // 個人番号 under the same tenant key.
    let cipher = FieldCipher::new(keys, clock.clone(), CachePolicy::default());
    let state = InboundState::new(
        aws.items(&resources.table),
        aws.blobs(resources.bucket("linkage")?),
        cipher,
        clock,
        tenant,
    );
    let state = &state;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, lambda_runtime::Error>(handle(state, event.payload).await)
    }))
    .await
}
