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
    let auth = Authenticator::shared(madoguchi_http::auth::issuers_from_env()?);
    let bucket = resources.bucket("attachments")?;
    let notify = resources.queue_url("notify")?;
    let keys = aws.keys(resources.data_key_id()?, resources.mac_key_id()?);
    let settings = Settings {
        mail_from: resources.mail_from()?.to_owned(),
        ..Settings::default()
    };
    let state = SubmissionsState {
        items: aws.items(&resources.table),
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
