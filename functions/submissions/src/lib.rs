//! The `submissions` function: citizens apply.
//!
//! - Ways in, chosen per form (`access`): a citizen account (a JWT of the citizen pool; the
//!   development issuer locally) or no account: a one-time code mailed to the address
//!   ([`verify`]) yields a proof token bound to that form and address.
//! - Drafts (下書き) and a confirm step that returns the display-ready summary with every
//!   error per field ([`drafts`]).
//! - Submission with an idempotency key and a receipt number (受付番号) ([`submit`]); the
//!   receipt mail is queued after the application is durably stored.
//! - Attachments: a presigned POST into the quarantine prefix; the `attachments` consumer
//!   checks each file ([`uploads`]).
//! - History of one's own applications ([`history`]), and the citizen's moves on them:
//!   取下げ (withdraw) and 再提出 after 差戻 (correct the flagged fields) ([`workflow`]).
//!
//! 個人番号 answers are sealed (`madoguchi-fieldcrypt`) before anything is stored, drafts
//! included, and shown masked afterwards.

pub mod citizen;
pub mod drafts;
pub mod history;
pub mod signing;
pub mod submit;
pub mod uploads;
pub mod verify;
pub mod workflow;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post, put};
use madoguchi_applications::keys::{FORM_CURRENT_SK, form_pk, form_version_sk};
use madoguchi_applications::{FormState, PublishedForm};
use madoguchi_domain::error::{DomainError, Problem};
use madoguchi_domain::form::PublishWindow;
use madoguchi_domain::tenant::TenantId;
use madoguchi_fieldcrypt::FieldCipher;
use madoguchi_http::{ApiError, Authenticator};
use madoguchi_ports::{BlobStore, Clock, IdGen, ItemStore, Key, Mailer, PortError, Queue};
use utoipa::OpenApi;

/// Settings that differ per deployment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Sender of the one-time-code mail.
    pub mail_from: String,
    /// How long a presigned upload stays usable.
    pub upload_expiry: Duration,
    /// How long a one-time code is valid.
    pub code_expiry: Duration,
    /// How long a proof of address lasts after the code was confirmed.
    pub proof_expiry: Duration,
    /// How long an unsubmitted draft is kept.
    pub draft_expiry: Duration,
    /// The API's public base URL (links for the JPKI smartphone app).
    pub api_base_url: String,
    /// How long a payment at submission may stay unpaid before the application is
    /// cancelled (`MADOGUCHI_PAYMENT_PENDING_MINUTES`).
    pub payment_pending: jiff::SignedDuration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mail_from: "no-reply@madoguchi.invalid".to_owned(),
            upload_expiry: Duration::from_secs(15 * 60),
            code_expiry: Duration::from_secs(10 * 60),
            proof_expiry: Duration::from_secs(2 * 3600),
            draft_expiry: Duration::from_secs(90 * 24 * 3600),
            api_base_url: "http://127.0.0.1:8080".to_owned(),
            payment_pending: madoguchi_payment_ledger::DEFAULT_PENDING,
        }
    }
}

/// Ports the submissions function needs.
#[derive(Clone)]
pub struct SubmissionsState {
    pub items: Arc<dyn ItemStore>,
    /// The attachments bucket.
    pub uploads: Arc<dyn BlobStore>,
    /// The `notify` queue (receipt mail and later notices).
    pub notify: Arc<dyn Queue>,
    pub mailer: Arc<dyn Mailer>,
    pub cipher: Arc<FieldCipher>,
    pub auth: Arc<Authenticator>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    pub settings: Arc<Settings>,
}

impl FromRef<SubmissionsState> for Arc<Authenticator> {
    fn from_ref(s: &SubmissionsState) -> Self {
        s.auth.clone()
    }
}

/// JSON bodies larger than this are refused (413) before parsing: the largest form has 200
/// fields of at most a few thousand characters each.
pub const MAX_BODY_BYTES: usize = 512 * 1024;

