//! Lambda bootstrap for `attachments`: SQS batches of S3 notifications for the quarantine
//! prefix, with partial batch responses.

use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use madoguchi_attachments::{AttachmentsState, handle};
use madoguchi_ports::{Clock, MalwareScanner, NotScannedScanner, SystemClock};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    madoguchi_http::logging::init();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let endpoint = std::env::var("MADOGUCHI_AWS_ENDPOINT").ok();
    let aws = madoguchi_aws::AwsBackend::from_env(endpoint.as_deref(), clock.clone()).await;
    let resources = madoguchi_aws::resources::AwsResources::from_env()?;
    let bucket = resources.bucket("attachments")?;
    // GuardDuty Malware Protection tags each object; a tenant may switch it off (billed per
    // GB scanned), and then no tag ever comes: say "not scanned" instead of waiting.
    let scanner: Arc<dyn MalwareScanner> = match std::env::var("MADOGUCHI_MALWARE_SCAN").as_deref()
    {
        Ok("off") => Arc::new(NotScannedScanner),
        _ => aws.scanner(bucket),
    };
    let state = AttachmentsState {
        items: aws.items(&resources.table),
        blobs: aws.blobs(bucket),
        scanner,
        clock,
    };
    let state = &state;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, lambda_runtime::Error>(handle(state, event.payload).await)
    }))
    .await
}
