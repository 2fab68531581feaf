//! Staff routes over the core-system linkage: counter look-ups of residents (住民記録の照会)
//! from the resident store the inbound files fill, and re-export requests of applications
//! to core systems (後方連携の再送).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use madoguchi_applications::keys::app_pk;
use madoguchi_applications::outbox::{EXPORT_PREFIX, ExportRecord, PendingExport, pending_item};
use madoguchi_audit::{AuditAction, AuditEvent};
use madoguchi_domain::authz::{Action, Resource};
use madoguchi_domain::error::{DomainError, FieldError};
use madoguchi_domain::tenant::TenantId;
use madoguchi_http::{ApiError, ApiJson, ApiPath};
use madoguchi_ports::{Condition, OutgoingMessage, QueryRequest, SortKeyCondition};
use madoguchi_residents::ResidentView;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::apps::load_for;
use crate::{Caller, StaffState, audit, field_error, port_error};

/// Tells the outbound function there may be work (best effort: its schedule catches up).
pub(crate) async fn nudge_outbound(state: &StaffState, tenant: &TenantId) {
    let body = serde_json::json!({ "tenant": tenant.as_str(), "reason": "status_change" });
    if let Err(e) = state
        .outbound
        .send_batch(vec![OutgoingMessage::new(body.to_string())])
        .await
    {
        tracing::warn!(error = %e, "outbound nudge not queued; the schedule will run it");
    }
}

fn require_lookup(who: &Caller) -> Result<(), ApiError> {
    let org = who
        .staff
        .as_ref()
        .map(|s| s.org.clone())
        .unwrap_or_default();
    who.require(
        Action::LookUpResidents,
        Resource::Residents {
            tenant: &who.tenant,
            org: &org,
        },
        false,
    )
}

/// A resident and the present members of their household.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResidentAnswer {
    #[schema(value_type = Object)]
    pub resident: ResidentView,
    /// 世帯員: the present members, 世帯主 first (the resident among them when present).
    #[schema(value_type = Vec<Object>)]
    pub household: Vec<ResidentView>,
}

