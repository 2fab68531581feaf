//! Ports: the traits every capability is written against.
//!
//! Each port has two adapter sets: AWS (`madoguchi-aws`) and embedded (`madoguchi-embedded`).
//! The contract each trait documents is enforced by the contract suite in `tests/`, which runs
//! the same tests against both adapter sets. When an adapter and this text disagree, the
//! contract test decides.

pub mod blob;
pub mod clock;
pub mod error;
pub mod item;
pub mod keys;
pub mod mail;
pub mod queue;
pub mod scan;

pub use blob::{
    BlobBody, BlobMeta, BlobStore, BlobUpload, PresignMethod, Presigned, PresignedPost,
    UploadPolicy,
};
pub use clock::{Clock, FixedClock, IdGen, SystemClock, UuidV7Gen};
pub use error::{PortError, PortResult};
pub use item::{
    Condition, Cursor, Index, Item, ItemStore, Key, Page, QueryRequest, SortKeyCondition, TxOp,
    query_all,
};
pub use keys::{DataKey, EncryptionContext, Keys};
pub use mail::{Email, Mailer};
pub use queue::{
    BatchHandler, BatchOutcome, DriveReport, OutgoingMessage, Queue, ReceivedMessage,
    RedeliveryPolicy, drive_once,
};
pub use scan::{MalwareScanner, NotScannedScanner, ScanVerdict};
