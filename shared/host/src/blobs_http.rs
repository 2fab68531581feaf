//! Serves embedded presigned URLs: `GET` and `PUT` on `/_blobs/{bucket}/{key}` with the
//! signature made by the embedded blob store. This stands in for S3's presigned URLs, so
//! clients upload and download attachments the same way on both backends.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use madoguchi_domain::error::{DomainError, Problem};
use madoguchi_embedded::EmbeddedBackend;
use madoguchi_http::ApiError;
use madoguchi_ports::{BlobStore, PortError, PresignMethod};
use tokio_util::io::ReaderStream;

/// Largest body accepted on a presigned PUT (the per-application attachment limit).
pub const MAX_UPLOAD: usize = 100 * 1024 * 1024;

pub fn routes(backend: EmbeddedBackend) -> Router {
    Router::new()
        .route("/_blobs/{bucket}/{*key}", get(download).put(upload))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_UPLOAD))
        .with_state(backend)
}

fn check(
    backend: &EmbeddedBackend,
    bucket: &str,
    key: &str,
    method: PresignMethod,
    query: Option<String>,
) -> Result<(), ApiError> {
    let now = jiff::Timestamp::now();
    backend
        .presign_verifier()
        .verify(bucket, key, method, query.as_deref().unwrap_or(""), now)
        .map_err(|_| ApiError::from(DomainError::Forbidden))
}

fn port_error(e: PortError) -> ApiError {
    match e {
        PortError::NotFound => DomainError::NotFound.into(),
        PortError::Invalid(_) => DomainError::NotFound.into(),
        other => {
            tracing::error!(error = %other, "blob store failed");
            ApiError::new(Problem::internal())
        }
    }
}

async fn download(
    State(backend): State<EmbeddedBackend>,
    Path((bucket, key)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    check(&backend, &bucket, &key, PresignMethod::Get, query)?;
    let (meta, body) = backend.blobs(&bucket).get(&key).await.map_err(port_error)?;
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_LENGTH, meta.size.into());
    if let Ok(v) = format!("\"{}\"", meta.etag).parse() {
        headers.insert(header::ETAG, v);
    }
    let ct = meta
        .content_type
        .as_deref()
        .unwrap_or("application/octet-stream");
    if let Ok(v) = ct.parse() {
        headers.insert(header::CONTENT_TYPE, v);
    }
    Ok((
        StatusCode::OK,
        headers,
        Body::from_stream(ReaderStream::new(body)),
    )
        .into_response())
}

async fn upload(
    State(backend): State<EmbeddedBackend>,
    Path((bucket, key)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    check(&backend, &bucket, &key, PresignMethod::Put, query)?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let meta = backend
        .blobs(&bucket)
        .put(&key, body, ct)
        .await
        .map_err(port_error)?;
    let mut res = StatusCode::OK.into_response();
    if let Ok(v) = format!("\"{}\"", meta.etag).parse() {
        res.headers_mut().insert(header::ETAG, v);
    }
    Ok(res)
}
