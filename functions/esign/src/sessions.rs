//! Signing sessions (署名セッション) seen from the smartphone app and from the browser.
//!
//! The browser opens a session (an application's, through `submissions`, or a certificate
//! session here to fill locked fields from the card) and shows its QR code. The JPKI
//! smartphone app opens the link, learns the digest to sign, and posts the CMS. The
//! signature is verified at once; the session takes one signature, whatever the outcome.
//! The browser polls with its own status token and gets the result (and, for a certificate
//! session, the answers to fill in).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use madoguchi_applications::PublishedForm;
use madoguchi_applications::keys::SINGLE_SK;
use madoguchi_applications::signing::{
    NewSession, SessionPurpose, SessionState, SigningSession, open_session, session_pk, token_hash,
};
use madoguchi_domain::error::{DomainError, FieldError};
use madoguchi_domain::form::SignaturePolicy;
use madoguchi_domain::form::certificate::{CertValues, prefill};
use madoguchi_domain::tenant::TenantId;
use madoguchi_http::{ApiError, ApiJson, ApiPath, ApiQuery, port_error};
use madoguchi_jpki::{BasicFour, Report};
use madoguchi_ports::{Condition, Item, Key};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::{EsignState, internal, not_configured};

/// How long a certificate session waits.
pub const CERTIFICATE_SESSION_TTL_SECS: i64 = 10 * 60;
/// Header the browser polls a session with.
pub const STATUS_TOKEN_HEADER: &str = "x-session-token";
/// Largest signature accepted (a CMS with a chain of three RSA-4096 certificates is ~8 KiB).
pub const MAX_SIGNATURE_BYTES: usize = 64 * 1024;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateSessionBody {
    /// The form whose locked fields are to be filled.
    pub form: String,
}

/// A session as the browser gets it when opening one.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionOpened {
    pub session_id: String,
    /// One-time link for the JPKI smartphone app (also in the QR code).
    pub app_link: String,
    pub qr_svg: String,
    /// SHA-256 (hex) of what the card signs.
    pub digest: String,
    /// Header `X-Session-Token` for polling the session.
    pub status_token: String,
    pub expires_at: String,
}

fn tenant_of(path_tenant: &str) -> Result<TenantId, ApiError> {
    madoguchi_http::tenant_from_path(path_tenant)
}

