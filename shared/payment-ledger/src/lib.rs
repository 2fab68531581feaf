//! The payment ledger of an application (手数料の収納): the fee, every card charge and refund,
//! what is due now, and the flows that move it over the payment-gateway port.
//!
//! - [`model`]: the ledger and its rules, pure.
//! - [`keys`]: where ledgers, the open index, handled event ids, the daily journal and
//!   citizens' gateway customers are stored.
//! - [`flows`]: [`Payments`], the operations the `payments`, `payment-events` and
//!   `submissions` functions share.
//!
//! See `docs/payments.md`.

pub mod flows;
pub mod keys;
pub mod model;

pub use flows::{
    Applied, DEFAULT_PENDING, EventMessage, JournalItem, PENDING_MINUTES_ENV, PayError, PayOutcome,
    PayRequest, PaymentSettings, Payments, ReconcileReport, japan_day, ledger_ops,
    pending_timeout_from,
};
pub use model::{
    ChargeRecord, ChargeRefused, ChargeStatus, JournalLine, Ledger, LedgerEntry, LedgerStatus,
    RefundRecord, RefundState,
};
