//! Lambda bootstrap for `payments`: wire the AWS adapters and the gateway once at init, then
//! serve the router.

use std::sync::Arc;

use madoguchi_audit::AuditLog;
use madoguchi_http::{Authenticator, common_layers, ops_routes};
use madoguchi_payment_events::lambda::payments_from_env;
use madoguchi_payments::{PaymentsState, router};
use madoguchi_ports::{Clock, SystemClock, UuidV7Gen};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    madoguchi_http::logging::init();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let endpoint = std::env::var("MADOGUCHI_AWS_ENDPOINT").ok();
    let aws = madoguchi_aws::AwsBackend::from_env(endpoint.as_deref(), clock.clone()).await;
    let resources = madoguchi_aws::resources::AwsResources::from_env()?;
    let items = aws.items(&resources.table);
    let mut issuers = madoguchi_http::auth::issuers_from_env()?;
    // Citizens signed in with the My Number Card pay too.
    issuers.push(madoguchi_cardlogin::trusted_issuer(items.clone()));
    let auth = Authenticator::shared(issuers);
    let notify = aws.queue(resources.queue_url("notify")?);
    let events = aws.queue(resources.queue_url("payment-events")?);
    let (payments, accounts) = payments_from_env(&aws, items.clone(), notify, clock.clone())?;
    // Staff views of payments and the daily report are audited; the copy is not optional.
    let audit = AuditLog::new(items.clone(), clock.clone())
        .with_mirror(aws.blobs(resources.bucket("audit")?));
    let state = PaymentsState {
        items,
        payments,
        accounts,
        events,
        audit,
        auth,
        clock,
        ids: Arc::new(UuidV7Gen),
    };
    let app = common_layers(router(state).merge(ops_routes()));
    lambda_http::run(app).await
}
