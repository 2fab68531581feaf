//! Serves embedded presigned URLs and upload forms, standing in for S3 so clients upload
//! and download attachments the same way on both backends:
//!
//! - `GET` and `PUT` on `/_blobs/{bucket}/{key}` with the signature made by the embedded
//!   blob store's `presign`;
//! - `POST /_blobs/{bucket}` with a `multipart/form-data` body made from the embedded blob
//!   store's `presign_post` (S3's browser-based POST upload): the form's fields, then the
//!   file part `file`. The policy's signature, expiry, key and content type are checked when
//!   the file part begins; the file is streamed to the store while its bytes are counted, and
//!   a file outside the policy's size range stores nothing (413 when too large, 400 when too
//!   small). Success answers 204 with the `ETag`, like S3.
//!
//! Every stored upload (POST or presigned PUT) is then handed, as an S3-format object-created
//! event, to the optional [`UploadNotifier`] ([`routes_with_notifier`]), as S3 would send it
//! to the bucket's notification targets. Objects written by functions through the
//! `BlobStore` port are not notified here.
//!
//! Errors are problem+json; refusals of the signature, expiry, key or content type are 403
//! and say no more (like S3's `AccessDenied`).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::{StreamExt, TryStreamExt};
use madoguchi_domain::error::{DomainError, Problem};
use madoguchi_embedded::{EmbeddedBackend, StreamPutError};
use madoguchi_http::ApiError;
use madoguchi_ports::blob::{MAX_POST_UPLOAD_BYTES, UPLOAD_FILE_FIELD};
use madoguchi_ports::{BlobMeta, BlobStore, PortError, PresignMethod};
use tokio_util::io::{ReaderStream, StreamReader};

pub use crate::s3_event::{ObjectCreated, QueueNotifier, UploadNotifier};

/// Largest body accepted on a presigned PUT (the per-application attachment limit).
pub const MAX_UPLOAD: usize = 100 * 1024 * 1024;
/// Most form fields accepted before the file part (S3's own form has at most 8 here).
pub const MAX_FORM_FIELDS: usize = 16;
/// Longest value of one form field before the file part.
pub const MAX_FORM_FIELD_BYTES: u64 = 8 * 1024;
/// Names the upload routes in their notifications (`userIdentity.principalId`).
pub const UPLOAD_SOURCE: &str = "madoguchi-upload";

/// Problem type of an upload larger than its policy allows (413).
pub const PROBLEM_UPLOAD_TOO_LARGE: &str = "https://madoguchi.jp/problems/upload-too-large";
/// Problem type of an upload smaller than its policy allows (400).
pub const PROBLEM_UPLOAD_TOO_SMALL: &str = "https://madoguchi.jp/problems/upload-too-small";

#[derive(Clone)]
struct BlobsState {
    backend: EmbeddedBackend,
    notifier: Option<Arc<dyn UploadNotifier>>,
}

/// The routes without a notifier: uploads are stored and nobody is told.
pub fn routes(backend: EmbeddedBackend) -> Router {
    routes_with_notifier(backend, None)
}

/// The routes, handing every stored upload to `notifier` as an S3-format object-created
/// event (`ObjectCreated:Post` for forms, `ObjectCreated:Put` for presigned PUTs). The host
/// decides which bucket notifies which queue, e.g. with [`QueueNotifier`].
pub fn routes_with_notifier(
    backend: EmbeddedBackend,
    notifier: Option<Arc<dyn UploadNotifier>>,
) -> Router {
    Router::new()
        .route("/_blobs/{bucket}/{*key}", get(download).put(upload))
        .route("/_blobs/{bucket}", post(post_upload))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_UPLOAD))
        .with_state(BlobsState { backend, notifier })
}

fn check(
    backend: &EmbeddedBackend,
    bucket: &str,
    key: &str,
    method: PresignMethod,
    query: Option<String>,
) -> Result<(), ApiError> {
    let now = backend.clock().now();
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

fn malformed(detail: &str) -> ApiError {
    DomainError::Malformed {
        detail: detail.to_owned(),
    }
    .into()
}

fn etag_header(res: &mut Response, meta: &BlobMeta) {
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", meta.etag)) {
        res.headers_mut().insert(header::ETAG, v);
    }
}

/// Hands a stored object to the notifier, if there is one.
async fn notify(
    state: &BlobsState,
    bucket: &str,
    meta: &BlobMeta,
    event_name: &'static str,
) -> Result<(), ApiError> {
    let Some(notifier) = &state.notifier else {
        return Ok(());
    };
    let event = ObjectCreated {
        bucket: bucket.to_owned(),
        key: meta.key.clone(),
        size: meta.size,
        etag: meta.etag.clone(),
        event_name,
        event_time: state.backend.clock().now().to_string(),
        sequencer: crate::s3_event::new_sequencer(),
        source: UPLOAD_SOURCE,
    };
    notifier.object_created(&event).await.map_err(|e| {
        tracing::error!(bucket, error = %e, "upload stored but not notified");
        ApiError::new(Problem::internal())
    })
}

