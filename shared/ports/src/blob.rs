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
//! - `presign_post` returns a browser upload form for one key with a size range (S3's POST
//!   policy; embedded: an HMAC-signed policy served by the local host). See
//!   [`BlobStore::presign_post`] for the whole contract.
//! - `upload` writes one object from a sequence of chunks with memory bounded by one part
//!   (S3 multipart upload; embedded: a temp file renamed into place). The object appears only
//!   when [`BlobUpload::finish`] succeeds. See [`BlobStore::upload`] for the whole contract.
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

/// Longest lifetime of a presigned URL or upload policy (S3's limit for SigV4 presigned URLs;
/// both adapter sets refuse longer ones).
pub const MAX_PRESIGN_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// Largest `max_bytes` of an [`UploadPolicy`]: S3's limit for one POST upload (5 GiB).
pub const MAX_POST_UPLOAD_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// Name of the form part that carries the file in a presigned POST upload. It comes after
/// every field of [`PresignedPost::fields`]; anything after it is ignored.
pub const UPLOAD_FILE_FIELD: &str = "file";

/// What a presigned POST upload may store: exactly `key`, a body of `min_bytes..=max_bytes`
/// bytes, until `expires_in` from now, and (when set) with exactly this content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPolicy {
    pub key: String,
    /// Smallest body accepted (inclusive). `1` refuses empty files.
    pub min_bytes: u64,
    /// Largest body accepted (inclusive), at most [`MAX_POST_UPLOAD_BYTES`].
    pub max_bytes: u64,
    /// How long the form stays usable: 1 second to [`MAX_PRESIGN_LIFETIME`].
    pub expires_in: Duration,
    /// When set, the form carries a `Content-Type` field with this value, the client may not
    /// change it, and the stored object has it.
    pub content_type: Option<String>,
}

impl UploadPolicy {
    pub fn new(
        key: impl Into<String>,
        min_bytes: u64,
        max_bytes: u64,
        expires_in: Duration,
    ) -> Self {
        Self {
            key: key.into(),
            min_bytes,
            max_bytes,
            expires_in,
            content_type: None,
        }
    }

    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Checks the policy against the contract's rules; adapters call it before signing.
    pub fn check(&self) -> PortResult<()> {
        check_key(&self.key)?;
        if self.min_bytes > self.max_bytes || self.max_bytes > MAX_POST_UPLOAD_BYTES {
            return Err(PortError::Invalid(
                "upload size range must be min <= max <= 5 GiB".into(),
            ));
        }
        if self.expires_in.is_zero() || self.expires_in > MAX_PRESIGN_LIFETIME {
            return Err(PortError::Invalid(
                "upload policy lifetime is 1 second to 7 days".into(),
            ));
        }
        if let Some(ct) = &self.content_type
            && (ct.is_empty()
                || ct.len() > 255
                || !ct.bytes().all(|b| b.is_ascii_graphic() || b == b' '))
        {
            return Err(PortError::Invalid("content type not allowed".into()));
        }
        Ok(())
    }

    /// When a policy made at `now` expires: `now + expires_in`, rounded up to a whole second
    /// (both adapters sign whole seconds).
    pub fn expires_at(&self, now: jiff::Timestamp) -> jiff::Timestamp {
        let secs = self.expires_in.as_secs() + u64::from(self.expires_in.subsec_nanos() > 0);
        let at = now
            .as_second()
            .saturating_add(i64::try_from(secs).unwrap_or(i64::MAX));
        jiff::Timestamp::from_second(at).unwrap_or(jiff::Timestamp::MAX)
    }
}

/// A browser upload form: `POST` `multipart/form-data` to `url` with every field of `fields`,
/// in order, then the file as the part named [`UPLOAD_FILE_FIELD`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedPost {
    pub url: String,
    pub fields: Vec<(String, String)>,
    /// The form is refused after this instant. It can be earlier than asked for when the
    /// signing credentials expire sooner (AWS temporary credentials).
    pub expires_at: jiff::Timestamp,
}

