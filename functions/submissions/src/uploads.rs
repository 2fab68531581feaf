//! Attachments (添付ファイル): the citizen asks for an upload, gets a presigned POST into the
//! quarantine prefix (size range enforced by the store, short expiry), and the `attachments`
//! consumer checks what really arrived. Only accepted files can be submitted.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use madoguchi_applications::keys::{ATTACHMENT_PREFIX, attachment_sk, quarantine_key, upload_pk};
use madoguchi_applications::{
    AttachmentRecord, AttachmentStatus, DraftRecord, Owner, RefusalReason,
};
use madoguchi_domain::error::{DomainError, FieldError};
use madoguchi_domain::filetype::{extension_of, sanitize_file_name};
use madoguchi_domain::form::FieldKind;
use madoguchi_domain::ids::{ApplicationId, AttachmentId};
use madoguchi_domain::tenant::TenantId;
use madoguchi_http::{ApiError, ApiJson};
use madoguchi_ports::{Condition, Item, Key, QueryRequest, SortKeyCondition, UploadPolicy};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::citizen::{Citizen, may_use_form};
use crate::drafts::{draft_key, load_draft};
use crate::{ApiPath, SubmissionsState, expires_after, internal, open_form, port_error};

pub const MIB: u64 = 1024 * 1024;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// The attachment field of the form.
    pub field: String,
    /// The file's name as the citizen's device has it (shown back to staff, sanitised).
    pub file_name: String,
    /// Size in bytes; the upload is refused if the real file is larger.
    pub size: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadForm {
    /// POST `multipart/form-data` here: every field below in order, then the file as `file`.
    pub url: String,
    /// Form fields, in order (`[name, value]`).
    pub fields: Vec<(String, String)>,
    pub expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadGranted {
    #[schema(value_type = String)]
    pub attachment_id: AttachmentId,
    /// Put this id in the field's answer (an array of ids) once its status is `accepted`.
    pub upload: UploadForm,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentView {
    #[schema(value_type = String)]
    pub id: AttachmentId,
    pub field: String,
    pub file_name: String,
    /// `pending` (not arrived or being checked), `accepted`, `refused`.
    pub status: String,
    /// Why it was refused, in Japanese.
    pub message: Option<String>,
    pub size: Option<u64>,
    /// Malware scan: `not_scanned` (no scanner here), `pending`, `clean`.
    pub scan: Option<String>,
}

/// Japanese explanation of a refusal, for citizens.
pub fn refusal_message(reason: RefusalReason, record: &AttachmentRecord) -> String {
    match reason {
        RefusalReason::TooLarge => format!(
            "ファイルが大きすぎます。{}MB以下のファイルを添付してください。",
            record.max_bytes / MIB
        ),
        RefusalReason::Empty => "空のファイルは添付できません。".to_owned(),
        RefusalReason::ContentMismatch => format!(
            "ファイルの中身が拡張子（.{}）と一致しません。正しい形式のファイルを添付してください。",
            record.extension
        ),
        RefusalReason::ExtensionNotAllowed => "この種類のファイルは添付できません。".to_owned(),
        RefusalReason::TotalExceeded => format!(
            "添付ファイルの合計が{}MBを超えます。ファイルを減らすか小さくしてください。",
            record.max_total_bytes / MIB
        ),
        RefusalReason::Malware => {
            "ウイルスが検出されたため、このファイルは削除しました。".to_owned()
        }
        RefusalReason::Unreadable => {
            "ファイルを読み取れませんでした。もう一度添付してください。".to_owned()
        }
    }
}

fn view(record: AttachmentRecord) -> AttachmentView {
    let message = record.reason.map(|r| refusal_message(r, &record));
    AttachmentView {
        id: record.id,
        field: record.field,
        file_name: record.file_name,
        status: match record.status {
            AttachmentStatus::Pending => "pending",
            AttachmentStatus::Accepted => "accepted",
            AttachmentStatus::Refused => "refused",
        }
        .to_owned(),
        message,
        size: record.size,
        scan: record.scan,
    }
}

/// The draft to file attachments under, created empty if the citizen has none yet.
async fn ensure_draft(
    state: &SubmissionsState,
    tenant: &TenantId,
    owner: &Owner,
    slug: &str,
    form_version: u64,
) -> Result<ApplicationId, ApiError> {
    if let Some((draft, _)) = load_draft(state, tenant, owner, slug).await? {
        return Ok(draft.draft_id);
    }
    let draft = DraftRecord {
        draft_id: ApplicationId::new(state.ids.new_id()),
        slug: slug.to_owned(),
        form_version,
        answers: Default::default(),
        updated_at: state.clock.now().to_string(),
    };
    let mut item = Item::new(
        draft_key(tenant, owner, slug),
        serde_json::to_value(&draft).expect("serializable"),
    );
    item.expires_at = Some(expires_after(state, state.settings.draft_expiry));
    match state.items.put(item, Condition::NotExists).await {
        Ok(()) => Ok(draft.draft_id),
        // Another request created it meanwhile: use that one.
        Err(madoguchi_ports::PortError::ConditionFailed { .. }) => {
            Ok(load_draft(state, tenant, owner, slug)
                .await?
                .ok_or(DomainError::NotFound)?
                .0
                .draft_id)
        }
        Err(e) => Err(port_error(e)),
    }
}

/// Asks for an upload URL for one file of an attachment field.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/forms/{slug}/attachments",
    tag = "submissions",
    security(("bearer" = []), ("email_proof" = [])),
    params(("tenant" = String, Path, description = "全国地方公共団体コード"), ("slug" = String, Path, description = "the form")),
    request_body = UploadRequest,
    responses(
        (status = 201, description = "upload granted", body = UploadGranted),
        (status = 401, description = "not signed in", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "form closed", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "unknown field, name, extension, size or count refused", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn request_upload(
    State(state): State<SubmissionsState>,
    citizen: Citizen,
    ApiPath((_tenant, slug)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UploadRequest>,
) -> Result<(StatusCode, Json<UploadGranted>), ApiError> {
    let tenant = citizen.tenant;
    let form = open_form(&state, &tenant, &slug).await?;
    may_use_form(&citizen, &slug, form.definition.access)?;
    let field = form
        .definition
        .inputs()
        .find(|f| f.id == body.field)
        .ok_or_else(|| {
            ApiError::validation(vec![FieldError::new(
                "field",
                "unknown_field",
                "添付ファイルの項目が見つかりません。",
            )])
        })?;
    let FieldKind::Attachment {
        extensions,
        max_file_mb,
        max_files,
    } = &field.kind
    else {
        return Err(ApiError::validation(vec![FieldError::new(
            "field",
            "not_an_attachment",
            "この項目にはファイルを添付できません。",
        )]));
    };
    let file_name =
        sanitize_file_name(&body.file_name).map_err(|e| ApiError::validation(vec![e]))?;
    let extension = extension_of(&file_name).unwrap_or_default();
    if !extensions
        .iter()
        .any(|e| e.eq_ignore_ascii_case(&extension))
    {
        return Err(ApiError::validation(vec![FieldError::new(
            "file_name",
            "extension_not_allowed",
            format!(
                "「{}」に添付できるのは {} のファイルです。",
                field.label,
                extensions
                    .iter()
                    .map(|e| format!(".{e}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        )]));
    }
    let max_bytes = u64::from(*max_file_mb) * MIB;
    if body.size == 0 || body.size > max_bytes {
        return Err(ApiError::validation(vec![FieldError::new(
            "size",
            if body.size == 0 { "empty" } else { "too_large" },
            if body.size == 0 {
                "空のファイルは添付できません。".to_owned()
            } else {
                format!(
                    "「{}」に添付できるファイルは{}MBまでです。",
                    field.label, max_file_mb
                )
            },
        )]));
    }
    let max_total_bytes = u64::from(form.definition.max_total_mb) * MIB;
    let draft_id = ensure_draft(&state, &tenant, &citizen.owner, &slug, form.version).await?;

    // Counts and totals so far (the checker enforces the real total again on arrival).
    let page = state
        .items
        .query(
            QueryRequest::partition(upload_pk(&tenant, &draft_id))
                .sk(SortKeyCondition::BeginsWith(ATTACHMENT_PREFIX.to_owned()))
                .limit(200),
        )
        .await
        .map_err(port_error)?;
    let mut in_field = 0u32;
    let mut total = 0u64;
    for item in page.items {
        let r: AttachmentRecord =
            serde_json::from_value(item.data).map_err(|_| internal("attachment"))?;
        if r.status == AttachmentStatus::Refused {
            continue;
        }
        if r.field == field.id {
            in_field += 1;
        }
        total += r.size.unwrap_or(r.declared_size);
    }
    if in_field >= *max_files {
        return Err(ApiError::validation(vec![FieldError::new(
            "field",
            "too_many_files",
            format!(
                "「{}」に添付できるファイルは{}件までです。",
                field.label, max_files
            ),
        )]));
    }
    if total + body.size > max_total_bytes {
        return Err(ApiError::validation(vec![FieldError::new(
            "size",
            "total_exceeded",
            format!(
                "添付ファイルの合計は{}MBまでです。",
                form.definition.max_total_mb
            ),
        )]));
    }

    let id = AttachmentId::new(state.ids.new_id());
    let object_key = quarantine_key(&tenant, &draft_id, &id);
    let record = AttachmentRecord {
        id,
        draft_id,
        slug: slug.clone(),
        field: field.id.clone(),
        file_name,
        extension,
        declared_size: body.size,
        max_bytes,
        max_total_bytes,
        status: AttachmentStatus::Pending,
        reason: None,
        size: None,
        scan: None,
        object_key: object_key.clone(),
        created_at: state.clock.now().to_string(),
        checked_at: None,
        sha256: None,
    };
    let mut item = Item::new(
        Key::new(upload_pk(&tenant, &draft_id), attachment_sk(&id)),
        serde_json::to_value(&record).expect("serializable"),
    );
    item.expires_at = Some(expires_after(&state, state.settings.draft_expiry));
    state
        .items
        .put(item, Condition::NotExists)
        .await
        .map_err(port_error)?;
    let post = state
        .uploads
        .presign_post(&UploadPolicy {
            key: object_key,
            min_bytes: 1,
            max_bytes,
            expires_in: state.settings.upload_expiry,
            content_type: None,
        })
        .await
        .map_err(port_error)?;
    Ok((
        StatusCode::CREATED,
        Json(UploadGranted {
            attachment_id: id,
            upload: UploadForm {
                url: post.url,
                fields: post.fields,
                expires_at: post.expires_at.to_string(),
            },
        }),
    ))
}

/// The state of one attachment of the caller's draft.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/forms/{slug}/attachments/{id}",
    tag = "submissions",
    security(("bearer" = []), ("email_proof" = [])),
    params(
        ("tenant" = String, Path, description = "全国地方公共団体コード"),
        ("slug" = String, Path, description = "the form"),
        ("id" = String, Path, description = "attachment id"),
    ),
    responses(
        (status = 200, description = "its state", body = AttachmentView),
        (status = 401, description = "not signed in", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "not an attachment of your draft", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn attachment_status(
    State(state): State<SubmissionsState>,
    citizen: Citizen,
    ApiPath((_tenant, slug, id)): ApiPath<(String, String, String)>,
) -> Result<Json<AttachmentView>, ApiError> {
    let id = AttachmentId::parse(&id).map_err(|_| DomainError::NotFound)?;
    let form = crate::published_form(&state, &citizen.tenant, &slug).await?;
    may_use_form(&citizen, &slug, form.definition.access)?;
    let (draft, _) = load_draft(&state, &citizen.tenant, &citizen.owner, &slug)
        .await?
        .ok_or(DomainError::NotFound)?;
    let item = state
        .items
        .get(&Key::new(
            upload_pk(&citizen.tenant, &draft.draft_id),
            attachment_sk(&id),
        ))
        .await
        .map_err(port_error)?
        .ok_or(DomainError::NotFound)?;
    let record: AttachmentRecord =
        serde_json::from_value(item.data).map_err(|_| internal("attachment"))?;
    Ok(Json(view(record)))
}
