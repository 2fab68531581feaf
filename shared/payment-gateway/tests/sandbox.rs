//! The sandbox gateway on the embedded SQLite item store: test cards, idempotency, refunds,
//! 3-D Secure, signed webhooks, listing for reconciliation, and persistence across a restart.

use std::path::Path;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use madoguchi_domain::money::Yen;
use madoguchi_domain::tenant::TenantId;
use madoguchi_embedded::EmbeddedBackend;
use madoguchi_payment_gateway::webhook::{self, DEFAULT_TOLERANCE, WebhookError};
use madoguchi_payment_gateway::{
    Event, EventObject, GatewayCredentials, GatewayError, IdempotencyKey, IntentStatus, ListParams,
    MemorySink, NewCustomer, NewPaymentIntent, NewRefund, NewSetupIntent, PaymentGateway,
    PaymentIntent, PaymentTags, SandboxGateway, Secret, SimulatedFault, StaticAccounts, TestCard,
};
use madoguchi_ports::{
    Clock, Condition, FixedClock, Item, ItemStore, Key, Page, PortResult, QueryRequest, TxOp,
};

const WHSEC_A: &str = "whsec_sandbox_272060";
const WHSEC_B: &str = "whsec_sandbox_131016";

fn t(code: &str) -> TenantId {
    TenantId::parse(code).unwrap()
}

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::new(k).unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    clock: Arc<FixedClock>,
    sink: Arc<MemorySink>,
    gw: SandboxGateway,
    a: TenantId,
    b: TenantId,
}

fn accounts() -> StaticAccounts {
    StaticAccounts::new()
        .with(
            t("272060"),
            GatewayCredentials {
                secret_key: Secret::new("sk_sandbox_unused"),
                webhook_secret: Secret::new(WHSEC_A),
            },
        )
        .with(
            t("131016"),
            GatewayCredentials {
                secret_key: Secret::new("sk_sandbox_unused"),
                webhook_secret: Secret::new(WHSEC_B),
            },
        )
}

fn open(dir: &Path, clock: Arc<FixedClock>, sink: Arc<MemorySink>) -> SandboxGateway {
    let backend = EmbeddedBackend::open(dir, "http://127.0.0.1:1", clock.clone()).unwrap();
    SandboxGateway::new(
        backend.items(),
        clock,
        Arc::new(accounts()),
        sink,
        "http://127.0.0.1:8080/",
    )
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new("2026-12-01T00:00:00Z".parse().unwrap()));
    let sink = Arc::new(MemorySink::new());
    let gw = open(dir.path(), clock.clone(), sink.clone());
    Fixture {
        _dir: dir,
        clock,
        sink,
        gw,
        a: t("272060"),
        b: t("131016"),
    }
}

fn payment(
    tenant: TenantId,
    amount: i64,
    pm: Option<&str>,
    customer: Option<&str>,
) -> NewPaymentIntent {
    NewPaymentIntent {
        amount: Yen::new(amount).unwrap(),
        customer: customer.map(str::to_owned),
        payment_method: pm.map(str::to_owned),
        confirm: pm.is_some(),
        off_session: false,
        save_payment_method: false,
        return_url: None,
        description: None,
        tags: PaymentTags {
            tenant,
            application: "app-1".into(),
            environment: "embedded".into(),
            extra: Default::default(),
        },
    }
}

/// Verifies every delivery with the tenant's secret, as the production endpoint does.
fn verified(f: &Fixture) -> Vec<Event> {
    f.sink
        .take()
        .into_iter()
        .map(|d| {
            let secret = if d.tenant == f.a { WHSEC_A } else { WHSEC_B };
            assert_eq!(
                d.headers.get("content-type").and_then(|v| v.to_str().ok()),
                Some("application/json")
            );
            webhook::construct_event(
                secret,
                d.signature(),
                &d.body,
                f.clock.now(),
                DEFAULT_TOLERANCE,
            )
            .unwrap()
        })
        .collect()
}

