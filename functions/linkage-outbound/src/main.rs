//! Lambda bootstrap for `linkage-outbound`: SQS nudges from status changes and the
//! EventBridge schedule both invoke it; either means "run".

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use madoguchi_audit::AuditLog;
use madoguchi_domain::tenant::TenantId;
use madoguchi_fieldcrypt::{CachePolicy, FieldCipher};
use madoguchi_linkage_outbound::{OutboundState, handle};
use madoguchi_ports::{Clock, IdGen, SystemClock, UuidV7Gen};

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
    let items = aws.items(&resources.table);
    let linkage = aws.blobs(resources.bucket("linkage")?);
    let audit = AuditLog::new(items.clone(), clock.clone())
        .with_mirror(aws.blobs(resources.bucket("audit")?));
    let ids: Arc<dyn IdGen> = Arc::new(UuidV7Gen);
    let state = OutboundState::new(
        items,
        linkage.clone(),
        linkage,
        "outbound/",
        FieldCipher::new(keys, clock.clone(), CachePolicy::default()),
        audit,
        clock,
        ids,
        tenant,
    );
    let state = &state;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            Ok::<serde_json::Value, lambda_runtime::Error>(handle(state, event.payload).await)
        },
    ))
    .await
}
