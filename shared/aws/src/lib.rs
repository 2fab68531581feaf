//! AWS adapters for the Madoguchi ports: DynamoDB ([`DynamoItemStore`]), S3
//! ([`S3BlobStore`]), SQS ([`SqsQueue`]), KMS ([`KmsKeys`]), SES v2 ([`SesMailer`]),
//! GuardDuty Malware Protection for S3's object tags ([`GuardDutyTagScanner`]) and, for the
//! payment gateway's per-tenant credentials, Secrets Manager ([`SecretsManagerAccounts`]),
//! over the official `aws-sdk-*` crates.
//!
//! A Lambda function builds one [`AwsBackend`] during init (this builds the SDK clients and
//! loads credentials once), reads its resource names with [`AwsResources::from_env`], and
//! hands the adapters (`Arc`s, cheap to clone) to its library:
//!
//! ```no_run
//! # async fn init() -> Result<(), madoguchi_ports::PortError> {
//! use std::sync::Arc;
//! use madoguchi_aws::{AwsBackend, AwsResources};
//! use madoguchi_ports::SystemClock;
//!
//! let backend = AwsBackend::from_env(None, Arc::new(SystemClock)).await;
//! let res = AwsResources::from_env()?;
//! let items = backend.items(&res.table);
//! let attachments = backend.blobs(res.bucket("attachments")?);
//! let keys = backend.keys(res.data_key_id()?, res.mac_key_id()?);
//! # Ok(()) }
//! ```
//!
//! Errors are mapped onto [`madoguchi_ports::PortError`] by the service's error *code* only
//! (see [`error`]); request contents never reach an error message or a log line.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use madoguchi_ports::Clock;

pub mod attr;
pub mod blob;
pub mod error;
pub mod item;
pub mod keys;
pub mod mail;
pub mod payment_accounts;
pub mod post_policy;
pub mod provision;
pub mod queue;
pub mod resources;
pub mod scan;

pub use blob::S3BlobStore;
pub use item::DynamoItemStore;
pub use keys::KmsKeys;
pub use mail::SesMailer;
pub use payment_accounts::SecretsManagerAccounts;
pub use queue::SqsQueue;
pub use resources::AwsResources;
pub use scan::GuardDutyTagScanner;

/// Region used by [`AwsBackend::local`] when `AWS_REGION` is not set.
pub const LOCAL_REGION: &str = "ap-northeast-1";

/// Attempts per SDK operation (standard retry mode: exponential backoff with jitter,
/// throttling and transient errors only).
pub const MAX_ATTEMPTS: u32 = 3;

/// The SDK configuration of one process and its service clients, each built once, on first
/// use, and shared by every adapter. A function asks for its adapters in `main` (Lambda
/// init), so the clients it uses are warm before the first event, and a service it never
/// uses is neither built nor, after link-time optimisation, even linked into its binary.
///
/// Cloning is cheap (everything inside is reference-counted).
#[derive(Clone)]
pub struct AwsBackend {
    config: Arc<SdkConfig>,
    path_style: bool,
    clients: Arc<Clients>,
    region: Option<String>,
    clock: Arc<dyn Clock>,
}

#[derive(Default)]
struct Clients {
    dynamodb: OnceLock<aws_sdk_dynamodb::Client>,
    s3: OnceLock<aws_sdk_s3::Client>,
    sqs: OnceLock<aws_sdk_sqs::Client>,
    kms: OnceLock<aws_sdk_kms::Client>,
    ses: OnceLock<aws_sdk_sesv2::Client>,
    secretsmanager: OnceLock<aws_sdk_secretsmanager::Client>,
}

impl std::fmt::Debug for AwsBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsBackend")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

/// Timeouts for every service but SQS and S3: connect fast, fail an attempt that hangs,
/// bound the whole operation (retries included).
fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(25))
        .build()
}

/// SQS long polls for up to 20 s; an attempt must outlive the poll.
fn sqs_timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(25))
        .operation_timeout(Duration::from_secs(60))
        .build()
}

