//! The Stripe adapter's wire format, against a local HTTP server that checks each request
//! (method, path, query, form fields, headers) and answers with bodies shaped as Stripe's
//! API reference documents them (`tests/fixtures/stripe/`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use madoguchi_domain::money::Yen;
use madoguchi_domain::tenant::TenantId;
use madoguchi_payment_gateway::{
    EventObject, GatewayCredentials, GatewayError, IdempotencyKey, IntentStatus, ListParams,
    NewCustomer, NewPaymentIntent, NewRefund, NewSetupIntent, PaymentGateway, PaymentTags,
    RefundReason, RefundStatus, Secret, StaticAccounts, StripeConfig, StripeGateway,
};

const SECRET_KEY: &str = "sk_test_272060_wire";

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/stripe/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn t(code: &str) -> TenantId {
    TenantId::parse(code).unwrap()
}

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::new(k).unwrap()
}

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    form: Vec<(String, String)>,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn query_field(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// Every request carries the tenant's key and the pinned API version, and never a body
    /// on GET.
    fn assert_common(&self) {
        assert_eq!(
            self.header("authorization"),
            Some("Bearer sk_test_272060_wire")
        );
        assert_eq!(self.header("stripe-version"), Some("2024-06-20"));
        if self.method == "POST" {
            assert_eq!(
                self.header("content-type"),
                Some("application/x-www-form-urlencoded")
            );
            assert!(
                self.header("idempotency-key").is_some(),
                "POST without Idempotency-Key"
            );
        } else {
            assert!(self.form.is_empty());
            assert!(self.header("idempotency-key").is_none());
        }
    }
}

struct Reply {
    status: u16,
    body: String,
    delay: Option<Duration>,
    headers: Vec<(&'static str, &'static str)>,
}

fn reply(status: u16, body: String) -> Reply {
    Reply {
        status,
        body,
        delay: None,
        headers: vec![("request-id", "req_test")],
    }
}

#[derive(Default)]
struct Mock {
    requests: Mutex<Vec<Recorded>>,
    replies: Mutex<VecDeque<Reply>>,
}

impl Mock {
    fn then(&self, r: Reply) -> &Self {
        self.replies.lock().unwrap().push_back(r);
        self
    }
    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
    fn only_request(&self) -> Recorded {
        let r = self.requests();
        assert_eq!(r.len(), 1, "{r:#?}");
        r[0].clone()
    }
}

fn pairs(s: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(s.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

async fn handle(State(mock): State<Arc<Mock>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, 1 << 20).await.unwrap_or_default();
    mock.requests.lock().unwrap().push(Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: pairs(parts.uri.query().unwrap_or("")),
        headers: parts.headers.clone(),
        form: pairs(std::str::from_utf8(&body).unwrap_or("")),
    });
    let next = mock.replies.lock().unwrap().pop_front();
    let Some(r) = next else {
        return Response::builder()
            .status(599)
            .body(Body::from("unexpected request"))
            .unwrap();
    };
    if let Some(d) = r.delay {
        tokio::time::sleep(d).await;
    }
    let mut b = Response::builder()
        .status(r.status)
        .header("content-type", "application/json");
    for (k, v) in r.headers {
        b = b.header(k, v);
    }
    b.body(Body::from(r.body)).unwrap()
}

struct Harness {
    mock: Arc<Mock>,
    gateway: StripeGateway,
    tenant: TenantId,
}

async fn harness_with(timeout: Duration) -> Harness {
    let mock = Arc::new(Mock::default());
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let tenant = t("272060");
    let accounts = StaticAccounts::new().with(
        tenant,
        GatewayCredentials {
            secret_key: Secret::new(SECRET_KEY),
            webhook_secret: Secret::new("whsec_unused"),
        },
    );
    let config = StripeConfig {
        base_url: format!("http://{addr}"),
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        request_timeout: timeout,
        ..StripeConfig::default()
    };
    let gateway = StripeGateway::new(config, Arc::new(accounts)).unwrap();
    Harness {
        mock,
        gateway,
        tenant,
    }
}

async fn harness() -> Harness {
    harness_with(Duration::from_secs(10)).await
}

