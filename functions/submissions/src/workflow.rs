//! The citizen's own moves on an application: 取下げ (withdraw) and, after 差戻 (a return for
//! correction), 再提出 (correct the flagged fields and resubmit).
//!
//! Both follow the same steps:
//! - `If-Match` names the version read (the `ETag` of `GET …/my/applications/{id}`); without
//!   it the answer is 428.
//! - The one authorization function decides; another citizen's application is 404.
//! - The workflow ([`check_move`]) decides whether the move is possible from the current
//!   status; a refusal is 409 `invalid-transition` with the moves that are (`allowed`). This
//!   is checked before the version, so a retry of a move that already happened learns that
//!   it happened rather than "reload".
//! - A version other than the one read is 409 `conflict`.
//! - One transaction writes the application (`VersionEquals(read)`, with its staff-list
//!   entry) and the history entry; the status notice is queued afterwards when the form asks
//!   for it.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use madoguchi_applications::{
    ApplicationRecord, ApplicationStatus, StatusChange, applicant_name, application_item,
    history_item,
};
use madoguchi_domain::authz::Action;
use madoguchi_domain::error::{DomainError, FieldError, PROBLEM_TYPE_BASE, Problem};
use madoguchi_domain::form::{Answers, FieldKind, check_answers, is_valid_field_id};
use madoguchi_domain::tenant::TenantId;
use madoguchi_domain::workflow::{Mover, RefusedMove, check_move, notice_for};
use madoguchi_fieldcrypt::Binding;
use madoguchi_http::problem::PROBLEM_JSON;
use madoguchi_http::{ApiError, ApiJson, required_if_match, with_etag};
use madoguchi_ports::{Condition, PortError, TxOp};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::citizen::Citizen;
use crate::drafts::SealedAnswer;
use crate::history::{load_own, view};
use crate::submit::{queue_notice, seal_values, summary_rows};
use crate::{ApiPath, SubmissionsState, form_version, internal, port_error};

/// At most this many `not_correctable` errors are listed one by one.
const MAX_REFUSED_FIELD_ERRORS: usize = 20;

/// The timeline message of a resubmission.
const RESUBMITTED: &str = "修正して再提出";

/// Corrected answers: only fields the office flagged, by field id (shapes: docs/forms.md).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CorrectionBody {
    /// Field id → new answer. A 個人番号 sent back as its mask keeps the stored number.
    #[schema(value_type = Object)]
    pub answers: Answers,
}

/// OpenAPI shape of a refused move: the problem document with the moves that are allowed
/// from the current status.
#[derive(ToSchema)]
#[schema(as = InvalidTransitionProblem)]
#[allow(dead_code)]
pub struct InvalidTransitionDoc {
    /// `…/invalid-transition` (or `…/conflict` for a stale `If-Match`, without `allowed`).
    #[schema(rename = "type")]
    type_uri: String,
    title: String,
    status: u16,
    detail: Option<String>,
    /// The statuses this caller may move the application to now (empty when none).
    allowed: Option<Vec<String>>,
}

/// An error answer of these routes: an ordinary problem, or a refused move whose problem
/// carries the `allowed` moves (an RFC 9457 extension member, which `ApiError` has no room
/// for).
#[derive(Debug)]
pub enum MoveError {
    Problem(ApiError),
    Refused {
        refused: RefusedMove,
        title: &'static str,
    },
}

impl From<ApiError> for MoveError {
    fn from(e: ApiError) -> Self {
        MoveError::Problem(e)
    }
}

impl From<DomainError> for MoveError {
    fn from(e: DomainError) -> Self {
        MoveError::Problem(e.into())
    }
}

impl IntoResponse for MoveError {
    fn into_response(self) -> Response {
        match self {
            MoveError::Problem(e) => e.into_response(),
            MoveError::Refused { refused, title } => {
                let detail = if refused.allowed.is_empty() {
                    format!(
                        "この申請は「{}」のため、これ以上の操作はできません。",
                        refused.from.label_ja()
                    )
                } else {
                    format!(
                        "この申請は現在「{}」です。申請履歴から最新の状況をご確認ください。",
                        refused.from.label_ja()
                    )
                };
                let problem =
                    Problem::new(format!("{PROBLEM_TYPE_BASE}invalid-transition"), title, 409)
                        .with_detail(detail);
                let mut body = serde_json::to_value(&problem).expect("serializable");
                body["allowed"] = refused
                    .allowed
                    .iter()
                    .map(|s| Value::String(s.as_str().to_owned()))
                    .collect();
                let mut res = (StatusCode::CONFLICT, Json(body)).into_response();
                res.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
                res
            }
        }
    }
}

fn conflict() -> ApiError {
    ApiError::kind(
        409,
        "conflict",
        "ほかの操作で申請が更新されました。もう一度読み込んでください。",
        "申請履歴から最新の内容を確認してから、もう一度お試しください。",
    )
}

