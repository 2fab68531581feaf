//! Lambda bootstrap for `esign`: wire the AWS adapters and the JPKI trust once at init.

use std::sync::Arc;

use madoguchi_esign::{EsignState, Settings, Trust, router};
use madoguchi_http::{Authenticator, common_layers, ops_routes};
use madoguchi_ports::{Clock, SystemClock, UuidV7Gen};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    madoguchi_http::logging::init();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let endpoint = std::env::var("MADOGUCHI_AWS_ENDPOINT").ok();
    let aws = madoguchi_aws::AwsBackend::from_env(endpoint.as_deref(), clock.clone()).await;
    let resources = madoguchi_aws::resources::AwsResources::from_env()?;
    let items = aws.items(&resources.table);
    // esign wraps its card-login key with the data key and computes no blind index: it is
    // given no MAC key, and none is ever used through this handle.
    let keys = aws.keys(
        resources.data_key_id()?,
        resources.mac_key_id().unwrap_or("unused"),
    );
    let mut issuers = madoguchi_http::auth::issuers_from_env()?;
    issuers.push(madoguchi_cardlogin::trusted_issuer(items.clone()));
    // `blob:` CRL locations are keys of the trust bucket (an ops job mirrors J-LIS CRLs).
    let trust_blobs = resources
        .bucket("trust")
        .ok()
        .map(|b| aws.blobs(b) as Arc<dyn madoguchi_ports::BlobStore>);
    let trust = Trust::from_env(trust_blobs).await?;
    let settings = Settings {
        api_base_url: std::env::var("MADOGUCHI_API_URL").unwrap_or_default(),
        ..Settings::default()
    };
    let state = EsignState {
        tokens: Arc::new(madoguchi_cardlogin::CardTokens::new(
            items.clone(),
            keys,
            clock.clone(),
        )),
        items,
        auth: Authenticator::shared(issuers),
        trust: Arc::new(trust),
        clock,
        ids: Arc::new(UuidV7Gen),
        settings: Arc::new(settings),
    };
    let app = common_layers(router(state).merge(ops_routes()));
    lambda_http::run(app).await
}
