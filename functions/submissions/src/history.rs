//! History (申請履歴): a citizen's own applications, newest first, and their contents.
//! Another citizen's application is "not found", never "forbidden": its existence is not
//! disclosed.

use axum::Json;
use axum::extract::State;
use madoguchi_applications::keys::{APP_SK, HISTORY_PREFIX, app_pk, owner_pk};
use madoguchi_applications::{ApplicationRecord, HistoryEntry};
use madoguchi_domain::error::DomainError;
use madoguchi_domain::ids::ApplicationId;
use madoguchi_http::ApiError;
use madoguchi_ports::{Cursor, Key, QueryRequest, SortKeyCondition};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::citizen::Citizen;
use crate::{ApiPath, ApiQuery, SubmissionsState, internal, port_error};

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
    pub status: String,
    pub submitted_at: String,
    /// The contents as confirmed (個人番号 masked).
    pub summary: Vec<crate::drafts::Row>,
    pub attachments: Vec<AttachmentItem>,
}

fn status_name(s: madoguchi_applications::ApplicationStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
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

/// One of the caller's applications.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/my/applications/{id}",
    tag = "submissions",
    security(("bearer" = []), ("email_proof" = [])),
    params(("tenant" = String, Path, description = "全国地方公共団体コード"), ("id" = String, Path, description = "application id")),
    responses(
        (status = 200, description = "the application", body = ApplicationView),
        (status = 401, description = "not signed in", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such application of yours", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn detail(
    State(state): State<SubmissionsState>,
    citizen: Citizen,
    ApiPath((_tenant, id)): ApiPath<(String, String)>,
) -> Result<Json<ApplicationView>, ApiError> {
    let id = ApplicationId::parse(&id).map_err(|_| DomainError::NotFound)?;
    let item = state
        .items
        .get(&Key::new(app_pk(&citizen.tenant, &id), APP_SK))
        .await
        .map_err(port_error)?
        .ok_or(DomainError::NotFound)?;
    let app: ApplicationRecord =
        serde_json::from_value(item.data).map_err(|_| internal("application"))?;
    if app.owner != citizen.owner.key_part() {
        return Err(DomainError::NotFound.into());
    }
    Ok(Json(ApplicationView {
        id: app.id,
        receipt_number: app.receipt,
        slug: app.slug,
        form_title: app.form_title,
        form_version: app.form_version,
        status: status_name(app.status),
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
    }))
}
