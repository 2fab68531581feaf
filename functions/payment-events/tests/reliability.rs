//! Payment reliability on both adapter sets (SQLite files; DynamoDB and SQS on moto): double
//! clicks and retried requests charge once, gateway time-outs are retried with the same
//! idempotency key, redelivered and out-of-order webhooks and lost ones end in the gateway's
//! state, unpaid payments at submission time out, fee changes charge and refund the
//! difference. The gateway is the sandbox (the same port as Stripe's adapter) over the same
//! item store; its webhooks are kept in memory and fed to the `payment-events` handler in
//! whatever order a test wants.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;
use madoguchi_applications::keys::{APP_SK, app_pk};
use madoguchi_applications::{
    ApplicationRecord, ApplicationStatus, NotifyMessage, application_item, history_item,
};
use madoguchi_domain::Yen;
use madoguchi_domain::form::{FeeBreakdown, FeeItem, PaymentTiming};
use madoguchi_domain::ids::ApplicationId;
use madoguchi_domain::tenant::TenantId;
use madoguchi_payment_events::{EventsState, Outcome, handle_message};
use madoguchi_payment_gateway::{
    GatewayCredentials, ListParams, MemorySink, PaymentGateway, SandboxGateway, Secret,
    SimulatedFault, StaticAccounts,
};
use madoguchi_payment_ledger::keys::{journal_pk, open_key};
use madoguchi_payment_ledger::{
    Applied, ChargeStatus, EventMessage, Ledger, LedgerStatus, PayError, PayRequest,
    PaymentSettings, Payments, RefundState, japan_day, ledger_ops,
};
use madoguchi_ports::{Clock, Key, QueryRequest, Queue, TxOp};
use madoguchi_tests::{Env, QueuePair, contract_tests};

const OWNER: &str = "a-0123456789abcdef0123456789abcdef";

struct Fixture {
    tenant: TenantId,
    payments: Payments,
    sandbox: Arc<SandboxGateway>,
    sink: Arc<MemorySink>,
    notify: QueuePair,
    events: EventsState,
    env: Env,
}

async fn fixture(env: Env) -> Fixture {
    let tenant = TenantId::parse("272060").unwrap();
    let items = env.items().await;
    let notify = env.queue("notify", Duration::from_secs(30), 5).await;
    let accounts = Arc::new(StaticAccounts::new().with(
        tenant,
        GatewayCredentials {
            secret_key: Secret::new("sk_test_reliability"),
            webhook_secret: Secret::new("whsec_test_reliability"),
        },
    ));
    let sink = Arc::new(MemorySink::new());
    let sandbox = Arc::new(SandboxGateway::new(
        items.clone(),
        env.clock.clone(),
        accounts,
        sink.clone(),
        "http://127.0.0.1:9",
    ));
    let payments = Payments {
        items,
        gateway: sandbox.clone(),
        notify: notify.queue.clone(),
        clock: env.clock.clone(),
        settings: Arc::new(PaymentSettings {
            environment: "test".into(),
            return_url: None,
        }),
    };
    let events = EventsState {
        payments: payments.clone(),
        tenant,
    };
    Fixture {
        tenant,
        payments,
        sandbox,
        sink,
        notify,
        events,
        env,
    }
}

fn yen(v: i64) -> Yen {
    Yen::new(v).unwrap()
}

