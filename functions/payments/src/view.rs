//! What the screens show of a ledger. Staff see the gateway ids and who did what; the
//! citizen sees amounts, states and dates.

use madoguchi_payment_ledger::{ChargeStatus, Ledger, LedgerStatus, RefundState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PaymentView {
    pub application_id: String,
    /// 受付番号.
    pub receipt_number: String,
    pub form_title: String,
    /// `no_fee`, `unpaid`, `in_progress`, `paid`, `refund_pending`, `cancelled`.
    pub status: String,
    /// 未払い, 支払済み, …
    pub status_label: String,
    /// `at_submission` or `after_acceptance`.
    pub timing: String,
    /// The fee now, in yen.
    pub fee: i64,
    pub paid: i64,
    pub refunded: i64,
    /// What the citizen still has to pay.
    pub due: i64,
    /// Whether the citizen can pay now.
    pub payable: bool,
    /// How the fee at submission was computed.
    pub lines: Vec<FeeLineView>,
    /// When an unpaid payment at submission is cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pay_by: Option<String>,
    pub charges: Vec<ChargeView>,
    pub refunds: Vec<RefundView>,
    pub history: Vec<HistoryView>,
    /// True when the payments go to the sandbox gateway (no real money moves).
    pub sandbox: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeeLineView {
    pub label: String,
    pub unit_price: i64,
    pub quantity: u32,
    pub amount: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChargeView {
    pub seq: u32,
    pub amount: i64,
    /// `creating`, `requires_action`, `processing`, `succeeded`, `failed`, `canceled`.
    pub status: String,
    /// Why it failed (the gateway's decline code), when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The same, in words for the citizen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<String>,
    /// The gateway's payment intent (staff only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_id: Option<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub succeeded_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RefundView {
    pub seq: u32,
    pub amount: i64,
    /// `creating`, `pending`, `succeeded`, `failed`.
    pub status: String,
    /// The gateway's refund id (staff only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_id: Option<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub succeeded_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HistoryView {
    pub at: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    /// `staff`, `citizen` or `system` (staff only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

fn status_name(s: LedgerStatus) -> &'static str {
    match s {
        LedgerStatus::NoFee => "no_fee",
        LedgerStatus::Unpaid => "unpaid",
        LedgerStatus::InProgress => "in_progress",
        LedgerStatus::Paid => "paid",
        LedgerStatus::RefundPending => "refund_pending",
        LedgerStatus::Cancelled => "cancelled",
    }
}

/// The view of a ledger; `staff` adds gateway ids and authors.
pub fn view(ledger: &Ledger, sandbox: bool, staff: bool) -> PaymentView {
    let status = ledger.status();
    PaymentView {
        application_id: ledger.application.to_string(),
        receipt_number: ledger.receipt.clone(),
        form_title: ledger.form_title.clone(),
        status: status_name(status).to_owned(),
        status_label: status.label_ja().to_owned(),
        timing: match ledger.timing {
            madoguchi_domain::form::PaymentTiming::AtSubmission => "at_submission",
            madoguchi_domain::form::PaymentTiming::AfterAcceptance => "after_acceptance",
        }
        .to_owned(),
        fee: ledger.fee.value(),
        paid: ledger.paid().value(),
        refunded: ledger.refunded().value(),
        due: if ledger.requested {
            ledger.due().value()
        } else {
            0
        },
        payable: ledger.payable(),
        lines: ledger
            .breakdown
            .as_ref()
            .map(|b| {
                b.items
                    .iter()
                    .map(|i| FeeLineView {
                        label: i.label.clone(),
                        unit_price: i.unit_price.value(),
                        quantity: i.quantity,
                        amount: i.amount.value(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        pay_by: ledger
            .expires_at
            .clone()
            .filter(|_| !ledger.cancelled && ledger.due().value() > 0),
        charges: ledger
            .charges
            .iter()
            .map(|c| ChargeView {
                seq: c.seq,
                amount: c.amount.value(),
                status: c.status.as_str().to_owned(),
                failure: c
                    .failure
                    .clone()
                    .filter(|_| c.status == ChargeStatus::Failed),
                failure_message: c
                    .failure
                    .as_deref()
                    .filter(|_| c.status == ChargeStatus::Failed)
                    .map(|f| crate::decline_message(f).to_owned()),
                gateway_id: c.intent.clone().filter(|_| staff),
                created_at: c.created_at.clone(),
                succeeded_at: c.succeeded_at.clone(),
            })
            .collect(),
        refunds: ledger
            .refunds
            .iter()
            .map(|r| RefundView {
                seq: r.seq,
                amount: r.amount.value(),
                status: match r.status {
                    // The citizen need not know we have not heard back yet.
                    RefundState::Creating if !staff => "pending".to_owned(),
                    s => s.as_str().to_owned(),
                },
                gateway_id: r.id.clone().filter(|_| staff),
                created_at: r.created_at.clone(),
                succeeded_at: r.succeeded_at.clone(),
            })
            .collect(),
        history: ledger
            .history
            .iter()
            .map(|h| HistoryView {
                at: h.at.clone(),
                kind: h.kind.clone(),
                amount: h.amount.map(|a| a.value()),
                by: staff.then(|| h.by.clone()),
                // Staff's reason for a fee change is for staff.
                note: if staff || h.by != "staff" {
                    h.note.clone()
                } else {
                    String::new()
                },
            })
            .collect(),
        sandbox,
    }
}
