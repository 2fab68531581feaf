//! [`BlobStore`] over one S3 bucket.
//!
//! ETags are returned without their surrounding quotes. `list` reports no content type
//! (S3's listing does not carry it; use `head`).
//!
//! `upload` ([`S3Upload`]) buffers chunks into [`UPLOAD_PART_SIZE`] parts: an object smaller
//! than one part is a single `PutObject` at `finish`; a larger one is a multipart upload
//! (`CreateMultipartUpload` when the first part is full, one `UploadPart` per part, sent as it
//! fills, `CompleteMultipartUpload` at `finish`). Parts carry CRC32 checksums (the SDK's
//! default), so the multipart upload is created with that algorithm and completed with each
//! part's checksum, as S3 requires.
//!
//! `presign_post` signs an S3 POST policy itself ([`crate::post_policy`]; the SDK has no
//! helper): with the credentials provider of the backend's SDK configuration (credentials
//! cached here until five minutes before they expire), the client's region and the
//! backend's clock. A store made with [`S3BlobStore::new`] alone cannot presign POSTs.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use madoguchi_ports::blob::check_key;
use madoguchi_ports::{
    BlobBody, BlobMeta, BlobStore, BlobUpload, Clock, PortError, PortResult, PresignMethod,
    Presigned, PresignedPost, SystemClock, UploadPolicy,
};

use crate::error::map_sdk;
use crate::post_policy::{self, SigningCredentials};

/// S3's longest presigned URL lifetime (SigV4).
pub const MAX_PRESIGN: Duration = madoguchi_ports::blob::MAX_PRESIGN_LIFETIME;
const MAX_LIST_PAGE: usize = 1000;
/// Cached credentials are fetched again this long before they expire.
const CREDENTIALS_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Size of every part of a multipart upload but the last (S3: at least 5 MiB). An upload
/// holds at most one part in memory.
pub const UPLOAD_PART_SIZE: usize = 8 * 1024 * 1024;
/// S3's largest part number: with 8 MiB parts, an upload holds at most 80 GiB.
const MAX_PARTS: usize = 10_000;

#[derive(Debug, Clone)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
    post: Arc<PostSigner>,
}

/// What presigned POST needs beyond the client: where clients post to, "now", and the
/// signing credentials (cached: the SDK caches credentials inside each operation's
/// pipeline, not in the provider this reads).
struct PostSigner {
    provider: Option<SharedCredentialsProvider>,
    endpoint: Option<String>,
    clock: Arc<dyn Clock>,
    credentials: tokio::sync::Mutex<Option<Credentials>>,
}

impl std::fmt::Debug for PostSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostSigner")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl PostSigner {
    fn new(
        provider: Option<SharedCredentialsProvider>,
        endpoint: Option<&str>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            provider,
            endpoint: endpoint.map(str::to_owned),
            clock,
            credentials: tokio::sync::Mutex::new(None),
        }
    }

    async fn credentials(&self) -> PortResult<Credentials> {
        let mut cached = self.credentials.lock().await;
        let fresh = |c: &Credentials| {
            c.expiry()
                .is_none_or(|exp| exp > SystemTime::now() + CREDENTIALS_MARGIN)
        };
        if let Some(c) = cached.as_ref().filter(|c| fresh(c)) {
            return Ok(c.clone());
        }
        let provider = self.provider.as_ref().ok_or_else(|| {
            PortError::Backend("no credentials provider for presigned POST".into())
        })?;
        let creds = provider.provide_credentials().await.map_err(|e| {
            // The provider's message names the failing source, never a secret.
            tracing::warn!(error = %e, "credentials for POST policy unavailable");
            PortError::Unavailable("credentials unavailable".into())
        })?;
        *cached = Some(creds.clone());
        Ok(creds)
    }
}

fn etag(raw: Option<&str>) -> String {
    raw.unwrap_or_default().trim_matches('"').to_owned()
}

