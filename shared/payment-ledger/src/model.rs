//! The ledger of one application's fee (手数料): what is owed, every card charge and refund,
//! and what is due now. Pure: no I/O. The flows ([`crate::flows`]) load it, call these
//! methods with what the gateway said, and store it under a version condition.
//!
//! Amounts are derived, never stored twice: `paid` is the sum of succeeded charges,
//! `refunded` the sum of refunds that are not failed (a refund asked for is committed money),
//! `due = fee − (paid − refunded)` when positive, `excess` the opposite.
//!
//! State comes from the gateway's object, never from the order events arrive in: applying
//! the same intent twice, or an older webhook after a newer one, changes nothing (a
//! succeeded charge never goes back; the other states follow the freshly read object).

use madoguchi_domain::Yen;
use madoguchi_domain::form::{FeeBreakdown, PaymentTiming};
use madoguchi_domain::ids::ApplicationId;
use madoguchi_payment_gateway::{IntentStatus, PaymentIntent, Refund, RefundStatus};
use serde::{Deserialize, Serialize};

/// One card charge attempt (one gateway payment intent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeStatus {
    /// Claimed in our ledger; the gateway's answer has not been recorded yet.
    Creating,
    /// Waiting for the citizen (3-D Secure).
    RequiresAction,
    /// The gateway is finishing it.
    Processing,
    Succeeded,
    /// Declined, or the citizen failed 3-D Secure.
    Failed,
    Canceled,
}

impl ChargeStatus {
    pub fn in_flight(self) -> bool {
        matches!(
            self,
            Self::Creating | Self::RequiresAction | Self::Processing
        )
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::RequiresAction => "requires_action",
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeRecord {
    /// 1, 2, … per application: the idempotency key is `pay-<application>-<seq>`.
    pub seq: u32,
    pub amount: Yen,
    pub status: ChargeStatus,
    /// The gateway's payment intent, once it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// The card the charge was asked with, as the request named it (a gateway id or a test
    /// token, never a number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
    /// The payment method the gateway charged (its own id, which a saved card keeps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charged_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    #[serde(default)]
    pub save_card: bool,
    /// The gateway's decline code (`insufficient_funds`, …) of a failed charge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succeeded_at: Option<String>,
}

impl ChargeRecord {
    pub fn idempotency_key(&self, application: &ApplicationId) -> String {
        format!("pay-{application}-{}", self.seq)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundState {
    /// Claimed; the gateway has not answered yet (retried with the same key).
    Creating,
    Pending,
    Succeeded,
    Failed,
}

impl RefundState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRecord {
    /// 1, 2, …: the idempotency key is `refund-<application>-<seq>`.
    pub seq: u32,
    pub amount: Yen,
    /// The charge's payment intent the money goes back from.
    pub intent: String,
    pub status: RefundState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succeeded_at: Option<String>,
}

impl RefundRecord {
    pub fn idempotency_key(&self, application: &ApplicationId) -> String {
        format!("refund-{application}-{}", self.seq)
    }
}

/// One line of the ledger's history, shown to staff (and, without `by`, to the citizen).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub at: String,
    /// `fee_set`, `charge_succeeded`, `charge_failed`, `charge_canceled`, `refund_requested`,
    /// `refund_succeeded`, `refund_failed`, `cancelled`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Yen>,
    /// `staff`, `citizen` or `system` (never an identifier: the citizen sees the history).
    pub by: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// Where the application's payment stands, for both screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerStatus {
    /// No fee and nothing paid.
    NoFee,
    /// A fee is set and not (fully) paid; the citizen may pay.
    Unpaid,
    /// A charge is with the gateway or waiting for 3-D Secure.
    InProgress,
    Paid,
    /// Paid more than the fee: a refund is under way.
    RefundPending,
    /// An unpaid payment at submission that timed out; nothing more can be paid.
    Cancelled,
}

impl LedgerStatus {
    pub fn label_ja(self) -> &'static str {
        match self {
            Self::NoFee => "手数料なし",
            Self::Unpaid => "未払い",
            Self::InProgress => "決済処理中",
            Self::Paid => "支払済み",
            Self::RefundPending => "返金処理中",
            Self::Cancelled => "取消",
        }
    }
}

/// Why a charge cannot start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeRefused {
    /// The payment was cancelled (timed out); the application cannot be paid any more.
    Cancelled,
    /// Nothing is due.
    NothingDue,
    /// Another charge is with the gateway (a double click or a retried request): its seq.
    InFlight(u32),
}

/// The ledger of one application (`APP` partition, `PAYMENT` item).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    pub application: ApplicationId,
    pub tenant: String,
    pub slug: String,
    pub receipt: String,
    pub form_title: String,
    /// The application owner's key part (the citizen check compares it).
    pub owner: String,
    pub timing: PaymentTiming,
    /// What the application costs now, in total.
    pub fee: Yen,
    /// How the fee at submission was computed (staff changes replace it with their amount).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<FeeBreakdown>,
    /// Whether the citizen has been asked to pay (at submission, or a fee set by staff).
    pub requested: bool,
    #[serde(default)]
    pub charges: Vec<ChargeRecord>,
    #[serde(default)]
    pub refunds: Vec<RefundRecord>,
    #[serde(default)]
    pub history: Vec<LedgerEntry>,
    /// For a payment at submission: when an unpaid application is cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub cancelled: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// A money movement for the daily payment report (one per succeeded charge or refund).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalLine {
    /// `charge` or `refund`.
    pub kind: String,
    pub seq: u32,
    pub at: String,
    pub amount: Yen,
    /// The gateway's payment intent (charge) or refund id.
    pub gateway_id: String,
}

