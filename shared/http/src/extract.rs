//! Axum extractors: the authenticated principal, tenant path segments, and JSON bodies
//! whose rejections are problem+json.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use madoguchi_domain::error::{DomainError, FieldError, Problem};
use madoguchi_domain::tenant::TenantId;
use serde::de::DeserializeOwned;

use crate::auth::{Authenticator, Principal};
use crate::problem::ApiError;

/// A request whose bearer token verified. Rejects with problem+json 401 otherwise.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl<S> FromRequestParts<S> for Authenticated
where
    Arc<Authenticator>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Arc::<Authenticator>::from_ref(state);
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(ApiError::unauthenticated)?;
        let value = header.to_str().map_err(|_| ApiError::invalid_token())?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(ApiError::invalid_token)?;
        match auth.verify(token.trim()).await {
            Ok(p) => Ok(Authenticated(p)),
            Err(e) => {
                tracing::info!(reason = %e, "token refused");
                Err(ApiError::invalid_token())
            }
        }
    }
}

/// Parses a tenant code from a path segment; an invalid code is a 404, since no such
/// municipality exists here.
pub fn tenant_from_path(segment: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(segment).map_err(|_| ApiError::from(DomainError::NotFound))
}

/// Path parameters whose rejection is problem+json (axum's own answers `text/plain`): a
/// segment that does not decode (e.g. `%ff`, not UTF-8) names nothing here, so 404.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| ApiPath(v))
            .map_err(|_| ApiError::from(DomainError::NotFound))
    }
}

/// Query parameters whose rejection is problem+json (422 on `query`).
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| ApiQuery(v))
            .map_err(|_| {
                ApiError::validation(vec![FieldError::new(
                    "query",
                    "invalid",
                    "指定の形式が正しくありません。最初から表示し直してください。",
                )])
            })
    }
}

/// JSON body extractor whose failures are problem+json: syntax errors are 400, a body of the
/// wrong shape is 422 with the field named when serde says which.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            // serde's message names the path ("fields[0].label: missing field ...") but may
            // quote the value; keep only the path.
            let text = e.body_text();
            let field = text
                .split_once(": ")
                .map(|(_, rest)| rest)
                .and_then(|rest| rest.split_once(": ").map(|(path, _)| path.to_owned()))
                .unwrap_or_else(|| "body".to_owned());
            ApiError::validation(vec![FieldError {
                field,
                code: "invalid_type".to_owned(),
                message: "項目の形式が正しくありません。".to_owned(),
            }])
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(Problem {
            type_uri: "https://madoguchi.jp/problems/unsupported-media-type".to_owned(),
            title: "送信の形式が正しくありません。".to_owned(),
            status: 415,
            detail: Some("Content-Type: application/json が必要です。".to_owned()),
            errors: vec![],
        }),
        other if other.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(Problem {
                type_uri: "https://madoguchi.jp/problems/payload-too-large".to_owned(),
                title: "送信された内容が大きすぎます。".to_owned(),
                status: 413,
                detail: Some("入力内容を短くして、もう一度送信してください。".to_owned()),
                errors: vec![],
            })
        }
        _ => ApiError::new(Problem {
            type_uri: "https://madoguchi.jp/problems/malformed-request".to_owned(),
            title: "送信された内容を読み取れませんでした。".to_owned(),
            status: 400,
            detail: None,
            errors: vec![],
        }),
    }
}
