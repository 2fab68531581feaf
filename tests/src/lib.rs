//! Fixtures for the cross-adapter contract suite.
//!
//! Every contract test is one generic `async fn(Env)`, instantiated by [`contract_tests!`]
//! twice under the same name: `embedded::<name>` (SQLite, files, local keys in a temporary
//! data directory) and `aws::<name>` (the AWS adapters against moto's server mode on
//! loopback). When the two adapter sets disagree, these tests are the referee.
//!
//! # The AWS endpoint
//! - `MADOGUCHI_TEST_AWS_ENDPOINT` set (e.g. `http://127.0.0.1:5000`): the tests use that
//!   server and start nothing.
//! - otherwise each test binary starts, once, `<workspace>/.venv/bin/moto_server`
//!   (or the path in `MADOGUCHI_TEST_MOTO_SERVER`) on a free loopback port and waits until it
//!   answers. The venv comes from `python3 -m venv .venv && .venv/bin/pip install -r
//!   requirements-dev.txt` (the Makefile does this). The server's log goes to
//!   `<tmp>/madoguchi-moto-<pid>.log`; the server stops when the test binary exits.
//! - If the server cannot be started, every AWS test fails with the reason. It never skips.
//!
//! Credentials are fixed fakes and the region is `ap-northeast-1` ([`AwsBackend::local`]).
//! Each test provisions its own resources under a unique prefix (`mdg-<uuid>`), so tests run
//! in parallel.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use madoguchi_aws::AwsBackend;
use madoguchi_aws::provision::{self, KmsKeyKind};
use madoguchi_embedded::{EmbeddedBackend, QueueSettings};
use madoguchi_ports::{BlobStore, FixedClock, ItemStore, Keys, Mailer, Queue};

pub use madoguchi_embedded;

pub mod faults;
pub mod openssl_ca;
pub mod pki;
pub mod proxy;
pub use faults::UnavailableItemStore;
pub use proxy::CountingProxy;

/// Env var naming an already running AWS-compatible endpoint.
pub const ENDPOINT_VAR: &str = "MADOGUCHI_TEST_AWS_ENDPOINT";
/// Env var overriding the path of `moto_server`.
pub const MOTO_SERVER_VAR: &str = "MADOGUCHI_TEST_MOTO_SERVER";
/// How long to wait for moto to answer.
const MOTO_START_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Embedded,
    Aws,
}

enum Inner {
    Embedded {
        backend: EmbeddedBackend,
        _dir: tempfile::TempDir,
    },
    Aws {
        backend: AwsBackend,
    },
}

/// One test's backend: a fresh embedded data directory, or a unique resource prefix on moto.
pub struct Env {
    pub kind: Kind,
    /// The clock every adapter of this env reads; tests move it (expiry, presign expiry).
    pub clock: Arc<FixedClock>,
    /// Unique per env: names resources (`mdg-<uuid>`).
    pub prefix: String,
    inner: Inner,
}

/// A queue and its dead-letter queue.
pub struct QueuePair {
    pub queue: Arc<dyn Queue>,
    pub dead_letters: Arc<dyn Queue>,
}

impl Env {
    fn new_clock() -> Arc<FixedClock> {
        Arc::new(FixedClock::new(jiff::Timestamp::now()))
    }

    fn new_prefix() -> String {
        format!("mdg-{}", uuid::Uuid::now_v7().simple())
    }

    pub async fn embedded() -> Self {
        let dir = tempfile::tempdir().expect("temporary data directory");
        let clock = Self::new_clock();
        let backend = EmbeddedBackend::open(dir.path(), "http://127.0.0.1:9", clock.clone())
            .expect("open embedded backend");
        Self {
            kind: Kind::Embedded,
            clock,
            prefix: Self::new_prefix(),
            inner: Inner::Embedded { backend, _dir: dir },
        }
    }

    /// Panics (fails the test) if no AWS-compatible endpoint can be had.
    pub async fn aws() -> Self {
        let endpoint = aws_endpoint();
        let clock = Self::new_clock();
        let backend = AwsBackend::local(&endpoint, clock.clone()).await;
        Self {
            kind: Kind::Aws,
            clock,
            prefix: Self::new_prefix(),
            inner: Inner::Aws { backend },
        }
    }