fn types(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

fn assert_sandbox(pi: &PaymentIntent) {
    assert!(pi.id.starts_with("sbx_pi_"), "{}", pi.id);
    assert!(!pi.livemode);
    assert!(pi.sandbox);
    assert_eq!(pi.metadata.get("sandbox").map(String::as_str), Some("true"));
}

#[tokio::test]
async fn visa_pays_and_says_it_is_a_sandbox() {
    let f = fixture();
    assert!(f.gw.is_sandbox());
    let pi =
        f.gw.create_payment_intent(
            &f.a,
            &payment(f.a, 1500, Some("pm_card_visa"), None),
            &key("k1"),
        )
        .await
        .unwrap();
    assert_sandbox(&pi);
    assert_eq!(pi.status, IntentStatus::Succeeded);
    assert_eq!((pi.amount, pi.amount_received), (1500, 1500));
    assert_eq!(pi.currency, "jpy");
    assert!(pi.latest_charge.as_deref().unwrap().starts_with("sbx_ch_"));
    assert!(pi.payment_method.as_deref().unwrap().starts_with("sbx_pm_"));
    assert!(
        pi.client_secret
            .as_deref()
            .unwrap()
            .starts_with(&format!("{}_secret_", pi.id))
    );
    assert_eq!(
        pi.metadata.get("tenant").map(String::as_str),
        Some("272060")
    );
    assert_eq!(
        pi.metadata.get("application").map(String::as_str),
        Some("app-1")
    );
    assert_eq!(
        pi.metadata.get("environment").map(String::as_str),
        Some("embedded")
    );

    let events = verified(&f);
    assert_eq!(
        types(&events),
        ["payment_intent.created", "payment_intent.succeeded"]
    );
    for e in &events {
        assert!(e.id.starts_with("sbx_evt_"));
        assert!(e.sandbox && !e.livemode);
    }
    match &events[1].data.object {
        EventObject::PaymentIntent(p) => assert_eq!(p.status, IntentStatus::Succeeded),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        f.gw.retrieve_payment_intent(&f.a, &pi.id).await.unwrap(),
        pi
    );
}

#[tokio::test]
async fn each_test_card_behaves_as_documented() {
    let f = fixture();
    for (token, brand, last4) in [
        ("pm_card_visa", "visa", "4242"),
        ("pm_card_mastercard", "mastercard", "4444"),
        ("pm_card_jcb", "jcb", "0505"),
    ] {
        let pi =
            f.gw.create_payment_intent(&f.a, &payment(f.a, 300, Some(token), None), &key(token))
                .await
                .unwrap();
        assert_eq!(pi.status, IntentStatus::Succeeded, "{token}");
        let card = TestCard::from_token(token).unwrap();
        assert_eq!((card.brand(), card.last4()), (brand, last4));
    }

    for (token, decline) in [
        ("pm_card_chargeDeclined", "generic_decline"),
        (
            "pm_card_chargeDeclinedInsufficientFunds",
            "insufficient_funds",
        ),
    ] {
        let e =
            f.gw.create_payment_intent(&f.a, &payment(f.a, 300, Some(token), None), &key(token))
                .await
                .unwrap_err();
        let GatewayError::CardDeclined {
            code,
            decline_code,
            payment_intent: Some(id),
            ..
        } = e
        else {
            panic!("{token}: {e:?}");
        };
        assert_eq!(code, "card_declined");
        assert_eq!(decline_code.as_deref(), Some(decline));
        let pi = f.gw.retrieve_payment_intent(&f.a, &id).await.unwrap();
        assert_eq!(pi.status, IntentStatus::RequiresPaymentMethod);
        assert_eq!(pi.amount_received, 0);
        let err = pi.last_payment_error.unwrap();
        assert_eq!(err.decline_code.as_deref(), Some(decline));
        assert_eq!(err.error_type.as_deref(), Some("card_error"));
    }
    let events = verified(&f);
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event_type == "payment_intent.payment_failed")
            .count(),
        2
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event_type == "payment_intent.succeeded")
            .count(),
        3
    );

    let e =
        f.gw.create_payment_intent(
            &f.a,
            &payment(f.a, 300, Some("pm_card_nosuch"), None),
            &key("x"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, GatewayError::InvalidRequest { .. }), "{e:?}");
    let e =
        f.gw.create_payment_intent(
            &f.a,
            &payment(f.a, 49, Some("pm_card_visa"), None),
            &key("y"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, GatewayError::InvalidRequest { code: Some(c), .. } if c == "amount_too_small"),
        "{e:?}"
    );
}

