//! The tenant's guide (手続きガイド): one versioned item, `{tenant}#GUIDE` / `_`. Until the
//! administrator saves one, the standard rule set is served as version 0.

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use madoguchi_applications::keys::SINGLE_SK;
use madoguchi_audit::{AuditAction, AuditEvent};
use madoguchi_domain::authz::{Action, Resource};
use madoguchi_domain::error::FieldError;
use madoguchi_domain::tenant::TenantId;
use madoguchi_guide::{CheckError, Guide, parse_and_check};
use madoguchi_http::{ApiError, required_if_match, with_etag};
use madoguchi_ports::{Condition, Item, Key};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{Caller, NavigatorState, audit, internal, port_error};

/// The guide a tenant serves, with its version (0: the standard rule set, nothing stored).
#[derive(Debug, Clone)]
pub struct LoadedGuide {
    pub guide: Arc<Guide>,
    pub version: u64,
    pub standard: bool,
}

impl LoadedGuide {
    /// The version as it goes into a procedure-guide code.
    pub fn code_version(&self) -> u32 {
        u32::try_from(self.version).unwrap_or(u32::MAX)
    }
}

pub fn guide_key(tenant: &TenantId) -> Key {
    Key::new(tenant.key(&["GUIDE"]), SINGLE_SK)
}

/// The standard rule set, parsed once per process (it is compiled in and never changes).
pub fn standard_guide() -> Arc<Guide> {
    static STANDARD: OnceLock<Arc<Guide>> = OnceLock::new();
    STANDARD
        .get_or_init(|| Arc::new(madoguchi_guide::standard()))
        .clone()
}

/// The stored guide, or the standard one.
pub async fn load_guide(
    state: &NavigatorState,
    tenant: &TenantId,
) -> Result<LoadedGuide, ApiError> {
    match state
        .items
        .get(&guide_key(tenant))
        .await
        .map_err(port_error)?
    {
        Some(item) => {
            let guide: Guide = serde_json::from_value(item.data).map_err(|_| internal("guide"))?;
            Ok(LoadedGuide {
                guide: Arc::new(guide),
                version: item.version,
                standard: false,
            })
        }
        None => Ok(LoadedGuide {
            guide: standard_guide(),
            version: 0,
            standard: true,
        }),
    }
}

/// The guide as staff read it.
#[derive(Debug, Serialize, ToSchema)]
pub struct GuideDoc {
    /// True when nothing is stored and the standard rule set (標準ルールセット) is served.
    pub standard: bool,
    /// The stored version (also the ETag); 0 for the standard rule set.
    pub version: u64,
    /// The guide JSON (`docs/guide.md`); `PUT` takes this document as its body.
    #[schema(value_type = Object)]
    pub guide: Guide,
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/staff/guide",
    tag = "navigator",
    params(("tenant" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the tenant's guide, or the standard one; ETag = version (0: standard)", body = GuideDoc),
        (status = 401, description = "no or bad token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not staff of this tenant", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn get_guide(
    State(state): State<NavigatorState>,
    who: Caller,
) -> Result<Response, ApiError> {
    who.require(
        Action::ReadOrganisation,
        Resource::Tenant(&who.tenant),
        false,
    )?;
    let loaded = load_guide(&state, &who.tenant).await?;
    Ok(with_etag(
        StatusCode::OK,
        loaded.version,
        GuideDoc {
            standard: loaded.standard,
            version: loaded.version,
            guide: (*loaded.guide).clone(),
        },
    ))
}

/// A check error as a field error: the path names the setting (`cases[3]` for an example case).
fn check_errors(errors: Vec<CheckError>) -> ApiError {
    ApiError::validation(
        errors
            .into_iter()
            .map(|e| {
                let code = serde_json::to_value(e.code)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_else(|| "invalid".to_owned());
                FieldError {
                    field: if e.path.is_empty() {
                        "guide".to_owned()
                    } else {
                        e.path
                    },
                    code,
                    message: e.message,
                }
            })
            .collect(),
    )
}

#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/staff/guide",
    tag = "navigator",
    params(("tenant" = String, Path), ("If-Match" = String, Header, description = "version read; 0 when the standard rule set was served")),
    request_body(content = Object, description = "the guide JSON (docs/guide.md); its `version` is set by the server"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "saved; new ETag", body = GuideDoc),
        (status = 401, description = "no or bad token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not the tenant administrator", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "changed meanwhile", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "body too large", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "the guide fails its checks or an example case (errors[].field is the path, e.g. cases[3])", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn put_guide(
    State(state): State<NavigatorState>,
    who: Caller,
    headers: HeaderMap,
    body: crate::Body,
) -> Result<Response, ApiError> {
    who.require(
        Action::ManageOrganisation,
        Resource::Tenant(&who.tenant),
        false,
    )?;
    let expected = required_if_match(&headers)?;
    let body = crate::body_bytes(body)?;
    let text = std::str::from_utf8(&body).map_err(|_| {
        crate::field_error(
            "guide",
            "invalid_json",
            "ガイドは UTF-8 の JSON で送ってください。",
        )
    })?;
    let mut guide = parse_and_check(text).map_err(check_errors)?;
    let version = expected + 1;
    // The stored version goes into every procedure-guide code made from this guide.
    guide.version = u32::try_from(version).map_err(|_| internal("guide version"))?;
    let mut item = Item::new(
        guide_key(&who.tenant),
        serde_json::to_value(&guide).map_err(|_| internal("guide"))?,
    );
    item.version = version;
    let condition = if expected == 0 {
        Condition::NotExists
    } else {
        Condition::VersionEquals(expected)
    };
    state.items.put(item, condition).await.map_err(port_error)?;
    audit(
        &state,
        &who.tenant,
        AuditEvent::new(AuditAction::GuideChange, who.who())
            .detail("guide", true)
            .detail("version", version),
    )
    .await?;
    Ok(with_etag(
        StatusCode::OK,
        version,
        GuideDoc {
            standard: false,
            version,
            guide,
        },
    ))
}
