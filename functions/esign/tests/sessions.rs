//! The esign routes in process, on the embedded adapters (SQLite items, local keys), with a
//! PKI made by the openssl CLI and a clock the tests move: what the end-to-end walk does not
//! reach (expiry, wrong tokens, revocation data too old, garbage, an unconfigured set).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use http_body_util::BodyExt;
use jiff::{SignedDuration, Timestamp};
use madoguchi_applications::keys::SINGLE_SK;
use madoguchi_applications::signing::{
    SessionPurpose, SessionState, SigningSession, new_token, session_pk,
};
use madoguchi_domain::tenant::TenantId;
use madoguchi_embedded::EmbeddedBackend;
use madoguchi_esign::{EsignState, Settings, Trust, TrustSet, router};
use madoguchi_http::Authenticator;
use madoguchi_jpki::TrustAnchors;
use madoguchi_ports::{Clock, Condition, FixedClock, Item, ItemStore, Key, UuidV7Gen};
use madoguchi_tests::pki::Pki;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tower::ServiceExt;

const TENANT: &str = "272060";

struct Fixture {
    _dir: tempfile::TempDir,
    pki: Pki,
    items: Arc<dyn ItemStore>,
    clock: Arc<FixedClock>,
    app: axum::Router,
}

fn set(pki: &Pki, ca: &str) -> TrustSet {
    let pem = std::fs::read(pki.dir.join(format!("{ca}.pem"))).unwrap();
    let crl = format!("file:{}", pki.dir.join(format!("{ca}-crl.der")).display());
    TrustSet::new(
        TrustAnchors::from_pem_bundle(&pem).unwrap(),
        &[crl],
        None,
        None,
    )
    .unwrap()
}

fn fixture(configured: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new(Timestamp::now()));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let backend =
        EmbeddedBackend::open(dir.path(), "http://127.0.0.1:1", dyn_clock.clone()).unwrap();
    let items: Arc<dyn ItemStore> = backend.items();
    let pki = Pki::make();
    let trust = if configured {
        Trust {
            sign: Some(set(&pki, "signca")),
            auth: Some(set(&pki, "authca")),
        }
    } else {
        Trust::default()
    };
    let state = EsignState {
        items: items.clone(),
        auth: Authenticator::shared(vec![madoguchi_cardlogin::trusted_issuer(items.clone())]),
        tokens: Arc::new(madoguchi_cardlogin::CardTokens::new(
            items.clone(),
            backend.keys(),
            dyn_clock.clone(),
        )),
        trust: Arc::new(trust),
        clock: dyn_clock,
        ids: Arc::new(UuidV7Gen),
        settings: Arc::new(Settings {
            api_base_url: "https://api.example.jp".into(),
            ..Settings::default()
        }),
    };
    Fixture {
        _dir: dir,
        pki,
        items,
        clock,
        app: router(state),
    }
}

async fn send(
    app: &axum::Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Body::from(serde_json::to_vec(&b).unwrap())
        }
        None => Body::empty(),
    };
    let res = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

const PAYLOAD: &[u8] = b"{\"answers\":{},\"attachments\":[],\"form\":\"f\",\"version\":1}";

/// An application session over [`PAYLOAD`], as `submissions` opens one; returns its id and
/// the app's token.
async fn open_session(f: &Fixture) -> (String, String) {
    let id = uuid::Uuid::now_v7().to_string();
    let (token, token_hash) = new_token();
    let (_, status_token_hash) = new_token();
    let now = f.clock.now();
    let session = SigningSession {
        id: id.clone(),
        purpose: SessionPurpose::Application,
        slug: "f".into(),
        form_version: 1,
        form_title: "申請".into(),
        owner: "a-owner".into(),
        token_hash,
        status_token_hash,
        digest: hex::encode(Sha256::digest(PAYLOAD)),
        created_at: now.to_string(),
        expires_at: now.as_second() + 15 * 60,
        state: SessionState::Open,
        signed_at: None,
        signature: None,
        report: None,
        certificate: None,
    };
    let tenant = TenantId::parse(TENANT).unwrap();
    f.items
        .put(
            Item::new(
                Key::new(session_pk(&tenant, &id), SINGLE_SK),
                serde_json::to_value(&session).unwrap(),
            ),
            Condition::NotExists,
        )
        .await
        .unwrap();
    (id, token)
}

fn app_uri(id: &str, token: &str) -> String {
    format!("/v1/tenants/{TENANT}/esign/sessions/{id}/app?token={token}")
}

fn signature_uri(id: &str, token: &str) -> String {
    format!("/v1/tenants/{TENANT}/esign/sessions/{id}/signature?token={token}")
}