/// The move `to` by the citizen from the record's status, or the refusal.
fn may_move(
    record: &ApplicationRecord,
    to: ApplicationStatus,
    title: &'static str,
) -> Result<(), MoveError> {
    check_move(record.status, to, Mover::Citizen)
        .map_err(|refused| MoveError::Refused { refused, title })
}

/// Applies the move to the record (status, timeline).
fn record_move(
    state: &SubmissionsState,
    record: &mut ApplicationRecord,
    to: ApplicationStatus,
    message: &str,
) {
    let from = record.status;
    record.status = to;
    record.correction = None;
    record.timeline.push(StatusChange {
        from,
        to,
        at: state.clock.now().to_string(),
        by: "citizen".to_owned(),
        message: message.to_owned(),
    });
}

/// Writes the updated application (if still at version `read`) and its history entry in one
/// transaction; returns the new version.
async fn commit(
    state: &SubmissionsState,
    tenant: &TenantId,
    record: &ApplicationRecord,
    read: u64,
) -> Result<u64, ApiError> {
    let mut app = application_item(tenant, record);
    app.version = read + 1;
    state
        .items
        .transact(vec![
            TxOp::Put(app, Condition::VersionEquals(read)),
            TxOp::Put(history_item(tenant, record), Condition::None),
        ])
        .await
        .map_err(|e| match e {
            PortError::ConditionFailed { .. } => conflict(),
            other => port_error(other),
        })?;
    Ok(read + 1)
}

/// Queues the notice of the record's new status if its form mails that event; `seq` (the
/// timeline length) makes each change its own notice.
async fn announce(state: &SubmissionsState, tenant: &TenantId, record: &ApplicationRecord) {
    let event = notice_for(record.status);
    if record.notify.iter().any(|e| e == event) {
        let seq = record.timeline.len() as u64;
        queue_notice(state, tenant, &record.id, event, Some(seq)).await;
    }
}