fn payment(tenant: TenantId) -> NewPaymentIntent {
    NewPaymentIntent {
        amount: Yen::new(1500).unwrap(),
        customer: Some("cus_NffrFeUfNV2Hib".into()),
        payment_method: Some("pm_1MqLiJLkdIwHu7ixUEgbFdYF".into()),
        confirm: true,
        off_session: true,
        save_payment_method: false,
        return_url: None,
        description: Some("住民票の写し 手数料".into()),
        tags: PaymentTags {
            tenant,
            application: "0190f1b2-7c3e-7a10-9d2e-4b5a6c7d8e9f".into(),
            environment: "staging".into(),
            extra: Default::default(),
        },
    }
}

#[tokio::test]
async fn create_customer_wire_format() {
    let h = harness().await;
    h.mock.then(reply(200, fixture("customer.json")));
    let c = h
        .gateway
        .create_customer(
            &h.tenant,
            &NewCustomer {
                email: Some("jennyrosen@example.com".into()),
                name: Some("Jenny Rosen".into()),
                metadata: Default::default(),
            },
            &key("cus-create-1"),
        )
        .await
        .unwrap();
    assert_eq!(c.id, "cus_NffrFeUfNV2Hib");
    assert_eq!(c.default_payment_method(), None);
    assert!(!c.livemode);
    assert!(!c.sandbox);
    let r = h.mock.only_request();
    r.assert_common();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/customers")
    );
    assert_eq!(r.header("idempotency-key"), Some("cus-create-1"));
    assert_eq!(
        r.form,
        vec![
            ("email".to_owned(), "jennyrosen@example.com".to_owned()),
            ("name".to_owned(), "Jenny Rosen".to_owned()),
            ("metadata[tenant]".to_owned(), "272060".to_owned()),
        ]
    );
}

#[tokio::test]
async fn setup_intent_wire_format() {
    let h = harness().await;
    h.mock.then(reply(200, fixture("setup_intent.json")));
    let s = h
        .gateway
        .create_setup_intent(
            &h.tenant,
            &NewSetupIntent {
                customer: "cus_NffrFeUfNV2Hib".into(),
                metadata: Default::default(),
            },
            &key("seti-1"),
        )
        .await
        .unwrap();
    assert_eq!(s.id, "seti_1Mm8s8LkdIwHu7ix0OXBfTRG");
    assert_eq!(s.status, IntentStatus::RequiresPaymentMethod);
    assert!(
        s.client_secret
            .as_deref()
            .unwrap()
            .starts_with("seti_1Mm8s8LkdIwHu7ix0OXBfTRG_secret_")
    );
    assert_eq!(s.customer.as_deref(), Some("cus_NffrFeUfNV2Hib"));
    let r = h.mock.only_request();
    r.assert_common();
    assert_eq!(r.path, "/v1/setup_intents");
    assert_eq!(r.header("idempotency-key"), Some("seti-1"));
    assert_eq!(r.field("customer"), Some("cus_NffrFeUfNV2Hib"));
    assert_eq!(r.field("usage"), Some("off_session"));
    assert_eq!(r.field("payment_method_types[0]"), Some("card"));
    assert_eq!(r.field("metadata[tenant]"), Some("272060"));
}