/// An application as the submission stores it, with its ledger: `fee` yen paid at
/// submission (status 支払待ち, due in 30 minutes), or proposed for after acceptance (受付).
async fn application(f: &Fixture, timing: PaymentTiming, fee: i64) -> ApplicationId {
    let id = ApplicationId::new(uuid::Uuid::now_v7());
    let now = f.env.clock.now();
    let pay_now = timing == PaymentTiming::AtSubmission && fee > 0;
    let record = ApplicationRecord {
        id,
        tenant: f.tenant.as_str().to_owned(),
        receipt: format!("R{}", &id.to_string()[..8]),
        slug: "jumin".into(),
        form_title: "住民票の写しの交付申請".into(),
        form_version: 1,
        owner: OWNER.into(),
        status: if pay_now {
            ApplicationStatus::PaymentPending
        } else {
            ApplicationStatus::Received
        },
        submitted_at: now.to_string(),
        answers: BTreeMap::new(),
        summary: Vec::new(),
        attachments: Vec::new(),
        email: Some("taro@example.jp".into()),
        blind_indexes: BTreeMap::new(),
        notify: vec!["received".into()],
        applicant_name: None,
        correction: None,
        completed_at: None,
        timeline: Vec::new(),
        signature: None,
    };
    let breakdown = FeeBreakdown {
        items: vec![FeeItem {
            label: "住民票の写し".into(),
            unit_price: yen(fee),
            quantity: 1,
            amount: yen(fee),
        }],
        total: yen(fee),
    };
    let mut ledger = Ledger::new(
        id,
        f.tenant.as_str(),
        "jumin",
        &record.receipt,
        &record.form_title,
        OWNER,
        timing,
        Some(breakdown),
        &now.to_string(),
    );
    if pay_now {
        ledger.expires_at = Some((now + SignedDuration::from_mins(30)).to_string());
    }
    let mut ops = vec![
        TxOp::Put(
            application_item(&f.tenant, &record),
            madoguchi_ports::Condition::NotExists,
        ),
        TxOp::Put(
            history_item(&f.tenant, &record),
            madoguchi_ports::Condition::NotExists,
        ),
    ];
    ops.extend(ledger_ops(&f.tenant, None, &ledger, None));
    f.payments.items.transact(ops).await.unwrap();
    id
}

async fn ledger(f: &Fixture, id: &ApplicationId) -> Ledger {
    f.payments.load(&f.tenant, id).await.unwrap().unwrap().0
}

/// The citizen starts paying with a card that needs 3-D Secure (and has not finished it).
async fn start_3ds(f: &Fixture, id: &ApplicationId) -> madoguchi_payment_ledger::PayOutcome {
    f.payments
        .pay(
            &f.tenant,
            id,
            OWNER,
            None,
            card("pm_card_threeDSecureRequired"),
        )
        .await
        .unwrap()
}

async fn record(f: &Fixture, id: &ApplicationId) -> ApplicationRecord {
    let item = f
        .payments
        .items
        .get(&Key::new(app_pk(&f.tenant, id), APP_SK))
        .await
        .unwrap()
        .unwrap();
    serde_json::from_value(item.data).unwrap()
}

async fn status(f: &Fixture, id: &ApplicationId) -> ApplicationStatus {
    record(f, id).await.status
}

fn card(pm: &str) -> PayRequest {
    PayRequest {
        payment_method: Some(pm.into()),
        ..PayRequest::default()
    }
}

/// Payment intents the gateway holds for this application.
async fn intents_at_gateway(f: &Fixture, id: &ApplicationId) -> usize {
    f.sandbox
        .list_payment_intents(&f.tenant, &ListParams::default())
        .await
        .unwrap()
        .data
        .iter()
        .filter(|pi| pi.metadata.get("application") == Some(&id.to_string()))
        .count()
}

/// Feeds webhook bodies to the `payment-events` handler as the queue would.
async fn deliver(f: &Fixture, bodies: &[Vec<u8>]) -> Vec<Outcome> {
    let mut out = Vec::new();
    for body in bodies {
        let message = serde_json::to_string(&EventMessage {
            tenant: f.tenant.as_str().to_owned(),
            event: serde_json::from_slice(body).unwrap(),
        })
        .unwrap();
        out.push(handle_message(&f.events, &message).await.unwrap());
    }
    out
}

