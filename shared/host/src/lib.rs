//! The local host (`madoguchi serve`): one process that runs every function the way Lambda
//! would, over either adapter set.
//!
//! - HTTP: every function's axum router merged into one server, plus `/healthz`,
//!   `/openapi.json`, the development issuer's JWKS and (embedded) presigned blob URLs.
//! - Queues: each event function's consumer, with Lambda's SQS batch contract
//!   ([`consumers`]).
//! - Inbox: files dropped into `DATA_DIR/inbox/<system>/` become S3-style object-created
//!   events ([`inbox`]).
//! - Shutdown on SIGINT/SIGTERM: stop accepting requests, let in-flight requests and
//!   batches finish, then exit.

pub mod blobs_http;
pub mod consumers;
pub mod inbox;
pub mod payments;
pub mod s3_event;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::routing::get;
use madoguchi_domain::tenant::TenantId;
use madoguchi_embedded::{EmbeddedBackend, QueueSettings};
use madoguchi_fieldcrypt::{CachePolicy, FieldCipher};
use madoguchi_http::{Authenticator, DevIssuer};
use madoguchi_ports::{
    BlobStore, Clock, ItemStore, Keys, Mailer, MalwareScanner, Queue, RedeliveryPolicy,
    SystemClock, UuidV7Gen,
};
use tokio_util::sync::CancellationToken;

/// Names shared by both backends so the same data lands in the same places.
pub mod names {
    pub const LINKAGE_BUCKET: &str = "linkage";
    pub const LINKAGE_INBOUND_QUEUE: &str = "linkage-inbound";
    pub const LINKAGE_OUTBOUND_QUEUE: &str = "linkage-outbound";
    /// Citizens' uploads (quarantine prefix) and their check queue.
    pub const ATTACHMENTS_BUCKET: &str = "attachments";
    pub const ATTACHMENTS_QUEUE: &str = "attachments";
    /// Notices to applicants.
    pub const NOTIFY_QUEUE: &str = "notify";
    /// Verified gateway webhooks for `payment-events`.
    pub const PAYMENT_EVENTS_QUEUE: &str = "payment-events";
    /// CSV exports (short-lived) and the audit log's copy (S3 Object Lock in AWS).
    pub const EXPORTS_BUCKET: &str = "exports";
    pub const AUDIT_BUCKET: &str = "audit";
    /// JPKI CRLs mirrored for the verifier (`blob:<key>` CRL locations).
    pub const TRUST_BUCKET: &str = "trust";
    /// Sender of local mail (the outbox) and of mail through moto's SES.
    pub const LOCAL_MAIL_FROM: &str = "no-reply@madoguchi.invalid";
    /// Receives before a message goes to the dead-letter queue (same as the CDK redrive policy).
    pub const MAX_RECEIVES: u32 = 5;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    Embedded,
    Aws,
}

#[derive(Debug, Clone)]
pub struct HostConfig {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub backend: BackendKind,
    /// AWS endpoint override (moto on loopback); with it, missing resources are created.
    pub endpoint: Option<String>,
    pub tenant: TenantId,
    /// Base URL clients reach this host at (for presigned URLs); defaults to `http://{addr}`.
    pub public_url: Option<String>,
    pub inbox_interval: Duration,
    /// How often the outbound linkage runs without a nudge (the schedule).
    pub outbound_interval: Duration,
    /// How often payments are reconciled and time-outs cancelled (the schedule).
    pub payments_interval: Duration,
    /// Name prefix of the resources created on a local AWS endpoint.
    pub aws_prefix: String,
}