    pub fn embedded_backend(&self) -> Option<&EmbeddedBackend> {
        match &self.inner {
            Inner::Embedded { backend, .. } => Some(backend),
            Inner::Aws { .. } => None,
        }
    }

    pub fn aws_backend(&self) -> Option<&AwsBackend> {
        match &self.inner {
            Inner::Aws { backend } => Some(backend),
            Inner::Embedded { .. } => None,
        }
    }

    pub async fn items(&self) -> Arc<dyn ItemStore> {
        match &self.inner {
            Inner::Embedded { backend, .. } => backend.items(),
            Inner::Aws { backend } => {
                provision::ensure_table(backend.dynamodb_client(), &self.prefix)
                    .await
                    .expect("provision table");
                backend.items(&self.prefix)
            }
        }
    }

    /// The blob store and its bucket name.
    pub async fn blobs(&self) -> (Arc<dyn BlobStore>, String) {
        let bucket = format!("{}-blobs", self.prefix);
        match &self.inner {
            Inner::Embedded { backend, .. } => (backend.blobs(&bucket), bucket),
            Inner::Aws { backend } => {
                provision::ensure_bucket(backend.s3_client(), &bucket, backend.region())
                    .await
                    .expect("provision bucket");
                (backend.blobs(&bucket), bucket)
            }
        }
    }

    /// Turns versioning on for a bucket of this env; `false` on the embedded backend, whose
    /// file store keeps one version per object.
    pub async fn enable_versioning(&self, bucket: &str) -> bool {
        let Some(aws) = self.aws_backend() else {
            return false;
        };
        aws.s3_client()
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .expect("enable bucket versioning");
        true
    }

    /// The version ids of `key` in a versioned bucket of this env, oldest first (empty on the
    /// embedded backend).
    pub async fn version_ids(&self, bucket: &str, key: &str) -> Vec<String> {
        let Some(aws) = self.aws_backend() else {
            return Vec::new();
        };
        let listed = aws
            .s3_client()
            .list_object_versions()
            .bucket(bucket)
            .prefix(key)
            .send()
            .await
            .expect("list object versions");
        // S3 lists the newest first.
        let mut ids: Vec<(bool, String)> = listed
            .versions()
            .iter()
            .filter(|v| v.key() == Some(key))
            .map(|v| {
                (
                    v.is_latest().unwrap_or(false),
                    v.version_id().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        ids.sort();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// A queue `<prefix>-<name>` whose messages go to `<prefix>-<name>-dlq` once received
    /// `max_receives` times.
    pub async fn queue(
        &self,
        name: &str,
        visibility_timeout: Duration,
        max_receives: u32,
    ) -> QueuePair {
        let name = format!("{}-{name}", self.prefix);
        match &self.inner {
            Inner::Embedded { backend, .. } => {
                let settings = QueueSettings {
                    visibility_timeout,
                    max_receives,
                };
                QueuePair {
                    queue: backend.queue(&name, settings),
                    dead_letters: backend.queue(&format!("{name}-dlq"), QueueSettings::default()),
                }
            }
            Inner::Aws { backend } => {
                let (url, dlq_url) = provision::ensure_queue(
                    backend.sqs_client(),
                    &name,
                    visibility_timeout,
                    max_receives,
                )
                .await
                .expect("provision queue");
                QueuePair {
                    queue: backend.queue(&url),
                    dead_letters: backend.queue(&dlq_url),
                }
            }
        }
    }

    pub async fn keys(&self) -> Arc<dyn Keys> {
        match &self.inner {
            Inner::Embedded { backend, .. } => backend.keys(),
            Inner::Aws { backend } => {
                let kms = backend.kms_client();
                let data = format!("alias/{}-data", self.prefix);
                let mac = format!("alias/{}-mac", self.prefix);
                let data = provision::ensure_kms_key(kms, &data, KmsKeyKind::DataKeys)
                    .await
                    .expect("provision data key");
                let mac = provision::ensure_kms_key(kms, &mac, KmsKeyKind::Mac)
                    .await
                    .expect("provision mac key");
                backend.keys(&data, &mac)
            }
        }
    }

    /// The mailer and a sender address it accepts.
    pub async fn mailer(&self) -> (Arc<dyn Mailer>, String) {
        let from = format!("no-reply@{}.example.jp", self.prefix);
        match &self.inner {
            Inner::Embedded { backend, .. } => (backend.mailer(), from),
            Inner::Aws { backend } => {
                provision::ensure_email_identity(backend.ses_client(), &from)
                    .await
                    .expect("provision mail identity");
                (backend.mailer(), from)
            }
        }
    }
}

/// Generates `mod embedded` and `mod aws`, each with one `#[tokio::test]` per named generic
/// test `async fn name(env: Env)` of the calling file. Each test has a time limit.
#[macro_export]
macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let env = $crate::Env::embedded().await;
                    $crate::with_time_limit(super::$name(env)).await;
                }
            )*
        }
        mod aws {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let env = $crate::Env::aws().await;
                    $crate::with_time_limit(super::$name(env)).await;
                }
            )*
        }
    };
}

