//! The citizen's side: an entry (事前申請) opened without an account, protected by a
//! one-time entry token, filled in, then turned into the sealed QR code.
//!
//! Storage (one item per entry, partition `<tenant>#PREAPP#<id>`, sort key `_`):
//! `{procedure, token_hash, created_at, updated_at, entry}` where `entry` is the household
//! sealed with the field cipher (bound to the tenant, the entry id and the field `entry`).
//! `expires_at` is the last write plus the inactivity timeout; the store treats an expired
//! item as absent (DynamoDB deletes it later). Issuing the code deletes the item, conditional
//! on the version read, before the code leaves: the code cannot be issued twice and the
//! data does not outlive it.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use madoguchi_applications::keys::SINGLE_SK;
use madoguchi_applications::signing::{new_token, token_hash};
use madoguchi_domain::date::today_in_tokyo;
use madoguchi_domain::error::{DomainError, FieldError, Problem};
use madoguchi_domain::tenant::TenantId;
use madoguchi_fieldcrypt::{Binding, Sealed};
use madoguchi_http::{ApiError, ApiJson, ApiPath, port_error, tenant_from_path};
use madoguchi_ports::{Condition, Item, Key, PortError};
use madoguchi_qrseal::{
    KeyringError, KeyringSealError, PreApplication, QrKey, SealError, Validity,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::entry::{self, Entry};
use crate::{QrState, internal, no_store};

/// Header carrying the entry token.
pub const ENTRY_TOKEN_HEADER: &str = "x-entry-token";
/// The field of the entry item the household is sealed under.
const ENTRY_FIELD: &str = "entry";
/// Pixels per module of the PNG: 8 prints sharply on A4 and reads well from a phone screen.
pub const PNG_MODULE_PX: u32 = 8;

/// The partition of one entry.
pub fn entry_pk(tenant: &TenantId, id: &str) -> String {
    tenant.key(&["PREAPP", id])
}

/// What is stored for an entry. Never the household in plain text.
#[derive(Serialize, Deserialize)]
struct Stored {
    procedure: String,
    /// SHA-256 (hex) of the entry token; the token itself is only ever with the citizen.
    token_hash: String,
    created_at: Timestamp,
    updated_at: Timestamp,
    #[serde(default)]
    entry: Option<Sealed>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// The notification: `tennyu` (転入), `tenshutsu` (転出), `tenkyo` (転居) or
    /// `setai_henko` (世帯変更).
    pub procedure: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    pub id: String,
    /// Send as `X-Entry-Token` with every later request for this entry. Shown once.
    pub token: String,
    /// When the entry is deleted unless written to again (each write moves it).
    pub expires_at: String,
}

/// The entry as entered, for the citizen to continue or check.
#[derive(Serialize, ToSchema)]
pub struct PreApplicationView {
    pub id: String,
    pub procedure: String,
    pub expires_at: String,
    /// `null` until the household has been entered.
    pub entry: Option<Entry>,
}

/// The issued code. The entry is deleted by now.
#[derive(Debug, Serialize, ToSchema)]
pub struct Issued {
    /// The QR code's text (`MDG1:` …), for a counter's keyboard-wedge scanner too.
    pub text: String,
    /// The code as SVG (black on white).
    pub svg: String,
    /// The code as a greyscale PNG, base64.
    pub png_base64: String,
    /// QR version (size) of the code, error correction M.
    pub qr_version: i16,
    /// The code opens at the counter until then.
    pub expires_at: String,
}

fn gone() -> ApiError {
    ApiError::kind(
        404,
        "pre-application-not-found",
        "事前申請が見つかりません。",
        "しばらく操作がなかったため削除されたか、QRコードを発行済みです。はじめから入力し直してください。",
    )
}

fn tenant_of(segment: &str) -> Result<TenantId, ApiError> {
    tenant_from_path(segment)
}

fn expiry(state: &QrState, now: Timestamp) -> Result<Timestamp, ApiError> {
    now.checked_add(state.settings.entry_ttl)
        .map_err(|_| ApiError::new(Problem::internal()))
}

/// Comparison whose time does not depend on where the inputs differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Loads an entry by id and token. Anything wrong (no token, a wrong one, an id that is
/// not one, expired, issued) is the same 404: nothing confirms that an entry exists.
async fn load(
    state: &QrState,
    tenant: &TenantId,
    id: &str,
    headers: &HeaderMap,
) -> Result<(Stored, Item), ApiError> {
    let token = headers
        .get(ENTRY_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    let id_ok = id.len() == 36 && uuid::Uuid::parse_str(id).is_ok();
    if !id_ok || token.is_empty() || token.len() > 128 {
        return Err(gone());
    }
    let item = state
        .items
        .get(&Key::new(entry_pk(tenant, id), SINGLE_SK))
        .await
        .map_err(port_error)?
        .ok_or_else(gone)?;
    let stored: Stored =
        serde_json::from_value(item.data.clone()).map_err(|_| internal("pre-application"))?;
    let presented = token_hash(token);
    if !same(presented.as_bytes(), stored.token_hash.as_bytes()) {
        return Err(gone());
    }
    // The store already hides expired items; checked again so that a backend that keeps
    // them readable until its lazy deletion can never hand one out.
    let now = state.clock.now().as_second();
    if item.expires_at.is_none_or(|e| e <= now) {
        return Err(gone());
    }
    Ok((stored, item))
}

async fn open_entry(
    state: &QrState,
    tenant: &TenantId,
    id: &str,
    stored: &Stored,
) -> Result<Option<Entry>, ApiError> {
    let Some(sealed) = &stored.entry else {
        return Ok(None);
    };
    let plain = state
        .cipher
        .open(tenant, &Binding::new(id, ENTRY_FIELD), sealed)
        .await
        .map_err(|e| match e {
            PortError::DecryptionRefused | PortError::Invalid(_) => internal("pre-application"),
            other => port_error(other),
        })?;
    serde_json::from_slice(&plain)
        .map(Some)
        .map_err(|_| internal("pre-application"))
}

fn procedure_of(stored: &Stored) -> Result<madoguchi_qrseal::Procedure, ApiError> {
    entry::parse_procedure(&stored.procedure).ok_or_else(|| internal("pre-application"))
}

/// Opens an entry. No account is needed: the answer's token is what protects it.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/pre-applications",
    tag = "qr",
    params(("tenant" = String, Path, description = "全国地方公共団体コード")),
    request_body = CreateBody,
    responses(
        (status = 201, description = "entry opened; the token is shown only here", body = Created),
        (status = 404, description = "no such municipality", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "unknown procedure", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(state): State<QrState>,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<Response, ApiError> {
    let tenant = tenant_of(&tenant)?;
    if entry::parse_procedure(&body.procedure).is_none() {
        return Err(ApiError::validation(vec![FieldError::new(
            "procedure",
            "invalid",
            "届出の種類を選んでください。",
        )]));
    }
    let id = state.ids.new_id().to_string();
    let (token, hash) = new_token();
    let now = state.clock.now();
    let expires_at = expiry(&state, now)?;
    let stored = Stored {
        procedure: body.procedure,
        token_hash: hash,
        created_at: now,
        updated_at: now,
        entry: None,
    };
    let mut item = Item::new(
        Key::new(entry_pk(&tenant, &id), SINGLE_SK),
        serde_json::to_value(&stored).map_err(|_| internal("pre-application"))?,
    );
    item.expires_at = Some(expires_at.as_second());
    state
        .items
        .put(item, Condition::NotExists)
        .await
        .map_err(port_error)?;
    Ok(no_store(
        (
            StatusCode::CREATED,
            Json(Created {
                id,
                token,
                expires_at: expires_at.to_string(),
            }),
        )
            .into_response(),
    ))
}

/// The entry as entered.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/pre-applications/{id}",
    tag = "qr",
    params(
        ("tenant" = String, Path, description = "全国地方公共団体コード"),
        ("id" = String, Path, description = "the entry"),
        ("x-entry-token" = String, Header, description = "the token from opening the entry"),
    ),
    responses(
        (status = 200, description = "the entry; Cache-Control no-store", body = PreApplicationView),
        (status = 404, description = "unknown, expired or issued entry, or a wrong token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn read(
    State(state): State<QrState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = tenant_of(&tenant)?;
    let (stored, item) = load(&state, &tenant, &id, &headers).await?;
    let entry = open_entry(&state, &tenant, &id, &stored).await?;
    Ok(view(id, &stored, &item, entry))
}

fn view(id: String, stored: &Stored, item: &Item, entry: Option<Entry>) -> Response {
    let expires_at = item
        .expires_at
        .and_then(|e| Timestamp::from_second(e).ok())
        .map(|t| t.to_string())
        .unwrap_or_default();
    no_store(
        Json(PreApplicationView {
            id,
            procedure: stored.procedure.clone(),
            expires_at,
            entry,
        })
        .into_response(),
    )
}

/// Enters (or replaces) the household. Every problem is answered at once, field by field;
/// nothing is stored unless the whole entry is valid. Any write, and a refused one too,
/// moves the expiry: the citizen is still at it.
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/pre-applications/{id}",
    tag = "qr",
    params(
        ("tenant" = String, Path, description = "全国地方公共団体コード"),
        ("id" = String, Path, description = "the entry"),
        ("x-entry-token" = String, Header, description = "the token from opening the entry"),
    ),
    request_body = Entry,
    responses(
        (status = 200, description = "stored (sealed); Cache-Control no-store", body = PreApplicationView),
        (status = 404, description = "unknown, expired or issued entry, or a wrong token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "changed at the same time from another window", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "every field error (katakana, dates, addresses outside the municipality, postal code and address apart)", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn update(
    State(state): State<QrState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Entry>,
) -> Result<Response, ApiError> {
    let tenant = tenant_of(&tenant)?;
    let (mut stored, item) = load(&state, &tenant, &id, &headers).await?;
    let procedure = procedure_of(&stored)?;
    let now = state.clock.now();
    let expires_at = expiry(&state, now)?;
    let checked = entry::check(tenant, procedure, &body, today_in_tokyo(now));
    let checked = checked.and_then(|app| fits_one_code(&app, now).map(|()| app));
    let app = match checked {
        Ok(app) => app,
        Err(errors) => {
            // Keep the entry alive while the citizen corrects it; losing the race to
            // another write changes nothing here.
            let mut touched = item.clone();
            touched.version = item.version + 1;
            touched.expires_at = Some(expires_at.as_second());
            match state
                .items
                .put(touched, Condition::VersionEquals(item.version))
                .await
            {
                Ok(()) | Err(PortError::ConditionFailed { .. }) => {}
                Err(e) => return Err(port_error(e)),
            }
            return Err(ApiError::validation(errors));
        }
    };
    let normalized = entry::from_application(&app);
    let plain = serde_json::to_vec(&normalized).map_err(|_| internal("pre-application"))?;
    let sealed = state
        .cipher
        .seal(&tenant, &Binding::new(&id, ENTRY_FIELD), &plain)
        .await
        .map_err(port_error)?;
    stored.entry = Some(sealed);
    stored.updated_at = now;
    let mut next = Item::new(
        item.key.clone(),
        serde_json::to_value(&stored).map_err(|_| internal("pre-application"))?,
    );
    next.version = item.version + 1;
    next.expires_at = Some(expires_at.as_second());
    state
        .items
        .put(next.clone(), Condition::VersionEquals(item.version))
        .await
        .map_err(|e| match e {
            PortError::ConditionFailed { .. } => DomainError::Conflict {
                detail:
                    "別の画面で同時に更新されました。内容を確かめてからもう一度送信してください。"
                        .to_owned(),
            }
            .into(),
            other => port_error(other),
        })?;
    Ok(view(id, &stored, &next, Some(normalized)))
}

/// Seals the entry into the QR code and deletes the entry. The deletion (conditional on
/// the version read) happens before the code is answered: if it fails, no code leaves, and
/// once it succeeded no second code can be issued for the entry.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/pre-applications/{id}/qr",
    tag = "qr",
    params(
        ("tenant" = String, Path, description = "全国地方公共団体コード"),
        ("id" = String, Path, description = "the entry"),
        ("x-entry-token" = String, Header, description = "the token from opening the entry"),
    ),
    responses(
        (status = 200, description = "the code; the entry is deleted; Cache-Control no-store", body = Issued),
        (status = 404, description = "unknown, expired or already issued entry, or a wrong token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "the entry changed meanwhile; try again", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "nothing entered yet, the entry is no longer valid (e.g. the move date is now too far), or the household does not fit one code", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "keys unavailable; try again", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn issue(
    State(state): State<QrState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = tenant_of(&tenant)?;
    let (stored, item) = load(&state, &tenant, &id, &headers).await?;
    let procedure = procedure_of(&stored)?;
    let Some(entered) = open_entry(&state, &tenant, &id, &stored).await? else {
        return Err(ApiError::validation(vec![FieldError::new(
            "entry",
            "required",
            "先に届出の内容を入力してください。",
        )]));
    };
    let now = state.clock.now();
    // Checked again: the postal data or today's date may have moved since it was entered.
    let app = entry::check(tenant, procedure, &entered, today_in_tokyo(now))
        .map_err(ApiError::validation)?;
    let validity = Validity::starting(now, state.settings.code_validity)
        .map_err(|_| ApiError::new(Problem::internal()))?;
    let sealed = state
        .keyring
        .seal(&app, validity)
        .await
        .map_err(seal_error)?;
    // Rendered before the deletion: once the entry is gone, nothing may fail any more.
    let svg = madoguchi_qrseal::render_svg(&sealed.text).map_err(|_| too_large())?;
    let png = madoguchi_qrseal::render_png(&sealed.text, PNG_MODULE_PX).map_err(|_| too_large())?;
    let qr_version = madoguchi_qrseal::qr_version(&sealed.text).map_err(|_| too_large())?;
    match state
        .items
        .delete(&item.key, Condition::VersionEquals(item.version))
        .await
    {
        Ok(()) => {}
        Err(PortError::ConditionFailed { .. }) => {
            // Issued by a concurrent request (gone), or changed meanwhile (try again).
            let still = state.items.get(&item.key).await.map_err(port_error)?;
            return Err(match still {
                None => gone(),
                Some(_) => DomainError::Conflict {
                    detail: "入力内容が同時に更新されました。内容を確かめてからもう一度発行してください。"
                        .to_owned(),
                }
                .into(),
            });
        }
        Err(e) => return Err(port_error(e)),
    }
    tracing::info!(
        kid = sealed.header.kid,
        qr_version,
        "pre-application code issued"
    );
    Ok(no_store(
        Json(Issued {
            text: sealed.text,
            svg,
            png_base64: STANDARD.encode(png),
            qr_version,
            expires_at: sealed.header.expires_at.to_string(),
        })
        .into_response(),
    ))
}

fn too_large_error() -> FieldError {
    FieldError::new(
        "members",
        "too_large",
        "人数が多いか氏名・住所が長いため、1つのQRコードに収まりません。2回に分けて作成するか、窓口でご相談ください。",
    )
}

fn too_large() -> ApiError {
    ApiError::validation(vec![too_large_error()])
}

/// Whether the household fits one code, told while the citizen is still entering it rather
/// than at issue. Sealed under a throwaway key (the size does not depend on the key; the
/// result is discarded), so no tenant key is created or unwrapped for an unfinished entry.
fn fits_one_code(app: &PreApplication, now: Timestamp) -> Result<(), Vec<FieldError>> {
    let key = QrKey::new(app.tenant, 1, zeroize::Zeroizing::new([0u8; 32]));
    let validity = Validity::starting(now, jiff::SignedDuration::from_hours(24))
        .map_err(|_| vec![too_large_error()])?;
    match madoguchi_qrseal::seal(&key, validity, app) {
        Err(SealError::TooLarge { .. }) => Err(vec![too_large_error()]),
        // Validity was checked already (and is again at issue).
        _ => Ok(()),
    }
}

fn seal_error(e: KeyringSealError) -> ApiError {
    match e {
        KeyringSealError::Seal(SealError::Invalid(errors)) => {
            ApiError::validation(errors.into_iter().map(entry::from_seal).collect())
        }
        KeyringSealError::Seal(SealError::TooLarge { .. }) => too_large(),
        KeyringSealError::Seal(other) => {
            tracing::error!(error = %other, "sealing failed");
            ApiError::new(Problem::internal())
        }
        KeyringSealError::Keyring(KeyringError::Port(p)) => port_error(p),
        KeyringSealError::Keyring(other) => {
            tracing::error!(error = %other, "QR keyring failed");
            ApiError::new(Problem::internal())
        }
    }
}

/// The addresses of a postal code, to fill in the address.
#[derive(Debug, Serialize, ToSchema)]
pub struct PostalAnswer {
    pub postal_code: String,
    /// Whether the code lies inside this municipality.
    pub in_municipality: Option<bool>,
    pub entries: Vec<PostalEntryView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PostalEntryView {
    /// 5-digit 全国地方公共団体コード (without check digit) of the entry's municipality.
    pub municipality: String,
    pub prefecture: String,
    pub city: String,
    pub town: String,
    pub prefecture_kana: String,
    pub city_kana: String,
    pub town_kana: String,
}

/// Looks up a postal code (郵便番号) for the address fill. Public: the postal data is.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/postal-codes/{code}",
    tag = "qr",
    params(
        ("tenant" = String, Path, description = "全国地方公共団体コード"),
        ("code" = String, Path, description = "郵便番号, 7 digits (a hyphen is accepted)"),
    ),
    responses(
        (status = 200, description = "the addresses of the code", body = PostalAnswer),
        (status = 404, description = "no such postal code", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "not a postal code", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn postal(
    State(_state): State<QrState>,
    ApiPath((tenant, code)): ApiPath<(String, String)>,
) -> Result<Json<PostalAnswer>, ApiError> {
    let tenant = tenant_of(&tenant)?;
    // A well-formed code the postal data does not know is a 404, not a format error.
    let plain = code.replace('-', "");
    let well_formed =
        (plain.len() == 7 && plain.bytes().all(|b| b.is_ascii_digit())).then_some(plain);
    let Some(code) = madoguchi_postal::normalize(&code).or(well_formed) else {
        return Err(ApiError::validation(vec![FieldError::new(
            "code",
            "invalid",
            "郵便番号は7桁の数字で入力してください。",
        )]));
    };
    let entries = madoguchi_postal::lookup(&code);
    if entries.is_empty() {
        return Err(ApiError::kind(
            404,
            "postal-code-not-found",
            "この郵便番号は見つかりません。",
            "番号を確かめてください。見つからない場合は住所を直接入力してください。",
        ));
    }
    Ok(Json(PostalAnswer {
        in_municipality: madoguchi_postal::is_in_municipality(&code, tenant.as_str()),
        postal_code: code,
        entries: entries
            .into_iter()
            .map(|e| PostalEntryView {
                municipality: e.municipality,
                prefecture: e.prefecture,
                city: e.city,
                town: e.town,
                prefecture_kana: e.prefecture_kana,
                city_kana: e.city_kana,
                town_kana: e.town_kana,
            })
            .collect(),
    }))
}
