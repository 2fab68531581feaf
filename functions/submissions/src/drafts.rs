//! Drafts (下書き) and the confirm step.
//!
//! A draft keeps raw answers (only shape and size are checked) so a citizen can stop and come
//! back. 個人番号 answers are sealed before the draft is stored and come back masked; sending
//! the masked value back unchanged keeps the sealed one. Confirm runs the full validation and
//! returns the display-ready summary with every error per field, so only those need fixing.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use madoguchi_applications::keys::{attachment_sk, draft_sk, owner_pk, upload_pk};
use madoguchi_applications::{
    AttachmentRecord, AttachmentStatus, DraftRecord, Owner, PublishedForm,
};
use madoguchi_domain::error::{DomainError, FieldError};
use madoguchi_domain::form::{Answers, Checked, FieldKind, check_answers, check_draft};
use madoguchi_domain::ids::{ApplicationId, AttachmentId};
use madoguchi_domain::mynumber::mask_my_number;
use madoguchi_domain::tenant::TenantId;
use madoguchi_fieldcrypt::{Binding, Sealed};
use madoguchi_http::{ApiError, ApiJson, if_match, tenant_from_path, with_etag};
use madoguchi_ports::{Condition, Item, Key};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::citizen::{Citizen, may_use_form};
use crate::{
    ApiPath, SubmissionsState, check_version, expires_after, internal, open_form, port_error,
    published_form,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftBody {
    /// The published version the answers were made against.
    pub form_version: u64,
    /// Answers by field id (shapes: docs/forms.md).
    #[schema(value_type = Object)]
    pub answers: Answers,
    /// At submission of a form with a signature: the signing session that signed these
    /// answers (ignored by drafts and the confirm screen).
    #[serde(default)]
    pub signature_session: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DraftView {
    /// Becomes the application id when submitted.
    #[schema(value_type = String)]
    pub draft_id: ApplicationId,
    pub form_version: u64,
    /// Answers as saved; 個人番号 masked.
    #[schema(value_type = Object)]
    pub answers: Answers,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Row {
    pub field: String,
    pub label: String,
    pub display: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConfirmResult {
    /// True when the answers can be submitted as they are.
    pub valid: bool,
    /// Every problem, per field, in Japanese.
    #[schema(value_type = Vec<madoguchi_http::problem::FieldErrorDoc>)]
    pub errors: Vec<FieldError>,
    /// What will be submitted, display-ready, in form order (個人番号 masked).
    pub summary: Vec<Row>,
    /// The fee (手数料) these answers come to, line by line, when the form has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub fee: Option<ConfirmFee>,
}

/// A stored sensitive answer: the sealed value and its mask.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SealedAnswer {
    pub sealed: Sealed,
    pub masked: String,
}

pub(crate) fn draft_key(tenant: &TenantId, owner: &Owner, slug: &str) -> Key {
    Key::new(owner_pk(tenant, owner), draft_sk(slug))
}

pub(crate) async fn load_draft(
    state: &SubmissionsState,
    tenant: &TenantId,
    owner: &Owner,
    slug: &str,
) -> Result<Option<(DraftRecord, u64)>, ApiError> {
    let Some(item) = state
        .items
        .get(&draft_key(tenant, owner, slug))
        .await
        .map_err(port_error)?
    else {
        return Ok(None);
    };
    let draft: DraftRecord = serde_json::from_value(item.data).map_err(|_| internal("draft"))?;
    Ok(Some((draft, item.version)))
}

/// Replaces a masked 個人番号 sent back unchanged by the value sealed in the draft.
pub(crate) async fn unmask(
    state: &SubmissionsState,
    tenant: &TenantId,
    form: &PublishedForm,
    draft: Option<&DraftRecord>,
    answers: &mut Answers,
) -> Result<(), ApiError> {
    let Some(draft) = draft else { return Ok(()) };
    for field in form.definition.sensitive_fields() {
        let (Some(Value::String(given)), Some(stored)) =
            (answers.get(field), draft.answers.get(field))
        else {
            continue;
        };
        let Ok(stored) = serde_json::from_value::<SealedAnswer>(stored.clone()) else {
            continue;
        };
        if *given != stored.masked {
            continue;
        }
        let draft_id = draft.draft_id.to_string();
        let plain = state
            .cipher
            .open(
                tenant,
                &Binding {
                    record: &draft_id,
                    field,
                },
                &stored.sealed,
            )
            .await
            .map_err(port_error)?;
        let plain = String::from_utf8(plain.to_vec()).map_err(|_| internal("sealed answer"))?;
        answers.insert(field.to_owned(), Value::String(plain));
    }
    Ok(())
}

/// Seals the sensitive answers of a draft (whatever they hold: even a mistyped number is
/// personal data).
async fn seal_draft_answers(
    state: &SubmissionsState,
    tenant: &TenantId,
    form: &PublishedForm,
    draft_id: &ApplicationId,
    answers: &mut Answers,
) -> Result<(), ApiError> {
    let record = draft_id.to_string();
    for field in form.definition.sensitive_fields() {
        let Some(Value::String(plain)) = answers.get(field) else {
            continue;
        };
        let sealed = state
            .cipher
            .seal(
                tenant,
                &Binding {
                    record: &record,
                    field,
                },
                plain.as_bytes(),
            )
            .await
            .map_err(port_error)?;
        let masked = mask_my_number(plain);
        answers.insert(
            field.to_owned(),
            serde_json::to_value(SealedAnswer { sealed, masked }).expect("serializable"),
        );
    }
    Ok(())
}

/// The draft as shown to its owner: sealed answers replaced by their masks.
fn view(draft: DraftRecord) -> DraftView {
    let answers = draft
        .answers
        .into_iter()
        .map(
            |(k, v)| match serde_json::from_value::<SealedAnswer>(v.clone()) {
                Ok(sealed) => (k, Value::String(sealed.masked)),
                Err(_) => (k, v),
            },
        )
        .collect();
    DraftView {
        draft_id: draft.draft_id,
        form_version: draft.form_version,
        answers,
        updated_at: draft.updated_at,
    }
}

/// Reads the caller's draft of this form.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/forms/{slug}/draft",
    tag = "submissions",
    security(("bearer" = []), ("email_proof" = [])),
    params(("tenant" = String, Path, description = "全国地方公共団体コード"), ("slug" = String, Path, description = "the form")),
    responses(
        (status = 200, description = "the draft", body = DraftView, headers(("etag" = String, description = "draft version"))),
        (status = 401, description = "not signed in", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no draft", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn get_draft(
    State(state): State<SubmissionsState>,
    citizen: Citizen,
    ApiPath((_tenant, slug)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let form = published_form(&state, &citizen.tenant, &slug).await?;
    may_use_form(&citizen, &slug, form.definition.access)?;
    let (draft, version) = load_draft(&state, &citizen.tenant, &citizen.owner, &slug)
        .await?
        .ok_or(DomainError::NotFound)?;
    Ok(with_etag(StatusCode::OK, version, view(draft)))
}

/// Saves the caller's draft. Incomplete answers are fine; garbage (unknown fields, wrong
/// types, overlong values) is refused per field. `If-Match` (optional) guards against another
/// tab overwriting a newer save.
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/forms/{slug}/draft",
    tag = "submissions",
    security(("bearer" = []), ("email_proof" = [])),
    params(
        ("tenant" = String, Path, description = "全国地方公共団体コード"),
        ("slug" = String, Path, description = "the form"),
        ("if-match" = Option<String>, Header, description = "draft version read"),
    ),
    request_body = DraftBody,
    responses(
        (status = 200, description = "saved", body = DraftView, headers(("etag" = String, description = "draft version"))),
        (status = 401, description = "not signed in", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "this way in is not allowed for the form", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "form closed, form updated (reload), or saved elsewhere meanwhile", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "body too large", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "answers of the wrong shape, per field", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn put_draft(
    State(state): State<SubmissionsState>,
    citizen: Citizen,
    ApiPath((_tenant, slug)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<DraftBody>,
) -> Result<Response, ApiError> {
    let tenant = citizen.tenant;
    let form = open_form(&state, &tenant, &slug).await?;
    may_use_form(&citizen, &slug, form.definition.access)?;
    check_version(&form, body.form_version)?;
    let errors = check_draft(&form.definition, &body.answers);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let existing = load_draft(&state, &tenant, &citizen.owner, &slug).await?;
    if let Some(expected) = if_match(&headers)?
        && existing.as_ref().map(|(_, v)| *v) != Some(expected)
    {
        return Err(port_error(madoguchi_ports::PortError::ConditionFailed {
            index: None,
        }));
    }
    let mut answers = body.answers;
    // Keep sealed values the citizen sent back masked, seal the new ones.
    let draft_id = existing
        .as_ref()
        .map(|(d, _)| d.draft_id)
        .unwrap_or_else(|| ApplicationId::new(state.ids.new_id()));
    let kept = keep_sealed(&form, existing.as_ref().map(|(d, _)| d), &mut answers);
    seal_draft_answers(&state, &tenant, &form, &draft_id, &mut answers).await?;
    answers.extend(kept);
    let draft = DraftRecord {
        draft_id,
        slug: slug.clone(),
        form_version: form.version,
        answers,
        updated_at: state.clock.now().to_string(),
    };
    let (condition, version) = match &existing {
        Some((_, v)) => (Condition::VersionEquals(*v), v + 1),
        None => (Condition::NotExists, 1),
    };
    let mut item = Item::new(
        draft_key(&tenant, &citizen.owner, &slug),
        serde_json::to_value(&draft).expect("serializable"),
    );
    item.version = version;
    item.expires_at = Some(expires_after(&state, state.settings.draft_expiry));
    state.items.put(item, condition).await.map_err(port_error)?;
    Ok(with_etag(StatusCode::OK, version, view(draft)))
}

/// Takes out of `answers` the sensitive ones sent back as the draft's mask, returning the
/// stored sealed values for them.
fn keep_sealed(
    form: &PublishedForm,
    draft: Option<&DraftRecord>,
    answers: &mut Answers,
) -> BTreeMap<String, Value> {
    let mut kept = BTreeMap::new();
    let Some(draft) = draft else { return kept };
    for field in form.definition.sensitive_fields() {
        let (Some(Value::String(given)), Some(stored)) =
            (answers.get(field), draft.answers.get(field))
        else {
            continue;
        };
        if let Ok(sealed) = serde_json::from_value::<SealedAnswer>(stored.clone())
            && *given == sealed.masked
        {
            answers.remove(field);
            kept.insert(field.to_owned(), stored.clone());
        }
    }
    kept
}

/// Discards the caller's draft of this form.
#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/forms/{slug}/draft",
    tag = "submissions",
    security(("bearer" = []), ("email_proof" = [])),
    params(("tenant" = String, Path, description = "全国地方公共団体コード"), ("slug" = String, Path, description = "the form")),
    responses(
        (status = 204, description = "discarded (or there was none)"),
        (status = 401, description = "not signed in", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn delete_draft(
    State(state): State<SubmissionsState>,
    citizen: Citizen,
    ApiPath((tenant, slug)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    tenant_from_path(&tenant)?;
    let form = published_form(&state, &citizen.tenant, &slug).await?;
    may_use_form(&citizen, &slug, form.definition.access)?;
    state
        .items
        .delete(
            &draft_key(&citizen.tenant, &citizen.owner, &slug),
            Condition::None,
        )
        .await
        .map_err(port_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The fee shown on the confirm screen: when it is paid and how it adds up.
#[derive(Debug, Serialize, Deserialize)]
pub struct ConfirmFee {
    pub timing: madoguchi_domain::form::PaymentTiming,
    #[serde(flatten)]
    pub breakdown: madoguchi_domain::form::FeeBreakdown,
}

/// Validates answers the way submission will and returns the summary and every error.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/forms/{slug}/confirm",
    tag = "submissions",
    security(("bearer" = []), ("email_proof" = [])),
    params(("tenant" = String, Path, description = "全国地方公共団体コード"), ("slug" = String, Path, description = "the form")),
    request_body = DraftBody,
    responses(
        (status = 200, description = "checked: `valid`, the errors per field and the summary", body = ConfirmResult),
        (status = 401, description = "not signed in", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "form closed or updated (reload)", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn confirm(
    State(state): State<SubmissionsState>,
    citizen: Citizen,
    ApiPath((_tenant, slug)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<DraftBody>,
) -> Result<Json<ConfirmResult>, ApiError> {
    let checked = check_submission(&state, &citizen, &slug, body).await?;
    let mut all = checked.checked.errors;
    all.extend(checked.attachment_errors);
    let fee = match &checked.form.definition.fee {
        Some(rule) => match madoguchi_domain::form::compute_fee(rule, &checked.checked.values) {
            Ok(breakdown) => Some(ConfirmFee {
                timing: rule.timing,
                breakdown,
            }),
            Err(e) => {
                all.push(e);
                None
            }
        },
        None => None,
    };
    Ok(Json(ConfirmResult {
        valid: all.is_empty(),
        errors: all,
        fee,
        summary: checked
            .checked
            .summary
            .into_iter()
            .map(|r| Row {
                field: r.field,
                label: r.label,
                display: r.display,
            })
            .collect(),
    }))
}

/// What confirm and submit both decide about a set of answers.
pub(crate) struct CheckedSubmission {
    pub form: PublishedForm,
    /// The draft's id, which becomes the application id (none if the citizen kept no draft).
    pub draft_id: Option<ApplicationId>,
    pub checked: Checked,
    pub attachment_errors: Vec<FieldError>,
    pub attachments: Vec<AttachmentRecord>,
}

/// The form must take applications, allow this way in and be the version the answers were
/// made against; masked 個人番号 are taken from the draft; every answer and attachment is
/// checked.
pub(crate) async fn check_submission(
    state: &SubmissionsState,
    citizen: &Citizen,
    slug: &str,
    body: DraftBody,
) -> Result<CheckedSubmission, ApiError> {
    let tenant = citizen.tenant;
    let form = open_form(state, &tenant, slug).await?;
    may_use_form(citizen, slug, form.definition.access)?;
    check_version(&form, body.form_version)?;
    let draft = load_draft(state, &tenant, &citizen.owner, slug).await?;
    let mut answers = body.answers;
    unmask(
        state,
        &tenant,
        &form,
        draft.as_ref().map(|(d, _)| d),
        &mut answers,
    )
    .await?;
    let checked = check_answers(
        &form.definition,
        &answers,
        madoguchi_domain::today_in_tokyo(state.clock.now()),
    );
    let draft_id = draft.as_ref().map(|(d, _)| d.draft_id);
    let (attachment_errors, attachments) =
        check_attachments(state, &tenant, &form, draft_id.as_ref(), &checked).await?;
    Ok(CheckedSubmission {
        form,
        draft_id,
        checked,
        attachment_errors,
        attachments,
    })
}

/// Every attachment named in the answers must belong to this draft and field and have been
/// accepted by the checker. Returns the errors and the accepted records.
pub(crate) async fn check_attachments(
    state: &SubmissionsState,
    tenant: &TenantId,
    form: &PublishedForm,
    draft_id: Option<&ApplicationId>,
    checked: &Checked,
) -> Result<(Vec<FieldError>, Vec<AttachmentRecord>), ApiError> {
    let mut errors = Vec::new();
    let mut accepted = Vec::new();
    for field in form.definition.inputs() {
        if !matches!(field.kind, FieldKind::Attachment { .. }) {
            continue;
        }
        let Some(Value::Array(ids)) = checked.values.get(&field.id) else {
            continue;
        };
        for id in ids {
            let Some(id) = id.as_str().and_then(|s| AttachmentId::parse(s).ok()) else {
                continue; // shape errors come from the validator
            };
            let record = match draft_id {
                Some(draft) => state
                    .items
                    .get(&Key::new(upload_pk(tenant, draft), attachment_sk(&id)))
                    .await
                    .map_err(port_error)?
                    .map(|item| serde_json::from_value::<AttachmentRecord>(item.data))
                    .transpose()
                    .map_err(|_| internal("attachment"))?,
                None => None,
            };
            match record {
                Some(r) if r.field == field.id && r.status == AttachmentStatus::Accepted => {
                    accepted.push(r)
                }
                Some(r) if r.field == field.id && r.status == AttachmentStatus::Pending => {
                    errors.push(FieldError::new(
                        field.id.clone(),
                        "attachment_pending",
                        format!(
                            "「{}」のファイルを確認しています。しばらくしてからもう一度お試しください。",
                            r.file_name
                        ),
                    ))
                }
                Some(r) if r.field == field.id => errors.push(FieldError::new(
                    field.id.clone(),
                    "attachment_refused",
                    format!(
                        "「{}」は受け付けられなかったファイルです。別のファイルを添付してください。",
                        r.file_name
                    ),
                )),
                _ => errors.push(FieldError::new(
                    field.id.clone(),
                    "attachment_unknown",
                    "添付ファイルが見つかりません。もう一度添付してください。",
                )),
            }
        }
    }
    Ok((errors, accepted))
}