#[tokio::test]
async fn three_d_secure_on_session_then_completed_or_failed() {
    let f = fixture();
    let pi =
        f.gw.create_payment_intent(
            &f.a,
            &payment(f.a, 1000, Some("pm_card_threeDSecureRequired"), None),
            &key("3ds-1"),
        )
        .await
        .unwrap();
    assert_eq!(pi.status, IntentStatus::RequiresAction);
    assert_eq!(
        pi.redirect_url(),
        Some(
            format!(
                "http://127.0.0.1:8080/_sandbox/payments/3ds/272060/{}",
                pi.id
            )
            .as_str()
        )
    );
    assert_eq!(
        f.gw.complete_3ds(&f.a, &pi.id, true).await.unwrap(),
        IntentStatus::Succeeded
    );
    let done = f.gw.retrieve_payment_intent(&f.a, &pi.id).await.unwrap();
    assert_eq!(done.amount_received, 1000);
    assert_eq!(done.next_action, None);
    // Only once.
    assert!(f.gw.complete_3ds(&f.a, &pi.id, true).await.is_err());

    let pi2 =
        f.gw.create_payment_intent(
            &f.a,
            &payment(f.a, 1000, Some("pm_card_threeDSecureRequired"), None),
            &key("3ds-2"),
        )
        .await
        .unwrap();
    assert_eq!(
        f.gw.complete_3ds(&f.a, &pi2.id, false).await.unwrap(),
        IntentStatus::RequiresPaymentMethod
    );
    let failed = f.gw.retrieve_payment_intent(&f.a, &pi2.id).await.unwrap();
    assert_eq!(
        failed.last_payment_error.unwrap().code.as_deref(),
        Some("payment_intent_authentication_failure")
    );
    // The citizen tries again with another card on the same intent.
    let again =
        f.gw.confirm_payment_intent(&f.a, &pi2.id, Some("pm_card_visa"), &key("3ds-2-retry"))
            .await
            .unwrap();
    assert_eq!(again.status, IntentStatus::Succeeded);

    let events = verified(&f);
    assert_eq!(
        types(&events),
        [
            "payment_intent.created",
            "payment_intent.requires_action",
            "payment_intent.succeeded",
            "payment_intent.created",
            "payment_intent.requires_action",
            "payment_intent.payment_failed",
            "payment_intent.succeeded",
        ]
    );
}

#[tokio::test]
async fn idempotent_double_create_gives_one_intent() {
    let f = fixture();
    let req = payment(f.a, 1500, Some("pm_card_visa"), None);
    let first =
        f.gw.create_payment_intent(&f.a, &req, &key("double"))
            .await
            .unwrap();
    let second =
        f.gw.create_payment_intent(&f.a, &req, &key("double"))
            .await
            .unwrap();
    assert_eq!(first, second);
    let list =
        f.gw.list_payment_intents(&f.a, &ListParams::default())
            .await
            .unwrap();
    assert_eq!(list.data.len(), 1);
    // The replay sends no second set of webhooks.
    assert_eq!(verified(&f).len(), 2);

    // Same key, other parameters.
    let other = payment(f.a, 1600, Some("pm_card_visa"), None);
    let e =
        f.gw.create_payment_intent(&f.a, &other, &key("double"))
            .await
            .unwrap_err();
    assert!(
        matches!(e, GatewayError::IdempotencyConflict { .. }),
        "{e:?}"
    );
    // Same key on another operation.
    let e =
        f.gw.confirm_payment_intent(&f.a, &first.id, None, &key("double"))
            .await
            .unwrap_err();
    assert!(
        matches!(e, GatewayError::IdempotencyConflict { .. }),
        "{e:?}"
    );
    // Keys are per tenant: the other tenant may use the same string.
    let b =
        f.gw.create_payment_intent(
            &f.b,
            &payment(f.b, 1500, Some("pm_card_visa"), None),
            &key("double"),
        )
        .await
        .unwrap();
    assert_ne!(b.id, first.id);

    // A decline is replayed as the same decline of the same intent.
    let declined = payment(f.a, 700, Some("pm_card_chargeDeclined"), None);
    let e1 =
        f.gw.create_payment_intent(&f.a, &declined, &key("dec"))
            .await
            .unwrap_err();
    let e2 =
        f.gw.create_payment_intent(&f.a, &declined, &key("dec"))
            .await
            .unwrap_err();
    assert_eq!(e1, e2);
    assert_eq!(
        f.gw.list_payment_intents(&f.a, &ListParams::default())
            .await
            .unwrap()
            .data
            .len(),
        2
    );
}