#[tokio::test]
async fn saved_cards_list_default_detach() {
    let h = harness().await;
    h.mock
        .then(reply(200, fixture("payment_methods_list.json")))
        .then(reply(200, fixture("customer_default_pm.json")))
        .then(reply(200, fixture("payment_method_detached.json")));

    let cards = h
        .gateway
        .list_payment_methods(&h.tenant, "cus_NffrFeUfNV2Hib")
        .await
        .unwrap();
    assert_eq!(cards.len(), 2);
    assert_eq!(cards[0].brand.as_deref(), Some("jcb"));
    assert_eq!(cards[0].last4.as_deref(), Some("0505"));
    assert_eq!(cards[1].id, "pm_1MqLiJLkdIwHu7ixUEgbFdYF");
    assert_eq!(
        (
            cards[1].brand.as_deref(),
            cards[1].last4.as_deref(),
            cards[1].exp_month,
            cards[1].exp_year
        ),
        (Some("visa"), Some("4242"), Some(8), Some(2026))
    );
    assert_eq!(cards[1].customer.as_deref(), Some("cus_NffrFeUfNV2Hib"));

    let c = h
        .gateway
        .set_default_payment_method(
            &h.tenant,
            "cus_NffrFeUfNV2Hib",
            "pm_1MqLiJLkdIwHu7ixUEgbFdYF",
        )
        .await
        .unwrap();
    assert_eq!(
        c.default_payment_method(),
        Some("pm_1MqLiJLkdIwHu7ixUEgbFdYF")
    );

    let pm = h
        .gateway
        .detach_payment_method(&h.tenant, "pm_1MqLiJLkdIwHu7ixUEgbFdYF")
        .await
        .unwrap();
    assert_eq!(pm.customer, None);

    let r = h.mock.requests();
    assert_eq!(r.len(), 3);
    for x in &r {
        x.assert_common();
    }
    assert_eq!(
        (r[0].method.as_str(), r[0].path.as_str()),
        ("GET", "/v1/customers/cus_NffrFeUfNV2Hib/payment_methods")
    );
    assert_eq!(r[0].query_field("type"), Some("card"));
    assert_eq!(r[0].query_field("limit"), Some("100"));
    assert_eq!(
        (r[1].method.as_str(), r[1].path.as_str()),
        ("POST", "/v1/customers/cus_NffrFeUfNV2Hib")
    );
    assert_eq!(
        r[1].form,
        vec![(
            "invoice_settings[default_payment_method]".to_owned(),
            "pm_1MqLiJLkdIwHu7ixUEgbFdYF".to_owned()
        )]
    );
    assert_eq!(
        (r[2].method.as_str(), r[2].path.as_str()),
        (
            "POST",
            "/v1/payment_methods/pm_1MqLiJLkdIwHu7ixUEgbFdYF/detach"
        )
    );
    assert!(r[2].form.is_empty());
    // Calls without a caller key still get distinct keys of their own.
    assert_ne!(
        r[1].header("idempotency-key"),
        r[2].header("idempotency-key")
    );
}

#[tokio::test]
async fn payment_intent_create_sends_yen_and_metadata() {
    let h = harness().await;
    h.mock
        .then(reply(200, fixture("payment_intent_succeeded.json")));
    let pi = h
        .gateway
        .create_payment_intent(&h.tenant, &payment(h.tenant), &key("pay-0190f1b2-1"))
        .await
        .unwrap();
    assert_eq!(pi.id, "pi_3MtwBwLkdIwHu7ix28a3tqPa");
    assert_eq!(pi.status, IntentStatus::Succeeded);
    assert_eq!((pi.amount, pi.amount_received), (1500, 1500));
    assert_eq!(pi.currency, "jpy");
    assert_eq!(
        pi.latest_charge.as_deref(),
        Some("ch_3MtwBwLkdIwHu7ix28a3tqPa")
    );
    assert_eq!(
        pi.metadata.get("tenant").map(String::as_str),
        Some("272060")
    );

    let r = h.mock.only_request();
    r.assert_common();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/payment_intents")
    );
    assert_eq!(r.header("idempotency-key"), Some("pay-0190f1b2-1"));
    // JPY is zero-decimal: ¥1,500 is sent as 1500.
    assert_eq!(r.field("amount"), Some("1500"));
    assert_eq!(r.field("currency"), Some("jpy"));
    assert_eq!(r.field("customer"), Some("cus_NffrFeUfNV2Hib"));
    assert_eq!(
        r.field("payment_method"),
        Some("pm_1MqLiJLkdIwHu7ixUEgbFdYF")
    );
    assert_eq!(r.field("confirm"), Some("true"));
    assert_eq!(r.field("off_session"), Some("true"));
    assert_eq!(r.field("payment_method_types[0]"), Some("card"));
    assert_eq!(r.field("description"), Some("住民票の写し 手数料"));
    assert_eq!(r.field("metadata[tenant]"), Some("272060"));
    assert_eq!(
        r.field("metadata[application]"),
        Some("0190f1b2-7c3e-7a10-9d2e-4b5a6c7d8e9f")
    );
    assert_eq!(r.field("metadata[environment]"), Some("staging"));
    assert_eq!(r.field("setup_future_usage"), None);
    assert_eq!(r.field("return_url"), None);
}

