//! The payment flows over the ports: pay, set a fee, apply what the gateway says, cancel
//! what timed out, reconcile. Used by the `payments` function (HTTP), the `payment-events`
//! function (queue and schedule) and the submission (the ledger is created with the
//! application).
//!
//! Every change is: read the ledger, change it ([`crate::model`]), store it under its
//! version together with its entry in the open index and any new journal lines; a lost race
//! reads again. A gateway call is made only after the charge or refund it is for is stored,
//! with an idempotency key derived from it, so a retry (ours, the citizen's double click, or
//! the reconciliation job's) sends the same key and the gateway charges once.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use madoguchi_applications::keys::{APP_SK, app_pk};
use madoguchi_applications::{
    ApplicationRecord, ApplicationStatus, NotifyMessage, StatusChange, application_item,
    history_item,
};
use madoguchi_domain::Yen;
use madoguchi_domain::ids::ApplicationId;
use madoguchi_domain::tenant::TenantId;
use madoguchi_domain::workflow::{Mover, check_move};
use madoguchi_payment_gateway::{
    Event, EventObject, GatewayError, IdempotencyKey, IntentStatus, ListParams, Metadata,
    NewCustomer, NewPaymentIntent, NewRefund, PaymentGateway, PaymentIntent, PaymentTags,
    RefundReason,
};
use madoguchi_ports::{
    Clock, Condition, Item, ItemStore, Key, OutgoingMessage, PortError, QueryRequest, Queue, TxOp,
    query_all,
};
use serde::{Deserialize, Serialize};

use crate::keys::{customer_key, event_key, journal_pk, ledger_key, open_key, open_pk};
use crate::model::{ChargeRefused, ChargeStatus, JournalLine, Ledger, RefundState};

/// How many times a change is retried after losing a race for the ledger.
const RACE_RETRIES: usize = 8;
/// How long a handled event id is remembered.
const EVENT_TTL_SECS: i64 = 30 * 24 * 3600;
/// How far back reconciliation lists the gateway's payment intents and events.
pub const RECONCILE_WINDOW: SignedDuration = SignedDuration::from_hours(72);
/// A charge we claimed but the gateway never answered for, after this long, is looked up
/// and, if the gateway has no intent for it, marked failed.
const CREATING_GRACE: SignedDuration = SignedDuration::from_mins(5);

#[derive(Debug, Clone)]
pub struct PaymentSettings {
    /// Deployment name written in every intent's metadata (`environment`); reconciliation
    /// ignores intents of other environments sharing the gateway account.
    pub environment: String,
    /// Where the gateway sends the browser back after 3-D Secure (the SPA's page).
    pub return_url: Option<String>,
}

#[derive(Clone)]
pub struct Payments {
    pub items: Arc<dyn ItemStore>,
    pub gateway: Arc<dyn PaymentGateway>,
    /// The `notify` queue (payment requests, cancellations, refunds, the receipt mail).
    pub notify: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<PaymentSettings>,
}

/// Why a payment operation failed, for the HTTP layer to phrase.
#[derive(Debug, thiserror::Error)]
pub enum PayError {
    #[error("no such payment")]
    NotFound,
    #[error("the payment was cancelled")]
    Cancelled,
    #[error("nothing is due")]
    NothingDue,
    #[error("card declined: {code}")]
    Declined { code: String },
    #[error("no saved card")]
    NoSavedCard,
    #[error("gateway unavailable: {0}")]
    Unavailable(String),
    #[error("gateway refused: {0}")]
    Gateway(GatewayError),
    #[error("storage: {0}")]
    Port(#[from] PortError),
    #[error("the ledger kept changing")]
    Busy,
}

impl From<GatewayError> for PayError {
    fn from(e: GatewayError) -> Self {
        if e.is_retryable() {
            PayError::Unavailable(e.kind().to_owned())
        } else {
            PayError::Gateway(e)
        }
    }
}

/// What the citizen asked to pay with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayRequest {
    /// A gateway payment method id (the SPA's tokenisation, or a saved card's id); `None`
    /// with `use_saved_card` false creates an intent the SPA confirms itself.
    pub payment_method: Option<String>,
    /// Pay with the account's default saved card.
    pub use_saved_card: bool,
    /// Keep the new card for next time (accounts only).
    pub save_card: bool,
}

/// The answer to a payment request: the ledger after it, the charge, and the intent as the
/// gateway answered (its `client_secret` and 3-D Secure URL are for the SPA only).
#[derive(Debug, Clone)]
pub struct PayOutcome {
    pub ledger: Ledger,
    pub charge_seq: u32,
    pub intent: Option<PaymentIntent>,
}

/// What handling an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Changed,
    Unchanged,
    /// Not one of ours (another tenant, environment, or an object we do not track).
    Ignored,
    Duplicate,
}

/// What a reconciliation run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileReport {
    pub open_ledgers: usize,
    pub intents_seen: usize,
    pub events_seen: usize,
    pub ledgers_fixed: usize,
    pub refunds_sent: usize,
    pub cancelled: usize,
    pub errors: usize,
}

/// The message the webhook endpoint queues for `payment-events`: ids only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMessage {
    pub tenant: String,
    /// The verified event as the gateway sent it (objects hold ids, amounts and states; no
    /// card number ever).
    pub event: serde_json::Value,
}

