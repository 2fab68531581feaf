//! [`StripeGateway`]: the port over Stripe's REST API (`https://api.stripe.com/v1`).
//!
//! - Requests are `application/x-www-form-urlencoded` ([`crate::form`]), authenticated with
//!   `Authorization: Bearer <tenant's secret key>`, and pinned to [`STRIPE_API_VERSION`] with
//!   the `Stripe-Version` header so that a change of the account's default version cannot
//!   change what we parse.
//! - Every POST carries an `Idempotency-Key`: the caller's for creates, confirms and refunds,
//!   a fresh one per call for the others (so that our own retries of that call are safe).
//! - Timeouts, connection errors, 409 `lock_timeout`, 429 and 5xx are retried with
//!   exponential backoff and jitter, with the same idempotency key, at most
//!   [`StripeConfig::max_attempts`] times. A `Stripe-Should-Retry` header overrides that
//!   decision either way.
//! - Nothing logs the secret key, a client secret or a request/response body; logs carry the
//!   method, path template, status, attempt and Stripe's `Request-Id`.
//!
//! PAY.JP's API has the same shape (form-encoded, Bearer/Basic auth, customers, charges,
//! refunds, events); an adapter for it maps the same port.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use madoguchi_domain::tenant::TenantId;
use rand::Rng;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::form::Form;
use crate::port::*;

/// The Stripe API version every request asks for.
pub const STRIPE_API_VERSION: &str = "2024-06-20";

/// Stripe's production endpoint.
pub const STRIPE_BASE_URL: &str = "https://api.stripe.com";

#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// Without a trailing slash; tests point it at a local server.
    pub base_url: String,
    pub api_version: String,
    /// Attempts per call, the first included (≥ 1).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubled each time, capped at `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Whole request (Stripe's own libraries use 80 s; a Lambda behind API Gateway has 30 s
    /// in total, so we stay well below).
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
}

impl Default for StripeConfig {
    fn default() -> Self {
        Self {
            base_url: STRIPE_BASE_URL.to_owned(),
            api_version: STRIPE_API_VERSION.to_owned(),
            max_attempts: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(4),
            request_timeout: Duration::from_secs(8),
            connect_timeout: Duration::from_secs(3),
        }
    }
}

pub struct StripeGateway {
    http: reqwest::Client,
    config: StripeConfig,
    accounts: Arc<dyn GatewayAccounts>,
}

impl std::fmt::Debug for StripeGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeGateway")
            .field("base_url", &self.config.base_url)
            .field("api_version", &self.config.api_version)
            .finish_non_exhaustive()
    }
}

/// Stripe's error body: `{"error": {"type", "code", "decline_code", "message", "param",
/// "payment_intent": {...}}}`.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: StripeErrorObject,
}

#[derive(Debug, Default, Deserialize)]
struct StripeErrorObject {
    #[serde(rename = "type", default)]
    error_type: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    decline_code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    param: Option<String>,
    #[serde(default)]
    payment_intent: Option<serde_json::Value>,
}

impl StripeErrorObject {
    fn payment_intent_id(&self) -> Option<String> {
        match &self.payment_intent {
            Some(serde_json::Value::Object(o)) => {
                o.get("id").and_then(|v| v.as_str()).map(str::to_owned)
            }
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            _ => None,
        }
    }
}

/// Maps an HTTP status and Stripe's error body to the port's error.
fn map_error(status: StatusCode, body: &[u8]) -> GatewayError {
    let e = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.error)
        .unwrap_or_default();
    let message = e
        .message
        .clone()
        .unwrap_or_else(|| format!("HTTP {status}"));
    let code = e.code.as_deref();
    let kind = e.error_type.as_deref();
    if kind == Some("card_error") || status == StatusCode::PAYMENT_REQUIRED {
        if code == Some("authentication_required")
            || e.decline_code.as_deref() == Some("authentication_required")
        {
            return GatewayError::AuthenticationRequired {
                payment_intent: e.payment_intent_id(),
            };
        }
        return GatewayError::CardDeclined {
            code: e.code.clone().unwrap_or_else(|| "card_declined".into()),
            decline_code: e.decline_code.clone(),
            message: e.message.clone(),
            payment_intent: e.payment_intent_id(),
        };
    }
    if kind == Some("idempotency_error") || code == Some("idempotency_key_in_use") {
        return GatewayError::IdempotencyConflict { message };
    }
    match status {
        StatusCode::NOT_FOUND => GatewayError::NotFound { message },
        StatusCode::TOO_MANY_REQUESTS => GatewayError::RateLimited,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => GatewayError::Config(format!(
            "gateway refused the credentials ({})",
            kind.unwrap_or("authentication_error")
        )),
        s if s.is_server_error() => GatewayError::Upstream { status: s.as_u16() },
        _ if code == Some("resource_missing") => GatewayError::NotFound { message },
        _ => GatewayError::InvalidRequest {
            code: e.code,
            param: e.param,
            message,
        },
    }
}

