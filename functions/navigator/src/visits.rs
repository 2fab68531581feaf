//! Counter visits (来庁): staff scan the citizen's procedure-guide code and tick procedures
//! off as the counters finish them (道志村 3(1): QRコード読み取りによる進捗消し込み). A visit
//! is one versioned item, `{tenant}#VISIT#{id}` / `_`, kept 30 days; it holds the code's
//! procedures and their state, no personal data.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use madoguchi_applications::keys::SINGLE_SK;
use madoguchi_domain::authz::{Action, Resource};
use madoguchi_domain::error::DomainError;
use madoguchi_domain::tenant::TenantId;
use madoguchi_guide::{CodeError, GuideCode, VisitChecklist};
use madoguchi_http::{ApiError, ApiJson, ApiPath, required_if_match, with_etag};
use madoguchi_ports::{Condition, Item, Key, PortError, TxOp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::guide::{load_guide, standard_guide};
use crate::{Caller, NavigatorState, field_error, internal, port_error};

/// How long a visit is kept: a household's procedures take a few days at most.
pub const VISIT_TTL_SECS: i64 = 30 * 86_400;

pub fn visit_key(tenant: &TenantId, id: &uuid::Uuid) -> Key {
    Key::new(tenant.key(&["VISIT", &id.to_string()]), SINGLE_SK)
}

/// A procedure as the counter sees it, taken from the guide when the visit was opened (so
/// a later edit of the guide does not change a visit under way).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ProcedureInfo {
    id: String,
    name: String,
    department: String,
    counter: String,
}

