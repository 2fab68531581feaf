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
use madoguchi_applications::access::{StaffContext, staff_context};
use madoguchi_applications::keys::SINGLE_SK;
use madoguchi_applications::keys::login_pk;
use madoguchi_audit::{AuditAction, AuditEvent, AuditLog};
use madoguchi_domain::authz::{Action, Actor, Decision, DenyReason, Resource, authorize};
use madoguchi_domain::error::{DomainError, FieldError, Problem};
use madoguchi_domain::tenant::TenantId;
use madoguchi_fieldcrypt::FieldCipher;
use madoguchi_http::auth::Role;
use madoguchi_http::{ApiError, Authenticator, Principal};
use madoguchi_ports::{BlobStore, Clock, Condition, IdGen, Item, ItemStore, Key, PortError, Queue};
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

/// The caller of a staff route, with what authorization needs.
pub struct Caller {
    pub principal: Principal,
    pub tenant: TenantId,
    /// `None` for citizens (every staff action refuses them).
    pub staff: Option<StaffContext>,
}

impl Caller {
    pub fn actor(&self) -> Actor<'_> {
        match &self.staff {
            Some(s) if s.active => Actor::Staff {
                tenant: &self.principal.tenant,
                depts: &s.effective,
                admin: s.admin,
            },
            // A switched-off member is nobody.
            Some(_) => Actor::Anonymous,
            None => Actor::Citizen {
                tenant: &self.principal.tenant,
                owner: "",
            },
        }
    }

    /// The audit actor: the subject id, never a name.
    pub fn who(&self) -> String {
        self.principal.sub.clone()
    }

    /// Asks the one authorization function; a refusal becomes the problem answer.
    /// `hide` answers 404 instead of 403 (an application of another department or tenant
    /// does not exist for the caller).
    pub fn require(
        &self,
        action: Action,
        resource: Resource<'_>,
        hide: bool,
    ) -> Result<(), ApiError> {
        match authorize(self.actor(), action, resource) {
            Decision::Allow(_) => Ok(()),
            Decision::Deny(reason) => Err(refusal(reason, hide)),
        }
    }

    pub fn allowed(&self, action: Action, resource: Resource<'_>) -> bool {
        authorize(self.actor(), action, resource).is_allowed()
    }
}

fn refusal(reason: DenyReason, hide: bool) -> ApiError {
    match reason {
        DenyReason::NotAuthenticated => DomainError::Forbidden.into(),
        _ if hide => DomainError::NotFound.into(),
        _ => DomainError::Forbidden.into(),
    }
}

/// Every staff route starts with this: the tenant of the path, the verified token, the
/// caller's departments and role as authorization sees them (and the sign-in audit record).
impl axum::extract::FromRequestParts<StaffState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &StaffState,
    ) -> Result<Self, Self::Rejection> {
        let segment = parts
            .uri
            .path()
            .strip_prefix("/v1/tenants/")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default()
            .to_owned();
        let tenant = madoguchi_http::tenant_from_path(&segment)?;
        let madoguchi_http::Authenticated(principal) =
            madoguchi_http::Authenticated::from_request_parts(parts, state).await?;
        caller(state, principal, tenant).await
    }
}

/// Loads the caller's context and records a staff sign-in once per token.
pub async fn caller(
    state: &StaffState,
    principal: Principal,
    tenant: TenantId,
) -> Result<Caller, ApiError> {
    if principal.role == Role::Citizen {
        return Ok(Caller {
            principal,
            tenant,
            staff: None,
        });
    }
    if principal.tenant != tenant {
        // Staff of another tenant: their own tenant's nobody here (authorize says OtherTenant);
        // nothing of this tenant is read for them.
        return Ok(Caller {
            principal,
            tenant,
            staff: Some(StaffContext {
                effective: Default::default(),
                admin: false,
                active: true,
                org: Default::default(),
            }),
        });
    }
    let ctx = staff_context(
        state.items.as_ref(),
        &tenant,
        &principal.sub,
        principal.role == Role::Admin,
        &principal.depts,
    )
    .await
    .map_err(port_error)?;
    record_login(state, &principal, &tenant).await?;
    Ok(Caller {
        principal,
        tenant,
        staff: Some(ctx),
    })
}

/// 「ログイン」 for the audit log: Cognito signs staff in, we see their token first here. One
/// record per token (subject and expiry), marked so later requests skip it.
async fn record_login(
    state: &StaffState,
    principal: &Principal,
    tenant: &TenantId,
) -> Result<(), ApiError> {
    let key = Key::new(
        login_pk(tenant, &principal.sub, principal.expires_at),
        SINGLE_SK,
    );
    if state.items.get(&key).await.map_err(port_error)?.is_some() {
        return Ok(());
    }
    let mut marker = Item::new(key, serde_json::json!({}));
    marker.expires_at = Some(principal.expires_at + 86_400);
    match state.items.put(marker, Condition::NotExists).await {
        Ok(()) => {
            audit(
                state,
                tenant,
                AuditEvent::new(AuditAction::StaffLogin, principal.sub.clone())
                    .detail("role", format!("{:?}", principal.role).to_lowercase()),
            )
            .await
        }
        Err(PortError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(port_error(e)),
    }
}

/// Appends an audit record. A look at personal data that cannot be recorded does not happen:
/// the request fails.
pub async fn audit(
    state: &StaffState,
    tenant: &TenantId,
    event: AuditEvent,
) -> Result<(), ApiError> {
    state.audit.append(tenant, event).await.map_err(|e| {
        tracing::error!(error = %e, "audit append failed");
        ApiError::new(Problem::internal())
    })?;
    Ok(())
}

pub(crate) fn internal(what: &'static str) -> ApiError {
    tracing::error!(what, "stored record does not parse");
    ApiError::new(Problem::internal())
}

pub(crate) fn port_error(e: PortError) -> ApiError {
    match e {
        PortError::ConditionFailed { .. } => DomainError::Conflict {
            detail: "ほかの職員が先に更新しました。再読み込みしてからやり直してください。"
                .to_owned(),
        }
        .into(),
        PortError::NotFound => DomainError::NotFound.into(),
        other => {
            tracing::error!(error = %other, "storage failed");
            ApiError::new(Problem::internal())
        }
    }
}

pub(crate) fn field_error(field: &str, code: &str, message: &str) -> ApiError {
    ApiError::validation(vec![FieldError::new(field, code, message)])
}

/// Every change names the version it read (428 when it does not).
pub(crate) use madoguchi_http::required_if_match;
