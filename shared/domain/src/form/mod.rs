//! Forms (様式) and their answers: the definition staff author, the display conditions
//! (表示条件), and the checking and normalisation of what citizens submit.
//!
//! The format, the answer shapes and the limits are documented for people in
//! `docs/forms.md` (a test parses its example, so it stays true).
//!
//! - [`parse_definition`]: strict JSON → [`FormDefinition`], errors with paths.
//! - [`validate_definition`]: every rule of a publishable definition.
//! - [`visible_items`]: the one visibility engine.
//! - [`check_answers`] / [`check_draft`]: submissions and drafts.
//! - [`compute_fee`]: the 手数料 of a submission from its checked answers ([`FeeRule`]).

mod answers;
pub mod certificate;
mod condition;
mod definition;
mod fee;
mod graph;
pub mod limits;
mod parse;
pub(crate) mod text;
mod validate;
mod visibility;

pub use answers::{
    Answers, Checked, SummaryRow, check_answers, check_draft, format_phone, format_postal_code,
    normalize_email, normalize_phone, normalize_postal_code,
};
pub use condition::{Condition, Predicate};
pub use definition::{
    AccessPolicy, ApplicantType, CertItem, Choice, DEFAULT_MAX_FILES, DEFAULT_MAX_TOTAL_MB, Field,
    FieldKind, FormDefinition, NotifyEvent, PublishWindow, SignaturePolicy,
};
pub use fee::{
    FeeBreakdown, FeeItem, FeeLine, FeeRule, MAX_FEE, MIN_CHARGE, PaymentTiming, compute_fee,
};
pub use parse::{DEFAULT_MAX_FILE_MB, parse_definition};
pub use validate::{is_valid_field_id, is_valid_slug, validate_definition};
pub use visibility::visible_items;
