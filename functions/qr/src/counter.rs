//! The counter's side (窓口): staff open a code (the scanned text, or a photo of it) and get
//! the household for the 住民異動届; the tenant administrator manages the QR keys.
//!
//! Every opening, whatever its outcome, is recorded in the audit chain before the answer
//! leaves (the outcome code and the key id, never the data): an opening that cannot be
//! recorded does not happen.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use madoguchi_audit::{AuditAction, AuditEvent};
use madoguchi_domain::authz::{Action, Resource};
use madoguchi_domain::error::{DomainError, FieldError, Problem};
use madoguchi_domain::tenant::TenantId;
use madoguchi_http::{ApiError, ApiPath, port_error};
use madoguchi_qrseal::{KeyringError, OpenError, Opened, PhotoError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::entry::{self, AddressEntry, PersonEntry};
use crate::{QrState, internal, no_store};

/// Largest photo accepted (a phone photo as JPEG is 2–4 MB).
pub const MAX_PHOTO_BYTES: usize = 5 * 1024 * 1024;
/// Largest request body of an opening: the photo and the multipart framing around it.
pub const MAX_OPEN_BODY_BYTES: usize = MAX_PHOTO_BYTES + 64 * 1024;
/// Largest JSON body of an opening (the text of a version 40 code is 4,296 characters).
const MAX_TEXT_BODY_BYTES: usize = 16 * 1024;
/// The multipart part holding the photo.
pub const PHOTO_PART: &str = "photo";

// ---------------------------------------------------------------------------------------
// The caller

/// The caller of a staff route (shared by every staff-facing function).
pub use madoguchi_staffauth::StaffCaller as Caller;

impl madoguchi_staffauth::StaffScope for QrState {
    fn items(&self) -> &std::sync::Arc<dyn madoguchi_ports::ItemStore> {
        &self.items
    }
    fn audit_log(&self) -> &madoguchi_audit::AuditLog {
        &self.audit
    }
}

/// Appends an audit record; if it cannot be recorded, the request fails.
async fn audit(state: &QrState, tenant: &TenantId, event: AuditEvent) -> Result<(), ApiError> {
    madoguchi_staffauth::audit(&state.audit, tenant, event).await
}

// ---------------------------------------------------------------------------------------
// Opening

/// A scanned code.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenText {
    /// The text the scanner read (`MDG1:` …).
    pub text: String,
}

/// A member of the household, with the labels the 住民異動届 shows.
#[derive(Serialize, ToSchema)]
pub struct PersonView {
    #[serde(flatten)]
    pub person: PersonEntry,
    /// 続柄 as written (世帯主, 妻, 子 … or the text of `other`).
    pub relationship_label: String,
    /// 男 or 女.
    pub sex_label: String,
}

/// What the counter gets from a code: the verified header and the household.
#[derive(Serialize, ToSchema)]
pub struct OpenedView {
    /// The QR key the code was sealed under.
    pub kid: u16,
    pub issued_at: String,
    pub expires_at: String,
    /// `tennyu`, `tenshutsu`, `tenkyo` or `setai_henko`.
    pub procedure: String,
    /// 転入, 転出, 転居, 世帯変更.
    pub procedure_label: String,
    pub move_date: String,
    pub old_address: AddressEntry,
    pub new_address: AddressEntry,
    /// 世帯主 first.
    pub members: Vec<PersonView>,
    /// Procedure ids the life-event guide chose.
    pub procedures: Vec<String>,
}

fn opened_view(opened: &Opened) -> OpenedView {
    let app = &opened.application;
    let entered = entry::from_application(app);
    OpenedView {
        kid: opened.header.kid,
        issued_at: opened.header.issued_at.to_string(),
        expires_at: opened.header.expires_at.to_string(),
        procedure: entry::procedure_name(app.procedure).to_owned(),
        procedure_label: app.procedure.label_ja().to_owned(),
        move_date: entered.move_date,
        old_address: entered.old_address,
        new_address: entered.new_address,
        members: entered
            .members
            .into_iter()
            .zip(&app.members)
            .map(|(person, p)| PersonView {
                person,
                relationship_label: p.relationship.label_ja().to_owned(),
                sex_label: entry::sex_label(p.sex).to_owned(),
            })
            .collect(),
        procedures: entered.procedures,
    }
}

/// A refused opening: 422 (503 when the keys could not be read) with the stable code in
/// `errors[0].code` and in the problem type (`…/qr-<code>`), the Japanese message as title.
fn refused(field: &str, code: &'static str, message: &'static str) -> ApiError {
    let status = if code == "key_store_unavailable" {
        503
    } else {
        422
    };
    let mut e = ApiError::kind(
        status,
        &format!("qr-{}", code.replace('_', "-")),
        message,
        message,
    );
    e.problem.errors = vec![FieldError::new(field, code, message)];
    e
}