/// Whether Stripe's documented retry cases apply; `Stripe-Should-Retry` wins when present.
fn should_retry(status: StatusCode, should_retry_header: Option<bool>, body: &[u8]) -> bool {
    if let Some(decided) = should_retry_header {
        return decided;
    }
    if status == StatusCode::CONFLICT {
        // A concurrent request on the same object (lock_timeout) or with the same key still
        // running (idempotency_key_in_use) clears by itself; a key reused with other
        // parameters does not.
        let e = serde_json::from_slice::<ErrorBody>(body)
            .map(|b| b.error)
            .unwrap_or_default();
        return matches!(
            e.code.as_deref(),
            Some("lock_timeout") | Some("idempotency_key_in_use")
        );
    }
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

fn path_segment(id: &str) -> GatewayResult<&str> {
    // Ids go into the URL path; anything but Stripe's id alphabet could change the path.
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(GatewayError::InvalidRequest {
            code: Some("invalid_id".into()),
            param: None,
            message: "ids are letters, digits and '_'".into(),
        });
    }
    Ok(id)
}

impl StripeGateway {
    pub fn new(config: StripeConfig, accounts: Arc<dyn GatewayAccounts>) -> GatewayResult<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!(
                "madoguchi-payment-gateway/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| GatewayError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            config,
            accounts,
        })
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .config
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.config.max_backoff);
        // Jitter in [exp/2, exp] spreads retries of many Lambdas hitting the same limit.
        let half = exp / 2;
        let extra =
            rand::thread_rng().gen_range(0..=half.as_micros().min(u128::from(u64::MAX)) as u64);
        half + Duration::from_micros(extra)
    }

    /// One logical call: sends, retries, maps errors, parses the body as `T`.
    async fn call<T: DeserializeOwned>(
        &self,
        tenant: &TenantId,
        method: Method,
        path: &str,
        op: &'static str,
        form: Form,
        key: Option<&str>,
    ) -> GatewayResult<T> {
        let creds = self.accounts.credentials(tenant).await?;
        let body = form.encode();
        // GET parameters go in the query string, from the same encoder (`created[gte]=…`).
        let url = if method == Method::GET && !body.is_empty() {
            format!("{}{}?{}", self.config.base_url, path, body)
        } else {
            format!("{}{}", self.config.base_url, path)
        };
        // A POST without a caller key still gets one, fixed across this call's attempts.
        let key = match (&method, key) {
            (_, Some(k)) => Some(k.to_owned()),
            (&Method::POST, None) => Some(format!("madoguchi-{}", uuid::Uuid::now_v7())),
            _ => None,
        };
        let attempts = self.config.max_attempts.max(1);
        let mut last_err = GatewayError::Timeout;
        for attempt in 1..=attempts {
            let mut req = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(creds.secret_key.expose())
                .header("Stripe-Version", &self.config.api_version);
            if let Some(k) = &key {
                req = req.header("Idempotency-Key", k);
            }
            if method != Method::GET {
                req = req
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(body.clone());
            }
            let result = req.send().await;
            match result {
                Err(e) => {
                    let (err, retry) = if e.is_timeout() {
                        (GatewayError::Timeout, true)
                    } else if e.is_connect() || e.is_request() || e.is_body() {
                        (GatewayError::Transport(e.without_url().to_string()), true)
                    } else {
                        (GatewayError::Transport(e.without_url().to_string()), false)
                    };
                    tracing::warn!(op, tenant = %tenant, attempt, error = err.kind(), "gateway call failed");
                    last_err = err;
                    if !retry {
                        break;
                    }
                }
                Ok(resp) => {
                    let status = resp.status();
                    let request_id = resp
                        .headers()
                        .get("request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let should_retry_header = resp
                        .headers()
                        .get("stripe-should-retry")
                        .and_then(|v| v.to_str().ok())
                        .map(|v| v.eq_ignore_ascii_case("true"));
                    let bytes = match resp.bytes().await {
                        Ok(b) => b,
                        Err(e) => {
                            let err = if e.is_timeout() {
                                GatewayError::Timeout
                            } else {
                                GatewayError::Transport(e.without_url().to_string())
                            };
                            tracing::warn!(op, tenant = %tenant, attempt, %status, error = err.kind(), "gateway body read failed");
                            last_err = err;
                            sleep_before_retry(self, attempt, attempts).await;
                            continue;
                        }
                    };
                    if status.is_success() {
                        tracing::debug!(op, tenant = %tenant, attempt, %status, request_id, "gateway call");
                        return serde_json::from_slice(&bytes).map_err(|e| {
                            GatewayError::Protocol(format!("{op}: unreadable response: {e}"))
                        });
                    }
                    let err = map_error(status, &bytes);
                    let retry = should_retry(status, should_retry_header, &bytes);
                    // Kind and code only: Stripe's messages can echo parameter values.
                    tracing::warn!(op, tenant = %tenant, attempt, %status, request_id, retry, error = err.kind(), code = err.code().unwrap_or(""), "gateway refused");
                    last_err = err;
                    if !retry {
                        break;
                    }
                }
            }
            sleep_before_retry(self, attempt, attempts).await;
        }
        Err(last_err)
    }
}