fn size(n: Option<i64>) -> u64 {
    n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

impl S3BlobStore {
    /// A store that can do everything but `presign_post` (which needs
    /// [`S3BlobStore::with_post_signing`]; [`crate::AwsBackend::blobs`] sets it up).
    pub fn new(client: Client, bucket: &str) -> Self {
        Self {
            client,
            bucket: bucket.to_owned(),
            post: Arc::new(PostSigner::new(None, None, Arc::new(SystemClock))),
        }
    }

    /// What `presign_post` signs with: the SDK configuration's credentials provider (the
    /// S3 client does not expose it), where forms are posted (`endpoint`: an S3-compatible
    /// server such as moto, path-style; `None`: S3's regional endpoint), and the clock that
    /// dates them.
    pub fn with_post_signing(
        mut self,
        credentials: Option<SharedCredentialsProvider>,
        endpoint: Option<&str>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        self.post = Arc::new(PostSigner::new(credentials, endpoint, clock));
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

impl S3BlobStore {
    async fn get_object(
        &self,
        key: &str,
        version: Option<&str>,
    ) -> PortResult<(BlobMeta, BlobBody)> {
        check_key(key)?;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_owned))
            .send()
            .await
            .map_err(|e| map_sdk("s3", "GetObject", &e))?;
        let meta = BlobMeta {
            key: key.to_owned(),
            size: size(out.content_length()),
            etag: etag(out.e_tag()),
            content_type: out.content_type().map(str::to_owned),
        };
        tracing::debug!(bucket = %self.bucket, key, size = meta.size, "blob get");
        Ok((meta, Box::pin(out.body.into_async_read())))
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: Option<&str>,
    ) -> PortResult<BlobMeta> {
        check_key(key)?;
        let len = body.len() as u64;
        let out = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .set_content_type(content_type.map(str::to_owned))
            .send()
            .await
            .map_err(|e| map_sdk("s3", "PutObject", &e))?;
        tracing::debug!(bucket = %self.bucket, key, size = len, "blob put");
        Ok(BlobMeta {
            key: key.to_owned(),
            size: len,
            etag: etag(out.e_tag()),
            content_type: content_type.map(str::to_owned),
        })
    }

    async fn get(&self, key: &str) -> PortResult<(BlobMeta, BlobBody)> {
        self.get_object(key, None).await
    }

    async fn get_version(&self, key: &str, version: &str) -> PortResult<(BlobMeta, BlobBody)> {
        if version.is_empty() || version.len() > 1024 {
            return Err(PortError::Invalid("version id".into()));
        }
        self.get_object(key, Some(version)).await
    }

    async fn head(&self, key: &str) -> PortResult<Option<BlobMeta>> {
        check_key(key)?;
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(BlobMeta {
                key: key.to_owned(),
                size: size(out.content_length()),
                etag: etag(out.e_tag()),
                content_type: out.content_type().map(str::to_owned),
            })),
            Err(e) => match map_sdk("s3", "HeadObject", &e) {
                PortError::NotFound => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn delete(&self, key: &str) -> PortResult<()> {
        check_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| map_sdk("s3", "DeleteObject", &e))?;
        tracing::debug!(bucket = %self.bucket, key, "blob deleted");
        Ok(())
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> PortResult<Vec<BlobMeta>> {
        if prefix.starts_with('/') || prefix.split('/').any(|s| s == "..") {
            return Err(PortError::Invalid("blob prefix not allowed".into()));
        }
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        while out.len() < limit {
            let want = (limit - out.len()).min(MAX_LIST_PAGE);
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_start_after(start_after.map(str::to_owned))
                .set_continuation_token(token.take())
                .max_keys(want as i32)
                .send()
                .await
                .map_err(|e| map_sdk("s3", "ListObjectsV2", &e))?;
            out.extend(page.contents().iter().filter_map(|o| {
                Some(BlobMeta {
                    key: o.key()?.to_owned(),
                    size: size(o.size()),
                    etag: etag(o.e_tag()),
                    content_type: None,
                })
            }));
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_owned()),
                _ => break,
            }
        }
        out.truncate(limit);
        tracing::debug!(bucket = %self.bucket, prefix, count = out.len(), "blob list");
        Ok(out)
    }

    async fn presign(
        &self,
        key: &str,
        method: PresignMethod,
        expires_in: Duration,
    ) -> PortResult<Presigned> {
        check_key(key)?;
        if expires_in.is_zero() || expires_in > MAX_PRESIGN {
            return Err(PortError::Invalid("presign lifetime out of range".into()));
        }
        let config = PresigningConfig::expires_in(expires_in)
            .map_err(|_| PortError::Invalid("presign lifetime out of range".into()))?;
        let req = match method {
            PresignMethod::Get => self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .presigned(config)
                .await
                .map_err(|e| map_sdk("s3", "PresignGetObject", &e))?,
            PresignMethod::Put => self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .presigned(config)
                .await
                .map_err(|e| map_sdk("s3", "PresignPutObject", &e))?,
        };
        tracing::debug!(bucket = %self.bucket, key, ?method, secs = expires_in.as_secs(), "blob presigned");
        Ok(Presigned {
            url: req.uri().to_owned(),
            method,
            headers: req
                .headers()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        })
    }

    async fn presign_post(&self, policy: &UploadPolicy) -> PortResult<PresignedPost> {
        policy.check()?;
        let region = self
            .client
            .config()
            .region()
            .map(|r| r.to_string())
            .ok_or_else(|| PortError::Backend("no region configured".into()))?;
        let creds = self.post.credentials().await?;
        let now = self.post.clock.now();
        let mut expires_at = policy.expires_at(now);
        // A policy signed with temporary credentials stops working when they expire.
        if let Some(exp) = creds.expiry()
            && let Ok(exp) = jiff::Timestamp::try_from(exp)
            && let Ok(exp) = jiff::Timestamp::from_second(exp.as_second())
            && exp < expires_at
        {
            expires_at = exp;
        }
        if expires_at <= now {
            return Err(PortError::Unavailable("signing credentials expired".into()));
        }
        let signing = SigningCredentials {
            access_key_id: creds.access_key_id(),
            secret_access_key: creds.secret_access_key(),
            session_token: creds.session_token(),
        };
        let (_, fields) =
            post_policy::form_fields(&self.bucket, &region, signing, policy, now, expires_at);
        tracing::debug!(
            bucket = %self.bucket,
            key = %policy.key,
            max = policy.max_bytes,
            secs = expires_at.as_second() - now.as_second(),
            "blob post presigned"
        );
        Ok(PresignedPost {
            url: post_policy::post_url(&self.bucket, &region, self.post.endpoint.as_deref()),
            fields,
            expires_at,
        })
    }

    async fn upload(
        &self,
        key: &str,
        content_type: Option<&str>,
    ) -> PortResult<Box<dyn BlobUpload>> {
        check_key(key)?;
        Ok(Box::new(S3Upload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            content_type: content_type.map(str::to_owned),
            buf: Vec::new(),
            total: 0,
            multipart: None,
            broken: false,
        }))
    }
}