impl PresignedPost {
    /// The value of a field (names compare case-insensitively, as S3 does).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
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

/// One object being written in pieces, from [`BlobStore::upload`]. See there for the contract.
///
/// After an error from [`write`](BlobUpload::write), or a `write` future dropped before it
/// completed, the upload is broken: further writes and [`finish`](BlobUpload::finish) fail
/// with `Invalid`, nothing becomes visible, and [`abort`](BlobUpload::abort) (or dropping it)
/// cleans up. When `finish` fails, the upload is cleaned up as if dropped.
#[async_trait]
pub trait BlobUpload: Send {
    /// Appends bytes. Implementations buffer internally and send parts as they fill (the AWS
    /// adapter: 8 MiB parts), so memory stays bounded by one part whatever the object's size.
    /// An empty chunk is allowed and changes nothing.
    async fn write(&mut self, chunk: Bytes) -> PortResult<()>;
    /// Completes the object; only now does it become visible under its key (readers never
    /// see a half-written object). Returns the stored object's metadata (`size` is the sum of
    /// the chunks written; `content_type` the one given to [`BlobStore::upload`]).
    async fn finish(self: Box<Self>) -> PortResult<BlobMeta>;
    /// Abandons the upload; nothing becomes visible (an existing object under the key stays
    /// as it was) and the parts written so far are removed.
    async fn abort(self: Box<Self>) -> PortResult<()>;
}

#[async_trait]
pub trait BlobStore: Send + Sync {
    async fn put(&self, key: &str, body: Bytes, content_type: Option<&str>)
    -> PortResult<BlobMeta>;
    async fn get(&self, key: &str) -> PortResult<(BlobMeta, BlobBody)>;
    /// One version of an object, by the version id a versioned bucket gave it (S3 `versionId`,
    /// as in an object-created notification): what was written then, even if the key has been
    /// written again since. `NotFound` when there is no such version. A store that keeps no
    /// versions (the embedded file store; its notifications carry none) answers `Invalid`.
    async fn get_version(&self, key: &str, version: &str) -> PortResult<(BlobMeta, BlobBody)>;
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

    /// A form that lets a browser without credentials upload one object (S3's presigned POST).
    ///
    /// # Contract
    /// - The client sends `POST` `multipart/form-data` to `url` with every field of `fields`,
    ///   in the given order, followed by the file as the part named [`UPLOAD_FILE_FIELD`]
    ///   (`file`). Parts after the file are ignored.
    /// - The object is stored under `policy.key` only: the key is signed into the form and a
    ///   form whose `key` field was changed is refused.
    /// - A file larger than `max_bytes` or smaller than `min_bytes` is refused and stores
    ///   nothing (an existing object under the key stays as it was).
    /// - After `expires_at` the form is refused. `expires_at` is `now + expires_in` rounded up
    ///   to a second, or earlier when the signing credentials expire sooner.
    /// - With `content_type`, the form carries a `Content-Type` field the client may not
    ///   change, and the object is stored with that content type.
    /// - A successful upload answers `204 No Content` (S3's default `success_action_status`).
    ///   Like any other write, it produces an object-created notification where the bucket
    ///   has one (S3 bucket notifications; embedded: the host's upload notifier).
    /// - The policy is checked with [`UploadPolicy::check`]; a bad key, an empty or inverted
    ///   size range, or a lifetime outside 1 s..=7 days is `Invalid`.
    ///
    /// Refusals are answered by the upload endpoint (S3: XML errors, 400/403; embedded host:
    /// problem+json, 400/403/413), never by this call.
    async fn presign_post(&self, policy: &UploadPolicy) -> PortResult<PresignedPost>;

