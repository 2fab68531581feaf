//! Moving bytes: one location's body, with a size cap, and conditional re-reads.

use madoguchi_ports::{BlobStore, PortError};
use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::{FetchError, from_reqwest};
use crate::location::CrlLocation;

/// What identifies the version of a location's content that was last taken, so that an
/// unchanged CRL (J-LIS CRLs can be large) is not downloaded and parsed again every
/// `max_age`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Validator {
    /// An HTTP answer's `ETag` and `Last-Modified`.
    Http {
        etag: Option<String>,
        last_modified: Option<String>,
    },
    /// A blob's etag (a digest of its content).
    Blob { etag: String },
}

/// A location's answer.
pub(crate) enum Fetched {
    /// Unchanged since the validator was taken.
    NotModified,
    /// The body, and what identifies this version of it.
    Body {
        bytes: Vec<u8>,
        validator: Option<Validator>,
    },
}

/// Reads one location. `validator` is that of the content currently held, if any.
pub(crate) async fn fetch(
    location: &CrlLocation,
    http: &reqwest::Client,
    blobs: Option<&dyn BlobStore>,
    validator: Option<&Validator>,
    max_bytes: u64,
) -> Result<Fetched, FetchError> {
    match location {
        CrlLocation::Http(url) => fetch_http(http, url, validator, max_bytes).await,
        CrlLocation::Blob(key) => {
            // CrlCache::new refuses blob locations without a store; this is a second guard.
            let store = blobs.ok_or_else(|| FetchError::Blob("no blob store configured".into()))?;
            fetch_blob(store, key, validator, max_bytes).await
        }
        CrlLocation::File(path) => {
            let mut file = tokio::fs::File::open(path).await.map_err(io_error)?;
            let len = file.metadata().await.map_err(io_error)?.len();
            if len > max_bytes {
                return Err(FetchError::TooLarge { limit: max_bytes });
            }
            let bytes = read_capped(&mut file, len, max_bytes).await?;
            Ok(Fetched::Body {
                bytes,
                validator: None,
            })
        }
    }
}

async fn fetch_http(
    http: &reqwest::Client,
    url: &reqwest::Url,
    validator: Option<&Validator>,
    max_bytes: u64,
) -> Result<Fetched, FetchError> {
    let mut request = http.get(url.clone());
    let mut conditional = false;
    if let Some(Validator::Http {
        etag,
        last_modified,
    }) = validator
    {
        if let Some(etag) = etag {
            request = request.header(IF_NONE_MATCH, etag);
            conditional = true;
        }
        if let Some(lm) = last_modified {
            request = request.header(IF_MODIFIED_SINCE, lm);
            conditional = true;
        }
    }
    let response = request.send().await.map_err(from_reqwest)?;
    let status = response.status();
    // A 304 to an unconditional request would be a server bug; treat it as any other status.
    if status == StatusCode::NOT_MODIFIED && conditional {
        return Ok(Fetched::NotModified);
    }
    if status != StatusCode::OK {
        return Err(FetchError::Status(status.as_u16()));
    }
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (etag, last_modified) = (header(ETAG), header(LAST_MODIFIED));
    let validator = (etag.is_some() || last_modified.is_some()).then_some(Validator::Http {
        etag,
        last_modified,
    });
    let bytes = read_response(response, max_bytes).await?;
    Ok(Fetched::Body { bytes, validator })
}

async fn fetch_blob(
    store: &dyn BlobStore,
    key: &str,
    validator: Option<&Validator>,
    max_bytes: u64,
) -> Result<Fetched, FetchError> {
    if let Some(Validator::Blob { etag }) = validator {
        match store.head(key).await.map_err(blob_error)? {
            None => return Err(FetchError::NotFound),
            Some(meta) if meta.etag == *etag => return Ok(Fetched::NotModified),
            Some(_) => {}
        }
    }
    let (meta, mut body) = store.get(key).await.map_err(blob_error)?;
    if meta.size > max_bytes {
        return Err(FetchError::TooLarge { limit: max_bytes });
    }
    let bytes = read_capped(&mut body, meta.size, max_bytes).await?;
    let validator = (!meta.etag.is_empty()).then_some(Validator::Blob { etag: meta.etag });
    Ok(Fetched::Body { bytes, validator })
}

/// Reads an HTTP body, refusing it as soon as it passes `max_bytes` (the announced length is
/// checked first, but a server may send no length or a wrong one).
pub(crate) async fn read_response(
    mut response: reqwest::Response,
    max_bytes: u64,
) -> Result<Vec<u8>, FetchError> {
    let announced = response.content_length().unwrap_or(0);
    if announced > max_bytes {
        return Err(FetchError::TooLarge { limit: max_bytes });
    }
    let mut buf = Vec::with_capacity(usize::try_from(announced).unwrap_or(0));
    while let Some(chunk) = response.chunk().await.map_err(from_reqwest)? {
        if buf.len() as u64 + chunk.len() as u64 > max_bytes {
            return Err(FetchError::TooLarge { limit: max_bytes });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Reads at most `max_bytes` (one more byte tells a body that is too long).
async fn read_capped<R: AsyncRead + Unpin + ?Sized>(
    reader: &mut R,
    size_hint: u64,
    max_bytes: u64,
) -> Result<Vec<u8>, FetchError> {
    let mut buf = Vec::with_capacity(usize::try_from(size_hint.min(max_bytes)).unwrap_or(0));
    reader
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut buf)
        .await
        .map_err(io_error)?;
    if buf.len() as u64 > max_bytes {
        return Err(FetchError::TooLarge { limit: max_bytes });
    }
    Ok(buf)
}

fn io_error(e: std::io::Error) -> FetchError {
    if e.kind() == std::io::ErrorKind::NotFound {
        FetchError::NotFound
    } else {
        FetchError::Io(e.to_string())
    }
}

fn blob_error(e: PortError) -> FetchError {
    match e {
        PortError::NotFound => FetchError::NotFound,
        other => FetchError::Blob(other.to_string()),
    }
}