/// The ports, wired for one backend.
pub struct Wiring {
    pub items: Arc<dyn ItemStore>,
    pub linkage: Arc<dyn BlobStore>,
    pub inbound_queue: Arc<dyn Queue>,
    pub inbound_queue_arn: String,
    /// Nudges for `linkage-outbound` (staff status changes).
    pub outbound_queue: Arc<dyn Queue>,
    /// Where outbound files go, and under which prefix: `DATA_DIR/outbox` embedded, the
    /// linkage bucket's `outbound/` in AWS.
    pub outbox: Arc<dyn BlobStore>,
    pub outbox_prefix: String,
    pub attachments: Arc<dyn BlobStore>,
    pub attachments_queue: Arc<dyn Queue>,
    pub notify_queue: Arc<dyn Queue>,
    pub exports: Arc<dyn BlobStore>,
    /// Where every audit record is also written (the Object Lock bucket in AWS).
    pub audit_mirror: Option<Arc<dyn BlobStore>>,
    pub keys: Arc<dyn Keys>,
    /// Field encryption over `keys`, with one data-key cache for the whole process.
    pub cipher: Arc<FieldCipher>,
    pub mailer: Arc<dyn Mailer>,
    pub scanner: Arc<dyn MalwareScanner>,
    pub mail_from: String,
    pub clock: Arc<dyn Clock>,
    pub embedded: Option<EmbeddedBackend>,
    /// Consumer long-poll wait.
    pub wait: Duration,
    /// JPKI trust for e-signatures and card login (from the `MADOGUCHI_JPKI_*` environment).
    pub esign_trust: Arc<madoguchi_esign::Trust>,
    /// Base URL clients reach the API at.
    pub public_url: String,
    /// Pre-application entry lifetime and QR validity (`MADOGUCHI_QR_*`).
    pub qr_settings: madoguchi_qr::QrSettings,
    /// Verified gateway webhooks, consumed by `payment-events`.
    pub payment_events_queue: Arc<dyn Queue>,
    /// The sandbox gateway (no real money) and its credentials.
    pub sandbox: Arc<madoguchi_payment_gateway::SandboxGateway>,
    /// Where the sandbox posts its webhooks (our own endpoint), with its fault switch.
    pub webhook_sink: Arc<payments::HttpWebhookSink>,
    pub payment_accounts: Arc<dyn madoguchi_payment_gateway::GatewayAccounts>,
    /// The payment flows over the sandbox.
    pub payments: madoguchi_payment_ledger::Payments,
    /// How long a payment at submission may stay unpaid (`MADOGUCHI_PAYMENT_PENDING_MINUTES`).
    pub payment_pending: jiff::SignedDuration,
}

fn payment_pending() -> anyhow::Result<jiff::SignedDuration> {
    madoguchi_payment_ledger::pending_timeout_from(
        std::env::var(madoguchi_payment_ledger::PENDING_MINUTES_ENV)
            .ok()
            .as_deref(),
    )
    .map_err(anyhow::Error::msg)
}

type PaymentWiring = (
    Arc<madoguchi_payment_gateway::SandboxGateway>,
    Arc<payments::HttpWebhookSink>,
    Arc<dyn madoguchi_payment_gateway::GatewayAccounts>,
    madoguchi_payment_ledger::Payments,
);

/// The payment side of the wiring, the same for both backends: the host always pays into
/// the sandbox gateway, whose objects live in the item store.
fn payment_wiring(
    config: &HostConfig,
    items: &Arc<dyn ItemStore>,
    notify: &Arc<dyn Queue>,
    clock: &Arc<dyn Clock>,
    public_url: &str,
) -> anyhow::Result<PaymentWiring> {
    let accounts: Arc<dyn madoguchi_payment_gateway::GatewayAccounts> =
        payments::sandbox_accounts(config.tenant);
    let sink = Arc::new(payments::HttpWebhookSink::new(public_url));
    let sandbox = Arc::new(madoguchi_payment_gateway::SandboxGateway::new(
        items.clone(),
        clock.clone(),
        accounts.clone(),
        sink.clone(),
        public_url,
    ));
    let flows = madoguchi_payment_ledger::Payments {
        items: items.clone(),
        gateway: sandbox.clone(),
        notify: notify.clone(),
        clock: clock.clone(),
        settings: Arc::new(madoguchi_payment_ledger::PaymentSettings {
            environment: payments::ENVIRONMENT.to_owned(),
            return_url: None,
        }),
    };
    Ok((sandbox, sink, accounts, flows))
}

