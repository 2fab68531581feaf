//! Lambda bootstrap for `navigator`: wire the AWS adapters once at init, then serve the router.

use std::sync::Arc;

use madoguchi_audit::AuditLog;
use madoguchi_http::{Authenticator, common_layers, ops_routes};
use madoguchi_navigator::{NavigatorState, router};
use madoguchi_ports::{Clock, SystemClock, UuidV7Gen};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    madoguchi_http::logging::init();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // Clients are built here, during init, so the first request does not pay for them.
    let endpoint = std::env::var("MADOGUCHI_AWS_ENDPOINT").ok();
    let aws = madoguchi_aws::AwsBackend::from_env(endpoint.as_deref(), clock.clone()).await;
    let resources = madoguchi_aws::resources::AwsResources::from_env()?;
    let auth = Authenticator::shared(madoguchi_http::auth::issuers_from_env()?);
    let items = aws.items(&resources.table);
    // The audit chain's Object Lock copy, when the deployment gives this function the bucket.
    let mut audit = AuditLog::new(items.clone(), clock.clone());
    if let Ok(bucket) = resources.bucket("audit") {
        audit = audit.with_mirror(aws.blobs(bucket));
    }
    let state = NavigatorState {
        items,
        audit,
        auth,
        clock,
        ids: Arc::new(UuidV7Gen),
    };
    let app = common_layers(router(state).merge(ops_routes()));
    lambda_http::run(app).await
}