#[tokio::test]
async fn timeout_after_processing_then_retry_charges_once() {
    let f = fixture();
    let req = payment(f.a, 2000, Some("pm_card_visa"), None);

    f.gw.fail_next(SimulatedFault::TimeoutBeforeProcessing);
    let e =
        f.gw.create_payment_intent(&f.a, &req, &key("t1"))
            .await
            .unwrap_err();
    assert_eq!(e, GatewayError::Timeout);
    assert!(e.is_retryable());
    assert!(
        f.gw.list_payment_intents(&f.a, &ListParams::default())
            .await
            .unwrap()
            .data
            .is_empty()
    );

    f.gw.fail_next(SimulatedFault::TimeoutAfterProcessing);
    let e =
        f.gw.create_payment_intent(&f.a, &req, &key("t1"))
            .await
            .unwrap_err();
    assert_eq!(e, GatewayError::Timeout);
    // The charge went through although the answer was lost …
    let listed =
        f.gw.list_payment_intents(&f.a, &ListParams::default())
            .await
            .unwrap();
    assert_eq!(listed.data.len(), 1);
    assert_eq!(listed.data[0].status, IntentStatus::Succeeded);
    // … and the retry with the same key returns it instead of charging again.
    f.gw.fail_next(SimulatedFault::Unavailable);
    assert_eq!(
        f.gw.create_payment_intent(&f.a, &req, &key("t1"))
            .await
            .unwrap_err(),
        GatewayError::Upstream { status: 503 }
    );
    let pi =
        f.gw.create_payment_intent(&f.a, &req, &key("t1"))
            .await
            .unwrap();
    assert_eq!(pi.id, listed.data[0].id);
    assert_eq!(
        f.gw.list_payment_intents(&f.a, &ListParams::default())
            .await
            .unwrap()
            .data
            .len(),
        1
    );
    let succeeded = verified(&f)
        .into_iter()
        .filter(|e| e.event_type == "payment_intent.succeeded")
        .count();
    assert_eq!(succeeded, 1);
}

#[tokio::test]
async fn partial_then_full_refund_and_over_refund_refused() {
    let f = fixture();
    let pi =
        f.gw.create_payment_intent(
            &f.a,
            &payment(f.a, 1500, Some("pm_card_visa"), None),
            &key("p"),
        )
        .await
        .unwrap();
    f.sink.take();
    let refund = |amount: Option<i64>| NewRefund {
        payment_intent: pi.id.clone(),
        amount: amount.map(|a| Yen::new(a).unwrap()),
        reason: None,
        metadata: Default::default(),
    };
    let r1 =
        f.gw.create_refund(&f.a, &refund(Some(500)), &key("r1"))
            .await
            .unwrap();
    assert!(r1.id.starts_with("sbx_re_"));
    assert!(r1.sandbox);
    assert_eq!(r1.amount, 500);
    assert_eq!(r1.payment_intent.as_deref(), Some(pi.id.as_str()));
    // Replay of the same refund does not refund twice.
    assert_eq!(
        f.gw.create_refund(&f.a, &refund(Some(500)), &key("r1"))
            .await
            .unwrap(),
        r1
    );

    let e =
        f.gw.create_refund(&f.a, &refund(Some(1001)), &key("r2"))
            .await
            .unwrap_err();
    assert!(
        matches!(&e, GatewayError::InvalidRequest { code: Some(c), .. } if c == "amount_too_large"),
        "{e:?}"
    );
    // A refused request stores no result: the key can be used once the request is right.
    let r2 =
        f.gw.create_refund(&f.a, &refund(None), &key("r3"))
            .await
            .unwrap();
    assert_eq!(r2.amount, 1000);
    let e =
        f.gw.create_refund(&f.a, &refund(Some(1)), &key("r4"))
            .await
            .unwrap_err();
    assert!(
        matches!(&e, GatewayError::InvalidRequest { code: Some(c), .. } if c == "charge_already_refunded"),
        "{e:?}"
    );

    let charges: Vec<_> = verified(&f)
        .into_iter()
        .map(|e| {
            assert_eq!(e.event_type, "charge.refunded");
            match e.data.object {
                EventObject::Charge(c) => (c.amount_refunded, c.refunded),
                other => panic!("{other:?}"),
            }
        })
        .collect();
    assert_eq!(charges, [(500, false), (1500, true)]);

    // Nothing to refund on an unpaid intent.
    let unpaid =
        f.gw.create_payment_intent(&f.a, &payment(f.a, 1500, None, None), &key("u"))
            .await
            .unwrap();
    assert_eq!(unpaid.status, IntentStatus::RequiresPaymentMethod);
    let e =
        f.gw.create_refund(
            &f.a,
            &NewRefund {
                payment_intent: unpaid.id.clone(),
                ..refund(None)
            },
            &key("r5"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, GatewayError::InvalidRequest { .. }), "{e:?}");
}

