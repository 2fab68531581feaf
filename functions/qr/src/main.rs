//! Lambda bootstrap for `qr`: wire the AWS adapters once at init, then serve the router.

use std::sync::Arc;

use madoguchi_audit::AuditLog;
use madoguchi_fieldcrypt::{CachePolicy, FieldCipher};
use madoguchi_http::{Authenticator, common_layers, ops_routes};
use madoguchi_ports::{Clock, SystemClock, UuidV7Gen};
use madoguchi_qr::{QrSettings, QrState, router};

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
    // qr seals entries and wraps QR keys with the data key and computes no blind index: it
    // may be given no MAC key, and none is ever used through this handle.
    let keys = aws.keys(
        resources.data_key_id()?,
        resources.mac_key_id().unwrap_or("unused"),
    );
    let cipher = FieldCipher::new(keys.clone(), clock.clone(), CachePolicy::default());
    // Every opening is audited; the Object Lock copy is not optional.
    let audit = AuditLog::new(items.clone(), clock.clone())
        .with_mirror(aws.blobs(resources.bucket("audit")?));
    let state = QrState::new(
        items,
        keys,
        Arc::new(cipher),
        audit,
        auth,
        clock,
        Arc::new(UuidV7Gen),
        QrSettings::from_env()?,
    );
    let app = common_layers(router(state).merge(ops_routes()));
    lambda_http::run(app).await
}
