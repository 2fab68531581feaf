//! Records of the e-signature (電子署名) and card login (マイナンバーカードでのログイン) flows:
//! signing sessions, the signature kept with an application, login challenges, the link
//! from a card's user certificate to a citizen, and the key that signs card-login tokens.
//!
//! Written by `submissions` (application signing sessions, the stored signature) and `esign`
//! (certificate sessions, the smartphone side, card login); read by `staff`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use madoguchi_domain::form::certificate::{CertValues, LockCheck};
use madoguchi_domain::tenant::TenantId;
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A signing session: `SIGN#<id>` / `_`. Expires with `expires_at` (item TTL too).
pub fn session_pk(tenant: &TenantId, id: &str) -> String {
    tenant.key(&["SIGN", id])
}
/// The signature kept with an application: `APP#<id>` / `SIGNATURE`.
pub const SIGNATURE_SK: &str = "SIGNATURE";
/// A card-login challenge: `CARDCH#<id>` / `_`.
pub fn challenge_pk(tenant: &TenantId, id: &str) -> String {
    tenant.key(&["CARDCH", id])
}
/// The citizen a card's user certificate logs in as: `CARD#<sha256(issuer | serial)>` / `_`.
pub fn card_link_pk(tenant: &TenantId, issuer: &str, serial_hex: &str) -> String {
    let digest = Sha256::digest(format!("{issuer}\n{}", serial_hex.to_ascii_lowercase()));
    tenant.key(&["CARD", &hex::encode(&digest[..16])])
}
/// The tenant's card-login token key: `CARDKEY` / `_`.
pub fn card_key_pk(tenant: &TenantId) -> String {
    tenant.key(&["CARDKEY"])
}

/// What a session's signature is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionPurpose {
    /// Read the 基本4情報 of the signing certificate (to fill locked fields): the card signs a
    /// server nonce.
    Certificate,
    /// Sign an application's canonical payload.
    Application,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Waiting for the signature.
    Open,
    /// A signature arrived and verified TOTAL-PASSED.
    Signed,
    /// A signature arrived and did not pass; the session is spent.
    Failed,
}

/// A signing session (署名セッション). Holds the digest only: the payload carries answers
/// (individual numbers among them) and is never stored here.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SigningSession {
    pub id: String,
    pub purpose: SessionPurpose,
    pub slug: String,
    pub form_version: u64,
    pub form_title: String,
    /// [`crate::Owner::key_part`] of the citizen who asked for it.
    pub owner: String,
    /// SHA-256 (hex) of the one-time token in the app's link; the token is never stored.
    pub token_hash: String,
    /// SHA-256 (hex) of the token the browser polls the session with.
    pub status_token_hash: String,
    /// SHA-256 (hex) of the payload to sign.
    pub digest: String,
    pub created_at: String,
    /// Epoch seconds.
    pub expires_at: i64,
    pub state: SessionState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<String>,
    /// The CMS as received (base64 of the DER).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The verification report (`madoguchi_jpki::Report` as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<serde_json::Value>,
    /// 基本4情報 of the signing certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertValues>,
}

/// The signature of an application, kept with it so it can be verified again later.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSignature {
    pub session: String,
    /// SHA-256 (hex) of the canonical payload that was signed.
    pub digest: String,
    /// The CMS SignedData (base64 of the DER); it holds the certificate chain.
    pub signature: String,
    /// The report at submission (`madoguchi_jpki::Report` as JSON).
    pub report: serde_json::Value,
    /// Locked fields compared with the certificate.
    pub locks: Vec<LockCheck>,
    pub signed_at: String,
}

/// What the application record says about its signature (lists and detail headers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureSummary {
    /// `TOTAL-PASSED`, … (at submission).
    pub indication: String,
    pub signed_at: String,
    /// Every locked field matched the certificate.
    pub locks_match: bool,
    /// The citizen corrected the answers (補正) after signing: the signature covers the
    /// answers as first submitted, not the current ones.
    #[serde(default)]
    pub corrected_after_signing: bool,
}

/// A card-login challenge (nonce), single use.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CardChallenge {
    /// Base64url of the random bytes the card signs.
    pub nonce: String,
    pub expires_at: i64,
}

/// The citizen a card's user certificate (利用者証明用電子証明書) logs in as.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CardLink {
    /// The citizen's subject in tokens.
    pub sub: String,
    pub linked_at: String,
    pub last_login_at: String,
}