async fn download(
    State(state): State<BlobsState>,
    Path((bucket, key)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let backend = &state.backend;
    check(backend, &bucket, &key, PresignMethod::Get, query)?;
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
    State(state): State<BlobsState>,
    Path((bucket, key)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    check(&state.backend, &bucket, &key, PresignMethod::Put, query)?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let meta = state
        .backend
        .blobs(&bucket)
        .put(&key, body, ct)
        .await
        .map_err(port_error)?;
    notify(&state, &bucket, &meta, ObjectCreated::PUT).await?;
    let mut res = StatusCode::OK.into_response();
    etag_header(&mut res, &meta);
    Ok(res)
}

/// Reads one (non-file) form field's value, refusing long ones.
async fn field_text(field: multer::Field<'_>) -> Result<String, ApiError> {
    field
        .text()
        .await
        .map_err(|_| malformed("フォームの項目が長すぎるか、読み取れません。"))
}

async fn post_upload(
    State(state): State<BlobsState>,
    Path(bucket): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let boundary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or_else(|| malformed("multipart/form-data で送信してください。"))?;
    // The file part may be as large as any policy allows (the policy's own limit is enforced
    // while streaming); every other field is small.
    let limits = multer::SizeLimit::new()
        .whole_stream(MAX_POST_UPLOAD_BYTES + 1024 * 1024)
        .per_field(MAX_FORM_FIELD_BYTES)
        .for_field(UPLOAD_FILE_FIELD, MAX_POST_UPLOAD_BYTES + 1);
    let mut form = multer::Multipart::with_constraints(
        body.into_data_stream(),
        boundary,
        multer::Constraints::new().size_limit(limits),
    );
    let mut fields: Vec<(String, String)> = Vec::new();
    loop {
        let field = form
            .next_field()
            .await
            .map_err(|_| malformed("フォームを読み取れません。"))?
            .ok_or_else(|| malformed("ファイルが含まれていません。"))?;
        let name = field.name().unwrap_or_default().to_owned();
        if name != UPLOAD_FILE_FIELD {
            if fields.len() >= MAX_FORM_FIELDS {
                return Err(malformed("フォームの項目が多すぎます。"));
            }
            fields.push((name, field_text(field).await?));
            continue;
        }
        // The file part: everything it may be is decided by the fields before it. Parts
        // after it are not read (S3 ignores them too).
        let now = state.backend.clock().now();
        let grant = state
            .backend
            .presign_verifier()
            .verify_post_form(&bucket, &fields, now)
            .map_err(|e| {
                tracing::info!(reason = %e, "upload form refused");
                ApiError::from(DomainError::Forbidden)
            })?;
        // Boxed: `put_stream` wants an `Unpin` reader.
        let reader = StreamReader::new(field.map_err(std::io::Error::other).boxed());
        let store = state.backend.blobs(&bucket);
        let stored = store
            .put_stream(
                &grant.key,
                reader,
                grant.content_type.as_deref(),
                grant.min_bytes..=grant.max_bytes,
            )
            .await;
        let meta = match stored {
            Ok(meta) => meta,
            Err(StreamPutError::TooLarge) => {
                return Err(ApiError::new(
                    Problem::new(PROBLEM_UPLOAD_TOO_LARGE, "ファイルが大きすぎます。", 413)
                        .with_detail(format!(
                            "{} バイト以下のファイルを選んでください。",
                            grant.max_bytes
                        )),
                ));
            }
            Err(StreamPutError::TooSmall) => {
                return Err(ApiError::new(
                    Problem::new(
                        PROBLEM_UPLOAD_TOO_SMALL,
                        "ファイルが空か、小さすぎます。",
                        400,
                    )
                    .with_detail(format!(
                        "{} バイト以上のファイルを選んでください。",
                        grant.min_bytes
                    )),
                ));
            }
            Err(StreamPutError::Body(_)) => {
                return Err(malformed("ファイルの送信が途中で途切れました。"));
            }
            Err(StreamPutError::Store(e)) => return Err(port_error(e)),
        };
        tracing::info!(bucket = %bucket, size = meta.size, "upload stored");
        notify(&state, &bucket, &meta, ObjectCreated::POST).await?;
        let mut res = StatusCode::NO_CONTENT.into_response();
        etag_header(&mut res, &meta);
        return Ok(res);
    }
}