    /// Starts writing one object from a sequence of chunks, with memory bounded by one part
    /// whatever the object's size (a CSV export of 100,000 applications, an outbound linkage
    /// file). Write the chunks with [`BlobUpload::write`], then [`BlobUpload::finish`].
    ///
    /// # Contract
    /// - `key` is checked with [`check_key`] (and the adapter's own key rules, as for `put`)
    ///   before any I/O; a bad key is `Invalid` here, not at `finish`.
    /// - Nothing is visible under `key` until `finish` succeeds: while chunks are written,
    ///   `head` and `list` show no new object, `get` the old one (if any). `finish` replaces
    ///   an existing object atomically, as `put` does: a reader sees the old body or the new
    ///   one, never a part.
    /// - The stored object has exactly the bytes written, in order, and `content_type`
    ///   (stored as `put` stores it, so `head` and `get` report it). Its `etag` is a digest
    ///   of the content like `put`'s, but need not equal the etag of a `put` of the same bytes
    ///   (S3's multipart etags are `<md5 of the parts' md5s>-<parts>`).
    /// - An upload with no bytes at all is allowed and stores a 0-byte object.
    /// - [`BlobUpload::abort`] leaves nothing behind: no object, no parts.
    /// - An upload dropped without `finish` or `abort` makes nothing visible either:
    ///   - AWS: an unfinished S3 multipart upload is never visible as an object. The adapter
    ///     creates the multipart upload only once the first 8 MiB part is full (a smaller
    ///     object is one `PutObject` at `finish`), and on drop it spawns a best-effort
    ///     `AbortMultipartUpload` on the current Tokio runtime. Parts that outlive that (a
    ///     process killed, a frozen Lambda) are removed by the bucket lifecycle rule
    ///     `AbortIncompleteMultipartUpload` (`abort-incomplete-uploads`, 1 day, on every
    ///     bucket of the CDK stack); until then they cost storage, never visibility.
    ///   - Embedded: the body goes to a temp file (`.madoguchi-tmp-*`) in the key's directory,
    ///     which listings and reads skip; the file is removed when the upload is dropped or
    ///     aborted. Only a process crash can leave one behind, as it can for `put`.
    /// - Backend errors (an unreachable service, a full disk) surface from `write` or
    ///   `finish`; after one, the upload is broken (see [`BlobUpload`]).
    async fn upload(
        &self,
        key: &str,
        content_type: Option<&str>,
    ) -> PortResult<Box<dyn BlobUpload>>;
}

#[cfg(test)]
mod tests {
    use super::{UploadPolicy, check_key};
    use std::time::Duration;

    #[test]
    fn upload_policies_are_checked() {
        let ok = UploadPolicy::new("131016/a.pdf", 1, 10, Duration::from_secs(60));
        assert!(ok.check().is_ok());
        assert!(
            ok.clone()
                .with_content_type("application/pdf")
                .check()
                .is_ok()
        );
        for bad in [
            UploadPolicy::new("../a", 1, 10, Duration::from_secs(60)),
            UploadPolicy::new("a", 11, 10, Duration::from_secs(60)),
            UploadPolicy::new("a", 0, 6 * 1024 * 1024 * 1024, Duration::from_secs(60)),
            UploadPolicy::new("a", 0, 10, Duration::ZERO),
            UploadPolicy::new("a", 0, 10, Duration::from_secs(7 * 24 * 3600 + 1)),
            ok.clone().with_content_type(""),
            ok.clone().with_content_type("text/plain\r\nx: y"),
            ok.clone().with_content_type("画像/png"),
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn expiry_rounds_up_to_a_second() {
        let now = jiff::Timestamp::from_second(1_000).unwrap();
        let p = UploadPolicy::new("a", 0, 1, Duration::from_millis(1_500));
        assert_eq!(p.expires_at(now).as_second(), 1_002);
        let p = UploadPolicy::new("a", 0, 1, Duration::from_secs(300));
        assert_eq!(p.expires_at(now).as_second(), 1_300);
    }

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