async fn sleep_before_retry(gw: &StripeGateway, attempt: u32, attempts: u32) {
    if attempt < attempts {
        tokio::time::sleep(gw.backoff(attempt)).await;
    }
}

/// Stripe's list envelope.
#[derive(Deserialize)]
struct StripeList<T> {
    data: Vec<T>,
    #[serde(default)]
    has_more: bool,
}

fn list_form(params: &ListParams) -> Form {
    Form::new()
        .field("limit", params.limit.clamp(1, 100).to_string())
        .opt("created[gte]", params.created_gte.map(|t| t.to_string()))
        .opt("starting_after", params.starting_after.clone())
}

#[async_trait]
impl PaymentGateway for StripeGateway {
    fn is_sandbox(&self) -> bool {
        false
    }

    async fn create_customer(
        &self,
        tenant: &TenantId,
        customer: &NewCustomer,
        key: &IdempotencyKey,
    ) -> GatewayResult<Customer> {
        let form = Form::new()
            .opt("email", customer.email.clone())
            .opt("name", customer.name.clone())
            .map("metadata", &with_tenant(tenant, &customer.metadata));
        self.call(
            tenant,
            Method::POST,
            "/v1/customers",
            "create_customer",
            form,
            Some(key.as_str()),
        )
        .await
    }

    async fn retrieve_customer(
        &self,
        tenant: &TenantId,
        customer: &str,
    ) -> GatewayResult<Customer> {
        let path = format!("/v1/customers/{}", path_segment(customer)?);
        self.call(
            tenant,
            Method::GET,
            &path,
            "retrieve_customer",
            Form::new(),
            None,
        )
        .await
    }

    async fn create_setup_intent(
        &self,
        tenant: &TenantId,
        request: &NewSetupIntent,
        key: &IdempotencyKey,
    ) -> GatewayResult<SetupIntent> {
        let form = Form::new()
            .field("customer", request.customer.clone())
            .field("usage", "off_session")
            .list("payment_method_types", &["card"])
            .map("metadata", &with_tenant(tenant, &request.metadata));
        self.call(
            tenant,
            Method::POST,
            "/v1/setup_intents",
            "create_setup_intent",
            form,
            Some(key.as_str()),
        )
        .await
    }

    async fn list_payment_methods(
        &self,
        tenant: &TenantId,
        customer: &str,
    ) -> GatewayResult<Vec<PaymentMethod>> {
        let path = format!("/v1/customers/{}/payment_methods", path_segment(customer)?);
        let form = Form::new().field("type", "card").field("limit", "100");
        let list: StripeList<PaymentMethod> = self
            .call(
                tenant,
                Method::GET,
                &path,
                "list_payment_methods",
                form,
                None,
            )
            .await?;
        Ok(list.data)
    }