#[tokio::test]
async fn payment_intent_confirm_retrieve_cancel() {
    let h = harness().await;
    h.mock
        .then(reply(200, fixture("payment_intent_requires_action.json")))
        .then(reply(200, fixture("payment_intent_succeeded.json")))
        .then(reply(200, fixture("payment_intent_canceled.json")));
    let pi = h
        .gateway
        .confirm_payment_intent(
            &h.tenant,
            "pi_3MtwBwLkdIwHu7ix28a3tqPa",
            Some("pm_1MqLiJLkdIwHu7ixUEgbFdYF"),
            &key("confirm-1"),
        )
        .await
        .unwrap();
    assert_eq!(pi.status, IntentStatus::RequiresAction);
    assert_eq!(
        pi.redirect_url(),
        Some("https://hooks.stripe.com/redirect/authenticate/src_1Mtw")
    );
    let pi = h
        .gateway
        .retrieve_payment_intent(&h.tenant, "pi_3MtwBwLkdIwHu7ix28a3tqPa")
        .await
        .unwrap();
    assert_eq!(pi.status, IntentStatus::Succeeded);
    let pi = h
        .gateway
        .cancel_payment_intent(&h.tenant, "pi_3MtwBwLkdIwHu7ix28a3tqPa")
        .await
        .unwrap();
    assert_eq!(pi.status, IntentStatus::Canceled);
    assert_eq!(pi.cancellation_reason.as_deref(), Some("abandoned"));

    let r = h.mock.requests();
    assert_eq!(r.len(), 3);
    for x in &r {
        x.assert_common();
    }
    assert_eq!(
        (r[0].method.as_str(), r[0].path.as_str()),
        (
            "POST",
            "/v1/payment_intents/pi_3MtwBwLkdIwHu7ix28a3tqPa/confirm"
        )
    );
    assert_eq!(r[0].header("idempotency-key"), Some("confirm-1"));
    assert_eq!(
        r[0].form,
        vec![(
            "payment_method".to_owned(),
            "pm_1MqLiJLkdIwHu7ixUEgbFdYF".to_owned()
        )]
    );
    assert_eq!(
        (r[1].method.as_str(), r[1].path.as_str()),
        ("GET", "/v1/payment_intents/pi_3MtwBwLkdIwHu7ix28a3tqPa")
    );
    assert!(r[1].query.is_empty());
    assert_eq!(
        (r[2].method.as_str(), r[2].path.as_str()),
        (
            "POST",
            "/v1/payment_intents/pi_3MtwBwLkdIwHu7ix28a3tqPa/cancel"
        )
    );
    assert_eq!(r[2].field("cancellation_reason"), Some("abandoned"));
}

#[tokio::test]
async fn partial_refund_wire_format() {
    let h = harness().await;
    h.mock.then(reply(200, fixture("refund_partial.json")));
    let mut metadata = madoguchi_payment_gateway::Metadata::new();
    metadata.insert("reason".into(), "fee_lowered".into());
    let re = h
        .gateway
        .create_refund(
            &h.tenant,
            &NewRefund {
                payment_intent: "pi_3MtwBwLkdIwHu7ix28a3tqPa".into(),
                amount: Some(Yen::new(500).unwrap()),
                reason: Some(RefundReason::RequestedByCustomer),
                metadata,
            },
            &key("refund-0190f1b2-1"),
        )
        .await
        .unwrap();
    assert_eq!(re.id, "re_1Nispe2eZvKYlo2Cd31jOCgZ");
    assert_eq!(re.amount, 500);
    assert_eq!(re.status, Some(RefundStatus::Succeeded));
    assert_eq!(
        re.payment_intent.as_deref(),
        Some("pi_3MtwBwLkdIwHu7ix28a3tqPa")
    );
    let r = h.mock.only_request();
    r.assert_common();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/refunds")
    );
    assert_eq!(r.header("idempotency-key"), Some("refund-0190f1b2-1"));
    assert_eq!(
        r.form,
        vec![
            (
                "payment_intent".to_owned(),
                "pi_3MtwBwLkdIwHu7ix28a3tqPa".to_owned()
            ),
            ("amount".to_owned(), "500".to_owned()),
            ("reason".to_owned(), "requested_by_customer".to_owned()),
            ("metadata[reason]".to_owned(), "fee_lowered".to_owned()),
            ("metadata[tenant]".to_owned(), "272060".to_owned()),
        ]
    );
}

