//! The payment-gateway port: operations, model types and errors.
//!
//! # Contract
//! - Ids only. No card number, expiry with number, or CVC passes through this port; the SPA
//!   tokenises cards with the gateway's browser library and we receive payment-method ids.
//! - Every call names the tenant. An adapter uses that tenant's own gateway account (its
//!   credentials come from [`GatewayAccounts`]); an object of one tenant is never visible
//!   through another tenant's calls.
//! - Amounts are whole yen. JPY is a zero-decimal currency for the gateways we target, so the
//!   amount sent is the yen amount itself (¥1,000 → `1000`), never × 100.
//! - Calls that create or move money take an [`IdempotencyKey`]. The same key with the same
//!   parameters gives the same result (also after a timeout, when the first attempt may have
//!   gone through); the same key with other parameters is [`GatewayError::IdempotencyConflict`].
//! - Model types read Stripe's JSON shape (unknown fields ignored, unknown statuses kept as
//!   `Unknown`), so the webhook parser, the Stripe adapter and the sandbox share them.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use async_trait::async_trait;
use madoguchi_domain::money::Yen;
use madoguchi_domain::tenant::TenantId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// Key–value metadata stored with a gateway object (Stripe: up to 50 keys, string values).
pub type Metadata = BTreeMap<String, String>;

pub type GatewayResult<T> = Result<T, GatewayError>;

/// The currency of every payment we make.
pub const CURRENCY_JPY: &str = "jpy";

// ---------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------

/// A secret string whose `Debug` never shows the value, so credentials cannot end up in logs
/// through a derived `Debug` of a struct holding them.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The value, for building the one request header or signature that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One tenant's gateway account.
#[derive(Debug, Clone)]
pub struct GatewayCredentials {
    /// The API secret key (`sk_live_…` / `sk_test_…` for Stripe).
    pub secret_key: Secret,
    /// The webhook endpoint's signing secret (`whsec_…`).
    pub webhook_secret: Secret,
}

/// Where adapters find each tenant's gateway credentials.
///
/// Each municipality contracts with the gateway itself (the money goes to its own account), so
/// there is no platform-wide key. Production implements this over the deployment's secret
/// store (e.g. one Secrets Manager entry per tenant, read once and cached); embedded mode and
/// tests use [`StaticAccounts`]. A tenant without an account is
/// [`GatewayError::Config`], never a fallback to another tenant's key.
#[async_trait]
pub trait GatewayAccounts: Send + Sync {
    async fn credentials(&self, tenant: &TenantId) -> GatewayResult<GatewayCredentials>;
}

/// A fixed map tenant → credentials, built at start-up from configuration.
#[derive(Debug, Clone, Default)]
pub struct StaticAccounts(HashMap<TenantId, GatewayCredentials>);

impl StaticAccounts {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with(mut self, tenant: TenantId, credentials: GatewayCredentials) -> Self {
        self.0.insert(tenant, credentials);
        self
    }
}

#[async_trait]
impl GatewayAccounts for StaticAccounts {
    async fn credentials(&self, tenant: &TenantId) -> GatewayResult<GatewayCredentials> {
        self.0
            .get(tenant)
            .cloned()
            .ok_or_else(|| GatewayError::Config(format!("no gateway account for tenant {tenant}")))
    }
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// A client-chosen key that makes a create/confirm/refund safe to retry.
///
/// Derive it from our own record (e.g. `pay-<application>-<attempt>`), not from a random value
/// per HTTP attempt, so a retried request of ours reuses it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// 1–255 visible ASCII characters (Stripe's limit is 255).
    pub fn new(key: impl Into<String>) -> GatewayResult<Self> {
        let key = key.into();
        if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(GatewayError::InvalidRequest {
                code: Some("idempotency_key_invalid".into()),
                param: None,
                message: "idempotency key must be 1-255 visible ASCII characters".into(),
            });
        }
        Ok(Self(key))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The metadata every payment intent carries, so that an object seen in the gateway's
/// dashboard or a webhook can be tied back to our record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentTags {
    pub tenant: TenantId,
    /// Our application id (申請 id).
    pub application: String,
    /// Deployment name (`production`, `staging`, `embedded`), so test traffic in a shared
    /// account is recognisable.
    pub environment: String,
    /// Anything else worth seeing in the dashboard (no personal data).
    pub extra: Metadata,
}

