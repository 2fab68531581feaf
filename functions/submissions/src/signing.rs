//! E-signature (電子署名) of an application with the My Number Card.
//!
//! The citizen asks for a signing session over the answers they are about to submit: the
//! answers are checked exactly as at submission, the canonical payload (docs/esign.md) is
//! built from the normalised answers and the attachments' digests, and only its SHA-256 is
//! kept in the session. The smartphone app signs through the `esign` function; at submission
//! the payload is built again and must have the same digest, so what was signed is what is
//! stored. The session is deleted in the submission's transaction: it signs one application.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use madoguchi_applications::keys::SINGLE_SK;
use madoguchi_applications::signing::{
    NewSession, SessionPurpose, SessionState, SignatureSummary, SigningSession, StoredSignature,
    open_session, session_pk,
};
use madoguchi_applications::{AttachmentRecord, PublishedForm};
use madoguchi_domain::error::FieldError;
use madoguchi_domain::form::certificate::{CertValues, check_locks};
use madoguchi_domain::form::{Checked, SignaturePolicy};
use madoguchi_http::{ApiError, ApiJson};
use madoguchi_ports::{Condition, Key};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::citizen::Citizen;
use crate::drafts::{CheckedSubmission, DraftBody, check_submission};
use crate::{ApiPath, SubmissionsState, internal, port_error};

/// How long a signing session waits for the signature.
pub const SESSION_TTL_SECS: i64 = 15 * 60;

/// A signing session, as the browser gets it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionCreated {
    pub session_id: String,
    /// The one-time link for the JPKI smartphone app (also in the QR code). It carries the
    /// session's token: show it to the citizen only.
    pub app_link: String,
    /// The same link as an SVG QR code, for signing on a phone while the form is open on a PC.
    pub qr_svg: String,
    /// SHA-256 (hex) of the canonical payload to sign.
    pub digest: String,
    /// For `GET /v1/tenants/{tenant}/esign/sessions/{id}` (header `X-Session-Token`): the
    /// browser learns there when the signature has arrived.
    pub status_token: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// SHA-256 (hex) of an application's canonical payload: the normalised answers as stored
/// (before sealing) and each attachment's digest.
pub(crate) fn payload_digest(
    slug: &str,
    version: u64,
    checked: &Checked,
    attachments: &[AttachmentRecord],
) -> String {
    let answers = serde_json::to_value(&checked.values).expect("answers serialize");
    let files: Vec<(String, String)> = attachments
        .iter()
        .map(|a| (a.id.to_string(), a.sha256.clone().unwrap_or_default()))
        .collect();
    let payload = madoguchi_jpki::canonical_payload(slug, version, &answers, &files);
    hex::encode(Sha256::digest(&payload))
}