fn now_str(ts: Timestamp) -> String {
    ts.to_string()
}

/// The Japan date of a timestamp, `YYYY-MM-DD`.
pub fn japan_day(at: &str) -> String {
    at.parse::<Timestamp>()
        .map(|ts| jiff::tz::offset(9).to_datetime(ts).date().to_string())
        .unwrap_or_else(|_| at.get(..10).unwrap_or_default().to_owned())
}

/// One line of the daily report as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalItem {
    pub application: ApplicationId,
    pub receipt: String,
    pub form_title: String,
    #[serde(flatten)]
    pub line: JournalLine,
}

/// The writes that store a ledger: the ledger under its version (`None`: new), its entry in
/// the open index, and the journal lines `before` did not have.
pub fn ledger_ops(
    tenant: &TenantId,
    before: Option<&Ledger>,
    after: &Ledger,
    version: Option<u64>,
) -> Vec<TxOp> {
    let mut item = Item::new(
        ledger_key(tenant, &after.application),
        serde_json::to_value(after).expect("serializable ledger"),
    );
    item.version = version.map_or(1, |v| v + 1);
    let condition = version.map_or(Condition::NotExists, Condition::VersionEquals);
    let mut ops = vec![TxOp::Put(item, condition)];
    let open = open_key(tenant, &after.application);
    if after.needs_attention() {
        ops.push(TxOp::Put(
            Item::new(open, serde_json::json!({ "since": after.updated_at })),
            Condition::None,
        ));
    } else if before.is_some_and(Ledger::needs_attention) {
        ops.push(TxOp::Delete(open, Condition::None));
    }
    let old: Vec<JournalLine> = before.map(Ledger::journal).unwrap_or_default();
    for line in after.journal() {
        if old.contains(&line) {
            continue;
        }
        let sk = format!(
            "{}#{}#{}#{:04}",
            line.at, after.application, line.kind, line.seq
        );
        let item = Item::new(
            Key::new(journal_pk(tenant, &after.slug, &japan_day(&line.at)), sk),
            serde_json::to_value(JournalItem {
                application: after.application,
                receipt: after.receipt.clone(),
                form_title: after.form_title.clone(),
                line,
            })
            .expect("serializable"),
        );
        ops.push(TxOp::Put(item, Condition::None));
    }
    ops
}

impl Payments {
    pub async fn load(
        &self,
        tenant: &TenantId,
        application: &ApplicationId,
    ) -> Result<Option<(Ledger, u64)>, PortError> {
        let Some(item) = self.items.get(&ledger_key(tenant, application)).await? else {
            return Ok(None);
        };
        let ledger: Ledger = serde_json::from_value(item.data)
            .map_err(|_| PortError::Backend("payment ledger does not parse".into()))?;
        Ok(Some((ledger, item.version)))
    }

    async fn store(
        &self,
        tenant: &TenantId,
        before: Option<&Ledger>,
        after: &Ledger,
        version: Option<u64>,
    ) -> Result<u64, PortError> {
        self.items
            .transact(ledger_ops(tenant, before, after, version))
            .await?;
        Ok(version.map_or(1, |v| v + 1))
    }

    fn now(&self) -> String {
        now_str(self.clock.now())
    }

