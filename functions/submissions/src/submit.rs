//! Submission: validate, seal, store once, answer with a receipt number (受付番号).
//!
//! One transaction writes the application, the owner's history entry, the receipt-number
//! claim and the idempotency record, and deletes the draft: either all of it happened or none.
//! A retry with the same `Idempotency-Key` (and the same body) answers the stored result; with
//! another body it is refused. The receipt mail is queued afterwards; a queue failure is
//! logged and never fails the submission (a retry of the request queues it again; the mail
//! consumer sends each notice once).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use madoguchi_applications::keys::{APP_SK, SINGLE_SK, app_pk, idempotency_pk, receipt_pk};
use madoguchi_applications::signing::SIGNATURE_SK;
use madoguchi_applications::{
    ApplicationRecord, ApplicationStatus, AttachmentRef, DisplayRow, NotifyMessage, PublishedForm,
    applicant_name, application_item, history_item,
};
use madoguchi_domain::Yen;
use madoguchi_domain::error::FieldError;
use madoguchi_domain::form::{NotifyEvent, PaymentTiming, compute_fee};
use madoguchi_domain::ids::ApplicationId;
use madoguchi_domain::mynumber::normalize_my_number;
use madoguchi_domain::receipt::ReceiptNumber;
use madoguchi_domain::tenant::TenantId;
use madoguchi_fieldcrypt::Binding;
use madoguchi_http::{ApiError, ApiJson};
use madoguchi_payment_ledger::{Ledger, ledger_ops};
use madoguchi_ports::{Condition, Item, Key, OutgoingMessage, PortError, TxOp};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::citizen::Citizen;
use crate::drafts::{CheckedSubmission, DraftBody, SealedAnswer, check_submission, draft_key};
use crate::signing::{SubmittedSignature, check_signature};
use crate::{ApiPath, SubmissionsState, internal, port_error};

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// How long a submission's idempotency record answers retries.
const IDEMPOTENCY_TTL_SECS: i64 = 24 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Submitted {
    #[schema(value_type = String)]
    pub application_id: ApplicationId,
    /// 受付番号: quote it when asking about the application.
    pub receipt_number: String,
    pub form_title: String,
    /// `received`, or `payment_pending` when the form's fee is paid at submission (pay it
    /// with `POST …/my/applications/{id}/payment` before `pay_by`).
    pub status: String,
    pub submitted_at: String,
    /// The fee in yen, when the form has one (for a fee after acceptance: the amount the
    /// form computes; staff confirm it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<i64>,
    /// When an unpaid payment at submission is cancelled with the application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_by: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct IdempotencyRecord {
    request_hash: String,
    response: Submitted,
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let missing = || {
        ApiError::validation(vec![FieldError::new(
            IDEMPOTENCY_HEADER,
            "required",
            "Idempotency-Key ヘッダーに、送信ごとに異なる値（UUIDなど）を指定してください。",
        )])
    };
    let value = headers
        .get(IDEMPOTENCY_HEADER)
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| missing())?
        .trim();
    if value.is_empty() || value.len() > 128 || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(missing());
    }
    Ok(value.to_owned())
}

