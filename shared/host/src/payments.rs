//! Card payments on the local host: the **sandbox gateway** (no real money moves; every
//! object it makes says `sandbox: true`) behind the same port the Stripe adapter serves,
//! its signed webhooks posted to our own webhook endpoint over HTTP (so the production
//! verification path runs), and the pages that stand in for the gateway's browser library
//! (3-D Secure, saving a card).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use madoguchi_domain::tenant::TenantId;
use madoguchi_payment_gateway::{
    GatewayCredentials, SandboxGateway, Secret, StaticAccounts, WebhookSink,
};
use madoguchi_payment_ledger::Payments;
use rand::RngCore;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

/// The environment name written in the sandbox's payment metadata.
pub const ENVIRONMENT: &str = "embedded";

/// Sandbox credentials for the host's tenant, made fresh at each start (they are only
/// shared between the sandbox and our webhook endpoint inside this process).
pub fn sandbox_accounts(tenant: TenantId) -> Arc<StaticAccounts> {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Arc::new(StaticAccounts::new().with(
        tenant,
        GatewayCredentials {
            secret_key: Secret::new(format!("sk_sandbox_{}", hex::encode(bytes))),
            webhook_secret: Secret::new(format!("whsec_sandbox_{}", hex::encode(&bytes[..12]))),
        },
    ))
}

/// Posts the sandbox's webhooks to `POST {base}/v1/tenants/{tenant}/payments/webhook`.
/// `drop_next` loses the next deliveries on purpose (a lost webhook, for trying
/// reconciliation: `POST /_sandbox/payments/webhooks/drop-next`).
pub struct HttpWebhookSink {
    client: reqwest::Client,
    base_url: String,
    drop_next: AtomicUsize,
}

impl HttpWebhookSink {
    pub fn new(base_url: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("http client"),
            base_url: base_url.trim_end_matches('/').to_owned(),
            drop_next: AtomicUsize::new(0),
        }
    }

    /// The next `n` webhooks are lost.
    pub fn drop_next(&self, n: usize) {
        self.drop_next.store(n, Ordering::SeqCst);
    }
}

#[async_trait]
impl WebhookSink for HttpWebhookSink {
    async fn deliver(
        &self,
        tenant: &TenantId,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), String> {
        if self
            .drop_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            tracing::warn!("sandbox: webhook dropped on purpose");
            return Ok(());
        }
        let url = format!(
            "{}/v1/tenants/{}/payments/webhook",
            self.base_url,
            tenant.as_str()
        );
        let mut request = self.client.post(url).body(body.to_vec());
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_bytes());
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("webhook answered {}", response.status()))
        }
    }
}

#[derive(Debug, Deserialize)]
struct Outcome {
    /// `succeed` or `fail`.
    result: String,
}

#[derive(Debug, Deserialize)]
struct DropNext {
    count: usize,
}

#[derive(Clone)]
struct SandboxPages {
    gateway: Arc<SandboxGateway>,
    sink: Arc<HttpWebhookSink>,
}

#[derive(Debug, Deserialize)]
struct SetupForm {
    /// A sandbox test token (`pm_card_visa`, …).
    token: String,
}

/// The sandbox's stand-ins for the gateway's own pages, and its fault switch.
pub fn sandbox_routes(gateway: Arc<SandboxGateway>, sink: Arc<HttpWebhookSink>) -> Router {
    Router::new()
        .route("/_sandbox/payments/webhooks/drop-next", post(drop_next))
        .route(
            "/_sandbox/payments/3ds/{tenant}/{intent}",
            get(three_ds_page).post(three_ds_finish),
        )
        .route(
            "/_sandbox/payments/setup/{tenant}/{seti}",
            post(confirm_setup),
        )
        .with_state(SandboxPages { gateway, sink })
}

async fn drop_next(
    State(pages): State<SandboxPages>,
    axum::Json(body): axum::Json<DropNext>,
) -> Response {
    pages.sink.drop_next(body.count.min(100));
    axum::Json(serde_json::json!({ "sandbox": true, "dropping": body.count.min(100) }))
        .into_response()
}

fn tenant_of(s: &str) -> Option<TenantId> {
    TenantId::parse(s).ok()
}

/// Ids in the page are the sandbox's own (`sbx_…`); anything else is refused.
fn plain_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

async fn three_ds_page(Path((tenant, intent)): Path<(String, String)>) -> Response {
    if tenant_of(&tenant).is_none() || !plain_id(&intent) {
        return StatusCode::NOT_FOUND.into_response();
    }
    Html(format!(
        "<!doctype html><html lang=\"ja\"><meta charset=\"utf-8\">\
         <title>3-Dセキュア（サンドボックス）</title>\
         <h1>3-Dセキュア認証（サンドボックス）</h1>\
         <p>これはテスト用のサンドボックスです。実際のお金は動きません。</p>\
         <form method=\"post\" action=\"/_sandbox/payments/3ds/{tenant}/{intent}?result=succeed\">\
         <button>認証する</button></form>\
         <form method=\"post\" action=\"/_sandbox/payments/3ds/{tenant}/{intent}?result=fail\">\
         <button>認証に失敗する</button></form></html>"
    ))
    .into_response()
}

async fn three_ds_finish(
    State(pages): State<SandboxPages>,
    Path((tenant, intent)): Path<(String, String)>,
    Query(outcome): Query<Outcome>,
) -> Response {
    let Some(tenant) = tenant_of(&tenant) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let succeed = match outcome.result.as_str() {
        "succeed" => true,
        "fail" => false,
        _ => return StatusCode::BAD_REQUEST.into_response(),
    };
    match pages.gateway.complete_3ds(&tenant, &intent, succeed).await {
        Ok(status) => axum::Json(serde_json::json!({
            "sandbox": true,
            "status": status.as_str(),
        }))
        .into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({ "sandbox": true, "error": e.kind() })),
        )
            .into_response(),
    }
}

async fn confirm_setup(
    State(pages): State<SandboxPages>,
    Path((tenant, seti)): Path<(String, String)>,
    axum::Json(form): axum::Json<SetupForm>,
) -> Response {
    let Some(tenant) = tenant_of(&tenant) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match pages
        .gateway
        .confirm_setup_intent(&tenant, &seti, &form.token)
        .await
    {
        Ok(s) => axum::Json(serde_json::json!({
            "sandbox": true,
            "status": s.status.as_str(),
            "payment_method": s.payment_method,
        }))
        .into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({ "sandbox": true, "error": e.kind(), "code": e.code() })),
        )
            .into_response(),
    }
}

/// The schedule of `payment-events` (EventBridge in AWS): time-outs and reconciliation.
pub async fn payment_schedule(
    payments: Payments,
    tenant: TenantId,
    every: Duration,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let report = payments.reconcile(&tenant).await;
        if report.errors > 0 {
            tracing::warn!(
                ?report,
                "payment reconciliation had errors; the next run continues"
            );
        }
    }
}