#[tokio::test]
async fn an_unconfigured_set_answers_503_and_verifies_nothing() {
    let f = fixture(false);
    for uri in [
        format!("/v1/tenants/{TENANT}/auth/card/challenges"),
        format!("/v1/tenants/{TENANT}/esign/sessions"),
    ] {
        let body = uri.ends_with("sessions").then(|| json!({"form": "f"}));
        let (status, problem) = send(&f.app, "POST", &uri, body).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert!(
            problem["type"]
                .as_str()
                .unwrap()
                .ends_with("esign-not-configured"),
            "{problem}"
        );
    }
    let (id, token) = open_session(&f).await;
    let (status, _) = send(
        &f.app,
        "POST",
        &signature_uri(&id, &token),
        Some(json!({"signature": f.pki.cms("hanako", PAYLOAD)})),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_session_needs_its_token_and_expires() {
    let f = fixture(true);
    let (id, token) = open_session(&f).await;
    let (status, request) = send(&f.app, "GET", &app_uri(&id, &token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(request["purpose"], "application");
    assert_eq!(
        request["digest"],
        json!(hex::encode(Sha256::digest(PAYLOAD)))
    );
    assert!(
        request["signature_url"]
            .as_str()
            .unwrap()
            .starts_with("https://api.example.jp/v1/tenants/272060/esign/sessions/")
    );
    // Another token, or a digest that is not the session's, finds nothing.
    let (other, _) = new_token();
    assert_eq!(
        send(&f.app, "GET", &app_uri(&id, &other), None).await.0,
        StatusCode::NOT_FOUND
    );
    let wrong_digest = format!("{}&digest={}", app_uri(&id, &token), "0".repeat(64));
    assert_eq!(
        send(&f.app, "GET", &wrong_digest, None).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, _) = send(
        &f.app,
        "POST",
        &signature_uri(&id, &other),
        Some(json!({"signature": f.pki.cms("hanako", PAYLOAD)})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // After its 15 minutes the session is gone, whatever the item store still holds.
    f.clock.advance(SignedDuration::from_mins(16));
    assert_eq!(
        send(&f.app, "GET", &app_uri(&id, &token), None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn without_fresh_revocation_data_the_session_stays_open() {
    let f = fixture(true);
    // The test CRLs are good for 30 days; the certificates for a year.
    f.clock.advance(SignedDuration::from_hours(40 * 24));
    let (id, token) = open_session(&f).await;
    let (status, outcome) = send(
        &f.app,
        "POST",
        &signature_uri(&id, &token),
        Some(json!({"signature": f.pki.cms("hanako", PAYLOAD)})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(outcome["indication"], "INDETERMINATE", "{outcome}");
    assert_eq!(outcome["sub_indication"], "TRY_LATER");
    assert!(
        outcome["message"]
            .as_str()
            .unwrap()
            .contains("しばらくしてから")
    );
    // Not the citizen's fault: the same session takes a later try.
    let (status, _) = send(&f.app, "GET", &app_uri(&id, &token), None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_session_takes_one_signature_even_a_bad_one() {
    let f = fixture(true);
    let (id, token) = open_session(&f).await;
    let (status, outcome) = send(
        &f.app,
        "POST",
        &signature_uri(&id, &token),
        Some(json!({"signature": "not a signature"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(outcome["indication"], "TOTAL-FAILED", "{outcome}");
    assert_eq!(outcome["sub_indication"], "FORMAT_FAILURE");
    // Spent: neither the link nor another post works.
    assert_eq!(
        send(&f.app, "GET", &app_uri(&id, &token), None).await.0,
        StatusCode::CONFLICT
    );
    let (status, _) = send(
        &f.app,
        "POST",
        &signature_uri(&id, &token),
        Some(json!({"signature": f.pki.cms("hanako", PAYLOAD)})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // A signature over another payload is a HASH_FAILURE.
    let (id, token) = open_session(&f).await;
    let (_, outcome) = send(
        &f.app,
        "POST",
        &signature_uri(&id, &token),
        Some(json!({"signature": f.pki.cms("hanako", b"another application")})),
    )
    .await;
    assert_eq!(outcome["sub_indication"], "HASH_FAILURE", "{outcome}");
}

#[tokio::test]
async fn a_login_challenge_is_short_lived_and_single_use() {
    let f = fixture(true);
    let challenge = |f: &Fixture| {
        let app = f.app.clone();
        async move {
            let (status, ch) = send(
                &app,
                "POST",
                &format!("/v1/tenants/{TENANT}/auth/card/challenges"),
                None,
            )
            .await;
            assert_eq!(status, StatusCode::CREATED);
            ch
        }
    };
    let proof = |f: &Fixture, ch: &Value| {
        let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(ch["nonce"].as_str().unwrap())
            .unwrap();
        assert_eq!(nonce.len(), 32);
        json!({
            "challenge_id": ch["challenge_id"],
            "certificate": f.pki.pem("login"),
            "signature": f.pki.raw("login", &nonce),
        })
    };
    let token_uri = format!("/v1/tenants/{TENANT}/auth/card/token");
    let ch = challenge(&f).await;
    f.clock.advance(SignedDuration::from_mins(6));
    let (status, problem) = send(&f.app, "POST", &token_uri, Some(proof(&f, &ch))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("challenge-expired")
    );

    // A signature over another nonce spends the challenge and is refused.
    let ch = challenge(&f).await;
    let other = challenge(&f).await;
    let mut wrong = proof(&f, &other);
    wrong["challenge_id"] = ch["challenge_id"].clone();
    let (status, problem) = send(&f.app, "POST", &token_uri, Some(wrong)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        problem["errors"][0]["code"], "sig_crypto_failure",
        "{problem}"
    );
    let (status, _) = send(&f.app, "POST", &token_uri, Some(proof(&f, &ch))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the challenge was spent");
    // The untouched one still works.
    let (status, session) = send(&f.app, "POST", &token_uri, Some(proof(&f, &other))).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["token_type"], "Bearer");
}