async fn esign_trust(blobs: Arc<dyn BlobStore>) -> anyhow::Result<Arc<madoguchi_esign::Trust>> {
    madoguchi_esign::Trust::from_env(Some(blobs))
        .await
        .map(Arc::new)
        .map_err(anyhow::Error::msg)
        .context("reading the JPKI trust configuration")
}

fn qr_settings() -> anyhow::Result<madoguchi_qr::QrSettings> {
    madoguchi_qr::QrSettings::from_env()
        .map_err(anyhow::Error::msg)
        .context("reading MADOGUCHI_QR_*")
}

pub async fn wire(config: &HostConfig, public_url: &str) -> anyhow::Result<Wiring> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match config.backend {
        BackendKind::Embedded => {
            let backend = EmbeddedBackend::open(&config.data_dir, public_url, clock.clone())
                .context("opening the data directory")?;
            let keys: Arc<dyn Keys> = backend.keys();
            let settings = QueueSettings {
                visibility_timeout: Duration::from_secs(60),
                max_receives: names::MAX_RECEIVES,
            };
            let items: Arc<dyn ItemStore> = backend.items();
            let notify_queue: Arc<dyn Queue> = backend.queue(names::NOTIFY_QUEUE, settings);
            let (sandbox, webhook_sink, payment_accounts, payments) =
                payment_wiring(config, &items, &notify_queue, &clock, public_url)?;
            Ok(Wiring {
                payment_events_queue: backend.queue(names::PAYMENT_EVENTS_QUEUE, settings),
                sandbox,
                webhook_sink,
                payment_accounts,
                payments,
                payment_pending: payment_pending()?,
                items,
                linkage: backend.blobs(names::LINKAGE_BUCKET),
                inbound_queue: backend.queue(names::LINKAGE_INBOUND_QUEUE, settings),
                inbound_queue_arn: format!("arn:madoguchi:local:{}", names::LINKAGE_INBOUND_QUEUE),
                outbound_queue: backend.queue(names::LINKAGE_OUTBOUND_QUEUE, settings),
                outbox: backend.outbox(),
                outbox_prefix: String::new(),
                attachments: backend.blobs(names::ATTACHMENTS_BUCKET),
                attachments_queue: backend.queue(names::ATTACHMENTS_QUEUE, settings),
                notify_queue,
                exports: backend.blobs(names::EXPORTS_BUCKET),
                audit_mirror: Some(backend.blobs(names::AUDIT_BUCKET)),
                cipher: Arc::new(FieldCipher::new(
                    keys.clone(),
                    clock.clone(),
                    CachePolicy::default(),
                )),
                keys,
                mailer: backend.mailer(),
                scanner: backend.scanner(),
                mail_from: names::LOCAL_MAIL_FROM.to_owned(),
                clock,
                esign_trust: esign_trust(backend.blobs(names::TRUST_BUCKET)).await?,
                public_url: public_url.to_owned(),
                qr_settings: qr_settings()?,
                embedded: Some(backend),
                wait: Duration::from_millis(500),
            })
        }
        BackendKind::Aws => aws_wiring(config, clock, public_url).await,
    }
}