fn photo_refusal(e: &PhotoError) -> (&'static str, &'static str) {
    match e {
        PhotoError::NotAnImage => (
            "photo_not_an_image",
            "画像を読み取れませんでした。PNGまたはJPEGの写真を送ってください。",
        ),
        PhotoError::TooLarge => (
            "photo_too_large",
            "画像が大きすぎます。小さくして送ってください。",
        ),
        PhotoError::NoCode => (
            "photo_no_code",
            "写真にQRコードが見つかりませんでした。QRコード全体が写るように撮り直してください。",
        ),
        PhotoError::Unreadable => (
            "photo_unreadable",
            "QRコードを読み取れませんでした。ピントを合わせて撮り直してください。",
        ),
    }
}

fn body_too_large() -> ApiError {
    ApiError::kind(
        413,
        "payload-too-large",
        "送信された内容が大きすぎます。",
        "写真は5MB以下にしてください。",
    )
}

fn malformed() -> ApiError {
    DomainError::Malformed {
        detail:
            "JSON の {\"text\": …} か、写真（photo）を含む multipart/form-data を送ってください。"
                .to_owned(),
    }
    .into()
}

/// Reads the `photo` part of a multipart body, at most [`MAX_PHOTO_BYTES`].
async fn read_photo(content_type: &str, body: Body) -> Result<Option<Vec<u8>>, ApiError> {
    let boundary = multer::parse_boundary(content_type).map_err(|_| malformed())?;
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(MAX_OPEN_BODY_BYTES as u64)
            .per_field(MAX_PHOTO_BYTES as u64),
    );
    let mut form =
        multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    let too_large = |e: &multer::Error| {
        matches!(
            e,
            multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. }
        )
    };
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(None),
            Err(e) if too_large(&e) => return Err(body_too_large()),
            Err(_) => return Err(malformed()),
        };
        if field.name() != Some(PHOTO_PART) {
            continue;
        }
        return match field.bytes().await {
            Ok(b) => Ok(Some(b.to_vec())),
            Err(e) if too_large(&e) => Err(body_too_large()),
            Err(_) => Err(malformed()),
        };
    }
}