pub fn router(state: SubmissionsState) -> Router {
    let form = "/v1/tenants/{tenant}/forms/{slug}";
    Router::new()
        .route(&format!("{form}/email-verifications"), post(verify::start))
        .route(
            &format!("{form}/email-verifications/{{id}}/confirm"),
            post(verify::confirm),
        )
        .route(
            &format!("{form}/draft"),
            get(drafts::get_draft)
                .put(drafts::put_draft)
                .delete(drafts::delete_draft),
        )
        .route(&format!("{form}/confirm"), post(drafts::confirm))
        .route(&format!("{form}/applications"), post(submit::submit))
        .route(
            &format!("{form}/signing-sessions"),
            post(signing::create_session),
        )
        .route(
            &format!("{form}/attachments"),
            post(uploads::request_upload),
        )
        .route(
            &format!("{form}/attachments/{{id}}"),
            get(uploads::attachment_status),
        )
        .route("/v1/tenants/{tenant}/my/applications", get(history::list))
        .route(
            "/v1/tenants/{tenant}/my/applications/{id}",
            get(history::detail),
        )
        .route(
            "/v1/tenants/{tenant}/my/applications/{id}/withdraw",
            post(workflow::withdraw),
        )
        .route(
            "/v1/tenants/{tenant}/my/applications/{id}/correction",
            put(workflow::correct),
        )
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    paths(
        verify::start, verify::confirm,
        drafts::get_draft, drafts::put_draft, drafts::delete_draft, drafts::confirm,
        submit::submit,
        signing::create_session,
        uploads::request_upload, uploads::attachment_status,
        history::list, history::detail,
        workflow::withdraw, workflow::correct,
    ),
    components(schemas(
        verify::StartVerification, verify::VerificationStarted, verify::ConfirmCode, verify::Proof,
        drafts::DraftBody, drafts::DraftView, drafts::ConfirmResult, drafts::Row,
        submit::Submitted, signing::SessionCreated,
        uploads::UploadRequest, uploads::UploadGranted, uploads::UploadForm, uploads::AttachmentView,
        history::HistoryPage, history::HistoryItem, history::ApplicationView, history::AttachmentItem,
        history::TimelineEntry, history::CorrectionView, history::CorrectionField,
        workflow::CorrectionBody, workflow::InvalidTransitionDoc,
    )),
    tags((name = "submissions", description = "Citizen applications: drafts, attachments, submission, history"))
)]
struct SubmissionsApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    SubmissionsApi::openapi()
}

pub use madoguchi_http::{ApiPath, ApiQuery};

pub(crate) fn internal(what: &'static str) -> ApiError {
    tracing::error!(what, "stored record does not parse");
    ApiError::new(Problem::internal())
}

pub(crate) fn port_error(e: PortError) -> ApiError {
    match e {
        PortError::ConditionFailed { .. } => DomainError::Conflict {
            detail: "ほかの画面で先に更新されました。再読み込みしてからやり直してください。"
                .to_owned(),
        }
        .into(),
        PortError::Unavailable(reason) => {
            tracing::warn!(%reason, "backend unavailable");
            ApiError::kind(
                503,
                "unavailable",
                "ただいま混み合っています。",
                "しばらくしてからもう一度お試しください。入力内容は失われていません。",
            )
        }
        other => {
            tracing::error!(error = %other, "backend failed");
            ApiError::new(Problem::internal())
        }
    }
}

/// The published form, refusing one that does not take applications now (closed, archived,
/// outside its publish window) with a message the citizen understands.
pub(crate) async fn open_form(
    state: &SubmissionsState,
    tenant: &TenantId,
    slug: &str,
) -> Result<PublishedForm, ApiError> {
    let form = published_form(state, tenant, slug).await?;
    let closed =
        |detail: &str| ApiError::kind(409, "form-closed", "この申請は受付期間外です。", detail);
    match form.state {
        FormState::Published => {}
        FormState::Closed => {
            return Err(closed(
                "この申請の受付は終了しました。お問い合わせ先にご連絡ください。",
            ));
        }
        _ => return Err(DomainError::NotFound.into()),
    }
    match form.definition.window(state.clock.now()) {
        PublishWindow::Open => Ok(form),
        PublishWindow::NotYet => Err(closed("この申請の受付はまだ始まっていません。")),
        PublishWindow::Ended => Err(closed("この申請の受付期間は終了しました。")),
    }
}

/// The published form whatever its state (archived ones are not found).
pub(crate) async fn published_form(
    state: &SubmissionsState,
    tenant: &TenantId,
    slug: &str,
) -> Result<PublishedForm, ApiError> {
    madoguchi_applications::published_form(state.items.as_ref(), tenant, slug)
        .await
        .map_err(port_error)?
        .ok_or_else(|| DomainError::NotFound.into())
}

/// The published version `version` of a form (`V#nnnnnn`), whatever the form's state now:
/// what an application was made against. A tenant whose forms function wrote no `V#` item
/// for the version still being served falls back to `CURRENT` when the numbers agree.
pub(crate) async fn form_version(
    state: &SubmissionsState,
    tenant: &TenantId,
    slug: &str,
    version: u64,
) -> Result<PublishedForm, ApiError> {
    let pk = form_pk(tenant, slug);
    for sk in [form_version_sk(version), FORM_CURRENT_SK.to_owned()] {
        let Some(item) = state
            .items
            .get(&Key::new(pk.clone(), sk))
            .await
            .map_err(port_error)?
        else {
            continue;
        };
        let form: PublishedForm =
            serde_json::from_value(item.data).map_err(|_| internal("published form"))?;
        if form.version == version {
            return Ok(form);
        }
    }
    tracing::error!(version, "form version of an application is missing");
    Err(ApiError::new(Problem::internal()))
}

/// The form version a request was made against must be the published one.
pub(crate) fn check_version(form: &PublishedForm, version: u64) -> Result<(), ApiError> {
    if form.version != version {
        return Err(ApiError::kind(
            409,
            "form-version",
            "申請様式が更新されました。",
            "申請様式が新しくなりました。ページを再読み込みして、内容を確認してから送信してください。",
        ));
    }
    Ok(())
}

/// Epoch seconds `d` after now, for item expiry.
pub(crate) fn expires_after(state: &SubmissionsState, d: Duration) -> i64 {
    state.clock.now().as_second() + d.as_secs() as i64
}