#[tokio::test]
async fn saved_cards_setup_default_off_session_and_detach() {
    let f = fixture();
    let cus =
        f.gw.create_customer(
            &f.a,
            &NewCustomer {
                email: None,
                name: None,
                metadata: Default::default(),
            },
            &key("cus"),
        )
        .await
        .unwrap();
    assert!(cus.id.starts_with("sbx_cus_") && cus.sandbox && !cus.livemode);

    let seti =
        f.gw.create_setup_intent(
            &f.a,
            &NewSetupIntent {
                customer: cus.id.clone(),
                metadata: Default::default(),
            },
            &key("s1"),
        )
        .await
        .unwrap();
    assert!(seti.id.starts_with("sbx_seti_"));
    assert_eq!(seti.status, IntentStatus::RequiresPaymentMethod);
    let done =
        f.gw.confirm_setup_intent(&f.a, &seti.id, "pm_card_visa")
            .await
            .unwrap();
    assert_eq!(done.status, IntentStatus::Succeeded);
    let visa = done.payment_method.clone().unwrap();

    // A declining card cannot be saved.
    let seti2 =
        f.gw.create_setup_intent(
            &f.a,
            &NewSetupIntent {
                customer: cus.id.clone(),
                metadata: Default::default(),
            },
            &key("s2"),
        )
        .await
        .unwrap();
    let e =
        f.gw.confirm_setup_intent(&f.a, &seti2.id, "pm_card_chargeDeclined")
            .await
            .unwrap_err();
    assert!(
        matches!(&e, GatewayError::CardDeclined { decline_code: Some(d), .. } if d == "generic_decline"),
        "{e:?}"
    );

    // A 3-D Secure card is saved after the step.
    let seti3 =
        f.gw.create_setup_intent(
            &f.a,
            &NewSetupIntent {
                customer: cus.id.clone(),
                metadata: Default::default(),
            },
            &key("s3"),
        )
        .await
        .unwrap();
    let pending =
        f.gw.confirm_setup_intent(&f.a, &seti3.id, "pm_card_threeDSecureRequired")
            .await
            .unwrap();
    assert_eq!(pending.status, IntentStatus::RequiresAction);
    assert_eq!(
        f.gw.complete_3ds(&f.a, &seti3.id, true).await.unwrap(),
        IntentStatus::Succeeded
    );
    let three_ds = pending.payment_method.clone().unwrap();

    let cards = f.gw.list_payment_methods(&f.a, &cus.id).await.unwrap();
    let mut ids: Vec<_> = cards.iter().map(|c| c.id.clone()).collect();
    ids.sort();
    let mut want = vec![visa.clone(), three_ds.clone()];
    want.sort();
    assert_eq!(ids, want);
    for c in &cards {
        assert!(c.sandbox && c.last4.as_deref().is_some_and(|l| l.len() == 4));
        assert_eq!(c.customer.as_deref(), Some(cus.id.as_str()));
    }

    let updated =
        f.gw.set_default_payment_method(&f.a, &cus.id, &visa)
            .await
            .unwrap();
    assert_eq!(updated.default_payment_method(), Some(visa.as_str()));

    // Off-session with the saved card, as after a fee change.
    let mut req = payment(f.a, 800, Some(&visa), Some(&cus.id));
    req.off_session = true;
    let pi =
        f.gw.create_payment_intent(&f.a, &req, &key("off-1"))
            .await
            .unwrap();
    assert_eq!(pi.status, IntentStatus::Succeeded);
    // The 3-D Secure card off-session needs the citizen.
    let mut req = payment(f.a, 800, Some(&three_ds), Some(&cus.id));
    req.off_session = true;
    let e =
        f.gw.create_payment_intent(&f.a, &req, &key("off-2"))
            .await
            .unwrap_err();
    let GatewayError::AuthenticationRequired {
        payment_intent: Some(id),
    } = e
    else {
        panic!("{e:?}");
    };
    let pi = f.gw.retrieve_payment_intent(&f.a, &id).await.unwrap();
    assert_eq!(pi.status, IntentStatus::RequiresPaymentMethod);

    // A saved card of this customer cannot be used for another customer.
    let other =
        f.gw.create_customer(&f.a, &NewCustomer::default(), &key("cus2"))
            .await
            .unwrap();
    let e =
        f.gw.create_payment_intent(
            &f.a,
            &payment(f.a, 800, Some(&visa), Some(&other.id)),
            &key("steal"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, GatewayError::InvalidRequest { .. }), "{e:?}");

    // Detaching the default card clears the default.
    let detached = f.gw.detach_payment_method(&f.a, &visa).await.unwrap();
    assert_eq!(detached.customer, None);
    let c = f.gw.retrieve_customer(&f.a, &cus.id).await.unwrap();
    assert_eq!(c.default_payment_method(), None);
    let cards = f.gw.list_payment_methods(&f.a, &cus.id).await.unwrap();
    assert_eq!(
        cards.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        [three_ds.as_str()]
    );
    assert!(f.gw.detach_payment_method(&f.a, &visa).await.is_err());

    let events = verified(&f);
    let t = types(&events);
    for want in [
        "customer.created",
        "setup_intent.succeeded",
        "setup_intent.setup_failed",
        "payment_method.attached",
        "customer.updated",
        "payment_intent.payment_failed",
        "payment_method.detached",
    ] {
        assert!(t.contains(&want), "{want} missing in {t:?}");
    }
    assert_eq!(
        t.iter()
            .filter(|x| **x == "payment_method.attached")
            .count(),
        2
    );
}