/// Fails a test that takes longer than two minutes instead of hanging the suite.
pub async fn with_time_limit<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(Duration::from_secs(120), test)
        .await
        .expect("contract test took longer than 120 s");
}

/// The AWS endpoint for this test binary: `MADOGUCHI_TEST_AWS_ENDPOINT`, or a moto server
/// started once. Panics with the reason when there is none.
pub fn aws_endpoint() -> String {
    static ENDPOINT: OnceLock<Result<String, String>> = OnceLock::new();
    let result = ENDPOINT.get_or_init(|| match std::env::var(ENDPOINT_VAR) {
        Ok(e) if !e.trim().is_empty() => Ok(e.trim().trim_end_matches('/').to_owned()),
        _ => start_moto(),
    });
    match result {
        Ok(endpoint) => endpoint.clone(),
        Err(why) => panic!(
            "no AWS-compatible endpoint for the contract tests: {why}\n\
             Create the venv with `python3 -m venv .venv && .venv/bin/pip install -r \
             requirements-dev.txt` in the workspace root, or set {ENDPOINT_VAR} to a running \
             moto server."
        ),
    }
}

/// The workspace root (this crate's parent directory).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Keeps moto's wrapper process and the pipe whose closing (at process exit) stops it.
static MOTO: Mutex<Option<Child>> = Mutex::new(None);

fn start_moto() -> Result<String, String> {
    let server = std::env::var_os(MOTO_SERVER_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/moto_server"));
    if !server.is_file() {
        return Err(format!("{} does not exist", server.display()));
    }
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free loopback port: {e}"))?
        .port();
    let log_path = std::env::temp_dir().join(format!("madoguchi-moto-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    // The shell runs moto in the background and waits for it; a second background job
    // waits for our stdin to close (this process exited, however it exited) and then stops
    // moto. So no server outlives the test binary.
    // (A background job's stdin is /dev/null unless redirected, hence fd 3.)
    let script = r#"
        exec 3<&0
        "$0" -H 127.0.0.1 -p "$1" </dev/null &
        moto=$!
        ( cat <&3 >/dev/null; kill "$moto" 2>/dev/null ) &
        exec 3<&-
        wait "$moto"
    "#;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(&server)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", server.display()))?;
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "{} exited ({status}) before answering; see {}",
                server.display(),
                log_path.display()
            ));
        }
        if answers(port) {
            break;
        }
        if started.elapsed() > MOTO_START_TIMEOUT {
            let _ = child.kill();
            return Err(format!(
                "{} did not answer on 127.0.0.1:{port} within {:?}; see {}",
                server.display(),
                MOTO_START_TIMEOUT,
                log_path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    *MOTO.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
    Ok(format!("http://127.0.0.1:{port}"))
}

/// True once something on the port answers an HTTP request.
fn answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 8];
    matches!(stream.read_exact(&mut head), Ok(())) && head.starts_with(b"HTTP/1.")
}