impl PaymentTags {
    pub fn to_metadata(&self) -> Metadata {
        let mut m = self.extra.clone();
        m.insert("tenant".into(), self.tenant.as_str().to_owned());
        m.insert("application".into(), self.application.clone());
        m.insert("environment".into(), self.environment.clone());
        m
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewCustomer {
    pub email: Option<String>,
    pub name: Option<String>,
    pub metadata: Metadata,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSetupIntent {
    pub customer: String,
    pub metadata: Metadata,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPaymentIntent {
    pub amount: Yen,
    pub customer: Option<String>,
    /// A saved payment method, or the id the SPA's tokenisation returned.
    pub payment_method: Option<String>,
    /// Confirm at once (server-side confirmation with a known payment method).
    pub confirm: bool,
    /// The citizen is not present (a saved card charged after a fee change): the gateway
    /// must not start an interactive 3-D Secure step and fails instead.
    pub off_session: bool,
    /// Attach the payment method to the customer for later off-session use.
    pub save_payment_method: bool,
    /// Where the gateway sends the browser back after a 3-D Secure redirect.
    pub return_url: Option<String>,
    pub description: Option<String>,
    pub tags: PaymentTags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefund {
    pub payment_intent: String,
    /// `None` refunds what is left (the full amount if nothing was refunded yet).
    pub amount: Option<Yen>,
    pub reason: Option<RefundReason>,
    pub metadata: Metadata,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    Duplicate,
    Fraudulent,
    RequestedByCustomer,
}

impl RefundReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundReason::Duplicate => "duplicate",
            RefundReason::Fraudulent => "fraudulent",
            RefundReason::RequestedByCustomer => "requested_by_customer",
        }
    }
}

/// Paging of list calls, as Stripe's: newest first, `starting_after` = last id of the
/// previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListParams {
    /// Only objects created at or after this instant (epoch seconds).
    pub created_gte: Option<i64>,
    pub starting_after: Option<String>,
    /// 1–100.
    pub limit: u32,
}

impl Default for ListParams {
    fn default() -> Self {
        Self {
            created_gte: None,
            starting_after: None,
            limit: 100,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct List<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub has_more: bool,
}

// ---------------------------------------------------------------------------------------
// Objects
// ---------------------------------------------------------------------------------------

fn is_false(b: &bool) -> bool {
    !*b
}

/// Statuses of payment and setup intents. Unknown values (a newer API) are kept, not refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IntentStatus {
    RequiresPaymentMethod,
    RequiresConfirmation,
    RequiresAction,
    Processing,
    RequiresCapture,
    Canceled,
    Succeeded,
    Unknown(String),
}

impl IntentStatus {
    pub fn as_str(&self) -> &str {
        match self {
            IntentStatus::RequiresPaymentMethod => "requires_payment_method",
            IntentStatus::RequiresConfirmation => "requires_confirmation",
            IntentStatus::RequiresAction => "requires_action",
            IntentStatus::Processing => "processing",
            IntentStatus::RequiresCapture => "requires_capture",
            IntentStatus::Canceled => "canceled",
            IntentStatus::Succeeded => "succeeded",
            IntentStatus::Unknown(s) => s,
        }
    }
    pub fn parse(s: &str) -> Self {
        match s {
            "requires_payment_method" => IntentStatus::RequiresPaymentMethod,
            "requires_confirmation" => IntentStatus::RequiresConfirmation,
            "requires_action" => IntentStatus::RequiresAction,
            "processing" => IntentStatus::Processing,
            "requires_capture" => IntentStatus::RequiresCapture,
            "canceled" => IntentStatus::Canceled,
            "succeeded" => IntentStatus::Succeeded,
            other => IntentStatus::Unknown(other.to_owned()),
        }
    }
    /// No further change can happen (our record may be closed).
    pub fn is_final(&self) -> bool {
        matches!(self, IntentStatus::Canceled | IntentStatus::Succeeded)
    }
}

impl Serialize for IntentStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for IntentStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(IntentStatus::parse(&String::deserialize(d)?))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RefundStatus {
    Pending,
    RequiresAction,
    Succeeded,
    Failed,
    Canceled,
    Unknown(String),
}

impl RefundStatus {
    pub fn as_str(&self) -> &str {
        match self {
            RefundStatus::Pending => "pending",
            RefundStatus::RequiresAction => "requires_action",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
            RefundStatus::Canceled => "canceled",
            RefundStatus::Unknown(s) => s,
        }
    }
    pub fn parse(s: &str) -> Self {
        match s {
            "pending" => RefundStatus::Pending,
            "requires_action" => RefundStatus::RequiresAction,
            "succeeded" => RefundStatus::Succeeded,
            "failed" => RefundStatus::Failed,
            "canceled" => RefundStatus::Canceled,
            other => RefundStatus::Unknown(other.to_owned()),
        }
    }
}

impl Serialize for RefundStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RefundStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(RefundStatus::parse(&String::deserialize(d)?))
    }
}

