//! Logging in with the My Number Card (利用者証明用電子証明書).
//!
//! Challenge-response: the server issues a random nonce (single use, short-lived), the card
//! signs it with the user-certificate key, the server checks the chain, validity and
//! revocation **by serial number** (CRL, or OCSP where configured) and issues a card-login
//! token. The user certificate carries no 基本4情報: the citizen is found by the
//! certificate's issuer and serial through a stored link, made on first login (a new
//! citizen identity) or by linking the card to an existing account.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use madoguchi_applications::keys::SINGLE_SK;
use madoguchi_applications::signing::{CardChallenge, CardLink, card_link_pk, challenge_pk};
use madoguchi_domain::error::FieldError;
use madoguchi_domain::tenant::TenantId;
use madoguchi_http::auth::Role;
use madoguchi_http::{ApiError, ApiJson, ApiPath, Authenticated, port_error};
use madoguchi_jpki::Report;
use madoguchi_ports::{Condition, Item, Key, PortError};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::sessions::citizen_message;
use crate::{EsignState, internal, not_configured};

/// How long a challenge may be answered.
pub const CHALLENGE_TTL_SECS: i64 = 5 * 60;

#[derive(Debug, Serialize, ToSchema)]
pub struct ChallengeIssued {
    pub challenge_id: String,
    /// Base64url (no padding) of 32 random bytes: the card signs these bytes
    /// (RSASSA-PKCS1-v1_5 with SHA-256).
    pub nonce: String,
    pub expires_at: String,
}