fn rfc3339(epoch: i64) -> String {
    jiff::Timestamp::from_second(epoch)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

async fn published(
    state: &EsignState,
    tenant: &TenantId,
    slug: &str,
) -> Result<PublishedForm, ApiError> {
    madoguchi_applications::published_form(state.items.as_ref(), tenant, slug)
        .await
        .map_err(port_error)?
        .ok_or_else(|| DomainError::NotFound.into())
}

/// Opens a certificate session: the card signs a server nonce with its signing certificate,
/// which proves the card is there and gives its 基本4情報 to fill the form's locked fields.
/// No account is needed (the result goes only to the holder of the status token).
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/esign/sessions",
    tag = "esign",
    params(("tenant" = String, Path, description = "全国地方公共団体コード")),
    request_body = CertificateSessionBody,
    responses(
        (status = 201, description = "session opened", body = SessionOpened),
        (status = 404, description = "no such published form", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "the form takes no signature", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "signature verification is not configured here", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn open_certificate_session(
    State(state): State<EsignState>,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(body): ApiJson<CertificateSessionBody>,
) -> Result<(StatusCode, Json<SessionOpened>), ApiError> {
    let tenant = tenant_of(&tenant)?;
    if state.trust.sign.is_none() {
        return Err(not_configured());
    }
    let form = published(&state, &tenant, &body.form).await?;
    if form.definition.signature == SignaturePolicy::None_ {
        return Err(ApiError::kind(
            409,
            "signature-not-used",
            "この申請には電子署名を使いません。",
            "そのまま入力してください。",
        ));
    }
    let id = state.ids.new_id().to_string();
    let opened = open_session(
        &tenant,
        &state.settings.api_base_url,
        NewSession {
            id: id.clone(),
            purpose: SessionPurpose::Certificate,
            slug: body.form.clone(),
            form_version: form.version,
            form_title: form.definition.title.clone(),
            owner: String::new(),
            now: state.clock.now(),
            ttl_secs: CERTIFICATE_SESSION_TTL_SECS,
        },
        // The card signs a fresh nonce bound to this tenant and session.
        |status_token_hash| {
            hex::encode(Sha256::digest(certificate_payload(
                &tenant,
                &id,
                status_token_hash,
            )))
        },
    )
    .ok_or_else(|| internal("signing session"))?;
    state
        .items
        .put(opened.item, Condition::NotExists)
        .await
        .map_err(port_error)?;
    Ok((
        StatusCode::CREATED,
        Json(SessionOpened {
            session_id: opened.session_id,
            app_link: opened.app_link,
            qr_svg: opened.qr_svg,
            digest: opened.digest,
            status_token: opened.status_token,
            expires_at: opened.expires_at,
        }),
    ))
}

/// What a certificate session's card signs (documented in docs/esign.md): RFC 8785 JSON of
/// the purpose, tenant, session and a nonce (derived from the session's secret status token
/// hash, so it cannot be guessed).
pub fn certificate_payload(tenant: &TenantId, session: &str, nonce: &str) -> Vec<u8> {
    let doc = serde_json::json!({
        "purpose": "madoguchi-certificate",
        "tenant": tenant.as_str(),
        "session": session,
        "nonce": nonce,
    });
    serde_json_canonicalizer::to_vec(&doc).expect("canonicalizable")
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AppQuery {
    /// The one-time token from the link.
    pub token: String,
    /// The digest from the link (checked against the session).
    #[serde(default)]
    pub digest: Option<String>,
}

/// What the smartphone app is asked to sign.
#[derive(Debug, Serialize, ToSchema)]
pub struct SigningRequest {
    /// `application` (sign an application) or `certificate` (read the card's 基本4情報).
    pub purpose: String,
    /// Shown by the app: what is being signed.
    pub form_title: String,
    /// SHA-256 (hex) to sign: the CMS `messageDigest`.
    pub digest: String,
    pub digest_algorithm: String,
    pub expires_at: String,
    /// Where to post the CMS (with the same token).
    pub signature_url: String,
}

fn gone() -> ApiError {
    ApiError::kind(
        404,
        "session-not-found",
        "署名の受付が見つかりません。",
        "有効期限が切れたか、すでに使われました。申請画面からもう一度やり直してください。",
    )
}

/// Loads a session by id and one of its tokens (constant work whatever is wrong).
async fn session_by_token(
    state: &EsignState,
    tenant: &TenantId,
    id: &str,
    token: &str,
    status: bool,
) -> Result<(SigningSession, Item), ApiError> {
    if id.len() > 64 || token.len() > 128 {
        return Err(gone());
    }
    let item = state
        .items
        .get(&Key::new(session_pk(tenant, id), SINGLE_SK))
        .await
        .map_err(port_error)?
        .ok_or_else(gone)?;
    let session: SigningSession =
        serde_json::from_value(item.data.clone()).map_err(|_| internal("signing session"))?;
    let expected = if status {
        &session.status_token_hash
    } else {
        &session.token_hash
    };
    let presented = token_hash(token);
    let equal: bool = subtle_eq(presented.as_bytes(), expected.as_bytes()) && !expected.is_empty();
    if !equal || session.expires_at <= state.clock.now().as_second() {
        return Err(gone());
    }
    Ok((session, item))
}

/// Comparison whose time does not depend on where the inputs differ.
fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The smartphone app opens the link: what to sign.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/esign/sessions/{id}/app",
    tag = "esign",
    params(
        ("tenant" = String, Path, description = "全国地方公共団体コード"),
        ("id" = String, Path, description = "the session"),
        AppQuery,
    ),
    responses(
        (status = 200, description = "what to sign", body = SigningRequest),
        (status = 404, description = "unknown, expired or used session", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "already signed", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn app_view(
    State(state): State<EsignState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<AppQuery>,
) -> Result<Json<SigningRequest>, ApiError> {
    let tenant = tenant_of(&tenant)?;
    let (session, _) = session_by_token(&state, &tenant, &id, &q.token, false).await?;
    if q.digest
        .as_deref()
        .is_some_and(|d| !d.eq_ignore_ascii_case(&session.digest))
    {
        return Err(gone());
    }
    if session.state != SessionState::Open {
        return Err(already_signed());
    }
    Ok(Json(SigningRequest {
        purpose: purpose_name(session.purpose).to_owned(),
        form_title: session.form_title,
        digest: session.digest,
        digest_algorithm: "SHA-256".to_owned(),
        expires_at: rfc3339(session.expires_at),
        signature_url: format!(
            "{}/v1/tenants/{}/esign/sessions/{id}/signature?token={}",
            state.settings.api_base_url.trim_end_matches('/'),
            tenant.as_str(),
            q.token
        ),
    }))
}

fn purpose_name(p: SessionPurpose) -> &'static str {
    match p {
        SessionPurpose::Application => "application",
        SessionPurpose::Certificate => "certificate",
    }
}

fn already_signed() -> ApiError {
    ApiError::kind(
        409,
        "session-used",
        "この署名の受付はすでに使われました。",
        "申請画面からもう一度やり直してください。",
    )
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatureBody {
    /// CMS SignedData over the payload whose digest the session gave (detached or attached),
    /// base64 (or PEM) of the DER, made with the card's signing certificate.
    pub signature: String,
}

/// The verification outcome, for the app and the browser.
#[derive(Debug, Serialize, ToSchema)]
pub struct Outcome {
    /// `TOTAL-PASSED`, `TOTAL-FAILED` or `INDETERMINATE` (ETSI EN 319 102-1).
    pub indication: String,
    /// E.g. `REVOKED`, `HASH_FAILURE`, `TRY_LATER`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_indication: Option<String>,
    /// The result in Japanese, for the citizen.
    pub message: String,
}

fn outcome_of(report: &Report) -> Outcome {
    let json = serde_json::to_value(report).unwrap_or_default();
    let text = |k: &str| json.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let sub = text("sub_indication");
    Outcome {
        indication: text("indication").unwrap_or_default(),
        message: citizen_message(report.passed(), sub.as_deref()).to_owned(),
        sub_indication: sub,
    }
}

/// What a citizen is told about a verification outcome.
pub fn citizen_message(passed: bool, sub: Option<&str>) -> &'static str {
    if passed {
        return "電子署名を確認しました。";
    }
    match sub {
        Some("REVOKED") => {
            "この電子証明書は失効しています。市区町村の窓口で電子証明書の更新手続きをしてください。"
        }
        Some("OUT_OF_BOUNDS") => {
            "電子証明書の有効期限が切れています（または有効期間前です）。窓口で更新手続きをしてください。"
        }
        Some("TRY_LATER") => {
            "ただいま電子証明書の失効確認ができません。しばらくしてからもう一度署名してください。"
        }
        Some("NO_CERTIFICATE_CHAIN_FOUND") => {
            "マイナンバーカードの署名用電子証明書として確認できませんでした。"
        }
        Some("HASH_FAILURE") => "署名の対象が申請内容と一致しません。もう一度署名してください。",
        _ => "電子署名を確認できませんでした。もう一度署名してください。",
    }
}

/// The smartphone app posts the signature. It is verified at once; the session takes one
/// signature (a second post gets 409), passed or not.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/esign/sessions/{id}/signature",
    tag = "esign",
    params(
        ("tenant" = String, Path, description = "全国地方公共団体コード"),
        ("id" = String, Path, description = "the session"),
        AppQuery,
    ),
    request_body = SignatureBody,
    responses(
        (status = 200, description = "verified (see the indication)", body = Outcome),
        (status = 404, description = "unknown, expired or used session", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "already signed", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "not a signature", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "verification not configured, or revocation data unavailable (try later)", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn post_signature(
    State(state): State<EsignState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<AppQuery>,
    ApiJson(body): ApiJson<SignatureBody>,
) -> Result<Json<Outcome>, ApiError> {
    let tenant = tenant_of(&tenant)?;
    let trust = state.trust.sign.clone().ok_or_else(not_configured)?;
    let (mut session, item) = session_by_token(&state, &tenant, &id, &q.token, false).await?;
    if session.state != SessionState::Open {
        return Err(already_signed());
    }
    if body.signature.len() > MAX_SIGNATURE_BYTES * 2 {
        return Err(ApiError::validation(vec![FieldError::new(
            "signature",
            "too_large",
            "署名データが大きすぎます。",
        )]));
    }
    let digest = hex::decode(&session.digest).map_err(|_| internal("session digest"))?;
    let report = crate::verify::verify_signature(
        &trust,
        &digest,
        body.signature.as_bytes(),
        state.clock.now(),
    )
    .await;
    let outcome = outcome_of(&report);
    // Revocation data missing is not the citizen's fault: keep the session open to retry.
    if report.sub_indication == Some(madoguchi_jpki::SubIndication::TryLater) {
        tracing::warn!(session = %id, "signature not verifiable now: no fresh revocation data");
        return Ok(Json(outcome));
    }
    let der = crate::verify::signature_der(body.signature.as_bytes());
    session.state = if report.passed() {
        SessionState::Signed
    } else {
        SessionState::Failed
    };
    session.signed_at = Some(state.clock.now().to_string());
    session.signature = der.map(|d| STANDARD.encode(d));
    session.certificate = report.basic_four.as_ref().map(cert_values);
    session.report = Some(serde_json::to_value(&report).expect("report serializes"));
    let mut next = Item::new(
        item.key.clone(),
        serde_json::to_value(&session).expect("serializable"),
    );
    next.version = item.version + 1;
    next.expires_at = item.expires_at;
    match state
        .items
        .put(next, Condition::VersionEquals(item.version))
        .await
    {
        Ok(()) => {}
        Err(madoguchi_ports::PortError::ConditionFailed { .. }) => return Err(already_signed()),
        Err(e) => return Err(port_error(e)),
    }
    tracing::info!(
        session = %id,
        purpose = purpose_name(session.purpose),
        indication = %outcome.indication,
        sub_indication = outcome.sub_indication.as_deref().unwrap_or(""),
        "signature verified"
    );
    Ok(Json(outcome))
}

pub fn cert_values(b: &BasicFour) -> CertValues {
    CertValues {
        name: b.name.clone(),
        address: b.address.clone(),
        birth_date: b.birth_date.clone(),
        gender: b.gender.clone(),
    }
}

/// A session as the browser sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionStatus {
    /// `open`, `signed` or `failed`.
    pub state: String,
    pub purpose: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// The signing certificate's 基本4情報 (signed sessions).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub certificate: Option<CertValues>,
    /// Answers for the form's locked fields (signed certificate sessions): fill them in and
    /// do not let them be edited.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub prefill: Option<serde_json::Map<String, serde_json::Value>>,
    pub expires_at: String,
}

/// The browser polls its session (header `X-Session-Token`).
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/esign/sessions/{id}",
    tag = "esign",
    params(
        ("tenant" = String, Path, description = "全国地方公共団体コード"),
        ("id" = String, Path, description = "the session"),
        ("x-session-token" = String, Header, description = "the status token from opening the session"),
    ),
    responses(
        (status = 200, description = "the session", body = SessionStatus),
        (status = 404, description = "unknown, expired or used session", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn status(
    State(state): State<EsignState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<SessionStatus>, ApiError> {
    let tenant = tenant_of(&tenant)?;
    let token = headers
        .get(STATUS_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (session, _) = session_by_token(&state, &tenant, &id, token, true).await?;
    let outcome = session
        .report
        .as_ref()
        .and_then(|r| serde_json::from_value::<Report>(r.clone()).ok())
        .map(|r| outcome_of(&r));
    let signed = session.state == SessionState::Signed;
    let prefill = match (signed, session.purpose, &session.certificate) {
        (true, SessionPurpose::Certificate, Some(cert)) => {
            let form = published(&state, &tenant, &session.slug).await?;
            Some(prefill(&form.definition, cert))
        }
        _ => None,
    };
    Ok(Json(SessionStatus {
        state: match session.state {
            SessionState::Open => "open",
            SessionState::Signed => "signed",
            SessionState::Failed => "failed",
        }
        .to_owned(),
        purpose: purpose_name(session.purpose).to_owned(),
        outcome,
        certificate: if signed { session.certificate } else { None },
        prefill,
        expires_at: rfc3339(session.expires_at),
    }))
}