/// Starts signing the answers: they are checked as at submission (422 with every problem),
/// then a session is opened for the JPKI smartphone app.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/forms/{slug}/signing-sessions",
    tag = "submissions",
    security(("bearer" = []), ("email_proof" = [])),
    params(
        ("tenant" = String, Path, description = "全国地方公共団体コード"),
        ("slug" = String, Path, description = "the form"),
    ),
    request_body = DraftBody,
    responses(
        (status = 201, description = "session opened", body = SessionCreated),
        (status = 409, description = "the form takes no signature, is closed or was updated", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "every error per field, in Japanese", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn create_session(
    State(state): State<SubmissionsState>,
    citizen: Citizen,
    ApiPath((_tenant, slug)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<DraftBody>,
) -> Result<(StatusCode, Json<SessionCreated>), ApiError> {
    let tenant = citizen.tenant;
    let CheckedSubmission {
        form,
        checked,
        attachment_errors,
        attachments,
        ..
    } = check_submission(&state, &citizen, &slug, body).await?;
    if form.definition.signature == SignaturePolicy::None_ {
        return Err(ApiError::kind(
            409,
            "signature-not-used",
            "この申請には電子署名を使いません。",
            "そのまま送信してください。",
        ));
    }
    if !checked.errors.is_empty() || !attachment_errors.is_empty() {
        let mut errors = checked.errors;
        errors.extend(attachment_errors);
        return Err(ApiError::validation(errors));
    }
    let digest = payload_digest(&slug, form.version, &checked, &attachments);
    let opened = open_session(
        &tenant,
        &state.settings.api_base_url,
        NewSession {
            id: state.ids.new_id().to_string(),
            purpose: SessionPurpose::Application,
            slug,
            form_version: form.version,
            form_title: form.definition.title.clone(),
            owner: citizen.owner.key_part(),
            now: state.clock.now(),
            ttl_secs: SESSION_TTL_SECS,
        },
        |_| digest,
    )
    .ok_or_else(|| internal("signing session"))?;
    state
        .items
        .put(opened.item, Condition::NotExists)
        .await
        .map_err(port_error)?;
    Ok((
        StatusCode::CREATED,
        Json(SessionCreated {
            session_id: opened.session_id,
            app_link: opened.app_link,
            qr_svg: opened.qr_svg,
            digest: opened.digest,
            status_token: opened.status_token,
            expires_at: opened.expires_at,
        }),
    ))
}

/// The signature an application is submitted with, checked; `None` for a form without one.
pub(crate) struct SubmittedSignature {
    pub stored: StoredSignature,
    pub summary: SignatureSummary,
    /// The session, deleted in the submission's transaction (version-checked).
    pub session_key: Key,
    pub session_version: u64,
}

fn signature_error(code: &str, message: &str) -> ApiError {
    ApiError::validation(vec![FieldError::new("signature_session", code, message)])
}

/// The signing session named at submission must be this citizen's, for this form version,
/// signed with a TOTAL-PASSED report, and over exactly these answers.
pub(crate) async fn check_signature(
    state: &SubmissionsState,
    citizen: &Citizen,
    form: &PublishedForm,
    slug: &str,
    session: Option<&str>,
    checked: &Checked,
    attachments: &[AttachmentRecord],
) -> Result<Option<SubmittedSignature>, ApiError> {
    let policy = form.definition.signature;
    let Some(id) = session.filter(|s| !s.is_empty()) else {
        return match policy {
            SignaturePolicy::Required => Err(signature_error(
                "required",
                "この申請にはマイナンバーカードによる電子署名が必要です。署名してから送信してください。",
            )),
            _ => Ok(None),
        };
    };
    if policy == SignaturePolicy::None_ {
        return Err(signature_error(
            "not_applicable",
            "この申請には電子署名を使いません。",
        ));
    }
    let key = Key::new(session_pk(&citizen.tenant, id), SINGLE_SK);
    let item = state.items.get(&key).await.map_err(port_error)?;
    let session: Option<SigningSession> = item
        .as_ref()
        .and_then(|i| serde_json::from_value(i.data.clone()).ok());
    let Some(session) = session.filter(|s| {
        s.owner == citizen.owner.key_part()
            && s.purpose == SessionPurpose::Application
            && s.slug == slug
    }) else {
        return Err(signature_error(
            "not_found",
            "署名が見つからないか、有効期限が切れました。もう一度署名してください。",
        ));
    };
    match session.state {
        SessionState::Signed => {}
        SessionState::Open => {
            return Err(signature_error(
                "not_signed",
                "まだ署名されていません。スマートフォンで署名を終えてから送信してください。",
            ));
        }
        SessionState::Failed => {
            return Err(signature_error(
                "invalid",
                "署名を確認できませんでした。もう一度署名してください。",
            ));
        }
    }
    let digest = payload_digest(slug, form.version, checked, attachments);
    if session.form_version != form.version || session.digest != digest {
        return Err(signature_error(
            "content_changed",
            "署名した後に申請内容が変わりました。もう一度署名してください。",
        ));
    }
    let (Some(report), Some(signature), Some(signed_at)) =
        (session.report, session.signature, session.signed_at)
    else {
        return Err(internal("signed session without its signature"));
    };
    let indication = report
        .get("indication")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_owned();
    if indication != "TOTAL-PASSED" {
        return Err(signature_error(
            "invalid",
            "署名を確認できませんでした。もう一度署名してください。",
        ));
    }
    let cert = session.certificate.unwrap_or_else(CertValues::default);
    let answers: madoguchi_domain::form::Answers = checked
        .values
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let locks = check_locks(&form.definition, &answers, &cert);
    let locks_match = locks.iter().all(|l| l.matches);
    Ok(Some(SubmittedSignature {
        summary: SignatureSummary {
            indication,
            signed_at: signed_at.clone(),
            locks_match,
            corrected_after_signing: false,
        },
        stored: StoredSignature {
            session: session.id,
            digest,
            signature,
            report,
            locks,
            signed_at,
        },
        session_key: key,
        session_version: item.map_or(0, |i| i.version),
    }))
}
