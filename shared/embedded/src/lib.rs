//! Embedded adapters: every port on one box, no cloud account.
//!
//! | port        | adapter            | storage                                          |
//! |-------------|--------------------|--------------------------------------------------|
//! | `ItemStore` | [`SqliteItemStore`]| `DATA_DIR/madoguchi.sqlite3`, table `items`      |
//! | `Queue`     | [`SqliteQueue`]    | same database, table `queue_messages`            |
//! | `BlobStore` | [`FsBlobStore`]    | `DATA_DIR/blobs/<bucket>/<key>` (plain files)    |
//! | `Keys`      | [`LocalKeys`]      | `DATA_DIR/keys/master.key` (32 bytes, mode 0600) |
//! | `Mailer`    | [`OutboxMailer`]   | `DATA_DIR/outbox/<timestamp>-<uuid>.eml`         |
//! | `MalwareScanner` | [`NotScannedScanner`] | none: there is no scanner on one box     |
//!
//! Presigned blob URLs and presigned POST forms are HMAC-SHA-256 signed with
//! `DATA_DIR/keys/presign.key` and checked by [`PresignVerifier`] in the local host.
//!
//! SQLite runs in WAL mode with `synchronous=NORMAL` behind one connection and a mutex; every
//! call runs on tokio's blocking pool so the async workers are never stalled.
//!
//! Logging: keys, counts and sizes only; never item data, blob bodies, mail addresses or
//! mail bodies.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use madoguchi_ports::{Clock, PortError};
use zeroize::Zeroizing;

mod blobs;
mod db;
mod fsutil;
mod items;
mod keys;
mod mail;
mod presign;
mod queue;

pub use blobs::{FsBlobStore, StreamPutError};
pub use items::SqliteItemStore;
pub use keys::LocalKeys;
pub use mail::OutboxMailer;
pub use presign::{POST_SIGNATURE_FIELD, PostGrant, PresignVerifier};
pub use queue::SqliteQueue;

use db::Db;

/// The embedded mode's [`MalwareScanner`]: there is none on one box (see the port's
/// [`NotScannedScanner`]).
pub use madoguchi_ports::scan::NotScannedScanner;

/// File name of the SQLite database inside the data directory.
pub const DATABASE_FILE: &str = "madoguchi.sqlite3";

/// Settings of one embedded queue (SQS's queue attributes and redrive policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    /// How long a received message stays hidden before it is delivered again.
    pub visibility_timeout: Duration,
    /// A message already received this many times goes to `<name>-dlq` instead of being
    /// delivered again (SQS `maxReceiveCount`). `0` disables the dead-letter move.
    pub max_receives: u32,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(30),
            max_receives: 5,
        }
    }
}

/// All embedded adapters over one data directory. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedBackend {
    data_dir: PathBuf,
    public_base_url: Arc<str>,
    clock: Arc<dyn Clock>,
    db: Db,
    items: Arc<SqliteItemStore>,
    keys: Arc<LocalKeys>,
    mailer: Arc<OutboxMailer>,
    presign_key: Arc<Zeroizing<[u8; 32]>>,
}

impl fmt::Debug for EmbeddedBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedBackend")
            .field("data_dir", &self.data_dir)
            .field("public_base_url", &self.public_base_url)
            .finish_non_exhaustive()
    }
}

impl EmbeddedBackend {
    /// Creates DATA_DIR/{madoguchi.sqlite3, blobs/, keys/, outbox/} as needed.
    ///
    /// Opening an existing data directory keeps its keys, items, queues, blobs and mail.
    /// This does blocking file and database I/O; call it during start-up.
    pub fn open(
        data_dir: &Path,
        public_base_url: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, PortError> {
        // A new data directory is owner-only (0700): it holds personal data and keys.
        fsutil::create_private_dir(data_dir)?;
        let keys_dir = data_dir.join("keys");
        fsutil::create_private_dir(&keys_dir)?;
        for sub in ["blobs", "outbox"] {
            std::fs::create_dir_all(data_dir.join(sub))
                .map_err(|e| fsutil::io_err("create data dir", e))?;
        }
        let master = keys::load_or_create_key(&keys_dir.join("master.key"))?;
        let presign_key = keys::load_or_create_key(&keys_dir.join("presign.key"))?;
        let db = Db::open(&data_dir.join(DATABASE_FILE))?;
        let items = Arc::new(SqliteItemStore::new(db.clone(), clock.clone()));
        let keys = Arc::new(LocalKeys::new(master));
        let mailer = Arc::new(OutboxMailer::new(data_dir.join("outbox"), clock.clone()));
        tracing::info!(data_dir = %data_dir.display(), "embedded backend opened");
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            public_base_url: Arc::from(public_base_url.trim_end_matches('/')),
            clock,
            db,
            items,
            keys,
            mailer,
            presign_key: Arc::new(presign_key),
        })
    }

    /// The data directory this backend was opened on.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn items(&self) -> Arc<SqliteItemStore> {
        self.items.clone()
    }

    /// The bucket's objects live in `DATA_DIR/blobs/<bucket>/<key>`. A bucket name outside
    /// S3's rules (3–63 of `a-z0-9.-`) gives a store whose every call fails with `Invalid`.
    pub fn blobs(&self, bucket: &str) -> Arc<FsBlobStore> {
        Arc::new(FsBlobStore::new(
            self.data_dir.join("blobs"),
            bucket,
            self.public_base_url.clone(),
            self.presign_key.clone(),
            self.clock.clone(),
        ))
    }

    /// The outbox: files for core systems (後方連携) in `DATA_DIR/outbox/<system>/<date>/`,
    /// where a core system's file transfer picks them up (each data file's manifest is
    /// written after it).
    pub fn outbox(&self) -> Arc<FsBlobStore> {
        Arc::new(FsBlobStore::new(
            self.data_dir.clone(),
            "outbox",
            self.public_base_url.clone(),
            self.presign_key.clone(),
            self.clock.clone(),
        ))
    }

    /// Messages that reached `settings.max_receives` move to the queue named `<name>-dlq`.
    /// A name outside SQS's rules (1–80 of `A-Za-z0-9-_`) gives a queue whose every call
    /// fails with `Invalid`.
    pub fn queue(&self, name: &str, settings: QueueSettings) -> Arc<SqliteQueue> {
        Arc::new(SqliteQueue::new(
            self.db.clone(),
            name,
            settings,
            self.clock.clone(),
        ))
    }

    pub fn keys(&self) -> Arc<LocalKeys> {
        self.keys.clone()
    }

    pub fn mailer(&self) -> Arc<OutboxMailer> {
        self.mailer.clone()
    }

    pub fn presign_verifier(&self) -> PresignVerifier {
        PresignVerifier::new(self.presign_key.clone())
    }

    /// The clock every adapter of this backend reads (the host checks presigned URLs and
    /// forms against it).
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// The malware scanner of the embedded mode: none ([`NotScannedScanner`]).
    pub fn scanner(&self) -> Arc<NotScannedScanner> {
        Arc::new(NotScannedScanner)
    }
}

#[cfg(test)]
mod tests;
