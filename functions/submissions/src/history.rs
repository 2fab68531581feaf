//! History (申請履歴): a citizen's own applications, newest first, and their contents with
//! the status timeline and, while returned (差戻), what to correct. Another citizen's
//! application is "not found", never "forbidden": its existence is not disclosed. Staff
//! memos and attachments live in other items of the application's partition and are never
//! read here.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use madoguchi_applications::keys::{APP_SK, HISTORY_PREFIX, app_pk, owner_pk};
use madoguchi_applications::{ApplicationRecord, ApplicationStatus, HistoryEntry};
use madoguchi_domain::authz::{Action, Actor, FormGrants, Resource, authorize};
use madoguchi_domain::error::DomainError;
use madoguchi_domain::form::FormDefinition;
use madoguchi_domain::ids::ApplicationId;
use madoguchi_domain::tenant::TenantId;
use madoguchi_http::{ApiError, with_etag};
use madoguchi_ports::{Cursor, Key, QueryRequest, SortKeyCondition};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::citizen::Citizen;
use crate::{ApiPath, ApiQuery, SubmissionsState, form_version, internal, port_error};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// From the previous page's `next`.
    #[param(nullable)]
    pub cursor: Option<String>,
    /// 1–50, default 20.
    #[param(nullable)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryItem {
    #[schema(value_type = String)]
    pub id: ApplicationId,
    pub receipt_number: String,
    pub slug: String,
    pub form_title: String,
    pub status: String,
    pub submitted_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPage {
    pub applications: Vec<HistoryItem>,
    /// Cursor of the next page, if any.
    pub next: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentItem {
    pub field: String,
    pub file_name: String,
    pub size: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationView {
    #[schema(value_type = String)]
    pub id: ApplicationId,
    pub receipt_number: String,
    pub slug: String,
    pub form_title: String,
    pub form_version: u64,
    /// `payment_pending`, `received`, `in_review`, `returned`, `on_hold`, `completed`,
    /// `rejected`, `withdrawn`, `cancelled`.
    pub status: String,
    /// 処理状況 as shown (支払待ち, 受付, 審査中, 差戻, 保留, 完了, 却下, 取下げ, 取消).
    pub status_label: String,
    pub submitted_at: String,
    /// The contents as confirmed (個人番号 masked).
    pub summary: Vec<crate::drafts::Row>,
    pub attachments: Vec<AttachmentItem>,
    /// Every status change, oldest first.
    pub timeline: Vec<TimelineEntry>,
    /// While `returned`: the fields to correct and the message from the office; otherwise
    /// null.
    pub correction: Option<CorrectionView>,
}

/// One status change as the citizen sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineEntry {
    pub from: String,
    pub from_label: String,
    pub to: String,
    pub to_label: String,
    pub at: String,
    /// `staff` or `citizen`.
    pub by: String,
    /// The office's message with the change (e.g. why it was returned); empty if none.
    pub message: String,
}

/// 差戻: what the office asks the citizen to correct.
#[derive(Debug, Serialize, ToSchema)]
pub struct CorrectionView {
    pub message: String,
    pub fields: Vec<CorrectionField>,
}

/// A field the citizen may change in `PUT …/correction`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CorrectionField {
    pub field: String,
    pub label: String,
    /// The answer as confirmed (個人番号 masked); null if it was left empty.
    pub display: Option<String>,
    /// The field's definition in the form version the application was made against (type,
    /// options, limits: what the input needs); null if that version could not be read.
    #[schema(value_type = Option<Object>)]
    pub item: Option<Value>,
}

fn status_name(s: ApplicationStatus) -> String {
    s.as_str().to_owned()
}

/// The application `id` of the caller, if `action` on it is theirs to do (the one
/// authorization function decides); anything else, another citizen's application included,
/// is "not found". Returns the record and its stored version.
pub(crate) async fn load_own(
    state: &SubmissionsState,
    citizen: &Citizen,
    id: &str,
    action: Action,
) -> Result<(ApplicationRecord, u64), ApiError> {
    let id = ApplicationId::parse(id).map_err(|_| DomainError::NotFound)?;
    let tenant = &citizen.tenant;
    let item = state
        .items
        .get(&Key::new(app_pk(tenant, &id), APP_SK))
        .await
        .map_err(port_error)?
        .ok_or(DomainError::NotFound)?;
    let record: ApplicationRecord =
        serde_json::from_value(item.data).map_err(|_| internal("application"))?;
    let record_tenant = TenantId::parse(&record.tenant).map_err(|_| internal("application"))?;
    let owner = citizen.owner.key_part();
    let decision = authorize(
        Actor::Citizen {
            tenant,
            owner: &owner,
        },
        action,
        Resource::Application {
            tenant: &record_tenant,
            grants: &FormGrants::default(),
            owner: &record.owner,
        },
    );
    if !decision.is_allowed() {
        return Err(DomainError::NotFound.into());
    }
    Ok((record, item.version))
}