    async fn set_default_payment_method(
        &self,
        tenant: &TenantId,
        customer: &str,
        payment_method: &str,
    ) -> GatewayResult<Customer> {
        let path = format!("/v1/customers/{}", path_segment(customer)?);
        let form = Form::new().field("invoice_settings[default_payment_method]", payment_method);
        self.call(
            tenant,
            Method::POST,
            &path,
            "set_default_payment_method",
            form,
            None,
        )
        .await
    }

    async fn detach_payment_method(
        &self,
        tenant: &TenantId,
        payment_method: &str,
    ) -> GatewayResult<PaymentMethod> {
        let path = format!(
            "/v1/payment_methods/{}/detach",
            path_segment(payment_method)?
        );
        self.call(
            tenant,
            Method::POST,
            &path,
            "detach_payment_method",
            Form::new(),
            None,
        )
        .await
    }

    async fn create_payment_intent(
        &self,
        tenant: &TenantId,
        request: &NewPaymentIntent,
        key: &IdempotencyKey,
    ) -> GatewayResult<PaymentIntent> {
        if request.tags.tenant != *tenant {
            return Err(GatewayError::InvalidRequest {
                code: Some("tenant_mismatch".into()),
                param: Some("metadata[tenant]".into()),
                message: "the payment's tenant tag differs from the calling tenant".into(),
            });
        }
        let mut form = Form::new()
            .field("amount", request.amount.value().to_string())
            .field("currency", CURRENCY_JPY)
            // Cards only: with automatic payment methods, a server-side confirm would need a
            // return_url for redirect-based methods we do not offer.
            .list("payment_method_types", &["card"])
            .opt("customer", request.customer.clone())
            .opt("payment_method", request.payment_method.clone())
            .opt("description", request.description.clone());
        if request.confirm {
            form = form.field("confirm", "true");
            if request.off_session {
                form = form.field("off_session", "true");
            } else {
                form = form.opt("return_url", request.return_url.clone());
            }
        }
        if request.save_payment_method {
            form = form.field("setup_future_usage", "off_session");
        }
        form = form.map("metadata", &request.tags.to_metadata());
        self.call(
            tenant,
            Method::POST,
            "/v1/payment_intents",
            "create_payment_intent",
            form,
            Some(key.as_str()),
        )
        .await
    }

    async fn confirm_payment_intent(
        &self,
        tenant: &TenantId,
        payment_intent: &str,
        payment_method: Option<&str>,
        key: &IdempotencyKey,
    ) -> GatewayResult<PaymentIntent> {
        let path = format!(
            "/v1/payment_intents/{}/confirm",
            path_segment(payment_intent)?
        );
        let form = Form::new().opt("payment_method", payment_method);
        self.call(
            tenant,
            Method::POST,
            &path,
            "confirm_payment_intent",
            form,
            Some(key.as_str()),
        )
        .await
    }

    async fn retrieve_payment_intent(
        &self,
        tenant: &TenantId,
        payment_intent: &str,
    ) -> GatewayResult<PaymentIntent> {
        let path = format!("/v1/payment_intents/{}", path_segment(payment_intent)?);
        self.call(
            tenant,
            Method::GET,
            &path,
            "retrieve_payment_intent",
            Form::new(),
            None,
        )
        .await
    }

    async fn cancel_payment_intent(
        &self,
        tenant: &TenantId,
        payment_intent: &str,
    ) -> GatewayResult<PaymentIntent> {
        let path = format!(
            "/v1/payment_intents/{}/cancel",
            path_segment(payment_intent)?
        );
        let form = Form::new().field("cancellation_reason", "abandoned");
        self.call(
            tenant,
            Method::POST,
            &path,
            "cancel_payment_intent",
            form,
            None,
        )
        .await
    }

    async fn create_refund(
        &self,
        tenant: &TenantId,
        request: &NewRefund,
        key: &IdempotencyKey,
    ) -> GatewayResult<Refund> {
        let form = Form::new()
            .field("payment_intent", request.payment_intent.clone())
            .opt("amount", request.amount.map(|a| a.value().to_string()))
            .opt("reason", request.reason.map(|r| r.as_str()))
            .map("metadata", &with_tenant(tenant, &request.metadata));
        self.call(
            tenant,
            Method::POST,
            "/v1/refunds",
            "create_refund",
            form,
            Some(key.as_str()),
        )
        .await
    }

