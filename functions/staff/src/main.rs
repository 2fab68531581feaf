//! Lambda bootstrap for `staff`: wire the AWS adapters once at init, then serve the router.

use std::sync::Arc;

use madoguchi_audit::AuditLog;
use madoguchi_fieldcrypt::{CachePolicy, FieldCipher};
use madoguchi_http::{Authenticator, common_layers, ops_routes};
use madoguchi_ports::{Clock, SystemClock, UuidV7Gen};
use madoguchi_staff::{Settings, StaffState, router};

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
    let keys = aws.keys(resources.data_key_id()?, resources.mac_key_id()?);
    let mirror = aws.blobs(resources.bucket("audit")?);
    let cipher = FieldCipher::new(keys, clock.clone(), CachePolicy::default());
    let state = StaffState {
        items: items.clone(),
        attachments: aws.blobs(resources.bucket("attachments")?),
        exports: aws.blobs(resources.bucket("exports")?),
        notify: aws.queue(resources.queue_url("notify")?),
        outbound: aws.queue(resources.queue_url("linkage-outbound")?),
        residents: madoguchi_residents::ResidentStore::new(items.clone(), cipher.clone()),
        cipher: Arc::new(cipher),
        audit: AuditLog::new(items, clock.clone()).with_mirror(mirror.clone()),
        audit_mirror: Some(mirror),
        auth,
        clock,
        ids: Arc::new(UuidV7Gen),
        settings: Arc::new(Settings::default()),
    };
    let app = common_layers(router(state).merge(ops_routes()));
    lambda_http::run(app).await
}