/// The citizen's view of an application. `definition` (the form version it was made
/// against) supplies the correction's field definitions; without it the labels come from
/// the confirmed summary.
pub(crate) fn view(app: ApplicationRecord, definition: Option<&FormDefinition>) -> ApplicationView {
    let correction = match (&app.correction, app.status) {
        (Some(c), ApplicationStatus::Returned) => Some(CorrectionView {
            message: c.message.clone(),
            fields: c
                .fields
                .iter()
                .map(|f| {
                    let row = app.summary.iter().find(|r| &r.field == f);
                    let item = definition.and_then(|d| d.field(f));
                    CorrectionField {
                        field: f.clone(),
                        label: row
                            .map(|r| r.label.clone())
                            .or_else(|| item.map(|i| i.label.clone()))
                            .unwrap_or_else(|| f.clone()),
                        display: row.map(|r| r.display.clone()),
                        item: item.and_then(|i| serde_json::to_value(i).ok()),
                    }
                })
                .collect(),
        }),
        _ => None,
    };
    ApplicationView {
        id: app.id,
        receipt_number: app.receipt,
        slug: app.slug,
        form_title: app.form_title,
        form_version: app.form_version,
        status: status_name(app.status),
        status_label: app.status.label_ja().to_owned(),
        submitted_at: app.submitted_at,
        summary: app
            .summary
            .into_iter()
            .map(|r| crate::drafts::Row {
                field: r.field,
                label: r.label,
                display: r.display,
            })
            .collect(),
        attachments: app
            .attachments
            .into_iter()
            .map(|a| AttachmentItem {
                field: a.field,
                file_name: a.file_name,
                size: a.size,
            })
            .collect(),
        timeline: app
            .timeline
            .into_iter()
            .map(|c| TimelineEntry {
                from: status_name(c.from),
                from_label: c.from.label_ja().to_owned(),
                to: status_name(c.to),
                to_label: c.to.label_ja().to_owned(),
                at: c.at,
                by: c.by,
                message: c.message,
            })
            .collect(),
        correction,
    }
}

/// Lists the caller's applications, newest first.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/my/applications",
    tag = "submissions",
    security(("bearer" = []), ("email_proof" = [])),
    params(("tenant" = String, Path, description = "全国地方公共団体コード"), PageQuery),
    responses(
        (status = 200, description = "one page", body = HistoryPage),
        (status = 401, description = "not signed in", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "bad cursor", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<SubmissionsState>,
    citizen: Citizen,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<HistoryPage>, ApiError> {
    let limit = query.limit.unwrap_or(20).clamp(1, 50);
    let page = state
        .items
        .query(
            QueryRequest::partition(owner_pk(&citizen.tenant, &citizen.owner))
                .sk(SortKeyCondition::BeginsWith(HISTORY_PREFIX.to_owned()))
                .descending()
                .limit(limit)
                .after(query.cursor.map(Cursor)),
        )
        .await
        .map_err(|e| match e {
            madoguchi_ports::PortError::Invalid(_) => {
                ApiError::validation(vec![madoguchi_domain::error::FieldError::new(
                    "cursor",
                    "invalid",
                    "ページの指定が正しくありません。最初から表示し直してください。",
                )])
            }
            other => port_error(other),
        })?;
    let mut applications = Vec::with_capacity(page.items.len());
    for item in page.items {
        let h: HistoryEntry = serde_json::from_value(item.data).map_err(|_| internal("history"))?;
        applications.push(HistoryItem {
            id: h.id,
            receipt_number: h.receipt,
            slug: h.slug,
            form_title: h.form_title,
            status: status_name(h.status),
            submitted_at: h.submitted_at,
        });
    }
    Ok(Json(HistoryPage {
        applications,
        next: page.next.map(|c| c.0),
    }))
}

/// One of the caller's applications, with its `ETag` (the version to name in `If-Match`
/// when withdrawing or correcting it).
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/my/applications/{id}",
    tag = "submissions",
    security(("bearer" = []), ("email_proof" = [])),
    params(("tenant" = String, Path, description = "全国地方公共団体コード"), ("id" = String, Path, description = "application id")),
    responses(
        (status = 200, description = "the application", body = ApplicationView, headers(("etag" = String, description = "application version"))),
        (status = 401, description = "not signed in", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such application of yours", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn detail(
    State(state): State<SubmissionsState>,
    citizen: Citizen,
    ApiPath((_tenant, id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let (app, version) = load_own(&state, &citizen, &id, Action::ReadOwnApplication).await?;
    // While returned, the correction names fields: their definitions come from the version
    // the application was made against. A failure to read it costs the definitions only.
    let form = if app.status == ApplicationStatus::Returned && app.correction.is_some() {
        form_version(&state, &citizen.tenant, &app.slug, app.form_version)
            .await
            .inspect_err(|_| tracing::warn!("correction shown without field definitions"))
            .ok()
    } else {
        None
    };
    let body = view(app, form.as_ref().map(|f| &f.definition));
    Ok(with_etag(StatusCode::OK, version, body))
}