#[tokio::test]
async fn insufficient_funds_card_saves_but_cannot_pay() {
    let f = fixture();
    let cus =
        f.gw.create_customer(&f.a, &NewCustomer::default(), &key("c"))
            .await
            .unwrap();
    let seti =
        f.gw.create_setup_intent(
            &f.a,
            &NewSetupIntent {
                customer: cus.id.clone(),
                metadata: Default::default(),
            },
            &key("s"),
        )
        .await
        .unwrap();
    let done =
        f.gw.confirm_setup_intent(&f.a, &seti.id, "pm_card_chargeDeclinedInsufficientFunds")
            .await
            .unwrap();
    let pm = done.payment_method.unwrap();
    let mut req = payment(f.a, 800, Some(&pm), Some(&cus.id));
    req.off_session = true;
    let e =
        f.gw.create_payment_intent(&f.a, &req, &key("p"))
            .await
            .unwrap_err();
    assert!(
        matches!(&e, GatewayError::CardDeclined { decline_code: Some(d), .. } if d == "insufficient_funds"),
        "{e:?}"
    );
}

#[tokio::test]
async fn pay_later_save_card_and_cancel() {
    let f = fixture();
    let cus =
        f.gw.create_customer(&f.a, &NewCustomer::default(), &key("c"))
            .await
            .unwrap();
    // Created without a card (the SPA confirms later), then confirmed with a saved-for-later card.
    let mut req = payment(f.a, 1200, None, Some(&cus.id));
    req.save_payment_method = true;
    let pi =
        f.gw.create_payment_intent(&f.a, &req, &key("p"))
            .await
            .unwrap();
    assert_eq!(pi.status, IntentStatus::RequiresPaymentMethod);
    let paid =
        f.gw.confirm_payment_intent(&f.a, &pi.id, Some("pm_card_jcb"), &key("pc"))
            .await
            .unwrap();
    assert_eq!(paid.status, IntentStatus::Succeeded);
    let cards = f.gw.list_payment_methods(&f.a, &cus.id).await.unwrap();
    assert_eq!(cards.len(), 1);
    assert_eq!(cards[0].brand.as_deref(), Some("jcb"));
    assert!(f.gw.cancel_payment_intent(&f.a, &pi.id).await.is_err());

    let pending =
        f.gw.create_payment_intent(&f.a, &payment(f.a, 1200, None, None), &key("p2"))
            .await
            .unwrap();
    let canceled = f.gw.cancel_payment_intent(&f.a, &pending.id).await.unwrap();
    assert_eq!(canceled.status, IntentStatus::Canceled);
    let e =
        f.gw.confirm_payment_intent(&f.a, &pending.id, Some("pm_card_visa"), &key("p3"))
            .await
            .unwrap_err();
    assert!(matches!(e, GatewayError::InvalidRequest { .. }), "{e:?}");
    let events = verified(&f);
    assert!(types(&events).contains(&"payment_intent.canceled"));
}