/// Opens a code at the counter: JSON `{"text": …}` (a scanner), or `multipart/form-data`
/// with a `photo` part (PNG or JPEG, ≤ 5 MB). Audited before answering, whatever the
/// outcome.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/staff/qr/open",
    tag = "qr",
    params(("tenant" = String, Path, description = "全国地方公共団体コード")),
    request_body(
        content(
            (OpenText = "application/json"),
            (Vec<u8> = "multipart/form-data"),
        ),
        description = "the scanned text, or a photo of the code in the part `photo`",
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the household and the procedures; audited; Cache-Control no-store", body = OpenedView),
        (status = 400, description = "neither JSON text nor a multipart form", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "no or bad token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not staff of this municipality", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "photo larger than 5 MB", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "refused, with a stable code in errors[0].code: not_ours, malformed, unsupported_version, other_tenant, unknown_key, retired_key, tampered, expired, not_yet_valid, photo_not_an_image, photo_too_large, photo_no_code, photo_unreadable; audited", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "keys unavailable (key_store_unavailable); try again", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn open(
    State(state): State<QrState>,
    who: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    who.require(
        Action::ReadOrganisation,
        Resource::Tenant(&who.tenant),
        false,
    )?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (via, field, text) = if content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        let Some(photo) = read_photo(&content_type, body).await? else {
            return Err(ApiError::validation(vec![FieldError::new(
                PHOTO_PART,
                "required",
                "QRコードの写真を添付してください。",
            )]));
        };
        // Image decoding and detection take tens of milliseconds of CPU: off the runtime.
        let decoded = tokio::task::spawn_blocking(move || madoguchi_qrseal::decode_photo(&photo))
            .await
            .map_err(|_| ApiError::new(Problem::internal()))?;
        match decoded {
            Ok(text) => ("photo", PHOTO_PART, text),
            Err(e) => {
                let (code, message) = photo_refusal(&e);
                record_open(&state, &who, "photo", code, None).await?;
                return Err(refused(PHOTO_PART, code, message));
            }
        }
    } else {
        let bytes = axum::body::to_bytes(body, MAX_TEXT_BODY_BYTES)
            .await
            .map_err(|_| body_too_large())?;
        let body: OpenText = serde_json::from_slice(&bytes).map_err(|_| malformed())?;
        ("text", "text", body.text)
    };
    // The header's key id, for the audit record even when the code does not open (not
    // authenticated: it says which key the code claims).
    let claimed_kid = madoguchi_qrseal::parse(&text).ok().map(|c| c.header().kid);
    let result = state.keyring.open(&who.tenant, &text).await;
    match result {
        Ok(opened) => {
            record_open(&state, &who, via, "opened", Some(opened.header.kid)).await?;
            Ok(no_store(Json(opened_view(&opened)).into_response()))
        }
        Err(e) => {
            if let OpenError::KeyStore(p) = &e {
                tracing::warn!(error = %p, "QR keys unavailable");
            }
            record_open(&state, &who, via, e.code(), claimed_kid).await?;
            Err(refused(field, e.code(), e.message_ja()))
        }
    }
}

/// The audit record of one opening: the outcome and the key id, never the content.
async fn record_open(
    state: &QrState,
    who: &Caller,
    via: &str,
    outcome: &str,
    kid: Option<u16>,
) -> Result<(), ApiError> {
    audit(
        state,
        &who.tenant,
        AuditEvent::new(AuditAction::QrOpen, who.who())
            .detail("outcome", outcome)
            .detail(
                "kid",
                kid.map_or(serde_json::Value::Null, serde_json::Value::from),
            )
            .detail("via", via),
    )
    .await
}

// ---------------------------------------------------------------------------------------
// Keys

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub kid: u16,
    /// New codes are sealed under this key.
    pub current: bool,
    pub created_at: String,
    /// Set once retired: its codes no longer open.
    pub retired_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyChanged {
    pub kid: u16,
}

fn keyring_error(e: KeyringError) -> ApiError {
    match e {
        KeyringError::Port(p) => port_error(p),
        KeyringError::UnknownKey { .. } => DomainError::NotFound.into(),
        KeyringError::CurrentKey { .. } => ApiError::kind(
            409,
            "qr-key-current",
            "使用中の鍵は無効にできません。",
            "先に鍵を更新（ローテーション）してから、古い鍵を無効にしてください。",
        ),
        KeyringError::Exhausted => ApiError::kind(
            409,
            "qr-keys-exhausted",
            "これ以上鍵を更新できません。",
            "システム管理者にお問い合わせください。",
        ),
        KeyringError::Corrupt => internal("qr key"),
    }
}

/// The tenant's QR keys (ids and dates; never key material).
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/staff/qr/keys",
    tag = "qr",
    params(("tenant" = String, Path, description = "全国地方公共団体コード")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the keys in key-id order", body = KeyList),
        (status = 401, description = "no or bad token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not the tenant administrator", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn list_keys(
    State(state): State<QrState>,
    who: Caller,
) -> Result<Json<KeyList>, ApiError> {
    who.require(
        Action::ManageOrganisation,
        Resource::Tenant(&who.tenant),
        false,
    )?;
    let keys = state
        .keyring
        .list(&who.tenant)
        .await
        .map_err(keyring_error)?;
    Ok(Json(KeyList {
        keys: keys
            .into_iter()
            .map(|k| KeyView {
                kid: k.kid,
                current: k.current,
                created_at: k.created_at.to_string(),
                retired_at: k.retired_at.map(|t| t.to_string()),
            })
            .collect(),
    }))
}

/// Makes a new key current. Codes of older keys still open until those are retired.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/staff/qr/keys/rotate",
    tag = "qr",
    params(("tenant" = String, Path, description = "全国地方公共団体コード")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the new current key; audited", body = KeyChanged),
        (status = 401, description = "no or bad token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not the tenant administrator", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "no key ids left", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn rotate(
    State(state): State<QrState>,
    who: Caller,
) -> Result<Json<KeyChanged>, ApiError> {
    who.require(
        Action::ManageOrganisation,
        Resource::Tenant(&who.tenant),
        false,
    )?;
    let key = state
        .keyring
        .rotate(&who.tenant)
        .await
        .map_err(keyring_error)?;
    audit(
        &state,
        &who.tenant,
        AuditEvent::new(AuditAction::KeyChange, who.who())
            .detail("qr_key", "rotate")
            .detail("kid", key.kid()),
    )
    .await?;
    Ok(Json(KeyChanged { kid: key.kid() }))
}

/// Retires a key: its codes are refused (`retired_key`) from now on. The current key cannot
/// be retired; rotate first.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/staff/qr/keys/{kid}/retire",
    tag = "qr",
    params(
        ("tenant" = String, Path, description = "全国地方公共団体コード"),
        ("kid" = u16, Path, description = "the key id"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "retired; audited", body = KeyChanged),
        (status = 401, description = "no or bad token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not the tenant administrator", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such key", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "the current key; rotate first", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn retire(
    State(state): State<QrState>,
    who: Caller,
    ApiPath((_tenant, kid)): ApiPath<(String, u16)>,
) -> Result<Json<KeyChanged>, ApiError> {
    who.require(
        Action::ManageOrganisation,
        Resource::Tenant(&who.tenant),
        false,
    )?;
    state
        .keyring
        .retire(&who.tenant, kid)
        .await
        .map_err(keyring_error)?;
    audit(
        &state,
        &who.tenant,
        AuditEvent::new(AuditAction::KeyChange, who.who())
            .detail("qr_key", "retire")
            .detail("kid", kid),
    )
    .await?;
    Ok(Json(KeyChanged { kid }))
}
