//! The `staff` function: the municipal staff console's API.
//!
//! - Working applications ([`apps`]): the list (filters, stable pagination), the detail with
//!   sensitive fields masked, the explicit and audited reveal of a 個人番号, the status
//!   workflow (`madoguchi_domain::workflow`), memos and staff attachments.
//! - Organisation ([`admin`]): departments (組織), the staff directory and per-form grants,
//!   managed by the tenant administrator; the audit log and its verification.
//! - Export and reports ([`export`]): CSV streamed into the exports bucket and handed out as a
//!   presigned link; counts, averages, the monthly usage table and its chart.
//!
//! Every handler asks `madoguchi_domain::authz::authorize` — the one place that decides —
//! with inputs loaded by `madoguchi_applications::access`. Every look at personal data, every
//! change and every export writes an audit record (`madoguchi-audit`).

pub mod admin;
pub mod apps;
pub mod export;
pub mod linkage;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post, put};
use madoguchi_audit::{AuditEvent, AuditLog};
use madoguchi_domain::error::{FieldError, Problem};
use madoguchi_domain::tenant::TenantId;
use madoguchi_fieldcrypt::FieldCipher;
use madoguchi_http::{ApiError, Authenticator};
use madoguchi_ports::{BlobStore, Clock, IdGen, ItemStore, PortError, Queue};
use utoipa::OpenApi;

/// Ports the staff function needs.
#[derive(Clone)]
pub struct StaffState {
    pub items: Arc<dyn ItemStore>,
    /// Citizens' uploads (read) and staff attachments (`staff/` prefix).
    pub attachments: Arc<dyn BlobStore>,
    /// CSV exports (short-lived objects handed out as presigned links).
    pub exports: Arc<dyn BlobStore>,
    pub notify: Arc<dyn Queue>,
    /// Nudges for the `linkage-outbound` function after a status change.
    pub outbound: Arc<dyn Queue>,
    /// The resident store (住民記録) the inbound linkage fills, for counter look-ups.
    pub residents: madoguchi_residents::ResidentStore,
    pub cipher: Arc<FieldCipher>,
    pub audit: AuditLog,
    /// The audit log's Object Lock copy, compared by the verify route when present.
    pub audit_mirror: Option<Arc<dyn BlobStore>>,
    pub auth: Arc<Authenticator>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    pub settings: Arc<Settings>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Lifetime of a download link (export, attachment).
    pub link_ttl: Duration,
    /// Largest staff attachment (the request body goes through API Gateway and Lambda,
    /// whose payload limit is 6 MB).
    pub max_attachment_bytes: usize,
    /// Most applications one export may hold.
    pub max_export_rows: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            link_ttl: Duration::from_secs(300),
            max_attachment_bytes: 5 * 1024 * 1024,
            max_export_rows: 200_000,
        }
    }
}

impl FromRef<StaffState> for Arc<Authenticator> {
    fn from_ref(s: &StaffState) -> Self {
        s.auth.clone()
    }
}

pub fn router(state: StaffState) -> Router {
    let t = "/v1/tenants/{tenant}/staff";
    Router::new()
        .route(&format!("{t}/applications"), get(apps::list))
        .route(&format!("{t}/applications/{{id}}"), get(apps::detail))
        .route(
            &format!("{t}/applications/{{id}}/status"),
            post(apps::change_status),
        )
        .route(
            &format!("{t}/applications/{{id}}/decrypt"),
            post(apps::decrypt),
        )
        .route(
            &format!("{t}/applications/{{id}}/memos"),
            get(apps::list_memos).post(apps::add_memo),
        )
        .route(
            &format!("{t}/applications/{{id}}/staff-files"),
            post(apps::add_staff_file),
        )
        .route(
            &format!("{t}/applications/{{id}}/files/{{file}}"),
            get(apps::file_link),
        )
        .route(
            &format!("{t}/applications/{{id}}/linkage-exports"),
            post(linkage::reexport),
        )
        .route(&format!("{t}/residents/search"), post(linkage::search))
        .route(&format!("{t}/residents/{{atena}}"), get(linkage::resident))
        .route(&format!("{t}/exports"), post(export::create_export))
        .route(&format!("{t}/reports"), get(export::report))
        .route(&format!("{t}/reports/usage.csv"), get(export::usage_csv))
        .route(&format!("{t}/reports/usage.svg"), get(export::usage_svg))
        .route(&format!("{t}/org"), get(admin::get_org).put(admin::put_org))
        .route(&format!("{t}/members"), get(admin::list_members))
        .route(&format!("{t}/members/{{sub}}"), put(admin::put_member))
        .route(
            &format!("{t}/forms/{{slug}}/grants"),
            get(admin::get_grants).put(admin::put_grants),
        )
        .route(&format!("{t}/audit"), get(admin::audit_records))
        .route(&format!("{t}/audit/verify"), post(admin::audit_verify))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    paths(
        apps::list, apps::detail, apps::change_status, apps::decrypt, apps::list_memos,
        apps::add_memo, apps::add_staff_file, apps::file_link,
        export::create_export, export::report, export::usage_csv, export::usage_svg,
        admin::get_org, admin::put_org, admin::list_members, admin::put_member,
        admin::get_grants, admin::put_grants, admin::audit_records, admin::audit_verify,
        linkage::resident, linkage::search, linkage::reexport
    ),
    tags((name = "staff", description = "Staff console: applications, workflow, export, reports, organisation, audit"))
)]
struct StaffApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    StaffApi::openapi()
}

/// The caller of a staff route (shared by every staff-facing function).
pub use madoguchi_staffauth::StaffCaller as Caller;

impl madoguchi_staffauth::StaffScope for StaffState {
    fn items(&self) -> &Arc<dyn ItemStore> {
        &self.items
    }
    fn audit_log(&self) -> &AuditLog {
        &self.audit
    }
}

/// Appends an audit record. A look at personal data that cannot be recorded does not happen:
/// the request fails.
pub async fn audit(
    state: &StaffState,
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

/// Every change names the version it read (428 when it does not).
pub(crate) use madoguchi_http::required_if_match;
