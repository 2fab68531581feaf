//! The webhook endpoint on both adapter sets: only a body signed with the tenant's secret
//! within the tolerance is queued (good, tampered, stale, wrong secret, missing header), an
//! event already handled is answered without queueing, and a tenant without a gateway
//! account is 404.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use madoguchi_audit::AuditLog;
use madoguchi_domain::tenant::TenantId;
use madoguchi_http::Authenticator;
use madoguchi_payment_gateway::webhook::sign;
use madoguchi_payment_gateway::{
    GatewayCredentials, NoWebhooks, SandboxGateway, Secret, StaticAccounts,
};
use madoguchi_payment_ledger::{EventMessage, PaymentSettings, Payments};
use madoguchi_payments::{PaymentsState, router};
use madoguchi_ports::{Clock, Item, Queue, UuidV7Gen};
use madoguchi_tests::{Env, contract_tests};
use tower::ServiceExt;

const SECRET: &str = "whsec_test_endpoint";

async fn state(env: &Env) -> (PaymentsState, Arc<dyn Queue>) {
    let tenant = TenantId::parse("272060").unwrap();
    let items = env.items().await;
    let notify = env.queue("notify", Duration::from_secs(30), 5).await;
    let events = env
        .queue("payment-events", Duration::from_secs(30), 5)
        .await;
    let accounts = Arc::new(StaticAccounts::new().with(
        tenant,
        GatewayCredentials {
            secret_key: Secret::new("sk_test_endpoint"),
            webhook_secret: Secret::new(SECRET),
        },
    ));
    let sandbox = Arc::new(SandboxGateway::new(
        items.clone(),
        env.clock.clone(),
        accounts.clone(),
        Arc::new(NoWebhooks),
        "http://127.0.0.1:9",
    ));
    let payments = Payments {
        items: items.clone(),
        gateway: sandbox,
        notify: notify.queue.clone(),
        clock: env.clock.clone(),
        settings: Arc::new(PaymentSettings {
            environment: "test".into(),
            return_url: None,
        }),
    };
    let state = PaymentsState {
        items: items.clone(),
        payments,
        accounts,
        events: events.queue.clone(),
        audit: AuditLog::new(items, env.clock.clone()),
        auth: Authenticator::shared(Vec::new()),
        clock: env.clock.clone(),
        ids: Arc::new(UuidV7Gen),
    };
    (state, events.queue)
}

fn event_body(id: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": id,
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": 1_764_633_600,
        "livemode": false,
        "data": {"object": {
            "id": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
            "object": "payment_intent",
            "amount": 300,
            "currency": "jpy",
            "status": "succeeded",
            "metadata": {"tenant": "272060", "application": "0190b6a0-0000-7000-8000-000000000001", "environment": "test"}
        }}
    }))
    .unwrap()
}

async fn post(
    state: &PaymentsState,
    tenant: &str,
    body: Vec<u8>,
    signature: Option<String>,
) -> (StatusCode, serde_json::Value) {
    let mut req = Request::post(format!("/v1/tenants/{tenant}/payments/webhook"))
        .header("content-type", "application/json");
    if let Some(s) = signature {
        req = req.header("stripe-signature", s);
    }
    let res = router(state.clone())
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

async fn drain(q: &Arc<dyn Queue>) -> Vec<EventMessage> {
    let got = q.receive(10, Duration::from_millis(300)).await.unwrap();
    let receipts: Vec<String> = got.iter().map(|m| m.receipt.clone()).collect();
    if !receipts.is_empty() {
        q.delete(&receipts).await.unwrap();
    }
    got.iter()
        .map(|m| serde_json::from_str(&m.body).unwrap())
        .collect()
}

async fn only_signed_fresh_events_are_queued(env: Env) {
    let (state, queue) = state(&env).await;
    let now = env.clock.now().as_second();
    let body = event_body("evt_good");

    let (status, answer) = post(
        &state,
        "272060",
        body.clone(),
        Some(sign(SECRET, now, &body)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["duplicate"], false);
    let queued = drain(&queue).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].tenant, "272060");
    assert_eq!(queued[0].event["id"], "evt_good");

    // Tampered: the amount changed after signing.
    let mut tampered = body.clone();
    let at = tampered.windows(3).position(|w| w == b"300").unwrap();
    tampered[at] = b'9';
    let stale = now - 301;
    for (what, body, signature) in [
        ("tampered", tampered, Some(sign(SECRET, now, &body))),
        ("stale", body.clone(), Some(sign(SECRET, stale, &body))),
        (
            "wrong secret",
            body.clone(),
            Some(sign("whsec_other", now, &body)),
        ),
        ("no header", body.clone(), None),
        ("garbage header", body.clone(), Some("t=x,v1=zz".to_owned())),
    ] {
        let (status, answer) = post(&state, "272060", body, signature).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {answer}");
        assert_eq!(answer["status"], 401, "{what}");
    }
    assert!(drain(&queue).await.is_empty(), "nothing refused was queued");

    // No account for the tenant: 404, nothing queued.
    let (status, _) = post(
        &state,
        "131016",
        body.clone(),
        Some(sign(SECRET, now, &body)),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(drain(&queue).await.is_empty());
}

async fn an_event_already_handled_is_not_queued_again(env: Env) {
    let (state, queue) = state(&env).await;
    let tenant = TenantId::parse("272060").unwrap();
    // The consumer marks handled events (`handle_event`); mark one as it would.
    state
        .items
        .put(
            Item::new(
                madoguchi_payment_ledger::keys::event_key(&tenant, "evt_done"),
                serde_json::json!({"type": "payment_intent.succeeded"}),
            ),
            madoguchi_ports::Condition::None,
        )
        .await
        .unwrap();
    let now = env.clock.now().as_second();
    let body = event_body("evt_done");
    let (status, answer) = post(
        &state,
        "272060",
        body.clone(),
        Some(sign(SECRET, now, &body)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["duplicate"], true);
    assert!(drain(&queue).await.is_empty());
}

contract_tests!(
    only_signed_fresh_events_are_queued,
    an_event_already_handled_is_not_queued_again,
);