impl Ledger {
    /// A new ledger. `requested` is true when the citizen must pay now (at submission).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        application: ApplicationId,
        tenant: &str,
        slug: &str,
        receipt: &str,
        form_title: &str,
        owner: &str,
        timing: PaymentTiming,
        breakdown: Option<FeeBreakdown>,
        now: &str,
    ) -> Ledger {
        let fee = breakdown.as_ref().map(|b| b.total).unwrap_or(Yen::ZERO);
        let requested = timing == PaymentTiming::AtSubmission && fee > Yen::ZERO;
        let mut history = Vec::new();
        if fee > Yen::ZERO {
            history.push(LedgerEntry {
                at: now.to_owned(),
                kind: "fee_set".into(),
                amount: Some(fee),
                by: "system".into(),
                note: match timing {
                    PaymentTiming::AtSubmission => "申請時のお支払い".into(),
                    PaymentTiming::AfterAcceptance => "受付後に確定".into(),
                },
            });
        }
        Ledger {
            application,
            tenant: tenant.to_owned(),
            slug: slug.to_owned(),
            receipt: receipt.to_owned(),
            form_title: form_title.to_owned(),
            owner: owner.to_owned(),
            timing,
            fee,
            breakdown,
            requested,
            charges: Vec::new(),
            refunds: Vec::new(),
            history,
            expires_at: None,
            cancelled: false,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        }
    }

    fn sum(amounts: impl Iterator<Item = Yen>) -> Yen {
        // Fees are capped far below i64: a sum cannot overflow in practice; saturate anyway.
        Yen::checked_sum(amounts).unwrap_or(Yen::new(i64::MAX).expect("non-negative"))
    }

    /// Sum of succeeded charges.
    pub fn paid(&self) -> Yen {
        Self::sum(
            self.charges
                .iter()
                .filter(|c| c.status == ChargeStatus::Succeeded)
                .map(|c| c.amount),
        )
    }

    /// Sum of refunds asked for and not failed.
    pub fn refunded(&self) -> Yen {
        Self::sum(
            self.refunds
                .iter()
                .filter(|r| r.status != RefundState::Failed)
                .map(|r| r.amount),
        )
    }

    /// What the municipality keeps: paid − refunded.
    pub fn net(&self) -> Yen {
        self.paid()
            .checked_sub(self.refunded())
            .unwrap_or(Yen::ZERO)
    }

    /// What the citizen still owes.
    pub fn due(&self) -> Yen {
        self.fee.checked_sub(self.net()).unwrap_or(Yen::ZERO)
    }

    /// What was paid beyond the fee and not yet refunded.
    pub fn excess(&self) -> Yen {
        self.net().checked_sub(self.fee).unwrap_or(Yen::ZERO)
    }

    pub fn in_flight_charge(&self) -> Option<&ChargeRecord> {
        self.charges.iter().find(|c| c.status.in_flight())
    }

    pub fn open_refunds(&self) -> impl Iterator<Item = &RefundRecord> {
        self.refunds
            .iter()
            .filter(|r| matches!(r.status, RefundState::Creating | RefundState::Pending))
    }

    /// Whether the reconciliation job must look at this ledger: a charge or refund the
    /// gateway has not finished, an excess without a refund, or a payment at submission
    /// still unpaid (it may time out).
    pub fn needs_attention(&self) -> bool {
        self.in_flight_charge().is_some()
            || self.open_refunds().next().is_some()
            || self.excess() > Yen::ZERO
            || (!self.cancelled && self.expires_at.is_some() && self.due() > Yen::ZERO)
    }

    pub fn status(&self) -> LedgerStatus {
        if self.cancelled {
            LedgerStatus::Cancelled
        } else if self.in_flight_charge().is_some() {
            LedgerStatus::InProgress
        } else if self.open_refunds().next().is_some() || self.excess() > Yen::ZERO {
            LedgerStatus::RefundPending
        } else if self.requested && self.due() > Yen::ZERO {
            LedgerStatus::Unpaid
        } else if self.paid() > Yen::ZERO && self.due() == Yen::ZERO {
            LedgerStatus::Paid
        } else if self.fee == Yen::ZERO {
            LedgerStatus::NoFee
        } else {
            // A fee proposed by the form for after acceptance, not yet asked for.
            LedgerStatus::Unpaid
        }
    }

    /// Whether the citizen may pay now.
    pub fn payable(&self) -> bool {
        !self.cancelled && self.requested && self.due() > Yen::ZERO
    }

    /// Claims the next charge for what is due. The caller stores the ledger (under its
    /// version) before calling the gateway, so a concurrent request finds this charge.
    pub fn begin_charge(
        &mut self,
        payment_method: Option<String>,
        customer: Option<String>,
        save_card: bool,
        now: &str,
    ) -> Result<u32, ChargeRefused> {
        if self.cancelled {
            return Err(ChargeRefused::Cancelled);
        }
        if let Some(c) = self.in_flight_charge() {
            return Err(ChargeRefused::InFlight(c.seq));
        }
        let due = self.due();
        if !self.requested || due == Yen::ZERO {
            return Err(ChargeRefused::NothingDue);
        }
        let seq = self.charges.iter().map(|c| c.seq).max().unwrap_or(0) + 1;
        self.charges.push(ChargeRecord {
            seq,
            amount: due,
            status: ChargeStatus::Creating,
            intent: None,
            payment_method,
            charged_method: None,
            customer,
            save_card,
            failure: None,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
            succeeded_at: None,
        });
        self.updated_at = now.to_owned();
        Ok(seq)
    }

    pub fn charge(&self, seq: u32) -> Option<&ChargeRecord> {
        self.charges.iter().find(|c| c.seq == seq)
    }

    /// The charge an intent belongs to: by its id, or by the `attempt` tag for a charge whose
    /// creation answer was lost.
    fn charge_index_for(&self, intent: &PaymentIntent) -> Option<usize> {
        if let Some(i) = self
            .charges
            .iter()
            .position(|c| c.intent.as_deref() == Some(intent.id.as_str()))
        {
            return Some(i);
        }
        let seq: u32 = intent.metadata.get("attempt")?.parse().ok()?;
        self.charges
            .iter()
            .position(|c| c.seq == seq && c.intent.is_none())
    }

    /// Records what the gateway says of a payment intent of this application. Returns
    /// whether anything changed. An intent no charge claims is ignored (`false`).
    pub fn apply_intent(&mut self, intent: &PaymentIntent, now: &str) -> bool {
        let Some(i) = self.charge_index_for(intent) else {
            return false;
        };
        let new_status = match &intent.status {
            IntentStatus::Succeeded => ChargeStatus::Succeeded,
            IntentStatus::Processing => ChargeStatus::Processing,
            IntentStatus::RequiresAction | IntentStatus::RequiresConfirmation => {
                ChargeStatus::RequiresAction
            }
            // Stripe leaves a declined intent waiting for another card: for us the attempt
            // failed (the next one is a new charge). Without an error it is an intent the
            // SPA has yet to confirm with the citizen's card.
            IntentStatus::RequiresPaymentMethod if intent.last_payment_error.is_some() => {
                ChargeStatus::Failed
            }
            IntentStatus::RequiresPaymentMethod => ChargeStatus::RequiresAction,
            IntentStatus::Canceled => ChargeStatus::Canceled,
            // Manual capture is never asked for; an unknown state is left for later.
            IntentStatus::RequiresCapture | IntentStatus::Unknown(_) => return false,
        };
        let charge = &mut self.charges[i];
        let mut changed = false;
        if charge.intent.is_none() {
            charge.intent = Some(intent.id.clone());
            changed = true;
        }
        if intent.payment_method.is_some() && charge.charged_method != intent.payment_method {
            charge.charged_method = intent.payment_method.clone();
            changed = true;
        }
        if charge.status == ChargeStatus::Succeeded || charge.status == new_status {
            if changed {
                charge.updated_at = now.to_owned();
                self.updated_at = now.to_owned();
            }
            return changed;
        }
        // The amount taken is the gateway's: an intent is created for the charge's amount.
        charge.status = new_status;
        charge.updated_at = now.to_owned();
        let amount = charge.amount;
        let kind = match new_status {
            ChargeStatus::Succeeded => {
                charge.succeeded_at = Some(now.to_owned());
                charge.failure = None;
                Some("charge_succeeded")
            }
            ChargeStatus::Failed => {
                charge.failure = intent.last_payment_error.as_ref().and_then(|e| {
                    e.decline_code
                        .clone()
                        .or_else(|| e.code.clone())
                        .or_else(|| Some("authentication_failed".into()))
                });
                Some("charge_failed")
            }
            ChargeStatus::Canceled => Some("charge_canceled"),
            _ => None,
        };
        let note = charge.failure.clone().unwrap_or_default();
        if let Some(kind) = kind {
            self.history.push(LedgerEntry {
                at: now.to_owned(),
                kind: kind.into(),
                amount: Some(amount),
                by: "system".into(),
                note,
            });
        }
        self.updated_at = now.to_owned();
        true
    }

    /// A charge the gateway refused outright (declined while confirming): no intent to read.
    pub fn fail_charge(
        &mut self,
        seq: u32,
        intent: Option<String>,
        failure: &str,
        now: &str,
    ) -> bool {
        let Some(charge) = self.charges.iter_mut().find(|c| c.seq == seq) else {
            return false;
        };
        if !charge.status.in_flight() {
            return false;
        }
        charge.status = ChargeStatus::Failed;
        if charge.intent.is_none() {
            charge.intent = intent;
        }
        charge.failure = Some(failure.to_owned());
        charge.updated_at = now.to_owned();
        let amount = charge.amount;
        self.history.push(LedgerEntry {
            at: now.to_owned(),
            kind: "charge_failed".into(),
            amount: Some(amount),
            by: "system".into(),
            note: failure.to_owned(),
        });
        self.updated_at = now.to_owned();
        true
    }

    /// Staff set or change the fee. Afterwards `due()` says what to ask for, `excess()`
    /// what to refund ([`Self::plan_refunds`]).
    pub fn set_fee(&mut self, fee: Yen, reason: &str, now: &str) {
        self.fee = fee;
        self.requested = true;
        self.breakdown = None;
        self.history.push(LedgerEntry {
            at: now.to_owned(),
            kind: "fee_set".into(),
            amount: Some(fee),
            by: "staff".into(),
            note: reason.to_owned(),
        });
        self.updated_at = now.to_owned();
    }

    /// Claims refunds for the excess, newest succeeded charge first, each at most what is
    /// left of its charge. Returns the new refunds' seqs (stored before the gateway call).
    pub fn plan_refunds(&mut self, now: &str) -> Vec<u32> {
        let mut remaining = self.excess();
        let mut planned = Vec::new();
        if remaining == Yen::ZERO {
            return planned;
        }
        let mut next = self.refunds.iter().map(|r| r.seq).max().unwrap_or(0) + 1;
        let charges: Vec<(String, Yen)> = self
            .charges
            .iter()
            .rev()
            .filter(|c| c.status == ChargeStatus::Succeeded)
            .filter_map(|c| c.intent.clone().map(|i| (i, c.amount)))
            .collect();
        for (intent, amount) in charges {
            if remaining == Yen::ZERO {
                break;
            }
            let already = Self::sum(
                self.refunds
                    .iter()
                    .filter(|r| r.intent == intent && r.status != RefundState::Failed)
                    .map(|r| r.amount),
            );
            let left = amount.checked_sub(already).unwrap_or(Yen::ZERO);
            let take = left.min(remaining);
            if take == Yen::ZERO {
                continue;
            }
            self.refunds.push(RefundRecord {
                seq: next,
                amount: take,
                intent,
                status: RefundState::Creating,
                id: None,
                created_at: now.to_owned(),
                updated_at: now.to_owned(),
                succeeded_at: None,
            });
            self.history.push(LedgerEntry {
                at: now.to_owned(),
                kind: "refund_requested".into(),
                amount: Some(take),
                by: "system".into(),
                note: String::new(),
            });
            planned.push(next);
            next += 1;
            remaining = remaining.checked_sub(take).unwrap_or(Yen::ZERO);
        }
        if !planned.is_empty() {
            self.updated_at = now.to_owned();
        }
        planned
    }

    /// Records what the gateway says of a refund (by its id, or by the `refund_seq` tag).
    pub fn apply_refund(&mut self, refund: &Refund, now: &str) -> bool {
        let index = self
            .refunds
            .iter()
            .position(|r| r.id.as_deref() == Some(refund.id.as_str()))
            .or_else(|| {
                let seq: u32 = refund.metadata.get("refund_seq")?.parse().ok()?;
                self.refunds
                    .iter()
                    .position(|r| r.seq == seq && r.id.is_none())
            });
        let Some(i) = index else {
            return false;
        };
        let new_state = match &refund.status {
            Some(RefundStatus::Succeeded) => RefundState::Succeeded,
            Some(RefundStatus::Failed) | Some(RefundStatus::Canceled) => RefundState::Failed,
            Some(RefundStatus::Pending) | Some(RefundStatus::RequiresAction) | None => {
                RefundState::Pending
            }
            Some(RefundStatus::Unknown(_)) => return false,
        };
        let r = &mut self.refunds[i];
        let mut changed = false;
        if r.id.is_none() {
            r.id = Some(refund.id.clone());
            changed = true;
        }
        // Refunds only move forward: creating → pending → succeeded | failed.
        let rank = |s: RefundState| match s {
            RefundState::Creating => 0,
            RefundState::Pending => 1,
            RefundState::Succeeded | RefundState::Failed => 2,
        };
        if rank(new_state) > rank(r.status) {
            r.status = new_state;
            changed = true;
            let amount = r.amount;
            match new_state {
                RefundState::Succeeded => {
                    r.succeeded_at = Some(now.to_owned());
                    self.history.push(LedgerEntry {
                        at: now.to_owned(),
                        kind: "refund_succeeded".into(),
                        amount: Some(amount),
                        by: "system".into(),
                        note: String::new(),
                    });
                }
                RefundState::Failed => self.history.push(LedgerEntry {
                    at: now.to_owned(),
                    kind: "refund_failed".into(),
                    amount: Some(amount),
                    by: "system".into(),
                    note: String::new(),
                }),
                _ => {}
            }
        }
        if changed {
            if let Some(r) = self.refunds.get_mut(i) {
                r.updated_at = now.to_owned();
            }
            self.updated_at = now.to_owned();
        }
        changed
    }

    /// The payment at submission timed out: nothing more can be paid.
    pub fn cancel(&mut self, now: &str) {
        if self.cancelled {
            return;
        }
        self.cancelled = true;
        self.history.push(LedgerEntry {
            at: now.to_owned(),
            kind: "cancelled".into(),
            amount: None,
            by: "system".into(),
            note: "期限までにお支払いが完了しませんでした".into(),
        });
        self.updated_at = now.to_owned();
    }

    /// Every succeeded money movement, for the daily report.
    pub fn journal(&self) -> Vec<JournalLine> {
        let charges = self.charges.iter().filter_map(|c| {
            Some(JournalLine {
                kind: "charge".into(),
                seq: c.seq,
                at: c.succeeded_at.clone()?,
                amount: c.amount,
                gateway_id: c.intent.clone()?,
            })
        });
        let refunds = self.refunds.iter().filter_map(|r| {
            (r.status == RefundState::Succeeded).then_some(())?;
            Some(JournalLine {
                kind: "refund".into(),
                seq: r.seq,
                at: r.succeeded_at.clone()?,
                amount: r.amount,
                gateway_id: r.id.clone()?,
            })
        });
        charges.chain(refunds).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use madoguchi_domain::form::FeeItem;
    use madoguchi_payment_gateway::LastPaymentError;

    fn yen(v: i64) -> Yen {
        Yen::new(v).unwrap()
    }

    fn ledger(timing: PaymentTiming, fee: i64) -> Ledger {
        let breakdown = FeeBreakdown {
            items: vec![FeeItem {
                label: "住民票の写し".into(),
                unit_price: yen(fee),
                quantity: 1,
                amount: yen(fee),
            }],
            total: yen(fee),
        };
        Ledger::new(
            ApplicationId::parse("0190b6a0-0000-7000-8000-000000000001").unwrap(),
            "012345",
            "jumin",
            "R-1",
            "住民票",
            "a-owner",
            timing,
            Some(breakdown),
            "2026-12-02T00:00:00Z",
        )
    }

    fn intent(id: &str, seq: u32, status: IntentStatus, amount: i64) -> PaymentIntent {
        let mut metadata = madoguchi_payment_gateway::Metadata::new();
        metadata.insert("attempt".into(), seq.to_string());
        PaymentIntent {
            id: id.into(),
            amount,
            amount_received: 0,
            currency: "jpy".into(),
            status,
            customer: None,
            payment_method: None,
            client_secret: None,
            last_payment_error: None,
            next_action: None,
            metadata,
            created: 0,
            latest_charge: None,
            cancellation_reason: None,
            livemode: false,
            sandbox: true,
        }
    }

    fn refund(id: &str, seq: u32, status: RefundStatus, amount: i64) -> Refund {
        let mut metadata = madoguchi_payment_gateway::Metadata::new();
        metadata.insert("refund_seq".into(), seq.to_string());
        Refund {
            id: id.into(),
            amount,
            currency: "jpy".into(),
            status: Some(status),
            payment_intent: None,
            charge: None,
            reason: None,
            metadata,
            created: 0,
            sandbox: true,
        }
    }

    const T: &str = "2026-12-02T00:01:00Z";

    #[test]
    fn a_fee_at_submission_is_due_at_once_and_after_acceptance_is_not() {
        let l = ledger(PaymentTiming::AtSubmission, 300);
        assert_eq!(l.due(), yen(300));
        assert_eq!(l.status(), LedgerStatus::Unpaid);
        assert!(l.payable());
        let l = ledger(PaymentTiming::AfterAcceptance, 300);
        assert!(!l.payable());
        let mut l2 = l.clone();
        assert_eq!(
            l2.begin_charge(None, None, false, T),
            Err(ChargeRefused::NothingDue)
        );
    }

    #[test]
    fn a_charge_that_succeeds_pays_and_is_journaled_once() {
        let mut l = ledger(PaymentTiming::AtSubmission, 300);
        let seq = l.begin_charge(Some("pm".into()), None, true, T).unwrap();
        assert_eq!(seq, 1);
        assert_eq!(l.status(), LedgerStatus::InProgress);
        // A double click finds the charge in flight.
        assert_eq!(
            l.begin_charge(None, None, false, T),
            Err(ChargeRefused::InFlight(1))
        );
        assert!(l.apply_intent(&intent("pi_1", 1, IntentStatus::Succeeded, 300), T));
        assert_eq!(l.status(), LedgerStatus::Paid);
        assert_eq!(l.due(), Yen::ZERO);
        // The same event again, or an older one after it, changes nothing.
        assert!(!l.apply_intent(&intent("pi_1", 1, IntentStatus::Succeeded, 300), T));
        assert!(!l.apply_intent(&intent("pi_1", 1, IntentStatus::RequiresAction, 300), T));
        assert!(!l.apply_intent(&intent("pi_1", 1, IntentStatus::Processing, 300), T));
        assert_eq!(l.paid(), yen(300));
        assert_eq!(l.journal().len(), 1);
        assert_eq!(
            l.history
                .iter()
                .filter(|h| h.kind == "charge_succeeded")
                .count(),
            1
        );
    }

    #[test]
    fn out_of_order_events_end_in_the_gateway_state() {
        let mut l = ledger(PaymentTiming::AtSubmission, 500);
        l.begin_charge(None, None, false, T).unwrap();
        // `succeeded` arrives first (matched by the attempt tag), `requires_action` later.
        assert!(l.apply_intent(&intent("pi_9", 1, IntentStatus::Succeeded, 500), T));
        assert!(!l.apply_intent(&intent("pi_9", 1, IntentStatus::RequiresAction, 500), T));
        assert_eq!(l.status(), LedgerStatus::Paid);
        // An intent nobody claimed (another attempt number) is ignored.
        assert!(!l.apply_intent(&intent("pi_x", 7, IntentStatus::Succeeded, 500), T));
        assert_eq!(l.paid(), yen(500));
    }

    #[test]
    fn a_decline_fails_the_charge_and_a_new_one_can_start() {
        let mut l = ledger(PaymentTiming::AtSubmission, 300);
        l.begin_charge(None, None, false, T).unwrap();
        let mut declined = intent("pi_1", 1, IntentStatus::RequiresPaymentMethod, 300);
        declined.last_payment_error = Some(LastPaymentError {
            error_type: Some("card_error".into()),
            code: Some("card_declined".into()),
            decline_code: Some("insufficient_funds".into()),
            message: None,
        });
        assert!(l.apply_intent(&declined, T));
        assert_eq!(l.charges[0].failure.as_deref(), Some("insufficient_funds"));
        assert_eq!(l.status(), LedgerStatus::Unpaid);
        assert_eq!(l.begin_charge(None, None, false, T), Ok(2));
        // The money truth wins: the first intent succeeding later (confirmed elsewhere) counts.
        assert!(l.apply_intent(&intent("pi_1", 1, IntentStatus::Succeeded, 300), T));
        assert_eq!(l.paid(), yen(300));
    }

    #[test]
    fn raising_the_fee_asks_for_the_difference_and_lowering_refunds_it() {
        let mut l = ledger(PaymentTiming::AfterAcceptance, 0);
        l.set_fee(yen(1000), "証明書2通", T);
        assert_eq!(l.due(), yen(1000));
        l.begin_charge(None, None, false, T).unwrap();
        l.apply_intent(&intent("pi_a", 1, IntentStatus::Succeeded, 1000), T);
        l.set_fee(yen(1500), "1通追加", T);
        assert_eq!(l.due(), yen(500));
        assert_eq!(l.status(), LedgerStatus::Unpaid);
        l.begin_charge(None, None, false, T).unwrap();
        assert_eq!(l.charges[1].amount, yen(500));
        l.apply_intent(&intent("pi_b", 2, IntentStatus::Succeeded, 500), T);
        assert_eq!(l.status(), LedgerStatus::Paid);
        // Lowered to 700: 800 back, from the newest charge first (500), then 300 of the first.
        l.set_fee(yen(700), "1通取りやめ", T);
        assert_eq!(l.excess(), yen(800));
        assert_eq!(l.status(), LedgerStatus::RefundPending);
        let planned = l.plan_refunds(T);
        assert_eq!(planned, vec![1, 2]);
        assert_eq!(l.refunds[0].intent, "pi_b");
        assert_eq!(l.refunds[0].amount, yen(500));
        assert_eq!(l.refunds[1].intent, "pi_a");
        assert_eq!(l.refunds[1].amount, yen(300));
        // Planned refunds cover the excess: planning again adds nothing.
        assert!(l.plan_refunds(T).is_empty());
        assert!(l.apply_refund(&refund("re_1", 1, RefundStatus::Pending, 500), T));
        assert!(l.apply_refund(&refund("re_1", 1, RefundStatus::Succeeded, 500), T));
        // A late `pending` does not undo `succeeded`.
        assert!(!l.apply_refund(&refund("re_1", 1, RefundStatus::Pending, 500), T));
        assert!(l.apply_refund(&refund("re_2", 2, RefundStatus::Succeeded, 300), T));
        assert_eq!(l.status(), LedgerStatus::Paid);
        assert_eq!(l.net(), yen(700));
        assert_eq!(l.journal().len(), 4);
    }

    #[test]
    fn a_failed_refund_leaves_the_excess_to_plan_again() {
        let mut l = ledger(PaymentTiming::AtSubmission, 600);
        l.begin_charge(None, None, false, T).unwrap();
        l.apply_intent(&intent("pi_a", 1, IntentStatus::Succeeded, 600), T);
        l.set_fee(yen(300), "", T);
        assert_eq!(l.plan_refunds(T), vec![1]);
        l.apply_refund(&refund("re_1", 1, RefundStatus::Failed, 300), T);
        assert_eq!(l.excess(), yen(300));
        assert!(l.needs_attention());
        assert_eq!(l.plan_refunds(T), vec![2]);
    }

    #[test]
    fn a_cancelled_ledger_takes_no_payment() {
        let mut l = ledger(PaymentTiming::AtSubmission, 300);
        l.expires_at = Some(T.into());
        assert!(l.needs_attention());
        l.cancel(T);
        assert_eq!(l.status(), LedgerStatus::Cancelled);
        assert_eq!(
            l.begin_charge(None, None, false, T),
            Err(ChargeRefused::Cancelled)
        );
        assert!(!l.needs_attention());
    }

    #[test]
    fn ledger_round_trips_as_json() {
        let mut l = ledger(PaymentTiming::AtSubmission, 300);
        l.begin_charge(Some("pm_card_visa".into()), Some("cus_1".into()), true, T)
            .unwrap();
        let json = serde_json::to_value(&l).unwrap();
        let back: Ledger = serde_json::from_value(json).unwrap();
        assert_eq!(back, l);
    }
}