/// Submits an application. Needs an `Idempotency-Key` header (e.g. a UUID made when the
/// confirm screen opened).
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/forms/{slug}/applications",
    tag = "submissions",
    security(("bearer" = []), ("email_proof" = [])),
    params(
        ("tenant" = String, Path, description = "全国地方公共団体コード"),
        ("slug" = String, Path, description = "the form"),
        ("idempotency-key" = String, Header, description = "same key = same submission"),
    ),
    request_body = DraftBody,
    responses(
        (status = 201, description = "received", body = Submitted),
        (status = 200, description = "a retry of a submission already received", body = Submitted),
        (status = 401, description = "not signed in", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "this way in is not allowed for the form", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "form closed, form updated (reload), or the key was used for other content", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "body too large", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "every error per field, in Japanese", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn submit(
    State(state): State<SubmissionsState>,
    citizen: Citizen,
    ApiPath((_tenant, slug)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<DraftBody>,
) -> Result<Response, ApiError> {
    let tenant = citizen.tenant;
    let key = idempotency_key(&headers)?;
    let request_hash = hex::encode(Sha256::digest(
        serde_json::to_vec(&(&slug, body.form_version, &body.answers)).expect("serializable"),
    ));
    let idem_key = Key::new(idempotency_pk(&tenant, &citizen.owner, &key), SINGLE_SK);
    if let Some(done) = replay(&state, &idem_key, &request_hash).await? {
        queue_notice(&state, &tenant, &done.application_id, "received", None).await;
        return Ok((StatusCode::OK, Json(done)).into_response());
    }

    let signature_session = body.signature_session.clone();
    let CheckedSubmission {
        form,
        draft_id,
        checked,
        attachment_errors,
        attachments,
    } = check_submission(&state, &citizen, &slug, body).await?;
    if !checked.errors.is_empty() || !attachment_errors.is_empty() {
        // A concurrent request with the same key may have been stored since the check above,
        // deleting the draft this one needed (masked 個人番号, attachments): it is received.
        if let Some(done) = replay(&state, &idem_key, &request_hash).await? {
            return Ok((StatusCode::OK, Json(done)).into_response());
        }
        let mut errors = checked.errors;
        errors.extend(attachment_errors);
        return Err(ApiError::validation(errors));
    }
    let signature = check_signature(
        &state,
        &citizen,
        &form,
        &slug,
        signature_session.as_deref(),
        &checked,
        &attachments,
    )
    .await?;

    // The fee (手数料), from the same normalised answers that are stored.
    let fee = match &form.definition.fee {
        Some(rule) => Some((
            rule.timing,
            compute_fee(rule, &checked.values).map_err(|e| ApiError::validation(vec![e]))?,
        )),
        None => None,
    };
    let pay_now = fee
        .as_ref()
        .is_some_and(|(t, b)| *t == PaymentTiming::AtSubmission && b.total > Yen::ZERO);
    let id = draft_id.unwrap_or_else(|| ApplicationId::new(state.ids.new_id()));
    let (values, blind_indexes) = seal_values(&state, &tenant, &form, &id, checked.values).await?;
    let now = state.clock.now();
    let summary = summary_rows(checked.summary);
    let record = ApplicationRecord {
        id,
        tenant: tenant.as_str().to_owned(),
        receipt: String::new(),
        slug: slug.clone(),
        form_title: form.definition.title.clone(),
        form_version: form.version,
        owner: citizen.owner.key_part(),
        status: if pay_now {
            ApplicationStatus::PaymentPending
        } else {
            ApplicationStatus::Received
        },
        submitted_at: now.to_string(),
        answers: values,
        applicant_name: applicant_name(&summary),
        summary,
        attachments: attachments
            .into_iter()
            .map(|a| AttachmentRef {
                id: a.id,
                field: a.field,
                file_name: a.file_name,
                size: a.size.unwrap_or(a.declared_size),
                scan: a.scan,
                sha256: a.sha256,
            })
            .collect(),
        email: citizen.email.clone(),
        blind_indexes,
        notify: form
            .definition
            .notify
            .iter()
            .map(|e| notify_name(*e).to_owned())
            .collect(),
        correction: None,
        completed_at: None,
        timeline: Vec::new(),
        signature: signature.as_ref().map(|s| s.summary.clone()),
    };

    let mut rng = rand::rngs::OsRng;
    for _attempt in 0..5 {
        let receipt = ReceiptNumber::from_random(rng.next_u64());
        let mut record = record.clone();
        record.receipt = receipt.as_str().to_owned();
        let ledger = fee.as_ref().map(|(timing, breakdown)| {
            let mut l = Ledger::new(
                id,
                tenant.as_str(),
                &slug,
                &record.receipt,
                &record.form_title,
                &record.owner,
                *timing,
                Some(breakdown.clone()),
                &record.submitted_at,
            );
            if pay_now {
                let pay_by = now
                    .checked_add(state.settings.payment_pending)
                    .unwrap_or(now);
                l.expires_at = Some(pay_by.to_string());
            }
            l
        });
        let response = Submitted {
            application_id: id,
            receipt_number: record.receipt.clone(),
            form_title: record.form_title.clone(),
            status: record.status.as_str().to_owned(),
            submitted_at: record.submitted_at.clone(),
            fee: ledger.as_ref().map(|l| l.fee.value()),
            pay_by: ledger.as_ref().and_then(|l| l.expires_at.clone()),
        };
        let mut ops = transaction(
            &tenant,
            &citizen,
            &slug,
            &record,
            &response,
            &request_hash,
            &idem_key,
            now,
            signature.as_ref(),
        );
        // The payment ledger is born with the application (after every indexed operation).
        if let Some(l) = &ledger {
            ops.extend(ledger_ops(&tenant, None, l, None));
        }
        match state.items.transact(ops).await {
            Ok(()) => {
                tracing::info!(application = %id, status = record.status.as_str(), "application received");
                // A payment at submission sends the receipt mail once paid.
                if !pay_now && record.notify.iter().any(|e| e == "received") {
                    queue_notice(&state, &tenant, &id, "received", None).await;
                }
                return Ok((StatusCode::CREATED, Json(response)).into_response());
            }
            // Index 2 is the receipt claim: that number is taken, draw another.
            Err(PortError::ConditionFailed { index: Some(2) }) => continue,
            // The signing session was spent by another submission meanwhile.
            Err(PortError::ConditionFailed {
                index: Some(SESSION_OP),
            }) => return Err(session_spent()),
            Err(PortError::ConditionFailed { .. }) => {
                // A concurrent request with the same key won, or the receipt number collided
                // on a backend that does not say which condition failed.
                if let Some(done) = replay(&state, &idem_key, &request_hash).await? {
                    return Ok((StatusCode::OK, Json(done)).into_response());
                }
                if state
                    .items
                    .get(&Key::new(app_pk(&tenant, &id), APP_SK))
                    .await
                    .map_err(port_error)?
                    .is_some()
                {
                    return Err(ApiError::kind(
                        409,
                        "already-submitted",
                        "この申請はすでに送信されています。",
                        "申請履歴から内容をご確認ください。",
                    ));
                }
                if let Some(s) = &signature
                    && state
                        .items
                        .get(&s.session_key)
                        .await
                        .map_err(port_error)?
                        .is_none_or(|i| i.version != s.session_version)
                {
                    return Err(session_spent());
                }
                continue;
            }
            Err(e) => return Err(port_error(e)),
        }
    }
    tracing::error!("no free receipt number after 5 draws");
    Err(port_error(PortError::Unavailable("receipt numbers".into())))
}

/// Index of the signing session's deletion in [`transaction`].
const SESSION_OP: usize = 6;

fn session_spent() -> ApiError {
    ApiError::validation(vec![FieldError::new(
        "signature_session",
        "already_used",
        "この署名はすでに別の申請に使われました。もう一度署名してください。",
    )])
}

#[allow(clippy::too_many_arguments)]
fn transaction(
    tenant: &TenantId,
    citizen: &Citizen,
    slug: &str,
    record: &ApplicationRecord,
    response: &Submitted,
    request_hash: &str,
    idem_key: &Key,
    now: jiff::Timestamp,
    signature: Option<&SubmittedSignature>,
) -> Vec<TxOp> {
    // The application with its entry in the staff list (GSI1), and the citizen's history
    // entry; both are keyed by the record's submission time.
    let app = application_item(tenant, record);
    let history = history_item(tenant, record);
    let receipt = Item::new(
        Key::new(receipt_pk(tenant, &record.receipt), SINGLE_SK),
        serde_json::json!({ "application": record.id }),
    );
    let mut idem = Item::new(
        idem_key.clone(),
        serde_json::to_value(IdempotencyRecord {
            request_hash: request_hash.to_owned(),
            response: response.clone(),
        })
        .expect("serializable"),
    );
    idem.expires_at = Some(now.as_second() + IDEMPOTENCY_TTL_SECS);
    let mut ops = vec![
        TxOp::Put(app, Condition::NotExists),
        TxOp::Put(history, Condition::NotExists),
        TxOp::Put(receipt, Condition::NotExists),
        TxOp::Put(idem, Condition::NotExists),
        TxOp::Delete(draft_key(tenant, &citizen.owner, slug), Condition::None),
    ];
    if let Some(s) = signature {
        // The signature is kept with the application; its session signs nothing else.
        let item = Item::new(
            Key::new(app_pk(tenant, &record.id), SIGNATURE_SK),
            serde_json::to_value(&s.stored).expect("serializable"),
        );
        ops.push(TxOp::Put(item, Condition::NotExists));
        ops.push(TxOp::Delete(
            s.session_key.clone(),
            Condition::VersionEquals(s.session_version),
        ));
        debug_assert_eq!(ops.len() - 1, SESSION_OP);
    }
    ops
}

async fn replay(
    state: &SubmissionsState,
    key: &Key,
    request_hash: &str,
) -> Result<Option<Submitted>, ApiError> {
    let Some(item) = state.items.get(key).await.map_err(port_error)? else {
        return Ok(None);
    };
    let record: IdempotencyRecord =
        serde_json::from_value(item.data).map_err(|_| internal("idempotency"))?;
    if record.request_hash != request_hash {
        return Err(ApiError::kind(
            409,
            "idempotency-key-reused",
            "同じ送信キーで別の内容が送られました。",
            "内容を変えて送信する場合は、新しい Idempotency-Key を使ってください。",
        ));
    }
    Ok(Some(record.response))
}

/// Queues a notice for the `notify` function: `received` (no `seq`: once per application) or
/// a status notice with `seq` = the timeline length after the change (each change is its own
/// notice, a requeue of the same change is not). Never fails the request: the change it
/// announces is already stored.
pub(crate) async fn queue_notice(
    state: &SubmissionsState,
    tenant: &TenantId,
    id: &ApplicationId,
    event: &str,
    seq: Option<u64>,
) {
    let message = NotifyMessage {
        tenant: tenant.as_str().to_owned(),
        application: *id,
        event: event.to_owned(),
        seq,
    };
    let body = serde_json::to_string(&message).expect("serializable");
    for attempt in 0..3u32 {
        match state
            .notify
            .send_batch(vec![OutgoingMessage::new(body.clone())])
            .await
        {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, attempt, application = %id, event, "notice not queued");
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
        }
    }
    tracing::error!(application = %id, event, "notice dropped after retries");
}

pub(crate) fn notify_name(event: NotifyEvent) -> &'static str {
    match event {
        NotifyEvent::Received => "received",
        NotifyEvent::StatusChanged => "status_changed",
        NotifyEvent::CorrectionRequested => "correction_requested",
        NotifyEvent::PaymentRequested => "payment_requested",
        NotifyEvent::Completed => "completed",
    }
}

/// The display rows of a checked set of answers, as stored.
pub(crate) fn summary_rows(rows: Vec<madoguchi_domain::form::SummaryRow>) -> Vec<DisplayRow> {
    rows.into_iter()
        .map(|r| DisplayRow {
            field: r.field,
            label: r.label,
            display: r.display,
        })
        .collect()
}

/// Seals the sensitive values under the application id (`Binding { record: id, field }`),
/// with a blind index of each.
pub(crate) async fn seal_values(
    state: &SubmissionsState,
    tenant: &TenantId,
    form: &PublishedForm,
    id: &ApplicationId,
    mut values: BTreeMap<String, Value>,
) -> Result<(BTreeMap<String, Value>, BTreeMap<String, String>), ApiError> {
    let record = id.to_string();
    let mut indexes = BTreeMap::new();
    for field in form.definition.sensitive_fields() {
        let Some(Value::String(plain)) = values.get(field) else {
            continue;
        };
        let normalized = normalize_my_number(plain).unwrap_or_else(|| plain.clone());
        let sealed = state
            .cipher
            .seal(
                tenant,
                &Binding {
                    record: &record,
                    field,
                },
                normalized.as_bytes(),
            )
            .await
            .map_err(port_error)?;
        let index = state
            .cipher
            .blind_index(tenant, "my_number", normalized.as_bytes())
            .await
            .map_err(port_error)?;
        indexes.insert(field.to_owned(), index);
        let masked = madoguchi_domain::mynumber::mask_my_number(&normalized);
        values.insert(
            field.to_owned(),
            serde_json::to_value(SealedAnswer { sealed, masked }).expect("serializable"),
        );
    }
    Ok((values, indexes))
}
