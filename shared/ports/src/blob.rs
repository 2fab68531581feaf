//! Blob store: one bucket of objects (S3 in AWS, a directory embedded).
//!
//! # Contract
//! - `put` stores the whole body under `key` atomically: a reader sees the old object or the
//!   new one, never a part. It returns the stored object's metadata; as in S3, the `etag` is a
//!   digest of the content, so it changes when the content changes.
//! - `get` streams the body; a missing key is `NotFound`.
//! - `head` returns metadata or `None`.
//! - `delete` of a missing key succeeds.
//! - `list` returns the keys under a prefix in lexicographic order, with metadata, up to `limit`,
//!   continuing after `start_after`.
//! - `presign` returns a URL that lets a client without credentials `PUT` or `GET` exactly that
//!   key until `expires_in` passes. Embedded URLs are HMAC-signed and served by the local host.
//! - Keys are `/`-separated, never start with `/`, never contain `..`; adapters refuse others.

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncRead;

use crate::error::{PortError, PortResult};

pub type BlobBody = Pin<Box<dyn AsyncRead + Send>>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobMeta {
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub content_type: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresignMethod {
    Get,
    Put,
}

#[derive(Debug, Clone)]
pub struct Presigned {
    pub url: String,
    pub method: PresignMethod,
    /// Headers the client must send as they are (e.g. the content type that was signed).
    pub headers: Vec<(String, String)>,
}

/// Checks a blob key against the contract's rules; adapters call it before any I/O.
pub fn check_key(key: &str) -> PortResult<()> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key.len() > 1024
        || key
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        || key.chars().any(|c| c.is_control() || c == '\\');
    if bad {
        Err(PortError::Invalid("blob key not allowed".into()))
    } else {
        Ok(())
    }
}

#[async_trait]
pub trait BlobStore: Send + Sync {
    async fn put(&self, key: &str, body: Bytes, content_type: Option<&str>)
    -> PortResult<BlobMeta>;
    async fn get(&self, key: &str) -> PortResult<(BlobMeta, BlobBody)>;
    async fn head(&self, key: &str) -> PortResult<Option<BlobMeta>>;
    async fn delete(&self, key: &str) -> PortResult<()>;
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> PortResult<Vec<BlobMeta>>;
    async fn presign(
        &self,
        key: &str,
        method: PresignMethod,
        expires_in: Duration,
    ) -> PortResult<Presigned>;
}

#[cfg(test)]
mod tests {
    use super::check_key;

    #[test]
    fn keys_that_escape_or_are_empty_are_refused() {
        for bad in [
            "", "/a", "a//b", "a/../b", "..", "a/./b", "a\\b", "a\nb", "a/",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?} should be refused");
        }
        for good in ["a", "131016/forms/x.json", "inbound/jumin/2026-11-23.csv"] {
            assert!(check_key(good).is_ok(), "{good:?} should pass");
        }
    }
}
