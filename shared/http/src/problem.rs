//! `application/problem+json` responses (RFC 9457).
//!
//! The shape lives in the domain crate ([`madoguchi_domain::error::Problem`]); this module only
//! turns it into an HTTP response. Every error a handler returns goes through [`ApiError`], so
//! no route can answer an error in another format.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use madoguchi_domain::error::{DomainError, FieldError, Problem};

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug)]
pub struct ApiError {
    pub problem: Problem,
    /// Extra header for 401 (RFC 6750 `WWW-Authenticate`).
    pub www_authenticate: Option<&'static str>,
}

impl ApiError {
    pub fn new(problem: Problem) -> Self {
        Self {
            problem,
            www_authenticate: None,
        }
    }

    /// 401 for a request without credentials.
    pub fn unauthenticated() -> Self {
        Self {
            problem: DomainError::Unauthorized.to_problem(),
            www_authenticate: Some("Bearer"),
        }
    }

    /// 401 for a token that is present but not acceptable (bad signature, expired, wrong
    /// audience or issuer). The reason is logged, not returned: it would help an attacker.
    pub fn invalid_token() -> Self {
        Self {
            problem: DomainError::Unauthorized.to_problem(),
            www_authenticate: Some("Bearer error=\"invalid_token\""),
        }
    }

    /// A problem of a function's own kind (`{PROBLEM_TYPE_BASE}{kind}`), with a Japanese
    /// title and detail.
    pub fn kind(status: u16, kind: &str, title: &str, detail: &str) -> Self {
        Self::new(
            Problem::new(
                format!("{}{kind}", madoguchi_domain::error::PROBLEM_TYPE_BASE),
                title,
                status,
            )
            .with_detail(detail),
        )
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        Self::new(DomainError::Validation(errors).to_problem())
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        Self::new(e.to_problem())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), problem = %self.problem.type_uri, "request failed");
        }
        let body = serde_json::to_vec(&self.problem).unwrap_or_else(|_| b"{}".to_vec());
        let mut res = (status, body).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(v) = self.www_authenticate {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(v));
        }
        res
    }
}

/// OpenAPI schema of the problem document (the domain crate stays free of utoipa).
#[derive(utoipa::ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)]
pub struct ProblemDoc {
    /// Stable URI naming the kind of problem.
    #[schema(rename = "type")]
    type_uri: String,
    /// Short Japanese title for citizens.
    title: String,
    status: u16,
    detail: Option<String>,
    errors: Option<Vec<FieldErrorDoc>>,
}

#[derive(utoipa::ToSchema)]
#[schema(as = FieldError)]
#[allow(dead_code)]
pub struct FieldErrorDoc {
    /// JSON pointer-like path of the field, e.g. `fields[2].label`.
    field: String,
    /// Stable machine code, e.g. `required`.
    code: String,
    /// Japanese message for the citizen or staff member.
    message: String,
}

/// A storage failure as an answer: a failed condition is a conflict (409), a missing item
/// 404, an unavailable backend 503 (retry later; nothing was lost), anything else 500 and
/// logged. Functions with their own wording for conflicts keep their own mapping.
pub fn port_error(e: madoguchi_ports::PortError) -> ApiError {
    use madoguchi_ports::PortError;
    match e {
        PortError::ConditionFailed { .. } => DomainError::Conflict {
            detail: "先に更新されました。再読み込みしてからやり直してください。".to_owned(),
        }
        .into(),
        PortError::NotFound => DomainError::NotFound.into(),
        PortError::Unavailable(reason) => {
            tracing::warn!(%reason, "backend unavailable");
            ApiError::kind(
                503,
                "unavailable",
                "ただいま混み合っています。",
                "しばらくしてからもう一度お試しください。",
            )
        }
        other => {
            tracing::error!(error = %other, "backend failed");
            ApiError::new(Problem::internal())
        }
    }
}
