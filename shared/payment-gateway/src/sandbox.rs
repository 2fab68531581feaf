//! [`SandboxGateway`]: the payment port without a payment company, for embedded mode and tests.
//!
//! It is honest about what it is: every object it makes has an id starting `sbx_`,
//! `livemode: false`, `"sandbox": true`, and metadata `sandbox = "true"`; no money moves.
//! Its state lives in the item store (keys `<tenant>#PAYSBX#<kind>`), so it survives a
//! restart of `madoguchi serve`, and it behaves like Stripe where our flows depend on it:
//!
//! - cards come from documented test tokens ([`TestCard`]), never from card numbers;
//! - idempotency keys: same key and parameters → the stored result again (declines
//!   included), same key with other parameters → [`GatewayError::IdempotencyConflict`]
//!   (keys are kept 24 hours, per tenant);
//! - refunds, partial or full, never more than what is left;
//! - 3-D Secure: `requires_action` with a redirect URL, finished by [`SandboxGateway::complete_3ds`];
//! - events are stored (for [`PaymentGateway::list_events`]) and each is handed, signed with
//!   the tenant's webhook secret by [`crate::webhook::sign`], to a [`WebhookSink`], so the
//!   production verification path runs on them;
//! - [`SandboxGateway::fail_next`] makes the next call time out (before or after doing its
//!   work) or fail with 503, to test retries with the same idempotency key.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use http::{HeaderMap, HeaderValue};
use madoguchi_domain::tenant::TenantId;
use madoguchi_ports::{
    Clock, Condition, IdGen, Index, Item, ItemStore, Key, QueryRequest, SortKeyCondition, TxOp,
    UuidV7Gen, query_all,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::port::*;
use crate::stripe::STRIPE_API_VERSION;
use crate::webhook;

/// How long an idempotency key is remembered (Stripe: at least 24 hours).
const IDEMPOTENCY_TTL_SECONDS: i64 = 24 * 60 * 60;
/// Stripe's minimum charge in JPY.
const MIN_AMOUNT_JPY: i64 = 50;
/// Stripe's maximum amount (eight digits).
const MAX_AMOUNT_JPY: i64 = 99_999_999;

/// The sandbox's test cards, chosen by token as Stripe's test payment methods are.
///
/// | token | behaviour |
/// |---|---|
/// | `pm_card_visa`, `pm_card_mastercard`, `pm_card_jcb` | succeeds |
/// | `pm_card_chargeDeclined` | declined: `card_declined` / `generic_decline` (also refused when saved) |
/// | `pm_card_chargeDeclinedInsufficientFunds` | saves fine; charges declined: `card_declined` / `insufficient_funds` |
/// | `pm_card_threeDSecureRequired` (alias `pm_card_authenticationRequired`) | 3-D Secure on every payment: `requires_action` on-session, `authentication_required` off-session |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestCard {
    Visa,
    Mastercard,
    Jcb,
    Declined,
    InsufficientFunds,
    ThreeDSecureRequired,
}

impl TestCard {
    /// Every accepted token.
    pub const TOKENS: &'static [(&'static str, TestCard)] = &[
        ("pm_card_visa", TestCard::Visa),
        ("pm_card_mastercard", TestCard::Mastercard),
        ("pm_card_jcb", TestCard::Jcb),
        ("pm_card_chargeDeclined", TestCard::Declined),
        (
            "pm_card_chargeDeclinedInsufficientFunds",
            TestCard::InsufficientFunds,
        ),
        (
            "pm_card_threeDSecureRequired",
            TestCard::ThreeDSecureRequired,
        ),
        (
            "pm_card_authenticationRequired",
            TestCard::ThreeDSecureRequired,
        ),
    ];

    pub fn from_token(token: &str) -> Option<TestCard> {
        Self::TOKENS
            .iter()
            .find(|(t, _)| *t == token)
            .map(|(_, c)| *c)
    }

    pub fn brand(self) -> &'static str {
        match self {
            TestCard::Mastercard => "mastercard",
            TestCard::Jcb => "jcb",
            _ => "visa",
        }
    }

    /// The last four digits of Stripe's test card number with the same behaviour.
    pub fn last4(self) -> &'static str {
        match self {
            TestCard::Visa => "4242",
            TestCard::Mastercard => "4444",
            TestCard::Jcb => "0505",
            TestCard::Declined => "0002",
            TestCard::InsufficientFunds => "9995",
            TestCard::ThreeDSecureRequired => "3184",
        }
    }
}

/// A fault for the next call of the sandbox (any tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimulatedFault {
    /// The call fails with [`GatewayError::Timeout`] and nothing happens.
    TimeoutBeforeProcessing,
    /// The call does its work (and sends its webhooks) but answers
    /// [`GatewayError::Timeout`]: the case idempotency keys exist for.
    TimeoutAfterProcessing,
    /// The call fails with `Upstream { status: 503 }` and nothing happens.
    Unavailable,
}

/// Where the sandbox sends its signed webhooks (in the host: our own webhook endpoint).
#[async_trait]
pub trait WebhookSink: Send + Sync {
    /// `headers` hold `Stripe-Signature` and `Content-Type`; `body` is the exact signed bytes.
    /// An error is logged; the event stays listable (as a lost webhook would).
    async fn deliver(
        &self,
        tenant: &TenantId,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), String>;
}

/// Discards webhooks (events stay listable).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoWebhooks;

