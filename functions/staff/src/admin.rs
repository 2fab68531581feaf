//! The tenant administrator's routes: departments (組織), the staff directory, per-form grants,
//! and the audit log.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use madoguchi_applications::StaffMember;
use madoguchi_applications::access::{load_grants, load_member, load_org};
use madoguchi_applications::keys::{
    FORM_GRANTS_SK, FORM_META_SK, SINGLE_SK, form_pk, org_pk, staff_index_pk, staff_pk,
};
use madoguchi_audit::{AuditAction, AuditEvent, AuditRecord, VerifyReport};
use madoguchi_domain::authz::{
    Action, Department, FormGrants, OrgError, OrgTree, Permission, Resource, is_valid_dept_id,
};
use madoguchi_domain::error::DomainError;
use madoguchi_http::{ApiError, ApiJson, ApiPath, ApiQuery, with_etag};
use madoguchi_ports::{Condition, Index, Item, Key, QueryRequest, query_all};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{Caller, StaffState, audit, field_error, internal, port_error, required_if_match};

/// Writes a record whose client named the version it read (`If-Match`; 0: "there is none
/// yet"), as version + 1; a lost race is 409.
async fn put_versioned(state: &StaffState, mut item: Item, expected: u64) -> Result<(), ApiError> {
    item.version = expected + 1;
    let condition = if expected == 0 {
        Condition::NotExists
    } else {
        Condition::VersionEquals(expected)
    };
    state.items.put(item, condition).await.map_err(port_error)
}

fn org_error(e: OrgError) -> ApiError {
    let (field, message) = match &e {
        OrgError::BadId(_) => (
            "departments",
            "部署IDは半角英小文字・数字・ハイフン（32文字以内）で指定してください。",
        ),
        OrgError::Duplicate(_) => ("departments", "同じ部署IDが二度指定されています。"),
        OrgError::NoName(_) => ("departments", "部署名を100文字以内で入力してください。"),
        OrgError::UnknownParent(_) => ("departments", "上位部署が見つかりません。"),
        OrgError::Cycle(_) => ("departments", "部署の上下関係が循環しています。"),
        OrgError::UnknownDepartment(_) => ("grants", "登録されていない部署です。"),
        OrgError::InUse(_) => ("departments", "所管する様式がある部署は削除できません。"),
    };
    let code = match e {
        OrgError::BadId(_) => "dept.bad_id",
        OrgError::Duplicate(_) => "dept.duplicate",
        OrgError::NoName(_) => "dept.no_name",
        OrgError::UnknownParent(_) => "dept.unknown_parent",
        OrgError::Cycle(_) => "dept.cycle",
        OrgError::UnknownDepartment(_) => "dept.unknown",
        OrgError::InUse(_) => "dept.in_use",
    };
    field_error(field, code, message)
}