async fn aws_wiring(
    config: &HostConfig,
    clock: Arc<dyn Clock>,
    public_url: &str,
) -> anyhow::Result<Wiring> {
    use madoguchi_aws::{AwsBackend, resources::AwsResources};
    let backend = match &config.endpoint {
        // A local endpoint never gets real credentials from a developer's profile.
        Some(endpoint) => AwsBackend::local(endpoint, clock.clone()).await,
        None => AwsBackend::from_env(None, clock.clone()).await,
    };
    let resources = match &config.endpoint {
        // A local endpoint (moto): make sure the resources exist, as CDK would have.
        Some(_) => {
            let spec = madoguchi_aws::provision::ProvisionSpec::named(&config.aws_prefix)
                .bucket(names::LINKAGE_BUCKET)
                .bucket(names::ATTACHMENTS_BUCKET)
                .bucket(names::EXPORTS_BUCKET)
                .bucket(names::AUDIT_BUCKET)
                .bucket(names::TRUST_BUCKET)
                .queue(
                    names::LINKAGE_INBOUND_QUEUE,
                    Duration::from_secs(60),
                    names::MAX_RECEIVES,
                )
                .queue(
                    names::LINKAGE_OUTBOUND_QUEUE,
                    Duration::from_secs(60),
                    names::MAX_RECEIVES,
                )
                .queue(
                    names::ATTACHMENTS_QUEUE,
                    Duration::from_secs(60),
                    names::MAX_RECEIVES,
                )
                .queue(
                    names::NOTIFY_QUEUE,
                    Duration::from_secs(60),
                    names::MAX_RECEIVES,
                )
                .queue(
                    names::PAYMENT_EVENTS_QUEUE,
                    Duration::from_secs(60),
                    names::MAX_RECEIVES,
                )
                .notify(
                    names::ATTACHMENTS_BUCKET,
                    madoguchi_applications::keys::QUARANTINE_PREFIX,
                    names::ATTACHMENTS_QUEUE,
                )
                .mail_from(names::LOCAL_MAIL_FROM);
            madoguchi_aws::provision::provision(&backend, &spec)
                .await
                .context("provisioning resources on the local endpoint")?
        }
        None => AwsResources::from_env().context("reading resource names from the environment")?,
    };
    let queue = resources
        .queue_url(names::LINKAGE_INBOUND_QUEUE)
        .context("no linkage-inbound queue configured")?
        .to_owned();
    let bucket = resources
        .bucket(names::LINKAGE_BUCKET)
        .context("no linkage bucket configured")?
        .to_owned();
    let attachments = resources.bucket(names::ATTACHMENTS_BUCKET)?;
    let keys: Arc<dyn Keys> = backend.keys(resources.data_key_id()?, resources.mac_key_id()?);
    let items: Arc<dyn ItemStore> = backend.items(&resources.table);
    let notify_queue: Arc<dyn Queue> = backend.queue(resources.queue_url(names::NOTIFY_QUEUE)?);
    let (sandbox, webhook_sink, payment_accounts, payments) =
        payment_wiring(config, &items, &notify_queue, &clock, public_url)?;
    Ok(Wiring {
        payment_events_queue: backend.queue(resources.queue_url(names::PAYMENT_EVENTS_QUEUE)?),
        sandbox,
        webhook_sink,
        payment_accounts,
        payments,
        payment_pending: payment_pending()?,
        items,
        linkage: backend.blobs(&bucket),
        inbound_queue: backend.queue(&queue),
        inbound_queue_arn: format!(
            "arn:aws:sqs:local:000000000000:{}",
            names::LINKAGE_INBOUND_QUEUE
        ),
        outbound_queue: backend.queue(resources.queue_url(names::LINKAGE_OUTBOUND_QUEUE)?),
        outbox: backend.blobs(&bucket),
        outbox_prefix: "outbound/".to_owned(),
        attachments: backend.blobs(attachments),
        attachments_queue: backend.queue(resources.queue_url(names::ATTACHMENTS_QUEUE)?),
        notify_queue,
        exports: backend.blobs(resources.bucket(names::EXPORTS_BUCKET)?),
        audit_mirror: Some(backend.blobs(resources.bucket(names::AUDIT_BUCKET)?)),
        cipher: Arc::new(FieldCipher::new(
            keys.clone(),
            clock.clone(),
            CachePolicy::default(),
        )),
        keys,
        mailer: backend.mailer(),
        scanner: backend.scanner(attachments),
        mail_from: resources.mail_from()?.to_owned(),
        clock,
        esign_trust: esign_trust(backend.blobs(resources.bucket(names::TRUST_BUCKET)?)).await?,
        public_url: public_url.to_owned(),
        qr_settings: qr_settings()?,
        embedded: None,
        wait: Duration::from_secs(1),
    })
}

