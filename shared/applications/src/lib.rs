//! The stored records of the application service and the keys they live under.
//!
//! Several functions read and write the same records: `forms` publishes form versions that
//! `submissions` reads; `submissions` writes drafts, attachments and applications that the
//! `attachments` consumer, `notify` and (later) `staff` read. Keeping the record types and key
//! builders in one crate keeps them from drifting apart. Access patterns: `docs/data-model.md`.

pub mod keys;
pub mod records;

pub use keys::Owner;
pub use records::*;
