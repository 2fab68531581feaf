//! [`BlobStore`] over one S3 bucket.
//!
//! ETags are returned without their surrounding quotes. `list` reports no content type
//! (S3's listing does not carry it; use `head`).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use madoguchi_ports::blob::check_key;
use madoguchi_ports::{
    BlobBody, BlobMeta, BlobStore, PortError, PortResult, PresignMethod, Presigned,
};

use crate::error::map_sdk;

/// S3's longest presigned URL lifetime (SigV4).
pub const MAX_PRESIGN: Duration = Duration::from_secs(7 * 24 * 3600);
const MAX_LIST_PAGE: usize = 1000;

#[derive(Debug, Clone)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
}

fn etag(raw: Option<&str>) -> String {
    raw.unwrap_or_default().trim_matches('"').to_owned()
}

fn size(n: Option<i64>) -> u64 {
    n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

impl S3BlobStore {
    pub fn new(client: Client, bucket: &str) -> Self {
        Self {
            client,
            bucket: bucket.to_owned(),
        }
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
}