#[tokio::test]
async fn events_are_listed_paged_and_verifiable_even_when_webhooks_are_lost() {
    let f = fixture();
    f.sink.drop_next(1);
    let pi =
        f.gw.create_payment_intent(
            &f.a,
            &payment(f.a, 1500, Some("pm_card_visa"), None),
            &key("a"),
        )
        .await
        .unwrap();
    assert_eq!(f.sink.dropped(), 1);
    f.clock.advance(SignedDuration::from_secs(60));
    let later: Timestamp = f.clock.now();
    f.gw.create_payment_intent(
        &f.a,
        &payment(f.a, 700, Some("pm_card_chargeDeclined"), None),
        &key("b"),
    )
    .await
    .unwrap_err();
    f.gw.create_payment_intent(
        &f.b,
        &payment(f.b, 900, Some("pm_card_visa"), None),
        &key("c"),
    )
    .await
    .unwrap();

    // Delivered: 1 of tenant A's first pair (one was lost), 2 of the decline, 2 of tenant B.
    let delivered = f.sink.take();
    assert_eq!(delivered.len(), 5);
    // Each delivery verifies only with its own tenant's secret.
    for d in &delivered {
        let (own, other) = if d.tenant == f.a {
            (WHSEC_A, WHSEC_B)
        } else {
            (WHSEC_B, WHSEC_A)
        };
        assert!(
            webhook::verify(
                own,
                d.signature(),
                &d.body,
                f.clock.now(),
                DEFAULT_TOLERANCE
            )
            .is_ok()
        );
        assert_eq!(
            webhook::verify(
                other,
                d.signature(),
                &d.body,
                f.clock.now(),
                DEFAULT_TOLERANCE
            ),
            Err(WebhookError::NoMatchingSignature)
        );
    }

    // Reconciliation finds the lost one: page through tenant A's events, 1 at a time.
    let mut seen = Vec::new();
    let mut params = ListParams {
        limit: 1,
        ..ListParams::default()
    };
    loop {
        let page = f.gw.list_events(&f.a, &params).await.unwrap();
        assert!(page.data.len() <= 1);
        seen.extend(page.data.iter().cloned());
        if !page.has_more {
            break;
        }
        params.starting_after = page.data.last().map(|e| e.id.clone());
    }
    assert_eq!(seen.len(), 4);
    let mut ids: Vec<_> = seen.iter().map(|e| e.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "no duplicates across pages");
    // Newest first.
    assert!(seen.windows(2).all(|w| w[0].created >= w[1].created));
    assert!(
        seen.iter()
            .any(|e| e.event_type == "payment_intent.succeeded"
                && matches!(&e.data.object, EventObject::PaymentIntent(p) if p.id == pi.id))
    );

    let since =
        f.gw.list_events(
            &f.a,
            &ListParams {
                created_gte: Some(later.as_second()),
                ..ListParams::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        types(&since.data),
        ["payment_intent.payment_failed", "payment_intent.created"]
    );
    let since_pis =
        f.gw.list_payment_intents(
            &f.a,
            &ListParams {
                created_gte: Some(later.as_second()),
                ..ListParams::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(since_pis.data.len(), 1);
    assert_eq!(
        since_pis.data[0].status,
        IntentStatus::RequiresPaymentMethod
    );

    // A redelivery carries the same event (a receiver drops it by id).
    let lost = seen
        .iter()
        .find(|e| e.event_type == "payment_intent.created" && e.created < later.as_second())
        .unwrap();
    f.gw.redeliver(&f.a, &lost.id).await.unwrap();
    let again = verified(&f);
    assert_eq!(again.len(), 1);
    assert_eq!(&again[0], lost);
}

#[tokio::test]
async fn tenants_do_not_see_each_other() {
    let f = fixture();
    let pi =
        f.gw.create_payment_intent(
            &f.a,
            &payment(f.a, 1500, Some("pm_card_visa"), None),
            &key("a"),
        )
        .await
        .unwrap();
    let e =
        f.gw.retrieve_payment_intent(&f.b, &pi.id)
            .await
            .unwrap_err();
    assert!(matches!(e, GatewayError::NotFound { .. }), "{e:?}");
    let e =
        f.gw.create_refund(
            &f.b,
            &NewRefund {
                payment_intent: pi.id.clone(),
                amount: None,
                reason: None,
                metadata: Default::default(),
            },
            &key("r"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, GatewayError::NotFound { .. }), "{e:?}");
    assert!(
        f.gw.list_payment_intents(&f.b, &ListParams::default())
            .await
            .unwrap()
            .data
            .is_empty()
    );
    // A payment tagged for one tenant cannot be created through another.
    let e =
        f.gw.create_payment_intent(
            &f.b,
            &payment(f.a, 1500, Some("pm_card_visa"), None),
            &key("x"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, GatewayError::InvalidRequest { .. }), "{e:?}");
    // A tenant without a gateway account is refused, as by the real adapter.
    let unknown = t("011002");
    let e =
        f.gw.create_payment_intent(
            &unknown,
            &payment(unknown, 1500, Some("pm_card_visa"), None),
            &key("u"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, GatewayError::Config(_)), "{e:?}");
}

#[tokio::test]
async fn state_survives_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new("2026-12-01T00:00:00Z".parse().unwrap()));
    let sink = Arc::new(MemorySink::new());
    let a = t("272060");
    let (pi, cus, pm) = {
        let gw = open(dir.path(), clock.clone(), sink.clone());
        let cus = gw
            .create_customer(&a, &NewCustomer::default(), &key("c"))
            .await
            .unwrap();
        let seti = gw
            .create_setup_intent(
                &a,
                &NewSetupIntent {
                    customer: cus.id.clone(),
                    metadata: Default::default(),
                },
                &key("s"),
            )
            .await
            .unwrap();
        let pm = gw
            .confirm_setup_intent(&a, &seti.id, "pm_card_visa")
            .await
            .unwrap()
            .payment_method
            .unwrap();
        let pi = gw
            .create_payment_intent(&a, &payment(a, 1500, Some(&pm), Some(&cus.id)), &key("p"))
            .await
            .unwrap();
        (pi, cus, pm)
    };
    // A new process on the same data directory.
    let gw = open(dir.path(), clock.clone(), sink.clone());
    assert_eq!(gw.retrieve_payment_intent(&a, &pi.id).await.unwrap(), pi);
    assert_eq!(gw.retrieve_customer(&a, &cus.id).await.unwrap().id, cus.id);
    assert_eq!(
        gw.list_payment_methods(&a, &cus.id)
            .await
            .unwrap()
            .iter()
            .map(|p| p.id.as_str())
            .collect::<Vec<_>>(),
        [pm.as_str()]
    );
    // Idempotency records survive too: the retry after a restart is not a second charge.
    let replay = gw
        .create_payment_intent(&a, &payment(a, 1500, Some(&pm), Some(&cus.id)), &key("p"))
        .await
        .unwrap();
    assert_eq!(replay.id, pi.id);
    let refund = gw
        .create_refund(
            &a,
            &NewRefund {
                payment_intent: pi.id.clone(),
                amount: Some(Yen::new(300).unwrap()),
                reason: None,
                metadata: Default::default(),
            },
            &key("r"),
        )
        .await
        .unwrap();
    assert_eq!(refund.amount, 300);
    assert_eq!(
        gw.list_payment_intents(&a, &ListParams::default())
            .await
            .unwrap()
            .data
            .len(),
        1
    );
    let events = gw.list_events(&a, &ListParams::default()).await.unwrap();
    assert!(types(&events.data).contains(&"payment_intent.succeeded"));
    assert!(types(&events.data).contains(&"charge.refunded"));
}

/// Delegates to the SQLite store but yields before every read and write, so that two calls
/// joined in one task interleave between their read and their transaction.
struct Yielding(Arc<dyn ItemStore>);

#[async_trait::async_trait]
impl ItemStore for Yielding {
    async fn put(&self, item: Item, condition: Condition) -> PortResult<()> {
        tokio::task::yield_now().await;
        self.0.put(item, condition).await
    }
    async fn get_batch(&self, keys: &[Key]) -> PortResult<Vec<Option<Item>>> {
        self.0.get_batch(keys).await
    }
    async fn get(&self, key: &Key) -> PortResult<Option<Item>> {
        tokio::task::yield_now().await;
        self.0.get(key).await
    }
    async fn delete(&self, key: &Key, condition: Condition) -> PortResult<()> {
        self.0.delete(key, condition).await
    }
    async fn query(&self, request: QueryRequest) -> PortResult<Page> {
        self.0.query(request).await
    }
    async fn transact(&self, ops: Vec<TxOp>) -> PortResult<()> {
        tokio::task::yield_now().await;
        self.0.transact(ops).await
    }
    async fn increment(&self, key: &Key, by: i64) -> PortResult<i64> {
        self.0.increment(key, by).await
    }
    async fn put_batch(&self, items: Vec<Item>) -> PortResult<()> {
        self.0.put_batch(items).await
    }
}

#[tokio::test]
async fn concurrent_payments_on_one_saved_card_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new("2026-12-01T00:00:00Z".parse().unwrap()));
    let backend = EmbeddedBackend::open(dir.path(), "http://127.0.0.1:1", clock.clone()).unwrap();
    let gw = SandboxGateway::new(
        Arc::new(Yielding(backend.items())),
        clock,
        Arc::new(accounts()),
        Arc::new(MemorySink::new()),
        "http://127.0.0.1:8080",
    );
    let a = t("272060");
    let cus = gw
        .create_customer(&a, &NewCustomer::default(), &key("c"))
        .await
        .unwrap();
    let seti = gw
        .create_setup_intent(
            &a,
            &NewSetupIntent {
                customer: cus.id.clone(),
                metadata: Default::default(),
            },
            &key("s"),
        )
        .await
        .unwrap();
    let pm = gw
        .confirm_setup_intent(&a, &seti.id, "pm_card_visa")
        .await
        .unwrap()
        .payment_method
        .unwrap();
    let mut req = payment(a, 800, Some(&pm), Some(&cus.id));
    req.off_session = true;
    let (k1, k2) = (key("p1"), key("p2"));
    let (x, y) = tokio::join!(
        gw.create_payment_intent(&a, &req, &k1),
        gw.create_payment_intent(&a, &req, &k2),
    );
    assert_eq!(x.unwrap().status, IntentStatus::Succeeded);
    assert_eq!(y.unwrap().status, IntentStatus::Succeeded);

    // The same key twice at once: one intent, both callers get it.
    let k3 = key("p3");
    let (x, y) = tokio::join!(
        gw.create_payment_intent(&a, &req, &k3),
        gw.create_payment_intent(&a, &req, &k3),
    );
    assert_eq!(x.unwrap().id, y.unwrap().id);
    assert_eq!(
        gw.list_payment_intents(&a, &ListParams::default())
            .await
            .unwrap()
            .data
            .len(),
        3
    );
}