async fn notices(q: &Arc<dyn Queue>) -> Vec<NotifyMessage> {
    let mut out = Vec::new();
    loop {
        let got = q.receive(10, Duration::from_millis(200)).await.unwrap();
        if got.is_empty() {
            return out;
        }
        let receipts: Vec<String> = got.iter().map(|m| m.receipt.clone()).collect();
        out.extend(
            got.iter()
                .map(|m| serde_json::from_str::<NotifyMessage>(&m.body).unwrap()),
        );
        q.delete(&receipts).await.unwrap();
    }
}

// ---- tests ---------------------------------------------------------------------------

async fn double_clicks_charge_once(env: Env) {
    let f = fixture(env).await;
    let id = application(&f, PaymentTiming::AtSubmission, 900).await;
    let (a, b) = tokio::join!(
        f.payments
            .pay(&f.tenant, &id, OWNER, None, card("pm_card_visa")),
        f.payments
            .pay(&f.tenant, &id, OWNER, None, card("pm_card_visa")),
    );
    assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
    // A third request after the payment (a retried request) answers the payment.
    let c = f
        .payments
        .pay(&f.tenant, &id, OWNER, None, card("pm_card_visa"))
        .await
        .unwrap();
    assert_eq!(c.ledger.status(), LedgerStatus::Paid);
    let l = ledger(&f, &id).await;
    assert_eq!(l.charges.len(), 1, "{:?}", l.charges);
    assert_eq!(l.paid(), yen(900));
    assert_eq!(intents_at_gateway(&f, &id).await, 1);
    assert_eq!(status(&f, &id).await, ApplicationStatus::Received);
    // The receipt mail goes out once paid (the form asks for it).
    let sent = notices(&f.notify.queue).await;
    assert_eq!(
        sent.iter().filter(|n| n.event == "received").count(),
        1,
        "{sent:?}"
    );
}

async fn gateway_timeouts_are_retried_with_the_same_key(env: Env) {
    let f = fixture(env).await;
    for fault in [
        SimulatedFault::TimeoutAfterProcessing,
        SimulatedFault::TimeoutBeforeProcessing,
    ] {
        let id = application(&f, PaymentTiming::AtSubmission, 300).await;
        f.sandbox.fail_next(fault);
        let first = f
            .payments
            .pay(&f.tenant, &id, OWNER, None, card("pm_card_visa"))
            .await;
        assert!(matches!(first, Err(PayError::Unavailable(_))), "{first:?}");
        assert_eq!(
            ledger(&f, &id).await.charges[0].status,
            ChargeStatus::Creating
        );
        // The citizen tries again: the same charge, the same key, one payment.
        let again = f
            .payments
            .pay(&f.tenant, &id, OWNER, None, card("pm_card_visa"))
            .await
            .unwrap();
        assert_eq!(again.ledger.status(), LedgerStatus::Paid, "{fault:?}");
        assert_eq!(again.ledger.charges.len(), 1);
        assert_eq!(intents_at_gateway(&f, &id).await, 1, "{fault:?}");
        assert_eq!(status(&f, &id).await, ApplicationStatus::Received);
    }
}