/// The merged OpenAPI document of every HTTP function.
pub fn openapi() -> utoipa::openapi::OpenApi {
    madoguchi_http::openapi::merged([
        madoguchi_forms::openapi(),
        madoguchi_submissions::openapi(),
        madoguchi_staff::openapi(),
        madoguchi_esign::openapi(),
        madoguchi_navigator::openapi(),
        madoguchi_qr::openapi(),
        madoguchi_payments::openapi(),
    ])
}

/// Every HTTP function's router, merged, with the host's own routes.
/// The audit log of this host (one per process, like the field cipher).
pub fn audit_log(wiring: &Wiring) -> madoguchi_audit::AuditLog {
    let log = madoguchi_audit::AuditLog::new(wiring.items.clone(), wiring.clock.clone());
    match &wiring.audit_mirror {
        Some(m) => log.with_mirror(m.clone()),
        None => log,
    }
}

pub fn router(wiring: &Wiring, auth: Arc<Authenticator>, dev: Option<&DevIssuer>) -> Router {
    let audit = audit_log(wiring);
    let forms = madoguchi_forms::router(madoguchi_forms::FormsState {
        items: wiring.items.clone(),
        auth: auth.clone(),
        clock: wiring.clock.clone(),
        audit: audit.clone(),
    });
    let navigator = madoguchi_navigator::router(madoguchi_navigator::NavigatorState {
        items: wiring.items.clone(),
        audit: audit.clone(),
        auth: auth.clone(),
        clock: wiring.clock.clone(),
        ids: Arc::new(UuidV7Gen),
    });
    let qr = madoguchi_qr::router(madoguchi_qr::QrState::new(
        wiring.items.clone(),
        wiring.keys.clone(),
        wiring.cipher.clone(),
        audit.clone(),
        auth.clone(),
        wiring.clock.clone(),
        Arc::new(UuidV7Gen),
        wiring.qr_settings,
    ));
    let staff = madoguchi_staff::router(madoguchi_staff::StaffState {
        items: wiring.items.clone(),
        attachments: wiring.attachments.clone(),
        exports: wiring.exports.clone(),
        notify: wiring.notify_queue.clone(),
        outbound: wiring.outbound_queue.clone(),
        residents: madoguchi_residents::ResidentStore::new(
            wiring.items.clone(),
            (*wiring.cipher).clone(),
        ),
        cipher: wiring.cipher.clone(),
        audit,
        audit_mirror: wiring.audit_mirror.clone(),
        auth: auth.clone(),
        clock: wiring.clock.clone(),
        ids: Arc::new(UuidV7Gen),
        settings: Arc::new(madoguchi_staff::Settings::default()),
    });
    let submissions = madoguchi_submissions::router(madoguchi_submissions::SubmissionsState {
        items: wiring.items.clone(),
        uploads: wiring.attachments.clone(),
        notify: wiring.notify_queue.clone(),
        mailer: wiring.mailer.clone(),
        cipher: wiring.cipher.clone(),
        auth: auth.clone(),
        clock: wiring.clock.clone(),
        ids: Arc::new(UuidV7Gen),
        settings: Arc::new(madoguchi_submissions::Settings {
            mail_from: wiring.mail_from.clone(),
            api_base_url: wiring.public_url.clone(),
            payment_pending: wiring.payment_pending,
            ..Default::default()
        }),
    });
    let esign = madoguchi_esign::router(madoguchi_esign::EsignState {
        items: wiring.items.clone(),
        auth: auth.clone(),
        tokens: Arc::new(madoguchi_cardlogin::CardTokens::new(
            wiring.items.clone(),
            wiring.keys.clone(),
            wiring.clock.clone(),
        )),
        trust: wiring.esign_trust.clone(),
        clock: wiring.clock.clone(),
        ids: Arc::new(UuidV7Gen),
        settings: Arc::new(madoguchi_esign::Settings {
            api_base_url: wiring.public_url.clone(),
            ..Default::default()
        }),
    });
    let payments = madoguchi_payments::router(madoguchi_payments::PaymentsState {
        items: wiring.items.clone(),
        payments: wiring.payments.clone(),
        accounts: wiring.payment_accounts.clone(),
        events: wiring.payment_events_queue.clone(),
        audit: audit_log(wiring),
        auth: auth.clone(),
        clock: wiring.clock.clone(),
        ids: Arc::new(UuidV7Gen),
    });
    let doc = Arc::new(openapi());
    let mut app = Router::new()
        .merge(forms)
        .merge(submissions)
        .merge(staff)
        .merge(esign)
        .merge(navigator)
        .merge(qr)
        .merge(payments)
        .merge(payments::sandbox_routes(
            wiring.sandbox.clone(),
            wiring.webhook_sink.clone(),
        ))
        .merge(madoguchi_http::ops_routes())
        .route(
            "/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        );
    if let Some(dev) = dev {
        let jwks = dev.jwks();
        app = app.route(
            "/.well-known/jwks.json",
            get(move || {
                let jwks = jwks.clone();
                async move { axum::Json(jwks) }
            }),
        );
    }
    if let Some(embedded) = &wiring.embedded {
        // Uploads to the attachments bucket notify its check queue, as the S3 bucket
        // notification does in AWS.
        let notifier = blobs_http::QueueNotifier::new()
            .bucket(names::ATTACHMENTS_BUCKET, wiring.attachments_queue.clone());
        app = app.merge(blobs_http::routes_with_notifier(
            embedded.clone(),
            Some(Arc::new(notifier)),
        ));
    }
    madoguchi_http::common_layers(app)
}

/// The ARN a local consumer's events carry (the handlers do not read it).
fn local_arn(queue: &str) -> String {
    format!("arn:madoguchi:local:{queue}")
}

pub fn keys_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("keys")
}