    /// Reads, changes and stores the ledger until the change lands (`f` returns whether it
    /// changed anything). Returns the stored ledger.
    async fn update<F>(
        &self,
        tenant: &TenantId,
        application: &ApplicationId,
        mut f: F,
    ) -> Result<(Ledger, bool), PayError>
    where
        F: FnMut(&mut Ledger) -> bool + Send,
    {
        for _ in 0..RACE_RETRIES {
            let (before, version) = self
                .load(tenant, application)
                .await?
                .ok_or(PayError::NotFound)?;
            let mut after = before.clone();
            if !f(&mut after) {
                return Ok((after, false));
            }
            match self
                .store(tenant, Some(&before), &after, Some(version))
                .await
            {
                Ok(_) => return Ok((after, true)),
                Err(PortError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(PayError::Busy)
    }

    fn tags(&self, tenant: &TenantId, application: &ApplicationId, extra: Metadata) -> PaymentTags {
        PaymentTags {
            tenant: *tenant,
            application: application.to_string(),
            environment: self.settings.environment.clone(),
            extra,
        }
    }

    // ---- citizens' cards ---------------------------------------------------------------

    /// The gateway customer of a citizen account, if one was made.
    pub async fn customer(
        &self,
        tenant: &TenantId,
        owner: &str,
    ) -> Result<Option<String>, PortError> {
        Ok(self
            .items
            .get(&customer_key(tenant, owner))
            .await?
            .and_then(|i| i.data["customer"].as_str().map(str::to_owned)))
    }

    /// The citizen account's gateway customer, made on first use (one per account: the
    /// idempotency key and the conditional write both say so).
    pub async fn ensure_customer(
        &self,
        tenant: &TenantId,
        owner: &str,
        email: Option<&str>,
    ) -> Result<String, PayError> {
        if let Some(c) = self.customer(tenant, owner).await? {
            return Ok(c);
        }
        let mut metadata = Metadata::new();
        metadata.insert("tenant".into(), tenant.as_str().to_owned());
        metadata.insert("owner".into(), owner.to_owned());
        metadata.insert("environment".into(), self.settings.environment.clone());
        let key = IdempotencyKey::new(format!("cus-{}-{owner}", tenant.as_str()))?;
        let customer = self
            .gateway
            .create_customer(
                tenant,
                &NewCustomer {
                    email: email.map(str::to_owned),
                    name: None,
                    metadata,
                },
                &key,
            )
            .await?;
        let item = Item::new(
            customer_key(tenant, owner),
            serde_json::json!({ "customer": customer.id }),
        );
        match self.items.put(item, Condition::NotExists).await {
            Ok(()) => Ok(customer.id),
            // A concurrent request stored it first (the same customer, by the key).
            Err(PortError::ConditionFailed { .. }) => {
                Ok(self.customer(tenant, owner).await?.unwrap_or(customer.id))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The default saved card of a customer: the one set as default, else the newest.
    pub async fn default_card(
        &self,
        tenant: &TenantId,
        customer: &str,
    ) -> Result<Option<String>, PayError> {
        let c = self.gateway.retrieve_customer(tenant, customer).await?;
        if let Some(pm) = c.invoice_settings.default_payment_method {
            return Ok(Some(pm));
        }
        let cards = self.gateway.list_payment_methods(tenant, customer).await?;
        Ok(cards.into_iter().max_by_key(|p| p.created).map(|p| p.id))
    }

    // ---- paying --------------------------------------------------------------------------

    /// The citizen pays what is due. A second request while a charge is with the gateway
    /// answers that charge (one charge per double click); naming another card replaces a
    /// charge still waiting for the citizen.
    pub async fn pay(
        &self,
        tenant: &TenantId,
        application: &ApplicationId,
        owner: &str,
        customer: Option<String>,
        request: PayRequest,
    ) -> Result<PayOutcome, PayError> {
        let mut payment_method = request.payment_method.clone();
        if request.use_saved_card {
            let customer = customer.as_deref().ok_or(PayError::NoSavedCard)?;
            payment_method = Some(
                self.default_card(tenant, customer)
                    .await?
                    .ok_or(PayError::NoSavedCard)?,
            );
        }
        // Attach the customer when saving the card or paying with a saved one.
        let customer = customer.filter(|_| request.save_card || request.use_saved_card);
        for _ in 0..RACE_RETRIES {
            let (before, version) = self
                .load(tenant, application)
                .await?
                .ok_or(PayError::NotFound)?;
            if before.owner != owner {
                return Err(PayError::NotFound);
            }
            if let Some(charge) = before.in_flight_charge().cloned() {
                let replace = payment_method.is_some()
                    && charge.payment_method != payment_method
                    && charge.status == ChargeStatus::RequiresAction;
                if !replace {
                    return self.resume(tenant, application, charge.seq).await;
                }
                // The citizen chose another card while the old attempt waited for them.
                if let Some(intent) = &charge.intent {
                    let latest = match self.gateway.cancel_payment_intent(tenant, intent).await {
                        Ok(pi) => pi,
                        // Already finished (paid, say): read what it is.
                        Err(GatewayError::InvalidRequest { .. }) => {
                            self.gateway.retrieve_payment_intent(tenant, intent).await?
                        }
                        Err(e) => return Err(e.into()),
                    };
                    self.apply_intent(tenant, application, &latest).await?;
                } else {
                    let now = self.now();
                    self.update(tenant, application, |l| {
                        l.fail_charge(charge.seq, None, "replaced", &now)
                    })
                    .await?;
                }
                continue;
            }
            let mut after = before.clone();
            let now = self.now();
            let seq = match after.begin_charge(
                payment_method.clone(),
                customer.clone(),
                request.save_card && customer.is_some(),
                &now,
            ) {
                Ok(seq) => seq,
                Err(ChargeRefused::Cancelled) => return Err(PayError::Cancelled),
                Err(ChargeRefused::NothingDue) => {
                    // A retried request after the payment went through answers the payment.
                    if let Some(paid) = before
                        .charges
                        .iter()
                        .rev()
                        .find(|c| c.status == ChargeStatus::Succeeded)
                        .filter(|_| before.due() == Yen::ZERO)
                    {
                        return Ok(PayOutcome {
                            charge_seq: paid.seq,
                            ledger: before,
                            intent: None,
                        });
                    }
                    return Err(PayError::NothingDue);
                }
                Err(ChargeRefused::InFlight(seq)) => {
                    return self.resume(tenant, application, seq).await;
                }
            };
            match self
                .store(tenant, Some(&before), &after, Some(version))
                .await
            {
                Ok(_) => return self.send_charge(tenant, &after, seq).await,
                Err(PortError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(PayError::Busy)
    }

    /// A charge already claimed: ask the gateway where it stands (or send it again with its
    /// key if it never got an answer) and answer with it.
    async fn resume(
        &self,
        tenant: &TenantId,
        application: &ApplicationId,
        seq: u32,
    ) -> Result<PayOutcome, PayError> {
        let (ledger, _) = self
            .load(tenant, application)
            .await?
            .ok_or(PayError::NotFound)?;
        let charge = ledger.charge(seq).cloned().ok_or(PayError::NotFound)?;
        match &charge.intent {
            None if charge.status == ChargeStatus::Creating => {
                self.send_charge(tenant, &ledger, seq).await
            }
            None => Ok(PayOutcome {
                ledger,
                charge_seq: seq,
                intent: None,
            }),
            Some(intent) => {
                let fresh = self.gateway.retrieve_payment_intent(tenant, intent).await?;
                let ledger = self.apply_intent(tenant, application, &fresh).await?;
                Ok(PayOutcome {
                    ledger,
                    charge_seq: seq,
                    intent: Some(fresh),
                })
            }
        }
    }

    /// Sends a stored charge to the gateway (with the charge's own idempotency key) and
    /// records the answer.
    async fn send_charge(
        &self,
        tenant: &TenantId,
        ledger: &Ledger,
        seq: u32,
    ) -> Result<PayOutcome, PayError> {
        let application = ledger.application;
        let charge = ledger.charge(seq).cloned().ok_or(PayError::NotFound)?;
        let mut extra = Metadata::new();
        extra.insert("attempt".into(), seq.to_string());
        extra.insert("receipt".into(), ledger.receipt.clone());
        let request = NewPaymentIntent {
            amount: charge.amount,
            customer: charge.customer.clone(),
            payment_method: charge.payment_method.clone(),
            confirm: charge.payment_method.is_some(),
            off_session: false,
            save_payment_method: charge.save_card,
            return_url: self.settings.return_url.clone(),
            description: Some(format!(
                "{} 手数料（受付番号 {}）",
                ledger.form_title, ledger.receipt
            )),
            tags: self.tags(tenant, &application, extra),
        };
        let key = IdempotencyKey::new(charge.idempotency_key(&application))?;
        match self
            .gateway
            .create_payment_intent(tenant, &request, &key)
            .await
        {
            Ok(intent) => {
                let ledger = self.apply_intent(tenant, &application, &intent).await?;
                Ok(PayOutcome {
                    ledger,
                    charge_seq: seq,
                    intent: Some(intent),
                })
            }
            Err(GatewayError::CardDeclined {
                code,
                decline_code,
                payment_intent,
                ..
            }) => {
                let code = decline_code.unwrap_or(code);
                let now = self.now();
                self.update(tenant, &application, |l| {
                    l.fail_charge(seq, payment_intent.clone(), &code, &now)
                })
                .await?;
                Err(PayError::Declined { code })
            }
            Err(e) if e.is_retryable() => {
                // Unknown outcome: the charge stays `creating`; the next request or the
                // reconciliation job sends it again with the same key.
                tracing::warn!(application = %application, seq, kind = e.kind(), "charge outcome unknown");
                Err(e.into())
            }
            Err(e) => {
                let now = self.now();
                let kind = e.code().unwrap_or(e.kind()).to_owned();
                self.update(tenant, &application, |l| {
                    l.fail_charge(seq, None, &kind, &now)
                })
                .await?;
                Err(e.into())
            }
        }
    }

    /// Records a payment intent's state (from the pay answer, a webhook or reconciliation)
    /// and moves the application on when it is paid.
    pub async fn apply_intent(
        &self,
        tenant: &TenantId,
        application: &ApplicationId,
        intent: &PaymentIntent,
    ) -> Result<Ledger, PayError> {
        let now = self.now();
        let (ledger, changed) = self
            .update(tenant, application, |l| l.apply_intent(intent, &now))
            .await?;
        if changed {
            self.after_change(tenant, &ledger).await?;
        }
        Ok(ledger)
    }

    /// What follows a ledger change: the application leaves 支払待ち once paid; a saved card
    /// becomes the default when the account had none.
    async fn after_change(&self, tenant: &TenantId, ledger: &Ledger) -> Result<(), PayError> {
        if ledger.due() == Yen::ZERO && ledger.paid() > Yen::ZERO && !ledger.cancelled {
            self.settle_application(tenant, &ledger.application, ApplicationStatus::Received)
                .await?;
        }
        // Only the change that made a card-saving charge succeed asks (later changes of the
        // same ledger would only repeat the question).
        if let Some(c) = ledger.charges.iter().rev().find(|c| {
            c.status == ChargeStatus::Succeeded
                && c.save_card
                && c.succeeded_at.as_deref() == Some(ledger.updated_at.as_str())
        }) && let (Some(customer), Some(pm)) = (&c.customer, &c.charged_method)
        {
            match self.gateway.retrieve_customer(tenant, customer).await {
                Ok(cus) if cus.invoice_settings.default_payment_method.is_none() => {
                    if let Err(e) = self
                        .gateway
                        .set_default_payment_method(tenant, customer, pm)
                        .await
                    {
                        tracing::warn!(kind = e.kind(), "saved card not made the default");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(kind = e.kind(), "customer not read"),
            }
        }
        Ok(())
    }

    /// Moves an application out of 支払待ち (a system move), with its history entry, and
    /// queues the notice. Does nothing when it is not waiting for payment any more.
    pub async fn settle_application(
        &self,
        tenant: &TenantId,
        application: &ApplicationId,
        to: ApplicationStatus,
    ) -> Result<bool, PayError> {
        let key = Key::new(app_pk(tenant, application), APP_SK);
        for _ in 0..RACE_RETRIES {
            let Some(item) = self.items.get(&key).await? else {
                return Ok(false);
            };
            let mut record: ApplicationRecord = serde_json::from_value(item.data)
                .map_err(|_| PortError::Backend("application record does not parse".into()))?;
            if check_move(record.status, to, Mover::System).is_err() {
                return Ok(false);
            }
            let now = self.now();
            record.timeline.push(StatusChange {
                from: record.status,
                to,
                at: now.clone(),
                by: "system".into(),
                message: match to {
                    ApplicationStatus::Received => "お支払いを確認しました".into(),
                    _ => "期限までにお支払いが完了しなかったため取り消しました".into(),
                },
            });
            record.status = to;
            let mut app = application_item(tenant, &record);
            app.version = item.version + 1;
            let ops = vec![
                TxOp::Put(app, Condition::VersionEquals(item.version)),
                TxOp::Put(history_item(tenant, &record), Condition::None),
            ];
            match self.items.transact(ops).await {
                Ok(()) => {
                    let event = match to {
                        ApplicationStatus::Received => "received",
                        _ => "payment_cancelled",
                    };
                    if event != "received" || record.notify.iter().any(|e| e == "received") {
                        self.queue_notice(tenant, application, event, None).await;
                    }
                    tracing::info!(application = %application, to = to.as_str(), "application settled");
                    return Ok(true);
                }
                Err(PortError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(PayError::Busy)
    }

    /// Queues a notice for the `notify` function. Never fails the caller: the change it
    /// announces is stored; a lost notice is logged.
    pub async fn queue_notice(
        &self,
        tenant: &TenantId,
        application: &ApplicationId,
        event: &str,
        seq: Option<u64>,
    ) {
        let body = serde_json::to_string(&NotifyMessage {
            tenant: tenant.as_str().to_owned(),
            application: *application,
            event: event.to_owned(),
            seq,
        })
        .expect("serializable");
        for attempt in 0..3u32 {
            match self
                .notify
                .send_batch(vec![OutgoingMessage::new(body.clone())])
                .await
            {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, attempt, application = %application, event, "notice not queued");
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
            }
        }
        tracing::error!(application = %application, event, "notice dropped after retries");
    }

    // ---- staff: the fee -------------------------------------------------------------------

    /// Staff set or change the fee of an application. A raise (or a first fee) asks the
    /// citizen for what is due; a cut below what was paid refunds the difference.
    pub async fn set_fee(
        &self,
        tenant: &TenantId,
        record: &ApplicationRecord,
        timing_if_new: madoguchi_domain::form::PaymentTiming,
        fee: Yen,
        reason: &str,
    ) -> Result<Ledger, PayError> {
        let now = self.now();
        if self.load(tenant, &record.id).await?.is_none() {
            let ledger = Ledger::new(
                record.id,
                &record.tenant,
                &record.slug,
                &record.receipt,
                &record.form_title,
                &record.owner,
                timing_if_new,
                None,
                &now,
            );
            match self.store(tenant, None, &ledger, None).await {
                Ok(_) | Err(PortError::ConditionFailed { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let (ledger, _) = self
            .update(tenant, &record.id, |l| {
                if l.cancelled {
                    return false;
                }
                l.set_fee(fee, reason, &now);
                l.plan_refunds(&now);
                true
            })
            .await?;
        if ledger.cancelled {
            return Err(PayError::Cancelled);
        }
        if ledger.due() > Yen::ZERO && ledger.in_flight_charge().is_none() {
            let seq = ledger
                .history
                .iter()
                .filter(|h| h.kind == "fee_set")
                .count() as u64;
            self.queue_notice(tenant, &record.id, "payment_requested", Some(seq))
                .await;
        }
        self.send_refunds(tenant, &record.id).await
    }

    /// Sends every refund still `creating` (each with its own key) and records the answers.
    /// A gateway failure leaves the refund for the next run.
    pub async fn send_refunds(
        &self,
        tenant: &TenantId,
        application: &ApplicationId,
    ) -> Result<Ledger, PayError> {
        let (mut ledger, _) = self
            .load(tenant, application)
            .await?
            .ok_or(PayError::NotFound)?;
        let creating: Vec<_> = ledger
            .refunds
            .iter()
            .filter(|r| r.status == RefundState::Creating)
            .cloned()
            .collect();
        for r in creating {
            let mut metadata = self
                .tags(tenant, application, Metadata::new())
                .to_metadata();
            metadata.insert("refund_seq".into(), r.seq.to_string());
            let key = IdempotencyKey::new(r.idempotency_key(application))?;
            let request = NewRefund {
                payment_intent: r.intent.clone(),
                amount: Some(r.amount),
                reason: Some(RefundReason::RequestedByCustomer),
                metadata,
            };
            match self.gateway.create_refund(tenant, &request, &key).await {
                Ok(refund) => {
                    let now = self.now();
                    let (l, _) = self
                        .update(tenant, application, |l| l.apply_refund(&refund, &now))
                        .await?;
                    ledger = l;
                    self.queue_notice(tenant, application, "refunded", Some(u64::from(r.seq)))
                        .await;
                }
                Err(e) => {
                    tracing::warn!(application = %application, seq = r.seq, kind = e.kind(), "refund not sent; left for reconciliation");
                }
            }
        }
        Ok(ledger)
    }

    // ---- gateway events --------------------------------------------------------------------

    /// Whether an event id was handled already.
    pub async fn seen_event(&self, tenant: &TenantId, event_id: &str) -> Result<bool, PortError> {
        Ok(self
            .items
            .get(&event_key(tenant, event_id))
            .await?
            .is_some())
    }

    /// Handles one verified gateway event: drops a duplicate, takes the state from the
    /// gateway's current object (never from the order of arrival), and remembers the id.
    pub async fn handle_event(
        &self,
        tenant: &TenantId,
        event: &Event,
    ) -> Result<Applied, PayError> {
        if self.seen_event(tenant, &event.id).await? {
            return Ok(Applied::Duplicate);
        }
        let applied = self.apply_event(tenant, event).await?;
        let mut marker = Item::new(
            event_key(tenant, &event.id),
            serde_json::json!({ "type": event.event_type, "handled_at": self.now() }),
        );
        marker.expires_at = Some(self.clock.now().as_second() + EVENT_TTL_SECS);
        // A concurrent delivery of the same event did the same work: either write wins.
        self.items.put(marker, Condition::None).await?;
        Ok(applied)
    }

    fn ours(&self, tenant: &TenantId, metadata: &Metadata) -> Option<ApplicationId> {
        if metadata.get("tenant").map(String::as_str) != Some(tenant.as_str())
            || metadata.get("environment") != Some(&self.settings.environment)
        {
            return None;
        }
        ApplicationId::parse(metadata.get("application")?).ok()
    }

    async fn apply_event(&self, tenant: &TenantId, event: &Event) -> Result<Applied, PayError> {
        match &event.data.object {
            EventObject::PaymentIntent(pi) => {
                let Some(application) = self.ours(tenant, &pi.metadata) else {
                    return Ok(Applied::Ignored);
                };
                // Re-read: a late event carries an old state.
                let fresh = match self.gateway.retrieve_payment_intent(tenant, &pi.id).await {
                    Ok(p) => p,
                    Err(GatewayError::NotFound { .. }) => return Ok(Applied::Ignored),
                    Err(e) => return Err(e.into()),
                };
                self.apply_and_report(tenant, &application, &fresh).await
            }
            EventObject::Refund(r) => {
                let Some(application) = self.ours(tenant, &r.metadata) else {
                    return Ok(Applied::Ignored);
                };
                let now = self.now();
                match self
                    .update(tenant, &application, |l| l.apply_refund(r, &now))
                    .await
                {
                    Ok((_, true)) => Ok(Applied::Changed),
                    Ok((_, false)) => Ok(Applied::Unchanged),
                    Err(PayError::NotFound) => Ok(Applied::Ignored),
                    Err(e) => Err(e),
                }
            }
            EventObject::Charge(c) => {
                // `charge.*`: the intent it belongs to holds the state we keep.
                let Some(pi) = &c.payment_intent else {
                    return Ok(Applied::Ignored);
                };
                let fresh = match self.gateway.retrieve_payment_intent(tenant, pi).await {
                    Ok(p) => p,
                    Err(GatewayError::NotFound { .. }) => return Ok(Applied::Ignored),
                    Err(e) => return Err(e.into()),
                };
                let Some(application) = self.ours(tenant, &fresh.metadata) else {
                    return Ok(Applied::Ignored);
                };
                self.apply_and_report(tenant, &application, &fresh).await
            }
            _ => Ok(Applied::Ignored),
        }
    }

    async fn apply_and_report(
        &self,
        tenant: &TenantId,
        application: &ApplicationId,
        intent: &PaymentIntent,
    ) -> Result<Applied, PayError> {
        let before = match self.load(tenant, application).await? {
            Some((l, _)) => l,
            None => return Ok(Applied::Ignored),
        };
        let after = self.apply_intent(tenant, application, intent).await?;
        Ok(if after != before {
            Applied::Changed
        } else {
            Applied::Unchanged
        })
    }

    // ---- the schedule: time-outs and reconciliation ----------------------------------------

    /// One scheduled run: every open ledger is brought up to date with the gateway
    /// (in-flight charges read back, unsent refunds sent, unpaid payments at submission
    /// past their time cancelled with their application), then the gateway's recent intents
    /// and refund events are compared with our records.
    pub async fn reconcile(&self, tenant: &TenantId) -> ReconcileReport {
        let mut report = ReconcileReport::default();
        let open = match query_all(
            self.items.as_ref(),
            QueryRequest::partition(open_pk(tenant)).limit(100),
            100_000,
        )
        .await
        {
            Ok(items) => items,
            Err(e) => {
                tracing::error!(error = %e, "open payments not listed");
                report.errors += 1;
                return report;
            }
        };
        report.open_ledgers = open.len();
        for item in open {
            let Ok(application) = ApplicationId::parse(&item.key.sk) else {
                continue;
            };
            match self
                .reconcile_ledger(tenant, &application, &mut report)
                .await
            {
                Ok(true) => report.ledgers_fixed += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(application = %application, error = %e, "ledger not reconciled");
                    report.errors += 1;
                }
            }
        }
        if let Err(e) = self.reconcile_gateway(tenant, &mut report).await {
            tracing::warn!(error = %e, "gateway listing not reconciled");
            report.errors += 1;
        }
        tracing::info!(?report, "reconciliation run");
        report
    }

    async fn reconcile_ledger(
        &self,
        tenant: &TenantId,
        application: &ApplicationId,
        report: &mut ReconcileReport,
    ) -> Result<bool, PayError> {
        let Some((start, _)) = self.load(tenant, application).await? else {
            // The index outlived its ledger: drop the entry.
            self.items
                .delete(&open_key(tenant, application), Condition::None)
                .await?;
            return Ok(false);
        };
        let now_ts = self.clock.now();
        // 1. Charges the gateway has not finished: read them back.
        for charge in start.charges.iter().filter(|c| c.status.in_flight()) {
            match &charge.intent {
                Some(intent) => {
                    let fresh = self.gateway.retrieve_payment_intent(tenant, intent).await?;
                    self.apply_intent(tenant, application, &fresh).await?;
                }
                None => {
                    let old = charge
                        .created_at
                        .parse::<Timestamp>()
                        .map(|t| now_ts.duration_since(t) > CREATING_GRACE)
                        .unwrap_or(true);
                    if old {
                        self.settle_creating(tenant, application, charge.seq)
                            .await?;
                    }
                }
            }
        }
        // 2. Refunds: plan what an excess needs, send what was never sent.
        let now = self.now();
        self.update(tenant, application, |l| !l.plan_refunds(&now).is_empty())
            .await?;
        let (mid, _) = self
            .load(tenant, application)
            .await?
            .ok_or(PayError::NotFound)?;
        let unsent = mid
            .refunds
            .iter()
            .filter(|r| r.status == RefundState::Creating)
            .count();
        if unsent > 0 {
            let after = self.send_refunds(tenant, application).await?;
            report.refunds_sent += unsent
                - after
                    .refunds
                    .iter()
                    .filter(|r| r.status == RefundState::Creating)
                    .count();
        }
        // 3. Time-outs and withdrawn applications.
        self.expire(tenant, application, report).await?;
        let (end, _) = self
            .load(tenant, application)
            .await?
            .ok_or(PayError::NotFound)?;
        if !end.needs_attention() {
            // Stored ledgers remove their own entry; this one may predate that.
            self.items
                .delete(&open_key(tenant, application), Condition::None)
                .await?;
        }
        Ok(end != start)
    }

    /// A charge whose creation answer was lost: find its intent by the attempt tag, or fail
    /// it if the gateway never made one.
    async fn settle_creating(
        &self,
        tenant: &TenantId,
        application: &ApplicationId,
        seq: u32,
    ) -> Result<(), PayError> {
        let since = self.clock.now() - RECONCILE_WINDOW;
        let mut params = ListParams {
            created_gte: Some(since.as_second()),
            ..ListParams::default()
        };
        loop {
            let page = self.gateway.list_payment_intents(tenant, &params).await?;
            for pi in &page.data {
                if self.ours(tenant, &pi.metadata) == Some(*application)
                    && pi.metadata.get("attempt").map(String::as_str)
                        == Some(seq.to_string().as_str())
                {
                    self.apply_intent(tenant, application, pi).await?;
                    return Ok(());
                }
            }
            match (page.has_more, page.data.last()) {
                (true, Some(last)) => params.starting_after = Some(last.id.clone()),
                _ => break,
            }
        }
        let now = self.now();
        self.update(tenant, application, |l| {
            l.fail_charge(seq, None, "not_created", &now)
        })
        .await?;
        Ok(())
    }

    /// Cancels an unpaid payment at submission past its time (or whose application the
    /// citizen withdrew): the open intent is cancelled at the gateway first; if it turns out
    /// paid, it is recorded as paid instead.
    async fn expire(
        &self,
        tenant: &TenantId,
        application: &ApplicationId,
        report: &mut ReconcileReport,
    ) -> Result<(), PayError> {
        let (ledger, _) = self
            .load(tenant, application)
            .await?
            .ok_or(PayError::NotFound)?;
        if ledger.cancelled || ledger.due() == Yen::ZERO {
            return Ok(());
        }
        let app_status = self.application_status(tenant, application).await?;
        let withdrawn = matches!(
            app_status,
            Some(ApplicationStatus::Withdrawn | ApplicationStatus::Cancelled)
        );
        let timed_out = app_status == Some(ApplicationStatus::PaymentPending)
            && ledger
                .expires_at
                .as_deref()
                .and_then(|e| e.parse::<Timestamp>().ok())
                .is_some_and(|e| self.clock.now() >= e);
        if !withdrawn && !timed_out {
            return Ok(());
        }
        for charge in ledger.charges.iter().filter(|c| c.status.in_flight()) {
            if let Some(intent) = &charge.intent {
                match self.gateway.cancel_payment_intent(tenant, intent).await {
                    Ok(pi) => {
                        self.apply_intent(tenant, application, &pi).await?;
                    }
                    // Already succeeded or canceled: read what it is.
                    Err(GatewayError::InvalidRequest { .. }) => {
                        let pi = self.gateway.retrieve_payment_intent(tenant, intent).await?;
                        self.apply_intent(tenant, application, &pi).await?;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let now = self.now();
        let (ledger, changed) = self
            .update(tenant, application, |l| {
                // Paid after all (the cancel lost to a success): keep it.
                if l.cancelled || l.due() == Yen::ZERO || l.in_flight_charge().is_some() {
                    return false;
                }
                l.cancel(&now);
                true
            })
            .await?;
        if changed && ledger.cancelled {
            report.cancelled += 1;
            if timed_out {
                self.settle_application(tenant, application, ApplicationStatus::Cancelled)
                    .await?;
            }
        }
        Ok(())
    }

    async fn application_status(
        &self,
        tenant: &TenantId,
        application: &ApplicationId,
    ) -> Result<Option<ApplicationStatus>, PortError> {
        let Some(item) = self
            .items
            .get(&Key::new(app_pk(tenant, application), APP_SK))
            .await?
        else {
            return Ok(None);
        };
        Ok(item.data["status"]
            .as_str()
            .and_then(ApplicationStatus::parse))
    }

    /// Compares the gateway's recent intents and refund events with our ledgers (a lost
    /// webhook leaves a ledger behind the gateway; this catches it even when the ledger is
    /// not in the open index).
    async fn reconcile_gateway(
        &self,
        tenant: &TenantId,
        report: &mut ReconcileReport,
    ) -> Result<(), PayError> {
        let since = (self.clock.now() - RECONCILE_WINDOW).as_second();
        let mut params = ListParams {
            created_gte: Some(since),
            ..ListParams::default()
        };
        loop {
            let page = self.gateway.list_payment_intents(tenant, &params).await?;
            for pi in &page.data {
                report.intents_seen += 1;
                let Some(application) = self.ours(tenant, &pi.metadata) else {
                    continue;
                };
                let Some((ledger, _)) = self.load(tenant, &application).await? else {
                    continue;
                };
                let recorded = ledger
                    .charges
                    .iter()
                    .find(|c| c.intent.as_deref() == Some(pi.id.as_str()))
                    .map(|c| c.status);
                let matches = matches!(
                    (&pi.status, recorded),
                    (IntentStatus::Succeeded, Some(ChargeStatus::Succeeded))
                        | (IntentStatus::Canceled, Some(ChargeStatus::Canceled))
                        | (IntentStatus::Processing, Some(ChargeStatus::Processing))
                        | (
                            IntentStatus::RequiresAction,
                            Some(ChargeStatus::RequiresAction)
                        )
                        | (
                            IntentStatus::RequiresPaymentMethod,
                            Some(ChargeStatus::Failed)
                        )
                );
                if !matches
                    && self.apply_and_report(tenant, &application, pi).await? == Applied::Changed
                {
                    report.ledgers_fixed += 1;
                }
            }
            match (page.has_more, page.data.last()) {
                (true, Some(last)) => params.starting_after = Some(last.id.clone()),
                _ => break,
            }
        }
        let mut params = ListParams {
            created_gte: Some(since),
            ..ListParams::default()
        };
        loop {
            let page = self.gateway.list_events(tenant, &params).await?;
            for event in &page.data {
                report.events_seen += 1;
                if let EventObject::Refund(_) = &event.data.object
                    && self.apply_event(tenant, event).await? == Applied::Changed
                {
                    report.ledgers_fixed += 1;
                }
            }
            match (page.has_more, page.data.last()) {
                (true, Some(last)) => params.starting_after = Some(last.id.clone()),
                _ => break,
            }
        }
        Ok(())
    }
}

/// Environment variable: minutes a payment at submission may stay unpaid (5..=1440).
pub const PENDING_MINUTES_ENV: &str = "MADOGUCHI_PAYMENT_PENDING_MINUTES";
/// Default of [`PENDING_MINUTES_ENV`].
pub const DEFAULT_PENDING: SignedDuration = SignedDuration::from_mins(30);

/// Reads [`PENDING_MINUTES_ENV`]'s value (`None`: the default).
pub fn pending_timeout_from(value: Option<&str>) -> Result<SignedDuration, String> {
    match value {
        None => Ok(DEFAULT_PENDING),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if (5..=1440).contains(&n) => Ok(SignedDuration::from_mins(n)),
            _ => Err(format!(
                "{PENDING_MINUTES_ENV} must be a whole number of minutes from 5 to 1440"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_timeout_reads_minutes_in_range() {
        assert_eq!(pending_timeout_from(None), Ok(DEFAULT_PENDING));
        assert_eq!(
            pending_timeout_from(Some("45")),
            Ok(SignedDuration::from_mins(45))
        );
        for bad in ["4", "1441", "", "x", "-10"] {
            assert!(pending_timeout_from(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn japan_day_is_the_date_in_japan() {
        assert_eq!(japan_day("2026-12-01T15:30:00Z"), "2026-12-02");
        assert_eq!(japan_day("2026-12-01T14:59:59Z"), "2026-12-01");
    }
}
