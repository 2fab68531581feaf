//! The caller of a staff route (職員), the same way for every function that serves staff:
//! the tenant of the path, the verified token, the caller's departments and role as
//! `madoguchi_domain::authz::authorize` sees them (from the directory and the department tree,
//! `madoguchi_applications::access`), and one `staff_login` audit record per token.
//!
//! A function's state implements [`StaffScope`] (its item store and audit log) and gives the
//! [`Authenticator`] through `FromRef`; handlers then take a [`StaffCaller`] argument.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use madoguchi_applications::access::{StaffContext, staff_context};
use madoguchi_applications::keys::{SINGLE_SK, login_pk};
use madoguchi_audit::{AuditAction, AuditEvent, AuditLog};
use madoguchi_domain::authz::{Action, Actor, Decision, DenyReason, Resource, authorize};
use madoguchi_domain::error::{DomainError, Problem};
use madoguchi_domain::tenant::TenantId;
use madoguchi_http::auth::Role;
use madoguchi_http::{ApiError, Authenticator, Principal};
use madoguchi_ports::{Condition, Item, ItemStore, Key, PortError};

/// What the extractor needs from a function's state.
pub trait StaffScope: Send + Sync {
    fn items(&self) -> &Arc<dyn ItemStore>;
    fn audit_log(&self) -> &AuditLog;
}

/// The caller of a staff route, with what authorization needs.
pub struct StaffCaller {
    pub principal: Principal,
    pub tenant: TenantId,
    /// `None` for citizens (every staff action refuses them).
    pub staff: Option<StaffContext>,
}

impl StaffCaller {
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

impl<S> FromRequestParts<S> for StaffCaller
where
    S: StaffScope,
    Arc<Authenticator>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
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
pub async fn caller<S: StaffScope>(
    state: &S,
    principal: Principal,
    tenant: TenantId,
) -> Result<StaffCaller, ApiError> {
    if principal.role == Role::Citizen {
        return Ok(StaffCaller {
            principal,
            tenant,
            staff: None,
        });
    }
    if principal.tenant != tenant {
        // Staff of another tenant: their own tenant's nobody here (authorize says OtherTenant);
        // nothing of this tenant is read for them.
        return Ok(StaffCaller {
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
        state.items().as_ref(),
        &tenant,
        &principal.sub,
        principal.role == Role::Admin,
        &principal.depts,
    )
    .await
    .map_err(store_error)?;
    record_login(state, &principal, &tenant).await?;
    Ok(StaffCaller {
        principal,
        tenant,
        staff: Some(ctx),
    })
}

/// 「ログイン」 for the audit log: the identity provider signs staff in, we see their token
/// first here. One record per token (subject and expiry), marked so later requests skip it.
async fn record_login<S: StaffScope>(
    state: &S,
    principal: &Principal,
    tenant: &TenantId,
) -> Result<(), ApiError> {
    let key = Key::new(
        login_pk(tenant, &principal.sub, principal.expires_at),
        SINGLE_SK,
    );
    if state
        .items()
        .get(&key)
        .await
        .map_err(store_error)?
        .is_some()
    {
        return Ok(());
    }
    let mut marker = Item::new(key, serde_json::json!({}));
    marker.expires_at = Some(principal.expires_at + 86_400);
    match state.items().put(marker, Condition::NotExists).await {
        Ok(()) => {
            audit(
                state.audit_log(),
                tenant,
                AuditEvent::new(AuditAction::StaffLogin, principal.sub.clone())
                    .detail("role", format!("{:?}", principal.role).to_lowercase()),
            )
            .await
        }
        Err(PortError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(store_error(e)),
    }
}

/// Appends an audit record. A look at personal data that cannot be recorded does not happen:
/// the request fails.
pub async fn audit(log: &AuditLog, tenant: &TenantId, event: AuditEvent) -> Result<(), ApiError> {
    log.append(tenant, event).await.map_err(|e| {
        tracing::error!(error = %e, "audit append failed");
        ApiError::new(Problem::internal())
    })?;
    Ok(())
}

fn store_error(e: PortError) -> ApiError {
    tracing::error!(error = %e, "storage failed");
    ApiError::new(Problem::internal())
}

/// A store error as staff see it: a failed condition means another member changed the thing
/// first (409 with a message that says so); the rest as every function answers them.
pub fn port_error(e: PortError) -> ApiError {
    match e {
        PortError::ConditionFailed { .. } => DomainError::Conflict {
            detail: "ほかの職員が先に更新しました。再読み込みしてからやり直してください。"
                .to_owned(),
        }
        .into(),
        other => madoguchi_http::port_error(other),
    }
}