#[tokio::test]
async fn reconciliation_lists_are_paged_and_typed() {
    let h = harness().await;
    h.mock
        .then(reply(200, fixture("payment_intents_list.json")))
        .then(reply(200, fixture("events_list.json")));
    let params = ListParams {
        created_gte: Some(1_680_000_000),
        starting_after: Some("pi_3MtwAAAkdIwHu7ix28a3tqPa".into()),
        limit: 2,
    };
    let pis = h
        .gateway
        .list_payment_intents(&h.tenant, &params)
        .await
        .unwrap();
    assert!(pis.has_more);
    assert_eq!(pis.data.len(), 2);
    assert_eq!(pis.data[1].status, IntentStatus::Canceled);

    let events = h
        .gateway
        .list_events(
            &h.tenant,
            &ListParams {
                starting_after: None,
                ..params.clone()
            },
        )
        .await
        .unwrap();
    assert!(!events.has_more);
    assert_eq!(events.data.len(), 3);
    assert_eq!(events.data[0].event_type, "invoice.created");
    assert!(
        matches!(&events.data[0].data.object, EventObject::Other(v) if v["object"] == "invoice")
    );
    match &events.data[1].data.object {
        EventObject::Charge(c) => {
            assert_eq!(c.amount_refunded, 500);
            assert_eq!(
                c.payment_intent.as_deref(),
                Some("pi_3MtwBwLkdIwHu7ix28a3tqPa")
            );
            assert!(!c.refunded);
        }
        other => panic!("{other:?}"),
    }
    match &events.data[2].data.object {
        EventObject::PaymentIntent(p) => assert_eq!(p.status, IntentStatus::Succeeded),
        other => panic!("{other:?}"),
    }

    let r = h.mock.requests();
    for x in &r {
        x.assert_common();
    }
    assert_eq!(
        (r[0].method.as_str(), r[0].path.as_str()),
        ("GET", "/v1/payment_intents")
    );
    assert_eq!(r[0].query_field("created[gte]"), Some("1680000000"));
    assert_eq!(r[0].query_field("limit"), Some("2"));
    assert_eq!(
        r[0].query_field("starting_after"),
        Some("pi_3MtwAAAkdIwHu7ix28a3tqPa")
    );
    assert_eq!(r[1].path, "/v1/events");
    assert_eq!(r[1].query_field("starting_after"), None);
}

#[tokio::test]
async fn card_declined_insufficient_funds_is_not_retried() {
    let h = harness().await;
    h.mock.then(reply(
        402,
        fixture("error_card_declined_insufficient_funds.json"),
    ));
    let err = h
        .gateway
        .create_payment_intent(&h.tenant, &payment(h.tenant), &key("pay-declined"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        GatewayError::CardDeclined {
            code: "card_declined".into(),
            decline_code: Some("insufficient_funds".into()),
            message: Some("Your card has insufficient funds.".into()),
            payment_intent: Some("pi_3MtwBwLkdIwHu7ix28a3tqPa".into()),
        }
    );
    assert!(!err.is_retryable());
    h.mock.only_request();
}

#[tokio::test]
async fn idempotency_error_not_found_and_bad_key_are_final() {
    let h = harness().await;
    h.mock
        .then(reply(400, fixture("error_idempotency.json")))
        .then(reply(404, fixture("error_resource_missing.json")))
        .then(reply(401, fixture("error_invalid_api_key.json")));
    let e = h
        .gateway
        .create_payment_intent(&h.tenant, &payment(h.tenant), &key("pay-0190f1b2-1"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, GatewayError::IdempotencyConflict { .. }),
        "{e:?}"
    );
    let e = h
        .gateway
        .retrieve_payment_intent(&h.tenant, "pi_missing")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, GatewayError::NotFound { message } if message.contains("pi_missing")),
        "{e:?}"
    );
    let e = h
        .gateway
        .retrieve_payment_intent(&h.tenant, "pi_x")
        .await
        .unwrap_err();
    assert!(matches!(e, GatewayError::Config(_)), "{e:?}");
    // One request each: none of these is retried.
    assert_eq!(h.mock.requests().len(), 3);
}

#[tokio::test]
async fn rate_limit_is_retried_with_the_same_key() {
    let h = harness().await;
    h.mock
        .then(reply(429, fixture("error_rate_limit.json")))
        .then(reply(200, fixture("payment_intent_succeeded.json")));
    let pi = h
        .gateway
        .create_payment_intent(&h.tenant, &payment(h.tenant), &key("pay-429"))
        .await
        .unwrap();
    assert_eq!(pi.status, IntentStatus::Succeeded);
    let r = h.mock.requests();
    assert_eq!(r.len(), 2);
    assert!(
        r.iter()
            .all(|x| x.header("idempotency-key") == Some("pay-429"))
    );
    assert_eq!(r[0].form, r[1].form);
}

