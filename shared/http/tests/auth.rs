//! Token verification against the development issuer's JWKS: what is accepted, what is
//! refused, and that a citizen pool can never produce staff.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use madoguchi_domain::tenant::TenantId;
use madoguchi_http::auth::{AuthError, Authenticator, IssuerKind, JwksSource, Role, TrustedIssuer};
use madoguchi_http::dev_issuer::{DEV_AUDIENCE, DEV_ISSUER, DevIssuer, DevTokenRequest};

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn request(role: Role, ttl: i64) -> DevTokenRequest {
    DevTokenRequest {
        sub: "user-1".into(),
        tenant: TenantId::parse("272060").unwrap(),
        role,
        depts: vec!["shimin".into()],
        ttl_seconds: ttl,
        now: now(),
        email: None,
    }
}

fn b64(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[tokio::test]
async fn a_minted_token_verifies_with_its_claims() {
    let issuer = DevIssuer::ephemeral();
    let auth = Authenticator::new(vec![issuer.trusted()]);
    let p = auth
        .verify(&issuer.mint(&request(Role::Staff, 600)))
        .await
        .unwrap();
    assert_eq!(p.sub, "user-1");
    assert_eq!(p.tenant.as_str(), "272060");
    assert_eq!(p.role, Role::Staff);
    assert_eq!(p.depts, vec!["shimin".to_owned()]);
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let issuer = DevIssuer::ephemeral();
    let auth = Authenticator::new(vec![issuer.trusted()]);
    let err = auth
        .verify(&issuer.mint(&request(Role::Citizen, -3600)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthError::Invalid(ref k) if k.contains("Expired")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let issuer = DevIssuer::ephemeral();
    let auth = Authenticator::new(vec![issuer.trusted()]);
    let token = issuer.mint(&request(Role::Citizen, 600));
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["role"] = "admin".into();
    let forged = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    assert!(matches!(
        auth.verify(&forged).await,
        Err(AuthError::Invalid(_))
    ));
}

#[tokio::test]
async fn alg_none_and_hmac_are_refused() {
    let issuer = DevIssuer::ephemeral();
    let auth = Authenticator::new(vec![issuer.trusted()]);
    let claims = serde_json::json!({"iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "sub": "x", "tenant": "272060", "role": "admin", "exp": now() + 600});
    let none = format!(
        "{}.{}.",
        b64(&serde_json::json!({"alg": "none", "kid": issuer.kid()})),
        b64(&claims)
    );
    assert!(auth.verify(&none).await.is_err());
    // HS256 "signed" with the public key: the classic algorithm-confusion attack.
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some(issuer.kid().to_owned()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"public key bytes"),
    )
    .unwrap();
    assert_eq!(
        auth.verify(&hs).await.unwrap_err(),
        AuthError::AlgorithmNotAllowed
    );
}

#[tokio::test]
async fn another_key_and_another_audience_are_refused() {
    let trusted = DevIssuer::ephemeral();
    let stranger = DevIssuer::ephemeral();
    let auth = Authenticator::new(vec![trusted.trusted()]);
    assert_eq!(
        auth.verify(&stranger.mint(&request(Role::Staff, 600)))
            .await
            .unwrap_err(),
        AuthError::UnknownKey
    );
    let mut other_aud = trusted.trusted();
    other_aud.audience = "another-app".into();
    let auth = Authenticator::new(vec![other_aud]);
    assert_eq!(
        auth.verify(&trusted.mint(&request(Role::Staff, 600)))
            .await
            .unwrap_err(),
        AuthError::WrongAudience
    );
}

#[tokio::test]
async fn a_citizen_pool_only_produces_citizens() {
    let issuer = DevIssuer::ephemeral();
    let citizen_pool = TrustedIssuer {
        kind: IssuerKind::Citizen,
        jwks: JwksSource::Static(issuer.jwks()),
        ..issuer.trusted()
    };
    let auth = Authenticator::new(vec![citizen_pool]);
    let p = auth
        .verify(&issuer.mint(&request(Role::Admin, 600)))
        .await
        .unwrap();
    assert_eq!(p.role, Role::Citizen);
    assert!(p.depts.is_empty());
}

#[tokio::test]
async fn a_staff_pool_refuses_users_without_a_staff_group() {
    let issuer = DevIssuer::ephemeral();
    let staff_pool = TrustedIssuer {
        kind: IssuerKind::Staff,
        ..issuer.trusted()
    };
    let auth = Authenticator::new(vec![staff_pool]);
    assert_eq!(
        auth.verify(&issuer.mint(&request(Role::Citizen, 600)))
            .await
            .unwrap_err(),
        AuthError::Claims("role")
    );
}

#[tokio::test]
async fn the_key_file_is_private_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let a = DevIssuer::load_or_create(dir.path()).unwrap();
    let b = DevIssuer::load_or_create(dir.path()).unwrap();
    assert_eq!(a.kid(), b.kid());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("dev-issuer.pk8"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let auth = Authenticator::new(vec![b.trusted()]);
    assert!(
        auth.verify(&a.mint(&request(Role::Citizen, 60)))
            .await
            .is_ok()
    );
}
