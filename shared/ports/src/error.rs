//! The error every port returns. Adapters map their backend's errors onto these variants;
//! callers decide on the variant, never on a backend's message text.

use thiserror::Error;

pub type PortResult<T> = Result<T, PortError>;

#[derive(Debug, Error)]
pub enum PortError {
    /// A write's condition did not hold (item exists, version differs). For a transaction,
    /// `index` names the first operation whose condition failed, when the backend says so.
    #[error("condition failed{}", .index.map(|i| format!(" at operation {i}")).unwrap_or_default())]
    ConditionFailed { index: Option<usize> },
    /// The thing addressed does not exist (blob, queue, key).
    #[error("not found")]
    NotFound,
    /// The caller passed something the port refuses (bad cursor, cursor of another
    /// partition, too many operations in a transaction, empty key).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A data key or ciphertext could not be unwrapped: wrong encryption context,
    /// tampered bytes or another key. Never says which, on purpose.
    #[error("decryption refused")]
    DecryptionRefused,
    /// The backend is unreachable or throttling after the adapter's own retries.
    /// Safe to retry later.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// Anything else. The message never carries personal data (adapters log keys and
    /// sizes, never item contents).
    #[error("backend error: {0}")]
    Backend(String),
}

impl PortError {
    pub fn is_condition_failed(&self) -> bool {
        matches!(self, PortError::ConditionFailed { .. })
    }
}