/// A streaming upload into S3 (see the module documentation and [`BlobStore::upload`]).
///
/// Memory: at most one part ([`UPLOAD_PART_SIZE`]) is buffered; parts are sent one at a time,
/// each `write` waiting for the part it filled. A chunk of a part or more arriving on an
/// empty buffer is sent as it is, without copying.
pub struct S3Upload {
    client: Client,
    bucket: String,
    key: String,
    content_type: Option<String>,
    /// Bytes not sent yet: less than one part between calls.
    buf: Vec<u8>,
    /// Bytes written so far.
    total: u64,
    /// The multipart upload, once the first part was full. `None` after finish or abort.
    multipart: Option<Multipart>,
    /// A write failed or was cancelled: the upload can only be aborted.
    broken: bool,
}

/// Without the buffered bytes (they may be personal data).
impl std::fmt::Debug for S3Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Upload")
            .field("bucket", &self.bucket)
            .field("buffered", &self.buf.len())
            .field("total", &self.total)
            .field(
                "parts",
                &self.multipart.as_ref().map_or(0, |m| m.parts.len()),
            )
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

struct Multipart {
    upload_id: String,
    parts: Vec<CompletedPart>,
}

impl S3Upload {
    fn check_usable(&self) -> PortResult<()> {
        if self.broken {
            Err(PortError::Invalid(
                "upload failed earlier; it can only be aborted".into(),
            ))
        } else {
            Ok(())
        }
    }

