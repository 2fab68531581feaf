//! Madoguchi domain: the pure core shared by every function.
//!
//! No I/O, no async, no clock reads: anything time-dependent takes `now` as an
//! argument, so every rule here is testable and runs the same on Lambda and in the
//! embedded host.

pub mod authz;
pub mod date;
pub mod error;
pub mod filetype;
pub mod form;
pub mod ids;
pub mod money;
pub mod mynumber;
pub mod receipt;
pub mod tenant;
pub mod wareki;
pub mod workflow;

pub use date::{Date, parse_japanese_date, today_in_tokyo};
pub use error::{DomainError, FieldError, PROBLEM_CONTENT_TYPE, Problem, problem_types};
pub use ids::{ApplicationId, AttachmentId, FormId, Id, IdKind};
pub use money::Yen;
pub use receipt::ReceiptNumber;
pub use tenant::TenantId;
pub use wareki::{Era, FIRST_SUPPORTED_DATE, Wareki, format_wareki};
pub use workflow::ApplicationStatus;