/// Withdraws (取下げ) one of the caller's applications, from any status that is not final.
/// Needs `If-Match` with the version read. Repeating it after it succeeded is 409
/// `invalid-transition` with `allowed: []` (a withdrawn application has no moves left).
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/my/applications/{id}/withdraw",
    tag = "submissions",
    security(("bearer" = []), ("email_proof" = [])),
    params(
        ("tenant" = String, Path, description = "全国地方公共団体コード"),
        ("id" = String, Path, description = "application id"),
        ("if-match" = String, Header, description = "application version read (its ETag)"),
    ),
    responses(
        (status = 200, description = "withdrawn", body = crate::history::ApplicationView, headers(("etag" = String, description = "application version"))),
        (status = 401, description = "not signed in", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such application of yours", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-transition`: cannot be withdrawn from its status (`allowed` lists the moves that can be made); `conflict`: updated since it was read", body = InvalidTransitionDoc, content_type = "application/problem+json"),
        (status = 422, description = "If-Match is not a version", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn withdraw(
    State(state): State<SubmissionsState>,
    citizen: Citizen,
    ApiPath((_tenant, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, MoveError> {
    let tenant = citizen.tenant;
    let expected = required_if_match(&headers)?;
    let (mut record, version) =
        load_own(&state, &citizen, &id, Action::WithdrawOwnApplication).await?;
    may_move(
        &record,
        ApplicationStatus::Withdrawn,
        "この申請は取り下げできません。",
    )?;
    if version != expected {
        return Err(conflict().into());
    }
    record_move(&state, &mut record, ApplicationStatus::Withdrawn, "");
    let version = commit(&state, &tenant, &record, version).await?;
    tracing::info!(application = %record.id, "application withdrawn");
    announce(&state, &tenant, &record).await;
    Ok(with_etag(StatusCode::OK, version, view(record, None)))
}

/// Corrects the flagged fields of a returned (差戻) application and resubmits it (審査中).
///
/// Only the fields the office flagged may be sent (attachments never: they are not
/// replaced here); anything else is 422 `not_correctable`. The corrected answers are merged
/// into the stored ones (sealed 個人番号 opened under the application's binding) and the
/// whole set is validated against the form version the application was made against, as at
/// submission (date bounds such as `today` are those of the submission day, so a field the
/// citizen may not change cannot turn invalid just because time passed); every error
/// is reported per field. The answers are then sealed anew, the summary, blind indexes and
/// applicant name recomputed.
///
/// Idempotency: a replay of the same correction after it succeeded finds the application
/// in review and answers 409 `invalid-transition` (`allowed: ["withdrawn"]`); nothing
/// changes twice.
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/my/applications/{id}/correction",
    tag = "submissions",
    security(("bearer" = []), ("email_proof" = [])),
    params(
        ("tenant" = String, Path, description = "全国地方公共団体コード"),
        ("id" = String, Path, description = "application id"),
        ("if-match" = String, Header, description = "application version read (its ETag)"),
    ),
    request_body = CorrectionBody,
    responses(
        (status = 200, description = "corrected and resubmitted (in review)", body = crate::history::ApplicationView, headers(("etag" = String, description = "application version"))),
        (status = 401, description = "not signed in", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such application of yours", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-transition`: not returned for correction (`allowed` lists the moves that can be made); `conflict`: updated since it was read", body = InvalidTransitionDoc, content_type = "application/problem+json"),
        (status = 413, description = "body too large", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "fields that may not be corrected (`not_correctable`) or answers that fail validation, per field, in Japanese", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn correct(
    State(state): State<SubmissionsState>,
    citizen: Citizen,
    ApiPath((_tenant, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CorrectionBody>,
) -> Result<Response, MoveError> {
    let tenant = citizen.tenant;
    let expected = required_if_match(&headers)?;
    let (mut record, version) =
        load_own(&state, &citizen, &id, Action::CorrectOwnApplication).await?;
    may_move(
        &record,
        ApplicationStatus::InReview,
        "この申請は現在修正できません。",
    )?;
    if version != expected {
        return Err(conflict().into());
    }
    let form = form_version(&state, &tenant, &record.slug, record.form_version).await?;
    let definition = &form.definition;

    // Only flagged input fields, never attachments.
    let flagged = record
        .correction
        .as_ref()
        .map(|c| c.fields.as_slice())
        .unwrap_or_default();
    let mut refused = Vec::new();
    for key in body.answers.keys() {
        let correctable = flagged.iter().any(|f| f == key)
            && definition.field(key).is_some_and(|f| {
                f.kind.is_input() && !matches!(f.kind, FieldKind::Attachment { .. })
            });
        if !correctable {
            // A key that is not even a field id could be anything: do not echo it.
            let field = if is_valid_field_id(key) {
                key.as_str()
            } else {
                "answers"
            };
            if refused.len() < MAX_REFUSED_FIELD_ERRORS {
                refused.push(FieldError::new(
                    field,
                    "not_correctable",
                    "この項目は修正できません。",
                ));
            }
        }
    }
    if !refused.is_empty() {
        return Err(ApiError::validation(refused).into());
    }

    // The full answer set: the stored answers, sealed ones opened, the corrections over them.
    let record_id = record.id.to_string();
    let mut answers = Answers::new();
    let mut masks = BTreeMap::new();
    for (field, value) in &record.answers {
        if value.get("sealed").is_none() {
            answers.insert(field.clone(), value.clone());
            continue;
        }
        let sealed: SealedAnswer =
            serde_json::from_value(value.clone()).map_err(|_| internal("sealed answer"))?;
        let plain = state
            .cipher
            .open(&tenant, &Binding::new(&record_id, field), &sealed.sealed)
            .await
            .map_err(port_error)?;
        let plain = String::from_utf8(plain.to_vec()).map_err(|_| internal("sealed answer"))?;
        answers.insert(field.clone(), Value::String(plain));
        masks.insert(field.clone(), sealed.masked);
    }
    for (field, value) in body.answers {
        // The mask sent back unchanged keeps the stored number.
        if masks.get(&field).is_some_and(|m| value.as_str() == Some(m)) {
            continue;
        }
        answers.insert(field, value);
    }
    let submitted = record
        .submitted_at
        .parse::<jiff::Timestamp>()
        .unwrap_or_else(|_| state.clock.now());
    let checked = check_answers(
        definition,
        &answers,
        madoguchi_domain::today_in_tokyo(submitted),
    );
    drop(answers);
    if !checked.errors.is_empty() {
        return Err(ApiError::validation(checked.errors).into());
    }

    // Attachments stay as accepted; one whose field a corrected answer now hides goes, as the
    // validator dropped its answer.
    record.attachments.retain(|a| {
        checked
            .values
            .get(&a.field)
            .and_then(Value::as_array)
            .is_some_and(|ids| ids.iter().any(|v| v.as_str() == Some(&a.id.to_string())))
    });
    let (values, blind_indexes) =
        seal_values(&state, &tenant, &form, &record.id, checked.values).await?;
    let summary = summary_rows(checked.summary);
    record.answers = values;
    record.blind_indexes = blind_indexes;
    // The signature covers the answers as first submitted; staff must see that it no longer
    // covers these (re-signing a correction is not built yet: docs/esign.md).
    if let Some(sig) = record.signature.as_mut() {
        sig.corrected_after_signing = true;
    }
    record.applicant_name = applicant_name(&summary);
    record.summary = summary;
    record_move(
        &state,
        &mut record,
        ApplicationStatus::InReview,
        RESUBMITTED,
    );
    let version = commit(&state, &tenant, &record, version).await?;
    tracing::info!(application = %record.id, "application corrected and resubmitted");
    announce(&state, &tenant, &record).await;
    Ok(with_etag(StatusCode::OK, version, view(record, None)))
}