/// The tenant's Ed25519 key for card-login tokens: the seed wrapped by the keys port
/// (context `tenant`, `purpose=card-login-token`), and its public half for verifiers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CardKeyRecord {
    pub kid: String,
    /// Base64url of the 32-byte public key.
    pub public: String,
    /// Base64 of the wrapped seed.
    pub wrapped: String,
    pub created_at: String,
}

/// Purpose of the data key that is the card-login token seed.
pub const CARD_KEY_PURPOSE: &str = "card-login-token";

/// What a new signing session is for.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub purpose: SessionPurpose,
    pub slug: String,
    pub form_version: u64,
    pub form_title: String,
    /// [`crate::Owner::key_part`] of the citizen, or empty (certificate sessions).
    pub owner: String,
    pub now: jiff::Timestamp,
    pub ttl_secs: i64,
}

/// A session as opened: the item to store (conditional on not existing) and what the
/// browser is given.
#[derive(Debug, Clone)]
pub struct OpenedSession {
    pub item: madoguchi_ports::Item,
    pub session_id: String,
    pub app_link: String,
    pub qr_svg: String,
    pub digest: String,
    pub status_token: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// Opens a session: fresh tokens (only their hashes stored), the record with its expiry, the
/// app's link and its QR code. `digest_of` gives the SHA-256 (hex) to sign, given the hash of
/// the status token (a certificate session derives its nonce from it).
pub fn open_session(
    tenant: &TenantId,
    api_base_url: &str,
    new: NewSession,
    digest_of: impl FnOnce(&str) -> String,
) -> Option<OpenedSession> {
    let (token, token_hash) = new_token();
    let (status_token, status_token_hash) = new_token();
    let digest = digest_of(&status_token_hash);
    let expires_at = new.now.as_second() + new.ttl_secs;
    let session = SigningSession {
        id: new.id.clone(),
        purpose: new.purpose,
        slug: new.slug,
        form_version: new.form_version,
        form_title: new.form_title,
        owner: new.owner,
        token_hash,
        status_token_hash,
        digest: digest.clone(),
        created_at: new.now.to_string(),
        expires_at,
        state: SessionState::Open,
        signed_at: None,
        signature: None,
        report: None,
        certificate: None,
    };
    let mut item = madoguchi_ports::Item::new(
        madoguchi_ports::Key::new(session_pk(tenant, &new.id), crate::keys::SINGLE_SK),
        serde_json::to_value(&session).ok()?,
    );
    item.expires_at = Some(expires_at);
    let app_link = app_link(api_base_url, tenant, &new.id, &token, &digest);
    Some(OpenedSession {
        item,
        qr_svg: qr_svg(&app_link)?,
        app_link,
        session_id: new.id,
        digest,
        status_token,
        expires_at: jiff::Timestamp::from_second(expires_at).ok()?.to_string(),
    })
}

/// A fresh one-time token (base64url of 32 random bytes) and its SHA-256 hex.
pub fn new_token() -> (String, String) {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = URL_SAFE_NO_PAD.encode(raw);
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The link the smartphone app opens (and the QR code carries): the session, its one-time
/// token and the payload digest, so the app can show what it signs before asking for the PIN.
pub fn app_link(base: &str, tenant: &TenantId, session: &str, token: &str, digest: &str) -> String {
    format!(
        "{}/v1/tenants/{}/esign/sessions/{session}/app?token={token}&digest={digest}",
        base.trim_end_matches('/'),
        tenant.as_str()
    )
}

/// An SVG QR code of `text` (error correction M, quiet zone included).
pub fn qr_svg(text: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()?;
    Some(
        code.render::<svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_and_only_their_hash_is_kept() {
        let (a, ha) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a), ha);
        assert!(!ha.contains(&a));
    }

    #[test]
    fn card_links_depend_on_issuer_and_serial_not_on_case() {
        let t = TenantId::parse("272060").unwrap();
        assert_eq!(
            card_link_pk(&t, "CN=CA", "0A1B"),
            card_link_pk(&t, "CN=CA", "0a1b")
        );
        assert_ne!(
            card_link_pk(&t, "CN=CA", "0a1b"),
            card_link_pk(&t, "CN=Other", "0a1b")
        );
    }

    #[test]
    fn the_link_fits_a_qr_code() {
        let t = TenantId::parse("272060").unwrap();
        let link = app_link(
            "https://api.example.jp/",
            &t,
            "0193a7c2-0000-7000-8000-000000000000",
            &"A".repeat(43),
            &"f".repeat(64),
        );
        assert!(link.starts_with("https://api.example.jp/v1/tenants/272060/esign/sessions/"));
        let svg = qr_svg(&link).unwrap();
        assert!(svg.starts_with("<?xml") && svg.contains("<svg"));
    }
}