/// S3 bodies can be large: only the time to the response headers is bounded here (the
/// streamed body is read by the caller).
fn s3_timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(60))
        .operation_timeout(Duration::from_secs(120))
        .build()
}

/// Root certificates the SDK trusts: Amazon Trust Services (Amazon Root CA 1–4 and the
/// Starfield Services root that cross-signs them). Every AWS service endpoint we call serves
/// an ATS certificate (S3 finished its move in June 2022, the others earlier), so this is all
/// the SDK needs, and it spares every cold start from reading and parsing the system's whole
/// certificate store (several milliseconds on a Debian host). Public certificates, not secrets.
/// `MADOGUCHI_TLS_NATIVE_ROOTS=1` adds the system store back (a TLS-inspecting proxy, an
/// AWS-compatible endpoint with a private CA).
const AMAZON_TRUST_ROOTS: &[u8] = include_bytes!("../trust/amazon-trust-services-roots.crt");

fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let native = std::env::var("MADOGUCHI_TLS_NATIVE_ROOTS").is_ok_and(|v| v == "1");
    let trust = TrustStore::empty()
        .with_native_roots(native)
        .with_pem_certificate(AMAZON_TRUST_ROOTS);
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("static TLS context");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https()
}

impl AwsBackend {
    /// Loads region and credentials from the environment (the Lambda execution role, a
    /// profile, `AWS_*` variables). `endpoint` overrides every service's endpoint (moto or
    /// another AWS-compatible server on loopback); S3 then uses path-style addressing.
    pub async fn from_env(endpoint: Option<&str>, clock: Arc<dyn Clock>) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https_client())
            .retry_config(retry_config())
            .timeout_config(timeout_config());
        if let Some(endpoint) = endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        // On Lambda the execution role's credentials are always in the environment, first in
        // the default chain anyway; naming that provider spares each cold start the rest of
        // the chain, whose web-identity step alone builds a whole STS client (a fifth of the
        // function's init, measured with callgrind).
        let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
        if on_lambda && std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
            loader = loader.credentials_provider(
                aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
            );
        }
        let config = loader.load().await;
        Self::from_sdk_config(&config, endpoint.is_some(), clock)
    }

    /// For a local AWS-compatible endpoint (moto's server mode): fixed fake credentials
    /// (`madoguchi-local`), the region from `AWS_REGION` or [`LOCAL_REGION`], path-style S3.
    /// Never reads real credentials, so a developer's profile cannot leak into a local run.
    pub async fn local(endpoint: &str, clock: Arc<dyn Clock>) -> Self {
        let region = std::env::var("AWS_REGION")
            .ok()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| LOCAL_REGION.to_owned());
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region))
            .credentials_provider(Credentials::from_keys(
                "madoguchi-local",
                "madoguchi-local-secret",
                None,
            ))
            .endpoint_url(endpoint)
            .http_client(https_client())
            .retry_config(retry_config())
            .timeout_config(timeout_config())
            .load()
            .await;
        Self::from_sdk_config(&config, true, clock)
    }

    /// Builds the clients from an already loaded configuration. `path_style` forces S3
    /// path-style addressing (needed for endpoints without per-bucket host names).
    pub fn from_sdk_config(config: &SdkConfig, path_style: bool, clock: Arc<dyn Clock>) -> Self {
        Self {
            config: Arc::new(config.clone()),
            path_style,
            clients: Arc::default(),
            region: config.region().map(|r| r.to_string()),
            clock,
        }
    }

    /// The region the clients talk to, if one was configured.
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    pub fn items(&self, table: &str) -> Arc<DynamoItemStore> {
        Arc::new(DynamoItemStore::new(
            self.dynamodb_client().clone(),
            table,
            self.clock.clone(),
        ))
    }

    /// Presigned POST forms from this store go to the endpoint override when there is one
    /// (moto), else to S3, and are dated by the backend's clock.
    pub fn blobs(&self, bucket: &str) -> Arc<S3BlobStore> {
        Arc::new(
            S3BlobStore::new(self.s3_client().clone(), bucket).with_post_signing(
                self.config.credentials_provider(),
                self.config.endpoint_url(),
                self.clock.clone(),
            ),
        )
    }

    /// Malware-scan verdicts of `bucket`'s objects from GuardDuty Malware Protection for
    /// S3's object tags (see [`GuardDutyTagScanner`]).
    pub fn scanner(&self, bucket: &str) -> Arc<GuardDutyTagScanner> {
        Arc::new(GuardDutyTagScanner::new(self.s3_client().clone(), bucket))
    }

    pub fn queue(&self, queue_url: &str) -> Arc<SqsQueue> {
        Arc::new(SqsQueue::new(self.sqs_client().clone(), queue_url))
    }

    /// `data_key_id`: a symmetric KMS key for envelope encryption. `mac_key_id`: an
    /// `HMAC_256` KMS key for blind indexes. Build once per process: the adapter caches the
    /// per-context MAC keys it derives (see [`KmsKeys`]).
    pub fn keys(&self, data_key_id: &str, mac_key_id: &str) -> Arc<KmsKeys> {
        Arc::new(KmsKeys::new(
            self.kms_client().clone(),
            data_key_id,
            mac_key_id,
        ))
    }

    pub fn mailer(&self) -> Arc<SesMailer> {
        Arc::new(SesMailer::new(self.ses_client().clone()))
    }

    /// Per-tenant payment-gateway credentials from the Secrets Manager secrets
    /// `<secret_prefix><tenant code>`, each kept in memory for `ttl`
    /// ([`payment_accounts::DEFAULT_TTL`] in production). See [`SecretsManagerAccounts`].
    pub fn payment_accounts(
        &self,
        secret_prefix: &str,
        ttl: Duration,
    ) -> Arc<SecretsManagerAccounts> {
        Arc::new(SecretsManagerAccounts::new(
            self.secretsmanager_client().clone(),
            secret_prefix,
            ttl,
        ))
    }

    pub fn dynamodb_client(&self) -> &aws_sdk_dynamodb::Client {
        self.clients
            .dynamodb
            .get_or_init(|| aws_sdk_dynamodb::Client::new(self.config.as_ref()))
    }
    pub fn s3_client(&self) -> &aws_sdk_s3::Client {
        self.clients.s3.get_or_init(|| {
            let conf = aws_sdk_s3::config::Builder::from(self.config.as_ref())
                .force_path_style(self.path_style)
                .timeout_config(s3_timeout_config())
                .build();
            aws_sdk_s3::Client::from_conf(conf)
        })
    }
    pub fn sqs_client(&self) -> &aws_sdk_sqs::Client {
        self.clients.sqs.get_or_init(|| {
            let conf = aws_sdk_sqs::config::Builder::from(self.config.as_ref())
                .timeout_config(sqs_timeout_config())
                .build();
            aws_sdk_sqs::Client::from_conf(conf)
        })
    }
    pub fn kms_client(&self) -> &aws_sdk_kms::Client {
        self.clients
            .kms
            .get_or_init(|| aws_sdk_kms::Client::new(self.config.as_ref()))
    }
    pub fn ses_client(&self) -> &aws_sdk_sesv2::Client {
        self.clients
            .ses
            .get_or_init(|| aws_sdk_sesv2::Client::new(self.config.as_ref()))
    }
    pub fn secretsmanager_client(&self) -> &aws_sdk_secretsmanager::Client {
        self.clients
            .secretsmanager
            .get_or_init(|| aws_sdk_secretsmanager::Client::new(self.config.as_ref()))
    }
}

#[cfg(test)]
mod trust_tests {
    #[test]
    fn the_trust_bundle_holds_the_five_ats_roots() {
        let pem = std::str::from_utf8(super::AMAZON_TRUST_ROOTS).unwrap();
        assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), 5);
        assert_eq!(pem.matches("-----END CERTIFICATE-----").count(), 5);
        // Building the client parses nothing yet; it must not panic on the bundle.
        let _ = super::https_client();
    }
}
