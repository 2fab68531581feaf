//! Malware scanning of uploaded objects (citizens' attachments).
//!
//! # Contract
//! - `verdict(key)` tells what is known about one object of the scanner's bucket *now*. It
//!   never starts a scan: scanning happens on its own after an upload (AWS: GuardDuty
//!   Malware Protection for S3), and callers ask again later while the verdict is
//!   [`ScanVerdict::Pending`].
//! - Only [`ScanVerdict::Clean`] means "scanned, no threat found". Staff screens show every
//!   other verdict as such (未検査 / 検査中 / 検出 / 検査失敗) and never as clean.
//! - A deployment without a scanner (the embedded mode) answers [`ScanVerdict::NotScanned`]
//!   for every key, so staff see "not scanned" rather than a false "clean".

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::PortResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanVerdict {
    /// No scanner in this deployment: the object will never be scanned.
    NotScanned,
    /// A scanner is in place but has not reported on this object yet.
    Pending,
    /// Scanned; no threat found.
    Clean,
    /// Scanned; a threat was found. Do not open or pass on the object.
    Infected,
    /// The scanner gave up: unsupported file (e.g. password-protected archive), access
    /// denied, or a failed scan. Treat like an unscanned file.
    Failed,
}

impl ScanVerdict {
    /// True only for [`ScanVerdict::Clean`].
    pub fn is_clean(self) -> bool {
        self == ScanVerdict::Clean
    }
}

/// Reports the malware-scan verdict of objects in one bucket.
#[async_trait]
pub trait MalwareScanner: Send + Sync {
    /// The verdict on the object `bucket_key` of this scanner's bucket. A missing object is
    /// `PortError::NotFound` where the adapter looks at the object (AWS); a scanner that
    /// never scans (embedded) answers `NotScanned` without looking.
    async fn verdict(&self, bucket_key: &str) -> PortResult<ScanVerdict>;
}

/// The scanner where there is none: the embedded mode (one box), and AWS deployments that
/// switched GuardDuty Malware Protection off (`MADOGUCHI_MALWARE_SCAN=off`). Every object is
/// [`ScanVerdict::NotScanned`] and staff see "not scanned" (未検査), never "clean". It answers
/// without looking at the object.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotScannedScanner;

#[async_trait]
impl MalwareScanner for NotScannedScanner {
    async fn verdict(&self, _bucket_key: &str) -> PortResult<ScanVerdict> {
        Ok(ScanVerdict::NotScanned)
    }
}
