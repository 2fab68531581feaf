//! Lambda bootstrap for `submissions`: wire the AWS adapters once at init, then serve.

use std::sync::Arc;

use madoguchi_fieldcrypt::{CachePolicy, FieldCipher};
use madoguchi_http::{Authenticator, common_layers, ops_routes};
use madoguchi_ports::{Clock, SystemClock, UuidV7Gen};
use madoguchi_submissions::{Settings, SubmissionsState, router};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    madoguchi_http::logging::init();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let endpoint = std::env::var("MADOGUCHI_AWS_ENDPOINT").ok();
    let aws = madoguchi_aws::AwsBackend::from_env(endpoint.as_deref(), clock.clone()).await;
    let resources = madoguchi_aws::resources::AwsResources::from_env()?;
    let items = aws.items(&resources.table);
    let mut issuers = madoguchi_http::auth::issuers_from_env()?;
    // Citizens who logged in with the My Number Card (the esign function issues these).
    issuers.push(madoguchi_cardlogin::trusted_issuer(items.clone()));
    let auth = Authenticator::shared(issuers);
    let bucket = resources.bucket("attachments")?;
    let notify = resources.queue_url("notify")?;
    let keys = aws.keys(resources.data_key_id()?, resources.mac_key_id()?);
    let settings = Settings {
        mail_from: resources.mail_from()?.to_owned(),
        api_base_url: std::env::var("MADOGUCHI_API_URL").unwrap_or_default(),
        payment_pending: madoguchi_payment_ledger::pending_timeout_from(
            std::env::var(madoguchi_payment_ledger::PENDING_MINUTES_ENV)
                .ok()
                .as_deref(),
        )?,
        ..Settings::default()
    };
    let state = SubmissionsState {
        items,
        uploads: aws.blobs(bucket),
        notify: aws.queue(notify),
        mailer: aws.mailer(),
        cipher: Arc::new(FieldCipher::new(
            keys,
            clock.clone(),
            CachePolicy::default(),
        )),
        auth,
        clock,
        ids: Arc::new(UuidV7Gen),
        settings: Arc::new(settings),
    };
    let app = common_layers(router(state).merge(ops_routes()));
    lambda_http::run(app).await
}