#[async_trait]
impl WebhookSink for NoWebhooks {
    async fn deliver(&self, _: &TenantId, _: &HeaderMap, _: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

/// One webhook as sent.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub tenant: TenantId,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Delivery {
    pub fn signature(&self) -> Option<&str> {
        self.headers
            .get(webhook::SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
    }
}

/// Keeps deliveries in memory, for tests: they can be taken, reordered, replayed, or the
/// next ones dropped (a lost webhook).
#[derive(Debug, Default)]
pub struct MemorySink {
    received: Mutex<Vec<Delivery>>,
    drop_next: AtomicUsize,
    dropped: AtomicUsize,
}

impl MemorySink {
    pub fn new() -> Self {
        Self::default()
    }
    /// The next `n` deliveries are lost.
    pub fn drop_next(&self, n: usize) {
        self.drop_next.store(n, Ordering::SeqCst);
    }
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }
    /// Removes and returns what arrived so far, in arrival order.
    pub fn take(&self) -> Vec<Delivery> {
        std::mem::take(&mut *self.received.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[async_trait]
impl WebhookSink for MemorySink {
    async fn deliver(
        &self,
        tenant: &TenantId,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), String> {
        let dropped = self
            .drop_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if dropped {
            self.dropped.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        }
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Delivery {
                tenant: *tenant,
                headers: headers.clone(),
                body: body.to_vec(),
            });
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Stored records
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredPm {
    pm: PaymentMethod,
    card: TestCard,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredPi {
    pi: PaymentIntent,
    amount_refunded: i64,
    save_payment_method: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredIdem {
    fingerprint: String,
    outcome: Outcome,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Ok(Value),
    Err(GatewayError),
}

/// Writes of one operation, committed in one transaction with its events.
#[derive(Default)]
struct Plan {
    writes: Vec<TxOp>,
    events: Vec<Event>,
}

const PI: &str = "PI";
const PM: &str = "PM";
const CUS: &str = "CUS";
const SETI: &str = "SETI";
const RE: &str = "RE";
const EVT: &str = "EVT";
const IDEM: &str = "IDEM";

fn invalid(code: &str, param: Option<&str>, message: impl Into<String>) -> GatewayError {
    GatewayError::InvalidRequest {
        code: Some(code.to_owned()),
        param: param.map(str::to_owned),
        message: message.into(),
    }
}

fn not_found(what: &str, id: &str) -> GatewayError {
    GatewayError::NotFound {
        message: format!("No such {what}: '{id}'"),
    }
}

fn sandbox_metadata(mut m: Metadata) -> Metadata {
    m.insert("sandbox".into(), "true".into());
    m
}

fn to_json<T: Serialize>(v: &T) -> GatewayResult<Value> {
    serde_json::to_value(v).map_err(|e| GatewayError::Storage(format!("encode: {e}")))
}

fn from_json<T: DeserializeOwned>(v: Value) -> GatewayResult<T> {
    serde_json::from_value(v).map_err(|e| GatewayError::Storage(format!("decode: {e}")))
}

pub struct SandboxGateway {
    items: Arc<dyn ItemStore>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
    accounts: Arc<dyn GatewayAccounts>,
    sink: Arc<dyn WebhookSink>,
    public_base_url: String,
    faults: Mutex<VecDeque<SimulatedFault>>,
}

impl std::fmt::Debug for SandboxGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxGateway")
            .field("public_base_url", &self.public_base_url)
            .finish_non_exhaustive()
    }
}

impl SandboxGateway {
    /// `accounts` supplies each tenant's webhook secret (the same resolver production uses,
    /// so a tenant without an account fails here too); `public_base_url` is where the
    /// host serves the sandbox's 3-D Secure page.
    pub fn new(
        items: Arc<dyn ItemStore>,
        clock: Arc<dyn Clock>,
        accounts: Arc<dyn GatewayAccounts>,
        sink: Arc<dyn WebhookSink>,
        public_base_url: &str,
    ) -> Self {
        Self {
            items,
            clock,
            ids: Arc::new(UuidV7Gen),
            accounts,
            sink,
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            faults: Mutex::new(VecDeque::new()),
        }
    }

    /// Replaces the id generator (tests that want fixed ids).
    pub fn with_ids(mut self, ids: Arc<dyn IdGen>) -> Self {
        self.ids = ids;
        self
    }

    /// Queues a fault for the next call (faults are used in order, one per call).
    pub fn fail_next(&self, fault: SimulatedFault) {
        self.faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(fault);
    }

    fn take_fault(&self) -> Option<SimulatedFault> {
        self.faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
    }

    /// Runs one call: the tenant must have a gateway account (as with the real adapter),
    /// then a queued fault, if any, applies.
    async fn guard<T>(
        &self,
        tenant: &TenantId,
        fut: impl std::future::Future<Output = GatewayResult<T>> + Send,
    ) -> GatewayResult<T> {
        self.accounts.credentials(tenant).await?;
        match self.take_fault() {
            Some(SimulatedFault::TimeoutBeforeProcessing) => Err(GatewayError::Timeout),
            Some(SimulatedFault::Unavailable) => Err(GatewayError::Upstream { status: 503 }),
            Some(SimulatedFault::TimeoutAfterProcessing) => {
                let _ = fut.await;
                Err(GatewayError::Timeout)
            }
            None => fut.await,
        }
    }

    fn now(&self) -> i64 {
        self.clock.now().as_second()
    }

    fn new_id(&self, prefix: &str) -> String {
        format!("sbx_{prefix}_{}", self.ids.new_id().simple())
    }

    fn key(tenant: &TenantId, kind: &str, id: &str) -> Key {
        Key::new(tenant.key(&["PAYSBX", kind]), id)
    }

    fn by_time(tenant: &TenantId, kind: &str, created: i64, id: &str) -> Key {
        Key::new(
            tenant.key(&["PAYSBX", kind, "BYTIME"]),
            format!("{created:012}#{id}"),
        )
    }

    fn attach_key(tenant: &TenantId, customer: &str, pm: &str) -> Key {
        Key::new(tenant.key(&["PAYSBX", "CUSPM", customer]), pm)
    }

    async fn load<T: DeserializeOwned>(&self, key: &Key) -> GatewayResult<Option<(T, u64)>> {
        match self.items.get(key).await? {
            Some(item) => Ok(Some((from_json(item.data)?, item.version))),
            None => Ok(None),
        }
    }

    fn put_new<T: Serialize>(key: Key, value: &T) -> GatewayResult<TxOp> {
        Ok(TxOp::Put(
            Item::new(key, to_json(value)?),
            Condition::NotExists,
        ))
    }

    fn put_next<T: Serialize>(key: Key, value: &T, version: u64) -> GatewayResult<TxOp> {
        let mut item = Item::new(key, to_json(value)?);
        item.version = version + 1;
        Ok(TxOp::Put(item, Condition::VersionEquals(version)))
    }

    fn pi_item(tenant: &TenantId, stored: &StoredPi, version: Option<u64>) -> GatewayResult<TxOp> {
        let mut item = Item::new(Self::key(tenant, PI, &stored.pi.id), to_json(stored)?);
        item.gsi1 = Some(Self::by_time(tenant, PI, stored.pi.created, &stored.pi.id));
        Ok(match version {
            None => TxOp::Put(item, Condition::NotExists),
            Some(v) => {
                item.version = v + 1;
                TxOp::Put(item, Condition::VersionEquals(v))
            }
        })
    }

    fn event(&self, event_type: &str, object: EventObject) -> Event {
        Event {
            id: self.new_id("evt"),
            event_type: event_type.to_owned(),
            created: self.now(),
            data: EventData { object },
            livemode: false,
            api_version: Some(STRIPE_API_VERSION.to_owned()),
            sandbox: true,
        }
    }

    /// Commits the plan (and the idempotency record) in one transaction, then delivers the
    /// events. A lost race is retryable, as Stripe's `lock_timeout`.
    async fn commit(&self, tenant: &TenantId, plan: Plan, idem: Option<Item>) -> GatewayResult<()> {
        let Plan { mut writes, events } = plan;
        for e in &events {
            let mut item = Item::new(Self::key(tenant, EVT, &e.id), to_json(e)?);
            item.gsi1 = Some(Self::by_time(tenant, EVT, e.created, &e.id));
            writes.push(TxOp::Put(item, Condition::NotExists));
        }
        if let Some(i) = idem {
            writes.push(TxOp::Put(i, Condition::NotExists));
        }
        if !writes.is_empty() {
            self.items.transact(writes).await.map_err(|e| {
                if e.is_condition_failed() {
                    GatewayError::Storage("concurrent update, retry".into())
                } else {
                    e.into()
                }
            })?;
        }
        for e in &events {
            self.deliver(tenant, e).await;
        }
        Ok(())
    }

    async fn deliver(&self, tenant: &TenantId, event: &Event) {
        let secret = match self.accounts.credentials(tenant).await {
            Ok(c) => c.webhook_secret,
            Err(e) => {
                tracing::warn!(tenant = %tenant, event = %event.id, error = %e, "sandbox webhook not signed");
                return;
            }
        };
        let body = match serde_json::to_vec(event) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(event = %event.id, error = %e, "sandbox webhook not encoded");
                return;
            }
        };
        let header = webhook::sign(secret.expose(), self.now(), &body);
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        match HeaderValue::from_str(&header) {
            Ok(v) => {
                headers.insert(http::HeaderName::from_static("stripe-signature"), v);
            }
            Err(_) => return,
        }
        if let Err(e) = self.sink.deliver(tenant, &headers, &body).await {
            tracing::warn!(tenant = %tenant, event = %event.id, error = %e, "sandbox webhook not delivered");
        }
    }

    /// Sends a stored event again (a webhook redelivery).
    pub async fn redeliver(&self, tenant: &TenantId, event_id: &str) -> GatewayResult<()> {
        let (event, _) = self
            .load::<Event>(&Self::key(tenant, EVT, event_id))
            .await?
            .ok_or_else(|| not_found("event", event_id))?;
        self.deliver(tenant, &event).await;
        Ok(())
    }

    // ---- idempotency ----------------------------------------------------------------

    fn fingerprint(op: &str, params: &Value) -> String {
        let canonical = json!({"op": op, "params": params}).to_string();
        hex::encode(Sha256::digest(canonical.as_bytes()))
    }

    /// The stored result for this key, or a conflict if the key was used otherwise.
    async fn replay<T: DeserializeOwned>(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        fingerprint: &str,
    ) -> GatewayResult<Option<GatewayResult<T>>> {
        let Some((stored, _)) = self
            .load::<StoredIdem>(&Self::key(tenant, IDEM, key.as_str()))
            .await?
        else {
            return Ok(None);
        };
        if stored.fingerprint != fingerprint {
            return Err(GatewayError::IdempotencyConflict {
                message: "Keys for idempotent requests can only be used with the same parameters they were first used with.".into(),
            });
        }
        Ok(Some(match stored.outcome {
            Outcome::Ok(v) => Ok(from_json(v)?),
            Outcome::Err(e) => Err(e),
        }))
    }

    /// Commits the plan with the key's record; on a race with the same key, answers what
    /// the other request stored.
    async fn commit_idempotent<T: Serialize + DeserializeOwned>(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        fingerprint: String,
        plan: Plan,
        outcome: GatewayResult<T>,
    ) -> GatewayResult<T> {
        let stored = StoredIdem {
            fingerprint: fingerprint.clone(),
            outcome: match &outcome {
                Ok(v) => Outcome::Ok(to_json(v)?),
                Err(e) => Outcome::Err(e.clone()),
            },
        };
        let mut item = Item::new(Self::key(tenant, IDEM, key.as_str()), to_json(&stored)?);
        item.expires_at = Some(self.now() + IDEMPOTENCY_TTL_SECONDS);
        match self.commit(tenant, plan, Some(item)).await {
            Ok(()) => outcome,
            Err(e) => match self.replay::<T>(tenant, key, &fingerprint).await? {
                Some(r) => r,
                None => Err(e),
            },
        }
    }

    // ---- payment methods ------------------------------------------------------------

    fn new_pm(&self, card: TestCard, customer: Option<String>) -> StoredPm {
        let year = self.clock.now().to_zoned(jiff::tz::TimeZone::UTC).year();
        StoredPm {
            pm: PaymentMethod {
                id: self.new_id("pm"),
                brand: Some(card.brand().to_owned()),
                last4: Some(card.last4().to_owned()),
                exp_month: Some(12),
                exp_year: u32::try_from(i32::from(year) + 3).ok(),
                customer,
                metadata: sandbox_metadata(Metadata::new()),
                created: self.now(),
                livemode: false,
                sandbox: true,
            },
            card,
        }
    }

    /// A test token makes a new payment method; an `sbx_pm_` id loads one.
    /// Returns the method and, for a loaded one, its version.
    async fn resolve_pm(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> GatewayResult<(StoredPm, Option<u64>)> {
        if let Some(card) = TestCard::from_token(id) {
            return Ok((self.new_pm(card, None), None));
        }
        if id.starts_with("pm_card_") {
            return Err(invalid(
                "resource_missing",
                Some("payment_method"),
                format!("unknown sandbox test token '{id}' (see docs/payments-gateway.md)"),
            ));
        }
        let (pm, v) = self
            .load::<StoredPm>(&Self::key(tenant, PM, id))
            .await?
            .ok_or_else(|| not_found("payment_method", id))?;
        Ok((pm, Some(v)))
    }

    // ---- charging -------------------------------------------------------------------

    /// Runs one payment attempt on `stored` with `pm`; fills the plan's writes for the
    /// payment method and events. Returns the outcome the caller answers.
    fn attempt(
        &self,
        tenant: &TenantId,
        stored: &mut StoredPi,
        pm: &mut StoredPm,
        off_session: bool,
        plan: &mut Plan,
    ) -> Result<(), GatewayError> {
        stored.pi.payment_method = Some(pm.pm.id.clone());
        stored.pi.last_payment_error = None;
        stored.pi.next_action = None;
        let decline = |code: &str, decline: &str, message: &str| LastPaymentError {
            error_type: Some("card_error".into()),
            code: Some(code.into()),
            decline_code: Some(decline.into()),
            message: Some(message.into()),
        };
        let failure = match pm.card {
            TestCard::Visa | TestCard::Mastercard | TestCard::Jcb => None,
            TestCard::Declined => Some(decline(
                "card_declined",
                "generic_decline",
                "Your card was declined.",
            )),
            TestCard::InsufficientFunds => Some(decline(
                "card_declined",
                "insufficient_funds",
                "Your card has insufficient funds.",
            )),
            TestCard::ThreeDSecureRequired if off_session => Some(decline(
                "authentication_required",
                "authentication_required",
                "Your card was declined. This transaction requires authentication.",
            )),
            TestCard::ThreeDSecureRequired => {
                stored.pi.status = IntentStatus::RequiresAction;
                stored.pi.next_action = Some(NextAction {
                    action_type: "redirect_to_url".into(),
                    redirect_to_url: Some(RedirectToUrl {
                        url: format!(
                            "{}/_sandbox/payments/3ds/{}/{}",
                            self.public_base_url, tenant, stored.pi.id
                        ),
                        return_url: None,
                    }),
                });
                plan.events.push(self.event(
                    "payment_intent.requires_action",
                    EventObject::PaymentIntent(Box::new(stored.pi.clone())),
                ));
                return Ok(());
            }
        };
        match failure {
            None => {
                self.succeed(tenant, stored, pm, plan);
                Ok(())
            }
            Some(err) => {
                let e = self.fail(stored, err, plan);
                Err(e)
            }
        }
    }

    fn succeed(
        &self,
        tenant: &TenantId,
        stored: &mut StoredPi,
        pm: &mut StoredPm,
        plan: &mut Plan,
    ) {
        stored.pi.status = IntentStatus::Succeeded;
        stored.pi.amount_received = stored.pi.amount;
        stored.pi.latest_charge = Some(self.new_id("ch"));
        stored.pi.next_action = None;
        if stored.save_payment_method
            && pm.pm.customer.is_none()
            && let Some(customer) = stored.pi.customer.clone()
        {
            pm.pm.customer = Some(customer.clone());
            plan.writes.push(TxOp::Put(
                Item::new(Self::attach_key(tenant, &customer, &pm.pm.id), json!({})),
                Condition::None,
            ));
            plan.events.push(self.event(
                "payment_method.attached",
                EventObject::PaymentMethod(Box::new(pm.pm.clone())),
            ));
        }
        plan.events.push(self.event(
            "payment_intent.succeeded",
            EventObject::PaymentIntent(Box::new(stored.pi.clone())),
        ));
    }

    fn fail(&self, stored: &mut StoredPi, err: LastPaymentError, plan: &mut Plan) -> GatewayError {
        stored.pi.status = IntentStatus::RequiresPaymentMethod;
        stored.pi.payment_method = None;
        stored.pi.next_action = None;
        stored.pi.last_payment_error = Some(err.clone());
        plan.events.push(self.event(
            "payment_intent.payment_failed",
            EventObject::PaymentIntent(Box::new(stored.pi.clone())),
        ));
        let payment_intent = Some(stored.pi.id.clone());
        if err.code.as_deref() == Some("authentication_required") {
            GatewayError::AuthenticationRequired { payment_intent }
        } else {
            GatewayError::CardDeclined {
                code: err.code.unwrap_or_else(|| "card_declined".into()),
                decline_code: err.decline_code,
                message: err.message,
                payment_intent,
            }
        }
    }

    /// The write for a payment method used by a payment: a new one (from a token) is
    /// created; a stored one is written only if the payment changed it (attached it), so
    /// that payments on the same saved card do not contend for it.
    fn pm_write_if_changed(
        tenant: &TenantId,
        pm: &StoredPm,
        version: Option<u64>,
        before: &PaymentMethod,
    ) -> GatewayResult<Option<TxOp>> {
        if version.is_some() && pm.pm == *before {
            return Ok(None);
        }
        Self::pm_write(tenant, pm, version).map(Some)
    }

    fn pm_write(tenant: &TenantId, pm: &StoredPm, version: Option<u64>) -> GatewayResult<TxOp> {
        let key = Self::key(tenant, PM, &pm.pm.id);
        match version {
            None => Self::put_new(key, pm),
            Some(v) => Self::put_next(key, pm, v),
        }
    }

    // ---- sandbox-only operations ------------------------------------------------------

    /// What the gateway's browser library does when the citizen enters a card on the setup
    /// page: makes a payment method from a test token and confirms the setup intent.
    /// A declining card fails with `CardDeclined`; a 3-D Secure card leaves the intent in
    /// `requires_action` until [`Self::complete_3ds`].
    pub async fn confirm_setup_intent(
        &self,
        tenant: &TenantId,
        setup_intent: &str,
        token: &str,
    ) -> GatewayResult<SetupIntent> {
        self.guard(
            tenant,
            self.confirm_setup_inner(tenant, setup_intent, token),
        )
        .await
    }

    async fn confirm_setup_inner(
        &self,
        tenant: &TenantId,
        id: &str,
        token: &str,
    ) -> GatewayResult<SetupIntent> {
        let card = TestCard::from_token(token).ok_or_else(|| {
            invalid(
                "resource_missing",
                Some("payment_method"),
                format!("unknown sandbox test token '{token}'"),
            )
        })?;
        let skey = Self::key(tenant, SETI, id);
        let (mut seti, v) = self
            .load::<SetupIntent>(&skey)
            .await?
            .ok_or_else(|| not_found("setup_intent", id))?;
        if !matches!(
            seti.status,
            IntentStatus::RequiresPaymentMethod | IntentStatus::RequiresConfirmation
        ) {
            return Err(invalid(
                "setup_intent_unexpected_state",
                None,
                format!("setup intent is {}", seti.status.as_str()),
            ));
        }
        let mut plan = Plan::default();
        let mut pm = self.new_pm(card, None);
        seti.last_setup_error = None;
        let mut outcome = Ok(());
        match card {
            TestCard::Declined => {
                seti.status = IntentStatus::RequiresPaymentMethod;
                seti.payment_method = None;
                let err = LastPaymentError {
                    error_type: Some("card_error".into()),
                    code: Some("card_declined".into()),
                    decline_code: Some("generic_decline".into()),
                    message: Some("Your card was declined.".into()),
                };
                seti.last_setup_error = Some(err);
                plan.events.push(self.event(
                    "setup_intent.setup_failed",
                    EventObject::SetupIntent(Box::new(seti.clone())),
                ));
                outcome = Err(GatewayError::CardDeclined {
                    code: "card_declined".into(),
                    decline_code: Some("generic_decline".into()),
                    message: Some("Your card was declined.".into()),
                    payment_intent: None,
                });
            }
            TestCard::ThreeDSecureRequired => {
                seti.status = IntentStatus::RequiresAction;
                seti.payment_method = Some(pm.pm.id.clone());
                seti.next_action = Some(NextAction {
                    action_type: "redirect_to_url".into(),
                    redirect_to_url: Some(RedirectToUrl {
                        url: format!(
                            "{}/_sandbox/payments/3ds/{}/{}",
                            self.public_base_url, tenant, seti.id
                        ),
                        return_url: None,
                    }),
                });
                plan.writes.push(Self::pm_write(tenant, &pm, None)?);
            }
            _ => {
                self.finish_setup(tenant, &mut seti, &mut pm, &mut plan)?;
                plan.writes.push(Self::pm_write(tenant, &pm, None)?);
            }
        }
        plan.writes.push(Self::put_next(skey, &seti, v)?);
        self.commit(tenant, plan, None).await?;
        outcome.map(|()| seti)
    }

    fn finish_setup(
        &self,
        tenant: &TenantId,
        seti: &mut SetupIntent,
        pm: &mut StoredPm,
        plan: &mut Plan,
    ) -> GatewayResult<()> {
        let customer = seti.customer.clone().ok_or_else(|| {
            invalid(
                "parameter_missing",
                Some("customer"),
                "setup intent has no customer",
            )
        })?;
        seti.status = IntentStatus::Succeeded;
        seti.payment_method = Some(pm.pm.id.clone());
        seti.next_action = None;
        pm.pm.customer = Some(customer.clone());
        plan.writes.push(TxOp::Put(
            Item::new(Self::attach_key(tenant, &customer, &pm.pm.id), json!({})),
            Condition::None,
        ));
        plan.events.push(self.event(
            "setup_intent.succeeded",
            EventObject::SetupIntent(Box::new(seti.clone())),
        ));
        plan.events.push(self.event(
            "payment_method.attached",
            EventObject::PaymentMethod(Box::new(pm.pm.clone())),
        ));
        Ok(())
    }

    /// The citizen finishes (or fails) the 3-D Secure step of a payment intent
    /// (`sbx_pi_…`) or setup intent (`sbx_seti_…`) in `requires_action`.
    /// Returns the intent's status afterwards.
    pub async fn complete_3ds(
        &self,
        tenant: &TenantId,
        intent: &str,
        succeed: bool,
    ) -> GatewayResult<IntentStatus> {
        self.guard(tenant, self.complete_3ds_inner(tenant, intent, succeed))
            .await
    }

    async fn complete_3ds_inner(
        &self,
        tenant: &TenantId,
        intent: &str,
        succeed: bool,
    ) -> GatewayResult<IntentStatus> {
        let auth_failed = || LastPaymentError {
            error_type: Some("invalid_request_error".into()),
            code: Some("payment_intent_authentication_failure".into()),
            decline_code: None,
            message: Some("The provided payment method has failed authentication.".into()),
        };
        let mut plan = Plan::default();
        if intent.starts_with("sbx_seti_") {
            let skey = Self::key(tenant, SETI, intent);
            let (mut seti, v) = self
                .load::<SetupIntent>(&skey)
                .await?
                .ok_or_else(|| not_found("setup_intent", intent))?;
            if seti.status != IntentStatus::RequiresAction {
                return Err(invalid(
                    "setup_intent_unexpected_state",
                    None,
                    "no 3-D Secure step pending",
                ));
            }
            let pm_id = seti.payment_method.clone().unwrap_or_default();
            let (mut pm, pv) = self
                .load::<StoredPm>(&Self::key(tenant, PM, &pm_id))
                .await?
                .ok_or_else(|| not_found("payment_method", &pm_id))?;
            if succeed {
                self.finish_setup(tenant, &mut seti, &mut pm, &mut plan)?;
                plan.writes.push(Self::pm_write(tenant, &pm, Some(pv))?);
            } else {
                let mut e = auth_failed();
                e.code = Some("setup_intent_authentication_failure".into());
                seti.status = IntentStatus::RequiresPaymentMethod;
                seti.payment_method = None;
                seti.next_action = None;
                seti.last_setup_error = Some(e);
                plan.events.push(self.event(
                    "setup_intent.setup_failed",
                    EventObject::SetupIntent(Box::new(seti.clone())),
                ));
            }
            let status = seti.status.clone();
            plan.writes.push(Self::put_next(skey, &seti, v)?);
            self.commit(tenant, plan, None).await?;
            return Ok(status);
        }
        let (mut stored, v) = self
            .load::<StoredPi>(&Self::key(tenant, PI, intent))
            .await?
            .ok_or_else(|| not_found("payment_intent", intent))?;
        if stored.pi.status != IntentStatus::RequiresAction {
            return Err(invalid(
                "payment_intent_unexpected_state",
                None,
                "no 3-D Secure step pending",
            ));
        }
        let pm_id = stored.pi.payment_method.clone().unwrap_or_default();
        let (mut pm, pv) = self
            .load::<StoredPm>(&Self::key(tenant, PM, &pm_id))
            .await?
            .ok_or_else(|| not_found("payment_method", &pm_id))?;
        if succeed {
            let before = pm.pm.clone();
            self.succeed(tenant, &mut stored, &mut pm, &mut plan);
            plan.writes
                .extend(Self::pm_write_if_changed(tenant, &pm, Some(pv), &before)?);
        } else {
            let _ = self.fail(&mut stored, auth_failed(), &mut plan);
        }
        let status = stored.pi.status.clone();
        plan.writes.push(Self::pi_item(tenant, &stored, Some(v))?);
        self.commit(tenant, plan, None).await?;
        Ok(status)
    }

    // ---- listing ----------------------------------------------------------------------

    async fn list_by_time<T: DeserializeOwned>(
        &self,
        tenant: &TenantId,
        kind: &str,
        params: &ListParams,
        created_of: impl Fn(&Value) -> i64,
    ) -> GatewayResult<List<T>> {
        let limit = params.limit.clamp(1, 100) as usize;
        let lo = params
            .created_gte
            .map(|t| format!("{:012}", t.max(0)))
            // DynamoDB refuses an empty string as a key bound; every time key is ≥ this.
            .unwrap_or_else(|| "0".repeat(12));
        let hi = match &params.starting_after {
            Some(id) => {
                let item = self
                    .items
                    .get(&Self::key(tenant, kind, id))
                    .await?
                    .ok_or_else(|| {
                        invalid(
                            "resource_missing",
                            Some("starting_after"),
                            format!("No such object: '{id}'"),
                        )
                    })?;
                format!("{:012}#{id}", created_of(&item.data))
            }
            None => "~".to_owned(),
        };
        let mut out: Vec<Value> = Vec::new();
        let mut cursor = None;
        let mut has_more = false;
        loop {
            let page = self
                .items
                .query(
                    QueryRequest::partition(tenant.key(&["PAYSBX", kind, "BYTIME"]))
                        .on(Index::Gsi1)
                        .sk(SortKeyCondition::Between(lo.clone(), hi.clone()))
                        .descending()
                        .limit(limit + 2)
                        .after(cursor),
                )
                .await?;
            for item in page.items {
                let id_matches = params
                    .starting_after
                    .as_deref()
                    .is_some_and(|s| item.key.sk == s);
                if id_matches {
                    continue;
                }
                if out.len() == limit {
                    has_more = true;
                    break;
                }
                out.push(item.data);
            }
            if has_more || page.next.is_none() {
                break;
            }
            cursor = page.next;
        }
        let data = out
            .into_iter()
            .map(from_json)
            .collect::<GatewayResult<Vec<T>>>()?;
        Ok(List { data, has_more })
    }

    // ---- port operations (inner) ------------------------------------------------------

    async fn create_customer_inner(
        &self,
        tenant: &TenantId,
        c: &NewCustomer,
        key: &IdempotencyKey,
    ) -> GatewayResult<Customer> {
        let fp = Self::fingerprint(
            "create_customer",
            &json!({"email": c.email, "name": c.name, "metadata": c.metadata}),
        );
        if let Some(r) = self.replay(tenant, key, &fp).await? {
            return r;
        }
        let mut metadata = sandbox_metadata(c.metadata.clone());
        metadata.insert("tenant".into(), tenant.as_str().to_owned());
        let customer = Customer {
            id: self.new_id("cus"),
            email: c.email.clone(),
            name: c.name.clone(),
            invoice_settings: InvoiceSettings::default(),
            metadata,
            created: self.now(),
            livemode: false,
            sandbox: true,
        };
        let mut plan = Plan::default();
        plan.writes.push(Self::put_new(
            Self::key(tenant, CUS, &customer.id),
            &customer,
        )?);
        plan.events.push(self.event(
            "customer.created",
            EventObject::Customer(Box::new(customer.clone())),
        ));
        self.commit_idempotent(tenant, key, fp, plan, Ok(customer))
            .await
    }

    async fn load_customer(&self, tenant: &TenantId, id: &str) -> GatewayResult<(Customer, u64)> {
        self.load::<Customer>(&Self::key(tenant, CUS, id))
            .await?
            .ok_or_else(|| not_found("customer", id))
    }

    async fn create_setup_intent_inner(
        &self,
        tenant: &TenantId,
        r: &NewSetupIntent,
        key: &IdempotencyKey,
    ) -> GatewayResult<SetupIntent> {
        let fp = Self::fingerprint(
            "create_setup_intent",
            &json!({"customer": r.customer, "metadata": r.metadata}),
        );
        if let Some(out) = self.replay(tenant, key, &fp).await? {
            return out;
        }
        self.load_customer(tenant, &r.customer).await?;
        let id = self.new_id("seti");
        let mut metadata = sandbox_metadata(r.metadata.clone());
        metadata.insert("tenant".into(), tenant.as_str().to_owned());
        let seti = SetupIntent {
            client_secret: Some(format!("{id}_secret_{}", self.ids.new_id().simple())),
            id,
            status: IntentStatus::RequiresPaymentMethod,
            customer: Some(r.customer.clone()),
            payment_method: None,
            last_setup_error: None,
            next_action: None,
            metadata,
            created: self.now(),
            livemode: false,
            sandbox: true,
        };
        let mut plan = Plan::default();
        plan.writes
            .push(Self::put_new(Self::key(tenant, SETI, &seti.id), &seti)?);
        self.commit_idempotent(tenant, key, fp, plan, Ok(seti))
            .await
    }

    async fn list_payment_methods_inner(
        &self,
        tenant: &TenantId,
        customer: &str,
    ) -> GatewayResult<Vec<PaymentMethod>> {
        self.load_customer(tenant, customer).await?;
        let marks = query_all(
            self.items.as_ref(),
            QueryRequest::partition(tenant.key(&["PAYSBX", "CUSPM", customer])),
            100,
        )
        .await?;
        let mut out = Vec::with_capacity(marks.len());
        for m in marks {
            if let Some((pm, _)) = self
                .load::<StoredPm>(&Self::key(tenant, PM, &m.key.sk))
                .await?
                && pm.pm.customer.as_deref() == Some(customer)
            {
                out.push(pm.pm);
            }
        }
        // Newest first, as Stripe lists.
        out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
        Ok(out)
    }

    async fn set_default_inner(
        &self,
        tenant: &TenantId,
        customer: &str,
        pm_id: &str,
    ) -> GatewayResult<Customer> {
        let (mut c, v) = self.load_customer(tenant, customer).await?;
        let (pm, _) = self
            .load::<StoredPm>(&Self::key(tenant, PM, pm_id))
            .await?
            .ok_or_else(|| not_found("payment_method", pm_id))?;
        if pm.pm.customer.as_deref() != Some(customer) {
            return Err(invalid(
                "resource_missing",
                Some("invoice_settings[default_payment_method]"),
                "the payment method is not attached to this customer",
            ));
        }
        c.invoice_settings.default_payment_method = Some(pm_id.to_owned());
        let mut plan = Plan::default();
        plan.writes
            .push(Self::put_next(Self::key(tenant, CUS, customer), &c, v)?);
        plan.events.push(self.event(
            "customer.updated",
            EventObject::Customer(Box::new(c.clone())),
        ));
        self.commit(tenant, plan, None).await?;
        Ok(c)
    }

    async fn detach_inner(&self, tenant: &TenantId, pm_id: &str) -> GatewayResult<PaymentMethod> {
        let (mut pm, pv) = self
            .load::<StoredPm>(&Self::key(tenant, PM, pm_id))
            .await?
            .ok_or_else(|| not_found("payment_method", pm_id))?;
        let Some(customer) = pm.pm.customer.take() else {
            return Err(invalid(
                "payment_method_unexpected_state",
                None,
                "The payment method is not attached to a customer.",
            ));
        };
        let mut plan = Plan::default();
        plan.writes.push(TxOp::Delete(
            Self::attach_key(tenant, &customer, pm_id),
            Condition::None,
        ));
        plan.writes.push(Self::pm_write(tenant, &pm, Some(pv))?);
        if let Some((mut c, cv)) = self
            .load::<Customer>(&Self::key(tenant, CUS, &customer))
            .await?
            && c.default_payment_method() == Some(pm_id)
        {
            c.invoice_settings.default_payment_method = None;
            plan.writes
                .push(Self::put_next(Self::key(tenant, CUS, &customer), &c, cv)?);
        }
        plan.events.push(self.event(
            "payment_method.detached",
            EventObject::PaymentMethod(Box::new(pm.pm.clone())),
        ));
        self.commit(tenant, plan, None).await?;
        Ok(pm.pm)
    }

    async fn create_pi_inner(
        &self,
        tenant: &TenantId,
        r: &NewPaymentIntent,
        key: &IdempotencyKey,
    ) -> GatewayResult<PaymentIntent> {
        let metadata = r.tags.to_metadata();
        let fp = Self::fingerprint(
            "create_payment_intent",
            &json!({
                "amount": r.amount.value(), "customer": r.customer, "payment_method": r.payment_method,
                "confirm": r.confirm, "off_session": r.off_session, "save": r.save_payment_method,
                "return_url": r.return_url, "description": r.description, "metadata": metadata,
            }),
        );
        if let Some(out) = self.replay(tenant, key, &fp).await? {
            return out;
        }
        if r.tags.tenant != *tenant {
            return Err(invalid(
                "tenant_mismatch",
                Some("metadata[tenant]"),
                "the payment's tenant tag differs from the calling tenant",
            ));
        }
        let amount = r.amount.value();
        if amount < MIN_AMOUNT_JPY {
            return Err(invalid(
                "amount_too_small",
                Some("amount"),
                format!("Amount must be at least ¥{MIN_AMOUNT_JPY} jpy"),
            ));
        }
        if amount > MAX_AMOUNT_JPY {
            return Err(invalid(
                "amount_too_large",
                Some("amount"),
                "Amount must be no more than ¥99,999,999",
            ));
        }
        if let Some(c) = &r.customer {
            self.load_customer(tenant, c).await?;
        }
        if r.off_session && !r.confirm {
            return Err(invalid(
                "parameter_invalid",
                Some("off_session"),
                "off_session requires confirm=true",
            ));
        }
        let mut pm = match &r.payment_method {
            Some(id) => Some(self.resolve_pm(tenant, id).await?),
            None => None,
        };
        if let (Some((p, _)), Some(c)) = (&pm, &r.customer)
            && p.pm.customer.as_deref().is_some_and(|pc| pc != c)
        {
            return Err(invalid(
                "payment_method_unexpected_state",
                Some("payment_method"),
                "The payment method belongs to another customer.",
            ));
        }
        if let (Some((p, _)), None) = (&pm, &r.customer)
            && p.pm.customer.is_some()
        {
            return Err(invalid(
                "parameter_missing",
                Some("customer"),
                "A saved payment method needs its customer.",
            ));
        }
        if r.confirm && pm.is_none() {
            return Err(invalid(
                "parameter_missing",
                Some("payment_method"),
                "confirm=true needs a payment method",
            ));
        }
        let id = self.new_id("pi");
        let mut stored = StoredPi {
            pi: PaymentIntent {
                client_secret: Some(format!("{id}_secret_{}", self.ids.new_id().simple())),
                id,
                amount,
                amount_received: 0,
                currency: CURRENCY_JPY.to_owned(),
                status: if pm.is_some() {
                    IntentStatus::RequiresConfirmation
                } else {
                    IntentStatus::RequiresPaymentMethod
                },
                customer: r.customer.clone(),
                payment_method: pm.as_ref().map(|(p, _)| p.pm.id.clone()),
                last_payment_error: None,
                next_action: None,
                metadata: sandbox_metadata(metadata),
                created: self.now(),
                latest_charge: None,
                cancellation_reason: None,
                livemode: false,
                sandbox: true,
            },
            amount_refunded: 0,
            save_payment_method: r.save_payment_method,
        };
        let mut plan = Plan::default();
        plan.events.push(self.event(
            "payment_intent.created",
            EventObject::PaymentIntent(Box::new(stored.pi.clone())),
        ));
        let mut outcome = Ok(());
        if let Some((p, v)) = pm.as_mut() {
            let before = p.pm.clone();
            if r.confirm {
                outcome = self.attempt(tenant, &mut stored, p, r.off_session, &mut plan);
            }
            plan.writes
                .extend(Self::pm_write_if_changed(tenant, p, *v, &before)?);
        }
        plan.writes.push(Self::pi_item(tenant, &stored, None)?);
        let outcome = outcome.map(|()| stored.pi.clone());
        self.commit_idempotent(tenant, key, fp, plan, outcome).await
    }

    async fn confirm_pi_inner(
        &self,
        tenant: &TenantId,
        id: &str,
        pm_id: Option<&str>,
        key: &IdempotencyKey,
    ) -> GatewayResult<PaymentIntent> {
        let fp = Self::fingerprint(
            "confirm_payment_intent",
            &json!({"payment_intent": id, "payment_method": pm_id}),
        );
        if let Some(out) = self.replay(tenant, key, &fp).await? {
            return out;
        }
        let (mut stored, v) = self
            .load::<StoredPi>(&Self::key(tenant, PI, id))
            .await?
            .ok_or_else(|| not_found("payment_intent", id))?;
        if !matches!(
            stored.pi.status,
            IntentStatus::RequiresPaymentMethod | IntentStatus::RequiresConfirmation
        ) {
            return Err(invalid(
                "payment_intent_unexpected_state",
                None,
                format!(
                    "You cannot confirm this PaymentIntent because it has a status of {}.",
                    stored.pi.status.as_str()
                ),
            ));
        }
        let pm_id = pm_id
            .map(str::to_owned)
            .or_else(|| stored.pi.payment_method.clone())
            .ok_or_else(|| {
                invalid(
                    "parameter_missing",
                    Some("payment_method"),
                    "no payment method to confirm with",
                )
            })?;
        let (mut pm, pv) = self.resolve_pm(tenant, &pm_id).await?;
        if let Some(pc) = &pm.pm.customer
            && stored.pi.customer.as_deref() != Some(pc.as_str())
        {
            return Err(invalid(
                "payment_method_unexpected_state",
                Some("payment_method"),
                "The payment method belongs to another customer.",
            ));
        }
        let mut plan = Plan::default();
        let before = pm.pm.clone();
        let outcome = self.attempt(tenant, &mut stored, &mut pm, false, &mut plan);
        plan.writes
            .extend(Self::pm_write_if_changed(tenant, &pm, pv, &before)?);
        plan.writes.push(Self::pi_item(tenant, &stored, Some(v))?);
        let outcome = outcome.map(|()| stored.pi.clone());
        self.commit_idempotent(tenant, key, fp, plan, outcome).await
    }

    async fn cancel_pi_inner(&self, tenant: &TenantId, id: &str) -> GatewayResult<PaymentIntent> {
        let (mut stored, v) = self
            .load::<StoredPi>(&Self::key(tenant, PI, id))
            .await?
            .ok_or_else(|| not_found("payment_intent", id))?;
        if matches!(
            stored.pi.status,
            IntentStatus::Succeeded | IntentStatus::Canceled | IntentStatus::Processing
        ) {
            return Err(invalid(
                "payment_intent_unexpected_state",
                None,
                format!(
                    "You cannot cancel this PaymentIntent because it has a status of {}.",
                    stored.pi.status.as_str()
                ),
            ));
        }
        stored.pi.status = IntentStatus::Canceled;
        stored.pi.cancellation_reason = Some("abandoned".into());
        stored.pi.next_action = None;
        let mut plan = Plan::default();
        plan.writes.push(Self::pi_item(tenant, &stored, Some(v))?);
        plan.events.push(self.event(
            "payment_intent.canceled",
            EventObject::PaymentIntent(Box::new(stored.pi.clone())),
        ));
        self.commit(tenant, plan, None).await?;
        Ok(stored.pi)
    }

    async fn refund_inner(
        &self,
        tenant: &TenantId,
        r: &NewRefund,
        key: &IdempotencyKey,
    ) -> GatewayResult<Refund> {
        let fp = Self::fingerprint(
            "create_refund",
            &json!({
                "payment_intent": r.payment_intent, "amount": r.amount.map(|a| a.value()),
                "reason": r.reason, "metadata": r.metadata,
            }),
        );
        if let Some(out) = self.replay(tenant, key, &fp).await? {
            return out;
        }
        let (mut stored, v) = self
            .load::<StoredPi>(&Self::key(tenant, PI, &r.payment_intent))
            .await?
            .ok_or_else(|| not_found("payment_intent", &r.payment_intent))?;
        if stored.pi.status != IntentStatus::Succeeded {
            return Err(invalid(
                "charge_not_refundable",
                Some("payment_intent"),
                "This PaymentIntent has no successful charge to refund.",
            ));
        }
        let remaining = stored.pi.amount_received - stored.amount_refunded;
        if remaining <= 0 {
            return Err(invalid(
                "charge_already_refunded",
                Some("payment_intent"),
                "This charge has already been refunded.",
            ));
        }
        let amount = r.amount.map(|a| a.value()).unwrap_or(remaining);
        if amount <= 0 {
            return Err(invalid(
                "parameter_invalid_integer",
                Some("amount"),
                "Refund amount must be positive.",
            ));
        }
        if amount > remaining {
            return Err(invalid(
                "amount_too_large",
                Some("amount"),
                format!(
                    "Refund amount (¥{amount}) is greater than unrefunded amount on charge (¥{remaining})"
                ),
            ));
        }
        stored.amount_refunded += amount;
        let mut metadata = sandbox_metadata(r.metadata.clone());
        metadata.insert("tenant".into(), tenant.as_str().to_owned());
        let refund = Refund {
            id: self.new_id("re"),
            amount,
            currency: CURRENCY_JPY.to_owned(),
            status: Some(RefundStatus::Succeeded),
            payment_intent: Some(stored.pi.id.clone()),
            charge: stored.pi.latest_charge.clone(),
            reason: r.reason.map(|x| x.as_str().to_owned()),
            metadata,
            created: self.now(),
            sandbox: true,
        };
        let charge = Charge {
            id: stored.pi.latest_charge.clone().unwrap_or_default(),
            amount: stored.pi.amount_received,
            amount_refunded: stored.amount_refunded,
            currency: CURRENCY_JPY.to_owned(),
            payment_intent: Some(stored.pi.id.clone()),
            refunded: stored.amount_refunded == stored.pi.amount_received,
            status: Some("succeeded".into()),
            metadata: stored.pi.metadata.clone(),
            created: stored.pi.created,
            livemode: false,
            sandbox: true,
        };
        let mut plan = Plan::default();
        plan.writes
            .push(Self::put_new(Self::key(tenant, RE, &refund.id), &refund)?);
        plan.writes.push(Self::pi_item(tenant, &stored, Some(v))?);
        plan.events
            .push(self.event("charge.refunded", EventObject::Charge(Box::new(charge))));
        self.commit_idempotent(tenant, key, fp, plan, Ok(refund))
            .await
    }
}

#[async_trait]
impl PaymentGateway for SandboxGateway {
    fn is_sandbox(&self) -> bool {
        true
    }

    async fn create_customer(
        &self,
        tenant: &TenantId,
        customer: &NewCustomer,
        key: &IdempotencyKey,
    ) -> GatewayResult<Customer> {
        self.guard(tenant, self.create_customer_inner(tenant, customer, key))
            .await
    }

    async fn retrieve_customer(
        &self,
        tenant: &TenantId,
        customer: &str,
    ) -> GatewayResult<Customer> {
        self.guard(tenant, async {
            Ok(self.load_customer(tenant, customer).await?.0)
        })
        .await
    }

    async fn create_setup_intent(
        &self,
        tenant: &TenantId,
        request: &NewSetupIntent,
        key: &IdempotencyKey,
    ) -> GatewayResult<SetupIntent> {
        self.guard(tenant, self.create_setup_intent_inner(tenant, request, key))
            .await
    }

    async fn list_payment_methods(
        &self,
        tenant: &TenantId,
        customer: &str,
    ) -> GatewayResult<Vec<PaymentMethod>> {
        self.guard(tenant, self.list_payment_methods_inner(tenant, customer))
            .await
    }

    async fn set_default_payment_method(
        &self,
        tenant: &TenantId,
        customer: &str,
        payment_method: &str,
    ) -> GatewayResult<Customer> {
        self.guard(
            tenant,
            self.set_default_inner(tenant, customer, payment_method),
        )
        .await
    }

    async fn detach_payment_method(
        &self,
        tenant: &TenantId,
        payment_method: &str,
    ) -> GatewayResult<PaymentMethod> {
        self.guard(tenant, self.detach_inner(tenant, payment_method))
            .await
    }

    async fn create_payment_intent(
        &self,
        tenant: &TenantId,
        request: &NewPaymentIntent,
        key: &IdempotencyKey,
    ) -> GatewayResult<PaymentIntent> {
        self.guard(tenant, self.create_pi_inner(tenant, request, key))
            .await
    }

    async fn confirm_payment_intent(
        &self,
        tenant: &TenantId,
        payment_intent: &str,
        payment_method: Option<&str>,
        key: &IdempotencyKey,
    ) -> GatewayResult<PaymentIntent> {
        self.guard(
            tenant,
            self.confirm_pi_inner(tenant, payment_intent, payment_method, key),
        )
        .await
    }

    async fn retrieve_payment_intent(
        &self,
        tenant: &TenantId,
        payment_intent: &str,
    ) -> GatewayResult<PaymentIntent> {
        self.guard(tenant, async {
            let (stored, _) = self
                .load::<StoredPi>(&Self::key(tenant, PI, payment_intent))
                .await?
                .ok_or_else(|| not_found("payment_intent", payment_intent))?;
            Ok(stored.pi)
        })
        .await
    }

    async fn cancel_payment_intent(
        &self,
        tenant: &TenantId,
        payment_intent: &str,
    ) -> GatewayResult<PaymentIntent> {
        self.guard(tenant, self.cancel_pi_inner(tenant, payment_intent))
            .await
    }

    async fn create_refund(
        &self,
        tenant: &TenantId,
        request: &NewRefund,
        key: &IdempotencyKey,
    ) -> GatewayResult<Refund> {
        self.guard(tenant, self.refund_inner(tenant, request, key))
            .await
    }

    async fn list_payment_intents(
        &self,
        tenant: &TenantId,
        params: &ListParams,
    ) -> GatewayResult<List<PaymentIntent>> {
        self.guard(tenant, async {
            let l: List<StoredPi> = self
                .list_by_time(tenant, PI, params, |v| {
                    v.pointer("/pi/created")
                        .and_then(Value::as_i64)
                        .unwrap_or(0)
                })
                .await?;
            Ok(List {
                data: l.data.into_iter().map(|s| s.pi).collect(),
                has_more: l.has_more,
            })
        })
        .await
    }

    async fn list_events(
        &self,
        tenant: &TenantId,
        params: &ListParams,
    ) -> GatewayResult<List<Event>> {
        self.guard(
            tenant,
            self.list_by_time(tenant, EVT, params, |v| {
                v.get("created").and_then(Value::as_i64).unwrap_or(0)
            }),
        )
        .await
    }
}
