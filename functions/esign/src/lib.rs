//! The `esign` function: JPKI (My Number Card) signatures and card login.
//!
//! - Signing sessions from the smartphone side (`…/esign/sessions/{id}/app`, `…/signature`)
//!   and the browser side (`…/esign/sessions/{id}`), and certificate sessions that read the
//!   signing certificate's 基本4情報 to fill a form's locked fields ([`sessions`]).
//!   Application sessions are opened by `submissions`, which checks the answers first.
//! - Card login with the user certificate: challenge → signature → token ([`login`]).
//! - Verification is `madoguchi_jpki` (pure) with CRLs and OCSP from
//!   `madoguchi_revocation` ([`trust`], [`verify`]). Flows and trust: docs/esign.md.

pub mod login;
pub mod sessions;
pub mod trust;
pub mod verify;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post, put};
use madoguchi_cardlogin::CardTokens;
use madoguchi_domain::error::Problem;
use madoguchi_http::{ApiError, Authenticator};
use madoguchi_ports::{Clock, IdGen, ItemStore};
use utoipa::OpenApi;

pub use trust::{Trust, TrustSet};

/// Settings that differ per deployment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The API's public base URL (links for the smartphone app).
    pub api_base_url: String,
    /// Lifetime of a card-login token.
    pub login_token_ttl_secs: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            api_base_url: "http://127.0.0.1:8080".to_owned(),
            login_token_ttl_secs: 3600,
        }
    }
}

#[derive(Clone)]
pub struct EsignState {
    pub items: Arc<dyn ItemStore>,
    pub auth: Arc<Authenticator>,
    pub tokens: Arc<CardTokens>,
    pub trust: Arc<Trust>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    pub settings: Arc<Settings>,
}

impl FromRef<EsignState> for Arc<Authenticator> {
    fn from_ref(s: &EsignState) -> Self {
        s.auth.clone()
    }
}

/// Bodies are small: a CMS with its chain, or a certificate and a signature.
pub const MAX_BODY_BYTES: usize = 128 * 1024;

pub fn router(state: EsignState) -> Router {
    let t = "/v1/tenants/{tenant}";
    Router::new()
        .route(
            &format!("{t}/esign/sessions"),
            post(sessions::open_certificate_session),
        )
        .route(&format!("{t}/esign/sessions/{{id}}"), get(sessions::status))
        .route(
            &format!("{t}/esign/sessions/{{id}}/app"),
            get(sessions::app_view),
        )
        .route(
            &format!("{t}/esign/sessions/{{id}}/signature"),
            post(sessions::post_signature),
        )
        .route(&format!("{t}/auth/card/challenges"), post(login::challenge))
        .route(&format!("{t}/auth/card/token"), post(login::token))
        .route(&format!("{t}/auth/card/link"), put(login::link))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    paths(
        sessions::open_certificate_session, sessions::status, sessions::app_view,
        sessions::post_signature,
        login::challenge, login::token, login::link,
    ),
    components(schemas(
        sessions::CertificateSessionBody, sessions::SessionOpened, sessions::SigningRequest,
        sessions::SignatureBody, sessions::Outcome, sessions::SessionStatus,
        login::ChallengeIssued, login::CardProof, login::CardSession, login::CardLinked,
    )),
    tags((name = "esign", description = "JPKI e-signature sessions and My Number Card login"))
)]
struct EsignApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    EsignApi::openapi()
}

pub(crate) fn internal(what: &'static str) -> ApiError {
    tracing::error!(what, "stored record does not parse");
    ApiError::new(Problem::internal())
}

pub(crate) fn not_configured() -> ApiError {
    ApiError::kind(
        503,
        "esign-not-configured",
        "ここでは電子署名・カードでのログインを利用できません。",
        "電子証明書の検証が設定されていません。窓口にお問い合わせください。",
    )
}
