//! [`BlobStore`] over one S3 bucket.
//!
//! ETags are returned without their surrounding quotes. `list` reports no content type
//! (S3's listing does not carry it; use `head`).
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
use bytes::Bytes;
use madoguchi_ports::blob::check_key;
use madoguchi_ports::{
    BlobBody, BlobMeta, BlobStore, Clock, PortError, PortResult, PresignMethod, Presigned,
    PresignedPost, SystemClock, UploadPolicy,
};

use crate::error::map_sdk;
use crate::post_policy::{self, SigningCredentials};

/// S3's longest presigned URL lifetime (SigV4).
pub const MAX_PRESIGN: Duration = madoguchi_ports::blob::MAX_PRESIGN_LIFETIME;
const MAX_LIST_PAGE: usize = 1000;
/// Cached credentials are fetched again this long before they expire.
const CREDENTIALS_MARGIN: Duration = Duration::from_secs(5 * 60);

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
        check_key(key)?;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
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
}