#[tokio::test]
async fn server_errors_are_retried_then_given_up() {
    let h = harness().await;
    h.mock
        .then(reply(500, fixture("error_api_error.json")))
        .then(reply(503, String::new()))
        .then(reply(200, fixture("refund_partial.json")));
    let req = NewRefund {
        payment_intent: "pi_3MtwBwLkdIwHu7ix28a3tqPa".into(),
        amount: Some(Yen::new(500).unwrap()),
        reason: None,
        metadata: Default::default(),
    };
    let re = h
        .gateway
        .create_refund(&h.tenant, &req, &key("refund-500"))
        .await
        .unwrap();
    assert_eq!(re.amount, 500);
    let r = h.mock.requests();
    assert_eq!(r.len(), 3);
    assert!(
        r.iter()
            .all(|x| x.header("idempotency-key") == Some("refund-500"))
    );

    // Three 5xx in a row: the third attempt is the last (max_attempts = 3).
    for _ in 0..3 {
        h.mock.then(reply(500, fixture("error_api_error.json")));
    }
    let e = h
        .gateway
        .create_refund(&h.tenant, &req, &key("refund-500b"))
        .await
        .unwrap_err();
    assert_eq!(e, GatewayError::Upstream { status: 500 });
    assert!(e.is_retryable());
    assert_eq!(h.mock.requests().len(), 6);
}

#[tokio::test]
async fn stripe_should_retry_header_decides() {
    let h = harness().await;
    let mut no = reply(500, fixture("error_api_error.json"));
    no.headers.push(("stripe-should-retry", "false"));
    h.mock.then(no);
    let e = h
        .gateway
        .retrieve_payment_intent(&h.tenant, "pi_3MtwBwLkdIwHu7ix28a3tqPa")
        .await
        .unwrap_err();
    assert_eq!(e, GatewayError::Upstream { status: 500 });
    assert_eq!(h.mock.requests().len(), 1);

    // A 409 lock_timeout clears by itself and is retried.
    h.mock
        .then(reply(409, fixture("error_lock_timeout.json")))
        .then(reply(200, fixture("payment_intent_canceled.json")));
    let pi = h
        .gateway
        .cancel_payment_intent(&h.tenant, "pi_3MtwBwLkdIwHu7ix28a3tqPa")
        .await
        .unwrap();
    assert_eq!(pi.status, IntentStatus::Canceled);
    let r = h.mock.requests();
    assert_eq!(r.len(), 3);
    assert_eq!(
        r[1].header("idempotency-key"),
        r[2].header("idempotency-key")
    );
}

#[tokio::test]
async fn timeout_is_retried_with_the_same_key() {
    let h = harness_with(Duration::from_secs(1)).await;
    let mut slow = reply(200, fixture("payment_intent_succeeded.json"));
    slow.delay = Some(Duration::from_secs(30));
    h.mock
        .then(slow)
        .then(reply(200, fixture("payment_intent_succeeded.json")));
    let pi = h
        .gateway
        .create_payment_intent(&h.tenant, &payment(h.tenant), &key("pay-timeout"))
        .await
        .unwrap();
    assert_eq!(pi.status, IntentStatus::Succeeded);
    let r = h.mock.requests();
    assert_eq!(r.len(), 2);
    assert!(
        r.iter()
            .all(|x| x.header("idempotency-key") == Some("pay-timeout"))
    );
    assert_eq!(r[0].form, r[1].form);
}

#[tokio::test]
async fn unknown_tenant_and_bad_ids_send_nothing() {
    let h = harness().await;
    let e = h
        .gateway
        .retrieve_payment_intent(&t("131016"), "pi_1")
        .await
        .unwrap_err();
    assert!(matches!(e, GatewayError::Config(_)), "{e:?}");
    let e = h
        .gateway
        .retrieve_payment_intent(&h.tenant, "pi_1/../../v1/charges")
        .await
        .unwrap_err();
    assert!(matches!(e, GatewayError::InvalidRequest { .. }), "{e:?}");
    let e = h
        .gateway
        .create_payment_intent(&h.tenant, &payment(t("131016")), &key("k"))
        .await
        .unwrap_err();
    assert!(matches!(e, GatewayError::InvalidRequest { .. }), "{e:?}");
    assert!(h.mock.requests().is_empty());
    // The secret key never shows in Debug output.
    assert!(!format!("{:?}", h.gateway).contains(SECRET_KEY));
    let creds = GatewayCredentials {
        secret_key: Secret::new(SECRET_KEY),
        webhook_secret: Secret::new("whsec_x"),
    };
    assert!(!format!("{creds:?}").contains("sk_test"));
}