// ---------------------------------------------------------------------------------------
// Departments

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrgDoc {
    /// Every department; `parent` names another one (部 → 課 → 係).
    #[schema(value_type = Vec<Object>)]
    pub departments: Vec<Department>,
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/staff/org",
    tag = "staff",
    params(("tenant" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the department tree; ETag = version (0: none yet)", body = OrgDoc),
        (status = 403, description = "not staff of this tenant", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn get_org(State(state): State<StaffState>, who: Caller) -> Result<Response, ApiError> {
    who.require(
        Action::ReadOrganisation,
        Resource::Tenant(&who.tenant),
        false,
    )?;
    let (org, version) = load_org(state.items.as_ref(), &who.tenant)
        .await
        .map_err(port_error)?;
    Ok(with_etag(
        StatusCode::OK,
        version,
        OrgDoc {
            departments: org.departments,
        },
    ))
}

#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/staff/org",
    tag = "staff",
    params(("tenant" = String, Path), ("If-Match" = String, Header, description = "version read; 0 for the first tree")),
    request_body = OrgDoc,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "saved; new ETag", body = OrgDoc),
        (status = 403, description = "not the tenant administrator", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "changed meanwhile", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "bad tree (ids, loops, unknown parents, a removed department still owning forms)", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn put_org(
    State(state): State<StaffState>,
    who: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<OrgDoc>,
) -> Result<Response, ApiError> {
    who.require(
        Action::ManageOrganisation,
        Resource::Tenant(&who.tenant),
        false,
    )?;
    let expected = required_if_match(&headers)?;
    let org = OrgTree {
        departments: body.departments,
    };
    org.validate().map_err(org_error)?;
    let (old, _) = load_org(state.items.as_ref(), &who.tenant)
        .await
        .map_err(port_error)?;
    // A department that owns or holds grants on a form cannot disappear under it.
    let removed: Vec<String> = old
        .departments
        .iter()
        .filter(|d| !org.contains(&d.id))
        .map(|d| d.id.clone())
        .collect();
    if !removed.is_empty() {
        for slug in all_form_slugs(&state, &who.tenant).await? {
            let (g, _) = load_grants(state.items.as_ref(), &who.tenant, &slug)
                .await
                .map_err(port_error)?;
            if let Some(d) = removed
                .iter()
                .find(|d| g.owner == **d || g.grants.contains_key(*d))
            {
                return Err(org_error(OrgError::InUse(d.clone())));
            }
        }
    }
    let item = Item::new(
        Key::new(org_pk(&who.tenant), SINGLE_SK),
        serde_json::to_value(&org).expect("serializable"),
    );
    put_versioned(&state, item, expected).await?;
    audit(
        &state,
        &who.tenant,
        AuditEvent::new(AuditAction::OrgChange, who.who())
            .detail("departments", org.departments.len())
            .detail("removed", removed),
    )
    .await?;
    Ok(with_etag(
        StatusCode::OK,
        expected + 1,
        OrgDoc {
            departments: org.departments,
        },
    ))
}

pub(crate) async fn all_form_slugs(
    state: &StaffState,
    tenant: &madoguchi_domain::tenant::TenantId,
) -> Result<Vec<String>, ApiError> {
    let items = query_all(
        state.items.as_ref(),
        QueryRequest::partition(madoguchi_applications::keys::forms_index_pk(tenant))
            .on(Index::Gsi1)
            .limit(100),
        crate::apps::MAX_FORMS,
    )
    .await
    .map_err(port_error)?;
    Ok(items
        .into_iter()
        .filter_map(|item| item.data.get("slug")?.as_str().map(str::to_owned))
        .collect())
}

// ---------------------------------------------------------------------------------------
// Staff directory

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberDoc {
    pub sub: String,
    #[serde(default)]
    pub display_name: String,
    pub depts: Vec<String>,
    pub active: bool,
    #[serde(default)]
    pub updated_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRequest {
    #[serde(default)]
    pub display_name: String,
    pub depts: Vec<String>,
    pub active: bool,
}

/// Most members one directory listing returns (a large city has a few thousand staff).
const MAX_MEMBERS: usize = 10_000;

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberList {
    pub items: Vec<MemberDoc>,
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/staff/members",
    tag = "staff",
    params(("tenant" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "registered staff members", body = MemberList),
        (status = 403, description = "not the tenant administrator", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn list_members(
    State(state): State<StaffState>,
    who: Caller,
) -> Result<Response, ApiError> {
    who.require(
        Action::ManageOrganisation,
        Resource::Tenant(&who.tenant),
        false,
    )?;
    let stored = query_all(
        state.items.as_ref(),
        QueryRequest::partition(staff_index_pk(&who.tenant))
            .on(Index::Gsi1)
            .limit(100),
        MAX_MEMBERS,
    )
    .await
    .map_err(port_error)?;
    let mut items = Vec::with_capacity(stored.len());
    for item in stored {
        let m: StaffMember =
            serde_json::from_value(item.data).map_err(|_| internal("staff member"))?;
        items.push(MemberDoc {
            sub: m.sub,
            display_name: m.display_name,
            depts: m.depts,
            active: m.active,
            updated_at: m.updated_at,
        });
    }
    Ok(Json(MemberList { items }).into_response())
}

#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/staff/members/{sub}",
    tag = "staff",
    params(("tenant" = String, Path), ("sub" = String, Path, description = "the staff pool's subject"), ("If-Match" = String, Header, description = "version read; 0 to register")),
    request_body = MemberRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "saved; new ETag. The member's departments now come from here, not from the token", body = MemberDoc),
        (status = 403, description = "not the tenant administrator", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "changed meanwhile", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "unknown department", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn put_member(
    State(state): State<StaffState>,
    who: Caller,
    ApiPath((_tenant, sub)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<MemberRequest>,
) -> Result<Response, ApiError> {
    who.require(
        Action::ManageOrganisation,
        Resource::Tenant(&who.tenant),
        false,
    )?;
    let expected = required_if_match(&headers)?;
    if sub.is_empty() || sub.len() > 128 || sub.chars().any(char::is_control) {
        return Err(field_error("sub", "invalid", "職員IDが正しくありません。"));
    }
    if body.display_name.chars().count() > 100 {
        return Err(field_error(
            "display_name",
            "too_long",
            "100文字以内で入力してください。",
        ));
    }
    let (org, _) = load_org(state.items.as_ref(), &who.tenant)
        .await
        .map_err(port_error)?;
    for (i, d) in body.depts.iter().enumerate() {
        if !org.contains(d) {
            return Err(field_error(
                &format!("depts[{i}]"),
                "dept.unknown",
                "登録されていない部署です。",
            ));
        }
    }
    let before = load_member(state.items.as_ref(), &who.tenant, &sub)
        .await
        .map_err(port_error)?;
    let member = StaffMember {
        sub: sub.clone(),
        display_name: body.display_name,
        depts: body.depts,
        active: body.active,
        updated_at: state.clock.now().to_string(),
    };
    let mut item = Item::new(
        Key::new(staff_pk(&who.tenant, &sub), SINGLE_SK),
        serde_json::to_value(&member).expect("serializable"),
    );
    let index_sk = Key::new(staff_pk(&who.tenant, &sub), SINGLE_SK).pk;
    item.gsi1 = Some(Key::new(staff_index_pk(&who.tenant), index_sk));
    put_versioned(&state, item, expected).await?;
    audit(
        &state,
        &who.tenant,
        AuditEvent::new(AuditAction::StaffDirectoryChange, who.who())
            .detail("member", sub.as_str())
            .detail(
                "depts_before",
                before.map(|(m, _)| m.depts).unwrap_or_default(),
            )
            .detail("depts", member.depts.clone())
            .detail("active", member.active),
    )
    .await?;
    Ok(with_etag(
        StatusCode::OK,
        expected + 1,
        MemberDoc {
            sub: member.sub,
            display_name: member.display_name,
            depts: member.depts,
            active: member.active,
            updated_at: member.updated_at,
        },
    ))
}

// ---------------------------------------------------------------------------------------
// Grants

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GrantsDoc {
    /// 所管課: the owning department.
    pub owner: String,
    /// Department → permissions (`view`, `process`, `export`, `decrypt`, `manage`).
    #[schema(value_type = Object)]
    pub grants: BTreeMap<String, BTreeSet<Permission>>,
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/staff/forms/{slug}/grants",
    tag = "staff",
    params(("tenant" = String, Path), ("slug" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the form's grants; ETag = version", body = GrantsDoc),
        (status = 403, description = "not the tenant administrator", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such form", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn get_grants(
    State(state): State<StaffState>,
    who: Caller,
    ApiPath((_tenant, slug)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    who.require(
        Action::ManageOrganisation,
        Resource::Tenant(&who.tenant),
        false,
    )?;
    form_exists(&state, &who.tenant, &slug).await?;
    let (g, version) = load_grants(state.items.as_ref(), &who.tenant, &slug)
        .await
        .map_err(port_error)?;
    Ok(with_etag(
        StatusCode::OK,
        version,
        GrantsDoc {
            owner: g.owner,
            grants: g.grants,
        },
    ))
}

async fn form_exists(
    state: &StaffState,
    tenant: &madoguchi_domain::tenant::TenantId,
    slug: &str,
) -> Result<(), ApiError> {
    if !madoguchi_domain::form::is_valid_slug(slug) {
        return Err(DomainError::NotFound.into());
    }
    state
        .items
        .get(&Key::new(form_pk(tenant, slug), FORM_META_SK))
        .await
        .map_err(port_error)?
        .ok_or(DomainError::NotFound)?;
    Ok(())
}

#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/staff/forms/{slug}/grants",
    tag = "staff",
    params(("tenant" = String, Path), ("slug" = String, Path), ("If-Match" = String, Header, description = "version read; 0 when the form has none")),
    request_body = GrantsDoc,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "saved (process, export and decrypt include view); new ETag", body = GrantsDoc),
        (status = 403, description = "not the tenant administrator", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "changed meanwhile", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "unknown department", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn put_grants(
    State(state): State<StaffState>,
    who: Caller,
    ApiPath((_tenant, slug)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<GrantsDoc>,
) -> Result<Response, ApiError> {
    who.require(
        Action::ManageOrganisation,
        Resource::Tenant(&who.tenant),
        false,
    )?;
    let expected = required_if_match(&headers)?;
    form_exists(&state, &who.tenant, &slug).await?;
    for d in body.grants.keys().chain(std::iter::once(&body.owner)) {
        if !is_valid_dept_id(d) {
            return Err(org_error(OrgError::UnknownDepartment(d.clone())));
        }
    }
    let grants = FormGrants {
        owner: body.owner,
        grants: body.grants,
    }
    .normalised();
    let (org, _) = load_org(state.items.as_ref(), &who.tenant)
        .await
        .map_err(port_error)?;
    grants.validate(&org).map_err(org_error)?;
    let (before, _) = load_grants(state.items.as_ref(), &who.tenant, &slug)
        .await
        .map_err(port_error)?;
    put_grants_item(&state, &who.tenant, &slug, &grants, expected).await?;
    audit(
        &state,
        &who.tenant,
        AuditEvent::new(AuditAction::GrantChange, who.who())
            .form(&slug)
            .detail(
                "before",
                serde_json::to_value(&before).expect("serializable"),
            )
            .detail(
                "after",
                serde_json::to_value(&grants).expect("serializable"),
            ),
    )
    .await?;
    Ok(with_etag(
        StatusCode::OK,
        expected + 1,
        GrantsDoc {
            owner: grants.owner,
            grants: grants.grants,
        },
    ))
}

pub(crate) async fn put_grants_item(
    state: &StaffState,
    tenant: &madoguchi_domain::tenant::TenantId,
    slug: &str,
    grants: &FormGrants,
    expected: u64,
) -> Result<(), ApiError> {
    let item = Item::new(
        Key::new(form_pk(tenant, slug), FORM_GRANTS_SK),
        serde_json::to_value(grants).expect("serializable"),
    );
    put_versioned(state, item, expected).await
}

// ---------------------------------------------------------------------------------------
// Audit

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Records after this sequence number (0: from the start).
    pub after: Option<u64>,
    /// 1–500, default 100.
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<AuditRecord>,
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/staff/audit",
    tag = "staff",
    params(("tenant" = String, Path), AuditQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "audit records in order", body = AuditPage),
        (status = 403, description = "not the tenant administrator", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn audit_records(
    State(state): State<StaffState>,
    who: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    who.require(Action::ReadAudit, Resource::Tenant(&who.tenant), false)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(field_error(
            "limit",
            "limit.range",
            "件数は1〜500で指定してください。",
        ));
    }
    let items = state
        .audit
        .records(&who.tenant, q.after.unwrap_or(0), limit)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "audit read failed");
            ApiError::new(madoguchi_domain::error::Problem::internal())
        })?;
    Ok(Json(AuditPage { items }).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/staff/audit/verify",
    tag = "staff",
    params(("tenant" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the verification report (findings say where the chain breaks)", body = Object),
        (status = 403, description = "not the tenant administrator", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn audit_verify(
    State(state): State<StaffState>,
    who: Caller,
) -> Result<Response, ApiError> {
    who.require(Action::ReadAudit, Resource::Tenant(&who.tenant), false)?;
    let report: VerifyReport = match &state.audit_mirror {
        Some(mirror) => {
            madoguchi_audit::verify_with_mirror(state.items.as_ref(), mirror.as_ref(), &who.tenant)
                .await
        }
        None => madoguchi_audit::verify(state.items.as_ref(), &who.tenant).await,
    }
    .map_err(|e| {
        tracing::error!(error = %e, "audit verify failed");
        ApiError::new(madoguchi_domain::error::Problem::internal())
    })?;
    audit(
        &state,
        &who.tenant,
        AuditEvent::new(AuditAction::AuditVerify, who.who())
            .detail("records", report.records)
            .detail("ok", report.ok()),
    )
    .await?;
    Ok(Json(report).into_response())
}