/// Issues a login challenge.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/auth/card/challenges",
    tag = "esign",
    params(("tenant" = String, Path, description = "全国地方公共団体コード")),
    responses(
        (status = 201, description = "sign the nonce with the card", body = ChallengeIssued),
        (status = 503, description = "card login is not configured here", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn challenge(
    State(state): State<EsignState>,
    ApiPath(tenant): ApiPath<String>,
) -> Result<(StatusCode, Json<ChallengeIssued>), ApiError> {
    let tenant = madoguchi_http::tenant_from_path(&tenant)?;
    if state.trust.auth.is_none() {
        return Err(not_configured());
    }
    let mut nonce = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let id = state.ids.new_id().to_string();
    let expires_at = state.clock.now().as_second() + CHALLENGE_TTL_SECS;
    let record = CardChallenge {
        nonce: URL_SAFE_NO_PAD.encode(nonce),
        expires_at,
    };
    let mut item = Item::new(
        Key::new(challenge_pk(&tenant, &id), SINGLE_SK),
        serde_json::to_value(&record).expect("serializable"),
    );
    item.expires_at = Some(expires_at);
    state
        .items
        .put(item, Condition::NotExists)
        .await
        .map_err(port_error)?;
    Ok((
        StatusCode::CREATED,
        Json(ChallengeIssued {
            challenge_id: id,
            nonce: record.nonce,
            expires_at: jiff::Timestamp::from_second(expires_at)
                .map(|t| t.to_string())
                .unwrap_or_default(),
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardProof {
    pub challenge_id: String,
    /// The user certificate (利用者証明用電子証明書), base64 or PEM of the DER.
    pub certificate: String,
    /// The card's signature over the nonce bytes, base64.
    pub signature: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CardSession {
    /// Bearer token (JWT) for the citizen API.
    pub token: String,
    pub token_type: String,
    pub expires_at: String,
    /// The citizen's subject (the same at every login with this card).
    pub sub: String,
    /// This card had never logged in here: a new citizen identity was made.
    pub new_citizen: bool,
}

fn refused(report: &Report) -> ApiError {
    let json = serde_json::to_value(report).unwrap_or_default();
    let sub = json
        .get("sub_indication")
        .and_then(|v| v.as_str())
        .unwrap_or("UNKNOWN")
        .to_owned();
    let status = if sub == "TRY_LATER" { 503 } else { 401 };
    let mut e = ApiError::kind(
        status,
        "card-refused",
        "マイナンバーカードでログインできませんでした。",
        citizen_message(false, Some(&sub)),
    );
    e.problem.errors.push(FieldError::new(
        "certificate",
        sub.to_ascii_lowercase(),
        citizen_message(false, Some(&sub)),
    ));
    e
}

fn challenge_gone() -> ApiError {
    ApiError::kind(
        401,
        "challenge-expired",
        "ログインの有効期限が切れました。",
        "もう一度最初からやり直してください。",
    )
}

/// Spends the challenge (single use: deleted before the signature is even checked) and
/// verifies the proof. Returns the certificate's issuer and serial.
async fn check_proof(
    state: &EsignState,
    tenant: &TenantId,
    proof: &CardProof,
) -> Result<(String, String), ApiError> {
    let trust = state.trust.auth.clone().ok_or_else(not_configured)?;
    if proof.challenge_id.len() > 64
        || proof.certificate.len() > 32 * 1024
        || proof.signature.len() > 8 * 1024
    {
        return Err(challenge_gone());
    }
    let key = Key::new(challenge_pk(tenant, &proof.challenge_id), SINGLE_SK);
    let item = state
        .items
        .get(&key)
        .await
        .map_err(port_error)?
        .ok_or_else(challenge_gone)?;
    let challenge: CardChallenge =
        serde_json::from_value(item.data.clone()).map_err(|_| internal("card challenge"))?;
    match state
        .items
        .delete(&key, Condition::VersionEquals(item.version))
        .await
    {
        Ok(()) => {}
        Err(PortError::ConditionFailed { .. } | PortError::NotFound) => {
            return Err(challenge_gone());
        }
        Err(e) => return Err(port_error(e)),
    }
    let now = state.clock.now();
    if challenge.expires_at <= now.as_second() {
        return Err(challenge_gone());
    }
    let nonce = URL_SAFE_NO_PAD
        .decode(&challenge.nonce)
        .map_err(|_| internal("card challenge nonce"))?;
    let report = crate::verify::verify_login(
        &trust,
        &nonce,
        proof.certificate.as_bytes(),
        proof.signature.as_bytes(),
        now,
    )
    .await;
    let outcome = serde_json::to_value(&report).unwrap_or_default();
    tracing::info!(
        indication = outcome
            .get("indication")
            .and_then(|v| v.as_str())
            .unwrap_or(""),
        sub_indication = outcome
            .get("sub_indication")
            .and_then(|v| v.as_str())
            .unwrap_or(""),
        "card login verified"
    );
    if !report.passed() {
        return Err(refused(&report));
    }
    let signer = report.signer.as_ref().ok_or_else(|| internal("report"))?;
    Ok((signer.issuer.clone(), signer.serial_hex.clone()))
}

/// Logs in with the card: the proof of a fresh challenge → a citizen token.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/auth/card/token",
    tag = "esign",
    params(("tenant" = String, Path, description = "全国地方公共団体コード")),
    request_body = CardProof,
    responses(
        (status = 200, description = "logged in", body = CardSession),
        (status = 401, description = "challenge expired or used, or the certificate was refused (`errors[0].code`: `revoked`, `out_of_bounds`, …)", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "not configured, or revocation data unavailable (try later)", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn token(
    State(state): State<EsignState>,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(proof): ApiJson<CardProof>,
) -> Result<Json<CardSession>, ApiError> {
    let tenant = madoguchi_http::tenant_from_path(&tenant)?;
    let (issuer, serial) = check_proof(&state, &tenant, &proof).await?;
    let key = Key::new(card_link_pk(&tenant, &issuer, &serial), SINGLE_SK);
    let now = state.clock.now().to_string();
    let (sub, new_citizen) = loop {
        match state.items.get(&key).await.map_err(port_error)? {
            Some(item) => {
                let mut link: CardLink =
                    serde_json::from_value(item.data.clone()).map_err(|_| internal("card link"))?;
                let sub = link.sub.clone();
                link.last_login_at = now.clone();
                let mut next = Item::new(key.clone(), serde_json::to_value(&link).expect("link"));
                next.version = item.version + 1;
                // Best effort: a concurrent login updating the same link changes nothing.
                let _ = state
                    .items
                    .put(next, Condition::VersionEquals(item.version))
                    .await;
                break (sub, false);
            }
            None => {
                let link = CardLink {
                    sub: format!("card-{}", state.ids.new_id()),
                    linked_at: now.clone(),
                    last_login_at: now.clone(),
                };
                let item = Item::new(key.clone(), serde_json::to_value(&link).expect("link"));
                match state.items.put(item, Condition::NotExists).await {
                    Ok(()) => break (link.sub, true),
                    // Two first logins at once: the other one made the link; use it.
                    Err(PortError::ConditionFailed { .. }) => continue,
                    Err(e) => return Err(port_error(e)),
                }
            }
        }
    };
    let (token, exp) = state
        .tokens
        .issue(&tenant, &sub, state.settings.login_token_ttl_secs)
        .await
        .map_err(port_error)?;
    Ok(Json(CardSession {
        token,
        token_type: "Bearer".to_owned(),
        expires_at: jiff::Timestamp::from_second(exp)
            .map(|t| t.to_string())
            .unwrap_or_default(),
        sub,
        new_citizen,
    }))
}

/// A signed-in citizen of the path's tenant; decided before the body is read, so staff and
/// strangers get 403 whatever they send.
pub struct CitizenOfTenant(pub madoguchi_http::Principal);

impl FromRequestParts<EsignState> for CitizenOfTenant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &EsignState,
    ) -> Result<Self, Self::Rejection> {
        let Authenticated(principal) = Authenticated::from_request_parts(parts, state).await?;
        let ApiPath(tenant) = ApiPath::<String>::from_request_parts(parts, state).await?;
        let tenant = madoguchi_http::tenant_from_path(&tenant)?;
        if principal.role != Role::Citizen || principal.tenant != tenant {
            return Err(madoguchi_domain::error::DomainError::Forbidden.into());
        }
        Ok(Self(principal))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CardLinked {
    pub sub: String,
}

/// Links the card to the signed-in citizen's account: later card logins are that account.
/// Replaces an earlier link of the same card.
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/auth/card/link",
    tag = "esign",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "全国地方公共団体コード")),
    request_body = CardProof,
    responses(
        (status = 200, description = "linked", body = CardLinked),
        (status = 401, description = "not signed in, challenge expired, or the certificate was refused", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not a citizen of this tenant", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn link(
    State(state): State<EsignState>,
    CitizenOfTenant(principal): CitizenOfTenant,
    ApiJson(proof): ApiJson<CardProof>,
) -> Result<Json<CardLinked>, ApiError> {
    let tenant = principal.tenant;
    let (issuer, serial) = check_proof(&state, &tenant, &proof).await?;
    let now = state.clock.now().to_string();
    let link = CardLink {
        sub: principal.sub.clone(),
        linked_at: now.clone(),
        last_login_at: now,
    };
    state
        .items
        .put(
            Item::new(
                Key::new(card_link_pk(&tenant, &issuer, &serial), SINGLE_SK),
                serde_json::to_value(&link).expect("link"),
            ),
            Condition::None,
        )
        .await
        .map_err(port_error)?;
    Ok(Json(CardLinked { sub: principal.sub }))
}