/// Reads an expandable field (an id, or the expanded object with an `id`) as the id.
fn expandable_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Object(o)) => {
            o.get("id").and_then(|i| i.as_str()).map(str::to_owned)
        }
        _ => None,
    })
}

/// Metadata may be `null` on some objects.
fn metadata_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Metadata, D::Error> {
    Ok(Option::<Metadata>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub invoice_settings: InvoiceSettings,
    #[serde(default, deserialize_with = "metadata_or_empty")]
    pub metadata: Metadata,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub livemode: bool,
    /// Set only by the sandbox gateway.
    #[serde(default, skip_serializing_if = "is_false")]
    pub sandbox: bool,
}

impl Customer {
    /// The saved card charged when the citizen does not pick one.
    pub fn default_payment_method(&self) -> Option<&str> {
        self.invoice_settings.default_payment_method.as_deref()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceSettings {
    #[serde(default, deserialize_with = "expandable_id")]
    pub default_payment_method: Option<String>,
}

/// The error of the last failed attempt on an intent (Stripe's `last_payment_error`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastPaymentError {
    #[serde(rename = "type", default)]
    pub error_type: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    /// The issuer's reason, e.g. `insufficient_funds`, `generic_decline`.
    #[serde(default)]
    pub decline_code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// What the citizen's browser must do next (3-D Secure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextAction {
    /// `redirect_to_url` or `use_stripe_sdk` (the JS library handles the step).
    #[serde(rename = "type")]
    pub action_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_to_url: Option<RedirectToUrl>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectToUrl {
    pub url: String,
    #[serde(default)]
    pub return_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetupIntent {
    pub id: String,
    /// Handed to the SPA, which confirms the setup with the gateway's JS library. Not stored,
    /// not logged.
    #[serde(default)]
    pub client_secret: Option<String>,
    pub status: IntentStatus,
    #[serde(default, deserialize_with = "expandable_id")]
    pub customer: Option<String>,
    #[serde(default, deserialize_with = "expandable_id")]
    pub payment_method: Option<String>,
    #[serde(default)]
    pub last_setup_error: Option<LastPaymentError>,
    #[serde(default)]
    pub next_action: Option<NextAction>,
    #[serde(default, deserialize_with = "metadata_or_empty")]
    pub metadata: Metadata,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub livemode: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub sandbox: bool,
}

/// A saved or one-time card, as the gateway describes it: brand, last four digits and
/// expiry only. Never a full number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentMethod {
    pub id: String,
    pub brand: Option<String>,
    pub last4: Option<String>,
    pub exp_month: Option<u32>,
    pub exp_year: Option<u32>,
    pub customer: Option<String>,
    pub metadata: Metadata,
    pub created: i64,
    pub livemode: bool,
    pub sandbox: bool,
}

/// Stripe's wire shape of a payment method (the card details nested under `card`).
#[derive(Serialize, Deserialize)]
struct WirePaymentMethod {
    id: String,
    #[serde(default)]
    object: Option<String>,
    #[serde(rename = "type", default)]
    pm_type: Option<String>,
    #[serde(default)]
    card: Option<WireCard>,
    #[serde(default, deserialize_with = "expandable_id")]
    customer: Option<String>,
    #[serde(default, deserialize_with = "metadata_or_empty")]
    metadata: Metadata,
    #[serde(default)]
    created: i64,
    #[serde(default)]
    livemode: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    sandbox: bool,
}

#[derive(Serialize, Deserialize)]
struct WireCard {
    #[serde(default)]
    brand: Option<String>,
    #[serde(default)]
    last4: Option<String>,
    #[serde(default)]
    exp_month: Option<u32>,
    #[serde(default)]
    exp_year: Option<u32>,
}

impl Serialize for PaymentMethod {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WirePaymentMethod {
            id: self.id.clone(),
            object: Some("payment_method".into()),
            pm_type: Some("card".into()),
            card: Some(WireCard {
                brand: self.brand.clone(),
                last4: self.last4.clone(),
                exp_month: self.exp_month,
                exp_year: self.exp_year,
            }),
            customer: self.customer.clone(),
            metadata: self.metadata.clone(),
            created: self.created,
            livemode: self.livemode,
            sandbox: self.sandbox,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for PaymentMethod {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = WirePaymentMethod::deserialize(d)?;
        let card = w.card.unwrap_or(WireCard {
            brand: None,
            last4: None,
            exp_month: None,
            exp_year: None,
        });
        Ok(PaymentMethod {
            id: w.id,
            brand: card.brand,
            last4: card.last4,
            exp_month: card.exp_month,
            exp_year: card.exp_year,
            customer: w.customer,
            metadata: w.metadata,
            created: w.created,
            livemode: w.livemode,
            sandbox: w.sandbox,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    /// Yen (zero-decimal).
    pub amount: i64,
    #[serde(default)]
    pub amount_received: i64,
    pub currency: String,
    pub status: IntentStatus,
    #[serde(default, deserialize_with = "expandable_id")]
    pub customer: Option<String>,
    #[serde(default, deserialize_with = "expandable_id")]
    pub payment_method: Option<String>,
    /// For the SPA only (confirming with the JS library); not stored, not logged.
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub last_payment_error: Option<LastPaymentError>,
    #[serde(default)]
    pub next_action: Option<NextAction>,
    #[serde(default, deserialize_with = "metadata_or_empty")]
    pub metadata: Metadata,
    #[serde(default)]
    pub created: i64,
    #[serde(default, deserialize_with = "expandable_id")]
    pub latest_charge: Option<String>,
    #[serde(default)]
    pub cancellation_reason: Option<String>,
    #[serde(default)]
    pub livemode: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub sandbox: bool,
}

impl PaymentIntent {
    /// The 3-D Secure URL to send the citizen to, when the gateway gave one.
    pub fn redirect_url(&self) -> Option<&str> {
        self.next_action
            .as_ref()
            .and_then(|a| a.redirect_to_url.as_ref())
            .map(|r| r.url.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refund {
    pub id: String,
    pub amount: i64,
    #[serde(default)]
    pub currency: String,
    #[serde(default)]
    pub status: Option<RefundStatus>,
    #[serde(default, deserialize_with = "expandable_id")]
    pub payment_intent: Option<String>,
    #[serde(default, deserialize_with = "expandable_id")]
    pub charge: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default, deserialize_with = "metadata_or_empty")]
    pub metadata: Metadata,
    #[serde(default)]
    pub created: i64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub sandbox: bool,
}

/// The part of a charge that reconciliation needs (`charge.refunded` carries a charge).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Charge {
    pub id: String,
    pub amount: i64,
    #[serde(default)]
    pub amount_refunded: i64,
    #[serde(default)]
    pub currency: String,
    #[serde(default, deserialize_with = "expandable_id")]
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub refunded: bool,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "metadata_or_empty")]
    pub metadata: Metadata,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub livemode: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub sandbox: bool,
}

/// The object an event is about, typed when we know its kind, raw JSON otherwise.
#[derive(Debug, Clone, PartialEq)]
pub enum EventObject {
    PaymentIntent(Box<PaymentIntent>),
    SetupIntent(Box<SetupIntent>),
    PaymentMethod(Box<PaymentMethod>),
    Customer(Box<Customer>),
    Charge(Box<Charge>),
    Refund(Box<Refund>),
    Other(serde_json::Value),
}

impl EventObject {
    /// Types by the object's `object` field; an object that does not read as its type stays
    /// raw rather than failing the whole event.
    pub fn from_value(v: serde_json::Value) -> Self {
        fn typed<T: serde::de::DeserializeOwned>(
            v: serde_json::Value,
            wrap: impl FnOnce(T) -> EventObject,
        ) -> EventObject {
            match serde_json::from_value::<T>(v.clone()) {
                Ok(t) => wrap(t),
                Err(_) => EventObject::Other(v),
            }
        }
        let kind = v
            .get("object")
            .and_then(|o| o.as_str())
            .unwrap_or("")
            .to_owned();
        match kind.as_str() {
            "payment_intent" => typed(v, |t| EventObject::PaymentIntent(Box::new(t))),
            "setup_intent" => typed(v, |t| EventObject::SetupIntent(Box::new(t))),
            "payment_method" => typed(v, |t| EventObject::PaymentMethod(Box::new(t))),
            "customer" => typed(v, |t| EventObject::Customer(Box::new(t))),
            "charge" => typed(v, |t| EventObject::Charge(Box::new(t))),
            "refund" => typed(v, |t| EventObject::Refund(Box::new(t))),
            _ => EventObject::Other(v),
        }
    }

    pub fn to_value(&self) -> serde_json::Value {
        fn with_kind<T: Serialize>(t: &T, kind: &str) -> serde_json::Value {
            let mut v = serde_json::to_value(t).unwrap_or(serde_json::Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.insert("object".into(), serde_json::Value::String(kind.into()));
            }
            v
        }
        match self {
            EventObject::PaymentIntent(t) => with_kind(t, "payment_intent"),
            EventObject::SetupIntent(t) => with_kind(t, "setup_intent"),
            EventObject::PaymentMethod(t) => with_kind(t, "payment_method"),
            EventObject::Customer(t) => with_kind(t, "customer"),
            EventObject::Charge(t) => with_kind(t, "charge"),
            EventObject::Refund(t) => with_kind(t, "refund"),
            EventObject::Other(v) => v.clone(),
        }
    }
}

impl Serialize for EventObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for EventObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(EventObject::from_value(serde_json::Value::deserialize(d)?))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventData {
    pub object: EventObject,
}

/// A gateway event (webhook payload or an entry of [`PaymentGateway::list_events`]).
///
/// Handlers take the state from `data.object` (the object as it was when the event was
/// made) or, better, re-read the object: events can arrive late, twice, or out of order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub created: i64,
    pub data: EventData,
    #[serde(default)]
    pub livemode: bool,
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub sandbox: bool,
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// What went wrong, by what the caller should do about it. Callers decide on the variant,
/// never on message text (which comes from the gateway and may change).
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GatewayError {
    /// The issuer refused the card: show the citizen a reason and let them use another card.
    #[error("card declined ({code}, decline_code {decline_code:?})")]
    CardDeclined {
        code: String,
        decline_code: Option<String>,
        message: Option<String>,
        /// The intent the attempt belonged to, when the gateway says.
        payment_intent: Option<String>,
    },
    /// The card needs 3-D Secure and the citizen is not present (off-session): ask them to
    /// pay on-session.
    #[error("authentication required")]
    AuthenticationRequired { payment_intent: Option<String> },
    /// The idempotency key was used with other parameters (a bug on our side).
    #[error("idempotency conflict: {message}")]
    IdempotencyConflict { message: String },
    /// The gateway refused the parameters or the object's state.
    #[error("invalid request ({code:?}, param {param:?}): {message}")]
    InvalidRequest {
        code: Option<String>,
        param: Option<String>,
        message: String,
    },
    #[error("not found: {message}")]
    NotFound { message: String },
    /// Too many requests, still after the adapter's retries. Retry later.
    #[error("rate limited")]
    RateLimited,
    /// No answer in time, after the adapter's retries. The request may have gone through:
    /// retry with the same idempotency key.
    #[error("gateway timeout")]
    Timeout,
    /// Connection failure, after the adapter's retries. Retry with the same key.
    #[error("transport error: {0}")]
    Transport(String),
    /// The gateway answered 5xx, after the adapter's retries. Retry with the same key.
    #[error("gateway error (HTTP {status})")]
    Upstream { status: u16 },
    /// Our credentials or configuration are wrong (401/403, no account for the tenant).
    #[error("gateway configuration: {0}")]
    Config(String),
    /// The sandbox's own storage failed (sandbox only).
    #[error("sandbox storage: {0}")]
    Storage(String),
    /// The gateway answered something we could not read.
    #[error("unexpected gateway response: {0}")]
    Protocol(String),
}

impl GatewayError {
    /// A stable name of the variant, for logs and metrics (messages may carry input).
    pub fn kind(&self) -> &'static str {
        match self {
            GatewayError::CardDeclined { .. } => "card_declined",
            GatewayError::AuthenticationRequired { .. } => "authentication_required",
            GatewayError::IdempotencyConflict { .. } => "idempotency_conflict",
            GatewayError::InvalidRequest { .. } => "invalid_request",
            GatewayError::NotFound { .. } => "not_found",
            GatewayError::RateLimited => "rate_limited",
            GatewayError::Timeout => "timeout",
            GatewayError::Transport(_) => "transport",
            GatewayError::Upstream { .. } => "upstream",
            GatewayError::Config(_) => "config",
            GatewayError::Storage(_) => "storage",
            GatewayError::Protocol(_) => "protocol",
        }
    }

    /// The gateway's error or decline code, when there is one.
    pub fn code(&self) -> Option<&str> {
        match self {
            GatewayError::CardDeclined {
                decline_code: Some(d),
                ..
            } => Some(d),
            GatewayError::CardDeclined { code, .. } => Some(code),
            GatewayError::InvalidRequest { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// Safe to try again later with the same idempotency key.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            GatewayError::RateLimited
                | GatewayError::Timeout
                | GatewayError::Transport(_)
                | GatewayError::Upstream { .. }
                | GatewayError::Storage(_)
        )
    }
}

impl From<madoguchi_ports::PortError> for GatewayError {
    fn from(e: madoguchi_ports::PortError) -> Self {
        GatewayError::Storage(e.to_string())
    }
}

// ---------------------------------------------------------------------------------------
// The port
// ---------------------------------------------------------------------------------------

/// A card-payment gateway for one or more tenants. See the module contract.
#[async_trait]
pub trait PaymentGateway: Send + Sync {
    /// `true` for the sandbox: callers show "テスト環境" and never treat its payments as money.
    fn is_sandbox(&self) -> bool;

    async fn create_customer(
        &self,
        tenant: &TenantId,
        customer: &NewCustomer,
        key: &IdempotencyKey,
    ) -> GatewayResult<Customer>;

    async fn retrieve_customer(&self, tenant: &TenantId, customer: &str)
    -> GatewayResult<Customer>;

    /// Starts saving a card: the SPA confirms the returned `client_secret` with the gateway's
    /// JS library, and the card ends up attached to the customer.
    async fn create_setup_intent(
        &self,
        tenant: &TenantId,
        request: &NewSetupIntent,
        key: &IdempotencyKey,
    ) -> GatewayResult<SetupIntent>;

    /// The customer's saved cards (at most 100).
    async fn list_payment_methods(
        &self,
        tenant: &TenantId,
        customer: &str,
    ) -> GatewayResult<Vec<PaymentMethod>>;

    /// Makes an attached card the one used when none is named.
    async fn set_default_payment_method(
        &self,
        tenant: &TenantId,
        customer: &str,
        payment_method: &str,
    ) -> GatewayResult<Customer>;

    /// Removes a saved card from its customer (the citizen deletes or replaces it).
    async fn detach_payment_method(
        &self,
        tenant: &TenantId,
        payment_method: &str,
    ) -> GatewayResult<PaymentMethod>;

    /// With `confirm`, a decline is `Err(CardDeclined)` and an off-session card needing
    /// 3-D Secure is `Err(AuthenticationRequired)`; the intent then exists in
    /// `requires_payment_method` (its id is in the error).
    async fn create_payment_intent(
        &self,
        tenant: &TenantId,
        request: &NewPaymentIntent,
        key: &IdempotencyKey,
    ) -> GatewayResult<PaymentIntent>;

    async fn confirm_payment_intent(
        &self,
        tenant: &TenantId,
        payment_intent: &str,
        payment_method: Option<&str>,
        key: &IdempotencyKey,
    ) -> GatewayResult<PaymentIntent>;

    async fn retrieve_payment_intent(
        &self,
        tenant: &TenantId,
        payment_intent: &str,
    ) -> GatewayResult<PaymentIntent>;

    /// Only before success (e.g. an unpaid pending payment that timed out).
    async fn cancel_payment_intent(
        &self,
        tenant: &TenantId,
        payment_intent: &str,
    ) -> GatewayResult<PaymentIntent>;

    /// Partial or full; more than what is left is `InvalidRequest`.
    async fn create_refund(
        &self,
        tenant: &TenantId,
        request: &NewRefund,
        key: &IdempotencyKey,
    ) -> GatewayResult<Refund>;

    /// For reconciliation: newest first, paged.
    async fn list_payment_intents(
        &self,
        tenant: &TenantId,
        params: &ListParams,
    ) -> GatewayResult<List<PaymentIntent>>;

    /// For reconciliation of missed webhooks: newest first, paged. Stripe keeps events for
    /// 30 days.
    async fn list_events(
        &self,
        tenant: &TenantId,
        params: &ListParams,
    ) -> GatewayResult<List<Event>>;
}