/// The stored visit.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct VisitRecord {
    id: String,
    checklist: VisitChecklist,
    event_name: String,
    procedures: Vec<ProcedureInfo>,
    created_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct VisitBody {
    /// The scanned code text (`MG1:…`).
    pub code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TickBody {
    /// A procedure id of the visit.
    pub procedure: String,
    /// `true`: done; `false`: undo a tick made by mistake.
    pub done: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VisitProcedure {
    pub id: String,
    pub name: String,
    /// 担当課.
    pub department: String,
    /// 窓口.
    pub counter: String,
    pub done: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VisitView {
    pub id: String,
    pub event: String,
    pub event_name: String,
    /// The guide version the code was made with (0: the standard rule set).
    pub guide_version: u32,
    pub procedures: Vec<VisitProcedure>,
    /// Ids of the procedures done.
    pub done: Vec<String>,
    /// Ids of the procedures left.
    pub left: Vec<String>,
    pub complete: bool,
}

impl VisitRecord {
    fn view(&self) -> VisitView {
        let c = &self.checklist;
        VisitView {
            id: self.id.clone(),
            event: c.event.clone(),
            event_name: self.event_name.clone(),
            guide_version: c.version,
            procedures: c
                .items
                .iter()
                .map(|i| {
                    let info = self.procedures.iter().find(|p| p.id == i.procedure);
                    VisitProcedure {
                        id: i.procedure.clone(),
                        name: info.map_or_else(|| i.procedure.clone(), |p| p.name.clone()),
                        department: info.map(|p| p.department.clone()).unwrap_or_default(),
                        counter: info.map(|p| p.counter.clone()).unwrap_or_default(),
                        done: i.done,
                    }
                })
                .collect(),
            done: c.done().into_iter().map(str::to_owned).collect(),
            left: c.left().into_iter().map(str::to_owned).collect(),
            complete: c.is_complete(),
        }
    }
}

fn code_error(e: &CodeError) -> ApiError {
    let code = match e {
        CodeError::NotACode => "not_a_code",
        CodeError::UnsupportedVersion => "unsupported_version",
        CodeError::Corrupted => "corrupted",
    };
    field_error("code", code, &e.to_string())
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/staff/guide/visits",
    tag = "navigator",
    params(("tenant" = String, Path), ("idempotency-key" = Option<String>, Header, description = "optional; a retry with the same key answers the same visit")),
    request_body = VisitBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "the visit opened from the code; ETag = version", body = VisitView),
        (status = 401, description = "no or bad token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not staff of this tenant", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "a retry raced the first request; retry again", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "not a code, a damaged one, one of another municipality (other_tenant), or an Idempotency-Key reused for another code", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn create_visit(
    State(state): State<NavigatorState>,
    who: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<VisitBody>,
) -> Result<Response, ApiError> {
    who.require(
        Action::ReadOrganisation,
        Resource::Tenant(&who.tenant),
        false,
    )?;
    let retry_key = idempotency_key(&headers)?;
    let code = GuideCode::decode(&body.code).map_err(|e| code_error(&e))?;
    if code.tenant != who.tenant {
        return Err(field_error(
            "code",
            "other_tenant",
            "ほかの市区町村の案内票のコードです。",
        ));
    }
    let loaded = load_guide(&state, &who.tenant).await?;
    let standard = standard_guide();
    // Ids are stable across versions; a procedure the tenant's guide dropped since is
    // still named from the standard catalogue, or by its id.
    let procedures = code
        .procedures
        .iter()
        .map(|id| {
            let p = loaded
                .guide
                .procedure(id)
                .or_else(|| standard.procedure(id));
            ProcedureInfo {
                id: id.clone(),
                name: p.map_or_else(|| id.clone(), |p| p.name.clone()),
                department: p.map(|p| p.department.clone()).unwrap_or_default(),
                counter: p.map(|p| p.counter.clone()).unwrap_or_default(),
            }
        })
        .collect();
    let event_name = loaded
        .guide
        .event(&code.event)
        .or_else(|| standard.event(&code.event))
        .map_or_else(|| code.event.clone(), |e| e.name.clone());
    let id = state.ids.new_id();
    let now = state.clock.now();
    let record = VisitRecord {
        id: id.to_string(),
        checklist: VisitChecklist::from_code(&code),
        event_name,
        procedures,
        created_at: now.to_string(),
    };
    let mut item = Item::new(
        visit_key(&who.tenant, &id),
        serde_json::to_value(&record).map_err(|_| internal("visit"))?,
    );
    item.expires_at = Some(now.as_second() + VISIT_TTL_SECS);
    let Some(retry_key) = retry_key else {
        state
            .items
            .put(item, Condition::NotExists)
            .await
            .map_err(port_error)?;
        return Ok(with_etag(StatusCode::CREATED, 1, record.view()));
    };
    // The marker and the visit are written together, so a retry finds either both or none.
    let marker_key = retry_marker_key(&who.tenant, &retry_key);
    let mut marker = Item::new(
        marker_key.clone(),
        serde_json::json!({"visit": record.id, "code": code.encode()}),
    );
    marker.expires_at = Some(now.as_second() + RETRY_TTL_SECS);
    let written = state
        .items
        .transact(vec![
            TxOp::Put(marker, Condition::NotExists),
            TxOp::Put(item, Condition::NotExists),
        ])
        .await;
    match written {
        Ok(()) => Ok(with_etag(StatusCode::CREATED, 1, record.view())),
        Err(PortError::ConditionFailed { .. }) => {
            // A retry: answer the visit the first request opened, as it is now.
            let marker = state
                .items
                .get(&marker_key)
                .await
                .map_err(port_error)?
                .ok_or_else(|| port_error(PortError::ConditionFailed { index: None }))?;
            if marker.data["code"].as_str() != Some(code.encode().as_str()) {
                return Err(field_error(
                    RETRY_HEADER,
                    "reused",
                    "Idempotency-Key は読み取りごとに異なる値にしてください。",
                ));
            }
            let first = marker.data["visit"].as_str().unwrap_or_default();
            let (item, record) = load_visit(&state, &who.tenant, first).await?;
            Ok(with_etag(StatusCode::CREATED, item.version, record.view()))
        }
        Err(e) => Err(port_error(e)),
    }
}

/// Optional header making a scan's retry (a flaky LGWAN link) answer the same visit.
pub const RETRY_HEADER: &str = "idempotency-key";
/// How long a retry finds the visit it opened.
const RETRY_TTL_SECS: i64 = 24 * 3600;

fn retry_marker_key(tenant: &TenantId, key: &str) -> Key {
    Key::new(tenant.key(&["VISITKEY", key]), SINGLE_SK)
}

/// The `Idempotency-Key`, when given: 1–64 of `A-Z a-z 0-9 - _ .` (it becomes part of a key).
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(RETRY_HEADER) else {
        return Ok(None);
    };
    let value = value.to_str().unwrap_or_default().trim();
    let ok = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        return Err(field_error(
            RETRY_HEADER,
            "invalid_format",
            "Idempotency-Key は英数字・ハイフン（64文字以内、UUIDなど）で指定してください。",
        ));
    }
    Ok(Some(value.to_owned()))
}

async fn load_visit(
    state: &NavigatorState,
    tenant: &TenantId,
    id: &str,
) -> Result<(Item, VisitRecord), ApiError> {
    let id = uuid::Uuid::parse_str(id).map_err(|_| ApiError::from(DomainError::NotFound))?;
    let item = state
        .items
        .get(&visit_key(tenant, &id))
        .await
        .map_err(port_error)?
        .ok_or_else(|| ApiError::from(DomainError::NotFound))?;
    let record: VisitRecord =
        serde_json::from_value(item.data.clone()).map_err(|_| internal("visit"))?;
    Ok((item, record))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/staff/guide/visits/{id}",
    tag = "navigator",
    params(("tenant" = String, Path), ("id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "what is done and what is left; ETag = version", body = VisitView),
        (status = 401, description = "no or bad token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not staff of this tenant", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such visit (or expired)", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn get_visit(
    State(state): State<NavigatorState>,
    who: Caller,
    ApiPath(path): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    who.require(
        Action::ReadOrganisation,
        Resource::Tenant(&who.tenant),
        false,
    )?;
    let (item, record) = load_visit(&state, &who.tenant, &path.1).await?;
    Ok(with_etag(StatusCode::OK, item.version, record.view()))
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/staff/guide/visits/{id}/ticks",
    tag = "navigator",
    params(("tenant" = String, Path), ("id" = String, Path), ("If-Match" = String, Header, description = "version read")),
    request_body = TickBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "ticked (or unticked); new ETag", body = VisitView),
        (status = 401, description = "no or bad token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not staff of this tenant", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such visit (or expired)", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "changed meanwhile (another counter ticked)", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "a procedure that is not in this visit", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn tick(
    State(state): State<NavigatorState>,
    who: Caller,
    ApiPath(path): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<TickBody>,
) -> Result<Response, ApiError> {
    who.require(
        Action::ReadOrganisation,
        Resource::Tenant(&who.tenant),
        false,
    )?;
    let expected = required_if_match(&headers)?;
    let (mut item, mut record) = load_visit(&state, &who.tenant, &path.1).await?;
    if item.version != expected {
        return Err(port_error(PortError::ConditionFailed { index: None }));
    }
    let changed = if body.done {
        record.checklist.tick(&body.procedure)
    } else {
        record.checklist.untick(&body.procedure)
    }
    .map_err(|e| field_error("procedure", "not_in_visit", &e.to_string()))?;
    if changed {
        item.data = serde_json::to_value(&record).map_err(|_| internal("visit"))?;
        item.version = expected + 1;
        state
            .items
            .put(item.clone(), Condition::VersionEquals(expected))
            .await
            .map_err(port_error)?;
    }
    Ok(with_etag(StatusCode::OK, item.version, record.view()))
}
