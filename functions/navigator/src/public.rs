//! The citizen's side, public: no token, because nothing personal is kept. Answers (which
//! may hold birth dates) live only in the request: they are evaluated and forgotten, never
//! stored and never logged.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use madoguchi_domain::error::DomainError;
use madoguchi_domain::today_in_tokyo;
use madoguchi_guide::{GuideCode, Outcome, evaluate, render_html};
use madoguchi_http::{ApiError, ApiPath};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::counts::{Channel, count_access};
use crate::guide::{LoadedGuide, load_guide};
use crate::{Body, NavigatorState, field_error, json_body, path_tenant};

/// One life event (ライフイベント) as the SPA lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventSummary {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    /// The guide's title, e.g. `道志村 手続きガイド`.
    pub name: String,
    pub events: Vec<EventSummary>,
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/guide",
    tag = "navigator",
    params(("tenant" = String, Path)),
    responses(
        (status = 200, description = "the life events of the tenant's guide", body = EventList),
        (status = 404, description = "no such municipality", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn events(
    State(state): State<NavigatorState>,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<EventList>, ApiError> {
    let tenant = path_tenant(&tenant)?;
    let loaded = load_guide(&state, &tenant).await?;
    Ok(Json(EventList {
        name: loaded.guide.name.clone(),
        events: loaded
            .guide
            .events
            .iter()
            .map(|e| EventSummary {
                id: e.id.clone(),
                name: e.name.clone(),
                description: e.description.clone(),
            })
            .collect(),
    }))
}

/// The guide and event of a public route; an event the guide lacks is 404.
async fn guide_for_event(
    state: &NavigatorState,
    tenant: &str,
    event: &str,
) -> Result<(madoguchi_domain::tenant::TenantId, LoadedGuide), ApiError> {
    let tenant = path_tenant(tenant)?;
    let loaded = load_guide(state, &tenant).await?;
    if loaded.guide.event(event).is_none() {
        return Err(DomainError::NotFound.into());
    }
    Ok((tenant, loaded))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct StartBody {
    /// `web`, `line` or `kiosk` (利用経路).
    #[schema(value_type = String, example = "web")]
    pub channel: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Started {
    pub event: String,
    pub channel: Channel,
    /// The Japan day the access was counted on.
    pub date: String,
    /// The first step (no answers yet): the first question and progress 0.
    #[schema(value_type = Object)]
    pub outcome: Outcome,
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/guide/events/{event}/start",
    tag = "navigator",
    params(("tenant" = String, Path), ("event" = String, Path)),
    request_body = StartBody,
    responses(
        (status = 200, description = "one access counted for today (Japan day); the first step", body = Started),
        (status = 404, description = "no such municipality or event", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "unknown channel or unreadable body", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn start(
    State(state): State<NavigatorState>,
    ApiPath(path): ApiPath<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let (tenant, event) = path;
    let (tenant, loaded) = guide_for_event(&state, &tenant, &event).await?;
    let body: StartBody = json_body(body)?;
    let channel = match body.channel.as_deref() {
        None | Some("") => {
            return Err(field_error(
                "channel",
                "required",
                "利用経路（web、line、kiosk）を指定してください。",
            ));
        }
        Some(c) => Channel::parse(c).ok_or_else(|| {
            field_error(
                "channel",
                "not_an_option",
                "利用経路は web、line、kiosk のいずれかです。",
            )
        })?,
    };
    let day = today_in_tokyo(state.clock.now());
    count_access(state.items.as_ref(), &tenant, day, &event, channel).await?;
    let outcome = evaluate(&loaded.guide, &event, &Value::Null)
        .map_err(|_| ApiError::from(DomainError::NotFound))?;
    Ok(no_store(
        Json(Started {
            event,
            channel,
            date: day.to_string(),
            outcome,
        })
        .into_response(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AnswersBody {
    /// Question id → answer (`docs/guide.md`); omitted or `{}` for none yet.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub answers: Value,
}

/// One step of the guide.
#[derive(Debug, Serialize, ToSchema)]
pub struct Step {
    /// The guide version the step was evaluated against (0: the standard rule set).
    pub version: u64,
    /// Next question, progress (%), procedures with due dates (`madoguchi_guide::Outcome`).
    #[schema(value_type = Object)]
    pub outcome: Outcome,
    /// The procedure-guide code (手続き案内票のコード), once the outcome is complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The code as a QR image (SVG, error correction level M), once complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qr_svg: Option<String>,
}

/// Evaluates the answers; answer errors are the 422 answer, with the engine's Japanese
/// messages (which never repeat the input).
async fn step(
    state: &NavigatorState,
    tenant: &str,
    event: &str,
    body: Body,
) -> Result<(LoadedGuide, Outcome, Option<String>), ApiError> {
    let (tenant, loaded) = guide_for_event(state, tenant, event).await?;
    let body: AnswersBody = json_body(body)?;
    let outcome = evaluate(&loaded.guide, event, &body.answers)
        .map_err(|_| ApiError::from(DomainError::NotFound))?;
    if !outcome.errors.is_empty() {
        return Err(ApiError::validation(outcome.errors));
    }
    let code = outcome
        .complete
        .then(|| GuideCode::from_outcome(tenant, loaded.code_version(), &outcome).encode());
    Ok((loaded, outcome, code))
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/guide/events/{event}/evaluate",
    tag = "navigator",
    params(("tenant" = String, Path), ("event" = String, Path)),
    request_body = AnswersBody,
    responses(
        (status = 200, description = "next question, progress, procedures; the code and its QR once complete", body = Step),
        (status = 404, description = "no such municipality or event", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "body too large", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "unreadable body or answer errors per field (household[1].birth_date …)", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn evaluate_step(
    State(state): State<NavigatorState>,
    ApiPath(path): ApiPath<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let (loaded, outcome, code) = step(&state, &path.0, &path.1, body).await?;
    let qr_svg = code.as_deref().and_then(crate::qr::svg);
    Ok(no_store(
        Json(Step {
            version: loaded.version,
            outcome,
            code,
            qr_svg,
        })
        .into_response(),
    ))
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/guide/events/{event}/print",
    tag = "navigator",
    params(("tenant" = String, Path), ("event" = String, Path)),
    request_body = AnswersBody,
    responses(
        (status = 200, description = "the printable result (手続き案内票), A4, self-contained; with the code and its QR once complete", content_type = "text/html", body = String),
        (status = 404, description = "no such municipality or event", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "body too large", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "unreadable body or answer errors", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn print(
    State(state): State<NavigatorState>,
    ApiPath(path): ApiPath<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let (loaded, outcome, code) = step(&state, &path.0, &path.1, body).await?;
    let mut html = render_html(&loaded.guide, &outcome, code.as_deref());
    if let Some(code) = &code {
        // render_html leaves the image to the caller; it goes right after the code text.
        // (Code text is alphanumeric plus `:` and `+`: escaping leaves it unchanged.)
        let anchor = format!("<span class=\"code\">{code}</span></p>");
        if let (Some(at), Some(svg)) = (html.find(&anchor), crate::qr::svg(code)) {
            let end = at + anchor.len();
            html.insert_str(end, &format!("\n<div class=\"qr\">{svg}</div>"));
        }
    }
    let mut res = (StatusCode::OK, html).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    Ok(no_store(res))
}

/// Results derive from a citizen's answers: no shared cache keeps them.
fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
