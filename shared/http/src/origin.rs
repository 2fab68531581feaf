//! The origin guard: on AWS, clients reach the API through CloudFront and its web ACL, which
//! adds a secret `x-origin-verify` header on the way to API Gateway. The API's own domain is
//! public (CloudFront must resolve it), so a request without that header came around the web
//! ACL and is refused here, before any route runs.
//!
//! The accepted values come from `MADOGUCHI_ORIGIN_VERIFY`, comma-separated, so a rotation can
//! accept the old and the new value for a while (docs/deploy.md). Locally the variable is unset
//! and there is no guard.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use madoguchi_domain::error::DomainError;

use crate::problem::ApiError;

pub const ORIGIN_HEADER: &str = "x-origin-verify";
pub const ORIGIN_ENV: &str = "MADOGUCHI_ORIGIN_VERIFY";

#[derive(Clone)]
pub struct OriginGuard {
    accepted: Vec<Vec<u8>>,
}

impl std::fmt::Debug for OriginGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginGuard")
            .field("accepted", &self.accepted.len())
            .finish()
    }
}

impl OriginGuard {
    /// `None` when no value is given: the guard is off.
    pub fn new(values: &str) -> Option<Self> {
        let accepted: Vec<Vec<u8>> = values
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| v.as_bytes().to_vec())
            .collect();
        (!accepted.is_empty()).then_some(Self { accepted })
    }

    pub fn from_env() -> Option<Self> {
        std::env::var(ORIGIN_ENV).ok().and_then(|v| Self::new(&v))
    }

    pub fn accepts(&self, presented: &[u8]) -> bool {
        // Every candidate is compared in full, so timing tells nothing about which is closest.
        self.accepted
            .iter()
            .fold(false, |ok, a| ok | constant_time_eq(a, presented))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The middleware: refuses with 403 problem+json unless the header matches.
pub async fn check(State(guard): State<Arc<OriginGuard>>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get(ORIGIN_HEADER)
        .is_some_and(|v| guard.accepts(v.as_bytes()));
    if ok {
        next.run(req).await
    } else {
        tracing::warn!("request without the origin header refused");
        ApiError::from(DomainError::Forbidden).into_response()
    }
}