/// Runs the host until `stop` is cancelled (or a signal arrives, see `main`).
pub async fn serve(config: HostConfig, stop: CancellationToken) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir).context("creating the data directory")?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("binding {}", config.addr))?;
    let bound = listener.local_addr()?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{bound}"));
    let wiring = wire(&config, &public_url).await?;
    let dev = DevIssuer::load_or_create(&keys_dir(&config.data_dir))
        .context("loading the development issuer key")?;
    let mut issuers = madoguchi_http::auth::issuers_from_env().map_err(anyhow::Error::msg)?;
    issuers.push(dev.trusted());
    issuers.push(madoguchi_cardlogin::trusted_issuer(wiring.items.clone()));
    let auth = Authenticator::shared(issuers);
    let app = router(&wiring, auth, Some(&dev));

    let mut tasks = tokio::task::JoinSet::new();
    // Each event function's handler behind its queue, as Lambda's event source mappings do.
    let mut consume = |name: &str, queue: Arc<dyn Queue>, handler: consumers::LambdaSqsHandler| {
        tasks.spawn(consumers::run_consumer(
            name.to_owned(),
            queue,
            Arc::new(handler),
            RedeliveryPolicy::default(),
            wiring.wait,
            stop.clone(),
        ));
    };
    let inbound = madoguchi_linkage_inbound::InboundState::new(
        wiring.items.clone(),
        wiring.linkage.clone(),
        (*wiring.cipher).clone(),
        wiring.clock.clone(),
        config.tenant,
    );
    consume(
        names::LINKAGE_INBOUND_QUEUE,
        wiring.inbound_queue.clone(),
        consumers::LambdaSqsHandler::new(&wiring.inbound_queue_arn, move |event| {
            let state = inbound.clone();
            async move { madoguchi_linkage_inbound::handle(&state, event).await }
        }),
    );
    let attachments = madoguchi_attachments::AttachmentsState {
        items: wiring.items.clone(),
        blobs: wiring.attachments.clone(),
        scanner: wiring.scanner.clone(),
        clock: wiring.clock.clone(),
    };
    consume(
        names::ATTACHMENTS_QUEUE,
        wiring.attachments_queue.clone(),
        consumers::LambdaSqsHandler::new(&local_arn(names::ATTACHMENTS_QUEUE), move |event| {
            let state = attachments.clone();
            async move { madoguchi_attachments::handle(&state, event).await }
        }),
    );
    let notify = madoguchi_notify::NotifyState {
        items: wiring.items.clone(),
        mailer: wiring.mailer.clone(),
        clock: wiring.clock.clone(),
        mail_from: wiring.mail_from.clone(),
    };
    consume(
        names::NOTIFY_QUEUE,
        wiring.notify_queue.clone(),
        consumers::LambdaSqsHandler::new(&local_arn(names::NOTIFY_QUEUE), move |event| {
            let state = notify.clone();
            async move { madoguchi_notify::handle(&state, event).await }
        }),
    );
    let outbound = madoguchi_linkage_outbound::OutboundState::new(
        wiring.items.clone(),
        wiring.linkage.clone(),
        wiring.outbox.clone(),
        &wiring.outbox_prefix,
        (*wiring.cipher).clone(),
        audit_log(&wiring),
        wiring.clock.clone(),
        Arc::new(madoguchi_ports::UuidV7Gen),
        config.tenant,
    );
    let nudged = outbound.clone();
    consume(
        names::LINKAGE_OUTBOUND_QUEUE,
        wiring.outbound_queue.clone(),
        consumers::LambdaSqsHandler::new(&local_arn(names::LINKAGE_OUTBOUND_QUEUE), move |event| {
            let state = nudged.clone();
            async move { madoguchi_linkage_outbound::handle_sqs(&state, event).await }
        }),
    );
    let events = madoguchi_payment_events::EventsState {
        payments: wiring.payments.clone(),
        tenant: config.tenant,
    };
    let scheduled = events.payments.clone();
    consume(
        names::PAYMENT_EVENTS_QUEUE,
        wiring.payment_events_queue.clone(),
        consumers::LambdaSqsHandler::new(&local_arn(names::PAYMENT_EVENTS_QUEUE), move |event| {
            let state = events.clone();
            async move { madoguchi_payment_events::handle_sqs(&state, event).await }
        }),
    );
    // The schedule (EventBridge in AWS): a run now and then, so that a lost nudge or a
    // crashed run only delays a file.
    tasks.spawn(outbound_schedule(
        outbound,
        config.outbound_interval,
        stop.clone(),
    ));
    tasks.spawn(payments::payment_schedule(
        scheduled,
        config.tenant,
        config.payments_interval,
        stop.clone(),
    ));
    let inbox_dir = config.data_dir.join("inbox");
    std::fs::create_dir_all(&inbox_dir)?;
    let inbox = inbox::Inbox {
        dir: inbox_dir,
        bucket_name: names::LINKAGE_BUCKET.to_owned(),
        blobs: wiring.linkage.clone(),
        notify: wiring.inbound_queue.clone(),
        clock: wiring.clock.clone(),
        interval: config.inbox_interval,
    };
    tasks.spawn(inbox.run(stop.clone()));

    tracing::info!(addr = %bound, backend = ?config.backend, "madoguchi is serving");
    let http_stop = stop.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { http_stop.cancelled().await })
        .await
        .context("http server")?;
    // Requests are drained; now let consumers finish the batch they hold.
    stop.cancel();
    while tasks.join_next().await.is_some() {}
    tracing::info!("madoguchi stopped");
    Ok(())
}

async fn outbound_schedule(
    state: madoguchi_linkage_outbound::OutboundState,
    every: Duration,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = madoguchi_linkage_outbound::run(&state).await {
            tracing::warn!(error = %e, "scheduled outbound run failed; the next one continues");
        }
    }
}

/// Cancels `stop` on SIGINT or SIGTERM.
pub fn cancel_on_signals(stop: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("installing the SIGTERM handler");
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested");
        stop.cancel();
    });
}