    /// Appends to the buffer, growing it at most to one part (no doubling past it).
    fn buffer(&mut self, bytes: &[u8]) {
        let need = self.buf.len() + bytes.len();
        if need > self.buf.capacity() {
            let target = (self.buf.capacity() * 2).max(need).min(UPLOAD_PART_SIZE);
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Sends one part, creating the multipart upload first if there is none yet.
    async fn send_part(&mut self, part: Bytes) -> PortResult<()> {
        if self.multipart.is_none() {
            let out = self
                .client
                .create_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .set_content_type(self.content_type.clone())
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .send()
                .await
                .map_err(|e| map_sdk("s3", "CreateMultipartUpload", &e))?;
            let upload_id = out
                .upload_id()
                .ok_or_else(|| PortError::Backend("CreateMultipartUpload: no upload id".into()))?
                .to_owned();
            tracing::debug!(bucket = %self.bucket, key = %self.key, "multipart upload created");
            self.multipart = Some(Multipart {
                upload_id,
                parts: Vec::new(),
            });
        }
        let mp = self.multipart.as_mut().expect("created above");
        if mp.parts.len() >= MAX_PARTS {
            return Err(PortError::Invalid(format!(
                "upload larger than {MAX_PARTS} parts of {UPLOAD_PART_SIZE} bytes"
            )));
        }
        let number = i32::try_from(mp.parts.len() + 1).expect("at most 10,000 parts");
        let size = part.len();
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&mp.upload_id)
            .part_number(number)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(part))
            .send()
            .await
            .map_err(|e| map_sdk("s3", "UploadPart", &e))?;
        mp.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
                .build(),
        );
        tracing::debug!(bucket = %self.bucket, key = %self.key, part = number, size, "part uploaded");
        Ok(())
    }

    async fn write_inner(&mut self, mut chunk: Bytes) -> PortResult<()> {
        while !chunk.is_empty() {
            if self.buf.is_empty() && chunk.len() >= UPLOAD_PART_SIZE {
                let part = chunk.split_to(UPLOAD_PART_SIZE);
                self.send_part(part).await?;
                continue;
            }
            let take = (UPLOAD_PART_SIZE - self.buf.len()).min(chunk.len());
            let piece = chunk.split_to(take);
            self.buffer(&piece);
            if self.buf.len() == UPLOAD_PART_SIZE {
                let part = Bytes::from(std::mem::take(&mut self.buf));
                self.send_part(part).await?;
            }
        }
        Ok(())
    }

    async fn finish_inner(&mut self) -> PortResult<BlobMeta> {
        let rest = Bytes::from(std::mem::take(&mut self.buf));
        if self.multipart.is_none() {
            // Smaller than one part: one PutObject, no multipart upload at all.
            let size = rest.len() as u64;
            let out = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .body(ByteStream::from(rest))
                .set_content_type(self.content_type.clone())
                .send()
                .await
                .map_err(|e| map_sdk("s3", "PutObject", &e))?;
            tracing::debug!(bucket = %self.bucket, key = %self.key, size, "blob uploaded (one put)");
            return Ok(BlobMeta {
                key: self.key.clone(),
                size,
                etag: etag(out.e_tag()),
                content_type: self.content_type.clone(),
            });
        }
        if !rest.is_empty() {
            self.send_part(rest).await?;
        }
        let mp = self.multipart.as_ref().expect("multipart upload exists");
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&mp.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(mp.parts.clone()))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| map_sdk("s3", "CompleteMultipartUpload", &e))?;
        let parts = mp.parts.len();
        // Completed: nothing is left to abort.
        self.multipart = None;
        tracing::debug!(bucket = %self.bucket, key = %self.key, size = self.total, parts, "blob uploaded (multipart)");
        Ok(BlobMeta {
            key: self.key.clone(),
            size: self.total,
            etag: etag(out.e_tag()),
            content_type: self.content_type.clone(),
        })
    }
}

/// Aborts a multipart upload; one that is already gone counts as aborted.
async fn abort_multipart(
    client: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> PortResult<()> {
    match client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => match map_sdk("s3", "AbortMultipartUpload", &e) {
            PortError::NotFound => Ok(()),
            PortError::Backend(code) if code == "NoSuchUpload" => Ok(()),
            other => Err(other),
        },
    }
}

#[async_trait]
impl BlobUpload for S3Upload {
    async fn write(&mut self, chunk: Bytes) -> PortResult<()> {
        self.check_usable()?;
        // Broken until the write is done: a write that fails or is cancelled while a part
        // is in flight has lost that part.
        self.broken = true;
        self.total += chunk.len() as u64;
        self.write_inner(chunk).await?;
        self.broken = false;
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> PortResult<BlobMeta> {
        self.check_usable()?;
        // On failure, dropping `self` aborts the multipart upload (if any).
        self.finish_inner().await
    }

    async fn abort(mut self: Box<Self>) -> PortResult<()> {
        self.buf = Vec::new();
        let Some(mp) = self.multipart.take() else {
            return Ok(());
        };
        abort_multipart(&self.client, &self.bucket, &self.key, &mp.upload_id).await?;
        tracing::debug!(bucket = %self.bucket, key = %self.key, "multipart upload aborted");
        Ok(())
    }
}

impl Drop for S3Upload {
    /// An upload neither finished nor aborted: abort its multipart upload in the background
    /// (best effort; the bucket's `AbortIncompleteMultipartUpload` lifecycle rule removes
    /// what this misses). Nothing was ever visible either way.
    fn drop(&mut self) {
        let Some(mp) = self.multipart.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(bucket = %self.bucket, key = %self.key, "multipart upload dropped outside a runtime; left to the lifecycle rule");
            return;
        };
        let (client, bucket, key) = (
            self.client.clone(),
            std::mem::take(&mut self.bucket),
            std::mem::take(&mut self.key),
        );
        runtime.spawn(async move {
            match abort_multipart(&client, &bucket, &key, &mp.upload_id).await {
                Ok(()) => tracing::debug!(%bucket, %key, "dropped multipart upload aborted"),
                Err(e) => tracing::warn!(%bucket, %key, error = %e, "dropped multipart upload not aborted; left to the lifecycle rule"),
            }
        });
    }
}