    async fn list_payment_intents(
        &self,
        tenant: &TenantId,
        params: &ListParams,
    ) -> GatewayResult<List<PaymentIntent>> {
        let l: StripeList<PaymentIntent> = self
            .call(
                tenant,
                Method::GET,
                "/v1/payment_intents",
                "list_payment_intents",
                list_form(params),
                None,
            )
            .await?;
        Ok(List {
            data: l.data,
            has_more: l.has_more,
        })
    }

    async fn list_events(
        &self,
        tenant: &TenantId,
        params: &ListParams,
    ) -> GatewayResult<List<Event>> {
        let l: StripeList<Event> = self
            .call(
                tenant,
                Method::GET,
                "/v1/events",
                "list_events",
                list_form(params),
                None,
            )
            .await?;
        Ok(List {
            data: l.data,
            has_more: l.has_more,
        })
    }
}

/// Every object we create names its tenant, so the account's dashboard and exports show it.
fn with_tenant(tenant: &TenantId, metadata: &Metadata) -> Metadata {
    let mut m = metadata.clone();
    m.insert("tenant".into(), tenant.as_str().to_owned());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_documented_errors() {
        let declined = br#"{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds.","payment_intent":{"id":"pi_1","object":"payment_intent"}}}"#;
        assert_eq!(
            map_error(StatusCode::PAYMENT_REQUIRED, declined),
            GatewayError::CardDeclined {
                code: "card_declined".into(),
                decline_code: Some("insufficient_funds".into()),
                message: Some("Your card has insufficient funds.".into()),
                payment_intent: Some("pi_1".into()),
            }
        );
        let auth = br#"{"error":{"type":"card_error","code":"authentication_required","decline_code":"authentication_required"}}"#;
        assert_eq!(
            map_error(StatusCode::PAYMENT_REQUIRED, auth),
            GatewayError::AuthenticationRequired {
                payment_intent: None
            }
        );
        assert!(matches!(
            map_error(StatusCode::BAD_REQUEST, br#"{"error":{"type":"idempotency_error","message":"Keys for idempotent requests can only be used with the same parameters they were first used with."}}"#),
            GatewayError::IdempotencyConflict { .. }
        ));
        assert!(matches!(
            map_error(
                StatusCode::NOT_FOUND,
                br#"{"error":{"type":"invalid_request_error","code":"resource_missing"}}"#
            ),
            GatewayError::NotFound { .. }
        ));
        assert_eq!(
            map_error(StatusCode::TOO_MANY_REQUESTS, b"{}"),
            GatewayError::RateLimited
        );
        assert_eq!(
            map_error(StatusCode::BAD_GATEWAY, b"not json"),
            GatewayError::Upstream { status: 502 }
        );
        assert!(matches!(
            map_error(StatusCode::UNAUTHORIZED, b"{}"),
            GatewayError::Config(_)
        ));
        assert!(matches!(
            map_error(StatusCode::BAD_REQUEST, br#"{"error":{"type":"invalid_request_error","code":"parameter_missing","param":"amount","message":"Missing required param: amount."}}"#),
            GatewayError::InvalidRequest { code: Some(c), param: Some(p), .. } if c == "parameter_missing" && p == "amount"
        ));
    }

    #[test]
    fn retry_decisions() {
        let lock = br#"{"error":{"type":"invalid_request_error","code":"lock_timeout"}}"#;
        assert!(should_retry(StatusCode::CONFLICT, None, lock));
        assert!(!should_retry(StatusCode::CONFLICT, None, b"{}"));
        assert!(should_retry(StatusCode::TOO_MANY_REQUESTS, None, b""));
        assert!(should_retry(StatusCode::INTERNAL_SERVER_ERROR, None, b""));
        assert!(!should_retry(
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(false),
            b""
        ));
        assert!(should_retry(StatusCode::BAD_REQUEST, Some(true), b""));
        assert!(!should_retry(StatusCode::PAYMENT_REQUIRED, None, b""));
    }

    #[test]
    fn ids_cannot_change_the_path() {
        assert!(path_segment("pi_3MtwBwLkdIwHu7ix28a3tqPa").is_ok());
        for bad in ["", "../v1/charges", "pi_1/cancel", "pi_1?x=1", "pi 1"] {
            assert!(path_segment(bad).is_err(), "{bad}");
        }
    }
}