fn no_store(mut res: Response) -> Response {
    // Personal data: no cache on the way keeps a copy.
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/staff/residents/{atena}",
    tag = "staff",
    params(("tenant" = String, Path), ("atena" = String, Path, description = "宛名番号")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the resident and their household (世帯員); audited; Cache-Control no-store", body = ResidentAnswer),
        (status = 403, description = "no department of the caller may look up residents", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such resident", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn resident(
    State(state): State<StaffState>,
    who: Caller,
    ApiPath((_tenant, atena)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    require_lookup(&who)?;
    let found = state
        .residents
        .resident(&who.tenant, &atena)
        .await
        .map_err(port_error)?;
    let Some(resident) = found else {
        // A miss is a look-up too: who asked for which number.
        audit(
            &state,
            &who.tenant,
            AuditEvent::new(AuditAction::ResidentLookup, who.who())
                .detail("by", "atena_number")
                .detail("found", Vec::<String>::new()),
        )
        .await?;
        return Err(DomainError::NotFound.into());
    };
    let household = if resident.household_number.is_empty() {
        Vec::new()
    } else {
        state
            .residents
            .household(&who.tenant, &resident.household_number)
            .await
            .map_err(port_error)?
    };
    let mut shown: Vec<String> = vec![resident.atena_number.clone()];
    shown.extend(
        household
            .iter()
            .map(|m| m.atena_number.clone())
            .filter(|a| *a != resident.atena_number),
    );
    // Recorded before the answer leaves: no record, no data.
    audit(
        &state,
        &who.tenant,
        AuditEvent::new(AuditAction::ResidentLookup, who.who())
            .detail("by", "atena_number")
            .detail("found", shown),
    )
    .await?;
    Ok(no_store(
        Json(ResidentAnswer {
            resident,
            household,
        })
        .into_response(),
    ))
}

/// Look-up by name and birth date. A POST, so that neither appears in a URL (access logs).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResidentSearch {
    /// 氏名, フリガナ, ローマ字氏名 or 通称 (spaces, widths and hiragana/katakana folded).
    pub name: String,
    /// 生年月日, `YYYY-MM-DD`.
    pub birth_date: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResidentMatches {
    /// Everyone (present or not) with that name and birth date, by 宛名番号.
    #[schema(value_type = Vec<Object>)]
    pub residents: Vec<ResidentView>,
}

/// More than this many matches means the question was too vague for a counter.
const MAX_MATCHES: usize = 20;

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/staff/residents/search",
    tag = "staff",
    params(("tenant" = String, Path)),
    request_body = ResidentSearch,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "matching residents (possibly none); audited; Cache-Control no-store", body = ResidentMatches),
        (status = 403, description = "no department of the caller may look up residents", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "name missing or too long, birth date not a date", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn search(
    State(state): State<StaffState>,
    who: Caller,
    ApiJson(body): ApiJson<ResidentSearch>,
) -> Result<Response, ApiError> {
    require_lookup(&who)?;
    let mut errors = Vec::new();
    let name = body.name.trim();
    if name.is_empty() {
        errors.push(FieldError::new(
            "name",
            "required",
            "氏名を入力してください。",
        ));
    } else if name.chars().count() > 100 {
        errors.push(FieldError::new(
            "name",
            "too_long",
            "氏名は100文字以内で入力してください。",
        ));
    }
    let birth = body.birth_date.parse::<jiff::civil::Date>();
    if birth.is_err() {
        errors.push(FieldError::new(
            "birth_date",
            "invalid",
            "生年月日を YYYY-MM-DD の形で入力してください。",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let birth = birth.map_err(|_| field_error("birth_date", "invalid", "生年月日が不正です。"))?;
    let mut residents = match state.residents.find(&who.tenant, name, birth).await {
        Ok(r) => r,
        Err(madoguchi_ports::PortError::Invalid(_)) => {
            return Err(field_error("name", "required", "氏名を入力してください。"));
        }
        Err(e) => return Err(port_error(e)),
    };
    residents.truncate(MAX_MATCHES);
    audit(
        &state,
        &who.tenant,
        AuditEvent::new(AuditAction::ResidentLookup, who.who())
            .detail("by", "name_birth_date")
            .detail(
                "found",
                residents
                    .iter()
                    .map(|r| r.atena_number.clone())
                    .collect::<Vec<_>>(),
            ),
    )
    .await?;
    Ok(no_store(
        Json(ResidentMatches { residents }).into_response(),
    ))
}

// ---------------------------------------------------------------------------------------
// Re-export to a core system

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReexportRequest {
    /// The target system (`jumin`, …) as named in `config/outbound.json`.
    pub system: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReexportAccepted {
    pub system: String,
    pub requested_at: String,
}

/// An application's state towards one core system.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkageView {
    pub system: String,
    /// `claimed` (in a file being written), `written`, or `failed` (does not fit the layout;
    /// `errors` says why; fix and re-export).
    pub state: String,
    /// 1 the first export, more after re-exports.
    pub generation: u32,
    pub at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<madoguchi_applications::outbox::ExportError>,
}

pub(crate) async fn linkage_views(
    state: &StaffState,
    tenant: &TenantId,
    id: &madoguchi_domain::ids::ApplicationId,
) -> Result<Vec<LinkageView>, ApiError> {
    let page = state
        .items
        .query(
            QueryRequest::partition(app_pk(tenant, id))
                .sk(SortKeyCondition::BeginsWith(EXPORT_PREFIX.into())),
        )
        .await
        .map_err(port_error)?;
    Ok(page
        .items
        .into_iter()
        .filter_map(|i| serde_json::from_value::<ExportRecord>(i.data).ok())
        .map(|e| LinkageView {
            system: e.system,
            state: serde_json::to_value(e.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            generation: e.generation,
            at: e.at,
            file: e.file,
            errors: e.errors,
        })
        .collect())
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/staff/applications/{id}/linkage-exports",
    tag = "staff",
    params(("tenant" = String, Path), ("id" = String, Path)),
    request_body = ReexportRequest,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "queued: the next outbound run writes the application to the system again (once); audited", body = ReexportAccepted),
        (status = 404, description = "no such application, or no processing permission", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "not a system id", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn reexport(
    State(state): State<StaffState>,
    who: Caller,
    ApiPath((_tenant, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<ReexportRequest>,
) -> Result<Response, ApiError> {
    let loaded = load_for(&state, &who, &id, Action::ProcessApplication).await?;
    let system = body.system.trim();
    if system.is_empty()
        || system.len() > 32
        || !system
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(field_error(
            "system",
            "invalid",
            "連携先は英小文字・数字・ハイフン32文字以内で指定してください。",
        ));
    }
    let record = &loaded.record;
    let now = state.clock.now();
    let pending = PendingExport {
        application: record.id,
        slug: record.slug.clone(),
        status: record.status,
        reexport: Some(system.to_owned()),
        at: now.to_string(),
        by: Some(who.who()),
    };
    audit(
        &state,
        &who.tenant,
        AuditEvent::new(AuditAction::Export, who.who())
            .form(&record.slug)
            .application(record.id)
            .detail("linkage_reexport", system),
    )
    .await?;
    state
        .items
        .put(
            pending_item(
                &who.tenant,
                &pending,
                &format!("R{}", state.ids.new_id().simple()),
            ),
            Condition::None,
        )
        .await
        .map_err(port_error)?;
    nudge_outbound(&state, &who.tenant).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(ReexportAccepted {
            system: system.to_owned(),
            requested_at: now.to_string(),
        }),
    )
        .into_response())
}
