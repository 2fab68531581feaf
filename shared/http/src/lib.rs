//! HTTP glue shared by every HTTP function: authentication (JWT against a JWKS), the
//! development issuer, problem+json errors, request ids, JSON logs, health and OpenAPI.
//!
//! Functions build an axum `Router` over their ports and pass it through [`common_layers`];
//! the same router runs under `lambda_http::run` on Lambda and merged into the local host.

pub mod auth;
pub mod dev_issuer;
pub mod etag;
pub mod extract;
pub mod logging;
pub mod openapi;
pub mod origin;
pub mod problem;

pub use auth::{Authenticator, Principal, Role, TrustedIssuer};
pub use dev_issuer::DevIssuer;
pub use etag::{if_match, required_if_match, with_etag};
pub use extract::{ApiJson, ApiPath, ApiQuery, Authenticated, tenant_from_path};
pub use problem::{ApiError, port_error};

use axum::Router;
use axum::routing::get;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// The request-id header. API Gateway's own id is logged by Lambda; this one is ours and is
/// returned to the client so a citizen can quote it to the help desk.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Adds request ids, request logging and, when `MADOGUCHI_ORIGIN_VERIFY` is set (on AWS),
/// the origin guard. The log line names the method, the route template (never the concrete
/// path, which can carry ids) and the status.
pub fn common_layers(router: Router) -> Router {
    common_layers_with(router, origin::OriginGuard::from_env())
}

/// [`common_layers`] with an explicit origin guard (tests, the local host).
pub fn common_layers_with(router: Router, guard: Option<origin::OriginGuard>) -> Router {
    let router = match guard {
        Some(guard) => router.layer(axum::middleware::from_fn_with_state(
            std::sync::Arc::new(guard),
            origin::check,
        )),
        None => router,
    };
    router
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &http::Request<_>| {
                let route = req
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_else(|| "unmatched".to_owned());
                let request_id = req
                    .headers()
                    .get(REQUEST_ID_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_owned();
                tracing::info_span!("http", method = %req.method(), route, request_id)
            }),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// `GET /healthz`: the process is up and routing. Does no I/O so a load balancer probe is cheap.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "alive", body = Health)))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// Routes every function carries: `/healthz`, and a problem+json 404 for any path no route
/// serves (axum's own answer is an empty body).
pub fn ops_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/healthz", get(healthz))
        .fallback(not_found)
}

async fn not_found() -> ApiError {
    madoguchi_domain::error::DomainError::NotFound.into()
}
