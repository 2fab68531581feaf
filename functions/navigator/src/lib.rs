//! The `navigator` function: the life-event guide (ライフイベント案内) over HTTP.
//!
//! - Guides per tenant ([`guide`]): staff read the tenant's guide (or the standard rule set
//!   when none is stored) and the tenant administrator saves a new version, checked with
//!   `madoguchi_guide::parse_and_check` (example cases included) and audited.
//! - Citizens ([`public`]), no token needed: the events, one counted start per access, one
//!   evaluation step (next question, progress, procedures) with the procedure-guide code
//!   (手続き案内票のコード) and its QR once complete, and the printable page. Answers are never
//!   stored nor logged: they may hold birth dates.
//! - Access counts ([`counts`]): atomic counters per Japan day, event and channel; a report
//!   and its CSV for staff.
//! - Counter visits ([`visits`]): staff scan the code; a versioned checklist of what is done
//!   and what is left.
//!
//! Engine and formats: `madoguchi-guide` (`docs/guide.md`).

pub mod counts;
pub mod guide;
pub mod public;
pub mod qr;
pub mod visits;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::{get, post};
use madoguchi_audit::{AuditEvent, AuditLog};
use madoguchi_domain::error::{FieldError, Problem};
use madoguchi_domain::tenant::TenantId;
use madoguchi_http::{ApiError, Authenticator};
use madoguchi_ports::{Clock, IdGen, ItemStore, PortError};
use utoipa::OpenApi;

/// Ports the navigator needs.
#[derive(Clone)]
pub struct NavigatorState {
    pub items: Arc<dyn ItemStore>,
    pub audit: AuditLog,
    pub auth: Arc<Authenticator>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
}

impl FromRef<NavigatorState> for Arc<Authenticator> {
    fn from_ref(s: &NavigatorState) -> Self {
        s.auth.clone()
    }
}

/// Largest request body: a guide is about 60 KB (the standard set), answers far less.
pub const MAX_BODY_BYTES: usize = 512 * 1024;

pub fn router(state: NavigatorState) -> Router {
    let t = "/v1/tenants/{tenant}";
    Router::new()
        .route(&format!("{t}/guide"), get(public::events))
        .route(
            &format!("{t}/guide/events/{{event}}/start"),
            post(public::start),
        )
        .route(
            &format!("{t}/guide/events/{{event}}/evaluate"),
            post(public::evaluate_step),
        )
        .route(
            &format!("{t}/guide/events/{{event}}/print"),
            post(public::print),
        )
        .route(
            &format!("{t}/staff/guide"),
            get(guide::get_guide).put(guide::put_guide),
        )
        .route(&format!("{t}/staff/guide/counts"), get(counts::counts))
        .route(
            &format!("{t}/staff/guide/counts.csv"),
            get(counts::counts_csv),
        )
        .route(
            &format!("{t}/staff/guide/visits"),
            post(visits::create_visit),
        )
        .route(
            &format!("{t}/staff/guide/visits/{{id}}"),
            get(visits::get_visit),
        )
        .route(
            &format!("{t}/staff/guide/visits/{{id}}/ticks"),
            post(visits::tick),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    paths(
        public::events, public::start, public::evaluate_step, public::print,
        guide::get_guide, guide::put_guide,
        counts::counts, counts::counts_csv,
        visits::create_visit, visits::get_visit, visits::tick,
    ),
    components(schemas(
        public::EventList, public::EventSummary, public::StartBody, public::Started,
        public::AnswersBody, public::Step,
        guide::GuideDoc,
        counts::CountReport, counts::CountRow,
        visits::VisitBody, visits::TickBody, visits::VisitView, visits::VisitProcedure,
    )),
    tags((name = "navigator", description = "Life-event guide: guides per tenant, evaluation, access counts, counter visits"))
)]
struct NavigatorApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    NavigatorApi::openapi()
}

/// The tenant of a public route's path; an invalid code names no municipality (404).
pub(crate) fn path_tenant(segment: &str) -> Result<TenantId, ApiError> {
    madoguchi_http::tenant_from_path(segment)
}

/// The staff caller of a `…/staff/guide…` route (shared by every staff-facing function).
pub use madoguchi_staffauth::StaffCaller as Caller;

impl madoguchi_staffauth::StaffScope for NavigatorState {
    fn items(&self) -> &Arc<dyn ItemStore> {
        &self.items
    }
    fn audit_log(&self) -> &AuditLog {
        &self.audit
    }
}

/// Appends an audit record; a change that cannot be recorded fails the request.
pub async fn audit(
    state: &NavigatorState,
    tenant: &TenantId,
    event: AuditEvent,
) -> Result<(), ApiError> {
    madoguchi_staffauth::audit(&state.audit, tenant, event).await
}

pub(crate) fn internal(what: &'static str) -> ApiError {
    tracing::error!(what, "stored record does not parse");
    ApiError::new(Problem::internal())
}

pub(crate) fn port_error(e: PortError) -> ApiError {
    madoguchi_staffauth::port_error(e)
}

pub(crate) fn field_error(field: &str, code: &str, message: &str) -> ApiError {
    ApiError::validation(vec![FieldError::new(field, code, message)])
}

/// A request body as axum gives it (its rejection is not problem+json).
pub(crate) type Body = Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>;

/// The body's bytes, or the problem answer for one that could not be read.
pub(crate) fn body_bytes(body: Body) -> Result<axum::body::Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::kind(
                413,
                "payload-too-large",
                "送信された内容が大きすぎます。",
                "入力内容を短くして、もう一度送信してください。",
            )
        } else {
            field_error(
                "body",
                "invalid_json",
                "送信された内容を読み取れませんでした。",
            )
        }
    })
}

/// Reads a JSON body without trusting its `Content-Type` (kiosks and LINE's browser send
/// what they send); anything unreadable is a 422 naming `body`, never an echo of the input.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    let bytes = body_bytes(body)?;
    let bytes: &[u8] = if bytes.is_empty() { b"{}" } else { &bytes };
    serde_json::from_slice(bytes).map_err(|_| {
        field_error(
            "body",
            "invalid_json",
            "送信された内容を読み取れませんでした。入力内容を確かめて、もう一度送信してください。",
        )
    })
}