async fn redelivered_and_out_of_order_webhooks_end_paid(env: Env) {
    let f = fixture(env).await;
    let id = application(&f, PaymentTiming::AtSubmission, 600).await;
    let started = start_3ds(&f, &id).await;
    assert_eq!(started.ledger.status(), LedgerStatus::InProgress);
    let intent = started.intent.unwrap();
    assert!(intent.redirect_url().is_some());
    f.sandbox
        .complete_3ds(&f.tenant, &intent.id, true)
        .await
        .unwrap();
    let mut bodies: Vec<Vec<u8>> = f.sink.take().into_iter().map(|d| d.body).collect();
    assert!(bodies.len() >= 2, "requires_action and succeeded at least");
    // Newest first, then everything again.
    bodies.reverse();
    let again = bodies.clone();
    bodies.extend(again);
    let outcomes = deliver(&f, &bodies).await;
    let n = outcomes.len() / 2;
    assert!(
        outcomes[n..]
            .iter()
            .all(|o| *o == Outcome::Applied(Applied::Duplicate)),
        "{outcomes:?}"
    );
    assert!(outcomes.contains(&Outcome::Applied(Applied::Changed)));
    let l = ledger(&f, &id).await;
    assert_eq!(l.status(), LedgerStatus::Paid);
    assert_eq!(
        l.history
            .iter()
            .filter(|h| h.kind == "charge_succeeded")
            .count(),
        1
    );
    assert_eq!(status(&f, &id).await, ApplicationStatus::Received);
    // Not in the open index any more.
    assert!(
        f.payments
            .items
            .get(&open_key(&f.tenant, &id))
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_lost_webhook_is_fixed_by_reconciliation(env: Env) {
    let f = fixture(env).await;
    let id = application(&f, PaymentTiming::AtSubmission, 300).await;
    f.sink.drop_next(100);
    let started = start_3ds(&f, &id).await;
    let intent = started.intent.unwrap();
    f.sandbox
        .complete_3ds(&f.tenant, &intent.id, true)
        .await
        .unwrap();
    assert!(f.sink.take().is_empty());
    assert_eq!(ledger(&f, &id).await.status(), LedgerStatus::InProgress);
    assert_eq!(status(&f, &id).await, ApplicationStatus::PaymentPending);
    let report = f.payments.reconcile(&f.tenant).await;
    assert_eq!(report.errors, 0, "{report:?}");
    assert!(report.ledgers_fixed >= 1, "{report:?}");
    assert_eq!(ledger(&f, &id).await.status(), LedgerStatus::Paid);
    assert_eq!(status(&f, &id).await, ApplicationStatus::Received);
    // A second run finds nothing to do.
    let second = f.payments.reconcile(&f.tenant).await;
    assert_eq!(second.ledgers_fixed, 0, "{second:?}");
}

async fn an_unpaid_payment_times_out_and_the_citizen_is_told(env: Env) {
    let f = fixture(env).await;
    let id = application(&f, PaymentTiming::AtSubmission, 300).await;
    // The citizen starts a 3-D Secure payment and walks away.
    let started = start_3ds(&f, &id).await;
    let intent = started.intent.unwrap().id;
    // Not yet: nothing happens before the time.
    f.payments.reconcile(&f.tenant).await;
    assert_eq!(status(&f, &id).await, ApplicationStatus::PaymentPending);
    f.env.clock.advance(SignedDuration::from_mins(31));
    let report = f.payments.reconcile(&f.tenant).await;
    assert_eq!(report.cancelled, 1, "{report:?}");
    assert_eq!(status(&f, &id).await, ApplicationStatus::Cancelled);
    let l = ledger(&f, &id).await;
    assert_eq!(l.status(), LedgerStatus::Cancelled);
    assert_eq!(l.charges[0].status, ChargeStatus::Canceled);
    let at_gateway = f
        .sandbox
        .retrieve_payment_intent(&f.tenant, &intent)
        .await
        .unwrap();
    assert_eq!(at_gateway.status.as_str(), "canceled");
    let sent = notices(&f.notify.queue).await;
    assert!(
        sent.iter()
            .any(|n| n.event == "payment_cancelled" && n.application == id),
        "{sent:?}"
    );
    // Nothing more can be paid.
    let late = f
        .payments
        .pay(&f.tenant, &id, OWNER, None, card("pm_card_visa"))
        .await;
    assert!(matches!(late, Err(PayError::Cancelled)), "{late:?}");
}

async fn fee_changes_ask_for_and_refund_the_difference(env: Env) {
    let f = fixture(env).await;
    let id = application(&f, PaymentTiming::AfterAcceptance, 0).await;
    let record = record(&f, &id).await;
    let customer = f
        .payments
        .ensure_customer(&f.tenant, OWNER, Some("taro@example.jp"))
        .await
        .unwrap();
    // Made once: a second call finds the same customer.
    assert_eq!(
        f.payments
            .ensure_customer(&f.tenant, OWNER, None)
            .await
            .unwrap(),
        customer
    );
    let l = f
        .payments
        .set_fee(
            &f.tenant,
            &record,
            PaymentTiming::AfterAcceptance,
            yen(1000),
            "2通",
        )
        .await
        .unwrap();
    assert_eq!(l.due(), yen(1000));
    let first = f
        .payments
        .pay(
            &f.tenant,
            &id,
            OWNER,
            Some(customer.clone()),
            PayRequest {
                payment_method: Some("pm_card_visa".into()),
                save_card: true,
                use_saved_card: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(first.ledger.paid(), yen(1000));
    // The card kept while paying became the account's default (it had none).
    let saved = f
        .sandbox
        .retrieve_customer(&f.tenant, &customer)
        .await
        .unwrap()
        .invoice_settings
        .default_payment_method;
    let cards = f
        .sandbox
        .list_payment_methods(&f.tenant, &customer)
        .await
        .unwrap();
    assert_eq!(cards.len(), 1);
    assert_eq!(saved.as_deref(), Some(cards[0].id.as_str()));
    f.payments
        .set_fee(
            &f.tenant,
            &record,
            PaymentTiming::AfterAcceptance,
            yen(1500),
            "3通",
        )
        .await
        .unwrap();
    // The difference with the saved card, not entered again.
    let second = f
        .payments
        .pay(
            &f.tenant,
            &id,
            OWNER,
            Some(customer.clone()),
            PayRequest {
                use_saved_card: true,
                ..PayRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(second.ledger.paid(), yen(1500));
    assert_eq!(second.ledger.charges[1].amount, yen(500));
    let lowered = f
        .payments
        .set_fee(
            &f.tenant,
            &record,
            PaymentTiming::AfterAcceptance,
            yen(700),
            "1通取りやめ",
        )
        .await
        .unwrap();
    assert_eq!(lowered.net(), yen(700));
    assert!(
        lowered
            .refunds
            .iter()
            .all(|r| matches!(r.status, RefundState::Pending | RefundState::Succeeded)),
        "{:?}",
        lowered.refunds
    );
    assert_eq!(lowered.refunded(), yen(800));
    // The journal of the day: two charges and the refunds.
    let day = japan_day(&f.env.clock.now().to_string());
    let page = f
        .payments
        .items
        .query(QueryRequest::partition(journal_pk(
            &f.tenant, "jumin", &day,
        )))
        .await
        .unwrap();
    let kinds: Vec<String> = page
        .items
        .iter()
        .map(|i| i.data["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "charge").count(),
        2,
        "{kinds:?}"
    );
    let sent = notices(&f.notify.queue).await;
    assert_eq!(
        sent.iter()
            .filter(|n| n.event == "payment_requested")
            .count(),
        2,
        "{sent:?}"
    );
    assert!(sent.iter().any(|n| n.event == "refunded"));
}

async fn a_declined_card_fails_and_another_card_pays(env: Env) {
    let f = fixture(env).await;
    let id = application(&f, PaymentTiming::AtSubmission, 300).await;
    let declined = f
        .payments
        .pay(
            &f.tenant,
            &id,
            OWNER,
            None,
            card("pm_card_chargeDeclinedInsufficientFunds"),
        )
        .await;
    match declined {
        Err(PayError::Declined { code }) => assert_eq!(code, "insufficient_funds"),
        other => panic!("{other:?}"),
    }
    let l = ledger(&f, &id).await;
    assert_eq!(l.charges[0].status, ChargeStatus::Failed);
    assert_eq!(l.status(), LedgerStatus::Unpaid);
    assert_eq!(status(&f, &id).await, ApplicationStatus::PaymentPending);
    let paid = f
        .payments
        .pay(&f.tenant, &id, OWNER, None, card("pm_card_jcb"))
        .await
        .unwrap();
    assert_eq!(paid.ledger.status(), LedgerStatus::Paid);
    assert_eq!(paid.ledger.paid(), yen(300));
    assert_eq!(status(&f, &id).await, ApplicationStatus::Received);
}

async fn a_refund_whose_answer_was_lost_is_sent_again_once(env: Env) {
    let f = fixture(env).await;
    let id = application(&f, PaymentTiming::AtSubmission, 1000).await;
    f.payments
        .pay(&f.tenant, &id, OWNER, None, card("pm_card_visa"))
        .await
        .unwrap();
    let record = record(&f, &id).await;
    f.sandbox.fail_next(SimulatedFault::TimeoutAfterProcessing);
    let l = f
        .payments
        .set_fee(
            &f.tenant,
            &record,
            PaymentTiming::AfterAcceptance,
            yen(600),
            "",
        )
        .await
        .unwrap();
    assert_eq!(l.refunds.len(), 1);
    assert_eq!(l.refunds[0].status, RefundState::Creating);
    f.payments.reconcile(&f.tenant).await;
    let l = ledger(&f, &id).await;
    assert_eq!(l.refunds.len(), 1);
    assert_ne!(l.refunds[0].status, RefundState::Creating);
    assert_eq!(l.net(), yen(600));
    // The gateway refunded once: one `charge.refunded`, 400 of the charge, not 800.
    let intent = l.charges[0].intent.clone().unwrap();
    let events = f
        .sandbox
        .list_events(&f.tenant, &ListParams::default())
        .await
        .unwrap()
        .data;
    let refunded: Vec<i64> = events
        .iter()
        .filter_map(|e| match &e.data.object {
            madoguchi_payment_gateway::EventObject::Charge(c)
                if e.event_type == "charge.refunded"
                    && c.payment_intent.as_deref() == Some(intent.as_str()) =>
            {
                Some(c.amount_refunded)
            }
            _ => None,
        })
        .collect();
    assert_eq!(refunded, vec![400], "{refunded:?}");
}

async fn a_withdrawn_application_stops_its_payment(env: Env) {
    let f = fixture(env).await;
    let id = application(&f, PaymentTiming::AtSubmission, 300).await;
    let intent = start_3ds(&f, &id).await.intent.unwrap().id;
    // The citizen withdraws (取下げ) while the 3-D Secure step is open.
    let mut withdrawn = record(&f, &id).await;
    withdrawn.status = ApplicationStatus::Withdrawn;
    f.payments
        .items
        .put(
            application_item(&f.tenant, &withdrawn),
            madoguchi_ports::Condition::None,
        )
        .await
        .unwrap();
    let report = f.payments.reconcile(&f.tenant).await;
    assert_eq!(report.cancelled, 1, "{report:?}");
    let at_gateway = f
        .sandbox
        .retrieve_payment_intent(&f.tenant, &intent)
        .await
        .unwrap();
    assert_eq!(at_gateway.status.as_str(), "canceled");
    assert_eq!(ledger(&f, &id).await.status(), LedgerStatus::Cancelled);
    // Still 取下げ (the citizen's move), and no cancellation notice: they withdrew themselves.
    assert_eq!(status(&f, &id).await, ApplicationStatus::Withdrawn);
    let sent = notices(&f.notify.queue).await;
    assert!(
        !sent.iter().any(|n| n.event == "payment_cancelled"),
        "{sent:?}"
    );
    assert!(
        f.payments
            .items
            .get(&open_key(&f.tenant, &id))
            .await
            .unwrap()
            .is_none()
    );
}

contract_tests!(
    double_clicks_charge_once,
    gateway_timeouts_are_retried_with_the_same_key,
    redelivered_and_out_of_order_webhooks_end_paid,
    a_lost_webhook_is_fixed_by_reconciliation,
    an_unpaid_payment_times_out_and_the_citizen_is_told,
    fee_changes_ask_for_and_refund_the_difference,
    a_declined_card_fails_and_another_card_pays,
    a_refund_whose_answer_was_lost_is_sent_again_once,
    a_withdrawn_application_stops_its_payment,
);
